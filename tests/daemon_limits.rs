//! Bad input and limits (SPEC §9): malformed and oversized bodies, unknown fields, routes and
//! methods, hostile names, slow clients, idle lock. Every answer is a 4xx with the JSON error
//! body or a closed connection, and the daemon keeps serving. Timeouts run on a paused clock.
#![allow(clippy::unwrap_used)]

// The daemon tests keep their helpers apart from the store tests' `tests/common`.
#[path = "daemon_common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::Duration;
use tresor::Api;

use common::{TestDaemon, put, raw, request, status_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn still_serving(d: &TestDaemon) {
    assert!(!d.client().status().unwrap().locked);
}

#[test]
fn malformed_json_and_unknown_fields_are_400() {
    let d = TestDaemon::start(|s| put(s, "k", "v"));
    let bodies: [&[u8]; 8] = [
        b"{\"value\":",
        b"not json",
        b"",
        b"[1,2]",
        b"{\"value\":\"v\",\"colour\":\"red\"}",
        b"{\"value\":12345}",
        b"{\"value\":\"\xff\xfe\"}",
        b"{\"value\":\"a\",\"value_base64\":\"YQ==\"}",
    ];
    for body in bodies {
        let answer = raw(&d.socket, &request("PUT", "/v1/secrets/x", body));
        assert_eq!(
            status_of(&answer),
            400,
            "{}: {answer}",
            String::from_utf8_lossy(body)
        );
        assert!(answer.contains("\"code\":\"invalid_argument\""), "{answer}");
        assert!(!answer.contains("12345"), "a value was echoed: {answer}");
    }
    let answer = raw(
        &d.socket,
        &request("POST", "/v1/check", br#"{"required":[],"extra":1}"#),
    );
    assert!(answer.contains("unknown field `extra`"), "{answer}");
    still_serving(&d);
}

#[test]
fn truncated_body_closes_or_fails() {
    let d = TestDaemon::start(|_| {});
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PUT /v1/secrets/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"val")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = status_of(&out);
    assert!(code == 0 || (400..500).contains(&code), "{out}");
    still_serving(&d);
}

#[test]
fn bodies_over_one_mib_are_413() {
    let d = TestDaemon::start(|_| {});
    // Declared too large: refused before the body is read.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"PUT /v1/secrets/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n{\"value\":\"",
    )
    .unwrap();
    let mut out = vec![0u8; 4096];
    let n = s.read(&mut out).unwrap();
    let answer = String::from_utf8_lossy(&out[..n]).into_owned();
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // Chunked, no length: refused once 1 MiB has passed.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(
            b"PUT /v1/secrets/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..32 {
            if w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .is_err()
                || w.write_all(&chunk).is_err()
                || w.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(status_of(&answer), 413, "{answer}");
    writer.join().unwrap();
    still_serving(&d);
}

