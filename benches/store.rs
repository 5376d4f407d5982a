//! Store benchmarks for the budgets of SPEC §10.
//!
//! ```text
//! cargo bench --no-default-features --features test-util --bench store
//! TRESOR_BENCH_SIZES=1000 cargo bench ... --bench store -- read_decrypt   # one group, 1k only
//! TRESOR_BENCH_1M=1 cargo bench ... --bench store -- open_unlock         # adds 1M secrets
//! TRESOR_BENCH_SIZES=100000 TRESOR_BENCH_SPIN=20 cargo bench ... --bench store -- none
//!     # then `perf record -g -p PID` (the pid is printed) on 20 s of decrypt-path reads
//! ```
//!
//! Stores are built with `set_many` and the insecure KDF, so `open_unlock` measures everything
//! an unlock does except Argon2id; the `kdf` group measures Argon2id at the floor (m = 64 MiB,
//! t = 3, p = 1) separately. Report open + unlock as "KDF time + X".
//!
//! Before the criterion groups, a report prints what criterion does not measure well: the bulk
//! import rate, file bytes per secret after compaction (with a per-table breakdown), audit bytes
//! per record, and decrypt-path read percentiles.
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use tresor::KdfParams;
use tresor::testing::derive;
use tresor::{Actor, KdfChoice, Passphrase, SecretBytes, SetRequest, Store, UnlockSecret};

const PASS: &str = "bench passphrase";
/// About 150 bytes of secret, as the budgets assume.
const VALUE_LEN: usize = 150;

fn sizes() -> Vec<usize> {
    let mut v: Vec<usize> = std::env::var("TRESOR_BENCH_SIZES").ok().map_or_else(
        || vec![1_000, 100_000],
        |s| s.split(',').map(|n| n.trim().parse().unwrap()).collect(),
    );
    if std::env::var_os("TRESOR_BENCH_1M").is_some() {
        v.push(1_000_000);
    }
    v
}

/// The acting owner, built once: `Actor::direct_owner()` reads `/etc/passwd`, which is not
/// what a read costs.
fn owner() -> &'static Actor {
    static OWNER: std::sync::OnceLock<Actor> = std::sync::OnceLock::new();
    OWNER.get_or_init(Actor::direct_owner)
}

fn name(i: usize) -> String {
    format!("svc-{:03}/api-token-{i:07}", i % 97)
}

fn value(i: usize) -> SecretBytes {
    let mut v = format!("tok_{i:010}_").into_bytes();
    while v.len() < VALUE_LEN {
        v.push(b'a' + (v.len() * 7 + i) as u8 % 26);
    }
    SecretBytes::new(v)
}

/// Builds a store of `n` secrets in `dir` with bulk imports of up to 100k (one transaction
/// each, as `tresor import` of one file); returns its path and the import rate in secrets per
/// second. Rows keyed by name hash spread over every leaf, so each import transaction rewrites
/// most of the table: fewer, larger imports are faster per secret.
fn build(dir: &Path, n: usize) -> (PathBuf, f64) {
    let path = dir.join(format!("bench-{n}.tresor"));
    let store = Store::create(
        &path,
        &Passphrase::from(PASS),
        &KdfChoice::Insecure,
        owner(),
    )
    .unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + 100_000).min(n);
        let items = (i..end)
            .map(|j| {
                (
                    name(j),
                    SetRequest {
                        value: Some(value(j)),
                        ..SetRequest::default()
                    },
                )
            })
            .collect();
        store.set_many(owner(), items).unwrap();
        i = end;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (path, rate)
}

fn unlock(path: &Path) -> Store {
    Store::open(path)
        .unwrap()
        .unlock(&UnlockSecret::Passphrase(Passphrase::from(PASS)), owner())
        .unwrap()
}

const TABLES: [&str; 9] = [
    "meta",
    "keyslots",
    "secrets",
    "values",
    "fingerprints",
    "refs",
    "principals",
    "audit",
    "staging",
];

/// The tables that hold one or more rows per secret: the file's bytes per secret, audit apart.
const PER_SECRET: [&str; 4] = ["secrets", "values", "fingerprints", "refs"];

