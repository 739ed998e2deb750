//! Request and response bodies: the one boxed body type, whole and channel-fed bodies, and
//! reading a body within a limit (refusing oversized ones before reading them).

use bytes::Bytes;
use http_body::Body as HttpBody;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of streamed requests and responses.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body holding all of `body`.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response, as Lakebox's own routes answer (`/_lakebox/…`).
pub fn json_response(status: http::StatusCode, v: &serde_json::Value) -> http::Response<Body> {
    let mut r = http::Response::new(full(serde_json::to_vec(v).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A response body fed by a channel: each message is the next chunk, an `Err` aborts the
/// response, and the body ends when the sender is dropped. With `len`, the size is declared.
pub fn channel_body(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>, len: Option<u64>) -> Body {
    ChannelBody { rx, remaining: len }.boxed_unsync()
}

struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: Option<u64>,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                if let Some(r) = self.remaining.as_mut() {
                    *r = r.saturating_sub(b.len() as u64);
                }
                Poll::Ready(Some(Ok(http_body::Frame::data(b))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.remaining {
            Some(n) => http_body::SizeHint::with_exact(n),
            None => http_body::SizeHint::default(),
        }
    }
}

#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: by its `Content-Length`, or while reading a chunked body.
    TooLarge { limit: u64 },
    /// The client went away or sent a broken body.
    Read(BoxError),
}

/// Collects a body of at most `limit` bytes. A `Content-Length` over the limit is refused
/// without reading anything; a chunked body is cut off as soon as it passes the limit.
pub async fn read_limited<B>(body: B, content_length: Option<u64>, limit: u64) -> Result<Bytes, BodyError>
where
    B: HttpBody<Data = Bytes> + Send,
    B::Error: Into<BoxError>,
{
    if content_length.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge { limit })
            } else {
                Err(BodyError::Read(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::Full;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A chunked body with no declared length.
    struct Chunks(VecDeque<Bytes>);

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn limits() {
        let ok = read_limited(Full::new(Bytes::from_static(b"abc")), Some(3), 3)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"abc");
        let declared = read_limited(Full::new(Bytes::from_static(b"abc")), Some(1 << 40), 3).await;
        assert!(matches!(declared, Err(BodyError::TooLarge { limit: 3 })));
        let chunks = Chunks(VecDeque::from(vec![
            Bytes::from_static(b"ab"),
            Bytes::from_static(b"cd"),
        ]));
        assert!(matches!(
            read_limited(chunks, None, 3).await,
            Err(BodyError::TooLarge { .. })
        ));
        let chunks = Chunks(VecDeque::from(vec![
            Bytes::from_static(b"ab"),
            Bytes::from_static(b"c"),
        ]));
        assert_eq!(&read_limited(chunks, None, 3).await.unwrap()[..], b"abc");
    }
}
