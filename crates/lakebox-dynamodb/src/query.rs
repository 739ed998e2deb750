//! Query and Scan: a span of stored keys read in order, at most `Limit` items or 1 MB
//! evaluated per page, the filter applied after (so `Count` may be less than `ScannedCount`,
//! as on AWS), and `LastEvaluatedKey` naming the last item read.

use std::ops::Bound;
use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_store::{KeyRange, prefix_end};

use crate::api::*;
use crate::errors::{self, invalid, validation};
use crate::expr::{self, Cmp, Cond, DocPath, Operand};
use crate::items::{Exprs, check_values};
use crate::schema::{IndexDef, IndexProjection, KeySchema};
use crate::tables::TableRecord;
use crate::throttle::Kind;
use crate::value::{AttributeValue, Item, ListedItem, canonicalize_item, compare};
use crate::{DynamoDb, legacy, storage};

/// Most bytes one page evaluates.
const PAGE_BYTES: usize = 1024 * 1024;

/// What a Query or Scan reads: the table or one of its indexes.
struct Source<'t> {
    table: &'t TableRecord,
    index: Option<&'t IndexDef>,
}

impl Source<'_> {
    fn schema(&self) -> &KeySchema {
        self.index.map_or(&self.table.schema, |i| &i.schema)
    }

    fn redb_table(&self) -> String {
        match self.index {
            Some(i) => storage::index_table(&self.table.uid, &i.name),
            None => storage::items_table(&self.table.uid),
        }
    }

    /// The stored key of an item of this source (ExclusiveStartKey).
    fn entry_key(&self, item: &Item) -> Option<Vec<u8>> {
        match self.index {
            Some(i) => i.entry_key(&self.table.schema, item),
            None => self.table.schema.storage_key(item),
        }
    }

    /// LastEvaluatedKey: the table's key, and the index's when reading one.
    fn last_key(&self, item: &Item) -> Item {
        let mut key = self.table.schema.key_of(item);
        if let Some(i) = self.index {
            key.extend(i.schema.key_of(item));
        }
        key
    }
}

