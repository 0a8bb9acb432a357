//! Search filter evaluation (RFC 4511 §4.5.1.7) over one entry, with
//! LDAP's three-valued logic. There is no schema, so matching follows the
//! usual rules of the attributes a mail directory holds: caseIgnoreMatch
//! for text (uid, cn, mail, mailHost, objectClass...), distinguishedNameMatch
//! for DN-valued attributes (member, uniqueMember...), octetStringMatch for
//! passwords; approximate match is equality.

use std::cmp::Ordering;

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

use super::directory::{Directory, Dn, Entry, attribute_key, normalise_text};

/// Attributes only the admin may read, or test in filters and compares:
/// otherwise `(userPassword=guess)` would be a password oracle.
const SECRET_ATTRIBUTES: &[&str] = &["userpassword", "authpassword"];

/// Attributes whose values are DNs (compared normalised).
const DN_ATTRIBUTES: &[&str] = &[
    "member",
    "uniquemember",
    "owner",
    "seealso",
    "manager",
    "roleoccupant",
    "secretary",
    "memberof",
    "distinguishedname",
];

/// Whether `key` (a canonical attribute name) is hidden from non-admins.
pub(super) fn is_secret(key: &str) -> bool {
    SECRET_ATTRIBUTES.contains(&key)
}

/// The result of a filter item: LDAP filters are three-valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Undefined,
}

/// Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: `(member:RULE:=X)`
/// holds for a group whose member chain reaches X through nested groups,
/// `(memberOf:RULE:=G)` for an entry whose memberOf chain reaches G.
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";
/// Deepest chain the in-chain rule follows (AD's own limit is unpublished;
/// deeper chains do not match).
pub const MAX_CHAIN_DEPTH: usize = 32;

/// Whether `entry` matches `filter` for a reader that may (`admin`) or may
/// not see secret attributes; items on hidden attributes are Undefined.
/// `directory` resolves DNs for the in-chain matching rule.
pub(super) fn matches(filter: &LdapFilter, entry: &Entry, admin: bool, directory: &Directory) -> bool {
    Eval { admin, directory }.eval(filter, entry) == Truth::True
}

struct Eval<'a> {
    admin: bool,
    directory: &'a Directory,
}

