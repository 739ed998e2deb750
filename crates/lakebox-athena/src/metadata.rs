//! The data catalog as Athena shows it: `AwsDataCatalog` is Lakebox's Glue catalog, read
//! in-process; tables carry Athena's view of their storage in `Parameters`.

use std::collections::BTreeMap;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_glue::model::Table;
use lakebox_glue::{Catalog, Scope};
use lakebox_protocol::Timestamp;

use crate::api::*;
use crate::store::{invalid, page};

pub const AWS_DATA_CATALOG: &str = "AwsDataCatalog";

fn metadata_error(message: impl Into<String>) -> ServiceError {
    ServiceError::client("MetadataException", message)
}

fn check_catalog(name: &str) -> Result<(), ServiceError> {
    if !name.eq_ignore_ascii_case(AWS_DATA_CATALOG) {
        return Err(metadata_error(format!(
            "Catalog {name} was not found: Lakebox has the {AWS_DATA_CATALOG} catalog (its Glue Data Catalog)."
        )));
    }
    Ok(())
}

pub fn list_data_catalogs(
    _ctx: &RequestContext,
    _r: ListDataCatalogsInput,
) -> Result<ListDataCatalogsOutput, ServiceError> {
    Ok(ListDataCatalogsOutput {
        data_catalogs_summary: Some(vec![DataCatalogSummary {
            catalog_name: Some(AWS_DATA_CATALOG.into()),
            r#type: Some(DataCatalogType::Glue),
            status: Some(DataCatalogStatus::CreateComplete),
            ..Default::default()
        }]),
        next_token: None,
    })
}

pub fn get_data_catalog(
    ctx: &RequestContext,
    r: GetDataCatalogInput,
) -> Result<GetDataCatalogOutput, ServiceError> {
    if !r.name.eq_ignore_ascii_case(AWS_DATA_CATALOG) {
        return Err(invalid(format!("Catalog {} was not found.", r.name)));
    }
    Ok(GetDataCatalogOutput {
        data_catalog: Some(DataCatalog {
            name: AWS_DATA_CATALOG.into(),
            description: Some("Lakebox's Glue Data Catalog".into()),
            r#type: DataCatalogType::Glue,
            parameters: Some(BTreeMap::from([(
                "catalog-id".to_owned(),
                ctx.account_id.clone(),
            )])),
            status: Some(DataCatalogStatus::CreateComplete),
            connection_type: None,
            error: None,
        }),
    })
}

fn database_view(d: &lakebox_glue::model::Database) -> Database {
    Database {
        name: d.name.clone(),
        description: d.description.clone(),
        parameters: Some(d.parameters.clone().unwrap_or_default().into_iter().collect()),
    }
}

pub fn list_databases(
    c: &Catalog,
    ctx: &RequestContext,
    r: ListDatabasesInput,
) -> Result<ListDatabasesOutput, ServiceError> {
    check_catalog(&r.catalog_name)?;
    let dbs = c.list_databases(&Scope::from(ctx))?;
    let (list, next) = page(
        dbs,
        |d| d.name.clone(),
        r.next_token.as_deref(),
        r.max_results,
        50,
    )?;
    Ok(ListDatabasesOutput {
        database_list: Some(list.iter().map(database_view).collect()),
        next_token: next,
    })
}

pub fn get_database(
    c: &Catalog,
    ctx: &RequestContext,
    r: GetDatabaseInput,
) -> Result<GetDatabaseOutput, ServiceError> {
    check_catalog(&r.catalog_name)?;
    let name = r.database_name.as_str();
    let d = c
        .get_database(&Scope::from(ctx), name)
        .map_err(|_| metadata_error(format!("Database {name} not found.")))?;
    Ok(GetDatabaseOutput {
        database: Some(database_view(&d)),
    })
}

fn columns(cols: &[lakebox_glue::model::Column]) -> Vec<Column> {
    cols.iter()
        .map(|c| Column {
            name: c.name.clone(),
            r#type: Some(c.type_name().to_owned()),
            comment: c.comment.clone(),
        })
        .collect()
}

/// Athena's TableMetadata: Parameters hold the table's parameters and its storage as Hive
/// properties (`location`, `inputformat`, `outputformat`, `serde.serialization.lib`,
/// `serde.param.*`).
pub fn table_metadata(t: &Table) -> TableMetadata {
    let mut params = BTreeMap::new();
    if t.table_type.as_deref() == Some("EXTERNAL_TABLE") {
        params.insert("EXTERNAL".to_owned(), "TRUE".to_owned());
    }
    for (k, v) in t.parameters.iter().flatten() {
        params.insert(k.clone(), v.clone());
    }
    if let Some(sd) = &t.storage_descriptor {
        if let Some(l) = &sd.location {
            params.insert("location".into(), l.clone());
        }
        if let Some(f) = &sd.input_format {
            params.insert("inputformat".into(), f.clone());
        }
        if let Some(f) = &sd.output_format {
            params.insert("outputformat".into(), f.clone());
        }
        if let Some(serde) = &sd.serde_info {
            if let Some(lib) = &serde.serialization_library {
                params.insert("serde.serialization.lib".into(), lib.clone());
            }
            for (k, v) in serde.parameters.iter().flatten() {
                params.insert(format!("serde.param.{k}"), v.clone());
            }
        }
    }
    params.insert(
        "transient_lastDdlTime".into(),
        (t.update_time.map_or(0, |u| u.as_millis()) / 1000).to_string(),
    );
    TableMetadata {
        name: t.name.clone(),
        create_time: t.create_time,
        last_access_time: Some(t.last_access_time.unwrap_or(Timestamp::from_millis(0))),
        table_type: t.table_type.clone(),
        columns: Some(columns(t.columns())),
        partition_keys: Some(columns(t.partition_keys())),
        parameters: Some(params),
    }
}

pub fn list_table_metadata(
    c: &Catalog,
    ctx: &RequestContext,
    r: ListTableMetadataInput,
) -> Result<ListTableMetadataOutput, ServiceError> {
    check_catalog(&r.catalog_name)?;
    let db = r.database_name.as_str();
    let mut tables = c
        .list_tables(&Scope::from(ctx), db)
        .map_err(|_| metadata_error(format!("Database {db} not found.")))?;
    if let Some(e) = r.expression.as_deref().filter(|e| !e.is_empty()) {
        let re = regex::Regex::new(&format!("^(?:{e})$"))
            .map_err(|err| invalid(format!("Invalid Expression {e}: {err}")))?;
        tables.retain(|t| re.is_match(&t.name));
    }
    let (list, next) = page(
        tables,
        |t| t.name.clone(),
        r.next_token.as_deref(),
        r.max_results,
        50,
    )?;
    Ok(ListTableMetadataOutput {
        table_metadata_list: Some(list.iter().map(table_metadata).collect()),
        next_token: next,
    })
}

pub fn get_table_metadata(
    c: &Catalog,
    ctx: &RequestContext,
    r: GetTableMetadataInput,
) -> Result<GetTableMetadataOutput, ServiceError> {
    check_catalog(&r.catalog_name)?;
    let t = c
        .get_table(&Scope::from(ctx), &r.database_name, &r.table_name)
        .map_err(|e| metadata_error(e.message))?;
    Ok(GetTableMetadataOutput {
        table_metadata: Some(table_metadata(&t)),
    })
}
