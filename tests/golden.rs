//! A store written by each format version, committed under `tests/data/`, must open and read
//! the same forever (SPEC §4.7): `golden-v1.tresor` (migrated to format 2 at its first unlock,
//! `migrate.rs`) and `golden-v2.tresor`. `tests/data/README.md` says how they were made; the
//! generator is the ignored test at the bottom.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // one fixture, checked end to end

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tresor::{
    Action, Actor, AuditQuery, Channel, Grant, KdfChoice, ListFilter, NewKeyslot, Outcome,
    Passphrase, PrincipalKind, PrincipalSpec, Role, Scope, SecretBytes, SecretType, SetRequest,
    Store, UnlockSecret,
};

/// The golden files' passphrase (documented in tests/data/README.md; the same for both).
const PASSPHRASE: &str = "tresor golden v1 passphrase";
/// The format 1 file's store id, as `Store::store_id` prints it.
const STORE_ID: &str = "5a232b7a60136e49eb4f1db8c333dcbe";
/// The format 2 file's.
const STORE_ID_V2: &str = "c677ac6c33d0abdc01d6a3187e416d2d";

fn golden_file(version: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/golden-v{version}.tresor"))
}

/// The key file of the golden store's second slot: bytes 0x00..=0x2f.
fn keyfile() -> SecretBytes {
    SecretBytes::new((0..48u8).collect())
}

/// The owner the golden store was made by (fixed, so the file does not depend on the host).
fn golden_owner() -> Actor {
    Actor {
        principal: "golden-owner".into(),
        role: Some(Role::Owner),
        uid: 1000,
        gid: 1000,
        pid: 4242,
        exe: Some("/usr/bin/tresor".into()),
        channel: Channel::Direct,
    }
}

/// A private copy of the format 1 file.
fn copy() -> (tempfile::TempDir, PathBuf) {
    copy_of(1)
}

