//! Metric math: the expressions of GetMetricData queries and of alarms on math, evaluated over
//! the time series of the other queries, as CloudWatch documents them.
//!
//! Numbers, query ids, `+ - * / ^`, comparisons and `AND` / `OR` / `NOT` (1 or 0), and the
//! functions `METRICS()` (every metric query, or those whose id starts with a string), `SUM`,
//! `AVG`, `MIN`, `MAX`, `STDDEV`, `ABS`, `CEIL`, `FLOOR`, `SQRT`, `LOG`, `LOG10`, `RATE`, `DIFF`,
//! `DIFF_TIME`, `RUNNING_SUM`, `FILL` (a value, `REPEAT` or `LINEAR`), `IF`, `PERIOD` and `LAST`.
//! Between two series, arithmetic keeps the timestamps both have; a series with a number applies
//! to each point; a function of an array of series works per timestamp.

use std::collections::{BTreeMap, HashMap};

/// A time series: values by timestamp (epoch milliseconds).
pub type Series = BTreeMap<i64, f64>;

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    /// Several series (`METRICS()`), with their labels.
    Array(Vec<(String, Series)>),
}

/// What an expression can see: the other queries' series (by id, with labels), the period and
/// the timestamps of the queried range (for `FILL`).
pub struct Env<'a> {
    pub series: &'a HashMap<String, (String, Series)>,
    /// The ids of the metric (not expression) queries, in request order, for `METRICS()`.
    pub metric_ids: &'a [String],
    pub period_secs: f64,
    pub grid: &'a [i64],
    /// `SEARCH(expression, statistic, period seconds)`: the matching metrics' series.
    pub search: &'a SearchFn<'a>,
    /// `ANOMALY_DETECTION_BAND(id, width)`: the band of a metric query, upper then lower.
    pub band: &'a BandFn<'a>,
}

/// What answers `ANOMALY_DETECTION_BAND`: the labelled upper and lower bounds, or why not.
pub type BandFn<'a> = dyn Fn(&str, f64) -> Result<Vec<(String, Series)>, String> + 'a;

