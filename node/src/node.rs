//! A running node: binds every configured service through the seam, serves
//! until told to shut down, then drains in-flight sessions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tracing::info;

use crate::backend::Context;
use crate::backend::imap::Imap;
use crate::backend::pop3::Pop3;
use crate::backend::smtp::Smtp;
use crate::clock::Clock;
use crate::config::{Config, ProxyConfig, UserMapConfig};
use crate::directory::LocalAccounts;
use crate::directory::local_map::LocalMapFile;
use crate::net::{Listener, Net, SimNet, TokioNet};
use crate::proxy::backends::Backends;
use crate::proxy::imap::ImapProxy;
use crate::proxy::pop3::Pop3Proxy;
use crate::proxy::router::FileMapRouter;
use crate::proxy::smtp::SmtpProxy;
use crate::proxy::{ProxyContext, ProxySettings};
use crate::server::{Protocol, serve};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::store::{Disk, RealDisk, SimDisk, Store};

/// The outside world a node runs against: the seam's implementations.
#[derive(Clone)]
pub struct Env {
    pub net: Arc<dyn Net>,
    pub disk: Arc<dyn Disk>,
    /// Wall-clock time at start; the node's clock runs on from here.
    pub epoch: SystemTime,
    /// Whether CPU-heavy work (password hashing) moves to a blocking
    /// thread. Real processes: yes; simulation: no, everything stays on the
    /// simulator's one thread so runs stay deterministic.
    pub offload_cpu: bool,
}

impl Env {
    /// Real sockets and disk; `epoch` is the system time read at the edge.
    pub fn real(epoch: SystemTime) -> Self {
        Self { net: Arc::new(TokioNet), disk: Arc::new(RealDisk), epoch, offload_cpu: true }
    }

    /// turmoil's sockets and disk, for use inside a simulated host.
    pub fn simulated(epoch: SystemTime) -> Self {
        Self { net: Arc::new(SimNet), disk: Arc::new(SimDisk), epoch, offload_cpu: false }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for {service} on {addr}: {source}")]
    Bind { service: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("user map {name:?}: {errors}")]
    UserMap { name: String, errors: String },
}

/// A started node.
pub struct Node {
    trigger: ShutdownTrigger,
    services: JoinSet<()>,
    smtp: Option<SocketAddr>,
    pop3: Option<SocketAddr>,
    imap: Option<SocketAddr>,
    /// The local-file user maps, for SIGHUP.
    maps: Vec<Arc<LocalMapFile>>,
}

impl Node {
    /// Binds every listener (failing fast, naming the address) and starts
    /// serving.
    pub async fn start(config: Config, env: Env) -> Result<Node, StartError> {
        env.disk
            .create_dir_all(&config.data_dir)
            .map_err(|source| StartError::DataDir { dir: config.data_dir.display().to_string(), source })?;
        let clock = Clock::starting_at(env.epoch);
        let ctx = Arc::new(Context {
            hostname: config.node_name.clone(),
            limits: config.limits,
            accounts: Arc::new(LocalAccounts::from_config(&config)),
            store: Store::new(env.disk.clone(), config.data_dir.clone(), &config.node_name, clock),
            clock,
            offload_cpu: env.offload_cpu,
            sessions: Default::default(),
        });
        let smtp = bind(&*env.net, "SMTP", config.smtp).await?;
        let pop3 = bind(&*env.net, "POP3", config.pop3).await?;
        let imap = bind(&*env.net, "IMAP", config.imap).await?;
        let (trigger, shutdown) = Shutdown::new();
        let grace = Duration::from_secs(config.limits.shutdown_grace_secs);
        let mut node = Node {
            trigger,
            services: JoinSet::new(),
            smtp: local_addr(&smtp),
            pop3: local_addr(&pop3),
            imap: local_addr(&imap),
            maps: Vec::new(),
        };
        node.spawn(smtp, Smtp::new(ctx.clone()), &shutdown, grace);
        node.spawn(pop3, Pop3::new(ctx.clone()), &shutdown, grace);
        node.spawn(imap, Imap::new(ctx.clone()), &shutdown, grace);
        node.start_proxies(&config, &env, ctx.accounts.clone(), clock, &shutdown, grace).await?;
        info!(node = %config.node_name, data_dir = %config.data_dir.display(), "node started");
        Ok(node)
    }

