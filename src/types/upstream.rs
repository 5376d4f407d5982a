//! Upstream providers (OpenBao, Vault) and remote bindings (SPEC §11): what is stored, how it
//! is written on the command line, and how fresh a served value is. No HTTP here: the client
//! lives behind the `upstream` feature (`crate::upstream`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::validate_name;
use crate::error::{Error, Result};

/// The request timeout of an upstream fetch when a provider sets none (SPEC §11: short).
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// The server software of a provider. Both speak the KV v2 HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenBao.
    Openbao,
    /// HashiCorp Vault.
    Vault,
}

impl std::str::FromStr for ProviderKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "openbao" => Ok(Self::Openbao),
            "vault" => Ok(Self::Vault),
            _ => Err(Error::invalid(
                "kind",
                format!("expected openbao or vault, found {s:?}"),
            )),
        }
    }
}

/// How tresor logs in to a provider. Only the *names* of tresor secrets are stored; their
/// values are read (audited) when a login needs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderAuth {
    /// A token kept in a tresor secret.
    Token {
        /// The secret holding the token.
        token_secret: String,
    },
    /// AppRole: role id and secret id kept in tresor secrets.
    Approle {
        /// The secret holding the role id.
        role_id_secret: String,
        /// The secret holding the secret id.
        secret_id_secret: String,
    },
}

impl ProviderAuth {
    /// The tresor secrets this auth reads.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Self::Token { token_secret } => vec![token_secret],
            Self::Approle {
                role_id_secret,
                secret_id_secret,
            } => vec![role_id_secret, secret_id_secret],
        }
    }
}

/// A provider as stored (sealed) and as the API shows it: never a credential, only names.
/// (Stored with postcard, which needs every field present: no `skip_serializing_if` here.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Its name (principal-name rules).
    #[serde(default)]
    pub name: String,
    /// OpenBao or Vault.
    pub kind: ProviderKind,
    /// `http(s)://host[:port]`, no path.
    pub addr: String,
    /// A PEM file of CA certificates to trust for this provider.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// How to log in.
    pub auth: ProviderAuth,
    /// Connect and request timeout in milliseconds (default [`DEFAULT_TIMEOUT_MS`]).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl Provider {
    /// Checks the name, the address and the credential secret names.
    ///
    /// # Errors
    /// `InvalidArgument` naming the provider and what is wrong.
    pub fn validate(&self) -> Result<()> {
        super::validate_principal_name(&self.name)
            .map_err(|e| Error::invalid("provider", format!("name {:?}: {e}", self.name)))?;
        validate_addr(&self.addr).map_err(|reason| {
            Error::invalid("addr", format!("provider {}: {reason}", self.name))
        })?;
        for s in self.auth.secrets() {
            validate_name(s).map_err(|e| {
                Error::invalid("auth", format!("provider {}: secret name: {e}", self.name))
            })?;
        }
        if let Some(ns) = &self.namespace
            && (ns.is_empty() || ns.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(Error::invalid(
                "namespace",
                format!("provider {}: {ns:?} is not a namespace", self.name),
            ));
        }
        if self.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
            return Err(Error::invalid(
                "timeout_ms",
                format!("provider {}: expected 1 to 60000", self.name),
            ));
        }
        Ok(())
    }

    /// The timeout of one request.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))
    }
}

/// Reads a provider's CA file: a file that is not there is `NotFound` (naming it), one that
/// cannot be read otherwise is `InvalidArgument`.
///
/// # Errors
/// As above.
pub fn read_ca_file(provider: &str, ca: &str) -> Result<Vec<u8>> {
    std::fs::read(ca).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::not_found("ca_file", format!("provider {provider}: {ca}"))
        } else {
            Error::invalid(
                "ca_file",
                format!("provider {provider}: cannot read {ca}: {e}"),
            )
        }
    })
}

/// `http://host[:port]` or `https://host[:port]` (a trailing `/` allowed): no user info, path,
/// query or fragment, no whitespace.
fn validate_addr(addr: &str) -> std::result::Result<(), String> {
    let rest = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .ok_or_else(|| format!("expected http(s)://HOST[:PORT], found {addr:?}"))?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let bad = host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c));
    let port_ok = match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
        }
        _ => true,
    };
    if bad || !port_ok {
        return Err(format!("expected http(s)://HOST[:PORT], found {addr:?}"));
    }
    Ok(())
}

