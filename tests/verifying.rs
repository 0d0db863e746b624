//! `docs/verifying.md` works as written: every code block marked `file=…` is taken from the page,
//! written to disk and run against a live `keysmith serve` on a loopback port. Node `jose`,
//! `express-oauth2-jwt-bearer`, PyJWT, authlib and go-jose must each accept a key the server
//! minted (and print its claims) and refuse a key for another project, an expired key, a key whose
//! `typ` is not `at+jwt`, a key without `typ` and an unsigned token.
//!
//! The runtimes and packages come from `scripts/test-deps.sh`; a missing one fails the test with
//! a message naming it, never skips it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://keys.verifying.test";
const AUDIENCE: &str = "media";
const DEPS: &str = "run `scripts/test-deps.sh` (the README's test command does)";

/// Two projects: a key minted for `billing` must not open `media`.
const CONFIG: &str = r#"
version = 4
issuer = "https://keys.verifying.test"
[projects.media]
[projects.billing]
[[templates]]
id = "uploader"
project = "media"
permissions = ["FILE_UPLOAD", "OBJECTS_LIST"]
expiration_duration = 300
[templates.upload]
dir_scope = "/in/*"
[[templates]]
id = "invoices"
project = "billing"
permissions = ["OBJECTS_LIST"]
expiration_duration = 300
"#;

/// The signing key's seed: fixed, so the test can forge validly signed keys the issuer would
/// never mint (expired, another `typ`).
const SEED: [u8; 32] = [0x5a; 32];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The code blocks of `docs/verifying.md` whose info string names a `file=`, by file name.
fn snippets() -> BTreeMap<String, String> {
    let page = std::fs::read_to_string(root().join("docs/verifying.md")).expect("docs/verifying.md exists");
    let mut snippets = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in page.lines() {
        match current.as_mut() {
            Some((_, body)) if line.trim_end() != "```" => {
                body.push_str(line);
                body.push('\n');
            }
            Some(_) => {
                let (name, body) = current.take().unwrap();
                assert!(snippets.insert(name.clone(), body).is_none(), "two snippets named {name}");
            }
            None => {
                if let Some(name) = line
                    .strip_prefix("```")
                    .and_then(|info| info.split_whitespace().find_map(|w| w.strip_prefix("file=")))
                {
                    current = Some((name.to_owned(), String::new()));
                }
            }
        }
    }
    assert!(current.is_none(), "docs/verifying.md: an unclosed code block");
    snippets
}

/// Writes one snippet of the page into `dir` and returns its path.
fn write_snippet(dir: &Path, name: &str) -> PathBuf {
    let body = snippets().remove(name).unwrap_or_else(|| panic!("docs/verifying.md has no block `file={name}`"));
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// A `keysmith serve` child on a loopback port, stopped when dropped.
struct Keysmith {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Keysmith {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keys a test presents to a snippet.
struct Keys {
    /// Minted by the server for `media`: accepted.
    valid: String,
    /// Signed by the test with the server's key from the valid key's header and claims: accepted,
    /// which shows that the forged keys below are refused for what was changed, not the forging.
    forged: String,
    /// The refused ones: what is wrong with them, words one of which the reason must name, the key.
    refused: Vec<Refused>,
}

/// A key every verifier must refuse.
struct Refused {
    why: &'static str,
    /// The reason given must contain one of these (case-insensitive).
    reason: &'static [&'static str],
    key: String,
}

impl Keysmith {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        let keys = dir.path().join("keys");
        write_private_key(&keys, &SEED);
        let child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
            .arg("serve")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .arg("--keys")
            .arg(&keys)
            .args(["--listen", "127.0.0.1:0", "--watch-ms", "0"])
            .env("KEYSMITH_LOG", "info")
            .env_remove("KEYSMITH_SIGNING_KEY")
            .env_remove("KEYSMITH_SIGNING_KEY_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // From here on, dropping `server` (a failed start included) stops the child.
        let mut server = Self { child, url: String::new(), _dir: dir };
        let lines = drain_lines(server.child.stderr.take().unwrap());
        let mut seen = Vec::new();
        while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                server.url = rest.split_whitespace().next().unwrap().to_owned();
                return server;
            }
            seen.push(line);
        }
        panic!("keysmith serve did not start:\n{}", seen.join("\n"));
    }

    fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.url)
    }

    async fn mint(&self, project: &str, template: &str) -> String {
        let response = reqwest::get(format!("{}/{project}/v1/key/{template}", self.url)).await.unwrap();
        assert_eq!(response.status(), 200);
        let minted: Value = response.json().await.unwrap();
        minted["key"].as_str().unwrap().to_owned()
    }

    /// A key minted for `media`, and the keys every verifier must refuse.
    async fn keys(&self) -> Keys {
        let valid = self.mint(AUDIENCE, "uploader").await;
        let other_audience = self.mint("billing", "invoices").await;
        let (header, claims) = decode(&valid);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let mut expired = claims.clone();
        expired["iat"] = json!(now - 900);
        expired["nbf"] = json!(now - 900);
        expired["exp"] = json!(now - 600);
        let mut wrong_typ = header.clone();
        wrong_typ["typ"] = json!("JWT");
        let mut no_typ = header.clone();
        no_typ.as_object_mut().unwrap().remove("typ");
        let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "at+jwt"})), b64(&claims));
        let refused = |why, reason, key| Refused { why, reason, key };
        Keys {
            forged: sign(&header, &claims),
            refused: vec![
                refused("another audience", &["aud"], other_audience),
                refused("expired", &["exp"], sign(&header, &expired)),
                refused("typ JWT", &["typ"], sign(&wrong_typ, &claims)),
                refused("no typ", &["typ"], sign(&no_typ, &claims)),
                refused("alg none", &["alg", "none"], unsigned),
            ],
            valid,
        }
    }

    /// The environment the snippets read.
    fn env(&self, command: &mut Command) {
        // express-oauth2-jwt-bearer reads these on its own: keep the caller's out.
        for name in ["ISSUER_BASE_URL", "ISSUER", "AUDIENCE", "JWKS_URI", "SECRET", "TOKEN_SIGNING_ALG"] {
            command.env_remove(name);
        }
        command
            .env("KEYSMITH_JWKS_URL", self.jwks_url())
            .env("KEYSMITH_ISSUER", ISSUER)
            .env("KEYSMITH_AUDIENCE", AUDIENCE);
    }
}