/// A private copy: opening runs redb's integrity check, which writes, and the committed file
/// must stay as it is.
fn copy_of(version: u16) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.tresor");
    std::fs::copy(golden_file(version), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

fn get(store: &Store, name: &str, scope: Option<&Scope>, version: Option<u64>) -> Vec<u8> {
    store
        .get_value(&golden_owner(), name, scope, version)
        .unwrap()
        .value
        .expose()
        .to_vec()
}

#[test]
fn golden_v1_header_and_keyslots() {
    let (_d, path) = copy();
    let locked = Store::open(&path).unwrap();
    let h = locked.header();
    assert_eq!(h.version, 1);
    assert!(h.insecure_kdf());
    assert_eq!(locked.store_id(), STORE_ID);
    let enc = h.encode();
    assert_eq!(&enc[..8], b"TRESORDB");
    assert_eq!(&enc[8..12], &[0, 1, 0, 1]);
    let slots = locked.keyslots().unwrap();
    let kinds: Vec<_> = slots.iter().map(|s| (s.id, s.kind)).collect();
    assert_eq!(kinds, vec![(0, "passphrase"), (1, "keyfile")]);
    assert_eq!(slots[0].kdf, Some(tresor::testing::INSECURE));
    assert!(locked.is_insecure());
}

#[test]
fn golden_v1_contents() {
    let (_d, path) = copy();
    check_contents(&path);
}

#[test]
fn golden_v2_header_and_contents() {
    let (_d, path) = copy_of(2);
    let locked = Store::open(&path).unwrap();
    assert_eq!(locked.header().version, 2);
    assert_eq!(locked.store_id(), STORE_ID_V2);
    assert_eq!(&locked.header().encode()[8..12], &[0, 2, 0, 1]);
    let kinds: Vec<_> = locked
        .keyslots()
        .unwrap()
        .iter()
        .map(|s| (s.id, s.kind))
        .collect();
    assert_eq!(kinds, vec![(0, "passphrase"), (1, "keyfile")]);
    drop(locked);
    check_contents(&path);
    // Format 2 already: nothing was migrated, so no backup was made.
    let mut bak = path.as_os_str().to_owned();
    bak.push(".v1.bak");
    assert!(!Path::new(&bak).exists());
    // Written with fingerprints: `show` has one for every value.
    let store = Store::open(&path)
        .unwrap()
        .unlock(&UnlockSecret::Keyfile(keyfile()), &golden_owner())
        .unwrap();
    let fp = store.show(&golden_owner(), "github-pat", None).unwrap();
    assert_eq!(fp.fingerprint.map(|f| f.len()), Some(32));
    assert_eq!(get(&store, "github-pat", None, None), b"ghp_golden_v1");
}

/// What the generator wrote, as a reader sees it (either format).
fn check_contents(path: &Path) {
    let store = Store::open(path)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(PASSPHRASE)),
            &golden_owner(),
        )
        .unwrap();
    let me = golden_owner();

    let names: Vec<(String, String)> = store
        .list(&me, &ListFilter::default())
        .unwrap()
        .iter()
        .map(|m| (m.scope.to_string(), m.name.clone()))
        .collect();
    let want: Vec<(String, String)> = [
        ("org", "binary-blob"),
        ("org", "db/credentials"),
        ("org", "github-pat"),
        ("org", "pruned"),
        ("team:ops", "team-secret"),
        ("user:golden-owner", "my-secret"),
    ]
    .iter()
    .map(|(s, n)| ((*s).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(names, want);

    let pat = store.show(&me, "github-pat", None).unwrap();
    assert_eq!(pat.secret_type, SecretType::Token);
    assert_eq!(pat.integration.as_deref(), Some("github"));
    assert_eq!(pat.description.as_deref(), Some("deploy token"));
    assert_eq!(pat.meta.get("env").map(String::as_str), Some("prod"));
    assert_eq!(pat.max_age_days, Some(60));
    assert_eq!(pat.version, 3);
    assert_eq!(pat.created_by, "golden-owner");
    assert!(pat.last_used.is_some(), "read once when generated");
    let hist: Vec<_> = pat
        .versions
        .iter()
        .map(|v| (v.version, v.rolled_back_from))
        .collect();
    assert_eq!(hist, vec![(1, None), (2, None), (3, Some(1))]);
    assert_eq!(get(&store, "github-pat", None, None), b"ghp_golden_v1");
    // Every kept version, older ones from the history and the current one from its record
    // (format 2 moved it there at this unlock).
    assert_eq!(get(&store, "github-pat", None, Some(1)), b"ghp_golden_v1");
    assert_eq!(get(&store, "github-pat", None, Some(2)), b"ghp_golden_v2");
    assert_eq!(get(&store, "github-pat", None, Some(3)), b"ghp_golden_v1");

    let creds = store.get_value(&me, "db/credentials", None, None).unwrap();
    assert_eq!(creds.secret_type, SecretType::Credentials);
    assert!(creds.value.is_empty());
    assert_eq!(creds.fields["username"].expose(), b"svc-db");
    assert_eq!(creds.fields["password"].expose(), &[0, 1, 2, 0xfe, 0xff]);

    let blob: Vec<u8> = (0..=255).collect();
    assert_eq!(get(&store, "binary-blob", None, None), blob);

    let pruned = store.show(&me, "pruned", None).unwrap();
    assert_eq!(pruned.max_versions, 2);
    let kept: Vec<u64> = pruned.versions.iter().map(|v| v.version).collect();
    assert_eq!(kept, vec![2, 3]);
    assert!(store.get_value(&me, "pruned", None, Some(1)).is_err());
    assert_eq!(get(&store, "pruned", None, Some(2)), b"p2");
    assert_eq!(get(&store, "pruned", None, Some(3)), b"p3");
    assert_eq!(get(&store, "pruned", None, None), b"p3");

    let team = Scope::Team("ops".into());
    assert_eq!(get(&store, "team-secret", Some(&team), None), b"ops only");
    assert_eq!(get(&store, "my-secret", None, None), b"mine");
    assert!(store.show(&me, "old-token", None).is_err(), "deleted");

    let bot = store.principal_get(&me, "deploy-bot").unwrap();
    assert_eq!(bot.kind, PrincipalKind::Agent);
    assert_eq!(bot.uid, Some(2000));
    assert_eq!(bot.grants.len(), 1);
    assert_eq!(bot.grants[0].pattern, "github-*");
    let ops = store.principal_get(&me, "ops").unwrap();
    assert_eq!(ops.kind, PrincipalKind::Team);
    assert_eq!(ops.members, vec!["deploy-bot"]);
    let owner = store.principal_get(&me, "golden-owner").unwrap();
    assert_eq!(owner.kind, PrincipalKind::Owner);

    // The agent reads what its grant covers, as an agent over the socket would.
    let agent = Actor {
        principal: "deploy-bot".into(),
        role: Some(Role::Agent),
        uid: 2000,
        gid: 2000,
        pid: 1,
        exe: None,
        channel: Channel::Socket,
    };
    assert!(store.get_value(&agent, "github-pat", None, None).is_ok());
    assert!(store.get_value(&agent, "binary-blob", None, None).is_err());

    let report = store.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    let records = store.audit(&me, &AuditQuery::default()).unwrap();
    assert_eq!(records[0].action, Action::Keyslot);
    assert_eq!(records[0].name.as_deref(), Some("init"));
    assert_eq!(records[0].principal, "golden-owner");
    assert_eq!(records[0].exe.as_deref(), Some("/usr/bin/tresor"));
    let reads: Vec<_> = records
        .iter()
        .filter(|r| r.action == Action::Read && r.outcome == Outcome::Ok)
        .collect();
    assert!(!reads.is_empty());
}

/// Format 1 kept fingerprints in their own table, and values written before fingerprints
/// (issue 11, as in this file) had none. Format 2 derives the fingerprint from the current value
/// that the migration moved into each record: every secret has one from the first unlock,
/// `same_value` answers from it, and the file holds no `fingerprints` table and no `values` row
/// for a current version (the rows left are exactly the kept older versions).
#[test]
fn golden_v1_migrated_values_have_fingerprints_and_only_history_rows() {
    let (_d, path) = copy();
    let store = Store::open(&path)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(PASSPHRASE)),
            &golden_owner(),
        )
        .unwrap();
    let me = golden_owner();
    let fp = |name: &str| store.show(&me, name, None).unwrap().fingerprint;
    let pat = fp("github-pat").unwrap();
    assert_eq!(pat.len(), 32);
    assert!(
        fp("db/credentials").is_none(),
        "fields only: no fingerprint"
    );
    assert_eq!(
        store
            .same_value(&me, "github-pat", None, b"ghp_golden_v1")
            .unwrap(),
        Some(true)
    );
    assert_eq!(
        store.same_value(&me, "github-pat", None, b"other").unwrap(),
        Some(false)
    );
    assert_eq!(
        store
            .same_value(&me, "db/credentials", None, b"svc-db")
            .unwrap(),
        None
    );
    let older: usize = store
        .list(&me, &ListFilter::default())
        .unwrap()
        .iter()
        .map(|m| m.versions.len() - 1)
        .sum();
    assert_eq!(older, 3, "github-pat 1 and 2, pruned 2");
    set(&store, "github-pat", val(b"ghp_golden_v3"));
    let changed = fp("github-pat").unwrap();
    assert_ne!(changed, pat);
    store.rollback(&me, "github-pat", None, 3).unwrap();
    assert_eq!(fp("github-pat").unwrap(), pat);
    drop(store);

    let db = redb::Database::open(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let fps: redb::TableDefinition<&[u8; 32], &[u8]> = redb::TableDefinition::new("fingerprints");
    assert!(matches!(
        txn.open_table(fps),
        Err(redb::TableError::TableDoesNotExist(_))
    ));
    let values: redb::TableDefinition<&[u8; 40], &[u8]> = redb::TableDefinition::new("values");
    let rows = redb::ReadableTableMetadata::len(&txn.open_table(values).unwrap()).unwrap();
    // The three older versions, then github-pat's 3 and 4 (moved in by the set and the
    // rollback); its 5 is current.
    assert_eq!(rows, 5);
}

