//! Every operation of API v1, defined once.
//!
//! An operation is a request type (its fields are the query string of a `GET`/`DELETE`, or
//! the JSON body of a `PUT`/`POST`; a `{name}` path segment is the field `name`), its route
//! ([`Endpoint`]), the type it answers with, and [`Operation::apply`], which runs it against
//! the store as an [`Actor`]. Everything else derives from that one definition:
//!
//! - the daemon's router registers [`Operation`]s generically (`daemon/routes.rs`), and the
//!   route table [`ROUTES`] that a test checks against `openapi.json` both ways;
//! - [`crate::Client`] sends any [`Endpoint`] with one generic `call`, encoding the path,
//!   query string and body from the request type;
//! - [`Api`] gives the named methods (`list`, `get_value`, `set`, …) once, on top of `call`,
//!   for both the socket client and [`Local`] (the file opened in this process), which is how
//!   the CLI's direct and daemon modes share every command.
//!
//! # Adding an operation
//!
//! 1. Write the request type in the module of its group (or a new one) with
//!    `#[serde(deny_unknown_fields)]`, and `#[serde(skip)] name: String` when the path has
//!    `{name}`.
//! 2. `endpoint!(Type, METHOD "/v1/path/{name}" => Output, name)` and an
//!    `impl Operation` whose `apply` calls the store method.
//! 3. Add it to [`operations!`] below and its path to `openapi.json`; a test fails until the
//!    document and the table agree.
//! 4. If the CLI needs it by name, add a provided method to [`Api`].
//!
//! Nothing in the daemon, the client or the CLI backends changes.

pub mod airgap;
mod api;
pub mod audit;
pub mod backup;
mod cert;
mod encode;
pub mod export;
pub mod principals;
pub mod refs;
pub mod secrets;
pub mod session;
pub mod upstream;
pub mod watch;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api::{Api, Local};
pub use encode::{encode_component, encode_request};

use crate::error::Result;
use crate::store::{ReadRequest, Store};
use crate::types::{Actor, SecretValue};

/// An HTTP method of API v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Reads; parameters in the query string.
    Get,
    /// Creates or replaces; a JSON body.
    Put,
    /// Acts; a JSON body.
    Post,
    /// Removes; parameters in the query string.
    Delete,
}

impl Method {
    /// `GET`, `PUT`, `POST` or `DELETE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    /// Whether requests carry their parameters as a JSON body (else as a query string).
    pub const fn has_body(self) -> bool {
        matches!(self, Self::Put | Self::Post)
    }
}

/// A request of API v1: where it goes and what comes back.
pub trait Endpoint: Serialize + DeserializeOwned + Send + 'static {
    /// The method.
    const METHOD: Method;
    /// The path, in OpenAPI syntax (`/v1/secrets/{name}`).
    const PATH: &'static str;
    /// The response body.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The `{name}` path segment, for paths that have one.
    fn path_name(&self) -> Option<&str> {
        None
    }

    /// Sets the `{name}` path segment (the daemon, after decoding the path).
    fn set_path_name(&mut self, _name: String) {}
}

/// Audited value reads, as the caller of an operation provides them: the daemon queues them
/// on its group commit, [`Local`] reads the file directly.
pub trait Reads {
    /// Reads every request in one durable audit commit; one result per request, in order.
    fn read(&self, reqs: Vec<ReadRequest>) -> Vec<Result<SecretValue>>;
}

impl Reads for Store {
    fn read(&self, reqs: Vec<ReadRequest>) -> Vec<Result<SecretValue>> {
        self.read_batch(&reqs)
    }
}

/// What an operation runs with.
pub struct Context<'a> {
    /// The unlocked store.
    pub store: &'a Store,
    /// Who asks.
    pub actor: &'a Actor,
    /// How value reads are committed.
    pub reads: &'a dyn Reads,
}

