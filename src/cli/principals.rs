//! `principal add|ls|rm|grant|revoke` and `team add|rm|ls|join|leave`.

use crate::ops::Api;
use std::fmt::Write;

use super::Ctx;
use super::args::{GrantArgs, PrincipalAddArgs, PrincipalCommand, RoleArg, TeamCommand};
use super::audit::{FromNow, parse_time};
use super::output::{self, opt, ts};
use super::secrets::parse_scope;
use crate::error::{Error, Result};
use crate::types::Role;
use crate::types::{Grant, Principal, PrincipalKind, PrincipalSpec};

/// A uid or user name (or gid or group name, with `lookup` = `sys::group_id`).
fn parse_id(field: &str, s: &str, lookup: fn(&str) -> Option<u32>) -> Result<u32> {
    s.parse()
        .ok()
        .or_else(|| lookup(s))
        .ok_or_else(|| Error::invalid(field, format!("{s:?} is neither a number nor a known name")))
}

fn grant_text(g: &Grant) -> String {
    let mut s = g.pattern.clone();
    if let Some(scope) = &g.scope {
        let _ = write!(s, " in {scope}");
    }
    if let Some(t) = g.expires {
        let _ = write!(s, " until {}", ts(t));
    }
    s
}

fn kind_text(k: PrincipalKind) -> &'static str {
    match k {
        PrincipalKind::Owner => "owner",
        PrincipalKind::Member => "member",
        PrincipalKind::Agent => "agent",
        PrincipalKind::Team => "team",
    }
}

/// `principal ...`.
pub fn principal(ctx: &Ctx, cmd: &PrincipalCommand) -> Result<()> {
    match cmd {
        PrincipalCommand::Add(args) => add(ctx, args),
        PrincipalCommand::Ls => ls(ctx, false),
        PrincipalCommand::Rm { name } => {
            let gone = ctx.backend()?.principal_remove(name)?;
            if ctx.json() {
                return output::print_json(&gone);
            }
            eprintln!("removed {name}");
            Ok(())
        }
        PrincipalCommand::Grant(args) => grant(ctx, args),
        PrincipalCommand::Revoke { name, pattern } => {
            let p = ctx.backend()?.revoke(name, pattern)?;
            done(ctx, &p, &format!("revoked {pattern} from {name}"))
        }
    }
}

/// `team ...`.
pub fn team(ctx: &Ctx, cmd: &TeamCommand) -> Result<()> {
    match cmd {
        TeamCommand::Add { team } => {
            let p = ctx.backend()?.team_add(team)?;
            done(ctx, &p, &format!("added team {team}"))
        }
        TeamCommand::Rm { team } => {
            let b = ctx.backend()?;
            // `principal_remove` takes any name; make sure this one is a team.
            let is_team = b
                .principals()?
                .iter()
                .any(|p| p.name == *team && p.kind == PrincipalKind::Team);
            if !is_team {
                return Err(Error::not_found("team", team.clone()));
            }
            let gone = b.principal_remove(team)?;
            if ctx.json() {
                return output::print_json(&gone);
            }
            eprintln!("removed team {team}");
            Ok(())
        }
        TeamCommand::Ls => ls(ctx, true),
        TeamCommand::Join { team, name } => {
            let p = ctx.backend()?.team_join(team, name)?;
            done(ctx, &p, &format!("{name} joined {team}"))
        }
        TeamCommand::Leave { team, name } => {
            let p = ctx.backend()?.team_leave(team, name)?;
            done(ctx, &p, &format!("{name} left {team}"))
        }
    }
}

fn done(ctx: &Ctx, p: &Principal, note: &str) -> Result<()> {
    if ctx.json() {
        return output::print_json(p);
    }
    eprintln!("{note}");
    Ok(())
}

fn add(ctx: &Ctx, args: &PrincipalAddArgs) -> Result<()> {
    let spec = PrincipalSpec {
        name: args.name.clone(),
        role: match args.role {
            RoleArg::Owner => Role::Owner,
            RoleArg::Member => Role::Member,
            RoleArg::Agent => Role::Agent,
        },
        uid: args
            .uid
            .as_deref()
            .map(|u| parse_id("uid", u, crate::sys::user_id))
            .transpose()?,
        gid: args
            .gid
            .as_deref()
            .map(|g| parse_id("gid", g, crate::sys::group_id))
            .transpose()?,
        token: args.token,
    };
    let (p, token) = ctx.backend()?.principal_add(&spec)?;
    if ctx.json() {
        let token = token.as_ref().and_then(|t| t.as_str().map(str::to_owned));
        return output::print_json(&serde_json::json!({ "principal": p, "token": token }));
    }
    eprintln!("added {} {}", kind_text(p.kind), p.name);
    if let Some(t) = token {
        eprintln!("bearer token (shown once; only a keyed hash of it is stored):");
        output::print_line(t.as_str().unwrap_or_default())?;
    }
    Ok(())
}

fn grant(ctx: &Ctx, args: &GrantArgs) -> Result<()> {
    let expires = args
        .expires
        .as_deref()
        .map(|s| parse_time("expires", s, FromNow::Forward))
        .transpose()?;
    let g = Grant {
        pattern: args.pattern.clone(),
        scope: parse_scope(args.scope.as_deref())?,
        expires,
    };
    let r = ctx.backend()?.grant_warned(&args.name, &g)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    let p = r.principal;
    done(
        ctx,
        &p,
        &format!("granted {} to {}", grant_text(&g), args.name),
    )
}

fn ls(ctx: &Ctx, teams: bool) -> Result<()> {
    let all: Vec<Principal> = ctx
        .backend()?
        .principals()?
        .into_iter()
        .filter(|p| (p.kind == PrincipalKind::Team) == teams)
        .collect();
    if ctx.json() {
        return output::print_json(&all);
    }
    if teams {
        let mut t = output::table(&["TEAM", "MEMBERS", "CREATED"]);
        for p in &all {
            let members = if p.members.is_empty() {
                "-".into()
            } else {
                p.members.join(", ")
            };
            t.add_row(vec![p.name.clone(), members, ts(p.created_at)]);
        }
        return output::print_table(&t, "no teams");
    }
    let mut t = output::table(&["NAME", "ROLE", "UID", "GID", "TOKEN", "GRANTS"]);
    for p in &all {
        let grants: Vec<String> = p.grants.iter().map(grant_text).collect();
        t.add_row(vec![
            p.name.clone(),
            kind_text(p.kind).to_owned(),
            opt(p.uid),
            opt(p.gid),
            if p.has_token { "yes" } else { "no" }.to_owned(),
            if grants.is_empty() {
                "-".into()
            } else {
                grants.join(", ")
            },
        ]);
    }
    output::print_table(&t, "no principals")
}
