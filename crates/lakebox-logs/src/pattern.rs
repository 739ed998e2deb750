//! CloudWatch Logs' filter-pattern language, as FilterLogEvents, metric filters and
//! subscription filters use it:
//!
//! - unstructured: terms (`ERROR`, `"two words"`), all of which must occur; `?a ?b` any of
//!   which must occur; `-term` which must not occur; `%regex%`; the empty pattern matches all;
//! - JSON: `{ $.level = "error" && ($.latency > 100 || $.user.id IS NULL) }` with `=`, `!=`,
//!   `<`, `<=`, `>`, `>=`, `*` wildcards in strings, `%regex%`, `IS NULL`, `NOT EXISTS`,
//!   `IS TRUE`, `IS FALSE`, nested selectors and array indexes;
//! - space-delimited: `[ip, user, ..., status = 4* || status = 5*, bytes > 1000]`, the message
//!   split at spaces with `"…"` and `[…]` as one field.
//!
//! A pattern also yields the values metric filters publish: `$.latency` (JSON) or `$bytes`
//! (a named space-delimited field).

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value as Json;

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    Terms(Terms),
    /// The expression, text every matching event holds (see [`required_text`]), and the
    /// fields to read when matching can skip parsing the whole message (see [`scannable`]).
    Json(Expr<Selector>, Vec<String>, Option<crate::jsonscan::Names>),
    Space(Space),
}

#[derive(Debug, Clone, Default)]
pub struct Terms {
    all: Vec<Term>,
    any: Vec<Term>,
    none: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Text(String),
    Regex(Regex),
}

impl Term {
    fn found_in(&self, message: &str) -> bool {
        match self {
            Term::Text(t) => message.contains(t.as_str()),
            Term::Regex(r) => r.is_match(message),
        }
    }
}

