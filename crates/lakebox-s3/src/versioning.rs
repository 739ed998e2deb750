//! S3 versioning inside a metadata transaction: which version becomes current, what happens to
//! the one it replaces, delete markers, `null` versions, and version ids.
//!
//! Layout: `objects` holds each key's current version (possibly a delete marker); `versions`
//! holds noncurrent versions under `<bucket>/<key>\0<u64::MAX - seq, big-endian>`, so a key's
//! versions sort newest first and keys keep their byte order. Invariant: a key with noncurrent
//! versions always has a current one (deleting the current version promotes the newest
//! noncurrent one).
//!
//! Version ids are 32 hex characters: the version's sequence number, then 16 random ones, so a
//! lookup by id is a point read.

use std::sync::atomic::{AtomicU64, Ordering};

use lakebox_core::{ServiceError, ids};
use lakebox_store::StoreError;
use lakebox_store::kv::WriteBatch;

use crate::errors;
use crate::store::{ObjectRecord, Segment};

pub const VERSIONS: &str = "versions";
pub const ENABLED: &str = "Enabled";

static LAST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A sequence number that increases across calls and restarts (microseconds, bumped on ties).
pub fn next_seq(now_millis: i64) -> u64 {
    let candidate = (now_millis.max(0) as u64) * 1000;
    let mut last = LAST_SEQ.load(Ordering::SeqCst);
    loop {
        let next = candidate.max(last + 1);
        match LAST_SEQ.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

pub fn new_version_id(seq: u64) -> String {
    format!("{seq:016x}{}", ids::random_hex(16))
}

/// The sequence number inside one of our version ids.
pub fn seq_of(version_id: &str) -> Option<u64> {
    (version_id.len() == 32 && version_id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(&version_id[..16], 16).ok())
        .flatten()
}

/// Checks a `versionId` parameter: `null` or one of ours.
pub fn validate_version_id(v: &str) -> Result<(), ServiceError> {
    if v == "null" || seq_of(v).is_some() {
        Ok(())
    } else {
        Err(errors::invalid_argument(
            "Invalid version id specified",
            "versionId",
            v,
        ))
    }
}

/// The id as S3 reports it.
pub fn reported_id(rec: &ObjectRecord) -> &str {
    rec.version_id.as_deref().unwrap_or("null")
}

pub fn versions_prefix(object_key: &[u8]) -> Vec<u8> {
    let mut k = object_key.to_vec();
    k.push(0);
    k
}

fn version_key(object_key: &[u8], seq: u64) -> Vec<u8> {
    let mut k = versions_prefix(object_key);
    k.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
    k
}

fn encode(rec: &ObjectRecord) -> Vec<u8> {
    serde_json::to_vec(rec).expect("records always serialize")
}

fn decode(v: &[u8]) -> Result<ObjectRecord, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("object record: {e}")))
}

/// Removes a version's data inside the transaction: inline rows now, files (returned) after
/// commit.
pub fn drop_data(b: &mut WriteBatch<'_>, segments: &[Segment]) -> Result<Vec<String>, StoreError> {
    let mut files = Vec::new();
    for s in segments {
        if s.inline {
            b.delete(crate::store::INLINE, s.blob.as_bytes())?;
        } else {
            files.push(s.blob.clone());
        }
    }
    Ok(files)
}

/// Makes `new` the current version at `okey` under the bucket's versioning state, keeping or
/// dropping the version it replaces as S3 does. Returns the record as stored and blob files to
/// delete after commit.
pub fn install_current(
    b: &mut WriteBatch<'_>,
    versioning: Option<&str>,
    okey: &[u8],
    mut new: ObjectRecord,
    old: Option<ObjectRecord>,
    now_millis: i64,
) -> Result<(ObjectRecord, Vec<String>), StoreError> {
    let mut files = Vec::new();
    new.version_seq = next_seq(now_millis);
    match versioning {
        None => {
            new.version_id = None;
            if let Some(o) = old {
                files.extend(drop_data(b, &o.segments)?);
            }
        }
        Some(ENABLED) => {
            new.version_id = Some(new_version_id(new.version_seq));
            if let Some(o) = old {
                b.put(VERSIONS, &version_key(okey, o.version_seq), &encode(&o))?;
            }
        }
        Some(_) => {
            // Suspended: the new version is the `null` version, replacing any other.
            new.version_id = None;
            if let Some(o) = old {
                if o.version_id.is_none() {
                    files.extend(drop_data(b, &o.segments)?);
                } else {
                    b.put(VERSIONS, &version_key(okey, o.version_seq), &encode(&o))?;
                }
            }
            for (k, v) in b.scan_prefix(VERSIONS, &versions_prefix(okey))? {
                let rec = decode(&v)?;
                if rec.version_id.is_none() {
                    files.extend(drop_data(b, &rec.segments)?);
                    b.delete(VERSIONS, &k)?;
                }
            }
        }
    }
    b.put(crate::store::OBJECTS, okey, &encode(&new))?;
    Ok((new, files))
}

