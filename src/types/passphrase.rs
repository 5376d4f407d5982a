//! Passphrases: wiped on drop, never printed.

use std::fmt;

use super::SecretBytes;

/// A passphrase, wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(SecretBytes);

impl Passphrase {
    /// Wraps passphrase bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBytes::new(bytes))
    }
    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
    /// Reads a passphrase from file contents: one trailing newline (`\n` or `\r\n`) is dropped,
    /// as `echo pw > file` writes one.
    pub fn from_file_contents(mut bytes: Vec<u8>) -> Self {
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        Self::new(bytes)
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_file_trims_one_newline() {
        assert_eq!(
            Passphrase::from_file_contents(b"pw\n".to_vec()).expose(),
            b"pw"
        );
        assert_eq!(
            Passphrase::from_file_contents(b"pw\r\n".to_vec()).expose(),
            b"pw"
        );
        assert_eq!(
            Passphrase::from_file_contents(b"pw\n\n".to_vec()).expose(),
            b"pw\n"
        );
        assert_eq!(
            format!("{:?}", Passphrase::from("x")),
            "Passphrase([redacted])"
        );
    }
}
