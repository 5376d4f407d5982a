//! `audit [filters] [--follow]`, `audit verify [--head HEAD|FILE]` and `audit head`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::Ctx;
use super::args::{AuditArgs, AuditCommand, AuditFilterArgs};
use super::backend::Backend;
use super::output::{self, opt, ts};
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::ops::audit::{AuditExport, AuditPrune};
use crate::types::{AuditQuery, AuditRecord, Channel, HeadSpec};

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

/// Which way a duration given for a time counts from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromNow {
    /// An age: `--since 7d` is seven days ago.
    Back,
    /// A deadline: `--expires 30d` is thirty days from now.
    Forward,
}

/// Parses an RFC 3339 time, or a duration (`45s`, `30m`, `12h`, `7d`, `2w`, `1h30m`)
/// counted from now in the direction `way`.
///
/// # Errors
/// `InvalidArgument` with `field` naming both forms.
pub fn parse_time(field: &str, s: &str, way: FromNow) -> Result<Timestamp> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d = parse_age(field, s)?;
    let now = crate::sys::now();
    match way {
        FromNow::Back => now.checked_sub(d),
        FromNow::Forward => now.checked_add(d),
    }
    .map_err(|_| bad_time(field, s))
}

fn bad_time(field: &str, s: &str) -> Error {
    Error::invalid(
        field,
        format!("expected an RFC 3339 time or a duration such as 30m, 12h, 7d; found {s:?}"),
    )
}

/// A duration in the one grammar ([`crate::types::parse_duration`]), but with a unit: where
/// an RFC 3339 time may stand, a bare number would read as a Unix time or a year.
fn parse_age(field: &str, s: &str) -> Result<SignedDuration> {
    if s.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_time(field, s));
    }
    crate::types::parse_duration(s)
        .ok()
        .and_then(|d| SignedDuration::try_from(d).ok())
        .ok_or_else(|| bad_time(field, s))
}