fn source<'t>(
    table: &'t TableRecord,
    index: Option<&String>,
    consistent: bool,
) -> Result<Source<'t>, ServiceError> {
    let index = match index {
        Some(name) => Some(
            table
                .index(name)
                .ok_or_else(|| validation(format!("The table does not have the specified index: {name}")))?,
        ),
        None => None,
    };
    if consistent && index.is_some_and(|i| i.global) {
        return Err(validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(Source { table, index })
}

/// What a page returns of each item.
enum Shape {
    All,
    /// An LSI read with ALL_ATTRIBUTES: the item from the table.
    TableItem,
    Projected(Vec<DocPath>),
    Count,
}

fn shape(
    src: &Source<'_>,
    select: Option<&Select>,
    projection: Option<Vec<DocPath>>,
) -> Result<Shape, ServiceError> {
    match (select, projection) {
        (Some(Select::Count), Some(_)) => Err(validation(
            "Cannot specify the AttributesToGet when choosing to get only the Count",
        )),
        (Some(Select::Count), None) => Ok(Shape::Count),
        (Some(Select::AllAttributes), Some(_)) => Err(validation(
            "Cannot specify the AttributesToGet when choosing to get ALL_ATTRIBUTES",
        )),
        (Some(Select::AllProjectedAttributes), Some(_)) => Err(validation(
            "Cannot specify the AttributesToGet when choosing to get ALL_PROJECTED_ATTRIBUTES",
        )),
        (Some(Select::SpecificAttributes), None) => Err(validation(
            "Must specify the AttributesToGet when choosing to get SPECIFIC_ATTRIBUTES",
        )),
        (Some(Select::AllAttributes), None) => match src.index {
            Some(i) if i.projection != IndexProjection::All => {
                if i.global {
                    Err(invalid(&format!(
                        "Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                        i.name
                    )))
                } else {
                    Ok(Shape::TableItem)
                }
            }
            _ => Ok(Shape::All),
        },
        (Some(Select::AllProjectedAttributes), None) if src.index.is_none() => Err(validation(
            "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
        )),
        (_, Some(paths)) => Ok(Shape::Projected(paths)),
        (_, None) => Ok(Shape::All),
    }
}

struct Page {
    items: Vec<ListedItem>,
    count: usize,
    scanned: usize,
    last_key: Option<Item>,
    bytes: usize,
}

impl DynamoDb {
    /// Reads `range` of `src`, evaluating at most `limit` items. An item is decoded only for a
    /// filter, a projection or an LSI's table item; otherwise its stored JSON is answered as
    /// it is, and only the last one read is decoded (for `LastEvaluatedKey`).
    fn read_page(
        &self,
        src: &Source<'_>,
        range: KeyRange<'_>,
        limit: Option<usize>,
        filter: Option<&Cond>,
        shape: &Shape,
    ) -> Result<Page, ServiceError> {
        let mut page = Page {
            items: Vec::new(),
            count: 0,
            scanned: 0,
            last_key: None,
            bytes: 0,
        };
        let redb_table = src.redb_table();
        let items_table = storage::items_table(&src.table.uid);
        let decode = filter.is_some() || matches!(shape, Shape::Projected(_) | Shape::TableItem);
        self.meta
            .read(|view| {
                // The last entry read (its JSON): its keys are LastEvaluatedKey's.
                let mut last: Vec<u8> = Vec::new();
                let mut stopped = false;
                view.range(&redb_table, range, |_, v| {
                    if limit.is_some_and(|l| page.scanned >= l) || page.bytes > PAGE_BYTES {
                        stopped = true;
                        return Ok(false);
                    }
                    page.scanned += 1;
                    page.bytes += storage::stored_size(v)?;
                    let json = storage::item_json(v);
                    last.clear();
                    last.extend_from_slice(json);
                    let mut stored = json;
                    let mut full = None;
                    let mut item = if decode {
                        Some(storage::decode_item(v)?)
                    } else {
                        None
                    };
                    if let Shape::TableItem = shape
                        && let Some(k) = item.as_ref().and_then(|i| src.table.schema.storage_key(i))
                        && let Some(f) = view.get(&items_table, &k)?
                    {
                        item = Some(storage::decode_item(&f)?);
                        full = Some(f);
                    }
                    if let Some(f) = &full {
                        stored = storage::item_json(f);
                    }
                    let keep = match (filter, &item) {
                        (Some(f), Some(i)) => expr::matches(f, i),
                        _ => true,
                    };
                    if keep {
                        page.count += 1;
                        match (shape, &item) {
                            (Shape::Count, _) => {}
                            (Shape::Projected(paths), Some(i)) => {
                                page.items.push(ListedItem::Built(expr::project(i, paths)))
                            }
                            _ => page.items.push(storage::listed(stored)?),
                        }
                    }
                    Ok(true)
                })?;
                // Stopped by the limit or the page size with an item still to come, or at
                // exactly the limit (AWS answers a key then too).
                let at_limit = limit.is_some_and(|l| page.scanned >= l);
                if (stopped || at_limit || page.bytes > PAGE_BYTES) && page.scanned > 0 {
                    page.last_key = Some(src.last_key(&storage::decode_item(&last)?));
                }
                Ok(())
            })
            .map_err(errors::store)?;
        Ok(page)
    }

    pub(crate) fn query_impl(
        &self,
        ctx: &RequestContext,
        mut input: QueryInput,
    ) -> Result<QueryOutput, ServiceError> {
        let table: Arc<TableRecord> = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Read)?;
        let consistent = input.consistent_read == Some(true);
        let src = source(&table, input.index_name.as_ref(), consistent)?;
        check_values(&mut input.expression_attribute_values)?;
        legacy::not_both(
            &[
                ("KeyConditions", input.key_conditions.is_some()),
                ("QueryFilter", input.query_filter.is_some()),
                ("AttributesToGet", input.attributes_to_get.is_some()),
            ],
            &[
                ("KeyConditionExpression", input.key_condition_expression.is_some()),
                ("FilterExpression", input.filter_expression.is_some()),
                ("ProjectionExpression", input.projection_expression.is_some()),
            ],
        )?;
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        )?;
        let key_cond = match (&input.key_conditions, &input.key_condition_expression) {
            (Some(kc), _) => legacy::conditions(kc, None)?,
            (None, Some(_)) => exprs
                .condition("KeyConditionExpression", input.key_condition_expression.as_ref())?
                .expect("given"),
            (None, None) => {
                return Err(validation(
                    "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
                ));
            }
        };
        let (filter, projection) = filter_and_projection(
            &mut exprs,
            input.query_filter.as_ref(),
            input.conditional_operator.as_ref(),
            input.filter_expression.as_ref(),
            input.attributes_to_get.as_deref(),
            input.projection_expression.as_ref(),
        )?;
        exprs.finish()?;
        if let Some(f) = &filter {
            for root in roots(f) {
                if src.schema().is_key(root) {
                    return Err(validation(format!(
                        "Filter Expression can only contain non-primary key attributes: Primary key attribute: {root}"
                    )));
                }
            }
        }
        let shape = shape(&src, input.select.as_ref(), projection)?;
        let key = key_query(&key_cond, src.schema())?;
        let prefix = src.schema().partition_prefix(&key.pk);
        let (mut start, mut end) = key.bounds(&prefix);
        let esk = input
            .exclusive_start_key
            .take()
            .map(|k| start_key(&src, k))
            .transpose()?;
        let forward = input.scan_index_forward != Some(false);
        if let Some(esk) = &esk {
            if forward {
                start = Bound::Excluded(esk.clone());
            } else {
                end = Bound::Excluded(esk.clone());
            }
        }
        let range = KeyRange {
            start: as_ref(&start),
            end: as_ref(&end),
            reverse: !forward,
        };
        let page = self.read_page(
            &src,
            range,
            input.limit.map(|l| l as usize),
            filter.as_ref(),
            &shape,
        )?;
        crate::metrics::note_returned(page.count);
        Ok(QueryOutput {
            items: (!matches!(shape, Shape::Count)).then_some(page.items),
            count: Some(page.count as i32),
            scanned_count: Some(page.scanned as i32),
            last_evaluated_key: page.last_key,
            consumed_capacity: self.consume_read(
                &table,
                input.return_consumed_capacity.as_ref(),
                page.bytes,
                consistent,
            ),
        })
    }

    pub(crate) fn scan_impl(
        &self,
        ctx: &RequestContext,
        mut input: ScanInput,
    ) -> Result<ScanOutput, ServiceError> {
        let table: Arc<TableRecord> = self.table(ctx, &input.table_name)?;
        self.admit(&table, Kind::Read)?;
        let consistent = input.consistent_read == Some(true);
        let src = source(&table, input.index_name.as_ref(), consistent)?;
        check_values(&mut input.expression_attribute_values)?;
        legacy::not_both(
            &[
                ("ScanFilter", input.scan_filter.is_some()),
                ("AttributesToGet", input.attributes_to_get.is_some()),
            ],
            &[
                ("FilterExpression", input.filter_expression.is_some()),
                ("ProjectionExpression", input.projection_expression.is_some()),
            ],
        )?;
        let segment = match (input.segment, input.total_segments) {
            (Some(_), None) => {
                return Err(validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ));
            }
            (None, Some(_)) => {
                return Err(validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ));
            }
            (Some(s), Some(t)) if s >= t => {
                return Err(validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {t}"
                )));
            }
            (Some(s), Some(t)) => Some((s as u64, t as u64)),
            (None, None) => None,
        };
        let mut exprs = Exprs::new(
            input.expression_attribute_names.as_ref(),
            input.expression_attribute_values.as_ref(),
        )?;
        let (filter, projection) = filter_and_projection(
            &mut exprs,
            input.scan_filter.as_ref(),
            input.conditional_operator.as_ref(),
            input.filter_expression.as_ref(),
            input.attributes_to_get.as_deref(),
            input.projection_expression.as_ref(),
        )?;
        exprs.finish()?;
        let shape = shape(&src, input.select.as_ref(), projection)?;
        // A segment is a slice of the partition-key hash space (the first 4 bytes of a key).
        let (mut start, end) = match segment {
            None => (Bound::Unbounded, Bound::Unbounded),
            Some((s, t)) => {
                let edge = |i: u64| ((i << 32) / t) as u32;
                let start = Bound::Included(edge(s).to_be_bytes().to_vec());
                let end = if s + 1 == t {
                    Bound::Unbounded
                } else {
                    Bound::Excluded(edge(s + 1).to_be_bytes().to_vec())
                };
                (start, end)
            }
        };
        if let Some(esk) = input.exclusive_start_key.take() {
            let k = start_key(&src, esk)?;
            start = Bound::Excluded(k);
        }
        let range = KeyRange {
            start: as_ref(&start),
            end: as_ref(&end),
            reverse: false,
        };
        let page = self.read_page(
            &src,
            range,
            input.limit.map(|l| l as usize),
            filter.as_ref(),
            &shape,
        )?;
        crate::metrics::note_returned(page.count);
        Ok(ScanOutput {
            items: (!matches!(shape, Shape::Count)).then_some(page.items),
            count: Some(page.count as i32),
            scanned_count: Some(page.scanned as i32),
            last_evaluated_key: page.last_key,
            consumed_capacity: self.consume_read(
                &table,
                input.return_consumed_capacity.as_ref(),
                page.bytes,
                consistent,
            ),
        })
    }
}

