//! The single-item operations (PutItem, GetItem, UpdateItem, DeleteItem) and the write path
//! they share with batches and transactions: a [`Write`] is prepared and checked on the
//! request's task, then applied by the store's group-committing writer, where the condition
//! is evaluated against the item as committed, so conditional writes are serialised.

use std::collections::BTreeMap;
use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_store::kv::WriteBatch;

use crate::DynamoDb;
use crate::api::*;
use crate::capacity;
use crate::errors::{self, invalid, validation};
use crate::expr::{self, Cond, DocPath, Substitutions};
use crate::legacy;
use crate::storage;
use crate::streams::ChangeLog;
use crate::tables::TableRecord;
use crate::throttle::Kind;
use crate::value::{AttributeValue, Item, canonicalize, canonicalize_item, item_size};

/// Largest item, counted as DynamoDB counts it.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The request's expressions, parsed against its ExpressionAttributeNames / Values.
pub(crate) struct Exprs<'a> {
    subs: Substitutions<'a>,
    any: bool,
}

/// Checks ExpressionAttributeValues as DynamoDB does (each value well-formed) and puts their
/// numbers in canonical form.
pub(crate) fn check_values(
    values: &mut Option<BTreeMap<String, AttributeValue>>,
) -> Result<(), ServiceError> {
    for (k, v) in values.iter_mut().flatten() {
        canonicalize(v).map_err(|m| {
            validation(format!(
                "ExpressionAttributeValues contains invalid value: {m} for key {k}"
            ))
        })?;
    }
    Ok(())
}

impl<'a> Exprs<'a> {
    pub fn new(
        names: Option<&'a BTreeMap<String, String>>,
        values: Option<&'a BTreeMap<String, AttributeValue>>,
    ) -> Result<Self, ServiceError> {
        Ok(Exprs {
            subs: Substitutions::new(names, values).map_err(validation)?,
            any: false,
        })
    }

    pub fn condition(&mut self, kind: &str, src: Option<&String>) -> Result<Option<Cond>, ServiceError> {
        let Some(src) = src else { return Ok(None) };
        self.any = true;
        expr::parse_condition(kind, src, &mut self.subs)
            .map(Some)
            .map_err(validation)
    }

    pub fn projection(&mut self, src: Option<&String>) -> Result<Option<Vec<DocPath>>, ServiceError> {
        let Some(src) = src else { return Ok(None) };
        self.any = true;
        expr::parse_projection(src, &mut self.subs)
            .map(Some)
            .map_err(validation)
    }

    pub fn update(&mut self, src: Option<&String>) -> Result<Option<expr::Update>, ServiceError> {
        let Some(src) = src else { return Ok(None) };
        self.any = true;
        expr::parse_update(src, &mut self.subs)
            .map(Some)
            .map_err(validation)
    }

