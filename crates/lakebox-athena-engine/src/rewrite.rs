//! Trino spellings DataFusion's SQL planner does not take, rewritten in the parsed statement
//! before planning (never by editing SQL text):
//!
//! - Quoted identifiers fold to lowercase, as every identifier does in Trino.
//! - A field after a subscript (`items[1].sku`, `m['k'].score`): its name becomes a string
//!   (`items[1].'sku'`), the form DataFusion plans.
//! - `try(x)`: casts inside become `TRY_CAST`, fallible Trino functions their lenient
//!   `try_<name>` variant, and `a / b` becomes `a / nullif(b, 0)`, so errors become NULL.
//! - `count_if(c)` → `count(nullif(c, false))`.
//! - `approx_percentile(x, p)` → `approx_percentile_cont(p) WITHIN GROUP (ORDER BY x)`.
//! - `arbitrary(x)` → `any_value(x)`.
//! - `min_by(x, y)` / `max_by(x, y)` → `first_value(x ORDER BY y …) FILTER (WHERE y IS NOT NULL)`;
//!   with a count `n`, the first `n` of `array_agg(x ORDER BY y …)`.
//! - `concat(a, b, …)` → `a || b || …` (NULL if any argument is, as in Trino).
//! - Functions DataFusion has under another name or shape: `if` → `CASE`, `contains` →
//!   `array_has`, `sequence` → `generate_series`, `slice` → `array_slice`, `variance` →
//!   `var_samp`, `every` → `bool_and`, `levenshtein_distance`, `truncate`, `codepoint`,
//!   `map_agg(k, v)` → `map(array_agg(k), array_agg(v))`, `zip` → `arrays_zip`.
//! - `FROM r CROSS JOIN UNNEST(a, …) AS u(x, …)` (or `FROM r, UNNEST(…)`), which DataFusion
//!   cannot plan as a lateral join, → `FROM (SELECT r.*, unnest(a) AS x, … FROM r) AS r`,
//!   with `u.x` references renamed `r.x`; `WITH ORDINALITY` adds an unnested 1‥n series, and
//!   `LEFT JOIN UNNEST(…) … ON true` unnests `[NULL]` where every array is empty or NULL.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, TableAlias,
    TableFactor, TableWithJoins, Value, VisitMut, VisitorMut, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::functions::FALLIBLE;

/// Rewrites every expression and query of a parsed statement.
pub fn apply<V: VisitMut>(statement: &mut V) {
    let _ = statement.visit(&mut FoldIdentifiers);
    let _ = statement.visit(&mut Unnests);
    let _ = visit_expressions_mut(statement, |e| {
        field_access(e);
        rewrite(e);
        ControlFlow::<()>::Continue(())
    });
}

/// Names the result columns as Trino does: by alias, by the column a plain reference names
/// (`t.a` and a struct's `s.a` are both `a`), or else `_col<position>`. DataFusion would name
/// an expression by its text (`count(*)`) and refuses two with the same text (`SELECT NULL,
/// NULL`), so the outermost select's unnamed expressions get those names as aliases.
pub fn name_columns(q: &mut Query) {
    // A bare `VALUES` names its columns `_col0`, `_col1`, … too (DataFusion: column1, …).
    if let SetExpr::Values(values) = q.body.as_ref() {
        let width = values.rows.first().map_or(0, |r| r.len());
        let names: Vec<String> = (0..width).map(|i| format!("_col{i}")).collect();
        let sql = format!("SELECT * FROM ({values}) AS t({})", names.join(", "));
        if let Ok(select) = Parser::new(&GenericDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_query())
        {
            q.body = select.body;
        }
        return;
    }
    let mut body = q.body.as_mut();
    let select = loop {
        match body {
            SetExpr::Select(select) => break select,
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => return,
        }
    };
    // A reference keeps its column's name; `a.x` is aliased `x` unless another column is.
    let reference_name = |item: &SelectItem| match item {
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.to_lowercase()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(|i| i.value.to_lowercase())
        }
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
        _ => None,
    };
    let names: Vec<Option<String>> = select.projection.iter().map(reference_name).collect();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let alias = match expr {
            Expr::Identifier(_) => continue,
            Expr::CompoundIdentifier(_) => {
                let name = names[i].clone().unwrap_or_default();
                if names
                    .iter()
                    .filter(|n| n.as_deref() == Some(name.as_str()))
                    .count()
                    > 1
                {
                    continue;
                }
                name
            }
            _ => format!("_col{i}"),
        };
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            // Quoted, so a name such as `my col` stays one identifier when printed.
            alias: Ident::with_quote('"', alias),
        };
    }
}

