use std::num::NonZeroU32;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{CommandCodec, ResponseCodec, decode::Decoder, encode::Encoder};
use proptest::prelude::*;

use super::corpus::{CORPUS, DOVECOT};
use super::*;

/// The store keeps CRLF; test text is written with LF.
pub(super) fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn corpus(name: &str) -> Vec<u8> {
    CORPUS.iter().find(|(n, _)| *n == name).map(|(_, text)| crlf(text)).expect("no such test message")
}

/// The wire form of `* 1 FETCH (items)` as imap-codec writes it.
fn encode(items: Vec<MessageDataItem<'static>>) -> String {
    let items = Vec1::try_from(items).expect("at least one item");
    let response = Response::Data(Data::Fetch { seq: NonZeroU32::MIN, items });
    String::from_utf8_lossy(&ResponseCodec::default().encode(&response).dump()).into_owned()
}

/// One item's value alone: `* 1 FETCH (NAME value)\r\n` without the frame.
fn value_of(item: MessageDataItem<'static>) -> String {
    let wire = encode(vec![item]);
    let inner = wire.strip_prefix("* 1 FETCH (").and_then(|w| w.strip_suffix(")\r\n")).unwrap_or(&wire);
    inner.split_once(' ').map_or(inner, |(_, value)| value).to_string()
}

fn fetch(raw: &[u8]) -> String {
    let message = Message::parse(raw);
    let items = vec![
        MessageDataItem::Envelope(message.envelope()),
        MessageDataItem::Body(message.body_structure(false)),
        MessageDataItem::BodyStructure(message.body_structure(true)),
    ];
    encode(items)
}

/// The section of `BODY[spec]`, as imap-codec parses it from a command.
fn section_of(spec: &str) -> Option<Section<'static>> {
    let command = format!("a FETCH 1 BODY.PEEK[{spec}]\r\n");
    let (_, command) = CommandCodec::default().decode_static(command.as_bytes()).expect("valid FETCH");
    match command.body {
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(items), ..
        } => match items.into_iter().next() {
            Some(MessageDataItemName::BodyExt { section, .. }) => section,
            other => panic!("unexpected item {other:?}"),
        },
        other => panic!("unexpected command {other:?}"),
    }
}

fn section(raw: &[u8], spec: &str) -> String {
    String::from_utf8_lossy(&Message::parse(raw).section(section_of(spec).as_ref())).into_owned()
}

#[test]
fn corpus_fetch_snapshots() {
    for (name, text) in CORPUS {
        insta::assert_snapshot!(format!("fetch_{name}"), fetch(&crlf(text)));
    }
}

/// Where we knowingly answer otherwise: (message, Dovecot's text, ours).
const NOT_DOVECOT: &[(&str, &str, &str)] = &[
    // A message/rfc822 part whose "header" never ends (base64 text, no
    // blank line): Dovecot counts the CRLF before the next delimiter into
    // the part; RFC 2046 gives that CRLF to the delimiter, as we do for
    // every other part (and as BODY[4] then returns).
    ("content_types", "\"base64\" 34", "\"base64\" 32"),
    ("content_types", "0 0 NIL NIL NIL NIL) 1 NIL", "0 0 NIL NIL NIL NIL) 0 NIL"),
];

/// Same answers as Dovecot up to case (imap-codec writes "TEXT" and
/// "MESSAGE" "RFC822" in capitals; Dovecot itself lower-cases the default
/// charset only sometimes), apart from [`NOT_DOVECOT`]. Envelopes of
/// `edge_addresses` differ: Dovecot reports empty list elements and
/// unterminated addresses its own way (see its snapshot for ours).
#[test]
fn agrees_with_dovecot() {
    for (name, envelope, structure) in DOVECOT {
        let raw = corpus(name);
        let message = Message::parse(&raw);
        let ours = value_of(MessageDataItem::BodyStructure(message.body_structure(true)));
        let expected = NOT_DOVECOT
            .iter()
            .filter(|(n, _, _)| n == name)
            .fold(structure.to_string(), |text, (_, theirs, ours)| text.replace(theirs, ours));
        assert_eq!(ours.to_ascii_lowercase(), expected.to_ascii_lowercase(), "BODYSTRUCTURE of {name}");
        if let Some(envelope) = envelope {
            assert_eq!(value_of(MessageDataItem::Envelope(message.envelope())), *envelope, "ENVELOPE of {name}");
        }
    }
}

