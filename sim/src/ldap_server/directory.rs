//! The in-memory directory: entries in the order the LDIF lists them, an
//! index by normalised DN, and the DN and attribute-name rules that make
//! `uid=Alice, ou=People,dc=example,dc=com` and `uid=alice,ou=people,dc=example,dc=com`
//! the same entry and `commonName` the same attribute as `cn`.

use std::collections::BTreeMap;
use std::fmt;

/// A read-only directory tree (loaded once, shared by every connection).
#[derive(Debug, Clone, Default)]
pub struct Directory {
    entries: Vec<Entry>,
    index: BTreeMap<Dn, usize>,
}

/// One directory entry.
#[derive(Debug, Clone)]
pub struct Entry {
    dn: String,
    norm: Dn,
    attributes: Vec<Attribute>,
}

/// One attribute of an entry: its name as written and its values.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// The name as the LDIF wrote it (returned to clients in this case).
    pub name: String,
    /// The canonical name for matching: lower case, aliases resolved.
    pub(super) key: String,
    pub values: Vec<Vec<u8>>,
}

impl Directory {
    /// Adds an entry; the caller (the LDIF loader) has checked that the DN
    /// is new and that its parent exists.
    pub(super) fn push(&mut self, entry: Entry) {
        self.index.insert(entry.norm.clone(), self.entries.len());
        self.entries.push(entry);
    }

    /// The entry named by `dn` (compared normalised), if any.
    pub fn get(&self, dn: &str) -> Option<&Entry> {
        Dn::parse(dn).ok().and_then(|dn| self.lookup(&dn))
    }

    pub(super) fn lookup(&self, dn: &Dn) -> Option<&Entry> {
        self.index.get(dn).map(|&i| &self.entries[i])
    }

    pub(super) fn contains(&self, dn: &Dn) -> bool {
        self.index.contains_key(dn)
    }

    /// Every entry, in LDIF order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The suffix (the first entry, the top of the tree), if any.
    pub fn suffix(&self) -> Option<&Entry> {
        self.entries.first()
    }
}

impl Entry {
    pub(super) fn new(dn: String, norm: Dn) -> Self {
        Self { dn, norm, attributes: Vec::new() }
    }

    /// Adds a value, merging attributes whose names differ only in case or
    /// by alias; a value repeated exactly is kept once.
    pub(super) fn add_value(&mut self, name: &str, value: Vec<u8>) {
        let key = attribute_key(name);
        match self.attributes.iter_mut().find(|a| a.key == key) {
            Some(attr) if attr.values.contains(&value) => {}
            Some(attr) => attr.values.push(value),
            None => self.attributes.push(Attribute { name: name.to_owned(), key, values: vec![value] }),
        }
    }

    /// The DN as the LDIF wrote it.
    pub fn dn(&self) -> &str {
        &self.dn
    }

    pub(super) fn norm(&self) -> &Dn {
        &self.norm
    }

    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The attribute called `name` (case-insensitive, aliases resolved).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        let key = attribute_key(name);
        self.attributes.iter().find(|a| a.key == key)
    }

    /// The first value of `name` as text, if it has one and it is UTF-8.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.attribute(name)?.values.first().and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Short names and their long aliases from the core schemas: one key each.
const ALIASES: &[(&str, &str)] = &[
    ("commonname", "cn"),
    ("surname", "sn"),
    ("userid", "uid"),
    ("rfc822mailbox", "mail"),
    ("domaincomponent", "dc"),
    ("organizationname", "o"),
    ("organizationalunitname", "ou"),
    ("localityname", "l"),
    ("stateorprovincename", "st"),
    ("countryname", "c"),
    ("givenname", "gn"),
];

/// The canonical form of an attribute name: lower case, aliases resolved.
pub(super) fn attribute_key(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match ALIASES.iter().find(|(long, _)| *long == lower) {
        Some((_, short)) => (*short).to_owned(),
        None => lower,
    }
}

/// A DN normalised for comparison: its RDNs leaf first, each as
/// `type=value` pairs with canonical attribute names, unescaped, lower-cased
/// values with insignificant spaces removed, multi-valued RDNs sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dn(Vec<String>);

/// Why a string is not a DN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DnError(&'static str);

