//! Schema inference for crawlers: which format a file is in (Glue's classifiers, custom ones
//! first) and what its columns are, from as little of the file as the format needs.

pub mod columnar;
pub mod compression;
pub mod csv;
pub mod grok;
pub mod json;
pub mod types;

use std::collections::BTreeMap;

use compression::Codec;
use types::HiveType;

use crate::model::{Column, SerDeInfo, StorageDescriptor};

/// How much of a text file is sampled (before decompression): Glue reads the first megabyte.
pub const TEXT_SAMPLE_BYTES: usize = 1024 * 1024;
/// How much decompressed text is looked at.
pub const TEXT_SAMPLE_LIMIT: usize = 4 * 1024 * 1024;

/// A file format with what its table definition needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Csv {
        delimiter: char,
        quote: char,
        header: bool,
        open_csv: bool,
        quoted: bool,
    },
    Json {
        json_path: Option<String>,
    },
    Parquet,
    Orc,
    Avro {
        schema_literal: String,
    },
    Grok {
        pattern: String,
        custom_patterns: Option<String>,
    },
}

/// What a classifier concluded about one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    pub classification: String,
    pub format: Format,
    pub columns: Vec<(String, HiveType)>,
    /// `compressionType` as Glue writes it.
    pub compression: &'static str,
    pub records: u64,
    /// Bytes per record, measured on the sample.
    pub average_record_size: u64,
}

impl Inferred {
    /// Whether two files can be rows of one table: same classification, compression and
    /// format settings.
    pub fn same_format(&self, other: &Inferred) -> bool {
        self.classification == other.classification
            && self.compression == other.compression
            && match (&self.format, &other.format) {
                (Format::Csv { delimiter: a, .. }, Format::Csv { delimiter: b, .. }) => a == b,
                (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
            }
    }

    /// Combines the inferences of two files of one table.
    pub fn merge(mut self, other: Inferred) -> Inferred {
        self.columns = types::merge_fields(self.columns, other.columns);
        self.records += other.records;
        if let (
            Format::Csv {
                header: a,
                quoted: qa,
                open_csv: oa,
                ..
            },
            Format::Csv {
                header: b,
                quoted: qb,
                open_csv: ob,
                ..
            },
        ) = (&mut self.format, &other.format)
        {
            *a = *a && *b;
            *qa = *qa || *qb;
            *oa = *oa || *ob;
        }
        self
    }
}

/// A custom classifier as the crawler applies it.
#[derive(Debug, Clone)]
pub enum Custom {
    Csv(csv::CsvOptions),
    Json {
        json_path: String,
    },
    Grok {
        classification: String,
        grok: grok::Grok,
        pattern: String,
        custom_patterns: Option<String>,
    },
    /// XML classifiers are stored but Lakebox does not crawl XML yet: they never match.
    Xml,
}

fn csv_inferred(s: csv::CsvSchema, codec: Codec, sample_len: usize) -> Inferred {
    Inferred {
        classification: "csv".into(),
        average_record_size: (sample_len / s.records.max(1)) as u64,
        records: s.records as u64,
        columns: s.columns,
        compression: codec.glue_name(),
        format: Format::Csv {
            delimiter: s.delimiter,
            quote: s.quote,
            header: s.has_header,
            open_csv: s.open_csv,
            quoted: s.quoted,
        },
    }
}

fn json_inferred(s: json::JsonSchema, path: Option<String>, codec: Codec, sample_len: usize) -> Inferred {
    Inferred {
        classification: "json".into(),
        average_record_size: (sample_len / s.records.max(1)) as u64,
        records: s.records as u64,
        columns: s.columns,
        compression: codec.glue_name(),
        format: Format::Json { json_path: path },
    }
}

/// Classifies a text file from the start of it (`truncated` when the file goes on). Custom
/// classifiers are tried first, in order; then Glue's built-ins in Glue's order (JSON before
/// CSV).
pub fn classify_text(key: &str, head: &[u8], truncated: bool, custom: &[Custom]) -> Option<Inferred> {
    let codec = Codec::detect(key, head);
    let raw = compression::decompress_prefix(codec, head, TEXT_SAMPLE_LIMIT);
    // A compressed sample is always cut somewhere unless the whole file was read and decoded.
    let truncated = truncated || raw.len() >= TEXT_SAMPLE_LIMIT;
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => t.to_owned(),
        // A sample may end inside a multi-byte character.
        Err(e) if truncated && e.error_len().is_none() => {
            String::from_utf8_lossy(&raw[..e.valid_up_to()]).into_owned()
        }
        Err(_) => return None,
    };
    for c in custom {
        let hit = match c {
            Custom::Csv(opts) => {
                csv::infer(&text, truncated, opts).map(|s| csv_inferred(s, codec, text.len()))
            }
            Custom::Json { json_path } => json::infer(&text, truncated, Some(json_path))
                .map(|s| json_inferred(s, Some(json_path.clone()), codec, text.len())),
            Custom::Grok {
                classification,
                grok,
                pattern,
                custom_patterns,
            } => grok.matches_sample(&text, truncated).map(|records| Inferred {
                classification: classification.clone(),
                format: Format::Grok {
                    pattern: pattern.clone(),
                    custom_patterns: custom_patterns.clone(),
                },
                columns: grok.fields.clone(),
                compression: codec.glue_name(),
                records: records as u64,
                average_record_size: (text.len() / records.max(1)) as u64,
            }),
            Custom::Xml => None,
        };
        if hit.is_some() {
            return hit;
        }
    }
    if let Some(s) = json::infer(&text, truncated, None) {
        return Some(json_inferred(s, None, codec, text.len()));
    }
    csv::infer(&text, truncated, &csv::CsvOptions::default()).map(|s| csv_inferred(s, codec, text.len()))
}

