//! Unattended unlock with a systemd credential (SPEC §7, issue 12): `keyslot add
//! --systemd-creds NAME` seals 32 random bytes with `systemd-creds encrypt`, and `tresord
//! --unlock-credential NAME` opens the store from `$CREDENTIALS_DIRECTORY/NAME`, as systemd's
//! `LoadCredentialEncrypted=` hands it to a service.
//!
//! The parse-and-unwrap path runs with a fixture (the credential as systemd would deliver it)
//! on every machine; the whole path through the real `systemd-creds` runs where it works (as
//! root, with a host key or TPM2) and is skipped with a printed reason elsewhere.
#![allow(clippy::unwrap_used)]

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Env, PASS};
use tresor::{Actor, Api, NewKeyslot, Passphrase, SecretBytes, Store, UnlockSecret};

const NAME: &str = "tresor-unlock";

fn tresord(env: &Env, creds: Option<&Path>, credential: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tresord"));
    c.arg("--store")
        .arg(&env.store)
        .arg("--socket")
        .arg(env.path("run/tresord.sock"))
        .arg("--unlock-credential")
        .arg(credential)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("TRESOR_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(dir) = creds {
        c.env("CREDENTIALS_DIRECTORY", dir);
    }
    c
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts tresord with the credential and waits for its socket.
fn serve(env: &Env, creds: &Path) -> Running {
    let mut child = tresord(env, Some(creds), NAME)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = env.path("run/tresord.sock");
    let t0 = Instant::now();
    while !tresor::client::daemon_answers(&socket) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tresord exited early: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "tresord did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Running(child)
}

/// Runs tresord expecting it to refuse to start; returns (exit code, stderr).
fn refused(env: &Env, creds: Option<&Path>, credential: &str) -> (i32, String) {
    let out = tresord(env, creds, credential).output().unwrap();
    assert!(!out.status.success(), "tresord started");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A credential directory as systemd makes it: the file `NAME`, mode 0400.
fn deliver(env: &Env, key: &[u8]) -> PathBuf {
    let dir = env.path("credentials");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(NAME);
    if file.exists() {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(&file, key).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    dir
}

fn owner_store(env: &Env) -> Store {
    Store::open(&env.store)
        .unwrap()
        .unlock(
            &UnlockSecret::Passphrase(Passphrase::from(PASS)),
            &Actor::direct_owner(),
        )
        .unwrap()
}

fn read_through(env: &Env, name: &str) -> Vec<u8> {
    let c = tresor::Client::new(env.path("run/tresord.sock")).unwrap();
    assert!(!c.status().unwrap().locked, "the daemon is unlocked");
    c.get_value(name, None, None)
        .unwrap()
        .value
        .expose()
        .to_vec()
}

#[test]
fn tresord_unlocks_from_a_delivered_credential() {
    let env = Env::new();
    env.set("db-password", b"s3cret-value", &[]);
    let key: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(91) ^ 0x3c).collect();
    let (id, shown) = owner_store(&env)
        .keyslot_add(
            &Actor::direct_owner(),
            NewKeyslot::Credential(SecretBytes::new(key.clone())),
        )
        .unwrap();
    assert!(shown.is_none(), "nothing to show for a credential slot");

    let ls = env.run(&["--json", "keyslot", "ls"], None);
    assert_eq!(ls.code, 0, "{}", ls.stderr);
    let slots: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let kinds: Vec<_> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&(u64::from(id), "systemd-creds".to_owned())),
        "{kinds:?}"
    );

    let creds = deliver(&env, &key);
    let daemon = serve(&env, &creds);
    assert_eq!(read_through(&env, "db-password"), b"s3cret-value");
    drop(daemon);

    // Another credential opens nothing, and says so without printing either key.
    let wrong: Vec<u8> = (0..32u8).collect();
    let creds = deliver(&env, &wrong);
    let (code, err) = refused(&env, Some(&creds), NAME);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn bad_credential_sources_are_refused_with_what_to_do() {
    let env = Env::new();
    // Not started by systemd: no $CREDENTIALS_DIRECTORY.
    let (code, err) = refused(&env, None, NAME);
    assert_ne!(code, 0);
    assert!(
        err.contains("CREDENTIALS_DIRECTORY") && err.contains("LoadCredentialEncrypted"),
        "{err}"
    );

    // Not a plain file name.
    let dir = env.path("credentials");
    std::fs::create_dir_all(&dir).unwrap();
    let (_, err) = refused(&env, Some(&dir), "../pass");
    assert!(err.contains("plain file names"), "{err}");

    // Missing.
    let (_, err) = refused(&env, Some(&dir), NAME);
    assert!(err.contains(NAME) && err.contains("cannot read"), "{err}");

    // Readable by others: refused before it is read.
    let file = dir.join(NAME);
    std::fs::write(&file, [7u8; 32]).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = refused(&env, Some(&dir), NAME);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("chmod 600"), "{err}");

    // Too short to be one of tresor's.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, [7u8; 8]).unwrap();
    let (_, err) = refused(&env, Some(&dir), NAME);
    assert!(err.contains("at least 32"), "{err}");
}

