//! The X.509 expiry of a `certificate` secret's PEM value, for `report rotation`. Nothing of the
//! value leaves this module; errors say what was expected, never what was found.

use jiff::Timestamp;
use x509_parser::pem::Pem;

/// The earliest `notAfter` of the certificates in a PEM bundle (other blocks, such as a
/// private key stored with the certificate, are skipped).
///
/// # Errors
/// A short reason when no certificate parses.
pub fn not_after(pem: &[u8]) -> Result<Timestamp, &'static str> {
    let mut earliest: Option<Timestamp> = None;
    for block in Pem::iter_from_buffer(pem) {
        let Ok(block) = block else {
            return Err("the value is not PEM");
        };
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|_| "a CERTIFICATE block is not valid X.509")?;
        let t = Timestamp::from_second(cert.validity().not_after.timestamp())
            .map_err(|_| "notAfter is out of range")?;
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    earliest.ok_or("no CERTIFICATE block in the value")
}

#[cfg(test)]
mod tests {
    use super::not_after;

    #[test]
    fn not_pem_is_reported_without_the_value() {
        assert!(not_after(b"hello").is_err());
        assert_eq!(
            not_after(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err("no CERTIFICATE block in the value")
        );
    }
}
