//! Background refresh of `--refresh` remote secrets (SPEC §11): reads of those bindings are
//! served from the sealed cache and never wait on the network.
//!
//! Every second, the bindings whose time has come are fetched, each on its own blocking
//! thread (a slow provider holds only its own bindings back). After a fetch, good or not, the
//! next one is due in the binding's interval, jittered by ±10% so that a fleet of hosts does
//! not hit the cluster in step. A binding is first due at once, so a daemon that starts while
//! upstream is down serves the cache at once and notes the failure in `sync status`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::session::SessionCell;

/// `interval` ± 10%, from the OS random source.
fn jittered(interval: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = crate::crypto::fill_random(&mut b).map_or(0x8000, |()| u16::from_be_bytes(b));
    // 0.9 .. 1.1 of the interval.
    interval.mul_f64(0.9 + 0.2 * f64::from(r) / f64::from(u16::MAX))
}

/// Runs until `stop` turns true.
pub(super) async fn refresher(cell: Arc<SessionCell>, mut stop: watch::Receiver<bool>) {
    crate::upstream::set_background(true);
    let mut due: HashMap<String, Instant> = HashMap::new();
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        if let Ok(store) = cell.store() {
            let bindings = {
                let s = Arc::clone(&store);
                tokio::task::spawn_blocking(move || s.bindings())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default()
            };
            let now = Instant::now();
            for rec in bindings {
                let Some(every) = rec.binding.refresh_s else {
                    continue;
                };
                let key = format!("{}\0{}\0{}", store.store_id(), rec.scope, rec.name);
                if due.get(&key).is_some_and(|t| *t > now) {
                    continue;
                }
                if !busy
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key.clone())
                {
                    continue;
                }
                due.insert(key.clone(), now + jittered(Duration::from_secs(every)));
                let (s, busy) = (Arc::clone(&store), Arc::clone(&busy));
                tokio::task::spawn_blocking(move || {
                    let target = rec.binding.target();
                    if let Err(e) = crate::upstream::refresh(&s, rec) {
                        tracing::warn!(remote = %target, error = %e, "refresh failed; serving the cache");
                    }
                    busy.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&key);
                });
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
