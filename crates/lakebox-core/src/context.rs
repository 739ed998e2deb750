//! What a service knows about the request it is serving.

/// The account used when the caller's access key does not name one.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// The region used when a request carries no SigV4 credential scope.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Who signed the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub access_key_id: String,
}

/// Per-request facts every service needs, built by the gateway before dispatch.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The 12-digit account the request acts in.
    pub account_id: String,
    /// The region from the SigV4 credential scope (or the server default).
    pub region: String,
    /// `None` for anonymous requests (unsigned, accepted because verification is off).
    pub principal: Option<Principal>,
    /// Arrival time, milliseconds since the Unix epoch.
    pub received_at_millis: i64,
    /// The host (and port) the client addressed, for URLs a service hands back (SQS's queue
    /// URLs), so they reach this server however the client reached it.
    pub host: Option<String>,
}

impl RequestContext {
    /// The account an access key acts in: a 12-digit key names the account itself (a common
    /// convention among local emulators), anything else is the default account.
    pub fn account_for_access_key(access_key_id: &str) -> String {
        if access_key_id.len() == 12 && access_key_id.bytes().all(|b| b.is_ascii_digit()) {
            access_key_id.to_owned()
        } else {
            DEFAULT_ACCOUNT_ID.to_owned()
        }
    }

    /// The context of work a service does on its own in `account` and `region` (an alarm
    /// evaluating, a delivery into another service's resource), at `now`.
    pub fn internal(account: &str, region: &str, now_millis: i64) -> Self {
        RequestContext {
            request_id: crate::ids::request_id(),
            account_id: account.to_owned(),
            region: region.to_owned(),
            principal: None,
            received_at_millis: now_millis,
            host: None,
        }
    }

    /// A context for unit tests and internal callers.
    pub fn for_tests() -> Self {
        RequestContext {
            request_id: crate::ids::request_id(),
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            principal: None,
            received_at_millis: 0,
            host: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_digit_keys_name_the_account() {
        assert_eq!(
            RequestContext::account_for_access_key("123456789012"),
            "123456789012"
        );
        assert_eq!(
            RequestContext::account_for_access_key("AKIAIOSFODNN7EXAMPLE"),
            DEFAULT_ACCOUNT_ID
        );
        assert_eq!(
            RequestContext::account_for_access_key("12345678901"),
            DEFAULT_ACCOUNT_ID
        );
        assert_eq!(
            RequestContext::account_for_access_key("12345678901a"),
            DEFAULT_ACCOUNT_ID
        );
    }
}
