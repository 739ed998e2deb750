//! Trino functions Athena users reach for that DataFusion lacks (or spells differently),
//! registered as DataFusion scalar UDFs. Each takes its arguments as arrays, casts them to the
//! type it works on (so any string, integer or timestamp flavour is accepted) and returns an
//! array; a value that cannot be handled fails the query as Trino does, unless the call is
//! wrapped in `try(…)` (see `rewrite`), which selects the lenient variant (`try_<name>`) that
//! returns NULL instead.

mod binary;
mod collections;
mod datetime;
mod json;
mod text;
pub mod unnest;
mod url;

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Evaluates a function over its argument arrays; `strict` false means NULL on bad input.
type Body = fn(&[ArrayRef], bool) -> Result<ArrayRef>;
type Returns = fn(&[DataType]) -> DataType;

#[derive(Debug)]
struct Trino {
    name: String,
    signature: Signature,
    returns: Returns,
    body: Body,
    strict: bool,
}

// A function is known by its name (which differs between the strict and lenient variants).
impl PartialEq for Trino {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Trino {}

impl std::hash::Hash for Trino {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Trino {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok((self.returns)(arg_types))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.body)(&arrays, self.strict)?;
        Ok(ColumnarValue::Array(out))
    }
}

/// The names `try(…)` switches to their lenient variant.
pub const FALLIBLE: &[&str] = &[
    "date_parse",
    "from_iso8601_timestamp",
    "from_iso8601_date",
    "json_extract",
    "json_extract_scalar",
    "json_parse",
    "json_array_length",
    "json_size",
    "date_add",
    "parse_datetime",
    "format_datetime",
    "repeat",
    "lpad",
    "rpad",
];

fn register(ctx: &SessionContext, name: &str, arities: &[usize], returns: Returns, body: Body) {
    let signature = Signature::one_of(
        arities.iter().map(|n| TypeSignature::Any(*n)).collect(),
        Volatility::Immutable,
    );
    for strict in [true, false] {
        if !strict && !FALLIBLE.contains(&name) {
            continue;
        }
        let udf = Trino {
            name: if strict {
                name.to_owned()
            } else {
                format!("try_{name}")
            },
            signature: signature.clone(),
            returns,
            body,
            strict,
        };
        ctx.register_udf(ScalarUDF::new_from_impl(udf));
    }
}

/// Registers every Trino function on a session.
pub fn register_all(ctx: &SessionContext) {
    binary::register(ctx);
    collections::register(ctx);
    datetime::register(ctx);
    json::register(ctx);
    text::register(ctx);
    unnest::register(ctx);
    url::register(ctx);
    register_typeof(ctx);
}

/// `typeof(x)`: the Trino name of the argument's type.
fn register_typeof(ctx: &SessionContext) {
    register(
        ctx,
        "typeof",
        &[1],
        |_| DataType::Utf8,
        |a, _| {
            let name = crate::athena_type(a[0].data_type());
            Ok(Arc::new(datafusion::arrow::array::StringArray::from(
                vec![name; a[0].len()],
            )))
        },
    );
}

/// The argument cast to `t` (strings, numbers and timestamps of any flavour are accepted).
fn arg(arrays: &[ArrayRef], i: usize, t: &DataType) -> Result<ArrayRef> {
    let a = arrays
        .get(i)
        .ok_or_else(|| DataFusionError::Plan(format!("missing argument {}", i + 1)))?;
    Ok(cast(a, t)?)
}

/// A value a strict function rejects: Trino's INVALID_FUNCTION_ARGUMENT.
fn invalid(message: String) -> DataFusionError {
    DataFusionError::Execution(format!("INVALID_FUNCTION_ARGUMENT: {message}"))
}

pub(crate) fn utc() -> Option<Arc<str>> {
    Some("UTC".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn functions_answer_as_trino_does() {
        let ctx = SessionContext::new();
        register_all(&ctx);
        let one = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                let col = batches[0].column(0).clone();
                datafusion::arrow::util::display::array_value_to_string(&col, 0).unwrap()
            }
        };
        assert_eq!(
            one("SELECT date_parse('2024-03-05 07:08:09', '%Y-%m-%d %H:%i:%s')").await,
            "2024-03-05T07:08:09"
        );
        assert_eq!(
            one("SELECT date_format(date_parse('05/03/2024', '%d/%m/%Y'), '%Y-%m-%d %W')").await,
            "2024-03-05 Tuesday"
        );
        assert_eq!(
            one("SELECT from_iso8601_timestamp('2024-03-05T07:08:09.5+02:00')").await,
            "2024-03-05T05:08:09.500Z"
        );
        assert_eq!(
            one("SELECT to_unixtime(from_unixtime(1700000000.25))").await,
            "1700000000.25"
        );
        assert_eq!(
            one("SELECT date_add('month', 1, date_parse('2024-01-31', '%Y-%m-%d'))").await,
            "2024-02-29T00:00:00"
        );
        assert_eq!(one("SELECT date_diff('day', date_parse('2024-01-31', '%Y-%m-%d'), date_parse('2024-03-01', '%Y-%m-%d'))").await, "30");
        assert_eq!(one("SELECT date_diff('month', date_parse('2024-01-31', '%Y-%m-%d'), date_parse('2024-03-01', '%Y-%m-%d'))").await, "1");
        assert_eq!(
            one("SELECT day_of_week(date_parse('2024-03-10', '%Y-%m-%d'))").await,
            "7"
        );
        assert_eq!(
            one("SELECT format_datetime(date_parse('2024-03-10 07:05', '%Y-%m-%d %H:%i'), 'yyyy/MM/dd HH:mm EEE')").await,
            "2024/03/10 07:05 Sun"
        );
        assert_eq!(
            one("SELECT parse_datetime('2024/03/10 07', 'yyyy/MM/dd HH')").await,
            "2024-03-10T07:00:00Z"
        );
        assert_eq!(
            one("SELECT year(DATE '2024-03-10') * 100 + month(DATE '2024-03-10')").await,
            "202403"
        );
        assert_eq!(
            one("SELECT json_extract_scalar('{\"a\": {\"b\": [1, \"x\"]}}', '$.a.b[1]')").await,
            "x"
        );
        assert_eq!(
            one("SELECT json_extract('{\"a\": {\"b\": [1, 2]}}', '$.a.b')").await,
            "[1,2]"
        );
        assert_eq!(one("SELECT json_array_length('[1, 2, 3]')").await, "3");
        assert_eq!(
            one("SELECT regexp_extract('user=alice id=7', 'id=(\\d+)', 1)").await,
            "7"
        );
        assert_eq!(one("SELECT cardinality(split('a,b,c', ','))").await, "3");
        assert_eq!(one("SELECT element_at(split('a,b,c', ','), -1)").await, "c");
        assert_eq!(
            one("SELECT element_at(split('a,b,c', ','), 5) IS NULL").await,
            "true"
        );
        assert_eq!(one("SELECT element_at(MAP {'k': 1, 'j': 2}, 'j')").await, "2");
        assert!(
            ctx.sql("SELECT date_parse('nope', '%Y')")
                .await
                .unwrap()
                .collect()
                .await
                .is_err()
        );
        assert_eq!(one("SELECT try_date_parse('nope', '%Y') IS NULL").await, "true");
    }
}
