//! `/v1/principals`: users, agents, teams and grants (owners).

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::Result;
use crate::protocol::{Deleted, PrincipalList, PrincipalOp, PrincipalResponse, SecretText};
use crate::types::{Principal, PrincipalSpec};

/// `GET /v1/principals`: every principal and team, sorted by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principals {}
endpoint!(Principals, Get "/v1/principals" => PrincipalList);

impl Operation for Principals {
    fn apply(self, cx: &Context<'_>) -> Result<PrincipalList> {
        Ok(PrincipalList {
            principals: cx.store.principals(cx.actor)?,
        })
    }
}

/// `GET /v1/principals/{name}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalGet {
    /// The principal or team (path).
    #[serde(skip)]
    pub name: String,
}
endpoint!(PrincipalGet, Get "/v1/principals/{name}" => Principal, name);

impl Operation for PrincipalGet {
    fn apply(self, cx: &Context<'_>) -> Result<Principal> {
        cx.store.principal_get(cx.actor, &self.name)
    }
}

/// `PUT /v1/principals/{name}`: one operation on the principal or team `name`; the body is
/// the [`PrincipalOp`] (`{"op":"grant","pattern":"api-*"}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "PrincipalOp", into = "PrincipalOp")]
pub struct PrincipalPut {
    /// The principal or team (path).
    pub name: String,
    /// What to do.
    pub op: PrincipalOp,
}
endpoint!(PrincipalPut, Put "/v1/principals/{name}" => PrincipalResponse, name);

impl From<PrincipalOp> for PrincipalPut {
    fn from(op: PrincipalOp) -> Self {
        Self {
            name: String::new(),
            op,
        }
    }
}

impl From<PrincipalPut> for PrincipalOp {
    fn from(p: PrincipalPut) -> Self {
        p.op
    }
}

impl Operation for PrincipalPut {
    fn apply(self, cx: &Context<'_>) -> Result<PrincipalResponse> {
        let (s, actor, name) = (cx.store, cx.actor, self.name);
        let mut warnings = Vec::new();
        let principal = match self.op {
            PrincipalOp::Add {
                role,
                uid,
                gid,
                token,
            } => {
                let spec = PrincipalSpec {
                    name,
                    role,
                    uid,
                    gid,
                    token,
                };
                let (principal, token) = s.principal_add(actor, &spec)?;
                let token = token.and_then(|t| t.as_str().map(|x| SecretText::new(x.to_owned())));
                return Ok(PrincipalResponse {
                    principal,
                    token,
                    warnings: Vec::new(),
                });
            }
            ref op @ PrincipalOp::Grant { .. } => {
                let g = op
                    .grant()
                    .ok_or_else(|| crate::Error::invalid("op", "grant"))?;
                let p = s.grant(actor, &name, &g)?;
                if !s.pattern_matches_any(actor, &g.pattern, g.scope.as_ref())? {
                    let within = g
                        .scope
                        .as_ref()
                        .map_or(String::new(), |s| format!(" in {s}"));
                    warnings.push(format!(
                        "the pattern {:?} matches no secret{within} (yet): check the spelling",
                        g.pattern
                    ));
                }
                p
            }
            PrincipalOp::Revoke { pattern } => s.revoke(actor, &name, &pattern)?,
            PrincipalOp::TeamAdd => s.team_add(actor, &name)?,
            PrincipalOp::TeamJoin { member } => s.team_join(actor, &name, &member)?,
            PrincipalOp::TeamLeave { member } => s.team_leave(actor, &name, &member)?,
        };
        Ok(PrincipalResponse {
            principal,
            token: None,
            warnings,
        })
    }
}

/// `DELETE /v1/principals/{name}`: removes a principal or team (never the last owner).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalDelete {
    /// The principal or team (path).
    #[serde(skip)]
    pub name: String,
}
endpoint!(PrincipalDelete, Delete "/v1/principals/{name}" => Deleted, name);

impl Operation for PrincipalDelete {
    fn apply(self, cx: &Context<'_>) -> Result<Deleted> {
        cx.store.principal_remove(cx.actor, &self.name)?;
        Ok(Deleted {
            deleted: self.name,
            broken: Vec::new(),
        })
    }
}
