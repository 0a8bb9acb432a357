//! Search filters: logins normalised once, substituted into a map's search
//! pattern with RFC 4515 escaping (so no login can change the filter's
//! shape: `*)(uid=*` matches nobody), and the filter text parsed into
//! ldap3_proto's form for the client that speaks the protocol itself.

use std::fmt;

use ldap3_proto::proto::{LdapFilter, LdapMatchingRuleAssertion, LdapSubstringFilter};

/// Longest login accepted; longer ones match nobody without a query.
pub const MAX_LOGIN_LEN: usize = 320;
/// Longest filter text parsed, and deepest nesting.
const MAX_FILTER_LEN: usize = 64 * 1024;
const MAX_FILTER_DEPTH: usize = 32;

/// Escapes a value for a filter (RFC 4515 section 3): `*`, `(`, `)`, `\`,
/// NUL, other control characters and every non-ASCII byte become `\xx`.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if matches!(b, b'*' | b'(' | b')' | b'\\') || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A login as the map sees it, normalised once: trimmed, lower-cased, split
/// at the last `@`; a bare user gets the default domain if there is one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Login {
    pub user: String,
    pub domain: Option<String>,
}

impl Login {
    /// None for a login that can match nobody: empty parts, control
    /// characters, or longer than [`MAX_LOGIN_LEN`].
    pub fn normalise(raw: &str, default_domain: Option<&str>) -> Option<Login> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_LOGIN_LEN || raw.chars().any(char::is_control) {
            return None;
        }
        let lower = raw.to_lowercase();
        let (user, domain) = match lower.rsplit_once('@') {
            Some((user, domain)) => (user.to_string(), Some(domain.to_string())),
            None => (lower, default_domain.map(str::to_ascii_lowercase)),
        };
        let ok = !user.is_empty() && domain.as_deref().is_none_or(|d| !d.is_empty());
        ok.then_some(Login { user, domain })
    }

    /// `user@domain`, or the bare user when there is no domain.
    pub fn address(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}@{d}", self.user),
            None => self.user.clone(),
        }
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// A map's search pattern, checked once at config time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

/// Why a search pattern is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("unknown substitution `%{0}`: use %u (user), %d (domain), %e (user@domain) or %% (a literal %)")]
    UnknownSubstitution(char),
    #[error("a lone `%` ends the pattern: write %% for a literal %")]
    TrailingPercent,
    #[error("the pattern never uses the login: add %u or %e")]
    NoLogin,
    #[error("not a valid LDAP filter: {0}")]
    Filter(#[from] FilterError),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let mut chars = text.chars();
        let mut uses_login = false;
        while let Some(c) = chars.next() {
            if c == '%' {
                match chars.next() {
                    Some('u' | 'e') => uses_login = true,
                    Some('d' | '%') => {}
                    Some(other) => return Err(PatternError::UnknownSubstitution(other)),
                    None => return Err(PatternError::TrailingPercent),
                }
            }
        }
        if !uses_login {
            return Err(PatternError::NoLogin);
        }
        let pattern = Pattern(text.to_string());
        let sample = Login { user: "user".into(), domain: Some("example.com".into()) };
        parse(&pattern.substitute(&sample))?;
        Ok(pattern)
    }

    /// The filter for one login; every substituted value is escaped.
    pub fn substitute(&self, login: &Login) -> String {
        let mut out = String::with_capacity(self.0.len() + 64);
        let mut chars = self.0.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('u') => out.push_str(&escape(&login.user)),
                Some('d') => out.push_str(&escape(login.domain.as_deref().unwrap_or(""))),
                Some('e') => out.push_str(&escape(&login.address())),
                Some('%') => out.push('%'),
                _ => {} // rejected by parse()
            }
        }
        out
    }
}

/// Where and why filter text failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {at}")]
pub struct FilterError {
    pub at: usize,
    pub message: &'static str,
}

