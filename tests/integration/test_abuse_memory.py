"""Issue 12, memory: popgated under clients that make it buffer. APPEND
messages stream to an unnamed spool file (never whole into memory), every
other literal is small (smaller before login), and a server-wide budget
answers NO [LIMIT] when the parsers of all sessions would hold more. RSS
is read from /proc while the attack runs, and a legitimate client keeps
working meanwhile.

The daemon is the sanitizer build: its allocator keeps freed memory in a
quarantine (256 MB by default), which would count every byte that went
through a buffer, so these tests run it with a small quarantine; what is
measured is then what popgated holds."""
import hashlib
import os
import socket
import ssl
import time
import unittest

from imapd import RawClient, wait_for
from pgtest import TestCA, rss_kb, tempdir
from pgtest.gateway import Gateway

ASAN_SMALL = {"ASAN_OPTIONS":
              "abort_on_error=1:detect_leaks=1:quarantine_size_mb=4"}


def spool_fds(pid):
    """Descriptors of popgated open on spool files now."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if "/spool/" in target:
            n += 1
    return n


class AbuseMemoryTest(unittest.TestCase):
    limits = ("imap_connections_per_user = 200\n"
              "imap_connections_per_ip = 500\n")

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          sections={"limits": self.limits})
        self.gw.start(env=ASAN_SMALL)
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "alice-pw"})
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.shutdown()
        if self.gw.proc is not None:
            self.gw.stop()

    def raw(self, login=True, select=False):
        s = socket.create_connection(("127.0.0.1", self.gw.imap_port),
                                     timeout=30)
        r = RawClient(s)
        self.clients.append(r)
        self.assertTrue(r.readline().startswith(b"* OK"))
        if login:
            out = r.cmd("l", "LOGIN alice alice-pw")
            self.assertTrue(out[-1].startswith(b"l OK"), out)
        if select:
            out = r.cmd("e", "EXAMINE INBOX")
            self.assertTrue(out[-1].startswith(b"e OK"), out)
        return r

    def legit_client_works(self):
        """Log in, APPEND a small message, SELECT, FETCH it back."""
        r = self.raw()
        msg = b"Subject: still here\r\n\r\nhello\r\n"
        r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        out = r.read_until_tag("a")
        self.assertTrue(out[-1].startswith(b"a OK"), out)
        out = r.cmd("s", "SELECT INBOX")
        self.assertTrue(out[-1].startswith(b"s OK"), out)
        out = r.cmd("f", "FETCH * (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertTrue(out[-1].startswith(b"f OK"), out)
        self.assertTrue(any(b"still here" in l for l in out), out)
        r.cmd("z", "LOGOUT")
        r.shutdown()

    def test_unfinished_appends_bounded(self):
        """20 sessions each hold an unfinished 60 MB APPEND after sending
        8 MB of it (160 MB in all): RSS grows by less than 48 MB (before:
        every byte was held, 1.37 GB for 20 x 60 MB). Each partial message
        is one spool file, gone when its client goes."""
        pid = self.gw.proc.pid
        self.legit_client_works()
        base = rss_kb(pid)
        chunk = b"x" * 65536
        attackers = []
        for i in range(20):
            r = self.raw()
            r.send(b"a APPEND INBOX {60000000}\r\n")
            self.assertTrue(r.readline().startswith(b"+"))
            attackers.append(r)
        peak = 0
        for _ in range(128):
            for r in attackers:
                r.send(chunk)
            peak = max(peak, rss_kb(pid))
        self.legit_client_works()
        self.assertEqual(wait_for(lambda: spool_fds(pid) == 20, 30) and 20,
                         spool_fds(pid))
        peak = max(peak, rss_kb(pid))
        grew = peak - base
        print("rss base %d KB, peak %d KB, grew %d KB for 160 MB of "
              "unfinished APPENDs" % (base, peak, grew))
        self.assertLess(grew, 48 * 1024)
        for r in attackers:
            r.shutdown()
        self.assertTrue(wait_for(lambda: spool_fds(pid) == 0, 30))
        self.legit_client_works()

    def test_big_append_stored_intact(self):
        """A 20 MB message through the spool is stored byte for byte; the
        spool file goes with the job."""
        pid = self.gw.proc.pid
        body = b"".join(b"line %07d of a big message\r\n" % i
                        for i in range(700000))
        msg = b"Subject: big\r\n\r\n" + body
        r = self.raw()
        r.send(b"a APPEND INBOX {%d}\r\n" % len(msg))
        self.assertTrue(r.readline().startswith(b"+"))
        r.send(msg + b"\r\n")
        out = r.read_until_tag("a", timeout=120)
        self.assertTrue(out[-1].startswith(b"a OK [APPENDUID"), out)
        self.assertTrue(wait_for(lambda: spool_fds(pid) == 0, 30))
        import imaplib
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=60)
        c.login("alice", "alice-pw")
        c.select("INBOX")
        typ, data = c.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        got = data[0][1]
        self.assertEqual(len(got), len(msg))
        self.assertEqual(hashlib.sha256(got).hexdigest(),
                         hashlib.sha256(msg).hexdigest())
        c.logout()

    def test_other_literals_small(self):
        """SEARCH, SELECT, ID with huge literals: NO [TOOBIG] and no "+";
        before login the limit is smaller still."""
        r = self.raw(select=True)
        for cmd in ("SEARCH TEXT {60000000}", "SELECT {60000000}",
                    "ID ({60000000}", "SEARCH TEXT {65537}"):
            r.send("t %s\r\n" % cmd)
            line = r.readline()
            self.assertTrue(line.startswith(b"t NO [TOOBIG]"), (cmd, line))
        # within the limit it works
        r.send(b"s SEARCH TEXT {5}\r\n")
        self.assertTrue(r.readline().startswith(b"+"))
        r.send(b"hello\r\n")
        out = r.read_until_tag("s")
        self.assertTrue(out[-1].startswith(b"s OK"), out)
        p = self.raw(login=False)
        p.send(b"l LOGIN {9000}\r\n")
        self.assertTrue(p.readline().startswith(b"l NO [TOOBIG]"))
        # a {n+} over the limit before login closes: its bytes would come
        p.send(b"m LOGIN {60000000+}\r\n")
        self.assertTrue(p.closed(timeout=20))
        self.legit_client_works()


class AbuseBudgetTest(AbuseMemoryTest):
    """A 1 MB budget for everything the parsers hold: 40 sessions each
    announcing a 60 KB SEARCH literal and sending most of it; those past
    the budget get NO [LIMIT] (no "+"), RSS stays bounded and the
    legitimate client works."""
    limits = AbuseMemoryTest.limits + "imap_memory_budget = 1M\n"

    def test_budget(self):
        pid = self.gw.proc.pid
        base = rss_kb(pid)
        accepted, refused = [], 0
        for i in range(40):
            r = self.raw(select=True)
            r.send(b"b SEARCH TEXT {60000}\r\n")
            line = r.readline()
            if line.startswith(b"+"):
                r.send(b"y" * 59000)
                accepted.append(r)
            else:
                self.assertTrue(line.startswith(b"b NO [LIMIT]"), line)
                refused += 1
        self.assertGreater(refused, 0)
        self.assertLessEqual(len(accepted) * 60000, 1024 * 1024)
        self.legit_client_works()
        self.assertIn("event=memory_budget_full", self.gw.output())
        grew = rss_kb(pid) - base
        self.assertLess(grew, 24 * 1024)
        # the held ones finish normally
        for r in accepted:
            r.send(b"y" * 1000 + b"\r\n")
            self.assertTrue(r.read_until_tag("b")[-1].startswith(b"b OK"))
        # and the room is back
        r = self.raw(select=True)
        r.send(b"c SEARCH TEXT {60000}\r\n")
        self.assertTrue(r.readline().startswith(b"+"))

    test_unfinished_appends_bounded = None
    test_big_append_stored_intact = None
    test_other_literals_small = None


if __name__ == "__main__":
    unittest.main()
