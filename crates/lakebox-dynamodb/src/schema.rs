//! Key schemas of tables and their indexes: which attributes make an item's key, the checks
//! DynamoDB makes of keys (with its messages), and the byte keys items are stored under.
//!
//! An item of a table is stored under `h(pk) ‖ enc(pk) ‖ enc(sk)`, where `enc` is
//! order-preserving and self-delimiting ([`AttributeValue::key_bytes`]) and `h` a 32-bit hash
//! of the partition key: a partition's items are contiguous and in sort-key order (a Query
//! reads one span), and partitions are spread over the hash space as on AWS (a Scan
//! `Segment` is one slice of it). An index entry is stored under the index's key followed by
//! the table's key, so items with equal index keys stay apart.

use serde::{Deserialize, Serialize};

use crate::value::{AttributeValue, Item};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    pub name: String,
    /// "S", "N" or "B".
    pub ty: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexProjection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub global: bool,
    pub schema: KeySchema,
    pub projection: IndexProjection,
}

/// Most bytes of a partition key value, and of a sort key value.
const MAX_HASH_KEY_BYTES: usize = 2048;
const MAX_RANGE_KEY_BYTES: usize = 1024;

const INVALID: &str = "One or more parameter values were invalid: ";

fn key_value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        other => other.size(),
    }
}

impl KeySchema {
    pub fn attrs(&self) -> impl Iterator<Item = &KeyAttr> {
        std::iter::once(&self.hash).chain(self.range.as_ref())
    }

    pub fn is_key(&self, name: &str) -> bool {
        self.attrs().any(|a| a.name == name)
    }

    /// A `Key` parameter (GetItem, DeleteItem, UpdateItem, batch keys): exactly the key's
    /// attributes, of the key's types.
    pub fn check_key(&self, key: &Item) -> Result<(), String> {
        let matches = key.len() == self.attrs().count()
            && self
                .attrs()
                .all(|a| key.get(&a.name).is_some_and(|v| v.type_name() == a.ty));
        if !matches {
            return Err("The provided key element does not match the schema".into());
        }
        self.check_key_values(key)
    }

    /// An item being written: it holds the key's attributes, of the key's types.
    pub fn check_item(&self, item: &Item) -> Result<(), String> {
        for a in self.attrs() {
            match item.get(&a.name) {
                None => return Err(format!("{INVALID}Missing the key {} in the item", a.name)),
                Some(v) if v.type_name() != a.ty => {
                    return Err(format!(
                        "{INVALID}Type mismatch for key {} expected: {} actual: {}",
                        a.name,
                        a.ty,
                        v.type_name()
                    ));
                }
                Some(_) => {}
            }
        }
        self.check_key_values(item)
    }

    fn check_key_values(&self, item: &Item) -> Result<(), String> {
        for a in self.attrs() {
            let v = &item[&a.name];
            if key_value_bytes(v) == 0 && matches!(v, AttributeValue::S(_) | AttributeValue::B(_)) {
                return Err(format!(
                    "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {}",
                    if a.ty == "S" { "string" } else { "binary" },
                    a.name
                ));
            }
        }
        if key_value_bytes(&item[&self.hash.name]) > MAX_HASH_KEY_BYTES {
            return Err(format!(
                "{INVALID}Size of hashkey has exceeded the maximum size limit of{MAX_HASH_KEY_BYTES} bytes"
            ));
        }
        if let Some(r) = &self.range
            && key_value_bytes(&item[&r.name]) > MAX_RANGE_KEY_BYTES
        {
            return Err(format!(
                "{INVALID}Aggregated size of all range keys has exceeded the size limit of {MAX_RANGE_KEY_BYTES} bytes"
            ));
        }
        Ok(())
    }

    /// The key attributes of `item` (which holds them).
    pub fn key_of(&self, item: &Item) -> Item {
        self.attrs()
            .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
            .collect()
    }

