//! Hive bucketing, as Athena writes and reads bucketed tables (CTAS `bucketed_by`,
//! `bucket_count`; DDL `CLUSTERED BY … INTO n BUCKETS`): a row's bucket is Hive's bucket hash
//! (bucketing version 1, Athena's default) of its bucket columns, modulo the bucket count, and
//! each bucket is its own file, the bucket encoded in the name (`…_bucket-00003.parquet`). A
//! query filtering every bucket column by `=` (or one column by `IN`) reads only the files of
//! the buckets those values fall in.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

/// A table's bucketing: its bucket columns (with whether each is a Hive `varchar`, whose hash
/// differs from a `string`'s) and the number of buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucketing {
    pub columns: Vec<(String, bool)>,
    pub count: u32,
}

/// Hive's hash of one value (`ObjectInspectorUtils.hashCode`, bucketing version 1).
fn hash(array: &dyn Array, row: usize, varchar: bool) -> Result<i32> {
    if array.is_null(row) {
        return Ok(0);
    }
    let bytes = |b: &[u8], initial: i32| {
        b.iter()
            .fold(initial, |h, &x| h.wrapping_mul(31).wrapping_add(x as i8 as i32))
    };
    let long = |v: i64| ((v as u64 >> 32) as i64 ^ v) as i32;
    let initial = i32::from(varchar);
    Ok(match array.data_type() {
        DataType::Boolean => i32::from(array.as_boolean().value(row)),
        DataType::Int8 => array
            .as_primitive::<datafusion::arrow::datatypes::Int8Type>()
            .value(row) as i32,
        DataType::Int16 => array
            .as_primitive::<datafusion::arrow::datatypes::Int16Type>()
            .value(row) as i32,
        DataType::Int32 => array
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
            .value(row),
        DataType::Date32 => array
            .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
            .value(row),
        DataType::Int64 => long(
            array
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(row),
        ),
        DataType::Float32 => {
            let v = array
                .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
                .value(row);
            // Java's floatToIntBits: every NaN is the canonical one.
            if v.is_nan() {
                0x7fc0_0000
            } else {
                v.to_bits() as i32
            }
        }
        DataType::Float64 => {
            let v = array
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(row);
            long(if v.is_nan() {
                0x7ff8_0000_0000_0000
            } else {
                v.to_bits() as i64
            })
        }
        DataType::Utf8 => bytes(array.as_string::<i32>().value(row).as_bytes(), initial),
        DataType::LargeUtf8 => bytes(array.as_string::<i64>().value(row).as_bytes(), initial),
        DataType::Utf8View => bytes(array.as_string_view().value(row).as_bytes(), initial),
        other => {
            return Err(DataFusionError::NotImplemented(format!(
                "Bucketing by a column of type {} is not supported (Hive's bucket hash takes \
                 boolean, integers, real, double, varchar and date).",
                crate::athena_type(other)
            )));
        }
    })
}

impl Bucketing {
    /// The bucket of each row, from the bucket columns' arrays (in the bucketing's order).
    pub fn of_rows(&self, columns: &[ArrayRef]) -> Result<Vec<u32>> {
        let rows = columns.first().map_or(0, |c| c.len());
        (0..rows)
            .map(|row| {
                let mut h = 0i32;
                for (array, (_, varchar)) in columns.iter().zip(&self.columns) {
                    h = h
                        .wrapping_mul(31)
                        .wrapping_add(hash(array.as_ref(), row, *varchar)?);
                }
                Ok(((h & i32::MAX) as u32) % self.count.max(1))
            })
            .collect()
    }

    /// The buckets a query's filters confine the rows to (every bucket column compared with
    /// `=` to a literal, or one column with `IN`), each literal as the column's type; `None`
    /// when the filters do not say.
    pub fn wanted(&self, filters: &[Expr], types: &[DataType]) -> Option<Vec<u32>> {
        let values_of = |column: &str| -> Option<Vec<ScalarValue>> {
            filters.iter().find_map(|f| match f {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Eq,
                    right,
                }) => match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c))
                        if c.name == column =>
                    {
                        Some(vec![v.clone()])
                    }
                    _ => None,
                },
                Expr::InList(list) if !list.negated => match list.expr.as_ref() {
                    Expr::Column(c) if c.name == column => list
                        .list
                        .iter()
                        .map(|e| match e {
                            Expr::Literal(v, _) => Some(v.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                },
                _ => None,
            })
        };
        let values: Vec<Vec<ScalarValue>> = self
            .columns
            .iter()
            .map(|(c, _)| values_of(c))
            .collect::<Option<_>>()?;
        // One value per column, or several for a single column.
        let rows = values.iter().map(Vec::len).max()?;
        if values.len() > 1 && rows > 1 {
            return None;
        }
        let arrays: Vec<ArrayRef> = values
            .iter()
            .zip(types)
            .map(|(vs, t)| {
                let a = ScalarValue::iter_to_array(vs.iter().cloned()).ok()?;
                datafusion::arrow::compute::cast(&a, t).ok()
            })
            .collect::<Option<_>>()?;
        let mut buckets = self.of_rows(&arrays).ok()?;
        buckets.sort_unstable();
        buckets.dedup();
        Some(buckets)
    }
}

