//! A Glue table's storage format, decided once from its SerDe library and input format, for
//! reading (DataFusion's readers or Lakebox's decoders) and for writing (INSERT INTO).

use std::sync::Arc;

use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::avro::AvroFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::error::{DataFusionError, Result};
use lakebox_glue::model::{StorageDescriptor, Table};

use crate::jsonkeys::JsonKeys;

/// Delimited text: LazySimpleSerDe or OpenCSVSerde.
#[derive(Clone, Debug)]
pub struct Text {
    pub delimiter: u8,
    /// OpenCSVSerde's quote character (LazySimpleSerDe does not quote).
    pub quote: Option<u8>,
    /// `skip.header.line.count` is set: the first line is not a row.
    pub header: bool,
}

#[derive(Clone, Debug)]
pub enum TableFormat {
    /// Parquet, with columns matched by name regardless of case (Athena's default) or by
    /// position (`parquet.column.index.access` = `true`).
    Parquet {
        by_position: bool,
    },
    /// ORC, with columns matched by position (Athena's default) or by name
    /// (`orc.column.index.access` = `false`).
    Orc {
        by_name: bool,
    },
    Avro,
    /// JSON lines (OpenX or Hive JSON SerDe), keys matched to columns as `JsonKeys` says.
    Json(JsonKeys),
    Text(Text),
    /// Hive's RegexSerDe: the whole line matched; group N fills column N.
    Regex(fancy_regex::Regex),
}

impl TableFormat {
    /// The format a table's SerDe library and input format name.
    pub fn of(t: &Table) -> Result<TableFormat> {
        let sd = t.storage_descriptor.clone().unwrap_or_default();
        TableFormat::from_storage(&sd, t.parameter("skip.header.line.count"))
    }

