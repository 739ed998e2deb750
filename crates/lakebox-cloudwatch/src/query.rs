//! Reading metrics: GetMetricStatistics, GetMetricData (MetricStat queries) and ListMetrics.

use std::collections::{BTreeMap, HashMap, HashSet};

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;

use crate::api::*;
use crate::errors::{invalid_combination, invalid_value};
use crate::math;
use crate::metrics::{MINUTE, MetricKey, Metrics};
use crate::stats::{Agg, Stat};

/// GetMetricStatistics answers at most this many datapoints.
const MAX_DATAPOINTS: i64 = 1440;
/// GetMetricData's default MaxDatapoints.
const DEFAULT_MAX_DATAPOINTS: usize = 100_800;
/// ListMetrics' page.
const LIST_PAGE: usize = 500;
const DAY: i64 = 24 * 60 * MINUTE;

/// A metric's dimensions as its key holds them: sorted by name, as a metric is the same
/// whatever order they were sent in.
pub fn dimension_set(dims: Option<Vec<Dimension>>) -> Vec<(String, String)> {
    let mut set: Vec<(String, String)> = dims
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.name, d.value))
        .collect();
    set.sort();
    set
}

/// The metric a MetricStat reads, in the caller's account and region.
pub fn stat_key(ctx: &RequestContext, ms: &MetricStat) -> MetricKey {
    metric_key(
        ctx,
        ms.metric.namespace.as_deref().unwrap_or_default(),
        ms.metric.metric_name.as_deref().unwrap_or_default(),
        ms.metric.dimensions.clone(),
    )
}

pub fn metric_key(
    ctx: &RequestContext,
    namespace: &str,
    name: &str,
    dims: Option<Vec<Dimension>>,
) -> MetricKey {
    MetricKey {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        dimensions: dimension_set(dims),
    }
}

/// A period CloudWatch accepts: 1, 5, 10, 20 or 30 seconds (high-resolution data), or a
/// multiple of 60.
fn check_period(period: i32, what: &str) -> Result<i64, ServiceError> {
    if period > 0 && (period % 60 == 0 || [1, 5, 10, 20, 30].contains(&period)) {
        Ok(period as i64 * 1000)
    } else {
        Err(invalid_value(format!(
            "The parameter {what} must be a multiple of 60."
        )))
    }
}

/// Where the first period starts: the start time rounded down as CloudWatch rounds it (to the
/// minute within 15 days, to 5 minutes within 63 days, to the hour beyond), and to the period
/// when that is shorter than a minute.
fn aligned_start(start: i64, period: i64, now: i64) -> i64 {
    let age = now - start;
    let unit = if period < MINUTE {
        period
    } else if age <= 15 * DAY {
        MINUTE
    } else if age <= 63 * DAY {
        5 * MINUTE
    } else {
        60 * MINUTE
    };
    start.div_euclid(unit) * unit
}

/// The samples of each period with data, per unit: (unit, [(period start, samples)]).
fn by_period(
    metrics: &Metrics,
    key: &MetricKey,
    unit: Option<&str>,
    start: i64,
    end: i64,
    period: i64,
) -> Vec<(String, Vec<(i64, Agg)>)> {
    metrics
        .buckets(key, unit, start, end)
        .into_iter()
        .map(|(unit, buckets)| {
            let mut periods: BTreeMap<i64, Agg> = BTreeMap::new();
            for (t, agg) in buckets {
                let p = start + (t - start).div_euclid(period) * period;
                match periods.get_mut(&p) {
                    Some(a) => a.merge(&agg),
                    None => {
                        periods.insert(p, agg);
                    }
                }
            }
            (unit, periods.into_iter().collect())
        })
        .collect()
}

