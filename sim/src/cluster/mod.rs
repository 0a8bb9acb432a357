//! `tiermail-sim cluster`: a local mini-cluster of real `tiermail-node`
//! processes on loopback addresses, with the embedded LDAP server, and the
//! commands that act on it from a second terminal (kill, start, ldap).
//!
//! DIR holds everything: one config, data dir and log per node,
//! `cluster.json` (endpoints, accounts, pids, node status), `ldap.mode` and
//! `ldap.applied`.

pub mod layout;
pub mod process;
pub mod state;
mod up;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use layout::Layout;
use state::{ClusterState, Status};

/// How long `cluster ldap` waits for `cluster up` to apply the change.
const LDAP_APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The local mini-cluster.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// The cluster's directory: configs, data, logs, cluster.json.
    #[arg(long, global = true, default_value = "var/cluster", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the embedded LDAP server and one tiermail-node process per node; print endpoints and test accounts.
    ///
    /// The nodes route by the directory's mailHost and authenticate against it (LDAP Password, at the
    /// proxy and again at the back-end). Ctrl-C or SIGTERM stops every node.
    Up(UpArgs),
    /// SIGKILL a node of the running cluster (it stays down until `cluster start`).
    Kill {
        /// Node name, e.g. node-b or be-2.
        node: String,
    },
    /// Start a node of the running cluster again, with the same config and data.
    Start {
        /// Node name, e.g. node-b or be-2.
        node: String,
    },
    /// Take the embedded LDAP server down (connections are dropped) or bring it back up.
    Ldap {
        #[arg(value_enum)]
        mode: LdapMode,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LdapMode {
    Down,
    Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// Every node runs proxies and a back-end (node-a, node-b, ...).
    OneTier,
    /// Front-ends fe-1, fe-2 (proxies) and back-ends be-1, be-2.
    TwoTier,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[arg(long, value_enum, default_value = "one-tier")]
    pub layout: LayoutArg,
    /// Number of nodes (one-tier only).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Node k listens on this address + k [default: 127.0.0.10 one-tier, 127.0.0.20 two-tier].
    #[arg(long, value_name = "IP")]
    pub ip_base: Option<Ipv4Addr>,
    /// Where the embedded LDAP server listens.
    #[arg(long, default_value = "127.0.0.1:3389", value_name = "ADDR")]
    pub ldap: SocketAddr,
    /// `embedded` (the fixture directory, served by this process) or an
    /// external server's `ldap://HOST:PORT`, whose entries carry uid, mail,
    /// mailHost (node-a, node-b, ...) and userPassword like fixtures/directory.ldif.
    #[arg(long, default_value = "embedded", value_name = "embedded|URL")]
    pub directory: String,
    /// Service account of an external directory (reads userPassword).
    #[arg(long, default_value = "cn=admin,dc=example,dc=com", value_name = "DN")]
    pub bind_dn: String,
    /// Its password.
    #[arg(long, default_value = "admin-secret", value_name = "PASSWORD")]
    pub bind_password: String,
    /// Where the user entries are.
    #[arg(long, default_value = "ou=people,dc=example,dc=com", value_name = "DN")]
    pub base_dn: String,
    /// Restart a node that dies on its own (not one stopped with `cluster kill`).
    #[arg(long)]
    pub restart: bool,
}

impl UpArgs {
    /// The directory the nodes use.
    pub fn target(&self) -> layout::DirectoryTarget {
        let embedded = self.directory == "embedded";
        layout::DirectoryTarget {
            url: if embedded { format!("ldap://{}", self.ldap) } else { self.directory.clone() },
            bind_dn: self.bind_dn.clone(),
            bind_password: self.bind_password.clone(),
            base_dn: self.base_dn.clone(),
            embedded,
        }
    }

    pub fn layout(&self) -> Layout {
        match self.layout {
            LayoutArg::OneTier => Layout::OneTier,
            LayoutArg::TwoTier => Layout::TwoTier,
        }
    }

    pub fn ip_base(&self) -> Ipv4Addr {
        self.ip_base.unwrap_or(match self.layout {
            LayoutArg::OneTier => Ipv4Addr::new(127, 0, 0, 10),
            LayoutArg::TwoTier => Ipv4Addr::new(127, 0, 0, 20),
        })
    }
}

/// Runs a `cluster` subcommand.
pub fn run(args: ClusterArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Up(up) => up::run(&args.dir, &up),
        ClusterCommand::Kill { node } => kill(&args.dir, &node),
        ClusterCommand::Start { node } => start(&args.dir, &node),
        ClusterCommand::Ldap { mode } => ldap(&args.dir, mode),
    }
}

