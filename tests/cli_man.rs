//! `tresor man OUTDIR` (issue 11): man pages from the same clap definitions as `--help`, one
//! per command and subcommand, for `man tresor-run` after installing them.
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::Env;

#[test]
fn man_writes_a_page_for_tresor_and_each_subcommand() {
    let env = Env::empty();
    let dir = env.path("man/man1");
    let r = env.run(&["man", dir.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("man pages"), "{}", r.stderr);
    let top = std::fs::read_to_string(dir.join("tresor.1")).unwrap();
    assert!(
        top.starts_with(".ie"),
        "not roff: {}",
        &top[..top.len().min(80)]
    );
    assert!(top.contains("tresor\\-run(1)"), "no cross-reference to run");
    let run = std::fs::read_to_string(dir.join("tresor-run.1")).unwrap();
    assert!(
        run.contains(".TH tresor-run 1"),
        "{}",
        &run[..run.len().min(200)]
    );
    assert!(run.contains("\\-\\-watch"), "run's page lacks --watch");
    assert!(
        dir.join("tresor-keyslot-add.1").exists(),
        "nested subcommands too"
    );
    assert!(dir.join("tresor-restore.1").exists());

    let r = env.run(&["--json", "man", dir.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(v["pages"].as_array().unwrap().len() > 40);
}
