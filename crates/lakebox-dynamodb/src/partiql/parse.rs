//! DynamoDB's PartiQL subset, parsed into the same trees expressions use: SELECT (with WHERE
//! and ORDER BY), INSERT … VALUE, UPDATE … SET / REMOVE … WHERE … RETURNING, DELETE … WHERE.
//! `?` takes the request's parameters in order; literals are PartiQL's ('text', numbers,
//! TRUE / FALSE / NULL, {'map': …}, [lists], <<sets>>).

use crate::expr::{Action, Cmp, Cond, DocPath, Elem, Operand, SetOperand, SetValue};
use crate::number::Number;
use crate::value::{AttributeValue, Item};

#[derive(Debug, Clone, PartialEq)]
pub enum Returning {
    AllOld,
    AllNew,
    ModifiedOld,
    ModifiedNew,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select {
        table: String,
        index: Option<String>,
        projection: Option<Vec<DocPath>>,
        filter: Option<Cond>,
        descending: bool,
    },
    Insert {
        table: String,
        item: Item,
    },
    Update {
        table: String,
        actions: Vec<Action>,
        filter: Cond,
        returning: Option<Returning>,
    },
    Delete {
        table: String,
        filter: Cond,
        returning: Option<Returning>,
    },
}

impl Statement {
    pub fn table(&self) -> &str {
        match self {
            Statement::Select { table, .. }
            | Statement::Insert { table, .. }
            | Statement::Update { table, .. }
            | Statement::Delete { table, .. } => table,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Text(String),
    Num(String),
    Param,
    Sym(&'static str),
    Eof,
}

fn ill(detail: &str) -> String {
    format!("Statement wasn't well formed, can't be processed: {detail}")
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(ill("Unterminated quoted text")),
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(if c == '\'' { Tok::Text(s) } else { Tok::Quoted(s) });
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                if (chars[i] == 'e' || chars[i] == 'E') && matches!(chars.get(i + 1), Some('+' | '-')) {
                    i += 1;
                }
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym: &'static str = match two.as_str() {
            "<=" => "<=",
            ">=" => ">=",
            "<>" => "<>",
            "!=" => "<>",
            "<<" => "<<",
            ">>" => ">>",
            _ => match c {
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                '{' => "{",
                '}' => "}",
                ',' => ",",
                '.' => ".",
                ':' => ":",
                '*' => "*",
                '+' => "+",
                '-' => "-",
                ';' => ";",
                '?' => "?",
                _ => return Err(ill(&format!("Unexpected character: {c}"))),
            },
        };
        i += sym.len(); // "!=" is spelled "<>": also two characters
        out.push(if sym == "?" { Tok::Param } else { Tok::Sym(sym) });
    }
    out.push(Tok::Eof);
    Ok(out)
}

pub fn parse(src: &str, params: &[AttributeValue]) -> Result<Statement, String> {
    let toks = lex(src)?;
    let shape = toks.iter().map(|t| {
        (
            matches!(t, Tok::Sym("(" | "[" | "{" | "<<")),
            matches!(t, Tok::Sym(")" | "]" | "}" | ">>")),
            matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("NOT")),
        )
    });
    if crate::expr::too_deep(shape) {
        return Err(ill("The statement is nested too deeply"));
    }
    let mut p = P {
        toks,
        pos: 0,
        params,
        used: 0,
    };
    let stmt = p.statement()?;
    p.eat_sym(";");
    if p.peek() != &Tok::Eof {
        return Err(ill(&format!("Unexpected token: {:?}", p.peek())));
    }
    if p.used != params.len() {
        return Err("Number of parameters in request and statement don't match.".into());
    }
    Ok(stmt)
}

struct P<'a> {
    toks: Vec<Tok>,
    pos: usize,
    params: &'a [AttributeValue],
    used: usize,
}

