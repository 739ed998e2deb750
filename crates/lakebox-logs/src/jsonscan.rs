//! The leaves of a JSON log message, flattened as Logs Insights names them (`user.id`,
//! `items.0.sku`), read without building the document: a query that names two fields of a
//! 200-byte event copies those two values and only checks the rest.
//!
//! Every byte is still checked, so a message that is not JSON gives no fields at all, as
//! with `serde_json` (the grammar, string escapes and surrogates, control characters, numbers
//! in f64's range, nesting to 128 levels, nothing after the document). What is read matches
//! flattening the parsed document: `null` gives no leaf, booleans their text, numbers their
//! f64 value; of a key given twice the later value counts.

use std::borrow::Cow;

/// One leaf's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf<'a> {
    Num(f64),
    Str(Cow<'a, str>),
    Bool(bool),
}

/// Which flattened paths to read.
pub enum Want<'n> {
    /// Every leaf.
    All,
    /// The leaves named, and so the containers on the way to them.
    Named(&'n Names),
}

/// The flattened names a query reads.
#[derive(Debug, Default, Clone)]
pub struct Names {
    exact: Vec<String>,
    /// Every proper prefix of a dotted name (`a`, `a.b` of `a.b.c`): containers to descend.
    prefixes: Vec<String>,
}

impl Names {
    pub fn new<'s>(names: impl IntoIterator<Item = &'s str>) -> Names {
        let mut n = Names::default();
        for name in names {
            if !n.exact.iter().any(|e| e == name) {
                n.exact.push(name.to_owned());
            }
            for (i, _) in name.match_indices('.') {
                let p = &name[..i];
                if !n.prefixes.iter().any(|e| e == p) {
                    n.prefixes.push(p.to_owned());
                }
            }
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }
}

/// What to do with the value at a path.
#[derive(Clone, Copy, PartialEq)]
enum Take {
    /// Read it (a scalar) and everything under it (a container).
    All,
    /// Read it if it is a scalar named (the name's index); descend if it is a container on
    /// the way to a name.
    Some { leaf: Option<usize>, descend: bool },
}

impl Want<'_> {
    fn at(&self, path: &str) -> Take {
        match self {
            Want::All => Take::All,
            Want::Named(n) => Take::Some {
                leaf: n.exact.iter().position(|e| e == path),
                descend: n.prefixes.iter().any(|e| e == path),
            },
        }
    }
}

/// A leaf's flattened name: borrowed from the names asked for, or built (every leaf read).
pub type Name<'n> = Cow<'n, str>;

const MAX_DEPTH: u32 = 128;

