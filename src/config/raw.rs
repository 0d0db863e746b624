//! The TOML model of `config.toml`, exactly as written. Unknown keys are errors
//! (`deny_unknown_fields`) so a typo such as `dir_scop` never passes silently. Numbers are
//! read as `i64` so that out-of-range values are reported by validation with their path.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub version: i64,
    pub issuer: String,
    pub revocations_max_age: Option<i64>,
    #[serde(default)]
    pub server: RawServer,
    pub catalog: Option<RawCatalog>,
    #[serde(default)]
    pub projects: BTreeMap<String, RawProject>,
    #[serde(default)]
    pub templates: Vec<RawTemplate>,
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    pub geoip_database: Option<String>,
    pub audit_log: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    pub permissions: Vec<String>,
    #[serde(default)]
    pub upload_scoped: Vec<String>,
    #[serde(default)]
    pub list_scoped: Vec<String>,
    pub manage_permission: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProject {
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub id: String,
    pub project: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub created_at: Option<toml::value::Datetime>,
    #[serde(default)]
    pub access: RawAccess,
    pub permissions: Vec<String>,
    pub expiration_duration: Option<i64>,
    #[serde(default)]
    pub upload: RawUpload,
    #[serde(default)]
    pub restrict: RawRestrict,
    #[serde(default)]
    pub listing: RawListing,
}

/// `access` of a template.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawAccess {
    #[default]
    Public,
    ApiKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub permissions: Vec<String>,
    pub projects: Vec<String>,
    pub created_at: Option<toml::value::Datetime>,
    pub expires_at: Option<toml::value::Datetime>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpload {
    pub limit_per_min: Option<i64>,
    pub limit_per_source_ip: Option<i64>,
    pub dir_scope: Option<OneOrMany>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRestrict {
    pub whitelist_ip_ranges: Option<Vec<String>>,
    pub whitelist_countries: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListing {
    pub directory_scope: Option<OneOrMany>,
}

/// A scope setting may be one string or a list of strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}
