//! `import --format dotenv|json FILE`: many secrets at once. Everything is parsed and checked
//! before anything is written; on the file the write is one transaction.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Ctx;
use super::args::{ImportArgs, ImportFormat};
use super::dotenv;
use super::export::{ExportDoc, SecretDoc};
use super::output;
use super::reference::reason;
use crate::error::{Error, Result};
use crate::protocol::{decode_bytes, decode_map};
use crate::types::{Scope, SecretBytes, SetRequest, validate_name};
use crate::unlock::read_secret_input;

/// One secret to write.
type Item = (String, SetRequest);

/// The secret name of a dotenv key: `GITHUB_PAT` → `github-pat` (what `run` maps back to
/// `GITHUB_PAT`), or the key itself with `--keep-names`.
fn name_of_key(key: &str, keep: bool) -> String {
    if keep {
        key.to_owned()
    } else {
        key.to_ascii_lowercase().replace('_', "-")
    }
}

fn from_dotenv(source: &str, text: &str, scope: &Scope, keep: bool) -> Result<Vec<Item>> {
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    let mut items = Vec::new();
    for e in dotenv::parse(source, text)? {
        let at = format!("{source} line {}", e.line);
        let name = name_of_key(&e.key, keep);
        validate_name(&name).map_err(|x| {
            Error::invalid(
                &at,
                format!("{} does not make a secret name: {}", e.key, reason(&x)),
            )
        })?;
        if let Some(first) = lines.insert(name.clone(), e.line) {
            return Err(Error::invalid(
                &at,
                format!(
                    "{} names the secret {name} again (first on line {first})",
                    e.key
                ),
            ));
        }
        let req = SetRequest {
            scope: scope.clone(),
            value: Some(e.value),
            allow_empty: true,
            ..SetRequest::default()
        };
        items.push((name, req));
    }
    Ok(items)
}

/// A serde error without the input it quotes: `invalid type: string "hunter2", expected u32`
/// becomes `invalid type: string, expected u32` (the quoted part may be a value).
fn quiet(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    for lead in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(lead) {
            let kind = rest.split([' ', ',']).next().unwrap_or_default();
            let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
            return format!("{lead}{kind}{expected}");
        }
    }
    msg
}

/// One JSON secret object to a write; `at` names it in errors.
fn doc_to_item(at: &str, name: String, doc: SecretDoc, scope: &Scope) -> Result<Item> {
    let bad = |e: &Error| Error::invalid(at, reason(e));
    validate_name(&name).map_err(|e| bad(&e))?;
    let value = decode_bytes("value", doc.value.as_ref(), doc.value_base64.as_ref())
        .map_err(|e| bad(&e))?;
    let fields = decode_map("fields", &doc.fields, &doc.fields_base64).map_err(|e| bad(&e))?;
    if value.is_none() && fields.is_empty() {
        return Err(Error::invalid(at, "no value, value_base64 or fields"));
    }
    let req = SetRequest {
        scope: doc.scope.unwrap_or_else(|| scope.clone()),
        value: Some(value.unwrap_or_default()),
        fields,
        secret_type: doc.secret_type,
        description: doc.description,
        integration: doc.integration,
        meta: doc.meta,
        max_age_days: doc.max_age_days,
        max_versions: doc.max_versions,
        allow_empty: true,
    };
    Ok((name, req))
}

