use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Read the allowed cores before any thread is pinned.
    corelanes::topology::Topology::get();
    corelanes::cli::run(corelanes::cli::Cli::parse())
}
