//! Ed25519 public keys as JSON Web Keys (RFC 8037 `OKP`), their RFC 7638 thumbprints, and
//! the strict loading of a JWKS into the keys a verifier trusts.

use crate::token::b64;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Most keys accepted in one JWKS.
pub const MAX_JWKS_KEYS: usize = 64;
/// Longest `kid` accepted, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// The RFC 7638 thumbprint of an Ed25519 public key: base64url SHA-256 of the canonical JWK
/// `{"crv":"Ed25519","kty":"OKP","x":"…"}`. keysmith uses it as the `kid`.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64::encode(key.as_bytes()));
    b64::encode(Sha256::digest(canonical.as_bytes()))
}

/// Verifies an Ed25519 signature the way the verifier does: exactly 64 signature bytes and
/// strict verification (`verify_strict`: canonical `S`, no small-order `R` or key).
pub fn verify_ed25519(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
}

/// A public Ed25519 JWK as published at `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, base64url.
    pub x: String,
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `EdDSA` (the default) or `Ed25519` (RFC 9864), or absent (`None`): what the issuer's
    /// `jws_alg` and `jwks_alg_member` say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

impl PublicJwk {
    /// The JWK of `key`, with its thumbprint as `kid`.
    pub fn from_key(key: &VerifyingKey) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64::encode(key.as_bytes()),
            kid: thumbprint(key),
            use_: "sig".into(),
            alg: Some(crate::token::jws::JwsAlg::EdDsa.as_str().into()),
        }
    }
}

/// A JWK Set document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

/// Why a JWKS (or one of its keys) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The document is not a JSON object with a `keys` array of objects.
    #[error("not a JWK Set: {0}")]
    Malformed(String),
    /// The set holds no keys.
    #[error("the JWK Set holds no keys")]
    Empty,
    /// The set holds more than [`MAX_JWKS_KEYS`] keys.
    #[error("the JWK Set holds more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    /// `kty` is not `OKP`.
    #[error("key {index}: kty must be \"OKP\"")]
    WrongKeyType {
        /// Position of the key in the set.
        index: usize,
    },
    /// `crv` is not `Ed25519`.
    #[error("key {index}: crv must be \"Ed25519\"")]
    WrongCurve {
        /// Position of the key in the set.
        index: usize,
    },
    /// `alg` is present and not `EdDSA` or `Ed25519`.
    #[error("key {index}: alg must be \"EdDSA\" or \"Ed25519\" when present")]
    WrongAlgorithm {
        /// Position of the key in the set.
        index: usize,
    },
    /// `use` is present and not `sig`.
    #[error("key {index}: use must be \"sig\" when present")]
    WrongUse {
        /// Position of the key in the set.
        index: usize,
    },
    /// The key carries a private part `d`: a JWKS for verifiers must never hold one.
    #[error("key {index}: holds a private key member \"d\"; publish public keys only")]
    PrivateKey {
        /// Position of the key in the set.
        index: usize,
    },
    /// `x` is not exactly 32 bytes of canonical base64url, or not a curve point.
    #[error("key {index}: x must be exactly 32 bytes of base64url encoding a curve point")]
    BadPublicKey {
        /// Position of the key in the set.
        index: usize,
    },
    /// `x` is a small-order point (such as the identity), under which signatures can be forged.
    #[error("key {index}: x is a weak (small-order) point")]
    WeakKey {
        /// Position of the key in the set.
        index: usize,
    },
    /// `kid` is empty, too long, or not a string.
    #[error("key {index}: kid must be a non-empty string of at most {MAX_KID_LEN} bytes")]
    BadKid {
        /// Position of the key in the set.
        index: usize,
    },
    /// Two keys share a `kid`.
    #[error("key {index}: duplicate kid")]
    DuplicateKid {
        /// Position of the key in the set.
        index: usize,
    },
}

/// A JWK as found in a JWKS from elsewhere: every member optional, checked one by one.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    kid: Option<serde_json::Value>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    d: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<RawJwk>,
}

