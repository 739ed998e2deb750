//! Schemas of self-describing files, read from their metadata alone: the Parquet footer, the
//! ORC file tail and the Avro header. No data pages are read.

use lakebox_protocol::protobuf::{Field, Reader as Proto};
use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as Physical};
use parquet::schema::types::Type as PqType;
use serde_json::Value;

use super::types::HiveType;

pub struct FileSchema {
    pub columns: Vec<(String, HiveType)>,
    pub records: u64,
    /// Extra facts a table records (the Avro schema literal, the file's codec).
    pub schema_literal: Option<String>,
    pub codec: Option<&'static str>,
}

// ---- Parquet ----

pub const PARQUET_MAGIC: &[u8] = b"PAR1";

/// The footer length from the last 8 bytes of a Parquet file.
pub fn parquet_footer_len(tail8: &[u8]) -> Option<usize> {
    if tail8.len() != 8 || &tail8[4..] != PARQUET_MAGIC {
        return None;
    }
    Some(u32::from_le_bytes([tail8[0], tail8[1], tail8[2], tail8[3]]) as usize)
}

/// Decodes the footer metadata (without the 8-byte tail).
pub fn parquet_schema(footer: &[u8]) -> Option<FileSchema> {
    let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(footer).ok()?;
    let file = meta.file_metadata();
    let root = file.schema_descr().root_schema();
    let columns = root
        .get_fields()
        .iter()
        .map(|f| (f.name().to_lowercase(), parquet_field(f)))
        .collect();
    let codec = meta
        .row_groups()
        .first()
        .and_then(|rg| rg.columns().first())
        .map(|c| match c.compression() {
            parquet::basic::Compression::UNCOMPRESSED => "none",
            parquet::basic::Compression::SNAPPY => "snappy",
            parquet::basic::Compression::GZIP(_) => "gzip",
            parquet::basic::Compression::ZSTD(_) => "zstd",
            parquet::basic::Compression::LZ4 | parquet::basic::Compression::LZ4_RAW => "lz4",
            parquet::basic::Compression::BROTLI(_) => "brotli",
            _ => "none",
        });
    Some(FileSchema {
        columns,
        records: file.num_rows().max(0) as u64,
        schema_literal: None,
        codec,
    })
}

fn parquet_primitive(t: &PqType) -> HiveType {
    let info = t.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    if let Some(LogicalType::Decimal(d)) = logical {
        return HiveType::Decimal(d.precision.max(0) as u32, d.scale.max(0) as u32);
    }
    if converted == ConvertedType::DECIMAL {
        return HiveType::Decimal(t.get_precision().max(0) as u32, t.get_scale().max(0) as u32);
    }
    match t.get_physical_type() {
        Physical::BOOLEAN => HiveType::Boolean,
        Physical::INT32 => match (logical, converted) {
            (Some(LogicalType::Date), _) | (_, ConvertedType::DATE) => HiveType::Date,
            (Some(LogicalType::Integer(i)), _) if i.bit_width == 8 => HiveType::TinyInt,
            (Some(LogicalType::Integer(i)), _) if i.bit_width == 16 => HiveType::SmallInt,
            (_, ConvertedType::INT_8) => HiveType::TinyInt,
            (_, ConvertedType::INT_16) => HiveType::SmallInt,
            _ => HiveType::Int,
        },
        Physical::INT64 => match (logical, converted) {
            (Some(LogicalType::Timestamp(_)), _)
            | (_, ConvertedType::TIMESTAMP_MILLIS)
            | (_, ConvertedType::TIMESTAMP_MICROS) => HiveType::Timestamp,
            _ => HiveType::BigInt,
        },
        Physical::INT96 => HiveType::Timestamp,
        Physical::FLOAT => HiveType::Float,
        Physical::DOUBLE => HiveType::Double,
        Physical::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::String | LogicalType::Enum | LogicalType::Json), _)
            | (_, ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON) => HiveType::String,
            _ => HiveType::Binary,
        },
        Physical::FIXED_LEN_BYTE_ARRAY => HiveType::Binary,
    }
}

/// A field's Hive type, following Parquet's LIST and MAP encodings (3-level and legacy).
fn parquet_field(t: &PqType) -> HiveType {
    let repeated =
        t.get_basic_info().has_repetition() && t.get_basic_info().repetition() == Repetition::REPEATED;
    let inner = parquet_unrepeated(t);
    if repeated {
        HiveType::Array(Box::new(inner))
    } else {
        inner
    }
}

