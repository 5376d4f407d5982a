//! The crash-consistency campaign (redb's own crash tests are the model).
//!
//! Every store operation that writes — set, new version, delete, rollback, an audited read
//! batch, passwd, keyslot add, rekey, principal add and grant — runs on a simulated disk
//! (`crash_support::Disk`) whose durable image advances only when a sync completes. The
//! machine crashes at each of the operation's syncs in turn, and the writes in flight are
//! dropped, applied, or torn at 512-byte sectors (several seeds). Each image left behind is
//! reopened and must: open and unlock; hold exactly the state before the operation or exactly
//! the state after it (nothing acknowledged lost, nothing half done); pass `audit verify`;
//! hold an audit record for every value handed out; and hold no plaintext value, name or
//! passphrase (nor may any byte ever written to the disk).
//!
//! Then each operation meets a failing disk: its Nth write or sync fails with ENOSPC or EIO,
//! once or until healed. The failure must be `unavailable` naming the OS error, leave the
//! store degraded, and the same store (no reopen by the caller) must recover by itself once
//! the disk works: the operation then succeeds and nothing acknowledged is missing.
//!
//! `cargo test --test crash_consistency` checks at least 10,000 crash images;
//! `TRESOR_CRASH_IMAGES=200000 cargo test --release --test crash_consistency -- --nocapture`
//! checks as many as asked.
#![allow(clippy::unwrap_used)]

mod crash_support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crash_support::{Call, Crash, Disk, Failure, Torn};
use tresor::{
    Action, Actor, AuditQuery, Error, Grant, KdfChoice, ListFilter, NewKeyslot, Outcome,
    Passphrase, PrincipalSpec, Role, SecretBytes, SetRequest, Store, UnlockSecret,
};
use tresor::{HeadSpec, ReadRequest};

const PASS: &str = "crash-campaign-passphrase-Kq2";
const NEW_PASS: &str = "crash-campaign-new-passphrase-Wz7";
/// Torn fates per crash point, besides dropped and applied.
const TORN_SEEDS: u64 = 6;
const DEFAULT_IMAGES: u64 = 10_000;

fn owner() -> Actor {
    Actor::direct_owner()
}

fn label() -> &'static Path {
    Path::new("crash-campaign.tresor")
}

/// A value that can be found in a byte image if it ever lands there unsealed.
fn plain(seed: u64, i: usize, v: u64) -> String {
    format!("PLAINVAL-{seed:04}-{i}-{v}-x9Lr")
}

fn name(i: usize) -> String {
    format!("crashname-{i:02}")
}

fn set_req(value: &str) -> SetRequest {
    SetRequest {
        value: Some(SecretBytes::new(value.as_bytes().to_vec())),
        ..SetRequest::default()
    }
}

/// The operations under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Set,
    NewVersion,
    Delete,
    Rollback,
    ReadBatch,
    Passwd,
    KeyslotAdd,
    Rekey,
    PrincipalAdd,
    Grant,
}

const OPS: [Op; 10] = [
    Op::Set,
    Op::NewVersion,
    Op::Delete,
    Op::Rollback,
    Op::ReadBatch,
    Op::Passwd,
    Op::KeyslotAdd,
    Op::Rekey,
    Op::PrincipalAdd,
    Op::Grant,
];

/// One scenario: a store built by a seeded workload, all of it acknowledged.
struct Scenario {
    seed: u64,
    image: Vec<u8>,
    /// Values handed out by acknowledged reads: (name, version).
    handed_out: Vec<(String, u64)>,
    /// The audit head of `image` (which holds a record of every value the workload was
    /// handed): every image left behind must hold this record, with the chain up to it
    /// unchanged, so none of those records was lost.
    head: HeadSpec,
    secrets: usize,
}

