//! No secret reaches the log: a full run of the real binary at the most verbose level (mint,
//! API-key use and creation, refusals) logs key ids and `jti`s, never private key material, a
//! minted key or a permanent key's secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
version = 1
issuer = "https://keys.test"
[server]
audit_log = "audit.jsonl"
[projects.demo]
[[templates]]
id = "public"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[templates]]
id = "backend"
project = "demo"
access = "api_key"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/in/*"
"#;

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_is_logged_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = (dir.path().join("config.toml"), dir.path().join("keys"));
    std::fs::write(&config, CONFIG).unwrap();
    keysmith::keys::generate_key_file(&keys, chrono::Utc::now()).unwrap();
    let out = common::keysmith()
        .args([
            "apikey",
            "create",
            "--description",
            "admin",
            "--permissions",
            "ACCESS_MANAGE,FILE_UPLOAD",
            "--project",
            "demo",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let mut child = common::keysmith()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--keys")
        .arg(&keys)
        .env("KEYSMITH_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "server did not start:\n{}", log.join("\n"));
        let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) else { continue };
        log.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let url = |p: &str| format!("http://{addr}{p}");
    let client = reqwest::Client::new();

    // Everything that handles a secret: minting, using and creating permanent keys, refusals.
    let minted: Value = client.get(url("/demo/v1/key/public")).send().await.unwrap().json().await.unwrap();
    let token = minted["key"].as_str().unwrap().to_owned();
    let via_key: Value =
        client.get(url("/demo/v1/key/backend")).header("x-api-key", &admin).send().await.unwrap().json().await.unwrap();
    let delegated = via_key["key"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(url("/demo/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "child", "permissions": ["FILE_UPLOAD"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let child_secret = created["secret"].as_str().unwrap().to_owned();
    let child_id = created["apiKey"]["id"].as_str().unwrap().to_owned();
    let mistyped = format!("{}x", &admin[..admin.len() - 1]);
    let refused = client.get(url("/demo/v1/key/backend")).header("x-api-key", &mistyped).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let refused = client.get(url("/demo/v1/key/backend")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 401, "an access key is not a permanent key");
    let _ = client
        .post(url("/demo/v1/key/public"))
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    log.extend(rx.iter());
    let log = log.join("\n");
    assert!(log.contains(" DEBUG ") && log.contains("api key created"), "verbose logging was on:\n{log}");

    // The private key, in every encoding someone might log it in.
    let pem_path = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pem"))
        .unwrap();
    let pem = std::fs::read_to_string(pem_path).unwrap();
    let seed = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap().to_bytes();
    let mut secrets: Vec<(String, String)> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(|l| ("PEM line".to_owned(), l.to_owned()))
        .collect();
    secrets.push(("seed, base64url".into(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed)));
    secrets.push(("seed, base64".into(), base64::engine::general_purpose::STANDARD.encode(seed)));
    secrets.push(("seed, hex".into(), seed.iter().map(|b| format!("{b:02x}")).collect()));
    for (name, token) in [
        ("minted key", &token),
        ("delegated key", &delegated),
        ("admin secret", &admin),
        ("child secret", &child_secret),
        ("mistyped secret", &mistyped),
    ] {
        secrets.push((name.to_owned(), token.clone()));
        // Its signature alone identifies it too.
        secrets.push((format!("{name} signature"), token.rsplit('.').next().unwrap().to_owned()));
    }
    for (name, secret) in &secrets {
        assert!(!log.contains(secret.as_str()), "{name} reached the log");
    }
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    for (name, secret) in &secrets {
        assert!(!audit.contains(secret.as_str()), "{name} reached the audit log");
    }

    // What the log does carry: ids.
    let jti = |t: &str| -> String {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.split('.').nth(1).unwrap()).unwrap();
        serde_json::from_slice::<Value>(&payload).unwrap()["jti"].as_str().unwrap().to_owned()
    };
    assert!(log.contains(&jti(&token)), "the jti of a minted key is logged");
    assert!(log.contains(&jti(&delegated)));
    assert!(log.contains(&child_id), "the id of a created key is logged");
}
