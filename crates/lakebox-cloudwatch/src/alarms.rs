//! Metric alarms: PutMetricAlarm and the describe/delete/state/actions operations, their
//! history, and their evaluation on a schedule with CloudWatch's semantics — the last
//! `EvaluationPeriods` complete periods, `DatapointsToAlarm` of them breaching to alarm,
//! `TreatMissingData` for periods without data — and the actions of each transition (SNS
//! topics get the message CloudWatch sends).
//!
//! An alarm is stored as the model's own `MetricAlarm` (what DescribeAlarms answers), in the
//! metadata store; a transition is committed before its actions are sent.

use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_service::events::{Event, EventSink};
use lakebox_store::MetaStore;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::{invalid_combination, invalid_value};
use crate::metrics::{MetricKey, Metrics};
use crate::stats::{Agg, Stat};

const ALARMS: &str = "alarms";
const HISTORY: &str = "alarm_history";
/// DescribeAlarms' and DescribeAlarmHistory's default (and largest) page.
const PAGE: usize = 100;

/// An alarm as stored, with its tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored<A> {
    pub alarm: A,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// What state changes, history and actions need of an alarm, metric or composite (each kind
/// keeps its own table; history is shared, by name).
pub(crate) trait AlarmKind:
    Clone + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static
{
    const TABLE: &'static str;
    const TYPE: AlarmType;
    fn name(&self) -> &str;
    fn state(&self) -> Option<&StateValue>;
    fn state_fields(&mut self) -> StateFields<'_>;
    fn actions(&self, state: &StateValue) -> Vec<String>;
    fn actions_enabled(&self) -> bool;
    fn set_actions_enabled(&mut self, on: bool);
    /// What an SNS action of a transition receives.
    fn notification(&self, old: &StateValue, t: &Transition, now: i64, region: &str) -> Event;
    /// The alarm's ARN and description, for a Lambda action's event.
    fn arn_and_description(&self) -> (Option<&str>, Option<&str>);
    /// The `configuration` member of a Lambda action's event.
    fn lambda_configuration(&self) -> serde_json::Value;
}

/// The state an alarm left, for a Lambda action's `previousState`.
pub(crate) struct PreviousState {
    pub value: StateValue,
    pub reason: Option<String>,
    pub reason_data: Option<String>,
    pub timestamp: Option<Timestamp>,
}

/// The event CloudWatch invokes a Lambda action with (`source` aws.cloudwatch, `alarmData`
/// with the new and previous state and the alarm's configuration).
pub(crate) fn lambda_event<A: AlarmKind>(
    alarm: &A,
    previous: &PreviousState,
    t: &Transition,
    now: i64,
    region: &str,
) -> Event {
    let time = |ms: i64| {
        let iso = Timestamp::from_millis(ms).to_iso8601();
        iso.replace('Z', "+0000")
    };
    let (arn, description) = alarm.arn_and_description();
    let mut state = serde_json::json!({
        "value": t.state.as_str(),
        "reason": t.reason,
        "timestamp": time(now),
    });
    if let Some(d) = &t.data {
        state["reasonData"] = serde_json::json!(d);
    }
    let mut prev = serde_json::json!({
        "value": previous.value.as_str(),
        "reason": previous.reason,
        "timestamp": previous.timestamp.map(|t| time(t.as_millis())),
    });
    if let Some(d) = &previous.reason_data {
        prev["reasonData"] = serde_json::json!(d);
    }
    let mut configuration = alarm.lambda_configuration();
    if let Some(d) = description {
        configuration["description"] = serde_json::json!(d);
    }
    let message = serde_json::json!({
        "source": "aws.cloudwatch",
        "alarmArn": arn,
        "accountId": arn.and_then(parse_arn).map(|(a, _, _)| a),
        "time": time(now),
        "region": region,
        "alarmData": {
            "alarmName": alarm.name(),
            "state": state,
            "previousState": prev,
            "configuration": configuration,
        },
    });
    Event {
        message: message.to_string(),
        sender: "cloudwatch.amazonaws.com",
        ..Event::default()
    }
}

/// The state members both kinds of alarm have.
pub(crate) struct StateFields<'a> {
    pub value: &'a mut Option<StateValue>,
    pub reason: &'a mut Option<String>,
    pub reason_data: &'a mut Option<String>,
    pub updated: &'a mut Option<Timestamp>,
    pub transitioned: &'a mut Option<Timestamp>,
}

/// The members both generated alarm shapes spell the same way: the name and state accessors
/// of an `AlarmKind` impl.
macro_rules! alarm_state_members {
    () => {
        fn name(&self) -> &str {
            self.alarm_name.as_deref().unwrap_or_default()
        }
        fn state(&self) -> Option<&StateValue> {
            self.state_value.as_ref()
        }
        fn state_fields(&mut self) -> StateFields<'_> {
            StateFields {
                value: &mut self.state_value,
                reason: &mut self.state_reason,
                reason_data: &mut self.state_reason_data,
                updated: &mut self.state_updated_timestamp,
                transitioned: &mut self.state_transitioned_timestamp,
            }
        }
    };
}
pub(crate) use alarm_state_members;

impl AlarmKind for MetricAlarm {
    const TABLE: &'static str = ALARMS;
    const TYPE: AlarmType = AlarmType::MetricAlarm;
    alarm_state_members!();
    fn actions(&self, state: &StateValue) -> Vec<String> {
        actions_for(
            state,
            &self.alarm_actions,
            &self.ok_actions,
            &self.insufficient_data_actions,
        )
    }
    fn actions_enabled(&self) -> bool {
        self.actions_enabled == Some(true)
    }
    fn set_actions_enabled(&mut self, on: bool) {
        self.actions_enabled = Some(on);
    }
    fn notification(&self, old: &StateValue, t: &Transition, now: i64, region: &str) -> Event {
        notification(self, old, t, now, region)
    }
    fn arn_and_description(&self) -> (Option<&str>, Option<&str>) {
        (self.alarm_arn.as_deref(), self.alarm_description.as_deref())
    }
    fn lambda_configuration(&self) -> serde_json::Value {
        let stat = |m: &MetricStat| {
            serde_json::json!({
                "metric": {
                    "namespace": m.metric.namespace,
                    "name": m.metric.metric_name,
                    "dimensions": m.metric.dimensions.iter().flatten()
                        .map(|d| (d.name.clone(), serde_json::json!(d.value)))
                        .collect::<serde_json::Map<_, _>>(),
                },
                "period": m.period,
                "stat": m.stat,
            })
        };
        let metrics: Vec<serde_json::Value> = match &self.metrics {
            Some(queries) => queries
                .iter()
                .map(|q| {
                    let mut v = serde_json::json!({"id": q.id, "returnData": q.return_data.unwrap_or(true)});
                    if let Some(m) = &q.metric_stat {
                        v["metricStat"] = stat(m);
                    }
                    if let Some(e) = &q.expression {
                        v["expression"] = serde_json::json!(e);
                    }
                    if let Some(l) = &q.label {
                        v["label"] = serde_json::json!(l);
                    }
                    v
                })
                .collect(),
            None => vec![serde_json::json!({
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": self.namespace,
                        "name": self.metric_name,
                        "dimensions": self.dimensions.iter().flatten()
                            .map(|d| (d.name.clone(), serde_json::json!(d.value)))
                            .collect::<serde_json::Map<_, _>>(),
                    },
                    "period": self.period,
                    "stat": self.extended_statistic.clone()
                        .or_else(|| self.statistic.as_ref().map(|s| s.as_str().to_owned())),
                },
                "returnData": true,
            })],
        };
        serde_json::json!({ "metrics": metrics })
    }
}

