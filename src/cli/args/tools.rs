//! The commands that move values in and out of the store: `run`, `inject`, `check`,
//! `import`, `export`. Their `--help` long texts document the formats they read.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// The long `--help` of `run`.
pub const RUN_LONG_HELP: &str = "\
    Run a command with secrets in its environment, masking them in its output.\n\n\
    Each --secret NAME becomes a variable named after it: upper case, with every character \
    outside A-Z 0-9 turned into _ (github-pat -> GITHUB_PAT, db#password -> DB_PASSWORD); \
    NAME=ENV picks the variable. NAME may carry a scope (team:infra/db) and a #field.\n\n\
    An --env-file holds dotenv lines: KEY=tresor://[scope/]name[#field] reads a secret, \
    any other KEY=value line is passed through as it is (and not masked).\n\n\
    Values go to the child's environment only, never its arguments. Unless --no-mask, the \
    child's stdout and stderr are pipes: every injected value of 4 bytes or more is \
    replaced with *** as the output streams through (the child then sees no terminal; a \
    background process still holding the pipes once the command has exited is cut off). \
    SIGINT, SIGTERM and SIGHUP are forwarded to the child (a ^C on the terminal reaches it \
    directly, and is not sent twice). The exit code is the child's, \
    128+N when it died of signal N, 127 when the command is not found. TRESOR_PASSPHRASE \
    is removed from the child's environment.\n\n\
    With --watch, a new version of any injected secret (a rotation, a rollback, an upstream \
    refresh) restarts the command with the new values: it gets SIGTERM, SIGKILL after \
    --grace (10s), and starts again; changes within --debounce (1s) of each other restart \
    it once. Through the daemon the watch is a long poll (GET /v1/watch); on the file \
    (--direct, or no daemon) the file is looked at every --poll (2s), and opened only when \
    it changed. When the command exits by itself, run exits with its code.";

/// The long `--help` of `mcp`.
pub const MCP_LONG_HELP: &str = "\
    Serve the Model Context Protocol on stdin and stdout, for AI coding agents. Register \
    the command `tresor` with the argument `mcp` in the agent's MCP settings.\n\n\
    Tools: list_secrets (metadata, filtered by scope, type, integration and name text), \
    check_secrets (which required names are present or missing) and run_with_secrets (a \
    command, as an argument list, run with named secrets in its environment as `run \
    --secret` would inject them; returns its exit code and its stdout and stderr, every \
    injected value replaced with ***, each stream capped at 1 MiB by default, the command \
    killed after a timeout, 60 s by default, at most 600 s). No tool returns a value; a \
    value shorter than 4 bytes, which masking cannot hide, is not injected.\n\n\
    Each call goes to the daemon when one answers on the socket, as this process's user or \
    the agent whose token is in TRESOR_TOKEN, else to the file (as its owner, unlocked with \
    the usual sources for each call). The server runs as the tresor-mcp executable when one \
    is installed beside tresor, so the audit records of its reads name tresor-mcp as their \
    executable.";

/// The long `--help` of `inject`.
pub const INJECT_LONG_HELP: &str = "\
    Render a template: every {{ tresor://[scope/]name[#field] }} (spaces inside \
    the braces optional) becomes the secret's value. Other {{ ... }} text is left as it is, \
    so templates of other tools survive.\n\n\
    OUT is written to a temporary 0600 file in its directory and moved into place; an \
    existing OUT is kept unless --force. A reference to a missing secret exits 3 naming it; \
    a malformed one exits 2 naming its line.";

/// The long `--help` of `check`.
pub const CHECK_LONG_HELP: &str = "\
    Pre-flight: report which secrets are present and which are missing; exit 3 \
    listing the missing ones. Names resolve as a read would (user, then teams, then org) \
    unless they carry a scope: [scope/]NAME[#field], or a tresor:// reference.\n\n\
    A requirements file (-f) is TOML:\n\n\
    \x20   # names, as on the command line\n\
    \x20   required = [\"github-pat\", \"db#password\"]\n\n\
    \x20   # or one table per secret; scope and field are optional\n\
    \x20   [[secret]]\n\
    \x20   name = \"deploy-key\"\n\
    \x20   scope = \"team:infra\"\n\
    \x20   field = \"private\"\n\n\
    A file that does not parse exits 2 naming the line.";

