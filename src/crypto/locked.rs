//! Key material on pages of its own, locked into RAM (SPEC §4.6).
//!
//! `mlockall` needs an unlimited memlock limit (or root); an unprivileged daemon runs under the
//! default 8 MiB limit, which a whole process outgrows. The keys need one page each, so each
//! [`Locked`] value gets a page-aligned allocation of its own (no other value shares its pages,
//! so unlocking one never unlocks another) locked with `region::lock` — a safe wrapper over
//! `mlock`/`munlock`; the crate is `forbid(unsafe_code)`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use zeroize::Zeroize;

/// Aligns (and so pads) its content to a page: the allocation holding it holds nothing else.
/// 4 KiB is the page size on x86-64 and the smallest on the other targets.
#[repr(C, align(4096))]
struct Page<T>(T);

/// Bytes currently locked by [`Locked`] values, for the startup log and tests.
static LOCKED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A value kept on locked pages of its own, wiped when dropped.
pub struct Locked<T: Zeroize> {
    // Field order matters: the value is wiped (in `Drop`) before the guard unlocks its pages.
    page: Box<Page<T>>,
    guard: Option<region::LockGuard>,
}

impl<T: Zeroize> Locked<T> {
    /// Moves `value` onto pages of its own and locks them. When the memlock limit refuses
    /// (another daemon of the same user took it all), the value is kept unlocked and a warning
    /// says so; the key still works.
    pub fn new(value: T) -> Self {
        let page = Box::new(Page(value));
        let size = std::mem::size_of::<Page<T>>();
        let guard = match region::lock(std::ptr::from_ref(&*page), size) {
            Ok(g) => {
                LOCKED_BYTES.fetch_add(size, Ordering::Relaxed);
                Some(g)
            }
            Err(e) => {
                tracing::warn!("cannot mlock key pages ({size} bytes), they may be swapped: {e}");
                None
            }
        };
        Self { page, guard }
    }

    /// Whether the pages are locked.
    #[cfg(test)]
    pub fn is_locked(&self) -> bool {
        self.guard.is_some()
    }
}

/// Bytes of key material currently on locked pages.
#[cfg(test)]
pub fn locked_bytes() -> usize {
    LOCKED_BYTES.load(Ordering::Relaxed)
}

impl<T: Zeroize> Deref for Locked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.page.0
    }
}

impl<T: Zeroize> DerefMut for Locked<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.page.0
    }
}

impl<T: Zeroize> Drop for Locked<T> {
    fn drop(&mut self) {
        self.page.0.zeroize();
        if self.guard.take().is_some() {
            LOCKED_BYTES.fetch_sub(std::mem::size_of::<Page<T>>(), Ordering::Relaxed);
        }
    }
}

impl<T: Zeroize> std::fmt::Debug for Locked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Locked([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_value_has_pages_of_its_own() {
        let a = Locked::new([7u8; 32]);
        let b = Locked::new([9u8; 32]);
        let (pa, pb) = (
            std::ptr::from_ref(&*a) as usize,
            std::ptr::from_ref(&*b) as usize,
        );
        assert_eq!(pa % 4096, 0);
        assert_eq!(pb % 4096, 0);
        assert_ne!(pa / 4096, pb / 4096);
        assert_eq!(*a, [7u8; 32]);
        assert_eq!(format!("{a:?}"), "Locked([redacted])");
        // Under the default 8 MiB limit two pages always fit.
        assert!(a.is_locked() && b.is_locked());
        assert!(locked_bytes() >= 2 * 4096);
    }
}
