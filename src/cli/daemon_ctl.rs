//! Daemon control: finding the daemon, `daemon`, `status`, `lock`, `unlock`.

use super::Ctx;
use super::output::{self, opt, ts};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::protocol::Status;
use crate::store::UnlockSecret;
use crate::types::SecretBytes;

/// The environment variable an agent may set to send its bearer token (never a flag: argv is
/// visible to every user of the host).
pub const TOKEN_ENV: &str = "TRESOR_TOKEN";

pub(super) fn with_token(c: Client) -> Result<Client> {
    match std::env::var_os(TOKEN_ENV) {
        Some(t) => c.with_token(&SecretBytes::new(t.into_encoded_bytes())),
        None => Ok(c),
    }
}

/// The daemon, when one answers on the socket. The probe's connection carries the first
/// request, which keeps `tresor get` through the daemon to one connection.
pub(super) fn connect(ctx: &Ctx) -> Result<Option<Client>> {
    Client::connect(ctx.socket_path())?
        .map(with_token)
        .transpose()
}

/// The client of a daemon that must be running (`lock`, `unlock`).
fn running(ctx: &Ctx) -> Result<Client> {
    let socket = ctx.socket_path();
    if let Some(c) = Client::connect(&socket)? {
        return with_token(c);
    }
    Err(Error::not_found(
        "daemon",
        format!(
            "nothing answers on {}; start one with `tresor daemon`",
            socket.display()
        ),
    ))
}

fn print_status(ctx: &Ctx, s: &Status) -> Result<()> {
    if ctx.json() {
        return output::print_json(s);
    }
    let rows = [
        (
            "daemon",
            format!("running on {}", ctx.socket_path().display()),
        ),
        ("store", {
            let state = if s.locked { "locked" } else { "unlocked" };
            match &s.degraded_reason {
                Some(why) => format!("{state}, degraded: {why}"),
                None => state.to_owned(),
            }
        }),
        ("since", ts(s.since)),
        ("store id", s.store_id.clone()),
        ("secrets", opt(s.secrets)),
        ("you are", opt(s.principal.as_deref())),
        ("role", opt(s.role)),
        ("version", format!("{} (API v{})", s.version, s.api)),
    ];
    output::print_table(&output::pairs(&rows), "")
}

/// `status`: the daemon's view when one answers, else what the file says without a key.
pub(super) fn status(ctx: &Ctx) -> Result<()> {
    let socket = ctx.socket_path();
    if !ctx.global().direct
        && let Some(c) = Client::connect(&socket)?
    {
        return print_status(ctx, &with_token(c)?.status()?);
    }
    let locked = ctx.open_locked()?;
    let slots = locked.keyslots()?;
    let insecure = locked.is_insecure();
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "daemon": false,
            "socket": socket.display().to_string(),
            "store": locked.path().display().to_string(),
            "store_id": locked.store_id(),
            "version": locked.header().version,
            "locked": true,
            "keyslots": slots.len(),
            "insecure_kdf": insecure,
        }));
    }
    let rows = [
        (
            "daemon",
            format!("not running (nothing answers on {})", socket.display()),
        ),
        ("store", locked.path().display().to_string()),
        ("store id", locked.store_id()),
        ("format", format!("version {}", locked.header().version)),
        ("keyslots", slots.len().to_string()),
        (
            "kdf",
            if insecure {
                "insecure (tests only)"
            } else {
                "argon2id"
            }
            .to_owned(),
        ),
    ];
    output::print_table(&output::pairs(&rows), "")
}

/// `lock`: the daemon drops its keys and exits.
pub(super) fn lock(ctx: &Ctx) -> Result<()> {
    let s = running(ctx)?.lock()?;
    if ctx.json() {
        return output::print_json(&s);
    }
    eprintln!("locked");
    Ok(())
}

/// `unlock`: sends a passphrase to the daemon (its API unlocks with passphrases only).
pub(super) fn unlock(ctx: &Ctx) -> Result<()> {
    let c = running(ctx)?;
    let secret = crate::unlock::unlock_secret(&ctx.global().unlock, &ctx.store_path())?;
    let UnlockSecret::Passphrase(p) = secret else {
        return Err(Error::invalid(
            "unlock source",
            "the daemon unlocks with a passphrase; to use a key file or a systemd credential, \
             start it with `tresor daemon --keyfile PATH` or `--unlock-credential NAME`",
        ));
    };
    let s = c.unlock(&p)?;
    if ctx.json() {
        return output::print_json(&s);
    }
    eprintln!("unlocked");
    Ok(())
}

/// `daemon`: runs tresord in this process. The global `--store`, `--socket` and unlock
/// sources apply when the subcommand does not repeat them.
#[cfg(feature = "daemon")]
pub(super) fn daemon(ctx: &Ctx, args: &crate::daemon::DaemonArgs) -> Result<()> {
    let g = ctx.global();
    let mut args = args.clone();
    args.store = args.store.or_else(|| g.store.clone());
    args.socket = args.socket.or_else(|| g.socket.clone());
    if args.unlock.is_empty() {
        args.unlock.clone_from(&g.unlock);
    }
    crate::daemon::main_with_args(&args)
}
