//! The `keysmith` binary: check, keygen, mint, verify (exit codes 0/1/2), and serve as a real
//! process with a generated development key, stopped with SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn keysmith(args: &[&str]) -> Output {
    common::keysmith().args(args).env("KEYSMITH_LOG", "info").output().unwrap()
}

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The config text with its top-level `version` set to `n`, whatever the working tree's is.
fn with_version(config: &str, n: u64) -> String {
    let mut done = false;
    config
        .lines()
        .map(|line| {
            if !done && line.starts_with("version = ") {
                done = true;
                format!("version = {n}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A child process killed when dropped, so a failing assertion leaves no server running.
#[derive(Debug)]
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

#[test]
fn check_reports_paths_and_exit_codes() {
    let ok = keysmith(&["check", shipped_config().to_str().unwrap()]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("ok: version"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(
        &bad,
        shipped.replace("\"/uploads/*\"\n", "\"/uploads/../*\"\n").replace("127.0.0.0/8", "127.0.0.1/8"),
    )
    .unwrap();
    let out = keysmith(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("templates[0].upload.dir_scope[0]"), "{err}");
    assert!(err.contains("templates[0].restrict.whitelist_ip_ranges[0]"), "{err}");
    assert!(err.contains("127.0.0.0/8"), "names the canonical range: {err}");

    std::fs::write(&bad, shipped.replace("dir_scope =", "dir_scop =")).unwrap();
    let out = keysmith(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("dir_scop"));
    assert_eq!(keysmith(&["check", "/nonexistent.toml"]).status.code(), Some(1));
}

#[test]
fn keygen_mint_and_verify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let out = keysmith(&["keygen", "--keys", keys.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("kid "));

    let jwks = dir.path().join("jwks.json");
    let ring = keysmith::Keyring::load_dir(&keys).unwrap();
    std::fs::write(&jwks, serde_json::to_vec(&ring.jwks()).unwrap()).unwrap();

    let config = shipped_config();
    let (config, keys_s, jwks_s) = (config.to_str().unwrap(), keys.to_str().unwrap(), jwks.to_str().unwrap());
    // The shipped templates are localhost-only: offline minting must say which caller it is.
    let refused =
        keysmith(&["mint", "--project", "demo", "--template", "gallery-read", "--config", config, "--keys", keys_s]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("caller_ip_required"));

    let mint = |extra: &[&str]| {
        let mut args =
            vec!["mint", "--project", "demo", "--template", "gallery-read", "--config", config, "--keys", keys_s];
        args.extend_from_slice(&["--ip", "127.0.0.1"]);
        args.extend_from_slice(extra);
        keysmith(&args)
    };
    let wider = mint(&["--directory-scope", "/private/*"]);
    assert_eq!(wider.status.code(), Some(1));
    assert!(text(&wider.stderr).contains("scope_not_in_template"), "{}", text(&wider.stderr));
    let minted = mint(&["--directory-scope", "/public/*"]);
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3);

    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", token.as_str(), "--jwks", jwks_s, "--config", config, "--audience", "demo"];
        args.extend_from_slice(extra);
        keysmith(&args)
    };
    let ok = verify(&["--permission", "OBJECTS_LIST", "--dir", "/public/cats", "--ip", "127.0.0.1"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stdout));
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["decision"]["allowed"], true);
    assert_eq!(report["claims"]["sub"], "gallery-read");

    let denied = verify(&["--permission", "OBJECTS_LIST", "--dir", "/private", "--ip", "127.0.0.1"]);
    assert_eq!(denied.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(report["decision"]["code"], "outside_scope");

    let wrong_aud = keysmith(&["verify", &token, "--jwks", jwks_s, "--config", config, "--audience", "other"]);
    assert_eq!(wrong_aud.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<Value>(&wrong_aud.stdout).unwrap()["code"], "wrong_audience");

    let garbage = keysmith(&["verify", "not.a.token", "--jwks", jwks_s, "--issuer", "x", "--audience", "demo"]);
    assert_eq!(garbage.status.code(), Some(1));

    // Usage errors exit 2.
    assert_eq!(keysmith(&["verify", &token]).status.code(), Some(2), "missing --jwks");
    assert_eq!(
        keysmith(&["verify", &token, "--jwks", jwks_s, "--dir", "/x"]).status.code(),
        Some(2),
        "--dir without --permission"
    );
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
    )
    .unwrap();
    let weak = keysmith(&["verify", &token, "--jwks", jwks_s, "--issuer", "x"]);
    assert_eq!(weak.status.code(), Some(2), "a weak JWKS is refused at load");
    assert!(text(&weak.stderr).contains("weak"));
}

/// Reads the child's stderr on a thread and hands lines over a channel.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill").args([name, &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
}

#[cfg(unix)]
#[test]
fn serve_generates_a_dev_key_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let config = dir.path().join("config.toml");
    // Version 1, whatever the working tree's config is at: the edits below bump it.
    let shipped = with_version(&std::fs::read_to_string(shipped_config()).unwrap(), 1);
    std::fs::write(&config, &shipped).unwrap();
    let mut child = KillOnDrop(
        common::keysmith()
            .args(["serve", "--config", config.to_str().unwrap(), "--keys", keys.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0"])
            .env("KEYSMITH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = stderr_lines(&mut child);
    let mut log: Vec<String> = Vec::new();
    let wait_for = |needle: &str, log: &mut Vec<String>| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            assert!(!line.contains('\u{1b}'), "no terminal colours in a piped log: {line}");
            log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!("no log line with {needle:?} in:\n{}", log.join("\n"));
    };
    let listening = wait_for("listening on http://", &mut log);
    let addr = listening.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(log.iter().any(|l| l.contains("GENERATED A NEW DEVELOPMENT KEY")), "announced loudly");
    assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 1);

    let (status, body) = http_get(&addr, "/demo/v1/key/upload-widget");
    assert_eq!(status, 200, "{body}");
    let minted: Value = serde_json::from_str(&body).unwrap();
    let token = minted["key"].as_str().unwrap().to_owned();
    let jwks_url = format!("http://{addr}/.well-known/jwks.json");
    let config_s = config.to_str().unwrap();
    // No --audience: the config has one project, which becomes the audience.
    let verified = keysmith(&[
        "verify",
        &token,
        "--jwks",
        &jwks_url,
        "--config",
        config_s,
        "--permission",
        "FILE_UPLOAD",
        "--dir",
        "/uploads/2026",
        "--ip",
        "127.0.0.1",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified.stdout));
    let jti = serde_json::from_slice::<Value>(&verified.stdout).unwrap()["claims"]["jti"].as_str().unwrap().to_owned();

    // SIGHUP: a good edit (template deactivated, version 2) is taken without a restart.
    let edited = with_version(&shipped, 2).replacen("active = true", "active = false", 1);
    assert_ne!(edited, shipped);
    std::fs::write(&config, &edited).unwrap();
    signal(&child, "-HUP");
    wait_for("reloaded", &mut log);
    let (status, body) = http_get(&addr, "/demo/v1/key/upload-widget");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("template_inactive"));

    // A bad edit is rejected with its TOML path in the log; version 2 keeps serving.
    std::fs::write(&config, with_version(&edited, 3).replace("dir_scope =", "dir_scop =")).unwrap();
    signal(&child, "-HUP");
    let rejected = wait_for("reload rejected", &mut log);
    // The unknown key is one of the reason's problems (issue 9): on the line, or listed after it.
    if !rejected.contains("dir_scop") {
        wait_for("templates[0].upload.dir_scop: unknown setting", &mut log);
    }
    let (_, health) = http_get(&addr, "/healthz");
    assert_eq!(serde_json::from_str::<Value>(&health).unwrap()["config_version"], 2);

    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    log.extend(lines.iter()); // ends at EOF: the child has exited
    let log = log.join("\n");
    // Mints are logged by jti; no key ever reaches the log.
    assert!(log.contains(&jti), "mint is logged by jti:\n{log}");
    assert!(!log.contains(&token), "the key itself is never logged");
    assert!(!log.contains(token.rsplit('.').next().unwrap()));
}

/// A minimal HTTP/1.1 GET over a raw socket, so the test needs no client crate's blocking API.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

#[test]
fn check_prints_the_access_change_summary() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.toml");
    let new = dir.path().join("new.toml");
    let base = r#"version = 4
issuer = "https://keys.test"
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
expiration_duration = 600
[templates.upload]
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
[[templates]]
id = "old-gallery"
project = "demo"
permissions = ["OBJECTS_LIST"]
[[api_keys]]
id = "ak_batch"
description = "batch"
permissions = ["FILE_UPLOAD"]
projects = ["demo"]
"#;
    std::fs::write(&old, base).unwrap();
    let changed = base
        .replace("version = 4", "version = 5")
        .replace(r#"permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]"#, r#"permissions = ["FILE_UPLOAD", "FILE_DELETE"]"#)
        .replace("expiration_duration = 600", "expiration_duration = 90000")
        .replace(r#"whitelist_ip_ranges = ["10.0.0.0/8"]"#, r#"whitelist_ip_ranges = ["0.0.0.0/0"]"#)
        .replace("[[templates]]\nid = \"old-gallery\"\nproject = \"demo\"\npermissions = [\"OBJECTS_LIST\"]\n", "")
        .replace("projects = [\"demo\"]\n", "projects = [\"demo\"]\nactive = false\n");
    std::fs::write(&new, &changed).unwrap();
    let out = keysmith(&["check", new.to_str().unwrap(), "--previous", old.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout).replace(dir.path().to_str().unwrap(), "DIR");
    let expected = "\
DIR/new.toml: ok: version 5, 1 project(s), 1 template(s) (1 active), 1 API key(s)
access changes since DIR/old.toml (version 4 -> 5), 3 widening access:
    template old-gallery: template removed: project demo
  ! template widget: permissions gained: FILE_DELETE  [widens access]
    template widget: permissions lost: OBJECTS_LIST
  ! template widget: ip ranges widened: [10.0.0.0/8] -> [0.0.0.0/0]  [widens access]
  ! template widget: expiration longer: 600 s -> 90000 s  [widens access]
    api key ak_batch: api key deactivated: batch
warning[public_delete] templates[0].permissions: public template \"widget\" grants deletion (FILE_DELETE); require an API key (access = \"api_key\") or drop it
warning[anywhere_with_writes] templates[0].restrict.whitelist_ip_ranges: template \"widget\" grants writes (FILE_UPLOAD, FILE_DELETE) to callers from any address; restrict whitelist_ip_ranges
warning[long_expiration] templates[0].expiration_duration: template \"widget\" mints keys valid for 90000 s, more than a day
";
    assert_eq!(stdout, expected);

    // The same edit under --strict fails on its lints; without a version bump it fails too.
    let strict = keysmith(&["check", new.to_str().unwrap(), "--previous", old.to_str().unwrap(), "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(text(&strict.stdout).contains("error[public_delete]"));
    std::fs::write(&new, changed.replace("version = 5", "version = 4")).unwrap();
    let same = keysmith(&["check", new.to_str().unwrap(), "--previous", old.to_str().unwrap(), "--format", "json"]);
    assert_eq!(same.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!((report["version_increased"].as_bool(), report["ok"].as_bool()), (Some(false), Some(false)));
    assert_eq!(report["widening"], true);
    assert_eq!(report["changes"].as_array().unwrap().len(), 6);
    assert_eq!(keysmith(&["check", new.to_str().unwrap(), "--previous", "/nonexistent.toml"]).status.code(), Some(2));
}

/// Starts `keysmith serve` with extra arguments and environment; returns the child, its address
/// and the log lines seen so far, or the exit output if it stopped.
fn start_serve(args: &[&str], env: &[(&str, &str)]) -> Result<(KillOnDrop, String), String> {
    let mut cmd = common::keysmith();
    cmd.arg("serve").args(args).args(["--listen", "127.0.0.1:0"]).env("KEYSMITH_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = KillOnDrop(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let lines = stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    return Ok((child, rest.split_whitespace().next().unwrap().to_owned()));
                }
                seen.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) => {}
        }
    }
    drop(child);
    Err(seen.join("\n"))
}

#[cfg(unix)]
#[test]
fn signing_keys_injected_by_the_platform() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_config();
    let keys = dir.path().join("keys");
    let (pem_path, kid) = keysmith::keys::generate_key_file(&dir.path().join("secret"), chrono::Utc::now()).unwrap();
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let config = config.to_str().unwrap();
    let keys_s = keys.to_str().unwrap();

    // From the environment: that key signs, and no development key is generated.
    let (mut child, addr) =
        start_serve(&["--config", config, "--keys", keys_s], &[("KEYSMITH_SIGNING_KEY", pem.as_str())]).unwrap();
    let (_, status) = http_get(&addr, "/v1/status");
    assert_eq!(serde_json::from_str::<Value>(&status).unwrap()["signing_kid"], kid.as_str());
    assert!(!keys.exists(), "no key was generated");
    child.kill().unwrap();
    child.wait().unwrap();

    // From a file (a mounted Secret): the same; a file others can read is refused.
    let (mut child, addr) =
        start_serve(&["--config", config, "--signing-key-file", pem_path.to_str().unwrap()], &[]).unwrap();
    let (_, jwks) = http_get(&addr, "/.well-known/jwks.json");
    assert!(jwks.contains(&kid));
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::set_permissions(&pem_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused =
        start_serve(&["--config", config, "--signing-key-file", pem_path.to_str().unwrap()], &[]).unwrap_err();
    assert!(refused.contains("chmod 600"), "{refused}");
}

#[test]
fn keygen_joins_the_lifecycle_as_next() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let config = shipped_config();
    let run = |args: &[&str]| {
        common::keysmith().args(args).arg("--keys").arg(&keys).arg("--config").arg(&config).output().unwrap()
    };
    let out = common::keysmith().args(["keygen", "--keys"]).arg(&keys).output().unwrap();
    assert!(out.status.success());
    let first = run(&["keys", "rotate"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("next"), "{}", text(&first.stdout));
    let out = common::keysmith().args(["keygen", "--keys"]).arg(&keys).output().unwrap();
    assert!(text(&out.stdout).contains("generated next key"), "{}", text(&out.stdout));
    let list = text(&run(&["keys", "list"]).stdout);
    assert_eq!(list.lines().filter(|l| l.contains(" next ")).count(), 2, "{list}");
    assert_eq!(list.lines().filter(|l| l.contains(" active ")).count(), 1, "{list}");
}

/// A relative `server.audit_log` that cannot be opened (under systemd, the config directory is
/// read-only) stops startup with an error that names the audit log, not `config.toml`.
#[test]
fn serve_names_the_audit_log_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    std::fs::write(&config, shipped.replacen("[server]\n", "[server]\naudit_log = \"missing-dir/audit.jsonl\"\n", 1))
        .unwrap();
    let keys = dir.path().join("keys");
    let refused = start_serve(&["--config", config.to_str().unwrap(), "--keys", keys.to_str().unwrap()], &[])
        .expect_err("an audit log that cannot be opened stops startup");
    let audit = dir.path().join("missing-dir/audit.jsonl");
    let line = refused.lines().find(|l| l.contains("error")).unwrap_or_default();
    assert!(line.contains("server.audit_log") && line.contains(audit.to_str().unwrap()), "{refused}");
    assert!(!line.contains("config.toml:"), "blames the config file: {refused}");
}

/// Run as another user than the key directory's owner (root running `keys rotate` in the
/// service's directory), keysmith would write a key file (mode 0600, owned by the writer) that
/// the service cannot read: it refuses and says which user to run as.
#[cfg(unix)]
#[test]
fn key_files_are_written_only_as_the_key_directorys_owner() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let me = std::fs::metadata(dir.path()).unwrap().uid();
    let service_user = me + 10_001;
    // Needs root, as the deployment tests do (`scripts/test-deps.sh`, CI).
    std::os::unix::fs::chown(&keys, Some(service_user), None).expect("chown: the test runs as root");
    let config = shipped_config();
    for args in [&["keygen"][..], &["keys", "rotate", "--config", config.to_str().unwrap()][..]] {
        let out = common::keysmith().args(args).arg("--keys").arg(&keys).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(err.contains(&format!("uid {service_user}")) && err.contains("sudo -u"), "{args:?}: {err}");
        assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 0, "{args:?} wrote nothing");
    }
}

/// Root signing with the service's keys (`apikey create`, `mint` on a host where the config is
/// root's) checks the key directory as its owner would: the owner's files are trusted, a file
/// planted by a third user is not, and nothing is written.
#[cfg(unix)]
#[test]
fn root_signs_with_keys_trusted_as_the_directorys_owner_trusts_them() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let keys_s = keys.to_str().unwrap();
    let out = keysmith(&["keygen", "--keys", keys_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let me = std::fs::metadata(dir.path()).unwrap().uid();
    let service_user = me + 10_001;
    let chown_all = |uid: u32| {
        std::os::unix::fs::chown(&keys, Some(uid), None).expect("chown: the test runs as root");
        for entry in std::fs::read_dir(&keys).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), None).unwrap();
        }
    };
    chown_all(service_user);
    let config = shipped_config();
    let config = config.to_str().unwrap();
    let mint = [
        "mint",
        "--project",
        "demo",
        "--template",
        "gallery-read",
        "--config",
        config,
        "--keys",
        keys_s,
        "--ip",
        "127.0.0.1",
    ];
    let out = keysmith(&mint);
    assert!(out.status.success(), "root signs with the service user's keys: {}", text(&out.stderr));
    // A key file of a third user in the service's directory: the service would refuse it.
    let planted = keys.join("planted.pem");
    std::fs::copy(
        std::fs::read_dir(&keys)
            .unwrap()
            .find_map(|e| {
                let path = e.unwrap().path();
                path.extension().is_some_and(|x| x == "pem").then_some(path)
            })
            .unwrap(),
        &planted,
    )
    .unwrap();
    std::os::unix::fs::chown(&planted, Some(service_user + 1), None).unwrap();
    let out = keysmith(&mint);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("uid {}", service_user + 1)), "{}", text(&out.stderr));
}

