//! AWS's cron expressions, as crawler schedules use them: `cron(Minutes Hours Day-of-month
//! Month Day-of-week Year)` in UTC, with `* , - /`, `?` in one of the day fields, `L` and `W`
//! in day-of-month, `L` and `#` in day-of-week, and month/day names.

use lakebox_protocol::types::{civil_from_days, days_from_civil, days_in_month};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone)]
enum DayOfMonth {
    Any,
    Set(u64),
    Last,
    /// `nW`: the weekday nearest to day n, in the same month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone)]
enum DayOfWeek {
    Any,
    /// Bits 1..=7, 1 = Sunday.
    Set(u64),
    /// `nL`: the last weekday n of the month.
    Last(u32),
    /// `n#k`: the k-th weekday n of the month.
    Nth(u32, u32),
}

#[derive(Debug, Clone)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    dom: DayOfMonth,
    months: u64,
    dow: DayOfWeek,
    years: Option<(Vec<bool>, i64)>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(s: &str, names: &[&str], base: u32) -> Option<u32> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Some(i as u32 + base);
    }
    s.parse().ok()
}

/// A field of `* , - /` terms as a bit set over `lo..=hi`.
fn bits(field: &str, lo: u32, hi: u32, names: &[&str], base: u32) -> Option<u64> {
    let mut out = 0u64;
    for term in field.split(',') {
        let (range, step) = match term.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|&s| s > 0)?),
            None => (term, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, base)?, value(b, names, base)?)
        } else {
            let v = value(range, names, base)?;
            (v, if term.contains('/') { hi } else { v })
        };
        if start < lo || end > hi || start > end {
            return None;
        }
        let mut v = start;
        while v <= end {
            out |= 1 << v;
            v += step;
        }
    }
    Some(out)
}

impl Cron {
    /// Parses `cron(…)`; `None` when the expression is not valid for AWS.
    pub fn parse(expr: &str) -> Option<Cron> {
        let inner = expr.trim().strip_prefix("cron(")?.strip_suffix(')')?;
        let f: Vec<&str> = inner.split_whitespace().collect();
        if f.len() != 6 {
            return None;
        }
        let (dom_s, dow_s) = (f[2], f[4]);
        // Exactly one of the day fields is `?`.
        if (dom_s == "?") == (dow_s == "?") {
            return None;
        }
        let dom = match dom_s {
            "?" => DayOfMonth::Any,
            "L" => DayOfMonth::Last,
            s if s.ends_with('W') => {
                DayOfMonth::NearestWeekday(s[..s.len() - 1].parse().ok().filter(|d| (1..=31).contains(d))?)
            }
            s => DayOfMonth::Set(bits(s, 1, 31, &[], 1)?),
        };
        let dow = match dow_s {
            "?" => DayOfWeek::Any,
            s if s.len() > 1 && s.ends_with('L') => {
                DayOfWeek::Last(value(&s[..s.len() - 1], &DAYS, 1).filter(|d| (1..=7).contains(d))?)
            }
            "L" => DayOfWeek::Set(1 << 7),
            s if s.contains('#') => {
                let (d, n) = s.split_once('#')?;
                let d = value(d, &DAYS, 1).filter(|d| (1..=7).contains(d))?;
                let n: u32 = n.parse().ok().filter(|n| (1..=5).contains(n))?;
                DayOfWeek::Nth(d, n)
            }
            s => DayOfWeek::Set(bits(s, 1, 7, &DAYS, 1)?),
        };
        let years = if f[5] == "*" {
            None
        } else {
            // Years as offsets from 1970 up to 2199.
            let mut set = vec![false; 230];
            for term in f[5].split(',') {
                let (range, step) = match term.split_once('/') {
                    Some((r, s)) => (r, s.parse::<usize>().ok().filter(|&s| s > 0)?),
                    None => (term, 1),
                };
                let (a, b) = match range.split_once('-') {
                    Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
                    None if range == "*" => (1970, 2199),
                    None => {
                        let v = range.parse::<usize>().ok()?;
                        (v, if term.contains('/') { 2199 } else { v })
                    }
                };
                if a < 1970 || b > 2199 || a > b {
                    return None;
                }
                for y in (a..=b).step_by(step) {
                    set[y - 1970] = true;
                }
            }
            Some((set, 1970))
        };
        Some(Cron {
            minutes: bits(f[0], 0, 59, &[], 0)?,
            hours: bits(f[1], 0, 23, &[], 0)?,
            dom,
            months: bits(f[3], 1, 12, &MONTHS, 1)?,
            dow,
            years,
        })
    }

