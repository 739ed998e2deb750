//! The twelve Firehose operations, as the model names them. Inputs arrive decoded and checked
//! against the model by the generated layer ([`crate::api`]); what is left here is Firehose's
//! own rules and the work. Destination configurations are stored as the JSON the caller sent
//! (so stored streams survive model updates) and parsed into [`Target`] where they are used.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lakebox_core::{RequestContext, ServiceError, tags};
use lakebox_protocol::Timestamp;
use lakebox_store::LogEntry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Firehose;
use crate::api::*;
use crate::destination::{KIND_HTTP, KIND_S3, Target, describe_extended, describe_plain, merge_update};
use crate::errors::{in_use, internal, invalid_argument, not_found};
use crate::source;
use crate::streams::{DeliveryStream, KinesisSource};

const DESTINATION_ID: &str = "destinationId-000000000001";
/// PutRecordBatch's limit on the sum of its records (the count and each record's size are the
/// model's, checked before a handler runs).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
const MAX_TAGS: usize = 50;

/// The JSON a typed configuration stands for, as it is stored.
fn stored<T: Serialize>(config: &T) -> Value {
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// A stored configuration read back as the model's description shape.
fn described<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, ServiceError> {
    serde_json::from_value(v).map_err(|e| internal(format!("stored {what} does not describe: {e}")))
}

/// `add` applied to a stream's tags (the model's pattern already refuses `aws:` keys).
fn with_tags(current: &[(String, String)], add: Vec<Tag>) -> Result<Vec<(String, String)>, ServiceError> {
    let mut tags: BTreeMap<String, String> = current.iter().cloned().collect();
    let add = add.into_iter().map(|t| (t.key, t.value.unwrap_or_default()));
    tags::apply(&mut tags, add, &[], MAX_TAGS)
        .map_err(|_| invalid_argument(format!("A delivery stream can have at most {MAX_TAGS} tags.")))?;
    Ok(tags.into_iter().collect())
}

fn encryption_from_input(input: &DeliveryStreamEncryptionConfigurationInput) -> Result<Value, ServiceError> {
    match (&input.key_type, &input.key_arn) {
        (KeyType::CustomerManagedCmk, None) => Err(invalid_argument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.",
        )),
        (KeyType::AwsOwnedCmk, Some(_)) => Err(invalid_argument(
            "KeyARN must not be given when KeyType is AWS_OWNED_CMK.",
        )),
        (key_type, arn) => Ok(stored(&DeliveryStreamEncryptionConfiguration {
            key_arn: arn.clone(),
            key_type: Some(key_type.clone()),
            status: Some(DeliveryStreamEncryptionStatus::Enabled),
            failure_description: None,
        })),
    }
}

/// The destination a CreateDeliveryStream names: exactly one, of a kind Lakebox delivers to.
fn destination_of(input: &CreateDeliveryStreamInput) -> Result<(&'static str, Value), ServiceError> {
    let unsupported = [
        (
            "RedshiftDestinationConfiguration",
            input.redshift_destination_configuration.is_some(),
        ),
        (
            "ElasticsearchDestinationConfiguration",
            input.elasticsearch_destination_configuration.is_some(),
        ),
        (
            "AmazonopensearchserviceDestinationConfiguration",
            input.amazonopensearchservice_destination_configuration.is_some(),
        ),
        (
            "SplunkDestinationConfiguration",
            input.splunk_destination_configuration.is_some(),
        ),
        (
            "AmazonOpenSearchServerlessDestinationConfiguration",
            input
                .amazon_open_search_serverless_destination_configuration
                .is_some(),
        ),
        (
            "SnowflakeDestinationConfiguration",
            input.snowflake_destination_configuration.is_some(),
        ),
        (
            "IcebergDestinationConfiguration",
            input.iceberg_destination_configuration.is_some(),
        ),
        ("MSKSourceConfiguration", input.msk_source_configuration.is_some()),
    ];
    one_destination(
        &unsupported,
        [
            (
                KIND_S3,
                input.extended_s3_destination_configuration.as_ref().map(stored),
            ),
            (KIND_S3, input.s3_destination_configuration.as_ref().map(stored)),
            (
                KIND_HTTP,
                input.http_endpoint_destination_configuration.as_ref().map(stored),
            ),
        ],
        "ExtendedS3DestinationConfiguration or S3DestinationConfiguration",
        "destination configuration",
    )
}

