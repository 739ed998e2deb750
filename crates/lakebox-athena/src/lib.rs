//! Amazon Athena for Lakebox, the API around the engine: workgroups (with the implicit
//! `primary`), named queries, prepared statements, tags, and the data catalog
//! (`AwsDataCatalog`, read from Lakebox's Glue catalog in-process).
//!
//! Query execution (StartQueryExecution and its family) arrives with the DataFusion engine,
//! in its own crate so this one stays light; until then those operations answer
//! `UnknownOperationException` with a message saying so.

mod metadata;
mod store;
mod workgroups;

use std::path::Path;
use std::sync::Arc;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_gateway::service::BoxFuture;
use lakebox_gateway::{RpcRequest, RpcResponse, RpcService};
use lakebox_glue::Catalog;
use lakebox_store::StoreError;
use serde_json::Value;

pub struct Athena {
    store: Arc<store::Store>,
    catalog: Arc<Catalog>,
}

impl Athena {
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, catalog: Arc<Catalog>) -> Result<Self, StoreError> {
        Ok(Athena {
            store: Arc::new(store::Store::open(&dir.join("athena.redb"), clock)?),
            catalog,
        })
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
                        format!(
                            "Operation {other} is not supported by Lakebox's Athena yet (query execution arrives with its SQL engine)."
                        ),
                    ));
                }
            };
            req.reply_value(out)
        })
    }
}
