//! One crawl: list the S3 targets, infer each data file's schema from as little of it as the
//! format needs, group folders into tables and partitions as Glue does, and write the result
//! into the catalog following the crawler's schema-change and recrawl policies.
//!
//! Grouping, as Glue documents it: a folder is one table when its subfolders (and its own
//! files) are compatible data (same format and compression) and either more than 70% of them
//! share a schema with at most five distinct schemas, or `CombineCompatibleSchemas` is on; its
//! subfolders are then partitions. Otherwise each subfolder is looked at on its own, and a
//! `key=value` folder that becomes a table is named `key_value`.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lakebox_core::ServiceError;
use lakebox_protocol::Timestamp;
use lakebox_service::lake::{Lake, ObjectInfo};
use tokio::sync::Semaphore;

use crate::catalog::{Catalog, Scope};
use crate::infer::{self, Custom, Format, Inferred, columnar, storage_for};
use crate::model::{Column, Partition, Table};

/// Files read at once during a crawl.
const READ_CONCURRENCY: usize = 16;
/// Glue's partition threshold: the share of a folder's members that must have one schema.
const SIMILARITY: f64 = 0.7;
/// Glue's limit on distinct schemas ("clusters") among partitions of one table.
const MAX_SCHEMAS: usize = 5;

#[derive(Debug, Clone)]
pub struct S3Target {
    pub path: String,
    pub exclusions: Vec<String>,
    pub sample_size: Option<usize>,
}