impl Eval<'_> {
    fn eval(&self, filter: &LdapFilter, entry: &Entry) -> Truth {
        let admin = self.admin;
        match filter {
            // The empty AND is TRUE and the empty OR FALSE (RFC 4526).
            LdapFilter::And(items) => {
                let mut result = Truth::True;
                for item in items {
                    match self.eval(item, entry) {
                        Truth::False => return Truth::False,
                        Truth::Undefined => result = Truth::Undefined,
                        Truth::True => {}
                    }
                }
                result
            }
            LdapFilter::Or(items) => {
                let mut result = Truth::False;
                for item in items {
                    match self.eval(item, entry) {
                        Truth::True => return Truth::True,
                        Truth::Undefined => result = Truth::Undefined,
                        Truth::False => {}
                    }
                }
                result
            }
            LdapFilter::Not(item) => match self.eval(item, entry) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Undefined => Truth::Undefined,
            },
            LdapFilter::Present(name) => assertion(entry, name, admin, |_, _| true),
            LdapFilter::Equality(name, value) | LdapFilter::Approx(name, value) => {
                assertion(entry, name, admin, |key, stored| values_equal(key, stored, value.as_bytes()))
            }
            LdapFilter::Substring(name, pieces) => assertion(entry, name, admin, |_, stored| {
                std::str::from_utf8(stored).is_ok_and(|text| substrings_match(text, pieces))
            }),
            LdapFilter::GreaterOrEqual(name, value) => {
                assertion(entry, name, admin, |_, stored| order(stored, value).is_some_and(|o| o != Ordering::Less))
            }
            LdapFilter::LessOrEqual(name, value) => {
                assertion(entry, name, admin, |_, stored| order(stored, value).is_some_and(|o| o != Ordering::Greater))
            }
            LdapFilter::Extensible(m) => self.extensible(m, entry),
        }
    }

    /// Extensible match: no rule means the attribute's equality; the in-chain
    /// rule on a DN-valued attribute walks the chain; other rules (and the
    /// dnAttributes flag) are not supported: Undefined.
    fn extensible(&self, m: &LdapMatchingRuleAssertion, entry: &Entry) -> Truth {
        let Some(name) = m.type_.as_deref() else { return Truth::Undefined };
        if m.dn_attributes {
            return Truth::Undefined;
        }
        let value = m.match_value.as_bytes();
        match m.matching_rule.as_deref() {
            None => assertion(entry, name, self.admin, |key, stored| values_equal(key, stored, value)),
            Some(IN_CHAIN_RULE) if DN_ATTRIBUTES.contains(&attribute_key(name).as_str()) => {
                let (Ok(target), key) = (Dn::parse(&m.match_value), attribute_key(name)) else { return Truth::False };
                if self.chain_reaches(entry, &key, &target) { Truth::True } else { Truth::False }
            }
            Some(_) => Truth::Undefined,
        }
    }

    /// Whether following attribute `key` from `entry` (breadth first, each
    /// entry once, at most [`MAX_CHAIN_DEPTH`] steps) reaches `target`.
    fn chain_reaches(&self, entry: &Entry, key: &str, target: &Dn) -> bool {
        let mut seen = std::collections::BTreeSet::from([entry.norm().clone()]);
        let mut frontier = vec![entry];
        for _ in 0..MAX_CHAIN_DEPTH {
            let mut next = Vec::new();
            for e in frontier {
                let Some(attr) = e.attribute(key) else { continue };
                for value in &attr.values {
                    let Ok(dn) = std::str::from_utf8(value).map_err(drop).and_then(|v| Dn::parse(v).map_err(drop))
                    else {
                        continue;
                    };
                    if &dn == target {
                        return true;
                    }
                    if seen.insert(dn.clone())
                        && let Some(found) = self.directory.lookup(&dn)
                    {
                        next.push(found);
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            frontier = next;
        }
        false
    }
}

/// TRUE if some value of attribute `name` satisfies `test`; FALSE if none
/// does or the entry lacks the attribute; Undefined if the reader may not
/// see it.
fn assertion(entry: &Entry, name: &str, admin: bool, test: impl Fn(&str, &[u8]) -> bool) -> Truth {
    let key = attribute_key(name);
    if is_secret(&key) && !admin {
        return Truth::Undefined;
    }
    match entry.attribute(&key) {
        Some(attr) if attr.values.iter().any(|v| test(&key, v)) => Truth::True,
        _ => Truth::False,
    }
}

/// The equality rule for attribute `key` (canonical name): DN-valued
/// attributes compare as DNs, secrets byte for byte, text case-insensitively.
pub(super) fn values_equal(key: &str, stored: &[u8], asserted: &[u8]) -> bool {
    if is_secret(key) {
        return stored == asserted;
    }
    let (Ok(stored), Ok(asserted)) = (std::str::from_utf8(stored), std::str::from_utf8(asserted)) else {
        return stored == asserted;
    };
    if DN_ATTRIBUTES.contains(&key)
        && let (Ok(a), Ok(b)) = (Dn::parse(stored), Dn::parse(asserted))
    {
        return a == b;
    }
    normalise_text(stored) == normalise_text(asserted)
}

/// Ordering for `>=` and `<=`: numeric when both sides are integers
/// (uidNumber), else case-insensitive text (generalized times sort right).
fn order(stored: &[u8], asserted: &str) -> Option<Ordering> {
    let stored = std::str::from_utf8(stored).ok()?;
    if let (Ok(a), Ok(b)) = (stored.trim().parse::<i64>(), asserted.trim().parse::<i64>()) {
        return Some(a.cmp(&b));
    }
    Some(normalise_text(stored).cmp(&normalise_text(asserted)))
}

/// caseIgnoreSubstringsMatch: initial, then each `any` in order without
/// overlap, then final.
fn substrings_match(value: &str, pieces: &LdapSubstringFilter) -> bool {
    let value = normalise_text(value);
    let mut rest = value.as_str();
    if let Some(initial) = &pieces.initial {
        let Some(tail) = rest.strip_prefix(initial.to_lowercase().as_str()) else { return false };
        rest = tail;
    }
    if let Some(last) = &pieces.final_ {
        let Some(head) = rest.strip_suffix(last.to_lowercase().as_str()) else { return false };
        rest = head;
    }
    for any in &pieces.any {
        let any = any.to_lowercase();
        match rest.find(any.as_str()) {
            Some(at) => rest = &rest[at + any.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ldap_server::Directory;
    use ldap3_proto::parse_ldap_filter_str;

    const LDIF: &str = "dn: dc=x\ndc: x\n\n\
        dn: uid=alice,dc=x\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice  Liddell\nmail: Alice@Example.com\n\
        uidNumber: 1000\nuserPassword: secret\n\
        memberOf: cn=staff,dc=x\n\n\
        dn: cn=staff,dc=x\nobjectClass: groupOfNames\ncn: staff\nmember: UID=Alice, DC=X\nmemberOf: cn=all,dc=x\n\n\
        dn: cn=all,dc=x\nobjectClass: groupOfNames\ncn: all\nmember: cn=staff,dc=x\n\n\
        dn: cn=loop1,dc=x\nobjectClass: groupOfNames\ncn: loop1\nmember: cn=loop2,dc=x\n\n\
        dn: cn=loop2,dc=x\nobjectClass: groupOfNames\ncn: loop2\nmember: cn=loop1,dc=x\n";

    /// Evaluates a filter string; in values `_` stands for a space and `#`
    /// for `=`, which ldap3_proto's filter-string parser does not accept.
    fn check(filter: &str, dn: &str, admin: bool) -> bool {
        let d = Directory::from_ldif(LDIF).unwrap();
        let mut filter = parse_ldap_filter_str(filter).unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        unescape_spaces(&mut filter);
        matches(&filter, d.get(dn).unwrap(), admin, &d)
    }

    fn unescape_spaces(filter: &mut LdapFilter) {
        match filter {
            LdapFilter::And(items) | LdapFilter::Or(items) => items.iter_mut().for_each(unescape_spaces),
            LdapFilter::Not(item) => unescape_spaces(item),
            LdapFilter::Equality(_, v) => *v = v.replace('_', " ").replace('#', "="),
            LdapFilter::Extensible(m) => m.match_value = m.match_value.replace('_', " ").replace('#', "="),
            _ => {}
        }
    }

    #[test]
    fn filter_table() {
        let alice = "uid=alice,dc=x";
        let staff = "cn=staff,dc=x";
        #[rustfmt::skip]
        let table: &[(&str, &str, bool)] = &[
            ("(uid=alice)", alice, true),
            ("(UID=ALICE)", alice, true),
            ("(objectclass=INETORGPERSON)", alice, true),
            ("(cn=alice__liddell_)", alice, true),
            ("(commonName=Alice_Liddell)", alice, true),
            ("(mail=alice@example.com)", alice, true),
            ("(uid=bob)", alice, false),
            ("(uid~=ALICE)", alice, true),
            ("(mailHost=*)", alice, false),
            ("(mail=*)", alice, true),
            ("(cn=ali*)", alice, true),
            ("(cn=*LIDD*)", alice, true),
            ("(cn=*ell)", alice, true),
            ("(cn=a*l*l*l)", alice, true),
            ("(cn=a*lll*)", alice, false),
            ("(cn=alice*alice)", alice, false),
            ("(uidNumber>=999)", alice, true),
            ("(uidNumber>=1001)", alice, false),
            ("(uidNumber<=1000)", alice, true),
            ("(&(uid=alice)(mail=*))", alice, true),
            ("(&(uid=alice)(uid=bob))", alice, false),
            ("(|(uid=bob)(uid=alice))", alice, true),
            ("(!(uid=bob))", alice, true),
            ("(!(uid=alice))", alice, false),
            ("(member=uid#alice,dc#x)", staff, true),
            ("(member=uid#alice_,_dc#X)", staff, true),
            ("(member=uid#bob,dc#x)", staff, false),
            ("(&(objectClass=groupOfNames)(member=uid#alice,dc#x))", staff, true),
            ("(uid:caseExactMatch:=alice)", alice, false),
            ("(uid:=ALICE)", alice, true),
            ("(member:1.2.840.113556.1.4.1941:=uid#alice,dc#x)", staff, true),
            ("(member:1.2.840.113556.1.4.1941:=uid#alice,dc#x)", "cn=all,dc=x", true),
            ("(member:1.2.840.113556.1.4.1941:=UID#Alice,_DC#X)", "cn=all,dc=x", true),
            ("(member:1.2.840.113556.1.4.1941:=uid#bob,dc#x)", "cn=all,dc=x", false),
            ("(member:1.2.840.113556.1.4.1941:=uid#alice,dc#x)", "cn=loop1,dc=x", false),
            ("(member:1.2.840.113556.1.4.1941:=cn#loop1,dc#x)", "cn=loop1,dc=x", true),
            ("(memberOf:1.2.840.113556.1.4.1941:=cn#all,dc#x)", alice, true),
            ("(memberOf:1.2.840.113556.1.4.1941:=cn#loop1,dc#x)", alice, false),
            ("(uid:1.2.840.113556.1.4.1941:=alice)", alice, false),
        ];
        for (filter, dn, expected) in table {
            assert_eq!(check(filter, dn, false), *expected, "{filter} on {dn}");
        }
    }

    #[test]
    fn secrets_cannot_be_probed_by_non_admins() {
        let alice = "uid=alice,dc=x";
        for filter in ["(userPassword=secret)", "(userPassword=s*)", "(userPassword=*)"] {
            assert!(!check(filter, alice, false), "{filter}");
            assert!(check(filter, alice, true), "{filter} as admin");
        }
        // Undefined stays Undefined under NOT: no oracle by negation either.
        assert!(!check("(!(userPassword=wrong))", alice, false));
        assert!(check("(!(userPassword=wrong))", alice, true));
        assert!(!check("(userPassword=SECRET)", alice, true), "passwords compare exactly");
    }
}
