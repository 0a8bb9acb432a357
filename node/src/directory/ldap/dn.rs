//! Distinguished names (RFC 4514), just enough to compare them: group
//! members are written by hand and differ from the entry's own DN in case
//! and spacing (`uid=Bob, ou=People, ...`), and a cycle must be noticed
//! whatever the spelling.

/// Splits a DN at its unescaped commas into RDN strings (untrimmed). None
/// if an escape is cut short or an RDN is empty. The root DN "" has none.
pub fn split_rdns(dn: &str) -> Option<Vec<&str>> {
    if dn.trim().is_empty() {
        return Some(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    let mut quoted = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                rdns.push(&dn[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if escaped || quoted {
        return None;
    }
    rdns.push(&dn[start..]);
    rdns.iter().all(|r| !r.trim().is_empty()).then_some(rdns)
}

/// The comparable form of a DN: attribute types and values lower-cased
/// (the attributes DNs are built from — uid, cn, ou, dc — match case
/// insensitively), spaces around separators dropped, escapes decoded and
/// re-applied one way, multi-valued RDNs sorted. None if malformed.
pub fn normalise(dn: &str) -> Option<String> {
    let mut out = Vec::new();
    for rdn in split_rdns(dn)? {
        let mut parts = Vec::new();
        for ava in split_unescaped(rdn, '+') {
            let (attr, value) = ava.split_once('=')?;
            let attr = attr.trim().to_ascii_lowercase();
            if attr.is_empty() {
                return None;
            }
            parts.push(format!("{attr}={}", escape_value(&decode_value(value.trim())?.to_lowercase())));
        }
        parts.sort();
        out.push(parts.join("+"));
    }
    Some(out.join(","))
}

/// Whether two DNs name the same entry.
pub fn same(a: &str, b: &str) -> bool {
    match (normalise(a), normalise(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Decodes `\c` and `\xx` escapes and surrounding quotes.
fn decode_value(value: &str) -> Option<String> {
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let next = *bytes.get(i + 1)?;
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(next);
                    i += 2;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i + 1 == value.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_differences_compare_equal() {
        assert!(same("uid=Bob, ou=People, dc=example, dc=com", "uid=bob,ou=people,dc=example,dc=com"));
        assert!(same("CN=Mail Users,OU=Groups", "cn=mail users,ou=groups"));
        assert!(same("cn=a\\2cb,dc=x", "cn=a\\,b,dc=x"));
        assert!(same("cn=x+uid=y,dc=z", "uid=y+cn=x,dc=z"));
        assert!(!same("uid=bob,dc=example", "uid=bobby,dc=example"));
        assert!(!same("cn=a\\,b,dc=x", "cn=a,b,dc=x"));
    }

    #[test]
    fn malformed_dns_are_recognised() {
        assert_eq!(split_rdns("uid=a,,dc=x"), None);
        assert_eq!(split_rdns("uid=a\\"), None);
        assert_eq!(normalise("nonsense"), None);
        assert_eq!(split_rdns("").unwrap().len(), 0);
    }
}
