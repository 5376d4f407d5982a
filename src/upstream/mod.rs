//! Remote secrets from OpenBao / Vault (SPEC §11): the HTTP client, read-through resolution
//! with the sealed cache, background refresh, and `sync pull`.
//!
//! # Where the HTTP runs
//!
//! Operations run on the daemon's `spawn_blocking` threads (inside its tokio runtime) and in
//! the CLI with no runtime at all. A blocking HTTP client (`reqwest::blocking`) panics when
//! created or dropped inside a runtime, and `Runtime::block_on` panics on a thread that
//! already belongs to one. So every upstream request runs on **one process-wide runtime of
//! its own** ([`run`]): the caller spawns the future there and waits on a plain
//! `std::sync::mpsc` channel, which works on any thread that may block (never call it from
//! an async task). The runtime lives for the process, so nothing is dropped in a runtime
//! context, and the async `reqwest::Client`s (one per provider, with its timeouts and CA
//! file) are kept and reused across requests.

mod client;
mod resolve;
mod sync;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::{ReadRequest, Store};
use crate::types::{Actor, Provider, ProviderAuth, Scope};
use client::{Failure, KvRead, Token};

pub use client::BODY_LIMIT;
pub use resolve::{refresh, resolve, set_background};
pub use sync::pull;

/// Logs in to provider `name` and checks the token (`provider test`).
///
/// # Errors
/// `NotFound`, `Unauthenticated` naming the provider, `Unavailable` when it does not answer.
pub fn test(store: &Store, name: &str) -> Result<String> {
    let s = Session::open(store, name)?;
    s.forget_token();
    let target = format!("provider {name}");
    s.with_token(|http, p, token| async move {
        let r = client::request(
            &http,
            &p,
            reqwest::Method::GET,
            "auth/token/lookup-self",
            Some(&token),
        );
        let (status, body) = client::send(r, &p.name).await?;
        if status == 200 {
            Ok(())
        } else {
            Err(client::status_error(
                &p.name,
                status,
                &body,
                &format!("provider {} token lookup", p.name),
            ))
        }
    })?
    .map_err(|f| f.into_error(&target))?;
    Ok(format!("provider {name}: logged in to {}", s.provider.addr))
}

/// How long a token read from a secret is used before the secret is read again.
const TOKEN_REREAD: Duration = Duration::from_secs(300);

struct Shared {
    rt: tokio::runtime::Runtime,
    /// Per store and provider: the provider as the client was built for, and the client.
    clients: Mutex<HashMap<String, (Provider, reqwest::Client)>>,
    tokens: Mutex<HashMap<String, Arc<Token>>>,
    /// One fetch per binding at a time.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

static SHARED: OnceLock<std::result::Result<Shared, String>> = OnceLock::new();

fn shared() -> Result<&'static Shared> {
    let s = SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tresor-upstream")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Shared {
            rt,
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        })
    });
    s.as_ref().map_err(|e| Error::Internal {
        message: format!("cannot start the upstream runtime: {e}"),
        source: None,
    })
}

/// Runs `fut` on the upstream runtime and waits for it (see the module docs).
pub(crate) fn run<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let sh = shared()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    sh.rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| Error::Internal {
        message: "an upstream request was dropped".into(),
        source: None,
    })
}

fn lock_map<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The per-binding fetch lock.
pub(crate) fn binding_lock(store: &Store, scope: &Scope, name: &str) -> Result<Arc<Mutex<()>>> {
    let key = format!("{}\0{scope}\0{name}", store.store_id());
    Ok(Arc::clone(
        lock_map(&shared()?.locks).entry(key).or_default(),
    ))
}

/// The actor upstream work is recorded as: `upstream:PROVIDER`, the daemon's own identity.
pub(crate) fn actor(provider: &str) -> Actor {
    Actor {
        principal: format!("upstream:{provider}"),
        ..Actor::daemon()
    }
}

/// One provider of one store, ready to send requests.
pub(crate) struct Session<'a> {
    store: &'a Store,
    pub provider: Provider,
    http: reqwest::Client,
    key: String,
}

