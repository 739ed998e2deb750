//! How a `CREATE EXTERNAL TABLE` becomes a Glue storage descriptor (the classes Athena writes
//! for each `STORED AS` and `ROW FORMAT`), and back again for `SHOW CREATE TABLE`.

use lakebox_glue::model::{Column, Order, Parameters, SerDeInfo, StorageDescriptor, Table};

use crate::parser::{ColumnDef, CreateTable, RowFormat, StoredAs};

pub const LAZY_SIMPLE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/// `(input format, output format, default SerDe)` of a `STORED AS` name.
fn stored_as(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match name {
        "TEXTFILE" => (TEXT_INPUT, TEXT_OUTPUT, LAZY_SIMPLE),
        "PARQUET" | "PARQUETFILE" => (
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        ),
        "ORC" | "ORCFILE" => (
            "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
        ),
        "AVRO" => (
            "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
            "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
            "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
        ),
        "SEQUENCEFILE" => (
            "org.apache.hadoop.mapred.SequenceFileInputFormat",
            "org.apache.hadoop.hive.ql.io.HiveSequenceFileOutputFormat",
            LAZY_SIMPLE,
        ),
        "RCFILE" => (
            "org.apache.hadoop.hive.ql.io.RCFileInputFormat",
            "org.apache.hadoop.hive.ql.io.RCFileOutputFormat",
            "org.apache.hadoop.hive.serde2.columnar.LazyBinaryColumnarSerDe",
        ),
        "ION" => (
            "com.amazon.ionhiveserde.formats.IonInputFormat",
            "com.amazon.ionhiveserde.formats.IonOutputFormat",
            "com.amazon.ionhiveserde.IonHiveSerDe",
        ),
        _ => return None,
    })
}

pub fn glue_columns(defs: &[ColumnDef]) -> Vec<Column> {
    defs.iter()
        .map(|c| Column {
            comment: c.comment.clone(),
            ..Column::new(&c.name, &c.type_)
        })
        .collect()
}

/// The storage descriptor Athena writes for a `CREATE EXTERNAL TABLE`.
pub fn storage_descriptor(t: &CreateTable) -> Result<StorageDescriptor, String> {
    let (input, output, default_serde) = match &t.stored_as {
        None => (TEXT_INPUT.to_owned(), TEXT_OUTPUT.to_owned(), LAZY_SIMPLE),
        Some(StoredAs::Named(n)) => {
            let (i, o, s) = stored_as(n).ok_or_else(|| format!("Unknown file format STORED AS {n}"))?;
            (i.to_owned(), o.to_owned(), s)
        }
        Some(StoredAs::Formats { input, output }) => (input.clone(), output.clone(), LAZY_SIMPLE),
    };
    let mut params = Parameters::new();
    let library = match &t.row_format {
        Some(RowFormat::Serde { class, properties }) => {
            params.extend(properties.iter().cloned());
            class.clone()
        }
        Some(RowFormat::Delimited {
            fields,
            escaped,
            collection,
            map_keys,
            lines,
            null,
        }) => {
            let mut put = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    params.insert(k.to_owned(), v.clone());
                }
            };
            put("field.delim", fields);
            put("serialization.format", fields);
            put("escape.delim", escaped);
            put("collection.delim", collection);
            put("mapkey.delim", map_keys);
            put("line.delim", lines);
            put("serialization.null.format", null);
            LAZY_SIMPLE.to_owned()
        }
        None => default_serde.to_owned(),
    };
    params.extend(t.serde_properties.iter().cloned());
    if library == LAZY_SIMPLE {
        // Hive's default: fields separated by Ctrl-A, spelled as the byte's number.
        params
            .entry("serialization.format".into())
            .or_insert_with(|| "1".into());
    }
    let (bucket_columns, sort_columns, buckets) = match &t.buckets {
        Some(b) => (
            b.columns.clone(),
            b.sorted
                .iter()
                .map(|(c, asc)| Order {
                    column: c.clone(),
                    sort_order: i32::from(*asc),
                })
                .collect(),
            b.count,
        ),
        None => (Vec::new(), Vec::new(), -1),
    };
    Ok(StorageDescriptor {
        columns: Some(glue_columns(&t.columns)),
        location: t.location.clone(),
        input_format: Some(input),
        output_format: Some(output),
        compressed: Some(false),
        number_of_buckets: Some(buckets),
        serde_info: Some(SerDeInfo {
            name: None,
            serialization_library: Some(library),
            parameters: Some(params),
        }),
        bucket_columns: Some(bucket_columns),
        sort_columns: Some(sort_columns),
        parameters: Some(Parameters::new()),
        stored_as_sub_directories: Some(false),
        ..Default::default()
    })
}

