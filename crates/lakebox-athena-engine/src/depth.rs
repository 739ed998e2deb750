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
    let statement = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(|e| if is_recursion_limit(&e) { too_large() } else { e })?;
    check(&statement)?;
    Ok(statement)
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
        let unions = vec!["SELECT 1"; MAX_EXPRESSION_DEPTH + 2].join(" UNION ALL ");
        let err = parse(&unions).unwrap_err();
        assert!(err.to_string().contains(TOO_LARGE), "{err}");
    }
}
