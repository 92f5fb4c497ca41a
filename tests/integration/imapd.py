"""Shared set-up for the IMAP integration tests: start tests/tools/imapd_test
on free loopback ports with a test CA certificate, connect imaplib clients,
and check after each test that the server is alive, exits cleanly on
SIGTERM and logged no sanitizer report or unexpected error."""
import imaplib
import os
import re
import socket
import ssl
import time
import unittest
import zlib

import pgtest
from pgtest import imapgrammar

# imaplib does not know these extension commands by name.
for _name in ("ID", "ENABLE", "MOVE", "UNSELECT", "IDLE", "NAMESPACE"):
    imaplib.Commands.setdefault(_name, ("NONAUTH", "AUTH", "SELECTED"))

USER = "alice"
PASSWORD = "alice-secret"


class Server:
    def __init__(self, tmp, ca, args=(), users=((USER, PASSWORD),),
                 generate=None, eml=None):
        self.tmp = tmp
        self.dir = os.path.join(tmp, "store")
        os.makedirs(self.dir, exist_ok=True)
        self.cert, self.key = ca.cert("imapd")
        self.plain_port = pgtest.free_port()
        self.tls_port = pgtest.free_port()
        self.log_path = os.path.join(tmp, "imapd.log")
        argv = [os.path.join(pgtest.BUILD, "tests", "tools", "imapd_test"),
                "--dir", self.dir, "--cert", self.cert, "--key", self.key,
                "--plain", "127.0.0.1:%d" % self.plain_port,
                "--tls", "127.0.0.1:%d" % self.tls_port, "--fast-hash"]
        for u, p in users:
            argv += ["--user", "%s:%s" % (u, p)]
        if generate:
            argv += ["--generate", "%s:%d" % generate]
        if eml:
            argv += ["--eml", "%s:%s" % eml]
        # every byte the server sends goes to a trace that tearDown checks
        # against the IMAP response grammar (pgtest/imapgrammar.py)
        self.rawlog = os.path.join(tmp, "rawlog")
        argv += ["--rawlog", self.rawlog]
        argv += list(args)
        self.proc = pgtest.Proc(argv, log_path=self.log_path)
        pgtest.wait_port(self.plain_port, timeout=60)
        pgtest.wait_port(self.tls_port, timeout=60)
        self.ssl_ctx = ssl.create_default_context(cafile=ca.ca_crt)

    def log(self):
        return self.proc.output()

    def stop(self, expected_errors=()):
        """Stops the server by PID; returns (exit code, log)."""
        alive = self.proc.alive()
        rc = self.proc.stop()
        text = self.log()
        return alive, rc, text


