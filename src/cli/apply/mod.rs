//! `apply -f tresor.toml [--dry-run] [--prune]`: the store made to match a manifest. The plan
//! is printed first (never a value); values are read from their sources only for secrets
//! that are created, and only when not a dry run.
//!
//! ```text
//! manifest  the TOML format, parsed with spans and checked
//! plan      manifest vs store -> steps (create/update/unchanged/delete) and their operations
//! ```

pub(super) mod manifest;
mod plan;

use std::collections::BTreeSet;

use serde::Serialize;

use super::Ctx;
use super::args::ApplyArgs;
use super::backend::Backend;
use super::output;
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::ops::refs::SecretId;
use crate::types::{ListFilter, SecretBytes, SetRequest};
use crate::types::{PrincipalSpec, RefKind, Scope};
use crate::unlock::{prompt_hidden, read_secret_file};
use manifest::{ValueSource, WantSecret};
use plan::{Change, Current, Op, Step};

/// `apply`.
pub fn apply(ctx: &Ctx, args: &ApplyArgs) -> Result<()> {
    let m = manifest::read(&args.file)?;
    let b = ctx.backend()?;
    let secrets = b.list(&ListFilter::default())?;
    let rotate = if args.no_rotate {
        BTreeSet::new()
    } else {
        changed_values(&b, &m.secrets, &secrets)?
    };
    let cur = Current {
        secrets,
        principals: b.principals()?,
        me: b.whoami()?,
        rotate,
    };
    let steps = plan::plan(&m, &cur, args.prune)?;
    print_plan(ctx, &steps, args.dry_run)?;
    if args.prune
        && let Some(me) = &cur.me
    {
        eprintln!("--prune never removes your own principal ({me})");
    }
    if args.dry_run {
        eprintln!("dry run: nothing changed");
        return Ok(());
    }
    let changed = execute(&b, &steps)?;
    let ids = m.secrets.iter().map(|w| SecretId {
        name: w.name.clone(),
        scope: Some(w.scope.clone()),
    });
    super::refs::record(&b, RefKind::Manifest, &args.file, &ids.collect::<Vec<_>>());
    eprintln!("applied {changed} change(s)");
    Ok(())
}

/// The existing secrets whose manifest value (from `env:` or `file:`) differs from the stored
/// one, compared by keyed fingerprint (the stored value is not read). A `prompt` value is
/// asked for only when its secret is created, never to compare; a source that cannot be read
/// now (an unset variable) leaves the value as it is, with a warning. A secret of fields only
/// (no value to compare) counts as changed.
fn changed_values(
    b: &Backend,
    wants: &[WantSecret],
    have: &[crate::types::SecretMeta],
) -> Result<BTreeSet<(Scope, String)>> {
    let mut out = BTreeSet::new();
    for w in wants {
        let Some(src) = w
            .value
            .as_ref()
            .filter(|s| !matches!(s, ValueSource::Prompt))
        else {
            continue;
        };
        if !have.iter().any(|h| h.scope == w.scope && h.name == w.name) {
            continue;
        }
        let value = match read_value(w, src) {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "warning: {}/{}: value not compared ({e}); left as it is",
                    w.scope, w.name
                );
                continue;
            }
        };
        if b.same_value(&w.name, Some(&w.scope), &value)? != Some(true) {
            out.insert((w.scope.clone(), w.name.clone()));
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct PlanDoc<'a> {
    dry_run: bool,
    steps: &'a [Step],
}

fn print_plan(ctx: &Ctx, steps: &[Step], dry_run: bool) -> Result<()> {
    if ctx.json() {
        return output::print_json(&PlanDoc { dry_run, steps });
    }
    for s in steps {
        output::print_line(&s.to_string())?;
    }
    let count = |c: Change| steps.iter().filter(|s| s.change == c).count();
    eprintln!(
        "plan: {} to create, {} to update, {} unchanged, {} to delete",
        count(Change::Create),
        count(Change::Update),
        count(Change::Unchanged),
        count(Change::Delete)
    );
    Ok(())
}

/// Reads a new secret's value from its source.
fn read_value(w: &WantSecret, src: &ValueSource) -> Result<SecretBytes> {
    match src {
        ValueSource::Env(var) => std::env::var_os(var)
            .map(|v| SecretBytes::new(v.into_encoded_bytes()))
            .ok_or_else(|| {
                Error::invalid(
                    &w.at,
                    format!(
                        "value of {}: the environment variable {var} is not set",
                        w.name
                    ),
                )
            }),
        ValueSource::File(p) => read_secret_file(p, "value"),
        ValueSource::Prompt if !crate::unlock::has_terminal() => Err(Error::invalid(
            &w.at,
            format!(
                "the value of {}/{} is \"prompt\", and a value prompt needs a terminal; run \
                 apply on a terminal, or give the value as env:VAR or file:PATH",
                w.scope, w.name
            ),
        )),
        ValueSource::Prompt => prompt_hidden(&format!("value for {}/{}: ", w.scope, w.name)),
    }
}

/// Runs the operations: every secret write first (one transaction on the file), then
/// principals, teams and deletions in plan order. Returns how many steps changed something.
fn execute(b: &Backend, steps: &[Step]) -> Result<usize> {
    let mut writes: Vec<(String, SetRequest)> = Vec::new();
    for op in steps.iter().flat_map(|s| &s.ops) {
        match op {
            Op::CreateSecret(w, src) | Op::RotateSecret(w, src) => {
                let mut req = plan::set_request(w);
                req.value = Some(read_value(w, src)?);
                writes.push((w.name.clone(), req));
            }
            Op::UpdateSecret(w) => writes.push((w.name.clone(), plan::set_request(w))),
            _ => {}
        }
    }
    let others = steps
        .iter()
        .flat_map(|s| &s.ops)
        .filter(|op| !matches!(op, Op::CreateSecret(..) | Op::UpdateSecret(_)))
        .count();
    let bar = super::progress::bar(writes.len() + others, "applying");
    let done = (|| {
        if !writes.is_empty() {
            super::progress::set_many(b, writes, &bar)?;
        }
        for op in steps.iter().flat_map(|s| &s.ops) {
            run_op(b, op)?;
            if !matches!(op, Op::CreateSecret(..) | Op::UpdateSecret(_)) {
                bar.inc(1);
            }
        }
        Ok(())
    })();
    bar.finish_and_clear();
    done.map(|()| steps.iter().filter(|s| !s.ops.is_empty()).count())
}

fn run_op(b: &Backend, op: &Op) -> Result<()> {
    match op {
        Op::CreateSecret(..) | Op::RotateSecret(..) | Op::UpdateSecret(_) => {}
        Op::AddPrincipal(w) => {
            b.principal_add(&PrincipalSpec {
                name: w.name.clone(),
                role: w.role,
                uid: w.uid,
                gid: w.gid,
                token: false,
            })?;
        }
        Op::Revoke(name, pattern) => {
            b.revoke(name, pattern)?;
        }
        Op::Grant(name, g) => {
            for w in b.grant_warned(name, g)?.warnings {
                eprintln!("warning: grant {} to {name}: {w}", g.pattern);
            }
        }
        Op::AddTeam(t) => {
            b.team_add(t)?;
        }
        Op::Join(t, m) => {
            b.team_join(t, m)?;
        }
        Op::Leave(t, m) => {
            b.team_leave(t, m)?;
        }
        Op::DeleteSecret(name, scope) => {
            b.delete(name, Some(scope), false)?;
        }
        Op::RemovePrincipal(name) => {
            b.principal_remove(name)?;
        }
    }
    Ok(())
}