/// The actions of a transition into `state`.
pub(crate) fn actions_for(
    state: &StateValue,
    alarm: &Option<Vec<String>>,
    ok: &Option<Vec<String>>,
    insufficient: &Option<Vec<String>>,
) -> Vec<String> {
    match state {
        StateValue::Alarm => alarm.clone(),
        StateValue::Ok => ok.clone(),
        _ => insufficient.clone(),
    }
    .unwrap_or_default()
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("alarm store: {e}"))
}

fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::client("ValidationError", message)
}

pub(crate) fn alarm_key(account: &str, region: &str, name: &str) -> Vec<u8> {
    format!("{account}/{region}/{name}").into_bytes()
}

pub fn alarm_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:cloudwatch:{region}:{account}:alarm:{name}")
}

/// The account, region and name in an alarm's ARN.
pub(crate) fn parse_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:cloudwatch:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, name) = rest.split_once(":alarm:")?;
    Some((account, region, name))
}

pub(crate) fn load<A: AlarmKind>(meta: &MetaStore, key: &[u8]) -> Result<Option<Stored<A>>, ServiceError> {
    Ok(meta
        .get(A::TABLE, key)
        .map_err(internal)?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

/// What the alarm watches, from either form PutMetricAlarm takes: the metric's members, or a
/// `Metrics` list whose one returned query is a `MetricStat`.
struct Watched {
    metric: Metric,
    stat: String,
    period: i32,
    unit: Option<StandardUnit>,
}

fn watched(a: &MetricAlarm) -> Option<Watched> {
    if let Some(queries) = &a.metrics {
        let q = queries.iter().find(|q| q.return_data != Some(false))?;
        let ms = q.metric_stat.as_ref()?;
        return Some(Watched {
            metric: ms.metric.clone(),
            stat: ms.stat.clone(),
            period: q.period.unwrap_or(ms.period),
            unit: ms.unit.clone(),
        });
    }
    Some(Watched {
        metric: Metric {
            namespace: a.namespace.clone(),
            metric_name: a.metric_name.clone(),
            dimensions: a.dimensions.clone(),
        },
        stat: match (&a.statistic, &a.extended_statistic) {
            (Some(s), _) => s.as_str().to_owned(),
            (None, Some(e)) => e.clone(),
            _ => return None,
        },
        period: a.period?,
        unit: a.unit.clone(),
    })
}

/// The comparisons of an alarm on an anomaly detection band.
fn is_band_comparison(op: &ComparisonOperator) -> bool {
    matches!(
        op,
        ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold
            | ComparisonOperator::LessThanLowerThreshold
            | ComparisonOperator::GreaterThanUpperThreshold
    )
}

/// The `ANOMALY_DETECTION_BAND` query an alarm's ThresholdMetricId names, and the MetricStat
/// of the metric it draws the band of.
fn band_query<'q>(
    queries: &'q Option<Vec<MetricDataQuery>>,
    id: Option<&str>,
) -> Option<(&'q MetricDataQuery, &'q MetricStat)> {
    let queries = queries.as_ref()?;
    let q = queries.iter().find(|q| Some(q.id.as_str()) == id)?;
    let text = q.expression.as_deref()?;
    let refs = crate::math::references(text).ok()?;
    if !crate::math::is_band(text) {
        return None;
    }
    let metric = queries
        .iter()
        .find(|m| refs.first() == Some(&m.id))?
        .metric_stat
        .as_ref()?;
    Some((q, metric))
}

fn check_action(arn: &str) -> Result<(), ServiceError> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[2].is_empty() {
        return Err(validation(format!("Invalid arn syntax: {arn}")));
    }
    Ok(())
}

