//! `inbox key`, `submit`, `bundle create`, `bundle apply` (SPEC §7).

use std::io::Read;
use std::path::Path;

use super::args::airgap::{
    BundleApplyArgs, BundleCommand, BundleCreateArgs, InboxCommand, SubmitArgs,
};
use super::audit::{FromNow, parse_time};
use super::backend::Backend;
use super::files::{self, Existing};
use super::{Ctx, daemon_ctl, output};
use crate::error::{Error, Result};
use crate::format::bundle::{SUBMISSION_TAG, Submission, seal_submission};
use crate::ops::Api;
use crate::ops::airgap::{BundleApply, BundleCreate, InboxKeyGet, InboxSubmit};
use crate::types::{BundlePlan, InboxKey, SecretType, b64};

/// `inbox key [--sign]`.
pub fn inbox(ctx: &Ctx, cmd: &InboxCommand) -> Result<()> {
    let InboxCommand::Key { sign } = cmd;
    let key = inbox_key(ctx)?;
    if ctx.json() {
        return output::print_json(&key);
    }
    output::print_line(if *sign { &key.sign } else { &key.recipient })
}

fn inbox_key(ctx: &Ctx) -> Result<InboxKey> {
    if !ctx.global().direct
        && let Some(client) = daemon_ctl::connect(ctx)?
    {
        return Api::call(&client, InboxKeyGet {});
    }
    // The public keys are readable without unlocking; a store made before they existed is
    // unlocked once to make them.
    if let Some(k) = ctx.open_locked()?.inbox_key()? {
        return Ok(k);
    }
    ctx.open_direct()?.call(InboxKeyGet {})
}

/// `submit --to RECIPIENT NAME [-o FILE]`: the value from stdin.
pub fn submit(ctx: &Ctx, args: &SubmitArgs) -> Result<()> {
    let mut raw = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .read_to_end(&mut raw)
        .map_err(|e| Error::invalid("value", format!("cannot read stdin: {e}")))?;
    if raw.is_empty() {
        return Err(Error::invalid(
            "value",
            "stdin was empty; pipe the value in",
        ));
    }
    let mut id = [0u8; 16];
    crate::crypto::fill_random(&mut id)?;
    let (value, value_base64) = match std::str::from_utf8(&raw) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (None, Some(base64::Engine::encode(&b64(), &*raw))),
    };
    let sub = Submission {
        tresor: SUBMISSION_TAG.into(),
        name: args.name.clone(),
        scope: super::secrets::parse_scope(args.scope.as_deref())?,
        value,
        value_base64,
        secret_type: args
            .secret_type
            .as_deref()
            .map(str::parse::<SecretType>)
            .transpose()?,
        description: None,
        id: Some(crate::store::hex(&id)),
        time: Some(crate::sys::now()),
    };
    let sealed = seal_submission(&args.to, &sub)?;
    drop(sub);
    if !ctx.global().direct
        && let Some(client) = daemon_ctl::connect(ctx)?
    {
        let r = Api::call(
            &client,
            InboxSubmit {
                submission_base64: base64::Engine::encode(&b64(), &sealed),
            },
        )?;
        if ctx.json() {
            return output::print_json(&r);
        }
        if !r.applied {
            eprintln!(
                "submitted {}: the daemon is locked; it is applied at the next unlock",
                args.name
            );
        }
        for o in &r.outcomes {
            match (&o.quarantined, &o.secret, o.version) {
                (Some(why), _, _) => eprintln!("quarantined {}: {why}", o.file),
                (None, Some(s), Some(v)) => eprintln!("applied {s} version {v}"),
                _ => {}
            }
        }
        return Ok(());
    }
    let out = match &args.out {
        Some(p) => {
            files::write_private(p, &sealed, Existing::Keep(""))?;
            p.clone()
        }
        None => drop_into_inbox(&crate::store::inbox_dir(&ctx.store_path()), &sealed)?,
    };
    if ctx.json() {
        return output::print_json(&serde_json::json!({"out": out.display().to_string()}));
    }
    eprintln!(
        "no daemon answers: wrote the submission to {}; it is applied at the store's next unlock",
        out.display()
    );
    Ok(())
}

