//! Key files as PEM: written as PKCS#8 v1 (RFC 8410, what `openssl genpkey -algorithm ed25519`
//! writes, and what OpenSSL 3.0, Python `cryptography` and Node's `crypto` read); read as v1 or
//! v2 (RFC 5958, with the public key). An encrypted PKCS#8 or an OpenSSH key is named, with how
//! to convert it, rather than refused as "not a key".

use crate::keys::error::KeyError;
use ed25519_dalek::SigningKey as DalekSigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, KeypairBytes};
use std::path::Path;
use zeroize::Zeroizing;

/// `key` as a PKCS#8 v1 PEM document: the seed only, no public key.
///
/// # Errors
///
/// When the DER encoder fails (it does not for 32 bytes).
pub(crate) fn encode(key: &DalekSigningKey) -> Result<Zeroizing<String>, ed25519_dalek::pkcs8::Error> {
    // `KeypairBytes` zeroizes its secret on drop.
    let bytes = KeypairBytes { secret_key: key.to_bytes(), public_key: None };
    bytes.to_pkcs8_pem(LineEnding::LF)
}

/// The Ed25519 key in the PEM text `pem`, read from `source`.
///
/// # Errors
///
/// [`KeyError::EncryptedKey`] or [`KeyError::OpenSshKey`] for those formats, naming the
/// conversion; [`KeyError::NotAKey`] for anything else that is not an Ed25519 PKCS#8 key.
pub(crate) fn decode(pem: &str, source: &Path) -> Result<DalekSigningKey, KeyError> {
    match label(pem) {
        Some("ENCRYPTED PRIVATE KEY") => Err(KeyError::EncryptedKey(source.to_owned())),
        Some("OPENSSH PRIVATE KEY") => Err(KeyError::OpenSshKey(source.to_owned())),
        _ => DalekSigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::NotAKey(source.to_owned())),
    }
}

/// The label of the first PEM boundary in `pem` (`PRIVATE KEY` in `-----BEGIN PRIVATE KEY-----`).
fn label(pem: &str) -> Option<&str> {
    pem.lines().find_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_v1_and_reads_v1_and_v2() {
        let key = DalekSigningKey::from_bytes(&[7; 32]);
        let v1 = encode(&key).unwrap();
        // SEQUENCE of 46 bytes: version 0, the algorithm, the seed; nothing else.
        let der = ed25519_dalek::pkcs8::spki::der::pem::decode_vec(v1.as_bytes()).unwrap().1;
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(der.len(), 48);
        assert_eq!(decode(&v1, Path::new("k")).unwrap().to_bytes(), key.to_bytes());
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(decode(&v2, Path::new("k")).unwrap().to_bytes(), key.to_bytes());
    }

    #[test]
    fn other_formats_are_named() {
        let pem = |label: &str| format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
        assert!(matches!(decode(&pem("ENCRYPTED PRIVATE KEY"), Path::new("k")), Err(KeyError::EncryptedKey(_))));
        assert!(matches!(decode(&pem("OPENSSH PRIVATE KEY"), Path::new("k")), Err(KeyError::OpenSshKey(_))));
        assert!(matches!(decode(&pem("RSA PRIVATE KEY"), Path::new("k")), Err(KeyError::NotAKey(_))));
        assert!(matches!(decode("", Path::new("k")), Err(KeyError::NotAKey(_))));
    }
}
