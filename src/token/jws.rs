//! The one JWS path: every compact JWS keysmith writes is encoded here, and every one it reads
//! is decoded here.
//!
//! Decoding checks, in this order and before any signature work: size, shape, header (`alg`
//! pinned to Ed25519, named `EdDSA` or, after RFC 9864, `Ed25519`; `crit`, `b64`, `zip`, `typ`, `kid` known); then the strict Ed25519
//! signature; only then is the payload parsed. Encoding writes the header from one serde struct
//! whose member order is fixed per token type, so the bytes on the wire never depend on a map's
//! iteration order.

use crate::token::b64;
use crate::token::claims::{ACCESS_TOKEN_TYP, API_KEY_TYP, REVOCATIONS_TYP};
use crate::token::jwk::{KeySet, verify_ed25519};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::ser::SerializeStruct as _;
use serde::{Deserialize, Serialize};

/// Deepest JSON nesting accepted in a header or payload (keysmith's own claims nest 2 deep).
const MAX_JSON_DEPTH: usize = 16;
/// Longest header accepted after base64 decoding, in bytes.
const MAX_HEADER_LEN: usize = 1024;

/// The three kinds of token keysmith signs, told apart by the header's `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// `at+jwt`: a short-lived access key (RFC 9068).
    Access,
    /// `apikey+jwt`: a permanent API key.
    ApiKey,
    /// `revocations+jwt`: a signed revocation list.
    Revocations,
}

impl TokenType {
    /// The header's `typ` for this kind of token.
    pub const fn typ(self) -> &'static str {
        match self {
            Self::Access => ACCESS_TOKEN_TYP,
            Self::ApiKey => API_KEY_TYP,
            Self::Revocations => REVOCATIONS_TYP,
        }
    }

    /// The type a header's `typ` names, compared case-insensitively with an optional
    /// `application/` prefix (RFC 7515 §4.1.9); `None` for any other type.
    pub fn from_typ(typ: &str) -> Option<Self> {
        [Self::Access, Self::ApiKey, Self::Revocations].into_iter().find(|t| typ_matches(typ, t.typ()))
    }
}

/// The name of the Ed25519 algorithm in a JWS header and a JWK's `alg`.
///
/// RFC 9864 deprecates the polymorphic `EdDSA` in favour of the fully-specified `Ed25519`.
/// keysmith reads both (for Ed25519 keys, and nothing else) and writes the one the issuer's
/// config chooses; `EdDSA` is the default because many verifiers do not know `Ed25519` yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JwsAlg {
    /// `EdDSA` (RFC 8037), understood by every JOSE library with Ed25519 support.
    #[default]
    EdDsa,
    /// `Ed25519` (RFC 9864), the fully-specified name.
    Ed25519,
}

impl JwsAlg {
    /// The name as written in a header or a JWK.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm a header's or JWK's `alg` names, compared exactly; `None` for anything
    /// else (`eddsa`, `ES256`, `none`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::EdDsa, Self::Ed25519].into_iter().find(|alg| alg.as_str() == name)
    }
}

/// Why a compact JWS was refused before its claims were looked at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// The token is longer than the limit; it was not decoded.
    #[error("token is longer than {0} bytes")]
    TooLarge(usize),
    /// Not three canonical base64url segments holding JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not exactly `EdDSA` or `Ed25519`.
    #[error("algorithm not allowed: only EdDSA (or Ed25519) is accepted")]
    AlgorithmNotAllowed,
    /// The header's `typ` is not the expected one.
    #[error("wrong token type: expected typ {expected:?}")]
    WrongType {
        /// The `typ` expected.
        expected: &'static str,
    },
    /// The header carries `crit`.
    #[error("critical header parameters are not supported")]
    CriticalHeader,
    /// The header carries `b64` or `zip`.
    #[error("header parameter {0:?} is not supported")]
    UnsupportedHeader(&'static str),
    /// The header has no `kid`.
    #[error("the header has no kid")]
    MissingKid,
    /// The `kid` names no key in the key set.
    #[error("unknown kid")]
    UnknownKid,
    /// The signature is malformed or does not verify (strict Ed25519).
    #[error("signature verification failed")]
    BadSignature,
    /// The signed payload does not decode into the expected claims.
    #[error("invalid claims: {0}")]
    InvalidClaims(#[source] serde_json::Error),
}

/// Why a JWS could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The header or the claims did not serialise to JSON.
    #[error("cannot serialise the {what} to JSON")]
    Json {
        /// `header` or `claims`.
        what: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// A private key that signs JWS signing inputs with Ed25519.
///
/// The keys crate's `SigningKey` implements it; a test suite may implement it over its own key.
pub trait Signer {
    /// The key id written into the header (the RFC 7638 thumbprint of the public key).
    fn kid(&self) -> &str;
    /// The Ed25519 signature of `signing_input` (`header.payload`, both base64url).
    fn sign(&self, signing_input: &[u8]) -> [u8; 64];
    /// The algorithm name written into the header. Defaults to `EdDSA`.
    fn alg(&self) -> JwsAlg {
        JwsAlg::EdDsa
    }
}

/// The protected header keysmith writes. Member order is part of the wire contract: `at+jwt`
/// headers are `alg, typ, kid`; the two other types are `alg, kid, typ`.
struct Header<'a> {
    alg: JwsAlg,
    typ: TokenType,
    kid: &'a str,
}

impl Serialize for Header<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut header = serializer.serialize_struct("Header", 3)?;
        header.serialize_field("alg", self.alg.as_str())?;
        match self.typ {
            TokenType::Access => {
                header.serialize_field("typ", self.typ.typ())?;
                header.serialize_field("kid", self.kid)?;
            }
            TokenType::ApiKey | TokenType::Revocations => {
                header.serialize_field("kid", self.kid)?;
                header.serialize_field("typ", self.typ.typ())?;
            }
        }
        header.end()
    }
}

