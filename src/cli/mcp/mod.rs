//! `mcp`: a Model Context Protocol server on stdio (the official SDK, `rmcp`), for AI coding
//! agents. Three tools, none of which returns a value:
//!
//! ```text
//! list_secrets      metadata, filtered like GET /v1/secrets (scope, type, integration, q)
//! check_secrets     {required: [names]} -> {present, missing}
//! run_with_secrets  a command run with secrets in its environment (exec.rs); its exit code
//!                   and its stdout and stderr, every injected value masked as ***
//! ```
//!
//! What must stay true: a value leaves the store only into a child's environment. Tool
//! results carry metadata, names, error codes and masked output; errors name the secret and
//! the code, never a value; a value that masking could not hide (shorter than
//! [`MIN_LEN`](super::mask::MIN_LEN)) is refused before the child starts.
//!
//! Identity: every call goes through [`Access`], the one place that touches the store, as
//! `tresor run` would: to the daemon when one answers (as this process's uid, or the agent of
//! `TRESOR_TOKEN`), else to the file as its owner. The audit marker is the executable: the
//! server re-executes itself as `tresor-mcp` (installed beside `tresor`), and the daemon
//! records a peer's executable from the kernel, so each read's record carries
//! `exe: .../tresor-mcp` (on the file too: the direct owner's `exe` is this process's).

mod exec;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::JsonSchema;
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::Backend;
use super::mask::maskable;
use super::{Ctx, daemon_ctl, run, secrets};
use crate::error::{Error, Result};
use crate::ops::{Api, Local};
use crate::protocol::EnvItem;
use crate::protocol::EnvSpec;
use crate::store::UnlockSecret;
use crate::types::{Actor, CheckResult, ListFilter, SecretBytes, SecretMeta};

/// The executable name the server runs under, so that audit records show it.
pub const MCP_EXE: &str = "tresor-mcp";
/// `run_with_secrets`' timeout unless the call gives one, and the most it may give.
const DEFAULT_TIMEOUT_SECS: u64 = 60;
const MAX_TIMEOUT_SECS: u64 = 600;
/// Bytes kept of each output stream unless the call gives a smaller cap.
const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// `mcp`: serves until the client closes stdin.
pub(super) fn serve(ctx: &Ctx) -> Result<ExitCode> {
    reexec_as_mcp();
    let access = Arc::new(Access {
        ctx: Ctx {
            global: ctx.global().clone(),
        },
        unlock: Mutex::new(None),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal("cannot start the runtime", e))?;
    rt.block_on(async move {
        let server = Server::new(access)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::internal("the MCP session did not start", e))?;
        server
            .waiting()
            .await
            .map_err(|e| Error::internal("the MCP session failed", e))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Becomes `tresor-mcp` (same process, same stdio) when that executable is installed beside
/// this one; otherwise serves from here, with a warning that records will name `tresor`.
fn reexec_as_mcp() {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    if exe.file_name().is_some_and(|n| n == MCP_EXE) {
        return;
    }
    let sibling = exe.with_file_name(MCP_EXE);
    if !sibling.is_file() {
        eprintln!(
            "warning: {} is not installed; serving from {}, so audit records will not name \
             {MCP_EXE} as the executable",
            sibling.display(),
            exe.display()
        );
        return;
    }
    let err = std::process::Command::new(&sibling)
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "warning: cannot run {}: {err}; serving from {}",
        sibling.display(),
        exe.display()
    );
}

/// The narrow door to the store: each call opens a backend (the daemon when one answers,
/// else the file), asks one thing, and closes it, on a blocking thread (the socket client has
/// a runtime of its own). Only [`Backend::list`], [`Backend::check`] and [`Backend::env`] are
/// called, each once, below.
struct Access {
    ctx: Ctx,
    /// The file's unlock secret, read once (a passphrase fd can be read only once, and a
    /// prompt should not repeat for each call).
    unlock: Mutex<Option<UnlockSecret>>,
}

impl Access {
    fn open(&self) -> Result<Backend> {
        if !self.ctx.global().direct
            && let Some(client) = daemon_ctl::connect(&self.ctx)?
        {
            return Ok(Backend::Daemon(client));
        }
        let locked = self.ctx.open_locked()?;
        let mut cached = self.unlock.lock().unwrap_or_else(PoisonError::into_inner);
        let secret = match cached.take() {
            Some(s) => s,
            None => crate::unlock::unlock_secret(&self.ctx.global().unlock, locked.path())?,
        };
        let actor = Actor::direct_owner();
        let store = locked.unlock(&secret, &actor)?;
        *cached = Some(secret);
        Ok(Backend::Local(Local { store, actor }))
    }

    async fn with<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Backend) -> Result<T> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&this.open()?))
            .await
            .map_err(|e| Error::internal("the store call did not finish", e))?
    }

    async fn list(self: &Arc<Self>, filter: ListFilter) -> Result<Vec<SecretMeta>> {
        self.with(move |b| b.list(&filter)).await
    }

    async fn check(self: &Arc<Self>, names: Vec<String>) -> Result<CheckResult> {
        self.with(move |b| b.check(&names)).await
    }

    async fn env(self: &Arc<Self>, specs: Vec<EnvSpec>) -> Result<BTreeMap<String, SecretBytes>> {
        let items: Vec<EnvItem> = specs.into_iter().map(EnvItem::Full).collect();
        self.with(move |b| b.env(&items)).await
    }
}

/// `list_secrets`' arguments: the filters of `GET /v1/secrets`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Only this scope: org, team:NAME or user:NAME.
    scope: Option<String>,
    /// Only this type: plain, token, bearer, credentials, oauth, url, certificate or env_var.
    #[serde(rename = "type")]
    secret_type: Option<String>,
    /// Only secrets tagged with this integration.
    integration: Option<String>,
    /// Only names containing this text.
    q: Option<String>,
}

