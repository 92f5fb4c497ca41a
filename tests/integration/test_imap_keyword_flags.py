"""A keyword new in a mailbox (STORE, APPEND or COPY by any session) is
announced to every session that has the mailbox selected with an untagged
FLAGS and PERMANENTFLAGS (RFC 3501 7.2.6) before any FETCH shows it: at
once in the session that made it and in IDLE, before the next command's
output elsewhere; PERMANENTFLAGS () for EXAMINE (as Dovecot 2.3)."""
import re

from imapd import ImapTestCase, USER, PASSWORD, append_big

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")

SYS = rb"\Answered \Flagged \Deleted \Seen \Draft"


def flags_lines(kws, readonly=False):
    k = b"".join(b" " + x for x in kws)
    return [b"* FLAGS (" + SYS + k + b")\r\n",
            b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n" if readonly
            else b"* OK [PERMANENTFLAGS (" + SYS + k +
            rb" \*)] Flags permitted" + b"\r\n"]


class ImapKeywordFlagsTest(ImapTestCase):

    def _ok(self, lines, tag):
        self.assertTrue(lines and lines[-1].startswith(tag.encode() + b" OK"),
                        lines)
        return lines

    def _session(self, select=None):
        r = self.raw()
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        if select:
            r.selected = self._ok(r.cmd("s", select), "s")
        return r

    def _append(self, r, box, i, flags=""):
        body = MSG % (i, i)
        r.send("ap APPEND %s %s{%d+}\r\n" % (box, flags, len(body)))
        r.send(body + b"\r\n")
        return self._ok(r.read_until_tag("ap"), "ap")

    def test_new_keyword_announced_to_every_session(self):
        a = self._session()
        self._ok(a.cmd("c", "CREATE KW"), "c")
        self._append(a, "KW", 0, "($Old) ")
        self._ok(a.cmd("s", "SELECT KW"), "s")
        b = self._session("SELECT KW")
        self.assertEqual(b.selected[:2], flags_lines([b"$Old"]))
        idler = self._session("SELECT KW")
        idler.send("i IDLE\r\n")
        self.assertTrue(idler.readline().startswith(b"+ "))
        ex = self._session("EXAMINE KW")
        self.assertEqual(ex.selected[:2], flags_lines([b"$Old"], True))

        # the session that creates the keyword: FLAGS first, then FETCH
        lines = self._ok(a.cmd("t", "STORE 1 +FLAGS (newkw)"), "t")
        self.assertEqual(lines[:2], flags_lines([b"$Old", b"newkw"]))
        self.assertRegex(lines[2], rb"^\* 1 FETCH \(FLAGS \(.*newkw\)\)")
        # IDLE hears it at once, in that order
        self.assertEqual([idler.readline(timeout=10) for _ in range(3)],
                         flags_lines([b"$Old", b"newkw"]) +
                         [b"* 1 FETCH (FLAGS ($Old newkw))\r\n"])
        # another command: the announcement comes before its own output
        lines = self._ok(b.cmd("f", "FETCH 1 (FLAGS)"), "f")
        self.assertEqual(lines[:2], flags_lines([b"$Old", b"newkw"]))
        self.assertEqual(lines[2], b"* 1 FETCH (FLAGS ($Old newkw))\r\n")
        lines = self._ok(ex.cmd("n", "NOOP"), "n")
        self.assertEqual(lines[:2], flags_lines([b"$Old", b"newkw"], True))
        # an existing keyword is not announced again
        self._ok(a.cmd("t", "STORE 1 -FLAGS (newkw)"), "t")
        lines = self._ok(a.cmd("t", "STORE 1 +FLAGS (newkw $Old)"), "t")
        self.assertFalse([x for x in lines if b"FLAGS (" + SYS in x], lines)
        idler.send("DONE\r\n")
        lines = self._ok(idler.read_until_tag("i"), "i")
        self.assertFalse([x for x in lines if b"FLAGS (" + SYS in x], lines)
        lines = self._ok(b.cmd("n", "NOOP"), "n")
        self.assertFalse([x for x in lines if b"FLAGS (" + SYS in x], lines)

        # APPEND with a new keyword into the selected mailbox
        lines = self._append(a, "KW", 1, "(apkw) ")
        self.assertEqual(lines[:-1], flags_lines([b"$Old", b"newkw",
                                                  b"apkw"]) +
                         [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"])
        lines = self._ok(b.cmd("n", "NOOP"), "n")
        self.assertEqual(lines[:2], flags_lines([b"$Old", b"newkw",
                                                 b"apkw"]))
        self.assertIn(b"* 2 EXISTS\r\n", lines)
        # COPY from elsewhere of a message with a keyword new to KW
        self._ok(a.cmd("c", "CREATE Other"), "c")
        self._append(a, "Other", 2, "(cpkw) ")
        self._ok(a.cmd("s", "SELECT Other"), "s")
        self._ok(a.cmd("cp", "COPY 1 KW"), "cp")
        lines = self._ok(b.cmd("n", "NOOP"), "n")
        want = [b"$Old", b"newkw", b"apkw", b"cpkw"]
        self.assertEqual(lines[:2], flags_lines(want))
        self.assertIn(b"* 3 EXISTS\r\n", lines)
        # and a new SELECT lists them all
        c = self._session("SELECT KW")
        self.assertEqual(c.selected[:2], flags_lines(want))

    def test_keyword_new_during_a_paused_fetch(self):
        """A keyword created while a big FETCH is paused on a client that
        does not read: no FETCH response of that FETCH shows it before
        the untagged FLAGS that announces it."""
        a = self._session()
        append_big(a, "INBOX")
        f = self.slow_reader()
        self._ok(f.cmd("s", "SELECT INBOX"), "s")
        f.send("f FETCH 1:* (FLAGS BODY.PEEK[])\r\n")
        self.assertTrue(f.readline().startswith(b"* 1 FETCH"))
        self._ok(a.cmd("s", "SELECT INBOX"), "s")
        self._ok(a.cmd("t", "STORE 8 +FLAGS (brandnew)"), "t")
        announced = False
        shown = []
        while True:
            line = f.readline()
            self.assertTrue(line, "connection closed")
            if line.startswith(b"f "):
                self.assertTrue(line.startswith(b"f OK"), line)
                break
            if line.startswith(b"* FLAGS ") and b"brandnew" in line:
                announced = True
            m = re.match(rb"^\* (\d+) FETCH \(FLAGS \(([^)]*)\)", line)
            if m and b"brandnew" in m.group(2).split():
                self.assertTrue(announced, line)
                shown.append(int(m.group(1)))
        # and the client does learn of it, on message 8
        self.assertIn(8, shown)
