"""QRESYNC (RFC 7162 section 3.2): an offline device reconnects with
SELECT (QRESYNC ...) and learns exactly the flag changes and the vanished
UIDs, also after the server restarted; VANISHED replaces EXPUNGE once
enabled; UID FETCH (CHANGEDSINCE n VANISHED); [CLOSED]."""
import re

from imapd import ImapTestCase, Server, USER, PASSWORD
from test_imap_condstore import fetches, highestmodseq, MSG


class ImapQresyncTest(ImapTestCase):

    def _fill(self, n):
        c = self.tls()
        for i in range(n):
            c.append("INBOX", None, None, MSG % (i, i))
        c.logout()

    def _login(self, qresync=True):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        if qresync:
            lines = r.cmd("e", "ENABLE QRESYNC")
            self.assertEqual(lines[0], b"* ENABLED QRESYNC\r\n")
            self.assertTrue(lines[-1].startswith(b"e OK"), lines)
        return r

    def _ok(self, lines, tag):
        self.assertTrue(lines[-1].startswith(tag.encode() + b" OK"), lines)
        return lines

    def _vanished(self, lines):
        return [x for x in lines if x.startswith(b"* VANISHED")]

    def _offline_changes(self):
        """5 messages; the device records its state; another session
        flags 2, expunges 3 and 4 and adds a 6th. Returns (uidvalidity,
        highestmodseq) as the device saw them."""
        self._fill(5)
        dev = self._login()
        lines = self._ok(dev.cmd("s", "SELECT INBOX"), "s")
        uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(lines))
                 .group(1))
        hms = highestmodseq(lines)
        self._ok(dev.cmd("o", "LOGOUT"), "o")
        other = self._login(qresync=False)
        self._ok(other.cmd("s", "SELECT INBOX"), "s")
        self._ok(other.cmd("a", r"UID STORE 2 +FLAGS (\Flagged)"), "a")
        self._ok(other.cmd("b", r"UID STORE 3:4 +FLAGS (\Deleted)"), "b")
        lines = self._ok(other.cmd("x", "EXPUNGE"), "x")
        # not enabled here: classic EXPUNGE responses
        self.assertEqual([x for x in lines if b"EXPUNGE" in x and
                          x.startswith(b"* ")],
                         [b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"])
        self._ok(other.cmd("o", "LOGOUT"), "o")
        self._fill(1)
        return uv, hms

    def _check_resync(self, uv, hms):
        dev = self._login()
        lines = self._ok(dev.cmd("s", "SELECT INBOX (QRESYNC (%d %d 1:5))"
                                 % (uv, hms)), "s")
        self.assertEqual(self._vanished(lines),
                         [b"* VANISHED (EARLIER) 3:4\r\n"], lines)
        got = fetches(lines)
        # RFC 7162 3.2.5.1: with known-uids only their changes; the new
        # UID 6 is the client's to fetch (issue 13 item 7)
        self.assertEqual(sorted(got), [2], lines)
        self.assertEqual(got[2][0], 2)
        self.assertEqual(got[2][2], rb"\Flagged")
        self.assertIn(b"* 4 EXISTS\r\n", lines)
        # without known-uids: every change since, the new message too
        lines = self._ok(dev.cmd("s1", "SELECT INBOX (QRESYNC (%d %d))"
                                 % (uv, hms)), "s1")
        self.assertEqual(self._vanished(lines),
                         [b"* VANISHED (EARLIER) 3:4\r\n"], lines)
        got = fetches(lines)
        self.assertEqual(sorted(got), [2, 6], lines)
        self.assertEqual(got[6][0], 4)
        self.assertTrue(all(v[1] > hms for v in got.values()), got)
        # the same through UID FETCH (CHANGEDSINCE n VANISHED)
        lines = self._ok(dev.cmd("f", "UID FETCH 1:* (FLAGS) "
                                 "(CHANGEDSINCE %d VANISHED)" % hms), "f")
        self.assertEqual(self._vanished(lines),
                         [b"* VANISHED (EARLIER) 3:4\r\n"], lines)
        self.assertEqual(sorted(fetches(lines)), [2, 6])
        # restricted to the UIDs asked about
        lines = self._ok(dev.cmd("g", "UID FETCH 4:5 (FLAGS) "
                                 "(CHANGEDSINCE %d VANISHED)" % hms), "g")
        self.assertEqual(self._vanished(lines),
                         [b"* VANISHED (EARLIER) 4\r\n"], lines)
        self.assertEqual(fetches(lines), {})
        # known-uids limits VANISHED to what the client knows
        lines = self._ok(dev.cmd("s2", "EXAMINE INBOX (QRESYNC (%d %d "
                                 "1:3,5 (1:3 1:3)))" % (uv, hms)), "s2")
        self.assertIn(b"* OK [CLOSED] Previous mailbox is now closed\r\n",
                      lines)
        self.assertEqual(self._vanished(lines),
                         [b"* VANISHED (EARLIER) 3\r\n"], lines)
        # another UIDVALIDITY: the client must resync from scratch, no
        # VANISHED or FETCH
        lines = self._ok(dev.cmd("s3", "SELECT INBOX (QRESYNC (%d %d))"
                                 % (uv + 1, hms)), "s3")
        self.assertEqual(self._vanished(lines), [])
        self.assertEqual(fetches(lines), {})
        # up to date: nothing to say
        now = highestmodseq(lines)
        lines = self._ok(dev.cmd("s4", "SELECT INBOX (QRESYNC (%d %d))"
                                 % (uv, now)), "s4")
        self.assertEqual(self._vanished(lines), [])
        self.assertEqual(fetches(lines), {})
        self._ok(dev.cmd("o", "LOGOUT"), "o")

    def test_offline_device_resync(self):
        uv, hms = self._offline_changes()
        self._check_resync(uv, hms)

    def test_offline_device_resync_after_restart(self):
        uv, hms = self._offline_changes()
        for c in self.clients:
            try:
                c.shutdown()
            except OSError:
                pass  # logged out already
        self.clients = []
        alive, rc, text = self.srv.stop()
        self.assertTrue(alive)
        self.assertEqual(rc, 0, text[-2000:])
        self.srv = Server(self.tmp, self.ca, self.server_args, self.users,
                          self.generate)
        self._check_resync(uv, hms)

    def test_vanished_replaces_expunge(self):
        self._fill(4)
        q = self._login()
        self._ok(q.cmd("s", "SELECT INBOX"), "s")
        plain = self._login(qresync=False)
        self._ok(plain.cmd("s", "SELECT INBOX"), "s")
        # its own EXPUNGE
        self._ok(q.cmd("d", r"STORE 1:2 +FLAGS.SILENT (\Deleted)"), "d")
        lines = self._ok(q.cmd("x", "EXPUNGE"), "x")
        self.assertEqual([x for x in lines if x.startswith(b"* ")],
                         [b"* VANISHED 1:2\r\n"])
        # another session's expunge arrives as VANISHED too
        lines = self._ok(plain.cmd("m", r"UID MOVE 4 Trash"), "m")
        self.assertIn(b"* 4 EXPUNGE\r\n", lines)
        lines = self._ok(q.cmd("n", "NOOP"), "n")
        self.assertIn(b"* VANISHED 4\r\n", lines)
        self.assertFalse(any(b"EXPUNGE" in x for x in lines), lines)
        lines = self._ok(q.cmd("f", "FETCH 1:* (UID)"), "f")
        self.assertEqual(sorted(fetches(lines)), [3])

    def test_refusals(self):
        self._fill(1)
        r = self._login(qresync=False)
        lines = r.cmd("s", "SELECT INBOX (QRESYNC (1 1))")
        self.assertTrue(lines[-1].startswith(b"s BAD"), lines)
        self._ok(r.cmd("s2", "SELECT INBOX (CONDSTORE)"), "s2")
        lines = r.cmd("f", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(lines[-1].startswith(b"f BAD"), lines)
        self._ok(r.cmd("e", "ENABLE QRESYNC"), "e")
        lines = r.cmd("f2", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(lines[-1].startswith(b"f2 BAD"), lines)
        lines = r.cmd("f3", "UID FETCH 1:* (FLAGS) (VANISHED)")
        self.assertTrue(lines[-1].startswith(b"f3 BAD"), lines)
        for bad in ("(QRESYNC)", "(QRESYNC ())", "(QRESYNC (0 1))",
                    "(QRESYNC (1 0))", "(QRESYNC (1 1 x))",
                    "(QRESYNC (1 1 1:2 (1)))", "(FOO)"):
            lines = r.cmd("b", "SELECT INBOX " + bad)
            self.assertTrue(lines[-1].startswith(b"b BAD"), (bad, lines))
