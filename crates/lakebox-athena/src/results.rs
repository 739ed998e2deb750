//! Result files as Athena writes them: `<id>.csv` for queries (a header line, every value
//! quoted), `<id>.txt` for DDL and utility statements (one line per row, no header), and the
//! `.metadata` companion beside each (a protobuf of the query id and the columns, which Athena
//! JDBC reads instead of calling GetQueryResults). Also the ColumnInfo both describe.

use lakebox_athena_engine::QueryOutput;
use lakebox_protocol::protobuf::Writer;

/// Athena's CSV: every value in double quotes (quotes doubled), NULL as nothing.
pub fn csv(out: &QueryOutput) -> Vec<u8> {
    let mut s = String::new();
    let quote = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
    s.push_str(
        &out.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(","),
    );
    s.push('\n');
    for row in &out.rows {
        s.push_str(
            &row.iter()
                .map(|v| v.as_deref().map(quote).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s.into_bytes()
}

/// Reads Athena's CSV back: quoted values, unquoted empty fields are NULL.
pub fn parse_csv(data: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut chars = data.chars().peekable();
    let mut field: Option<String> = None;
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.get_or_insert_default().push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.get_or_insert_default().push(c);
            }
        } else {
            match c {
                '"' => {
                    in_quotes = true;
                    field.get_or_insert_default();
                }
                ',' => row.push(field.take()),
                '\n' => {
                    row.push(field.take());
                    rows.push(std::mem::take(&mut row));
                }
                other => field.get_or_insert_default().push(other),
            }
        }
    }
    if field.is_some() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// Where each row of Athena's CSV starts, and (last) where the data ends: a page of rows is
/// then one ranged read, `starts[i]..starts[j]`, parsed with [`parse_csv`].
pub fn csv_row_starts(data: &[u8]) -> Vec<u64> {
    let mut starts = vec![0];
    let mut in_quotes = false;
    for (i, b) in data.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => starts.push(i as u64 + 1),
            _ => {}
        }
    }
    if starts.last() != Some(&(data.len() as u64)) {
        starts.push(data.len() as u64);
    }
    starts
}

/// Athena's ColumnInfo for a result column of type `athena_type` (`decimal(10,2)`, `varchar`,
/// `array(integer)`): the base type name, and precision and scale as Trino's JDBC reports
/// them.
pub struct ColumnInfo {
    pub name: String,
    /// `integer`, `varchar`, `array`, …: the type without its parameters.
    pub type_: String,
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    pub case_sensitive: Option<bool>,
}

impl ColumnInfo {
    pub fn new(name: &str, athena_type: &str) -> Self {
        let base = athena_type.split('(').next().unwrap_or(athena_type).trim();
        // Trino's `real` is listed as `float`.
        let base = if base == "real" { "float" } else { base };
        let args: Vec<u64> = athena_type
            .split_once('(')
            .map(|(_, a)| {
                a.trim_end_matches(')')
                    .split(',')
                    .filter_map(|x| x.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let (precision, scale, case_sensitive) = match base {
            "tinyint" => (Some(3), Some(0), Some(false)),
            "smallint" => (Some(5), Some(0), Some(false)),
            "integer" => (Some(10), Some(0), Some(false)),
            "bigint" => (Some(19), Some(0), Some(false)),
            "float" | "double" => (Some(17), Some(0), Some(false)),
            "decimal" => (
                Some(args.first().copied().unwrap_or(38)),
                Some(args.get(1).copied().unwrap_or(0)),
                Some(false),
            ),
            "varchar" | "char" => (
                Some(args.first().copied().unwrap_or(2_147_483_647)),
                Some(0),
                Some(true),
            ),
            "varbinary" => (Some(1_073_741_824), Some(0), Some(false)),
            "timestamp" | "time" | "timestamp with time zone" | "time with time zone" => {
                (Some(3), Some(0), Some(false))
            }
            "boolean" | "interval day to second" | "interval year to month" => (None, None, Some(false)),
            "date" => (None, Some(0), Some(false)),
            _ => (None, None, None),
        };
        ColumnInfo {
            name: name.to_owned(),
            type_: base.to_owned(),
            precision,
            scale,
            case_sensitive,
        }
    }

    /// As GetQueryResults returns it.
    pub fn described(&self, nullable: bool) -> crate::api::ColumnInfo {
        use crate::api::ColumnNullable;
        crate::api::ColumnInfo {
            catalog_name: Some("hive".into()),
            schema_name: Some(String::new()),
            table_name: Some(String::new()),
            name: self.name.clone(),
            label: Some(self.name.clone()),
            r#type: self.type_.clone(),
            precision: Some(self.precision.unwrap_or(0) as i32),
            scale: Some(self.scale.unwrap_or(0) as i32),
            nullable: Some(if nullable {
                ColumnNullable::Unknown_
            } else {
                ColumnNullable::NotNull
            }),
            case_sensitive: Some(self.case_sensitive.unwrap_or(false)),
        }
    }
}

/// The `.metadata` companion of a result file: field 1 the query id, then one message per
/// column (1 catalog, 4 name, 5 label, 6 type, 7 precision, 8 scale, 9 nullable: 3 unknown,
/// 10 case sensitive), the fields present by type as Athena writes them.
pub fn metadata(query_id: &str, update: Option<(&str, u64)>, columns: &[ColumnInfo]) -> Vec<u8> {
    let mut top = Writer::new();
    top.string(1, query_id);
    // Statements that write data: field 2 the update type, field 3 the rows written.
    if let Some((kind, rows)) = update {
        top.string(2, kind).varint(3, rows);
    }
    for c in columns {
        let mut w = Writer::new();
        w.string(1, "hive")
            .string(4, &c.name)
            .string(5, &c.name)
            .string(6, &c.type_);
        if let Some(p) = c.precision {
            w.varint(7, p);
        }
        if let Some(s) = c.scale {
            w.varint(8, s);
        }
        w.varint(9, 3);
        if let Some(cs) = c.case_sensitive {
            w.varint(10, u64::from(cs));
        }
        top.bytes(4, &w.finish());
    }
    top.finish()
}

/// `<id>.txt`: the rows, one per line, no header and no final newline.
pub fn text(lines: &[String]) -> Vec<u8> {
    lines.join("\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_athenas_layout() {
        // One `integer` column: catalog, name, label, type, precision 10, scale 0, nullable 3,
        // not case sensitive.
        let m = metadata("q1", None, &[ColumnInfo::new("i", "integer")]);
        let expected: Vec<u8> = [
            &[0x0a, 2, b'q', b'1', 0x22, 0x1d, 0x0a, 4][..],
            b"hive",
            &[0x22, 1, b'i', 0x2a, 1, b'i', 0x32, 7],
            b"integer",
            &[0x38, 10, 0x40, 0, 0x48, 3, 0x50, 0],
        ]
        .concat();
        assert_eq!(m, expected);
        let d = ColumnInfo::new("d", "decimal(10,2)");
        assert_eq!(
            (d.type_.as_str(), d.precision, d.scale),
            ("decimal", Some(10), Some(2))
        );
        let a = ColumnInfo::new("a", "array(integer)");
        assert_eq!((a.type_.as_str(), a.precision), ("array", None));
    }
}
