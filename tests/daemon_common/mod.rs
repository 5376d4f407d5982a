//! Shared test helpers: an in-process daemon on a temp socket, raw HTTP over the socket.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use tresor::daemon::Config;
use tresor::{Actor, KdfChoice, Passphrase, SetRequest, Store};

pub const PASS: &str = "correct horse battery staple";

/// A daemon running in-process on its own runtime thread.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub store_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<tresor::Result<()>>>,
}

/// A new store (insecure KDF) in a temp dir, owned by this process's user.
pub fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tresor");
    let store = Store::create(
        &path,
        &Passphrase::from(PASS),
        &KdfChoice::Insecure,
        &Actor::direct_owner(),
    )
    .unwrap();
    (dir, path, store)
}

/// Adds a secret directly.
pub fn put(store: &Store, name: &str, value: &str) {
    store
        .set(
            &Actor::direct_owner(),
            name,
            SetRequest {
                value: Some(value.into()),
                ..Default::default()
            },
        )
        .unwrap();
}

impl TestDaemon {
    /// Starts a daemon on a fresh, unlocked store; `setup` may fill the store first.
    pub fn start(setup: impl FnOnce(&Store)) -> Self {
        Self::start_with(setup, |_| {})
    }

    /// As `start`, with a config tweak.
    pub fn start_with(setup: impl FnOnce(&Store), tune: impl FnOnce(&mut Config)) -> Self {
        let (dir, store_path, store) = new_store();
        setup(&store);
        let mut config = Config::new(store);
        tune(&mut config);
        Self::serve(dir, store_path, config)
    }

    /// Starts a daemon on a fresh store that is locked.
    pub fn start_locked(setup: impl FnOnce(&Store)) -> Self {
        let (dir, store_path, store) = new_store();
        setup(&store);
        drop(store);
        let locked = Store::open(&store_path).unwrap();
        Self::serve(dir, store_path, Config::new(locked))
    }

    /// Serves `config` on `<dir>/run/tresord.sock`.
    pub fn serve(dir: tempfile::TempDir, store_path: PathBuf, config: Config) -> Self {
        Self::serve_group(dir, store_path, config, None)
    }

    /// Serves `config` on `<dir>/run/tresord.sock`, for a group when given.
    pub fn serve_group(
        dir: tempfile::TempDir,
        store_path: PathBuf,
        config: Config,
        group: Option<u32>,
    ) -> Self {
        let socket = dir.path().join("run/tresord.sock");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sock = socket.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut bound = tresor::daemon::bind(&sock, group)?;
                let listener =
                    tokio::net::UnixListener::from_std(bound.take_listener().unwrap()).unwrap();
                ready_tx.send(()).unwrap();
                let r = tresor::daemon::run(listener, config, async {
                    let _ = rx.await;
                })
                .await;
                drop(bound);
                r
            })
        });
        ready_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        Self {
            dir,
            socket,
            store_path,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A blocking client as this process's user (the store's owner).
    pub fn client(&self) -> tresor::Client {
        tresor::Client::new(&self.socket).unwrap()
    }

    /// Stops the daemon and returns what `run` returned.
    pub fn stop(mut self) -> tresor::Result<()> {
        self.stop.take().map(|s| s.send(()));
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sends raw bytes and returns everything the daemon answers until it closes (or 5 s pass).
pub fn raw(socket: &std::path::Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of a raw HTTP answer (0 when there was none).
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A raw request with `Connection: close`.
pub fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: tresord\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}
