//! `keysmith apikey`: create, list, activate and deactivate permanent API keys. The metadata
//! goes into `config.toml` (edited in place, `version` bumped); the secret is printed once.

use keysmith::admin::{self, ActivityChange, ApiKeySpec, ListedApiKey};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, global = true, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a key, record its metadata in the config, and print the secret once.
    Create {
        /// What the key is for.
        #[arg(long)]
        description: String,
        /// Permissions (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        permissions: Vec<String>,
        /// Projects the key may be used for (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', required = true)]
        project: Vec<String>,
        /// An expiry (RFC 3339, e.g. 2027-01-01T00:00:00Z); permanent keys have none by default.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// The directory of signing keys.
        #[arg(long, env = "KEYSMITH_KEYS", default_value = "keys")]
        keys: PathBuf,
    },
    /// Show the keys: id, description, permissions, projects, created_at, expires_at (marked
    /// "(expired)" once passed), active.
    List,
    /// Deactivate keys: their ids go on the signed revocation list.
    Deactivate {
        /// Key ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Also accept ids that are not in the config (keys created over HTTP, from the audit
        /// log): they are recorded as inactive entries.
        #[arg(long)]
        unlisted: bool,
    },
    /// Reactivate keys.
    Activate {
        /// Key ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Void every access key minted through this key before a moment (default now); the key
    /// itself, and access keys minted through it afterwards, keep working.
    RevokeBefore {
        /// The key id (recorded in the config).
        id: String,
        /// The cut-off: `now` (the default) or an RFC 3339 date-time not in the future.
        #[arg(long, default_value = "now")]
        at: crate::cut_off::At,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Command::RevokeBefore { id, at } = args.command {
        return crate::cut_off::set_cut_off(&args.config, keysmith::config::CutOff::ApiKey, &id, at);
    }
    let config = &args.config;
    let now = chrono::Utc::now();
    let result = match args.command {
        Command::List => admin::list_api_keys(config, now).map(|keys| print_table(&keys)),
        Command::Create { description, permissions, project, expires_at, keys } => {
            let spec = ApiKeySpec { description, permissions, projects: project, expires_at };
            admin::create_api_key(config, &keys, spec, now).map(|recorded| {
                eprintln!(
                    "created API key {} (config version {}); the secret below is shown once: store it now",
                    recorded.created.id, recorded.config_version
                );
                println!("{}", recorded.created.secret);
            })
        }
        Command::Deactivate { ids, unlisted } => {
            admin::set_api_keys_active(config, &ids, false, unlisted).map(|change| print_change(&ids, &change, false))
        }
        Command::Activate { ids } => {
            admin::set_api_keys_active(config, &ids, true, false).map(|change| print_change(&ids, &change, true))
        }
        // Handled above.
        Command::RevokeBefore { .. } => return Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            eprintln!("nothing was changed");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_table(keys: &[ListedApiKey]) {
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|ListedApiKey { meta: k, expired }| {
            let expires = match &k.expires_at {
                Some(at) if *expired => format!("{at} (expired)"),
                Some(at) => at.clone(),
                None => String::new(),
            };
            [
                k.id.clone(),
                k.description.clone(),
                k.permissions.join(","),
                k.projects.join(","),
                k.created_at.clone().unwrap_or_default(),
                expires,
                if k.active { "yes".into() } else { "no".into() },
            ]
        })
        .collect();
    let header =
        ["ID", "DESCRIPTION", "PERMISSIONS", "PROJECTS", "CREATED_AT", "EXPIRES_AT", "ACTIVE"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn print_change(ids: &[String], change: &ActivityChange, active: bool) {
    let state = if active { "active" } else { "deactivated" };
    let Some(version) = change.config_version else {
        println!("already {state}: {}; config unchanged", ids.join(", "));
        return;
    };
    println!("{state}: {} (config version {version})", change.changed.join(", "));
    if !active {
        println!(
            "a running service picks the change up by itself and refuses them at once; verifiers within revocations_max_age"
        );
    }
}
