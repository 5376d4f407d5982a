//! Where passphrases come from: `--keyfile`, `--passphrase-file`, `--passphrase-fd`,
//! `TRESOR_PASSPHRASE` (warned about), else a no-echo prompt on the terminal.

use std::io::Read;
use std::path::Path;

use super::args::GlobalArgs;
use crate::error::{Error, Result};
use crate::store::UnlockSecret;
use crate::types::Passphrase;
use crate::types::SecretBytes;

/// The environment variable CI may use for the passphrase.
pub const PASSPHRASE_ENV: &str = "TRESOR_PASSPHRASE";

/// Reads a whole file into a wiped-on-drop buffer, naming the file on error.
pub fn read_secret_file(path: &Path, what: &str) -> Result<SecretBytes> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| Error::invalid(what, format!("cannot read {}: {e}", path.display())))?;
    Ok(SecretBytes::new(buf))
}

/// Reads everything from an inherited file descriptor (through `/proc/self/fd`, which needs no
/// unsafe code).
fn read_fd(fd: u32) -> Result<SecretBytes> {
    read_secret_file(Path::new(&format!("/proc/self/fd/{fd}")), "passphrase fd")
}

fn from_contents(bytes: &SecretBytes) -> Passphrase {
    Passphrase::from_file_contents(bytes.expose().to_vec())
}

/// A passphrase given by `--passphrase-file`, `--passphrase-fd` or `TRESOR_PASSPHRASE`, if any.
fn given_passphrase(g: &GlobalArgs) -> Result<Option<Passphrase>> {
    if let Some(path) = &g.passphrase_file {
        return Ok(Some(from_contents(&read_secret_file(
            path,
            "passphrase file",
        )?)));
    }
    if let Some(fd) = g.passphrase_fd {
        return Ok(Some(from_contents(&read_fd(fd)?)));
    }
    if let Some(v) = std::env::var_os(PASSPHRASE_ENV) {
        eprintln!(
            "warning: using the passphrase from {PASSPHRASE_ENV}; environment passphrases are \
             meant for CI (other processes of this user may read them)"
        );
        return Ok(Some(Passphrase::new(v.into_encoded_bytes())));
    }
    Ok(None)
}

fn no_terminal() -> Error {
    Error::invalid(
        "unlock source",
        "none given, and there is no terminal to prompt on; pass --passphrase-file, \
         --passphrase-fd or --keyfile, or set TRESOR_PASSPHRASE",
    )
}

/// Asks on the terminal without echo.
///
/// # Errors
/// `InvalidArgument` when there is no terminal.
pub fn prompt_hidden(prompt: &str) -> Result<SecretBytes> {
    if std::fs::File::open("/dev/tty").is_err() {
        return Err(no_terminal());
    }
    rpassword::prompt_password(prompt)
        .map(|s| SecretBytes::new(s.into_bytes()))
        .map_err(|_| no_terminal())
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

/// What unlocks the store: the first source given, else a prompt. A recovery key is given
/// where a passphrase is asked for.
///
/// # Errors
/// `InvalidArgument` when a source cannot be read or there is nothing to prompt on.
pub fn unlock_secret(g: &GlobalArgs, store: &Path) -> Result<UnlockSecret> {
    if let Some(path) = &g.keyfile {
        return Ok(UnlockSecret::Keyfile(read_secret_file(path, "key file")?));
    }
    let p = if let Some(p) = given_passphrase(g)? {
        p
    } else {
        let prompt = format!("passphrase (or recovery key) for {}: ", store.display());
        Passphrase::new(prompt_hidden(&prompt)?.expose().to_vec())
    };
    if looks_like_recovery_key(p.expose()) {
        return Ok(UnlockSecret::Recovery(SecretBytes::new(
            p.expose().to_vec(),
        )));
    }
    Ok(UnlockSecret::Passphrase(p))
}

/// A new passphrase: from `file` when given, else from the global sources when `global` is
/// given (`init`, where there is no old one), else typed twice.
///
/// # Errors
/// `InvalidArgument` when it is empty, the two entries differ, or nothing can be read.
pub fn new_passphrase(global: Option<&GlobalArgs>, file: Option<&Path>) -> Result<Passphrase> {
    let given = match (file, global) {
        (Some(path), _) => Some(from_contents(&read_secret_file(
            path,
            "new passphrase file",
        )?)),
        (None, Some(g)) => given_passphrase(g)?,
        (None, None) => None,
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

#[cfg(test)]
mod tests {
    use super::looks_like_recovery_key;

    #[test]
    fn recovery_keys_are_told_from_passphrases() {
        let key = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567-ABCD-EFGH-IJKL-MNOP-QRST";
        assert!(looks_like_recovery_key(key.as_bytes()));
        assert!(looks_like_recovery_key(key.to_lowercase().as_bytes()));
        assert!(!looks_like_recovery_key(b"correct horse battery staple"));
        assert!(!looks_like_recovery_key(&key.as_bytes()[..key.len() - 1]));
    }
}
