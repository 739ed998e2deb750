//! Anomaly detection: PutAnomalyDetector / DescribeAnomalyDetectors / DeleteAnomalyDetector,
//! and the band of expected values, `ANOMALY_DETECTION_BAND(m1, k)`, that GetMetricData draws
//! and alarms compare with (`LessThanLowerOrGreaterThanUpperThreshold`, `LessThanLowerThreshold`,
//! `GreaterThanUpperThreshold` with `ThresholdMetricId`).
//!
//! CloudWatch's band comes from a machine-learning model it does not publish; Lakebox's is a
//! stated statistic instead (decision 0019): at each period, the mean of the metric's values
//! (same statistic, same period) over the two weeks before it, plus and minus `k` (default 2)
//! standard deviations, leaving out the detector's excluded time ranges; a period with fewer
//! than three values before it has no band (an alarm sees its datapoint as missing). No
//! seasonality is learnt. A metric that jumps far from its recent values leaves the band, as
//! on AWS; how wide the band is for a noisy or seasonal metric differs from AWS.

use lakebox_core::{RequestContext, ServiceError};
use lakebox_store::MetaStore;

use crate::api::*;
use crate::errors::invalid_value;
use crate::math::Series;
use crate::metrics::{MINUTE, MetricKey, Metrics};

const DETECTORS: &str = "anomaly_detectors";
/// How far back a band's mean and deviation look.
pub const TRAINING: i64 = 14 * 24 * 60 * MINUTE;
/// Values a period needs before it to have a band.
pub const MIN_TRAINING_POINTS: usize = 3;
/// The band's width in standard deviations when the expression does not say.
pub const DEFAULT_WIDTH: f64 = 2.0;
/// DescribeAnomalyDetectors' largest page.
const PAGE: usize = 100;

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("anomaly detector store: {e}"))
}

/// The band of `history` (one value per period, by period start) at each time of `grid`:
/// (lower, upper) bounds, for the times with enough values in the two weeks before them.
pub fn band(history: &Series, grid: &[i64], width: f64, excluded: &[(i64, i64)]) -> (Series, Series) {
    let kept: Vec<(i64, f64)> = history
        .iter()
        .filter(|(t, _)| !excluded.iter().any(|(a, b)| *t >= a && *t < b))
        .map(|(t, v)| (*t, *v))
        .collect();
    let (mut lower, mut upper) = (Series::new(), Series::new());
    // A window sliding over the values in [t - TRAINING, t), as `grid` ascends.
    let (mut lo, mut hi) = (0usize, 0usize);
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for &t in grid {
        while hi < kept.len() && kept[hi].0 < t {
            sum += kept[hi].1;
            sum_sq += kept[hi].1 * kept[hi].1;
            hi += 1;
        }
        while lo < hi && kept[lo].0 < t - TRAINING {
            sum -= kept[lo].1;
            sum_sq -= kept[lo].1 * kept[lo].1;
            lo += 1;
        }
        let n = (hi - lo) as f64;
        if hi - lo < MIN_TRAINING_POINTS {
            continue;
        }
        let mean = sum / n;
        let deviation = (sum_sq / n - mean * mean).max(0.0).sqrt();
        lower.insert(t, mean - width * deviation);
        upper.insert(t, mean + width * deviation);
    }
    (lower, upper)
}

/// A detector's identity in the store: its account and region, then its metric and
/// statistic (or its metric math).
fn key(account: &str, region: &str, d: &AnomalyDetector) -> Vec<u8> {
    let mut k = format!("{account}\0{region}\0");
    match (&d.single_metric_anomaly_detector, &d.metric_math_anomaly_detector) {
        (Some(s), _) => {
            let dims = crate::query::dimension_set(s.dimensions.clone());
            k.push_str(&format!(
                "single\0{}\0{}\0{}\0{}",
                s.namespace.as_deref().unwrap_or_default(),
                s.metric_name.as_deref().unwrap_or_default(),
                dims.iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("\u{1}"),
                s.stat.as_deref().unwrap_or_default(),
            ));
        }
        (None, Some(m)) => {
            let queries = serde_json::to_string(&m.metric_data_queries).unwrap_or_default();
            k.push_str(&format!("math\0{queries}"));
        }
        (None, None) => {}
    }
    k.into_bytes()
}