/// Reads the leaves `want` asks for of the JSON object `doc` into `out` (pairs of flattened
/// name and value, in document order). `false`, with `out` emptied, when `doc` is not JSON.
pub fn leaves<'a, 'n>(doc: &'a str, want: &Want<'n>, out: &mut Vec<(Name<'n>, Leaf<'a>)>) -> bool {
    out.clear();
    let mut p = Parser {
        s: doc.as_bytes(),
        doc,
        i: 0,
    };
    thread_local! {
        static PATH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    PATH.with(|path| {
        let mut path = path.borrow_mut();
        path.clear();
        read_into(&mut p, &mut path, want, out)
    })
}

fn read_into<'a, 'n>(
    p: &mut Parser<'a>,
    path: &mut String,
    want: &Want<'n>,
    out: &mut Vec<(Name<'n>, Leaf<'a>)>,
) -> bool {
    p.ws();
    let ok = p.peek() == Some(b'{')
        && p.value(
            path,
            Take::Some {
                leaf: None,
                descend: true,
            },
            want,
            out,
            0,
        )
        .is_some()
        && {
            p.ws();
            p.i == p.s.len()
        };
    if !ok {
        out.clear();
    }
    ok
}

struct Parser<'a> {
    s: &'a [u8],
    doc: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.s[self.i..].starts_with(word).then(|| self.i += word.len())
    }

    /// The value at `path`, read as `take` says.
    fn value<'n>(
        &mut self,
        path: &mut String,
        take: Take,
        want: &Want<'n>,
        out: &mut Vec<(Name<'n>, Leaf<'a>)>,
        depth: u32,
    ) -> Option<()> {
        let (leaf, descend) = match take {
            Take::All => (true, true),
            Take::Some { leaf, descend } => (leaf.is_some(), descend),
        };
        let name = |path: &String| -> Name<'n> {
            match (take, want) {
                (Take::Some { leaf: Some(i), .. }, Want::Named(n)) => Cow::Borrowed(n.exact[i].as_str()),
                _ => Cow::Owned(path.clone()),
            }
        };
        match self.peek()? {
            b'{' | b'[' if !descend => self.skip(depth),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let key = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    // A top-level key is its own path: asked about as it is, and
                    // written into the path only when the value is read.
                    let len = path.len();
                    let t = if take == Take::All || len > 0 {
                        if len > 0 {
                            path.push('.');
                        }
                        path.push_str(&key);
                        if take == Take::All {
                            Take::All
                        } else {
                            want.at(path)
                        }
                    } else {
                        want.at(&key)
                    };
                    if t == (Take::Some {
                        leaf: None,
                        descend: false,
                    }) {
                        path.truncate(len);
                        self.skip(depth + 1)?;
                    } else {
                        if len == 0 && take != Take::All {
                            path.push_str(&key);
                        }
                        self.value(path, t, want, out, depth + 1)?;
                        path.truncate(len);
                    }
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                let mut index = 0usize;
                loop {
                    self.ws();
                    let len = path.len();
                    path.push('.');
                    path.push_str(&index.to_string());
                    let t = if take == Take::All {
                        Take::All
                    } else {
                        want.at(path)
                    };
                    self.value(path, t, want, out, depth + 1)?;
                    path.truncate(len);
                    index += 1;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'"' if leaf => {
                let s = self.string()?;
                out.push((name(path), Leaf::Str(s)));
                Some(())
            }
            b't' if leaf => {
                self.literal(b"true")?;
                out.push((name(path), Leaf::Bool(true)));
                Some(())
            }
            b'f' if leaf => {
                self.literal(b"false")?;
                out.push((name(path), Leaf::Bool(false)));
                Some(())
            }
            b'-' | b'0'..=b'9' if leaf => {
                let n = self.number()?;
                out.push((name(path), Leaf::Num(n)));
                Some(())
            }
            _ => self.skip(depth),
        }
    }

    /// Checks one value without reading it.
    fn skip(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.eat(close).is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.skip_string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b if b == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// Checks a number without reading it: only one with an exponent or hundreds of digits
    /// can be out of f64's range, so only those are converted.
    fn skip_number(&mut self) -> Option<()> {
        let start = self.i;
        self.grammar()?;
        let text = &self.doc[start..self.i];
        if text.len() > 300 || text.bytes().any(|b| b == b'e' || b == b'E') {
            let n: f64 = text.parse().ok()?;
            return n.is_finite().then_some(());
        }
        Some(())
    }

    /// A number by JSON's grammar, as f64 (out of f64's range is not JSON to serde_json).
    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        self.grammar()?;
        let n: f64 = self.doc[start..self.i].parse().ok()?;
        n.is_finite().then_some(n)
    }

    /// Steps over a number by JSON's grammar.
    fn grammar(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// Steps to the next quote or backslash, refusing a control character on the way.
    fn run(&mut self) -> Option<()> {
        // Most keys and values are short: look at them byte by byte before searching.
        for _ in 0..16 {
            match self.peek()? {
                b'"' | b'\\' => return Some(()),
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let rest = &self.s[self.i..];
        let n = memchr::memchr2(b'"', b'\\', rest)?;
        // The smallest byte says whether any is a control character (a vectorised scan).
        if rest[..n].iter().fold(false, |bad, &b| bad | (b < 0x20)) {
            return None;
        }
        self.i += n;
        Some(())
    }

    /// Checks a string (at its opening quote) without decoding it.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            self.run()?;
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    self.escape(&mut None)?;
                }
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
    }

    /// A string (at its opening quote), borrowed from the document unless it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            self.run()?;
            match self.peek()? {
                b'"' => {
                    let s = &self.doc[start..self.i];
                    self.i += 1;
                    return Some(Cow::Borrowed(s));
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let mut owned = Some(self.doc[start..self.i].to_owned());
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return owned.map(Cow::Owned);
                }
                b'\\' => {
                    self.i += 1;
                    self.escape(&mut owned)?;
                }
                0..=0x1f => return None,
                _ => {
                    // Copy the run of plain characters up to the next quote or backslash.
                    let run = self.i;
                    while self.peek().is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20) {
                        self.i += 1;
                    }
                    if let Some(o) = owned.as_mut() {
                        o.push_str(&self.doc[run..self.i]);
                    }
                }
            }
        }
    }

    /// One escape (after its backslash), appended to `into` when given.
    fn escape(&mut self, into: &mut Option<String>) -> Option<()> {
        let c = match self.peek()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.i += 1;
                let hi = self.hex4()?;
                let c = match hi {
                    0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                    }
                    0xDC00..=0xDFFF => return None,
                    _ => char::from_u32(hi)?,
                };
                if let Some(o) = into.as_mut() {
                    o.push(c);
                }
                return Some(());
            }
            _ => return None,
        };
        self.i += 1;
        if let Some(o) = into.as_mut() {
            o.push(c);
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(s, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    /// What flattening the parsed document gives (the reference).
    fn flattened(doc: &str) -> Option<Vec<(String, Leaf<'static>)>> {
        fn walk(prefix: &str, v: &Json, out: &mut Vec<(String, Leaf<'static>)>) {
            let name = |k: &str| {
                if prefix.is_empty() {
                    k.to_owned()
                } else {
                    format!("{prefix}.{k}")
                }
            };
            match v {
                Json::Object(m) => m.iter().for_each(|(k, v)| walk(&name(k), v, out)),
                Json::Array(a) => a
                    .iter()
                    .enumerate()
                    .for_each(|(i, v)| walk(&name(&i.to_string()), v, out)),
                Json::Null => {}
                Json::Bool(b) => out.push((prefix.to_owned(), Leaf::Bool(*b))),
                Json::Number(n) => out.push((prefix.to_owned(), Leaf::Num(n.as_f64().unwrap()))),
                Json::String(s) => out.push((prefix.to_owned(), Leaf::Str(Cow::Owned(s.clone())))),
            }
        }
        let v: Json = serde_json::from_str(doc).ok()?;
        v.is_object().then(|| {
            let mut out = Vec::new();
            walk("", &v, &mut out);
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        })
    }

    fn scanned(doc: &str, want: &Want<'_>) -> Option<Vec<(String, Leaf<'static>)>> {
        let mut out = Vec::new();
        if !leaves(doc, want, &mut out) {
            return None;
        }
        let mut v: Vec<(String, Leaf<'static>)> = out
            .into_iter()
            .map(|(k, l)| {
                let l = match l {
                    Leaf::Str(s) => Leaf::Str(Cow::Owned(s.into_owned())),
                    Leaf::Num(n) => Leaf::Num(n),
                    Leaf::Bool(b) => Leaf::Bool(b),
                };
                (k.into_owned(), l)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Some(v)
    }

    const DOCS: &[&str] = &[
        r#"{"user":"user-0042","score":91.5,"id":7,"ok":true,"gone":null}"#,
        r#"  {"a":{"b":{"c":1},"d":[1,{"e":"x"},[2,3]]},"f":[] , "g":{}}  "#,
        r#"{"esc":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","k\u0065y":-0.5e-3,"big":12345678901234567890}"#,
        r#"{"n":0,"m":-0,"x":1E+2,"y":2e308}"#,
        r#"{"a":1,}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":"tab	inside"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":1} trailing"#,
        r#"{"a":[1,2}"#,
        r#"{"a" 1}"#,
        r#"{"a":tru}"#,
        r#"[1,2]"#,
        r#"{"dup":1,"dup":"two"}"#,
        r#"{"unicode":"héllo wörld ✓","emptykey":{"":3}}"#,
        "",
        "{",
        r#"{"a":"unterminated}"#,
    ];

    #[test]
    fn reads_every_leaf_as_flattening_the_parsed_document_does() {
        for doc in DOCS {
            let want = scanned(doc, &Want::All);
            let mut reference = flattened(doc);
            // Of a key given twice, serde_json keeps the later value.
            if let Some(r) = reference.as_mut() {
                r.dedup_by(|a, b| a.0 == b.0);
            }
            let mut got = want.clone();
            if let Some(g) = got.as_mut() {
                let mut last: Vec<(String, Leaf<'static>)> = Vec::new();
                for (k, v) in g.drain(..) {
                    last.retain(|(lk, _)| *lk != k);
                    last.push((k, v));
                }
                last.sort_by(|a, b| a.0.cmp(&b.0));
                *g = last;
            }
            assert_eq!(got, reference, "{doc}");
        }
    }

    #[test]
    fn strings_are_checked_alike_wherever_their_special_bytes_fall() {
        // Runs are read sixteen bytes a step: quotes, escapes, control characters and
        // multi-byte characters at every offset around those steps, and near the end.
        for special in ["\\\"", "\\n", "\t", "\u{1f}", "\u{7f}", "é", "✓", "\\u00e9"] {
            for at in 0..40 {
                for tail in ["", r#","b":[1,{"c":"x"}]"#] {
                    let doc = format!(
                        r#"{{"a":"{}{special}{}"{tail}}}"#,
                        "x".repeat(at),
                        "y".repeat(at % 7)
                    );
                    let mut reference = flattened(&doc);
                    if let Some(r) = reference.as_mut() {
                        r.dedup_by(|a, b| a.0 == b.0);
                    }
                    assert_eq!(scanned(&doc, &Want::All), reference, "{doc:?}");
                }
            }
        }
    }

    #[test]
    fn named_paths_read_only_those_leaves_and_still_check_the_rest() {
        let names = Names::new(["user", "a.d.1.e", "a.b"]);
        let want = Want::Named(&names);
        assert_eq!(
            scanned(DOCS[0], &want).unwrap(),
            vec![("user".to_owned(), Leaf::Str("user-0042".into()))]
        );
        // `a.b` is an object: no leaf of that name.
        assert_eq!(
            scanned(DOCS[1], &want).unwrap(),
            vec![("a.d.1.e".to_owned(), Leaf::Str("x".into()))]
        );
        assert!(scanned(r#"{"user":"x","other":[1,2}"#, &want).is_none());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(scanned(&format!(r#"{{"user":"x","d":{deep}}}"#), &want).is_none());
    }
}
