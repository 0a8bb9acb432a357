#!/usr/bin/env python3
"""Drives a scripted IMAP session over a raw socket and prints the exchange.

Usage: imap_transcript.py PORT USER PASSWORD

Every command of the IMAP back-end is used at least once. The transcript
goes to stdout with the values that change between runs (UIDVALIDITY,
dates) replaced by placeholders, so the Rust test can snapshot it.
"""
import os
import re
import socket
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
host = os.environ.get("TIERMAIL_IMAP_HOST", "127.0.0.1")
sock = socket.create_connection((host, port), timeout=20)
reader = sock.makefile("rb")
out = []

NORMALISE = [
    (re.compile(rb"(UIDVALIDITY|APPENDUID|COPYUID) \d+"), rb"\1 <uidvalidity>"),
    (re.compile(rb'INTERNALDATE "[^"]+"'), rb'INTERNALDATE "<date>"'),
    (re.compile(rb"\t(Mon|Tue|Wed|Thu|Fri|Sat|Sun), .*"), rb"\t<date>"),
    (re.compile(rb'"version" "[^"]+"'), rb'"version" "<version>"'),
]


def note(prefix, data):
    for pattern, repl in NORMALISE:
        data = pattern.sub(repl, data)
    for line in data.split(b"\r\n"):
        if line:
            out.append(prefix + line.decode("utf-8", "replace"))


def read_line():
    line = reader.readline()
    if not line:
        raise SystemExit("FAIL: connection closed\n" + "\n".join(out))
    # A literal: read its bytes too, as part of the same response line.
    m = re.search(rb"\{(\d+)\}\r\n$", line)
    if m:
        line += reader.read(int(m.group(1)))
        line += read_line()
    return line


def command(tag, text, literal=None):
    """Sends one command (with an optional synchronising literal) and
    returns every response line up to the tagged one."""
    if literal is not None:
        sock.sendall(text + b"\r\n")
        note("C: ", text)
        cont = read_line()
        note("S: ", cont)
        assert cont.startswith(b"+"), cont
        sock.sendall(literal + b"\r\n")
        note("C: ", b"<literal %d bytes>" % len(literal))
    else:
        sock.sendall(text + b"\r\n")
        note("C: ", text)
    lines = []
    while True:
        line = read_line()
        note("S: ", line)
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def ok(tag, text, literal=None):
    lines = command(tag, tag + b" " + text, literal)
    assert lines[-1].startswith(tag + b" OK"), (text, lines[-1])
    return lines


note("S: ", read_line())
ok(b"a1", b"CAPABILITY")
ok(b"a2", b"ID (\"name\" \"transcript\")")
lines = command(b"a3", b"a3 LOGIN " + user.encode() + b" wrong-password")
assert lines[-1].startswith(b"a3 NO [AUTHENTICATIONFAILED]")
# nginx style: synchronising literals in LOGIN.
for chunk in (b"a4 LOGIN {%d}" % len(user), user.encode() + b" {%d}" % len(password)):
    sock.sendall(chunk + b"\r\n")
    note("C: ", chunk)
    cont = read_line()
    note("S: ", cont)
    assert cont.startswith(b"+"), cont
sock.sendall(password.encode() + b"\r\n")
note("C: ", b"<password>")
while True:
    line = read_line()
    note("S: ", line)
    if line.startswith(b"a4 "):
        assert line.startswith(b"a4 OK"), line
        break
ok(b"a5", b"NOOP")
ok(b"a6", b"NAMESPACE")
ok(b"a7", b"ENABLE CONDSTORE")
ok(b"a8", b'LIST "" "*"')
ok(b"a9", b'LSUB "" "*"')
ok(b"b1", b"CREATE Projects")
ok(b"b2", b"CREATE Projects.Alpha")
ok(b"b3", b'LIST "" "Projects%"')
ok(b"b4", b"RENAME Projects.Alpha Projects.Beta")
ok(b"b5", b"SUBSCRIBE Projects.Beta")
ok(b"b6", b"UNSUBSCRIBE Junk")
ok(b"b7", b'LSUB "" "*"')
msg1 = b"From: Bob <bob@remote.test>\r\nTo: alice@example.com\r\nSubject: first\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@remote.test>\r\n\r\nHello Alice.\r\nSecond line.\r\n"
msg2 = (b"From: carol@remote.test\r\nTo: alice@example.com\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 03 Nov 2026 11:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attachment\r\n"
        b"--XX\r\nContent-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--XX--\r\n")
