//! `inject`: `{{ tresor://[scope/]name[#field] }}` references in a template, rendered into a
//! new 0600 file. Only references are touched: other `{{ ... }}` text stays as it is.

use crate::ops::Api;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use zeroize::Zeroizing;

use super::Ctx;
use super::args::InjectArgs;
use super::files::{self, Existing};
use super::output;
use super::reference::{Reference, reason};
use crate::error::{Error, Result};
use crate::types::SecretBytes;
use crate::unlock::read_secret_input;

/// A template cut into literal text and references.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(Range<usize>),
    /// A reference and the line it is on.
    Ref(Reference, usize),
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Cuts `t` into pieces. `source` names the template in errors.
pub(crate) fn parse(source: &str, t: &[u8]) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut counted = 0;
    while let Some(open) = find(t, b"{{", i) {
        line += t[counted..open].split(|&b| b == b'\n').count() - 1;
        counted = open;
        let inner = open + 2;
        let body = &t[inner..];
        let lead = body
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if !body[lead..].starts_with(b"tresor:") {
            pieces.push(Piece::Text(i..inner));
            i = inner;
            continue;
        }
        let bad = |why: String| Error::invalid(format!("{source} line {line}"), why);
        let close = find(t, b"}}", inner)
            .filter(|&c| !t[inner..c].contains(&b'\n'))
            .ok_or_else(|| {
                bad("a {{ tresor://... reference is not closed by }} on its line".into())
            })?;
        let text = std::str::from_utf8(&t[inner..close])
            .map_err(|_| bad("a reference is UTF-8 text".into()))?
            .trim_matches([' ', '\t']);
        let r = Reference::parse(text).map_err(|e| bad(reason(&e)))?;
        pieces.push(Piece::Text(i..open));
        pieces.push(Piece::Ref(r, line));
        i = close + 2;
    }
    pieces.push(Piece::Text(i..t.len()));
    Ok(pieces)
}

fn read_template(args: &InjectArgs) -> Result<SecretBytes> {
    read_secret_input(&args.input, "template")
}

/// Every distinct reference's value, and the distinct secrets they resolved to (`a` and
/// `a#user` are two references to one secret).
type Resolved = (BTreeMap<Reference, SecretBytes>, BTreeSet<String>);

/// Reads every distinct reference once. Missing ones are reported together (exit 3).
fn resolve(ctx: &Ctx, pieces: &[Piece], template: Option<&std::path::Path>) -> Result<Resolved> {
    let mut lines: BTreeMap<&Reference, usize> = BTreeMap::new();
    for p in pieces {
        if let Piece::Ref(r, line) = p {
            lines.entry(r).or_insert(*line);
        }
    }
    if lines.is_empty() {
        return Ok((BTreeMap::new(), BTreeSet::new()));
    }
    let refs: Vec<&Reference> = lines.keys().copied().collect();
    let queries: Vec<_> = refs.iter().map(|r| (*r).clone()).collect();
    let b = ctx.backend()?;
    let results = b.read_values(&queries);
    let mut values = BTreeMap::new();
    let mut secrets = BTreeSet::new();
    let mut missing = Vec::new();
    for (r, res) in refs.into_iter().zip(results) {
        match res {
            Ok(v) => {
                super::upstream::warn_stale(&r.to_string(), &v);
                secrets.insert(format!("{}/{}", v.scope, v.name));
                values.insert(r.clone(), v.value);
            }
            Err(Error::NotFound { .. }) => missing.push(format!("{r} (line {})", lines[r])),
            Err(e) => return Err(e),
        }
    }
    if !missing.is_empty() {
        return Err(Error::not_found("references", missing.join(", ")));
    }
    if let Some(path) = template {
        let ids = queries.iter().map(|q| crate::ops::refs::SecretId {
            name: q.name.clone(),
            scope: q.scope.clone(),
        });
        super::refs::record(
            &b,
            crate::types::RefKind::Template,
            path,
            &ids.collect::<Vec<_>>(),
        );
    }
    Ok((values, secrets))
}

/// `inject`.
pub fn inject(ctx: &Ctx, args: &InjectArgs) -> Result<()> {
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Keep("--force")
    };
    files::check_target(&args.output, existing)?;
    let template = read_template(args)?;
    let source = if args.input.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        args.input.display().to_string()
    };
    let t = template.expose();
    let pieces = parse(&source, t)?;
    let from_file = (args.input.as_os_str() != "-").then_some(args.input.as_path());
    let (values, secrets) = resolve(ctx, &pieces, from_file)?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        t.len() + values.values().map(SecretBytes::len).sum::<usize>(),
    ));
    let mut count = 0;
    for p in &pieces {
        match p {
            Piece::Text(range) => out.extend_from_slice(&t[range.clone()]),
            Piece::Ref(r, _) => {
                count += 1;
                out.extend_from_slice(values[r].expose());
            }
        }
    }
    files::write_private(&args.output, &out, existing)?;
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "out": args.output.display().to_string(),
            "references": count,
            "secrets": secrets.len(),
        }));
    }
    eprintln!(
        "wrote {} ({count} references to {} secrets)",
        args.output.display(),
        secrets.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(t: &str) -> Vec<(String, usize)> {
        parse("t", t.as_bytes())
            .expect("parses")
            .into_iter()
            .filter_map(|p| match p {
                Piece::Ref(r, l) => Some((r.to_string(), l)),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn references_with_and_without_spaces() {
        let got =
            refs("a={{tresor://x}}\nb={{  tresor://team:t/y#f\t}} {{ other }}\n{{ tresor://z }}");
        assert_eq!(
            got,
            [
                ("tresor://x".to_owned(), 1),
                ("tresor://team:t/y#f".to_owned(), 2),
                ("tresor://z".to_owned(), 3)
            ]
        );
        let pieces = parse("t", b"{{ x }} {{").expect("parses");
        assert!(pieces.iter().all(|p| matches!(p, Piece::Text(_))));
    }

    #[test]
    fn malformed_references_name_their_line() {
        for (t, line) in [
            ("ok\n{{ tresor://a b }}", 2),
            ("\n\n{{ tresor://x\n}}", 3),
            ("{{ tresor:/x }}", 1),
            ("{{ tresor://x#f f }}", 1),
        ] {
            let e = parse("t", t.as_bytes()).expect_err(t).to_string();
            assert!(e.starts_with(&format!("invalid t line {line}:")), "{e}");
        }
    }
}
