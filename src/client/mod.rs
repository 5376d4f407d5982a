//! The socket client: [`AsyncClient`] speaks API v1 to `tresord` over its Unix socket
//! (hyper 1, HTTP/1.1), [`Client`] is the blocking facade the CLI uses.
//!
//! Method names follow [`crate::Store`]'s; errors come back as the same [`Error`] variants
//! the daemon had, rebuilt from the error body's code and context.
//!
//! ```no_run
//! let client = tresor::Client::new("/run/user/1000/tresor/tresord.sock")?;
//! let v = client.get_value("github-pat", None, None)?;
//! assert!(!v.value.is_empty());
//! # Ok::<(), tresor::Error>(())
//! ```

mod blocking;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use blocking::Client;

use crate::error::{Error, Result};
use crate::protocol::{
    API_HEADER, API_VERSION, AuditList, CheckRequest, Deleted, EnvItem, EnvRequest, EnvResponse,
    ErrorResponse, PrincipalList, PrincipalOp, PrincipalResponse, RollbackRequest, SecretList,
    SecretText, SetBody, Status, UnlockRequest, ValueQuery, ValueResponse, decode_map,
};
use crate::types::{
    AuditQuery, AuditRecord, CheckResult, ListFilter, Scope, SecretBytes, SecretMeta, SecretValue,
    SetRequest, VerifyReport, VersionInfo,
};
use crate::types::{Grant, Passphrase, Principal, PrincipalSpec};

/// Whether something accepts connections on `socket` (a daemon, or at least a listener). The
/// daemon uses it to tell a live socket from a stale one; the CLI to choose daemon or file.
pub fn daemon_answers(socket: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so that a secret name
/// with `/` stays one path segment.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = String::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str(k);
            q.push('=');
            q.push_str(&encode_component(v));
        }
    }
    q
}

