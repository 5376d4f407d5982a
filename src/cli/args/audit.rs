//! `audit` and its subcommands.

use clap::{Args, Subcommand};

/// `audit`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    /// `audit verify`.
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// The filters.
    #[command(flatten)]
    pub filter: AuditFilterArgs,
}

/// `audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the MAC chain; exit 6 naming the first broken record
    Verify {
        /// Also fail when the log is shorter than, or forked from, this head witnessed
        /// earlier: SEQ:MAC as `audit head` prints it, or a file whose last line is one
        /// (tresord --audit-head-file)
        #[arg(long, value_name = "HEAD|FILE")]
        head: Option<String>,
    },
    /// Print the current head of the audit chain (SEQ:MAC) to keep outside the store
    Head,
    /// Remove records older than a time, leaving a sealed checkpoint: `audit verify` still
    /// passes and says what was pruned (export them first for a SIEM)
    #[command(group(clap::ArgGroup::new("cutoff").required(true).args(["before", "keep_days"])))]
    Prune {
        /// Remove records before this: RFC 3339 time, or an age such as 90d
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
        /// Keep the last N days of records
        #[arg(long, value_name = "N")]
        keep_days: Option<u32>,
    },
    /// Write records as JSON lines (the fields of `audit --json`) for a SIEM; audited as
    /// `export`
    Export {
        /// At or after: RFC 3339 time, or an age such as 30m, 12h, 7d
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before: RFC 3339 time, or an age
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// The format: jsonl (one object per line)
        #[arg(long, value_name = "FORMAT", default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
        /// The file to write (created 0600, never overwritten), or - for stdout
        out: std::path::PathBuf,
    },
}

/// Filters of `audit`.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Only records about this secret
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// Only records of this principal
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// Only this action (read, set, delete, unlock, ...)
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only this outcome: ok, denied, not_found, error
    #[arg(long, value_name = "OUTCOME")]
    pub outcome: Option<String>,
    /// At or after: RFC 3339 time, or an age such as 30m, 12h, 7d
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before: RFC 3339 time, or an age such as 30m, 12h, 7d
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only the newest N matching records
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Keep printing new records (daemon); past ones only with --since/--limit
    #[arg(long)]
    pub follow: bool,
}
