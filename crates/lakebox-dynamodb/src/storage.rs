//! How tables live in the service's metadata store (redb; see
//! docs/decisions/0016-dynamodb-storage.md):
//!
//! - `tables`: `account \0 region \0 name` → the table's record (JSON);
//! - `items/<uid>`: stored key ([`crate::schema`]) → the item ([`encode_item`]: its size,
//!   then its JSON);
//! - `index/<uid>/<index>`: index entry key → the item as the index projects it (the same
//!   form);
//! - `stats`: `<uid>` or `<uid>/<index>` → item count and bytes (two big-endian u64).
//!
//! A table's uid names its redb tables, so one deleted and created again under the same name
//! starts empty, and deleting drops whole redb tables. Every item write goes through
//! [`write_item`] inside one group-committed transaction, so the item, its index entries and
//! the counts change together or not at all.

use lakebox_store::kv::WriteBatch;
use lakebox_store::{Result, StoreError};

use crate::tables::TableRecord;
use crate::value::{Item, ListedItem, item_size};

pub const TABLES: &str = "tables";
const STATS: &str = "stats";

pub fn items_table(uid: &str) -> String {
    format!("items/{uid}")
}

pub fn index_table(uid: &str, index: &str) -> String {
    format!("index/{uid}/{index}")
}

/// The TTL index of a table with TTL on: `expiry seconds ‖ stored key` → nothing, so the
/// sweeper finds expired items without scanning the table.
pub fn ttl_table(uid: &str) -> String {
    format!("ttl/{uid}")
}

/// An item's expiry: its TTL attribute, a Number of epoch seconds (anything else never
/// expires, as on AWS).
pub fn expiry(table: &TableRecord, item: &Item) -> Option<u64> {
    let attr = table.ttl_attribute.as_ref()?;
    match item.get(attr)? {
        crate::value::AttributeValue::N(n) => n.parse::<f64>().ok().filter(|s| *s >= 0.0).map(|s| s as u64),
        _ => None,
    }
}

