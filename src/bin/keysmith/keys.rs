//! `keysmith keys`: the signing-key lifecycle (next → active → retired → removed), recorded in
//! `keys/keyring.toml`.

use chrono::Utc;
use keysmith::Config;
use keysmith::admin::{AdminError, KeyDirectory, KeyListing, RotateOutcome};
use keysmith::keys::{KeyState, LifecycleError, Policy, Rotation};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The directory of signing keys.
    #[arg(long, global = true, env = "KEYSMITH_KEYS", default_value = "keys")]
    keys: PathBuf,
    /// The config, for the timings (`jwks_max_age`, longest `expiration_duration`) and the
    /// permanent keys a signing key must stay published for.
    #[arg(long, global = true, env = "KEYSMITH_CONFIG", default_value = "config.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Show every key: kid, state, created, activated, retired, retire-after, pinned by.
    List,
    /// Promote next → active, active → retired, and generate a new next key.
    Rotate {
        /// Promote even if the next key has not been published for `jwks_max_age` yet.
        #[arg(long)]
        force: bool,
    },
    /// Retire a next key that should never sign.
    Retire {
        /// The key id (it may start with `-`: key ids are base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Remove a retired key from the JWKS and delete its file.
    Remove {
        /// The key id (it may start with `-`: key ids are base64url).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Remove it even while tokens or permanent keys still need it.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let policy = Policy::of(&config);
    let now = Utc::now();
    let mut keys = KeyDirectory::open(&args.keys, now)?;
    if keys.adopted() && !matches!(args.command, Command::List) {
        eprintln!(
            "{}: no lifecycle record yet; recording the newest key as active, the others as retired",
            args.keys.display()
        );
    }
    let wait = policy.jwks_max_age.num_seconds();
    let result = match args.command {
        Command::List => {
            list(&keys.list(&config, now));
            return Ok(ExitCode::SUCCESS);
        }
        Command::Rotate { force } => keys.rotate(policy, now, force).map(|outcome| match outcome {
            RotateOutcome::Rotated(Rotation { retired, activated, next }) => {
                if let Some(retired) = retired {
                    println!("retired {retired}");
                }
                println!("active  {activated}");
                println!("next    {next} (published now; may become active in {wait} s)");
            }
            RotateOutcome::FirstNext { next } => println!(
                "next    {next} (published now; run `keysmith keys rotate` again in {wait} s to make it active)"
            ),
        }),
        Command::Retire { kid } => keys.retire(&kid, now).map(|()| println!("retired {kid}")),
        Command::Remove { kid, force } => keys.remove(&kid, &config, now, force).map(|removal| {
            for reason in &removal.broken {
                eprintln!("warning: forced removal of {kid} breaks: {reason}");
            }
            println!("removed {kid}");
        }),
    };
    match result {
        Ok(()) => {
            println!("the running service picks this up on its next reload");
            Ok(ExitCode::SUCCESS)
        }
        Err(AdminError::Lifecycle(e @ (LifecycleError::TooSoon { .. } | LifecycleError::StillNeeded { .. }))) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn list(keys: &[KeyListing]) {
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    println!(
        "{:<44} {:<8} {:<20} {:<20} {:<20} {:<20} PINNED BY",
        "KID", "STATE", "CREATED", "ACTIVATED", "RETIRED", "RETIRE-AFTER"
    );
    for KeyListing { record: k, removable_after, pinned_by, removable } in keys {
        let state_name = match k.state {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        };
        println!(
            "{:<44} {:<8} {:<20} {:<20} {:<20} {:<20} {}{}",
            k.kid,
            state_name,
            time(Some(k.created)),
            time(k.activated),
            time(k.retired),
            time(*removable_after),
            if pinned_by.is_empty() { "-".to_owned() } else { pinned_by.join(",") },
            if *removable { "  (removable)" } else { "" },
        );
    }
}
