//! `config.toml`: parsed strictly, then validated as a whole.
//!
//! [`Config::load`] reads the file, parses it, and validates every setting, reporting *all*
//! problems at once, each with its TOML path (`templates[1].upload.dir_scope[0]: …`). Unknown
//! keys are among them (`templates[0].upload.dir_scop: unknown setting (did you mean
//! dir_scope?)`): they refuse the config, but do not hide the other problems.

mod countries;
mod edit;
pub(crate) mod raw;
mod validate;

use crate::policy::dir_scope::ScopeSet;
use crate::policy::ip::IpRules;
use crate::policy::media::MediaRange;
use crate::policy::scope_rules::ScopeRules;
use crate::token::claims::Limits;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use edit::{ConfigEditor, CutOff, EditError};
pub(crate) use edit::{lock, write_atomically};
pub use validate::{DEFAULT_EXPIRATION, DEFAULT_LISTEN, DEFAULT_REVOCATIONS_MAX_AGE, MAX_EXPIRATION};

/// The JSON Schema of `config.toml` (draft 2020-12), for TOML editors (taplo, Even Better
/// TOML): point at it with a `#:schema` comment on the first line of the file.
///
/// # Errors
///
/// When the schema does not serialise (never an empty schema in its place).
pub fn json_schema() -> Result<String, serde_json::Error> {
    raw::json_schema()
}

/// How a config's `version` moved against the one it replaces. The rule, written once for the
/// service and for `keysmith check`: every change of content bumps `version`, and a lower
/// `version` is a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionChange {
    /// `version` went up.
    Raised,
    /// Same `version`, same content: nothing to apply (a change of keys alone).
    Unchanged,
    /// Same `version`, different content: refused, bump `version` on every change.
    NotBumped,
    /// `version` went down: a rollback, refused unless explicitly allowed.
    Lowered,
}

impl VersionChange {
    /// How `next` moved against `previous`; `content_changed` says whether the text differs.
    pub fn between(previous: u64, next: u64, content_changed: bool) -> Self {
        match next.cmp(&previous) {
            std::cmp::Ordering::Greater => Self::Raised,
            std::cmp::Ordering::Less => Self::Lowered,
            std::cmp::Ordering::Equal if content_changed => Self::NotBumped,
            std::cmp::Ordering::Equal => Self::Unchanged,
        }
    }
}

/// Largest config file read, in bytes.
pub const MAX_CONFIG_LEN: u64 = 4 * 1024 * 1024;

/// One validation problem, located by its TOML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a TOML path such as `templates[0].restrict.whitelist_ip_ranges[2]`.
    pub path: String,
    /// What is wrong, and where useful what to write instead.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_LEN`].
    #[error("config is larger than {MAX_CONFIG_LEN} bytes")]
    TooLarge,
    /// The file is not valid TOML, or does not fit the config's shape (a wrong type, a missing
    /// key).
    #[error("{message}")]
    Parse {
        /// Where and what: `TOML error at line L, column C: …`, followed by the unknown keys
        /// met before a wrong type stopped deserializing.
        message: String,
        /// The parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// The file parsed but some settings are invalid or unknown.
    #[error("{} invalid setting(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Config version, bumped on every change; copied into every token as `ver`.
    pub version: u64,
    /// The `iss` claim of every token.
    pub issuer: String,
    /// How long verifiers may cache the JWKS, in seconds; also how long a new signing key is
    /// published before it signs. Defaults to 300.
    pub jwks_max_age: u32,
    /// Lifetime of a signed revocation list, in seconds. Defaults to
    /// [`DEFAULT_REVOCATIONS_MAX_AGE`] (300 s).
    pub revocations_max_age: u32,
    /// The algorithm name written in token headers and, with `jwks_alg_member`, in the JWKS.
    /// Defaults to `EdDSA`.
    pub jws_alg: crate::token::jws::JwsAlg,
    /// Whether the JWKS keys carry `alg`. Defaults to `true`; `false` publishes keys that
    /// verifiers selecting by `alg` match under either name.
    pub jwks_alg_member: bool,
    /// Server settings.
    pub server: ServerConfig,
    /// The permission catalogue.
    pub catalog: Catalog,
    /// Projects by id; the id is the `{project}` path segment and the token audience.
    pub projects: BTreeMap<String, Project>,
    templates: Vec<Template>,
    by_id: HashMap<String, usize>,
    api_keys: Vec<ApiKeyMeta>,
}

