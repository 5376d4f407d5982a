//! How a [`SecretRec`] is laid out in its sealed row (format 2): the same metadata, with what
//! can be derived left out, so that a 150-byte secret fits 14 rows to a 4 KiB leaf (SPEC §10,
//! ≤ 320 bytes per secret).
//!
//! - `updated_at` and each version's `at` are stored as offsets from `created_at` (a bulk
//!   import's are all 0: one byte instead of eight);
//! - `updated_by` is `None` when it is `created_by`, and a version's `by` is `None` when it is
//!   `updated_by`;
//! - the current version's field names and size are not stored: they are read off the value
//!   the record holds.
//!
//! The record in memory is unchanged: readers see the same metadata as before. Offsets wrap
//! rather than overflow (a row opens only after its MAC checks, so they are the writer's).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::records::{SecretRec, ValueRec, VersionRec};
use crate::types::{Scope, SecretType};

#[derive(Serialize)]
struct RowOut<'a> {
    name: &'a str,
    scope: &'a Scope,
    stype: SecretType,
    description: &'a Option<String>,
    integration: &'a Option<String>,
    meta: &'a BTreeMap<String, String>,
    created_at: i64,
    created_by: &'a str,
    updated_after: i64,
    updated_by: Option<&'a str>,
    version: u64,
    max_versions: u32,
    max_age_days: Option<u32>,
    versions: VersionsOut<'a>,
    /// `None` when the current value is still in `values` ([`SecretRec::current_in_values`]).
    current: Option<&'a ValueRec>,
}

struct VersionsOut<'a>(&'a SecretRec);

#[derive(Serialize)]
struct VersionOut<'a> {
    version: u64,
    after: i64,
    by: Option<&'a str>,
    fields: &'a [String],
    size: u64,
    from: Option<u64>,
}

impl Serialize for VersionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rec = self.0;
        s.collect_seq(rec.versions.iter().map(|v| {
            // The current version's names and size are read off the value, when the record
            // holds it.
            let current = v.version == rec.version && !rec.current_in_values;
            VersionOut {
                version: v.version,
                after: v.at.wrapping_sub(rec.created_at),
                by: (v.by != rec.updated_by).then_some(v.by.as_str()),
                fields: if current { &[] } else { &v.fields },
                size: if current { 0 } else { v.size },
                from: v.from,
            }
        }))
    }
}

#[derive(Deserialize)]
struct RowIn {
    name: String,
    scope: Scope,
    stype: SecretType,
    description: Option<String>,
    integration: Option<String>,
    meta: BTreeMap<String, String>,
    created_at: i64,
    created_by: String,
    updated_after: i64,
    updated_by: Option<String>,
    version: u64,
    max_versions: u32,
    max_age_days: Option<u32>,
    versions: Vec<VersionIn>,
    current: Option<ValueRec>,
}

#[derive(Deserialize)]
struct VersionIn {
    version: u64,
    after: i64,
    by: Option<String>,
    fields: Vec<String>,
    size: u64,
    from: Option<u64>,
}

