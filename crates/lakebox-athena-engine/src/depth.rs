//! How deep a statement's expressions may nest. The parser itself stops nesting brackets,
//! CASEs and sub-queries early (its recursion limit), but a chain of binary operators
//! (`1+1+…`, `a=1 OR a=2 OR …`) parses in a loop into a tree as deep as the chain is long, and
//! every later step (planning, optimising, naming columns, dropping the tree) recurses over it.
//! Athena (Trino) refuses such statements too — its test suite has `x = y OR …` failing from
//! 3,000 terms — with the message below.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToSource, DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::parser::ParserError;

/// The deepest expression tree (or chain of set operations) a statement may hold.
pub const MAX_EXPRESSION_DEPTH: usize = 1_000;

/// What Athena answers for a statement too deep to parse.
pub const TOO_LARGE: &str = "line 1:1: statement is too large (stack overflow while parsing)";

struct Depth {
    now: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now += 1;
        if self.now > MAX_EXPRESSION_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }

    /// `SELECT … UNION ALL SELECT … UNION ALL …` nests the same way, in the query's body.
    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let mut pending = vec![(q.body.as_ref(), 1)];
        while let Some((body, depth)) = pending.pop() {
            if depth > MAX_EXPRESSION_DEPTH {
                return ControlFlow::Break(());
            }
            if let SetExpr::SetOperation { left, right, .. } = body {
                pending.push((left, depth + 1));
                pending.push((right, depth + 1));
            }
        }
        ControlFlow::Continue(())
    }
}

fn too_deep(v: &impl Visit) -> bool {
    v.visit(&mut Depth { now: 0 }).is_break()
}

/// Refuses a statement whose expressions nest deeper than [`MAX_EXPRESSION_DEPTH`].
pub fn check(statement: &DFStatement) -> Result<(), DataFusionError> {
    let deep = match statement {
        DFStatement::Statement(s) => too_deep(s.as_ref()),
        DFStatement::Explain(e) => return check(&e.statement),
        DFStatement::CopyTo(c) => match &c.source {
            CopyToSource::Query(q) => too_deep(q.as_ref()),
            CopyToSource::Relation(_) => false,
        },
        _ => false,
    };
    if deep {
        return Err(too_large());
    }
    Ok(())
}

/// Parses one statement and refuses it if it nests too deep — the parser's own recursion limit
/// (brackets, CASE, sub-queries) and [`check`]'s (operator chains) in the same words.
pub fn parse(ctx: &SessionContext, sql: &str) -> Result<DFStatement, DataFusionError> {
    let limit = ctx.state().config().options().sql_parser.recursion_limit.get();
    parse_limited(sql, limit)
}

/// [`parse`] with a default session's recursion limit, for checking text without a session.
pub fn parse_text(sql: &str) -> Result<DFStatement, DataFusionError> {
    let limit = datafusion::prelude::SessionConfig::new()
        .options()
        .sql_parser
        .recursion_limit
        .get();
    parse_limited(sql, limit)
}

fn parse_limited(sql: &str, limit: usize) -> Result<DFStatement, DataFusionError> {
    // The parser backtracks: nested CASEs and brackets it cannot finish cost it time
    // exponential in their depth (25 unclosed levels: seconds; 50: years). Counted from the
    // tokens first (linear), anything nesting past its recursion limit is refused without
    // parsing, and so is nesting left open at the end, which can never parse.
    let nesting = nesting(sql);
    if nesting.deepest > PARSER_RECURSION_LIMIT || nesting.positions > RETRIES_PARSED_UP_TO {
        return Err(too_large());
    }
    if let Some(closer) = nesting.unclosed
        && nesting.open_at_end > UNCLOSED_PARSED_UP_TO
    {
        return Err(DataFusionError::SQL(
            Box::new(ParserError::ParserError(format!(
                "Expected: {closer}, found: EOF"
            ))),
            None,
        ));
    }
    // Past a few keyword forms deep, a statement that does not parse would cost the generic
    // dialect exponential time (see `dialect`); one that does parses the same without retries.
    let statement = if nesting.keyword_forms > RETRIES_PARSED_UP_TO {
        parse_with(limit, sql, &crate::dialect::NoRetry)
    } else {
        parse_with(limit, sql, &GenericDialect)
    }
    .map_err(|e| if is_recursion_limit(&e) { too_large() } else { e })?;
    check(&statement)?;
    Ok(statement)
}

