//! The layers of the crate, checked by reading its source (issue 6, "a core without cycles").
//!
//! The core (error, types, crypto, format, store, policy, paths, sys) knows nothing of its front
//! ends (cli, daemon, client, protocol, ops); `policy` decides on `types` alone, not on the
//! store; `protocol` and `client` speak `types` and `error`, never `store`. And no file in
//! `src/` is over 600 lines.
//!
//! A dependency is any `crate::<module>` path in code (a `use` line, grouped or not, or a path
//! written inline); comments are skipped. A name the crate root re-exports (`crate::Store`,
//! `crate::Client`) counts as the module it comes from, read off `src/lib.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CORE: &[&str] = &[
    "error", "types", "crypto", "format", "store", "policy", "paths", "sys",
];
const FRONT_ENDS: &[&str] = &[
    "cli", "daemon", "client", "protocol", "ops", "upstream", "unlock",
];
const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module of the crate a file belongs to: its first path component under `src/`
/// (`store/read.rs` → `store`, `policy.rs` → `policy`, `lib.rs` → `lib`).
fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comments (line comments, doc comments, block comments).
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if rest.starts_with('"') {
            // Skip string literals, so that text such as "crate::x" in a message is not code.
            let mut chars = rest.char_indices().skip(1);
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            out.push_str("\"\"");
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path that starts at `crate::`: `crate::store::Store` gives
/// `store`; `crate::{error::Error, types::{A, B}}` gives `error` and `types`.
fn crate_roots(code: &str) -> BTreeSet<String> {
    let mut roots = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let preceded_by_ident = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let after = rest[i + "crate::".len()..].trim_start();
        rest = &rest[i + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        let id = ident_at(&group[j..]);
                        if !id.is_empty() {
                            roots.insert(id.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let id = ident_at(after);
            if !id.is_empty() {
                roots.insert(id.to_owned());
            }
        }
    }
    roots
}

/// Names the crate root re-exports from a module (`pub use store::{Store, ...}` in lib.rs),
/// so that `crate::Store` counts as `store`.
fn root_reexports() -> BTreeMap<String, String> {
    let lib = code_of(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs"));
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = ident_at(path).to_owned();
        let names = path[module.len()..].trim_start_matches("::");
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.trim();
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() && name != "*" {
                map.insert(name.to_owned(), module.clone());
            }
        }
    }
    map
}

/// Every file with the modules of the crate it depends on.
fn dependencies() -> Vec<(PathBuf, String, BTreeSet<String>)> {
    let reexports = root_reexports();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .map(|f| {
            let code = code_of(&std::fs::read_to_string(&f).expect("read source"));
            let deps = crate_roots(&code)
                .into_iter()
                .map(|r| reexports.get(&r).cloned().unwrap_or(r))
                .collect();
            let layer = layer_of(&f);
            (f, layer, deps)
        })
        .collect()
}

fn violations(from: impl Fn(&str) -> bool, forbidden: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for (file, layer, deps) in dependencies() {
        if !from(&layer) {
            continue;
        }
        for d in deps.iter().filter(|d| forbidden.contains(&d.as_str())) {
            let rel = file.strip_prefix(src()).expect("under src").display();
            bad.push(format!("src/{rel} uses crate::{d}"));
        }
    }
    bad
}

#[test]
fn the_core_imports_no_front_end() {
    let bad = violations(|l| CORE.contains(&l), FRONT_ENDS);
    assert!(
        bad.is_empty(),
        "the core reaches into a front end:\n{}",
        bad.join("\n")
    );
}

#[test]
fn policy_imports_nothing_from_the_store() {
    let bad = violations(|l| l == "policy", &["store"]);
    assert!(
        bad.is_empty(),
        "policy must decide on types alone:\n{}",
        bad.join("\n")
    );
}

#[test]
fn protocol_imports_nothing_from_the_store() {
    let bad = violations(|l| l == "protocol", &["store"]);
    assert!(
        bad.is_empty(),
        "protocol must speak types and error only:\n{}",
        bad.join("\n")
    );
}

#[test]
fn client_imports_nothing_from_the_store() {
    let bad = violations(|l| l == "client", &["store"]);
    assert!(
        bad.is_empty(),
        "client must speak types and error only:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f)
                .expect("read source")
                .lines()
                .count();
            (n > MAX_LINES).then(|| format!("{} has {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// The checker itself: grouped, nested and inline paths are all seen; comments and strings
/// are not; root re-exports count as their module.
#[test]
fn the_checker_sees_every_kind_of_path() {
    let code = code_of(
        "use crate::{error::Error, types::{A, B}};\n\
         // use crate::cli::Nope;\n\
         /* crate::daemon::Nope */\n\
         let s = \"crate::client::Nope\";\n\
         fn f() -> crate::store::Store { x::crate_like::y; crate::policy::decide() }\n",
    );
    let roots: Vec<String> = crate_roots(&code).into_iter().collect();
    assert_eq!(roots, ["error", "policy", "store", "types"]);
    let re = root_reexports();
    assert_eq!(re.get("Store").map(String::as_str), Some("store"));
}
