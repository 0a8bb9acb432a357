//! LDIF loading (RFC 2849 content records): `dn:`, `attr: value`,
//! `attr:: base64`, folded lines, `#` comments, blank lines between
//! records and an optional `version: 1`. Pure: text in, [`Directory`] out.
//! Change records and `attr:< URL` values are refused, not ignored.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

use super::directory::{Directory, Dn, Entry};

/// The largest LDIF accepted (10 MiB).
pub const MAX_LDIF_BYTES: usize = 10 * 1024 * 1024;
/// The largest single value accepted (1 MiB), after base64 decoding.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Why an LDIF was rejected, and on which line (1-based; the line where the
/// offending logical line starts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifError {
    pub line: usize,
    pub problem: LdifProblem,
}

/// What is wrong with an LDIF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdifProblem {
    #[error("the input is {size} bytes; the limit is {MAX_LDIF_BYTES}")]
    TooLarge { size: usize },
    #[error("a folded line (starting with a space) has no line to continue")]
    StrayContinuation,
    #[error("expected `attribute: value`")]
    MissingColon,
    #[error("invalid attribute name `{name}`")]
    BadAttributeName { name: String },
    #[error("`version: {version}` is not supported (only 1)")]
    BadVersion { version: String },
    #[error("a record must start with `dn:`; found `{found}:`")]
    MissingDn { found: String },
    #[error("a second `dn:` in one record (missing blank line between records?)")]
    RepeatedDn,
    #[error("invalid DN `{dn}`: {reason}")]
    BadDn { dn: String, reason: String },
    #[error("the empty DN (the root DSE) cannot be an entry")]
    EmptyDn,
    #[error("the base64 value of `{attribute}` is not valid base64")]
    BadBase64 { attribute: String },
    #[error("the value of `{attribute}` is not UTF-8 text")]
    NotUtf8 { attribute: String },
    #[error("the value of `{attribute}` is {size} bytes; the limit is {MAX_VALUE_BYTES}")]
    ValueTooLarge { attribute: String, size: usize },
    #[error("`{attribute}:<` URL values are not supported")]
    UrlValue { attribute: String },
    #[error("change records (`{attribute}:`) are not supported; give entries as content records")]
    ChangeRecord { attribute: String },
    #[error("entry `{dn}` has no attributes")]
    NoAttributes { dn: String },
    #[error("entry `{dn}` is already defined on line {first_line}")]
    DuplicateDn { dn: String, first_line: usize },
    #[error(
        "the parent of `{dn}` is not in the directory (entries must follow their parent; only the first entry, the suffix, may lack one)"
    )]
    MissingParent { dn: String },
}

impl fmt::Display for LdifError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LDIF line {}: {}", self.line, self.problem)
    }
}

impl std::error::Error for LdifError {}

/// A logical (unfolded) line and the physical line it starts on.
struct Line {
    number: usize,
    text: String,
}

impl Directory {
    /// Loads a directory from LDIF text. Every entry but the first (the
    /// suffix) must follow its parent, as slapadd requires.
    pub fn from_ldif(text: &str) -> Result<Directory, LdifError> {
        if text.len() > MAX_LDIF_BYTES {
            return Err(LdifError { line: 1, problem: LdifProblem::TooLarge { size: text.len() } });
        }
        let mut records = split_records(text)?;
        strip_version(&mut records)?;
        let mut directory = Directory::default();
        let mut first_lines = BTreeMap::new();
        for record in records {
            let (entry, line) = parse_record(&record)?;
            let fail = |problem| Err(LdifError { line, problem });
            if let Some(&first_line) = first_lines.get(entry.norm()) {
                return fail(LdifProblem::DuplicateDn { dn: entry.dn().to_owned(), first_line });
            }
            let parent = entry.norm().parent().unwrap_or_default();
            if !directory.is_empty() && !directory.contains(&parent) {
                return fail(LdifProblem::MissingParent { dn: entry.dn().to_owned() });
            }
            first_lines.insert(entry.norm().clone(), line);
            directory.push(entry);
        }
        Ok(directory)
    }
}