/// `apikey deactivate` no longer asks for a SIGHUP: the service watches the config.
#[test]
fn apikey_deactivate_says_the_service_picks_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let shipped = std::fs::read_to_string(shipped_config()).unwrap();
    let record = "\n[[api_keys]]\nid = \"ak_batch\"\ndescription = \"batch\"\npermissions = [\"FILE_UPLOAD\"]\nprojects = [\"demo\"]\n";
    std::fs::write(&config, shipped + record).unwrap();
    let out = keysmith(&["apikey", "deactivate", "--config", config.to_str().unwrap(), "ak_batch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("deactivated: ak_batch"), "{said}");
    assert!(!said.contains("SIGHUP"), "{said}");
    assert!(said.contains("picks"), "{said}");
}

/// `keysmith template revoke-before` voids keys minted earlier, for `verify --revocations`
/// too; keys minted afterwards pass; a cut-off in the future is refused.
#[test]
fn template_revoke_before_voids_keys_minted_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    assert!(keysmith(&["keygen", "--keys", keys.to_str().unwrap()]).status.success());
    let jwks = dir.path().join("jwks.json");
    let ring = keysmith::Keyring::load_dir(&keys).unwrap();
    std::fs::write(&jwks, serde_json::to_vec(&ring.jwks()).unwrap()).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::copy(shipped_config(), &config).unwrap();
    let (config_s, keys_s, jwks_s) = (config.to_str().unwrap(), keys.to_str().unwrap(), jwks.to_str().unwrap());
    let mint = || {
        let out = keysmith(&[
            "mint",
            "--project",
            "demo",
            "--template",
            "gallery-read",
            "--config",
            config_s,
            "--keys",
            keys_s,
            "--ip",
            "127.0.0.1",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    };
    let list = dir.path().join("revocations.jwt");
    let verify = |token: &str| {
        let issuer = keysmith::Issuer::load(&config, &keys).unwrap();
        std::fs::write(&list, issuer.revocation_list(std::time::SystemTime::now()).unwrap().token).unwrap();
        let out = keysmith(&[
            "verify",
            token,
            "--jwks",
            jwks_s,
            "--config",
            config_s,
            "--audience",
            "demo",
            "--revocations",
            list.to_str().unwrap(),
        ]);
        (out.status.code(), serde_json::from_slice::<Value>(&out.stdout).unwrap())
    };
    let before = mint();
    assert_eq!(verify(&before).0, Some(0));
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let future =
        keysmith(&["template", "revoke-before", "gallery-read", "--config", config_s, "--at", "2999-01-01T00:00:00Z"]);
    assert_eq!(future.status.code(), Some(1));
    assert!(text(&future.stderr).contains("in the future"), "{}", text(&future.stderr));
    let unknown = keysmith(&["template", "revoke-before", "nope", "--config", config_s]);
    assert_eq!(unknown.status.code(), Some(1));

    let old_text = std::fs::read_to_string(&config).unwrap();
    let out = keysmith(&["template", "revoke-before", "gallery-read", "--config", config_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new_text = std::fs::read_to_string(&config).unwrap();
    assert!(new_text.contains("revoke_issued_before = "), "{new_text}");
    assert!(new_text.contains("# Bump on every change."), "comments are kept");
    let version = |t: &str| keysmith::Config::from_toml(t, dir.path()).unwrap().version;
    assert_eq!(version(&new_text), version(&old_text) + 1);

    let (code, report) = verify(&before);
    assert_eq!((code, report["code"].as_str()), (Some(1), Some("revoked")), "{report}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(verify(&mint()).0, Some(0), "a key minted after the cut-off passes");
}
