//! Topics: their records in the metadata store (attributes, tags, policy) and the topic
//! operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use lakebox_core::{Arn, RequestContext, ServiceError, paging, tags};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Sns;
use crate::api::*;
use crate::errors::{self, invalid_parameter};

/// The attributes a topic's owner may set (CreateTopic also takes `FifoTopic`).
const SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "ArchivePolicy",
    "FifoThroughputScope",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
];

/// The most tags a topic may carry.
const MAX_TAGS: usize = 50;
/// ListTopics pages.
const PAGE: usize = 100;

/// The retry policy AWS reports for HTTP/S deliveries when the topic sets none.
pub const DEFAULT_EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicRecord {
    pub arn: String,
    pub name: String,
    pub account: String,
    pub fifo: bool,
    /// The settable attributes as set (Policy included once set; the default is derived).
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub data_protection_policy: Option<String>,
}

impl TopicRecord {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn content_based_dedup(&self) -> bool {
        self.attr("ContentBasedDeduplication") == Some("true")
    }

    pub fn policy(&self) -> String {
        match self.attr("Policy") {
            Some(p) => p.to_owned(),
            None => default_policy(&self.arn, &self.account),
        }
    }
}

/// The policy AWS gives a new topic: its own account may do everything with it.
fn default_policy(arn: &str, account: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": [
                "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic", "SNS:Publish"
            ],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": account}}
        }]
    })
    .to_string()
}

/// Checks a topic ARN's form (`InvalidParameter` otherwise) and finds the topic.
pub fn topic(sns: &Sns, arn: &str) -> Result<Arc<TopicRecord>, ServiceError> {
    check_topic_arn(arn)?;
    sns.topic(arn).ok_or_else(errors::topic_not_found)
}

pub fn check_topic_arn(arn: &str) -> Result<(), ServiceError> {
    match Arn::parse(arn) {
        Some(a) if a.service == "sns" && !a.resource.contains(':') => Ok(()),
        _ => Err(invalid_parameter("TopicArn")),
    }
}

fn valid_name(name: &str, fifo: bool) -> bool {
    let base = if fifo {
        match name.strip_suffix(".fifo") {
            Some(b) => b,
            None => return false,
        }
    } else {
        name
    };
    let max = if fifo { 251 } else { 256 };
    !base.is_empty()
        && base.len() <= max
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks one attribute's value as SNS does.
fn check_attribute(name: &str, value: &str, fifo: bool) -> Result<(), ServiceError> {
    let json_object = |what: &str| -> Result<(), ServiceError> {
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v) if v.is_object() => Ok(()),
            _ => Err(errors::invalid_because(what, "failed to parse JSON")),
        }
    };
    match name {
        "Policy" => json_object("Policy"),
        "DeliveryPolicy" => {
            json_object("DeliveryPolicy")?;
            crate::delivery::RetryPolicy::check_topic_policy(value)
        }
        "ArchivePolicy" => json_object("ArchivePolicy"),
        "SignatureVersion" if !matches!(value, "1" | "2") => Err(invalid_parameter(
            "SignatureVersion: the signature version must be 1 or 2",
        )),
        "TracingConfig" if !matches!(value, "PassThrough" | "Active") => {
            Err(invalid_parameter("TracingConfig"))
        }
        "ContentBasedDeduplication" if !fifo => Err(errors::invalid_because(
            "ContentBasedDeduplication",
            "Content based deduplication can only be set for FIFO topics",
        )),
        "ContentBasedDeduplication" if !matches!(value, "true" | "false") => {
            Err(invalid_parameter("ContentBasedDeduplication"))
        }
        "FifoThroughputScope" if !fifo => Err(errors::invalid_because(
            "FifoThroughputScope",
            "FifoThroughputScope can only be set for FIFO topics",
        )),
        "FifoThroughputScope" if !matches!(value, "Topic" | "MessageGroup") => {
            Err(invalid_parameter("FifoThroughputScope"))
        }
        n if n.ends_with("SampleRate") && !value.parse::<u32>().is_ok_and(|r| r <= 100) => {
            Err(invalid_parameter(n))
        }
        _ => Ok(()),
    }
}

fn tag_error(e: tags::TagError) -> ServiceError {
    match e {
        tags::TagError::TooMany { .. } => ServiceError::client(
            "TagLimitExceeded",
            "Could not complete request: tag quota of per resource exceeded",
        ),
        tags::TagError::Reserved(_) => ServiceError::client(
            "InvalidParameter",
            "Invalid parameter: Tags Reason: Keys may not start with aws:",
        ),
        tags::TagError::Duplicate(_) => errors::invalid_because("Tags", "Duplicated keys are not allowed."),
        tags::TagError::KeyLength(_) | tags::TagError::ValueLength(_) => invalid_parameter("Tags"),
    }
}

fn tag_pairs(list: &[Tag]) -> Vec<(String, String)> {
    list.iter().map(|t| (t.key.clone(), t.value.clone())).collect()
}

