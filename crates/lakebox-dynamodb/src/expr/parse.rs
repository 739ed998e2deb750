//! The grammar. Precedence, loosest first: OR, AND, NOT, then comparisons / BETWEEN / IN,
//! then functions and parentheses. Every message is prefixed by the caller with
//! "Invalid <Kind>Expression: ".

use super::lex::{MAX_EXPRESSION_BYTES, Tok, Token, tokens, too_deep};
use super::{Action, Cmp, Cond, DocPath, Elem, Operand, SetOperand, SetValue, Substitutions, Update};
use crate::reserved::is_reserved;
use crate::value::AttributeValue;

/// Parses a condition (ConditionExpression, FilterExpression, KeyConditionExpression).
pub fn parse_condition(kind: &str, src: &str, subs: &mut Substitutions<'_>) -> Result<Cond, String> {
    let mut p = Parser::new(kind, src, subs)?;
    let c = p.condition()?;
    p.expect_end()?;
    Ok(c)
}

/// Parses a ProjectionExpression: paths separated by commas, none overlapping another.
pub fn parse_projection(src: &str, subs: &mut Substitutions<'_>) -> Result<Vec<DocPath>, String> {
    let mut p = Parser::new("ProjectionExpression", src, subs)?;
    let mut paths = vec![p.path()?];
    while p.eat_punct(",") {
        paths.push(p.path()?);
    }
    p.expect_end()?;
    no_overlap(&p.kind, &paths)?;
    Ok(paths)
}

/// Parses an UpdateExpression: SET, REMOVE, ADD and DELETE sections, each at most once.
pub fn parse_update(src: &str, subs: &mut Substitutions<'_>) -> Result<Update, String> {
    let mut p = Parser::new("UpdateExpression", src, subs)?;
    let mut update = Update::default();
    let mut seen: Vec<&'static str> = Vec::new();
    loop {
        let section = ["SET", "REMOVE", "ADD", "DELETE"]
            .into_iter()
            .find(|k| p.peek().is_keyword(k));
        let Some(section) = section else {
            if update.actions.is_empty() || p.peek().tok != Tok::Eof {
                return Err(p.syntax_error());
            }
            break;
        };
        if seen.contains(&section) {
            return Err(p.invalid(&format!(
                "The \"{section}\" section can only be used once in an update expression;"
            )));
        }
        seen.push(section);
        p.next();
        loop {
            let path = p.path()?;
            let action = match section {
                "SET" => {
                    p.expect_punct("=")?;
                    Action::Set(path, p.set_value()?)
                }
                "REMOVE" => Action::Remove(path),
                _ => {
                    let v = p.value_ref()?;
                    let allowed = match section {
                        "ADD" => matches!(
                            v,
                            AttributeValue::N(_)
                                | AttributeValue::Ss(_)
                                | AttributeValue::Ns(_)
                                | AttributeValue::Bs(_)
                        ),
                        _ => matches!(
                            v,
                            AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                        ),
                    };
                    if !allowed {
                        return Err(p.invalid(&format!(
                            "Incorrect operand type for operator or function; operator: {section}, operand type: {}, typeSet: ALLOWED_FOR_{section}_OPERAND",
                            type_word(&v)
                        )));
                    }
                    if section == "ADD" {
                        Action::Add(path, v)
                    } else {
                        Action::Delete(path, v)
                    }
                }
            };
            update.actions.push(action);
            if !p.eat_punct(",") {
                break;
            }
        }
    }
    let paths: Vec<DocPath> = update.targets().cloned().collect();
    no_overlap(&p.kind, &paths)?;
    Ok(update)
}

/// The long type names DynamoDB's operand-type messages use.
fn type_word(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Null => "NULL",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Invalid(_) => "",
    }
}

fn no_overlap(kind: &str, paths: &[DocPath]) -> Result<(), String> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            if a.overlaps(b) {
                let (one, two) = if a.0.len() <= b.0.len() { (a, b) } else { (b, a) };
                return Err(format!(
                    "Invalid {kind}: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {one}, path two: {two}"
                ));
            }
        }
    }
    Ok(())
}

/// Functions that are conditions, and the one that is a value.
const CONDITION_FUNCTIONS: &[&str] = &[
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];
const UPDATE_FUNCTIONS: &[&str] = &["if_not_exists", "list_append"];

struct Parser<'s, 'm, 'a> {
    kind: String,
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    subs: &'m mut Substitutions<'a>,
}