/// The running cluster's state; fails if its `up` process is gone.
fn running(dir: &Path) -> Result<ClusterState> {
    let state = ClusterState::read(dir)?;
    if !state::alive(state.up_pid) {
        bail!("the cluster in {} is not running (its `cluster up`, pid {}, is gone)", dir.display(), state.up_pid);
    }
    Ok(state)
}

fn unknown(state: &ClusterState, node: &str) -> anyhow::Error {
    let names: Vec<&str> = state.nodes.iter().map(|n| n.name.as_str()).collect();
    anyhow::anyhow!("no node {node:?} in this cluster (nodes: {})", names.join(", "))
}

fn kill(dir: &Path, node: &str) -> Result<()> {
    running(dir)?;
    let pid = ClusterState::update(dir, |s| {
        let unknown = unknown(s, node);
        let n = s.node_mut(node).ok_or(unknown)?;
        if n.status != Status::Running || !state::alive(n.pid) {
            bail!("node {node} is not running");
        }
        // Marked first, so `up` sees a kill, not a crash, when it reaps it.
        n.status = Status::Stopped;
        state::signal(n.pid, libc::SIGKILL);
        Ok(n.pid)
    })?;
    println!("killed {node} (pid {pid}); bring it back with `tiermail-sim cluster start {node}`");
    Ok(())
}

fn start(dir: &Path, node: &str) -> Result<()> {
    let began = Instant::now();
    running(dir)?;
    ClusterState::update(dir, |s| {
        let unknown = unknown(s, node);
        let n = s.node_mut(node).ok_or(unknown)?;
        if n.status == Status::Running && state::alive(n.pid) {
            bail!("node {node} is already running (pid {})", n.pid);
        }
        n.status = Status::StartRequested;
        Ok(())
    })?;
    // `up` starts it (so it stays `up`'s child); wait for that and its ports.
    let deadline = began + process::READY_TIMEOUT;
    let started = loop {
        let state = running(dir)?;
        let n = state.node(node).context("node vanished from cluster.json")?;
        match n.status {
            Status::Running if state::alive(n.pid) => break n.clone(),
            Status::StartRequested | Status::Running => {}
            other => bail!("node {node} did not start ({other:?}); see {}", n.log.display()),
        }
        if Instant::now() >= deadline {
            bail!("`cluster up` did not start {node} within {} s", process::READY_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let addresses: Vec<SocketAddr> = started.services.values().filter_map(|a| a.parse().ok()).collect();
    process::wait_ready(node, &addresses, &started.log, deadline, || {
        (!state::alive(started.pid)).then(|| "exited".to_owned())
    })?;
    println!("started {node} (pid {}), ready in {:.2} s", started.pid, began.elapsed().as_secs_f64());
    Ok(())
}

fn ldap(dir: &Path, mode: LdapMode) -> Result<()> {
    let state = running(dir)?;
    if !state.directory_embedded {
        bail!("the cluster uses an external directory ({}): stop and start that server yourself", state.directory);
    }
    let word = match mode {
        LdapMode::Down => "down",
        LdapMode::Up => "up",
    };
    state::write_ldap_mode(dir, word)?;
    // `up` applies it within its poll interval and says so in ldap.applied;
    // returning only then lets a script log in right after and see it.
    let deadline = Instant::now() + LDAP_APPLY_TIMEOUT;
    while state::read_ldap_applied(dir).as_deref() != Some(word) {
        let up_pid = running(dir)?.up_pid;
        if Instant::now() >= deadline {
            bail!(
                "`cluster up` (pid {up_pid}) did not apply `ldap {word}` within {} s; the directory may not be {word}",
                LDAP_APPLY_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let effect = match mode {
        LdapMode::Down => "connections dropped, new ones refused",
        LdapMode::Up => "answering again",
    };
    println!("directory {} is {word}: in effect ({effect})", state.directory);
    Ok(())
}
