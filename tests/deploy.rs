//! What `deploy/` and the `Containerfile` ship actually works: the image builds (Podman, from a
//! locally assembled base, since base images cannot be pulled here) and its filesystem alone
//! runs the service; the Kubernetes manifests (and the Kubernetes examples of `docs/`) match
//! the Kubernetes schemas, the manifests leave the ConfigMap and Secret to the commands in their
//! header, and the documented gate sidecar listens where its readiness probe looks; the systemd unit passes
//! `systemd-analyze verify` and its install steps create everything it uses.
//!
//! Tools come from `scripts/test-deps.sh`; a missing one fails the test, it never skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool; fails (never skips) when it is not installed.
fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {program}: {e}; run `scripts/test-deps.sh` (the README's test command does)"),
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shared libraries `binary` loads (from `ldd`), as absolute paths on this host.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = ok(&run("ldd", &[binary.to_str().unwrap()], None), "ldd");
    out.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/'))).map(PathBuf::from).collect()
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_owned())
}

/// Builds the image from the shipped `Containerfile` with Podman (its own `vfs` store in a
/// temporary directory), on a base assembled here from `scratch` and the C libraries the binary
/// loads (what distroless `cc` provides), exports the image's filesystem and runs the image's
/// entrypoint, user and environment in it with `chroot`, with the shipped config and a key
/// directory mounted where the image expects them. A key minted over HTTP proves the image
/// carries everything the service needs.
#[cfg(target_os = "linux")]
#[test]
fn container_image_runs_the_service_from_its_own_filesystem() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let binary = Path::new(env!("CARGO_BIN_EXE_keysmith"));
    let podman = |args: &[&str], cwd: Option<&Path>| {
        let store = [
            "--root",
            w.join("storage").to_str().unwrap(),
            "--runroot",
            w.join("run").to_str().unwrap(),
            "--storage-driver",
            "vfs",
        ]
        .map(str::to_owned);
        let mut all: Vec<&str> = store.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let out = run("podman", &all, cwd);
        ok(&out, &format!("podman {}", args.join(" ")))
    };

    // The base: an empty image with the binary's C libraries.
    let base = w.join("base");
    for lib in shared_libraries(binary) {
        let target = base.join("rootfs").join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&lib, &target).unwrap(); // follows symlinks: the image gets the real file
    }
    std::fs::write(base.join("Containerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
    podman(&["build", "--quiet", "--tag", "localhost/keysmith-test-base:latest", "."], Some(&base));

    // The build context as in a checkout after `cargo build --release`, with the shipped
    // Containerfile and .dockerignore (which must let the binary through).
    let context = w.join("context");
    std::fs::create_dir_all(context.join("target/release")).unwrap();
    std::fs::copy(binary, context.join("target/release/keysmith")).unwrap();
    std::fs::write(context.join("target/release/build-junk"), "not for the image").unwrap();
    for file in ["Containerfile", ".dockerignore"] {
        std::fs::copy(repo().join(file), context.join(file)).unwrap();
    }
    podman(
        &[
            "build",
            "--quiet",
            "--build-arg",
            "BASE=localhost/keysmith-test-base:latest",
            "--tag",
            "localhost/keysmith:test",
            "--file",
            "Containerfile",
            ".",
        ],
        Some(&context),
    );
    let config: serde_json::Value = serde_json::from_str(&podman(
        &["image", "inspect", "--format", "{{json .Config}}", "localhost/keysmith:test"],
        None,
    ))
    .unwrap();
    let user = config["User"].as_str().unwrap().to_owned();
    let uid: u32 = user.split(':').next().unwrap().parse().expect("a numeric user, for runAsNonRoot");
    assert_ne!(uid, 0, "the image runs as a non-root user");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
    };
    let entrypoint = strings(&config["Entrypoint"]);
    let cmd = strings(&config["Cmd"]);
    let env = strings(&config["Env"]);
    let env_value = |name: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {env:?}"))
            .to_owned()
    };

    // The image's filesystem, and nothing else.
    let container = podman(&["create", "localhost/keysmith:test"], None).trim().to_owned();
    let tar = w.join("image.tar");
    podman(&["export", "--output", tar.to_str().unwrap(), &container], None);
    let rootfs = w.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    ok(&run("tar", &["-xf", tar.to_str().unwrap(), "-C", rootfs.to_str().unwrap()], None), "tar");
    assert!(!rootfs.join("target").exists() && !rootfs.join("usr/local/bin/build-junk").exists());

    // The mounts: the shipped config (read-only, root's) and a key directory the user owns.
    let config_path = env_value("KEYSMITH_CONFIG");
    let keys_path = env_value("KEYSMITH_KEYS");
    let mounted_config = rootfs.join(config_path.trim_start_matches('/'));
    std::fs::create_dir_all(mounted_config.parent().unwrap()).unwrap();
    std::fs::copy(repo().join("config.toml"), &mounted_config).unwrap();
    let keys = rootfs.join(keys_path.trim_start_matches('/'));
    std::fs::create_dir_all(&keys).unwrap();
    ok(&run("chown", &[&user, keys.to_str().unwrap()], None), "chown");
    ok(&run("chmod", &["0700", keys.to_str().unwrap()], None), "chmod");

    let mut child = Command::new("chroot");
    child.arg(format!("--userspec={user}")).arg(&rootfs).args(&entrypoint).args(&cmd);
    child.args(["--listen", "127.0.0.1:0"]).env_clear().envs(env.iter().filter_map(|e| e.split_once('=')));
    let child = child.stdout(Stdio::null()).stderr(Stdio::piped()).spawn();
    let mut child = KillOnDrop(child.unwrap_or_else(|e| panic!("cannot run chroot: {e}")));
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    let addr = loop {
        assert!(Instant::now() < deadline, "the service did not start from the image:\n{}", log.join("\n"));
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    break rest.split_whitespace().next().unwrap().to_owned();
                }
                log.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the service stopped:\n{}", log.join("\n"))
            }
            Err(_) => {}
        }
    };
    let (status, body) = http_get(&addr, "/demo/v1/key/upload-widget");
    assert_eq!(status, 200, "{body}");
    let minted: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(minted["status"], "success");
    let (status, jwks) = http_get(&addr, "/.well-known/jwks.json");
    assert_eq!(status, 200);
    assert!(jwks.contains("Ed25519"));
}

