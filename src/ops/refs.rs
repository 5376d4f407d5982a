//! References, value comparison and certificate expiry: `/v1/secrets/{name}/references`,
//! `/v1/references`, `/v1/secrets/{name}/compare`, `/v1/certificates` (SPEC §1, §7).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::{Error, Result};
use crate::protocol::{SecretText, decode_bytes};
use crate::types::{RefKind, References, Scope};

/// A secret named by a request: its name, and a scope or none (resolve user → team → org).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretId {
    /// The name.
    pub name: String,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// The most secrets one `/v1/references` or `/v1/certificates` request may name.
pub const MAX_IDS: usize = 4096;

fn check_len(n: usize) -> Result<()> {
    if n > MAX_IDS {
        return Err(Error::invalid(
            "secrets",
            format!("{n} secrets in one request; the limit is {MAX_IDS}: split the request"),
        ));
    }
    Ok(())
}

/// `GET /v1/secrets/{name}/references`: what refers to a secret, and who read it in the last
/// 30 days (owners and members).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferencesGet {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}
endpoint!(ReferencesGet, Get "/v1/secrets/{name}/references" => References, name);

impl Operation for ReferencesGet {
    fn apply(self, cx: &Context<'_>) -> Result<References> {
        cx.store
            .secret_references(cx.actor, &self.name, self.scope.as_ref())
    }
}

/// `POST /v1/references`: records that a manifest, env file or template resolved these
/// secrets (sent by `apply`, `run --env-file` and `inject`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordReferences {
    /// `manifest`, `env_file` or `template`.
    pub kind: RefKind,
    /// The file's absolute path.
    pub path: String,
    /// The secrets it resolved.
    pub secrets: Vec<SecretId>,
}
endpoint!(RecordReferences, Post "/v1/references" => Recorded);

/// How many references were new or refreshed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// New or refreshed references (one seen in the last hour is not written again).
    pub recorded: usize,
}

impl Operation for RecordReferences {
    fn apply(self, cx: &Context<'_>) -> Result<Recorded> {
        check_len(self.secrets.len())?;
        let ids: Vec<(Option<Scope>, String)> = self
            .secrets
            .into_iter()
            .map(|s| (s.scope, s.name))
            .collect();
        let recorded = cx
            .store
            .record_references(cx.actor, self.kind, &self.path, &ids)?;
        Ok(Recorded { recorded })
    }
}

/// `POST /v1/secrets/{name}/compare`: whether a value equals the current one, by keyed
/// fingerprint (those who may write the secret; `apply` uses it to decide a rotation). The
/// stored value is not read and nothing is recorded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// The secret (path).
    #[serde(skip)]
    pub name: String,
    /// An explicit scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The candidate value, when UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretText>,
    /// The candidate value in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<SecretText>,
}
endpoint!(Compare, Post "/v1/secrets/{name}/compare" => Compared, name);

/// What a comparison found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// `true` when equal, `false` when different, `null` when the current value has no
    /// fingerprint (an empty value: fields only).
    pub same: Option<bool>,
}

impl Operation for Compare {
    fn apply(self, cx: &Context<'_>) -> Result<Compared> {
        let value = decode_bytes("value", self.value.as_ref(), self.value_base64.as_ref())?
            .ok_or_else(|| Error::invalid("value", "give `value` or `value_base64`"))?;
        let same =
            cx.store
                .same_value(cx.actor, &self.name, self.scope.as_ref(), value.expose())?;
        Ok(Compared { same })
    }
}

/// `POST /v1/certificates`: the X.509 expiry of `certificate` secrets, for whoever may see
/// their metadata. Not a value read: nothing is recorded and `last_used` does not move.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificates {
    /// The certificates.
    pub secrets: Vec<SecretId>,
}
endpoint!(Certificates, Post "/v1/certificates" => CertificateList);

/// One certificate's expiry, or why it is unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateExpiry {
    /// The name.
    pub name: String,
    /// The scope asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The earliest `notAfter` of the certificates in the value.
    #[serde(
        default,
        with = "crate::types::time::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<Timestamp>,
    /// Why there is no expiry (not PEM, no certificate, not found, not allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /v1/certificates` response, in request order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateList {
    /// One entry per secret asked for.
    pub certificates: Vec<CertificateExpiry>,
}

impl Operation for Certificates {
    fn apply(self, cx: &Context<'_>) -> Result<CertificateList> {
        check_len(self.secrets.len())?;
        let mut out = CertificateList::default();
        for s in self.secrets {
            let r = cx
                .store
                .with_certificate(cx.actor, &s.name, s.scope.as_ref(), super::cert::not_after)
                .and_then(|r| r.map_err(|why| Error::invalid("certificate", why)));
            let (not_after, error) = match r {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(e.to_string())),
            };
            out.certificates.push(CertificateExpiry {
                name: s.name,
                scope: s.scope,
                not_after,
                error,
            });
        }
        Ok(out)
    }
}
