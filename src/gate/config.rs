//! `gate.toml`: parsed as strictly as `config.toml` (unknown keys are refused with their paths),
//! then validated with every problem reported at once.

use crate::config::{ConfigError, Problem, from_toml_strict};
use crate::enforce::{OnStoreError, RouteSpec, Routes};
use crate::policy::ip::IpRules;
use crate::policy::scope_rules::ScopeRules;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The address the gate listens on when neither `--listen` nor `listen` says otherwise.
pub const DEFAULT_GATE_LISTEN: &str = "127.0.0.1:9090";
/// How often the JWKS and revocation list are fetched by default, in seconds.
pub const DEFAULT_REFRESH_SECONDS: u64 = 30;

#[derive(Debug, Deserialize)]
struct RawGate {
    issuer: String,
    audience: String,
    jwks: String,
    #[serde(default)]
    revocations: Option<String>,
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    metrics_listen: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    refresh_seconds: Option<u64>,
    #[serde(default)]
    cache_capacity: Option<usize>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    catalog: Option<RawCatalog>,
}

#[derive(Debug, Default, Deserialize)]
struct RawLimits {
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    on_store_error: OnStoreError,
}

#[derive(Debug, Deserialize)]
struct RawCatalog {
    permissions: Vec<String>,
    #[serde(default)]
    upload_scoped: Vec<String>,
    #[serde(default)]
    list_scoped: Vec<String>,
}

/// Where the upload counters are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSetting {
    /// In this process: one gate's budget.
    Memory,
    /// In Redis at this URL: one budget across every gate replica.
    Redis(String),
}

/// A validated `gate.toml`.
#[derive(Debug)]
pub struct GateConfig {
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud` (project).
    pub audience: String,
    /// The JWKS: an `http(s)://` URL refreshed in the background, or a file read at start.
    pub jwks: String,
    /// The revocation list URL, if permanent keys and early template revocation are wanted.
    pub revocations: Option<String>,
    /// Where to listen. Defaults to [`DEFAULT_GATE_LISTEN`].
    pub listen: SocketAddr,
    /// A separate address for `/metrics` (then the main listener answers `404` there).
    /// Defaults to none: `/metrics` is served on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-For` is believed. Defaults to none.
    pub trusted_proxies: IpRules,
    /// How often the JWKS and revocation list are fetched. Defaults to [`DEFAULT_REFRESH_SECONDS`].
    pub refresh: Duration,
    /// Verified tokens cached. Defaults to [`crate::verify::DEFAULT_CACHE_CAPACITY`].
    pub cache_capacity: usize,
    /// Where upload counters are kept. Defaults to memory.
    pub store: StoreSetting,
    /// What to do when the store cannot decide. Defaults to deny.
    pub on_store_error: OnStoreError,
    /// The routes, in order.
    pub routes: Routes,
    /// The scope rules of the permission vocabulary. Defaults to the Scaleflex catalogue.
    pub rules: ScopeRules,
}

