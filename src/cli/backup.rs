//! `backup OUT` and `restore BACKUP [--to PATH] [--force]`.
//!
//! `backup` goes to the daemon when one answers (`GET /v1/backup`, streamed into a new 0600
//! file), else copies the file in this process. `restore` checks a backup before it becomes a
//! store: a copy is made beside the target, opened (redb's integrity check), unlocked with the
//! usual unlock sources, its audit chain verified and the restore recorded in it; only then is
//! it moved into place. An existing store is replaced only with `--force`, and never while a
//! process (a running `tresord`) holds it.

use std::path::Path;

use super::Ctx;
use super::args::{BackupArgs, RestoreArgs};
use super::files::{self, Existing};
use super::output;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::types::{Action, Actor, AuditEntry, Outcome};

/// `backup OUT`.
pub fn backup(ctx: &Ctx, args: &BackupArgs) -> Result<()> {
    let out = &args.out;
    files::check_target(out, Existing::Keep(""))?;
    let daemon = if ctx.global().direct {
        None
    } else {
        super::daemon_ctl::connect(ctx)?
    };
    let (bytes, via) = if let Some(client) = daemon {
        let mut n = 0;
        files::write_private_with(out, Existing::Keep(""), &mut |f| {
            n = client.backup(f)?;
            Ok(())
        })?;
        (n, "tresord")
    } else {
        let d = ctx.open_direct().map_err(|e| match e {
            // The daemon holds the file: it makes the copy itself.
            Error::Conflict { reason, references } if ctx.global().direct => Error::Conflict {
                reason: format!("{reason}; without --direct, `tresor backup` asks the daemon"),
                references,
            },
            other => other,
        })?;
        d.store.backup(&d.actor, out)?;
        (std::fs::metadata(out).map_or(0, |m| m.len()), "the file")
    };
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "path": out.display().to_string(),
            "bytes": bytes,
            "via": via,
        }));
    }
    eprintln!(
        "wrote {} ({bytes} bytes, from {via}; opens with the same keyslots; check it with \
         `tresor restore {} --to /tmp/check.tresor`)",
        out.display(),
        out.display()
    );
    Ok(())
}

/// `restore BACKUP [--to PATH] [--force]`.
pub fn restore(ctx: &Ctx, args: &RestoreArgs) -> Result<()> {
    let target = args.to.clone().unwrap_or_else(|| ctx.store_path());
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Keep("--force")
    };
    files::check_target(&target, existing)?;
    if target.exists() {
        // Held by a daemon (or another tresor): replacing the file under it would lose what
        // it writes next. Opening it takes the same lock the daemon holds.
        // A damaged or foreign file is what a restore replaces: only "in use" stops it.
        if let Err(e @ Error::Conflict { .. }) = Store::open(&target) {
            return Err(e);
        }
    }
    let mut source = std::fs::File::open(&args.backup)
        .map_err(|e| Error::not_found("backup", format!("{} ({e})", args.backup.display())))?;
    // A new host has no store directory yet; it gets one as `init` would make it.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create {}", dir.display()), e))?;
    }
    crate::sys::check_store_dir(&target)?;
    let (tmp, mut f) = files::temp_file(&target)?;
    // Checked as a copy beside the target; only a copy that holds up is moved into place.
    let done = std::io::copy(&mut source, &mut f)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot copy {}", args.backup.display()), e))
        .and_then(|()| check_restored(ctx, &tmp, &args.backup))
        .and_then(|s| {
            // A journal left beside the replaced store belongs to it, not to the restored one
            // (its frames would not continue the restored chain, but they are not its own).
            match std::fs::remove_file(crate::store::journal_path(&target)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::internal(
                    "cannot remove the replaced store's audit journal",
                    e,
                )),
                _ => Ok(s),
            }
        })
        .and_then(|s| files::publish(&tmp, &target, existing).map(|()| s));
    drop(f);
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let (secrets, records) = done?;
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "path": target.display().to_string(),
            "secrets": secrets,
            "audit_records": records,
            "audit_ok": true,
        }));
    }
    eprintln!(
        "restored {} to {}: {secrets} secrets, audit chain of {records} records verified",
        args.backup.display(),
        target.display()
    );
    Ok(())
}

/// Opens and unlocks a restored copy, verifies its audit chain and records the restore in it.
/// Returns the number of secrets and of audit records.
fn check_restored(ctx: &Ctx, path: &Path, from: &Path) -> Result<(u64, u64)> {
    let locked = Store::open(path).map_err(|e| match e {
        Error::Integrity { .. } | Error::NotFound { .. } => Error::integrity(
            "backup",
            format!("{} is not a tresor store that opens ({e})", from.display()),
        ),
        other => other,
    })?;
    if locked.is_insecure() {
        super::warn_insecure(from);
    }
    let secret = crate::unlock::unlock_secret(&ctx.global().unlock, path)?;
    let actor = Actor::direct_owner();
    let store = locked.unlock(&secret, &actor)?;
    let report = store.audit_verify()?;
    if !report.ok {
        return Err(Error::integrity(
            "audit",
            format!(
                "{}: the audit chain breaks at seq {}; not restored",
                from.display(),
                report.first_broken_seq.unwrap_or(0)
            ),
        ));
    }
    store.record(
        &AuditEntry::new(&actor, Action::Import, Outcome::Ok)
            .named(format!("restore from {}", from.display())),
    )?;
    Ok((store.count()?, report.records))
}
