//! Small operating-system helpers: user names, file modes, process hardening.

use std::path::Path;

use crate::error::{Error, Result};

/// The user name of `uid` from `/etc/passwd`, when listed.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut parts = line.split(':');
        let name = parts.next()?;
        let id: u32 = parts.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// The uid of a user name from `/etc/passwd`, when listed.
pub fn user_id(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut parts = line.split(':');
        (parts.next()? == name).then(|| parts.nth(1)?.parse().ok())?
    })
}

/// The gid of a group name from `/etc/group`, when listed.
pub fn group_id(name: &str) -> Option<u32> {
    let group = std::fs::read_to_string("/etc/group").ok()?;
    group.lines().find_map(|line| {
        let mut parts = line.split(':');
        (parts.next()? == name).then(|| parts.nth(1)?.parse().ok())?
    })
}

/// Refuses to open a store file that someone other than the caller could have replaced or
/// changed (SPEC §4.6): a symbolic link, a file another uid owns, a file group or others may
/// write, or a file in a directory others may write without the sticky bit.
///
/// # Errors
/// `PermissionDenied` naming the path, what is wrong and the command that fixes it.
pub fn check_store_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        let target =
            std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string());
        return Err(Error::denied(format!(
            "{} is a symbolic link (to {target}); a store is opened only by its real path, so              that nobody can point it elsewhere: use --store {target} (or TRESOR_STORE)",
            path.display()
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::denied(format!(
            "{} is owned by uid {}{}, not by you (uid {me}); a store must belong to the user              that opens it: run as that user, or take it over with `chown {me} {}`",
            path.display(),
            meta.uid(),
            user_name(meta.uid()).map_or_else(String::new, |n| format!(" ({n})")),
            path.display()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(mode_refused(path, meta.mode(), "write"));
    }
    check_store_dir(path)
}

/// Refuses a store path whose directory others may write without the sticky bit: anyone could
/// then replace the store with a file of their own (SPEC §4.6).
///
/// # Errors
/// `PermissionDenied` naming the directory, its mode and the `chmod` that fixes it.
pub fn check_store_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = std::fs::metadata(dir)?.mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(Error::denied(format!(
            "{} sits in {}, which has mode {:o} and lets others replace files in it; fix it              with `chmod o-w {}` or move the store to a private directory",
            path.display(),
            dir.display(),
            mode & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// Refuses a passphrase or key file, by the `mode` of the opened file, that group or others
/// may write (then they choose the passphrase) or read (then they know it) (SPEC §4.6).
///
/// # Errors
/// `PermissionDenied` naming the path, the mode and the `chmod 600` that fixes it.
pub fn check_private(path: &Path, mode: u32) -> Result<()> {
    if mode & 0o022 != 0 {
        return Err(mode_refused(path, mode, "write"));
    }
    if mode & 0o044 != 0 {
        return Err(mode_refused(path, mode, "read"));
    }
    Ok(())
}

fn mode_refused(path: &Path, mode: u32, what: &str) -> Error {
    Error::denied(format!(
        "{} has mode {:o}, which lets group or others {what} it; fix it with `chmod 600 {}`",
        path.display(),
        mode & 0o777,
        path.display()
    ))
}

/// Makes the process not dumpable and sets the core size to 0, so that keys cannot be read
/// by ptrace from another process of the same user or land in a core file. Best effort:
/// failures are logged, not fatal.
pub fn harden_process() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!("cannot mark the process not dumpable: {e}");
    }
    if let Err(e) = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        tracing::warn!("cannot set the core size to 0: {e}");
    }
}

/// Locks the process's memory (current and future pages) so that nothing is ever swapped out.
/// Only when the memlock limit allows it (unlimited, or running as root): a process over its
/// limit would fail allocations later. Key pages are locked on their own in any case
/// ([`crate::crypto::Locked`]). Returns whether the whole process is locked.
pub fn lock_memory() -> bool {
    use rustix::mm::{MlockAllFlags, mlockall};
    use rustix::process::{Resource, getrlimit};
    let unlimited = getrlimit(Resource::Memlock).current.is_none();
    let root = rustix::process::geteuid().is_root();
    if !(unlimited || root) {
        tracing::info!(
            "RLIMIT_MEMLOCK is limited: locking only the key pages, not the whole process \
             (LimitMEMLOCK=infinity locks decrypted values too)"
        );
        return false;
    }
    match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("mlockall failed, key material may be swapped: {e}");
            false
        }
    }
}

/// Current time as a jiff timestamp.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}
