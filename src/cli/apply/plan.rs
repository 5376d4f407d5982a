//! The plan: the manifest compared with what the store holds. Each step says what changes
//! (never a value) and carries the operations that make the change.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::manifest::{Manifest, ValueSource, WantPrincipal, WantSecret, WantTeam};
use crate::error::{Error, Result};
use crate::types::{Grant, Principal, PrincipalKind};
use crate::types::{Scope, SecretMeta, SetRequest};

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Made new.
    Create,
    /// Changed.
    Update,
    /// Already as wanted.
    Unchanged,
    /// Removed (`--prune`).
    Delete,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Delete => "delete",
        }
    }
}

/// One operation on the backend.
#[derive(Clone, Debug)]
pub enum Op {
    /// Create a secret, its value read from the source at apply time.
    CreateSecret(WantSecret, ValueSource),
    /// Change a secret's metadata (the value is kept).
    UpdateSecret(WantSecret),
    /// Write a new version from the source (the value differs), with the metadata.
    RotateSecret(WantSecret, ValueSource),
    /// Add or replace a principal.
    AddPrincipal(WantPrincipal),
    /// Remove all grants of a pattern.
    Revoke(String, String),
    /// Add a grant.
    Grant(String, Grant),
    /// Create a team.
    AddTeam(String),
    /// Add a member to a team.
    Join(String, String),
    /// Remove a member from a team.
    Leave(String, String),
    /// Delete a secret.
    DeleteSecret(String, Scope),
    /// Remove a principal or team.
    RemovePrincipal(String),
}

/// One line of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// What it does.
    pub change: Change,
    /// `secret`, `principal` or `team`.
    pub kind: &'static str,
    /// `scope/name` for secrets, the name otherwise.
    pub name: String,
    /// What differs (field names, never values).
    pub details: Vec<String>,
    /// How.
    #[serde(skip)]
    pub ops: Vec<Op>,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<9} {} {}", self.change.as_str(), self.kind, self.name)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details.join(", "))?;
        }
        Ok(())
    }
}

/// What the store holds, as far as the caller may see.
pub struct Current {
    /// Visible secrets.
    pub secrets: Vec<SecretMeta>,
    /// Principals and teams.
    pub principals: Vec<Principal>,
    /// The caller's own principal, never pruned.
    pub me: Option<String>,
    /// Existing secrets whose manifest value differs from the stored one (by fingerprint).
    pub rotate: BTreeSet<(Scope, String)>,
}

/// Compares the manifest with the store.
pub fn plan(m: &Manifest, cur: &Current, prune: bool) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let by_key: BTreeMap<(Scope, String), &SecretMeta> = cur
        .secrets
        .iter()
        .map(|s| ((s.scope.clone(), s.name.clone()), s))
        .collect();
    for w in &m.secrets {
        let key = (w.scope.clone(), w.name.clone());
        let rotate = cur.rotate.contains(&key);
        steps.push(secret_step(w, by_key.get(&key), rotate)?);
    }
    let people: BTreeMap<&str, &Principal> = cur
        .principals
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    for w in &m.principals {
        steps.push(principal_step(w, people.get(w.name.as_str()).copied())?);
    }
    for w in &m.teams {
        steps.push(team_step(w, people.get(w.name.as_str()).copied())?);
    }
    if prune {
        steps.extend(prune_steps(m, cur));
    }
    Ok(steps)
}

fn step(change: Change, kind: &'static str, name: String, details: Vec<String>) -> Step {
    Step {
        change,
        kind,
        name,
        details,
        ops: Vec::new(),
    }
}

fn secret_step(w: &WantSecret, have: Option<&&SecretMeta>, rotate: bool) -> Result<Step> {
    let name = format!("{}/{}", w.scope, w.name);
    let Some(have) = have else {
        let src = w.value.clone().ok_or_else(|| {
            Error::invalid(
                &w.at,
                format!("secret {name} does not exist; give `value` to create it"),
            )
        })?;
        let mut s = step(
            Change::Create,
            "secret",
            name,
            vec![format!("value from {src}")],
        );
        s.ops.push(Op::CreateSecret(w.clone(), src));
        return Ok(s);
    };
    let mut diff = Vec::new();
    if w.secret_type.is_some_and(|t| t != have.secret_type) {
        diff.push("type".to_owned());
    }
    if w.description.is_some() && w.description != have.description {
        diff.push("description".to_owned());
    }
    if w.integration.is_some() && w.integration != have.integration {
        diff.push("integration".to_owned());
    }
    if w.meta.iter().any(|(k, v)| have.meta.get(k) != Some(v)) {
        diff.push("meta".to_owned());
    }
    if w.max_age_days.is_some() && w.max_age_days != have.max_age_days {
        diff.push("max_age_days".to_owned());
    }
    let rotate = w.value.clone().filter(|_| rotate);
    if rotate.is_some() {
        diff.insert(0, "~ value".to_owned());
    }
    if diff.is_empty() {
        return Ok(step(Change::Unchanged, "secret", name, diff));
    }
    let mut s = step(Change::Update, "secret", name, diff);
    s.ops.push(match rotate {
        Some(src) => Op::RotateSecret(w.clone(), src),
        None => Op::UpdateSecret(w.clone()),
    });
    Ok(s)
}

