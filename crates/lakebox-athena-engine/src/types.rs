//! Athena's names for result types (Glue's Hive types map to Arrow in
//! `lakebox_glue::infer::types::HiveType::arrow_type`).

use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};

/// Athena's (Trino's) name for a result type.
pub fn athena_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::UInt8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt16 => "smallint".into(),
        DataType::Int32 | DataType::UInt32 => "integer".into(),
        DataType::Int64 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "varbinary".into()
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("array({})", athena_type(f.data_type()))
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "map({}, {})",
                    athena_type(kv[0].data_type()),
                    athena_type(kv[1].data_type())
                )
            }
            _ => "map".into(),
        },
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|f| format!("{} {}", f.name(), athena_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Null => "unknown".into(),
        DataType::Dictionary(_, v) => athena_type(v),
        other => other.to_string().to_lowercase(),
    }
}

/// The Hive type Glue stores for a column of Arrow type `t` (CTAS registers its columns so).
pub fn hive_type(t: &DataType) -> Result<String> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            "binary".into()
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("array<{}>", hive_type(f.data_type())?)
        }
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "map<{},{}>",
                    hive_type(kv[0].data_type())?,
                    hive_type(kv[1].data_type())?
                )
            }
            other => return Err(DataFusionError::Plan(format!("Unsupported map entries {other}"))),
        },
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| Ok(format!(
                    "{}:{}",
                    f.name().to_lowercase(),
                    hive_type(f.data_type())?
                )))
                .collect::<Result<Vec<_>>>()?
                .join(",")
        ),
        DataType::Dictionary(_, v) => hive_type(v)?,
        DataType::Null => "string".into(),
        other => {
            return Err(DataFusionError::NotImplemented(format!(
                "A column of type {other} cannot be stored in a table"
            )));
        }
    })
}