fn parquet_unrepeated(t: &PqType) -> HiveType {
    if !t.is_group() {
        return parquet_primitive(t);
    }
    let info = t.get_basic_info();
    let logical = info.logical_type_ref();
    let converted = info.converted_type();
    let fields = t.get_fields();
    let is_list = matches!(logical, Some(LogicalType::List)) || converted == ConvertedType::LIST;
    let is_map = matches!(logical, Some(LogicalType::Map))
        || converted == ConvertedType::MAP
        || converted == ConvertedType::MAP_KEY_VALUE;
    if is_list && fields.len() == 1 {
        let rep = &fields[0];
        // 3-level: repeated group list { element }; legacy: the repeated field is the element.
        let element = if rep.is_group()
            && rep.get_fields().len() == 1
            && !matches!(rep.name(), "array")
            && !rep.name().ends_with("_tuple")
        {
            parquet_field(&rep.get_fields()[0])
        } else {
            parquet_unrepeated(rep)
        };
        return HiveType::Array(Box::new(element));
    }
    if is_map && fields.len() == 1 && fields[0].is_group() && fields[0].get_fields().len() == 2 {
        let kv = fields[0].get_fields();
        return HiveType::Map(Box::new(parquet_field(&kv[0])), Box::new(parquet_field(&kv[1])));
    }
    HiveType::Struct(
        fields
            .iter()
            .map(|f| (f.name().to_owned(), parquet_field(f)))
            .collect(),
    )
}

// ---- ORC ----

/// What the PostScript says about the footer before it.
pub struct OrcPostScript {
    pub footer_len: usize,
    pub compression: u64,
}

/// Parses the PostScript from the end of a file (`tail` ends at the file's last byte).
pub fn orc_postscript(tail: &[u8]) -> Option<(OrcPostScript, usize)> {
    let ps_len = *tail.last()? as usize;
    let ps = tail.get(tail.len().checked_sub(1 + ps_len)?..tail.len() - 1)?;
    let mut p = Proto::new(ps);
    let (mut footer_len, mut compression, mut magic) = (None, 0, false);
    while let Some((no, f)) = p.next_field() {
        match (no, f) {
            (1, Field::Varint(v)) => footer_len = Some(v as usize),
            (2, Field::Varint(v)) => compression = v,
            (8000, Field::Bytes(b)) => magic = b == b"ORC",
            _ => {}
        }
    }
    magic.then_some((
        OrcPostScript {
            footer_len: footer_len?,
            compression,
        },
        ps_len + 1,
    ))
}

/// Undoes ORC's chunked compression (3-byte headers; "original" chunks are stored raw).
fn orc_decompress(data: &[u8], codec: u64) -> Option<Vec<u8>> {
    if codec == 0 {
        return Some(data.to_vec());
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 3 <= data.len() {
        let h = u32::from(data[pos]) | u32::from(data[pos + 1]) << 8 | u32::from(data[pos + 2]) << 16;
        pos += 3;
        let len = (h >> 1) as usize;
        let chunk = data.get(pos..pos + len)?;
        pos += len;
        if h & 1 == 1 {
            out.extend_from_slice(chunk);
            continue;
        }
        match codec {
            1 => {
                use std::io::Read;
                flate2::read::DeflateDecoder::new(chunk)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            2 => out.extend(snap::raw::Decoder::new().decompress_vec(chunk).ok()?),
            5 => out.extend(zstd::stream::decode_all(chunk).ok()?),
            _ => return None,
        }
    }
    Some(out)
}

struct OrcType {
    kind: u64,
    subtypes: Vec<usize>,
    names: Vec<String>,
    precision: u32,
    scale: u32,
}

fn orc_type(msg: &[u8]) -> Option<OrcType> {
    let mut p = Proto::new(msg);
    let mut t = OrcType {
        kind: 0,
        subtypes: Vec::new(),
        names: Vec::new(),
        precision: 38,
        scale: 10,
    };
    while let Some((no, f)) = p.next_field() {
        match (no, f) {
            (1, Field::Varint(v)) => t.kind = v,
            (2, Field::Varint(v)) => t.subtypes.push(v as usize),
            (2, Field::Bytes(b)) => {
                let mut q = Proto::new(b);
                while !q.at_end() {
                    t.subtypes.push(q.varint()? as usize);
                }
            }
            (3, Field::Bytes(b)) => t.names.push(String::from_utf8_lossy(b).into_owned()),
            (5, Field::Varint(v)) => t.precision = v as u32,
            (6, Field::Varint(v)) => t.scale = v as u32,
            _ => {}
        }
    }
    Some(t)
}

fn orc_hive(types: &[OrcType], id: usize, depth: usize) -> HiveType {
    let Some(t) = types.get(id).filter(|_| depth < 64) else {
        return HiveType::String;
    };
    let sub = |i: usize| {
        t.subtypes
            .get(i)
            .map(|&s| orc_hive(types, s, depth + 1))
            .unwrap_or(HiveType::String)
    };
    match t.kind {
        0 => HiveType::Boolean,
        1 => HiveType::TinyInt,
        2 => HiveType::SmallInt,
        3 => HiveType::Int,
        4 => HiveType::BigInt,
        5 => HiveType::Float,
        6 => HiveType::Double,
        7 | 16 | 17 => HiveType::String,
        8 => HiveType::Binary,
        9 | 18 => HiveType::Timestamp,
        10 => HiveType::Array(Box::new(sub(0))),
        11 => HiveType::Map(Box::new(sub(0)), Box::new(sub(1))),
        12 => HiveType::Struct(
            t.names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), sub(i)))
                .collect(),
        ),
        14 => HiveType::Decimal(t.precision, t.scale),
        15 => HiveType::Date,
        _ => HiveType::String,
    }
}

