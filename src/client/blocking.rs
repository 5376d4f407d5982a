//! The blocking facade over [`AsyncClient`]: a current-thread tokio runtime inside, so that a
//! synchronous program (the CLI) connects, sends one request and exits in about a
//! millisecond.

use std::path::PathBuf;

use super::AsyncClient;
use crate::Passphrase;
use crate::error::{Error, Result};
use crate::ops::{Api, Endpoint, Operation};
use crate::protocol::Status;
use crate::types::{Channel, SecretBytes};

/// A blocking client of `tresord`. Must not be used from inside an async runtime (use
/// [`AsyncClient`] there).
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
    inner: AsyncClient,
}

impl Client {
    /// A client of the daemon at `socket` (connects on the first request).
    ///
    /// # Errors
    /// `Internal` when the runtime cannot be built.
    pub fn new(socket: impl Into<PathBuf>) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::internal("cannot start the client runtime", e))?;
        Ok(Self {
            rt,
            inner: AsyncClient::new(socket),
        })
    }

    /// Connects to the daemon at `socket` now: `None` when nothing listens there. The
    /// connection made here carries the first request (a CLI probing for a daemon pays for one
    /// connection, not two).
    ///
    /// # Errors
    /// `Internal` when the runtime cannot be built.
    pub fn connect(socket: impl Into<PathBuf>) -> Result<Option<Self>> {
        let socket = socket.into();
        let Ok(stream) = std::os::unix::net::UnixStream::connect(&socket) else {
            return Ok(None);
        };
        let mut c = Self::new(socket)?;
        c.inner = c.inner.with_stream(stream);
        Ok(Some(c))
    }

    /// Sends `Authorization: Bearer TOKEN` with every request.
    ///
    /// # Errors
    /// `InvalidArgument` when the token is not printable ASCII.
    pub fn with_token(self, token: &SecretBytes) -> Result<Self> {
        Ok(Self {
            rt: self.rt,
            inner: self.inner.with_token(token)?,
        })
    }

    /// The async client inside.
    pub fn inner(&self) -> &AsyncClient {
        &self.inner
    }
}

impl Client {
    /// Sends one request of API v1 (see [`AsyncClient::call`]).
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub fn call<E: Endpoint>(&self, req: E) -> Result<E::Output> {
        self.rt.block_on(self.inner.call(req))
    }

    /// `GET /v1/status`.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub fn status(&self) -> Result<Status> {
        self.rt.block_on(self.inner.status())
    }

    /// `POST /v1/unlock`.
    ///
    /// # Errors
    /// As [`AsyncClient::unlock`].
    pub fn unlock(&self, passphrase: &Passphrase) -> Result<Status> {
        self.rt.block_on(self.inner.unlock(passphrase))
    }

    /// `POST /v1/lock`.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub fn lock(&self) -> Result<Status> {
        self.rt.block_on(self.inner.lock())
    }

    /// `GET /v1/openapi.json`, as text.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub fn openapi(&self) -> Result<String> {
        self.rt.block_on(self.inner.openapi())
    }

    /// `GET /v1/backup`: writes a copy of the sealed store file to `out`; returns its length.
    ///
    /// # Errors
    /// As [`AsyncClient::backup`].
    pub fn backup(&self, out: &mut (dyn std::io::Write + Send)) -> Result<u64> {
        self.rt.block_on(self.inner.backup(out))
    }
}

/// Every operation over the socket; the daemon maps the peer to a principal and enforces
/// policy.
impl Api for Client {
    fn call<O: Operation>(&self, op: O) -> Result<O::Output> {
        self.rt.block_on(self.inner.call(op))
    }

    fn channel(&self) -> Channel {
        Channel::Socket
    }

    fn whoami(&self) -> Result<Option<String>> {
        Ok(self.status()?.principal)
    }
}
