//! `provider`, `sync`, `set --remote`, and the stale-value warnings of `get`, `run`, `inject`.

use std::collections::BTreeMap;

use super::Ctx;
use super::args::SetArgs;
use super::args::upstream::{ProviderAddArgs, ProviderCommand, SyncCommand};
use super::backend::Backend;
use super::output::{self, opt, opt_ts};
use crate::error::Result;
use crate::ops::Api;
use crate::ops::upstream::{
    ProviderDelete, ProviderGet, ProviderPut, Providers, RemotePut, Sync, SyncAction,
};
use crate::protocol::{EnvItem, decode_map};
use crate::types::{ProviderAuth, SecretBytes, SecretValue, parse_duration};

/// Warns on stderr when a remote secret was served stale from the cache.
pub fn warn_stale(name: &str, v: &SecretValue) {
    if let Some(u) = v.upstream.filter(|u| u.stale) {
        eprintln!(
            "warning: {name}: upstream unreachable; serving the cached value fetched at {}",
            output::ts(u.fetched_at)
        );
    }
}

/// `run`'s environment, warning about stale remote secrets.
pub fn env(backend: &Backend, items: &[EnvItem]) -> Result<BTreeMap<String, SecretBytes>> {
    let r = backend.call(crate::ops::secrets::Env {
        secrets: items.to_vec(),
    })?;
    for (var, at) in &r.stale {
        eprintln!(
            "warning: {var}: upstream unreachable; serving the cached value fetched at {}",
            output::ts(*at)
        );
    }
    decode_map("env", &r.env, &r.env_base64)
}

/// `set NAME --remote PROVIDER:MOUNT/PATH#KEY`.
pub fn set_remote(ctx: &Ctx, args: &SetArgs, remote: &str) -> Result<()> {
    let st = ctx.backend()?.call(RemotePut {
        name: args.name.clone(),
        remote: remote.to_owned(),
        scope: Some(args.scope.parse()?),
        max_staleness: args.max_staleness.clone(),
        refresh: args.refresh.clone(),
    })?;
    if ctx.json() {
        return output::print_json(&st);
    }
    eprintln!("{}: remote secret from {}", st.secret, st.remote);
    Ok(())
}

fn add(ctx: &Ctx, a: &ProviderAddArgs) -> Result<()> {
    let auth = match (
        &a.token_secret,
        &a.approle_role_id_secret,
        &a.approle_secret_id_secret,
    ) {
        (Some(t), _, _) => ProviderAuth::Token {
            token_secret: t.clone(),
        },
        (None, Some(r), Some(s)) => ProviderAuth::Approle {
            role_id_secret: r.clone(),
            secret_id_secret: s.clone(),
        },
        _ => {
            return Err(crate::Error::invalid(
                "auth",
                "give --token-secret, or --approle-role-id-secret and --approle-secret-id-secret",
            ));
        }
    };
    let timeout_ms = a
        .timeout
        .as_deref()
        .map(|t| parse_duration(t).map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)))
        .transpose()?;
    let p = ctx.backend()?.call(ProviderPut {
        name: a.name.clone(),
        kind: a.kind.parse()?,
        addr: a.addr.clone(),
        ca_file: a.ca_file.clone(),
        namespace: a.namespace.clone(),
        auth,
        timeout_ms,
    })?;
    if ctx.json() {
        return output::print_json(&p);
    }
    eprintln!("provider {} added ({})", p.name, p.addr);
    Ok(())
}

/// `provider add|ls|rm|test`.
pub fn provider(ctx: &Ctx, c: &ProviderCommand) -> Result<()> {
    match c {
        ProviderCommand::Add(a) => add(ctx, a),
        ProviderCommand::Ls => {
            let list = ctx.backend()?.call(Providers {})?;
            if ctx.json() {
                return output::print_json(&list);
            }
            let mut t = output::table(&["NAME", "KIND", "ADDR", "AUTH", "NAMESPACE"]);
            for p in &list.providers {
                let auth = match &p.auth {
                    ProviderAuth::Token { token_secret } => format!("token from {token_secret}"),
                    ProviderAuth::Approle { role_id_secret, .. } => {
                        format!("approle from {role_id_secret}")
                    }
                };
                t.add_row(vec![
                    p.name.clone(),
                    format!("{:?}", p.kind).to_lowercase(),
                    p.addr.clone(),
                    auth,
                    opt(p.namespace.as_ref()),
                ]);
            }
            output::print_table(&t, "no providers")
        }
        ProviderCommand::Rm { name, force } => {
            let d = ctx.backend()?.call(ProviderDelete {
                name: name.clone(),
                force: Some(*force),
            })?;
            eprintln!("{} removed", d.deleted);
            Ok(())
        }
        ProviderCommand::Test { name } => {
            let info = ctx.backend()?.call(ProviderGet {
                name: name.clone(),
                test: true,
            })?;
            if ctx.json() {
                return output::print_json(&info);
            }
            output::print_line(&info.tested.unwrap_or_default())
        }
    }
}

/// `sync pull|status`.
pub fn sync(ctx: &Ctx, c: &SyncCommand) -> Result<()> {
    match c {
        SyncCommand::Pull {
            provider,
            prefix,
            dry_run,
            prune,
        } => {
            let r = ctx.backend()?.call(Sync {
                action: SyncAction::Pull,
                provider: Some(provider.clone()),
                prefix: prefix.clone(),
                dry_run: *dry_run,
                prune: *prune,
            })?;
            let report = r.report.unwrap_or_default();
            if ctx.json() {
                return output::print_json(&report);
            }
            let verb = if report.dry_run { "would be " } else { "" };
            for (what, names) in [
                ("created", &report.created),
                ("updated", &report.updated),
                ("deleted upstream", &report.deleted_upstream),
                ("pruned", &report.pruned),
                ("skipped", &report.skipped),
            ] {
                for n in names {
                    eprintln!("{what}: {n}");
                }
            }
            output::print_line(&format!(
                "{} paths: {} {verb}created, {} {verb}updated, {} unchanged, {} deleted upstream{}",
                report.paths,
                report.created.len(),
                report.updated.len(),
                report.unchanged,
                report.deleted_upstream.len(),
                if report.pruned.is_empty() {
                    String::new()
                } else {
                    format!(", {} pruned", report.pruned.len())
                },
            ))
        }
        SyncCommand::Status => {
            let r = ctx.backend()?.call(Sync {
                action: SyncAction::Status,
                ..Sync::default()
            })?;
            if ctx.json() {
                return output::print_json(&r.bindings);
            }
            let mut t = output::table(&[
                "SECRET",
                "REMOTE",
                "UPSTREAM",
                "LAST FETCH",
                "STALENESS",
                "LAST ERROR",
            ]);
            for b in &r.bindings {
                t.add_row(vec![
                    b.secret.clone(),
                    b.remote.clone(),
                    opt(b.upstream_version.map(|v| format!("v{v}"))),
                    opt_ts(b.last_fetch),
                    opt(b.staleness_s.map(|s| format!("{s}s"))),
                    opt(b.last_error.as_ref()),
                ]);
            }
            output::print_table(&t, "no remote secrets")
        }
    }
}
