//! The S3 destination (ExtendedS3, and the older S3 configuration as a subset): parsed from
//! the stored configuration, validated with Firehose's rules, and described as
//! DescribeDeliveryStream returns it (defaults filled in).

use chrono_tz::Tz;
use lakebox_core::ServiceError;
use serde_json::{Value, json};

use crate::compress;
use crate::convert::Conversion;
use crate::errors::invalid_argument;
use crate::prefix::{self, Prefix, Role};
use crate::process::Processing;

pub const MIB: u64 = 1024 * 1024;
const DEFAULT_SIZE_MB: u64 = 5;
const DEFAULT_INTERVAL_S: u64 = 300;
/// Dynamic partitioning and format conversion need larger buffers (Firehose's minimum).
const MIN_SIZE_MB_LARGE: u64 = 64;
const DEFAULT_SIZE_MB_LARGE: u64 = 128;

/// What a delivery needs to know about its S3 destination.
#[derive(Debug, Clone)]
pub struct S3Destination {
    pub bucket: String,
    /// Where delivered objects go, and failed records: Firehose's rules already applied (see
    /// [`Prefix::effective`]).
    pub prefix: Prefix,
    pub error_prefix: Prefix,
    pub size_bytes: u64,
    pub interval_millis: i64,
    pub compression: compress::Format,
    pub file_extension: Option<String>,
    pub time_zone: Tz,
    pub processing: Processing,
    pub dynamic_partitioning: bool,
    pub conversion: Option<Conversion>,
    /// With S3BackupMode Enabled: where the source records are copied, as received.
    pub backup: Option<Box<S3Destination>>,
}

fn bucket_of(arn: &str) -> Result<String, ServiceError> {
    let bucket = arn
        .strip_prefix("arn:")
        .and_then(|r| r.split_once(":s3:::"))
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty() && !b.contains('/'))
        .ok_or_else(|| invalid_argument(format!("BucketARN {arn} is not a valid S3 bucket ARN.")))?;
    Ok(bucket.to_owned())
}

fn hint(c: &Value, field: &str) -> Option<u64> {
    c.get("BufferingHints")
        .and_then(|b| b.get(field))
        .and_then(Value::as_u64)
}

