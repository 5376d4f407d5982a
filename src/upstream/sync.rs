//! `sync pull`: mirror a KV v2 subtree into local secrets, in one local transaction.
//!
//! # Naming rule
//!
//! Upstream path `PATH` under mount `MOUNT` becomes the org secret `MOUNT/PATH` (so
//! `secret/prod/stripe`). Every key of its data becomes a field of that secret; the key
//! `value`, when present, is also the secret's value (a secret with fields only otherwise).
//! Meta `upstream.provider`, `upstream.path` (`MOUNT/PATH`), `upstream.version` and
//! `upstream.custom.K` for each `custom_metadata` entry are kept. A path whose latest
//! version is deleted upstream, or that is no longer listed, is reported as
//! `deleted_upstream` and deleted locally only with `prune`.

use std::collections::{BTreeMap, BTreeSet};

use super::Session;
use super::client::{self, Failure, KvRead, KvSecret};
use super::resolve::value_bytes;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::types::{
    Action, Actor, AuditEntry, ListFilter, Outcome, Scope, SetRequest, SyncReport, validate_name,
};

/// Reads at most this many paths at once.
const CONCURRENCY: usize = 16;

/// Mirrors `prefix` (`MOUNT[/PATH]`, default `secret`) of `provider` (owner only).
///
/// # Errors
/// `NotFound` for an unknown provider or mount; `Unauthenticated`; `Unavailable` when
/// upstream does not answer (nothing is written then).
pub fn pull(
    store: &Store,
    actor: &Actor,
    provider: &str,
    prefix: Option<&str>,
    dry_run: bool,
    prune: bool,
) -> Result<SyncReport> {
    store.provider(actor, provider)?;
    let prefix = prefix.unwrap_or("secret").trim_matches('/');
    let (mount, sub) = prefix.split_once('/').unwrap_or((prefix, ""));
    if mount.is_empty() || sub.split('/').any(|s| s == "..") {
        return Err(Error::invalid(
            "prefix",
            format!("expected MOUNT[/PATH], found {prefix:?}"),
        ));
    }
    let sub = if sub.is_empty() {
        String::new()
    } else {
        format!("{sub}/")
    };
    let session = Session::open(store, provider)?;
    let target = format!("{provider}:{mount}/{sub}");
    let (m, s) = (mount.to_owned(), sub.clone());
    let read = session
        .with_token(move |http, p, token| {
            let (m, s) = (m.clone(), s.clone());
            async move { walk(http, p, token, m, s).await }
        })?
        .map_err(|f| f.into_error(&target));
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            store.record(
                &AuditEntry::new(actor, Action::Fetch, Outcome::Error)
                    .named(format!("{target} sync pull")),
            )?;
            return Err(e);
        }
    };
    let mut report = SyncReport {
        paths: read.len(),
        dry_run,
        ..SyncReport::default()
    };
    let local = local_mirrors(store, actor, provider, &format!("{mount}/{sub}"))?;
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    for (path, r) in read {
        let name = format!("{mount}/{path}");
        let KvRead::Found(kv) = r else { continue };
        if let Err(e) = validate_name(&name) {
            report.skipped.push(format!("{name}: {e}"));
            continue;
        }
        seen.insert(name.clone());
        match local.get(&name) {
            Some(Some(v)) if *v == kv.version => report.unchanged += 1,
            Some(_) => report.updated.push(name.clone()),
            None => report.created.push(name.clone()),
        }
        if local.get(&name).and_then(|v| *v) != Some(kv.version) {
            items.push((name, mirror(provider, mount, &path, &kv)));
        }
    }
    report.deleted_upstream = local
        .keys()
        .filter(|n| !seen.contains(*n))
        .cloned()
        .collect();
    if !dry_run {
        store.set_many(actor, items)?;
        if prune {
            for name in &report.deleted_upstream {
                store.delete(actor, name, Some(&Scope::Org), true)?;
                report.pruned.push(name.clone());
            }
        }
    }
    store.record(
        &AuditEntry::new(actor, Action::Fetch, Outcome::Ok).named(format!(
            "{target} sync pull: {} paths, {} created, {} updated, {} deleted upstream{}",
            report.paths,
            report.created.len(),
            report.updated.len(),
            report.deleted_upstream.len(),
            if dry_run { " (dry run)" } else { "" }
        )),
    )?;
    Ok(report)
}

fn mirror(provider: &str, mount: &str, path: &str, kv: &KvSecret) -> SetRequest {
    let mut meta = BTreeMap::new();
    meta.insert("upstream.provider".to_owned(), provider.to_owned());
    meta.insert("upstream.path".to_owned(), format!("{mount}/{path}"));
    meta.insert("upstream.version".to_owned(), kv.version.to_string());
    for (k, v) in &kv.custom_metadata {
        meta.insert(format!("upstream.custom.{k}"), v.clone());
    }
    SetRequest {
        scope: Scope::Org,
        value: Some(kv.data.get("value").map(value_bytes).unwrap_or_default()),
        fields: kv
            .data
            .iter()
            .map(|(k, v)| (k.clone(), value_bytes(v)))
            .collect(),
        meta,
        allow_empty: true,
        ..SetRequest::default()
    }
}

/// Local mirrors of `provider` under `under` (`MOUNT/PATH/`): name → upstream version.
fn local_mirrors(
    store: &Store,
    actor: &Actor,
    provider: &str,
    under: &str,
) -> Result<BTreeMap<String, Option<u64>>> {
    let filter = ListFilter {
        scope: Some(Scope::Org),
        ..ListFilter::default()
    };
    Ok(store
        .list(actor, &filter)?
        .into_iter()
        .filter(|m| {
            m.meta.get("upstream.provider").map(String::as_str) == Some(provider)
                && m.meta
                    .get("upstream.path")
                    .is_some_and(|p| p.starts_with(under))
                && !m.meta.contains_key("upstream.key")
        })
        .map(|m| {
            let v = m.meta.get("upstream.version").and_then(|v| v.parse().ok());
            (m.name, v)
        })
        .collect())
}

/// Lists the tree under `mount/sub` and reads every path, [`CONCURRENCY`] at a time.
async fn walk(
    http: reqwest::Client,
    p: crate::types::Provider,
    token: zeroize::Zeroizing<String>,
    mount: String,
    sub: String,
) -> std::result::Result<Vec<(String, KvRead)>, Failure> {
    let mut folders = vec![sub];
    let mut leaves = Vec::new();
    while let Some(dir) = folders.pop() {
        for k in client::kv_list(&http, &p, &token, &mount, &dir).await? {
            let full = format!("{dir}{k}");
            if k.ends_with('/') {
                folders.push(full);
            } else {
                leaves.push(full);
            }
        }
    }
    leaves.sort();
    let mut out = Vec::with_capacity(leaves.len());
    let mut set = tokio::task::JoinSet::new();
    let mut next = leaves.into_iter();
    loop {
        while set.len() < CONCURRENCY {
            let Some(path) = next.next() else { break };
            let (http, p, token, mount) = (http.clone(), p.clone(), token.clone(), mount.clone());
            set.spawn(async move {
                let r = client::kv_read(&http, &p, &token, &mount, &path).await;
                r.map(|r| (path, r))
            });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let item = done.map_err(|e| Failure::Other(Error::internal("upstream task", e)))??;
        out.push(item);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
