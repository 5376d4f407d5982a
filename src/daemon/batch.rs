//! Group commit of audited value reads (SPEC §3).
//!
//! Handlers queue their reads; one committer thread takes everything queued, calls
//! [`Store::read_batch`] once (one durable transaction holding every audit record and
//! `last_used` update), and only then hands each request its value. With one request waiting
//! the batch is that request alone, so an idle daemon commits inline; under contention the
//! batch grows and the fsync is shared.
//!
//! With group commit off (`Config::group_commit = false`, for benchmarks) every read gets its
//! own durable commit.
//!
//! [`Store::read_batch`]: crate::Store::read_batch

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::session::SessionCell;
use crate::error::{Error, Result};
use crate::store::ReadRequest;
use crate::types::SecretValue;

/// The most reads one commit takes (bounds the transaction, not the queue).
const MAX_BATCH: usize = 4096;

struct Job {
    reqs: Vec<ReadRequest>,
    reply: oneshot::Sender<Vec<Result<SecretValue>>>,
}

/// The handle handlers queue reads on.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the committer thread. It ends when every `Batcher` clone is dropped, after
    /// committing what is queued.
    pub(crate) fn spawn(
        cell: Arc<SessionCell>,
        group_commit: bool,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("tresord-commit".into())
            .spawn(move || committer(&cell, rx, group_commit))?;
        Ok((Self { tx }, handle))
    }

    /// Queues `reqs`; `None` when the committer has stopped.
    fn submit(
        &self,
        reqs: Vec<ReadRequest>,
    ) -> Option<oneshot::Receiver<Vec<Result<SecretValue>>>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { reqs, reply }).ok().map(|()| rx)
    }
}

/// Reads queued from a blocking thread (an operation runs off the async workers); each result
/// arrives after its audit record is durable.
impl crate::ops::Reads for Batcher {
    fn read(&self, reqs: Vec<ReadRequest>) -> Vec<Result<SecretValue>> {
        let n = reqs.len();
        match self.submit(reqs) {
            Some(rx) => rx.blocking_recv().unwrap_or_else(|_| not_committed(n)),
            None => not_committed(n),
        }
    }
}

fn not_committed(n: usize) -> Vec<Result<SecretValue>> {
    (0..n)
        .map(|_| {
            Err(Error::Internal {
                message: "the read was not committed (shutting down, or the batch failed)".into(),
                source: None,
            })
        })
        .collect()
}

fn committer(cell: &SessionCell, mut rx: mpsc::UnboundedReceiver<Job>, group_commit: bool) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        if group_commit {
            let mut queued = jobs[0].reqs.len();
            while queued < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => {
                        queued += j.reqs.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
        }
        let Ok(store) = cell.store() else {
            for j in jobs {
                let n = j.reqs.len();
                let _ = j.reply.send((0..n).map(|_| Err(Error::Locked)).collect());
            }
            continue;
        };
        // A panic in the store must not take the committer (and every later read) down.
        let run = std::panic::AssertUnwindSafe(|| commit(&store, jobs, group_commit));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a read batch panicked; its requests fail, the committer goes on");
        }
    }
}

/// Reads and commits `jobs`, replying to each. A job whose reply channel is dropped (its
/// panicked batch) sees `Internal`.
fn commit(store: &crate::Store, jobs: Vec<Job>, group_commit: bool) {
    if group_commit {
        let counts: Vec<usize> = jobs.iter().map(|j| j.reqs.len()).collect();
        let (all, replies): (Vec<Vec<ReadRequest>>, Vec<_>) =
            jobs.into_iter().map(|j| (j.reqs, j.reply)).unzip();
        let all: Vec<ReadRequest> = all.into_iter().flatten().collect();
        let mut results = store.read_batch(&all).into_iter();
        for (reply, n) in replies.into_iter().zip(counts) {
            let _ = reply.send(results.by_ref().take(n).collect());
        }
    } else {
        for j in jobs {
            let out = j
                .reqs
                .iter()
                .flat_map(|r| store.read_batch(std::slice::from_ref(r)))
                .collect();
            let _ = j.reply.send(out);
        }
    }
}
