//! Athena's durable state: workgroups, named queries, prepared statements and tags, per
//! account and region, in one metadata store.

use std::sync::Arc;

use lakebox_core::{Clock, ServiceError};
use lakebox_store::{MetaStore, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const WORKGROUPS: &str = "workgroups";
pub const NAMED_QUERIES: &str = "named_queries";
pub const NAMED_QUERY_TOKENS: &str = "named_query_tokens";
pub const PREPARED: &str = "prepared_statements";
pub const TAGS: &str = "tags";

pub struct Store {
    pub kv: MetaStore,
    pub clock: Arc<dyn Clock>,
}

pub fn internal(e: impl std::fmt::Display + 'static) -> ServiceError {
    if lakebox_store::space::is_full_error(&e) {
        return ServiceError::disk_full();
    }
    ServiceError::new("InternalServerException", 500, e.to_string())
}

pub fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::client("InvalidRequestException", message)
}

/// `account \0 region \0 parts…`
pub fn key(account: &str, region: &str, parts: &[&str]) -> Vec<u8> {
    let mut k = format!("{account}\0{region}");
    for p in parts {
        k.push('\0');
        k.push_str(p);
    }
    k.into_bytes()
}

pub fn prefix(account: &str, region: &str, parts: &[&str]) -> Vec<u8> {
    let mut k = key(account, region, parts);
    k.push(0);
    k
}

pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(v: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(v).map_err(internal)
}

impl Store {
    pub fn open(path: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Ok(Store {
            kv: MetaStore::open(path)?,
            clock,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub fn get<T: DeserializeOwned>(&self, table: &str, key: &[u8]) -> Result<Option<T>, ServiceError> {
        match self.kv.get(table, key).map_err(internal)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn scan<T: DeserializeOwned>(&self, table: &str, prefix: &[u8]) -> Result<Vec<T>, ServiceError> {
        let rows = self.kv.read(|r| r.scan_prefix(table, prefix)).map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }
}

/// [`lakebox_core::paging::page`] over a request's `NextToken` and `MaxResults` (the model
/// bounds MaxResults; `default` is the operation's page size when none is given).
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max_results: Option<i32>,
    default: usize,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let max = max_results.map_or(default, |n| n.max(1) as usize);
    lakebox_core::paging::page(items, key, token, max).map_err(|_| invalid("Invalid NextToken."))
}
