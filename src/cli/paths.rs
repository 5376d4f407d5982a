//! Default locations of the store and the socket (SPEC §5). `TRESOR_STORE` and
//! `TRESOR_SOCKET` are read by clap (`--store`, `--socket`); these are the fallbacks.

use std::path::PathBuf;

use crate::error::{Error, Result};

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_DATA_HOME/tresor/store.tresor`, else `~/.local/share/tresor/store.tresor`.
///
/// # Errors
/// `InvalidArgument` when neither `XDG_DATA_HOME` nor `HOME` is set.
pub fn default_store() -> Result<PathBuf> {
    let base = env_path("XDG_DATA_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".local/share")))
        .ok_or_else(|| {
            Error::invalid(
                "store",
                "neither XDG_DATA_HOME nor HOME is set; pass --store or set TRESOR_STORE",
            )
        })?;
    Ok(base.join("tresor").join("store.tresor"))
}

/// `$XDG_RUNTIME_DIR/tresor/tresord.sock`, or `/run/tresor/tresord.sock` as root. `None` for
/// a user without a runtime directory: then there is no default daemon to ask.
pub fn default_socket() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from("/run/tresor/tresord.sock"));
    }
    env_path("XDG_RUNTIME_DIR").map(|d| d.join("tresor").join("tresord.sock"))
}
