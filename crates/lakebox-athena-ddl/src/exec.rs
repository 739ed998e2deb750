//! Runs a parsed DDL statement against the Glue catalog (and, for MSCK REPAIR TABLE, the table's
//! files in Lakebox S3), producing the text lines Athena writes to `<QueryExecutionId>.txt`.

use std::collections::BTreeSet;

use lakebox_core::ServiceError;
use lakebox_glue::model::{DatabaseInput, Parameters, PartitionInput, Table, TableInput};
use lakebox_glue::{Catalog, GlueError, Scope};
use lakebox_service::lake::{Lake, split_s3_url};

use crate::formats::{self, glue_columns, show_create_table};
use crate::parser::{Name, PartitionSpec, Statement};
use crate::{DdlError, DdlOutput};

type Result<T> = std::result::Result<T, DdlError>;

pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub lake: &'a Lake,
    pub scope: &'a Scope,
    /// The QueryExecutionContext's database, for unqualified names.
    pub database: &'a str,
}

/// Glue's answer in Athena's words (Hive's DDL task messages).
fn glue(e: ServiceError) -> DdlError {
    match GlueError::of(&e) {
        GlueError::NotFound => DdlError::not_found(format!("FAILED: SemanticException {}", e.message)),
        GlueError::AlreadyExists => DdlError::invalid(format!(
            "FAILED: Execution Error, return code 1 from org.apache.hadoop.hive.ql.exec.DDLTask. AlreadyExistsException(message:{})",
            e.message
        )),
        GlueError::InvalidInput => DdlError::invalid(format!("FAILED: SemanticException {}", e.message)),
        GlueError::CrawlerRunning | GlueError::Other => DdlError::internal(e.message),
    }
}

fn now_secs() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

/// Hive's LIKE patterns for SHOW: `*` is any run of characters, `|` separates alternatives,
/// case-insensitive.
fn like(pattern: Option<&str>, name: &str) -> bool {
    let Some(p) = pattern else { return true };
    p.split('|').any(|alt| {
        let re = format!(
            "(?i)^{}$",
            alt.trim()
                .split('*')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*")
        );
        regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
    })
}

