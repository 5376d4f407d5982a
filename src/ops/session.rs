//! The daemon's session endpoints: served by `tresord` itself (they change or describe the
//! daemon's state, not the store), so they are [`Endpoint`](super::Endpoint)s without an
//! [`Operation::apply`](super::Operation::apply).

use serde::{Deserialize, Serialize};

use super::endpoint;
use crate::protocol::SecretText;

pub use crate::protocol::Status as StatusBody;

/// `GET /v1/status`: `{locked, version, store_id, secrets, since}` and who the caller is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {}
endpoint!(Status, Get "/v1/status" => StatusBody);

/// `POST /v1/unlock` (owners): failures back off (429) and are audited at the next unlock.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unlock {
    /// The passphrase.
    pub passphrase: SecretText,
}
endpoint!(Unlock, Post "/v1/unlock" => StatusBody);

/// `POST /v1/lock` (owners): drains in-flight requests and drops every key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {}
endpoint!(Lock, Post "/v1/lock" => StatusBody);