/// Trino folds every identifier to lowercase, quoted ones included (`"UserId"` is the column
/// `userid`, `AS "Total"` names the column `total`); DataFusion keeps a quoted identifier's
/// case, so quoted identifiers are folded here (their quotes stay, for names with spaces).
struct FoldIdentifiers;

fn fold(i: &mut Ident) {
    if i.quote_style.is_some() {
        i.value = i.value.to_lowercase();
    }
}

fn fold_alias(alias: &mut Option<TableAlias>) {
    if let Some(a) = alias {
        fold(&mut a.name);
        a.columns.iter_mut().for_each(|c| fold(&mut c.name));
    }
}

impl VisitorMut for FoldIdentifiers {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(i) => fold(i),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fold),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
        for part in name.0.iter_mut() {
            if let ObjectNamePart::Identifier(i) = part {
                fold(i);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => fold_alias(alias),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in select.projection.iter_mut() {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                fold(alias);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        for cte in q.with.iter_mut().flat_map(|w| w.cte_tables.iter_mut()) {
            fold(&mut cte.alias.name);
            cte.alias.columns.iter_mut().for_each(|c| fold(&mut c.name));
        }
        ControlFlow::Continue(())
    }
}

struct Unnests;

impl VisitorMut for Unnests {
    type Break = ();

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = q.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let mut renames = Vec::new();
        let mut i = 0;
        while i < select.from.len() {
            // `FROM r, UNNEST(…) AS u(…)` is the same as a cross join.
            if i + 1 < select.from.len()
                && select.from[i + 1].joins.is_empty()
                && matches!(select.from[i + 1].relation, TableFactor::UNNEST { .. })
            {
                let next = select.from.remove(i + 1);
                select.from[i].joins.insert(
                    0,
                    datafusion::sql::sqlparser::ast::Join {
                        relation: next.relation,
                        global: false,
                        join_operator: JoinOperator::CrossJoin(
                            datafusion::sql::sqlparser::ast::JoinConstraint::None,
                        ),
                    },
                );
            }
            if let Some(rename) = lateral_unnest(&mut select.from[i]) {
                renames.push(rename);
                continue;
            }
            i += 1;
        }
        if !renames.is_empty() {
            let _ = visit_expressions_mut(q, |e| {
                if let Expr::CompoundIdentifier(parts) = e
                    && parts.len() >= 2
                    && let Some(r) = renames.iter().find(|r| r.alias == parts[0].value)
                {
                    // `u.x` → `base.x`; for a row, `u.x` → `base.u.x` (the row's field).
                    let base = Ident::new(r.base.clone());
                    if r.shape == Shape::Row {
                        parts.insert(0, base);
                    } else {
                        parts[0] = base;
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::Continue(())
    }
}

/// How an unnest's alias names what it produces.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// `AS u(x, …)`, one name per array: each element is one column.
    Columns,
    /// `AS u(k, v)` over one map, or `AS u(a, b, …)` over one array of rows: the entries' or
    /// rows' fields are the columns, by position.
    Fields,
    /// `AS u` over one array of rows: `u` is the row, its fields are `u.a`, `u.b`.
    Row,
}

/// A column an unnest's rows are held in while their fields are named (see [`Shape::Fields`]).
const HELD_ROW: &str = "__lakebox_unnested";

/// How references to an unnest alias are renamed once it is folded into its base relation.
struct Rename {
    alias: String,
    base: String,
    shape: Shape,
}

/// Folds a leading `CROSS JOIN UNNEST(…) AS u(cols)` into its base relation; how references
/// to the unnest alias are renamed.
fn lateral_unnest(twj: &mut TableWithJoins) -> Option<Rename> {
    let first = twj.joins.first()?;
    let on_true = |c: &JoinConstraint| matches!(c, JoinConstraint::On(Expr::Value(v)) if v.value == Value::Boolean(true));
    // A LEFT JOIN keeps the rows whose arrays are empty or NULL, with NULL columns.
    let left = match &first.join_operator {
        JoinOperator::CrossJoin(_) => false,
        JoinOperator::Join(c) | JoinOperator::Inner(c) if on_true(c) => false,
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) if on_true(c) => true,
        _ => return None,
    };
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality,
        ..
    } = &first.relation
    else {
        return None;
    };
    let ordinality = usize::from(*with_ordinality);
    let columns: Vec<String> = alias.columns.iter().map(|c| c.name.to_string()).collect();
    let shape = match (array_exprs.len(), columns.len()) {
        (1, 0) if ordinality == 0 => Shape::Row,
        (1, n) if n >= 2 + ordinality => Shape::Fields,
        (m, n) if n == m + ordinality => Shape::Columns,
        _ => return None,
    };
    let mut arrays: Vec<String> = array_exprs.iter().map(ToString::to_string).collect();
    if shape == Shape::Fields {
        let fields = columns.len() - ordinality;
        let name = alias.name.value.replace('\'', "''");
        arrays = vec![format!(
            "{}({}, '{name}', {fields})",
            crate::functions::unnest::NAME,
            arrays[0]
        )];
    }
    let mut unnested: Vec<String> = arrays.clone();
    if *with_ordinality {
        // The ordinal is one more array, 1..the longest, zipped with the others.
        let longest = arrays
            .iter()
            .map(|a| format!("CAST(coalesce(cardinality({a}), 0) AS BIGINT)"))
            .collect::<Vec<_>>()
            .join(", ");
        unnested.push(format!("generate_series(1, greatest({longest}, 0))"));
    }
    if left {
        let any = arrays
            .iter()
            .map(|a| format!("coalesce(cardinality({a}), 0) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        unnested = unnested
            .into_iter()
            .map(|a| format!("CASE WHEN {any} THEN {a} ELSE make_array(NULL) END"))
            .collect();
    }
    // The name the base relation's columns go by; a subquery without an alias gets one.
    let (base, relation) = match &twj.relation {
        TableFactor::Table {
            name, alias: None, ..
        } => (name.0.last()?.to_string(), twj.relation.to_string()),
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            (a.name.to_string(), twj.relation.to_string())
        }
        TableFactor::Derived { alias: None, .. } => (
            "__lakebox_base".to_owned(),
            format!("{} AS __lakebox_base", twj.relation),
        ),
        _ => return None,
    };
    let ordinal = columns.last().filter(|_| *with_ordinality).cloned();
    let names: Vec<String> = match shape {
        Shape::Columns => columns.clone(),
        Shape::Row => vec![alias.name.to_string()],
        Shape::Fields => std::iter::once(HELD_ROW.to_owned())
            .chain(ordinal.clone())
            .collect(),
    };
    let items: Vec<String> = unnested
        .iter()
        .zip(&names)
        .map(|(e, name)| format!("unnest({e}) AS {name}"))
        .collect();
    let mut sql = format!(
        "(SELECT {base}.*, {} FROM {relation}) AS {base}",
        items.join(", ")
    );
    if shape == Shape::Fields {
        // Name the held row's fields (`f1`, `f2`, … by position) as the alias does, then the
        // ordinal, in Trino's column order.
        let fields = columns
            .iter()
            .take(columns.len() - ordinality)
            .enumerate()
            .map(|(i, c)| format!("{base}.{HELD_ROW}.f{} AS {c}", i + 1))
            .chain(ordinal.iter().map(|o| format!("{base}.{o}")));
        sql = format!(
            "(SELECT {base}.* EXCLUDE ({}), {} FROM {sql}) AS {base}",
            names.join(", "),
            fields.collect::<Vec<_>>().join(", ")
        );
    }
    let derived = Parser::new(&GenericDialect {})
        .try_with_sql(&sql)
        .ok()?
        .parse_table_factor()
        .ok()?;
    let rename = Rename {
        alias: alias.name.value.clone(),
        base: base.trim_matches('"').to_owned(),
        shape,
    };
    twj.relation = derived;
    twj.joins.remove(0);
    Some(rename)
}

/// `x[i].f` → `x[i].'f'`: DataFusion names a field after a subscript only as a string.
fn field_access(e: &mut Expr) {
    let Expr::CompoundFieldAccess { access_chain, .. } = e else {
        return;
    };
    let field = |i: &Ident| {
        AccessExpr::Dot(Expr::Value(
            Value::SingleQuotedString(i.value.to_lowercase()).into(),
        ))
    };
    *access_chain = std::mem::take(access_chain)
        .into_iter()
        .flat_map(|a| match a {
            AccessExpr::Dot(Expr::Identifier(i)) => vec![field(&i)],
            AccessExpr::Dot(Expr::CompoundIdentifier(parts)) => parts.iter().map(field).collect(),
            other => vec![other],
        })
        .collect();
}

fn function_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) => Some(f.name.to_string().to_lowercase()),
        _ => None,
    }
}