#[test]
fn unknown_routes_and_methods_get_json_errors() {
    let d = TestDaemon::start(|_| {});
    for (m, p, want) in [
        ("GET", "/v2/status", 404),
        ("GET", "/", 404),
        ("GET", "/v1/secrets/a/b/c/d", 404),
        ("DELETE", "/v1/status", 405),
        ("PATCH", "/v1/secrets/x", 405),
        ("GET", "/v1/unlock", 405),
    ] {
        let answer = raw(&d.socket, &request(m, p, b""));
        assert_eq!(status_of(&answer), want, "{m} {p}: {answer}");
        assert!(answer.contains("{\"error\":{\"code\":"), "{answer}");
    }
    let answer = raw(
        &d.socket,
        b"GET /v1/status HTTP/1.1\r\nHost: t\r\ntresor-api: 2\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 400, "{answer}");
    still_serving(&d);
}

#[test]
fn hostile_names_are_refused() {
    let d = TestDaemon::start(|s| put(s, "k", "v"));
    let long = "a".repeat(4096);
    let paths = [
        "/v1/secrets/..%2Fx/value".to_owned(),
        "/v1/secrets/../x".to_owned(),
        "/v1/secrets/%00/value".to_owned(),
        "/v1/secrets/x%00y".to_owned(),
        "/v1/secrets/%E2%80%AEevil/value".to_owned(),
        "/v1/secrets/%FF%FE/value".to_owned(),
        "/v1/secrets/%ZZ".to_owned(),
        format!("/v1/secrets/{long}/value"),
        format!("/v1/principals/{long}"),
        "/v1/secrets/k/value?version=-1".to_owned(),
        "/v1/secrets/k/value?version=99999999999999999999999".to_owned(),
    ];
    for p in &paths {
        for m in ["GET", "PUT", "DELETE"] {
            let answer = raw(&d.socket, &request(m, p, br#"{"value":"v"}"#));
            let code = status_of(&answer);
            assert!(code == 0 || (400..500).contains(&code), "{m} {p}: {answer}");
        }
    }
    // Bytes that are not HTTP at all, or not UTF-8 in the request line and headers.
    for junk in [
        &b"\xff\xfe\xfd\r\n\r\n"[..],
        b"GET /v1/secrets/\xff HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/status HTTP/1.1\r\nHost: \xff\r\nAuthorization: Bearer \xfe\r\n\r\n",
        b"GET /v1/status HTTP/9.9\r\n\r\n",
    ] {
        let answer = raw(&d.socket, junk);
        let code = status_of(&answer);
        assert!(code == 0 || (400..500).contains(&code), "{answer}");
    }
    still_serving(&d);
    assert!(d.client().audit_verify().unwrap().ok);
}

/// An in-process daemon on the test's own (paused-clock) runtime.
fn serve_paused(
    idle: Option<Duration>,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    tokio::sync::oneshot::Sender<()>,
) {
    let (dir, _path, store) = common::new_store();
    let socket = dir.path().join("run/tresord.sock");
    let mut bound = tresor::daemon::bind(&socket, None).unwrap();
    let listener = tokio::net::UnixListener::from_std(bound.take_listener().unwrap()).unwrap();
    let mut config = tresor::daemon::Config::new(store);
    config.idle_lock = idle;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _bound = bound;
        tresor::daemon::run(listener, config, async {
            let _ = rx.await;
        })
        .await
    });
    (dir, socket, tx)
}

/// Reads until the daemon closes the connection; returns the (virtual) time that took.
async fn time_to_close(mut s: tokio::net::UnixStream, trickle: &'static [u8]) -> Duration {
    let t0 = tokio::time::Instant::now();
    let (mut r, mut w) = s.split();
    let writer = async {
        for b in trickle {
            if w.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await;
    };
    let reader = async {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf).await;
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn slow_headers_time_out_after_5s() {
    let (_dir, socket, _stop) = serve_paused(None);
    let s = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let took = time_to_close(
        s,
        b"GET /v1/status HTTP/1.1\r\nHost: tresord\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
    )
    .await;
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let c = tresor::AsyncClient::new(&socket);
    assert!(!c.status().await.unwrap().locked);
}

#[tokio::test(start_paused = true)]
async fn slow_bodies_time_out_after_30s() {
    let (_dir, socket, _stop) = serve_paused(None);
    let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
    s.write_all(b"PUT /v1/secrets/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let took = time_to_close(s, &[b'{'; 100]).await;
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(33),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_lock_after_quiet_period() {
    let (_dir, socket, _stop) = serve_paused(Some(Duration::from_secs(60)));
    let c = tresor::AsyncClient::new(&socket);
    assert!(!c.status().await.unwrap().locked);
    for _ in 0..3 {
        // Activity every 45 s keeps it unlocked.
        tokio::time::sleep(Duration::from_secs(45)).await;
        assert!(!c.status().await.unwrap().locked);
    }
    tokio::time::sleep(Duration::from_secs(61)).await;
    let st = c.status().await.unwrap();
    assert!(st.locked, "idle lock did not happen");
    assert!(matches!(
        c.call(tresor::ops::secrets::Show {
            name: "k".into(),
            scope: None
        })
        .await,
        Err(tresor::Error::Locked)
    ));
}

#[test]
fn connections_over_the_cap_wait_for_a_free_slot() {
    let d = TestDaemon::start_with(|_| {}, |c| c.max_connections = 1);
    let hog = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let socket = d.socket.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let c = tresor::Client::new(&socket).unwrap();
        tx.send(c.status().is_ok()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "a second connection was served past the cap"
    );
    drop(hog);
    assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    waiter.join().unwrap();
}
