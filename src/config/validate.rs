//! Raw TOML model → validated [`Config`], collecting every problem with its path.

use super::raw::{OneOrMany, RawAccess, RawApiKey, RawCatalog, RawConfig, RawServer, RawTemplate};
use super::{Access, ApiKeyMeta, Catalog, Config, Problem, Project, ServerConfig, Template, countries};
use crate::policy::dir_scope::ScopeSet;
use crate::policy::ip::IpRules;
use crate::policy::media::MediaRange;
use crate::policy::scope_rules::ScopeRules;
use crate::token::claims::Limits;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

/// Default key lifetime: 1200 s (20 minutes), as the security-template documentation says.
pub const DEFAULT_EXPIRATION: u32 = 1200;
/// Longest key lifetime a template may set: 7 days.
pub const MAX_EXPIRATION: u32 = 7 * 24 * 3600;
/// Default lifetime of a signed revocation list: 300 s.
pub const DEFAULT_REVOCATIONS_MAX_AGE: u32 = 300;
/// Bounds of `revocations_max_age`: 10 s to one day.
const REVOCATIONS_MAX_AGE_BOUNDS: std::ops::RangeInclusive<u32> = 10..=86_400;
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Most scopes or IP ranges in one setting.
const MAX_ENTRIES: usize = 64;

/// Collects problems while validating.
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { path: path.into(), message: message.into() });
    }
}

pub(super) fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, Vec<Problem>> {
    let mut p = Problems(Vec::new());

    let version = u64::try_from(raw.version).ok().filter(|v| *v >= 1).unwrap_or_else(|| {
        p.add("version", "must be a positive integer, bumped on every change");
        0
    });
    if raw.issuer.is_empty() || raw.issuer.len() > 256 || raw.issuer.chars().any(char::is_control) {
        p.add("issuer", "must be 1 to 256 characters without control characters");
    }
    let revocations_max_age = seconds(
        raw.revocations_max_age,
        DEFAULT_REVOCATIONS_MAX_AGE,
        REVOCATIONS_MAX_AGE_BOUNDS,
        "revocations_max_age",
        &mut p,
    );
    let jwks_max_age = seconds(raw.jwks_max_age, 300, 1..=86_400, "jwks_max_age", &mut p);
    let jws_alg = match raw.jws_alg {
        Some(super::raw::RawJwsAlg::Ed25519) => crate::token::jws::JwsAlg::Ed25519,
        Some(super::raw::RawJwsAlg::EdDsa) | None => crate::token::jws::JwsAlg::EdDsa,
    };
    let jwks_alg_member = raw.jwks_alg_member.unwrap_or(true);
    let server = server(raw.server, base_dir, &mut p);
    let catalog = catalog(raw.catalog, &mut p);

    let mut projects = BTreeMap::new();
    for (id, project) in raw.projects {
        if !is_slug(&id) {
            p.add(
                format!("projects.{id}"),
                "project id must be a slug: 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit",
            );
        }
        projects.insert(id, Project { description: project.description });
    }

    let mut templates = Vec::with_capacity(raw.templates.len());
    let mut by_id = HashMap::new();
    for (i, t) in raw.templates.into_iter().enumerate() {
        let path = format!("templates[{i}]");
        if let Some(first) = by_id.get(&t.id) {
            p.add(format!("{path}.id"), format!("duplicate template id {:?} (also templates[{first}])", t.id));
        } else {
            by_id.insert(t.id.clone(), i);
        }
        if !projects.contains_key(&t.project) {
            p.add(
                format!("{path}.project"),
                format!("unknown project {:?}; declare it under [projects.{}]", t.project, t.project),
            );
        }
        templates.push(template(t, &path, &catalog, &server, &mut p));
    }

    let mut api_keys: Vec<ApiKeyMeta> = Vec::with_capacity(raw.api_keys.len());
    for (i, k) in raw.api_keys.into_iter().enumerate() {
        let path = format!("api_keys[{i}]");
        if let Some(first) = api_keys.iter().position(|other| other.id == k.id) {
            p.add(format!("{path}.id"), format!("duplicate API key id {:?} (also api_keys[{first}])", k.id));
        }
        api_keys.push(api_key(k, &path, &catalog, &projects, &mut p));
    }

    if !p.0.is_empty() {
        return Err(p.0);
    }
    Ok(Config {
        version,
        issuer: raw.issuer,
        jwks_max_age,
        revocations_max_age,
        jws_alg,
        jwks_alg_member,
        server,
        catalog,
        projects,
        templates,
        by_id,
        api_keys,
    })
}

