//! Strict base64url (RFC 4648 §5, no padding), as JWS requires.
//!
//! The decoder refuses padding, whitespace, characters outside the URL-safe alphabet and
//! non-canonical trailing bits, so one byte string has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the unpadded base64url encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes unpadded, canonical base64url; `None` on any deviation.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes exactly `N` bytes of canonical base64url.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    // N bytes encode to ceil(4N/3) characters without padding; check before allocating.
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    decode(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            assert_eq!(decode(&encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn refuses_non_canonical_forms() {
        assert_eq!(decode("QQ"), Some(b"A".to_vec()));
        assert_eq!(decode("QQ=="), None, "padding");
        assert_eq!(decode("QR"), None, "non-zero trailing bits");
        assert_eq!(decode("Q Q"), None, "whitespace");
        assert_eq!(decode("QQ+/"), None, "standard alphabet");
        assert_eq!(decode("Q"), None, "impossible length");
    }

    #[test]
    fn decode_array_checks_length() {
        let text = encode([7u8; 32]);
        assert_eq!(decode_array::<32>(&text), Some([7u8; 32]));
        assert_eq!(decode_array::<32>(&encode([7u8; 31])), None);
        assert_eq!(decode_array::<32>(&encode([7u8; 33])), None);
    }
}
