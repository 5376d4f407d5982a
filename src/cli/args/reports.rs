//! `report` and `apply`: reading the store as a whole, and writing it from a manifest. Their
//! `--help` long texts document the formats they read.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The long `--help` of `report`.
pub const REPORT_LONG_HELP: &str = "\
    Reports over every secret you may see; no value is printed.\n\n\
    inventory: scope, name, type, integration, version, versions kept, updated, last used, \
    age of the current version in days and max_age_days.\n\n\
    rotation: secrets whose current version is older than its policy: max_age_days when \
    set, else 60 days for token and bearer, 90 for credentials and oauth, none for plain, \
    url and env_var. A certificate is due at its X.509 notAfter, which the store parses \
    from its PEM value without handing the value out (not a value read: nothing is \
    audited, last_used does not move, members may run it). --days N also lists what falls \
    due within N days. Exits 0 even when items are due.\n\n\
    unused: secrets never read; with --days N also those last read N or more days ago.\n\n\
    duplicates: secrets whose current values are equal, found by keyed fingerprint (a MAC \
    under a key of the store; no value is read, shown or derivable).\n\n\
    Reports, check and metadata reads never move last_used.\n\n\
    integrations: a TOML file of integrations and the secrets each needs, in either form:\n\n\
    \x20   github = [\"github-api-token\", \"github-webhook-secret\"]\n\n\
    \x20   [[integration]]\n\
    \x20   name = \"github\"\n\
    \x20   requires = [\"github-pat\", \"team:ci/gh-app#private_key\"]\n\n\
    Names are [scope/]NAME[#field] and resolve as `check` does. A secret counts for an \
    integration when it is untagged or tagged with that integration (one tagged jira does \
    not count for github); for an agent, names its grants do not cover are `not granted`. \
    Each integration also lists the secrets tagged with it (`available`). Exits 3 when \
    something is missing, 2 naming the line when the file does not parse.";

/// The long `--help` of `apply`.
pub const APPLY_LONG_HELP: &str = "\
    Make the store match a manifest (TOML): secrets' metadata, principals, grants and teams. \
    A plan is printed first (create, update, unchanged, delete; never a value), then applied \
    unless --dry-run. Applying the same manifest twice changes nothing the second time.\n\n\
    \x20   [[secret]]\n\
    \x20   name = \"github-pat\"          # required\n\
    \x20   scope = \"org\"                # org (default), team:<t>, user:<u>\n\
    \x20   type = \"token\"\n\
    \x20   description = \"CI token\"\n\
    \x20   integration = \"github\"\n\
    \x20   meta = { owner = \"ci\" }      # labels, merged into the current ones\n\
    \x20   max_age_days = 60\n\
    \x20   value = \"env:GITHUB_PAT\"     # or \"file:PATH\" (relative to the manifest), \"prompt\"\n\n\
    \x20   [[principal]]\n\
    \x20   name = \"deploy-bot\"\n\
    \x20   role = \"agent\"               # owner, member, agent\n\
    \x20   uid = 1001                   # and/or gid\n\
    \x20   grants = [{ pattern = \"github-*\", scope = \"org\", expires = \"2030-01-01T00:00:00Z\" }]\n\n\
    \x20   [[team]]\n\
    \x20   name = \"ci\"\n\
    \x20   members = [\"deploy-bot\"]\n\n\
    A value is written when the secret does not exist yet, and again when an `env:` or \
    `file:` source yields a value that differs from the stored one (compared by keyed \
    fingerprint, never by reading the stored value): the plan shows `~ value` and applying \
    writes a new version. --no-rotate keeps existing values as they are. A `prompt` value \
    is asked for only on creation, and needs a terminal. Keys a secret leaves out are left as \
    they are. A principal's grants and a team's members are made exactly those listed. \
    Tokens are not issued by apply (`principal add --token` does that once); a principal \
    whose role, uid or gid changes is re-added, which drops a token it had (the plan says \
    so).\n\n\
    --prune also deletes the secrets, principals and teams you may see that the manifest \
    does not list; never your own principal. A secret that grants or references still name \
    is refused (exit 7). A manifest that does not parse exits 2 naming the line or field.";

/// `report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Every secret you may see, with its versions and age
    Inventory,
    /// Secrets due for rotation (by max_age_days, per-type defaults, certificate expiry)
    Rotation(RotationArgs),
    /// Which secrets each integration in a file needs are present (exit 3 when missing)
    Integrations(IntegrationsArgs),
    /// Secrets never read, or (with --days N) not read in the last N days
    Unused(UnusedArgs),
    /// Secrets that share a value (by keyed fingerprint; no value is read or shown)
    Duplicates,
}

/// `report unused`.
#[derive(Debug, Args)]
pub struct UnusedArgs {
    /// Also list secrets last read N or more days ago (default: only never-read ones)
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
}

/// `report rotation`.
#[derive(Debug, Args)]
pub struct RotationArgs {
    /// Also list what falls due within this many days
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub days: u32,
}

/// `report integrations`.
#[derive(Debug, Args)]
pub struct IntegrationsArgs {
    /// The integrations file (TOML)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

/// `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The manifest (TOML)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan only; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Delete secrets, principals and teams the manifest does not list (never your own)
    #[arg(long)]
    pub prune: bool,
    /// Never write a new value for an existing secret, even when its source's value differs
    #[arg(long)]
    pub no_rotate: bool,
}