/// Per-table (rows, stored bytes, leaf+branch page bytes) read with redb directly.
fn table_stats(path: &Path) -> Vec<(&'static str, u64, u64, u64)> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let mut out = Vec::new();
    for t in TABLES {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(t);
        // The key types differ per table; untyped stats need the raw handle.
        // Tables made on first use (fingerprints, refs) may be absent.
        let Ok(h) = txn.open_untyped_table(def) else {
            continue;
        };
        let s = h.stats().unwrap();
        out.push((
            t,
            h.len().unwrap(),
            s.stored_bytes(),
            (s.leaf_pages() + s.branch_pages()) * 4096,
        ));
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The figures criterion does not produce: import rate, file size, audit size, read p50/p99.
fn report(dir: &Path) {
    for n in sizes() {
        if n > 100_000 {
            continue;
        }
        let (path, rate) = build(dir, n);
        let mut store = unlock(&path);
        store.compact().unwrap();
        drop(store);
        let file = std::fs::metadata(&path).unwrap().len();
        println!("report n={n}: set_many import {rate:.0} secrets/s");
        println!(
            "report n={n}: file {file} bytes after compaction = {:.0} bytes/secret (audit records of the import included)",
            file as f64 / n as f64
        );
        let stats = table_stats(&path);
        let per_secret: u64 = stats
            .iter()
            .filter(|(t, ..)| PER_SECRET.contains(t))
            .map(|(.., pages)| pages)
            .sum();
        println!(
            "report n={n}: per-secret tables ({}) {:.0} page bytes/secret",
            PER_SECRET.join(" + "),
            per_secret as f64 / n as f64
        );
        for (t, rows, stored, pages) in stats {
            if rows > 0 {
                println!(
                    "report n={n}:   {t:<10} {rows:>8} rows  {:>6.1} stored B/row  {:>6.1} page B/row",
                    stored as f64 / rows as f64,
                    pages as f64 / rows as f64
                );
            }
        }

        // Audit bytes per record: grow the log by audited reads, compact, compare.
        let mut store = unlock(&path);
        let reads = 2_000.min(n);
        for i in 0..reads {
            store.get_value(owner(), &name(i), None, None).unwrap();
        }
        store.compact().unwrap();
        drop(store);
        let grown = std::fs::metadata(&path).unwrap().len();
        println!(
            "report n={n}: {reads} audited reads grew the compacted file by {:.0} bytes/read",
            (grown as f64 - file as f64) / reads as f64
        );

        // Decrypt-path percentiles over random names, resolving the scope (user, then org)
        // and with the scope given. Each pass reads the same 20k names: the first right after
        // unlock (most leaves not yet in redb's cache), the later ones over leaves the first
        // pass loaded; the third resolves again, to tell the cache apart from the scope.
        let store = unlock(&path);
        for (pass, scope) in [None, Some(tresor::Scope::Org), None]
            .into_iter()
            .enumerate()
        {
            let mut lat = Vec::with_capacity(20_000);
            let mut x = 0x9e37_79b9_u64;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let nm = name((x % n as u64) as usize);
                let t = Instant::now();
                black_box(
                    store
                        .get_value_unaudited(owner(), &nm, scope.as_ref(), None)
                        .unwrap(),
                );
                lat.push(t.elapsed());
            }
            lat.sort();
            println!(
                "report n={n}: decrypt-path read (scope {}{}) p50 {:?} p99 {:?}",
                scope
                    .as_ref()
                    .map_or("resolved".to_owned(), ToString::to_string),
                if pass == 2 { ", same names again" } else { "" },
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            );
        }
        // `TRESOR_BENCH_SPIN=SECS`: keep reading (scope resolved) for SECS seconds after a
        // pause, for `perf record -p PID` to see where a decrypt-path read goes.
        if let Some(secs) = std::env::var("TRESOR_BENCH_SPIN")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            println!(
                "report n={n}: spinning for {secs} s, pid {}",
                std::process::id()
            );
            std::thread::sleep(Duration::from_secs(2));
            let end = Instant::now() + Duration::from_secs(secs);
            let mut x = 0x9e37_79b9_u64;
            while Instant::now() < end {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let nm = name((x % n as u64) as usize);
                black_box(store.get_value_unaudited(owner(), &nm, None, None).unwrap());
            }
        }
        drop(store);
        std::fs::remove_file(&path).unwrap();
    }
}

fn benches(c: &mut Criterion) {
    let dir =
        tempfile::tempdir_in(std::env::var_os("TRESOR_BENCH_DIR").unwrap_or(".".into())).unwrap();
    if std::env::var_os("TRESOR_BENCH_NO_REPORT").is_none() {
        report(dir.path());
    }

    let mut g = c.benchmark_group("kdf");
    g.sample_size(10);
    g.bench_function("argon2id_m64MiB_t3_p1", |b| {
        b.iter(|| black_box(derive(b"passphrase", b"0123456789abcdef", &KdfParams::MIN)));
    });
    g.finish();

    for n in sizes() {
        let (path, _) = build(dir.path(), n);
        {
            let mut s = unlock(&path);
            s.compact().unwrap();
        }

        let mut g = c.benchmark_group("open_unlock");
        g.sample_size(10);
        g.bench_function(BenchmarkId::new("insecure_kdf", n), |b| {
            b.iter(|| drop(black_box(unlock(&path))));
        });
        g.finish();
        if n > 100_000 {
            std::fs::remove_file(&path).unwrap();
            continue;
        }

        let store = unlock(&path);
        let mut g = c.benchmark_group("read_decrypt");
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("get_value_unaudited", n), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(
                    store
                        .get_value_unaudited(owner(), &name(i), None, None)
                        .unwrap(),
                )
            });
        });
        g.finish();

        let mut g = c.benchmark_group("audited");
        g.sample_size(20);
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("get_value", n), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                black_box(store.get_value(owner(), &name(i), None, None).unwrap())
            });
        });
        g.bench_function(BenchmarkId::new("set_durable", n), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                let req = SetRequest {
                    value: Some(value(i + 1)),
                    ..SetRequest::default()
                };
                black_box(store.set(owner(), &name(i), req).unwrap())
            });
        });
        g.finish();
        drop(store);
        std::fs::remove_file(&path).unwrap();
    }
}

criterion_group!(store, benches);
criterion_main!(store);
