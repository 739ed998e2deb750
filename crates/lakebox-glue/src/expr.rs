//! Glue's partition predicate language (`GetPartitions` `Expression`): comparisons
//! (`=`, `<>`, `!=`, `<`, `>`, `<=`, `>=`), `BETWEEN … AND …`, `[NOT] IN (…)`, `[NOT] LIKE`,
//! combined with `AND`, `OR`, `NOT` and parentheses. Keys of integral types compare as
//! numbers, every other key as a string, as Glue compares them.

use std::cmp::Ordering;

use lakebox_core::ServiceError;

use crate::errors::invalid_input;
use crate::model::Column;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Token>, ServiceError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1
            }
            ')' => {
                out.push(Token::RParen);
                i += 1
            }
            ',' => {
                out.push(Token::Comma);
                i += 1
            }
            '\'' | '"' => {
                let quote = c;
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(s, "unterminated string literal")),
                        Some(&ch) if ch == quote => {
                            // A doubled quote is a literal quote.
                            if chars.get(i + 1) == Some(&quote) {
                                v.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            v.push(ch);
                            i += 1
                        }
                    }
                }
                out.push(Token::Str(v));
            }
            '`' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&ch| ch == '`')
                    .ok_or_else(|| syntax(s, "unterminated quoted identifier"))?;
                out.push(Token::Ident(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '=' => {
                out.push(Token::Op("="));
                i += 1
            }
            '<' | '>' | '!' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', Some('>')) => ("<>", 2),
                    ('!', Some('=')) => ("<>", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => return Err(syntax(s, "unexpected '!'")),
                };
                i += len;
                out.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(syntax(s, &format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

fn syntax(expr: &str, why: &str) -> ServiceError {
    invalid_input(format!("Unsupported expression '{expr}': {why}"))
}

/// How deeply parentheses and `NOT`s may nest. Parsing and evaluating recurse once per level,
/// so without a bound a short hostile expression would overflow the stack and abort the server.
pub const MAX_NESTING: usize = 100;

#[derive(Debug, Clone)]
enum Node {
    /// Chains of `AND` / `OR` are flat lists, so 50,000 terms cost no stack depth.
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp(usize, &'static str, String),
    Between(usize, String, String),
    In(usize, Vec<String>),
    Like(usize, regex::Regex),
}

/// A parsed `Expression`, bound to a table's partition keys.
#[derive(Debug, Clone)]
pub struct PartitionFilter {
    root: Node,
    numeric: Vec<bool>,
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    keys: &'a [Column],
    text: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn err(&self, why: &str) -> ServiceError {
        syntax(self.text, why)
    }

    fn or(&mut self) -> Result<Node, ServiceError> {
        let mut terms = vec![self.and()?];
        while self.keyword("OR") {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Node, ServiceError> {
        let mut terms = vec![self.not()?];
        while self.keyword("AND") {
            self.pos += 1;
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Node::And(terms)
        })
    }

    /// Enters one level of nesting, refusing input past [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), ServiceError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(invalid_input(format!(
                "Expression is nested more than {MAX_NESTING} levels deep (parentheses and NOTs)."
            )));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Node, ServiceError> {
        if self.keyword("NOT") {
            self.pos += 1;
            self.nest()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn literal(&mut self) -> Result<String, ServiceError> {
        match self.next() {
            Some(Token::Str(s)) | Some(Token::Num(s)) => Ok(s),
            _ => Err(self.err("expected a literal value")),
        }
    }

    fn primary(&mut self) -> Result<Node, ServiceError> {
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            self.nest()?;
            let inner = self.or()?;
            self.depth -= 1;
            if self.next() != Some(Token::RParen) {
                return Err(self.err("expected ')'"));
            }
            return Ok(inner);
        }
        let Some(Token::Ident(name)) = self.next() else {
            return Err(self.err("expected a partition key"));
        };
        let key = self
            .keys
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&name))
            .ok_or_else(|| {
                invalid_input(format!("Unknown column '{name}' in expression '{}'.", self.text))
            })?;
        let negated = if self.keyword("NOT") {
            self.pos += 1;
            true
        } else {
            false
        };
        let node = if self.keyword("BETWEEN") {
            self.pos += 1;
            let lo = self.literal()?;
            if !self.keyword("AND") {
                return Err(self.err("expected AND in BETWEEN"));
            }
            self.pos += 1;
            let hi = self.literal()?;
            Node::Between(key, lo, hi)
        } else if self.keyword("IN") {
            self.pos += 1;
            if self.next() != Some(Token::LParen) {
                return Err(self.err("expected '(' after IN"));
            }
            let mut values = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.literal()?),
                    Some(Token::RParen) => break,
                    _ => return Err(self.err("expected ',' or ')' in IN list")),
                }
            }
            Node::In(key, values)
        } else if self.keyword("LIKE") {
            self.pos += 1;
            let pattern = self.literal()?;
            let re = like_regex(&pattern).ok_or_else(|| {
                invalid_input(format!(
                    "The LIKE pattern of {} characters is too large to evaluate.",
                    pattern.chars().count()
                ))
            })?;
            Node::Like(key, re)
        } else if negated {
            return Err(self.err("expected BETWEEN, IN or LIKE after NOT"));
        } else {
            let Some(Token::Op(op)) = self.next() else {
                return Err(self.err("expected a comparison operator"));
            };
            Node::Cmp(key, op, self.literal()?)
        };
        Ok(if negated { Node::Not(Box::new(node)) } else { node })
    }
}

