//! `GET /v1/backup`: the one answer that is a file, not JSON, read frame by frame into a
//! writer so that a large store is never held in memory.

use std::io::Write;

use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::body::Bytes;

use super::AsyncClient;
use crate::error::{Error, Result};
use crate::ops::Endpoint;
use crate::ops::backup::Backup;
use crate::protocol::{API_HEADER, API_VERSION, ErrorResponse};

impl AsyncClient {
    /// `GET /v1/backup` (owners): writes a consistent copy of the sealed store file to `out`
    /// and returns its length. On a new connection of its own (the kept-alive one stays free).
    ///
    /// # Errors
    /// `PermissionDenied` for non-owners; `Locked`; `Internal` when the daemon cannot be
    /// reached or the download ends short of its `Content-Length`; I/O errors of `out`.
    pub async fn backup(&self, out: &mut (dyn Write + Send)) -> Result<u64> {
        let (mut sender, early) = self.connect().await?;
        let mut req = hyper::Request::builder()
            .method(Method::GET)
            .uri(Backup::PATH)
            .header(hyper::header::HOST, "tresord")
            .header(API_HEADER, API_VERSION.to_string());
        if let Some(t) = &self.token {
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", t.expose()),
            );
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::internal("cannot build the request", e))?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                return Err(early
                    .and_then(|c| c.refusal())
                    .unwrap_or_else(|| Error::internal("request to tresord failed", e)));
            }
        };
        let (parts, mut body) = resp.into_parts();
        let failed = |e| Error::internal("reading the backup from tresord failed", e);
        if !parts.status.is_success() {
            let bytes = body.collect().await.map_err(failed)?.to_bytes();
            return Err(match serde_json::from_slice::<ErrorResponse>(&bytes) {
                Ok(e) => e.error.into_error(),
                Err(_) => Error::Internal {
                    message: format!("the daemon answered {} without an error body", parts.status),
                    source: None,
                },
            });
        }
        let expected = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut written = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(failed)?;
            if let Ok(data) = frame.into_data() {
                out.write_all(&data)
                    .map_err(|e| Error::internal("cannot write the backup", e))?;
                written += data.len() as u64;
            }
        }
        if expected.is_some_and(|n| n != written) {
            return Err(Error::Internal {
                message: format!(
                    "the backup ended after {written} of {} bytes",
                    expected.unwrap_or_default()
                ),
                source: None,
            });
        }
        Ok(written)
    }
}
