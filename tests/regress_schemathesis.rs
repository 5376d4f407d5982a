//! Requests that schemathesis generated from `openapi.json` — valid per the schema — and the
//! daemon refused (an `env` asking for the same secret twice under one variable answered 400),
//! and where the document was made precise instead (`check` bounds a name to 128 bytes).

#![allow(clippy::unwrap_used)]
#[path = "daemon_common/mod.rs"]
mod common;

use common::{TestDaemon, put, raw, request, status_of};

#[test]
fn check_refuses_a_name_too_long_and_names_a_valid_one_missing() {
    let d = TestDaemon::start(|s| put(s, "a", "1"));
    // 128 bytes is the longest name: valid, so merely missing (with or without a field).
    let longest = "x".repeat(128);
    let body = format!(r#"{{"required":["a","{longest}","{longest}#f"]}}"#);
    let answer = raw(&d.socket, &request("POST", "/v1/check", body.as_bytes()));
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains(r#""present":["a"]"#), "{answer}");
    assert!(
        answer.contains(&format!(r#""missing":["{longest}","{longest}#f"]"#)),
        "{answer}"
    );
    // 129 bytes cannot be a name: the request is refused, naming the limit (openapi.json
    // bounds the name part to 128, so schemathesis no longer generates it as valid).
    let long = "x".repeat(129);
    let body = format!(r#"{{"required":["a","{long}#f"]}}"#);
    let answer = raw(&d.socket, &request("POST", "/v1/check", body.as_bytes()));
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("the limit is 128"), "{answer}");
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
