//! The Data Catalog as a Rust API: databases, tables (with their version history), partitions
//! and partition indexes, durable in one metadata store. The Glue operations, Athena's DDL and
//! Firehose's format conversion all call this; nothing goes through HTTP.
//!
//! Names are case-insensitive and stored lowercase, as Glue does for Hive compatibility.
//! Keys put the account and region first, so each (account, region) is its own catalog.

use std::path::Path;
use std::sync::Arc;

use lakebox_core::{Arn, Clock, RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use lakebox_store::kv::WriteBatch;
use lakebox_store::{MetaStore, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::{self, check_name, internal};
use crate::expr::PartitionFilter;
use crate::model::reshape;
use crate::model::*;

const DATABASES: &str = "databases";
const TABLES: &str = "tables";
const TABLE_VERSIONS: &str = "table_versions";
const PARTITIONS: &str = "partitions";
const PARTITION_INDEXES: &str = "partition_indexes";

/// Separates the parts of a key; never appears in a Glue name or partition value.
const SEP: u8 = 0;
/// Separates partition values inside a partition key.
const VALUE_SEP: char = '\u{1}';

/// Glue's limit on partition indexes per table.
pub const MAX_PARTITION_INDEXES: usize = 3;

/// Which catalog: Glue keeps one per account and region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }

    fn key(&self, parts: &[&str]) -> Vec<u8> {
        let mut k = Vec::with_capacity(64);
        k.extend_from_slice(self.account.as_bytes());
        k.push(SEP);
        k.extend_from_slice(self.region.as_bytes());
        for p in parts {
            k.push(SEP);
            k.extend_from_slice(p.as_bytes());
        }
        k
    }

    /// The prefix of every key below `parts` (the key plus a separator).
    fn prefix(&self, parts: &[&str]) -> Vec<u8> {
        let mut k = self.key(parts);
        k.push(SEP);
        k
    }
}

impl From<&RequestContext> for Scope {
    fn from(ctx: &RequestContext) -> Self {
        Scope::new(ctx.account_id.clone(), ctx.region.clone())
    }
}

/// Glue's names are lowercase.
pub fn normalize(name: &str) -> String {
    name.to_lowercase()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("catalog record: {e}")))
}

fn partition_key_part(values: &[String]) -> String {
    let mut s = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(VALUE_SEP);
        }
        s.push_str(v);
    }
    s
}

fn version_key_part(version: u64) -> String {
    format!("{version:020}")
}

/// One partition write's outcome in a batch: its values and the error, if it failed.
pub type PartitionFailure = (Vec<String>, ServiceError);

pub struct Catalog {
    store: Arc<MetaStore>,
    clock: Arc<dyn Clock>,
}

