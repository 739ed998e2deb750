//! Tokens of the expression language, each with its span in the source (for DynamoDB's
//! "Syntax error; token: …, near: …" messages).

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An attribute name or a keyword or function name; keywords are matched without case.
    Ident(String),
    /// `#name`
    NameRef(String),
    /// `:value`
    ValueRef(String),
    /// A list index.
    Int(String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token as DynamoDB quotes it.
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        if self.tok == Tok::Eof {
            "<EOF>"
        } else {
            &src[self.start..self.end]
        }
    }

    pub fn is_keyword(&self, word: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s.eq_ignore_ascii_case(word))
    }
}

/// Most bytes of an expression (DynamoDB's limit).
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// Deepest nesting of parentheses and brackets, and most NOTs, a parser recurses into: far
/// beyond any real expression, well within a request thread's stack.
pub const MAX_NESTING: usize = 64;

/// Whether the tokens nest deeper (or stack more NOTs) than [`MAX_NESTING`].
pub fn too_deep(opens: impl Iterator<Item = (bool, bool, bool)>) -> bool {
    // (opens a level, closes one, is a NOT)
    let (mut depth, mut max, mut nots) = (0usize, 0usize, 0usize);
    for (open, close, not) in opens {
        if open {
            depth += 1;
            max = max.max(depth);
        }
        if close {
            depth = depth.saturating_sub(1);
        }
        nots += not as usize;
    }
    max > MAX_NESTING || nots > MAX_NESTING
}

/// Splits `src` into tokens; an unexpected character is answered as DynamoDB answers it.
pub fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: usize| {
        let mut j = i;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b'#' | b':' => {
                let j = word(i + 1);
                if j == i + 1 {
                    let near: String = src[i..].chars().take(2).collect();
                    return Err(format!(
                        "Syntax error; token: \"{}\", near: \"{near}\"",
                        c as char
                    ));
                }
                let s = src[i..j].to_owned();
                i = j;
                if c == b'#' {
                    Tok::NameRef(s)
                } else {
                    Tok::ValueRef(s)
                }
            }
            b'0'..=b'9' => {
                let mut j = i;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let s = src[i..j].to_owned();
                i = j;
                Tok::Int(s)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let j = word(i);
                let s = src[i..j].to_owned();
                i = j;
                Tok::Ident(s)
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let p: &'static str = match two {
                    "<>" => "<>",
                    "<=" => "<=",
                    ">=" => ">=",
                    _ => match c {
                        b'=' => "=",
                        b'<' => "<",
                        b'>' => ">",
                        b'(' => "(",
                        b')' => ")",
                        b'[' => "[",
                        b']' => "]",
                        b',' => ",",
                        b'.' => ".",
                        b'+' => "+",
                        b'-' => "-",
                        _ => {
                            let ch = src[i..].chars().next().unwrap_or('?');
                            return Err(format!("Invalid character encountered; character: {ch}"));
                        }
                    },
                };
                i += p.len();
                Tok::Punct(p)
            }
        };
        out.push(Token { tok, start, end: i });
    }
    out.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(out)
}
