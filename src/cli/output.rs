//! Output: tables for people, JSON for scripts. Nothing here ever receives a value; `get` writes
//! values itself.

use std::io::Write;

use comfy_table::{Cell, ContentArrangement, Table, presets};
use jiff::{Timestamp, Unit};
use serde::Serialize;

use crate::error::{Error, Result};

/// A table with a header row (none when `headers` is empty), in the plain style of
/// `docker ps`.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !headers.is_empty() {
        t.set_header(headers.iter().map(Cell::new));
    }
    t
}

/// A two-column table of labels and values (for `show`, `status`).
pub fn pairs(rows: &[(&str, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic);
    for (k, v) in rows {
        t.add_row(vec![Cell::new(format!("{k}:")), Cell::new(v)]);
    }
    t
}

fn write_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        // A closed pipe (`tresor ls | head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::from),
    }
}

/// Prints a table, or a note when it has no rows.
pub fn print_table(t: &Table, empty_note: &str) -> Result<()> {
    if t.row_count() == 0 {
        eprintln!("{empty_note}");
        return Ok(());
    }
    let text = t.to_string();
    // The preset pads every cell with one space on each side; drop the outer ones.
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect();
    write_out(&lines.join("\n"))
}

/// Prints a line of text on stdout.
pub fn print_line(text: &str) -> Result<()> {
    write_out(text)
}

/// Prints pretty JSON (a document for scripts).
pub fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::internal("cannot encode JSON output", e))?;
    write_out(&text)
}

/// Prints one compact JSON object on one line (streams such as `audit --json`).
pub fn print_json_line<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let text =
        serde_json::to_string(v).map_err(|e| Error::internal("cannot encode JSON output", e))?;
    write_out(&text)
}

/// A time for tables: RFC 3339 UTC, whole seconds.
pub fn ts(t: Timestamp) -> String {
    t.round(Unit::Second).unwrap_or(t).to_string()
}

/// An optional time; `-` when absent.
pub fn opt_ts(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), ts)
}

/// An optional displayable; `-` when absent.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}
