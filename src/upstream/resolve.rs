//! Read-through resolution of remote bindings, the sealed cache, staleness, and refresh.
//!
//! A read of a bound secret fetches `provider:mount/path` with the provider's short timeout.
//! A new upstream version becomes a new local version (`store.set`, meta `upstream.*`), then
//! the value is served by the ordinary audited read. When upstream does not answer
//! (connect error, timeout, 5xx, 429) the cached version is served, marked stale, until the
//! binding's `max_staleness`; after that, or when nothing was ever fetched, the read is
//! `unavailable`. Other failures (credentials refused, path or key missing, a response that
//! does not parse or is too large) fail the read and cache nothing. With `--refresh` and a
//! daemon running its refresher, reads use the cache and never wait on the network.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::client::{Failure, KvRead};
use super::{Session, actor, binding_lock};
use crate::error::{Error, Result};
use crate::store::{BindingRec, ReadRequest, Store};
use crate::types::{Action, Actor, AuditEntry, Freshness, Outcome, SecretBytes, SetRequest};

static BACKGROUND: AtomicBool = AtomicBool::new(false);

/// Whether this process refreshes `--refresh` bindings in the background (the daemon does);
/// then reads of those bindings are served from the cache.
pub fn set_background(on: bool) {
    BACKGROUND.store(on, Ordering::SeqCst);
}

fn now_us() -> i64 {
    crate::sys::now().as_microsecond()
}

fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Resolves the remote bindings among `reqs` before they are read: one entry per request,
/// `Ok(None)` for a local secret (or a kept version, or a read the policy will refuse),
/// `Ok(Some(freshness))` when the cache now holds what to serve, `Err` when the read must
/// fail.
pub fn resolve(
    store: &Store,
    reader: &Actor,
    reqs: &[ReadRequest],
) -> Vec<Result<Option<Freshness>>> {
    reqs.iter()
        .map(|r| {
            if r.version.is_some() {
                return Ok(None);
            }
            let scope = r.scope.clone().unwrap_or_default();
            let Some(rec) = store.binding(&scope, &r.name)? else {
                return Ok(None);
            };
            if !store.may_read_value(reader, &scope, &r.name) {
                return Ok(None);
            }
            resolve_one(store, rec).map(Some)
        })
        .collect()
}

fn resolve_one(store: &Store, rec: BindingRec) -> Result<Freshness> {
    let lock = binding_lock(store, &rec.scope, &rec.name)?;
    let _one = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Another fetch may have finished while this one waited.
    let rec = store.binding(&rec.scope, &rec.name)?.unwrap_or(rec);
    if BACKGROUND.load(Ordering::SeqCst)
        && rec.binding.refresh_s.is_some()
        && rec.last_fetch_us.is_some()
    {
        return cached(store, &rec, None);
    }
    fetch(store, rec, "read")
}

/// Fetches a binding now (the daemon's refresher; `why` goes into the audit record).
///
/// # Errors
/// As a read of the binding.
pub fn refresh(store: &Store, rec: BindingRec) -> Result<Freshness> {
    let lock = binding_lock(store, &rec.scope, &rec.name)?;
    let _one = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rec = store.binding(&rec.scope, &rec.name)?.unwrap_or(rec);
    fetch(store, rec, "refresh")
}

fn audit_name(rec: &BindingRec, version: Option<u64>, why: &str) -> String {
    let b = &rec.binding;
    match version {
        Some(v) => format!("{}:{}/{}@v{v} {why}", b.provider, b.mount, b.path),
        None => format!("{}:{}/{} {why}", b.provider, b.mount, b.path),
    }
}

fn note(
    store: &Store,
    rec: BindingRec,
    outcome: std::result::Result<u64, String>,
    why: &str,
) -> Result<BindingRec> {
    let (o, v) = match &outcome {
        Ok(v) => (Outcome::Ok, Some(*v)),
        Err(_) => (Outcome::Error, rec.upstream_version),
    };
    let entry = AuditEntry::new(&actor(&rec.binding.provider), Action::Fetch, o)
        .named(audit_name(&rec, v, why));
    store.binding_note(rec, outcome, &entry)
}

