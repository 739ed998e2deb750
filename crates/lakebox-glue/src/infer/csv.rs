//! Glue's built-in CSV classifier: delimiter detection (comma, tab, pipe, semicolon, Ctrl-A),
//! quoting, header detection and Glue's type rules, plus custom CSV classifiers.

use super::types::HiveType;

/// The delimiters the built-in classifier tries, in Glue's order.
pub const DELIMITERS: [char; 5] = [',', '|', '\t', ';', '\u{1}'];

/// Records a CSV sample is inferred from, besides a header.
pub const MAX_RECORDS: usize = 1000;

/// How a custom CSV classifier constrains the guess.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    pub delimiter: Option<char>,
    pub quote: Option<char>,
    /// `PRESENT`, `ABSENT` or `UNKNOWN` (detect).
    pub contains_header: Option<String>,
    pub header: Option<Vec<String>>,
    pub allow_single_column: bool,
    pub disable_value_trimming: bool,
    /// `OpenCSVSerDe`, `LazySimpleSerDe` or `None` (detect).
    pub serde: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CsvSchema {
    pub delimiter: char,
    pub quote: char,
    pub quoted: bool,
    pub has_header: bool,
    pub columns: Vec<(String, HiveType)>,
    pub records: usize,
    pub open_csv: bool,
}

/// Splits text into records of fields, honouring quotes (a quoted field may hold delimiters,
/// newlines and doubled quotes). The last record is dropped when the sample was cut mid-way.
pub fn parse(text: &str, delimiter: char, quote: char, truncated: bool) -> (Vec<Vec<String>>, bool) {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut saw_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == quote {
                if chars.peek() == Some(&quote) {
                    field.push(quote);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
        } else if c == quote && field.is_empty() {
            in_quotes = true;
            saw_quotes = true;
        } else if c == delimiter {
            row.push(std::mem::take(&mut field));
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        } else {
            field.push(c);
        }
    }
    if !truncated && (!field.is_empty() || !row.is_empty()) {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|r| !(r.len() == 1 && r[0].is_empty()));
    (rows, saw_quotes)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && is_digits(&s[0..4])
        && b[4] == b'-'
        && is_digits(&s[5..7])
        && b[7] == b'-'
        && is_digits(&s[8..10])
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

/// `yyyy-MM-dd HH:mm:ss[.fffffffff]`: the form Hive's text SerDe reads as a timestamp.
fn is_timestamp(s: &str) -> bool {
    if s.len() < 19 || !s.is_char_boundary(10) || !is_date(&s[..10]) {
        return false;
    }
    let t = &s[10..];
    let b = t.as_bytes();
    if b[0] != b' ' || b.len() < 9 {
        return false;
    }
    let hms_ok =
        is_digits(&t[1..3]) && b[3] == b':' && is_digits(&t[4..6]) && b[6] == b':' && is_digits(&t[7..9]);
    hms_ok && (t.len() == 9 || (b[9] == b'.' && t.len() > 10 && t.len() <= 19 && is_digits(&t[10..])))
}

/// The type of one CSV value under Glue's rules; `None` for an empty value.
pub fn value_type(v: &str) -> Option<HiveType> {
    if v.is_empty() {
        return None;
    }
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        return Some(HiveType::Boolean);
    }
    let unsigned = v.strip_prefix(['-', '+']).unwrap_or(v);
    if is_digits(unsigned) {
        return Some(if v.parse::<i64>().is_ok() {
            HiveType::BigInt
        } else {
            HiveType::String
        });
    }
    let looks_numeric = unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && v.parse::<f64>().is_ok_and(f64::is_finite) {
        return Some(HiveType::Double);
    }
    if is_timestamp(v) {
        return Some(HiveType::Timestamp);
    }
    if is_date(v) {
        return Some(HiveType::Date);
    }
    Some(HiveType::String)
}

/// Glue's column-name rule for a header cell: short, single-line, non-empty text.
fn valid_header_cell(s: &str, last: bool) -> bool {
    (!s.is_empty() || last) && s.chars().count() < 150 && !s.chars().any(char::is_control)
}

fn trim(v: &str, keep: bool) -> &str {
    if keep { v } else { v.trim() }
}