/// The YAML documents of a manifest: `kind` and `metadata.name` of each (Python's PyYAML, which
/// `kubernetes-validate` brings).
fn manifest_kinds(file: &Path) -> Vec<(String, String)> {
    let script = "import sys, yaml\nfor d in yaml.safe_load_all(open(sys.argv[1])):\n    \
                  d and print(d['kind'], d['metadata']['name'])\n";
    let out = ok(&run("python3", &["-c", script, file.to_str().unwrap()], None), "python3 yaml");
    out.lines().filter_map(|l| l.split_once(' ')).map(|(k, n)| (k.to_owned(), n.to_owned())).collect()
}

fn manifests() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn kubernetes_manifests_match_the_kubernetes_schemas() {
    let files = manifests();
    assert!(!files.is_empty());
    for file in files {
        let out = run("kubernetes-validate", &["--strict", file.to_str().unwrap()], None);
        let text = ok(&out, &format!("kubernetes-validate --strict {}", file.display()));
        assert!(!text.contains("ERROR") && !text.contains("WARN"), "{}: {text}", file.display());
    }
}

/// The manifest's header creates the ConfigMap and the Secret; `kubectl apply` of the manifest
/// must not then replace them with an example config and an empty key directory. The commands
/// it documents pick only key files and `keyring.toml`, and the example config it names is valid.
#[test]
fn kubernetes_manifest_leaves_config_and_keys_to_their_commands() {
    let manifest = repo().join("deploy/kubernetes/keysmith.yaml");
    let kinds = manifest_kinds(&manifest);
    assert!(kinds.iter().any(|(k, _)| k == "Deployment"), "{kinds:?}");
    for (kind, name) in &kinds {
        assert!(kind != "ConfigMap" && kind != "Secret", "keysmith.yaml would overwrite {kind} {name}");
    }
    let text = std::fs::read_to_string(&manifest).unwrap();
    let commands: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("#")).map(str::trim).filter(|l| l.starts_with("kubectl")).collect();
    for name in ["keysmith-config", "keysmith-keys"] {
        assert!(commands.iter().any(|c| c.contains("create") && c.contains(name)), "no command creates {name}");
        assert!(commands.iter().any(|c| c.contains("replace") && c.contains(name)), "no command updates {name}");
    }
    for c in commands.iter().filter(|c| c.contains("secret")) {
        let whole_dir = c.split_whitespace().any(|w| w == "--from-file=keys/" || w == "--from-file=keys");
        assert!(!whole_dir, "picks up .gitignore and lock files: {c}");
    }
    let example = repo().join("deploy/kubernetes/config.toml");
    let out = run(env!("CARGO_BIN_EXE_keysmith"), &["check", example.to_str().unwrap()], None);
    ok(&out, "keysmith check deploy/kubernetes/config.toml");
}

