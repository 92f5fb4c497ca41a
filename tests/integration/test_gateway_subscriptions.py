"""Issue 13 item 18: default subscriptions. Thunderbird (and other
clients) show subscribed folders only by default; popgate subscribes
INBOX and the special-use folders when a user is created, and an upstream
account's target folder when the account is created (Dovecot's
auto = subscribe). Stores made before get the same once, at start-up."""
import imaplib
import os
import re
import unittest

from pgtest import TestCA, tempdir
from pgtest.gateway import Gateway


def lsub(c):
    typ, data = c.lsub('""', "*")
    assert typ == "OK", data
    out = set()
    for d in data:
        if d is None:
            continue
        m = re.match(rb'\((.*?)\) "/" (.*)$', d)
        out.add(m.group(2).strip(b'"').decode())
    return out


class DefaultSubscriptionsTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca)
        self.gw.start()

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()

    def imap(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "imap-pw")
        return c

    def test_item_18_default_subscriptions(self):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        c = self.imap()
        self.assertEqual(lsub(c), {"INBOX", "Sent", "Drafts", "Trash",
                                   "Junk", "Archive"})
        # the account's folder exists and is subscribed from the start
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": 9, "tls": "stls", "login": "a",
                    "password": "p", "folder": "Legacy/Old host",
                    "enabled": False})
        self.assertIn("Legacy/Old host", lsub(c))
        typ, data = c.list('""', '"Legacy/*"')
        self.assertEqual(typ, "OK")
        self.assertTrue(any(b"Legacy/Old host" in d for d in data), data)
        # what the user changes stays: no re-subscription at restart
        c.unsubscribe("Junk")
        c.logout()
        self.gw.stop()
        self.gw.start()
        c = self.imap()
        self.assertEqual(lsub(c), {"INBOX", "Sent", "Drafts", "Trash",
                                   "Archive", "Legacy/Old host"})
        c.logout()
