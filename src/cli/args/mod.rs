//! The command line, as clap derive definitions. Only shapes live here; the commands are in
//! the sibling modules. Values never appear as arguments: `set` has no flag that takes one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod airgap;
mod audit;
mod reports;
mod tools;
pub mod upstream;

pub use audit::{AuditArgs, AuditCommand, AuditFilterArgs};
pub use reports::{ApplyArgs, IntegrationsArgs, ReportCommand, RotationArgs, UnusedArgs};
pub use tools::{
    CheckArgs, ExportArgs, ExportFormat, ImportArgs, ImportFormat, InjectArgs, RunArgs,
};

/// tresor: an offline secret store.
#[derive(Debug, Parser)]
#[command(
    name = "tresor",
    version,
    about = "An offline secret store: one encrypted file, a local daemon, this CLI",
    long_about = "An offline secret store: one encrypted file, a local daemon, this CLI.\n\n\
        Talks to tresord when one answers on the socket; otherwise, or with --direct, opens \
        the store file itself (as its owner) and asks for its passphrase.",
    after_help = "Environment: TRESOR_STORE, TRESOR_SOCKET, TRESOR_PASSPHRASE (for CI; warned \
        about), TRESOR_TOKEN (an agent's bearer token for the daemon).\n\n\
        Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 permission denied, \
        5 locked or wrong passphrase, 6 integrity, 7 conflict."
)]
pub struct Cli {
    /// Options accepted before the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before the subcommand.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// The store file [default: $XDG_DATA_HOME/tresor/store.tresor]
    #[arg(
        long,
        value_name = "PATH",
        env = "TRESOR_STORE",
        hide_env_values = true
    )]
    pub store: Option<PathBuf>,
    /// The daemon's socket [default: $XDG_RUNTIME_DIR/tresor/tresord.sock]
    #[arg(
        long,
        value_name = "PATH",
        env = "TRESOR_SOCKET",
        hide_env_values = true
    )]
    pub socket: Option<PathBuf>,
    /// Open the store file directly (as owner) instead of asking the daemon
    #[arg(long)]
    pub direct: bool,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true, display_order = 900)]
    pub json: bool,
    /// The unlock sources (then `TRESOR_PASSPHRASE`, then a prompt).
    #[command(flatten)]
    pub unlock: crate::unlock::UnlockArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new store (never overwrites one)
    Init(InitArgs),
    /// Create a secret or write a new version; the value comes from stdin, a prompt, a file or
    /// an environment variable, never from the command line
    Set(SetArgs),
    /// Print a secret's value (exact bytes; a newline only on a terminal)
    Get(GetArgs),
    /// List secrets (metadata only)
    Ls(LsArgs),
    /// Show a secret's metadata and versions (never its value)
    Show(NameArgs),
    /// Delete a secret and all its versions (refused while referenced, unless --force)
    #[command(
        long_about = "Delete a secret and all its versions. Refused (exit 7) while anything \
                      refers to it: grants (exact or a glob that matches), apply manifests, \
                      env files and templates that resolved it, remote bindings; the refusal \
                      lists them and who read the value in the last 30 days. --force deletes \
                      anyway and lists what it broke."
    )]
    Rm(RmArgs),
    /// What refers to a secret, and who read it in the last 30 days
    #[command(
        long_about = "List what refers to a secret: grants naming it or a glob matching it, \
                      apply manifests, run --env-file files and inject templates that \
                      resolved it (path, principal, uid, last time), remote bindings; and the \
                      principals that read its value in the last 30 days (from the audit \
                      log). Owners and members."
    )]
    Refs(NameArgs),
    /// List the kept versions of a secret
    #[command(
        long_about = "List the kept versions of a secret, newest first (the table and --json \
                      alike)"
    )]
    History(NameArgs),
    /// Re-publish an old version as a new one
    Rollback(RollbackArgs),
    /// Run a command with secrets in its environment, masking them in its output
    #[command(long_about = tools::RUN_LONG_HELP)]
    Run(RunArgs),
    /// Render tresor:// references in a template into a new 0600 file
    #[command(long_about = tools::INJECT_LONG_HELP)]
    Inject(InjectArgs),
    /// Pre-flight: are these secrets present? (exit 3 listing what is missing)
    #[command(long_about = tools::CHECK_LONG_HELP)]
    Check(CheckArgs),
    /// Import secrets from a dotenv or JSON file
    #[command(long_about = tools::IMPORT_LONG_HELP)]
    Import(ImportArgs),
    /// Export every secret you may read, values in plaintext, to a new 0600 JSON file
    #[command(long_about = tools::EXPORT_LONG_HELP)]
    Export(ExportArgs),
    /// Reports: inventory, rotation due, integrations' requirements (no values)
    #[command(subcommand, long_about = reports::REPORT_LONG_HELP)]
    Report(ReportCommand),
    /// Serve the Model Context Protocol on stdio for AI agents (tools never return a value)
    #[command(long_about = tools::MCP_LONG_HELP)]
    Mcp,
    /// Make the store match a manifest of secrets, principals and teams (plan first)
    #[command(long_about = reports::APPLY_LONG_HELP)]
    Apply(ApplyArgs),
    /// Change the passphrase
    Passwd(PasswdArgs),
    /// Manage keyslots (passphrases, key files, recovery keys)
    #[command(subcommand)]
    Keyslot(KeyslotCommand),
    /// Make a new data key and re-seal everything (removes the other keyslots)
    Rekey,
    /// Write a consistent copy of the store to a new file (through the daemon when one runs)
    Backup(BackupArgs),
    /// Check a backup (it opens, unlocks, its audit chain verifies) and make it the store
    Restore(RestoreArgs),
    /// Show the audit log, or verify its chain
    Audit(AuditArgs),
    /// Manage principals (owners, members, agents) and their grants
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// Manage teams
    #[command(subcommand)]
    Team(TeamCommand),
    /// Upstream providers (OpenBao, Vault) that remote secrets come from
    #[command(subcommand)]
    Provider(upstream::ProviderCommand),
    /// Mirror a provider's KV v2 tree into local secrets, or show remote secrets' state
    #[command(subcommand)]
    Sync(upstream::SyncCommand),
    /// The write-only inbox: print the store's public keys
    #[command(subcommand)]
    Inbox(airgap::InboxCommand),
    /// Drop a value (from stdin) into a store's write-only inbox, encrypted to its recipient
    Submit(airgap::SubmitArgs),
    /// Sealed bundles for air-gapped hosts: create, apply
    #[command(subcommand)]
    Bundle(airgap::BundleCommand),
    /// Run the daemon (tresord) in the foreground
    #[cfg(feature = "daemon")]
    Daemon(crate::daemon::DaemonArgs),
    /// Show whether the daemon runs and the store is unlocked
    Status,
    /// Lock the daemon's store (it forgets its keys until `unlock`)
    Lock,
    /// Unlock the daemon's store
    Unlock,
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Write man pages (tresor.1 and one per subcommand) into a directory
    Man(ManArgs),
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Instant key derivation, for tests only (recorded in the file, warned about on every open)
    #[arg(long, conflicts_with_all = ["kdf_memory", "kdf_iterations"])]
    pub insecure_kdf: bool,
    /// Argon2id memory in MiB (at least 64) instead of calibrating to about one second
    #[arg(long, value_name = "MIB", requires = "kdf_iterations")]
    pub kdf_memory: Option<u32>,
    /// Argon2id passes (at least 3)
    #[arg(long, value_name = "N", requires = "kdf_memory")]
    pub kdf_iterations: Option<u32>,
}

