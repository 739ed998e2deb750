//! Trino syntax DataFusion's SQL parser does not take at all, respelled in the SQL's tokens
//! before parsing (found by tokenizing, so strings and comments are never touched; everything
//! else in the text stays as written):
//!
//! - Nested types in `CAST`/`TRY_CAST`: `ARRAY(…)` → `ARRAY<…>`, `ROW(…)` → `STRUCT<…>`,
//!   `MAP(K, V)` → `STRUCT<"$map_key" K, "$map_value" V>` (planned as a map, see `casts`).
//! - Rows of `VALUES` without parentheses: `VALUES 1, 2` → `VALUES (1), (2)`.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::casts::{MAP_KEY, MAP_VALUE};

/// A code token and where it starts and ends in the SQL text.
type Code<'a> = (&'a Token, usize, usize);

/// `sql` respelled as the module's comment says; unchanged when nothing needs it or it does
/// not tokenize.
pub fn respell(sql: &str) -> Cow<'_, str> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Cow::Borrowed(sql);
    };
    let offsets = LineOffsets::new(sql);
    let code: Vec<Code> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .map(|t: &TokenWithSpan| (&t.token, offsets.at(t.span.start), offsets.at(t.span.end)))
        .collect();
    let closing = matching_parens(&code);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for i in 0..code.len() {
        cast_types(&code, &closing, i, &mut edits);
        values_rows(&code, &closing, i, &mut edits);
    }
    if edits.is_empty() {
        return Cow::Borrowed(sql);
    }
    // Applied from the end, so the earlier offsets stay right; an insertion (an empty range)
    // goes after a replacement ending at the same place.
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    let mut out = sql.to_owned();
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    Cow::Owned(out)
}

fn is_keyword(t: &Token, k: Keyword) -> bool {
    matches!(t, Token::Word(w) if w.keyword == k)
}

/// The nested types in the cast that opens at `i`, if one does.
fn cast_types(code: &[Code], closing: &[Option<usize>], i: usize, edits: &mut Vec<(usize, usize, String)>) {
    let is_cast = matches!(code[i].0, Token::Word(w) if matches!(w.keyword, Keyword::CAST | Keyword::TRY_CAST)
        || w.value.eq_ignore_ascii_case("try_cast"));
    if !is_cast || !matches!(code.get(i + 1), Some((Token::LParen, ..))) {
        return;
    }
    let Some(end) = closing[i + 1] else { return };
    // The type follows the `AS` at the cast's own depth.
    let mut j = i + 2;
    let mut as_at = None;
    while j < end {
        if let Some(close) = closing[j] {
            j = close + 1;
            continue;
        }
        if is_keyword(code[j].0, Keyword::AS) {
            as_at = Some(j);
            break;
        }
        j += 1;
    }
    let Some(as_at) = as_at else { return };
    for k in as_at + 1..end {
        let Token::Word(w) = code[k].0 else { continue };
        let (Some((Token::LParen, open_start, open_end)), Some(close)) =
            (code.get(k + 1), closing.get(k + 1).copied().flatten())
        else {
            continue;
        };
        let name = w.value.to_ascii_uppercase();
        let (word, first) = match name.as_str() {
            "ARRAY" => ("ARRAY", ""),
            "ROW" => ("STRUCT", ""),
            "MAP" => ("STRUCT", MAP_KEY),
            _ => continue,
        };
        edits.push((code[k].1, code[k].2, word.to_owned()));
        let open = if first.is_empty() {
            "<".to_owned()
        } else {
            format!("<\"{first}\" ")
        };
        edits.push((*open_start, *open_end, open));
        if name == "MAP" {
            // The comma between key and value types, at the map's own depth.
            let mut c = k + 2;
            while c < close {
                if let Some(inner) = closing[c] {
                    c = inner + 1;
                    continue;
                }
                if matches!(code[c].0, Token::Comma) {
                    edits.push((code[c].1, code[c].2, format!(", \"{MAP_VALUE}\" ")));
                    break;
                }
                c += 1;
            }
        }
        edits.push((code[close].1, code[close].2, "> ".to_owned()));
    }
}

