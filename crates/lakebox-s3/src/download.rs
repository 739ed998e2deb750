//! Sending object data: a byte range of an object's segments as a response body, read from
//! disk in bounded chunks (never the whole object in memory).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use lakebox_core::ServiceError;
use lakebox_gateway::respond::full;
use lakebox_gateway::service::{Body, BoxError};
use tokio::sync::mpsc;

/// Objects up to this size are read in one go; larger ones are streamed.
const INLINE_MAX: u64 = 256 * 1024;
const CHUNK: u64 = 512 * 1024;
/// Chunks buffered ahead of the client: bounds memory per download to ~2 MiB.
const CHANNEL_DEPTH: usize = 4;

/// The parts of `segments` (file, length) covering `start .. start + len`.
fn plan(segments: &[(PathBuf, u64)], start: u64, len: u64) -> Vec<(PathBuf, u64, u64)> {
    let mut out = Vec::new();
    let (mut pos, end) = (0u64, start + len);
    for (path, seg_len) in segments {
        let (seg_start, seg_end) = (pos, pos + seg_len);
        pos = seg_end;
        if seg_end <= start || seg_start >= end {
            continue;
        }
        let from = start.max(seg_start) - seg_start;
        let to = end.min(seg_end) - seg_start;
        out.push((path.clone(), from, to - from));
    }
    out
}

fn read_range(path: &PathBuf, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// A body of `len` bytes from `start` in the object made of `segments`.
pub fn object_body(segments: &[(PathBuf, u64)], start: u64, len: u64) -> Result<Body, ServiceError> {
    let pieces = plan(segments, start, len);
    if len <= INLINE_MAX {
        let mut data = Vec::with_capacity(len as usize);
        for (path, offset, n) in &pieces {
            data.extend(read_range(path, *offset, *n).map_err(read_failed)?);
        }
        return Ok(full(data));
    }
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        for (path, mut offset, mut remaining) in pieces {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            while remaining > 0 {
                let n = remaining.min(CHUNK);
                let mut buf = vec![0u8; n as usize];
                if let Err(e) = file.read_exact_at(&mut buf, offset) {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return; // the client went away
                }
                offset += n;
                remaining -= n;
            }
        }
    });
    Ok(ChannelBody { rx, remaining: len }.boxed_unsync())
}

fn read_failed(e: std::io::Error) -> ServiceError {
    tracing::error!(error = %e, "could not read object data");
    ServiceError::internal(format!("could not read object data: {e}"))
}

struct ChannelBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_ranges_across_segments() {
        let segs = vec![
            (PathBuf::from("a"), 10),
            (PathBuf::from("b"), 5),
            (PathBuf::from("c"), 10),
        ];
        assert_eq!(plan(&segs, 0, 25).len(), 3);
        assert_eq!(
            plan(&segs, 8, 4),
            vec![(PathBuf::from("a"), 8, 2), (PathBuf::from("b"), 0, 2)]
        );
        assert_eq!(plan(&segs, 15, 3), vec![(PathBuf::from("c"), 0, 3)]);
        assert_eq!(plan(&segs, 24, 1), vec![(PathBuf::from("c"), 9, 1)]);
    }
}