impl P<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos]
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_word(&mut self, w: &str) -> Result<(), String> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(ill(&format!("Expected {w}")))
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = matches!(self.peek(), Tok::Sym(x) if *x == s);
        if yes {
            self.next();
        }
        yes
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), String> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(ill(&format!("Expected {s}")))
        }
    }

    fn statement(&mut self) -> Result<Statement, String> {
        if self.eat_word("SELECT") {
            return self.select();
        }
        if self.eat_word("INSERT") {
            self.expect_word("INTO")?;
            let table = self.name()?;
            self.expect_word("VALUE")?;
            let AttributeValue::M(item) = self.literal()? else {
                return Err(ill("INSERT takes a tuple: VALUE {'attribute': value, …}"));
            };
            return Ok(Statement::Insert { table, item });
        }
        if self.eat_word("UPDATE") {
            let table = self.name()?;
            let mut actions = Vec::new();
            loop {
                if self.eat_word("SET") {
                    loop {
                        let path = self.path()?;
                        self.expect_sym("=")?;
                        actions.push(Action::Set(path, self.set_value()?));
                        if !self.eat_sym(",") {
                            break;
                        }
                        if self.is_word("SET") || self.is_word("REMOVE") {
                            break;
                        }
                    }
                } else if self.eat_word("REMOVE") {
                    loop {
                        actions.push(Action::Remove(self.path()?));
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                } else {
                    break;
                }
            }
            if actions.is_empty() {
                return Err(ill("Expected SET or REMOVE"));
            }
            self.expect_word("WHERE")?;
            let filter = self.condition()?;
            let returning = self.returning()?;
            return Ok(Statement::Update {
                table,
                actions,
                filter,
                returning,
            });
        }
        if self.eat_word("DELETE") {
            self.expect_word("FROM")?;
            let table = self.name()?;
            self.expect_word("WHERE")?;
            let filter = self.condition()?;
            let returning = self.returning()?;
            return Ok(Statement::Delete {
                table,
                filter,
                returning,
            });
        }
        Err(ill("Expected SELECT, INSERT, UPDATE or DELETE"))
    }

    fn returning(&mut self) -> Result<Option<Returning>, String> {
        if !self.eat_word("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_word("ALL") {
            true
        } else if self.eat_word("MODIFIED") {
            false
        } else {
            return Err(ill("Expected ALL or MODIFIED"));
        };
        let new = if self.eat_word("NEW") {
            true
        } else if self.eat_word("OLD") {
            false
        } else {
            return Err(ill("Expected NEW or OLD"));
        };
        self.expect_sym("*")?;
        Ok(Some(match (all, new) {
            (true, true) => Returning::AllNew,
            (true, false) => Returning::AllOld,
            (false, true) => Returning::ModifiedNew,
            (false, false) => Returning::ModifiedOld,
        }))
    }

    fn select(&mut self) -> Result<Statement, String> {
        let projection = if self.eat_sym("*") {
            None
        } else {
            let mut paths = vec![self.path()?];
            while self.eat_sym(",") {
                paths.push(self.path()?);
            }
            Some(paths)
        };
        self.expect_word("FROM")?;
        let table = self.name()?;
        let index = if self.eat_sym(".") {
            Some(self.name()?)
        } else {
            None
        };
        let filter = if self.eat_word("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut descending = false;
        if self.eat_word("ORDER") {
            self.expect_word("BY")?;
            self.path()?;
            if self.eat_word("DESC") {
                descending = true;
            } else {
                self.eat_word("ASC");
            }
        }
        Ok(Statement::Select {
            table,
            index,
            projection,
            filter,
            descending,
        })
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next() {
            Tok::Word(w) | Tok::Quoted(w) => Ok(w),
            _ => Err(ill("Expected identifier")),
        }
    }

    fn path(&mut self) -> Result<DocPath, String> {
        let mut elems = vec![Elem::Name(self.name()?)];
        loop {
            if matches!(self.peek(), Tok::Sym("."))
                && matches!(self.toks.get(self.pos + 1), Some(Tok::Word(_) | Tok::Quoted(_)))
            {
                self.next();
                elems.push(Elem::Name(self.name()?));
            } else if self.eat_sym("[") {
                let i = match self.next() {
                    Tok::Num(n) => n.parse::<usize>().map_err(|_| ill("Expected list index"))?,
                    Tok::Text(k) => {
                        // a['key'] is a map key.
                        self.expect_sym("]")?;
                        elems.push(Elem::Name(k));
                        continue;
                    }
                    _ => return Err(ill("Expected list index")),
                };
                self.expect_sym("]")?;
                elems.push(Elem::Index(i));
            } else {
                return Ok(DocPath(elems));
            }
        }
    }

    fn param(&mut self) -> Result<AttributeValue, String> {
        let v = self
            .params
            .get(self.used)
            .cloned()
            .ok_or_else(|| "Number of parameters in request and statement don't match.".to_owned())?;
        self.used += 1;
        Ok(v)
    }

    /// A literal value (or `?`).
    fn literal(&mut self) -> Result<AttributeValue, String> {
        let negative = self.eat_sym("-");
        match self.next() {
            Tok::Param if !negative => self.param(),
            Tok::Text(s) if !negative => Ok(AttributeValue::S(s)),
            Tok::Num(n) => {
                let text = if negative { format!("-{n}") } else { n };
                let n = Number::parse(&text).map_err(|e| e.message())?;
                Ok(AttributeValue::N(n.to_string()))
            }
            Tok::Word(w) if !negative && w.eq_ignore_ascii_case("true") => Ok(AttributeValue::Bool(true)),
            Tok::Word(w) if !negative && w.eq_ignore_ascii_case("false") => Ok(AttributeValue::Bool(false)),
            Tok::Word(w) if !negative && w.eq_ignore_ascii_case("null") => Ok(AttributeValue::Null),
            Tok::Sym("{") if !negative => {
                let mut m = Item::new();
                if !self.eat_sym("}") {
                    loop {
                        let key = match self.next() {
                            Tok::Text(k) | Tok::Quoted(k) => k,
                            _ => return Err(ill("Expected a quoted attribute name in a tuple")),
                        };
                        self.expect_sym(":")?;
                        m.insert(key, self.literal()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym("}")?;
                }
                Ok(AttributeValue::M(m))
            }
            Tok::Sym("[") if !negative => {
                let mut l = Vec::new();
                if !self.eat_sym("]") {
                    loop {
                        l.push(self.literal()?);
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym("]")?;
                }
                Ok(AttributeValue::L(l))
            }
            Tok::Sym("<<") if !negative => {
                let mut items = Vec::new();
                loop {
                    items.push(self.literal()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(">>")?;
                set_of(items)
            }
            _ => Err(ill("Expected a value")),
        }
    }

    fn starts_literal(&self) -> bool {
        matches!(
            self.peek(),
            Tok::Param | Tok::Text(_) | Tok::Num(_) | Tok::Sym("{" | "[" | "<<" | "-")
        ) || self.is_word("true")
            || self.is_word("false")
            || self.is_word("null")
    }

    fn operand(&mut self) -> Result<Operand, String> {
        if self.starts_literal() {
            return Ok(Operand::Value(self.literal()?));
        }
        if self.is_word("size") && matches!(self.toks.get(self.pos + 1), Some(Tok::Sym("("))) {
            self.next();
            self.next();
            let p = self.path()?;
            self.expect_sym(")")?;
            return Ok(Operand::Size(p));
        }
        Ok(Operand::Path(self.path()?))
    }

    fn condition(&mut self) -> Result<Cond, String> {
        let mut left = self.and_condition()?;
        while self.eat_word("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.and_condition()?));
        }
        Ok(left)
    }

    fn and_condition(&mut self) -> Result<Cond, String> {
        let mut left = self.not_condition()?;
        while self.eat_word("AND") {
            left = Cond::And(Box::new(left), Box::new(self.not_condition()?));
        }
        Ok(left)
    }

    fn not_condition(&mut self) -> Result<Cond, String> {
        if self.eat_word("NOT") {
            return Ok(Cond::Not(Box::new(self.not_condition()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        if self.eat_sym("(") {
            let c = self.condition()?;
            self.expect_sym(")")?;
            return Ok(c);
        }
        if let Tok::Word(f) = self.peek().clone()
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Sym("(")))
        {
            let f = f.to_ascii_lowercase();
            if [
                "begins_with",
                "contains",
                "attribute_type",
                "attribute_exists",
                "attribute_not_exists",
            ]
            .contains(&f.as_str())
            {
                self.next();
                self.next();
                let a = self.operand()?;
                let b = if self.eat_sym(",") {
                    Some(self.operand()?)
                } else {
                    None
                };
                self.expect_sym(")")?;
                let path = |o: Operand| match o {
                    Operand::Path(p) => Ok(p),
                    _ => Err(ill(&format!("{f} takes a path"))),
                };
                return match (f.as_str(), b) {
                    ("begins_with", Some(b)) => Ok(Cond::BeginsWith(a, b)),
                    ("contains", Some(b)) => Ok(Cond::Contains(a, b)),
                    ("attribute_type", Some(b)) => Ok(Cond::Type(path(a)?, b)),
                    ("attribute_exists", None) => Ok(Cond::Exists(path(a)?)),
                    ("attribute_not_exists", None) => Ok(Cond::NotExists(path(a)?)),
                    _ => Err(ill(&format!("Wrong number of arguments to {f}"))),
                };
            }
        }
        let left = self.operand()?;
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            let Operand::Path(p) = left else {
                return Err(ill("IS takes a path"));
            };
            let cond = if self.eat_word("MISSING") {
                Cond::NotExists(p)
            } else if self.eat_word("NULL") {
                Cond::Type(p, Operand::Value(AttributeValue::S("NULL".into())))
            } else {
                return Err(ill("Expected MISSING or NULL"));
            };
            return Ok(if negated { Cond::Not(Box::new(cond)) } else { cond });
        }
        if self.eat_word("BETWEEN") {
            let low = self.operand()?;
            self.expect_word("AND")?;
            let high = self.operand()?;
            return Ok(Cond::Between(left, low, high));
        }
        if self.eat_word("IN") {
            let close = if self.eat_sym("[") {
                "]"
            } else {
                self.expect_sym("(")?;
                ")"
            };
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(close)?;
            return Ok(Cond::In(left, list));
        }
        let cmp = match self.next() {
            Tok::Sym("=") => Cmp::Eq,
            Tok::Sym("<>") => Cmp::Ne,
            Tok::Sym("<") => Cmp::Lt,
            Tok::Sym("<=") => Cmp::Le,
            Tok::Sym(">") => Cmp::Gt,
            Tok::Sym(">=") => Cmp::Ge,
            _ => return Err(ill("Expected a comparison")),
        };
        Ok(Cond::Compare(left, cmp, self.operand()?))
    }

    fn set_value(&mut self) -> Result<SetValue, String> {
        let a = self.set_operand()?;
        if self.eat_sym("+") {
            return Ok(SetValue::Plus(a, self.set_operand()?));
        }
        if self.eat_sym("-") {
            return Ok(SetValue::Minus(a, self.set_operand()?));
        }
        Ok(SetValue::Operand(a))
    }

    fn set_operand(&mut self) -> Result<SetOperand, String> {
        if let Tok::Word(f) = self.peek().clone()
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Sym("(")))
        {
            let f = f.to_ascii_lowercase();
            self.next();
            self.next();
            let a = self.set_operand()?;
            self.expect_sym(",")?;
            let b = self.set_operand()?;
            self.expect_sym(")")?;
            return match (f.as_str(), a) {
                ("list_append", a) => Ok(SetOperand::ListAppend(Box::new(a), Box::new(b))),
                ("if_not_exists", SetOperand::Path(p)) => Ok(SetOperand::IfNotExists(p, Box::new(b))),
                _ => Err(ill(&format!("Unsupported function in SET: {f}"))),
            };
        }
        if self.starts_literal() {
            return Ok(SetOperand::Value(self.literal()?));
        }
        Ok(SetOperand::Path(self.path()?))
    }
}

/// `<<…>>`: a string, number or binary set.
fn set_of(items: Vec<AttributeValue>) -> Result<AttributeValue, String> {
    let mut ss = Vec::new();
    let mut ns = Vec::new();
    let mut bs = Vec::new();
    for i in items {
        match i {
            AttributeValue::S(s) => ss.push(s),
            AttributeValue::N(n) => ns.push(n),
            AttributeValue::B(b) => bs.push(b),
            _ => return Err(ill("A set holds strings, numbers or binaries")),
        }
    }
    match (ss.is_empty(), ns.is_empty(), bs.is_empty()) {
        (false, true, true) => Ok(AttributeValue::Ss(ss)),
        (true, false, true) => Ok(AttributeValue::Ns(ns)),
        (true, true, false) => Ok(AttributeValue::Bs(bs)),
        _ => Err(ill("A set's elements must all be of one type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let s = parse(
            r#"SELECT a, b.c FROM "Orders"."byStatus" WHERE pk = ? AND sk > 3 ORDER BY sk DESC"#,
            &[AttributeValue::S("x".into())],
        )
        .unwrap();
        let Statement::Select {
            table,
            index,
            projection,
            descending,
            ..
        } = s
        else {
            panic!()
        };
        assert_eq!(
            (table.as_str(), index.as_deref(), descending),
            ("Orders", Some("byStatus"), true)
        );
        assert_eq!(projection.unwrap().len(), 2);
        let s = parse(
            "INSERT INTO t VALUE {'pk': 'a', 'n': -1.50, 'l': [1, 'x'], 's': <<'a', 'b'>>, 'ok': true}",
            &[],
        )
        .unwrap();
        let Statement::Insert { item, .. } = s else {
            panic!()
        };
        assert_eq!(item["n"], AttributeValue::N("-1.5".into()));
        assert_eq!(item["s"], AttributeValue::Ss(vec!["a".into(), "b".into()]));
        let s = parse(
            "UPDATE t SET n = n + 1, m.x = 'y' REMOVE old WHERE pk = 'a' RETURNING ALL NEW *",
            &[],
        )
        .unwrap();
        let Statement::Update {
            actions, returning, ..
        } = s
        else {
            panic!()
        };
        assert_eq!(actions.len(), 3);
        assert_eq!(returning, Some(Returning::AllNew));
        assert!(
            parse("DELETE FROM t WHERE pk = ?", &[])
                .unwrap_err()
                .contains("parameters")
        );
        assert!(
            parse("SELEC * FROM t", &[])
                .unwrap_err()
                .starts_with("Statement wasn't well formed")
        );
        assert!(parse("SELECT * FROM t WHERE a IS NOT MISSING AND b IN ['x', 'y']", &[]).is_ok());
    }
}
