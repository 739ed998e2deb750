//! SSE-C: server-side encryption with a key the client sends on every request. Lakebox keeps
//! only the key's MD5 (to check later requests against); the data keys are derived from the
//! customer key, so an object is unreadable without it.

use base64::Engine;
use lakebox_core::ServiceError;
use md5::Digest as _;

use crate::api::S3Request;
use crate::errors;
use crate::sse::KeySource;
use crate::store::{ObjectRecord, SseInfo};

/// The headers of the object being written or read.
pub const OBJECT: &str = "x-amz-server-side-encryption-customer-";
/// The headers of a copy's source object.
pub const COPY_SOURCE: &str = "x-amz-copy-source-server-side-encryption-customer-";

/// A customer key, validated against its MD5.
#[derive(Clone)]
pub struct CustomerKey {
    pub key: [u8; 32],
    /// Base64 MD5 of the key, as the client sent it.
    pub md5: String,
}

impl CustomerKey {
    pub fn sse_info(&self) -> SseInfo {
        SseInfo {
            algorithm: "AES256".into(),
            kms_key_id: None,
            customer_key_md5: Some(self.md5.clone()),
        }
    }
}

/// The customer key a request carries under `prefix` (`OBJECT` or `COPY_SOURCE`), if any.
pub fn from_request(req: &S3Request, prefix: &str) -> Result<Option<CustomerKey>, ServiceError> {
    let get = |name: &str| req.header(&format!("{prefix}{name}")).map(str::trim);
    let (alg, key, md5) = (get("algorithm"), get("key"), get("key-MD5"));
    if alg.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    // AWS refuses customer keys sent in the clear; Lakebox serves plain HTTP, so it accepts
    // them only from the machine itself.
    if !req.peer_is_loopback {
        return Err(errors::invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    let alg_header = format!("{prefix}algorithm");
    let Some(alg) = alg else {
        return Err(errors::invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
            &alg_header,
            "null",
        ));
    };
    if alg != "AES256" {
        return Err(ServiceError::client(
            "InvalidEncryptionAlgorithmError",
            "The encryption request you specified is not valid. The valid value is AES256.",
        )
        .with_extra("ArgumentName", &alg_header)
        .with_extra("ArgumentValue", alg));
    }
    let key_header = format!("{prefix}key");
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(key) = key else {
        return Err(errors::invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
            &key_header,
            "null",
        ));
    };
    let key: [u8; 32] = b64
        .decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| {
            errors::invalid_argument(
                "The secret key was invalid for the specified algorithm.",
                &key_header,
                "null",
            )
        })?;
    let actual = b64.encode(md5::Md5::digest(key));
    match md5 {
        Some(given) if given != actual => Err(errors::invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            &format!("{prefix}key-MD5"),
            given,
        )),
        _ => Ok(Some(CustomerKey { key, md5: actual })),
    }
}

/// The keys to read `record` with, given the customer key the request carried (if any).
pub fn read_keys(record: &ObjectRecord, given: Option<&CustomerKey>) -> Result<KeySource, ServiceError> {
    keys_for(record.sse.as_ref(), given)
}

pub fn keys_for(sse: Option<&SseInfo>, given: Option<&CustomerKey>) -> Result<KeySource, ServiceError> {
    let stored_md5 = sse.and_then(|s| s.customer_key_md5.as_deref());
    match (stored_md5, given) {
        (None, None) => Ok(KeySource::Lakebox),
        (None, Some(_)) => Err(errors::invalid_request(
            "The encryption parameters are not applicable to this object.",
        )),
        (Some(_), None) => Err(errors::invalid_request(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (Some(stored), Some(k)) if stored == k.md5 => Ok(KeySource::Customer(k.key)),
        (Some(_), Some(_)) => Err(errors::access_denied()),
    }
}

/// The keys to write with: the customer's, else Lakebox's.
pub fn write_keys(given: Option<&CustomerKey>) -> KeySource {
    given.map_or(KeySource::Lakebox, |k| KeySource::Customer(k.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(md5: Option<&str>) -> Option<SseInfo> {
        md5.map(|m| SseInfo {
            algorithm: "AES256".into(),
            kms_key_id: None,
            customer_key_md5: Some(m.into()),
        })
    }

    #[test]
    fn read_keys_match_the_stored_md5() {
        let k = CustomerKey {
            key: [7; 32],
            md5: "abc".into(),
        };
        assert!(matches!(
            keys_for(record(None).as_ref(), None),
            Ok(KeySource::Lakebox)
        ));
        assert!(
            matches!(keys_for(record(Some("abc")).as_ref(), Some(&k)), Ok(KeySource::Customer(x)) if x == [7; 32])
        );
        assert_eq!(
            keys_for(record(Some("abc")).as_ref(), None).err().unwrap().code,
            "InvalidRequest"
        );
        assert_eq!(
            keys_for(record(None).as_ref(), Some(&k)).err().unwrap().code,
            "InvalidRequest"
        );
        assert_eq!(
            keys_for(record(Some("xyz")).as_ref(), Some(&k))
                .err()
                .unwrap()
                .status,
            403
        );
    }
}