fn build(seed: u64) -> Scenario {
    let disk = Disk::default();
    let store = Store::create_with_backend(
        disk.factory(),
        label(),
        &Passphrase::from(PASS),
        &KdfChoice::Insecure,
        &owner(),
    )
    .unwrap();
    let secrets = 2 + (seed % 3) as usize;
    let mut handed_out = Vec::new();
    for i in 0..secrets {
        let versions = 1 + (seed + i as u64) % 3;
        for v in 1..=versions {
            let value = plain(seed, i, v);
            store.set(&owner(), &name(i), set_req(&value)).unwrap();
        }
        if (seed + i as u64).is_multiple_of(2) {
            let got = store.get_value(&owner(), &name(i), None, None).unwrap();
            handed_out.push((name(i), got.version));
        }
    }
    let spec = PrincipalSpec {
        name: "deploy-bot".into(),
        role: Role::Agent,
        uid: Some(4242),
        gid: None,
        token: false,
    };
    store.principal_add(&owner(), &spec).unwrap();
    assert_handed_out_audited(&store, &handed_out, &format!("seed {seed}"));
    let head = store
        .audit_head(&owner())
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    drop(store);
    assert!(disk.settled(), "an acknowledged write was not synced");
    Scenario {
        seed,
        image: disk.durable(),
        handed_out,
        head,
        secrets,
    }
}

fn open(disk: &Disk, pass: &str) -> Result<Store, Error> {
    Store::open_with_backend(disk.factory(), label())?
        .unlock(&UnlockSecret::Passphrase(Passphrase::from(pass)), &owner())
}

/// Runs `op`; `Ok` means acknowledged.
fn run(op: Op, store: &mut Store, sc: &Scenario) -> Result<(), Error> {
    let o = owner();
    match op {
        Op::Set => store
            .set(&o, &name(99), set_req(&plain(sc.seed, 99, 1)))
            .map(drop),
        Op::NewVersion => store
            .set(&o, &name(0), set_req(&plain(sc.seed, 0, 7)))
            .map(drop),
        Op::Delete => store.delete(&o, &name(1), None, true),
        Op::Rollback => store.rollback(&o, &name(0), None, 1).map(drop),
        Op::ReadBatch => {
            let reqs: Vec<ReadRequest> = (0..sc.secrets)
                .map(|i| ReadRequest {
                    actor: o.clone(),
                    name: name(i),
                    scope: None,
                    version: None,
                    field: None,
                })
                .collect();
            store
                .read_batch(&reqs)
                .into_iter()
                .try_for_each(|r| r.map(drop))
        }
        Op::Passwd => {
            store.change_passphrase(&o, &Passphrase::from(NEW_PASS), &KdfChoice::Insecure)
        }
        Op::KeyslotAdd => store
            .keyslot_add(&o, NewKeyslot::Keyfile(SecretBytes::new(vec![7; 32])))
            .map(drop),
        Op::Rekey => store.rekey(&o, &mut |_, _| {}).map(drop),
        Op::PrincipalAdd => {
            let spec = PrincipalSpec {
                name: "ci-bot".into(),
                role: Role::Agent,
                uid: Some(4343),
                gid: None,
                token: false,
            };
            store.principal_add(&o, &spec).map(drop)
        }
        Op::Grant => {
            let g = Grant {
                pattern: "crashname-*".into(),
                scope: None,
                expires: None,
            };
            store.grant(&o, "deploy-bot", &g).map(drop)
        }
    }
}

/// The store's content without times (which differ between runs): every secret with every
/// kept version's value, the principals and their grants, the keyslots, and which passphrase
/// opened it.
fn snapshot(store: &Store, pass: &str) -> String {
    let o = owner();
    let mut out = BTreeMap::new();
    for m in store.list(&o, &ListFilter::default()).unwrap() {
        let mut line = format!("current v{} versions", m.version);
        for v in &m.versions {
            let val = store
                .get_value_unaudited(&o, &m.name, Some(&m.scope), Some(v.version))
                .unwrap();
            let _ = write!(
                line,
                " {}:{}",
                v.version,
                String::from_utf8_lossy(val.value.expose())
            );
        }
        out.insert(format!("secret {}/{}", m.scope, m.name), line);
    }
    for p in store.principals(&o).unwrap() {
        let grants: Vec<&str> = p.grants.iter().map(|g| g.pattern.as_str()).collect();
        out.insert(
            format!("principal {}", p.name),
            format!("{:?} {grants:?}", p.uid),
        );
    }
    let slots: Vec<&str> = store.keyslots().unwrap().iter().map(|k| k.kind).collect();
    out.insert("keyslots".into(), format!("{slots:?}"));
    out.insert("passphrase".into(), pass.into());
    format!("{out:#?}")
}