fn server(raw: RawServer, base_dir: &Path, p: &mut Problems) -> ServerConfig {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        p.add("server.listen", format!("{listen_text:?} is not an address:port such as {DEFAULT_LISTEN:?}"));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let metrics_listen = raw.metrics_listen.as_deref().and_then(|text| {
        let parsed = text.parse::<SocketAddr>().ok();
        if parsed.is_none() {
            p.add("server.metrics_listen", format!("{text:?} is not an address:port such as \"127.0.0.1:9090\""));
        }
        parsed
    });
    if metrics_listen.is_some_and(|m| m == listen) {
        p.add("server.metrics_listen", "must differ from server.listen (leave it out to serve /metrics there)");
    }
    let trusted_proxies = ip_rules(&raw.trusted_proxies, "server.trusted_proxies", p);
    for (i, origin) in raw.cors_origins.iter().enumerate() {
        if !is_origin(origin) {
            p.add(
                format!("server.cors_origins[{i}]"),
                format!("{origin:?} is not an origin: scheme://host[:port], http or https, no path or trailing slash"),
            );
        }
    }
    let geoip_database = raw.geoip_database.map(|db| base_dir.join(db));
    let audit_log = raw.audit_log.map(|log| base_dir.join(log));
    let forwarded_header = match raw.forwarded_header {
        Some(super::raw::RawForwardedHeader::Forwarded) => crate::policy::ip::ForwardedHeader::Forwarded,
        _ => crate::policy::ip::ForwardedHeader::XForwardedFor,
    };
    let mut positive = |value: Option<i64>, default: u32, key: &str, zero_ok: bool| -> Option<std::num::NonZeroU32> {
        let n = value.unwrap_or(i64::from(default));
        match u32::try_from(n) {
            Ok(0) if zero_ok => None,
            Ok(n) if n > 0 => std::num::NonZeroU32::new(n),
            _ => {
                p.add(
                    format!("server.{key}"),
                    format!("{n} must be a positive integer{}", if zero_ok { " (0 turns the limit off)" } else { "" }),
                );
                None
            }
        }
    };
    let per_minute = positive(raw.rate_limit_per_minute, 600, "rate_limit_per_minute", true);
    let burst = positive(raw.rate_limit_burst, 60, "rate_limit_burst", false);
    let rate_limit = per_minute.zip(burst).map(|(per_minute, burst)| super::RateLimit { per_minute, burst });
    for (i, host) in raw.allowed_hosts.iter().enumerate() {
        if !is_host_and_port(host) {
            p.add(
                format!("server.allowed_hosts[{i}]"),
                format!("{host:?} is not host[:port]: a DNS name, an IPv4 address or a bracketed IPv6 address, and an optional port 1 to 65535; no scheme or path"),
            );
        }
    }
    let allowed_hosts = raw.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    let rate_limit_store = match raw.rate_limit_store {
        None => None,
        Some(s) if s == "memory" => None,
        Some(s) if s.starts_with("redis://") || s.starts_with("rediss://") => Some(s),
        Some(_) => {
            p.add("server.rate_limit_store", "must be \"memory\" or a redis:// URL");
            None
        }
    };
    ServerConfig {
        listen,
        metrics_listen,
        trusted_proxies,
        cors_origins: raw.cors_origins,
        geoip_database,
        audit_log,
        forwarded_header,
        rate_limit,
        rate_limit_store,
        allowed_hosts,
    }
}

