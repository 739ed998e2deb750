//! Values as Athena prints them in query results: timestamps `2024-01-02 03:04:05.000`, a
//! `timestamp with time zone` followed by its zone, and nested values as Trino writes them —
//! arrays `[1, 2]`, maps `{a=1, b=2}`, rows `{name=Bob, age=38}`, NULL inside them `null`.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::Result;

fn options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_null("null")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.3f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.3f"))
}

fn nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
    )
}

/// Every row's values as text, NULL as `None`.
pub fn to_text(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    let options = options();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // Logical nulls: a NULL literal's column (type Null) has no null buffer of its own.
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        for i in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .zip(&formatters)
                .zip(&nulls)
                .map(|((col, f), nulls)| {
                    if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                        return Ok(None);
                    }
                    Ok(Some(match col.data_type() {
                        t if nested(t) => value(col.as_ref(), i, &options)?,
                        DataType::Timestamp(_, Some(tz)) => format!("{} {tz}", f.value(i)),
                        _ => f.value(i).to_string(),
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            rows.push(row);
        }
    }
    Ok(rows)
}

/// One value of `array`, nested values as Trino prints them.
fn value(array: &dyn Array, i: usize, options: &FormatOptions) -> Result<String> {
    if array.is_null(i) {
        return Ok("null".into());
    }
    let list = |values: &dyn Array, from: usize, to: usize| -> Result<String> {
        let items = (from..to)
            .map(|j| value(values, j, options))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!("[{}]", items.join(", ")))
    };
    Ok(match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            list(l.values().as_ref(), o[i] as usize, o[i + 1] as usize)?
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            list(l.values().as_ref(), o[i] as usize, o[i + 1] as usize)?
        }
        DataType::FixedSizeList(_, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            let from = (l.offset() + i) * n;
            list(l.values().as_ref(), from, from + n)?
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let items = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| Ok(format!("{}={}", f.name(), value(c.as_ref(), i, options)?)))
                .collect::<Result<Vec<_>>>()?;
            format!("{{{}}}", items.join(", "))
        }
        DataType::Map(_, _) => {
            let m = array.as_map();
            let o = m.value_offsets();
            let items = (o[i] as usize..o[i + 1] as usize)
                .map(|j| {
                    Ok(format!(
                        "{}={}",
                        value(m.keys().as_ref(), j, options)?,
                        value(m.values().as_ref(), j, options)?
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            format!("{{{}}}", items.join(", "))
        }
        _ => ArrayFormatter::try_new(array, options)?.value(i).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn nested_values_print_as_trino_prints_them() {
        let ctx = SessionContext::new();
        let batches = ctx
            .sql(
                "SELECT [1, NULL, 3] AS a, named_struct('name', 'Bob', 'age', 38, 'tags', ['x']) AS r, \
                 map(['k1', 'k2'], [named_struct('v', 1), NULL]) AS m, CAST(NULL AS INT[]) AS n, \
                 [[1], []] AS aa",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows = to_text(&batches).unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Some("[1, null, 3]".to_owned()),
                Some("{name=Bob, age=38, tags=[x]}".to_owned()),
                Some("{k1={v=1}, k2=null}".to_owned()),
                None,
                Some("[[1], []]".to_owned()),
            ]]
        );
    }
}
