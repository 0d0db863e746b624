//! The shipped CI workflow and pre-commit hook, run against a sample repository made here: a
//! good edit passes and shows its access change, a bad one is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops at the first broken expectation

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const V1: &str = r#"version = 1
issuer = "https://keys.test"
[projects.demo]
[[templates]]
id = "widget"
project = "demo"
permissions = ["FILE_UPLOAD"]
[templates.upload]
dir_scope = "/uploads/*"
[templates.restrict]
whitelist_ip_ranges = ["10.0.0.0/8"]
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the freshly built `keysmith` first.
fn path_env() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_keysmith")).parent().unwrap().to_owned();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path_env())
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap()
}

fn git(dir: &Path, args: &[&str]) -> Output {
    let out = run(dir, "git", args);
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn sample_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(dir.path().join("config.toml"), V1).unwrap();
    git(dir.path(), &["add", "config.toml"]);
    git(dir.path(), &["commit", "-q", "-m", "v1"]);
    dir
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn pre_commit_hook_checks_the_staged_config() {
    let repo = sample_repo();
    let dir = repo.path();
    let hook = dir.join(".git/hooks/pre-commit");
    std::fs::copy(repo_root().join("examples/pre-commit"), &hook).unwrap();

    // A good edit commits and shows what it widens.
    let v2 =
        V1.replace("version = 1", "version = 2").replace("[\"FILE_UPLOAD\"]", "[\"FILE_UPLOAD\", \"OBJECTS_LIST\"]");
    std::fs::write(dir.join("config.toml"), &v2).unwrap();
    git(dir, &["add", "config.toml"]);
    let out = run(dir, "git", &["commit", "-m", "list too"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("permissions gained: OBJECTS_LIST  [widens access]"), "{}", text(&out));

    // An edit without a version bump is stopped; so is an invalid one.
    for (bad, why) in [
        (v2.replace("/uploads/*", "/uploads/in/*"), "not higher than 2"),
        (v2.replace("version = 2", "version = 3").replace("dir_scope", "dir_scop"), "dir_scop"),
    ] {
        std::fs::write(dir.join("config.toml"), &bad).unwrap();
        git(dir, &["add", "config.toml"]);
        let out = run(dir, "git", &["commit", "-m", "bad"]);
        assert!(!out.status.success(), "a bad edit was committed");
        assert!(text(&out).contains(why), "{}", text(&out));
    }
    let log = git(dir, &["log", "--oneline"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2, "only the good commit landed");

    // Commits that do not touch the config pass untouched.
    git(dir, &["reset", "-q", "--hard"]);
    std::fs::write(dir.join("README"), "x").unwrap();
    git(dir, &["add", "README"]);
    git(dir, &["commit", "-q", "-m", "docs"]);
}

/// The `run:` block of the workflow step named `name`.
fn workflow_step(name: &str) -> String {
    let yaml = std::fs::read_to_string(repo_root().join("examples/ci/keysmith-check.yml")).unwrap();
    let mut lines = yaml.lines().skip_while(|l| !l.trim_start().starts_with(&format!("- name: {name}")));
    lines.next().expect("step present");
    let mut lines = lines.skip_while(|l| !l.trim_start().starts_with("run: |"));
    let run = lines.next().expect("run block present");
    let indent = run.len() - run.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ci_workflow_step_checks_the_pull_request() {
    let repo = sample_repo();
    let dir = repo.path();
    let script = workflow_step("Check access changes");
    assert!(script.contains("keysmith check config.toml") && script.contains("--previous-git"), "{script}");
    let ci = |base: &str| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(dir)
            .env("PATH", path_env())
            .env("BASE_REF", base)
            .output()
            .unwrap()
    };

    git(dir, &["checkout", "-q", "-b", "feature"]);
    let v2 = V1.replace("version = 1", "version = 2").replace("10.0.0.0/8", "10.1.0.0/16");
    std::fs::write(dir.join("config.toml"), v2).unwrap();
    git(dir, &["commit", "-q", "-am", "narrow"]);
    let out = ci("main");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ip ranges narrowed: [10.0.0.0/8] -> [10.1.0.0/16]"), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("keysmith-check.json")).unwrap()).unwrap();
    assert_eq!(report["changes"][0]["kind"], "ip_ranges_narrowed");
    assert_eq!(report["widening"], false);

    // Strict mode stops a risky edit: uploads allowed everywhere.
    let risky = V1.replace("version = 1", "version = 3").replace("dir_scope = \"/uploads/*\"", "dir_scope = \"/*\"");
    std::fs::write(dir.join("config.toml"), risky).unwrap();
    git(dir, &["commit", "-q", "-am", "risky"]);
    let out = ci("main");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error[upload_everywhere]"), "{}", text(&out));

    // Without a version bump the step fails, and still prints the summary.
    let unbumped = V1.replace("version = 1", "version = 3").replace("10.0.0.0/8", "10.2.0.0/16");
    std::fs::write(dir.join("config.toml"), unbumped).unwrap();
    git(dir, &["commit", "-q", "-am", "again"]);
    git(dir, &["branch", "-q", "-f", "base3", "HEAD~1"]);
    let out = ci("base3");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not higher than 3") && text(&out).contains("ip ranges"), "{}", text(&out));

    // A pull request that adds the config validates it alone.
    let fresh = sample_repo();
    git(fresh.path(), &["checkout", "-q", "--orphan", "empty"]);
    git(fresh.path(), &["rm", "-q", "-rf", "."]);
    git(fresh.path(), &["commit", "-q", "--allow-empty", "-m", "empty"]);
    git(fresh.path(), &["checkout", "-q", "-b", "adds-config"]);
    std::fs::write(fresh.path().join("config.toml"), V1).unwrap();
    git(fresh.path(), &["add", "config.toml"]);
    git(fresh.path(), &["commit", "-q", "-m", "add"]);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(fresh.path())
        .env("PATH", path_env())
        .env("BASE_REF", "empty")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn shipped_schema_is_current_and_accepts_the_shipped_config() {
    let out = common::keysmith().arg("schema").output().unwrap();
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(repo_root().join("keysmith.schema.json")).unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap() == shipped,
        "keysmith.schema.json is stale: run `keysmith schema > keysmith.schema.json`"
    );
    let config = std::fs::read_to_string(repo_root().join("config.toml")).unwrap();
    assert!(config.starts_with("#:schema ./keysmith.schema.json\n"), "the shipped config points editors at the schema");

    // What an editor does with it: the shipped config validates, a typo does not.
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, config.replace("dir_scope =", "dir_scop =")).unwrap();
    let wrong_type = dir.path().join("wrong_type.toml");
    std::fs::write(&wrong_type, config.replace("expiration_duration = 1200", "expiration_duration = \"1200\""))
        .unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("tests/interop/schema_check.py"))
        .arg(repo_root().join("keysmith.schema.json"))
        .arg(repo_root().join("config.toml"))
        .args([&typo, &wrong_type])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(out.status.success(), "is jsonschema installed? run scripts/test-deps.sh: {report}");
    let lines: Vec<&str> = report.lines().collect();
    assert!(lines[0].ends_with("config.toml: valid"), "{report}");
    assert!(lines[1].contains("invalid") && lines[1].contains("dir_scop"), "{report}");
    assert!(lines[2].contains("invalid"), "{report}");
}

fn check(dir: &Path, args: &[&str]) -> Output {
    let out = common::keysmith().arg("check").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.code().is_some(), "killed: {}", text(&out));
    out
}

