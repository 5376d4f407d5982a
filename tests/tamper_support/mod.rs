//! The tamper-vector file format, the edits it names and the check every vector runs
//! (`tests/tamper_vectors.rs`; the files are in `tests/data/tamper/`, described in its README).
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod catalog;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{Table, edit, get};
use tresor::{
    Actor, Channel, Error, ListFilter, Passphrase, Role, Scope, SecretBytes, Store, UnlockSecret,
};

/// The golden file's passphrase and key file (tests/data/README.md).
pub const PASSPHRASE: &str = "tresor golden v1 passphrase";

pub fn keyfile() -> SecretBytes {
    SecretBytes::new((0..48u8).collect())
}

pub fn golden_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1.tresor")
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tamper")
}

/// The owner the golden store was made by.
pub fn golden_owner() -> Actor {
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

/// A private 0600 copy of the golden file in a fresh temp dir; the committed file is only
/// read.
pub fn golden_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("golden.tresor");
    std::fs::write(&path, std::fs::read(golden_path()).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

/// One edit of the file, as a vector's `edit:` line names it. Row keys are written as the
/// table keys them: `meta` by name, `keyslots` and `audit` by number, the hashed tables
/// (`secrets`, `values`, `principals`) in hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `xor TABLE KEY OFFSET HEX`: XOR bytes at OFFSET of the row's value.
    Xor(Table, Vec<u8>, usize, Vec<u8>),
    /// `set TABLE KEY OFFSET HEX`: overwrite bytes at OFFSET.
    Set(Table, Vec<u8>, usize, Vec<u8>),
    /// `put TABLE KEY HEX`: replace the row's whole value (inserting it if absent).
    Put(Table, Vec<u8>, Vec<u8>),
    /// `copy TABLE KEY TABLE2 KEY2`: the value of one row written into another.
    Copy(Table, Vec<u8>, Table, Vec<u8>),
    /// `swap TABLE KEY KEY2`: two rows of one table exchange values.
    Swap(Table, Vec<u8>, Vec<u8>),
    /// `delete TABLE KEY`.
    Delete(Table, Vec<u8>),
    /// `truncate TABLE KEY LEN`: the row's value cut to LEN bytes.
    Truncate(Table, Vec<u8>, usize),
    /// `truncate-file LEN`: the file itself cut to LEN bytes.
    TruncateFile(usize),
}

pub fn table_name(t: Table) -> &'static str {
    match t {
        Table::Meta => "meta",
        Table::Keyslots => "keyslots",
        Table::Secrets => "secrets",
        Table::Values => "values",
        Table::Principals => "principals",
        Table::Audit => "audit",
        Table::Staging => "staging",
        Table::LastUsed => "last_used",
    }
}

fn parse_table(s: &str) -> Table {
    [
        Table::Meta,
        Table::Keyslots,
        Table::Secrets,
        Table::Values,
        Table::Principals,
        Table::Audit,
        Table::Staging,
        Table::LastUsed,
    ]
    .into_iter()
    .find(|&t| table_name(t) == s)
    .unwrap_or_else(|| panic!("unknown table {s:?}"))
}

pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn key_text(t: Table, k: &[u8]) -> String {
    match t {
        Table::Meta => std::str::from_utf8(k).unwrap().to_owned(),
        Table::Keyslots | Table::LastUsed => u32::from_be_bytes(k.try_into().unwrap()).to_string(),
        Table::Audit | Table::Staging => u64::from_be_bytes(k.try_into().unwrap()).to_string(),
        Table::Secrets | Table::Values | Table::Principals => hex(k),
    }
}

fn parse_key(t: Table, s: &str) -> Vec<u8> {
    match t {
        Table::Meta => s.as_bytes().to_vec(),
        Table::Keyslots | Table::LastUsed => s.parse::<u32>().unwrap().to_be_bytes().to_vec(),
        Table::Audit | Table::Staging => s.parse::<u64>().unwrap().to_be_bytes().to_vec(),
        Table::Secrets | Table::Values | Table::Principals => unhex(s),
    }
}

