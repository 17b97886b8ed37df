//! `staffroom`: the command teachers use to run their school's node and to write and read
//! blogs, resources and enquiry notes. `anyhow` lives here, at the binary's edge; exit codes
//! are 0 for success (and for a closed pipe, as `staffroom list | head` expects), 1 for an
//! error, 2 for a usage error (from clap). Under `--json`, an error is one JSON object on
//! stderr, `{"code": …, "error": …}`, with the same exit codes.

mod args;
mod commands;
mod errors;
mod markdown;
mod render;
mod teacher;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let json = std::env::args().skip(1).any(|a| a == "--json");
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            errors::print_json("usage", &e.to_string());
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if errors::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if json => {
            errors::print_json(errors::code(&e), &errors::message(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", errors::message(&e));
            ExitCode::FAILURE
        }
    }
}
