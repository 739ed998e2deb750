//! AWS Glue for Lakebox: the Data Catalog (databases, tables with versions, partitions and
//! partition indexes) and crawlers that infer tables from data in Lakebox S3.
//!
//! - [`catalog::Catalog`]: the catalog as a Rust API; Athena and Firehose call it directly.
//! - [`expr`]: Glue's partition predicate language.
//! - [`api`]: the catalog operations over awsJson 1.1.

pub mod api;
pub mod catalog;
mod errors;
pub mod expr;
pub mod model;
mod paging;

use std::path::Path;
use std::sync::Arc;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_gateway::service::BoxFuture;
use lakebox_gateway::{RpcRequest, RpcResponse, RpcService};
use serde_json::Value;

pub use catalog::{Catalog, Scope};

pub struct Glue {
    catalog: Arc<Catalog>,
}

impl Glue {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Self, lakebox_store::StoreError> {
        Ok(Glue {
            catalog: Arc::new(Catalog::open(&dir.join("catalog.redb"), clock)?),
        })
    }

    /// The catalog, for services that read and write table definitions in-process.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }
}

/// Drops `null` members so that absent outputs (a last page's `NextToken`) are absent on the
/// wire, as AWS sends them.
fn reply(req: &RpcRequest, mut v: Value) -> Result<RpcResponse, ServiceError> {
    if let Value::Object(m) = &mut v {
        m.retain(|_, v| !v.is_null());
    }
    req.reply(&v)
}

impl RpcService for Glue {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        Box::pin(async move {
            let c = &*self.catalog;
            let out = match req.operation.as_str() {
                "CreateDatabase" => api::create_database(c, &ctx, req.decode()?).await?,
                "GetDatabase" => api::get_database(c, &ctx, req.decode()?)?,
                "GetDatabases" => api::get_databases(c, &ctx, req.decode()?)?,
                "UpdateDatabase" => api::update_database(c, &ctx, req.decode()?).await?,
                "DeleteDatabase" => api::delete_database(c, &ctx, req.decode()?).await?,
                "CreateTable" => api::create_table(c, &ctx, req.decode()?).await?,
                "GetTable" => api::get_table(c, &ctx, req.decode()?)?,
                "GetTables" => api::get_tables(c, &ctx, req.decode()?)?,
                "UpdateTable" => api::update_table(c, &ctx, req.decode()?).await?,
                "DeleteTable" => api::delete_table(c, &ctx, req.decode()?).await?,
                "BatchDeleteTable" => api::batch_delete_table(c, &ctx, req.decode()?).await?,
                "GetTableVersions" => api::get_table_versions(c, &ctx, req.decode()?)?,
                "GetTableVersion" => api::get_table_version(c, &ctx, req.decode()?)?,
                "DeleteTableVersion" => api::delete_table_version(c, &ctx, req.decode()?).await?,
                "BatchDeleteTableVersion" => api::batch_delete_table_version(c, &ctx, req.decode()?).await?,
                "SearchTables" => api::search_tables(c, &ctx, req.decode()?)?,
                "CreatePartition" => api::create_partition(c, &ctx, req.decode()?).await?,
                "BatchCreatePartition" => api::batch_create_partition(c, &ctx, req.decode()?).await?,
                "GetPartition" => api::get_partition(c, &ctx, req.decode()?)?,
                "GetPartitions" => api::get_partitions(c, &ctx, req.decode()?)?,
                "BatchGetPartition" => api::batch_get_partition(c, &ctx, req.decode()?)?,
                "UpdatePartition" => api::update_partition(c, &ctx, req.decode()?).await?,
                "BatchUpdatePartition" => api::batch_update_partition(c, &ctx, req.decode()?).await?,
                "DeletePartition" => api::delete_partition(c, &ctx, req.decode()?).await?,
                "BatchDeletePartition" => api::batch_delete_partition(c, &ctx, req.decode()?).await?,
                "CreatePartitionIndex" => api::create_partition_index(c, &ctx, req.decode()?).await?,
                "GetPartitionIndexes" => api::get_partition_indexes(c, &ctx, req.decode()?)?,
                "DeletePartitionIndex" => api::delete_partition_index(c, &ctx, req.decode()?).await?,
                other => {
                    return Err(ServiceError::client(
                        "UnknownOperationException",
                        format!("Operation {other} is not supported by Lakebox's Glue yet."),
                    ));
                }
            };
            reply(&req, out)
        })
    }
}