pub fn get_metric_statistics(
    metrics: &Metrics,
    ctx: &RequestContext,
    input: GetMetricStatisticsInput,
) -> Result<GetMetricStatisticsOutput, ServiceError> {
    let period = check_period(input.period, "Period")?;
    let statistics = input.statistics.unwrap_or_default();
    let extended = input.extended_statistics.unwrap_or_default();
    if statistics.is_empty() && extended.is_empty() {
        return Err(invalid_combination(
            "At least one of the parameters Statistics and ExtendedStatistics must be specified.",
        ));
    }
    if !statistics.is_empty() && !extended.is_empty() {
        return Err(invalid_combination(
            "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.",
        ));
    }
    let percentiles: Vec<(String, Stat)> = extended
        .iter()
        .enumerate()
        .map(|(i, s)| match Stat::parse(s) {
            Some(st)
                if !matches!(
                    st,
                    Stat::SampleCount | Stat::Sum | Stat::Average | Stat::Minimum | Stat::Maximum
                ) =>
            {
                Ok((s.clone(), st))
            }
            _ => Err(invalid_value(format!(
                "The value {s} for parameter ExtendedStatistics.member.{} is not supported.",
                i + 1
            ))),
        })
        .collect::<Result<_, _>>()?;
    let (start, end) = (input.start_time.as_millis(), input.end_time.as_millis());
    if start >= end {
        return Err(invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let start = aligned_start(start, period, metrics.now_millis());
    let requested = (end - start + period - 1) / period;
    if requested > MAX_DATAPOINTS {
        return Err(invalid_combination(format!(
            "You have requested up to {requested} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
        )));
    }
    let key = metric_key(ctx, &input.namespace, &input.metric_name, input.dimensions);
    let unit = input.unit.as_ref().map(StandardUnit::as_str);
    let mut datapoints = Vec::new();
    for (unit, periods) in by_period(metrics, &key, unit, start, end, period) {
        for (t, agg) in periods {
            let stat = |s: Stat| agg.statistic(&s);
            let mut p = Datapoint {
                timestamp: Some(Timestamp::from_millis(t)),
                unit: Some(StandardUnit::from(unit.as_str())),
                ..Default::default()
            };
            for s in &statistics {
                match s.as_str() {
                    "SampleCount" => p.sample_count = stat(Stat::SampleCount),
                    "Average" => p.average = stat(Stat::Average),
                    "Sum" => p.sum = stat(Stat::Sum),
                    "Minimum" => p.minimum = stat(Stat::Minimum),
                    "Maximum" => p.maximum = stat(Stat::Maximum),
                    _ => {}
                }
            }
            if !percentiles.is_empty() {
                let values: BTreeMap<String, f64> = percentiles
                    .iter()
                    .filter_map(|(name, s)| agg.statistic(s).map(|v| (name.clone(), v)))
                    .collect();
                p.extended_statistics = Some(values);
            }
            datapoints.push(p);
        }
    }
    datapoints.sort_by_key(|p| p.timestamp);
    Ok(GetMetricStatisticsOutput {
        label: Some(input.metric_name),
        datapoints: Some(datapoints),
    })
}

/// Where a GetMetricData page resumes: the query and how many of its values were sent.
fn parse_token(token: Option<&str>) -> Result<(usize, usize), ServiceError> {
    let Some(t) = token else { return Ok((0, 0)) };
    t.split_once('.')
        .and_then(|(q, v)| Some((q.parse().ok()?, v.parse().ok()?)))
        .ok_or_else(|| ServiceError::client("InvalidNextToken", "The service cannot read the NextToken."))
}

/// One query's answer before paging: its id, label and points.
struct Answer {
    id: String,
    label: String,
    points: Vec<(i64, f64)>,
}

pub fn get_metric_data(
    metrics: &Metrics,
    ctx: &RequestContext,
    input: GetMetricDataInput,
    excluded: &Excluded<'_>,
) -> Result<GetMetricDataOutput, ServiceError> {
    let (start, end) = (input.start_time.as_millis(), input.end_time.as_millis());
    if start >= end {
        return Err(invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let mut ids = HashSet::new();
    for (i, q) in input.metric_data_queries.iter().enumerate() {
        let at = |m: &str| format!("MetricDataQueries.member.{}.{m}", i + 1);
        if !ids.insert(q.id.as_str()) {
            return Err(invalid_value(format!(
                "The value {} for parameter {} is not unique.",
                q.id,
                at("Id")
            )));
        }
        if q.metric_stat.is_some() == q.expression.is_some() {
            return Err(invalid_combination(format!(
                "Exactly one of the parameters {} and {} must be specified.",
                at("MetricStat"),
                at("Expression")
            )));
        }
    }
    let now = metrics.now_millis();
    let env = evaluate_queries(
        metrics,
        ctx,
        &input.metric_data_queries,
        start,
        end,
        now,
        excluded,
    )?;
    let descending = !matches!(input.scan_by, Some(ScanBy::TimestampAscending));
    let max = input
        .max_datapoints
        .map_or(DEFAULT_MAX_DATAPOINTS, |m| m.max(1) as usize);
    let (first, mut skip) = parse_token(input.next_token.as_deref())?;
    let already = skip;
    let mut answers = Vec::new();
    for q in &input.metric_data_queries {
        if q.return_data == Some(false) {
            continue;
        }
        // A band's two bounds carry the query's label already ("<label> Upper").
        let band = q.expression.as_deref().is_some_and(math::is_band);
        for (label, series) in env.answers.get(&q.id).cloned().unwrap_or_default() {
            answers.push(Answer {
                id: q.id.clone(),
                label: if band {
                    label
                } else {
                    q.label.clone().unwrap_or(label)
                },
                points: series.into_iter().collect(),
            });
        }
    }
    let mut results = Vec::new();
    let mut budget = max;
    let mut next_token = None;
    for (i, mut a) in answers.into_iter().enumerate() {
        if i < first {
            continue;
        }
        if descending {
            a.points.reverse();
        }
        let points: Vec<(i64, f64)> = a.points.into_iter().skip(skip).collect();
        let skipped = skip;
        skip = 0;
        let (sent, rest) = points.split_at(points.len().min(budget));
        budget -= sent.len();
        results.push(MetricDataResult {
            id: Some(a.id),
            label: Some(a.label),
            timestamps: Some(sent.iter().map(|(t, _)| Timestamp::from_millis(*t)).collect()),
            values: Some(sent.iter().map(|(_, v)| *v).collect()),
            status_code: Some(if rest.is_empty() {
                StatusCode::Complete
            } else {
                StatusCode::PartialData
            }),
            messages: Some(Vec::new()),
        });
        if !rest.is_empty() {
            let done = if i == first { already.max(skipped) } else { 0 };
            next_token = Some(format!("{i}.{}", done + sent.len()));
            break;
        }
    }
    Ok(GetMetricDataOutput {
        metric_data_results: Some(results),
        next_token,
        messages: Some(Vec::new()),
    })
}

/// Every query's series: metric queries read from the store, expressions evaluated after the
/// queries they read.
pub struct Evaluated {
    /// By query id: the series it answers (one for a metric, one or more for an expression).
    pub answers: HashMap<String, Vec<(String, math::Series)>>,
}

/// Metrics one SEARCH returns at most, as CloudWatch's limit.
const MAX_SEARCH_RESULTS: usize = 500;

/// A metric's statistic per period from `first`: its units folded together, as one series
/// (units are kept apart in storage; a query for all of them sees them as one).
fn stat_series(
    metrics: &Metrics,
    key: &MetricKey,
    unit: Option<&str>,
    stat: &Stat,
    first: i64,
    end: i64,
    period: i64,
) -> math::Series {
    let mut by_time: BTreeMap<i64, Agg> = BTreeMap::new();
    for (_, ps) in by_period(metrics, key, unit, first, end, period) {
        for (t, agg) in ps {
            match by_time.get_mut(&t) {
                Some(a) => a.merge(&agg),
                None => {
                    by_time.insert(t, agg);
                }
            }
        }
    }
    by_time
        .into_iter()
        .filter_map(|(t, agg)| agg.statistic(stat).map(|v| (t, v)))
        .collect()
}

/// The time ranges an anomaly detector leaves out of a metric's band (by metric and statistic).
pub type Excluded<'a> = dyn Fn(&MetricKey, &str) -> Vec<(i64, i64)> + 'a;

/// The starts of the periods from `first` until `end` (at most GetMetricData's 100,800).
fn periods_from(first: i64, period: i64, end: i64) -> Vec<i64> {
    (0..)
        .map(|k| first + k * period)
        .take_while(|t| *t < end)
        .take(100_800)
        .collect()
}

pub fn evaluate_queries(
    metrics: &Metrics,
    ctx: &RequestContext,
    queries: &[MetricDataQuery],
    start: i64,
    end: i64,
    now: i64,
    excluded: &Excluded<'_>,
) -> Result<Evaluated, ServiceError> {
    let mut series: HashMap<String, (String, math::Series)> = HashMap::new();
    let mut metric_ids = Vec::new();
    let mut periods = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let Some(ms) = &q.metric_stat else { continue };
        let at = |m: &str| format!("MetricDataQueries.member.{}.MetricStat.{m}", i + 1);
        let period = check_period(q.period.unwrap_or(ms.period), &at("Period"))?;
        periods.push(period);
        let stat = Stat::parse(&ms.stat).ok_or_else(|| {
            invalid_value(format!(
                "The value {} for parameter {} is not valid.",
                ms.stat,
                at("Stat")
            ))
        })?;
        let key = stat_key(ctx, ms);
        let first = aligned_start(start, period, now);
        let unit = ms.unit.as_ref().map(StandardUnit::as_str);
        let points = stat_series(metrics, &key, unit, &stat, first, end, period);
        series.insert(q.id.clone(), (key.name.clone(), points));
        metric_ids.push(q.id.clone());
    }
    let mut answers: HashMap<String, Vec<(String, math::Series)>> = series
        .iter()
        .map(|(id, s)| (id.clone(), vec![s.clone()]))
        .collect();
    let expressions: HashMap<&str, (usize, &MetricDataQuery)> = queries
        .iter()
        .enumerate()
        .filter(|(_, q)| q.expression.is_some())
        .map(|(i, q)| (q.id.as_str(), (i, q)))
        .collect();
    // The grid FILL fills: the expression's period (or the metrics'), from the aligned start.
    let default_period = periods.iter().copied().min().unwrap_or(60_000);
    let mut done: HashSet<String> = HashSet::new();
    fn visit<'q>(
        id: &'q str,
        expressions: &HashMap<&'q str, (usize, &'q MetricDataQuery)>,
        order: &mut Vec<&'q str>,
        visiting: &mut HashSet<&'q str>,
        done: &mut HashSet<String>,
    ) -> Result<(), ServiceError> {
        let Some((i, q)) = expressions.get(id) else {
            return Ok(());
        };
        if done.contains(id) {
            return Ok(());
        }
        if !visiting.insert(id) {
            return Err(invalid_value(format!(
                "The expression of MetricDataQueries.member.{}.Expression refers to itself.",
                i + 1
            )));
        }
        let text = q.expression.as_deref().unwrap_or_default();
        let refs =
            math::references(text).map_err(|e| invalid_value(format!("Error in expression {id}: {e}")))?;
        for r in refs {
            if let Some((k, _)) = expressions.get_key_value(r.as_str()) {
                visit(k, expressions, order, visiting, done)?;
            }
        }
        done.insert(id.to_owned());
        order.push(id);
        Ok(())
    }
    let mut order = Vec::new();
    let mut visiting = HashSet::new();
    for q in queries.iter().filter(|q| q.expression.is_some()) {
        visit(&q.id, &expressions, &mut order, &mut visiting, &mut done)?;
    }
    for id in order {
        let (_, q) = expressions[id];
        let period = q.period.map_or(default_period, |p| p as i64 * 1000);
        let first = aligned_start(start, period, now);
        let grid = periods_from(first, period, end);
        let search =
            |query: &str, stat: &str, period_secs: i64| -> Result<Vec<(String, math::Series)>, String> {
                let stat = Stat::parse(stat).ok_or_else(|| format!("Invalid statistic {stat} in SEARCH"))?;
                if period_secs <= 0 {
                    return Err("The period of SEARCH must be positive".into());
                }
                let period = period_secs * 1000;
                let wanted = crate::search::Search::parse(query)?;
                let (keys, _) =
                    metrics.list(&ctx.account_id, &ctx.region, None, MAX_SEARCH_RESULTS, |k, _| {
                        wanted.matches(k)
                    });
                let first = aligned_start(start, period, now);
                Ok(keys
                    .iter()
                    .map(|k| {
                        (
                            crate::search::label(k),
                            stat_series(metrics, k, None, &stat, first, end, period),
                        )
                    })
                    .filter(|(_, s)| !s.is_empty())
                    .collect())
            };
        let label = q.label.clone().unwrap_or_else(|| id.to_owned());
        let band = |target: &str, width: f64| -> Result<Vec<(String, math::Series)>, String> {
            let ms = queries
                .iter()
                .find(|m| m.id == target)
                .and_then(|m| m.metric_stat.as_ref().map(|ms| (m, ms)));
            let Some((m, ms)) = ms else {
                return Err(format!(
                    "ANOMALY_DETECTION_BAND needs the id of a metric query (a MetricStat), not {target}"
                ));
            };
            let period = m.period.unwrap_or(ms.period) as i64 * 1000;
            let stat = Stat::parse(&ms.stat).ok_or_else(|| format!("Invalid statistic {}", ms.stat))?;
            let key = stat_key(ctx, ms);
            let first = aligned_start(start, period, now);
            let band_grid = periods_from(first, period, end);
            // The two weeks before the first period train it, in whole periods.
            let trained_from = first - (crate::anomaly::TRAINING + period - 1) / period * period;
            let unit = ms.unit.as_ref().map(StandardUnit::as_str);
            let history = stat_series(metrics, &key, unit, &stat, trained_from, end, period);
            let (lower, upper) = crate::anomaly::band(&history, &band_grid, width, &excluded(&key, &ms.stat));
            Ok(vec![
                (format!("{label} Upper"), upper),
                (format!("{label} Lower"), lower),
            ])
        };
        let env = math::Env {
            series: &series,
            metric_ids: &metric_ids,
            period_secs: period as f64 / 1000.0,
            grid: &grid,
            search: &search,
            band: &band,
        };
        let text = q.expression.as_deref().unwrap_or_default();
        let value = math::evaluate(text, &env)
            .map_err(|e| invalid_value(format!("Error in expression {id}: {e}")))?;
        let out: Vec<(String, math::Series)> = match value {
            math::Value::Series(s) => vec![(label.clone(), s)],
            math::Value::Array(a) => a,
            math::Value::Scalar(_) => {
                return Err(invalid_value(format!(
                    "Error in expression {id}: the expression must return a time series."
                )));
            }
        };
        if let [(_, s)] = out.as_slice() {
            series.insert(id.to_owned(), (label, s.clone()));
        }
        answers.insert(id.to_owned(), out);
    }
    Ok(Evaluated { answers })
}

pub fn list_metrics(
    metrics: &Metrics,
    ctx: &RequestContext,
    input: ListMetricsInput,
) -> Result<ListMetricsOutput, ServiceError> {
    let after = input
        .next_token
        .as_deref()
        .map(|t| {
            serde_json::from_str::<MetricKey>(t)
                .ok()
                .filter(|k| k.account == ctx.account_id && k.region == ctx.region)
                .ok_or_else(|| {
                    ServiceError::client("InvalidNextToken", "The service cannot read the NextToken.")
                })
        })
        .transpose()?;
    let filters = input.dimensions.unwrap_or_default();
    let now = metrics.now_millis();
    // ListMetrics shows metrics with data in the last two weeks; RecentlyActive, the last 3 hours.
    let active_since = match input.recently_active {
        Some(_) => now - 3 * 60 * MINUTE,
        None => now - 14 * DAY,
    };
    let (keys, more) = metrics.list(
        &ctx.account_id,
        &ctx.region,
        after.as_ref(),
        LIST_PAGE,
        |k, last_put| {
            last_put >= active_since
                && input.namespace.as_ref().is_none_or(|n| *n == k.namespace)
                && input.metric_name.as_ref().is_none_or(|n| *n == k.name)
                && filters.iter().all(|f| {
                    k.dimensions
                        .iter()
                        .any(|(n, v)| *n == f.name && f.value.as_ref().is_none_or(|fv| fv == v))
                })
        },
    );
    let next_token = if more {
        keys.last().and_then(|k| serde_json::to_string(k).ok())
    } else {
        None
    };
    Ok(ListMetricsOutput {
        metrics: Some(
            keys.into_iter()
                .map(|k| Metric {
                    namespace: Some(k.namespace),
                    metric_name: Some(k.name),
                    dimensions: Some(
                        k.dimensions
                            .into_iter()
                            .map(|(name, value)| Dimension { name, value })
                            .collect(),
                    ),
                })
                .collect(),
        ),
        next_token,
        owning_accounts: None,
    })
}
