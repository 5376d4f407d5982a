//! `report inventory | rotation`: read-only views over every secret the caller may see
//! (`integrations`, `unused` and `duplicates` are in their own modules). No value is read:
//! a certificate's expiry is parsed by the store (`POST /v1/certificates`), so reports neither
//! add audit records nor move `last_used`.

use jiff::Timestamp;
use serde::Serialize;

use super::Ctx;
use super::args::{ReportCommand, RotationArgs};
use super::backend::Backend;
use super::output::{self, opt, opt_ts, ts};
use super::reference::reason;
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::ops::refs::{MAX_IDS, SecretId};
use crate::types::{ListFilter, SecretMeta, SecretType};

const DAY: i64 = 86_400;

/// `report ...`.
pub fn report(ctx: &Ctx, cmd: &ReportCommand) -> Result<()> {
    match cmd {
        ReportCommand::Inventory => inventory(ctx),
        ReportCommand::Rotation(a) => rotation(ctx, a),
        ReportCommand::Integrations(a) => super::integrations::integrations(ctx, &a.file),
        ReportCommand::Unused(a) => super::report_more::unused(ctx, a),
        ReportCommand::Duplicates => super::report_more::duplicates(ctx),
    }
}

/// Whole days from `from` to `to` (negative when `to` is earlier), rounded down.
fn days_between(from: Timestamp, to: Timestamp) -> i64 {
    // Microseconds, not seconds: truncating both ends to whole seconds would count 10 days
    // minus a few milliseconds as 10 whole days when both fall in the same second.
    (to.as_microsecond() - from.as_microsecond()).div_euclid(DAY * 1_000_000)
}

/// One row of `report inventory`.
#[derive(Debug, Serialize)]
struct InventoryRow {
    scope: String,
    name: String,
    #[serde(rename = "type")]
    secret_type: SecretType,
    integration: Option<String>,
    version: u64,
    versions_kept: usize,
    #[serde(with = "crate::types::time")]
    updated_at: Timestamp,
    #[serde(with = "crate::types::time::option")]
    last_used: Option<Timestamp>,
    age_days: i64,
    max_age_days: Option<u32>,
}

fn inventory_row(m: &SecretMeta, now: Timestamp) -> InventoryRow {
    InventoryRow {
        scope: m.scope.to_string(),
        name: m.name.clone(),
        secret_type: m.secret_type,
        integration: m.integration.clone(),
        version: m.version,
        versions_kept: m.versions.len(),
        updated_at: m.updated_at,
        last_used: m.last_used,
        age_days: days_between(m.current_version_at(), now),
        max_age_days: m.max_age_days,
    }
}

fn inventory(ctx: &Ctx) -> Result<()> {
    let now = crate::sys::now();
    let all = ctx.backend()?.list(&ListFilter::default())?;
    let summary = super::report_more::summary(&all);
    let rows: Vec<InventoryRow> = all.iter().map(|m| inventory_row(m, now)).collect();
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "secrets": rows,
            "summary": summary,
        }));
    }
    let mut t = output::table(&[
        "SCOPE",
        "NAME",
        "TYPE",
        "INTEGRATION",
        "VERSION",
        "KEPT",
        "UPDATED",
        "LAST USED",
        "AGE",
        "MAX AGE",
    ]);
    for r in rows {
        t.add_row(vec![
            r.scope,
            r.name,
            r.secret_type.to_string(),
            opt(r.integration),
            r.version.to_string(),
            r.versions_kept.to_string(),
            ts(r.updated_at),
            opt_ts(r.last_used),
            format!("{}d", r.age_days),
            r.max_age_days
                .map_or_else(|| "-".into(), |d| format!("{d}d")),
        ]);
    }
    output::print_table(&t, "no secrets")?;
    if !all.is_empty() {
        super::report_more::print_summary(&summary)?;
    }
    Ok(())
}

/// The default rotation period of a type, in days (`None`: no default).
fn default_limit(t: SecretType) -> Option<u32> {
    match t {
        SecretType::Token | SecretType::Bearer => Some(60),
        SecretType::Credentials | SecretType::Oauth => Some(90),
        SecretType::Plain | SecretType::Url | SecretType::EnvVar | SecretType::Certificate => None,
    }
}

/// One secret due (or soon due) for rotation.
#[derive(Debug, Serialize)]
struct RotationItem {
    scope: String,
    name: String,
    #[serde(rename = "type")]
    secret_type: SecretType,
    age_days: i64,
    limit_days: Option<i64>,
    due_in_days: Option<i64>,
    reason: String,
}

