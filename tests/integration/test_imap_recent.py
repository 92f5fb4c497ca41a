"""\\Recent (RFC 3501 2.3.2): a new message is \\Recent in exactly one
read-write session, the first one told of it (SELECT, or EXISTS while
selected, IDLE included); EXAMINE shows unclaimed messages \\Recent without
claiming them; RECENT in SELECT/EXAMINE and with EXISTS; FETCH FLAGS,
SEARCH RECENT/NEW/OLD, STATUS (RECENT); STORE cannot touch \\Recent; after
a restart nothing delivered before it is \\Recent."""
import re

from imapd import ImapTestCase, Server, USER, PASSWORD

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


class ImapRecentTest(ImapTestCase):

    def _session(self, select=None, condstore=False):
        r = self.raw()
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        if condstore:
            self._ok(r.cmd("e", "ENABLE CONDSTORE"), "e")
        if select:
            r.selected = self._ok(r.cmd("s", select), "s")
        return r

    def _ok(self, lines, tag):
        self.assertTrue(lines and lines[-1].startswith(tag.encode() + b" OK"),
                        lines)
        return lines

    def _append(self, r, box, i):
        body = MSG % (i, i)
        r.send("ap APPEND %s {%d+}\r\n" % (box, len(body)))
        r.send(body + b"\r\n")
        lines = self._ok(r.read_until_tag("ap"), "ap")
        return int(re.search(rb"\[APPENDUID \d+ (\d+)\]", lines[-1]).group(1))

    def _untagged(self, lines):
        return [x for x in lines if x.startswith(b"* ")]

    def _recent_resp(self, lines):
        """n of "* n RECENT" in lines, or None."""
        got = [int(x.split()[1]) for x in lines if x.endswith(b" RECENT\r\n")]
        self.assertLessEqual(len(got), 1, lines)
        return got[0] if got else None

    def _search(self, r, crit):
        lines = self._ok(r.cmd("x", "SEARCH " + crit), "x")
        hits = [x for x in lines if x.startswith(b"* SEARCH")]
        self.assertEqual(len(hits), 1, lines)
        return [int(v) for v in hits[0].split()[2:]]

    def _flags(self, r):
        """{seq: set of flags} from FETCH 1:* (FLAGS)."""
        out = {}
        for x in self._ok(r.cmd("f", "FETCH 1:* (FLAGS)"), "f"):
            m = re.match(rb"^\* (\d+) FETCH \(FLAGS \(([^)]*)\)\)\r\n$", x)
            if m:
                out[int(m.group(1))] = set(m.group(2).split())
        return out

    def _recent_seqs(self, r):
        return sorted(k for k, v in self._flags(r).items()
                      if b"\\Recent" in v)

    def _status_recent(self, r, box="INBOX"):
        lines = self._ok(r.cmd("st", "STATUS %s (RECENT MESSAGES)" % box),
                         "st")
        m = re.search(rb"RECENT (\d+)", lines[0])
        return int(m.group(1))

    def test_delivery_is_recent_in_exactly_one_session(self):
        a = self._session()
        for i in range(2):
            self._append(a, "INBOX", i)
        s1 = self._session("SELECT INBOX")
        # the first SELECT claims the two waiting messages
        self.assertEqual(self._recent_resp(s1.selected), 2)
        s2 = self._session("SELECT INBOX")
        self.assertEqual(self._recent_resp(s2.selected), 0)
        self.assertEqual(self._status_recent(a), 0)

        self._append(a, "INBOX", 2)
        self.assertEqual(self._status_recent(a), 1)
        # s2 hears of it first: it is \Recent there, and only there
        lines = self._ok(s2.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 3 EXISTS\r\n", b"* 1 RECENT\r\n"])
        lines = self._ok(s1.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines), [b"* 3 EXISTS\r\n"])
        self.assertEqual(self._status_recent(a), 0)
        self.assertEqual(self._recent_seqs(s1), [1, 2])
        self.assertEqual(self._recent_seqs(s2), [3])
        self.assertEqual(self._search(s1, "RECENT"), [1, 2])
        self.assertEqual(self._search(s2, "RECENT"), [3])
        self.assertEqual(self._search(s2, "OLD"), [1, 2])
        self.assertEqual(self._search(s2, "NOT RECENT"), [1, 2])
        self.assertEqual(self._search(s2, "NEW"), [3])
        self.assertEqual(self._search(s1, "NEW"), [1, 2])
        # \Seen ends NEW, not RECENT; FLAGS keep \Recent in every answer
        lines = self._ok(s2.cmd("t", r"STORE 3 +FLAGS (\Seen)"), "t")
        self.assertIn(b"* 3 FETCH (FLAGS (\\Seen \\Recent))\r\n", lines)
        self.assertEqual(self._search(s2, "NEW"), [])
        self.assertEqual(self._search(s2, "RECENT"), [3])
        # the flag change pushed to s1 has no \Recent (not recent there)
        lines = self._ok(s1.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 3 FETCH (FLAGS (\\Seen))\r\n"])
        lines = self._ok(s1.cmd("t", r"STORE 1 +FLAGS (\Flagged)"), "t")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n", lines)
        lines = self._ok(s2.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 1 FETCH (FLAGS (\\Flagged))\r\n"])
        # a new session sees nothing recent; s1 re-selecting neither
        s3 = self._session("SELECT INBOX")
        self.assertEqual(self._recent_resp(s3.selected), 0)
        self.assertEqual(self._recent_seqs(s3), [])
        lines = self._ok(s1.cmd("s", "SELECT INBOX"), "s")
        self.assertEqual(self._recent_resp(lines), 0)
        self.assertEqual(self._search(s1, "RECENT"), [])

    def test_idle_sessions_one_claims(self):
        a = self._session()
        idlers = [self._session("SELECT INBOX") for _ in range(3)]
        for r in idlers:
            r.send("i IDLE\r\n")
            self.assertTrue(r.readline().startswith(b"+ "))
        self._append(a, "INBOX", 0)
        got = []
        for r in idlers:
            self.assertEqual(r.readline(timeout=10), b"* 1 EXISTS\r\n")
            r.send("DONE\r\n")
            lines = self._ok(r.read_until_tag("i"), "i")
            got.append(self._recent_resp(lines))
        self.assertEqual(sorted(got, key=lambda v: v or 0), [None, None, 1])
        # FETCH agrees with the RECENT responses
        recents = [self._recent_seqs(r) for r in idlers]
        self.assertEqual(sorted(recents), [[], [], [1]])
        self.assertEqual(recents[got.index(1)], [1])

    def test_examine_does_not_claim(self):
        a = self._session()
        for i in range(3):
            self._append(a, "INBOX", i)
        e = self._session("EXAMINE INBOX")
        self.assertEqual(self._recent_resp(e.selected), 3)
        self.assertEqual(self._recent_seqs(e), [1, 2, 3])
        self.assertEqual(self._search(e, "RECENT"), [1, 2, 3])
        self.assertEqual(self._status_recent(a), 3)
        # the SELECT after it still gets them
        s = self._session("SELECT INBOX")
        self.assertEqual(self._recent_resp(s.selected), 3)
        self.assertEqual(self._status_recent(a), 0)
        e2 = self._session("EXAMINE INBOX")
        self.assertEqual(self._recent_resp(e2.selected), 0)
        # a read-only session told of new mail first sees it \Recent but
        # leaves it to the read-write one
        self._append(a, "INBOX", 3)
        lines = self._ok(e2.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 4 EXISTS\r\n", b"* 1 RECENT\r\n"])
        lines = self._ok(s.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"])
        self.assertEqual(self._recent_seqs(s), [1, 2, 3, 4])
        self.assertEqual(self._recent_seqs(e2), [4])

    def test_store_cannot_set_or_clear_recent(self):
        a = self._session()
        self._append(a, "INBOX", 0)
        s = self._session("SELECT INBOX")
        for op in ("+FLAGS", "-FLAGS", "FLAGS", "+FLAGS.SILENT"):
            lines = s.cmd("t", r"STORE 1 %s (\Recent)" % op)
            self.assertTrue(lines[-1].startswith(b"t BAD"), lines)
        lines = s.cmd("t", r"STORE 1 FLAGS (\Seen \Recent)")
        self.assertTrue(lines[-1].startswith(b"t BAD"), lines)
        lines = a.cmd("ap", "APPEND INBOX (\\Recent) {3+}\r\nabc")
        self.assertTrue(lines[-1].startswith(b"ap BAD"), lines)
        # replacing the flags keeps \Recent: it is not a stored flag
        lines = self._ok(s.cmd("t", r"STORE 1 FLAGS (\Draft)"), "t")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Draft \\Recent))\r\n", lines)
        lines = self._ok(s.cmd("t", "STORE 1 FLAGS ()"), "t")
        self.assertIn(b"* 1 FETCH (FLAGS (\\Recent))\r\n", lines)
        # it is never offered as a settable flag
        self.assertNotIn(b"\\Recent", b"".join(
            x for x in s.selected if b"FLAGS" in x))

    def test_own_append_copy_expunge_and_status(self):
        s = self._session("SELECT INBOX", condstore=True)
        self._ok(s.cmd("c", "CREATE Box"), "c")
        # its own APPEND into the selected mailbox: \Recent here
        self._append(s, "INBOX", 0)
        self._append(s, "INBOX", 1)
        self.assertEqual(self._recent_seqs(s), [1, 2])
        lines = self._ok(s.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines), [])
        # the CONDSTORE FETCH of a STORE carries \Recent as well
        lines = self._ok(s.cmd("t", r"STORE 2 +FLAGS (\Flagged)"), "t")
        self.assertRegex(lines[0], rb"^\* 2 FETCH \(UID 2 MODSEQ \(\d+\) "
                         rb"FLAGS \(\\Flagged \\Recent\)\)\r\n$")
        # copies are new in the destination (RFC 3501 6.4.7)
        self._ok(s.cmd("cp", "COPY 1:2 Box"), "cp")
        a = self._session()
        self.assertEqual(self._status_recent(a, "Box"), 2)
        lines = self._ok(a.cmd("ls", 'LIST "" Box RETURN (STATUS (RECENT))'),
                         "ls")
        self.assertIn(b"* STATUS Box (RECENT 2)\r\n", lines)
        b = self._session("SELECT Box")
        self.assertEqual(self._recent_resp(b.selected), 2)
        self.assertEqual(self._status_recent(a, "Box"), 0)
        # expunging a recent message lowers the count the next RECENT
        # response gives
        self._ok(s.cmd("d", r"STORE 1 +FLAGS.SILENT (\Deleted)"), "d")
        self._ok(s.cmd("x", "EXPUNGE"), "x")
        self._append(a, "INBOX", 2)
        lines = self._ok(s.cmd("n", "NOOP"), "n")
        self.assertEqual(self._untagged(lines),
                         [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"])
        self.assertEqual(self._search(s, "RECENT"), [1, 2])
        # a deleted mailbox leaves nothing behind: recreated, its new
        # messages are recent again
        self._ok(b.cmd("u", "UNSELECT"), "u")
        self._ok(a.cmd("d", "DELETE Box"), "d")
        self._ok(a.cmd("c", "CREATE Box"), "c")
        self._append(a, "Box", 0)
        self.assertEqual(self._status_recent(a, "Box"), 1)

    def test_nothing_recent_after_restart(self):
        a = self._session()
        for i in range(2):
            self._append(a, "INBOX", i)
        self.assertEqual(self._status_recent(a), 2)
        for c in self.clients:
            c.shutdown()
        self.clients = []
        alive, rc, text = self.srv.stop()
        self.assertTrue(alive)
        self.assertEqual(rc, 0, text[-2000:])
        self.srv = Server(self.tmp, self.ca, self.server_args, self.users,
                          self.generate)
        a = self._session()
        # the claims lived in the old process: what arrived before the
        # restart is not \Recent (docs/sync.md)
        self.assertEqual(self._status_recent(a), 0)
        self._append(a, "INBOX", 2)
        self.assertEqual(self._status_recent(a), 1)
        s = self._session("SELECT INBOX")
        self.assertEqual(self._recent_resp(s.selected), 1)
        self.assertEqual(self._recent_seqs(s), [3])

    def test_status_of_the_selected_mailbox(self):
        """STATUS (RECENT) of the mailbox the session has selected gives
        the session's own count, the one SELECT and FETCH FLAGS show (as
        Dovecot 2.3), not the unclaimed messages; other sessions still
        see 0 for what this one claimed."""
        a = self._session()
        for i in range(2):
            self._append(a, "INBOX", i)
        self._ok(a.cmd("s", "SELECT INBOX"), "s")
        self.assertEqual(self._recent_seqs(a), [1, 2])
        self.assertEqual(self._status_recent(a), 2)
        b = self._session()
        self.assertEqual(self._status_recent(b), 0)
        self._append(b, "INBOX", 2)
        self.assertEqual(self._status_recent(b), 1)
        lines = self._ok(a.cmd("n", "NOOP"), "n")
        self.assertEqual(self._recent_resp(lines), 3)
        self.assertEqual(self._status_recent(a), 3)
        self.assertEqual(self._status_recent(b), 0)