impl Edit {
    /// The `edit:` line's text.
    pub fn to_line(&self) -> String {
        // "TABLE KEY", as every edit names a row.
        let row = |t: &Table, k: &[u8]| format!("{} {}", table_name(*t), key_text(*t, k));
        match self {
            Self::Xor(t, k, at, b) => format!("xor {} {at} {}", row(t, k), hex(b)),
            Self::Set(t, k, at, b) => format!("set {} {at} {}", row(t, k), hex(b)),
            Self::Put(t, k, b) => format!("put {} {}", row(t, k), hex(b)),
            Self::Copy(t, k, t2, k2) => format!("copy {} {}", row(t, k), row(t2, k2)),
            Self::Swap(t, a, b) => format!("swap {} {}", row(t, a), key_text(*t, b)),
            Self::Delete(t, k) => format!("delete {}", row(t, k)),
            Self::Truncate(t, k, len) => format!("truncate {} {len}", row(t, k)),
            Self::TruncateFile(len) => format!("truncate-file {len}"),
        }
    }

    pub fn parse(line: &str) -> Self {
        let w: Vec<&str> = line.split_whitespace().collect();
        let t = || parse_table(w[1]);
        let key = || parse_key(t(), w[2]);
        let num = |i: usize| w[i].parse::<usize>().unwrap();
        match (w[0], w.len()) {
            ("xor", 5) => Self::Xor(t(), key(), num(3), unhex(w[4])),
            ("set", 5) => Self::Set(t(), key(), num(3), unhex(w[4])),
            ("put", 4) => Self::Put(t(), key(), unhex(w[3])),
            ("copy", 5) => Self::Copy(
                t(),
                key(),
                parse_table(w[3]),
                parse_key(parse_table(w[3]), w[4]),
            ),
            ("swap", 4) => Self::Swap(t(), key(), parse_key(t(), w[3])),
            ("delete", 3) => Self::Delete(t(), key()),
            ("truncate", 4) => Self::Truncate(t(), key(), num(3)),
            ("truncate-file", 2) => Self::TruncateFile(num(1)),
            _ => panic!("malformed edit line {line:?}"),
        }
    }

    /// Applies the edit to the file at `path` (through redb, except `truncate-file`).
    pub fn apply(&self, path: &Path) {
        let row = |t: Table, k: &[u8]| {
            get(path, t, k).unwrap_or_else(|| panic!("no {} row {}", table_name(t), hex(k)))
        };
        let put = |t: Table, k: &[u8], v: Vec<u8>| edit(path, t, &[(k.to_vec(), v)], &[]);
        match self {
            Self::Xor(t, k, at, b) | Self::Set(t, k, at, b) => {
                let mut v = row(*t, k);
                for (i, x) in b.iter().enumerate() {
                    let cell = &mut v[at + i];
                    *cell = if matches!(self, Self::Xor(..)) {
                        *cell ^ x
                    } else {
                        *x
                    };
                }
                put(*t, k, v);
            }
            Self::Put(t, k, b) => put(*t, k, b.clone()),
            Self::Copy(t, k, t2, k2) => put(*t2, k2, row(*t, k)),
            Self::Swap(t, a, b) => {
                let (va, vb) = (row(*t, a), row(*t, b));
                edit(path, *t, &[(a.clone(), vb), (b.clone(), va)], &[]);
            }
            Self::Delete(t, k) => {
                row(*t, k);
                edit(path, *t, &[], std::slice::from_ref(k));
            }
            Self::Truncate(t, k, len) => put(*t, k, row(*t, k)[..*len].to_vec()),
            Self::TruncateFile(len) => {
                let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                f.set_len(*len as u64).unwrap();
            }
        }
    }
}

/// One vector file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vector {
    pub description: String,
    /// The class the check must end in (see [`Outcome::class`]).
    pub expect: String,
    /// For `integrity`: the record the error names.
    pub record: Option<String>,
    /// The step of the check that must notice it.
    pub at: String,
    pub edits: Vec<Edit>,
}

impl Vector {
    pub fn parse(text: &str) -> Self {
        let mut v = Self {
            description: String::new(),
            expect: String::new(),
            record: None,
            at: String::new(),
            edits: Vec::new(),
        };
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, val) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            match k {
                "description" => val.clone_into(&mut v.description),
                "expect" => val.clone_into(&mut v.expect),
                "record" => v.record = Some(val.to_owned()),
                "at" => val.clone_into(&mut v.at),
                "edit" => v.edits.push(Edit::parse(val)),
                _ => panic!("unknown header {k:?}"),
            }
        }
        assert!(
            !v.expect.is_empty() && !v.at.is_empty() && !v.edits.is_empty(),
            "{text}"
        );
        v
    }

    pub fn render(&self) -> String {
        let mut lines = vec![
            "# tresor tamper vector: applied to a copy of tests/data/golden-v1.tresor".to_owned(),
            format!("description: {}", self.description),
            format!("expect: {}", self.expect),
        ];
        lines.extend(self.record.iter().map(|r| format!("record: {r}")));
        lines.push(format!("at: {}", self.at));
        lines.extend(self.edits.iter().map(|e| format!("edit: {}", e.to_line())));
        lines.join("\n") + "\n"
    }
}

