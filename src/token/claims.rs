//! The claims of a keysmith access token (see `docs/token.md`, the public contract).
//!
//! These are plain serde types: constructing one proves nothing. Only
//! [`Verifier::verify`](crate::Verifier::verify) turns a token into a [`Grant`](crate::Grant).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `typ` header of a short-lived access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The payload of a short-lived access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the config's `issuer`.
    pub iss: String,
    /// Audience: the project id.
    pub aud: Audience,
    /// Subject: the template id.
    pub sub: String,
    /// The template id again, as RFC 9068 asks for `client_id`.
    pub client_id: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch (equal to `iat`).
    pub nbf: u64,
    /// Expiry, seconds since the Unix epoch (`iat + expiration_duration`).
    pub exp: u64,
    /// Unique token id: 128 random bits, base64url.
    pub jti: String,
    /// Granted permissions, space-separated.
    pub scope: String,
    /// Version of the config the token was minted under.
    pub ver: u64,
    /// Directory scopes for uploads and other writes; `["/*"]` means everywhere.
    pub upload_dirs: Vec<String>,
    /// Directory scopes for listing and fetching; `["/*"]` means everywhere.
    pub list_dirs: Vec<String>,
    /// CIDR ranges the token may be used from; `["0.0.0.0/0", "::/0"]` means anywhere.
    pub ips: Vec<String>,
    /// ISO 3166-1 alpha-2 countries the token was restricted to; absent when unrestricted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countries: Option<Vec<String>>,
    /// Upload limits for the downstream service to enforce; absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Largest upload allowed, in bytes (`upload.max_file_size`); absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_max_bytes: Option<u64>,
    /// Media types (`image/png`) or ranges (`image/*`) an upload may have
    /// (`upload.content_types`); absent when any type is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_types: Option<Vec<String>>,
    /// For keys minted from an `access = "api_key"` template: the permanent key that asked for
    /// it, after the keys that created that one. Revoking any of them revokes this key too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
}

impl AccessClaims {
    /// The granted permissions: the `scope` claim split on spaces, empty entries skipped.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        split_scope(&self.scope)
    }
}

/// The `scope` claim granting `permissions` (RFC 8693 §4.2: space-separated); the one place
/// the claim is written, as [`AccessClaims::permissions`] is where it is read.
///
/// ```
/// assert_eq!(keysmith::scope_claim(&["FILE_UPLOAD", "OBJECTS_LIST"]), "FILE_UPLOAD OBJECTS_LIST");
/// ```
pub fn scope_claim<S: AsRef<str>>(permissions: &[S]) -> String {
    let mut scope = String::new();
    for (i, p) in permissions.iter().enumerate() {
        if i > 0 {
            scope.push(' ');
        }
        scope.push_str(p.as_ref());
    }
    scope
}

/// The permissions of a `scope` claim (RFC 8693 §4.2: space-separated); the one place the
/// claim is split, so every reader skips empty entries the same way.
pub(crate) fn split_scope(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|p| !p.is_empty())
}

/// The `aud` claim: keysmith writes one string; RFC 7519 also allows an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is one of the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// Upload limits copied from the template (`upload.limit_per_min`,
/// `upload.limit_per_source_ip`). Each is absent when unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most uploads per minute with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_min: Option<u32>,
    /// Most uploads per source IP with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_source_ip: Option<u32>,
}

impl Limits {
    /// `Some` when at least one limit is set.
    pub fn if_any(self) -> Option<Self> {
        (self.per_min.is_some() || self.per_source_ip.is_some()).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_claim_is_written_as_it_is_read() {
        let permissions = ["FILE_UPLOAD", "OBJECTS_LIST"];
        let scope = scope_claim(&permissions);
        assert_eq!(scope, "FILE_UPLOAD OBJECTS_LIST");
        assert_eq!(split_scope(&scope).collect::<Vec<_>>(), permissions);
        assert_eq!(scope_claim::<&str>(&[]), "");
    }

    #[test]
    fn audience_accepts_string_or_array_only() {
        let one: Audience = serde_json::from_str(r#""p""#).unwrap();
        assert!(one.contains("p") && !one.contains("q"));
        let many: Audience = serde_json::from_str(r#"["q","p"]"#).unwrap();
        assert!(many.contains("p"));
        for bad in ["7", "null", "[1]", "{}"] {
            assert!(serde_json::from_str::<Audience>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn optional_claims_are_omitted() {
        assert_eq!(
            serde_json::to_string(&Limits { per_min: Some(3), per_source_ip: None }).unwrap(),
            r#"{"per_min":3}"#
        );
        assert_eq!(Limits::default().if_any(), None);
    }
}

/// The `typ` header of a permanent API key.
pub const API_KEY_TYP: &str = "apikey+jwt";
/// The `typ` header of a signed revocation list.
pub const REVOCATIONS_TYP: &str = "revocations+jwt";

/// The payload of a permanent API key. The key id is both `sub` and `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyClaims {
    /// Issuer: the config's `issuer`.
    pub iss: String,
    /// The projects the key may be used for.
    pub aud: Vec<String>,
    /// The key id.
    pub sub: String,
    /// The key id again.
    pub jti: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Granted permissions, space-separated.
    pub scope: String,
    /// Version of the config the key was created under.
    pub ver: u64,
    /// Expiry, only when the operator set one; permanent keys normally have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Ids of the keys that created this one, oldest first, when it was created over HTTP by
    /// another key. Revoking any of them revokes this key too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created_by: Vec<String>,
}

impl ApiKeyClaims {
    /// The granted permissions: the `scope` claim split on spaces, empty entries skipped.
    pub fn permissions(&self) -> impl Iterator<Item = &str> {
        split_scope(&self.scope)
    }
}

/// The payload of a signed revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationClaims {
    /// Issuer: the config's `issuer`.
    pub iss: String,
    /// When the list was signed.
    pub iat: u64,
    /// When the list stops being fresh (`iat + revocations_max_age`).
    pub exp: u64,
    /// Version of the config the list reflects.
    pub ver: u64,
    /// Ids of deactivated permanent API keys.
    pub revoked_api_keys: Vec<String>,
    /// Ids of deactivated templates: short-lived keys minted from them are refused early.
    pub revoked_templates: Vec<String>,
    /// Ids of the recorded permanent keys that are active (neither deactivated nor expired) at
    /// `iat`. A permanent key is accepted only while the root of its `created_by` chain (the key
    /// itself when it has none) is listed here; absent means none (every permanent key refused).
    #[serde(default)]
    pub active_api_keys: Vec<String>,
    /// Template id → cut-off (seconds since the Unix epoch): access keys minted from the
    /// template with an `iat` before it are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates_issued_before: BTreeMap<String, u64>,
    /// Permanent key id → cut-off: access keys minted through the key (the id is in their
    /// `api_keys`) with an `iat` before it are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_keys_issued_before: BTreeMap<String, u64>,
}