#[test]
fn sections_match_dovecot() {
    let simple = corpus("simple");
    let body = "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
    let header = &String::from_utf8_lossy(&simple)[..simple.len() - body.len()];
    let cases: &[(&[u8], &str, &str)] = &[
        (&simple, "", std::str::from_utf8(&simple).unwrap_or_default()),
        (&simple, "1", body),
        (&simple, "TEXT", body),
        (&simple, "HEADER", header),
        (&simple, "1.MIME", header),
        (&simple, "2", ""),
        (&simple, "1.HEADER", ""),
        (&simple, "1.1", body),
        (
            &simple,
            "HEADER.FIELDS (subject FROM x-none)",
            "From: Fred Foobar <foobar@Blurdybloop.COM>\r\nSubject: afternoon meeting\r\n\r\n",
        ),
        (
            &simple,
            "HEADER.FIELDS.NOT (subject from date to message-id mime-version)",
            "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n",
        ),
    ];
    for (raw, spec, expected) in cases {
        assert_eq!(section(raw, spec), *expected, "BODY[{spec}]");
    }
}

#[test]
fn sections_of_nested_messages() {
    let raw = corpus("nested");
    let nested_header = "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Lunch?\r\n\
        Date: Tue, 02 Jan 2024 10:00:00 +0100\r\nMessage-ID: <alt-1@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n";
    let nested_text = "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nNoon?\r\n--inner\r\n\
        Content-Type: text/html; charset=utf-8\r\n\r\n<p>Noon?</p>\r\n--inner--\r\n";
    let cases = [
        ("1", "See below."),
        ("1.1", "See below."),
        ("1.TEXT", ""),
        ("1.MIME", "Content-Type: text/plain\r\n\r\n"),
        ("2.HEADER", nested_header),
        ("2.TEXT", nested_text),
        ("2.MIME", "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"),
        ("2.1", "Noon?"),
        ("2.2", "<p>Noon?</p>"),
        ("2.2.MIME", "Content-Type: text/html; charset=utf-8\r\n\r\n"),
        ("2.HEADER.FIELDS (subject)", "Subject: Lunch?\r\n\r\n"),
        ("2.1.HEADER", ""),
        ("3", ""),
        ("2.3", ""),
    ];
    for (spec, expected) in cases {
        assert_eq!(section(&raw, spec), expected, "BODY[{spec}]");
    }
    let two = section(&raw, "2");
    assert_eq!(two, format!("{nested_header}{nested_text}"));
}

#[test]
fn sections_of_malformed_messages() {
    let no_body = corpus("no_body");
    let no_header = corpus("no_header");
    let broken = corpus("broken_multipart");
    let digest = corpus("digest");
    let cases: &[(&[u8], &str, &str)] = &[
        (&no_body, "HEADER", "From: nobody@example.com\r\nSubject: no body at all\r\n"),
        (&no_body, "TEXT", ""),
        (&no_body, "1", ""),
        (&no_body, "HEADER.FIELDS (subject)", "Subject: no body at all\r\n\r\n"),
        (&no_header, "HEADER", "just some text without any header\r\nsecond line\r\n"),
        (&no_header, "HEADER.FIELDS (subject)", "\r\n"),
        (&broken, "2.1", "inner unterminated"),
        (&broken, "3", "iVBORw0KGgo=\r\n"),
        (&broken, "1.MIME", "Content-Type: text/plain\r\n\r\n"),
        (&digest, "1.HEADER", "From: a@example.com\r\nSubject: one\r\n\r\n"),
        (&digest, "1.TEXT", "first message"),
        (&digest, "1.MIME", "\r\n"),
    ];
    for (raw, spec, expected) in cases {
        assert_eq!(section(raw, spec), *expected, "BODY[{spec}]");
    }
}

