//! PartiQL for DynamoDB: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction, run
//! on the same write path and reads as the item operations.

mod parse;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lakebox_core::{RequestContext, ServiceError};

use crate::DynamoDb;
use crate::api::*;
use crate::errors::{self, validation};
use crate::expr::{self, Cmp, Cond, DocPath, Operand};
use crate::items::{Change, Outcome, Write, check_update_targets, checked_item};
use crate::tables::TableRecord;
use crate::value::{AttributeValue, Item, ListedItem, canonicalize};
use parse::{Returning, Statement};

fn duplicate_item() -> ServiceError {
    ServiceError::client("DuplicateItemException", "Duplicate primary key exists in table")
}

fn parse_with(statement: &str, parameters: Option<Vec<AttributeValue>>) -> Result<Statement, ServiceError> {
    let mut params = parameters.unwrap_or_default();
    for p in &mut params {
        canonicalize(p).map_err(validation)?;
    }
    parse::parse(statement, &params).map_err(validation)
}

/// Splits a WHERE clause into the item's key (an equality on every key attribute) and the
/// rest, which becomes the write's condition.
fn key_and_condition(table: &TableRecord, filter: Cond) -> Result<(Item, Option<Cond>), ServiceError> {
    let mut parts = Vec::new();
    fn split(c: Cond, out: &mut Vec<Cond>) {
        match c {
            Cond::And(a, b) => {
                split(*a, out);
                split(*b, out);
            }
            other => out.push(other),
        }
    }
    split(filter, &mut parts);
    let mut key = Item::new();
    let mut rest = Vec::new();
    for part in parts {
        let found = match &part {
            Cond::Compare(Operand::Path(p), Cmp::Eq, Operand::Value(v))
            | Cond::Compare(Operand::Value(v), Cmp::Eq, Operand::Path(p))
                if p.0.len() == 1 && table.schema.is_key(p.root()) && !key.contains_key(p.root()) =>
            {
                Some((p.root().to_owned(), v.clone()))
            }
            _ => None,
        };
        match found {
            Some((k, v)) => {
                key.insert(k, v);
            }
            None => rest.push(part),
        }
    }
    if table.schema.attrs().any(|a| !key.contains_key(&a.name)) {
        return Err(validation(
            "Where clause does not contain a mandatory equality on all key attributes",
        ));
    }
    table.schema.check_key(&key).map_err(validation)?;
    Ok((
        key,
        rest.into_iter()
            .reduce(|a, b| Cond::And(Box::new(a), Box::new(b))),
    ))
}

fn and(a: Cond, b: Option<Cond>) -> Cond {
    match b {
        Some(b) => Cond::And(Box::new(a), Box::new(b)),
        None => a,
    }
}

/// A read of one item by key: its table, key and projection.
type KeyRead = (std::sync::Arc<TableRecord>, Item, Option<Vec<DocPath>>);

/// What a write statement becomes, and what its RETURNING asks for.
struct PlannedWrite {
    write: Write,
    returning: Option<Returning>,
    targets: Vec<DocPath>,
    insert: bool,
}

impl DynamoDb {
    fn plan_write(&self, ctx: &RequestContext, stmt: Statement) -> Result<PlannedWrite, ServiceError> {
        let table = self.table(ctx, stmt.table())?;
        match stmt {
            Statement::Insert { item, .. } => {
                let item = checked_item(&table, item)?;
                let key = table.schema.key_of(&item);
                let absent = Cond::NotExists(DocPath::attribute(&table.schema.hash.name));
                Ok(PlannedWrite {
                    write: Write::new(table, key, Change::Put(item), Some(absent)),
                    returning: None,
                    targets: Vec::new(),
                    insert: true,
                })
            }
            Statement::Update {
                actions,
                filter,
                returning,
                ..
            } => {
                let (key, rest) = key_and_condition(&table, filter)?;
                let update = expr::Update { actions };
                check_update_targets(&table, &update)?;
                let targets = update.targets().cloned().collect();
                // An UPDATE changes an item that exists; it never makes one.
                let exists = Cond::Exists(DocPath::attribute(&table.schema.hash.name));
                Ok(PlannedWrite {
                    write: Write::new(table, key, Change::Update(update), Some(and(exists, rest))),
                    returning,
                    targets,
                    insert: false,
                })
            }
            Statement::Delete {
                filter, returning, ..
            } => {
                let (key, rest) = key_and_condition(&table, filter)?;
                if matches!(returning, Some(ref r) if *r != Returning::AllOld) {
                    return Err(validation("DELETE supports only RETURNING ALL OLD *"));
                }
                Ok(PlannedWrite {
                    write: Write::new(table, key, Change::Delete, rest),
                    returning,
                    targets: Vec::new(),
                    insert: false,
                })
            }
            Statement::Select { .. } => unreachable!("reads are not planned as writes"),
        }
    }

