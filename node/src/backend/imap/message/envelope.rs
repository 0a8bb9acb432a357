//! ENVELOPE (RFC 3501 section 7.4.2) from a header: raw strings, and
//! RFC 5322 address lists parsed leniently the way Dovecot does (groups
//! as NIL-host markers, a trailing comment as the name when there is no
//! display name, `MISSING_MAILBOX`/`MISSING_DOMAIN` for absent parts since
//! a NIL host would read as a group marker).

use imap_codec::imap_types::core::NString;
use imap_codec::imap_types::envelope::{Address, Envelope};

use super::mime::{Entity, Lexer, unfold};
use super::nstring;

/// Specials of RFC 5322 section 3.2.3: what ends an atom.
const SPECIALS: &[u8] = b"()<>[]:;@\\,.\"";

pub(super) fn envelope(raw: &[u8], entity: &Entity) -> Envelope<'static> {
    let text = |name: &str| nstring(entity.field(raw, name).map(unfold).as_deref());
    let addresses = |name: &str| entity.field(raw, name).map(|v| address_list(&unfold(v))).unwrap_or_default();
    let from = addresses("From");
    // RFC 3501: absent or empty Sender and Reply-To default to From.
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: text("Date"),
        subject: text("Subject"),
        sender: or_from(addresses("Sender")),
        reply_to: or_from(addresses("Reply-To")),
        from: from.clone(),
        to: addresses("To"),
        cc: addresses("Cc"),
        bcc: addresses("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
    }
}

/// Parses an address-list; never fails, skips what it cannot read.
pub(super) fn address_list(value: &[u8]) -> Vec<Address<'static>> {
    let mut parser = Parser { lx: Lexer::new(value), out: Vec::new() };
    loop {
        parser.lx.skip_cfws();
        match parser.lx.peek() {
            None => break,
            Some(b',' | b';' | b'>') => parser.lx.bump(),
            Some(_) => parser.mailbox_or_group(true),
        }
    }
    parser.out
}

struct Parser<'v> {
    lx: Lexer<'v>,
    out: Vec<Address<'static>>,
}

fn address(name: Option<&[u8]>, adl: Option<&[u8]>, mailbox: Option<&[u8]>, host: Option<&[u8]>) -> Address<'static> {
    Address { name: nstring(name), adl: nstring(adl), mailbox: nstring(mailbox), host: nstring(host) }
}

fn or_missing<'b>(bytes: &'b [u8], missing: &'static [u8]) -> &'b [u8] {
    if bytes.is_empty() { missing } else { bytes }
}

/// The display name: the phrase, else the last comment, else NIL.
fn display_name(phrase: &[Vec<u8>], comment: &Option<Vec<u8>>) -> Option<Vec<u8>> {
    let joined = phrase.join(&b' ');
    if !joined.is_empty() {
        return Some(joined);
    }
    comment.clone().filter(|c| !c.is_empty())
}

