//! The `tiermail-sim` binary. Scenario runs, chaos and the local
//! mini-cluster arrive with their issues; for now it only describes itself.

use clap::Parser;

/// tiermail's deterministic cluster simulator and local mini-cluster.
#[derive(Parser)]
#[command(version)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!("tiermail-sim: no subcommands yet (scenario runs, chaos and `cluster up` are coming)");
    std::process::exit(2);
}
