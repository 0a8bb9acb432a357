#!/usr/bin/env python3
"""Reads a mailbox over IMAP with imaplib (used against Dovecot serving our Maildir).

Usage: dovecot_check.py IMAP_PORT USER PASSWORD EXPECTED_COUNT OUT_DIR

LOGIN, SELECT INBOX and checks EXISTS == EXPECTED_COUNT; writes message N's
BODY.PEEK[] bytes, exactly as the server sent them, to OUT_DIR/N.eml for the
caller to compare; then STORE 1 +FLAGS (\\Seen), checks the flag is reported
and logs out. Fails with a message and exit status 1 otherwise.
"""
import imaplib
import os
import sys

port, user, password, expected, out_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]


def fail(why):
    print("FAIL:", why)
    sys.exit(1)


imap = imaplib.IMAP4("127.0.0.1", port, timeout=20)
imap.login(user, password)
status, data = imap.select("INBOX")
if status != "OK" or int(data[0]) != expected:
    fail("SELECT INBOX: expected %d EXISTS, got %s %r" % (expected, status, data))
status, data = imap.fetch("1:*", "(BODY.PEEK[])")
if status != "OK":
    fail("FETCH: %s %r" % (status, data))
bodies = [item for item in data if isinstance(item, tuple)]
if len(bodies) != expected:
    fail("FETCH 1:* returned %d messages: %r" % (len(bodies), data))
for number, (_, message) in enumerate(bodies, start=1):
    with open(os.path.join(out_dir, "%d.eml" % number), "wb") as f:
        f.write(message)
status, data = imap.store("1", "+FLAGS", "(\\Seen)")
if status != "OK" or b"\\Seen" not in data[0]:
    fail("STORE 1 +FLAGS (\\Seen): %s %r" % (status, data))
imap.logout()
print("OK: %d messages fetched, 1 marked \\Seen" % expected)
