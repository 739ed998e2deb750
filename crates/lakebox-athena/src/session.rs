//! Athena's prepared-statement SQL: `PREPARE name FROM statement`, `EXECUTE name [USING v, …]`
//! and `DEALLOCATE PREPARE name`, kept in the same per-workgroup store as the
//! CreatePreparedStatement API.

#[derive(Debug, Clone, PartialEq)]
pub enum Session {
    Prepare {
        name: String,
        statement: String,
    },
    /// The USING values as SQL literal text, bound to the statement's `?` in order.
    Execute {
        name: String,
        values: Vec<String>,
    },
    Deallocate {
        name: String,
    },
}

fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(|c: char| c.is_whitespace()).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Splits `a, 'b,c', f(1, 2)` at the commas outside quotes and parentheses.
fn split_values(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// The statement, if it is one of the three; `Err` for one that starts like them but is
/// malformed.
pub fn parse(sql: &str) -> Option<Result<Session, String>> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let (first, rest) = word(sql);
    match first.to_ascii_uppercase().as_str() {
        "PREPARE" => {
            let (name, rest) = word(rest);
            let (from, statement) = word(rest);
            if name.is_empty() || !from.eq_ignore_ascii_case("FROM") || statement.trim().is_empty() {
                return Some(Err("line 1:1: PREPARE needs a name and FROM <statement>".into()));
            }
            Some(Ok(Session::Prepare {
                name: name.to_owned(),
                statement: statement.trim().to_owned(),
            }))
        }
        "EXECUTE" => {
            let (name, rest) = word(rest);
            if name.is_empty() {
                return Some(Err(
                    "line 1:8: EXECUTE needs the name of a prepared statement".into()
                ));
            }
            let (using, values) = word(rest);
            let values = if using.is_empty() {
                Vec::new()
            } else if using.eq_ignore_ascii_case("USING") {
                split_values(values)
            } else {
                return Some(Err(format!(
                    "line 1:1: mismatched input '{using}'. Expecting: 'USING', <EOF>"
                )));
            };
            Some(Ok(Session::Execute {
                name: name.to_owned(),
                values,
            }))
        }
        "DEALLOCATE" => {
            let (prepare, rest) = word(rest);
            let (name, _) = word(rest);
            if !prepare.eq_ignore_ascii_case("PREPARE") || name.is_empty() {
                return Some(Err("line 1:1: DEALLOCATE PREPARE needs a statement name".into()));
            }
            Some(Ok(Session::Deallocate {
                name: name.to_owned(),
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_execute_deallocate() {
        assert_eq!(
            parse("PREPARE by_city FROM SELECT * FROM t WHERE city = ? AND n > ?"),
            Some(Ok(Session::Prepare {
                name: "by_city".into(),
                statement: "SELECT * FROM t WHERE city = ? AND n > ?".into()
            }))
        );
        assert_eq!(
            parse("execute by_city USING 'a, b', 3, date '2024-01-01';"),
            Some(Ok(Session::Execute {
                name: "by_city".into(),
                values: vec!["'a, b'".into(), "3".into(), "date '2024-01-01'".into()]
            }))
        );
        assert_eq!(
            parse("EXECUTE s"),
            Some(Ok(Session::Execute {
                name: "s".into(),
                values: vec![]
            }))
        );
        assert_eq!(
            parse("DEALLOCATE PREPARE s"),
            Some(Ok(Session::Deallocate { name: "s".into() }))
        );
        assert!(parse("SELECT 1").is_none());
        assert!(matches!(parse("PREPARE x"), Some(Err(_))));
    }
}
