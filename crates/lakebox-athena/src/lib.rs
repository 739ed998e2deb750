//! Amazon Athena for Lakebox, the API around the engine: workgroups (with the implicit
//! `primary`), named queries, prepared statements, tags, and the data catalog
//! (`AwsDataCatalog`, read from Lakebox's Glue catalog in-process).
//!
//! Queries run on `lakebox-athena-engine` (DataFusion), a separate crate so that the heavy
//! engine builds apart from this API layer; Hive DDL runs on `lakebox-athena-ddl`.

mod metadata;
mod queries;
mod results;
mod session;
mod store;
mod workgroups;

use std::path::Path;
use std::sync::Arc;

use lakebox_athena_engine::pool::QueryPool;
use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_glue::Catalog;
use lakebox_s3::lake::Lake;
use lakebox_service::BoxFuture;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};
use lakebox_store::StoreError;
use serde_json::Value;

/// Queries running at once; the rest wait QUEUED.
pub const DEFAULT_CONCURRENCY: usize = 8;

pub struct Athena {
    store: Arc<store::Store>,
    catalog: Arc<Catalog>,
    queries: Arc<queries::Queries>,
}

impl Athena {
    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        catalog: Arc<Catalog>,
        lake: Lake,
        concurrency: usize,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(store::Store::open(&dir.join("athena.redb"), clock)?);
        let engine = Arc::new(lakebox_athena_engine::Engine::new(lake.clone(), catalog.clone()));
        let pool = Arc::new(QueryPool::with_default_threads()?);
        let queries = queries::Queries::new(store.clone(), engine, catalog.clone(), lake, pool, concurrency)
            .map_err(|e| StoreError::Corrupt(e.message))?;
        Ok(Athena {
            store,
            catalog,
            queries: Arc::new(queries),
        })
    }
}

impl Athena {
    /// S3 Select's engine: the same SQL engine, over one object at a time.
    pub fn select_engine(&self) -> Arc<dyn lakebox_s3::select::SelectEngine> {
        Arc::new(lakebox_athena_engine::S3Select::new(
            self.queries.lake.clone(),
            self.queries.pool.clone(),
        ))
    }
}

impl RpcService for Athena {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        Box::pin(async move {
            let s = &*self.store;
            let c = &*self.catalog;
            let r: Value = req.decode()?;
            let out = match req.operation.as_str() {
                "StartQueryExecution" => self.queries.start(&ctx, r).await?,
                "GetQueryExecution" => self.queries.get(&ctx, r).await?,
                "BatchGetQueryExecution" => self.queries.batch_get(&ctx, r)?,
                "ListQueryExecutions" => self.queries.list(&ctx, r)?,
                "StopQueryExecution" => self.queries.stop(&ctx, r).await?,
                "GetQueryResults" => self.queries.results(&ctx, r).await?,
                "GetQueryRuntimeStatistics" => self.queries.runtime_statistics(&ctx, r)?,
                "CreateWorkGroup" => workgroups::create(s, &ctx, r).await?,
                "GetWorkGroup" => workgroups::get(s, &ctx, r)?,
                "ListWorkGroups" => workgroups::list(s, &ctx, r)?,
                "UpdateWorkGroup" => workgroups::update(s, &ctx, r).await?,
                "DeleteWorkGroup" => workgroups::delete(s, &ctx, r).await?,
                "CreateNamedQuery" => workgroups::create_named_query(s, &ctx, r).await?,
                "GetNamedQuery" => workgroups::get_named_query(s, &ctx, r)?,
                "BatchGetNamedQuery" => workgroups::batch_get_named_query(s, &ctx, r)?,
                "ListNamedQueries" => workgroups::list_named_queries(s, &ctx, r)?,
                "UpdateNamedQuery" => workgroups::update_named_query(s, &ctx, r).await?,
                "DeleteNamedQuery" => workgroups::delete_named_query(s, &ctx, r).await?,
                "CreatePreparedStatement" => workgroups::put_prepared_statement(s, &ctx, r, true).await?,
                "UpdatePreparedStatement" => workgroups::put_prepared_statement(s, &ctx, r, false).await?,
                "GetPreparedStatement" => workgroups::get_prepared_statement(s, &ctx, r)?,
                "BatchGetPreparedStatement" => workgroups::batch_get_prepared_statement(s, &ctx, r)?,
                "ListPreparedStatements" => workgroups::list_prepared_statements(s, &ctx, r)?,
                "DeletePreparedStatement" => workgroups::delete_prepared_statement(s, &ctx, r).await?,
                "TagResource" => workgroups::tag_resource(s, &ctx, r, true).await?,
                "UntagResource" => workgroups::tag_resource(s, &ctx, r, false).await?,
                "ListTagsForResource" => workgroups::list_tags(s, &ctx, r)?,
                "ListDataCatalogs" => metadata::list_data_catalogs(s, &ctx, r)?,
                "GetDataCatalog" => metadata::get_data_catalog(s, &ctx, r)?,
                "ListDatabases" => metadata::list_databases(c, &ctx, r)?,
                "GetDatabase" => metadata::get_database(c, &ctx, r)?,
                "ListTableMetadata" => metadata::list_table_metadata(c, &ctx, r)?,
                "GetTableMetadata" => metadata::get_table_metadata(c, &ctx, r)?,
                other => {
                    return Err(ServiceError::client(
                        "UnknownOperationException",
                        format!("Operation {other} is not supported by Lakebox's Athena yet."),
                    ));
                }
            };
            req.reply_value(out)
        })
    }
}