/// The long `--help` of `import`.
pub const IMPORT_LONG_HELP: &str = "\
    Import secrets from a dotenv or JSON file (`-` reads stdin).\n\n\
    dotenv: KEY=VALUE lines, with an optional `export ` prefix, # comments, 'single' \
    (literal) and \"double\" (\\n \\t \\\" \\\\ escapes) quotes. Each KEY becomes a secret \
    named in lower case with _ turned into - (GITHUB_PAT -> github-pat), the name `run` \
    maps back to GITHUB_PAT; --keep-names keeps KEY as it is.\n\n\
    json: an object of name -> string value, or name -> {value | value_base64, type, \
    description, integration, meta, fields, fields_base64, max_age_days, max_versions, \
    scope}; or a document written by `tresor export`.\n\n\
    On the file, everything is written in one transaction (all or nothing), each secret \
    audited as `import`; through the daemon, one request per secret. Input that does not \
    parse exits 2 naming the line or the field, before anything is written.";

/// The long `--help` of `export`.
pub const EXPORT_LONG_HELP: &str = "\
    Export every secret you may read, with its value in plaintext, to a new \
    JSON file created with mode 0600 (never overwritten). Refused without --plaintext.\n\n\
    Each secret carries name, scope, type, version, value (value_base64 when not UTF-8), \
    fields (fields_base64), description, integration, meta, max_age_days and \
    max_versions; `import --format json` reads the file back. Every value read is audited; \
    on the file, an `export` record names the output too.";

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A secret to inject: [scope/]NAME[#field][=ENV] (repeatable)
    #[arg(long = "secret", value_name = "NAME[=ENV]")]
    pub secrets: Vec<String>,
    /// A dotenv file of KEY=tresor://[scope/]name[#field] and plain KEY=value lines
    /// (repeatable)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Leave the child's output alone (it keeps our terminal)
    #[arg(long)]
    pub no_mask: bool,
    /// Restart the command with the new values when a new version of an injected secret
    /// appears (a rotation, a rollback, an upstream refresh)
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how long the command has to exit after SIGTERM before it is killed
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        requires = "watch"
    )]
    pub grace: String,
    /// With --watch: wait this long after a change for more changes before restarting once
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        requires = "watch"
    )]
    pub debounce: String,
    /// With --watch on the file (no daemon): how often to look for changes
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        requires = "watch"
    )]
    pub poll: String,
    /// The command and its arguments, after --
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<std::ffi::OsString>,
}

/// `inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The template (`-` reads stdin)
    #[arg(short = 'i', long = "in", value_name = "TEMPLATE")]
    pub input: PathBuf,
    /// The file to write (mode 0600)
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub output: PathBuf,
    /// Replace OUT when it exists
    #[arg(long)]
    pub force: bool,
}

/// `check`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["names", "file"])))]
pub struct CheckArgs {
    /// Secrets to look for: [scope/]NAME[#field]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// A requirements.toml
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Import formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImportFormat {
    /// KEY=VALUE lines
    Dotenv,
    /// An object of name -> value (or -> {value, type, ...}), or an `export` document
    Json,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The input format
    #[arg(long, value_enum)]
    pub format: ImportFormat,
    /// The file (`-` reads stdin)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The scope of secrets that do not name one [default: org]
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// dotenv: name secrets exactly as the keys (GITHUB_PAT stays GITHUB_PAT)
    #[arg(long)]
    pub keep_names: bool,
}

/// Export formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// One JSON document (`import --format json` reads it back)
    Json,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The output format
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Acknowledge that OUT will hold every value in plaintext
    #[arg(long)]
    pub plaintext: bool,
    /// The new file
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
}
