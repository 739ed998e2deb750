//! Authentication policy: accept anyone (the local-emulator default) or verify SigV4 (and S3's
//! legacy SigV2) against configured credentials.

use std::collections::HashMap;
use std::sync::Arc;

use lakebox_core::{Clock, Principal};
use lakebox_protocol::Timestamp;
use lakebox_protocol::sigv2;
use lakebox_protocol::sigv4::{self, AuthError, Authorization, RequestParts};

/// Decides whether a request's signature is acceptable.
pub struct Authenticator {
    /// `None`: verification off. `Some`: access key → secret.
    credentials: Option<HashMap<String, String>>,
    clock: Arc<dyn Clock>,
}

impl Authenticator {
    /// Accepts every request; identity still comes from the signature's access key.
    pub fn accept_all(clock: Arc<dyn Clock>) -> Self {
        Authenticator {
            credentials: None,
            clock,
        }
    }

    /// Verifies every request against these `(access key, secret)` pairs.
    pub fn verifying(credentials: impl IntoIterator<Item = (String, String)>, clock: Arc<dyn Clock>) -> Self {
        Authenticator {
            credentials: Some(credentials.into_iter().collect()),
            clock,
        }
    }

    /// For a verified `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` request: what its chunk signatures
    /// must be. `None` when verification is off (nothing is checked then) or not applicable.
    pub fn chunk_signer(&self, auth: &Authorization) -> Option<sigv4::ChunkSigner> {
        let creds = self.credentials.as_ref()?;
        match auth {
            Authorization::SigV4(signed) => creds
                .get(&signed.scope.access_key_id)
                .map(|secret| sigv4::ChunkSigner::new(signed, secret)),
            _ => None,
        }
    }

    /// What S3 checks POST-form (browser upload) signatures with: these credentials.
    pub fn form_auth(&self) -> lakebox_protocol::form_auth::FormAuth {
        match &self.credentials {
            None => lakebox_protocol::form_auth::FormAuth::accept_all(),
            Some(c) => lakebox_protocol::form_auth::FormAuth::verifying(c.clone()),
        }
    }

    pub fn is_verifying(&self) -> bool {
        self.credentials.is_some()
    }

    /// Checks the request; on success returns who signed it (`None` when anonymous and
    /// verification is off). `parts` is only built when a signature must be checked;
    /// `s3_virtual_host_bucket` is part of what SigV2 signs.
    pub fn authenticate<'a>(
        &self,
        auth: &Authorization,
        s3_virtual_host_bucket: Option<&str>,
        parts: impl FnOnce(bool) -> RequestParts<'a>,
    ) -> Result<Option<Principal>, AuthError> {
        let principal = |k: &str| Principal {
            access_key_id: k.to_owned(),
        };
        let Some(creds) = &self.credentials else {
            return Ok(match auth {
                Authorization::Anonymous => None,
                Authorization::SigV4(s) => Some(principal(&s.scope.access_key_id)),
                Authorization::Legacy(s) => Some(principal(&s.access_key_id)),
            });
        };
        match auth {
            Authorization::Anonymous => Err(AuthError::Missing),
            Authorization::Legacy(signed) => {
                let key = &signed.access_key_id;
                let secret = creds
                    .get(key)
                    .ok_or_else(|| AuthError::UnknownAccessKey(key.clone()))?;
                let now = Timestamp::from_millis(self.clock.now_millis());
                sigv2::verify(signed, &parts(true), s3_virtual_host_bucket, secret, now)?;
                Ok(Some(principal(key)))
            }
            Authorization::SigV4(signed) => {
                let key = &signed.scope.access_key_id;
                let secret = creds
                    .get(key)
                    .ok_or_else(|| AuthError::UnknownAccessKey(key.clone()))?;
                let now = Timestamp::from_millis(self.clock.now_millis());
                sigv4::verify(signed, &parts(signed.presigned_expires.is_some()), secret, now)?;
                Ok(Some(principal(key)))
            }
        }
    }
}
