//! `GET /v1/backup`: a consistent copy of the sealed store file, for owners.

use serde::{Deserialize, Serialize};

use super::endpoint;

/// `GET /v1/backup` (owners): the sealed store file as `application/octet-stream`, with its
/// `Content-Length`. Audited as `export` (the copy holds its own record); a denial is audited.
///
/// An [`Endpoint`](super::Endpoint) without an [`Operation`](super::Operation): every
/// operation answers JSON from one buffer, while a backup is a file of any size, streamed. The
/// daemon serves it from `daemon/backup.rs` and [`crate::Client::backup`] reads it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {}
endpoint!(Backup, Get "/v1/backup" => ());
