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
    /// Where the signing keys are published: the issuer's origin (scheme and host) plus
    /// `/.well-known/jwks.json`, where the server serves them. An issuer path is not part of it:
    /// the server's routes sit at the host's root, as RFC 8414 §3.1 places the metadata too.
    pub jwks_uri: String,
    /// The OAuth `response_type` values supported: none.
    pub response_types_supported: Vec<String>,
    /// The OAuth grant types supported: none.
    pub grant_types_supported: Vec<String>,
}

/// The parts of an issuer URL that the metadata needs.
struct IssuerUrl<'a> {
    /// `scheme://host[:port]`.
    origin: &'a str,
    /// The path without its terminating `/`: empty for `https://h` and `https://h/`.
    path: &'a str,
}

/// Splits an `https` (or `http`) issuer URL without query or fragment; `None` for anything else.
fn split_issuer(issuer: &str) -> Option<IssuerUrl<'_>> {
    let scheme_len = if issuer.starts_with("https://") {
        "https://".len()
    } else if issuer.starts_with("http://") {
        "http://".len()
    } else {
        return None;
    };
    let rest = issuer.get(scheme_len..)?;
    let host_len = rest.find('/').unwrap_or(rest.len());
    if host_len == 0 || rest.contains(['?', '#', ' ']) {
        return None;
    }
    let (origin, path) = issuer.split_at(scheme_len + host_len);
    Some(IssuerUrl { origin, path: path.trim_end_matches('/') })
}

/// The path of the RFC 8414 metadata, without its issuer-path suffix.
pub(crate) const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

impl Issuer {
    /// The RFC 8414 metadata built from the configured issuer, or `None` when the issuer is
    /// not an `https` (or `http`) URL without query or fragment, which RFC 8414 requires of an
    /// issuer identifier: then there is no URL to publish.
    pub fn metadata(&self) -> Option<AuthorizationServerMetadata> {
        let issuer = &self.config().issuer;
        let url = split_issuer(issuer)?;
        Some(AuthorizationServerMetadata {
            issuer: issuer.clone(),
            jwks_uri: format!("{}/.well-known/jwks.json", url.origin),
            response_types_supported: Vec::new(),
            grant_types_supported: Vec::new(),
        })
    }

    /// Where RFC 8414 §3.1 clients fetch the metadata on the issuer's host: `/.well-known/oauth-authorization-server`
    /// followed by the issuer's path without its terminating `/` (`https://h/t` →
    /// `/.well-known/oauth-authorization-server/t`); `None` when there is no metadata.
    pub fn metadata_path(&self) -> Option<String> {
        let url = split_issuer(&self.config().issuer)?;
        Some(format!("{METADATA_PATH}{}", url.path))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::issuer::Issuer;
    use crate::keys::store::{Keyring, SigningKey};

    fn issuer(issuer: &str) -> Issuer {
        let toml = format!("version = 1\nissuer = \"{issuer}\"\n");
        let config = Config::from_toml(&toml, std::path::Path::new(".")).unwrap();
        Issuer::from_parts(config, Keyring::single(SigningKey::generate()), None)
    }

    fn metadata(issuer_url: &str) -> Option<super::AuthorizationServerMetadata> {
        issuer(issuer_url).metadata()
    }

    #[test]
    fn the_metadata_path_inserts_the_well_known_segment_before_the_issuer_path() {
        for (url, path) in [
            ("https://k", "/.well-known/oauth-authorization-server"),
            ("https://k/", "/.well-known/oauth-authorization-server"),
            ("https://k:8443/t", "/.well-known/oauth-authorization-server/t"),
            ("https://k/t/u/", "/.well-known/oauth-authorization-server/t/u"),
        ] {
            assert_eq!(issuer(url).metadata_path().as_deref(), Some(path), "{url}");
            assert_eq!(
                metadata(url).unwrap().jwks_uri,
                format!("{}/.well-known/jwks.json", url.split('/').take(3).collect::<Vec<_>>().join("/")),
                "{url}"
            );
        }
        assert_eq!(issuer("urn:x").metadata_path(), None);
    }

    #[test]
    fn built_from_an_issuer_url_only() {
        let m = metadata("https://keys.example.com/").unwrap();
        assert_eq!(m.jwks_uri, "https://keys.example.com/.well-known/jwks.json");
        assert_eq!(m.issuer, "https://keys.example.com/");
        assert_eq!(
            metadata("https://keys.example.com/t").unwrap().jwks_uri,
            "https://keys.example.com/.well-known/jwks.json"
        );
        for not_a_url in ["keysmith", "urn:x", "https://", "https:///x", "https://k?x=1", "https://k#f", "ftp://k"] {
            assert_eq!(metadata(not_a_url), None, "{not_a_url}");
        }
    }
}