impl Catalog {
    /// A catalog in its own store file.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Ok(Catalog::new(Arc::new(MetaStore::open(path)?), clock))
    }

    /// A catalog in a store shared with other Glue state (its tables have their own names).
    pub fn new(store: Arc<MetaStore>, clock: Arc<dyn Clock>) -> Self {
        Catalog { store, clock }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock.now_millis())
    }

    // ---- databases ----

    pub async fn create_database(
        &self,
        scope: &Scope,
        input: DatabaseInput,
    ) -> Result<Database, ServiceError> {
        check_name("databaseInput.name", &input.name)?;
        let db = Database {
            name: normalize(&input.name),
            description: input.description,
            location_uri: input.location_uri,
            parameters: Some(input.parameters.unwrap_or_default()),
            create_time: Some(self.now()),
            create_table_default_permissions: input.create_table_default_permissions,
            target_database: input.target_database,
            catalog_id: Some(scope.account.clone()),
            federated_database: input.federated_database,
        };
        let key = scope.key(&[&db.name]);
        let value = encode(&db).map_err(internal)?;
        let created = self
            .store
            .write_async(move |b| {
                if b.get(DATABASES, &key)?.is_some() {
                    return Ok(false);
                }
                b.put(DATABASES, &key, &value)?;
                Ok(true)
            })
            .await
            .map_err(internal)?;
        if !created {
            return Err(errors::already_exists("Database already exists."));
        }
        Ok(db)
    }

    pub fn get_database(&self, scope: &Scope, name: &str) -> Result<Database, ServiceError> {
        let name = normalize(name);
        match self
            .store
            .get(DATABASES, &scope.key(&[&name]))
            .map_err(internal)?
        {
            Some(v) => decode(&v).map_err(internal),
            None => Err(errors::database_not_found(&name)),
        }
    }

    pub fn list_databases(&self, scope: &Scope) -> Result<Vec<Database>, ServiceError> {
        let rows = self
            .store
            .read(|r| r.scan_prefix(DATABASES, &scope.prefix(&[])))
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v).map_err(internal)).collect()
    }

    pub async fn update_database(
        &self,
        scope: &Scope,
        name: &str,
        input: DatabaseInput,
    ) -> Result<(), ServiceError> {
        check_name("databaseInput.name", &input.name)?;
        let name = normalize(name);
        if normalize(&input.name) != name {
            // Glue cannot rename a database.
            return Err(errors::invalid_input("Database name cannot be changed."));
        }
        let key = scope.key(&[&name]);
        let found = self
            .store
            .write_async(move |b| {
                let Some(old) = b.get(DATABASES, &key)? else {
                    return Ok(false);
                };
                let old: Database = decode(&old)?;
                let db = Database {
                    description: input.description,
                    location_uri: input.location_uri,
                    parameters: Some(input.parameters.unwrap_or_default()),
                    create_table_default_permissions: input.create_table_default_permissions,
                    target_database: input.target_database,
                    federated_database: input.federated_database,
                    ..old
                };
                b.put(DATABASES, &key, &encode(&db)?)?;
                Ok(true)
            })
            .await
            .map_err(internal)?;
        if !found {
            return Err(errors::database_not_found(&name));
        }
        Ok(())
    }

    /// Deletes the database with all its tables, their versions, partitions and indexes.
    pub async fn delete_database(&self, scope: &Scope, name: &str) -> Result<(), ServiceError> {
        let name = normalize(name);
        let key = scope.key(&[&name]);
        let below = scope.prefix(&[&name]);
        let found = self
            .store
            .write_async(move |b| {
                if !b.delete(DATABASES, &key)? {
                    return Ok(false);
                }
                for table in [TABLES, TABLE_VERSIONS, PARTITIONS, PARTITION_INDEXES] {
                    for (k, _) in b.scan_prefix(table, &below)? {
                        b.delete(table, &k)?;
                    }
                }
                Ok(true)
            })
            .await
            .map_err(internal)?;
        if !found {
            return Err(errors::database_not_found(&name));
        }
        Ok(())
    }

    // ---- tables ----

    fn table_from_input(&self, scope: &Scope, db: &str, input: TableInput, now: Timestamp) -> Table {
        Table {
            name: normalize(&input.name),
            database_name: Some(db.to_owned()),
            description: input.description,
            owner: input.owner,
            create_time: Some(now),
            update_time: Some(now),
            last_access_time: input.last_access_time,
            last_analyzed_time: input.last_analyzed_time,
            retention: Some(input.retention.unwrap_or(0)),
            storage_descriptor: input.storage_descriptor.map(StorageDescriptor::with_defaults),
            partition_keys: Some(input.partition_keys.unwrap_or_default()),
            view_original_text: input.view_original_text,
            view_expanded_text: input.view_expanded_text,
            table_type: input.table_type,
            parameters: Some(input.parameters.unwrap_or_default()),
            created_by: None,
            is_registered_with_lake_formation: Some(false),
            target_table: input.target_table,
            catalog_id: Some(scope.account.clone()),
            version_id: Some("0".into()),
            view_definition: input.view_definition.as_ref().map(reshape),
            ..Default::default()
        }
    }

    fn check_table_input(input: &TableInput) -> Result<(), ServiceError> {
        check_name("tableInput.name", &input.name)?;
        let mut seen = std::collections::HashSet::new();
        for c in input.partition_keys.iter().flatten() {
            check_name("tableInput.partitionKeys.member.name", &c.name)?;
            if !seen.insert(c.name.to_lowercase()) {
                return Err(errors::invalid_input(format!(
                    "Partition key {} is duplicated.",
                    c.name
                )));
            }
        }
        Ok(())
    }

    pub async fn create_table(
        &self,
        scope: &Scope,
        database: &str,
        input: TableInput,
        indexes: Vec<PartitionIndex>,
    ) -> Result<Table, ServiceError> {
        Self::check_table_input(&input)?;
        let db = normalize(database);
        let mut table = self.table_from_input(scope, &db, input, self.now());
        table.created_by = Some(Arn::new("iam", "", &scope.account, "root").to_string());
        let descriptors = index_descriptors(&table, &indexes)?;
        let db_key = scope.key(&[&db]);
        let key = scope.key(&[&db, &table.name]);
        let version_key = scope.key(&[&db, &table.name, &version_key_part(0)]);
        let value = encode(&table).map_err(internal)?;
        let indexes_value = encode(&descriptors).map_err(internal)?;
        let outcome = self
            .store
            .write_async(move |b| {
                if b.get(DATABASES, &db_key)?.is_none() {
                    return Ok(Some(false));
                }
                if b.get(TABLES, &key)?.is_some() {
                    return Ok(Some(true));
                }
                b.put(TABLES, &key, &value)?;
                b.put(TABLE_VERSIONS, &version_key, &value)?;
                if !descriptors.is_empty() {
                    b.put(PARTITION_INDEXES, &key, &indexes_value)?;
                }
                Ok(None)
            })
            .await
            .map_err(internal)?;
        match outcome {
            Some(false) => Err(errors::database_not_found(&db)),
            Some(true) => Err(errors::already_exists("Table already exists.")),
            None => Ok(table),
        }
    }

    pub fn get_table(&self, scope: &Scope, database: &str, name: &str) -> Result<Table, ServiceError> {
        let (db, name) = (normalize(database), normalize(name));
        let (db_row, row) = self
            .store
            .read(|r| {
                Ok((
                    r.get(DATABASES, &scope.key(&[&db]))?,
                    r.get(TABLES, &scope.key(&[&db, &name]))?,
                ))
            })
            .map_err(internal)?;
        if db_row.is_none() {
            return Err(errors::database_not_found(&db));
        }
        match row {
            Some(v) => decode(&v).map_err(internal),
            None => Err(errors::table_not_found(&db, &name)),
        }
    }

    /// Every table of a database, in name order.
    pub fn list_tables(&self, scope: &Scope, database: &str) -> Result<Vec<Table>, ServiceError> {
        let db = normalize(database);
        let (db_row, rows) = self
            .store
            .read(|r| {
                Ok((
                    r.get(DATABASES, &scope.key(&[&db]))?,
                    r.scan_prefix(TABLES, &scope.prefix(&[&db]))?,
                ))
            })
            .map_err(internal)?;
        if db_row.is_none() {
            return Err(errors::database_not_found(&db));
        }
        rows.iter().map(|(_, v)| decode(v).map_err(internal)).collect()
    }

    /// Every table of every database of the catalog.
    pub fn all_tables(&self, scope: &Scope) -> Result<Vec<Table>, ServiceError> {
        let rows = self
            .store
            .read(|r| r.scan_prefix(TABLES, &scope.prefix(&[])))
            .map_err(internal)?;
        rows.iter().map(|(_, v)| decode(v).map_err(internal)).collect()
    }

    /// Replaces a table's definition, keeping the old one as a version unless `skip_archive`.
    /// With `expected_version`, refuses (`ConcurrentModificationException`) when the table has
    /// moved on since the caller read it.
    pub async fn update_table(
        &self,
        scope: &Scope,
        database: &str,
        input: TableInput,
        skip_archive: bool,
        expected_version: Option<String>,
    ) -> Result<Table, ServiceError> {
        Self::check_table_input(&input)?;
        let db = normalize(database);
        let name = normalize(&input.name);
        let db_key = scope.key(&[&db]);
        let key = scope.key(&[&db, &name]);
        let scope2 = scope.clone();
        let fresh = self.table_from_input(scope, &db, input, self.now());
        self
            .store
            .write_async(move |b| {
                if b.get(DATABASES, &db_key)?.is_none() {
                    return Ok(Err(errors::database_not_found(&db)));
                }
                let Some(old) = b.get(TABLES, &key)? else {
                    return Ok(Err(errors::table_not_found(&db, &name)));
                };
                let old: Table = decode(&old)?;
                if let Some(expected) = &expected_version
                    && expected != old.version()
                {
                    return Ok(Err(errors::concurrent_modification(format!(
                        "Update table failed due to concurrent modifications: version {expected} is not the current version {} of table {name}.",
                        old.version()
                    ))));
                }
                let old_version: u64 = old.version().parse().unwrap_or(0);
                let version = old_version + 1;
                let table = Table {
                    create_time: old.create_time,
                    created_by: old.created_by.clone(),
                    version_id: Some(version.to_string()),
                    ..fresh
                };
                if skip_archive {
                    // The previous definition is not kept: it is replaced in the history too.
                    let _ = b.delete(
                        TABLE_VERSIONS,
                        &scope2.key(&[&db, &name, &version_key_part(old_version)]),
                    )?;
                }
                let value = encode(&table)?;
                b.put(TABLES, &key, &value)?;
                b.put(
                    TABLE_VERSIONS,
                    &scope2.key(&[&db, &name, &version_key_part(version)]),
                    &value,
                )?;
                Ok(Ok(table))
            })
            .await
            .map_err(internal)?
    }

    /// Deletes a table with its versions, partitions and indexes.
    pub async fn delete_table(&self, scope: &Scope, database: &str, name: &str) -> Result<(), ServiceError> {
        let db = normalize(database);
        let name = normalize(name);
        let db_key = scope.key(&[&db]);
        let key = scope.key(&[&db, &name]);
        let below = scope.prefix(&[&db, &name]);
        self.store
            .write_async(move |b| {
                if b.get(DATABASES, &db_key)?.is_none() {
                    return Ok(Err(errors::database_not_found(&db)));
                }
                if !b.delete(TABLES, &key)? {
                    return Ok(Err(errors::table_not_found(&db, &name)));
                }
                let _ = b.delete(PARTITION_INDEXES, &key)?;
                for table in [TABLE_VERSIONS, PARTITIONS] {
                    for (k, _) in b.scan_prefix(table, &below)? {
                        b.delete(table, &k)?;
                    }
                }
                Ok(Ok(()))
            })
            .await
            .map_err(internal)?
    }

    /// The table's versions, newest first (the current definition is the first).
    pub fn table_versions(
        &self,
        scope: &Scope,
        database: &str,
        name: &str,
    ) -> Result<Vec<TableVersion>, ServiceError> {
        let table = self.get_table(scope, database, name)?;
        let rows = self
            .store
            .read(|r| r.scan_prefix(TABLE_VERSIONS, &scope.prefix(&[table.database(), &table.name])))
            .map_err(internal)?;
        let mut out = rows
            .iter()
            .map(|(_, v)| {
                let t: Table = decode(v).map_err(internal)?;
                Ok(TableVersion {
                    version_id: t.version_id.clone(),
                    table: Some(t),
                })
            })
            .collect::<Result<Vec<_>, ServiceError>>()?;
        out.reverse();
        Ok(out)
    }

    /// Deletes old versions; each failure is reported with its version id. The current
    /// version cannot be deleted (drop the table instead).
    pub async fn delete_table_versions(
        &self,
        scope: &Scope,
        database: &str,
        name: &str,
        versions: Vec<String>,
    ) -> Result<Vec<(String, ServiceError)>, ServiceError> {
        let table = self.get_table(scope, database, name)?;
        let scope = scope.clone();
        self.store
            .write_async(move |b| {
                let mut failures = Vec::new();
                for v in versions {
                    let Ok(n) = v.parse::<u64>() else {
                        failures.push((
                            v.clone(),
                            errors::invalid_input(format!("Invalid version id {v}.")),
                        ));
                        continue;
                    };
                    if v == table.version() {
                        failures.push((
                            v,
                            errors::invalid_input("Cannot delete the current version of a table."),
                        ));
                        continue;
                    }
                    let key = scope.key(&[table.database(), &table.name, &version_key_part(n)]);
                    if !b.delete(TABLE_VERSIONS, &key)? {
                        failures.push((
                            v.clone(),
                            errors::not_found(format!("Version {v} of table {} not found.", table.name)),
                        ));
                    }
                }
                Ok(failures)
            })
            .await
            .map_err(internal)
    }

    // ---- partitions ----

    fn check_values(table: &Table, values: &[String]) -> Result<(), ServiceError> {
        if values.len() != table.partition_keys().len() {
            return Err(errors::invalid_input(format!(
                "The number of partition keys do not match the number of partition values. Table {} has {} partition keys; {} values were given.",
                table.name,
                table.partition_keys().len(),
                values.len()
            )));
        }
        for v in values {
            if v.chars().any(|c| c.is_control() && c != '\t') || v.len() > 1024 {
                return Err(errors::invalid_input(format!("Invalid partition value: {v}")));
            }
        }
        Ok(())
    }

    /// Creates partitions; each one that fails (exists already, wrong number of values) is
    /// reported and the others are created.
    pub async fn create_partitions(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        inputs: Vec<PartitionInput>,
    ) -> Result<Vec<PartitionFailure>, ServiceError> {
        let table = self.get_table(scope, database, table)?;
        let now = self.now();
        let scope = scope.clone();
        let mut failures = Vec::new();
        let mut rows = Vec::new();
        for input in inputs {
            let values = input.values.unwrap_or_default();
            if let Err(e) = Self::check_values(&table, &values) {
                failures.push((values, e));
                continue;
            }
            let p = Partition {
                values: Some(values),
                database_name: table.database_name.clone(),
                table_name: Some(table.name.clone()),
                creation_time: Some(now),
                last_access_time: input.last_access_time,
                storage_descriptor: input.storage_descriptor.map(StorageDescriptor::with_defaults),
                parameters: Some(input.parameters.unwrap_or_default()),
                last_analyzed_time: input.last_analyzed_time,
                catalog_id: Some(scope.account.clone()),
            };
            rows.push(p);
        }
        let table_key = scope.key(&[table.database(), &table.name]);
        let mut more = self
            .store
            .write_async(move |b| {
                if b.get(TABLES, &table_key)?.is_none() {
                    return Ok(Err(errors::table_not_found(table.database(), &table.name)));
                }
                let mut failures = Vec::new();
                for p in rows {
                    let key = scope.key(&[table.database(), &table.name, &partition_key_part(p.values())]);
                    if b.get(PARTITIONS, &key)?.is_some() {
                        failures.push((
                            p.values().to_vec(),
                            errors::already_exists("Partition already exists."),
                        ));
                        continue;
                    }
                    b.put(PARTITIONS, &key, &encode(&p)?)?;
                }
                Ok(Ok(failures))
            })
            .await
            .map_err(internal)??;
        failures.append(&mut more);
        Ok(failures)
    }

    pub fn get_partition(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        values: &[String],
    ) -> Result<Partition, ServiceError> {
        let table = self.get_table(scope, database, table)?;
        let key = scope.key(&[table.database(), &table.name, &partition_key_part(values)]);
        match self.store.get(PARTITIONS, &key).map_err(internal)? {
            Some(v) => decode(&v).map_err(internal),
            None => Err(errors::not_found("Cannot find partition.")),
        }
    }

    /// The partitions of a table that pass `filter`, in key order.
    pub fn list_partitions(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        filter: Option<&PartitionFilter>,
    ) -> Result<(Table, Vec<Partition>), ServiceError> {
        let table = self.get_table(scope, database, table)?;
        let rows = self
            .store
            .read(|r| r.scan_prefix(PARTITIONS, &scope.prefix(&[table.database(), &table.name])))
            .map_err(internal)?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, v) in rows {
            let p: Partition = decode(&v).map_err(internal)?;
            if filter.is_none_or(|f| f.matches(p.values())) {
                out.push(p);
            }
        }
        Ok((table, out))
    }

    /// Replaces partitions (`(old values, new definition)`); values may change (a rename).
    pub async fn update_partitions(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        updates: Vec<(Vec<String>, PartitionInput)>,
    ) -> Result<Vec<PartitionFailure>, ServiceError> {
        let table = self.get_table(scope, database, table)?;
        let scope = scope.clone();
        let mut failures = Vec::new();
        let mut ok = Vec::new();
        for (old, new) in updates {
            match Self::check_values(&table, &old)
                .and_then(|()| Self::check_values(&table, new.values.as_deref().unwrap_or_default()))
            {
                Ok(()) => ok.push((old, new)),
                Err(e) => failures.push((old, e)),
            }
        }
        let mut more = self
            .store
            .write_async(move |b| {
                let mut failures = Vec::new();
                for (old_values, input) in ok {
                    let old_key =
                        scope.key(&[table.database(), &table.name, &partition_key_part(&old_values)]);
                    let Some(old) = b.get(PARTITIONS, &old_key)? else {
                        failures.push((old_values, errors::not_found("Cannot find partition.")));
                        continue;
                    };
                    let old: Partition = decode(&old)?;
                    let new_key = scope.key(&[
                        table.database(),
                        &table.name,
                        &partition_key_part(input.values.as_deref().unwrap_or_default()),
                    ]);
                    if new_key != old_key && b.get(PARTITIONS, &new_key)?.is_some() {
                        failures.push((old_values, errors::already_exists("Partition already exists.")));
                        continue;
                    }
                    let p = Partition {
                        values: input.values,
                        last_access_time: input.last_access_time,
                        storage_descriptor: input.storage_descriptor.map(StorageDescriptor::with_defaults),
                        parameters: Some(input.parameters.unwrap_or_default()),
                        last_analyzed_time: input.last_analyzed_time,
                        ..old
                    };
                    b.delete(PARTITIONS, &old_key)?;
                    b.put(PARTITIONS, &new_key, &encode(&p)?)?;
                }
                Ok(failures)
            })
            .await
            .map_err(internal)?;
        failures.append(&mut more);
        Ok(failures)
    }

    pub async fn delete_partitions(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        values: Vec<Vec<String>>,
    ) -> Result<Vec<PartitionFailure>, ServiceError> {
        let table = self.get_table(scope, database, table)?;
        let scope = scope.clone();
        self.store
            .write_async(move |b| {
                let mut failures = Vec::new();
                for v in values {
                    let key = scope.key(&[table.database(), &table.name, &partition_key_part(&v)]);
                    if !b.delete(PARTITIONS, &key)? {
                        failures.push((v, errors::not_found("Cannot find partition.")));
                    }
                }
                Ok(failures)
            })
            .await
            .map_err(internal)
    }

    // ---- partition indexes ----

    pub fn partition_indexes(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
    ) -> Result<Vec<PartitionIndexDescriptor>, ServiceError> {
        let table = self.get_table(scope, database, table)?;
        match self
            .store
            .get(PARTITION_INDEXES, &scope.key(&[table.database(), &table.name]))
            .map_err(internal)?
        {
            Some(v) => decode(&v).map_err(internal),
            None => Ok(Vec::new()),
        }
    }

    pub async fn create_partition_index(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        index: PartitionIndex,
    ) -> Result<(), ServiceError> {
        let t = self.get_table(scope, database, table)?;
        let mut descriptor = index_descriptors(&t, std::slice::from_ref(&index))?;
        let key = scope.key(&[t.database(), &t.name]);
        self.store
            .write_async(move |b| {
                let mut all: Vec<PartitionIndexDescriptor> = match b.get(PARTITION_INDEXES, &key)? {
                    Some(v) => decode(&v)?,
                    None => Vec::new(),
                };
                if all.iter().any(|d| d.index_name == index.index_name) {
                    return Ok(Err(errors::already_exists(format!(
                        "Partition index {} already exists.",
                        index.index_name
                    ))));
                }
                if all.len() >= MAX_PARTITION_INDEXES {
                    return Ok(Err(errors::resource_limit(format!(
                        "A table can have at most {MAX_PARTITION_INDEXES} partition indexes."
                    ))));
                }
                all.append(&mut descriptor);
                b.put(PARTITION_INDEXES, &key, &encode(&all)?)?;
                Ok(Ok(()))
            })
            .await
            .map_err(internal)?
    }

    pub async fn delete_partition_index(
        &self,
        scope: &Scope,
        database: &str,
        table: &str,
        name: &str,
    ) -> Result<(), ServiceError> {
        let t = self.get_table(scope, database, table)?;
        let key = scope.key(&[t.database(), &t.name]);
        let name = name.to_owned();
        self.store
            .write_async(move |b| {
                let mut all: Vec<PartitionIndexDescriptor> = match b.get(PARTITION_INDEXES, &key)? {
                    Some(v) => decode(&v)?,
                    None => Vec::new(),
                };
                let before = all.len();
                all.retain(|d| d.index_name != name);
                if all.len() == before {
                    return Ok(Err(errors::not_found(format!(
                        "Partition index {name} not found."
                    ))));
                }
                b.put(PARTITION_INDEXES, &key, &encode(&all)?)?;
                Ok(Ok(()))
            })
            .await
            .map_err(internal)?
    }

    /// Runs `f` in one durable transaction of the catalog store: crawlers, `MSCK REPAIR` and
    /// CTAS write a table with its partitions all at once or not at all.
    pub async fn transact<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut CatalogWrite<'_, '_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.store
            .write_async(move |b| f(&mut CatalogWrite { batch: b }))
            .await
            .map_err(internal)
    }
}

