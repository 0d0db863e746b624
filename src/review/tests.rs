//! Unit tests of the config diff and the lints.

use super::*;
use crate::review::lint::lint;
use std::path::Path;

const OLD: &str = r#"
version = 1
issuer = "i"
[server]
geoip_database = "g.mmdb"
audit_log = "audit.jsonl"
trusted_proxies = ["10.0.0.0/8"]
cors_origins = ["http://a.test"]
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
expiration_duration = 600
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 10
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
whitelist_countries = ["FR", "DE"]
[templates.listing]
directory_scope = ["/a/*", "/b/*"]
[[templates]]
id = "gone"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "sleeping"
project = "demo"
active = false
permissions = ["OBJECTS_LIST"]
[[api_keys]]
id = "ak_live"
description = "live"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
[[api_keys]]
id = "ak_dead"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
active = false
"#;

fn load(text: &str) -> Config {
    Config::from_toml(text, Path::new(".")).unwrap()
}

fn kinds(changes: &[Change]) -> Vec<(&str, &str, bool)> {
    changes.iter().map(|c| (c.subject.as_str(), c.kind.as_str(), c.widening)).collect()
}

#[test]
fn no_change_no_diff() {
    assert!(diff(&load(OLD), &load(&OLD.replace("version = 1", "version = 2"))).is_empty());
}

