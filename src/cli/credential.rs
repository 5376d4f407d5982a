//! `keyslot add --systemd-creds NAME`: a keyslot whose secret is 32 random bytes sealed by
//! `systemd-creds encrypt` (to the TPM2 when the host has one, else to the host key in
//! `/var/lib/systemd/credential.secret`), so that an unattended `tresord` unlocks with
//! `--unlock-credential NAME` under `LoadCredentialEncrypted=NAME:PATH` instead of a
//! passphrase file lying on the disk.
//!
//! The key goes to `systemd-creds` on its stdin, never in argv; the sealed credential is
//! written to `PATH` (by default `/etc/credstore.encrypted/NAME`, systemd's own place for
//! them), never over an existing file. The clear key exists only in this process and, at
//! service start, in the service's private `$CREDENTIALS_DIRECTORY`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::types::SecretBytes;
use crate::unlock::check_credential_name;

/// Where systemd looks for encrypted credentials, and where the sealed key goes by default.
pub(super) const CREDSTORE: &str = "/etc/credstore.encrypted";

/// The default output path for credential `name`.
pub(super) fn default_out(name: &str) -> PathBuf {
    Path::new(CREDSTORE).join(name)
}

/// Generates a 32-byte key and has `systemd-creds encrypt --name=NAME` seal it into `out`.
/// Returns the key, for the keyslot.
///
/// # Errors
/// `InvalidArgument` for a bad name; `Conflict` when `out` exists; `Unavailable` when
/// `systemd-creds` is missing or refuses (its message is passed on: it never contains the key,
/// which it reads from stdin).
pub(super) fn seal_new(name: &str, out: &Path) -> Result<SecretBytes> {
    check_credential_name(name)?;
    if out.exists() {
        return Err(Error::Conflict {
            reason: format!(
                "{} already exists; keyslot add never overwrites a credential (remove it, or pass \
                 --credential-out PATH)",
                out.display()
            ),
            references: Vec::new(),
        });
    }
    if let Some(dir) = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| {
                Error::invalid(
                    "credential-out",
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
    }
    let mut raw = vec![0u8; 32];
    crate::crypto::fill_random(&mut raw)?;
    let key = SecretBytes::new(raw);
    let mut child = Command::new("systemd-creds")
        .arg("encrypt")
        .arg(format!("--name={name}"))
        .arg("-")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Unavailable {
            reason: format!(
                "cannot run systemd-creds ({e}); it comes with systemd 250 or later \
                 (Debian: the systemd package)"
            ),
        })?;
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(key.expose()));
    let done = child.wait_with_output()?;
    if !done.status.success() || !matches!(fed, Some(Ok(()))) {
        let _ = std::fs::remove_file(out);
        let said = String::from_utf8_lossy(&done.stderr);
        return Err(Error::Unavailable {
            reason: format!(
                "systemd-creds encrypt failed ({}): {}",
                done.status,
                said.trim()
            ),
        });
    }
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o600))?;
    Ok(key)
}
