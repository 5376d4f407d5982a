//! The first bytes a connection received, kept aside: a daemon refuses an unknown peer as soon
//! as it connects (SPEC §5), writing one error answer and closing before it reads the request.
//! The HTTP client may fail to send the request (the socket is closed) or drop that answer as
//! unsolicited; the copy lets the client report the daemon's reason instead.

use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Error;
use crate::protocol::ErrorResponse;

/// How much of the start of a connection is kept.
const KEEP: usize = 16 * 1024;

/// The first bytes received on one connection, and a copy of its descriptor to read what the
/// HTTP client never read (it stops when the request cannot be written).
pub(super) struct FirstBytes(
    Arc<Mutex<Vec<u8>>>,
    Option<Arc<std::os::unix::net::UnixStream>>,
);

impl FirstBytes {
    /// The daemon's error, when the connection started with an error answer.
    pub(super) fn refusal(&self) -> Option<Error> {
        let mut got = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut copy) = self.1.as_deref() {
            // Non-blocking (the descriptor's flags are shared with the async stream).
            let mut chunk = [0u8; 4096];
            while got.len() < KEEP {
                match std::io::Read::read(&mut copy, &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        }
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
    kept: Arc<Mutex<Vec<u8>>>,
}

impl<S: AsFd> Recording<S> {
    pub(super) fn new(inner: S) -> (Self, FirstBytes) {
        let copy = inner
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(|fd| Arc::new(std::os::unix::net::UnixStream::from(fd)));
        let kept = Arc::default();
        let first = FirstBytes(Arc::clone(&kept), copy);
        (Self { inner, kept }, first)
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
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
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
