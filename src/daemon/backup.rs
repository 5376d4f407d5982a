//! `GET /v1/backup`: the one answer that is not JSON. The store writes a consistent copy to an
//! unlinked file (`Store::backup_stream`); a blocking task reads it in chunks into a small
//! channel that the response body drains, so a large store is never held in memory and a slow
//! reader holds no store handle (locking is not delayed by a download).

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request, State as AxState};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Bytes, Frame};
use tokio::sync::mpsc;

use super::http::{ApiResult, Caller, Params, blocking};
use super::state::State;
use crate::ops::backup::Backup;

/// Bytes read from the file per chunk.
const CHUNK: usize = 64 * 1024;

/// A response body fed by a channel of chunks; an I/O error ends it with an error, so the
/// client sees a truncated body rather than a short file it would take for whole.
struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}

/// Streams a fresh backup of the store to an owner.
pub(super) async fn backup(
    AxState(state): AxState<Arc<State>>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    let (mut parts, _) = req.into_parts();
    let Params(Backup {}) = Params::<Backup>::from_request_parts(&mut parts, &state).await?;
    let store = caller.store()?;
    let actor = caller.actor;
    let witness = state.witness.clone();
    let (mut file, len) = blocking(move || {
        let out = store.backup_stream(&actor);
        // A denial is audited too: witness the head whatever the outcome.
        if let Some(w) = witness {
            w.note(&store);
        }
        out
    })
    .await?;
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = vec![0u8; CHUNK];
            let chunk = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // The reader went away: stop reading (the file is unlinked and goes with us).
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(len)),
    ];
    Ok((headers, axum::body::Body::new(ChannelBody(rx))).into_response())
}