/// The filter and projection of a Query or Scan: the legacy parameters, or the expressions.
fn filter_and_projection(
    exprs: &mut Exprs<'_>,
    legacy_filter: Option<&std::collections::BTreeMap<String, Condition>>,
    conditional_operator: Option<&ConditionalOperator>,
    filter_expression: Option<&String>,
    attributes_to_get: Option<&[String]>,
    projection_expression: Option<&String>,
) -> Result<(Option<Cond>, Option<Vec<DocPath>>), ServiceError> {
    let filter = match legacy_filter {
        Some(f) => Some(legacy::conditions(f, conditional_operator)?),
        None => exprs.condition("FilterExpression", filter_expression)?,
    };
    let projection = match attributes_to_get {
        Some(names) => Some(legacy::attributes_to_get(names)?),
        None => exprs.projection(projection_expression)?,
    };
    Ok((filter, projection))
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// An ExclusiveStartKey: well-formed, with the source's key attributes.
fn start_key(src: &Source<'_>, mut key: Item) -> Result<Vec<u8>, ServiceError> {
    canonicalize_item(&mut key).map_err(validation)?;
    let bad = || {
        validation("The provided starting key is invalid: The provided key element does not match the schema")
    };
    let mut wanted: Vec<&crate::schema::KeyAttr> = src.table.schema.attrs().collect();
    if let Some(i) = src.index {
        wanted.extend(i.schema.attrs());
    }
    for a in &wanted {
        if key.get(&a.name).is_none_or(|v| v.type_name() != a.ty) {
            return Err(bad());
        }
    }
    if key.keys().any(|k| !wanted.iter().any(|a| &a.name == k)) {
        return Err(bad());
    }
    src.entry_key(&key).ok_or_else(bad)
}

/// The top-level attributes a condition reads.
fn roots(c: &Cond) -> Vec<&str> {
    fn operand<'a>(o: &'a Operand, out: &mut Vec<&'a str>) {
        match o {
            Operand::Path(p) | Operand::Size(p) => out.push(p.root()),
            Operand::Value(_) => {}
        }
    }
    fn walk<'a>(c: &'a Cond, out: &mut Vec<&'a str>) {
        match c {
            Cond::Compare(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                operand(a, out);
                operand(b, out);
            }
            Cond::Between(a, b, c) => {
                operand(a, out);
                operand(b, out);
                operand(c, out);
            }
            Cond::In(a, list) => {
                operand(a, out);
                list.iter().for_each(|o| operand(o, out));
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Cond::Not(a) => walk(a, out),
            Cond::Exists(p) | Cond::NotExists(p) | Cond::Type(p, _) => out.push(p.root()),
            Cond::True => {}
        }
    }
    let mut out = Vec::new();
    walk(c, &mut out);
    out
}

