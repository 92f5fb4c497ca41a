"""Bad input against the real server, with tiny limits: every limit gets
BAD/NO (or BYE for a runaway) and the server stays healthy; STARTTLS
injection; back-pressure; caps; timeouts; LOGINDISABLED; BYE on shutdown."""
import os
import re
import signal
import socket
import ssl
import time

from imapd import ImapTestCase, USER, PASSWORD, wait_for
from pgtest import rss_kb

LIMITS = ("--max-line", "2048", "--max-literal-preauth", "1024",
          "--max-literal", "65536", "--max-append", "65536", "--max-bad", "5",
          "--high-water", "65536")


class ImapAbuseTest(ImapTestCase):
    server_args = LIMITS

    def healthy(self):
        r = self.raw()
        lines = r.cmd("h", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"h OK"), lines)
        r.shutdown()

    def test_long_line(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        lines = r.cmd("a", "NOOP " + "x" * 2100)
        self.assertTrue(lines[-1].startswith(b"a BAD"), lines)
        self.assertTrue(r.cmd("b", "NOOP")[-1].startswith(b"b OK"))
        # an endless line without CRLF is a runaway: BYE and close
        r.send(b"c NOOP " + b"y" * 300000)
        self.assertTrue(r.closed(timeout=20))
        self.healthy()

    def test_literal_limits(self):
        r = self.raw()
        r.send("a LOGIN {5000}\r\n")
        line = r.readline()
        self.assertTrue(line.startswith(b"a NO [TOOBIG]"), line)
        # literal bytes never sent: the next command works
        self.assertTrue(r.cmd("b", "NOOP")[-1].startswith(b"b OK"))
        for bad in ("{18446744073709551616}", "{-1}", "{1x}"):
            lines = r.cmd("c", "LOGIN " + bad)
            self.assertTrue(re.match(rb"(c|\*) (BAD|NO)", lines[-1]), lines)
        # a synchronising literal within the limit gets "+"
        r.send("d LOGIN {5}\r\n")
        self.assertTrue(r.readline().startswith(b"+"))
        r.send("alice {12+}\r\nalice-secret\r\n")
        self.assertTrue(r.read_until_tag("d")[-1].startswith(b"d OK"))
        # after login the limit is larger; {n+} over it closes
        r.send("e APPEND INBOX {100000+}\r\n" + "z" * 1000)
        self.assertTrue(r.closed(timeout=20))
        self.healthy()

    def test_literal_plus_preauth_bomb_closes(self):
        r = self.raw()
        r.send("a LOGIN {999999+}\r\n")
        self.assertTrue(r.closed(timeout=20))
        self.healthy()

    def test_nesting_and_args(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.send(b"a SEARCH " + b"(" * 100000 + b"\r\n")
        # too deep or too long: BAD or BYE, never a crash
        out = r.readline(timeout=20)
        self.assertTrue(out.startswith(b"a BAD") or out.startswith(b"* BAD")
                        or out.startswith(b"* BYE") or out == b"", out)
        self.healthy()
        r2 = self.raw()
        r2.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r2.cmd("s", "SELECT INBOX")
        lines = r2.cmd("b", "SEARCH " + "(" * 40 + "ALL" + ")" * 40)
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        lines = r2.cmd("c", "FETCH 0 FLAGS")
        self.assertTrue(lines[-1].startswith(b"c BAD"), lines)
        lines = r2.cmd("d", "FETCH 4294967296 FLAGS")
        self.assertTrue(lines[-1].startswith(b"d BAD"), lines)
        lines = r2.cmd("e", "UID FETCH 1:4294967295 FLAGS")
        self.assertTrue(lines[-1].startswith(b"e OK"), lines)
        lines = r2.cmd("f", "SEARCH " + " ".join(["ALL"] * 200))
        self.assertTrue(lines[-1].startswith(b"f OK"), lines)
        lines = r2.cmd("g", "FETCH 1 BODY[" + ".".join(["1"] * 200) + "]")
        self.assertTrue(lines[-1].startswith(b"g BAD"), lines)
        lines = r2.cmd("h", "SELECT \"\x01bad\"")
        self.assertTrue(re.match(rb"h (BAD|NO)", lines[-1]), lines)
        self.assertTrue(r2.cmd("i", "NOOP")[-1].startswith(b"i OK"))
        # a hostile LIST pattern against a long name (exponential for a
        # naive matcher) is answered
        r2.cmd("j", "CREATE " + "a" * 300)
        lines = r2.cmd("k", 'LIST "" "' + "*a" * 60 + 'b"')
        self.assertEqual(lines, [b"k OK LIST completed\r\n"])

    def test_thousands_of_small_literals(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("s", "SELECT INBOX")
        lines = r.cmd("a", "SEARCH " + "TEXT {1+}\r\nx " * 5000 + "ALL")
        self.assertTrue(re.match(rb"(a|\*) BAD", lines[-1]), lines[-1])
        lines = r.cmd("b", "SEARCH " + "TEXT {1+}\r\nx " * 100 + "ALL")
        self.assertTrue(lines[-1].startswith(b"b OK"), lines)

    def test_http_request_and_bogus_commands(self):
        r = self.raw()
        r.send("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\nAccept: */*\r\n"
               "\r\n")
        self.assertTrue(r.closed(timeout=20))
        r2 = self.raw()
        # one write: the server closes after the 5th, and bytes sent after
        # its close would only draw a reset
        r2.send(b"".join(b"t%d BOGUS\r\n" % i for i in range(10)))
        self.assertTrue(r2.closed(timeout=20))
        self.assertIn(b"* BYE Too many invalid commands", r2.buf)
        self.assertEqual(r2.buf.count(b" BAD "), 5)
        self.healthy()

    def test_nul_bare_lf_8bit(self):
        r = self.raw()
        for bad in (b"a NO\x00OP\r\n", b"b NOOP\n", b"c N\xc3\xa9OP\r\n",
                    b"d LOGIN \"x\\\r\n"):
            r.send(bad)
            out = r.readline()
            self.assertTrue(re.match(rb"(a|b|c|d|\*) BAD", out), (bad, out))
        self.assertTrue(r.cmd("e", "NOOP")[-1].startswith(b"e OK"))

    def test_starttls_injection(self):
        s = socket.create_connection(("127.0.0.1", self.srv.plain_port))
        s.settimeout(20)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        line = f.readline()
        self.assertTrue(line.startswith(b"a OK"), line)
        t = self.srv.ssl_ctx.wrap_socket(s, server_hostname="localhost")
        t.settimeout(20)
        t.sendall(b"c NOOP\r\n")
        data = b""
        while b"c OK" not in data:
            d = t.recv(4096)
            if not d:
                break
            data += d
        self.assertIn(b"c OK", data)
        self.assertNotIn(b"b OK", data)
        self.assertNotIn(b"CAPABILITY", data)
        t.close()
        self.assertIn("starttls_injection", self.srv.log())

    def test_tls_versions(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca.ca_crt)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port))
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            t = ctx.wrap_socket(s, server_hostname="localhost")
            t.recv(100)
        s.close()
        self.healthy()

    def test_backpressure_client_that_never_reads(self):
        a = self.tls()
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 60
        for _ in range(1):
            a.append("INBOX", None, None, big)   # ~60 KB (under the limit)
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("s", "SELECT INBOX")
        before = rss_kb(self.srv.proc.pid)
        n = 1500    # 90 MB of responses if the server buffered them
        r.send(b"".join(b"f%d FETCH 1 BODY.PEEK[]\r\n" % i for i in range(n)))
        time.sleep(2)
        grown = rss_kb(self.srv.proc.pid) - before
        self.assertLess(grown, 40 * 1024, "server RSS grew %d KB" % grown)
        # another client is served meanwhile
        self.healthy()
        # and everything arrives once the client reads
        marker = b" OK FETCH completed\r\n"
        got, tail = 0, r.buf
        r.sock.settimeout(30)
        while got < n:
            d = r.sock.recv(1 << 20)
            if not d:
                break
            data = tail + d
            got += data.count(marker)
            tail = data[-(len(marker) - 1):]
        self.assertEqual(got, n)


class ImapCapsTest(ImapTestCase):
    server_args = ("--max-per-ip", "3", "--preauth-timeout", "1",
                   "--max-per-user", "2")

    def test_per_ip_cap(self):
        rs = [self.raw() for _ in range(3)]
        s = socket.create_connection(("127.0.0.1", self.srv.plain_port))
        s.settimeout(10)
        data = s.recv(1000)
        self.assertTrue(data.startswith(b"* BYE"), data)
        s.close()
        for r in rs:
            r.shutdown()

    def test_stalled_tls_handshake_times_out(self):
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port))
        s.settimeout(20)
        self.assertEqual(s.recv(100), b"")     # closed, nothing sent
        s.close()

    def test_preauth_timeout_and_per_user_cap(self):
        r = self.raw()
        self.assertTrue(r.closed(timeout=20))
        self.assertIn(b"* BYE", r.buf)
        a = self.tls()
        b = self.tls()
        c = self.tls(login=False)
        with self.assertRaises(Exception) as cm:
            c.login(USER, PASSWORD)
        self.assertIn("LIMIT", str(cm.exception))
        a.logout()
        b.logout()


