//! Connections to one directory's servers: failover in the configured
//! order (a server that failed is skipped for a while, then tried again),
//! a per-attempt timeout, and a small pool of open connections that are
//! replaced when the server dropped them while idle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout};
use tracing::{debug, info, warn};

use super::ops::{BindResult, Entry, LdapConn, LdapError, LdapOps, Search};
use super::tls::TlsSettings;

/// The servers of one directory and which of them recently failed; shared
/// by the connector's pools so they agree on who is down.
pub(super) struct Servers {
    pub(super) directory: String,
    urls: Vec<String>,
    tls: TlsSettings,
    retry_dead_after: Duration,
    dead_until: Mutex<Vec<Option<Instant>>>,
}

impl Servers {
    pub(super) fn new(directory: &str, urls: &[String], tls: TlsSettings, retry_dead_after: Duration) -> Self {
        Self {
            directory: directory.to_string(),
            urls: urls.to_vec(),
            tls,
            retry_dead_after,
            dead_until: Mutex::new(vec![None; urls.len()]),
        }
    }

    /// Servers to try, best first: the live ones in configured order; when
    /// every server is marked dead, all of them (someone has to find out
    /// that one came back).
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let dead = self.dead_until.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<usize> = (0..self.urls.len()).filter(|&i| dead[i].is_none_or(|until| until <= now)).collect();
        if live.is_empty() { (0..self.urls.len()).collect() } else { live }
    }

    fn mark_dead(&self, index: usize, why: &LdapError) {
        let mut dead = self.dead_until.lock().unwrap_or_else(|e| e.into_inner());
        if dead[index].is_none_or(|until| until <= Instant::now()) {
            warn!(directory = %self.directory, url = %self.urls[index], error = %why,
                retry_after = ?self.retry_dead_after, "directory server marked down");
        }
        dead[index] = Some(Instant::now() + self.retry_dead_after);
    }

    fn mark_alive(&self, index: usize) {
        let mut dead = self.dead_until.lock().unwrap_or_else(|e| e.into_inner());
        if dead[index].take().is_some() {
            info!(directory = %self.directory, url = %self.urls[index], "directory server is back");
        }
    }
}

/// One operation, run on whichever connection the pool picks.
#[derive(Clone, Copy)]
pub(super) enum Op<'a> {
    Search(&'a Search<'a>),
    Bind { dn: &'a str, password: &'a str },
}

pub(super) enum Answer {
    Entries(Vec<Entry>),
    Bind(BindResult),
}

struct Pooled {
    conn: Box<dyn LdapConn>,
    server: usize,
}

/// Open connections, each bound as `identity` (the service account) or
/// left anonymous (for binding as users).
pub(super) struct Pool {
    ops: Arc<dyn LdapOps>,
    servers: Arc<Servers>,
    identity: Option<(String, String)>,
    timeout: Duration,
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
}

impl Pool {
    pub(super) fn new(
        ops: Arc<dyn LdapOps>,
        servers: Arc<Servers>,
        identity: Option<(String, String)>,
        timeout: Duration,
        size: usize,
    ) -> Self {
        let size = size.max(1);
        Self {
            ops,
            servers,
            identity,
            timeout,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size),
        }
    }

    /// Runs `op`: first on an idle connection, then on fresh connections to
    /// each server in turn. Each attempt gets the full timeout; a server is
    /// tried at most once per call. `Err` is the last failure seen.
    pub(super) async fn run(&self, op: Op<'_>) -> Result<Answer, LdapError> {
        // Waiting for a free connection counts against the timeout too.
        let _permit = match timeout(self.timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(LdapError::Connection("pool closed".into())),
            Err(_) => return Err(LdapError::Connection("every pooled connection is busy".into())),
        };
        let mut tried = Vec::new();
        if let Some(mut pooled) = self.take_idle() {
            match timeout(self.timeout, exec(pooled.conn.as_mut(), op)).await {
                Ok(Ok(answer)) => {
                    self.put_back(pooled);
                    return Ok(answer);
                }
                Ok(Err(e @ LdapError::Code { .. })) => {
                    if !e.server_is_down() {
                        self.put_back(pooled);
                        return Err(e);
                    }
                    self.servers.mark_dead(pooled.server, &e);
                    tried.push(pooled.server);
                }
                // Most likely closed by the server while idle: reconnect.
                Ok(Err(e)) => {
                    debug!(directory = %self.servers.directory, error = %e, "pooled connection unusable; reconnecting");
                }
                Err(_) => {
                    self.servers.mark_dead(pooled.server, &LdapError::Timeout);
                    tried.push(pooled.server);
                }
            }
        }
        let mut last = LdapError::Connection("no server to try".into());
        for server in self.servers.order() {
            if tried.contains(&server) {
                continue;
            }
            tried.push(server);
            let attempt = timeout(self.timeout, async {
                let mut conn = self.open(server).await?;
                let result = exec(conn.as_mut(), op).await;
                Ok::<_, LdapError>((conn, result))
            })
            .await
            .unwrap_or(Err(LdapError::Timeout));
            match attempt {
                Ok((conn, Ok(answer))) => {
                    self.servers.mark_alive(server);
                    self.put_back(Pooled { conn, server });
                    return Ok(answer);
                }
                Ok((conn, Err(e))) if !e.breaks_connection() && !e.server_is_down() => {
                    self.servers.mark_alive(server);
                    self.put_back(Pooled { conn, server });
                    return Err(e);
                }
                Ok((_, Err(e))) | Err(e) => {
                    if e.server_is_down() {
                        self.servers.mark_dead(server, &e);
                    } else {
                        warn!(directory = %self.servers.directory, url = %self.servers.urls[server], error = %e,
                            "directory server refused the connection setup");
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn open(&self, server: usize) -> Result<Box<dyn LdapConn>, LdapError> {
        let mut conn = self.ops.connect(&self.servers.urls[server], &self.servers.tls).await?;
        if let Some((dn, password)) = &self.identity {
            match conn.simple_bind(dn, password).await? {
                BindResult::Ok => {}
                BindResult::InvalidCredentials => {
                    return Err(LdapError::Code { code: 49, message: format!("the service account {dn} cannot bind") });
                }
            }
        }
        Ok(conn)
    }

    /// An idle connection to the server that would be picked now. Others
    /// are closed: to a server since marked down, or to a fallback while
    /// the preferred server is live again (traffic moves back to it).
    fn take_idle(&self) -> Option<Pooled> {
        let best = self.servers.order().first().copied().unwrap_or(0);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(pooled) = idle.pop() {
            if pooled.server == best {
                return Some(pooled);
            }
        }
        None
    }

    fn put_back(&self, pooled: Pooled) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(pooled);
    }
}

async fn exec(conn: &mut dyn LdapConn, op: Op<'_>) -> Result<Answer, LdapError> {
    match op {
        Op::Search(search) => conn.search(search).await.map(Answer::Entries),
        Op::Bind { dn, password } => conn.simple_bind(dn, password).await.map(Answer::Bind),
    }
}
