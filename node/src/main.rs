//! The `tiermail-node` binary: run a node, or check its config.

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use tiermail_node::directory::local_map::LocalMapFile;
use tiermail_node::directory::password::{self, Scheme};
use tiermail_node::directory::settings::UserMapKind;
use tiermail_node::{Config, Env, Node};
use tokio::signal::unix::{SignalKind, signal};

/// A tiermail cluster node: back-end SMTP, POP3 and IMAP on a durable Maildir store.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Run the node described by this config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file: print OK, or every error with file, line and key.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// Hash a password for the config's `[[account]] password` (reads it from stdin).
    HashPassword {
        /// SSHA256, SSHA512, SHA512-CRYPT or ARGON2ID.
        #[arg(long, default_value = "SHA512-CRYPT")]
        scheme: Scheme,
    },
    /// Measure SMTP and POP3 throughput of a node process on loopback, next to Postfix's smtp-sink.
    Bench(bench::BenchArgs),
    /// Measure LDAP user-map lookups/s and logins/s against OpenLDAP's slapd, cache off and on.
    BenchLdap(bench::ldap::Args),
    /// Measure IMAP sessions/s and FETCH throughput direct, through our proxy and through nginx's mail proxy.
    BenchProxy(bench::proxy::Args),
}

fn main() -> ExitCode {
    if tiermail_node::DELIBERATE_BUGS {
        eprintln!(
            "tiermail-node: this binary was built with the `sim-bugs` feature (deliberate bugs for \
             tiermail-sim's self-tests) and will not run; rebuild it without that feature \
             (`cargo build -p tiermail-node`, no --features sim-bugs or --all-features)"
        );
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::CheckConfig { file }), _) => match Config::load(&file) {
            Ok(config) => {
                // The files the config names must parse too.
                let mut failed = false;
                for map in config.user_maps.iter().filter(|m| *m.kind.get_ref() == UserMapKind::LocalFile) {
                    let path =
                        config.config_dir.join(map.path.as_ref().map(|p| p.get_ref().clone()).unwrap_or_default());
                    if let Err(errors) = LocalMapFile::load(&path) {
                        errors.iter().for_each(|e| eprintln!("{e}"));
                        failed = true;
                    }
                }
                if failed {
                    return ExitCode::FAILURE;
                }
                println!("{}: OK", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        (Some(Command::Bench(args)), _) => bench::main(args),
        (Some(Command::BenchLdap(args)), _) => bench::ldap::main(args),
        (Some(Command::BenchProxy(args)), _) => bench::proxy::main(args),
        (Some(Command::HashPassword { scheme }), _) => hash_password(scheme),
        (None, Some(file)) => run(&file),
        (None, None) => {
            eprintln!("tiermail-node: give --config FILE to run a node, or see --help");
            ExitCode::from(2)
        }
    }
}

/// Reads one line from stdin and prints its hash; the salt comes from the
/// OS's random source (this is the binary's edge, not node code).
fn hash_password(scheme: Scheme) -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("tiermail-node: cannot read the password from stdin");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("tiermail-node: empty password (type it, then Enter; or pipe it in)");
        return ExitCode::FAILURE;
    }
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    println!("{}", password::hash(scheme, password, &salt));
    ExitCode::SUCCESS
}

fn run(file: &std::path::Path) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tiermail-node: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        // The binary's edge: the one read of the system clock, and the OS's
        // randomness for the LDAP login cache's key.
        let mut salt = [0u8; 32];
        rand::fill(&mut salt);
        let node = match Node::start(config, Env::real(SystemTime::now(), salt)).await {
            Ok(node) => node,
            Err(e) => {
                eprintln!("tiermail-node: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
        else {
            eprintln!("tiermail-node: cannot install signal handlers");
            return ExitCode::FAILURE;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                // SIGHUP: re-read the user map files now.
                _ = hup.recv() => node.reload_maps(),
            }
        }
        node.shutdown().await;
        ExitCode::SUCCESS
    })
}
