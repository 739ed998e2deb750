//! The Data Catalog operations: requests decoded, checked, and answered through [`Catalog`].

use lakebox_core::{RequestContext, ServiceError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::catalog::{Catalog, PartitionFailure, Scope, normalize};
use crate::errors::page;
use crate::errors::{self, check_name, constraint};
use crate::expr::PartitionFilter;
use crate::model::*;

/// Glue's default and largest page for catalog getters.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
const MAX_BATCH_PARTITIONS: usize = 100;

/// A request may name another account's catalog; Lakebox serves the caller's only.
fn scope(ctx: &RequestContext, catalog_id: &Option<String>) -> Result<Scope, ServiceError> {
    if let Some(id) = catalog_id
        && id != &ctx.account_id
    {
        return Err(errors::not_found(format!("Catalog {id} not found.")));
    }
    Ok(Scope::from(ctx))
}

fn page_size(max: Option<i64>, default: usize) -> Result<usize, ServiceError> {
    match max {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(constraint(
            "maxResults",
            &n.to_string(),
            "Member must have value between 1 and 1000",
        )),
    }
}

fn partition_errors(failures: Vec<PartitionFailure>) -> Vec<Value> {
    failures
        .into_iter()
        .map(|(values, e)| json!({"PartitionValues": values, "ErrorDetail": ErrorDetail::from(&e)}))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogRef {
    pub catalog_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateDatabaseRequest {
    pub catalog_id: Option<String>,
    pub database_input: DatabaseInput,
}

pub async fn create_database(
    c: &Catalog,
    ctx: &RequestContext,
    r: CreateDatabaseRequest,
) -> Result<Value, ServiceError> {
    c.create_database(&scope(ctx, &r.catalog_id)?, r.database_input)
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameRequest {
    pub catalog_id: Option<String>,
    pub name: String,
}

pub fn get_database(c: &Catalog, ctx: &RequestContext, r: NameRequest) -> Result<Value, ServiceError> {
    let db = c.get_database(&scope(ctx, &r.catalog_id)?, &r.name)?;
    Ok(json!({ "Database": db }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRequest {
    pub catalog_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

pub fn get_databases(c: &Catalog, ctx: &RequestContext, r: ListRequest) -> Result<Value, ServiceError> {
    let all = c.list_databases(&scope(ctx, &r.catalog_id)?)?;
    let (list, next) = page(
        all,
        |d| d.name.clone(),
        r.next_token.as_deref(),
        page_size(r.max_results, DEFAULT_PAGE)?,
    )?;
    Ok(json!({ "DatabaseList": list, "NextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateDatabaseRequest {
    pub catalog_id: Option<String>,
    pub name: String,
    pub database_input: DatabaseInput,
}

pub async fn update_database(
    c: &Catalog,
    ctx: &RequestContext,
    r: UpdateDatabaseRequest,
) -> Result<Value, ServiceError> {
    c.update_database(&scope(ctx, &r.catalog_id)?, &r.name, r.database_input)
        .await?;
    Ok(json!({}))
}

pub async fn delete_database(
    c: &Catalog,
    ctx: &RequestContext,
    r: NameRequest,
) -> Result<Value, ServiceError> {
    c.delete_database(&scope(ctx, &r.catalog_id)?, &r.name).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateTableRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_input: Option<TableInput>,
    pub partition_indexes: Option<Vec<PartitionIndex>>,
    pub open_table_format_input: Option<Value>,
}

pub async fn create_table(
    c: &Catalog,
    ctx: &RequestContext,
    r: CreateTableRequest,
) -> Result<Value, ServiceError> {
    if r.open_table_format_input.is_some() {
        return Err(errors::invalid_input(
            "OpenTableFormatInput (Iceberg tables) is not supported by Lakebox yet.",
        ));
    }
    let input = r
        .table_input
        .ok_or_else(|| errors::invalid_input("TableInput is required."))?;
    check_column_types(&input)?;
    c.create_table(
        &scope(ctx, &r.catalog_id)?,
        &r.database_name,
        input,
        r.partition_indexes.unwrap_or_default(),
    )
    .await?;
    Ok(json!({}))
}

/// Refuses column types nested too deeply to be queried safely (see
/// [`crate::infer::types::MAX_TYPE_NESTING`]).
fn check_column_types(input: &TableInput) -> Result<(), ServiceError> {
    let columns = input
        .storage_descriptor
        .iter()
        .flat_map(|sd| sd.columns.iter().flatten())
        .chain(input.partition_keys.iter().flatten());
    for c in columns {
        if let Some(t) = &c.type_ {
            crate::infer::types::check_nesting(t).map_err(errors::invalid_input)?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub name: String,
}

pub fn get_table(c: &Catalog, ctx: &RequestContext, r: TableRequest) -> Result<Value, ServiceError> {
    let t = c.get_table(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.name)?;
    Ok(json!({ "Table": t }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTablesRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub expression: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

pub fn get_tables(c: &Catalog, ctx: &RequestContext, r: GetTablesRequest) -> Result<Value, ServiceError> {
    let mut all = c.list_tables(&scope(ctx, &r.catalog_id)?, &r.database_name)?;
    if let Some(e) = r.expression.as_deref().filter(|e| !e.is_empty()) {
        // A regular expression matched against the whole (lowercase) name.
        let re = regex::RegexBuilder::new(&format!("^(?:{e})$"))
            .case_insensitive(true)
            .build()
            .map_err(|err| errors::invalid_input(format!("Invalid expression '{e}': {err}")))?;
        all.retain(|t| re.is_match(&t.name));
    }
    let (list, next) = page(
        all,
        |t| t.name.clone(),
        r.next_token.as_deref(),
        page_size(r.max_results, DEFAULT_PAGE)?,
    )?;
    Ok(json!({ "TableList": list, "NextToken": next }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateTableRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_input: Option<TableInput>,
    pub skip_archive: Option<bool>,
    pub version_id: Option<String>,
}

pub async fn update_table(
    c: &Catalog,
    ctx: &RequestContext,
    r: UpdateTableRequest,
) -> Result<Value, ServiceError> {
    let input = r
        .table_input
        .ok_or_else(|| errors::invalid_input("TableInput is required."))?;
    check_column_types(&input)?;
    c.update_table(
        &scope(ctx, &r.catalog_id)?,
        &r.database_name,
        input,
        r.skip_archive.unwrap_or(false),
        r.version_id,
    )
    .await?;
    Ok(json!({}))
}

pub async fn delete_table(c: &Catalog, ctx: &RequestContext, r: TableRequest) -> Result<Value, ServiceError> {
    c.delete_table(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.name)
        .await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchDeleteTableRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub tables_to_delete: Vec<String>,
}

pub async fn batch_delete_table(
    c: &Catalog,
    ctx: &RequestContext,
    r: BatchDeleteTableRequest,
) -> Result<Value, ServiceError> {
    let s = scope(ctx, &r.catalog_id)?;
    c.get_database(&s, &r.database_name)?;
    let mut errors = Vec::new();
    for name in r.tables_to_delete {
        if let Err(e) = c.delete_table(&s, &r.database_name, &name).await {
            errors.push(json!({"TableName": name, "ErrorDetail": ErrorDetail::from(&e)}));
        }
    }
    Ok(json!({ "Errors": errors }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableVersionsRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_name: String,
    pub version_id: Option<String>,
    pub version_ids: Option<Vec<String>>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

pub fn get_table_versions(
    c: &Catalog,
    ctx: &RequestContext,
    r: TableVersionsRequest,
) -> Result<Value, ServiceError> {
    let all = c.table_versions(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
    // Newest first; the token orders by descending version number.
    let key = |v: &TableVersion| format!("{:020}", u64::MAX - v.version_id.parse::<u64>().unwrap_or(0));
    let (list, next) = page(
        all,
        key,
        r.next_token.as_deref(),
        page_size(r.max_results, DEFAULT_PAGE)?,
    )?;
    Ok(json!({ "TableVersions": list, "NextToken": next }))
}

pub fn get_table_version(
    c: &Catalog,
    ctx: &RequestContext,
    r: TableVersionsRequest,
) -> Result<Value, ServiceError> {
    let all = c.table_versions(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
    let found = match &r.version_id {
        None => all.into_iter().next(),
        Some(v) => all.into_iter().find(|t| &t.version_id == v),
    };
    match found {
        Some(v) => Ok(json!({ "TableVersion": v })),
        None => Err(errors::not_found(format!(
            "Version {} of table {} not found.",
            r.version_id.unwrap_or_default(),
            normalize(&r.table_name)
        ))),
    }
}

pub async fn delete_table_version(
    c: &Catalog,
    ctx: &RequestContext,
    r: TableVersionsRequest,
) -> Result<Value, ServiceError> {
    let v = r
        .version_id
        .ok_or_else(|| errors::invalid_input("VersionId is required."))?;
    let failures = c
        .delete_table_versions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            vec![v],
        )
        .await?;
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({})),
    }
}

pub async fn batch_delete_table_version(
    c: &Catalog,
    ctx: &RequestContext,
    r: TableVersionsRequest,
) -> Result<Value, ServiceError> {
    let ids = r.version_ids.unwrap_or_default();
    if ids.len() > 100 {
        return Err(constraint(
            "versionIds",
            &format!("{} items", ids.len()),
            "Member must have length less than or equal to 100",
        ));
    }
    let failures = c
        .delete_table_versions(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name, ids)
        .await?;
    let table = normalize(&r.table_name);
    let errors: Vec<Value> = failures
        .into_iter()
        .map(|(v, e)| json!({"TableName": table, "VersionId": v, "ErrorDetail": ErrorDetail::from(&e)}))
        .collect();
    Ok(json!({ "Errors": errors }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PropertyPredicate {
    pub key: Option<String>,
    pub value: Option<String>,
    pub comparator: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SortCriterion {
    pub field_name: Option<String>,
    pub sort: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchTablesRequest {
    pub catalog_id: Option<String>,
    pub next_token: Option<String>,
    pub filters: Option<Vec<PropertyPredicate>>,
    pub search_text: Option<String>,
    pub sort_criteria: Option<Vec<SortCriterion>>,
    pub max_results: Option<i64>,
}

fn table_property(t: &Table, key: &str) -> Option<String> {
    match key {
        "DatabaseName" | "databaseName" => Some(t.database_name.clone()),
        "Name" | "TableName" | "name" => Some(t.name.clone()),
        "Description" => t.description.clone(),
        "Owner" => t.owner.clone(),
        "TableType" => t.table_type.clone(),
        "Location" => t.location().map(str::to_owned),
        other => t.parameter(other).map(str::to_owned),
    }
}

/// Whether the table's text (names, description, columns, parameters) mentions `needle`.
fn mentions(t: &Table, needle: &str) -> bool {
    let n = needle.to_lowercase();
    let has = |s: &str| s.to_lowercase().contains(&n);
    has(&t.name)
        || has(&t.database_name)
        || t.description.as_deref().is_some_and(has)
        || t.columns()
            .iter()
            .chain(&t.partition_keys)
            .any(|c| has(&c.name) || c.comment.as_deref().is_some_and(has))
        || t.parameters.iter().flatten().any(|(k, v)| has(k) || has(v))
}

pub fn search_tables(
    c: &Catalog,
    ctx: &RequestContext,
    r: SearchTablesRequest,
) -> Result<Value, ServiceError> {
    let mut all = c.all_tables(&scope(ctx, &r.catalog_id)?)?;
    if let Some(text) = r.search_text.as_deref().filter(|s| !s.is_empty()) {
        all.retain(|t| mentions(t, text));
    }
    for f in r.filters.iter().flatten() {
        let key = f.key.clone().unwrap_or_default();
        let want = f.value.clone().unwrap_or_default();
        let cmp = f.comparator.as_deref().unwrap_or("EQUALS");
        all.retain(|t| {
            let Some(have) = table_property(t, &key) else {
                return false;
            };
            match cmp {
                "EQUALS" => have == want,
                "GREATER_THAN" => have > want,
                "LESS_THAN" => have < want,
                "GREATER_THAN_EQUALS" => have >= want,
                "LESS_THAN_EQUALS" => have <= want,
                _ => false,
            }
        });
    }
    // Sorted by the first criterion, then by database and name so pages are stable.
    let criterion = r.sort_criteria.as_ref().and_then(|c| c.first());
    let field = criterion.and_then(|c| c.field_name.clone()).unwrap_or_default();
    let desc = criterion.and_then(|c| c.sort.as_deref()) == Some("DESC");
    let sort_key = |t: &Table| -> String {
        let primary = match field.as_str() {
            "UpdateTime" => format!("{:020}", t.update_time.as_millis().max(0)),
            "CreateTime" => format!("{:020}", t.create_time.as_millis().max(0)),
            "Name" => t.name.clone(),
            _ => String::new(),
        };
        format!("{primary}\u{1}{}\u{1}{}", t.database_name, t.name)
    };
    all.sort_by_key(&sort_key);
    if desc {
        all.reverse();
    }
    let keyed: Vec<(String, Table)> = all
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("{i:010}"), t))
        .collect();
    let (list, next) = page(
        keyed,
        |(k, _)| k.clone(),
        r.next_token.as_deref(),
        page_size(r.max_results, DEFAULT_PAGE)?,
    )?;
    let list: Vec<Table> = list.into_iter().map(|(_, t)| t).collect();
    Ok(json!({ "TableList": list, "NextToken": next }))
}

// ---- partitions ----

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_name: String,
    pub partition_input: Option<PartitionInput>,
    pub partition_input_list: Option<Vec<PartitionInput>>,
    pub partition_values: Option<Vec<String>>,
    pub partition_value_list: Option<Vec<String>>,
    pub partitions_to_get: Option<Vec<PartitionValueList>>,
    pub partitions_to_delete: Option<Vec<PartitionValueList>>,
    pub entries: Option<Vec<BatchUpdateEntry>>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionValueList {
    pub values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchUpdateEntry {
    pub partition_value_list: Vec<String>,
    pub partition_input: PartitionInput,
}

fn batch_limit(field: &str, n: usize) -> Result<(), ServiceError> {
    if n > MAX_BATCH_PARTITIONS {
        return Err(constraint(
            field,
            &format!("{n} items"),
            "Member must have length less than or equal to 100",
        ));
    }
    Ok(())
}

pub async fn create_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let input = r
        .partition_input
        .ok_or_else(|| errors::invalid_input("PartitionInput is required."))?;
    let failures = c
        .create_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            vec![input],
        )
        .await?;
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({})),
    }
}

pub async fn batch_create_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let inputs = r.partition_input_list.unwrap_or_default();
    batch_limit("partitionInputList", inputs.len())?;
    let failures = c
        .create_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            inputs,
        )
        .await?;
    Ok(json!({ "Errors": partition_errors(failures) }))
}

pub fn get_partition(c: &Catalog, ctx: &RequestContext, r: PartitionRequest) -> Result<Value, ServiceError> {
    let values = r.partition_values.unwrap_or_default();
    let p = c.get_partition(
        &scope(ctx, &r.catalog_id)?,
        &r.database_name,
        &r.table_name,
        &values,
    )?;
    Ok(json!({ "Partition": p }))
}

pub fn batch_get_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let wanted = r.partitions_to_get.unwrap_or_default();
    batch_limit("partitionsToGet", wanted.len())?;
    let s = scope(ctx, &r.catalog_id)?;
    c.get_table(&s, &r.database_name, &r.table_name)?;
    let mut found = Vec::new();
    for w in wanted {
        match c.get_partition(&s, &r.database_name, &r.table_name, &w.values) {
            Ok(p) => found.push(p),
            Err(e) if e.code == "EntityNotFoundException" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json!({ "Partitions": found, "UnprocessedKeys": [] }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Segment {
    pub segment_number: i64,
    pub total_segments: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPartitionsRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_name: String,
    pub expression: Option<String>,
    pub next_token: Option<String>,
    pub segment: Option<Segment>,
    pub max_results: Option<i64>,
    pub exclude_column_schema: Option<bool>,
}

pub fn get_partitions(
    c: &Catalog,
    ctx: &RequestContext,
    r: GetPartitionsRequest,
) -> Result<Value, ServiceError> {
    let s = scope(ctx, &r.catalog_id)?;
    let table = c.get_table(&s, &r.database_name, &r.table_name)?;
    let filter = match r.expression.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => Some(PartitionFilter::parse(e, &table.partition_keys)?),
        None => None,
    };
    let (_, mut all) = c.list_partitions(&s, &r.database_name, &r.table_name, filter.as_ref())?;
    if let Some(seg) = &r.segment {
        if !(1..=10).contains(&seg.total_segments) {
            return Err(constraint(
                "segment.totalSegments",
                &seg.total_segments.to_string(),
                "Member must have value between 1 and 10",
            ));
        }
        if !(0..seg.total_segments).contains(&seg.segment_number) {
            return Err(errors::invalid_input(format!(
                "SegmentNumber {} must be less than TotalSegments {}.",
                seg.segment_number, seg.total_segments
            )));
        }
        // Contiguous slices of the ordered partitions: disjoint, and together all of them.
        let n = all.len();
        let (k, total) = (seg.segment_number as usize, seg.total_segments as usize);
        let (start, end) = (n * k / total, n * (k + 1) / total);
        all = all.drain(start..end).collect();
    }
    if r.exclude_column_schema == Some(true) {
        for p in &mut all {
            if let Some(sd) = p.storage_descriptor.as_mut() {
                sd.columns = None;
            }
        }
    }
    let key = |p: &Partition| p.values.join("\u{1}");
    let (list, next) = page(
        all,
        key,
        r.next_token.as_deref(),
        page_size(r.max_results, MAX_PAGE)?,
    )?;
    Ok(json!({ "Partitions": list, "NextToken": next }))
}

pub async fn update_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let old = r.partition_value_list.unwrap_or_default();
    let input = r
        .partition_input
        .ok_or_else(|| errors::invalid_input("PartitionInput is required."))?;
    let failures = c
        .update_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            vec![(old, input)],
        )
        .await?;
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({})),
    }
}

pub async fn batch_update_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let entries = r.entries.unwrap_or_default();
    batch_limit("entries", entries.len())?;
    let updates = entries
        .into_iter()
        .map(|e| (e.partition_value_list, e.partition_input))
        .collect();
    let failures = c
        .update_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            updates,
        )
        .await?;
    let errors: Vec<Value> = failures
        .into_iter()
        .map(|(values, e)| json!({"PartitionValueList": values, "ErrorDetail": ErrorDetail::from(&e)}))
        .collect();
    Ok(json!({ "Errors": errors }))
}

pub async fn delete_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let values = r.partition_values.unwrap_or_default();
    let failures = c
        .delete_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            vec![values],
        )
        .await?;
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({})),
    }
}

pub async fn batch_delete_partition(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionRequest,
) -> Result<Value, ServiceError> {
    let values: Vec<Vec<String>> = r
        .partitions_to_delete
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.values)
        .collect();
    if values.len() > 25 {
        return Err(constraint(
            "partitionsToDelete",
            &format!("{} items", values.len()),
            "Member must have length less than or equal to 25",
        ));
    }
    let failures = c
        .delete_partitions(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            values,
        )
        .await?;
    Ok(json!({ "Errors": partition_errors(failures) }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionIndexRequest {
    pub catalog_id: Option<String>,
    pub database_name: String,
    pub table_name: String,
    pub partition_index: Option<PartitionIndex>,
    pub index_name: Option<String>,
    pub next_token: Option<String>,
}

pub async fn create_partition_index(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionIndexRequest,
) -> Result<Value, ServiceError> {
    let ix = r
        .partition_index
        .ok_or_else(|| errors::invalid_input("PartitionIndex is required."))?;
    c.create_partition_index(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name, ix)
        .await?;
    Ok(json!({}))
}

pub fn get_partition_indexes(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionIndexRequest,
) -> Result<Value, ServiceError> {
    let all = c.partition_indexes(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
    let (list, next) = page(all, |d| d.index_name.clone(), r.next_token.as_deref(), MAX_PAGE)?;
    Ok(json!({ "PartitionIndexDescriptorList": list, "NextToken": next }))
}

pub async fn delete_partition_index(
    c: &Catalog,
    ctx: &RequestContext,
    r: PartitionIndexRequest,
) -> Result<Value, ServiceError> {
    let name = r.index_name.unwrap_or_default();
    check_name("indexName", &name)?;
    c.delete_partition_index(
        &scope(ctx, &r.catalog_id)?,
        &r.database_name,
        &r.table_name,
        &name,
    )
    .await?;
    Ok(json!({}))
}