    /// The format of a storage descriptor, for a table whose `skip.header.line.count` is `skip_header`.
    fn from_storage(sd: &StorageDescriptor, skip_header: Option<&str>) -> Result<TableFormat> {
        let serde = sd
            .serde_info
            .as_ref()
            .and_then(|s| s.serialization_library.as_deref())
            .unwrap_or("");
        let input = sd.input_format.as_deref().unwrap_or("");
        let param = |k: &str| sd.serde_parameter(k).map(str::to_owned);
        if serde.ends_with("RegexSerDe") {
            let pattern = param("input.regex").ok_or_else(|| {
                DataFusionError::Plan(
                    "HIVE_BAD_DATA: a RegexSerDe table needs SERDEPROPERTIES 'input.regex'.".into(),
                )
            })?;
            let insensitive =
                param("input.regex.case.insensitive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let flags = if insensitive { "(?i)" } else { "" };
            let re = fancy_regex::Regex::new(&format!("{flags}^(?:{pattern})$"))
                .map_err(|e| DataFusionError::Plan(format!("HIVE_BAD_DATA: invalid input.regex: {e}")))?;
            return Ok(TableFormat::Regex(re));
        }
        if serde.contains("Parquet") || input.contains("Parquet") {
            let by_position =
                param("parquet.column.index.access").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            return Ok(TableFormat::Parquet { by_position });
        }
        if serde.contains("OrcSerde") || input.contains("OrcInputFormat") {
            let by_name = param("orc.column.index.access").is_some_and(|v| v.eq_ignore_ascii_case("false"));
            return Ok(TableFormat::Orc { by_name });
        }
        if serde.contains("AvroSerDe") || input.contains("Avro") {
            return Ok(TableFormat::Avro);
        }
        if serde.contains("JsonSerDe") {
            return Ok(TableFormat::Json(JsonKeys::of(sd, serde.contains("openx"))));
        }
        let open_csv = serde.contains("OpenCSVSerde");
        if serde.contains("LazySimpleSerDe") || open_csv || serde.is_empty() {
            let delimiter = param("field.delim")
                .or_else(|| param("separatorChar"))
                .or_else(|| {
                    param("serialization.format")
                        .filter(|f| f.len() == 1 && !f.chars().all(|c| c.is_ascii_digit()))
                })
                .and_then(|d| d.bytes().next())
                .unwrap_or(if open_csv { b',' } else { 1 });
            let quote = open_csv.then(|| param("quoteChar").and_then(|q| q.bytes().next()).unwrap_or(b'"'));
            let header = skip_header.is_some_and(|n| n != "0");
            return Ok(TableFormat::Text(Text {
                delimiter,
                quote,
                header,
            }));
        }
        Err(DataFusionError::NotImplemented(format!(
            "Tables with SerDe {serde} are not supported by Lakebox's Athena yet."
        )))
    }

    /// Whether the files carry their own compression (columnar and container formats),
    /// rather than being compressed whole as text files are.
    pub fn self_compressed(&self) -> bool {
        matches!(
            self,
            TableFormat::Parquet { .. } | TableFormat::Orc { .. } | TableFormat::Avro
        )
    }

    /// DataFusion's reader for files with `compression`; None for the formats Lakebox
    /// decodes itself (see `decoded`).
    pub fn reader(&self, compression: FileCompressionType) -> Option<Arc<dyn FileFormat>> {
        Some(match self {
            TableFormat::Parquet { .. } => Arc::new(ParquetFormat::default()),
            TableFormat::Avro => Arc::new(AvroFormat),
            TableFormat::Json(_) => Arc::new(JsonFormat::default().with_file_compression_type(compression)),
            TableFormat::Text(text) => {
                let mut f = CsvFormat::default()
                    .with_file_compression_type(compression)
                    .with_delimiter(text.delimiter)
                    .with_has_header(text.header);
                if let Some(q) = text.quote {
                    f = f.with_quote(q);
                }
                Arc::new(f)
            }
            TableFormat::Orc { .. } | TableFormat::Regex(_) => return None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lakebox_glue::model::SerDeInfo;

    /// A storage descriptor with this SerDe library, input format and SerDe properties.
    pub(crate) fn storage(serde: &str, input: &str, params: &[(&str, &str)]) -> StorageDescriptor {
        StorageDescriptor {
            input_format: Some(input.into()),
            serde_info: Some(SerDeInfo {
                serialization_library: Some(serde.into()),
                parameters: Some(
                    params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn serde_names_decide_the_format() {
        let f = |serde: &str, input: &str, params: &[(&str, &str)]| {
            TableFormat::from_storage(&storage(serde, input, params), None)
        };
        assert!(matches!(
            f(
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "",
                &[]
            ),
            Ok(TableFormat::Parquet { by_position: false })
        ));
        assert!(matches!(
            f(
                "org.apache.hadoop.hive.ql.io.orc.OrcSerde",
                "",
                &[("orc.column.index.access", "false")]
            ),
            Ok(TableFormat::Orc { by_name: true })
        ));
        assert!(matches!(
            f(
                "",
                "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
                &[]
            ),
            Ok(TableFormat::Avro)
        ));
        assert!(
            matches!(f("org.openx.data.jsonserde.JsonSerDe", "", &[]), Ok(TableFormat::Json(k)) if k.lowercases())
        );
        let Ok(TableFormat::Text(t)) = f(
            "org.apache.hadoop.hive.serde2.OpenCSVSerde",
            "",
            &[("separatorChar", "\t")],
        ) else {
            panic!("OpenCSV is text")
        };
        assert_eq!((t.delimiter, t.quote), (b'\t', Some(b'"')));
        let Ok(TableFormat::Text(t)) = f("", "", &[("serialization.format", "1")]) else {
            panic!("no SerDe is LazySimpleSerDe")
        };
        assert_eq!((t.delimiter, t.quote), (1, None));
        assert!(matches!(
            f(
                "org.apache.hadoop.hive.serde2.RegexSerDe",
                "",
                &[("input.regex", "(\\d+) (.*)")]
            ),
            Ok(TableFormat::Regex(_))
        ));
        assert!(f("org.apache.hadoop.hive.serde2.RegexSerDe", "", &[]).is_err());
        assert!(f("com.amazon.ionhiveserde.IonHiveSerDe", "", &[]).is_err());
    }
}
