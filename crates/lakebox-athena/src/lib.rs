//! Amazon Athena for Lakebox, the API around the engine: workgroups (with the implicit
//! `primary`), named queries, prepared statements, tags, and the data catalog
//! (`AwsDataCatalog`, read from Lakebox's Glue catalog in-process).
//!
//! Queries run on `lakebox-athena-engine` (DataFusion), a separate crate so that the heavy
//! engine builds apart from this API layer; Hive DDL runs on `lakebox-athena-ddl`.

pub mod api;
mod metadata;
mod queries;
mod results;
mod session;
mod statement;
mod store;
mod workgroups;

use std::path::Path;
use std::sync::Arc;

use lakebox_athena_engine::pool::QueryPool;
use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_glue::Catalog;
use lakebox_service::BoxFuture;
use lakebox_service::lake::Lake;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};
use lakebox_store::StoreError;

use api::*;

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
        pool: Arc<QueryPool>,
    ) -> Result<Self, StoreError> {
        let store = Arc::new(store::Store::open(&dir.join("athena.redb"), clock)?);
        let engine = Arc::new(lakebox_athena_engine::Engine::new(lake.clone(), catalog.clone()));
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
    /// Finished queries publish their AWS/Athena metrics through `recorder` (in workgroups
    /// with PublishCloudWatchMetricsEnabled).
    pub fn set_metrics(&self, recorder: lakebox_service::metrics::Recorder) {
        let _ = self.queries.metrics.set(recorder);
    }

    /// S3 Select's engine: the same SQL engine, over one object at a time.
    pub fn select_engine(&self) -> Arc<dyn lakebox_service::select::SelectEngine> {
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
        api::dispatch(self, ctx, req)
    }
}

/// Each operation as the model names it, handed to the module that implements it.
impl AthenaApi for Athena {
    async fn start_query_execution(
        &self,
        ctx: &RequestContext,
        input: StartQueryExecutionInput,
    ) -> Result<StartQueryExecutionOutput, ServiceError> {
        self.queries.start(ctx, input).await
    }

    async fn get_query_execution(
        &self,
        ctx: &RequestContext,
        input: GetQueryExecutionInput,
    ) -> Result<GetQueryExecutionOutput, ServiceError> {
        self.queries.get(ctx, input).await
    }

    async fn batch_get_query_execution(
        &self,
        ctx: &RequestContext,
        input: BatchGetQueryExecutionInput,
    ) -> Result<BatchGetQueryExecutionOutput, ServiceError> {
        self.queries.batch_get(ctx, input)
    }

    async fn list_query_executions(
        &self,
        ctx: &RequestContext,
        input: ListQueryExecutionsInput,
    ) -> Result<ListQueryExecutionsOutput, ServiceError> {
        self.queries.list(ctx, input)
    }

    async fn stop_query_execution(
        &self,
        ctx: &RequestContext,
        input: StopQueryExecutionInput,
    ) -> Result<StopQueryExecutionOutput, ServiceError> {
        self.queries.stop(ctx, input).await
    }

    async fn get_query_results(
        &self,
        ctx: &RequestContext,
        input: GetQueryResultsInput,
    ) -> Result<GetQueryResultsOutput, ServiceError> {
        self.queries.results(ctx, input).await
    }

    async fn get_query_runtime_statistics(
        &self,
        ctx: &RequestContext,
        input: GetQueryRuntimeStatisticsInput,
    ) -> Result<GetQueryRuntimeStatisticsOutput, ServiceError> {
        self.queries.runtime_statistics(ctx, input)
    }

    async fn create_work_group(
        &self,
        ctx: &RequestContext,
        input: CreateWorkGroupInput,
    ) -> Result<CreateWorkGroupOutput, ServiceError> {
        workgroups::create(&self.store, ctx, input).await
    }

    async fn get_work_group(
        &self,
        ctx: &RequestContext,
        input: GetWorkGroupInput,
    ) -> Result<GetWorkGroupOutput, ServiceError> {
        workgroups::get(&self.store, ctx, input)
    }

    async fn list_work_groups(
        &self,
        ctx: &RequestContext,
        input: ListWorkGroupsInput,
    ) -> Result<ListWorkGroupsOutput, ServiceError> {
        workgroups::list(&self.store, ctx, input)
    }

    async fn update_work_group(
        &self,
        ctx: &RequestContext,
        input: UpdateWorkGroupInput,
    ) -> Result<UpdateWorkGroupOutput, ServiceError> {
        workgroups::update(&self.store, ctx, input).await
    }

    async fn delete_work_group(
        &self,
        ctx: &RequestContext,
        input: DeleteWorkGroupInput,
    ) -> Result<DeleteWorkGroupOutput, ServiceError> {
        workgroups::delete(&self.store, ctx, input).await
    }

    async fn create_named_query(
        &self,
        ctx: &RequestContext,
        input: CreateNamedQueryInput,
    ) -> Result<CreateNamedQueryOutput, ServiceError> {
        workgroups::create_named_query(&self.store, ctx, input).await
    }

    async fn get_named_query(
        &self,
        ctx: &RequestContext,
        input: GetNamedQueryInput,
    ) -> Result<GetNamedQueryOutput, ServiceError> {
        workgroups::get_named_query(&self.store, ctx, input)
    }