/// Issue 9: `check --previous … --strict` said "no access change" for these server settings.
#[test]
fn check_flags_server_settings_that_widen_access() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let base = V1.replace(
        "[projects.demo]",
        "[server]\ngeoip_database = \"geo.mmdb\"\naudit_log = \"audit.jsonl\"\n[projects.demo]",
    );
    std::fs::write(dir.join("old.toml"), &base).unwrap();
    let s = "[server]\n";
    for (from, to, kind) in [
        (s, "[server]\nforwarded_header = \"forwarded\"\n", "forwarded_header_changed"),
        (s, "[server]\nrate_limit_per_minute = 0\n", "rate_limit_raised"),
        (s, "[server]\nlisten = \"0.0.0.0:8080\"\n", "listen_changed"),
        ("geo.mmdb", "elsewhere.mmdb", "geoip_database_changed"),
        ("audit_log = \"audit.jsonl\"\n", "", "audit_log_removed"),
    ] {
        let new = base.replace("version = 1", "version = 2").replacen(from, to, 1);
        std::fs::write(dir.join("config.toml"), &new).unwrap();
        let out = check(dir, &["--previous", "old.toml", "--strict"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!stdout.contains("no access change"), "{kind}: {stdout}");
        assert!(stdout.contains(&format!("{}: ", kind.replace('_', " "))), "{kind}: {stdout}");
        assert!(stdout.contains("[widens access]"), "{kind}: {stdout}");
        let out = check(dir, &["--previous", "old.toml", "--strict", "--format", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["widening"], true, "{kind}: {report}");
        assert_eq!(report["changes"][0]["kind"], kind, "{report}");
    }
}

/// Issue 9: an unknown key no longer hides the other problems of the file.
#[test]
fn check_reports_unknown_keys_with_every_other_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = V1.replace("dir_scope", "dir_scop").replace("10.0.0.0/8", "10.0.0.1/8");
    std::fs::write(dir.path().join("config.toml"), bad).unwrap();
    let out = check(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<&str> = report["errors"].as_array().unwrap().iter().filter_map(|e| e.as_str()).collect();
    assert_eq!(
        errors,
        [
            "2 invalid setting(s):",
            "templates[0].upload.dir_scop: unknown setting (did you mean dir_scope?)",
            "templates[0].restrict.whitelist_ip_ranges[0]: \"10.0.0.1/8\" has host bits set; the canonical range is 10.0.0.0/8",
        ]
    );
}
