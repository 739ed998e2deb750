//! Closing connections that sit idle, on HTTP/2 as on HTTP/1.
//!
//! hyper's header timeout lets an HTTP/1 connection go when it idles between requests, but an
//! HTTP/2 connection that has sent its preface and nothing since stays open for ever: a few
//! hundred of them would hold the server's file descriptors. [`IdleIo`] wraps a connection's
//! socket and ends its input (as if the client had closed it) once nothing has been read *and*
//! no request or response is in flight for the idle timeout. A response that streams for
//! minutes (a Kinesis subscription) keeps its connection, whether or not the client says
//! anything meanwhile.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use lakebox_service::Body;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// What one connection is doing: requests in flight and when it was last active.
pub struct Activity {
    /// Set once reading the socket met its end (or an error): the client is gone.
    closed: AtomicBool,
    closed_notify: Notify,
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `epoch` of the last byte read or the last request finished.
    last_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    fn mark_closed(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.closed_notify.notify_waiters();
        }
    }

    /// Resolves once the client has closed the connection (or it failed): work still running
    /// for it can stop, nobody will read its answer.
    pub async fn client_gone(&self) {
        loop {
            let notified = self.closed_notify.notified();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn idle_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Counts a request in flight from now until its response body has been sent (or
    /// dropped): see [`InFlight::answer`].
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight on a connection.
pub struct InFlight(Arc<Activity>);

impl InFlight {
    /// The response, still counted in flight while its body is sent.
    pub fn answer(self, response: hyper::Response<Body>) -> hyper::Response<Body> {
        response.map(|inner| Tracked { inner, _guard: self }.boxed_unsync())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that holds its request's place in flight.
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = lakebox_service::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket that reads as closed once the connection has been idle too long.
pub struct IdleIo<T> {
    io: T,
    activity: Arc<Activity>,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    pub fn new(io: T, activity: Arc<Activity>, timeout: Duration) -> Self {
        let timer = Box::pin(tokio::time::sleep(timeout));
        IdleIo {
            io,
            activity,
            timeout,
            timer,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.activity.touch();
                } else if buf.remaining() > 0 {
                    self.activity.mark_closed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                self.activity.mark_closed();
                Poll::Ready(Err(e))
            }
            // The timer stays armed at a deadline no later than the real one (activity only
            // moves it later), so requests cost no timer work: only when it fires is the real
            // deadline looked up, and the timer moved there if it has not come yet.
            Poll::Pending => loop {
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                if self.activity.in_flight.load(Ordering::Relaxed) > 0 {
                    // Busy answering: the idle clock starts when the last response is done.
                    self.activity.touch();
                }
                let deadline = self.activity.idle_since() + self.timeout;
                if Instant::now() >= deadline {
                    tracing::debug!("closing a connection idle for {:?}", self.timeout);
                    return Poll::Ready(Ok(())); // reads as end of input
                }
                self.timer.as_mut().reset(deadline);
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
