//! A stored message (raw RFC 5322 bytes) seen the way IMAP FETCH needs it
//! (RFC 3501 sections 6.4.5 and 7.4.2): ENVELOPE, BODY/BODYSTRUCTURE and
//! BODY[section] contents. Pure: no I/O, never fails; malformed input
//! gives a best-effort structure, as Dovecot does.
//!
//! Sections are slices of the original bytes, never re-encoded, so what a
//! client fetches is what was delivered. Strings in ENVELOPE and
//! BODYSTRUCTURE are the raw header text (RFC 2047 encoded words left
//! encoded, as Dovecot does): decoding is the client's job.
//!
//! imap-codec writes the type of text parts as `"TEXT"` and of nested
//! messages as `"MESSAGE" "RFC822"`, whatever the case in the message;
//! every other type, subtype and parameter keeps the message's case.

#[cfg(test)]
mod corpus;
mod envelope;
mod mime;
mod section;
mod structure;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::imap_types::body::BodyStructure;
use imap_codec::imap_types::core::{IString, Literal, NString, Quoted};
use imap_codec::imap_types::envelope::Envelope;
use imap_codec::imap_types::fetch::Section;

pub(crate) use mime::{Entity, Kind, slice};

/// A message parsed once, then asked for as many FETCH items as needed.
pub struct Message<'a> {
    raw: &'a [u8],
    root: Entity,
}

impl<'a> Message<'a> {
    /// Builds the MIME tree; never fails (see the module docs).
    pub fn parse(raw: &'a [u8]) -> Message<'a> {
        let mut budget = mime::MAX_PARTS;
        Message { raw, root: Entity::parse(raw, 0..raw.len(), false, 0, &mut budget) }
    }

    /// ENVELOPE of the message.
    pub fn envelope(&self) -> Envelope<'static> {
        envelope::envelope(self.raw, &self.root)
    }

    /// BODY (`extended == false`) or BODYSTRUCTURE (`extended == true`).
    pub fn body_structure(&self, extended: bool) -> BodyStructure<'static> {
        structure::body_structure(self.raw, &self.root, extended)
    }

    /// The bytes of BODY[section] (`None` is BODY[], the whole message).
    /// Sections that do not exist are empty, as in Dovecot. The caller
    /// applies `<origin.length>` with [`partial`].
    pub fn section(&self, section: Option<&Section<'_>>) -> Vec<u8> {
        section::section(self.raw, &self.root, section)
    }

    /// RFC822.SIZE: the stored size in octets (saturating; messages are
    /// far below 4 GiB in practice).
    pub fn rfc822_size(&self) -> u32 {
        u32::try_from(self.raw.len()).unwrap_or(u32::MAX)
    }

    /// RFC822.HEADER / BODY[HEADER]: the header including its blank line.
    pub fn header_bytes(&self) -> &'a [u8] {
        slice(self.raw, &self.root.header)
    }

    /// RFC822.TEXT / BODY[TEXT]: everything after the header.
    pub fn text_bytes(&self) -> &'a [u8] {
        slice(self.raw, &self.root.body)
    }

    /// The values of every top-level header field called `name`
    /// (case-insensitive), unfolded but otherwise raw (encoded words stay).
    /// Borrowed when the value was on one line.
    pub fn header_value(&self, name: &str) -> Vec<Cow<'a, [u8]>> {
        self.root
            .fields
            .iter()
            .filter(|f| slice(self.raw, &f.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| mime::unfold(slice(self.raw, &f.value)))
            .collect()
    }

    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub(crate) fn root(&self) -> &Entity {
        &self.root
    }
}

/// `<origin.length>` of a FETCH (RFC 3501 section 6.4.5): octets from
/// `start`, at most `length` of them; a start past the end gives nothing.
pub fn partial(bytes: &[u8], start: u32, length: NonZeroU32) -> &[u8] {
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let Some(rest) = bytes.get(start..) else { return &[] };
    let length = usize::try_from(length.get()).unwrap_or(usize::MAX);
    &rest[..rest.len().min(length)]
}

/// An IMAP string: quoted when it can be, a literal otherwise (8-bit or
/// CR/LF). NULs, which no IMAP string can carry, are dropped.
pub(crate) fn istring(bytes: &[u8]) -> IString<'static> {
    let bytes: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    match Quoted::try_from(bytes.clone()) {
        Ok(quoted) => IString::Quoted(quoted),
        Err(_) => IString::Literal(Literal::unvalidated(bytes)),
    }
}

pub(crate) fn nstring(bytes: Option<&[u8]>) -> NString<'static> {
    NString(bytes.map(istring))
}