#[test]
fn partial_uses_origin_octets() {
    let n = |n| NonZeroU32::new(n).expect("non-zero");
    assert_eq!(partial(b"preamble\r\n--zz", 0, n(10)), b"preamble\r\n");
    assert_eq!(partial(b"abcdef", 2, n(3)), b"cde");
    assert_eq!(partial(b"abcdef", 4, n(100)), b"ef");
    assert_eq!(partial(b"abcdef", 6, n(1)), b"");
    assert_eq!(partial(b"abcdef", 400, n(10)), b"");
    assert_eq!(partial(b"abcdef", u32::MAX, NonZeroU32::MAX), b"");
}

#[test]
fn sizes_and_raw_parts() {
    let raw = corpus("simple");
    let message = Message::parse(&raw);
    assert_eq!(message.rfc822_size(), 310);
    assert_eq!(message.header_bytes().len() + message.text_bytes().len(), raw.len());
    assert!(message.header_bytes().ends_with(b"US-ASCII\r\n\r\n"));
    let raw = corpus("folded");
    let message = Message::parse(&raw);
    assert_eq!(message.header_value("SUBJECT"), [&b"=?UTF-8?Q?caf=C3=A9?= and =?UTF-8?B?w6ljbGFpcg==?= folded"[..]]);
    assert_eq!(message.header_value("in-reply-to"), [&b"<a@b.c> <d@e.f>"[..]]);
    assert_eq!(message.header_value("x-missing"), Vec::<Cow<[u8]>>::new());
}

#[test]
fn lf_only_messages_parse_too() {
    let raw = b"Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nhello\n--x--\n";
    let message = Message::parse(raw);
    assert_eq!(message.section(section_of("1").as_ref()), b"hello");
    assert_eq!(message.text_bytes(), b"--x\n\nhello\n--x--\n");
}

#[test]
fn deep_nesting_is_bounded() {
    let mut raw = Vec::new();
    for _ in 0..500 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: deep\r\n\r\nbody\r\n");
    let message = Message::parse(&raw);
    let wire = fetch(&raw);
    assert!(wire.contains("\"application\" \"octet-stream\""), "the innermost opened part is opaque");
    assert_eq!(message.section(section_of("1.1.1").as_ref()).len(), raw.len() - 3 * 32);
}

#[test]
fn part_count_is_bounded() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..20_000 {
        raw.extend_from_slice(b"--b\r\n\r\nx\r\n");
    }
    let message = Message::parse(&raw);
    // The message itself counts: 9,999 parts remain of the 10,000.
    assert_eq!(message.section(section_of("9999").as_ref()), b"x");
    assert_eq!(message.section(section_of("10000").as_ref()), b"");
}

/// Sections every never-panic run asks for.
const SPECS: &[&str] = &[
    "",
    "HEADER",
    "TEXT",
    "1",
    "2",
    "1.1",
    "1.2",
    "2.1",
    "3.1.2",
    "1.MIME",
    "2.MIME",
    "1.HEADER",
    "2.TEXT",
    "1.1.1.1.1",
    "HEADER.FIELDS (from subject)",
    "2.HEADER.FIELDS.NOT (to)",
];

/// Pieces of MIME structure, so generated input reaches deep code paths.
const PIECES: &[&[u8]] = &[
    b"From: a@b\r\n",
    b"To: G: x@y, \"q\\\" <z>;, <@r:l@h>, (c) w\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: multipart/digest; boundary=\"c\"\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/plain; name*0*=x; name*1=\"%\"; charset=utf-8\r\n",
    b"Content-Disposition: attachment; filename=a\r\nContent-Language: en, (x) de\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"\r\n",
    b"\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--c\r\n",
    b" folded\r\n",
    b"=?utf-8?b?w6k=?= =C3=A9=\r\n",
    b"(\"<:;@\\[",
    b"\0\xff\r",
];

fn exercise(raw: &[u8]) {
    let message = Message::parse(raw);
    let _ = fetch(raw);
    for spec in SPECS {
        let bytes = message.section(section_of(spec).as_ref());
        let _ = partial(&bytes, 3, NonZeroU32::MIN);
    }
    let _ = (message.rfc822_size(), message.header_bytes(), message.text_bytes(), message.header_value("to"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2000)) {
        exercise(&raw);
    }

    #[test]
    fn mime_like_input_never_panics(
        pieces in prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
                1 => prop::collection::vec(any::<u8>(), 0..12),
            ],
            0..60,
        )
    ) {
        exercise(&pieces.concat());
    }
}
