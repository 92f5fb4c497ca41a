"""Several sessions on one mailbox: untagged EXISTS / EXPUNGE / FETCH FLAGS,
IDLE hearing of changes at once, sequence numbers consistent per session
while others expunge, and user isolation."""
import os
import time

from imapd import ImapTestCase, USER, PASSWORD, wait_for

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


class ImapSyncTest(ImapTestCase):
    users = ((USER, PASSWORD), ("bob", "bob-secret"))

    def _fill(self, c, n):
        for i in range(n):
            c.append("INBOX", None, None, MSG % (i, i))

    def _idle(self, tls=True):
        r = self.raw(tls=tls)
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("s", "SELECT INBOX")
        r.send("i IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        return r

    def test_idle_hears_new_mail_flags_and_expunge(self):
        a = self.tls()
        self._fill(a, 3)
        r = self._idle()
        t0 = time.monotonic()
        a.append("INBOX", None, None, MSG % (9, 9))
        line = r.readline(timeout=5)
        self.assertEqual(line, b"* 4 EXISTS\r\n")
        # r selected first and heard of the new message first: all four
        # are \Recent in r
        self.assertEqual(r.readline(timeout=5), b"* 4 RECENT\r\n")
        # pushed from the commit itself (no polling); the latency is
        # reported, not asserted: tests never fail on timing
        print(" idle-latency=%.3fs" % (time.monotonic() - t0), end="")
        a.select("INBOX")
        a.store("2", "+FLAGS.SILENT", r"(\Flagged)")
        self.assertEqual(r.readline(timeout=5),
                         b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n")
        a.store("1", "+FLAGS.SILENT", r"(\Deleted)")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Deleted \\Recent))",
                      r.readline(timeout=5))
        a.expunge()
        self.assertEqual(r.readline(timeout=5), b"* 1 EXPUNGE\r\n")
        r.send("DONE\r\n")
        self.assertTrue(r.read_until_tag("i")[-1].startswith(b"i OK"))
        # junk instead of DONE ends IDLE with BAD
        r.send("j IDLE\r\n")
        r.readline()
        r.send("garbage\r\n")
        self.assertTrue(r.read_until_tag("j")[-1].startswith(b"j BAD"))
        lines = r.cmd("k", "FETCH 1:* (UID)")
        self.assertEqual(len(lines), 4, lines)

    def test_three_sessions_sequence_numbers(self):
        a = self.tls()
        self._fill(a, 5)
        a.select("INBOX")
        b = self.raw()
        b.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        b.cmd("s", "SELECT INBOX")
        c = self.starttls()
        c.select("INBOX")
        # a expunges 2 and 4; b is in the middle of nothing
        a.store("2,4", "+FLAGS.SILENT", r"(\Deleted)")
        typ, data = a.expunge()
        self.assertEqual(data, [b"4", b"2"] if data[0] == b"4" else
                         [b"2", b"3"])
        # b: FETCH must not report EXPUNGE; sequence numbers stay
        lines = b.cmd("f", "FETCH 5 (UID)")
        self.assertFalse(any(b"EXPUNGE" in x for x in lines), lines)
        self.assertIn(b"* 5 FETCH (UID 5)\r\n", lines)
        # NOOP delivers the expunges, shifted as RFC 3501 says
        lines = b.cmd("n", "NOOP")
        exp = [x for x in lines if x.endswith(b"EXPUNGE\r\n")]
        self.assertEqual(exp, [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"])
        lines = b.cmd("g", "FETCH 1:* (UID)")
        self.assertEqual([x for x in lines if x.startswith(b"* ")],
                         [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n",
                          b"* 3 FETCH (UID 5)\r\n"])
        # UID FETCH may carry expunges
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        self.assertEqual(len(data), 3)
        # new mail from one session appears in the others as EXISTS
        a.append("INBOX", r"(\Seen)", None, MSG % (7, 7))
        lines = b.cmd("m", "NOOP")
        self.assertIn(b"* 4 EXISTS\r\n", lines)
        c.untagged_responses.clear()
        typ, data = c.noop()
        self.assertEqual(c.untagged_responses.get("EXISTS"), [b"4"])

    def test_isolation(self):
        a = self.tls()
        self._fill(a, 2)
        bob = self.tls(user="bob", password="bob-secret")
        typ, data = bob.select("INBOX")
        self.assertEqual(data, [b"0"])
        r = self.raw(tls=True)
        r.cmd("l", "LOGIN bob bob-secret")
        r.cmd("s", "SELECT INBOX")
        r.send("i IDLE\r\n")
        r.readline()
        a.append("INBOX", None, None, MSG % (1, 1))
        # alice's mail never reaches bob's IDLE
        r.sock.settimeout(1.0)
        with self.assertRaises(OSError):
            r.readline(timeout=1.0)
        for name in ('"../alice/INBOX"', '"~alice"', '"/INBOX"', "alice/INBOX",
                     '"~alice/INBOX"', "INBOX/../../alice"):
            typ, _ = bob.select(name)
            self.assertEqual(typ, "NO", name)


class ImapAdminApiTest(ImapTestCase):
    """The gateway's API through imapd_test's SIGUSR1: session list with the
    ID client name, counters, closing every session of one user."""
    users = ((USER, PASSWORD), ("bob", "bob-secret"))
    server_args = ("--kick-user", USER)

    def test_kick_user_and_session_list(self):
        import signal as _signal
        a1 = self.raw(tls=True)
        a1.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        a1.cmd("i", 'ID ("name" "TestMail" "version" "1.2")')
        a1.cmd("s", "SELECT INBOX")
        a2 = self.raw()
        a2.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        b = self.raw()
        b.cmd("l", "LOGIN bob bob-secret")
        os.kill(self.srv.proc.pid, _signal.SIGUSR1)
        self.assertTrue(a1.closed(timeout=20))
        self.assertIn(b"* BYE Account disabled", a1.buf)
        self.assertTrue(a2.closed(timeout=20))
        self.assertTrue(b.cmd("n", "NOOP")[-1].startswith(b"n OK"))
        log = wait_for(lambda: "event=kicked" in self.srv.log() and
                       self.srv.log())
        self.assertIn('client="TestMail 1.2" mailbox=INBOX tls=1', log)
        self.assertIn("event=kicked user=alice sessions=2", log)
        self.assertRegex(log, r"event=stats sessions=3 authenticated=3 "
                         r"logins_ok=3 logins_failed=0")