impl GateConfig {
    /// Reads and validates `path`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`]; [`ConfigError::Invalid`] lists every problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        Self::from_toml(&text)
    }

    /// Parses and validates `gate.toml` text.
    ///
    /// # Errors
    ///
    /// As [`GateConfig::load`].
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawGate = from_toml_strict(text)?;
        let mut problems = Vec::new();
        let mut problem = |path: &str, message: String| problems.push(Problem { path: path.to_owned(), message });
        for (key, value) in [("issuer", &raw.issuer), ("audience", &raw.audience), ("jwks", &raw.jwks)] {
            if value.is_empty() {
                problem(key, "must not be empty".into());
            }
        }
        if let Some(url) = &raw.revocations
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problem("revocations", "must be an http:// or https:// URL".into());
        }
        let listen = raw.listen.as_deref().unwrap_or(DEFAULT_GATE_LISTEN).parse().unwrap_or_else(|_| {
            problem("listen", "must be an address such as 127.0.0.1:9090".into());
            SocketAddr::from(([127, 0, 0, 1], 9090))
        });
        let metrics_listen = raw.metrics_listen.as_deref().and_then(|text| match text.parse::<SocketAddr>() {
            Ok(addr) if addr == listen => {
                problem("metrics_listen", "must differ from listen".into());
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                problem("metrics_listen", "must be an address such as 127.0.0.1:9091".into());
                None
            }
        });
        let trusted_proxies = IpRules::parse(&raw.trusted_proxies).unwrap_or_else(|e| {
            problem(&format!("trusted_proxies[{}]", e.index), e.source.to_string());
            IpRules::new(Vec::new())
        });
        let refresh = raw.refresh_seconds.unwrap_or(DEFAULT_REFRESH_SECONDS);
        if refresh == 0 || refresh > 3600 {
            problem("refresh_seconds", "must be 1 to 3600".into());
        }
        let store = match raw.limits.store.as_deref() {
            None | Some("memory") => StoreSetting::Memory,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                StoreSetting::Redis(url.to_owned())
            }
            Some(_) => {
                problem("limits.store", "must be \"memory\" or a redis:// URL".into());
                StoreSetting::Memory
            }
        };
        let rules = match &raw.catalog {
            None => ScopeRules::scaleflex(),
            Some(c) => {
                if c.permissions.is_empty() {
                    problem("catalog.permissions", "must list at least one permission".into());
                }
                for (key, list) in [("upload_scoped", &c.upload_scoped), ("list_scoped", &c.list_scoped)] {
                    for (i, p) in list.iter().enumerate() {
                        if !c.permissions.contains(p) {
                            problem(&format!("catalog.{key}[{i}]"), format!("{p:?} is not in catalog.permissions"));
                        }
                    }
                }
                ScopeRules::new(&c.permissions, &c.upload_scoped, &c.list_scoped)
            }
        };
        for (i, route) in raw.routes.iter().enumerate() {
            if rules.kind(&route.permission).is_none() {
                problem(&format!("routes[{i}].permission"), format!("{:?} is not in the catalogue", route.permission));
            }
        }
        let routes = Routes::new(&raw.routes).map_err(|e| problem("routes", e.to_string())).ok();
        match routes {
            Some(routes) if problems.is_empty() => Ok(Self {
                issuer: raw.issuer,
                audience: raw.audience,
                jwks: raw.jwks,
                revocations: raw.revocations,
                listen,
                metrics_listen,
                trusted_proxies,
                refresh: Duration::from_secs(refresh),
                cache_capacity: raw.cache_capacity.unwrap_or(crate::verify::DEFAULT_CACHE_CAPACITY),
                store,
                on_store_error: raw.limits.on_store_error,
                routes,
                rules,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
issuer = "http://localhost:8080"
audience = "demo"
jwks = "http://127.0.0.1:8080/.well-known/jwks.json"
revocations = "http://127.0.0.1:8080/v1/revocations"
trusted_proxies = ["127.0.0.1/32"]

[limits]
store = "redis://127.0.0.1:6379/0"
on_store_error = "allow"

[[routes]]
methods = ["PUT", "POST"]
path = "/files/{*file}"
permission = "FILE_UPLOAD"
dir = "parent:file"
upload = true
"#;

    #[test]
    fn parses_the_documented_example() {
        let c = GateConfig::from_toml(GOOD).unwrap();
        assert_eq!(c.store, StoreSetting::Redis("redis://127.0.0.1:6379/0".into()));
        assert_eq!(c.on_store_error, OnStoreError::Allow);
        assert_eq!(c.listen, DEFAULT_GATE_LISTEN.parse().unwrap());
        assert_eq!(c.metrics_listen, None);
    }

    #[test]
    fn metrics_listen_is_validated() {
        let with =
            |value: &str| GOOD.replace("trusted_proxies", &format!("metrics_listen = {value:?}\ntrusted_proxies"));
        let c = GateConfig::from_toml(&with("127.0.0.1:9091")).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9091".parse().unwrap()));
        for bad in ["localhost", "127.0.0.1:9090"] {
            let ConfigError::Invalid(problems) = GateConfig::from_toml(&with(bad)).unwrap_err() else { panic!() };
            let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, ["metrics_listen"], "{bad}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_paths() {
        let text =
            GOOD.replace("upload = true", "upload = true\nuplod_dir = 1").replace("[limits]", "[limits]\nstor = 1");
        let ConfigError::Invalid(problems) = GateConfig::from_toml(&text).unwrap_err() else { panic!() };
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"limits.stor"), "{paths:?}");
        assert!(paths.contains(&"routes[0].uplod_dir"), "{paths:?}");
    }

    #[test]
    fn every_problem_is_reported() {
        let text = GOOD
            .replace("redis://127.0.0.1:6379/0", "memcached://x")
            .replace("FILE_UPLOAD", "NOPE")
            .replace("127.0.0.1/32", "127.0.0.1/8");
        let ConfigError::Invalid(problems) = GateConfig::from_toml(&text).unwrap_err() else { panic!() };
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["trusted_proxies[0]", "limits.store", "routes[0].permission"]);
        let bad_store = GOOD.replace("\"allow\"", "\"maybe\"");
        assert!(matches!(GateConfig::from_toml(&bad_store), Err(ConfigError::Parse { .. })));
    }
}
