"""The thread model (issue 11, docs/threads.md) seen from the wire: commands
whose work runs on a worker (LOGIN's argon2id, SEARCH over text, APPEND's
MIME parsing) or on the writer (STORE, COPY, EXPUNGE, APPEND) keep the
order of a pipelined session; a client that goes away while its job runs
is cleaned up (the server stays healthy, a change it asked for still
commits); the worker count is a setting; and SIGTERM with commits in
flight sends no DELE for anything uncommitted.

The ThreadSanitizer build runs this file too (tests/run-tests.sh)."""
import imaplib
import os
import re
import socket
import ssl
import unittest

import imapd
from imapd import PASSWORD, USER, ImapTestCase, wait_for
from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes
from pgtest.gateway import Gateway

NEEDLE = b"quixotic-zebra-needle"


def message(i, extra=b""):
    return (b"From: a@example.org\r\nTo: b@example.org\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\n"
            b"body of message %d\r\n" % (i, i, i)) + extra


class PipelineOrderTest(ImapTestCase):
    """Worker and writer jobs in one pipelined write keep their order."""

    generate = (USER, 300)

    def test_pipelined_offloaded_commands_answer_in_order(self):
        r = self.raw()
        needle_msg = message(9001, b"the " + NEEDLE + b" is here\r\n")
        big = imapd.BIG_MESSAGE
        cmds = [
            b"a01 LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()),
            b"a02 SELECT INBOX\r\n",
            b"a03 APPEND INBOX (\\Flagged) {%d+}\r\n%s\r\n" %
            (len(needle_msg), needle_msg),
            b"a04 NOOP\r\n",
            b"a05 UID SEARCH BODY " + NEEDLE + b"\r\n",
            b"a06 STORE 1:5 +FLAGS (\\Seen $Thread)\r\n",
            b"a07 FETCH 1:5 (FLAGS)\r\n",
            b"a08 COPY 1:3 INBOX\r\n",
            b"a09 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big),
            b"a10 STORE 2 +FLAGS.SILENT (\\Deleted)\r\n",
            b"a11 EXPUNGE\r\n",
            b"a12 SEARCH TEXT " + NEEDLE + b"\r\n",
            b"a13 STATUS INBOX (MESSAGES)\r\n",
            b"a14 LOGOUT\r\n",
        ]
        r.send(b"".join(cmds))
        lines = []
        while True:
            line = r.readline(timeout=60)
            if not line:
                break
            lines.append(line)
            if line.startswith(b"a14 "):
                break
        tagged = [l.split(b" ", 1)[0] for l in lines
                  if re.match(rb"a\d\d ", l)]
        self.assertEqual(tagged, [b"a%02d" % i for i in range(1, 15)],
                         b"".join(lines)[-3000:])
        for l in lines:
            if re.match(rb"a\d\d ", l):
                self.assertRegex(l, rb"^a\d\d OK", l)
        text = b"".join(lines)
        # the APPEND (a03) was durable before the SEARCH (a05) ran
        appenduid = re.search(rb"a03 OK \[APPENDUID \d+ (\d+)\]", text)
        self.assertIsNotNone(appenduid, text[-2000:])
        uid = appenduid.group(1)
        self.assertRegex(text, rb"\* SEARCH " + uid + rb"\r\n")
        # the STORE (a06) before the FETCH (a07): every FETCH shows it
        fetch7 = text.split(b"a06 OK")[1].split(b"a07 OK")[0]
        self.assertEqual(fetch7.count(b"\\Seen"), 5, fetch7)
        self.assertEqual(fetch7.count(b"$Thread"), 5, fetch7)
        # COPY's COPYUID, then a12's sequence number: 300 generated +
        # 1 appended + 3 copied + 1 big - 1 expunged; the needle message
        # was number 301 and message 2's expunge moved it to 300
        self.assertRegex(text, rb"a08 OK \[COPYUID \d+ 1:3 \d+:\d+\]")
        self.assertRegex(text, rb"\* 2 EXPUNGE")
        self.assertRegex(text, rb"\* SEARCH 300\r\n")
        self.assertRegex(text, rb"\* STATUS INBOX \(MESSAGES 304\)")

    def test_many_sessions_pipelining_at_once_agree(self):
        """Ten sessions each pipeline STORE/FETCH pairs at once: every
        session sees its own STORE in the FETCH that follows it, whatever
        the writer grouped together."""
        clients = []
        for i in range(10):
            r = self.raw()
            self.assertTrue(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
                            [-1].startswith(b"l OK"))
            self.assertTrue(r.cmd("s", "SELECT INBOX")[-1]
                            .startswith(b"s OK"))
            clients.append(r)
        for i, r in enumerate(clients):
            batch = []
            for k in range(20):
                seq = 1 + (i * 20 + k) % 300
                batch.append("t%d STORE %d +FLAGS ($K%d)\r\n"
                             "f%d FETCH %d (FLAGS)\r\n" % (k, seq, i, k, seq))
            r.send("".join(batch))
        for i, r in enumerate(clients):
            for k in range(20):
                self.assertTrue(r.read_until_tag("t%d" % k, timeout=60)[-1]
                                .startswith(b"t%d OK" % k))
                f = r.read_until_tag("f%d" % k, timeout=60)
                self.assertTrue(f[-1].startswith(b"f%d OK" % k), f)
                self.assertIn(b"$K%d" % i, b"".join(f))