/// The base64url header (`alg` `EdDSA`) for a token of type `typ` signed by key `kid`.
///
/// # Errors
///
/// [`EncodeError::Json`] if the header does not serialise.
pub fn encode_header(typ: TokenType, kid: &str) -> Result<String, EncodeError> {
    encode_header_with(JwsAlg::EdDsa, typ, kid)
}

/// The base64url header naming the algorithm `alg` for a token of type `typ` signed by `kid`.
///
/// # Errors
///
/// [`EncodeError::Json`] if the header does not serialise.
pub fn encode_header_with(alg: JwsAlg, typ: TokenType, kid: &str) -> Result<String, EncodeError> {
    let json =
        serde_json::to_vec(&Header { alg, typ, kid }).map_err(|source| EncodeError::Json { what: "header", source })?;
    Ok(b64::encode(json))
}

/// Signs `claims` as a compact JWS of type `typ` with `signer`.
///
/// # Errors
///
/// [`EncodeError::Json`] if the header or the claims do not serialise; nothing is signed then.
pub fn encode(signer: &impl Signer, typ: TokenType, claims: &impl Serialize) -> Result<String, EncodeError> {
    let payload = serde_json::to_vec(claims).map_err(|source| EncodeError::Json { what: "claims", source })?;
    Ok(sign_compact(signer, &encode_header_with(signer.alg(), typ, signer.kid())?, &payload))
}

/// Signs `payload` under an already encoded header. The header is trusted to be one
/// [`encode_header`] wrote (or, in [`dangerous`](crate::dangerous), any header a test needs).
pub(crate) fn sign_compact(signer: &impl Signer, header_b64: &str, payload: &[u8]) -> String {
    let mut token = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 92);
    token.push_str(header_b64);
    token.push('.');
    b64::encode_into(payload, &mut token);
    let signature = signer.sign(token.as_bytes());
    token.push('.');
    b64::encode_into(signature, &mut token);
    token
}

/// The JOSE header members the decoder reads. Members it does not name (`jku`, `x5u`, `jwk`,
/// `x5c`, …) are ignored, never followed.
#[derive(Deserialize)]
struct ReadHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    #[serde(default)]
    crit: Member,
    #[serde(default)]
    b64: Member,
    #[serde(default)]
    zip: Member,
}

/// Whether a header member appears at all, whatever its value (`"crit": null` counts).
#[derive(Default)]
enum Member {
    /// The member is not in the header.
    #[default]
    Absent,
    /// The member is in the header, with any value.
    Present,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Self::Present)
    }
}

/// Checks a compact JWS of type `typ` against `keys` and decodes its payload into `T`.
///
/// # Errors
///
/// A [`JwsError`] saying which check failed first.
pub fn decode<T: DeserializeOwned>(keys: &KeySet, token: &str, max_len: usize, typ: TokenType) -> Result<T, JwsError> {
    if token.len() > max_len {
        return Err(JwsError::TooLarge(max_len));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("a compact JWS has exactly three segments"));
    };
    if header_b64.len() > MAX_HEADER_LEN * 4 / 3 + 4 {
        return Err(JwsError::Malformed("header too large"));
    }
    let header: ReadHeader = decode_json(header_b64, Segment::Header)?;
    if JwsAlg::from_name(&header.alg).is_none() {
        return Err(JwsError::AlgorithmNotAllowed);
    }
    if matches!(header.crit, Member::Present) {
        return Err(JwsError::CriticalHeader);
    }
    if matches!(header.b64, Member::Present) {
        return Err(JwsError::UnsupportedHeader("b64"));
    }
    if matches!(header.zip, Member::Present) {
        return Err(JwsError::UnsupportedHeader("zip"));
    }
    if !header.typ.as_deref().is_some_and(|t| typ_matches(t, typ.typ())) {
        return Err(JwsError::WrongType { expected: typ.typ() });
    }
    let kid = header.kid.ok_or(JwsError::MissingKid)?;
    let key = keys.get(&kid).ok_or(JwsError::UnknownKid)?;
    let sig = b64::decode_array::<64>(sig_b64).ok_or(JwsError::BadSignature)?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    if !verify_ed25519(key, &token.as_bytes()[..signing_input_len], &sig) {
        return Err(JwsError::BadSignature);
    }
    decode_json(payload_b64, Segment::Payload)
}

