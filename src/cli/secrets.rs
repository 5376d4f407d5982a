//! Secret commands: `set`, `get`, `ls`, `show`, `rm`, `history`, `rollback`.

use crate::ops::Api;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use base64::Engine;

use super::Ctx;
use super::args::{GetArgs, LsArgs, NameArgs, RollbackArgs, SetArgs};
use super::output::{self, opt, opt_ts, ts};
use crate::error::{Error, Result};
use crate::types::{
    ListFilter, Scope, SecretBytes, SecretMeta, SecretType, SecretValue, SetRequest, ValueRef,
    VersionInfo, b64, decode_b64,
};
use crate::unlock::{prompt_hidden, read_secret_file};

/// Parses an optional `--scope`.
pub fn parse_scope(s: Option<&str>) -> Result<Option<Scope>> {
    s.map(str::parse).transpose()
}

fn read_stdin() -> Result<SecretBytes> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Error::invalid("value", format!("cannot read stdin: {e}")))?;
    Ok(SecretBytes::new(buf))
}

/// The new value: `--from-file`, `--from-env`, piped stdin, or a no-echo prompt. `None` with
/// `--keep-value`. With `--fields-from -` stdin is taken, so the value is empty unless given
/// by file or variable; likewise on a terminal when fields are given.
fn read_value(args: &SetArgs) -> Result<Option<SecretBytes>> {
    let raw = if args.keep_value {
        return Ok(None);
    } else if let Some(path) = &args.from_file {
        read_secret_file(path, "from-file")?
    } else if let Some(var) = &args.from_env {
        let v = std::env::var_os(var).ok_or_else(|| {
            Error::invalid(
                "from-env",
                format!("the environment variable {var} is not set"),
            )
        })?;
        SecretBytes::new(v.into_encoded_bytes())
    } else if args.fields_from.as_deref() == Some(std::path::Path::new("-")) {
        SecretBytes::default()
    } else if !std::io::stdin().is_terminal() {
        read_stdin()?
    } else if args.fields_from.is_some() {
        SecretBytes::default()
    } else {
        prompt_hidden(&format!("value for {}: ", args.name))?
    };
    if args.base64 && !raw.is_empty() {
        let text = std::str::from_utf8(raw.expose())
            .map_err(|_| Error::invalid("value", "--base64 expects base64 text"))?;
        return Ok(Some(SecretBytes::new(decode_b64("value", text)?)));
    }
    Ok(Some(raw))
}

