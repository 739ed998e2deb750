//! Data Catalog shapes, named and spelled as in the botocore model (awsJson 1.1). Fields
//! Lakebox stores but never interprets (Lake Formation, federation, multi-dialect views) are
//! kept as raw JSON so that they round-trip unchanged.

use std::collections::BTreeMap;

use lakebox_protocol::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type Parameters = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DatabaseInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_table_default_permissions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_database: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_database: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Database {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    pub create_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_table_default_permissions: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_database: Option<Value>,
    pub catalog_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated_database: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Column {
    pub name: String,
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

impl Column {
    pub fn new(name: impl Into<String>, type_: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            type_: Some(type_.into()),
            ..Default::default()
        }
    }

    /// The column's type, `string` when unset (as Hive reads it).
    pub fn type_name(&self) -> &str {
        self.type_.as_deref().unwrap_or("string")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SerDeInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serialization_library: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Order {
    pub column: String,
    pub sort_order: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StorageDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<Column>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_locations: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    #[serde(default)]
    pub compressed: bool,
    #[serde(default)]
    pub number_of_buckets: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serde_info: Option<SerDeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_columns: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_columns: Option<Vec<Order>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skewed_info: Option<Value>,
    #[serde(default)]
    pub stored_as_sub_directories: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_reference: Option<Value>,
}

impl StorageDescriptor {
    pub fn columns(&self) -> &[Column] {
        self.columns.as_deref().unwrap_or(&[])
    }

    pub fn serde_parameter(&self, key: &str) -> Option<&str> {
        self.serde_info
            .as_ref()
            .and_then(|s| s.parameters.as_ref())
            .and_then(|p| p.get(key))
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TableInput {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analyzed_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_keys: Option<Vec<Column>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_original_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_expanded_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_table: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_definition: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Table {
    pub name: String,
    pub database_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analyzed_time: Option<Timestamp>,
    #[serde(default)]
    pub retention: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(default)]
    pub partition_keys: Vec<Column>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_original_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_expanded_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default)]
    pub is_registered_with_lake_formation: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_table: Option<Value>,
    pub catalog_id: String,
    pub version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_definition: Option<Value>,
}

impl Table {
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters.as_ref()?.get(key).map(String::as_str)
    }

    pub fn columns(&self) -> &[Column] {
        self.storage_descriptor
            .as_ref()
            .map(|s| s.columns())
            .unwrap_or(&[])
    }

    pub fn location(&self) -> Option<&str> {
        self.storage_descriptor.as_ref()?.location.as_deref()
    }

    pub fn is_view(&self) -> bool {
        self.table_type.as_deref() == Some("VIRTUAL_VIEW")
    }

    /// The definition as an UpdateTable input, for changing one part of it.
    pub fn to_input(&self) -> TableInput {
        TableInput {
            name: self.name.clone(),
            description: self.description.clone(),
            owner: self.owner.clone(),
            last_access_time: self.last_access_time,
            last_analyzed_time: self.last_analyzed_time,
            retention: Some(self.retention),
            storage_descriptor: self.storage_descriptor.clone(),
            partition_keys: Some(self.partition_keys.clone()),
            view_original_text: self.view_original_text.clone(),
            view_expanded_text: self.view_expanded_text.clone(),
            table_type: self.table_type.clone(),
            parameters: self.parameters.clone(),
            target_table: self.target_table.clone(),
            view_definition: self.view_definition.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionInput {
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analyzed_time: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Partition {
    pub values: Vec<String>,
    pub database_name: String,
    pub table_name: String,
    pub creation_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_access_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_descriptor: Option<StorageDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_analyzed_time: Option<Timestamp>,
    pub catalog_id: String,
}

impl Partition {
    /// The definition as an UpdatePartition input.
    pub fn to_input(&self) -> PartitionInput {
        PartitionInput {
            values: self.values.clone(),
            last_access_time: self.last_access_time,
            storage_descriptor: self.storage_descriptor.clone(),
            parameters: self.parameters.clone(),
            last_analyzed_time: self.last_analyzed_time,
        }
    }

    pub fn location(&self) -> Option<&str> {
        self.storage_descriptor.as_ref()?.location.as_deref()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionIndex {
    pub keys: Vec<String>,
    pub index_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct KeySchemaElement {
    pub name: String,
    #[serde(rename = "Type")]
    pub type_: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionIndexDescriptor {
    pub index_name: String,
    pub keys: Vec<KeySchemaElement>,
    pub index_status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableVersion {
    pub table: Table,
    pub version_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDetail {
    pub error_code: String,
    pub error_message: String,
}

impl From<&lakebox_core::ServiceError> for ErrorDetail {
    fn from(e: &lakebox_core::ServiceError) -> Self {
        ErrorDetail {
            error_code: e.code.to_string(),
            error_message: e.message.clone(),
        }
    }
}