impl S3Destination {
    /// Parses and validates an (Extended)S3 destination configuration.
    pub fn parse(c: &Value) -> Result<S3Destination, ServiceError> {
        let bucket = bucket_of(c.get("BucketARN").and_then(Value::as_str).unwrap_or_default())?;
        if c.get("RoleARN").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(invalid_argument("RoleARN is required."));
        }
        let processing = Processing::parse(c.get("ProcessingConfiguration"))?;
        let dynamic_partitioning = c
            .pointer("/DynamicPartitioningConfiguration/Enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let conversion = Conversion::parse(c.get("DataFormatConversionConfiguration"))?;
        let large = dynamic_partitioning || conversion.is_some();
        let size_mb = hint(c, "SizeInMBs").unwrap_or(if large {
            DEFAULT_SIZE_MB_LARGE
        } else {
            DEFAULT_SIZE_MB
        });
        if !(1..=128).contains(&size_mb) {
            return Err(invalid_argument(format!(
                "BufferingHints.SizeInMBs must be between 1 and 128, got {size_mb}."
            )));
        }
        if large && size_mb < MIN_SIZE_MB_LARGE {
            return Err(invalid_argument(format!(
                "BufferingHints.SizeInMBs must be at least {MIN_SIZE_MB_LARGE} when dynamic partitioning or data format conversion is enabled."
            )));
        }
        let interval = hint(c, "IntervalInSeconds").unwrap_or(DEFAULT_INTERVAL_S);
        if interval > 900 {
            return Err(invalid_argument(format!(
                "BufferingHints.IntervalInSeconds must be between 0 and 900, got {interval}."
            )));
        }
        let compression = compress::Format::parse(c.get("CompressionFormat").and_then(Value::as_str))
            .ok_or_else(|| {
                invalid_argument(
                    "CompressionFormat must be UNCOMPRESSED, GZIP, ZIP, Snappy or HADOOP_SNAPPY.",
                )
            })?;
        if conversion.is_some() && compression != compress::Format::Uncompressed {
            return Err(invalid_argument(
                "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled; set the Parquet or ORC compression instead.",
            ));
        }
        let prefix_text = c.get("Prefix").and_then(Value::as_str).unwrap_or("");
        let error_text = c.get("ErrorOutputPrefix").and_then(Value::as_str).unwrap_or("");
        let prefix = (!prefix_text.is_empty())
            .then(|| Prefix::parse(prefix_text, Role::Prefix))
            .transpose()?;
        let error_prefix = (!error_text.is_empty())
            .then(|| Prefix::parse(error_text, Role::ErrorOutputPrefix))
            .transpose()?;
        let uses_keys = prefix.as_ref().is_some_and(|p| !p.partition_keys().is_empty());
        if dynamic_partitioning {
            if error_prefix.is_none() {
                return Err(invalid_argument(
                    "ErrorOutputPrefix is required when dynamic partitioning is enabled.",
                ));
            }
            if !uses_keys {
                return Err(invalid_argument(
                    "When dynamic partitioning is enabled, Prefix must contain at least one !{partitionKeyFromQuery:…} expression.",
                ));
            }
            if processing.metadata_query.is_none() && processing.lambda.is_none() {
                return Err(invalid_argument(
                    "Dynamic partitioning needs a MetadataExtraction or Lambda processor to extract partition keys.",
                ));
            }
        } else if uses_keys {
            return Err(invalid_argument(
                "Prefix can use !{partitionKeyFromQuery:…} only when dynamic partitioning is enabled.",
            ));
        }
        if prefix.as_ref().is_some_and(Prefix::has_expressions) && error_prefix.is_none() {
            return Err(invalid_argument(
                "ErrorOutputPrefix is required when Prefix contains expressions.",
            ));
        }
        let file_extension = c
            .get("FileExtension")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(|e| {
                let ok = e.starts_with('.')
                    && e.len() > 1
                    && e[1..]
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"!-_.*'()".contains(&b));
                if ok {
                    Ok(e.to_owned())
                } else {
                    Err(invalid_argument(format!("FileExtension '{e}' is invalid.")))
                }
            })
            .transpose()?;
        let time_zone = prefix::time_zone(c.get("CustomTimeZone").and_then(Value::as_str))?;
        let backup = match c.get("S3BackupMode").and_then(Value::as_str) {
            Some("Enabled") => {
                let b = c.get("S3BackupConfiguration").ok_or_else(|| {
                    invalid_argument("S3BackupConfiguration is required when S3BackupMode is Enabled.")
                })?;
                Some(Box::new(S3Destination::parse(b)?))
            }
            None | Some("Disabled") => None,
            Some(other) => return Err(invalid_argument(format!("Invalid S3BackupMode {other}."))),
        };
        let (prefix, error_prefix) = Prefix::effective(prefix, error_prefix);
        Ok(S3Destination {
            bucket,
            prefix,
            error_prefix,
            size_bytes: size_mb * MIB,
            interval_millis: (interval * 1000) as i64,
            compression,
            file_extension,
            time_zone,
            processing,
            dynamic_partitioning,
            conversion,
            backup,
        })
    }

    /// The object name extension: FileExtension, else the format's or compression's.
    pub fn extension(&self) -> String {
        if let Some(e) = &self.file_extension {
            return e.clone();
        }
        match &self.conversion {
            Some(c) => c.extension().to_owned(),
            None => self.compression.extension().to_owned(),
        }
    }
}

/// A stream's destination, by kind.
#[derive(Debug, Clone)]
pub enum Target {
    S3(Box<S3Destination>),
    Http(Box<crate::http::HttpDestination>),
}

/// The stored kinds of destination.
pub const KIND_S3: &str = "ExtendedS3";
pub const KIND_HTTP: &str = "HttpEndpoint";

impl Target {
    pub fn parse(kind: &str, config: &Value) -> Result<Target, ServiceError> {
        match kind {
            KIND_HTTP => Ok(Target::Http(Box::new(crate::http::HttpDestination::parse(
                config,
            )?))),
            _ => Ok(Target::S3(Box::new(S3Destination::parse(config)?))),
        }
    }

    pub fn size_bytes(&self) -> u64 {
        match self {
            Target::S3(d) => d.size_bytes,
            Target::Http(d) => d.size_bytes,
        }
    }

