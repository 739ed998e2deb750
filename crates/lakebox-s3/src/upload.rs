//! Receiving object data: streams a request body to a blob file while computing its MD5 (the
//! ETag), the payload SHA-256 the client signed, and any flexible checksum, decoding
//! `aws-chunked` bodies on the way. Memory stays bounded by one body frame.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use http_body_util::BodyExt;
use lakebox_core::ServiceError;
use lakebox_service::Body;
use md5::Digest;

use crate::errors;
use crate::store::{INLINE_MAX, ObjectRecord, ObjectStore, Segment, StoredChecksum};

/// The largest single PUT or part S3 accepts.
pub const MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;
const MAX_CHUNK_LINE: usize = 4096;

/// An incremental flexible checksum.
pub enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    /// `algorithm` as AWS names it (`CRC32`, `crc32c`, …); `None` if unknown.
    pub fn new(algorithm: &str) -> Option<Self> {
        Some(match algorithm.to_ascii_uppercase().as_str() {
            "CRC32" => ChecksumHasher::Crc32(crc32fast::Hasher::new()),
            "CRC32C" => ChecksumHasher::Crc32c(0),
            "CRC64NVME" => ChecksumHasher::Crc64Nvme(crc64fast_nvme::Digest::new()),
            "SHA1" => ChecksumHasher::Sha1(sha1::Sha1::new()),
            "SHA256" => ChecksumHasher::Sha256(sha2::Sha256::new()),
            _ => return None,
        })
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            ChecksumHasher::Crc32(_) => "CRC32",
            ChecksumHasher::Crc32c(_) => "CRC32C",
            ChecksumHasher::Crc64Nvme(_) => "CRC64NVME",
            ChecksumHasher::Sha1(_) => "SHA1",
            ChecksumHasher::Sha256(_) => "SHA256",
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc32(h) => h.update(data),
            ChecksumHasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            ChecksumHasher::Crc64Nvme(d) => d.write(data),
            ChecksumHasher::Sha1(h) => h.update(data),
            ChecksumHasher::Sha256(h) => h.update(data),
        }
    }

    /// The checksum, base64-encoded as in `x-amz-checksum-*` headers.
    pub fn finish(self) -> String {
        let bytes: Vec<u8> = match self {
            ChecksumHasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            ChecksumHasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            ChecksumHasher::Crc64Nvme(d) => d.sum64().to_be_bytes().to_vec(),
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
            ChecksumHasher::Sha256(h) => h.finalize().to_vec(),
        };
        BASE64.encode(bytes)
    }
}

pub(crate) const CHECKSUM_ALGORITHMS: [&str; 5] = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"];

/// Which flexible checksum a request carries, and where its expected value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedChecksum {
    None,
    Header {
        algorithm: String,
        value: String,
    },
    /// Declared in `x-amz-trailer`; the value arrives after the aws-chunked body.
    Trailer {
        algorithm: String,
    },
}

pub fn expected_checksum(headers: &HeaderMap) -> Result<ExpectedChecksum, ServiceError> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(trailer) = h("x-amz-trailer") {
        let name = trailer.trim().to_ascii_lowercase();
        let alg = name
            .strip_prefix("x-amz-checksum-")
            .filter(|a| CHECKSUM_ALGORITHMS.contains(a))
            .ok_or_else(|| errors::invalid_argument("Invalid trailing header", "x-amz-trailer", trailer))?;
        return Ok(ExpectedChecksum::Trailer {
            algorithm: alg.to_ascii_uppercase(),
        });
    }
    let found: Vec<(&str, &str)> = CHECKSUM_ALGORITHMS
        .iter()
        .filter_map(|a| h(&format!("x-amz-checksum-{a}")).map(|v| (*a, v)))
        .collect();
    match found.as_slice() {
        [] => Ok(ExpectedChecksum::None),
        [(alg, value)] => Ok(ExpectedChecksum::Header {
            algorithm: alg.to_ascii_uppercase(),
            value: (*value).to_owned(),
        }),
        _ => Err(errors::invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd(u8),
    Trailer,
    Done,
}

/// Decodes `Content-Encoding: aws-chunked` bodies: `<hex size>[;chunk-signature=…]\r\n<data>\r\n`
/// … `0\r\n<trailer>:<value>\r\n\r\n`.
pub struct AwsChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// `x-amz-trailer-signature`, kept apart from the trailers it signs.
    trailer_signature: Option<String>,
    verify: Option<ChunkVerify>,
}