    /// Loads the user maps the proxies use and starts each configured proxy.
    async fn start_proxies(
        &mut self,
        config: &Config,
        env: &Env,
        accounts: Arc<LocalAccounts>,
        clock: Clock,
        shutdown: &Shutdown,
        grace: Duration,
    ) -> Result<(), StartError> {
        let mut maps = BTreeMap::new();
        for (name, map) in &config.user_maps {
            let UserMapConfig::LocalFile { path } = map;
            let file = LocalMapFile::load(path).map_err(|errors| StartError::UserMap {
                name: name.clone(),
                errors: errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            })?;
            maps.insert(name.clone(), Arc::new(file));
        }
        self.maps = maps.values().cloned().collect();
        let own_proxies = config.proxies.listen_addrs();
        let context = |proxy: &ProxyConfig| {
            Arc::new(ProxyContext {
                settings: ProxySettings {
                    listen: proxy.listen,
                    auth_at: proxy.auth_at,
                    backend_port: proxy.backend_port,
                    failover: proxy.failover.clone(),
                    connect_timeout: proxy.connect_timeout,
                    own_proxies: own_proxies.clone(),
                },
                router: Arc::new(FileMapRouter { map: maps[&proxy.user_map].clone(), accounts: accounts.clone() }),
                backends: Backends::new(env.net.clone(), proxy.connect_timeout),
                limits: config.limits,
                shutdown: shutdown.clone(),
            })
        };
        if let Some(proxy) = &config.proxies.smtp {
            let listener = bind(&*env.net, "SMTP proxy", Some(proxy.listen)).await?;
            let service = SmtpProxy::new(context(proxy), config.domains.clone(), config.node_name.clone(), clock);
            self.spawn(listener, service, shutdown, grace);
        }
        if let Some(proxy) = &config.proxies.imap {
            let listener = bind(&*env.net, "IMAP proxy", Some(proxy.listen)).await?;
            self.spawn(listener, ImapProxy::new(context(proxy)), shutdown, grace);
        }
        if let Some(proxy) = &config.proxies.pop3 {
            let listener = bind(&*env.net, "POP3 proxy", Some(proxy.listen)).await?;
            self.spawn(listener, Pop3Proxy::new(context(proxy)), shutdown, grace);
        }
        Ok(())
    }

    fn spawn<P: Protocol>(
        &mut self,
        listener: Option<Box<dyn Listener>>,
        protocol: P,
        shutdown: &Shutdown,
        grace: Duration,
    ) {
        if let Some(listener) = listener {
            self.services.spawn(serve(listener, Arc::new(protocol), shutdown.clone(), grace));
        }
    }

    /// Re-reads every local-file user map (SIGHUP).
    pub fn reload_maps(&self) {
        self.maps.iter().for_each(|map| map.reload());
    }

    /// The bound SMTP address (useful when configured with port 0).
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp
    }

    /// The bound POP3 address.
    pub fn pop3_addr(&self) -> Option<SocketAddr> {
        self.pop3
    }

    /// The bound IMAP address.
    pub fn imap_addr(&self) -> Option<SocketAddr> {
        self.imap
    }

    /// Stops accepting, lets in-flight sessions finish (within the grace
    /// period), and returns when every service has stopped.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        self.trigger.shut_down();
        while self.services.join_next().await.is_some() {}
        info!("shut down cleanly");
    }

    /// Serves until the services stop on their own (they do not, short of a
    /// crash of the host): the simulator's host body.
    pub async fn run(mut self) {
        while self.services.join_next().await.is_some() {}
    }
}

async fn bind(
    net: &dyn Net,
    service: &'static str,
    addr: Option<SocketAddr>,
) -> Result<Option<Box<dyn Listener>>, StartError> {
    match addr {
        None => Ok(None),
        Some(addr) => net.bind(addr).await.map(Some).map_err(|source| StartError::Bind { service, addr, source }),
    }
}

fn local_addr(listener: &Option<Box<dyn Listener>>) -> Option<SocketAddr> {
    listener.as_ref().and_then(|l| l.local_addr().ok())
}