impl<'a> Session<'a> {
    /// The provider `name` of `store`, with its (cached) HTTP client.
    pub fn open(store: &'a Store, name: &str) -> Result<Self> {
        let provider = store
            .provider_record(name)?
            .ok_or_else(|| Error::not_found("provider", name.to_owned()))?;
        let key = format!("{}\0{name}", store.store_id());
        let sh = shared()?;
        let mut clients = lock_map(&sh.clients);
        let http = match clients.get(&key) {
            Some((p, c)) if *p == provider => c.clone(),
            _ => {
                let c = client::http_client(&provider)?;
                clients.insert(key.clone(), (provider.clone(), c.clone()));
                lock_map(&sh.tokens).remove(&key);
                c
            }
        };
        Ok(Self {
            store,
            provider,
            http,
            key,
        })
    }

    /// Reads a credential secret (an audited read as `upstream:PROVIDER`).
    fn credential(&self, secret: &str) -> Result<Zeroizing<String>> {
        let req = ReadRequest {
            actor: actor(&self.provider.name),
            name: secret.to_owned(),
            scope: Some(Scope::Org),
            version: None,
            field: None,
        };
        let what = format!(
            "provider {}: credential secret {secret}",
            self.provider.name
        );
        let v = self
            .store
            .read_batch(&[req])
            .pop()
            .unwrap_or_else(|| Err(Error::not_found("secret", secret.to_owned())))
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found("credential secret", what.clone()),
                other => other,
            })?;
        let text = std::str::from_utf8(v.value.expose())
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                // The request is fine; the provider cannot be used until its credential is.
                Error::Unavailable {
                    reason: format!(
                        "{what} does not hold a token or id (expected printable ASCII); set it \
                         with `tresor set`"
                    ),
                }
            })?;
        Ok(Zeroizing::new(text.to_owned()))
    }

    /// A valid client token: cached, or read / logged in now.
    fn token(&self) -> Result<Arc<Token>> {
        let sh = shared()?;
        if let Some(t) = lock_map(&sh.tokens).get(&self.key) {
            let now = Instant::now();
            let fresh = match t.renew_at {
                Some(r) => now < r,
                None => now.duration_since(t.read_at) < TOKEN_REREAD,
            };
            if fresh {
                return Ok(Arc::clone(t));
            }
        }
        let token = match &self.provider.auth {
            ProviderAuth::Token { token_secret } => Token {
                value: self.credential(token_secret)?,
                renew_at: None,
                read_at: Instant::now(),
            },
            ProviderAuth::Approle {
                role_id_secret,
                secret_id_secret,
            } => {
                let role = self.credential(role_id_secret)?;
                let sid = self.credential(secret_id_secret)?;
                let (http, p) = (self.http.clone(), self.provider.clone());
                let target = format!("provider {} approle login", p.name);
                run(async move { client::approle_login(&http, &p, &role, &sid).await })?
                    .map_err(|f| f.into_error(&target))?
            }
        };
        let token = Arc::new(token);
        lock_map(&sh.tokens).insert(self.key.clone(), Arc::clone(&token));
        Ok(token)
    }

    fn forget_token(&self) {
        if let Ok(sh) = shared() {
            lock_map(&sh.tokens).remove(&self.key);
        }
    }

    /// Runs `f` with the HTTP client, the provider and a token; on `unauthenticated`, logs in
    /// again once (the token may have been revoked or rotated).
    pub fn with_token<T, F, Fut>(&self, f: F) -> Result<std::result::Result<T, Failure>>
    where
        F: Fn(reqwest::Client, Provider, Zeroizing<String>) -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        for attempt in 0..2 {
            let token = self.token()?;
            let out = run(f(
                self.http.clone(),
                self.provider.clone(),
                token.value.clone(),
            ))?;
            if attempt == 0 && matches!(out, Err(Failure::Other(Error::Unauthenticated { .. }))) {
                self.forget_token();
                continue;
            }
            return Ok(out);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Reads `mount/path` (latest version).
    pub fn read(&self, mount: &str, path: &str) -> Result<std::result::Result<KvRead, Failure>> {
        self.with_token(|http, p, token| {
            let (mount, path) = (mount.to_owned(), path.to_owned());
            async move { client::kv_read(&http, &p, &token, &mount, &path).await }
        })
    }
}
