//! Tables: their records, CreateTable's checks (in DynamoDB's words), and the table operations
//! (Create / Describe / Update / Delete / List, tags, TTL and backup settings).

use std::collections::BTreeMap;
use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_protocol::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::{self, invalid};
use crate::schema::{IndexDef, IndexProjection, KeyAttr, KeySchema};
use crate::storage;
use crate::streams::{self, StreamMeta};
use crate::{DynamoDb, TableKey};

/// A table as stored. The schema and indexes are kept parsed for the item operations; the
/// rest is what DescribeTable reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableRecord {
    pub uid: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_millis: i64,
    pub schema: KeySchema,
    pub indexes: Vec<IndexDef>,
    pub key_schema: Vec<KeySchemaElement>,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub billing_mode: String,
    pub read_capacity: i64,
    pub write_capacity: i64,
    /// Per global index: its read and write capacity (provisioned tables).
    pub index_capacity: BTreeMap<String, (i64, i64)>,
    pub stream: Option<StreamSpecification>,
    pub sse: Option<SSESpecification>,
    pub table_class: String,
    pub deletion_protection: bool,
    pub tags: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub pitr: bool,
    /// The stream most recently enabled on the table (still described after it is disabled).
    #[serde(default)]
    pub latest_stream: Option<crate::streams::StreamMeta>,
    /// Kinesis data streams the table's changes go to.
    #[serde(default)]
    pub kinesis_destinations: Vec<crate::kinesis_dest::Destination>,
}

impl TableRecord {
    pub fn key(&self) -> TableKey {
        (self.account.clone(), self.region.clone(), self.name.clone())
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.region, self.account, self.name
        )
    }

    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|i| i.name == name)
    }
}

pub fn meta_key(key: &TableKey) -> Vec<u8> {
    format!("{}\0{}\0{}", key.0, key.1, key.2).into_bytes()
}

/// Most tables an account may have in a region (AWS's default quota).
const MAX_TABLES: usize = 2500;
const MAX_GSIS: usize = 20;
const MAX_LSIS: usize = 5;

fn projection_of(p: &Projection) -> Result<IndexProjection, ServiceError> {
    match p.projection_type.as_ref() {
        Some(ProjectionType::All) => {
            if p.non_key_attributes.is_some() {
                return Err(invalid(
                    "ProjectionType is ALL, but NonKeyAttributes is specified",
                ));
            }
            Ok(IndexProjection::All)
        }
        Some(ProjectionType::KeysOnly) => {
            if p.non_key_attributes.is_some() {
                return Err(invalid(
                    "ProjectionType is KEYS_ONLY, but NonKeyAttributes is specified",
                ));
            }
            Ok(IndexProjection::KeysOnly)
        }
        Some(ProjectionType::Include) => match &p.non_key_attributes {
            Some(names) if !names.is_empty() => Ok(IndexProjection::Include(names.clone())),
            _ => Err(invalid(
                "ProjectionType is INCLUDE, but NonKeyAttributes is not specified",
            )),
        },
        _ => Err(errors::validation("Unknown ProjectionType: null")),
    }
}

