"""SEARCH MODSEQ with an entry name (RFC 7162 3.1.5):
MODSEQ "/flags/<flag>" priv|shared|all n. The store keeps one MODSEQ per
message, not one per flag, so the RFC has the server ignore the entry name
and type after checking them: the result is that of MODSEQ n, with the
"(MODSEQ m)" of the highest hit (Dovecot 2.3 answers the same)."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


class ImapSearchModseqTest(ImapTestCase):

    def _ok(self, lines, tag):
        self.assertTrue(lines and lines[-1].startswith(tag.encode() + b" OK"),
                        lines)
        return lines

    def _search(self, r, q):
        lines = self._ok(r.cmd("x", q), "x")
        hits = [x for x in lines if x.startswith(b"* SEARCH") or
                x.startswith(b"* ESEARCH")]
        self.assertEqual(len(hits), 1, lines)
        return hits[0].rstrip(b"\r\n").decode()

    def test_entry_names_are_accepted_and_ignored(self):
        r = self.raw()
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        for i in range(4):
            body = MSG % (i, i)
            r.send("ap APPEND INBOX {%d+}\r\n" % len(body))
            r.send(body + b"\r\n")
            self._ok(r.read_until_tag("ap"), "ap")
        lines = self._ok(r.cmd("s", "SELECT INBOX (CONDSTORE)"), "s")
        base = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]",
                             b"".join(lines)).group(1))
        # three flag changes, each a new MODSEQ: 1 \Draft, 2 \Seen, 3 kw
        self._ok(r.cmd("a", r"STORE 1 +FLAGS.SILENT (\Draft)"), "a")
        self._ok(r.cmd("b", r"STORE 2 +FLAGS.SILENT (\Seen)"), "b")
        self._ok(r.cmd("c", "STORE 3 +FLAGS.SILENT ($Label1)"), "c")
        top = base + 3
        plain = self._search(r, "SEARCH MODSEQ %d" % (base + 1))
        self.assertEqual(plain, "* SEARCH 1 2 3 (MODSEQ %d)" % top)
        for entry in (r'"/flags/\\draft"', r'"/flags/\\Seen"',
                      r'"/flags/\\Answered"', '"/flags/$Label1"',
                      '"/flags/$MDNSent"', r'"/FLAGS/\\DELETED"'):
            for typ in ("priv", "shared", "all", "ALL"):
                q = "SEARCH MODSEQ %s %s %d" % (entry, typ, base + 1)
                self.assertEqual(self._search(r, q), plain, q)
        # the threshold is still the message MODSEQ: only 3 changed at top
        self.assertEqual(
            self._search(r, r'SEARCH MODSEQ "/flags/\\draft" all %d' % top),
            "* SEARCH 3 (MODSEQ %d)" % top)
        self.assertEqual(
            self._search(r, r'SEARCH MODSEQ "/flags/\\draft" all %d' %
                         (top + 1)), "* SEARCH")
        # combined with other keys, UID SEARCH and ESEARCH
        self.assertEqual(
            self._search(r, r'UID SEARCH UNSEEN MODSEQ "/flags/\\seen" '
                         r'shared %d' % (base + 1)),
            "* SEARCH 1 3 (MODSEQ %d)" % top)
        self.assertEqual(
            self._search(r, r'SEARCH RETURN (COUNT MAX) MODSEQ '
                         r'"/flags/\\seen" priv %d' % (base + 1)),
            '* ESEARCH (TAG "x") MAX 3 COUNT 3 MODSEQ %d' % top)
        # malformed entry names and types are BAD
        for q in (r'MODSEQ "/flags/\\Recent" all 1',
                  r'MODSEQ "/flags/\\Bogus" all 1',
                  'MODSEQ "/flags/" all 1',
                  'MODSEQ "flags/x" all 1',
                  'MODSEQ "/flags/a b" all 1',
                  'MODSEQ "/flags/x" any 1',
                  'MODSEQ "/flags/x" all',
                  'MODSEQ "/flags/x" 1'):
            lines = r.cmd("y", "SEARCH " + q)
            self.assertEqual(len(lines), 1, (q, lines))
            self.assertTrue(lines[0].startswith(b"y BAD"), (q, lines))
