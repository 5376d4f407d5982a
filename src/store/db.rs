//! The redb database behind a store, reopened after an I/O failure.
//!
//! redb latches the first failed read, write or sync of its file: every later transaction
//! fails with `PreviousIo` until the `Database` is dropped and opened again (its recovery runs
//! at open and rolls back to the last durable commit). A full disk would otherwise break the
//! daemon until it was restarted. [`Db`] keeps the `Database` behind a lock, and when a
//! transaction cannot begin because of that latch it closes the database and opens the same
//! file (or backend) again, keeping everything else the store holds (keys, caches).
//!
//! Nothing acknowledged is lost by a reopen: an acknowledged write was durably committed, and
//! a failed commit was never acknowledged. While the last write failed, the store reports
//! itself [`Degraded`]; the next write that commits clears it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableDatabase, StorageBackend, WriteTransaction};

use crate::error::{Error, Result};

/// The free space a file store's filesystem must have before [`Db::probe`] calls the disk
/// healthy again: room for a few commits of new pages.
pub(crate) const PROBE_HEADROOM: u64 = 64 * 1024;

/// Makes a fresh storage backend onto the same bytes (tests: a fault-injecting backend).
pub type BackendFactory = std::sync::Arc<dyn Fn() -> Box<dyn StorageBackend> + Send + Sync>;

/// How the database is (re)opened.
pub(crate) enum Opener {
    /// The store file.
    File(std::path::PathBuf),
    /// A storage backend made on demand (only tests make one: `test-util`).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    Backend(BackendFactory),
}

/// Why the store is degraded: its last write failed on the disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Degraded {
    /// The failure, naming the OS error.
    pub reason: String,
    /// When the first failure of this spell happened.
    pub since: jiff::Timestamp,
}

/// The database, its opener and its health.
pub(crate) struct Db {
    /// The database and how many times it was opened (a reopen moves the count on, so that
    /// threads that saw the same latched database reopen it once).
    current: RwLock<(u64, Option<Database>)>,
    opener: Opener,
    degraded: Mutex<Option<Degraded>>,
    /// Set when a commit failed on the disk: redb has latched the error, and read
    /// transactions (which do not check the latch) must not be served from it either.
    latched: AtomicBool,
    /// Run on the reopened database before any transaction begins (the audit journal's
    /// replay: a reopen drops the non-durable commits).
    on_reopen: Mutex<Option<ReopenHook>>,
}

/// What runs on a reopened database (see [`Db::set_reopen_hook`]).
/// An `Err` keeps the database closed (the next transaction tries again).
pub(crate) type ReopenHook =
    Box<dyn Fn(&Database) -> std::result::Result<(), String> + Send + Sync>;

impl Db {
    pub(crate) fn new(db: Database, opener: Opener) -> Self {
        Self {
            current: RwLock::new((0, Some(db))),
            opener,
            degraded: Mutex::new(None),
            latched: AtomicBool::new(false),
            on_reopen: Mutex::new(None),
        }
    }

    /// Whether the database is a file (not a test backend): only a file store journals.
    pub(crate) fn is_file(&self) -> bool {
        matches!(self.opener, Opener::File(_))
    }

    /// Sets (or clears) what runs on the database after a reopen.
    pub(crate) fn set_reopen_hook(&self, hook: Option<ReopenHook>) {
        *self
            .on_reopen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = hook;
    }

    /// The database, for operations that need it exclusively (compaction).
    pub(crate) fn get_mut(&mut self) -> Option<&mut Database> {
        self.current
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .as_mut()
    }