/// Catalog writes inside one transaction, for callers that change several things at once.
pub struct CatalogWrite<'a, 'b> {
    batch: &'a mut WriteBatch<'b>,
}

impl CatalogWrite<'_, '_> {
    pub fn table(&self, scope: &Scope, db: &str, name: &str) -> Result<Option<Table>, StoreError> {
        match self.batch.get(TABLES, &scope.key(&[db, name]))? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn has_database(&self, scope: &Scope, db: &str) -> Result<bool, StoreError> {
        Ok(self.batch.get(DATABASES, &scope.key(&[db]))?.is_some())
    }

    /// Writes `table` as its next version (or version 0 when new).
    pub fn put_table(&mut self, scope: &Scope, mut table: Table) -> Result<Table, StoreError> {
        let key = scope.key(&[table.database(), &table.name]);
        let version = match self.batch.get(TABLES, &key)? {
            Some(old) => {
                let old: Table = decode(&old)?;
                table.create_time = old.create_time;
                old.version().parse::<u64>().unwrap_or(0) + 1
            }
            None => 0,
        };
        table.version_id = Some(version.to_string());
        let value = encode(&table)?;
        self.batch.put(TABLES, &key, &value)?;
        self.batch.put(
            TABLE_VERSIONS,
            &scope.key(&[table.database(), &table.name, &version_key_part(version)]),
            &value,
        )?;
        Ok(table)
    }

    pub fn partition(
        &self,
        scope: &Scope,
        db: &str,
        table: &str,
        values: &[String],
    ) -> Result<Option<Partition>, StoreError> {
        match self
            .batch
            .get(PARTITIONS, &scope.key(&[db, table, &partition_key_part(values)]))?
        {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub fn put_partition(&mut self, scope: &Scope, p: &Partition) -> Result<(), StoreError> {
        let key = partition_record_key(scope, p);
        self.batch.put(PARTITIONS, &key, &encode(p)?)
    }

    pub fn partitions(&self, scope: &Scope, db: &str, table: &str) -> Result<Vec<Partition>, StoreError> {
        self.batch
            .scan_prefix(PARTITIONS, &scope.prefix(&[db, table]))?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    pub fn delete_partition(&mut self, scope: &Scope, p: &Partition) -> Result<(), StoreError> {
        let key = partition_record_key(scope, p);
        self.batch.delete(PARTITIONS, &key).map(|_| ())
    }

    pub fn delete_table(&mut self, scope: &Scope, db: &str, name: &str) -> Result<(), StoreError> {
        let key = scope.key(&[db, name]);
        self.batch.delete(TABLES, &key)?;
        let _ = self.batch.delete(PARTITION_INDEXES, &key)?;
        let below = scope.prefix(&[db, name]);
        for t in [TABLE_VERSIONS, PARTITIONS] {
            for (k, _) in self.batch.scan_prefix(t, &below)? {
                self.batch.delete(t, &k)?;
            }
        }
        Ok(())
    }
}

/// Where a partition is stored: its table's key and its values.
fn partition_record_key(scope: &Scope, p: &Partition) -> Vec<u8> {
    let db = p.database_name.as_deref().unwrap_or_default();
    let table = p.table_name.as_deref().unwrap_or_default();
    scope.key(&[db, table, &partition_key_part(p.values())])
}

/// Validates index definitions against the table's partition keys and describes them.
fn index_descriptors(
    table: &Table,
    indexes: &[PartitionIndex],
) -> Result<Vec<PartitionIndexDescriptor>, ServiceError> {
    if indexes.len() > MAX_PARTITION_INDEXES {
        return Err(errors::resource_limit(format!(
            "A table can have at most {MAX_PARTITION_INDEXES} partition indexes."
        )));
    }
    indexes
        .iter()
        .map(|ix| {
            check_name("partitionIndex.indexName", &ix.index_name)?;
            if ix.keys.is_empty() {
                return Err(errors::invalid_input("A partition index needs at least one key."));
            }
            let keys = ix
                .keys
                .iter()
                .map(|k| {
                    table
                        .partition_keys()
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(k))
                        .map(|c| KeySchemaElement {
                            name: c.name.clone(),
                            r#type: c.type_name().to_owned(),
                        })
                        .ok_or_else(|| {
                            errors::invalid_input(format!(
                                "Partition index key {k} is not a partition key of table {}.",
                                table.name
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(PartitionIndexDescriptor {
                index_name: ix.index_name.clone(),
                keys,
                index_status: PartitionIndexStatus::Active,
                backfill_errors: None,
            })
        })
        .collect()
}