/// A delete marker for `key`.
pub fn delete_marker(key: &str, now_millis: i64) -> ObjectRecord {
    ObjectRecord {
        key: key.to_owned(),
        size: 0,
        etag: String::new(),
        last_modified_millis: now_millis,
        content: Default::default(),
        user_metadata: Vec::new(),
        storage_class: "STANDARD".into(),
        checksum: None,
        segments: Vec::new(),
        parts_count: None,
        parts: Vec::new(),
        tags: Vec::new(),
        version_id: None,
        delete_marker: true,
        version_seq: 0,
        restore: None,
        lock: None,
        acl: None,
        sse: None,
    }
}

/// Finds a version (current or not) by its reported id.
pub fn find_version(
    b: &WriteBatch<'_>,
    okey: &[u8],
    version_id: &str,
) -> Result<Option<(Vec<u8>, ObjectRecord, bool)>, StoreError> {
    if let Some(v) = b.get(crate::store::OBJECTS, okey)? {
        let cur = decode(&v)?;
        if reported_id(&cur) == version_id {
            return Ok(Some((okey.to_vec(), cur, true)));
        }
    }
    if version_id == "null" {
        for (k, v) in b.scan_prefix(VERSIONS, &versions_prefix(okey))? {
            let rec = decode(&v)?;
            if rec.version_id.is_none() {
                return Ok(Some((k, rec, false)));
            }
        }
        return Ok(None);
    }
    let Some(seq) = seq_of(version_id) else {
        return Ok(None);
    };
    let k = version_key(okey, seq);
    match b.get(VERSIONS, &k)? {
        Some(v) => {
            let rec = decode(&v)?;
            Ok((reported_id(&rec) == version_id).then_some((k, rec, false)))
        }
        None => Ok(None),
    }
}

/// Permanently deletes one version. Deleting the current version promotes the newest
/// noncurrent one. Returns the deleted record and files to delete after commit.
pub fn remove_version(
    b: &mut WriteBatch<'_>,
    okey: &[u8],
    version_id: &str,
) -> Result<Option<(ObjectRecord, Vec<String>)>, StoreError> {
    let Some((k, rec, current)) = find_version(b, okey, version_id)? else {
        return Ok(None);
    };
    let files = drop_data(b, &rec.segments)?;
    if current {
        b.delete(crate::store::OBJECTS, okey)?;
        if let Some((nk, nv)) = b
            .scan_prefix(VERSIONS, &versions_prefix(okey))?
            .into_iter()
            .next()
        {
            b.delete(VERSIONS, &nk)?;
            b.put(crate::store::OBJECTS, okey, &nv)?;
        }
    } else {
        b.delete(VERSIONS, &k)?;
    }
    Ok(Some((rec, files)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_increase_and_ids_round_trip() {
        let a = next_seq(1_000);
        let b = next_seq(1_000);
        assert!(b > a);
        let id = new_version_id(b);
        assert_eq!(seq_of(&id), Some(b));
        assert!(validate_version_id(&id).is_ok());
        assert!(validate_version_id("null").is_ok());
        assert!(validate_version_id("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY").is_err());
    }

    #[test]
    fn version_keys_sort_newest_first_within_a_key_and_by_key_across() {
        let a = version_key(b"b/a", 5);
        let a_newer = version_key(b"b/a", 9);
        let ab = version_key(b"b/ab", 1);
        let a_slash = version_key(b"b/a/x", 1);
        assert!(a_newer < a);
        assert!(a < a_slash && a < ab);
    }
}
