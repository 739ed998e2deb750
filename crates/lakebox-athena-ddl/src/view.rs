//! Views as Athena stores them in Glue: a `VIRTUAL_VIEW` whose `ViewOriginalText` is
//! `/* Presto View: <base64 JSON> */`, the JSON holding the SQL, the catalog and schema it was
//! written against, and the columns with their Trino types.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lakebox_glue::model::{Column, Parameters, StorageDescriptor, Table, TableInput};
use serde::{Deserialize, Serialize};

const PREFIX: &str = "/* Presto View: ";
const SUFFIX: &str = " */";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrestoView {
    pub original_sql: String,
    pub catalog: String,
    pub schema: String,
    pub columns: Vec<ViewColumn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub run_as_invoker: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    /// The Trino type (`integer`, `varchar`, `array(bigint)`).
    #[serde(rename = "type")]
    pub type_: String,
}

/// The view stored in a Glue table, if it is one Athena can read.
pub fn presto_view(t: &Table) -> Option<PrestoView> {
    let text = t.view_original_text.as_deref()?;
    let encoded = text.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let json = STANDARD.decode(encoded.trim()).ok()?;
    serde_json::from_slice(&json).ok()
}

pub fn original_sql(t: &Table) -> Option<String> {
    presto_view(t).map(|v| v.original_sql)
}

/// The Hive type Glue lists for a Trino type, as Athena writes a view's columns.
fn hive_type(trino: &str) -> String {
    let t = trino.to_lowercase();
    match t.as_str() {
        "integer" => "int".into(),
        "varchar" => "string".into(),
        "real" => "float".into(),
        "timestamp(3)" => "timestamp".into(),
        _ if t.starts_with("varchar(") => "string".into(),
        _ if t.starts_with("array(") || t.starts_with("map(") || t.starts_with("row(") => t,
        _ => t,
    }
}

/// The Glue table that stores `view` as Athena stores it.
pub fn table_input(name: &str, view: &PrestoView) -> TableInput {
    let json = serde_json::to_vec(view).expect("a view serializes");
    let columns = view
        .columns
        .iter()
        .map(|c| Column::new(&c.name, hive_type(&c.type_)))
        .collect();
    let mut params = Parameters::new();
    params.insert("presto_view".into(), "true".into());
    params.insert("comment".into(), "Presto View".into());
    TableInput {
        name: name.to_owned(),
        table_type: Some("VIRTUAL_VIEW".into()),
        view_original_text: Some(format!("{PREFIX}{}{SUFFIX}", STANDARD.encode(json))),
        view_expanded_text: Some("/* Presto View */".into()),
        storage_descriptor: Some(StorageDescriptor {
            columns: Some(columns),
            serde_info: Some(Default::default()),
            ..Default::default()
        }),
        partition_keys: Some(Vec::new()),
        parameters: Some(params),
        ..Default::default()
    }
}
