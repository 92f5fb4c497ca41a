"""Issue 12, connection slots and login guessing, against popgated. Clients
come from several loopback addresses (127.0.0.x) to stand for several
hosts. Pre-auth connections cannot keep a real user out: a per-address
cap on them, the oldest evicted when the server is full (never a
logged-in session), the time to log in counted from connect. Failed
logins are remembered by (user, address), address and user beyond the
connection, delayed more and more, the connection closed after a few,
and every failure logged with user and address in a line the shipped
fail2ban filter reads (checked with the real fail2ban-regex)."""
import os
import re
import socket
import subprocess
import time
import unittest

from imapd import RawClient, wait_for
from pgtest import TestCA, tempdir
from pgtest.gateway import Gateway

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class SlotsTest(unittest.TestCase):
    limits = ("imap_connections = 30\n"
              "imap_preauth_per_ip = 10\n"
              "imap_preauth_timeout = 5s\n"
              "imap_connections_per_user = 6\n")

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          sections={"limits": self.limits})
        self.gw.start()
        for u in ("alice", "bob"):
            self.gw.ok({"command": "user.add", "user": u,
                        "password": u + "-pw"})
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.shutdown()
        if self.gw.proc is not None:
            self.gw.stop()

    def connect(self, src="127.0.0.1", greet=True):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(30)
        s.bind((src, 0))
        s.connect(("127.0.0.1", self.gw.imap_port))
        r = RawClient(s)
        self.clients.append(r)
        if greet:
            line = r.readline()
            self.assertTrue(line.startswith(b"* OK"), line)
        return r

    def login(self, r, user="alice", pw=None, tag="l"):
        return r.cmd(tag, "LOGIN %s %s" % (user, pw or user + "-pw"))[-1]

    def test_preauth_cap_and_eviction(self):
        # per address: the 11th pre-auth connection from one address is
        # refused, while another address still gets in
        held = [self.connect("127.0.0.2") for _ in range(10)]
        r = self.connect("127.0.0.2", greet=False)
        self.assertTrue(r.readline().startswith(b"* BYE"))
        self.assertIn("reason=per_ip_preauth_limit", self.gw.output())
        # logged-in sessions do not count as pre-auth
        authed = []
        for _ in range(5):
            a = self.connect("127.0.0.1")
            self.assertTrue(self.login(a).startswith(b"l OK"))
            authed.append(a)
        held += [self.connect("127.0.0.3") for _ in range(10)]
        held += [self.connect("127.0.0.4") for _ in range(5)]
        # 30 of 30: a newcomer evicts the oldest pre-auth connection
        newcomer = self.connect("127.0.0.9")
        self.assertTrue(held[0].closed(timeout=20))
        self.assertIn("event=evicted", self.gw.output())
        self.assertTrue(self.login(newcomer).startswith(b"l OK"))
        for a in authed:
            self.assertTrue(a.cmd("n", "NOOP")[-1].startswith(b"n OK"))
        # only the oldest went: the next ones are still there
        for i in range(5):
            self.assertTrue(held[1 + i].cmd("n", "NOOP")[-1]
                            .startswith(b"n OK"))

    def test_preauth_timeout_from_connect(self):
        """A NOOP every second does not keep a session that never logs in:
        it is closed once the 5 s from connect are over."""
        r = self.connect()
        start = time.monotonic()
        oks = 0
        closed = False
        while time.monotonic() - start < 60:
            r.send("n NOOP\r\n")
            out = r.read_until_tag("n", timeout=5)
            if not out or not out[-1].startswith(b"n OK"):
                closed = True
                break
            oks += 1
            time.sleep(1)
        self.assertTrue(closed)
        self.assertGreaterEqual(oks, 3)
        self.assertIn("state=preauth", self.gw.output())
        # a logged-in session is not subject to it
        a = self.connect()
        self.assertTrue(self.login(a).startswith(b"l OK"))
        time.sleep(6)
        self.assertTrue(a.cmd("n", "NOOP")[-1].startswith(b"n OK"))

    def test_per_user_cap_configured(self):
        for i in range(6):
            a = self.connect("127.0.0.%d" % (10 + i))
            self.assertTrue(self.login(a).startswith(b"l OK"))
        a = self.connect("127.0.0.20")
        self.assertTrue(self.login(a).startswith(b"l NO [LIMIT]"))
        b = self.connect("127.0.0.20")
        self.assertTrue(self.login(b, "bob").startswith(b"l OK"))


class ThrottleTest(SlotsTest):
    limits = "login_failures_per_connection = 3\n"

    test_preauth_cap_and_eviction = None
    test_preauth_timeout_from_connect = None
    test_per_user_cap_configured = None

    def test_close_after_failures(self):
        r = self.connect("127.0.0.2")
        for i in range(3):
            self.assertTrue(self.login(r, "bob", "bad%d" % i, tag="f%d" % i)
                            .startswith(b"f%d NO [AUTHENTICATIONFAILED]" % i))
        self.assertTrue(r.closed(timeout=30))
        self.assertIn(b"BYE Too many failed logins", r.buf)

    def test_one_connection_per_guess(self):
        """The table outlives connections: each guess on a new connection
        waits longer (0, .25, .5, 1, 2, 4 s before the check); the owner
        from another address gets in, so does another user."""
        took = []
        for i in range(6):
            r = self.connect("127.0.0.5")
            t0 = time.monotonic()
            self.assertTrue(self.login(r, "bob", "guess%d" % i)
                            .startswith(b"l NO [AUTHENTICATIONFAILED]"))
            took.append(time.monotonic() - t0)
            r.shutdown()
        log = self.gw.output()
        self.assertIn('event=login_failed ip=127.0.0.5 port=', log)
        self.assertIn('user="bob" reason=bad_credentials failures=6 ', log)
        # the delays are minimums set by timers: a slow machine only
        # makes them longer
        self.assertGreaterEqual(took[5], 4.0)
        self.assertGreaterEqual(took[4], 2.0)
        # bob from elsewhere and alice from the guesser's address: in
        b = self.connect("127.0.0.7")
        self.assertTrue(self.login(b, "bob").startswith(b"l OK"))
        a = self.connect("127.0.0.5")
        self.assertTrue(self.login(a, "alice").startswith(b"l OK"))
        # the shipped filter finds the guesser's address, and only it
        out = subprocess.run(
            ["fail2ban-regex", "-v", self.gw.log,
             os.path.join(ROOT, "deploy", "fail2ban", "popgate.conf")],
            capture_output=True, text=True, timeout=120).stdout
        hosts = set(re.findall(r"^\|\s+(\d+\.\d+\.\d+\.\d+)\s", out, re.M))
        self.assertEqual(hosts, {"127.0.0.5"}, out[-3000:])
        m = re.search(r"Failregex: (\d+) total", out)
        self.assertEqual(int(m.group(1)), 6, out[-3000:])

    def test_user_name_cannot_forge_address(self):
        r = self.connect("127.0.0.6")
        r.send(b'l LOGIN "x ip=10.9.9.9 port=1 user=\\"y" wrong\r\n')
        self.assertTrue(r.read_until_tag("l")[-1].startswith(b"l NO"))
        out = subprocess.run(
            ["fail2ban-regex", "-v", self.gw.log,
             os.path.join(ROOT, "deploy", "fail2ban", "popgate.conf")],
            capture_output=True, text=True, timeout=120).stdout
        hosts = set(re.findall(r"^\|\s+(\d+\.\d+\.\d+\.\d+)\s", out, re.M))
        self.assertEqual(hosts, {"127.0.0.6"}, out[-3000:])


if __name__ == "__main__":
    unittest.main()
