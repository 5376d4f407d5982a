//! Group commit of audited value reads (SPEC §3).
//!
//! A read is done in two phases ([`Store::prepare_reads`], [`Store::commit_prepared`]). The
//! read phase — resolve, authorize, open the value — runs on the requesting thread, so the
//! requests of many clients are read in parallel; it writes nothing. The requester then queues
//! what it found, and one committer thread takes everything queued and commits it in one
//! durable transaction holding every audit record; only then does each requester get its
//! values. With one request waiting the batch is that request alone, so an idle daemon commits
//! at once; under contention the batch grows and the fsync is shared.
//!
//! The value path of the daemon (`routes.rs`) awaits the commit on its async task
//! ([`Batcher::read_async`]), so a waiting read holds no thread; operations that run on a
//! blocking thread (environments, several values) wait there ([`crate::ops::Reads`]).
//!
//! **An idle daemon commits on the requesting task.** When nothing is queued and no commit is
//! running, [`Batcher::read_async`] takes the commit lock itself and commits its reads on the
//! spot instead of handing them to the committer thread and waiting to be woken: with one
//! client, that saves two thread wake-ups (the committer's and the task's) per read, out of a
//! round trip of about a quarter of a millisecond. The lock is the committer's too, so at most
//! one worker thread waits on a sync at a time, and under contention (something queued, or a
//! commit running) reads queue for the committer as before and share its sync.
//!
//! With group commit off (`Config::group_commit = false`, for benchmarks) every request's
//! reads get their own durable commit.
//!
//! [`Store::prepare_reads`]: crate::Store::prepare_reads
//! [`Store::commit_prepared`]: crate::Store::commit_prepared

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use super::session::SessionCell;
use super::witness::Witness;
use crate::error::{Error, Result};
use crate::store::{PreparedReads, ReadRequest, Store};
use crate::types::{Action, SecretValue};

/// The most reads one commit takes (bounds the transaction, not the queue).
const MAX_BATCH: usize = 4096;

type Reply = oneshot::Sender<Vec<Result<SecretValue>>>;

/// Reads found on the store they were read from, waiting for their commit.
struct Job {
    store: Arc<Store>,
    reads: PreparedReads,
    reply: Reply,
}

/// What the committer thread and a task committing on the spot share.
#[derive(Default)]
struct Shared {
    /// Held by whoever commits (the committer thread, or an idle daemon's task).
    commit: Mutex<()>,
    /// Jobs sent to the committer and not yet taken.
    queued: AtomicUsize,
}

/// The handle handlers queue reads on.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
    cell: Arc<SessionCell>,
    shared: Arc<Shared>,
    group_commit: bool,
    idle_commit: bool,
    witness: Option<Arc<Witness>>,
}

impl Batcher {
    /// Starts the committer thread. It ends when every `Batcher` clone is dropped, after
    /// committing what is queued. Each new audit head is appended to `witness` before the
    /// batch's values are handed out.
    pub(crate) fn spawn(
        cell: Arc<SessionCell>,
        group_commit: bool,
        idle_commit: bool,
        witness: Option<Arc<Witness>>,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let committer_cell = Arc::clone(&cell);
        let shared = Arc::new(Shared::default());
        let committer_shared = Arc::clone(&shared);
        let committer_witness = witness.clone();
        let handle = std::thread::Builder::new()
            .name("tresord-commit".into())
            .spawn(move || {
                committer(
                    &committer_cell,
                    &committer_shared,
                    rx,
                    group_commit,
                    committer_witness.as_deref(),
                );
            })?;
        Ok((
            Self {
                tx,
                cell,
                shared,
                group_commit,
                idle_commit,
                witness,
            },
            handle,
        ))
    }

    /// Runs the read phase of `reqs` on this thread and queues what it found; the receiver
    /// gets the results once their audit records are durable.
    fn submit(
        &self,
        store: Arc<Store>,
        reqs: Vec<ReadRequest>,
    ) -> Result<oneshot::Receiver<Vec<Result<SecretValue>>>> {
        let reads = store.prepare_reads(reqs)?;
        self.queue(store, reads)
    }

    fn queue(
        &self,
        store: Arc<Store>,
        reads: PreparedReads,
    ) -> Result<oneshot::Receiver<Vec<Result<SecretValue>>>> {
        let (reply, rx) = oneshot::channel();
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.tx
            .send(Job {
                store,
                reads,
                reply,
            })
            .map_err(|_| {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                not_committed()
            })?;
        Ok(rx)
    }