/// What the check saw: the step that failed and how.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub at: String,
    pub class: String,
    pub record: Option<String>,
}

fn classify(at: &str, e: Error) -> Outcome {
    let (class, record) = match e {
        Error::Integrity { table, record } => (format!("integrity {table}"), Some(record)),
        Error::WrongPassphrase => ("wrong passphrase".to_owned(), None),
        Error::UnsupportedVersion { found, .. } => (format!("unsupported version {found}"), None),
        Error::InvalidArgument { field, .. } => (format!("invalid_argument {field}"), None),
        other => (format!("unexpected {}", other.code().as_str()), None),
    };
    Outcome {
        at: at.to_owned(),
        class,
        record,
    }
}

fn unlock(path: &Path, secret: &UnlockSecret) -> Result<Store, Error> {
    Store::open(path)?.unlock(secret, &golden_owner())
}

/// One read of the check: name, scope, version (current when `None`), the value written.
type Read<'a> = (&'a str, Option<&'a Scope>, Option<u64>, &'a [u8]);

/// The check every vector runs on its edited copy, in this order: open, unlock with the
/// passphrase, unlock with the key file, list, read every value and field the golden store
/// holds (each compared with what was written — a wrong value panics, it is never a class),
/// list principals, `audit verify`. Returns the first failure; `None` when nothing noticed.
pub fn check(path: &Path) -> Option<Outcome> {
    fn fail(at: &'static str) -> impl Fn(Error) -> Outcome {
        move |e| classify(at, e)
    }
    let run = || -> Result<(), Outcome> {
        Store::open(path).map_err(fail("open"))?;
        let pass = UnlockSecret::Passphrase(Passphrase::from(PASSPHRASE));
        drop(unlock(path, &pass).map_err(fail("unlock passphrase"))?);
        drop(unlock(path, &UnlockSecret::Keyfile(keyfile())).map_err(fail("unlock keyfile"))?);
        let store = unlock(path, &pass).map_err(fail("unlock passphrase"))?;
        let me = golden_owner();
        let listed = store
            .list(&me, &ListFilter::default())
            .map_err(fail("list"))?;
        assert_eq!(listed.len(), 6, "list: a secret appeared or vanished");
        let team = Scope::Team("ops".into());
        let blob: Vec<u8> = (0..=255).collect();
        let reads: [Read; 8] = [
            ("github-pat", None, Some(1), b"ghp_golden_v1"),
            ("github-pat", None, Some(2), b"ghp_golden_v2"),
            ("github-pat", None, None, b"ghp_golden_v1"),
            ("binary-blob", None, None, &blob),
            ("pruned", None, Some(2), b"p2"),
            ("pruned", None, None, b"p3"),
            ("team-secret", Some(&team), None, b"ops only"),
            ("my-secret", None, None, b"mine"),
        ];
        for (name, scope, version, want) in reads {
            let at = format!(
                "read {name} {}",
                version.map_or("current".into(), |v| format!("v{v}"))
            );
            let got = store
                .get_value(&me, name, scope, version)
                .map_err(|e| classify(&at, e))?;
            assert!(got.value.expose() == want, "{at}: a wrong value");
        }
        let creds = store
            .get_value(&me, "db/credentials", None, None)
            .map_err(fail("read db/credentials"))?;
        assert_eq!(
            creds.fields["username"].expose(),
            b"svc-db",
            "a wrong field"
        );
        assert_eq!(
            creds.fields["password"].expose(),
            &[0, 1, 2, 0xfe, 0xff],
            "a wrong field"
        );
        let principals = store.principals(&me).map_err(fail("principals"))?;
        assert_eq!(principals.len(), 3, "a principal appeared or vanished");
        let report = store.audit_verify().map_err(fail("audit verify"))?;
        if !report.ok {
            return Err(Outcome {
                at: "audit verify".into(),
                class: format!(
                    "audit verify first_broken_seq={}",
                    report
                        .first_broken_seq
                        .map_or("none".into(), |s| s.to_string())
                ),
                record: None,
            });
        }
        Ok(())
    };
    run().err()
}

/// Applies a vector's edits to a fresh copy of the golden file and runs the check.
pub fn run_vector(v: &Vector) -> Option<Outcome> {
    let (_dir, path) = golden_copy();
    for e in &v.edits {
        e.apply(&path);
    }
    check(&path)
}