/// A key schema checked as DynamoDB checks one: a HASH element first, an optional RANGE
/// second, each defined in AttributeDefinitions.
fn key_schema_of(
    elements: &[KeySchemaElement],
    defs: &BTreeMap<String, String>,
    used: &mut Vec<String>,
) -> Result<KeySchema, ServiceError> {
    let first = &elements[0];
    if first.key_type != KeyType::Hash {
        return Err(errors::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if elements.len() > 2 {
        return Err(errors::validation(
            "Invalid KeySchema: Too many key schema elements",
        ));
    }
    if let Some(second) = elements.get(1) {
        if second.key_type != KeyType::Range {
            return Err(errors::validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
        if second.attribute_name == first.attribute_name {
            return Err(errors::validation(
                "Both the Hash Key and the Range Key element in the KeySchema have the same name",
            ));
        }
    }
    let attr = |e: &KeySchemaElement, used: &mut Vec<String>| -> Result<KeyAttr, ServiceError> {
        let ty = defs.get(&e.attribute_name).ok_or_else(|| {
            invalid(&format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                elements.iter().map(|e| e.attribute_name.as_str()).collect::<Vec<_>>().join(", "),
                defs.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            ))
        })?;
        used.push(e.attribute_name.clone());
        Ok(KeyAttr {
            name: e.attribute_name.clone(),
            ty: ty.clone(),
        })
    };
    Ok(KeySchema {
        hash: attr(first, used)?,
        range: elements.get(1).map(|e| attr(e, used)).transpose()?,
    })
}

fn check_throughput(t: &ProvisionedThroughput) -> Result<(), ServiceError> {
    if t.read_capacity_units < 1 || t.write_capacity_units < 1 {
        return Err(invalid(&format!(
            "{} for ReadCapacityUnits or WriteCapacityUnits must be at least 1",
            "Given value"
        )));
    }
    Ok(())
}

impl DynamoDb {
    pub(crate) async fn create_table_impl(
        &self,
        ctx: &RequestContext,
        input: CreateTableInput,
    ) -> Result<CreateTableOutput, ServiceError> {
        check_table_name(&input.table_name)?;
        let Some(key_schema) = input.key_schema.clone().filter(|k| !k.is_empty()) else {
            return Err(errors::validation(
                "1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: Member must not be null",
            ));
        };
        let Some(attribute_definitions) = input.attribute_definitions.clone() else {
            return Err(errors::validation(
                "1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null",
            ));
        };
        let mut defs = BTreeMap::new();
        for d in &attribute_definitions {
            let ty = d.attribute_type.as_str().to_owned();
            if defs.insert(d.attribute_name.clone(), ty).is_some() {
                return Err(invalid("Duplicate AttributeName in AttributeDefinitions"));
            }
        }
        let mut used = Vec::new();
        let schema = key_schema_of(&key_schema, &defs, &mut used)?;
        let billing_mode = match input.billing_mode.as_ref() {
            Some(BillingMode::PayPerRequest) => "PAY_PER_REQUEST",
            _ => "PROVISIONED",
        };
        let provisioned = billing_mode == "PROVISIONED";
        let (read_capacity, write_capacity) = match (&input.provisioned_throughput, provisioned) {
            (Some(t), true) => {
                check_throughput(t)?;
                (t.read_capacity_units, t.write_capacity_units)
            }
            (None, true) => {
                return Err(invalid(
                    "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
                ));
            }
            (Some(_), false) => {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (None, false) => (0, 0),
        };
        let mut indexes: Vec<IndexDef> = Vec::new();
        let mut index_capacity = BTreeMap::new();
        let lsis = input.local_secondary_indexes.clone().unwrap_or_default();
        let gsis = input.global_secondary_indexes.clone().unwrap_or_default();
        if input.local_secondary_indexes.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid("List of LocalSecondaryIndexes is empty"));
        }
        if input.global_secondary_indexes.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid("List of GlobalSecondaryIndexes is empty"));
        }
        if lsis.len() > MAX_LSIS {
            return Err(invalid(
                "Number of LocalSecondaryIndexes exceeds per-table limit of 5",
            ));
        }
        if gsis.len() > MAX_GSIS {
            return Err(ServiceError::client(
                "LimitExceededException",
                "Subscriber limit exceeded: The number of global secondary indexes per table exceeds the limit of 20",
            ));
        }
        for lsi in &lsis {
            if schema.range.is_none() {
                return Err(invalid(
                    "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
                ));
            }
            let s = key_schema_of(&lsi.key_schema, &defs, &mut used)?;
            if s.hash != schema.hash {
                return Err(invalid(&format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {}. index hash key: {}, table hash key: {}",
                    lsi.index_name, s.hash.name, schema.hash.name
                )));
            }
            if s.range.is_none() {
                return Err(invalid(&format!(
                    "Index KeySchema does not have a range key for index: {}",
                    lsi.index_name
                )));
            }
            push_index(
                &mut indexes,
                IndexDef {
                    name: lsi.index_name.clone(),
                    global: false,
                    schema: s,
                    projection: projection_of(&lsi.projection)?,
                },
            )?;
        }
        for gsi in &gsis {
            let s = key_schema_of(&gsi.key_schema, &defs, &mut used)?;
            match (&gsi.provisioned_throughput, provisioned) {
                (Some(t), true) => {
                    check_throughput(t)?;
                    index_capacity.insert(
                        gsi.index_name.clone(),
                        (t.read_capacity_units, t.write_capacity_units),
                    );
                }
                (None, true) => {
                    return Err(invalid(&format!(
                        "ProvisionedThroughput should not be null for index: {}",
                        gsi.index_name
                    )));
                }
                (Some(_), false) => {
                    return Err(invalid(
                        "ProvisionedThroughput should not be specified for index: when BillingMode is PAY_PER_REQUEST"
                            .replace("index: when", &format!("index: {} when", gsi.index_name))
                            .as_str(),
                    ));
                }
                (None, false) => {}
            }
            push_index(
                &mut indexes,
                IndexDef {
                    name: gsi.index_name.clone(),
                    global: true,
                    schema: s,
                    projection: projection_of(&gsi.projection)?,
                },
            )?;
        }
        used.sort();
        used.dedup();
        if used.len() != defs.len() {
            return Err(invalid(
                "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
            ));
        }
        let stream = match &input.stream_specification {
            Some(s) if s.stream_enabled && s.stream_view_type.is_none() => {
                return Err(invalid("StreamViewType is required when StreamEnabled is true"));
            }
            Some(s) if s.stream_enabled => Some(s.clone()),
            Some(s) if s.stream_view_type.is_some() => {
                return Err(invalid(
                    "StreamSpecification: StreamViewType cannot be specified when StreamEnabled is false",
                ));
            }
            _ => None,
        };
        let table_class = input
            .table_class
            .as_ref()
            .map_or("STANDARD".to_owned(), |c| c.as_str().to_owned());
        let record = TableRecord {
            uid: uuid::Uuid::new_v4().to_string(),
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            name: input.table_name.clone(),
            created_millis: self.now(),
            schema,
            indexes,
            key_schema,
            attribute_definitions,
            billing_mode: billing_mode.to_owned(),
            read_capacity,
            write_capacity,
            index_capacity,
            stream,
            sse: input
                .sse_specification
                .clone()
                .filter(|s| s.enabled == Some(true)),
            table_class,
            deletion_protection: input.deletion_protection_enabled.unwrap_or(false),
            tags: input
                .tags
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            ttl_attribute: None,
            pitr: false,
            latest_stream: None,
            kinesis_destinations: Vec::new(),
        };
        let mut record = record;
        if let Some(spec) = &record.stream {
            let view = spec
                .stream_view_type
                .as_ref()
                .map_or("KEYS_ONLY", |v| v.as_str())
                .to_owned();
            record.latest_stream = Some(StreamMeta::new(&record, &view, record.created_millis));
        }
        let _admin = self.admin.lock().await;
        {
            let tables = self.tables.read().unwrap();
            if tables.contains_key(&record.key()) {
                return Err(ServiceError::client(
                    "ResourceInUseException",
                    format!("Table already exists: {}", record.name),
                ));
            }
            let count = tables
                .keys()
                .filter(|k| k.0 == record.account && k.1 == record.region)
                .count();
            if count >= MAX_TABLES {
                return Err(ServiceError::client(
                    "LimitExceededException",
                    "Subscriber limit exceeded: You have exceeded the maximum number of tables in this account and region",
                ));
            }
        }
        let record = Arc::new(record);
        self.save_table(record.clone()).await?;
        let mut description = self.describe(&record)?;
        // AWS answers CreateTable while the table is still being made.
        description.table_status = Some(TableStatus::Creating);
        Ok(CreateTableOutput {
            table_description: Some(description),
        })
    }

    /// Stores a table record (and its latest stream's description with it) and puts it in
    /// the table map from inside the write job, so writes queued after it see it. Callers hold
    /// the admin lock; a failed commit puts the previous record back.
    pub(crate) async fn save_table(&self, record: Arc<TableRecord>) -> Result<(), ServiceError> {
        self.save_table_with(record, |_| Ok(())).await
    }

    /// [`save_table`](Self::save_table) with more writes in the same transaction.
    pub(crate) async fn save_table_with(
        &self,
        record: Arc<TableRecord>,
        extra: impl FnOnce(&mut lakebox_store::kv::WriteBatch<'_>) -> lakebox_store::Result<()> + Send + 'static,
    ) -> Result<(), ServiceError> {
        let key = meta_key(&record.key());
        let value = serde_json::to_vec(&*record).map_err(errors::internal)?;
        let previous = self.tables.read().unwrap().get(&record.key()).cloned();
        let tables = self.tables.clone();
        let saved = record.clone();
        let result = self
            .meta
            .write_async(move |b| {
                if let Some(s) = &saved.latest_stream {
                    streams::save_stream(b, s)?;
                }
                b.put(storage::TABLES, &key, &value)?;
                extra(b)?;
                tables.write().unwrap().insert(saved.key(), saved.clone());
                Ok(())
            })
            .await;
        if result.is_err() {
            let mut tables = self.tables.write().unwrap();
            match previous {
                Some(p) => tables.insert(record.key(), p),
                None => tables.remove(&record.key()),
            };
        }
        result.map_err(errors::store)
    }

    /// DescribeTable's answer for a table.
    pub(crate) fn describe(&self, t: &TableRecord) -> Result<TableDescription, ServiceError> {
        let (count, bytes) = storage::stats(&self.meta, &t.uid, None).map_err(errors::store)?;
        let provisioned = t.billing_mode == "PROVISIONED";
        let throughput = |r: i64, w: i64| ProvisionedThroughputDescription {
            number_of_decreases_today: Some(0),
            read_capacity_units: Some(r),
            write_capacity_units: Some(w),
            ..Default::default()
        };
        let arn = t.arn();
        let mut lsis = Vec::new();
        let mut gsis = Vec::new();
        for index in &t.indexes {
            let (count, bytes) =
                storage::stats(&self.meta, &t.uid, Some(&index.name)).map_err(errors::store)?;
            let key_schema = index_key_schema(index);
            let projection = match &index.projection {
                IndexProjection::All => Projection {
                    projection_type: Some(ProjectionType::All),
                    non_key_attributes: None,
                },
                IndexProjection::KeysOnly => Projection {
                    projection_type: Some(ProjectionType::KeysOnly),
                    non_key_attributes: None,
                },
                IndexProjection::Include(names) => Projection {
                    projection_type: Some(ProjectionType::Include),
                    non_key_attributes: Some(names.clone()),
                },
            };
            let index_arn = format!("{arn}/index/{}", index.name);
            if index.global {
                let (r, w) = t.index_capacity.get(&index.name).copied().unwrap_or((0, 0));
                gsis.push(GlobalSecondaryIndexDescription {
                    index_name: Some(index.name.clone()),
                    key_schema: Some(key_schema),
                    projection: Some(projection),
                    index_status: Some(IndexStatus::Active),
                    provisioned_throughput: Some(throughput(r, w)),
                    index_size_bytes: Some(bytes as i64),
                    item_count: Some(count as i64),
                    index_arn: Some(index_arn),
                    ..Default::default()
                });
            } else {
                lsis.push(LocalSecondaryIndexDescription {
                    index_name: Some(index.name.clone()),
                    key_schema: Some(key_schema),
                    projection: Some(projection),
                    index_size_bytes: Some(bytes as i64),
                    item_count: Some(count as i64),
                    index_arn: Some(index_arn),
                });
            }
        }
        let created = Timestamp::from_millis(t.created_millis);
        let latest = t.latest_stream.as_ref();
        Ok(TableDescription {
            attribute_definitions: Some(t.attribute_definitions.clone()),
            table_name: Some(t.name.clone()),
            key_schema: Some(t.key_schema.clone()),
            table_status: Some(TableStatus::Active),
            creation_date_time: Some(created),
            provisioned_throughput: Some(throughput(t.read_capacity, t.write_capacity)),
            table_size_bytes: Some(bytes as i64),
            item_count: Some(count as i64),
            table_arn: Some(arn.clone()),
            table_id: Some(t.uid.clone()),
            billing_mode_summary: (!provisioned).then_some(BillingModeSummary {
                billing_mode: Some(BillingMode::PayPerRequest),
                last_update_to_pay_per_request_date_time: Some(created),
            }),
            local_secondary_indexes: (!lsis.is_empty()).then_some(lsis),
            global_secondary_indexes: (!gsis.is_empty()).then_some(gsis),
            stream_specification: t.stream.clone(),
            latest_stream_arn: latest.map(|s| s.arn.clone()),
            latest_stream_label: latest.map(|s| s.label.clone()),
            sse_description: t.sse.as_ref().map(|s| SSEDescription {
                status: Some(SSEStatus::Enabled),
                sse_type: Some(SSEType::Kms),
                kms_master_key_arn: Some(match &s.kms_master_key_id {
                    Some(k) if k.starts_with("arn:") => k.clone(),
                    Some(k) => format!("arn:aws:kms:{}:{}:key/{k}", t.region, t.account),
                    None => format!("arn:aws:kms:{}:{}:alias/aws/dynamodb", t.region, t.account),
                }),
                inaccessible_encryption_date_time: None,
            }),
            table_class_summary: (t.table_class != "STANDARD").then(|| TableClassSummary {
                table_class: Some(TableClass::from(t.table_class.as_str())),
                last_update_date_time: Some(created),
            }),
            deletion_protection_enabled: Some(t.deletion_protection),
            ..Default::default()
        })
    }

    pub(crate) async fn delete_table_impl(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<TableDescription, ServiceError> {
        let _admin = self.admin.lock().await;
        let table = self.table_for_admin(ctx, name)?;
        if table.deletion_protection {
            return Err(errors::validation(format!(
                "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first. Table: {}",
                table.arn()
            )));
        }
        let mut description = self.describe(&table)?;
        description.table_status = Some(TableStatus::Deleting);
        let key = meta_key(&table.key());
        let record = table.clone();
        let now = self.now();
        // The stream outlives its table by a day, closed.
        let stream = table
            .latest_stream
            .clone()
            .filter(|s| s.disabled_millis.is_none())
            .map(|mut s| {
                s.disabled_millis = Some(now);
                s
            });
        let tables = self.tables.clone();
        let result = self
            .meta
            .write_async(move |b| {
                if let Some(s) = &stream {
                    streams::save_stream(b, s)?;
                }
                storage::drop_table_data(b, &record)?;
                b.delete(storage::TABLES, &key)?;
                // Writes queued behind this job find the table gone instead of filling a
                // dropped redb table again.
                tables.write().unwrap().remove(&record.key());
                Ok(())
            })
            .await;
        if let Err(e) = result {
            self.tables.write().unwrap().insert(table.key(), table.clone());
            return Err(errors::store(e));
        }
        Ok(description)
    }

    pub(crate) async fn update_table_impl(
        &self,
        ctx: &RequestContext,
        input: UpdateTableInput,
    ) -> Result<TableDescription, ServiceError> {
        let _admin = self.admin.lock().await;
        let old = self.table_for_admin(ctx, &input.table_name)?;
        let mut t = (*old).clone();
        let mut changed = false;
        if let Some(mode) = &input.billing_mode {
            t.billing_mode = mode.as_str().to_owned();
            changed = true;
        }
        let provisioned = t.billing_mode == "PROVISIONED";
        match (&input.provisioned_throughput, provisioned) {
            (Some(p), true) => {
                check_throughput(p)?;
                t.read_capacity = p.read_capacity_units;
                t.write_capacity = p.write_capacity_units;
                changed = true;
            }
            (Some(_), false) => {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (None, true) if old.billing_mode != "PROVISIONED" => {
                return Err(invalid(
                    "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                ));
            }
            _ => {}
        }
        if !provisioned {
            t.read_capacity = 0;
            t.write_capacity = 0;
            t.index_capacity.clear();
        }
        let mut new_indexes = Vec::new();
        let mut dropped = Vec::new();
        if let Some(defs) = &input.attribute_definitions {
            for d in defs {
                if !t
                    .attribute_definitions
                    .iter()
                    .any(|a| a.attribute_name == d.attribute_name)
                {
                    t.attribute_definitions.push(d.clone());
                }
            }
        }
        for update in input.global_secondary_index_updates.iter().flatten() {
            changed = true;
            if let Some(create) = &update.create {
                if t.index(&create.index_name).is_some() {
                    return Err(invalid(&format!(
                        "Attempting to create an index which already exists: {}",
                        create.index_name
                    )));
                }
                let defs: BTreeMap<String, String> = t
                    .attribute_definitions
                    .iter()
                    .map(|d| (d.attribute_name.clone(), d.attribute_type.as_str().to_owned()))
                    .collect();
                let s = key_schema_of(&create.key_schema, &defs, &mut Vec::new())?;
                if let Some(p) = &create.provisioned_throughput {
                    check_throughput(p)?;
                    t.index_capacity.insert(
                        create.index_name.clone(),
                        (p.read_capacity_units, p.write_capacity_units),
                    );
                } else if provisioned {
                    return Err(invalid(&format!(
                        "ProvisionedThroughput should not be null for index: {}",
                        create.index_name
                    )));
                }
                let index = IndexDef {
                    name: create.index_name.clone(),
                    global: true,
                    schema: s,
                    projection: projection_of(&create.projection)?,
                };
                if t.indexes.iter().filter(|i| i.global).count() >= MAX_GSIS {
                    return Err(ServiceError::client(
                        "LimitExceededException",
                        "Subscriber limit exceeded: The number of global secondary indexes per table exceeds the limit of 20",
                    ));
                }
                t.indexes.push(index.clone());
                new_indexes.push(index);
            } else if let Some(delete) = &update.delete {
                let Some(pos) = t
                    .indexes
                    .iter()
                    .position(|i| i.global && i.name == delete.index_name)
                else {
                    return Err(ServiceError::client(
                        "ResourceNotFoundException",
                        format!(
                            "Requested resource not found: Index: {} not found",
                            delete.index_name
                        ),
                    ));
                };
                dropped.push(t.indexes.remove(pos).name);
                t.index_capacity.remove(&delete.index_name);
            } else if let Some(update) = &update.update {
                if t.index(&update.index_name).is_none_or(|i| !i.global) {
                    return Err(ServiceError::client(
                        "ResourceNotFoundException",
                        format!(
                            "Requested resource not found: Index: {} not found",
                            update.index_name
                        ),
                    ));
                }
                if let Some(p) = &update.provisioned_throughput {
                    check_throughput(p)?;
                    t.index_capacity.insert(
                        update.index_name.clone(),
                        (p.read_capacity_units, p.write_capacity_units),
                    );
                }
            }
        }
        if let Some(s) = &input.stream_specification {
            changed = true;
            match (s.stream_enabled, &t.stream) {
                (true, Some(_)) => {
                    return Err(invalid(&format!(
                        "Table already has an enabled stream: {}",
                        t.arn()
                    )));
                }
                (true, None) if s.stream_view_type.is_none() => {
                    return Err(invalid("StreamViewType is required when StreamEnabled is true"));
                }
                (true, None) => {
                    let view = s
                        .stream_view_type
                        .as_ref()
                        .map_or("KEYS_ONLY", |v| v.as_str())
                        .to_owned();
                    t.stream = Some(s.clone());
                    t.latest_stream = Some(StreamMeta::new(&t, &view, self.now()));
                }
                (false, None) => {
                    return Err(invalid(&format!(
                        "Table already has no stream enabled: {}",
                        t.arn()
                    )));
                }
                (false, Some(_)) => {
                    t.stream = None;
                    if let Some(latest) = &mut t.latest_stream {
                        latest.disabled_millis = Some(self.now());
                    }
                }
            }
        }
        if let Some(p) = input.deletion_protection_enabled {
            t.deletion_protection = p;
            changed = true;
        }
        if let Some(c) = &input.table_class {
            t.table_class = c.as_str().to_owned();
            changed = true;
        }
        if let Some(s) = &input.sse_specification {
            t.sse = (s.enabled == Some(true)).then(|| s.clone());
            changed = true;
        }
        if !changed {
            return Err(errors::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        let key = meta_key(&t.key());
        let value = serde_json::to_vec(&t).map_err(errors::internal)?;
        let new_index_names: Vec<String> = new_indexes.iter().map(|i| i.name.clone()).collect();
        let t = Arc::new(t);
        let record = t.clone();
        let tables = self.tables.clone();
        // A new index is filled from the table's items in the same transaction that adds it,
        // and the table map changes inside it too, so no write misses the index.
        let result = self
            .meta
            .write_async(move |b| {
                for name in &dropped {
                    storage::drop_index_data(b, &record, name)?;
                }
                crate::items::backfill(b, &record, &new_indexes)?;
                if let Some(s) = &record.latest_stream {
                    streams::save_stream(b, s)?;
                }
                b.put(storage::TABLES, &key, &value)?;
                tables.write().unwrap().insert(record.key(), record.clone());
                Ok(())
            })
            .await;
        if let Err(e) = result {
            self.tables.write().unwrap().insert(old.key(), old.clone());
            return Err(errors::store(e));
        }
        let mut description = self.describe(&t)?;
        description.table_status = Some(TableStatus::Updating);
        // AWS answers a new index as CREATING while it is filled; here it was filled in the
        // transaction that added it, so the next DescribeTable says ACTIVE.
        for gsi in description.global_secondary_indexes.iter_mut().flatten() {
            if new_index_names
                .iter()
                .any(|n| Some(n.as_str()) == gsi.index_name.as_deref())
            {
                gsi.index_status = Some(IndexStatus::Creating);
                gsi.backfilling = Some(true);
            }
        }
        Ok(description)
    }

    /// Changes a stored table record under the admin lock.
    pub(crate) async fn modify_table(
        &self,
        ctx: &RequestContext,
        name: &str,
        change: impl FnOnce(&mut TableRecord) -> Result<(), ServiceError>,
    ) -> Result<Arc<TableRecord>, ServiceError> {
        let _admin = self.admin.lock().await;
        let old = self.table_for_admin(ctx, name)?;
        let mut t = (*old).clone();
        change(&mut t)?;
        let t = Arc::new(t);
        self.save_table(t.clone()).await?;
        Ok(t)
    }

    pub(crate) fn list_tables_impl(&self, ctx: &RequestContext, input: ListTablesInput) -> ListTablesOutput {
        let limit = input.limit.unwrap_or(100).clamp(1, 100) as usize;
        let mut names: Vec<String> = self
            .tables
            .read()
            .unwrap()
            .keys()
            .filter(|k| k.0 == ctx.account_id && k.1 == ctx.region)
            .map(|k| k.2.clone())
            .filter(|n| input.exclusive_start_table_name.as_ref().is_none_or(|s| n > s))
            .collect();
        names.sort();
        let more = names.len() > limit;
        names.truncate(limit);
        ListTablesOutput {
            last_evaluated_table_name: if more { names.last().cloned() } else { None },
            table_names: Some(names),
        }
    }
}

/// The model accepts ARNs where a table is named; a new table's name is still AWS's
/// `[a-zA-Z0-9_.-]{3,255}`.
fn check_table_name(name: &str) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    if name.len() < 3 {
        problems.push("Member must have length greater than or equal to 3");
    }
    if name.len() > 255 {
        problems.push("Member must have length less than or equal to 255");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        problems.push("Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(errors::validation(format!(
        "1 validation error detected: Value '{name}' at 'tableName' failed to satisfy constraint: {}",
        problems.join("; ")
    )))
}

fn push_index(indexes: &mut Vec<IndexDef>, index: IndexDef) -> Result<(), ServiceError> {
    if indexes.iter().any(|i| i.name == index.name) {
        return Err(invalid(&format!("Duplicate index name: {}", index.name)));
    }
    indexes.push(index);
    Ok(())
}

fn index_key_schema(index: &IndexDef) -> Vec<KeySchemaElement> {
    let mut out = vec![KeySchemaElement {
        attribute_name: index.schema.hash.name.clone(),
        key_type: KeyType::Hash,
    }];
    if let Some(r) = &index.schema.range {
        out.push(KeySchemaElement {
            attribute_name: r.name.clone(),
            key_type: KeyType::Range,
        });
    }
    out
}
