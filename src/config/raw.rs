//! The TOML model of `config.toml`, exactly as written. Unknown keys are errors, so a typo such
//! as `dir_scop` never passes silently: they are collected while deserializing
//! ([`Config::from_toml`](super::Config::from_toml), with `serde_ignored`) and reported with
//! every other problem, and the JSON Schema says `additionalProperties: false`. Numbers are
//! read as `i64` so that out-of-range values are reported by validation with their path.
//!
//! The doc comments here become the descriptions of the JSON Schema (`keysmith schema`) that
//! TOML editors show while editing.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// keysmith configuration: security templates, projects, permanent API key metadata and server
/// settings. Kept in git; check every change with `keysmith check --previous-git`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(title = "keysmith config.toml")]
pub(crate) struct RawConfig {
    /// Positive integer, bumped on every change; every key carries it as `ver`. A reload with a
    /// lower version, or the same version with changed content, is refused.
    #[schemars(range(min = 1))]
    pub version: i64,
    /// The `iss` claim of every key. Downstream verifiers pin it exactly.
    pub issuer: String,
    /// Seconds verifiers may cache the JWKS (1 to 86400). Default 300. A new signing key is
    /// published at least this long before it signs.
    #[schemars(range(min = 1, max = 86400))]
    pub jwks_max_age: Option<i64>,
    /// Seconds a signed revocation list stays fresh (10 to 86400). Default 300.
    #[schemars(range(min = 10, max = 86400))]
    pub revocations_max_age: Option<i64>,
    /// The algorithm name the issuer writes in token headers (and in the JWKS, see
    /// `jwks_alg_member`): `EdDSA` (default; every JOSE library with Ed25519 support knows it)
    /// or `Ed25519` (RFC 9864's fully-specified name, which some verifiers refuse today).
    pub jws_alg: Option<RawJwsAlg>,
    /// Whether each JWKS key carries `alg` (the `jws_alg` name). Default `true`. `false` lets
    /// verifiers that select keys by `alg` accept either name while `jws_alg` changes.
    pub jwks_alg_member: Option<bool>,
    /// HTTP service settings.
    #[serde(default)]
    pub server: RawServer,
    /// A custom permission catalogue. Omit for the 31 Scaleflex permissions.
    pub catalog: Option<RawCatalog>,
    /// Projects by id: the `{project}` URL segment and the `aud` of their keys.
    #[serde(default)]
    pub projects: BTreeMap<String, RawProject>,
    /// Security templates: what a key minted from each may do.
    #[serde(default)]
    pub templates: Vec<RawTemplate>,
    /// Metadata of permanent API keys (never the secret). Written by `keysmith apikey create`.
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
}

/// HTTP service settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawServer {
    /// Listen address, `host:port`. Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// A separate address (`host:port`) for `/metrics`, for deployments that keep metrics
    /// private; the main listener then answers `404` there. Default: none, `/metrics` is on the
    /// main listener. Read at start only.
    pub metrics_listen: Option<String>,
    /// CIDR ranges of proxies whose `X-Forwarded-For` is believed. Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the service (CORS).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// MaxMind DB country database, relative to this file. Required when a template restricts
    /// countries.
    pub geoip_database: Option<String>,
    /// File receiving a JSON line per API key created over HTTP, relative to this file.
    pub audit_log: Option<String>,
    /// The header trusted proxies set: `x-forwarded-for` (default) or `forwarded` (RFC 7239).
    /// Only that one is read.
    pub forwarded_header: Option<RawForwardedHeader>,
    /// Mint and key-creation requests allowed per source address per minute (0: no limit).
    /// Default 600.
    #[schemars(range(min = 0))]
    pub rate_limit_per_minute: Option<i64>,
    /// Requests a source address may make at once before the per-minute rate applies. Default 60.
    #[schemars(range(min = 1))]
    pub rate_limit_burst: Option<i64>,
    /// Where the per-address budgets are kept: `"memory"` (default: each replica its own) or a
    /// `redis://` URL (every replica of the service shares one budget).
    pub rate_limit_store: Option<String>,
    /// The `Host` values (`host[:port]`, compared without regard to case) this service answers
    /// to; any other gets `421`. Default: any host. Set it when a template allows callers by
    /// address, so a rebound DNS name cannot reach the service from a browser.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// The name of the Ed25519 JWS algorithm.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
