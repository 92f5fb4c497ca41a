"""FETCH (CHANGEDSINCE n) over sets other than 1:* (RFC 7162 3.1.4): the
answer is the changed messages of the set only, by UID or by sequence
number, after an expunge has shifted the sequence numbers, and with the
\\Seen that the FETCH itself sets counted as a change."""
import re

from imapd import ImapTestCase, USER, PASSWORD
from test_imap_condstore import MSG, fetches, highestmodseq


class ImapChangedSinceTest(ImapTestCase):
    def _fill(self, n):
        c = self.tls()
        for i in range(n):
            c.append("INBOX", None, None, MSG % (i, i))
        return c

    def _session(self):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        lines = r.cmd("s", "SELECT INBOX (CONDSTORE)")
        self.assertTrue(lines[-1].startswith(b"s OK"), lines)
        r.hms = highestmodseq(lines)
        return r

    def _ok(self, lines, tag):
        self.assertTrue(lines[-1].startswith(tag.encode() + b" OK"), lines)
        return lines

    def test_subsets_by_uid_and_sequence(self):
        self._fill(10)
        dev = self._session()
        since = dev.hms
        other = self._session()
        for uid in (2, 5, 6, 9):
            self._ok(other.cmd("a", r"UID STORE %d +FLAGS (\Flagged)"
                               % uid), "a")
        # UID 1 goes: every sequence number shifts down by one
        self._ok(other.cmd("d", r"UID STORE 1 +FLAGS.SILENT (\Deleted)"),
                 "d")
        self._ok(other.cmd("x", "EXPUNGE"), "x")
        self._ok(dev.cmd("n", "NOOP"), "n")
        lines = self._ok(dev.cmd("f", "UID FETCH 3:6,9 (FLAGS) "
                                 "(CHANGEDSINCE %d)" % since), "f")
        got = fetches(lines)
        self.assertEqual(sorted(got), [5, 6, 9], lines)
        # dev selected first: it holds the \Recent claim (RFC 3501)
        self.assertTrue(all(v[2] == rb"\Flagged \Recent"
                            for v in got.values()),
                        got)
        # UIDs 5 and 6 are now messages 4 and 5
        self.assertEqual(got[5][0], 4)
        self.assertEqual(got[6][0], 5)
        lines = self._ok(dev.cmd("g", "FETCH 1:4 (FLAGS) "
                                 "(CHANGEDSINCE %d)" % since), "g")
        got = fetches(lines)
        self.assertEqual(sorted(got), [2, 5], lines)
        self.assertEqual([got[2][0], got[5][0]], [1, 4])
        # a set of unchanged messages only: nothing
        lines = self._ok(dev.cmd("h", "UID FETCH 3:4,7:8,10 (FLAGS) "
                                 "(CHANGEDSINCE %d)" % since), "h")
        self.assertEqual(fetches(lines), {}, lines)

    def test_seen_set_by_the_fetch_is_a_change(self):
        self._fill(4)
        dev = self._session()
        since = dev.hms
        # nothing changed after since, but BODY[] sets \Seen on 2:3
        lines = self._ok(dev.cmd("f", "FETCH 2:3 (BODY[]) "
                                 "(CHANGEDSINCE %d)" % since), "f")
        seqs = sorted(int(m.group(1)) for m in re.finditer(
            rb"^\* (\d+) FETCH \(", b"".join(lines), re.M))
        self.assertEqual(seqs, [2, 3], lines)
        text = b"".join(lines)
        self.assertEqual(text.count(rb"\Seen"), 2, lines)
        self.assertEqual(len(re.findall(rb"MODSEQ \((\d+)\)", text)), 2)
        for m in re.finditer(rb"MODSEQ \((\d+)\)", text):
            self.assertGreater(int(m.group(1)), since)
