//! `tresor mcp` speaks MCP on stdio: raw JSON-RPC lines in, the three tools out. (The full
//! behaviour, against a real daemon and through the official Python SDK, is tested in
//! tests/mcp/test_mcp.py, run by scripts/test.sh.)
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Sends `requests` one per line, closes stdin, and returns the responses that carry an id.
fn exchange(requests: &[Value]) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .arg("mcp")
        .env("TRESOR_STORE", dir.path().join("none.tresor"))
        .env("TRESOR_SOCKET", dir.path().join("none.sock"))
        .env_remove("TRESOR_PASSPHRASE")
        .env_remove("TRESOR_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines();
    let mut replies = Vec::new();
    for r in requests {
        writeln!(stdin, "{r}").unwrap();
        stdin.flush().unwrap();
        if r.get("id").is_some() {
            let line = lines.next().unwrap().unwrap();
            replies.push(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "tresor mcp failed");
    (replies, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn initialize_then_the_three_tools() {
    let (replies, _) = exchange(&[
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}
        }}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "check_secrets", "arguments": {"required": ["github-pat"]}
        }}),
    ]);
    let init = &replies[0]["result"];
    assert_eq!(init["serverInfo"]["name"], "tresor");
    assert!(init["capabilities"]["tools"].is_object());
    let mut names: Vec<&str> = replies[1]["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["check_secrets", "list_secrets", "run_with_secrets"]);
    // No store and no daemon: a tool-level error with a stable code, not a crash.
    let call = &replies[2]["result"];
    assert_eq!(call["isError"], true);
    assert_eq!(call["structuredContent"]["error"]["code"], "not_found");
}
