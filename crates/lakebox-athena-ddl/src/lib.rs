//! Athena's Hive DDL for Lakebox. Athena runs two languages: Trino SQL in its engine, and Hive
//! DDL against the Glue catalog. This crate is the second: it recognizes the DDL statements
//! ([`parse`] returns `None` for anything the engine runs), and [`execute`] applies them to the
//! Glue catalog, producing the text Athena writes to `<QueryExecutionId>.txt`.
//!
//! It also knows how Athena stores views in Glue ([`view`]), which the engine reads and writes.

mod exec;
mod formats;
mod lexer;
mod parser;
pub mod view;

use lakebox_glue::{Catalog, Scope};
use lakebox_service::lake::Lake;

pub use exec::{HIVE_DEFAULT_PARTITION, escape_path, unescape_path};
pub use formats::show_create_table;
pub use parser::{
    Buckets, ColumnDef, CreateTable, Kind, Name, RowFormat, Statement, StoredAs, classify, is_create_view,
    parse, write_kind,
};

/// What a DDL statement produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DdlOutput {
    /// Athena's StatementType: `DDL` or `UTILITY`.
    pub statement_type: &'static str,
    /// The result columns of SHOW and DESCRIBE (`tab_name`, `partition`, …), all of type
    /// `string`; none when the statement returns no rows.
    pub columns: &'static [&'static str],
    /// The lines of `<QueryExecutionId>.txt`, each one result row (Athena joins a row's
    /// columns into one tab-separated, space-padded value).
    pub lines: Vec<String>,
}

/// A failed DDL statement in Athena's terms (always a user error, category 2).
#[derive(Debug, Clone, PartialEq)]
pub struct DdlError {
    /// Athena's ErrorType.
    pub error_type: u32,
    pub message: String,
}

impl DdlError {
    pub fn syntax(m: impl Into<String>) -> Self {
        DdlError {
            error_type: 1306,
            message: m.into(),
        }
    }
    fn not_found(m: impl Into<String>) -> Self {
        DdlError {
            error_type: 1301,
            message: m.into(),
        }
    }
    fn invalid(m: impl Into<String>) -> Self {
        DdlError {
            error_type: 1003,
            message: m.into(),
        }
    }
    fn not_supported(m: impl Into<String>) -> Self {
        DdlError {
            error_type: 1006,
            message: m.into(),
        }
    }
    fn internal(m: impl Into<String>) -> Self {
        DdlError {
            error_type: 1000,
            message: m.into(),
        }
    }
}

/// Runs a DDL statement; `database` is the QueryExecutionContext's (or `default`).
pub async fn execute(
    catalog: &Catalog,
    lake: &Lake,
    scope: &Scope,
    database: &str,
    statement: Statement,
) -> Result<DdlOutput, DdlError> {
    exec::Context {
        catalog,
        lake,
        scope,
        database,
    }
    .execute(statement)
    .await
}