/// The detector a request names: `SingleMetricAnomalyDetector`, `MetricMathAnomalyDetector`,
/// or the older top-level `Namespace` / `MetricName` / `Dimensions` / `Stat`.
fn named(
    ctx: &RequestContext,
    legacy: (
        Option<String>,
        Option<String>,
        Option<Vec<Dimension>>,
        Option<String>,
    ),
    single: Option<SingleMetricAnomalyDetector>,
    math: Option<MetricMathAnomalyDetector>,
) -> Result<AnomalyDetector, ServiceError> {
    let (namespace, metric_name, dimensions, stat) = legacy;
    let legacy_given = namespace.is_some() || metric_name.is_some() || dimensions.is_some() || stat.is_some();
    let single = match (single, legacy_given) {
        (Some(_), true) => {
            return Err(crate::errors::invalid_combination(
                "The parameters SingleMetricAnomalyDetector and Namespace, MetricName, Dimensions, Stat are mutually exclusive.",
            ));
        }
        (Some(s), false) => Some(s),
        (None, true) => Some(SingleMetricAnomalyDetector {
            account_id: None,
            namespace,
            metric_name,
            dimensions,
            stat,
        }),
        (None, false) => None,
    };
    match (single, math) {
        (Some(_), Some(_)) => Err(crate::errors::invalid_combination(
            "The parameters SingleMetricAnomalyDetector and MetricMathAnomalyDetector are mutually exclusive.",
        )),
        (Some(mut s), None) => {
            for (what, v) in [
                ("Namespace", &s.namespace),
                ("MetricName", &s.metric_name),
                ("Stat", &s.stat),
            ] {
                if v.as_deref().is_none_or(str::is_empty) {
                    return Err(ServiceError::client(
                        "MissingParameter",
                        format!("The parameter SingleMetricAnomalyDetector.{what} is required."),
                    ));
                }
            }
            let stat = s.stat.as_deref().unwrap_or_default();
            if crate::stats::Stat::parse(stat).is_none() {
                return Err(invalid_value(format!(
                    "The value {stat} for parameter SingleMetricAnomalyDetector.Stat is not valid."
                )));
            }
            s.account_id = Some(s.account_id.unwrap_or_else(|| ctx.account_id.clone()));
            Ok(AnomalyDetector {
                namespace: s.namespace.clone(),
                metric_name: s.metric_name.clone(),
                dimensions: Some(s.dimensions.clone().unwrap_or_default()),
                stat: s.stat.clone(),
                single_metric_anomaly_detector: Some(s),
                ..Default::default()
            })
        }
        (None, Some(m)) => {
            let queries = m.metric_data_queries.as_deref().unwrap_or_default();
            if queries.iter().filter(|q| q.return_data != Some(false)).count() != 1 {
                return Err(invalid_value(
                    "The MetricDataQueries of a MetricMathAnomalyDetector must return exactly one time series (one ReturnData true).",
                ));
            }
            Ok(AnomalyDetector {
                metric_math_anomaly_detector: Some(m),
                ..Default::default()
            })
        }
        (None, None) => Err(ServiceError::client(
            "MissingParameter",
            "Either SingleMetricAnomalyDetector or MetricMathAnomalyDetector must be specified.",
        )),
    }
}

fn check_configuration(c: &AnomalyDetectorConfiguration) -> Result<(), ServiceError> {
    for r in c.excluded_time_ranges.iter().flatten() {
        if r.start_time.as_millis() >= r.end_time.as_millis() {
            return Err(invalid_value(
                "The start time of an excluded time range must be before its end time.",
            ));
        }
    }
    if let Some(tz) = &c.metric_timezone
        && tz.is_empty()
    {
        return Err(invalid_value(
            "The value for parameter MetricTimezone is not valid.",
        ));
    }
    Ok(())
}

pub async fn put(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: PutAnomalyDetectorInput,
) -> Result<(), ServiceError> {
    let mut d = named(
        ctx,
        (input.namespace, input.metric_name, input.dimensions, input.stat),
        input.single_metric_anomaly_detector,
        input.metric_math_anomaly_detector,
    )?;
    if let Some(c) = &input.configuration {
        check_configuration(c)?;
    }
    d.configuration = Some(input.configuration.unwrap_or(AnomalyDetectorConfiguration {
        excluded_time_ranges: Some(Vec::new()),
        metric_timezone: None,
    }));
    d.metric_characteristics = input.metric_characteristics;
    store(meta, ctx, d).await
}

