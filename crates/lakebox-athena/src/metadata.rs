//! The data catalog as Athena shows it: `AwsDataCatalog` is Lakebox's Glue catalog, read
//! in-process; tables carry Athena's view of their storage in `Parameters`.

use lakebox_core::{RequestContext, ServiceError};
use lakebox_glue::model::Table;
use lakebox_glue::{Catalog, Scope};
use lakebox_protocol::Timestamp;
use serde_json::{Value, json};

use crate::store::{Store, invalid, page};

pub const AWS_DATA_CATALOG: &str = "AwsDataCatalog";

fn text<'a>(r: &'a Value, k: &str) -> Option<&'a str> {
    r.get(k).and_then(Value::as_str)
}

fn metadata_error(message: impl Into<String>) -> ServiceError {
    ServiceError::client("MetadataException", message)
}

fn check_catalog(r: &Value) -> Result<(), ServiceError> {
    let name = text(r, "CatalogName")
        .or_else(|| text(r, "Name"))
        .unwrap_or_default();
    if !name.eq_ignore_ascii_case(AWS_DATA_CATALOG) {
        return Err(metadata_error(format!(
            "Catalog {name} was not found: Lakebox has the {AWS_DATA_CATALOG} catalog (its Glue Data Catalog)."
        )));
    }
    Ok(())
}

fn aws_data_catalog() -> Value {
    json!({"Name": AWS_DATA_CATALOG, "Description": "Lakebox's Glue Data Catalog", "Type": "GLUE",
           "Parameters": {"catalog-id": null}, "Status": "CREATE_COMPLETE"})
}

pub fn list_data_catalogs(_s: &Store, _ctx: &RequestContext, _r: Value) -> Result<Value, ServiceError> {
    Ok(
        json!({ "DataCatalogsSummary": [{"CatalogName": AWS_DATA_CATALOG, "Type": "GLUE", "Status": "CREATE_COMPLETE"}] }),
    )
}

pub fn get_data_catalog(_s: &Store, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    let name = text(&r, "Name").unwrap_or_default();
    if !name.eq_ignore_ascii_case(AWS_DATA_CATALOG) {
        return Err(invalid(format!("Catalog {name} was not found.")));
    }
    let mut c = aws_data_catalog();
    c["Parameters"] = json!({"catalog-id": ctx.account_id});
    Ok(json!({ "DataCatalog": c }))
}

fn database_view(d: &lakebox_glue::model::Database) -> Value {
    json!({"Name": d.name, "Description": d.description, "Parameters": d.parameters.clone().unwrap_or_default()})
}

pub fn list_databases(c: &Catalog, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    check_catalog(&r)?;
    let dbs = c.list_databases(&Scope::from(ctx))?;
    let (list, next) = page(dbs, |d| d.name.clone(), &r, 50)?;
    Ok(json!({ "DatabaseList": list.iter().map(database_view).collect::<Vec<_>>(), "NextToken": next }))
}

pub fn get_database(c: &Catalog, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    check_catalog(&r)?;
    let name = text(&r, "DatabaseName").unwrap_or_default();
    let d = c
        .get_database(&Scope::from(ctx), name)
        .map_err(|_| metadata_error(format!("Database {name} not found.")))?;
    Ok(json!({ "Database": database_view(&d) }))
}

fn columns(cols: &[lakebox_glue::model::Column]) -> Vec<Value> {
    cols.iter()
        .map(|c| json!({"Name": c.name, "Type": c.type_name(), "Comment": c.comment}))
        .collect()
}

/// Athena's TableMetadata: Parameters hold the table's parameters and its storage as Hive
/// properties (`location`, `inputformat`, `outputformat`, `serde.serialization.lib`,
/// `serde.param.*`).
pub fn table_metadata(t: &Table) -> Value {
    let mut params = serde_json::Map::new();
    if t.table_type.as_deref() == Some("EXTERNAL_TABLE") {
        params.insert("EXTERNAL".into(), json!("TRUE"));
    }
    for (k, v) in t.parameters.iter().flatten() {
        params.insert(k.clone(), json!(v));
    }
    if let Some(sd) = &t.storage_descriptor {
        if let Some(l) = &sd.location {
            params.insert("location".into(), json!(l));
        }
        if let Some(f) = &sd.input_format {
            params.insert("inputformat".into(), json!(f));
        }
        if let Some(f) = &sd.output_format {
            params.insert("outputformat".into(), json!(f));
        }
        if let Some(serde) = &sd.serde_info {
            if let Some(lib) = &serde.serialization_library {
                params.insert("serde.serialization.lib".into(), json!(lib));
            }
            for (k, v) in serde.parameters.iter().flatten() {
                params.insert(format!("serde.param.{k}"), json!(v));
            }
        }
    }
    params.insert(
        "transient_lastDdlTime".into(),
        json!((t.update_time.as_millis() / 1000).to_string()),
    );
    json!({
        "Name": t.name,
        "CreateTime": t.create_time,
        "LastAccessTime": t.last_access_time.unwrap_or(Timestamp::from_millis(0)),
        "TableType": t.table_type,
        "Columns": columns(t.columns()),
        "PartitionKeys": columns(&t.partition_keys),
        "Parameters": params,
    })
}

pub fn list_table_metadata(c: &Catalog, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    check_catalog(&r)?;
    let db = text(&r, "DatabaseName").unwrap_or_default();
    let mut tables = c
        .list_tables(&Scope::from(ctx), db)
        .map_err(|_| metadata_error(format!("Database {db} not found.")))?;
    if let Some(e) = text(&r, "Expression").filter(|e| !e.is_empty()) {
        let re = regex::Regex::new(&format!("^(?:{e})$"))
            .map_err(|err| invalid(format!("Invalid Expression {e}: {err}")))?;
        tables.retain(|t| re.is_match(&t.name));
    }
    let (list, next) = page(tables, |t| t.name.clone(), &r, 50)?;
    Ok(json!({ "TableMetadataList": list.iter().map(table_metadata).collect::<Vec<_>>(), "NextToken": next }))
}

pub fn get_table_metadata(c: &Catalog, ctx: &RequestContext, r: Value) -> Result<Value, ServiceError> {
    check_catalog(&r)?;
    let db = text(&r, "DatabaseName").unwrap_or_default();
    let name = text(&r, "TableName").unwrap_or_default();
    let t = c
        .get_table(&Scope::from(ctx), db, name)
        .map_err(|e| metadata_error(e.message))?;
    Ok(json!({ "TableMetadata": table_metadata(&t) }))
}
