//! What a mini-cluster is made of: its nodes (name, role, address), the
//! accounts each back-end hosts (from the directory's `mailHost` and
//! `userPassword`), and the files generated for them (one
//! node config each).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::ldap_server::Directory;

/// Back-end ports, the same on every node (the fixtures' ports).
pub const SMTP_BACKEND: u16 = 2525;
pub const POP3_BACKEND: u16 = 1100;
pub const IMAP_BACKEND: u16 = 1430;
/// Proxy ports (unprivileged stand-ins for 25, 110, 143).
pub const SMTP_PROXY: u16 = 1025;
pub const POP3_PROXY: u16 = 1110;
pub const IMAP_PROXY: u16 = 1143;

/// The fixture users' clear-text passwords, as documented in the header of
/// fixtures/directory.ldif (a unit test checks each against its hash).
pub const FIXTURE_PASSWORDS: [(&str, &str); 17] = [
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("carol", "carol-pw"),
    ("dave", "dave-pw"),
    ("erin", "erin-pw"),
    ("frank", "frank-pw"),
    ("gina", "tiermail-Pa55"),
    ("hank", "tiermail-Pa55"),
    ("ivan", "tiermail-Pa55"),
    ("judy", "tiermail-Pa55"),
    ("kate", "tiermail-Pa55"),
    ("liam", "tiermail-Pa55"),
    ("mona", "tiermail-Pa55"),
    ("nick", "tiermail-Pa55"),
    ("jsmith", "jsmith-pw"),
    ("rosa", "rosa-pw"),
    ("oscar", "oscar-pw"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every node runs proxies and a back-end.
    OneTier,
    /// Proxy front-ends fe-1, fe-2 and back-ends be-1, be-2.
    TwoTier,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::OneTier => "one-tier",
            Layout::TwoTier => "two-tier",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Proxies and back-end in one process (one-tier).
    Node,
    /// Proxies only.
    FrontEnd,
    /// Back-end services only.
    BackEnd,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Node => "proxy+backend",
            Role::FrontEnd => "front-end",
            Role::BackEnd => "back-end",
        }
    }
    pub fn proxies(self) -> bool {
        self != Role::BackEnd
    }
    pub fn backend(self) -> bool {
        self != Role::FrontEnd
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A directory user the cluster serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The mail address, also the login.
    pub user: String,
    /// The clear-text password (None when the fixture header does not give it).
    pub password: Option<String>,
    /// The directory's `userPassword` value, copied into the node config.
    pub hash: String,
    /// The node that stores the user's mail.
    pub home: String,
    /// The directory's `mailHost` value, which the nodes resolve through
    /// their `[hosts]` table.
    pub mail_host: String,
}

/// A directory user the cluster does not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    pub user: String,
    pub reason: String,
}

/// The LDAP directory the nodes are configured for.
#[derive(Debug, Clone)]
pub struct DirectoryTarget {
    pub url: String,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    /// Served by `cluster up` itself (else someone else's server).
    pub embedded: bool,
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    pub ip: Ipv4Addr,
}

impl NodeSpec {
    /// Named services and their addresses, proxies first.
    pub fn services(&self) -> Vec<(&'static str, SocketAddr)> {
        let at = |port| SocketAddr::from((self.ip, port));
        let mut out = Vec::new();
        if self.role.proxies() {
            out.extend([
                ("smtp_proxy", at(SMTP_PROXY)),
                ("imap_proxy", at(IMAP_PROXY)),
                ("pop3_proxy", at(POP3_PROXY)),
            ]);
        }
        if self.role.backend() {
            out.extend([
                ("smtp_backend", at(SMTP_BACKEND)),
                ("imap_backend", at(IMAP_BACKEND)),
                ("pop3_backend", at(POP3_BACKEND)),
            ]);
        }
        out
    }
}