impl Config {
    /// Reads and validates a config file. A relative `server.geoip_database` is resolved against
    /// the file's directory.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`]; [`ConfigError::Invalid`] lists every problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let io = |source| ConfigError::Io { path: path.to_owned(), source };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge);
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses and validates config text; relative paths are resolved against `base_dir`.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Self, ConfigError> {
        if text.len() as u64 > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge);
        }
        let document = toml::Deserializer::parse(text)
            .map_err(|source| ConfigError::Parse { message: parse_error(text, &source), source })?;
        let mut ignored = Vec::new();
        let raw: Result<raw::RawConfig, _> = serde_ignored::deserialize(document, |path| {
            let mut list = Vec::new();
            steps(&path, &mut list);
            ignored.push(list);
        });
        let settings = if ignored.is_empty() { Vec::new() } else { raw::setting_paths() };
        let mut unknown: Vec<Problem> = ignored.iter().map(|steps| unknown_setting(steps, &settings)).collect();
        let raw = raw.map_err(|source| {
            // A wrong type stops deserializing; the unknown keys met before it are reported too.
            let mut message = parse_error(text, &source);
            for p in &unknown {
                message.push_str(&format!("\n{p}"));
            }
            ConfigError::Parse { message, source }
        })?;
        // Unknown keys refuse the config like any invalid setting, and are reported with them.
        match validate::validate(raw, base_dir) {
            Ok(config) if unknown.is_empty() => Ok(config),
            Ok(_) => Err(ConfigError::Invalid(unknown)),
            Err(problems) => {
                unknown.extend(problems);
                Err(ConfigError::Invalid(unknown))
            }
        }
    }

    /// The templates, in file order.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The template `id` of `project`, if both exist.
    pub fn template(&self, project: &str, id: &str) -> Option<&Template> {
        self.by_id.get(id).map(|&i| &self.templates[i]).filter(|t| t.project == project)
    }

    /// The permanent API keys' metadata, in file order.
    pub fn api_keys(&self) -> &[ApiKeyMeta] {
        &self.api_keys
    }

    /// The metadata of API key `id`.
    pub fn api_key(&self, id: &str) -> Option<&ApiKeyMeta> {
        self.api_keys.iter().find(|k| k.id == id)
    }

    /// Ids of deactivated API keys, for the revocation list.
    pub fn revoked_api_keys(&self) -> Vec<String> {
        self.api_keys.iter().filter(|k| !k.active).map(|k| k.id.clone()).collect()
    }

    /// Ids of API keys refused at `now` (seconds since the Unix epoch): deactivated, or whose
    /// record's `expires_at` has passed. The signed revocation list carries these, so a
    /// record's expiry reaches verifiers that only see the list.
    pub fn api_keys_refused_at(&self, now: u64) -> Vec<String> {
        self.api_keys.iter().filter(|k| !k.active || k.is_expired(now)).map(|k| k.id.clone()).collect()
    }

    /// Ids of the recorded API keys accepted at `now`: active and not expired. The signed
    /// revocation list carries these; a permanent key whose chain root is not among them is
    /// refused downstream. The complement of [`Config::api_keys_refused_at`].
    pub fn api_keys_active_at(&self, now: u64) -> Vec<String> {
        self.api_keys.iter().filter(|k| k.active && !k.is_expired(now)).map(|k| k.id.clone()).collect()
    }

    /// Template id → `revoke_issued_before`, for the revocation list.
    pub fn templates_issued_before(&self) -> BTreeMap<String, u64> {
        self.templates.iter().filter_map(|t| Some((t.id.clone(), t.revoke_issued_before?))).collect()
    }

    /// API key id → `revoke_issued_before`, for the revocation list.
    pub fn api_keys_issued_before(&self) -> BTreeMap<String, u64> {
        self.api_keys.iter().filter_map(|k| Some((k.id.clone(), k.revoke_issued_before?))).collect()
    }

    /// Ids of deactivated templates, for the revocation list.
    pub fn revoked_templates(&self) -> Vec<String> {
        self.templates.iter().filter(|t| !t.active).map(|t| t.id.clone()).collect()
    }

    /// The longest `expiration_duration` of any template, in seconds.
    pub fn longest_expiration(&self) -> u32 {
        self.templates.iter().map(|t| t.expiration_duration).max().unwrap_or(0)
    }
}

