//! `/v1/providers`, `/v1/secrets/{name}/remote`, `/v1/sync` (SPEC §11), and the value reads
//! that resolve remote bindings first.

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::{Error, Result};
use crate::protocol::Deleted;
use crate::store::ReadRequest;
use crate::types::{
    Binding, BindingStatus, Provider, ProviderAuth, ProviderKind, Scope, SecretValue, SyncReport,
    parse_duration,
};

/// Reads values through `cx.reads`, resolving remote bindings first (fetch, cache, stale
/// fallback); each value carries its freshness when it is remote.
pub(crate) fn read(cx: &Context<'_>, reqs: Vec<ReadRequest>) -> Vec<Result<SecretValue>> {
    let fresh = resolve(cx, &reqs);
    let mut out = Vec::with_capacity(reqs.len());
    let mut todo = Vec::new();
    let mut slots = Vec::new();
    for (req, f) in reqs.into_iter().zip(fresh) {
        match f {
            Ok(f) => {
                slots.push(Ok(f));
                todo.push(req);
            }
            Err(e) => slots.push(Err(e)),
        }
    }
    let mut values = cx.reads.read(todo).into_iter();
    for slot in slots {
        out.push(match slot {
            Err(e) => Err(e),
            Ok(f) => values
                .next()
                .unwrap_or_else(|| {
                    Err(Error::Internal {
                        message: "the read returned too few values".into(),
                        source: None,
                    })
                })
                .map(|mut v| {
                    v.upstream = f;
                    v
                }),
        });
    }
    out
}

/// Whether a read of `req` has nothing to resolve first (the read asks for a kept version, or
/// no binding is at the name): what `resolve` looks at, so that such a read may skip it. A
/// failure to look is `false` (the full path reports it).
pub(crate) fn is_local(store: &crate::Store, req: &ReadRequest) -> bool {
    if req.version.is_some() {
        return true;
    }
    let scope = req.scope.clone().unwrap_or_default();
    matches!(store.binding(&scope, &req.name), Ok(None))
}

/// Removes the binding of a secret being deleted; whether there was one.
pub(crate) fn unbind(cx: &Context<'_>, name: &str, scope: Option<&Scope>) -> Result<bool> {
    let scope = scope.cloned().unwrap_or_default();
    if cx.store.binding(&scope, name)?.is_none() {
        return Ok(false);
    }
    cx.store.binding_remove(cx.actor, &scope, name)
}

#[cfg(feature = "upstream")]
fn resolve(cx: &Context<'_>, reqs: &[ReadRequest]) -> Vec<Result<Option<crate::types::Freshness>>> {
    crate::upstream::resolve(cx.store, cx.actor, reqs)
}

#[cfg(not(feature = "upstream"))]
fn resolve(cx: &Context<'_>, reqs: &[ReadRequest]) -> Vec<Result<Option<crate::types::Freshness>>> {
    reqs.iter()
        .map(|r| {
            let scope = r.scope.clone().unwrap_or_default();
            match cx.store.binding(&scope, &r.name)? {
                Some(b) if r.version.is_none() => Err(no_upstream(&b.binding.target())),
                _ => Ok(None),
            }
        })
        .collect()
}

#[cfg(not(feature = "upstream"))]
fn no_upstream(what: &str) -> Error {
    Error::Unavailable {
        reason: format!(
            "{what}: this build of tresor has no upstream support (feature `upstream`)"
        ),
    }
}

/// `GET /v1/providers`: every provider (never a credential, only secret names).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Providers {}
endpoint!(Providers, Get "/v1/providers" => ProviderList);

/// The providers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProviderList {
    /// By name.
    pub providers: Vec<Provider>,
}

impl Operation for Providers {
    fn apply(self, cx: &Context<'_>) -> Result<ProviderList> {
        Ok(ProviderList {
            providers: cx.store.providers(cx.actor)?,
        })
    }
}

/// `GET /v1/providers/{name}[?test=true]`: one provider; with `test`, log in to it first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderGet {
    /// The provider.
    #[serde(skip)]
    pub name: String,
    /// Log in to check the address, TLS and credentials.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}
endpoint!(ProviderGet, Get "/v1/providers/{name}" => ProviderInfo, name);

/// A provider and, when tested, what the test found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// The provider.
    pub provider: Provider,
    /// The test's result (`test=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tested: Option<String>,
}

impl Operation for ProviderGet {
    fn apply(self, cx: &Context<'_>) -> Result<ProviderInfo> {
        let provider = cx.store.provider(cx.actor, &self.name)?;
        let tested = if self.test {
            #[cfg(feature = "upstream")]
            {
                Some(crate::upstream::test(cx.store, &self.name)?)
            }
            #[cfg(not(feature = "upstream"))]
            return Err(no_upstream(&self.name));
        } else {
            None
        };
        Ok(ProviderInfo { provider, tested })
    }
}