/// The states an image may hold after `op` was interrupted: before or after, nothing else.
struct Expect {
    before: String,
    after: String,
}

fn expectations(sc: &Scenario, op: Op) -> (Expect, u64) {
    let disk = Disk::from_image(&sc.image);
    let mut store = open(&disk, PASS).unwrap();
    let before = snapshot(&store, PASS);
    disk.arm(None, None);
    run(op, &mut store, sc).unwrap();
    let syncs = disk.syncs();
    let pass = if op == Op::Passwd { NEW_PASS } else { PASS };
    let after = snapshot(&store, pass);
    (Expect { before, after }, syncs)
}

/// Opens a crash image and checks every invariant. Returns the state it held.
fn check_image(sc: &Scenario, op: Op, image: &[u8], expect: &Expect, what: &str) {
    let disk = Disk::scratch(image);
    let (store, pass) = match open(&disk, PASS) {
        Ok(s) => (s, PASS),
        Err(Error::WrongPassphrase) if op == Op::Passwd => {
            (open(&disk, NEW_PASS).unwrap(), NEW_PASS)
        }
        Err(e) => panic!("{what}: the crash image does not reopen: {e}"),
    };
    // The chain verifies and still holds the scenario's head: nothing audited before the
    // operation was lost or rewritten, so each value handed out keeps its record. A rekey
    // re-MACs the chain under a new key; then the records themselves are looked up.
    let witnessed = (op != Op::Rekey).then_some(&sc.head);
    let report = store.audit_verify_head(witnessed).unwrap();
    assert!(
        report.ok,
        "{what}: audit verify failed at {:?} {:?}",
        report.first_broken_seq, report.head_mismatch
    );
    let got = snapshot(&store, pass);
    assert!(
        got == expect.before || got == expect.after,
        "{what}: half-done state\n{got}\nbefore:\n{}\nafter:\n{}",
        expect.before,
        expect.after
    );
    if op == Op::Rekey {
        assert_handed_out_audited(&store, &sc.handed_out, what);
    }
    assert_last_used_is_the_log(&store, what);
}

/// `last_used` is derived from the audit log (folded lazily, replayed at unlock): after any
/// crash each secret's `last_used` is exactly its last successful read in the log.
fn assert_last_used_is_the_log(store: &Store, what: &str) {
    let mut last: BTreeMap<String, jiff::Timestamp> = BTreeMap::new();
    for r in store.audit(&owner(), &AuditQuery::default()).unwrap() {
        if !matches!(r.action, Action::Read | Action::Export) || r.outcome != Outcome::Ok {
            continue;
        }
        let (Some(scope), Some(name)) = (&r.scope, &r.name) else {
            continue;
        };
        let name = name.split('#').next().unwrap_or_default();
        let t = last.entry(format!("{scope}/{name}")).or_insert(r.time);
        *t = (*t).max(r.time);
    }
    for m in store.list(&owner(), &ListFilter::default()).unwrap() {
        let key = format!("{}/{}", m.scope, m.name);
        assert_eq!(
            m.last_used,
            last.get(&key).copied(),
            "{what}: last_used of {key} is not its last read in the audit log"
        );
    }
}

