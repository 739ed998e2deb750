//! Records kept by ARN in the store as JSON — exports, imports, backups — and their listing:
//! the caller's account and region, in ARN order, a page at a time.

use lakebox_core::{RequestContext, ServiceError};
use lakebox_store::MetaStore;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors;

pub fn save<T: Serialize>(meta: &MetaStore, table: &str, arn: &str, record: &T) -> Result<(), ServiceError> {
    let value = serde_json::to_vec(record).map_err(errors::internal)?;
    meta.put(table, arn.as_bytes(), &value).map_err(errors::store)
}

pub fn load<T: DeserializeOwned>(
    meta: &MetaStore,
    table: &str,
    arn: &str,
) -> Result<Option<T>, ServiceError> {
    Ok(meta
        .get(table, arn.as_bytes())
        .map_err(errors::store)?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

/// The records of the caller's tables that `keep` keeps, after the ARN `after`, at most `max`;
/// and the ARN to continue after when more remain.
pub fn page<T: DeserializeOwned>(
    meta: &MetaStore,
    table: &str,
    ctx: &RequestContext,
    keep: impl Fn(&T) -> bool,
    after: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let prefix = format!("arn:aws:dynamodb:{}:{}:table/", ctx.region, ctx.account_id);
    let mut rows: Vec<(String, T)> = meta
        .scan_prefix(table, prefix.as_bytes(), None, usize::MAX)
        .map_err(errors::store)?
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, serde_json::from_slice(&v).ok()?)))
        .filter(|(k, r)| after.is_none_or(|a| k.as_str() > a) && keep(r))
        .collect();
    let more = rows.len() > max;
    rows.truncate(max);
    let next = if more {
        rows.last().map(|(k, _)| k.clone())
    } else {
        None
    };
    Ok((rows.into_iter().map(|(_, r)| r).collect(), next))
}
