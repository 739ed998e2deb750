//! CloudWatch Logs Insights: StartQuery / GetQueryResults / StopQuery / DescribeQueries with
//! the query language's commands — `fields`, `filter`, `stats` (with `bin()` and the aggregate
//! functions), `sort`, `limit`, `parse`, `display`, `dedup` — over the stored events.
//!
//! An event is a record of fields: `@timestamp`, `@message`, `@logStream`, `@log`,
//! `@ingestionTime`, `@ptr`, and the fields of a JSON message, discovered and flattened
//! (`user.id`, `items.0.sku`) as Insights does. Commands run in order over the records;
//! `stats` turns them into one record per group. Results are strings, as Insights returns them
//! (`@timestamp` as `2026-12-03 09:15:00.000`).
//!
//! Queries run on the blocking pool as soon as they start; their results are kept in memory
//! (not across a restart) for the account that ran them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use regex::Regex;

use crate::api::*;
use crate::errors::*;
use crate::groups::{existing, group_name_of};
use crate::pattern::format_number;
use crate::scan;
use crate::store::{Event, Group, Store};

/// Rows a query returns at most (its `limit` may ask for fewer).
const MAX_ROWS: usize = 10_000;
/// Queries an account may have running at once.
const MAX_RUNNING: usize = 30;
/// Finished queries kept, per server.
const KEEP_FINISHED: usize = 1_000;

// ---- values ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Num(f64),
    Str(String),
    /// Milliseconds since the epoch (`@timestamp`, `bin()`), shown as Insights shows times.
    Time(i64),
}

impl V {
    fn num(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            V::Time(t) => Some(*t as f64),
            V::Str(s) => s.trim().parse().ok(),
            V::Null => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            V::Null => None,
            V::Num(n) => Some(format_number(*n)),
            V::Str(s) => Some(s.clone()),
            V::Time(t) => Some(format_time(*t)),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Num(n) => *n != 0.0,
            V::Str(s) => !s.is_empty() && s != "false",
            V::Time(_) => true,
        }
    }
}

fn format_time(millis: i64) -> String {
    // `2026-12-03T09:15:00.000Z` → `2026-12-03 09:15:00.000`
    let iso = Timestamp::from_millis(millis).to_iso8601();
    let iso = iso.trim_end_matches('Z').replacen('T', " ", 1);
    if iso.len() == 19 {
        format!("{iso}.000")
    } else {
        iso
    }
}

/// Insights' natural order: non-numbers before numbers, numbers by value, text in chunks of
/// digits (by length, then value) and of other characters (by code point).
fn natural(a: &V, b: &V) -> Ordering {
    let (na, nb) = (is_number(a), is_number(b));
    match (na, nb) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => match (a, b) {
            (V::Null, V::Null) => Ordering::Equal,
            (V::Null, _) => Ordering::Less,
            (_, V::Null) => Ordering::Greater,
            // Compared without copies: `stats … by` compares every event's group this way.
            (V::Str(x), V::Str(y)) => natural_text(x, y),
            _ => natural_text(&a.text().unwrap_or_default(), &b.text().unwrap_or_default()),
        },
    }
}

fn is_number(v: &V) -> Option<f64> {
    match v {
        V::Num(n) => Some(*n),
        V::Time(t) => Some(*t as f64),
        V::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    }
}

fn natural_text(a: &str, b: &str) -> Ordering {
    /// The runs of digits and of other characters, each with whether it is digits. A run
    /// ends where an ASCII digit starts or ends: always a character boundary.
    fn chunks(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut start = 0;
        std::iter::from_fn(move || {
            let bytes = s.as_bytes();
            let digit = bytes.get(start)?.is_ascii_digit();
            let end = bytes[start..]
                .iter()
                .position(|b| b.is_ascii_digit() != digit)
                .map_or(bytes.len(), |n| start + n);
            let chunk = (digit, &s[start..end]);
            start = end;
            Some(chunk)
        })
    }
    let (mut ca, mut cb) = (chunks(a), chunks(b));
    loop {
        let ((da, xa), (db, xb)) = match (ca.next(), cb.next()) {
            (Some(x), Some(y)) => (x, y),
            (x, y) => return x.is_some().cmp(&y.is_some()),
        };
        let o = if da && db {
            let (ta, tb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then(ta.cmp(tb))
        } else {
            xa.cmp(xb)
        };
        if o != Ordering::Equal {
            return o;
        }
    }
}

// ---- the query language ---------------------------------------------------------------

/// A field an expression reads: by name, and by its slot in the records of a query's
/// streaming pass once [`resolve`]d.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    slot: Option<usize>,
}

impl Field {
    fn new(name: String) -> Field {
        Field { name, slot: None }
    }
}

