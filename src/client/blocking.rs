//! The blocking facade over [`AsyncClient`]: a current-thread tokio runtime inside, so that a
//! synchronous program (the CLI) connects, sends one request and exits in about a
//! millisecond.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::AsyncClient;
use crate::error::{Error, Result};
use crate::protocol::{EnvItem, PrincipalOp, PrincipalResponse, Status, ValueQuery};
use crate::types::{
    AuditQuery, AuditRecord, CheckResult, ListFilter, Scope, SecretBytes, SecretMeta, SecretValue,
    SetRequest, VerifyReport, VersionInfo,
};
use crate::types::{Grant, Passphrase, Principal, PrincipalSpec};

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

macro_rules! blocking {
    ($( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Client {
            $(
                $(#[$m])*
                pub fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    self.rt.block_on(self.inner.$name($($arg),*))
                }
            )*
        }
    };
}

blocking! {
    /// `GET /v1/status`.
    fn status(&self) -> Status;
    /// `POST /v1/unlock`.
    fn unlock(&self, passphrase: &Passphrase) -> Status;
    /// `POST /v1/lock`.
    fn lock(&self) -> Status;
    /// Metadata the caller may see, sorted by scope and name.
    fn list(&self, filter: &ListFilter) -> Vec<SecretMeta>;
    /// Metadata and versions of one secret.
    fn show(&self, name: &str, scope: Option<&Scope>) -> SecretMeta;
    /// The kept versions, oldest first.
    fn versions(&self, name: &str, scope: Option<&Scope>) -> Vec<VersionInfo>;
    /// An audited value read.
    fn get_value(&self, name: &str, scope: Option<&Scope>, version: Option<u64>) -> SecretValue;
    /// An audited value read with every option (`field`).
    fn get_value_with(&self, name: &str, q: &ValueQuery) -> SecretValue;
    /// Create, or write a new version.
    fn set(&self, name: &str, req: &SetRequest) -> SecretMeta;
    /// Delete (refused with `Conflict` when referenced, unless `force`).
    fn delete(&self, name: &str, scope: Option<&Scope>, force: bool) -> ();
    /// Re-publish version `to` as a new version.
    fn rollback(&self, name: &str, scope: Option<&Scope>, to: u64) -> SecretMeta;
    /// Which names exist and are visible.
    fn check(&self, names: &[String]) -> CheckResult;
    /// Variable → value for `run`.
    fn env(&self, items: &[EnvItem]) -> BTreeMap<String, SecretBytes>;
    /// Audit records matching `q`.
    fn audit(&self, q: &AuditQuery) -> Vec<AuditRecord>;
    /// Walks the audit chain.
    fn audit_verify(&self) -> VerifyReport;
    /// Every principal and team.
    fn principals(&self) -> Vec<Principal>;
    /// One principal or team.
    fn principal_get(&self, name: &str) -> Principal;
    /// One operation on a principal or team.
    fn principal_put(&self, name: &str, op: &PrincipalOp) -> PrincipalResponse;
    /// Removes a principal or team.
    fn principal_remove(&self, name: &str) -> ();
    /// Adds a user or agent (and its token, when asked for).
    fn principal_add(&self, spec: &PrincipalSpec) -> (Principal, Option<SecretBytes>);
    /// Adds a grant.
    fn grant(&self, name: &str, grant: &Grant) -> Principal;
    /// Removes the grants with this pattern.
    fn revoke(&self, name: &str, pattern: &str) -> Principal;
    /// Creates a team.
    fn team_add(&self, team: &str) -> Principal;
    /// Adds a member to a team.
    fn team_join(&self, team: &str, member: &str) -> Principal;
    /// Removes a member from a team.
    fn team_leave(&self, team: &str, member: &str) -> Principal;
    /// The OpenAPI document.
    fn openapi(&self) -> String;
}
