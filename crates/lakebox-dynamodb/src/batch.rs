//! BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems.
//!
//! A batch write or a transaction is one job for the group-committing writer: its items are
//! read, checked and written inside one store transaction, so a transaction is atomic (all or
//! nothing, also across a crash) and isolated (no other write runs between its reads and its
//! writes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};

use crate::api::*;
use crate::errors::{self, validation};
use crate::expr;
use crate::items::{
    Change, Exprs, Outcome, Write, check_update_targets, check_values, checked_item, checked_key,
    read_projection,
};
use crate::tables::TableRecord;
use crate::throttle::Kind;
use crate::value::{Item, ListedItem, item_size};
use crate::{DynamoDb, capacity, storage};

const MAX_BATCH_WRITES: usize = 25;
const MAX_BATCH_GETS: usize = 100;
/// How long a ClientRequestToken makes TransactWriteItems idempotent.
const TOKEN_MILLIS: i64 = 10 * 60 * 1000;

/// Where applied tokens are kept (written by the transaction they belong to, so a retry after
/// a crash is still recognised).
const TOKENS: &str = "transaction_tokens";

/// Tokens of recent transactions: the request's fingerprint and when it was applied.
#[derive(Default)]
pub(crate) struct Tokens(std::sync::Mutex<HashMap<String, (u64, i64)>>);

fn token_value(fingerprint: u64, at: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&fingerprint.to_be_bytes());
    v[8..].copy_from_slice(&at.to_be_bytes());
    v
}

/// A request's fingerprint, to tell a retry from another request under the same token.
pub(crate) fn fingerprint(request: &impl std::fmt::Debug) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{request:?}").hash(&mut h);
    h.finish()
}

