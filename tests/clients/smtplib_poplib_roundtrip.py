#!/usr/bin/env python3
"""Delivers two messages with smtplib and reads them back with poplib.

Usage: smtplib_poplib_roundtrip.py SMTP_PORT POP3_PORT USER PASSWORD

Checks, failing with a message and exit status 1 otherwise:
- both messages arrive byte for byte (after the Return-Path and Received
  trace fields the node must add at delivery, RFC 5321 section 4.4);
- DELE of one and QUIT removes it; a second session sees the other only.
"""
import poplib
import smtplib
import sys

smtp_port, pop3_port, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

messages = [
    b"From: sender@remote.test\r\nTo: %s\r\nSubject: first\r\n\r\nHello.\r\n.A line starting with a dot\r\n" % user.encode(),
    b"From: sender@remote.test\r\nTo: %s\r\nSubject: second\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe, 8-bit body.\r\n\r\nLast line.\r\n" % user.encode(),
]


def fail(why):
    print("FAIL:", why)
    sys.exit(1)


with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as smtp:
    code, _ = smtp.ehlo("client.test")
    if code != 250 or not smtp.has_extn("8bitmime") or not smtp.has_extn("pipelining"):
        fail("EHLO did not offer 8BITMIME and PIPELINING")
    for message in messages:
        refused = smtp.sendmail("sender@remote.test", [user], message, mail_options=["BODY=8BITMIME"])
        if refused:
            fail("recipients refused: %r" % refused)


def strip_trace(lines):
    """Removes exactly the node's Return-Path and Received fields."""
    if not lines[0].startswith(b"Return-Path: <sender@remote.test>"):
        fail("first line is not Return-Path: %r" % lines[0])
    if not lines[1].startswith(b"Received: from "):
        fail("second line is not Received: %r" % lines[1])
    rest = lines[2:]
    while rest and rest[0].startswith(b"\t"):
        rest = rest[1:]
    return rest


pop = poplib.POP3("127.0.0.1", pop3_port, timeout=20)
pop.user(user)
pop.pass_(password)
count, _ = pop.stat()
if count != 2:
    fail("expected 2 messages, STAT says %d" % count)
listing = pop.list()[1]
if len(listing) != 2:
    fail("LIST shows %r" % listing)
for number, sent in enumerate(messages, start=1):
    _, lines, octets = pop.retr(number)
    body = b"\r\n".join(strip_trace(lines)) + b"\r\n"
    if body != sent:
        fail("message %d differs:\nsent %r\ngot  %r" % (number, sent, body))
    size = int(listing[number - 1].split()[1])
    if size != octets - 0 and size != sum(len(l) + 2 for l in lines):
        fail("LIST size %d does not match the message" % size)
pop.dele(1)
pop.quit()

pop = poplib.POP3("127.0.0.1", pop3_port, timeout=20)
pop.user(user)
pop.pass_(password)
count, _ = pop.stat()
if count != 1:
    fail("after DELE 1 + QUIT, expected 1 message, STAT says %d" % count)
_, lines, _ = pop.retr(1)
if b"\r\n".join(strip_trace(lines)) + b"\r\n" != messages[1]:
    fail("the remaining message is not the second one")
pop.quit()
print("OK: 2 delivered, 2 read back byte for byte, 1 deleted at QUIT")
