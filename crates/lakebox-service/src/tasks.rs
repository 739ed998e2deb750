//! The background work a service owns (flush timers, sweepers, schedulers), held in one place
//! so the binary can stop all of it on shutdown instead of leaving tasks to die with the runtime.

use std::future::Future;

use tokio::task::JoinHandle;

/// Runs `work` on `owner` every `period` (the first time one period from now), for as long as
/// the owner lives: the task holds it weakly, so a dropped service stops its timers.
pub fn every<T, F, Fut>(owner: &std::sync::Arc<T>, period: std::time::Duration, work: F) -> JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: Fn(std::sync::Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let owner = std::sync::Arc::downgrade(owner);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(o) = owner.upgrade() else { return };
            work(o).await;
        }
    })
}

/// Tasks that run until the server stops. Dropping the set aborts them; [`shutdown`] aborts
/// them and waits until each has stopped.
///
/// [`shutdown`]: BackgroundTasks::shutdown
#[derive(Default)]
pub struct BackgroundTasks {
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `work` on the current runtime under `name` (for logs).
    pub fn spawn(&mut self, name: &'static str, work: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push((name, tokio::spawn(work)));
    }

    /// Takes over a task spawned elsewhere.
    pub fn adopt(&mut self, name: &'static str, task: JoinHandle<()>) {
        self.tasks.push((name, task));
    }

    fn take(mut self) -> Vec<(&'static str, JoinHandle<()>)> {
        std::mem::take(&mut self.tasks)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Stops every task at its next await point and waits for each to end. Work that must not
    /// be cut short (a delivery in flight) is written to be resumed on the next start.
    pub async fn shutdown(self) {
        let tasks = self.take();
        for (_, t) in &tasks {
            t.abort();
        }
        for (name, t) in tasks {
            if let Err(e) = t.await
                && e.is_panic()
            {
                eprintln!("lakebox: background task {name} had panicked");
            }
        }
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for (_, t) in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_stops_every_task() {
        let stopped = Arc::new(AtomicBool::new(false));
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let mut tasks = BackgroundTasks::new();
        let guard = SetOnDrop(stopped.clone());
        tasks.spawn("forever", async move {
            let _g = guard;
            std::future::pending::<()>().await;
        });
        assert_eq!(tasks.len(), 1);
        tasks.shutdown().await;
        assert!(stopped.load(Ordering::SeqCst));
    }
}