fn catalog(raw: Option<RawCatalog>, p: &mut Problems) -> Catalog {
    let Some(raw) = raw else {
        return Catalog::scaleflex();
    };
    if raw.permissions.is_empty() {
        p.add(
            "catalog.permissions",
            "must list at least one permission (omit [catalog] for the default Scaleflex catalogue)",
        );
    }
    let mut seen = HashSet::new();
    for (i, perm) in raw.permissions.iter().enumerate() {
        if !is_permission_name(perm) {
            p.add(
                format!("catalog.permissions[{i}]"),
                format!("{perm:?} must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', ':', '-'"),
            );
        }
        if !seen.insert(perm.as_str()) {
            p.add(format!("catalog.permissions[{i}]"), format!("duplicate permission {perm:?}"));
        }
    }
    for (key, list) in [("upload_scoped", &raw.upload_scoped), ("list_scoped", &raw.list_scoped)] {
        for (i, perm) in list.iter().enumerate() {
            if !seen.contains(perm.as_str()) {
                p.add(format!("catalog.{key}[{i}]"), format!("{perm:?} is not in catalog.permissions"));
            }
        }
    }
    if let Some(manage) = &raw.manage_permission
        && !seen.contains(manage.as_str())
    {
        p.add("catalog.manage_permission", format!("{manage:?} is not in catalog.permissions"));
    }
    let rules = ScopeRules::new(raw.permissions.iter().cloned(), raw.upload_scoped, raw.list_scoped);
    Catalog::new(raw.permissions, rules, raw.manage_permission)
}

fn template(t: RawTemplate, path: &str, catalog: &Catalog, server: &ServerConfig, p: &mut Problems) -> Template {
    if !is_slug(&t.id) {
        p.add(
            format!("{path}.id"),
            format!("{:?} must be a slug: 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit", t.id),
        );
    }
    if t.description.len() > 1024 {
        p.add(format!("{path}.description"), "must be at most 1024 bytes");
    }
    let created_at = created_at(t.created_at, &format!("{path}.created_at"), p);
    let revoke_issued_before = cut_off(t.revoke_issued_before, &format!("{path}.revoke_issued_before"), p);

    let permissions = permission_list(t.permissions, &format!("{path}.permissions"), catalog, p);

    let expiration_duration = seconds(
        t.expiration_duration,
        DEFAULT_EXPIRATION,
        1..=MAX_EXPIRATION,
        &format!("{path}.expiration_duration"),
        p,
    );

    let mut limit = |value: Option<i64>, key: &str| {
        value.and_then(|n| match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                p.add(
                    format!("{path}.upload.{key}"),
                    format!("{n} must be a positive integer (omit it for unlimited)"),
                );
                None
            }
        })
    };
    let limits = Limits {
        per_min: limit(t.upload.limit_per_min, "limit_per_min"),
        per_source_ip: limit(t.upload.limit_per_source_ip, "limit_per_source_ip"),
    };

    let max_file_size = t.upload.max_file_size.and_then(|n| match u64::try_from(n) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            p.add(
                format!("{path}.upload.max_file_size"),
                format!("{n} must be a positive number of bytes (omit it for unlimited)"),
            );
            None
        }
    });
    let content_types = t.upload.content_types.map(|list| {
        let key = format!("{path}.upload.content_types");
        if list.is_empty() {
            p.add(&key, "is empty, which would allow no upload; omit it for any type");
        }
        if list.len() > crate::verify::MAX_LIST_ENTRIES {
            p.add(&key, format!("at most {} entries", crate::verify::MAX_LIST_ENTRIES));
        }
        let mut out: Vec<MediaRange> = Vec::with_capacity(list.len());
        for (i, text) in list.iter().enumerate() {
            match MediaRange::parse(text) {
                Ok(range) if !out.contains(&range) => out.push(range),
                Ok(_) => p.add(format!("{key}[{i}]"), format!("duplicate content type {text:?}")),
                Err(e) => p.add(format!("{key}[{i}]"), e.to_string()),
            }
        }
        out
    });
    let upload_dirs = scopes(t.upload.dir_scope, &format!("{path}.upload.dir_scope"), p);
    let list_dirs = scopes(t.listing.directory_scope, &format!("{path}.listing.directory_scope"), p);

    let ips = match t.restrict.whitelist_ip_ranges {
        None => IpRules::anywhere(),
        Some(ranges) if ranges.is_empty() => {
            p.add(
                format!("{path}.restrict.whitelist_ip_ranges"),
                "is empty, which would allow no address; omit it for no restriction",
            );
            IpRules::anywhere()
        }
        Some(ranges) => ip_rules(&ranges, &format!("{path}.restrict.whitelist_ip_ranges"), p),
    };

    let countries = t.restrict.whitelist_countries.map(|list| {
        let key = format!("{path}.restrict.whitelist_countries");
        if list.is_empty() {
            p.add(&key, "is empty, which would allow no country; omit it for all countries");
        }
        let mut out: Vec<String> = Vec::with_capacity(list.len());
        for (i, code) in list.into_iter().enumerate() {
            if !countries::is_iso_alpha2(&code) {
                let hint = if code.eq_ignore_ascii_case("UK") { " (the United Kingdom is \"GB\")" } else { "" };
                p.add(format!("{key}[{i}]"), format!("{code:?} is not an ISO 3166-1 alpha-2 code in upper case{hint}"));
            } else if !out.contains(&code) {
                out.push(code);
            }
        }
        if server.geoip_database.is_none() {
            p.add(&key, "restricting countries needs server.geoip_database; without it every request would be refused");
        }
        out
    });

    Template {
        id: t.id,
        project: t.project,
        description: t.description,
        active: t.active,
        access: match t.access {
            RawAccess::Public => Access::Public,
            RawAccess::ApiKey => Access::ApiKey,
        },
        created_at,
        permissions,
        expiration_duration,
        limits,
        upload_dirs,
        list_dirs,
        ips,
        countries,
        revoke_issued_before,
        max_file_size,
        content_types,
    }
}

