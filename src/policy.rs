//! Who may do what: a pure function of (principal, operation, secret).
//!
//! Roles follow SPEC §2: members read metadata, only authorized runtimes (agents with a grant,
//! and owners) read values, owners write; members also write their personal secrets
//! (`user:<self>`). Every decision is default-deny.

use jiff::Timestamp;

use crate::types::{Grant, Principal, PrincipalKind, Scope};

/// What is being done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read a value (or fields).
    ReadValue,
    /// Read metadata (`show`, a listing row, `check`).
    ReadMeta,
    /// Create, change, roll back or delete a secret.
    Write,
    /// Manage principals, grants, keyslots; read or verify the audit log; lock.
    Admin,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// No, and why (audited, and returned as `permission_denied`).
    Deny(String),
}

impl Decision {
    /// Whether allowed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Whether `scope` is visible to `who` at all: org to everyone, a team's scope to its members,
/// a user's scope to that user.
pub fn scope_visible(who: &Principal, teams: &[String], scope: &Scope) -> bool {
    match scope {
        Scope::Org => true,
        Scope::Team(t) => teams.iter().any(|m| m == t),
        Scope::User(u) => *u == who.name,
    }
}

/// Whether a grant pattern matches a name: exact, or a glob (`*`, `?`, `[...]`).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    glob::Pattern::new(pattern).is_ok_and(|p| {
        p.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    })
}

/// The first live grant of `who` that covers (scope, name), if any.
pub fn covering_grant<'a>(
    who: &'a Principal,
    scope: &Scope,
    name: &str,
    now: Timestamp,
) -> Option<&'a Grant> {
    who.grants.iter().find(|g| {
        pattern_matches(&g.pattern, name)
            && g.scope.as_ref().is_none_or(|s| s == scope)
            && g.expires.is_none_or(|e| e > now)
    })
}

