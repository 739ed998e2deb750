//! Timestamps and blobs: the scalars whose wire form depends on the protocol.
//!
//! | protocol | timestamp | blob |
//! | --- | --- | --- |
//! | awsJson 1.0/1.1 | epoch seconds, a JSON number (fraction = sub-second) | base64 string |
//! | CBOR (Kinesis) | tag 1 + epoch **milliseconds** (the AWS SDKs' CBOR default) | byte string |
//! | smithy rpc-v2-cbor (CloudWatch) | tag 1 + epoch **seconds** (integer or float) | byte string |
//! | awsQuery / XML bodies | ISO 8601 `2024-01-31T12:00:00.000Z` | base64 text |
//! | REST headers | HTTP date `Wed, 31 Jan 2024 12:00:00 GMT` | base64 |
//!
//! Serde cannot tell JSON from CBOR by name, but it can tell human-readable formats (JSON) from
//! binary ones (CBOR) with `is_human_readable`, which is exactly the split above.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    /// Set while an rpc-v2-cbor body is read or written: its timestamps count seconds, where
    /// the older AWS CBOR counts milliseconds (serde cannot tell the two CBORs apart).
    static CBOR_SECONDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a serde encode or decode) with CBOR timestamps in seconds, as smithy rpc-v2-cbor
/// writes them.
pub fn with_cbor_seconds<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            CBOR_SECONDS.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CBOR_SECONDS.with(|c| c.replace(true)));
    f()
}

fn cbor_seconds() -> bool {
    CBOR_SECONDS.with(|c| c.get())
}