    pub fn interval_millis(&self) -> i64 {
        match self {
            Target::S3(d) => d.interval_millis,
            Target::Http(d) => d.interval_millis,
        }
    }

    pub fn dynamic_partitioning(&self) -> bool {
        matches!(self, Target::S3(d) if d.dynamic_partitioning)
    }
}

/// Fills in what DescribeDeliveryStream reports when the caller left it out.
pub fn describe_extended(c: &Value) -> Value {
    let mut d = c.clone();
    let dynamic = c
        .pointer("/DynamicPartitioningConfiguration/Enabled")
        .and_then(Value::as_bool)
        == Some(true);
    let conversion = c
        .pointer("/DataFormatConversionConfiguration/Enabled")
        .and_then(Value::as_bool)
        != Some(false)
        && c.get("DataFormatConversionConfiguration").is_some();
    let size = if dynamic || conversion {
        DEFAULT_SIZE_MB_LARGE
    } else {
        DEFAULT_SIZE_MB
    };
    let hints = json!({
        "SizeInMBs": hint(c, "SizeInMBs").unwrap_or(size),
        "IntervalInSeconds": hint(c, "IntervalInSeconds").unwrap_or(DEFAULT_INTERVAL_S),
    });
    d["BufferingHints"] = hints;
    if d.get("CompressionFormat").is_none() {
        d["CompressionFormat"] = json!("UNCOMPRESSED");
    }
    if d.get("EncryptionConfiguration").is_none() {
        d["EncryptionConfiguration"] = json!({"NoEncryptionConfig": "NoEncryption"});
    }
    if d.get("CloudWatchLoggingOptions").is_none() {
        d["CloudWatchLoggingOptions"] = json!({"Enabled": false});
    }
    if d.get("S3BackupMode").is_none() {
        d["S3BackupMode"] = json!("Disabled");
    }
    if let Some(b) = d.get("S3BackupConfiguration").cloned() {
        d.as_object_mut().unwrap().remove("S3BackupConfiguration");
        d["S3BackupDescription"] = describe_plain(&b);
    }
    d
}

/// The S3DestinationDescription part (the fields of the older S3 configuration).
pub fn describe_plain(c: &Value) -> Value {
    let full = describe_extended(c);
    let mut out = serde_json::Map::new();
    for k in [
        "RoleARN",
        "BucketARN",
        "Prefix",
        "ErrorOutputPrefix",
        "BufferingHints",
        "CompressionFormat",
        "EncryptionConfiguration",
        "CloudWatchLoggingOptions",
    ] {
        if let Some(v) = full.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// UpdateDestination: the update's fields over the current configuration.
pub fn merge_update(current: &Value, update: &Value) -> Value {
    let mut out = current.clone();
    if let (Some(o), Some(u)) = (out.as_object_mut(), update.as_object()) {
        for (k, v) in u {
            let k = if k == "S3BackupUpdate" {
                "S3BackupConfiguration"
            } else {
                k.as_str()
            };
            o.insert(k.to_owned(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::lake"})
    }

    #[test]
    fn defaults_and_rules() {
        let d = S3Destination::parse(&base()).unwrap();
        assert_eq!(
            (d.bucket.as_str(), d.size_bytes, d.interval_millis),
            ("lake", 5 * MIB, 300_000)
        );
        let mut c = base();
        c["Prefix"] = json!("x/!{timestamp:yyyy}/");
        assert!(
            S3Destination::parse(&c).is_err(),
            "expressions need an ErrorOutputPrefix"
        );
        c["ErrorOutputPrefix"] = json!("err/!{firehose:error-output-type}/");
        assert!(S3Destination::parse(&c).is_ok());
        c["DynamicPartitioningConfiguration"] = json!({"Enabled": true});
        assert!(
            S3Destination::parse(&c).is_err(),
            "needs partition keys in the prefix"
        );
        let mut c = base();
        c["BufferingHints"] = json!({"SizeInMBs": 129});
        assert!(S3Destination::parse(&c).is_err());
        let mut c = base();
        c["BucketARN"] = json!("lake");
        assert!(S3Destination::parse(&c).is_err());
        let d = describe_extended(&base());
        assert_eq!(
            d["BufferingHints"],
            json!({"SizeInMBs": 5, "IntervalInSeconds": 300})
        );
        assert_eq!(d["CompressionFormat"], "UNCOMPRESSED");
    }
}
