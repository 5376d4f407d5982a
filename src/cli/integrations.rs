//! `report integrations -f FILE`: which secrets each integration needs are there, checked by
//! name and by integration tag, and what else each integration has available.
//!
//! ```toml
//! github = ["github-api-token", "github-webhook-secret"]   # the simple form
//!
//! [[integration]]                                           # the table form
//! name = "aws"
//! requires = ["aws-access-key", "team:ci/aws-role#arn"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Ctx;
use super::backend::Backend;
use super::check::{line_of, look_up, parse_name, shown, status_of};
use super::output;
use super::reference::{Reference, reason};
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::types::ListFilter;
use crate::unlock::read_secret_file;

/// The `[[integration]]` tables of an integrations file (other keys are the simple form,
/// read by [`simple_form`]).
#[derive(Debug, Deserialize)]
struct Integrations {
    #[serde(default)]
    integration: Vec<Integration>,
}

/// The `name = ["secret", ...]` lines: each name with its secrets and their offsets. toml
/// keeps spans only outside flattened maps, so each item's offset is found in the text of
/// its array (items are quoted strings there).
fn simple_form(
    text: &str,
    at: &dyn Fn(usize, String) -> Error,
) -> Result<Vec<(String, Vec<Spanned<String>>)>> {
    let doc: BTreeMap<String, Spanned<toml::Value>> = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim().to_owned())
    })?;
    let mut out = Vec::new();
    for (name, v) in doc {
        if name == "integration" {
            continue;
        }
        let span = v.span();
        let toml::Value::Array(items) = v.into_inner() else {
            return Err(at(
                span.start,
                format!("{name}: expected a list of secret names"),
            ));
        };
        let mut from = span.start;
        let mut refs = Vec::new();
        for item in items {
            let toml::Value::String(item) = item else {
                return Err(at(from, format!("{name}: expected secret names (strings)")));
            };
            let found = text
                .get(from..span.end)
                .and_then(|t| t.find(item.as_str()))
                .map_or(from, |i| from + i);
            from = found;
            refs.push(Spanned::new(found..found + item.len(), item));
        }
        out.push((name, refs));
    }
    Ok(out)
}

/// One `[[integration]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Integration {
    name: String,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
}

/// Reads an integrations file; errors name its line.
fn read_integrations(path: &Path) -> Result<Vec<(String, Vec<Reference>)>> {
    let source = path.display().to_string();
    let raw = read_secret_file(path, "integrations")?;
    let text = raw
        .as_str()
        .ok_or_else(|| Error::invalid(&source, "an integrations file is UTF-8 text"))?;
    parse_integrations(&source, text)
}

