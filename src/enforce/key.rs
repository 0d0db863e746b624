//! Finding the key in a request: `Authorization: Bearer` (RFC 6750 §2.1) or, for a permanent
//! key, `X-Api-Key`.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The header a permanent key may also arrive in.
pub const X_API_KEY: &str = "x-api-key";

/// A key found in a request, not yet verified.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PresentedKey<'a> {
    /// From `Authorization: Bearer`: an access token or a permanent key.
    Bearer(&'a str),
    /// From `X-Api-Key`: only a permanent key.
    ApiKey(&'a str),
}

impl std::fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        match self {
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
            Self::ApiKey(_) => f.write_str("ApiKey([redacted])"),
        }
    }
}

/// Why no usable key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The request carries no key.
    #[error("no key: send `Authorization: Bearer <key>`")]
    Missing,
    /// The `Authorization` header is not `Bearer <b64token>`, is repeated, or a key arrived in
    /// both `Authorization` and `X-Api-Key`.
    #[error("malformed or ambiguous credentials")]
    Malformed,
}

impl KeyError {
    /// The stable problem code: `key_missing` or `key_malformed`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "key_missing",
            Self::Malformed => "key_malformed",
        }
    }
}

/// Finds the key in `headers`.
///
/// `Authorization` must be exactly one header of the form `Bearer <b64token>` (the scheme is
/// case-insensitive, one or more spaces, RFC 6750 §2.1's token syntax); `X-Api-Key` must be one
/// header of the same syntax. A request carrying both, or either twice, is refused rather than
/// guessed at.
///
/// # Errors
///
/// A [`KeyError`].
pub fn extract_key(headers: &HeaderMap) -> Result<PresentedKey<'_>, KeyError> {
    let one = |name| {
        let mut all = headers.get_all(name).iter();
        match (all.next(), all.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => v.to_str().map(Some).map_err(|_| KeyError::Malformed),
            (Some(_), Some(_)) => Err(KeyError::Malformed),
        }
    };
    let authorization = one(AUTHORIZATION.as_str())?;
    let api_key = one(X_API_KEY)?;
    match (authorization, api_key) {
        (Some(_), Some(_)) => Err(KeyError::Malformed),
        (None, None) => Err(KeyError::Missing),
        (Some(value), None) => {
            let (scheme, rest) = value.split_once(' ').ok_or(KeyError::Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(KeyError::Malformed);
            }
            let token = rest.trim_start_matches(' ');
            if is_b64token(token) { Ok(PresentedKey::Bearer(token)) } else { Err(KeyError::Malformed) }
        }
        (None, Some(value)) => {
            if is_b64token(value) {
                Ok(PresentedKey::ApiKey(value))
            } else {
                Err(KeyError::Malformed)
            }
        }
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn bearer_follows_rfc_6750() {
        assert_eq!(extract_key(&headers(&[("authorization", "Bearer a.b.c")])), Ok(PresentedKey::Bearer("a.b.c")));
        assert_eq!(extract_key(&headers(&[("authorization", "bearer  a.b.c")])), Ok(PresentedKey::Bearer("a.b.c")));
        assert_eq!(extract_key(&headers(&[("x-api-key", "a.b.c")])), Ok(PresentedKey::ApiKey("a.b.c")));
        assert_eq!(extract_key(&headers(&[])), Err(KeyError::Missing));
        for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearera.b.c", "Bearer =="] {
            assert_eq!(extract_key(&headers(&[("authorization", bad)])), Err(KeyError::Malformed), "{bad}");
        }
        let twice = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert_eq!(extract_key(&twice), Err(KeyError::Malformed));
        let both = headers(&[("authorization", "Bearer a"), ("x-api-key", "b")]);
        assert_eq!(extract_key(&both), Err(KeyError::Malformed));
        assert!(!format!("{:?}", PresentedKey::Bearer("secret")).contains("secret"));
    }
}