/// A string literal as Hive prints it: single quotes, control characters as octal escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn column_lines(cols: &[Column]) -> String {
    cols.iter()
        .map(|c| {
            let comment = c
                .comment
                .as_deref()
                .map(|x| format!(" COMMENT {}", quote(x)))
                .unwrap_or_default();
            format!("  `{}` {}{comment}", c.name, c.type_name())
        })
        .collect::<Vec<_>>()
        .join(", \n")
}

fn property_lines(p: &Parameters) -> String {
    p.iter()
        .map(|(k, v)| format!("  {}={}", quote(k), quote(v)))
        .collect::<Vec<_>>()
        .join(", \n")
}

/// `SHOW CREATE TABLE`: the DDL that creates the table again, laid out as Hive prints it.
pub fn show_create_table(t: &Table) -> String {
    let sd = t.storage_descriptor.clone().unwrap_or_default();
    let mut out = format!(
        "CREATE EXTERNAL TABLE `{}`.`{}`(\n{})\n",
        t.database(),
        t.name,
        column_lines(sd.columns())
    );
    if let Some(d) = &t.description {
        out.push_str(&format!("COMMENT {}\n", quote(d)));
    }
    if !t.partition_keys().is_empty() {
        out.push_str(&format!(
            "PARTITIONED BY ( \n{})\n",
            column_lines(t.partition_keys())
        ));
    }
    if sd.number_of_buckets.unwrap_or(0) > 0 {
        let cols = sd.bucket_columns.clone().unwrap_or_default();
        out.push_str(&format!(
            "CLUSTERED BY ( \n  {}) \n",
            cols.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let sorted = sd.sort_columns.clone().unwrap_or_default();
        if !sorted.is_empty() {
            let s: Vec<String> = sorted
                .iter()
                .map(|o| {
                    format!(
                        "`{}` {}",
                        o.column,
                        if o.sort_order == 0 { "DESC" } else { "ASC" }
                    )
                })
                .collect();
            out.push_str(&format!("SORTED BY ( \n  {}) \n", s.join(", ")));
        }
        out.push_str(&format!("INTO {} BUCKETS\n", sd.number_of_buckets.unwrap_or(0)));
    }
    let serde = sd.serde_info.clone().unwrap_or_default();
    out.push_str(&format!(
        "ROW FORMAT SERDE \n  {} \n",
        quote(serde.serialization_library.as_deref().unwrap_or(LAZY_SIMPLE))
    ));
    let params = serde.parameters.unwrap_or_default();
    if !params.is_empty() {
        out.push_str(&format!(
            "WITH SERDEPROPERTIES ( \n{}) \n",
            property_lines(&params)
        ));
    }
    out.push_str(&format!(
        "STORED AS INPUTFORMAT \n  {} \nOUTPUTFORMAT \n  {}\n",
        quote(sd.input_format.as_deref().unwrap_or(TEXT_INPUT)),
        quote(sd.output_format.as_deref().unwrap_or(TEXT_OUTPUT))
    ));
    if let Some(l) = &sd.location {
        out.push_str(&format!("LOCATION\n  {}\n", quote(l)));
    }
    let props: Parameters = t.parameters.clone().unwrap_or_default();
    if !props.is_empty() {
        out.push_str(&format!("TBLPROPERTIES (\n{})", property_lines(&props)));
    }
    out.trim_end().to_owned()
}
