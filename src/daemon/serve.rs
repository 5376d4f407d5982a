//! The accept loop, per-connection serving, the idle lock and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::batch::Batcher;
use super::http::{ApiError, Peer};
use super::refusals::WINDOW;
use super::session::SessionCell;
use super::slots::{Slots, Ticket, raise_open_files};
use super::state::State;
use super::{Config, session_of};
use crate::error::{Error, Result};
use crate::protocol::{API_HEADER, API_VERSION, ErrorResponse};
use crate::store::PeerAdmission;
use crate::types::Role;

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
/// commits queued reads, writes pending summaries of refused connections, drops the store
/// (its keys are wiped) and returns.
///
/// # Errors
/// `Internal` when the committer thread cannot start.
pub async fn run(
    listener: UnixListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    raise_open_files();
    let cell = Arc::new(SessionCell::new(
        session_of(config.store),
        config.audit_journal,
    ));
    let witness = match &config.audit_head_file {
        Some(path) => {
            let witness = super::witness::Witness::open(path)?;
            if let Ok(store) = cell.store() {
                witness.note(&store);
            }
            Some(Arc::new(witness))
        }
        None => None,
    };
    let (batcher, committer) = Batcher::spawn(
        Arc::clone(&cell),
        config.group_commit,
        config.idle_commit,
        witness.clone(),
    )
    .map_err(|e| Error::internal("cannot start the committer thread", e))?;
    let mut state = State::new(Arc::clone(&cell), batcher, config.idle_lock);
    state.witness = witness;
    let state = Arc::new(state);
    let router = super::routes::router(Arc::clone(&state));
    let slots = Slots::new(config.max_connections);
    // Every connection task holds a sender; when all are gone, every connection has ended.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let idle = tokio::spawn(idle_lock(Arc::clone(&state), stop_rx.clone()));
    let flusher = tokio::spawn(flush_refusals(Arc::clone(&state), stop_rx.clone()));
    let refresher = tokio::spawn(super::refresh::refresher(
        Arc::clone(&cell),
        stop_rx.clone(),
    ));
    tokio::spawn(super::probe::run(Arc::clone(&cell), stop_rx.clone()));
    if let Some(keep) = config.audit_retention {
        tokio::spawn(super::retention::pruner(
            Arc::clone(&cell),
            keep,
            stop_rx.clone(),
        ));
    }
    let limits = (config.header_timeout, config.request_timeout);
    tokio::pin!(shutdown);
    tracing::info!(locked = cell.store().is_err(), "tresord serving");
    loop {
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
        let Some((peer, ticket)) = admit_conn(&stream, &state, &slots) else {
            // Refused: closed without reading a byte.
            continue;
        };
        let (router, mut stop) = (router.clone(), stop_rx.clone());
        let alive = alive.clone();
        tokio::spawn(async move {
            let _alive = alive;
            let slot = tokio::select! {
                s = ticket.slot() => s,
                () = stopped(&mut stop) => return,
            };
            serve_conn(stream, peer, router, stop, limits).await;
            drop(slot);
        });
    }
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    if let Ok(store) = cell.store() {
        // Long polls answer now: draining must not wait out their timeout.
        store.close_watches();
    }
    drop(listener);
    drop(alive);
    let _ = all_done.recv().await;
    idle.abort();
    let _ = flusher.await;
    if let Ok(store) = cell.store() {
        state.flush_refusals(&store).await;
    } else {
        state.refusals.log_unwritten();
    }
    refresher.abort();
    drop(router);
    drop(state);
    // The committer ends once every Batcher is gone, after committing what was queued.
    let _ = tokio::task::spawn_blocking(move || committer.join()).await;
    cell.clear();
    tracing::info!("stopped; keys dropped");
    Ok(())
}

/// The kernel's credentials of the peer; the executable is looked up only once admitted.
fn peer_of(stream: &UnixStream) -> Option<Peer> {
    let cred = stream.peer_cred().ok()?;
    let pid = cred.pid().and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
    Some(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid,
        exe: None,
        admission: None,
    })
}