/// Unfolds lines, drops comments and groups lines into records.
fn split_records(text: &str) -> Result<Vec<Vec<Line>>, LdifError> {
    let mut records = Vec::new();
    let mut current: Vec<Line> = Vec::new();
    // A comment's folded continuation lines belong to the comment.
    let mut in_comment = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            in_comment = false;
        } else if let Some(folded) = raw.strip_prefix(' ') {
            if in_comment {
                continue;
            }
            match current.last_mut() {
                Some(line) => line.text.push_str(folded),
                None => return Err(LdifError { line: number, problem: LdifProblem::StrayContinuation }),
            }
        } else if raw.starts_with('#') {
            in_comment = true;
        } else {
            in_comment = false;
            current.push(Line { number, text: raw.to_owned() });
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    Ok(records)
}

/// Removes a leading `version: 1` line (alone or in front of the first record).
fn strip_version(records: &mut Vec<Vec<Line>>) -> Result<(), LdifError> {
    let Some(first) = records.first_mut() else { return Ok(()) };
    let (name, value) = split_line(&first[0])?;
    if !name.eq_ignore_ascii_case("version") {
        return Ok(());
    }
    if value != b"1" {
        let version = String::from_utf8_lossy(&value).into_owned();
        return Err(LdifError { line: first[0].number, problem: LdifProblem::BadVersion { version } });
    }
    first.remove(0);
    if first.is_empty() {
        records.remove(0);
    }
    Ok(())
}

/// Turns one record into an entry; returns it with the line of its `dn:`.
fn parse_record(record: &[Line]) -> Result<(Entry, usize), LdifError> {
    let first = &record[0];
    let fail = |line: &Line, problem| Err(LdifError { line: line.number, problem });
    let (name, value) = split_line(first)?;
    if !name.eq_ignore_ascii_case("dn") {
        return fail(first, LdifProblem::MissingDn { found: name.to_owned() });
    }
    let Ok(dn) = String::from_utf8(value) else {
        return fail(first, LdifProblem::NotUtf8 { attribute: name.to_owned() });
    };
    let norm = match Dn::parse(&dn) {
        Ok(norm) if norm.is_root() => return fail(first, LdifProblem::EmptyDn),
        Ok(norm) => norm,
        Err(e) => return fail(first, LdifProblem::BadDn { dn, reason: e.to_string() }),
    };
    if record.len() == 1 {
        return fail(first, LdifProblem::NoAttributes { dn });
    }
    let mut entry = Entry::new(dn, norm);
    for line in &record[1..] {
        let (name, value) = split_line(line)?;
        let attribute = name.to_owned();
        if name.eq_ignore_ascii_case("dn") {
            return fail(line, LdifProblem::RepeatedDn);
        }
        if name.eq_ignore_ascii_case("changetype") || name.eq_ignore_ascii_case("control") {
            return fail(line, LdifProblem::ChangeRecord { attribute });
        }
        entry.add_value(name, value);
    }
    Ok((entry, first.number))
}