fn secret_path(name: &str, suffix: &str) -> String {
    format!("/v1/secrets/{}{suffix}", encode_component(name))
}

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

    async fn connect(&self) -> Result<Sender> {
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
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::internal("http handshake with tresord failed", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
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
        let mut sender = match reused {
            Some(s) => s,
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
            // The daemon closed the kept-alive connection as this request went out. When the
            // request was not sent, or reading it has no effect (GET), sending it again on a
            // new connection is safe.
            Err(mut e) => match (e.take_message(), retry) {
                (Some(req), _) | (None, Some(Some(req))) => {
                    sender = self.connect().await?;
                    sender.send_request(req).await.map_err(failed)?
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

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::internal("cannot encode the request", e))?;
        let (status, bytes) = self.send(method, path, body).await?;
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

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<Status> {
        self.get("/v1/status").await
    }

    /// `POST /v1/unlock`.
    ///
    /// # Errors
    /// `WrongPassphrase`; `TooManyRequests` while backing off; `InvalidArgument` for a
    /// passphrase that is not UTF-8 (JSON carries text).
    pub async fn unlock(&self, passphrase: &Passphrase) -> Result<Status> {
        let text = std::str::from_utf8(passphrase.expose())
            .map_err(|_| Error::invalid("passphrase", "a passphrase sent to tresord is UTF-8"))?;
        let body = UnlockRequest {
            passphrase: SecretText::new(text.to_owned()),
        };
        self.call(Method::POST, "/v1/unlock", Some(&body)).await
    }

    /// `POST /v1/lock`.
    pub async fn lock(&self) -> Result<Status> {
        self.call(Method::POST, "/v1/lock", None::<&()>).await
    }

    /// `GET /v1/secrets`: metadata the caller may see, sorted by scope and name.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        let q = query(&[
            ("scope", filter.scope.as_ref().map(ToString::to_string)),
            ("type", filter.secret_type.map(|t| t.as_str().to_owned())),
            ("integration", filter.integration.clone()),
            ("q", filter.query.clone()),
        ]);
        let l: SecretList = self.get(&format!("/v1/secrets{q}")).await?;
        Ok(l.secrets)
    }

    /// `GET /v1/secrets/{name}`: metadata and versions.
    pub async fn show(&self, name: &str, scope: Option<&Scope>) -> Result<SecretMeta> {
        let q = query(&[("scope", scope.map(ToString::to_string))]);
        self.get(&secret_path(name, &q)).await
    }

    /// The kept versions, oldest first (from `show`).
    pub async fn versions(&self, name: &str, scope: Option<&Scope>) -> Result<Vec<VersionInfo>> {
        Ok(self.show(name, scope).await?.versions)
    }

    /// `GET /v1/secrets/{name}/value`: audited value read.
    pub async fn get_value(
        &self,
        name: &str,
        scope: Option<&Scope>,
        version: Option<u64>,
    ) -> Result<SecretValue> {
        self.get_value_with(
            name,
            &ValueQuery {
                scope: scope.cloned(),
                version,
                field: None,
            },
        )
        .await
    }

    /// `GET /v1/secrets/{name}/value` with every option (`field` returns one field as the
    /// value).
    pub async fn get_value_with(&self, name: &str, q: &ValueQuery) -> Result<SecretValue> {
        let qs = query(&[
            ("scope", q.scope.as_ref().map(ToString::to_string)),
            ("version", q.version.map(|v| v.to_string())),
            ("field", q.field.clone()),
        ]);
        let r: ValueResponse = self.get(&secret_path(name, &format!("/value{qs}"))).await?;
        r.into_value()
    }

    /// `PUT /v1/secrets/{name}`: create, or write a new version.
    pub async fn set(&self, name: &str, req: &SetRequest) -> Result<SecretMeta> {
        let body = SetBody::from_request(req);
        self.call(Method::PUT, &secret_path(name, ""), Some(&body))
            .await
    }

    /// `DELETE /v1/secrets/{name}`.
    ///
    /// # Errors
    /// `Conflict` with the references when grants name it and `force` is off.
    pub async fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> Result<()> {
        let q = query(&[
            ("scope", scope.map(ToString::to_string)),
            ("force", force.then(|| "true".to_owned())),
        ]);
        let _: Deleted = self
            .call(Method::DELETE, &secret_path(name, &q), None::<&()>)
            .await?;
        Ok(())
    }

    /// `POST /v1/secrets/{name}/rollback`: re-publishes version `to` as a new version.
    pub async fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> Result<SecretMeta> {
        let body = RollbackRequest {
            to,
            scope: scope.cloned(),
        };
        self.call(Method::POST, &secret_path(name, "/rollback"), Some(&body))
            .await
    }

    /// `POST /v1/check`.
    pub async fn check(&self, names: &[String]) -> Result<CheckResult> {
        let body = CheckRequest {
            required: names.to_vec(),
        };
        self.call(Method::POST, "/v1/check", Some(&body)).await
    }

    /// `POST /v1/env`: variable → value for `run` (each read audited).
    pub async fn env(&self, items: &[EnvItem]) -> Result<BTreeMap<String, SecretBytes>> {
        let body = EnvRequest {
            secrets: items.to_vec(),
        };
        let r: EnvResponse = self.call(Method::POST, "/v1/env", Some(&body)).await?;
        decode_map("env", &r.env, &r.env_base64)
    }

    /// `GET /v1/audit`: matching records, oldest first.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let p = q.clone();
        let qs = query(&[
            ("secret", p.secret),
            ("principal", p.principal),
            ("action", p.action.map(|a| a.as_str().to_owned())),
            ("outcome", p.outcome.map(|o| o.to_string())),
            ("since", p.since.map(|t| t.to_string())),
            ("until", p.until.map(|t| t.to_string())),
            ("limit", p.limit.map(|l| l.to_string())),
            ("after_seq", p.after_seq.map(|s| s.to_string())),
        ]);
        let l: AuditList = self.get(&format!("/v1/audit{qs}")).await?;
        Ok(l.records)
    }

    /// `POST /v1/audit/verify`.
    pub async fn audit_verify(&self) -> Result<VerifyReport> {
        self.call(Method::POST, "/v1/audit/verify", None::<&()>)
            .await
    }

    /// `GET /v1/principals`: every principal and team.
    pub async fn principals(&self) -> Result<Vec<Principal>> {
        let l: PrincipalList = self.get("/v1/principals").await?;
        Ok(l.principals)
    }

    /// `GET /v1/principals/{name}`.
    pub async fn principal_get(&self, name: &str) -> Result<Principal> {
        self.get(&format!("/v1/principals/{}", encode_component(name)))
            .await
    }

    /// `PUT /v1/principals/{name}` with one operation.
    pub async fn principal_put(&self, name: &str, op: &PrincipalOp) -> Result<PrincipalResponse> {
        let path = format!("/v1/principals/{}", encode_component(name));
        self.call(Method::PUT, &path, Some(op)).await
    }

    /// `DELETE /v1/principals/{name}`: removes a principal or team.
    pub async fn principal_remove(&self, name: &str) -> Result<()> {
        let path = format!("/v1/principals/{}", encode_component(name));
        let _: Deleted = self.call(Method::DELETE, &path, None::<&()>).await?;
        Ok(())
    }

    /// Adds a user or agent; returns it and its bearer token when one was asked for.
    pub async fn principal_add(
        &self,
        spec: &PrincipalSpec,
    ) -> Result<(Principal, Option<SecretBytes>)> {
        let op = PrincipalOp::Add {
            role: spec.role,
            uid: spec.uid,
            gid: spec.gid,
            token: spec.token,
        };
        let r = self.principal_put(&spec.name, &op).await?;
        Ok((r.principal, r.token.map(|t| t.to_secret_bytes())))
    }

    /// Adds a grant to `name`.
    pub async fn grant(&self, name: &str, grant: &Grant) -> Result<Principal> {
        let op = PrincipalOp::Grant {
            pattern: grant.pattern.clone(),
            scope: grant.scope.clone(),
            expires: grant.expires,
        };
        Ok(self.principal_put(name, &op).await?.principal)
    }

    /// Removes the grants of `name` with this pattern.
    pub async fn revoke(&self, name: &str, pattern: &str) -> Result<Principal> {
        let op = PrincipalOp::Revoke {
            pattern: pattern.to_owned(),
        };
        Ok(self.principal_put(name, &op).await?.principal)
    }

    /// Creates a team.
    pub async fn team_add(&self, team: &str) -> Result<Principal> {
        Ok(self
            .principal_put(team, &PrincipalOp::TeamAdd)
            .await?
            .principal)
    }

    /// Adds `member` to `team`.
    pub async fn team_join(&self, team: &str, member: &str) -> Result<Principal> {
        let op = PrincipalOp::TeamJoin {
            member: member.to_owned(),
        };
        Ok(self.principal_put(team, &op).await?.principal)
    }

    /// Removes `member` from `team`.
    pub async fn team_leave(&self, team: &str, member: &str) -> Result<Principal> {
        let op = PrincipalOp::TeamLeave {
            member: member.to_owned(),
        };
        Ok(self.principal_put(team, &op).await?.principal)
    }

    /// `GET /v1/openapi.json`, as text.
    pub async fn openapi(&self) -> Result<String> {
        let (status, bytes) = self.send(Method::GET, "/v1/openapi.json", None).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_segment() {
        assert_eq!(encode_component("ci/aws.key"), "ci%2Faws.key");
        assert_eq!(encode_component("team:x"), "team%3Ax");
        assert_eq!(
            query(&[("scope", Some("user:bob".into())), ("q", None)]),
            "?scope=user%3Abob"
        );
    }
}
