//! Group membership, nested groups included (seed "LDAP Introduction":
//! groups may contain other groups). OpenLDAP leaves nesting to the
//! client: groupOfNames / groupOfUniqueNames are expanded level by level,
//! each level one search, with cycle detection and a depth limit. Active
//! Directory resolves nesting itself through LDAP_MATCHING_RULE_IN_CHAIN.

use std::collections::BTreeSet;

use tracing::warn;

use super::filter::escape;
use super::ops::{Scope, Search};
use super::{Connector, Unavailable, dn};
use crate::directory::settings::ServerType;

/// Deepest nesting followed; groups further down are ignored (logged).
pub const MAX_GROUP_DEPTH: usize = 16;
/// Most groups one user may be found in, and DNs per search.
const MAX_GROUPS: usize = 10_000;
const BATCH: usize = 32;
/// Active Directory's transitive membership rule.
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

impl Connector {
    /// The DNs (as the server spells them) of every group `member_dn`
    /// belongs to, directly or through nested groups, under the group base DN.
    pub async fn groups_of(&self, member_dn: &str) -> Result<Vec<String>, Unavailable> {
        self.expand(member_dn, None).await
    }

    /// Whether `member_dn` is in `group_dn`, directly or through nesting.
    pub async fn is_member(&self, member_dn: &str, group_dn: &str) -> Result<bool, Unavailable> {
        let groups = self.expand(member_dn, Some(group_dn)).await?;
        Ok(groups.iter().any(|g| dn::same(g, group_dn)))
    }

    async fn expand(&self, member_dn: &str, stop_at: Option<&str>) -> Result<Vec<String>, Unavailable> {
        let base = self.settings().group_base_dn.as_str();
        if self.server_type() == ServerType::ActiveDirectory {
            let filter = format!("(&(objectClass=group)(member:{IN_CHAIN_RULE}:={}))", escape(member_dn));
            let search = Search { base, scope: Scope::Subtree, filter: &filter, attrs: &["1.1"], size_limit: 0 };
            return Ok(self.search(&search).await?.into_iter().map(|e| e.dn).collect());
        }
        let key = |d: &str| dn::normalise(d).unwrap_or_else(|| d.to_ascii_lowercase());
        let mut seen: BTreeSet<String> = BTreeSet::from([key(member_dn)]);
        let mut groups = Vec::new();
        let mut frontier = vec![member_dn.to_string()];
        for depth in 0.. {
            if frontier.is_empty() {
                break;
            }
            if depth == MAX_GROUP_DEPTH {
                warn!(directory = %self.settings().name, member = %member_dn, "groups nested deeper than {MAX_GROUP_DEPTH}; the rest ignored");
                break;
            }
            let mut next = Vec::new();
            for batch in frontier.chunks(BATCH) {
                let filter = containing_any(batch);
                let search = Search { base, scope: Scope::Subtree, filter: &filter, attrs: &["1.1"], size_limit: 0 };
                for entry in self.search(&search).await? {
                    if seen.insert(key(&entry.dn)) {
                        next.push(entry.dn.clone());
                        groups.push(entry.dn);
                    }
                }
            }
            if stop_at.is_some_and(|target| groups.iter().any(|g| dn::same(g, target))) || groups.len() > MAX_GROUPS {
                break;
            }
            frontier = next;
        }
        Ok(groups)
    }
}

/// Groups of either kind that list any of `members`.
fn containing_any(members: &[String]) -> String {
    let mut names = String::new();
    let mut unique = String::new();
    for m in members {
        let m = escape(m);
        names.push_str(&format!("(member={m})"));
        unique.push_str(&format!("(uniqueMember={m})"));
    }
    format!("(|(&(objectClass=groupOfNames)(|{names}))(&(objectClass=groupOfUniqueNames)(|{unique})))")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ldap::filter::parse;

    #[test]
    fn membership_filter_escapes_dns_and_parses() {
        let filter = containing_any(&["cn=a\\,b,dc=x".into(), "cn=(c)*,dc=x".into()]);
        assert!(filter.contains("(member=cn=a\\5c,b,dc=x)"), "{filter}");
        assert!(filter.contains("(uniqueMember=cn=\\28c\\29\\2a,dc=x)"), "{filter}");
        parse(&filter).expect("valid filter");
    }
}