/// `PUT /v1/providers/{name}`: add or replace a provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPut {
    /// The provider.
    #[serde(skip)]
    pub name: String,
    /// OpenBao or Vault.
    pub kind: ProviderKind,
    /// `http(s)://host[:port]`.
    pub addr: String,
    /// CA certificates (PEM file on the daemon's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Token or AppRole, by secret names.
    pub auth: ProviderAuth,
    /// Timeout of one request, ms (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}
endpoint!(ProviderPut, Put "/v1/providers/{name}" => Provider, name);

impl Operation for ProviderPut {
    fn apply(self, cx: &Context<'_>) -> Result<Provider> {
        cx.store.provider_put(
            cx.actor,
            Provider {
                name: self.name,
                kind: self.kind,
                addr: self.addr,
                ca_file: self.ca_file,
                namespace: self.namespace,
                auth: self.auth,
                timeout_ms: self.timeout_ms,
            },
        )
    }
}

/// `DELETE /v1/providers/{name}?force=`: refused while bindings use it, unless forced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDelete {
    /// The provider.
    #[serde(skip)]
    pub name: String,
    /// Remove even when bindings use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}
endpoint!(ProviderDelete, Delete "/v1/providers/{name}" => Deleted, name);

impl Operation for ProviderDelete {
    fn apply(self, cx: &Context<'_>) -> Result<Deleted> {
        cx.store
            .provider_remove(cx.actor, &self.name, self.force.unwrap_or(false))?;
        Ok(Deleted {
            deleted: format!("provider {}", self.name),
            broken: Vec::new(),
        })
    }
}

/// `PUT /v1/secrets/{name}/remote`: bind a secret to `PROVIDER:MOUNT/PATH#KEY`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemotePut {
    /// The secret.
    #[serde(skip)]
    pub name: String,
    /// `PROVIDER:MOUNT/PATH[#KEY]`.
    pub remote: String,
    /// The scope (default org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Serve the cache at most this long after the last good fetch (`1h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness: Option<String>,
    /// Refresh in the background this often (`5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}
endpoint!(RemotePut, Put "/v1/secrets/{name}/remote" => BindingStatus, name);

fn seconds(field: &str, s: Option<&String>) -> Result<Option<u64>> {
    s.map(|s| {
        let d = parse_duration(s)?;
        if d.as_secs() == 0 {
            return Err(Error::invalid(field, format!("{s:?} is under a second")));
        }
        Ok(d.as_secs())
    })
    .transpose()
}

impl Operation for RemotePut {
    fn apply(self, cx: &Context<'_>) -> Result<BindingStatus> {
        let mut b = Binding::parse(&self.remote)?;
        b.max_staleness_s = seconds("max_staleness", self.max_staleness.as_ref())?;
        b.refresh_s = seconds("refresh", self.refresh.as_ref())?;
        let scope = self.scope.unwrap_or_default();
        Ok(cx
            .store
            .binding_put(cx.actor, &scope, &self.name, b)?
            .status())
    }
}

/// What `POST /v1/sync` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    /// Mirror a subtree of a provider.
    #[default]
    Pull,
    /// Show every binding's state.
    Status,
}

/// `POST /v1/sync`: `pull` a provider's subtree, or the `status` of every binding.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// Pull or status.
    #[serde(default)]
    pub action: SyncAction,
    /// The provider (pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `MOUNT[/PATH]` (pull; default `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Report only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Delete local mirrors whose upstream path is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
}
endpoint!(Sync, Post "/v1/sync" => SyncResponse);

/// `POST /v1/sync` response: the pull report, or the bindings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncResponse {
    /// What a pull did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<SyncReport>,
    /// Every binding (status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingStatus>,
}

impl Operation for Sync {
    fn apply(self, cx: &Context<'_>) -> Result<SyncResponse> {
        match self.action {
            SyncAction::Status => {
                cx.store
                    .authorize(cx.actor, crate::types::Action::Fetch, "sync status")?;
                Ok(SyncResponse {
                    report: None,
                    bindings: cx
                        .store
                        .bindings()?
                        .iter()
                        .map(crate::store::BindingRec::status)
                        .collect(),
                })
            }
            SyncAction::Pull => {
                let provider = self
                    .provider
                    .ok_or_else(|| Error::invalid("provider", "sync pull needs a provider"))?;
                #[cfg(feature = "upstream")]
                {
                    let report = crate::upstream::pull(
                        cx.store,
                        cx.actor,
                        &provider,
                        self.prefix.as_deref(),
                        self.dry_run,
                        self.prune,
                    )?;
                    Ok(SyncResponse {
                        report: Some(report),
                        bindings: Vec::new(),
                    })
                }
                #[cfg(not(feature = "upstream"))]
                Err(no_upstream(&provider))
            }
        }
    }
}
