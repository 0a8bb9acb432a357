//! A topology becomes turmoil hosts: directory hosts running the embedded
//! LDAP server on the fixture directory, node hosts running the unmodified
//! `tiermail-node` services from generated configs, and client hosts.
//!
//! Host names: one-tier nodes `node-a`, `node-b`, ...; two-tier front-ends
//! `fe-1`, ... and back-ends `be-1`, ...; `failover`; directories
//! `ldap-1`, ...; clients `client-1`, ....

use std::collections::BTreeMap;

use crate::cluster::layout::{
    IMAP_BACKEND, IMAP_PROXY, POP3_BACKEND, POP3_PROXY, SMTP_BACKEND, SMTP_PROXY, accounts, toml_str,
};
use crate::ldap_server::{Directory, FIXTURE_ADMIN_DN, FIXTURE_ADMIN_PASSWORD};
use crate::scenario::{LayoutKind, ProxyAuth, Topology};

/// The failover back-end's local user, unknown to the directory.
pub const FAILOVER_USER: (&str, &str) = ("zoe@example.com", "zoe-pw");
/// The failover back-end's host name.
pub const FAILOVER_HOST: &str = "failover";
/// The LDAP port of directory hosts.
pub const LDAP_PORT: u16 = 389;

/// A node host and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub proxies: bool,
    pub backend: bool,
}

/// A user the workload may log in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub address: String,
    pub password: String,
    /// The back-end host that stores the user's mail.
    pub home: String,
    /// Whether the directory knows the user (false: the failover user).
    pub in_directory: bool,
}

/// Every host of a run and who lives where.
#[derive(Debug, Clone)]
pub struct Plan {
    pub topology: Topology,
    pub nodes: Vec<NodeSpec>,
    pub directories: Vec<String>,
    /// Served users, sorted by address.
    pub users: Vec<User>,
    /// The directory's mailHost names → back-end host (two-tier).
    pub mail_hosts: BTreeMap<String, String>,
}

impl Plan {
    pub fn new(topology: &Topology) -> Plan {
        let mut nodes = Vec::new();
        let node = |name: String, proxies, backend| NodeSpec { name, proxies, backend };
        match topology.layout {
            LayoutKind::OneTier => {
                for i in 0..topology.nodes {
                    nodes.push(node(format!("node-{}", (b'a' + i as u8) as char), true, true));
                }
            }
            LayoutKind::TwoTier => {
                for i in 1..=topology.front_ends {
                    nodes.push(node(format!("fe-{i}"), true, false));
                }
                for i in 1..=topology.back_ends {
                    nodes.push(node(format!("be-{i}"), false, true));
                }
            }
        }
        if topology.failover {
            nodes.push(node(FAILOVER_HOST.to_owned(), false, true));
        }
        let mut mail_hosts = BTreeMap::new();
        if topology.layout == LayoutKind::TwoTier {
            for (i, name) in ["node-a", "node-b", "node-c"].into_iter().enumerate() {
                mail_hosts.insert(name.to_owned(), format!("be-{}", i % topology.back_ends + 1));
            }
        }
        let directory = Directory::fixture();
        let backends: Vec<&str> =
            nodes.iter().filter(|n| n.backend && n.name != FAILOVER_HOST).map(|n| n.name.as_str()).collect();
        let home = |host: &str| {
            let name = mail_hosts.get(host).map(String::as_str).unwrap_or(host);
            backends.contains(&name).then(|| name.to_owned())
        };
        let (served, _) = accounts(&directory, home);
        let mut users: Vec<User> = served
            .into_iter()
            .filter_map(|a| Some(User { address: a.user, password: a.password?, home: a.home, in_directory: true }))
            .collect();
        if topology.failover {
            let (address, password) = FAILOVER_USER;
            users.push(User {
                address: address.into(),
                password: password.into(),
                home: FAILOVER_HOST.into(),
                in_directory: false,
            });
        }
        users.sort_by(|a, b| a.address.cmp(&b.address));
        let directories = (1..=topology.directories).map(|i| format!("ldap-{i}")).collect();
        Plan { topology: topology.clone(), nodes, directories, users, mail_hosts }
    }