impl Parser<'_> {
    /// One mailbox or (when `allow_group`) group, up to but not including
    /// the `,` or `;` after it.
    fn mailbox_or_group(&mut self, allow_group: bool) {
        // Words seen so far: a display name if `<` or `:` follows, a
        // local part if `@` does.
        let mut phrase: Vec<Vec<u8>> = Vec::new();
        let mut local: Vec<u8> = Vec::new();
        let mut comment = None;
        loop {
            self.skip_blanks();
            match self.lx.peek() {
                None | Some(b',' | b';') => break,
                Some(b'(') => comment = Some(self.lx.comment()),
                Some(b'"') => {
                    let word = self.lx.quoted();
                    local.extend_from_slice(&word);
                    phrase.push(word);
                }
                Some(b'.') => {
                    self.lx.bump();
                    local.push(b'.');
                    match phrase.last_mut() {
                        Some(word) => word.push(b'.'),
                        None => phrase.push(b".".to_vec()),
                    }
                }
                Some(b'<') => {
                    let name = display_name(&phrase, &None);
                    self.angle_addr(name);
                    return;
                }
                Some(b':') if allow_group => {
                    self.lx.bump();
                    self.group(phrase.join(&b' '));
                    return;
                }
                Some(b'@') => {
                    self.lx.bump();
                    let host = self.domain();
                    loop {
                        self.skip_blanks();
                        if self.lx.peek() != Some(b'(') {
                            break;
                        }
                        comment = Some(self.lx.comment());
                    }
                    let name = comment.filter(|c| !c.is_empty());
                    let (mailbox, host) =
                        (or_missing(&local, b"MISSING_MAILBOX"), or_missing(&host, b"MISSING_DOMAIN"));
                    self.out.push(address(name.as_deref(), None, Some(mailbox), Some(host)));
                    return;
                }
                Some(b) if SPECIALS.contains(&b) || b < b' ' || b == 0x7f => self.lx.bump(),
                Some(_) => {
                    let word = self.lx.token_with(SPECIALS).to_vec();
                    local.extend_from_slice(&word);
                    phrase.push(word);
                }
            }
        }
        // No `@` nor `<`: one word is a local mailbox name ("root"),
        // several are a display name without address (as Dovecot reads).
        match phrase.len() {
            0 => {}
            1 => self.out.push(address(comment.as_deref(), None, Some(&local), Some(b"MISSING_DOMAIN"))),
            _ => {
                let name = display_name(&phrase, &comment);
                self.out.push(address(name.as_deref(), None, Some(b"MISSING_MAILBOX"), Some(b"MISSING_DOMAIN")));
            }
        }
    }

    fn skip_blanks(&mut self) {
        while self.lx.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.lx.bump();
        }
    }

    /// `[route:] local@domain >` after the `<`.
    fn angle_addr(&mut self, name: Option<Vec<u8>>) {
        self.lx.bump();
        self.lx.skip_cfws();
        let mut adl = Vec::new();
        if self.lx.peek() == Some(b'@') {
            // An obsolete source route: `@a,@b:` before the mailbox.
            let rest = self.lx.rest();
            if let Some(colon) = rest.iter().position(|&b| b == b':' || b == b'>').filter(|&i| rest[i] == b':') {
                adl = rest[..colon].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
                for _ in 0..=colon {
                    self.lx.bump();
                }
            }
        }
        let mut local = Vec::new();
        let mut host = Vec::new();
        loop {
            self.lx.skip_cfws();
            match self.lx.peek() {
                None => break,
                Some(b'>') => {
                    self.lx.bump();
                    break;
                }
                Some(b'"') => local.extend(self.lx.quoted()),
                Some(b'.') => {
                    self.lx.bump();
                    local.push(b'.');
                }
                Some(b'@') => {
                    self.lx.bump();
                    host = self.domain();
                }
                Some(b',' | b';') if !host.is_empty() => break,
                Some(b) if SPECIALS.contains(&b) || b < b' ' || b == 0x7f => self.lx.bump(),
                Some(_) => local.extend_from_slice(self.lx.token_with(SPECIALS)),
            }
        }
        let adl = (!adl.is_empty()).then_some(adl.as_slice());
        let (mailbox, host) = (or_missing(&local, b"MISSING_MAILBOX"), or_missing(&host, b"MISSING_DOMAIN"));
        self.out.push(address(name.as_deref(), adl, Some(mailbox), Some(host)));
    }

    /// Group members after the `:`, through the `;`: RFC 3501 marks the
    /// start with a NIL host and the group name as mailbox, the end with
    /// all NIL.
    fn group(&mut self, name: Vec<u8>) {
        self.out.push(address(None, None, Some(&name), None));
        loop {
            self.lx.skip_cfws();
            match self.lx.peek() {
                None => break,
                Some(b';') => {
                    self.lx.bump();
                    break;
                }
                Some(b',' | b':' | b'>') => self.lx.bump(),
                Some(_) => self.mailbox_or_group(false),
            }
        }
        self.out.push(Address { name: NString::NIL, adl: NString::NIL, mailbox: NString::NIL, host: NString::NIL });
    }

    /// A domain: dot-atoms and domain literals (kept with their brackets).
    /// Stops at a comment, which may be the display name.
    fn domain(&mut self) -> Vec<u8> {
        let mut host = Vec::new();
        loop {
            self.skip_blanks();
            match self.lx.peek() {
                Some(b'.') => {
                    self.lx.bump();
                    host.push(b'.');
                }
                Some(b'[') => {
                    while let Some(b) = self.lx.peek() {
                        self.lx.bump();
                        host.push(b);
                        if b == b']' {
                            break;
                        }
                    }
                }
                Some(b) if !SPECIALS.contains(&b) && b > b' ' && b != 0x7f => {
                    host.extend_from_slice(self.lx.token_with(SPECIALS));
                }
                _ => break,
            }
        }
        host
    }
}
