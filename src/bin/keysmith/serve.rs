//! `keysmith serve`.

use anyhow::Context as _;
use keysmith::server::{IssuerHandle, Source};
use keysmith::{Config, Keyring};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    /// The directory of signing keys.
    #[arg(long, env = "KEYSMITH_KEYS", default_value = "keys")]
    keys: PathBuf,
    /// Listen address, overriding `server.listen`.
    #[arg(long, env = "KEYSMITH_LISTEN")]
    listen: Option<SocketAddr>,
    /// How often to look for changes to the config and keys, in milliseconds (0: only on SIGHUP).
    #[arg(long, default_value_t = 1000)]
    watch_ms: u64,
    /// Accept a reloaded config whose `version` is lower than the running one.
    #[arg(long)]
    allow_rollback: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::init_logging("info,tower_http=info");
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let (keys, generated) = Keyring::load_or_generate(&args.keys)?;
    if let Some(path) = generated {
        tracing::warn!(
            path = %path.display(),
            kid = keys.signing().kid(),
            "NO SIGNING KEY WAS FOUND: GENERATED A NEW DEVELOPMENT KEY. Tokens minted by earlier \
             keys no longer verify. For production, create keys deliberately with `keysmith keygen` \
             and keep them out of git."
        );
    }
    let listen = args.listen.unwrap_or(config.server.listen);
    let source = Source { config: args.config.clone(), keys: args.keys.clone(), allow_rollback: args.allow_rollback };
    let handle = IssuerHandle::load(source)?;
    let version = handle.config_version();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let local = listener.local_addr()?;
        #[cfg(unix)]
        tokio::spawn(keysmith::server::reload_on_sighup(handle.clone()));
        if args.watch_ms > 0 {
            tokio::spawn(keysmith::server::watch(handle.clone(), Duration::from_millis(args.watch_ms)));
        }
        tracing::info!(address = %local, config_version = version, "keysmith listening on http://{local}");
        keysmith::server::serve(listener, handle, keysmith::server::shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
