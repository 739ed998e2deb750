//! Stopping a query that is busy. DataFusion's operators pull batches from their inputs in
//! loops that never wait (an aggregation over a cross join of in-memory rows runs to the end
//! in one poll), so aborting the task that runs a query stops nothing until the work is done.
//! Every operator's input is wrapped in [`Cancellable`], which checks the query's flag each
//! time a batch is pulled: once StopQueryExecution sets it, the next pull fails and every
//! loop unwinds within a batch.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;

const NAME: &str = "Cancellable";

/// What a pull answers once the query is stopped.
pub const CANCELLED: &str = "Query cancelled";

#[derive(Debug)]
pub struct Cancellable {
    input: Arc<dyn ExecutionPlan>,
    flag: Arc<AtomicBool>,
}

/// `plan` with every node's output checked against `flag` (the nodes rebuilt around their
/// wrapped inputs, so the tree that runs is the one measured).
pub fn wrap(plan: Arc<dyn ExecutionPlan>, flag: &Arc<AtomicBool>) -> Result<Arc<dyn ExecutionPlan>> {
    let children: Vec<Arc<dyn ExecutionPlan>> = plan
        .children()
        .into_iter()
        .map(|c| wrap(c.clone(), flag))
        .collect::<Result<_>>()?;
    let node = if children.is_empty() {
        plan
    } else {
        // The wrappers report their input's properties, so the node's own stay as planned.
        plan.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )?
    };
    Ok(Arc::new(Cancellable {
        input: node,
        flag: flag.clone(),
    }))
}

/// The node a [`Cancellable`] stands for (or `plan` itself): what statistics describe.
pub fn unwrapped(plan: &dyn ExecutionPlan) -> &dyn ExecutionPlan {
    match plan.downcast_ref::<Cancellable>() {
        Some(c) => unwrapped(c.input.as_ref()),
        None => plan,
    }
}

impl DisplayAs for Cancellable {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}")
    }
}

impl ExecutionPlan for Cancellable {
    fn name(&self) -> &str {
        NAME
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal(format!("{NAME} has one input")))?;
        Ok(Arc::new(Cancellable {
            input,
            flag: self.flag.clone(),
        }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(Checked {
            inner: self.input.execute(partition, context)?,
            flag: self.flag.clone(),
        }))
    }
}

struct Checked {
    inner: SendableRecordBatchStream,
    flag: Arc<AtomicBool>,
}

impl Stream for Checked {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.flag.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(DataFusionError::Execution(CANCELLED.into()))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl RecordBatchStream for Checked {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}