    /// The current health: `Some` while the last write failed on the disk.
    pub(crate) fn degraded(&self) -> Option<Degraded> {
        self.degraded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_degraded(&self, reason: &str) {
        let mut g = self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        if g.is_none() {
            tracing::error!(reason, "the store is degraded: a write failed on the disk");
        }
        let since = g.as_ref().map_or_else(crate::sys::now, |d| d.since);
        *g = Some(Degraded {
            reason: reason.to_owned(),
            since,
        });
    }

    fn clear_degraded(&self) {
        let mut g = self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        if g.take().is_some() {
            tracing::info!("the store recovered: a write reached the disk again");
        }
    }

    /// Notes an error seen by an operation: a disk failure marks the store degraded.
    pub(crate) fn observe(&self, e: &Error) {
        if let Error::Unavailable { reason } = e {
            self.set_degraded(reason);
        }
    }

    /// Notes an error seen inside a write transaction before its commit (redb writes pages
    /// out of a large transaction as it goes): like a failed commit, a disk failure marks the
    /// store degraded and has the database reopened before the next transaction.
    pub(crate) fn observe_write(&self, e: &Error) {
        if matches!(e, Error::Unavailable { .. }) {
            self.latched.store(true, Ordering::Release);
        }
        self.observe(e);
    }

    /// Begins a write transaction, reopening the database first when an earlier I/O error
    /// closed it.
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction> {
        self.with_db(Database::begin_write)
    }

    /// Begins a read transaction (reopening likewise).
    pub(crate) fn begin_read(&self) -> Result<ReadTransaction> {
        self.with_db(ReadableDatabase::begin_read)
    }

    /// Commits a write transaction; a disk failure marks the store degraded, a commit that
    /// reaches the disk clears it.
    pub(crate) fn commit(&self, txn: WriteTransaction) -> Result<()> {
        self.commit_with(txn, true)
    }

    /// Commits a write transaction, durably or not: a non-durable commit is visible at once
    /// and made durable by the next durable one (the audit journal covers it meanwhile).
    pub(crate) fn commit_with(&self, mut txn: WriteTransaction, durable: bool) -> Result<()> {
        if !durable {
            txn.set_durability(redb::Durability::None)
                .map_err(|e| Error::internal("cannot commit without a sync", e))?;
        }
        match txn.commit() {
            Ok(()) => {
                // Only a commit that reached the disk says the disk is healthy.
                if durable {
                    self.clear_degraded();
                }
                Ok(())
            }
            Err(e) => {
                let e = Error::from(e);
                if matches!(e, Error::Unavailable { .. }) {
                    self.latched.store(true, Ordering::Release);
                }
                self.observe(&e);
                Err(e)
            }
        }
    }

    /// Tests whether the disk takes writes again, for a store that is degraded: reopens the
    /// database if an i/o error closed it and commits an empty write transaction (a synced
    /// header write). A file store must also have [`PROBE_HEADROOM`] bytes free on its
    /// filesystem, since a header write needs no new space and would pass on a full disk. On
    /// success the store is healthy again; on failure it stays degraded with the new reason.
    pub(crate) fn probe(&self) -> Result<()> {
        if let Opener::File(path) = &self.opener {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            let st = rustix::fs::statvfs(dir.unwrap_or(std::path::Path::new(".")))
                .map_err(|e| Error::internal("cannot read the filesystem's free space", e))?;
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            if free < PROBE_HEADROOM {
                let e = Error::Unavailable {
                    reason: format!(
                        "cannot write the store: no space left on device ({free} bytes free)"
                    ),
                };
                self.observe(&e);
                return Err(e);
            }
        }
        let txn = self.begin_write()?;
        self.commit(txn)
    }

    fn with_db<T>(
        &self,
        begin: impl Fn(&Database) -> std::result::Result<T, redb::TransactionError>,
    ) -> Result<T> {
        let (generation, first) = {
            let g = self.current.read().unwrap_or_else(PoisonError::into_inner);
            let first =
                g.1.as_ref()
                    .filter(|_| !self.latched.load(Ordering::Acquire))
                    .map(&begin);
            (g.0, first)
        };
        match first {
            Some(Ok(t)) => return Ok(t),
            Some(Err(redb::TransactionError::Storage(
                redb::StorageError::PreviousIo | redb::StorageError::DatabaseClosed,
            )))
            | None => {}
            Some(Err(e)) => {
                let e = Error::from(e);
                self.observe(&e);
                return Err(e);
            }
        }
        self.reopen(generation)?;
        let g = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let db = g.1.as_ref().ok_or_else(|| Error::Unavailable {
            reason: "the store's database is closed after an i/o error".into(),
        })?;
        begin(db).map_err(|e| {
            let e = Error::from(e);
            self.observe(&e);
            e
        })
    }

    /// Closes the latched database and opens it again, unless another thread already did
    /// (the generation moved on). Runs under the write lock, so no transaction begins
    /// meanwhile; one still running (begun before the failure) keeps the file until it ends,
    /// which the retry below waits out.
    fn reopen(&self, generation: u64) -> Result<()> {
        let mut g = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if g.0 != generation && g.1.is_some() {
            return Ok(());
        }
        if let Some(old) = g.1.take() {
            // Its error is the one that latched it; the file is released either way.
            let _ = old.close();
        }
        g.0 += 1;
        let mut last = None;
        for attempt in 0..50u32 {
            match self.open() {
                Ok(db) => {
                    tracing::warn!("reopened the store's database after an i/o error");
                    let hook = self
                        .on_reopen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(Err(reason)) = hook.as_ref().map(|h| h(&db)) {
                        let _ = db.close();
                        let e = Error::Unavailable { reason };
                        self.observe(&e);
                        return Err(e);
                    }
                    drop(hook);
                    g.1 = Some(db);
                    self.latched.store(false, Ordering::Release);
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10)) + 1));
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let e = match last {
            Some(e) => Error::from(e),
            None => Error::Unavailable {
                reason: "the store's database is still held by an unfinished transaction".into(),
            },
        };
        let e = match e {
            Error::Unavailable { .. } => e,
            other => Error::Unavailable {
                reason: format!("cannot reopen the store after an i/o error: {other}"),
            },
        };
        self.observe(&e);
        Err(e)
    }

    fn open(&self) -> std::result::Result<Database, redb::DatabaseError> {
        let mut b = Database::builder();
        b.set_cache_size(super::DEFAULT_CACHE_BYTES)
            .set_check_integrity_on_open(true);
        match &self.opener {
            Opener::File(path) => b.open(path),
            Opener::Backend(make) => b.create_with_backend(BoxedBackend(make())),
        }
    }
}

/// A boxed backend as a backend (redb takes `impl StorageBackend`).
#[derive(Debug)]
pub(crate) struct BoxedBackend(pub(crate) Box<dyn StorageBackend>);

impl StorageBackend for BoxedBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
}

impl super::Store {
    /// Tests whether a degraded store's disk takes writes again (a daemon calls it every few
    /// seconds while degraded, so that the status clears without waiting for a client's
    /// write). Reopens the database if an i/o error closed it, and commits an empty write
    /// transaction; a file store's filesystem must also have some room (64 KiB) free.
    ///
    /// # Errors
    /// `Unavailable` naming the OS error while the disk still fails; the store stays degraded.
    pub fn probe(&self) -> Result<()> {
        self.db.probe()
    }
}

impl super::LockedStore {
    /// As [`Store::probe`](super::Store::probe), for a locked store.
    ///
    /// # Errors
    /// As [`Store::probe`](super::Store::probe).
    pub fn probe(&self) -> Result<()> {
        self.db.probe()
    }
}