/// A key condition: the partition key's value and at most one condition on the sort key.
struct KeyQuery {
    pk: AttributeValue,
    sort: Option<SortCond>,
}

enum SortCond {
    Cmp(Cmp, AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

impl KeyQuery {
    /// The span of stored keys the condition selects within the partition.
    fn bounds(&self, prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let after = |p: &[u8]| match prefix_end(p) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let with = |v: &AttributeValue| {
            let mut k = prefix.to_vec();
            v.key_bytes(&mut k);
            k
        };
        let whole = (Bound::Included(prefix.to_vec()), after(prefix));
        match &self.sort {
            None => whole,
            Some(SortCond::Cmp(cmp, v)) => {
                let k = with(v);
                match cmp {
                    Cmp::Eq => (Bound::Included(k.clone()), after(&k)),
                    Cmp::Lt => (whole.0, Bound::Excluded(k)),
                    Cmp::Le => (whole.0, after(&k)),
                    Cmp::Gt => (
                        match prefix_end(&k) {
                            Some(e) => Bound::Included(e),
                            None => Bound::Excluded(k),
                        },
                        whole.1,
                    ),
                    _ => (Bound::Included(k), whole.1),
                }
            }
            Some(SortCond::Between(low, high)) => (Bound::Included(with(low)), after(&with(high))),
            Some(SortCond::BeginsWith(p)) => {
                // The escaped bytes without the terminator: every value starting with `p`
                // encodes to bytes starting with these.
                let mut k = prefix.to_vec();
                let mut enc = Vec::new();
                p.key_bytes(&mut enc);
                enc.truncate(enc.len() - 2);
                k.extend_from_slice(&enc);
                (Bound::Included(k.clone()), after(&k))
            }
        }
    }
}

fn key_query(cond: &Cond, schema: &KeySchema) -> Result<KeyQuery, ServiceError> {
    let unsupported = || validation("Query key condition not supported");
    let mut parts = Vec::new();
    fn conjuncts<'a>(c: &'a Cond, out: &mut Vec<&'a Cond>) {
        match c {
            Cond::And(a, b) => {
                conjuncts(a, out);
                conjuncts(b, out);
            }
            other => out.push(other),
        }
    }
    conjuncts(cond, &mut parts);
    if parts.len() > 2 {
        return Err(validation("Conditions can be of length 1 or 2 only"));
    }
    let mut pk = None;
    let mut sort = None;
    let single = |o: &Operand| match o {
        Operand::Path(p) if p.0.len() == 1 => Some(p.root().to_owned()),
        _ => None,
    };
    let value = |o: &Operand| match o {
        Operand::Value(v) => Some(v.clone()),
        _ => None,
    };
    for part in parts {
        let (name, cond) = match part {
            Cond::Compare(a, cmp, b) => match (single(a), value(b), single(b), value(a)) {
                (Some(n), Some(v), _, _) => (n, SortCond::Cmp(*cmp, v)),
                (_, _, Some(n), Some(v)) => (n, SortCond::Cmp(flip(*cmp), v)),
                _ => return Err(unsupported()),
            },
            Cond::Between(a, low, high) => match (single(a), value(low), value(high)) {
                (Some(n), Some(l), Some(h)) => {
                    if compare(&l, &h).is_some_and(|o| o == std::cmp::Ordering::Greater) {
                        return Err(validation(
                            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                        ));
                    }
                    (n, SortCond::Between(l, h))
                }
                _ => return Err(unsupported()),
            },
            Cond::BeginsWith(a, p) => match (single(a), value(p)) {
                (Some(n), Some(v)) => (n, SortCond::BeginsWith(v)),
                _ => return Err(unsupported()),
            },
            _ => return Err(unsupported()),
        };
        let values: Vec<&AttributeValue> = match &cond {
            SortCond::Cmp(_, v) | SortCond::BeginsWith(v) => vec![v],
            SortCond::Between(a, b) => vec![a, b],
        };
        let attr = schema.attrs().find(|a| a.name == name).ok_or_else(|| {
            validation(format!(
                "Query condition missed key schema element: {}",
                if pk.is_none() {
                    &schema.hash.name
                } else {
                    &schema.range.as_ref().unwrap_or(&schema.hash).name
                }
            ))
        })?;
        if values.iter().any(|v| v.type_name() != attr.ty) {
            return Err(invalid("Condition parameter type does not match schema type"));
        }
        if name == schema.hash.name {
            match cond {
                SortCond::Cmp(Cmp::Eq, v) if pk.is_none() => pk = Some(v),
                _ => return Err(unsupported()),
            }
        } else {
            if sort.is_some() {
                return Err(unsupported());
            }
            if matches!(cond, SortCond::Cmp(Cmp::Ne, _)) {
                return Err(unsupported());
            }
            if matches!(cond, SortCond::BeginsWith(_)) && attr.ty == "N" {
                return Err(validation(
                    "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                ));
            }
            sort = Some(cond);
        }
    }
    let pk = pk.ok_or_else(|| {
        validation(format!(
            "Query condition missed key schema element: {}",
            schema.hash.name
        ))
    })?;
    Ok(KeyQuery { pk, sort })
}

fn flip(c: Cmp) -> Cmp {
    match c {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        other => other,
    }
}

/// A PartiQL SELECT's page: the items, and the key to continue after.
pub(crate) struct Selected {
    pub items: Vec<ListedItem>,
    pub last_key: Option<Item>,
    pub bytes: usize,
}

impl DynamoDb {
    /// A PartiQL SELECT: a Query when the WHERE clause fixes the partition key by equality
    /// (its sort-key condition bounding the read, the rest filtering), else a Scan filtered by
    /// the whole clause — as DynamoDB runs them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn select_page(
        &self,
        table: &TableRecord,
        index: Option<&String>,
        consistent: bool,
        filter: Option<Cond>,
        projection: Option<Vec<DocPath>>,
        descending: bool,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<Selected, ServiceError> {
        self.admit(table, Kind::Read)?;
        let src = source(table, index, consistent)?;
        let shape = match projection {
            Some(p) => Shape::Projected(p),
            None => Shape::All,
        };
        let mut conjuncts = Vec::new();
        if let Some(f) = filter {
            split_and(f, &mut conjuncts);
        }
        let schema = src.schema().clone();
        let is_key_part = |c: &Cond, name: &str| -> bool {
            let on = |o: &Operand| matches!(o, Operand::Path(p) if p.0.len() == 1 && p.root() == name);
            let val = |o: &Operand| matches!(o, Operand::Value(_));
            match c {
                Cond::Compare(a, cmp, b) => {
                    (on(a) && val(b) || on(b) && val(a)) && (name != schema.hash.name || *cmp == Cmp::Eq)
                }
                Cond::Between(a, l, h) => on(a) && val(l) && val(h),
                Cond::BeginsWith(a, b) => on(a) && val(b),
                _ => false,
            }
        };
        let hash_at = conjuncts.iter().position(|c| is_key_part(c, &schema.hash.name));
        let (key_cond, rest) = match hash_at {
            Some(h) => {
                let hash = conjuncts.remove(h);
                let range_at = schema
                    .range
                    .as_ref()
                    .and_then(|r| conjuncts.iter().position(|c| is_key_part(c, &r.name)));
                let key = match range_at {
                    Some(r) => Cond::And(Box::new(hash), Box::new(conjuncts.remove(r))),
                    None => hash,
                };
                (Some(key), conjuncts)
            }
            None => (None, conjuncts),
        };
        let rest = rest
            .into_iter()
            .reduce(|a, b| Cond::And(Box::new(a), Box::new(b)));
        let esk = start.map(|k| start_key(&src, k)).transpose()?;
        let (mut lo, mut hi, reverse) = match &key_cond {
            Some(kc) => {
                let key = key_query(kc, &schema)?;
                let prefix = schema.partition_prefix(&key.pk);
                let (lo, hi) = key.bounds(&prefix);
                (lo, hi, descending)
            }
            None => (Bound::Unbounded, Bound::Unbounded, false),
        };
        if let Some(esk) = esk {
            if reverse {
                hi = Bound::Excluded(esk);
            } else {
                lo = Bound::Excluded(esk);
            }
        }
        let range = KeyRange {
            start: as_ref(&lo),
            end: as_ref(&hi),
            reverse,
        };
        let page = self.read_page(&src, range, limit, rest.as_ref(), &shape)?;
        Ok(Selected {
            items: page.items,
            last_key: page.last_key,
            bytes: page.bytes,
        })
    }
}

fn split_and(c: Cond, out: &mut Vec<Cond>) {
    match c {
        Cond::And(a, b) => {
            split_and(*a, out);
            split_and(*b, out);
        }
        other => out.push(other),
    }
}