pub async fn create_topic(
    sns: &Sns,
    ctx: &RequestContext,
    input: CreateTopicInput,
) -> Result<CreateTopicResponse, ServiceError> {
    let mut attributes = input.attributes.unwrap_or_default();
    let fifo = match attributes.remove("FifoTopic").as_deref() {
        Some("true") => true,
        Some("false") | None => false,
        Some(_) => return Err(invalid_parameter("FifoTopic")),
    };
    if !valid_name(&input.name, fifo) {
        return Err(if input.name.ends_with(".fifo") || fifo {
            invalid_parameter(
                "Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.",
            )
        } else {
            invalid_parameter("Topic Name")
        });
    }
    for (k, v) in &attributes {
        if !SETTABLE.contains(&k.as_str()) {
            return Err(invalid_parameter("AttributeName"));
        }
        check_attribute(k, v, fifo)?;
    }
    let new_tags = tag_pairs(input.tags.as_deref().unwrap_or_default());
    tags::check(new_tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(tag_error)?;
    if new_tags.len() > MAX_TAGS {
        return Err(tag_error(tags::TagError::TooMany { max: MAX_TAGS }));
    }
    let arn = Arn::new("sns", &ctx.region, &ctx.account_id, input.name.clone()).to_string();
    let _admin = sns.admin.lock().await;
    if let Some(existing) = sns.topic(&arn) {
        // Idempotent: the same name with the same attributes answers the same ARN.
        let differs = attributes
            .iter()
            .any(|(k, v)| existing.attr(k) != Some(v.as_str()))
            || existing.fifo != fifo;
        if differs {
            return Err(errors::invalid_because(
                "Attributes",
                "Topic already exists with different attributes",
            ));
        }
        let tags_differ = new_tags.iter().any(|(k, v)| existing.tags.get(k) != Some(v));
        if tags_differ {
            return Err(errors::invalid_because(
                "Tags",
                "Topic already exists with different tags",
            ));
        }
        return Ok(CreateTopicResponse { topic_arn: Some(arn) });
    }
    if let Some(dpp) = &input.data_protection_policy {
        check_data_protection_policy(dpp)?;
    }
    let record = TopicRecord {
        arn: arn.clone(),
        name: input.name,
        account: ctx.account_id.clone(),
        fifo,
        attributes: attributes.into_iter().collect(),
        tags: new_tags.into_iter().collect(),
        data_protection_policy: input.data_protection_policy,
    };
    sns.save_topic(record).await?;
    Ok(CreateTopicResponse { topic_arn: Some(arn) })
}

pub async fn delete_topic(sns: &Sns, input: DeleteTopicInput) -> Result<(), ServiceError> {
    check_topic_arn(&input.topic_arn)?;
    let _admin = sns.admin.lock().await;
    // Deleting a topic that does not exist is not an error (AWS documents it so).
    if sns.topic(&input.topic_arn).is_none() {
        return Ok(());
    }
    sns.remove_topic(&input.topic_arn).await
}

pub fn get_topic_attributes(
    sns: &Sns,
    input: GetTopicAttributesInput,
) -> Result<GetTopicAttributesResponse, ServiceError> {
    let t = topic(sns, &input.topic_arn)?;
    let (confirmed, pending, deleted) = sns.subscription_counts(&t.arn);
    let mut out: BTreeMap<String, String> = t.attributes.clone();
    out.insert("TopicArn".into(), t.arn.clone());
    out.insert("Owner".into(), t.account.clone());
    out.insert("Policy".into(), t.policy());
    out.entry("DisplayName".into()).or_default();
    out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
    out.insert("SubscriptionsPending".into(), pending.to_string());
    out.insert("SubscriptionsDeleted".into(), deleted.to_string());
    let effective = t
        .attr("DeliveryPolicy")
        .unwrap_or(DEFAULT_EFFECTIVE_DELIVERY_POLICY)
        .to_owned();
    out.insert("EffectiveDeliveryPolicy".into(), effective);
    if t.fifo {
        out.insert("FifoTopic".into(), "true".into());
        out.entry("ContentBasedDeduplication".into())
            .or_insert_with(|| "false".into());
    }
    Ok(GetTopicAttributesResponse {
        attributes: Some(out),
    })
}

pub async fn set_topic_attributes(sns: &Sns, input: SetTopicAttributesInput) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = topic(sns, &input.topic_arn)?;
    if !SETTABLE.contains(&input.attribute_name.as_str()) {
        return Err(invalid_parameter("AttributeName"));
    }
    let mut record = (*t).clone();
    match input.attribute_value {
        // An empty value clears what was set.
        Some(v) if !v.is_empty() => {
            check_attribute(&input.attribute_name, &v, t.fifo)?;
            record.attributes.insert(input.attribute_name, v);
        }
        _ => {
            record.attributes.remove(&input.attribute_name);
        }
    }
    sns.save_topic(record).await
}

