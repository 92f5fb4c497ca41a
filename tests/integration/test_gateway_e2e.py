"""End to end on loopback: popgated with a test configuration; a user and an
upstream account added with popgatectl, pointing at a real Dovecot POP3
server (STLS, the test CA); poll; the mail read with imaplib; a flag
changed from one client and seen from another; the daemon restarted and
everything still there, with no message fetched twice."""
import imaplib
import os
import re
import ssl
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes
from pgtest.gateway import Gateway


class GatewayEndToEndTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("alice", "pop-secret")
        self.dc.start()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca)
        self.gw.start()
        self.ctx = ssl.create_default_context(cafile=self.ca.ca_crt)

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    def wait_fetched(self, user, account, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.gw.ok({"command": "status", "user": user})
            for a in st["accounts"]:
                if a["account"] != account:
                    continue
                s = a["status"]
                if s.get("last_error"):
                    self.fail("poll failed: %s" % s["last_error"])
                if s.get("last_success") and \
                        s.get("messages_fetched", 0) >= count and \
                        s["state"] != "polling":
                    return s
            time.sleep(0.2)
        self.fail("not fetched in time: %s\n%s" % (st, self.gw.output()[-2000:]))

    def imap(self, tls=False):
        if tls:
            c = imaplib.IMAP4_SSL("127.0.0.1", self.gw.imaps_port,
                                  ssl_context=self.ctx, timeout=30)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
            c.starttls(ssl_context=self.ctx)
        c.login("alice", "imap-pw")
        return c

    def fetch_all(self, c):
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        n = int(data[0])
        bodies = []
        if n:
            typ, data = c.fetch("1:*", "(BODY.PEEK[])")
            bodies = [d[1] for d in data if isinstance(d, tuple)]
        return n, bodies

    def test_popgatectl_poll_read_flags_restart(self):
        raws = [make_message(i, 1500 + 300 * i) for i in range(5)]
        self.dc.add_messages("alice", raws)

        r = self.gw.ctl("user", "add", "alice", "--password-stdin",
                        stdin="imap-pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.ctl("account", "add", "alice", "--host", "127.0.0.1",
                        "--port", str(self.dc.port), "--tls", "stls",
                        "--login", "alice", "--password-stdin",
                        "--mode", "keep", "--interval", "3600",
                        "--name", "legacy", stdin="pop-secret\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.ctl("poll", "alice", "legacy")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.wait_fetched("alice", "legacy", 5)
        self.assertEqual(s["messages_fetched"], 5)
        self.assertEqual(s["uidl_strategy"], "uidl")
        r = self.gw.ctl("status", "alice")
        self.assertIn("legacy", r.stdout)
        self.assertRegex(r.stdout, r"legacy\s+idle")

        # read the mail over STARTTLS: the bytes the POP3 server sent
        c1 = self.imap()
        n, bodies = self.fetch_all(c1)
        self.assertEqual(n, 5)
        self.assertEqual(sorted(bodies), sorted(wire_bytes(r) for r in raws))

        # a flag changed from one client is seen from another
        c2 = self.imap(tls=True)
        self.assertEqual(c2.select("INBOX")[0], "OK")
        typ, _ = c1.store("2", "+FLAGS", "(\\Flagged \\Seen)")
        self.assertEqual(typ, "OK")
        deadline = time.monotonic() + 10
        seen = b""
        while time.monotonic() < deadline:
            c2.noop()
            seen = b" ".join(x for x in c2.untagged_responses.get(
                "FETCH", []) if isinstance(x, bytes))
            if b"\\Flagged" in seen:
                break
            time.sleep(0.1)
        self.assertIn(b"\\Flagged", seen)
        typ, data = c2.fetch("2", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        self.assertIn(b"\\Seen", data[0])
        typ, data = c2.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Flagged", data[0])
        # sessions shows both
        self.assertEqual(len(self.gw.ok({"command": "sessions",
                                         "user": "alice"})["sessions"]), 2)
        c1.logout()
        c2.logout()

        # restart: users, accounts, mail and flags are all still there
        self.gw.stop()
        self.gw.start()
        c = self.imap()
        n, bodies = self.fetch_all(c)
        self.assertEqual(n, 5)
        typ, data = c.fetch("2", "(FLAGS)")
        self.assertIn(b"\\Flagged", data[0])
        accts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual([a["account"] for a in accts], ["legacy"])

        # a new message upstream; polling again fetches only that one
        self.dc.add_message("alice", make_message(99, 900))
        r = self.gw.ctl("poll", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_fetched("alice", "legacy", 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            c.noop()
            typ, data = c.select("INBOX")
            if int(data[0]) >= 6:
                break
            time.sleep(0.2)
        self.assertEqual(int(data[0]), 6)
        c.logout()
        # keep mode: everything still on the server
        self.assertEqual(self.dc.count("alice"), 6)
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertGreaterEqual(st["imap"]["logins_ok"], 1)
        self.assertEqual(st["upstream"]["accounts"], 1)

    def test_delete_mode_and_import_to_dovecot(self):
        self.dc.add_user("bob", "bob-pop")
        self.dc.add_messages("bob", [make_message(i, 800) for i in range(3)])
        csv = ("bob,bob-imap,127.0.0.1,%d,stls,bob,bob-pop,delete,,,up\n"
               % self.dc.port)
        path = os.path.join(self.tmp, "import.csv")
        with open(path, "w") as f:
            f.write(csv)
        r = self.gw.ctl("import", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 ok, 0 failed", r.stdout)
        self.gw.ok({"command": "poll", "user": "bob", "account": "up"})
        self.wait_fetched("bob", "up", 3)
        deadline = time.monotonic() + 20
        while self.dc.count("bob") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.dc.count("bob"), 0)
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.starttls(ssl_context=self.ctx)
        c.login("bob", "bob-imap")
        self.assertEqual(int(c.select("INBOX")[1][0]), 3)
        c.logout()

    def test_sigterm_mid_poll_loses_and_duplicates_nothing(self):
        raws = [make_message(i, 3000) for i in range(400)]
        self.dc.add_messages("alice", raws)
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": self.dc.port, "tls": "stls",
                    "login": "alice", "password": "pop-secret",
                    "account": "big", "mode": "delete", "interval": 3600})
        self.gw.ok({"command": "poll", "user": "alice", "account": "big"})
        # stop while the first poll runs (or just after it, on a fast
        # machine: the checks below hold either way)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s["import"]["done"] > 0 or s.get("last_success"):
                break
            time.sleep(0.02)
        self.assertEqual(self.gw.stop(), 0)
        self.gw.start()
        self.gw.ok({"command": "poll", "user": "alice", "account": "big"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s.get("last_success") and s["state"] != "polling" and \
                    self.dc.count("alice") == 0:
                break
            time.sleep(0.2)
        self.assertEqual(self.dc.count("alice"), 0, s)
        c = self.imap()
        typ, data = c.select("INBOX")
        n = int(data[0])
        bodies = []
        for first in range(1, n + 1, 50):
            typ, data = c.fetch("%d:%d" % (first, min(n, first + 49)),
                                "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            bodies += [d[1] for d in data if isinstance(d, tuple)]
        c.logout()
        self.assertEqual(n, 400)
        self.assertEqual(sorted(bodies), sorted(wire_bytes(r) for r in raws))

    def read_inbox(self, c):
        typ, data = c.select("INBOX")
        n = int(data[0])
        bodies = []
        for first in range(1, n + 1, 50):
            typ, data = c.fetch("%d:%d" % (first, min(n, first + 49)),
                                "(BODY.PEEK[])")
            bodies += [d[1] for d in data if isinstance(d, tuple)]
        return bodies

    def test_account_removed_mid_poll_keeps_every_message(self):
        raws = [make_message(i, 3000) for i in range(400)]
        self.dc.add_messages("alice", raws)
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": self.dc.port, "tls": "stls",
                    "login": "alice", "password": "pop-secret",
                    "account": "big", "mode": "delete", "interval": 3600})
        self.gw.ok({"command": "poll", "user": "alice", "account": "big"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s["import"]["done"] > 0 or s.get("last_success"):
                break
            time.sleep(0.02)
        self.gw.ok({"command": "account.delete", "user": "alice",
                    "account": "big"})
        time.sleep(1)
        c = self.imap()
        stored = self.read_inbox(c)
        c.logout()
        # every message is in the store or still on the server (or both);
        # none is stored twice
        on_server = set(wire_bytes(raw) for raw in
                        self.dc.message_files("alice"))
        self.assertEqual(len(stored), len(set(stored)))
        want = set(wire_bytes(r) for r in raws)
        self.assertEqual(set(stored) | on_server, want)
        self.assertTrue(set(stored) <= want)

    def test_wrong_upstream_password_reported(self):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": self.dc.port, "tls": "stls",
                    "login": "alice", "password": "wrong",
                    "account": "bad", "interval": 3600})
        self.gw.ok({"command": "poll", "user": "alice", "account": "bad"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s.get("last_error"):
                break
            time.sleep(0.2)
        self.assertTrue(s.get("last_error"), s)
        self.assertIsNone(s["last_success"])
        self.assertNotIn("wrong", s["last_error"])
        # the password is fixed with account set, and the next poll works
        self.gw.ok({"command": "account.set", "user": "alice",
                    "account": "bad", "password": "pop-secret"})
        self.dc.add_message("alice", make_message(1, 500))
        self.gw.ok({"command": "poll", "user": "alice", "account": "bad"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s.get("last_success"):
                break
            time.sleep(0.2)
        self.assertTrue(s.get("last_success"), s)
        self.assertNotIn("pop-secret", self.gw.output())


if __name__ == "__main__":
    unittest.main()