/// A boolean expression over fields named by `F` (JSON selectors or space-delimited names).
#[derive(Debug, Clone)]
pub enum Expr<F> {
    And(Box<Expr<F>>, Box<Expr<F>>),
    Or(Box<Expr<F>>, Box<Expr<F>>),
    Compare(F, Op, Literal),
    IsNull(F),
    NotExists(F),
    IsBool(F, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Literal {
    Number(f64),
    /// Text, with `*` matching any run of characters.
    Text(String),
    Regex(Regex),
}

/// A JSON selector: `$.a.b[0]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}
pub type Selector = Vec<Step>;

#[derive(Debug, Clone)]
pub struct Space {
    /// The fields in order; `None` is `...` (any number of fields).
    fields: Vec<Option<String>>,
    conditions: Vec<Expr<String>>,
}

/// Why a pattern does not parse; CloudWatch Logs answers "Invalid filter pattern" or, for a
/// metric filter, "Invalid metric filter pattern".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError;

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix('{') {
            let inner = inner.strip_suffix('}').ok_or(PatternError)?;
            let mut p = Parser::new(inner);
            let expr = p.expr(&mut |p| p.selector())?;
            p.end()?;
            let required = required_text(&expr);
            let scan =
                scannable(&expr).map(|paths| crate::jsonscan::Names::new(paths.iter().map(String::as_str)));
            return Ok(Pattern::Json(expr, required, scan));
        }
        if let Some(inner) = t.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(PatternError)?;
            return parse_space(inner).map(Pattern::Space);
        }
        parse_terms(t).map(Pattern::Terms)
    }

    /// The JSON selectors the pattern compares, spelled `$.a.b[0]` (TestMetricFilter reports
    /// what each took).
    pub fn selectors(&self) -> Vec<String> {
        fn walk(e: &Expr<Selector>, out: &mut Vec<String>) {
            match e {
                Expr::And(a, b) | Expr::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Compare(s, ..) | Expr::IsNull(s) | Expr::NotExists(s) | Expr::IsBool(s, _) => {
                    let mut text = String::from("$");
                    for step in s {
                        match step {
                            Step::Key(k) => text.push_str(&format!(".{k}")),
                            Step::Index(i) => text.push_str(&format!("[{i}]")),
                        }
                    }
                    if !out.contains(&text) {
                        out.push(text);
                    }
                }
            }
        }
        let mut out = Vec::new();
        if let Pattern::Json(e, _, _) = self {
            walk(e, &mut out);
        }
        out
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        self.matches_with(message, &mut Vec::new())
    }

    /// Whether `message` matches, with a buffer for the JSON leaves a comparison reads (a
    /// search reuses one over millions of messages rather than allocating one each).
    pub fn matches_with<'p, 'm>(&'p self, message: &'m str, leaves: &mut Leaves<'p, 'm>) -> bool {
        if let Pattern::Json(expr, required, Some(names)) = self {
            // Only the compared fields are read (the message still checked as JSON whole).
            if !required.is_empty()
                && !message.contains('\\')
                && required.iter().any(|t| !message.contains(t.as_str()))
            {
                return false;
            }
            if !message.trim_start().starts_with('{') {
                return false;
            }
            let scan = crate::jsonscan::leaves_settled(message, names, leaves);
            if scan == crate::jsonscan::Scan::NotJson {
                return false;
            }
            // A message that is not JSON matches nothing, so the part of it a settled scan
            // left unchecked is checked only when the comparison holds.
            let held = eval(expr, &|sel: &Selector| {
                // Of a key given twice the later value counts, as in the parsed document.
                leaves
                    .iter()
                    .rev()
                    .find(|(n, _)| names_path(n, sel))
                    .map(|(_, leaf)| match leaf {
                        crate::jsonscan::Leaf::Num(n) => Field::Number(*n),
                        crate::jsonscan::Leaf::Str(s) => Field::Text(s.to_string()),
                        crate::jsonscan::Leaf::Bool(b) => Field::Bool(*b),
                    })
            });
            return held && (scan == crate::jsonscan::Scan::Json || crate::jsonscan::is_json_object(message));
        }
        self.fields(message).is_some()
    }

    /// The message's fields when it matches (what metric values and dimensions read), or
    /// `None` when it does not.
    pub fn fields<'a>(&'a self, message: &'a str) -> Option<Fields<'a>> {
        match self {
            Pattern::Terms(t) => {
                let ok = t.all.iter().all(|x| x.found_in(message))
                    && (t.any.is_empty() || t.any.iter().any(|x| x.found_in(message)))
                    && !t.none.iter().any(|x| x.found_in(message));
                ok.then_some(Fields::None)
            }
            Pattern::Json(expr, required, _) => {
                // Without a backslash a message's JSON strings are their own text, so a value
                // the pattern requires must appear as it is: most events are passed over
                // without being parsed.
                if !required.is_empty()
                    && !message.contains('\\')
                    && required.iter().any(|t| !message.contains(t.as_str()))
                {
                    return None;
                }
                let doc: Json = serde_json::from_str(message).ok()?;
                eval(expr, &|sel: &Selector| select(&doc, sel).map(field_of_json))
                    .then_some(Fields::Json(doc))
            }
            Pattern::Space(space) => {
                let words = split_words(message);
                let named = bind_space(&space.fields, &words)?;
                let lookup = |name: &String| {
                    named
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, w)| Field::Text(w.to_string()))
                };
                space
                    .conditions
                    .iter()
                    .all(|c| eval(c, &lookup))
                    .then_some(Fields::Space(named))
            }
        }
    }
}

/// The JSON leaves of a message a pattern compares: names borrowed from the pattern, values
/// from the message.
pub type Leaves<'p, 'm> = Vec<(crate::jsonscan::Name<'p>, crate::jsonscan::Leaf<'m>)>;

/// A matched message's fields.
pub enum Fields<'a> {
    None,
    Json(Json),
    /// Each named field of the pattern with the word it took.
    Space(Vec<(&'a str, &'a str)>),
}

impl Fields<'_> {
    /// The value of `$.a.b` (JSON) or `$name` (space-delimited), as text.
    pub fn get(&self, reference: &str) -> Option<String> {
        let name = reference.strip_prefix('$')?;
        match self {
            Fields::None => None,
            Fields::Json(doc) => {
                let sel = Parser::new(reference).selector().ok()?;
                match select(doc, &sel)? {
                    Json::String(s) => Some(s.clone()),
                    Json::Null => None,
                    other => Some(other.to_string()),
                }
            }
            Fields::Space(words) => words.iter().find(|(n, _)| *n == name).map(|(_, w)| w.to_string()),
        }
    }
}

