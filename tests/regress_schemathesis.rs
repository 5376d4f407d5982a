//! Requests that schemathesis generated from `openapi.json` — valid per the schema — and the
//! daemon refused: a `check` of a name too long to exist answered 400 instead of naming it
//! missing, and an `env` asking for the same secret twice under one variable answered 400.

#![allow(clippy::unwrap_used)]
#[path = "daemon_common/mod.rs"]
mod common;

use common::{TestDaemon, put, raw, request, status_of};

#[test]
fn check_names_a_name_that_cannot_exist_missing() {
    let d = TestDaemon::start(|s| put(s, "a", "1"));
    let long = "x".repeat(192);
    let body = format!(r#"{{"required":["a","{long}","{long}#f"]}}"#);
    let answer = raw(&d.socket, &request("POST", "/v1/check", body.as_bytes()));
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains(r#""present":["a"]"#), "{answer}");
    assert!(
        answer.contains(&format!(r#""missing":["{long}","{long}#f"]"#)),
        "{answer}"
    );
}

#[test]
fn env_reads_the_same_secret_asked_twice_once() {
    let d = TestDaemon::start(|s| put(s, "api-key", "v1"));
    let body = br#"{"secrets":["api-key","api-key",{"name":"api-key"}]}"#;
    let answer = raw(&d.socket, &request("POST", "/v1/env", body));
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains(r#""API_KEY":"v1""#), "{answer}");
    put_other(&d);
    let body = br#"{"secrets":["api-key","other=API_KEY"]}"#;
    let answer = raw(&d.socket, &request("POST", "/v1/env", body));
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("different secrets"), "{answer}");
}

fn put_other(d: &TestDaemon) {
    use tresor::Api;
    d.client()
        .set(
            "other",
            &tresor::SetRequest {
                value: Some("v2".into()),
                ..Default::default()
            },
        )
        .unwrap();
}
