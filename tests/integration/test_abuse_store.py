"""Issue 12, a full store, against popgated with a real Dovecot upstream:
the LMDB map grows by itself while the disk has room (a 1 MB map takes a
12 MB import, every message stored once, `popgatectl status` shows the
growth); with the growth capped (map_max), a batch that does not fit is
retried message by message, so as much as fits is stored, the account
stops with a store error, nothing is deleted upstream for what was not
stored, and status warns that the store is near full."""
import imaplib
import os
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway


class StoreFullTest(unittest.TestCase):
    store_extra = "map_size = 1M\n"

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          sections={"upstream-defaults": "interval = 3600\n"})
        with open(self.gw.conf) as f:
            conf = f.read()
        # the test configuration's map_size is replaced
        conf = conf.replace("map_size = 256M\n", self.store_extra)
        with open(self.gw.conf, "w") as f:
            f.write(conf)
        self.gw.start()
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("carol", "pop-pw")
        self.raws = [make_message(i, 150000) for i in range(80)]
        self.dc.add_messages("carol", self.raws)
        self.dc.start()
        self.gw.ok({"command": "user.add", "user": "carol",
                    "password": "carol-pw"})
        self.gw.ok({"command": "account.add", "user": "carol",
                    "account": "old", "host": "127.0.0.1",
                    "port": self.dc.port, "tls": "stls", "login": "carol",
                    "password": "pop-pw", "mode": "delete"})

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    def wait_done(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.gw.ok({"command": "status", "user": "carol"})
            s = st["accounts"][0]["status"]
            if s["state"] not in ("polling", "queued") and \
                    (s.get("last_success") or s.get("last_error")):
                return st
            time.sleep(0.2)
        self.fail("poll did not end: %s" % st)

    def stored(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("carol", "carol-pw")
        n = int(c.select("INBOX")[1][0])
        ids = []
        if n:
            typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS "
                                "(MESSAGE-ID)])")
            ids = [d[1].strip() for d in data if isinstance(d, tuple)]
        c.logout()
        return ids

    def test_map_grows(self):
        self.gw.ok({"command": "poll", "user": "carol", "account": "old"})
        st = self.wait_done()
        s = st["accounts"][0]["status"]
        self.assertFalse(s.get("last_error"), s)
        ids = self.stored()
        self.assertEqual(len(ids), 80)
        self.assertEqual(len(set(ids)), 80)
        self.assertGreaterEqual(st["store"]["map_grows"], 1)
        self.assertGreater(st["store"]["map_size"], 12 * 1024 * 1024)
        deadline = time.monotonic() + 30
        while self.dc.count("carol") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.dc.count("carol"), 0)
        self.assertIn("event=map-grown", self.gw.output())


class StoreCappedTest(StoreFullTest):
    store_extra = "map_size = 1M\nmap_max = 6M\n"
    test_map_grows = None

    def test_full_stores_what_fits(self):
        self.gw.ok({"command": "poll", "user": "carol", "account": "old"})
        st = self.wait_done()
        s = st["accounts"][0]["status"]
        self.assertEqual(s["state"], "store-error", s)
        self.assertTrue(s.get("last_error"))
        ids = self.stored()
        # as much as fits: more than nothing (the batch was not lost
        # whole), less than all
        self.assertGreater(len(ids), 0)
        self.assertLess(len(ids), 80)
        self.assertEqual(len(set(ids)), len(ids))
        # nothing was deleted upstream that is not stored
        upstream = self.dc.count("carol")
        self.assertGreaterEqual(upstream, 80 - len(ids))
        self.assertTrue(st["store"]["near_full"])
        out = self.gw.ctl("status").stdout
        self.assertIn("WARNING: store near full", out)
        # reading still works, and an IMAP APPEND gets a clear NO
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("carol", "carol-pw")
        typ, data = c.append("INBOX", None, None,
                             b"Subject: x\r\n\r\n" + b"y" * 3000000)
        self.assertEqual(typ, "NO")
        c.logout()


if __name__ == "__main__":
    unittest.main()
