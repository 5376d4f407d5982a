//! After a barrage of hostile input — malformed and truncated JSON, oversized bodies, unknown
//! routes and methods, hostile names, invalid UTF-8, non-HTTP bytes, clients that hang up
//! mid-request — a child `tresord` is back to its baseline of open files and its memory has
//! not grown with the number of bad requests (SPEC §9: nothing a client sends can make the
//! daemon leak or fall over).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "resource test passphrase\n").unwrap();
    // tresord refuses a passphrase file that group or others may read (SPEC §4.6).
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&pass, private).unwrap();
    let socket = dir.path().join("run/tresord.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tresord"))
        .arg("--store")
        .arg(dir.path().join("store.tresor"))
        .arg("--socket")
        .arg(&socket)
        .args(["--init", "--insecure-kdf", "--passphrase-file"])
        .arg(&pass)
        .env("TRESOR_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while UnixStream::connect(&socket).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "tresord exited early");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Daemon {
        child,
        socket,
        _dir: dir,
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `bytes`, half-closes, and reads whatever comes back (or nothing).
fn send(socket: &Path, bytes: &[u8]) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

fn req(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn barrage(socket: &Path) {
    let big = vec![b'a'; 2 * 1024 * 1024];
    let hostile: Vec<Vec<u8>> = vec![
        req("PUT", "/v1/secrets/x", b"{\"value\":"),
        req("PUT", "/v1/secrets/x", b"{\"value\":\"v\",\"colour\":1}"),
        req("PUT", "/v1/secrets/x", b"{\"value\":\"\xff\xfe\"}"),
        req("PUT", "/v1/secrets/x", &big),
        req("GET", "/v1/secrets/..%2Fx/value", b""),
        req("GET", "/v1/secrets/a%00b", b""),
        req("GET", "/v1/secrets/%E2%80%AEevil", b""),
        req("GET", &format!("/v1/secrets/{}", "n".repeat(4096)), b""),
        req("GET", "/v1/secrets/%FF", b""),
        req("BREW", "/v1/status", b""),
        req("GET", "/v1/nowhere", b""),
        b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n".to_vec(),
        b"PUT /v1/secrets/x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"val".to_vec(),
        b"GET /v1/status HTTP/1.1\r\nHost: t\r\n".to_vec(),
    ];
    for body in &hostile {
        send(socket, body);
    }
}

#[test]
fn hostile_input_leaves_files_and_memory_at_baseline() {
    let mut d = start();
    let pid = d.child.id();
    // Warm up: the first requests allocate the runtime's and allocator's steady state.
    barrage(&d.socket);
    send(&d.socket, &req("GET", "/v1/status", b""));
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);

    for _ in 0..30 {
        barrage(&d.socket);
    }
    // Connections the daemon closes are gone from its fd table once it has noticed; give it
    // a moment, then compare.
    let t0 = Instant::now();
    while open_fds(pid) > fds_before && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fds_after = open_fds(pid);
    let rss_after = rss_kib(pid);
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
    assert!(
        fds_after <= fds_before,
        "open files grew from {fds_before} to {fds_after} after 420 hostile requests"
    );
    // 420 requests, 30 of them 2 MiB bodies: a leak of even one body per request would show as
    // tens of MiB. Allow allocator noise.
    assert!(
        rss_after <= rss_before + 4 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB after 420 hostile requests"
    );
    // And it still answers.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&req("GET", "/v1/status", b"")).unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}
