//! The MIME tree of a message (RFC 2045/2046) as byte ranges into the
//! original bytes, so FETCH can hand out sections exactly as stored.
//!
//! Parsing is our own rather than mail-parser's: IMAP needs the RFC 2046
//! part boundaries octet for octet (the CRLF before a delimiter belongs to
//! the delimiter), delimiters only at line starts, unencoded nested
//! messages addressed in the outer message's bytes, and no panics on
//! hostile input. The rules follow Dovecot where RFC 2046 leaves room
//! (unterminated parts run to the end, a multipart without parts gets an
//! empty text/plain one, a body without a blank line is all header).

use std::borrow::Cow;
use std::ops::Range;

/// Beyond this depth, multiparts and nested messages are kept as opaque
/// leaves: recursion stays bounded whatever the input.
pub(crate) const MAX_DEPTH: usize = 64;

/// At most this many entities per message (Dovecot's default limit too):
/// memory stays proportional to real structure, not to how many
/// delimiter lines a hostile message repeats. Later parts are left out.
pub(crate) const MAX_PARTS: usize = 10_000;

/// One header field, as ranges into the message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: Range<usize>,
    /// After the colon up to, not including, the field's final line break.
    pub value: Range<usize>,
    /// The whole field with its continuation lines and final line break.
    pub line: Range<usize>,
}

/// A parsed Content-Type (or Content-Disposition, whose subtype is empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct ContentType {
    pub r#type: Vec<u8>,
    pub subtype: Vec<u8>,
    /// Parameters in order, RFC 2231 continuations merged (after the others).
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ContentType {
    fn default_for(digest_parent: bool) -> ContentType {
        let (t, s): (&[u8], &[u8]) = if digest_parent { (b"message", b"rfc822") } else { (b"text", b"plain") };
        ContentType { r#type: t.to_vec(), subtype: s.to_vec(), params: Vec::new() }
    }

    pub fn is(&self, r#type: &str, subtype: Option<&str>) -> bool {
        self.r#type.eq_ignore_ascii_case(r#type.as_bytes())
            && subtype.is_none_or(|s| self.subtype.eq_ignore_ascii_case(s.as_bytes()))
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }
}

#[derive(Debug)]
pub(crate) enum Kind {
    Leaf,
    /// Children may be empty (no boundary, or no delimiter found).
    Multipart(Vec<Entity>),
    /// message/rfc822: the encapsulated message, parsed from the body.
    Message(Box<Entity>),
}

/// A MIME entity: header and body ranges, fields, type and children.
#[derive(Debug)]
pub(crate) struct Entity {
    /// Includes the blank line that ends the header, when there is one.
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub fields: Vec<Field>,
    pub content_type: ContentType,
    pub kind: Kind,
}

impl Entity {
    /// Parses `range` of `raw` as an entity; `digest_parent` selects the
    /// RFC 2046 default type (message/rfc822 inside multipart/digest);
    /// `budget` counts down the entities still allowed ([`MAX_PARTS`]).
    pub fn parse(raw: &[u8], range: Range<usize>, digest_parent: bool, depth: usize, budget: &mut usize) -> Entity {
        *budget = budget.saturating_sub(1);
        let (header, body) = split_header(raw, range);
        let fields = parse_fields(raw, header.clone());
        let content_type = first_field(raw, &fields, "Content-Type")
            .map(|v| parse_content_type(&unfold(v), true))
            .filter(|ct| !ct.r#type.is_empty())
            .unwrap_or_else(|| ContentType::default_for(digest_parent));
        let kind = if depth >= MAX_DEPTH || *budget == 0 {
            Kind::Leaf
        } else if content_type.is("multipart", None) {
            let digest = content_type.is("multipart", Some("digest"));
            let parts = match content_type.param("boundary") {
                Some(boundary) if !boundary.is_empty() => split_multipart(raw, body.clone(), boundary, *budget),
                _ => Vec::new(),
            };
            let mut children = Vec::with_capacity(parts.len());
            for part in parts {
                if *budget == 0 {
                    break;
                }
                children.push(Entity::parse(raw, part, digest, depth + 1, budget));
            }
            Kind::Multipart(children)
        } else if content_type.is("message", Some("rfc822")) {
            Kind::Message(Box::new(Entity::parse(raw, body.clone(), false, depth + 1, budget)))
        } else {
            Kind::Leaf
        };
        Entity { header, body, fields, content_type, kind }
    }

    /// The raw value of the first field called `name`.
    pub fn field<'r>(&self, raw: &'r [u8], name: &str) -> Option<&'r [u8]> {
        first_field(raw, &self.fields, name)
    }
}