/// Writes a submission into the inbox directory: a hidden temporary file, then a rename, so
/// that the store never picks up half a file.
fn drop_into_inbox(dir: &Path, sealed: &[u8]) -> Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !dir.is_dir() {
        return Err(Error::not_found(
            "inbox",
            format!(
                "{} (no inbox directory: run `tresor inbox key` on the store's host once, or \
                 pass -o FILE)",
                dir.display()
            ),
        ));
    }
    let mut rnd = [0u8; 8];
    crate::crypto::fill_random(&mut rnd)?;
    let name = format!(
        "{}-{}.age",
        crate::sys::now().as_microsecond(),
        crate::store::hex(&rnd)
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |e: std::io::Error| Error::internal(format!("cannot write into {}", dir.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(sealed)
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    let out = dir.join(name);
    std::fs::rename(&tmp, &out).map_err(io)?;
    Ok(out)
}

/// `bundle create|apply`.
pub fn bundle(ctx: &Ctx, cmd: &BundleCommand) -> Result<()> {
    match cmd {
        BundleCommand::Create(a) => create(ctx, a),
        BundleCommand::Apply(a) => apply(ctx, a),
    }
}

fn create(ctx: &Ctx, a: &BundleCreateArgs) -> Result<()> {
    files::check_target(&a.out, Existing::Keep(""))?;
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time("since", s, FromNow::Back))
        .transpose()?;
    let backend: Backend = ctx.backend()?;
    let r = backend.call(BundleCreate {
        to: a.to.clone(),
        secrets: if a.all { Vec::new() } else { a.secrets.clone() },
        scope: super::secrets::parse_scope(a.scope.as_deref())?,
        since,
        with_history: a.with_history,
    })?;
    drop(backend);
    let bytes = crate::types::decode_b64("bundle_base64", &r.bundle_base64)?;
    files::write_private(&a.out, &bytes, Existing::Keep(""))?;
    if ctx.json() {
        return output::print_json(&r.info);
    }
    if let Some(i) = &r.info {
        eprintln!(
            "wrote {}: {} secrets ({} versions), {} deletions; bundle seq {} from store {}",
            a.out.display(),
            i.secrets,
            i.versions,
            i.tombstones,
            i.seq,
            i.source
        );
    }
    Ok(())
}

fn apply(ctx: &Ctx, a: &BundleApplyArgs) -> Result<()> {
    let bytes = std::fs::read(&a.file)
        .map_err(|e| Error::invalid("bundle", format!("cannot read {}: {e}", a.file.display())))?;
    let backend: Backend = ctx.backend()?;
    let plan = backend.call(BundleApply {
        bundle_base64: base64::Engine::encode(&b64(), &bytes),
        from_key: a.from_key.clone(),
        dry_run: a.dry_run,
    })?;
    print_plan(ctx, &plan)
}

fn print_plan(ctx: &Ctx, plan: &BundlePlan) -> Result<()> {
    if ctx.json() {
        return output::print_json(plan);
    }
    let mut t = output::table(&["ACTION", "SCOPE", "NAME", "VERSION", "NOTE"]);
    for i in &plan.items {
        let action = serde_json::to_value(i.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        t.add_row(vec![
            action,
            i.scope.to_string(),
            i.name.clone(),
            output::opt(i.version),
            i.note.clone().unwrap_or_default(),
        ]);
    }
    output::print_table(&t, "the bundle changes nothing")?;
    eprintln!(
        "bundle seq {} from store {} signed by {}: {}",
        plan.seq,
        plan.source,
        plan.signer,
        if plan.applied {
            "applied"
        } else {
            "dry run, nothing applied"
        }
    );
    Ok(())
}
