"""Issue 17, IDLE keep-alive: while a client IDLEs, popgated sends an
untagged "* OK Still here" every [imap] idle_keepalive, so that a proxy or
a NAT with a shorter idle timeout does not cut the connection; the lines
stop when IDLE ends, and mail arriving meanwhile is still pushed."""
import os
import socket
import subprocess
import time
import unittest

from imapd import RawClient
from pgtest import TestCA, tempdir
from pgtest.gateway import Gateway, popgated


class KeepaliveTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          sections={"imap": "idle_keepalive = 1s\n"})
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "alice-pw"})
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.sock.close()
        self.gw.stop()

    def client(self):
        s = socket.create_connection(("127.0.0.1", self.gw.imap_port),
                                     timeout=30)
        r = RawClient(s)
        self.clients.append(r)
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))
        return r

    def test_keepalive_during_idle_only(self):
        r = self.client()
        self.assertTrue(r.cmd("s", "SELECT INBOX")[-1].startswith(b"s OK"))
        r.send("i IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        # several keep-alives come, each an untagged OK with that text
        # (the interval is 1 s; the bound is generous for a loaded box)
        got = []
        deadline = time.monotonic() + 60
        while len(got) < 3 and time.monotonic() < deadline:
            got.append(r.readline(timeout=30))
        self.assertEqual(got, [b"* OK Still here\r\n"] * 3)
        # mail pushed during IDLE still arrives between keep-alives
        other = self.client()
        self.assertTrue(other.cmd(
            "a", "APPEND INBOX {5+}\r\nHello")[-1].startswith(b"a OK"))
        seen = []
        while b"* 1 EXISTS\r\n" not in seen:
            line = r.readline(timeout=30)
            self.assertTrue(line, "connection closed during IDLE")
            seen.append(line)
        self.assertTrue(all(x in (b"* OK Still here\r\n", b"* 1 EXISTS\r\n",
                                  b"* 1 RECENT\r\n") for x in seen), seen)
        r.send("DONE\r\n")
        lines = r.read_until_tag("i")
        self.assertTrue(lines[-1].startswith(b"i OK"), lines)
        # after IDLE: no keep-alive comes any more (NOOP answers only
        # itself after 3 intervals of silence)
        time.sleep(3.5)
        lines = r.cmd("n", "NOOP")
        self.assertEqual([x for x in lines if b"Still here" in x], [])
        self.assertTrue(lines[-1].startswith(b"n OK"), lines)
        # a second IDLE starts the keep-alive again
        r.send("j IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        self.assertEqual(r.readline(timeout=30), b"* OK Still here\r\n")
        r.send("DONE\r\n")
        self.assertTrue(r.read_until_tag("j")[-1].startswith(b"j OK"))

    def test_config_bounds(self):
        # 0 and more than 30 minutes are refused at start-up
        for bad in ("0", "31m"):
            gw = Gateway(os.path.join(self.tmp, "bad" + bad), self.ca,
                         sections={"imap": "idle_keepalive = %s\n" % bad})
            p = subprocess.run([popgated(), "-t", "-c", gw.conf],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn("idle_keepalive", p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
