//! Test messages: real-world shapes and the malformed ones servers meet.
//! Written with LF; [`super::tests::crlf`] turns them into stored form.

pub(super) const CORPUS: &[(&str, &str)] = &[
    (
        "simple",
        r#"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
From: Fred Foobar <foobar@Blurdybloop.COM>
Subject: afternoon meeting
To: mooch@owatagu.siam.edu
Message-Id: <B27397-0100000@Blurdybloop.COM>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

Hello Joe, do you think we can meet at 3:30 tomorrow?
"#,
    ),
    (
        "alternative",
        r#"From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: Lunch?
Date: Tue, 02 Jan 2024 10:00:00 +0100
Message-ID: <alt-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

This is a multi-part message in MIME format.
--b1
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 at noon?
--b1
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<p>Caf=C3=A9 at <b>noon</b>?</p>
--b1--
"#,
    ),
    (
        "mixed",
        r#"From: "Carol Q. Public" <carol@example.net>
To: dave@example.com
Subject: Report attached
Date: Wed, 3 Jan 2024 08:30:00 -0500
Message-ID: <mixed-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed;
 boundary="----=_Part_0_123.456"
Content-Language: en

------=_Part_0_123.456
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Please find the report attached.

Carol
------=_Part_0_123.456
Content-Type: application/pdf; name="report.pdf"
Content-Transfer-Encoding: base64
Content-ID: <report@example.net>
Content-Description: Quarterly report
Content-Disposition: attachment; filename="report.pdf"; size=24
Content-Language: en, de
Content-Location: http://example.net/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoK
------=_Part_0_123.456--

epilogue
"#,
    ),
    (
        "nested",
        r#"From: Eve <eve@example.com>
To: Frank <frank@example.com>
Subject: Fwd: Lunch?
Date: Thu, 4 Jan 2024 12:00:00 +0000
Message-ID: <fwd-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain

See below.
--outer
Content-Type: message/rfc822
Content-Disposition: inline

From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: Lunch?
Date: Tue, 02 Jan 2024 10:00:00 +0100
Message-ID: <alt-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Noon?
--inner
Content-Type: text/html; charset=utf-8

<p>Noon?</p>
--inner--

--outer--
"#,
    ),
    (
        "no_body",
        r#"From: nobody@example.com
Subject: no body at all
"#,
    ),
    (
        "no_header",
        r#"just some text without any header
second line
"#,
    ),
    (
        "folded",
        r#"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>
Subject: =?UTF-8?Q?caf=C3=A9?= and
 =?UTF-8?B?w6ljbGFpcg==?=
	 folded
Date: Fri,
 5 Jan 2024 09:15:00 +0200
Message-ID:
 <folded-1@dkuug.dk>
In-Reply-To: <a@b.c>
 <d@e.f>

Body with a =?UTF-8?Q?word?= that is not decoded.
"#,
    ),
    (
        "addresses",
        r#"From: "Doe, John" <john@example.com>
Sender: secretary@example.com (The Secretary)
Reply-To: Team: alice@example.com, Bob <bob@example.com>;, postmaster
To: undisclosed-recipients:;
Cc: jane@example.org (Jane Roe), <@relay.example:joe@example.com>, "quoted \"name\"" <q@example.com>
Bcc: root
Subject: addresses
Message-ID: <addr-1@example.com>

.
"#,
    ),
    (
        "broken_multipart",
        r#"From: x@example.com
Subject: unterminated
Content-Type: multipart/mixed; boundary=zz

preamble
--zz
Content-Type: text/plain

first
--zz
Content-Type: multipart/alternative; boundary=yy

--yy
Content-Type: text/plain

inner unterminated
--zz
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0KGgo=
"#,
    ),
    (
        "digest",
        r#"From: list@example.com
Subject: digest
Content-Type: multipart/digest; boundary=dd

--dd

From: a@example.com
Subject: one

first message
--dd
Content-Type: text/plain

not a message
--dd--
"#,
    ),
    (
        "no_boundary",
        r#"From: x@example.com
Subject: multipart without boundary
Content-Type: multipart/mixed

hello
"#,
    ),
    (
        "empty_multipart",
        r#"From: x@example.com
Subject: multipart with no parts
Content-Type: multipart/mixed; boundary="nothere"

hello
"#,
    ),
    (
        "params",
        r#"From: x@example.com
Subject: params
Content-Type: Text/Plain; charset="UTF-8"; format=flowed; delsp=yes (comment)
Content-Transfer-Encoding: 8BIT
Content-Disposition: inline; filename*=utf-8''%E2%82%AC%20rates.txt
Content-ID:  <id1@x>
Content-Description: =?utf-8?q?d=C3=A9scription?=

café
"#,
    ),
    (
        "edge_addresses",
        r#"From: foo bar
Sender: <>
Reply-To: a@b, , c@d
To: Group: ;, Name <addr@host
Cc: "unterminated <x@y>
Bcc: John "Q" Doe <jqd@example.com>, =?utf-8?q?J=C3=BCrgen?= <j@example.de>, @nolocal.example
Subject: 
Content-Type: text/html

<p>x</p>
"#,
    ),
    (
        "content_types",
        r#"From: x@example.com
Content-Type: multipart/mixed; boundary=q

--q
Content-Type: text/plain; format=flowed

a
--q
Content-Type: application/octet-stream

b
--q
Content-Type: message/global

From: y@example.com

c
--q
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

RnJvbTogeUBleGFtcGxlLmNvbQ0KDQpj
--q
Content-Type: garbage

d
--q--
"#,
    ),
    (
        "case_and_rfc2231",
        r#"From: x@example.com
Content-Type: Application/X-Foo; Name*0="a b"; name*1*=%41%42; CharSet=UTF-8; Format=Flowed;
Content-Disposition: ATTACHMENT; FileName="x.txt"
Content-Language: EN-us
Content-Transfer-Encoding: Base64

abc
"#,
    ),
    (
        "us_ascii",
        r#"From: x@example.com
Content-Type: text/plain; charset=US-ASCII

abc"#,
    ),
];