/// Checking `chunk-signature`s as chunks complete (signed streaming uploads with verification on).
struct ChunkVerify {
    signer: lakebox_protocol::sigv4::ChunkSigner,
    hasher: sha2::Sha256,
    claimed: String,
}

fn chunk_signature_mismatch() -> ServiceError {
    ServiceError::new(
        "SignatureDoesNotMatch",
        403,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

impl Default for AwsChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AwsChunkedDecoder {
    pub fn new() -> Self {
        AwsChunkedDecoder {
            state: ChunkState::Size,
            line: Vec::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            verify: None,
        }
    }

    /// A decoder that also checks every chunk's signature.
    pub fn verifying(signer: lakebox_protocol::sigv4::ChunkSigner) -> Self {
        AwsChunkedDecoder {
            verify: Some(ChunkVerify {
                signer,
                hasher: sha2::Sha256::new(),
                claimed: String::new(),
            }),
            ..Self::new()
        }
    }

    /// Compares the finished chunk's signature with the chain's.
    fn check_chunk(&mut self) -> Result<(), ServiceError> {
        if let Some(v) = self.verify.as_mut() {
            let hash = hex::encode(std::mem::replace(&mut v.hasher, sha2::Sha256::new()).finalize());
            if v.signer.next(&hash) != v.claimed.to_ascii_lowercase() {
                return Err(chunk_signature_mismatch());
            }
        }
        Ok(())
    }

    /// With verification on, trailing headers must be signed (`x-amz-trailer-signature`,
    /// chained from the final chunk), or a signed upload could have its checksum swapped.
    fn check_trailer(&mut self) -> Result<(), ServiceError> {
        let Some(v) = self.verify.as_mut() else {
            return Ok(());
        };
        if self.trailers.is_empty() && self.trailer_signature.is_none() {
            return Ok(());
        }
        let canonical: String = self.trailers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let expected = v.signer.trailer(&canonical);
        match &self.trailer_signature {
            Some(claimed) if claimed.to_ascii_lowercase() == expected => Ok(()),
            _ => Err(chunk_signature_mismatch()),
        }
    }

    fn bad(msg: &str) -> ServiceError {
        ServiceError::client("IncompleteBody", format!("Malformed aws-chunked body: {msg}"))
    }

    /// Takes a line (through `\n`) from `input` into `self.line`; true once complete.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<bool, ServiceError> {
        match input.iter().position(|b| *b == b'\n') {
            Some(i) => {
                self.line.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                Ok(true)
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_CHUNK_LINE {
                    return Err(Self::bad("chunk header too long"));
                }
                Ok(false)
            }
        }
    }

    /// Feeds body bytes; decoded data goes to `emit`.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        emit: &mut dyn FnMut(&[u8]) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    if self.take_line(&mut input)? {
                        let line = String::from_utf8_lossy(&self.line).into_owned();
                        let size_text = line.split(';').next().unwrap_or("").trim();
                        let size =
                            u64::from_str_radix(size_text, 16).map_err(|_| Self::bad("bad chunk size"))?;
                        self.line.clear();
                        if let Some(v) = self.verify.as_mut() {
                            v.claimed = line
                                .split(';')
                                .find_map(|p| p.trim().strip_prefix("chunk-signature="))
                                .ok_or_else(chunk_signature_mismatch)?
                                .trim()
                                .to_owned();
                        }
                        if size == 0 {
                            self.check_chunk()?;
                        }
                        self.state = if size == 0 {
                            ChunkState::Trailer
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                }
                ChunkState::Data(remaining) => {
                    let n = remaining.min(input.len() as u64) as usize;
                    if let Some(v) = self.verify.as_mut() {
                        v.hasher.update(&input[..n]);
                    }
                    emit(&input[..n])?;
                    input = &input[n..];
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd(0)
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd(seen) => {
                    let expected = [b'\r', b'\n'][seen as usize];
                    if input[0] != expected {
                        return Err(Self::bad("chunk data not followed by CRLF"));
                    }
                    input = &input[1..];
                    if seen == 1 {
                        self.check_chunk()?;
                    }
                    self.state = if seen == 1 {
                        ChunkState::Size
                    } else {
                        ChunkState::DataEnd(1)
                    };
                }
                ChunkState::Trailer => {
                    if self.take_line(&mut input)? {
                        if self.line.is_empty() {
                            self.check_trailer()?;
                            self.state = ChunkState::Done;
                        } else {
                            let line = String::from_utf8_lossy(&self.line).into_owned();
                            let (k, v) = line.split_once(':').ok_or_else(|| Self::bad("bad trailer"))?;
                            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
                            if k == "x-amz-trailer-signature" {
                                self.trailer_signature = Some(v);
                            } else {
                                self.trailers.push((k, v));
                            }
                            self.line.clear();
                        }
                    }
                }
                ChunkState::Done => {
                    if input.iter().all(|b| b.is_ascii_whitespace()) {
                        return Ok(());
                    }
                    return Err(Self::bad("data after the final chunk"));
                }
            }
        }
        Ok(())
    }

    /// Whether the body ended where it may: after the last chunk (a missing final blank line
    /// is tolerated, as AWS does).
    pub fn is_complete(&self) -> bool {
        self.state == ChunkState::Done || (self.state == ChunkState::Trailer && self.line.is_empty())
    }

    /// At the end of the body: it must be complete, and its trailer signed when verifying.
    pub fn finish(&mut self) -> Result<(), ServiceError> {
        if !self.is_complete() {
            return Err(errors::incomplete_body());
        }
        if self.state == ChunkState::Trailer {
            self.check_trailer()?;
            self.state = ChunkState::Done;
        }
        Ok(())
    }
}