#[test]
fn every_kind_of_template_change() {
    let new = OLD
        .replace("version = 1", "version = 2")
        .replace(r#"permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]"#, r#"permissions = ["FILE_UPLOAD", "FILE_DELETE"]"#)
        .replace("expiration_duration = 600", "expiration_duration = 60")
        .replace(r#"dir_scope = "/uploads/*""#, r#"dir_scope = "/*""#)
        .replace("limit_per_min = 10", "limit_per_min = 5")
        .replace(r#"whitelist_ip_ranges = ["10.0.0.0/8"]"#, r#"whitelist_ip_ranges = ["10.1.0.0/16"]"#)
        .replace(r#"whitelist_countries = ["FR", "DE"]"#, r#"whitelist_countries = ["FR", "IT"]"#)
        .replace(r#"directory_scope = ["/a/*", "/b/*"]"#, r#"directory_scope = ["/a/x"]"#)
        .replace(
            "[[templates]]\nid = \"gone\"\nproject = \"demo\"\npermissions = [\"OBJECTS_LIST\"]\n",
            "[[templates]]\nid = \"fresh\"\nproject = \"demo\"\npermissions = [\"OBJECTS_LIST\"]\n",
        )
        .replace(
            "id = \"sleeping\"\nproject = \"demo\"\nactive = false",
            "id = \"sleeping\"\nproject = \"demo\"\naccess = \"api_key\"",
        );
    let changes = diff(&load(OLD), &load(&new));
    let w = "template widget";
    assert_eq!(
        kinds(&changes),
        [
            ("template gone", "template_removed", false),
            (w, "permissions_gained", true),
            (w, "permissions_lost", false),
            (w, "upload_scope_widened", true),
            (w, "listing_scope_narrowed", false),
            (w, "ip_ranges_narrowed", false),
            (w, "countries_changed", true),
            (w, "expiration_shorter", false),
            (w, "limit_lowered", false),
            ("template fresh", "template_added", true),
            ("template sleeping", "template_activated", true),
            ("template sleeping", "access_changed", false),
        ]
    );
    let gained = changes.iter().find(|c| c.kind == "permissions_gained").unwrap();
    assert_eq!(gained.detail, "FILE_DELETE");
    let scope = changes.iter().find(|c| c.kind == "upload_scope_widened").unwrap();
    assert_eq!(scope.detail, "[/uploads/*] -> [/*]");
}

#[test]
fn widening_the_other_way() {
    let new = OLD
        .replace("expiration_duration = 600", "expiration_duration = 6000")
        .replace("limit_per_min = 10\n", "")
        .replace(r#"whitelist_ip_ranges = ["10.0.0.0/8"]"#, r#"whitelist_ip_ranges = ["0.0.0.0/0"]"#)
        .replace("whitelist_countries = [\"FR\", \"DE\"]\n", "")
        .replace(r#"dir_scope = "/uploads/*""#, r#"dir_scope = "/other/*""#)
        .replace(r#"trusted_proxies = ["10.0.0.0/8"]"#, r#"trusted_proxies = ["0.0.0.0/0"]"#)
        .replace(r#"cors_origins = ["http://a.test"]"#, r#"cors_origins = ["http://b.test"]"#);
    let changes = diff(&load(OLD), &load(&new));
    let k = kinds(&changes);
    for want in [
        ("server", "trusted_proxies_widened", true),
        ("server", "cors_origin_added", true),
        ("server", "cors_origin_removed", false),
        ("template widget", "upload_scope_changed", true),
        ("template widget", "ip_ranges_widened", true),
        ("template widget", "countries_widened", true),
        ("template widget", "expiration_longer", true),
        ("template widget", "limit_raised", true),
    ] {
        assert!(k.contains(&want), "missing {want:?} in {k:?}");
    }
}

#[test]
fn api_key_changes() {
    let new = OLD
        .replace("id = \"ak_live\"\ndescription = \"live\"", "id = \"ak_live\"\ndescription = \"live\"\nactive = false")
        .replace(
            "[[api_keys]]\nid = \"ak_dead\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = false\n",
            "",
        );
    assert_eq!(
        kinds(&diff(&load(OLD), &load(&new))),
        [("api key ak_dead", "api_key_unrevoked", true), ("api key ak_live", "api_key_deactivated", false)]
    );
    let reactivated = OLD.replace(
        "id = \"ak_dead\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nactive = false",
        "id = \"ak_dead\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]",
    );
    assert_eq!(kinds(&diff(&load(OLD), &load(&reactivated))), [("api key ak_dead", "api_key_activated", true)]);
}

#[test]
fn remaining_kinds() {
    let new = OLD
        .replace("[projects.demo]", "[projects.demo]\n[projects.shop]")
        .replace("id = \"gone\"\nproject = \"demo\"", "id = \"gone\"\nproject = \"shop\"")
        .replace("[[templates]]\nid = \"widget\"\nproject = \"demo\"", "[[templates]]\nid = \"widget\"\nproject = \"demo\"\nactive = false")
        .replace(r#"trusted_proxies = ["10.0.0.0/8"]"#, r#"trusted_proxies = ["192.168.0.0/16"]"#)
        .replace("id = \"ak_live\"\ndescription = \"live\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]", "id = \"ak_live\"\ndescription = \"live\"\npermissions = [\"FILE_UPLOAD\", \"FILE_DELETE\"]\nprojects = [\"demo\", \"shop\"]")
        + "[[api_keys]]\nid = \"ak_new\"\ndescription = \"new\"\npermissions = [\"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n";
    let changes = diff(&load(OLD), &load(&new));
    let k = kinds(&changes);
    for want in [
        ("server", "trusted_proxies_changed", true),
        ("template widget", "template_deactivated", false),
        ("template gone", "template_project_changed", true),
        ("api key ak_live", "api_key_permissions_gained", true),
        ("api key ak_live", "api_key_projects_added", true),
        ("api key ak_new", "api_key_added", true),
    ] {
        assert!(k.contains(&want), "missing {want:?} in {k:?}");
    }
    let removed = OLD.replace("[[api_keys]]\nid = \"ak_live\"\ndescription = \"live\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n", "");
    assert_eq!(kinds(&diff(&load(OLD), &load(&removed))), [("api key ak_live", "api_key_removed", false)]);
}

#[test]
fn catalogue_changes() {
    let custom = |upload: &str, manage: &str| {
        format!(
            "version = 1\nissuer = \"i\"\n[catalog]\npermissions = [\"asset.upload\", \"asset.read\", \"admin\"]\nupload_scoped = [{upload}]\n{manage}\n[projects.p]\n"
        )
    };
    let old = load(&custom("\"asset.upload\"", ""));
    let new = load(&custom("", "manage_permission = \"admin\""));
    assert_eq!(
        kinds(&diff(&old, &new)),
        [("catalog", "scope_rule_changed", true), ("catalog", "manage_permission_changed", true)]
    );
    let text = &diff(&old, &new)[0].detail;
    assert_eq!(text, "asset.upload: upload scope -> no directory");
}

#[test]
fn issuer_and_revocations() {
    let new = OLD.replace("issuer = \"i\"", "issuer = \"j\"\nrevocations_max_age = 900");
    assert_eq!(
        kinds(&diff(&load(OLD), &load(&new))),
        [("issuer", "issuer_changed", false), ("revocations", "revocations_max_age_changed", true)]
    );
}

/// Each edit alone; `(from, to, kind, widening)`.
fn single_edits(edits: &[(&str, &str, &str, bool)]) {
    for &(from, to, kind, widening) in edits {
        assert!(OLD.contains(from), "{from:?} not in OLD");
        let changes = diff(&load(OLD), &load(&OLD.replacen(from, to, 1)));
        assert!(
            changes.iter().any(|c| c.kind == kind && c.widening == widening),
            "{from:?} -> {to:?}: want {kind} (widening {widening}), got {:?}",
            kinds(&changes)
        );
    }
}

#[test]
fn server_settings_that_can_widen_access() {
    let s = "[server]\n";
    single_edits(&[
        (s, "[server]\nforwarded_header = \"forwarded\"\n", "forwarded_header_changed", true),
        (s, "[server]\nrate_limit_per_minute = 0\n", "rate_limit_raised", true),
        (s, "[server]\nrate_limit_per_minute = 6000\n", "rate_limit_raised", true),
        (s, "[server]\nrate_limit_burst = 600\n", "rate_limit_raised", true),
        (s, "[server]\nlisten = \"0.0.0.0:8080\"\n", "listen_changed", true),
        (s, "[server]\nlisten = \"[::]:8080\"\n", "listen_changed", true),
        (s, "[server]\nmetrics_listen = \"0.0.0.0:9090\"\n", "metrics_listen_changed", false),
        ("geoip_database = \"g.mmdb\"", "geoip_database = \"other.mmdb\"", "geoip_database_changed", true),
        ("audit_log = \"audit.jsonl\"\n", "", "audit_log_removed", true),
        ("audit_log = \"audit.jsonl\"", "audit_log = \"/dev/null\"", "audit_log_changed", true),
        ("issuer = \"i\"", "issuer = \"i\"\njwks_max_age = 3000", "jwks_max_age_changed", true),
    ]);
}

#[test]
fn metrics_moving_back_to_the_main_listener_or_off_loopback_widens() {
    let private = OLD.replace("[server]\n", "[server]\nmetrics_listen = \"127.0.0.1:9090\"\n");
    let changes = diff(&load(&private), &load(OLD));
    assert_eq!(kinds(&changes), [("server", "metrics_listen_changed", true)]);
    let exposed = OLD.replace("[server]\n", "[server]\nmetrics_listen = \"0.0.0.0:9090\"\n");
    assert_eq!(kinds(&diff(&load(&private), &load(&exposed))), [("server", "metrics_listen_changed", true)]);
}

#[test]
fn switching_the_forwarding_header_back_widens_too() {
    let forwarded = OLD.replace("[server]\n", "[server]\nforwarded_header = \"forwarded\"\n");
    let changes = diff(&load(&forwarded), &load(OLD));
    assert_eq!(kinds(&changes), [("server", "forwarded_header_changed", true)]);
    assert_eq!(changes[0].detail, "forwarded -> x-forwarded-for: check what each trusted proxy does with it");
}

#[test]
fn narrowing_server_changes_are_still_reported() {
    let s = "[server]\n";
    single_edits(&[
        (s, "[server]\nrate_limit_per_minute = 60\n", "rate_limit_lowered", false),
        (s, "[server]\nrate_limit_burst = 6\n", "rate_limit_lowered", false),
        (s, "[server]\nlisten = \"127.0.0.1:9090\"\n", "listen_changed", false),
        (s, "[server]\nmetrics_listen = \"127.0.0.1:9090\"\n", "metrics_listen_changed", false),
        ("issuer = \"i\"", "issuer = \"i\"\njwks_max_age = 30", "jwks_max_age_changed", false),
        ("issuer = \"i\"", "issuer = \"i\"\njws_alg = \"Ed25519\"", "jws_alg_changed", false),
        ("issuer = \"i\"", "issuer = \"i\"\njwks_alg_member = false", "jwks_alg_member_changed", false),
    ]);
    // Writing out the default is no change at all.
    let same = OLD.replace(s, "[server]\nforwarded_header = \"x-forwarded-for\"\nrate_limit_per_minute = 600\n");
    assert_eq!(kinds(&diff(&load(OLD), &load(&same))), []);
    let same = OLD.replace("issuer = \"i\"", "issuer = \"i\"\njws_alg = \"EdDSA\"\njwks_alg_member = true");
    assert_eq!(kinds(&diff(&load(OLD), &load(&same))), []);
}

#[test]
fn every_other_setting_is_reported() {
    single_edits(&[
        ("[projects.demo]", "[projects.demo]\ndescription = \"d\"", "project_description_changed", false),
        ("[projects.demo]", "[projects.demo]\n[projects.shop]", "project_added", false),
        ("id = \"gone\"\n", "id = \"gone\"\ndescription = \"x\"\n", "template_description_changed", false),
        ("id = \"gone\"\n", "id = \"gone\"\ncreated_at = 2026-01-01\n", "template_created_at_changed", false),
        ("description = \"live\"", "description = \"alive\"", "api_key_description_changed", false),
        ("description = \"live\"", "description = \"live\"\nkid = \"k2\"", "api_key_kid_changed", false),
        (
            "description = \"live\"",
            "description = \"live\"\ncreated_at = 2026-01-01",
            "api_key_created_at_changed",
            false,
        ),
        ("description = \"live\"", "description = \"live\"\nexpires_at = 2026-01-01", "api_key_expiry_changed", false),
    ]);
    let expiring = OLD.replace("description = \"live\"", "description = \"live\"\nexpires_at = 2026-01-01");
    for (later, widening) in [("2027-01-01T00:00:00Z", true), ("2025-06-01", false), ("", true)] {
        let new = if later.is_empty() { OLD.to_owned() } else { expiring.replace("2026-01-01", later) };
        let changes = diff(&load(&expiring), &load(&new));
        assert_eq!(kinds(&changes), [("api key ak_live", "api_key_expiry_changed", widening)], "{later}");
    }
    let without = OLD.replace("[projects.demo]", "[projects.demo]\n[projects.shop]");
    assert_eq!(kinds(&diff(&load(&without), &load(OLD))), [("project shop", "project_removed", false)]);
}

#[test]
fn allowed_hosts_rule() {
    let hosts = |h: &[&str]| h.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (one, two) = (hosts(&["keys.example.com"]), hosts(&["keys.example.com", "keys.example.com:8443"]));
    let other = hosts(&["evil.example"]);
    for (old, new, want) in [
        (None, Some(&one), Some(("allowed_hosts_narrowed", false))),
        (Some(&two), Some(&one), Some(("allowed_hosts_narrowed", false))),
        (Some(&one), Some(&two), Some(("allowed_hosts_widened", true))),
        (Some(&one), None, Some(("allowed_hosts_widened", true))),
        (Some(&one), Some(&other), Some(("allowed_hosts_changed", true))),
        (Some(&one), Some(&one), None),
        (None, None, None),
    ] {
        let mut d = Diff { changes: Vec::new() };
        allowed_hosts(&mut d, old.map(Vec::as_slice), new.map(Vec::as_slice));
        let got: Vec<(&str, bool)> = d.changes.iter().map(|c| (c.kind.as_str(), c.widening)).collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{old:?} -> {new:?}");
    }
}

#[test]
fn every_schema_setting_has_a_diff_rule() {
    let settings = crate::config::raw::setting_paths();
    // The walk reaches every nesting level: tables, arrays of tables and maps of tables.
    for deep in [
        "server.forwarded_header",
        "catalog.manage_permission",
        "projects.*.description",
        "templates[].upload.dir_scope",
        "templates[].restrict.whitelist_countries",
        "api_keys[].expires_at",
    ] {
        assert!(settings.iter().any(|s| s == deep), "the schema walk missed {deep}: {settings:?}");
    }
    let covered = rule_paths();
    let missing: Vec<&String> = settings.iter().filter(|s| !covered.contains(&s.as_str())).collect();
    assert!(missing.is_empty(), "settings without a diff rule (add one to src/diff.rs): {missing:?}");
    let stale: Vec<&&str> = covered.iter().filter(|c| !settings.iter().any(|s| s == *c)).collect();
    assert!(stale.is_empty(), "rules for settings the schema does not have: {stale:?}");
    let mut sorted = covered.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), covered.len(), "a setting has two rules");
}

#[test]
fn lints() {
    let risky = r#"
version = 1
issuer = "i"
[projects.demo]
[[templates]]
id = "risky"
project = "demo"
permissions = ["FILE_UPLOAD", "FILE_DELETE", "ACCESS_MANAGE"]
expiration_duration = 90000
[[templates]]
id = "careful"
project = "demo"
access = "api_key"
permissions = ["FILE_DELETE"]
expiration_duration = 600
[templates.upload]
dir_scope = "/in/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
"#;
    let found: Vec<(&str, String)> = lint(&load(risky)).into_iter().map(|l| (l.code, l.path)).collect();
    assert_eq!(
        found,
        [
            ("public_delete", "templates[0].permissions".to_owned()),
            ("public_access_manage", "templates[0].permissions".to_owned()),
            ("anywhere_with_writes", "templates[0].restrict.whitelist_ip_ranges".to_owned()),
            ("long_expiration", "templates[0].expiration_duration".to_owned()),
            ("upload_everywhere", "templates[0].upload.dir_scope".to_owned()),
        ]
    );
    assert!(lint(&load(include_str!("../../config.toml"))).is_empty(), "the shipped config is lint-clean");
    let halves =
        risky.replace("id = \"careful\"", "id = \"halves\"").replace("10.0.0.0/8", "0.0.0.0/1\", \"128.0.0.0/1");
    assert!(
        lint(&load(&halves))
            .iter()
            .any(|l| l.code == "anywhere_with_writes" && l.path == "templates[1].restrict.whitelist_ip_ranges")
    );
    let config_change = "version = 1\nissuer = \"i\"\n[projects.demo]\n[[templates]]\nid = \"c\"\nproject = \"demo\"\naccess = \"api_key\"\npermissions = [\"CONFIG_CHANGE\"]\n";
    assert_eq!(lint(&load(config_change)).iter().map(|l| l.code).collect::<Vec<_>>(), ["anywhere_with_writes"]);
}

#[test]
fn removing_an_inactive_template_unrevokes_its_tokens() {
    let removed = OLD.replace(
        "[[templates]]\nid = \"sleeping\"\nproject = \"demo\"\nactive = false\npermissions = [\"OBJECTS_LIST\"]\n",
        "",
    );
    assert_eq!(kinds(&diff(&load(OLD), &load(&removed))), [("template sleeping", "template_unrevoked", true)]);
}

#[test]
fn moving_a_permission_between_scope_kinds_is_widening_when_a_template_gains_directories() {
    let config = |upload: &str, list: &str, listing: &str| {
        load(&format!(
            "version = 1\nissuer = \"i\"\n[catalog]\npermissions = [\"asset.upload\", \"asset.delete\"]\n\
             upload_scoped = [{upload}]\nlist_scoped = [{list}]\n[projects.p]\n\
             [[templates]]\nid = \"t\"\nproject = \"p\"\npermissions = [\"asset.upload\", \"asset.delete\"]\n\
             [templates.upload]\ndir_scope = \"/uploads/*\"\n{listing}"
        ))
    };
    let old = config("\"asset.upload\", \"asset.delete\"", "", "");
    // The listing scope defaults to everything: deletes would no longer be held to /uploads.
    let wide = config("\"asset.upload\"", "\"asset.delete\"", "");
    assert_eq!(kinds(&diff(&old, &wide)), [("catalog", "scope_rule_changed", true)]);
    assert_eq!(diff(&old, &wide)[0].detail, "asset.delete: upload scope -> listing scope");
    // A listing scope inside the upload scope: no template gains a directory.
    let narrow =
        config("\"asset.upload\"", "\"asset.delete\"", "[templates.listing]\ndirectory_scope = [\"/uploads/a/*\"]\n");
    let old_narrow =
        config("\"asset.upload\", \"asset.delete\"", "", "[templates.listing]\ndirectory_scope = [\"/uploads/a/*\"]\n");
    assert_eq!(kinds(&diff(&old_narrow, &narrow)), [("catalog", "scope_rule_changed", false)]);
    // And back: from the listing scope (everything) to the upload scope narrows.
    assert_eq!(kinds(&diff(&wide, &old)), [("catalog", "scope_rule_changed", false)]);
}

#[test]
fn cut_offs_narrow_when_added_or_later_and_widen_when_removed_or_earlier() {
    let with = |template: &str, key: &str| {
        let mut text = OLD.replace(
            "id = \"widget\"\nproject = \"demo\"\n",
            &format!("id = \"widget\"\nproject = \"demo\"\n{template}"),
        );
        text = text.replace("id = \"ak_live\"\n", &format!("id = \"ak_live\"\n{key}"));
        load(&text)
    };
    let none = with("", "");
    let early = with("revoke_issued_before = 2025-01-01\n", "revoke_issued_before = 2025-01-01T00:00:00Z\n");
    let late = with("revoke_issued_before = 2025-06-01\n", "revoke_issued_before = 2025-06-01T00:00:00Z\n");
    let expect = |kind: &'static str, widening: bool| {
        vec![
            ("template widget", kind, widening),
            ("api key ak_live", kind.replacen("template", "api_key", 1).leak() as &str, widening),
        ]
    };
    assert_eq!(kinds(&diff(&none, &early)), expect("template_cut_off_narrowed", false));
    assert_eq!(kinds(&diff(&early, &late)), expect("template_cut_off_narrowed", false));
    assert_eq!(kinds(&diff(&late, &early)), expect("template_cut_off_widened", true));
    assert_eq!(kinds(&diff(&early, &none)), expect("template_cut_off_widened", true));
}

#[test]
fn upload_size_and_type_limits_widen_and_narrow() {
    let with = |extra: &str| load(&OLD.replace("limit_per_min = 10\n", &format!("limit_per_min = 10\n{extra}")));
    let none = with("");
    let small = with("max_file_size = 100\ncontent_types = [\"image/png\"]\n");
    let large = with("max_file_size = 200\ncontent_types = [\"image/*\"]\n");
    let other = with("max_file_size = 200\ncontent_types = [\"video/*\"]\n");
    let w = "template widget";
    assert_eq!(
        kinds(&diff(&none, &small)),
        [(w, "upload_max_file_size_narrowed", false), (w, "upload_content_types_narrowed", false)]
    );
    assert_eq!(
        kinds(&diff(&small, &large)),
        [(w, "upload_max_file_size_widened", true), (w, "upload_content_types_widened", true)]
    );
    assert_eq!(
        kinds(&diff(&large, &none)),
        [(w, "upload_max_file_size_widened", true), (w, "upload_content_types_widened", true)]
    );
    assert_eq!(kinds(&diff(&large, &other)), [(w, "upload_content_types_changed", true)]);
}
