//! The CLI on a format 1 store: the first command migrates it and says where the format 1
//! file went; `passwd` afterwards reminds that the backup still opens with the old passphrase.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Env, write_private};

#[test]
fn the_first_command_on_a_format_1_store_migrates_it_and_names_the_backup() {
    let env = Env::empty();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1.tresor"),
        &env.store,
    )
    .unwrap();
    std::fs::set_permissions(&env.store, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_private(&env.pass, "tresor golden v1 passphrase\n");
    let r = env.run(&["ls"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.out().contains("github-pat"), "{}", r.out());
    assert!(
        r.stderr.contains(
            "note: [DIR]/store.tresor was in format 1 and is now format 2; the format 1 file is \
             kept at [DIR]/store.tresor.v1.bak"
        ),
        "{}",
        r.stderr
    );
    // Once: the next command has nothing to say about it.
    let r = env.run(&["ls"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("format 1"), "{}", r.stderr);

    let new = env.path("new-pass");
    write_private(&new, "a new passphrase for the golden copy\n");
    let r = env.run(
        &["passwd", "--new-passphrase-file", new.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "note: [DIR]/store.tresor.v1.bak (kept at the format 2 migration) still opens with \
             the old passphrase"
        ),
        "{}",
        r.stderr
    );
}