/// What was received. File data is already committed; `inline` data is for the caller to
/// commit with the object's metadata.
pub struct ReceivedBlob {
    pub blob: String,
    pub size: u64,
    pub md5_hex: String,
    pub checksum: Option<StoredChecksum>,
    /// Inline data, as stored (sealed when encrypted).
    pub inline: Option<Vec<u8>>,
    pub encrypted: bool,
}

impl ReceivedBlob {
    /// A new single-blob object holding these bytes, with plain defaults for everything the
    /// caller sets afterwards (content headers, metadata, storage class, tags, encryption), and
    /// the inline data to commit with it.
    pub fn into_object(self, key: String, now_millis: i64) -> (ObjectRecord, Option<(String, Vec<u8>)>) {
        let inline = self.inline.map(|data| (self.blob.clone(), data));
        let record = ObjectRecord {
            key,
            size: self.size,
            etag: self.md5_hex,
            last_modified_millis: now_millis,
            content: Default::default(),
            user_metadata: Vec::new(),
            storage_class: "STANDARD".into(),
            checksum: self.checksum,
            segments: vec![Segment {
                blob: self.blob,
                len: self.size,
                inline: inline.is_some(),
                encrypted: self.encrypted,
            }],
            parts_count: None,
            parts: Vec::new(),
            tags: Vec::new(),
            version_id: None,
            delete_marker: false,
            version_seq: 0,
            restore: None,
            sse: None,
            lock: None,
            acl: None,
        };
        (record, inline)
    }
}

/// Where received bytes go: memory while the object may still be stored inline, then a blob
/// file (through an encryptor when the object is encrypted at rest).
enum Sink {
    Memory(Vec<u8>),
    File(
        String,
        lakebox_store::blob::BlobWriter,
        Option<crate::sse::Encryptor>,
    ),
}

impl Sink {
    fn write(
        &mut self,
        store: &ObjectStore,
        data: &[u8],
        inline_max: u64,
        encrypt: Option<crate::sse::KeySource>,
    ) -> Result<(), ServiceError> {
        if let Sink::Memory(buf) = self {
            if (buf.len() + data.len()) as u64 <= inline_max {
                buf.extend_from_slice(data);
                return Ok(());
            }
            let (id, writer) = store.new_blob()?;
            let encryptor = encrypt.map(|k| crate::sse::Encryptor::new(store.key_for(k, &id)));
            let buffered = std::mem::take(buf);
            *self = Sink::File(id, writer, encryptor);
            self.write_file(&buffered)?;
        }
        self.write_file(data)
    }

    fn write_file(&mut self, data: &[u8]) -> Result<(), ServiceError> {
        match self {
            Sink::File(_, w, Some(e)) => e
                .push(data, &mut |sealed| w.write_all(sealed))
                .map_err(write_failed),
            Sink::File(_, w, None) => w.write_all(data).map_err(write_failed),
            Sink::Memory(_) => unreachable!("only called for files"),
        }
    }
}

fn write_failed(e: std::io::Error) -> ServiceError {
    crate::store::internal(e)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the body is `aws-chunked`.
fn is_aws_chunked(headers: &HeaderMap) -> bool {
    header(headers, "content-encoding").is_some_and(|v| v.split(',').any(|e| e.trim() == "aws-chunked"))
        || header(headers, "x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"))
}