impl Tokens {
    /// Whether `token` was applied within ten minutes to this same request; another request
    /// under it is DynamoDB's IdempotentParameterMismatchException.
    pub fn seen(&self, token: &str, fingerprint: u64, now: i64) -> Result<bool, ServiceError> {
        let tokens = self.0.lock().unwrap();
        match tokens.get(token) {
            Some((fp, at)) if now - at < TOKEN_MILLIS => {
                if *fp != fingerprint {
                    return Err(ServiceError::client(
                        "IdempotentParameterMismatchException",
                        "Specified idempotency token is already in use with different request parameters",
                    ));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Remembers a token its transaction has stored.
    pub fn applied(&self, token: String, fingerprint: u64, now: i64) {
        let mut tokens = self.0.lock().unwrap();
        tokens.retain(|_, (_, at)| now - *at < TOKEN_MILLIS);
        tokens.insert(token, (fingerprint, now));
    }

    /// The tokens stored within the last ten minutes (older ones are deleted).
    pub fn load(meta: &lakebox_store::MetaStore, now: i64) -> lakebox_store::Result<Tokens> {
        let mut live = HashMap::new();
        let mut stale = Vec::new();
        for (k, v) in meta.read(|view| view.scan_prefix(TOKENS, b""))? {
            let (Ok(token), Ok(fp), Ok(at)) = (
                String::from_utf8(k.clone()),
                v.get(..8).unwrap_or_default().try_into().map(u64::from_be_bytes),
                v.get(8..16)
                    .unwrap_or_default()
                    .try_into()
                    .map(i64::from_be_bytes),
            ) else {
                continue;
            };
            if now - at < TOKEN_MILLIS {
                live.insert(token, (fp, at));
            } else {
                stale.push(k);
            }
        }
        if !stale.is_empty() {
            meta.write(|b| {
                b.freeing();
                stale.iter().try_for_each(|k| b.delete(TOKENS, k).map(drop))
            })?;
        }
        Ok(Tokens(std::sync::Mutex::new(live)))
    }
}

fn duplicates() -> ServiceError {
    validation("Provided list of item keys contains duplicates")
}

impl DynamoDb {
    pub(crate) async fn batch_write_item_impl(
        &self,
        ctx: &RequestContext,
        input: BatchWriteItemInput,
    ) -> Result<BatchWriteItemOutput, ServiceError> {
        let total: usize = input.request_items.values().map(Vec::len).sum();
        if total > MAX_BATCH_WRITES {
            return Err(validation("Too many items requested for the BatchWriteItem call"));
        }
        let mut writes = Vec::with_capacity(total);
        let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
        for (name, requests) in input.request_items {
            let table = self.table(ctx, &name)?;
            self.admit(&table, Kind::Write)?;
            let mut seen = HashSet::new();
            for r in requests {
                let write = match (r.put_request, r.delete_request) {
                    (Some(p), None) => {
                        let item = checked_item(&table, p.item)?;
                        *sizes.entry(table.name.clone()).or_default() += item_size(&item);
                        let key = table.schema.key_of(&item);
                        Write::new(table.clone(), key, Change::Put(item), None)
                    }
                    (None, Some(d)) => {
                        let key = checked_key(&table, d.key)?;
                        *sizes.entry(table.name.clone()).or_default() += 1;
                        Write::new(table.clone(), key, Change::Delete, None)
                    }
                    _ => {
                        return Err(validation(
                            "Supplied WriteRequest must contain exactly one of PutRequest or DeleteRequest",
                        ));
                    }
                };
                if !seen.insert(write.storage_key.clone()) {
                    return Err(duplicates());
                }
                writes.push(write);
            }
        }
        let log = self.change_log();
        let gone = self
            .meta
            .write_async(move |b| {
                let mut gone = false;
                for w in &writes {
                    gone |= matches!(w.apply(b, &log)?, Outcome::TableGone);
                }
                Ok(gone)
            })
            .await
            .map_err(errors::store)?;
        if gone {
            return Err(errors::resource_not_found());
        }
        for (name, bytes) in &sizes {
            if let Ok(table) = self.table(ctx, name) {
                self.charge(&table, Kind::Write, capacity::write_units(*bytes));
            }
        }
        let consumed = input.return_consumed_capacity.as_ref().map(|asked| {
            sizes
                .iter()
                .filter_map(|(name, bytes)| {
                    let table = self.table(ctx, name).ok()?;
                    capacity::write(&table, Some(asked), *bytes)
                })
                .collect()
        });
        Ok(BatchWriteItemOutput {
            unprocessed_items: Some(BTreeMap::new()),
            item_collection_metrics: None,
            consumed_capacity: consumed.filter(|c: &Vec<ConsumedCapacity>| !c.is_empty()),
        })
    }

    pub(crate) fn batch_get_item_impl(
        &self,
        ctx: &RequestContext,
        input: BatchGetItemInput,
    ) -> Result<BatchGetItemOutput, ServiceError> {
        let total: usize = input.request_items.values().map(|k| k.keys.len()).sum();
        if total > MAX_BATCH_GETS {
            return Err(validation("Too many items requested for the BatchGetItem call"));
        }
        let mut plans = Vec::new();
        for (name, ka) in input.request_items {
            let table = self.table(ctx, &name)?;
            self.admit(&table, Kind::Read)?;
            let projection = read_projection(
                ka.projection_expression.as_ref(),
                ka.attributes_to_get.as_deref(),
                ka.expression_attribute_names.as_ref(),
            )?;
            let mut keys = Vec::new();
            let mut seen = HashSet::new();
            for k in ka.keys {
                let key = checked_key(&table, k)?;
                let sk = table.schema.storage_key(&key).expect("checked");
                if !seen.insert(sk.clone()) {
                    return Err(duplicates());
                }
                keys.push(sk);
            }
            plans.push((name, table, projection, keys, ka.consistent_read == Some(true)));
        }
        let mut responses = BTreeMap::new();
        let mut consumed = Vec::new();
        self.meta
            .read(|view| {
                for (name, table, projection, keys, consistent) in &plans {
                    let mut items = Vec::new();
                    let mut bytes = 0;
                    for k in keys {
                        if let Some(v) = view.get(&storage::items_table(&table.uid), k)? {
                            bytes += storage::stored_size(&v)?;
                            items.push(match projection {
                                Some(p) => ListedItem::Built(expr::project(&storage::decode_item(&v)?, p)),
                                None => storage::listed(storage::item_json(&v))?,
                            });
                        }
                    }
                    if let Some(c) =
                        capacity::read(table, input.return_consumed_capacity.as_ref(), bytes, *consistent)
                    {
                        consumed.push(c);
                    }
                    responses.insert(name.clone(), items);
                }
                Ok(())
            })
            .map_err(errors::store)?;
        Ok(BatchGetItemOutput {
            responses: Some(responses),
            unprocessed_keys: Some(BTreeMap::new()),
            consumed_capacity: (!consumed.is_empty()).then_some(consumed),
        })
    }

    pub(crate) async fn transact_write_items_impl(
        &self,
        ctx: &RequestContext,
        input: TransactWriteItemsInput,
    ) -> Result<TransactWriteItemsOutput, ServiceError> {
        let fingerprint = fingerprint(&input.transact_items);
        let now = self.now();
        if let Some(token) = &input.client_request_token
            && self.tokens.seen(token, fingerprint, now)?
        {
            // The same request again within ten minutes: already applied.
            return Ok(TransactWriteItemsOutput::default());
        }
        let mut writes: Vec<(Write, bool)> = Vec::with_capacity(input.transact_items.len());
        let mut seen = HashSet::new();
        for t in input.transact_items {
            let w = match (t.put, t.update, t.delete, t.condition_check) {
                (Some(mut p), None, None, None) => {
                    let table = self.table(ctx, &p.table_name)?;
                    check_values(&mut p.expression_attribute_values)?;
                    let item = checked_item(&table, p.item)?;
                    let mut e = Exprs::new(
                        p.expression_attribute_names.as_ref(),
                        p.expression_attribute_values.as_ref(),
                    )?;
                    let cond = e.condition("ConditionExpression", p.condition_expression.as_ref())?;
                    e.finish()?;
                    let key = table.schema.key_of(&item);
                    (
                        Write::new(table, key, Change::Put(item), cond),
                        return_old(p.return_values_on_condition_check_failure.as_ref()),
                    )
                }
                (None, Some(mut u), None, None) => {
                    let table = self.table(ctx, &u.table_name)?;
                    check_values(&mut u.expression_attribute_values)?;
                    let key = checked_key(&table, u.key)?;
                    let mut e = Exprs::new(
                        u.expression_attribute_names.as_ref(),
                        u.expression_attribute_values.as_ref(),
                    )?;
                    let update = e.update(Some(&u.update_expression))?.expect("given");
                    let cond = e.condition("ConditionExpression", u.condition_expression.as_ref())?;
                    e.finish()?;
                    check_update_targets(&table, &update)?;
                    (
                        Write::new(table, key, Change::Update(update), cond),
                        return_old(u.return_values_on_condition_check_failure.as_ref()),
                    )
                }
                (None, None, Some(mut d), None) => {
                    let table = self.table(ctx, &d.table_name)?;
                    check_values(&mut d.expression_attribute_values)?;
                    let key = checked_key(&table, d.key)?;
                    let mut e = Exprs::new(
                        d.expression_attribute_names.as_ref(),
                        d.expression_attribute_values.as_ref(),
                    )?;
                    let cond = e.condition("ConditionExpression", d.condition_expression.as_ref())?;
                    e.finish()?;
                    (
                        Write::new(table, key, Change::Delete, cond),
                        return_old(d.return_values_on_condition_check_failure.as_ref()),
                    )
                }
                (None, None, None, Some(mut c)) => {
                    let table = self.table(ctx, &c.table_name)?;
                    check_values(&mut c.expression_attribute_values)?;
                    let key = checked_key(&table, c.key)?;
                    let mut e = Exprs::new(
                        c.expression_attribute_names.as_ref(),
                        c.expression_attribute_values.as_ref(),
                    )?;
                    let cond = e.condition("ConditionExpression", Some(&c.condition_expression))?;
                    e.finish()?;
                    (
                        Write::new(table, key, Change::Check, cond),
                        return_old(c.return_values_on_condition_check_failure.as_ref()),
                    )
                }
                _ => {
                    return Err(validation(
                        "TransactItems can only contain one of Check, Put, Update or Delete",
                    ));
                }
            };
            if !seen.insert((w.0.table.uid.clone(), w.0.storage_key.clone())) {
                return Err(validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            writes.push(w);
        }
        let token = input.client_request_token.clone().map(|t| (t, fingerprint));
        let sizes = self.run_transaction(writes, token).await?;
        if let Some(token) = input.client_request_token {
            self.tokens.applied(token, fingerprint, now);
        }
        let consumed = input.return_consumed_capacity.as_ref().map(|asked| {
            sizes
                .iter()
                .filter_map(|(t, size)| {
                    capacity::consumed(t, Some(asked), 2.0 * capacity::write_units(*size), true)
                })
                .collect::<Vec<_>>()
        });
        Ok(TransactWriteItemsOutput {
            consumed_capacity: consumed,
            item_collection_metrics: None,
        })
    }

    /// Runs a transaction's writes as one store job: every action is decided against the
    /// items as committed, and all are written only if all may go; otherwise
    /// `TransactionCanceledException` with a reason per action, in order. Answers the tables
    /// written and the bytes of each action (for capacity).
    pub(crate) async fn run_transaction(
        &self,
        writes: Vec<(Write, bool)>,
        token: Option<(String, u64)>,
    ) -> Result<Vec<(Arc<TableRecord>, usize)>, ServiceError> {
        let now = self.now();
        for (w, _) in &writes {
            self.admit(&w.table, Kind::Write)?;
        }
        let sizes: Vec<(Arc<TableRecord>, usize)> = writes
            .iter()
            .map(|(w, _)| {
                let size = match &w.change {
                    Change::Put(i) => item_size(i),
                    _ => 1,
                };
                (w.table.clone(), size)
            })
            .collect();
        let log = self.change_log();
        let reasons = self
            .meta
            .write_async(move |b| {
                // Decide every action first; write only if all of them may go.
                let mut reasons = Vec::with_capacity(writes.len());
                let mut failed = false;
                for (w, want_old) in &writes {
                    let Some(table) = log.current(&w.table) else {
                        return Ok(Err(()));
                    };
                    let (_, decided) = w.decide(b, &table)?;
                    reasons.push(match decided {
                        Ok(_) => serde_json::json!({"Code": "None"}),
                        Err(Outcome::ConditionFailed { old }) => {
                            failed = true;
                            let mut r = serde_json::json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                            if let (Some(old), true) = (old, *want_old) {
                                r["Item"] = serde_json::to_value(old).unwrap_or_default();
                            }
                            r
                        }
                        Err(Outcome::Refused(m)) => {
                            failed = true;
                            serde_json::json!({"Code": "ValidationError", "Message": m})
                        }
                        Err(Outcome::Done { .. } | Outcome::TableGone) => serde_json::json!({"Code": "None"}),
                    });
                }
                if failed {
                    return Ok(Ok(Some(reasons)));
                }
                for (w, _) in &writes {
                    w.apply(b, &log)?;
                }
                if let Some((token, fingerprint)) = &token {
                    b.put(TOKENS, token.as_bytes(), &token_value(*fingerprint, now))?;
                }
                Ok(Ok(None))
            })
            .await
            .map_err(errors::store)?
            .map_err(|()| errors::resource_not_found())?;
        if let Some(reasons) = reasons {
            let codes: Vec<&str> = reasons
                .iter()
                .map(|r| r["Code"].as_str().unwrap_or("None"))
                .collect();
            return Err(ServiceError::client(
                "TransactionCanceledException",
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                ),
            )
            .with_json_extra(
                "CancellationReasons",
                serde_json::Value::Array(reasons).to_string(),
            ));
        }
        for (t, size) in &sizes {
            self.charge(t, Kind::Write, 2.0 * capacity::write_units(*size));
        }
        Ok(sizes)
    }

    pub(crate) fn transact_get_items_impl(
        &self,
        ctx: &RequestContext,
        input: TransactGetItemsInput,
    ) -> Result<TransactGetItemsOutput, ServiceError> {
        let mut plans = Vec::new();
        for t in input.transact_items {
            let g = t.get;
            let table = self.table(ctx, &g.table_name)?;
            self.admit(&table, Kind::Read)?;
            let key = checked_key(&table, g.key)?;
            let projection = read_projection(
                g.projection_expression.as_ref(),
                None,
                g.expression_attribute_names.as_ref(),
            )?;
            let sk = table.schema.storage_key(&key).expect("checked");
            plans.push((table, sk, projection));
        }
        // One read transaction: every item as of one moment.
        let responses = self
            .meta
            .read(|view| {
                let mut out = Vec::new();
                for (table, sk, projection) in &plans {
                    let item: Option<Item> = view
                        .get(&storage::items_table(&table.uid), sk)?
                        .map(|v| storage::decode_item(&v))
                        .transpose()?;
                    out.push(ItemResponse {
                        item: item.map(|i| match projection {
                            Some(p) => expr::project(&i, p),
                            None => i,
                        }),
                    });
                }
                Ok(out)
            })
            .map_err(errors::store)?;
        Ok(TransactGetItemsOutput {
            consumed_capacity: None,
            responses: Some(responses),
        })
    }
}

fn return_old(v: Option<&ReturnValuesOnConditionCheckFailure>) -> bool {
    matches!(v, Some(ReturnValuesOnConditionCheckFailure::AllOld))
}
