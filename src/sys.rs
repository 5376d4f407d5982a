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

/// Refuses a file that group or others may write (SPEC §4.6).
///
/// # Errors
/// `PermissionDenied` naming the mode and the `chmod` that fixes it.
pub fn check_not_writable_by_others(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(mode_refused(path, mode, "write"));
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

/// Locks the process's memory (current and future pages) so that key material is never
/// swapped out. Only when the memlock limit allows it (unlimited, or running as root): a
/// process over its limit would fail allocations later. Returns whether memory is locked.
pub fn lock_memory() -> bool {
    use rustix::mm::{MlockAllFlags, mlockall};
    use rustix::process::{Resource, getrlimit};
    let unlimited = getrlimit(Resource::Memlock).current.is_none();
    let root = rustix::process::geteuid().is_root();
    if !(unlimited || root) {
        tracing::warn!(
            "key material is not mlocked: RLIMIT_MEMLOCK is limited (set LimitMEMLOCK=infinity)"
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
