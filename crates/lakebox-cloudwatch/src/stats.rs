//! Statistics over a metric's samples, as CloudWatch computes them: SampleCount, Sum, Average,
//! Minimum, Maximum, and percentiles (`p0`–`p100`) and trimmed means (`tm10`, `tm(10%:90%)`)
//! where the samples' values are known (not for data sent as a `StatisticSet`).

use serde::{Deserialize, Serialize};

/// The samples of one stretch of time: their count, sum, extremes and, while every sample
/// arrived with its value, the distinct values with their counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// `(value, count)`, sorted by value; meaningful only while `exact`.
    pub values: Vec<(f64, f64)>,
    /// Every sample's value is known (no `StatisticSet` was folded in).
    pub exact: bool,
}

impl Agg {
    /// Samples given one by one (`Value`, or `Values` with `Counts`).
    pub fn of_values(values: &[(f64, f64)]) -> Agg {
        let mut agg = Agg {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::with_capacity(values.len()),
            exact: true,
        };
        for &(v, n) in values {
            agg.count += n;
            agg.sum += v * n;
            agg.min = agg.min.min(v);
            agg.max = agg.max.max(v);
            agg.values.push((v, n));
        }
        agg.values.sort_by(|a, b| a.0.total_cmp(&b.0));
        merge_equal(&mut agg.values);
        agg
    }

    /// A `StatisticSet`: the summary alone.
    pub fn of_set(count: f64, sum: f64, min: f64, max: f64) -> Agg {
        Agg {
            count,
            sum,
            min,
            max,
            values: Vec::new(),
            exact: false,
        }
    }

    /// Folds `other` into this one.
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.exact &= other.exact;
        if self.exact {
            let mut merged = Vec::with_capacity(self.values.len() + other.values.len());
            let (mut i, mut j) = (0, 0);
            while i < self.values.len() || j < other.values.len() {
                let take_left = j >= other.values.len()
                    || (i < self.values.len() && self.values[i].0 <= other.values[j].0);
                if take_left {
                    merged.push(self.values[i]);
                    i += 1;
                } else {
                    merged.push(other.values[j]);
                    j += 1;
                }
            }
            merge_equal(&mut merged);
            self.values = merged;
        } else {
            self.values = Vec::new();
        }
    }

    /// A statistic's value; `None` when it cannot be computed from these samples (a
    /// percentile of summarised data).
    pub fn statistic(&self, stat: &Stat) -> Option<f64> {
        Some(match stat {
            Stat::SampleCount => self.count,
            Stat::Sum => self.sum,
            Stat::Average => self.sum / self.count,
            Stat::Minimum => self.min,
            Stat::Maximum => self.max,
            Stat::Percentile(p) => {
                if !self.exact {
                    return None;
                }
                self.percentile(*p)
            }
            Stat::TrimmedMean(lo, hi) => {
                if !self.exact {
                    return None;
                }
                self.trimmed_mean(*lo, *hi)?
            }
        })
    }

    /// The smallest value with at least `p` percent of the samples at or below it.
    fn percentile(&self, p: f64) -> f64 {
        if p <= 0.0 {
            return self.min;
        }
        let target = self.count * p / 100.0;
        let mut seen = 0.0;
        for &(v, n) in &self.values {
            seen += n;
            if seen >= target - 1e-9 {
                return v;
            }
        }
        self.max
    }

    /// The mean of the samples between the `lo` and `hi` percentiles (inclusive of `hi`).
    fn trimmed_mean(&self, lo: f64, hi: f64) -> Option<f64> {
        let (from, to) = (self.count * lo / 100.0, self.count * hi / 100.0);
        let (mut seen, mut sum, mut n) = (0.0, 0.0, 0.0);
        for &(v, c) in &self.values {
            let start = seen;
            seen += c;
            // The part of this value's samples that lies inside [from, to].
            let inside = (seen.min(to) - start.max(from)).max(0.0);
            sum += v * inside;
            n += inside;
        }
        (n > 0.0).then(|| sum / n)
    }
}