fn fetch(store: &Store, rec: BindingRec, why: &str) -> Result<Freshness> {
    let target = rec.binding.target();
    let result = Session::open(store, &rec.binding.provider)
        .and_then(|s| s.read(&rec.binding.mount, &rec.binding.path));
    let read = match result {
        Ok(Ok(r)) => r,
        Ok(Err(Failure::Unreachable(m))) => return fallback(store, rec, &m, why),
        Ok(Err(Failure::Other(e))) | Err(e) => {
            note(store, rec, Err(e.to_string()), why)?;
            return Err(e);
        }
    };
    let kv = match read {
        KvRead::Found(kv) => kv,
        KvRead::Gone => {
            let e = Error::not_found(
                "upstream secret",
                format!("{target} (deleted or never written upstream)"),
            );
            note(store, rec, Err(e.to_string()), why)?;
            return Err(e);
        }
    };
    let Some(v) = kv.data.get(&rec.binding.key) else {
        let keys: Vec<&str> = kv.data.keys().map(String::as_str).collect();
        let e = Error::not_found(
            "upstream key",
            format!(
                "{target} (the upstream data has the keys: {})",
                keys.join(", ")
            ),
        );
        note(store, rec, Err(e.to_string()), why)?;
        return Err(e);
    };
    let bytes = value_bytes(v);
    let cached = local_upstream_version(store, &rec);
    if cached != Some((kv.version, target.clone())) {
        let mut meta = BTreeMap::new();
        meta.insert("upstream.provider".to_owned(), rec.binding.provider.clone());
        meta.insert(
            "upstream.path".to_owned(),
            format!("{}/{}", rec.binding.mount, rec.binding.path),
        );
        meta.insert("upstream.key".to_owned(), rec.binding.key.clone());
        meta.insert("upstream.version".to_owned(), kv.version.to_string());
        let req = SetRequest {
            scope: rec.scope.clone(),
            value: Some(bytes),
            meta,
            allow_empty: true,
            ..SetRequest::default()
        };
        store.set(&actor(&rec.binding.provider), &rec.name, req)?;
    }
    note(store, rec, Ok(kv.version), why)?;
    Ok(Freshness {
        stale: false,
        fetched_at: crate::sys::now(),
    })
}

/// The bytes a KV value becomes: a JSON string as its text, anything else as its JSON.
pub(crate) fn value_bytes(v: &Value) -> SecretBytes {
    match v {
        Value::String(s) => SecretBytes::new(s.as_bytes().to_vec()),
        other => SecretBytes::new(other.to_string().into_bytes()),
    }
}

/// The upstream version and target the local cache holds, from its meta.
fn local_upstream_version(store: &Store, rec: &BindingRec) -> Option<(u64, String)> {
    let meta = store
        .show(&actor(&rec.binding.provider), &rec.name, Some(&rec.scope))
        .ok()?
        .meta;
    let v = meta.get("upstream.version")?.parse().ok()?;
    let target = format!(
        "{}:{}#{}",
        meta.get("upstream.provider")?,
        meta.get("upstream.path")?,
        meta.get("upstream.key")?
    );
    Some((v, target))
}

fn fallback(store: &Store, rec: BindingRec, why_down: &str, why: &str) -> Result<Freshness> {
    let target = rec.binding.target();
    if rec.last_fetch_us.is_none() || local_upstream_version(store, &rec).is_none() {
        let reason = format!("{target}: never fetched, and upstream is unreachable ({why_down})");
        note(
            store,
            rec,
            Err(reason.clone()),
            &format!("{why} unreachable, no cache"),
        )?;
        return Err(Error::Unavailable { reason });
    }
    let rec = note(
        store,
        rec,
        Err(format!("upstream unreachable: {why_down}")),
        &format!("{why} unreachable, cache served"),
    )?;
    cached(store, &rec, Some(why_down))
}

/// Serves the cache of `rec`, or refuses it past `max_staleness`.
fn cached(store: &Store, rec: &BindingRec, down: Option<&str>) -> Result<Freshness> {
    let Some(last) = rec.last_fetch_us else {
        return Err(Error::Unavailable {
            reason: format!("{}: never fetched yet", rec.binding.target()),
        });
    };
    // Compared in microseconds: a cache 3.5 s old is past a 3 s max_staleness.
    let age_us = now_us().saturating_sub(last).unsigned_abs();
    if let Some(max) = rec.binding.max_staleness_s
        && age_us > max.saturating_mul(1_000_000)
    {
        let why = down.map_or_else(
            || {
                rec.last_error
                    .as_ref()
                    .map_or_else(String::new, |(_, m)| format!(" ({m})"))
            },
            |d| format!(" (upstream unreachable: {d})"),
        );
        let entry = AuditEntry::new(&actor(&rec.binding.provider), Action::Fetch, Outcome::Error)
            .named(audit_name(
                rec,
                rec.upstream_version,
                "cache refused past max_staleness",
            ));
        store.record(&entry)?;
        return Err(Error::Unavailable {
            reason: format!(
                "{}: the cached value is {}s old, past max_staleness {max}s{why}",
                rec.binding.target(),
                age_us / 1_000_000,
            ),
        });
    }
    Ok(Freshness {
        stale: down.is_some() || rec.last_error.is_some(),
        fetched_at: ts(last),
    })
}