/// The type a token's header names, read **without verifying anything**; for
/// [`dangerous`](crate::dangerous) only.
pub(crate) fn unverified_type(token: &str) -> Option<TokenType> {
    #[derive(Deserialize)]
    struct TypOnly {
        typ: String,
    }
    let segment = token.split('.').next().filter(|s| s.len() <= 4096)?;
    let header: TypOnly = serde_json::from_slice(&b64::decode(segment)?).ok()?;
    TokenType::from_typ(&header.typ)
}

/// The `kid` a token's header names, read **without verifying anything**: only to decide
/// whether waiting for a key fetch is worth it, never to trust the token.
pub(crate) fn unverified_kid(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct KidOnly {
        kid: String,
    }
    let segment = token.split('.').next().filter(|s| s.len() <= 4096)?;
    let header: KidOnly = serde_json::from_slice(&b64::decode(segment)?).ok()?;
    Some(header.kid)
}

/// `typ` compares case-insensitively and may carry the `application/` prefix (RFC 7515 §4.1.9).
fn typ_matches(got: &str, want: &str) -> bool {
    let got = match got.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &got[12..],
        _ => got,
    };
    got.eq_ignore_ascii_case(want)
}

/// Which segment of a compact JWS is being decoded.
#[derive(Clone, Copy)]
enum Segment {
    /// The protected header.
    Header,
    /// The claims.
    Payload,
}

fn decode_json<T: DeserializeOwned>(segment: &str, which: Segment) -> Result<T, JwsError> {
    let malformed = |header: &'static str, payload: &'static str| {
        JwsError::Malformed(match which {
            Segment::Header => header,
            Segment::Payload => payload,
        })
    };
    let bytes = b64::decode(segment)
        .ok_or_else(|| malformed("header is not canonical base64url", "payload is not canonical base64url"))?;
    if !nesting_within(&bytes, MAX_JSON_DEPTH) {
        return Err(malformed("header is nested too deeply", "payload is nested too deeply"));
    }
    // serde would also read a struct from a JSON array; a JOSE header or claims set is an object.
    if bytes.first() != Some(&b'{') {
        return Err(malformed("header is not a JSON object", "payload is not a JSON object"));
    }
    serde_json::from_slice(&bytes).map_err(|e| match which {
        Segment::Header => JwsError::Malformed("header is not a valid JOSE header"),
        Segment::Payload => JwsError::InvalidClaims(e),
    })
}

/// Whether the JSON text nests arrays and objects at most `max` deep (strings are skipped,
/// escapes included). A single pass before parsing, so hostile nesting costs nothing.
fn nesting_within(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Signer for Fixed {
        fn kid(&self) -> &str {
            "k1"
        }
        fn sign(&self, _: &[u8]) -> [u8; 64] {
            [0; 64]
        }
    }

    #[test]
    fn header_member_order_is_fixed_per_type() {
        let text = |typ| String::from_utf8(b64::decode(&encode_header(typ, "k1").unwrap()).unwrap()).unwrap();
        assert_eq!(text(TokenType::Access), r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#);
        let ed25519 = b64::decode(&encode_header_with(JwsAlg::Ed25519, TokenType::ApiKey, "k1").unwrap()).unwrap();
        assert_eq!(ed25519, br#"{"alg":"Ed25519","kid":"k1","typ":"apikey+jwt"}"#);
        assert_eq!(JwsAlg::from_name("Ed25519"), Some(JwsAlg::Ed25519));
        assert_eq!(JwsAlg::from_name("EdDSA"), Some(JwsAlg::EdDsa));
        assert_eq!(JwsAlg::from_name("ed25519"), None);
        assert_eq!(text(TokenType::ApiKey), r#"{"alg":"EdDSA","kid":"k1","typ":"apikey+jwt"}"#);
        assert_eq!(text(TokenType::Revocations), r#"{"alg":"EdDSA","kid":"k1","typ":"revocations+jwt"}"#);
    }

    #[test]
    fn claims_that_do_not_serialise_are_an_error_not_an_empty_payload() {
        struct Broken;
        impl Serialize for Broken {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("no"))
            }
        }
        assert!(matches!(encode(&Fixed, TokenType::Access, &Broken), Err(EncodeError::Json { what: "claims", .. })));
    }

    #[test]
    fn nesting_is_bounded_outside_strings() {
        assert!(nesting_within(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!nesting_within(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(nesting_within(br#"{"a":"[[[[[[\"[[[["}"#, 1), "brackets in strings do not count");
        assert!(!nesting_within(format!("{}{}", "[".repeat(17), "]".repeat(17)).as_bytes(), 16));
    }

    #[test]
    fn typ_is_read_case_insensitively_with_the_media_type_prefix() {
        assert_eq!(TokenType::from_typ("application/AT+JWT"), Some(TokenType::Access));
        assert_eq!(TokenType::from_typ("JWT"), None);
    }
}