/// A duration in seconds within `bounds`; `default` when unset or (after reporting it) invalid.
fn seconds(
    value: Option<i64>,
    default: u32,
    bounds: std::ops::RangeInclusive<u32>,
    path: &str,
    p: &mut Problems,
) -> u32 {
    let Some(secs) = value else { return default };
    match u32::try_from(secs) {
        Ok(secs) if bounds.contains(&secs) => secs,
        _ => {
            p.add(path, format!("{secs} is out of bounds: {} to {} seconds", bounds.start(), bounds.end()));
            default
        }
    }
}

/// A date or a date-time with offset, as RFC 3339 text.
fn created_at(value: Option<super::raw::RawDate>, path: &str, p: &mut Problems) -> Option<String> {
    let text = match value? {
        super::raw::RawDate::Toml(dt) => dt.to_string(),
        super::raw::RawDate::Text(text) => text,
    };
    // A local date-time or a bare time names no instant.
    let date_only = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").is_ok();
    let instant = chrono::DateTime::parse_from_rfc3339(&text).is_ok();
    if date_only || instant {
        Some(text)
    } else {
        p.add(path, format!("{text:?} must be a date (2026-01-31) or a date-time with offset (2026-01-31T09:00:00Z)"));
        None
    }
}

/// A `revoke_issued_before` cut-off in seconds since the Unix epoch. One in the future (by
/// this machine's clock) is refused: it would void keys not yet minted.
fn cut_off(value: Option<super::raw::RawDate>, path: &str, p: &mut Problems) -> Option<u64> {
    let text = created_at(value, path, p)?;
    let at = super::unix_of(&text);
    let now = crate::verify::unix_seconds(std::time::SystemTime::now());
    match at {
        Some(at) if at <= now => Some(at),
        Some(_) => {
            p.add(path, format!("{text:?} is in the future; a cut-off names a moment that has passed"));
            None
        }
        None => {
            p.add(path, format!("{text:?} is before 1970"));
            None
        }
    }
}

