//! Reading object data: a byte range of an object's segments, as a response body or chunk by
//! chunk, read from disk in bounded pieces (never the whole object in memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;
use lakebox_core::ServiceError;
use lakebox_service::Body;
use lakebox_service::body::full;
use tokio::sync::mpsc;

use crate::sse;
use crate::store::SegmentSource;

/// Objects up to this size are read in one go; larger ones are streamed.
const INLINE_MAX: u64 = 256 * 1024;
pub const CHUNK: u64 = 512 * 1024;
/// Chunks buffered ahead of the client: bounds memory per download to ~2 MiB.
const CHANNEL_DEPTH: usize = 4;

/// A part of a range read: from a file, or bytes already in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    File(PathBuf, u64, u64),
    /// Encrypted file: path, key, plaintext length of the whole file, plaintext offset, length.
    Sealed(PathBuf, [u8; 32], u64, u64, u64),
    Bytes(Bytes),
}

/// The pieces of `sources` covering `start .. start + len`.
pub fn plan(sources: &[SegmentSource], start: u64, len: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let (mut pos, end) = (0u64, start + len);
    for src in sources {
        let (seg_start, seg_end) = (pos, pos + src.len());
        pos = seg_end;
        if seg_end <= start || seg_start >= end {
            continue;
        }
        let from = start.max(seg_start) - seg_start;
        let to = end.min(seg_end) - seg_start;
        out.push(match src {
            SegmentSource::File(path, _) => Piece::File(path.clone(), from, to - from),
            SegmentSource::Sealed(path, total, key) => {
                Piece::Sealed(path.clone(), *key, *total, from, to - from)
            }
            SegmentSource::Inline(b) => Piece::Bytes(b.slice(from as usize..to as usize)),
        });
    }
    out
}

/// Feeds the pieces to `sink` in chunks of at most [`CHUNK`] bytes, in order; stops early when
/// `sink` returns `false`. Blocking: run it off the async workers.
pub fn for_each_chunk(
    pieces: Vec<Piece>,
    mut sink: impl FnMut(Bytes) -> std::io::Result<bool>,
) -> std::io::Result<()> {
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => {
                if !sink(b)? {
                    return Ok(());
                }
            }
            Piece::Sealed(path, key, total, from, len) => {
                // Decrypt the chunks covering [from, from + len) and keep the wanted bytes.
                let file = File::open(&path)?;
                let (chunk, sealed) = (sse::CHUNK as u64, (sse::CHUNK + sse::TAG) as u64);
                let end = from + len;
                let mut index = from / chunk;
                while index * chunk < end {
                    let plain_len = chunk.min(total - index * chunk);
                    let mut buf = vec![0u8; (plain_len + sse::TAG as u64) as usize];
                    file.read_exact_at(&mut buf, index * sealed)?;
                    let plain = sse::open(&key, index, &buf)?;
                    let lo = from.saturating_sub(index * chunk) as usize;
                    let hi = (end - index * chunk).min(plain_len) as usize;
                    if !sink(Bytes::copy_from_slice(&plain[lo..hi]))? {
                        return Ok(());
                    }
                    index += 1;
                }
            }
            Piece::File(path, mut offset, mut remaining) => {
                let file = File::open(&path)?;
                while remaining > 0 {
                    let n = remaining.min(CHUNK);
                    let mut buf = vec![0u8; n as usize];
                    file.read_exact_at(&mut buf, offset)?;
                    if !sink(Bytes::from(buf))? {
                        return Ok(());
                    }
                    offset += n;
                    remaining -= n;
                }
            }
        }
    }
    Ok(())
}

/// A body of `len` bytes from `start` in the object made of `sources`.
pub fn object_body(sources: &[SegmentSource], start: u64, len: u64) -> Result<Body, ServiceError> {
    let pieces = plan(sources, start, len);
    if len <= INLINE_MAX {
        let mut data = Vec::with_capacity(len as usize);
        for_each_chunk(pieces, |b| {
            data.extend_from_slice(&b);
            Ok(true)
        })
        .map_err(read_failed)?;
        return Ok(full(data));
    }
    Ok(lakebox_service::body::channel_body(chunks(pieces), Some(len)))
}

/// The pieces' bytes, chunk by chunk, read ahead by a blocking task (at most
/// [`CHANNEL_DEPTH`] chunks buffered); an `Err` ends the stream. Dropping the receiver stops
/// the reading.
pub fn chunks(pieces: Vec<Piece>) -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        // `false` from the sink means the reader went away.
        let result = for_each_chunk(pieces, |b| Ok(tx.blocking_send(Ok(b)).is_ok()));
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn read_failed(e: std::io::Error) -> ServiceError {
    crate::store::internal(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_ranges_across_segments() {
        let f = |n: &str, len| SegmentSource::File(PathBuf::from(n), len);
        let segs = vec![
            f("a", 10),
            SegmentSource::Inline(Bytes::from_static(b"01234")),
            f("c", 10),
        ];
        assert_eq!(plan(&segs, 0, 25).len(), 3);
        assert_eq!(
            plan(&segs, 8, 4),
            vec![
                Piece::File(PathBuf::from("a"), 8, 2),
                Piece::Bytes(Bytes::from_static(b"01"))
            ]
        );
        assert_eq!(plan(&segs, 15, 3), vec![Piece::File(PathBuf::from("c"), 0, 3)]);
        assert_eq!(plan(&segs, 24, 1), vec![Piece::File(PathBuf::from("c"), 9, 1)]);
    }
}
