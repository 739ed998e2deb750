//! Trino's varbinary functions: `to_utf8` / `from_utf8`, `to_hex` / `from_hex` (uppercase hex),
//! `to_base64` / `from_base64` (padded), and the hashes `md5`, `sha1`, `sha256`, `sha512`, which
//! take and return varbinary — so `to_hex(md5(to_utf8(s)))` is the usual spelling.

use std::sync::Arc;

use base64::Engine;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use md5::Digest;

use super::{arg, invalid, register as reg};

pub fn register(ctx: &SessionContext) {
    reg(ctx, "to_utf8", &[1], |_| DataType::Binary, to_utf8);
    reg(ctx, "from_utf8", &[1], |_| DataType::Utf8, from_utf8);
    reg(ctx, "to_hex", &[1], |_| DataType::Utf8, to_hex);
    reg(ctx, "from_hex", &[1], |_| DataType::Binary, from_hex);
    reg(ctx, "to_base64", &[1], |_| DataType::Utf8, to_base64);
    reg(ctx, "from_base64", &[1], |_| DataType::Binary, from_base64);
    reg(
        ctx,
        "md5",
        &[1],
        |_| DataType::Binary,
        |a, _| hash(a, |b| md5::Md5::digest(b).to_vec()),
    );
    reg(
        ctx,
        "sha1",
        &[1],
        |_| DataType::Binary,
        |a, _| hash(a, |b| sha1::Sha1::digest(b).to_vec()),
    );
    reg(
        ctx,
        "sha256",
        &[1],
        |_| DataType::Binary,
        |a, _| hash(a, |b| sha2::Sha256::digest(b).to_vec()),
    );
    reg(
        ctx,
        "sha512",
        &[1],
        |_| DataType::Binary,
        |a, _| hash(a, |b| sha2::Sha512::digest(b).to_vec()),
    );
}

/// The argument as bytes: varbinary as it is, text as its UTF-8.
fn bytes(a: &[ArrayRef]) -> Result<BinaryArray> {
    Ok(arg(a, 0, &DataType::Binary)?.as_binary::<i32>().clone())
}

fn texts(a: &[ArrayRef]) -> Result<StringArray> {
    Ok(arg(a, 0, &DataType::Utf8)?.as_string::<i32>().clone())
}

fn to_utf8(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    Ok(Arc::new(bytes(a)?))
}

fn from_utf8(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let b = bytes(a)?;
    // Trino replaces invalid UTF-8 rather than failing.
    let out: StringArray = b
        .iter()
        .map(|v| v.map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect();
    Ok(Arc::new(out))
}

fn to_hex(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let out: StringArray = if a[0].data_type().is_integer() {
        let n = arg(a, 0, &DataType::Int64)?;
        n.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .iter()
            .map(|v| v.map(|v| format!("{v:X}")))
            .collect()
    } else {
        bytes(a)?.iter().map(|v| v.map(hex::encode_upper)).collect()
    };
    Ok(Arc::new(out))
}

fn from_hex(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let t = texts(a)?;
    let out = t
        .iter()
        .map(|v| {
            v.map(|v| hex::decode(v).map_err(|e| invalid(format!("'{v}' is not hexadecimal: {e}"))))
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(BinaryArray::from_iter(out)))
}

fn to_base64(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let b = bytes(a)?;
    let out: StringArray = b
        .iter()
        .map(|v| v.map(|v| base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    Ok(Arc::new(out))
}

fn from_base64(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let t = texts(a)?;
    let out = t
        .iter()
        .map(|v| {
            v.map(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|e| invalid(format!("'{v}' is not base64: {e}")))
            })
            .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(BinaryArray::from_iter(out)))
}

fn hash(a: &[ArrayRef], f: fn(&[u8]) -> Vec<u8>) -> Result<ArrayRef> {
    let b = bytes(a)?;
    let out: BinaryArray = b.iter().map(|v| v.map(f)).collect();
    Ok(Arc::new(out))
}