    /// Commits `reads` on this thread when the daemon is idle (nothing queued, no commit
    /// running); otherwise gives them back.
    fn commit_if_idle(
        &self,
        store: &Arc<Store>,
        reads: PreparedReads,
    ) -> std::result::Result<Vec<Result<SecretValue>>, PreparedReads> {
        if !self.group_commit || !self.idle_commit || self.shared.queued.load(Ordering::Acquire) > 0
        {
            return Err(reads);
        }
        let Ok(_held) = self.shared.commit.try_lock() else {
            return Err(reads);
        };
        let n = reads.len();
        // As the committer does: reads found on a store since locked are not committed.
        if !self
            .cell
            .store()
            .is_ok_and(|current| Arc::ptr_eq(&current, store))
        {
            return Ok(fan_out(Error::Locked, n));
        }
        let run = std::panic::AssertUnwindSafe(|| {
            let out = store.commit_prepared(reads, Action::Read);
            if let Some(w) = &self.witness {
                w.note(store);
            }
            out
        });
        Ok(std::panic::catch_unwind(run).unwrap_or_else(|_| {
            tracing::error!("a read commit panicked; its request fails");
            fan_out(not_committed(), n)
        }))
    }

    /// Reads `reqs` from `store` (read phase on the calling task: a few microseconds of CPU
    /// per read, no I/O wait but the store's page reads) and awaits their commit.
    pub(crate) async fn read_async(
        &self,
        store: Arc<Store>,
        reqs: Vec<ReadRequest>,
    ) -> Vec<Result<SecretValue>> {
        let n = reqs.len();
        let reads = match store.prepare_reads(reqs) {
            Ok(r) => r,
            Err(e) => return fan_out(e, n),
        };
        // Idle: commit here (a sync of ~0.1 ms on this worker, one worker at a time).
        let reads = match self.commit_if_idle(&store, reads) {
            Ok(out) => return out,
            Err(reads) => reads,
        };
        match self.queue(store, reads) {
            Ok(rx) => rx.await.unwrap_or_else(|_| fan_out(not_committed(), n)),
            Err(e) => fan_out(e, n),
        }
    }
}

/// Reads from a blocking thread (an operation runs off the async workers); each result
/// arrives after its audit record is durable.
impl crate::ops::Reads for Batcher {
    fn read(&self, reqs: Vec<ReadRequest>) -> Vec<Result<SecretValue>> {
        let n = reqs.len();
        let store = match self.cell.store() {
            Ok(s) => s,
            Err(e) => return fan_out(e, n),
        };
        match self.submit(store, reqs) {
            Ok(rx) => rx
                .blocking_recv()
                .unwrap_or_else(|_| fan_out(not_committed(), n)),
            Err(e) => fan_out(e, n),
        }
    }
}

fn not_committed() -> Error {
    Error::Internal {
        message: "the read was not committed (shutting down, or the batch failed)".into(),
        source: None,
    }
}

fn fan_out(e: Error, n: usize) -> Vec<Result<SecretValue>> {
    e.fan_out(n).into_iter().map(Err).collect()
}

fn committer(
    cell: &SessionCell,
    shared: &Shared,
    mut rx: mpsc::UnboundedReceiver<Job>,
    group_commit: bool,
    witness: Option<&Witness>,
) {
    while let Some(first) = rx.blocking_recv() {
        // Taken before the batch is gathered: what queues while a task commits on the spot
        // joins this batch.
        let _held = shared.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let mut jobs = vec![first];
        if group_commit {
            let mut queued = jobs[0].reads.len();
            while queued < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => {
                        queued += j.reads.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
        }
        shared.queued.fetch_sub(jobs.len(), Ordering::AcqRel);
        // Reads found on a store that has since been locked (and perhaps unlocked again) are
        // not committed: the store they were read from is going away.
        let current = cell.store().ok();
        let (jobs, stale): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| current.as_ref().is_some_and(|s| Arc::ptr_eq(s, &j.store)));
        for j in stale {
            let n = j.reads.len();
            let _ = j.reply.send(fan_out(Error::Locked, n));
        }
        let Some(store) = current.filter(|_| !jobs.is_empty()) else {
            continue;
        };
        // A panic in the store must not take the committer (and every later read) down.
        let run = std::panic::AssertUnwindSafe(|| commit(&store, jobs, group_commit, witness));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a read batch panicked; its requests fail, the committer goes on");
        }
    }
}

/// Commits `jobs`, replying to each. A job whose reply channel is dropped (its panicked
/// batch) sees `Internal`.
fn commit(store: &Store, jobs: Vec<Job>, group_commit: bool, witness: Option<&Witness>) {
    if group_commit {
        let mut replies = Vec::with_capacity(jobs.len());
        let mut all: Option<PreparedReads> = None;
        for j in jobs {
            replies.push((j.reply, j.reads.len()));
            match &mut all {
                Some(a) => a.append(j.reads),
                None => all = Some(j.reads),
            }
        }
        let Some(all) = all else { return };
        let mut results = store.commit_prepared(all, Action::Read).into_iter();
        if let Some(w) = witness {
            w.note(store);
        }
        for (reply, n) in replies {
            let _ = reply.send(results.by_ref().take(n).collect());
        }
    } else {
        for j in jobs {
            let out = store.commit_prepared(j.reads, Action::Read);
            if let Some(w) = witness {
                w.note(store);
            }
            let _ = j.reply.send(out);
        }
    }
}
