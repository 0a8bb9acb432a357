//! BODY[section] (RFC 3501 section 6.4.5): part numbers resolved in the
//! MIME tree, bytes sliced from the original message.

use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{Part, Section};

use super::mime::{Entity, Kind, slice};

pub(super) fn section(raw: &[u8], root: &Entity, section: Option<&Section<'_>>) -> Vec<u8> {
    let Some(section) = section else {
        return raw.to_vec();
    };
    let bytes = |range| slice(raw, range).to_vec();
    match section {
        Section::Part(part) => resolve(root, part).map(|e| bytes(&e.body)).unwrap_or_default(),
        Section::Mime(part) => resolve(root, part).map(|e| bytes(&e.header)).unwrap_or_default(),
        Section::Header(part) => message(root, part.as_ref()).map(|m| bytes(&m.header)).unwrap_or_default(),
        Section::Text(part) => message(root, part.as_ref()).map(|m| bytes(&m.body)).unwrap_or_default(),
        Section::HeaderFields(part, names) => header_fields(raw, message(root, part.as_ref()), names, true),
        Section::HeaderFieldsNot(part, names) => header_fields(raw, message(root, part.as_ref()), names, false),
    }
}

/// The message whose HEADER or TEXT is asked for: the whole message, or
/// the one a message/rfc822 part encapsulates (other parts have none).
fn message<'e>(root: &'e Entity, part: Option<&Part>) -> Option<&'e Entity> {
    match part {
        None => Some(root),
        Some(part) => match &resolve(root, part)?.kind {
            Kind::Message(nested) => Some(nested),
            _ => None,
        },
    }
}

/// Follows a part number. Part n of a message is its nth part when it is
/// multipart, else (n = 1) its body; below a message/rfc822 part the same
/// holds for the encapsulated message; part 1 of any other non-multipart
/// part is the part itself (as Dovecot answers BODY[1.1]).
fn resolve<'e>(root: &'e Entity, part: &Part) -> Option<&'e Entity> {
    let mut numbers = part.0.as_ref().iter().map(|n| n.get());
    let mut current = in_message(root, numbers.next()?)?;
    for n in numbers {
        current = match &current.kind {
            Kind::Multipart(children) => child(children, n)?,
            Kind::Message(nested) => in_message(nested, n)?,
            Kind::Leaf => (n == 1).then_some(current)?,
        };
    }
    Some(current)
}

fn in_message(message: &Entity, n: u32) -> Option<&Entity> {
    match &message.kind {
        Kind::Multipart(children) => child(children, n),
        _ => (n == 1).then_some(message),
    }
}

fn child(children: &[Entity], n: u32) -> Option<&Entity> {
    children.get(usize::try_from(n).ok()?.checked_sub(1)?)
}

/// HEADER.FIELDS (`keep == true`) or HEADER.FIELDS.NOT: the matching
/// fields in message order, then the blank line RFC 3501 requires even
/// when nothing matched.
fn header_fields(raw: &[u8], message: Option<&Entity>, names: &Vec1<AString<'_>>, keep: bool) -> Vec<u8> {
    let Some(message) = message else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for field in &message.fields {
        let name = slice(raw, &field.name);
        let listed = names.as_ref().iter().any(|n| n.as_ref().eq_ignore_ascii_case(name));
        if listed == keep {
            let line = slice(raw, &field.line);
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}
