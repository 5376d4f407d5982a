//! Removing a label (issue 11): `--meta k=v` could add and change labels but nothing removed
//! one. Now `--meta k=` (an empty value) or `--unset-meta k` removes it, on the file and
//! through the daemon (`PUT /v1/secrets/{name}` with `"meta": {"k": ""}`).
#![allow(clippy::unwrap_used)]

mod cli_support;

use cli_support::{Env, Run, start, via};

fn labels(r: &Run) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    v["meta"].clone()
}

#[test]
fn empty_values_and_unset_meta_remove_labels_on_the_file_and_through_the_daemon() {
    let env = Env::new();
    env.set(
        "k",
        b"v",
        &[
            "--meta",
            "team=infra",
            "--meta",
            "env=prod",
            "--meta",
            "owner=ann",
        ],
    );
    let r = env.run(
        &[
            "set",
            "k",
            "--keep-value",
            "--meta",
            "env=",
            "--meta",
            "tier=1",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = labels(&env.run(&["--json", "show", "k"], None));
    assert_eq!(
        m,
        serde_json::json!({"team": "infra", "owner": "ann", "tier": "1"})
    );

    let d = start(&env, true);
    let r = via(
        &env,
        &d,
        &[
            "set",
            "k",
            "--keep-value",
            "--unset-meta",
            "owner",
            "--unset-meta",
            "nope",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = labels(&via(&env, &d, &["--json", "show", "k"], None));
    assert_eq!(m, serde_json::json!({"team": "infra", "tier": "1"}));
    // The value and its version are untouched by label edits.
    let r = via(&env, &d, &["--json", "show", "k"], None);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["version"], 1);

    let r = via(
        &env,
        &d,
        &["set", "k", "--keep-value", "--unset-meta", "a=b"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unset-meta"), "{}", r.stderr);
}