    fn day_matches(&self, y: i64, m: u32, d: u32) -> bool {
        if self.months & (1 << m) == 0 {
            return false;
        }
        if let Some((set, base)) = &self.years
            && !set.get((y - base) as usize).copied().unwrap_or(false)
        {
            return false;
        }
        let last = days_in_month(y, m);
        let days = days_from_civil(y, m, d);
        // 1970-01-01 was a Thursday; 1 = Sunday.
        let weekday = ((days + 4).rem_euclid(7) + 1) as u32;
        let dom_ok = match &self.dom {
            DayOfMonth::Any => true,
            DayOfMonth::Set(b) => b & (1 << d) != 0,
            DayOfMonth::Last => d == last,
            DayOfMonth::NearestWeekday(n) => {
                let n = (*n).min(last);
                let wd = |day: u32| ((days_from_civil(y, m, day) + 4).rem_euclid(7) + 1) as u32;
                let target = match wd(n) {
                    7 if n == 1 => n + 2,
                    7 => n - 1,
                    1 if n == last => n - 2,
                    1 => n + 1,
                    _ => n,
                };
                d == target
            }
        };
        let dow_ok = match &self.dow {
            DayOfWeek::Any => true,
            DayOfWeek::Set(b) => b & (1 << weekday) != 0,
            DayOfWeek::Last(w) => weekday == *w && d + 7 > last,
            DayOfWeek::Nth(w, n) => weekday == *w && (d - 1) / 7 + 1 == *n,
        };
        dom_ok && dow_ok
    }

    /// The first firing strictly after `after_millis`, within the next ten years.
    pub fn next_after(&self, after_millis: i64) -> Option<i64> {
        let start_minute = after_millis.div_euclid(MINUTE_MS) + 1;
        let mut day = (start_minute * MINUTE_MS).div_euclid(DAY_MS);
        for _ in 0..(366 * 10) {
            let (y, m, d) = civil_from_days(day);
            if self.day_matches(y, m, d) {
                for h in 0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    for min in 0..60 {
                        if self.minutes & (1 << min) == 0 {
                            continue;
                        }
                        let t = day * DAY_MS + (h * 60 + min) * MINUTE_MS;
                        if t >= start_minute * MINUTE_MS {
                            return Some(t);
                        }
                    }
                }
            }
            day += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY_MS + (h * 60 + mi) * MINUTE_MS
    }

    #[test]
    fn fires_at_the_right_minutes() {
        let c = Cron::parse("cron(0/5 * * * ? *)").unwrap();
        assert_eq!(c.next_after(at(2024, 1, 1, 10, 2)), Some(at(2024, 1, 1, 10, 5)));
        assert_eq!(c.next_after(at(2024, 1, 1, 10, 5)), Some(at(2024, 1, 1, 10, 10)));
        let c = Cron::parse("cron(15 12 * * ? *)").unwrap();
        assert_eq!(c.next_after(at(2024, 1, 1, 13, 0)), Some(at(2024, 1, 2, 12, 15)));
        // Monday to Friday at 08:00: from Saturday 2024-01-06 to Monday 2024-01-08.
        let c = Cron::parse("cron(0 8 ? * MON-FRI *)").unwrap();
        assert_eq!(c.next_after(at(2024, 1, 6, 0, 0)), Some(at(2024, 1, 8, 8, 0)));
        let c = Cron::parse("cron(0 0 L * ? *)").unwrap();
        assert_eq!(c.next_after(at(2024, 2, 1, 0, 0)), Some(at(2024, 2, 29, 0, 0)));
        // Second Tuesday of the month.
        let c = Cron::parse("cron(30 9 ? * 3#2 *)").unwrap();
        assert_eq!(c.next_after(at(2024, 1, 1, 0, 0)), Some(at(2024, 1, 9, 9, 30)));
        let c = Cron::parse("cron(0 0 1 JAN ? 2026)").unwrap();
        assert_eq!(c.next_after(at(2024, 5, 1, 0, 0)), Some(at(2026, 1, 1, 0, 0)));
        // 1W on a Saturday (2024-06-01) moves to Monday the 3rd.
        let c = Cron::parse("cron(0 0 1W * ? *)").unwrap();
        assert_eq!(c.next_after(at(2024, 5, 31, 0, 0)), Some(at(2024, 6, 3, 0, 0)));
    }

    #[test]
    fn rejects_what_aws_rejects() {
        for bad in [
            "0 * * * ? *",
            "cron(* * * * * *)",
            "cron(* * ? * ? *)",
            "cron(60 * * * ? *)",
            "cron(* * * *)",
            "cron(0 0 32 * ? *)",
            "rate(5 minutes)",
        ] {
            assert!(Cron::parse(bad).is_none(), "{bad}");
        }
    }
}
