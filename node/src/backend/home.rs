//! Which hosts in a user map mean "this node" (DESIGN invariant 10: only a
//! user's home back-end stores or serves their mail).
//!
//! A back-end that checks users in a map (`[backend] auth_map`) serves a
//! user only when the map's host for them (the `mailHost` value; a port in
//! it is ignored) is, ignoring case:
//! - the node's own `[node] name`;
//! - an IP address one of its back-end services listens on (a wildcard
//!   listen address names nothing); or
//! - a `[hosts]` name whose address is one of those two.
//!
//! Anything else (another node, a name this node cannot tell is its own,
//! an entry without a host) is not here: the user gets a temporary error
//! and nothing is stored. Without an auth map, the back-end's local
//! accounts are by definition at home here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// The names a user map may give this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnNames {
    names: BTreeSet<String>,
}

impl OwnNames {
    /// The names of node `node_name` whose back-end services listen on
    /// `listen`, given its `[hosts]` table.
    pub fn new(
        node_name: &str,
        listen: impl IntoIterator<Item = SocketAddr>,
        hosts: &BTreeMap<String, String>,
    ) -> OwnNames {
        let mut names = BTreeSet::from([canonical(node_name)]);
        names.extend(listen.into_iter().map(|a| a.ip()).filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_string()));
        let direct = names.clone();
        names.extend(hosts.iter().filter(|(_, target)| direct.contains(&canonical(target))).map(|(n, _)| canonical(n)));
        OwnNames { names }
    }

    /// Whether a map's host (`host` as [`crate::directory::usermap::parse_host`]
    /// gives it) names this node.
    pub fn contains(&self, host: &str) -> bool {
        self.names.contains(&canonical(host))
    }
}

/// Lower case; an IP address in its one textual form.
fn canonical(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_node_is_its_name_its_listen_addresses_and_the_hosts_naming_them() {
        let listen: Vec<SocketAddr> = vec!["127.0.0.23:2525".parse().unwrap(), "127.0.0.23:1430".parse().unwrap()];
        let table = hosts(&[("node-a", "127.0.0.23"), ("node-b", "127.0.0.24"), ("node-c", "be-1"), ("old", "BE-1")]);
        let own = OwnNames::new("be-1", listen, &table);
        for name in ["be-1", "BE-1", "127.0.0.23", "node-a", "Node-A", "node-c", "old"] {
            assert!(own.contains(name), "{name}");
        }
        for name in ["node-b", "127.0.0.24", "be-2", "node-z", ""] {
            assert!(!own.contains(name), "{name}");
        }
    }

    #[test]
    fn a_wildcard_listen_address_names_nothing() {
        let listen: Vec<SocketAddr> = vec!["0.0.0.0:2525".parse().unwrap(), "[::]:1430".parse().unwrap()];
        let own = OwnNames::new("node-a", listen, &hosts(&[("x", "0.0.0.0"), ("y", "::")]));
        assert!(own.contains("node-a"));
        for name in ["0.0.0.0", "::", "[::]", "x", "y"] {
            assert!(!own.contains(name), "{name}");
        }
        let v6 = OwnNames::new("n", vec!["[::1]:143".parse().unwrap()], &BTreeMap::new());
        assert!(v6.contains("::1") && v6.contains("[::1]") && v6.contains("0:0:0:0:0:0:0:1"));
    }
}