/// Parentheses around each bare row of the `VALUES` at `i`, if it is one.
fn values_rows(code: &[Code], closing: &[Option<usize>], i: usize, edits: &mut Vec<(usize, usize, String)>) {
    if !is_keyword(code[i].0, Keyword::VALUES) {
        return;
    }
    let ends_list = |t: &Token| {
        matches!(t, Token::RParen | Token::SemiColon | Token::EOF)
            || [
                Keyword::ORDER,
                Keyword::LIMIT,
                Keyword::OFFSET,
                Keyword::FETCH,
                Keyword::UNION,
                Keyword::EXCEPT,
                Keyword::INTERSECT,
            ]
            .iter()
            .any(|k| is_keyword(t, *k))
    };
    let mut j = i + 1;
    while j < code.len() && !ends_list(code[j].0) {
        // A row already in parentheses (or `ROW(…)`) is left as it is.
        let parenthesized = matches!(code[j].0, Token::LParen)
            || (matches!(code[j].0, Token::Word(w) if w.value.eq_ignore_ascii_case("row"))
                && matches!(code.get(j + 1), Some((Token::LParen, ..))));
        let start = j;
        while j < code.len() && !matches!(code[j].0, Token::Comma) && !ends_list(code[j].0) {
            j = closing[j].map_or(j + 1, |c| c + 1);
        }
        if !parenthesized && j > start {
            edits.push((code[start].1, code[start].1, "(".to_owned()));
            edits.push((code[j - 1].2, code[j - 1].2, ")".to_owned()));
        }
        if j < code.len() && matches!(code[j].0, Token::Comma) {
            j += 1;
        } else {
            break;
        }
    }
}

/// For each `(`, the index of its `)`.
fn matching_parens(code: &[Code]) -> Vec<Option<usize>> {
    let mut closing = vec![None; code.len()];
    let mut open = Vec::new();
    for (i, (t, ..)) in code.iter().enumerate() {
        match t {
            Token::LParen => open.push(i),
            Token::RParen => {
                if let Some(o) = open.pop() {
                    closing[o] = Some(i);
                }
            }
            _ => {}
        }
    }
    closing
}

/// Byte offsets of the tokenizer's (line, column) locations; columns count characters. Every
/// lookup is O(1): a statement of 200,000 tokens on one line must not cost 200,000 scans of it.
struct LineOffsets {
    /// The byte offset of every character, and one past the end.
    chars: Vec<usize>,
    /// Where each line starts, as an index into `chars`.
    lines: Vec<usize>,
}

impl LineOffsets {
    fn new(sql: &str) -> Self {
        let mut chars = Vec::with_capacity(sql.len() + 1);
        let mut lines = vec![0];
        for (i, c) in sql.char_indices() {
            chars.push(i);
            if c == '\n' {
                lines.push(chars.len());
            }
        }
        chars.push(sql.len());
        LineOffsets { chars, lines }
    }

    fn at(&self, l: Location) -> usize {
        let end = *self.chars.last().expect("holds the end");
        let Some(&line) = self.lines.get((l.line as usize).saturating_sub(1)) else {
            return end;
        };
        self.chars
            .get(line + (l.column as usize).saturating_sub(1))
            .copied()
            .unwrap_or(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trino_types_in_casts_are_respelled_and_nothing_else_is() {
        assert_eq!(
            respell(
                "SELECT CAST(x AS ARRAY(INTEGER)), 'ARRAY(x)', TRY_CAST(j AS MAP(VARCHAR, ARRAY(ROW(a BIGINT, b VARCHAR))))"
            ),
            "SELECT CAST(x AS ARRAY<INTEGER> ), 'ARRAY(x)', TRY_CAST(j AS STRUCT<\"$map_key\" VARCHAR, \"$map_value\"  ARRAY<STRUCT<a BIGINT, b VARCHAR> > > )"
        );
        assert_eq!(
            respell("SELECT cast(f(a, 'it''s') AS row(x double)) -- CAST(y AS ARRAY(INT))\nFROM t"),
            "SELECT cast(f(a, 'it''s') AS STRUCT<x double> ) -- CAST(y AS ARRAY(INT))\nFROM t"
        );
        let plain = "SELECT CAST(a AS VARCHAR), ARRAY[1], map(ARRAY['k'], ARRAY[1]) FROM t";
        assert!(matches!(respell(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn bare_values_rows_get_parentheses() {
        assert_eq!(
            respell("VALUES 1, 2 + 3, f(4, 5)"),
            "VALUES (1), (2 + 3), (f(4, 5))"
        );
        assert_eq!(
            respell("SELECT * FROM (VALUES 'a', (1), ROW(2)) AS t(x) ORDER BY x"),
            "SELECT * FROM (VALUES ('a'), (1), ROW(2)) AS t(x) ORDER BY x"
        );
        assert!(matches!(respell("VALUES (1, 2), (3, 4)"), Cow::Borrowed(_)));
    }
}