impl Serialize for SecretRec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RowOut {
            name: &self.name,
            scope: &self.scope,
            stype: self.stype,
            description: &self.description,
            integration: &self.integration,
            meta: &self.meta,
            created_at: self.created_at,
            created_by: &self.created_by,
            updated_after: self.updated_at.wrapping_sub(self.created_at),
            updated_by: (self.updated_by != self.created_by).then_some(self.updated_by.as_str()),
            version: self.version,
            max_versions: self.max_versions,
            max_age_days: self.max_age_days,
            versions: VersionsOut(self),
            current: (!self.current_in_values).then_some(&self.current),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SecretRec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RowIn::deserialize(d)?;
        let updated_by = r.updated_by.unwrap_or_else(|| r.created_by.clone());
        let versions = r
            .versions
            .into_iter()
            .map(|v| {
                let current = v.version == r.version && r.current.is_some();
                VersionRec {
                    version: v.version,
                    at: r.created_at.wrapping_add(v.after),
                    by: v.by.unwrap_or_else(|| updated_by.clone()),
                    fields: match (&r.current, current) {
                        (Some(c), true) => c.fields.iter().map(|(n, _)| n.clone()).collect(),
                        _ => v.fields,
                    },
                    size: match (&r.current, current) {
                        (Some(c), true) => c.value.len() as u64,
                        _ => v.size,
                    },
                    from: v.from,
                }
            })
            .collect();
        Ok(Self {
            name: r.name,
            scope: r.scope,
            stype: r.stype,
            description: r.description,
            integration: r.integration,
            meta: r.meta,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.created_at.wrapping_add(r.updated_after),
            updated_by,
            version: r.version,
            max_versions: r.max_versions,
            max_age_days: r.max_age_days,
            versions,
            current_in_values: r.current.is_none(),
            current: r.current.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{decode_payload, encode_payload};
    use crate::types::SecretBytes;

    fn version(version: u64, at: i64, by: &str, fields: &[&str], size: u64) -> VersionRec {
        VersionRec {
            version,
            at,
            by: by.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            size,
            from: (version == 3).then_some(1),
        }
    }

    fn rec(updated_by: &str) -> SecretRec {
        SecretRec {
            name: "db/creds".into(),
            scope: Scope::Team("ops".into()),
            stype: SecretType::Credentials,
            description: Some("d".into()),
            integration: Some("pg".into()),
            meta: [("env".to_owned(), "prod".to_owned())].into(),
            created_at: 1_700_000_000_000_000,
            created_by: "alice".into(),
            updated_at: 1_700_000_500_000_000,
            updated_by: updated_by.into(),
            version: 3,
            max_versions: 5,
            max_age_days: Some(30),
            versions: vec![
                version(1, 1_700_000_000_000_000, "alice", &["user"], 7),
                version(2, 1_699_999_000_000_000, "bob", &[], 0),
                version(3, 1_700_000_400_000_000, "carol", &["password", "user"], 4),
            ],
            current: ValueRec {
                value: SecretBytes::from("pw-1"),
                fields: vec![
                    ("password".into(), SecretBytes::from("p")),
                    ("user".into(), SecretBytes::from("u")),
                ],
            },
            current_in_values: false,
        }
    }

    fn same(a: &SecretRec, b: &SecretRec) {
        assert_eq!(format!("{:?}", a.to_meta()), format!("{:?}", b.to_meta()));
        assert_eq!(a.current.value, b.current.value);
        assert_eq!(a.current.fields, b.current.fields);
    }

    /// What readers see is what was written, whoever wrote each part and whenever (a version
    /// older than the secret's creation too: a bundle can carry one).
    #[test]
    fn a_record_reads_back_as_written() {
        for by in ["alice", "carol", "dave"] {
            let r = rec(by);
            let back: SecretRec = decode_payload(
                &encode_payload(&r).expect("encode"),
                crate::format::TableId::Secrets,
                &[0; 32],
            )
            .expect("decode");
            same(&r, &back);
        }
    }

    /// A bulk import's record (one version, one writer, one time) spends one byte on each
    /// derivable part: 24 bytes less than writing them out, for a 150-byte value and a
    /// five-letter principal.
    #[test]
    fn derivable_parts_cost_a_byte_each() {
        let mut r = rec("alice");
        r.updated_at = r.created_at;
        r.version = 1;
        r.versions = vec![version(1, r.created_at, "alice", &[], 150)];
        r.current = ValueRec {
            value: SecretBytes::new(vec![b'x'; 150]),
            fields: Vec::new(),
        };
        let row = encode_payload(&r).expect("encode").len();
        let v1 = super::super::records::SecretRecV1 {
            name: r.name.clone(),
            scope: r.scope.clone(),
            stype: r.stype,
            description: r.description.clone(),
            integration: r.integration.clone(),
            meta: r.meta.clone(),
            created_at: r.created_at,
            created_by: r.created_by.clone(),
            updated_at: r.updated_at,
            updated_by: r.updated_by.clone(),
            last_used: None,
            version: 1,
            max_versions: r.max_versions,
            max_age_days: r.max_age_days,
            versions: r.versions.clone(),
        };
        // Format 1's record less its `last_used`, and the value's own payload less its
        // version byte.
        let spelled_out = encode_payload(&v1).expect("encode").len() - 1
            + encode_payload(&r.current).expect("encode").len()
            - 1;
        // Two times (7 bytes each), two names ("alice": 5 each), the size (150: 1), less the
        // byte that says the record holds its current value.
        assert_eq!(spelled_out - row, 7 + 7 + 5 + 5 + 1 - 1);
        let back: SecretRec = decode_payload(
            &encode_payload(&r).expect("encode"),
            crate::format::TableId::Secrets,
            &[0; 32],
        )
        .expect("decode");
        same(&r, &back);
    }

    /// A current value the migration left in `values`: the row says so, and the current
    /// version keeps its stored field names and size.
    #[test]
    fn a_current_value_left_in_values_round_trips() {
        let mut a = rec("carol");
        a.current = ValueRec::default();
        a.current_in_values = true;
        let bytes = encode_payload(&a).expect("encode");
        let b: SecretRec =
            decode_payload(&bytes, crate::format::TableId::Secrets, &[0; 32]).expect("decode");
        assert!(b.current_in_values);
        assert!(b.current.value.is_empty());
        let v3 = b.versions.iter().find(|v| v.version == 3).expect("v3");
        assert_eq!(v3.fields, vec!["password".to_owned(), "user".to_owned()]);
        assert_eq!(v3.size, 4);
        let c: SecretRec = decode_payload(
            &encode_payload(&rec("carol")).expect("encode"),
            crate::format::TableId::Secrets,
            &[0; 32],
        )
        .expect("decode");
        assert!(!c.current_in_values);
    }
}
