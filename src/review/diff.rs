//! What a config edit changes about access: each rule compares one setting of two configs
//! and reports effective changes, flagging those that grant more than before.

use crate::config::{Access, ApiKeyMeta, Config, Template};
use crate::policy::dir_scope::ScopeSet;
use crate::policy::ip::IpRules;
use crate::review::kind::ChangeKind;
use serde::Serialize;
use std::collections::BTreeSet;

/// One effective change of access between two configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed: `template upload-widget`, `api key ak_…`, `server`, `issuer`.
    pub subject: String,
    /// A stable kind, such as `permissions_gained` or `upload_scope_widened`.
    pub kind: ChangeKind,
    /// The change in words, with before and after.
    pub detail: String,
    /// Whether it grants more than before (flagged for review).
    pub widening: bool,
}

/// How one set relates to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Same,
    Widened,
    Narrowed,
    Changed,
}

fn direction(old_covers_new: bool, new_covers_old: bool) -> Direction {
    match (old_covers_new, new_covers_old) {
        (true, true) => Direction::Same,
        (false, true) => Direction::Widened,
        (true, false) => Direction::Narrowed,
        (false, false) => Direction::Changed,
    }
}

struct Diff {
    changes: Vec<Change>,
}

impl Diff {
    fn push(&mut self, subject: &str, kind: ChangeKind, detail: String, widening: bool) {
        self.changes.push(Change { subject: subject.to_owned(), kind, detail, widening });
    }

    /// Records a set comparison as `<name>_widened|narrowed|changed`.
    fn set(&mut self, subject: &str, name: &'static [ChangeKind; 3], dir: Direction, before: String, after: String) {
        let (kind, widening) = match dir {
            Direction::Same => return,
            Direction::Widened => (name[0], true),
            Direction::Narrowed => (name[1], false),
            // Neither contains the other: something new is allowed.
            Direction::Changed => (name[2], true),
        };
        self.push(subject, kind, format!("{before} -> {after}"), widening);
    }

    /// Records a change of free text (descriptions, dates for people): reported, not widening.
    fn text(&mut self, subject: &str, kind: ChangeKind, before: &str, after: &str) {
        if before != after {
            self.push(subject, kind, format!("{before:?} -> {after:?}"), false);
        }
    }

    /// Records entries gained (widening) and lost in a list of grants.
    fn lists(&mut self, subject: &str, kinds: [ChangeKind; 2], before: &[String], after: &[String]) {
        let gained: Vec<&str> = after.iter().filter(|p| !before.contains(p)).map(String::as_str).collect();
        let lost: Vec<&str> = before.iter().filter(|p| !after.contains(p)).map(String::as_str).collect();
        if !gained.is_empty() {
            self.push(subject, kinds[0], gained.join(" "), true);
        }
        if !lost.is_empty() {
            self.push(subject, kinds[1], lost.join(" "), false);
        }
    }
}

/// Compares one setting of two configs, or of two entries with the same id (`subject` names
/// the entry).
type Compare<T> = fn(&mut Diff, &str, &T, &T);

/// A diff rule: the settings it covers, as paths of the JSON Schema walk (`server.listen`,
/// `templates[].upload.dir_scope`, `projects.*` for an entry of a map), and how it compares
/// them. Every setting has one; `every_schema_setting_has_a_diff_rule` walks the schema to
/// hold that true as settings are added.
struct Rule<T: 'static> {
    paths: &'static [&'static str],
    compare: Compare<T>,
}