/// Whether `systemd-creds encrypt` works here (root with a host key or TPM2).
fn systemd_creds_works(dir: &Path) -> Result<(), String> {
    let probe = dir.join("probe.cred");
    let out = Command::new("systemd-creds")
        .args(["encrypt", "--name=probe", "-"])
        .arg(&probe)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("systemd-creds cannot run: {e}"))?;
    if out.status.success() {
        let _ = std::fs::remove_file(&probe);
        Ok(())
    } else {
        Err(format!(
            "systemd-creds encrypt fails here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn keyslot_add_systemd_creds_then_unattended_unlock() {
    let env = Env::new();
    if let Err(why) = systemd_creds_works(env.dir.path()) {
        eprintln!("skipped: {why}");
        return;
    }
    env.set("api-token", b"tok-value-1234", &[]);
    let sealed = env.path("credstore/tresor-unlock.cred");
    let out = sealed.to_str().unwrap();
    let r = env.run(
        &[
            "keyslot",
            "add",
            "--systemd-creds",
            NAME,
            "--credential-out",
            out,
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("LoadCredentialEncrypted={NAME}:")),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing secret on stdout");
    let mode = std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Never over an existing credential.
    let again = env.run(
        &[
            "keyslot",
            "add",
            "--systemd-creds",
            NAME,
            "--credential-out",
            out,
        ],
        None,
    );
    assert_eq!(again.code, 7, "{}", again.stderr);
    assert!(
        again.stderr.contains("never overwrites"),
        "{}",
        again.stderr
    );

    // What systemd does at service start for LoadCredentialEncrypted=NAME:PATH.
    let creds = env.path("credentials");
    std::fs::create_dir_all(&creds).unwrap();
    let plain = creds.join(NAME);
    let dec = Command::new("systemd-creds")
        .arg("decrypt")
        .arg(format!("--name={NAME}"))
        .arg(&sealed)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        dec.status.success(),
        "{}",
        String::from_utf8_lossy(&dec.stderr)
    );
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o400)).unwrap();

    let _daemon = serve(&env, &creds);
    assert_eq!(read_through(&env, "api-token"), b"tok-value-1234");
}

#[test]
fn init_refuses_a_credential_as_its_first_keyslot() {
    let env = Env::empty();
    let mut c = env.cmd();
    c.arg("--store")
        .arg(&env.store)
        .args(["--unlock-credential", NAME, "init", "--insecure-kdf"]);
    let r = env.finish(c, None);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("keyslot add --keyfile PATH | --systemd-creds NAME"),
        "{}",
        r.stderr
    );
    assert!(!env.store.exists());
}
