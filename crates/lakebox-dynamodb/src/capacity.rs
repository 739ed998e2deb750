//! Capacity units as DynamoDB counts them, for ReturnConsumedCapacity: a read is one unit per
//! 4 KB (half for an eventually consistent read), a write one unit per 1 KB, at least one.

use crate::api::{
    Capacity, ConsumedCapacity, ItemCollectionMetrics, ReturnConsumedCapacity, ReturnItemCollectionMetrics,
};
use crate::tables::TableRecord;
use crate::value::Item;

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// The ConsumedCapacity of `units` on `table`, when the request asked for it.
pub fn consumed(
    table: &TableRecord,
    asked: Option<&ReturnConsumedCapacity>,
    units: f64,
    write: bool,
) -> Option<ConsumedCapacity> {
    let detail = match asked? {
        ReturnConsumedCapacity::Total => false,
        ReturnConsumedCapacity::Indexes => true,
        _ => return None,
    };
    let (r, w) = if write {
        (None, Some(units))
    } else {
        (Some(units), None)
    };
    Some(ConsumedCapacity {
        table_name: Some(table.name.clone()),
        capacity_units: Some(units),
        read_capacity_units: r,
        write_capacity_units: w,
        table: detail.then_some(Capacity {
            capacity_units: Some(units),
            read_capacity_units: r,
            write_capacity_units: w,
        }),
        ..Default::default()
    })
}

pub fn read(
    table: &TableRecord,
    asked: Option<&ReturnConsumedCapacity>,
    bytes: usize,
    consistent: bool,
) -> Option<ConsumedCapacity> {
    consumed(table, asked, read_units(bytes, consistent), false)
}

pub fn write(
    table: &TableRecord,
    asked: Option<&ReturnConsumedCapacity>,
    bytes: usize,
) -> Option<ConsumedCapacity> {
    consumed(table, asked, write_units(bytes), true)
}

/// ItemCollectionMetrics of a write, when asked for (`SIZE`) on a table with local secondary
/// indexes, as AWS answers: the partition key, and a size estimate in GB with AWS's 1 GB
/// granularity (Lakebox sets no 10 GB collection limit).
pub fn collection(
    table: &TableRecord,
    asked: Option<&ReturnItemCollectionMetrics>,
    key: &Item,
) -> Option<ItemCollectionMetrics> {
    if !matches!(asked, Some(ReturnItemCollectionMetrics::Size)) || !table.indexes.iter().any(|i| !i.global) {
        return None;
    }
    let hash = &table.schema.hash.name;
    Some(ItemCollectionMetrics {
        item_collection_key: Some(
            key.iter()
                .filter(|(k, _)| *k == hash)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        size_estimate_range_gb: Some(vec![0.0, 1.0]),
    })
}