async fn store(meta: &MetaStore, ctx: &RequestContext, d: AnomalyDetector) -> Result<(), ServiceError> {
    let k = key(&ctx.account_id, &ctx.region, &d);
    let value = serde_json::to_vec(&d).map_err(internal)?;
    meta.write_async(move |b| b.put(DETECTORS, &k, &value))
        .await
        .map_err(internal)
}

/// Creates the detector of a metric an alarm's band reads, when there is none (as CloudWatch
/// does for an alarm on `ANOMALY_DETECTION_BAND`).
pub async fn ensure(meta: &MetaStore, ctx: &RequestContext, stat: &MetricStat) -> Result<(), ServiceError> {
    let d = named(
        ctx,
        (None, None, None, None),
        Some(SingleMetricAnomalyDetector {
            account_id: None,
            namespace: stat.metric.namespace.clone(),
            metric_name: stat.metric.metric_name.clone(),
            dimensions: stat.metric.dimensions.clone(),
            stat: Some(stat.stat.clone()),
        }),
        None,
    )?;
    if meta
        .get(DETECTORS, &key(&ctx.account_id, &ctx.region, &d))
        .map_err(internal)?
        .is_some()
    {
        return Ok(());
    }
    let mut d = d;
    d.configuration = Some(AnomalyDetectorConfiguration {
        excluded_time_ranges: Some(Vec::new()),
        metric_timezone: None,
    });
    store(meta, ctx, d).await
}

pub async fn delete(
    meta: &MetaStore,
    ctx: &RequestContext,
    input: DeleteAnomalyDetectorInput,
) -> Result<(), ServiceError> {
    let d = named(
        ctx,
        (input.namespace, input.metric_name, input.dimensions, input.stat),
        input.single_metric_anomaly_detector,
        input.metric_math_anomaly_detector,
    )?;
    let k = key(&ctx.account_id, &ctx.region, &d);
    let gone = meta
        .write_async(move |b| b.delete(DETECTORS, &k))
        .await
        .map_err(internal)?;
    if !gone {
        return Err(ServiceError::new(
            "ResourceNotFoundException",
            404,
            "No anomaly detection model found.",
        ));
    }
    Ok(())
}

fn all(meta: &MetaStore, account: &str, region: &str) -> Result<Vec<AnomalyDetector>, ServiceError> {
    let prefix = format!("{account}\0{region}\0");
    Ok(meta
        .scan_prefix(DETECTORS, prefix.as_bytes(), None, usize::MAX)
        .map_err(internal)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}

/// The excluded time ranges of the detector of this metric and statistic (none without one).
pub fn excluded(meta: &MetaStore, key: &MetricKey, stat: &str) -> Vec<(i64, i64)> {
    all(meta, &key.account, &key.region)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            d.single_metric_anomaly_detector.as_ref().is_some_and(|s| {
                s.namespace.as_deref() == Some(key.namespace.as_str())
                    && s.metric_name.as_deref() == Some(key.name.as_str())
                    && s.stat.as_deref() == Some(stat)
                    && crate::query::dimension_set(s.dimensions.clone()) == key.dimensions
            })
        })
        .flat_map(|d| {
            d.configuration
                .and_then(|c| c.excluded_time_ranges)
                .unwrap_or_default()
        })
        .map(|r| (r.start_time.as_millis(), r.end_time.as_millis()))
        .collect()
}

/// How far a detector's model has come: trained once its metric has values in the last two
/// weeks (enough of them to draw a band, or not yet), pending before.
fn state(
    metrics: &Metrics,
    ctx: &RequestContext,
    d: &AnomalyDetector,
    now: i64,
) -> AnomalyDetectorStateValue {
    let Some(s) = &d.single_metric_anomaly_detector else {
        return AnomalyDetectorStateValue::Trained;
    };
    let key = crate::query::metric_key(
        ctx,
        s.namespace.as_deref().unwrap_or_default(),
        s.metric_name.as_deref().unwrap_or_default(),
        s.dimensions.clone(),
    );
    let minutes: usize = metrics
        .buckets(&key, None, now - TRAINING, now)
        .iter()
        .map(|(_, b)| b.len())
        .sum();
    match minutes {
        0 => AnomalyDetectorStateValue::PendingTraining,
        n if n < MIN_TRAINING_POINTS => AnomalyDetectorStateValue::TrainedInsufficientData,
        _ => AnomalyDetectorStateValue::Trained,
    }
}

