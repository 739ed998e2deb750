//! Message signatures as SNS makes them: the canonical "name\nvalue\n" string of a message's
//! fields, signed with RSA (PKCS #1 v1.5) over SHA-1 (SignatureVersion 1) or SHA-256 (2), and
//! a certificate for the key served at the message's SigningCertURL, so subscribers that verify
//! SNS signatures accept Lakebox's.
//!
//! The key is made once per data directory (RSA 2048) and kept; the certificate is derived from
//! it (self-signed), so its URL — named after its hash — stays the same across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use num_bigint::BigUint;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use sha2::Digest;

use crate::montgomery::Modulus;

const KEY_FILE: &str = "signing-key.der";
/// The certificate's subject and issuer (self-signed).
const COMMON_NAME: &str = "sns.lakebox.localhost";

pub struct Signer {
    key: CrtKey,
    /// How many signatures are made at once: two a core. Delivery handles up to 256 messages
    /// side by side; unbounded, their signatures took as many blocking threads, and the
    /// threads answering requests got a sliver of the CPU among them (Publish p99 ~185 ms under
    /// a fan-out load). One a core left the cores partly idle between signatures (delivery
    /// 20% slower); two a core delivers within ~7% of unbounded, with Publish p99 ~13 ms.
    permits: tokio::sync::Semaphore,
    /// The certificate, PEM-encoded, and the file name it is served under.
    pub cert_pem: String,
    pub cert_name: String,
}

/// Which hash a topic signs with (its `SignatureVersion` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V2,
}