/// Permissions from the catalogue, without duplicates; every problem reported.
fn permission_list(list: Vec<String>, path: &str, catalog: &Catalog, p: &mut Problems) -> Vec<String> {
    if list.is_empty() {
        p.add(path, "must grant at least one permission");
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, perm) in list.into_iter().enumerate() {
        if !catalog.contains(&perm) {
            p.add(format!("{path}[{i}]"), format!("unknown permission {perm:?}"));
        } else if out.contains(&perm) {
            p.add(format!("{path}[{i}]"), format!("duplicate permission {perm:?}"));
        } else {
            out.push(perm);
        }
    }
    out
}

fn api_key(
    k: RawApiKey,
    path: &str,
    catalog: &Catalog,
    projects: &BTreeMap<String, Project>,
    p: &mut Problems,
) -> ApiKeyMeta {
    if !is_key_id(&k.id) {
        p.add(format!("{path}.id"), format!("{:?} must be 1 to 64 of A-Z, a-z, 0-9, '-', '_'", k.id));
    }
    if k.description.len() > 1024 {
        p.add(format!("{path}.description"), "must be at most 1024 bytes");
    }
    // An inactive entry may be a bare tombstone: it only puts the id on the revocation list.
    let permissions = if !k.active && k.permissions.is_empty() {
        Vec::new()
    } else {
        permission_list(k.permissions, &format!("{path}.permissions"), catalog, p)
    };
    if k.projects.is_empty() && k.active {
        p.add(format!("{path}.projects"), "must name at least one project");
    }
    for (i, project) in k.projects.iter().enumerate() {
        if !projects.contains_key(project) {
            p.add(format!("{path}.projects[{i}]"), format!("unknown project {project:?}"));
        }
    }
    ApiKeyMeta {
        created_at: created_at(k.created_at, &format!("{path}.created_at"), p),
        expires_at: created_at(k.expires_at, &format!("{path}.expires_at"), p),
        kid: k.kid,
        id: k.id,
        description: k.description,
        permissions,
        projects: k.projects,
        active: k.active,
        revoke_issued_before: cut_off(k.revoke_issued_before, &format!("{path}.revoke_issued_before"), p),
    }
}

/// Whether `s` is a valid API key id: 1 to 64 of `A-Z a-z 0-9 - _`.
pub(crate) fn is_key_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

fn scopes(raw: Option<OneOrMany>, path: &str, p: &mut Problems) -> ScopeSet {
    let Some(raw) = raw else {
        return ScopeSet::everything();
    };
    let texts = raw.into_vec();
    if texts.len() > MAX_ENTRIES {
        p.add(path, format!("holds more than {MAX_ENTRIES} scopes"));
        return ScopeSet::everything();
    }
    match ScopeSet::parse(&texts) {
        Ok(set) => set,
        Err(crate::policy::dir_scope::ScopeSetError { index, source: e }) => {
            match index {
                Some(i) => p.add(format!("{path}[{i}]"), format!("{:?} {e}", texts[i])),
                None => p.add(path, "is empty, which would allow no directory; omit it for all directories"),
            }
            // Report every bad entry, not only the first.
            for (i, text) in texts.iter().enumerate().skip(index.map_or(texts.len(), |i| i + 1)) {
                if let Err(e) = crate::policy::dir_scope::DirScope::parse(text) {
                    p.add(format!("{path}[{i}]"), format!("{text:?} {e}"));
                }
            }
            ScopeSet::everything()
        }
    }
}

fn ip_rules(texts: &[String], path: &str, p: &mut Problems) -> IpRules {
    if texts.len() > MAX_ENTRIES * 4 {
        p.add(path, format!("holds more than {} ranges", MAX_ENTRIES * 4));
    }
    let mut ranges = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        match crate::policy::ip::IpRange::parse(text) {
            Ok(r) => ranges.push(r),
            Err(e) => p.add(format!("{path}[{i}]"), format!("{text:?} {e}")),
        }
    }
    IpRules::new(ranges)
}

pub(super) fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

fn is_permission_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.:-".contains(&c))
}

