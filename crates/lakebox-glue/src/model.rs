//! The Data Catalog's shapes are the model's own (generated in [`crate::api`]), so what a client
//! sends, what the catalog stores and what Athena and Firehose read are one set of types. This
//! module names the ones the rest of Lakebox uses and adds the readings Hive gives their unset
//! members (a column without a type is `string`, a table without partition keys has none).

use std::collections::BTreeMap;

pub use crate::api::{
    Column, Database, DatabaseInput, ErrorDetail, KeySchemaElement, Order, Partition, PartitionIndex,
    PartitionIndexDescriptor, PartitionIndexStatus, PartitionInput, SerDeInfo, StorageDescriptor, Table,
    TableInput, TableVersion,
};

pub type Parameters = BTreeMap<String, String>;

impl Column {
    pub fn new(name: impl Into<String>, type_: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            r#type: Some(type_.into()),
            ..Default::default()
        }
    }

    /// The column's type, `string` when unset (as Hive reads it).
    pub fn type_name(&self) -> &str {
        self.r#type.as_deref().unwrap_or("string")
    }
}

impl StorageDescriptor {
    pub fn columns(&self) -> &[Column] {
        self.columns.as_deref().unwrap_or(&[])
    }

    /// Fills the members Glue reports even when a definition leaves them out, as the catalog
    /// stores every descriptor.
    pub fn with_defaults(mut self) -> Self {
        self.compressed.get_or_insert(false);
        self.number_of_buckets.get_or_insert(0);
        self.stored_as_sub_directories.get_or_insert(false);
        self
    }

    pub fn serde_parameter(&self, key: &str) -> Option<&str> {
        self.serde_info
            .as_ref()
            .and_then(|s| s.parameters.as_ref())
            .and_then(|p| p.get(key))
            .map(String::as_str)
    }
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

    /// The partition keys, none when unset.
    pub fn partition_keys(&self) -> &[Column] {
        self.partition_keys.as_deref().unwrap_or(&[])
    }

    /// The database the table is in (the catalog always stores it).
    pub fn database(&self) -> &str {
        self.database_name.as_deref().unwrap_or_default()
    }

    /// The current version (the catalog always stores it; "0" for the first).
    pub fn version(&self) -> &str {
        self.version_id.as_deref().unwrap_or("0")
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
            retention: self.retention,
            storage_descriptor: self.storage_descriptor.clone(),
            partition_keys: self.partition_keys.clone(),
            view_original_text: self.view_original_text.clone(),
            view_expanded_text: self.view_expanded_text.clone(),
            table_type: self.table_type.clone(),
            parameters: self.parameters.clone(),
            target_table: self.target_table.clone(),
            view_definition: self.view_definition.as_ref().map(reshape),
        }
    }
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

    /// The partition's values (the catalog always stores them).
    pub fn values(&self) -> &[String] {
        self.values.as_deref().unwrap_or(&[])
    }

    pub fn location(&self) -> Option<&str> {
        self.storage_descriptor.as_ref()?.location.as_deref()
    }
}

impl From<&lakebox_core::ServiceError> for ErrorDetail {
    fn from(e: &lakebox_core::ServiceError) -> Self {
        ErrorDetail {
            error_code: Some(e.code.to_string()),
            error_message: Some(e.message.clone()),
        }
    }
}

/// One model shape read as another whose members have the same names: what a client sends as a
/// view's `ViewDefinitionInput` is stored and answered as its `ViewDefinition` (the members
/// only the answer has stay unset).
pub fn reshape<A: serde::Serialize, B: serde::de::DeserializeOwned + Default>(a: &A) -> B {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}
