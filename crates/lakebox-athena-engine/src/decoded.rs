//! Tables whose files DataFusion has no reader for, decoded here one whole file at a time into
//! batches of the table's file columns: RegexSerDe text (each line matched against
//! `input.regex`) and ORC (through orc-rust). The table provider adds the partition columns
//! and serves the batches from memory.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, StringArray, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatchReader;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::error::{DataFusionError, Result};

use crate::format::TableFormat;

/// Hive turns a value that does not convert (text in a number column…) into NULL.
const LENIENT: CastOptions = CastOptions {
    safe: true,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

impl TableFormat {
    /// Whether Lakebox decodes these files itself (DataFusion has no reader for them).
    pub fn decoded(&self) -> bool {
        matches!(self, TableFormat::Regex(_) | TableFormat::Orc { .. })
    }

    /// One file's rows as batches of `schema` (the table's file columns).
    pub fn decode(
        &self,
        path: &str,
        data: Bytes,
        compression: FileCompressionType,
        schema: &SchemaRef,
    ) -> Result<Vec<RecordBatch>> {
        match self {
            TableFormat::Regex(re) => regex_lines(re, path, data, compression, schema).map(|b| vec![b]),
            TableFormat::Orc { by_name } => orc_file(path, data, *by_name, schema),
            _ => Err(DataFusionError::Internal(format!(
                "{path}: DataFusion reads {self:?} files itself"
            ))),
        }
    }
}

fn regex_lines(
    re: &fancy_regex::Regex,
    path: &str,
    data: Bytes,
    compression: FileCompressionType,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let body = String::from_utf8(crate::codecs::decompress(compression, path, data)?)
        .map_err(|e| DataFusionError::Execution(format!("HIVE_BAD_DATA: {path}: not UTF-8 text: {e}")))?;
    let mut text: Vec<Vec<Option<&str>>> = vec![Vec::new(); schema.fields().len()];
    let mut rows = 0;
    for line in body.lines() {
        rows += 1;
        let caps = re.captures(line).ok().flatten();
        for (i, col) in text.iter_mut().enumerate() {
            col.push(caps.as_ref().and_then(|c| c.get(i + 1)).map(|m| m.as_str()));
        }
    }
    let columns = text
        .into_iter()
        .zip(schema.fields())
        .map(|(values, field)| {
            let strings: ArrayRef = Arc::new(StringArray::from(values));
            Ok(cast_with_options(&strings, field.data_type(), &LENIENT)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

/// An ORC file's stripes as batches of the table's columns: each table column from the file
/// column at its position (or of its name, ignoring case), converted to the column's type
/// (NULL where a value does not convert); a column the file lacks is NULL.
fn orc_file(path: &str, data: Bytes, by_name: bool, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let bad = |e: orc_rust::error::OrcError| {
        DataFusionError::Execution(format!(
            "HIVE_CANNOT_OPEN_SPLIT: {path}: not a readable ORC file: {e}"
        ))
    };
    let reader = orc_rust::arrow_reader::ArrowReaderBuilder::try_new(data)
        .map_err(bad)?
        .build();
    let file_schema = reader.schema();
    let sources: Vec<Option<usize>> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if by_name {
                file_schema
                    .fields()
                    .iter()
                    .position(|p| p.name().eq_ignore_ascii_case(f.name()))
            } else {
                (i < file_schema.fields().len()).then_some(i)
            }
        })
        .collect();
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
        let columns = sources
            .iter()
            .zip(schema.fields())
            .map(|(source, field)| match source {
                Some(j) => crate::columns::cast_respelled(batch.column(*j), field.data_type(), &LENIENT),
                None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        batches.push(RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &options,
        )?);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int32Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn orc_bytes(batch: &RecordBatch) -> Bytes {
        let mut out = Vec::new();
        let mut w = orc_rust::arrow_writer::ArrowWriterBuilder::new(&mut out, batch.schema())
            .try_build()
            .unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn orc_columns_by_position_or_by_name() {
        let file = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("_col0", DataType::Int32, true),
                Field::new("Name", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["a", "7"])),
            ],
        )
        .unwrap();
        let table = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Int64, true),
            Field::new("extra", DataType::Utf8, true),
        ]));
        let by_position = orc_file("f.orc", orc_bytes(&file), false, &table).unwrap();
        let b = &by_position[0];
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ids.values(), &[1, 2]);
        // "a" is not a bigint: NULL, as Hive reads it.
        let names = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(names.is_null(0));
        assert_eq!(names.value(1), 7);
        assert_eq!(b.column(2).null_count(), 2);
        let by_name = orc_file("f.orc", orc_bytes(&file), true, &table).unwrap();
        assert_eq!(by_name[0].column(0).null_count(), 2, "no column is called id");
        assert_eq!(by_name[0].column(1).null_count(), 1);
        assert!(orc_file("x.orc", Bytes::from_static(b"not orc"), false, &table).is_err());
    }
}
