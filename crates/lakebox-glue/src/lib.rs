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
mod ops;

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use lakebox_core::{Clock, RequestContext, ServiceError};
use lakebox_service::BoxFuture;
use lakebox_service::lake::Lake;
use lakebox_service::{RpcRequest, RpcResponse, RpcService};
use lakebox_store::{MetaStore, StoreError};

pub use catalog::{Catalog, Scope};
use classifiers::Classifiers;
use crawler::Crawlers;
pub use errors::GlueError;

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

impl RpcService for Glue {
    fn call(
        self: Arc<Self>,
        ctx: RequestContext,
        req: RpcRequest,
    ) -> BoxFuture<Result<RpcResponse, ServiceError>> {
        api::dispatch(self, ctx, req)
    }
}
