//! `keysmith check`.

use keysmith::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The config file to validate.
    #[arg(default_value = "config.toml")]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match Config::load(&args.config) {
        Ok(config) => {
            let active = config.templates().iter().filter(|t| t.active).count();
            println!(
                "{}: ok: version {}, {} project(s), {} template(s) ({active} active)",
                args.config.display(),
                config.version,
                config.projects.len(),
                config.templates().len(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
