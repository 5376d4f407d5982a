//! The KV v2 HTTP client of one provider: login (token or AppRole), read, list.
//!
//! Every error names the provider and the path, never a token: tokens travel only in the
//! `X-Vault-Token` header and live in memory in [`Token`] (wiped on drop). Response bodies
//! are read up to [`BODY_LIMIT`]; a larger one is refused before it is parsed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::Provider;

/// The largest upstream response read (a KV secret is small; a list of 10,000 keys is about
/// half a megabyte).
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A client token and when to log in again.
pub(crate) struct Token {
    pub value: Zeroizing<String>,
    /// Log in again after this (80% of the lease), or never for a token from a secret.
    pub renew_at: Option<Instant>,
    /// When the token was read from its secret (re-read every few minutes so that a
    /// rotated token secret takes effect).
    pub read_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// Why a request failed: `Unreachable` errors fall back to the cache, the others fail the
/// read.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connect error, timeout, 5xx, 429: upstream is not answering.
    Unreachable(String),
    /// Anything else, already a tresor error naming provider and path.
    Other(Error),
}

impl Failure {
    pub fn into_error(self, target: &str) -> Error {
        match self {
            Self::Unreachable(m) => Error::Unavailable {
                reason: format!("{target}: upstream unreachable: {m}"),
            },
            Self::Other(e) => e,
        }
    }
}

/// One KV v2 secret version as read. Its `Debug` names the keys, never the values.
pub(crate) struct KvSecret {
    pub version: u64,
    pub data: BTreeMap<String, Value>,
    pub custom_metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for KvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSecret")
            .field("version", &self.version)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("values", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for KvSecret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.data.values_mut() {
            if let Value::String(s) = v {
                s.zeroize();
            }
        }
    }
}

/// What a data read found.
#[derive(Debug)]
pub(crate) enum KvRead {
    Found(KvSecret),
    /// The latest version is deleted or destroyed (metadata still present), or no such path.
    Gone,
}

/// Builds the HTTP client of a provider: timeouts, its CA file, no proxies, no redirects.
pub(crate) fn http_client(p: &Provider) -> Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; rustls' ring provider is installed
    // once per process (a second install is a no-op error).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .connect_timeout(p.timeout())
        .timeout(p.timeout())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &p.ca_file {
        let pem = crate::types::read_ca_file(&p.name, ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::invalid(
                "ca_file",
                format!("provider {}: {ca} is not PEM certificates: {e}", p.name),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::invalid(
                "ca_file",
                format!("provider {}: {ca} holds no certificate", p.name),
            ));
        }
        b = b.tls_certs_only(certs);
    }
    b.build()
        .map_err(|e| Error::invalid("provider", format!("provider {}: {}", p.name, clean(&e))))
}

/// An error's text with its chain, without the URL's query (none is sent) — and never a
/// header, which reqwest does not print.
fn clean(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// A request to `p`, with its namespace and token headers.
pub(crate) fn request(
    http: &reqwest::Client,
    p: &Provider,
    method: reqwest::Method,
    api_path: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let url = format!("{}/v1/{api_path}", p.addr.trim_end_matches('/'));
    let mut r = http.request(method, url);
    if let Some(ns) = &p.namespace {
        r = r.header("X-Vault-Namespace", ns);
    }
    if let Some(t) = token {
        r = r.header("X-Vault-Token", t);
    }
    r
}

/// Sends and reads the body (capped), mapping transport failures and status codes.
pub(crate) async fn send(
    r: reqwest::RequestBuilder,
    target: &str,
) -> std::result::Result<(u16, Vec<u8>), Failure> {
    let mut resp = r
        .send()
        .await
        .map_err(|e| Failure::Unreachable(clean(&e)))?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large(target));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Unreachable(clean(&e)))?
    {
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large(target));
        }
        body.extend_from_slice(&chunk);
    }
    if status >= 500 || status == 429 {
        return Err(Failure::Unreachable(format!(
            "HTTP {status}{}",
            upstream_errors(&body)
        )));
    }
    Ok((status, body))
}

fn too_large(target: &str) -> Failure {
    Failure::Other(Error::Unavailable {
        reason: format!(
            "{target}: upstream response is larger than {} MiB; refused",
            BODY_LIMIT >> 20
        ),
    })
}

/// `: message` from a Vault `{"errors": [...]}` body, shortened and stripped of control
/// characters; empty when there is none.
pub(crate) fn upstream_errors(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let m: String = e
                .errors
                .join("; ")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            format!(": {m}")
        }
        _ => String::new(),
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: &[u8],
    target: &str,
) -> std::result::Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure::Other(Error::Unavailable {
            reason: format!("{target}: upstream answered with JSON that does not parse ({e})"),
        })
    })
}

/// Maps 401/403/404/400 to tresor errors naming `target`.
pub(crate) fn status_error(provider: &str, status: u16, body: &[u8], target: &str) -> Failure {
    let why = upstream_errors(body);
    Failure::Other(match status {
        401 | 403 => Error::Unauthenticated {
            reason: format!(
                "provider {provider} refused the credentials for {target} (HTTP {status}{why})"
            ),
        },
        404 => Error::not_found("upstream path", format!("{target}{why}")),
        _ => Error::invalid("upstream", format!("{target}: HTTP {status}{why}")),
    })
}

