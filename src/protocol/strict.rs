//! The shape every API v1 request body must have, checked before the body is decoded into
//! its request type: serde alone would accept a JSON array as a struct (fields by position,
//! `["add","owner",1003]`) and `null` for any optional field.
//!
//! The rules, which hold for every request type of [`crate::ops`]:
//! - the body is a JSON object;
//! - no value is `null` (leave a field out to mean "not given"; no field of API v1 is
//!   nullable);
//! - no array holds an array (a list holds strings or objects; an array in an array is a
//!   struct written by position).
//!
//! The walk stores nothing it reads (no copy of a secret value), and its errors name the
//! field by its path, never a value.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Where in the body the walk is.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// The body itself.
    Root,
    /// An object member.
    Field(&'a Place<'a>, &'a str),
    /// An array element.
    Item(&'a Place<'a>, usize),
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("body"),
            Self::Field(Self::Root, k) => f.write_str(k),
            Self::Field(p, k) => write!(f, "{p}.{k}"),
            Self::Item(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

impl Place<'_> {
    fn in_array(&self) -> bool {
        matches!(self, Self::Item(..))
    }
}

/// The first rule a body breaks: the field's path and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    /// The field (`scope`, `secrets[2]`), or `body`.
    pub field: String,
    /// What is wrong and what to do.
    pub reason: String,
}

/// Checks `bytes` against the rules above. `None` when the body keeps them (or is not
/// JSON at all: the typed decode reports that with its line and column).
pub fn check(bytes: &[u8]) -> Option<Violation> {
    walk(bytes).violation
}

/// Whether the body writes an integer with a fraction or exponent (`1.0`, `1e3`): JSON
/// Schema's `integer` includes them, serde's integers do not ([`integers_normalized`]).
pub fn has_integral_float(bytes: &[u8]) -> bool {
    walk(bytes).integral_float
}

/// `bytes` with every integral float written as an integer (`3.0` → `3`).
///
/// # Errors
/// When `bytes` is not JSON.
pub fn integers_normalized(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    fn fix(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(f) = n.as_f64().filter(|_| !n.is_i64() && !n.is_u64()) {
                    let int = integral(f);
                    if let Some(i) = int.and_then(|i| u64::try_from(i).ok()) {
                        *n = i.into();
                    } else if let Some(i) = int.and_then(|i| i64::try_from(i).ok()) {
                        *n = i.into();
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(fix),
            serde_json::Value::Object(o) => o.values_mut().for_each(fix),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_slice(bytes)?;
    fix(&mut v);
    Ok(v)
}

/// `f` as an integer when it is one, within the range of u64 or i64.
#[allow(clippy::cast_possible_truncation)]
fn integral(f: f64) -> Option<i128> {
    // 2^64: beyond it no integer field of API v1 can hold the value anyway.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    (f.fract() == 0.0 && f.abs() < LIMIT).then_some(f as i128)
}

#[derive(Default)]
struct Found {
    violation: Option<Violation>,
    integral_float: bool,
}

fn walk(bytes: &[u8]) -> Found {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut found = Found::default();
    let _ = Walk {
        place: Place::Root,
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

struct Walk<'p, 'f> {
    place: Place<'p>,
    found: &'f mut Found,
}

impl Walk<'_, '_> {
    fn fail<E: de::Error>(self, reason: &str) -> Result<(), E> {
        self.found.violation = Some(Violation {
            field: self.place.to_string(),
            reason: reason.to_owned(),
        });
        Err(E::custom("refused"))
    }

    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if matches!(self.place, Place::Root) {
            return self.fail("the body is a JSON object");
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<(), E> {
        if integral(f).is_some() {
            self.found.integral_float = true;
        }
        self.scalar()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        match self.place {
            Place::Root => self.fail("the body is a JSON object"),
            _ => self.fail("null is not allowed: leave the field out instead"),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if matches!(self.place, Place::Root) {
            return self.fail("the body is a JSON object, not an array");
        }
        if self.place.in_array() {
            return self.fail("a list holds strings or objects, not arrays");
        }
        let mut i = 0;
        loop {
            let place = Place::Item(&self.place, i);
            let walk = Walk {
                place,
                found: &mut *self.found,
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let walk = Walk {
                place: Place::Field(&self.place, &key),
                found: &mut *self.found,
            };
            map.next_value_seed(walk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> Option<(String, String)> {
        check(body.as_bytes()).map(|v| (v.field, v.reason))
    }

    #[test]
    fn objects_pass_and_positional_or_null_do_not() {
        assert_eq!(refused(r#"{"op":"add","role":"owner","uid":1003}"#), None);
        assert_eq!(refused(r#"{"secrets":["a",{"name":"b"}]}"#), None);
        assert_eq!(refused("not json"), None);
        let (field, reason) = refused(r#"["add","owner",1003]"#).expect("refused");
        assert_eq!(field, "body");
        assert!(reason.contains("JSON object"), "{reason}");
        let (field, reason) = refused(r#"{"scope":null,"to":1}"#).expect("refused");
        assert_eq!(field, "scope");
        assert!(reason.contains("null"), "{reason}");
        assert_eq!(
            refused(r#"{"secrets":["a",["b","org"]]}"#).map(|v| v.0),
            Some("secrets[1]".into())
        );
        assert_eq!(
            refused(r#"{"fields":{"k":null}}"#).map(|v| v.0),
            Some("fields.k".into())
        );
        assert_eq!(refused("null").map(|v| v.0), Some("body".into()));
        assert_eq!(refused("3").map(|v| v.0), Some("body".into()));
    }

    #[test]
    fn integral_floats_become_integers() {
        assert!(has_integral_float(br#"{"to":3.0}"#));
        assert!(!has_integral_float(br#"{"to":3,"x":2.5}"#));
        let v = integers_normalized(br#"{"to":3.0,"l":[-2e0],"x":2.5}"#).expect("json");
        assert_eq!(v.to_string(), r#"{"l":[-2],"to":3,"x":2.5}"#);
    }
}
