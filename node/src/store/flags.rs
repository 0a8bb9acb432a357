//! Message flags as Maildir stores them: letters after `:2,` in the file
//! name (RFC-less but universal; see the Maildir spec and Dovecot's docs).
//! IMAP system flags map one to one; keywords come with the IMAP issue.

/// A set of the six Maildir flags.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(u8);

/// (flag, Maildir letter, IMAP name), in the Maildir spec's ASCII order.
const TABLE: [(Flags, char, &str); 6] = [
    (Flags::DRAFT, 'D', "\\Draft"),
    (Flags::FLAGGED, 'F', "\\Flagged"),
    (Flags::PASSED, 'P', "$Forwarded"),
    (Flags::ANSWERED, 'R', "\\Answered"),
    (Flags::SEEN, 'S', "\\Seen"),
    (Flags::DELETED, 'T', "\\Deleted"),
];

impl Flags {
    pub const DRAFT: Flags = Flags(1);
    pub const FLAGGED: Flags = Flags(2);
    pub const PASSED: Flags = Flags(4);
    pub const ANSWERED: Flags = Flags(8);
    pub const SEEN: Flags = Flags(16);
    pub const DELETED: Flags = Flags(32);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// Parses the letters after `:2,`; unknown letters (keywords) are ignored.
    pub fn parse_maildir_info(info: &str) -> Flags {
        info.chars()
            .filter_map(|c| TABLE.iter().find(|(_, l, _)| *l == c).map(|(f, _, _)| *f))
            .fold(Flags::default(), Flags::union)
    }

    /// The letters to put after `:2,`, in ASCII order as the spec requires.
    pub fn to_maildir_info(self) -> String {
        TABLE.iter().filter(|(f, _, _)| self.contains(*f)).map(|(_, l, _)| *l).collect()
    }

    /// Splits a `cur/` file name into its base and flags.
    pub fn split_maildir_name(name: &str) -> (&str, Flags) {
        match name.split_once(":2,") {
            Some((base, info)) => (base, Flags::parse_maildir_info(info)),
            None => (name.split_once(':').map_or(name, |(b, _)| b), Flags::default()),
        }
    }

    /// IMAP names of the set flags.
    pub fn imap_names(self) -> impl Iterator<Item = &'static str> {
        TABLE.into_iter().filter(move |(f, _, _)| self.contains(*f)).map(|(_, _, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_info_round_trips_in_ascii_order() {
        let flags = Flags::SEEN.union(Flags::DRAFT).union(Flags::FLAGGED);
        assert_eq!(flags.to_maildir_info(), "DFS");
        assert_eq!(Flags::parse_maildir_info("SFDa"), flags);
    }

    #[test]
    fn splits_cur_names() {
        assert_eq!(
            Flags::split_maildir_name("123.M1.h,S=5:2,RS"),
            ("123.M1.h,S=5", Flags::ANSWERED.union(Flags::SEEN))
        );
        assert_eq!(Flags::split_maildir_name("123.M1.h"), ("123.M1.h", Flags::default()));
    }
}
