//! `GET /v1/watch`: a long poll for new versions of named secrets (`run --watch`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Context, Operation, endpoint};
use crate::error::{Error, Result};
use crate::types::{Scope, ValueRef};

/// The longest a watch waits: below the daemon's 30 s request timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(25);
/// The most secrets one watch names.
pub const MAX_SECRETS: usize = 256;

/// `GET /v1/watch?secrets=a,team:infra/db&since=G&timeout_ms=T`: the current version of each
/// named secret, answered when the store's change generation differs from `since` (at once
/// without `since`) or after `timeout_ms` (default and at most 25 s). A caller compares the
/// versions with those it holds and polls again with the `generation` answered.
///
/// The versions are metadata reads as the caller (a denial is audited, a secret that is gone
/// has no version); they do not move `last_used`. Only a change of secrets (a write, import,
/// rollback, delete or upstream refresh) moves the generation, never a read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// `[scope/]name` items, comma-separated (names hold no comma).
    pub secrets: String,
    /// The generation of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// How long to wait for a change, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}
endpoint!(Watch, Get "/v1/watch" => WatchState);

/// The answer of [`Watch`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchState {
    /// The store's change generation: send it back as `since`.
    pub generation: u64,
    /// Each named secret, in the order asked.
    pub secrets: Vec<WatchedSecret>,
}

/// One secret of a [`WatchState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedSecret {
    /// The name as asked (`[scope/]name`).
    pub name: String,
    /// The scope it resolved to; absent when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Its current version; absent when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Watch {
    /// A watch of `refs` (scope and name are used; a field or version is not).
    pub fn of(refs: &[ValueRef], since: Option<u64>, timeout: Option<Duration>) -> Self {
        let names: Vec<String> = refs
            .iter()
            .map(|r| match &r.scope {
                Some(s) => format!("{s}/{}", r.name),
                None => r.name.clone(),
            })
            .collect();
        Self {
            secrets: names.join(","),
            since,
            timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl Operation for Watch {
    fn apply(self, cx: &Context<'_>) -> Result<WatchState> {
        let items: Vec<&str> = self.secrets.split(',').filter(|s| !s.is_empty()).collect();
        if items.is_empty() || items.len() > MAX_SECRETS {
            return Err(Error::invalid(
                "secrets",
                format!("name 1 to {MAX_SECRETS} secrets, comma-separated"),
            ));
        }
        let refs = items
            .iter()
            .map(|i| ValueRef::parse_path(i))
            .collect::<Result<Vec<_>>>()?;
        let generation = match self.since {
            Some(since) => {
                let wait = self
                    .timeout_ms
                    .map_or(MAX_WAIT, Duration::from_millis)
                    .min(MAX_WAIT);
                cx.store.wait_for_change(since, wait)
            }
            None => cx.store.change_generation(),
        };
        let mut secrets = Vec::with_capacity(refs.len());
        for (item, r) in items.iter().zip(refs) {
            let found = match cx.store.show(cx.actor, &r.name, r.scope.as_ref()) {
                Ok(m) => Some(m),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            secrets.push(WatchedSecret {
                name: (*item).to_owned(),
                scope: found.as_ref().map(|m| m.scope.clone()),
                version: found.map(|m| m.version),
            });
        }
        Ok(WatchState {
            generation,
            secrets,
        })
    }
}