impl<'s, 'm, 'a> Parser<'s, 'm, 'a> {
    fn new(kind: &str, src: &'s str, subs: &'m mut Substitutions<'a>) -> Result<Self, String> {
        if src.trim().is_empty() {
            return Err(format!("Invalid {kind}: The expression can not be empty;"));
        }
        if src.len() > MAX_EXPRESSION_BYTES {
            return Err(format!(
                "Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {}",
                src.len()
            ));
        }
        let toks = tokens(src).map_err(|e| format!("Invalid {kind}: {e}"))?;
        let shape = toks.iter().map(|t| {
            (
                matches!(t.tok, Tok::Punct("(" | "[")),
                matches!(t.tok, Tok::Punct(")" | "]")),
                t.is_keyword("NOT"),
            )
        });
        if too_deep(shape) {
            return Err(format!("Invalid {kind}: The expression is nested too deeply"));
        }
        Ok(Parser {
            kind: kind.to_owned(),
            src,
            toks,
            pos: 0,
            subs,
        })
    }

    fn invalid(&self, detail: &str) -> String {
        format!("Invalid {}: {detail}", self.kind)
    }

    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// DynamoDB's syntax error: the token, and the text from the token before it to the one
    /// after.
    fn syntax_error(&self) -> String {
        let cur = self.peek();
        let from = if self.pos > 0 {
            self.toks[self.pos - 1].start
        } else {
            cur.start
        };
        let to = self.peek_at(1).end.max(cur.end);
        self.invalid(&format!(
            "Syntax error; token: \"{}\", near: \"{}\"",
            cur.text(self.src),
            &self.src[from..to]
        ))
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if matches!(self.peek().tok, Tok::Punct(q) if q == p) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), String> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    fn expect_end(&self) -> Result<(), String> {
        if self.peek().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    // ---- conditions ----------------------------------------------------------------------

    fn condition(&mut self) -> Result<Cond, String> {
        let mut left = self.and_condition()?;
        while self.peek().is_keyword("OR") {
            self.next();
            let right = self.and_condition()?;
            left = Cond::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_condition(&mut self) -> Result<Cond, String> {
        let mut left = self.not_condition()?;
        while self.peek().is_keyword("AND") {
            self.next();
            let right = self.not_condition()?;
            left = Cond::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_condition(&mut self) -> Result<Cond, String> {
        if self.peek().is_keyword("NOT") {
            self.next();
            return Ok(Cond::Not(Box::new(self.not_condition()?)));
        }
        self.primary_condition()
    }

    fn primary_condition(&mut self) -> Result<Cond, String> {
        if self.eat_punct("(") {
            let c = self.condition()?;
            self.expect_punct(")")?;
            return Ok(c);
        }
        if let Some(f) = self.function_name() {
            if CONDITION_FUNCTIONS.contains(&f.as_str()) {
                return self.condition_function(&f);
            }
            if UPDATE_FUNCTIONS.contains(&f.as_str()) {
                return Err(self.invalid(&format!(
                    "The function is not allowed to be used this way in an expression; function: {f}"
                )));
            }
        }
        let left = self.operand()?;
        if self.peek().is_keyword("BETWEEN") {
            self.next();
            let low = self.operand()?;
            if !self.peek().is_keyword("AND") {
                return Err(self.syntax_error());
            }
            self.next();
            let high = self.operand()?;
            return Ok(Cond::Between(left, low, high));
        }
        if self.peek().is_keyword("IN") {
            self.next();
            self.expect_punct("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_punct(",") {
                list.push(self.operand()?);
            }
            self.expect_punct(")")?;
            return Ok(Cond::In(left, list));
        }
        let cmp = match &self.peek().tok {
            Tok::Punct("=") => Cmp::Eq,
            Tok::Punct("<>") => Cmp::Ne,
            Tok::Punct("<") => Cmp::Lt,
            Tok::Punct("<=") => Cmp::Le,
            Tok::Punct(">") => Cmp::Gt,
            Tok::Punct(">=") => Cmp::Ge,
            _ => return Err(self.syntax_error()),
        };
        self.next();
        let right = self.operand()?;
        Ok(Cond::Compare(left, cmp, right))
    }

    /// A function name when the next tokens are `name (`.
    fn function_name(&self) -> Option<String> {
        match (&self.peek().tok, &self.peek_at(1).tok) {
            (Tok::Ident(name), Tok::Punct("(")) => Some(name.clone()),
            _ => None,
        }
    }

    fn arguments(&mut self, name: &str) -> Result<Vec<Operand>, String> {
        self.next();
        self.expect_punct("(")?;
        let mut args = vec![self.operand()?];
        while self.eat_punct(",") {
            args.push(self.operand()?);
        }
        self.expect_punct(")")?;
        let want = match name {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            _ => 2,
        };
        if args.len() != want {
            return Err(self.invalid(&format!(
                "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                args.len()
            )));
        }
        Ok(args)
    }

    fn condition_function(&mut self, name: &str) -> Result<Cond, String> {
        let mut args = self.arguments(name)?.into_iter();
        let first = args.next().unwrap();
        let second = args.next();
        let path_only = |op: Operand, this: &Self| match op {
            Operand::Path(p) => Ok(p),
            _ => Err(this.invalid(&format!(
                "Operator or function requires a document path; operator or function: {name}"
            ))),
        };
        Ok(match name {
            "attribute_exists" => Cond::Exists(path_only(first, self)?),
            "attribute_not_exists" => Cond::NotExists(path_only(first, self)?),
            "attribute_type" => Cond::Type(path_only(first, self)?, second.unwrap()),
            "begins_with" => Cond::BeginsWith(first, second.unwrap()),
            _ => Cond::Contains(first, second.unwrap()),
        })
    }

    fn operand(&mut self) -> Result<Operand, String> {
        if let Some(f) = self.function_name() {
            if f == "size" {
                let arg = self.arguments("size")?.remove(0);
                return match arg {
                    Operand::Path(p) => Ok(Operand::Size(p)),
                    _ => Err(self.invalid(
                        "Operator or function requires a document path; operator or function: size",
                    )),
                };
            }
            if CONDITION_FUNCTIONS.contains(&f.as_str()) || UPDATE_FUNCTIONS.contains(&f.as_str()) {
                return Err(self.invalid(&format!(
                    "The function is not allowed to be used this way in an expression; function: {f}"
                )));
            }
            return Err(self.invalid(&format!("Invalid function name; function: {f}")));
        }
        if let Tok::ValueRef(_) = self.peek().tok {
            return Ok(Operand::Value(self.value_ref()?));
        }
        Ok(Operand::Path(self.path()?))
    }

    fn value_ref(&mut self) -> Result<AttributeValue, String> {
        match self.peek().tok.clone() {
            Tok::ValueRef(r) => {
                self.next();
                self.subs.value(&r).ok_or_else(|| {
                    self.invalid(&format!(
                        "An expression attribute value used in expression is not defined; attribute value: {r}"
                    ))
                })
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// A document path: a name, then `.name` and `[index]` steps.
    fn path(&mut self) -> Result<DocPath, String> {
        let mut elems = vec![Elem::Name(self.path_name()?)];
        loop {
            if self.eat_punct(".") {
                elems.push(Elem::Name(self.path_name()?));
            } else if self.peek().tok == Tok::Punct("[") {
                self.next();
                let Tok::Int(digits) = self.peek().tok.clone() else {
                    return Err(self.syntax_error());
                };
                self.next();
                let index = digits.parse::<usize>().map_err(|_| self.syntax_error())?;
                self.expect_punct("]")?;
                elems.push(Elem::Index(index));
            } else {
                return Ok(DocPath(elems));
            }
        }
    }

    fn path_name(&mut self) -> Result<String, String> {
        match self.peek().tok.clone() {
            Tok::Ident(name) => {
                if is_reserved(&name) {
                    return Err(self.invalid(&format!(
                        "Attribute name is a reserved keyword; reserved keyword: {name}"
                    )));
                }
                self.next();
                Ok(name)
            }
            Tok::NameRef(r) => {
                self.next();
                self.subs.name(&r).ok_or_else(|| {
                    self.invalid(&format!(
                        "An expression attribute name used in the document path is not defined; attribute name: {r}"
                    ))
                })
            }
            _ => Err(self.syntax_error()),
        }
    }

    // ---- SET values ------------------------------------------------------------------------

    fn set_value(&mut self) -> Result<SetValue, String> {
        let left = self.set_operand()?;
        if self.eat_punct("+") {
            return Ok(SetValue::Plus(left, self.set_operand()?));
        }
        if self.eat_punct("-") {
            return Ok(SetValue::Minus(left, self.set_operand()?));
        }
        Ok(SetValue::Operand(left))
    }

    fn set_operand(&mut self) -> Result<SetOperand, String> {
        if let Some(f) = self.function_name() {
            self.next();
            self.next();
            let mut args = vec![self.set_operand()?];
            while self.eat_punct(",") {
                args.push(self.set_operand()?);
            }
            self.expect_punct(")")?;
            if !UPDATE_FUNCTIONS.contains(&f.as_str()) {
                return Err(if CONDITION_FUNCTIONS.contains(&f.as_str()) || f == "size" {
                    self.invalid(&format!(
                        "The function is not allowed in an update expression; function: {f}"
                    ))
                } else {
                    self.invalid(&format!("Invalid function name; function: {f}"))
                });
            }
            if args.len() != 2 {
                return Err(self.invalid(&format!(
                    "Incorrect number of operands for operator or function; operator or function: {f}, number of operands: {}",
                    args.len()
                )));
            }
            let second = args.pop().unwrap();
            let first = args.pop().unwrap();
            if f == "if_not_exists" {
                let SetOperand::Path(p) = first else {
                    return Err(self.invalid(
                        "Operator or function requires a document path; operator or function: if_not_exists",
                    ));
                };
                return Ok(SetOperand::IfNotExists(p, Box::new(second)));
            }
            for arg in [&first, &second] {
                if let SetOperand::Value(v) = arg
                    && !matches!(v, AttributeValue::L(_))
                {
                    return Err(self.invalid(&format!(
                        "Incorrect operand type for operator or function; operator or function: list_append, operand type: {}",
                        v.type_name()
                    )));
                }
            }
            return Ok(SetOperand::ListAppend(Box::new(first), Box::new(second)));
        }
        if let Tok::ValueRef(_) = self.peek().tok {
            return Ok(SetOperand::Value(self.value_ref()?));
        }
        Ok(SetOperand::Path(self.path()?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn subs<'a>(
        names: &'a BTreeMap<String, String>,
        values: &'a BTreeMap<String, AttributeValue>,
    ) -> Substitutions<'a> {
        Substitutions::new(Some(names), Some(values)).unwrap()
    }

    fn maps() -> (BTreeMap<String, String>, BTreeMap<String, AttributeValue>) {
        let names = BTreeMap::from([("#n".to_owned(), "name".to_owned())]);
        let values = BTreeMap::from([
            (":v".to_owned(), AttributeValue::N("1".into())),
            (":s".to_owned(), AttributeValue::S("x".into())),
        ]);
        (names, values)
    }

    #[test]
    fn conditions_parse_with_precedence() {
        let (n, v) = maps();
        let mut s = subs(&n, &v);
        let c = parse_condition(
            "ConditionExpression",
            "a = :v OR b < :v AND NOT attribute_exists(#n)",
            &mut s,
        )
        .unwrap();
        let Cond::Or(_, right) = c else { panic!("{c:?}") };
        assert!(matches!(*right, Cond::And(_, _)));
        assert!(s.check_all_used().unwrap_err().contains("{:s}"));
    }

    #[test]
    fn messages_match_dynamodb() {
        let (n, v) = maps();
        let mut s = subs(&n, &v);
        let e = |src: &str, s: &mut Substitutions<'_>| {
            parse_condition("ConditionExpression", src, s).unwrap_err()
        };
        assert_eq!(
            e("name = :v", &mut s),
            "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"
        );
        assert_eq!(
            e("a = :nope", &mut s),
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope"
        );
        assert_eq!(
            e("#x = :v", &mut s),
            "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"
        );
        assert_eq!(
            e("a = ", &mut s),
            "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"= \""
        );
        assert_eq!(
            e("", &mut s),
            "Invalid ConditionExpression: The expression can not be empty;"
        );
        assert!(e("foo(a)", &mut s).ends_with("Invalid function name; function: foo"));
        assert!(
            e("begins_with(a)", &mut s).ends_with("operator or function: begins_with, number of operands: 1")
        );
    }

    #[test]
    fn updates_and_projections() {
        let (n, v) = maps();
        let mut s = subs(&n, &v);
        let u = parse_update(
            "SET a.b[1] = if_not_exists(c, :v) + :v REMOVE d, e[2] ADD f :v",
            &mut s,
        )
        .unwrap();
        assert_eq!(u.actions.len(), 4);
        let e = parse_update("SET a = :v SET b = :v", &mut s).unwrap_err();
        assert!(e.contains("The \"SET\" section can only be used once"), "{e}");
        let e = parse_update("SET a = :v REMOVE a.b", &mut s).unwrap_err();
        assert!(e.ends_with("path one: [a], path two: [a, b]"), "{e}");
        let e = parse_update("ADD a :s", &mut s).unwrap_err();
        assert!(
            e.ends_with("operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"),
            "{e}"
        );
        let p = parse_projection("a, #n.c[3]", &mut s).unwrap();
        assert_eq!(p[1].to_string(), "[name, c, [3]]");
    }
}
