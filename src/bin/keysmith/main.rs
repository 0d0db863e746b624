//! The `keysmith` command: run the service, manage keys, check configs, mint and verify.

mod apikey;
mod check;
mod cut_off;
mod gate;
mod keygen;
mod keys;
mod mint;
mod one_line;
mod schema;
mod serve;
mod template;
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
    /// Incident response on a template: void keys minted from it before a moment.
    Template(template::Args),
    /// The signing-key lifecycle: list, rotate, retire, remove.
    Keys(keys::Args),
    /// Print the JSON Schema of the config, for TOML editors.
    Schema(schema::Args),
    /// Enforce keys in front of another service, as a reverse proxy's forward-auth target.
    Gate(gate::Args),
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
        Command::Template(args) => template::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Gate(args) => gate::run(args),
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
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        std::env::var("KEYSMITH_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| default.to_owned());
    let _ = subscriber(&filter, std::io::stderr).try_init();
}

/// The log subscriber: events that pass `filter`, formatted into `writer` through
/// [`OneLine`](one_line::OneLine), so each event is one physical line whatever a log
/// site wrote (no colours: the line layer would escape them).
fn subscriber<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(one_line::OneLine(writer))
        .with_ansi(false)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex, PoisonError};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a log site that forgot `Escaped` writes, through the binary's subscriber.
    fn log_raw(value: &str) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = subscriber("info", move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(project = %value, "minted");
            tracing::info!(error = %format!("bad body: {value}"), "request refused\u{2028}");
        });
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_log_site_that_forgot_escaping_still_writes_one_line_per_event() {
        let forged = "demo\r\n2026-11-25T14:00:00.000000Z  INFO keysmith::server::routes: minted project=x\x1b[31m\u{2028}y\u{2029}\u{202e}\u{2066}\u{85}\u{7f}\r";
        let out = log_raw(forged);
        assert!(out.ends_with('\n'), "{out:?}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {out:?}");
        for line in &lines {
            assert!(
                !line
                    .contains(['\r', '\n', '\x1b', '\u{2028}', '\u{2029}', '\u{202e}', '\u{2066}', '\u{85}', '\u{7f}']),
                "raw control in {line:?}"
            );
            assert!(!line.chars().any(char::is_control), "raw control in {line:?}");
        }
        assert!(lines[0].contains(r"project=demo\u{d}\u{a}2026-11-25T14:00:00.000000Z"), "{}", lines[0]);
        assert!(lines[0].contains(r"\u{1b}[31m\u{2028}y\u{2029}\u{202e}\u{2066}"), "{}", lines[0]);
    }

    #[test]
    fn escaped_values_and_ordinary_text_pass_through_unchanged() {
        // What `Escaped` already wrote is not escaped twice; non-ASCII names stay readable.
        let out = log_raw(r#"a\u{d}b 写真 café \\ "q""#);
        let line = out.lines().next().unwrap_or_default();
        assert!(line.contains(r#"project=a\u{d}b 写真 café \\ "q""#), "{line}");
    }
}
