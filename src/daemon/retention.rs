//! `tresord --audit-retention DURATION` (SPEC §3): while the store is unlocked, the audit
//! records older than the retention are pruned at start and then every hour (or every
//! retention period, when that is shorter), as the daemon itself (principal `tresord`). Each
//! prune leaves its checkpoint and its own `prune` record; the freed pages are reused by later
//! appends, so a log under retention stops growing the file.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::session::SessionCell;
use crate::types::Actor;

/// The longest wait between two prunes.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs until `stop` turns true.
pub(super) async fn pruner(
    cell: Arc<SessionCell>,
    keep: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let every = keep.min(EVERY).max(Duration::from_secs(1));
    loop {
        if let Ok(store) = cell.store() {
            let done = tokio::task::spawn_blocking(move || {
                let keep =
                    jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::MAX);
                let before = crate::sys::now()
                    .checked_sub(keep)
                    .unwrap_or(jiff::Timestamp::MIN);
                store.audit_prune(&Actor::daemon(), before)
            })
            .await;
            match done {
                Ok(Ok(r)) if r.pruned > 0 => tracing::info!(
                    pruned = r.pruned,
                    first_kept_seq = r.before_seq,
                    "audit retention: pruned old records"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "audit retention: prune failed"),
                Err(e) => tracing::warn!(error = %e, "audit retention: the prune task failed"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