/// A whole cluster: nodes, the accounts they host, the users left out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub layout: Layout,
    pub nodes: Vec<NodeSpec>,
    pub accounts: Vec<Account>,
    pub unserved: Vec<Unserved>,
}

/// Node k (1-based) of a cluster listens on `base + k`.
fn ip_of(base: Ipv4Addr, k: usize) -> Result<Ipv4Addr, String> {
    let [a, b, c, d] = base.octets();
    let last = usize::from(d) + k;
    if a != 127 || last > 254 {
        return Err(format!("--ip-base {base}: node {k} would not be a loopback address 127.x.y.1-254"));
    }
    Ok(Ipv4Addr::new(a, b, c, last as u8))
}

impl Plan {
    /// The cluster for `layout` (`nodes` counts one-tier nodes) serving the
    /// users of `directory` whose `mailHost` names a node of it.
    pub fn new(layout: Layout, nodes: usize, ip_base: Ipv4Addr, directory: &Directory) -> Result<Plan, String> {
        let specs: Vec<(String, Role)> = match layout {
            Layout::OneTier => {
                if !(1..=26).contains(&nodes) {
                    return Err(format!("--nodes {nodes}: give 1 to 26"));
                }
                (0..nodes).map(|i| (format!("node-{}", (b'a' + i as u8) as char), Role::Node)).collect()
            }
            Layout::TwoTier => [("fe-1", Role::FrontEnd), ("fe-2", Role::FrontEnd), ("be-1", Role::BackEnd)]
                .into_iter()
                .chain([("be-2", Role::BackEnd)])
                .map(|(n, r)| (n.to_owned(), r))
                .collect(),
        };
        let mut out = Vec::new();
        for (k, (name, role)) in specs.into_iter().enumerate() {
            out.push(NodeSpec { name, role, ip: ip_of(ip_base, k + 1)? });
        }
        let (accounts, unserved) = accounts(directory, |host| home_of(layout, &out, host));
        Ok(Plan { layout, nodes: out, accounts, unserved })
    }

    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The config of `node`: its data under `dir/<name>`, the map at `map`.
    pub fn node_config(&self, node: &NodeSpec, dir: &Path, target: &DirectoryTarget) -> String {
        let mut text = format!(
            "# {} node {} ({}) on {}, generated by tiermail-sim cluster up.\n\
             # Users are routed by their directory entry's mailHost and authenticated\n\
             # against the directory (LDAP Password, through the admin bind).\n\n\
             [node]\nname = {}\ndata_dir = {}\n\n[[domain]]\nname = \"example.com\"\n",
            self.layout.name(),
            node.name,
            node.role,
            node.ip,
            toml_str(&node.name),
            toml_str(&dir.join(&node.name).display().to_string()),
        );
        // mailHost names → the address of the node holding those users
        // (the fixture's names, and every node's own name).
        let mut hosts = BTreeMap::new();
        for a in &self.accounts {
            if let Some(home) = self.node(&a.home) {
                hosts.insert(a.mail_host.clone(), home.ip);
            }
        }
        for n in self.nodes.iter().filter(|n| n.role.backend()) {
            hosts.entry(n.name.clone()).or_insert(n.ip);
        }
        text += "\n[hosts]\n";
        for (name, ip) in &hosts {
            text += &format!("{} = \"{ip}\"\n", toml_str(name));
        }
        text += &format!(
            "\n[[directory]]\nname = \"cluster\"\nserver_type = \"openldap\"\nurls = [{}]\n\
             bind_dn = {}\nbind_password = {}\naccount_base_dn = {}\ntimeout_secs = 2\n\
             \n[[user_map]]\nname = \"cluster\"\nkind = \"ldap-password\"\ndirectory = \"cluster\"\n\
             # Short cache lifetimes, so `cluster ldap down` shows at once.\n\
             [user_map.cache]\npositive_ttl_secs = 5\nnegative_ttl_secs = 5\n",
            toml_str(&target.url),
            toml_str(&target.bind_dn),
            toml_str(&target.bind_password),
            toml_str(&target.base_dn),
        );
        let ip = node.ip;
        if node.role.backend() {
            text += &format!(
                "\n[backend]\nauth_map = \"cluster\"\n\
                 \n[backend.smtp]\nlisten = \"{ip}:{SMTP_BACKEND}\"\n\n[backend.pop3]\nlisten = \"{ip}:{POP3_BACKEND}\"\n\
                 \n[backend.imap]\nlisten = \"{ip}:{IMAP_BACKEND}\"\n"
            );
        }
        if node.role.proxies() {
            text += &format!(
                "\n[proxy.smtp]\nlisten = \"{ip}:{SMTP_PROXY}\"\nuser_map = \"cluster\"\nbackend_port = {SMTP_BACKEND}\n\
                 \n[proxy.imap]\nlisten = \"{ip}:{IMAP_PROXY}\"\nuser_map = \"cluster\"\nauth = \"proxy\"\nbackend_port = {IMAP_BACKEND}\n\
                 \n[proxy.pop3]\nlisten = \"{ip}:{POP3_PROXY}\"\nuser_map = \"cluster\"\nauth = \"proxy\"\nbackend_port = {POP3_BACKEND}\n"
            );
        }
        text
    }
}