/// A remote binding: the local secret's value comes from `provider:mount/path#key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The provider's name.
    pub provider: String,
    /// The KV v2 mount (`secret`, `kv`).
    pub mount: String,
    /// The path under the mount (`prod/stripe`).
    pub path: String,
    /// The key in the upstream data (default `value`).
    pub key: String,
    /// Serve a cached value at most this long after the last good fetch (seconds; none: for
    /// ever).
    #[serde(default)]
    pub max_staleness_s: Option<u64>,
    /// Refresh in the daemon every this many seconds (jittered); reads then use the cache.
    #[serde(default)]
    pub refresh_s: Option<u64>,
}

impl Binding {
    /// Parses `PROVIDER:MOUNT/PATH[#KEY]`. A `data/` right after the mount is dropped, so the
    /// API path form `kv/data/prod/stripe#value` names the same secret as `kv/prod/stripe`.
    ///
    /// # Errors
    /// `InvalidArgument` saying what the form is.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "remote",
                format!(
                    "expected PROVIDER:MOUNT/PATH[#KEY] (kv:secret/prod/stripe#value), found {s:?}"
                ),
            )
        };
        let (provider, rest) = s.split_once(':').ok_or_else(bad)?;
        let (full, key) = match rest.split_once('#') {
            Some((p, k)) => (p, k),
            None => (rest, "value"),
        };
        let (mount, path) = full.split_once('/').ok_or_else(bad)?;
        let path = path.strip_prefix("data/").unwrap_or(path);
        let ok_seg = |x: &str| {
            !x.is_empty()
                && x.split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                && !x
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || "?#%\\".contains(c))
        };
        if provider.is_empty() || !ok_seg(mount) || mount.contains('/') || !ok_seg(path) {
            return Err(bad());
        }
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(bad());
        }
        super::validate_principal_name(provider)?;
        Ok(Self {
            provider: provider.to_owned(),
            mount: mount.to_owned(),
            path: path.to_owned(),
            key: key.to_owned(),
            max_staleness_s: None,
            refresh_s: None,
        })
    }

    /// `provider:mount/path#key`, as audit records and messages name it.
    pub fn target(&self) -> String {
        format!(
            "{}:{}/{}#{}",
            self.provider, self.mount, self.path, self.key
        )
    }
}

/// How fresh a value served for a remote binding is (SPEC §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    /// Upstream could not be reached and the cached value was served.
    pub stale: bool,
    /// When the value was last fetched from upstream.
    #[serde(with = "crate::types::time")]
    pub fetched_at: Timestamp,
}

/// One binding as `sync status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingStatus {
    /// The local secret (`scope/name`).
    pub secret: String,
    /// Where it comes from.
    pub remote: String,
    /// The upstream version cached, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_version: Option<u64>,
    /// The last good fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::types::time::option")]
    pub last_fetch: Option<Timestamp>,
    /// The last failure, if it is more recent than the last good fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Seconds since the last good fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staleness_s: Option<u64>,
    /// The binding's refresh interval and staleness bound, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_s: Option<u64>,
    /// See [`Binding::max_staleness_s`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness_s: Option<u64>,
}

/// What `sync pull` did (or, with `dry_run`, would do). Local names are `MOUNT/PATH`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Upstream paths read.
    pub paths: usize,
    /// Local secrets created.
    pub created: Vec<String>,
    /// Local secrets given a new version (the upstream version changed).
    pub updated: Vec<String>,
    /// How many were already at the upstream version.
    pub unchanged: usize,
    /// Local mirrors whose upstream path is gone (deleted locally only with `prune`).
    pub deleted_upstream: Vec<String>,
    /// Deleted locally (`prune`).
    pub pruned: Vec<String>,
    /// Upstream paths that cannot be a local name, with why.
    pub skipped: Vec<String>,
    /// Nothing was written.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_forms() {
        let b = Binding::parse("bao:kv/data/prod/stripe#api").expect("parses");
        assert_eq!((&*b.mount, &*b.path, &*b.key), ("kv", "prod/stripe", "api"));
        assert_eq!(Binding::parse("bao:secret/x").expect("parses").key, "value");
        for bad in [
            "bao",
            "bao:kv",
            "bao:kv/",
            ":kv/x",
            "bao:kv/../x",
            "bao:kv/x#",
            "bao:kv/a b",
        ] {
            assert!(Binding::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        for ok in [
            "http://127.0.0.1:8200",
            "https://bao.example/",
            "https://[::1]:8200",
        ] {
            assert!(validate_addr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:8200",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://u@h",
            "http://h:0",
            "http://h:x",
        ] {
            assert!(validate_addr(bad).is_err(), "{bad}");
        }
    }
}
