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

use serde::Serialize;

use super::Ctx;
use super::args::ApplyArgs;
use super::backend::Backend;
use super::output;
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::types::PrincipalSpec;
use crate::types::{ListFilter, SecretBytes, SetRequest};
use crate::unlock::{prompt_hidden, read_secret_file};
use manifest::{ValueSource, WantSecret};
use plan::{Change, Current, Op, Step};

/// `apply`.
pub fn apply(ctx: &Ctx, args: &ApplyArgs) -> Result<()> {
    let m = manifest::read(&args.file)?;
    let b = ctx.backend()?;
    let cur = Current {
        secrets: b.list(&ListFilter::default())?,
        principals: b.principals()?,
        me: b.whoami()?,
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
    eprintln!("applied {changed} change(s)");
    Ok(())
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
        ValueSource::Prompt => prompt_hidden(&format!("value for {}/{}: ", w.scope, w.name)),
    }
}

/// Runs the operations: every secret write first (one transaction on the file), then
/// principals, teams and deletions in plan order. Returns how many steps changed something.
fn execute(b: &Backend, steps: &[Step]) -> Result<usize> {
    let mut writes: Vec<(String, SetRequest)> = Vec::new();
    for op in steps.iter().flat_map(|s| &s.ops) {
        match op {
            Op::CreateSecret(w, src) => {
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
        Op::CreateSecret(..) | Op::UpdateSecret(_) => {}
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
            b.grant(name, g)?;
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
