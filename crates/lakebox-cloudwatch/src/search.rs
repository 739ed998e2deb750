//! Metric math's `SEARCH('{Namespace,DimA} MetricName="Latency" prod', 'Average', 300)`: the
//! metrics of the caller's account and region a search expression matches, each as a series
//! of the statistic over the period.
//!
//! The expression's language: an optional schema `{Namespace,DimensionName,…}` (the metric must
//! be in that namespace and have exactly those dimensions); `Property="value"` for
//! `Namespace`, `MetricName` or a dimension name (exact, case-sensitive); bare terms and
//! `"quoted phrases"` (matching, without regard to case, a whole word of the namespace, metric
//! name or a dimension's name or value); `AND`, `OR`, `NOT` and parentheses. Terms side by side
//! must all match.

use crate::metrics::MetricKey;

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Schema(String, Vec<String>),
    Property(String, String),
    Term(String),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// A compiled search expression.
#[derive(Debug, Clone)]
pub struct Search(Option<Cond>);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Schema(String, Vec<String>),
    Word(String),
    Quoted(String),
    Eq,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '{' {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '}')
                .ok_or("Unterminated { in SEARCH")?
                + i;
            let inner: String = chars[i + 1..end].iter().collect();
            let mut parts = inner.split(',').map(|p| p.trim().trim_matches('"').to_owned());
            let ns = parts.next().unwrap_or_default();
            if ns.is_empty() {
                return Err("A SEARCH schema needs a namespace".into());
            }
            out.push(Tok::Schema(ns, parts.filter(|p| !p.is_empty()).collect()));
            i = end + 1;
        } else if c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|c| *c == '"')
                .ok_or("Unterminated \" in SEARCH")?
                + i
                + 1;
            out.push(Tok::Quoted(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c == '=' {
            out.push(Tok::Eq);
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"{}()=\"".contains(chars[i]) {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x == w)
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.word("OR") {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    /// Conditions side by side, or joined by AND, must all hold.
    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.not()?;
        loop {
            if self.word("AND") {
                self.pos += 1;
            } else if self.pos >= self.toks.len() || self.word("OR") || self.toks[self.pos] == Tok::Close {
                return Ok(left);
            }
            left = Cond::And(Box::new(left), Box::new(self.not()?));
        }
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.word("NOT") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        let tok = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or("Incomplete SEARCH expression")?;
        self.pos += 1;
        match tok {
            Tok::Open => {
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return Err("Missing ) in SEARCH expression".into());
                }
                self.pos += 1;
                Ok(c)
            }
            Tok::Schema(ns, dims) => Ok(Cond::Schema(ns, dims)),
            Tok::Word(w) | Tok::Quoted(w) if self.toks.get(self.pos) == Some(&Tok::Eq) => {
                self.pos += 1;
                match self.toks.get(self.pos).cloned() {
                    Some(Tok::Word(v) | Tok::Quoted(v)) => {
                        self.pos += 1;
                        Ok(Cond::Property(w, v))
                    }
                    _ => Err(format!("Expected a value after {w}=")),
                }
            }
            Tok::Word(w) | Tok::Quoted(w) => Ok(Cond::Term(w)),
            other => Err(format!("Unexpected {other:?} in SEARCH expression")),
        }
    }
}

/// The words a name is made of: runs of letters and digits.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

fn holds(c: &Cond, m: &MetricKey) -> bool {
    match c {
        Cond::Schema(ns, dims) => {
            m.namespace == *ns
                && m.dimensions.len() == dims.len()
                && dims.iter().all(|d| m.dimensions.iter().any(|(k, _)| k == d))
        }
        Cond::Property(p, v) => match p.as_str() {
            "Namespace" => m.namespace == *v,
            "MetricName" => m.name == *v,
            dim => m.dimensions.iter().any(|(k, x)| k == dim && x == v),
        },
        Cond::Term(t) => {
            // A term of several words (a quoted phrase) must appear as those words in a row.
            let wanted: Vec<String> = words(t).map(str::to_lowercase).collect();
            let fields = std::iter::once(m.namespace.as_str())
                .chain(std::iter::once(m.name.as_str()))
                .chain(m.dimensions.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
            !wanted.is_empty()
                && fields.into_iter().any(|f| {
                    let have: Vec<String> = words(f).map(str::to_lowercase).collect();
                    have.windows(wanted.len()).any(|w| w == wanted.as_slice())
                })
        }
        Cond::Not(a) => !holds(a, m),
        Cond::And(a, b) => holds(a, m) && holds(b, m),
        Cond::Or(a, b) => holds(a, m) || holds(b, m),
    }
}

impl Search {
    pub fn parse(text: &str) -> Result<Search, String> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Ok(Search(None));
        }
        let mut p = Parser { toks, pos: 0 };
        let c = p.or()?;
        if p.pos != p.toks.len() {
            return Err("Unexpected text in SEARCH expression".into());
        }
        Ok(Search(Some(c)))
    }

    pub fn matches(&self, m: &MetricKey) -> bool {
        self.0.as_ref().is_none_or(|c| holds(c, m))
    }
}

/// A search result's default label: its dimensions' values, or its metric name.
pub fn label(m: &MetricKey) -> String {
    if m.dimensions.is_empty() {
        m.name.clone()
    } else {
        m.dimensions
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, name: &str, dims: &[(&str, &str)]) -> MetricKey {
        MetricKey {
            account: "a".into(),
            region: "r".into(),
            namespace: ns.into(),
            name: name.into(),
            dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn search_expressions() {
        let cpu = key("AWS/EC2", "CPUUtilization", &[("InstanceId", "i-1")]);
        let cpu2 = key(
            "AWS/EC2",
            "CPUUtilization",
            &[("InstanceId", "i-2"), ("Env", "prod")],
        );
        let lat = key("Shop", "Latency", &[("Service", "checkout-api")]);
        let s = |t: &str| Search::parse(t).unwrap();
        assert!(s("{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"").matches(&cpu));
        assert!(!s("{AWS/EC2,InstanceId} MetricName=\"CPUUtilization\"").matches(&cpu2));
        assert!(s("CPUUtilization").matches(&cpu2) && !s("CPUUtilization").matches(&lat));
        assert!(s("checkout").matches(&lat) && s("\"checkout api\"").matches(&lat));
        assert!(s("Latency OR prod").matches(&cpu2) && s("Latency OR prod").matches(&lat));
        assert!(s("AWS/EC2 NOT Env=prod").matches(&cpu) && !s("AWS/EC2 NOT Env=prod").matches(&cpu2));
        assert!(Search::parse("{").is_err() && Search::parse("MetricName=").is_err());
        assert_eq!(label(&cpu2), "i-2 prod");
        assert_eq!(label(&key("N", "Orders", &[])), "Orders");
    }
}
