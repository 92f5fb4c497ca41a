"""Issue 12, quotas and store use, against popgated: a default quota from
the configuration and one per user set with popgatectl; the IMAP QUOTA
extension (RFC 9208: GETQUOTAROOT, GETQUOTA, the STORAGE resource, STATUS
DELETED / DELETED-STORAGE) with imaplib; APPEND and COPY past the quota
answered NO [OVERQUOTA] and nothing stored, MOVE allowed (it adds
nothing); a real Dovecot upstream whose user runs over quota: what fits
is stored, the account pauses with a clear status, nothing is deleted
upstream, and it resumes once there is room, with nothing stored twice;
`popgatectl status` shows the store's use."""
import imaplib
import json
import os
import re
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway

for _name in ("GETQUOTA", "GETQUOTAROOT", "MOVE"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))


def message(i, size):
    head = b"From: q@example.org\r\nSubject: quota %d\r\n\r\n" % i
    return head + b"q" * (size - len(head) - 2) + b"\r\n"


class QuotaTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          sections={"upstream-defaults": "interval = 3600\n"},
                          extra="")
        # the default quota for every user: 100 KB
        with open(self.gw.conf) as f:
            conf = f.read()
        conf = conf.replace("[store]\n", "[store]\nquota = 100K\n", 1)
        with open(self.gw.conf, "w") as f:
            f.write(conf)
        self.gw.start()
        self.dc = None

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        if self.dc is not None:
            self.dc.stop()

    def imap(self, user):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login(user, user + "-pw")
        return c

    def add_user(self, user):
        self.gw.ok({"command": "user.add", "user": user,
                    "password": user + "-pw"})

    def quota(self, c):
        typ, data = c.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        # imaplib answers [[QUOTAROOT lines], [QUOTA lines]]
        flat = b" ".join(x for d in data
                         for x in (d if isinstance(d, list) else [d])
                         if isinstance(x, bytes))
        m = re.search(rb'\(STORAGE (\d+) (\d+)\)', flat)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def test_imap_quota(self):
        self.add_user("alice")
        c = self.imap("alice")
        typ, caps = c.capability()
        self.assertIn(b"QUOTA=RES-STORAGE", caps[0])
        self.assertEqual(self.quota(c), (0, 100))
        typ, data = c.getquotaroot("INBOX")
        self.assertIn(b'INBOX ""', data[0][0])
        typ, _ = c.append("INBOX", None, None, message(1, 30 * 1024))
        self.assertEqual(typ, "OK")
        self.assertEqual(self.quota(c), (30, 100))
        typ, data = c._simple_command("GETQUOTA", '""')
        self.assertEqual(typ, "OK")
        # too big: refused before "+", nothing stored
        typ, data = c.append("INBOX", None, None, message(2, 80 * 1024))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        # COPY: 30 KB each; the fourth would pass 100 KB
        c.select("INBOX")
        c.create("Archive")
        for _ in range(2):
            self.assertEqual(c.copy("1", "INBOX")[0], "OK")
        typ, data = c.copy("1", "Archive")
        self.assertEqual(typ, "NO")
        self.assertIn(b"OVERQUOTA", data[0])
        self.assertEqual(self.quota(c), (90, 100))
        # MOVE adds nothing: allowed at 90 %
        typ, data = c._simple_command("MOVE", "1", "Archive")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.quota(c), (90, 100))
        # STATUS DELETED / DELETED-STORAGE (RFC 9208 4.2)
        c.store("1", "+FLAGS", "\\Deleted")
        typ, data = c.status("INBOX", "(DELETED DELETED-STORAGE)")
        self.assertIn(b"DELETED 1 DELETED-STORAGE 30", data[0])
        # the admin raises alice's quota: the big APPEND fits now
        r = self.gw.ctl("user", "quota", "alice", "1M")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("of 1048576 bytes used", r.stdout)
        self.assertEqual(c.append("INBOX", None, None,
                                  message(2, 80 * 1024))[0], "OK")
        self.assertEqual(self.quota(c)[1], 1024)
        # "none": no quota root at all
        self.gw.ctl("user", "quota", "alice", "none")
        typ, data = c.getquotaroot("INBOX")
        self.assertIsNone(self.quota(c))
        typ, data = c._simple_command("GETQUOTA", '""')
        self.assertEqual(typ, "NO")
        # back to the default: 170 KB used of 100: new mail is refused,
        # reading and expunging work
        r = self.gw.ctl("--json", "user", "quota", "alice", "default")
        self.assertFalse(json.loads(r.stdout)["own"])
        typ, data = c.append("INBOX", None, None, message(3, 2048))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        self.assertEqual(c.expunge()[0], "OK")
        self.assertEqual(c.fetch("1", "(RFC822.SIZE)")[0], "OK")
        typ, data = c._simple_command("SETQUOTA", '""', "(STORAGE 5)")
        self.assertEqual(typ, "NO")
        c.logout()
        # store use in status, text and JSON
        st = self.gw.ok({"command": "status"})["store"]
        self.assertGreater(st["used_bytes"], 0)
        self.assertGreaterEqual(st["map_size"], st["used_bytes"])
        self.assertGreater(st["disk_free_bytes"], 0)
        out = self.gw.ctl("status").stdout
        self.assertIn("store:", out)
        self.assertIn("free on disk", out)

    def test_upstream_over_quota(self):
        """bob: 100 KB of quota, 10 messages of 20 KB upstream in delete
        mode. What fits is stored, the account shows over-quota, nothing
        is deleted upstream; with room it resumes, each message once."""
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("bob", "pop-pw")
        self.dc.add_messages("bob", [make_message(i, 20000)
                                     for i in range(10)])
        self.dc.start()
        self.add_user("bob")
        self.gw.ok({"command": "account.add", "user": "bob",
                    "account": "old", "host": "127.0.0.1",
                    "port": self.dc.port, "tls": "stls", "login": "bob",
                    "password": "pop-pw", "mode": "delete"})
        self.gw.ok({"command": "poll", "user": "bob", "account": "old"})
        st = self.wait_state("bob", "over-quota")
        self.assertIn("over quota", st["last_error"])
        self.assertEqual(self.dc.count("bob"), 10)
        c = self.imap("bob")
        n = int(c.select("INBOX")[1][0])
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n * 20000, 100 * 1024)
        used, limit = self.quota(c)
        self.assertLessEqual(used, limit)
        c.logout()
        out = self.gw.ctl("status", "bob").stdout
        self.assertIn("over-quota", out)
        # room again: the rest comes, nothing twice, all deleted upstream
        self.gw.ctl("user", "quota", "bob", "none")
        self.gw.ok({"command": "poll", "user": "bob", "account": "old"})
        self.wait_state("bob", "idle", success=True)
        deadline = time.monotonic() + 60
        while self.dc.count("bob") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.dc.count("bob"), 0)
        c = self.imap("bob")
        self.assertEqual(int(c.select("INBOX")[1][0]), 10)
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = [d[1].strip() for d in data if isinstance(d, tuple)]
        self.assertEqual(len(set(ids)), 10)
        c.logout()

    def wait_state(self, user, state, success=False, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.gw.ok({"command": "status", "user": user})
            s = st["accounts"][0]["status"]
            if s["state"] == state and (not success or
                                        s.get("last_error") in (None, "")):
                return s
            time.sleep(0.2)
        self.fail("state %s not reached: %s\n%s"
                  % (state, s, self.gw.output()[-3000:]))


if __name__ == "__main__":
    unittest.main()