/// Splits `name: value`, `name:: base64` or `name:< url` into the name and
/// the decoded value.
fn split_line(line: &Line) -> Result<(&str, Vec<u8>), LdifError> {
    let fail = |problem| Err(LdifError { line: line.number, problem });
    let Some((name, rest)) = line.text.split_once(':') else {
        return fail(LdifProblem::MissingColon);
    };
    let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-;.".contains(&b));
    if !valid_name {
        return fail(LdifProblem::BadAttributeName { name: name.chars().take(64).collect() });
    }
    let attribute = || name.to_owned();
    let value = if let Some(encoded) = rest.strip_prefix(':') {
        let encoded = encoded.trim_matches(' ');
        if encoded.len() / 4 * 3 > MAX_VALUE_BYTES + 3 {
            return fail(LdifProblem::ValueTooLarge { attribute: attribute(), size: encoded.len() / 4 * 3 });
        }
        match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(value) => value,
            Err(_) => return fail(LdifProblem::BadBase64 { attribute: attribute() }),
        }
    } else if rest.starts_with('<') {
        return fail(LdifProblem::UrlValue { attribute: attribute() });
    } else {
        // Trailing spaces are dropped too: in a hand-edited file they are
        // a typo far more often than data (RFC 2849 wants such values in base64).
        rest.trim_matches(' ').as_bytes().to_vec()
    };
    if value.len() > MAX_VALUE_BYTES {
        return fail(LdifProblem::ValueTooLarge { attribute: attribute(), size: value.len() });
    }
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problem(text: &str) -> (usize, LdifProblem) {
        let e = Directory::from_ldif(text).expect_err("should be rejected");
        (e.line, e.problem)
    }

    const SMALL: &str = "version: 1\n\n# the top\ndn: dc=example,dc=com\nobjectClass: domain\ndc: example\n\n\
        dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
        dn: uid=alice,ou=people,dc=example,dc=com\r\nuid: alice\r\nCN: Alice\r\n  Liddell\r\ncn: Al\r\n\
        description:: w6lsw6h2ZQ==\r\n# a comment\r\n  folded into the comment\r\nmail: alice@example.com   \r\n";

    #[test]
    fn loads_records_with_folding_base64_comments_and_crlf() {
        let d = Directory::from_ldif(SMALL).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.suffix().unwrap().dn(), "dc=example,dc=com");
        let alice = d.get("UID=Alice, ou=People, dc=example, dc=com").expect("found normalised");
        let cn = alice.attribute("commonName").unwrap();
        assert_eq!(cn.name, "CN", "the first spelling of a name is kept");
        assert_eq!(cn.values, [b"Alice Liddell".to_vec(), b"Al".to_vec()]);
        assert_eq!(alice.first("description"), Some("élève"));
        assert_eq!(alice.first("mail"), Some("alice@example.com"));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        use LdifProblem::*;
        let cases: &[(&str, usize, LdifProblem)] = &[
            ("objectClass: top\n", 1, MissingDn { found: "objectClass".into() }),
            ("dn: dc=x\ncn:: !!!\n", 2, BadBase64 { attribute: "cn".into() }),
            ("dn: dc=x\ncn: a\n\ndn: DC=X\ncn: b\n", 4, DuplicateDn { dn: "DC=X".into(), first_line: 1 }),
            (
                "dn: dc=x\ncn: a\n\ndn: cn=b,ou=nowhere,dc=x\ncn: b\n",
                4,
                MissingParent { dn: "cn=b,ou=nowhere,dc=x".into() },
            ),
            ("\n dangling\n", 2, StrayContinuation),
            ("dn: dc=x\nno colon here\n", 2, MissingColon),
            ("dn: dc=x\nbad name: v\n", 2, BadAttributeName { name: "bad name".into() }),
            ("version: 2\n", 1, BadVersion { version: "2".into() }),
            ("dn: dc=x\nchangetype: add\n", 2, ChangeRecord { attribute: "changetype".into() }),
            ("dn: dc=x\njpegPhoto:< file:///x\n", 2, UrlValue { attribute: "jpegPhoto".into() }),
            ("dn: dc=x\n", 1, NoAttributes { dn: "dc=x".into() }),
            ("dn:\ncn: x\n", 1, EmptyDn),
            ("dn: nonsense\ncn: x\n", 1, BadDn { dn: "nonsense".into(), reason: "an RDN has no `=`".into() }),
            ("dn:: /w==\ncn: x\n", 1, NotUtf8 { attribute: "dn".into() }),
            ("dn: dc=x\ncn: a\ndn: dc=y\n", 3, RepeatedDn),
        ];
        for (text, line, expected) in cases {
            assert_eq!(problem(text), (*line, expected.clone()), "{text:?}");
        }
        let e = Directory::from_ldif("dn: dc=x\ncn:: !!!\n").unwrap_err();
        assert_eq!(e.to_string(), "LDIF line 2: the base64 value of `cn` is not valid base64");
    }

    #[test]
    fn size_limits_are_enforced() {
        let big = format!("dn: dc=x\ncn: {}\n", "a".repeat(MAX_VALUE_BYTES + 1));
        assert!(matches!(problem(&big), (2, LdifProblem::ValueTooLarge { .. })));
        let huge = "#".repeat(MAX_LDIF_BYTES + 1);
        assert!(matches!(problem(&huge), (1, LdifProblem::TooLarge { .. })));
    }

    #[test]
    fn empty_input_is_an_empty_directory() {
        assert!(Directory::from_ldif("").unwrap().is_empty());
        assert!(Directory::from_ldif("version: 1\n# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn the_fixture_loads() {
        let d = Directory::from_ldif(super::super::FIXTURE_LDIF).expect("fixture is valid");
        assert!(d.get("uid=alice,ou=people,dc=example,dc=com").is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = Directory::from_ldif(&text);
        }

        #[test]
        fn ldif_shaped_text_never_panics(
            lines in proptest::collection::vec(
                "(dn|cn|uid|version|changetype|#|\\x20)?(:|::|:<)?[ a-zA-Z0-9=,+\\\\/=#]{0,12}", 0..24)
        ) {
            let _ = Directory::from_ldif(&lines.join("\n"));
        }
    }
}