pub async fn put(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: PutMetricAlarmInput,
    now: i64,
) -> Result<(), ServiceError> {
    let by_members = input.metric_name.is_some() || input.namespace.is_some();
    match (&input.metrics, by_members) {
        (Some(_), true) => {
            return Err(invalid_combination(
                "The parameters MetricName and Metrics are mutually exclusive and you have specified both.",
            ));
        }
        (None, false) => {
            return Err(validation(
                "Either MetricName and Namespace, or Metrics, must be specified.",
            ));
        }
        _ => {}
    }
    let evaluation_periods = input
        .evaluation_periods
        .ok_or_else(|| validation("EvaluationPeriods must be specified."))?;
    if input.statistic.is_some() && input.extended_statistic.is_some() {
        return Err(invalid_combination(
            "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
        ));
    }
    if let Some(queries) = &input.metrics {
        for (i, q) in queries.iter().enumerate() {
            if q.metric_stat.is_some() == q.expression.is_some() {
                return Err(validation(format!(
                    "Exactly one of MetricStat and Expression must be specified for Metrics.member.{}.",
                    i + 1
                )));
            }
            if let Some(e) = &q.expression {
                let refs = crate::math::references(e)
                    .map_err(|m| validation(format!("Error in expression {}: {m}", q.id)))?;
                if let Some(unknown) = refs.iter().find(|r| !queries.iter().any(|o| o.id == **r)) {
                    return Err(validation(format!(
                        "Error in expression {}: Unrecognized id {unknown}",
                        q.id
                    )));
                }
            }
        }
        // An alarm on a band returns the metric and the band (ThresholdMetricId); any other,
        // one series.
        let returning = queries.iter().filter(|q| q.return_data != Some(false)).count();
        if returning != 1 + input.threshold_metric_id.is_some() as usize {
            return Err(validation(
                "Exactly one element of the metrics list should return data.",
            ));
        }
    } else {
        if input.metric_name.is_none() || input.namespace.is_none() {
            return Err(validation("MetricName and Namespace must both be specified."));
        }
        if input.statistic.is_none() && input.extended_statistic.is_none() {
            return Err(validation(
                "Either Statistic or ExtendedStatistic must be specified.",
            ));
        }
        if let Some(e) = &input.extended_statistic
            && Stat::parse(e).is_none()
        {
            return Err(invalid_value(format!(
                "The value {e} for parameter ExtendedStatistic is invalid."
            )));
        }
        let period = input
            .period
            .ok_or_else(|| validation("Period must be specified."))?;
        if !(period == 10 || period == 30 || (period > 0 && period % 60 == 0)) {
            return Err(validation("Period must be 10, 30 or a multiple of 60."));
        }
        if period as i64 * evaluation_periods as i64 > 86_400 {
            return Err(validation(
                "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400).",
            ));
        }
    }
    if evaluation_periods < 1 {
        return Err(validation("EvaluationPeriods must be at least 1."));
    }
    if let Some(m) = input.datapoints_to_alarm
        && (m < 1 || m > evaluation_periods)
    {
        return Err(validation(
            "DatapointsToAlarm must be between 1 and EvaluationPeriods.",
        ));
    }
    let Some(comparison) = input.comparison_operator.clone() else {
        return Err(validation("ComparisonOperator must be specified."));
    };
    let band = band_query(&input.metrics, input.threshold_metric_id.as_deref());
    match (is_band_comparison(&comparison), &input.threshold_metric_id) {
        (true, None) => {
            return Err(validation(format!(
                "ThresholdMetricId must be specified for the ComparisonOperator {}.",
                comparison.as_str()
            )));
        }
        (false, Some(_)) => {
            return Err(validation(format!(
                "ThresholdMetricId can only be used with the ComparisonOperators LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold and GreaterThanUpperThreshold, not {}.",
                comparison.as_str()
            )));
        }
        (true, Some(id)) => {
            if input.threshold.is_some() {
                return Err(invalid_combination(
                    "The parameters Threshold and ThresholdMetricId are mutually exclusive and you have specified both.",
                ));
            }
            if band.is_none() {
                return Err(validation(format!(
                    "ThresholdMetricId {id} must be the id of an ANOMALY_DETECTION_BAND expression in Metrics."
                )));
            }
        }
        (false, None) => {
            if let ComparisonOperator::Unknown(other) = &comparison {
                return Err(invalid_value(format!(
                    "The value {other} for parameter ComparisonOperator is invalid."
                )));
            }
            if input.threshold.is_none() {
                return Err(validation("Threshold must be specified."));
            }
        }
    }
    // The band's metric gets its anomaly detector, as CloudWatch creates one for such alarms.
    if let Some((_, metric)) = &band {
        crate::anomaly::ensure(meta, ctx, metric).await?;
    }
    if let Some(t) = &input.treat_missing_data
        && !matches!(t.as_str(), "breaching" | "notBreaching" | "ignore" | "missing")
    {
        return Err(validation(format!(
            "The value {t} for parameter TreatMissingData is invalid: it must be breaching, notBreaching, ignore or missing."
        )));
    }
    for arn in input
        .ok_actions
        .iter()
        .chain(&input.alarm_actions)
        .chain(&input.insufficient_data_actions)
        .flatten()
    {
        check_action(arn)?;
    }
    let key = alarm_key(&ctx.account_id, &ctx.region, &input.alarm_name);
    let old = load::<MetricAlarm>(meta, &key)?;
    let stamp = Some(Timestamp::from_millis(now));
    let mut alarm = MetricAlarm {
        alarm_name: Some(input.alarm_name.clone()),
        alarm_arn: Some(alarm_arn(&ctx.account_id, &ctx.region, &input.alarm_name)),
        alarm_description: input.alarm_description,
        alarm_configuration_updated_timestamp: stamp,
        actions_enabled: Some(input.actions_enabled.unwrap_or(true)),
        ok_actions: Some(input.ok_actions.unwrap_or_default()),
        alarm_actions: Some(input.alarm_actions.unwrap_or_default()),
        insufficient_data_actions: Some(input.insufficient_data_actions.unwrap_or_default()),
        state_value: Some(StateValue::InsufficientData),
        state_reason: Some("Unchecked: Initial alarm creation".to_owned()),
        state_reason_data: None,
        state_updated_timestamp: stamp,
        metric_name: input.metric_name,
        namespace: input.namespace,
        statistic: input.statistic,
        extended_statistic: input.extended_statistic,
        dimensions: input.dimensions.or_else(|| by_members.then(Vec::new)),
        period: input.period,
        unit: input.unit,
        evaluation_periods: Some(evaluation_periods),
        datapoints_to_alarm: input.datapoints_to_alarm,
        threshold: input.threshold,
        comparison_operator: Some(comparison),
        treat_missing_data: input.treat_missing_data,
        evaluate_low_sample_count_percentile: input.evaluate_low_sample_count_percentile,
        metrics: input.metrics,
        threshold_metric_id: input.threshold_metric_id,
        evaluation_state: None,
        state_transitioned_timestamp: stamp,
        evaluation_criteria: None,
        evaluation_interval: None,
    };
    let mut tags = Vec::new();
    let summary = match &old {
        // An update keeps the alarm's state; it is evaluated again on the next round.
        Some(o) => {
            alarm.state_value = o.alarm.state_value.clone();
            alarm.state_reason = o.alarm.state_reason.clone();
            alarm.state_reason_data = o.alarm.state_reason_data.clone();
            alarm.state_updated_timestamp = o.alarm.state_updated_timestamp;
            alarm.state_transitioned_timestamp = o.alarm.state_transitioned_timestamp;
            tags = o.tags.clone();
            format!("Alarm \"{}\" updated", input.alarm_name)
        }
        None => format!("Alarm \"{}\" created", input.alarm_name),
    };
    crate::dashboards::merge_tags(&mut tags, input.tags.unwrap_or_default());
    let item = history_item(&alarm, now, HistoryItemType::ConfigurationUpdate, summary, None);
    save(meta, key, Stored { alarm, tags }, Some(item)).await
}

pub(crate) fn history_item<A: AlarmKind>(
    alarm: &A,
    now: i64,
    kind: HistoryItemType,
    summary: String,
    data: Option<String>,
) -> AlarmHistoryItem {
    AlarmHistoryItem {
        alarm_name: Some(alarm.name().to_owned()),
        alarm_type: Some(A::TYPE),
        timestamp: Some(Timestamp::from_millis(now)),
        history_item_type: Some(kind),
        history_summary: Some(summary),
        history_data: data,
        ..Default::default()
    }
}

/// Writes the alarm (and a history item) in one transaction.
pub(crate) async fn save<A: AlarmKind>(
    meta: &MetaStore,
    key: Vec<u8>,
    stored: Stored<A>,
    item: Option<AlarmHistoryItem>,
) -> Result<(), ServiceError> {
    let value = serde_json::to_vec(&stored).map_err(internal)?;
    let history = item
        .map(|i| {
            let at = i.timestamp.map_or(0, |t| t.as_millis());
            let mut k = key.clone();
            k.extend_from_slice(format!("/{at:016}/{}", lakebox_core::ids::random_hex(8)).as_bytes());
            serde_json::to_vec(&i).map(|v| (k, v))
        })
        .transpose()
        .map_err(internal)?;
    meta.write_async(move |b| {
        b.put(A::TABLE, &key, &value)?;
        if let Some((k, v)) = &history {
            b.put(HISTORY, k, v)?;
        }
        Ok(())
    })
    .await
    .map_err(internal)
}

