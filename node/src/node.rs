//! A running node: binds every configured service through the seam, serves
//! until told to shut down, then drains in-flight sessions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;
use tracing::info;

use crate::backend::Context;
use crate::backend::home::OwnNames;
use crate::backend::imap::Imap;
use crate::backend::pop3::Pop3;
use crate::backend::smtp::Smtp;
use crate::clock::Clock;
use crate::config::{Config, ProxyConfig};
use crate::directory::LocalAccounts;
use crate::directory::ldap::Connector;
use crate::directory::ldap::ldap3_ops::Ldap3Ops;
use crate::directory::ldap::ops::LdapOps;
use crate::directory::ldap::seam_ops::SeamOps;
use crate::directory::settings::UserMapKind;
use crate::directory::usermap::UserMap;
use crate::net::{Listener, Net, SimNet, TokioNet};
use crate::proxy::backends::Backends;
use crate::proxy::imap::ImapProxy;
use crate::proxy::pop3::Pop3Proxy;
use crate::proxy::router::MapRouter;
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
    /// Wall-clock time: real from the epoch read at start, or the
    /// simulation's one timeline.
    pub clock: Clock,
    /// Whether CPU-heavy work (password hashing) moves to a blocking
    /// thread. Real processes: yes; simulation: no, everything stays on the
    /// simulator's one thread so runs stay deterministic.
    pub offload_cpu: bool,
    /// How LDAP directories are reached.
    pub ldap: Arc<dyn LdapOps>,
    /// Keys the LDAP login cache; random per process for real (read at the
    /// binary's edge), derived from the seed in simulation.
    pub salt: [u8; 32],
}

impl Env {
    /// Real sockets and disk; `epoch` is the system time read at the edge.
    pub fn real(epoch: SystemTime, salt: [u8; 32]) -> Self {
        Self {
            net: Arc::new(TokioNet),
            disk: Arc::new(RealDisk),
            clock: Clock::starting_at(epoch),
            offload_cpu: true,
            ldap: Arc::new(Ldap3Ops),
            salt,
        }
    }

    /// turmoil's sockets and disk, for use inside a simulated host;
    /// `epoch` is when the simulation began (see [`Clock::simulated`]).
    pub fn simulated(epoch: SystemTime, salt: [u8; 32]) -> Self {
        let net: Arc<dyn Net> = Arc::new(SimNet);
        Self {
            ldap: Arc::new(SeamOps::new(net.clone())),
            net,
            disk: Arc::new(SimDisk),
            clock: Clock::simulated(epoch),
            offload_cpu: false,
            salt,
        }
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
    /// The user maps, for SIGHUP.
    maps: Vec<Arc<UserMap>>,
}

impl Node {
    /// Binds every listener (failing fast, naming the address) and starts
    /// serving.
    pub async fn start(config: Config, env: Env) -> Result<Node, StartError> {
        let data_dir_error = |source| StartError::DataDir { dir: config.data_dir.display().to_string(), source };
        if !env.disk.exists(&config.data_dir) {
            env.disk.create_dir_all(&config.data_dir).map_err(data_dir_error)?;
            // Make the new directory's own entry durable, or a power cut
            // could take the whole store with it.
            if let Some(parent) = config.data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                env.disk.sync_dir(parent).map_err(data_dir_error)?;
            }
        }
        let clock = env.clock;
        let maps = user_maps(&config, &env)?;
        let auth_map = config.backend_auth_map.as_ref().map(|name| maps[name].clone());
        let ctx = Arc::new(Context {
            hostname: config.node_name.clone(),
            limits: config.limits,
            accounts: Arc::new(LocalAccounts::from_config(&config)),
            store: Store::new(env.disk.clone(), config.data_dir.clone(), &config.node_name, clock),
            clock,
            offload_cpu: env.offload_cpu,
            sessions: Default::default(),
            auth_map,
            own_names: OwnNames::new(
                &config.node_name,
                [config.smtp, config.pop3, config.imap].into_iter().flatten(),
                &config.hosts,
            ),
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
        node.maps = maps.values().cloned().collect();
        node.start_proxies(&config, &env, &maps, &ctx, &shutdown, grace).await?;
        info!(node = %config.node_name, data_dir = %config.data_dir.display(), "node started");
        Ok(node)
    }

    /// Starts each configured proxy on its user map.
    async fn start_proxies(
        &mut self,
        config: &Config,
        env: &Env,
        maps: &BTreeMap<String, Arc<UserMap>>,
        ctx: &Context,
        shutdown: &Shutdown,
        grace: Duration,
    ) -> Result<(), StartError> {
        let own_proxies = config.proxies.listen_addrs();
        let context = |proxy: &ProxyConfig| {
            Arc::new(ProxyContext {
                settings: ProxySettings {
                    listen: proxy.listen,
                    auth_at: proxy.auth_at,
                    backend_port: proxy.backend_port,
                    failover: proxy.failover.clone(),
                    connect_timeout: proxy.connect_timeout,
                    login_timeout: proxy
                        .login_timeout
                        .unwrap_or_else(|| crate::config::proxies::default_login_timeout(&config.directories)),
                    own_proxies: own_proxies.clone(),
                    hosts: config.hosts.clone(),
                },
                router: Arc::new(MapRouter { map: maps[&proxy.user_map].clone(), accounts: ctx.accounts.clone() }),
                backends: Backends::new(env.net.clone(), proxy.connect_timeout),
                limits: config.limits,
                shutdown: shutdown.clone(),
            })
        };
        if let Some(proxy) = &config.proxies.smtp {
            let listener = bind(&*env.net, "SMTP proxy", Some(proxy.listen)).await?;
            let service = SmtpProxy::new(context(proxy), config.domains.clone(), config.node_name.clone(), ctx.clock);
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

    /// Re-reads local-file maps and forgets cached LDAP answers (SIGHUP).
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

/// Builds every `[[user_map]]`: local files are read now (a broken file
/// stops the start), LDAP maps get a connector on their `[[directory]]`
/// (connectors shared per directory).
fn user_maps(config: &Config, env: &Env) -> Result<BTreeMap<String, Arc<UserMap>>, StartError> {
    let mut connectors: BTreeMap<String, Connector> = BTreeMap::new();
    let mut maps = BTreeMap::new();
    for section in &config.user_maps {
        let name = section.name.get_ref().clone();
        let error = |errors: String| StartError::UserMap { name: name.clone(), errors };
        let map = match section.kind.get_ref() {
            UserMapKind::LocalFile => {
                let path =
                    config.config_dir.join(section.path.as_ref().map(|p| p.get_ref().clone()).unwrap_or_default());
                UserMap::local_file(section, &path, &config.domains)
                    .map_err(|errors| error(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?
            }
            UserMapKind::LdapPassword | UserMapKind::LdapBind => {
                let dir_name = section.directory.as_ref().map(|d| d.get_ref().clone()).unwrap_or_default();
                let connector = match connectors.get(&dir_name) {
                    Some(c) => c.clone(),
                    None => {
                        let dir = config
                            .directories
                            .iter()
                            .find(|d| d.name == dir_name)
                            .ok_or_else(|| error(format!("no [[directory]] named {dir_name:?}")))?;
                        let connector = Connector::new(dir.clone(), env.ldap.clone());
                        connectors.insert(dir_name, connector.clone());
                        connector
                    }
                };
                UserMap::ldap(section, connector, &config.domains, env.salt).map_err(|e| error(e.to_string()))?
            }
        };
        maps.insert(name, Arc::new(map));
    }
    Ok(maps)
}