#[derive(Debug, Clone)]
enum Ex {
    Field(Field),
    Lit(V),
    Regex(Regex),
    Not(Box<Ex>),
    Neg(Box<Ex>),
    Bin(Box<Ex>, BinOp, Box<Ex>),
    Like(Box<Ex>, Box<Ex>, bool),
    In(Box<Ex>, Vec<Ex>, bool),
    Call(String, Vec<Ex>),
    /// `count(*)`'s argument.
    Star,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

#[derive(Debug, Clone)]
enum Command {
    Fields(Vec<(Ex, String)>),
    Display(Vec<String>),
    Filter(Ex),
    Stats(Vec<(Ex, String)>, Vec<(Ex, String)>),
    Sort(Vec<(Ex, bool)>),
    Limit(usize),
    Parse(Ex, ParseSpec),
    Dedup(Vec<String>),
}

#[derive(Debug, Clone)]
enum ParseSpec {
    /// A glob (`*` captures) and the names of the captures.
    Glob(Regex, Vec<String>),
    /// A regular expression with named groups.
    Regex(Regex, Vec<String>),
}

/// Why a query did not compile: StartQuery's MalformedQueryException.
fn malformed(message: impl Into<String>) -> ServiceError {
    ServiceError::client("MalformedQueryException", message)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64, String),
    Str(String),
    Regex(String),
    Op(&'static str),
}

/// Whether a `/` after these tokens opens a regular expression (after `like`, `=~`, `(`, `,`,
/// or `parse <field>`) rather than dividing.
fn regex_may_start(before: &[Tok]) -> bool {
    let word = |t: Option<&Tok>, w: &str| matches!(t, Some(Tok::Ident(x)) if x.eq_ignore_ascii_case(w));
    let n = before.len();
    n == 0
        || word(before.last(), "like")
        || matches!(before.last(), Some(Tok::Op("=~" | "(" | ",")))
        || (n >= 2 && word(before.get(n - 2), "parse"))
}

fn tokenize(s: &str) -> Result<Vec<Tok>, ServiceError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            let mut text = String::new();
            while j < b.len() && b[j] != c {
                if b[j] == b'\\' && j + 1 < b.len() {
                    j += 1;
                }
                let ch = s[j..].chars().next().unwrap_or(' ');
                text.push(ch);
                j += ch.len_utf8();
            }
            if j >= b.len() {
                return Err(malformed("unterminated string in query"));
            }
            out.push(Tok::Str(text));
            i = j + 1;
            continue;
        }
        if c == b'/' && regex_may_start(&out) {
            let mut j = i + 1;
            let mut text = String::new();
            while j < b.len() && b[j] != b'/' {
                if b[j] == b'\\' && j + 1 < b.len() && b[j + 1] == b'/' {
                    j += 1;
                }
                let ch = s[j..].chars().next().unwrap_or(' ');
                text.push(ch);
                j += ch.len_utf8();
            }
            if j >= b.len() {
                return Err(malformed("unterminated regular expression in query"));
            }
            out.push(Tok::Regex(text));
            i = j + 1;
            continue;
        }
        if c == b'`' {
            let end = s[i + 1..]
                .find('`')
                .ok_or_else(|| malformed("unterminated ` in query"))?;
            out.push(Tok::Ident(s[i + 1..i + 1 + end].to_owned()));
            i += end + 2;
            continue;
        }
        if c.is_ascii_digit() {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'.') {
                j += 1;
            }
            let word = &s[i..j];
            match word.parse::<f64>() {
                Ok(n) => out.push(Tok::Num(n, word.to_owned())),
                // `5m`, `1h`: a duration (bin's argument).
                Err(_) => out.push(Tok::Ident(word.to_owned())),
            }
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'@' || c == b'_' || c == b'$' {
            let mut j = i;
            while j < b.len()
                && (b[j].is_ascii_alphanumeric()
                    || matches!(b[j], b'@' | b'_' | b'.' | b'$' | b'-')
                        && !(b[j] == b'-' && j + 1 < b.len() && b[j + 1] == b' '))
            {
                j += 1;
            }
            // A trailing `-` belongs to an expression, not the name.
            let mut word = &s[i..j];
            while word.ends_with(['-', '.']) {
                word = &word[..word.len() - 1];
            }
            out.push(Tok::Ident(word.to_owned()));
            i += word.len();
            continue;
        }
        let two = if i + 1 < b.len() { &s[i..i + 2] } else { "" };
        let op: &'static str = match two {
            "!=" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            "=~" => "=~",
            "==" => "=",
            "&&" => "and",
            "||" => "or",
            _ => match c {
                b'=' => "=",
                b'<' => "<",
                b'>' => ">",
                b'(' => "(",
                b')' => ")",
                b'[' => "[",
                b']' => "]",
                b',' => ",",
                b'+' => "+",
                b'-' => "-",
                b'*' => "*",
                b'/' => "/",
                b'%' => "%",
                b'|' => "|",
                b'!' => "!",
                _ => {
                    return Err(malformed(format!(
                        "unexpected character '{}' in query",
                        c as char
                    )));
                }
            },
        };
        i += if op.len() == 2 && two.len() == 2 && (two == op || two == "==" || two == "&&" || two == "||") {
            2
        } else {
            1
        };
        out.push(Tok::Op(op));
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x.eq_ignore_ascii_case(w))
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let yes = self.is_op(op);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ServiceError> {
        if self.eat_op(op) {
            Ok(())
        } else {
            Err(malformed(format!("expected '{op}' in query")))
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.toks.len() || self.is_op("|")
    }

    fn expr(&mut self) -> Result<Ex, ServiceError> {
        let mut left = self.and()?;
        while self.eat_word("or") || self.eat_op("or") {
            left = Ex::Bin(Box::new(left), BinOp::Or, Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Ex, ServiceError> {
        let mut left = self.not()?;
        while self.eat_word("and") || self.eat_op("and") {
            left = Ex::Bin(Box::new(left), BinOp::And, Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Ex, ServiceError> {
        if self.eat_word("not") || self.eat_op("!") {
            return Ok(Ex::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Ex, ServiceError> {
        let left = self.additive()?;
        let negated = self.is_word("not")
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("in"));
        if negated {
            self.pos += 1;
        }
        if self.eat_word("like") || self.eat_op("=~") {
            let pattern = self.additive()?;
            return Ok(Ex::Like(Box::new(left), Box::new(pattern), negated));
        }
        if self.eat_word("in") {
            self.expect_op("[")?;
            let mut items = Vec::new();
            while !self.eat_op("]") {
                items.push(self.additive()?);
                if !self.eat_op(",") {
                    self.expect_op("]")?;
                    break;
                }
            }
            return Ok(Ex::In(Box::new(left), items, negated));
        }
        let op = match self.peek() {
            Some(Tok::Op("=")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            _ => return Ok(left),
        };
        self.pos += 1;
        Ok(Ex::Bin(Box::new(left), op, Box::new(self.additive()?)))
    }

    fn additive(&mut self) -> Result<Ex, ServiceError> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat_op("+") {
                BinOp::Add
            } else if self.eat_op("-") {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            left = Ex::Bin(Box::new(left), op, Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Ex, ServiceError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat_op("*") {
                BinOp::Mul
            } else if self.eat_op("/") {
                BinOp::Div
            } else if self.eat_op("%") {
                BinOp::Mod
            } else {
                return Ok(left);
            };
            left = Ex::Bin(Box::new(left), op, Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Ex, ServiceError> {
        if self.eat_op("-") {
            return Ok(Ex::Neg(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Op("(")) => {
                let e = self.expr()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Tok::Op("*")) => Ok(Ex::Star),
            Some(Tok::Num(n, _)) => Ok(Ex::Lit(V::Num(n))),
            Some(Tok::Str(s)) => Ok(Ex::Lit(V::Str(s))),
            Some(Tok::Regex(r)) => Regex::new(&r)
                .map(Ex::Regex)
                .map_err(|e| malformed(format!("invalid regular expression /{r}/: {e}"))),
            Some(Tok::Ident(name)) => {
                if self.eat_op("(") {
                    let mut args = Vec::new();
                    if !self.eat_op(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat_op(")") {
                                break;
                            }
                            self.expect_op(",")?;
                        }
                    }
                    Ok(Ex::Call(name.to_ascii_lowercase(), args))
                } else if name.eq_ignore_ascii_case("true") || name.eq_ignore_ascii_case("false") {
                    Ok(Ex::Lit(V::Num(if name.eq_ignore_ascii_case("true") {
                        1.0
                    } else {
                        0.0
                    })))
                } else {
                    Ok(Ex::Field(Field::new(name)))
                }
            }
            other => Err(malformed(format!("unexpected {other:?} in query"))),
        }
    }

    /// `expr [as name]`, named by its text when it has no alias.
    fn named(&mut self, start_text: &str) -> Result<(Ex, String), ServiceError> {
        let start = self.pos;
        let e = self.expr()?;
        let text = render(&self.toks[start..self.pos], start_text);
        let name = if self.eat_word("as") {
            match self.next() {
                Some(Tok::Ident(n)) => n,
                _ => return Err(malformed("expected a name after 'as'")),
            }
        } else {
            text
        };
        Ok((e, name))
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ServiceError>,
    ) -> Result<Vec<T>, ServiceError> {
        let mut out = vec![item(self)?];
        while self.eat_op(",") {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// The text of tokens as Insights names an unaliased column (`count(*)`, `avg(latency)`).
fn render(toks: &[Tok], _query: &str) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        let piece = match t {
            Tok::Ident(w) => w.clone(),
            Tok::Num(_, text) => text.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Regex(r) => format!("/{r}/"),
            Tok::Op(o) => (*o).to_owned(),
        };
        let tight = matches!(t, Tok::Op("(" | ")" | ","))
            || matches!(toks.get(i.wrapping_sub(1)), Some(Tok::Op("(")));
        if !out.is_empty() && !tight {
            out.push(' ');
        }
        out.push_str(&piece);
        if matches!(t, Tok::Op(",")) {
            out.push(' ');
        }
    }
    out
}

fn parse_query(query: &str) -> Result<Vec<Command>, ServiceError> {
    let toks = tokenize(query)?;
    let mut p = P { toks, pos: 0 };
    let mut commands = Vec::new();
    while p.pos < p.toks.len() {
        if p.eat_op("|") {
            continue;
        }
        let Some(Tok::Ident(cmd)) = p.next() else {
            return Err(malformed(
                "expected a command (fields, filter, stats, sort, limit, parse, display, dedup)",
            ));
        };
        let c = match cmd.to_ascii_lowercase().as_str() {
            "fields" => Command::Fields(p.list(|p| p.named(query))?),
            "display" => Command::Display(p.list(|p| match p.next() {
                Some(Tok::Ident(n)) => Ok(n),
                _ => Err(malformed("display takes field names")),
            })?),
            "filter" => Command::Filter(p.expr()?),
            "stats" => {
                let aggs = p.list(|p| p.named(query))?;
                for (e, _) in &aggs {
                    if !matches!(e, Ex::Call(f, _) if is_aggregate(f)) {
                        return Err(malformed(
                            "stats needs aggregate functions (count, sum, avg, min, max, …)",
                        ));
                    }
                }
                let by = if p.eat_word("by") {
                    p.list(|p| p.named(query))?
                } else {
                    Vec::new()
                };
                Command::Stats(aggs, by)
            }
            "sort" => Command::Sort(p.list(|p| {
                let e = p.expr()?;
                let desc = if p.eat_word("desc") {
                    true
                } else {
                    p.eat_word("asc");
                    false
                };
                Ok((e, desc))
            })?),
            "limit" => match p.next() {
                Some(Tok::Num(n, _)) if n >= 1.0 && n.fract() == 0.0 => Command::Limit(n as usize),
                _ => return Err(malformed("limit takes a positive whole number")),
            },
            "parse" => {
                let field = p.expr_until_pattern()?;
                let spec = match p.next() {
                    Some(Tok::Str(glob)) => {
                        if !p.eat_word("as") {
                            return Err(malformed("parse with a glob needs 'as' and names"));
                        }
                        let names = p.list(|p| match p.next() {
                            Some(Tok::Ident(n)) => Ok(n),
                            _ => Err(malformed("parse names fields")),
                        })?;
                        let stars = glob.matches('*').count();
                        if stars != names.len() {
                            return Err(malformed(format!(
                                "parse: the pattern has {stars} '*' but {} names",
                                names.len()
                            )));
                        }
                        let body = glob
                            .split('*')
                            .map(regex::escape)
                            .collect::<Vec<_>>()
                            .join("(.*?)");
                        let re = Regex::new(&body).map_err(|e| malformed(e.to_string()))?;
                        ParseSpec::Glob(re, names)
                    }
                    Some(Tok::Regex(r)) => {
                        let re = Regex::new(&r)
                            .map_err(|e| malformed(format!("invalid regular expression /{r}/: {e}")))?;
                        let names: Vec<String> = re.capture_names().flatten().map(str::to_owned).collect();
                        if names.is_empty() {
                            return Err(malformed(
                                "parse with a regular expression needs named groups (?<name>…)",
                            ));
                        }
                        ParseSpec::Regex(re, names)
                    }
                    _ => return Err(malformed("parse takes a \"glob\" with 'as' names, or a /regex/")),
                };
                Command::Parse(field, spec)
            }
            "dedup" => Command::Dedup(p.list(|p| match p.next() {
                Some(Tok::Ident(n)) => Ok(n),
                _ => Err(malformed("dedup takes field names")),
            })?),
            other => return Err(malformed(format!("unknown command '{other}'"))),
        };
        if !p.done() {
            return Err(malformed(format!(
                "unexpected {:?} after the {cmd} command",
                p.peek()
            )));
        }
        commands.push(c);
    }
    if commands.is_empty() {
        return Err(malformed("the query is empty"));
    }
    Ok(commands)
}

impl P {
    /// `parse`'s field: everything up to its pattern (a string or regex token).
    fn expr_until_pattern(&mut self) -> Result<Ex, ServiceError> {
        match self.next() {
            Some(Tok::Ident(f)) => Ok(Ex::Field(Field::new(f))),
            _ => Err(malformed("parse takes a field, then its pattern")),
        }
    }
}

fn is_aggregate(f: &str) -> bool {
    matches!(
        f,
        "count"
            | "count_distinct"
            | "sum"
            | "avg"
            | "min"
            | "max"
            | "stddev"
            | "pct"
            | "percentile"
            | "earliest"
            | "latest"
    )
}

// ---- evaluation -----------------------------------------------------------------------

/// One record: its fields. A field set to `Null` is absent (records are reused from event to
/// event, their fields reset rather than removed).
///
/// The records of a query's streaming pass hold the names the query reads in slots, which
/// its expressions find by index ([`resolve`]): a query over 10M events reads several fields
/// of each, and hashing their names was a third of its time. Other records (every leaf of a
/// query showing all fields, the groups `stats` makes) hold their fields by name.
#[derive(Debug, Clone, Default)]
struct Record {
    /// The slots' names; `@timestamp` is the first.
    layout: Option<Arc<[String]>>,
    slots: Vec<V>,
    by_name: HashMap<String, V, foldhash::fast::RandomState>,
}

impl Record {
    /// A record holding `layout`'s names (the first being `@timestamp`) in slots.
    fn with_layout(layout: &Arc<[String]>) -> Record {
        debug_assert_eq!(layout.first().map(String::as_str), Some("@timestamp"));
        Record {
            slots: vec![V::Null; layout.len()],
            layout: Some(layout.clone()),
            by_name: HashMap::default(),
        }
    }

    fn slot_of(&self, name: &str) -> Option<usize> {
        self.layout.as_ref()?.iter().position(|n| n == name)
    }

    fn get(&self, name: &str) -> Option<&V> {
        match self.slot_of(name) {
            Some(i) => Some(&self.slots[i]),
            None => self.by_name.get(name),
        }
    }

    /// The field an expression reads: by its slot when the record has the layout it was
    /// resolved against (a record with slots at all has), else by name.
    fn field(&self, f: &Field) -> Option<&V> {
        match f.slot {
            Some(i) if i < self.slots.len() => Some(&self.slots[i]),
            _ => self.get(&f.name),
        }
    }

    fn timestamp(&self) -> Option<&V> {
        match self.slots.first() {
            Some(t) => Some(t),
            None => self.by_name.get("@timestamp"),
        }
    }

    /// The slot of `name`, when the record has one.
    fn slot_mut(&mut self, name: &str) -> Option<&mut V> {
        let i = self.slot_of(name)?;
        Some(&mut self.slots[i])
    }

    /// Sets the slots of the JSON leaves read, emptying `leaves`.
    fn set_leaves(&mut self, leaves: &mut Leaves<'_, '_>) {
        for (name, leaf) in leaves.drain(..) {
            if let Some(slot) = self.slot_mut(&name) {
                *slot = leaf_value(leaf);
            }
        }
    }

    fn insert(&mut self, name: &str, v: V) {
        match self.slot_mut(name) {
            Some(slot) => *slot = v,
            None => {
                self.by_name.insert(name.to_owned(), v);
            }
        }
    }

    /// Every field's name and value, those in slots without the absent ones.
    fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        let slotted = self.layout.iter().flat_map(|names| names.iter().zip(&self.slots));
        slotted
            .filter(|(_, v)| !matches!(v, V::Null))
            .map(|(n, v)| (n.as_str(), v))
            .chain(self.by_name.iter().map(|(n, v)| (n.as_str(), v)))
    }

    /// No field set.
    fn reset(&mut self) {
        self.slots.iter_mut().for_each(|v| *v = V::Null);
        self.by_name.clear();
    }
}

/// Points the fields `e` reads at their slots in records of `layout`.
fn resolve(e: &mut Ex, layout: &[String]) {
    match e {
        Ex::Field(f) => f.slot = layout.iter().position(|n| *n == f.name),
        Ex::Lit(_) | Ex::Regex(_) | Ex::Star => {}
        Ex::Not(x) | Ex::Neg(x) => resolve(x, layout),
        Ex::Bin(a, _, b) | Ex::Like(a, b, _) => {
            resolve(a, layout);
            resolve(b, layout);
        }
        Ex::In(x, items, _) => {
            resolve(x, layout);
            items.iter_mut().for_each(|i| resolve(i, layout));
        }
        Ex::Call(_, args) => args.iter_mut().for_each(|a| resolve(a, layout)),
    }
}

/// The names an expression reads.
fn fields_of(e: &Ex, out: &mut Vec<String>) {
    match e {
        Ex::Field(f) => out.push(f.name.clone()),
        Ex::Lit(_) | Ex::Regex(_) | Ex::Star => {}
        Ex::Not(x) | Ex::Neg(x) => fields_of(x, out),
        Ex::Bin(a, _, b) | Ex::Like(a, b, _) => {
            fields_of(a, out);
            fields_of(b, out);
        }
        Ex::In(x, items, _) => {
            fields_of(x, out);
            items.iter().for_each(|i| fields_of(i, out));
        }
        // bin()'s argument is a period (`5m`), not a field.
        Ex::Call(f, _) if f == "bin" => {}
        Ex::Call(_, args) => args.iter().for_each(|a| fields_of(a, out)),
    }
}

/// The fields every event has, whatever its message.
const SYSTEM_FIELDS: [&str; 6] = [
    "@timestamp",
    "@ingestionTime",
    "@message",
    "@logStream",
    "@log",
    "@ptr",
];

/// What a query reads of each event: the fields it names, or all of them when its rows show
/// every field. Only those are built: a query over `@timestamp` never parses a message, one
/// over `user` never copies it.
struct Reads {
    all: bool,
    /// Every name a record of this query may carry (read, computed by `fields` or `parse`),
    /// `@timestamp` first: the layout of its records' slots.
    names: Arc<[String]>,
    /// The names that may be fields of a JSON message.
    json: crate::jsonscan::Names,
    /// When the first command is a `filter` reading only some of those: the JSON fields it
    /// reads, then the rest, read only for the events it keeps (most of a selective filter's
    /// events never build the others).
    staged: Option<(crate::jsonscan::Names, crate::jsonscan::Names)>,
    /// When the first command is a `filter`: a message's JSON is read only until nothing after
    /// can hold a field it reads, and checked to its end only when the filter's verdict
    /// depends on whether it is JSON (see [`Reads::first_filter`]).
    settle: bool,
    /// Whether that filter reads only JSON fields: its verdict on a record without them is
    /// then the same for every event, found once.
    settle_verdict_fixed: bool,
    /// Whether the query reads `@ingestionTime` (rarely: it is set only then).
    ingestion: bool,
    /// System fields the per-record commands read (built for every event) and those only
    /// later commands or the rows show (built for the records kept).
    early: System,
    late: System,
}

/// Which of the built system fields (those costing a copy or a format) a record carries.
#[derive(Debug, Clone, Copy, Default)]
struct System {
    message: bool,
    ptr: bool,
    stream: bool,
    log: bool,
}

impl System {
    fn of(names: &[String]) -> System {
        let has = |n: &str| names.iter().any(|x| x == n);
        System {
            message: has("@message"),
            ptr: has("@ptr"),
            stream: has("@logStream"),
            log: has("@log"),
        }
    }

    /// These fields of event `e` into `r`, by `set`.
    fn build(self, e: &Event, group: &Group, stream: &str, ptr_prefix: &str, mut set: impl FnMut(&str, V)) {
        if self.message {
            set("@message", V::Str(e.message().to_owned()));
        }
        if self.stream {
            set("@logStream", V::Str(stream.to_owned()));
        }
        if self.log {
            set("@log", V::Str(format!("{}:{}", group.key.0, group.key.2)));
        }
        if self.ptr {
            set("@ptr", V::Str(format!("{ptr_prefix}/{}", e.event_id())));
        }
    }
}

impl Reads {
    /// What `commands` read, of which the first `streaming` run per record.
    fn of(commands: &[Command], streaming: usize) -> Reads {
        let aggregated = commands.iter().any(|c| matches!(c, Command::Stats(..)));
        // Names the commands read before any `stats` (after it, records are its groups),
        // and names they make; a name read is an event's field unless made before.
        let (mut read, mut made): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        fn reads_of(e: &Ex, made: &[String], read: &mut Vec<String>) {
            let mut r = Vec::new();
            fields_of(e, &mut r);
            read.extend(r.into_iter().filter(|n| !made.contains(n)));
        }
        for c in commands {
            match c {
                Command::Fields(list) => {
                    for (e, n) in list {
                        reads_of(e, &made, &mut read);
                        made.push(n.clone());
                    }
                }
                Command::Filter(e) => reads_of(e, &made, &mut read),
                Command::Sort(keys) => keys.iter().for_each(|(e, _)| reads_of(e, &made, &mut read)),
                Command::Parse(e, spec) => {
                    reads_of(e, &made, &mut read);
                    let (ParseSpec::Glob(_, out) | ParseSpec::Regex(_, out)) = spec;
                    made.extend(out.iter().cloned());
                }
                Command::Display(list) | Command::Dedup(list) => {
                    read.extend(list.iter().filter(|n| !made.contains(n)).cloned())
                }
                Command::Stats(aggs, by) => {
                    aggs.iter()
                        .chain(by)
                        .for_each(|(e, _)| reads_of(e, &made, &mut read));
                    break;
                }
                Command::Limit(_) => {}
            }
        }
        let mut names: Vec<String> = vec!["@timestamp".to_owned()];
        if !aggregated {
            names.push("@ptr".to_owned());
        }
        names.extend(read.iter().cloned());
        names.extend(made);
        names.sort();
        names.dedup();
        // `@timestamp` first: a record's layout starts with it (see [`Record::timestamp`]).
        names.retain(|n| n != "@timestamp");
        names.insert(0, "@timestamp".to_owned());
        let all = shown_fields(commands).is_none() && !aggregated;
        let mut early_reads = Vec::new();
        for c in &commands[..streaming] {
            match c {
                // `fields @message` only names what the row shows: nothing to read yet.
                Command::Fields(list) => list
                    .iter()
                    .filter(|(e, n)| !matches!(e, Ex::Field(f) if &f.name == n))
                    .for_each(|(e, _)| fields_of(e, &mut early_reads)),
                Command::Filter(e) | Command::Parse(e, _) => fields_of(e, &mut early_reads),
                _ => {}
            }
        }
        let early = System::of(&early_reads);
        let wanted = if all {
            System {
                message: true,
                ptr: true,
                stream: true,
                log: true,
            }
        } else {
            System::of(&names)
        };
        let json_names: Vec<&str> = read
            .iter()
            .map(String::as_str)
            .filter(|n| !SYSTEM_FIELDS.contains(n))
            .collect();
        let staged = match commands.first() {
            Some(Command::Filter(e)) if !all && streaming > 0 => {
                let mut first = Vec::new();
                fields_of(e, &mut first);
                let (now, later): (Vec<&str>, Vec<&str>) =
                    json_names.iter().partition(|n| first.iter().any(|f| f == *n));
                (!now.is_empty() && !later.is_empty()).then(|| {
                    (
                        crate::jsonscan::Names::new(now),
                        crate::jsonscan::Names::new(later),
                    )
                })
            }
            _ => None,
        };
        let settle = !all && streaming > 0 && matches!(commands.first(), Some(Command::Filter(_)));
        let settle_verdict_fixed = match commands.first() {
            Some(Command::Filter(e)) if settle => {
                let mut read = Vec::new();
                fields_of(e, &mut read);
                read.iter().all(|n| json_names.contains(&n.as_str()))
            }
            _ => false,
        };
        Reads {
            all,
            settle,
            settle_verdict_fixed,
            ingestion: names.iter().any(|n| n == "@ingestionTime"),
            json: crate::jsonscan::Names::new(json_names.iter().copied()),
            staged,
            early,
            late: System {
                message: wanted.message && !early.message,
                ptr: wanted.ptr && !early.ptr,
                stream: wanted.stream && !early.stream,
                log: wanted.log && !early.log,
            },
            names: names.into(),
        }
    }

    /// A record to fill event after event.
    fn record(&self) -> Record {
        if self.all {
            Record::default()
        } else {
            Record::with_layout(&self.names)
        }
    }

    /// Points the fields that the streaming commands and the `stats` after them read at
    /// their slots in this query's records.
    fn resolve(&self, streaming: &mut [Command], stats: Option<&mut Command>) {
        if self.all {
            return;
        }
        for c in streaming.iter_mut().chain(stats) {
            match c {
                Command::Fields(list) => list.iter_mut().for_each(|(e, _)| resolve(e, &self.names)),
                Command::Filter(e) | Command::Parse(e, _) => resolve(e, &self.names),
                Command::Stats(aggs, by) => aggs
                    .iter_mut()
                    .chain(by.iter_mut())
                    .for_each(|(e, _)| resolve(e, &self.names)),
                _ => {}
            }
        }
    }

    /// Adds the fields a kept record shows that the per-record commands did not need.
    fn complete(&self, r: &mut Record, group: &Group, stream: &str, ptr_prefix: &str, e: &Event) {
        self.late
            .build(e, group, stream, ptr_prefix, |name, v| r.insert(name, v));
    }

    /// Makes `r` the record of event `e`; `true` when its message's JSON was read by a settled
    /// scan, not checked to its end.
    fn fill<'n, 'e>(
        &'n self,
        r: &mut Record,
        group: &Group,
        stream: &str,
        ptr_prefix: &str,
        e: &'e Event,
        leaves: &mut Leaves<'n, 'e>,
    ) -> bool {
        // The message's text is touched only when the query reads it: a query over
        // timestamps alone never loads it.
        let json = || e.message().trim_start().starts_with('{');
        if self.all {
            let msg = e.message();
            r.reset();
            if json() && crate::jsonscan::leaves(msg, &crate::jsonscan::Want::All, leaves) {
                for (name, leaf) in leaves.drain(..) {
                    r.insert(&name, leaf_value(leaf));
                }
            }
            r.insert("@timestamp", V::Time(e.timestamp));
            r.insert("@ingestionTime", V::Time(e.ingestion));
            self.early
                .build(e, group, stream, ptr_prefix, |name, v| r.insert(name, v));
            return false;
        }
        r.reset();
        // The record has the layout of `self.names`: every name set below is in it.
        r.slots[0] = V::Time(e.timestamp);
        let mut set = |name: &str, v: V| {
            if let Some(slot) = r.slot_mut(name) {
                *slot = v;
            }
        };
        if self.ingestion {
            set("@ingestionTime", V::Time(e.ingestion));
        }
        self.early.build(e, group, stream, ptr_prefix, &mut set);
        let names = self.first_names();
        if names.is_empty() || !json() {
            return false;
        }
        use crate::jsonscan::Scan;
        let read = if self.settle {
            crate::jsonscan::leaves_settled(e.message(), names, leaves)
        } else if crate::jsonscan::leaves(e.message(), &crate::jsonscan::Want::Named(names), leaves) {
            Scan::Json
        } else {
            Scan::NotJson
        };
        r.set_leaves(leaves);
        read == Scan::Unchecked
    }

    /// The JSON fields a record is filled with first.
    fn first_names(&self) -> &crate::jsonscan::Names {
        match &self.staged {
            Some((first, _)) => first,
            None => &self.json,
        }
    }

    /// The first filter's verdict on record `r` of event `e`, whose JSON a settled scan did
    /// not check to its end. A message that is not JSON has none of the fields read, so it is
    /// checked only when the verdict without them differs; `r` is left as the filter saw it
    /// when kept, the fields after the filter read in (the read that checks the message's
    /// JSON, so a kept event is read once more, not twice). `fixed` holds the verdict without
    /// them once found, when it is the same for every event.
    fn first_filter<'n, 'e>(
        &'n self,
        filter: &Command,
        r: &mut Record,
        e: &'e Event,
        leaves: &mut Leaves<'n, 'e>,
        fixed: &mut Option<bool>,
    ) -> Result<bool, ServiceError> {
        let mut without_json = |r: &mut Record| -> Result<bool, ServiceError> {
            if *fixed == Some(false) {
                return Ok(false);
            }
            for name in self.first_names().iter() {
                if let Some(slot) = r.slot_mut(name) {
                    *slot = V::Null;
                }
            }
            let kept = apply(filter, r)?;
            if self.settle_verdict_fixed {
                *fixed = Some(kept);
            }
            Ok(kept)
        };
        Ok(if apply(filter, r)? {
            self.fill_rest(r, e, leaves) || without_json(r)?
        } else {
            without_json(r)? && !self.fill_rest(r, e, leaves)
        })
    }

    /// After the first filter kept event `e`: the JSON fields it did not read. Whether the
    /// message is a JSON object (the read checks it to its end).
    fn fill_rest<'n, 'e>(&'n self, r: &mut Record, e: &'e Event, leaves: &mut Leaves<'n, 'e>) -> bool {
        let Some((_, rest)) = &self.staged else {
            return crate::jsonscan::is_json_object(e.message());
        };
        let json = crate::jsonscan::leaves(e.message(), &crate::jsonscan::Want::Named(rest), leaves);
        r.set_leaves(leaves);
        json
    }
}

/// A reused buffer of a message's JSON leaves.
type Leaves<'n, 'e> = Vec<(crate::jsonscan::Name<'n>, crate::jsonscan::Leaf<'e>)>;

fn leaf_value(leaf: crate::jsonscan::Leaf<'_>) -> V {
    match leaf {
        crate::jsonscan::Leaf::Num(n) => V::Num(n),
        crate::jsonscan::Leaf::Str(s) => V::Str(s.into_owned()),
        crate::jsonscan::Leaf::Bool(b) => V::Str(b.to_string()),
    }
}

/// Text every event a query keeps must contain, from its first command when that is a
/// `filter` requiring `field = "text"`: an event without the text (and without a backslash,
/// which could be an escape spelling it differently) cannot match, and is not parsed.
fn required_text(commands: &[Command]) -> Vec<String> {
    fn walk(e: &Ex, out: &mut Vec<String>) {
        match e {
            Ex::Bin(a, BinOp::And, b) => {
                walk(a, out);
                walk(b, out);
            }
            Ex::Bin(a, BinOp::Eq, b) => {
                let (field, lit) = match (&**a, &**b) {
                    (Ex::Field(f), Ex::Lit(V::Str(s))) | (Ex::Lit(V::Str(s)), Ex::Field(f)) => (&f.name, s),
                    _ => return,
                };
                // A number compares by value (`n = "07"` matches 7), and characters JSON
                // escapes are spelt otherwise in the message.
                let plain = !lit.is_empty()
                    && lit.trim().parse::<f64>().is_err()
                    && !lit.chars().any(|c| c == '"' || c == '\\' || c.is_control());
                if plain && (field == "@message" || !field.starts_with('@')) {
                    out.push(lit.clone());
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(Command::Filter(e)) = commands.first() {
        walk(e, &mut out);
    }
    out
}

fn duration_millis(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = text[..split].parse().ok()?;
    let unit = match &text[split..] {
        "ms" => 1,
        "s" | "sec" | "second" | "seconds" => 1000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 7 * 86_400_000,
        _ => return None,
    };
    Some(n * unit)
}

fn eval(e: &Ex, r: &Record) -> Result<V, ServiceError> {
    Ok(match e {
        Ex::Field(f) => r.field(f).cloned().unwrap_or(V::Null),
        Ex::Lit(v) => v.clone(),
        Ex::Regex(re) => V::Str(re.as_str().to_owned()),
        Ex::Star => V::Num(1.0),
        Ex::Not(x) => V::Num(if eval(x, r)?.truthy() { 0.0 } else { 1.0 }),
        Ex::Neg(x) => eval(x, r)?.num().map_or(V::Null, |n| V::Num(-n)),
        Ex::Like(x, pattern, negated) => {
            let text = eval(x, r)?.text();
            let hit = match (&text, pattern.as_ref()) {
                (None, _) => false,
                (Some(t), Ex::Regex(re)) => re.is_match(t),
                (Some(t), other) => eval(other, r)?.text().is_some_and(|p| t.contains(&p)),
            };
            V::Num(if hit != *negated { 1.0 } else { 0.0 })
        }
        Ex::In(x, items, negated) => {
            let v = eval(x, r)?;
            let mut hit = false;
            for i in items {
                if equal(&v, &eval(i, r)?) {
                    hit = true;
                    break;
                }
            }
            V::Num(if hit != *negated { 1.0 } else { 0.0 })
        }
        Ex::Bin(a, op, b) => {
            // Fields and literals are compared where they are: a filter's comparison is
            // evaluated for every event, and copying its operands had been most of its cost.
            let (owned_x, owned_y);
            let x = match operand(a, r) {
                Some(v) => v,
                None => {
                    owned_x = eval(a, r)?;
                    &owned_x
                }
            };
            let y = match operand(b, r) {
                Some(v) => v,
                None => {
                    owned_y = eval(b, r)?;
                    &owned_y
                }
            };
            let bool_v = |b: bool| V::Num(if b { 1.0 } else { 0.0 });
            match op {
                BinOp::And => bool_v(x.truthy() && y.truthy()),
                BinOp::Or => bool_v(x.truthy() || y.truthy()),
                BinOp::Eq => bool_v(equal(x, y)),
                BinOp::Ne => bool_v(!matches!(x, V::Null) && !equal(x, y)),
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let o = match (x.num(), y.num()) {
                        (Some(p), Some(q)) => p.partial_cmp(&q),
                        _ => match (x.text(), y.text()) {
                            (Some(p), Some(q)) => Some(p.cmp(&q)),
                            _ => None,
                        },
                    };
                    bool_v(match (o, op) {
                        (None, _) => false,
                        (Some(o), BinOp::Lt) => o == Ordering::Less,
                        (Some(o), BinOp::Le) => o != Ordering::Greater,
                        (Some(o), BinOp::Gt) => o == Ordering::Greater,
                        (Some(o), _) => o != Ordering::Less,
                    })
                }
                arith => match (x.num(), y.num()) {
                    (Some(p), Some(q)) => V::Num(match arith {
                        BinOp::Add => p + q,
                        BinOp::Sub => p - q,
                        BinOp::Mul => p * q,
                        BinOp::Div if q != 0.0 => p / q,
                        BinOp::Mod if q != 0.0 => p % q,
                        _ => return Ok(V::Null),
                    }),
                    _ => V::Null,
                },
            }
        }
        Ex::Call(f, args) => call(f, args, r)?,
    })
}

/// A field's value or a literal, borrowed; `None` for an expression to evaluate.
fn operand<'r>(e: &'r Ex, r: &'r Record) -> Option<&'r V> {
    static NULL: V = V::Null;
    match e {
        Ex::Field(f) => Some(r.field(f).unwrap_or(&NULL)),
        Ex::Lit(v) => Some(v),
        _ => None,
    }
}

fn equal(x: &V, y: &V) -> bool {
    match (x, y) {
        (V::Null, _) | (_, V::Null) => false,
        _ => match (x.num(), y.num()) {
            (Some(p), Some(q)) => p == q,
            _ => x.text() == y.text(),
        },
    }
}

fn call(f: &str, args: &[Ex], r: &Record) -> Result<V, ServiceError> {
    let arg = |i: usize| -> Result<V, ServiceError> {
        args.get(i)
            .map(|a| eval(a, r))
            .unwrap_or_else(|| Err(malformed(format!("{f}() needs more arguments"))))
    };
    let text = |i: usize| -> Result<Option<String>, ServiceError> { Ok(arg(i)?.text()) };
    Ok(match f {
        "bin" => {
            let period = match args.first() {
                Some(Ex::Field(d)) => duration_millis(&d.name),
                Some(Ex::Lit(V::Num(n))) => Some(*n as i64 * 1000),
                _ => None,
            }
            .filter(|p| *p > 0)
            .ok_or_else(|| malformed("bin() takes a period such as 5m or 1h"))?;
            match r.timestamp() {
                Some(V::Time(t)) => V::Time(t.div_euclid(period) * period),
                _ => V::Null,
            }
        }
        "ispresent" => V::Num(
            if matches!(args.first(), Some(Ex::Field(n)) if r.field(n).is_some_and(|v| !matches!(v, V::Null)))
            {
                1.0
            } else {
                0.0
            },
        ),
        "isempty" => V::Num(if text(0)?.is_none_or(|t| t.is_empty()) {
            1.0
        } else {
            0.0
        }),
        "isblank" => V::Num(if text(0)?.is_none_or(|t| t.trim().is_empty()) {
            1.0
        } else {
            0.0
        }),
        "coalesce" => {
            for a in args {
                let v = eval(a, r)?;
                if !matches!(v, V::Null) {
                    return Ok(v);
                }
            }
            V::Null
        }
        "strlen" => text(0)?.map_or(V::Null, |t| V::Num(t.chars().count() as f64)),
        "toupper" => text(0)?.map_or(V::Null, |t| V::Str(t.to_uppercase())),
        "tolower" => text(0)?.map_or(V::Null, |t| V::Str(t.to_lowercase())),
        "trim" => text(0)?.map_or(V::Null, |t| V::Str(t.trim().to_owned())),
        "concat" => {
            let mut s = String::new();
            for i in 0..args.len() {
                s.push_str(&text(i)?.unwrap_or_default());
            }
            V::Str(s)
        }
        "substr" => {
            let t = text(0)?.unwrap_or_default();
            let start = arg(1)?.num().unwrap_or(0.0).max(0.0) as usize;
            let chars: Vec<char> = t.chars().collect();
            let len = if args.len() > 2 {
                arg(2)?.num().unwrap_or(0.0).max(0.0) as usize
            } else {
                chars.len()
            };
            V::Str(chars.iter().skip(start).take(len).collect())
        }
        "replace" => match (text(0)?, text(1)?, text(2)?) {
            (Some(t), Some(a), Some(b)) => V::Str(t.replace(&a, &b)),
            _ => V::Null,
        },
        "strcontains" => V::Num(match (text(0)?, text(1)?) {
            (Some(t), Some(s)) if t.contains(&s) => 1.0,
            _ => 0.0,
        }),
        "abs" => arg(0)?.num().map_or(V::Null, |n| V::Num(n.abs())),
        "ceil" => arg(0)?.num().map_or(V::Null, |n| V::Num(n.ceil())),
        "floor" => arg(0)?.num().map_or(V::Null, |n| V::Num(n.floor())),
        "sqrt" => arg(0)?.num().map_or(V::Null, |n| V::Num(n.sqrt())),
        "log" => arg(0)?.num().map_or(V::Null, |n| V::Num(n.ln())),
        "greatest" | "least" => {
            let mut best: Option<f64> = None;
            for i in 0..args.len() {
                if let Some(n) = arg(i)?.num() {
                    best = Some(match best {
                        None => n,
                        Some(b) if f == "greatest" => b.max(n),
                        Some(b) => b.min(n),
                    });
                }
            }
            best.map_or(V::Null, V::Num)
        }
        "fromMillis" | "frommillis" => arg(0)?.num().map_or(V::Null, |n| V::Time(n as i64)),
        "tomillis" => arg(0)?.num().map_or(V::Null, V::Num),
        f if is_aggregate(f) => return Err(malformed(format!("{f}() may only be used in stats"))),
        other => return Err(malformed(format!("unknown function {other}()"))),
    })
}

/// An aggregate's running state over one group's records.
#[derive(Debug, Clone, Default)]
struct Acc {
    count: f64,
    sum: f64,
    sum_sq: f64,
    min: Option<V>,
    max: Option<V>,
    values: Vec<f64>,
    distinct: HashSet<String>,
    /// (timestamp, value) of the earliest and latest record.
    first: Option<(i64, V)>,
    last: Option<(i64, V)>,
}

impl Acc {
    /// Adds the state of the records after this one's (whatever the aggregate: each only
    /// touches its own parts).
    fn absorb(&mut self, later: Acc) {
        self.count += later.count;
        self.sum += later.sum;
        self.sum_sq += later.sum_sq;
        if let Some(m) = later.min
            && self.min.as_ref().is_none_or(|x| natural(&m, x) == Ordering::Less)
        {
            self.min = Some(m);
        }
        if let Some(m) = later.max
            && self
                .max
                .as_ref()
                .is_none_or(|x| natural(&m, x) == Ordering::Greater)
        {
            self.max = Some(m);
        }
        self.values.extend(later.values);
        self.distinct.extend(later.distinct);
        if let Some((t, v)) = later.first
            && self.first.as_ref().is_none_or(|(s, _)| t < *s)
        {
            self.first = Some((t, v));
        }
        if let Some((t, v)) = later.last
            && self.last.as_ref().is_none_or(|(s, _)| t >= *s)
        {
            self.last = Some((t, v));
        }
    }
}

fn accumulate(f: &str, args: &[Ex], r: &Record, acc: &mut Acc) -> Result<(), ServiceError> {
    let v = match args.first() {
        Some(Ex::Star) | None => V::Num(1.0),
        Some(a) => eval(a, r)?,
    };
    if matches!(v, V::Null) {
        return Ok(());
    }
    let ts = || match r.timestamp() {
        Some(V::Time(t)) => *t,
        _ => 0,
    };
    match f {
        "count" => acc.count += 1.0,
        "count_distinct" => {
            acc.distinct.insert(v.text().unwrap_or_default());
        }
        "min" | "max" => {
            if acc.min.as_ref().is_none_or(|m| natural(&v, m) == Ordering::Less) {
                acc.min = Some(v.clone());
            }
            if acc
                .max
                .as_ref()
                .is_none_or(|m| natural(&v, m) == Ordering::Greater)
            {
                acc.max = Some(v);
            }
        }
        "earliest" | "latest" => {
            let ts = ts();
            if acc.first.as_ref().is_none_or(|(t, _)| ts < *t) {
                acc.first = Some((ts, v.clone()));
            }
            if acc.last.as_ref().is_none_or(|(t, _)| ts >= *t) {
                acc.last = Some((ts, v));
            }
        }
        _ => {
            if let Some(n) = v.num() {
                acc.count += 1.0;
                acc.sum += n;
                acc.sum_sq += n * n;
                if matches!(f, "pct" | "percentile") {
                    acc.values.push(n);
                }
            }
        }
    }
    Ok(())
}

fn finish(f: &str, args: &[Ex], acc: &mut Acc) -> Result<V, ServiceError> {
    Ok(match f {
        "count" => V::Num(acc.count),
        "count_distinct" => V::Num(acc.distinct.len() as f64),
        "sum" => V::Num(acc.sum),
        "avg" if acc.count > 0.0 => V::Num(acc.sum / acc.count),
        "stddev" if acc.count > 1.0 => {
            let mean = acc.sum / acc.count;
            V::Num(
                ((acc.sum_sq - acc.count * mean * mean) / (acc.count - 1.0))
                    .max(0.0)
                    .sqrt(),
            )
        }
        "min" => acc.min.clone().unwrap_or(V::Null),
        "max" => acc.max.clone().unwrap_or(V::Null),
        "earliest" => acc.first.clone().map_or(V::Null, |(_, v)| v),
        "latest" => acc.last.clone().map_or(V::Null, |(_, v)| v),
        "pct" | "percentile" => {
            let p = match args.get(1) {
                Some(Ex::Lit(V::Num(p))) => *p,
                _ => {
                    return Err(malformed(format!(
                        "{f}() takes a field and a percentile, pct(latency, 95)"
                    )));
                }
            };
            if acc.values.is_empty() {
                V::Null
            } else {
                acc.values
                    .sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
                let rank = ((p / 100.0) * acc.values.len() as f64).ceil() as usize;
                V::Num(acc.values[rank.clamp(1, acc.values.len()) - 1])
            }
        }
        _ => V::Null,
    })
}

/// The result of running a query.
struct Outcome {
    rows: Vec<Vec<(String, V)>>,
    scanned: f64,
    matched: f64,
    bytes: f64,
}

/// `stats`' groups while records stream in.
struct Grouper<'a> {
    aggs: &'a [(Ex, String)],
    by: &'a [(Ex, String)],
    groups: BTreeMap<Vec<OrdV>, (Vec<V>, Vec<Acc>)>,
}

impl<'a> Grouper<'a> {
    fn new(aggs: &'a [(Ex, String)], by: &'a [(Ex, String)]) -> Self {
        Grouper {
            aggs,
            by,
            groups: BTreeMap::new(),
        }
    }

    fn add(&mut self, r: &Record) -> Result<(), ServiceError> {
        let mut key = Vec::with_capacity(self.by.len());
        for (e, _) in self.by {
            key.push(OrdV(eval(e, r)?));
        }
        let n = self.aggs.len();
        let entry = self
            .groups
            .entry(key)
            .or_insert_with_key(|key| (key.iter().map(|k| k.0.clone()).collect(), vec![Acc::default(); n]));
        for ((e, _), acc) in self.aggs.iter().zip(entry.1.iter_mut()) {
            if let Ex::Call(f, args) = e {
                accumulate(f, args, r, acc)?;
            }
        }
        Ok(())
    }

    /// Adds the groups of the records after this grouper's.
    fn absorb(&mut self, later: Grouper<'a>) {
        for (key, (keys, accs)) in later.groups {
            match self.groups.entry(key) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert((keys, accs));
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    for (a, b) in o.get_mut().1.iter_mut().zip(accs) {
                        a.absorb(b);
                    }
                }
            }
        }
    }

    /// One record per group (one in all when there is no `by` and nothing matched).
    fn finish(mut self) -> Result<Vec<Record>, ServiceError> {
        if self.groups.is_empty() && self.by.is_empty() {
            self.groups
                .insert(Vec::new(), (Vec::new(), vec![Acc::default(); self.aggs.len()]));
        }
        let mut out = Vec::with_capacity(self.groups.len());
        for (_, (keys, mut accs)) in self.groups {
            let mut r = Record::default();
            for ((_, name), v) in self.by.iter().zip(keys) {
                r.insert(name, v);
            }
            for ((e, name), acc) in self.aggs.iter().zip(accs.iter_mut()) {
                if let Ex::Call(f, args) = e {
                    r.insert(name, finish(f, args, acc)?);
                }
            }
            out.push(r);
        }
        Ok(out)
    }
}

/// Applies a per-record command; `false` when a filter drops the record.
fn apply(c: &Command, r: &mut Record) -> Result<bool, ServiceError> {
    match c {
        Command::Fields(list) => {
            for (e, name) in list {
                let v = eval(e, r)?;
                r.insert(name, v);
            }
        }
        Command::Filter(e) => return Ok(eval(e, r)?.truthy()),
        Command::Parse(field, spec) => {
            let Some(text) = eval(field, r)?.text() else {
                return Ok(true);
            };
            let (re, names, by_name) = match spec {
                ParseSpec::Glob(re, names) => (re, names, false),
                ParseSpec::Regex(re, names) => (re, names, true),
            };
            if let Some(caps) = re.captures(&text) {
                for (i, n) in names.iter().enumerate() {
                    let m = if by_name { caps.name(n) } else { caps.get(i + 1) };
                    if let Some(m) = m {
                        r.insert(n, V::Str(m.as_str().to_owned()));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(true)
}

/// Which fields the results show: `fields` adds, `display` replaces, `stats` makes its own;
/// `None` shows every field.
fn shown_fields(commands: &[Command]) -> Option<Vec<String>> {
    let mut shown: Option<Vec<String>> = None;
    for c in commands {
        match c {
            Command::Fields(list) => {
                let s = shown.get_or_insert_with(Vec::new);
                for (_, n) in list {
                    if !s.contains(n) {
                        s.push(n.clone());
                    }
                }
            }
            Command::Display(names) => shown = Some(names.clone()),
            Command::Stats(aggs, by) => {
                shown = Some(by.iter().chain(aggs.iter()).map(|(_, n)| n.clone()).collect())
            }
            _ => {}
        }
    }
    shown
}

/// Where an event was read: its timestamp, its stream's place in the scan, its id.
type Pos = (i64, usize, u64);

/// Newest first: Insights shows the latest events unless the query sorts. Equal timestamps
/// keep the order of the scan (stream by stream, each by arrival), whatever order the
/// chunks were read in.
fn newest_first(records: &mut [(Pos, Record)]) {
    records.sort_by(|(a, _), (b, _)| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
}

/// Whether an event at `pos` comes after `floor` newest first.
fn after(pos: Pos, floor: Pos) -> bool {
    pos.0 < floor.0 || (pos.0 == floor.0 && (pos.1, pos.2) > (floor.1, floor.2))
}

/// `sort`: stable, by each key in turn (of each item's record).
fn sorted<T>(
    items: Vec<T>,
    keys: &[(Ex, bool)],
    record: impl Fn(&T) -> &Record,
) -> Result<Vec<T>, ServiceError> {
    let mut keyed: Vec<(Vec<V>, T)> = items
        .into_iter()
        .map(|r| {
            Ok((
                keys.iter()
                    .map(|(e, _)| eval(e, record(&r)))
                    .collect::<Result<Vec<_>, ServiceError>>()?,
                r,
            ))
        })
        .collect::<Result<_, ServiceError>>()?;
    keyed.sort_by(|(a, _), (b, _)| {
        for ((x, y), (_, desc)) in a.iter().zip(b.iter()).zip(keys.iter()) {
            let o = natural(x, y);
            if o != Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    });
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

/// A `sort`'s keys: each expression, and whether descending.
type SortKeys<'a> = &'a [(Ex, bool)];

/// How many records a query without `stats` can show at most, and in what order: when what
/// follows its per-record commands is an optional `sort` and then a `limit` (or nothing:
/// the result's own limit), only that many of the records, first in that order, can reach
/// the result, so a scan keeps no more (`fields @message | sort @timestamp desc | limit 20`
/// over millions of events holds twenty, not millions).
fn retention(rest: &[Command], limit: usize) -> Option<(Option<SortKeys<'_>>, usize)> {
    let mut it = rest
        .iter()
        .filter(|c| !matches!(c, Command::Display(_)))
        .peekable();
    let keys = match it.peek() {
        Some(Command::Sort(keys)) => {
            it.next();
            // `sort @timestamp desc` is the order records already have.
            match keys.as_slice() {
                [(Ex::Field(f), true)] if f.name == "@timestamp" => None,
                keys => Some(keys),
            }
        }
        _ => None,
    };
    match it.next() {
        None => Some((keys, limit)),
        Some(Command::Limit(n)) => Some((keys, *n)),
        Some(_) => None,
    }
}

/// Keeps the first `keep` of `records` in the order [`retention`] gave (the order the rest
/// of the query would put them in: newest first, then sorted, both stable).
fn prune(
    records: &mut Vec<(Pos, Record)>,
    keys: Option<&[(Ex, bool)]>,
    keep: usize,
) -> Result<(), ServiceError> {
    newest_first(records);
    if let Some(keys) = keys {
        *records = sorted(std::mem::take(records), keys, |(_, r)| r)?;
    }
    records.truncate(keep);
    Ok(())
}

/// What a part of the events gave: `stats`' groups so far, or the records kept.
struct Partial<'a> {
    grouper: Option<Grouper<'a>>,
    records: Vec<(Pos, Record)>,
    scanned: f64,
    matched: f64,
    bytes: f64,
}

impl<'a> Partial<'a> {
    fn new(grouper: Option<Grouper<'a>>) -> Self {
        Partial {
            grouper,
            records: Vec::new(),
            scanned: 0.0,
            matched: 0.0,
            bytes: 0.0,
        }
    }

    /// Adds the results of the events after this part's.
    fn absorb(&mut self, later: Partial<'a>) {
        self.scanned += later.scanned;
        self.matched += later.matched;
        self.bytes += later.bytes;
        self.records.extend(later.records);
        if let (Some(g), Some(h)) = (self.grouper.as_mut(), later.grouper) {
            g.absorb(h);
        }
    }
}

fn run(
    query: &[Command],
    groups: &[Arc<Group>],
    (from, until): (i64, i64),
    now: i64,
    limit: usize,
    cancelled: &AtomicBool,
) -> Result<Outcome, ServiceError> {
    // Per-record commands up to the first that needs every record stream over the events;
    // a `stats` right after them aggregates as they come, so no record is kept.
    let split = query
        .iter()
        .position(|c| !matches!(c, Command::Fields(_) | Command::Filter(_) | Command::Parse(..)))
        .unwrap_or(query.len());
    let reads = Reads::of(query, split);
    let mut resolved = query.to_vec();
    let (streaming, rest) = resolved.split_at_mut(split);
    reads.resolve(
        streaming,
        rest.first_mut().filter(|c| matches!(c, Command::Stats(..))),
    );
    let commands = &resolved[..];
    let (streaming, mut rest) = commands.split_at(split);
    let mut grouper = match rest.first() {
        Some(Command::Stats(aggs, by)) => Some(Grouper::new(aggs, by)),
        _ => None,
    };
    if grouper.is_some() {
        rest = &rest[1..];
    }
    let required = required_text(commands);
    // Every stream of every group, in order; their events are read in chunks, matched on
    // every core, and the chunks' results put together in order (so ties among equal
    // timestamps resolve as a single pass would).
    let mut sources = Vec::new();
    let mut about = Vec::new();
    for group in groups {
        let lo = from.max(group.retained_from(now));
        let uid = group.config.lock().unwrap().uid.clone();
        let streams: Vec<_> = group.streams.read().unwrap().values().cloned().collect();
        for stream in streams {
            about.push((group.clone(), format!("{uid}/{}", stream.name)));
            sources.push(scan::Source {
                stream,
                from: std::ops::Bound::Included((lo, 0)),
                until,
            });
        }
    }
    let stats = grouper.as_ref().map(|g| (g.aggs, g.by));
    let filters = streaming.iter().any(|c| matches!(c, Command::Filter(_)));
    let retained = match grouper {
        None if !rest.iter().any(|c| matches!(c, Command::Stats(..))) => retention(rest, limit),
        _ => None,
    };
    let newest = matches!(retained, Some((None, _)));
    let keep = retained.map_or(usize::MAX, |(_, k)| k);
    let touches_text = !required.is_empty() || reads.all || reads.early.message || !reads.json.is_empty();
    let mut total = Partial::new(grouper.take());
    let work = |chunk: &scan::Chunk<'_>| -> Result<_, ServiceError> {
        if cancelled.load(AtomicOrdering::Relaxed) {
            return Err(ServiceError::client("Cancelled", "The query was stopped."));
        }
        let source = chunk.source;
        let stream = &sources[source].stream;
        let (group, ptr_prefix) = &about[source];
        let mut r = reads.record();
        // Newest first when only the newest can be shown: once a part holds as many as
        // can be shown, older events are counted but not built. Messages are fetched ahead
        // only when the query reads them.
        let mut part = Partial::new(stats.map(|(aggs, by)| Grouper::new(aggs, by)));
        let mut leaves = Leaves::new();
        let mut floor: Option<Pos> = None;
        let mut verdict_without_json = None;
        'events: for e in chunk.events(newest, touches_text) {
            part.scanned += 1.0;
            part.bytes += e.message_len() as f64;
            let pos = (e.timestamp, source, e.id);
            let beyond = floor.is_some_and(|f| after(pos, f));
            if beyond && !filters {
                part.matched += 1.0;
                continue;
            }
            if !required.is_empty() {
                let msg = e.message();
                if !msg.contains('\\') && !required.iter().all(|t| msg.contains(t.as_str())) {
                    continue;
                }
            }
            let unchecked = reads.fill(&mut r, group, &stream.name, ptr_prefix, e, &mut leaves);
            for (i, c) in streaming.iter().enumerate() {
                let kept = if i == 0 && unchecked {
                    reads.first_filter(c, &mut r, e, &mut leaves, &mut verdict_without_json)?
                } else {
                    let kept = apply(c, &mut r)?;
                    if kept && i == 0 && reads.staged.is_some() {
                        reads.fill_rest(&mut r, e, &mut leaves);
                    }
                    kept
                };
                if !kept {
                    continue 'events;
                }
            }
            part.matched += 1.0;
            match &mut part.grouper {
                Some(g) => g.add(&r)?,
                None if beyond => {}
                None => {
                    let mut kept = r.clone();
                    reads.complete(&mut kept, group, &stream.name, ptr_prefix, e);
                    part.records.push((pos, kept));
                    let held = part.records.len();
                    if newest && held >= keep && (floor.is_none() || held >= 2 * keep.max(1)) {
                        prune(&mut part.records, None, keep)?;
                        floor = part.records.last().map(|(p, _)| *p);
                    }
                }
            }
        }
        if let Some((keys, keep)) = retained
            && part.records.len() > keep
        {
            prune(&mut part.records, keys, keep)?;
        }
        Ok(part)
    };
    scan::chunks(&sources, work, |_, part| {
        total.absorb(part);
        if let Some((keys, keep)) = retained
            && total.records.len() > 2 * keep
        {
            prune(&mut total.records, keys, keep)?;
        }
        Ok(scan::Flow::Go)
    })?;
    let Partial {
        grouper: finished_grouper,
        records: mut kept,
        scanned,
        matched,
        bytes,
    } = total;
    grouper = finished_grouper;
    let aggregated = grouper.is_some() || rest.iter().any(|c| matches!(c, Command::Stats(..)));
    let mut records: Vec<Record> = match grouper {
        Some(g) => g.finish()?,
        None => {
            newest_first(&mut kept);
            kept.into_iter().map(|(_, r)| r).collect()
        }
    };
    for c in rest {
        match c {
            Command::Stats(aggs, by) => {
                let mut g = Grouper::new(aggs, by);
                for r in &records {
                    g.add(r)?;
                }
                records = g.finish()?;
            }
            Command::Sort(keys) => records = sorted(records, keys, |r| r)?,
            Command::Limit(n) => records.truncate(*n),
            Command::Dedup(names) => {
                let mut seen = HashSet::new();
                records.retain(|r| {
                    let key: Vec<Option<String>> = names.iter().map(|n| r.get(n).and_then(V::text)).collect();
                    seen.insert(key)
                });
            }
            Command::Display(_) => {}
            other => {
                let mut kept = Vec::with_capacity(records.len());
                for mut r in records {
                    if apply(other, &mut r)? {
                        kept.push(r);
                    }
                }
                records = kept;
            }
        }
    }
    records.truncate(limit);
    let shown = shown_fields(commands);
    let rows = records
        .into_iter()
        .map(|r| {
            let mut row: Vec<(String, V)> = match &shown {
                Some(names) => names
                    .iter()
                    .filter_map(|n| {
                        r.get(n)
                            .filter(|v| !matches!(v, V::Null))
                            .map(|v| (n.clone(), v.clone()))
                    })
                    .collect(),
                None => {
                    let mut all: Vec<(String, V)> =
                        r.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
                    all.sort_by(|a, b| a.0.cmp(&b.0));
                    all
                }
            };
            if !aggregated
                && shown.is_some()
                && let Some(ptr) = r.get("@ptr")
            {
                row.push(("@ptr".into(), ptr.clone()));
            }
            row
        })
        .collect();
    Ok(Outcome {
        rows,
        scanned,
        matched,
        bytes,
    })
}

/// A value ordered naturally, for grouping.
#[derive(Debug, Clone)]
struct OrdV(V);

impl PartialEq for OrdV {
    fn eq(&self, other: &Self) -> bool {
        natural(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for OrdV {}
impl PartialOrd for OrdV {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdV {
    fn cmp(&self, other: &Self) -> Ordering {
        natural(&self.0, &other.0)
    }
}

// ---- the operations -------------------------------------------------------------------

/// A finished query: its rows and statistics, or why it failed.
type Finished = Result<(Vec<Vec<ResultField>>, QueryStatistics), String>;

struct Query {
    account: String,
    region: String,
    info: QueryInfo,
    cancelled: Arc<AtomicBool>,
    result: Option<Finished>,
}

/// The queries of this server, by id.
#[derive(Default)]
pub struct Queries {
    by_id: Mutex<BTreeMap<String, Query>>,
}

fn status_of(q: &Query) -> QueryStatus {
    q.info.status.clone().unwrap_or(QueryStatus::Scheduled)
}

pub fn start(
    store: &Arc<Store>,
    queries: &Arc<Queries>,
    ctx: &RequestContext,
    input: StartQueryRequest,
) -> Result<StartQueryResponse, ServiceError> {
    if input
        .query_language
        .as_ref()
        .is_some_and(|l| !matches!(l, QueryLanguage::Cwli))
    {
        return Err(invalid_parameter(
            "Lakebox runs Logs Insights QL (CWLI) queries; OpenSearch PPL and SQL are not supported yet.",
        ));
    }
    if input.end_time < input.start_time {
        return Err(invalid_parameter(
            "endTime must be greater than or equal to startTime.",
        ));
    }
    let commands = parse_query(&input.query_string)?;
    let names: Vec<String> = match (
        &input.log_group_name,
        &input.log_group_names,
        &input.log_group_identifiers,
    ) {
        (Some(n), None, None) => vec![n.clone()],
        (None, Some(ns), None) => ns.clone(),
        (None, None, Some(ids)) => ids.iter().map(|i| group_name_of(i)).collect(),
        (None, None, None) => {
            return Err(invalid_parameter(
                "Exactly one of logGroupName, logGroupNames and logGroupIdentifiers must be specified.",
            ));
        }
        _ => {
            return Err(invalid_parameter(
                "logGroupName, logGroupNames and logGroupIdentifiers are mutually exclusive.",
            ));
        }
    };
    let groups: Vec<Arc<Group>> = names
        .iter()
        .map(|n| existing(store, ctx, n))
        .collect::<Result<_, _>>()?;
    {
        let running = queries
            .by_id
            .lock()
            .unwrap()
            .values()
            .filter(|q| {
                q.account == ctx.account_id
                    && matches!(status_of(q), QueryStatus::Scheduled | QueryStatus::Running)
            })
            .count();
        if running >= MAX_RUNNING {
            return Err(ServiceError::client(
                "LimitExceededException",
                "Resource limit exceeded.",
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let cancelled = Arc::new(AtomicBool::new(false));
    let now = store.now();
    queries.by_id.lock().unwrap().insert(
        id.clone(),
        Query {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            info: QueryInfo {
                query_language: Some(QueryLanguage::Cwli),
                query_id: Some(id.clone()),
                query_string: Some(input.query_string.clone()),
                status: Some(QueryStatus::Running),
                create_time: Some(now),
                log_group_name: names.first().cloned(),
                ..QueryInfo::default()
            },
            cancelled: cancelled.clone(),
            result: None,
        },
    );
    // The events in [startTime, endTime] seconds, inside each group's retention.
    let from = (input.start_time * 1000).max(0);
    let until = input.end_time.saturating_mul(1000).saturating_add(999);
    let limit = input.limit.map_or(MAX_ROWS, |l| l as usize).min(MAX_ROWS);
    let (queries, store, qid) = (queries.clone(), store.clone(), id.clone());
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let group_count = groups.len();
        let outcome = run(&commands, &groups, (from, until), store.now(), limit, &cancelled);
        let mut all = queries.by_id.lock().unwrap();
        let Some(q) = all.get_mut(&qid) else { return };
        q.info.query_duration = Some(started.elapsed().as_millis() as i64);
        if cancelled.load(AtomicOrdering::Relaxed) {
            q.info.status = Some(QueryStatus::Cancelled);
            q.result = Some(Ok((Vec::new(), QueryStatistics::default())));
        } else {
            match outcome {
                Ok(o) => {
                    q.info.status = Some(QueryStatus::Complete);
                    q.info.bytes_scanned = Some(o.bytes);
                    let rows = o
                        .rows
                        .into_iter()
                        .map(|row| {
                            row.into_iter()
                                .map(|(field, v)| ResultField {
                                    field: Some(field),
                                    value: v.text(),
                                })
                                .collect()
                        })
                        .collect();
                    let stats = QueryStatistics {
                        records_matched: Some(o.matched),
                        records_scanned: Some(o.scanned),
                        bytes_scanned: Some(o.bytes),
                        estimated_records_skipped: Some(0.0),
                        estimated_bytes_skipped: Some(0.0),
                        log_groups_scanned: Some(group_count as f64),
                    };
                    q.result = Some(Ok((rows, stats)));
                }
                Err(e) => {
                    q.info.status = Some(QueryStatus::Failed);
                    q.result = Some(Err(e.message));
                }
            }
        }
        // Keep the newest finished queries.
        let finished: Vec<(i64, String)> = all
            .iter()
            .filter(|(_, q)| q.result.is_some())
            .map(|(id, q)| (q.info.create_time.unwrap_or(0), id.clone()))
            .collect();
        if finished.len() > KEEP_FINISHED {
            let mut finished = finished;
            finished.sort();
            for (_, id) in finished.iter().take(finished.len() - KEEP_FINISHED) {
                all.remove(id);
            }
        }
    });
    Ok(StartQueryResponse { query_id: Some(id) })
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::client("ResourceNotFoundException", format!("Query does not exist: {id}"))
}

pub fn results(
    queries: &Queries,
    ctx: &RequestContext,
    input: GetQueryResultsRequest,
) -> Result<GetQueryResultsResponse, ServiceError> {
    let all = queries.by_id.lock().unwrap();
    let q = all
        .get(&input.query_id)
        .filter(|q| q.account == ctx.account_id && q.region == ctx.region)
        .ok_or_else(|| not_found(&input.query_id))?;
    let (rows, stats) = match &q.result {
        Some(Ok((rows, stats))) => (rows.clone(), Some(stats.clone())),
        Some(Err(_)) | None => (Vec::new(), Some(QueryStatistics::default())),
    };
    Ok(GetQueryResultsResponse {
        query_language: Some(QueryLanguage::Cwli),
        results: Some(rows),
        statistics: stats,
        status: Some(status_of(q)),
        encryption_key: None,
        next_token: None,
    })
}

pub fn stop(queries: &Queries, ctx: &RequestContext, id: &str) -> Result<StopQueryResponse, ServiceError> {
    let mut all = queries.by_id.lock().unwrap();
    let q = all
        .get_mut(id)
        .filter(|q| q.account == ctx.account_id && q.region == ctx.region)
        .ok_or_else(|| not_found(id))?;
    if q.result.is_some() {
        return Err(invalid_parameter(format!(
            "Query {id} is not running: its status is {}.",
            status_of(q).as_str()
        )));
    }
    q.cancelled.store(true, AtomicOrdering::Relaxed);
    q.info.status = Some(QueryStatus::Cancelled);
    Ok(StopQueryResponse { success: Some(true) })
}

pub fn describe(
    queries: &Queries,
    ctx: &RequestContext,
    input: DescribeQueriesRequest,
) -> Result<DescribeQueriesResponse, ServiceError> {
    let all = queries.by_id.lock().unwrap();
    let mut list: Vec<QueryInfo> = all
        .values()
        .filter(|q| q.account == ctx.account_id && q.region == ctx.region)
        .filter(|q| {
            input
                .log_group_name
                .as_ref()
                .is_none_or(|g| q.info.log_group_name.as_ref() == Some(g))
        })
        .filter(|q| input.status.as_ref().is_none_or(|s| &status_of(q) == s))
        .map(|q| q.info.clone())
        .collect();
    // Newest first.
    list.sort_by(|a, b| {
        b.create_time
            .cmp(&a.create_time)
            .then(a.query_id.cmp(&b.query_id))
    });
    let max = input.max_results.map_or(1000, |m| m as usize);
    let (page, next) = lakebox_core::paging::page(
        list,
        |q| {
            format!(
                "{:020}{}",
                i64::MAX - q.create_time.unwrap_or(0),
                q.query_id.clone().unwrap_or_default()
            )
        },
        input.next_token.as_deref(),
        max,
    )
    .map_err(|_| invalid_token())?;
    Ok(DescribeQueriesResponse {
        queries: Some(page),
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse() {
        assert!(parse_query("fields @timestamp, @message | sort @timestamp desc | limit 20").is_ok());
        assert!(
            parse_query(
                "filter level = 'ERROR' and latency > 100 | stats count(*) as n, avg(latency) by bin(5m)"
            )
            .is_ok()
        );
        assert!(
            parse_query(
                "parse @message \"user=* action=*\" as user, action | stats count(*) by user, action"
            )
            .is_ok()
        );
        assert!(parse_query("parse @message /user=(?<user>\\S+)/ | display user").is_ok());
        assert!(parse_query("filter @message like /ERROR/ | fields strlen(@message) as n").is_ok());
        assert!(parse_query("filter level in ['WARN', 'ERROR'] | dedup level").is_ok());
        assert!(parse_query("bogus x").is_err());
        assert!(parse_query("stats level").is_err());
        assert!(parse_query("limit -1").is_err());
        assert!(parse_query("parse @message \"a * b *\" as one").is_err());
    }

    #[test]
    fn names_and_order() {
        let Command::Stats(aggs, by) = &parse_query("stats count(*), avg(latency) by bin(5m)").unwrap()[0]
        else {
            panic!()
        };
        assert_eq!(
            aggs.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
            ["count(*)", "avg(latency)"]
        );
        assert_eq!(by[0].1, "bin(5m)");
        assert_eq!(natural_text("5A", "111A"), Ordering::Less);
        for (a, b, o) in [
            ("", "", Ordering::Equal),
            ("", "a", Ordering::Less),
            ("user-0042", "user-42", Ordering::Equal),
            ("user-42", "user-0041", Ordering::Greater),
            ("a1", "a1b", Ordering::Less),
            ("ab", "a1", Ordering::Greater),
            ("é10x", "é9x", Ordering::Greater),
            ("10", "9a", Ordering::Greater),
        ] {
            assert_eq!(natural_text(a, b), o, "{a} vs {b}");
            assert_eq!(natural_text(b, a), o.reverse(), "{b} vs {a}");
        }
        assert_eq!(natural(&V::Str("A".into()), &V::Num(0.0)), Ordering::Less);
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20.000");
    }
}
