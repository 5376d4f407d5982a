//! The audit journal: how a value read's audit record becomes durable with one small synced
//! write instead of a durable redb commit (SPEC §3, §10; issue 8).
//!
//! A durable redb commit writes the copied B-tree pages of every table it touched and syncs
//! them: ~0.25 ms here, against ~0.09 ms for one synced write into space already allocated.
//! So the daemon commits a read batch to redb *without* syncing (`Durability::None`: the
//! transaction is visible at once but kept only in memory until a later durable commit), then
//! appends the batch's audit records — the very bytes the audit table holds: seq, chain MAC,
//! sealed envelope — to `<store>.journal` and syncs that, and only then hands the values out.
//!
//! **The file.** 1 MiB, zero-filled and synced when created (so that a write never allocates
//! and `fdatasync` has no metadata to flush), 0600, owned by the store's owner; a 32-byte
//! header (magic, store id), then frames `len: u32 LE, seq: u64 LE, row` written at the next
//! offset. When a batch does not fit, that batch's commit is made durable instead and writing
//! starts again after the header. The frames left beyond the write offset are stale: every
//! one of them was made durable in the file by the commit that restarted the journal.
//!
//! **Replay** (at unlock, and after the database is reopened following an i/o error, which
//! drops the non-durable commits too): frames are read in order; a frame whose seq the durable
//! audit head already holds is skipped; the frame with the next seq is taken only if its MAC
//! continues the chain from the head (`AuditLayout::mac` under the audit key); anything else —
//! zeros, a torn frame, a stale frame, bytes someone wrote — ends the replay. The taken rows
//! and the new head are committed durably, and the journal is removed (kept as
//! `<store>.journal.bad` when it ended in a frame that claims the next seq but does not chain:
//! a write cut short — a read that never returned — or damage). A journal that is not a
//! private regular file of the store's owner (checked on the open descriptor) is refused.
//!
//! **Failures.** When a journal write fails, the batch is committed durably instead (or the
//! reads fail) and the journal takes nothing more until a durable commit restarts it. After
//! an i/o error the database is reopened with its last durable commit; the reopen replays the
//! journal (without a sync: the frames are durable already) under the journal's lock, so that
//! a batch between its commit and its sync finishes first, and no transaction begins before
//! that replay succeeds. The audit head shown (and witnessed) waits for the lock too.
//!
//! **Why nothing acknowledged is lost.** A value leaves only after its frame is synced. Frames
//! are written under the journal's lock, which is held from `begin_write` to the sync, so
//! frames are in seq order in the file. After a crash the file holds the last durable commit
//! (redb), and the journal holds every later acknowledged record in order from the first
//! frame after that commit's head: a durable commit (a write, a fold of `last_used`, a full
//! journal) covers every commit before it, so the first record not in the file is always the
//! next frame to replay. The MAC chain makes a replayed record exactly the one that was
//! acknowledged: a frame cannot be forged or moved without the audit key.
//!
//! **What else a read commit holds.** Only audit rows and the head — `last_used` is noted in
//! memory and folded by durable commits (`last_used.rs`) and replayed from the records. A
//! batch that interns a new executable path writes a `meta` row as well, so that batch is
//! committed durably (rare: once per program).
//!
//! Direct mode (`tresor` without a daemon) does not journal: it commits each read durably.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redb::{Database, WriteTransaction};

use super::audit;
use super::{AUDIT, Store};
use crate::crypto::{Locked, SubKeys};
use crate::error::{Error, Result};
use crate::format::AuditLayout;

/// The journal's size: ~8,000 read records; a full journal costs one durable commit.
const SIZE: u64 = 1024 * 1024;
const MAGIC: &[u8; 16] = b"tresor journal 1";
const HEADER: u64 = 32;
const FRAME_HEAD: usize = 12;

/// The journal of a daemon's store.
pub(crate) struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

pub(crate) struct State {
    file: File,
    /// Where the next frame goes.
    offset: u64,
}

