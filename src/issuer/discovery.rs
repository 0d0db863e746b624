//! Authorization server metadata (RFC 8414), so OAuth resource-server middleware configured
//! with only the issuer URL finds the JWKS.

use crate::issuer::Issuer;
use serde::Serialize;

/// The RFC 8414 metadata of an issuer: only the members that are true for keysmith.
///
/// keysmith has no authorization endpoint and no OAuth token endpoint (its mint endpoint takes
/// no `grant_type`), so `response_types_supported` (required) and `grant_types_supported` are
/// empty; the latter is present because its absence would claim the RFC's default
/// (`authorization_code` and `implicit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// The configured `issuer`, the `iss` of every key.
    pub issuer: String,
    /// Where the signing keys are published: the issuer URL plus `/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// The OAuth `response_type` values supported: none.
    pub response_types_supported: Vec<String>,
    /// The OAuth grant types supported: none.
    pub grant_types_supported: Vec<String>,
}

impl Issuer {
    /// The RFC 8414 metadata built from the configured issuer, or `None` when the issuer is
    /// not an `https` (or `http`) URL without query or fragment, which RFC 8414 requires of an
    /// issuer identifier: then there is no URL to publish.
    pub fn metadata(&self) -> Option<AuthorizationServerMetadata> {
        let issuer = &self.config().issuer;
        let rest = issuer.strip_prefix("https://").or_else(|| issuer.strip_prefix("http://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#', ' ']) {
            return None;
        }
        Some(AuthorizationServerMetadata {
            issuer: issuer.clone(),
            jwks_uri: format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')),
            response_types_supported: Vec::new(),
            grant_types_supported: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::issuer::Issuer;
    use crate::keys::store::{Keyring, SigningKey};

    fn metadata(issuer: &str) -> Option<super::AuthorizationServerMetadata> {
        let toml = format!("version = 1\nissuer = \"{issuer}\"\n");
        let config = Config::from_toml(&toml, std::path::Path::new(".")).unwrap();
        Issuer::from_parts(config, Keyring::single(SigningKey::generate()), None).metadata()
    }

    #[test]
    fn built_from_an_issuer_url_only() {
        let m = metadata("https://keys.example.com/").unwrap();
        assert_eq!(m.jwks_uri, "https://keys.example.com/.well-known/jwks.json");
        assert_eq!(m.issuer, "https://keys.example.com/");
        assert_eq!(
            metadata("https://keys.example.com/t").unwrap().jwks_uri,
            "https://keys.example.com/t/.well-known/jwks.json"
        );
        for not_a_url in ["keysmith", "urn:x", "https://", "https:///x", "https://k?x=1", "https://k#f", "ftp://k"] {
            assert_eq!(metadata(not_a_url), None, "{not_a_url}");
        }
    }
}
