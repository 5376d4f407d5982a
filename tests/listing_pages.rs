//! Listings in pages (SPEC §5, issue 8): `GET /v1/secrets?limit=N&after=CURSOR` answers at most
//! N secrets in listing order with `next` while more remain; following `next` gives exactly
//! the whole listing; bad limits and cursors are refused with what to do.
#![allow(clippy::unwrap_used)]

mod daemon_common;

use daemon_common::{TestDaemon, put, raw, request, status_of};
use tresor::Api;

fn body(answer: &str) -> serde_json::Value {
    let (_, b) = answer.split_once("\r\n\r\n").unwrap();
    // The body may be chunked; the daemon answers with Content-Length for JSON.
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["scope"].as_str().unwrap(),
                m["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn pages_follow_next_to_exactly_the_whole_listing() {
    let d = TestDaemon::start(|s| {
        for i in 0..23 {
            put(s, &format!("svc-{i:02}"), "v");
        }
    });
    let whole = d.client().list(&tresor::ListFilter::default()).unwrap();
    assert_eq!(whole.len(), 23);
    let whole: Vec<String> = whole
        .iter()
        .map(|m| format!("{}/{}", m.scope, m.name))
        .collect();

    let mut got = Vec::new();
    let mut path = "/v1/secrets?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let a = raw(&d.socket, &request("GET", &path, b""));
        assert_eq!(status_of(&a), 200, "{a}");
        let v = body(&a);
        let page = names(&v);
        assert!(page.len() <= 10);
        got.extend(page);
        pages += 1;
        match v.get("next").and_then(|n| n.as_str()) {
            Some(next) => path = format!("/v1/secrets?limit=10&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got, whole, "the pages, in order, are the listing");

    // Without a limit: everything, no cursor.
    let v = body(&raw(&d.socket, &request("GET", "/v1/secrets", b"")));
    assert_eq!(names(&v), whole);
    assert!(v.get("next").is_none());
}

#[test]
fn bad_limits_and_cursors_are_refused() {
    let d = TestDaemon::start(|s| put(s, "a", "v"));
    for path in [
        "/v1/secrets?limit=0",
        "/v1/secrets?limit=10001",
        "/v1/secrets?limit=5&after=not-a-cursor!",
        "/v1/secrets?after=Zm9v",
    ] {
        let a = raw(&d.socket, &request("GET", path, b""));
        assert_eq!(status_of(&a), 400, "{path}: {a}");
        let msg = body(&a)["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            msg.contains("limit") || msg.contains("next"),
            "{path}: {msg}"
        );
    }
}