impl SignatureVersion {
    pub fn of(attr: Option<&str>) -> Self {
        match attr {
            Some("2") => SignatureVersion::V2,
            _ => SignatureVersion::V1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

impl Signer {
    /// Loads the key kept in `dir`, or makes (and durably keeps) one.
    pub fn load_or_create(dir: &Path) -> Result<Signer, String> {
        let path: PathBuf = dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(der) => RsaPrivateKey::from_pkcs8_der(&der)
                .map_err(|e| format!("{} is not an RSA key: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .map_err(|e| format!("cannot make a signing key: {e}"))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| format!("cannot encode the signing key: {e}"))?;
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                lakebox_store::blob::write_atomic(&path, der.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                key
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Self::from_key(key)
    }

    fn from_key(key: RsaPrivateKey) -> Result<Signer, String> {
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("cannot encode the public key: {e}"))?;
        let key = CrtKey::of(&key)?;
        let cert = self_signed_certificate(spki.as_bytes(), &key);
        let digest = sha2::Sha256::digest(&cert);
        let cert_name = format!(
            "SimpleNotificationService-{}.pem",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Signer {
            key,
            permits: tokio::sync::Semaphore::new(2 * cores),
            cert_pem: pem("CERTIFICATE", &cert),
            cert_name,
        })
    }

    /// [`Signer::sign`] on a blocking thread, at most two a core at a time: a signature is
    /// over a millisecond of arithmetic, too long to hold a thread that answers requests.
    pub async fn sign_off_runtime(
        self: &Arc<Self>,
        version: SignatureVersion,
        text: String,
    ) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let signer = self.clone();
        tokio::task::spawn_blocking(move || signer.sign(version, &text))
            .await
            .map_err(|e| format!("signing failed: {e}"))
    }

    /// The base64 signature of `text`. Over a millisecond of CPU: callers on the async
    /// runtime use [`Signer::sign_off_runtime`].
    pub fn sign(&self, version: SignatureVersion, text: &str) -> String {
        let sig = match version {
            SignatureVersion::V1 => self
                .key
                .sign(SHA1_DIGEST_INFO, &sha1::Sha1::digest(text.as_bytes())),
            SignatureVersion::V2 => self
                .key
                .sign(SHA256_DIGEST_INFO, &sha2::Sha256::digest(text.as_bytes())),
        };
        B64.encode(sig)
    }
}

/// The DER prefix of PKCS #1's DigestInfo for each hash (RFC 8017, section 9.2).
const SHA1_DIGEST_INFO: &[u8] = &[
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];

/// The private key in the form RSA's Chinese-remainder signing uses. The `rsa` crate makes and
/// stores keys; its own signing takes 3.5 ms a signature here, num-bigint's Montgomery
/// arithmetic ~1.5 ms, fixed-size limbs (`montgomery.rs`) ~1 ms, and every message SNS
/// delivers is signed.
struct CrtKey {
    p: BigUint,
    q: BigUint,
    /// The primes as fixed-size Montgomery moduli (a 2048-bit key's, which Lakebox makes);
    /// `None` for other sizes, which num-bigint exponentiates.
    p_mod: Option<Modulus>,
    q_mod: Option<Modulus>,
    dp: BigUint,
    dq: BigUint,
    qinv: BigUint,
    /// The modulus's length in bytes (the signature's length).
    len: usize,
}

impl CrtKey {
    fn of(key: &RsaPrivateKey) -> Result<CrtKey, String> {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let big = |x: &rsa::BigUint| BigUint::from_bytes_be(&x.to_bytes_be());
        let (Some(dp), Some(dq), [p, q]) = (key.dp(), key.dq(), key.primes()) else {
            return Err("the signing key is not a two-prime RSA key".into());
        };
        let (p, q) = (big(p), big(q));
        // q⁻¹ mod p, by Fermat (p is prime).
        let qinv = q.modpow(&(&p - 2u32), &p);
        Ok(CrtKey {
            dp: big(dp),
            dq: big(dq),
            qinv,
            p_mod: Modulus::new(&p),
            q_mod: Modulus::new(&q),
            p,
            q,
            len: key.size(),
        })
    }

    /// RSASSA-PKCS1-v1_5: `00 01 FF… 00 DigestInfo hash`, raised to the private exponent.
    fn sign(&self, digest_info: &[u8], hash: &[u8]) -> Vec<u8> {
        let mut em = vec![0xFF; self.len];
        em[0] = 0x00;
        em[1] = 0x01;
        let t = self.len - digest_info.len() - hash.len();
        em[t - 1] = 0x00;
        em[t..t + digest_info.len()].copy_from_slice(digest_info);
        em[t + digest_info.len()..].copy_from_slice(hash);
        let m = BigUint::from_bytes_be(&em);
        let pow = |modulus: &Option<Modulus>, exp: &BigUint, prime: &BigUint| match modulus {
            Some(fixed) => fixed.pow(&m, exp),
            None => m.modpow(exp, prime),
        };
        let m1 = pow(&self.p_mod, &self.dp, &self.p);
        let m2 = pow(&self.q_mod, &self.dq, &self.q);
        let diff = (&m1 + &self.p - (&m2 % &self.p)) % &self.p;
        let h = (&self.qinv * diff) % &self.p;
        let s = m2 + h * &self.q;
        let bytes = s.to_bytes_be();
        let mut out = vec![0u8; self.len - bytes.len()];
        out.extend(bytes);
        out
    }
}

/// The string SNS signs: each present field as "Name\nvalue\n", in SNS's order (alphabetical,
/// which `fields` must already be).
pub fn canonical(fields: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        if let Some(v) = value {
            out.push_str(name);
            out.push('\n');
            out.push_str(v);
            out.push('\n');
        }
    }
    out
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// ---- a minimal X.509 certificate, in DER ------------------------------------------------

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// sha256WithRSAEncryption (1.2.840.113549.1.1.11), parameters NULL.
fn sha256_with_rsa() -> Vec<u8> {
    let oid = der(0x06, &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B]);
    seq(&[&oid, &[0x05, 0x00]])
}

/// `CN=<name>`.
fn name(cn: &str) -> Vec<u8> {
    let attr = seq(&[&der(0x06, &[0x55, 0x04, 0x03]), &der(0x0C, cn.as_bytes())]);
    seq(&[&der(0x31, &attr)])
}

fn self_signed_certificate(spki: &[u8], key: &CrtKey) -> Vec<u8> {
    // A positive serial derived from the key, so the certificate is the same every start.
    let mut serial = vec![0x01];
    serial.extend_from_slice(&sha2::Sha256::digest(spki)[..15]);
    let version = der(0xA0, &der(0x02, &[0x02]));
    let validity = seq(&[&der(0x17, b"200101000000Z"), &der(0x17, b"491231235959Z")]);
    let tbs = seq(&[
        &version,
        &der(0x02, &serial),
        &sha256_with_rsa(),
        &name(COMMON_NAME),
        &validity,
        &name(COMMON_NAME),
        spki,
    ]);
    let signature = key.sign(SHA256_DIGEST_INFO, &sha2::Sha256::digest(&tbs));
    let mut bits = vec![0x00];
    bits.extend(signature);
    seq(&[&tbs, &sha256_with_rsa(), &der(0x03, &bits)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::VerifyingKey;
    use rsa::signature::Verifier;

    #[test]
    fn signatures_verify_and_the_key_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.cert_name, b.cert_name);
        assert!(a.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let text = canonical(&[
            ("Message", Some("hi")),
            ("Subject", None),
            ("Type", Some("Notification")),
        ]);
        assert_eq!(text, "Message\nhi\nType\nNotification\n");
        let der = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        let public = RsaPrivateKey::from_pkcs8_der(&der).unwrap().to_public_key();
        let sig = B64.decode(b.sign(SignatureVersion::V2, &text)).unwrap();
        let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
        VerifyingKey::<sha2::Sha256>::new(public.clone())
            .verify(text.as_bytes(), &sig)
            .unwrap();
        let sig = B64.decode(a.sign(SignatureVersion::V1, &text)).unwrap();
        let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
        VerifyingKey::<sha1::Sha1>::new(public)
            .verify(text.as_bytes(), &sig)
            .unwrap();
    }
}
