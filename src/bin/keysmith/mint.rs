//! `keysmith mint`.

use chrono::Utc;
use keysmith::MintRequest;
use keysmith::admin::AdminError;
use keysmith::issuer::Caller;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The project id.
    #[arg(long)]
    project: String,
    /// The template id.
    #[arg(long)]
    template: String,
    /// The config file.
    #[arg(long, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    /// The directory of signing keys.
    #[arg(long, env = "KEYSMITH_KEYS", default_value = "keys")]
    keys: PathBuf,
    /// Mint as a caller at this address (needed for IP- or country-restricted templates).
    #[arg(long)]
    ip: Option<IpAddr>,
    /// Narrow the permissions (comma-separated).
    #[arg(long, value_delimiter = ',')]
    permissions: Option<Vec<String>>,
    /// Narrow the upload scope (repeat or comma-separate), e.g. `/uploads/user-42/*`.
    #[arg(long, value_delimiter = ',')]
    dir_scope: Option<Vec<String>>,
    /// Narrow the listing scope (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    directory_scope: Option<Vec<String>>,
    /// Narrow the lifetime, in seconds.
    #[arg(long)]
    expiration: Option<u64>,
    /// The permanent API key, for `access = "api_key"` templates (from the environment only,
    /// so it never shows in a process list).
    #[arg(long = "api-key-from-env", env = "KEYSMITH_API_KEY", hide_env_values = true, hide = true)]
    api_key: Option<String>,
    /// Bind the key to `--ip`.
    #[arg(long, requires = "ip")]
    bind_ip: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut request = MintRequest::default();
    if let Some(scopes) = args.dir_scope {
        request = request.with_dir_scope(scopes);
    }
    if let Some(scopes) = args.directory_scope {
        request = request.with_directory_scope(scopes);
    }
    request.permissions = args.permissions;
    request.expiration_duration = args.expiration;
    request.bind_ip = args.bind_ip;
    let caller = Caller { ip: args.ip, api_key: args.api_key.as_deref() };
    match keysmith::admin::mint(&args.config, &args.keys, &args.project, &args.template, &request, caller, Utc::now()) {
        Ok(minted) => {
            println!("{}", minted.token);
            Ok(ExitCode::SUCCESS)
        }
        Err(AdminError::Mint(e)) => {
            eprintln!("refused ({}): {e}", e.code());
            Ok(ExitCode::FAILURE)
        }
        Err(AdminError::Config(e)) => {
            eprintln!("{}: {e}", args.config.display());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}
