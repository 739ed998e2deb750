//! Subscriptions: their records, confirmation, attributes and the subscription operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use lakebox_core::{Arn, RequestContext, ServiceError, paging};
use serde::{Deserialize, Serialize};

use crate::api::*;
use crate::errors::{self, invalid_because, invalid_parameter};
use crate::filter::{FilterPolicy, Scope};
use crate::outbox::Outgoing;
use crate::topics::{self, TopicRecord};
use crate::{Sns, delivery};

/// What `SubscriptionArn` says of a subscription that awaits confirmation.
pub const PENDING: &str = "PendingConfirmation";
/// What Subscribe answers for one (without ReturnSubscriptionArn).
const PENDING_ANSWER: &str = "pending confirmation";
/// A confirmation token is good for three days.
const TOKEN_MILLIS: i64 = 3 * 24 * 3600 * 1000;
const PAGE: usize = 100;

const SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

/// Delivery protocols SNS knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Http,
    Https,
    Email,
    EmailJson,
    Sms,
    Sqs,
    Application,
    Lambda,
    Firehose,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        Some(match s {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "email" => Protocol::Email,
            "email-json" => Protocol::EmailJson,
            "sms" => Protocol::Sms,
            "sqs" => Protocol::Sqs,
            "application" => Protocol::Application,
            "lambda" => Protocol::Lambda,
            "firehose" => Protocol::Firehose,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Email => "email",
            Protocol::EmailJson => "email-json",
            Protocol::Sms => "sms",
            Protocol::Sqs => "sqs",
            Protocol::Application => "application",
            Protocol::Lambda => "lambda",
            Protocol::Firehose => "firehose",
        }
    }

    /// Endpoints that must confirm before they receive anything.
    fn needs_confirmation(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Https | Protocol::Email | Protocol::EmailJson
        )
    }

    fn raw_capable(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Https | Protocol::Sqs | Protocol::Firehose
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub arn: String,
    pub topic_arn: String,
    pub owner: String,
    pub protocol: Protocol,
    pub endpoint: String,
    pub attributes: BTreeMap<String, String>,
    pub pending: bool,
    pub token: Option<String>,
    pub token_expires_millis: i64,
    pub authenticated: bool,
    /// The base URL (`http://host:port`) the subscriber was created through: confirmation and
    /// unsubscribe links point there.
    pub base_url: String,
    #[serde(skip)]
    pub filter: Option<Arc<FilterPolicy>>,
}

impl SubscriptionRecord {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn raw(&self) -> bool {
        self.attr("RawMessageDelivery") == Some("true")
    }

    /// The queue failed deliveries go to (RedrivePolicy's deadLetterTargetArn).
    pub fn dead_letter_queue(&self) -> Option<String> {
        let policy: serde_json::Value = serde_json::from_str(self.attr("RedrivePolicy")?).ok()?;
        policy["deadLetterTargetArn"].as_str().map(str::to_owned)
    }

    /// Parses the stored filter policy (at load and whenever it changes).
    pub fn compile(mut self) -> Self {
        self.filter = self.attr("FilterPolicy").and_then(|p| {
            let scope = Scope::parse(self.attr("FilterPolicyScope")).ok()?;
            FilterPolicy::parse(p, scope).ok().map(Arc::new)
        });
        self
    }

    /// Whether this subscription wants a message with these attributes and body.
    pub fn wants(&self, attrs: &BTreeMap<String, (String, String)>, body: &str) -> bool {
        match &self.filter {
            None => true,
            Some(f) => match f.scope() {
                Scope::MessageAttributes => f.matches_attributes(attrs),
                Scope::MessageBody => f.matches_body(body),
            },
        }
    }
}

