#!/usr/bin/env python3
"""One SMTP transaction through a proxy whose back-end dies between RCPTs,
driven step by step with smtplib the way Postfix, Exim and smtplib's own
sendmail() carry on after a 4xx RCPT.

Usage: smtp_backend_lost_mid_transaction.py HOST PORT FIRST LATER...

Sends MAIL and RCPT FIRST, prints "RCPT <addr> <code>", then waits for a
line on stdin (the test kills FIRST's back-end meanwhile), sends RCPT for
every LATER address and DATA, printing one line per reply:
"RCPT <addr> <code>" and "DATA <code>". Exit status 0 unless the session
itself broke.
"""
import smtplib
import sys

host, port, first, later = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
message = b"From: sender@remote.test\r\nSubject: lost mid-transaction\r\n\r\nOne copy per accepted recipient.\r\n"

smtp = smtplib.SMTP(host, port, timeout=30)
smtp.ehlo("client.test")
code, _ = smtp.mail("sender@remote.test")
if code != 250:
    print("MAIL", code)
    sys.exit(1)
accepted = 0
for n, rcpt in enumerate([first] + later):
    code, _ = smtp.rcpt(rcpt)
    accepted += code == 250
    print("RCPT", rcpt, code, flush=True)
    if n == 0:
        sys.stdin.readline()
if accepted == 0:
    print("DATA skipped")
else:
    try:
        code, _ = smtp.data(message)
    except smtplib.SMTPDataError as e:
        code = e.smtp_code
    print("DATA", code, flush=True)
smtp.quit()
