//! Compressed text files: which codec (from the name, then the magic bytes) and how much of
//! a sample decompresses. Crawlers read only the start of a file, so decoding stops quietly
//! at the end of a truncated sample.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Bzip2,
    Snappy,
    Zstd,
}

impl Codec {
    /// The `compressionType` table parameter Glue writes.
    pub fn glue_name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Snappy => "snappy",
            Codec::Zstd => "zstd",
        }
    }

    pub fn detect(key: &str, head: &[u8]) -> Codec {
        let lower = key.to_ascii_lowercase();
        if lower.ends_with(".gz") || lower.ends_with(".gzip") || head.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if lower.ends_with(".bz2") || head.starts_with(b"BZh") {
            Codec::Bzip2
        } else if lower.ends_with(".zst")
            || lower.ends_with(".zstd")
            || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        {
            Codec::Zstd
        } else if lower.ends_with(".snappy") || head.starts_with(b"\xff\x06\x00\x00sNaPpY") {
            Codec::Snappy
        } else {
            Codec::None
        }
    }
}

/// Up to `limit` bytes of the decompressed start of `data`.
pub fn decompress_prefix(codec: Codec, data: &[u8], limit: usize) -> Vec<u8> {
    match codec {
        Codec::None => data[..data.len().min(limit)].to_vec(),
        Codec::Gzip => read_some(flate2::read::MultiGzDecoder::new(data), limit),
        Codec::Bzip2 => read_some(bzip2::read::MultiBzDecoder::new(data), limit),
        Codec::Zstd => match zstd::stream::read::Decoder::new(data) {
            Ok(d) => read_some(d, limit),
            Err(_) => Vec::new(),
        },
        Codec::Snappy => snappy_prefix(data, limit),
    }
}

/// Reads until `limit`, the end, or the first error (a truncated sample).
fn read_some(mut r: impl Read, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < limit {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out.truncate(limit);
    out
}

/// Snappy comes framed (the `sNaPpY` stream format) or in Hadoop's block format
/// (big-endian lengths before raw snappy blocks), which Hive and Spark write.
fn snappy_prefix(data: &[u8], limit: usize) -> Vec<u8> {
    if data.starts_with(b"\xff\x06\x00\x00sNaPpY") {
        return read_some(snap::read::FrameDecoder::new(data), limit);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    while pos + 8 <= data.len() && out.len() < limit {
        let raw_len = be(&data[pos..]);
        pos += 4;
        let mut produced = 0;
        while produced < raw_len && pos + 4 <= data.len() {
            let len = be(&data[pos..]);
            pos += 4;
            if pos + len > data.len() {
                return out;
            }
            match snap::raw::Decoder::new().decompress_vec(&data[pos..pos + len]) {
                Ok(block) => {
                    produced += block.len();
                    out.extend_from_slice(&block);
                }
                Err(_) => return out,
            }
            pos += len;
        }
    }
    // Neither framing: perhaps one raw snappy block.
    if out.is_empty()
        && let Ok(block) = snap::raw::Decoder::new().decompress_vec(data)
    {
        out = block;
    }
    out.truncate(limit);
    out
}