fn check_endpoint(topic: &TopicRecord, protocol: Protocol, endpoint: &str) -> Result<(), ServiceError> {
    let endpoint_error = || invalid_parameter("Endpoint must match the specified protocol");
    match protocol {
        Protocol::Http | Protocol::Https => {
            let scheme = if protocol == Protocol::Http {
                "http://"
            } else {
                "https://"
            };
            let uri: Option<http::Uri> = endpoint.parse().ok();
            if !endpoint.starts_with(scheme) || uri.and_then(|u| u.host().map(str::to_owned)).is_none() {
                return Err(endpoint_error());
            }
        }
        Protocol::Email | Protocol::EmailJson => {
            let ok = endpoint
                .split_once('@')
                .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.contains('@'));
            if !ok {
                return Err(invalid_parameter("Email address"));
            }
        }
        Protocol::Sms => {
            let digits = endpoint.strip_prefix('+').unwrap_or(endpoint);
            let clean: String = digits
                .chars()
                .filter(|c| !matches!(c, '-' | ' ' | '(' | ')'))
                .collect();
            if clean.len() < 7 || clean.len() > 15 || !clean.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_parameter(format!("Invalid SMS endpoint: {endpoint}")));
            }
        }
        Protocol::Sqs => {
            let arn = Arn::parse(endpoint).filter(|a| a.service == "sqs");
            let Some(arn) = arn else {
                return Err(invalid_parameter("SQS endpoint ARN"));
            };
            if arn.resource.ends_with(".fifo") && !topic.fifo {
                return Err(invalid_because(
                    "Invalid parameter: Endpoint",
                    "FIFO SQS Queues can not be subscribed to standard SNS topics",
                ));
            }
        }
        Protocol::Lambda => {
            if Arn::parse(endpoint).is_none_or(|a| a.service != "lambda") {
                return Err(invalid_parameter("Lambda endpoint ARN"));
            }
        }
        Protocol::Firehose => {
            if Arn::parse(endpoint).is_none_or(|a| a.service != "firehose") {
                return Err(invalid_parameter("Firehose endpoint ARN"));
            }
        }
        Protocol::Application => {
            return Err(invalid_because(
                "Endpoint",
                "Lakebox does not implement platform applications yet",
            ));
        }
    }
    if topic.fifo && !matches!(protocol, Protocol::Sqs) {
        return Err(invalid_parameter(format!(
            "Invalid protocol type: {}",
            protocol.as_str()
        )));
    }
    Ok(())
}

/// Checks one subscription attribute as SNS does.
fn check_attribute(
    name: &str,
    value: &str,
    protocol: Protocol,
    all: &BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    match name {
        "RawMessageDelivery" => {
            if !matches!(value, "true" | "false") {
                return Err(invalid_parameter(format!(
                    "RawMessageDelivery: Invalid value [{value}]. Must be true or false."
                )));
            }
            if value == "true" && !protocol.raw_capable() {
                return Err(invalid_parameter(format!(
                    "Delivery protocol [{}] does not support raw message delivery.",
                    protocol.as_str()
                )));
            }
        }
        "FilterPolicy" => {
            if !value.is_empty() {
                let scope = Scope::parse(all.get("FilterPolicyScope").map(String::as_str))?;
                FilterPolicy::parse(value, scope)?;
            }
        }
        "FilterPolicyScope" => {
            Scope::parse(Some(value))?;
            if let Some(p) = all.get("FilterPolicy").filter(|p| !p.is_empty()) {
                FilterPolicy::parse(p, Scope::parse(Some(value))?)?;
            }
        }
        "RedrivePolicy" => {
            let v: serde_json::Value = serde_json::from_str(value).map_err(|_| {
                invalid_because("RedrivePolicy", "Invalid RedrivePolicy: failed to parse JSON")
            })?;
            let target = v["deadLetterTargetArn"].as_str();
            if target.and_then(Arn::parse).is_none_or(|a| a.service != "sqs") {
                return Err(invalid_because(
                    "RedrivePolicy",
                    "Invalid RedrivePolicy: deadLetterTargetArn must be an SQS queue ARN",
                ));
            }
        }
        "DeliveryPolicy" => delivery::RetryPolicy::check_subscription_policy(value)?,
        "SubscriptionRoleArn" => {
            if Arn::parse(value).is_none_or(|a| a.service != "iam") {
                return Err(invalid_parameter("SubscriptionRoleArn"));
            }
        }
        "ReplayPolicy" => {
            return Err(invalid_because(
                "ReplayPolicy",
                "Lakebox does not archive messages, so there is nothing to replay",
            ));
        }
        _ => return Err(invalid_parameter("AttributeName")),
    }
    Ok(())
}

fn check_attributes(attrs: &BTreeMap<String, String>, protocol: Protocol) -> Result<(), ServiceError> {
    for (k, v) in attrs {
        if !SETTABLE.contains(&k.as_str()) {
            return Err(invalid_parameter("AttributeName"));
        }
        check_attribute(k, v, protocol, attrs)?;
    }
    if protocol == Protocol::Firehose && !attrs.contains_key("SubscriptionRoleArn") {
        return Err(invalid_because(
            "SubscriptionRoleArn",
            "SubscriptionRoleArn is required for firehose subscriptions",
        ));
    }
    Ok(())
}