/// Seconds since the Unix epoch of a config date: a date-time as written, a bare date at the
/// start of that day (UTC); `None` for text that names no instant or one before the epoch.
pub(crate) fn unix_of(text: &str) -> Option<u64> {
    let instant = chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp()).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp())
    });
    instant.and_then(|t| u64::try_from(t).ok())
}

/// Deserializes another strict TOML document (such as `gate.toml`) the way `config.toml` is
/// read: a syntax or type error is [`ConfigError::Parse`] with its line and column, and every
/// unknown key is reported with its TOML path in [`ConfigError::Invalid`].
///
/// # Errors
///
/// A [`ConfigError`].
pub fn from_toml_strict<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    from_toml_strict_with(text, &[])
}

/// [`from_toml_strict`], with the document's setting paths (as [`raw::setting_paths`] gives
/// them for `config.toml`: `limits.store`, `routes[].path`) so an unknown key close to one of
/// them is reported with a "did you mean".
pub(crate) fn from_toml_strict_with<T: serde::de::DeserializeOwned>(
    text: &str,
    settings: &[String],
) -> Result<T, ConfigError> {
    if text.len() as u64 > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge);
    }
    let document = toml::Deserializer::parse(text)
        .map_err(|source| ConfigError::Parse { message: parse_error(text, &source), source })?;
    let mut ignored = Vec::new();
    let value: Result<T, _> = serde_ignored::deserialize(document, |path| {
        let mut list = Vec::new();
        steps(&path, &mut list);
        ignored.push(list);
    });
    let unknown: Vec<Problem> = ignored.iter().map(|steps| unknown_setting(steps, settings)).collect();
    let value = value.map_err(|source| {
        let mut message = parse_error(text, &source);
        for p in &unknown {
            message.push_str(&format!("\n{p}"));
        }
        ConfigError::Parse { message, source }
    })?;
    if unknown.is_empty() { Ok(value) } else { Err(ConfigError::Invalid(unknown)) }
}

/// A one-line description of a TOML error: `TOML error at line 12, column 1: invalid type …`.
fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("TOML error at line {line}, column {column}: {message}")
        }
        None => format!("TOML error: {message}"),
    }
}

/// One step of a TOML path.
enum Step {
    Key(String),
    Index(usize),
}

fn steps(path: &serde_ignored::Path<'_>, out: &mut Vec<Step>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            steps(parent, out);
            out.push(Step::Index(*index));
        }
        Path::Map { parent, key } => {
            steps(parent, out);
            out.push(Step::Key(key.clone()));
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => steps(parent, out),
    }
}

/// `key` as written in a TOML path: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if bare { key.to_owned() } else { format!("{key:?}") }
}

/// The problem for an unknown key: its TOML path (`templates[0].upload.dir_scop`) and, when a
/// setting of the same table is spelled closely enough, what was probably meant.
/// `settings` are the schema's setting paths ([`raw::setting_paths`]).
fn unknown_setting(list: &[Step], settings: &[String]) -> Problem {
    let (mut shown, mut table) = (String::new(), String::new());
    let mut last = String::new();
    for (i, step) in list.iter().enumerate() {
        match step {
            Step::Index(n) => {
                shown.push_str(&format!("[{n}]"));
                table.push_str("[]");
            }
            Step::Key(key) => {
                let dot = if shown.is_empty() { "" } else { "." };
                shown.push_str(&format!("{dot}{}", toml_key(key)));
                if i + 1 == list.len() {
                    last.clone_from(key);
                } else {
                    // An entry of a map of tables (`projects.<id>`) is `*` in the schema's paths.
                    let entry = format!("{table}{dot}*");
                    let generic = settings.iter().any(|s| s.strip_prefix(&entry).is_some_and(|r| r.starts_with('.')));
                    table = if generic { entry } else { format!("{table}{dot}{key}") };
                }
            }
        }
    }
    let message = match suggestion(settings, &table, &last) {
        Some(near) => format!("unknown setting (did you mean {near}?)"),
        None => "unknown setting".to_owned(),
    };
    Problem { path: shown, message }
}