/// The Deployment's probes ask the endpoints made for them: liveness `/livez` (the process
/// serves; a restart cures nothing else), readiness `/readyz` (config, signing key, revocation
/// list). `tests/public.rs` checks that the server answers both.
#[test]
fn kubernetes_probes_use_livez_and_readyz() {
    let manifest = repo().join("deploy/kubernetes/keysmith.yaml");
    let script = "import sys, yaml\nfor d in yaml.safe_load_all(open(sys.argv[1])):\n    \
                  if d and d['kind'] == 'Deployment':\n        \
                  for c in d['spec']['template']['spec']['containers']:\n            \
                  print(c['livenessProbe']['httpGet']['path'], c['readinessProbe']['httpGet']['path'])\n";
    let out = ok(&run("python3", &["-c", script, manifest.to_str().unwrap()], None), "python3 yaml");
    assert_eq!(out.trim(), "/livez /readyz", "liveness and readiness probe paths");
}

/// `systemd-analyze verify` on the unit as installed (the binary at its `ExecStart` path), with
/// no warning; and the header's install steps create every path the unit and the runbooks use.
#[test]
fn systemd_unit_verifies_and_its_install_steps_are_complete() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/keysmith.service")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("keysmith.service");
    std::fs::write(&installed, unit.replace("/usr/local/bin/keysmith", env!("CARGO_BIN_EXE_keysmith"))).unwrap();
    let out = run("systemd-analyze", &["verify", installed.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");

    // The header's commands: its lines indented as a block (`#   command`).
    let steps: Vec<&str> =
        unit.lines().map_while(|l| l.strip_prefix('#')).filter_map(|l| l.strip_prefix("   ")).map(str::trim).collect();
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).unwrap();
    let words: Vec<&str> = exec.split_whitespace().collect();
    for flag in ["--config", "--keys"] {
        let path = words.iter().position(|w| *w == flag).map(|i| words[i + 1]).unwrap_or_else(|| panic!("{flag}"));
        let step = steps.iter().position(|s| s.starts_with("install ") && s.ends_with(path));
        let first_use = steps.iter().position(|s| s.contains(path) && !s.starts_with("install "));
        assert!(step.is_some(), "no install step creates {path}");
        assert!(first_use.is_none_or(|u| u > step.unwrap()), "{path} is used before it is installed");
    }
    for step in steps.iter().filter(|s| s.contains("keysmith keys") || s.contains("keysmith keygen")) {
        assert!(step.starts_with("sudo -u keysmith "), "runs as the service user: {step}");
    }
    assert!(unit.contains("StateDirectory=keysmith"), "a writable state directory for the keys and the audit log");
}

/// The example Kubernetes config must not believe `X-Forwarded-For` from the whole pod network
/// (any pod could then choose its client address): each trusted proxy is a narrow range (IPv4 /24
/// or longer, IPv6 /64 or longer). `/metrics` has its own listener (`server.metrics_listen`) on a
/// port that the Service does not expose.
#[test]
fn kubernetes_config_trusts_narrow_proxies_and_keeps_metrics_off_the_service() {
    let config = repo().join("deploy/kubernetes/config.toml");
    let manifest = repo().join("deploy/kubernetes/keysmith.yaml");
    let script = "import sys, tomllib, yaml, ipaddress\n\
                  c = tomllib.load(open(sys.argv[1], 'rb'))['server']\n\
                  for p in c.get('trusted_proxies', []):\n    \
                  n = ipaddress.ip_network(p)\n    \
                  print('proxy', p, n.prefixlen >= (24 if n.version == 4 else 64))\n\
                  print('metrics', c.get('metrics_listen', 'none').rsplit(':', 1)[-1])\n\
                  for d in yaml.safe_load_all(open(sys.argv[2])):\n    \
                  if d and d['kind'] == 'Service':\n        \
                  for p in d['spec']['ports']:\n            \
                  print('service', p['port'], p['targetPort'])\n";
    let out = ok(
        &run("python3", &["-c", script, config.to_str().unwrap(), manifest.to_str().unwrap()], None),
        "python3 tomllib yaml",
    );
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    for l in lines.iter().filter(|l| l[0] == "proxy") {
        assert_eq!(l[2], "True", "trusted proxy {} is too wide", l[1]);
    }
    let metrics_port = lines.iter().find(|l| l[0] == "metrics").map(|l| l[1]).unwrap();
    assert!(metrics_port.parse::<u16>().is_ok(), "server.metrics_listen is not set: {metrics_port}");
    assert_ne!(metrics_port, "8080", "metrics_listen must differ from the main listener");
    for l in lines.iter().filter(|l| l[0] == "service") {
        assert!(l[1] != metrics_port && l[2] != metrics_port, "the Service exposes /metrics: {l:?}");
    }
}