/// A secret's name and optional scope.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The secret: [SCOPE/]NAME, as `check` and `run` take it (`user:alice/token`)
    pub name: String,
    /// Its scope: org, team:<team> or user:<user> [default: user, then teams, then org]
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

/// `set`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // independent switches, as the CLI exposes them
pub struct SetArgs {
    /// The secret's name
    pub name: String,
    /// Its type: plain, token, bearer, credentials, oauth, url, certificate, env_var
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// Its scope: org, team:<team> or user:<user>
    #[arg(long, value_name = "SCOPE", default_value = "org")]
    pub scope: String,
    /// Free text
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// An integration tag (github, aws, ...)
    #[arg(long, value_name = "TAG")]
    pub integration: Option<String>,
    /// A label, merged into the current ones; KEY= (empty) removes it (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Remove a label (repeatable; same as --meta KEY=)
    #[arg(long = "unset-meta", value_name = "KEY")]
    pub unset_meta: Vec<String>,
    /// Rotation policy in days
    #[arg(long, value_name = "DAYS")]
    pub max_age_days: Option<u32>,
    /// How many versions to keep [default: 10]
    #[arg(long, value_name = "N")]
    pub max_versions: Option<u32>,
    /// Extra fields from a JSON object of strings (`-` reads stdin)
    #[arg(long, value_name = "FILE|-")]
    pub fields_from: Option<PathBuf>,
    /// Read the value from this file (exact bytes)
    #[arg(long, value_name = "FILE", group = "value_source")]
    pub from_file: Option<PathBuf>,
    /// Read the value from this environment variable
    #[arg(long, value_name = "VAR", group = "value_source")]
    pub from_env: Option<String>,
    /// Change metadata only; keep the current value and fields
    #[arg(long, group = "value_source", conflicts_with = "fields_from")]
    pub keep_value: bool,
    /// The value (and field values) are base64; decode them before storing
    #[arg(long)]
    pub base64: bool,
    /// Accept an empty value
    #[arg(long)]
    pub allow_empty: bool,
    /// A remote secret from PROVIDER:MOUNT/PATH[#KEY] (no local value)
    #[arg(
        long,
        value_name = "REMOTE",
        group = "value_source",
        conflicts_with = "fields_from"
    )]
    pub remote: Option<String>,
    /// With --remote: serve the cache at most this long after a good fetch
    #[arg(long, value_name = "DURATION", requires = "remote")]
    pub max_staleness: Option<String>,
    /// With --remote: the daemon refreshes it this often
    #[arg(long, value_name = "DURATION", requires = "remote")]
    pub refresh: Option<String>,
    /// Words after the name (`tresor set foo bar`): refused by `set` with a hint where values
    /// come from. The text is dropped at parsing, so it is never kept, shown or logged.
    #[arg(hide = true, num_args = 0.., value_parser = discard_argv_value)]
    pub value_on_argv: Vec<DiscardedArg>,
}

