//! The accept loop, per-connection serving, the idle lock and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::batch::Batcher;
use super::http::{ApiError, Peer};
use super::session::SessionCell;
use super::state::State;
use super::{Config, session_of};
use crate::error::{Error, Result};
use crate::protocol::{API_HEADER, API_VERSION};
use crate::store::PeerAdmission;

/// A whole request took longer than `request_timeout`; hyper closes the connection.
#[derive(Debug)]
struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request timed out")
    }
}

impl std::error::Error for TimedOut {}

/// Serves API v1 on `listener` until `shutdown` resolves, then finishes in-flight requests,
/// commits queued reads, drops the store (its keys are wiped) and returns.
///
/// # Errors
/// `Internal` when the committer thread cannot start.
pub async fn run(
    listener: UnixListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let cell = Arc::new(SessionCell::new(session_of(config.store)));
    let (batcher, committer) = Batcher::spawn(Arc::clone(&cell), config.group_commit)
        .map_err(|e| Error::internal("cannot start the committer thread", e))?;
    let mut state = State::new(Arc::clone(&cell), batcher, config.idle_lock);
    if let Some(path) = &config.audit_head_file {
        let witness = super::witness::Witness::open(path)?;
        if let Ok(store) = cell.store() {
            witness.note(&store);
        }
        state.witness = Some(Arc::new(witness));
    }
    let state = Arc::new(state);
    let router = super::routes::router(Arc::clone(&state));
    let max = config.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let idle = tokio::spawn(idle_lock(Arc::clone(&state), stop_rx.clone()));
    tokio::spawn(super::probe::run(Arc::clone(&cell), stop_rx.clone()));
    let limits = (config.header_timeout, config.request_timeout);
    tokio::pin!(shutdown);
    tracing::info!(locked = cell.store().is_err(), "tresord serving");
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.map_err(|e| Error::internal("semaphore closed", e))?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (state, router, stop) = (Arc::clone(&state), router.clone(), stop_rx.clone());
        tokio::spawn(async move {
            serve_conn(stream, &state, router, stop, limits).await;
            drop(permit);
        });
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    drop(listener);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _drained = permits.acquire_many(all).await;
    idle.abort();
    drop(router);
    drop(state);
    // The committer ends once every Batcher is gone, after committing what was queued.
    let _ = tokio::task::spawn_blocking(move || committer.join()).await;
    cell.clear();
    tracing::info!("stopped; keys dropped");
    Ok(())
}

fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let cred = stream.peer_cred().ok()?;
    let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    let exe = (pid != 0)
        .then(|| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .flatten()
        .map(|p| p.display().to_string());
    Some(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid,
        exe,
        admission: None,
    })
}

/// Whether a peer may talk at all, decided once per connection: a principal matches its
/// uid/gid, or it could still present an agent's bearer token ([`crate::Store::admit`]);
/// while locked, the owners and principals of the last session. The store's admission (none
/// while locked) goes with every request of the connection, so that a request without a token
/// is not authenticated a second time.
fn admit(state: &State, peer: &Peer) -> Result<Option<PeerAdmission>> {
    match state.cell.store() {
        Ok(store) => store.admit(peer.uid, peer.gid).map(Some),
        Err(_) if state.locked_role(peer.uid).is_some() => Ok(None),
        Err(_) => Err(Error::Unauthenticated {
            reason: format!("uid {} is not a known principal", peer.uid),
        }),
    }
}

async fn serve_conn(
    stream: UnixStream,
    state: &Arc<State>,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    (header_timeout, request_timeout): (std::time::Duration, std::time::Duration),
) {
    let Some(mut peer) = peer_of(&stream) else {
        tracing::warn!("no peer credentials; closing");
        return;
    };
    // Decided before a byte of the request is read: an unknown peer gets one 401 and the
    // connection closes.
    let refused = match admit(state, &peer) {
        Ok(admission) => {
            peer.admission = admission.map(Arc::new);
            None
        }
        Err(e) => Some(e),
    };
    if let Some(e) = &refused {
        tracing::warn!(uid = peer.uid, pid = peer.pid, error = %e, "connection refused");
    }
    let keep_alive = refused.is_none();
    let svc = service_fn(move |mut req: hyper::Request<Incoming>| {
        let router = router.clone();
        // The same error again (its text as a reason would repeat `unauthenticated: `).
        let refused = refused.as_ref().map(Error::clone_fields);
        req.extensions_mut().insert(peer.clone());
        async move {
            let mut resp = if let Some(e) = refused {
                axum::response::IntoResponse::into_response(ApiError(e))
            } else if let Some(bad) = wrong_api(&req) {
                axum::response::IntoResponse::into_response(ApiError(bad))
            } else {
                match tokio::time::timeout(request_timeout, router.oneshot(req)).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(never)) => match never {},
                    Err(_) => return Err(TimedOut),
                }
            };
            resp.headers_mut()
                .insert(API_HEADER, hyper::header::HeaderValue::from(API_VERSION));
            Ok::<_, TimedOut>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(keep_alive)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown has begun (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A request that names another API version is refused.
fn wrong_api(req: &hyper::Request<Incoming>) -> Option<Error> {
    let v = req.headers().get(API_HEADER)?;
    (v.to_str().ok() != Some(API_VERSION.to_string().as_str())).then(|| {
        Error::invalid(
            API_HEADER,
            format!("this daemon speaks API version {API_VERSION}"),
        )
    })
}

/// Locks the store after `idle_lock` without a request.
async fn idle_lock(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let Some(idle) = state.idle_lock else {
        return;
    };
    loop {
        let deadline = state.last_activity() + idle;
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = stopped(&mut stop) => return,
        }
        if state.last_activity() + idle <= tokio::time::Instant::now() {
            if state.cell.store().is_ok()
                && let Err(e) = state.lock(None).await
            {
                tracing::error!(error = %e, "idle lock failed");
            }
            state.touch();
        }
    }
}
