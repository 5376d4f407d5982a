//! Store and key commands: `init`, `passwd`, `keyslot add|ls|rm`, `rekey`. These
//! work on the file itself (the daemon's API has no keyslot endpoints), so a running daemon
//! must be stopped first; the store refuses a second opener with a message saying so.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::Ctx;
use super::args::{InitArgs, KeyslotAddArgs, KeyslotCommand, PasswdArgs};
use super::output::{self, opt};
use crate::crypto::kdf::KdfParams;
use crate::error::{Error, Result};
use crate::store::{KdfChoice, NewKeyslot, Store};
use crate::types::{Actor, SecretBytes};
use crate::unlock::{NewPassphrase, PassphraseEnv, new_passphrase, read_private_file};

fn kdf_choice(args: &InitArgs) -> KdfChoice {
    match (args.insecure_kdf, args.kdf_memory, args.kdf_iterations) {
        (true, _, _) => KdfChoice::Insecure,
        (false, Some(mib), Some(t)) => KdfChoice::Params(KdfParams {
            memory_kib: mib.saturating_mul(1024),
            iterations: t,
            parallelism: 1,
        }),
        _ => KdfChoice::Calibrate,
    }
}

/// `init`.
pub fn init(ctx: &Ctx, args: &InitArgs) -> Result<()> {
    let path = ctx.store_path();
    if ctx.global().unlock.keyfile.is_some() || ctx.global().unlock.unlock_credential.is_some() {
        return Err(Error::invalid(
            "keyfile",
            "init protects a new store with a passphrase; add a key file or a systemd \
             credential afterwards with `tresor keyslot add --keyfile PATH | --systemd-creds NAME`",
        ));
    }
    if path.exists() {
        return Err(Error::Conflict {
            reason: format!(
                "{} already exists; tresor init never overwrites a store",
                path.display()
            ),
            references: Vec::new(),
        });
    }
    let kdf = kdf_choice(args);
    let pass = new_passphrase(NewPassphrase::Given(
        &ctx.global().unlock,
        PassphraseEnv::Read,
    ))?;
    if kdf == KdfChoice::Calibrate {
        eprintln!("calibrating the key derivation to about one second on this host...");
    }
    let store = Store::create(&path, &pass, &kdf, &Actor::direct_owner())?;
    if kdf == KdfChoice::Insecure {
        super::warn_insecure(&path);
    }
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "path": path.display().to_string(),
            "store_id": store.store_id(),
        }));
    }
    eprintln!("created {} (store id {})", path.display(), store.store_id());
    Ok(())
}

fn kdf_for(store: &Store) -> KdfChoice {
    // An --insecure-kdf store stays cheap to open (tests); a real one is calibrated again.
    if store.header().insecure_kdf() {
        KdfChoice::Insecure
    } else {
        KdfChoice::Calibrate
    }
}

/// `passwd`.
pub fn passwd(ctx: &Ctx, args: &PasswdArgs) -> Result<()> {
    let d = ctx.open_direct()?;
    let new = new_passphrase(NewPassphrase::file_or_prompt(
        args.new_passphrase_file.as_deref(),
    ))?;
    d.store
        .change_passphrase(&d.actor, &new, &kdf_for(&d.store))?;
    eprintln!("passphrase changed");
    warn_old_backups(&d.store);
    Ok(())
}

/// `keyslot ...`.
pub fn keyslot(ctx: &Ctx, cmd: &KeyslotCommand) -> Result<()> {
    match cmd {
        KeyslotCommand::Add(args) => keyslot_add(ctx, args),
        KeyslotCommand::Ls => keyslot_ls(ctx),
        KeyslotCommand::Rm { id } => {
            let d = ctx.open_direct()?;
            d.store.keyslot_remove(&d.actor, *id)?;
            eprintln!("removed keyslot {id}");
            Ok(())
        }
    }
}

/// Creates a key file of 32 random bytes, mode 0600, never overwriting. Returns its contents.
fn create_keyfile(path: &Path) -> Result<SecretBytes> {
    let mut raw = vec![0u8; 32];
    crate::crypto::fill_random(&mut raw)?;
    let raw = SecretBytes::new(raw);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::invalid("keyfile", format!("cannot create {}: {e}", path.display())))?;
    f.write_all(raw.expose()).and_then(|()| f.sync_all())?;
    Ok(raw)
}