impl Dn {
    /// Parses an RFC 4514 string DN; the empty string is the root.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        if text.trim().is_empty() {
            return Ok(Dn(Vec::new()));
        }
        let mut rdns = Vec::new();
        let mut avas = Vec::new();
        let mut rest = text;
        loop {
            let (ava, separator, tail) = parse_ava(rest)?;
            avas.push(ava);
            rest = tail;
            if separator != Some('+') {
                avas.sort();
                rdns.push(avas.join("+"));
                avas.clear();
            }
            if separator.is_none() {
                return Ok(Dn(rdns));
            }
        }
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The DN one level up (None for the root).
    pub fn parent(&self) -> Option<Dn> {
        (!self.0.is_empty()).then(|| Dn(self.0[1..].to_vec()))
    }

    /// Strictly below `base`, at any depth.
    pub fn is_descendant_of(&self, base: &Dn) -> bool {
        self.0.len() > base.0.len() && self.0.ends_with(&base.0)
    }

    /// Exactly one level below `base`.
    pub fn is_child_of(&self, base: &Dn) -> bool {
        self.0.len() == base.0.len() + 1 && self.0.ends_with(&base.0)
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Parses one `type=value` at the start of `text`; returns it normalised,
/// the separator that ended it (`,`, `;` or `+`; None at the end) and the rest.
fn parse_ava(text: &str) -> Result<(String, Option<char>, &str), DnError> {
    let eq = text.find('=').ok_or(DnError("an RDN has no `=`"))?;
    let name = text[..eq].trim();
    let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid_name {
        return Err(DnError("an RDN has an invalid attribute type"));
    }
    let mut value = Vec::new();
    let bytes = text.as_bytes();
    let mut i = eq + 1;
    let mut separator = None;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    value.push(byte);
                    i += 3;
                } else if let Some(&c) = bytes.get(i + 1) {
                    value.push(c);
                    i += 2;
                } else {
                    return Err(DnError("a DN ends in a lone backslash"));
                }
            }
            c @ (b',' | b';' | b'+') => {
                separator = Some(c as char);
                i += 1;
                break;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    let value = String::from_utf8_lossy(&value);
    let rest = &text[i..];
    if separator.is_some() && rest.trim().is_empty() {
        return Err(DnError("a DN ends with a separator"));
    }
    // Like caseIgnoreMatch, leading, trailing (even escaped) and repeated spaces are insignificant.
    let normalised = escape(&normalise_text(&value));
    Ok((format!("{}={normalised}", attribute_key(name)), separator, rest))
}

/// Lower case with leading, trailing and repeated inner spaces removed: the
/// caseIgnoreMatch view of a string value.
pub(super) fn normalise_text(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Escapes the characters that would make two different normalised RDNs
/// read the same.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | '=' | '\\' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn dns_compare_case_and_space_insensitively() {
        let a = dn("uid=alice,ou=people,dc=example,dc=com");
        assert_eq!(a, dn("UID=Alice , ou = People,DC=example,  dc=COM"));
        assert_eq!(a, dn("userid=alice;ou=people,dc=example,dc=com"));
        assert_ne!(a, dn("uid=alice2,ou=people,dc=example,dc=com"));
        assert_eq!(dn("cn=a\\2cb,dc=x"), dn("cn=a\\,b,dc=x"));
        assert_ne!(dn("cn=a\\,b,dc=x"), dn("cn=a,cn=b,dc=x"));
        assert_eq!(dn("cn=a+uid=b,dc=x"), dn("uid=b+cn=a,dc=x"));
        assert_eq!(dn("cn=a\\ ,dc=x"), dn("cn=a,dc=x"));
    }

    #[test]
    fn tree_relations() {
        let base = dn("ou=people,dc=example,dc=com");
        let alice = dn("uid=alice,ou=people,dc=example,dc=com");
        assert!(alice.is_child_of(&base) && alice.is_descendant_of(&base));
        assert!(alice.is_descendant_of(&dn("dc=com")) && !alice.is_child_of(&dn("dc=com")));
        assert!(!base.is_descendant_of(&base));
        assert_eq!(alice.parent(), Some(base));
        assert!(dn("").is_root() && dn("").parent().is_none());
        assert!(alice.is_descendant_of(&dn("")));
    }

    #[test]
    fn bad_dns_are_rejected() {
        for bad in ["alice", "uid=alice,", "=x", "uid=a,ou", "u id=a", "cn=a\\"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attribute_names_resolve_aliases() {
        assert_eq!(attribute_key("commonName"), "cn");
        assert_eq!(attribute_key("MailHost"), "mailhost");
    }
}
