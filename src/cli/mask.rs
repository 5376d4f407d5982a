//! Masking for `run`: every occurrence of an injected value in the child's output becomes
//! `***`, streamed chunk by chunk.
//!
//! A value split across two reads is still found: the tail of a chunk that could be the start
//! of a value is held back (the carry) until the next chunk decides it. Nothing else is held,
//! so a prompt without a newline shows at once. Values shorter than [`MIN_LEN`] bytes are not
//! masked (masking `a` or `1` would garble all output and protect nothing).

use zeroize::Zeroizing;

use crate::types::SecretBytes;

/// What a masked value is replaced with.
pub const MASK: &[u8] = b"***";
/// The shortest value that is masked.
pub const MIN_LEN: usize = 4;

/// The masking state of one output stream.
pub struct Masker {
    /// Distinct values of at least [`MIN_LEN`] bytes, longest first.
    values: Vec<SecretBytes>,
    /// Bytes held back because they may begin a value.
    carry: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("values", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// Whether every occurrence of `value` in output would be masked: it is [`MIN_LEN`] bytes or
/// longer even without its trailing whitespace. (`tresor mcp` refuses to inject others: a
/// model must never see a value, not even a short one.)
pub fn maskable(value: &SecretBytes) -> bool {
    value.expose().trim_ascii_end().len() >= MIN_LEN
}

/// What matching at one position found.
enum At {
    /// A value of this length starts here.
    Value(usize),
    /// The bytes from here to the end could begin a value: wait for more.
    Undecided,
    /// Nothing starts here.
    Nothing,
}

impl Masker {
    /// A masker for these values. A value with a trailing newline is masked with and without
    /// it (programs often print a value read from a file without its newline).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretBytes>) -> Self {
        let mut v: Vec<SecretBytes> = Vec::new();
        for s in values {
            let bytes = s.expose();
            let trimmed = bytes.trim_ascii_end();
            for b in [bytes, trimmed] {
                if b.len() >= MIN_LEN && !v.iter().any(|x| x.expose() == b) {
                    v.push(SecretBytes::new(b.to_vec()));
                }
            }
        }
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            values: v,
            carry: Zeroizing::new(Vec::new()),
        }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn at(&self, buf: &[u8], eof: bool) -> At {
        for v in &self.values {
            let v = v.expose();
            if buf.starts_with(v) {
                return At::Value(v.len());
            }
            // Longest first: a longer value still undecided must be decided before a shorter
            // one that matches now is taken.
            if !eof && buf.len() < v.len() && v.starts_with(buf) {
                return At::Undecided;
            }
        }
        At::Nothing
    }

    /// Masks `buf`, returning what may be written now; with `eof`, nothing is held back.
    fn scan(&mut self, buf: &[u8], eof: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            match self.at(&buf[i..], eof) {
                At::Value(n) => {
                    out.extend_from_slice(MASK);
                    i += n;
                }
                At::Undecided => {
                    self.carry.extend_from_slice(&buf[i..]);
                    return out;
                }
                At::Nothing => {
                    out.push(buf[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// Feeds one chunk read from the child; returns the bytes to write.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.values.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        buf.extend_from_slice(chunk);
        self.scan(&buf, false)
    }

    /// The end of the stream: whatever was held back, masked where it still can be.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        self.scan(&buf, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let v: Vec<SecretBytes> = values.iter().map(|s| SecretBytes::from(*s)).collect();
        Masker::new(&v)
    }

    /// Feeds `text` in pieces of `size` bytes and returns everything written.
    fn run(m: &mut Masker, text: &str, size: usize) -> String {
        let mut out = Vec::new();
        for piece in text.as_bytes().chunks(size) {
            out.extend(m.feed(piece));
        }
        out.extend(m.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn values_are_masked_in_every_split() {
        let text = "token=hunter2-long; again hunter2-long. short abc stays; hunter2 too";
        for size in 1..=text.len() {
            let mut m = masker(&["hunter2-long", "hunter2", "abc"]);
            assert_eq!(
                run(&mut m, text, size),
                "token=***; again ***. short abc stays; *** too",
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn longest_first_and_prefix_at_the_end() {
        let mut m = masker(&["abcd", "abcdefgh"]);
        assert_eq!(run(&mut m, "abcdefgh abcdefg abcd", 3), "*** ***efg ***");
        let mut m = masker(&["secret-value"]);
        // A prefix of a value at the very end is written as it is.
        assert_eq!(run(&mut m, "prompt: secret-", 4), "prompt: secret-");
    }

    #[test]
    fn trailing_newline_values_match_without_it() {
        let mut m = masker(&["line-value\n"]);
        assert_eq!(run(&mut m, "x line-value y\n", 5), "x *** y\n");
        assert!(masker(&["ab"]).is_empty());
    }

    #[test]
    fn short_values_are_not_maskable() {
        assert!(maskable(&SecretBytes::from("abcd")));
        assert!(!maskable(&SecretBytes::from("abc")));
        assert!(!maskable(&SecretBytes::from("abc\n")));
    }

    #[test]
    fn only_undecided_tails_are_held() {
        let mut m = masker(&["password"]);
        assert_eq!(m.feed(b"enter: "), b"enter: ");
        assert_eq!(m.feed(b"pass"), b"");
        assert_eq!(m.feed(b"port"), b"passport");
        assert_eq!(m.finish(), b"");
    }
}