    /// Every name and value given was used, and none was given without an expression.
    pub fn finish(self) -> Result<(), ServiceError> {
        let (names, values) = self.subs.given();
        if !self.any {
            if names {
                return Err(validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if values {
                return Err(validation(
                    "ExpressionAttributeValues can only be specified when using expressions",
                ));
            }
        }
        self.subs.check_all_used().map_err(validation)
    }
}

/// What a write does to its item.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    Put(Item),
    Delete,
    Update(expr::Update),
    /// A transaction's ConditionCheck: the condition only.
    Check,
}

/// One item write, checked and ready for the writer.
#[derive(Debug, Clone)]
pub(crate) struct Write {
    pub table: Arc<TableRecord>,
    pub key: Item,
    pub storage_key: Vec<u8>,
    pub change: Change,
    pub condition: Option<Cond>,
    /// A delete by the TTL sweeper (its stream record says so).
    pub by_ttl: bool,
}

/// What a write will do: the new item (`None`: none, deleted or only checked), or why not.
pub(crate) type Decision = Result<Option<Item>, Outcome>;

/// How a write went.
#[derive(Debug)]
pub(crate) enum Outcome {
    Done {
        old: Option<Item>,
        new: Option<Item>,
    },
    ConditionFailed {
        old: Option<Item>,
    },
    /// The update could not be applied to this item (a wrong type, a path that is not
    /// there): DynamoDB's message.
    Refused(String),
    /// The table was deleted before the write reached the writer.
    TableGone,
}

impl DynamoDb {
    /// A write that was not done: a failed condition still consumes write capacity, by the
    /// size of the item it was checked against (at least one unit), as on AWS.
    pub(crate) fn refused(&self, table: &TableRecord, outcome: Outcome) -> Outcome {
        if let Outcome::ConditionFailed { old } = &outcome {
            let size = old.as_ref().map_or(0, item_size);
            self.charge(table, Kind::Write, capacity::write_units(size));
        }
        outcome
    }
}

impl Outcome {
    /// The error for an outcome that is not `Done`.
    pub fn into_error(self, return_old: bool) -> ServiceError {
        match self {
            Outcome::ConditionFailed { old } => condition_failed(old, return_old),
            Outcome::Refused(m) => validation(m),
            Outcome::TableGone | Outcome::Done { .. } => errors::resource_not_found(),
        }
    }
}

impl Write {
    pub fn new(table: Arc<TableRecord>, key: Item, change: Change, condition: Option<Cond>) -> Self {
        let storage_key = table.schema.storage_key(&key).expect("keys are checked before");
        Write {
            table,
            key,
            storage_key,
            change,
            condition,
            by_ttl: false,
        }
    }

    /// Reads the item and decides, without writing: the new item (`None`: deleted, or a
    /// check), or why not. `table` is the table as it is now (see [`ChangeLog::current`]).
    pub fn decide(
        &self,
        batch: &WriteBatch<'_>,
        table: &TableRecord,
    ) -> lakebox_store::Result<(Option<Item>, Decision)> {
        let old = storage::read_item(batch, table, &self.storage_key)?;
        let empty = Item::new();
        if let Some(c) = &self.condition
            && !expr::matches(c, old.as_ref().unwrap_or(&empty))
        {
            return Ok((old.clone(), Err(Outcome::ConditionFailed { old })));
        }
        let new = match &self.change {
            Change::Put(item) => Some(item.clone()),
            Change::Delete | Change::Check => None,
            Change::Update(u) => {
                let base = old.clone().unwrap_or_else(|| self.key.clone());
                match expr::apply_update(&base, u) {
                    Ok(mut item) => {
                        item.extend(self.key.clone());
                        if item_size(&item) > MAX_ITEM_BYTES {
                            return Ok((
                                old,
                                Err(Outcome::Refused(
                                    "Item size to update has exceeded the maximum allowed size".into(),
                                )),
                            ));
                        }
                        if let Some(e) = table.indexes.iter().find_map(|i| i.check_item(&item).err()) {
                            return Ok((old, Err(Outcome::Refused(e))));
                        }
                        Some(item)
                    }
                    Err(e) => return Ok((old, Err(Outcome::Refused(e)))),
                }
            }
        };
        Ok((old, Ok(new)))
    }

