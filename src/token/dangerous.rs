//! Reading a token **without verifying it**, for tools that must decide which check to run.
//! Nothing here says a token is genuine: only [`Verifier`](crate::Verifier) does.

use crate::token::jws::{self, Signer, TokenType};

/// What a token's header claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimedType {
    /// `at+jwt`: a short-lived access key.
    AccessToken,
    /// `apikey+jwt`: a permanent API key.
    ApiKey,
    /// `revocations+jwt`: a revocation list.
    Revocations,
}

/// The type a token's header **claims**, by its `typ` (case-insensitive, `application/`
/// prefix allowed, as the verifier compares it); `None` when the header is unreadable or names
/// another type. Use it only to route a token to [`Verifier::verify`](crate::Verifier::verify)
/// or [`Verifier::verify_api_key`](crate::Verifier::verify_api_key), which check the type again.
pub fn claimed_type(token: &str) -> Option<ClaimedType> {
    jws::unverified_type(token).map(|typ| match typ {
        TokenType::Access => ClaimedType::AccessToken,
        TokenType::ApiKey => ClaimedType::ApiKey,
        TokenType::Revocations => ClaimedType::Revocations,
    })
}

/// Signing under **any** header, for building hostile tokens in tests (wrong `alg`, extra
/// members, duplicated keys). keysmith itself signs only through
/// [`jws::encode`](crate::token::jws::encode), whose header is fixed per token type.
pub trait SignAnyHeader {
    /// Signs `payload` as a compact JWS under the header text `header_json`, unchecked.
    fn sign_jws(&self, header_json: &str, payload: &[u8]) -> String;
}

impl<S: Signer> SignAnyHeader for S {
    fn sign_jws(&self, header_json: &str, payload: &[u8]) -> String {
        jws::sign_compact(self, &crate::token::b64::encode(header_json), payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.AA", crate::token::b64::encode(header))
    }

    #[test]
    fn reads_the_claimed_type_only() {
        assert_eq!(claimed_type(&token(r#"{"typ":"at+jwt"}"#)), Some(ClaimedType::AccessToken));
        assert_eq!(claimed_type(&token(r#"{"typ":"application/APIKEY+JWT"}"#)), Some(ClaimedType::ApiKey));
        assert_eq!(claimed_type(&token(r#"{"typ":"revocations+jwt"}"#)), Some(ClaimedType::Revocations));
        for bad in [token(r#"{"typ":"JWT"}"#), token(r#"{"typ":7}"#), token("[]"), "%%%".into(), String::new()] {
            assert_eq!(claimed_type(&bad), None, "{bad}");
        }
    }
}
