//! The real server on a loopback port, spoken to over HTTP: minting, the JWKS, verifying with
//! it, and every refusal as `application/problem+json` with a stable code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use common::{TestServer, geoip_database};
use keysmith::{KeySet, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::SystemTime;

fn config(extra_server: &str) -> String {
    format!(
        r#"
version = 4
issuer = "https://keys.test"
[server]
cors_origins = ["http://localhost:3000"]
{extra_server}
[projects.demo]
[projects.other]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
[templates.upload]
dir_scope = "/uploads/*"
limit_per_min = 10
[templates.restrict]
whitelist_ip_ranges = ["127.0.0.0/8", "::1"]
[[templates]]
id = "office-only"
project = "demo"
permissions = ["OBJECTS_LIST"]
[templates.restrict]
whitelist_ip_ranges = ["10.20.0.0/16"]
[[templates]]
id = "retired"
project = "demo"
active = false
permissions = ["OBJECTS_LIST"]
"#
    )
}

async fn server() -> TestServer {
    TestServer::start(&config("")).await
}

async fn problem(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    body
}

async fn verifier(server: &TestServer, audience: &str) -> Verifier {
    let jwks = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
    Verifier::new(KeySet::from_jwks_json(&jwks).unwrap(), "https://keys.test", audience)
}

#[tokio::test]
async fn mint_fetch_jwks_and_verify() {
    let server = server().await;
    let client = reqwest::Client::new();
    for request in [client.get(server.url("/demo/v1/key/widget")), client.post(server.url("/demo/v1/key/widget"))] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "success");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 1200);
        assert_eq!(body["permissions"], json!(["FILE_UPLOAD", "OBJECTS_LIST"]));
        let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();

        let grant = verifier(&server, "demo").await.verify(body["key"].as_str().unwrap(), SystemTime::now()).unwrap();
        let claims = grant.claims();
        assert_eq!(claims.exp as i64, expires_at.timestamp());
        assert_eq!(claims.ver, 4);
        assert_eq!(claims.ips, ["127.0.0.0/8", "::1/128"]);
        let local = Some("127.0.0.1".parse().unwrap());
        assert_eq!(grant.authorize("FILE_UPLOAD", Some("/uploads/me"), local), Ok(()));
        assert!(grant.authorize("FILE_UPLOAD", Some("/private"), local).is_err());
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jwks_is_cacheable_rfc8037() {
    let server = server().await;
    let response = reqwest::get(server.url("/.well-known/jwks.json")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let etag = response.headers()["etag"].clone();
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["use"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("Ed25519"), Some("sig"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none(), "no private key material");
    assert_eq!(key["kid"].as_str().unwrap().len(), 43, "RFC 7638 SHA-256 thumbprint");
    let again = reqwest::Client::new()
        .get(server.url("/.well-known/jwks.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn narrowing_body() {
    let server = server().await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/widget");
    let body = json!({"permissions": ["FILE_UPLOAD"], "dir_scope": "/uploads/user-7/*", "expiration_duration": 60, "bind_ip": true});
    let response = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let minted: Value = response.json().await.unwrap();
    assert_eq!(minted["expires_in"], 60);
    let grant = verifier(&server, "demo").await.verify(minted["key"].as_str().unwrap(), SystemTime::now()).unwrap();
    assert_eq!(grant.claims().ips, ["127.0.0.1/32"]);
    assert_eq!(grant.claims().upload_dirs, ["/uploads/user-7/*"]);
    assert_eq!(grant.permissions(), ["FILE_UPLOAD"]);

    for (body, status, code) in [
        (json!({"permissions": ["FILE_DELETE"]}), StatusCode::FORBIDDEN, "permission_not_in_template"),
        (json!({"permissions": ["NOPE"]}), StatusCode::BAD_REQUEST, "unknown_permission"),
        (json!({"dir_scope": "/*"}), StatusCode::FORBIDDEN, "scope_not_in_template"),
        (json!({"directory_scope": "/a/../b"}), StatusCode::BAD_REQUEST, "invalid_scope"),
        (json!({"expiration_duration": 1201}), StatusCode::FORBIDDEN, "expiration_too_long"),
        (json!({"expiration_duration": 0}), StatusCode::BAD_REQUEST, "invalid_expiration"),
        (json!({"expires": 10}), StatusCode::BAD_REQUEST, "invalid_body"),
        (json!([1, 2]), StatusCode::BAD_REQUEST, "invalid_body"),
    ] {
        problem(client.post(&url).json(&body).send().await.unwrap(), status, code).await;
    }
    let bad_json = client.post(&url).header("content-type", "application/json").body("{").send().await.unwrap();
    problem(bad_json, StatusCode::BAD_REQUEST, "invalid_body").await;
    let xml = client.post(&url).header("content-type", "text/xml").body("<a/>").send().await.unwrap();
    problem(xml, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let big =
        client.post(&url).header("content-type", "application/json").body(vec![b' '; 64 * 1024]).send().await.unwrap();
    problem(big, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
}

#[tokio::test]
async fn refusals_are_problems() {
    let server = server().await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(server.url(path)).send();
    problem(get("/nope/v1/key/widget").await.unwrap(), StatusCode::NOT_FOUND, "unknown_project").await;
    problem(get("/demo/v1/key/nope").await.unwrap(), StatusCode::NOT_FOUND, "unknown_template").await;
    problem(get("/other/v1/key/widget").await.unwrap(), StatusCode::NOT_FOUND, "unknown_template").await;
    problem(get("/demo/v1/key/retired").await.unwrap(), StatusCode::FORBIDDEN, "template_inactive").await;
    let body = problem(get("/demo/v1/key/office-only").await.unwrap(), StatusCode::FORBIDDEN, "ip_not_allowed").await;
    assert!(body["detail"].as_str().unwrap().contains("127.0.0.1"));
    problem(get("/nothing/here").await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    let delete = client.delete(server.url("/demo/v1/key/widget")).send().await.unwrap();
    problem(delete, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Untrusted peer: the header is ignored, the socket peer (127.0.0.1) is the caller.
    let server = server().await;
    let client = reqwest::Client::new();
    let spoofed =
        client.get(server.url("/demo/v1/key/office-only")).header("x-forwarded-for", "10.20.1.1").send().await.unwrap();
    problem(spoofed, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    let ok = client.get(server.url("/demo/v1/key/widget")).header("x-forwarded-for", "garbage").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "headers from untrusted peers are not even parsed");

    // Loopback as a trusted proxy: the first untrusted hop from the right is the caller.
    let server = TestServer::start(&config(r#"trusted_proxies = ["127.0.0.1", "192.168.0.0/16"]"#)).await;
    let url = server.url("/demo/v1/key/office-only");
    let via = |xff: &'static str| client.get(&url).header("x-forwarded-for", xff).send();
    assert_eq!(via("10.20.1.1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(via("6.6.6.6, 10.20.1.1, 192.168.1.1").await.unwrap().status(), StatusCode::OK);
    assert_eq!(via("::ffff:10.20.1.1").await.unwrap().status(), StatusCode::OK, "IPv4-mapped IPv6 matches IPv4 ranges");
    problem(via("10.20.1.1, 6.6.6.6").await.unwrap(), StatusCode::FORBIDDEN, "ip_not_allowed").await;
    problem(via("10.20.1.1, junk").await.unwrap(), StatusCode::BAD_REQUEST, "bad_forwarded_for").await;
    problem(via("10.20.1.1:443").await.unwrap(), StatusCode::BAD_REQUEST, "bad_forwarded_for").await;
}

#[tokio::test]
async fn countries_are_enforced_from_a_real_geoip_database() {
    let db = geoip_database();
    let extra = format!("trusted_proxies = [\"127.0.0.1\"]\ngeoip_database = {:?}", db.display().to_string());
    let text = config(&extra).replace(
        "[[templates]]\nid = \"retired\"",
        "[[templates]]\nid = \"us-only\"\nproject = \"demo\"\npermissions = [\"OBJECTS_LIST\"]\n\
         [templates.restrict]\nwhitelist_countries = [\"US\"]\n[[templates]]\nid = \"retired\"",
    );
    let server = TestServer::start(&text).await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/us-only");
    let from = |ip: &'static str| client.get(&url).header("x-forwarded-for", ip).send();
    // Fixtures from the pinned ip-location-db database: 8.8.8.8 and 2001:4860:4860::8888 are
    // US, 81.2.69.142 is GB, 192.0.2.1 (TEST-NET-1) is in no country.
    let ok = from("8.8.8.8").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let minted: Value = ok.json().await.unwrap();
    let grant = verifier(&server, "demo").await.verify(minted["key"].as_str().unwrap(), SystemTime::now()).unwrap();
    assert_eq!(grant.claims().countries, Some(vec!["US".to_owned()]));
    assert_eq!(from("2001:4860:4860::8888").await.unwrap().status(), StatusCode::OK);
    assert_eq!(from("::ffff:8.8.8.8").await.unwrap().status(), StatusCode::OK);
    let gb = problem(from("81.2.69.142").await.unwrap(), StatusCode::FORBIDDEN, "country_not_allowed").await;
    assert!(gb["detail"].as_str().unwrap().contains("GB"));
    problem(from("192.0.2.1").await.unwrap(), StatusCode::FORBIDDEN, "country_unknown").await;
    // A trusted proxy that does not say for whom it forwards is refused, not taken as the caller.
    problem(client.get(&url).send().await.unwrap(), StatusCode::BAD_REQUEST, "bad_forwarded_for").await;
}

#[tokio::test]
async fn cors_for_configured_origins_only() {
    let server = server().await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/widget");
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://localhost:3000");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("content-type"));

    let actual = client.post(&url).header("origin", "http://localhost:3000").send().await.unwrap();
    assert_eq!(actual.headers()["access-control-allow-origin"], "http://localhost:3000");
    // Refusals carry CORS headers too, so the page can read the problem.
    let refused =
        client.get(server.url("/demo/v1/key/retired")).header("origin", "http://localhost:3000").send().await.unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "http://localhost:3000");

    let foreign = client.post(&url).header("origin", "https://evil.example").send().await.unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn health_and_graceful_shutdown() {
    let server = server().await;
    let health: Value = reqwest::get(server.url("/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["config_version"], 4);
    let addr = server.addr;
    server.stop().await.unwrap();
    assert!(reqwest::get(format!("http://{addr}/healthz")).await.is_err(), "server stopped listening");
}

#[tokio::test]
async fn reload_swaps_config_and_keeps_the_last_good_one() {
    let server = server().await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/widget");
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::OK);

    let path = server.dir.path().join("config.toml");
    let deactivated = config("").replace("version = 4", "version = 5").replacen(
        "id = \"widget\"\nproject = \"demo\"",
        "id = \"widget\"\nproject = \"demo\"\nactive = false",
        1,
    );
    std::fs::write(&path, &deactivated).unwrap();
    server.reload();
    assert_eq!(server.handle.config_version(), 5);
    problem(client.get(&url).send().await.unwrap(), StatusCode::FORBIDDEN, "template_inactive").await;

    // A bad edit is refused and the running config keeps serving.
    std::fs::write(
        &path,
        deactivated.replace("version = 5", "version = 6").replace("[projects.demo]", "[projects.demo]\ncolour = 1"),
    )
    .unwrap();
    assert!(matches!(server.try_reload(), keysmith::server::ReloadOutcome::Rejected(_)));
    assert_eq!(server.handle.config_version(), 5);
    problem(client.get(&url).send().await.unwrap(), StatusCode::FORBIDDEN, "template_inactive").await;
    let health: Value = reqwest::get(server.url("/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(health["config_version"], 5);
}

#[tokio::test]
async fn every_error_is_a_problem_document() {
    let server = server().await;
    // Not UTF-8 after percent-decoding: rejected by the path extractor, still a problem.
    let response = reqwest::get(server.url("/demo/v1/key/%FF")).await.unwrap();
    problem(response, StatusCode::BAD_REQUEST, "invalid_path").await;
    let response = reqwest::get(server.url("/%FF/v1/key/widget")).await.unwrap();
    problem(response, StatusCode::BAD_REQUEST, "invalid_path").await;
}

#[tokio::test]
async fn rfc7239_forwarded_when_configured_and_only_then() {
    let server =
        TestServer::start(&config("trusted_proxies = [\"127.0.0.1\"]\nforwarded_header = \"forwarded\"")).await;
    let client = reqwest::Client::new();
    let url = server.url("/demo/v1/key/office-only");
    let ok = client.get(&url).header("forwarded", "for=10.20.3.4;proto=https").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let v6 = client.get(&url).header("forwarded", "for=\"[2001:db8::1]:4711\"").send().await.unwrap();
    problem(v6, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    let hidden = client.get(&url).header("forwarded", "for=_hidden").send().await.unwrap();
    problem(hidden, StatusCode::BAD_REQUEST, "bad_forwarded_for").await;
    // With `forwarded` configured, an X-Forwarded-For from the client is not believed.
    let spoof = client
        .get(&url)
        .header("forwarded", "for=192.0.2.9")
        .header("x-forwarded-for", "10.20.3.4")
        .send()
        .await
        .unwrap();
    problem(spoof, StatusCode::FORBIDDEN, "ip_not_allowed").await;
}

#[tokio::test]
async fn the_revocation_list_is_served_for_caches() {
    let server = server().await;
    let client = reqwest::Client::new();
    let first = client.get(server.url("/v1/revocations")).send().await.unwrap();
    assert_eq!(first.headers()["content-type"], "application/jwt");
    let max_age: u64 =
        first.headers()["cache-control"].to_str().unwrap().trim_start_matches("public, max-age=").parse().unwrap();
    assert!((1..=150).contains(&max_age), "cacheable until half its 300 s freshness is used: {max_age}");
    let etag = first.headers()["etag"].clone();
    let body = first.text().await.unwrap();
    // The same list (not re-signed) while it is fresh, and 304 for a cache that holds it.
    assert_eq!(client.get(server.url("/v1/revocations")).send().await.unwrap().text().await.unwrap(), body);
    for tag in [etag.to_str().unwrap(), "\"other\", *"] {
        let again = client.get(server.url("/v1/revocations")).header("if-none-match", tag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(again.headers()["etag"], etag);
    }
    let stale = client.get(server.url("/v1/revocations")).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn path_segments_outside_the_id_grammar_are_invalid_paths() {
    let server = server().await;
    for path in ["/Demo/v1/key/widget", "/demo/v1/key/wid%0Aget", "/de%1Bmo/v1/key/widget", "/demo/v1/key/-x"] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        problem(response, StatusCode::BAD_REQUEST, "invalid_path").await;
    }
    let long = format!("/demo/v1/key/{}", "w".repeat(65));
    problem(reqwest::get(server.url(&long)).await.unwrap(), StatusCode::BAD_REQUEST, "invalid_path").await;
    let created = reqwest::Client::new().post(server.url("/de%E2%80%A8mo/v1/api-keys")).send().await.unwrap();
    problem(created, StatusCode::BAD_REQUEST, "invalid_path").await;
}

#[tokio::test]
async fn only_allowed_hosts_are_served() {
    let guarded = TestServer::start(&config(r#"allowed_hosts = ["keys.test", "keys.test:8443"]"#)).await;
    let client = reqwest::Client::new();
    let with_host = |path: &str, host: &'static str| client.get(guarded.url(path)).header("host", host).send();
    for host in ["keys.test", "KEYS.test", "keys.test:8443"] {
        assert_eq!(with_host("/demo/v1/key/widget", host).await.unwrap().status(), StatusCode::OK, "{host}");
    }
    for host in ["evil.test", "keys.test:80", "keys.test.evil.test", "127.0.0.1"] {
        for path in ["/demo/v1/key/widget", "/healthz", "/.well-known/jwks.json"] {
            let response = with_host(path, host).await.unwrap();
            problem(response, StatusCode::MISDIRECTED_REQUEST, "misdirected_request").await;
        }
    }
    // Without the setting any Host is served.
    let open = server().await;
    let response = client.get(open.url("/demo/v1/key/widget")).header("host", "evil.test").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_must_be_declared_as_json() {
    let server = server().await;
    let client = reqwest::Client::new();
    let undeclared = client.post(server.url("/demo/v1/key/widget")).body(r#"{"permissions":["OBJECTS_LIST"]}"#);
    problem(undeclared.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let created = client.post(server.url("/demo/v1/api-keys")).body(r#"{"permissions":["OBJECTS_LIST"]}"#);
    problem(created.send().await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    // An empty body needs no type; a declared one is read.
    assert_eq!(client.post(server.url("/demo/v1/key/widget")).send().await.unwrap().status(), StatusCode::OK);
    let declared = client.post(server.url("/demo/v1/key/widget")).json(&json!({ "permissions": ["OBJECTS_LIST"] }));
    assert_eq!(declared.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn head_on_the_mint_endpoint_is_not_allowed() {
    let server = server().await;
    let client = reqwest::Client::new();
    let head = client.head(server.url("/demo/v1/key/widget")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(head.headers()["content-type"], "application/problem+json");
    assert_eq!(head.headers()["allow"], "GET, POST");
    // Other documents still answer HEAD.
    let jwks = client.head(server.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK);
}

#[tokio::test]
async fn status_shows_codes_versions_and_times_only() {
    let server = server().await;
    // A config that does not validate: the reason names the setting and quotes its value.
    let path = server.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("version = 4", "version = 5").replace("\"FILE_UPLOAD\", ", "\"FILE_TELEPORT\", "),
    )
    .unwrap();
    assert!(matches!(server.try_reload(), keysmith::server::ReloadOutcome::Rejected(_)));
    let reason = server.handle.last_rejected().unwrap().reason;
    assert!(
        reason.contains("unknown permission \"FILE_TELEPORT\""),
        "the full reason stays available to the operator: {reason}"
    );
    let status: Value = reqwest::get(server.url("/v1/status")).await.unwrap().json().await.unwrap();
    let rejected = &status["last_rejected"];
    assert_eq!(rejected["version"], 5, "{status}");
    assert_eq!(rejected["code"], "config_invalid", "{status}");
    assert!(chrono::DateTime::parse_from_rfc3339(rejected["at"].as_str().unwrap()).is_ok());
    let public = status.to_string();
    assert!(rejected.get("reason").is_none(), "{public}");
    assert!(!public.contains("TELEPORT") && !public.contains("templates["), "{public}");
}
