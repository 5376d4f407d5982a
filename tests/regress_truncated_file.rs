//! A store file cut short inside redb's own header (a copy interrupted after a few bytes, a
//! full disk) was reported as `internal: cannot open the database` with an I/O "failed to fill
//! whole buffer" underneath: exit code 1 and no hint, as if tresor itself had failed. It is
//! damage to the file and must say `integrity` (exit 6, "restore it from a backup"), like every
//! other damaged file. Found by `tamper.rs`'s truncation test; fixed in `store::open_db`.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestStore;
use tresor::{Error, Store};

#[test]
fn a_file_cut_inside_the_database_header_is_an_integrity_error() {
    let (t, store) = TestStore::create();
    drop(store);
    let full = std::fs::read(&t.path).unwrap();
    for cut in [1, 16, 100] {
        std::fs::write(&t.path, &full[..cut]).unwrap();
        let err = Store::open(&t.path).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, Error::Integrity { .. }),
            "cut to {cut}: {err}"
        );
        assert_eq!(err.exit_code(), 6);
    }
}