/// One statement, parsed as `SessionState::sql_to_statement` parses it but in `dialect`.
fn parse_with(limit: usize, sql: &str, dialect: &dyn Dialect) -> Result<DFStatement, DataFusionError> {
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(dialect)
        .with_recursion_limit(limit)
        .build()?
        .parse_statements()?;
    if statements.len() > 1 {
        return datafusion::common::not_impl_err!(
            "The context currently only supports a single SQL statement"
        );
    }
    statements.pop_front().ok_or_else(|| {
        datafusion::common::plan_datafusion_err!("No SQL statements were provided in the query string")
    })
}

/// Keyword forms (`CAST(`, `ARRAY[`, …) nested up to this depth are parsed with the generic
/// dialect's retries (at worst 2^10 steps on a statement that fails); deeper, without them.
const RETRIES_PARSED_UP_TO: usize = 10;

/// sqlparser's default recursion limit, which DataFusion keeps.
const PARSER_RECURSION_LIMIT: usize = 50;

/// Unclosed nesting up to this depth is left to the parser (its error names the exact spot
/// and costs it at most milliseconds); deeper, the statement is refused from its tokens.
const UNCLOSED_PARSED_UP_TO: usize = 8;

/// How `(`, `[` and `CASE … END` nest in a statement, read from its tokens.
#[derive(Debug, Default, PartialEq)]
struct Nesting {
    /// The deepest they reach (unclosed ones count).
    deepest: usize,
    /// How many are still open at the end.
    open_at_end: usize,
    /// What would close the innermost one left open.
    unclosed: Option<&'static str>,
    /// The deepest nesting of brackets opened right after a keyword (`CAST(`, `ARRAY[`), the
    /// forms the generic dialect retries.
    keyword_forms: usize,
    /// The deepest nesting of `POSITION(`, which sqlparser retries as a function call whatever
    /// the dialect.
    positions: usize,
}

fn nesting(sql: &str) -> Nesting {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Nesting::default(); // the parser reports the tokenizer's error itself
    };
    // Each open bracket or CASE: what closes it, and whether a keyword (POSITION) opened it.
    let mut open: Vec<(&'static str, bool, bool)> = Vec::new();
    let (mut deepest, mut keyword_forms, mut forms_now) = (0, 0, 0usize);
    let (mut positions, mut positions_now) = (0, 0usize);
    let (mut after_keyword, mut after_position) = (false, false);
    for t in tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))) {
        match t {
            Token::LParen | Token::LBracket => {
                let closer = if *t == Token::LParen { ")" } else { "]" };
                open.push((closer, after_keyword, after_position));
                if after_keyword {
                    forms_now += 1;
                    keyword_forms = keyword_forms.max(forms_now);
                }
                if after_position {
                    positions_now += 1;
                    positions = positions.max(positions_now);
                }
            }
            Token::Word(w) if w.keyword == Keyword::CASE => open.push(("END", false, false)),
            Token::RParen | Token::RBracket => {
                if let Some((_, keyword, position)) = open.pop() {
                    forms_now -= usize::from(keyword);
                    positions_now -= usize::from(position);
                }
            }
            Token::Word(w) if w.keyword == Keyword::END => {
                if let Some((_, keyword, position)) = open.pop() {
                    forms_now -= usize::from(keyword);
                    positions_now -= usize::from(position);
                }
            }
            _ => {}
        }
        let word = |k: Option<Keyword>| {
            matches!(t, Token::Word(w) if w.quote_style.is_none()
                && w.keyword != Keyword::NoKeyword
                && k.is_none_or(|k| w.keyword == k))
        };
        after_keyword = word(None);
        after_position = word(Some(Keyword::POSITION));
        deepest = deepest.max(open.len());
    }
    Nesting {
        deepest,
        open_at_end: open.len(),
        unclosed: open.last().map(|(closer, _, _)| *closer),
        keyword_forms,
        positions,
    }
}

fn is_recursion_limit(e: &DataFusionError) -> bool {
    matches!(
        e.find_root(),
        DataFusionError::SQL(p, _) if matches!(**p, ParserError::RecursionLimitExceeded)
    )
}

