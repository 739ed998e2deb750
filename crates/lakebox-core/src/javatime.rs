//! Java `DateTimeFormatter` patterns (`yyyy-MM-dd`, `HH 'h'`), which AWS uses where a service
//! lets users spell dates: Firehose's `!{timestamp:…}` prefixes, Athena's partition projection
//! (`projection.<col>.format`). Letters repeat to set the width; `'…'` quotes text.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike};

/// A pattern element.
#[derive(Debug, Clone, PartialEq)]
enum Fmt {
    Lit(String),
    Field(char, usize),
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct JavaPattern(Vec<Fmt>);

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl JavaPattern {
    /// Parses a pattern; only fields that make sense for a point in time are accepted.
    pub fn parse(p: &str) -> Result<Self, String> {
        let chars: Vec<char> = p.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or("unterminated quote in timestamp pattern")?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                out.push(Fmt::Lit(if text.is_empty() { "'".into() } else { text }));
                i += end + 2;
            } else if c.is_ascii_alphabetic() {
                let mut n = 1;
                while i + n < chars.len() && chars[i + n] == c {
                    n += 1;
                }
                if !"yuMdHhmsSEaDkKLe".contains(c) {
                    return Err(format!("unsupported pattern letter '{c}'"));
                }
                out.push(Fmt::Field(c, n));
                i += n;
            } else {
                out.push(Fmt::Lit(c.to_string()));
                i += 1;
            }
        }
        Ok(JavaPattern(out))
    }

    pub fn format<T: TimeZone>(&self, t: &DateTime<T>) -> String {
        let mut s = String::new();
        for f in &self.0 {
            match f {
                Fmt::Lit(l) => s.push_str(l),
                Fmt::Field(c, n) => {
                    let n = *n;
                    let num = |v: i64, s: &mut String| s.push_str(&format!("{v:0n$}"));
                    match c {
                        'y' | 'u' if n == 2 => s.push_str(&format!("{:02}", t.year().rem_euclid(100))),
                        'y' | 'u' => num(t.year() as i64, &mut s),
                        'M' | 'L' if n >= 4 => s.push_str(MONTHS[t.month0() as usize]),
                        'M' | 'L' if n == 3 => s.push_str(&MONTHS[t.month0() as usize][..3]),
                        'M' | 'L' => num(t.month() as i64, &mut s),
                        'd' => num(t.day() as i64, &mut s),
                        'D' => num(t.ordinal() as i64, &mut s),
                        'H' => num(t.hour() as i64, &mut s),
                        'k' => num(if t.hour() == 0 { 24 } else { t.hour() as i64 }, &mut s),
                        'h' => num(((t.hour() + 11) % 12 + 1) as i64, &mut s),
                        'K' => num((t.hour() % 12) as i64, &mut s),
                        'm' => num(t.minute() as i64, &mut s),
                        's' => num(t.second() as i64, &mut s),
                        'S' => {
                            let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                            s.push_str(&nanos[..n.min(9)]);
                        }
                        'E' | 'e' if n >= 4 => s.push_str(DAYS[t.weekday().num_days_from_monday() as usize]),
                        'E' | 'e' => s.push_str(&DAYS[t.weekday().num_days_from_monday() as usize][..3]),
                        'a' => s.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
                        _ => {}
                    }
                }
            }
        }
        s
    }

    /// Reads a date-time written in this pattern; fields it lacks are the start of their
    /// range (a `yyyy-MM` value is the first of the month at midnight).
    pub fn parse_datetime(&self, text: &str) -> Option<NaiveDateTime> {
        let mut strftime = String::new();
        let (mut has_month, mut has_day, mut has_time) = (false, false, false);
        for f in &self.0 {
            match f {
                Fmt::Lit(l) => strftime.push_str(&l.replace('%', "%%")),
                Fmt::Field(c, n) => {
                    let spec = match (c, n) {
                        ('y' | 'u', 2) => "%y",
                        ('y' | 'u', _) => "%Y",
                        ('M' | 'L', 3) => "%b",
                        ('M' | 'L', n) if *n >= 4 => "%B",
                        ('M' | 'L', _) => "%m",
                        ('d', _) => "%d",
                        ('D', _) => "%j",
                        ('H' | 'k', _) => "%H",
                        ('h' | 'K', _) => "%I",
                        ('m', _) => "%M",
                        ('s', _) => "%S",
                        ('S', _) => "%f",
                        ('E' | 'e', n) if *n >= 4 => "%A",
                        ('E' | 'e', _) => "%a",
                        ('a', _) => "%p",
                        _ => return None,
                    };
                    has_month |= matches!(c, 'M' | 'L' | 'D');
                    has_day |= matches!(c, 'd' | 'D');
                    has_time |= matches!(c, 'H' | 'k' | 'h' | 'K');
                    strftime.push_str(spec);
                }
            }
        }
        // chrono needs a full date and time: supply what the pattern leaves out.
        let mut text = text.to_owned();
        if !has_month {
            strftime.push_str(" %m");
            text.push_str(" 01");
        }
        if !has_day {
            strftime.push_str(" %d");
            text.push_str(" 01");
        }
        if !has_time {
            strftime.push_str(" %H");
            text.push_str(" 00");
        }
        if !strftime.contains("%M") {
            strftime.push_str(" %M");
            text.push_str(" 00");
        }
        NaiveDateTime::parse_from_str(&text, &strftime).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn formats_and_parses() {
        let t = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        let p = JavaPattern::parse("yyyy/MM/dd/HH 'h' EEE").unwrap();
        assert_eq!(p.format(&t), "2024/03/05/07 h Tue");
        let day = JavaPattern::parse("yyyy-MM-dd").unwrap();
        assert_eq!(
            day.parse_datetime("2024-03-05"),
            Some(t.date_naive().and_hms_opt(0, 0, 0).unwrap())
        );
        let month = JavaPattern::parse("yyyyMM").unwrap();
        assert_eq!(
            month.parse_datetime("202403").map(|d| d.to_string()),
            Some("2024-03-01 00:00:00".into())
        );
        let hour = JavaPattern::parse("yyyy/MM/dd/HH").unwrap();
        assert_eq!(
            hour.parse_datetime("2024/03/05/07").map(|d| d.to_string()),
            Some("2024-03-05 07:00:00".into())
        );
        assert!(JavaPattern::parse("yyyy-QQ").is_err());
        assert!(day.parse_datetime("nope").is_none());
    }
}
