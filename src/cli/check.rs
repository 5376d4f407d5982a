//! `check`: pre-flight. Which of the required secrets are present (and visible to the caller),
//! which are missing; exit 3 listing the missing ones. No value is read.

use crate::ops::Api;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Ctx;
use super::args::CheckArgs;
use super::backend::Backend;
use super::output;
use super::reference::{Reference, SCHEME, reason};
use crate::error::{Error, Result};
use crate::types::{CheckResult, Scope};
use crate::unlock::read_secret_file;

/// A requirements.toml (see `tresor check --help`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requirements {
    #[serde(default)]
    required: Vec<Spanned<String>>,
    #[serde(default)]
    secret: Vec<Required>,
}

/// One `[[secret]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Required {
    name: Spanned<String>,
    scope: Option<Spanned<String>>,
    field: Option<String>,
}

/// `[scope/]NAME[#field]` or a `tresor://` reference.
pub(super) fn parse_name(text: &str) -> Result<Reference> {
    if text.starts_with(SCHEME) {
        Reference::parse(text)
    } else {
        Reference::parse_path(text)
    }
}

/// How a requirement is shown: the reference without its scheme.
pub(super) fn shown(r: &Reference) -> String {
    r.to_string()
        .strip_prefix(SCHEME)
        .map(str::to_owned)
        .unwrap_or_default()
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// Reads a requirements file; errors name its line.
fn read_requirements(path: &Path) -> Result<Vec<Reference>> {
    let source = path.display().to_string();
    let raw = read_secret_file(path, "requirements")?;
    let text = raw
        .as_str()
        .ok_or_else(|| Error::invalid(&source, "a requirements file is UTF-8 text"))?;
    parse_requirements(&source, text)
}

/// Parses the text of a requirements file; `source` names it in errors.
pub(crate) fn parse_requirements(source: &str, text: &str) -> Result<Vec<Reference>> {
    let at = |offset: usize, why: String| {
        Error::invalid(format!("{source} line {}", line_of(text, offset)), why)
    };
    let req: Requirements = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim().to_owned())
    })?;
    let mut out = Vec::new();
    for name in &req.required {
        out.push(parse_name(name.get_ref()).map_err(|e| at(name.span().start, reason(&e)))?);
    }
    for r in &req.secret {
        let scope = r
            .scope
            .as_ref()
            .map(|s| {
                s.get_ref()
                    .parse::<Scope>()
                    .map_err(|e| at(s.span().start, reason(&e)))
            })
            .transpose()?;
        let mut full = r.name.get_ref().clone();
        if let Some(f) = &r.field {
            full = format!("{full}#{f}");
        }
        let line = r.name.span().start;
        let mut parsed = Reference::parse_path(&full).map_err(|e| at(line, reason(&e)))?;
        if scope.is_some() {
            parsed.scope = scope;
        }
        out.push(parsed);
    }
    if out.is_empty() {
        return Err(Error::invalid(
            source,
            "no requirements: give `required = [...]` or [[secret]] tables",
        ));
    }
    Ok(out)
}

/// Looks the requirements up: unscoped names in one `check` call, scoped ones by their
/// metadata (a secret the caller may not see is missing).
enum State {
    Present,
    Missing,
    NotGranted,
}

/// How a result shows a requirement's state.
pub(super) fn status_of(result: &CheckResult, name: &str) -> &'static str {
    if result.not_granted.iter().any(|n| n == name) {
        "not granted"
    } else if result.missing.iter().any(|n| n == name) {
        "missing"
    } else {
        "present"
    }
}

pub(super) fn look_up(backend: &Backend, wanted: &[Reference]) -> Result<CheckResult> {
    let unscoped: Vec<String> = wanted
        .iter()
        .filter(|r| r.scope.is_none())
        .map(Reference::short)
        .collect();
    let found = if unscoped.is_empty() {
        CheckResult::default()
    } else {
        backend.check(&unscoped)?
    };
    let mut out = CheckResult::default();
    for r in wanted {
        let state = match &r.scope {
            None if found.not_granted.contains(&r.short()) => State::NotGranted,
            None if found.present.contains(&r.short()) => State::Present,
            None => State::Missing,
            Some(scope) => match backend.show(&r.name, Some(scope)) {
                Ok(m) if r.field.as_ref().is_none_or(|f| m.fields.contains(f)) => State::Present,
                Ok(_) | Err(Error::NotFound { .. }) => State::Missing,
                // Refused for the scope asked, whether or not the secret exists there: saying
                // so tells the caller nothing about what the scope holds.
                Err(Error::PermissionDenied { .. }) => State::NotGranted,
                Err(e) => return Err(e),
            },
        };
        match state {
            State::Present => out.present.push(shown(r)),
            State::Missing => out.missing.push(shown(r)),
            State::NotGranted => out.not_granted.push(shown(r)),
        }
    }
    Ok(out)
}

/// `check`.
pub fn check(ctx: &Ctx, args: &CheckArgs) -> Result<()> {
    let mut wanted = match &args.file {
        Some(path) => read_requirements(path)?,
        None => Vec::new(),
    };
    for n in &args.names {
        wanted.push(parse_name(n).map_err(|e| Error::invalid(n, reason(&e)))?);
    }
    let mut seen = std::collections::BTreeSet::new();
    wanted.retain(|r| seen.insert(r.clone()));
    let result = look_up(&ctx.backend()?, &wanted)?;
    if ctx.json() {
        output::print_json(&result)?;
    } else {
        let mut t = output::table(&["STATUS", "SECRET"]);
        for r in &wanted {
            let name = shown(r);
            t.add_row(vec![status_of(&result, &name).to_owned(), name]);
        }
        output::print_table(&t, "nothing to check")?;
    }
    if result.missing.is_empty() && !result.not_granted.is_empty() {
        return Err(Error::denied(format!(
            "not granted: {} ({} of {}); ask an owner for a grant",
            result.not_granted.join(", "),
            result.not_granted.len(),
            wanted.len()
        )));
    }
    if result.missing.is_empty() {
        return Ok(());
    }
    Err(Error::not_found(
        "required secrets",
        format!(
            "{} ({} of {})",
            result.missing.join(", "),
            result.missing.len(),
            wanted.len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Reference>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("req.toml");
        std::fs::write(&p, text).expect("write");
        read_requirements(&p).map_err(|e| match e {
            Error::InvalidArgument { field, reason } => Error::InvalidArgument {
                field: field.replace(&dir.path().display().to_string(), "D"),
                reason,
            },
            e => e,
        })
    }

    #[test]
    fn both_forms() {
        let got = parse(
            "required = [\"a\", \"b#f\", \"team:x/c\"]\n\n[[secret]]\nname = \"d\"\n\
             scope = \"user:bob\"\nfield = \"g\"\n",
        )
        .expect("parses");
        let shown: Vec<String> = got.iter().map(shown).collect();
        assert_eq!(shown, ["a", "b#f", "team:x/c", "user:bob/d#g"]);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line) in [
            ("required = [\"a\",\n  \"b\"\n  oops\n", 3),
            ("required = [\"a\", \"bad name\"]\n", 1),
            ("\n[[secret]]\nname = \"x\"\nscope = \"nope\"\n", 4),
            ("[[secret]]\nname = 3\n", 2),
            ("\n\ncolour = 1\n", 3),
        ] {
            let e = parse(text).expect_err(text).to_string();
            assert!(
                e.starts_with(&format!("invalid D/req.toml line {line}:")),
                "{e}"
            );
        }
    }
}