pub fn list_topics(
    sns: &Sns,
    ctx: &RequestContext,
    input: ListTopicsInput,
) -> Result<ListTopicsResponse, ServiceError> {
    let arns: Vec<String> = sns
        .topics_of(&ctx.account_id, &ctx.region)
        .into_iter()
        .map(|t| t.arn.clone())
        .collect();
    let (page, next) = paging::page(arns, |a| a.clone(), input.next_token.as_deref(), PAGE)
        .map_err(|_| invalid_parameter("NextToken"))?;
    Ok(ListTopicsResponse {
        topics: Some(
            page.into_iter()
                .map(|arn| Topic { topic_arn: Some(arn) })
                .collect(),
        ),
        next_token: next,
    })
}

// ---- tags ---------------------------------------------------------------------------------

/// The topic a tagging call names (`ResourceNotFound` as the tagging API words it).
fn tagged_topic(sns: &Sns, arn: &str) -> Result<Arc<TopicRecord>, ServiceError> {
    if Arn::parse(arn).is_none_or(|a| a.service != "sns") {
        return Err(invalid_parameter("ResourceArn"));
    }
    sns.topic(arn).ok_or_else(errors::resource_not_found)
}

pub async fn tag_resource(sns: &Sns, input: TagResourceRequest) -> Result<TagResourceResponse, ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = tagged_topic(sns, &input.resource_arn)?;
    let add = tag_pairs(&input.tags);
    tags::check(add.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(tag_error)?;
    let mut record = (*t).clone();
    tags::apply(&mut record.tags, add, &[], MAX_TAGS).map_err(tag_error)?;
    sns.save_topic(record).await?;
    Ok(TagResourceResponse {})
}

pub async fn untag_resource(
    sns: &Sns,
    input: UntagResourceRequest,
) -> Result<UntagResourceResponse, ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = tagged_topic(sns, &input.resource_arn)?;
    let mut record = (*t).clone();
    tags::apply(&mut record.tags, Vec::new(), &input.tag_keys, MAX_TAGS).map_err(tag_error)?;
    sns.save_topic(record).await?;
    Ok(UntagResourceResponse {})
}

pub fn list_tags_for_resource(
    sns: &Sns,
    input: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ServiceError> {
    let t = tagged_topic(sns, &input.resource_arn)?;
    Ok(ListTagsForResourceResponse {
        tags: Some(
            t.tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        ),
    })
}

// ---- permissions and data protection ------------------------------------------------------

fn policy_document(t: &TopicRecord) -> serde_json::Value {
    serde_json::from_str(&t.policy()).unwrap_or_else(|_| json!({"Version": "2008-10-17", "Statement": []}))
}

pub async fn add_permission(sns: &Sns, input: AddPermissionInput) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = topic(sns, &input.topic_arn)?;
    if input.aws_account_id.is_empty() || input.action_name.is_empty() {
        return Err(invalid_parameter("AWSAccountId and ActionName must not be empty"));
    }
    let mut doc = policy_document(&t);
    let statements = doc["Statement"].as_array_mut();
    let Some(statements) = statements else {
        return Err(invalid_parameter("Policy"));
    };
    if statements.iter().any(|s| s["Sid"] == input.label.as_str()) {
        return Err(invalid_parameter("Statement already exists"));
    }
    let principals: Vec<String> = input
        .aws_account_id
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let actions: Vec<String> = input.action_name.iter().map(|a| format!("SNS:{a}")).collect();
    let one_or_many = |v: Vec<String>| {
        if v.len() == 1 { json!(v[0]) } else { json!(v) }
    };
    statements.push(json!({
        "Sid": input.label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_many(principals)},
        "Action": one_or_many(actions),
        "Resource": t.arn,
    }));
    let mut record = (*t).clone();
    record.attributes.insert("Policy".into(), doc.to_string());
    sns.save_topic(record).await
}

pub async fn remove_permission(sns: &Sns, input: RemovePermissionInput) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = topic(sns, &input.topic_arn)?;
    let mut doc = policy_document(&t);
    if let Some(statements) = doc["Statement"].as_array_mut() {
        let before = statements.len();
        statements.retain(|s| s["Sid"] != input.label.as_str());
        if statements.len() == before {
            return Ok(());
        }
    }
    let mut record = (*t).clone();
    record.attributes.insert("Policy".into(), doc.to_string());
    sns.save_topic(record).await
}

fn check_data_protection_policy(doc: &str) -> Result<(), ServiceError> {
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(v) if v.get("Statement").is_some_and(serde_json::Value::is_array) => Ok(()),
        _ => Err(errors::invalid_because(
            "DataProtectionPolicy",
            "the policy must be a JSON document with a Statement list",
        )),
    }
}

pub async fn put_data_protection_policy(
    sns: &Sns,
    input: PutDataProtectionPolicyInput,
) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let t = topic(sns, &input.resource_arn)?;
    check_data_protection_policy(&input.data_protection_policy)?;
    let mut record = (*t).clone();
    record.data_protection_policy = Some(input.data_protection_policy);
    sns.save_topic(record).await
}

pub fn get_data_protection_policy(
    sns: &Sns,
    input: GetDataProtectionPolicyInput,
) -> Result<GetDataProtectionPolicyResponse, ServiceError> {
    let t = topic(sns, &input.resource_arn)?;
    Ok(GetDataProtectionPolicyResponse {
        data_protection_policy: t.data_protection_policy.clone(),
    })
}