/// What a crawl does, taken from the crawler's definition.
#[derive(Debug, Clone)]
pub struct CrawlSpec {
    pub crawler: String,
    pub database: String,
    pub table_prefix: String,
    pub targets: Vec<S3Target>,
    pub update_in_database: bool,
    /// `LOG`, `DELETE_FROM_DATABASE` or `DEPRECATE_IN_DATABASE`.
    pub delete_behavior: String,
    pub new_folders_only: bool,
    pub combine_compatible: bool,
    pub inherit_from_table: bool,
    pub table_level: Option<usize>,
    /// The crawler's custom classifiers, in its order.
    pub customs: Arc<Vec<Custom>>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct CrawlResult {
    pub tables_created: u64,
    pub tables_updated: u64,
    pub tables_deleted: u64,
    pub partitions_created: u64,
    pub files_read: u64,
}

/// A folder of the listing, with what was inferred below it.
#[derive(Default)]
struct Folder {
    files: Vec<ObjectInfo>,
    children: BTreeMap<String, Folder>,
    /// This folder's own files, merged.
    own: Option<Inferred>,
    /// Everything below, merged; `None` when empty or when formats disagree.
    summary: Option<Inferred>,
    mixed: bool,
    objects: u64,
    bytes: u64,
}

fn parse_s3(path: &str) -> Result<(String, String), String> {
    let (bucket, prefix) = lakebox_service::lake::split_s3_url(path)
        .ok_or_else(|| format!("S3 target path {path} is not an s3:// URL"))?;
    let mut prefix = prefix.to_owned();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok((bucket.to_owned(), prefix))
}

/// A Glue exclusion glob as a regex: `*` within a folder, `**` across folders, `?`, `[…]`,
/// `{a,b}`.
pub fn glob_regex(glob: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    let mut in_braces = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                re.push_str(".*");
                i += 1;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']')? + i;
                let class: String = chars[i + 1..end].iter().collect();
                let class = class.strip_prefix('!').map(|c| format!("^{c}")).unwrap_or(class);
                re.push_str(&format!("[{class}]"));
                i = end;
            }
            '{' => {
                in_braces = true;
                re.push_str("(?:");
            }
            '}' if in_braces => {
                in_braces = false;
                re.push(')');
            }
            ',' if in_braces => re.push('|'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// Objects Hadoop tools never treat as data: markers, hidden and temporary files.
fn is_data_file(relative: &str, size: u64) -> bool {
    if size == 0 || relative.ends_with('/') || relative.ends_with("_$folder$") {
        return false;
    }
    !relative
        .split('/')
        .any(|seg| seg.starts_with('_') || seg.starts_with('.'))
}

async fn read(lake: &Lake, bucket: &str, key: &str, range: Range<u64>) -> Result<Vec<u8>, ServiceError> {
    let (_, mut rx) = lake.get(bucket, key, Some(range))?;
    let mut out = Vec::new();
    while let Some(chunk) = rx.recv().await {
        out.extend_from_slice(&chunk.map_err(|e| ServiceError::internal(e.to_string()))?);
    }
    Ok(out)
}

/// Infers one object: metadata for Parquet/ORC/Avro, the first megabyte for text.
async fn infer_object(
    lake: &Lake,
    bucket: &str,
    obj: &ObjectInfo,
    customs: &[Custom],
) -> Result<Option<Inferred>, ServiceError> {
    let size = obj.size;
    let head = read(
        lake,
        bucket,
        &obj.key,
        0..size.min(infer::TEXT_SAMPLE_BYTES as u64),
    )
    .await?;
    if head.starts_with(columnar::PARQUET_MAGIC) && size >= 12 {
        let tail = read(lake, bucket, &obj.key, size - 8..size).await?;
        let Some(len) = columnar::parquet_footer_len(&tail) else {
            return Ok(None);
        };
        let start = size.saturating_sub(8 + len as u64);
        let footer = read(lake, bucket, &obj.key, start..size - 8).await?;
        return Ok(columnar::parquet_schema(&footer)
            .map(|s| infer::from_file_schema("parquet", Format::Parquet, s, size)));
    }
    if head.starts_with(b"ORC") {
        let tail_len = size.min(16 * 1024);
        let mut tail = read(lake, bucket, &obj.key, size - tail_len..size).await?;
        let Some((ps, ps_len)) = columnar::orc_postscript(&tail) else {
            return Ok(None);
        };
        let needed = (ps.footer_len + ps_len) as u64;
        if needed > tail.len() as u64 && needed <= size {
            tail = read(lake, bucket, &obj.key, size - needed..size).await?;
        }
        let end = tail.len() - ps_len;
        let Some(footer) = end.checked_sub(ps.footer_len).map(|s| &tail[s..end]) else {
            return Ok(None);
        };
        return Ok(
            columnar::orc_schema(footer, &ps).map(|s| infer::from_file_schema("orc", Format::Orc, s, size))
        );
    }
    if head.starts_with(b"Obj\x01") {
        return Ok(columnar::avro_schema(&head).map(|s| {
            let literal = s.schema_literal.clone().unwrap_or_default();
            infer::from_file_schema(
                "avro",
                Format::Avro {
                    schema_literal: literal,
                },
                s,
                size,
            )
        }));
    }
    let truncated = (head.len() as u64) < size;
    Ok(
        infer::classify_text(&obj.key, &head, truncated, customs).map(|mut i| {
            // Text samples estimate the file's records from its size.
            if truncated && i.average_record_size > 0 {
                i.records = (size / i.average_record_size).max(i.records);
            }
            i
        }),
    )
}

fn column_names(i: &Inferred) -> BTreeSet<String> {
    i.columns.iter().map(|(n, _)| n.to_lowercase()).collect()
}

/// Whether two schemas are one schema for grouping: one's columns contain the other's (a
/// schema that gained columns), or they share at least 70% of their names.
fn schemas_match(a: &Inferred, b: &Inferred) -> bool {
    let (x, y) = (column_names(a), column_names(b));
    if x.is_subset(&y) || y.is_subset(&x) {
        return true;
    }
    let union = x.union(&y).count();
    x.intersection(&y).count() as f64 / union as f64 >= SIMILARITY
}

/// Glue's rule for the members of one folder (its subfolders, and its own files as one more
/// member): they are partitions of one table when they are compatible data (same format and
/// compression) and either CombineCompatibleSchemas is on, or more than 70% of them share one
/// schema and there are at most five distinct schemas. Returns their merged inference then.
fn group(members: &[&Inferred], combine: bool) -> Option<Inferred> {
    let first = *members.first()?;
    if !members.iter().all(|m| m.same_format(first)) {
        return None;
    }
    if !combine && members.len() > 1 {
        // Greedy clustering against each cluster's merged schema.
        let mut clusters: Vec<(Inferred, usize)> = Vec::new();
        for m in members {
            match clusters.iter_mut().find(|(rep, _)| schemas_match(rep, m)) {
                Some((rep, n)) => {
                    *rep = rep.clone().merge((*m).clone());
                    *n += 1;
                }
                None => clusters.push(((*m).clone(), 1)),
            }
        }
        let largest = clusters.iter().map(|(_, n)| *n).max().unwrap_or(0);
        if clusters.len() > MAX_SCHEMAS || largest as f64 / members.len() as f64 <= SIMILARITY {
            return None;
        }
    }
    Some(
        members[1..]
            .iter()
            .fold(first.clone(), |acc, m| acc.merge((*m).clone())),
    )
}

fn hive_key(name: &str) -> Option<(&str, &str)> {
    name.split_once('=').filter(|(k, _)| !k.is_empty())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Fills `own`, `summary`, counts, bottom-up.
fn summarize(f: &mut Folder, combine: bool) {
    for child in f.children.values_mut() {
        summarize(child, combine);
    }
    f.objects = f.files.len() as u64 + f.children.values().map(|c| c.objects).sum::<u64>();
    f.bytes = f.files.iter().map(|o| o.size).sum::<u64>() + f.children.values().map(|c| c.bytes).sum::<u64>();
    let mut members: Vec<&Inferred> = f.own.iter().collect();
    let mut mixed = false;
    for c in f.children.values() {
        mixed |= c.mixed;
        members.extend(c.summary.iter());
    }
    f.summary = if mixed { None } else { group(&members, combine) };
    f.mixed = mixed || (!members.is_empty() && f.summary.is_none());
}

/// A table found by the crawl: where it is, its folder, and the name it will get.
struct Root<'a> {
    location: String,
    name: String,
    folder: &'a Folder,
}

fn find_roots<'a>(
    f: &'a Folder,
    location: &str,
    name: &str,
    level: usize,
    spec: &CrawlSpec,
    out: &mut Vec<Root<'a>>,
) {
    if f.objects == 0 {
        return;
    }
    let at_level = spec.table_level.map(|l| level >= l);
    let is_root = match at_level {
        Some(true) => f.summary.is_some() || !f.files.is_empty(),
        Some(false) => false,
        None => f.summary.is_some(),
    };
    if is_root {
        out.push(Root {
            location: location.to_owned(),
            name: name.to_owned(),
            folder: f,
        });
        return;
    }
    for (child, folder) in &f.children {
        find_roots(
            folder,
            &format!("{location}{child}/"),
            child,
            level + 1,
            spec,
            out,
        );
    }
}