/// Hive's name for a NULL partition value, in folder names and Glue partition values.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Escapes a partition value for a path as Hive's `FileUtils.escapePathName` does.
pub fn escape_path(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        if (c as u32) < 0x20 || "\"#%'*/:=?\\\u{7f}{[]^".contains(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The inverse of [`escape_path`], for directory names found by MSCK REPAIR TABLE.
pub fn unescape_path(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn partition_name(t: &Table, values: &[String]) -> String {
    t.partition_keys()
        .iter()
        .zip(values)
        .map(|(k, v)| format!("{}={}", k.name, escape_path(v)))
        .collect::<Vec<_>>()
        .join("/")
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_owned()
    } else {
        format!("{s}/")
    }
}

impl Context<'_> {
    /// Athena's catalog always has the `default` database (Glue creates it when Athena first
    /// asks), so unqualified DDL has somewhere to go.
    async fn ensure_default(&self) -> Result<()> {
        if self.catalog.get_database(self.scope, "default").is_ok() {
            return Ok(());
        }
        let input = DatabaseInput {
            name: "default".into(),
            description: Some("Default Hive database".into()),
            ..Default::default()
        };
        match self.catalog.create_database(self.scope, input).await {
            Err(e) if GlueError::of(&e) != GlueError::AlreadyExists => Err(glue(e)),
            _ => Ok(()),
        }
    }

    fn db<'n>(&'n self, name: &'n Name) -> &'n str {
        name.database.as_deref().unwrap_or(self.database)
    }

    fn table(&self, name: &Name) -> Result<Table> {
        let db = self.db(name);
        self.catalog.get_database(self.scope, db).map_err(|_| {
            DdlError::not_found(format!(
                "FAILED: SemanticException [Error 10072]: Database does not exist: {db}"
            ))
        })?;
        self.catalog.get_table(self.scope, db, &name.name).map_err(|_| {
            DdlError::not_found(format!(
                "FAILED: SemanticException [Error 10001]: Table not found {db}.{}",
                name.name
            ))
        })
    }

    /// The partition's values in the table's key order; every key must be given once.
    fn values(&self, t: &Table, spec: &PartitionSpec) -> Result<Vec<String>> {
        if spec.len() != t.partition_keys().len() {
            return Err(DdlError::invalid(format!(
                "FAILED: SemanticException [Error 10006]: Partition not found: the partition of {}.{} needs values for {} keys ({}), {} given",
                t.database(),
                t.name,
                t.partition_keys().len(),
                t.partition_keys()
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                spec.len()
            )));
        }
        t.partition_keys()
            .iter()
            .map(|k| {
                spec.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&k.name))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        DdlError::invalid(format!(
                            "FAILED: SemanticException [Error 10098]: Partition spec is missing key {} of {}.{}",
                            k.name, t.database(), t.name
                        ))
                    })
            })
            .collect()
    }

    fn partition_input(&self, t: &Table, values: Vec<String>, location: Option<String>) -> PartitionInput {
        let mut sd = t.storage_descriptor.clone().unwrap_or_default();
        sd.location = Some(location.unwrap_or_else(|| {
            format!(
                "{}{}/",
                with_slash(t.location().unwrap_or_default()),
                partition_name(t, &values)
            )
        }));
        PartitionInput {
            values: Some(values),
            storage_descriptor: Some(sd),
            parameters: Some(Parameters::new()),
            ..Default::default()
        }
    }

    async fn update_table(&self, t: TableInput, db: &str) -> Result<()> {
        self.catalog
            .update_table(self.scope, db, t, false, None)
            .await
            .map_err(glue)?;
        Ok(())
    }

    pub async fn execute(&self, stmt: Statement) -> Result<DdlOutput> {
        let utility = stmt.is_utility();
        self.ensure_default().await?;
        let (columns, lines) = self.run(stmt).await?;
        Ok(DdlOutput {
            statement_type: if utility { "UTILITY" } else { "DDL" },
            columns,
            lines,
        })
    }

    async fn run(&self, stmt: Statement) -> Result<(&'static [&'static str], Vec<String>)> {
        match stmt {
            Statement::CreateDatabase {
                name,
                if_not_exists,
                comment,
                location,
                properties,
            } => {
                let input = DatabaseInput {
                    name: name.clone(),
                    description: comment,
                    location_uri: location,
                    parameters: Some(properties.into_iter().collect()),
                    ..Default::default()
                };
                match self.catalog.create_database(self.scope, input).await {
                    Err(e) if GlueError::of(&e) == GlueError::AlreadyExists && if_not_exists => Ok(none(())),
                    Err(e) if GlueError::of(&e) == GlueError::AlreadyExists => {
                        Err(DdlError::invalid(format!(
                            "FAILED: Execution Error, return code 1 from org.apache.hadoop.hive.ql.exec.DDLTask. Database {name} already exists"
                        )))
                    }
                    other => other.map(none).map_err(glue),
                }
            }
            Statement::DropDatabase {
                name,
                if_exists,
                cascade,
            } => {
                if self.catalog.get_database(self.scope, &name).is_err() {
                    return if if_exists {
                        Ok(none(()))
                    } else {
                        Err(DdlError::not_found(format!(
                            "FAILED: SemanticException [Error 10072]: Database does not exist: {name}"
                        )))
                    };
                }
                let tables = self.catalog.list_tables(self.scope, &name).map_err(glue)?;
                if !tables.is_empty() && !cascade {
                    return Err(DdlError::invalid(format!(
                        "FAILED: Execution Error, return code 1 from org.apache.hadoop.hive.ql.exec.DDLTask. InvalidOperationException(message:Database {name} is not empty. One or more tables exist.)"
                    )));
                }
                self.catalog
                    .delete_database(self.scope, &name)
                    .await
                    .map(none)
                    .map_err(glue)
            }
            Statement::AlterDatabaseProperties { name, properties } => {
                let db = self.catalog.get_database(self.scope, &name).map_err(|_| {
                    DdlError::not_found(format!(
                        "FAILED: SemanticException [Error 10072]: Database does not exist: {name}"
                    ))
                })?;
                let mut params = db.parameters.clone().unwrap_or_default();
                params.extend(properties);
                let input = DatabaseInput {
                    name: db.name.clone(),
                    description: db.description,
                    location_uri: db.location_uri,
                    parameters: Some(params),
                    create_table_default_permissions: db.create_table_default_permissions,
                    target_database: db.target_database,
                    federated_database: db.federated_database,
                };
                self.catalog
                    .update_database(self.scope, &name, input)
                    .await
                    .map(none)
                    .map_err(glue)
            }
            Statement::CreateTable(ct) => self.create_table(*ct).await,
            Statement::DropView { name, if_exists: _ } if self.table(&name).is_ok_and(|t| !t.is_view()) => {
                Err(DdlError::invalid(format!(
                    "FAILED: SemanticException {}.{} is a table, not a view: use DROP TABLE",
                    self.db(&name),
                    name.name
                )))
            }
            Statement::DropTable { name, if_exists } | Statement::DropView { name, if_exists } => {
                let db = self.db(&name).to_owned();
                match self.table(&name) {
                    Ok(_) => self
                        .catalog
                        .delete_table(self.scope, &db, &name.name)
                        .await
                        .map(none)
                        .map_err(glue),
                    Err(_) if if_exists => Ok(none(())),
                    Err(e) => Err(e),
                }
            }
            Statement::AddPartitions {
                table,
                if_not_exists,
                partitions,
            } => {
                let t = self.table(&table)?;
                let mut inputs = Vec::new();
                for (spec, location) in partitions {
                    let values = self.values(&t, &spec)?;
                    let exists = self
                        .catalog
                        .get_partition(self.scope, t.database(), &t.name, &values)
                        .is_ok();
                    if exists && !if_not_exists {
                        return Err(DdlError::invalid(format!(
                            "FAILED: Execution Error, return code 1 from org.apache.hadoop.hive.ql.exec.DDLTask. AlreadyExistsException(message:Partition already exists: {})",
                            partition_name(&t, &values)
                        )));
                    }
                    if !exists {
                        inputs.push(self.partition_input(&t, values, location));
                    }
                }
                self.catalog
                    .create_partitions(self.scope, t.database(), &t.name, inputs)
                    .await
                    .map_err(glue)?;
                Ok(none(()))
            }
            Statement::DropPartitions {
                table,
                if_exists,
                specs,
            } => {
                let t = self.table(&table)?;
                let mut doomed = Vec::new();
                for spec in &specs {
                    let values = self.values(&t, spec)?;
                    let exists = self
                        .catalog
                        .get_partition(self.scope, t.database(), &t.name, &values)
                        .is_ok();
                    if !exists && !if_exists {
                        return Err(DdlError::not_found(format!(
                            "FAILED: SemanticException [Error 10006]: Partition not found {}",
                            partition_name(&t, &values)
                        )));
                    }
                    if exists {
                        doomed.push(values);
                    }
                }
                self.catalog
                    .delete_partitions(self.scope, t.database(), &t.name, doomed)
                    .await
                    .map(none)
                    .map_err(glue)
            }
            Statement::RenamePartition { table, from, to } => {
                let t = self.table(&table)?;
                let (old, new) = (self.values(&t, &from)?, self.values(&t, &to)?);
                let p = self
                    .catalog
                    .get_partition(self.scope, t.database(), &t.name, &old)
                    .map_err(|_| {
                        DdlError::not_found(format!(
                            "FAILED: SemanticException [Error 10006]: Partition not found {}",
                            partition_name(&t, &old)
                        ))
                    })?;
                let input = PartitionInput {
                    values: Some(new),
                    ..p.to_input()
                };
                let failures = self
                    .catalog
                    .update_partitions(self.scope, t.database(), &t.name, vec![(old, input)])
                    .await
                    .map_err(glue)?;
                match failures.into_iter().next() {
                    Some((_, e)) => Err(glue(e)),
                    None => Ok(none(())),
                }
            }
            Statement::AddColumns { table, columns } => self.alter_columns(&table, &columns, false).await,
            Statement::ReplaceColumns { table, columns } => self.alter_columns(&table, &columns, true).await,
            Statement::ChangeColumn { table, old, new } => {
                let t = self.table(&table)?;
                let mut input = t.to_input();
                let sd = input.storage_descriptor.get_or_insert_default();
                let mut cols = sd.columns().to_vec();
                let Some(c) = cols.iter_mut().find(|c| c.name == old) else {
                    return Err(DdlError::invalid(format!(
                        "FAILED: SemanticException [Error 10002]: Invalid column reference {old}"
                    )));
                };
                *c = glue_columns(std::slice::from_ref(&new)).remove(0);
                sd.columns = Some(cols);
                self.update_table(input, t.database()).await.map(none)
            }
            Statement::SetLocation {
                table,
                partition: None,
                location,
            } => {
                let t = self.table(&table)?;
                let mut input = t.to_input();
                input.storage_descriptor.get_or_insert_default().location = Some(location);
                self.update_table(input, t.database()).await.map(none)
            }
            Statement::SetLocation {
                table,
                partition: Some(spec),
                location,
            } => {
                let t = self.table(&table)?;
                let values = self.values(&t, &spec)?;
                let p = self
                    .catalog
                    .get_partition(self.scope, t.database(), &t.name, &values)
                    .map_err(|_| {
                        DdlError::not_found(format!(
                            "FAILED: SemanticException [Error 10006]: Partition not found {}",
                            partition_name(&t, &values)
                        ))
                    })?;
                let mut input = p.to_input();
                input.storage_descriptor.get_or_insert_default().location = Some(location);
                self.catalog
                    .update_partitions(self.scope, t.database(), &t.name, vec![(values, input)])
                    .await
                    .map(none)
                    .map_err(glue)
            }
            Statement::SetTableProperties { table, properties } => {
                let t = self.table(&table)?;
                let mut input = t.to_input();
                input.parameters.get_or_insert_default().extend(properties);
                self.update_table(input, t.database()).await.map(none)
            }
            Statement::RepairTable { table } => self.repair(&table).await,
            Statement::ShowDatabases { like: pattern } => {
                let dbs = self.catalog.list_databases(self.scope).map_err(glue)?;
                let names = dbs
                    .into_iter()
                    .map(|d| d.name)
                    .filter(|n| like(pattern.as_deref(), n));
                Ok((&["database_name"], names.collect()))
            }
            Statement::ShowTables { database, like } => self.show_tables(database, like, false),
            Statement::ShowViews { database, like } => self.show_tables(database, like, true),
            Statement::ShowPartitions { table } => {
                let t = self.table(&table)?;
                if t.partition_keys().is_empty() {
                    return Err(DdlError::invalid(format!(
                        "FAILED: SemanticException [Error 10241]: Table {} is not a partitioned table",
                        t.name
                    )));
                }
                let (t, parts) = self
                    .catalog
                    .list_partitions(self.scope, t.database(), &t.name, None)
                    .map_err(glue)?;
                let mut names: Vec<String> = parts.iter().map(|p| partition_name(&t, p.values())).collect();
                names.sort();
                Ok((&["partition"], names))
            }
            Statement::ShowColumns { table } => {
                let t = self.table(&table)?;
                let names = t
                    .columns()
                    .iter()
                    .chain(t.partition_keys())
                    .map(|c| c.name.clone());
                Ok((&["field"], names.collect()))
            }
            Statement::ShowCreateTable { table } => {
                let t = self.table(&table)?;
                if t.is_view() {
                    return Err(DdlError::invalid(format!(
                        "FAILED: SemanticException {}.{} is a view; use SHOW CREATE VIEW",
                        t.database(),
                        t.name
                    )));
                }
                Ok((
                    &["createtab_stmt"],
                    show_create_table(&t).lines().map(str::to_owned).collect(),
                ))
            }
            Statement::ShowCreateView { view } => {
                let t = self.table(&view)?;
                let sql = crate::view::original_sql(&t).ok_or_else(|| {
                    DdlError::invalid(format!(
                        "FAILED: SemanticException {}.{} is not a view",
                        t.database(),
                        t.name
                    ))
                })?;
                let text = format!("CREATE VIEW \"{}\".\"{}\" AS\n{sql}", t.database(), t.name);
                Ok((&["createview_stmt"], text.lines().map(str::to_owned).collect()))
            }
            Statement::ShowTableProperties { table, key } => {
                let t = self.table(&table)?;
                let props = t.parameters.clone().unwrap_or_default();
                match key {
                    Some(k) => Ok((
                        &["prpt_value"],
                        vec![
                            props
                                .get(&k)
                                .cloned()
                                .unwrap_or_else(|| format!("Table {} does not have property: {k}", t.name)),
                        ],
                    )),
                    None => Ok((
                        &["prpt_name", "prpt_value"],
                        props.iter().map(|(k, v)| format!("{k}\t{v}")).collect(),
                    )),
                }
            }
            Statement::Describe {
                table,
                column,
                formatted,
            } => {
                let t = self.table(&table)?;
                Ok((
                    &["col_name", "data_type", "comment"],
                    describe(&t, column.as_deref(), formatted)?,
                ))
            }
        }
    }

    async fn alter_columns(
        &self,
        table: &Name,
        columns: &[crate::parser::ColumnDef],
        replace: bool,
    ) -> Result<(&'static [&'static str], Vec<String>)> {
        let t = self.table(table)?;
        let mut input = t.to_input();
        let sd = input.storage_descriptor.get_or_insert_default();
        let mut cols = if replace {
            Vec::new()
        } else {
            sd.columns().to_vec()
        };
        for c in glue_columns(columns) {
            if cols.iter().any(|x| x.name == c.name) || t.partition_keys().iter().any(|x| x.name == c.name) {
                return Err(DdlError::invalid(format!(
                    "FAILED: SemanticException [Error 10036]: Duplicate column name: {}",
                    c.name
                )));
            }
            cols.push(c);
        }
        sd.columns = Some(cols);
        self.update_table(input, t.database()).await?;
        Ok(none(()))
    }

    fn show_tables(
        &self,
        database: Option<String>,
        pattern: Option<String>,
        views_only: bool,
    ) -> Result<(&'static [&'static str], Vec<String>)> {
        let db = database.as_deref().unwrap_or(self.database);
        let tables = self.catalog.list_tables(self.scope, db).map_err(|_| {
            DdlError::not_found(format!(
                "FAILED: SemanticException [Error 10072]: Database does not exist: {db}"
            ))
        })?;
        let names = tables
            .into_iter()
            .filter(|t| !views_only || t.is_view())
            .map(|t| t.name)
            .filter(|n| like(pattern.as_deref(), n));
        Ok((
            if views_only { &["views"] } else { &["tab_name"] },
            names.collect(),
        ))
    }

    async fn create_table(
        &self,
        ct: crate::parser::CreateTable,
    ) -> Result<(&'static [&'static str], Vec<String>)> {
        let db = self.db(&ct.name).to_owned();
        let property = |k: &str| {
            ct.properties
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        if property("table_type").is_some_and(|v| v.eq_ignore_ascii_case("ICEBERG")) {
            return Err(DdlError::not_supported(
                "NOT_SUPPORTED: Iceberg tables are not supported by Lakebox's Athena yet.",
            ));
        }
        if !ct.external {
            return Err(DdlError::invalid(
                "FAILED: SemanticException Only EXTERNAL tables can be created with this statement: write CREATE EXTERNAL TABLE, or CREATE TABLE … AS SELECT.",
            ));
        }
        let mut seen = BTreeSet::new();
        for c in ct.columns.iter().chain(&ct.partitioned_by) {
            if !seen.insert(c.name.clone()) {
                return Err(DdlError::invalid(format!(
                    "FAILED: SemanticException [Error 10036]: Duplicate column name: {}",
                    c.name
                )));
            }
        }
        if let Some(l) = &ct.location
            && split_s3_url(l).is_none()
        {
            return Err(DdlError::invalid(format!(
                "FAILED: SemanticException Invalid location {l}: table locations are s3:// paths."
            )));
        }
        let sd = formats::storage_descriptor(&ct)
            .map_err(|m| DdlError::invalid(format!("FAILED: SemanticException {m}")))?;
        let mut params: Parameters = ct.properties.iter().cloned().collect();
        params.insert("EXTERNAL".into(), "TRUE".into());
        params.insert("transient_lastDdlTime".into(), now_secs());
        let input = TableInput {
            name: ct.name.name.clone(),
            description: ct.comment.clone(),
            owner: Some("hadoop".into()),
            retention: Some(0),
            storage_descriptor: Some(sd),
            partition_keys: Some(glue_columns(&ct.partitioned_by)),
            table_type: Some("EXTERNAL_TABLE".into()),
            parameters: Some(params),
            ..Default::default()
        };
        if self.catalog.get_database(self.scope, &db).is_err() {
            return Err(DdlError::not_found(format!(
                "FAILED: SemanticException [Error 10072]: Database does not exist: {db}"
            )));
        }
        match self
            .catalog
            .create_table(self.scope, &db, input, Vec::new())
            .await
        {
            Ok(_) => Ok(none(())),
            Err(e) if GlueError::of(&e) == GlueError::AlreadyExists && ct.if_not_exists => Ok(none(())),
            Err(e) if GlueError::of(&e) == GlueError::AlreadyExists => Err(DdlError::invalid(format!(
                "FAILED: Execution Error, return code 1 from org.apache.hadoop.hive.ql.exec.DDLTask. AlreadyExistsException(message:Table {} already exists)",
                ct.name.name
            ))),
            Err(e) => Err(glue(e)),
        }
    }

    /// MSCK REPAIR TABLE: adds the Hive-style partition folders (`key=value/…`) found under the
    /// table's location that the catalog does not know yet.
    async fn repair(&self, name: &Name) -> Result<(&'static [&'static str], Vec<String>)> {
        let t = self.table(name)?;
        if t.partition_keys().is_empty() {
            return Ok(none(()));
        }
        let location = t.location().unwrap_or_default();
        let (bucket, prefix) = split_s3_url(location).ok_or_else(|| {
            DdlError::invalid(format!(
                "FAILED: SemanticException Table {} has no s3:// location",
                t.name
            ))
        })?;
        let prefix = with_slash(prefix).trim_start_matches('/').to_owned();
        let prefix = if prefix == "/" { String::new() } else { prefix };
        let mut found = BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .lake
                .list(bucket, &prefix, after.as_deref(), 1000)
                .map_err(|e| DdlError::invalid(format!("FAILED: cannot list {location}: {}", e.message)))?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for o in &page {
                let rest = &o.key[prefix.len()..];
                let dirs: Vec<&str> = rest.split('/').collect();
                if dirs.len() <= t.partition_keys().len() {
                    continue;
                }
                let values: Option<Vec<String>> = t
                    .partition_keys()
                    .iter()
                    .zip(&dirs)
                    .map(|(k, d)| {
                        let (key, value) = d.split_once('=')?;
                        key.eq_ignore_ascii_case(&k.name).then(|| unescape_path(value))
                    })
                    .collect();
                if let Some(v) = values {
                    found.insert(v);
                }
            }
        }
        let (_, known) = self
            .catalog
            .list_partitions(self.scope, t.database(), &t.name, None)
            .map_err(glue)?;
        let known: BTreeSet<Vec<String>> = known.into_iter().map(|p| p.values().to_vec()).collect();
        let missing: Vec<Vec<String>> = found.into_iter().filter(|v| !known.contains(v)).collect();
        if missing.is_empty() {
            return Ok(none(()));
        }
        let names: Vec<String> = missing
            .iter()
            .map(|v| format!("{}:{}", t.name, partition_name(&t, v)))
            .collect();
        let inputs = missing
            .into_iter()
            .map(|v| self.partition_input(&t, v, None))
            .collect();
        self.catalog
            .create_partitions(self.scope, t.database(), &t.name, inputs)
            .await
            .map_err(glue)?;
        let mut lines = vec![format!("Partitions not in metastore:\t{}", names.join("\t"))];
        lines.extend(
            names
                .iter()
                .map(|n| format!("Repair: Added partition to metastore {n}")),
        );
        Ok((&[], lines))
    }
}