/// The node hosting users whose `mailHost` is `host` (the directory names
/// the three one-tier nodes node-a..c; two-tier puts node-a's users on
/// be-1 and the others' on be-2, like fixtures/two-tier/users.map).
fn home_of(layout: Layout, nodes: &[NodeSpec], host: &str) -> Option<String> {
    let home = match layout {
        Layout::OneTier => host,
        Layout::TwoTier => match host {
            "node-a" => "be-1",
            "node-b" | "node-c" => "be-2",
            _ => return None,
        },
    };
    nodes.iter().find(|n| n.name == home && n.role.backend()).map(|n| n.name.clone())
}

/// Every entry with a `mail` address: served when it has a `userPassword`
/// and `home` maps its `mailHost` to a node; sorted by address.
pub fn accounts(directory: &Directory, home: impl Fn(&str) -> Option<String>) -> (Vec<Account>, Vec<Unserved>) {
    let mut served = BTreeMap::new();
    let mut unserved = Vec::new();
    for entry in directory.entries() {
        let Some(user) = entry.first("mail") else { continue };
        let host = entry.first("mailHost").unwrap_or("");
        let uid = entry.first("uid").unwrap_or("");
        let Some(hash) = entry.first("userPassword") else {
            unserved.push(Unserved { user: user.to_owned(), reason: "no userPassword".into() });
            continue;
        };
        if entry.first("pwdAccountLockedTime").is_some() {
            unserved.push(Unserved { user: user.to_owned(), reason: "disabled (pwdAccountLockedTime)".into() });
            continue;
        }
        let Some(home) = home(host) else {
            let reason = format!("mailHost {host:?} is no node of this cluster: not in the map");
            unserved.push(Unserved { user: user.to_owned(), reason });
            continue;
        };
        let password = FIXTURE_PASSWORDS.iter().find(|(u, _)| *u == uid).map(|(_, p)| (*p).to_owned());
        served.insert(
            user.to_owned(),
            Account { user: user.to_owned(), password, hash: hash.to_owned(), home, mail_host: host.to_owned() },
        );
    }
    unserved.sort_by(|a, b| a.user.cmp(&b.user));
    (served.into_values().collect(), unserved)
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiermail_node::directory::password;

    fn plan(layout: Layout, nodes: usize) -> Plan {
        Plan::new(layout, nodes, Ipv4Addr::new(127, 0, 0, 10), &Directory::fixture()).unwrap()
    }

    #[test]
    fn the_fixture_passwords_match_the_directory_hashes() {
        let dir = Directory::fixture();
        let (accounts, unserved) = accounts(&dir, |h| Some(h.to_owned()));
        assert_eq!(accounts.len(), 17, "{accounts:?}");
        for a in &accounts {
            let pw = a.password.as_deref().unwrap();
            assert!(password::verify(&a.hash, pw).unwrap(), "{}", a.user);
        }
        let left: Vec<_> = unserved.iter().map(|u| (u.user.as_str(), u.reason.as_str())).collect();
        assert_eq!(
            left,
            [("mallory@example.com", "no userPassword"), ("pat@example.com", "disabled (pwdAccountLockedTime)")]
        );
    }

    #[test]
    fn one_tier_homes_follow_mail_host_and_unknown_hosts_are_left_out() {
        let p = plan(Layout::OneTier, 3);
        let homes: Vec<_> = p.accounts.iter().map(|a| (a.user.as_str(), a.home.as_str())).collect();
        assert_eq!(
            homes,
            [
                ("alice@example.com", "node-a"),
                ("bob@example.com", "node-b"),
                ("carol@example.com", "node-c"),
                ("dave@example.com", "node-a"),
                ("erin@example.com", "node-b"),
                ("gina@example.com", "node-c"),
                ("hank@example.com", "node-a"),
                ("ivan@example.com", "node-b"),
                ("john.smith@example.com", "node-a"),
                ("judy@example.com", "node-c"),
                ("kate@example.com", "node-a"),
                ("liam@example.com", "node-b"),
                ("mona@example.com", "node-c"),
                ("nick@example.com", "node-a"),
                ("rosa@example.com", "node-b"),
            ]
        );
        assert!(p.accounts.iter().all(|a| a.password.is_some()), "the fixture header gives every password");
        let left: Vec<_> = p.unserved.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(left, ["frank@example.com", "mallory@example.com", "oscar@example.com", "pat@example.com"]);
        let config = p.node_config(&p.nodes[0], Path::new("/tmp"), &fixture_target());
        assert!(config.contains("\n\"node-c\" = \"127.0.0.13\"\n"), "{config}");
        assert!(!config.contains("node-z"), "frank's unknown mailHost is not resolved");
        // Two nodes: carol (node-c) has no home either.
        assert!(plan(Layout::OneTier, 2).unserved.iter().any(|u| u.user == "carol@example.com"));
    }

    #[test]
    fn two_tier_matches_the_fixture_map() {
        let p = plan(Layout::TwoTier, 0);
        let fixture = include_str!("../../../fixtures/two-tier/users.map");
        for a in &p.accounts {
            let ip = p.node(&a.home).unwrap().ip;
            assert!(fixture.contains(&format!("{} 127.0.0.{}", a.user, ip.octets()[3] + 10)), "{a:?}");
        }
        assert_eq!(p.nodes.iter().map(|n| n.ip.octets()[3]).collect::<Vec<_>>(), [11, 12, 13, 14]);
    }

    fn fixture_target() -> DirectoryTarget {
        DirectoryTarget {
            url: "ldap://127.0.0.1:3389".into(),
            bind_dn: "cn=admin,dc=example,dc=com".into(),
            bind_password: "admin-secret".into(),
            base_dn: "ou=people,dc=example,dc=com".into(),
            embedded: true,
        }
    }

    #[test]
    fn generated_configs_load() {
        let tmp = tempfile::tempdir().unwrap();
        for p in [plan(Layout::OneTier, 3), plan(Layout::TwoTier, 0)] {
            for node in &p.nodes {
                let text = p.node_config(node, tmp.path(), &fixture_target());
                let path = tmp.path().join(format!("{}.toml", node.name));
                let config = tiermail_node::Config::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                // Accounts live in the directory; back-ends authenticate through it.
                assert!(config.accounts.is_empty(), "{}", node.name);
                assert_eq!(config.backend_auth_map.is_some(), node.role.backend(), "{}", node.name);
            }
        }
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str("a\"b\\c$"), "\"a\\\"b\\\\c$\"");
    }
}