/// Folders holding files below a table root, with their path segments.
fn data_folders<'a>(f: &'a Folder, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Folder)>) {
    if !f.files.is_empty() {
        out.push((path.clone(), f));
    }
    for (name, child) in &f.children {
        path.push(name.clone());
        data_folders(child, path, out);
        path.pop();
    }
}

/// Glue names a table after its folder, lowercase, with characters other than letters,
/// digits, `_` and `-` replaced by `_` (`year=2017` becomes `year_2017`).
fn table_name(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn stats_params(params: &mut BTreeMap<String, String>, i: &Inferred, objects: u64, bytes: u64) {
    params.insert("averageRecordSize".into(), i.average_record_size.to_string());
    params.insert("objectCount".into(), objects.to_string());
    params.insert("recordCount".into(), i.records.to_string());
    params.insert("sizeKey".into(), bytes.to_string());
}

/// The table and partitions a crawl wants the catalog to hold for one root.
struct Planned {
    table: Table,
    partitions: Vec<Partition>,
}

fn plan(root: &Root, spec: &CrawlSpec, scope: &Scope, name: &str, now: Timestamp) -> Option<Planned> {
    let inferred = root.folder.summary.clone()?;
    let mut folders = Vec::new();
    data_folders(root.folder, &mut Vec::new(), &mut folders);
    let depth = folders.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    // Partition key names: Hive-style `key=` when a level agrees on it, else partition_N.
    let keys: Vec<String> = (0..depth)
        .map(|level| {
            let names: BTreeSet<&str> = folders
                .iter()
                .filter_map(|(p, _)| p.get(level))
                .map(|seg| hive_key(seg).map(|(k, _)| k).unwrap_or(""))
                .collect();
            match names.iter().next() {
                Some(k) if names.len() == 1 && !k.is_empty() => k.to_lowercase(),
                _ => format!("partition_{level}"),
            }
        })
        .collect();
    let (mut sd, mut params) = storage_for(&inferred);
    // Data columns that repeat a partition key are dropped (the key wins), as Glue does.
    if let Some(cols) = sd.columns.as_mut() {
        cols.retain(|c| !keys.contains(&c.name.to_lowercase()));
    }
    params.insert("CrawlerSchemaDeserializerVersion".into(), "1.0".into());
    params.insert("CrawlerSchemaSerializerVersion".into(), "1.0".into());
    params.insert("UPDATED_BY_CRAWLER".into(), spec.crawler.clone());
    stats_params(&mut params, &inferred, root.folder.objects, root.folder.bytes);
    sd.location = Some(root.location.clone());
    sd.parameters = Some(params.clone());
    let table = Table {
        name: name.to_owned(),
        database_name: Some(spec.database.clone()),
        description: None,
        owner: Some("owner".into()),
        create_time: Some(now),
        update_time: Some(now),
        last_access_time: Some(now),
        last_analyzed_time: None,
        retention: Some(0),
        storage_descriptor: Some(sd.clone()),
        partition_keys: Some(keys.iter().map(|k| Column::new(k.clone(), "string")).collect()),
        view_original_text: None,
        view_expanded_text: None,
        table_type: Some("EXTERNAL_TABLE".into()),
        parameters: Some(params),
        created_by: Some(
            lakebox_core::Arn::new(
                "sts",
                "",
                &scope.account,
                "assumed-role/AWSGlueServiceRole/AWS-Crawler",
            )
            .to_string(),
        ),
        is_registered_with_lake_formation: Some(false),
        catalog_id: Some(scope.account.clone()),
        version_id: Some("0".into()),
        ..Default::default()
    };
    let mut partitions = Vec::new();
    if depth > 0 {
        for (path, folder) in folders.iter().filter(|(p, _)| p.len() == depth) {
            let values: Vec<String> = path
                .iter()
                .map(|seg| {
                    hive_key(seg)
                        .map(|(_, v)| percent_decode(v))
                        .unwrap_or_else(|| seg.clone())
                })
                .collect();
            let own = match (&folder.own, spec.inherit_from_table) {
                (Some(o), false) => o.clone(),
                _ => inferred.clone(),
            };
            let (mut psd, mut pparams) = storage_for(&own);
            if let Some(cols) = psd.columns.as_mut() {
                cols.retain(|c| !keys.contains(&c.name.to_lowercase()));
            }
            if spec.inherit_from_table {
                psd.columns = sd.columns.clone();
            }
            let bytes: u64 = folder.files.iter().map(|f| f.size).sum();
            stats_params(&mut pparams, &own, folder.files.len() as u64, bytes);
            psd.location = Some(format!("{}{}/", root.location, path.join("/")));
            psd.parameters = Some(pparams.clone());
            partitions.push(Partition {
                values: Some(values),
                database_name: Some(spec.database.clone()),
                table_name: Some(name.to_owned()),
                creation_time: Some(now),
                last_access_time: None,
                storage_descriptor: Some(psd),
                parameters: Some(pparams),
                last_analyzed_time: None,
                catalog_id: Some(scope.account.clone()),
            });
        }
    }
    Some(Planned { table, partitions })
}

/// Columns of `old` first (updated types), then new ones: a recrawl adds columns.
fn merged_columns(old: &[Column], new: &[Column]) -> Vec<Column> {
    let mut out: Vec<Column> = old
        .iter()
        .map(|c| {
            new.iter()
                .find(|n| n.name.eq_ignore_ascii_case(&c.name))
                .cloned()
                .unwrap_or_else(|| c.clone())
        })
        .collect();
    for n in new {
        if !out.iter().any(|c| c.name.eq_ignore_ascii_case(&n.name)) {
            out.push(n.clone());
        }
    }
    out
}

pub async fn crawl(
    lake: &Lake,
    catalog: &Arc<Catalog>,
    scope: &Scope,
    spec: &CrawlSpec,
    cancel: &AtomicBool,
    now: Timestamp,
    write_not_before: std::time::Instant,
) -> Result<CrawlResult, String> {
    catalog
        .get_database(scope, &spec.database)
        .map_err(|e| format!("Database {} does not exist: {}", spec.database, e.message))?;
    let existing: Vec<Table> = catalog
        .list_tables(scope, &spec.database)
        .map_err(|e| e.message)?;
    // Locations already in the catalog (for CRAWL_NEW_FOLDERS_ONLY).
    let mut known = BTreeSet::new();
    if spec.new_folders_only {
        for t in &existing {
            if let Some(l) = t.location() {
                let (_, parts) = catalog
                    .list_partitions(scope, &spec.database, &t.name, None)
                    .map_err(|e| e.message)?;
                known.extend(parts.iter().filter_map(|p| p.location().map(str::to_owned)));
                if t.partition_keys().is_empty() {
                    known.insert(l.to_owned());
                }
            }
        }
    }
    let mut result = CrawlResult::default();
    let mut roots_seen: HashMap<String, String> = HashMap::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut target_locations = Vec::new();
    for target in &spec.targets {
        let (bucket, prefix) = parse_s3(&target.path)?;
        target_locations.push(format!("s3://{bucket}/{prefix}"));
        let exclusions: Vec<regex::Regex> = target.exclusions.iter().filter_map(|g| glob_regex(g)).collect();
        let mut root = Folder::default();
        let mut after: Option<String> = None;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let batch = lake
                .list(&bucket, &prefix, after.as_deref(), 1000)
                .map_err(|e| e.message)?;
            let Some(last) = batch.last() else { break };
            after = Some(last.key.clone());
            for obj in batch {
                let rel = &obj.key[prefix.len()..];
                if !is_data_file(rel, obj.size) || exclusions.iter().any(|r| r.is_match(rel)) {
                    continue;
                }
                let mut segs: Vec<&str> = rel.split('/').collect();
                segs.pop();
                let mut f = &mut root;
                for s in segs {
                    f = f.children.entry(s.to_owned()).or_default();
                }
                f.files.push(obj);
            }
        }
        // Infer every data folder's files (up to SampleSize per folder), a few at a time.
        let sem = Arc::new(Semaphore::new(READ_CONCURRENCY));
        let mut jobs = tokio::task::JoinSet::new();
        let mut stack: Vec<(Vec<String>, &Folder)> = vec![(Vec::new(), &root)];
        while let Some((path, f)) = stack.pop() {
            let location = format!(
                "s3://{bucket}/{prefix}{}",
                path.iter().map(|p| format!("{p}/")).collect::<String>()
            );
            let skip = spec.new_folders_only && known.contains(&location);
            if !skip {
                let take = target.sample_size.unwrap_or(usize::MAX);
                for obj in f.files.iter().take(take) {
                    let (lake, bucket, obj, customs, sem, path) = (
                        lake.clone(),
                        bucket.clone(),
                        obj.clone(),
                        spec.customs.clone(),
                        sem.clone(),
                        path.clone(),
                    );
                    jobs.spawn(async move {
                        let _permit = sem.acquire_owned().await;
                        (path, infer_object(&lake, &bucket, &obj, &customs).await)
                    });
                }
            }
            for (name, child) in &f.children {
                let mut p = path.clone();
                p.push(name.clone());
                stack.push((p, child));
            }
        }
        let mut by_folder: BTreeMap<Vec<String>, Vec<Inferred>> = BTreeMap::new();
        while let Some(done) = jobs.join_next().await {
            if cancel.load(Ordering::Relaxed) {
                jobs.abort_all();
                return Err("cancelled".into());
            }
            let (path, inferred) = done.map_err(|e| e.to_string())?;
            result.files_read += 1;
            if let Some(i) = inferred.map_err(|e| e.message)? {
                by_folder.entry(path).or_default().push(i);
            }
        }
        for (path, mut list) in by_folder {
            let mut f = &mut root;
            for s in &path {
                f = f.children.get_mut(s).expect("folder from the listing");
            }
            let first = list.remove(0);
            let same: Vec<Inferred> = list.into_iter().filter(|i| i.same_format(&first)).collect();
            f.own = Some(same.into_iter().fold(first, Inferred::merge));
        }
        summarize(&mut root, spec.combine_compatible);
        let root_name = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(&bucket)
            .to_owned();
        let mut roots = Vec::new();
        find_roots(
            &root,
            &format!("s3://{bucket}/{prefix}"),
            &root_name,
            prefix.matches('/').count() + 1,
            spec,
            &mut roots,
        );
        for r in &roots {
            let mut name = table_name(&spec.table_prefix, &r.name);
            // Two folders of one name in different places: Glue adds a hash to the second.
            if roots_seen.get(&name).is_some_and(|loc| loc != &r.location) {
                let h = r.location.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                name = format!("{name}_{:08x}", h as u32);
            }
            roots_seen.insert(name.clone(), r.location.clone());
            if let Some(p) = plan(r, spec, scope, &name, now) {
                planned.push(p);
            }
        }
    }
    // A crawl may be held RUNNING until `write_not_before` (tests watch it run); stopping
    // it before the catalog is written leaves the catalog untouched.
    while std::time::Instant::now() < write_not_before && !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if cancel.load(Ordering::Relaxed) {
        return Err("cancelled".into());
    }
    let produced: BTreeSet<String> = planned.iter().map(|p| p.table.name.clone()).collect();
    let (s, db) = (scope.clone(), spec.database.clone());
    let spec2 = spec.clone();
    let outcome = catalog
        .transact(move |w| {
            let mut r = CrawlResult::default();
            for p in planned {
                let current = w.table(&s, &db, &p.table.name)?;
                let table = match current {
                    None => {
                        r.tables_created += 1;
                        Some(p.table.clone())
                    }
                    Some(_) if spec2.new_folders_only || !spec2.update_in_database => None,
                    Some(old) => {
                        let mut t = p.table.clone();
                        if let (Some(sd), Some(old_sd)) =
                            (t.storage_descriptor.as_mut(), old.storage_descriptor.as_ref())
                        {
                            sd.columns = Some(merged_columns(old_sd.columns(), sd.columns()));
                        }
                        t.partition_keys = if old.partition_keys().len() == t.partition_keys().len() {
                            old.partition_keys.clone()
                        } else {
                            t.partition_keys
                        };
                        let changed = t.storage_descriptor != old.storage_descriptor
                            || t.partition_keys != old.partition_keys
                            || t.parameters != old.parameters;
                        if changed {
                            r.tables_updated += 1;
                            Some(t)
                        } else {
                            None
                        }
                    }
                };
                if let Some(t) = table {
                    w.put_table(&s, t)?;
                }
                let existing: Vec<Partition> = w.partitions(&s, &db, &p.table.name)?;
                let planned_values: BTreeSet<Vec<String>> =
                    p.partitions.iter().map(|x| x.values().to_vec()).collect();
                for part in &p.partitions {
                    match w.partition(&s, &db, &p.table.name, part.values())? {
                        None => {
                            w.put_partition(&s, part)?;
                            r.partitions_created += 1;
                        }
                        Some(old) if spec2.update_in_database && !spec2.new_folders_only => {
                            let updated = Partition {
                                creation_time: old.creation_time,
                                ..part.clone()
                            };
                            if updated != old {
                                w.put_partition(&s, &updated)?;
                            }
                        }
                        Some(_) => {}
                    }
                }
                if spec2.delete_behavior == "DELETE_FROM_DATABASE" && !spec2.new_folders_only {
                    for old in existing.iter().filter(|o| !planned_values.contains(o.values())) {
                        w.delete_partition(&s, old)?;
                    }
                }
            }
            Ok(r)
        })
        .await
        .map_err(|e| e.message)?;
    result.tables_created = outcome.tables_created;
    result.tables_updated = outcome.tables_updated;
    result.partitions_created = outcome.partitions_created;
    // Tables this crawler made whose data is gone.
    if spec.delete_behavior != "LOG" && !spec.new_folders_only {
        for t in existing {
            let mine = t.parameter("UPDATED_BY_CRAWLER") == Some(spec.crawler.as_str());
            let under_targets = t
                .location()
                .is_some_and(|l| target_locations.iter().any(|p| l.starts_with(p.as_str())));
            if !mine || !under_targets || produced.contains(&t.name) {
                continue;
            }
            if spec.delete_behavior == "DELETE_FROM_DATABASE" {
                catalog
                    .delete_table(scope, &spec.database, &t.name)
                    .await
                    .map_err(|e| e.message)?;
                result.tables_deleted += 1;
            } else if t.parameter("DEPRECATED_BY_CRAWLER").is_none() {
                let (s, db, name) = (scope.clone(), spec.database.clone(), t.name.clone());
                let stamp = now.to_iso8601();
                catalog
                    .transact(move |w| {
                        if let Some(mut t) = w.table(&s, &db, &name)? {
                            t.parameters
                                .get_or_insert_default()
                                .insert("DEPRECATED_BY_CRAWLER".into(), stamp);
                            w.put_table(&s, t)?;
                        }
                        Ok(())
                    })
                    .await
                    .map_err(|e| e.message)?;
                result.tables_updated += 1;
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_globs() {
        let m = |g: &str, p: &str| glob_regex(g).unwrap().is_match(p);
        assert!(m("*.csv", "a.csv"));
        assert!(!m("*.csv", "dir/a.csv"));
        assert!(m("**.csv", "dir/a.csv"));
        assert!(m("dir/**", "dir/x/y.json"));
        assert!(m("{a,b}/*", "b/file"));
        assert!(m("file?.txt", "file1.txt"));
        assert!(m("[!x]*", "abc"));
        assert!(!m("[!x]*", "xbc"));
    }

    fn inferred(cols: &[&str]) -> Inferred {
        Inferred {
            classification: "json".into(),
            format: Format::Json { json_path: None },
            columns: cols
                .iter()
                .map(|c| (c.to_string(), crate::infer::types::HiveType::Int))
                .collect(),
            compression: "none",
            records: 1,
            average_record_size: 10,
        }
    }

    #[test]
    fn grouping_needs_a_70_percent_majority_and_at_most_five_schemas() {
        let (ab, abc, cd) = (
            inferred(&["a", "b"]),
            inferred(&["a", "b", "c"]),
            inferred(&["c", "d"]),
        );
        // A schema that adds columns is the same schema.
        assert!(group(&[&ab, &abc, &ab], false).is_some());
        // Half and half: separate tables, unless schemas are combined.
        assert!(group(&[&ab, &cd], false).is_none());
        assert_eq!(group(&[&ab, &cd], true).unwrap().columns.len(), 4);
        // Three of four share a schema (75%): one table with every column.
        assert_eq!(group(&[&ab, &ab, &ab, &cd], false).unwrap().columns.len(), 4);
        let mut gz = ab.clone();
        gz.compression = "gzip";
        assert!(group(&[&ab, &gz], true).is_none());
        let six: Vec<Inferred> = (0..6).map(|i| inferred(&[&format!("c{i}")])).collect();
        let mut many: Vec<&Inferred> = vec![&ab; 30];
        many.extend(six.iter());
        assert!(group(&many, false).is_none(), "six distinct schemas");
    }

    #[test]
    fn table_names() {
        assert_eq!(table_name("", "year=2017"), "year_2017");
        assert_eq!(table_name("raw_", "My-Data.v2"), "raw_my-data_v2");
    }

    #[test]
    fn s3_paths() {
        assert_eq!(parse_s3("s3://b/data").unwrap(), ("b".into(), "data/".into()));
        assert_eq!(parse_s3("s3://b").unwrap(), ("b".into(), "".into()));
        assert!(parse_s3("/local").is_err());
    }
}
