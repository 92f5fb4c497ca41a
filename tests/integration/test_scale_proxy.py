"""Issue 17, PROXY protocol: a listener behind a proxy ([imap]
proxy_listen) takes v1 and v2 headers from the trusted proxies only, and
the client each carries is the session's address: per-address limits and
the failed-login table count clients, not the proxy, and the logs name
them. Clients are distinct 127.0.0.x addresses; the proxy is the test
itself on 127.0.0.1, speaking the protocol with raw sockets. Untrusted
peers and bad, slow or oversized headers are refused; a PROXY header on an
ordinary listener gets a BYE."""
import os
import re
import socket
import struct
import time
import unittest

from imapd import RawClient
from pgtest import TestCA, free_port, tempdir
from pgtest.gateway import Gateway

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client, port=40000):
    return ("PROXY TCP4 %s 127.0.0.1 %d 143\r\n" % (client, port)).encode()


def v2(client, port=40000, tlv=b""):
    body = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + \
        struct.pack("!HH", port, 143) + tlv
    return V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


class ProxyProtocolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.proxy_port = free_port()
        self.gw = Gateway(
            os.path.join(self.tmp, "gw"), self.ca,
            sections={"imap": "proxy_listen = 127.0.0.1:%d\n"
                              "proxy_trusted = 127.0.0.1, 127.0.0.64/30\n"
                              % self.proxy_port,
                      "limits": "imap_connections_per_ip = 3\n"
                                "imap_preauth_per_ip = 3\n"})
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "alice-pw"})
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.gw.stop()

    def raw(self, src="127.0.0.1", port=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(30)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port or self.proxy_port))
        self.socks.append(s)
        return s

    def proxied(self, header, src="127.0.0.1"):
        s = self.raw(src)
        s.sendall(header)
        return RawClient(s)

    @staticmethod
    def closed(s):
        """True when the peer closed (unread bytes make it a reset)."""
        try:
            return s.recv(100) == b""
        except ConnectionResetError:
            return True

    def wait_log(self, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.gw.output())
            if m:
                return m
            time.sleep(0.05)
        self.fail("no log line %r" % pattern)

    def test_v1_v2_per_client_limits(self):
        # three clients' worth of sessions through one proxy address:
        # each client gets its own 3, more than the proxy's own cap
        held = []
        for client, make in (("127.0.0.21", v1), ("127.0.0.22", v2)):
            for i in range(3):
                r = self.proxied(make(client, 40000 + i))
                line = r.readline()
                self.assertTrue(line.startswith(b"* OK"), (client, line))
                held.append(r)
            # the fourth of the same client is refused, by its address
            r = self.proxied(make(client, 40100))
            self.assertEqual(r.readline(), b"* BYE Too many connections\r\n")
            self.wait_log(r"event=refused addr=%s:40100 "
                          r"reason=per_ip_(preauth_)?limit" % client)
        # a sixth and seventh session from the proxy's address: another
        # client, still admitted
        r = self.proxied(v1("127.0.0.23"))
        self.assertTrue(r.readline().startswith(b"* OK"))
        # the logs name the clients, and which proxy carried them
        out = self.gw.output()
        self.assertRegex(out, r"event=connect addr=127\.0\.0\.21:40000 ")
        self.assertRegex(out, r"event=connect addr=127\.0\.0\.22:40002 ")
        self.assertRegex(out, r"event=proxied proxy=127\.0\.0\.1:\d+ "
                              r"version=2 client=127\.0\.0\.22:4000[0-2]")
        # a logged-in session through the proxy works as any other; the
        # proxy is on loopback, so LOGIN without TLS is allowed
        a = held[0]
        self.assertTrue(a.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))
        self.assertTrue(a.cmd("s", "SELECT INBOX")[-1].startswith(b"s OK"))

    def test_failed_logins_counted_per_client(self):
        # failures of one client are its own: the table names it, and
        # another client behind the same proxy starts from nothing
        r = self.proxied(v2("127.0.0.31"))
        self.assertTrue(r.readline().startswith(b"* OK"))
        for i in range(2):
            self.assertTrue(r.cmd("f%d" % i, "LOGIN alice wrong")[-1]
                            .startswith(b"f%d NO" % i))
        self.wait_log(r"event=login_failed ip=127\.0\.0\.31 port=40000 "
                      r'user="alice" reason=bad_credentials failures=2 '
                      r"addr_failures=2")
        other = self.proxied(v1("127.0.0.32"))
        self.assertTrue(other.readline().startswith(b"* OK"))
        self.assertTrue(other.cmd("g", "LOGIN alice wrong")[-1]
                        .startswith(b"g NO"))
        self.wait_log(r"event=login_failed ip=127\.0\.0\.32 port=40000 "
                      r'user="alice" reason=bad_credentials failures=1 '
                      r"addr_failures=1")
        self.assertNotIn("ip=127.0.0.1 ", self.gw.output())

    def test_header_and_bytes_in_one_packet(self):
        # what follows the header in the same segment is the session's;
        # a TLV after the v2 addresses is skipped; a trusted network
        # (127.0.0.64/30) is matched by prefix
        r = self.proxied(v2("127.0.0.41", tlv=b"\x04\x00\x02hi") +
                         b"n NOOP\r\n", src="127.0.0.65")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.read_until_tag("n")[-1].startswith(b"n OK"))
        # v1 UNKNOWN and v2 LOCAL (health checks): the proxy's own address
        for hdr in (b"PROXY UNKNOWN\r\n",
                    V2_SIG + b"\x20\x00\x00\x00"):
            r = self.proxied(hdr, src="127.0.0.66")
            self.assertTrue(r.readline().startswith(b"* OK"))
        self.wait_log(r"event=proxied proxy=127\.0\.0\.66:\d+ version=2 "
                      r"client=-\n")

    def test_refused(self):
        # an untrusted peer on the PROXY listener: closed, no greeting
        s = self.raw("127.0.0.2")
        s.sendall(v1("127.0.0.99"))
        self.assertTrue(self.closed(s))
        self.wait_log(r"event=proxy_refused proxy=127\.0\.0\.2:\d+ "
                      r"reason=not_trusted")
        # bad headers from a trusted one: closed, with the reason logged
        for hdr, why in ((b"a LOGIN alice alice-pw\r\n", "not a PROXY"),
                         (b"PROXY TCP4 127.0.0.999 127.0.0.1 1 2\r\n",
                          "bad address"),
                         (b"PROXY TCP4 " + b"x" * 200, "too long"),
                         (V2_SIG + b"\x21\x11\xff\xff", "too long"),
                         (V2_SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12,
                          "not TCP")):
            s = self.raw()
            s.sendall(hdr)
            self.assertTrue(self.closed(s), hdr)
            self.wait_log(r"event=proxy_refused proxy=127\.0\.0\.1:\d+ "
                          r"reason=\"[^\"]*%s" % why)
        # a trusted proxy that sends nothing, or half a header, is cut
        # after the header time (5 s; the bound is generous)
        for part in (b"", b"PROXY TCP4 127.0.0.5"):
            s = self.raw()
            s.sendall(part)
            t0 = time.monotonic()
            self.assertTrue(self.closed(s))
            self.assertLess(time.monotonic() - t0, 30)
        self.wait_log(r'reason="no PROXY header in time"')
        # a PROXY header on an ordinary listener: BYE, from any peer
        for hdr in (v1("127.0.0.77"), v2("127.0.0.77")):
            s = self.raw(port=self.gw.imap_port)
            r = RawClient(s)
            self.assertTrue(r.readline().startswith(b"* OK"))
            s.sendall(hdr)
            self.assertEqual(r.readline(),
                             b"* BYE PROXY protocol header not accepted "
                             b"here\r\n")
            self.assertTrue(r.closed())
        self.wait_log(r"reason=not_a_proxy_listener")
        # the daemon still serves
        r = self.proxied(v1("127.0.0.78"))
        self.assertTrue(r.readline().startswith(b"* OK"))

    def test_config_checks(self):
        import subprocess
        from pgtest.gateway import popgated
        for body, why in (("proxy_listen = 127.0.0.1:%d\n" % free_port(),
                           "proxy_trusted"),
                          ("proxy_trusted = 10.0.0.0/33\n", "prefix"),
                          ("proxy_trusted = example.org\n", "address")):
            gw = Gateway(os.path.join(self.tmp, "bad%d" % len(body)),
                         self.ca, sections={"imap": body})
            p = subprocess.run([popgated(), "-t", "-c", gw.conf],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, body)
            self.assertIn(why, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