/// Whole-config rules, in the order their changes are listed.
const CONFIG_RULES: &[Rule<Config>] = &[
    // `keysmith check` requires it to increase and shows both; it changes no access.
    Rule { paths: &["version"], compare: |_, _, _, _| {} },
    Rule { paths: &["issuer"], compare: issuer },
    Rule { paths: &["catalog.permissions"], compare: catalog_permissions },
    Rule { paths: &["catalog.upload_scoped", "catalog.list_scoped"], compare: scope_rules },
    Rule { paths: &["catalog.manage_permission"], compare: manage_permission },
    Rule { paths: &["server.listen"], compare: listen },
    Rule { paths: &["server.metrics_listen"], compare: metrics_listen },
    Rule { paths: &["server.trusted_proxies"], compare: trusted_proxies },
    Rule { paths: &["server.forwarded_header"], compare: forwarded_header },
    Rule { paths: &["server.cors_origins"], compare: cors_origins },
    Rule { paths: &["server.rate_limit_per_minute", "server.rate_limit_burst"], compare: rate_limit },
    Rule { paths: &["server.rate_limit_store"], compare: rate_limit_store },
    Rule { paths: &["server.geoip_database"], compare: geoip_database },
    Rule { paths: &["server.audit_log"], compare: audit_log },
    Rule { paths: &["server.allowed_hosts"], compare: server_allowed_hosts },
    Rule { paths: &["jwks_max_age"], compare: jwks_max_age },
    Rule { paths: &["jws_alg"], compare: jws_alg },
    Rule { paths: &["jwks_alg_member"], compare: jwks_alg_member },
    Rule { paths: &["revocations_max_age"], compare: revocations_max_age },
    Rule { paths: &["projects.*", "projects.*.description"], compare: projects },
    // Entries are matched by id; the rules below compare the entries kept.
    Rule { paths: &["templates[]", "templates[].id"], compare: templates },
    Rule { paths: &["api_keys[]", "api_keys[].id"], compare: api_keys },
];

/// Rules for a template kept under the same id.
const TEMPLATE_RULES: &[Rule<Template>] = &[
    Rule { paths: &["templates[].active"], compare: template_active },
    Rule { paths: &["templates[].project"], compare: template_project },
    Rule { paths: &["templates[].access"], compare: template_access },
    Rule { paths: &["templates[].permissions"], compare: template_permissions },
    Rule { paths: &["templates[].upload.dir_scope"], compare: upload_scope },
    Rule { paths: &["templates[].listing.directory_scope"], compare: listing_scope },
    Rule { paths: &["templates[].restrict.whitelist_ip_ranges"], compare: ip_ranges },
    Rule { paths: &["templates[].restrict.whitelist_countries"], compare: countries },
    Rule { paths: &["templates[].expiration_duration"], compare: expiration },
    Rule { paths: &["templates[].upload.limit_per_min", "templates[].upload.limit_per_source_ip"], compare: limits },
    Rule { paths: &["templates[].upload.max_file_size"], compare: max_file_size },
    Rule { paths: &["templates[].upload.content_types"], compare: content_types },
    Rule {
        paths: &["templates[].revoke_issued_before"],
        compare: |d, s, o, n| {
            cut_off(
                d,
                s,
                [ChangeKind::TemplateCutOffWidened, ChangeKind::TemplateCutOffNarrowed],
                o.revoke_issued_before,
                n.revoke_issued_before,
            );
        },
    },
    Rule {
        paths: &["templates[].description"],
        compare: |d, s, o, n| d.text(s, ChangeKind::TemplateDescriptionChanged, &o.description, &n.description),
    },
    Rule {
        paths: &["templates[].created_at"],
        compare: |d, s, o, n| {
            d.text(s, ChangeKind::TemplateCreatedAtChanged, &show(&o.created_at), &show(&n.created_at))
        },
    },
];

