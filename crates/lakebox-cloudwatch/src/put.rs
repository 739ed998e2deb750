//! PutMetricData: CloudWatch's checks on each datum, then the data, durably.

use lakebox_core::{RequestContext, ServiceError};

use crate::api::{MetricDatum, PutMetricDataInput};
use crate::errors::{invalid_combination, invalid_value};
use crate::metrics::{Datum, MetricKey};
use crate::stats::Agg;

/// How far back and ahead a datum's timestamp may be.
const TWO_WEEKS: i64 = 14 * 24 * 3_600_000;
const TWO_HOURS: i64 = 2 * 3_600_000;
/// CloudWatch refuses values beyond ±2^360.
const LIMIT: f64 = 2.348_542_582_773_833_2e108;

/// A minute of a Lakebox service's own metric, as a datum (a statistic set, as AWS's services
/// publish theirs).
pub fn service_datum(s: lakebox_service::metrics::Sample) -> Datum {
    let mut dimensions: Vec<(String, String)> =
        s.dimensions.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    dimensions.sort();
    Datum {
        metric: MetricKey {
            account: s.account,
            region: s.region,
            namespace: s.namespace.to_owned(),
            name: s.name.to_owned(),
            dimensions,
        },
        timestamp_millis: s.minute_millis,
        unit: s.unit.to_owned(),
        resolution_secs: 60,
        samples: Agg::of_set(s.count, s.sum, s.min, s.max),
    }
}

pub fn data(ctx: &RequestContext, input: PutMetricDataInput, now: i64) -> Result<Vec<Datum>, ServiceError> {
    if input.namespace.starts_with("AWS/") {
        return Err(invalid_value(format!(
            "The value {} for parameter Namespace is invalid.",
            input.namespace
        )));
    }
    let mut data = input.metric_data.unwrap_or_default();
    for e in input.entity_metric_data.unwrap_or_default() {
        data.extend(e.metric_data.unwrap_or_default());
    }
    if data.is_empty() {
        return Err(invalid_combination(
            "At least one of the parameters must be specified.",
        ));
    }
    data.into_iter()
        .enumerate()
        .map(|(i, d)| datum(ctx, &input.namespace, d, i + 1, now))
        .collect()
}

fn datum(
    ctx: &RequestContext,
    namespace: &str,
    d: MetricDatum,
    n: usize,
    now: i64,
) -> Result<Datum, ServiceError> {
    let at = |member: &str| format!("MetricData.member.{n}.{member}");
    let timestamp = d.timestamp.map_or(now, |t| t.as_millis());
    if timestamp < now - TWO_WEEKS {
        return Err(invalid_value(format!(
            "The parameter {} must specify a time no more than two weeks in the past.",
            at("Timestamp")
        )));
    }
    if timestamp > now + TWO_HOURS {
        return Err(invalid_value(format!(
            "The parameter {} must specify a time no more than two hours in the future.",
            at("Timestamp")
        )));
    }
    let resolution_secs = match d.storage_resolution {
        None | Some(60) => 60,
        Some(1) => 1,
        Some(r) => {
            return Err(invalid_value(format!(
                "The value {r} for parameter {} is invalid.",
                at("StorageResolution")
            )));
        }
    };
    let finite = |v: f64, member: &str| {
        if v.is_finite() && v.abs() <= LIMIT {
            Ok(v)
        } else {
            Err(invalid_value(format!(
                "The value {v} for parameter {} is invalid.",
                at(member)
            )))
        }
    };
    let given = [
        d.value.is_some(),
        d.statistic_values.is_some(),
        d.values.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        let names: Vec<String> = ["Value", "StatisticValues", "Values"]
            .iter()
            .zip(given)
            .filter(|(_, g)| *g)
            .map(|(m, _)| at(m))
            .collect();
        return Err(invalid_combination(format!(
            "The parameters {} are mutually exclusive and you have specified both.",
            names.join(" and ")
        )));
    }
    let samples = if let Some(v) = d.value {
        Agg::of_values(&[(finite(v, "Value")?, 1.0)])
    } else if let Some(s) = d.statistic_values {
        if s.sample_count <= 0.0 || s.minimum > s.maximum {
            return Err(invalid_value(format!(
                "The parameter {} is invalid: SampleCount must be positive and Minimum no greater than Maximum.",
                at("StatisticValues")
            )));
        }
        Agg::of_set(
            finite(s.sample_count, "StatisticValues.SampleCount")?,
            finite(s.sum, "StatisticValues.Sum")?,
            finite(s.minimum, "StatisticValues.Minimum")?,
            finite(s.maximum, "StatisticValues.Maximum")?,
        )
    } else if let Some(values) = d.values {
        let counts = d.counts.unwrap_or_else(|| vec![1.0; values.len()]);
        if counts.len() != values.len() {
            return Err(invalid_value(format!(
                "The parameters {} and {} must be of the same size.",
                at("Values"),
                at("Counts")
            )));
        }
        if values.len() > 150 {
            return Err(invalid_value(format!(
                "The collection {} must not have a size greater than 150.",
                at("Values")
            )));
        }
        let pairs: Vec<(f64, f64)> = values
            .into_iter()
            .zip(counts)
            .map(|(v, c)| Ok((finite(v, "Values")?, finite(c, "Counts")?)))
            .collect::<Result<_, ServiceError>>()?;
        if pairs.iter().any(|(_, c)| *c < 0.0) {
            return Err(invalid_value(format!(
                "The parameter {} must not be negative.",
                at("Counts")
            )));
        }
        Agg::of_values(&pairs)
    } else {
        return Err(invalid_combination(format!(
            "One of the parameters {}, {} or {} must be specified.",
            at("Value"),
            at("StatisticValues"),
            at("Values")
        )));
    };
    let dimensions = crate::query::dimension_set(d.dimensions);
    if dimensions.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(invalid_value(format!(
            "The parameter {} must not contain the same dimension name twice.",
            at("Dimensions")
        )));
    }
    Ok(Datum {
        metric: MetricKey {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            namespace: namespace.to_owned(),
            name: d.metric_name,
            dimensions,
        },
        timestamp_millis: timestamp,
        unit: d
            .unit
            .map_or_else(|| "None".to_owned(), |u| u.as_str().to_owned()),
        resolution_secs,
        samples,
    })
}
