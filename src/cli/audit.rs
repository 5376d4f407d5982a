//! `audit [filters] [--follow]` and `audit verify`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::Ctx;
use super::args::{AuditArgs, AuditCommand, AuditFilterArgs};
use super::backend::Backend;
use super::output::{self, opt, ts};
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::types::{AuditQuery, AuditRecord, Channel};

/// The columns of the audit table.
const HEADERS: [&str; 10] = [
    "SEQ",
    "TIME",
    "PRINCIPAL",
    "UID",
    "PID",
    "ACTION",
    "TARGET",
    "VERSION",
    "OUTCOME",
    "CHANNEL",
];

/// How often `--follow` asks for new records.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Parses an RFC 3339 time, or an age (`45s`, `30m`, `12h`, `7d`, `2w`) counted back from now.
pub fn parse_time_or_age(field: &str, s: &str) -> Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    parse_duration(field, s).map(|d| crate::sys::now() - d)
}

/// Parses `45s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(field: &str, s: &str) -> Result<SignedDuration> {
    let bad = || {
        Error::invalid(
            field,
            format!("expected an RFC 3339 time or a duration such as 30m, 12h, 7d; found {s:?}"),
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .map(SignedDuration::from_secs)
        .ok_or_else(bad)
}

/// `audit ...`.
pub fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<()> {
    match args.command {
        Some(AuditCommand::Verify) => verify(ctx),
        None => list(ctx, &args.filter),
    }
}

fn query(f: &AuditFilterArgs) -> Result<AuditQuery> {
    Ok(AuditQuery {
        secret: f.secret.clone(),
        principal: f.principal.clone(),
        action: f.action.as_deref().map(str::parse).transpose()?,
        outcome: f.outcome.as_deref().map(str::parse).transpose()?,
        since: f
            .since
            .as_deref()
            .map(|s| parse_time_or_age("since", s))
            .transpose()?,
        until: f
            .until
            .as_deref()
            .map(|s| parse_time_or_age("until", s))
            .transpose()?,
        after_seq: None,
        limit: f.limit,
    })
}

fn print_records(ctx: &Ctx, records: &[AuditRecord], header: bool) -> Result<()> {
    if ctx.json() {
        for r in records {
            output::print_json_line(r)?;
        }
        return Ok(());
    }
    let mut t = output::table(if header { &HEADERS } else { &[] });
    for r in records {
        let target = match (&r.scope, &r.name) {
            (Some(s), Some(n)) => format!("{s}/{n}"),
            (None, Some(n)) => n.clone(),
            _ => "-".into(),
        };
        t.add_row(vec![
            r.seq.to_string(),
            ts(r.time),
            r.principal.clone(),
            r.uid.to_string(),
            r.pid.to_string(),
            r.action.to_string(),
            target,
            opt(r.version),
            r.outcome.to_string(),
            r.channel.to_string(),
        ]);
    }
    output::print_table(
        &t,
        if header {
            "no matching audit records"
        } else {
            ""
        },
    )
}

fn list(ctx: &Ctx, f: &AuditFilterArgs) -> Result<()> {
    let mut q = query(f)?;
    let backend = ctx.backend()?;
    if f.follow && backend.channel() == Channel::Direct {
        return Err(Error::invalid(
            "follow",
            "--follow needs the daemon: in direct mode this process holds the store file, so \
             no new records can arrive",
        ));
    }
    let records = backend.audit(&q)?;
    print_records(ctx, &records, true)?;
    if f.follow {
        q.limit = None;
        q.after_seq = records.last().map(|r| r.seq);
        follow(ctx, &backend, q)?;
    }
    Ok(())
}

fn follow(ctx: &Ctx, backend: &Backend, mut q: AuditQuery) -> Result<()> {
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let records = backend.audit(&q)?;
        if let Some(last) = records.last() {
            q.after_seq = Some(last.seq);
            print_records(ctx, &records, false)?;
        }
    }
}

fn verify(ctx: &Ctx) -> Result<()> {
    let report = ctx.backend()?.audit_verify()?;
    if ctx.json() {
        output::print_json(&report)?;
    }
    match report.first_broken_seq {
        None if report.ok => {
            if !ctx.json() {
                eprintln!("audit chain ok: {} records", report.records);
            }
            Ok(())
        }
        seq => {
            let seq = seq.unwrap_or(report.records + 1);
            if !ctx.json() {
                eprintln!(
                    "audit chain broken at seq {seq} ({} records before it verify)",
                    report.records
                );
            }
            Err(Error::integrity("audit", format!("seq {seq}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(
            parse_duration("t", "90s").expect("parses"),
            SignedDuration::from_secs(90)
        );
        assert_eq!(
            parse_duration("t", "2h").expect("parses"),
            SignedDuration::from_hours(2)
        );
        assert_eq!(
            parse_duration("t", "7d").expect("parses"),
            SignedDuration::from_hours(168)
        );
        for bad in ["", "h", "5", "5y", "-5m", "99999999999999999w"] {
            assert!(parse_duration("t", bad).is_err(), "{bad}");
        }
        let t = parse_time_or_age("t", "2026-01-02T03:04:05Z").expect("parses");
        assert_eq!(t.to_string(), "2026-01-02T03:04:05Z");
        assert!(parse_time_or_age("t", "1d").expect("parses") < crate::sys::now());
    }
}