/// The `Content-Encoding` to store: the client's, without the transport's `aws-chunked`.
pub fn stored_content_encoding(headers: &HeaderMap) -> Option<String> {
    let v = header(headers, "content-encoding")?;
    let kept: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|e| *e != "aws-chunked" && !e.is_empty())
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// Streams `body` into a new blob, verifies every digest the client sent, and commits the blob
/// durably; bodies up to [`INLINE_MAX`] are kept in memory instead when `allow_inline`. On any
/// failure the blob is discarded.
pub async fn receive(
    store: &Arc<ObjectStore>,
    headers: &HeaderMap,
    mut body: Body,
    allow_inline: bool,
    encrypt: Option<crate::sse::KeySource>,
    chunk_signer: Option<lakebox_protocol::sigv4::ChunkSigner>,
) -> Result<ReceivedBlob, ServiceError> {
    let chunked = is_aws_chunked(headers);
    let declared_len = if chunked {
        header(headers, "x-amz-decoded-content-length").and_then(|v| v.parse::<u64>().ok())
    } else {
        header(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
    };
    if let Some(n) = declared_len
        && n > MAX_UPLOAD_BYTES
    {
        return Err(errors::entity_too_large(n, MAX_UPLOAD_BYTES));
    }
    let content_md5 = match header(headers, "content-md5") {
        Some(v) => match BASE64.decode(v.trim()) {
            Ok(d) if d.len() == 16 => Some(d),
            _ => return Err(errors::invalid_digest()),
        },
        None => None,
    };
    let claimed_sha256 = header(headers, "x-amz-content-sha256")
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase);
    let expected = expected_checksum(headers)?;
    let mut checksum = match &expected {
        ExpectedChecksum::None => {
            header(headers, "x-amz-sdk-checksum-algorithm").and_then(ChecksumHasher::new)
        }
        ExpectedChecksum::Header { algorithm, .. } | ExpectedChecksum::Trailer { algorithm } => {
            ChecksumHasher::new(algorithm)
        }
    };

    let inline_max = if allow_inline { INLINE_MAX } else { 0 };
    let mut out = Sink::Memory(Vec::new());
    let mut md5 = md5::Md5::new();
    let mut sha256 = claimed_sha256.as_ref().map(|_| sha2::Sha256::new());
    let mut size: u64 = 0;
    let mut decoder = chunked.then(|| match chunk_signer {
        Some(signer) => AwsChunkedDecoder::verifying(signer),
        None => AwsChunkedDecoder::new(),
    });
    {
        let mut sink = |data: &[u8]| -> Result<(), ServiceError> {
            size += data.len() as u64;
            if size > MAX_UPLOAD_BYTES {
                return Err(errors::entity_too_large(size, MAX_UPLOAD_BYTES));
            }
            md5.update(data);
            if let Some(c) = checksum.as_mut() {
                c.update(data);
            }
            out.write(store, data, inline_max, encrypt)
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| errors::incomplete_body())?;
            let Ok(data) = frame.into_data() else { continue };
            if let Some(h) = sha256.as_mut() {
                // The signed payload hash covers the bytes as sent.
                h.update(&data);
            }
            match decoder.as_mut() {
                Some(d) => d.feed(&data, &mut sink)?,
                None => sink(&data)?,
            }
        }
    }
    if let Some(d) = decoder.as_mut() {
        d.finish()?;
    }
    if declared_len.is_some_and(|n| n != size) {
        return Err(errors::incomplete_body());
    }
    let md5_bytes = md5.finalize();
    if let Some(expected) = content_md5
        && expected.as_slice() != md5_bytes.as_slice()
    {
        return Err(errors::bad_digest("Content-MD5"));
    }
    if let (Some(claimed), Some(h)) = (claimed_sha256, sha256) {
        let computed = hex::encode(h.finalize());
        if computed != claimed {
            return Err(errors::sha256_mismatch(&claimed, &computed));
        }
    }
    let stored = match checksum {
        Some(hasher) => {
            let algorithm = hasher.algorithm();
            let computed = hasher.finish();
            let given = match &expected {
                ExpectedChecksum::Header { value, .. } => Some(value.clone()),
                ExpectedChecksum::Trailer { algorithm } => {
                    let name = format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase());
                    let trailers = decoder
                        .as_ref()
                        .map(|d| d.trailers.as_slice())
                        .unwrap_or_default();
                    let v = trailers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
                    if v.is_none() {
                        return Err(errors::invalid_request(format!(
                            "The trailing header {name} was not sent."
                        )));
                    }
                    v
                }
                ExpectedChecksum::None => None,
            };
            if let Some(given) = given
                && given != computed
            {
                return Err(errors::bad_digest(algorithm));
            }
            Some(StoredChecksum {
                algorithm: algorithm.to_owned(),
                value: computed,
                kind: "FULL_OBJECT".into(),
            })
        }
        None => None,
    };
    let (blob, inline) = match out {
        Sink::Memory(data) if allow_inline => {
            let id = store.new_blob_id();
            let stored = if let Some(k) = encrypt {
                crate::sse::seal_all(store.key_for(k, &id), &data)
            } else {
                data
            };
            (id, Some(stored))
        }
        Sink::Memory(data) => {
            // Parts are always files (an empty part, say).
            let (id, mut writer) = store.new_blob()?;
            let stored = if let Some(k) = encrypt {
                crate::sse::seal_all(store.key_for(k, &id), &data)
            } else {
                data
            };
            writer.write_all(&stored).map_err(write_failed)?;
            commit_file(writer).await?;
            (id, None)
        }
        Sink::File(id, mut writer, encryptor) => {
            if let Some(e) = encryptor {
                e.finish(&mut |sealed| writer.write_all(sealed))
                    .map_err(write_failed)?;
            }
            commit_file(writer).await?;
            (id, None)
        }
    };
    Ok(ReceivedBlob {
        blob,
        size,
        md5_hex: hex::encode(md5_bytes),
        checksum: stored,
        inline,
        encrypted: encrypt.is_some(),
    })
}

