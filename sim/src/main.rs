//! The `tiermail-sim` binary: scenario runs, chaos, seed replay, and the
//! local mini-cluster (`cluster up` and the commands acting on it).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tiermail_sim::cli::{self, BenchArgs, ChaosArgs, ReplayArgs, RunArgs, SelftestArgs};
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
    /// Run scenario files in simulation (default: every scenarios/*.toml).
    Run(RunArgs),
    /// Run random fault schedules and check the invariants after each.
    Chaos(ChaosArgs),
    /// Rerun one chaos seed with its full event log, optionally as an HTML report.
    Replay(ReplayArgs),
    /// Simulated seconds per wall second, and chaos seeds per minute.
    Bench(BenchArgs),
    /// How many chaos seeds each deliberate bug survives (build with --features sim-bugs).
    Selftest(SelftestArgs),
    /// A local mini-cluster of real tiermail-node processes on 127.0.0.x, with the embedded LDAP server.
    Cluster(ClusterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run(args),
        Command::Chaos(args) => cli::chaos(args),
        Command::Replay(args) => cli::replay(args),
        Command::Bench(args) => cli::bench(args),
        Command::Selftest(args) => cli::selftest(args),
        Command::Cluster(args) => cluster::run(args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tiermail-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}