    /// Hosts running proxies: where clients connect.
    pub fn proxies(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| n.proxies).map(|n| n.name.as_str()).collect()
    }

    /// Hosts running back-ends (stores).
    pub fn backends(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| n.backend).map(|n| n.name.as_str()).collect()
    }

    pub fn clients(&self, count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("client-{i}")).collect()
    }

    /// Every host name faults may name: nodes, directories, clients.
    pub fn all_hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = self.nodes.iter().map(|n| n.name.clone()).collect();
        out.extend(self.directories.iter().cloned());
        out.extend(self.clients(crate::scenario::MAX_CLIENTS));
        out
    }

    pub fn user(&self, address: &str) -> Option<&User> {
        self.users.iter().find(|u| u.address.eq_ignore_ascii_case(address))
    }

    /// The node config of `node`, as TOML.
    pub fn node_config(&self, node: &NodeSpec) -> String {
        let mut text = format!(
            "# {} simulated node {}\n[node]\nname = {}\ndata_dir = \"/data\"\n\n[[domain]]\nname = \"example.com\"\n",
            self.topology.layout.name(),
            node.name,
            toml_str(&node.name)
        );
        if node.name == FAILOVER_HOST {
            let (address, password) = FAILOVER_USER;
            text += &format!("\n[[account]]\naddress = {}\npassword = {}\n", toml_str(address), toml_str(password));
            text += &backend_services();
            return text;
        }
        if !self.mail_hosts.is_empty() {
            text += "\n[hosts]\n";
            for (name, host) in &self.mail_hosts {
                text += &format!("{} = {}\n", toml_str(name), toml_str(host));
            }
        }
        let urls: Vec<String> = self.directories.iter().map(|d| toml_str(&format!("ldap://{d}:{LDAP_PORT}"))).collect();
        text += &format!(
            "\n[[directory]]\nname = \"dir\"\nserver_type = \"openldap\"\nurls = [{}]\nbind_dn = {}\n\
             bind_password = {}\naccount_base_dn = \"ou=people,dc=example,dc=com\"\ntimeout_secs = 2\n\
             \n[[user_map]]\nname = \"dir\"\nkind = \"ldap-password\"\ndirectory = \"dir\"\n\
             [user_map.cache]\npositive_ttl_secs = 5\nnegative_ttl_secs = 5\nstale_on_failure_secs = {}\n",
            urls.join(", "),
            toml_str(FIXTURE_ADMIN_DN),
            toml_str(FIXTURE_ADMIN_PASSWORD),
            self.topology.stale_on_failure_secs,
        );
        if node.backend {
            text += "\n[backend]\nauth_map = \"dir\"\n";
            text += &backend_services();
        }
        if node.proxies {
            let auth = match self.topology.proxy_auth {
                ProxyAuth::Proxy => "proxy",
                ProxyAuth::Backend => "backend",
            };
            let failover = |port: u16| {
                if self.topology.failover { format!("failover = \"{FAILOVER_HOST}:{port}\"\n") } else { String::new() }
            };
            // The back-ends' directory budget (2 s x up to 4 attempts, for a
            // search and a bind, plus the 1 s failure delay) is 17 s: the
            // proxies wait 20 s for a back-end's answer, so a client with a
            // 30 s operation timeout hears the proxy's 451 first, as an MTA
            // with RFC 5321's minutes-long timeouts would.
            let wait = "login_timeout_secs = 20\n";
            text += &format!(
                "\n[proxy.smtp]\nlisten = \"0.0.0.0:{SMTP_PROXY}\"\nuser_map = \"dir\"\nbackend_port = {SMTP_BACKEND}\n{wait}\
                 \n[proxy.imap]\nlisten = \"0.0.0.0:{IMAP_PROXY}\"\nuser_map = \"dir\"\nauth = \"{auth}\"\n\
                 backend_port = {IMAP_BACKEND}\n{wait}{}\
                 \n[proxy.pop3]\nlisten = \"0.0.0.0:{POP3_PROXY}\"\nuser_map = \"dir\"\nauth = \"{auth}\"\n\
                 backend_port = {POP3_BACKEND}\n{wait}{}",
                failover(IMAP_BACKEND),
                failover(POP3_BACKEND),
            );
        }
        text
    }
}

fn backend_services() -> String {
    format!(
        "\n[backend.smtp]\nlisten = \"0.0.0.0:{SMTP_BACKEND}\"\n\n[backend.pop3]\nlisten = \"0.0.0.0:{POP3_BACKEND}\"\n\
         \n[backend.imap]\nlisten = \"0.0.0.0:{IMAP_BACKEND}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn topology(layout: LayoutKind, failover: bool) -> Topology {
        let proxy_auth = if failover { ProxyAuth::Backend } else { ProxyAuth::Proxy };
        Topology { layout, failover, proxy_auth, directories: 2, ..Topology::default() }
    }

    #[test]
    fn every_generated_config_loads() {
        for t in [topology(LayoutKind::OneTier, false), topology(LayoutKind::TwoTier, true)] {
            let plan = Plan::new(&t);
            for node in &plan.nodes {
                let text = plan.node_config(node);
                tiermail_node::Config::parse(Path::new("sim.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            }
        }
    }

    #[test]
    fn users_live_where_the_directory_says() {
        // (user, mailHost) per the fixture; oscar has no mailHost, pat is
        // disabled, frank's node-z does not exist: none of them is served.
        let fixture = [
            ("alice", "node-a"),
            ("bob", "node-b"),
            ("carol", "node-c"),
            ("dave", "node-a"),
            ("erin", "node-b"),
            ("gina", "node-c"),
            ("hank", "node-a"),
            ("ivan", "node-b"),
            ("john.smith", "node-a"),
            ("judy", "node-c"),
            ("kate", "node-a"),
            ("liam", "node-b"),
            ("mona", "node-c"),
            ("nick", "node-a"),
            ("rosa", "node-b"),
        ];
        let homes = |plan: &Plan| -> Vec<(String, String)> {
            plan.users.iter().map(|u| (u.address.clone(), u.home.clone())).collect()
        };
        let expected = |home: &dyn Fn(&str) -> &'static str| -> Vec<(String, String)> {
            fixture.iter().map(|(u, h)| (format!("{u}@example.com"), home(h).to_owned())).collect()
        };
        let plan = Plan::new(&topology(LayoutKind::OneTier, false));
        assert_eq!(
            homes(&plan),
            expected(&|h| match h {
                "node-a" => "node-a",
                "node-b" => "node-b",
                _ => "node-c",
            })
        );
        // Two back-ends: node-a, node-b, node-c map onto be-1, be-2, be-1.
        let plan = Plan::new(&topology(LayoutKind::TwoTier, true));
        let mut two_tier = expected(&|h| if h == "node-b" { "be-2" } else { "be-1" });
        two_tier.push(("zoe@example.com".into(), "failover".into()));
        assert_eq!(homes(&plan), two_tier);
        assert_eq!(plan.proxies(), ["fe-1", "fe-2"]);
        assert_eq!(plan.backends(), ["be-1", "be-2", "failover"]);
    }
}
