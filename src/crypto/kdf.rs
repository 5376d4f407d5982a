//! Argon2id for passphrase keyslots: parameters, range checks, calibration.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use super::{KEY_LEN, Key};
use crate::error::{Error, Result};

/// Floor for memory in KiB (64 MiB, RFC 9106's second recommended option).
pub const MIN_MEMORY_KIB: u32 = 64 * 1024;
/// Floor for iterations.
pub const MIN_ITERATIONS: u32 = 3;
/// Ceiling for memory in KiB (4 GiB): a file asking for more is refused before any work.
pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// Ceiling for iterations.
pub const MAX_ITERATIONS: u32 = 64;
/// Ceiling for lanes.
pub const MAX_PARALLELISM: u32 = 16;
/// What `--insecure-kdf` uses: instant, for tests only.
pub const INSECURE: KdfParams = KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// Argon2id parameters, as stored in a passphrase keyslot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The floor of SPEC §4.4: m = 64 MiB, t = 3, p = 1.
    pub const MIN: Self = Self {
        memory_kib: MIN_MEMORY_KIB,
        iterations: MIN_ITERATIONS,
        parallelism: 1,
    };

    /// Whether these are below the secure floor.
    pub fn is_insecure(&self) -> bool {
        self.memory_kib < MIN_MEMORY_KIB || self.iterations < MIN_ITERATIONS
    }

    /// Range-checks parameters read from a file or given by a user. Below-floor parameters are
    /// accepted only when `allow_insecure` (the store was made with `--insecure-kdf`).
    ///
    /// # Errors
    /// `InvalidArgument` naming the parameter and its range.
    pub fn check(&self, allow_insecure: bool) -> Result<()> {
        let (min_m, min_t) = if allow_insecure {
            (8, 1)
        } else {
            (MIN_MEMORY_KIB, MIN_ITERATIONS)
        };
        if !(min_m..=MAX_MEMORY_KIB).contains(&self.memory_kib) {
            return Err(Error::invalid(
                "kdf memory",
                format!(
                    "{} KiB is outside {}..={} KiB ({} MiB to {} MiB)",
                    self.memory_kib,
                    min_m,
                    MAX_MEMORY_KIB,
                    min_m / 1024,
                    MAX_MEMORY_KIB / 1024
                ),
            ));
        }
        if !(min_t..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(Error::invalid(
                "kdf iterations",
                format!("{} is outside {min_t}..={MAX_ITERATIONS}", self.iterations),
            ));
        }
        if !(1..=MAX_PARALLELISM).contains(&self.parallelism) {
            return Err(Error::invalid(
                "kdf parallelism",
                format!("{} is outside 1..={MAX_PARALLELISM}", self.parallelism),
            ));
        }
        Ok(())
    }
}

/// Derives a key-encryption key from a passphrase. The caller has range-checked `params`.
///
/// # Errors
/// `Internal` when Argon2 rejects the parameters or cannot allocate.
pub fn derive(passphrase: &[u8], salt: &[u8], params: &KdfParams) -> Result<Key> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| Error::invalid("kdf parameters", e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
    let mut out = Key::zeroed();
    argon
        .hash_password_into(passphrase, salt, out.bytes_mut())
        .map_err(|e| Error::Internal {
            message: format!("argon2id failed: {e}"),
            source: None,
        })?;
    Ok(out)
}

/// Picks parameters that take about `target` on this host, never below [`KdfParams::MIN`]:
/// memory grows first (up to 256 MiB), then passes.
///
/// # Errors
/// `Internal` when Argon2 fails.
// The casts convert positive factors (> 1, checked above them) of in-range parameters.
#[allow(clippy::cast_sign_loss)]
pub fn calibrate(target: Duration) -> Result<KdfParams> {
    let base = KdfParams::MIN;
    let start = Instant::now();
    derive(b"calibration", b"calibration salt", &base)?;
    let took = start.elapsed().as_secs_f64().max(1e-3);
    let factor = target.as_secs_f64() / took;
    if factor <= 1.0 {
        return Ok(base);
    }
    let mem_factor = factor.min(4.0);
    let memory_kib =
        ((f64::from(MIN_MEMORY_KIB) * mem_factor) as u32 / 1024 * 1024).max(MIN_MEMORY_KIB);
    let rest = factor / (f64::from(memory_kib) / f64::from(MIN_MEMORY_KIB));
    let iterations =
        ((f64::from(MIN_ITERATIONS) * rest).round() as u32).clamp(MIN_ITERATIONS, MAX_ITERATIONS);
    Ok(KdfParams {
        memory_kib,
        iterations,
        parallelism: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        assert!(KdfParams::MIN.check(false).is_ok());
        assert!(INSECURE.check(false).is_err());
        assert!(INSECURE.check(true).is_ok());
        let huge = KdfParams {
            memory_kib: u32::MAX,
            ..KdfParams::MIN
        };
        assert!(huge.check(true).is_err());
        let many = KdfParams {
            iterations: 10_000,
            ..KdfParams::MIN
        };
        assert!(many.check(false).is_err());
        let lanes = KdfParams {
            parallelism: 0,
            ..KdfParams::MIN
        };
        assert!(lanes.check(false).is_err());
    }

    #[test]
    fn derive_is_deterministic_and_salted() {
        let a = derive(b"pw", b"salt-salt-salt-1", &INSECURE).expect("kdf");
        let b = derive(b"pw", b"salt-salt-salt-1", &INSECURE).expect("kdf");
        let c = derive(b"pw", b"salt-salt-salt-2", &INSECURE).expect("kdf");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
