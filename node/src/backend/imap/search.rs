//! SEARCH evaluation (RFC 3501 section 6.4.4, the full key set) against
//! one message at a time. Pure: the session supplies what it knows of the
//! message ([`Candidate`]), and the raw bytes only when [`needs_content`]
//! says a key looks inside.
//!
//! Strings match as case-insensitive substrings of the decoded text:
//! RFC 2047 words in headers, transfer encodings and charsets of text
//! parts in bodies. The caller accepts only UTF-8 and US-ASCII search
//! strings (others get NO [BADCHARSET]). Dates compare by day only, as the
//! RFC says: the internal date's day in its own offset for BEFORE/ON/SINCE,
//! the Date: header's day in its own zone for SENT*.

use std::cell::OnceCell;

use chrono::{DateTime, FixedOffset, NaiveDate};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::HeaderValue;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

use super::message::{Entity, Kind, Message, slice};
use crate::store::flags::Flags;

/// What SEARCH may look at for one message.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub flags: Flags,
    pub keywords: &'a [String],
    pub recent: bool,
    pub internal_date: DateTime<FixedOffset>,
    pub size: u32,
    /// The stored message; `None` when no key needs it (content keys then
    /// match nothing).
    pub raw: Option<&'a [u8]>,
}

/// The mailbox's highest sequence number and UID: what `*` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_seq: u32,
    pub max_uid: u32,
}

/// Whether evaluating `key` reads the message itself (headers or body),
/// so the session loads the file only when it must.
pub fn needs_content(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_content),
        SearchKey::Not(key) => needs_content(key),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

/// Whether the message matches `key`.
pub fn matches(key: &SearchKey<'_>, candidate: &Candidate<'_>, bounds: Bounds) -> bool {
    Eval::new(candidate, bounds).eval(key)
}

/// Whether the message matches every key: the top-level list of a SEARCH
/// command is an implicit AND. The message is parsed at most once.
pub fn matches_all(keys: &[SearchKey<'_>], candidate: &Candidate<'_>, bounds: Bounds) -> bool {
    let eval = Eval::new(candidate, bounds);
    keys.iter().all(|key| eval.eval(key))
}

/// Whether `n` is in `set`, with `*` standing for `max` and ranges in
/// either order (RFC 3501 section 9: `seq-range`).
pub fn in_sequence_set(set: &SequenceSet, n: u32, max: u32) -> bool {
    let value = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => max,
    };
    set.0.as_ref().iter().any(|seq| match seq {
        Sequence::Single(x) => value(x) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

/// One message's evaluation: parsing and decoding happen on first need
/// and are shared by all keys.
struct Eval<'c, 'a> {
    c: &'c Candidate<'a>,
    bounds: Bounds,
    message: OnceCell<Option<Message<'a>>>,
    header_text: OnceCell<String>,
    body_text: OnceCell<String>,
}

impl<'c, 'a> Eval<'c, 'a> {
    fn new(c: &'c Candidate<'a>, bounds: Bounds) -> Self {
        Eval { c, bounds, message: OnceCell::new(), header_text: OnceCell::new(), body_text: OnceCell::new() }
    }

    fn eval(&self, key: &SearchKey<'_>) -> bool {
        let flag = |f| self.c.flags.contains(f);
        let internal = || self.c.internal_date.date_naive();
        match key {
            SearchKey::And(keys) => keys.as_ref().iter().all(|k| self.eval(k)),
            SearchKey::Or(a, b) => self.eval(a) || self.eval(b),
            SearchKey::Not(k) => !self.eval(k),
            SearchKey::SequenceSet(set) => in_sequence_set(set, self.c.seq, self.bounds.max_seq),
            SearchKey::Uid(set) => in_sequence_set(set, self.c.uid, self.bounds.max_uid),
            SearchKey::All => true,
            SearchKey::Answered => flag(Flags::ANSWERED),
            SearchKey::Deleted => flag(Flags::DELETED),
            SearchKey::Draft => flag(Flags::DRAFT),
            SearchKey::Flagged => flag(Flags::FLAGGED),
            SearchKey::Seen => flag(Flags::SEEN),
            SearchKey::Unanswered => !flag(Flags::ANSWERED),
            SearchKey::Undeleted => !flag(Flags::DELETED),
            SearchKey::Undraft => !flag(Flags::DRAFT),
            SearchKey::Unflagged => !flag(Flags::FLAGGED),
            SearchKey::Unseen => !flag(Flags::SEEN),
            SearchKey::Recent => self.c.recent,
            SearchKey::New => self.c.recent && !flag(Flags::SEEN),
            SearchKey::Old => !self.c.recent,
            SearchKey::Keyword(k) => self.has_keyword(k.inner()),
            SearchKey::Unkeyword(k) => !self.has_keyword(k.inner()),
            SearchKey::Larger(n) => self.c.size > *n,
            SearchKey::Smaller(n) => self.c.size < *n,
            SearchKey::Before(d) => internal() < *d.as_ref(),
            SearchKey::On(d) => internal() == *d.as_ref(),
            SearchKey::Since(d) => internal() >= *d.as_ref(),
            SearchKey::SentBefore(d) => self.sent().is_some_and(|s| s < *d.as_ref()),
            SearchKey::SentOn(d) => self.sent().is_some_and(|s| s == *d.as_ref()),
            SearchKey::SentSince(d) => self.sent().is_some_and(|s| s >= *d.as_ref()),
            SearchKey::Bcc(s) => self.header("Bcc", s.as_ref()),
            SearchKey::Cc(s) => self.header("Cc", s.as_ref()),
            SearchKey::From(s) => self.header("From", s.as_ref()),
            SearchKey::To(s) => self.header("To", s.as_ref()),
            SearchKey::Subject(s) => self.header("Subject", s.as_ref()),
            SearchKey::Header(name, s) => std::str::from_utf8(name.as_ref()).is_ok_and(|n| self.header(n, s.as_ref())),
            SearchKey::Body(s) => self.body_contains(s.as_ref()),
            SearchKey::Text(s) => {
                let needle = lower(s.as_ref());
                self.header_text().contains(&needle) || self.body_text().contains(&needle)
            }
        }
    }

    /// Keywords are case-insensitive; `$Forwarded` is the Maildir P flag.
    fn has_keyword(&self, keyword: &str) -> bool {
        (keyword.eq_ignore_ascii_case("$Forwarded") && self.c.flags.contains(Flags::PASSED))
            || self.c.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword))
    }

    fn message(&self) -> Option<&Message<'a>> {
        self.message.get_or_init(|| self.c.raw.map(Message::parse)).as_ref()
    }

    /// A field called `name` contains `needle` once decoded; an empty
    /// needle asks only that the field be there.
    fn header(&self, name: &str, needle: &[u8]) -> bool {
        let Some(message) = self.message() else { return false };
        let needle = lower(needle);
        let raw = message.raw();
        message
            .root()
            .fields
            .iter()
            .filter(|f| slice(raw, &f.name).eq_ignore_ascii_case(name.as_bytes()))
            .any(|f| needle.is_empty() || decode_header(slice(raw, &f.value)).to_lowercase().contains(&needle))
    }

    fn body_contains(&self, needle: &[u8]) -> bool {
        self.message().is_some() && self.body_text().contains(&lower(needle))
    }

    /// Every top-level field as `name: decoded value`, lower-cased.
    fn header_text(&self) -> &str {
        self.header_text.get_or_init(|| {
            let mut text = String::new();
            if let Some(message) = self.message() {
                header_text(message.raw(), message.root(), &mut text);
            }
            text.to_lowercase()
        })
    }

    /// The decoded text parts, lower-cased.
    fn body_text(&self) -> &str {
        self.body_text.get_or_init(|| {
            let mut text = String::new();
            if let Some(message) = self.message() {
                body_text(message.raw(), message.root(), &mut text);
            }
            text.to_lowercase()
        })
    }

    /// The day of the Date: header in its own zone; the internal date's
    /// day when the header is missing or unreadable (so SENT* still sorts
    /// such a message somewhere sensible, as most servers do).
    fn sent(&self) -> Option<NaiveDate> {
        let message = self.message()?;
        let header = message.root().field(message.raw(), "Date").and_then(|value| {
            let mut line = value.to_vec();
            line.extend_from_slice(b"\r\n");
            match MessageStream::new(&line).parse_date() {
                HeaderValue::DateTime(d) => NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into()),
                _ => None,
            }
        });
        Some(header.unwrap_or_else(|| self.c.internal_date.date_naive()))
    }
}

