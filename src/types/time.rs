//! Timestamps in JSON: RFC 3339 UTC with exactly six fractional digits (microseconds, the
//! store's resolution), so every time the API or the CLI prints has one shape
//! (`2026-01-02T03:04:05.123400Z`, never `.1234Z` beside `.933823605Z`). Any RFC 3339 time is
//! accepted on input.
//!
//! Use as `#[serde(with = "crate::types::time")]`, or `crate::types::time::option` for an
//! `Option<Timestamp>`.

use jiff::Timestamp;
use jiff::fmt::temporal::DateTimePrinter;
use serde::{Deserialize, Deserializer, Serializer};

const PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(6));

/// `t` as the API prints it: RFC 3339 UTC, microseconds.
pub fn format(t: Timestamp) -> String {
    PRINTER.timestamp_to_string(&t)
}

/// Serializes with [`format`].
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// Deserializes any RFC 3339 time.
///
/// # Errors
/// Text that is not an RFC 3339 time.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    Timestamp::deserialize(d)
}

/// The same for an `Option<Timestamp>` (`null` when absent).
pub mod option {
    use super::{Deserialize, Deserializer, Serializer, Timestamp, format};

    /// Serializes `Some` with [`format`](super::format), `None` as none.
    ///
    /// # Errors
    /// The serializer's.
    #[allow(clippy::ref_option)] // the signature serde's `with` calls
    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&format(*t)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional RFC 3339 time.
    ///
    /// # Errors
    /// Text that is not an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Option::<Timestamp>::deserialize(d)
    }
}

/// The same for a map of times (`{"name": time}`).
pub mod map {
    use std::collections::BTreeMap;

    use super::{Deserialize, Deserializer, Serializer, Timestamp, format};

    /// Serializes each time with [`format`](super::format).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, t)| (k, format(*t))))
    }

    /// Deserializes a map of RFC 3339 times.
    ///
    /// # Errors
    /// A value that is not an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Timestamp>, D::Error> {
        BTreeMap::<String, Timestamp>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_six_fractional_digits() {
        for (input, printed) in [
            ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000Z"),
            ("2026-01-02T03:04:05.37934Z", "2026-01-02T03:04:05.379340Z"),
            (
                "2026-01-02T03:04:05.933823605Z",
                "2026-01-02T03:04:05.933823Z",
            ),
        ] {
            let t: Timestamp = input.parse().expect("parses");
            assert_eq!(format(t), printed);
        }
    }
}
