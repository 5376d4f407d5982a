//! References before delete (SPEC §1, issue 11): grants (exact and glob), `apply` manifests,
//! `run --env-file` files and `inject` templates that resolved a secret are listed by
//! `tresor refs` and `GET /v1/secrets/{name}/references` with the principals that read it in
//! the last 30 days; `rm` refuses while any exist and `--force` says what it broke. Before,
//! a glob grant `api-*` did not block `rm api-key`, and a secret used only in an env file was
//! deleted silently. A grant whose pattern matches nothing warns (a typo such as
//! `slack-bot-tokn` succeeded silently).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::io::{Read, Write};

use cli_support::{Daemon, Env, start, via};
use serde_json::Value;

fn json(r: &cli_support::Run) -> Value {
    assert_eq!(r.code, 0, "{}", r.err_only());
    serde_json::from_slice(&r.stdout).unwrap()
}

/// An agent with a bearer token, and a way to run the CLI as it.
fn agent(env: &Env, d: &Daemon, name: &str) -> String {
    let r = via(
        env,
        d,
        &["principal", "add", name, "--role", "agent", "--token"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.out().trim().to_owned()
}

fn as_token(env: &Env, d: &Daemon, token: &str, args: &[&str]) -> cli_support::Run {
    let mut c = env.cmd();
    c.env("TRESOR_SOCKET", &d.socket)
        .env("TRESOR_TOKEN", token)
        .args(args);
    env.finish(c, None)
}

/// One HTTP/1.1 request over the daemon's socket; the status and the body.
fn http(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, Value) {
    http_as(d, None, method, path, body)
}

fn http_as(d: &Daemon, token: Option<&str>, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: tresord\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let (_, b) = out.split_once("\r\n\r\n").unwrap();
    // A chunked body: take the JSON between the first `{` and the last `}`.
    let b = &b[b.find('{').unwrap_or(0)..=b.rfind('}').unwrap_or(0)];
    (status, serde_json::from_str(b).unwrap_or(Value::Null))
}

fn kinds(v: &Value) -> Vec<(String, String)> {
    v["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["what"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, told in order
fn glob_grants_env_files_templates_and_manifests_block_rm_until_forced() {
    let env = Env::new();
    env.set("api-key", b"k-value-1", &[]);
    env.set("db-pass", b"d-value-1", &[]);
    env.set("tpl-only", b"t-value-1", &[]);
    env.set("free", b"f-value-1", &[]);
    let d = start(&env, true);
    let token = agent(&env, &d, "bot");
    let r = via(&env, &d, &["principal", "grant", "bot", "api-*"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    // The agent runs with an env file naming api-key; the owner with one naming db-pass.
    let envf = env.path("app.env");
    std::fs::write(&envf, "API=tresor://api-key\n").unwrap();
    let r = as_token(
        &env,
        &d,
        &token,
        &["run", "--env-file", envf.to_str().unwrap(), "--", "true"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dbf = env.path("db.env");
    std::fs::write(&dbf, "DB=tresor://db-pass\n").unwrap();
    let r = via(
        &env,
        &d,
        &["run", "--env-file", dbf.to_str().unwrap(), "--", "true"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tpl = env.path("conf.tpl");
    std::fs::write(&tpl, "x={{ tresor://tpl-only }}\n").unwrap();
    let out = env.path("conf.out");
    let r = via(
        &env,
        &d,
        &[
            "inject",
            "-i",
            tpl.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // refs through the CLI and the API agree, and name the glob grant, the file and the
    // agent that read the value.
    let v = json(&via(&env, &d, &["--json", "refs", "api-key"], None));
    let envf_abs = std::fs::canonicalize(&envf).unwrap();
    assert_eq!(
        kinds(&v),
        [
            ("grant".to_owned(), "bot api-*".to_owned()),
            ("env_file".to_owned(), envf_abs.display().to_string()),
        ]
    );
    assert_eq!(v["references"][1]["principal"], "bot");
    assert_eq!(v["readers"][0]["principal"], "bot");
    assert_eq!(v["readers"][0]["reads"], 1);
    let (status, api) = http(&d, "GET", "/v1/secrets/api-key/references", "");
    assert_eq!(status, 200, "{api}");
    assert_eq!(api, v);
    let r = via(&env, &d, &["refs", "api-key"], None);
    assert!(r.out().starts_with("KIND"), "{}", r.out());
    assert!(r.out().contains("bot api-*"), "{}", r.out());

    // rm refuses, lists everything, and deletes nothing.
    let r = via(&env, &d, &["rm", "api-key"], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("bot api-*"), "{}", r.stderr);
    assert!(r.stderr.contains("env file  [DIR]"), "{}", r.stderr);
    assert!(r.stderr.contains("app.env"), "{}", r.stderr);
    assert!(
        r.stderr.contains("reader    1 read in the last 30 days"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert!(!r.stderr.contains("k-value-1"));
    assert_eq!(via(&env, &d, &["show", "api-key"], None).code, 0);
    // The API's 409 carries the references.
    let (status, body) = http(&d, "DELETE", "/v1/secrets/db-pass", "");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let dbf_abs = std::fs::canonicalize(&dbf).unwrap();
    assert!(
        body["error"]["references"][0]
            .as_str()
            .unwrap()
            .contains(&dbf_abs.display().to_string()),
        "{body}"
    );
    let r = via(&env, &d, &["rm", "tpl-only"], None);
    assert_eq!(r.code, 7, "a template reference blocks too: {}", r.stderr);
    assert!(r.stderr.contains("template"), "{}", r.stderr);

    // --force deletes and says what it broke.
    let r = via(&env, &d, &["rm", "--force", "api-key"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("--force broke 2 reference(s)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("grant bot api-*"), "{}", r.stderr);
    assert_eq!(via(&env, &d, &["show", "api-key"], None).code, 3);
    let v = json(&via(
        &env,
        &d,
        &["--json", "rm", "--force", "db-pass"],
        None,
    ));
    assert_eq!(v["deleted"], "db-pass");
    assert_eq!(v["broken"].as_array().unwrap().len(), 1);
    // An unreferenced secret goes at once.
    assert_eq!(via(&env, &d, &["rm", "free"], None).code, 0);
    // Agents may not list references.
    let r = as_token(&env, &d, &token, &["refs", "tpl-only"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
}

#[test]
fn apply_manifests_are_references_in_direct_mode_too() {
    let env = Env::new();
    let m = env.path("tresor.toml");
    std::fs::write(
        &m,
        "[[secret]]\nname = \"svc-token\"\nvalue = \"env:SVC\"\n",
    )
    .unwrap();
    let mut c = env.cmd();
    c.env("SVC", "svc-value-1")
        .arg("--store")
        .arg(&env.store)
        .arg("--passphrase-file")
        .arg(&env.pass)
        .args(["apply", "-f", m.to_str().unwrap()]);
    let r = env.finish(c, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json(&env.run(&["--json", "refs", "svc-token"], None));
    let abs = std::fs::canonicalize(&m).unwrap();
    assert_eq!(
        kinds(&v),
        [("manifest".to_owned(), abs.display().to_string())]
    );
    // A rekey re-seals the references under the new key: they survive it.
    let r = env.run(&["rekey"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = env.run(&["rm", "svc-token"], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("manifest"), "{}", r.stderr);
    let r = env.run(&["rm", "--force", "svc-token"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("manifest"), "{}", r.stderr);
}

#[test]
fn a_grant_matching_nothing_warns() {
    let env = Env::new();
    env.set("slack-bot-token", b"xoxb-1", &[]);
    let d = start(&env, true);
    agent(&env, &d, "bot");
    let r = via(
        &env,
        &d,
        &["principal", "grant", "bot", "slack-bot-tokn"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: the pattern \"slack-bot-tokn\" matches no secret (yet)"),
        "{}",
        r.stderr
    );
    let r = via(&env, &d, &["principal", "grant", "bot", "slack-*"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    // A grant limited to a scope where nothing matches warns too, naming the scope.
    let r = via(
        &env,
        &d,
        &[
            "principal",
            "grant",
            "bot",
            "slack-*",
            "--scope",
            "team:ops",
        ],
        None,
    );
    assert!(
        r.stderr.contains("matches no secret in team:ops"),
        "{}",
        r.stderr
    );
    // The API carries it as `warnings`.
    let (status, body) = http(
        &d,
        "PUT",
        "/v1/principals/bot",
        r#"{"op":"grant","pattern":"nothing-like-this"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("matches no secret"),
        "{body}"
    );
    let (_, body) = http(
        &d,
        "PUT",
        "/v1/principals/bot",
        r#"{"op":"grant","pattern":"slack-bot-token"}"#,
    );
    assert!(body.get("warnings").is_none(), "{body}");
}

#[test]
fn compare_and_record_over_the_api_are_guarded() {
    let env = Env::new();
    env.set("api-key", b"k-value-1", &[]);
    let d = start(&env, true);
    let token = agent(&env, &d, "bot");
    assert_eq!(
        via(&env, &d, &["principal", "grant", "bot", "api-key"], None).code,
        0
    );
    let (status, v) = http(
        &d,
        "POST",
        "/v1/secrets/api-key/compare",
        r#"{"value":"k-value-1"}"#,
    );
    assert_eq!((status, &v["same"]), (200, &Value::Bool(true)), "{v}");
    let (_, v) = http(
        &d,
        "POST",
        "/v1/secrets/api-key/compare",
        r#"{"value":"guess"}"#,
    );
    assert_eq!(v["same"], false);
    // An agent may read the value but not write it: no comparison oracle, and the denial is
    // audited.
    let (status, v) = http_as(
        &d,
        Some(&token),
        "POST",
        "/v1/secrets/api-key/compare",
        r#"{"value":"guess"}"#,
    );
    assert_eq!(status, 403, "{v}");
    let r = via(&env, &d, &["--json", "audit", "--outcome", "denied"], None);
    assert!(r.out().contains("api-key"), "{}", r.out());
    // Grants are not recorded by clients; an agent records a file it resolved.
    let (status, _) = http_as(
        &d,
        Some(&token),
        "POST",
        "/v1/references",
        r#"{"kind":"grant","path":"/x","secrets":[{"name":"api-key"}]}"#,
    );
    assert_eq!(status, 400);
    let body = r#"{"kind":"env_file","path":"/srv/app/.env","secrets":[{"name":"api-key"}]}"#;
    let (status, v) = http_as(&d, Some(&token), "POST", "/v1/references", body);
    assert_eq!((status, &v["recorded"]), (200, &Value::from(1)), "{v}");
    // Seen again within the hour: not written again.
    let (_, v) = http_as(&d, Some(&token), "POST", "/v1/references", body);
    assert_eq!(v["recorded"], 0);
    let v = json(&via(&env, &d, &["--json", "refs", "api-key"], None));
    assert!(kinds(&v).contains(&("env_file".to_owned(), "/srv/app/.env".to_owned())));
}
