//! Unit tests of minting and request narrowing.

use super::*;
use crate::keys::store::SigningKey;
use crate::verify::VerifyError;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;
use std::time::{Duration, UNIX_EPOCH};

const CONFIG: &str = r#"
version = 9
issuer = "https://keys.example.com"
[projects.demo]
[projects.other]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST", "FILE_DELETE"]
expiration_duration = 600
[templates.upload]
limit_per_min = 5
dir_scope = ["/uploads/*", "/inbox"]
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8", "2001:db8::/32"]
[[templates]]
id = "open"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "off"
project = "demo"
active = false
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "elsewhere"
project = "other"
permissions = ["OBJECTS_LIST"]
"#;

fn issuer() -> Issuer {
    let config = Config::from_toml(CONFIG, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn request(json: &str) -> MintRequest {
    MintRequest::from_json(json.as_bytes()).unwrap()
}

fn mint(template: &str, req: &str, caller: Option<IpAddr>) -> Result<Minted, MintError> {
    issuer().mint("demo", template, &request(req), caller, now())
}

#[test]
fn mints_the_template() {
    let issuer = issuer();
    let minted = issuer.mint("demo", "widget", &MintRequest::default(), ip("10.2.3.4"), now()).unwrap();
    assert_eq!(minted.expires_in, 600);
    assert_eq!(minted.expires_at.timestamp(), 1_800_000_600);
    assert_eq!(minted.kid, issuer.keyring().signing().kid());
    let grant = issuer.verifier("demo").verify(&minted.token, now()).unwrap();
    let c = grant.claims();
    assert_eq!(
        (c.iss.as_str(), c.sub.as_str(), c.client_id.as_str()),
        ("https://keys.example.com", "widget", "widget")
    );
    assert!(c.aud.contains("demo"));
    assert_eq!((c.iat, c.nbf, c.exp, c.ver), (1_800_000_000, 1_800_000_000, 1_800_000_600, 9));
    assert_eq!(c.scope, "FILE_UPLOAD OBJECTS_LIST FILE_DELETE");
    assert_eq!(c.upload_dirs, ["/uploads/*", "/inbox"]);
    assert_eq!(c.list_dirs, ["/*"]);
    assert_eq!(c.ips, ["10.0.0.0/8", "2001:db8::/32"]);
    assert_eq!(c.countries, None);
    assert_eq!(c.limits, Some(crate::token::claims::Limits { per_min: Some(5), per_source_ip: None }));
    assert_eq!(crate::token::b64::decode(&c.jti).unwrap().len(), 16, "128-bit jti");
    assert_eq!(c.jti, minted.jti);
    // Not for another project.
    assert_eq!(issuer.verifier("other").verify(&minted.token, now()).unwrap_err(), VerifyError::WrongAudience);
}

#[test]
fn debug_never_shows_the_token() {
    let minted = mint("open", "{}", None).unwrap();
    let text = format!("{minted:?}");
    assert!(text.contains("[redacted]") && text.contains(&minted.jti));
    assert!(!text.contains(&minted.token));
}

#[test]
fn jti_is_unique() {
    let a = mint("open", "{}", None).unwrap();
    let b = mint("open", "{}", None).unwrap();
    assert_ne!(a.jti, b.jti);
    assert_ne!(a.token, b.token);
}

#[test]
fn unrestricted_template_is_explicit_about_anywhere() {
    let issuer = issuer();
    let minted = issuer.mint("demo", "open", &MintRequest::default(), None, now()).unwrap();
    let grant = issuer.verifier("demo").verify(&minted.token, now()).unwrap();
    assert_eq!(grant.claims().ips, ["0.0.0.0/0", "::/0"]);
    assert_eq!(grant.claims().upload_dirs, ["/*"]);
    assert_eq!(grant.claims().limits, None);
}

#[test]
fn refusals() {
    let i = issuer();
    let none = MintRequest::default();
    assert!(matches!(i.mint("nope", "widget", &none, None, now()), Err(MintError::UnknownProject(_))));
    assert!(matches!(i.mint("demo", "nope", &none, None, now()), Err(MintError::UnknownTemplate(_))));
    // A template of another project is unknown here, not a different error.
    assert!(matches!(i.mint("demo", "elsewhere", &none, None, now()), Err(MintError::UnknownTemplate(_))));
    assert!(matches!(i.mint("demo", "off", &none, None, now()), Err(MintError::TemplateInactive(_))));
    assert!(matches!(mint("widget", "{}", None), Err(MintError::CallerIpRequired)));
    assert!(matches!(mint("widget", "{}", ip("192.0.2.1")), Err(MintError::IpNotAllowed(_))));
    assert!(mint("widget", "{}", ip("::ffff:10.0.0.1")).is_ok(), "mapped IPv4 matches");
    assert!(mint("widget", "{}", ip("2001:db8::1")).is_ok());
}

#[test]
fn requests_may_only_narrow() {
    let caller = ip("10.0.0.1");
    let ok = mint("widget", r#"{"permissions":["FILE_UPLOAD","FILE_UPLOAD"],"dir_scope":"/uploads/me/*","directory_scope":["/pub"],"expiration_duration":60,"bind_ip":true}"#, caller).unwrap();
    assert_eq!(ok.permissions, ["FILE_UPLOAD"]);
    assert_eq!(ok.expires_in, 60);
    let grant = issuer().verifier("demo").verify(&ok.token, now()).unwrap();
    assert_eq!(grant.claims().upload_dirs, ["/uploads/me/*"]);
    assert_eq!(grant.claims().list_dirs, ["/pub"]);
    assert_eq!(grant.claims().ips, ["10.0.0.1/32"]);

    let refused = |body: &str| mint("widget", body, caller).unwrap_err().code();
    assert_eq!(refused(r#"{"permissions":["ACCESS_MANAGE"]}"#), "permission_not_in_template");
    assert_eq!(refused(r#"{"permissions":["FILE_TELEPORT"]}"#), "unknown_permission");
    assert_eq!(refused(r#"{"permissions":[]}"#), "empty_permissions");
    assert_eq!(refused(r#"{"dir_scope":"/*"}"#), "scope_not_in_template");
    assert_eq!(refused(r#"{"dir_scope":"/inbox/*"}"#), "scope_not_in_template");
    assert_eq!(refused(r#"{"dir_scope":"/uploads2"}"#), "scope_not_in_template");
    assert_eq!(refused(r#"{"dir_scope":"/uploads/../etc"}"#), "invalid_scope");
    assert_eq!(refused(r#"{"dir_scope":[]}"#), "invalid_scope");
    assert_eq!(refused(r#"{"expiration_duration":601}"#), "expiration_too_long");
    assert_eq!(refused(r#"{"expiration_duration":99999999999}"#), "expiration_too_long");
    assert_eq!(refused(r#"{"expiration_duration":0}"#), "invalid_expiration");
    assert!(matches!(mint("open", r#"{"bind_ip":true}"#, None), Err(MintError::CallerIpRequired)));
}

#[test]
fn lookalike_dot_segments_are_refused_in_requests_and_config() {
    let caller = ip("10.0.0.1");
    let refused = |body: &str| mint("widget", body, caller).unwrap_err().code();
    assert_eq!(refused(r#"{"dir_scope":"/uploads/\uFF0E\uFF0E/\uFF0E\uFF0E/etc"}"#), "invalid_scope");
    assert_eq!(refused(r#"{"dir_scope":"/uploads/.\u200B./*"}"#), "invalid_scope");
    assert_eq!(refused(r#"{"dir_scope":"/uploads/a\uFF0Fb"}"#), "invalid_scope");
    let ok = mint("widget", r#"{"dir_scope":["/uploads/写真/２０２６/*","/uploads/café"]}"#, caller).unwrap();
    let grant = issuer().verifier("demo").verify(&ok.token, now()).unwrap();
    assert_eq!(grant.claims().upload_dirs, ["/uploads/写真/２０２６/*", "/uploads/café"]);

    let lookalike =
        CONFIG.replace(r#"dir_scope = ["/uploads/*", "/inbox"]"#, r#"dir_scope = ["/uploads/\uFF0E\uFF0E/*"]"#);
    assert_ne!(lookalike, CONFIG);
    let err = Config::from_toml(&lookalike, Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("dir_scope"), "{err}");
}

#[test]
fn record_expiry_is_an_instant() {
    let text = format!(
        "{CONFIG}\n[[api_keys]]\nid = \"ak_day\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nexpires_at = 2027-01-15\n\
         [[api_keys]]\nid = \"ak_instant\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\nexpires_at = 2027-01-15T01:00:00+01:00\n\
         [[api_keys]]\nid = \"ak_never\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n"
    );
    let config = Config::from_toml(&text, Path::new(".")).unwrap();
    let exp = |id: &str| config.api_key(id).unwrap().expires_at_unix();
    // A bare date ends the key when that day starts (UTC): the earlier reading.
    assert_eq!(exp("ak_day"), Some(1_799_971_200));
    assert_eq!(exp("ak_instant"), Some(1_799_971_200));
    assert_eq!(exp("ak_never"), None);
    assert!(config.api_key("ak_day").unwrap().is_expired(1_799_971_200));
    assert!(!config.api_key("ak_day").unwrap().is_expired(1_799_971_199));
}

#[test]
fn request_body_is_strict() {
    for bad in [
        r#"{"permission":["FILE_UPLOAD"]}"#,
        r#"{"expiration_duration":-1}"#,
        r#"{"expiration_duration":1.5}"#,
        r#"{"bind_ip":"yes"}"#,
        "[]",
        "[[]]",
        "null",
        "{",
        "",
    ] {
        let err = MintRequest::from_json(bad.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "invalid_body", "{bad}");
    }
    assert!(MintRequest::from_json(b" {\"bind_ip\": false} ").is_ok());
}

#[test]
fn country_restriction_fails_closed_without_database() {
    let text = r#"
version = 1
issuer = "i"
[server]
geoip_database = "/nonexistent/country.mmdb"
[projects.demo]
[[templates]]
id = "fr-only"
project = "demo"
permissions = ["OBJECTS_LIST"]
[templates.restrict]
whitelist_countries = ["FR"]
"#;
    let config = Config::from_toml(text, Path::new(".")).unwrap();
    // The issuer does not start with a missing database...
    assert!(Issuer::new(config.clone(), Keyring::single(SigningKey::generate())).is_err());
    // ...and one built without it refuses country-restricted mints.
    let issuer = Issuer::from_parts(config, Keyring::single(SigningKey::generate()), None);
    let err = issuer.mint("demo", "fr-only", &MintRequest::default(), ip("8.8.8.8"), now()).unwrap_err();
    assert_eq!(err.code(), "geoip_unavailable");
    let err = issuer.mint("demo", "fr-only", &MintRequest::default(), None, now()).unwrap_err();
    assert_eq!(err.code(), "caller_ip_required");
}

#[test]
fn a_permanent_key_is_refused_for_unknown_permissions_and_projects() {
    let new = |projects: &[&str], permissions: &[&str]| NewApiKey {
        projects: projects.iter().map(|p| (*p).to_owned()).collect(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..NewApiKey::default()
    };
    let issuer = issuer();
    assert!(issuer.create_api_key(&new(&["demo"], &["OBJECTS_LIST"]), now()).is_ok());
    assert!(matches!(
        issuer.create_api_key(&new(&["demo"], &["NO_SUCH_PERMISSION"]), now()),
        Err(MintError::UnknownPermission(p)) if p == "NO_SUCH_PERMISSION"
    ));
    assert!(matches!(
        issuer.create_api_key(&new(&["nowhere"], &["OBJECTS_LIST"]), now()),
        Err(MintError::UnknownProject(p)) if p == "nowhere"
    ));
}

/// `CONFIG` with `extra` TOML appended.
fn issuer_with(extra: &str) -> Issuer {
    let config = Config::from_toml(&format!("{CONFIG}\n{extra}"), Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
    Issuer::from_parts(config, Keyring::single(key), None)
}

/// A record of permanent key `id` for `[[api_keys]]`, with `more` settings.
fn record(id: &str, more: &str) -> String {
    format!(
        "[[api_keys]]\nid = \"{id}\"\npermissions = [\"FILE_UPLOAD\", \"OBJECTS_LIST\"]\nprojects = [\"demo\"]\n{more}\n"
    )
}

/// Verifies `key` as a downstream service would: holding the list `issuer` signs at `at`.
fn verify_downstream(issuer: &Issuer, key: &str, at: SystemTime) -> Result<(), VerifyError> {
    let verifier = issuer.verifier("demo");
    verifier.set_revocations(&issuer.revocation_list(at).unwrap().token, at)?;
    verifier.verify_api_key(key, at).map(|_| ())
}

#[test]
fn signed_list_accepts_only_keys_whose_root_is_recorded_and_active() {
    let new = |created_by: Vec<String>| NewApiKey {
        projects: vec!["demo".into()],
        permissions: vec!["FILE_UPLOAD".into()],
        created_by,
        ..NewApiKey::default()
    };
    let root = issuer().create_api_key(&new(Vec::new()), now()).unwrap();
    let child = issuer().create_api_key(&new(vec![root.id.clone()]), now()).unwrap();
    let recorded = issuer_with(&record(&root.id, ""));
    assert!(verify_downstream(&recorded, &root.secret, now()).is_ok());
    assert!(verify_downstream(&recorded, &child.secret, now()).is_ok(), "created beneath an active root");
    // The record deleted, or never written: refused, with the key and everything beneath it.
    let deleted = issuer_with(&record("ak_other", ""));
    assert!(matches!(verify_downstream(&deleted, &root.secret, now()), Err(VerifyError::Revoked)));
    assert!(matches!(verify_downstream(&deleted, &child.secret, now()), Err(VerifyError::Revoked)));
    // A child listed active on its own is still refused once its root is gone.
    let child_only = issuer_with(&record(&child.id, ""));
    assert!(matches!(verify_downstream(&child_only, &child.secret, now()), Err(VerifyError::Revoked)));
    // An expired record is not active.
    let expired = issuer_with(&record(&root.id, "expires_at = 2020-01-01"));
    assert!(matches!(verify_downstream(&expired, &root.secret, now()), Err(VerifyError::Revoked)));
    let list = recorded.revocation_list(now()).unwrap().token;
    let verifier = recorded.verifier("demo");
    verifier.set_revocations(&list, now()).unwrap();
    assert_eq!(verifier.revocations().unwrap().claims().active_api_keys, vec![root.id]);
}

/// 2026-01-01T00:00:00Z: a cut-off in the past of any clock these tests run on.
const CUT_OFF: u64 = 1_767_225_600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn keys_minted_before_a_template_cut_off_are_refused() {
    let text = CONFIG.replace(
        "id = \"open\"\nproject = \"demo\"\n",
        "id = \"open\"\nproject = \"demo\"\nrevoke_issued_before = 2026-01-01T00:00:00Z\n",
    );
    let config = Config::from_toml(&text, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
    let issuer = Issuer::from_parts(config, Keyring::single(key), None);
    let verify = |minted_at: u64| {
        let token = issuer.mint("demo", "open", &request("{}"), None, at(minted_at)).unwrap().token;
        let checked_at = at(minted_at + 10);
        let verifier = issuer.verifier("demo");
        verifier.set_revocations(&issuer.revocation_list(checked_at).unwrap().token, checked_at).unwrap();
        verifier.verify(&token, checked_at).map(|_| ())
    };
    assert!(matches!(verify(CUT_OFF - 1), Err(VerifyError::Revoked)), "minted before the cut-off");
    assert!(verify(CUT_OFF).is_ok(), "minted at the cut-off");
    // The list carries it, bounded and in plain sight.
    let list = issuer.verifier("demo");
    list.set_revocations(&issuer.revocation_list(at(CUT_OFF)).unwrap().token, at(CUT_OFF)).unwrap();
    assert_eq!(list.revocations().unwrap().claims().templates_issued_before.get("open"), Some(&CUT_OFF));
}

#[test]
fn keys_minted_through_a_permanent_key_before_its_cut_off_are_refused() {
    let text = format!(
        "{CONFIG}\n[[templates]]\nid = \"keyed\"\nproject = \"demo\"\naccess = \"api_key\"\npermissions = [\"FILE_UPLOAD\"]\n"
    );
    let build = |records: &str| {
        let config = Config::from_toml(&format!("{text}{records}"), Path::new(".")).unwrap();
        let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
        Issuer::from_parts(config, Keyring::single(key), None)
    };
    let new =
        NewApiKey { projects: vec!["demo".into()], permissions: vec!["FILE_UPLOAD".into()], ..NewApiKey::default() };
    let pk = build("").create_api_key(&new, at(CUT_OFF - 100)).unwrap();
    let issuer = build(&record(&pk.id, "revoke_issued_before = 2026-01-01T00:00:00Z"));
    let verify = |minted_at: u64| {
        let caller = Caller::from(None).with_api_key(&pk.secret);
        let token = issuer.mint("demo", "keyed", &request("{}"), caller, at(minted_at)).unwrap().token;
        let checked_at = at(minted_at + 10);
        let verifier = issuer.verifier("demo");
        verifier.set_revocations(&issuer.revocation_list(checked_at).unwrap().token, checked_at).unwrap();
        verifier.verify(&token, checked_at).map(|_| ())
    };
    assert!(matches!(verify(CUT_OFF - 1), Err(VerifyError::Revoked)));
    assert!(verify(CUT_OFF).is_ok());
    // The permanent key itself stays valid: the cut-off voids what was minted through it.
    assert!(verify_downstream(&issuer, &pk.secret, at(CUT_OFF)).is_ok());
}

#[test]
fn a_cut_off_in_the_future_is_a_config_error() {
    let text = CONFIG.replace(
        "id = \"open\"\nproject = \"demo\"\n",
        "id = \"open\"\nproject = \"demo\"\nrevoke_issued_before = 2999-01-01T00:00:00Z\n",
    );
    let err = Config::from_toml(&text, Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("templates[1].revoke_issued_before"), "{err}");
    let err = Config::from_toml(
        &format!("{CONFIG}\n{}", record("ak_x", "revoke_issued_before = 2999-01-01")),
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("api_keys[0].revoke_issued_before"), "{err}");
}

#[test]
fn upload_limits_are_carried_and_only_narrowed() {
    let text = CONFIG.replace(
        "[templates.upload]\nlimit_per_min = 5\n",
        "[templates.upload]\nlimit_per_min = 5\nmax_file_size = 1000\ncontent_types = [\"image/*\", \"application/PDF\"]\n",
    );
    let config = Config::from_toml(&text, Path::new(".")).unwrap();
    let key = SigningKey::new(&ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]));
    let issuer = Issuer::from_parts(config, Keyring::single(key), None);
    let claims = |req: &str, template: &str| -> Result<serde_json::Value, MintError> {
        let token = issuer.mint("demo", template, &request(req), ip("10.0.0.1"), now())?.token;
        Ok(serde_json::from_slice(&crate::token::b64::decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap())
    };
    let all = claims("{}", "widget").unwrap();
    assert_eq!(all["upload_max_bytes"], 1000);
    assert_eq!(all["upload_types"], serde_json::json!(["image/*", "application/pdf"]));
    let narrowed = claims(r#"{"max_file_size": 500, "content_types": ["IMAGE/png"]}"#, "widget").unwrap();
    assert_eq!(
        (narrowed["upload_max_bytes"].clone(), narrowed["upload_types"].clone()),
        (500.into(), serde_json::json!(["image/png"]))
    );
    for wider in
        [r#"{"max_file_size": 1001}"#, r#"{"content_types": ["video/mp4"]}"#, r#"{"content_types": ["application/*"]}"#]
    {
        assert_eq!(claims(wider, "widget").unwrap_err().code(), "scope_not_in_template", "{wider}");
    }
    for bad in [r#"{"max_file_size": 0}"#, r#"{"content_types": []}"#, r#"{"content_types": ["image/png; q=1"]}"#] {
        assert_eq!(claims(bad, "widget").unwrap_err().code(), "invalid_body", "{bad}");
    }
    // A template without limits: none in the key, and a request may add them.
    let open = claims("{}", "open").unwrap();
    assert!(open.get("upload_max_bytes").is_none() && open.get("upload_types").is_none());
    assert_eq!(claims(r#"{"max_file_size": 10}"#, "open").unwrap()["upload_max_bytes"], 10);
    // Bad settings are config errors with their path.
    let bad =
        CONFIG.replace("limit_per_min = 5\n", "limit_per_min = 5\nmax_file_size = 0\ncontent_types = [\"*/*\"]\n");
    let err = Config::from_toml(&bad, Path::new(".")).unwrap_err().to_string();
    assert!(
        err.contains("templates[0].upload.max_file_size") && err.contains("templates[0].upload.content_types[0]"),
        "{err}"
    );
}