/// Rules for an API key record kept under the same id.
const API_KEY_RULES: &[Rule<ApiKeyMeta>] = &[
    Rule { paths: &["api_keys[].active"], compare: api_key_active },
    Rule { paths: &["api_keys[].permissions"], compare: api_key_permissions },
    Rule { paths: &["api_keys[].projects"], compare: api_key_projects },
    Rule { paths: &["api_keys[].expires_at"], compare: api_key_expiry },
    Rule {
        paths: &["api_keys[].revoke_issued_before"],
        compare: |d, s, o, n| {
            cut_off(
                d,
                s,
                [ChangeKind::ApiKeyCutOffWidened, ChangeKind::ApiKeyCutOffNarrowed],
                o.revoke_issued_before,
                n.revoke_issued_before,
            );
        },
    },
    Rule {
        paths: &["api_keys[].description"],
        compare: |d, s, o, n| d.text(s, ChangeKind::ApiKeyDescriptionChanged, &o.description, &n.description),
    },
    Rule {
        paths: &["api_keys[].created_at"],
        compare: |d, s, o, n| d.text(s, ChangeKind::ApiKeyCreatedAtChanged, &show(&o.created_at), &show(&n.created_at)),
    },
    Rule {
        paths: &["api_keys[].kid"],
        compare: |d, s, o, n| d.text(s, ChangeKind::ApiKeyKidChanged, &show(&o.kid), &show(&n.kid)),
    },
];

/// Every config setting a diff rule covers, as a path of the JSON Schema walk
/// (`server.listen`, `templates[].upload.dir_scope`, `projects.*`).
pub fn rule_paths() -> Vec<&'static str> {
    let config = CONFIG_RULES.iter().flat_map(|r| r.paths);
    let templates = TEMPLATE_RULES.iter().flat_map(|r| r.paths);
    let api_keys = API_KEY_RULES.iter().flat_map(|r| r.paths);
    config.chain(templates).chain(api_keys).copied().collect()
}

/// The effective access changes from `old` to `new`, in a stable order: every setting that
/// differs is reported, and those that can grant more are marked widening.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut d = Diff { changes: Vec::new() };
    for rule in CONFIG_RULES {
        (rule.compare)(&mut d, "", old, new);
    }
    d.changes
}

fn show(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "unset".into())
}

fn issuer(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.issuer != new.issuer {
        d.push(
            "issuer",
            ChangeKind::IssuerChanged,
            format!("{:?} -> {:?}: every key issued so far stops verifying", old.issuer, new.issuer),
            false,
        );
    }
}

fn catalog_permissions(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.catalog.permissions() != new.catalog.permissions() {
        d.push("catalog", ChangeKind::CatalogChanged, "the permission catalogue changed".into(), true);
    }
}

/// Moving a permission to another scope kind changes which directory set its checks use.
/// It widens access when any template holding the permission gains a directory (a move to
/// "no directory" always widens: it drops the check for every template, present or future).
fn scope_rules(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    use crate::policy::scope_rules::ScopeKind;
    let everything = ScopeSet::everything();
    let effective = |kind: Option<ScopeKind>, t: &Template| -> ScopeSet {
        match kind {
            Some(ScopeKind::Upload) => t.upload_dirs.clone(),
            Some(ScopeKind::List) => t.list_dirs.clone(),
            Some(ScopeKind::None) | None => everything.clone(),
        }
    };
    for p in new.catalog.permissions() {
        let (before, after) = (old.catalog.rules().kind(p), new.catalog.rules().kind(p));
        if before.is_some() && before != after {
            let widening = after == Some(ScopeKind::None)
                || new
                    .templates()
                    .iter()
                    .filter(|t| t.permissions.iter().any(|q| q == p))
                    .any(|t| !effective(before, t).covers(&effective(after, t)));
            d.push(
                "catalog",
                ChangeKind::ScopeRuleChanged,
                format!("{p}: {} -> {}", kind(before), kind(after)),
                widening,
            );
        }
    }
}

fn manage_permission(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.catalog.manage_permission() != new.catalog.manage_permission() {
        let widening = new.catalog.manage_permission().is_some();
        let show = |m: Option<&str>| m.map_or_else(|| "off".to_owned(), str::to_owned);
        d.push(
            "catalog",
            ChangeKind::ManagePermissionChanged,
            format!("{} -> {}", show(old.catalog.manage_permission()), show(new.catalog.manage_permission())),
            widening,
        );
    }
}