/// AppRole login: the client token and its lease.
pub(crate) async fn approle_login(
    http: &reqwest::Client,
    p: &Provider,
    role_id: &str,
    secret_id: &str,
) -> std::result::Result<Token, Failure> {
    #[derive(Deserialize)]
    struct Auth {
        client_token: String,
        #[serde(default)]
        lease_duration: u64,
    }
    #[derive(Deserialize)]
    struct Login {
        auth: Auth,
    }
    let target = format!("provider {} approle login", p.name);
    let body = serde_json::json!({"role_id": role_id, "secret_id": secret_id});
    let r = request(http, p, reqwest::Method::POST, "auth/approle/login", None).json(&body);
    let (status, bytes) = send(r, &target).await?;
    if status != 200 {
        return Err(Failure::Other(Error::Unauthenticated {
            reason: format!(
                "provider {} refused the AppRole login (HTTP {status}{})",
                p.name,
                upstream_errors(&bytes)
            ),
        }));
    }
    let login: Login = parse(&bytes, &target)?;
    let lease = login.auth.lease_duration;
    let now = Instant::now();
    Ok(Token {
        value: Zeroizing::new(login.auth.client_token),
        renew_at: (lease > 0).then(|| now + Duration::from_millis(lease * 800)),
        read_at: now,
    })
}

/// Reads the latest version of `mount/path`.
pub(crate) async fn kv_read(
    http: &reqwest::Client,
    p: &Provider,
    token: &str,
    mount: &str,
    path: &str,
) -> std::result::Result<KvRead, Failure> {
    #[derive(Deserialize)]
    struct Meta {
        version: u64,
        #[serde(default)]
        custom_metadata: Option<BTreeMap<String, String>>,
    }
    #[derive(Deserialize)]
    struct Data {
        data: Option<BTreeMap<String, Value>>,
        metadata: Meta,
    }
    #[derive(Deserialize)]
    struct Resp {
        data: Data,
    }
    let target = format!("{}:{mount}/{path}", p.name);
    let r = request(
        http,
        p,
        reqwest::Method::GET,
        &format!("{mount}/data/{path}"),
        Some(token),
    );
    let (status, body) = send(r, &target).await?;
    match status {
        200 => {
            let resp: Resp = parse(&body, &target)?;
            Ok(match resp.data.data {
                Some(data) => KvRead::Found(KvSecret {
                    version: resp.data.metadata.version,
                    data,
                    custom_metadata: resp.data.metadata.custom_metadata.unwrap_or_default(),
                }),
                None => KvRead::Gone,
            })
        }
        // A deleted latest version answers 404 with its metadata; a missing path or a
        // mount that is not KV v2 answers 404 (or 400/403) without: ask which.
        404 if serde_json::from_slice::<Resp>(&body).is_ok() => Ok(KvRead::Gone),
        404 => match mount_kind(http, p, token, mount).await {
            Some(2) => Ok(KvRead::Gone),
            Some(v) => Err(Failure::Other(Error::invalid(
                "remote",
                format!("{target}: mount {mount} is KV version {v}; tresor reads KV version 2"),
            ))),
            None => Err(Failure::Other(Error::not_found(
                "upstream mount",
                format!("{target} (no KV mount {mount}/ on provider {})", p.name),
            ))),
        },
        _ => Err(status_error(&p.name, status, &body, &target)),
    }
}

/// The KV version of a mount (1 or 2), or `None` when there is no such KV mount.
async fn mount_kind(http: &reqwest::Client, p: &Provider, token: &str, mount: &str) -> Option<u8> {
    #[derive(Deserialize)]
    struct Opts {
        #[serde(default)]
        version: Option<String>,
    }
    #[derive(Deserialize)]
    struct Data {
        #[serde(rename = "type")]
        kind: String,
        options: Option<Opts>,
    }
    #[derive(Deserialize)]
    struct Resp {
        data: Data,
    }
    let r = request(
        http,
        p,
        reqwest::Method::GET,
        &format!("sys/internal/ui/mounts/{mount}"),
        Some(token),
    );
    let (status, body) = send(r, mount).await.ok()?;
    let d = (status == 200)
        .then(|| serde_json::from_slice::<Resp>(&body).ok())
        .flatten()?
        .data;
    if d.kind != "kv" && d.kind != "generic" {
        return None;
    }
    Some(match d.options.and_then(|o| o.version).as_deref() {
        Some("2") => 2,
        _ => 1,
    })
}

/// The keys directly under `mount/metadata/prefix` (sub-folders end with `/`); empty when
/// there is nothing there.
pub(crate) async fn kv_list(
    http: &reqwest::Client,
    p: &Provider,
    token: &str,
    mount: &str,
    prefix: &str,
) -> std::result::Result<Vec<String>, Failure> {
    #[derive(Deserialize)]
    struct Keys {
        keys: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Resp {
        data: Keys,
    }
    let target = format!("{}:{mount}/{prefix}", p.name);
    let method = reqwest::Method::from_bytes(b"LIST")
        .map_err(|e| Failure::Other(Error::internal("http method", e)))?;
    let r = request(
        http,
        p,
        method,
        &format!("{mount}/metadata/{prefix}"),
        Some(token),
    );
    let (status, body) = send(r, &target).await?;
    match status {
        200 => Ok(parse::<Resp>(&body, &target)?.data.keys),
        404 => match mount_kind(http, p, token, mount).await {
            Some(2) => Ok(Vec::new()),
            Some(v) => Err(Failure::Other(Error::invalid(
                "prefix",
                format!("{target}: mount {mount} is KV version {v}; tresor reads KV version 2"),
            ))),
            None => Err(Failure::Other(Error::not_found(
                "upstream mount",
                format!("{target} (no KV mount {mount}/ on provider {})", p.name),
            ))),
        },
        _ => Err(status_error(&p.name, status, &body, &target)),
    }
}
