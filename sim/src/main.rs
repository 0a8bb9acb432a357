//! The `tiermail-sim` binary: the local mini-cluster (`cluster up` and the
//! commands acting on it). Scenario runs and chaos arrive with their issues.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tiermail_sim::cluster::{self, ClusterArgs};

/// tiermail's deterministic cluster simulator and local mini-cluster.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A local mini-cluster of real tiermail-node processes on 127.0.0.x, with the embedded LDAP server.
    Cluster(ClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cluster(args) => cluster::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiermail-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