/// Where the journal of the store at `store` lives.
pub(crate) fn path_of(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

/// Appends one frame to `out`.
pub(super) fn frame(out: &mut Vec<u8>, seq: u64, row: &[u8]) {
    // A row is a MAC and a sealed envelope of one record, far below 4 GiB.
    let len = u32::try_from(row.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(row);
}

impl Journal {
    /// Creates (or recreates) the journal of the store at `store`: zero-filled, synced, 0600.
    /// It is written as a new file (`O_EXCL`, no symlink followed) and renamed into place, so
    /// that nothing someone else left at the path — a file of theirs, a link to a file of
    /// ours — is ever opened and written.
    pub(crate) fn create(store: &Path, store_id: &[u8; 16]) -> Result<Self> {
        let path = path_of(store);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        // A leftover of ours from a start that did not finish (in a sticky directory, removing
        // someone else's fails, and so does the exclusive create below).
        let _ = std::fs::remove_file(&tmp);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
            .open(&tmp)
            .map_err(|e| journal_error(&tmp, "create", &e))?;
        let mut head = [0u8; HEADER as usize];
        head[..16].copy_from_slice(MAGIC);
        head[16..].copy_from_slice(store_id);
        let zeros = vec![0u8; 64 * 1024];
        let write_zeroed = || -> std::io::Result<()> {
            file.write_all_at(&head, 0)?;
            let mut at = HEADER;
            while at < SIZE {
                let n = usize::try_from((SIZE - at).min(zeros.len() as u64)).unwrap_or(0);
                file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            File::open(dir)?.sync_all()
        };
        if let Err(e) = write_zeroed() {
            let _ = std::fs::remove_file(&tmp);
            return Err(journal_error(&path, "create", &e));
        }
        Ok(Self {
            path,
            state: Mutex::new(State {
                file,
                offset: HEADER,
            }),
        })
    }

    /// Locks the journal for one read commit (held from `begin_write` to the sync).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the file (after a durable commit made it redundant).
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl State {
    /// Whether `n` bytes of frames fit after the write offset.
    pub(crate) fn fits(&self, n: usize) -> bool {
        self.offset + n as u64 <= SIZE
    }

    /// Starts again after the header (a durable commit just covered every frame).
    pub(crate) fn restart(&mut self) {
        self.offset = HEADER;
    }

    /// After a failed write: nothing fits until a durable commit restarts the journal (a
    /// frame written where the failed one may lie would be lost behind it at replay).
    pub(crate) fn poison(&mut self) {
        self.offset = SIZE + 1;
    }

    /// Restarts, unless a commit already did since the journal was poisoned (every commit in
    /// between was durable: nothing fits a poisoned journal).
    pub(crate) fn restart_if_poisoned(&mut self) {
        if self.offset > SIZE {
            self.restart();
        }
    }

    /// Writes `frames` at the write offset and syncs them.
    ///
    /// # Errors
    /// The write or the sync failed; the offset does not move.
    pub(crate) fn write_synced(&mut self, frames: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(frames, self.offset)?;
        self.file.sync_data()?;
        self.offset += frames.len() as u64;
        Ok(())
    }
}

fn journal_error(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Unavailable {
        reason: format!("cannot {what} the audit journal {}: {e}", path.display()),
    }
}

/// What a replay found.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Replayed {
    /// Records added.
    pub added: u64,
    /// Whether it ended at a frame claiming the next seq that does not continue the chain (a
    /// write cut short by a crash — a read that never returned — or damage).
    pub broken: bool,
}

/// Replays the journal's frames into `txn` (see the module docs); the caller commits.
///
/// # Errors
/// `Integrity` when the journal belongs to another store; storage errors.
pub(super) fn replay_into(
    keys: &SubKeys,
    store_id: &[u8; 16],
    txn: &WriteTransaction,
    path: &Path,
    bytes: &[u8],
) -> Result<Replayed> {
    let mut out = Replayed::default();
    if bytes.len() < HEADER as usize {
        return Ok(out);
    }
    if &bytes[..16] != MAGIC || &bytes[16..32] != store_id {
        return Err(Error::integrity(
            "journal",
            format!(
                "{} is not this store's audit journal; move it away and open the store again",
                path.display()
            ),
        ));
    }
    let (mut head, mut prev) = audit::head_in(keys, store_id, txn)?;
    let mut table = txn.open_table(AUDIT)?;
    let mut at = HEADER as usize;
    while let Some(fh) = bytes.get(at..at + FRAME_HEAD) {
        let len = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        let mut s = [0u8; 8];
        s.copy_from_slice(&fh[4..]);
        let seq = u64::from_le_bytes(s);
        if len == 0 {
            break;
        }
        let Some(row) = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len) else {
            out.broken = seq == head + 1;
            break;
        };
        at += FRAME_HEAD + len;
        if seq <= head {
            continue;
        }
        if seq != head + 1 {
            break;
        }
        let chained = AuditLayout::split(row)
            .filter(|(mac, env)| AuditLayout::mac(&keys.audit, &prev, seq, env) == *mac);
        let Some((mac, _)) = chained else {
            out.broken = true;
            break;
        };
        table.insert(seq, row)?;
        head = seq;
        prev = mac;
        out.added += 1;
    }
    drop(table);
    if out.added > 0 {
        audit::write_head_with(keys, store_id, txn, head, &prev)?;
    }
    Ok(out)
}

/// Reads the journal at `path`, if there is one, refusing one that someone else could have
/// written (SPEC §4.6): checked on the open descriptor, not the path.
fn read_journal(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::os::unix::fs::MetadataExt as _;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits().cast_signed())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::denied(format!(
                "cannot open the audit journal {} ({e}); it must be a regular file, not a \
                 symbolic link: move it away and open the store again",
                path.display()
            )));
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| journal_error(path, "read", &e))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(Error::denied(format!(
            "the audit journal {} is not a private file of yours (uid {}, mode {:o}): anyone \
             who could write it could have changed it; check it, move it away and open the \
             store again",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    // Only what a journal of ours can hold; the rest would be someone else's bytes.
    let mut buf = vec![0u8; usize::try_from(meta.len().min(SIZE)).unwrap_or(0)];
    file.read_exact_at(&mut buf, 0)
        .map_err(|e| journal_error(path, "read", &e))?;
    Ok(Some(buf))
}

/// Replays the journal of the store at `store_path` into `db` (after an i/o error reopened the
/// database, which dropped the non-durable commits) and commits *without* a sync: the records
/// are visible at once to every later transaction, and stay durable in the journal, which is
/// not restarted (a full disk cannot refuse this). Returns how many records were added.
///
/// # Errors
/// As [`replay_into`]; reading the file; the commit.
pub(crate) fn replay_database(
    keys: &SubKeys,
    store_id: &[u8; 16],
    store_path: &Path,
    db: &Database,
) -> Result<u64> {
    let path = path_of(store_path);
    let Some(bytes) = read_journal(&path)? else {
        return Ok(0);
    };
    let mut txn = db.begin_write()?;
    let n = replay_into(keys, store_id, &txn, &path, &bytes)?.added;
    if n == 0 {
        txn.abort()?;
    } else {
        txn.set_durability(redb::Durability::None)
            .map_err(|e| Error::internal("cannot commit without a sync", e))?;
        txn.commit()?;
    }
    Ok(n)
}

impl Store {
    /// Replays a journal left by a daemon that did not stop cleanly (at unlock), commits the
    /// records durably and removes the journal. Returns how many records were added.
    ///
    /// # Errors
    /// As [`replay_into`]; reading the file; the commit.
    pub(crate) fn replay_journal(&self) -> Result<u64> {
        if !self.db.is_file() {
            return Ok(0);
        }
        let path = path_of(&self.path);
        let Some(bytes) = read_journal(&path)? else {
            return Ok(0);
        };
        let txn = self.db.begin_write()?;
        let r = replay_into(&self.keys, &self.header.store_id, &txn, &path, &bytes)?;
        if r.added == 0 {
            txn.abort()?;
        } else {
            self.db.commit(txn)?;
            tracing::warn!(
                records = r.added,
                "replayed audit records from the journal of a daemon that did not stop cleanly"
            );
        }
        if r.broken {
            let mut bad = path.as_os_str().to_owned();
            bad.push(".bad");
            let bad = PathBuf::from(bad);
            tracing::warn!(
                kept = %bad.display(),
                "the audit journal ended in a frame that does not continue the chain (a write \
                 cut short by a crash: a read that never returned; or damage); kept for \
                 inspection"
            );
            let _ = std::fs::rename(&path, &bad);
        } else {
            let _ = std::fs::remove_file(&path);
        }
        Ok(r.added)
    }

    /// Turns the journal on (the daemon): value reads' records become durable in
    /// `<store>.journal`, and redb commits them without a sync. Idempotent.
    ///
    /// # Errors
    /// The journal cannot be created.
    pub fn enable_journal(&self) -> Result<()> {
        if !self.db.is_file() || self.journal.get().is_some() {
            return Ok(());
        }
        let j = Journal::create(&self.path, &self.header.store_id)?;
        let _ = self.journal.set(Arc::new(j));
        self.install_reopen_hook();
        Ok(())
    }

    /// After an i/o error reopens the database, the non-durable commits are gone from it:
    /// the hook replays them from the journal before any transaction begins.
    pub(super) fn install_reopen_hook(&self) {
        let k = &*self.keys;
        let keys = Locked::new(SubKeys {
            seal: k.seal.clone(),
            name: k.name.clone(),
            audit: k.audit.clone(),
            token: k.token.clone(),
            fingerprint: k.fingerprint.clone(),
        });
        let id = self.header.store_id;
        let path = self.path.clone();
        let Some(journal) = self.journal.get().map(Arc::clone) else {
            return;
        };
        self.db.set_reopen_hook(Some(Box::new(move |db: &Database| {
            // A read batch committed but not yet synced finishes its frames first (it holds
            // the lock and begins no transaction meanwhile).
            let _held = journal.lock();
            // Until the journal is replayed, nothing may be written: a new record would take
            // the seq of an acknowledged one.
            replay_database(&keys, &id, &path, db)
                .map(|n| tracing::warn!(records = n, "replayed the audit journal after a reopen"))
                .map_err(|e| format!("cannot replay the audit journal after a reopen: {e}"))
        })));
    }

    /// At close: one durable commit, after which the journal holds nothing the file lacks, and
    /// the journal is removed. When that commit fails the journal stays for the next unlock.
    pub(super) fn close_journal(&self) {
        let Some(j) = self.journal.get() else {
            return;
        };
        // The hook stays until this commit is done: if the database must be reopened first
        // (a full disk latched it), the journal is replayed into it before the commit.
        let done = self.db.begin_write().and_then(|txn| self.db.commit(txn));
        self.db.set_reopen_hook(None);
        if done.is_ok() {
            j.remove();
        }
    }

    /// The journal, when the daemon turned it on.
    pub(super) fn journal(&self) -> Option<&Journal> {
        self.journal.get().map(|j| &**j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_their_length_and_seq() {
        let mut out = Vec::new();
        frame(&mut out, 7, b"abc");
        assert_eq!(out.len(), FRAME_HEAD + 3);
        assert_eq!(&out[..4], &3u32.to_le_bytes());
        assert_eq!(&out[4..12], &7u64.to_le_bytes());
        assert_eq!(&out[12..], b"abc");
    }

    #[test]
    fn the_journal_sits_beside_the_store() {
        assert_eq!(
            path_of(Path::new("/x/store.tresor")),
            PathBuf::from("/x/store.tresor.journal")
        );
    }
}