/// Writes `seed` as a PKCS#8 v1 PEM (RFC 8410, what `openssl genpkey -algorithm ed25519` writes),
/// in a `0700` directory with mode `0600`, as keysmith requires.
fn write_private_key(dir: &Path, seed: &[u8; 32]) {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
    let mut der = vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    der.extend_from_slice(seed);
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(der));
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(dir.join("test.pem")).unwrap();
    file.write_all(pem.as_bytes()).unwrap();
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.').map(|p| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()));
    (parts.next().unwrap().unwrap(), parts.next().unwrap().unwrap())
}

/// Signs with the server's own key: a validly signed key the issuer would never mint.
fn sign(header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = ed25519_dalek::SigningKey::from_bytes(&SEED).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Reads lines from a child's pipe on a thread until it closes (so the child never blocks on a
/// full pipe).
fn drain_lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

fn run(command: &mut Command, what: &str) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {what} ({e}): {DEPS}"))
}

/// The claims every snippet must print for the valid key.
fn assert_claims(out: &Output, valid: &str, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} refused a valid key (missing package? {DEPS}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{what} accepted a minted key: {}", stdout.trim());
    let printed: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{what} printed {stdout:?}: {e}"));
    let (_, claims) = decode(valid);
    assert_eq!(printed, claims, "{what} printed other claims than the key holds");
    assert_eq!(printed["aud"], AUDIENCE);
    assert_eq!(printed["iss"], ISSUER);
}

/// Runs a command-line snippet (`command` plus the key) on every key.
fn check_program(server: &Keysmith, keys: &Keys, what: &str, command: impl Fn() -> Command) {
    let with_key = |key: &str| {
        let mut cmd = command();
        server.env(&mut cmd);
        run(cmd.arg(key), what)
    };
    assert_claims(&with_key(&keys.valid), &keys.valid, what);
    assert_claims(&with_key(&keys.forged), &keys.forged, what);
    for Refused { why, reason, key } in &keys.refused {
        let out = with_key(key);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what} did not refuse a key ({why}):\n{stderr}");
        // A refusal the snippet reports, for the right reason; not a crash that happens to exit 1.
        let refusal = stderr.lines().find_map(|l| l.strip_prefix("refused: ")).unwrap_or_else(|| {
            panic!("{what} failed on a key ({why}) without refusing it:\n{stderr}");
        });
        assert!(
            reason.iter().any(|word| refusal.to_lowercase().contains(word)),
            "{what} refused a key ({why}) for another reason: {refusal}"
        );
        println!("{what} refused a key ({why}): {refusal}");
    }
}

