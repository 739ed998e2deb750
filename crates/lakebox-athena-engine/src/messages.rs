//! Why a query failed, in Athena's words: its error code prefix (`TABLE_NOT_FOUND:`,
//! `COLUMN_NOT_FOUND:`, …), Trino's phrasing, and the place in the statement (`line L:C:`),
//! never the engine's internals (`Error during planning`, `Did you mean …?`, `ParserError(…)`).

use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;

/// Athena's ErrorCategory, ErrorType and message for an engine error. Messages that name a
/// table, column or function get their place in the statement from [`locate`].
pub fn athena(e: &DataFusionError) -> (u32, u32, String) {
    let root = e.find_root();
    match root {
        DataFusionError::SQL(..) => {
            let message = crate::syntax::message("", root).unwrap_or_else(|| own_words(root));
            (2, 1306, format!("SYNTAX_ERROR: {message}"))
        }
        DataFusionError::SchemaError(inner, _) => match inner.as_ref() {
            SchemaError::FieldNotFound { field, .. } => (
                2,
                1306,
                format!(
                    "COLUMN_NOT_FOUND: Column '{}' cannot be resolved or requester is not authorized to access requested resources",
                    field.name()
                ),
            ),
            _ => (2, 1306, format!("SYNTAX_ERROR: {}", own_words(root))),
        },
        DataFusionError::Plan(text) => {
            if let Some(table) = quoted_after(text, "table '").filter(|_| text.contains("not found")) {
                (
                    2,
                    1301,
                    format!("TABLE_NOT_FOUND: Table '{table}' does not exist"),
                )
            } else if let Some(function) = quoted_after(text, "Invalid function '") {
                (
                    2,
                    1306,
                    format!("FUNCTION_NOT_FOUND: Function '{function}' not registered"),
                )
            } else {
                (2, 1306, format!("SYNTAX_ERROR: {}", own_words(root)))
            }
        }
        DataFusionError::NotImplemented(_) => (2, 1006, format!("NOT_SUPPORTED: {}", own_words(root))),
        // Athena's error catalog: types 0-8 are "Query exhausted resources at this scale factor".
        DataFusionError::ResourcesExhausted(_) => (
            1,
            0,
            format!(
                "Query exhausted resources at this scale factor: {}",
                own_words(root)
            ),
        ),
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => {
            let text = own_words(root);
            if has_code(&text) {
                // Lakebox's Trino functions already speak Athena (`INVALID_FUNCTION_ARGUMENT: …`).
                return (2, 1003, text);
            }
            match cast_failure(&text) {
                Some(m) => (2, 1003, format!("INVALID_CAST_ARGUMENT: {m}")),
                None => (2, 1003, format!("INVALID_INPUT: {text}")),
            }
        }
        _ => (1, 1000, format!("GENERIC_INTERNAL_ERROR: {}", own_words(root))),
    }
}

/// The error's own text, without the engine's wrapper words and its suggestions.
fn own_words(e: &DataFusionError) -> String {
    let text = match e {
        DataFusionError::Plan(t)
        | DataFusionError::Execution(t)
        | DataFusionError::NotImplemented(t)
        | DataFusionError::ResourcesExhausted(t) => t.clone(),
        DataFusionError::ArrowError(inner, _) => inner.to_string(),
        other => other.to_string(),
    };
    let text = text.split("\nDid you mean").next().unwrap_or(&text);
    let mut text = text.trim().to_owned();
    for wrapper in [
        "Error during planning: ",
        "Execution error: ",
        "Schema error: ",
        "Arrow error: ",
        "Cast error: ",
        "Invalid argument error: ",
        "Compute error: ",
        "This feature is not implemented: ",
    ] {
        while let Some(rest) = text.strip_prefix(wrapper) {
            text = rest.to_owned();
        }
    }
    text.replace('\n', " ")
}

/// Whether `text` starts with an Athena error code (`INVALID_FUNCTION_ARGUMENT: …`).
fn has_code(text: &str) -> bool {
    text.split_once(": ")
        .is_some_and(|(code, _)| code.len() > 3 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
}

/// The text between `prefix` and the next `'`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let start = text.find(prefix)? + prefix.len();
    let len = text[start..].find('\'')?;
    Some(&text[start..start + len])
}

