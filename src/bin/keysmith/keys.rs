//! `keysmith keys`: the signing-key lifecycle (next → active → retired → removed), recorded in
//! `keys/keyring.toml`.

use chrono::Utc;
use keysmith::Config;
use keysmith::keys::{KeyState, KeyringState, LifecycleError, Policy, Rotation};
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
        /// The key id.
        kid: String,
    },
    /// Remove a retired key from the JWKS and delete its file.
    Remove {
        /// The key id.
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
    keysmith::keys::create_private_dir(&args.keys)?;
    let _lock = keysmith::config::lock(&args.keys.join(keysmith::keys::STATE_FILE))?;
    let mut state = match KeyringState::load(&args.keys)? {
        Some(state) => state,
        None if matches!(args.command, Command::List) && !args.keys.join(keysmith::keys::STATE_FILE).exists() => {
            KeyringState::adopt(&args.keys, now)?
        }
        None => {
            let state = KeyringState::adopt(&args.keys, now)?;
            eprintln!(
                "{}: no lifecycle record yet; recording the newest key as active, the others as retired",
                args.keys.display()
            );
            state
        }
    };
    let result = match args.command {
        Command::List => {
            list(&state, &config, policy, now);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Rotate { force } => {
            state.rotate(&args.keys, policy, now, force).map(|Rotation { retired, activated: active, next }| {
                if let Some(retired) = retired {
                    println!("retired {retired}");
                }
                println!("active  {active}");
                println!(
                    "next    {next} (published now; may become active in {} s)",
                    policy.jwks_max_age.num_seconds()
                );
            })
        }
        Command::Retire { kid } => state.retire(&kid, now).map(|()| println!("retired {kid}")),
        Command::Remove { kid, force } => match state.remove(&args.keys, &kid, &config, now, force) {
            Ok((file, broken)) => {
                for reason in &broken {
                    eprintln!("warning: forced removal of {kid} breaks: {reason}");
                }
                // Record first, then delete: a crash in between leaves an unlisted file, not a
                // record naming a missing one.
                state.save(&args.keys)?;
                std::fs::remove_file(&file)?;
                println!("removed {kid}");
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => {
            state.save(&args.keys)?;
            println!("the running service picks this up on its next reload");
            Ok(ExitCode::SUCCESS)
        }
        Err(LifecycleError::NoNext) => {
            // The first rotation publishes the key that the next one will promote.
            let kid = state.add_next(&args.keys, now)?;
            state.save(&args.keys)?;
            println!(
                "next    {kid} (published now; run `keysmith keys rotate` again in {} s to make it active)",
                policy.jwks_max_age.num_seconds()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (LifecycleError::TooSoon { .. } | LifecycleError::StillNeeded { .. })) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn list(state: &KeyringState, config: &Config, policy: Policy, now: chrono::DateTime<Utc>) {
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    println!(
        "{:<44} {:<8} {:<20} {:<20} {:<20} {:<20} PINNED BY",
        "KID", "STATE", "CREATED", "ACTIVATED", "RETIRED", "RETIRE-AFTER"
    );
    for k in &state.keys {
        let state_name = match k.state {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        };
        let pins: Vec<&str> = config
            .api_keys()
            .iter()
            .filter(|a| a.active && a.kid.as_deref() == Some(k.kid.as_str()))
            .map(|a| a.id.as_str())
            .collect();
        let after = state.removable_after(&k.kid, policy);
        let removable = k.state == KeyState::Retired && after.is_some_and(|a| a <= now) && pins.is_empty();
        println!(
            "{:<44} {:<8} {:<20} {:<20} {:<20} {:<20} {}{}",
            k.kid,
            state_name,
            time(Some(k.created)),
            time(k.activated),
            time(k.retired),
            time(after),
            if pins.is_empty() { "-".to_owned() } else { pins.join(",") },
            if removable { "  (removable)" } else { "" },
        );
    }
}
