//! `report unused`, `report duplicates`, and the summary of `report inventory`. Metadata only:
//! nothing here reads a value, records anything, or moves `last_used`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::Ctx;
use super::args::UnusedArgs;
use super::output::{self, ts};
use crate::error::Result;
use crate::ops::Api;
use crate::types::{ListFilter, SecretMeta};

/// Counts by type, by scope and by integration (`(none)` for untagged secrets).
#[derive(Debug, Default, Serialize)]
pub(super) struct Summary {
    total: usize,
    by_type: BTreeMap<String, usize>,
    by_scope: BTreeMap<String, usize>,
    by_integration: BTreeMap<String, usize>,
}

/// What an untagged secret counts under in `by_integration`.
const NO_INTEGRATION: &str = "(none)";

pub(super) fn summary(all: &[SecretMeta]) -> Summary {
    let mut s = Summary {
        total: all.len(),
        ..Summary::default()
    };
    for m in all {
        *s.by_type.entry(m.secret_type.to_string()).or_default() += 1;
        *s.by_scope.entry(m.scope.to_string()).or_default() += 1;
        let i = m
            .integration
            .clone()
            .unwrap_or_else(|| NO_INTEGRATION.into());
        *s.by_integration.entry(i).or_default() += 1;
    }
    s
}

/// Prints the summary after the inventory table.
pub(super) fn print_summary(s: &Summary) -> Result<()> {
    let line = |label: &str, m: &BTreeMap<String, usize>| {
        let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!("{label:<15}{}", parts.join(", "))
    };
    output::print_line("")?;
    output::print_line(&format!("{:<15}{}", "total", s.total))?;
    output::print_line(&line("by type", &s.by_type))?;
    output::print_line(&line("by scope", &s.by_scope))?;
    output::print_line(&line("by integration", &s.by_integration))
}

/// One row of `report unused`.
#[derive(Debug, Serialize)]
struct UnusedRow {
    scope: String,
    name: String,
    #[serde(rename = "type")]
    secret_type: String,
    #[serde(with = "crate::types::time::option")]
    last_used: Option<Timestamp>,
    /// Whole days since the last read, or since creation when never read.
    idle_days: i64,
}

/// `report unused [--days N]`: secrets never read (without `--days`), or not read in the last
/// N days (never read included), oldest first.
pub fn unused(ctx: &Ctx, args: &UnusedArgs) -> Result<()> {
    let now = crate::sys::now();
    let all = ctx.backend()?.list(&ListFilter::default())?;
    let days = |t: Timestamp| (now.as_second() - t.as_second()).div_euclid(86_400);
    let mut rows: Vec<UnusedRow> = all
        .iter()
        .filter(|m| match (m.last_used, args.days) {
            (None, _) => true,
            (Some(t), Some(n)) => days(t) >= i64::from(n),
            (Some(_), None) => false,
        })
        .map(|m| UnusedRow {
            scope: m.scope.to_string(),
            name: m.name.clone(),
            secret_type: m.secret_type.to_string(),
            last_used: m.last_used,
            idle_days: days(m.last_used.unwrap_or(m.created_at)),
        })
        .collect();
    rows.sort_by(|a, b| b.idle_days.cmp(&a.idle_days).then(a.name.cmp(&b.name)));
    if ctx.json() {
        return output::print_json(&rows);
    }
    let mut t = output::table(&["SCOPE", "NAME", "TYPE", "LAST USED", "IDLE"]);
    for r in rows {
        t.add_row(vec![
            r.scope,
            r.name,
            r.secret_type,
            r.last_used.map_or_else(|| "never".into(), ts),
            format!("{}d", r.idle_days),
        ]);
    }
    let note = match args.days {
        Some(n) => format!("every secret was read in the last {n} days"),
        None => "every secret has been read at least once".to_owned(),
    };
    output::print_table(&t, &note)
}

/// One group of `report duplicates`: secrets whose current values are equal.
#[derive(Debug, Serialize)]
struct DuplicateGroup {
    /// The shared keyed fingerprint (hex; reveals nothing about the value).
    fingerprint: String,
    /// `scope/name` of each secret sharing it.
    secrets: Vec<String>,
}

/// `report duplicates`: secrets that share a value, found by keyed fingerprint (SPEC §1).
pub fn duplicates(ctx: &Ctx) -> Result<()> {
    let all = ctx.backend()?.list_fingerprinted(&ListFilter::default())?;
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for m in &all {
        if let Some(fp) = &m.fingerprint {
            by.entry(fp)
                .or_default()
                .push(format!("{}/{}", m.scope, m.name));
        }
    }
    let groups: Vec<DuplicateGroup> = by
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(fp, secrets)| DuplicateGroup {
            fingerprint: fp.to_owned(),
            secrets,
        })
        .collect();
    if ctx.json() {
        return output::print_json(&groups);
    }
    let mut t = output::table(&["GROUP", "SECRET", "FINGERPRINT"]);
    for (i, g) in groups.iter().enumerate() {
        for s in &g.secrets {
            t.add_row(vec![
                (i + 1).to_string(),
                s.clone(),
                g.fingerprint[..12].to_owned(),
            ]);
        }
    }
    let unknown = all.iter().filter(|m| m.fingerprint.is_none()).count();
    if unknown > 0 {
        eprintln!(
            "{unknown} secret(s) without a fingerprint (fields only, no value) were not \
             compared"
        );
    }
    output::print_table(&t, "no two secrets share a value")
}