    /// Decides and writes (a check writes nothing), recording the change in the table's
    /// stream in the same transaction.
    pub fn apply(&self, batch: &mut WriteBatch<'_>, log: &ChangeLog) -> lakebox_store::Result<Outcome> {
        let Some(table) = log.current(&self.table) else {
            return Ok(Outcome::TableGone);
        };
        let (old, decided) = self.decide(batch, &table)?;
        match decided {
            Err(outcome) => Ok(outcome),
            Ok(new) => {
                if !matches!(self.change, Change::Check) {
                    storage::replace_item(batch, &table, &self.storage_key, old.as_ref(), new.as_ref())?;
                    log.record(batch, &table, &self.key, old.as_ref(), new.as_ref(), self.by_ttl)?;
                }
                Ok(Outcome::Done { old, new })
            }
        }
    }
}

/// The error for a failed condition, with the item when the request asked for it.
pub(crate) fn condition_failed(old: Option<Item>, return_old: bool) -> ServiceError {
    let e = errors::conditional_check_failed();
    match (old, return_old) {
        (Some(old), true) => e.with_json_extra("Item", serde_json::to_string(&old).unwrap_or_default()),
        _ => e,
    }
}

/// Fills new indexes from every item of the table (inside the transaction that adds them).
pub(crate) fn backfill(
    batch: &mut WriteBatch<'_>,
    table: &TableRecord,
    indexes: &[crate::schema::IndexDef],
) -> lakebox_store::Result<()> {
    if indexes.is_empty() {
        return Ok(());
    }
    let mut entries = Vec::new();
    batch.range(
        &storage::items_table(&table.uid),
        lakebox_store::KeyRange {
            start: std::ops::Bound::Unbounded,
            end: std::ops::Bound::Unbounded,
            reverse: false,
        },
        |_, v| {
            let item = storage::decode_item(v)?;
            for index in indexes {
                if let Some(k) = index.entry_key(&table.schema, &item) {
                    entries.push((index.name.clone(), k, index.project(&table.schema, &item)));
                }
            }
            Ok(true)
        },
    )?;
    for (name, key, item) in entries {
        batch.put(
            &storage::index_table(&table.uid, &name),
            &key,
            &storage::encode_item(&item),
        )?;
        storage::add_stats(
            batch,
            &format!("{}/{name}", table.uid),
            1,
            item_size(&item) as i64,
        )?;
    }
    Ok(())
}

fn return_old_on_failure(v: Option<&ReturnValuesOnConditionCheckFailure>) -> bool {
    matches!(v, Some(ReturnValuesOnConditionCheckFailure::AllOld))
}

/// A client's key: well-formed and exactly the table's key.
pub(crate) fn checked_key(table: &TableRecord, mut key: Item) -> Result<Item, ServiceError> {
    canonicalize_item(&mut key).map_err(validation)?;
    table.schema.check_key(&key).map_err(validation)?;
    Ok(key)
}

/// A client's item for a put: well-formed, within the size limit, with the table's key and
/// index keys of the right types.
pub(crate) fn checked_item(table: &TableRecord, mut item: Item) -> Result<Item, ServiceError> {
    canonicalize_item(&mut item).map_err(validation)?;
    table.schema.check_item(&item).map_err(validation)?;
    if item_size(&item) > MAX_ITEM_BYTES {
        return Err(validation("Item size has exceeded the maximum allowed size"));
    }
    for index in &table.indexes {
        index.check_item(&item).map_err(validation)?;
    }
    Ok(item)
}

/// An update's targets must leave the key alone.
pub(crate) fn check_update_targets(table: &TableRecord, update: &expr::Update) -> Result<(), ServiceError> {
    for path in update.targets() {
        if table.schema.is_key(path.root()) {
            return Err(invalid(&format!(
                "Cannot update attribute {}. This attribute is part of the key",
                path.root()
            )));
        }
    }
    Ok(())
}

/// The condition of a write: ConditionExpression or the legacy Expected.
pub(crate) fn write_condition(
    exprs: &mut Exprs<'_>,
    condition_expression: Option<&String>,
    expected: Option<&BTreeMap<String, ExpectedAttributeValue>>,
    conditional_operator: Option<&ConditionalOperator>,
) -> Result<Option<Cond>, ServiceError> {
    legacy::not_both(
        &[
            ("Expected", expected.is_some()),
            ("ConditionalOperator", conditional_operator.is_some()),
        ],
        &[("ConditionExpression", condition_expression.is_some())],
    )?;
    match expected {
        Some(e) => legacy::expected(e, conditional_operator).map(Some),
        None => exprs.condition("ConditionExpression", condition_expression),
    }
}

/// ReturnValues of PutItem and DeleteItem: NONE or ALL_OLD.
fn returns_all_old(v: Option<&ReturnValue>) -> Result<bool, ServiceError> {
    match v {
        None | Some(ReturnValue::None) => Ok(false),
        Some(ReturnValue::AllOld) => Ok(true),
        Some(_) => Err(validation("Return values set to invalid value")),
    }
}

/// The condition of a write without an update expression (PutItem, DeleteItem), every
/// name and value of the request used by it.
fn condition_only(
    names: Option<&BTreeMap<String, String>>,
    values: Option<&BTreeMap<String, AttributeValue>>,
    condition_expression: Option<&String>,
    expected: Option<&BTreeMap<String, ExpectedAttributeValue>>,
    conditional_operator: Option<&ConditionalOperator>,
) -> Result<Option<Cond>, ServiceError> {
    let mut exprs = Exprs::new(names, values)?;
    let condition = write_condition(&mut exprs, condition_expression, expected, conditional_operator)?;
    exprs.finish()?;
    Ok(condition)
}

impl DynamoDb {
    pub(crate) async fn run_write(&self, write: Write) -> Result<Outcome, ServiceError> {
        let log = self.change_log();
        self.meta
            .write_async(move |b| write.apply(b, &log))
            .await
            .map_err(errors::store)
    }