/// No result rows, whatever the catalog call returned.
fn none<T>(_: T) -> (&'static [&'static str], Vec<String>) {
    (&[], Vec::new())
}

fn pad(s: &str) -> String {
    format!("{s:<20}")
}

fn describe_line(name: &str, type_: &str, comment: &str) -> String {
    format!("{}\t{}\t{}", pad(name), pad(type_), pad(comment))
}

/// DESCRIBE as Hive prints it: one line per column, then the partition keys under their heading.
fn describe(t: &Table, column: Option<&str>, formatted: bool) -> Result<Vec<String>> {
    let all: Vec<_> = t.columns().iter().chain(t.partition_keys()).collect();
    if let Some(name) = column {
        let c = all
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                DdlError::invalid(format!(
                    "FAILED: SemanticException [Error 10002]: Invalid column reference {name}"
                ))
            })?;
        return Ok(vec![describe_line(
            &c.name,
            c.type_name(),
            c.comment.as_deref().unwrap_or(""),
        )]);
    }
    let mut lines = Vec::new();
    if formatted {
        lines.push(describe_line("# col_name", "data_type", "comment"));
        lines.push("\t \t ".into());
    }
    // Hive lists every column, partition keys last, then the partition keys again under
    // "# Partition Information" (awswrangler's describe_table marks a column repeated there
    // as a partition column).
    for c in t.columns().iter().chain(t.partition_keys()) {
        lines.push(describe_line(
            &c.name,
            c.type_name(),
            c.comment.as_deref().unwrap_or(""),
        ));
    }
    if !t.partition_keys().is_empty() {
        lines.push("\t \t ".into());
        lines.push("# Partition Information\t \t ".into());
        lines.push(describe_line("# col_name", "data_type", "comment"));
        lines.push("\t \t ".into());
        for c in t.partition_keys() {
            lines.push(describe_line(
                &c.name,
                c.type_name(),
                c.comment.as_deref().unwrap_or(""),
            ));
        }
    }
    if formatted {
        let sd = t.storage_descriptor.clone().unwrap_or_default();
        let serde = sd.serde_info.clone().unwrap_or_default();
        lines.push("\t \t ".into());
        lines.push("# Detailed Table Information\t \t ".into());
        // `Label:` padded to 20 characters, a tab, the value, as Hive prints them.
        let detail = |label: &str, value: &str| format!("{label:<20}\t{value}\t ");
        let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
        lines.push(detail("Database:", t.database()));
        lines.push(detail("Owner:", &or_empty(&t.owner)));
        lines.push(detail("Location:", &or_empty(&sd.location)));
        lines.push(detail("Table Type:", &or_empty(&t.table_type)));
        lines.push("Table Parameters:\t \t ".into());
        for (k, v) in t.parameters.clone().unwrap_or_default() {
            lines.push(format!("\t{}\t{v}", pad(&k)));
        }
        lines.push("\t \t ".into());
        lines.push("# Storage Information\t \t ".into());
        lines.push(detail("SerDe Library:", &or_empty(&serde.serialization_library)));
        lines.push(detail("InputFormat:", &or_empty(&sd.input_format)));
        lines.push(detail("OutputFormat:", &or_empty(&sd.output_format)));
        let compressed = if sd.compressed == Some(true) { "Yes" } else { "No" };
        lines.push(detail("Compressed:", compressed));
        lines.push(detail(
            "Num Buckets:",
            &sd.number_of_buckets.unwrap_or(0).to_string(),
        ));
        lines.push("Storage Desc Params:\t \t ".into());
        for (k, v) in serde.parameters.unwrap_or_default() {
            lines.push(format!(
                "\t{}\t{}",
                pad(&k),
                formats::quote(&v).trim_matches('\'')
            ));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_show_patterns() {
        assert!(like(Some("ord*|cust*"), "Orders"));
        assert!(like(Some("ord*|cust*"), "customers"));
        assert!(!like(Some("ord*"), "xorders"));
        assert!(like(Some("a.b"), "a.b") && !like(Some("a.b"), "axb"));
        assert!(like(None, "anything"));
    }

    #[test]
    fn partition_paths_escape_as_hive_does() {
        assert_eq!(escape_path("2024-01-01 10:00"), "2024-01-01 10%3A00");
        assert_eq!(unescape_path("2024-01-01 10%3A00"), "2024-01-01 10:00");
        assert_eq!(unescape_path("100%"), "100%");
    }
}
