//! The one duration grammar of every front end: `tresord --idle-lock`, `tresor audit
//! --since/--until` ages and `principal grant --expires`.
//!
//! ```text
//! duration = term { term }  |  digits          (a bare number counts seconds)
//! term     = digits [spaces] unit
//! unit     = "ms" | "s" | "m" | "min" | "h" | "d" | "w"
//! ```
//!
//! So `500ms`, `90s`, `15m`, `8h`, `7d`, `2w`, `1h30m`, `1d 12h` and `90` all parse; a sign,
//! a fraction or an unknown unit (`5y`, `5 weeks`) does not. Whitespace may stand around and
//! between terms. Ranges (more than zero, at most a year) belong to the caller: the grammar
//! accepts `0s`.

use std::time::Duration;

use crate::error::{Error, Result};

/// The units, longest spelling first (so that `min` is not read as `m` followed by `in`), with
/// their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("min", 60_000),
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

fn bad(s: &str) -> Error {
    Error::invalid(
        "duration",
        format!("expected a duration such as 90s, 15m, 8h, 7d, 2w or 1h30m; found {s:?}"),
    )
}

/// Parses a duration in the grammar above.
///
/// ```
/// use std::time::Duration;
/// use tresor::parse_duration;
///
/// assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(parse_duration("90")?, Duration::from_secs(90));
/// assert!(parse_duration("5 weeks").is_err());
/// # Ok::<(), tresor::Error>(())
/// ```
///
/// # Errors
/// `InvalidArgument` (field `duration`) naming the accepted forms and what was found, also
/// when the total overflows.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let text = s.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| bad(s))?;
        return Ok(Duration::from_secs(secs));
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    if rest.is_empty() {
        return Err(bad(s));
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad(s));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad(s))?;
        rest = rest[digits..].trim_start();
        let (unit, per) = UNITS
            .iter()
            .find(|(u, _)| {
                rest.strip_prefix(u)
                    .is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphabetic()))
            })
            .ok_or_else(|| bad(s))?;
        rest = rest[unit.len()..].trim_start();
        millis = n
            .checked_mul(*per)
            .and_then(|m| millis.checked_add(m))
            .ok_or_else(|| bad(s))?;
    }
    Ok(Duration::from_millis(millis))
}

/// Writes a duration in the grammar of [`parse_duration`], largest units first (`1h30m`,
/// `2w3d`, `500ms`, `0s`); sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let mut millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, per) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let n = millis / per;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            millis %= per;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_duration(s).expect("parses").as_secs()
    }

    #[test]
    fn every_form_either_front_end_accepted_parses() {
        // What `tresord --idle-lock` accepted.
        assert_eq!(secs("15m"), 900);
        assert_eq!(
            parse_duration("500ms").expect("parses"),
            Duration::from_millis(500)
        );
        assert_eq!(secs("90"), 90);
        assert_eq!(secs("10min"), 600);
        assert_eq!(secs("1d"), 86_400);
        assert_eq!(secs(" 5 m "), 300);
        // What `tresor audit --since` accepted.
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("2h"), 7200);
        assert_eq!(secs("7d"), 604_800);
        assert_eq!(secs("2w"), 1_209_600);
        // Combined.
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("1d 12h"), 129_600);
        assert_eq!(secs("0s"), 0);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            " ",
            "h",
            "5y",
            "-5m",
            "+5m",
            "1.5h",
            "5 weeks",
            "5mins",
            "1h30",
            "m5",
            "99999999999999999w",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let e = parse_duration("5y").expect_err("refused").to_string();
        assert!(e.contains("1h30m") && e.contains("\"5y\""), "{e}");
    }

    #[test]
    fn formats_largest_units_first() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(1_296_000)), "2w1d");
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_the_identity(millis in 0u64..=u64::MAX / 2) {
            let d = Duration::from_millis(millis);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)).ok(), Some(d));
        }

        #[test]
        fn parsing_never_panics(s in "[0-9a-z .+-]{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