class ImapLoginDisabledTest(ImapTestCase):
    server_args = ("--no-loopback-secure",)

    def test_logindisabled_until_tls(self):
        c = self.plain(login=False)
        self.assertIn("LOGINDISABLED", c.capabilities)
        self.assertNotIn("AUTH=PLAIN", c.capabilities)
        self.assertIn("STARTTLS", c.capabilities)
        with self.assertRaises(Exception):
            c.login(USER, PASSWORD)
        r = self.raw()
        lines = r.cmd("a", "AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==")
        self.assertTrue(lines[-1].startswith(b"a NO"), lines)
        d = self.starttls(login=False)
        typ, data = d.capability()
        self.assertIn(b"AUTH=PLAIN", data[0])
        self.assertNotIn(b"LOGINDISABLED", data[0])
        self.assertEqual(d.login(USER, PASSWORD)[0], "OK")


class ImapShutdownTest(ImapTestCase):
    def test_bye_on_shutdown(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("s", "SELECT INBOX")
        r.send("i IDLE\r\n")
        r.readline()
        t = self.raw(tls=True)
        os.kill(self.srv.proc.pid, signal.SIGTERM)
        self.assertTrue(r.closed(timeout=20))
        self.assertIn(b"* BYE", r.buf)
        self.assertTrue(t.closed(timeout=20))
        self.assertIn(b"* BYE", t.buf)
        self.srv.proc.p.wait(20)
        self.assertEqual(self.srv.proc.p.returncode, 0)

    def tearDown(self):
        for c in self.clients:
            c.shutdown()
        text = self.srv.log()
        rc = self.srv.proc.stop()
        self.assertEqual(rc, 0, text[-2000:])
        self.assertIsNone(__import__("pgtest").sanitizer_report(text))
