//! Data format conversion settings (JSON in, Parquet or ORC out, schema from a Glue table).
//! The writing is in [`crate::columnar`].

use std::collections::BTreeMap;

use lakebox_core::ServiceError;
use serde_json::Value;

use crate::errors::invalid_argument;

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Parquet with its compression codec (`UNCOMPRESSED`, `GZIP`, `SNAPPY`).
    Parquet { compression: String },
    /// ORC with its compression (`NONE`, `ZLIB`, `SNAPPY`).
    Orc { compression: String },
}

/// How JSON records are read (OpenX or Hive JSON SerDe options).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonInput {
    pub hive: bool,
    pub case_insensitive: bool,
    pub dots_to_underscores: bool,
    pub column_to_key: BTreeMap<String, String>,
    pub timestamp_formats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub database: String,
    pub table: String,
    pub catalog_id: Option<String>,
    pub region: Option<String>,
    pub version_id: Option<String>,
    pub role_arn: Option<String>,
    pub input: JsonInput,
    pub output: Output,
}

impl Conversion {
    /// `None` when conversion is absent or disabled.
    pub fn parse(c: Option<&Value>) -> Result<Option<Conversion>, ServiceError> {
        let Some(c) = c else { return Ok(None) };
        if c.get("Enabled").and_then(Value::as_bool) == Some(false) {
            return Ok(None);
        }
        let schema = c
            .get("SchemaConfiguration")
            .ok_or_else(|| invalid_argument("SchemaConfiguration is required for data format conversion."))?;
        let text = |k: &str| schema.get(k).and_then(Value::as_str).map(str::to_owned);
        let database = text("DatabaseName")
            .ok_or_else(|| invalid_argument("SchemaConfiguration.DatabaseName is required."))?;
        let table = text("TableName")
            .ok_or_else(|| invalid_argument("SchemaConfiguration.TableName is required."))?;
        let de = c.pointer("/InputFormatConfiguration/Deserializer");
        let input = match (
            de.and_then(|d| d.get("OpenXJsonSerDe")),
            de.and_then(|d| d.get("HiveJsonSerDe")),
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid_argument(
                    "Choose one deserializer: OpenXJsonSerDe or HiveJsonSerDe.",
                ));
            }
            (_, Some(h)) => JsonInput {
                hive: true,
                case_insensitive: true,
                timestamp_formats: h
                    .get("TimestampFormats")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default(),
                ..Default::default()
            },
            (Some(o), _) => JsonInput {
                hive: false,
                case_insensitive: o.get("CaseInsensitive").and_then(Value::as_bool).unwrap_or(true),
                dots_to_underscores: o
                    .get("ConvertDotsInJsonKeysToUnderscores")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                column_to_key: o
                    .get("ColumnToJsonKeyMappings")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.to_lowercase(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp_formats: Vec::new(),
            },
            (None, None) => return Err(invalid_argument("InputFormatConfiguration needs a Deserializer.")),
        };
        let ser = c
            .pointer("/OutputFormatConfiguration/Serializer")
            .ok_or_else(|| invalid_argument("OutputFormatConfiguration needs a Serializer."))?;
        let output = match (ser.get("ParquetSerDe"), ser.get("OrcSerDe")) {
            (Some(p), None) => {
                let compression = p
                    .get("Compression")
                    .and_then(Value::as_str)
                    .unwrap_or("SNAPPY")
                    .to_owned();
                if !["UNCOMPRESSED", "GZIP", "SNAPPY"].contains(&compression.as_str()) {
                    return Err(invalid_argument(format!(
                        "Invalid Parquet compression {compression}."
                    )));
                }
                Output::Parquet { compression }
            }
            (None, Some(o)) => {
                let compression = o
                    .get("Compression")
                    .and_then(Value::as_str)
                    .unwrap_or("SNAPPY")
                    .to_owned();
                if !["NONE", "ZLIB", "SNAPPY"].contains(&compression.as_str()) {
                    return Err(invalid_argument(format!(
                        "Invalid ORC compression {compression}."
                    )));
                }
                Output::Orc { compression }
            }
            _ => {
                return Err(invalid_argument(
                    "Choose one serializer: ParquetSerDe or OrcSerDe.",
                ));
            }
        };
        Ok(Some(Conversion {
            database,
            table,
            catalog_id: text("CatalogId"),
            region: text("Region"),
            version_id: text("VersionId").filter(|v| v != "LATEST"),
            role_arn: text("RoleARN"),
            input,
            output,
        }))
    }

    pub fn extension(&self) -> &'static str {
        match self.output {
            Output::Parquet { .. } => ".parquet",
            Output::Orc { .. } => ".orc",
        }
    }
}