/// What answers `SEARCH`: labelled series, or why not.
pub type SearchFn<'a> = dyn Fn(&str, &str, i64) -> Result<Vec<(String, Series)>, String> + 'a;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Ident(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == 'e' || chars[i] == 'E')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                text.parse().map_err(|_| format!("Invalid number {text}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err("Unterminated string".into());
            }
            out.push(Token::Str(chars[start..i].iter().collect()));
            i += 1;
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                ">=" => Some(">="),
                "<=" => Some("<="),
                "==" => Some("=="),
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(op) = op {
                out.push(Token::Op(op));
                i += 2;
                continue;
            }
            out.push(match c {
                '+' => Token::Op("+"),
                '-' => Token::Op("-"),
                '*' => Token::Op("*"),
                '/' => Token::Op("/"),
                '^' => Token::Op("^"),
                '>' => Token::Op(">"),
                '<' => Token::Op("<"),
                '(' => Token::LParen,
                ')' => Token::RParen,
                ',' => Token::Comma,
                other => return Err(format!("Unexpected character {other}")),
            });
            i += 1;
        }
    }
    Ok(out)
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Str(String),
    Id(String),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.at += 1;
            left = Expr::Binary("OR", Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            self.at += 1;
            left = Expr::Binary("AND", Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("NOT") {
            self.at += 1;
            return Ok(Expr::Unary("NOT", Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.additive()?;
        if let Some(Token::Op(op @ (">" | "<" | ">=" | "<=" | "==" | "!="))) = self.peek().cloned() {
            self.at += 1;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(self.additive()?)));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplicative()?;
        while let Some(Token::Op(op @ ("+" | "-"))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op @ ("*" | "/"))) = self.peek().cloned() {
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn power(&mut self) -> Result<Expr, String> {
        // A power binds tighter than a sign (-x^2 is -(x^2)) and groups to the right.
        let base = self.primary()?;
        if let Some(Token::Op("^")) = self.peek() {
            self.at += 1;
            return Ok(Expr::Binary("^", Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if let Some(Token::Op("-")) = self.peek() {
            self.at += 1;
            return Ok(Expr::Unary("-", Box::new(self.unary()?)));
        }
        self.power()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Num(n)) => Ok(Expr::Num(n)),
            Some(Token::Str(s)) => Ok(Expr::Str(s)),
            Some(Token::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    _ => Err("Missing closing parenthesis".into()),
                }
            }
            Some(Token::Ident(name)) => {
                if self.peek() == Some(&Token::LParen) {
                    self.at += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Token::RParen) {
                        loop {
                            args.push(self.or()?);
                            match self.next() {
                                Some(Token::Comma) => continue,
                                Some(Token::RParen) => break,
                                _ => return Err(format!("Invalid arguments to {name}")),
                            }
                        }
                    } else {
                        self.at += 1;
                    }
                    Ok(Expr::Call(name.to_ascii_uppercase(), args))
                } else {
                    Ok(Expr::Id(name))
                }
            }
            other => Err(format!("Unexpected {other:?}")),
        }
    }
}

fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    let e = p.or()?;
    if p.at < p.tokens.len() {
        return Err(format!("Unexpected {:?}", p.tokens[p.at]));
    }
    Ok(e)
}

/// Whether an expression is an anomaly detection band (`ANOMALY_DETECTION_BAND(m1, 2)`),
/// which answers two series, its upper and lower bounds.
pub fn is_band(text: &str) -> bool {
    matches!(parse(text), Ok(Expr::Call(name, _)) if name == "ANOMALY_DETECTION_BAND")
}

/// The query ids an expression reads (to evaluate those first).
pub fn references(text: &str) -> Result<Vec<String>, String> {
    fn walk(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Id(id) => out.push(id.clone()),
            Expr::Unary(_, a) => walk(a, out),
            Expr::Binary(_, a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
            Expr::Num(_) | Expr::Str(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(&parse(text)?, &mut out);
    Ok(out)
}

/// Evaluates an expression.
pub fn evaluate(text: &str, env: &Env) -> Result<Value, String> {
    eval(&parse(text)?, env)
}

fn eval(e: &Expr, env: &Env) -> Result<Value, String> {
    Ok(match e {
        Expr::Num(n) => Value::Scalar(*n),
        Expr::Str(s) => return Err(format!("Unexpected string \"{s}\"")),
        Expr::Id(id) => match env.series.get(id) {
            Some((_, s)) => Value::Series(s.clone()),
            None => return Err(format!("Unrecognized id {id}")),
        },
        Expr::Unary("-", a) => map(eval(a, env)?, |v| -v),
        Expr::Unary(_, a) => map(eval(a, env)?, |v| if v == 0.0 { 1.0 } else { 0.0 }),
        Expr::Binary(op, a, b) => {
            let f = binary(op);
            combine(eval(a, env)?, eval(b, env)?, f)?
        }
        Expr::Call(name, args) => call(name, args, env)?,
    })
}

fn binary(op: &str) -> fn(f64, f64) -> f64 {
    match op {
        "+" => |a, b| a + b,
        "-" => |a, b| a - b,
        "*" => |a, b| a * b,
        "/" => |a, b| a / b,
        "^" => f64::powf,
        ">" => |a, b| if a > b { 1.0 } else { 0.0 },
        "<" => |a, b| if a < b { 1.0 } else { 0.0 },
        ">=" => |a, b| if a >= b { 1.0 } else { 0.0 },
        "<=" => |a, b| if a <= b { 1.0 } else { 0.0 },
        "==" => |a, b| if a == b { 1.0 } else { 0.0 },
        "!=" => |a, b| if a != b { 1.0 } else { 0.0 },
        "AND" => |a, b| if a != 0.0 && b != 0.0 { 1.0 } else { 0.0 },
        _ => |a, b| if a != 0.0 || b != 0.0 { 1.0 } else { 0.0 },
    }
}

fn map(v: Value, f: impl Fn(f64) -> f64) -> Value {
    match v {
        Value::Scalar(x) => Value::Scalar(f(x)),
        Value::Series(s) => Value::Series(s.into_iter().map(|(t, x)| (t, f(x))).collect()),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|(l, s)| (l, s.into_iter().map(|(t, x)| (t, f(x))).collect()))
                .collect(),
        ),
    }
}

fn zip(a: &Series, b: &Series, f: fn(f64, f64) -> f64) -> Series {
    a.iter()
        .filter_map(|(t, x)| b.get(t).map(|y| (*t, f(*x, *y))))
        .collect()
}

fn combine(a: Value, b: Value, f: fn(f64, f64) -> f64) -> Result<Value, String> {
    Ok(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(f(x, y)),
        (Value::Series(s), Value::Scalar(y)) => {
            Value::Series(s.into_iter().map(|(t, x)| (t, f(x, y))).collect())
        }
        (Value::Scalar(x), Value::Series(s)) => {
            Value::Series(s.into_iter().map(|(t, y)| (t, f(x, y))).collect())
        }
        (Value::Series(a), Value::Series(b)) => Value::Series(zip(&a, &b, f)),
        (Value::Array(arr), Value::Scalar(y)) => Value::Array(
            arr.into_iter()
                .map(|(l, s)| (l, s.into_iter().map(|(t, x)| (t, f(x, y))).collect()))
                .collect(),
        ),
        (Value::Scalar(x), Value::Array(arr)) => Value::Array(
            arr.into_iter()
                .map(|(l, s)| (l, s.into_iter().map(|(t, y)| (t, f(x, y))).collect()))
                .collect(),
        ),
        (Value::Array(arr), Value::Series(b)) => {
            Value::Array(arr.into_iter().map(|(l, s)| (l, zip(&s, &b, f))).collect())
        }
        (Value::Series(a), Value::Array(arr)) => {
            Value::Array(arr.into_iter().map(|(l, s)| (l, zip(&a, &s, f))).collect())
        }
        (Value::Array(_), Value::Array(_)) => {
            return Err("Arrays of time series cannot be combined with each other".into());
        }
    })
}

/// The series of an argument that must be one (or an array, for the per-series functions).
fn series_of(v: Value, function: &str) -> Result<Vec<(String, Series)>, String> {
    match v {
        Value::Series(s) => Ok(vec![(String::new(), s)]),
        Value::Array(a) => Ok(a),
        Value::Scalar(_) => Err(format!("{function} expects a time series")),
    }
}

/// Applies a per-series function to a series or to each series of an array.
fn per_series(v: Value, function: &str, f: impl Fn(&Series) -> Series) -> Result<Value, String> {
    let was_array = matches!(v, Value::Array(_));
    let out: Vec<(String, Series)> = series_of(v, function)?
        .into_iter()
        .map(|(l, s)| (l, f(&s)))
        .collect();
    Ok(if was_array {
        Value::Array(out)
    } else {
        Value::Series(out.into_iter().next().map(|(_, s)| s).unwrap_or_default())
    })
}

/// Reduces an array across series at each timestamp (a single series is returned as is, as
/// CloudWatch does for `SUM(m1)`).
fn across(v: Value, function: &str, f: fn(&[f64]) -> f64) -> Result<Value, String> {
    match v {
        Value::Array(a) => {
            let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (_, s) in &a {
                for (t, x) in s {
                    at.entry(*t).or_default().push(*x);
                }
            }
            Ok(Value::Series(at.into_iter().map(|(t, xs)| (t, f(&xs))).collect()))
        }
        Value::Series(s) => Ok(Value::Series(s.into_iter().map(|(t, x)| (t, f(&[x]))).collect())),
        Value::Scalar(_) => Err(format!("{function} expects a time series or an array of them")),
    }
}

fn stddev(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

fn call(name: &str, args: &[Expr], env: &Env) -> Result<Value, String> {
    let arg = |i: usize| -> Result<Value, String> {
        args.get(i)
            .ok_or_else(|| format!("{name} expects more arguments"))
            .and_then(|a| eval(a, env))
    };
    Ok(match name {
        "METRICS" => {
            let prefix = match args.first() {
                Some(Expr::Str(s)) => s.clone(),
                Some(_) => return Err("METRICS takes a string".into()),
                None => String::new(),
            };
            Value::Array(
                env.metric_ids
                    .iter()
                    .filter(|id| id.starts_with(&prefix))
                    .filter_map(|id| env.series.get(id).cloned())
                    .collect(),
            )
        }
        "SEARCH" => {
            let (Some(Expr::Str(query)), Some(Expr::Str(stat)), Some(Expr::Num(period))) =
                (args.first(), args.get(1), args.get(2))
            else {
                return Err("SEARCH takes a search expression, a statistic and a period".into());
            };
            Value::Array((env.search)(query, stat, *period as i64)?)
        }
        "ANOMALY_DETECTION_BAND" => {
            let (Some(Expr::Id(id)), width) = (args.first(), args.get(1)) else {
                return Err("ANOMALY_DETECTION_BAND takes the id of a metric and a width".into());
            };
            let width = match width {
                None => crate::anomaly::DEFAULT_WIDTH,
                Some(Expr::Num(w)) if *w > 0.0 => *w,
                Some(_) => return Err("The width of ANOMALY_DETECTION_BAND must be a positive number".into()),
            };
            if args.len() > 2 {
                return Err("ANOMALY_DETECTION_BAND takes the id of a metric and a width".into());
            }
            Value::Array((env.band)(id, width)?)
        }
        "SUM" => across(arg(0)?, name, |xs| xs.iter().sum())?,
        "AVG" => across(arg(0)?, name, |xs| xs.iter().sum::<f64>() / xs.len() as f64)?,
        "MIN" => across(arg(0)?, name, |xs| {
            xs.iter().copied().fold(f64::INFINITY, f64::min)
        })?,
        "MAX" => across(arg(0)?, name, |xs| {
            xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        })?,
        "STDDEV" => across(arg(0)?, name, stddev)?,
        "ABS" => map(arg(0)?, f64::abs),
        "CEIL" => map(arg(0)?, f64::ceil),
        "FLOOR" => map(arg(0)?, f64::floor),
        "SQRT" => map(arg(0)?, f64::sqrt),
        "LOG" => map(arg(0)?, f64::ln),
        "LOG10" => map(arg(0)?, f64::log10),
        "RATE" | "DIFF" | "DIFF_TIME" => {
            let kind = name.to_owned();
            per_series(arg(0)?, name, move |s| {
                s.iter()
                    .zip(s.iter().skip(1))
                    .map(|((t0, x0), (t1, x1))| {
                        let secs = (t1 - t0) as f64 / 1000.0;
                        let v = match kind.as_str() {
                            "RATE" => (x1 - x0) / secs,
                            "DIFF" => x1 - x0,
                            _ => secs,
                        };
                        (*t1, v)
                    })
                    .collect()
            })?
        }
        "RUNNING_SUM" => per_series(arg(0)?, name, |s| {
            let mut total = 0.0;
            s.iter()
                .map(|(t, x)| {
                    total += x;
                    (*t, total)
                })
                .collect()
        })?,
        "PERIOD" => map(arg(0)?, |_| env.period_secs),
        "LAST" => per_series(arg(0)?, name, |s| {
            s.iter().next_back().map(|(t, x)| (*t, *x)).into_iter().collect()
        })?,
        "FILL" => {
            let how = args.get(1).ok_or("FILL expects a value, REPEAT or LINEAR")?;
            let target = arg(0)?;
            match how {
                Expr::Id(w) if w.eq_ignore_ascii_case("REPEAT") => {
                    per_series(target, name, |s| fill_repeat(s, env.grid))?
                }
                Expr::Id(w) if w.eq_ignore_ascii_case("LINEAR") => {
                    per_series(target, name, |s| fill_linear(s, env.grid))?
                }
                other => match eval(other, env)? {
                    Value::Scalar(v) => per_series(target, name, |s| {
                        env.grid
                            .iter()
                            .map(|t| (*t, s.get(t).copied().unwrap_or(v)))
                            .collect()
                    })?,
                    Value::Series(with) => per_series(target, name, |s| {
                        env.grid
                            .iter()
                            .filter_map(|t| s.get(t).or(with.get(t)).map(|v| (*t, *v)))
                            .collect()
                    })?,
                    Value::Array(_) => return Err("FILL cannot fill with an array".into()),
                },
            }
        }
        "IF" => {
            let cond = arg(0)?;
            let then = arg(1)?;
            let otherwise = if args.len() > 2 { Some(arg(2)?) } else { None };
            let pick = |t: i64, v: &Value| -> Option<f64> {
                match v {
                    Value::Scalar(x) => Some(*x),
                    Value::Series(s) => s.get(&t).copied(),
                    Value::Array(_) => None,
                }
            };
            let cond = match cond {
                Value::Series(s) => s,
                _ => return Err("IF expects a time series as its condition".into()),
            };
            Value::Series(
                cond.iter()
                    .filter_map(|(t, c)| {
                        if *c != 0.0 {
                            pick(*t, &then).map(|v| (*t, v))
                        } else {
                            otherwise.as_ref().and_then(|o| pick(*t, o)).map(|v| (*t, v))
                        }
                    })
                    .collect(),
            )
        }
        other => return Err(format!("Unknown function {other}")),
    })
}

fn fill_repeat(s: &Series, grid: &[i64]) -> Series {
    let mut last = None;
    grid.iter()
        .filter_map(|t| {
            if let Some(v) = s.get(t) {
                last = Some(*v);
            }
            last.map(|v| (*t, v))
        })
        .collect()
}

fn fill_linear(s: &Series, grid: &[i64]) -> Series {
    grid.iter()
        .filter_map(|t| {
            if let Some(v) = s.get(t) {
                return Some((*t, *v));
            }
            let before = s.range(..*t).next_back()?;
            let after = s.range(*t..).next()?;
            let f = (*t - before.0) as f64 / (after.0 - before.0) as f64;
            Some((*t, before.1 + (after.1 - before.1) * f))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_functions_and_fill() {
        let m1: Series = [(0, 1.0), (60_000, 3.0), (180_000, 6.0)].into_iter().collect();
        let m2: Series = [(0, 10.0), (60_000, 20.0), (120_000, 30.0)].into_iter().collect();
        let series: HashMap<String, (String, Series)> = [
            ("m1".to_owned(), ("a".to_owned(), m1)),
            ("m2".to_owned(), ("b".to_owned(), m2)),
        ]
        .into_iter()
        .collect();
        let ids = vec!["m1".to_owned(), "m2".to_owned()];
        let grid = vec![0, 60_000, 120_000, 180_000];
        let env = Env {
            series: &series,
            metric_ids: &ids,
            period_secs: 60.0,
            grid: &grid,
            search: &|_, _, _| Ok(Vec::new()),
            band: &|_, _| Ok(Vec::new()),
        };
        let ev = |e: &str| evaluate(e, &env).unwrap();
        let s = |pairs: &[(i64, f64)]| Value::Series(pairs.iter().copied().collect());
        assert_eq!(ev("m1 + m2 * 2"), s(&[(0, 21.0), (60_000, 43.0)]));
        assert_eq!(ev("-m1 ^ 2"), s(&[(0, -1.0), (60_000, -9.0), (180_000, -36.0)]));
        assert_eq!(
            ev("SUM(METRICS())"),
            s(&[(0, 11.0), (60_000, 23.0), (120_000, 30.0), (180_000, 6.0)])
        );
        assert_eq!(ev("RATE(m1)"), s(&[(60_000, 2.0 / 60.0), (180_000, 3.0 / 120.0)]));
        assert_eq!(
            ev("FILL(m1, 0)"),
            s(&[(0, 1.0), (60_000, 3.0), (120_000, 0.0), (180_000, 6.0)])
        );
        assert_eq!(
            ev("FILL(m1, REPEAT)"),
            s(&[(0, 1.0), (60_000, 3.0), (120_000, 3.0), (180_000, 6.0)])
        );
        assert_eq!(
            ev("FILL(m1, LINEAR)"),
            s(&[(0, 1.0), (60_000, 3.0), (120_000, 4.5), (180_000, 6.0)])
        );
        assert_eq!(
            ev("IF(m2 > 15, m2, 0)"),
            s(&[(0, 0.0), (60_000, 20.0), (120_000, 30.0)])
        );
        assert_eq!(ev("PERIOD(m1)"), s(&[(0, 60.0), (60_000, 60.0), (180_000, 60.0)]));
        assert_eq!(
            ev("m1 > 2 AND NOT m1 > 5"),
            s(&[(0, 0.0), (60_000, 1.0), (180_000, 0.0)])
        );
        assert!(evaluate("m3 + 1", &env).is_err());
        assert!(evaluate("SUM(m1", &env).is_err());
        assert_eq!(references("m1 / (m2 + e1)").unwrap(), vec!["m1", "m2", "e1"]);
    }
}