    async fn batch_get_named_query(
        &self,
        ctx: &RequestContext,
        input: BatchGetNamedQueryInput,
    ) -> Result<BatchGetNamedQueryOutput, ServiceError> {
        workgroups::batch_get_named_query(&self.store, ctx, input)
    }

    async fn list_named_queries(
        &self,
        ctx: &RequestContext,
        input: ListNamedQueriesInput,
    ) -> Result<ListNamedQueriesOutput, ServiceError> {
        workgroups::list_named_queries(&self.store, ctx, input)
    }

    async fn update_named_query(
        &self,
        ctx: &RequestContext,
        input: UpdateNamedQueryInput,
    ) -> Result<UpdateNamedQueryOutput, ServiceError> {
        workgroups::update_named_query(&self.store, ctx, input).await
    }

    async fn delete_named_query(
        &self,
        ctx: &RequestContext,
        input: DeleteNamedQueryInput,
    ) -> Result<DeleteNamedQueryOutput, ServiceError> {
        workgroups::delete_named_query(&self.store, ctx, input).await
    }

    async fn get_prepared_statement(
        &self,
        ctx: &RequestContext,
        input: GetPreparedStatementInput,
    ) -> Result<GetPreparedStatementOutput, ServiceError> {
        workgroups::get_prepared_statement(&self.store, ctx, input)
    }

    async fn batch_get_prepared_statement(
        &self,
        ctx: &RequestContext,
        input: BatchGetPreparedStatementInput,
    ) -> Result<BatchGetPreparedStatementOutput, ServiceError> {
        workgroups::batch_get_prepared_statement(&self.store, ctx, input)
    }

    async fn list_prepared_statements(
        &self,
        ctx: &RequestContext,
        input: ListPreparedStatementsInput,
    ) -> Result<ListPreparedStatementsOutput, ServiceError> {
        workgroups::list_prepared_statements(&self.store, ctx, input)
    }

    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceInput,
    ) -> Result<ListTagsForResourceOutput, ServiceError> {
        workgroups::list_tags(&self.store, ctx, input)
    }

    async fn list_data_catalogs(
        &self,
        ctx: &RequestContext,
        input: ListDataCatalogsInput,
    ) -> Result<ListDataCatalogsOutput, ServiceError> {
        metadata::list_data_catalogs(ctx, input)
    }

    async fn get_data_catalog(
        &self,
        ctx: &RequestContext,
        input: GetDataCatalogInput,
    ) -> Result<GetDataCatalogOutput, ServiceError> {
        metadata::get_data_catalog(ctx, input)
    }

    async fn list_databases(
        &self,
        ctx: &RequestContext,
        input: ListDatabasesInput,
    ) -> Result<ListDatabasesOutput, ServiceError> {
        metadata::list_databases(&self.catalog, ctx, input)
    }

    async fn get_database(
        &self,
        ctx: &RequestContext,
        input: GetDatabaseInput,
    ) -> Result<GetDatabaseOutput, ServiceError> {
        metadata::get_database(&self.catalog, ctx, input)
    }

    async fn list_table_metadata(
        &self,
        ctx: &RequestContext,
        input: ListTableMetadataInput,
    ) -> Result<ListTableMetadataOutput, ServiceError> {
        metadata::list_table_metadata(&self.catalog, ctx, input)
    }

    async fn get_table_metadata(
        &self,
        ctx: &RequestContext,
        input: GetTableMetadataInput,
    ) -> Result<GetTableMetadataOutput, ServiceError> {
        metadata::get_table_metadata(&self.catalog, ctx, input)
    }

    async fn create_prepared_statement(
        &self,
        ctx: &RequestContext,
        input: CreatePreparedStatementInput,
    ) -> Result<CreatePreparedStatementOutput, ServiceError> {
        let statement = workgroups::Statement {
            work_group: &input.work_group,
            name: &input.statement_name,
            query: &input.query_statement,
            description: input.description.as_deref(),
        };
        workgroups::put_prepared_statement(&self.store, ctx, statement, true).await?;
        Ok(CreatePreparedStatementOutput {})
    }

    async fn update_prepared_statement(
        &self,
        ctx: &RequestContext,
        input: UpdatePreparedStatementInput,
    ) -> Result<UpdatePreparedStatementOutput, ServiceError> {
        let statement = workgroups::Statement {
            work_group: &input.work_group,
            name: &input.statement_name,
            query: &input.query_statement,
            description: input.description.as_deref(),
        };
        workgroups::put_prepared_statement(&self.store, ctx, statement, false).await?;
        Ok(UpdatePreparedStatementOutput {})
    }

    async fn delete_prepared_statement(
        &self,
        ctx: &RequestContext,
        input: DeletePreparedStatementInput,
    ) -> Result<DeletePreparedStatementOutput, ServiceError> {
        workgroups::remove_prepared_statement(&self.store, ctx, &input.work_group, &input.statement_name)
            .await?;
        Ok(DeletePreparedStatementOutput {})
    }

    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceInput,
    ) -> Result<TagResourceOutput, ServiceError> {
        workgroups::change_tags(&self.store, ctx, &input.resource_arn, input.tags, Vec::new()).await?;
        Ok(TagResourceOutput {})
    }

    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceInput,
    ) -> Result<UntagResourceOutput, ServiceError> {
        workgroups::change_tags(&self.store, ctx, &input.resource_arn, Vec::new(), input.tag_keys).await?;
        Ok(UntagResourceOutput {})
    }
}