/// `check_secrets`' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
struct CheckArgs {
    /// Names to look for: [scope/]NAME[#field], resolved as a read would resolve them.
    required: Vec<String>,
}

/// `run_with_secrets`' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
struct RunArgs {
    /// The program and its arguments, one string each; no shell is involved (give
    /// `["sh", "-c", "..."]` for one).
    command: Vec<String>,
    /// Secrets to put in the command's environment: [scope/]NAME[#field][=ENV]. Without
    /// =ENV the variable is the name in upper case with other characters turned into _
    /// (github-pat -> GITHUB_PAT).
    #[serde(default)]
    secrets: Vec<String>,
    /// Seconds before the command is stopped (default 60, at most 600).
    timeout_secs: Option<u64>,
    /// Bytes kept of each of stdout and stderr (default and most 1048576); the rest is
    /// dropped and counted.
    max_output_bytes: Option<usize>,
    /// The working directory (default: the server's).
    cwd: Option<PathBuf>,
}

/// The tool result of a failure: the error's stable code and its message (which names the
/// secret or the argument, never a value).
fn failure(e: &Error) -> CallToolResult {
    CallToolResult::structured_error(json!({
        "error": { "code": e.code().as_str(), "message": e.to_string() }
    }))
}

fn reply(r: Result<Value>) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => failure(&e),
    }
}

fn to_value(v: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::internal("cannot encode the result", e))
}

/// The MCP server: the tool router over [`Access`].
#[derive(Clone)]
struct Server {
    access: Arc<Access>,
    tool_router: ToolRouter<Self>,
}

#[tool_router(router = tool_router)]
impl Server {
    fn new(access: Arc<Access>) -> Self {
        Self {
            access,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "List the secrets you may see: metadata only (name, scope, type, \
                       description, integration, versions, dates), never a value. Optional \
                       filters: scope, type, integration, q (name contains)."
    )]
    async fn list_secrets(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let listed = async {
            let filter = ListFilter {
                scope: secrets::parse_scope(a.scope.as_deref())?,
                secret_type: a.secret_type.as_deref().map(str::parse).transpose()?,
                integration: a.integration,
                query: a.q,
            };
            let list = self.access.list(filter).await?;
            Ok(json!({ "secrets": to_value(&list)? }))
        };
        Ok(reply(listed.await))
    }

    #[tool(
        description = "Check that required secrets exist and are visible to you, without \
                       reading them: {required: [names]} -> {present, missing, ok}."
    )]
    async fn check_secrets(
        &self,
        Parameters(a): Parameters<CheckArgs>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        let checked = async {
            let r = self.access.check(a.required).await?;
            Ok(json!({ "ok": r.missing.is_empty(), "present": r.present, "missing": r.missing }))
        };
        Ok(reply(checked.await))
    }

    #[tool(
        description = "Run a command (an argument list, no shell) with named secrets in its \
                       environment, like `tresor run --secret NAME[=ENV]`. Returns the exit \
                       code (or the signal, or timed_out), stdout and stderr with every \
                       injected value replaced by ***. The values never reach you."
    )]
    async fn run_with_secrets(
        &self,
        Parameters(a): Parameters<RunArgs>,
    ) -> std::result::Result<CallToolResult, ErrorData> {
        Ok(reply(self.run_command(a).await))
    }
}

impl Server {
    async fn run_command(&self, a: RunArgs) -> Result<Value> {
        if a.command.is_empty() {
            return Err(Error::invalid(
                "command",
                "give the program and its arguments",
            ));
        }
        let timeout = a.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout == 0 || timeout > MAX_TIMEOUT_SECS {
            return Err(Error::invalid(
                "timeout_secs",
                format!("expected 1 to {MAX_TIMEOUT_SECS}, found {timeout}"),
            ));
        }
        let cap = a
            .max_output_bytes
            .unwrap_or(DEFAULT_OUTPUT_CAP)
            .min(DEFAULT_OUTPUT_CAP);
        let specs = run::secret_specs(&a.secrets)?;
        let env = if specs.is_empty() {
            BTreeMap::new()
        } else {
            self.access.env(specs).await?
        };
        run::check_env_values(&env)?;
        if let Some(var) = env.iter().find(|(_, v)| !maskable(v)).map(|(k, _)| k) {
            return Err(Error::invalid(
                "secrets",
                format!(
                    "the value for {var} is too short to be masked in the output, so it is not \
                     injected here; use `tresor run` in a terminal instead"
                ),
            ));
        }
        let limits = exec::Limits {
            timeout: Duration::from_secs(timeout),
            cap,
        };
        let ran = exec::run(&a.command, a.cwd.as_deref(), &env, limits).await?;
        drop(env);
        Ok(json!({
            "exit_code": ran.code(),
            "signal": ran.signal(),
            "timed_out": ran.timed_out,
            "stdout": text(&ran.stdout),
            "stderr": text(&ran.stderr),
            "stdout_truncated_bytes": ran.stdout.dropped,
            "stderr_truncated_bytes": ran.stderr.dropped,
        }))
    }
}

/// A captured stream as text (invalid UTF-8 replaced), with a note when it was cut.
fn text(c: &exec::Captured) -> String {
    let s = String::from_utf8_lossy(&c.bytes);
    if c.dropped == 0 {
        return s.into_owned();
    }
    format!("{s}\n[output truncated: {} more bytes]", c.dropped)
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tresor", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tresor keeps secrets for this host. list_secrets and check_secrets show \
                 metadata; run_with_secrets runs a command with secrets in its environment \
                 and returns its output with the values masked. No tool returns a value.",
            )
    }
}
