//! Every AWS service Lakebox knows how to recognise, implemented or not yet.
//!
//! Recognising a service we do not implement lets us answer in its own protocol with
//! "unknown operation" instead of a confusing S3 error.

/// The wire protocols of DESIGN §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson 1.0 / 1.1 (and its CBOR encoding), selected by `X-Amz-Target`.
    AwsJson,
    /// awsQuery: `Action=` forms.
    AwsQuery,
    /// restJson: resources in the path.
    RestJson,
    /// restXml: S3.
    RestXml,
}

/// One AWS service as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Lakebox's name for it (health output, logs, docs).
    pub name: &'static str,
    /// The SigV4 signing name clients put in the credential scope.
    pub signing_name: &'static str,
    /// The protocols its SDKs speak (SQS and CloudWatch speak more than one).
    pub protocols: &'static [Protocol],
    /// `X-Amz-Target` prefix for awsJson services.
    pub target_prefix: Option<&'static str>,
    /// `Version=` of awsQuery services, to recognise unsigned query requests.
    pub query_version: Option<&'static str>,
    /// Path prefix of restJson services.
    pub path_prefix: Option<&'static str>,
    /// awsQuery XML namespace.
    pub xml_namespace: Option<&'static str>,
    /// The largest body a legal request can have, with room for encoding overhead. Bodies
    /// over this are refused before they are read. `None`: the service streams bodies itself.
    pub max_body_bytes: Option<u64>,
}

const MIB: u64 = 1024 * 1024;

macro_rules! entry {
    ($name:expr, $signing:expr, $protocols:expr, target: $t:expr, version: $v:expr, path: $p:expr, ns: $ns:expr, max: $max:expr) => {
        ServiceEntry {
            name: $name,
            signing_name: $signing,
            protocols: $protocols,
            target_prefix: $t,
            query_version: $v,
            path_prefix: $p,
            xml_namespace: $ns,
            max_body_bytes: $max,
        }
    };
}

use Protocol::*;

/// The catalogue. Body limits: the service's documented request maximum, plus base64 (4/3)
/// or form-encoding overhead where payloads travel encoded.
pub static CATALOG: &[ServiceEntry] = &[
    // S3 streams object bodies (up to 5 GiB per PUT) and bounds its XML bodies itself.
    entry!("s3", "s3", &[RestXml], target: None, version: None, path: None, ns: None, max: None),
    // PutRecords: 5 MiB of records, base64 in JSON, plus keys.
    entry!("kinesis", "kinesis", &[AwsJson], target: Some("Kinesis_20131202"), version: None, path: None, ns: None, max: Some(8 * MIB)),
    // PutRecordBatch: 4 MiB of records, base64 in JSON.
    entry!("firehose", "firehose", &[AwsJson], target: Some("Firehose_20150804"), version: None, path: None, ns: None, max: Some(8 * MIB)),
    entry!("glue", "glue", &[AwsJson], target: Some("AWSGlue"), version: None, path: None, ns: None, max: Some(10 * MIB)),
    // Query strings are at most 256 KiB; the rest is small.
    entry!("athena", "athena", &[AwsJson], target: Some("AmazonAthena"), version: None, path: None, ns: None, max: Some(2 * MIB)),
    // BatchWriteItem: 16 MB.
    entry!("dynamodb", "dynamodb", &[AwsJson], target: Some("DynamoDB_20120810"), version: None, path: None, ns: None, max: Some(17 * MIB)),
    entry!("dynamodbstreams", "dynamodb", &[AwsJson], target: Some("DynamoDBStreams_20120810"), version: None, path: None, ns: None, max: Some(MIB)),
    // 1 MiB messages; form encoding can triple them.
    entry!("sqs", "sqs", &[AwsJson, AwsQuery], target: Some("AmazonSQS"), version: Some("2012-11-05"), path: None, ns: Some("http://queue.amazonaws.com/doc/2012-11-05/"), max: Some(4 * MIB)),
    entry!("sns", "sns", &[AwsQuery], target: None, version: Some("2010-03-31"), path: None, ns: Some("http://sns.amazonaws.com/doc/2010-03-31/"), max: Some(2 * MIB)),
    entry!("iam", "iam", &[AwsQuery], target: None, version: Some("2010-05-08"), path: None, ns: Some("https://iam.amazonaws.com/doc/2010-05-08/"), max: Some(MIB)),
    entry!("sts", "sts", &[AwsQuery], target: None, version: Some("2011-06-15"), path: None, ns: Some("https://sts.amazonaws.com/doc/2011-06-15/"), max: Some(MIB)),
    entry!("kms", "kms", &[AwsJson], target: Some("TrentService"), version: None, path: None, ns: None, max: Some(MIB)),
    // PutLogEvents: 1 MiB.
    entry!("logs", "logs", &[AwsJson], target: Some("Logs_20140328"), version: None, path: None, ns: None, max: Some(2 * MIB)),
    // PutMetricData: 1 MB.
    entry!("cloudwatch", "monitoring", &[AwsQuery, AwsJson], target: Some("GraniteServiceVersion20100801"), version: Some("2010-08-01"), path: None, ns: Some("http://monitoring.amazonaws.com/doc/2010-08-01/"), max: Some(2 * MIB)),
    // Invoke: 6 MB synchronous payloads; function code zips up to 50 MB base64.
    entry!("lambda", "lambda", &[RestJson], target: None, version: None, path: Some("/2015-03-31/"), ns: None, max: Some(70 * MIB)),
    entry!("opensearch", "es", &[RestJson], target: None, version: None, path: Some("/2021-01-01/"), ns: None, max: Some(10 * MIB)),
    entry!("redshift", "redshift", &[AwsQuery], target: None, version: Some("2012-12-01"), path: None, ns: Some("http://redshift.amazonaws.com/doc/2012-12-01/"), max: Some(MIB)),
    entry!("redshift-data", "redshift-data", &[AwsJson], target: Some("RedshiftData"), version: None, path: None, ns: None, max: Some(MIB)),
    entry!("kinesisanalyticsv2", "kinesisanalytics", &[AwsJson], target: Some("KinesisAnalytics_20180523"), version: None, path: None, ns: None, max: Some(MIB)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_targets_are_unique() {
        let mut names = HashSet::new();
        let mut targets = HashSet::new();
        for e in CATALOG {
            assert!(names.insert(e.name), "duplicate {}", e.name);
            if let Some(t) = e.target_prefix {
                assert!(targets.insert(t), "duplicate target {t}");
                assert!(e.protocols.contains(&Protocol::AwsJson));
            }
            if e.protocols.contains(&Protocol::AwsQuery) {
                assert!(
                    e.xml_namespace.is_some() && e.query_version.is_some(),
                    "{}",
                    e.name
                );
            }
        }
    }
}