/// A command-line word dropped unread (a value typed where none belongs).
#[derive(Clone, Copy, Debug)]
pub struct DiscardedArg;

#[allow(clippy::unnecessary_wraps)] // the signature clap's value parsers have
fn discard_argv_value(_: &str) -> std::result::Result<DiscardedArg, String> {
    Ok(DiscardedArg)
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// [SCOPE/]NAME, or [SCOPE/]NAME#field for one field (`user:alice/token#user`)
    pub name: String,
    /// Its scope: org, team:<team> or user:<user>
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// A kept version instead of the current one
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Print the value base64-encoded (for binary values)
    #[arg(long)]
    pub base64: bool,
}

/// `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only this scope
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Only this type
    #[arg(long = "type", value_name = "TYPE")]
    pub secret_type: Option<String>,
    /// Only this integration
    #[arg(long, value_name = "TAG")]
    pub integration: Option<String>,
    /// Only names containing this
    #[arg(long, value_name = "TEXT")]
    pub query: Option<String>,
}

/// `rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The secret.
    #[command(flatten)]
    pub secret: NameArgs,
    /// Delete even when referenced (then lists what it broke)
    #[arg(long)]
    pub force: bool,
}

/// `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The secret.
    #[command(flatten)]
    pub secret: NameArgs,
    /// The kept version to re-publish
    #[arg(long, value_name = "N")]
    pub to: u64,
}

