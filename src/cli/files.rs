//! New files that hold values (`inject`, `export`): written whole to a temporary file created
//! 0600 in the target's directory, synced, then moved into place. A reader never sees half a
//! file, and the file is never readable by others, not even for a moment.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether an existing target may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Refuse (`Conflict`), naming the flag that would allow it.
    Keep(&'static str),
    /// Replace it.
    Replace,
}

fn exists_error(out: &Path, existing: Existing) -> Error {
    let how = match existing {
        Existing::Keep("") | Existing::Replace => "; choose a new file name".to_owned(),
        Existing::Keep(flag) => format!("; pass {flag} to replace it"),
    };
    Error::Conflict {
        reason: format!("{} exists{how}", out.display()),
        references: Vec::new(),
    }
}

/// Fails early when `out` exists and may not be replaced (before any value is read).
///
/// # Errors
/// `Conflict`.
pub fn check_target(out: &Path, existing: Existing) -> Result<()> {
    if matches!(existing, Existing::Keep(_)) && out.symlink_metadata().is_ok() {
        return Err(exists_error(out, existing));
    }
    Ok(())
}

/// A new 0600 file next to `out`.
pub(super) fn temp_file(out: &Path) -> Result<(PathBuf, std::fs::File)> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = out
        .file_name()
        .ok_or_else(|| Error::invalid("output", format!("{} is not a file", out.display())))?
        .to_string_lossy();
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100u32 {
        let tmp = dir.join(format!(".{base}.tresor-{pid}-{n}.tmp"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(Error::internal(
                    format!("cannot create a file in {}", dir.display()),
                    e,
                ));
            }
        }
    }
    Err(Error::internal(
        format!("cannot create a temporary file in {}", dir.display()),
        last.unwrap_or_else(|| std::io::Error::other("too many temporary files")),
    ))
}

/// Moves `tmp` to `out`: a rename when replacing is allowed, else a hard link, which fails
/// rather than replace a file that appeared meanwhile.
pub(super) fn publish(tmp: &Path, out: &Path, existing: Existing) -> Result<()> {
    if existing == Existing::Replace {
        return std::fs::rename(tmp, out)
            .map_err(|e| Error::internal(format!("cannot write {}", out.display()), e));
    }
    match std::fs::hard_link(tmp, out) {
        Ok(()) => {
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists_error(out, existing)),
        // File systems without hard links: check, then rename (a narrow race, never a leak).
        Err(_) => {
            check_target(out, existing)?;
            std::fs::rename(tmp, out)
                .map_err(|e| Error::internal(format!("cannot write {}", out.display()), e))
        }
    }
}

/// Writes `bytes` to `out` (mode 0600) through a temporary file.
///
/// # Errors
/// `Conflict` when `out` exists and may not be replaced; `Internal` for I/O errors.
pub fn write_private(out: &Path, bytes: &[u8], existing: Existing) -> Result<()> {
    check_target(out, existing)?;
    let (tmp, mut f) = temp_file(out)?;
    let done = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot write {}", tmp.display()), e))
        .and_then(|()| publish(&tmp, out, existing));
    drop(f);
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Writes `out` (mode 0600) through a temporary file that `fill` writes (a download, a copy);
/// synced, then moved into place.
///
/// # Errors
/// As [`write_private`], and whatever `fill` returns.
pub fn write_private_with(
    out: &Path,
    existing: Existing,
    fill: &mut dyn FnMut(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    check_target(out, existing)?;
    let (tmp, mut f) = temp_file(out)?;
    let done = fill(&mut f)
        .and_then(|()| {
            f.sync_all()
                .map_err(|e| Error::internal(format!("cannot write {}", tmp.display()), e))
        })
        .and_then(|()| publish(&tmp, out, existing));
    drop(f);
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn new_files_are_0600_and_kept_unless_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.txt");
        write_private(&out, b"one", Existing::Keep("--force")).expect("first");
        let mode = std::fs::metadata(&out).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = write_private(&out, b"two", Existing::Keep("--force")).expect_err("kept");
        assert_eq!(e.exit_code(), 7);
        assert_eq!(std::fs::read(&out).expect("read"), b"one");
        write_private(&out, b"two", Existing::Replace).expect("replaced");
        assert_eq!(std::fs::read(&out).expect("read"), b"two");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }
}