/// Arrow's `Cannot cast string 'a' to value of Int32 type` as Trino says it:
/// `Cannot cast 'a' to INT`.
fn cast_failure(text: &str) -> Option<String> {
    let value = quoted_after(text, "Cannot cast string '")?;
    let arrow_type = text.split("to value of ").nth(1)?.split(' ').next()?;
    let athena_type = match arrow_type {
        "Int8" => "TINYINT",
        "Int16" => "SMALLINT",
        "Int32" => "INT",
        "Int64" => "BIGINT",
        "Float32" => "REAL",
        "Float64" => "DOUBLE",
        "Date32" | "Date64" => "DATE",
        "Boolean" => "BOOLEAN",
        t if t.starts_with("Decimal") => "DECIMAL",
        t if t.starts_with("Timestamp") => "TIMESTAMP",
        other => other,
    };
    Some(format!("Cannot cast '{value}' to {athena_type}"))
}

/// Puts `line L:C: ` after the code of a message that names a table, column or function, at
/// the first place `sql` mentions it (`line 1:1: ` if it cannot be found), as Athena does.
pub fn locate(message: &str, sql: &str) -> String {
    let Some((code, rest)) = message.split_once(": ") else {
        return message.to_owned();
    };
    let (name, call) = match code {
        "TABLE_NOT_FOUND" => (
            quoted_after(rest, "Table '").map(|t| t.rsplit('.').next().unwrap_or(t)),
            false,
        ),
        "COLUMN_NOT_FOUND" => (
            quoted_after(rest, "Column '").map(|c| c.rsplit('.').next().unwrap_or(c)),
            false,
        ),
        "FUNCTION_NOT_FOUND" => (quoted_after(rest, "Function '"), true),
        _ => return message.to_owned(),
    };
    if rest.starts_with("line ") {
        return message.to_owned();
    }
    let (line, column) = name.and_then(|n| find_word(sql, n, call)).unwrap_or((1, 1));
    format!("{code}: line {line}:{column}: {rest}")
}

/// Line and column (1-based, in characters) of the first whole-word, case-insensitive mention
/// of `word` in `sql` (quoted or not); with `call`, only one followed by `(`.
fn find_word(sql: &str, word: &str, call: bool) -> Option<(usize, usize)> {
    let lower = sql.to_lowercase();
    let target = word.to_lowercase();
    if target.is_empty() || lower.len() != sql.len() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = lower[from..].find(&target) {
        let at = from + i;
        let end = at + target.len();
        let before_ok = lower[..at].chars().next_back().is_none_or(|c| !is_word(c));
        let after = lower[end..].trim_start_matches(['"', '`']).trim_start();
        let after_ok = lower[end..].chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok && (!call || after.starts_with('(')) {
            // A quoted name's place is its opening quote.
            let start = match lower[..at].chars().next_back() {
                Some('"' | '`') => at - 1,
                _ => at,
            };
            let line = sql[..start].matches('\n').count() + 1;
            let column = sql[..start].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Some((line, column));
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_read_as_athena_writes_them() {
        let plan = |t: &str| DataFusionError::Plan(t.into());
        let (_, t, m) = athena(&plan("table 'awsdatacatalog.db.t' not found"));
        assert_eq!(
            (t, m.as_str()),
            (
                1301,
                "TABLE_NOT_FOUND: Table 'awsdatacatalog.db.t' does not exist"
            )
        );
        assert_eq!(
            locate(&m, "SELECT *\nFROM  db.t"),
            "TABLE_NOT_FOUND: line 2:10: Table 'awsdatacatalog.db.t' does not exist"
        );
        let (_, _, m) = athena(&plan("Invalid function 'nosuchfn'.\nDid you mean 'to_utf8'?"));
        assert_eq!(m, "FUNCTION_NOT_FOUND: Function 'nosuchfn' not registered");
        assert_eq!(
            locate(&m, "SELECT nosuchfn(1)"),
            "FUNCTION_NOT_FOUND: line 1:8: Function 'nosuchfn' not registered"
        );
        let cast = DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::CastError(
                "Cannot cast string 'a' to value of Int32 type".into(),
            )),
            None,
        );
        let (_, _, m) = athena(&DataFusionError::Context(
            "Optimizer rule 'simplify_expressions' failed".into(),
            Box::new(cast),
        ));
        assert_eq!(m, "INVALID_CAST_ARGUMENT: Cannot cast 'a' to INT");
        assert_eq!(locate("SYNTAX_ERROR: x", "SELECT 1"), "SYNTAX_ERROR: x");
    }

    #[test]
    fn words_are_found_whole_and_quoted() {
        assert_eq!(find_word("SELECT tt, t FROM t", "t", false), Some((1, 12)));
        assert_eq!(find_word("SELECT a FROM \"T\"", "t", false), Some((1, 15)));
        assert_eq!(find_word("SELECT f, f(1)", "f", true), Some((1, 11)));
        assert_eq!(find_word("SELECT 1", "t", false), None);
    }
}
