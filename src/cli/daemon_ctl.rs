//! Daemon control: finding the daemon, `daemon`, `status`, `lock`, `unlock`.

use std::os::unix::net::UnixStream;
use std::path::Path;

use super::Ctx;
use super::args::DaemonArgs;
use super::backend::Backend;
use super::output;
use crate::error::{Error, Result};

/// Whether something accepts connections on the socket.
fn answers(socket: &Path) -> bool {
    socket.exists() && UnixStream::connect(socket).is_ok()
}

/// The daemon, when one answers on the socket.
pub(super) fn connect(ctx: &Ctx) -> Result<Option<Box<dyn Backend>>> {
    let Some(socket) = ctx.socket_path() else {
        return Ok(None);
    };
    if !answers(&socket) {
        return Ok(None);
    }
    Ok(None)
}

fn no_daemon(ctx: &Ctx) -> Error {
    let at = ctx.socket_path().map_or_else(
        || "no socket (XDG_RUNTIME_DIR is not set)".into(),
        |p| p.display().to_string(),
    );
    Error::not_found(
        "daemon",
        format!("nothing answers on {at}; start one with `tresor daemon`"),
    )
}

/// `status`: the daemon's view when one answers, else what the file says without a key.
pub(super) fn status(ctx: &Ctx) -> Result<()> {
    let socket = ctx.socket_path();
    let locked = ctx.open_locked()?;
    let slots = locked.keyslots()?;
    let insecure = locked.is_insecure();
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "daemon": false,
            "socket": socket.as_ref().map(|p| p.display().to_string()),
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
            format!(
                "not running (nothing answers on {})",
                socket.map_or_else(|| "-".into(), |p| p.display().to_string())
            ),
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

/// `lock`.
pub(super) fn lock(ctx: &Ctx) -> Result<()> {
    Err(no_daemon(ctx))
}

/// `unlock`.
pub(super) fn unlock(ctx: &Ctx) -> Result<()> {
    Err(no_daemon(ctx))
}

/// `daemon`.
pub(super) fn daemon(ctx: &Ctx, _args: &DaemonArgs) -> Result<()> {
    Err(no_daemon(ctx))
}