fn from_json(source: &str, bytes: &[u8], scope: &Scope) -> Result<Vec<Item>> {
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(
            format!("{source} line {}", e.line()),
            format!("not JSON: {}", quiet(&e)),
        )
    })?;
    let Value::Object(map) = root else {
        return Err(Error::invalid(source, "expected a JSON object"));
    };
    if map.contains_key("tresor_export") {
        let doc: ExportDoc = serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::invalid(source, quiet(&e)))?;
        return doc
            .secrets
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let at = format!("{source} secrets[{i}]");
                let name = d
                    .name
                    .clone()
                    .ok_or_else(|| Error::invalid(&at, "no name"))?;
                doc_to_item(&at, name, d, scope)
            })
            .collect();
    }
    let mut items = Vec::with_capacity(map.len());
    for (name, v) in map {
        let at = format!("{source} field {name:?}");
        let doc = match v {
            Value::String(s) => SecretDoc {
                value: Some(s.as_str().into()),
                ..SecretDoc::default()
            },
            v @ Value::Object(_) => {
                serde_json::from_value(v).map_err(|e| Error::invalid(&at, quiet(&e)))?
            }
            _ => return Err(Error::invalid(&at, "expected a string or an object")),
        };
        if doc.name.as_ref().is_some_and(|n| *n != name) {
            return Err(Error::invalid(&at, "its name differs from its key"));
        }
        items.push(doc_to_item(&at, name, doc, scope)?);
    }
    Ok(items)
}

fn read_input(args: &ImportArgs) -> Result<SecretBytes> {
    read_secret_input(&args.file, "import")
}

/// `import`.
pub fn import(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    let scope: Scope = args.scope.as_deref().unwrap_or("org").parse()?;
    let source = if args.file.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let raw = read_input(args)?;
    let items = match args.format {
        ImportFormat::Dotenv => {
            let text = raw
                .as_str()
                .ok_or_else(|| Error::invalid(&source, "a dotenv file is UTF-8 text"))?;
            from_dotenv(&source, text, &scope, args.keep_names)?
        }
        ImportFormat::Json => from_json(&source, raw.expose(), &scope)?,
    };
    drop(raw);
    let names: Vec<String> = items
        .iter()
        .map(|(n, r)| format!("{}/{n}", r.scope))
        .collect();
    let n = if items.is_empty() {
        0
    } else {
        // Opened first: a passphrase prompt must not share the line with a bar.
        let backend = ctx.backend()?;
        let bar = super::progress::bar(items.len(), "importing");
        let n = super::progress::set_many(&backend, items, &bar);
        bar.finish_and_clear();
        n?
    };
    if ctx.json() {
        return output::print_json(&serde_json::json!({ "imported": n, "secrets": names }));
    }
    eprintln!("imported {n} secrets");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_names_and_duplicates() {
        let items = from_dotenv("f", "GITHUB_PAT=x\nexport db.url=y\n", &Scope::Org, false)
            .expect("parses");
        let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["github-pat", "db.url"]);
        let e = from_dotenv("f", "A_B=1\na_b=2\n", &Scope::Org, false).expect_err("dup");
        assert!(e.to_string().starts_with("invalid f line 2:"), "{e}");
        let e = from_dotenv("f", "_X=1\n", &Scope::Org, false).expect_err("bad name");
        assert!(e.to_string().starts_with("invalid f line 1:"), "{e}");
        let kept = from_dotenv("f", "A_B=1\n", &Scope::Org, true).expect("keep");
        assert_eq!(kept[0].0, "A_B");
    }

    #[test]
    fn json_errors_name_the_field_and_never_the_value() {
        let e = from_json(
            "j",
            br#"{"a": {"value": "x", "max_age_days": "hunter2"}}"#,
            &Scope::Org,
        )
        .expect_err("bad type")
        .to_string();
        assert!(e.starts_with("invalid j field \"a\":"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = from_json("j", b"{\n\"a\": 1,\n}", &Scope::Org).expect_err("syntax");
        assert!(e.to_string().starts_with("invalid j line 3:"), "{e}");
        let e = from_json("j", br#"{"a": {"valu": "x"}}"#, &Scope::Org).expect_err("unknown");
        assert!(e.to_string().contains("valu"), "{e}");
        let ok = from_json(
            "j",
            br#"{"a": "x", "b": {"value_base64": "AP8=", "type": "token"}}"#,
            &Scope::Org,
        )
        .expect("parses");
        assert_eq!(ok[1].1.value.as_ref().expect("value").expose(), &[0, 255]);
    }
}
