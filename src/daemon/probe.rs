//! While the store is degraded (its last write failed on the disk), probes the disk every few
//! seconds, so that the status clears — and the next client's write is expected to work —
//! without waiting for a client to write first: a list-only workload recovers by itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::session::SessionCell;

/// How often a degraded store's disk is probed.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Runs until shutdown begins.
pub(crate) async fn run(cell: Arc<SessionCell>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(PROBE_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if cell.degraded().is_none() {
            continue;
        }
        let cell = Arc::clone(&cell);
        let probed = tokio::task::spawn_blocking(move || {
            if let Ok(store) = cell.store() {
                store.probe()
            } else if let Some(locked) = cell.locked() {
                locked.probe()
            } else {
                Ok(())
            }
        })
        .await;
        match probed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "the disk still fails"),
            Err(e) => tracing::error!(error = %e, "the disk probe failed to run"),
        }
    }
}