pub fn describe(
    meta: &MetaStore,
    metrics: &Metrics,
    ctx: &RequestContext,
    input: DescribeAnomalyDetectorsInput,
    now: i64,
) -> Result<DescribeAnomalyDetectorsOutput, ServiceError> {
    let page = match input.max_results {
        Some(n) if !(1..=PAGE as i32).contains(&n) => {
            return Err(invalid_value(format!(
                "The value {n} for parameter MaxResults is not valid: it must be between 1 and {PAGE}."
            )));
        }
        Some(n) => n as usize,
        None => PAGE,
    };
    let skip = match input.next_token.as_deref() {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid_value("The value for parameter NextToken is not valid."))?,
        None => 0,
    };
    let types = input.anomaly_detector_types.unwrap_or_default();
    let wanted_dims = input.dimensions.map(|d| crate::query::dimension_set(Some(d)));
    let found: Vec<AnomalyDetector> = all(meta, &ctx.account_id, &ctx.region)?
        .into_iter()
        .filter(|d| {
            let single = d.single_metric_anomaly_detector.as_ref();
            let kind = if single.is_some() {
                AnomalyDetectorType::SingleMetric
            } else {
                AnomalyDetectorType::MetricMath
            };
            // Without types asked for, CloudWatch lists single-metric detectors.
            let type_ok = if types.is_empty() {
                kind == AnomalyDetectorType::SingleMetric
            } else {
                types.contains(&kind)
            };
            let field = |f: fn(&SingleMetricAnomalyDetector) -> Option<&String>, want: &Option<String>| {
                want.as_ref()
                    .is_none_or(|w| single.and_then(f).is_some_and(|v| v == w))
            };
            type_ok
                && field(|s| s.namespace.as_ref(), &input.namespace)
                && field(|s| s.metric_name.as_ref(), &input.metric_name)
                && wanted_dims.as_ref().is_none_or(|w| {
                    single.is_some_and(|s| {
                        let have = crate::query::dimension_set(s.dimensions.clone());
                        w.iter().all(|d| have.contains(d))
                    })
                })
        })
        .collect();
    let next = (skip + page < found.len()).then(|| (skip + page).to_string());
    let anomaly_detectors = found
        .into_iter()
        .skip(skip)
        .take(page)
        .map(|mut d| {
            d.state_value = Some(state(metrics, ctx, &d, now));
            d
        })
        .collect();
    Ok(DescribeAnomalyDetectorsOutput {
        anomaly_detectors: Some(anomaly_detectors),
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_trailing_mean_plus_and_minus_k_deviations() {
        let p = 60_000;
        let history: Series = [10.0, 12.0, 10.0, 12.0, 50.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64 * p, *v))
            .collect();
        let grid: Vec<i64> = (0..6).map(|i| i * p).collect();
        let (lower, upper) = band(&history, &grid, 2.0, &[]);
        // Three values before the fourth period: 10, 12, 10 → mean 10.67, deviation 0.943.
        assert!(!upper.contains_key(&(2 * p)));
        assert!((upper[&(3 * p)] - (32.0 / 3.0 + 2.0 * (8.0f64 / 9.0).sqrt())).abs() < 1e-9);
        assert!((lower[&(3 * p)] - (32.0 / 3.0 - 2.0 * (8.0f64 / 9.0).sqrt())).abs() < 1e-9);
        // The spike at the fifth period is outside the band drawn from the four before it.
        assert!(history[&(4 * p)] > upper[&(4 * p)]);
        // An excluded range leaves its values out of the training.
        let (_, without) = band(&history, &grid, 2.0, &[(4 * p, 5 * p)]);
        assert!((without[&(5 * p)] - upper[&(4 * p)]).abs() < 1e-9);
        // Two weeks on, old values have left the window.
        let far = [TRAINING + 5 * p];
        assert!(band(&history, &far, 2.0, &[]).1.is_empty());
    }
}