/// The YAML blocks of `docs/*.md` that are Kubernetes objects (they have an `apiVersion:`), as
/// (where, text).
fn documented_manifests() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs")).unwrap().map(|e| e.unwrap().path()).collect();
    docs.sort();
    for doc in docs.iter().filter(|d| d.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(doc).unwrap();
        let mut block: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            match &mut block {
                None if line.trim_end() == "```yaml" => block = Some((i + 1, String::new())),
                Some((start, body)) if line.trim_end() == "```" => {
                    if body.lines().any(|l| l.starts_with("apiVersion:")) {
                        let name = doc.strip_prefix(repo()).unwrap().display();
                        found.push((format!("{name}:{start}"), std::mem::take(body)));
                    }
                    block = None;
                }
                Some((_, body)) => {
                    body.push_str(line);
                    body.push('\n');
                }
                None => {}
            }
        }
    }
    found
}

/// The Kubernetes examples of the docs (the gate's sidecar in `docs/gate.md`) match the
/// Kubernetes schemas, like the manifests of `deploy/`.
#[test]
fn kubernetes_yaml_in_the_docs_matches_the_kubernetes_schemas() {
    let manifests = documented_manifests();
    assert!(manifests.iter().any(|(at, _)| at.starts_with("docs/gate.md:")), "{manifests:?}");
    let dir = tempfile::tempdir().unwrap();
    for (i, (at, text)) in manifests.iter().enumerate() {
        let file = dir.path().join(format!("doc-{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let out = run("kubernetes-validate", &["--strict", file.to_str().unwrap()], None);
        let report = ok(&out, &format!("kubernetes-validate --strict on the block at {at}"));
        assert!(!report.contains("ERROR") && !report.contains("WARN"), "{at}: {report}\n{text}");
    }
}

/// Every `keysmith gate` container in the docs' Kubernetes examples listens (`--listen`; the
/// default is loopback, which the kubelet cannot reach) on all addresses, at the port its
/// readiness probe asks, and reads its `--config` from a mounted volume.
#[test]
fn documented_gate_sidecar_listens_where_its_probe_looks() {
    let script = "import sys, yaml\n\
                  for d in yaml.safe_load_all(open(sys.argv[1])):\n    \
                  if not d or d['kind'] != 'Deployment': continue\n    \
                  for c in d['spec']['template']['spec']['containers']:\n        \
                  a = c.get('args') or []\n        \
                  if a[:1] != ['gate']: continue\n        \
                  opt = lambda f: a[a.index(f) + 1] if f in a else '-'\n        \
                  p = c.get('readinessProbe', {}).get('httpGet', {})\n        \
                  mounts = ','.join(m['mountPath'] for m in c.get('volumeMounts', []))\n        \
                  print(c['name'], opt('--listen'), p.get('port', '-'), p.get('path', '-'), opt('--config'), mounts or '-')\n";
    let dir = tempfile::tempdir().unwrap();
    let mut gates = 0;
    for (i, (at, text)) in documented_manifests().iter().enumerate() {
        let file = dir.path().join(format!("doc-{i}.yaml"));
        std::fs::write(&file, text).unwrap();
        let out = ok(&run("python3", &["-c", script, file.to_str().unwrap()], None), "python3 yaml");
        for line in out.lines() {
            gates += 1;
            let [name, listen, port, path, config, mounts] = line.split(' ').collect::<Vec<_>>()[..] else {
                panic!("{at}: {line}");
            };
            let (host, listen_port) = listen.rsplit_once(':').unwrap_or_else(|| panic!("{at}: {name} has no --listen"));
            assert!(
                ["0.0.0.0", "[::]"].contains(&host),
                "{at}: {name} listens on {listen}, which the kubelet's probe cannot reach"
            );
            assert_eq!((listen_port, path), (port, "/healthz"), "{at}: {name}'s readiness probe looks elsewhere");
            assert!(
                mounts.split(',').any(|m| config.starts_with(&format!("{m}/"))),
                "{at}: {name} reads {config}, outside its mounts {mounts}"
            );
        }
    }
    assert!(gates >= 1, "no `keysmith gate` container in the docs' Kubernetes examples");
}