/// Every value handed out has its audit record (a successful read of that version).
fn assert_handed_out_audited(store: &Store, handed_out: &[(String, u64)], what: &str) {
    let reads = store
        .audit(
            &owner(),
            &AuditQuery {
                action: Some(Action::Read),
                outcome: Some(Outcome::Ok),
                ..AuditQuery::default()
            },
        )
        .unwrap();
    for (n, v) in handed_out {
        assert!(
            reads
                .iter()
                .any(|r| r.name.as_deref() == Some(n) && r.version == Some(*v)),
            "{what}: a value handed out ({n} v{v}) has no audit record"
        );
    }
}

/// What every plaintext the campaign writes starts with (values, names, passphrases): finding
/// one of these anywhere on the disk is finding plaintext, or part of it.
const MARKERS: [&[u8]; 3] = [b"PLAINVAL-", b"crashname-", b"crash-campaign-"];

/// No plaintext in the durable bytes nor in any write in flight (every byte a torn image can
/// hold comes from one of them). `seen` skips durable images already scanned.
fn check_no_plaintext(crash: &Crash, seen: &mut Vec<usize>, what: &str) {
    for (i, chunk) in crash.chunks().enumerate() {
        if i == 0 {
            // The durable image only changes at a completed sync; its length and a sample
            // identify it well enough to skip an identical rescan.
            let key = chunk.len()
                ^ chunk
                    .iter()
                    .step_by(4093)
                    .fold(0usize, |a, &b| a.rotate_left(5) ^ usize::from(b));
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
        }
        assert!(!has_marker(chunk), "{what}: plaintext found on the disk");
    }
}

fn has_marker(hay: &[u8]) -> bool {
    MARKERS
        .iter()
        .any(|m| memchr::memmem::find(hay, m).is_some())
}

/// Crashes `op` at each of its syncs; returns the number of images checked.
fn crash_op(sc: &Scenario, op: Op) -> u64 {
    let (expect, syncs) = expectations(sc, op);
    assert!(syncs > 0, "{op:?} wrote nothing durable");
    let mut images = 0;
    let mut seen = Vec::new();
    for n in 1..=syncs {
        let disk = Disk::from_image(&sc.image);
        let mut store = open(&disk, PASS).unwrap();
        disk.arm(Some(n), None);
        let result = run(op, &mut store, sc);
        assert!(disk.crashed(), "{op:?}: sync {n} of {syncs} never came");
        let what = format!("seed {} {op:?} crash at sync {n}/{syncs}", sc.seed);
        assert!(
            result.is_err(),
            "{what}: acknowledged although its sync crashed"
        );
        drop(store);
        let crash = disk.crash();
        check_no_plaintext(&crash, &mut seen, &what);
        let fates = [Torn::Dropped, Torn::Applied]
            .into_iter()
            .chain((0..TORN_SEEDS).map(|s| Torn::Sectors(sc.seed * 1000 + n * 10 + s)));
        for fate in fates {
            check_image(
                sc,
                op,
                &crash.image(fate),
                &expect,
                &format!("{what} {fate:?}"),
            );
            images += 1;
        }
    }
    images
}

