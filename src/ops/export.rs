//! `/v1/export`: the values of a plaintext export, audited as `export`.

use serde::{Deserialize, Serialize};

use super::secrets::read_request;
use super::{Context, Operation, endpoint};
use crate::error::{Error, Result};
use crate::protocol::ValueResponse;
use crate::types::{Action, Scope, ValueRef};

/// One secret to export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportItem {
    /// The secret.
    pub name: String,
    /// An explicit scope; without it the lookup resolves user → team → org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// `POST /v1/export`: the current values of the named secrets, for `tresor export`. Owners
/// only (an export is every value at once; the one refusal of anyone else is one `export`
/// record). Every value is read in one transaction whose audit records say `export` and name
/// each secret; names gone meanwhile come back in `missing`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// The secrets.
    pub secrets: Vec<ExportItem>,
}
endpoint!(Export, Post "/v1/export" => ExportResponse);

/// The answer of `POST /v1/export`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportResponse {
    /// The values, in the order asked.
    pub secrets: Vec<ValueResponse>,
    /// `scope/name` of the secrets asked for that do not exist.
    #[serde(default)]
    pub missing: Vec<String>,
}

impl Operation for Export {
    fn apply(self, cx: &Context<'_>) -> Result<ExportResponse> {
        cx.store.authorize(cx.actor, Action::Export, "export")?;
        let reqs: Vec<_> = self
            .secrets
            .into_iter()
            .map(|i| {
                let v = ValueRef {
                    scope: i.scope,
                    name: i.name,
                    version: None,
                    field: None,
                };
                read_request(cx.actor, v)
            })
            .collect();
        let mut out = ExportResponse::default();
        for r in cx.store.read_batch_as(&reqs, Action::Export) {
            match r {
                Ok(v) => out.secrets.push(ValueResponse::from(&v)),
                Err(Error::NotFound { name, .. }) => out.missing.push(name),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