/// Moving the listener to another address that is not loopback can expose the service to
/// more networks.
fn listen(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (old.server.listen, new.server.listen);
    if before == after {
        return;
    }
    let widening = !after.ip().is_loopback() && after.ip() != before.ip();
    let note = if widening { " (reachable beyond this host)" } else { "" };
    d.push("server", ChangeKind::ListenChanged, format!("{before} -> {after}{note}"), widening);
}

/// Metrics name the projects, templates and key ids in use and how busy the service is. Moving
/// them onto the main listener, or to an address that is not loopback, shows that to more
/// networks.
fn metrics_listen(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (old.server.metrics_listen, new.server.metrics_listen);
    if before == after {
        return;
    }
    let widening = match (before, after) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(b), Some(a)) => !a.ip().is_loopback() && a.ip() != b.ip(),
    };
    let show = |a: Option<std::net::SocketAddr>| a.map_or_else(|| "the main listener".to_owned(), |a| a.to_string());
    let note = if widening { " (reachable by more clients)" } else { "" };
    d.push("server", ChangeKind::MetricsListenChanged, format!("{} -> {}{note}", show(before), show(after)), widening);
}

fn trusted_proxies(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (&old.server.trusted_proxies, &new.server.trusted_proxies);
    d.set(
        "server",
        &[ChangeKind::TrustedProxiesWidened, ChangeKind::TrustedProxiesNarrowed, ChangeKind::TrustedProxiesChanged],
        direction(before.covers(after), after.covers(before)),
        fmt_ips(before),
        fmt_ips(after),
    );
}

/// Believing another header lets clients behind a proxy that passes that header through choose
/// their own address.
fn forwarded_header(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (old.server.forwarded_header, new.server.forwarded_header);
    if before != after {
        d.push(
            "server",
            ChangeKind::ForwardedHeaderChanged,
            format!("{} -> {}: check what each trusted proxy does with it", before.name(), after.name()),
            true,
        );
    }
}

fn cors_origins(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (old_origins, new_origins): (BTreeSet<_>, BTreeSet<_>) =
        (old.server.cors_origins.iter().collect(), new.server.cors_origins.iter().collect());
    for origin in new_origins.difference(&old_origins) {
        d.push("server", ChangeKind::CorsOriginAdded, (*origin).clone(), true);
    }
    for origin in old_origins.difference(&new_origins) {
        d.push("server", ChangeKind::CorsOriginRemoved, (*origin).clone(), false);
    }
}

/// `None` is no limit, the highest of all.
fn rate_limit(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (old.server.rate_limit, new.server.rate_limit);
    let per_minute = |r: Option<crate::config::RateLimit>| r.map(|r| r.per_minute.get());
    let burst = |r: Option<crate::config::RateLimit>| r.map(|r| r.burst.get());
    let mut compare = |name: &str, a: Option<u32>, b: Option<u32>| {
        let raised = match (a, b) {
            _ if a == b => return,
            (Some(a), Some(b)) => b > a,
            (Some(_), None) => true,
            (None, Some(_) | None) => false,
        };
        let show = |n: Option<u32>| n.map_or_else(|| "off".to_owned(), |n| n.to_string());
        let kind = if raised { ChangeKind::RateLimitRaised } else { ChangeKind::RateLimitLowered };
        d.push("server", kind, format!("{name}: {} -> {}", show(a), show(b)), raised);
    };
    compare("rate_limit_per_minute", per_minute(before), per_minute(after));
    // A burst means nothing while the limit is off.
    if before.is_some() && after.is_some() {
        compare("rate_limit_burst", burst(before), burst(after));
    }
}

/// Leaving a shared store (or switching stores) gives every replica a fresh, separate budget:
/// N replicas then allow N times the rate. The URL (which may hold a password) is not shown.
fn rate_limit_store(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (&old.server.rate_limit_store, &new.server.rate_limit_store);
    if before == after {
        return;
    }
    let show = |s: &Option<String>| if s.is_some() { "redis (shared)" } else { "memory (per replica)" };
    let widening = after.is_none() || before.is_some();
    d.push("server", ChangeKind::RateLimitStoreChanged, format!("{} -> {}", show(before), show(after)), widening);
}

