//! `keysmith verify`.

use anyhow::Context as _;
use keysmith::{KeySet, Verifier};
use serde_json::json;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// Largest JWKS or revocation list read from a file, in bytes.
const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(clap::Args)]
pub struct Args {
    /// The key to verify (`-` reads it from standard input).
    token: String,
    /// The JWKS: a file path or an http(s) URL.
    #[arg(long)]
    jwks: String,
    /// The expected issuer; defaults to `issuer` of `--config`.
    #[arg(long)]
    issuer: Option<String>,
    /// The config to read the issuer, audience and scope rules from when not given.
    #[arg(long, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    /// The expected audience (project id); defaults to the only project of `--config`.
    #[arg(long)]
    audience: Option<String>,
    /// A signed revocation list (file path or http(s) URL, e.g. `/v1/revocations`). Required
    /// to accept a permanent API key; also refuses keys of deactivated templates.
    #[arg(long)]
    revocations: Option<String>,
    /// Decide one operation under this permission.
    #[arg(long)]
    permission: Option<String>,
    /// The directory the operation acts on.
    #[arg(long, requires = "permission")]
    dir: Option<String>,
    /// The caller's address.
    #[arg(long, requires = "permission")]
    ip: Option<IpAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let token = if args.token == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim().to_owned()
    } else {
        args.token.clone()
    };
    let keys = match KeySet::from_jwks_json(read_source(&args.jwks)?.as_bytes()) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("{}: {e}", args.jwks);
            return Ok(ExitCode::from(2));
        }
    };
    // The config, when readable, supplies the issuer, the audience of a single-project
    // deployment, and the scope rules of a custom catalogue.
    let config = keysmith::Config::load(&args.config);
    // The clock is read once: the revocation list and the token are judged at the same time.
    let now = SystemTime::now();
    let issuer = match (&args.issuer, &config) {
        (Some(issuer), _) => issuer.clone(),
        (None, Ok(config)) => config.issuer.clone(),
        (None, Err(e)) => {
            eprintln!("pass --issuer, or --config with a valid config ({}: {e})", args.config.display());
            return Ok(ExitCode::from(2));
        }
    };
    let audience = match (&args.audience, &config) {
        (Some(audience), _) => audience.clone(),
        (None, Ok(config)) if config.projects.len() == 1 => config.projects.keys().next().cloned().unwrap_or_default(),
        _ => {
            eprintln!("pass --audience (the project id the key must be for)");
            return Ok(ExitCode::from(2));
        }
    };
    let mut verifier = Verifier::new(keys, issuer, audience);
    if let Ok(config) = &config {
        verifier = verifier.scope_rules(config.catalog.rules().clone());
    }
    if let Some(source) = &args.revocations
        && let Err(e) = verifier.set_revocations(&read_source(source)?, now)
    {
        eprintln!("{source}: revocation list refused ({}): {e}", e.code());
        return Ok(ExitCode::from(2));
    }
    if keysmith::dangerous::claimed_type(&token) == Some(keysmith::dangerous::ClaimedType::ApiKey) {
        return verify_api_key(&verifier, &token, args.permission.as_deref(), now);
    }
    let grant = match verifier.verify(&token, now) {
        Ok(grant) => grant,
        Err(e) => {
            print_json(&json!({ "valid": false, "code": e.code(), "error": e.to_string() }));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = json!({ "valid": true, "claims": grant.claims() });
    let mut code = ExitCode::SUCCESS;
    if let Some(permission) = &args.permission {
        let decision = match grant.authorize(permission, args.dir.as_deref(), args.ip) {
            Ok(()) => json!({ "allowed": true, "permission": permission }),
            Err(denied) => {
                code = ExitCode::FAILURE;
                json!({ "allowed": false, "permission": permission, "code": denied.code(), "reason": denied.to_string() })
            }
        };
        out["decision"] = decision;
    }
    print_json(&out);
    Ok(code)
}

fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn verify_api_key(
    verifier: &Verifier,
    token: &str,
    permission: Option<&str>,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let grant = match verifier.verify_api_key(token, now) {
        Ok(grant) => grant,
        Err(e) => {
            print_json(&json!({ "valid": false, "code": e.code(), "error": e.to_string() }));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = json!({ "valid": true, "kind": "api_key", "claims": grant.claims() });
    let mut code = ExitCode::SUCCESS;
    if let Some(permission) = permission {
        let allowed = grant.has_permission(permission);
        if !allowed {
            code = ExitCode::FAILURE;
        }
        out["decision"] = json!({ "allowed": allowed, "permission": permission });
    }
    print_json(&out);
    Ok(code)
}

/// Reads a file, or fetches an http(s) URL, with a size limit.
fn read_source(source: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    if source.starts_with("http://") || source.starts_with("https://") {
        let (body, _) = keysmith::refresh::fetch(source, None)?.context("unexpected 304 Not Modified")?;
        Ok(body)
    } else {
        let file = std::fs::File::open(source).with_context(|| format!("reading {source}"))?;
        let mut body = String::new();
        file.take(MAX_SOURCE_BYTES + 1).read_to_string(&mut body)?;
        anyhow::ensure!(body.len() as u64 <= MAX_SOURCE_BYTES, "{source}: larger than {MAX_SOURCE_BYTES} bytes");
        Ok(body)
    }
}