/// `audit ...`.
pub fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<()> {
    match &args.command {
        Some(AuditCommand::Verify { head }) => verify(ctx, head.as_deref()),
        Some(AuditCommand::Head) => head(ctx),
        Some(AuditCommand::Prune { before, keep_days }) => {
            prune(ctx, before.as_deref(), *keep_days)
        }
        Some(AuditCommand::Export {
            since, until, out, ..
        }) => export(ctx, since.as_deref(), until.as_deref(), out),
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
            .map(|s| parse_time("since", s, FromNow::Back))
            .transpose()?,
        until: f
            .until
            .as_deref()
            .map(|s| parse_time("until", s, FromNow::Back))
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
    if f.follow && f.since.is_none() && f.limit.is_none() {
        // Following starts at the end, as `tail -f` would; `--since` or `--limit` ask for
        // past records first. Only the newest matching record is read, for its seq.
        let newest = backend.audit(&AuditQuery {
            limit: Some(1),
            ..q.clone()
        })?;
        q.after_seq = Some(newest.last().map_or(0, |r| r.seq));
        return follow(ctx, &backend, q);
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

/// `audit head`: `SEQ:MAC` (or `{seq, mac}` with `--json`).
fn head(ctx: &Ctx) -> Result<()> {
    let head = ctx.backend()?.audit_head()?;
    if ctx.json() {
        return output::print_json(&head);
    }
    println!("{head}");
    Ok(())
}

/// The head `--head` names: a head itself, or the last head line of a file.
fn witnessed_head(arg: &str) -> Result<String> {
    if arg.parse::<HeadSpec>().is_ok() {
        return Ok(arg.to_owned());
    }
    let path = std::path::Path::new(arg);
    if !path.exists() {
        return Err(Error::invalid(
            "head",
            format!("{arg:?} is neither SEQ:MAC (as `tresor audit head` prints) nor a file"),
        ));
    }
    let text = std::fs::read_to_string(path)?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| Error::invalid("head", format!("{arg} holds no head")))?;
    // A line of the daemon's head file: `SEQ:MAC TIME`.
    let head = last.split_whitespace().next().unwrap_or_default();
    head.parse::<HeadSpec>().map_err(|_| {
        Error::invalid(
            "head",
            format!("the last line of {arg} is not SEQ:MAC (as `tresor audit head` prints)"),
        )
    })?;
    Ok(head.to_owned())
}

fn verify(ctx: &Ctx, head: Option<&str>) -> Result<()> {
    let head = head.map(witnessed_head).transpose()?;
    let backend = ctx.backend()?;
    let report = match &head {
        Some(h) => backend.audit_verify_head(h)?,
        None => backend.audit_verify()?,
    };
    if ctx.json() {
        output::print_json(&report)?;
    }
    if let Some(why) = &report.head_mismatch {
        if !ctx.json() {
            eprintln!("audit chain does not match the witnessed head: {why}");
        }
        return Err(Error::integrity("audit", "witnessed head"));
    }
    match report.first_broken_seq {
        None if report.ok => {
            if !ctx.json() {
                let pruned = match (report.pruned_records, report.pruned_before_seq) {
                    (Some(n), Some(s)) => format!(" (pruned {n} records before seq {s})"),
                    _ => String::new(),
                };
                eprintln!("audit chain ok: {} records{pruned}", report.records);
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

/// `audit prune --before T | --keep-days N`.
fn prune(ctx: &Ctx, before: Option<&str>, keep_days: Option<u32>) -> Result<()> {
    let req = AuditPrune {
        before: before
            .map(|s| parse_time("before", s, FromNow::Back))
            .transpose()?,
        keep_days,
    };
    let report = ctx.backend()?.audit_prune(req)?;
    if ctx.json() {
        return output::print_json(&report);
    }
    match report.first_seq {
        Some(first) => eprintln!(
            "pruned {} records (seq {first}-{}); the log starts at seq {} \
             ({} pruned in all)",
            report.pruned,
            report.before_seq - 1,
            report.before_seq,
            report.total_pruned
        ),
        None => eprintln!("nothing to prune: no record is that old"),
    }
    Ok(())
}

/// `audit export [--since T] [--until T] --format jsonl OUT`, page by page.
fn export(
    ctx: &Ctx,
    since: Option<&str>,
    until: Option<&str>,
    out: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    let since = since
        .map(|s| parse_time("since", s, FromNow::Back))
        .transpose()?;
    let until = until
        .map(|s| parse_time("until", s, FromNow::Back))
        .transpose()?;
    let backend = ctx.backend()?;
    let to_stdout = out.as_os_str() == "-";
    if !to_stdout {
        super::files::check_target(out, super::files::Existing::Keep(""))?;
    }
    // Written whole through a 0600 temporary file (as `export` does), so a SIEM never
    // picks up half an export.
    let mut w = Vec::new();
    let (mut n, mut first, mut after) = (0u64, None, None);
    loop {
        let page = backend.audit_export(AuditExport {
            since,
            until,
            after_seq: after,
            page: None,
        })?;
        for r in &page {
            serde_json::to_writer(&mut w, r)
                .map_err(|e| Error::internal("cannot encode a record", e))?;
            w.write_all(b"\n")?;
        }
        n += page.len() as u64;
        first = first.or(page.first().map(|r| r.seq));
        match page.last() {
            Some(last) if page.len() == crate::ops::audit::EXPORT_PAGE_MAX => {
                after = Some(last.seq);
            }
            Some(last) => {
                after = Some(last.seq);
                break;
            }
            None => break,
        }
    }
    if to_stdout {
        let mut o = std::io::stdout().lock();
        o.write_all(&w).and_then(|()| o.flush())?;
    } else {
        super::files::write_private(out, &w, super::files::Existing::Keep(""))?;
        if let (Some(a), Some(b)) = (first, after) {
            eprintln!("exported {n} records (seq {a}-{b}) to {}", out.display());
        } else {
            eprintln!("no records matched; wrote an empty {}", out.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(
            parse_age("t", "90s").expect("parses"),
            SignedDuration::from_secs(90)
        );
        assert_eq!(
            parse_age("t", "2h").expect("parses"),
            SignedDuration::from_hours(2)
        );
        assert_eq!(
            parse_age("t", "7d").expect("parses"),
            SignedDuration::from_hours(168)
        );
        for bad in ["", "h", "5", "5y", "-5m", "99999999999999999w"] {
            assert!(parse_age("t", bad).is_err(), "{bad}");
        }
        let t = parse_time("t", "2026-01-02T03:04:05Z", FromNow::Back).expect("parses");
        assert_eq!(t.to_string(), "2026-01-02T03:04:05Z");
        assert!(parse_time("t", "1d", FromNow::Back).expect("parses") < crate::sys::now());
        assert!(parse_time("t", "1h30m", FromNow::Forward).expect("parses") > crate::sys::now());
        // Beyond jiff's range: an error, not a panic.
        assert!(parse_time("t", "1000000w", FromNow::Forward).is_err());
    }
}