fn principal_step(w: &WantPrincipal, have: Option<&Principal>) -> Result<Step> {
    let kind: PrincipalKind = w.role.into();
    let mut diff = Vec::new();
    let mut ops = Vec::new();
    let old_grants: &[Grant] = match have {
        Some(p) if p.kind == PrincipalKind::Team => {
            return Err(conflict(format!(
                "{} is a team, the manifest lists a principal",
                w.name
            )));
        }
        Some(p) => {
            if p.kind != kind || p.uid != w.uid || p.gid != w.gid {
                diff.push(role_detail(p, w));
                ops.push(Op::AddPrincipal(w.clone()));
            }
            &p.grants
        }
        None => {
            diff.push(w.role.to_string());
            ops.push(Op::AddPrincipal(w.clone()));
            &[]
        }
    };
    let grant_ops = grant_ops(&w.name, old_grants, &w.grants);
    if !grant_ops.is_empty() {
        diff.push("grants".to_owned());
    }
    ops.extend(grant_ops);
    let change = match (have, ops.is_empty()) {
        (None, _) => Change::Create,
        (Some(_), true) => Change::Unchanged,
        (Some(_), false) => Change::Update,
    };
    let mut s = step(change, "principal", w.name.clone(), diff);
    s.ops = ops;
    Ok(s)
}

fn role_detail(p: &Principal, w: &WantPrincipal) -> String {
    let mut what = Vec::new();
    if p.kind != w.role.into() {
        what.push("role");
    }
    if p.uid != w.uid {
        what.push("uid");
    }
    if p.gid != w.gid {
        what.push("gid");
    }
    let mut s = what.join(", ");
    if p.has_token {
        s.push_str(", its bearer token is dropped");
    }
    s
}

/// Revokes the patterns whose grants differ, then grants what the manifest lists for them.
fn grant_ops(name: &str, old: &[Grant], new: &[Grant]) -> Vec<Op> {
    let patterns: BTreeSet<&str> = old.iter().chain(new).map(|g| g.pattern.as_str()).collect();
    let mut ops = Vec::new();
    for p in patterns {
        let of = |gs: &[Grant]| -> BTreeSet<String> {
            gs.iter()
                .filter(|g| g.pattern == p)
                .map(|g| {
                    format!(
                        "{:?}|{:?}",
                        g.scope,
                        g.expires.map(jiff::Timestamp::as_second)
                    )
                })
                .collect()
        };
        if of(old) == of(new) {
            continue;
        }
        if old.iter().any(|g| g.pattern == p) {
            ops.push(Op::Revoke(name.to_owned(), p.to_owned()));
        }
        for g in new.iter().filter(|g| g.pattern == p) {
            ops.push(Op::Grant(name.to_owned(), g.clone()));
        }
    }
    ops
}

fn team_step(w: &WantTeam, have: Option<&Principal>) -> Result<Step> {
    let (change, old) = match have {
        None => (Change::Create, BTreeSet::new()),
        Some(p) if p.kind == PrincipalKind::Team => {
            (Change::Update, p.members.iter().cloned().collect())
        }
        Some(_) => {
            return Err(conflict(format!(
                "{} is a principal, the manifest lists a team",
                w.name
            )));
        }
    };
    let mut ops = Vec::new();
    if change == Change::Create {
        ops.push(Op::AddTeam(w.name.clone()));
    }
    let mut diff = Vec::new();
    for m in w.members.difference(&old) {
        diff.push(format!("+{m}"));
        ops.push(Op::Join(w.name.clone(), m.clone()));
    }
    for m in old.difference(&w.members) {
        diff.push(format!("-{m}"));
        ops.push(Op::Leave(w.name.clone(), m.clone()));
    }
    let change = if ops.is_empty() {
        Change::Unchanged
    } else {
        change
    };
    let mut s = step(change, "team", w.name.clone(), diff);
    s.ops = ops;
    Ok(s)
}

/// Principals and teams first: a grant naming a secret would block the secret's deletion.
fn prune_steps(m: &Manifest, cur: &Current) -> Vec<Step> {
    let listed: BTreeSet<&str> = m
        .principals
        .iter()
        .map(|p| p.name.as_str())
        .chain(m.teams.iter().map(|t| t.name.as_str()))
        .collect();
    let mut steps = Vec::new();
    for p in &cur.principals {
        if listed.contains(p.name.as_str()) || cur.me.as_deref() == Some(p.name.as_str()) {
            continue;
        }
        let kind = if p.kind == PrincipalKind::Team {
            "team"
        } else {
            "principal"
        };
        let mut s = step(Change::Delete, kind, p.name.clone(), Vec::new());
        s.ops.push(Op::RemovePrincipal(p.name.clone()));
        steps.push(s);
    }
    let wanted: BTreeSet<(&Scope, &str)> = m
        .secrets
        .iter()
        .map(|s| (&s.scope, s.name.as_str()))
        .collect();
    for s in &cur.secrets {
        if wanted.contains(&(&s.scope, s.name.as_str())) {
            continue;
        }
        let mut st = step(
            Change::Delete,
            "secret",
            format!("{}/{}", s.scope, s.name),
            Vec::new(),
        );
        st.ops
            .push(Op::DeleteSecret(s.name.clone(), s.scope.clone()));
        steps.push(st);
    }
    steps
}

fn conflict(reason: String) -> Error {
    Error::Conflict {
        reason,
        references: Vec::new(),
    }
}

/// The metadata part of a secret's set request (no value: kept, or added by the caller).
pub fn set_request(w: &WantSecret) -> SetRequest {
    SetRequest {
        scope: w.scope.clone(),
        secret_type: w.secret_type,
        description: w.description.clone(),
        integration: w.integration.clone(),
        meta: w.meta.clone(),
        max_age_days: w.max_age_days,
        ..SetRequest::default()
    }
}
