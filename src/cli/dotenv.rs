//! A dotenv parser, for `import --format dotenv` and `run --env-file`.
//!
//! ```text
//! # a comment; blank lines are skipped
//! export GITHUB_PAT=ghp_xxx        # `export ` is optional; text after ` #` is a comment
//! DB_URL = "postgres://u@h/db\n"   # double quotes: \n \r \t \" \\ \$ escapes, may span lines
//! RAW='no $escapes here'           # single quotes: literal, may span lines
//! ```
//!
//! Keys are `[A-Za-z_][A-Za-z0-9_.-]*`. There is no variable expansion. Errors name the line
//! and what was expected, never the value.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::types::SecretBytes;

/// One `KEY=VALUE` assignment.
#[derive(Debug)]
pub struct Entry {
    /// The line the assignment starts on, from 1.
    pub line: usize,
    /// The key.
    pub key: String,
    /// The value, unquoted and unescaped.
    pub value: SecretBytes,
}

fn err(source: &str, line: usize, reason: impl Into<String>) -> Error {
    Error::invalid(format!("{source} line {line}"), reason)
}

/// Whether `key` is a dotenv key.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parses a whole dotenv text. `source` names it in errors (a path, `stdin`).
///
/// # Errors
/// `InvalidArgument` with field `SOURCE line N` for the first line that does not parse.
pub fn parse(source: &str, text: &str) -> Result<Vec<Entry>> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let line = lines[i].trim_end_matches('\r').trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|r| r.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(source, start + 1, "expected KEY=VALUE"));
        };
        let key = key.trim_end();
        if !valid_key(key) {
            return Err(err(
                source,
                start + 1,
                "a key is a letter or _ followed by letters, digits, _ . -",
            ));
        }
        let spaced = rest.starts_with([' ', '\t']);
        let rest = rest.trim_start();
        let mut value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => quoted(source, &lines, start, &mut i, &rest[1..], q)?,
            // `KEY= # note`: an empty value and a comment.
            Some('#') if spaced => Zeroizing::new(String::new()),
            _ => unquoted(rest),
        };
        out.push(Entry {
            line: start + 1,
            key: key.to_owned(),
            value: SecretBytes::new(std::mem::take(&mut *value).into_bytes()),
        });
    }
    Ok(out)
}

/// An unquoted value: up to a ` #` comment, trailing whitespace dropped.
fn unquoted(rest: &str) -> Zeroizing<String> {
    let rest = rest.trim_end_matches('\r');
    let end = rest
        .char_indices()
        .find(|&(j, c)| c == '#' && rest[..j].ends_with([' ', '\t']))
        .map_or(rest.len(), |(j, _)| j);
    Zeroizing::new(rest[..end].trim_end().to_owned())
}

/// A quoted value starting after the opening quote on line `start`; continues on the next
/// lines (advancing `next`) until the closing quote.
fn quoted(
    source: &str,
    lines: &[&str],
    start: usize,
    next: &mut usize,
    first: &str,
    q: char,
) -> Result<Zeroizing<String>> {
    let mut value = Zeroizing::new(String::new());
    let mut text = Zeroizing::new(first.to_owned());
    loop {
        let mut chars = text.char_indices();
        while let Some((j, c)) = chars.next() {
            match c {
                c if c == q => {
                    let tail = text[j + 1..].trim();
                    if !(tail.is_empty() || tail.starts_with('#')) {
                        return Err(err(
                            source,
                            *next,
                            "unexpected text after the closing quote",
                        ));
                    }
                    return Ok(value);
                }
                '\\' if q == '"' => match chars.next().map(|(_, e)| e) {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some('t') => value.push('\t'),
                    Some(e @ ('"' | '\\' | '$')) => value.push(e),
                    Some(e) => {
                        value.push('\\');
                        value.push(e);
                    }
                    None => value.push('\\'),
                },
                c => value.push(c),
            }
        }
        let Some(line) = lines.get(*next) else {
            return Err(err(
                source,
                start + 1,
                format!("the {q} quote opened here is never closed"),
            ));
        };
        value.push('\n');
        text = Zeroizing::new((*line).to_owned());
        *next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(usize, String, String)> {
        parse("t", text)
            .expect("parses")
            .into_iter()
            .map(|e| (e.line, e.key, e.value.as_str().expect("utf-8").to_owned()))
            .collect()
    }

    #[test]
    fn the_usual_forms() {
        let got = pairs(
            "# c\n\nexport A=1\nB = two words # note\nC=\"x\\ny \\\"q\\\"\"\nD='$raw # kept'\n\
             E=\nF=a#b\nG= # only a note\nH=#not-a-note\n",
        );
        let want = [
            (3, "A", "1"),
            (4, "B", "two words"),
            (5, "C", "x\ny \"q\""),
            (6, "D", "$raw # kept"),
            (7, "E", ""),
            (8, "F", "a#b"),
            (9, "G", ""),
            (10, "H", "#not-a-note"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0, g.1.as_str(), g.2.as_str()), w);
        }
    }

    #[test]
    fn quotes_span_lines_and_crlf_is_dropped() {
        let got = pairs("K=\"a\nb\"\r\nL=v\r\n");
        assert_eq!(got[0], (1, "K".into(), "a\nb".into()));
        assert_eq!(got[1], (3, "L".into(), "v".into()));
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line) in [
            ("A=1\nnot an assignment\n", 2),
            ("A=1\n1X=2\n", 2),
            ("A=1\nB=\"open\n\n", 2),
            ("A='x' y\n", 1),
        ] {
            let e = parse("f", text).expect_err(text);
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid f line {line}:")),
                "{e}"
            );
        }
    }
}
