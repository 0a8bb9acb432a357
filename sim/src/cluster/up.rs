//! `cluster up`: generate DIR, start the directory and the nodes, wait until
//! they answer, print the endpoints, then supervise until Ctrl-C/SIGTERM.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tiermail_node::shutdown::Shutdown;
use tokio::signal::unix::{SignalKind, signal};

use super::UpArgs;
use super::layout::Plan;
use super::process::{self, READY_TIMEOUT};
use super::state::{self, AccountState, ClusterState, NodeState, Status};
use crate::ldap_server::{self, Directory, DirectoryControl, Mode, ServerConfig};

/// How long stopping waits for nodes after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);

pub fn run(dir: &Path, args: &UpArgs) -> Result<()> {
    let began = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    if let Ok(old) = ClusterState::read(&dir)
        && old.up_pid != std::process::id()
        && state::alive(old.up_pid)
    {
        bail!("a cluster is already running from {} (`cluster up` pid {})", dir.display(), old.up_pid);
    }
    let directory = Arc::new(Directory::fixture());
    let plan = Plan::new(args.layout(), args.nodes, args.ip_base(), &directory).map_err(anyhow::Error::msg)?;
    let binary = process::node_binary()?;

    let target = args.target();
    let mut wanted = Vec::new();
    if target.embedded {
        wanted.push(("embedded LDAP server".to_owned(), args.ldap));
    }
    for node in &plan.nodes {
        wanted.extend(node.services().into_iter().map(|(what, a)| (format!("{} {what}", node.name), a)));
    }
    process::check_free(&wanted)?;

    // Files: one config per node; the directory starts up.
    state::write_ldap_mode(&dir, "up")?;
    state::write_ldap_applied(&dir, "up")?;
    let mut nodes = Vec::new();
    for node in &plan.nodes {
        let config = dir.join(format!("{}.toml", node.name));
        std::fs::write(&config, plan.node_config(node, &dir, &target))?;
        let services = node.services().into_iter().map(|(k, a)| (k.to_owned(), a.to_string())).collect();
        nodes.push(NodeState {
            name: node.name.clone(),
            role: node.role.name().to_owned(),
            pid: 0,
            status: Status::Running,
            config,
            log: dir.join(format!("{}.log", node.name)),
            services,
        });
    }

    // Signals are caught from here on; the directory runs on the runtime.
    let runtime = tokio::runtime::Runtime::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    let control = DirectoryControl::new();
    let (trigger, shutdown) = Shutdown::new();
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let flag = stop.clone();
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            flag.store(true, Ordering::SeqCst);
        });
        if target.embedded {
            let listener = tokio::net::TcpListener::bind(args.ldap)
                .await
                .with_context(|| format!("cannot listen on {} (embedded LDAP server)", args.ldap))?;
            let served = ldap_server::serve(
                Box::new(listener),
                directory.clone(),
                ServerConfig::fixture(),
                control.clone(),
                shutdown,
            );
            tokio::spawn(served);
        }
        anyhow::Ok(())
    })?;

    let mut sup = Supervisor { dir: dir.clone(), binary, children: HashMap::new(), restart: args.restart };
    let started = sup.start_all(&mut nodes, &stop);
    let ready_ms = began.elapsed().as_millis() as u64;
    let state = ClusterState {
        directory: target.url.clone(),
        directory_embedded: target.embedded,
        nodes_use_directory: true,
        layout: plan.layout.name().to_owned(),
        up_pid: std::process::id(),
        ready_ms,
        nodes,
        accounts: plan
            .accounts
            .iter()
            .map(|a| AccountState { user: a.user.clone(), password: a.password.clone(), home: a.home.clone() })
            .collect(),
        unserved: plan.unserved.iter().map(|u| (u.user.clone(), u.reason.clone())).collect(),
    };
    let result = started.and_then(|()| {
        state.write(&dir)?;
        print_table(&state, &dir, &plan);
        sup.supervise(&stop, &control)
    });
    sup.stop_all(&dir);
    trigger.shut_down();
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    println!("cluster stopped");
    Ok(())
}

struct Supervisor {
    dir: PathBuf,
    binary: PathBuf,
    /// Our node processes by name.
    children: HashMap<String, Child>,
    restart: bool,
}