/// A field's value as a comparison sees it.
enum Field {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    /// An object or array: exists, compares to nothing.
    Other,
}

/// Text a JSON pattern's matches all contain: the values of `$.x = "text"` comparisons (with no
/// wildcard) that the whole expression requires (joined by `&&` only).
fn required_text(expr: &Expr<Selector>) -> Vec<String> {
    match expr {
        Expr::And(a, b) => {
            let mut out = required_text(a);
            out.extend(required_text(b));
            out
        }
        // `true` / `false` also match JSON booleans, which are not quoted.
        Expr::Compare(_, Op::Eq, Literal::Text(t))
            if !t.contains('*') && !t.is_empty() && t != "true" && t != "false" =>
        {
            // As it appears quoted in the message (no escapes to undo: see the caller).
            vec![format!("\"{t}\"")]
        }
        _ => Vec::new(),
    }
}

/// A selector of object keys alone as a flattened name (`$.user.id` → `user.id`); `None` for
/// one a flattened name could confuse (an index, a key with a dot or of digits only).
fn dotted(sel: &Selector) -> Option<String> {
    let mut keys = Vec::with_capacity(sel.len());
    for step in sel {
        match step {
            Step::Key(k) if !k.is_empty() && !k.contains('.') && !k.bytes().all(|b| b.is_ascii_digit()) => {
                keys.push(k.as_str())
            }
            _ => return None,
        }
    }
    Some(keys.join("."))
}

/// Whether the flattened `name` is the selector's keys joined by dots (without building it,
/// or splitting the name: this runs for every leaf of every event a search reads). Keys
/// with a dot are never read this way ([`dotted`]), so each key must be followed by a dot or
/// the end.
fn names_path(name: &str, sel: &Selector) -> bool {
    if let [Step::Key(k)] = sel.as_slice() {
        return name == k;
    }
    let mut rest = name.as_bytes();
    for (i, step) in sel.iter().enumerate() {
        let Step::Key(k) = step else { return false };
        if i > 0 {
            match rest.split_first() {
                Some((b'.', after)) => rest = after,
                _ => return false,
            }
        }
        match rest.strip_prefix(k.as_bytes()) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    !sel.is_empty() && rest.is_empty()
}

/// The fields to read when an expression can be decided from scalar leaves alone: only
/// comparisons and `IS TRUE` / `IS FALSE` (a field that is null, an object or missing fails
/// them either way), over selectors [`dotted`] can name. `NOT EXISTS` and `IS NULL` need the
/// parsed document.
fn scannable(expr: &Expr<Selector>) -> Option<Vec<String>> {
    fn walk(e: &Expr<Selector>, out: &mut Vec<String>) -> Option<()> {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, out)?;
                walk(b, out)
            }
            Expr::Compare(sel, _, _) | Expr::IsBool(sel, _) => {
                out.push(dotted(sel)?);
                Some(())
            }
            Expr::IsNull(_) | Expr::NotExists(_) => None,
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out)?;
    Some(out)
}

fn field_of_json(v: &Json) -> Field {
    match v {
        Json::Null => Field::Null,
        Json::Bool(b) => Field::Bool(*b),
        Json::Number(n) => Field::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Field::Text(s.clone()),
        _ => Field::Other,
    }
}

fn select<'a>(doc: &'a Json, sel: &Selector) -> Option<&'a Json> {
    let mut cur = doc;
    for step in sel {
        cur = match step {
            Step::Key(k) => cur.as_object()?.get(k)?,
            Step::Index(i) => cur.as_array()?.get(*i)?,
        };
    }
    Some(cur)
}

fn eval<F>(expr: &Expr<F>, lookup: &dyn Fn(&F) -> Option<Field>) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, lookup) && eval(b, lookup),
        Expr::Or(a, b) => eval(a, lookup) || eval(b, lookup),
        Expr::IsNull(f) => matches!(lookup(f), Some(Field::Null)),
        Expr::NotExists(f) => lookup(f).is_none(),
        Expr::IsBool(f, want) => matches!(lookup(f), Some(Field::Bool(b)) if b == *want),
        Expr::Compare(f, op, lit) => match lookup(f) {
            Some(field) => compare(&field, *op, lit),
            None => false,
        },
    }
}

