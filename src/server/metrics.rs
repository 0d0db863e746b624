//! `/metrics`: what operators watch, in the Prometheus text format (`prometheus-client`).
//!
//! One [`Metrics`] lives in each [`IssuerHandle`] and outlives reloads. Label values come only
//! from the running config's ids, key ids and stable problem codes, never from raw request
//! input: a path naming an unknown project or template is counted under [`UNKNOWN`], so a
//! client cannot create series.

use crate::config::Config;
use crate::server::state::{IssuerHandle, Serving};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::SystemTime;

/// The label value for a project or template that the running config does not declare (or a
/// path segment that is not an id at all). Ids start with a letter or digit, so it never
/// collides with one.
pub(crate) const UNKNOWN: &str = "_unknown";

/// The media type of the exposition (OpenMetrics text, which Prometheus scrapes natively).
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MintLabels {
    project: String,
    template: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    project: String,
    template: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    outcome: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    kid: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KidLabels {
    kid: String,
}

/// The service's instruments and the registry that exposes them.
pub(crate) struct Metrics {
    registry: Registry,
    /// One scrape at a time: the state gauges are cleared and set again before encoding.
    scrape: std::sync::Mutex<()>,
    mints: Family<MintLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    mint_seconds: Histogram,
    api_keys_created: Family<ProjectLabels, Counter>,
    api_key_refusals: Family<CodeLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    config_version: Gauge,
    key_age: Family<KeyLabels, Gauge>,
    pending_key: Family<KidLabels, Gauge>,
    revocation_age: Gauge,
    revocation_entries: Gauge,
    rate_limited: Counter,
    open_connections: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("keysmith");
        let mints = Family::<MintLabels, Counter>::default();
        registry.register("mints", "Keys minted, by project and template", mints.clone());
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "mint_refusals",
            "Mint requests refused, by project and template (_unknown when the config has no such id) and problem code",
            refusals.clone(),
        );
        // 100 µs to about 1.6 s: a mint is one signature; a GeoIP lookup or a slow audit disk shows.
        let mint_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 15));
        registry.register_with_unit(
            "mint_duration",
            "Time to mint a key (the issuer's work, after the request was read)",
            Unit::Seconds,
            mint_seconds.clone(),
        );
        let api_keys_created = Family::<ProjectLabels, Counter>::default();
        registry.register(
            "api_keys_created",
            "Permanent API keys created over HTTP, by project",
            api_keys_created.clone(),
        );
        let api_key_refusals = Family::<CodeLabels, Counter>::default();
        registry.register("api_key_refusals", "API-key creations refused, by problem code", api_key_refusals.clone());
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Config and key reloads by outcome (reloaded, rejected) and rejection code",
            reloads.clone(),
        );
        let config_version = Gauge::default();
        registry.register("config_version", "The version of the running config", config_version.clone());
        let key_age = Family::<KeyLabels, Gauge>::default();
        registry.register_with_unit(
            "key_age",
            "Time since each published key was first published (role: signing or published)",
            Unit::Seconds,
            key_age.clone(),
        );
        let pending_key = Family::<KidLabels, Gauge>::default();
        registry.register_with_unit(
            "pending_signing_key_due",
            "Time until the key the record makes active may sign (it waits out jwks_max_age); absent when none waits",
            Unit::Seconds,
            pending_key.clone(),
        );
        let revocation_age = Gauge::default();
        registry.register_with_unit(
            "revocation_list_age",
            "Time since the served revocation list was signed; 0 until it was first requested",
            Unit::Seconds,
            revocation_age.clone(),
        );
        let revocation_entries = Gauge::default();
        registry.register(
            "revocation_list_entries",
            "Entries of the served revocation list (API keys deactivated or expired, deactivated templates)",
            revocation_entries.clone(),
        );
        let rate_limited = Counter::default();
        registry.register("rate_limited", "Requests refused by the per-address rate limit", rate_limited.clone());
        let open_connections = Gauge::default();
        registry.register("open_connections", "HTTP connections open on the main listener", open_connections.clone());
        Self {
            registry,
            scrape: std::sync::Mutex::new(()),
            mints,
            refusals,
            mint_seconds,
            api_keys_created,
            api_key_refusals,
            reloads,
            config_version,
            key_age,
            pending_key,
            revocation_age,
            revocation_entries,
            rate_limited,
            open_connections,
        }
    }

    /// A key minted for `project`/`template` (ids of the config that minted it), in `seconds`.
    pub(crate) fn minted(&self, project: &str, template: &str, seconds: f64) {
        self.mints.get_or_create(&MintLabels { project: project.to_owned(), template: template.to_owned() }).inc();
        self.mint_seconds.observe(seconds);
    }

    /// A mint refused with `code`; `project` and `template` are counted as themselves only
    /// when `config` declares them.
    pub(crate) fn mint_refused(&self, config: &Config, project: &str, template: &str, code: &'static str) {
        let (project, template) = known_ids(config, project, template);
        self.refusals.get_or_create(&RefusalLabels { project, template, code: code.to_owned() }).inc();
    }

    /// A permanent key created in `project` (a project of the config).
    pub(crate) fn api_key_created(&self, project: &str) {
        self.api_keys_created.get_or_create(&ProjectLabels { project: project.to_owned() }).inc();
    }

    /// A key creation refused with `code`.
    pub(crate) fn api_key_refused(&self, code: &'static str) {
        self.api_key_refusals.get_or_create(&CodeLabels { code: code.to_owned() }).inc();
    }

    /// A reload that swapped in a new issuer.
    pub(crate) fn reloaded(&self) {
        self.reloads.get_or_create(&ReloadLabels { outcome: "reloaded".to_owned(), code: String::new() }).inc();
    }

    /// A reload refused with `code`.
    pub(crate) fn reload_rejected(&self, code: &'static str) {
        self.reloads.get_or_create(&ReloadLabels { outcome: "rejected".to_owned(), code: code.to_owned() }).inc();
    }

    /// A request refused by the rate limit.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// A connection accepted on the main listener; the guard counts it closed when dropped.
    pub(crate) fn connection_opened(&self) -> ConnectionGuard {
        self.open_connections.inc();
        ConnectionGuard(self.open_connections.clone())
    }

    /// The exposition, with the gauges that describe state read from `handle` now.
    pub(crate) fn render(&self, handle: &IssuerHandle, now: SystemTime) -> Result<String, std::fmt::Error> {
        let (live, state) = {
            let state = handle.state();
            (handle.serving(), state.clone())
        };
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.observe_state(&live, &state, now);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn observe_state(&self, live: &Serving, state: &crate::server::source::ReloadState, now: SystemTime) {
        let issuer = &live.issuer;
        let config = issuer.config();
        self.config_version.set(i64::try_from(config.version).unwrap_or(i64::MAX));
        let now_utc = chrono::DateTime::<chrono::Utc>::from(now);
        let signing = issuer.keyring().signing().kid();
        // Rebuilt on every scrape: a key that left the JWKS leaves the exposition.
        self.key_age.clear();
        for key in issuer.keyring().published() {
            let kid = crate::token::jwk::thumbprint(key);
            let since = state.first_served.get(&kid).copied().or_else(|| issuer.keyring().published_at(&kid));
            let Some(since) = since else { continue };
            let role = if kid == signing { "signing" } else { "published" };
            let age = (now_utc - since).num_seconds().max(0);
            self.key_age.get_or_create(&KeyLabels { kid, role: role.to_owned() }).set(age);
        }
        self.pending_key.clear();
        if let Some((kid, due)) = &state.pending_signer {
            let wait = (*due - now_utc).num_seconds().max(0);
            self.pending_key.get_or_create(&KidLabels { kid: kid.clone() }).set(wait);
        }
        let secs = crate::verify::unix_seconds(now);
        let signed_at = live.revocations_signed_at();
        // What the served list names: it was signed from this config at `signed_at` (a reload
        // drops it), so the same selection counts it; before the first request, the list that
        // would be signed now.
        let at = signed_at.unwrap_or(secs);
        let entries = config.api_keys_refused_at(at).len() + config.revoked_templates().len();
        self.revocation_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        if let Some(iat) = signed_at {
            self.revocation_age.set(i64::try_from(secs.saturating_sub(iat)).unwrap_or(i64::MAX));
        }
    }
}

/// Counts an open connection until dropped.
pub(crate) struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The labels of a project and template as the config knows them: themselves when declared,
/// [`UNKNOWN`] otherwise.
fn known_ids(config: &Config, project: &str, template: &str) -> (String, String) {
    if !config.projects.contains_key(project) {
        return (UNKNOWN.to_owned(), UNKNOWN.to_owned());
    }
    let template = if config.template(project, template).is_some() { template } else { UNKNOWN };
    (project.to_owned(), template.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_the_config_does_not_declare_share_one_series() {
        let config = crate::config::Config::from_toml(
            "version = 1\nissuer = \"i\"\n[projects.demo]\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let metrics = Metrics::new();
        for (project, template) in [("nope", "x"), ("other", "y"), ("demo", "z"), ("demo", "w")] {
            metrics.mint_refused(&config, project, template, "unknown_project");
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        let series: Vec<&str> = text.lines().filter(|l| l.starts_with("keysmith_mint_refusals_total{")).collect();
        assert_eq!(series.len(), 2, "one series for unknown projects, one for demo's unknown templates: {series:?}");
        assert!(text.contains(r#"project="_unknown",template="_unknown",code="unknown_project"} 2"#), "{text}");
    }
}