/// The database decides who passes a country restriction: another one may let others in.
fn geoip_database(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (&old.server.geoip_database, &new.server.geoip_database);
    if before != after {
        let show =
            |p: &Option<std::path::PathBuf>| p.as_ref().map_or_else(|| "unset".into(), |p| p.display().to_string());
        d.push(
            "server",
            ChangeKind::GeoipDatabaseChanged,
            format!("{} -> {}", show(before), show(after)),
            before.is_some(),
        );
    }
}

/// Removing or moving the audit log loses the trail of keys created over HTTP.
fn audit_log(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    let (before, after) = (&old.server.audit_log, &new.server.audit_log);
    let (kind, widening) = match (before, after) {
        (a, b) if a == b => return,
        (None, Some(_)) => (ChangeKind::AuditLogAdded, false),
        (Some(_), None) => (ChangeKind::AuditLogRemoved, true),
        (Some(_), Some(_)) | (None, None) => (ChangeKind::AuditLogChanged, true),
    };
    let show = |p: &Option<std::path::PathBuf>| p.as_ref().map_or_else(|| "none".into(), |p| p.display().to_string());
    d.push("server", kind, format!("{} -> {}", show(before), show(after)), widening);
}

/// The rule for `server.allowed_hosts` (unset: any `Host`): setting it or removing hosts
/// narrows; adding hosts or removing the setting widens. Host names compare without case.
fn server_allowed_hosts(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    // An empty list is the unset setting: any `Host` is served.
    fn hosts(config: &Config) -> Option<&[String]> {
        Some(config.server.allowed_hosts.as_slice()).filter(|h| !h.is_empty())
    }
    allowed_hosts(d, hosts(old), hosts(new));
}

fn allowed_hosts(d: &mut Diff, old: Option<&[String]>, new: Option<&[String]>) {
    let covers = |a: Option<&[String]>, b: Option<&[String]>| match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.iter().all(|h| a.iter().any(|g| g.eq_ignore_ascii_case(h))),
    };
    let show = |h: Option<&[String]>| h.map_or_else(|| "any host".to_owned(), |h| format!("[{}]", h.join(", ")));
    d.set(
        "server",
        &[ChangeKind::AllowedHostsWidened, ChangeKind::AllowedHostsNarrowed, ChangeKind::AllowedHostsChanged],
        direction(covers(old, new), covers(new, old)),
        show(old),
        show(new),
    );
}

/// Verifiers keep trusting a retired signing key for as long as they may cache the JWKS.
fn jwks_max_age(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.jwks_max_age != new.jwks_max_age {
        let longer = new.jwks_max_age > old.jwks_max_age;
        d.push(
            "jwks",
            ChangeKind::JwksMaxAgeChanged,
            format!("{} s -> {} s", old.jwks_max_age, new.jwks_max_age),
            longer,
        );
    }
}

/// A verifier that allows only the old name refuses every key signed under the new one: no
/// access is widened, but the change must wait until every verifier accepts the new name.
fn jws_alg(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.jws_alg != new.jws_alg {
        d.push(
            "tokens",
            ChangeKind::JwsAlgChanged,
            format!(
                "alg {} -> {}: every verifier must accept {} first (docs/token.md)",
                old.jws_alg.as_str(),
                new.jws_alg.as_str(),
                new.jws_alg.as_str()
            ),
            false,
        );
    }
}

/// Verifiers that select keys by `alg` match a key without it under either name.
fn jwks_alg_member(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.jwks_alg_member != new.jwks_alg_member {
        let show = |on: bool| if on { "with alg" } else { "without alg" };
        d.push(
            "jwks",
            ChangeKind::JwksAlgMemberChanged,
            format!("JWKS keys {} -> {}", show(old.jwks_alg_member), show(new.jwks_alg_member)),
            false,
        );
    }
}