fn exe_of(pid: u32) -> Option<String> {
    (pid != 0)
        .then(|| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .flatten()
        .map(|p| p.display().to_string())
}

/// Whether a peer may talk at all, decided once per connection: a principal matches its
/// uid/gid, or it could still present an agent's bearer token ([`crate::Store::admit`]);
/// while locked, the owners and principals of the last session. The store's admission (none
/// while locked) goes with every request of the connection, so that a request without a token
/// is not authenticated a second time. Also says whether the peer is an owner.
fn admit(state: &State, peer: &Peer) -> Result<(Option<PeerAdmission>, bool)> {
    match state.cell.store() {
        Ok(store) => store.admit(peer.uid, peer.gid).map(|a| {
            let owner = a.principal().and_then(|p| p.kind.role()) == Some(Role::Owner);
            (Some(a), owner)
        }),
        Err(_) => match state.locked_role(peer.uid, peer.gid) {
            Some(role) => Ok((None, role == Role::Owner)),
            None => Err(Error::Unauthenticated {
                reason: format!("uid {} is not a known principal", peer.uid),
            }),
        },
    }
}

/// Decides a new connection as soon as its credentials are read, before a byte of it is:
/// an unknown peer, or a known one with too many connections already waiting, gets one error
/// answer and is closed at once; anyone else gets a slot or a place in its uid's queue.
fn admit_conn(stream: &UnixStream, state: &State, slots: &Arc<Slots>) -> Option<(Peer, Ticket)> {
    let Some(mut peer) = peer_of(stream) else {
        tracing::warn!("no peer credentials; closing");
        return None;
    };
    let owner = match admit(state, &peer) {
        Ok((admission, owner)) => {
            peer.admission = admission.map(Arc::new);
            owner
        }
        Err(e) => {
            let _logged = state.refusals.note(&peer, &e.to_string());
            answer_and_close(stream, &e);
            return None;
        }
    };
    match slots.admit(peer.uid, owner) {
        Ok(ticket) => {
            peer.exe = exe_of(peer.pid);
            Some((peer, ticket))
        }
        Err(full) => {
            tracing::debug!(
                uid = peer.uid,
                per_uid = full.per_uid,
                "too many connections of one uid wait; closing"
            );
            answer_and_close(
                stream,
                &Error::TooManyRequests {
                    retry_after_ms: 1000,
                },
            );
            None
        }
    }
}

/// Writes one error answer without reading anything (a fresh socket's buffer takes it
/// without blocking; if not, nothing is written). The caller then drops the stream.
fn answer_and_close(stream: &UnixStream, e: &Error) {
    let code = e.code();
    let status = hyper::StatusCode::from_u16(code.http_status())
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&ErrorResponse::from(e)).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n{API_HEADER}: {API_VERSION}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Error::TooManyRequests { retry_after_ms } = e {
        let secs = retry_after_ms.div_ceil(1000).max(1);
        out.push_str("retry-after: ");
        out.push_str(&secs.to_string());
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    let _ = stream.try_write(&bytes);
}

async fn serve_conn(
    stream: UnixStream,
    peer: Peer,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
    (header_timeout, request_timeout): (std::time::Duration, std::time::Duration),
) {
    let svc = service_fn(move |mut req: hyper::Request<Incoming>| {
        let router = router.clone();
        req.extensions_mut().insert(peer.clone());
        async move {
            let mut resp = if let Some(bad) = wrong_api(&req) {
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

/// Writes the summaries of refused connections once a minute (SPEC §3), while unlocked; while
/// locked they wait for the next unlock.
async fn flush_refusals(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let start = tokio::time::Instant::now() + WINDOW;
    let mut tick = tokio::time::interval_at(start, WINDOW);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stop) => return,
        }
        if let Ok(store) = state.cell.store() {
            state.flush_refusals(&store).await;
        }
    }
}

/// Locks the store after `idle_lock` without an authenticated request.
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