/// A self-describing file's inference from its metadata.
pub fn from_file_schema(
    classification: &str,
    format: Format,
    s: columnar::FileSchema,
    size: u64,
) -> Inferred {
    Inferred {
        classification: classification.into(),
        format,
        columns: s.columns,
        compression: s.codec.unwrap_or("none"),
        average_record_size: size.checked_div(s.records).unwrap_or(size),
        records: s.records,
    }
}

const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/// The parts of a table definition that follow from the format, exactly as Glue's crawler
/// writes them: formats, SerDe, and the format's own table parameters.
pub fn storage_for(inferred: &Inferred) -> (StorageDescriptor, BTreeMap<String, String>) {
    let mut params = BTreeMap::new();
    params.insert("classification".to_string(), inferred.classification.clone());
    params.insert("compressionType".to_string(), inferred.compression.to_string());
    params.insert("typeOfData".to_string(), "file".to_string());
    let p = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (input, output, serde, serde_params) = match &inferred.format {
        Format::Csv {
            delimiter,
            quote,
            header,
            open_csv,
            quoted,
        } => {
            let d = delimiter.to_string();
            params.insert("delimiter".into(), d.clone());
            params.insert("columnsOrdered".into(), "true".into());
            params.insert("areColumnsQuoted".into(), quoted.to_string());
            if *header {
                params.insert("skip.header.line.count".into(), "1".into());
            }
            if *open_csv {
                (
                    TEXT_INPUT,
                    TEXT_OUTPUT,
                    "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                    p(&[
                        ("separatorChar", &d),
                        ("quoteChar", &quote.to_string()),
                        ("escapeChar", "\\"),
                    ]),
                )
            } else {
                (
                    TEXT_INPUT,
                    TEXT_OUTPUT,
                    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                    p(&[("field.delim", &d)]),
                )
            }
        }
        Format::Json { json_path } => {
            if let Some(path) = json_path {
                params.insert("jsonPath".into(), path.clone());
            }
            let paths = inferred
                .columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(",");
            (
                TEXT_INPUT,
                TEXT_OUTPUT,
                "org.openx.data.jsonserde.JsonSerDe",
                p(&[("paths", &paths)]),
            )
        }
        Format::Parquet => (
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            p(&[("serialization.format", "1")]),
        ),
        Format::Orc => (
            "org.apache.hadoop.hive.ql.io.orc.OrcInputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat",
            "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
            p(&[("serialization.format", "1")]),
        ),
        Format::Avro { schema_literal } => {
            params.insert("avro.schema.literal".into(), schema_literal.clone());
            (
                "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
                "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
                "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
                p(&[("avro.schema.literal", schema_literal)]),
            )
        }
        Format::Grok {
            pattern,
            custom_patterns,
        } => {
            params.insert("grokPattern".into(), pattern.clone());
            let mut sp = p(&[("input.format", pattern)]);
            if let Some(c) = custom_patterns {
                sp.insert("input.grokCustomPatterns".into(), c.clone());
            }
            (TEXT_INPUT, TEXT_OUTPUT, "com.amazonaws.glue.serde.GrokSerDe", sp)
        }
    };
    let sd = StorageDescriptor {
        columns: Some(
            inferred
                .columns
                .iter()
                .map(|(n, t)| Column::new(n.clone(), t.clone().resolved().to_string()))
                .collect(),
        ),
        location: None,
        input_format: Some(input.into()),
        output_format: Some(output.into()),
        compressed: Some(
            inferred.compression != "none"
                && matches!(
                    inferred.format,
                    Format::Csv { .. } | Format::Json { .. } | Format::Grok { .. }
                ),
        ),
        number_of_buckets: Some(-1),
        serde_info: Some(SerDeInfo {
            name: None,
            serialization_library: Some(serde.into()),
            parameters: Some(serde_params),
        }),
        bucket_columns: Some(Vec::new()),
        sort_columns: Some(Vec::new()),
        parameters: None,
        stored_as_sub_directories: Some(false),
        ..Default::default()
    };
    (sd, params)
}
