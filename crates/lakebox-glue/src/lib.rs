//! AWS Glue for Lakebox: the Data Catalog (databases, tables with versions, partitions and
//! partition indexes) and crawlers that infer tables from data in Lakebox S3.
//!
//! - [`catalog::Catalog`]: the catalog as a Rust API; Athena and Firehose call it directly.
//! - [`expr`]: Glue's partition predicate language.
//! - [`api`]: the catalog operations over awsJson 1.1.
//! - crawlers (`crawler`, `crawl`) with [`infer`]'s classifiers and [`cron`] schedules.

pub mod api;
pub mod catalog;
mod classifiers;
mod crawl;
mod crawler;
pub mod cron;
mod errors;
pub mod expr;
pub mod infer;
pub mod model;

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_s3::lake::Lake;
use lakebox_service::BoxFuture;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};
use lakebox_store::{MetaStore, StoreError};
use serde::Deserialize;

pub use catalog::{Catalog, Scope};
use classifiers::Classifiers;
use crawler::Crawlers;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CrawlerNameInput {
    crawler_name: String,
}

pub struct Glue {
    catalog: Arc<Catalog>,
    classifiers: Arc<Classifiers>,
    crawlers: Arc<Crawlers>,
}

/// Knobs of the Glue service.
#[derive(Debug, Clone, Default)]
pub struct GlueSettings {
    /// Shortest time a crawl stays RUNNING (0 in normal use).
    pub crawl_min_millis: u64,
}

fn open_error(e: ServiceError) -> StoreError {
    StoreError::Corrupt(e.message)
}

impl Glue {
    pub fn open(
        dir: &Path,
        clock: Arc<dyn Clock>,
        lake: Lake,
        settings: GlueSettings,
        pool: Arc<lakebox_service::pool::QueryPool>,
    ) -> Result<Self, StoreError> {
        // One store (one file, one group-commit writer) for the catalog, crawlers and
        // classifiers.
        let store = Arc::new(MetaStore::open(&dir.join("glue.redb"))?);
        let catalog = Arc::new(Catalog::new(store.clone(), clock.clone()));
        let classifiers = Arc::new(Classifiers::new(store.clone(), clock.clone()));
        let crawlers = Crawlers::new(
            store,
            catalog.clone(),
            classifiers.clone(),
            lake,
            clock,
            Duration::from_millis(settings.crawl_min_millis),
            pool,
        )
        .map_err(open_error)?;
        Ok(Glue {
            catalog,
            classifiers,
            crawlers,
        })
    }

    /// The catalog, for services that read and write table definitions in-process.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// Starts the crawler scheduler (call once, inside the runtime).
    pub fn start_background_work(&self) -> tokio::task::JoinHandle<()> {
        self.crawlers.spawn_scheduler()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageInput {
    max_results: Option<i64>,
    next_token: Option<String>,
    tags: Option<std::collections::BTreeMap<String, String>>,
    crawler_name_list: Option<Vec<String>>,
}

impl PageInput {
    fn size(&self) -> usize {
        self.max_results
            .filter(|n| *n > 0)
            .map(|n| n.min(1000) as usize)
            .unwrap_or(100)
    }
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
                "CreateClassifier" => self.classifiers.create(&ctx, req.decode()?).await?,
                "GetClassifier" => self.classifiers.get(&ctx, &req.decode::<NameInput>()?.name)?,
                "GetClassifiers" => {
                    let p: PageInput = req.decode()?;
                    self.classifiers.list(&ctx, p.next_token.as_deref(), p.size())?
                }
                "UpdateClassifier" => self.classifiers.update(&ctx, req.decode()?).await?,
                "DeleteClassifier" => {
                    self.classifiers
                        .delete(&ctx, &req.decode::<NameInput>()?.name)
                        .await?
                }
                "CreateCrawler" => self.crawlers.create(&ctx, req.decode()?).await?,
                "GetCrawler" => self.crawlers.get(&ctx, &req.decode::<NameInput>()?.name)?,
                "GetCrawlers" => {
                    let p: PageInput = req.decode()?;
                    self.crawlers.list_full(&ctx, p.next_token.as_deref(), p.size())?
                }
                "ListCrawlers" => {
                    let p: PageInput = req.decode()?;
                    self.crawlers
                        .list_names(&ctx, p.next_token.as_deref(), p.size(), p.tags.clone())?
                }
                "GetCrawlerMetrics" => {
                    let p: PageInput = req.decode()?;
                    self.crawlers.metrics(
                        &ctx,
                        p.crawler_name_list.clone(),
                        p.next_token.as_deref(),
                        p.size(),
                    )?
                }
                "UpdateCrawler" => self.crawlers.update(&ctx, req.decode()?).await?,
                "DeleteCrawler" => {
                    self.crawlers
                        .delete(&ctx, &req.decode::<NameInput>()?.name)
                        .await?
                }
                "StartCrawler" => {
                    self.crawlers
                        .start(&Scope::from(&ctx), &req.decode::<NameInput>()?.name)
                        .await?
                }
                "StopCrawler" => self.crawlers.stop(&ctx, &req.decode::<NameInput>()?.name).await?,
                "StartCrawlerSchedule" => {
                    let n = req.decode::<CrawlerNameInput>()?.crawler_name;
                    self.crawlers.set_schedule_state(&ctx, &n, true).await?
                }
                "StopCrawlerSchedule" => {
                    let n = req.decode::<CrawlerNameInput>()?.crawler_name;
                    self.crawlers.set_schedule_state(&ctx, &n, false).await?
                }
                other => {
                    return Err(ServiceError::client(
                        "UnknownOperationException",
                        format!("Operation {other} is not supported by Lakebox's Glue yet."),
                    ));
                }
            };
            req.reply_value(out)
        })
    }
}
