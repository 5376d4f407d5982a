//! Where the secret that unlocks a store comes from, for `tresor` and `tresord` alike
//! (SPEC §5, §7): the sources and their order, the permission check on passphrase and key
//! files, recovery-key detection, and the prompts with their wording.
//!
//! ```text
//! --passphrase-fd N | --passphrase-file PATH | --keyfile PATH
//!   | --unlock-credential NAME                                      (at most one; clap says so)
//! else TRESOR_PASSPHRASE, warned about          (tresor only: see PassphraseEnv)
//! else a no-echo prompt on the terminal         ("passphrase (or recovery key) for PATH: ")
//! ```
//!
//! A passphrase shaped like a recovery key opens the recovery slot, whichever source gave it.
//! A passphrase or key file that group or others may read or write is refused before it is
//! read (SPEC §4.6); a descriptor is not checked (it is usually a pipe, and whoever handed it
//! over chose who could write to it).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::UnlockSecret;
use crate::types::{Passphrase, SecretBytes};

/// The environment variable CI may use for the passphrase (read by `tresor` only).
pub const PASSPHRASE_ENV: &str = "TRESOR_PASSPHRASE";

/// The unlock flags of both binaries; at most one may be given.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct UnlockArgs {
    /// Read the passphrase from this open file descriptor
    #[arg(long, value_name = "N", group = "unlock_source")]
    pub passphrase_fd: Option<u32>,
    /// Read the passphrase from this file (one trailing newline is dropped)
    #[arg(long, value_name = "PATH", group = "unlock_source")]
    pub passphrase_file: Option<PathBuf>,
    /// Unlock with this key file instead of a passphrase
    #[arg(long, value_name = "PATH", group = "unlock_source")]
    pub keyfile: Option<PathBuf>,
    /// Unlock with the systemd credential NAME (a `keyslot add --systemd-creds NAME` slot),
    /// read from $CREDENTIALS_DIRECTORY as `LoadCredentialEncrypted=` hands it to a service
    #[arg(long, value_name = "NAME", group = "unlock_source")]
    pub unlock_credential: Option<String>,
}

/// The variable systemd sets, for a service, to the directory holding its decrypted
/// credentials (`LoadCredential=`, `LoadCredentialEncrypted=`).
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Whether `TRESOR_PASSPHRASE` is a source, after the flags and before a prompt.
///
/// `tresor` reads it: SPEC §7 names it, for CI jobs that run one command and end. `tresord`
/// does not: SPEC §5 lists only the flags for it, and a daemon lives long, so a passphrase in
/// its environment would stay in the process (and typically in a unit file's `Environment=`)
/// for all that time, whereas a descriptor or a file is read once and can be closed or
/// removed. `tresor daemon` follows `tresord` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassphraseEnv {
    /// `TRESOR_PASSPHRASE`, when set, is used (with a warning).
    Read,
    /// `TRESOR_PASSPHRASE` is not looked at.
    Ignore,
}