fn keyslot_add(ctx: &Ctx, args: &KeyslotAddArgs) -> Result<()> {
    let d = ctx.open_direct()?;
    let mut created = None;
    let mut sealed = None;
    let new = if let Some(path) = &args.keyfile {
        if path.exists() {
            NewKeyslot::Keyfile(read_private_file(path, "keyfile")?)
        } else {
            let raw = create_keyfile(path)?;
            created = Some(path);
            NewKeyslot::Keyfile(raw)
        }
    } else if let Some(name) = &args.systemd_creds {
        let out = args
            .credential_out
            .clone()
            .unwrap_or_else(|| super::credential::default_out(name));
        let key = super::credential::seal_new(name, &out)?;
        sealed = Some((name.as_str(), out));
        NewKeyslot::Credential(key)
    } else if args.recovery {
        NewKeyslot::Recovery
    } else {
        let p = new_passphrase(NewPassphrase::file_or_prompt(
            args.new_passphrase_file.as_deref(),
        ))?;
        NewKeyslot::Passphrase(p, kdf_for(&d.store))
    };
    let (id, recovery) = match d.store.keyslot_add(&d.actor, new) {
        Ok(r) => r,
        Err(e) => {
            if let Some(path) = created {
                let _ = std::fs::remove_file(path);
            }
            if let Some((_, out)) = &sealed {
                let _ = std::fs::remove_file(out);
            }
            return Err(e);
        }
    };
    if let Some(path) = created {
        eprintln!("created key file {} (mode 0600)", path.display());
    }
    if let Some((name, out)) = &sealed {
        eprintln!(
            "sealed credential {name} in {} (systemd-creds); in the unit: \
             LoadCredentialEncrypted={name}:{} and tresord --unlock-credential {name}",
            out.display(),
            out.display()
        );
    }
    if ctx.json() {
        let key = recovery
            .as_ref()
            .and_then(|r| r.as_str().map(str::to_owned));
        return output::print_json(&serde_json::json!({ "id": id, "recovery_key": key }));
    }
    if let Some(key) = recovery {
        eprintln!("recovery key (shown once; write it down and keep it offline):");
        output::print_line(key.as_str().unwrap_or_default())?;
    }
    eprintln!("added keyslot {id}");
    Ok(())
}

fn keyslot_ls(ctx: &Ctx) -> Result<()> {
    // Keyslot kinds and KDF parameters are readable without a key (SPEC §4.1).
    let locked = ctx.open_locked()?;
    let slots = locked.keyslots()?;
    if ctx.json() {
        return output::print_json(&slots);
    }
    let mut t = output::table(&["ID", "KIND", "KDF"]);
    for s in &slots {
        let kdf = s.kdf.map(|p| {
            let mem = if p.memory_kib % 1024 == 0 {
                format!("{} MiB", p.memory_kib / 1024)
            } else {
                format!("{} KiB", p.memory_kib)
            };
            let note = if p.is_insecure() { " (insecure)" } else { "" };
            format!(
                "argon2id m={mem} t={} p={}{note}",
                p.iterations, p.parallelism
            )
        });
        t.add_row(vec![s.id.to_string(), s.kind.to_owned(), opt(kdf)]);
    }
    output::print_table(&t, "no keyslots")
}

/// `rekey`: a new data key, everything re-sealed, with a progress bar on stderr.
pub fn rekey(ctx: &Ctx) -> Result<()> {
    let mut d = ctx.open_direct()?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("re-sealing {bar:40} {pos}/{len} records")
            .expect("the template is valid"),
    );
    let removed = d.store.rekey(&d.actor, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let removed = removed?;
    if ctx.json() {
        return output::print_json(&serde_json::json!({ "removed_keyslots": removed }));
    }
    eprintln!("rekeyed: a new data key seals every record");
    if removed.is_empty() {
        eprintln!("no other keyslots existed");
    } else {
        let ids: Vec<String> = removed.iter().map(u32::to_string).collect();
        eprintln!(
            "removed keyslots {} (they wrapped the old key); add new ones with `tresor keyslot add`",
            ids.join(", ")
        );
    }
    warn_old_backups(&d.store);
    Ok(())
}

/// After a change of passphrase or key: a format 1 backup beside the store still opens
/// with the old ones (and, after a rekey, holds the old data key).
fn warn_old_backups(store: &crate::Store) {
    for b in crate::store::format_1_backups(store.path()) {
        eprintln!(
            "note: {} (kept at the format 2 migration) still opens with the old passphrase and \
             key files; remove it if they are why you changed them",
            b.display()
        );
    }
}