fn compare(field: &Field, op: Op, lit: &Literal) -> bool {
    // The field as text, for text and regex literals only: a numeric comparison over
    // millions of events formats no numbers.
    let text = || match field {
        Field::Text(s) => Some(Cow::Borrowed(s.as_str())),
        Field::Number(n) => Some(Cow::Owned(format_number(*n))),
        Field::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Field::Null | Field::Other => None,
    };
    match lit {
        Literal::Number(want) => {
            let have = match field {
                Field::Number(n) => Some(*n),
                Field::Text(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(have) = have else {
                return false;
            };
            match op {
                Op::Eq => have == *want,
                Op::Ne => have != *want,
                Op::Lt => have < *want,
                Op::Le => have <= *want,
                Op::Gt => have > *want,
                Op::Ge => have >= *want,
            }
        }
        Literal::Text(want) => {
            let Some(text) = text() else { return false };
            match op {
                Op::Eq => wildcard(want, &text),
                Op::Ne => !wildcard(want, &text),
                _ => false,
            }
        }
        Literal::Regex(re) => {
            let Some(text) = text() else { return false };
            match op {
                Op::Eq => re.is_match(&text),
                Op::Ne => !re.is_match(&text),
                _ => false,
            }
        }
    }
}

/// A number as log queries show it: whole numbers without a fraction.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// `*` matches any run of characters; everything else itself.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn regex(body: &str) -> Result<Regex, PatternError> {
    Regex::new(body).map_err(|_| PatternError)
}

fn parse_terms(text: &str) -> Result<Terms, PatternError> {
    let mut terms = Terms::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else { break };
        let list = match c {
            '?' => {
                chars.next();
                &mut terms.any
            }
            '-' => {
                chars.next();
                &mut terms.none
            }
            _ => &mut terms.all,
        };
        let term = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err(PatternError),
                    }
                }
                Term::Text(s)
            }
            Some('%') => {
                chars.next();
                let s: String = chars.by_ref().take_while(|c| *c != '%').collect();
                Term::Regex(regex(&s)?)
            }
            _ => {
                let s: String = std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect();
                if s.is_empty() {
                    return Err(PatternError);
                }
                Term::Text(s)
            }
        };
        list.push(term);
    }
    Ok(terms)
}

fn parse_space(inner: &str) -> Result<Space, PatternError> {
    let mut fields = Vec::new();
    let mut conditions = Vec::new();
    for entry in split_top_level_commas(inner) {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(PatternError);
        }
        if entry == "..." {
            fields.push(None);
            continue;
        }
        let mut p = Parser::new(entry);
        let expr = p.expr(&mut |p| p.word())?;
        p.end()?;
        // The entry's field is the first name its condition mentions (`status = 4* || …`).
        fields.push(Some(first_field(&expr).cloned().ok_or(PatternError)?));
        conditions.push(expr);
    }
    Ok(Space { fields, conditions })
}

fn first_field<F>(expr: &Expr<F>) -> Option<&F> {
    match expr {
        Expr::And(a, _) | Expr::Or(a, _) => first_field(a),
        Expr::Compare(f, ..) | Expr::IsNull(f) | Expr::NotExists(f) | Expr::IsBool(f, _) => Some(f),
    }
}

fn split_top_level_commas(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut depth) = (0, false, 0i32);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The message's space-delimited fields; `"…"` and `[…]` are one field without their marks.
fn split_words(message: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            open @ (b'"' | b'[') => {
                let close = if open == b'"' { b'"' } else { b']' };
                let end = bytes[i + 1..].iter().position(|b| *b == close).map(|p| i + 1 + p);
                match end {
                    Some(e) => {
                        out.push(&message[i + 1..e]);
                        i = e + 1;
                    }
                    None => {
                        out.push(&message[i..]);
                        break;
                    }
                }
            }
            _ => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| *b == b' ' || *b == b'\t')
                    .map_or(bytes.len(), |p| i + p);
                out.push(&message[i..end]);
                i = end;
            }
        }
    }
    out
}

