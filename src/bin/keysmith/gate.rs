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
                // The same accept loop, no peer exempt: whoever scrapes is held to the caps.
                let served = keysmith::server::serve_router(
                    metrics,
                    app,
                    keysmith::server::ConnectionLimits::gate(),
                    |_| false,
                    keysmith::server::shutdown_signal(),
                )
                .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        // The issuer's accept loop with the gate's limits: a pool of connections for the
        // proxies that may ask (no per-address cap, no header read timeout on their idle
        // keep-alive connections) and a smaller one for everyone else, request timeouts, size
        // checks (room for forwarded URIs and headers) and a graceful drain.
        let callers = allowed_callers;
        keysmith::server::serve_router(
            listener,
            gate.router(),
            keysmith::server::ConnectionLimits::gate(),
            move |ip| callers.contains(ip),
            keysmith::server::shutdown_signal(),
        )
        .await?;
        tracing::info!("stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