/// Infers a CSV schema from the start of a file, or `None` when it does not look like CSV.
pub fn infer(text: &str, truncated: bool, opts: &CsvOptions) -> Option<CsvSchema> {
    let quote = opts.quote.unwrap_or('"');
    let candidates: Vec<char> = match opts.delimiter {
        Some(d) => vec![d],
        None => DELIMITERS.to_vec(),
    };
    let min_columns = if opts.allow_single_column { 1 } else { 2 };
    // The delimiter that splits every record into the same number (≥ 2) of fields; the one
    // giving most fields wins.
    let mut best: Option<(char, Vec<Vec<String>>, bool)> = None;
    for d in candidates {
        let (rows, quoted) = parse(text, d, quote, truncated);
        let Some(first) = rows.first() else { continue };
        let width = first.len();
        if width < min_columns || !rows.iter().all(|r| r.len() == width) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b, _)| b[0].len() < width) {
            best = Some((d, rows, quoted));
        }
    }
    let (delimiter, mut rows, quoted) = best?;
    // Glue reads the first 1,000 records (or the first megabyte, whichever comes first).
    rows.truncate(MAX_RECORDS + 1);
    // Glue needs two rows to call a file CSV (a header and a record, or two records).
    if rows.len() < 2 && opts.header.is_none() {
        return None;
    }
    let keep = opts.disable_value_trimming;
    let width = rows[0].len();
    let column_types = |data: &[Vec<String>]| -> Vec<HiveType> {
        (0..width)
            .map(|i| {
                data.iter()
                    .filter_map(|r| value_type(trim(&r[i], keep)))
                    .fold(HiveType::Unknown, HiveType::merge)
            })
            .collect()
    };
    let first_all_strings = rows[0].iter().enumerate().all(|(i, v)| {
        valid_header_cell(trim(v, keep), i + 1 == width)
            && matches!(value_type(trim(v, keep)), Some(HiveType::String) | None)
    });
    let has_header = match opts.contains_header.as_deref() {
        Some("PRESENT") => true,
        Some("ABSENT") => false,
        _ => {
            // A header is detected when the first row is all text and the data below it is
            // not: if every column is text throughout, the first row is just data.
            first_all_strings
                && column_types(&rows[1..])
                    .iter()
                    .any(|t| !matches!(t, HiveType::String | HiveType::Unknown))
        }
    };
    let data = if has_header { &rows[1..] } else { &rows[..] };
    let types = column_types(data);
    let names: Vec<String> = match (&opts.header, has_header) {
        (Some(h), _) if h.len() == width => h.iter().map(|s| s.to_lowercase()).collect(),
        (_, true) => rows[0]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s.trim().to_lowercase();
                if s.is_empty() { format!("col{i}") } else { s }
            })
            .collect(),
        _ => (0..width).map(|i| format!("col{i}")).collect(),
    };
    let open_csv = match opts.serde.as_deref() {
        Some("OpenCSVSerDe") => true,
        Some("LazySimpleSerDe") => false,
        _ => quoted,
    };
    let columns = names
        .into_iter()
        .zip(types)
        .map(|(n, t)| {
            let t = t.resolved();
            // OpenCSVSerDe reads dates and timestamps only as numbers; Glue keeps them text.
            let t = if open_csv && matches!(t, HiveType::Date | HiveType::Timestamp) {
                HiveType::String
            } else {
                t
            };
            (n, t)
        })
        .collect();
    Some(CsvSchema {
        delimiter,
        quote,
        quoted,
        has_header,
        columns,
        records: data.len(),
        open_csv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(s: &CsvSchema) -> Vec<String> {
        s.columns.iter().map(|(n, t)| format!("{n}:{t}")).collect()
    }

    #[test]
    fn header_detected_when_data_is_typed() {
        let s = infer("id,name,price,ok,day,at\n1,a,1.5,true,2024-01-02,2024-01-02 03:04:05\n2,b,2,false,2024-02-03,2024-01-02 03:04:05.123\n", false, &CsvOptions::default()).unwrap();
        assert!(s.has_header);
        assert_eq!(s.delimiter, ',');
        assert_eq!(
            types(&s),
            [
                "id:bigint",
                "name:string",
                "price:double",
                "ok:boolean",
                "day:date",
                "at:timestamp"
            ]
        );
        assert_eq!(s.records, 2);
    }

    #[test]
    fn no_header_when_everything_is_text_or_first_row_is_typed() {
        let s = infer("a,b\nc,d\n", false, &CsvOptions::default()).unwrap();
        assert!(!s.has_header);
        assert_eq!(types(&s), ["col0:string", "col1:string"]);
        let s = infer("1,x\n2,y\n", false, &CsvOptions::default()).unwrap();
        assert!(!s.has_header);
        assert_eq!(types(&s), ["col0:bigint", "col1:string"]);
    }

    #[test]
    fn delimiters_and_quotes() {
        for d in DELIMITERS {
            let text = format!("a{d}b{d}c\n1{d}2{d}3\n4{d}5{d}6\n");
            let s = infer(&text, false, &CsvOptions::default()).unwrap();
            assert_eq!(s.delimiter, d);
            assert_eq!(s.columns.len(), 3);
        }
        let s = infer(
            "name,n\n\"Smith, J\",1\n\"O\"\"Neil\",2\n",
            false,
            &CsvOptions::default(),
        )
        .unwrap();
        assert!(s.quoted && s.open_csv);
        assert_eq!(types(&s), ["name:string", "n:bigint"]);
        assert!(infer("just one column\nper line\n", false, &CsvOptions::default()).is_none());
        assert!(infer("{\"a\": 1}\n{\"a\": 2}\n", false, &CsvOptions::default()).is_none());
    }

    #[test]
    fn truncated_samples_drop_the_partial_record() {
        let s = infer("a,b\n1,2\n3,4\n5", true, &CsvOptions::default()).unwrap();
        assert_eq!(s.records, 2);
    }

    #[test]
    fn custom_options_override_detection() {
        let opts = CsvOptions {
            delimiter: Some(';'),
            contains_header: Some("ABSENT".into()),
            header: Some(vec!["X".into(), "Y".into()]),
            ..Default::default()
        };
        let s = infer("a;1\nb;2\n", false, &opts).unwrap();
        assert_eq!(types(&s), ["x:string", "y:bigint"]);
    }
}
