//! Signatures of S3 POST forms (browser uploads): the form carries a base64 policy document and
//! a signature of that document — SigV4 (`x-amz-credential`, `x-amz-signature`: HMAC-SHA256
//! with the signing key of the credential's scope) or SigV2 (`AWSAccessKeyId`, `signature`:
//! base64 HMAC-SHA1 with the secret) — instead of a signed request. The gateway hands S3 a
//! [`FormAuth`] holding the server's credentials.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};

use crate::sigv4::{AuthError, CredentialScope, signing_key};

/// Verifies form signatures; with no credentials configured, accepts any (identity from the
/// access key, as for signed requests).
#[derive(Clone, Default)]
pub struct FormAuth {
    secrets: Option<Arc<HashMap<String, String>>>,
}

/// Who signed a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormSigner {
    pub access_key_id: String,
    /// SigV4's credential scope region (SigV2 forms have none).
    pub region: Option<String>,
}

fn mismatch() -> AuthError {
    AuthError::SignatureMismatch {
        canonical_request: String::new(),
        string_to_sign: String::new(),
    }
}

impl FormAuth {
    pub fn accept_all() -> Self {
        FormAuth { secrets: None }
    }

    pub fn verifying(secrets: HashMap<String, String>) -> Self {
        FormAuth {
            secrets: Some(Arc::new(secrets)),
        }
    }

    /// Whether signatures are checked (credentials configured).
    pub fn is_verifying(&self) -> bool {
        self.secrets.is_some()
    }

    fn secret(&self, key: &str) -> Result<Option<&str>, AuthError> {
        match &self.secrets {
            None => Ok(None),
            Some(s) => s
                .get(key)
                .map(|v| Some(v.as_str()))
                .ok_or_else(|| AuthError::UnknownAccessKey(key.to_owned())),
        }
    }

    /// A SigV4 form: `credential` is `AKID/date/region/s3/aws4_request`, `signature` the hex
    /// HMAC of the base64 `policy`.
    pub fn verify_v4(
        &self,
        credential: &str,
        policy: &str,
        signature: &str,
    ) -> Result<FormSigner, AuthError> {
        let scope = CredentialScope::parse(credential)?;
        if let Some(secret) = self.secret(&scope.access_key_id)? {
            let key = signing_key(secret, &scope);
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key");
            mac.update(policy.as_bytes());
            let expected = hex::encode(mac.finalize().into_bytes());
            if !constant_time_eq(
                expected.as_bytes(),
                signature.trim().to_ascii_lowercase().as_bytes(),
            ) {
                return Err(mismatch());
            }
        }
        Ok(FormSigner {
            access_key_id: scope.access_key_id,
            region: Some(scope.region),
        })
    }

    /// A SigV2 form: `signature` is the base64 HMAC-SHA1 of the base64 `policy`.
    pub fn verify_v2(
        &self,
        access_key: &str,
        policy: &str,
        signature: &str,
    ) -> Result<FormSigner, AuthError> {
        if let Some(secret) = self.secret(access_key)? {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
            mac.update(policy.as_bytes());
            let expected = B64.encode(mac.finalize().into_bytes());
            if !constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()) {
                return Err(mismatch());
            }
        }
        Ok(FormSigner {
            access_key_id: access_key.to_owned(),
            region: None,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v2_form_signatures_verify() {
        let auth = FormAuth::verifying(HashMap::from([("AKID".to_owned(), "secret".to_owned())]));
        let policy = B64.encode(br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#);
        let credential = "AKID/20260101/us-east-1/s3/aws4_request";
        let scope = CredentialScope::parse(credential).unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&signing_key("secret", &scope)).unwrap();
        mac.update(policy.as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            auth.verify_v4(credential, &policy, &sig).unwrap().access_key_id,
            "AKID"
        );
        assert!(matches!(
            auth.verify_v4(credential, &policy, "00"),
            Err(AuthError::SignatureMismatch { .. })
        ));
        assert!(matches!(
            auth.verify_v4("OTHER/20260101/us-east-1/s3/aws4_request", &policy, &sig),
            Err(AuthError::UnknownAccessKey(_))
        ));
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"secret").unwrap();
        mac.update(policy.as_bytes());
        let sig2 = B64.encode(mac.finalize().into_bytes());
        assert!(auth.verify_v2("AKID", &policy, &sig2).is_ok());
        assert!(auth.verify_v2("AKID", &policy, "bad").is_err());
        assert!(FormAuth::accept_all().verify_v2("anyone", &policy, "bad").is_ok());
    }
}