fn merge_equal(values: &mut Vec<(f64, f64)>) {
    values.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
}

/// A statistic a request names.
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    SampleCount,
    Sum,
    Average,
    Minimum,
    Maximum,
    Percentile(f64),
    /// Between two percentiles.
    TrimmedMean(f64, f64),
}

impl Stat {
    /// Reads `Sum`, `p99`, `p99.9`, `tm90`, `tm(10%:90%)`, as CloudWatch spells them.
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "SampleCount" => Stat::SampleCount,
            "Sum" => Stat::Sum,
            "Average" => Stat::Average,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            "IQM" => Stat::TrimmedMean(25.0, 75.0),
            _ => {
                if let Some(p) = s.strip_prefix('p') {
                    return percent(p).map(Stat::Percentile);
                }
                let t = s.strip_prefix("tm")?;
                if let Some(range) = t.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                    let (lo, hi) = range.split_once(':')?;
                    let bound = |b: &str| {
                        if b.is_empty() {
                            Some(None)
                        } else {
                            percent(b.strip_suffix('%')?).map(Some)
                        }
                    };
                    let (lo, hi) = (bound(lo)?.unwrap_or(0.0), bound(hi)?.unwrap_or(100.0));
                    return (lo < hi).then_some(Stat::TrimmedMean(lo, hi));
                }
                return percent(t).map(|p| Stat::TrimmedMean(0.0, p));
            }
        })
    }
}

/// `0`–`100` with at most two decimals.
fn percent(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.split_once('.')
            .is_none_or(|(_, d)| !d.is_empty() && d.len() <= 2);
    let v: f64 = s.parse().ok().filter(|_| ok)?;
    (0.0..=100.0).contains(&v).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_statistics_and_percentiles() {
        let values: Vec<(f64, f64)> = (1..=100).map(|v| (v as f64, 1.0)).collect();
        let a = Agg::of_values(&values);
        assert_eq!(a.statistic(&Stat::Sum), Some(5050.0));
        assert_eq!(a.statistic(&Stat::Average), Some(50.5));
        assert_eq!(a.statistic(&Stat::Percentile(90.0)), Some(90.0));
        assert_eq!(a.statistic(&Stat::Percentile(99.5)), Some(100.0));
        assert_eq!(a.statistic(&Stat::Percentile(0.0)), Some(1.0));
        assert_eq!(a.statistic(&Stat::TrimmedMean(0.0, 10.0)), Some(5.5));
        assert_eq!(a.statistic(&Stat::TrimmedMean(25.0, 75.0)), Some(50.5));
    }

    #[test]
    fn counts_weigh_values_and_sets_hide_percentiles() {
        let mut a = Agg::of_values(&[(10.0, 3.0), (1.0, 1.0)]);
        assert_eq!(a.statistic(&Stat::SampleCount), Some(4.0));
        assert_eq!(a.statistic(&Stat::Percentile(50.0)), Some(10.0));
        a.merge(&Agg::of_values(&[(1.0, 5.0)]));
        assert_eq!(a.values, vec![(1.0, 6.0), (10.0, 3.0)]);
        a.merge(&Agg::of_set(2.0, 100.0, 40.0, 60.0));
        assert_eq!(a.statistic(&Stat::Maximum), Some(60.0));
        assert_eq!(a.statistic(&Stat::SampleCount), Some(11.0));
        assert_eq!(a.statistic(&Stat::Percentile(50.0)), None);
    }

    #[test]
    fn statistic_names() {
        assert_eq!(Stat::parse("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(Stat::parse("tm(10%:90%)"), Some(Stat::TrimmedMean(10.0, 90.0)));
        assert_eq!(Stat::parse("tm90"), Some(Stat::TrimmedMean(0.0, 90.0)));
        assert_eq!(Stat::parse("p101"), None);
        assert_eq!(Stat::parse("p9.999"), None);
        assert_eq!(Stat::parse("Median"), None);
    }
}
