//! Remote secrets against a real OpenBao (SPEC §11): auth, rotation, stale fallback,
//! max_staleness, references, bad input, and that a provider token never leaks.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // scenario tests read top to bottom

mod cli_support;
mod upstream_support;

use std::time::{Duration, Instant};

use cli_support::{Env, Run};
use upstream_support::{Bao, BlackHole, ROOT, canned};

/// A store with the root token as secret `bao-token` and provider `bao` using it.
fn setup(bao: &Bao) -> Env {
    let env = Env::new();
    env.set("bao-token", ROOT.as_bytes(), &[]);
    let r = env.run(
        &[
            "provider",
            "add",
            "bao",
            "--kind",
            "openbao",
            "--addr",
            &bao.addr,
            "--token-secret",
            "bao-token",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    env
}

fn no_token_in(env: &Env, runs: &[&Run]) {
    for r in runs {
        assert!(!r.out().contains(ROOT), "token on stdout");
        assert!(!r.stderr.contains(ROOT), "token on stderr");
    }
    let file = std::fs::read(&env.store).unwrap();
    assert!(
        !file.windows(ROOT.len()).any(|w| w == ROOT.as_bytes()),
        "the provider token is in the store file in the clear"
    );
}

#[test]
fn rotation_stale_fallback_and_max_staleness() {
    let mut bao = Bao::dev();
    bao.put("prod/stripe", r#"{"value":"sk_live_1","other":"x"}"#);
    let env = setup(&bao);
    let test = env.run(&["provider", "test", "bao"], None);
    assert_eq!(test.code, 0, "{}", test.stderr);
    let bind = env.run(
        &[
            "set",
            "stripe",
            "--remote",
            "bao:secret/data/prod/stripe#value",
            "--max-staleness",
            "3s",
        ],
        None,
    );
    assert_eq!(bind.code, 0, "{}", bind.stderr);
    let g1 = env.run(&["get", "stripe"], None);
    assert_eq!(g1.out(), "sk_live_1", "{}", g1.stderr);
    // Rotated upstream: the next read sees it, as a new local version.
    bao.put("prod/stripe", r#"{"value":"sk_live_2"}"#);
    let g2 = env.run(&["get", "stripe"], None);
    assert_eq!(g2.out(), "sk_live_2");
    let g3 = env.run(&["get", "stripe"], None);
    assert_eq!(g3.out(), "sk_live_2");
    let show = env.run(&["--json", "show", "stripe"], None);
    let meta: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        meta["version"], 2,
        "an unchanged upstream version made no new local version"
    );
    assert_eq!(meta["meta"]["upstream.version"], "2");
    // Upstream gone: the cache is served with a warning, then refused past max_staleness.
    bao.stop();
    let stale = env.run(&["get", "stripe"], None);
    assert_eq!(stale.code, 0, "{}", stale.stderr);
    assert_eq!(stale.out(), "sk_live_2");
    assert!(
        stale
            .stderr
            .contains("warning: stripe: upstream unreachable"),
        "{}",
        stale.stderr
    );
    std::thread::sleep(Duration::from_millis(3500));
    let refused = env.run(&["get", "stripe"], None);
    assert_eq!(refused.code, 8, "{}", refused.stderr);
    assert!(refused.stderr.contains("unavailable") && refused.stderr.contains("max_staleness"));
    assert!(refused.out().is_empty());
    // Audited: fetches, the fallback and the refusal, with provider, path and version.
    let audit = env.run(&["audit", "--action", "fetch"], None);
    let a = audit.out();
    assert!(a.contains("bao:secret/prod/stripe@v1 read"), "{a}");
    assert!(
        a.contains("bao:secret/prod/stripe@v2 read unreachable, cache served"),
        "{a}"
    );
    assert!(a.contains("cache refused past max_staleness"), "{a}");
    let status = env.run(&["--json", "sync", "status"], None);
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(st[0]["upstream_version"], 2);
    assert!(
        st[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    no_token_in(
        &env,
        &[&test, &bind, &g1, &g2, &stale, &refused, &audit, &status],
    );
}

#[test]
fn wrong_token_and_approle() {
    let bao = Bao::dev();
    bao.put("app/db", r#"{"value":"pg-pass"}"#);
    let env = Env::new();
    env.set("bad-token", b"not-a-real-token", &[]);
    env.run(
        &[
            "provider",
            "add",
            "bad",
            "--kind",
            "vault",
            "--addr",
            &bao.addr,
            "--token-secret",
            "bad-token",
        ],
        None,
    );
    env.run(&["set", "db", "--remote", "bad:secret/app/db"], None);
    let r = env.run(&["get", "db"], None);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("unauthenticated") && r.stderr.contains("provider bad"),
        "{}",
        r.stderr
    );
    let t = env.run(&["provider", "test", "bad"], None);
    assert_eq!(t.code, 4, "{}", t.stderr);

    // AppRole: role id and secret id are tresor secrets.
    bao.cli(&["auth", "enable", "approle"]);
    let policy = r#"path "secret/*" { capabilities = ["read", "list"] }"#;
    let p = env.path("policy.hcl");
    std::fs::write(&p, policy).unwrap();
    bao.cli(&["policy", "write", "read-all", p.to_str().unwrap()]);
    bao.cli(&[
        "write",
        "auth/approle/role/tresor",
        "token_policies=read-all",
        "token_ttl=1m",
    ]);
    let role = bao.cli(&["read", "-field=role_id", "auth/approle/role/tresor/role-id"]);
    let sid = bao.cli(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/tresor/secret-id",
    ]);
    env.set("role-id", role.trim().as_bytes(), &[]);
    env.set("secret-id", sid.trim().as_bytes(), &[]);
    let add = env.run(
        &[
            "provider",
            "add",
            "ar",
            "--kind",
            "openbao",
            "--addr",
            &bao.addr,
            "--approle-role-id-secret",
            "role-id",
            "--approle-secret-id-secret",
            "secret-id",
        ],
        None,
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    env.run(&["set", "db2", "--remote", "ar:secret/app/db"], None);
    let ok = env.run(&["get", "db2"], None);
    assert_eq!(ok.out(), "pg-pass", "{}", ok.stderr);
    // A wrong secret id: unauthenticated, naming the provider.
    env.set("secret-id", b"00000000-0000-0000-0000-000000000000", &[]);
    let bad = env.run(&["get", "db2"], None);
    assert_eq!(bad.code, 4, "{}", bad.stderr);
    assert!(bad.stderr.contains("provider ar"), "{}", bad.stderr);
    // References: the credential secrets cannot be deleted while providers use them.
    let rm = env.run(&["rm", "role-id"], None);
    assert_eq!(rm.code, 7, "{}", rm.stderr);
    assert!(
        rm.stderr.contains("provider ar") && rm.stderr.contains("binding org/db2 via ar"),
        "{}",
        rm.stderr
    );
    let rm_p = env.run(&["provider", "rm", "ar"], None);
    assert_eq!(rm_p.code, 7, "{}", rm_p.stderr);
}

#[test]
fn never_fetched_is_unavailable_and_bad_input_caches_nothing() {
    let bao = Bao::dev();
    bao.put("kv2/x", r#"{"value":"v","n":1}"#);
    bao.cli(&["secrets", "enable", "-path=old", "-version=1", "kv"]);
    bao.cli(&["kv", "put", "old/x", "value=v1"]);
    let env = setup(&bao);
    let bad_addr = env.run(
        &[
            "provider",
            "add",
            "p2",
            "--kind",
            "openbao",
            "--addr",
            "127.0.0.1:8200",
            "--token-secret",
            "bao-token",
        ],
        None,
    );
    assert_eq!(bad_addr.code, 2, "{}", bad_addr.stderr);
    assert!(
        bad_addr.stderr.contains("provider p2") && bad_addr.stderr.contains("http(s)://"),
        "{}",
        bad_addr.stderr
    );
    let bad_kind = env.run(
        &[
            "provider",
            "add",
            "p2",
            "--kind",
            "consul",
            "--addr",
            &bao.addr,
            "--token-secret",
            "bao-token",
        ],
        None,
    );
    assert_eq!(bad_kind.code, 2, "{}", bad_kind.stderr);

    let cases: [(&str, &str, i32, &str); 4] = [
        ("nomount", "bao:nosuch/x", 3, "no KV mount nosuch/"),
        ("v1", "bao:old/x", 2, "KV version 1"),
        (
            "nokey",
            "bao:secret/kv2/x#missing",
            3,
            "the upstream data has the keys: n, value",
        ),
        ("nopath", "bao:secret/absent", 3, "bao:secret/absent#value"),
    ];
    for (name, remote, code, msg) in cases {
        assert_eq!(env.run(&["set", name, "--remote", remote], None).code, 0);
        let r = env.run(&["get", name], None);
        assert_eq!(r.code, code, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{name}: {}", r.stderr);
        assert_eq!(
            env.run(&["show", name], None).code,
            3,
            "{name}: something was cached"
        );
    }
    // A non-string value is served as its JSON.
    env.run(&["set", "num", "--remote", "bao:secret/kv2/x#n"], None);
    assert_eq!(env.run(&["get", "num"], None).out(), "1");
}

#[test]
fn broken_upstreams_cache_nothing() {
    let env = Env::new();
    env.set("bao-token", ROOT.as_bytes(), &[]);
    // Upstream JSON that does not parse, and a 50 MB answer: clear errors, nothing cached.
    let junk = canned(200, b"{not json".to_vec());
    let huge = canned(200, vec![b' '; 50 * 1024 * 1024]);
    for (p, port, msg) in [
        ("junk", junk, "JSON that does not parse"),
        ("huge", huge, "larger than 4 MiB"),
    ] {
        let addr = format!("http://127.0.0.1:{port}");
        env.run(
            &[
                "provider",
                "add",
                p,
                "--kind",
                "openbao",
                "--addr",
                &addr,
                "--token-secret",
                "bao-token",
            ],
            None,
        );
        env.run(&["set", p, "--remote", &format!("{p}:secret/a/b")], None);
        let r = env.run(&["get", p], None);
        assert_eq!(r.code, 8, "{p}: {}", r.stderr);
        assert!(
            r.stderr.contains(msg) && r.stderr.contains(&format!("{p}:secret/a/b")),
            "{p}: {}",
            r.stderr
        );
        assert_eq!(
            env.run(&["show", p], None).code,
            3,
            "{p}: something was cached"
        );
    }
    // Upstream down before the first fetch: unavailable.
    let dead = format!("http://127.0.0.1:{}", upstream_support::free_port());
    env.run(
        &[
            "provider",
            "add",
            "dead",
            "--kind",
            "openbao",
            "--addr",
            &dead,
            "--token-secret",
            "bao-token",
        ],
        None,
    );
    env.run(&["set", "never", "--remote", "dead:secret/a"], None);
    let r = env.run(&["get", "never"], None);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("never fetched"), "{}", r.stderr);
}

#[test]
fn daemon_refresh_cache_at_start_and_slow_upstream() {
    let mut bao = Bao::dev();
    bao.put("svc/api", r#"{"value":"one"}"#);
    let env = setup(&bao);
    env.set("local", b"local-value", &[]);
    env.run(
        &[
            "set",
            "api",
            "--remote",
            "bao:secret/svc/api",
            "--refresh",
            "1s",
        ],
        None,
    );
    let hole = BlackHole::start();
    let slow = format!("http://127.0.0.1:{}", hole.port);
    env.run(
        &[
            "provider",
            "add",
            "slow",
            "--kind",
            "openbao",
            "--addr",
            &slow,
            "--token-secret",
            "bao-token",
        ],
        None,
    );
    env.run(&["set", "stuck", "--remote", "slow:secret/x"], None);
    {
        let d = cli_support::start(&env, true);
        let first = cli_support::via(&env, &d, &["get", "api"], None);
        assert_eq!(first.out(), "one", "{}", first.stderr);
        // Rotated upstream: the refresher picks it up with no read asking (sync status moves
        // to v2), and reads are served from the cache without fetching.
        bao.put("svc/api", r#"{"value":"two"}"#);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let st = cli_support::via(&env, &d, &["--json", "sync", "status"], None);
            let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
            let api = st
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["secret"] == "org/api")
                .unwrap();
            if api["upstream_version"] == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the refresh did not pick up the rotation"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            cli_support::via(&env, &d, &["get", "api"], None).out(),
            "two"
        );
        let audit = cli_support::via(&env, &d, &["audit", "--action", "fetch"], None).out();
        assert!(audit.contains("bao:secret/svc/api@v2 refresh"), "{audit}");
        assert!(
            !audit.contains("bao:secret/svc/api@v2 read"),
            "a read fetched: {audit}"
        );
        // A read of the black-holed provider waits at most its timeout (2 s), and meanwhile
        // local and other remote reads are not held up.
        std::thread::scope(|sc| {
            let started = Instant::now();
            let stuck = sc.spawn(|| cli_support::via(&env, &d, &["get", "stuck"], None));
            std::thread::sleep(Duration::from_millis(300));
            for (name, want) in [("local", "local-value"), ("api", "two")] {
                let t = Instant::now();
                let r = cli_support::via(&env, &d, &["get", name], None);
                assert_eq!(r.out(), want, "{}", r.stderr);
                assert!(
                    t.elapsed() < Duration::from_secs(1),
                    "{name} waited {:?}",
                    t.elapsed()
                );
            }
            let r = stuck.join().unwrap();
            assert_eq!(r.code, 8, "{}", r.stderr);
            let waited = started.elapsed();
            assert!(
                waited < Duration::from_secs(4),
                "the slow upstream held the read {waited:?}"
            );
        });
    }
    // The daemon restarted while upstream is down: the cache is served at once, marked stale.
    bao.stop();
    let d = cli_support::start(&env, true);
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let r = cli_support::via(&env, &d, &["get", "api"], None);
    assert_eq!(r.out(), "two", "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(r.stderr.contains("upstream unreachable"), "{}", r.stderr);
    let raw = std::process::Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            d.socket.to_str().unwrap(),
            "http://x/v1/secrets/api/value",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(v["stale"], true, "{v}");
    assert!(v["fetched_at"].is_string());
    let local = cli_support::via(&env, &d, &["get", "local"], None);
    assert_eq!(local.out(), "local-value");
}