/// An [`Endpoint`] that runs against the store (everything but the daemon's session
/// endpoints: status, unlock, lock).
pub trait Operation: Endpoint {
    /// Runs the request as `cx.actor`. Policy is the store's: this only translates.
    ///
    /// # Errors
    /// Whatever the store method returns.
    fn apply(self, cx: &Context<'_>) -> Result<Self::Output>;

    /// `Some` when this operation is one audited value read of a local secret and nothing
    /// else (no remote binding to fetch): the read, and how its value becomes the output. The
    /// daemon then serves it without a blocking thread — read phase on the requesting task,
    /// the commit's wait awaited — with exactly what [`Operation::apply`] would answer.
    fn value_read(&self, _store: &Store, _actor: &Actor) -> Option<ValueRead<Self::Output>> {
        None
    }
}

/// One audited value read an operation consists of ([`Operation::value_read`]).
pub struct ValueRead<T> {
    /// The read.
    pub request: ReadRequest,
    /// The operation's output for the value read.
    pub output: fn(&SecretValue) -> T,
}

/// Implements [`Endpoint`]: `endpoint!(Type, Get "/v1/x/{name}" => Output, name)`.
macro_rules! endpoint {
    ($ty:ty, $method:ident $path:literal => $out:ty) => {
        impl $crate::ops::Endpoint for $ty {
            const METHOD: $crate::ops::Method = $crate::ops::Method::$method;
            const PATH: &'static str = $path;
            type Output = $out;
        }
    };
    ($ty:ty, $method:ident $path:literal => $out:ty, name) => {
        impl $crate::ops::Endpoint for $ty {
            const METHOD: $crate::ops::Method = $crate::ops::Method::$method;
            const PATH: &'static str = $path;
            type Output = $out;
            fn path_name(&self) -> Option<&str> {
                Some(&self.name)
            }
            fn set_path_name(&mut self, name: String) {
                self.name = name;
            }
        }
    };
}
pub(crate) use endpoint;

/// Calls `$m!` with every [`Operation`] type: the one list the daemon's router is built from.
/// (The inbox's two operations, served also while locked, and `bundle apply`, whose body may
/// be larger than others', are routed by the daemon itself: they are in [`ROUTES`], not here.)
#[macro_export]
#[doc(hidden)]
macro_rules! __tresor_operations {
    ($m:ident) => {
        $m!(
            $crate::ops::secrets::List,
            $crate::ops::secrets::Show,
            $crate::ops::secrets::Set,
            $crate::ops::secrets::Delete,
            $crate::ops::secrets::GetValue,
            $crate::ops::secrets::Rollback,
            $crate::ops::secrets::Check,
            $crate::ops::secrets::Env,
            $crate::ops::refs::ReferencesGet,
            $crate::ops::refs::RecordReferences,
            $crate::ops::refs::Compare,
            $crate::ops::refs::Certificates,
            $crate::ops::export::Export,
            $crate::ops::audit::Audit,
            $crate::ops::audit::AuditVerify,
            $crate::ops::audit::Head,
            $crate::ops::audit::AuditPrune,
            $crate::ops::audit::AuditExport,
            $crate::ops::principals::Principals,
            $crate::ops::principals::PrincipalGet,
            $crate::ops::principals::PrincipalPut,
            $crate::ops::principals::PrincipalDelete,
            $crate::ops::upstream::Providers,
            $crate::ops::upstream::ProviderGet,
            $crate::ops::upstream::ProviderPut,
            $crate::ops::upstream::ProviderDelete,
            $crate::ops::upstream::RemotePut,
            $crate::ops::upstream::Sync,
            $crate::ops::watch::Watch,
            $crate::ops::airgap::BundleCreate
        );
    };
}
pub use __tresor_operations as operations;

const fn route<E: Endpoint>() -> (&'static str, &'static str) {
    (E::METHOD.as_str(), E::PATH)
}

macro_rules! route_table {
    ($($op:ty),*) => {
        /// Every (method, path) the daemon serves, in OpenAPI path syntax: the session
        /// endpoints, the OpenAPI document, the backup, then every [`Operation`].
        pub const ROUTES: &[(&str, &str)] = &[
            route::<session::Status>(),
            route::<session::Unlock>(),
            route::<session::Lock>(),
            ("GET", OPENAPI_PATH),
            route::<backup::Backup>(),
            route::<airgap::InboxKeyGet>(),
            route::<airgap::InboxSubmit>(),
            route::<airgap::BundleApply>(),
            $(route::<$op>(),)*
        ];
    };
}
operations!(route_table);

/// Where the daemon serves its OpenAPI document.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";
