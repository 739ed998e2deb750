//! The queues as another service consumes them: Lambda's SQS event sources receive and delete
//! through SQS's own ReceiveMessage and DeleteMessageBatch, named by queue ARN.

use std::sync::Arc;

use lakebox_core::{RequestContext, ServiceError};
use lakebox_service::BoxFuture;

use crate::Sqs;
use crate::api::*;

struct Consumer(Arc<Sqs>);

impl Sqs {
    pub fn queue_source(self: &Arc<Self>) -> Arc<dyn lakebox_service::links::QueueSource> {
        Arc::new(Consumer(self.clone()))
    }
}

/// The context and QueueUrl of the queue an ARN names.
fn by_arn(arn: &str, now: i64) -> Option<(RequestContext, String)> {
    let a = lakebox_core::Arn::parse(arn)?;
    let ctx = RequestContext::internal(&a.account_id, &a.region, now);
    let url = format!("http://localhost/{}/{}", a.account_id, a.resource);
    Some((ctx, url))
}

impl lakebox_service::links::QueueSource for Consumer {
    fn visibility_timeout(&self, queue_arn: &str) -> Option<i64> {
        Some(self.0.queue_by_arn(queue_arn)?.number("VisibilityTimeout"))
    }

    fn receive(
        &self,
        queue_arn: &str,
        max: usize,
        wait_secs: u32,
    ) -> BoxFuture<Result<Option<Vec<lakebox_service::links::QueueMessage>>, ServiceError>> {
        let sqs = self.0.clone();
        let arn = queue_arn.to_owned();
        Box::pin(async move {
            let Some((ctx, url)) = by_arn(&arn, sqs.clock.now_millis()) else {
                return Ok(None);
            };
            if sqs.queue_by_arn(&arn).is_none() {
                return Ok(None);
            }
            let req = ReceiveMessageRequest {
                queue_url: url,
                message_system_attribute_names: Some(vec![MessageSystemAttributeName::All]),
                message_attribute_names: Some(vec!["All".into()]),
                max_number_of_messages: Some(max.clamp(1, 10) as i32),
                wait_time_seconds: Some(wait_secs.min(20) as i32),
                ..Default::default()
            };
            let got = sqs.receive_message(&ctx, req).await?;
            Ok(Some(
                got.messages
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| lakebox_service::links::QueueMessage {
                        message_id: m.message_id.unwrap_or_default(),
                        receipt_handle: m.receipt_handle.unwrap_or_default(),
                        body: m.body.unwrap_or_default(),
                        md5_of_body: m.md5_of_body.unwrap_or_default(),
                        md5_of_message_attributes: m.md5_of_message_attributes,
                        attributes: m.attributes.unwrap_or_default(),
                        message_attributes: m
                            .message_attributes
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| {
                                let b64 = |b: &lakebox_protocol::Blob| serde_json::Value::from(b.to_base64());
                                let value = serde_json::json!({
                                    "stringValue": v.string_value,
                                    "binaryValue": v.binary_value.as_ref().map(b64),
                                    "stringListValues": v.string_list_values.unwrap_or_default(),
                                    "binaryListValues": v.binary_list_values.unwrap_or_default().iter().map(b64).collect::<Vec<_>>(),
                                    "dataType": v.data_type,
                                });
                                (k, value)
                            })
                            .collect(),
                    })
                    .collect(),
            ))
        })
    }

    fn delete(&self, queue_arn: &str, receipt_handles: Vec<String>) -> BoxFuture<Result<(), ServiceError>> {
        let sqs = self.0.clone();
        let arn = queue_arn.to_owned();
        Box::pin(async move {
            let Some((ctx, url)) = by_arn(&arn, sqs.clock.now_millis()) else {
                return Ok(());
            };
            for chunk in receipt_handles.chunks(10) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, h)| DeleteMessageBatchRequestEntry {
                        id: i.to_string(),
                        receipt_handle: h.clone(),
                    })
                    .collect();
                sqs.delete_message_batch(
                    &ctx,
                    DeleteMessageBatchRequest {
                        queue_url: url.clone(),
                        entries,
                    },
                )
                .await?;
            }
            Ok(())
        })
    }
}
