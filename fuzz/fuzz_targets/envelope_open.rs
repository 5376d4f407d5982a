//! Sealed records read from a hostile file: `Envelope::open` on arbitrary bytes never panics
//! and never authenticates, and `decode_payload` on arbitrary plaintext (what a bug or a future
//! version could hand it) never panics for any payload shape the store uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tresor::testing::Key;
use tresor::testing::{Envelope, TableId, decode_payload};

const TABLES: [TableId; 5] = [
    TableId::Secrets,
    TableId::Values,
    TableId::Principals,
    TableId::Audit,
    TableId::Meta,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let table = TABLES[usize::from(sel) % TABLES.len()];
    let key = Key::from_bytes([7; 32]);
    let store_id = [9; 16];
    let record_key: &[u8] = match sel % 3 {
        0 => &[1; 32],
        1 => &[2; 40],
        _ => &[0, 0, 0, 0, 0, 0, 0, 5],
    };
    assert!(Envelope::open(&key, &store_id, table, record_key, rest).is_err());

    // Every payload shape: none may panic on arbitrary bytes.
    let _ = decode_payload::<(u64, [u8; 32])>(rest, table, record_key);
    let _ = decode_payload::<Vec<String>>(rest, table, record_key);
    let _ = decode_payload::<tresor::SecretMeta>(rest, table, record_key);
    let _ = decode_payload::<tresor::AuditRecord>(rest, table, record_key);
    let _ = decode_payload::<tresor::Principal>(rest, table, record_key);
    let _ = decode_payload::<tresor::SecretBytes>(rest, table, record_key);

    // A sealed record with any one byte changed never opens.
    if rest.len() < 512 {
        let mut sealed = Envelope::seal(&key, &store_id, table, record_key, rest).unwrap();
        assert_eq!(
            &Envelope::open(&key, &store_id, table, record_key, &sealed).unwrap()[..],
            rest
        );
        let i = usize::from(sel) * 31 % sealed.len();
        sealed[i] ^= 1 << (sel % 8);
        assert!(Envelope::open(&key, &store_id, table, record_key, &sealed).is_err());
    }
});
