//! `inbox`, `submit` and `bundle` (SPEC §7): air-gapped hosts.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `inbox`.
#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Print the store's age recipient (age1…), to which submissions and bundles are
    /// encrypted; works while the daemon is locked
    Key {
        /// Print the Ed25519 bundle-signing public key instead (for `bundle apply --from-key`)
        #[arg(long)]
        sign: bool,
    },
}

/// `submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The store's age recipient (`tresor inbox key` on the receiving host)
    #[arg(long, value_name = "RECIPIENT")]
    pub to: String,
    /// The secret's name
    pub name: String,
    /// Its scope: org, team:<team> or user:<user> [default: org]
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Its type (for a new secret)
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// Write the submission here when no daemon answers [default: the store's inbox directory]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `bundle`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write a sealed bundle (age-encrypted, signed by this store) of secrets to carry to an
    /// air-gapped host
    Create(BundleCreateArgs),
    /// Verify a bundle, show its plan (never values) and apply it in one transaction
    Apply(BundleApplyArgs),
}

/// `bundle create`.
#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// The receiving store's age recipient (`tresor inbox key` there); repeatable
    #[arg(long, value_name = "RECIPIENT", required = true, num_args = 1..)]
    pub to: Vec<String>,
    /// A secret to include (repeatable)
    #[arg(
        long = "secret",
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub secrets: Vec<String>,
    /// Include every secret
    #[arg(long)]
    pub all: bool,
    /// Limit --secret names to this scope
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Only secrets changed (and deletions made) since T (RFC 3339, or a duration ago: 7d)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Carry every kept version, not only the current one
    #[arg(long)]
    pub with_history: bool,
    /// The bundle file to write (must not exist)
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

/// `bundle apply`.
#[derive(Debug, Args)]
pub struct BundleApplyArgs {
    /// The bundle file
    pub file: PathBuf,
    /// Show the plan only
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse a bundle not signed by this key (`tresor inbox key --sign` on the source)
    #[arg(long, value_name = "PUBKEY")]
    pub from_key: Option<String>,
}
