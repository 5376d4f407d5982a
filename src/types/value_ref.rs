//! "Which value": the one shape every read takes, whether it comes from the API, the CLI, an
//! env file or a template reference (`tresor://[scope/]name[#field]`).

use std::fmt;

use crate::error::{Error, Result};

use super::{Scope, validate_name};

/// The scheme every reference starts with.
pub const SCHEME: &str = "tresor://";

/// One value to read: a secret by name, optionally in an explicit scope, at a kept version, or
/// one of its fields.
///
/// The first path segment of a reference is a scope only when it reads as one: `org`,
/// `team:<team>` or `user:<user>` (names cannot hold `:`). So `tresor://ci/aws.key` is the
/// secret `ci/aws.key` resolved user → team → org, and `tresor://org/ci/aws.key` is the same
/// secret in `org` only.
///
/// ```
/// use tresor::{Scope, ValueRef};
/// let r = ValueRef::parse("tresor://team:infra/db#password")?;
/// assert_eq!(r.scope, Some(Scope::Team("infra".into())));
/// assert_eq!((r.name.as_str(), r.field.as_deref()), ("db", Some("password")));
/// # Ok::<(), tresor::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueRef {
    /// An explicit scope, else the lookup resolves user → team → org.
    pub scope: Option<Scope>,
    /// The secret's name.
    pub name: String,
    /// A kept version, else the current one.
    pub version: Option<u64>,
    /// One field instead of the value.
    pub field: Option<String>,
}

impl ValueRef {
    /// The current value of `name`, resolved user → team → org.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Parses `tresor://[scope/]name[#field]`. The error says what is wrong, in words that
    /// callers prefix with where (a line, an argument).
    ///
    /// # Errors
    /// `InvalidArgument` (field `reference`) for a missing scheme, a bad scope, name or field.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            Error::invalid(
                "reference",
                format!("expected {SCHEME}[scope/]name[#field]"),
            )
        })?;
        Self::parse_path(rest)
    }

    /// Parses `[scope/]name[#field]` (a reference without its scheme, as `check` takes names).
    ///
    /// # Errors
    /// As [`ValueRef::parse`].
    pub fn parse_path(rest: &str) -> Result<Self> {
        let (path, field) = match rest.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (rest, None),
        };
        let (scope, name) = match path.split_once('/') {
            Some((first, name)) if first == "org" || first.contains(':') => {
                (Some(first.parse::<Scope>()?), name)
            }
            _ => (None, path),
        };
        validate_name(name)?;
        if let Some(f) = field {
            let ok = !f.is_empty()
                && f.len() <= 64
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(Error::invalid(
                    "reference",
                    format!("field name {f:?} must be 1-64 of A-Z a-z 0-9 _ - ."),
                ));
            }
        }
        Ok(Self {
            scope,
            name: name.to_owned(),
            version: None,
            field: field.map(str::to_owned),
        })
    }

    /// `NAME[#field]`, as `POST /v1/check` takes it.
    pub fn short(&self) -> String {
        match &self.field {
            Some(f) => format!("{}#{f}", self.name),
            None => self.name.clone(),
        }
    }
}

/// `tresor://[scope/]name[#field]` (a version has no place in a reference and is not shown).
impl fmt::Display for ValueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SCHEME)?;
        if let Some(s) = &self.scope {
            write!(f, "{s}/")?;
        }
        f.write_str(&self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_recognized_only_when_they_read_as_scopes() {
        let r = ValueRef::parse("tresor://ci/aws.key").expect("plain");
        assert_eq!((r.scope, r.name.as_str()), (None, "ci/aws.key"));
        let r = ValueRef::parse("tresor://org/ci/aws.key#id").expect("org");
        assert_eq!(r.scope, Some(Scope::Org));
        assert_eq!(
            (r.name.as_str(), r.field.as_deref()),
            ("ci/aws.key", Some("id"))
        );
        let r = ValueRef::parse("tresor://team:infra/db#password").expect("team");
        assert_eq!(r.scope, Some(Scope::Team("infra".into())));
        assert_eq!(r.to_string(), "tresor://team:infra/db#password");
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "github-pat",
            "tresor://",
            "tresor://bad:x/name",
            "tresor://a#",
            "tresor://a b",
            "tresor://x/../y",
            "tresor://a#f f",
        ] {
            assert!(ValueRef::parse(bad).is_err(), "{bad} parsed");
        }
    }
}
