//! `--audit-head-file`: the daemon appends each new head of the audit chain (`SEQ:MAC TIME`)
//! to a file outside the store (SPEC §3), so that `tresor audit verify --head FILE` can tell
//! a store rolled back to an older copy.
//!
//! The head is read after each operation (one small read transaction) and appended only when
//! it moved, so a group commit of many reads costs one line. Records written by unlock and
//! lock are witnessed with the next operation.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::store::Store;

/// The open head file and the last seq written to it.
pub(crate) struct Witness {
    path: PathBuf,
    file: Mutex<(File, u64)>,
}

impl Witness {
    /// Opens (creating, mode 0600) `path` for appending.
    ///
    /// # Errors
    /// `InvalidArgument` naming the path when it cannot be opened.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::invalid(
                    "audit-head-file",
                    format!("cannot open {} for appending: {e}", path.display()),
                )
            })?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new((file, 0)),
        })
    }

    /// Appends the store's head when it moved since the last line. A failure is logged, not
    /// returned: the request it follows has already succeeded.
    pub(crate) fn note(&self, store: &Store) {
        let head = match store.current_audit_head() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit head");
                return;
            }
        };
        let Ok(mut guard) = self.file.lock() else {
            return;
        };
        let (file, last) = &mut *guard;
        if head.seq <= *last {
            return;
        }
        let line = format!("{head} {}\n", crate::sys::now());
        match file.write_all(line.as_bytes()) {
            Ok(()) => *last = head.seq,
            Err(e) => tracing::warn!(
                path = %self.path.display(),
                error = %e,
                "cannot append the audit head"
            ),
        }
    }
}
