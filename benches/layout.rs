//! The decrypt path of two record layouts at 100k secrets, on raw redb tables sealed with the
//! store's own envelope (issue 8: "decrypt path ≤ 5 µs p50, ≤ 320 bytes per 150-byte secret").
//!
//! ```text
//! cargo bench --no-default-features --features test-util --bench layout
//! TRESOR_BENCH_SIZES=1000,100000 cargo bench ... --bench layout
//! ```
//!
//! It measures a layout before it is built into the store, so that a format change is chosen
//! on figures. Rows have the payload sizes that `benches/store.rs` reports for today's file
//! (150-byte values, names like `svc-012/api-token-0001234`):
//!
//! - **v1 (today)**: `secrets` (name hash → sealed metadata, 84-byte payload) and `values`
//!   (name hash ‖ version → sealed value, 154-byte payload). A read without `--scope` probes
//!   `user:<caller>` (a miss), then `org`: two walks of `secrets` and an open, then a walk of
//!   `values` and an open. (The `fingerprints` table, one sealed row per secret, is not read
//!   on this path; `benches/store.rs` reports its bytes.)
//! - **one row (proposed)**: `secrets` (name hash → sealed metadata ‖ current value, 237-byte
//!   payload); older versions stay in `values`. A read: two walks of `secrets`, one open.
//!
//! Both files are filled in key order (as `Store::compact` repacks them) and opened with the
//! store's page cache (`DEFAULT_CACHE_BYTES`). A warm-up pass of random reads precedes each
//! measured pass. Reads share one read transaction (as a daemon's batch does), or each begins
//! its own and opens the tables it needs (as a lone `Store::get_value` does). What the store adds on top (policy, postcard decode, building the
//! `SecretValue`) is the difference between `benches/store.rs`'s decrypt-path figure and the
//! v1 figure here, measured in the same run.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use tresor::testing::{DEFAULT_CACHE_BYTES, Envelope, Key, TableId};

const SECRETS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("secrets");
const VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new("values");

/// Payload bytes (version byte included) of today's metadata and value records.
const META_PAYLOAD: usize = 84;
const VALUE_PAYLOAD: usize = 154;
/// One row: the metadata and the value record's body (without its own version byte).
const ROW_PAYLOAD: usize = META_PAYLOAD + VALUE_PAYLOAD - 1;
const STORE_ID: [u8; 16] = [7; 16];
const SAMPLES: usize = 20_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    V1,
    OneRow,
    /// One row with 28 bytes less metadata, so that 14 rows fill a 4 KiB leaf instead of 13
    /// (for example: the current version's size and fields derived from the inline value,
    /// its time and author and `updated_*` stored as "same as created" when they are).
    OneRowTrimmed,
}

/// Metadata bytes the trimmed layout saves.
const TRIM: usize = 28;

struct Keys {
    name: Key,
    seal: Key,
}

fn hash(keys: &Keys, scope: &str, i: usize) -> [u8; 32] {
    let name = format!("svc-{:03}/api-token-{i:07}", i % 97);
    keys.name
        .mac_parts(&[b"secret", scope.as_bytes(), name.as_bytes()])
}