fn first_field<'r>(raw: &'r [u8], fields: &[Field], name: &str) -> Option<&'r [u8]> {
    fields.iter().find(|f| slice(raw, &f.name).eq_ignore_ascii_case(name.as_bytes())).map(|f| slice(raw, &f.value))
}

/// Bounds-checked slicing: ranges come from our own scans, but a wrong
/// one must give empty bytes, never a panic.
pub(crate) fn slice<'r>(raw: &'r [u8], range: &Range<usize>) -> &'r [u8] {
    raw.get(range.clone()).unwrap_or_default()
}

/// The end of the line starting at `pos` (after its LF), capped at `end`.
fn line_end(raw: &[u8], pos: usize, end: usize) -> usize {
    slice(raw, &(pos..end)).iter().position(|&b| b == b'\n').map_or(end, |i| pos + i + 1)
}

/// Header is everything up to and including the first empty line; with no
/// empty line the whole range is header (as Dovecot does).
fn split_header(raw: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let mut pos = range.start;
    while pos < range.end {
        let end = line_end(raw, pos, range.end);
        let line = slice(raw, &(pos..end));
        if line == b"\n" || line == b"\r\n" {
            return (range.start..end, end..range.end);
        }
        pos = end;
    }
    (range.clone(), range.end..range.end)
}

fn parse_fields(raw: &[u8], header: Range<usize>) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = header.start;
    while pos < header.end {
        let end = line_end(raw, pos, header.end);
        let line = slice(raw, &(pos..end));
        let content_end = end - trailing_newline_len(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(field) = fields.last_mut() {
                field.value.end = content_end;
                field.line.end = end;
            }
        } else if content_end > pos {
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let name = slice(raw, &(pos..pos + colon)).trim_ascii_end();
                    (pos..pos + name.len(), pos + colon + 1..content_end)
                }
                // Like Dovecot: a line without a colon is a field without value.
                None => (pos..content_end, content_end..content_end),
            };
            fields.push(Field { name, value, line: pos..end });
        }
        pos = end;
    }
    fields
}

fn trailing_newline_len(line: &[u8]) -> usize {
    match line {
        [.., b'\r', b'\n'] => 2,
        [.., b'\n'] => 1,
        _ => 0,
    }
}

/// Splits a multipart body at its delimiter lines (RFC 2046 section 5.1.1).
/// The line break before a delimiter belongs to it; preamble and epilogue
/// are dropped; a part not closed by a delimiter runs to the end. At most
/// `limit` parts are returned.
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &[u8], limit: usize) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut open: Option<usize> = None;
    let mut pos = body.start;
    while pos < body.end && parts.len() < limit {
        let end = line_end(raw, pos, body.end);
        if let Some(close) = delimiter(slice(raw, &(pos..end)), boundary) {
            if let Some(start) = open {
                let mut part_end = pos;
                for expected in [b'\n', b'\r'] {
                    if part_end > start && raw.get(part_end - 1) == Some(&expected) {
                        part_end -= 1;
                    }
                }
                parts.push(start..part_end);
            }
            if close {
                return parts;
            }
            open = Some(end);
        }
        pos = end;
    }
    if let Some(start) = open {
        parts.push(start..body.end);
    }
    parts
}

/// `Some(is_close)` when `line` is `--boundary` or `--boundary--`, followed
/// only by whitespace (so a boundary that prefixes another never matches it).
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    rest.iter().all(|b| b.is_ascii_whitespace()).then_some(close)
}

/// A header value as one line, the way Dovecot writes envelope strings:
/// leading blanks dropped, each line break with the blanks after it
/// turned into one space (none at the end), NULs dropped since IMAP
/// strings cannot carry them.
pub(crate) fn unfold(value: &[u8]) -> Cow<'_, [u8]> {
    let start = value.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(value.len());
    let value = &value[start..];
    if !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Cow::Borrowed(value);
    }
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        i += 1;
        match b {
            b'\r' | b'\n' => {
                while value.get(i).is_some_and(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t')) {
                    i += 1;
                }
                if i < value.len() {
                    out.push(b' ');
                }
            }
            0 => {}
            _ => out.push(b),
        }
    }
    Cow::Owned(out)
}

/// An RFC 2045 lexer: tokens, quoted strings, comments skipped.
pub(crate) struct Lexer<'v> {
    s: &'v [u8],
    i: usize,
}

const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";

