//! `gate.toml`: parsed as strictly as `config.toml` (unknown keys are refused with their paths),
//! then validated with every problem reported at once.

use crate::config::{ConfigError, Problem, from_toml_strict_with};
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

/// Every setting of `gate.toml`, for the "did you mean" of an unknown key (a unit test keeps
/// it equal to the fields of the structs below).
const SETTINGS: &[&str] = &[
    "issuer",
    "audience",
    "jwks",
    "revocations",
    "listen",
    "metrics_listen",
    "trusted_proxies",
    "allowed_callers",
    "request_headers",
    "refresh_seconds",
    "cache_capacity",
    "limits.store",
    "limits.on_store_error",
    "limits.max_keys_per_source",
    "limits.max_entries",
    "routes[].methods",
    "routes[].path",
    "routes[].permission",
    "routes[].dir",
    "routes[].upload",
    "catalog.permissions",
    "catalog.upload_scoped",
    "catalog.list_scoped",
];

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
    allowed_callers: Option<Vec<String>>,
    #[serde(default)]
    request_headers: RequestHeaders,
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
    #[serde(default)]
    max_keys_per_source: Option<usize>,
    #[serde(default)]
    max_entries: Option<usize>,
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

/// Which headers describe the original request to the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestHeaders {
    /// `X-Forwarded-Method` + `X-Forwarded-Uri` (Caddy, Traefik, Envoy) or `X-Original-Method` +
    /// `X-Original-URI` (nginx), each pair complete; where both are complete they must agree,
    /// and a partial pair beside a complete one is refused.
    #[default]
    Either,
    /// `X-Forwarded-Method` + `X-Forwarded-Uri` only; `X-Original-*` is ignored.
    XForwarded,
    /// `X-Original-Method` + `X-Original-URI` only; `X-Forwarded-Method`/`-Uri` are ignored
    /// (behind nginx with another proxy in front that sets them, for example).
    XOriginal,
}

/// A validated `gate.toml`.
#[derive(Debug)]
pub struct GateConfig {
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud` (project).
    pub audience: String,
    /// The JWKS: an `http(s)://` URL refreshed in the background, or a file read at start and
    /// re-read whenever it changes (looked at every [`super::JWKS_FILE_POLL`]).
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
    /// Peers that may ask `/v1/authorize` (the proxies whose description of the original
    /// request, key and length is believed); any other peer is refused with `403
    /// caller_not_allowed`. Defaults to `trusted_proxies`; never empty (a config error), and
    /// loopback is not added implicitly. `["0.0.0.0/0", "::/0"]` lets every peer ask.
    pub allowed_callers: IpRules,
    /// Which headers describe the original request. Defaults to either kind.
    pub request_headers: RequestHeaders,
    /// How often the JWKS and revocation list are fetched. Defaults to [`DEFAULT_REFRESH_SECONDS`].
    pub refresh: Duration,
    /// Verified tokens cached. Defaults to [`crate::verify::DEFAULT_CACHE_CAPACITY`].
    pub cache_capacity: usize,
    /// Where upload counters are kept. Defaults to memory.
    pub store: StoreSetting,
    /// What to do when the store cannot decide. Defaults to deny.
    pub on_store_error: OnStoreError,
    /// With the memory store, the live keys one address (IPv6: its /64) may start counters
    /// for; `None` is the store's default (1 % of its entries). Not allowed with Redis, which
    /// has no such bound.
    pub max_keys_per_source: Option<usize>,
    /// With the memory store, the live entries it holds; `None` is
    /// [`MemoryStore::DEFAULT_MAX_ENTRIES`](crate::limits::MemoryStore::DEFAULT_MAX_ENTRIES).
    /// Not allowed with Redis.
    pub max_entries: Option<usize>,
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
        let settings: Vec<String> = SETTINGS.iter().map(|s| (*s).to_owned()).collect();
        let raw: RawGate = from_toml_strict_with(text, &settings)?;
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
        let trusted_proxies = IpRules::parse(&raw.trusted_proxies)
            .map_err(|e| problem(&format!("trusted_proxies[{}]", e.index), e.source.to_string()))
            .ok();
        let allowed_callers = allowed_callers(raw.allowed_callers.as_deref(), trusted_proxies.as_ref(), &mut problem);
        let trusted_proxies = trusted_proxies.unwrap_or_else(|| IpRules::new(Vec::new()));
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
        for (key, value) in [
            ("limits.max_keys_per_source", raw.limits.max_keys_per_source),
            ("limits.max_entries", raw.limits.max_entries),
        ] {
            match (value, &store) {
                (Some(0), _) => problem(key, "must be at least 1".into()),
                (Some(_), StoreSetting::Redis(_)) => {
                    problem(key, "applies to the memory store only (Redis is bounded by its maxmemory)".into());
                }
                _ => {}
            }
        }
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
                allowed_callers,
                request_headers: raw.request_headers,
                refresh: Duration::from_secs(refresh),
                cache_capacity: raw.cache_capacity.unwrap_or(crate::verify::DEFAULT_CACHE_CAPACITY),
                store,
                on_store_error: raw.limits.on_store_error,
                max_keys_per_source: raw.limits.max_keys_per_source,
                max_entries: raw.limits.max_entries,
                routes,
                rules,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }
}

