//! The Glue catalog as DataFusion's catalog: databases are schemas, tables are listing tables
//! over their S3 locations, read with the format their SerDe names.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result};
use lakebox_glue::infer::types;
use lakebox_glue::model::Table;
use lakebox_glue::{Catalog, Scope};

use crate::format::TableFormat;
use crate::session::{MAX_VIEW_DEPTH, Sessions};
use crate::table::GlueTable;

pub struct GlueCatalog {
    catalog: Arc<Catalog>,
    scope: Scope,
    sessions: Sessions,
    /// How many views enclose the query this catalog serves.
    depth: usize,
}

impl GlueCatalog {
    pub fn new(sessions: Sessions, depth: usize) -> Self {
        GlueCatalog {
            catalog: sessions.catalog.clone(),
            scope: sessions.scope.clone(),
            sessions,
            depth,
        }
    }
}

impl std::fmt::Debug for GlueCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlueCatalog({}/{})", self.scope.account, self.scope.region)
    }
}

impl std::fmt::Debug for GlueSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GlueSchema({})", self.database)
    }
}

impl CatalogProvider for GlueCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.catalog
            .list_databases(&self.scope)
            .map(|dbs| dbs.into_iter().map(|d| d.name).collect())
            .unwrap_or_default()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.catalog.get_database(&self.scope, name).ok().map(|d| {
            Arc::new(GlueSchema {
                catalog: self.catalog.clone(),
                scope: self.scope.clone(),
                database: d.name,
                sessions: self.sessions.clone(),
                depth: self.depth,
            }) as Arc<dyn SchemaProvider>
        })
    }
}

struct GlueSchema {
    catalog: Arc<Catalog>,
    scope: Scope,
    database: String,
    sessions: Sessions,
    depth: usize,
}

#[async_trait]
impl SchemaProvider for GlueSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .list_tables(&self.scope, &self.database)
            .map(|ts| ts.into_iter().map(|t| t.name).collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = match self.catalog.get_table(&self.scope, &self.database, name) {
            Ok(t) => t,
            Err(e) if lakebox_glue::GlueError::of(&e) == lakebox_glue::GlueError::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(DataFusionError::External(e.message.into())),
        };
        if table.is_view() {
            return view_table(&self.sessions, &table, self.depth).await.map(Some);
        }
        Ok(Some(glue_table(
            &table,
            self.catalog.clone(),
            self.scope.clone(),
        )?))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.get_table(&self.scope, &self.database, name).is_ok()
    }
}

pub(crate) fn hive(t: &str) -> Result<DataType> {
    types::parse(t)
        .map(|h| h.arrow_type())
        .map_err(|e| DataFusionError::Plan(format!("Unsupported column type {t}: {e}")))
}

/// `t` with the names of its struct fields (at any depth) in lowercase.
fn lowercase_fields(t: DataType) -> DataType {
    let field = |f: &FieldRef, name: String| {
        Arc::new(
            f.as_ref()
                .clone()
                .with_name(name)
                .with_data_type(lowercase_fields(f.data_type().clone())),
        )
    };
    match t {
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| field(f, f.name().to_lowercase())).collect())
        }
        DataType::List(f) => DataType::List(field(&f, f.name().clone())),
        DataType::LargeList(f) => DataType::LargeList(field(&f, f.name().clone())),
        DataType::Map(f, sorted) => DataType::Map(field(&f, f.name().clone()), sorted),
        other => other,
    }
}

/// The Glue table as a [`GlueTable`]: its columns (lowercase, as Athena resolves names) and
/// partition keys as Arrow fields, read with the format its SerDe names.
fn glue_table(t: &Table, catalog: Arc<Catalog>, scope: Scope) -> Result<Arc<dyn TableProvider>> {
    // Parquet strings are read as string views, which DataFusion's Parquet reader decodes
    // without copying and its string kernels (LIKE, grouping, comparisons) work on faster
    // than on plain strings; a table type of Utf8 would make every batch a cast and a copy.
    let format = TableFormat::of(t);
    let parquet = matches!(format, Ok(TableFormat::Parquet { .. }));
    // Athena resolves struct fields regardless of case, as it does columns: they are named in
    // lowercase here, and each reader matches them to the file's spelling (Parquet and ORC
    // through `columns::respelled`; JSON keys are lowercased before reading, see `jsonkeys`).
    // Avro names are exact by the Avro spec, and so are JSON keys with `case.insensitive=false`.
    let lowercase = match &format {
        Ok(TableFormat::Json(keys)) => keys.lowercases(),
        Ok(TableFormat::Avro) => false,
        _ => true,
    };
    let fields = t
        .columns()
        .iter()
        .map(|c| {
            let data_type = match hive(c.type_name())? {
                DataType::Utf8 if parquet => DataType::Utf8View,
                other if lowercase => lowercase_fields(other),
                other => other,
            };
            Ok(Field::new(c.name.to_lowercase(), data_type, true))
        })
        .collect::<Result<Vec<_>>>()?;
    let partitions = t
        .partition_keys()
        .iter()
        .map(|c| {
            Ok(Arc::new(Field::new(
                c.name.to_lowercase(),
                hive(c.type_name())?,
                true,
            )))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(GlueTable::new(
        t.clone(),
        format,
        catalog,
        scope,
        Arc::new(Schema::new(fields)),
        partitions,
    )))
}

/// A view stored as Athena stores it, planned from its SQL in the schema it was written in.
async fn view_table(sessions: &Sessions, t: &Table, depth: usize) -> Result<Arc<dyn TableProvider>> {
    let view = lakebox_athena_ddl::view::presto_view(t).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "{}.{} is a view Athena cannot read (no Presto view definition).",
            t.database(),
            t.name
        ))
    })?;
    if depth >= MAX_VIEW_DEPTH {
        return Err(DataFusionError::Plan(format!(
            "View {}.{} nests more than {MAX_VIEW_DEPTH} views deep (a view that refers to itself?).",
            t.database(),
            t.name
        )));
    }
    let ctx = sessions.context(Some(&view.schema), depth + 1)?;
    let plan = sessions.plan_sql(&ctx, &view.original_sql).await?;
    Ok(Arc::new(ViewTable::new(plan, Some(view.original_sql))))
}
