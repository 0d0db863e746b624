//! `keysmith apikey`: create, list, activate and deactivate permanent API keys, and void the
//! access keys minted through one before a moment (`revoke-before`). The metadata
//! goes into `config.toml` (edited in place, `version` bumped); the secret is printed once.

use anyhow::Context as _;
use keysmith::config::{ApiKeyMeta, ConfigEditor, lock, write_atomically};
use keysmith::issuer::NewApiKey;
use keysmith::{Issuer, Keyring};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

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
    // Held until the edit is written, so concurrent edits never lose one another.
    let _lock = match &args.command {
        Command::List => None,
        _ => Some(lock(&args.config)?),
    };
    let text = std::fs::read_to_string(&args.config).with_context(|| format!("reading {}", args.config.display()))?;
    let base = args.config.parent().unwrap_or(Path::new("."));
    let result = match args.command {
        Command::List => list(&text, base),
        Command::Create { description, permissions, project, expires_at, keys } => {
            let spec = Spec { description, permissions, projects: project, expires_at };
            create(&args.config, &text, base, spec, &keys)
        }
        Command::Deactivate { ids, unlisted } => set_active(&args.config, &text, base, &ids, false, unlisted),
        Command::Activate { ids } => set_active(&args.config, &text, base, &ids, true, false),
        // Handled above, under its own lock.
        Command::RevokeBefore { .. } => return Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            eprintln!("nothing was changed");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn list(text: &str, base: &Path) -> anyhow::Result<()> {
    let editor = ConfigEditor::new(text, base)?;
    let keys = editor.current().api_keys();
    let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|k| {
            let expires = match &k.expires_at {
                Some(at) if k.is_expired(now) => format!("{at} (expired)"),
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
    Ok(())
}

/// What `apikey create` was asked for.
struct Spec {
    description: String,
    permissions: Vec<String>,
    projects: Vec<String>,
    expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

fn create(path: &Path, text: &str, base: &Path, spec: Spec, keys: &Path) -> anyhow::Result<()> {
    let Spec { description, permissions, projects, expires_at } = spec;
    let mut editor = ConfigEditor::new(text, base)?;
    let mut config = editor.current().clone();
    // The key carries the version of the config that records it.
    config.version = editor.next_version();
    let issuer = Issuer::from_parts(config, Keyring::load_dir(keys)?, None);
    let now = SystemTime::now();
    let exp = match expires_at {
        Some(t) => {
            let secs = u64::try_from(t.timestamp()).ok().filter(|_| t > chrono::DateTime::<chrono::Utc>::from(now));
            Some(secs.context("--expires-at must be in the future")?)
        }
        None => None,
    };
    let new = NewApiKey { projects: projects.clone(), permissions, expires_at: exp, created_by: Vec::new() };
    let created = issuer.create_api_key(&new, now)?;
    let created_at = chrono::DateTime::<chrono::Utc>::from(now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    editor.add_api_key(&ApiKeyMeta {
        id: created.id.clone(),
        description,
        permissions: created.claims.permissions().map(str::to_owned).collect(),
        projects,
        created_at: Some(created_at),
        expires_at: expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        kid: Some(issuer.keyring().signing().kid().to_owned()),
        active: true,
        revoke_issued_before: None,
    });
    let (text, config) = editor.finish(base)?;
    anyhow::ensure!(config.version == created.claims.ver, "the config version moved during the edit");
    write_atomically(path, &text)?;
    eprintln!(
        "created API key {} (config version {}); the secret below is shown once: store it now",
        created.id, config.version
    );
    println!("{}", created.secret);
    Ok(())
}

fn set_active(
    path: &Path,
    text: &str,
    base: &Path,
    ids: &[String],
    active: bool,
    unlisted: bool,
) -> anyhow::Result<()> {
    let mut editor = ConfigEditor::new(text, base)?;
    let changed = editor.set_active(ids, active, unlisted)?;
    let state = if active { "active" } else { "deactivated" };
    if changed.is_empty() {
        println!("already {state}: {}; config unchanged", ids.join(", "));
        return Ok(());
    }
    let (text, config) = editor.finish(base)?;
    write_atomically(path, &text)?;
    println!("{state}: {} (config version {})", changed.join(", "), config.version);
    if !active {
        println!(
            "a running service picks the change up by itself and refuses them at once; verifiers within revocations_max_age"
        );
    }
    Ok(())
}