/// Binds the pattern's fields to the words; `...` takes any number of words. `None` when the
/// words cannot fit.
fn bind_space<'a>(fields: &'a [Option<String>], words: &[&'a str]) -> Option<Vec<(&'a str, &'a str)>> {
    fn go<'a>(fields: &'a [Option<String>], words: &[&'a str], out: &mut Vec<(&'a str, &'a str)>) -> bool {
        match fields.split_first() {
            None => words.is_empty(),
            Some((None, rest)) => (0..=words.len()).any(|skip| {
                let mark = out.len();
                go(rest, &words[skip..], out) || {
                    out.truncate(mark);
                    false
                }
            }),
            Some((Some(name), rest)) => match words.split_first() {
                Some((w, more)) => {
                    out.push((name.as_str(), w));
                    go(rest, more, out) || {
                        out.pop();
                        false
                    }
                }
                None => false,
            },
        }
    }
    let mut bound = Vec::new();
    go(fields, words, &mut bound).then_some(bound)
}

/// A tokenizer and recursive-descent parser for the expression forms.
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(tok) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let r = self.rest();
        if r.len() >= kw.len()
            && r[..kw.len()].eq_ignore_ascii_case(kw)
            && !r[kw.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), PatternError> {
        self.skip_ws();
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(PatternError)
        }
    }

    fn expr<F: Clone>(
        &mut self,
        field: &mut dyn FnMut(&mut Self) -> Result<F, PatternError>,
    ) -> Result<Expr<F>, PatternError> {
        let mut left = self.and(field)?;
        while self.eat("||") {
            let right = self.and(field)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and<F: Clone>(
        &mut self,
        field: &mut dyn FnMut(&mut Self) -> Result<F, PatternError>,
    ) -> Result<Expr<F>, PatternError> {
        let mut left = self.primary(field)?;
        while self.eat("&&") {
            let right = self.primary(field)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn primary<F: Clone>(
        &mut self,
        field: &mut dyn FnMut(&mut Self) -> Result<F, PatternError>,
    ) -> Result<Expr<F>, PatternError> {
        if self.eat("(") {
            let e = self.expr(field)?;
            if !self.eat(")") {
                return Err(PatternError);
            }
            return Ok(e);
        }
        self.skip_ws();
        let f = field(self)?;
        if self.eat_keyword("IS") {
            if self.eat_keyword("NULL") {
                return Ok(Expr::IsNull(f));
            }
            if self.eat_keyword("TRUE") {
                return Ok(Expr::IsBool(f, true));
            }
            if self.eat_keyword("FALSE") {
                return Ok(Expr::IsBool(f, false));
            }
            return Err(PatternError);
        }
        if self.eat_keyword("NOT") {
            return if self.eat_keyword("EXISTS") {
                Ok(Expr::NotExists(f))
            } else {
                Err(PatternError)
            };
        }
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            // A bare field (space-delimited `[ip, user]`): always true once bound.
            return Ok(Expr::Or(
                Box::new(Expr::Compare(f.clone(), Op::Eq, Literal::Text("*".into()))),
                Box::new(Expr::IsNull(f)),
            ));
        };
        let lit = self.literal()?;
        if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && !matches!(lit, Literal::Number(_)) {
            return Err(PatternError);
        }
        Ok(Expr::Compare(f, op, lit))
    }

    fn literal(&mut self) -> Result<Literal, PatternError> {
        self.skip_ws();
        let r = self.rest();
        if let Some(body) = r.strip_prefix('"') {
            let mut s = String::new();
            let mut chars = body.char_indices();
            loop {
                match chars.next() {
                    Some((_, '\\')) => s.extend(chars.next().map(|(_, c)| c)),
                    Some((i, '"')) => {
                        self.pos += 1 + i + 1;
                        return Ok(Literal::Text(s));
                    }
                    Some((_, c)) => s.push(c),
                    None => return Err(PatternError),
                }
            }
        }
        if let Some(body) = r.strip_prefix('%') {
            let end = body.find('%').ok_or(PatternError)?;
            self.pos += end + 2;
            return Ok(Literal::Regex(regex(&body[..end])?));
        }
        let end = r
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '&' | '|' | ','))
            .unwrap_or(r.len());
        if end == 0 {
            return Err(PatternError);
        }
        let word = &r[..end];
        self.pos += end;
        Ok(match word.parse::<f64>() {
            Ok(n) if !word.contains('*') => Literal::Number(n),
            _ => Literal::Text(word.to_owned()),
        })
    }

    /// `$.a.b[0]` (also `$.a."b c"`? CloudWatch Logs takes plain keys only).
    fn selector(&mut self) -> Result<Selector, PatternError> {
        self.skip_ws();
        let r = self.rest();
        let body = r.strip_prefix('$').ok_or(PatternError)?;
        let mut steps = Vec::new();
        let mut i = 0;
        let b = body.as_bytes();
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut j = start;
                    while j < b.len()
                        && (b[j].is_ascii_alphanumeric()
                            || b[j] == b'_'
                            || b[j] == b'-'
                            || b[j] == b'@'
                            || b[j] == b':')
                    {
                        j += 1;
                    }
                    if j == start {
                        return Err(PatternError);
                    }
                    steps.push(Step::Key(body[start..j].to_owned()));
                    i = j;
                }
                b'[' => {
                    let close = body[i..].find(']').ok_or(PatternError)? + i;
                    let n = body[i + 1..close].trim().parse().map_err(|_| PatternError)?;
                    steps.push(Step::Index(n));
                    i = close + 1;
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Err(PatternError);
        }
        self.pos += 1 + i;
        Ok(steps)
    }

    /// A space-delimited field name.
    fn word(&mut self) -> Result<String, PatternError> {
        self.skip_ws();
        let r = self.rest();
        let end = r
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
            .unwrap_or(r.len());
        if end == 0 {
            return Err(PatternError);
        }
        self.pos += end;
        Ok(r[..end].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, msg: &str) -> bool {
        Pattern::parse(p).unwrap().matches(msg)
    }

    #[test]
    fn a_leaf_name_is_the_selectors_keys_joined_by_dots() {
        let sel = |keys: &[&str]| -> Selector { keys.iter().map(|k| Step::Key(k.to_string())).collect() };
        for (name, keys, want) in [
            ("a", &["a"][..], true),
            ("a.b", &["a", "b"][..], true),
            ("user.id.x", &["user", "id", "x"][..], true),
            ("ab", &["a"][..], false),
            ("a", &["ab"][..], false),
            ("a.bc", &["a", "b"][..], false),
            ("a.b", &["a"][..], false),
            ("a", &["a", "b"][..], false),
            ("a.", &["a"][..], false),
            ("a..b", &["a", "b"][..], false),
            ("ab.c", &["a", "c"][..], false),
            ("", &[][..], false),
            ("a", &[][..], false),
        ] {
            assert_eq!(names_path(name, &sel(keys)), want, "{name} {keys:?}");
        }
        assert!(!names_path("a.0", &vec![Step::Key("a".into()), Step::Index(0)]));
    }

    #[test]
    fn terms() {
        assert!(m("", "anything"));
        assert!(m("ERROR", "[ERROR] disk full"));
        assert!(!m("ERROR", "error: lower case"));
        assert!(m("ERROR disk", "[ERROR] disk full"));
        assert!(!m("ERROR net", "[ERROR] disk full"));
        assert!(m("?ERROR ?WARN", "WARN low"));
        assert!(!m("?ERROR ?WARN", "INFO ok"));
        assert!(m("ERROR -disk", "ERROR net"));
        assert!(!m("ERROR -disk", "ERROR disk"));
        assert!(m("\"disk full\"", "ERROR disk full now"));
        assert!(!m("\"disk full\"", "ERROR disk is full"));
        assert!(m("%[0-9]{3} ms%", "took 123 ms"));
    }

    #[test]
    fn reading_only_the_compared_fields_agrees_with_parsing() {
        let patterns = [
            r#"{ $.level = "error" }"#,
            "{ $.latency > 200 && $.user.id = 7 }",
            "{ ($.latency > 300) || ($.user.name = \"ann\") }",
            "{ $.ok IS TRUE }",
            "{ $.level != \"warn\" }",
            "{ $.gone = 1 }",
            "{ $.user = 7 }",
            "{ $.dup = 2 }",
            "{ $.n < 0 }",
        ];
        let messages = [
            r#"{"level":"error","latency":250,"user":{"id":7,"name":"ann"},"ok":true,"gone":null}"#,
            r#"{"level":"warn","latency":350,"user":{"id":"7"},"ok":"true"}"#,
            r#"{"level":"error","latency":250,"oops":[1,2}"#,
            r#"{"dup":1,"dup":2,"n":-1e2}"#,
            r#"["level","error"]"#,
            r#"{"level":"\u0065rror"}"#,
            "not json",
        ];
        for p in patterns {
            let pattern = Pattern::parse(p).unwrap();
            assert!(matches!(&pattern, Pattern::Json(_, _, Some(_))), "{p}");
            for msg in messages {
                assert_eq!(
                    pattern.matches(msg),
                    pattern.fields(msg).is_some(),
                    "{p} on {msg}"
                );
            }
        }
        for p in [
            "{ $.gone IS NULL }",
            "{ $.x NOT EXISTS }",
            "{ $.tags[1] = \"b\" }",
            "{ $.a.0 = 1 }",
        ] {
            assert!(
                matches!(Pattern::parse(p).unwrap(), Pattern::Json(_, _, None)),
                "{p}"
            );
        }
    }

    #[test]
    fn json() {
        let e = r#"{"level":"error","latency":250,"user":{"id":7,"name":"ann"},"tags":["a","b"],"ok":true,"gone":null}"#;
        assert!(m(r#"{ $.level = "error" }"#, e));
        assert!(m("{ $.level = err* }", e));
        assert!(!m(r#"{ $.level = "warn" }"#, e));
        assert!(m("{ $.latency > 200 && $.user.id = 7 }", e));
        assert!(!m("{ $.latency > 300 }", e));
        assert!(m("{ ($.latency > 300) || ($.user.name = \"ann\") }", e));
        assert!(m("{ $.tags[1] = \"b\" }", e));
        assert!(m("{ $.ok IS TRUE }", e));
        assert!(m("{ $.gone IS NULL }", e));
        assert!(m("{ $.missing NOT EXISTS }", e));
        assert!(!m("{ $.level NOT EXISTS }", e));
        assert!(m("{ $.level != \"warn\" }", e));
        assert!(m("{ $.level = %^err% }", e));
        assert!(!m("{ $.level = \"error\" }", "not json"));
        // The quick pass over unparsed text never hides a match.
        assert!(m(r#"{ $.level = "error" }"#, r#"{"level":"\u0065rror"}"#));
        assert!(m("{ $.ok = true }", r#"{"ok":true}"#));
        assert!(!m(r#"{ $.level = "error" }"#, r#"{"other":"x"}"#));
        assert!(Pattern::parse("{ $.level = }").is_err());
        assert!(Pattern::parse("{ $.level > \"x\" }").is_err());
    }

    #[test]
    fn space_delimited() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534"#;
        let p = "[ip, id, user, timestamp, request, status_code, bytes]";
        assert!(m(p, line));
        assert!(m(
            "[ip, id, user, timestamp, request, status_code = 404, bytes > 1000]",
            line
        ));
        assert!(m("[..., status_code = 4*, bytes]", line));
        assert!(!m("[..., status_code = 5*, bytes]", line));
        assert!(m(
            "[ip, ..., status_code = 400 || status_code = 404, bytes]",
            line
        ));
        assert!(m("[ip = 127.0.0.*, ...]", line));
        assert!(!m("[a, b]", line));
        let f = Pattern::parse("[ip, id, user, timestamp, request, status_code, bytes]").unwrap();
        let fields = f.fields(line).unwrap();
        assert_eq!(
            fields.get("$request").as_deref(),
            Some("GET /index.html HTTP/1.0")
        );
        assert_eq!(fields.get("$bytes").as_deref(), Some("1534"));
    }

    #[test]
    fn json_fields_for_metrics() {
        let p = Pattern::parse("{ $.latency > 0 }").unwrap();
        let f = p.fields(r#"{"latency": 12.5, "svc": "api"}"#).unwrap();
        assert_eq!(f.get("$.latency").as_deref(), Some("12.5"));
        assert_eq!(f.get("$.svc").as_deref(), Some("api"));
    }
}