/// The Ed25519 public keys a verifier trusts, by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// Loads a JWKS document, refusing it whole if any key is unusable.
    ///
    /// Each key must be `kty` `OKP`, `crv` `Ed25519`, with `x` exactly 32 bytes that decode to
    /// a curve point of large order; `alg` and `use`, when present, must be `EdDSA` (or `Ed25519`) and `sig`;
    /// no private `d`. A key without `kid` is known by its thumbprint.
    ///
    /// # Errors
    ///
    /// A [`JwkError`] naming the first offending key.
    pub fn from_jwks_json(json: &[u8]) -> Result<Self, JwkError> {
        let raw: RawJwks = serde_json::from_slice(json).map_err(|e| JwkError::Malformed(e.to_string()))?;
        if raw.keys.is_empty() {
            return Err(JwkError::Empty);
        }
        if raw.keys.len() > MAX_JWKS_KEYS {
            return Err(JwkError::TooManyKeys);
        }
        let mut set = Self::default();
        for (index, jwk) in raw.keys.into_iter().enumerate() {
            let (kid, key) = check_jwk(index, jwk)?;
            if set.keys.insert(kid, key).is_some() {
                return Err(JwkError::DuplicateKid { index });
            }
        }
        Ok(set)
    }

    /// A set of one raw 32-byte public key, known by its thumbprint.
    ///
    /// # Errors
    ///
    /// [`JwkError::BadPublicKey`] or [`JwkError::WeakKey`].
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<Self, JwkError> {
        let key = check_point(0, bytes)?;
        Ok(Self::from_keys([key]))
    }

    /// A set from keys already checked, each known by its thumbprint.
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self { keys: keys.into_iter().map(|k| (thumbprint(&k), k)).collect() }
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// The key ids in the set, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn check_jwk(index: usize, jwk: RawJwk) -> Result<(String, VerifyingKey), JwkError> {
    if jwk.d.is_some() {
        return Err(JwkError::PrivateKey { index });
    }
    if jwk.kty.as_deref() != Some("OKP") {
        return Err(JwkError::WrongKeyType { index });
    }
    if jwk.crv.as_deref() != Some("Ed25519") {
        return Err(JwkError::WrongCurve { index });
    }
    if jwk.alg.as_deref().is_some_and(|a| crate::token::jws::JwsAlg::from_name(a).is_none()) {
        return Err(JwkError::WrongAlgorithm { index });
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(JwkError::WrongUse { index });
    }
    let bytes = jwk.x.as_deref().and_then(b64::decode_array::<32>).ok_or(JwkError::BadPublicKey { index })?;
    let key = check_point(index, &bytes)?;
    let kid = match jwk.kid {
        None => thumbprint(&key),
        Some(serde_json::Value::String(kid)) if !kid.is_empty() && kid.len() <= MAX_KID_LEN => kid,
        Some(_) => return Err(JwkError::BadKid { index }),
    };
    Ok((kid, key))
}

fn check_point(index: usize, bytes: &[u8; 32]) -> Result<VerifyingKey, JwkError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| JwkError::BadPublicKey { index })?;
    if key.is_weak() {
        return Err(JwkError::WeakKey { index });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 Appendix A.2 public key and A.3 thumbprint.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC8037_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    fn rfc_key() -> VerifyingKey {
        VerifyingKey::from_bytes(&b64::decode_array(RFC8037_X).unwrap()).unwrap()
    }

    fn jwks(members: &str) -> Vec<u8> {
        format!(r#"{{"keys":[{{{members}}}]}}"#).into_bytes()
    }

    #[test]
    fn rfc8037_thumbprint() {
        assert_eq!(thumbprint(&rfc_key()), RFC8037_KID);
    }

    #[test]
    fn published_jwk_round_trips() {
        let jwk = PublicJwk::from_key(&rfc_key());
        assert_eq!(jwk.kid, RFC8037_KID);
        let doc = serde_json::to_vec(&Jwks { keys: vec![jwk] }).unwrap();
        let set = KeySet::from_jwks_json(&doc).unwrap();
        assert_eq!(set.kids(), [RFC8037_KID]);
        assert_eq!(set.get(RFC8037_KID), Some(&rfc_key()));
    }

    #[test]
    fn kid_defaults_to_thumbprint() {
        let set = KeySet::from_jwks_json(&jwks(&format!(r#""kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}""#))).unwrap();
        assert!(set.get(RFC8037_KID).is_some());
    }

    #[test]
    fn refuses_unusable_keys() {
        let x = RFC8037_X;
        let identity = b64::encode({
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        });
        let cases: Vec<(String, JwkError)> = vec![
            (format!(r#""kty":"EC","crv":"Ed25519","x":"{x}""#), JwkError::WrongKeyType { index: 0 }),
            (format!(r#""kty":"OKP","crv":"X25519","x":"{x}""#), JwkError::WrongCurve { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}","alg":"ES256""#), JwkError::WrongAlgorithm { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}","use":"enc""#), JwkError::WrongUse { index: 0 }),
            (
                format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A""#),
                JwkError::PrivateKey { index: 0 },
            ),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{}""#, &x[..42]), JwkError::BadPublicKey { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}A""#), JwkError::BadPublicKey { index: 0 }),
            (
                format!(r#""kty":"OKP","crv":"Ed25519","x":"{}""#, b64::encode([0u8; 33])),
                JwkError::BadPublicKey { index: 0 },
            ),
            (r#""kty":"OKP","crv":"Ed25519""#.to_owned(), JwkError::BadPublicKey { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{identity}""#), JwkError::WeakKey { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}","kid":7"#), JwkError::BadKid { index: 0 }),
            (format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}","kid":"""#), JwkError::BadKid { index: 0 }),
        ];
        for (members, want) in cases {
            assert_eq!(KeySet::from_jwks_json(&jwks(&members)).unwrap_err(), want, "{members}");
        }
    }

    #[test]
    fn refuses_malformed_sets() {
        assert!(matches!(KeySet::from_jwks_json(b"[]"), Err(JwkError::Malformed(_))));
        assert!(matches!(KeySet::from_jwks_json(b"{}"), Err(JwkError::Malformed(_))));
        assert_eq!(KeySet::from_jwks_json(br#"{"keys":[]}"#).unwrap_err(), JwkError::Empty);
        let one = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}"}}"#);
        let dup = format!(r#"{{"keys":[{one},{one}]}}"#);
        assert_eq!(KeySet::from_jwks_json(dup.as_bytes()).unwrap_err(), JwkError::DuplicateKid { index: 1 });
        let many = format!(r#"{{"keys":[{}]}}"#, vec![one; MAX_JWKS_KEYS + 1].join(","));
        assert_eq!(KeySet::from_jwks_json(many.as_bytes()).unwrap_err(), JwkError::TooManyKeys);
    }
}
