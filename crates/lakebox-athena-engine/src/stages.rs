//! GetQueryRuntimeStatistics' OutputStage: the executed plan as Athena reports it, a tree of
//! stages, each with its plan and the rows, bytes and time its operators measured. Athena's
//! stages are Trino's fragments, split where rows are exchanged between tasks; here a stage
//! ends where DataFusion exchanges rows between partitions (repartitioning, coalescing or
//! merging): the exchange is a node of the stage above, its input a stage below, named among
//! the exchange's RemoteSources.

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;
use serde_json::{Value, json};

/// Whether a node exchanges rows between partitions (the start of a new stage below it).
fn exchanges(plan: &dyn ExecutionPlan) -> bool {
    matches!(
        plan.name(),
        "RepartitionExec" | "CoalescePartitionsExec" | "SortPreservingMergeExec"
    )
}

/// The executed plan's stages, in Athena's QueryStage shape; stage 0 is the output.
pub fn output_stage(plan: &dyn ExecutionPlan) -> Value {
    let mut next = 0;
    stage(plan, &mut next)
}

/// What one stage's operators measured.
#[derive(Default)]
struct Measured {
    input_rows: u64,
    input_bytes: u64,
    compute_nanos: u64,
}

fn stage(root: &dyn ExecutionPlan, next: &mut u64) -> Value {
    let root = crate::cancel::unwrapped(root);
    let id = *next;
    *next += 1;
    let mut measured = Measured::default();
    let mut sub_stages = Vec::new();
    let mut node_id = 0;
    let plan = node(root, next, &mut node_id, &mut measured, &mut sub_stages);
    let metrics = root.metrics();
    let mut s = json!({
        "StageId": id,
        "State": "FINISHED",
        "OutputRows": metrics.as_ref().and_then(|m| m.output_rows()).unwrap_or(0),
        "InputRows": measured.input_rows,
        "ExecutionTime": measured.compute_nanos / 1_000_000,
        "QueryStagePlan": plan,
        "SubStages": sub_stages,
    });
    if let Some(bytes) = metrics.as_ref().and_then(|m| m.sum_by_name("output_bytes")) {
        s["OutputBytes"] = json!(bytes.as_usize());
    }
    if measured.input_bytes > 0 {
        s["InputBytes"] = json!(measured.input_bytes);
    }
    s
}

/// One plan node of a stage, with its children in the stage; the inputs of an exchange become
/// stages of their own.
fn node(
    plan: &dyn ExecutionPlan,
    next: &mut u64,
    node_id: &mut u64,
    measured: &mut Measured,
    sub_stages: &mut Vec<Value>,
) -> Value {
    let plan = crate::cancel::unwrapped(plan);
    let id = *node_id;
    *node_id += 1;
    let metrics = plan.metrics();
    if let Some(m) = &metrics {
        measured.compute_nanos += m.elapsed_compute().unwrap_or(0) as u64;
        for metric in m.iter() {
            if let MetricValue::Count { name, count } = metric.value()
                && name == "bytes_scanned"
            {
                measured.input_bytes += count.value() as u64;
            }
        }
    }
    let mut children = Vec::new();
    let mut remote = Vec::new();
    for child in plan.children() {
        if exchanges(plan) {
            let sub = stage(child.as_ref(), next);
            measured.input_rows += sub["OutputRows"].as_u64().unwrap_or(0);
            remote.push(sub["StageId"].to_string());
            sub_stages.push(sub);
        } else {
            children.push(node(child.as_ref(), next, node_id, measured, sub_stages));
        }
    }
    // A leaf reads the stage's input (a table scan).
    if plan.children().is_empty() {
        measured.input_rows += metrics.as_ref().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
    }
    json!({
        "Name": plan.name().trim_end_matches("Exec"),
        "Identifier": id.to_string(),
        "Children": children,
        "RemoteSources": remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn stages_split_where_rows_are_exchanged() {
        let ctx = SessionContext::new();
        let df = ctx
            .sql("SELECT k, count(*) FROM (VALUES (1), (2), (2), (3)) AS t(k) GROUP BY k ORDER BY k")
            .await
            .unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
            .await
            .unwrap();
        let s = output_stage(plan.as_ref());
        assert_eq!(
            (s["StageId"].as_u64(), s["OutputRows"].as_u64()),
            (Some(0), Some(3))
        );
        // Every stage below the output feeds an exchange above it, by its id.
        fn check(s: &Value, seen: &mut Vec<String>) {
            for sub in s["SubStages"].as_array().unwrap() {
                seen.push(sub["StageId"].to_string());
                check(sub, seen);
            }
        }
        fn remote(n: &Value, out: &mut Vec<String>) {
            out.extend(
                n["RemoteSources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned()),
            );
            for c in n["Children"].as_array().unwrap() {
                remote(c, out);
            }
        }
        let mut stages = Vec::new();
        check(&s, &mut stages);
        let mut sources = Vec::new();
        fn all_plans(s: &Value, out: &mut Vec<String>) {
            remote(&s["QueryStagePlan"], out);
            for sub in s["SubStages"].as_array().unwrap() {
                all_plans(sub, out);
            }
        }
        all_plans(&s, &mut sources);
        stages.sort();
        sources.sort();
        assert_eq!(stages, sources);
        assert_eq!(s["QueryStagePlan"]["Name"], "SortPreservingMerge");
    }
}
