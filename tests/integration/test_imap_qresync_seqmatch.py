"""QRESYNC message sequence match data (RFC 7162 3.2.5.2):
SELECT box (QRESYNC (uidvalidity modseq [known-uids] (known-sequence-set
known-uid-set))). The store keeps the whole expunge history, so the
VANISHED (EARLIER) answer is exact without it: the match data is checked
(two "*"-free ascending sets of the same size, else BAD) and does not
change the answer, not even when a pair would let a server with a short
history hide expunges."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


class ImapQresyncSeqMatchTest(ImapTestCase):

    def _ok(self, lines, tag):
        self.assertTrue(lines and lines[-1].startswith(tag.encode() + b" OK"),
                        lines)
        return lines

    def _login(self):
        r = self.raw()
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        self._ok(r.cmd("e", "ENABLE QRESYNC"), "e")
        return r

    def _device_state(self):
        """8 messages; the device records (uidvalidity, modseq); then
        UIDs 2, 5 and 7 are expunged and 4 is flagged elsewhere."""
        r = self._login()
        for i in range(8):
            body = MSG % (i, i)
            r.send("ap APPEND INBOX {%d+}\r\n" % len(body))
            r.send(body + b"\r\n")
            self._ok(r.read_until_tag("ap"), "ap")
        lines = self._ok(r.cmd("s", "SELECT INBOX"), "s")
        text = b"".join(lines)
        uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", text).group(1))
        hms = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
        self._ok(r.cmd("d", r"UID STORE 2,5,7 +FLAGS.SILENT (\Deleted)"),
                 "d")
        self._ok(r.cmd("x", "EXPUNGE"), "x")
        self._ok(r.cmd("f", r"UID STORE 4 +FLAGS.SILENT (\Flagged)"), "f")
        self._ok(r.cmd("o", "LOGOUT"), "o")
        return uv, hms

    def _resync(self, r, uv, hms, rest, tag="s"):
        lines = self._ok(r.cmd(tag, "SELECT INBOX (QRESYNC (%d %d%s))" %
                               (uv, hms, rest)), tag)
        self._ok(r.cmd("u", "UNSELECT"), "u")
        return ([x for x in lines if x.startswith(b"* VANISHED")],
                [x for x in lines if b" FETCH " in x])

    def test_seq_match_accepted_and_answer_exact(self):
        uv, hms = self._device_state()
        r = self._login()
        want_v = [b"* VANISHED (EARLIER) 2,5,7\r\n"]
        base = self._resync(r, uv, hms, " 1:8")
        self.assertEqual(base[0], want_v)
        self.assertEqual(len(base[1]), 1, base)
        self.assertIn(b"UID 4 ", base[1][0])
        # an honest device: seq 1..8 were UIDs 1..8 when it synced
        for rest in (" 1:8 (1:8 1:8)", " 1:8 (1,3,8 1,3,8)",
                     " 1:8 (2,4 2,4)", " (1:8 1:8)", " (8 8)",
                     " 1:8 (1,2:3,5 1:2,3,5)"):
            self.assertEqual(self._resync(r, uv, hms, rest), base, rest)
        # a pair that matches today by accident (seq 5 is UID 8 now, it
        # was UID 5 for the device): a server with a short history could
        # take it to mean "nothing below UID 8 was expunged"; the history
        # says otherwise, and the answer stays exact
        self.assertEqual(self._resync(r, uv, hms, " 1:8 (5 8)"), base)
        # known-uids still limits the answer
        self.assertEqual(self._resync(r, uv, hms, " 3:6 (3:6 3:6)")[0],
                         [b"* VANISHED (EARLIER) 5\r\n"])

    def test_seq_match_validated(self):
        uv, hms = self._device_state()
        r = self._login()
        for rest in (" 1:8 (1:3 1:2)",		# different sizes
                     " 1:8 (1,3 1)",
                     " 1:8 (1:* 1:8)",		# "*" not allowed
                     " 1:8 (1:8 1:*)",
                     " 1:8 (3,1 3,4)",		# not ascending
                     " 1:8 (1:3 3:1)",
                     " 1:8 (1,1 1,2)",
                     " 1:8 (0 1)",
                     " 1:8 (1:3)",		# not a pair
                     " 1:8 (1 2 3)",
                     " 1:8 ()",
                     " 1:8 1:3",
                     ' 1:8 ("1" "1")',
                     " 1:8 (1 1) (1 1)",
                     " (1 1) 1:8"):
            lines = r.cmd("b", "SELECT INBOX (QRESYNC (%d %d%s))" %
                          (uv, hms, rest))
            self.assertEqual(len(lines), 1, (rest, lines))
            self.assertTrue(lines[0].startswith(b"b BAD"), (rest, lines))
        # the session is fine afterwards
        self.assertEqual(self._resync(r, uv, hms, " 1:8 (1:8 1:8)")[0],
                         [b"* VANISHED (EARLIER) 2,5,7\r\n"])
