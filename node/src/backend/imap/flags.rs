//! IMAP flags ↔ the store's Maildir flags. The store keeps the five system
//! flags and `$Forwarded` (Maildir 'P'); other keywords are accepted and
//! not kept, which PERMANENTFLAGS announces by leaving out `\*`.

use imap_codec::imap_types::core::Atom;
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};

use crate::store::Flags;

const FORWARDED: &str = "$Forwarded";

/// The store flags an IMAP flag list names (unknown keywords dropped).
pub fn from_imap(flags: &[Flag<'_>]) -> Flags {
    flags.iter().fold(Flags::default(), |acc, flag| {
        acc.union(match flag {
            Flag::Answered => Flags::ANSWERED,
            Flag::Deleted => Flags::DELETED,
            Flag::Draft => Flags::DRAFT,
            Flag::Flagged => Flags::FLAGGED,
            Flag::Seen => Flags::SEEN,
            Flag::Keyword(atom) if atom.as_ref().eq_ignore_ascii_case(FORWARDED) => Flags::PASSED,
            _ => Flags::default(),
        })
    })
}

/// The IMAP flags of a store flag set.
pub fn to_imap(flags: Flags) -> Vec<Flag<'static>> {
    let mut out = Vec::new();
    for (flag, imap) in [
        (Flags::ANSWERED, Flag::Answered),
        (Flags::FLAGGED, Flag::Flagged),
        (Flags::DELETED, Flag::Deleted),
        (Flags::SEEN, Flag::Seen),
        (Flags::DRAFT, Flag::Draft),
    ] {
        if flags.contains(flag) {
            out.push(imap);
        }
    }
    if flags.contains(Flags::PASSED) {
        out.push(Flag::Keyword(Atom::try_from(FORWARDED).expect("valid atom")));
    }
    out
}

/// FLAGS as a FETCH item, with \Recent for this session.
pub fn fetch_flags(flags: Flags, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut out: Vec<FlagFetch<'static>> = to_imap(flags).into_iter().map(FlagFetch::Flag).collect();
    if recent {
        out.push(FlagFetch::Recent);
    }
    out
}

/// The FLAGS response and PERMANENTFLAGS code of every SELECT.
pub fn all_flags() -> Vec<Flag<'static>> {
    to_imap(
        Flags::ANSWERED
            .union(Flags::FLAGGED)
            .union(Flags::DELETED)
            .union(Flags::SEEN)
            .union(Flags::DRAFT)
            .union(Flags::PASSED),
    )
}

/// PERMANENTFLAGS: the same flags, and no `\*` (keywords are not kept).
pub fn permanent_flags() -> Vec<FlagPerm<'static>> {
    all_flags().into_iter().map(FlagPerm::Flag).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_keywords_dropped() {
        let imap = vec![
            Flag::Seen,
            Flag::Keyword(Atom::try_from("$forwarded").unwrap()),
            Flag::Keyword(Atom::try_from("$Junk").unwrap()),
        ];
        let flags = from_imap(&imap);
        assert_eq!(flags, Flags::SEEN.union(Flags::PASSED));
        assert_eq!(from_imap(&to_imap(flags)), flags);
    }
}
