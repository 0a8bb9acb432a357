//! The `[[user_map]]` and `[proxy.smtp|imap|pop3]` sections: which proxies
//! this node runs and where they look users up (seeds "Front-end services
//! setup" and "Mapping Setup").

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Report;
use crate::directory::AUTH_FAILURE_DELAY;
use crate::directory::settings::{self, DirectorySection, DirectorySettings, UserMapKind, UserMapSection};
use crate::proxy::AuthAt;

/// How long a proxy waits for a back-end connection and its greeting.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
/// The least a proxy waits for a back-end's answer to a login or RCPT.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: u64 = 30;

/// The default wait for a back-end's answer to a login (or an SMTP RCPT):
/// what the back-end's own directory check may legitimately take — every
/// URL of the slowest connector timing out (plus the wait for a pooled
/// connection), for the search and again for the bind, then the failed-
/// login delay — and never less than [`DEFAULT_LOGIN_TIMEOUT_SECS`]. A
/// proxy that gave up sooner would report a healthy back-end unavailable.
pub fn default_login_timeout(directories: &[DirectorySettings]) -> Duration {
    let attempts = |d: &DirectorySettings| u32::try_from(d.urls.len() + 1).unwrap_or(u32::MAX);
    let budget = directories.iter().map(|d| d.timeout.saturating_mul(attempts(d)).saturating_mul(2)).max();
    (budget.unwrap_or_default() + AUTH_FAILURE_DELAY).max(Duration::from_secs(DEFAULT_LOGIN_TIMEOUT_SECS))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxies {
    smtp: Option<RawProxy>,
    imap: Option<RawProxy>,
    pop3: Option<RawProxy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    listen: Spanned<String>,
    user_map: Spanned<String>,
    auth: Option<Spanned<AuthAt>>,
    backend_port: Option<u16>,
    failover: Option<Spanned<String>>,
    connect_timeout_secs: Option<u64>,
    login_timeout_secs: Option<u64>,
}

/// One proxy service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub user_map: String,
    pub auth_at: AuthAt,
    /// Used when the map gives a host without a port.
    pub backend_port: u16,
    pub failover: Option<String>,
    pub connect_timeout: Duration,
    /// `login_timeout_secs`; `None`: [`default_login_timeout`].
    pub login_timeout: Option<Duration>,
}

/// The proxies this node runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    pub smtp: Option<ProxyConfig>,
    pub imap: Option<ProxyConfig>,
    pub pop3: Option<ProxyConfig>,
}

impl Proxies {
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        [&self.smtp, &self.imap, &self.pop3].into_iter().flatten().map(|p| p.listen).collect()
    }
}

impl Report<'_> {
    /// Checks `[[directory]]` and `[[user_map]]` (rules in directory::settings).
    pub(super) fn directory_settings(&mut self, dirs: &[DirectorySection], maps: &[UserMapSection]) {
        for e in settings::validate(dirs, maps) {
            self.at(e.span, &e.key, e.message);
        }
    }

    pub(super) fn proxies(&mut self, raw: &RawProxies, maps: &[UserMapSection]) -> Proxies {
        let mut one = |service: &str, raw: &Option<RawProxy>, default_port: u16| {
            let raw = raw.as_ref()?;
            let key = |k: &str| format!("proxy.{service}.{k}");
            let listen = match raw.listen.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    let message = format!("{:?} is not an IP:port address", raw.listen.get_ref());
                    self.at(Some(raw.listen.span()), &key("listen"), message);
                    None
                }
            };
            let map = maps.iter().find(|m| m.name.get_ref() == raw.user_map.get_ref());
            if map.is_none() {
                let message = format!("no [[user_map]] named {:?}", raw.user_map.get_ref());
                self.at(Some(raw.user_map.span()), &key("user_map"), message);
            }
            let auth_at = raw.auth.as_ref().map_or(AuthAt::Backend, |a| *a.get_ref());
            if let Some(auth) = &raw.auth {
                if service == "smtp" {
                    let message = "the SMTP proxy authenticates submission at the proxy; remove `auth`";
                    self.at(Some(auth.span()), &key("auth"), message);
                } else if auth_at == AuthAt::Proxy && map.is_some_and(|m| *m.kind.get_ref() == UserMapKind::LocalFile) {
                    let message = "a local-file map holds no passwords: use auth = \"backend\" or an LDAP map";
                    self.at(Some(auth.span()), &key("auth"), message);
                }
            }
            if let Some(failover) = &raw.failover {
                if service == "smtp" {
                    // Seed: unmapped recipients are relayed under normal policy.
                    let message = "SMTP has no failover address: unmapped recipients follow relay policy";
                    self.at(Some(failover.span()), &key("failover"), message);
                } else if failover
                    .get_ref()
                    .rsplit_once(':')
                    .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
                {
                    let message = format!("{:?} is not host:port", failover.get_ref());
                    self.at(Some(failover.span()), &key("failover"), message);
                }
            }
            Some(ProxyConfig {
                listen: listen?,
                user_map: raw.user_map.get_ref().clone(),
                auth_at,
                backend_port: raw.backend_port.unwrap_or(default_port),
                failover: raw.failover.as_ref().map(|f| f.get_ref().clone()),
                connect_timeout: Duration::from_secs(
                    raw.connect_timeout_secs.unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS).max(1),
                ),
                login_timeout: raw.login_timeout_secs.map(|s| Duration::from_secs(s.max(1))),
            })
        };
        Proxies {
            smtp: one("smtp", &raw.smtp, 25),
            imap: one("imap", &raw.imap, 143),
            pop3: one("pop3", &raw.pop3, 110),
        }
    }
}
