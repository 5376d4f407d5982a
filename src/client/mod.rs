//! The socket client: [`AsyncClient`] speaks API v1 to `tresord` over its Unix socket
//! (hyper 1, HTTP/1.1), [`Client`] is the blocking facade the CLI uses.
//!
//! Method names follow [`crate::Store`]'s; errors come back as the same [`Error`] variants
//! the daemon had, rebuilt from the error body's code and context.
//!
//! ```no_run
//! use tresor::Api; // the named operations (`get_value`, `list`, `set`, …)
//! let client = tresor::Client::new("/run/user/1000/tresor/tresord.sock")?;
//! let v = client.get_value("github-pat", None, None)?;
//! assert!(!v.value.is_empty());
//! # Ok::<(), tresor::Error>(())
//! ```

mod blocking;
mod download;
mod early;

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;

pub use blocking::Client;

use crate::Passphrase;
use crate::error::{Error, Result};
use crate::ops::{self, Endpoint, encode_request, session};
use crate::protocol::{API_HEADER, API_VERSION, ErrorResponse, SecretText, Status};
use crate::types::SecretBytes;

/// Whether something accepts connections on `socket` (a daemon, or at least a listener). The
/// daemon uses it to tell a live socket from a stale one; the CLI to choose daemon or file.
pub fn daemon_answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

pub use crate::ops::encode_component;

type Sender = SendRequest<Full<Bytes>>;

