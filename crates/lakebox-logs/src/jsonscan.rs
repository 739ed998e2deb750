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
    /// Each of those names in quotes, as the document's text would hold it as a key (a key
    /// with a dot in it flattens like nested ones, so any of them may be a top-level key
    /// that gives a named leaf).
    keys: Vec<memchr::memmem::Finder<'static>>,
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
        n.keys = n
            .exact
            .iter()
            .chain(&n.prefixes)
            .map(|k| memchr::memmem::Finder::new(format!("\"{k}\"").as_bytes()).into_owned())
            .collect();
        n
    }

    /// Where in `rest` (text without backslashes) the last text that could be a key giving
    /// one of these leaves ends; 0 when there is none.
    fn last_key_end(&self, rest: &[u8]) -> usize {
        self.keys
            .iter()
            .map(|k| {
                let mut end = 0;
                while let Some(at) = k.find(&rest[end..]) {
                    end += at + k.needle().len();
                }
                end
            })
            .max()
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// The names, as given.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().map(String::as_str)
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
    let mut p = Parser::new(doc, None);
    scan(&mut p, want, out) == Scan::Json
}

/// Whether `doc` is a JSON object.
pub fn is_json_object(doc: &str) -> bool {
    static NONE: Names = Names {
        exact: Vec::new(),
        prefixes: Vec::new(),
        keys: Vec::new(),
    };
    leaves(doc, &Want::Named(&NONE), &mut Vec::new())
}

/// How far [`leaves_settled`] checked a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    NotJson,
    /// All of it: a JSON object.
    Json,
    /// Up to where nothing after could give a named leaf; the rest may still not be JSON.
    Unchecked,
}

/// [`leaves`] of the named paths, stopping at the first top-level member after which the
/// text holds none of the names as a key: the leaves read are then all the document has.
/// What is left unchecked matters only to a caller whose answer would differ for a message
/// that is not JSON (a comparison that held, say), which then asks [`is_json_object`]. Most
/// messages of a selective search are settled by their first fields this way, instead of
/// being checked to their last byte.
pub fn leaves_settled<'a, 'n>(doc: &'a str, names: &'n Names, out: &mut Vec<(Name<'n>, Leaf<'a>)>) -> Scan {
    let mut p = Parser::new(doc, Some(names));
    scan(&mut p, &Want::Named(names), out)
}

