//! The `keysmith` command: run the service, manage keys, check configs, mint and verify.

mod apikey;
mod check;
mod keygen;
mod keys;
mod mint;
mod schema;
mod serve;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Issue short-lived Ed25519-signed access tokens from security templates.
#[derive(Parser)]
#[command(name = "keysmith", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (creates a development key on first start if none exists).
    Serve(serve::Args),
    /// Generate a new Ed25519 signing key into the key directory.
    Keygen(keygen::Args),
    /// Validate a config file; exit 0 when valid, 1 when not.
    Check(check::Args),
    /// Mint a key offline from a template and print it.
    Mint(mint::Args),
    /// Verify a key against a JWKS and optionally decide one operation.
    Verify(verify::Args),
    /// Manage permanent API keys recorded in the config.
    Apikey(apikey::Args),
    /// The signing-key lifecycle: list, rotate, retire, remove.
    Keys(keys::Args),
    /// Print the JSON Schema of the config, for TOML editors.
    Schema(schema::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Check(args) => check::run(args),
        Command::Mint(args) => mint::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Apikey(args) => apikey::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Schema(args) => schema::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up logging to stderr; `KEYSMITH_LOG` (or `RUST_LOG`) overrides `default`.
fn init_logging(default: &str) {
    let filter =
        std::env::var("KEYSMITH_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