pub(crate) fn all_of<A: AlarmKind>(
    meta: &MetaStore,
    ctx: &RequestContext,
) -> Result<Vec<Stored<A>>, ServiceError> {
    let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
    Ok(meta
        .scan_prefix(A::TABLE, prefix.as_bytes(), None, usize::MAX)
        .map_err(internal)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

pub fn describe(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: DescribeAlarmsInput,
) -> Result<DescribeAlarmsOutput, ServiceError> {
    if input.alarm_names.is_some() && input.alarm_name_prefix.is_some() {
        return Err(invalid_combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
        ));
    }
    let metric_alarms_wanted = input
        .alarm_types
        .as_ref()
        .is_none_or(|t| t.contains(&AlarmType::MetricAlarm));
    let page = input.max_records.map_or(50, |m| (m.max(1) as usize).min(PAGE));
    let mut alarms: Vec<MetricAlarm> = all_of::<MetricAlarm>(meta, ctx)?
        .into_iter()
        .map(|s| s.alarm)
        .filter(|_| metric_alarms_wanted)
        .filter(|a| {
            described(
                &input,
                a.name(),
                a.state(),
                [&a.alarm_actions, &a.ok_actions, &a.insufficient_data_actions],
            )
        })
        .collect();
    alarms.sort_by(|a, b| a.alarm_name.cmp(&b.alarm_name));
    if let Some(token) = &input.next_token {
        alarms.retain(|a| a.alarm_name.as_deref().is_some_and(|n| n > token.as_str()));
    }
    let next_token = (alarms.len() > page)
        .then(|| alarms[page - 1].alarm_name.clone())
        .flatten();
    alarms.truncate(page);
    let composite_alarms = crate::composite::describe(meta, ctx, &input)?;
    if input.children_of_alarm_name.is_some() || input.parents_of_alarm_name.is_some() {
        alarms = crate::composite::related_metric_alarms(meta, ctx, &input, alarms)?;
    }
    Ok(DescribeAlarmsOutput {
        composite_alarms: Some(composite_alarms),
        metric_alarms: Some(alarms),
        next_token,
    })
}

/// Whether an alarm passes DescribeAlarms' name, prefix, state and action-prefix filters.
pub(crate) fn described(
    input: &DescribeAlarmsInput,
    name: &str,
    state: Option<&StateValue>,
    actions: [&Option<Vec<String>>; 3],
) -> bool {
    input
        .alarm_names
        .as_ref()
        .is_none_or(|n| n.iter().any(|x| x == name))
        && input
            .alarm_name_prefix
            .as_ref()
            .is_none_or(|p| name.starts_with(p.as_str()))
        && input.state_value.as_ref().is_none_or(|s| state == Some(s))
        && input.action_prefix.as_ref().is_none_or(|p| {
            actions
                .into_iter()
                .flatten()
                .flatten()
                .any(|x| x.starts_with(p.as_str()))
        })
}

pub fn describe_for_metric(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: DescribeAlarmsForMetricInput,
) -> Result<DescribeAlarmsForMetricOutput, ServiceError> {
    let dims = crate::query::dimension_set(input.dimensions);
    let alarms = all_of::<MetricAlarm>(meta, ctx)?
        .into_iter()
        .map(|s| s.alarm)
        .filter(|a| {
            let Some(w) = watched(a) else { return false };
            let theirs = crate::query::dimension_set(w.metric.dimensions.clone());
            w.metric.metric_name.as_deref() == Some(input.metric_name.as_str())
                && w.metric.namespace.as_deref() == Some(input.namespace.as_str())
                && theirs == dims
                && input.statistic.as_ref().is_none_or(|s| s.as_str() == w.stat)
                && input.extended_statistic.as_ref().is_none_or(|s| *s == w.stat)
                && input.period.is_none_or(|p| p == w.period)
                && input.unit.as_ref().is_none_or(|u| w.unit.as_ref() == Some(u))
        })
        .collect();
    Ok(DescribeAlarmsForMetricOutput {
        metric_alarms: Some(alarms),
    })
}

/// An alarm of either kind.
pub(crate) enum AnyAlarm {
    Metric(Box<Stored<MetricAlarm>>),
    Composite(Box<Stored<CompositeAlarm>>),
}

/// The alarms named, every one of which must exist (`ResourceNotFound` otherwise).
fn named(
    meta: &MetaStore,
    ctx: &RequestContext,
    names: &[String],
) -> Result<Vec<(Vec<u8>, AnyAlarm)>, ServiceError> {
    names
        .iter()
        .map(|n| {
            let key = alarm_key(&ctx.account_id, &ctx.region, n);
            let found = match load::<MetricAlarm>(meta, &key)? {
                Some(m) => Some(AnyAlarm::Metric(Box::new(m))),
                None => load::<CompositeAlarm>(meta, &key)?.map(|c| AnyAlarm::Composite(Box::new(c))),
            };
            let stored = found.ok_or_else(|| {
                ServiceError::new("ResourceNotFound", 404, format!("Alarm {n} does not exist"))
            })?;
            Ok((key, stored))
        })
        .collect()
}

pub async fn delete(meta: &MetaStore, ctx: &RequestContext, names: Vec<String>) -> Result<(), ServiceError> {
    let alarms: Vec<(Vec<u8>, &'static str)> = named(meta, ctx, &names)?
        .into_iter()
        .map(|(k, a)| {
            let table = match a {
                AnyAlarm::Metric(_) => MetricAlarm::TABLE,
                AnyAlarm::Composite(_) => CompositeAlarm::TABLE,
            };
            (k, table)
        })
        .collect();
    let keys: Vec<Vec<u8>> = alarms.iter().map(|(k, _)| k.clone()).collect();
    // The history goes with the alarm.
    let mut history = Vec::new();
    for k in &keys {
        let mut prefix = k.clone();
        prefix.push(b'/');
        history.extend(
            meta.scan_prefix(HISTORY, &prefix, None, usize::MAX)
                .map_err(internal)?
                .into_iter()
                .map(|(k, _)| k),
        );
    }
    meta.write_async(move |b| {
        for (k, table) in &alarms {
            b.delete(table, k)?;
        }
        for k in &history {
            b.delete(HISTORY, k)?;
        }
        Ok(())
    })
    .await
    .map_err(internal)
}

pub async fn set_actions_enabled(
    meta: &MetaStore,
    ctx: &RequestContext,
    names: Vec<String>,
    on: bool,
) -> Result<(), ServiceError> {
    for (key, alarm) in named(meta, ctx, &names)? {
        match alarm {
            AnyAlarm::Metric(mut s) => {
                s.alarm.set_actions_enabled(on);
                save(meta, key, *s, None).await?;
            }
            AnyAlarm::Composite(mut s) => {
                s.alarm.set_actions_enabled(on);
                save(meta, key, *s, None).await?;
            }
        }
    }
    Ok(())
}

pub fn history(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: DescribeAlarmHistoryInput,
) -> Result<DescribeAlarmHistoryOutput, ServiceError> {
    let prefix = match &input.alarm_name {
        Some(n) => format!("{}/{}/{n}/", ctx.account_id, ctx.region),
        None => format!("{}/{}/", ctx.account_id, ctx.region),
    };
    let (from, to) = (
        input.start_date.map_or(i64::MIN, |t| t.as_millis()),
        input.end_date.map_or(i64::MAX, |t| t.as_millis()),
    );
    let mut items: Vec<AlarmHistoryItem> = meta
        .scan_prefix(HISTORY, prefix.as_bytes(), None, usize::MAX)
        .map_err(internal)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<AlarmHistoryItem>(&v).ok())
        .filter(|i| {
            let at = i.timestamp.map_or(0, |t| t.as_millis());
            // Without AlarmTypes, only metric alarms' history, as CloudWatch answers.
            let kind = i.alarm_type.clone().unwrap_or(AlarmType::MetricAlarm);
            let kind_ok = match &input.alarm_types {
                Some(types) => types.contains(&kind),
                None => kind == AlarmType::MetricAlarm,
            };
            kind_ok
                && (from..=to).contains(&at)
                && input
                    .history_item_type
                    .as_ref()
                    .is_none_or(|t| i.history_item_type.as_ref() == Some(t))
        })
        .collect();
    // Newest first unless asked otherwise.
    items.sort_by_key(|i| i.timestamp);
    if !matches!(input.scan_by, Some(ScanBy::TimestampAscending)) {
        items.reverse();
    }
    let skip = match &input.next_token {
        Some(t) => t.parse::<usize>().map_err(|_| {
            ServiceError::client("InvalidNextToken", "The service cannot read the NextToken.")
        })?,
        None => 0,
    };
    let page = input.max_records.map_or(PAGE, |m| (m.max(1) as usize).min(PAGE));
    let rest: Vec<AlarmHistoryItem> = items.into_iter().skip(skip).collect();
    let next_token = (rest.len() > page).then(|| (skip + page).to_string());
    Ok(DescribeAlarmHistoryOutput {
        alarm_history_items: Some(rest.into_iter().take(page).collect()),
        next_token,
    })
}

// ---- tags ----

pub fn tags(
    meta: &MetaStore,
    ctx: &RequestContext,
    arn: &str,
) -> Result<Option<Vec<(String, String)>>, ServiceError> {
    let Some((account, region, name)) = parse_arn(arn).filter(|(a, _, _)| *a == ctx.account_id) else {
        return Ok(None);
    };
    let key = alarm_key(account, region, name);
    Ok(match load::<MetricAlarm>(meta, &key)? {
        Some(s) => Some(s.tags),
        None => load::<CompositeAlarm>(meta, &key)?.map(|s| s.tags),
    })
}

pub async fn change_tags(
    meta: &MetaStore,
    ctx: &RequestContext,
    arn: &str,
    change: impl FnOnce(&mut Vec<(String, String)>),
) -> Result<bool, ServiceError> {
    let Some((account, region, name)) = parse_arn(arn).filter(|(a, _, _)| *a == ctx.account_id) else {
        return Ok(false);
    };
    let key = alarm_key(account, region, name);
    if let Some(mut stored) = load::<MetricAlarm>(meta, &key)? {
        change(&mut stored.tags);
        save(meta, key, stored, None).await?;
    } else if let Some(mut stored) = load::<CompositeAlarm>(meta, &key)? {
        change(&mut stored.tags);
        save(meta, key, stored, None).await?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

// ---- state ----

/// A state change: the new state, its reason and reason data.
pub(crate) struct Transition {
    pub state: StateValue,
    pub reason: String,
    pub data: Option<String>,
}

pub async fn set_state(
    meta: &MetaStore,
    actions: Option<&Arc<dyn EventSink>>,
    ctx: &RequestContext,
    input: SetAlarmStateInput,
    now: i64,
) -> Result<(), ServiceError> {
    if let Some(d) = &input.state_reason_data
        && serde_json::from_str::<serde_json::Value>(d).is_err()
    {
        return Err(ServiceError::client(
            "InvalidFormat",
            "The StateReasonData is not valid JSON.",
        ));
    }
    let (key, alarm) = named(meta, ctx, std::slice::from_ref(&input.alarm_name))?
        .pop()
        .expect("one alarm named");
    let t = Transition {
        state: input.state_value,
        reason: input.state_reason,
        data: input.state_reason_data,
    };
    match alarm {
        AnyAlarm::Metric(s) => transition(meta, actions, key, *s, t, now, &ctx.region).await,
        AnyAlarm::Composite(s) => transition(meta, actions, key, *s, t, now, &ctx.region).await,
    }
}

/// Records a new state (when it differs) with its history item, then runs its actions.
pub(crate) async fn transition<A: AlarmKind>(
    meta: &MetaStore,
    actions: Option<&Arc<dyn EventSink>>,
    key: Vec<u8>,
    mut stored: Stored<A>,
    t: Transition,
    now: i64,
    region: &str,
) -> Result<(), ServiceError> {
    let old = stored
        .alarm
        .state()
        .cloned()
        .unwrap_or(StateValue::InsufficientData);
    if old == t.state {
        return Ok(());
    }
    let previous = {
        let f = stored.alarm.state_fields();
        PreviousState {
            value: old.clone(),
            reason: f.reason.clone(),
            reason_data: f.reason_data.clone(),
            timestamp: *f.updated,
        }
    };
    let name = stored.alarm.name().to_owned();
    let a = &mut stored.alarm;
    let f = a.state_fields();
    *f.value = Some(t.state.clone());
    *f.reason = Some(t.reason.clone());
    *f.reason_data = t.data.clone();
    *f.updated = Some(Timestamp::from_millis(now));
    *f.transitioned = Some(Timestamp::from_millis(now));
    let data = serde_json::json!({
        "version": "1.0",
        "oldState": {"stateValue": old.as_str()},
        "newState": {"stateValue": t.state.as_str(), "stateReason": t.reason},
    });
    let item = history_item(
        a,
        now,
        HistoryItemType::StateUpdate,
        format!("Alarm updated from {} to {}", old.as_str(), t.state.as_str()),
        Some(data.to_string()),
    );
    let alarm = stored.alarm.clone();
    save(meta, key.clone(), stored.clone(), Some(item)).await?;
    if !alarm.actions_enabled() {
        return Ok(());
    }
    for target in alarm.actions(&t.state) {
        let outcome = match actions {
            Some(sink) => sink
                .deliver(
                    target.clone(),
                    if target.starts_with("arn:aws:lambda:") {
                        lambda_event(&alarm, &previous, &t, now, region)
                    } else {
                        alarm.notification(&old, &t, now, region)
                    },
                )
                .await
                .map_err(|e| format!("{e:?}")),
            None => Err("no action targets are wired".to_owned()),
        };
        let summary = match &outcome {
            Ok(()) => format!("Successfully executed action {target}"),
            Err(e) => format!("Failed to execute action {target}: {e}"),
        };
        if let Err(e) = &outcome {
            tracing::warn!("alarm {name}: action {target} failed: {e}");
        }
        let item = history_item(&alarm, now, HistoryItemType::Action, summary, None);
        save(meta, key.clone(), stored.clone(), Some(item)).await?;
    }
    Ok(())
}

/// AWS's name for a region, as alarm notifications give it.
pub(crate) fn region_name(region: &str) -> String {
    match region {
        "us-east-1" => "US East (N. Virginia)".into(),
        "us-east-2" => "US East (Ohio)".into(),
        "us-west-1" => "US West (N. California)".into(),
        "us-west-2" => "US West (Oregon)".into(),
        "eu-west-1" => "EU (Ireland)".into(),
        "eu-central-1" => "EU (Frankfurt)".into(),
        "ap-southeast-2" => "Asia Pacific (Sydney)".into(),
        "ap-northeast-1" => "Asia Pacific (Tokyo)".into(),
        other => other.into(),
    }
}

/// The message CloudWatch publishes to an SNS topic on a transition.
fn notification(alarm: &MetricAlarm, old: &StateValue, t: &Transition, now: i64, region: &str) -> Event {
    let name = alarm.alarm_name.clone().unwrap_or_default();
    let iso = |ts: Option<Timestamp>| ts.map(|t| t.to_iso8601().replace('Z', "+0000"));
    let dims: Vec<serde_json::Value> = alarm
        .dimensions
        .iter()
        .flatten()
        .map(|d| serde_json::json!({"value": d.value, "name": d.name}))
        .collect();
    let mut message = serde_json::json!({
        "AlarmName": name,
        "AlarmDescription": alarm.alarm_description,
        "AWSAccountId": alarm.alarm_arn.as_deref().and_then(parse_arn).map(|(a, _, _)| a),
        "AlarmConfigurationUpdatedTimestamp": iso(alarm.alarm_configuration_updated_timestamp),
        "NewStateValue": t.state.as_str(),
        "NewStateReason": t.reason,
        "StateChangeTime": iso(Some(Timestamp::from_millis(now))),
        "Region": region_name(region),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old.as_str(),
        "OKActions": alarm.ok_actions,
        "AlarmActions": alarm.alarm_actions,
        "InsufficientDataActions": alarm.insufficient_data_actions,
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": if alarm.extended_statistic.is_some() { "ExtendedStatistic" } else { "Statistic" },
            "Statistic": alarm.statistic.as_ref().map(|s| s.as_str().to_ascii_uppercase()),
            "ExtendedStatistic": alarm.extended_statistic,
            "Unit": alarm.unit.as_ref().map(|u| u.as_str().to_owned()),
            "Dimensions": dims,
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "ComparisonOperator": alarm.comparison_operator.as_ref().map(|c| c.as_str().to_owned()),
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data.clone().unwrap_or_else(|| "missing".into()),
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile.clone().unwrap_or_default(),
        },
    });
    // An alarm on metric math (or a band) names its queries, and the band's id.
    if let Some(queries) = &alarm.metrics {
        message["Trigger"]["Metrics"] = serde_json::to_value(queries).unwrap_or_default();
    }
    if let Some(id) = &alarm.threshold_metric_id {
        message["Trigger"]["ThresholdMetricId"] = id.clone().into();
    }
    Event {
        message: message.to_string(),
        subject: Some(format!(
            "{}: \"{name}\" in {}",
            t.state.as_str(),
            region_name(region)
        )),
        attributes: Vec::new(),
        sender: "cloudwatch.amazonaws.com",
        ..Event::default()
    }
}

// ---- evaluation ----

/// One evaluated period: its start and value (`None`: no data).
type Point = (i64, Option<f64>);

fn breaches(op: &ComparisonOperator, value: f64, threshold: f64) -> bool {
    match op {
        ComparisonOperator::GreaterThanOrEqualToThreshold => value >= threshold,
        ComparisonOperator::GreaterThanThreshold => value > threshold,
        ComparisonOperator::LessThanThreshold => value < threshold,
        ComparisonOperator::LessThanOrEqualToThreshold => value <= threshold,
        _ => false,
    }
}

fn comparison_words(op: &ComparisonOperator) -> &'static str {
    match op {
        ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
        ComparisonOperator::GreaterThanThreshold => "greater than",
        ComparisonOperator::LessThanThreshold => "less than",
        ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
        _ => "compared with",
    }
}

/// An anomaly band's bounds by period: (lower, upper).
type Limits = std::collections::BTreeMap<i64, (f64, f64)>;

/// The values of the alarm's last `EvaluationPeriods` complete periods, newest first, and
/// for an alarm on an anomaly band the band's bounds at them.
fn evaluated_points(
    meta: &MetaStore,
    metrics: &Metrics,
    account: &str,
    region: &str,
    a: &MetricAlarm,
    now: i64,
) -> Option<(Vec<Point>, Option<Limits>)> {
    if let Some(queries) = a
        .metrics
        .as_ref()
        .filter(|q| q.iter().any(|q| q.expression.is_some()))
    {
        return math_points(meta, metrics, account, region, a, queries, now);
    }
    let w = watched(a)?;
    let stat = Stat::parse(&w.stat)?;
    let period = w.period as i64 * 1000;
    let n = a.evaluation_periods? as i64;
    let end = now.div_euclid(period) * period;
    let start = end - n * period;
    let key = MetricKey {
        account: account.to_owned(),
        region: region.to_owned(),
        namespace: w.metric.namespace.unwrap_or_default(),
        name: w.metric.metric_name.unwrap_or_default(),
        dimensions: crate::query::dimension_set(w.metric.dimensions),
    };
    let unit = w.unit.as_ref().map(StandardUnit::as_str);
    let mut periods: Vec<Option<Agg>> = vec![None; n as usize];
    for (_, buckets) in metrics.buckets(&key, unit, start, end) {
        for (t, agg) in buckets {
            let i = ((t - start) / period) as usize;
            match &mut periods[i] {
                Some(a) => a.merge(&agg),
                slot => *slot = Some(agg),
            }
        }
    }
    Some((
        periods
            .into_iter()
            .enumerate()
            .map(|(i, agg)| (start + i as i64 * period, agg.and_then(|a| a.statistic(&stat))))
            .rev()
            .collect(),
        None,
    ))
}

/// A number as CloudWatch's reasons print it (Java's `Double.toString`: `25.0`, `0.5`).
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The last `EvaluationPeriods` periods of an alarm on metric math: the returned expression
/// evaluated over the queries it reads, newest first.
fn math_points(
    meta: &MetaStore,
    metrics: &Metrics,
    account: &str,
    region: &str,
    a: &MetricAlarm,
    queries: &[MetricDataQuery],
    now: i64,
) -> Option<(Vec<Point>, Option<Limits>)> {
    let threshold_id = a.threshold_metric_id.as_deref();
    let returned = queries
        .iter()
        .find(|q| q.return_data != Some(false) && Some(q.id.as_str()) != threshold_id)?;
    let period_secs = returned.period.or_else(|| {
        queries
            .iter()
            .filter_map(|q| q.metric_stat.as_ref().map(|m| q.period.unwrap_or(m.period)))
            .min()
    })?;
    let period = period_secs as i64 * 1000;
    let n = a.evaluation_periods? as i64;
    let end = now.div_euclid(period) * period;
    let start = end - n * period;
    let ctx = RequestContext::internal(account, region, now);
    let excluded = |k: &crate::metrics::MetricKey, stat: &str| crate::anomaly::excluded(meta, k, stat);
    let evaluated =
        crate::query::evaluate_queries(metrics, &ctx, queries, start, end, now, &excluded).ok()?;
    let series = evaluated.answers.get(&returned.id)?.first()?.1.clone();
    // The band answers its upper bound, then its lower.
    let limits = match threshold_id {
        Some(id) => match evaluated.answers.get(id)?.as_slice() {
            [(_, upper), (_, lower)] => Some(
                lower
                    .iter()
                    .filter_map(|(t, lo)| upper.get(t).map(|hi| (*t, (*lo, *hi))))
                    .collect(),
            ),
            _ => return None,
        },
        None => None,
    };
    Some((
        (0..n)
            .map(|i| {
                let t = start + i * period;
                (t, series.get(&t).copied())
            })
            .rev()
            .collect(),
        limits,
    ))
}

/// The state the alarm's data call for, with CloudWatch's reason and reason data; `None` keeps
/// the current state (`TreatMissingData: ignore` without data).
fn decide(a: &MetricAlarm, points: &[Point], limits: Option<&Limits>, now: i64) -> Option<Transition> {
    let op = a.comparison_operator.clone()?;
    let threshold = match limits {
        Some(_) => f64::NAN,
        None => a.threshold?,
    };
    // A period the band does not cover (too little training) counts as missing.
    let points: Vec<Point> = match limits {
        Some(l) => points
            .iter()
            .map(|(t, v)| (*t, v.filter(|_| l.contains_key(t))))
            .collect(),
        None => points.to_vec(),
    };
    let points = points.as_slice();
    let n = points.len();
    let m = a.datapoints_to_alarm.map_or(n, |m| m as usize);
    let missing = a.treat_missing_data.as_deref().unwrap_or("missing");
    let present: Vec<(i64, f64)> = points.iter().filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
    let date = |t: i64| {
        let s = Timestamp::from_millis(t).to_iso8601();
        // dd/MM/yy HH:mm:ss, as CloudWatch's reasons print datapoint times.
        format!("{}/{}/{} {}", &s[8..10], &s[5..7], &s[2..4], &s[11..19])
    };
    let (lower_side, upper_side) = match op {
        ComparisonOperator::LessThanLowerThreshold => (true, false),
        ComparisonOperator::GreaterThanUpperThreshold => (false, true),
        _ => (true, true),
    };
    let bound = |t: &i64| {
        limits
            .and_then(|l| l.get(t))
            .copied()
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let reason_data = |state_points: &[(i64, f64)]| {
        let stamp = |t: i64| Timestamp::from_millis(t).to_iso8601().replace('Z', "+0000");
        let mut data = serde_json::json!({
            "version": "1.0",
            "queryDate": stamp(now),
            "startDate": points.last().map(|(t, _)| stamp(*t)),
            "statistic": a.statistic.as_ref().map(|s| s.as_str().to_owned()),
            "period": a.period,
            "recentDatapoints": state_points.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            "threshold": threshold,
            "evaluatedDatapoints": state_points.iter().map(|(t, v)| serde_json::json!({
                "timestamp": stamp(*t),
                "value": v,
            })).collect::<Vec<_>>(),
        });
        if limits.is_some() {
            // An alarm on a band reports the band's bounds at each datapoint instead.
            let o = data.as_object_mut().expect("an object");
            o.remove("threshold");
            o.remove("statistic");
            o.insert(
                "period".into(),
                serde_json::json!(
                    a.metrics
                        .as_ref()
                        .and_then(|q| q.iter().find_map(|q| q.metric_stat.as_ref().map(|m| m.period)))
                ),
            );
            if lower_side {
                o.insert(
                    "recentLowerThresholds".into(),
                    state_points.iter().map(|(t, _)| bound(t).0).collect(),
                );
            }
            if upper_side {
                o.insert(
                    "recentUpperThresholds".into(),
                    state_points.iter().map(|(t, _)| bound(t).1).collect(),
                );
            }
            let evaluated = state_points
                .iter()
                .map(|(t, v)| {
                    let (lo, hi) = bound(t);
                    let mut p = serde_json::json!({"timestamp": stamp(*t), "value": v});
                    match (lower_side, upper_side) {
                        (true, false) => p["threshold"] = lo.into(),
                        (false, true) => p["threshold"] = hi.into(),
                        _ => {
                            p["lowerThreshold"] = lo.into();
                            p["upperThreshold"] = hi.into();
                        }
                    }
                    p
                })
                .collect();
            o.insert("evaluatedDatapoints".into(), evaluated);
        }
        data.to_string()
    };
    let breached = |t: &i64, v: f64| match limits {
        Some(_) => {
            let (lo, hi) = bound(t);
            (lower_side && v < lo) || (upper_side && v > hi)
        }
        None => breaches(&op, v, threshold),
    };
    // "greater than the upper thresholds [..]", as CloudWatch words a band's comparison.
    let band_words = |ps: &[(i64, f64)]| {
        let list = |f: fn((f64, f64)) -> f64| {
            ps.iter()
                .map(|(t, _)| java_double(f(bound(t))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let lower = format!("less than the lower thresholds [{}]", list(|b| b.0));
        let upper = format!("greater than the upper thresholds [{}]", list(|b| b.1));
        match (lower_side, upper_side) {
            (true, false) => lower,
            (false, true) => upper,
            _ => format!("{lower} or {upper}"),
        }
    };
    if present.is_empty() {
        return match missing {
            "ignore" => None,
            "breaching" => Some(Transition {
                state: StateValue::Alarm,
                reason: format!(
                    "Threshold Crossed: no datapoints were received for {n} periods and {n} missing datapoints were treated as [Breaching]."
                ),
                data: Some(reason_data(&[])),
            }),
            "notBreaching" => Some(Transition {
                state: StateValue::Ok,
                reason: format!(
                    "Threshold Crossed: no datapoints were received for {n} periods and {n} missing datapoints were treated as [NonBreaching]."
                ),
                data: Some(reason_data(&[])),
            }),
            _ => Some(Transition {
                state: StateValue::InsufficientData,
                reason: format!(
                    "Insufficient Data: {n} datapoint{} were unknown.",
                    if n == 1 { "" } else { "s" }
                ),
                data: Some(reason_data(&[])),
            }),
        };
    }
    let missing_breach = if missing == "breaching" {
        n - present.len()
    } else {
        0
    };
    let breaching: Vec<(i64, f64)> = present.iter().copied().filter(|(t, v)| breached(t, *v)).collect();
    let list = |ps: &[(i64, f64)]| {
        ps.iter()
            .map(|(t, v)| format!("{} ({})", java_double(*v), date(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let threshold_text = java_double(threshold);
    if limits.is_some() {
        let plural = |k: usize| if k == 1 { "" } else { "s" };
        return Some(if breaching.len() + missing_breach >= m {
            let k = breaching.len();
            Transition {
                state: StateValue::Alarm,
                reason: format!(
                    "Thresholds Crossed: {k} out of the last {n} datapoints [{}] {} {} (minimum {m} datapoint{} for OK -> ALARM transition).",
                    list(&breaching),
                    if k == 1 { "was" } else { "were" },
                    band_words(&breaching),
                    plural(m),
                ),
                data: Some(reason_data(&present)),
            }
        } else {
            let calm: Vec<(i64, f64)> = present
                .iter()
                .copied()
                .filter(|(t, v)| !breached(t, *v))
                .collect();
            let k = calm.len();
            Transition {
                state: StateValue::Ok,
                reason: format!(
                    "Thresholds Crossed: {k} out of the last {n} datapoints [{}] {} not {} (minimum 1 datapoint for ALARM -> OK transition).",
                    list(&calm),
                    if k == 1 { "was" } else { "were" },
                    band_words(&calm),
                ),
                data: Some(reason_data(&present)),
            }
        });
    }
    if breaching.len() + missing_breach >= m {
        let k = breaching.len();
        Some(Transition {
            state: StateValue::Alarm,
            reason: format!(
                "Threshold Crossed: {k} out of the last {n} datapoints [{}] {} {} the threshold ({threshold_text}) (minimum {m} datapoint{} for OK -> ALARM transition).",
                list(&breaching),
                if k == 1 { "was" } else { "were" },
                comparison_words(&op),
                if m == 1 { "" } else { "s" },
            ),
            data: Some(reason_data(&present)),
        })
    } else {
        Some(Transition {
            state: StateValue::Ok,
            // As CloudWatch words it: "1 out of the last 1 datapoints [..] was not greater than
            // the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition)."
            reason: {
                let calm: Vec<(i64, f64)> = present
                    .iter()
                    .copied()
                    .filter(|(t, v)| !breached(t, *v))
                    .collect();
                format!(
                    "Threshold Crossed: {} out of the last {n} datapoints [{}] {} not {} the threshold ({threshold_text}) (minimum 1 datapoint for ALARM -> OK transition).",
                    calm.len(),
                    list(&calm),
                    if calm.len() == 1 { "was" } else { "were" },
                    comparison_words(&op),
                )
            },
            data: Some(reason_data(&present)),
        })
    }
}

/// Evaluates every alarm once.
pub async fn evaluate_all(meta: &MetaStore, metrics: &Metrics, actions: Option<&Arc<dyn EventSink>>) {
    let now = metrics.now_millis();
    let rows = match meta.scan_prefix(ALARMS, b"", None, usize::MAX) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("cannot read alarms: {e}");
            return;
        }
    };
    for (key, value) in rows {
        let Ok(stored) = serde_json::from_slice::<Stored<MetricAlarm>>(&value) else {
            continue;
        };
        let Some((account, region, _)) = stored.alarm.alarm_arn.as_deref().and_then(parse_arn) else {
            continue;
        };
        let (account, region) = (account.to_owned(), region.to_owned());
        let Some((points, limits)) = evaluated_points(meta, metrics, &account, &region, &stored.alarm, now)
        else {
            continue;
        };
        if let Some(t) = decide(&stored.alarm, &points, limits.as_ref(), now)
            && let Err(e) = transition(meta, actions, key, stored, t, now, &region).await
        {
            tracing::warn!("alarm evaluation failed: {e}");
        }
    }
    // Composite alarms follow the states just decided.
    crate::composite::evaluate_all(meta, actions, now).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(op: ComparisonOperator, m: Option<i32>, missing: Option<&str>) -> MetricAlarm {
        MetricAlarm {
            comparison_operator: Some(op),
            threshold: Some(10.0),
            datapoints_to_alarm: m,
            treat_missing_data: missing.map(str::to_owned),
            evaluation_periods: Some(3),
            period: Some(60),
            statistic: Some(Statistic::Sum),
            ..Default::default()
        }
    }

    #[test]
    fn m_out_of_n_and_missing_data() {
        let pts = |v: [Option<f64>; 3]| -> Vec<Point> {
            v.iter()
                .enumerate()
                .map(|(i, v)| (i as i64 * 60_000, *v))
                .collect()
        };
        let a = alarm(ComparisonOperator::GreaterThanThreshold, Some(2), None);
        assert_eq!(
            decide(&a, &pts([Some(11.0), Some(1.0), Some(12.0)]), None, 0)
                .unwrap()
                .state,
            StateValue::Alarm
        );
        assert_eq!(
            decide(&a, &pts([Some(11.0), Some(1.0), Some(2.0)]), None, 0)
                .unwrap()
                .state,
            StateValue::Ok
        );
        assert_eq!(
            decide(&a, &pts([None, None, None]), None, 0).unwrap().state,
            StateValue::InsufficientData
        );
        let b = alarm(
            ComparisonOperator::GreaterThanThreshold,
            Some(2),
            Some("breaching"),
        );
        assert_eq!(
            decide(&b, &pts([Some(11.0), None, Some(2.0)]), None, 0)
                .unwrap()
                .state,
            StateValue::Alarm
        );
        let i = alarm(ComparisonOperator::GreaterThanThreshold, None, Some("ignore"));
        assert!(decide(&i, &pts([None, None, None]), None, 0).is_none());
        let l = alarm(
            ComparisonOperator::LessThanOrEqualToThreshold,
            None,
            Some("notBreaching"),
        );
        assert_eq!(
            decide(&l, &pts([Some(10.0), Some(3.0), Some(9.0)]), None, 0)
                .unwrap()
                .state,
            StateValue::Alarm
        );
        assert_eq!(
            decide(&l, &pts([None, None, None]), None, 0).unwrap().state,
            StateValue::Ok
        );
        let t = decide(&a, &pts([Some(11.0), Some(1.0), Some(12.0)]), None, 0).unwrap();
        assert!(t.reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [11.0 (01/01/70 00:00:00), 12.0 (01/01/70 00:02:00)] were greater than the threshold (10.0)"), "{}", t.reason);
    }
}