impl Supervisor {
    fn spawn(&mut self, node: &mut NodeState) -> Result<()> {
        let child = process::spawn(&self.binary, &node.config, &node.log, true)?;
        node.pid = child.id();
        node.status = Status::Running;
        self.children.insert(node.name.clone(), child);
        Ok(())
    }

    /// Starts every node, then waits for all their ports.
    fn start_all(&mut self, nodes: &mut [NodeState], stop: &AtomicBool) -> Result<()> {
        for node in nodes.iter_mut() {
            self.spawn(node)?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in nodes.iter() {
            let addresses: Vec<SocketAddr> = node.services.values().filter_map(|a| a.parse().ok()).collect();
            let child = self.children.get_mut(&node.name).expect("just spawned");
            process::wait_ready(&node.name, &addresses, &node.log, deadline, || {
                if stop.load(Ordering::SeqCst) {
                    return Some("was interrupted (signal)".to_owned());
                }
                match child.try_wait() {
                    Ok(Some(status)) => Some(format!("exited ({status})")),
                    _ => None,
                }
            })?;
        }
        Ok(())
    }

    /// Until a signal: reports nodes that die (restarting them with
    /// --restart), starts nodes `cluster start` asks for, applies ldap.mode.
    fn supervise(&mut self, stop: &AtomicBool, control: &DirectoryControl) -> Result<()> {
        let mut ldap_down = false;
        let mut last_spawn: HashMap<String, Instant> = HashMap::new();
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(POLL);
            let down = state::read_ldap_mode(&self.dir).as_deref() == Some("down");
            if down != ldap_down {
                ldap_down = down;
                // In effect once set: the server reads the mode on every
                // accept and every request.
                control.set_mode(if down { Mode::Down } else { Mode::Normal });
                println!("directory is now {}", if down { "DOWN (connections dropped)" } else { "up" });
                if let Err(e) = state::write_ldap_applied(&self.dir, if down { "down" } else { "up" }) {
                    eprintln!("tiermail-sim: {e:#}; `cluster ldap` will time out");
                }
            }
            let mut exited: BTreeMap<String, String> = BTreeMap::new();
            for (name, child) in self.children.iter_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    exited.insert(name.clone(), status.to_string());
                }
            }
            for name in exited.keys() {
                self.children.remove(name);
            }
            let dir = self.dir.clone();
            ClusterState::update(&dir, |s| {
                for node in s.nodes.iter_mut() {
                    let own = self.children.contains_key(&node.name);
                    let died = exited.get(&node.name).cloned();
                    match node.status {
                        Status::Stopped => {
                            if died.is_some() {
                                println!("node {} stopped by `cluster kill`", node.name);
                            }
                        }
                        Status::Running => {
                            let died = died.or_else(|| (!own && !state::alive(node.pid)).then(|| "gone".to_owned()));
                            let Some(how) = died else { continue };
                            let recent =
                                last_spawn.get(&node.name).is_some_and(|t| t.elapsed() < Duration::from_secs(1));
                            if self.restart && recent {
                                continue; // retried on a later tick
                            }
                            eprintln!(
                                "tiermail-sim: node {} (pid {}) died: {how}; log {}",
                                node.name,
                                node.pid,
                                node.log.display()
                            );
                            eprint!("{}", process::tail(&node.log, 5));
                            if self.restart {
                                eprintln!("tiermail-sim: restarting {} (--restart)", node.name);
                                last_spawn.insert(node.name.clone(), Instant::now());
                                self.spawn(node)?;
                            } else {
                                node.status = Status::Dead;
                                eprintln!("tiermail-sim: start it with `tiermail-sim cluster start {}`", node.name);
                            }
                        }
                        Status::StartRequested => {
                            if own {
                                continue;
                            }
                            println!("starting {} (`cluster start`)", node.name);
                            last_spawn.insert(node.name.clone(), Instant::now());
                            if let Err(e) = self.spawn(node) {
                                eprintln!("tiermail-sim: cannot start {}: {e:#}", node.name);
                                node.status = Status::Dead;
                            }
                        }
                        Status::Dead | Status::Exited => {}
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// SIGTERM to every node, SIGKILL to those still there after the grace.
    fn stop_all(&mut self, dir: &Path) {
        let state = ClusterState::read(dir).ok();
        let mut pids: Vec<u32> = self.children.values().map(|c| c.id()).collect();
        if let Some(s) = &state {
            pids.extend(s.nodes.iter().filter(|n| n.status == Status::Running).map(|n| n.pid));
        }
        pids.sort_unstable();
        pids.dedup();
        for &pid in &pids {
            state::signal(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            for child in self.children.values_mut() {
                let _ = child.try_wait();
            }
            let left: Vec<u32> = pids.iter().copied().filter(|&p| state::alive(p)).collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!("tiermail-sim: nodes {left:?} did not stop within {} s; killing them", STOP_GRACE.as_secs());
                for &p in &left {
                    state::signal(p, libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for child in self.children.values_mut() {
            let _ = child.wait();
        }
        self.children.clear();
        let _ = ClusterState::update(dir, |s| {
            s.nodes.iter_mut().for_each(|n| n.status = Status::Exited);
            Ok(())
        });
    }
}

fn print_table(state: &ClusterState, dir: &Path, plan: &Plan) {
    let ready = state.ready_ms as f64 / 1000.0;
    println!(
        "tiermail {} cluster ready in {ready:.2} s ({} nodes); state in {}",
        state.layout,
        state.nodes.len(),
        dir.join(state::CLUSTER_JSON).display()
    );
    println!();
    println!(
        "{:<8} {:<14} {:<19} {:<19} {:<19} {:<33} {:>7}",
        "NODE", "ROLE", "SMTP proxy", "IMAP proxy", "POP3 proxy", "back-end SMTP / IMAP / POP3", "PID"
    );
    for n in &state.nodes {
        let get = |k: &str| n.services.get(k).cloned().unwrap_or_else(|| "-".to_owned());
        let backend = match n.services.get("smtp_backend") {
            Some(smtp) => format!("{smtp} :{} :{}", port(&get("imap_backend")), port(&get("pop3_backend"))),
            None => "-".to_owned(),
        };
        let (s, i, p) = (get("smtp_proxy"), get("imap_proxy"), get("pop3_proxy"));
        println!("{:<8} {:<14} {s:<19} {i:<19} {p:<19} {backend:<33} {:>7}", n.name, n.role, n.pid);
    }
    println!();
    if state.directory_embedded {
        println!(
            "directory: {} (embedded LDAP, fixtures/directory.ldif; admin bind {} / {})",
            state.directory,
            ldap_server::FIXTURE_ADMIN_DN,
            ldap_server::FIXTURE_ADMIN_PASSWORD
        );
    } else {
        println!("directory: {} (external; the accounts below are the fixture's, if it holds them)", state.directory);
    }
    println!("  the nodes route by each entry's mailHost and check passwords in the directory (LDAP Password).");
    println!();
    println!("{:<20} {:<12} HOME", "ACCOUNT", "PASSWORD");
    for a in &state.accounts {
        println!("{:<20} {:<12} {}", a.user, a.password.as_deref().unwrap_or("?"), a.home);
    }
    for (user, reason) in &state.unserved {
        println!("{user:<20} {:<12} not served: {reason}", "-");
    }
    // A tour: through a proxy of a node other than alice's home.
    let proxies: Vec<&NodeState> = state.nodes.iter().filter(|n| n.services.contains_key("smtp_proxy")).collect();
    if let Some(a) = plan.accounts.first()
        && let Some(via) = proxies.iter().find(|n| n.name != a.home).or(proxies.first())
    {
        let pw = a.password.as_deref().unwrap_or("PASSWORD");
        println!();
        println!(
            "try:  swaks --server {} --to {} --from you@example.org --body hi",
            via.services["smtp_proxy"], a.user
        );
        println!("      curl -sS -u {}:{pw} 'imap://{}/INBOX;UID=1'", a.user, via.services["imap_proxy"]);
    }
    let d = dir.display();
    println!("then: tiermail-sim cluster kill|start NODE --dir {d}; tiermail-sim cluster ldap down|up --dir {d}");
    println!("Ctrl-C stops the cluster.");
}

fn port(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(_, p)| p)
}
