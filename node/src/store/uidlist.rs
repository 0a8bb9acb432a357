//! The UID list beside each Maildir (`tiermail-uidlist`), the Maildir
//! counterpart of Dovecot's `dovecot-uidlist`: it pins every message's IMAP
//! UID and POP3 UIDL to its file name so they survive restarts.
//!
//! Format: a header line `tiermail-uidlist 1 V<uidvalidity> N<uidnext>`, then
//! one `<uid> <base name>` line per message, appended (and fsynced) on every
//! delivery. A torn last line (a crash mid-append) is dropped on load.

use std::collections::BTreeMap;

/// The file name of the UID list inside a Maildir.
pub const FILE_NAME: &str = "tiermail-uidlist";
const MAGIC: &str = "tiermail-uidlist 1";

/// A parsed UID list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidList {
    pub uid_validity: u32,
    /// The header's UIDNEXT; never lower than the highest UID + 1 once loaded.
    pub uid_next: u32,
    /// UID → Maildir base name (the file name without the `:2,` info).
    pub entries: BTreeMap<u32, String>,
    /// UID → internal date (Unix seconds) where it differs from the time in
    /// the base name (IMAP APPEND with a date); field `T<secs>` on the line.
    pub dates: BTreeMap<u32, i64>,
    /// Whether the file on disk needs rewriting (torn tail, bad lines).
    pub needs_rewrite: bool,
}

/// Why a UID list could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line 1: {0}")]
pub struct UidListError(String);

impl UidList {
    /// A fresh list for a new mailbox.
    pub fn new(uid_validity: u32) -> Self {
        Self { uid_validity, uid_next: 1, entries: BTreeMap::new(), dates: BTreeMap::new(), needs_rewrite: true }
    }

    /// Parses the file's bytes. Lines after the header that do not parse are
    /// dropped (and the list marked for rewriting): their messages get new
    /// UIDs when the Maildir is scanned, which is what a lost list means.
    pub fn parse(bytes: &[u8]) -> Result<Self, UidListError> {
        let text = String::from_utf8_lossy(bytes);
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => return Err(UidListError("missing header".into())),
        };
        let mut needs_rewrite = complete.len() != text.len();
        let mut lines = complete.lines();
        let header = lines.next().unwrap_or_default();
        let rest = header.strip_prefix(MAGIC).ok_or_else(|| UidListError(format!("not a {MAGIC} header")))?;
        let (mut uid_validity, mut uid_next) = (None, None);
        for field in rest.split_whitespace() {
            if let Some(v) = field.strip_prefix('V') {
                uid_validity = v.parse::<u32>().ok();
            } else if let Some(n) = field.strip_prefix('N') {
                uid_next = n.parse::<u32>().ok();
            }
        }
        let (Some(uid_validity), Some(mut uid_next)) = (uid_validity, uid_next) else {
            return Err(UidListError("header lacks V<uidvalidity> or N<uidnext>".into()));
        };
        let mut entries = BTreeMap::new();
        let mut dates = BTreeMap::new();
        for line in lines {
            // `<uid> [fields...] <base>`: fields between the two carry
            // per-message extensions, as in dovecot-uidlist; unknown ones
            // are skipped.
            let mut tokens = line.split(' ');
            let parsed = tokens
                .next()
                .and_then(|uid| uid.parse::<u32>().ok())
                .zip(tokens.next_back())
                .filter(|(uid, base)| *uid > 0 && !base.is_empty() && !base.contains('/'));
            match parsed {
                Some((uid, base)) => {
                    uid_next = uid_next.max(uid.saturating_add(1));
                    entries.insert(uid, base.to_string());
                    if let Some(date) = tokens.find_map(|t| t.strip_prefix('T')?.parse::<i64>().ok()) {
                        dates.insert(uid, date);
                    }
                }
                None => needs_rewrite = true,
            }
        }
        Ok(Self { uid_validity, uid_next, entries, dates, needs_rewrite })
    }

    /// The whole file, for an atomic rewrite.
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC} V{} N{}\n", self.uid_validity, self.uid_next);
        for (uid, base) in &self.entries {
            out.push_str(&entry_line(*uid, base, self.dates.get(uid).copied()));
        }
        out
    }
}

/// One appended line, with the internal date if it is not the delivery time.
pub fn entry_line(uid: u32, base: &str, internal_date: Option<i64>) -> String {
    match internal_date {
        Some(date) => format!("{uid} T{date} {base}\n"),
        None => format!("{uid} {base}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let mut list = UidList::new(1_700_000_000);
        list.entries.insert(1, "1.M1U1.host,S=10".into());
        list.entries.insert(5, "2.M2U5.host,S=20".into());
        list.uid_next = 9;
        let parsed = UidList::parse(list.render().as_bytes()).unwrap();
        assert_eq!(parsed.entries, list.entries);
        assert_eq!((parsed.uid_validity, parsed.uid_next), (1_700_000_000, 9));
        assert!(!parsed.needs_rewrite);
    }

    #[test]
    fn torn_tail_is_dropped_and_flagged() {
        let text = "tiermail-uidlist 1 V7 N3\n1 a,S=1\n2 b,S=2\n3 c,S";
        let parsed = UidList::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.entries.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert!(parsed.needs_rewrite);
    }

    #[test]
    fn uid_next_never_below_highest_uid() {
        let parsed = UidList::parse(b"tiermail-uidlist 1 V7 N2\n10 a\n").unwrap();
        assert_eq!(parsed.uid_next, 11);
    }

    #[test]
    fn extension_fields_between_uid_and_name_are_skipped() {
        let parsed = UidList::parse(b"tiermail-uidlist 1 V7 N2\n4 T1700000000 X9 a,S=3\n").unwrap();
        assert_eq!(parsed.entries.get(&4).map(String::as_str), Some("a,S=3"));
        assert_eq!(parsed.dates.get(&4), Some(&1_700_000_000));
        assert_eq!(UidList::parse(parsed.render().as_bytes()).unwrap().dates, parsed.dates);
        assert!(!parsed.needs_rewrite);
    }

    #[test]
    fn bad_header_is_an_error() {
        assert!(UidList::parse(b"garbage\n").is_err());
        assert!(UidList::parse(b"tiermail-uidlist 1 V7\n").is_err());
        assert!(UidList::parse(b"").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = UidList::parse(&bytes);
        }
    }
}