/// A point in time with millisecond precision (what every AWS timestamp carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    weekday: usize,
}

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp { millis }
    }

    pub const fn from_secs(secs: i64) -> Self {
        Timestamp { millis: secs * 1000 }
    }

    pub const fn as_millis(self) -> i64 {
        self.millis
    }

    /// Whole seconds, rounded towards negative infinity.
    pub const fn as_secs(self) -> i64 {
        self.millis.div_euclid(1000)
    }

    /// Epoch seconds as awsJson writes them.
    pub fn as_epoch_seconds_f64(self) -> f64 {
        self.millis as f64 / 1000.0
    }

    /// From epoch seconds with a fraction, as awsJson sends them; `None` if not finite or out of
    /// the range AWS accepts (years 0001–9999).
    pub fn from_epoch_seconds_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let millis = (secs * 1000.0).round();
        let ts = Timestamp::from_millis(millis as i64);
        (millis.abs() < 253_402_300_800_000.0 && ts.in_range()).then_some(ts)
    }

    fn in_range(self) -> bool {
        (-62_135_596_800_000..253_402_300_800_000).contains(&self.millis)
    }

    fn civil(self) -> Civil {
        let days = self.millis.div_euclid(86_400_000);
        let ms_of_day = self.millis.rem_euclid(86_400_000) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: ms_of_day / 3_600_000,
            minute: ms_of_day / 60_000 % 60,
            second: ms_of_day / 1000 % 60,
            millis: ms_of_day % 1000,
            weekday: days.rem_euclid(7) as usize,
        }
    }

    fn from_civil(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<Self> {
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        // A leap second (60) is read as the first instant of the next minute, as Java does.
        let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s) as i64;
        Some(Timestamp::from_millis(secs * 1000 + ms as i64))
    }

    /// ISO 8601 with milliseconds, as awsQuery and restXml bodies carry it:
    /// `2024-01-31T12:00:00.000Z`.
    pub fn to_iso8601(self) -> String {
        let c = self.civil();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
        )
    }

    /// ISO 8601 basic format used by SigV4's `X-Amz-Date`: `20240131T120000Z`.
    pub fn to_amz_date(self) -> String {
        let c = self.civil();
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        )
    }

    /// RFC 7231 IMF-fixdate, as REST headers carry it: `Wed, 31 Jan 2024 12:00:00 GMT`.
    pub fn to_http_date(self) -> String {
        let c = self.civil();
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            DAY_NAMES[c.weekday],
            c.day,
            MONTH_NAMES[c.month as usize - 1],
            c.year,
            c.hour,
            c.minute,
            c.second
        )
    }

    /// Parses ISO 8601 / RFC 3339 date-times in the forms AWS clients send: extended
    /// (`2024-01-31T12:00:00Z`, with optional fraction and `Z` or `±hh:mm` offset) and basic
    /// (`20240131T120000Z`). A date alone (`2024-01-31`) is midnight UTC.
    pub fn parse_iso8601(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Option<u32> {
            let part = b.get(from..from + len)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let basic = b.len() >= 8 && b[4].is_ascii_digit();
        let (y, mo, d, mut i) = if basic {
            (num(0, 4)?, num(4, 2)?, num(6, 2)?, 8)
        } else {
            if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
                return None;
            }
            (num(0, 4)?, num(5, 2)?, num(8, 2)?, 10)
        };
        if i == b.len() {
            return Self::from_civil(y as i64, mo, d, 0, 0, 0, 0);
        }
        if !matches!(b[i], b'T' | b't' | b' ') {
            return None;
        }
        i += 1;
        let (h, mi, sec);
        if basic {
            h = num(i, 2)?;
            mi = num(i + 2, 2)?;
            sec = num(i + 4, 2)?;
            i += 6;
        } else {
            h = num(i, 2)?;
            if b.get(i + 2) != Some(&b':') || b.get(i + 5) != Some(&b':') {
                return None;
            }
            mi = num(i + 3, 2)?;
            sec = num(i + 6, 2)?;
            i += 8;
        }
        let mut ms = 0u32;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            // Keep milliseconds; finer digits are truncated as the SDKs do.
            let frac = &s[start..i.min(start + 3)];
            ms = frac.parse::<u32>().ok()? * 10u32.pow(3 - frac.len() as u32);
        }
        let offset_secs: i64 = match b.get(i) {
            Some(b'Z') | Some(b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) => {
                let oh = num(i + 1, 2)? as i64;
                let om = match b.get(i + 3) {
                    Some(b':') if b.len() == i + 6 => num(i + 4, 2)?,
                    Some(_) if b.len() == i + 5 => num(i + 3, 2)?,
                    None => 0,
                    _ => return None,
                } as i64;
                let off = oh * 3600 + om * 60;
                if *sign == b'+' { off } else { -off }
            }
            _ => return None,
        };
        let ts = Self::from_civil(y as i64, mo, d, h, mi, sec, ms)?;
        Some(Timestamp::from_millis(ts.millis - offset_secs * 1000))
    }

    /// Parses an HTTP date (RFC 7231 IMF-fixdate; the obsolete RFC 850 and asctime forms too).
    pub fn parse_http_date(s: &str) -> Option<Self> {
        let month = |m: &str| MONTH_NAMES.iter().position(|n| *n == m).map(|p| p as u32 + 1);
        let hms = |t: &str| -> Option<(u32, u32, u32)> {
            let mut it = t.split(':');
            let r = (
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
            );
            it.next().is_none().then_some(r)
        };
        let parts: Vec<&str> = s.split_whitespace().collect();
        match parts.as_slice() {
            // Wed, 31 Jan 2024 12:00:00 GMT
            [_, d, m, y, t, "GMT"] => {
                let (h, mi, sec) = hms(t)?;
                Self::from_civil(y.parse().ok()?, month(m)?, d.parse().ok()?, h, mi, sec, 0)
            }
            // Wednesday, 31-Jan-24 12:00:00 GMT
            [_, dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let (d, m, y) = (it.next()?, it.next()?, it.next()?);
                let y: i64 = y.parse().ok()?;
                let y = if y < 70 { 2000 + y } else { 1900 + y };
                let (h, mi, sec) = hms(t)?;
                Self::from_civil(y, month(m)?, d.parse().ok()?, h, mi, sec, 0)
            }
            // Wed Jan 31 12:00:00 2024
            [_, m, d, t, y] => {
                let (h, mi, sec) = hms(t)?;
                Self::from_civil(y.parse().ok()?, month(m)?, d.parse().ok()?, h, mi, sec, 0)
            }
            _ => None,
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // Named, so the awsQuery XML writer can tell a time from a number and print ISO
            // 8601; JSON serializers see through the name to the epoch seconds.
            let name = crate::query_serde::TIMESTAMP_NEWTYPE;
            if self.millis % 1000 == 0 {
                serializer.serialize_newtype_struct(name, &(self.millis / 1000))
            } else {
                serializer.serialize_newtype_struct(name, &self.as_epoch_seconds_f64())
            }
        } else if cbor_seconds() {
            if self.millis % 1000 == 0 {
                ciborium::tag::Required::<i64, 1>(self.millis / 1000).serialize(serializer)
            } else {
                ciborium::tag::Required::<f64, 1>(self.as_epoch_seconds_f64()).serialize(serializer)
            }
        } else {
            ciborium::tag::Required::<i64, 1>(self.millis).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V {
            // JSON numbers are seconds; CBOR numbers are milliseconds.
            millis_unit: bool,
        }
        impl V {
            fn number_to_timestamp<E: de::Error>(&self, n: f64) -> Result<Timestamp, E> {
                let secs = if self.millis_unit { n / 1000.0 } else { n };
                Timestamp::from_epoch_seconds_f64(secs)
                    .ok_or_else(|| E::custom(format!("timestamp {n} is out of range")))
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp (epoch seconds or ISO 8601)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.number_to_timestamp(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.number_to_timestamp(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                self.number_to_timestamp(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                if let Ok(n) = v.parse::<f64>() {
                    return self.number_to_timestamp(n);
                }
                Timestamp::parse_iso8601(v)
                    .ok_or_else(|| E::custom(format!("'{v}' is not a valid timestamp")))
            }
        }
        if deserializer.is_human_readable() {
            return deserializer.deserialize_any(V { millis_unit: false });
        }
        // CBOR: the value may carry tag 1; read it as a CBOR value and look through the tag.
        let mut value = ciborium::Value::deserialize(deserializer)?;
        while let ciborium::Value::Tag(_, inner) = value {
            value = *inner;
        }
        let v = V {
            millis_unit: !cbor_seconds(),
        };
        match value {
            ciborium::Value::Integer(i) => {
                let n = i64::try_from(i).map_err(|_| de::Error::custom("timestamp out of range"))?;
                v.visit_i64(n)
            }
            ciborium::Value::Float(f) => v.visit_f64(f),
            ciborium::Value::Text(s) => v.visit_str(&s),
            _ => Err(de::Error::custom("expected a timestamp")),
        }
    }
}

/// Binary data: base64 in JSON and XML, a raw byte string in CBOR.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    /// Decodes standard, padded base64 as the SDKs send it.
    pub fn from_base64(s: &str) -> Option<Blob> {
        BASE64.decode(s.as_bytes()).ok().map(Blob)
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(v)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_base64())
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string or a byte string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                Blob::from_base64(v).ok_or_else(|| E::custom("blob is not valid base64"))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_wide_range() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats() {
        let t = Timestamp::from_millis(1_706_702_400_123); // 2024-01-31T12:00:00.123Z
        assert_eq!(t.to_iso8601(), "2024-01-31T12:00:00.123Z");
        assert_eq!(t.to_amz_date(), "20240131T120000Z");
        assert_eq!(t.to_http_date(), "Wed, 31 Jan 2024 12:00:00 GMT");
        assert_eq!(
            Timestamp::from_secs(0).to_http_date(),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            Timestamp::from_millis(-1).to_iso8601(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parses_iso8601_variants() {
        let want = Timestamp::from_millis(1_706_702_400_000);
        for s in [
            "2024-01-31T12:00:00Z",
            "2024-01-31T12:00:00.000Z",
            "2024-01-31T12:00:00.000000Z",
            "2024-01-31T13:00:00+01:00",
            "2024-01-31T07:30:00-0430",
            "20240131T120000Z",
        ] {
            assert_eq!(Timestamp::parse_iso8601(s), Some(want), "{s}");
        }
        assert_eq!(
            Timestamp::parse_iso8601("2024-01-31T12:00:00.5Z")
                .unwrap()
                .as_millis()
                % 1000,
            500
        );
        assert_eq!(
            Timestamp::parse_iso8601("2024-01-31"),
            Some(Timestamp::from_secs(1_706_659_200))
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-31T12:00:00",
            "2024-01-31T25:00:00Z",
            "2024-01-31T12:00:00.Z",
            "yesterday",
        ] {
            assert_eq!(Timestamp::parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_http_dates() {
        let want = Some(Timestamp::from_secs(784_111_777));
        assert_eq!(Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(Timestamp::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(Timestamp::parse_http_date("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
    }

    #[test]
    fn json_timestamps_are_epoch_seconds() {
        let t = Timestamp::from_millis(1_706_702_400_250);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1706702400.25");
        assert_eq!(serde_json::to_string(&Timestamp::from_secs(5)).unwrap(), "5");
        assert_eq!(serde_json::from_str::<Timestamp>("1706702400.25").unwrap(), t);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1706702400").unwrap(),
            Timestamp::from_secs(1_706_702_400)
        );
        // Some SDKs send ISO strings where the model allows it.
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2024-01-31T12:00:00.250Z\"").unwrap(),
            t
        );
        assert!(serde_json::from_str::<Timestamp>("1e300").is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[test]
    fn cbor_timestamps_are_tagged_epoch_millis() {
        let t = Timestamp::from_millis(1_706_702_400_250);
        let mut buf = Vec::new();
        ciborium::into_writer(&t, &mut buf).unwrap();
        // tag 1 (0xc1), then an unsigned 64-bit integer (0x1b) of milliseconds.
        assert_eq!(buf[0], 0xc1);
        assert_eq!(buf[1], 0x1b);
        assert_eq!(
            u64::from_be_bytes(buf[2..10].try_into().unwrap()),
            1_706_702_400_250
        );
        assert_eq!(ciborium::from_reader::<Timestamp, _>(&buf[..]).unwrap(), t);
        // An untagged integer is read as milliseconds too.
        let mut plain = Vec::new();
        ciborium::into_writer(&1_706_702_400_250i64, &mut plain).unwrap();
        assert_eq!(ciborium::from_reader::<Timestamp, _>(&plain[..]).unwrap(), t);
    }

    #[test]
    fn blobs_are_base64_in_json_and_bytes_in_cbor() {
        let b = Blob(b"hello\x00\xff".to_vec());
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"aGVsbG8A/w==\"");
        assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), b);
        assert!(serde_json::from_str::<Blob>("\"not base64!\"").is_err());
        assert_eq!(serde_json::from_str::<Blob>("\"\"").unwrap(), Blob::default());

        let mut cbor = Vec::new();
        ciborium::into_writer(&b, &mut cbor).unwrap();
        assert_eq!(cbor[0], 0x47); // major type 2 (bytes), length 7
        assert_eq!(ciborium::from_reader::<Blob, _>(&cbor[..]).unwrap(), b);
    }
}