#[test]
fn golden_v1_keyfile_slot() {
    let (_d, path) = copy();
    let store = Store::open(&path)
        .unwrap()
        .unlock(&UnlockSecret::Keyfile(keyfile()), &golden_owner())
        .unwrap();
    assert_eq!(get(&store, "github-pat", None, None), b"ghp_golden_v1");
}

fn set(store: &Store, name: &str, req: SetRequest) {
    store.set(&golden_owner(), name, req).unwrap();
}

fn val(v: &[u8]) -> SetRequest {
    SetRequest {
        value: Some(SecretBytes::new(v.to_vec())),
        ..SetRequest::default()
    }
}

/// Writes `tests/data/golden-v{FORMAT_VERSION}.tresor`, the format this build writes. Run once
/// per format version: `cargo test --no-default-features --features test-util --test golden
/// -- --ignored generate_golden`, then put the printed store id into `STORE_ID_V2` (or the
/// next version's constant) and `tests/data/README.md`. Refuses to overwrite a committed file.
#[test]
#[ignore = "generates the committed golden file"]
fn generate_golden() {
    let out = golden_file(tresor::testing::FORMAT_VERSION);
    assert!(
        !out.exists(),
        "{} exists; golden files are never regenerated",
        out.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.tresor");
    let me = golden_owner();
    let mut store = Store::create(
        &path,
        &Passphrase::from(PASSPHRASE),
        &KdfChoice::Insecure,
        &me,
    )
    .unwrap();
    store
        .keyslot_add(&me, NewKeyslot::Keyfile(keyfile()))
        .unwrap();
    set(
        &store,
        "github-pat",
        SetRequest {
            secret_type: Some(SecretType::Token),
            description: Some("deploy token".into()),
            integration: Some("github".into()),
            meta: [("env".to_owned(), "prod".to_owned())].into(),
            max_age_days: Some(60),
            ..val(b"ghp_golden_v1")
        },
    );
    set(&store, "github-pat", val(b"ghp_golden_v2"));
    store.rollback(&me, "github-pat", None, 1).unwrap();
    set(
        &store,
        "db/credentials",
        SetRequest {
            secret_type: Some(SecretType::Credentials),
            value: None,
            fields: [
                ("username".to_owned(), SecretBytes::from("svc-db")),
                (
                    "password".to_owned(),
                    SecretBytes::new(vec![0, 1, 2, 0xfe, 0xff]),
                ),
            ]
            .into(),
            ..SetRequest::default()
        },
    );
    set(&store, "binary-blob", val(&(0..=255).collect::<Vec<u8>>()));
    set(
        &store,
        "pruned",
        SetRequest {
            max_versions: Some(2),
            ..val(b"p1")
        },
    );
    set(&store, "pruned", val(b"p2"));
    set(&store, "pruned", val(b"p3"));
    set(
        &store,
        "team-secret",
        SetRequest {
            scope: Scope::Team("ops".into()),
            ..val(b"ops only")
        },
    );
    set(
        &store,
        "my-secret",
        SetRequest {
            scope: Scope::User("golden-owner".into()),
            ..val(b"mine")
        },
    );
    set(&store, "old-token", val(b"gone"));
    store.delete(&me, "old-token", None, false).unwrap();
    store
        .principal_add(
            &me,
            &PrincipalSpec {
                name: "deploy-bot".into(),
                role: Role::Agent,
                uid: Some(2000),
                gid: None,
                token: false,
            },
        )
        .unwrap();
    store
        .grant(
            &me,
            "deploy-bot",
            &Grant {
                pattern: "github-*".into(),
                scope: None,
                expires: None,
            },
        )
        .unwrap();
    store.team_add(&me, "ops").unwrap();
    store.team_join(&me, "ops", "deploy-bot").unwrap();
    get(&store, "github-pat", None, None);
    store.compact().unwrap();
    println!("store id: {}", store.store_id());
    drop(store);
    std::fs::copy(&path, &out).unwrap();
}