/// The key of table `table` (a schema path, empty for the top level) closest to `key`, if it is
/// close: at most a third of its characters differ (at least one).
fn suggestion(settings: &[String], table: &str, key: &str) -> Option<String> {
    // Settings are short; a long key is no typo of one (and is not worth comparing).
    if key.len() > 64 {
        return None;
    }
    let prefix = if table.is_empty() { String::new() } else { format!("{table}.") };
    let known: std::collections::BTreeSet<&str> = settings
        .iter()
        .filter_map(|s| s.strip_prefix(&prefix))
        .filter_map(|rest| rest.split(['.', '[']).next())
        .filter(|k| !k.is_empty() && *k != "*")
        .collect();
    let limit = (key.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, k)| k.to_owned())
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listen address. Defaults to [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// Where `/metrics` is served instead of the main listener. Defaults to `None`: on the main
    /// listener, next to the public endpoints; set it to keep metrics on a private address.
    pub metrics_listen: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` is believed. Defaults to none.
    pub trusted_proxies: IpRules,
    /// Origins allowed to call the service from a browser (CORS). Defaults to none.
    pub cors_origins: Vec<String>,
    /// The GeoIP country database, resolved to an absolute or config-relative path.
    pub geoip_database: Option<PathBuf>,
    /// Where API-key creations are appended as JSON lines, besides the log. Defaults to none.
    pub audit_log: Option<PathBuf>,
    /// The header trusted proxies set. Defaults to `X-Forwarded-For`.
    pub forwarded_header: crate::policy::ip::ForwardedHeader,
    /// Requests per source address per minute on the mint and key-creation endpoints, with a
    /// burst; `None` turns the limit off. Defaults to 600 a minute, bursts of 60.
    pub rate_limit: Option<RateLimit>,
    /// The Redis URL (`redis://…`) that keeps the per-address budgets of every replica, or
    /// `None` for this process's memory. Defaults to `None`. The URL may hold a password: it is
    /// never logged or shown in a diff.
    pub rate_limit_store: Option<String>,
    /// The `Host` values (`host[:port]`, lower case) the service answers to; any other gets
    /// `421 misdirected_request`. Defaults to empty: any host, which leaves a service whose
    /// templates allow callers by address open to DNS rebinding from a browser.
    pub allowed_hosts: Vec<String>,
}

impl ServerConfig {
    /// Whether a request naming `host` (its `Host` header or URI authority; `None` when it
    /// names none) is for this service: always when `allowed_hosts` is empty, otherwise only
    /// for one of them, compared without regard to case.
    pub fn allows_host(&self, host: Option<&str>) -> bool {
        self.allowed_hosts.is_empty()
            || host.is_some_and(|host| self.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host)))
    }
}

/// Whether `s` follows the id grammar of projects and templates: 1 to 64 of `a-z`, `0-9`,
/// `-`, `_`, starting with a letter or digit.
pub fn is_id(s: &str) -> bool {
    validate::is_slug(s)
}

/// A per-source-address request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute.
    pub per_minute: std::num::NonZeroU32,
    /// Requests allowed at once.
    pub burst: std::num::NonZeroU32,
}

/// `[projects.<id>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Free text.
    pub description: String,
}

/// The permission catalogue: the default Scaleflex list or one declared under `[catalog]`.
#[derive(Debug, Clone)]
pub struct Catalog {
    permissions: Vec<String>,
    known: HashSet<String>,
    rules: ScopeRules,
    manage_permission: Option<String>,
}

impl Catalog {
    /// The 31 Scaleflex permissions with their scope rules.
    pub fn scaleflex() -> Self {
        Self::new(
            crate::policy::scope_rules::SCALEFLEX_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
            ScopeRules::scaleflex(),
            Some("ACCESS_MANAGE".to_owned()),
        )
    }

    fn new(permissions: Vec<String>, rules: ScopeRules, manage_permission: Option<String>) -> Self {
        let known = permissions.iter().cloned().collect();
        Self { permissions, known, rules, manage_permission }
    }

    /// The permission a key needs to create API keys over HTTP (`ACCESS_MANAGE` by default;
    /// `catalog.manage_permission` for a custom catalogue, where creation is off unless set).
    pub fn manage_permission(&self) -> Option<&str> {
        self.manage_permission.as_deref()
    }

    /// Whether `permission` is in the catalogue.
    pub fn contains(&self, permission: &str) -> bool {
        self.known.contains(permission)
    }

