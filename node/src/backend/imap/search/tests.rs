use std::num::NonZeroU32;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::{CommandCodec, decode::Decoder};
use proptest::prelude::*;

use super::*;

/// The message most keys run against: encoded words in headers, a
/// Latin-1 quoted-printable part, a base64 HTML part and a base64
/// attachment (whose content is not text and must not match).
const MESSAGE: &str = "Date: Wed, 03 Jan 2024 23:30:00 -0800
From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>
To: Team: alice@example.com, bob@example.org;
Cc: carol@example.net
Bcc: dave@example.com
Subject: =?UTF-8?B?UmU6IGNhZsOp?= plans
X-Priority: 1
Message-ID: <s1@example.de>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"sep\"

--sep
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus M=FCnchen, see you at the caf=E9 =ZZ.
--sep
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+U0VDUkVUIGh0bWwgd29yZDwvcD4=
--sep
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

QklOQVJZU0VDUkVU
--sep--
";

const BOUNDS: Bounds = Bounds { max_seq: 5, max_uid: 42 };

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// The criteria of `SEARCH <criteria>`, as imap-codec parses them.
/// Quoted strings with non-ASCII text go as literals, as a client sends
/// them (IMAP quoted strings are 7-bit).
fn keys(criteria: &str) -> Vec<SearchKey<'static>> {
    let mut command = String::from("a SEARCH ");
    for (i, piece) in criteria.split('"').enumerate() {
        match (i % 2 == 1, piece.is_ascii()) {
            (false, _) => command.push_str(piece),
            (true, true) => command.push_str(&format!("\"{piece}\"")),
            (true, false) => command.push_str(&format!("{{{}}}\r\n{piece}", piece.len())),
        }
    }
    command.push_str("\r\n");
    let (_, command) = CommandCodec::default().decode_static(command.as_bytes()).expect("valid SEARCH");
    match command.body {
        CommandBody::Search { criteria, .. } => criteria.into_inner(),
        other => panic!("unexpected command {other:?}"),
    }
}

fn candidate<'a>(raw: Option<&'a [u8]>, keywords: &'a [String]) -> Candidate<'a> {
    Candidate {
        seq: 3,
        uid: 30,
        flags: Flags::SEEN.union(Flags::FLAGGED),
        keywords,
        recent: true,
        internal_date: DateTime::parse_from_rfc3339("2024-01-04T09:00:00+01:00").expect("valid date"),
        size: u32::try_from(raw.map_or(0, <[u8]>::len)).unwrap_or(u32::MAX),
        raw,
    }
}

fn check(c: &Candidate<'_>, cases: &[(&str, bool)]) {
    for (criteria, expected) in cases {
        let keys = keys(criteria);
        let raw_needed = keys.iter().any(needs_content);
        let c = Candidate { raw: c.raw.filter(|_| raw_needed), ..c.clone() };
        assert_eq!(matches_all(&keys, &c, BOUNDS), *expected, "SEARCH {criteria}");
    }
}

#[test]
fn flags_keywords_and_sizes() {
    let raw = crlf(MESSAGE);
    let keywords = ["$Label1".to_string(), "Work".to_string()];
    let size = raw.len();
    let (larger, smaller, not_smaller) =
        (format!("LARGER {size}"), format!("SMALLER {}", size + 1), format!("SMALLER {size}"));
    check(
        &candidate(Some(&raw), &keywords),
        &[
            ("ALL", true),
            ("ANSWERED", false),
            ("UNANSWERED", true),
            ("SEEN", true),
            ("UNSEEN", false),
            ("FLAGGED", true),
            ("UNFLAGGED", false),
            ("DELETED", false),
            ("UNDELETED", true),
            ("DRAFT", false),
            ("UNDRAFT", true),
            ("RECENT", true),
            ("NEW", false),
            ("OLD", false),
            ("KEYWORD work", true),
            ("KEYWORD $Forwarded", false),
            ("UNKEYWORD $Label1", false),
            ("UNKEYWORD Other", true),
            ("LARGER 10", true),
            (&larger, false),
            (&smaller, true),
            (&not_smaller, false),
        ],
    );
    let forwarded = Candidate { flags: Flags::PASSED, recent: false, ..candidate(None, &[]) };
    check(&forwarded, &[("KEYWORD $forwarded", true), ("NEW", false), ("OLD", true), ("UNSEEN", true)]);
    let new = Candidate { flags: Flags::default(), ..candidate(None, &[]) };
    check(&new, &[("NEW", true), ("RECENT", true)]);
}

#[test]
fn dates_compare_by_day() {
    let raw = crlf(MESSAGE);
    // Internal date 4 Jan (+0100); the Date: header says 3 Jan in its own
    // zone, though it is already 4 Jan in UTC.
    check(
        &candidate(Some(&raw), &[]),
        &[
            ("BEFORE 5-Jan-2024", true),
            ("BEFORE 4-Jan-2024", false),
            ("ON 4-Jan-2024", true),
            ("ON 3-Jan-2024", false),
            ("SINCE 4-Jan-2024", true),
            ("SINCE 5-Jan-2024", false),
            ("SENTON 3-Jan-2024", true),
            ("SENTBEFORE 4-Jan-2024", true),
            ("SENTBEFORE 3-Jan-2024", false),
            ("SENTSINCE 3-Jan-2024", true),
            ("SENTSINCE 4-Jan-2024", false),
        ],
    );
    // No usable Date: header: the internal date stands in.
    let undated = crlf("Date: someday\nSubject: x\n\nbody\n");
    check(&candidate(Some(&undated), &[]), &[("SENTON 4-Jan-2024", true), ("SENTBEFORE 4-Jan-2024", false)]);
}

