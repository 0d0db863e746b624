//! Reading a token **without verifying it**, for tools that must decide which check to run.
//! Nothing here says a token is genuine: only [`Verifier`](crate::Verifier) does.

use crate::token::claims::{ACCESS_TOKEN_TYP, API_KEY_TYP, REVOCATIONS_TYP};

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
    #[derive(serde::Deserialize)]
    struct Header {
        typ: String,
    }
    let segment = token.split('.').next().filter(|s| s.len() <= 4096)?;
    let header: Header = serde_json::from_slice(&crate::token::b64::decode(segment)?).ok()?;
    [
        (ACCESS_TOKEN_TYP, ClaimedType::AccessToken),
        (API_KEY_TYP, ClaimedType::ApiKey),
        (REVOCATIONS_TYP, ClaimedType::Revocations),
    ]
    .into_iter()
    .find(|(typ, _)| crate::verify::typ_matches(&header.typ, typ))
    .map(|(_, kind)| kind)
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
