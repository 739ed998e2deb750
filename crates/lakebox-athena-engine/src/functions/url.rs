//! Trino's URL functions: `url_extract_protocol`, `_host`, `_port`, `_path`, `_query`,
//! `_fragment` and `_parameter(url, name)`; a URL that does not parse gives NULL, as in Trino.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use url::Url;

use super::{arg, register as reg};

pub fn register(ctx: &SessionContext) {
    reg(
        ctx,
        "url_extract_protocol",
        &[1],
        |_| DataType::Utf8,
        |a, _| part(a, |u| Some(u.scheme().to_owned())),
    );
    reg(
        ctx,
        "url_extract_host",
        &[1],
        |_| DataType::Utf8,
        |a, _| part(a, |u| u.host_str().map(str::to_owned)),
    );
    reg(
        ctx,
        "url_extract_path",
        &[1],
        |_| DataType::Utf8,
        |a, _| part(a, |u| Some(u.path().to_owned())),
    );
    reg(
        ctx,
        "url_extract_query",
        &[1],
        |_| DataType::Utf8,
        |a, _| part(a, |u| u.query().map(str::to_owned)),
    );
    reg(
        ctx,
        "url_extract_fragment",
        &[1],
        |_| DataType::Utf8,
        |a, _| part(a, |u| u.fragment().map(str::to_owned)),
    );
    reg(
        ctx,
        "url_extract_port",
        &[1],
        |_| DataType::Int64,
        url_extract_port,
    );
    reg(
        ctx,
        "url_extract_parameter",
        &[2],
        |_| DataType::Utf8,
        url_extract_parameter,
    );
}

fn urls(a: &[ArrayRef]) -> Result<Vec<Option<Url>>> {
    let t = arg(a, 0, &DataType::Utf8)?;
    Ok(t.as_string::<i32>()
        .iter()
        .map(|v| v.and_then(|v| Url::parse(v).ok()))
        .collect())
}

fn part(a: &[ArrayRef], f: fn(&Url) -> Option<String>) -> Result<ArrayRef> {
    let out: StringArray = urls(a)?.iter().map(|u| u.as_ref().and_then(f)).collect();
    Ok(Arc::new(out))
}

fn url_extract_port(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    // The port written in the URL only (Trino gives NULL for a scheme's default).
    let out: Int64Array = urls(a)?
        .iter()
        .map(|u| u.as_ref().and_then(|u| u.port()).map(i64::from))
        .collect();
    Ok(Arc::new(out))
}

fn url_extract_parameter(a: &[ArrayRef], _: bool) -> Result<ArrayRef> {
    let names = arg(a, 1, &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    let out: StringArray = urls(a)?
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let u = u.as_ref()?;
            if names.is_null(i) {
                return None;
            }
            u.query_pairs()
                .find(|(k, _)| k == names.value(i))
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    Ok(Arc::new(out))
}
