//! Column types as crawlers infer them, and how two inferences of one column combine.

use std::fmt;

/// A Hive type, as Glue writes it into `Column.Type`.
#[derive(Debug, Clone, PartialEq)]
pub enum HiveType {
    /// Only nulls seen so far: becomes `string` if nothing better turns up.
    Unknown,
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    String,
    Timestamp,
    Date,
    Binary,
    Decimal(u32, u32),
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

impl HiveType {
    fn integer_rank(&self) -> Option<u8> {
        match self {
            HiveType::TinyInt => Some(1),
            HiveType::SmallInt => Some(2),
            HiveType::Int => Some(3),
            HiveType::BigInt => Some(4),
            _ => None,
        }
    }

    /// The type that holds values of both: numbers widen, structs merge field by field,
    /// anything else that disagrees becomes `string`.
    pub fn merge(self, other: HiveType) -> HiveType {
        use HiveType::*;
        if self == other {
            return self;
        }
        match (self, other) {
            (Unknown, t) | (t, Unknown) => t,
            (a, b) if a.integer_rank().is_some() && b.integer_rank().is_some() => {
                if a.integer_rank() > b.integer_rank() { a } else { b }
            }
            (a, b) if is_numeric(&a) && is_numeric(&b) => Double,
            (Timestamp, Date) | (Date, Timestamp) => Timestamp,
            (Array(a), Array(b)) => Array(Box::new(a.merge(*b))),
            (Map(ak, av), Map(bk, bv)) => Map(Box::new(ak.merge(*bk)), Box::new(av.merge(*bv))),
            (Struct(a), Struct(b)) => Struct(merge_fields(a, b)),
            _ => String,
        }
    }

    /// `Unknown` (all nulls) reads as `string`, as Glue writes it.
    pub fn resolved(self) -> HiveType {
        match self {
            HiveType::Unknown => HiveType::String,
            HiveType::Array(t) => HiveType::Array(Box::new(t.resolved())),
            HiveType::Map(k, v) => HiveType::Map(Box::new(k.resolved()), Box::new(v.resolved())),
            HiveType::Struct(f) => HiveType::Struct(f.into_iter().map(|(n, t)| (n, t.resolved())).collect()),
            t => t,
        }
    }
}

#[cfg(feature = "arrow")]
impl HiveType {
    /// The Arrow type a column of this Hive type is read and written as (Firehose's Parquet
    /// and ORC output, Athena's engine).
    pub fn arrow_type(&self) -> arrow_schema::DataType {
        use std::sync::Arc;

        use arrow_schema::{DataType, Field, Fields, TimeUnit};
        match self {
            HiveType::Unknown | HiveType::String => DataType::Utf8,
            HiveType::Boolean => DataType::Boolean,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            HiveType::Date => DataType::Date32,
            HiveType::Binary => DataType::Binary,
            HiveType::Decimal(p, s) => DataType::Decimal128((*p).clamp(1, 38) as u8, (*s).min(38) as i8),
            HiveType::Array(e) => DataType::List(Arc::new(Field::new("element", e.arrow_type(), true))),
            HiveType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k.arrow_type(), false),
                        Field::new("value", v.arrow_type(), true),
                    ])),
                    false,
                )),
                false,
            ),
            HiveType::Struct(fields) => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(n.clone(), t.arrow_type(), true))
                    .collect::<Vec<_>>(),
            )),
        }
    }
}

/// How deeply `array<…>`, `map<…>` and `struct<…>` may nest. Parsing, converting and dropping a
/// type recurse once per level; a bound keeps a hostile 10,000-deep type from overflowing the
/// stack (Hive and Athena reject far shallower types anyway).
pub const MAX_TYPE_NESTING: usize = 100;

