//! `refs NAME` and `rm`: what refers to a secret, and deleting one only when nothing does
//! (SPEC §1: "references listed before delete").

use super::Ctx;
use super::args::{NameArgs, RmArgs};
use super::output::{self, ts};
use super::secrets::secret_of;
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::types::References;

/// The references and readers as a table: kind, what, by, last.
fn table(r: &References) -> comfy_table::Table {
    let mut t = output::table(&["KIND", "WHAT", "BY", "LAST"]);
    for x in &r.references {
        let by = match (&x.principal, x.uid) {
            (Some(p), Some(uid)) => format!("{p} (uid {uid})"),
            (Some(p), None) => p.clone(),
            _ => String::new(),
        };
        t.add_row(vec![
            x.kind.label().to_owned(),
            x.what.clone(),
            by,
            x.last.map(ts).unwrap_or_default(),
        ]);
    }
    for rd in &r.readers {
        let times = if rd.reads == 1 { "read" } else { "reads" };
        t.add_row(vec![
            "reader".to_owned(),
            format!("{} {times} in the last 30 days", rd.reads),
            rd.principal.clone(),
            ts(rd.last),
        ]);
    }
    t
}

/// `refs NAME`.
pub fn refs(ctx: &Ctx, args: &NameArgs) -> Result<()> {
    let (name, scope) = secret_of(args)?;
    let r = ctx.backend()?.references(&name, scope.as_ref())?;
    if ctx.json() {
        return output::print_json(&r);
    }
    output::print_table(
        &table(&r),
        &format!(
            "{}/{}: no references, not read in the last 30 days",
            r.scope, r.name
        ),
    )
}

/// `rm [--force]`: refused (exit 7) while references exist, listing them and the recent
/// readers; forced, says what it broke.
pub fn rm(ctx: &Ctx, args: &RmArgs) -> Result<()> {
    let (name, scope) = secret_of(&args.secret)?;
    let b = ctx.backend()?;
    let gone = match b.delete(&name, scope.as_ref(), args.force) {
        Ok(gone) => gone,
        Err(Error::Conflict { reason, references }) if !references.is_empty() => {
            // The listing goes to stderr: stdout stays empty for a command that did nothing.
            if let Ok(r) = b.references(&name, scope.as_ref()) {
                if ctx.json() {
                    eprintln!("{}", serde_json::to_string(&r).unwrap_or_default());
                } else {
                    eprintln!(
                        "{}/{} is still referenced; nothing was deleted:",
                        r.scope, r.name
                    );
                    for line in table(&r).to_string().lines() {
                        eprintln!("  {}", line.trim());
                    }
                }
                return Err(Error::Conflict {
                    reason: format!(
                        "{}/{} has {} reference(s); nothing was deleted",
                        r.scope,
                        r.name,
                        r.references.len()
                    ),
                    references,
                });
            }
            return Err(Error::Conflict { reason, references });
        }
        Err(e) => return Err(e),
    };
    if ctx.json() {
        return output::print_json(&gone);
    }
    eprintln!("deleted {}", gone.deleted);
    if !gone.broken.is_empty() {
        eprintln!("--force broke {} reference(s):", gone.broken.len());
        for b in &gone.broken {
            eprintln!("  {b}");
        }
    }
    Ok(())
}

/// Records that the file at `path` resolved `ids` (`apply`, `run --env-file`, `inject`), so
/// that `rm` can list it. Bookkeeping, not a security decision: a failure is a warning and
/// the command goes on.
pub(super) fn record(
    b: &super::backend::Backend,
    kind: crate::types::RefKind,
    path: &std::path::Path,
    ids: &[crate::ops::refs::SecretId],
) {
    if ids.is_empty() {
        return;
    }
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let Some(path) = abs.to_str() else {
        return;
    };
    for chunk in ids.chunks(crate::ops::refs::MAX_IDS) {
        if let Err(e) = b.record_references(kind, path, chunk.to_vec()) {
            eprintln!(
                "warning: could not record {path} as a reference ({e}); `tresor refs` will not list it"
            );
            return;
        }
    }
}
