//! Identifier generation in the shapes AWS uses.

use uuid::Uuid;

/// A request id as the JSON and query services send it (`x-amzn-RequestId`): a UUID.
pub fn request_id() -> String {
    Uuid::new_v4().to_string()
}

/// S3's `x-amz-request-id` is 16 upper-case hex characters.
pub fn s3_request_id(request_id: &str) -> String {
    let hex: String = request_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    hex.to_ascii_uppercase()
}

/// Random lower-case hex string of `len` characters.
pub fn random_hex(len: usize) -> String {
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        out.push_str(&Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(request_id().len(), 36);
        let s3 = s3_request_id(&request_id());
        assert_eq!(s3.len(), 16);
        assert!(s3.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert_eq!(random_hex(40).len(), 40);
        assert_ne!(random_hex(8), random_hex(8));
    }
}
