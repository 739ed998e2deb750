//! Syntax errors in Athena's words. Athena refuses a query that does not parse at
//! StartQueryExecution (InvalidRequestException, AthenaErrorCode MALFORMED_QUERY) with Trino's
//! parser message, `line L:C: mismatched input 'X'. Expecting: …`; the engine's parser
//! (sqlparser) says `Expected: …, found: X at Line: L, Column: C`. This turns one into the other.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// What Trino expects where a statement should begin.
const STATEMENT_START: &str = "'ALTER', 'ANALYZE', 'CALL', 'COMMENT', 'COMMIT', 'CREATE', 'DEALLOCATE', 'DELETE', 'DENY', 'DESC', 'DESCRIBE', 'DROP', 'EXECUTE', 'EXPLAIN', 'GRANT', 'INSERT', 'MERGE', 'PREPARE', 'REFRESH', 'RESET', 'REVOKE', 'ROLLBACK', 'SET', 'SHOW', 'START', 'TRUNCATE', 'UPDATE', 'USE', <query>";

/// The Trino-worded message for a statement the parser refused, or `None` when `e` is not a
/// syntax error.
pub fn message(sql: &str, e: &DataFusionError) -> Option<String> {
    let DataFusionError::SQL(parser_error, _) = e.find_root() else {
        return None;
    };
    Some(match parser_error.as_ref() {
        ParserError::ParserError(text) | ParserError::TokenizerError(text) => trino(sql, text),
        ParserError::RecursionLimitExceeded => crate::depth::TOO_LARGE.to_owned(),
    })
}

fn trino(sql: &str, text: &str) -> String {
    if text.starts_with("line ") {
        return text.to_owned(); // already in Trino's words (the depth check's)
    }
    // `… at Line: L, Column: C` ends messages that know where they are.
    let (body, at) = match text.rsplit_once(" at Line: ") {
        Some((body, place)) => {
            let (line, column) = place.split_once(", Column: ").unwrap_or((place, "1"));
            (body, Some((line.trim().to_owned(), column.trim().to_owned())))
        }
        None => (text, None),
    };
    let Some((expected, found)) = body
        .strip_prefix("Expected: ")
        .and_then(|rest| rest.rsplit_once(", found: "))
    else {
        let (line, column) = at.unwrap_or(("1".into(), "1".into()));
        return format!("line {line}:{column}: {body}");
    };
    let (input, (line, column)) = if found == "EOF" {
        ("<EOF>".to_owned(), end_of(sql))
    } else {
        (found.to_owned(), at.unwrap_or(("1".into(), "1".into())))
    };
    format!(
        "line {line}:{column}: mismatched input '{input}'. Expecting: {}",
        expecting(expected)
    )
}

/// Trino's names for what the parser wanted.
fn expecting(expected: &str) -> String {
    match expected {
        "an SQL statement" => STATEMENT_START.to_owned(),
        "an expression" | "expression" => "<expression>".to_owned(),
        "identifier" | "an identifier" => "<identifier>".to_owned(),
        "literal string" | "a literal string" => "<string>".to_owned(),
        "literal int" | "a literal int" => "<integer>".to_owned(),
        "end of statement" => "<EOF>".to_owned(),
        other if other.chars().count() <= 2 || other.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
            format!("'{other}'")
        }
        other => other.to_owned(),
    }
}

/// The line and column just past the end of `sql`, where Trino reports `<EOF>`.
fn end_of(sql: &str) -> (String, String) {
    let trimmed = sql.trim_end();
    let line = trimmed.matches('\n').count() + 1;
    let column = trimmed.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line.to_string(), column.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_error(text: &str) -> DataFusionError {
        DataFusionError::SQL(Box::new(ParserError::ParserError(text.into())), None)
    }

    #[test]
    fn parser_messages_read_as_trino_writes_them() {
        let m = message(
            "SELEC 1",
            &sql_error("Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"),
        )
        .unwrap();
        assert!(
            m.starts_with("line 1:1: mismatched input 'SELEC'. Expecting: 'ALTER', "),
            "{m}"
        );
        assert!(m.ends_with("'USE', <query>"), "{m}");
        let m = message("SELECT 1 +", &sql_error("Expected: an expression, found: EOF")).unwrap();
        assert_eq!(m, "line 1:11: mismatched input '<EOF>'. Expecting: <expression>");
        let m = message("SELECT (1", &sql_error("Expected: ), found: EOF")).unwrap();
        assert_eq!(m, "line 1:10: mismatched input '<EOF>'. Expecting: ')'");
        assert_eq!(message("x", &DataFusionError::Plan("no".into())), None);
    }
}
