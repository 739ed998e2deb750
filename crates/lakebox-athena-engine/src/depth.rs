//! How deep a statement's expressions may nest. The parser itself stops nesting brackets,
//! CASEs and sub-queries early (its recursion limit), but a chain of binary operators
//! (`1+1+…`, `a=1 OR a=2 OR …`) parses in a loop into a tree as deep as the chain is long, and
//! every later step (planning, optimising, naming columns, dropping the tree) recurses over it.
//! Athena (Trino) refuses such statements too — its test suite has `x = y OR …` failing from
//! 3,000 terms — with the message below.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};
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
    // The parser backtracks: nested CASEs and brackets it cannot finish cost it time
    // exponential in their depth before its recursion limit answers. Counted from the tokens
    // first (linear), anything nesting past that limit is refused without parsing.
    if bracket_depth(sql) > PARSER_RECURSION_LIMIT {
        return Err(too_large());
    }
    let statement = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(|e| if is_recursion_limit(&e) { too_large() } else { e })?;
    check(&statement)?;
    Ok(statement)
}

/// sqlparser's default recursion limit, which DataFusion keeps.
const PARSER_RECURSION_LIMIT: usize = 50;

/// How deep `(`, `[` and `CASE … END` nest in `sql`, from its tokens (unclosed ones count).
fn bracket_depth(sql: &str) -> usize {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return 0; // the parser reports the tokenizer's error itself
    };
    let (mut depth, mut deepest) = (0usize, 0usize);
    for t in &tokens {
        match t {
            Token::LParen | Token::LBracket => depth += 1,
            Token::Word(w) if w.keyword == Keyword::CASE => depth += 1,
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Word(w) if w.keyword == Keyword::END => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    deepest
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
        let unions = vec!["SELECT 1"; MAX_EXPRESSION_DEPTH + 2].join(" UNION ALL ");
        let err = parse(&unions).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
    }
}
