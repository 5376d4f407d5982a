//! The daemon's socket (SPEC §5): a private directory, a 0600 (or 0660 with a group) socket,
//! one instance per socket by a lock file, and a stale socket replaced only when nobody
//! answers on it.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

/// A bound socket. Dropping it removes the socket file (the lock is released when the lock
/// file's descriptor closes).
#[derive(Debug)]
pub struct BoundSocket {
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    _lock: File,
}

impl BoundSocket {
    /// The listener (non-blocking, for tokio). Taken once.
    pub fn take_listener(&mut self) -> Option<std::os::unix::net::UnixListener> {
        self.listener.take()
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn prepare_dir(dir: &Path, group: Option<u32>) -> Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    let mode = if group.is_some() { 0o750 } else { 0o700 };
    if !dir.exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        match fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(gid) = group {
            rustix::fs::chown(dir, None, Some(rustix::fs::Gid::from_raw(gid)))
                .map_err(|e| Error::internal(format!("cannot chown {}", dir.display()), e))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(Error::invalid(
            "socket",
            format!("{} is not a directory", dir.display()),
        ));
    }
    if meta.uid() != euid {
        return Err(Error::denied(format!(
            "the socket directory {} belongs to uid {}, not to this daemon's uid {euid}",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::denied(format!(
            "the socket directory {} has mode {:o}, which lets others replace the socket; \
             fix it with `chmod {mode:o} {}`",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        )));
    }
    if let Some(gid) = group
        && meta.gid() != gid
    {
        rustix::fs::chown(dir, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| Error::internal(format!("cannot chown {}", dir.display()), e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn take_lock(path: &Path) -> Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Conflict {
            reason: format!(
                "another tresord holds {} (stop it first)",
                lock_path.display()
            ),
            references: Vec::new(),
        }),
        Err(e) => Err(Error::internal(
            format!("cannot lock {}", lock_path.display()),
            e,
        )),
    }
}

/// Something other than a socket is at the socket path: it is never removed (SPEC §5).
fn not_a_socket(path: &Path, meta: &fs::Metadata) -> Error {
    let ft = meta.file_type();
    let what = if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_file() && looks_like_store(path) {
        "a tresor store"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "not a socket"
    };
    Error::Conflict {
        reason: format!(
            "{} is {what}, not a stale socket; tresord replaces only a socket nobody answers on. \
             Pick another --socket path",
            path.display()
        ),
        references: Vec::new(),
    }
}

/// Whether the file starts with redb's magic, as a store does.
fn looks_like_store(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"redb"
}

/// Creates the directory, takes the instance lock, replaces a stale socket and binds.
///
/// # Errors
/// `PermissionDenied` for a directory that is not ours or others may write; `Conflict` when
/// another daemon holds the lock or answers on the socket, or when something other than a
/// socket (a file, a directory, the store) is at `path`; I/O errors.
pub fn bind(path: &Path, group: Option<u32>) -> Result<BoundSocket> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    prepare_dir(dir, group)?;
    let lock = take_lock(path)?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
        Ok(meta) if !meta.file_type().is_socket() => return Err(not_a_socket(path, &meta)),
        Ok(_) if crate::client::daemon_answers(path) => {
            return Err(Error::Conflict {
                reason: format!("a daemon already answers on {}", path.display()),
                references: Vec::new(),
            });
        }
        Ok(_) => {
            tracing::info!(socket = %path.display(), "replacing a stale socket");
            fs::remove_file(path)?;
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    if let Some(gid) = group {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| Error::internal(format!("cannot chown {}", path.display()), e))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    listener.set_nonblocking(true)?;
    Ok(BoundSocket {
        listener: Some(listener),
        path: path.to_owned(),
        _lock: lock,
    })
}
