//! Tamper vectors: one file per case in `tests/data/tamper/`, each naming an edit of the
//! golden store and the error class it must end in (`integrity` naming the table and record,
//! `wrong passphrase`, a refused version, or `audit verify` naming the first broken seq).
//! Every vector is applied to a private copy of `tests/data/golden-v1.tresor` and run through
//! one check (`tamper_support::check`): open, unlock both ways, list, read every value, list
//! principals, verify the audit chain. A wrong value is never a class: it fails the test.
//!
//! The files are written by the ignored `generate_tamper_vectors` below, which records the
//! class it observed; every recorded class was reviewed by hand (tests/data/tamper/README.md).
#![allow(clippy::unwrap_used)]

mod common;
mod tamper_support;

use tamper_support::{Vector, catalog, check, golden_copy, run_vector, vectors_dir};

fn vector_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none())
        .collect();
    files.sort();
    files
}

#[test]
fn every_tamper_vector_is_detected_with_its_class() {
    let files = vector_files();
    assert!(files.len() >= 40, "only {} vectors", files.len());
    let mut wrong = Vec::new();
    for f in &files {
        let v = Vector::parse(&std::fs::read_to_string(f).unwrap());
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match run_vector(&v) {
            None => wrong.push(format!("{name}: not detected (expected {})", v.expect)),
            Some(o)
                if (o.class.as_str(), o.record.as_ref(), o.at.as_str())
                    != (v.expect.as_str(), v.record.as_ref(), v.at.as_str()) =>
            {
                wrong.push(format!(
                    "{name}: expected {} {:?} at {}, got {} {:?} at {}",
                    v.expect, v.record, v.at, o.class, o.record, o.at
                ));
            }
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The check passes on the untouched file, so every class a vector records comes from its edit
/// (and an edit that silently did nothing fails the vector test as "not detected").
#[test]
fn the_untouched_golden_file_passes_the_check() {
    let (_d, path) = golden_copy();
    assert_eq!(check(&path), None);
}

#[test]
fn the_vector_format_round_trips() {
    for f in vector_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let v = Vector::parse(&text);
        assert_eq!(Vector::parse(&v.render()), v, "{}", f.display());
        assert!(!v.description.is_empty(), "{}: no description", f.display());
    }
}

/// Writes `tests/data/tamper/*` from the list in `tamper_support::catalog`, recording what the
/// check observed. Run with `cargo test --test tamper_vectors -- --ignored
/// generate_tamper_vectors`, then review every `expect:` line before committing.
#[test]
#[ignore = "writes tests/data/tamper; run by hand, then review the recorded classes"]
fn generate_tamper_vectors() {
    let dir = vectors_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = catalog::build();
    for (file, description, edits) in catalog {
        let mut v = Vector {
            description: description.clone(),
            expect: String::new(),
            record: None,
            at: String::new(),
            edits,
        };
        let o = run_vector(&v).unwrap_or_else(|| panic!("{file}: {description}: not detected"));
        v.expect = o.class;
        v.record = o.record;
        v.at = o.at;
        println!("{file}: {} | {:?} | at {}", v.expect, v.record, v.at);
        std::fs::write(dir.join(&file), v.render()).unwrap();
    }
}