pub(crate) enum RawJwsAlg {
    /// `EdDSA` (RFC 8037).
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// `Ed25519` (RFC 9864).
    #[serde(rename = "Ed25519")]
    Ed25519,
}

/// The forwarding header trusted proxies set.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
pub(crate) enum RawForwardedHeader {
    /// `X-Forwarded-For`.
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// A custom permission catalogue.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawCatalog {
    /// Every permission of the vocabulary (e.g. `asset.read`).
    pub permissions: Vec<String>,
    /// Permissions checked against a key's upload scope (`upload.dir_scope`).
    #[serde(default)]
    pub upload_scoped: Vec<String>,
    /// Permissions checked against a key's listing scope (`listing.directory_scope`).
    #[serde(default)]
    pub list_scoped: Vec<String>,
    /// The permission that allows creating API keys over HTTP. Unset: creation is off.
    pub manage_permission: Option<String>,
}

/// A project.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawProject {
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// A security template.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    /// Slug (a-z, 0-9, '-', '_'), unique in the file: the `{template}` URL segment and the key's `sub`.
    pub id: String,
    /// The project it belongs to (declared under `[projects.<id>]`).
    pub project: String,
    /// Free text identifying the template.
    #[serde(default)]
    pub description: String,
    /// Whether keys may be minted from it. Default true; false also revokes keys minted from it.
    #[serde(default = "yes")]
    pub active: bool,
    /// A date or a date-time with offset, for people.
    pub created_at: Option<RawDate>,
    /// Keys minted from this template before this instant (a date or a date-time with offset,
    /// not in the future) are refused everywhere; keys minted afterwards work.
    pub revoke_issued_before: Option<RawDate>,
    /// Who may mint: `public` (default) or `api_key` (holders of a permanent key only).
    #[serde(default)]
    pub access: RawAccess,
    /// Permissions granted, from the catalogue.
    pub permissions: Vec<String>,
    /// Key lifetime in seconds, 1 to 604800. Default 1200.
    #[schemars(range(min = 1, max = 604800))]
    pub expiration_duration: Option<i64>,
    /// Upload limits and scope.
    #[serde(default)]
    pub upload: RawUpload,
    /// Caller restrictions.
    #[serde(default)]
    pub restrict: RawRestrict,
    /// Listing limits.
    #[serde(default)]
    pub listing: RawListing,
}

/// `access` of a template.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawAccess {
    /// Any caller the restrictions allow.
    #[default]
    Public,
    /// Only callers presenting an active permanent API key of the project.
    ApiKey,
}

/// Metadata of a permanent API key.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawApiKey {
    /// The key id (`ak_…`).
    pub id: String,
    /// What the key is for.
    #[serde(default)]
    pub description: String,
    /// Permissions it may use (at most those it was created with). May be omitted on an
    /// inactive entry that only revokes a key created over HTTP.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Projects it may be used for. May be omitted on an inactive entry.
    #[serde(default)]
    pub projects: Vec<String>,
    /// When it was created.
    pub created_at: Option<RawDate>,
    /// The signing key that signed it (kept published while the key is active).
    pub kid: Option<String>,
    /// When it expires, if the operator set an expiry.
    pub expires_at: Option<RawDate>,
    /// false puts the id on the signed revocation list. Default true.
    #[serde(default = "yes")]
    pub active: bool,
    /// Access keys minted through this key before this instant (a date or a date-time with
    /// offset, not in the future) are refused everywhere; the key itself stays valid.
    pub revoke_issued_before: Option<RawDate>,
}

fn yes() -> bool {
    true
}

/// Upload limits and scope.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawUpload {
    /// Most uploads per minute with one key. Default unlimited.
    #[schemars(range(min = 1, max = 4294967295_i64))]
    pub limit_per_min: Option<i64>,
    /// Most uploads per source IP with one key. Default unlimited.
    #[schemars(range(min = 1, max = 4294967295_i64))]
    pub limit_per_source_ip: Option<i64>,
    /// Where the key may upload and write: `/folder` or `/folder/*` (the folder and everything
    /// below it), one or a list. Default all directories.
    pub dir_scope: Option<OneOrMany>,
    /// Largest file one upload may be, in bytes (carried as `upload_max_bytes`). Default
    /// unlimited.
    #[schemars(range(min = 1))]
    pub max_file_size: Option<i64>,
    /// Media types (`image/png`) or ranges (`image/*`) an upload may have, compared without
    /// regard to case (carried as `upload_types`). Default any type.
    pub content_types: Option<Vec<String>>,
}

