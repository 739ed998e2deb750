//! Server-side encryption at rest (SSE-S3, also used for objects that ask for SSE-KMS until
//! Lakebox has KMS): object data is sealed with AES-256-GCM in 64 KiB chunks, so a range read
//! decrypts only the chunks it touches and any tampering with the files is detected.
//!
//! Keys: one 256-bit master key in `<data dir>/s3/sse-s3.key` (created on first start, never
//! leaves the data directory); each blob's key is HMAC-SHA256(master, blob id), and chunk `i`'s
//! nonce is `i`, unique because every blob has its own key.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const CHUNK: usize = 64 * 1024;
pub const TAG: usize = 16;

#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Loads the key, or creates it (atomically, durably) on first start.
    pub fn load_or_create(dir: &Path) -> std::io::Result<MasterKey> {
        let path = dir.join("sse-s3.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => Ok(MasterKey(bytes.try_into().expect("32 bytes"))),
            Ok(_) => Err(std::io::Error::other(format!(
                "{} is not a 32-byte key",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = hex::decode(lakebox_core::ids::random_hex(64)).expect("hex");
                lakebox_store::blob::write_atomic(&path, &bytes)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(MasterKey(bytes.try_into().expect("32 bytes")))
            }
            Err(e) => Err(e),
        }
    }

    /// The key of one blob.
    pub fn blob_key(&self, blob_id: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"lakebox-sse-s3:");
        mac.update(blob_id.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Where an object's keys come from: Lakebox's master key (SSE-S3 / SSE-KMS), or the key the
/// client sends with every request (SSE-C), which Lakebox never stores.
#[derive(Clone, Copy)]
pub enum KeySource {
    Lakebox,
    Customer([u8; 32]),
}

/// The key of one blob sealed with a customer's key.
pub fn customer_blob_key(customer: &[u8; 32], blob_id: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(customer).expect("any key length");
    mac.update(b"lakebox-sse-c:");
    mac.update(blob_id.as_bytes());
    mac.finalize().into_bytes().into()
}

fn nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

/// Size on disk of `plain` bytes of encrypted data.
pub fn sealed_len(plain: u64) -> u64 {
    plain + plain.div_ceil(CHUNK as u64) * TAG as u64
}

/// Seals one chunk.
pub fn seal(key: &[u8; 32], index: u64, plain: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .encrypt(Nonce::from_slice(&nonce(index)), plain)
        .expect("AES-GCM encryption cannot fail")
}

/// Opens one chunk; an error means the data was altered.
pub fn open(key: &[u8; 32], index: u64, sealed: &[u8]) -> std::io::Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(&nonce(index)), sealed)
        .map_err(|_| std::io::Error::other("encrypted object data failed authentication"))
}

/// Encrypts a stream: plaintext in, sealed chunks out.
pub struct Encryptor {
    key: [u8; 32],
    buf: Vec<u8>,
    index: u64,
}

impl Encryptor {
    pub fn new(key: [u8; 32]) -> Self {
        Encryptor {
            key,
            buf: Vec::with_capacity(CHUNK),
            index: 0,
        }
    }

    pub fn push(
        &mut self,
        mut data: &[u8],
        out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == CHUNK {
                out(&seal(&self.key, self.index, &self.buf))?;
                self.index += 1;
                self.buf.clear();
            }
        }
        Ok(())
    }

    pub fn finish(mut self, out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            out(&seal(&self.key, self.index, &self.buf))?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Seals a whole (small) buffer.
pub fn seal_all(key: [u8; 32], plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sealed_len(plain.len() as u64) as usize);
    let mut e = Encryptor::new(key);
    let mut sink = |b: &[u8]| {
        out.extend_from_slice(b);
        Ok(())
    };
    e.push(plain, &mut sink).expect("memory");
    e.finish(&mut sink).expect("memory");
    out
}

/// Opens a whole (small) sealed buffer.
pub fn open_all(key: &[u8; 32], sealed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, chunk) in sealed.chunks(CHUNK + TAG).enumerate() {
        out.extend(open(key, i as u64, chunk)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_chunk_boundaries() {
        let key = [7u8; 32];
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal_all(key, &plain);
            assert_eq!(sealed.len() as u64, sealed_len(len as u64));
            assert_eq!(open_all(&key, &sealed).unwrap(), plain);
        }
    }

    #[test]
    fn tampering_and_wrong_keys_are_detected() {
        let sealed = seal_all([1u8; 32], b"secret data");
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(open_all(&[1u8; 32], &bad).is_err());
        assert!(open_all(&[2u8; 32], &sealed).is_err());
        let master = MasterKey([9u8; 32]);
        assert_ne!(master.blob_key("a"), master.blob_key("b"));
    }
}