fn value_key(h: &[u8; 32], version: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(h);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

fn payload(len: usize, i: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

fn build(path: &Path, keys: &Keys, n: usize, layout: Layout) {
    let db = redb::Database::builder()
        .set_cache_size(DEFAULT_CACHE_BYTES)
        .create(path)
        .unwrap();
    let mut hashes: Vec<(usize, [u8; 32])> = (0..n).map(|i| (i, hash(keys, "org", i))).collect();
    hashes.sort_by_key(|(_, h)| *h);
    let txn = db.begin_write().unwrap();
    {
        let mut secrets = txn.open_table(SECRETS).unwrap();
        let mut values = txn.open_table(VALUES).unwrap();
        for (i, h) in &hashes {
            let len = match layout {
                Layout::V1 => META_PAYLOAD,
                Layout::OneRow => ROW_PAYLOAD,
                Layout::OneRowTrimmed => ROW_PAYLOAD - TRIM,
            };
            let env = Envelope::seal(
                &keys.seal,
                &STORE_ID,
                TableId::Secrets,
                h,
                &payload(len, *i),
            )
            .unwrap();
            secrets.insert(h, env.as_slice()).unwrap();
            if layout == Layout::V1 {
                let vk = value_key(h, 1);
                let env = Envelope::seal(
                    &keys.seal,
                    &STORE_ID,
                    TableId::Values,
                    &vk,
                    &payload(VALUE_PAYLOAD, *i),
                )
                .unwrap();
                values.insert(&vk, env.as_slice()).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

/// One read as the store does it: without `--scope` (`resolve`), a miss in `user:<caller>`
/// first, then `org`; with the scope given, `org` only.
fn read(
    keys: &Keys,
    secrets: &redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    values: Option<&redb::ReadOnlyTable<&'static [u8; 40], &'static [u8]>>,
    (layout, resolve): (Layout, bool),
    i: usize,
) -> usize {
    if resolve {
        let miss = hash(keys, "user:bench", i);
        assert!(secrets.get(&miss).unwrap().is_none());
    }
    let h = hash(keys, "org", i);
    let raw = secrets.get(&h).unwrap().unwrap();
    let meta = Envelope::open(&keys.seal, &STORE_ID, TableId::Secrets, &h, raw.value()).unwrap();
    if layout != Layout::V1 {
        return meta.len();
    }
    let vk = value_key(&h, 1);
    let raw = values.unwrap().get(&vk).unwrap().unwrap();
    let val = Envelope::open(&keys.seal, &STORE_ID, TableId::Values, &vk, raw.value()).unwrap();
    meta.len() + val.len()
}

/// One read in its own read transaction, as `Store::get_value` does it: begin, open the tables
/// the layout needs (`values` only for v1), read.
fn read_own_txn(db: &redb::Database, keys: &Keys, how: (Layout, bool), i: usize) -> usize {
    let txn = db.begin_read().unwrap();
    let secrets = txn.open_table(SECRETS).unwrap();
    if how.0 == Layout::V1 {
        let values = txn.open_table(VALUES).unwrap();
        read(keys, &secrets, Some(&values), how, i)
    } else {
        read(keys, &secrets, None, how, i)
    }
}

/// p50 and p99 of random reads after a warm-up pass; `own_txn`: each read in its own read
/// transaction, else all in one (as a daemon's batch shares one).
fn measure(
    path: &Path,
    keys: &Keys,
    n: usize,
    how: (Layout, bool),
    own_txn: bool,
) -> (Duration, Duration) {
    let db = redb::Database::builder()
        .set_cache_size(DEFAULT_CACHE_BYTES)
        .open(path)
        .unwrap();
    let txn = db.begin_read().unwrap();
    let secrets = txn.open_table(SECRETS).unwrap();
    let values = txn.open_table(VALUES).unwrap();
    let one = |i: usize| {
        if own_txn {
            read_own_txn(&db, keys, how, i)
        } else {
            read(keys, &secrets, Some(&values), how, i)
        }
    };
    let mut x = 0x9e37_79b9_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x % n as u64).unwrap()
    };
    for _ in 0..SAMPLES {
        black_box(one(next()));
    }
    let mut lat = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let i = next();
        let t = Instant::now();
        black_box(one(i));
        lat.push(t.elapsed());
    }
    lat.sort();
    (lat[SAMPLES / 2], lat[SAMPLES * 99 / 100])
}

/// Leaf and branch page bytes of a table, per row.
fn page_bytes_per_row(path: &Path, n: usize) -> (f64, f64) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let per_row =
        |s: redb::TableStats| ((s.leaf_pages() + s.branch_pages()) * 4096) as f64 / n as f64;
    let secrets = txn.open_table(SECRETS).unwrap().stats().unwrap();
    let values = txn.open_table(VALUES).unwrap().stats().unwrap();
    (per_row(secrets), per_row(values))
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments.
    let sizes: Vec<usize> = std::env::var("TRESOR_BENCH_SIZES").ok().map_or_else(
        || vec![100_000],
        |s| s.split(',').map(|n| n.trim().parse().unwrap()).collect(),
    );
    let dir =
        tempfile::tempdir_in(std::env::var_os("TRESOR_BENCH_DIR").unwrap_or(".".into())).unwrap();
    let keys = Keys {
        name: Key::random().unwrap(),
        seal: Key::random().unwrap(),
    };
    for n in sizes {
        for (layout, label) in [
            (Layout::V1, "v1 (two rows)"),
            (Layout::OneRow, "one row"),
            (Layout::OneRowTrimmed, "one row, -28 B"),
        ] {
            let path = dir.path().join(format!("layout-{n}-{}.redb", layout as u8));
            build(&path, &keys, n, layout);
            let (secrets, values) = page_bytes_per_row(&path, n);
            let (p50, p99) = measure(&path, &keys, n, (layout, true), false);
            let (p50_scoped, _) = measure(&path, &keys, n, (layout, false), false);
            let (p50_own, _) = measure(&path, &keys, n, (layout, true), true);
            println!(
                "layout n={n} {label:<14}: decrypt-path read p50 {p50:?} p99 {p99:?} \
                 (scope given: p50 {p50_scoped:?}; a read transaction per read: p50 \
                 {p50_own:?}); page bytes/secret: secrets {secrets:.1} + values {values:.1} = \
                 {:.1}",
                secrets + values
            );
            std::fs::remove_file(&path).unwrap();
        }
    }
}
