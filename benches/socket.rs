//! Socket throughput of `tresord`: audited value reads at 1, 8 and 16 concurrent clients,
//! unaudited requests (status, show, list) at 16, the same reads with group commit off (one
//! durable commit per read), and a whole `get` process (spawn, connect, one request, exit).
//!
//! A plain `harness = false` main rather than criterion's sampler: what matters here is
//! throughput and tail latency under concurrency, which criterion does not model.
//!
//! ```text
//! cargo bench --bench socket                 # all scenarios, 2 s each
//! TRESOR_BENCH_SECS=5 cargo bench --bench socket
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tresor::Api;
use tresor::ops::secrets::{GetValue, List, Show};

use tresor::daemon::Config;
use tresor::{Actor, AsyncClient, KdfChoice, Passphrase, SetRequest, Store};

const SECRETS: usize = 100;

struct Daemon {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(std::thread::JoinHandle::join);
    }
}

fn daemon(group_commit: bool) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tresor");
    let owner = Actor::direct_owner();
    let store = Store::create(
        &path,
        &Passphrase::from("bench"),
        &KdfChoice::Insecure,
        &owner,
    )
    .unwrap();
    let items = (0..SECRETS)
        .map(|i| {
            let req = SetRequest {
                value: Some(
                    format!("value-{i:04}-xxxxxxxxxxxxxxxxxxxxxxxx")
                        .as_str()
                        .into(),
                ),
                ..Default::default()
            };
            (format!("secret-{i:04}"), req)
        })
        .collect();
    store.set_many(&owner, items).unwrap();
    let socket = dir.path().join("run/tresord.sock");
    let mut config = Config::new(store);
    config.group_commit = group_commit;
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
            let mut bound = tresor::daemon::bind(&sock, None).unwrap();
            let l = tokio::net::UnixListener::from_std(bound.take_listener().unwrap()).unwrap();
            ready_tx.send(()).unwrap();
            tresor::daemon::run(l, config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
    });
    ready_rx.recv().unwrap();
    Daemon {
        stop: Some(stop),
        thread: Some(thread),
        socket,
        _dir: dir,
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Status,
    Show,
    List,
}

async fn one(c: &AsyncClient, op: Op, i: usize) {
    let name = format!("secret-{:04}", i % SECRETS);
    match op {
        Op::Read => drop(
            c.call(GetValue {
                name,
                ..GetValue::default()
            })
            .await
            .unwrap(),
        ),
        Op::Status => drop(c.status().await.unwrap()),
        Op::Show => drop(c.call(Show { name, scope: None }).await.unwrap()),
        Op::List => drop(c.call(List::default()).await.unwrap()),
    }
}

fn load(socket: &Path, op: Op, clients: usize, secs: f64) -> (f64, Duration, Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let warm = Duration::from_millis(300);
        let run = Duration::from_secs_f64(secs);
        let start = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|t| {
                let c = Arc::new(AsyncClient::new(socket));
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = t * 7;
                    loop {
                        let t0 = Instant::now();
                        one(&c, op, i).await;
                        i += 1;
                        let now = Instant::now();
                        if now - start > warm + run {
                            return lat;
                        }
                        if now - start > warm {
                            lat.push(now - t0);
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        (all.len() as f64 / secs, pct(0.50), pct(0.99))
    })
}

fn report(what: &str, clients: usize, (rps, p50, p99): (f64, Duration, Duration)) {
    println!(
        "{what:<38} {clients:>3} clients {rps:>9.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

/// A whole `get` process: spawn this binary in client mode, connect, read, print, exit.
fn get_process(socket: &Path, n: usize) -> Duration {
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        let out = std::process::Command::new(&exe)
            .env("TRESOR_BENCH_GET", socket)
            .output()
            .unwrap();
        assert!(out.status.success() && out.stdout.starts_with(b"value-"));
    }
    t0.elapsed() / u32::try_from(n).unwrap()
}

fn main() {
    if let Ok(socket) = std::env::var("TRESOR_BENCH_GET") {
        use std::io::Write;
        let c = tresor::Client::new(socket).unwrap();
        let v = c.get_value("secret-0001", None, None).unwrap();
        std::io::stdout().write_all(v.value.expose()).unwrap();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = std::env::var("TRESOR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let d = daemon(true);
    for clients in [1, 8, 16] {
        report(
            "audited reads (group commit)",
            clients,
            load(&d.socket, Op::Read, clients, secs),
        );
    }
    report(
        "status (unaudited)",
        16,
        load(&d.socket, Op::Status, 16, secs),
    );
    report(
        "show / metadata (unaudited)",
        16,
        load(&d.socket, Op::Show, 16, secs),
    );
    report(
        &format!("list of {SECRETS} (unaudited)"),
        16,
        load(&d.socket, Op::List, 16, secs),
    );
    let mean = get_process(&d.socket, 200);
    println!(
        "{:<38} whole process mean {:.3} ms (200 runs)",
        "get process (spawn+connect+read)",
        mean.as_secs_f64() * 1e3
    );
    drop(d);
    let d = daemon(false);
    for clients in [1, 16] {
        report(
            "audited reads, one commit per read",
            clients,
            load(&d.socket, Op::Read, clients, secs),
        );
    }
}