/// `host[:port]` as a `Host` header carries it: a DNS name or IPv4 address (letters, digits,
/// `-`, `.`), or a bracketed IPv6 address, then an optional port 1 to 65535.
fn is_host_and_port(s: &str) -> bool {
    let port_ok = |port: &str| port.bytes().all(|c| c.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|n| n > 0);
    if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return false };
        return v6.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = s.split_once(':').map_or((s, None), |(host, port)| (host, Some(port)));
    !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
        && !host.starts_with(['.', '-'])
        && port.is_none_or(port_ok)
}

fn is_origin(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) && host.bytes().all(|c| c.is_ascii_graphic())
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use std::path::Path;

    const BASE: &str = r#"
version = 3
issuer = "https://keys.example.com"
[server]
geoip_database = "geo/country.mmdb"
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/keysmith"))
    }

    fn problems(text: &str) -> Vec<String> {
        match load(text) {
            Err(ConfigError::Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn shipped_config_is_valid() {
        let config = load(include_str!("../../config.toml")).unwrap();
        assert!(config.templates().iter().any(|t| t.active && t.project == "demo"));
        assert!(!config.server.cors_origins.is_empty());
    }

    #[test]
    fn defaults_follow_the_security_template_documentation() {
        let config = load(BASE).unwrap();
        let t = config.template("demo", "widget").unwrap();
        assert!(t.active);
        assert_eq!(t.expiration_duration, 1200);
        assert!(t.upload_dirs.is_everything() && t.list_dirs.is_everything());
        assert!(t.ips.is_anywhere());
        assert_eq!(t.countries, None);
        assert_eq!(t.limits.if_any(), None);
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.server.geoip_database.as_deref(), Some(Path::new("/etc/keysmith/geo/country.mmdb")));
        assert_eq!(config.catalog.permissions().len(), 31);
        assert!(config.template("other", "widget").is_none());
    }

    #[test]
    fn allowed_hosts_are_host_and_port() {
        let good = r#"allowed_hosts = ["keys.example.com", "Keys.Example.com:8443", "10.0.0.1:80", "[::1]", "[2001:db8::1]:443"]"#;
        let config = load(&BASE.replace("[server]", &format!("[server]\n{good}"))).unwrap();
        assert_eq!(config.server.allowed_hosts[1], "keys.example.com:8443", "stored in lower case");
        assert!(config.server.allows_host(Some("KEYS.example.com")));
        assert!(!config.server.allows_host(Some("keys.example.com:80")));
        assert!(!config.server.allows_host(None));
        assert!(load(BASE).unwrap().server.allows_host(None), "no setting: any host");
        let bad = r#"allowed_hosts = ["https://keys.example.com", "keys.example.com/", "a b", "x:0", "x:65536", "", "[::1", "[zz]:1", "x:", "*.example.com"]"#;
        let got = problems(&BASE.replace("[server]", &format!("[server]\n{bad}")));
        assert_eq!(got.len(), 10, "{got:#?}");
        for (i, problem) in got.iter().enumerate() {
            assert!(problem.starts_with(&format!("server.allowed_hosts[{i}]: ")), "{problem}");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = format!("{BASE}[templates.upload]\ndir_scop = \"/a/*\"\n");
        // Located by TOML path (issue 9 item 2), no longer by line and column.
        assert_eq!(problems(&text), ["templates[0].upload.dir_scop: unknown setting (did you mean dir_scope?)"]);
        let top = "version = 1\nissuer = \"i\"\nisuer = \"j\"\n";
        assert_eq!(problems(top), ["isuer: unknown setting (did you mean issuer?)"]);
        // A wrong type still stops parsing, with its line; unknown keys met before it are listed.
        let Err(ConfigError::Parse { message, .. }) = load(&format!("{BASE}acces = 1\nactive = \"yes\"\n")) else {
            panic!()
        };
        assert!(message.starts_with("TOML error at line 12, column 10: invalid type"), "{message}");
        assert!(message.ends_with("\ntemplates[0].acces: unknown setting (did you mean access?)"), "{message}");
    }

    #[test]
    fn a_parse_error_keeps_the_toml_error_as_its_source() {
        for text in [format!("{BASE}acces = 1\nactive = \"yes\"\n"), "version = = 1\n".to_owned()] {
            let err = load(&text).unwrap_err();
            let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<toml::de::Error>());
            assert!(source.is_some(), "{err:?}");
            assert!(err.to_string().starts_with("TOML error at line "), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_reported_with_every_other_problem() {
        let text = format!(
            "{BASE}colour = 1\n[templates.upload]\ndir_scop = \"/a/*\"\n[templates.restrict]\nwhitelist_ip_ranges = [\"10.0.0.1/8\"]\nwhitelist_countrys = [\"FR\"]\n[[templates]]\nid = \"b\"\nproject = \"demo\"\npermissions = [\"FILE_UPLOAD\"]\nlisting.frobnicate = 1\n"
        );
        let got = problems(&text);
        let expect = [
            "templates[0].colour: unknown setting",
            "templates[0].upload.dir_scop: unknown setting (did you mean dir_scope?)",
            "templates[0].restrict.whitelist_countrys: unknown setting (did you mean whitelist_countries?)",
            "templates[1].listing.frobnicate: unknown setting",
            "templates[0].restrict.whitelist_ip_ranges[0]: \"10.0.0.1/8\" has host bits set",
        ];
        for want in expect {
            assert!(got.iter().any(|p| p.starts_with(want)), "missing {want:?} in:\n{}", got.join("\n"));
        }
        assert_eq!(got.len(), expect.len(), "{got:#?}");
        assert!(got.contains(&"templates[0].colour: unknown setting".to_owned()), "no far-fetched suggestion");
        // Unknown keys alone still refuse the config; under a map of tables the path names the entry.
        let typo = format!("{BASE}[projects.demo2]\ndescripton = \"x\"\n");
        assert_eq!(problems(&typo), ["projects.demo2.descripton: unknown setting (did you mean description?)"]);
        let quoted = format!("{BASE}[projects.demo2]\n\"we ird\" = 1\n");
        assert_eq!(problems(&quoted), ["projects.demo2.\"we ird\": unknown setting"]);
    }

    #[test]
    fn schema_still_refuses_unknown_keys() {
        let schema: serde_json::Value = serde_json::from_str(&super::super::json_schema().unwrap()).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let defs = schema["$defs"].as_object().unwrap();
        for name in [
            "RawServer",
            "RawCatalog",
            "RawProject",
            "RawTemplate",
            "RawApiKey",
            "RawUpload",
            "RawRestrict",
            "RawListing",
        ] {
            assert_eq!(defs[name]["additionalProperties"], false, "{name}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = r#"
version = 0
issuer = ""
[server]
listen = "localhost"
trusted_proxies = ["10.0.0.1/8"]
cors_origins = ["http://localhost:3000/", "*"]
[projects."Bad Id"]
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "FILE_UPLOAD", "FILE_TELEPORT"]
expiration_duration = 0
created_at = 2026-01-01T09:00:00
[templates.upload]
limit_per_min = 0
dir_scope = ["/ok/*", "relative", "/a/../b", "/a*/b", "/x/*/*"]
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/33", "010.1.0.0/16", "192.168.1.1/24"]
whitelist_countries = ["UK", "fr", "FR"]
[templates.listing]
directory_scope = []
[[templates]]
id = "widget"
project = "nope"
permissions = []
expiration_duration = 604801
"#;
        let got = problems(text);
        let expect = [
            "version: ",
            "issuer: ",
            "server.listen: ",
            "server.trusted_proxies[0]: \"10.0.0.1/8\" has host bits set; the canonical range is 10.0.0.0/8",
            "server.cors_origins[0]: ",
            "server.cors_origins[1]: ",
            "projects.Bad Id: ",
            "templates[0].permissions[1]: duplicate permission",
            "templates[0].permissions[2]: unknown permission \"FILE_TELEPORT\"",
            "templates[0].expiration_duration: 0 is out of bounds",
            "templates[0].created_at: ",
            "templates[0].upload.limit_per_min: ",
            "templates[0].upload.dir_scope[1]: \"relative\" must be absolute",
            "templates[0].upload.dir_scope[2]: ",
            "templates[0].upload.dir_scope[3]: ",
            "templates[0].upload.dir_scope[4]: ",
            "templates[0].restrict.whitelist_ip_ranges[0]: ",
            "templates[0].restrict.whitelist_ip_ranges[1]: ",
            "templates[0].restrict.whitelist_ip_ranges[2]: \"192.168.1.1/24\" has host bits set; the canonical range is 192.168.1.0/24",
            "templates[0].restrict.whitelist_countries[0]: \"UK\" is not an ISO 3166-1 alpha-2 code in upper case (the United Kingdom is \"GB\")",
            "templates[0].restrict.whitelist_countries[1]: ",
            "templates[0].restrict.whitelist_countries: restricting countries needs server.geoip_database",
            "templates[0].listing.directory_scope: is empty",
            "templates[1].id: duplicate template id \"widget\" (also templates[0])",
            "templates[1].project: unknown project \"nope\"",
            "templates[1].permissions: must grant at least one permission",
            "templates[1].expiration_duration: 604801 is out of bounds",
        ];
        for want in expect {
            assert!(got.iter().any(|p| p.starts_with(want)), "missing {want:?} in:\n{}", got.join("\n"));
        }
        assert_eq!(got.len(), expect.len(), "unexpected extra problems:\n{}", got.join("\n"));
        assert!(!got.iter().any(|p| p.contains("dir_scope[0]")), "a valid scope was reported");
    }

    #[test]
    fn custom_catalogue() {
        let text = r#"
version = 1
issuer = "i"
[catalog]
permissions = ["asset.read", "asset.upload", "album.read"]
upload_scoped = ["asset.upload"]
list_scoped = ["asset.read", "asset.delete"]
[projects.p]
[[templates]]
id = "t"
project = "p"
permissions = ["asset.upload", "FILE_UPLOAD"]
"#;
        let got = problems(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("catalog.list_scoped[1]: \"asset.delete\" is not in catalog.permissions"));
        assert!(got[1].starts_with("templates[0].permissions[1]: unknown permission \"FILE_UPLOAD\""));
        let ok = load(&text.replace(", \"asset.delete\"", "").replace(", \"FILE_UPLOAD\"", "")).unwrap();
        let rules = ok.catalog.rules();
        assert_eq!(rules.kind("asset.upload"), Some(crate::policy::scope_rules::ScopeKind::Upload));
        assert_eq!(rules.kind("asset.read"), Some(crate::policy::scope_rules::ScopeKind::List));
        assert_eq!(rules.kind("album.read"), Some(crate::policy::scope_rules::ScopeKind::None));
        assert_eq!(rules.kind("FILE_UPLOAD"), None);
    }

    #[test]
    fn scope_settings_accept_one_or_many() {
        let one = load(&format!("{BASE}[templates.upload]\ndir_scope = \"/a/*\"\n")).unwrap();
        assert_eq!(one.templates()[0].upload_dirs.to_strings(), ["/a/*"]);
        let many = load(&format!("{BASE}[templates.listing]\ndirectory_scope = [\"/a\", \"/b/*\"]\n")).unwrap();
        assert_eq!(many.templates()[0].list_dirs.to_strings(), ["/a", "/b/*"]);
    }

    #[test]
    fn hostile_text_never_panics() {
        for text in [
            "",
            "\0",
            "version = 1",
            "[[templates]]\n[[templates]]",
            "version = 99999999999999999999",
            "issuer = \"\u{202e}\"",
        ] {
            assert!(load(text).is_err(), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_text_never_panics(text in "(?s).{0,400}") {
            let _ = load(&text);
        }

        #[test]
        fn mutated_config_never_panics(pos in 0usize..2000, byte in 0u8..128) {
            let mut bytes = include_str!("../../config.toml").as_bytes().to_vec();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                let _ = load(&text);
            }
        }
    }
}
