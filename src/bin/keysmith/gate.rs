//! `keysmith gate`.

use anyhow::Context as _;
use keysmith::gate::{Gate, GateConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The gate's config file.
    #[arg(long, env = "KEYSMITH_GATE_CONFIG", default_value = "gate.toml")]
    config: PathBuf,
    /// Listen address, overriding `listen`.
    #[arg(long, env = "KEYSMITH_GATE_LISTEN")]
    listen: Option<SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::init_logging("info");
    let config = match GateConfig::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let listen = args.listen.unwrap_or(config.listen);
    let allowed_callers = config.allowed_callers.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let gate = Arc::new(Gate::start(config).context("starting the gate")?);
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let local = listener.local_addr()?;
        tracing::info!(address = %local, "keysmith gate listening on http://{local}");
        if let Some(address) = gate.metrics_listen() {
            let metrics = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding metrics_listen {address}"))?;
            tracing::info!(address = %metrics.local_addr()?, "metrics on http://{address}/metrics");
            let app = Arc::clone(&gate).metrics_router();
            tokio::spawn(async move {
                if let Err(e) =
                    axum::serve(metrics, app).with_graceful_shutdown(keysmith::server::shutdown_signal()).await
                {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        // The issuer's accept loop: connection caps (global, and per address but for the
        // proxies that may ask, which carry every client), header and request timeouts, size
        // checks and a graceful drain.
        let callers = allowed_callers;
        keysmith::server::serve_router(
            listener,
            gate.router(),
            keysmith::server::ConnectionLimits::default(),
            move |ip| callers.contains(ip),
            keysmith::server::shutdown_signal(),
        )
        .await?;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