impl RotationItem {
    fn new(m: &SecretMeta, age_days: i64, reason: String) -> Self {
        Self {
            scope: m.scope.to_string(),
            name: m.name.clone(),
            secret_type: m.secret_type,
            age_days,
            limit_days: None,
            due_in_days: None,
            reason,
        }
    }

    fn limit(mut self, limit: i64) -> Self {
        self.limit_days = Some(limit);
        self.due_in_days = Some(limit - self.age_days);
        self
    }
}

/// The age policy of a secret: `max_age_days`, else its type's default.
fn age_policy(m: &SecretMeta, age: i64) -> Option<RotationItem> {
    if let Some(d) = m.max_age_days {
        return Some(RotationItem::new(m, age, format!("max_age_days {d}")).limit(i64::from(d)));
    }
    let d = default_limit(m.secret_type)?;
    Some(
        RotationItem::new(m, age, format!("{} default {d} days", m.secret_type))
            .limit(i64::from(d)),
    )
}

/// A certificate's state: its notAfter (or why it is unknown), combined with `max_age_days`
/// when that is nearer.
fn cert_policy(
    m: &SecretMeta,
    age: i64,
    expiry: Result<Timestamp>,
    now: Timestamp,
) -> RotationItem {
    let by_expiry = match expiry {
        Ok(t) => {
            let left = days_between(now, t);
            let word = if t < now { "expired" } else { "expires" };
            RotationItem::new(m, age, format!("certificate {word} {}", ts(t))).limit(age + left)
        }
        Err(e) => RotationItem::new(m, age, format!("unknown: {}", reason(&e))),
    };
    match (by_expiry.due_in_days, age_policy(m, age)) {
        (Some(e), Some(p)) if p.due_in_days.is_some_and(|d| d < e) => p,
        _ => by_expiry,
    }
}

/// The certificates' expiry, parsed by the store (`POST /v1/certificates`): not a value
/// read, so neither audited nor moving `last_used`, and open to members.
fn cert_expiries(b: &Backend, certs: &[&SecretMeta]) -> Result<Vec<Result<Timestamp>>> {
    let ids: Vec<SecretId> = certs
        .iter()
        .map(|m| SecretId {
            name: m.name.clone(),
            scope: Some(m.scope.clone()),
        })
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IDS) {
        let list = b.certificates(chunk.to_vec())?;
        out.extend(list.into_iter().map(|c| match (c.not_after, c.error) {
            (Some(t), _) => Ok(t),
            (None, e) => Err(Error::invalid(
                "certificate",
                e.unwrap_or_else(|| "no expiry".into()),
            )),
        }));
    }
    Ok(out)
}

fn rotation(ctx: &Ctx, args: &RotationArgs) -> Result<()> {
    let b = ctx.backend()?;
    let now = crate::sys::now();
    let all = b.list(&ListFilter::default())?;
    let certs: Vec<&SecretMeta> = all
        .iter()
        .filter(|m| m.secret_type == SecretType::Certificate)
        .collect();
    let mut expiries = cert_expiries(&b, &certs)?.into_iter();
    let window = i64::from(args.days);
    let mut due = Vec::new();
    for m in &all {
        let age = days_between(m.current_version_at(), now);
        let item = if m.secret_type == SecretType::Certificate {
            let e = expiries
                .next()
                .unwrap_or_else(|| Err(Error::invalid("certificate", "no value was read")));
            Some(cert_policy(m, age, e, now))
        } else {
            age_policy(m, age)
        };
        // Unknown certificates are always listed: nobody can tell they are fine.
        if let Some(d) = item.filter(|d| d.due_in_days.is_none_or(|n| n <= window)) {
            due.push(d);
        }
    }
    print_due(ctx, &due)
}

fn print_due(ctx: &Ctx, due: &[RotationItem]) -> Result<()> {
    if ctx.json() {
        return output::print_json(due);
    }
    let mut t = output::table(&["SCOPE", "NAME", "TYPE", "AGE", "LIMIT", "DUE IN", "REASON"]);
    for d in due {
        let days = |v: Option<i64>| v.map_or_else(|| "-".into(), |n| format!("{n}d"));
        t.add_row(vec![
            d.scope.clone(),
            d.name.clone(),
            d.secret_type.to_string(),
            format!("{}d", d.age_days),
            days(d.limit_days),
            days(d.due_in_days),
            d.reason.clone(),
        ]);
    }
    output::print_table(&t, "nothing due for rotation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_down() {
        let a: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let b: Timestamp = "2026-01-03T23:59:59Z".parse().expect("time");
        assert_eq!(days_between(a, b), 2);
        assert_eq!(days_between(b, a), -3);
    }
}
