//! The `apply` manifest (see `tresor apply --help`): parsed with spans, then checked, so every
//! error names the line or field. A value source is a place to read from, never a value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;
use toml::Spanned;

use crate::cli::check::line_of;
use crate::cli::reference::reason;
use crate::error::{Error, Result};
use crate::types::Grant;
use crate::types::{Role, Scope, SecretType, validate_name};
use crate::unlock::read_secret_file;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    secret: Vec<RawSecret>,
    #[serde(default)]
    principal: Vec<RawPrincipal>,
    #[serde(default)]
    team: Vec<RawTeam>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    name: Spanned<String>,
    scope: Option<Spanned<String>>,
    #[serde(rename = "type")]
    secret_type: Option<Spanned<String>>,
    description: Option<String>,
    integration: Option<String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    max_age_days: Option<u32>,
    value: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    name: Spanned<String>,
    role: Spanned<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    #[serde(default)]
    grants: Vec<Spanned<RawGrant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    pattern: String,
    scope: Option<String>,
    expires: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: Spanned<String>,
    #[serde(default)]
    members: Vec<String>,
}

/// Where a new secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// An environment variable.
    Env(String),
    /// A file (relative paths are relative to the manifest).
    File(PathBuf),
    /// A no-echo prompt.
    Prompt,
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Env(v) => write!(f, "env:{v}"),
            Self::File(p) => write!(f, "file:{}", p.display()),
            Self::Prompt => f.write_str("prompt"),
        }
    }
}

/// One `[[secret]]`: what is left out stays as it is.
#[derive(Clone, Debug)]
pub struct WantSecret {
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Type.
    pub secret_type: Option<SecretType>,
    /// Description.
    pub description: Option<String>,
    /// Integration tag.
    pub integration: Option<String>,
    /// Labels that must be present.
    pub meta: BTreeMap<String, String>,
    /// Rotation policy.
    pub max_age_days: Option<u32>,
    /// Where the value comes from when the secret is created.
    pub value: Option<ValueSource>,
    /// Where it was declared (`FILE line N`), for errors.
    pub at: String,
}

/// One `[[principal]]`.
#[derive(Clone, Debug)]
pub struct WantPrincipal {
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Peer uid.
    pub uid: Option<u32>,
    /// Peer gid.
    pub gid: Option<u32>,
    /// Exactly these grants.
    pub grants: Vec<Grant>,
}

/// One `[[team]]`.
#[derive(Clone, Debug)]
pub struct WantTeam {
    /// Name.
    pub name: String,
    /// Exactly these members.
    pub members: BTreeSet<String>,
}

/// A checked manifest.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Secrets.
    pub secrets: Vec<WantSecret>,
    /// Principals.
    pub principals: Vec<WantPrincipal>,
    /// Teams.
    pub teams: Vec<WantTeam>,
}

/// Turns parse errors into `FILE line N: why`.
struct Located<'a> {
    source: String,
    text: &'a str,
}

impl Located<'_> {
    fn at(&self, offset: usize) -> String {
        format!("{} line {}", self.source, line_of(self.text, offset))
    }
    fn err(&self, offset: usize, why: impl Into<String>) -> Error {
        Error::invalid(self.at(offset), why)
    }
}

/// Reads and checks a manifest.
pub fn read(path: &Path) -> Result<Manifest> {
    let raw = read_secret_file(path, "manifest")?;
    let source = path.display().to_string();
    let text = raw
        .as_str()
        .ok_or_else(|| Error::invalid(&source, "a manifest is UTF-8 text"))?;
    parse(text, source, path.parent().unwrap_or(Path::new(".")))
}

pub(crate) fn parse(text: &str, source: String, dir: &Path) -> Result<Manifest> {
    let loc = Located { source, text };
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        loc.err(
            e.span().map_or(0, |s| s.start),
            e.message().trim().to_owned(),
        )
    })?;
    let mut m = Manifest::default();
    let mut seen = BTreeSet::new();
    for s in raw.secret {
        let w = secret(&loc, s, dir)?;
        if !seen.insert((w.scope.clone(), w.name.clone())) {
            return Err(Error::invalid(
                &w.at,
                format!("secret {}/{} is listed twice", w.scope, w.name),
            ));
        }
        m.secrets.push(w);
    }
    let mut names = BTreeSet::new();
    for p in raw.principal {
        let offset = p.name.span().start;
        let w = principal(&loc, p)?;
        if !names.insert(w.name.clone()) {
            return Err(loc.err(offset, format!("{} is listed twice", w.name)));
        }
        m.principals.push(w);
    }
    for t in raw.team {
        let offset = t.name.span().start;
        if !names.insert(t.name.get_ref().clone()) {
            return Err(loc.err(offset, format!("{} is listed twice", t.name.get_ref())));
        }
        m.teams.push(WantTeam {
            name: t.name.into_inner(),
            members: t.members.into_iter().collect(),
        });
    }
    Ok(m)
}