impl<'v> Lexer<'v> {
    pub fn new(s: &'v [u8]) -> Lexer<'v> {
        Lexer { s, i: 0 }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn bump(&mut self) {
        self.i = (self.i + 1).min(self.s.len());
    }

    /// What is left to read.
    pub fn rest(&self) -> &'v [u8] {
        self.s.get(self.i..).unwrap_or_default()
    }

    /// Skips whitespace and (nested) comments.
    pub fn skip_cfws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() {
                self.bump();
            } else if b == b'(' {
                self.comment();
            } else {
                break;
            }
        }
    }

    /// Reads a comment starting at `(`, returning its text.
    pub fn comment(&mut self) -> Vec<u8> {
        let mut depth = 0usize;
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'(' => {
                    if depth > 0 {
                        text.push(b);
                    }
                    depth += 1;
                }
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                    text.push(b);
                }
                b'\\' => {
                    if let Some(next) = self.peek() {
                        text.push(next);
                        self.bump();
                    }
                }
                _ => text.push(b),
            }
        }
        text
    }

    /// A run of bytes that are neither blanks, controls nor `specials`.
    pub fn token_with(&mut self, specials: &[u8]) -> &'v [u8] {
        let start = self.i;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || specials.contains(&b) {
                break;
            }
            self.bump();
        }
        self.s.get(start..self.i).unwrap_or_default()
    }

    pub fn token(&mut self) -> &'v [u8] {
        self.token_with(TSPECIALS)
    }

    /// Reads a quoted string starting at `"`, unescaped; an unterminated
    /// one runs to the end.
    pub fn quoted(&mut self) -> Vec<u8> {
        self.bump();
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.bump();
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.bump();
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }
}

/// Parses `type/subtype; a=b; ...` (or, without `slash`, a disposition).
pub(crate) fn parse_content_type(value: &[u8], slash: bool) -> ContentType {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let mut ct = ContentType { r#type: lx.token().to_vec(), ..ContentType::default() };
    lx.skip_cfws();
    if slash && lx.peek() == Some(b'/') {
        lx.bump();
        lx.skip_cfws();
        ct.subtype = lx.token().to_vec();
    }
    let mut params = Vec::new();
    loop {
        lx.skip_cfws();
        if lx.peek().is_none() {
            break;
        }
        let name = lx.token();
        if name.is_empty() {
            lx.bump(); // `;` or a stray special
            continue;
        }
        lx.skip_cfws();
        let mut value = Vec::new();
        if lx.peek() == Some(b'=') {
            lx.bump();
            lx.skip_cfws();
            value = if lx.peek() == Some(b'"') { lx.quoted() } else { lx.token().to_vec() };
        }
        params.push((name.to_vec(), value));
    }
    ct.params = merge_rfc2231(params);
    ct
}

/// Merges RFC 2231 continuations (`name*0`, `name*1*`, ...) into one
/// `name` or, when a segment is charset-encoded, `name*` parameter, and
/// puts them after the plain ones, as Dovecot does.
fn merge_rfc2231(params: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    struct Segment {
        base: Vec<u8>,
        index: u32,
        extended: bool,
        value: Vec<u8>,
    }
    let mut plain = Vec::new();
    let mut segments: Vec<Segment> = Vec::new();
    for (name, value) in params {
        let Some(star) = name.iter().position(|&b| b == b'*') else {
            plain.push((name, value));
            continue;
        };
        let rest = &name[star + 1..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let index = std::str::from_utf8(&rest[..digits]).ok().and_then(|d| d.parse().ok()).unwrap_or(0);
        let extended = rest.get(digits) == Some(&b'*') || rest.is_empty();
        segments.push(Segment { base: name[..star].to_vec(), index, extended, value });
    }
    // Names are case-insensitive (RFC 2045): `Name*0` and `name*1` merge.
    segments.sort_by_cached_key(|s| (s.base.to_ascii_lowercase(), s.index));
    let mut merged: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for group in segments.chunk_by(|a, b| a.base.eq_ignore_ascii_case(&b.base)) {
        let extended = group.iter().any(|s| s.extended);
        let mut name = group[0].base.clone();
        let mut value = Vec::new();
        if extended {
            name.push(b'*');
            if !group[0].extended {
                value.extend_from_slice(b"''");
            }
        }
        for s in group {
            if extended && !s.extended {
                for &b in &s.value {
                    if b == b'%' {
                        value.extend_from_slice(b"%25");
                    } else {
                        value.push(b);
                    }
                }
            } else {
                value.extend_from_slice(&s.value);
            }
        }
        merged.push((name, value));
    }
    plain.extend(merged);
    plain
}
