//! Types between Glue (Hive names), Arrow (DataFusion) and Athena's result metadata.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use lakebox_glue::infer::types::HiveType;

/// The Arrow type a Glue column is read as.
pub fn arrow_type(t: &HiveType) -> DataType {
    match t {
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
        HiveType::Array(e) => DataType::List(Arc::new(Field::new("element", arrow_type(e), true))),
        HiveType::Map(k, v) => DataType::Map(
            Arc::new(Field::new(
                "key_value",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", arrow_type(k), false),
                    Field::new("value", arrow_type(v), true),
                ])),
                false,
            )),
            false,
        ),
        HiveType::Struct(fields) => DataType::Struct(Fields::from(
            fields
                .iter()
                .map(|(n, t)| Field::new(n.clone(), arrow_type(t), true))
                .collect::<Vec<_>>(),
        )),
    }
}

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