class DisconnectMidJobTest(ImapTestCase):
    """A client gone while its job runs: no crash, no leak (ASan checks
    at stop), other sessions go on, and a write it asked for commits."""

    generate = (USER, 3000)

    def test_disconnect_during_search_and_during_store(self):
        for _ in range(5):
            r = self.raw()
            r.send("l LOGIN %s %s\r\ns SELECT INBOX\r\n"
                   "q SEARCH TEXT nothing-matches-this\r\n" %
                   (USER, PASSWORD))
            # wait until the SEARCH has been read, then vanish
            r.read_until_tag("s", timeout=60)
            r.shutdown()
        r = self.raw()
        r.send("l LOGIN %s %s\r\ns SELECT INBOX\r\n"
               "w STORE 1:* +FLAGS (GoneButDone)\r\n" % (USER, PASSWORD))
        r.read_until_tag("s", timeout=60)
        r.shutdown()
        c = self.plain()
        c.select("INBOX")
        # the STORE of the vanished client still committed
        typ, data = wait_for(lambda: (lambda t: t if t[1][0] and
                             len(t[1][0].split()) == 3000 else None)(
                             c.uid("SEARCH", None, "KEYWORD", "GoneButDone")),
                             timeout=60)
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data[0].split()), 3000)
        typ, data = c.noop()
        self.assertEqual(typ, "OK")

    def test_disconnect_during_login(self):
        # the guesser comes from another address than the owner (the
        # failed-login table slows the owner at the guesser's address)
        for _ in range(20):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.3", 0))
            s.connect(("127.0.0.1", self.srv.plain_port))
            s.recv(4096)
            s.sendall(b"l LOGIN %s wrong-password\r\n" % USER.encode())
            s.close()
        c = self.plain()
        self.assertEqual(c.select("INBOX")[0], "OK")
        # the guesser's connections went when it closed them, though their
        # logins were held back: its address has pre-auth room again
        s = wait_for(lambda: self.connect_from("127.0.0.3"), timeout=30)
        self.assertTrue(s)

    def connect_from(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.connect(("127.0.0.1", self.srv.plain_port))
        s.settimeout(10)
        ok = s.recv(4096).startswith(b"* OK")
        s.close()
        return ok


class WorkerSettingTest(ImapTestCase):
    """imapd_test --workers: one worker still serves everything."""

    server_args = ("--workers", "1")
    generate = (USER, 50)

    def test_one_worker_serves_logins_searches_and_appends(self):
        cs = [self.plain() for _ in range(4)]
        for c in cs:
            c.select("INBOX")
            self.assertEqual(c.append("INBOX", None, None,
                             message(7, NEEDLE + b"\r\n"))[0], "OK")
        for c in cs:
            c.noop()  # the others' APPENDs join this session's view
            typ, data = c.search(None, "BODY", NEEDLE.decode())
            self.assertEqual(typ, "OK")
            self.assertEqual(len(data[0].split()), 4)


class SigtermMidCommitTest(unittest.TestCase):
    """popgated with a real Dovecot POP3 upstream in delete mode, SIGTERM
    once batches are being committed: nothing is lost or stored twice (a
    message is stored, or still upstream, or both); after a restart every
    message is in the store exactly once and the upstream is empty."""

    COUNT = 1200

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

    def inbox(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=60)
        c.starttls(ssl_context=self.ctx)
        c.login("alice", "imap-pw")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        bodies = []
        n = int(data[0])
        for lo in range(1, n + 1, 200):
            typ, data = c.fetch("%d:%d" % (lo, min(n, lo + 199)),
                                "(BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            bodies += [d[1] for d in data if isinstance(d, tuple)]
        self.assertEqual(len(bodies), n)
        c.logout()
        return bodies

    def test_sigterm_with_commits_in_flight(self):
        raws = [make_message(i, 4000) for i in range(self.COUNT)]
        want = set(wire_bytes(r) for r in raws)
        self.dc.add_messages("alice", raws)
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": self.dc.port, "tls": "stls",
                    "login": "alice", "password": "pop-secret",
                    "account": "big", "mode": "delete", "interval": 3600})
        self.gw.ok({"command": "poll", "user": "alice", "account": "big"})
        # SIGTERM once a batch is durable: others are being parsed and
        # committed behind it
        self.assertTrue(wait_for(lambda: self.gw.ok({"command": "status"})
                                 ["accounts"][0]["status"]["import"]["done"]
                                 > 0, timeout=60), self.gw.output()[-2000:])
        self.assertEqual(self.gw.stop(), 0)
        # what the upstream holds while nothing polls it
        on_server = set(wire_bytes(r) for r in
                        self.dc.message_files("alice"))
        self.gw.start()
        # (the restarted poller may already be fetching the rest)
        stored = self.inbox()
        self.assertEqual(len(stored), len(set(stored)))
        self.assertTrue(set(stored) <= want)
        self.assertEqual(set(stored) | on_server, want)
        # no DELE for an uncommitted message: whatever left the server
        # before the restart is in the store
        self.assertTrue(want - on_server <= set(stored))
        self.gw.ok({"command": "poll", "user": "alice", "account": "big"})
        self.assertTrue(wait_for(lambda: self.dc.count("alice") == 0,
                                 timeout=180), self.gw.output()[-2000:])
        stored = self.inbox()
        self.assertEqual(sorted(stored), sorted(want))