    /// `h(pk) ‖ enc(pk)`: the prefix of every stored key in this item's partition.
    pub fn partition_prefix(&self, pk: &AttributeValue) -> Vec<u8> {
        let mut enc = Vec::with_capacity(16);
        pk.key_bytes(&mut enc);
        let mut out = Vec::with_capacity(enc.len() + 4);
        out.extend_from_slice(&fnv32(&enc).to_be_bytes());
        out.extend_from_slice(&enc);
        out
    }

    /// The stored key of an item holding this schema's attributes (`None` if it lacks one:
    /// an item that is not in a sparse index).
    pub fn storage_key(&self, item: &Item) -> Option<Vec<u8>> {
        let mut out = self.partition_prefix(item.get(&self.hash.name)?);
        if let Some(r) = &self.range {
            item.get(&r.name)?.key_bytes(&mut out);
        }
        Some(out)
    }
}

/// FNV-1a: a stable hash (the stored layout depends on it), spread well enough.
fn fnv32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

impl IndexDef {
    /// Where an item goes in this index: `None` when the item lacks the index's key (sparse
    /// indexes).
    pub fn entry_key(&self, table: &KeySchema, item: &Item) -> Option<Vec<u8>> {
        let mut key = self.schema.storage_key(item)?;
        for a in table.attrs() {
            item.get(&a.name)?.key_bytes(&mut key);
        }
        Some(key)
    }

    /// The attributes this index keeps of an item.
    pub fn project(&self, table: &KeySchema, item: &Item) -> Item {
        match &self.projection {
            IndexProjection::All => item.clone(),
            IndexProjection::KeysOnly | IndexProjection::Include(_) => item
                .iter()
                .filter(|(k, _)| {
                    table.is_key(k)
                        || self.schema.is_key(k)
                        || matches!(&self.projection, IndexProjection::Include(names) if names.contains(k))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// An item written to the table: its index key attributes, where present, must have the
    /// index's types and not be empty.
    pub fn check_item(&self, item: &Item) -> Result<(), String> {
        for a in self.schema.attrs() {
            let Some(v) = item.get(&a.name) else {
                continue;
            };
            if v.type_name() != a.ty {
                return Err(format!(
                    "{INVALID}Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    a.name,
                    a.ty,
                    v.type_name(),
                    self.name
                ));
            }
            if key_value_bytes(v) == 0 {
                return Err(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                    self.name, a.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> KeySchema {
        KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: "S".into(),
            },
            range: Some(KeyAttr {
                name: "sk".into(),
                ty: "N".into(),
            }),
        }
    }

    fn item(json: &str) -> Item {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn partition_items_are_contiguous_and_sorted() {
        let s = schema();
        let k = |sk: &str| {
            s.storage_key(&item(&format!(r#"{{"pk":{{"S":"a"}},"sk":{{"N":"{sk}"}}}}"#)))
                .unwrap()
        };
        let prefix = s.partition_prefix(&AttributeValue::S("a".into()));
        assert!(k("-5") < k("2") && k("2") < k("10"));
        assert!(k("10").starts_with(&prefix));
        let other = s
            .storage_key(&item(r#"{"pk":{"S":"ab"},"sk":{"N":"1"}}"#))
            .unwrap();
        assert!(!other.starts_with(&prefix));
    }

    #[test]
    fn key_checks_in_dynamodb_words() {
        let s = schema();
        assert_eq!(
            s.check_key(&item(r#"{"pk":{"S":"a"}}"#)).unwrap_err(),
            "The provided key element does not match the schema"
        );
        assert_eq!(
            s.check_item(&item(r#"{"pk":{"S":"a"}}"#)).unwrap_err(),
            "One or more parameter values were invalid: Missing the key sk in the item"
        );
        assert_eq!(
            s.check_item(&item(r#"{"pk":{"N":"1"},"sk":{"N":"1"}}"#))
                .unwrap_err(),
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"
        );
        assert!(
            s.check_item(&item(r#"{"pk":{"S":""},"sk":{"N":"1"}}"#))
                .unwrap_err()
                .ends_with("empty string value. Key: pk")
        );
    }
}
