//! ARNs are built and parsed in one place so every service spells them the same way.

use std::fmt;

/// An Amazon Resource Name: `arn:<partition>:<service>:<region>:<account>:<resource>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account_id: String,
    pub resource: String,
}

impl Arn {
    /// An ARN in the `aws` partition, the only one Lakebox serves.
    pub fn new(service: &str, region: &str, account_id: &str, resource: impl Into<String>) -> Self {
        Arn {
            partition: "aws".to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            resource: resource.into(),
        }
    }

    /// Parses an ARN. The resource part may itself contain `:` (as Kinesis consumer ARNs do).
    pub fn parse(s: &str) -> Option<Arn> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let account_id = parts.next()?;
        let resource = parts.next()?;
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account_id, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_resource_with_colons() {
        let s = "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1700000000";
        let arn = Arn::parse(s).unwrap();
        assert_eq!(arn.service, "kinesis");
        assert_eq!(arn.resource, "stream/s/consumer/c:1700000000");
        assert_eq!(arn.to_string(), s);
    }

    #[test]
    fn global_services_have_empty_region() {
        let arn = Arn::new("iam", "", "123456789012", "root");
        assert_eq!(arn.to_string(), "arn:aws:iam::123456789012:root");
        assert_eq!(Arn::parse("arn:aws:iam::123456789012:root"), Some(arn));
    }

    #[test]
    fn rejects_non_arns() {
        assert!(Arn::parse("arn:aws:s3").is_none());
        assert!(Arn::parse("urn:aws:s3:::b:x").is_none());
        assert!(Arn::parse("arn:aws:s3:::").is_none());
    }
}
