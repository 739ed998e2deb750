//! The threads heavy work runs on — SQL (Athena, S3 Select) and the Glue crawler's reads: a
//! runtime of its own, apart from the threads that answer requests, so a long or heavy query or
//! crawl cannot stall S3, Kinesis or the health endpoint, and with stacks large enough for the
//! deepest statement the SQL depth limits let through (planning and optimising recurse once per
//! level of an expression). One pool serves the whole process.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Each query thread's stack. Reserved address space, touched only as deep as a query goes;
/// a statement at the depth limit needs well under a quarter of it in a debug build.
pub const QUERY_STACK_BYTES: usize = 256 * 1024 * 1024;

pub struct QueryPool {
    runtime: Option<Runtime>,
}

impl QueryPool {
    /// A pool of `threads` worker threads (DataFusion spreads one query's partitions over them).
    pub fn new(threads: usize) -> std::io::Result<QueryPool> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("lakebox-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()?;
        Ok(QueryPool {
            runtime: Some(runtime),
        })
    }

    /// One worker per core.
    pub fn with_default_threads() -> std::io::Result<QueryPool> {
        QueryPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    pub fn handle(&self) -> &Handle {
        self.runtime.as_ref().expect("alive until dropped").handle()
    }

    /// Runs `work` on the pool; dropping the returned future stops it (a client that went away
    /// does not leave its query running).
    pub fn run<F>(&self, work: F) -> PoolTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        PoolTask(self.handle().spawn(work))
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Dropped from async code at shutdown: a plain drop would block there and panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Work running on the pool; aborted when dropped.
pub struct PoolTask<T>(JoinHandle<T>);

impl<T> PoolTask<T> {
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.0.abort_handle()
    }
}

impl<T> Future for PoolTask<T> {
    /// `None` when the work panicked or was aborted.
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        Pin::new(&mut self.0).poll(cx).map(Result::ok)
    }
}

impl<T> Drop for PoolTask<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_pool_and_stops_when_dropped() {
        let pool = QueryPool::new(1).unwrap();
        let name = pool
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await;
        assert_eq!(name, Some(Some("lakebox-query".to_owned())));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = pool.run(async move {
            let _keep = tx;
            std::future::pending::<()>().await
        });
        drop(task);
        assert!(rx.await.is_err(), "the aborted work dropped its sender");
    }
}
