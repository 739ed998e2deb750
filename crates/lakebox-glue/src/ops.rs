//! Glue's operations: each takes the model's validated request and answers the model's
//! response. The Data Catalog ones are answered through [`Catalog`]; classifiers and crawlers
//! through their own modules.

use lakebox_core::{RequestContext, ServiceError};

use crate::Glue;
use crate::api::*;
use crate::catalog::{PartitionFailure, Scope, normalize};
use crate::errors::{self, page};
use crate::expr::PartitionFilter;

/// Glue's default page for catalog getters, and its largest for partitions.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// A request may name another account's catalog; Lakebox serves the caller's only.
fn scope(ctx: &RequestContext, catalog_id: &Option<String>) -> Result<Scope, ServiceError> {
    if let Some(id) = catalog_id
        && id != &ctx.account_id
    {
        return Err(errors::not_found(format!("Catalog {id} not found.")));
    }
    Ok(Scope::from(ctx))
}

/// The page size asked for (the model bounds it), or the operation's default.
fn page_size(max: Option<i32>, default: usize) -> usize {
    max.map_or(default, |n| n.max(1) as usize)
}

fn partition_errors(failures: Vec<PartitionFailure>) -> Vec<PartitionError> {
    failures
        .into_iter()
        .map(|(values, e)| PartitionError {
            partition_values: Some(values),
            error_detail: Some(ErrorDetail::from(&e)),
        })
        .collect()
}