/// Parses RFC 4515 filter text (escapes decoded) into ldap3_proto's form.
/// Values must decode to UTF-8, which every escaped login does.
pub fn parse(text: &str) -> Result<LdapFilter, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(FilterError { at: MAX_FILTER_LEN, message: "filter too long" });
    }
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let filter = p.filter(0)?;
    if p.i != p.s.len() {
        return Err(p.error("text after the filter"));
    }
    Ok(filter)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn error(&self, message: &'static str) -> FilterError {
        FilterError { at: self.i, message }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&b);
        self.i += usize::from(hit);
        hit
    }

    fn filter(&mut self, depth: usize) -> Result<LdapFilter, FilterError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(self.error("filter nested too deeply"));
        }
        if !self.eat(b'(') {
            return Err(self.error("expected '('"));
        }
        let filter = match self.s.get(self.i) {
            Some(b'&') => {
                self.i += 1;
                LdapFilter::And(self.list(depth)?)
            }
            Some(b'|') => {
                self.i += 1;
                LdapFilter::Or(self.list(depth)?)
            }
            Some(b'!') => {
                self.i += 1;
                LdapFilter::Not(Box::new(self.filter(depth + 1)?))
            }
            _ => self.item()?,
        };
        if !self.eat(b')') {
            return Err(self.error("expected ')'"));
        }
        Ok(filter)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<LdapFilter>, FilterError> {
        let mut filters = Vec::new();
        while self.s.get(self.i) == Some(&b'(') {
            filters.push(self.filter(depth + 1)?);
        }
        Ok(filters)
    }

    fn item(&mut self) -> Result<LdapFilter, FilterError> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b';' | b':')) {
            self.i += 1;
        }
        let left = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.error("bad attribute"))?.to_string();
        let op = match (self.s.get(self.i), self.s.get(self.i + 1)) {
            (Some(b'='), _) => 1,
            (Some(b'~' | b'>' | b'<'), Some(b'=')) => 2,
            _ => return Err(self.error("expected '=', '~=', '>=' or '<='")),
        };
        let kind = self.s[self.i];
        self.i += op;
        if left.is_empty() {
            return Err(self.error("missing attribute"));
        }
        if let Some(prefix) = left.strip_suffix(':') {
            if kind != b'=' {
                return Err(self.error("extensible match needs ':='"));
            }
            return Ok(LdapFilter::Extensible(self.extensible(prefix)?));
        }
        if !is_attribute_description(&left) {
            return Err(FilterError { at: start, message: "bad attribute description" });
        }
        let segments = self.value(kind == b'=')?;
        let single = |mut segs: Vec<String>| segs.pop().unwrap_or_default();
        Ok(match kind {
            b'~' => LdapFilter::Approx(left, single(segments)),
            b'>' => LdapFilter::GreaterOrEqual(left, single(segments)),
            b'<' => LdapFilter::LessOrEqual(left, single(segments)),
            _ if segments.len() == 1 => LdapFilter::Equality(left, single(segments)),
            _ if segments.len() == 2 && segments.iter().all(String::is_empty) => LdapFilter::Present(left),
            _ => {
                let last = segments.len() - 1;
                if segments[1..last].iter().any(String::is_empty) {
                    return Err(self.error("empty substring between '*'"));
                }
                let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
                LdapFilter::Substring(
                    left,
                    LdapSubstringFilter {
                        initial: non_empty(&segments[0]),
                        any: segments[1..last].to_vec(),
                        final_: non_empty(&segments[last]),
                    },
                )
            }
        })
    }

    /// `attr[:dn][:rule]` before `:=` (the trailing ':' already removed).
    fn extensible(&mut self, prefix: &str) -> Result<LdapMatchingRuleAssertion, FilterError> {
        let mut parts = prefix.split(':');
        let type_ = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
        let mut dn_attributes = false;
        let mut matching_rule = None;
        for part in parts {
            if part.eq_ignore_ascii_case("dn") && !dn_attributes && matching_rule.is_none() {
                dn_attributes = true;
            } else if matching_rule.is_none() && is_attribute_description(part) {
                matching_rule = Some(part.to_string());
            } else {
                return Err(self.error("bad extensible match"));
            }
        }
        if type_.is_none() && matching_rule.is_none() {
            return Err(self.error("extensible match needs an attribute or a matching rule"));
        }
        if type_.as_deref().is_some_and(|t| !is_attribute_description(t)) {
            return Err(self.error("bad attribute description"));
        }
        let mut segments = self.value(false)?;
        let match_value = segments.pop().unwrap_or_default();
        Ok(LdapMatchingRuleAssertion { matching_rule, type_, match_value, dn_attributes })
    }

    /// An assertion value up to ')', split at unescaped '*' when allowed.
    fn value(&mut self, stars: bool) -> Result<Vec<String>, FilterError> {
        let mut segments = Vec::new();
        let mut current = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(self.error("unterminated value")),
                Some(b')') => break,
                Some(b'(') | Some(0) => return Err(self.error("unescaped '(' or NUL in a value")),
                Some(b'*') if stars => {
                    segments.push(std::mem::take(&mut current));
                    self.i += 1;
                }
                Some(b'*') => return Err(self.error("'*' not allowed here")),
                Some(b'\\') => {
                    let hex = self.s.get(self.i + 1..self.i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                    current.push(byte.ok_or_else(|| self.error("'\\' must be followed by two hex digits"))?);
                    self.i += 3;
                }
                Some(&b) => {
                    current.push(b);
                    self.i += 1;
                }
            }
        }
        segments.push(current);
        segments.into_iter().map(|s| String::from_utf8(s).map_err(|_| self.error("value is not UTF-8"))).collect()
    }
}

