//! The DATA phase as a pure receiver: lines in, message out. Undoes dot
//! stuffing, normalises line ends to CRLF, enforces the size limit without
//! stopping the read (the client must still reach its final dot), and ends
//! only on `CRLF . CRLF`, so a bare-LF dot cannot end the message early
//! (the "SMTP smuggling" class of bugs).

/// What one line did to the message.
#[derive(Debug, PartialEq, Eq)]
pub enum DataStep {
    /// More lines expected.
    More,
    /// The final dot arrived; the message is complete.
    Done,
}

/// Accumulates one message.
#[derive(Debug)]
pub struct DataReceiver {
    message: Vec<u8>,
    max_size: u64,
    over_limit: bool,
    /// Whether the previous line ended in CRLF (the start counts as one).
    after_crlf: bool,
}

impl DataReceiver {
    pub fn new(max_size: u64, header: Vec<u8>) -> Self {
        Self { message: header, max_size, over_limit: false, after_crlf: true }
    }

    /// Takes one line (without its terminator) and whether it ended in CRLF.
    pub fn line(&mut self, line: &[u8], crlf: bool) -> DataStep {
        if line == b"." && crlf && self.after_crlf {
            return DataStep::Done;
        }
        self.after_crlf = crlf;
        let line = line.strip_prefix(b".").unwrap_or(line);
        if !self.over_limit {
            if (self.message.len() + line.len() + 2) as u64 > self.max_size {
                self.over_limit = true;
                self.message = Vec::new();
            } else {
                self.message.extend_from_slice(line);
                self.message.extend_from_slice(b"\r\n");
            }
        }
        DataStep::More
    }

    /// Marks the message as too large (e.g. a line over the read limit).
    pub fn reject_size(&mut self) {
        self.over_limit = true;
        self.message = Vec::new();
    }

    /// The message, or `None` if it exceeded the size limit.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.over_limit).then_some(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed(lines: &[(&[u8], bool)], max: u64) -> (bool, Option<Vec<u8>>) {
        let mut rx = DataReceiver::new(max, Vec::new());
        for (line, crlf) in lines {
            if rx.line(line, *crlf) == DataStep::Done {
                return (true, rx.finish());
            }
        }
        (false, rx.finish())
    }

    #[test]
    fn dot_stuffing_is_undone() {
        let (done, msg) = feed(&[(b"Subject: x", true), (b"", true), (b"..leading dot", true), (b".", true)], 1000);
        assert!(done);
        assert_eq!(msg.unwrap(), b"Subject: x\r\n\r\n.leading dot\r\n");
    }

    #[test]
    fn bare_lf_is_normalised_and_cannot_end_the_message() {
        let (done, _) = feed(&[(b"a", false), (b".", true)], 1000);
        assert!(!done, "a dot after a bare LF must not end DATA");
        let (done, _) = feed(&[(b"a", true), (b".", false)], 1000);
        assert!(!done, "a dot ended by a bare LF must not end DATA");
        let (done, msg) = feed(&[(b"a", false), (b"b", true), (b".", true)], 1000);
        assert!(done);
        assert_eq!(msg.unwrap(), b"a\r\nb\r\n");
    }

    #[test]
    fn over_limit_reads_to_the_dot_then_refuses() {
        let (done, msg) = feed(&[(b"0123456789", true), (b"0123456789", true), (b".", true)], 15);
        assert!(done);
        assert_eq!(msg, None);
    }

    proptest! {
        /// What a client dot-stuffs, the receiver gives back exactly.
        #[test]
        fn stuffed_lines_round_trip(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no line ends", |b| *b != b'\n' && *b != b'\r'), 0..8), 0..40)) {
            let mut rx = DataReceiver::new(1 << 20, Vec::new());
            let mut expected = Vec::new();
            for line in &lines {
                let mut stuffed = line.clone();
                if stuffed.first() == Some(&b'.') { stuffed.insert(0, b'.'); }
                prop_assert_eq!(rx.line(&stuffed, true), DataStep::More);
                expected.extend_from_slice(line);
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(rx.line(b".", true), DataStep::Done);
            prop_assert_eq!(rx.finish(), Some(expected));
        }
    }
}
