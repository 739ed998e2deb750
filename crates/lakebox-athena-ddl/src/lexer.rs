//! Tokens of Hive DDL as Athena accepts it: words, `backquoted` identifiers, string literals in
//! single or double quotes with Hive's backslash escapes, numbers and punctuation.

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// An unquoted word: a keyword or an identifier.
    Word(String),
    /// A `backquoted` identifier.
    Quoted(String),
    /// A string literal, escapes resolved.
    Str(String),
    Number(String),
    Symbol(char),
}

/// A token and the byte offset where it starts, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub offset: usize,
}

/// Where in the statement something went wrong, as Athena reports it: `line 1:8: …`.
/// A DDL syntax error as Athena reports it, in Hive's words: `FAILED: ParseException line L:C
/// <what>`.
pub fn parse_exception(sql: &str, offset: usize, what: &str) -> String {
    format!("FAILED: ParseException {} {what}", position(sql, offset))
}

pub fn position(sql: &str, offset: usize) -> String {
    let before = &sql[..offset.min(sql.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}:{column}")
}

pub fn tokenize(sql: &str) -> Result<Vec<Spanned>, String> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = chars.get(i + 1).map(|&(_, c)| c);
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i].1 != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i].1 == '*' && chars.get(i + 1).map(|p| p.1) == Some('/')) {
                i += 1;
            }
            i += 2;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().map(|p| p.1).collect();
            out.push(Spanned {
                token: Token::Word(word),
                offset,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().map(|p| p.1).collect();
            // Hive allows identifiers that start with a digit (`2020_sales`).
            let token = if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
                Token::Number(text)
            } else {
                Token::Word(text)
            };
            out.push(Spanned { token, offset });
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(parse_exception(sql, offset, "unterminated quoted identifier"));
                    }
                    Some((_, '`')) if chars.get(i + 1).map(|p| p.1) == Some('`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some((_, '`')) => {
                        i += 1;
                        break;
                    }
                    Some(&(_, ch)) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Spanned {
                token: Token::Quoted(s),
                offset,
            });
        } else if c == '\'' || c == '"' {
            let (s, end) =
                string(&chars, i, c).ok_or_else(|| parse_exception(sql, offset, "unterminated string"))?;
            i = end;
            out.push(Spanned {
                token: Token::Str(s),
                offset,
            });
        } else if "(),;<>:=.*[]".contains(c) {
            out.push(Spanned {
                token: Token::Symbol(c),
                offset,
            });
            i += 1;
        } else {
            return Err(parse_exception(
                sql,
                offset,
                &format!("unexpected character '{c}'"),
            ));
        }
    }
    Ok(out)
}

/// A string literal starting at `chars[start]` (the quote): its value and the index after it.
/// Escapes as Hive's `unescapeSQLString`: `\n \t \r \b \0 \Z`, three octal digits (`\001`),
/// `\uXXXX`, and a backslash before any other character keeps that character.
fn string(chars: &[(usize, char)], start: usize, quote: char) -> Option<(String, usize)> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let (_, c) = *chars.get(i)?;
        if c == quote {
            // A doubled quote is one quote character.
            if chars.get(i + 1).map(|p| p.1) == Some(quote) {
                s.push(quote);
                i += 2;
                continue;
            }
            return Some((s, i + 1));
        }
        if c != '\\' {
            s.push(c);
            i += 1;
            continue;
        }
        let (_, e) = *chars.get(i + 1)?;
        let octal: String = chars[i + 1..].iter().take(3).map(|p| p.1).collect();
        if octal.len() == 3 && octal.chars().all(|d| ('0'..='7').contains(&d)) {
            s.push(char::from_u32(u32::from_str_radix(&octal, 8).ok()?)?);
            i += 4;
            continue;
        }
        if e == 'u' {
            let hex: String = chars[i + 2..].iter().take(4).map(|p| p.1).collect();
            if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                s.push(ch);
                i += 6;
                continue;
            }
        }
        s.push(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            '0' => '\0',
            'Z' => '\u{1a}',
            other => other,
        });
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<Token> {
        tokenize(sql).unwrap().into_iter().map(|s| s.token).collect()
    }

    #[test]
    fn strings_resolve_hive_escapes() {
        assert_eq!(
            tokens(r"'\001' '\t' 'it''s' '\'' '\\' '\u0041' '\,'"),
            vec![
                Token::Str("\u{1}".into()),
                Token::Str("\t".into()),
                Token::Str("it's".into()),
                Token::Str("'".into()),
                Token::Str("\\".into()),
                Token::Str("A".into()),
                Token::Str(",".into()),
            ]
        );
    }

    #[test]
    fn words_numbers_comments_and_symbols() {
        assert_eq!(
            tokens("CREATE -- note\n /* block */ `my tbl` (a array<int>) 2020_x 10.5"),
            vec![
                Token::Word("CREATE".into()),
                Token::Quoted("my tbl".into()),
                Token::Symbol('('),
                Token::Word("a".into()),
                Token::Word("array".into()),
                Token::Symbol('<'),
                Token::Word("int".into()),
                Token::Symbol('>'),
                Token::Symbol(')'),
                Token::Word("2020_x".into()),
                Token::Number("10.5".into()),
            ]
        );
        assert_eq!(position("a\nbc d", 5), "line 2:4");
        assert!(tokenize("'open").is_err());
    }
}