/// Caller restrictions.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawRestrict {
    /// CIDR ranges (or single addresses) allowed to mint. Default no restriction.
    pub whitelist_ip_ranges: Option<Vec<String>>,
    /// ISO 3166-1 alpha-2 codes, upper case (GB, not UK). Default all countries.
    pub whitelist_countries: Option<Vec<String>>,
}

/// Listing limits.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(crate) struct RawListing {
    /// Where the key may list, search and fetch, one scope or a list. Default all directories.
    pub directory_scope: Option<OneOrMany>,
}

/// A date (`2026-01-31`) or a date-time with offset (`2026-01-31T09:00:00Z`), written as a TOML
/// date or as a string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawDate {
    /// A TOML date or date-time.
    #[schemars(with = "String")]
    Toml(toml::value::Datetime),
    /// The same as a string.
    Text(String),
}

/// A scope setting may be one string or a list of strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, JsonSchema, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// One scope.
    One(String),
    /// Several scopes.
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The JSON Schema of `config.toml`, pretty-printed.
pub(crate) fn json_schema() -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&schemars::schema_for!(RawConfig))
}

/// Every setting of `config.toml`, walked from its JSON Schema, as a path with `[]` for an
/// entry of an array of tables and `*` for an entry of a map of tables:
/// `server.listen`, `templates[]`, `templates[].upload.dir_scope`, `projects.*.description`.
/// Plain tables (`server`, `templates[].upload`) are not settings of their own; their keys are.
pub(crate) fn setting_paths() -> Vec<String> {
    // The schema as `keysmith schema` prints it, so the walk sees what editors see. Only the
    // "did you mean" suggestions depend on it: without it they are left out, nothing else.
    let Ok(root) = serde_json::to_value(schemars::schema_for!(RawConfig)) else { return Vec::new() };
    let mut out = Vec::new();
    properties(&root, &root, "", &mut out);
    out
}

/// The schema `node` resolves to, with `$ref` followed and each `anyOf`/`oneOf`/`allOf`
/// alternative listed.
fn alternatives<'a>(root: &'a serde_json::Value, node: &'a serde_json::Value) -> Vec<&'a serde_json::Value> {
    let node = node
        .get("$ref")
        .and_then(serde_json::Value::as_str)
        .and_then(|r| r.strip_prefix("#/"))
        .and_then(|r| root.pointer(&format!("/{r}")))
        .unwrap_or(node);
    let mut out = vec![node];
    for key in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(key).and_then(serde_json::Value::as_array).into_iter().flatten() {
            out.extend(alternatives(root, alt));
        }
    }
    out
}

fn properties(root: &serde_json::Value, node: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    for table in alternatives(root, node) {
        let Some(props) = table.get("properties").and_then(serde_json::Value::as_object) else { continue };
        for (key, value) in props {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            setting(root, value, path, out);
        }
    }
}

fn has_properties(root: &serde_json::Value, node: &serde_json::Value) -> bool {
    alternatives(root, node).iter().any(|n| n.get("properties").is_some())
}

fn setting(root: &serde_json::Value, node: &serde_json::Value, path: String, out: &mut Vec<String>) {
    if has_properties(root, node) {
        return properties(root, node, &path, out);
    }
    for alt in alternatives(root, node) {
        if let Some(items) = alt.get("items").filter(|i| has_properties(root, i)) {
            let entry = format!("{path}[]");
            properties(root, items, &entry, out);
            out.push(entry);
            return;
        }
        if let Some(entries) = alt.get("additionalProperties").filter(|e| has_properties(root, e)) {
            let entry = format!("{path}.*");
            properties(root, entries, &entry, out);
            out.push(entry);
            return;
        }
    }
    out.push(path);
}