/// Decodes the (possibly compressed) footer of an ORC file.
pub fn orc_schema(footer: &[u8], ps: &OrcPostScript) -> Option<FileSchema> {
    let footer = orc_decompress(footer, ps.compression)?;
    let mut p = Proto::new(&footer);
    let mut types = Vec::new();
    let mut rows = 0;
    while let Some((no, f)) = p.next_field() {
        match (no, f) {
            (4, Field::Bytes(b)) => types.push(orc_type(b)?),
            (6, Field::Varint(v)) => rows = v,
            _ => {}
        }
    }
    let HiveType::Struct(fields) = orc_hive(&types, 0, 0) else {
        return None;
    };
    Some(FileSchema {
        columns: fields.into_iter().map(|(n, t)| (n.to_lowercase(), t)).collect(),
        records: rows,
        schema_literal: None,
        codec: Some(match ps.compression {
            1 => "zlib",
            2 => "snappy",
            5 => "zstd",
            _ => "none",
        }),
    })
}

// ---- Avro ----

fn zigzag(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

fn avro_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(zigzag(buf, pos)?).ok()?;
    let b = buf.get(*pos..*pos + len)?;
    *pos += len;
    Some(b)
}

/// The writer's schema from an Avro container file's header.
pub fn avro_schema(head: &[u8]) -> Option<FileSchema> {
    if !head.starts_with(b"Obj\x01") {
        return None;
    }
    let mut pos = 4;
    let mut schema = None;
    let mut codec = None;
    loop {
        let mut count = zigzag(head, &mut pos)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = -count;
            zigzag(head, &mut pos)?; // the block's size in bytes
        }
        for _ in 0..count {
            let key = avro_bytes(head, &mut pos)?;
            let value = avro_bytes(head, &mut pos)?;
            match key {
                b"avro.schema" => schema = Some(String::from_utf8_lossy(value).into_owned()),
                b"avro.codec" => codec = Some(String::from_utf8_lossy(value).into_owned()),
                _ => {}
            }
        }
    }
    let literal = schema?;
    let parsed: Value = serde_json::from_str(&literal).ok()?;
    let HiveType::Struct(fields) = avro_hive(&parsed, 0) else {
        return None;
    };
    Some(FileSchema {
        columns: fields.into_iter().map(|(n, t)| (n.to_lowercase(), t)).collect(),
        records: 0,
        schema_literal: Some(literal),
        codec: Some(match codec.as_deref() {
            Some("deflate") => "deflate",
            Some("snappy") => "snappy",
            Some("zstandard") => "zstd",
            Some("bzip2") => "bzip2",
            _ => "none",
        }),
    })
}

fn avro_hive(schema: &Value, depth: usize) -> HiveType {
    if depth > 64 {
        return HiveType::String;
    }
    match schema {
        Value::String(name) => avro_primitive(name),
        Value::Array(branches) => {
            // ["null", T] is a nullable T; other unions read as text.
            let non_null: Vec<&Value> = branches.iter().filter(|b| b.as_str() != Some("null")).collect();
            match non_null.as_slice() {
                [one] => avro_hive(one, depth + 1),
                _ => HiveType::String,
            }
        }
        Value::Object(o) => {
            let logical = o.get("logicalType").and_then(Value::as_str);
            match (o.get("type").and_then(Value::as_str), logical) {
                (_, Some("date")) => HiveType::Date,
                (
                    _,
                    Some(
                        "timestamp-millis"
                        | "timestamp-micros"
                        | "local-timestamp-millis"
                        | "local-timestamp-micros",
                    ),
                ) => HiveType::Timestamp,
                (_, Some("decimal")) => HiveType::Decimal(
                    o.get("precision").and_then(Value::as_u64).unwrap_or(38) as u32,
                    o.get("scale").and_then(Value::as_u64).unwrap_or(0) as u32,
                ),
                (Some("record"), _) => HiveType::Struct(
                    o.get("fields")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|f| {
                            (
                                f.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                                avro_hive(f.get("type").unwrap_or(&Value::Null), depth + 1),
                            )
                        })
                        .collect(),
                ),
                (Some("array"), _) => HiveType::Array(Box::new(avro_hive(
                    o.get("items").unwrap_or(&Value::Null),
                    depth + 1,
                ))),
                (Some("map"), _) => HiveType::Map(
                    Box::new(HiveType::String),
                    Box::new(avro_hive(o.get("values").unwrap_or(&Value::Null), depth + 1)),
                ),
                (Some("enum"), _) => HiveType::String,
                (Some("fixed"), _) => HiveType::Binary,
                (Some(other), _) => avro_primitive(other),
                (None, _) => avro_hive(o.get("type").unwrap_or(&Value::Null), depth + 1),
            }
        }
        _ => HiveType::String,
    }
}

fn avro_primitive(name: &str) -> HiveType {
    match name {
        "boolean" => HiveType::Boolean,
        "int" => HiveType::Int,
        "long" => HiveType::BigInt,
        "float" => HiveType::Float,
        "double" => HiveType::Double,
        "bytes" => HiveType::Binary,
        _ => HiveType::String,
    }
}