    /// The permissions, in declaration order.
    pub fn permissions(&self) -> &[String] {
        &self.permissions
    }

    /// Which scope each permission is checked against.
    pub fn rules(&self) -> &ScopeRules {
        &self.rules
    }
}

/// One `[[templates]]` entry: what a key minted from it may do.
#[derive(Debug, Clone)]
pub struct Template {
    /// Slug, unique across the config; the `{template}` path segment and the token's `sub`.
    pub id: String,
    /// The project it belongs to.
    pub project: String,
    /// Free text.
    pub description: String,
    /// Whether keys may be minted from it. Defaults to `true`.
    pub active: bool,
    /// Who may mint: anyone allowed by the restrictions, or only holders of a permanent key.
    pub access: Access,
    /// When it was created (RFC 3339), for people.
    pub created_at: Option<String>,
    /// Permissions granted, in catalogue terms, without duplicates.
    pub permissions: Vec<String>,
    /// Key lifetime in seconds. Defaults to [`DEFAULT_EXPIRATION`] (1200 s).
    pub expiration_duration: u32,
    /// `upload.limit_per_min` and `upload.limit_per_source_ip`. Default: unlimited.
    pub limits: Limits,
    /// `upload.dir_scope`. Default: all directories (`/*`).
    pub upload_dirs: ScopeSet,
    /// `listing.directory_scope`. Default: all directories (`/*`).
    pub list_dirs: ScopeSet,
    /// `restrict.whitelist_ip_ranges`. Default: no restriction.
    pub ips: IpRules,
    /// `restrict.whitelist_countries`. Default: all countries (`None`).
    pub countries: Option<Vec<String>>,
    /// `revoke_issued_before`, seconds since the Unix epoch: keys minted from the template
    /// earlier are refused. Default: none.
    pub revoke_issued_before: Option<u64>,
    /// `upload.max_file_size` in bytes. Default: unlimited.
    pub max_file_size: Option<u64>,
    /// `upload.content_types`, without duplicates. Default: any type (`None`).
    pub content_types: Option<Vec<MediaRange>>,
}

/// Who may mint from a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Any caller the template's restrictions allow (the default).
    Public,
    /// Only callers presenting an active permanent API key of the template's project; the key's
    /// permissions bound the minted ones.
    ApiKey,
}

/// One `[[api_keys]]` entry: the metadata of a permanent key, never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyMeta {
    /// The key id (`sub` and `jti` of the key).
    pub id: String,
    /// Free text identifying the key.
    pub description: String,
    /// Permissions it was created with.
    pub permissions: Vec<String>,
    /// Projects it may be used for.
    pub projects: Vec<String>,
    /// When it was created (RFC 3339).
    pub created_at: Option<String>,
    /// The kid of the signing key that signed it.
    pub kid: Option<String>,
    /// When it expires (RFC 3339), if the operator set an expiry; the key itself carries `exp`.
    pub expires_at: Option<String>,
    /// `false` puts the id on the signed revocation list. Defaults to `true`.
    pub active: bool,
    /// `revoke_issued_before`, seconds since the Unix epoch: access keys minted through this key
    /// earlier are refused. Default: none.
    pub revoke_issued_before: Option<u64>,
}

impl ApiKeyMeta {
    /// `expires_at` in seconds since the Unix epoch: a date-time as written, a bare date at
    /// the start of that day (UTC), `0` for text that names no instant (fail closed; validation
    /// refuses such text anyway), and `None` when no expiry is set.
    pub fn expires_at_unix(&self) -> Option<u64> {
        Some(unix_of(self.expires_at.as_deref()?).unwrap_or(0))
    }

    /// Whether the key's record has expired at `now` (seconds since the Unix epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at_unix().is_some_and(|exp| now >= exp)
    }
}

#[cfg(test)]
mod tests {
    use super::VersionChange;

    #[test]
    fn every_change_of_content_bumps_the_version() {
        assert_eq!(VersionChange::between(3, 4, true), VersionChange::Raised);
        assert_eq!(VersionChange::between(3, 4, false), VersionChange::Raised);
        assert_eq!(VersionChange::between(3, 3, false), VersionChange::Unchanged);
        assert_eq!(VersionChange::between(3, 3, true), VersionChange::NotBumped);
        assert_eq!(VersionChange::between(3, 2, false), VersionChange::Lowered);
    }
}