/// Parses the text of an integrations file; `source` names it in errors.
pub(crate) fn parse_integrations(
    source: &str,
    text: &str,
) -> Result<Vec<(String, Vec<Reference>)>> {
    let at = |offset: usize, why: String| {
        Error::invalid(format!("{source} line {}", line_of(text, offset)), why)
    };
    let file: Integrations = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        at(offset, e.message().trim().to_owned())
    })?;
    let tables = file.integration.into_iter().map(|i| (i.name, i.requires));
    let all: Vec<(String, Vec<Spanned<String>>)> =
        simple_form(text, &at)?.into_iter().chain(tables).collect();
    if all.is_empty() {
        return Err(Error::invalid(
            source,
            "no integrations: write `name = [\"secret\", ...]` or [[integration]] tables",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    all.into_iter()
        .map(|(name, requires)| {
            if !seen.insert(name.clone()) {
                return Err(Error::invalid(
                    source,
                    format!("integration {name} is listed twice"),
                ));
            }
            let refs = requires
                .iter()
                .map(|r| parse_name(r.get_ref()).map_err(|e| at(r.span().start, reason(&e))))
                .collect::<Result<Vec<_>>>()?;
            Ok((name, refs))
        })
        .collect()
}

/// One integration's state.
#[derive(Debug, Default, Serialize)]
struct IntegrationState {
    name: String,
    present: Vec<String>,
    missing: Vec<String>,
    /// For an agent: required names its grants do not cover.
    not_granted: Vec<String>,
    /// Required names that exist but are tagged for another integration (`name (tag)`).
    other_integration: Vec<String>,
    /// Every secret the caller may see that is tagged with this integration.
    available: Vec<String>,
}

impl IntegrationState {
    fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.not_granted.is_empty() && self.other_integration.is_empty()
    }
}

/// The integration tag of a present requirement (a metadata read: nothing is audited, and
/// `last_used` does not move).
fn tag_of(b: &Backend, r: &Reference) -> Result<Option<String>> {
    Ok(b.show(&r.name, r.scope.as_ref())?.integration)
}

fn state(
    b: &Backend,
    name: &str,
    refs: &[Reference],
    found: &crate::types::CheckResult,
) -> Result<IntegrationState> {
    let mut s = IntegrationState {
        name: name.to_owned(),
        ..IntegrationState::default()
    };
    for r in refs {
        let n = shown(r);
        match status_of(found, &n) {
            "not granted" => s.not_granted.push(n),
            "missing" => s.missing.push(n),
            _ => match tag_of(b, r)? {
                // Untagged secrets count by name; a secret tagged for another integration is
                // not this one's, whatever its name.
                Some(tag) if tag != name => s.other_integration.push(format!("{n} ({tag})")),
                _ => s.present.push(n),
            },
        }
    }
    let tagged = b.list(&ListFilter {
        integration: Some(name.to_owned()),
        ..ListFilter::default()
    })?;
    s.available = tagged
        .iter()
        .map(|m| format!("{}/{}", m.scope, m.name))
        .collect();
    Ok(s)
}

/// `report integrations -f FILE`.
pub fn integrations(ctx: &Ctx, path: &Path) -> Result<()> {
    let wanted = read_integrations(path)?;
    let mut all: Vec<Reference> = wanted.iter().flat_map(|(_, r)| r.clone()).collect();
    let mut seen = std::collections::BTreeSet::new();
    all.retain(|r| seen.insert(r.clone()));
    let b = ctx.backend()?;
    let found = look_up(&b, &all)?;
    let states = wanted
        .iter()
        .map(|(name, refs)| state(&b, name, refs, &found))
        .collect::<Result<Vec<_>>>()?;
    if ctx.json() {
        output::print_json(&states)?;
    } else {
        let mut t = output::table(&["INTEGRATION", "STATUS", "SECRET"]);
        for s in &states {
            for (status, names) in [
                ("present", &s.present),
                ("missing", &s.missing),
                ("not granted", &s.not_granted),
                ("other integration", &s.other_integration),
                ("available", &s.available),
            ] {
                for n in names {
                    t.add_row(vec![s.name.clone(), status.to_owned(), n.clone()]);
                }
            }
        }
        output::print_table(&t, "no requirements")?;
    }
    let broken: Vec<String> = states
        .iter()
        .filter(|s| !s.is_complete())
        .map(|s| {
            let mut what: Vec<String> = s.missing.clone();
            what.extend(s.not_granted.iter().map(|n| format!("{n}: not granted")));
            what.extend(
                s.other_integration
                    .iter()
                    .map(|n| format!("{n}: tagged for another integration")),
            );
            format!("{} ({})", s.name, what.join(", "))
        })
        .collect();
    if broken.is_empty() {
        return Ok(());
    }
    Err(Error::not_found("required secrets", broken.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("i.toml");
        for (text, line) in [
            (
                "[[integration]]\nname = \"gh\"\nrequires = [\"ok\", \"bad name\"]\n",
                3,
            ),
            ("[[integration]]\nname = \"gh\"\ncolour = 1\n", 3),
            ("\n[[integration]\n", 2),
            ("github = [\"a\"]\n\njira = 3\n", 3),
        ] {
            std::fs::write(&p, text).expect("write");
            let e = read_integrations(&p).expect_err(text).to_string();
            assert!(e.contains(&format!("i.toml line {line}:")), "{e}");
        }
    }

    #[test]
    fn both_forms() {
        let got = parse_integrations(
            "f",
            "github = [\"github-api-token\", \"github-webhook-secret\"]\n\n\
             [[integration]]\nname = \"aws\"\nrequires = [\"aws-key\"]\n",
        )
        .expect("parses");
        let names: Vec<(&str, usize)> = got.iter().map(|(n, r)| (n.as_str(), r.len())).collect();
        assert_eq!(names, [("github", 2), ("aws", 1)]);
    }
}
