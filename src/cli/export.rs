//! `export --format json --plaintext OUT`: every secret the caller may read, values in
//! plaintext, into a new 0600 file that `import --format json` reads back.
//!
//! ```json
//! {
//!   "tresor_export": 1,
//!   "exported_at": "2025-01-01T00:00:00Z",
//!   "secrets": [
//!     {"name": "github-pat", "scope": "org", "type": "token", "version": 3,
//!      "value": "…", "fields": {}, "meta": {}, "max_versions": 10}
//!   ]
//! }
//! ```

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Ctx;
use super::args::ExportArgs;
use super::backend::Backend;
use super::files::{self, Existing};
use super::output;
use crate::error::{Error, Result};
use crate::ops::Api;
use crate::ops::export::ExportItem;
use crate::protocol::{SecretText, encode_bytes, encode_map};
use crate::types::{ListFilter, Scope, SecretMeta, SecretType, SecretValue};

/// The version of the export document.
pub const EXPORT_VERSION: u32 = 1;

/// One secret of an export document, and one object of `import --format json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDoc {
    /// Name (in a name → object map it may be left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// The version exported (informational; import writes a new version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The value, UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretText>,
    /// The value, base64, when not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<SecretText>,
    /// Fields, UTF-8.
    #[serde(default)]
    pub fields: BTreeMap<String, SecretText>,
    /// Fields, base64, when not UTF-8.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields_base64: BTreeMap<String, SecretText>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Integration tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// Labels.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Rotation policy in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
    /// How many versions are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u32>,
}

/// The whole export document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDoc {
    /// [`EXPORT_VERSION`]; also how `import` tells this document from a name → value map.
    pub tresor_export: u32,
    /// When it was written.
    #[serde(with = "crate::types::time")]
    pub exported_at: Timestamp,
    /// The secrets, sorted by scope and name.
    pub secrets: Vec<SecretDoc>,
}

impl SecretDoc {
    /// An upper bound of its pretty JSON's length: values may grow by escaping (at most 6
    /// bytes per byte, `\u00XX`), metadata is counted generously.
    fn size_hint(&self) -> usize {
        let texts = self.value.iter().chain(self.value_base64.iter());
        let fields = self.fields.iter().chain(self.fields_base64.iter());
        let values: usize = texts.map(|t| t.expose().len()).sum::<usize>()
            + fields
                .map(|(k, v)| k.len() + v.expose().len())
                .sum::<usize>();
        let meta: usize = self.meta.iter().map(|(k, v)| k.len() + v.len()).sum();
        let text = self.description.as_ref().map_or(0, String::len)
            + self.integration.as_ref().map_or(0, String::len)
            + self.name.as_ref().map_or(0, String::len);
        6 * (values + meta + text) + 64 * (self.fields.len() + self.meta.len()) + 512
    }

    fn new(m: &SecretMeta, v: &SecretValue) -> Self {
        let (value, value_base64) = encode_bytes(&v.value);
        let (fields, fields_base64) = encode_map(&v.fields);
        Self {
            name: Some(m.name.clone()),
            scope: Some(m.scope.clone()),
            secret_type: Some(v.secret_type),
            version: Some(v.version),
            value,
            value_base64,
            fields,
            fields_base64,
            description: m.description.clone(),
            integration: m.integration.clone(),
            meta: m.meta.clone(),
            max_age_days: m.max_age_days,
            max_versions: Some(m.max_versions),
        }
    }
}

/// Every secret, with its value (one `export` audit record each); and how many were listed
/// but gone by the time their values were read.
fn read_all(backend: &Backend) -> Result<(Vec<SecretDoc>, usize)> {
    let metas = backend.list(&ListFilter::default())?;
    let items: Vec<ExportItem> = metas
        .iter()
        .map(|m| ExportItem {
            name: m.name.clone(),
            scope: Some(m.scope.clone()),
        })
        .collect();
    let (values, missing) = backend.export(&items)?;
    let by_key: BTreeMap<(String, &str), &SecretMeta> = metas
        .iter()
        .map(|m| ((m.scope.to_string(), m.name.as_str()), m))
        .collect();
    let secrets = values
        .iter()
        .filter_map(|v| {
            by_key
                .get(&(v.scope.to_string(), v.name.as_str()))
                .map(|m| SecretDoc::new(m, v))
        })
        .collect();
    Ok((secrets, missing.len()))
}

/// `export`.
pub fn export(ctx: &Ctx, args: &ExportArgs) -> Result<()> {
    if !args.plaintext {
        return Err(Error::invalid(
            "export",
            "OUT would hold every value in plaintext; pass --plaintext to confirm",
        ));
    }
    files::check_target(&args.out, Existing::Keep(""))?;
    let backend = ctx.backend()?;
    let (secrets, skipped) = read_all(&backend)?;
    let count = secrets.len();
    drop(backend);
    let doc = ExportDoc {
        tresor_export: EXPORT_VERSION,
        exported_at: crate::sys::now(),
        secrets,
    };
    // Room for everything up front: a growing buffer would leave copies of values behind.
    let room: usize = doc.secrets.iter().map(SecretDoc::size_hint).sum();
    let mut buf = Zeroizing::new(Vec::with_capacity(room + 1024));
    serde_json::to_writer_pretty(&mut *buf, &doc)
        .map_err(|e| Error::internal("cannot encode the export", e))?;
    buf.push(b'\n');
    drop(doc);
    files::write_private(&args.out, &buf, Existing::Keep(""))?;
    if ctx.json() {
        return output::print_json(&serde_json::json!({
            "out": args.out.display().to_string(),
            "exported": count,
            "skipped": skipped,
        }));
    }
    eprintln!(
        "exported {count} secrets to {} in plaintext; delete it when done",
        args.out.display()
    );
    if skipped > 0 {
        eprintln!("note: {skipped} secrets were deleted while exporting and are left out");
    }
    Ok(())
}
