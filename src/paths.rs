//! Default file locations (SPEC §5), shared by the daemon and the CLI.
//!
//! `TRESOR_STORE` and `TRESOR_SOCKET` override the defaults everywhere; an explicit
//! `--store`/`--socket` overrides both.

use std::path::PathBuf;

/// The environment variable naming the store file.
pub const STORE_ENV: &str = "TRESOR_STORE";
/// The environment variable naming the daemon's socket.
pub const SOCKET_ENV: &str = "TRESOR_SOCKET";

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The store path: `explicit`, else `$TRESOR_STORE`, else `$XDG_DATA_HOME/tresor/store.tresor`,
/// else `~/.local/share/tresor/store.tresor` (relative to the working directory when no home
/// is known).
pub fn store_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit.or_else(|| env_path(STORE_ENV)).unwrap_or_else(|| {
        let data = env_path("XDG_DATA_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| env_path("HOME").map(|h| h.join(".local/share")))
            .unwrap_or_else(|| PathBuf::from(".local/share"));
        data.join("tresor/store.tresor")
    })
}

/// The socket path: `explicit`, else `$TRESOR_SOCKET`, else `/run/tresor/tresord.sock` for
/// root, else `$XDG_RUNTIME_DIR/tresor/tresord.sock`, else `/tmp/tresor-<uid>/tresord.sock`
/// (the daemon checks that such a directory is its own and private).
pub fn socket_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| env_path(SOCKET_ENV))
        .unwrap_or_else(|| {
            let uid = rustix::process::geteuid();
            if uid.is_root() {
                return PathBuf::from("/run/tresor/tresord.sock");
            }
            env_path("XDG_RUNTIME_DIR")
                .filter(|p| p.is_absolute())
                .map_or_else(
                    || PathBuf::from(format!("/tmp/tresor-{}/tresord.sock", uid.as_raw())),
                    |d| d.join("tresor/tresord.sock"),
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_win() {
        assert_eq!(
            store_path(Some("/x/s.tresor".into())),
            PathBuf::from("/x/s.tresor")
        );
        assert_eq!(
            socket_path(Some("/x/d.sock".into())),
            PathBuf::from("/x/d.sock")
        );
    }
}