fn parse_spanned<T: std::str::FromStr<Err = Error>>(
    loc: &Located<'_>,
    v: &Spanned<String>,
) -> Result<T> {
    v.get_ref()
        .parse()
        .map_err(|e| loc.err(v.span().start, reason(&e)))
}

fn value_source(loc: &Located<'_>, v: &Spanned<String>, dir: &Path) -> Result<ValueSource> {
    let text = v.get_ref();
    if text == "prompt" {
        return Ok(ValueSource::Prompt);
    }
    if let Some(var) = text.strip_prefix("env:").filter(|s| !s.is_empty()) {
        return Ok(ValueSource::Env(var.to_owned()));
    }
    if let Some(p) = text.strip_prefix("file:").filter(|s| !s.is_empty()) {
        return Ok(ValueSource::File(dir.join(p)));
    }
    // Not echoed: someone may have pasted the value itself here.
    Err(loc.err(
        v.span().start,
        "value: expected \"env:VAR\", \"file:PATH\" or \"prompt\" (a value itself never \
         belongs in a manifest)",
    ))
}

fn secret(loc: &Located<'_>, s: RawSecret, dir: &Path) -> Result<WantSecret> {
    let at = loc.at(s.name.span().start);
    validate_name(s.name.get_ref()).map_err(|e| Error::invalid(&at, reason(&e)))?;
    Ok(WantSecret {
        scope: s
            .scope
            .as_ref()
            .map(|v| parse_spanned(loc, v))
            .transpose()?
            .unwrap_or_default(),
        secret_type: s
            .secret_type
            .as_ref()
            .map(|v| parse_spanned(loc, v))
            .transpose()?,
        value: s
            .value
            .as_ref()
            .map(|v| value_source(loc, v, dir))
            .transpose()?,
        name: s.name.into_inner(),
        description: s.description,
        integration: s.integration,
        meta: s.meta,
        max_age_days: s.max_age_days,
        at,
    })
}

fn principal(loc: &Located<'_>, p: RawPrincipal) -> Result<WantPrincipal> {
    let role: Role = parse_spanned(loc, &p.role)?;
    if p.uid.is_none() && p.gid.is_none() {
        return Err(loc.err(
            p.name.span().start,
            format!(
                "principal {} needs uid or gid (apply issues no tokens)",
                p.name.get_ref()
            ),
        ));
    }
    let mut grants = Vec::new();
    for g in &p.grants {
        let offset = g.span().start;
        let raw = g.get_ref();
        let scope = raw
            .scope
            .as_deref()
            .map(str::parse::<Scope>)
            .transpose()
            .map_err(|e| loc.err(offset, format!("grant scope: {}", reason(&e))))?;
        let expires = raw
            .expires
            .as_deref()
            .map(str::parse::<Timestamp>)
            .transpose()
            .map_err(|_| loc.err(offset, "grant expires: expected an RFC 3339 time"))?;
        grants.push(Grant {
            pattern: raw.pattern.clone(),
            scope,
            expires,
        });
    }
    Ok(WantPrincipal {
        name: p.name.into_inner(),
        role,
        uid: p.uid,
        gid: p.gid,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "m.toml".into(), Path::new("."))
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn a_full_manifest_parses() {
        let m = parse(
            "[[secret]]\nname = \"a\"\ntype = \"token\"\nvalue = \"env:A\"\nmeta = { k = \"v\" }\n\n\
             [[principal]]\nname = \"bot\"\nrole = \"agent\"\nuid = 1000\n\
             grants = [{ pattern = \"a*\", scope = \"org\", expires = \"2030-01-01T00:00:00Z\" }]\n\n\
             [[team]]\nname = \"ci\"\nmembers = [\"bot\"]\n",
            "m.toml".into(),
            Path::new("/d"),
        )
        .expect("parses");
        assert_eq!(m.secrets[0].value, Some(ValueSource::Env("A".into())));
        assert_eq!(m.secrets[0].secret_type, Some(SecretType::Token));
        assert_eq!(m.principals[0].grants.len(), 1);
        assert!(m.teams[0].members.contains("bot"));
    }

    #[test]
    fn errors_name_the_line_and_never_echo_a_value() {
        for (text, want) in [
            (
                "[[secret]]\nname = \"a\"\nvalue = \"hunter2\"\n",
                "m.toml line 3: value",
            ),
            ("[[secret]]\nname = \"a b\"\n", "m.toml line 2:"),
            (
                "[[secret]]\nname = \"a\"\ntype = \"nope\"\n",
                "m.toml line 3:",
            ),
            ("[[secret]]\nname = \"a\"\ncolour = 1\n", "m.toml line 3:"),
            (
                "[[principal]]\nname = \"b\"\nrole = \"agent\"\n",
                "m.toml line 2:",
            ),
            (
                "[[secret]]\nname = \"a\"\n[[secret]]\nname = \"a\"\n",
                "m.toml line 4:",
            ),
            (
                "[[principal]]\nname = \"b\"\nrole = \"agent\"\nuid = 1\n\
                 grants = [{ pattern = \"x\", expires = \"soon\" }]\n",
                "m.toml line 5: grant expires",
            ),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