fn target() -> u64 {
    std::env::var("TRESOR_CRASH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_IMAGES)
}

#[test]
fn every_crash_image_reopens_whole_audited_and_sealed() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = Instant::now();
    let want = target();
    let images = AtomicU64::new(0);
    let next_seed = AtomicU64::new(0);
    // Scenarios are independent: two workers share them (the cores are shared too).
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while images.load(Ordering::Relaxed) < want {
                    let sc = build(next_seed.fetch_add(1, Ordering::Relaxed));
                    for op in OPS {
                        images.fetch_add(crash_op(&sc, op), Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let images = images.into_inner();
    println!(
        "crash consistency: {images} crash images checked ({} scenarios x {} operations) in {:.1?}",
        next_seed.into_inner(),
        OPS.len(),
        start.elapsed()
    );
    assert!(images >= want);
}

/// A failing disk under each operation: `unavailable` naming the OS error, degraded, then
/// recovery by itself — the same handle, no restart — once the disk works.
#[test]
fn failed_writes_are_unavailable_and_the_store_recovers_by_itself() {
    let sc = build(7);
    let mut runs = 0;
    for op in OPS {
        let (expect, syncs) = expectations(&sc, op);
        let disk = Disk::from_image(&sc.image);
        let mut store = open(&disk, PASS).unwrap();
        disk.arm(None, None);
        run(op, &mut store, &sc).unwrap();
        let writes = disk.writes();
        drop(store);
        let plans = (1..=writes.min(4))
            .map(|n| (Call::Write, n))
            .chain((1..=syncs).map(|n| (Call::Sync, n)));
        for (call, nth) in plans {
            for (errno, text) in [(28, "no space left on device"), (5, "input/output error")] {
                for sticky in [false, true] {
                    let f = Failure {
                        call,
                        nth,
                        errno,
                        sticky,
                    };
                    fail_and_recover(&sc, op, f, text, &expect);
                    runs += 1;
                }
            }
        }
    }
    println!("fault injection: {runs} failing-disk runs recovered");
}

fn fail_and_recover(sc: &Scenario, op: Op, f: Failure, text: &str, expect: &Expect) {
    let what = format!("{op:?} {f:?}");
    let disk = Disk::from_image(&sc.image);
    let mut store = open(&disk, PASS).unwrap();
    disk.arm(None, Some(f));
    let first = run(op, &mut store, sc);
    let acked = match first {
        Ok(()) => true,
        Err(Error::Unavailable { reason }) => {
            assert!(
                reason.contains(text),
                "{what}: {reason:?} does not name {text:?}"
            );
            assert!(
                store.degraded().is_some(),
                "{what}: not degraded after a failed write"
            );
            if f.sticky {
                // Still failing: a second attempt fails the same way and changes nothing.
                let again = run(op, &mut store, sc).unwrap_err();
                assert!(
                    matches!(again, Error::Unavailable { .. }),
                    "{what}: {again}"
                );
            }
            false
        }
        Err(e) => panic!("{what}: expected unavailable, got {e}"),
    };
    disk.heal();
    let pass = if op == Op::Passwd { NEW_PASS } else { PASS };
    if !acked && matches!(op, Op::Passwd | Op::Rekey) {
        // These change the keys a session holds; after a failed commit the direct-mode CLI
        // (the only front end that runs them) exits, and the next process opens the file.
        drop(store);
        check_image(sc, op, &disk.durable(), expect, &what);
        store = open(&disk, PASS)
            .or_else(|_| open(&disk, NEW_PASS))
            .unwrap();
        if snapshot(&store, PASS) == expect.before {
            run(op, &mut store, sc).unwrap_or_else(|e| panic!("{what}: no recovery: {e}"));
        }
    } else if !acked {
        // The same handle, once the disk works: it reopens the database, which holds the
        // state before the failed operation or (a failed sync after the data was written)
        // after it; if before, the operation now goes through.
        let now = snapshot(&store, pass);
        if now == expect.before {
            run(op, &mut store, sc).unwrap_or_else(|e| panic!("{what}: no recovery: {e}"));
        } else {
            assert_eq!(now, expect.after, "{what}: half done");
            // Degraded until a write reaches the disk again.
            assert!(
                store.degraded().is_some(),
                "{what}: healthy before any write succeeded"
            );
            store
                .record(&tresor::AuditEntry::new(
                    &owner(),
                    Action::Lock,
                    Outcome::Ok,
                ))
                .unwrap();
        }
    }
    assert!(
        store.degraded().is_none(),
        "{what}: still degraded after a write succeeded"
    );
    assert_eq!(
        snapshot(&store, pass),
        expect.after,
        "{what}: wrong state after recovery"
    );
    assert!(
        store.audit_verify().unwrap().ok,
        "{what}: audit chain broken"
    );
    drop(store);
    // And what is durable is the acknowledged state.
    check_image(
        sc,
        op,
        &disk.durable(),
        &Expect {
            before: expect.after.clone(),
            after: expect.after.clone(),
        },
        &what,
    );
}