/// `--fields-from FILE|-`: a JSON object whose values are strings (base64 with `--base64`).
fn read_fields(args: &SetArgs) -> Result<BTreeMap<String, SecretBytes>> {
    let Some(path) = &args.fields_from else {
        return Ok(BTreeMap::new());
    };
    let raw = if path.as_os_str() == "-" {
        read_stdin()?
    } else {
        read_secret_file(path, "fields-from")?
    };
    // Parse into a map of strings; serde_json's error says where, never what.
    let map: BTreeMap<String, String> = serde_json::from_slice(raw.expose()).map_err(|e| {
        Error::invalid(
            "fields-from",
            format!(
                "expected a JSON object of strings (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    map.into_iter()
        .map(|(k, v)| {
            let bytes = if args.base64 {
                decode_b64(&format!("field {k}"), &v)?
            } else {
                v.into_bytes()
            };
            Ok((k, SecretBytes::new(bytes)))
        })
        .collect()
}

/// `--meta KEY=VALUE` and `--unset-meta KEY`: a removal travels as an empty value.
fn parse_meta(items: &[String], unset: &[String]) -> Result<BTreeMap<String, String>> {
    let mut meta = items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Error::invalid("meta", format!("expected KEY=VALUE, found {kv:?}")))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    for k in unset {
        if k.is_empty() || k.contains('=') {
            return Err(Error::invalid(
                "unset-meta",
                format!("expected a label name, found {k:?}"),
            ));
        }
        meta.insert(k.clone(), String::new());
    }
    Ok(meta)
}

/// `set`.
pub fn set(ctx: &Ctx, args: &SetArgs) -> Result<()> {
    if !args.value_on_argv.is_empty() {
        return Err(Error::invalid(
            "value",
            "set takes no value on the command line (it would stay in the shell's history and \
             the process list); pipe it on stdin, type it at the prompt, or pass \
             --from-file FILE or --from-env VAR",
        ));
    }
    crate::types::validate_name(&args.name)?;
    if let Some(remote) = &args.remote {
        return super::upstream::set_remote(ctx, args, remote);
    }
    let req = SetRequest {
        scope: args.scope.parse()?,
        secret_type: args
            .secret_type
            .as_deref()
            .map(str::parse::<SecretType>)
            .transpose()?,
        description: args.description.clone(),
        integration: args.integration.clone(),
        meta: parse_meta(&args.meta, &args.unset_meta)?,
        max_age_days: args.max_age_days,
        max_versions: args.max_versions,
        allow_empty: args.allow_empty,
        fields: read_fields(args)?,
        value: read_value(args)?,
    };
    let backend = ctx.backend()?;
    let meta = backend.set(&args.name, &req)?;
    if ctx.json() {
        return output::print_json(&meta);
    }
    eprintln!("{}/{}: version {}", meta.scope, meta.name, meta.version);
    Ok(())
}

/// `[scope/]name[#field]`, the reference syntax `check`, `run` and `inject` take, with an
/// optional `--scope` that must agree with a scope written in the name.
fn reference(text: &str, scope: Option<&str>) -> Result<ValueRef> {
    let mut r = ValueRef::parse_path(text)?;
    match (&r.scope, parse_scope(scope)?) {
        (Some(written), Some(flag)) if *written != flag => {
            return Err(Error::invalid(
                "scope",
                format!("{text} names the scope {written} but --scope says {flag}; give one"),
            ));
        }
        (None, Some(flag)) => r.scope = Some(flag),
        _ => {}
    }
    Ok(r)
}

/// The secret a metadata command names, `[scope/]name` (a field has no place there).
pub(super) fn secret_of(args: &NameArgs) -> Result<(String, Option<Scope>)> {
    let r = reference(&args.name, args.scope.as_deref())?;
    if let Some(field) = &r.field {
        return Err(Error::invalid(
            "name",
            format!(
                "{} names the field {field}; this command takes a secret, drop #{field}",
                args.name
            ),
        ));
    }
    Ok((r.name, r.scope))
}

/// The JSON of `get --json`: the API's value body (`value`, or `value_base64` when not UTF-8).
fn value_json(v: &SecretValue) -> serde_json::Value {
    fn put(obj: &mut serde_json::Map<String, serde_json::Value>, key: &str, b: &SecretBytes) {
        match b.as_str() {
            Some(s) => obj.insert(key.into(), s.into()),
            None => obj.insert(format!("{key}_base64"), b64().encode(b.expose()).into()),
        };
    }
    let mut obj = serde_json::Map::new();
    obj.insert("name".into(), v.name.clone().into());
    obj.insert("scope".into(), v.scope.to_string().into());
    obj.insert("type".into(), v.secret_type.as_str().into());
    obj.insert("version".into(), v.version.into());
    put(&mut obj, "value", &v.value);
    let mut fields = serde_json::Map::new();
    for (k, b) in &v.fields {
        put(&mut fields, k, b);
    }
    obj.insert("fields".into(), fields.into());
    obj.insert(
        "retrieved_at".into(),
        crate::types::time::format(v.retrieved_at).into(),
    );
    obj.into()
}

/// `get`: the exact bytes, a newline only when stdout is a terminal.
pub fn get(ctx: &Ctx, args: &GetArgs) -> Result<()> {
    let mut q = reference(&args.name, args.scope.as_deref())?;
    q.version = args.version;
    let v = ctx.backend()?.read(&q)?;
    super::upstream::warn_stale(&args.name, &v);
    if ctx.json() {
        return output::print_json(&value_json(&v));
    }
    let mut out = std::io::stdout().lock();
    let tty = out.is_terminal();
    let written = if args.base64 {
        let text = zeroize::Zeroizing::new(b64().encode(v.value.expose()));
        out.write_all(text.as_bytes())
    } else {
        out.write_all(v.value.expose())
    };
    written
        .and_then(|()| if tty { out.write_all(b"\n") } else { Ok(()) })
        .and_then(|()| out.flush())
        .map_err(Error::from)?;
    if v.value.is_empty() && !v.fields.is_empty() {
        let names: Vec<&str> = v.fields.keys().map(String::as_str).collect();
        eprintln!(
            "note: {} has no value, only fields ({}); read one with {}#FIELD",
            args.name,
            names.join(", "),
            args.name
        );
    }
    Ok(())
}

/// `ls`.
pub fn ls(ctx: &Ctx, args: &LsArgs) -> Result<()> {
    let filter = ListFilter {
        scope: parse_scope(args.scope.as_deref())?,
        secret_type: args.secret_type.as_deref().map(str::parse).transpose()?,
        integration: args.integration.clone(),
        query: args.query.clone(),
    };
    let list = ctx.backend()?.list(&filter)?;
    if ctx.json() {
        return output::print_json(&list);
    }
    let mut t = output::table(&[
        "SCOPE",
        "NAME",
        "TYPE",
        "VERSION",
        "UPDATED",
        "LAST USED",
        "INTEGRATION",
    ]);
    for m in &list {
        t.add_row(vec![
            m.scope.to_string(),
            m.name.clone(),
            m.secret_type.to_string(),
            m.version.to_string(),
            ts(m.updated_at),
            opt_ts(m.last_used),
            opt(m.integration.as_deref()),
        ]);
    }
    output::print_table(&t, "no secrets")
}

fn show_rows(m: &SecretMeta) -> Vec<(&'static str, String)> {
    let meta: Vec<String> = m.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
    vec![
        ("name", m.name.clone()),
        ("scope", m.scope.to_string()),
        ("type", m.secret_type.to_string()),
        ("description", opt(m.description.as_deref())),
        ("integration", opt(m.integration.as_deref())),
        (
            "meta",
            if meta.is_empty() {
                "-".into()
            } else {
                meta.join(", ")
            },
        ),
        (
            "fields",
            if m.fields.is_empty() {
                "-".into()
            } else {
                m.fields.join(", ")
            },
        ),
        (
            "version",
            format!("{} (keeps {})", m.version, m.max_versions),
        ),
        ("max age", opt(m.max_age_days.map(|d| format!("{d} days")))),
        (
            "created",
            format!("{} by {}", ts(m.created_at), m.created_by),
        ),
        (
            "updated",
            format!("{} by {}", ts(m.updated_at), m.updated_by),
        ),
        ("last used", opt_ts(m.last_used)),
    ]
}

/// `show`.
pub fn show(ctx: &Ctx, args: &NameArgs) -> Result<()> {
    let (name, scope) = secret_of(args)?;
    let m = ctx.backend()?.show(&name, scope.as_ref())?;
    if ctx.json() {
        return output::print_json(&m);
    }
    let rows: Vec<(&str, String)> = show_rows(&m);
    output::print_table(&output::pairs(&rows), "")?;
    output::print_line("")?;
    print_versions(&m.versions)
}

fn print_versions(versions: &[VersionInfo]) -> Result<()> {
    let mut t = output::table(&["VERSION", "CREATED", "BY", "SIZE", "FIELDS", "NOTE"]);
    for v in versions.iter().rev() {
        t.add_row(vec![
            v.version.to_string(),
            ts(v.created_at),
            v.created_by.clone(),
            v.size.to_string(),
            if v.fields.is_empty() {
                "-".into()
            } else {
                v.fields.join(", ")
            },
            v.rolled_back_from
                .map_or_else(String::new, |f| format!("rollback of {f}")),
        ]);
    }
    output::print_table(&t, "no versions")
}

/// `history`.
pub fn history(ctx: &Ctx, args: &NameArgs) -> Result<()> {
    let (name, scope) = secret_of(args)?;
    let m = ctx.backend()?.show(&name, scope.as_ref())?;
    if ctx.json() {
        // Newest first, as the table lists them.
        let newest_first: Vec<&VersionInfo> = m.versions.iter().rev().collect();
        return output::print_json(&newest_first);
    }
    print_versions(&m.versions)
}

/// `rollback`.
pub fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<()> {
    let (name, scope) = secret_of(&args.secret)?;
    let m = ctx.backend()?.rollback(&name, scope.as_ref(), args.to)?;
    if ctx.json() {
        return output::print_json(&m);
    }
    eprintln!(
        "{}/{}: version {} (from version {})",
        m.scope, m.name, m.version, args.to
    );
    Ok(())
}