/// Dovecot 2.3.19's ENVELOPE and BODYSTRUCTURE for the same messages
/// (run by hand: `imap` in PREAUTH mode on a Maildir of CORPUS; literals
/// rewritten as quoted strings). `None`: we knowingly answer differently
/// (see the test that uses these).
pub(super) const DOVECOT: &[(&str, Option<&str>, &str)] = &[
    (
        "simple",
        Some(
            r#"("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" (("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) (("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) (("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) ((NIL NIL "mooch" "owatagu.siam.edu")) NIL NIL NIL "<B27397-0100000@Blurdybloop.COM>")"#,
        ),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 55 1 NIL NIL NIL NIL)"#,
    ),
    (
        "alternative",
        Some(
            r#"("Tue, 02 Jan 2024 10:00:00 +0100" "Lunch?" (("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) (("Bob" NIL "bob" "example.org")) NIL NIL NIL "<alt-1@example.com>")"#,
        ),
        r#"(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 18 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 32 0 NIL NIL NIL NIL) "alternative" ("boundary" "b1") NIL NIL NIL)"#,
    ),
    (
        "mixed",
        Some(
            r#"("Wed, 3 Jan 2024 08:30:00 -0500" "Report attached" (("Carol Q. Public" NIL "carol" "example.net")) (("Carol Q. Public" NIL "carol" "example.net")) (("Carol Q. Public" NIL "carol" "example.net")) ((NIL NIL "dave" "example.com")) NIL NIL NIL "<mixed-1@example.net>")"#,
        ),
        r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 41 2 NIL NIL NIL NIL)("application" "pdf" ("name" "report.pdf") "<report@example.net>" "Quarterly report" "base64" 36 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "report.pdf" "size" "24")) ("en" "de") "http://example.net/report.pdf") "mixed" ("boundary" "----=_Part_0_123.456") NIL ("en") NIL)"#,
    ),
    (
        "nested",
        Some(
            r#"("Thu, 4 Jan 2024 12:00:00 +0000" "Fwd: Lunch?" (("Eve" NIL "eve" "example.com")) (("Eve" NIL "eve" "example.com")) (("Eve" NIL "eve" "example.com")) (("Frank" NIL "frank" "example.com")) NIL NIL NIL "<fwd-1@example.com>")"#,
        ),
        r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 360 ("Tue, 02 Jan 2024 10:00:00 +0100" "Lunch?" (("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) (("Bob" NIL "bob" "example.org")) NIL NIL NIL "<alt-1@example.com>") (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL) 17 NIL ("inline" NIL) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)"#,
    ),
    (
        "no_body",
        Some(
            r#"(NIL "no body at all" ((NIL NIL "nobody" "example.com")) ((NIL NIL "nobody" "example.com")) ((NIL NIL "nobody" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)"#,
    ),
    (
        "no_header",
        Some(r#"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"#),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)"#,
    ),
    (
        "folded",
        Some(
            r#"("Fri, 5 Jan 2024 09:15:00 +0200" "=?UTF-8?Q?caf=C3=A9?= and =?UTF-8?B?w6ljbGFpcg==?= folded" (("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk")) (("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk")) (("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk")) (("=?US-ASCII?Q?Keith_Moore?=" NIL "moore" "cs.utk.edu")) NIL NIL "<a@b.c> <d@e.f>" " <folded-1@dkuug.dk>")"#,
        ),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 51 1 NIL NIL NIL NIL)"#,
    ),
    (
        "addresses",
        Some(
            r#"(NIL "addresses" (("Doe, John" NIL "john" "example.com")) (("The Secretary" NIL "secretary" "example.com")) ((NIL NIL "Team" NIL)(NIL NIL "alice" "example.com")("Bob" NIL "bob" "example.com")(NIL NIL NIL NIL)(NIL NIL "postmaster" "MISSING_DOMAIN")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) (("Jane Roe" NIL "jane" "example.org")(NIL "@relay.example" "joe" "example.com")("quoted \"name\"" NIL "q" "example.com")) ((NIL NIL "root" "MISSING_DOMAIN")) NIL "<addr-1@example.com>")"#,
        ),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL)"#,
    ),
    (
        "broken_multipart",
        Some(
            r#"(NIL "unterminated" ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 0 NIL NIL NIL NIL) "alternative" ("boundary" "yy") NIL NIL NIL)("image" "png" NIL NIL NIL "base64" 14 NIL NIL NIL NIL) "mixed" ("boundary" "zz") NIL NIL NIL)"#,
    ),
    (
        "digest",
        Some(
            r#"(NIL "digest" ((NIL NIL "list" "example.com")) ((NIL NIL "list" "example.com")) ((NIL NIL "list" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"(("message" "rfc822" NIL NIL NIL "7bit" 50 (NIL "one" ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL) "digest" ("boundary" "dd") NIL NIL NIL)"#,
    ),
    (
        "no_boundary",
        Some(
            r#"(NIL "multipart without boundary" ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)"#,
    ),
    (
        "empty_multipart",
        Some(
            r#"(NIL "multipart with no parts" ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "nothere") NIL NIL NIL)"#,
    ),
    (
        "params",
        Some(
            r#"(NIL "params" ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"("Text" "Plain" ("charset" "UTF-8" "format" "flowed" "delsp" "yes") "<id1@x>" "=?utf-8?q?d=C3=A9scription?=" "8BIT" 7 1 NIL ("inline" ("filename*" "utf-8''%E2%82%AC%20rates.txt")) NIL NIL)"#,
    ),
    ("edge_addresses", None, r#"("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 10 1 NIL NIL NIL NIL)"#),
    (
        "content_types",
        Some(
            r#"(NIL NIL ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"(("text" "plain" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL)("message" "global" NIL NIL NIL "7bit" 24 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "base64" 34 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) 1 NIL NIL NIL NIL)("garbage" "" NIL NIL NIL "7bit" 1 NIL NIL NIL NIL) "mixed" ("boundary" "q") NIL NIL NIL)"#,
    ),
    (
        "case_and_rfc2231",
        Some(
            r#"(NIL NIL ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"("Application" "X-Foo" ("CharSet" "UTF-8" "Format" "Flowed" "Name*" "''a b%41%42") NIL NIL "Base64" 5 NIL ("ATTACHMENT" ("FileName" "x.txt")) ("EN-us") NIL)"#,
    ),
    (
        "us_ascii",
        Some(
            r#"(NIL NIL ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) ((NIL NIL "x" "example.com")) NIL NIL NIL NIL NIL)"#,
        ),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 0 NIL NIL NIL NIL)"#,
    ),
];