/// A confirmation token: long and unguessable, as AWS's are.
fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub async fn subscribe(
    sns: &Sns,
    ctx: &RequestContext,
    input: SubscribeInput,
) -> Result<SubscribeResponse, ServiceError> {
    let Some(protocol) = Protocol::parse(&input.protocol) else {
        return Err(invalid_parameter(format!(
            "Amazon SNS does not support this protocol string: {}",
            input.protocol
        )));
    };
    let endpoint = input.endpoint.unwrap_or_default();
    let attributes = input.attributes.unwrap_or_default();
    let attributes: BTreeMap<String, String> = attributes.into_iter().collect();
    let _admin = sns.admin.lock().await;
    let topic = topics::topic(sns, &input.topic_arn)?;
    check_endpoint(&topic, protocol, &endpoint)?;
    check_attributes(&attributes, protocol)?;
    if let Some(existing) = sns.find_subscription(&topic.arn, protocol, &endpoint) {
        let differs = attributes
            .iter()
            .any(|(k, v)| existing.attr(k) != Some(v.as_str()));
        if differs {
            return Err(invalid_because(
                "Attributes",
                "Subscription already exists with different attributes",
            ));
        }
        let arn = if existing.pending && input.return_subscription_arn != Some(true) {
            PENDING_ANSWER.to_owned()
        } else {
            existing.arn.clone()
        };
        return Ok(SubscribeResponse {
            subscription_arn: Some(arn),
        });
    }
    let arn = format!("{}:{}", topic.arn, uuid::Uuid::new_v4());
    let pending = protocol.needs_confirmation();
    let record = SubscriptionRecord {
        arn: arn.clone(),
        topic_arn: topic.arn.clone(),
        owner: ctx.account_id.clone(),
        protocol,
        endpoint,
        attributes,
        pending,
        token: pending.then(new_token),
        token_expires_millis: sns.now() + TOKEN_MILLIS,
        authenticated: false,
        base_url: crate::base_url(sns, ctx),
        filter: None,
    }
    .compile();
    sns.save_subscription(record.clone()).await?;
    if pending {
        // The confirmation request is sent like any message: durably queued first.
        sns.enqueue(vec![Outgoing::Confirm {
            subscription_arn: arn.clone(),
        }])
        .await?;
    }
    let answer = if pending && input.return_subscription_arn != Some(true) {
        PENDING_ANSWER.to_owned()
    } else {
        arn
    };
    Ok(SubscribeResponse {
        subscription_arn: Some(answer),
    })
}

pub async fn confirm_subscription(
    sns: &Sns,
    input: ConfirmSubscriptionInput,
) -> Result<ConfirmSubscriptionResponse, ServiceError> {
    let _admin = sns.admin.lock().await;
    let topic = topics::topic(sns, &input.topic_arn)?;
    let now = sns.now();
    let Some(sub) = sns
        .subscriptions_of(&topic.arn)
        .into_iter()
        .find(|s| s.token.as_deref() == Some(input.token.as_str()))
    else {
        return Err(invalid_parameter("Invalid token"));
    };
    if sub.pending && sub.token_expires_millis < now {
        return Err(invalid_parameter("Token has expired"));
    }
    if sub.pending {
        let mut record = (*sub).clone();
        record.pending = false;
        record.authenticated = input.authenticate_on_unsubscribe.as_deref() == Some("true");
        sns.save_subscription(record).await?;
    }
    Ok(ConfirmSubscriptionResponse {
        subscription_arn: Some(sub.arn.clone()),
    })
}

fn check_subscription_arn(arn: &str) -> Result<(), ServiceError> {
    match Arn::parse(arn) {
        Some(a) if a.service == "sns" && a.resource.contains(':') => Ok(()),
        _ => Err(invalid_parameter("SubscriptionArn")),
    }
}

fn subscription(sns: &Sns, arn: &str) -> Result<Arc<SubscriptionRecord>, ServiceError> {
    check_subscription_arn(arn)?;
    sns.subscription(arn).ok_or_else(errors::subscription_not_found)
}

pub async fn unsubscribe(
    sns: &Sns,
    ctx: &RequestContext,
    input: UnsubscribeInput,
) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let sub = subscription(sns, &input.subscription_arn)?;
    // Confirmed with AuthenticateOnUnsubscribe: only a signed request may end it.
    if sub.authenticated && ctx.principal.is_none() {
        return Err(ServiceError::new(
            "AuthorizationError",
            403,
            "Unsubscribe requires authentication for this subscription",
        ));
    }
    sns.remove_subscription(&sub).await
}