    pub(crate) async fn put_item_impl(
        &self,
        ctx: &RequestContext,
        mut input: PutItemInput,
    ) -> Result<PutItemOutput, ServiceError> {
        let table = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Write)?;
        let return_old = returns_all_old(input.return_values.as_ref())?;
        check_values(&mut input.expression_attribute_values)?;
        let item = checked_item(&table, std::mem::take(&mut input.item))?;
        let condition = condition_only(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        let key = table.schema.key_of(&item);
        let size = item_size(&item);
        let metrics = capacity::collection(&table, input.return_item_collection_metrics.as_ref(), &key);
        let write = Write::new(table.clone(), key, Change::Put(item), condition);
        match self.run_write(write).await? {
            Outcome::Done { old, .. } => Ok(PutItemOutput {
                attributes: old.filter(|_| return_old),
                consumed_capacity: self.consume_write(&table, input.return_consumed_capacity.as_ref(), size),
                item_collection_metrics: metrics,
            }),
            other => Err(self.refused(&table, other).into_error(return_old_on_failure(
                input.return_values_on_condition_check_failure.as_ref(),
            ))),
        }
    }

    pub(crate) async fn delete_item_impl(
        &self,
        ctx: &RequestContext,
        mut input: DeleteItemInput,
    ) -> Result<DeleteItemOutput, ServiceError> {
        let table = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Write)?;
        let return_old = returns_all_old(input.return_values.as_ref())?;
        check_values(&mut input.expression_attribute_values)?;
        let key = checked_key(&table, std::mem::take(&mut input.key))?;
        let condition = condition_only(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        let metrics = capacity::collection(&table, input.return_item_collection_metrics.as_ref(), &key);
        let write = Write::new(table.clone(), key, Change::Delete, condition);
        match self.run_write(write).await? {
            Outcome::Done { old, .. } => {
                let size = old.as_ref().map_or(0, item_size);
                Ok(DeleteItemOutput {
                    attributes: old.filter(|_| return_old),
                    consumed_capacity: self.consume_write(
                        &table,
                        input.return_consumed_capacity.as_ref(),
                        size,
                    ),
                    item_collection_metrics: metrics,
                })
            }
            other => Err(self.refused(&table, other).into_error(return_old_on_failure(
                input.return_values_on_condition_check_failure.as_ref(),
            ))),
        }
    }