/// Refuses a type nested deeper than [`MAX_TYPE_NESTING`], without recursing.
pub fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    for b in text.bytes() {
        match b {
            b'<' => {
                depth += 1;
                if depth > MAX_TYPE_NESTING {
                    return Err(format!(
                        "Column type is nested more than {MAX_TYPE_NESTING} levels deep: '{}…'",
                        text.chars().take(64).collect::<String>()
                    ));
                }
            }
            b'>' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a Hive type as Glue stores it in `Column.Type` (`bigint`, `decimal(10,2)`,
/// `array<struct<a:int,b:string>>`, `map<string,double>`, `varchar(20)`, …). A type nested
/// past [`MAX_TYPE_NESTING`] is an error, whether it came from a request or was stored before
/// the limit existed.
pub fn parse(text: &str) -> Result<HiveType, String> {
    check_nesting(text)?;
    let mut p = TypeParser {
        s: text.as_bytes(),
        pos: 0,
    };
    let t = p.ty()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected text after the type in '{text}'"));
    }
    Ok(t)
}

struct TypeParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl TypeParser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at position {}", c as char, self.pos))
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).into_owned()
    }

    /// A struct field name: a word, or anything up to ':' (Glue allows odd names).
    fn field_name(&mut self) -> String {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != b':' {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos])
            .trim()
            .trim_matches('`')
            .to_owned()
    }

    fn number(&mut self) -> Result<u32, String> {
        let w = self.word();
        w.parse().map_err(|_| format!("expected a number, found '{w}'"))
    }

    fn ty(&mut self) -> Result<HiveType, String> {
        let w = self.word().to_ascii_lowercase();
        Ok(match w.as_str() {
            "string" => HiveType::String,
            "varchar" | "char" => {
                if self.eat(b'(') {
                    self.number()?;
                    self.expect(b')')?;
                }
                HiveType::String
            }
            "boolean" => HiveType::Boolean,
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" | "real" => HiveType::Float,
            "double" => HiveType::Double,
            "timestamp" => HiveType::Timestamp,
            "date" => HiveType::Date,
            "binary" => HiveType::Binary,
            "decimal" => {
                if self.eat(b'(') {
                    let p = self.number()?;
                    let s = if self.eat(b',') { self.number()? } else { 0 };
                    self.expect(b')')?;
                    HiveType::Decimal(p, s)
                } else {
                    HiveType::Decimal(10, 0)
                }
            }
            "array" => {
                self.expect(b'<')?;
                let t = self.ty()?;
                self.expect(b'>')?;
                HiveType::Array(Box::new(t))
            }
            "map" => {
                self.expect(b'<')?;
                let k = self.ty()?;
                self.expect(b',')?;
                let v = self.ty()?;
                self.expect(b'>')?;
                HiveType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.expect(b'<')?;
                let mut fields = Vec::new();
                if !self.eat(b'>') {
                    loop {
                        let name = self.field_name();
                        self.expect(b':')?;
                        fields.push((name, self.ty()?));
                        if self.eat(b'>') {
                            break;
                        }
                        self.expect(b',')?;
                    }
                }
                HiveType::Struct(fields)
            }
            "" => return Err(format!("expected a type at position {}", self.pos)),
            other => return Err(format!("unknown type '{other}'")),
        })
    }
}

fn is_numeric(t: &HiveType) -> bool {
    t.integer_rank().is_some() || matches!(t, HiveType::Float | HiveType::Double | HiveType::Decimal(..))
}

/// Fields of both, in first-seen order; a field in both gets the merged type.
pub fn merge_fields(mut a: Vec<(String, HiveType)>, b: Vec<(String, HiveType)>) -> Vec<(String, HiveType)> {
    for (name, t) in b {
        match a.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((_, existing)) => {
                let old = std::mem::replace(existing, HiveType::Unknown);
                *existing = old.merge(t);
            }
            None => a.push((name, t)),
        }
    }
    a
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::Unknown | HiveType::String => f.write_str("string"),
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Date => f.write_str("date"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
            HiveType::Array(t) => write!(f, "array<{t}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{n}:{t}")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HiveType::*;
    use super::{MAX_TYPE_NESTING, parse};

    #[test]
    fn merging_widens_numbers_and_merges_structs() {
        assert_eq!(Int.merge(BigInt), BigInt);
        assert_eq!(BigInt.merge(Double), Double);
        assert_eq!(Boolean.merge(BigInt), String);
        assert_eq!(Unknown.merge(Date), Date);
        let a = Struct(vec![("a".into(), Int)]);
        let b = Struct(vec![("b".into(), String), ("a".into(), Double)]);
        assert_eq!(a.merge(b).to_string(), "struct<a:double,b:string>");
        assert_eq!(Array(Box::new(Unknown)).resolved().to_string(), "array<string>");
    }

    #[test]
    fn refuses_types_nested_past_the_limit() {
        let deep = format!("{}int{}", "array<".repeat(10_000), ">".repeat(10_000));
        assert!(parse(&deep).unwrap_err().contains("nested more than"));
        let ok = format!(
            "{}int{}",
            "array<".repeat(MAX_TYPE_NESTING),
            ">".repeat(MAX_TYPE_NESTING)
        );
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn parses_glue_types() {
        for t in [
            "bigint",
            "decimal(10,2)",
            "array<struct<a:int,b:string>>",
            "map<string,double>",
            "struct<x:array<date>,y:timestamp>",
        ] {
            assert_eq!(super::parse(t).unwrap().to_string(), t);
        }
        assert_eq!(super::parse("varchar(20)").unwrap(), String);
        assert_eq!(super::parse(" INT ").unwrap(), Int);
        assert!(super::parse("array<int").is_err());
        assert!(super::parse("blob").is_err());
    }
}