fn node_dir() -> tempfile::TempDir {
    let modules = root().join("tests/interop/node_modules");
    for package in ["jose", "express", "express-oauth2-jwt-bearer"] {
        assert!(
            modules.join(package).join("package.json").is_file(),
            "tests/interop/node_modules/{package} is missing: {DEPS}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    dir
}

#[test]
fn every_snippet_on_the_page_is_executed() {
    // Each name here has its test below; a new block on the page needs one too.
    let names: Vec<String> = snippets().into_keys().collect();
    assert_eq!(
        names,
        ["verify-express.mjs", "verify-go-jose.go", "verify-jose.mjs", "verify_authlib.py", "verify_pyjwt.py"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn node_jose_snippet_accepts_a_minted_key_and_refuses_the_rest() {
    let server = Keysmith::start();
    let keys = server.keys().await;
    let dir = node_dir();
    let script = write_snippet(dir.path(), "verify-jose.mjs");
    check_program(&server, &keys, "node jose", || {
        let mut cmd = Command::new("node");
        cmd.arg(&script);
        cmd
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn express_oauth2_jwt_bearer_snippet_accepts_a_minted_key_and_refuses_the_rest() {
    struct Stop(Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = Keysmith::start();
    let keys = server.keys().await;
    let dir = node_dir();
    let script = write_snippet(dir.path(), "verify-express.mjs");
    let mut cmd = Command::new("node");
    server.env(&mut cmd);
    let mut app = Stop(
        cmd.arg(&script)
            .env("PORT", "0")
            .env("NODE_ENV", "production")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): {DEPS}")),
    );
    let stdout = drain_lines(app.0.stdout.take().unwrap());
    let stderr = drain_lines(app.0.stderr.take().unwrap());
    let port = match stdout.recv_timeout(Duration::from_secs(20)) {
        Ok(line) => line.strip_prefix("listening on ").unwrap_or_else(|| panic!("express printed {line:?}")).to_owned(),
        Err(_) => {
            panic!("the express app did not start ({DEPS}):\n{}", stderr.try_iter().collect::<Vec<_>>().join("\n"))
        }
    };
    let client = reqwest::Client::new();
    let whoami = |key: &str| client.get(format!("http://127.0.0.1:{port}/whoami")).bearer_auth(key).send();

    let response = whoami(&keys.valid).await.unwrap();
    assert_eq!(response.status(), 200);
    let printed: Value = response.json().await.unwrap();
    println!("express accepted a minted key: {printed}");
    assert_eq!(printed, decode(&keys.valid).1);
    let response = whoami(&keys.forged).await.unwrap();
    assert_eq!(response.status(), 200, "the forged control key");
    for Refused { why, reason, key } in &keys.refused {
        let response = whoami(key).await.unwrap();
        assert_eq!(response.status(), 401, "express did not refuse a key ({why})");
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{why}: {body}");
        let message = body["message"].as_str().unwrap().to_lowercase();
        assert!(
            reason.iter().any(|word| message.contains(word)),
            "express refused a key ({why}) for another reason: {body}"
        );
        println!("express refused a key ({why}): {body}");
    }
    let response = client.get(format!("http://127.0.0.1:{port}/whoami")).send().await.unwrap();
    assert_eq!(response.status(), 401, "no key at all");
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_snippet_accepts_a_minted_key_and_refuses_the_rest() {
    let server = Keysmith::start();
    let keys = server.keys().await;
    let dir = tempfile::tempdir().unwrap();
    let script = write_snippet(dir.path(), "verify_pyjwt.py");
    check_program(&server, &keys, "PyJWT", || {
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        cmd
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn authlib_snippet_accepts_a_minted_key_and_refuses_the_rest() {
    let server = Keysmith::start();
    let keys = server.keys().await;
    let dir = tempfile::tempdir().unwrap();
    let script = write_snippet(dir.path(), "verify_authlib.py");
    check_program(&server, &keys, "authlib", || {
        let mut cmd = Command::new("python3");
        cmd.arg(&script);
        cmd
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn go_jose_snippet_accepts_a_minted_key_and_refuses_the_rest() {
    let server = Keysmith::start();
    let keys = server.keys().await;
    let dir = tempfile::tempdir().unwrap();
    write_snippet(dir.path(), "verify-go-jose.go");
    // The page's command, as written: GOPATH mode against Debian's go-jose (no module download),
    // with the key in `KEY`. Only the build cache is the test's own.
    let page = std::fs::read_to_string(root().join("docs/verifying.md")).unwrap();
    let documented: Vec<&str> = page.lines().filter(|l| l.contains("go run verify-go-jose.go")).collect();
    let line = documented
        .iter()
        .find(|l| l.starts_with("GO111MODULE=off "))
        .unwrap_or_else(|| panic!("docs/verifying.md shows no `GO111MODULE=off … go run` line: {documented:?}"))
        .to_string();
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build");
    let script = format!("KEY=\"$1\"\n{line}");
    check_program(&server, &keys, "go-jose", || {
        let mut cmd = Command::new("bash");
        // `check_program` appends the key: it becomes `$1`.
        cmd.args(["-c", &script, "bash"]).current_dir(dir.path()).env("GOCACHE", &cache).env("GOFLAGS", "");
        cmd
    });
}