/// The destination an UpdateDestination names.
fn update_of(input: &UpdateDestinationInput) -> Result<(&'static str, Value), ServiceError> {
    let others = [
        (
            "RedshiftDestinationUpdate",
            input.redshift_destination_update.is_some(),
        ),
        (
            "ElasticsearchDestinationUpdate",
            input.elasticsearch_destination_update.is_some(),
        ),
        (
            "AmazonopensearchserviceDestinationUpdate",
            input.amazonopensearchservice_destination_update.is_some(),
        ),
        (
            "SplunkDestinationUpdate",
            input.splunk_destination_update.is_some(),
        ),
        (
            "AmazonOpenSearchServerlessDestinationUpdate",
            input.amazon_open_search_serverless_destination_update.is_some(),
        ),
        (
            "SnowflakeDestinationUpdate",
            input.snowflake_destination_update.is_some(),
        ),
        (
            "IcebergDestinationUpdate",
            input.iceberg_destination_update.is_some(),
        ),
    ];
    one_destination(
        &others,
        [
            (KIND_S3, input.extended_s3_destination_update.as_ref().map(stored)),
            (KIND_S3, input.s3_destination_update.as_ref().map(stored)),
            (
                KIND_HTTP,
                input.http_endpoint_destination_update.as_ref().map(stored),
            ),
        ],
        "ExtendedS3DestinationUpdate, S3DestinationUpdate or HttpEndpointDestinationUpdate",
        "destination update",
    )
}