/// Decides whether `who` (a member of `teams`) may do `op` on the secret (`scope`, `name`), or
/// on the store as a whole when `target` is `None`.
pub fn decide(
    who: &Principal,
    teams: &[String],
    op: Op,
    target: Option<(&Scope, &str)>,
    now: Timestamp,
) -> Decision {
    let deny = |why: String| Decision::Deny(why);
    match who.kind {
        PrincipalKind::Owner => Decision::Allow,
        PrincipalKind::Team => deny(format!("{} is a team, not a caller", who.name)),
        PrincipalKind::Member => match (op, target) {
            (Op::ReadMeta, None) => Decision::Allow,
            (Op::ReadMeta, Some((scope, _))) if scope_visible(who, teams, scope) => Decision::Allow,
            (Op::ReadValue, Some((Scope::User(u), _))) if *u == who.name => Decision::Allow,
            (Op::ReadValue, _) => deny(format!(
                "member {} may read values only in user:{}",
                who.name, who.name
            )),
            // Personal secrets (SPEC §2): a member creates, changes and deletes its own.
            (Op::Write, Some((Scope::User(u), _))) if *u == who.name => Decision::Allow,
            (Op::Write, Some(_)) => deny(format!(
                "member {} may change only its personal secrets, in user:{} (pass --scope \
                 user:{}); owners change the rest",
                who.name, who.name, who.name
            )),
            (Op::Write | Op::Admin, _) => deny(format!(
                "member {} may not change the store; owners do",
                who.name
            )),
            (Op::ReadMeta, Some((scope, _))) => {
                deny(format!("{scope} is not visible to {}", who.name))
            }
        },
        PrincipalKind::Agent => match (op, target) {
            (Op::ReadMeta, None) => Decision::Allow,
            (Op::ReadValue | Op::ReadMeta, Some((scope, name))) => {
                if !scope_visible(who, teams, scope) {
                    return deny(format!("{scope} is not visible to agent {}", who.name));
                }
                if covering_grant(who, scope, name, now).is_some() {
                    Decision::Allow
                } else {
                    deny(format!(
                        "no grant of agent {} covers {scope}/{name}",
                        who.name
                    ))
                }
            }
            (Op::ReadValue, None) => deny("a value read names a secret".into()),
            (Op::Write | Op::Admin, _) => deny(format!(
                "agent {} may not change the store; owners do",
                who.name
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(kind: PrincipalKind, grants: Vec<Grant>) -> Principal {
        Principal {
            name: "p".into(),
            kind,
            uid: Some(1000),
            gid: None,
            has_token: false,
            grants,
            members: Vec::new(),
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    fn grant(pattern: &str, scope: Option<Scope>, expires: Option<Timestamp>) -> Grant {
        Grant {
            pattern: pattern.into(),
            scope,
            expires,
        }
    }

    type Case<'a> = (&'a Principal, Op, Option<(&'a Scope, &'a str)>, bool);

    /// Every role × op × scope, with the expected answer.
    #[test]
    fn table() {
        use Op::{Admin, ReadMeta, ReadValue, Write};
        let now: Timestamp = "2026-11-21T00:00:00Z".parse().expect("ts");
        let past: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let future: Timestamp = "2027-01-01T00:00:00Z".parse().expect("ts");
        let org = Scope::Org;
        let team = Scope::Team("ops".into());
        let other_team = Scope::Team("dev".into());
        let me = Scope::User("p".into());
        let you = Scope::User("q".into());
        let owner = principal(PrincipalKind::Owner, vec![]);
        let member = principal(PrincipalKind::Member, vec![]);
        let agent = principal(
            PrincipalKind::Agent,
            vec![
                grant("github-*", None, None),
                grant("db", Some(Scope::Team("ops".into())), None),
                grant("old", None, Some(past)),
                grant("new", None, Some(future)),
            ],
        );
        let team_p = principal(PrincipalKind::Team, vec![]);
        let teams = vec!["ops".to_string()];
        let cases: Vec<Case<'_>> = vec![
            (&owner, ReadValue, Some((&org, "x")), true),
            (&owner, ReadValue, Some((&you, "x")), true),
            (&owner, Write, Some((&other_team, "x")), true),
            (&owner, Admin, None, true),
            (&member, ReadMeta, None, true),
            (&member, ReadMeta, Some((&org, "x")), true),
            (&member, ReadMeta, Some((&team, "x")), true),
            (&member, ReadMeta, Some((&other_team, "x")), false),
            (&member, ReadMeta, Some((&me, "x")), true),
            (&member, ReadMeta, Some((&you, "x")), false),
            (&member, ReadValue, Some((&org, "x")), false),
            (&member, ReadValue, Some((&team, "x")), false),
            (&member, ReadValue, Some((&me, "x")), true),
            (&member, ReadValue, Some((&you, "x")), false),
            (&member, Write, Some((&me, "x")), true),
            (&member, Write, Some((&you, "x")), false),
            (&member, Write, Some((&team, "x")), false),
            (&member, Write, Some((&org, "x")), false),
            (&member, Admin, None, false),
            (&agent, ReadValue, Some((&org, "github-pat")), true),
            (&agent, ReadMeta, Some((&org, "github-pat")), true),
            (&agent, ReadValue, Some((&org, "gitlab-pat")), false),
            (&agent, ReadMeta, Some((&org, "gitlab-pat")), false),
            (&agent, ReadValue, Some((&team, "db")), true),
            (&agent, ReadValue, Some((&org, "db")), false),
            (&agent, ReadValue, Some((&other_team, "github-x")), false),
            (&agent, ReadValue, Some((&you, "github-x")), false),
            (&agent, ReadValue, Some((&org, "old")), false),
            (&agent, ReadValue, Some((&org, "new")), true),
            (&agent, Write, Some((&org, "github-pat")), false),
            (&agent, Admin, None, false),
            (&agent, ReadMeta, None, true),
            (&team_p, ReadMeta, None, false),
            (&team_p, ReadValue, Some((&org, "x")), false),
        ];
        for (who, op, target, want) in cases {
            let got = decide(who, &teams, op, target, now).is_allow();
            assert_eq!(got, want, "{:?} {op:?} {target:?}", who.kind);
        }
    }

    #[test]
    fn globs() {
        assert!(pattern_matches("github-*", "github-pat"));
        assert!(pattern_matches("ci/*", "ci/deploy/key"));
        assert!(!pattern_matches("github-*", "gitlab-pat"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exactly"));
    }
}