    /// Runs one write statement: the items RETURNING asked for.
    async fn run_write_statement(
        &self,
        plan: PlannedWrite,
        return_old: bool,
    ) -> Result<Vec<Item>, ServiceError> {
        let insert = plan.insert;
        match self.run_write(plan.write).await? {
            Outcome::Done { old, new } => {
                let new = new.unwrap_or_default();
                let out = match plan.returning {
                    None => None,
                    Some(Returning::AllOld) => old,
                    Some(Returning::AllNew) => Some(new),
                    Some(Returning::ModifiedOld) => old.map(|o| expr::project(&o, &plan.targets)),
                    Some(Returning::ModifiedNew) => Some(expr::project(&new, &plan.targets)),
                };
                Ok(out.into_iter().collect())
            }
            Outcome::ConditionFailed { .. } if insert => Err(duplicate_item()),
            other => Err(other.into_error(return_old)),
        }
    }

    pub(crate) async fn execute_statement_impl(
        &self,
        ctx: &RequestContext,
        input: ExecuteStatementInput,
    ) -> Result<ExecuteStatementOutput, ServiceError> {
        let stmt = parse_with(&input.statement, input.parameters)?;
        let return_old = matches!(
            input.return_values_on_condition_check_failure,
            Some(ReturnValuesOnConditionCheckFailure::AllOld)
        );
        if let Statement::Select {
            table,
            index,
            projection,
            filter,
            descending,
        } = stmt
        {
            let table = self.table(ctx, &table)?;
            let start = input
                .next_token
                .as_deref()
                .map(|t| {
                    BASE64
                        .decode(t)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Item>(&b).ok())
                        .ok_or_else(|| validation("Invalid NextToken"))
                })
                .transpose()?;
            let consistent = input.consistent_read == Some(true);
            let page = self.select_page(
                &table,
                index.as_ref(),
                consistent,
                filter,
                projection,
                descending,
                input.limit.map(|l| l as usize),
                start,
            )?;
            let next_token = page
                .last_key
                .as_ref()
                .map(|k| BASE64.encode(serde_json::to_vec(k).unwrap_or_default()));
            crate::metrics::note_returned(page.items.len());
            return Ok(ExecuteStatementOutput {
                items: Some(page.items),
                next_token,
                consumed_capacity: self.consume_read(
                    &table,
                    input.return_consumed_capacity.as_ref(),
                    page.bytes,
                    consistent,
                ),
                last_evaluated_key: page.last_key,
            });
        }
        let plan = self.plan_write(ctx, stmt)?;
        self.admit(&plan.write.table, crate::throttle::Kind::Write)?;
        let table = plan.write.table.clone();
        let items = self.run_write_statement(plan, return_old).await?;
        Ok(ExecuteStatementOutput {
            items: Some(items.into_iter().map(ListedItem::Built).collect()),
            consumed_capacity: self.consume_write(&table, input.return_consumed_capacity.as_ref(), 1024),
            ..Default::default()
        })
    }

    pub(crate) async fn batch_execute_statement_impl(
        &self,
        ctx: &RequestContext,
        input: BatchExecuteStatementInput,
    ) -> Result<BatchExecuteStatementOutput, ServiceError> {
        let mut responses = Vec::with_capacity(input.statements.len());
        let mut reads = 0;
        let mut parsed = Vec::new();
        for s in input.statements {
            let stmt = parse_with(&s.statement, s.parameters)?;
            reads += matches!(stmt, Statement::Select { .. }) as usize;
            parsed.push((
                stmt,
                s.consistent_read == Some(true),
                s.return_values_on_condition_check_failure,
            ));
        }
        if reads != 0 && reads != parsed.len() {
            return Err(validation(
                "Unsupported operation: A batch must contain either only reads or only writes",
            ));
        }
        for (stmt, consistent, rv) in parsed {
            let name = stmt.table().to_owned();
            let outcome: Result<Option<Item>, ServiceError> = async {
                match stmt {
                    Statement::Select {
                        table,
                        index,
                        projection,
                        filter,
                        ..
                    } => {
                        let t = self.table(ctx, &table)?;
                        let (key, _) = key_and_condition(&t, filter.clone().unwrap_or(Cond::True))?;
                        let key_filter = key
                            .iter()
                            .map(|(k, v)| {
                                Cond::Compare(
                                    Operand::Path(DocPath::attribute(k)),
                                    Cmp::Eq,
                                    Operand::Value(v.clone()),
                                )
                            })
                            .reduce(|a, b| Cond::And(Box::new(a), Box::new(b)));
                        let filter = match filter {
                            Some(f) => Some(f),
                            None => key_filter,
                        };
                        let page = self.select_page(
                            &t,
                            index.as_ref(),
                            consistent,
                            filter,
                            projection,
                            false,
                            Some(1),
                            None,
                        )?;
                        page.items
                            .into_iter()
                            .next()
                            .map(|i| i.into_item().map_err(errors::internal))
                            .transpose()
                    }
                    write => {
                        let plan = self.plan_write(ctx, write)?;
                        let return_old = matches!(rv, Some(ReturnValuesOnConditionCheckFailure::AllOld));
                        self.run_write_statement(plan, return_old).await.map(|_| None)
                    }
                }
            }
            .await;
            responses.push(match outcome {
                Ok(item) => BatchStatementResponse {
                    table_name: Some(name),
                    item,
                    error: None,
                },
                Err(e) => BatchStatementResponse {
                    table_name: Some(name),
                    item: None,
                    error: Some(BatchStatementError {
                        code: Some(BatchStatementErrorCodeEnum::from(match e.code.as_ref() {
                            "ConditionalCheckFailedException" => "ConditionalCheckFailed",
                            "DuplicateItemException" => "DuplicateItem",
                            "ResourceNotFoundException" => "ResourceNotFound",
                            "ProvisionedThroughputExceededException" => "ProvisionedThroughputExceeded",
                            "ValidationException" => "ValidationError",
                            _ => "InternalServerError",
                        })),
                        message: Some(e.message),
                        item: None,
                    }),
                },
            });
        }
        Ok(BatchExecuteStatementOutput {
            responses: Some(responses),
            consumed_capacity: None,
        })
    }

    pub(crate) async fn execute_transaction_impl(
        &self,
        ctx: &RequestContext,
        input: ExecuteTransactionInput,
    ) -> Result<ExecuteTransactionOutput, ServiceError> {
        let fingerprint = crate::batch::fingerprint(&input.transact_statements);
        let now = self.now();
        if let Some(token) = &input.client_request_token
            && self.tokens.seen(token, fingerprint, now)?
        {
            return Ok(ExecuteTransactionOutput::default());
        }
        let mut parsed = Vec::new();
        for s in input.transact_statements {
            let return_old = matches!(
                s.return_values_on_condition_check_failure,
                Some(ReturnValuesOnConditionCheckFailure::AllOld)
            );
            parsed.push((parse_with(&s.statement, s.parameters)?, return_old));
        }
        let reads = parsed
            .iter()
            .filter(|(s, _)| matches!(s, Statement::Select { .. }))
            .count();
        if reads == parsed.len() {
            // A read transaction: every item by its key, from one snapshot.
            let mut items = Vec::new();
            for (stmt, _) in parsed {
                let Statement::Select {
                    table,
                    projection,
                    filter,
                    ..
                } = stmt
                else {
                    unreachable!()
                };
                let t = self.table(ctx, &table)?;
                let (key, _) = key_and_condition(&t, filter.unwrap_or(Cond::True))?;
                items.push((t, key, projection));
            }
            let got = self.get_many(&items)?;
            return Ok(ExecuteTransactionOutput {
                responses: Some(got.into_iter().map(|item| ItemResponse { item }).collect()),
                consumed_capacity: None,
            });
        }
        if reads != 0 {
            return Err(validation(
                "Unsupported operation: A transaction must contain either only reads or only writes",
            ));
        }
        let mut writes = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (stmt, return_old) in parsed {
            let plan = self.plan_write(ctx, stmt)?;
            if !seen.insert((plan.write.table.uid.clone(), plan.write.storage_key.clone())) {
                return Err(validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
            writes.push((plan.write, return_old));
        }
        let token = input.client_request_token.clone().map(|t| (t, fingerprint));
        self.run_transaction(writes, token).await?;
        if let Some(token) = input.client_request_token {
            self.tokens.applied(token, fingerprint, now);
        }
        Ok(ExecuteTransactionOutput {
            responses: None,
            consumed_capacity: None,
        })
    }

    /// Items by key from one snapshot, each cut to its projection.
    fn get_many(&self, wanted: &[KeyRead]) -> Result<Vec<Option<Item>>, ServiceError> {
        self.meta
            .read(|view| {
                let mut out = Vec::new();
                for (t, key, projection) in wanted {
                    let k = t.schema.storage_key(key).expect("checked");
                    let item = view
                        .get(&crate::storage::items_table(&t.uid), &k)?
                        .map(|v| crate::storage::decode_item(&v))
                        .transpose()?;
                    out.push(item.map(|i| match projection {
                        Some(p) => expr::project(&i, p),
                        None => i,
                    }));
                }
                Ok(out)
            })
            .map_err(errors::store)
    }
}