fn scan<'a, 'n>(p: &mut Parser<'a, '_>, want: &Want<'n>, out: &mut Vec<(Name<'n>, Leaf<'a>)>) -> Scan {
    out.clear();
    thread_local! {
        static PATH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    PATH.with(|path| {
        let mut path = path.borrow_mut();
        path.clear();
        read_into(p, &mut path, want, out)
    })
}

fn read_into<'a, 'n>(
    p: &mut Parser<'a, '_>,
    path: &mut String,
    want: &Want<'n>,
    out: &mut Vec<(Name<'n>, Leaf<'a>)>,
) -> Scan {
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
        && (p.settled || {
            p.ws();
            p.i == p.s.len()
        });
    if !ok {
        out.clear();
        Scan::NotJson
    } else if p.settled {
        Scan::Unchecked
    } else {
        Scan::Json
    }
}

struct Parser<'a, 'k> {
    s: &'a [u8],
    doc: &'a str,
    i: usize,
    /// The names a settled scan reads, until it has looked for them in the text.
    settle: Option<&'k Names>,
    /// Before here the text may still hold a key giving a wanted leaf.
    settle_at: usize,
    /// Reading stopped between two top-level members, nothing after could give a wanted leaf.
    settled: bool,
}

impl<'a, 'k> Parser<'a, 'k> {
    fn new(doc: &'a str, settle: Option<&'k Names>) -> Parser<'a, 'k> {
        Parser {
            s: doc.as_bytes(),
            doc,
            i: 0,
            settle,
            settle_at: if settle.is_some() { 0 } else { usize::MAX },
            settled: false,
        }
    }

    /// Between two top-level members: whether nothing after can give a wanted leaf. The
    /// text after the first member is searched once for where the last such key could be (a
    /// key before it was read, escapes and all); after a backslash, a key could be spelt with
    /// escapes, and the document is read to its end.
    fn settles(&mut self) -> bool {
        if let Some(names) = self.settle.take() {
            let rest = &self.s[self.i..];
            self.settle_at = match memchr::memchr(b'\\', rest) {
                Some(_) => usize::MAX,
                None => self.i + names.last_key_end(rest),
            };
        }
        self.i >= self.settle_at
    }

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
                        b',' if depth == 0 && self.settles() => {
                            self.settled = true;
                            return Some(());
                        }
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
        let text = &self.doc[start..self.i];
        if let Some(n) = short_decimal(text.as_bytes()) {
            return Some(n);
        }
        let n: f64 = text.parse().ok()?;
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
        // Sixteen bytes a step while sixteen remain: one comparison finds the first quote,
        // backslash or control character, so a short key costs one step and a long string a
        // step per sixteen bytes.
        #[cfg(target_arch = "x86_64")]
        while self.i + 16 <= self.s.len() {
            match special16(&self.s[self.i..self.i + 16]) {
                16 => self.i += 16,
                n => {
                    self.i += n;
                    return (self.s[self.i] >= 0x20).then_some(());
                }
            }
        }
        loop {
            match self.peek()? {
                b'"' | b'\\' => return Some(()),
                0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
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

/// Exact powers of ten: every one up to 10^22 is an f64 exactly.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A number of JSON's grammar without an exponent and of at most 15 digits (`12.5`, `-3`,
/// `1700000000`: most numbers in logs), as parsing it gives, without the general parser:
/// its digits as an integer are below 2^53 and its power of ten at most 10^15, both exact
/// in f64, so one division is correctly rounded, as parsing is (Clinger's fast path).
/// `None` for anything else.
fn short_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    let (mut mantissa, mut count, mut fraction, mut point) = (0u64, 0usize, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
                fraction += usize::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
        if count > 15 {
            return None;
        }
    }
    let n = mantissa as f64 / POW10[fraction];
    Some(if negative { -n } else { n })
}

/// Where the first quote, backslash or control character of sixteen bytes is (16: none).
#[cfg(target_arch = "x86_64")]
#[inline]
fn special16(block: &[u8]) -> usize {
    use std::arch::x86_64::*;
    debug_assert_eq!(block.len(), 16);
    // SAFETY: SSE2 is part of x86_64; the load reads the sixteen bytes of `block` and needs no
    // alignment.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Below 0x20 as unsigned bytes: the smaller of the byte and 0x1f is the byte.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let hits = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32;
        (hits | 1 << 16).trailing_zeros() as usize
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
    fn a_settled_scan_reads_the_same_leaves_and_stops_only_where_nothing_can_change() {
        let more = [
            r#"{"id":5,"x":[1,2}"#,
            r#"{"id":5,"note":"xx","id":7}"#,
            r#"{"id":5,"note":"a \"id\" b","n":1}"#,
            r#"{"a":{"b":1},"c":2,"a.b":3}"#,
            r#"{"x":1,"y":{"id":2},"z":3"#,
            r#"{"user":"u","ok":true,"rest":[{"deep":{"id":9}}]}"#,
        ];
        for names in [
            vec!["id"],
            vec!["user", "ok"],
            vec!["a.b"],
            vec!["a.d.1.e", "f"],
            vec!["missing"],
        ] {
            let names = Names::new(names);
            for doc in DOCS.iter().chain(&more) {
                let mut whole = Vec::new();
                let json = leaves(doc, &Want::Named(&names), &mut whole);
                let mut got = Vec::new();
                match leaves_settled(doc, &names, &mut got) {
                    Scan::NotJson => assert!(!json, "{doc}"),
                    Scan::Json => assert!(json && got == whole, "{doc}"),
                    Scan::Unchecked => {
                        assert_eq!(json, is_json_object(doc), "{doc}");
                        if json {
                            assert_eq!(got, whole, "{doc}");
                        }
                    }
                }
            }
        }
        let id = Names::new(["id"]);
        let mut got = Vec::new();
        // Nothing after the first member can be `id`: its value settles the scan, and the
        // broken array after it is only found by asking.
        assert_eq!(leaves_settled(more[0], &id, &mut got), Scan::Unchecked);
        assert_eq!(got, vec![(Cow::Borrowed("id"), Leaf::Num(5.0))]);
        assert!(!is_json_object(more[0]));
        // A later `id` (or a backslash, which could spell one) is read to the end.
        assert_eq!(leaves_settled(more[1], &id, &mut got), Scan::Json);
        assert_eq!(got.last().unwrap().1, Leaf::Num(7.0));
        assert_eq!(leaves_settled(more[2], &id, &mut got), Scan::Json);
        // `a.b` may come from a top-level key of that name.
        let ab = Names::new(["a.b"]);
        assert_eq!(leaves_settled(more[3], &ab, &mut got), Scan::Json);
        assert_eq!(got.len(), 2);
        // A later key is found wherever it falls against the steps of the search, and a key
        // that only holds the name (`idx`, `xid`) is not it.
        for pad in 0..40 {
            let x = "x".repeat(pad);
            let mut g = Vec::new();
            let later = format!(r#"{{"id":5,"note":"{x}","id":7}}"#);
            assert_eq!(leaves_settled(&later, &id, &mut g), Scan::Json, "{later}");
            assert_eq!(g.last().unwrap().1, Leaf::Num(7.0));
            let longer = format!(r#"{{"id":5,"note":"{x}","idx":7,"xid":8,"i":9}}"#);
            assert_eq!(leaves_settled(&longer, &id, &mut g), Scan::Unchecked, "{longer}");
            assert_eq!(g, vec![(Cow::Borrowed("id"), Leaf::Num(5.0))]);
            let escaped = format!(r#"{{"id":5,"note":"{x}\u0041","i\u0064":7}}"#);
            assert_eq!(leaves_settled(&escaped, &id, &mut g), Scan::Json, "{escaped}");
            assert_eq!(g.last().unwrap().1, Leaf::Num(7.0));
        }
        // A name no key spells settles after the first member, with no leaves.
        let missing = Names::new(["missing"]);
        let mut none = Vec::new();
        assert_eq!(leaves_settled(more[4], &missing, &mut none), Scan::Unchecked);
        assert!(none.is_empty());
    }

    #[test]
    fn short_decimals_read_as_parsing_reads_them() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "12.5",
            "-3",
            "0.1",
            "0.3",
            "1700000000",
            "999999999999999",
            "99999999999999.9",
            "0.000000000000001",
            "-0.000",
            "123456789012345",
            "1234567890123456",
            "1e5",
            "2.5E-3",
            "0.1234567890123456",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        // Pseudo-random digits with the point anywhere, up to and past fifteen digits.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = format!("{}", x % 10u64.pow((x % 17) as u32 + 1));
            let at = (x >> 40) as usize % (digits.len() + 1);
            let t = match at {
                0 => digits,
                _ if at == digits.len() => digits,
                _ => format!("{}.{}", &digits[..at], &digits[at..]),
            };
            texts.push(if x & 1 == 0 { t } else { format!("-{t}") });
        }
        for t in &texts {
            let mut p = Parser::new(t, None);
            let got = p.number();
            let want = t.parse::<f64>().ok().filter(|n| n.is_finite());
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{t}");
        }
        assert_eq!(short_decimal(b"1234567890123456"), None);
        assert_eq!(short_decimal(b"1e5"), None);
        assert_eq!(short_decimal(b"0.1").map(f64::to_bits), Some(0.1f64.to_bits()));
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

#[cfg(test)]
mod speed {
    use super::*;

    fn time<'a>(
        label: &str,
        what: &str,
        set: &'a [String],
        rounds: usize,
        mut each: impl FnMut(&'a str) -> bool,
    ) {
        let best = (0..7)
            .map(|_| {
                let t = std::time::Instant::now();
                for _ in 0..rounds {
                    for d in set {
                        assert!(each(d));
                    }
                }
                t.elapsed().as_nanos() as f64 / (set.len() * rounds) as f64
            })
            .fold(f64::MAX, f64::min);
        eprintln!("{label} {what}: {best:.1} ns/message");
    }

    /// `cargo test --release -p lakebox-logs jsonscan::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn scanner_speed() {
        let docs: Vec<String> = (0..1_000_000)
            .map(|i| {
                let mut r = format!(
                    "{{\"id\":{i},\"user\":\"user-{:04}\",\"score\":{}.5,\"ok\":true,\"note\":\"",
                    i % 1000,
                    i % 97
                );
                while r.len() < 197 {
                    r.push('x');
                }
                r.push_str("\"}");
                r
            })
            .collect();
        let names = Names::new(["id"]);
        // Two fields further in: the settled scan's search of the rest costs about what it saves.
        let two = Names::new(["score", "ok"]);
        let mut out = Vec::new();
        // Over all the messages (memory's speed counts), then over 10,000 of them again and
        // again (held in the caches: the scanner's own cost). Best of 7: this machine's
        // speed varies from run to run.
        for (label, set, rounds) in [("1M", &docs[..], 1), ("10k", &docs[..10_000], 100)] {
            time(label, "whole", set, rounds, |d| {
                leaves(d, &Want::Named(&names), &mut out) && out.len() == 1
            });
            time(label, "settled", set, rounds, |d| {
                leaves_settled(d, &names, &mut out) == Scan::Unchecked && out.len() == 1
            });
            time(label, "whole (score, ok)", set, rounds, |d| {
                leaves(d, &Want::Named(&two), &mut out) && out.len() == 2
            });
            time(label, "settled (score, ok)", set, rounds, |d| {
                leaves_settled(d, &two, &mut out) == Scan::Unchecked && out.len() == 2
            });
            time(label, "serde_json, for comparison", set, rounds, |d| {
                serde_json::from_str::<serde::de::IgnoredAny>(d).is_ok()
            });
        }
    }
}