#[test]
fn headers_decode_encoded_words() {
    let raw = crlf(MESSAGE);
    check(
        &candidate(Some(&raw), &[]),
        &[
            ("FROM \"müller\"", true),
            ("FROM \"MÜLLER\"", true),
            ("FROM juergen@example", true),
            ("FROM alice", false),
            ("TO bob@example.org", true),
            ("TO team", true),
            ("CC carol", true),
            ("CC dave", false),
            ("BCC DAVE", true),
            ("SUBJECT \"café\"", true),
            ("SUBJECT \"re: CAFÉ plans\"", true),
            ("SUBJECT lunch", false),
            ("HEADER X-Priority 1", true),
            ("HEADER x-priority \"\"", true),
            ("HEADER X-Missing \"\"", false),
            ("HEADER message-id s1@", true),
            ("HEADER message-id s2@", false),
        ],
    );
}

#[test]
fn body_and_text_search_decoded_text_parts() {
    let raw = crlf(MESSAGE);
    check(
        &candidate(Some(&raw), &[]),
        &[
            ("BODY \"münchen\"", true),
            ("BODY \"grüße\"", true),
            ("BODY \"café =zz\"", true),
            ("BODY \"secret html\"", true),
            ("BODY binarysecret", false),
            ("BODY plans", false),
            ("TEXT plans", true),
            ("TEXT \"münchen\"", true),
            ("TEXT x-priority", true),
            ("TEXT nowhere", false),
        ],
    );
    let nested = crlf("Content-Type: message/rfc822\n\nSubject: inner =?utf-8?q?r=C3=A9sum=C3=A9?=\n\nnested text\n");
    check(&candidate(Some(&nested), &[]), &[("BODY \"résumé\"", true), ("BODY \"nested text\"", true)]);
}

#[test]
fn sequence_sets_and_uids() {
    let c = candidate(None, &[]);
    check(
        &c,
        &[
            ("3", true),
            ("1:2", false),
            ("2:*", true),
            ("*", false),
            ("5:2", true),
            ("1,3,5", true),
            ("UID 30", true),
            ("UID 31:*", false),
            ("UID *:30", true),
            ("UID 1,5,30", true),
            ("UID 50:*", false),
        ],
    );
    // The last message: `*` and `n:*` with n past the end both reach it.
    let last = Candidate { seq: 5, uid: 42, ..candidate(None, &[]) };
    check(&last, &[("*", true), ("7:*", true), ("UID *", true), ("UID 50:*", true), ("UID 43", false)]);
}

#[test]
fn reversed_ranges_and_empty_mailboxes() {
    let n = |n| SeqOrUid::Value(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    let set = SequenceSet::from(Sequence::Range(n(5), n(2)));
    assert!((2..=5).all(|i| in_sequence_set(&set, i, 9)));
    assert!(!in_sequence_set(&set, 1, 9) && !in_sequence_set(&set, 6, 9));
    let star = SequenceSet::from(Sequence::Single(SeqOrUid::Asterisk));
    assert!(!in_sequence_set(&star, 1, 0), "`*` of an empty mailbox is no message");
}

#[test]
fn boolean_combinations() {
    let raw = crlf(MESSAGE);
    check(
        &candidate(Some(&raw), &[]),
        &[
            ("OR FROM alice SUBJECT \"café\"", true),
            ("OR FROM alice SUBJECT lunch", false),
            ("NOT SEEN", false),
            ("NOT NOT SEEN", true),
            ("(SEEN FLAGGED)", true),
            ("(SEEN DRAFT)", false),
            ("OR (DRAFT SEEN) (NOT OR RECENT DELETED)", false),
            ("OR (DRAFT SEEN) NOT (DELETED OR ANSWERED BODY \"münchen\")", true),
            ("SEEN FLAGGED 3", true),
            ("SEEN FLAGGED 4", false),
            ("OR 1:2 UID 30:*", true),
            ("NOT (OR TO nobody (CC carol NOT BCC dave))", true),
        ],
    );
}

#[test]
fn needs_content_only_for_content_keys() {
    let cases = [
        ("SEEN", false),
        ("(UID 1 LARGER 3 NOT DELETED)", false),
        ("OR SEEN FROM x", true),
        ("NOT (SENTON 1-Jan-2024)", true),
        ("HEADER x y", true),
        ("ON 1-Jan-2024", false),
    ];
    for (criteria, expected) in cases {
        assert_eq!(keys(criteria).iter().any(needs_content), expected, "{criteria}");
    }
    // Without the bytes, content keys match nothing.
    check(&candidate(None, &[]), &[("FROM x", false), ("NOT BODY x", true)]);
}

const CONTENT_KEYS: &[&str] = &[
    "BODY x",
    "TEXT \"é\"",
    "FROM a",
    "TO b",
    "CC c",
    "BCC d",
    "SUBJECT \"\"",
    "HEADER x-y z",
    "HEADER content-type \"\"",
    "SENTBEFORE 1-Jan-2024",
    "SENTON 1-Jan-2024",
    "SENTSINCE 1-Jan-2024",
];

const PIECES: &[&[u8]] = &[
    b"Date: 1 Jan 2024 00:00 +0000\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: text/plain; charset=utf-16\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Subject: =?utf-8?q?=C3?= =?x?b?=?=\r\n",
    b"\r\n",
    b"--b\r\n",
    b"==\r\n=4",
];

proptest! {
    #[test]
    fn content_keys_never_panic(
        pieces in prop::collection::vec(
            prop_oneof![
                prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
                prop::collection::vec(any::<u8>(), 0..40),
            ],
            0..40,
        )
    ) {
        let raw = pieces.concat();
        let c = candidate(Some(&raw), &[]);
        for criteria in CONTENT_KEYS {
            for key in keys(criteria) {
                let _ = matches(&key, &c, BOUNDS);
            }
        }
    }
}
