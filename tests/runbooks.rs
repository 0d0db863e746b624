//! The host install of `deploy/systemd/keysmith.service` and the runbooks of
//! `docs/operations.md`, run as written: as root, in a private mount namespace whose `/etc`,
//! `/usr/local` and `/var/lib` are overlays (so the `keysmith` system user, `/etc/keysmith` and
//! `/var/lib/keysmith` exist only there), with the commands taken from the documents and the
//! service started as its unit starts it. Only what a unit test cannot do is left out: systemd
//! itself (`systemctl`) and the waits the runbooks ask for, which are shortened
//! (`jwks_max_age = 1`) or, for a retired key's retire-after time, stood in for by moving its
//! recorded retirement back.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A process (and the mount namespace it holds) killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private mount namespace with overlays on the host directories an install writes to.
struct Host {
    holder: KillOnDrop,
    /// The documented `$K`.
    k: String,
    _dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut holder = Command::new("unshare");
        holder.args(["--mount", "--propagation", "private", "sleep", "infinity"]);
        let holder = KillOnDrop(holder.spawn().expect("unshare (util-linux)"));
        let host =
            Self { holder, k: "--keys /var/lib/keysmith/keys --config /etc/keysmith/config.toml".into(), _dir: dir };
        // The namespace exists once the holder has exec'd `sleep`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{}/exe", host.pid())).map_or(true, |exe| !exe.ends_with("sleep")) {
            assert!(Instant::now() < deadline, "unshare did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (i, dir) in ["/etc", "/usr/local", "/var/lib"].iter().enumerate() {
            let upper = host._dir.path().join(format!("{i}/upper"));
            let work = host._dir.path().join(format!("{i}/work"));
            std::fs::create_dir_all(&upper).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let options = format!("lowerdir={dir},upperdir={},workdir={}", upper.display(), work.display());
            host.ok(&format!("mount -t overlay overlay -o {options} {dir}"), None);
        }
        host
    }

    fn pid(&self) -> u32 {
        self.holder.0.id()
    }

    /// A path as processes in the namespace see it.
    fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.pid()))
    }

    fn command(&self, line: &str, cwd: Option<&Path>) -> Command {
        // Entering a mount namespace resets the working directory to its root: `cd` there
        // (a directory opened before entering would lie on the host's mounts, not the namespace's).
        let cd = cwd.map(|dir| format!("cd '{}' && ", dir.display())).unwrap_or_default();
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.pid().to_string(), "-m", "--", "bash", "-c", &format!("{cd}{line}")]);
        command.env("K", &self.k).env_remove("KEYSMITH_CONFIG").env_remove("KEYSMITH_KEYS");
        command
    }

    fn run(&self, line: &str, cwd: Option<&Path>) -> Output {
        self.command(line, cwd).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs `line` with bash in the namespace; it must succeed. Returns its stdout.
    fn ok(&self, line: &str, cwd: Option<&Path>) -> String {
        let out = self.run(line, cwd);
        assert!(
            out.status.success(),
            "`{line}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A request to the service on `port`: the status and the body as JSON (or `null`).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n").unwrap();
    for (name, value) in headers {
        write!(stream, "{name}: {value}\r\n").unwrap();
    }
    write!(stream, "Content-Length: 0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// Polls `check` against `/v1/status` until it holds (the service picks changes up by itself).
fn until_status(port: u16, what: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = http(port, "GET", "/v1/status", &[]);
        if status == 200 && check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: /v1/status is still {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn until_mint(port: u16, api_key: &str, expected: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = http(port, "GET", "/demo/v1/key/backend-delegated", &[("X-Api-Key", api_key)]);
        if status == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: minting with the permanent key gives {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The install steps in the unit's header (`#   command` lines), in order.
fn unit_install_steps() -> Vec<String> {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/keysmith.service")).unwrap();
    unit.lines()
        .map_while(|l| l.strip_prefix('#'))
        .filter_map(|l| l.strip_prefix("   "))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The commands `docs/operations.md` shows: its code spans and `sh` block lines that start with
/// `sudo -u keysmith` or `keysmith `.
fn documented_commands() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let mut commands = Vec::new();
    let mut prose = String::new();
    let mut in_block = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
        } else if in_block {
            commands.push(line.trim().to_owned());
        } else {
            // A code span may go on over a line break: join the lines with one space.
            prose.push_str(line.trim());
            prose.push(' ');
        }
    }
    commands.extend(prose.split('`').skip(1).step_by(2).map(str::to_owned));
    commands.retain(|c| c.starts_with("sudo -u keysmith ") || c.starts_with("keysmith "));
    commands
}

/// Asserts that `docs/operations.md` shows `command` verbatim, and returns it.
fn documented<'a>(commands: &[String], command: &'a str) -> &'a str {
    assert!(commands.iter().any(|c| c == command), "docs/operations.md no longer shows `{command}`");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn kids_in(list: &str) -> Vec<(String, String)> {
    list.lines()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn host_install_and_runbooks_work_as_written() {
    let uid = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test installs keysmith as root into a private mount namespace: run it as root (CI does)"
    );
    for tool in ["unshare", "nsenter", "sudo", "useradd", "install"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap();
        assert!(found.status.success(), "{tool} is missing: run scripts/test-deps.sh");
    }
    // The overlay hides the namespace's `/etc` changes from the host, not the host's users from
    // the namespace: the unit's `useradd` needs a host without a `keysmith` user.
    let existing = Command::new("id").arg("keysmith").output().unwrap();
    assert!(
        !existing.status.success(),
        "this host already has a `keysmith` user, so the documented `useradd` would fail: run this test on a \
         machine without one (CI is)"
    );
    let commands = documented_commands();
    let host = Host::new();

    // A checkout with the release binary where the unit's header expects it.
    let checkout = tempfile::tempdir().unwrap();
    let c = checkout.path();
    std::fs::create_dir_all(c.join("target/release")).unwrap();
    std::fs::create_dir_all(c.join("deploy/systemd")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_keysmith"), c.join("target/release/keysmith")).unwrap();
    std::fs::copy(repo().join("config.toml"), c.join("config.toml")).unwrap();
    std::fs::copy(repo().join("deploy/systemd/keysmith.service"), c.join("deploy/systemd/keysmith.service")).unwrap();

    // The unit's install steps, as written; systemd is the one part not run here.
    let steps = unit_install_steps();
    assert!(steps.len() >= 8, "the unit's header lists its install steps: {steps:?}");
    for step in steps.iter().filter(|s| !s.starts_with("systemctl")) {
        host.ok(step, Some(c));
    }
    let keys_dir = host.path("/var/lib/keysmith/keys");
    let owner = host.ok("id -u keysmith", None);
    for entry in std::fs::read_dir(&keys_dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta).to_string(), owner.trim(), "the service user's files");
    }

    // "Edit /etc/keysmith/config.toml for your issuer and templates first": a free port, short
    // waits, and the audit log where the systemd section says it goes.
    let port = free_port();
    let config_path = host.path("/etc/keysmith/config.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = config.replacen("listen = \"127.0.0.1:8080\"", &format!("listen = \"127.0.0.1:{port}\""), 1).replacen(
        "[server]\n",
        "jwks_max_age = 1\n\n[server]\naudit_log = \"/var/lib/keysmith/audit.jsonl\"\n",
        1,
    );
    std::fs::write(&config_path, config).unwrap();

    // The service, as its unit starts it: ExecStart as the unit's user.
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/keysmith.service")).unwrap();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    assert!(unit.contains("\nUser=keysmith\n"));
    // `setpriv` execs the service (no parent left behind to outlive the test).
    let mut service =
        host.command(&format!("exec setpriv --reuid keysmith --regid keysmith --init-groups -- {exec}"), None);
    let log = std::fs::File::create(c.join("service.log")).unwrap();
    let _service = KillOnDrop(service.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || http(port, "GET", "/readyz", &[]).0 != 200 {
        assert!(Instant::now() < deadline, "the service did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }

    // "Running the commands on a host": both forms list the keys.
    let list = host.ok(
        documented(
            &commands,
            "sudo -u keysmith keysmith keys list --keys /var/lib/keysmith/keys --config /etc/keysmith/config.toml",
        ),
        None,
    );
    let same = host.ok(
        documented(&commands, "sudo -u keysmith env KEYSMITH_KEYS=/var/lib/keysmith/keys KEYSMITH_CONFIG=/etc/keysmith/config.toml keysmith keys list"),
        None,
    );
    assert_eq!(list, same);
    let states = kids_in(&list);
    assert_eq!(states.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["active", "next"], "{list}");

    // As root, a key command would write files the service cannot read: refused.
    let as_root = host.run("keysmith keys rotate $K", None);
    assert!(!as_root.status.success(), "keys rotate as root must be refused");
    assert!(
        String::from_utf8_lossy(&as_root.stderr).contains("keysmith"),
        "{}",
        String::from_utf8_lossy(&as_root.stderr)
    );

    // Runbook: scheduled rotation.
    let rotate = documented(&commands, "sudo -u keysmith keysmith keys rotate $K");
    std::thread::sleep(Duration::from_millis(1100)); // step 2's wait (`jwks_max_age`), before step 1 here: the install published the next key
    host.ok(rotate, None);
    let after_first = kids_in(&host.ok("sudo -u keysmith keysmith keys list $K", None));
    let (first, _) = after_first.iter().find(|(_, s)| s == "retired").unwrap().clone();
    let (second, _) = after_first.iter().find(|(_, s)| s == "active").unwrap().clone();
    let (third, _) = after_first.iter().find(|(_, s)| s == "next").unwrap().clone();
    // Step 2: wait `jwks_max_age` (`keys rotate` refuses to promote earlier); step 3: rotate again.
    let early = host.run(rotate, None);
    let said = format!("{}{}", String::from_utf8_lossy(&early.stdout), String::from_utf8_lossy(&early.stderr));
    assert!(!early.status.success() && said.contains("wait"), "{said}");
    until_status(port, "step 1 is picked up", |s| s["signing_kid"] == second.as_str());
    std::thread::sleep(Duration::from_millis(1100));
    host.ok(rotate, None);
    until_status(port, "step 3 is picked up", |s| s["signing_kid"] == third.as_str());
    // Step 4, after the retire-after time (retirement + the longest template lifetime + 60 s),
    // stood in for by moving the retirement records back two hours.
    let keyring_path = host.path("/var/lib/keysmith/keys/keyring.toml");
    let keyring = std::fs::read_to_string(&keyring_path).unwrap();
    let earlier = keyring.lines().map(|l| match l.strip_prefix("retired = \"") {
        Some(_) => "retired = \"2000-01-01T00:00:00Z\"".to_owned(),
        None => l.to_owned(),
    });
    std::fs::write(&keyring_path, earlier.collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let listed = host.ok(documented(&commands, "sudo -u keysmith keysmith keys list $K"), None);
    let removable: Vec<&str> = listed.lines().filter(|l| l.contains("(removable)")).collect();
    assert!(removable.iter().any(|l| l.starts_with(&first)), "the first key is removable:\n{listed}");
    host.ok(&documented(&commands, "sudo -u keysmith keysmith keys remove $K KID").replace("KID", &first), None);
    until_status(port, "the removed key leaves the JWKS", |s| {
        !s["kids"].as_array().unwrap().iter().any(|k| k == first.as_str())
    });

    // A permanent key, created on the host as the config's owner (root): signed by the active
    // key, which is then compromised.
    let create = documented(
        &commands,
        "keysmith apikey create --config /etc/keysmith/config.toml --keys /var/lib/keysmith/keys …",
    )
    .replace('…', "--description backend --permissions FILE_UPLOAD,OBJECTS_LIST --project demo");
    let old_secret = host.ok(&create, None).lines().find(|l| l.starts_with("ey")).unwrap().to_owned();
    until_mint(port, &old_secret, 200, "a new permanent key");

    // Runbook: suspected key compromise of the active key (`third`), whose next key has been
    // published for longer than `jwks_max_age`.
    let (next, _) = kids_in(&listed).into_iter().find(|(_, s)| s == "next").unwrap();
    host.ok(documented(&commands, "sudo -u keysmith keysmith keys rotate --force $K"), None);
    until_status(port, "step 1 switches at once", |s| s["signing_kid"] == next.as_str());
    host.ok(
        &documented(&commands, "sudo -u keysmith keysmith keys remove --force $K COMPROMISED_KID")
            .replace("COMPROMISED_KID", &third),
        None,
    );
    let status = until_status(port, "the compromised key leaves the JWKS", |s| {
        !s["kids"].as_array().unwrap().iter().any(|k| k == third.as_str())
    });
    assert_eq!(status["signing_kid"], next.as_str());
    // The permanent key it signed stops verifying with it; reissue and deactivate as the runbook says.
    until_mint(port, &old_secret, 401, "a permanent key signed by the removed key");
    let new_secret = host.ok(&create, None).lines().find(|l| l.starts_with("ey")).unwrap().to_owned();
    until_mint(port, &new_secret, 200, "the reissued permanent key");
    let old_id = host
        .ok("keysmith apikey list --config /etc/keysmith/config.toml", None)
        .lines()
        .find_map(|l| l.split_whitespace().next().filter(|id| id.starts_with("ak_")).map(str::to_owned))
        .unwrap();
    host.ok(&format!("keysmith apikey deactivate --config /etc/keysmith/config.toml {old_id}"), None);
    let listed = host.ok("keysmith apikey list --config /etc/keysmith/config.toml", None);
    let old_line = listed.lines().find(|l| l.starts_with(&old_id)).unwrap();
    assert!(old_line.trim_end().ends_with(" no"), "the old key is deactivated:\n{listed}");

    // Runbook: a bad config edit (the same `version`) is rejected and the last good one serves.
    let installed = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(c.join("config.toml"), installed.replacen("[server]\n", "[server]\nunknown_setting = 1\n", 1))
        .unwrap();
    host.ok("install -m 0644 config.toml /etc/keysmith/config.toml", Some(c));
    let status = until_status(port, "the bad edit is rejected", |s| !s["last_rejected"].is_null());
    assert!(status["last_rejected"]["code"].is_string(), "{status}");
    until_mint(port, &new_secret, 200, "the last good config keeps serving");

    // Runbook: deactivating a leaked permanent key, in the config repository, then deployed.
    std::fs::write(c.join("config.toml"), &installed).unwrap();
    let new_id = host
        .ok("keysmith apikey list --config config.toml", Some(c))
        .lines()
        .rev()
        .find_map(|l| l.split_whitespace().next().filter(|id| id.starts_with("ak_")).map(str::to_owned))
        .unwrap();
    host.ok(
        &documented(&commands, "keysmith apikey deactivate --config config.toml ID").replace("ID", &new_id),
        Some(c),
    );
    host.ok("install -m 0644 config.toml /etc/keysmith/config.toml", Some(c));
    until_mint(port, &new_secret, 401, "the leaked permanent key, once deployed");

    // Runbook: voiding short-lived keys that leaked.
    let (status, minted) = http(port, "GET", "/demo/v1/key/upload-widget", &[]);
    assert_eq!(status, 200, "{minted}");
    let leaked = minted["key"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1100)); // the cut-off is to the second
    host.ok(
        &documented(&commands, "keysmith template revoke-before --config config.toml ID")
            .replace("ID", "upload-widget"),
        Some(c),
    );
    host.ok("install -m 0644 config.toml /etc/keysmith/config.toml", Some(c));
    let verify = format!(
        "keysmith verify {leaked} --jwks http://127.0.0.1:{port}/.well-known/jwks.json \
         --revocations http://127.0.0.1:{port}/v1/revocations --config /etc/keysmith/config.toml"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = host.run(&verify, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() && text.contains("\"revoked\"") {
            break;
        }
        assert!(Instant::now() < deadline, "a key minted before the cut-off still verifies: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The audit log is where the systemd section says.
    assert!(host.path("/var/lib/keysmith/audit.jsonl").exists() || !unit.contains("audit"), "no audit log");
}