pub fn get_subscription_attributes(
    sns: &Sns,
    input: GetSubscriptionAttributesInput,
) -> Result<GetSubscriptionAttributesResponse, ServiceError> {
    let s = subscription(sns, &input.subscription_arn)?;
    let mut out = s.attributes.clone();
    out.insert("SubscriptionArn".into(), s.arn.clone());
    out.insert("TopicArn".into(), s.topic_arn.clone());
    out.insert("Owner".into(), s.owner.clone());
    out.insert("Protocol".into(), s.protocol.as_str().into());
    out.insert("Endpoint".into(), s.endpoint.clone());
    out.insert("PendingConfirmation".into(), s.pending.to_string());
    out.insert("ConfirmationWasAuthenticated".into(), s.authenticated.to_string());
    out.entry("RawMessageDelivery".into())
        .or_insert_with(|| "false".into());
    if out.contains_key("FilterPolicy") {
        out.entry("FilterPolicyScope".into())
            .or_insert_with(|| "MessageAttributes".into());
    }
    if matches!(s.protocol, Protocol::Http | Protocol::Https) {
        let topic_policy = sns
            .topic(&s.topic_arn)
            .and_then(|t| t.attr("DeliveryPolicy").map(str::to_owned));
        let effective =
            delivery::RetryPolicy::effective_json(topic_policy.as_deref(), s.attr("DeliveryPolicy"));
        out.insert("EffectiveDeliveryPolicy".into(), effective);
    }
    Ok(GetSubscriptionAttributesResponse {
        attributes: Some(out),
    })
}

pub async fn set_subscription_attributes(
    sns: &Sns,
    input: SetSubscriptionAttributesInput,
) -> Result<(), ServiceError> {
    let _admin = sns.admin.lock().await;
    let s = subscription(sns, &input.subscription_arn)?;
    if !SETTABLE.contains(&input.attribute_name.as_str()) {
        return Err(invalid_parameter("AttributeName"));
    }
    let mut record = (*s).clone();
    match input.attribute_value.filter(|v| !v.is_empty()) {
        Some(v) => {
            let mut all = record.attributes.clone();
            all.insert(input.attribute_name.clone(), v.clone());
            check_attribute(&input.attribute_name, &v, record.protocol, &all)?;
            record.attributes = all;
        }
        None => {
            record.attributes.remove(&input.attribute_name);
            if input.attribute_name == "FilterPolicy" {
                record.attributes.remove("FilterPolicyScope");
            }
        }
    }
    sns.save_subscription(record.compile()).await
}

fn listed(s: &SubscriptionRecord) -> Subscription {
    Subscription {
        subscription_arn: Some(if s.pending {
            PENDING.to_owned()
        } else {
            s.arn.clone()
        }),
        owner: Some(s.owner.clone()),
        protocol: Some(s.protocol.as_str().to_owned()),
        endpoint: Some(s.endpoint.clone()),
        topic_arn: Some(s.topic_arn.clone()),
    }
}

fn page(
    subs: Vec<Arc<SubscriptionRecord>>,
    token: Option<&str>,
) -> Result<(Vec<Subscription>, Option<String>), ServiceError> {
    let (page, next) =
        paging::page(subs, |s| s.arn.clone(), token, PAGE).map_err(|_| invalid_parameter("NextToken"))?;
    Ok((page.iter().map(|s| listed(s)).collect(), next))
}

pub fn list_subscriptions(
    sns: &Sns,
    ctx: &RequestContext,
    input: ListSubscriptionsInput,
) -> Result<ListSubscriptionsResponse, ServiceError> {
    let subs = sns.subscriptions_in(&ctx.account_id, &ctx.region);
    let (subscriptions, next_token) = page(subs, input.next_token.as_deref())?;
    Ok(ListSubscriptionsResponse {
        subscriptions: Some(subscriptions),
        next_token,
    })
}

pub fn list_subscriptions_by_topic(
    sns: &Sns,
    input: ListSubscriptionsByTopicInput,
) -> Result<ListSubscriptionsByTopicResponse, ServiceError> {
    let topic = topics::topic(sns, &input.topic_arn)?;
    let subs = sns.subscriptions_of(&topic.arn);
    let (subscriptions, next_token) = page(subs, input.next_token.as_deref())?;
    Ok(ListSubscriptionsByTopicResponse {
        subscriptions: Some(subscriptions),
        next_token,
    })
}