ok(b"c1", b'APPEND INBOX (\\Seen) "02-Nov-2026 10:00:00 +0000" {%d}' % len(msg1), literal=msg1)
# LITERAL+: no continuation request.
sock.sendall(b"c2 APPEND INBOX {%d+}\r\n" % len(msg2) + msg2 + b"\r\n")
note("C: ", b"c2 APPEND INBOX {%d+}" % len(msg2))
note("C: ", b"<literal %d bytes>" % len(msg2))
while True:
    line = read_line()
    note("S: ", line)
    if line.startswith(b"c2 "):
        assert line.startswith(b"c2 OK"), line
        break
ok(b"c3", b"STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
ok(b"c4", b"EXAMINE INBOX")
lines = command(b"c5", b"c5 STORE 1 +FLAGS (\\Deleted)")
assert lines[-1].startswith(b"c5 NO [READ-ONLY]")
ok(b"c6", b"SELECT INBOX")
ok(b"d1", b"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)")
ok(b"d2", b"FETCH 1 (ENVELOPE BODYSTRUCTURE)")
ok(b"d3", b"FETCH 2 (BODY BODYSTRUCTURE)")
ok(b"d4", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[TEXT]<0.5>)")
ok(b"d5", b"FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[2])")
ok(b"d6", b"FETCH 2 BODY[TEXT]<0.10>")
ok(b"d7", b"UID FETCH 2 (FLAGS RFC822.HEADER)")
ok(b"d8", b"FETCH 1 FAST")
ok(b"e1", b"SEARCH ALL")
ok(b"e2", b"SEARCH UNSEEN")
ok(b"e3", b"SEARCH CHARSET UTF-8 SUBJECT first")
ok(b"e4", b"SEARCH OR FROM carol BODY attachment")
ok(b"e5", b"UID SEARCH SINCE 01-Nov-2026 NOT DELETED")
lines = command(b"e6", b"e6 SEARCH CHARSET KOI8-R TEXT x")
assert lines[-1].startswith(b"e6 NO [BADCHARSET"), lines[-1]
ok(b"f1", b"STORE 2 +FLAGS (\\Flagged $Forwarded)")
ok(b"f2", b"STORE 2 -FLAGS.SILENT (\\Flagged)")
ok(b"f3", b"UID STORE 1 FLAGS (\\Seen \\Answered)")
ok(b"f4", b"COPY 1 Trash")
ok(b"f5", b"UID COPY 1:2 Projects")
ok(b"f6", b"MOVE 1 Projects.Beta")
ok(b"f7", b"CHECK")
ok(b"g1", b"STORE 1 +FLAGS (\\Deleted)")
ok(b"g2", b"UID EXPUNGE 1")
ok(b"g3", b"EXPUNGE")
ok(b"g4", b"SELECT Projects")
ok(b"g5", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
ok(b"g6", b"CLOSE")
ok(b"g7", b"SELECT Projects")
ok(b"g8", b"UNSELECT")
ok(b"h1", b"DELETE Projects.Beta")
lines = command(b"h2", b"h2 SELECT Nowhere")
assert lines[-1].startswith(b"h2 NO [NONEXISTENT]")
lines = command(b"h3", b"h3 FETCH 1 FLAGS")
assert lines[-1].startswith(b"h3 BAD")
lines = command(b"h4", b"h4 BOGUS")
assert lines[-1].startswith(b"h4 BAD")
ok(b"i1", b"SELECT INBOX")
sock.sendall(b"i3 IDLE\r\n")
note("C: ", b"i3 IDLE")
note("S: ", read_line())
sock.sendall(b"DONE\r\n")
note("C: ", b"DONE")
note("S: ", read_line())
lines = command(b"z1", b"z1 LOGOUT")
assert lines[0].startswith(b"* BYE"), lines
print("\n".join(out))