/// The first failure of a one-item batch, as the operation's error.
fn single(failures: Vec<PartitionFailure>) -> Result<(), ServiceError> {
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Refuses column types nested too deeply to be queried safely (see
/// [`crate::infer::types::MAX_TYPE_NESTING`]).
fn check_column_types(input: &TableInput) -> Result<(), ServiceError> {
    let columns = input
        .storage_descriptor
        .iter()
        .flat_map(|sd| sd.columns.iter().flatten())
        .chain(input.partition_keys.iter().flatten());
    for c in columns {
        if let Some(t) = &c.r#type {
            crate::infer::types::check_nesting(t).map_err(errors::invalid_input)?;
        }
    }
    Ok(())
}

fn required_table_input(input: Option<TableInput>) -> Result<TableInput, ServiceError> {
    let input = input.ok_or_else(|| errors::invalid_input("TableInput is required."))?;
    check_column_types(&input)?;
    Ok(input)
}

fn table_property(t: &Table, key: &str) -> Option<String> {
    match key {
        "DatabaseName" | "databaseName" => Some(t.database().to_owned()),
        "Name" | "TableName" | "name" => Some(t.name.clone()),
        "Description" => t.description.clone(),
        "Owner" => t.owner.clone(),
        "TableType" => t.table_type.clone(),
        "Location" => t.location().map(str::to_owned),
        other => t.parameter(other).map(str::to_owned),
    }
}

/// Whether the table's text (names, description, columns, parameters) mentions `needle`.
fn mentions(t: &Table, needle: &str) -> bool {
    let n = needle.to_lowercase();
    let has = |s: &str| s.to_lowercase().contains(&n);
    has(&t.name)
        || has(t.database())
        || t.description.as_deref().is_some_and(has)
        || t.columns()
            .iter()
            .chain(t.partition_keys())
            .any(|c| has(&c.name) || c.comment.as_deref().is_some_and(has))
        || t.parameters.iter().flatten().any(|(k, v)| has(k) || has(v))
}

fn millis(t: Option<lakebox_protocol::Timestamp>) -> i64 {
    t.map_or(0, |t| t.as_millis().max(0))
}

impl GlueApi for Glue {
    // ---- databases ----

    async fn create_database(
        &self,
        ctx: &RequestContext,
        r: CreateDatabaseRequest,
    ) -> Result<CreateDatabaseResponse, ServiceError> {
        self.catalog
            .create_database(&scope(ctx, &r.catalog_id)?, r.database_input)
            .await?;
        Ok(CreateDatabaseResponse {})
    }

    async fn get_database(
        &self,
        ctx: &RequestContext,
        r: GetDatabaseRequest,
    ) -> Result<GetDatabaseResponse, ServiceError> {
        let db = self.catalog.get_database(&scope(ctx, &r.catalog_id)?, &r.name)?;
        Ok(GetDatabaseResponse { database: Some(db) })
    }

    async fn get_databases(
        &self,
        ctx: &RequestContext,
        r: GetDatabasesRequest,
    ) -> Result<GetDatabasesResponse, ServiceError> {
        let all = self.catalog.list_databases(&scope(ctx, &r.catalog_id)?)?;
        let (list, next) = page(
            all,
            |d| d.name.clone(),
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetDatabasesResponse {
            database_list: list,
            next_token: next,
        })
    }

    async fn update_database(
        &self,
        ctx: &RequestContext,
        r: UpdateDatabaseRequest,
    ) -> Result<UpdateDatabaseResponse, ServiceError> {
        self.catalog
            .update_database(&scope(ctx, &r.catalog_id)?, &r.name, r.database_input)
            .await?;
        Ok(UpdateDatabaseResponse {})
    }

    async fn delete_database(
        &self,
        ctx: &RequestContext,
        r: DeleteDatabaseRequest,
    ) -> Result<DeleteDatabaseResponse, ServiceError> {
        self.catalog
            .delete_database(&scope(ctx, &r.catalog_id)?, &r.name)
            .await?;
        Ok(DeleteDatabaseResponse {})
    }

    // ---- tables ----

    async fn create_table(
        &self,
        ctx: &RequestContext,
        r: CreateTableRequest,
    ) -> Result<CreateTableResponse, ServiceError> {
        if r.open_table_format_input.is_some() {
            return Err(errors::invalid_input(
                "OpenTableFormatInput (Iceberg tables) is not supported by Lakebox yet.",
            ));
        }
        let input = required_table_input(r.table_input)?;
        self.catalog
            .create_table(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                input,
                r.partition_indexes.unwrap_or_default(),
            )
            .await?;
        Ok(CreateTableResponse {})
    }

    async fn get_table(
        &self,
        ctx: &RequestContext,
        r: GetTableRequest,
    ) -> Result<GetTableResponse, ServiceError> {
        let t = self
            .catalog
            .get_table(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.name)?;
        Ok(GetTableResponse { table: Some(t) })
    }

    async fn get_tables(
        &self,
        ctx: &RequestContext,
        r: GetTablesRequest,
    ) -> Result<GetTablesResponse, ServiceError> {
        let mut all = self
            .catalog
            .list_tables(&scope(ctx, &r.catalog_id)?, &r.database_name)?;
        if let Some(e) = r.expression.as_deref().filter(|e| !e.is_empty()) {
            // A regular expression matched against the whole (lowercase) name.
            let re = regex::RegexBuilder::new(&format!("^(?:{e})$"))
                .case_insensitive(true)
                .build()
                .map_err(|err| errors::invalid_input(format!("Invalid expression '{e}': {err}")))?;
            all.retain(|t| re.is_match(&t.name));
        }
        let (list, next) = page(
            all,
            |t| t.name.clone(),
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetTablesResponse {
            table_list: Some(list),
            next_token: next,
        })
    }

    async fn update_table(
        &self,
        ctx: &RequestContext,
        r: UpdateTableRequest,
    ) -> Result<UpdateTableResponse, ServiceError> {
        let input = required_table_input(r.table_input)?;
        self.catalog
            .update_table(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                input,
                r.skip_archive.unwrap_or(false),
                r.version_id,
            )
            .await?;
        Ok(UpdateTableResponse {})
    }

    async fn delete_table(
        &self,
        ctx: &RequestContext,
        r: DeleteTableRequest,
    ) -> Result<DeleteTableResponse, ServiceError> {
        self.catalog
            .delete_table(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.name)
            .await?;
        Ok(DeleteTableResponse {})
    }

    async fn batch_delete_table(
        &self,
        ctx: &RequestContext,
        r: BatchDeleteTableRequest,
    ) -> Result<BatchDeleteTableResponse, ServiceError> {
        let s = scope(ctx, &r.catalog_id)?;
        self.catalog.get_database(&s, &r.database_name)?;
        let mut errors = Vec::new();
        for name in r.tables_to_delete {
            if let Err(e) = self.catalog.delete_table(&s, &r.database_name, &name).await {
                errors.push(TableError {
                    table_name: Some(name),
                    error_detail: Some(ErrorDetail::from(&e)),
                });
            }
        }
        Ok(BatchDeleteTableResponse { errors: Some(errors) })
    }

    async fn get_table_versions(
        &self,
        ctx: &RequestContext,
        r: GetTableVersionsRequest,
    ) -> Result<GetTableVersionsResponse, ServiceError> {
        let all =
            self.catalog
                .table_versions(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
        // Newest first; the token orders by descending version number.
        let key = |v: &TableVersion| {
            let n = v.version_id.as_deref().unwrap_or("0").parse::<u64>().unwrap_or(0);
            format!("{:020}", u64::MAX - n)
        };
        let (list, next) = page(
            all,
            key,
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetTableVersionsResponse {
            table_versions: Some(list),
            next_token: next,
        })
    }

    async fn get_table_version(
        &self,
        ctx: &RequestContext,
        r: GetTableVersionRequest,
    ) -> Result<GetTableVersionResponse, ServiceError> {
        let all =
            self.catalog
                .table_versions(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
        let found = match &r.version_id {
            None => all.into_iter().next(),
            Some(v) => all.into_iter().find(|t| t.version_id.as_ref() == Some(v)),
        };
        match found {
            Some(v) => Ok(GetTableVersionResponse {
                table_version: Some(v),
            }),
            None => Err(errors::not_found(format!(
                "Version {} of table {} not found.",
                r.version_id.unwrap_or_default(),
                normalize(&r.table_name)
            ))),
        }
    }

    async fn delete_table_version(
        &self,
        ctx: &RequestContext,
        r: DeleteTableVersionRequest,
    ) -> Result<DeleteTableVersionResponse, ServiceError> {
        let failures = self
            .catalog
            .delete_table_versions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                vec![r.version_id],
            )
            .await?;
        match failures.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(DeleteTableVersionResponse {}),
        }
    }

    async fn batch_delete_table_version(
        &self,
        ctx: &RequestContext,
        r: BatchDeleteTableVersionRequest,
    ) -> Result<BatchDeleteTableVersionResponse, ServiceError> {
        let failures = self
            .catalog
            .delete_table_versions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                r.version_ids,
            )
            .await?;
        let table = normalize(&r.table_name);
        let errors = failures
            .into_iter()
            .map(|(v, e)| TableVersionError {
                table_name: Some(table.clone()),
                version_id: Some(v),
                error_detail: Some(ErrorDetail::from(&e)),
            })
            .collect();
        Ok(BatchDeleteTableVersionResponse { errors: Some(errors) })
    }

    async fn search_tables(
        &self,
        ctx: &RequestContext,
        r: SearchTablesRequest,
    ) -> Result<SearchTablesResponse, ServiceError> {
        let mut all = self.catalog.all_tables(&scope(ctx, &r.catalog_id)?)?;
        if let Some(text) = r.search_text.as_deref().filter(|s| !s.is_empty()) {
            all.retain(|t| mentions(t, text));
        }
        for f in r.filters.iter().flatten() {
            let key = f.key.clone().unwrap_or_default();
            let want = f.value.clone().unwrap_or_default();
            let cmp = f.comparator.clone().unwrap_or(Comparator::Equals);
            all.retain(|t| {
                let Some(have) = table_property(t, &key) else {
                    return false;
                };
                match cmp {
                    Comparator::Equals => have == want,
                    Comparator::GreaterThan => have > want,
                    Comparator::LessThan => have < want,
                    Comparator::GreaterThanEquals => have >= want,
                    Comparator::LessThanEquals => have <= want,
                    Comparator::Unknown(_) => false,
                }
            });
        }
        // Sorted by the first criterion, then by database and name so pages are stable.
        let criterion = r.sort_criteria.as_ref().and_then(|c| c.first());
        let field = criterion.and_then(|c| c.field_name.clone()).unwrap_or_default();
        let desc = criterion.and_then(|c| c.sort.as_ref()) == Some(&Sort::Desc);
        let sort_key = |t: &Table| -> String {
            let primary = match field.as_str() {
                "UpdateTime" => format!("{:020}", millis(t.update_time)),
                "CreateTime" => format!("{:020}", millis(t.create_time)),
                "Name" => t.name.clone(),
                _ => String::new(),
            };
            format!("{primary}\u{1}{}\u{1}{}", t.database(), t.name)
        };
        all.sort_by_key(&sort_key);
        if desc {
            all.reverse();
        }
        let keyed: Vec<(String, Table)> = all
            .into_iter()
            .enumerate()
            .map(|(i, t)| (format!("{i:010}"), t))
            .collect();
        let (list, next) = page(
            keyed,
            |(k, _)| k.clone(),
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(SearchTablesResponse {
            table_list: Some(list.into_iter().map(|(_, t)| t).collect()),
            next_token: next,
        })
    }

    // ---- partitions ----

    async fn create_partition(
        &self,
        ctx: &RequestContext,
        r: CreatePartitionRequest,
    ) -> Result<CreatePartitionResponse, ServiceError> {
        let failures = self
            .catalog
            .create_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                vec![r.partition_input],
            )
            .await?;
        single(failures)?;
        Ok(CreatePartitionResponse {})
    }

    async fn batch_create_partition(
        &self,
        ctx: &RequestContext,
        r: BatchCreatePartitionRequest,
    ) -> Result<BatchCreatePartitionResponse, ServiceError> {
        let failures = self
            .catalog
            .create_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                r.partition_input_list,
            )
            .await?;
        Ok(BatchCreatePartitionResponse {
            errors: Some(partition_errors(failures)),
        })
    }

    async fn get_partition(
        &self,
        ctx: &RequestContext,
        r: GetPartitionRequest,
    ) -> Result<GetPartitionResponse, ServiceError> {
        let p = self.catalog.get_partition(
            &scope(ctx, &r.catalog_id)?,
            &r.database_name,
            &r.table_name,
            &r.partition_values,
        )?;
        Ok(GetPartitionResponse { partition: Some(p) })
    }

    async fn batch_get_partition(
        &self,
        ctx: &RequestContext,
        r: BatchGetPartitionRequest,
    ) -> Result<BatchGetPartitionResponse, ServiceError> {
        let s = scope(ctx, &r.catalog_id)?;
        self.catalog.get_table(&s, &r.database_name, &r.table_name)?;
        let mut found = Vec::new();
        for w in r.partitions_to_get {
            match self
                .catalog
                .get_partition(&s, &r.database_name, &r.table_name, &w.values)
            {
                Ok(p) => found.push(p),
                Err(e) if crate::GlueError::of(&e) == crate::GlueError::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(BatchGetPartitionResponse {
            partitions: Some(found),
            unprocessed_keys: Some(Vec::new()),
        })
    }

    async fn get_partitions(
        &self,
        ctx: &RequestContext,
        r: GetPartitionsRequest,
    ) -> Result<GetPartitionsResponse, ServiceError> {
        let s = scope(ctx, &r.catalog_id)?;
        let table = self.catalog.get_table(&s, &r.database_name, &r.table_name)?;
        let filter = match r.expression.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => Some(PartitionFilter::parse(e, table.partition_keys())?),
            None => None,
        };
        let (_, mut all) =
            self.catalog
                .list_partitions(&s, &r.database_name, &r.table_name, filter.as_ref())?;
        if let Some(seg) = &r.segment {
            if seg.segment_number >= seg.total_segments {
                return Err(errors::invalid_input(format!(
                    "SegmentNumber {} must be less than TotalSegments {}.",
                    seg.segment_number, seg.total_segments
                )));
            }
            // Contiguous slices of the ordered partitions: disjoint, and together all of them.
            let n = all.len();
            let (k, total) = (seg.segment_number as usize, seg.total_segments as usize);
            let (start, end) = (n * k / total, n * (k + 1) / total);
            all = all.drain(start..end).collect();
        }
        if r.exclude_column_schema == Some(true) {
            for p in &mut all {
                if let Some(sd) = p.storage_descriptor.as_mut() {
                    sd.columns = None;
                }
            }
        }
        let key = |p: &Partition| p.values().join("\u{1}");
        let (list, next) = page(
            all,
            key,
            r.next_token.as_deref(),
            page_size(r.max_results, MAX_PAGE),
        )?;
        Ok(GetPartitionsResponse {
            partitions: Some(list),
            next_token: next,
        })
    }

    async fn update_partition(
        &self,
        ctx: &RequestContext,
        r: UpdatePartitionRequest,
    ) -> Result<UpdatePartitionResponse, ServiceError> {
        let failures = self
            .catalog
            .update_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                vec![(r.partition_value_list, r.partition_input)],
            )
            .await?;
        single(failures)?;
        Ok(UpdatePartitionResponse {})
    }

    async fn batch_update_partition(
        &self,
        ctx: &RequestContext,
        r: BatchUpdatePartitionRequest,
    ) -> Result<BatchUpdatePartitionResponse, ServiceError> {
        let updates = r
            .entries
            .into_iter()
            .map(|e| (e.partition_value_list, e.partition_input))
            .collect();
        let failures = self
            .catalog
            .update_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                updates,
            )
            .await?;
        let errors = failures
            .into_iter()
            .map(|(values, e)| BatchUpdatePartitionFailureEntry {
                partition_value_list: Some(values),
                error_detail: Some(ErrorDetail::from(&e)),
            })
            .collect();
        Ok(BatchUpdatePartitionResponse { errors: Some(errors) })
    }

    async fn delete_partition(
        &self,
        ctx: &RequestContext,
        r: DeletePartitionRequest,
    ) -> Result<DeletePartitionResponse, ServiceError> {
        let failures = self
            .catalog
            .delete_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                vec![r.partition_values],
            )
            .await?;
        single(failures)?;
        Ok(DeletePartitionResponse {})
    }

    async fn batch_delete_partition(
        &self,
        ctx: &RequestContext,
        r: BatchDeletePartitionRequest,
    ) -> Result<BatchDeletePartitionResponse, ServiceError> {
        let values = r.partitions_to_delete.into_iter().map(|v| v.values).collect();
        let failures = self
            .catalog
            .delete_partitions(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                values,
            )
            .await?;
        Ok(BatchDeletePartitionResponse {
            errors: Some(partition_errors(failures)),
        })
    }

    // ---- partition indexes ----

    async fn create_partition_index(
        &self,
        ctx: &RequestContext,
        r: CreatePartitionIndexRequest,
    ) -> Result<CreatePartitionIndexResponse, ServiceError> {
        self.catalog
            .create_partition_index(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                r.partition_index,
            )
            .await?;
        Ok(CreatePartitionIndexResponse {})
    }

    async fn get_partition_indexes(
        &self,
        ctx: &RequestContext,
        r: GetPartitionIndexesRequest,
    ) -> Result<GetPartitionIndexesResponse, ServiceError> {
        let all =
            self.catalog
                .partition_indexes(&scope(ctx, &r.catalog_id)?, &r.database_name, &r.table_name)?;
        let (list, next) = page(all, |d| d.index_name.clone(), r.next_token.as_deref(), MAX_PAGE)?;
        Ok(GetPartitionIndexesResponse {
            partition_index_descriptor_list: Some(list),
            next_token: next,
        })
    }

    async fn delete_partition_index(
        &self,
        ctx: &RequestContext,
        r: DeletePartitionIndexRequest,
    ) -> Result<DeletePartitionIndexResponse, ServiceError> {
        self.catalog
            .delete_partition_index(
                &scope(ctx, &r.catalog_id)?,
                &r.database_name,
                &r.table_name,
                &r.index_name,
            )
            .await?;
        Ok(DeletePartitionIndexResponse {})
    }

    // ---- classifiers ----

    async fn create_classifier(
        &self,
        ctx: &RequestContext,
        r: CreateClassifierRequest,
    ) -> Result<CreateClassifierResponse, ServiceError> {
        self.classifiers.create(ctx, r).await?;
        Ok(CreateClassifierResponse {})
    }

    async fn get_classifier(
        &self,
        ctx: &RequestContext,
        r: GetClassifierRequest,
    ) -> Result<GetClassifierResponse, ServiceError> {
        Ok(GetClassifierResponse {
            classifier: Some(self.classifiers.get(ctx, &r.name)?),
        })
    }

    async fn get_classifiers(
        &self,
        ctx: &RequestContext,
        r: GetClassifiersRequest,
    ) -> Result<GetClassifiersResponse, ServiceError> {
        let (list, next) = self.classifiers.list(
            ctx,
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetClassifiersResponse {
            classifiers: Some(list),
            next_token: next,
        })
    }

    async fn update_classifier(
        &self,
        ctx: &RequestContext,
        r: UpdateClassifierRequest,
    ) -> Result<UpdateClassifierResponse, ServiceError> {
        self.classifiers.update(ctx, r).await?;
        Ok(UpdateClassifierResponse {})
    }

    async fn delete_classifier(
        &self,
        ctx: &RequestContext,
        r: DeleteClassifierRequest,
    ) -> Result<DeleteClassifierResponse, ServiceError> {
        self.classifiers.delete(ctx, &r.name).await?;
        Ok(DeleteClassifierResponse {})
    }

    // ---- crawlers ----

    async fn create_crawler(
        &self,
        ctx: &RequestContext,
        r: CreateCrawlerRequest,
    ) -> Result<CreateCrawlerResponse, ServiceError> {
        self.crawlers.create(ctx, r).await?;
        Ok(CreateCrawlerResponse {})
    }

    async fn get_crawler(
        &self,
        ctx: &RequestContext,
        r: GetCrawlerRequest,
    ) -> Result<GetCrawlerResponse, ServiceError> {
        Ok(GetCrawlerResponse {
            crawler: Some(self.crawlers.get(ctx, &r.name)?),
        })
    }

    async fn get_crawlers(
        &self,
        ctx: &RequestContext,
        r: GetCrawlersRequest,
    ) -> Result<GetCrawlersResponse, ServiceError> {
        let (list, next) = self.crawlers.list_full(
            ctx,
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetCrawlersResponse {
            crawlers: Some(list),
            next_token: next,
        })
    }

    async fn list_crawlers(
        &self,
        ctx: &RequestContext,
        r: ListCrawlersRequest,
    ) -> Result<ListCrawlersResponse, ServiceError> {
        let (list, next) = self.crawlers.list_names(
            ctx,
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
            r.tags,
        )?;
        Ok(ListCrawlersResponse {
            crawler_names: Some(list),
            next_token: next,
        })
    }

    async fn get_crawler_metrics(
        &self,
        ctx: &RequestContext,
        r: GetCrawlerMetricsRequest,
    ) -> Result<GetCrawlerMetricsResponse, ServiceError> {
        let (list, next) = self.crawlers.metrics(
            ctx,
            r.crawler_name_list,
            r.next_token.as_deref(),
            page_size(r.max_results, DEFAULT_PAGE),
        )?;
        Ok(GetCrawlerMetricsResponse {
            crawler_metrics_list: Some(list),
            next_token: next,
        })
    }

    async fn update_crawler(
        &self,
        ctx: &RequestContext,
        r: UpdateCrawlerRequest,
    ) -> Result<UpdateCrawlerResponse, ServiceError> {
        self.crawlers.update(ctx, r).await?;
        Ok(UpdateCrawlerResponse {})
    }

    async fn delete_crawler(
        &self,
        ctx: &RequestContext,
        r: DeleteCrawlerRequest,
    ) -> Result<DeleteCrawlerResponse, ServiceError> {
        self.crawlers.delete(ctx, &r.name).await?;
        Ok(DeleteCrawlerResponse {})
    }

    async fn start_crawler(
        &self,
        ctx: &RequestContext,
        r: StartCrawlerRequest,
    ) -> Result<StartCrawlerResponse, ServiceError> {
        self.crawlers.start(&Scope::from(ctx), &r.name).await?;
        Ok(StartCrawlerResponse {})
    }

    async fn stop_crawler(
        &self,
        ctx: &RequestContext,
        r: StopCrawlerRequest,
    ) -> Result<StopCrawlerResponse, ServiceError> {
        self.crawlers.stop(ctx, &r.name).await?;
        Ok(StopCrawlerResponse {})
    }

    async fn start_crawler_schedule(
        &self,
        ctx: &RequestContext,
        r: StartCrawlerScheduleRequest,
    ) -> Result<StartCrawlerScheduleResponse, ServiceError> {
        self.crawlers
            .set_schedule_state(ctx, &r.crawler_name, true)
            .await?;
        Ok(StartCrawlerScheduleResponse {})
    }

    async fn stop_crawler_schedule(
        &self,
        ctx: &RequestContext,
        r: StopCrawlerScheduleRequest,
    ) -> Result<StopCrawlerScheduleResponse, ServiceError> {
        self.crawlers
            .set_schedule_state(ctx, &r.crawler_name, false)
            .await?;
        Ok(StopCrawlerScheduleResponse {})
    }
}