/// A kept-alive connection idle longer than this is not reused: the daemon closes idle
/// connections after its header timeout (5 s), and a request racing that close would fail.
const IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A copy of a GET request (no body, no effect), to send again on a new connection.
fn clone_request(req: &hyper::Request<Full<Bytes>>) -> Option<hyper::Request<Full<Bytes>>> {
    if req.method() != Method::GET {
        return None;
    }
    let mut copy = hyper::Request::builder()
        .method(Method::GET)
        .uri(req.uri().clone())
        .body(Full::new(Bytes::new()))
        .ok()?;
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// An async client of one daemon. Requests on one client are sent one at a time over one
/// kept-alive connection (reconnecting when the daemon closed it); use several clients for
/// concurrency.
pub struct AsyncClient {
    socket: PathBuf,
    token: Option<SecretText>,
    conn: tokio::sync::Mutex<Option<(Sender, std::time::Instant)>>,
    /// A connection made before the runtime existed (by [`crate::Client::connect`]), used for
    /// the first request so that probing for a daemon costs no second connection.
    preconnected: std::sync::Mutex<Option<std::os::unix::net::UnixStream>>,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient")
            .field("socket", &self.socket)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl AsyncClient {
    /// A client of the daemon at `socket` (nothing is connected yet).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            token: None,
            conn: tokio::sync::Mutex::new(None),
            preconnected: std::sync::Mutex::new(None),
        }
    }

    /// Uses `stream` (already connected to the socket) for the first request.
    pub(crate) fn with_stream(self, stream: std::os::unix::net::UnixStream) -> Self {
        *self
            .preconnected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stream);
        self
    }

    /// Sends `Authorization: Bearer TOKEN` with every request (to pick an agent).
    ///
    /// # Errors
    /// `InvalidArgument` when the token is not printable ASCII.
    pub fn with_token(mut self, token: &SecretBytes) -> Result<Self> {
        let t = token
            .as_str()
            .filter(|t| t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| Error::invalid("token", "a bearer token is printable ASCII"))?;
        self.token = Some(SecretText::new(t.to_owned()));
        Ok(self)
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A new connection, with the first bytes it receives kept aside (an early refusal).
    async fn connect(&self) -> Result<(Sender, Option<early::FirstBytes>)> {
        let early = self
            .preconnected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let stream = match early {
            Some(s) => s
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(s)),
            None => tokio::net::UnixStream::connect(&self.socket).await,
        };
        let stream = stream.map_err(|e| {
            Error::internal(
                format!("cannot connect to tresord at {}", self.socket.display()),
                e,
            )
        })?;
        let (stream, copy) = early::Recording::new(stream);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::internal("http handshake with tresord failed", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, Some(copy)))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes)> {
        let mut guard = self.conn.lock().await;
        let mut reused = guard
            .take()
            .filter(|(_, used)| used.elapsed() < IDLE_REUSE)
            .map(|(s, _)| s);
        if let Some(s) = reused.as_mut()
            && s.ready().await.is_err()
        {
            reused = None;
        }
        let was_reused = reused.is_some();
        let (mut sender, copy) = match reused {
            Some(s) => (s, None),
            None => self.connect().await?,
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "tresord")
            .header(API_HEADER, API_VERSION.to_string());
        if let Some(t) = &self.token {
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", t.expose()),
            );
        }
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::internal("cannot build the request", e))?;
        let failed = |e| Error::internal("request to tresord failed", e);
        let retry = was_reused.then(|| clone_request(&req));
        let resp = match sender.try_send_request(req).await {
            Ok(r) => r,
            // The daemon refused this peer and closed before the request went out.
            Err(_) if let Some(refused) = copy.and_then(|c| c.refusal()) => return Err(refused),
            // The daemon closed the kept-alive connection as this request went out. When the
            // request was not sent, or reading it has no effect (GET), sending it again on a
            // new connection is safe.
            Err(mut e) => match (e.take_message(), retry) {
                (Some(req), _) | (None, Some(Some(req))) => {
                    let (mut again, copy) = self.connect().await?;
                    let r = again.send_request(req).await;
                    sender = again;
                    match r {
                        Ok(r) => r,
                        Err(e) => {
                            return Err(copy.and_then(|c| c.refusal()).unwrap_or(failed(e)));
                        }
                    }
                }
                _ => return Err(failed(e.into_error())),
            },
        };
        let (parts, body) = resp.into_parts();
        let version = parts.headers.get(API_HEADER).and_then(|v| v.to_str().ok());
        if version != Some(API_VERSION.to_string().as_str()) {
            return Err(Error::Internal {
                message: format!(
                    "the daemon speaks API version {}, this client speaks {API_VERSION}",
                    version.unwrap_or("unknown")
                ),
                source: None,
            });
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| Error::internal("reading the daemon's response failed", e))?
            .to_bytes();
        *guard = Some((sender, std::time::Instant::now()));
        Ok((parts.status, bytes))
    }

    /// Sends one request of API v1 and decodes its answer.
    ///
    /// # Errors
    /// The daemon's error, rebuilt as the same [`Error`] variant; `Internal` when the daemon
    /// cannot be reached or answers something that does not parse.
    pub async fn call<E: Endpoint>(&self, req: E) -> Result<E::Output> {
        let (target, body) = encode_request(&req)?;
        drop(req);
        let method = match E::METHOD {
            ops::Method::Get => Method::GET,
            ops::Method::Put => Method::PUT,
            ops::Method::Post => Method::POST,
            ops::Method::Delete => Method::DELETE,
        };
        let (status, bytes) = self.send(method, &target, body).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal("the daemon's response does not parse", e));
        }
        match serde_json::from_slice::<ErrorResponse>(&bytes) {
            Ok(e) => Err(e.error.into_error()),
            Err(_) => Err(Error::Internal {
                message: format!("the daemon answered {status} without an error body"),
                source: None,
            }),
        }
    }

    /// `GET /v1/status`.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub async fn status(&self) -> Result<Status> {
        self.call(session::Status {}).await
    }

    /// `POST /v1/unlock`.
    ///
    /// # Errors
    /// `WrongPassphrase`; `TooManyRequests` while backing off; `InvalidArgument` for a
    /// passphrase that is not UTF-8 (JSON carries text).
    pub async fn unlock(&self, passphrase: &Passphrase) -> Result<Status> {
        let text = std::str::from_utf8(passphrase.expose())
            .map_err(|_| Error::invalid("passphrase", "a passphrase sent to tresord is UTF-8"))?;
        let passphrase = SecretText::new(text.to_owned());
        self.call(session::Unlock { passphrase }).await
    }

    /// `POST /v1/lock`.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub async fn lock(&self) -> Result<Status> {
        self.call(session::Lock {}).await
    }

    /// `GET /v1/openapi.json`, as text.
    ///
    /// # Errors
    /// As [`AsyncClient::call`].
    pub async fn openapi(&self) -> Result<String> {
        let (status, bytes) = self.send(Method::GET, ops::OPENAPI_PATH, None).await?;
        if !status.is_success() {
            return Err(Error::Internal {
                message: format!("the daemon answered {status}"),
                source: None,
            });
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::internal("the OpenAPI document is not UTF-8", e))
    }
}