fn revocations_max_age(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    if old.revocations_max_age != new.revocations_max_age {
        let longer = new.revocations_max_age > old.revocations_max_age;
        d.push(
            "revocations",
            ChangeKind::RevocationsMaxAgeChanged,
            format!("{} s -> {} s", old.revocations_max_age, new.revocations_max_age),
            longer,
        );
    }
}

/// A project alone grants nothing: its templates do, and they are compared on their own.
fn projects(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    for id in old.projects.keys().filter(|id| !new.projects.contains_key(*id)) {
        d.push(&format!("project {id}"), ChangeKind::ProjectRemoved, String::new(), false);
    }
    for (id, p) in &new.projects {
        match old.projects.get(id) {
            None => d.push(&format!("project {id}"), ChangeKind::ProjectAdded, p.description.clone(), false),
            Some(o) => {
                d.text(&format!("project {id}"), ChangeKind::ProjectDescriptionChanged, &o.description, &p.description)
            }
        }
    }
}

fn templates(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    for t in old.templates() {
        if !new.templates().iter().any(|n| n.id == t.id) {
            // Removing a deactivated template takes it off the revocation list: keys minted
            // from it before it was deactivated verify again until they expire.
            if t.active {
                d.push(
                    &format!("template {}", t.id),
                    ChangeKind::TemplateRemoved,
                    format!("project {}", t.project),
                    false,
                );
            } else {
                d.push(
                    &format!("template {}", t.id),
                    ChangeKind::TemplateUnrevoked,
                    format!(
                        "a deactivated template (project {}) was removed from the config, so its unexpired keys are no longer revoked",
                        t.project
                    ),
                    true,
                );
            }
        }
    }
    for t in new.templates() {
        let subject = format!("template {}", t.id);
        match old.templates().iter().find(|o| o.id == t.id) {
            None => {
                let state = if t.active { "active" } else { "inactive" };
                d.push(
                    &subject,
                    ChangeKind::TemplateAdded,
                    format!(
                        "{state}, project {}, {} access, permissions {}",
                        t.project,
                        access(t.access),
                        t.permissions.join(" ")
                    ),
                    t.active,
                );
            }
            Some(o) => {
                for rule in TEMPLATE_RULES {
                    (rule.compare)(d, &subject, o, t);
                }
            }
        }
    }
}

fn api_keys(d: &mut Diff, _: &str, old: &Config, new: &Config) {
    for k in old.api_keys() {
        if !new.api_keys().iter().any(|n| n.id == k.id) {
            // Removing the metadata of a deactivated key takes it off the revocation list.
            if k.active {
                d.push(
                    &format!("api key {}", k.id),
                    ChangeKind::ApiKeyRemoved,
                    "record removed: the key, and every key created beneath it, is now refused".into(),
                    false,
                );
            } else {
                d.push(
                    &format!("api key {}", k.id),
                    ChangeKind::ApiKeyUnrevoked,
                    "a deactivated key was removed from the config, so it is no longer revoked: a key created \
                     over HTTP beneath an active key verifies again"
                        .into(),
                    true,
                );
            }
        }
    }
    for k in new.api_keys() {
        let subject = format!("api key {}", k.id);
        match old.api_keys().iter().find(|o| o.id == k.id) {
            None => d.push(
                &subject,
                ChangeKind::ApiKeyAdded,
                format!("{} ({})", k.description, k.permissions.join(" ")),
                k.active,
            ),
            Some(o) => {
                for rule in API_KEY_RULES {
                    (rule.compare)(d, &subject, o, k);
                }
            }
        }
    }
}

// The per-entry rules (one `[[templates]]` or `[[api_keys]]` entry against its previous
// version) and the formatting helpers.
#[path = "entry_rules.rs"]
mod entry_rules;
use entry_rules::*;

// The tests exercise single rules, so they live beneath the rules they test.
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