    pub(crate) async fn update_item_impl(
        &self,
        ctx: &RequestContext,
        mut input: UpdateItemInput,
    ) -> Result<UpdateItemOutput, ServiceError> {
        let table = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Write)?;
        let return_values = input.return_values.clone().unwrap_or(ReturnValue::None);
        if let ReturnValue::Unknown(_) = return_values {
            return Err(validation("Return values set to invalid value"));
        }
        check_values(&mut input.expression_attribute_values)?;
        let key = checked_key(&table, std::mem::take(&mut input.key))?;
        legacy::not_both(
            &[("AttributeUpdates", input.attribute_updates.is_some())],
            &[("UpdateExpression", input.update_expression.is_some())],
        )?;
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        )?;
        let update = match &input.attribute_updates {
            Some(u) => legacy::attribute_updates(u)?,
            None => exprs
                .update(input.update_expression.as_ref())?
                .unwrap_or_default(),
        };
        let condition = write_condition(
            &mut exprs,
            input.condition_expression.as_ref(),
            input.expected.as_ref(),
            input.conditional_operator.as_ref(),
        )?;
        exprs.finish()?;
        check_update_targets(&table, &update)?;
        let targets: Vec<DocPath> = update.targets().cloned().collect();
        let metrics = capacity::collection(&table, input.return_item_collection_metrics.as_ref(), &key);
        let write = Write::new(table.clone(), key, Change::Update(update), condition);
        match self.run_write(write).await? {
            Outcome::Done { old, new } => {
                let new = new.unwrap_or_default();
                let size = item_size(&new).max(old.as_ref().map_or(0, item_size));
                let attributes = match return_values {
                    ReturnValue::AllOld => old,
                    ReturnValue::AllNew => Some(new),
                    ReturnValue::UpdatedOld => old.map(|o| expr::project(&o, &targets)),
                    ReturnValue::UpdatedNew => Some(expr::project(&new, &targets)),
                    _ => None,
                };
                Ok(UpdateItemOutput {
                    attributes: attributes.filter(|a| !a.is_empty()),
                    consumed_capacity: self.consume_write(
                        &table,
                        input.return_consumed_capacity.as_ref(),
                        size,
                    ),
                    item_collection_metrics: metrics,
                })
            }
            other => Err(self.refused(&table, other).into_error(return_old_on_failure(
                input.return_values_on_condition_check_failure.as_ref(),
            ))),
        }
    }

    pub(crate) fn get_item_impl(
        &self,
        ctx: &RequestContext,
        mut input: GetItemInput,
    ) -> Result<GetItemOutput, ServiceError> {
        let table = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Read)?;
        let key = checked_key(&table, std::mem::take(&mut input.key))?;
        let projection = read_projection(
            input.projection_expression.as_ref(),
            input.attributes_to_get.as_deref(),
            input.expression_attribute_names.as_ref(),
        )?;
        let storage_key = table.schema.storage_key(&key).expect("checked");
        let item = self
            .meta
            .get(&storage::items_table(&table.uid), &storage_key)
            .map_err(errors::store)?
            .map(|b| storage::decode_item(&b))
            .transpose()
            .map_err(errors::store)?;
        let size = item.as_ref().map_or(0, item_size);
        let item = match (&projection, item) {
            (Some(paths), Some(item)) => Some(expr::project(&item, paths)),
            (_, item) => item,
        };
        Ok(GetItemOutput {
            item,
            consumed_capacity: self.consume_read(
                &table,
                input.return_consumed_capacity.as_ref(),
                size,
                input.consistent_read == Some(true),
            ),
        })
    }
}

/// The attributes a read returns: ProjectionExpression or the legacy AttributesToGet.
pub(crate) fn read_projection(
    projection_expression: Option<&String>,
    attributes_to_get: Option<&[String]>,
    names: Option<&BTreeMap<String, String>>,
) -> Result<Option<Vec<DocPath>>, ServiceError> {
    legacy::not_both(
        &[("AttributesToGet", attributes_to_get.is_some())],
        &[("ProjectionExpression", projection_expression.is_some())],
    )?;
    if let Some(names) = attributes_to_get {
        if names.is_empty() {
            return Ok(None);
        }
        return legacy::attributes_to_get(names).map(Some);
    }
    let mut exprs = Exprs::new(names, None)?;
    let p = exprs.projection(projection_expression)?;
    exprs.finish()?;
    Ok(p)
}