fn args(e: &Expr) -> Vec<Expr> {
    let Expr::Function(f) = e else { return Vec::new() };
    let FunctionArguments::List(list) = &f.args else {
        return Vec::new();
    };
    list.args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
            _ => None,
        })
        .collect()
}

/// An expression from `template`, with the identifiers `__a`, `__b` (or `__0`, `__1`, …)
/// replaced by `args`.
fn template(template: &str, args: &[Expr]) -> Option<Expr> {
    let mut e = Parser::new(&GenericDialect {})
        .try_with_sql(template)
        .ok()?
        .parse_expr()
        .ok()?;
    let _ = visit_expressions_mut(&mut e, |x| {
        if let Expr::Identifier(id) = x {
            let i = match id.value.as_str() {
                "__a" => 0,
                "__b" => 1,
                other => match other.strip_prefix("__").and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => return ControlFlow::<()>::Continue(()),
                },
            };
            if let Some(arg) = args.get(i) {
                *x = arg.clone();
            }
        }
        ControlFlow::Continue(())
    });
    Some(e)
}

fn rewrite(e: &mut Expr) {
    let Some(name) = function_name(e) else { return };
    let a = args(e);
    let replacement = match (name.as_str(), a.len()) {
        ("try", 1) => {
            let mut inner = a[0].clone();
            lenient(&mut inner);
            Some(Expr::Nested(Box::new(inner)))
        }
        ("count_if", 1) => template("count(nullif(__a, false))", &a),
        ("approx_percentile", 2) => template("approx_percentile_cont(__b) WITHIN GROUP (ORDER BY __a)", &a),
        ("arbitrary", 1) => template("any_value(__a)", &a),
        // x at the least (greatest) y, rows with a NULL y left out as Trino does.
        ("min_by", 2) => template(
            "first_value(__a ORDER BY __b ASC) FILTER (WHERE __b IS NOT NULL)",
            &a,
        ),
        ("max_by", 2) => template(
            "first_value(__a ORDER BY __b DESC) FILTER (WHERE __b IS NOT NULL)",
            &a,
        ),
        // The n values of x at the least (greatest) y, as an array.
        ("min_by", 3) => template(
            "array_slice(array_agg(__a ORDER BY __b ASC) FILTER (WHERE __b IS NOT NULL), 1, __2)",
            &a,
        ),
        ("max_by", 3) => template(
            "array_slice(array_agg(__a ORDER BY __b DESC) FILTER (WHERE __b IS NOT NULL), 1, __2)",
            &a,
        ),
        // Trino's concat is NULL when any argument is (DataFusion's skips NULLs); `||` is.
        ("concat", n) if n >= 2 => a.into_iter().reduce(|l, r| Expr::BinaryOp {
            left: Box::new(l),
            op: BinaryOperator::StringConcat,
            right: Box::new(r),
        }),
        // Trino's names for functions DataFusion has under another name or shape.
        ("if", 2) => template("CASE WHEN __a THEN __b END", &a),
        ("if", 3) => template("CASE WHEN __a THEN __b ELSE __2 END", &a),
        ("contains", 2) => template("array_has(__a, __b)", &a),
        // Trino's limit of 10,000 entries, checked before anything is built.
        ("sequence", 2) => template(
            "generate_series(__a, sequence_stop(__a, __b), sequence_step(__a))",
            &a,
        ),
        ("sequence", 3) => template("generate_series(__a, sequence_stop(__a, __b, __2), __2)", &a),
        ("slice", 3) => template("array_slice(__a, __b, __b + __2 - 1)", &a),
        ("variance", 1) => template("var_samp(__a)", &a),
        ("every", 1) => template("bool_and(__a)", &a),
        ("levenshtein_distance", 2) => template("levenshtein(__a, __b)", &a),
        ("truncate", 1) => template("trunc(__a)", &a),
        ("codepoint", 1) => template("ascii(__a)", &a),
        ("map_agg", 2) => template("map(array_agg(__a), array_agg(__b))", &a),
        ("zip", n) if n >= 2 => {
            let zipped = (0..n).map(|i| format!("__{i}")).collect::<Vec<_>>().join(", ");
            template(&format!("arrays_zip({zipped})"), &a)
        }
        // Trino names an anonymous row's fields field0, field1, … (DataFusion: c0, c1, …).
        ("row", n) if n >= 1 => {
            let named = a
                .iter()
                .enumerate()
                .map(|(i, _)| format!("'field{i}', __{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            template(&format!("named_struct({named})"), &a)
        }
        _ => None,
    };
    if let Some(r) = replacement {
        *e = r;
    }
}

/// The `try(…)` conversion of an expression tree.
fn lenient(e: &mut Expr) {
    let _ = visit_expressions_mut(e, |x| {
        match x {
            Expr::Cast { kind, .. } => *kind = CastKind::TryCast,
            Expr::Function(f) => {
                let name = f.name.to_string().to_lowercase();
                if FALLIBLE.contains(&name.as_str()) {
                    f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(format!(
                        "try_{name}"
                    )))]);
                }
            }
            Expr::BinaryOp {
                op: BinaryOperator::Divide | BinaryOperator::Modulo,
                right,
                ..
            } => {
                if let Some(safe) = template("nullif(__a, 0)", &[(**right).clone()]) {
                    **right = safe;
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests_support {
    use super::*;

    pub fn rewritten(sql: &str) -> String {
        let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        apply(&mut stmts[0]);
        stmts[0].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::rewritten;

    #[test]
    fn trino_spellings_become_datafusion_ones() {
        assert_eq!(
            rewritten("SELECT try(CAST(a AS integer) / b), try(date_parse(s, '%Y'))"),
            "SELECT (TRY_CAST(a AS INTEGER) / nullif(b, 0)), (try_date_parse(s, '%Y'))"
        );
        assert_eq!(
            rewritten("SELECT count_if(x > 1) FROM t"),
            "SELECT count(nullif(x > 1, false)) FROM t"
        );
        assert_eq!(
            rewritten("SELECT approx_percentile(v, 0.5) FROM t"),
            "SELECT approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM t"
        );
        assert_eq!(
            rewritten("SELECT arbitrary(v) FROM t"),
            "SELECT any_value(v) FROM t"
        );
        assert_eq!(
            rewritten("SELECT min_by(x, y), max_by(x, y) FROM t"),
            "SELECT first_value(x ORDER BY y ASC) FILTER (WHERE y IS NOT NULL), \
             first_value(x ORDER BY y DESC) FILTER (WHERE y IS NOT NULL) FROM t"
        );
        assert_eq!(rewritten("SELECT concat(a, 'b', c)"), "SELECT a || 'b' || c");
        assert_eq!(
            rewritten("SELECT if(a > 1, 'x'), if(b, 1, 2), slice(xs, 2, 3), contains(xs, 4)"),
            "SELECT CASE WHEN a > 1 THEN 'x' END, CASE WHEN b THEN 1 ELSE 2 END, \
             array_slice(xs, 2, 2 + 3 - 1), array_has(xs, 4)"
        );
        assert_eq!(
            rewritten("SELECT ROW('Bob', 38)"),
            "SELECT named_struct('field0', 'Bob', 'field1', 38)"
        );
        assert_eq!(
            rewritten("SELECT items[1].Sku, m['k'].a.b, s.f FROM t"),
            "SELECT items[1].'sku', m['k'].'a'.'b', s.f FROM t"
        );
        assert_eq!(
            rewritten(
                r#"WITH "W" AS (SELECT "UserId" AS "Total" FROM "Db"."T" AS "X") SELECT "W"."TOTAL", 'Keep' FROM "W""#
            ),
            r#"WITH "w" AS (SELECT "userid" AS "total" FROM "db"."t" AS "x") SELECT "w"."total", 'Keep' FROM "w""#
        );
    }
}

#[cfg(test)]
mod naming_tests {
    use super::*;

    fn named(sql: &str) -> String {
        let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).unwrap();
        let datafusion::sql::sqlparser::ast::Statement::Query(q) = &mut stmts[0] else {
            panic!("a query")
        };
        name_columns(q);
        stmts[0].to_string()
    }

    #[test]
    fn result_columns_are_named_as_trino_names_them() {
        assert_eq!(
            named("SELECT a, t.b, count(*), NULL, NULL, upper(c) AS u FROM t"),
            r#"SELECT a, t.b AS "b", count(*) AS "_col2", NULL AS "_col3", NULL AS "_col4", upper(c) AS u FROM t"#
        );
        // Two references to columns called `id` keep their qualified spelling.
        assert_eq!(
            named("SELECT x.id, y.id FROM x JOIN y ON true"),
            "SELECT x.id, y.id FROM x JOIN y ON true"
        );
        assert_eq!(
            named("VALUES (1, 'a'), (2, 'b')"),
            "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t (_col0, _col1)"
        );
        // A union takes its names from its first select; inner selects are left alone.
        assert_eq!(
            named("SELECT 1 UNION ALL SELECT (SELECT max(v) FROM t)"),
            r#"SELECT 1 AS "_col0" UNION ALL SELECT (SELECT max(v) FROM t)"#
        );
    }
}

#[cfg(test)]
mod unnest_tests {
    use super::tests_support::rewritten;

    #[test]
    fn unnest_joins_become_select_list_unnests() {
        assert_eq!(
            rewritten("SELECT t.x FROM r CROSS JOIN UNNEST(a) AS t(x)"),
            "SELECT r.x FROM (SELECT r.*, unnest(a) AS x FROM r) AS r"
        );
        assert_eq!(
            rewritten("SELECT x, n FROM r CROSS JOIN UNNEST(a) WITH ORDINALITY AS t(x, n)"),
            "SELECT x, n FROM (SELECT r.*, unnest(a) AS x, unnest(generate_series(1, greatest(CAST(coalesce(cardinality(a), 0) AS BIGINT), 0))) AS n FROM r) AS r"
        );
        assert_eq!(
            rewritten("SELECT x FROM r LEFT JOIN UNNEST(a) AS t(x) ON true"),
            "SELECT x FROM (SELECT r.*, unnest(CASE WHEN coalesce(cardinality(a), 0) > 0 THEN a ELSE make_array(NULL) END) AS x FROM r) AS r"
        );
        // A map's entries or an array's rows: their fields named by position.
        assert_eq!(
            rewritten("SELECT t.k, v FROM r CROSS JOIN UNNEST(m) AS t(k, v)"),
            "SELECT r.k, v FROM (SELECT r.* EXCLUDE (__lakebox_unnested), r.__lakebox_unnested.f1 AS k, \
             r.__lakebox_unnested.f2 AS v FROM (SELECT r.*, unnest(trino_unnest_rows(m, 't', 2)) AS __lakebox_unnested \
             FROM r) AS r) AS r"
        );
        // `AS t` over rows: `t` is the row.
        assert_eq!(
            rewritten("SELECT t.sku, t.meta.color FROM r CROSS JOIN UNNEST(items) AS t"),
            "SELECT r.t.sku, r.t.meta.color FROM (SELECT r.*, unnest(items) AS t FROM r) AS r"
        );
        // Without ON true a LEFT JOIN is not Trino's lateral UNNEST: left as written.
        assert!(
            rewritten("SELECT x FROM r LEFT JOIN UNNEST(a) AS t(x) ON x > 1").contains("LEFT JOIN UNNEST")
        );
    }
}