/// `descr` or numeric OID, with `;options`.
fn is_attribute_description(s: &str) -> bool {
    let mut parts = s.split(';');
    let base = parts.next().unwrap_or("");
    let descr = base.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !base.is_empty() && base.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    (descr || oid) && parts.all(|o| !o.is_empty() && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn login(raw: &str) -> Login {
        Login::normalise(raw, Some("example.com")).unwrap()
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape("José"), "Jos\\c3\\a9");
        assert_eq!(escape("plain.user-1@example.com"), "plain.user-1@example.com");
    }

    #[test]
    fn logins_are_normalised_once() {
        assert_eq!(login("  Alice@Example.COM "), Login { user: "alice".into(), domain: Some("example.com".into()) });
        assert_eq!(login("alice").address(), "alice@example.com");
        assert_eq!(Login::normalise("alice", None).unwrap().address(), "alice");
        assert_eq!(login("a@b@Example.com"), Login { user: "a@b".into(), domain: Some("example.com".into()) });
        for bad in ["", "   ", "@example.com", "alice@", "al\nice", &"x".repeat(MAX_LOGIN_LEN + 1)] {
            assert_eq!(Login::normalise(bad, Some("example.com")), None, "{bad:?}");
        }
    }

    #[test]
    fn patterns_substitute_escaped_values() {
        let p = Pattern::parse("(&(objectClass=inetOrgPerson)(|(uid=%u)(mail=%e)(o=%d)(x=100%%)))").unwrap();
        assert_eq!(
            p.substitute(&login("Alice")),
            "(&(objectClass=inetOrgPerson)(|(uid=alice)(mail=alice@example.com)(o=example.com)(x=100%)))"
        );
        let injected = p.substitute(&login("*)(uid=*"));
        assert!(injected.contains("(uid=\\2a\\29\\28uid=\\2a)"), "{injected}");
        let parsed = parse(&injected).unwrap();
        let LdapFilter::And(parts) = parsed else { panic!("shape changed: {parsed:?}") };
        assert_eq!(parts.len(), 2, "the injected login must not add filter terms");
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert_eq!(Pattern::parse("(uid=alice)"), Err(PatternError::NoLogin));
        assert_eq!(Pattern::parse("(uid=%x)"), Err(PatternError::UnknownSubstitution('x')));
        assert_eq!(Pattern::parse("(uid=%u)%"), Err(PatternError::TrailingPercent));
        assert!(matches!(Pattern::parse("(uid=%u"), Err(PatternError::Filter(_))));
        assert!(matches!(Pattern::parse("uid=%u"), Err(PatternError::Filter(_))));
    }

    #[test]
    fn parses_every_filter_form() {
        let eq = |a: &str, v: &str| LdapFilter::Equality(a.into(), v.into());
        assert_eq!(parse("(uid=a\\2ab)").unwrap(), eq("uid", "a*b"));
        assert_eq!(parse("(objectClass=*)").unwrap(), LdapFilter::Present("objectClass".into()));
        assert_eq!(
            parse("(cn=ab*c*d)").unwrap(),
            LdapFilter::Substring(
                "cn".into(),
                LdapSubstringFilter { initial: Some("ab".into()), any: vec!["c".into()], final_: Some("d".into()) }
            )
        );
        assert_eq!(
            parse("(!(a>=1))").unwrap(),
            LdapFilter::Not(Box::new(LdapFilter::GreaterOrEqual("a".into(), "1".into())))
        );
        assert_eq!(
            parse("(|(a~=x)(b<=y))").unwrap(),
            LdapFilter::Or(vec![
                LdapFilter::Approx("a".into(), "x".into()),
                LdapFilter::LessOrEqual("b".into(), "y".into())
            ])
        );
        assert_eq!(
            parse("(member:1.2.840.113556.1.4.1941:=cn=x\\2cdc=y)").unwrap(),
            LdapFilter::Extensible(LdapMatchingRuleAssertion {
                matching_rule: Some("1.2.840.113556.1.4.1941".into()),
                type_: Some("member".into()),
                match_value: "cn=x,dc=y".into(),
                dn_attributes: false,
            })
        );
        for bad in ["", "(uid=a", "(uid=a))", "uid=a", "(=a)", "(uid=a(b)", "(uid=\\zz)", "(uid=\\ff)", "(a=b**c)"] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse(&format!("{}(a=b){}", "(!".repeat(40), ")".repeat(40))).is_err(), "depth limit");
    }

    proptest! {
        #[test]
        fn any_escaped_string_parses_back_to_itself(value in any::<String>()) {
            let filter = format!("(cn={})", escape(&value));
            prop_assert_eq!(parse(&filter).unwrap(), LdapFilter::Equality("cn".into(), value));
        }

        #[test]
        fn any_login_keeps_the_pattern_shape(raw in any::<String>()) {
            let pattern = Pattern::parse("(&(objectClass=person)(|(uid=%u)(mail=%e)))").unwrap();
            if let Some(login) = Login::normalise(&raw, Some("example.com")) {
                let LdapFilter::And(parts) = parse(&pattern.substitute(&login)).unwrap() else { panic!() };
                let LdapFilter::Or(alternatives) = &parts[1] else { panic!() };
                prop_assert_eq!(&alternatives[0], &LdapFilter::Equality("uid".into(), login.user.clone()));
                prop_assert_eq!(&alternatives[1], &LdapFilter::Equality("mail".into(), login.address()));
            }
        }

        #[test]
        fn arbitrary_filter_text_never_panics(text in "[()&|!=*~<>:a-z0-9\\\\ ]{0,60}") {
            let _ = parse(&text);
        }
    }
}
