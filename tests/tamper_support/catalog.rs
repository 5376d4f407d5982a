//! The list the generator writes the vector files from. Row keys of the hashed tables are
//! found by elimination (names are hashed under a key this test does not have); rows of a
//! second store, made with the same passphrase, are embedded as hex.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Edit, PASSPHRASE, golden_copy, golden_owner};
use crate::common::{Table, edit, get, rows, value};
use tresor::{KdfChoice, ListFilter, Passphrase, Store, UnlockSecret};

type Catalog = Vec<(String, String, Vec<Edit>)>;

fn unlocked(path: &Path) -> Store {
    Store::open(path)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(PASSPHRASE)),
            &golden_owner(),
        )
        .unwrap()
}

/// For every row of `table`: the name that disappears from `names` when the row is removed.
fn by_elimination(
    golden: &Path,
    table: Table,
    names: &dyn Fn(&Store) -> Vec<String>,
) -> BTreeMap<String, Vec<u8>> {
    let all = names(&unlocked(&golden_copy().1));
    let mut out = BTreeMap::new();
    for (k, _) in rows(golden, table) {
        let (_d, path) = golden_copy();
        edit(&path, table, &[], std::slice::from_ref(&k));
        let left = names(&unlocked(&path));
        let gone: Vec<_> = all.iter().filter(|n| !left.contains(n)).collect();
        assert_eq!(gone.len(), 1, "{table:?} row hides {gone:?}");
        out.insert(gone[0].clone(), k);
    }
    out
}

/// Rows of another store with the golden passphrase and the golden owner, holding
/// `github-pat` = the golden store's current value.
struct Foreign {
    header: Vec<u8>,
    slot0: Vec<u8>,
    audit_head: Vec<u8>,
    audit1: Vec<u8>,
    secret: Vec<u8>,
    value: Vec<u8>,
    principal: Vec<u8>,
}

fn foreign() -> Foreign {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.tresor");
    let pass = Passphrase::from(PASSPHRASE);
    let store = Store::create(&path, &pass, &KdfChoice::Insecure, &golden_owner()).unwrap();
    store
        .set(&golden_owner(), "github-pat", value("ghp_golden_v1"))
        .unwrap();
    drop(store);
    let only = |t: Table| {
        let r = rows(&path, t);
        assert_eq!(r.len(), 1, "{t:?}");
        r[0].1.clone()
    };
    Foreign {
        header: get(&path, Table::Meta, b"header").unwrap(),
        slot0: get(&path, Table::Keyslots, &0u32.to_be_bytes()).unwrap(),
        audit_head: get(&path, Table::Meta, b"audit_head").unwrap(),
        audit1: get(&path, Table::Audit, &1u64.to_be_bytes()).unwrap(),
        secret: only(Table::Secrets),
        value: only(Table::Values),
        principal: only(Table::Principals),
    }
}