/// A bucket's file name, as Trino names them: `<stem>_bucket-<5 digits>.<extension>`.
pub fn file_name(stem: &str, bucket: u32, extension: &str) -> String {
    format!("{stem}_bucket-{bucket:05}.{extension}")
}

/// The bucket a file's name encodes: Trino's `…_bucket-00003…` or Hive's `000003_0…`.
pub fn of_file(path: &str) -> Option<u32> {
    let name = path.rsplit('/').next()?;
    if let Some(i) = name.rfind("_bucket-") {
        let digits: String = name[i + 8..].chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
    let (digits, rest) = name.split_once('_')?;
    (digits.len() >= 5
        && digits.chars().all(|c| c.is_ascii_digit())
        && rest.starts_with(|c: char| c.is_ascii_digit()))
    .then(|| digits.parse().ok())
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::common::Column;
    use std::sync::Arc;

    #[test]
    fn buckets_are_hives() {
        // Hive: an int hashes to itself, a bigint to its halves xor-ed, a string to
        // 31·h + byte over its UTF-8 bytes from 0 (a varchar from 1).
        let b = |columns: Vec<(&str, bool)>, count| Bucketing {
            columns: columns.into_iter().map(|(c, v)| (c.to_owned(), v)).collect(),
            count,
        };
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![0, 1, 7, -1]));
        assert_eq!(
            b(vec![("i", false)], 4).of_rows(&[ints]).unwrap(),
            vec![0, 1, 3, 3]
        );
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![1i64 << 32, 5]));
        assert_eq!(b(vec![("l", false)], 10).of_rows(&[longs]).unwrap(), vec![1, 5]);
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), None]));
        // "ab": 31·97 + 98 = 3105; as varchar 31·(31 + 97) + 98 = 4066.
        assert_eq!(
            b(vec![("s", false)], 1000)
                .of_rows(std::slice::from_ref(&s))
                .unwrap(),
            vec![105, 0]
        );
        assert_eq!(
            b(vec![("s", true)], 1000)
                .of_rows(std::slice::from_ref(&s))
                .unwrap(),
            vec![66, 0]
        );
        // Two columns: 31·hash(first) + hash(second).
        let one: ArrayRef = Arc::new(Int32Array::from(vec![2, 2]));
        assert_eq!(
            b(vec![("i", false), ("s", false)], 100000)
                .of_rows(&[one, s])
                .unwrap(),
            vec![31 * 2 + 3105, 62]
        );
    }

    #[test]
    fn file_names_carry_their_bucket() {
        assert_eq!(file_name("q1", 3, "parquet"), "q1_bucket-00003.parquet");
        assert_eq!(of_file("s3://b/t/x=1/q1_bucket-00003.parquet"), Some(3));
        assert_eq!(of_file("t/000012_0"), Some(12));
        assert_eq!(of_file("t/part-0.parquet"), None);
    }

    #[test]
    fn equality_and_in_filters_name_the_buckets() {
        let b = Bucketing {
            columns: vec![("id".into(), false)],
            count: 4,
        };
        let col = || Expr::Column(Column::from_name("id"));
        let eq = Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col()),
            Operator::Eq,
            Box::new(Expr::Literal(ScalarValue::Int64(Some(7)), None)),
        ));
        assert_eq!(b.wanted(&[eq], &[DataType::Int32]), Some(vec![3]));
        let inl = col().in_list(
            vec![
                Expr::Literal(ScalarValue::Int64(Some(1)), None),
                Expr::Literal(ScalarValue::Int64(Some(5)), None),
            ],
            false,
        );
        assert_eq!(b.wanted(&[inl], &[DataType::Int32]), Some(vec![1]));
        let gt = col().gt(Expr::Literal(ScalarValue::Int64(Some(1)), None));
        assert_eq!(b.wanted(&[gt], &[DataType::Int32]), None);
    }
}
