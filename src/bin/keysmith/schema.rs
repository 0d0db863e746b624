//! `keysmith schema`.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    println!("{}", keysmith::config::json_schema()?);
    Ok(ExitCode::SUCCESS)
}