/// Where a new passphrase comes from (`init`, `passwd`, `keyslot add`, `tresord --init`).
#[derive(Clone, Copy, Debug)]
pub enum NewPassphrase<'a> {
    /// A file such as `--new-passphrase-file`, checked like any passphrase file.
    File(&'a Path),
    /// The unlock flags (a key file among them is not looked at: the caller refuses it), then
    /// the environment as the policy says, else typed twice.
    Given(&'a UnlockArgs, PassphraseEnv),
    /// Typed twice on the terminal.
    Prompt,
}

impl<'a> NewPassphrase<'a> {
    /// `File` when a path is given, else `Prompt`.
    pub fn file_or_prompt(path: Option<&'a Path>) -> Self {
        path.map_or(Self::Prompt, Self::File)
    }
}

impl UnlockArgs {
    /// Whether no flag names a source.
    pub fn is_empty(&self) -> bool {
        self.passphrase_fd.is_none()
            && self.passphrase_file.is_none()
            && self.keyfile.is_none()
            && self.unlock_credential.is_none()
    }

    /// The passphrase `--passphrase-fd` or `--passphrase-file` gives, else `TRESOR_PASSPHRASE`
    /// when `env` says so.
    fn passphrase(&self, env: PassphraseEnv) -> Result<Option<Passphrase>> {
        if let Some(fd) = self.passphrase_fd {
            // Opening /proc/self/fd/N reads the inherited descriptor without unsafe code.
            let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
            return Ok(Some(from_contents(&read_secret_file(
                &path,
                "passphrase fd",
            )?)));
        }
        if let Some(path) = &self.passphrase_file {
            return Ok(Some(from_contents(&read_private_file(
                path,
                "passphrase file",
            )?)));
        }
        if env == PassphraseEnv::Read
            && let Some(v) = std::env::var_os(PASSPHRASE_ENV)
        {
            eprintln!(
                "warning: using the passphrase from {PASSPHRASE_ENV}; environment passphrases \
                 are meant for CI (other processes of this user may read them)"
            );
            return Ok(Some(Passphrase::new(v.into_encoded_bytes())));
        }
        Ok(None)
    }

    /// What the flags (and `TRESOR_PASSPHRASE` when `env` says so) give, without prompting:
    /// the key file, or the passphrase, which opens the recovery slot when it is shaped like a
    /// recovery key. `None` when nothing is given.
    ///
    /// # Errors
    /// `PermissionDenied` for a passphrase or key file others may read or write;
    /// `InvalidArgument` when a source cannot be read.
    pub fn given(&self, env: PassphraseEnv) -> Result<Option<UnlockSecret>> {
        if let Some(path) = &self.keyfile {
            return Ok(Some(UnlockSecret::Keyfile(read_private_file(
                path, "key file",
            )?)));
        }
        if let Some(name) = &self.unlock_credential {
            return Ok(Some(UnlockSecret::Credential(read_credential(name)?)));
        }
        Ok(self.passphrase(env)?.map(classify))
    }
}

/// Reads the systemd credential `name` from `$CREDENTIALS_DIRECTORY`, refusing it when group
/// or others may read it (systemd makes it 0400 for the service's user).
///
/// # Errors
/// `InvalidArgument` when `name` is not a plain file name, the variable is not set (not run by
/// systemd with a credential), or the file cannot be read; `PermissionDenied` as for key files.
pub fn read_credential(name: &str) -> Result<SecretBytes> {
    check_credential_name(name)?;
    let dir = std::env::var_os(CREDENTIALS_DIRECTORY).ok_or_else(|| {
        Error::invalid(
            "unlock credential",
            format!(
                "${CREDENTIALS_DIRECTORY} is not set; systemd sets it for a service with \
                 `LoadCredentialEncrypted={name}:PATH` (see the README's unit file)"
            ),
        )
    })?;
    let bytes = read_private_file(&Path::new(&dir).join(name), "credential")?;
    if bytes.len() < 32 {
        return Err(Error::invalid(
            "credential",
            format!(
                "{name} holds {} bytes; tresor's credentials hold at least 32 random bytes \
                 (made by `tresor keyslot add --systemd-creds {name}`)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Refuses a credential name that is not a plain file name.
///
/// # Errors
/// `InvalidArgument` naming the rule.
pub fn check_credential_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.len() > 255 {
        return Err(Error::invalid(
            "credential name",
            format!("{name:?}: systemd credential names are plain file names, such as `tresor`"),
        ));
    }
    Ok(())
}

/// What unlocks `store` for `tresor`: the flags, else `TRESOR_PASSPHRASE`, else a prompt.
///
/// # Errors
/// As [`UnlockArgs::given`], and `InvalidArgument` when nothing is given and there is no
/// terminal to prompt on.
pub fn unlock_secret(args: &UnlockArgs, store: &Path) -> Result<UnlockSecret> {
    if let Some(s) = args.given(PassphraseEnv::Read)? {
        return Ok(s);
    }
    prompt_unlock(store)?.ok_or_else(no_terminal)
}

/// Asks for what unlocks `store` (a passphrase or a recovery key) without echo. `None` when
/// there is no terminal.
///
/// # Errors
/// `InvalidArgument` when the terminal cannot be read.
pub fn prompt_unlock(store: &Path) -> Result<Option<UnlockSecret>> {
    let prompt = format!("passphrase (or recovery key) for {}: ", store.display());
    Ok(prompt_on_terminal(&prompt)?.map(|s| classify(Passphrase::new(s.expose().to_vec()))))
}

/// A new passphrase, from `from`; typed twice when nothing gives one. An empty one is
/// refused.
///
/// # Errors
/// `InvalidArgument` when it is empty, the two entries differ, or nothing can be read (no
/// terminal among them); `PermissionDenied` for a file others may read or write.
pub fn new_passphrase(from: NewPassphrase<'_>) -> Result<Passphrase> {
    let given = match from {
        NewPassphrase::File(path) => Some(from_contents(&read_private_file(
            path,
            "new passphrase file",
        )?)),
        NewPassphrase::Given(args, env) => args.passphrase(env)?,
        NewPassphrase::Prompt => None,
    };
    let p = if let Some(p) = given {
        p
    } else {
        let a = prompt_hidden("new passphrase: ")?;
        let b = prompt_hidden("new passphrase again: ")?;
        if a != b {
            return Err(Error::invalid("passphrase", "the two entries differ"));
        }
        Passphrase::new(a.expose().to_vec())
    };
    if p.expose().is_empty() {
        return Err(Error::invalid(
            "passphrase",
            "an empty passphrase is refused",
        ));
    }
    Ok(p)
}

/// Whether there is a terminal to prompt on (the prompts use `/dev/tty`, not stdin, so that
/// stdin stays free for values).
pub fn has_terminal() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
}

/// Asks on the terminal without echo.
///
/// # Errors
/// `InvalidArgument` when there is no terminal.
pub fn prompt_hidden(prompt: &str) -> Result<SecretBytes> {
    prompt_on_terminal(prompt)?.ok_or_else(no_terminal)
}

fn prompt_on_terminal(prompt: &str) -> Result<Option<SecretBytes>> {
    if !has_terminal() {
        return Ok(None);
    }
    rpassword::prompt_password(prompt)
        .map(|s| Some(SecretBytes::new(s.into_bytes())))
        .map_err(|_| no_terminal())
}

fn no_terminal() -> Error {
    Error::invalid(
        "unlock source",
        "none given, and there is no terminal to prompt on; pass --passphrase-file, \
         --passphrase-fd or --keyfile, or set TRESOR_PASSPHRASE",
    )
}

/// Reads a whole file into a wiped-on-drop buffer, naming the file on error. No permission
/// check: for values, templates and manifests; passphrases and keys go through
/// [`read_private_file`].
///
/// # Errors
/// `InvalidArgument` with field `what` when the file cannot be read.
pub fn read_secret_file(path: &Path, what: &str) -> Result<SecretBytes> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| cannot_read(path, what, &e))?;
    Ok(SecretBytes::new(buf))
}

/// Like [`read_secret_file`], from stdin when `path` is `-`.
///
/// # Errors
/// `InvalidArgument` with field `what` when the file or stdin cannot be read.
pub fn read_secret_input(path: &Path, what: &str) -> Result<SecretBytes> {
    if path.as_os_str() != "-" {
        return read_secret_file(path, what);
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Error::invalid(what, format!("cannot read stdin: {e}")))?;
    Ok(SecretBytes::new(buf))
}

/// Reads a passphrase or key file, refusing it when group or others may read or write it. The
/// mode is taken from the opened file, so the file checked is the file read.
///
/// # Errors
/// `PermissionDenied` naming the path and `chmod 600`; `InvalidArgument` with field `what`
/// when the file cannot be read.
pub fn read_private_file(path: &Path, what: &str) -> Result<SecretBytes> {
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::open(path).map_err(|e| cannot_read(path, what, &e))?;
    let mode = f
        .metadata()
        .map_err(|e| cannot_read(path, what, &e))?
        .permissions()
        .mode();
    crate::sys::check_private(path, mode)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| cannot_read(path, what, &e))?;
    Ok(SecretBytes::new(buf))
}

fn cannot_read(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::invalid(what, format!("cannot read {}: {e}", path.display()))
}

fn from_contents(bytes: &SecretBytes) -> Passphrase {
    Passphrase::from_file_contents(bytes.expose().to_vec())
}

/// A passphrase, or the recovery key it is shaped like.
fn classify(p: Passphrase) -> UnlockSecret {
    if looks_like_recovery_key(p.expose()) {
        UnlockSecret::Recovery(SecretBytes::new(p.expose().to_vec()))
    } else {
        UnlockSecret::Passphrase(p)
    }
}

/// Whether a passphrase is shaped like a recovery key (52 base32 characters, in groups
/// separated by dashes or spaces). Such text opens the recovery slot; no one picks a
/// passphrase like that by accident.
fn looks_like_recovery_key(p: &[u8]) -> bool {
    let mut n = 0;
    for &c in p {
        match c.to_ascii_uppercase() {
            b'A'..=b'Z' | b'2'..=b'7' => n += 1,
            b'-' | b' ' => {}
            _ => return false,
        }
    }
    n == 52
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_keys_are_told_from_passphrases() {
        let key = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567-ABCD-EFGH-IJKL-MNOP-QRST";
        assert!(looks_like_recovery_key(key.as_bytes()));
        assert!(looks_like_recovery_key(key.to_lowercase().as_bytes()));
        assert!(!looks_like_recovery_key(b"correct horse battery staple"));
        assert!(!looks_like_recovery_key(&key.as_bytes()[..key.len() - 1]));
    }

    fn file_with_mode(dir: &Path, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("pass-{mode:o}"));
        std::fs::write(&path, "hunter2-but-longer\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_passphrase_or_key_file_others_may_read_or_write_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o666] {
            let path = file_with_mode(dir.path(), mode);
            for args in [
                UnlockArgs {
                    passphrase_file: Some(path.clone()),
                    ..UnlockArgs::default()
                },
                UnlockArgs {
                    keyfile: Some(path.clone()),
                    ..UnlockArgs::default()
                },
            ] {
                let e = args
                    .given(PassphraseEnv::Ignore)
                    .expect_err("refused")
                    .to_string();
                assert!(e.contains(&path.display().to_string()), "{e}");
                assert!(e.contains(&format!("chmod 600 {}", path.display())), "{e}");
                assert!(!e.contains("hunter2"), "{e}");
            }
            let e = new_passphrase(NewPassphrase::File(&path)).expect_err("refused");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        for mode in [0o600, 0o400, 0o700] {
            let args = UnlockArgs {
                passphrase_file: Some(file_with_mode(dir.path(), mode)),
                ..UnlockArgs::default()
            };
            let Some(UnlockSecret::Passphrase(p)) =
                args.given(PassphraseEnv::Ignore).expect("read")
            else {
                panic!("a passphrase");
            };
            assert_eq!(p.expose(), b"hunter2-but-longer");
        }
    }

    #[test]
    fn a_recovery_key_in_a_passphrase_file_opens_the_recovery_slot() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recovery");
        let key = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567-ABCD-EFGH-IJKL-MNOP-QRST\n";
        std::fs::write(&path, key).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let args = UnlockArgs {
            passphrase_file: Some(path),
            ..UnlockArgs::default()
        };
        assert!(matches!(
            args.given(PassphraseEnv::Ignore),
            Ok(Some(UnlockSecret::Recovery(_)))
        ));
    }

    #[test]
    fn nothing_given_is_none() {
        let args = UnlockArgs::default();
        assert!(args.is_empty());
        assert!(matches!(args.given(PassphraseEnv::Ignore), Ok(None)));
    }
}