/// SQL `LIKE` (`%` any run, `_` one character) as an anchored regular expression; `None` when
/// the pattern is too large for the regex engine's size limit.
pub fn like_regex(pattern: &str) -> Option<regex::Regex> {
    let mut re = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

fn is_integral(type_name: &str) -> bool {
    matches!(
        type_name.to_ascii_lowercase().as_str(),
        "int" | "integer" | "bigint" | "smallint" | "tinyint" | "long"
    )
}

impl PartitionFilter {
    pub fn parse(expression: &str, keys: &[Column]) -> Result<Self, ServiceError> {
        let tokens = tokenize(expression)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            keys,
            text: expression,
            depth: 0,
        };
        let root = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(p.err("unexpected trailing input"));
        }
        Ok(PartitionFilter {
            root,
            numeric: keys.iter().map(|c| is_integral(c.type_name())).collect(),
        })
    }

    fn compare(&self, key: usize, value: &str, literal: &str) -> Option<Ordering> {
        if self.numeric[key] {
            let a: i128 = value.trim().parse().ok()?;
            let b: i128 = literal.trim().parse().ok()?;
            Some(a.cmp(&b))
        } else {
            Some(value.cmp(literal))
        }
    }

    fn eval(&self, node: &Node, values: &[String]) -> bool {
        let v = |k: usize| values.get(k).map(String::as_str).unwrap_or("");
        match node {
            Node::And(terms) => terms.iter().all(|t| self.eval(t, values)),
            Node::Or(terms) => terms.iter().any(|t| self.eval(t, values)),
            Node::Not(a) => !self.eval(a, values),
            Node::Cmp(k, op, lit) => match self.compare(*k, v(*k), lit) {
                None => false,
                Some(o) => match *op {
                    "=" => o == Ordering::Equal,
                    "<>" => o != Ordering::Equal,
                    "<" => o == Ordering::Less,
                    ">" => o == Ordering::Greater,
                    "<=" => o != Ordering::Greater,
                    ">=" => o != Ordering::Less,
                    _ => false,
                },
            },
            Node::Between(k, lo, hi) => {
                self.compare(*k, v(*k), lo).is_some_and(|o| o != Ordering::Less)
                    && self
                        .compare(*k, v(*k), hi)
                        .is_some_and(|o| o != Ordering::Greater)
            }
            Node::In(k, list) => list
                .iter()
                .any(|lit| self.compare(*k, v(*k), lit) == Some(Ordering::Equal)),
            Node::Like(k, re) => re.is_match(v(*k)),
        }
    }

    pub fn matches(&self, values: &[String]) -> bool {
        self.eval(&self.root, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<Column> {
        vec![Column::new("year", "int"), Column::new("region", "string")]
    }

    fn m(expr: &str, year: &str, region: &str) -> bool {
        PartitionFilter::parse(expr, &keys())
            .unwrap()
            .matches(&[year.to_owned(), region.to_owned()])
    }

    #[test]
    fn comparisons_are_numeric_for_integral_keys() {
        assert!(m("year > 9", "10", "eu"));
        assert!(!m("year < 9", "10", "eu"));
        assert!(m("region > 'a'", "1", "eu"));
        assert!(m("year = 2024 AND region = 'eu'", "2024", "eu"));
        assert!(m("year <> 2023", "2024", "eu"));
        assert!(m("year != 2023", "2024", "eu"));
    }

    #[test]
    fn between_in_like_not_and_parentheses() {
        assert!(m("year BETWEEN 2020 AND 2024", "2024", "x"));
        assert!(!m("year BETWEEN 2020 AND 2023", "2024", "x"));
        assert!(m("region IN ('eu', 'us')", "1", "us"));
        assert!(m("region NOT IN ('eu', 'us')", "1", "ap"));
        assert!(m("region LIKE 'e%'", "1", "eu"));
        assert!(m("region LIKE '_u'", "1", "eu"));
        assert!(!m("NOT region LIKE 'e%'", "1", "eu"));
        assert!(m("(year = 1 OR year = 2) AND NOT (region = 'x')", "2", "y"));
        assert!(m("`year` >= 2 and region <= 'z'", "2", "y"));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = PartitionFilter::parse("month = 1", &keys()).unwrap_err();
        assert_eq!(e.code, "InvalidInputException");
        assert!(e.message.contains("month"));
        assert!(PartitionFilter::parse("year = ", &keys()).is_err());
        assert!(PartitionFilter::parse("year = 1 AND", &keys()).is_err());
        assert!(PartitionFilter::parse("(year = 1", &keys()).is_err());
        assert!(PartitionFilter::parse("region = 'x", &keys()).is_err());
    }

    #[test]
    fn hostile_expressions_are_refused_or_evaluated_without_deep_recursion() {
        let deep = format!("{}year = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = PartitionFilter::parse(&deep, &keys()).unwrap_err();
        assert_eq!(e.code, "InvalidInputException");
        let nots = format!("{}year = 1", "NOT ".repeat(10_000));
        assert_eq!(
            PartitionFilter::parse(&nots, &keys()).unwrap_err().code,
            "InvalidInputException"
        );
        // Nesting within the limit still works.
        let ok = format!("{}year = 1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(m(&ok, "1", "x"));
        // A 50,000-term OR is a flat list: parsed, evaluated and dropped without recursion.
        let wide = vec!["year = 7"; 50_000].join(" OR ") + " OR year = 1";
        assert!(m(&wide, "1", "x"));
        let e =
            PartitionFilter::parse(&format!("region LIKE '{}'", "ab".repeat(200_000)), &keys()).unwrap_err();
        assert_eq!(e.code, "InvalidInputException");
    }
}
