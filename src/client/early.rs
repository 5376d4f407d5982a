//! The first bytes a connection received, kept aside: a daemon refuses an unknown peer as soon
//! as it connects (SPEC §5), writing one error answer and closing before it reads the request.
//! The HTTP client may fail to send the request (the socket is closed) or drop that answer as
//! unsolicited; the copy lets the client report the daemon's reason instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Error;
use crate::protocol::ErrorResponse;

/// How much of the start of a connection is kept.
const KEEP: usize = 16 * 1024;

/// The first bytes received on one connection.
#[derive(Clone, Default)]
pub(super) struct FirstBytes(Arc<Mutex<Vec<u8>>>);

impl FirstBytes {
    /// The daemon's error, when the connection started with an error answer.
    pub(super) fn refusal(&self) -> Option<Error> {
        let got = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let at = got.windows(4).position(|w| w == b"\r\n\r\n")?;
        let body = got.get(at + 4..)?;
        let mut de = serde_json::Deserializer::from_slice(body);
        let e: ErrorResponse = serde::Deserialize::deserialize(&mut de).ok()?;
        Some(e.error.into_error())
    }
}

/// A stream that copies the first [`KEEP`] bytes it reads into a [`FirstBytes`].
pub(super) struct Recording<S> {
    inner: S,
    first: FirstBytes,
}

impl<S> Recording<S> {
    pub(super) fn new(inner: S) -> (Self, FirstBytes) {
        let first = FirstBytes::default();
        (
            Self {
                inner,
                first: first.clone(),
            },
            first,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh = buf.filled().get(before..).unwrap_or_default();
        if !fresh.is_empty() {
            let mut kept = self.first.0.lock().unwrap_or_else(PoisonError::into_inner);
            let room = KEEP.saturating_sub(kept.len());
            kept.extend_from_slice(&fresh[..fresh.len().min(room)]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