pub fn too_large() -> DataFusionError {
    DataFusionError::SQL(Box::new(ParserError::ParserError(TOO_LARGE.into())), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mutation fuzzing of SQL parsing and the depth check (docs/fuzzing.md): every mutant is
    /// parsed or refused without a panic or a stack overflow.
    #[test]
    fn fuzz_sql_statements() {
        let ctx = SessionContext::new();
        let corpus: &[&[u8]] = &[
            b"SELECT a, sum(b) FROM t WHERE c IN (1, 2) AND d LIKE 'x%' GROUP BY a HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 10",
            b"WITH x AS (SELECT * FROM UNNEST(ARRAY[1,2]) AS u(n)) SELECT CASE WHEN n > 1 THEN 'a' ELSE 'b' END FROM x",
            b"SELECT CAST(ROW(1, 'a') AS ROW(x INTEGER, y VARCHAR)), map(ARRAY['k'], ARRAY[1])['k'] FROM (VALUES (1)) v(a)",
        ];
        let tokens: &[&[u8]] = &[
            b"(",
            b")",
            b"+1",
            b" OR 1=1",
            b"CASE WHEN 1=1 THEN ",
            b" END",
            b"NOT ",
            b"-",
            b"'",
            b"\"",
            b"ARRAY[",
            b"]",
            b" UNION ALL SELECT 1",
        ];
        lakebox_core::fuzz::run("athena sql", 10, 3_000, corpus, tokens, |input| {
            let _ = super::parse(&ctx, &String::from_utf8_lossy(input));
        });
    }

    fn parse(sql: &str) -> Result<DFStatement, DataFusionError> {
        super::parse(&SessionContext::new(), sql)
    }

    #[test]
    fn chains_past_the_limit_are_refused() {
        let ok = format!("SELECT {}", vec!["1"; MAX_EXPRESSION_DEPTH].join("+"));
        assert!(parse(&ok).is_ok());
        let deep = format!("SELECT {}", vec!["1"; MAX_EXPRESSION_DEPTH + 2].join("+"));
        let err = parse(&deep).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
        let nested = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse(&nested).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
        // Unfinished nesting the parser would backtrack through for ever (found by the fuzz
        // test: 4,881 unclosed CASEs ran for hours) is refused from its tokens, at once.
        let started = std::time::Instant::now();
        let unfinished = format!("SELECT {}", "CASE WHEN 1=1 THEN ARRAY[".repeat(2_000));
        let err = parse(&unfinished).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Within the parser's limit too: 25 unclosed levels took it seconds.
        let started = std::time::Instant::now();
        let unfinished = format!("SELECT {}", "CASE WHEN 1=1 THEN ARRAY[".repeat(12));
        let err = parse(&unfinished).unwrap_err();
        assert!(err.to_string().contains("Expected: ], found: EOF"), "{err}");
        let unfinished = format!("SELECT {}1", "(".repeat(40));
        let err = parse(&unfinished).unwrap_err();
        assert!(err.to_string().contains("Expected: ), found: EOF"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        let closed = format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&closed).is_ok());
        // Closed, with a typo deep inside: 20 levels of ARRAY[ or CAST( took the generic
        // dialect seconds (2^n); now linear, and a valid statement that deep still parses.
        let started = std::time::Instant::now();
        for (open, close, n) in [
            ("CASE WHEN 1=1 THEN ARRAY[", "] END", 16),
            ("CAST(", " AS INT)", 24),
            ("ceil(", ")", 24),
            ("position(", " IN 'a')", 10),
        ] {
            let broken = format!("SELECT {}1 +{}", open.repeat(n), close.repeat(n));
            assert!(parse(&broken).is_err(), "{broken}");
            let fine = format!("SELECT {}1{}", open.repeat(n), close.repeat(n));
            assert!(parse(&fine).is_ok(), "{fine}");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // POSITION( is retried as a function call by sqlparser itself: deeper than the generic
        // retries are allowed, it is refused from its tokens.
        let positions = format!("SELECT {}'a'{}", "position(".repeat(11), " IN 'a')".repeat(11));
        let err = parse(&positions).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
        let unions = vec!["SELECT 1"; MAX_EXPRESSION_DEPTH + 2].join(" UNION ALL ");
        let err = parse(&unions).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
    }
}