/// The peers that may ask the gate: `allowed_callers` when set, else `trusted_proxies` (the
/// proxies that call the gate are the ones whose `X-Forwarded-For` it believes). Empty is a
/// problem: a gate nobody may ask is a misconfiguration, and letting everyone ask must be said.
fn allowed_callers(
    listed: Option<&[String]>,
    trusted_proxies: Option<&IpRules>,
    problem: &mut impl FnMut(&str, String),
) -> IpRules {
    let callers = match (listed, trusted_proxies) {
        (None, Some(trusted)) => trusted.clone(),
        // trusted_proxies is invalid, and reported already: no second problem for it.
        (None, None) => return IpRules::new(Vec::new()),
        (Some(list), _) => match IpRules::parse(list) {
            Ok(rules) => rules,
            Err(e) => {
                problem(&format!("allowed_callers[{}]", e.index), e.source.to_string());
                return IpRules::new(Vec::new());
            }
        },
    };
    if callers.ranges().is_empty() {
        let why = if listed.is_some() { "is empty" } else { "is not set and trusted_proxies, its default, is empty" };
        problem(
            "allowed_callers",
            format!(
                "{why}: no peer may ask /v1/authorize. List the proxies that call the gate (in allowed_callers, \
                 or in trusted_proxies when they are the same), or allowed_callers = [\"0.0.0.0/0\", \"::/0\"] \
                 to let every peer ask"
            ),
        );
    }
    callers
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
    fn max_keys_per_source_is_for_the_memory_store_only() {
        let memory = GOOD.replace(
            "store = \"redis://127.0.0.1:6379/0\"",
            "store = \"memory\"\nmax_keys_per_source = 5000\nmax_entries = 500000",
        );
        let c = GateConfig::from_toml(&memory).unwrap();
        assert_eq!((c.store, c.max_keys_per_source, c.max_entries), (StoreSetting::Memory, Some(5000), Some(500_000)));
        let c = GateConfig::from_toml(GOOD).unwrap();
        assert_eq!((c.max_keys_per_source, c.max_entries), (None, None));
        for (bad, path) in [
            (
                GOOD.replace("on_store_error", "max_keys_per_source = 5000\non_store_error"),
                "limits.max_keys_per_source",
            ),
            (GOOD.replace("on_store_error", "max_entries = 5000\non_store_error"), "limits.max_entries"),
            (memory.replace("5000\n", "0\n"), "limits.max_keys_per_source"),
            (memory.replace("500000", "0"), "limits.max_entries"),
        ] {
            let ConfigError::Invalid(problems) = GateConfig::from_toml(&bad).unwrap_err() else { panic!("{bad}") };
            let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, [path], "{bad}");
        }
    }

    #[test]
    fn request_headers_takes_one_of_three_kinds() {
        let with =
            |value: &str| GOOD.replace("trusted_proxies", &format!("request_headers = {value:?}\ntrusted_proxies"));
        assert_eq!(GateConfig::from_toml(GOOD).unwrap().request_headers, RequestHeaders::Either);
        assert_eq!(GateConfig::from_toml(&with("x-original")).unwrap().request_headers, RequestHeaders::XOriginal);
        assert_eq!(GateConfig::from_toml(&with("x-forwarded")).unwrap().request_headers, RequestHeaders::XForwarded);
        for bad in ["X-Original", "x_original", "both", ""] {
            assert!(matches!(GateConfig::from_toml(&with(bad)), Err(ConfigError::Parse { .. })), "{bad}");
        }
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
    fn allowed_callers_default_to_trusted_proxies_and_are_never_empty() {
        let c = GateConfig::from_toml(GOOD).unwrap();
        assert_eq!(c.allowed_callers, c.trusted_proxies);
        assert!(!c.allowed_callers.contains("127.0.0.2".parse().unwrap()), "loopback is not added implicitly");
        let with = |line: &str| GOOD.replace("trusted_proxies = [\"127.0.0.1/32\"]", line);
        let c = GateConfig::from_toml(&with("trusted_proxies = []\nallowed_callers = [\"10.0.0.0/8\"]")).unwrap();
        assert!(c.allowed_callers.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.allowed_callers.contains("127.0.0.1".parse().unwrap()));
        let open = GateConfig::from_toml(&with("allowed_callers = [\"0.0.0.0/0\", \"::/0\"]")).unwrap();
        assert!(open.allowed_callers.is_anywhere());
        for (text, path) in [
            ("trusted_proxies = []", "allowed_callers"),
            ("", "allowed_callers"),
            ("trusted_proxies = [\"127.0.0.1/32\"]\nallowed_callers = []", "allowed_callers"),
            ("allowed_callers = [\"10.0.0.1/8\"]", "allowed_callers[0]"),
            // An invalid trusted_proxies is one problem, not a second one for its default.
            ("trusted_proxies = [\"nope\"]", "trusted_proxies[0]"),
        ] {
            let ConfigError::Invalid(problems) = GateConfig::from_toml(&with(text)).unwrap_err() else { panic!() };
            let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, [path], "{text}");
            if path == "allowed_callers" {
                let message = &problems[0].message;
                assert!(message.contains("trusted_proxies") && message.contains("allowed_callers"), "{message}");
            }
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
    fn a_misspelt_key_is_refused_with_the_setting_meant() {
        let text = GOOD
            .replace("trusted_proxies", "allowed_caller = [\"127.0.0.1/32\"]\ntrusted_proxies")
            .replace("on_store_error", "on_store_eror")
            .replace("upload = true", "uplaod = true");
        let ConfigError::Invalid(problems) = GateConfig::from_toml(&text).unwrap_err() else { panic!() };
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "allowed_caller: unknown setting (did you mean allowed_callers?)",
                "limits.on_store_eror: unknown setting (did you mean on_store_error?)",
                "routes[0].uplaod: unknown setting (did you mean upload?)",
            ]
        );
    }

    /// The field names serde asks for when it deserializes the struct `T`.
    fn fields_of<T: serde::de::DeserializeOwned>() -> Vec<String> {
        struct Probe<'a>(&'a mut Vec<String>);
        impl<'de> serde::Deserializer<'de> for Probe<'_> {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0.extend(fields.iter().map(|f| (*f).to_owned()));
                Err(serde::de::Error::custom("probed"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
                unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
            }
        }
        let mut fields = Vec::new();
        assert!(T::deserialize(Probe(&mut fields)).is_err());
        fields
    }

    #[test]
    fn the_settings_for_suggestions_are_every_field() {
        let tables = [
            ("limits", fields_of::<RawLimits>()),
            ("routes[]", fields_of::<RouteSpec>()),
            ("catalog", fields_of::<RawCatalog>()),
        ];
        let mut expected: Vec<String> = fields_of::<RawGate>()
            .into_iter()
            .filter(|f| !tables.iter().any(|(table, _)| table.trim_end_matches("[]") == f))
            .collect();
        for (table, fields) in &tables {
            expected.extend(fields.iter().map(|f| format!("{table}.{f}")));
        }
        assert!(expected.len() > 10, "{expected:?}");
        expected.sort();
        let mut listed: Vec<String> = SETTINGS.iter().map(|s| (*s).to_owned()).collect();
        listed.sort();
        assert_eq!(listed, expected);
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