/// The one destination a request names among those Lakebox delivers to (`given`, by kind),
/// refusing the kinds it does not (`unsupported`: member name, whether given) by name.
fn one_destination(
    unsupported: &[(&str, bool)],
    given: [(&'static str, Option<Value>); 3],
    use_instead: &str,
    what: &str,
) -> Result<(&'static str, Value), ServiceError> {
    if let Some((k, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(invalid_argument(format!(
            "{k} is not supported by Lakebox yet; use {use_instead}."
        )));
    }
    let given: Vec<(&'static str, Value)> =
        given.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
    match <[_; 1]>::try_from(given) {
        Ok([one]) => Ok(one),
        Err(v) if v.is_empty() => Err(invalid_argument(format!("A {what} is required."))),
        Err(_) => Err(invalid_argument(format!("Only one {what} can be given."))),
    }
}

fn description(f: &Firehose, s: &DeliveryStream) -> Result<DeliveryStreamDescription, ServiceError> {
    let source = match (&s.kinesis_source, &s.direct_put) {
        (Some(k), _) => Some(SourceDescription {
            kinesis_stream_source_description: Some(KinesisStreamSourceDescription {
                kinesis_stream_arn: Some(k.stream_arn.clone()),
                role_arn: Some(k.role_arn.clone()),
                delivery_start_timestamp: Some(Timestamp::from_millis(k.start_millis)),
            }),
            ..Default::default()
        }),
        (None, Some(d)) => Some(SourceDescription {
            direct_put_source_description: Some(described("DirectPutSourceConfiguration", d.clone())?),
            ..Default::default()
        }),
        (None, None) => None,
    };
    let destination = if s.destination_kind == KIND_HTTP {
        DestinationDescription {
            destination_id: DESTINATION_ID.into(),
            http_endpoint_destination_description: Some(described(
                "HttpEndpointDestinationConfiguration",
                crate::http::describe(&s.destination),
            )?),
            ..Default::default()
        }
    } else {
        DestinationDescription {
            destination_id: DESTINATION_ID.into(),
            s3_destination_description: Some(described(
                "S3DestinationConfiguration",
                describe_plain(&s.destination),
            )?),
            extended_s3_destination_description: Some(described(
                "ExtendedS3DestinationConfiguration",
                describe_extended(&s.destination),
            )?),
            ..Default::default()
        }
    };
    let encryption = match &s.encryption {
        Some(e) => described("DeliveryStreamEncryptionConfiguration", e.clone())?,
        None => DeliveryStreamEncryptionConfiguration {
            status: Some(DeliveryStreamEncryptionStatus::Disabled),
            ..Default::default()
        },
    };
    Ok(DeliveryStreamDescription {
        delivery_stream_name: s.name.clone(),
        delivery_stream_arn: s.arn(),
        delivery_stream_status: DeliveryStreamStatus::from(s.status(f.streams.now())),
        failure_description: None,
        delivery_stream_encryption_configuration: Some(encryption),
        delivery_stream_type: DeliveryStreamType::from(s.stream_type.as_str()),
        version_id: s.version.to_string(),
        create_timestamp: Some(Timestamp::from_millis(s.created_millis)),
        last_update_timestamp: s.updated_millis.map(Timestamp::from_millis),
        source,
        destinations: vec![destination],
        has_more_destinations: false,
    })
}

/// The stream, if records may be put to it now.
fn writable(f: &Firehose, ctx: &RequestContext, name: &str) -> Result<DeliveryStream, ServiceError> {
    let s = f.streams.require(&ctx.account_id, &ctx.region, name)?;
    if s.stream_type != "DirectPut" {
        return Err(invalid_argument(format!(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type. Firehose {name} under account {} is sourced from a Kinesis stream.",
            ctx.account_id
        )));
    }
    match s.status(f.streams.now()) {
        "ACTIVE" => Ok(s),
        _ => Err(not_found(name, &ctx.account_id)),
    }
}

/// A record id unique to this record: the stream, its log offset and random bits.
fn record_id(uid: &str, offset: u64) -> String {
    let mut raw = Vec::with_capacity(48);
    raw.extend_from_slice(uid.as_bytes());
    raw.extend_from_slice(&offset.to_be_bytes());
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    B64.encode(raw)
}

impl FirehoseApi for Firehose {
    async fn create_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: CreateDeliveryStreamInput,
    ) -> Result<CreateDeliveryStreamOutput, ServiceError> {
        let stream_type = input
            .delivery_stream_type
            .clone()
            .unwrap_or(DeliveryStreamType::DirectPut);
        if !matches!(
            stream_type,
            DeliveryStreamType::DirectPut | DeliveryStreamType::KinesisStreamAsSource
        ) {
            return Err(invalid_argument(format!(
                "DeliveryStreamType {stream_type} is not supported by Lakebox yet; use DirectPut or KinesisStreamAsSource."
            )));
        }
        let (kind, destination) = destination_of(&input)?;
        Target::parse(kind, &destination)?;
        let name = input.delivery_stream_name;
        let now = self.streams.now();
        let (kinesis_source, positions) = if stream_type == DeliveryStreamType::KinesisStreamAsSource {
            let src = input.kinesis_stream_source_configuration.ok_or_else(|| {
                invalid_argument("KinesisStreamSourceConfiguration is required for KinesisStreamAsSource.")
            })?;
            let sname = source::stream_name(&src.kinesis_stream_arn, &ctx.account_id, &ctx.region)?;
            let positions = source::latest_positions(&*self.kinesis, &ctx.account_id, &ctx.region, &sname)?
                .ok_or_else(|| {
                invalid_argument(format!(
                    "Kinesis stream {} does not exist.",
                    src.kinesis_stream_arn
                ))
            })?;
            if input.delivery_stream_encryption_configuration_input.is_some() {
                return Err(invalid_argument(
                    "Server-side encryption cannot be set on a delivery stream whose source is a Kinesis stream.",
                ));
            }
            (
                Some(KinesisSource {
                    stream_arn: src.kinesis_stream_arn,
                    role_arn: src.role_arn,
                    start_millis: now,
                }),
                positions,
            )
        } else {
            if input.kinesis_stream_source_configuration.is_some() {
                return Err(invalid_argument(
                    "KinesisStreamSourceConfiguration needs DeliveryStreamType KinesisStreamAsSource.",
                ));
            }
            (None, BTreeMap::new())
        };
        let encryption = input
            .delivery_stream_encryption_configuration_input
            .as_ref()
            .map(encryption_from_input)
            .transpose()?;
        let tags = with_tags(&[], input.tags.unwrap_or_default())?;
        let s = DeliveryStream {
            name: name.clone(),
            uid: uuid::Uuid::new_v4().simple().to_string(),
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            stream_type: stream_type.as_str().to_owned(),
            version: 1,
            created_millis: now,
            updated_millis: None,
            ready_millis: now + self.streams.create_delay_millis,
            deleting_until_millis: None,
            direct_put: input.direct_put_source_configuration.as_ref().map(stored),
            kinesis_source,
            destination_kind: kind.to_owned(),
            destination,
            encryption,
            tags,
        };
        if !self.streams.create(s.clone(), positions).await? {
            return Err(in_use(format!(
                "Firehose {name} under accountId {} already exists",
                ctx.account_id
            )));
        }
        self.start_workers(&s);
        Ok(CreateDeliveryStreamOutput {
            delivery_stream_arn: Some(s.arn()),
        })
    }

    async fn describe_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: DescribeDeliveryStreamInput,
    ) -> Result<DescribeDeliveryStreamOutput, ServiceError> {
        let s = self
            .streams
            .require(&ctx.account_id, &ctx.region, &input.delivery_stream_name)?;
        Ok(DescribeDeliveryStreamOutput {
            delivery_stream_description: description(self, &s)?,
        })
    }

    async fn list_delivery_streams(
        &self,
        ctx: &RequestContext,
        input: ListDeliveryStreamsInput,
    ) -> Result<ListDeliveryStreamsOutput, ServiceError> {
        let limit = input.limit.unwrap_or(10) as usize;
        let mut names: Vec<String> = self
            .streams
            .list(&ctx.account_id, &ctx.region)?
            .into_iter()
            .filter(|s| {
                input
                    .delivery_stream_type
                    .as_ref()
                    .is_none_or(|t| s.stream_type == t.as_str())
            })
            .map(|s| s.name)
            .filter(|n| {
                input
                    .exclusive_start_delivery_stream_name
                    .as_ref()
                    .is_none_or(|start| n > start)
            })
            .collect();
        names.sort();
        let more = names.len() > limit;
        names.truncate(limit);
        Ok(ListDeliveryStreamsOutput {
            delivery_stream_names: names,
            has_more_delivery_streams: more,
        })
    }

    async fn delete_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: DeleteDeliveryStreamInput,
    ) -> Result<DeleteDeliveryStreamOutput, ServiceError> {
        let now = self.streams.now();
        let delay = self.streams.create_delay_millis;
        let s = self
            .streams
            .update(
                &ctx.account_id,
                &ctx.region,
                &input.delivery_stream_name,
                move |s| {
                    if s.deleting_until_millis.is_none() {
                        s.deleting_until_millis = Some(now + delay);
                    }
                    Ok(s.clone())
                },
            )
            .await?;
        self.streams.wake(&s.uid);
        Ok(DeleteDeliveryStreamOutput {})
    }

    async fn put_record(
        &self,
        ctx: &RequestContext,
        input: PutRecordInput,
    ) -> Result<PutRecordOutput, ServiceError> {
        let s = writable(self, ctx, &input.delivery_stream_name)?;
        let bytes = input.record.data.0.len();
        let offsets = self
            .streams
            .log(&s.uid)?
            .append(vec![LogEntry {
                timestamp_millis: ctx.received_at_millis,
                payload: input.record.data.0,
            }])
            .await
            .map_err(internal)?;
        self.incoming(ctx, &s.name, 1, bytes);
        Ok(PutRecordOutput {
            record_id: record_id(&s.uid, offsets.start),
            encrypted: Some(s.encrypted()),
        })
    }

    async fn put_record_batch(
        &self,
        ctx: &RequestContext,
        input: PutRecordBatchInput,
    ) -> Result<PutRecordBatchOutput, ServiceError> {
        let s = writable(self, ctx, &input.delivery_stream_name)?;
        let total: usize = input.records.iter().map(|x| x.data.0.len()).sum();
        if total > MAX_BATCH_BYTES {
            return Err(invalid_argument(format!(
                "Records size exceeds 4 MB limit: the batch holds {total} bytes."
            )));
        }
        let count = input.records.len();
        let entries = input
            .records
            .into_iter()
            .map(|x| LogEntry {
                timestamp_millis: ctx.received_at_millis,
                payload: x.data.0,
            })
            .collect();
        // All records of a batch are appended and made durable together.
        let offsets = self
            .streams
            .log(&s.uid)?
            .append(entries)
            .await
            .map_err(internal)?;
        self.incoming(ctx, &s.name, count, total);
        Ok(PutRecordBatchOutput {
            failed_put_count: 0,
            encrypted: Some(s.encrypted()),
            request_responses: offsets
                .map(|o| PutRecordBatchResponseEntry {
                    record_id: Some(record_id(&s.uid, o)),
                    ..Default::default()
                })
                .collect(),
        })
    }

    async fn update_destination(
        &self,
        ctx: &RequestContext,
        input: UpdateDestinationInput,
    ) -> Result<UpdateDestinationOutput, ServiceError> {
        let (kind, update) = update_of(&input)?;
        let now = self.streams.now();
        let account = ctx.account_id.clone();
        let current_version = input.current_delivery_stream_version_id;
        let destination_id = input.destination_id;
        self.streams
            .update(&ctx.account_id, &ctx.region, &input.delivery_stream_name, move |s| {
                if s.status(now) != "ACTIVE" {
                    return Err(in_use(format!("Firehose {} under account {account} is not ACTIVE.", s.name)));
                }
                if s.version.to_string() != current_version {
                    return Err(ServiceError::client(
                        "ConcurrentModificationException",
                        format!(
                            "Cannot update firehose: {} since the current version id: {} and specified version id: {} do not match",
                            s.name, s.version, current_version
                        ),
                    ));
                }
                if destination_id != DESTINATION_ID {
                    return Err(invalid_argument(format!("Destination {destination_id} not found.")));
                }
                // An update of the same kind changes fields; of another kind, replaces the
                // destination (Firehose lets a stream switch destinations).
                let merged = if kind == s.destination_kind {
                    merge_update(&s.destination, &update)
                } else {
                    merge_update(&json!({}), &update)
                };
                let was = Target::parse(&s.destination_kind, &s.destination)?.dynamic_partitioning();
                let now_dp = Target::parse(kind, &merged)?.dynamic_partitioning();
                if now_dp && !was {
                    return Err(invalid_argument(
                        "Dynamic partitioning cannot be enabled on an existing delivery stream; create a new one.",
                    ));
                }
                if was && !now_dp {
                    return Err(invalid_argument("Dynamic partitioning cannot be disabled once it is enabled."));
                }
                s.destination = merged;
                s.destination_kind = kind.to_owned();
                s.version += 1;
                s.updated_millis = Some(now);
                Ok(())
            })
            .await?;
        Ok(UpdateDestinationOutput {})
    }

    async fn tag_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: TagDeliveryStreamInput,
    ) -> Result<TagDeliveryStreamOutput, ServiceError> {
        let new = input.tags;
        self.streams
            .update(
                &ctx.account_id,
                &ctx.region,
                &input.delivery_stream_name,
                move |s| {
                    s.tags = with_tags(&s.tags, new)?;
                    Ok(())
                },
            )
            .await?;
        Ok(TagDeliveryStreamOutput {})
    }

    async fn untag_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: UntagDeliveryStreamInput,
    ) -> Result<UntagDeliveryStreamOutput, ServiceError> {
        let keys = input.tag_keys;
        self.streams
            .update(
                &ctx.account_id,
                &ctx.region,
                &input.delivery_stream_name,
                move |s| {
                    s.tags.retain(|(k, _)| !keys.contains(k));
                    Ok(())
                },
            )
            .await?;
        Ok(UntagDeliveryStreamOutput {})
    }

    async fn list_tags_for_delivery_stream(
        &self,
        ctx: &RequestContext,
        input: ListTagsForDeliveryStreamInput,
    ) -> Result<ListTagsForDeliveryStreamOutput, ServiceError> {
        let s = self
            .streams
            .require(&ctx.account_id, &ctx.region, &input.delivery_stream_name)?;
        let limit = input.limit.unwrap_or(50) as usize;
        let start = input.exclusive_start_tag_key;
        let mut tags: Vec<(String, String)> = s
            .tags
            .into_iter()
            .filter(|(k, _)| start.as_ref().is_none_or(|st| k > st))
            .collect();
        tags.sort();
        let more = tags.len() > limit;
        tags.truncate(limit);
        Ok(ListTagsForDeliveryStreamOutput {
            tags: tags
                .into_iter()
                .map(|(key, value)| Tag {
                    key,
                    value: Some(value),
                })
                .collect(),
            has_more_tags: more,
        })
    }

    async fn start_delivery_stream_encryption(
        &self,
        ctx: &RequestContext,
        input: StartDeliveryStreamEncryptionInput,
    ) -> Result<StartDeliveryStreamEncryptionOutput, ServiceError> {
        let default = DeliveryStreamEncryptionConfigurationInput {
            key_arn: None,
            key_type: KeyType::AwsOwnedCmk,
        };
        let config = encryption_from_input(
            input
                .delivery_stream_encryption_configuration_input
                .as_ref()
                .unwrap_or(&default),
        )?;
        set_encryption(self, ctx, &input.delivery_stream_name, Some(config)).await?;
        Ok(StartDeliveryStreamEncryptionOutput {})
    }

    async fn stop_delivery_stream_encryption(
        &self,
        ctx: &RequestContext,
        input: StopDeliveryStreamEncryptionInput,
    ) -> Result<StopDeliveryStreamEncryptionOutput, ServiceError> {
        set_encryption(self, ctx, &input.delivery_stream_name, None).await?;
        Ok(StopDeliveryStreamEncryptionOutput {})
    }
}

/// Start (with the configuration to store) or stop (`None`) server-side encryption.
async fn set_encryption(
    f: &Firehose,
    ctx: &RequestContext,
    name: &str,
    config: Option<Value>,
) -> Result<(), ServiceError> {
    let account = ctx.account_id.clone();
    f.streams
        .update(&ctx.account_id, &ctx.region, name, move |s| {
            if s.stream_type != "DirectPut" {
                return Err(invalid_argument(format!(
                    "Server-side encryption is not supported on Firehose {} under account {account}: its source is a Kinesis stream.",
                    s.name
                )));
            }
            s.encryption = match config {
                Some(c) => Some(c),
                None => s.encryption.as_ref().map(|e| {
                    let mut e = e.clone();
                    e["Status"] = json!("DISABLED");
                    e
                }),
            };
            Ok(())
        })
        .await
}