pub fn ttl_key(expiry: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&expiry.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Fills the TTL index from every item (TTL just turned on).
pub fn backfill_ttl(batch: &mut WriteBatch<'_>, table: &TableRecord) -> Result<()> {
    let mut entries = Vec::new();
    batch.range(
        &items_table(&table.uid),
        lakebox_store::KeyRange {
            start: std::ops::Bound::Unbounded,
            end: std::ops::Bound::Unbounded,
            reverse: false,
        },
        |k, v| {
            if let Some(e) = expiry(table, &decode_item(v)?) {
                entries.push(ttl_key(e, k));
            }
            Ok(true)
        },
    )?;
    let ttl = ttl_table(&table.uid);
    for k in entries {
        batch.put(&ttl, &k, &[])?;
    }
    Ok(())
}

/// First byte of a stored item with a header: [`SIZED`], its size as DynamoDB counts it (u32,
/// little-endian), then its JSON. Items written before the header existed are bare JSON
/// (`{`), and are still read.
///
/// The size up front lets a Query or Scan count its 1 MB page and its capacity without
/// decoding the item; the JSON as it is is what it answers ([`ListedItem::Stored`]).
const SIZED: u8 = 0x01;
const HEADER: usize = 5;

pub fn encode_item(item: &Item) -> Vec<u8> {
    let size = item_size(item) as u32;
    let mut out = Vec::with_capacity(HEADER + 64 + size as usize);
    out.push(SIZED);
    out.extend_from_slice(&size.to_le_bytes());
    serde_json::to_writer(&mut out, item).expect("items always serialize");
    out
}

/// The JSON of a stored item.
pub fn item_json(bytes: &[u8]) -> &[u8] {
    match bytes.first() {
        Some(&SIZED) => bytes.get(HEADER..).unwrap_or_default(),
        _ => bytes,
    }
}

pub fn decode_item(bytes: &[u8]) -> Result<Item> {
    serde_json::from_slice(item_json(bytes)).map_err(|e| StoreError::Corrupt(format!("stored item: {e}")))
}

/// A stored item's JSON (from [`item_json`]) as a Query or Scan answers it.
pub fn listed(json: &[u8]) -> Result<ListedItem> {
    ListedItem::stored(json).map_err(|e| StoreError::Corrupt(format!("stored item: {e}")))
}

/// The size DynamoDB counts for a stored item, read from its header (decoded from an item
/// stored without one).
pub fn stored_size(bytes: &[u8]) -> Result<usize> {
    match bytes {
        [SIZED, a, b, c, d, ..] => Ok(u32::from_le_bytes([*a, *b, *c, *d]) as usize),
        _ => decode_item(bytes).map(|i| item_size(&i)),
    }
}

/// Reads an item inside a write transaction (seeing the batch's own writes).
pub fn read_item(batch: &WriteBatch<'_>, table: &TableRecord, key: &[u8]) -> Result<Option<Item>> {
    batch
        .get(&items_table(&table.uid), key)?
        .map(|b| decode_item(&b))
        .transpose()
}

/// Puts (`Some`) or deletes (`None`) the item stored under `key`, keeping the indexes and the
/// counts in step.
pub fn write_item(
    batch: &mut WriteBatch<'_>,
    table: &TableRecord,
    key: &[u8],
    new: Option<&Item>,
) -> Result<()> {
    let old = read_item(batch, table, key)?;
    replace_item(batch, table, key, old.as_ref(), new)
}

/// [`write_item`] for a caller that has just read the item (`old`, in this same batch), so it
/// is not read twice.
pub fn replace_item(
    batch: &mut WriteBatch<'_>,
    table: &TableRecord,
    key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<()> {
    let items = items_table(&table.uid);
    if old.is_none() && new.is_none() {
        return Ok(());
    }
    for index in &table.indexes {
        let name = index_table(&table.uid, &index.name);
        let old_entry = old.and_then(|o| index.entry_key(&table.schema, o).map(|k| (k, o)));
        let new_entry = new.and_then(|n| index.entry_key(&table.schema, n).map(|k| (k, n)));
        let stat = format!("{}/{}", table.uid, index.name);
        if let Some((k, o)) = &old_entry {
            batch.delete(&name, k)?;
            add_stats(
                batch,
                &stat,
                -1,
                -(item_size(&index.project(&table.schema, o)) as i64),
            )?;
        }
        if let Some((k, n)) = &new_entry {
            let projected = index.project(&table.schema, n);
            batch.put(&name, k, &encode_item(&projected))?;
            add_stats(batch, &stat, 1, item_size(&projected) as i64)?;
        }
    }
    if table.ttl_attribute.is_some() {
        let ttl = ttl_table(&table.uid);
        let (was, will) = (
            old.and_then(|o| expiry(table, o)),
            new.and_then(|n| expiry(table, n)),
        );
        if was != will {
            if let Some(e) = was {
                batch.delete(&ttl, &ttl_key(e, key))?;
            }
            if let Some(e) = will {
                batch.put(&ttl, &ttl_key(e, key), &[])?;
            }
        }
    }
    let (mut count, mut bytes) = (0i64, 0i64);
    if let Some(o) = old {
        count -= 1;
        bytes -= item_size(o) as i64;
    }
    match new {
        Some(n) => {
            batch.put(&items, key, &encode_item(n))?;
            count += 1;
            bytes += item_size(n) as i64;
        }
        None => {
            batch.delete(&items, key)?;
        }
    }
    add_stats(batch, &table.uid, count, bytes)
}

pub(crate) fn add_stats(batch: &mut WriteBatch<'_>, key: &str, count: i64, bytes: i64) -> Result<()> {
    if count == 0 && bytes == 0 {
        return Ok(());
    }
    let (c, b) = batch
        .get(STATS, key.as_bytes())?
        .as_deref()
        .map(decode_stats)
        .unwrap_or((0, 0));
    let c = (c as i64 + count).max(0) as u64;
    let b = (b as i64 + bytes).max(0) as u64;
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&c.to_be_bytes());
    v.extend_from_slice(&b.to_be_bytes());
    batch.put(STATS, key.as_bytes(), &v)
}

fn decode_stats(v: &[u8]) -> (u64, u64) {
    if v.len() != 16 {
        return (0, 0);
    }
    (
        u64::from_be_bytes(v[..8].try_into().unwrap()),
        u64::from_be_bytes(v[8..].try_into().unwrap()),
    )
}

/// Item count and bytes of a table (`index: None`) or one of its indexes.
pub fn stats(meta: &lakebox_store::MetaStore, uid: &str, index: Option<&str>) -> Result<(u64, u64)> {
    let key = match index {
        Some(i) => format!("{uid}/{i}"),
        None => uid.to_owned(),
    };
    Ok(meta
        .get(STATS, key.as_bytes())?
        .as_deref()
        .map(decode_stats)
        .unwrap_or((0, 0)))
}

/// Drops everything a table stored (its items, index entries and counts).
pub fn drop_table_data(batch: &mut WriteBatch<'_>, table: &TableRecord) -> Result<()> {
    batch.freeing();
    batch.delete_table(&items_table(&table.uid))?;
    batch.delete_table(&ttl_table(&table.uid))?;
    batch.delete(STATS, table.uid.as_bytes())?;
    for index in &table.indexes {
        drop_index_data(batch, table, &index.name)?;
    }
    Ok(())
}

pub fn drop_index_data(batch: &mut WriteBatch<'_>, table: &TableRecord, index: &str) -> Result<()> {
    batch.delete_table(&index_table(&table.uid, index))?;
    batch.delete(STATS, format!("{}/{index}", table.uid).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::AttributeValue;

    fn item() -> Item {
        Item::from([
            ("pk".to_owned(), AttributeValue::S("a\"b".into())),
            ("n".to_owned(), AttributeValue::N("12345".into())),
        ])
    }

    #[test]
    fn a_stored_item_carries_its_size_before_its_json() {
        let stored = encode_item(&item());
        assert_eq!(stored_size(&stored).unwrap(), item_size(&item()));
        assert_eq!(decode_item(&stored).unwrap(), item());
        assert_eq!(item_json(&stored), serde_json::to_vec(&item()).unwrap());
    }

    #[test]
    fn items_stored_as_bare_json_before_the_header_are_still_read() {
        let bare = serde_json::to_vec(&item()).unwrap();
        assert_eq!(item_json(&bare), &bare[..]);
        assert_eq!(decode_item(&bare).unwrap(), item());
        assert_eq!(stored_size(&bare).unwrap(), item_size(&item()));
    }

    #[test]
    fn a_listed_item_answers_its_stored_json_unchanged() {
        let stored = encode_item(&item());
        let listed = listed(item_json(&stored)).unwrap();
        assert_eq!(serde_json::to_vec(&listed).unwrap(), item_json(&stored));
        assert_eq!(listed.into_item().unwrap(), item());
    }
}
