//! `keysmith check`: validate a config and, given the previous one, summarise the effective
//! access change, for CI and pre-commit hooks. Every setting of the file has a diff rule
//! (`keysmith::diff`): each change is listed, and those that can widen access are marked.
//! An invalid file lists every problem at once, unknown keys included.
//!
//! Exit codes: 0 valid (warnings may be printed); 1 invalid, `version` not increased, or any
//! lint under `--strict`; 2 usage error (the previous config cannot be read, git failed).

use keysmith::Config;
use keysmith::review::Review;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
pub struct Args {
    /// The config file to validate.
    #[arg(default_value = "config.toml")]
    config: PathBuf,
    /// The previous version of the file, to require a higher `version` and summarise changes.
    #[arg(long, conflicts_with = "previous_git")]
    previous: Option<PathBuf>,
    /// Read the previous version from git at this revision (e.g. `origin/main`, `HEAD`).
    #[arg(long)]
    previous_git: Option<String>,
    /// Treat lint warnings as errors.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.config.display().to_string();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            report_invalid(&args, &name, &e.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    let previous = match previous_text(&args) {
        Ok(None) => None,
        Ok(Some((label, text))) => match Config::from_toml(&text, args.config.parent().unwrap_or(Path::new("."))) {
            Ok(previous) => Some((label, previous)),
            Err(e) => {
                return Ok(usage_error(
                    &args,
                    &format!("{label}: the previous config does not load, so there is nothing to compare with: {e}"),
                ));
            }
        },
        Err(message) => return Ok(usage_error(&args, &message)),
    };
    let review = Review::of(previous.as_ref().map(|(_, p)| p), &config);
    let failed = !review.passes(args.strict);
    match args.format {
        Format::Json => {
            let out = json!({
                "file": name,
                "valid": true,
                "version": config.version,
                "previous_version": previous.as_ref().map(|(_, p)| p.version),
                "version_increased": review.version_increased,
                "widening": review.widening(),
                "changes": review.changes,
                "lints": review.lints,
                "ok": !failed,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Text => print_text(&name, &config, previous.as_ref(), &review, args.strict),
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Exit 2, saying why on stderr and, for bots, as JSON on stdout.
fn usage_error(args: &Args, message: &str) -> ExitCode {
    eprintln!("{message}");
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "ok": false, "usage_error": message })).unwrap_or_default()
        );
    }
    ExitCode::from(2)
}

fn report_invalid(args: &Args, name: &str, error: &str) {
    match args.format {
        Format::Json => {
            let out = json!({ "file": name, "valid": false, "ok": false, "errors": error.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>() });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        Format::Text => eprintln!("{name}: {error}"),
    }
}

/// The previous config's text and a label for messages.
fn previous_text(args: &Args) -> Result<Option<(String, String)>, String> {
    if let Some(path) = &args.previous {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Some((path.display().to_string(), text)));
    }
    let Some(rev) = &args.previous_git else { return Ok(None) };
    if rev.starts_with('-') {
        return Err(format!("--previous-git {rev:?}: not a revision"));
    }
    let dir = args.config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = args.config.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("show")
        .arg(format!("{rev}:./{file}"))
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    if !out.status.success() {
        return Err(format!("git show {rev}:./{file}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| format!("{rev}:{file} is not UTF-8"))?;
    Ok(Some((format!("{rev}:{file}"), text)))
}

fn print_text(name: &str, config: &Config, previous: Option<&(String, Config)>, review: &Review, strict: bool) {
    let Review { changes, lints, .. } = review;
    let active = config.templates().iter().filter(|t| t.active).count();
    println!(
        "{name}: ok: version {}, {} project(s), {} template(s) ({active} active), {} API key(s)",
        config.version,
        config.projects.len(),
        config.templates().len(),
        config.api_keys().len(),
    );
    if let Some((label, previous)) = previous {
        if review.version_increased == Some(false) {
            println!(
                "error: version {} is not higher than {} in {label}; bump version on every change",
                config.version, previous.version
            );
        }
        let widening = changes.iter().filter(|c| c.widening).count();
        if changes.is_empty() {
            println!("no access change since {label} (version {})", previous.version);
        } else {
            println!(
                "access changes since {label} (version {} -> {}), {widening} widening access:",
                previous.version, config.version
            );
            for c in changes {
                let mark = if c.widening { "! " } else { "  " };
                let note = if c.widening { "  [widens access]" } else { "" };
                println!("  {mark}{}: {}: {}{note}", c.subject, c.kind.as_str().replace('_', " "), c.detail);
            }
        }
    }
    let level = if strict { "error" } else { "warning" };
    for l in lints {
        println!("{level}[{}] {}: {}", l.code, l.path, l.message);
    }
}