class ImapTestCase(unittest.TestCase):
    """Starts one server per test; checks it in tearDown."""

    server_args = ()
    users = ((USER, PASSWORD),)
    generate = None
    # log lines matching these are expected by the test (e.g. refusals)
    allowed_errors = ()
    # output lines of imapd_test that are not log lines
    log_skip = ("ready plain=", "imapd_test: ")

    @classmethod
    def setUpClass(cls):
        cls.tmp_root = pgtest.tempdir("popgate-imap-")
        cls.ca = pgtest.TestCA(cls.tmp_root)

    def setUp(self):
        self.tmp = pgtest.tempdir("popgate-imap-t-")
        self.srv = Server(self.tmp, self.ca, self.server_args, self.users,
                          self.generate)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            try:
                c.shutdown()
            except Exception:
                pass
        alive, rc, text = self.srv.stop()
        rep = pgtest.sanitizer_report(text)
        self.assertIsNone(rep, rep)
        self.assertTrue(alive, "server died during the test:\n" + text[-3000:])
        self.assertEqual(rc, 0, "server exit status %r:\n%s" % (rc, text[-3000:]))
        bad = pgtest.logfmt_problems(text, skip=self.log_skip)
        self.assertEqual(bad, [], "log lines not key=value")
        for line in text.splitlines():
            if " level=error " in line:
                if not any(re.search(p, line) for p in self.allowed_errors):
                    self.fail("unexpected error in server log: " + line)
        # a malformed response anywhere fails the test that caused it
        imapgrammar.check_dir(self.srv.rawlog)

    def assertBad(self, fn, status="BAD"):
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            fn()
        self.assertIn(status, str(cm.exception))

    # ---- clients ----

    def plain(self, login=True):
        c = imaplib.IMAP4("127.0.0.1", self.srv.plain_port, timeout=30)
        self.clients.append(c)
        if login:
            c.login(USER, PASSWORD)
        return c

    def starttls(self, login=True):
        c = imaplib.IMAP4("127.0.0.1", self.srv.plain_port, timeout=30)
        self.clients.append(c)
        c.starttls(ssl_context=self.srv.ssl_ctx)
        if login:
            c.login(USER, PASSWORD)
        return c

    def tls(self, login=True, user=USER, password=PASSWORD):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.srv.tls_port,
                              ssl_context=self.srv.ssl_ctx, timeout=30)
        self.clients.append(c)
        if login:
            c.login(user, password)
        return c

    def raw(self, tls=False):
        s = socket.create_connection(("127.0.0.1", self.srv.tls_port if tls
                                      else self.srv.plain_port), timeout=30)
        if tls:
            s = self.srv.ssl_ctx.wrap_socket(s, server_hostname="localhost")
        r = RawClient(s)
        self.clients.append(r)
        r.greeting = r.readline()
        return r

    def slow_reader(self, rcvbuf=32768):
        """A logged-in raw client with a small receive buffer: the
        server's output toward it fills up long before a big FETCH is
        sent, so the FETCH pauses until the test reads."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.srv.plain_port))
        r = RawClient(s)
        self.clients.append(r)
        r.greeting = r.readline()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        return r


# About 1 MB: eight of them are far more than socket buffers hold.
BIG_MESSAGE = b"Subject: big\r\n\r\n" + (b"x" * 1022 + b"\r\n") * 1024


def append_big(r, box, n=8):
    """APPENDs n BIG_MESSAGEs to box over raw client r (LITERAL+)."""
    for _ in range(n):
        r.send("ap APPEND %s {%d+}\r\n" % (box, len(BIG_MESSAGE)))
        r.send(BIG_MESSAGE + b"\r\n")
        lines = r.read_until_tag("ap")
        assert lines[-1].startswith(b"ap OK"), lines


def uid_set(uids):
    """Compact "1:3,5" form of a collection of UIDs."""
    out, run = [], None
    for u in sorted(uids):
        if run and u == run[1] + 1:
            run[1] = u
        else:
            if run:
                out.append(run)
            run = [u, u]
    if run:
        out.append(run)
    return ",".join("%d" % a if a == b else "%d:%d" % (a, b) for a, b in out)


class RawClient:
    """A line-level client for bad-input tests."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        # COMPRESS=DEFLATE (RFC 4978), once compress() was called
        self.co = self.de = None
        self.wire_in = self.wire_out = self.raw_in = self.raw_out = 0

    def compress(self):
        """Everything sent from now on is DEFLATE-compressed (one sync
        flush per send), everything read inflated. Counts bytes both as
        sent on the wire and as the protocol sees them."""
        self.co = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.de = zlib.decompressobj(-15)
        self.wire_in = self.wire_out = self.raw_in = self.raw_out = 0

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        if self.co is not None:
            self.raw_out += len(data)
            data = self.co.compress(data) + self.co.flush(zlib.Z_SYNC_FLUSH)
            self.wire_out += len(data)
        self.sock.sendall(data)

    def _recv(self):
        """(raw bytes, bytes for the protocol): raw empty at EOF."""
        d = self.sock.recv(65536)
        if self.de is None or not d:
            return d, d
        self.wire_in += len(d)
        p = self.de.decompress(d)
        self.raw_in += len(p)
        return d, p

    def readline(self, timeout=30):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            d, p = self._recv()
            if not d:
                out, self.buf = self.buf, b""
                return out
            self.buf += p
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def read_until_tag(self, tag, timeout=30):
        """Lines up to and including the tagged response of tag."""
        lines = []
        t = tag.encode() + b" "
        while True:
            line = self.readline(timeout)
            if not line:
                return lines
            lines.append(line)
            if line.startswith(t):
                return lines

    def read_exact(self, n, timeout=30):
        self.sock.settimeout(timeout)
        while len(self.buf) < n:
            d, p = self._recv()
            if not d:
                break
            self.buf += p
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_responses(self, tag, timeout=30):
        """Responses up to and including the tagged one of tag, each a
        list of pieces: text, then for each literal ({n} or ~{n}) its
        bytes and the text after it."""
        out = []
        t = tag.encode() + b" "
        while True:
            line = self.readline(timeout)
            if not line:
                return out
            resp = [line]
            while True:
                m = re.search(rb"~?\{(\d+)\}\r\n$", resp[-1])
                if not m:
                    break
                resp.append(self.read_exact(int(m.group(1)), timeout))
                resp.append(self.readline(timeout))
            out.append(resp)
            if line.startswith(t):
                return out

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.read_until_tag(tag)

    def closed(self, timeout=10):
        """True when the server closes the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d, p = self._recv()
                if not d:
                    return True
                self.buf += p
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def shutdown(self):
        try:
            self.sock.close()
        except Exception:
            pass


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()