/// Every vector: (file name, description, edits).
#[allow(clippy::too_many_lines)] // one list, read top to bottom
pub fn build() -> Catalog {
    use Edit::{Copy, Delete, Put, Set, Swap, Truncate, TruncateFile, Xor};
    use Table::{Audit, Keyslots, Meta, Principals, Secrets, Values};
    // A copy that is only read raw (unlocking writes the audit chain).
    let (_keep, pristine) = golden_copy();
    let golden = pristine.as_path();
    let me = golden_owner();
    let secrets = by_elimination(golden, Secrets, &|s| {
        s.list(&me, &ListFilter::default())
            .unwrap()
            .iter()
            .map(|m| m.name.clone())
            .collect()
    });
    let principals = by_elimination(golden, Principals, &|s| {
        s.principals(&me)
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    });
    let sk = |name: &str| secrets[name].clone();
    let vk = |name: &str, version: u64| [secrets[name].as_slice(), &version.to_be_bytes()].concat();
    let pk = |name: &str| principals[name].clone();
    let audit_rows = rows(golden, Audit);
    let last = u64::from_be_bytes(audit_rows.last().unwrap().0.as_slice().try_into().unwrap());
    let seq = |n: u64| n.to_be_bytes().to_vec();
    let slot = |n: u32| n.to_be_bytes().to_vec();
    let h = || b"header".to_vec();
    let head = || b"audit_head".to_vec();
    let f = foreign();
    let file_len = std::fs::metadata(golden).unwrap().len() as usize;
    let pat3 = || vk("github-pat", 3);

    let vectors: Vec<(&str, &str, Vec<Edit>)> = vec![
        // The header (28 bytes: magic 8, version 2, flags 2, store id 16).
        (
            "header-01-magic-first-byte",
            "the header's magic, first byte changed",
            vec![Xor(Meta, h(), 0, vec![0x01])],
        ),
        (
            "header-02-magic-last-byte",
            "the header's magic, last byte changed",
            vec![Xor(Meta, h(), 7, vec![0x80])],
        ),
        (
            "header-03-version-2",
            "the format version raised to 2 (no sealed format row)",
            vec![Set(Meta, h(), 8, vec![0, 2])],
        ),
        (
            "header-13-version-3",
            "the format version raised to 3",
            vec![Set(Meta, h(), 8, vec![0, 3])],
        ),
        (
            "header-04-version-0",
            "the format version set to 0",
            vec![Set(Meta, h(), 8, vec![0, 0])],
        ),
        (
            "header-05-unknown-flag",
            "an unknown header flag (bit 1) set",
            vec![Set(Meta, h(), 10, vec![0, 3])],
        ),
        (
            "header-06-insecure-flag-cleared",
            "the insecure-KDF flag cleared: the slot's 8 KiB Argon2 is now below the floor",
            vec![Set(Meta, h(), 10, vec![0, 0])],
        ),
        (
            "header-07-store-id-first-byte",
            "the store id's first byte changed (bound by every keyslot)",
            vec![Xor(Meta, h(), 12, vec![0x01])],
        ),
        (
            "header-08-store-id-last-byte",
            "the store id's last byte changed",
            vec![Xor(Meta, h(), 27, vec![0x40])],
        ),
        (
            "header-09-truncated",
            "the header cut to 27 bytes",
            vec![Truncate(Meta, h(), 27)],
        ),
        (
            "header-10-extended",
            "one byte appended to the header",
            vec![Put(
                Meta,
                h(),
                [get(golden, Meta, b"header").unwrap(), vec![0]].concat(),
            )],
        ),
        (
            "header-11-deleted",
            "the header row removed",
            vec![Delete(Meta, h())],
        ),
        (
            "header-12-other-store",
            "the header of another store (same passphrase) put in its place",
            vec![Put(Meta, h(), f.header.clone())],
        ),
        // Keyslot 0, the passphrase slot (kind 1, kdf 1, m 4, t 4, p 4, salt 16, wrapped 72).
        (
            "slot0-01-kind-keyfile",
            "slot 0's kind changed to key file (its kdf byte then malformed)",
            vec![Set(Keyslots, slot(0), 0, vec![2])],
        ),
        (
            "slot0-02-kind-unknown",
            "slot 0's kind set to 9",
            vec![Set(Keyslots, slot(0), 0, vec![9])],
        ),
        (
            "slot0-03-kdf-none",
            "slot 0's kdf byte set to 0 (none) on a passphrase slot",
            vec![Set(Keyslots, slot(0), 1, vec![0])],
        ),
        (
            "slot0-04-memory-inflated",
            "slot 0's Argon2 memory inflated to 4 TiB: refused before running",
            vec![Set(Keyslots, slot(0), 2, vec![0xff; 4])],
        ),
        (
            "slot0-05-memory-zero",
            "slot 0's Argon2 memory set to 0",
            vec![Set(Keyslots, slot(0), 2, vec![0; 4])],
        ),
        (
            "slot0-06-memory-doubled",
            "slot 0's Argon2 memory doubled, in range (bound by the wrap)",
            vec![Set(Keyslots, slot(0), 2, vec![0, 0, 0, 16])],
        ),
        (
            "slot0-07-iterations-inflated",
            "slot 0's Argon2 iterations inflated to 2^32-1",
            vec![Set(Keyslots, slot(0), 6, vec![0xff; 4])],
        ),
        (
            "slot0-08-iterations-plus-one",
            "slot 0's Argon2 iterations 1 -> 2, in range",
            vec![Set(Keyslots, slot(0), 6, vec![0, 0, 0, 2])],
        ),
        (
            "slot0-09-parallelism-inflated",
            "slot 0's Argon2 parallelism inflated to 2^32-1",
            vec![Set(Keyslots, slot(0), 10, vec![0xff; 4])],
        ),
        (
            "slot0-10-parallelism-zero",
            "slot 0's Argon2 parallelism set to 0",
            vec![Set(Keyslots, slot(0), 10, vec![0; 4])],
        ),
        (
            "slot0-11-salt",
            "slot 0's salt, one bit",
            vec![Xor(Keyslots, slot(0), 14, vec![0x01])],
        ),
        (
            "slot0-12-nonce",
            "slot 0's wrap nonce, one bit",
            vec![Xor(Keyslots, slot(0), 30, vec![0x01])],
        ),
        (
            "slot0-13-ciphertext",
            "slot 0's wrapped data key, one bit",
            vec![Xor(Keyslots, slot(0), 60, vec![0x10])],
        ),
        (
            "slot0-14-tag",
            "slot 0's wrap tag, last byte",
            vec![Xor(Keyslots, slot(0), 101, vec![0x80])],
        ),
        (
            "slot0-15-truncated",
            "slot 0 cut to 101 bytes",
            vec![Truncate(Keyslots, slot(0), 101)],
        ),
        (
            "slot0-16-deleted",
            "slot 0 removed",
            vec![Delete(Keyslots, slot(0))],
        ),
        (
            "slot0-17-moved-to-id-5",
            "slot 0 moved to id 5 (the slot id is bound by the wrap)",
            vec![
                Copy(Keyslots, slot(0), Keyslots, slot(5)),
                Delete(Keyslots, slot(0)),
            ],
        ),
        (
            "slot0-18-other-store",
            "slot 0 of another store with the same passphrase",
            vec![Put(Keyslots, slot(0), f.slot0.clone())],
        ),
        // Keyslot 1, the key-file slot.
        (
            "slot1-01-kind-recovery",
            "slot 1's kind changed to recovery key",
            vec![Set(Keyslots, slot(1), 0, vec![3])],
        ),
        (
            "slot1-02-kdf-fields-set",
            "slot 1's unused memory field set to 1",
            vec![Set(Keyslots, slot(1), 5, vec![1])],
        ),
        (
            "slot1-03-salt",
            "slot 1's salt, one bit",
            vec![Xor(Keyslots, slot(1), 29, vec![0x04])],
        ),
        (
            "slot1-04-tag",
            "slot 1's wrap tag, first byte",
            vec![Xor(Keyslots, slot(1), 86, vec![0x01])],
        ),
        (
            "slot1-05-swapped-with-slot0",
            "slots 0 and 1 exchanged",
            vec![Swap(Keyslots, slot(0), slot(1))],
        ),
        // Secret metadata (envelope: version 1, nonce 24, ciphertext, tag 16).
        (
            "secrets-01-envelope-version",
            "github-pat's metadata envelope version byte set to 2",
            vec![Set(Secrets, sk("github-pat"), 0, vec![2])],
        ),
        (
            "secrets-02-nonce",
            "github-pat's metadata nonce, one bit",
            vec![Xor(Secrets, sk("github-pat"), 1, vec![0x01])],
        ),
        (
            "secrets-03-ciphertext",
            "github-pat's metadata ciphertext, one bit",
            vec![Xor(Secrets, sk("github-pat"), 30, vec![0x02])],
        ),
        (
            "secrets-04-tag",
            "github-pat's metadata tag, last byte",
            vec![Xor(
                Secrets,
                sk("github-pat"),
                get(golden, Secrets, &sk("github-pat")).unwrap().len() - 1,
                vec![0x80],
            )],
        ),
        (
            "secrets-05-truncated",
            "github-pat's metadata cut to 40 bytes",
            vec![Truncate(Secrets, sk("github-pat"), 40)],
        ),
        (
            "secrets-06-rows-swapped",
            "the metadata rows of github-pat and binary-blob exchanged",
            vec![Swap(Secrets, sk("github-pat"), sk("binary-blob"))],
        ),
        (
            "secrets-07-other-store",
            "github-pat's metadata row from another store (same name, same passphrase)",
            vec![Put(Secrets, sk("github-pat"), f.secret.clone())],
        ),
        (
            "secrets-08-from-values-table",
            "github-pat's metadata replaced by its version-1 value row (across tables)",
            vec![Copy(Values, vk("github-pat", 1), Secrets, sk("github-pat"))],
        ),
        // Values (one row per version).
        (
            "values-01-nonce",
            "github-pat v2's nonce, one bit",
            vec![Xor(Values, vk("github-pat", 2), 5, vec![0x20])],
        ),
        (
            "values-02-ciphertext",
            "github-pat v2's ciphertext, one bit",
            vec![Xor(Values, vk("github-pat", 2), 26, vec![0x01])],
        ),
        (
            "values-03-tag",
            "github-pat v2's tag, last byte",
            vec![Xor(
                Values,
                vk("github-pat", 2),
                get(golden, Values, &vk("github-pat", 2)).unwrap().len() - 1,
                vec![0x01],
            )],
        ),
        (
            "values-04-envelope-version",
            "github-pat v1's envelope version byte set to 0",
            vec![Set(Values, vk("github-pat", 1), 0, vec![0])],
        ),
        (
            "values-05-truncated-empty",
            "github-pat v1's value row emptied",
            vec![Truncate(Values, vk("github-pat", 1), 0)],
        ),
        (
            "values-06-older-version-replayed",
            "github-pat v1's ciphertext copied into the v2 row (across versions)",
            vec![Copy(
                Values,
                vk("github-pat", 1),
                Values,
                vk("github-pat", 2),
            )],
        ),
        (
            "values-07-rows-swapped",
            "github-pat v3 and binary-blob v1 exchanged (across rows)",
            vec![Swap(Values, pat3(), vk("binary-blob", 1))],
        ),
        (
            "values-08-across-scopes",
            "team-secret (team:ops) and my-secret (user scope) exchanged",
            vec![Swap(Values, vk("team-secret", 1), vk("my-secret", 1))],
        ),
        (
            "values-09-from-secrets-table",
            "github-pat v3's value replaced by github-pat's metadata row (across tables)",
            vec![Copy(Secrets, sk("github-pat"), Values, pat3())],
        ),
        (
            "values-10-other-store",
            "github-pat v3 replaced by another store's github-pat v1: same plaintext, same passphrase",
            vec![Put(Values, pat3(), f.value.clone())],
        ),
        (
            "values-11-pruned-versions-replayed",
            "pruned v3 replaced by its own v2 row (within one secret)",
            vec![Copy(Values, vk("pruned", 2), Values, vk("pruned", 3))],
        ),
        // Principals (sealed, checked at unlock).
        (
            "principals-01-ciphertext",
            "deploy-bot's principal record, one bit",
            vec![Xor(Principals, pk("deploy-bot"), 30, vec![0x01])],
        ),
        (
            "principals-02-rows-swapped",
            "deploy-bot and ops exchanged",
            vec![Swap(Principals, pk("deploy-bot"), pk("ops"))],
        ),
        (
            "principals-03-other-store",
            "golden-owner's record from another store (same principal name)",
            vec![Put(Principals, pk("golden-owner"), f.principal.clone())],
        ),
        (
            "principals-04-truncated",
            "ops's record cut to 25 bytes (envelope header only)",
            vec![Truncate(Principals, pk("ops"), 25)],
        ),
        // The audit chain (row: chain MAC 32 || envelope) and its sealed head.
        (
            "audit-01-mac-edited",
            "audit record 5's chain MAC, one bit",
            vec![Xor(Audit, seq(5), 0, vec![0x01])],
        ),
        (
            "audit-02-entry-edited",
            "audit record 5's sealed entry, one bit",
            vec![Xor(Audit, seq(5), 60, vec![0x01])],
        ),
        (
            "audit-03-middle-deleted",
            "audit record 5 removed",
            vec![Delete(Audit, seq(5))],
        ),
        (
            "audit-04-reordered",
            "audit records 5 and 6 exchanged",
            vec![Swap(Audit, seq(5), seq(6))],
        ),
        (
            "audit-05-first-from-other-store",
            "audit record 1 replaced by another store's record 1",
            vec![Put(Audit, seq(1), f.audit1.clone())],
        ),
        (
            "audit-06-truncated",
            "audit record 7 cut to 31 bytes",
            vec![Truncate(Audit, seq(7), 31)],
        ),
        (
            "audit-07-last-deleted",
            "the newest audit record removed (the tail erased)",
            vec![Delete(Audit, seq(last))],
        ),
        (
            "audit-08-record-past-the-head",
            "a copy of record 2 planted far past the newest (seq + 1000)",
            vec![Copy(Audit, seq(2), Audit, seq(last + 1000))],
        ),
        (
            "audit-09-head-edited",
            "the sealed audit head, one bit",
            vec![Xor(Meta, head(), 30, vec![0x01])],
        ),
        (
            "audit-10-head-other-store",
            "the audit head of another store",
            vec![Put(Meta, head(), f.audit_head.clone())],
        ),
        (
            "audit-11-head-deleted",
            "the audit head removed",
            vec![Delete(Meta, head())],
        ),
        // The file.
        (
            "file-01-truncated-half",
            "the file cut to half its length",
            vec![TruncateFile(file_len / 2)],
        ),
        (
            "file-02-truncated-4k",
            "the file cut to its first 4096 bytes",
            vec![TruncateFile(4096)],
        ),
    ];
    vectors
        .into_iter()
        .map(|(file, d, e)| (file.to_owned(), d.to_owned(), e))
        .collect()
}
