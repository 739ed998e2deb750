//! CREATE [OR REPLACE] VIEW: the query is planned (so a view over a missing table or column
//! fails at once, as in Athena), then stored in Glue the way Athena stores views — a
//! `VIRTUAL_VIEW` holding the SQL and its columns' Trino types (`lakebox_athena_ddl::view`).

use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{CreateView, Statement};
use lakebox_athena_ddl::view::{PrestoView, ViewColumn, table_input};

use crate::session::Sessions;
use crate::{CATALOG, athena_type};

pub async fn create(
    sessions: &Sessions,
    ctx: &SessionContext,
    database: &str,
    view: &CreateView,
) -> Result<()> {
    let parts: Vec<String> = view
        .name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('"').to_lowercase())
        .collect();
    let (db, name) = match parts.as_slice() {
        [name] => (database.to_lowercase(), name.clone()),
        [db, name] => (db.clone(), name.clone()),
        [catalog, db, name] if catalog == CATALOG => (db.clone(), name.clone()),
        _ => return Err(DataFusionError::Plan(format!("Invalid view name {}", view.name))),
    };
    let original_sql = view.query.to_string();
    let plan = sessions
        .plan(
            ctx,
            DFStatement::Statement(Box::new(Statement::Query(view.query.clone()))),
        )
        .await?;
    let columns = plan
        .schema()
        .fields()
        .iter()
        .map(|f| ViewColumn {
            name: f.name().to_lowercase(),
            type_: athena_type(f.data_type()),
        })
        .collect();
    let stored = PrestoView {
        original_sql,
        catalog: CATALOG.into(),
        schema: db.clone(),
        columns,
        owner: None,
        run_as_invoker: false,
    };
    let input = table_input(&name, &stored);
    let catalog = &sessions.catalog;
    let external = |e: lakebox_core::ServiceError| DataFusionError::Plan(e.message);
    match catalog.get_table(&sessions.scope, &db, &name) {
        Ok(t) if !t.is_view() => Err(DataFusionError::Plan(format!(
            "{db}.{name} is a table, not a view"
        ))),
        Ok(_) if !view.or_replace => Err(DataFusionError::Plan(format!("View already exists: {db}.{name}"))),
        Ok(_) => catalog
            .update_table(&sessions.scope, &db, input, false, None)
            .await
            .map(|_| ())
            .map_err(external),
        Err(_) => catalog
            .create_table(&sessions.scope, &db, input, Vec::new())
            .await
            .map(|_| ())
            .map_err(external),
    }
}