fn lower(needle: &[u8]) -> String {
    String::from_utf8_lossy(needle).to_lowercase()
}

/// An unstructured header value with RFC 2047 words decoded.
fn decode_header(value: &[u8]) -> String {
    let mut line = value.to_vec();
    line.extend_from_slice(b"\r\n");
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

fn header_text(raw: &[u8], entity: &Entity, out: &mut String) {
    for field in &entity.fields {
        out.push_str(&String::from_utf8_lossy(slice(raw, &field.name)));
        out.push_str(": ");
        out.push_str(&decode_header(slice(raw, &field.value)));
        out.push('\n');
    }
}

/// Text parts decoded, nested messages with their headers; other parts
/// (images, archives) are not text and are skipped.
fn body_text(raw: &[u8], entity: &Entity, out: &mut String) {
    match &entity.kind {
        Kind::Multipart(children) => children.iter().for_each(|child| body_text(raw, child, out)),
        Kind::Message(nested) => {
            header_text(raw, nested, out);
            body_text(raw, nested, out);
        }
        Kind::Leaf if entity.content_type.is("text", None) => {
            out.push_str(&decode_text(raw, entity));
            out.push('\n');
        }
        Kind::Leaf => {}
    }
}

/// A text part's body: transfer encoding undone, then its charset.
/// Undecodable input is searched as it is.
fn decode_text(raw: &[u8], entity: &Entity) -> String {
    let body = slice(raw, &entity.body);
    let encoding = entity.field(raw, "Content-Transfer-Encoding").map(|v| v.trim_ascii().to_ascii_lowercase());
    let bytes = match encoding.as_deref() {
        Some(b"base64") => base64_decode(body).unwrap_or_else(|| body.to_vec()),
        Some(b"quoted-printable") => quoted_printable(body),
        _ => body.to_vec(),
    };
    match entity.content_type.param("charset").and_then(charset_decoder) {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// RFC 2045 section 6.7, leniently: a bad escape stays as it is instead
/// of failing the part (mail-parser's decoder gives up on the whole part).
fn quoted_printable(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16)).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'=' {
            let rest = bytes.get(i + 1..).unwrap_or_default();
            let blanks = rest.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
            let soft_break = match rest.get(blanks..) {
                Some([b'\r', b'\n', ..]) => Some(blanks + 2),
                Some([b'\n', ..]) => Some(blanks + 1),
                _ => None,
            };
            if let Some(skip) = soft_break {
                i += 1 + skip;
                continue;
            }
            if let (Some(high), Some(low)) = (hex(rest.first()), hex(rest.get(1))) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests;
