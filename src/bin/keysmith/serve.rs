//! `keysmith serve`.

use anyhow::Context as _;
use keysmith::server::{IssuerHandle, SigningKeySource, Source};
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
    /// Sign with the key in this PEM file (e.g. a mounted Kubernetes Secret) instead of the key
    /// directory; re-read on reload.
    #[arg(long, env = "KEYSMITH_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
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
    // A key injected by the platform: a file, or PEM text in KEYSMITH_SIGNING_KEY.
    let injected = match (&args.signing_key_file, std::env::var("KEYSMITH_SIGNING_KEY")) {
        (Some(path), _) => Some(SigningKeySource::File(path.clone())),
        (None, Ok(pem)) => Some(SigningKeySource::Pem(std::sync::Arc::new(zeroize::Zeroizing::new(pem)))),
        (None, Err(_)) => None,
    };
    // The clock is read once: the generated key's name and the signer choice use this time.
    let now = chrono::Utc::now();
    let generated = if injected.is_none() { Keyring::load_or_generate(&args.keys, now)?.1 } else { None };
    if let Some(path) = generated {
        let keys = Keyring::load_dir(&args.keys)?;
        tracing::warn!(
            path = %path.display(),
            kid = keys.signing().kid(),
            "NO SIGNING KEY WAS FOUND: GENERATED A NEW DEVELOPMENT KEY. Tokens minted by earlier \
             keys no longer verify. For production, create keys deliberately with `keysmith keygen` \
             and keep them out of git."
        );
    }
    let listen = args.listen.unwrap_or(config.server.listen);
    let metrics_listen = config.server.metrics_listen;
    let source = Source {
        config: args.config.clone(),
        keys: args.keys.clone(),
        allow_rollback: args.allow_rollback,
        signing_key: injected,
    };
    // The runtime first: a shared rate-limit store (`server.rate_limit_store`) connects on it.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let handle = {
        let _entered = runtime.enter();
        IssuerHandle::load_at(source, now)?
    };
    let version = handle.config_version();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let local = listener.local_addr()?;
        #[cfg(unix)]
        tokio::spawn(keysmith::server::reload_on_sighup(handle.clone()));
        if args.watch_ms > 0 {
            tokio::spawn(keysmith::server::watch(handle.clone(), Duration::from_millis(args.watch_ms)));
        }
        let mut metrics_task = None;
        if let Some(address) = metrics_listen {
            let metrics = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding server.metrics_listen {address}"))?;
            tracing::info!(%address, "metrics on http://{address}/metrics");
            metrics_task = Some(tokio::spawn(keysmith::server::serve_metrics(
                metrics,
                handle.clone(),
                keysmith::server::shutdown_signal(),
            )));
        }
        tracing::info!(address = %local, config_version = version, "keysmith listening on http://{local}");
        let main = keysmith::server::serve(listener, handle, keysmith::server::shutdown_signal());
        match metrics_task {
            None => main.await?,
            Some(task) => {
                // The metrics listener stopping on its own (an I/O error or a panic) stops the
                // process with that error: /metrics does not vanish unnoticed.
                tokio::pin!(main);
                tokio::select! {
                    served = &mut main => served?,
                    stopped = task => match stopped {
                        Ok(Ok(())) => main.await?,
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "the server.metrics_listen listener failed");
                            return Err(anyhow::Error::new(e).context("server.metrics_listen failed"));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the server.metrics_listen listener stopped");
                            return Err(anyhow::Error::new(e).context("server.metrics_listen stopped"));
                        }
                    },
                }
            }
        }
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