/// fsync + rename + directory fsync block: keep them off the async workers.
async fn commit_file(writer: lakebox_store::blob::BlobWriter) -> Result<(), ServiceError> {
    tokio::task::spawn_blocking(move || writer.commit())
        .await
        .map_err(crate::store::internal)?
        .map_err(crate::store::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: usize) -> Result<(Vec<u8>, AwsChunkedDecoder), ServiceError> {
        let mut d = AwsChunkedDecoder::new();
        let mut out = Vec::new();
        for piece in input.chunks(split) {
            d.feed(piece, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })?;
        }
        Ok((out, d))
    }

    #[test]
    fn decodes_signed_and_trailer_forms_at_any_split() {
        let signed = b"5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=00\r\n\r\n";
        let trailer = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for split in [1, 2, 3, 7, 1000] {
            let (out, d) = decode_all(signed, split).unwrap();
            assert_eq!(out, b"hello world");
            assert!(d.is_complete());
            let (out, d) = decode_all(trailer, split).unwrap();
            assert_eq!(out, b"hello world");
            assert!(d.is_complete());
            assert_eq!(
                d.trailers,
                vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
            );
        }
    }

    #[test]
    fn rejects_malformed_chunks() {
        assert!(decode_all(b"zz\r\nhello\r\n", 100).is_err());
        assert!(decode_all(b"5\r\nhelloXX0\r\n\r\n", 100).is_err());
        let (_, d) = decode_all(b"5\r\nhel", 100).unwrap();
        assert!(!d.is_complete());
    }

    #[test]
    fn checksums_match_aws_examples() {
        let mut c = ChecksumHasher::new("CRC32").unwrap();
        c.update(b"hello world");
        assert_eq!(c.finish(), "DUoRhQ=="); // what boto3 sent for b"hello world"
        let mut c = ChecksumHasher::new("sha256").unwrap();
        c.update(b"");
        assert_eq!(c.finish(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        let mut c = ChecksumHasher::new("CRC32C").unwrap();
        c.update(b"123456789");
        assert_eq!(c.finish(), BASE64.encode(0xe306_9283u32.to_be_bytes()));
        let mut c = ChecksumHasher::new("CRC64NVME").unwrap();
        c.update(b"123456789");
        assert_eq!(c.finish(), BASE64.encode(0xae8b_1486_0a79_9888u64.to_be_bytes()));
        assert!(ChecksumHasher::new("MD4").is_none());
    }

    #[test]
    fn content_encoding_without_transport_coding() {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", "aws-chunked,gzip".parse().unwrap());
        assert_eq!(stored_content_encoding(&h).as_deref(), Some("gzip"));
        h.insert("content-encoding", "aws-chunked".parse().unwrap());
        assert_eq!(stored_content_encoding(&h), None);
    }
}