/// `passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the new passphrase from this file instead of prompting
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
}

/// `keyslot ...`.
#[derive(Debug, Subcommand)]
pub enum KeyslotCommand {
    /// Add a keyslot
    Add(KeyslotAddArgs),
    /// List the keyslots
    Ls,
    /// Remove a keyslot
    Rm {
        /// The slot id (see `keyslot ls`)
        id: u32,
    },
}

/// `keyslot add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["keyfile", "recovery", "passphrase", "systemd_creds"])))]
pub struct KeyslotAddArgs {
    /// A key file; created with 32 random bytes (mode 0600) when absent
    #[arg(long, value_name = "PATH")]
    pub keyfile: Option<PathBuf>,
    /// A recovery key, printed once
    #[arg(long)]
    pub recovery: bool,
    /// Another passphrase
    #[arg(long)]
    pub passphrase: bool,
    /// With --passphrase: read it from this file instead of prompting
    #[arg(long, value_name = "FILE", requires = "passphrase")]
    pub new_passphrase_file: Option<PathBuf>,
    /// A systemd credential NAME: 32 random bytes sealed with `systemd-creds encrypt` (TPM2 when
    /// present, else the host key), for `tresord --unlock-credential NAME`
    #[arg(long, value_name = "NAME")]
    pub systemd_creds: Option<String>,
    /// With --systemd-creds: where the sealed credential goes [default:
    /// /etc/credstore.encrypted/NAME]
    #[arg(long, value_name = "PATH", requires = "systemd_creds")]
    pub credential_out: Option<PathBuf>,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file (never overwritten)
    pub out: PathBuf,
}

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (made by `tresor backup`)
    pub backup: PathBuf,
    /// Where to restore it (default: the store, `--store` / `TRESOR_STORE`)
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Replace an existing store (never one a running daemon holds: stop it first)
    #[arg(long)]
    pub force: bool,
}

/// `principal ...`.
#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Add (or replace) a principal
    Add(PrincipalAddArgs),
    /// List principals and teams
    Ls,
    /// Remove a principal
    Rm {
        /// Its name
        name: String,
    },
    /// Let a principal read secrets matching a name or glob
    Grant(GrantArgs),
    /// Remove a principal's grants with this pattern
    Revoke {
        /// The principal
        name: String,
        /// The pattern, as granted
        pattern: String,
    },
}

/// `principal add`.
#[derive(Debug, Args)]
pub struct PrincipalAddArgs {
    /// Its name (A-Z a-z 0-9 . _ -)
    pub name: String,
    /// Its role
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The Unix user it is matched by (uid or user name)
    #[arg(long, value_name = "U")]
    pub uid: Option<String>,
    /// The Unix group it is matched by (gid or group name)
    #[arg(long, value_name = "G")]
    pub gid: Option<String>,
    /// Issue a bearer token (printed once)
    #[arg(long)]
    pub token: bool,
}

/// Roles, as the CLI spells them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    /// Everything
    Owner,
    /// Metadata, check and reports; its personal secrets (user:<self>): values and writes
    Member,
    /// Values of the secrets its grants cover
    Agent,
}

/// `principal grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The principal
    pub name: String,
    /// An exact secret name or a glob (github-*)
    pub pattern: String,
    /// Only in this scope
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Expiry: RFC 3339 time, or a duration from now such as 12h, 30d
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
}

/// `team ...`.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team
    Add {
        /// Its name
        team: String,
    },
    /// Remove a team
    Rm {
        /// Its name
        team: String,
    },
    /// List teams and their members
    Ls,
    /// Add a principal to a team
    Join {
        /// The team
        team: String,
        /// The principal
        name: String,
    },
    /// Remove a principal from a team
    Leave {
        /// The team
        team: String,
        /// The principal
        name: String,
    },
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory (created if missing), e.g. /usr/local/share/man/man1
    pub outdir: PathBuf,
}
