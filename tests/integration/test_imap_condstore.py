"""CONDSTORE (RFC 7162 section 3): MODSEQ per message, HIGHESTMODSEQ,
FETCH (CHANGEDSINCE), STORE (UNCHANGEDSINCE) conflicts between two
sessions, SEARCH MODSEQ and the enabling rules."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")

FETCH_RE = re.compile(rb"^\* (\d+) FETCH \((.*)\)\r\n$")


def highestmodseq(lines):
    for line in lines:
        m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError("no HIGHESTMODSEQ in %r" % (lines,))


def fetches(lines):
    """{uid: (seq, modseq or None, flags bytes or None)} of FETCH lines."""
    out = {}
    for line in lines:
        m = FETCH_RE.match(line)
        if not m:
            continue
        body = m.group(2)
        uid = re.search(rb"UID (\d+)", body)
        ms = re.search(rb"MODSEQ \((\d+)\)", body)
        fl = re.search(rb"FLAGS \(([^)]*)\)", body)
        out[int(uid.group(1)) if uid else None] = (
            int(m.group(1)), int(ms.group(1)) if ms else None,
            fl.group(1) if fl else None)
    return out


class ImapCondstoreTest(ImapTestCase):

    def _fill(self, n):
        c = self.tls()
        for i in range(n):
            c.append("INBOX", None, None, MSG % (i, i))
        return c

    def _session(self, select="SELECT INBOX"):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        lines = r.cmd("s", select)
        self.assertTrue(lines[-1].startswith(b"s OK"), lines)
        r.hms = highestmodseq(lines)
        return r

    def _ok(self, lines, tag):
        self.assertTrue(lines[-1].startswith(tag.encode() + b" OK"), lines)
        return lines

    def test_capability_enable_status(self):
        self._fill(2)
        r = self.raw()
        caps = r.cmd("c", "CAPABILITY")
        self.assertIn(b" CONDSTORE", caps[0])
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        lines = self._ok(r.cmd("e", "ENABLE CONDSTORE"), "e")
        self.assertEqual(lines[0], b"* ENABLED CONDSTORE\r\n")
        # already on: not listed again (RFC 5161 3.1); unknown ignored
        lines = self._ok(r.cmd("e2", "ENABLE CONDSTORE X-UNKNOWN"), "e2")
        self.assertEqual(lines[0], b"* ENABLED\r\n")
        lines = self._ok(r.cmd("st", "STATUS INBOX (MESSAGES "
                               "HIGHESTMODSEQ)"), "st")
        m = re.search(rb"\(MESSAGES 2 HIGHESTMODSEQ (\d+)\)", lines[0])
        self.assertIsNotNone(m, lines)
        lines = self._ok(r.cmd("s", "SELECT INBOX"), "s")
        self.assertEqual(highestmodseq(lines), int(m.group(1)))
        # with CONDSTORE on, FETCH MODSEQ answers UID too
        lines = self._ok(r.cmd("f", "FETCH 1:* (MODSEQ)"), "f")
        got = fetches(lines)
        self.assertEqual(sorted(got), [1, 2])
        self.assertTrue(all(0 < v[1] <= int(m.group(1))
                            for v in got.values()), got)

    def test_implicit_enable_by_fetch_modseq(self):
        self._fill(1)
        r = self._session()
        lines = self._ok(r.cmd("f", "FETCH 1 (MODSEQ)"), "f")
        # the first CONDSTORE-using command while selected reports
        # HIGHESTMODSEQ (RFC 7162 3.1)
        self.assertEqual(highestmodseq(lines), r.hms)
        self.assertIn(b"MODSEQ (", lines[-2])
        lines = self._ok(r.cmd("e", "ENABLE CONDSTORE"), "e")
        self.assertEqual(lines[0], b"* ENABLED\r\n")

    def test_changedsince_returns_exactly_the_changed(self):
        self._fill(5)
        dev = self._session("SELECT INBOX (CONDSTORE)")
        since = dev.hms
        other = self._session()
        self._ok(other.cmd("a", r"STORE 2 +FLAGS (\Flagged)"), "a")
        self._ok(other.cmd("b", r"STORE 4 +FLAGS (\Seen)"), "b")
        lines = self._ok(dev.cmd("f", "UID FETCH 1:* (FLAGS) "
                                 "(CHANGEDSINCE %d)" % since), "f")
        got = fetches(lines)
        self.assertEqual(sorted(got), [2, 4], lines)
        # dev was the first to select: the messages are \Recent there
        self.assertEqual(got[2][2], rb"\Flagged \Recent")
        self.assertEqual(got[4][2], rb"\Seen \Recent")
        self.assertTrue(got[2][1] > since and got[4][1] > got[2][1], got)
        # nothing changed after the newest: empty answer
        lines = self._ok(dev.cmd("g", "UID FETCH 1:* (FLAGS) "
                                 "(CHANGEDSINCE %d)" % got[4][1]), "g")
        self.assertEqual(fetches(lines), {})
        # iOS-style full resync: CHANGEDSINCE 0 is every message, with
        # MODSEQ (and UID) though not asked for
        lines = self._ok(dev.cmd("h", "FETCH 1:* (FLAGS) "
                                 "(CHANGEDSINCE 0)"), "h")
        got0 = fetches(lines)
        self.assertEqual(sorted(got0), [1, 2, 3, 4, 5], lines)
        self.assertTrue(all(v[1] is not None for v in got0.values()))
        self.assertEqual(got0[4][1], got[4][1])
        # malformed modifiers are BAD
        for bad in ("(CHANGEDSINCE)", "(CHANGEDSINCE x)", "(FOO 1)",
                    "(CHANGEDSINCE 1 CHANGEDSINCE 2)"):
            lines = dev.cmd("x", "FETCH 1 (FLAGS) " + bad)
            self.assertTrue(lines[-1].startswith(b"x BAD"), (bad, lines))

    def test_unchangedsince_conflict_between_sessions(self):
        self._fill(3)
        a = self._session()
        b = self._session()
        lines = self._ok(a.cmd("m", "FETCH 1:3 (MODSEQ)"), "m")
        base = fetches(lines)
        m1 = base[1][1]
        lines = self._ok(b.cmd("m", "FETCH 1:3 (MODSEQ)"), "m")
        self.assertEqual(fetches(lines), base)
        # a wins the race on message 1
        lines = self._ok(a.cmd("s", r"STORE 1 (UNCHANGEDSINCE %d) "
                               r"+FLAGS (\Answered)" % m1), "s")
        got = fetches(lines)
        self.assertEqual(list(got), [1], lines)
        self.assertGreater(got[1][1], m1)
        self.assertEqual(got[1][2], rb"\Answered \Recent")
        self.assertEqual(lines[-1], b"s OK STORE completed\r\n")
        # b, still believing m1, loses on 1 but changes 2 and 3
        lines = b.cmd("s", r"STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\Seen)"
                      % max(v[1] for v in base.values()))
        self.assertEqual(lines[-1], b"s OK [MODIFIED 1] Conditional STORE "
                         b"failed\r\n", lines)
        got_b = fetches(lines)
        self.assertEqual(got_b[2][2], rb"\Seen")
        self.assertEqual(got_b[3][2], rb"\Seen")
        self.assertNotIn(b"\\Seen", got_b.get(1, (0, 0, b""))[2] or b"")
        # b hears a's change as UID + MODSEQ + FLAGS (CONDSTORE is on),
        # at the latest before the tagged response of its next command
        lines = lines + self._ok(b.cmd("n", "NOOP"), "n")
        self.assertIn(b"* 1 FETCH (UID 1 MODSEQ (%d) FLAGS (\\Answered))"
                      b"\r\n" % got[1][1], lines)
        # UNCHANGEDSINCE 0 always fails for existing messages; nothing
        # changes. UID STORE reports UIDs.
        lines = b.cmd("z", r"UID STORE 2:3 (UNCHANGEDSINCE 0) "
                      r"+FLAGS (\Draft)")
        self.assertEqual(lines[-1], b"z OK [MODIFIED 2:3] Conditional "
                         b"STORE failed\r\n", lines)
        lines = self._ok(b.cmd("v", "FETCH 2:3 (FLAGS)"), "v")
        self.assertFalse(any(b"Draft" in x for x in lines), lines)
        # non-UID STORE reports sequence numbers: expunge message 1
        self._ok(a.cmd("d", r"STORE 1 +FLAGS.SILENT (\Deleted)"), "d")
        self._ok(a.cmd("x", "EXPUNGE"), "x")
        lines = self._ok(a.cmd("m2", "UID FETCH 3 (MODSEQ)"), "m2")
        self.assertEqual(fetches(lines)[3][0], 2)
        self._ok(b.cmd("t", r"UID STORE 3 +FLAGS.SILENT (\Flagged)"), "t")
        m_old = fetches(lines)[3][1]
        lines = a.cmd("s2", r"STORE 1:2 (UNCHANGEDSINCE %d) -FLAGS "
                      r"(\Seen)" % m_old)
        self.assertEqual(lines[-1], b"s2 OK [MODIFIED 2] Conditional "
                         b"STORE failed\r\n", lines)
        # .SILENT with CONDSTORE still reports the new MODSEQ
        lines = self._ok(a.cmd("s3", r"UID STORE 2 +FLAGS.SILENT "
                               r"(\Flagged)"), "s3")
        self.assertTrue(any(re.match(rb"\* 1 FETCH \(UID 2 MODSEQ \(\d+\)"
                                     rb"\)\r\n", x) for x in lines), lines)
        # bad modifiers
        lines = a.cmd("y", r"STORE 1 (UNCHANGEDSINCE) +FLAGS (\Seen)")
        self.assertTrue(lines[-1].startswith(b"y BAD"), lines)
        lines = a.cmd("y2", r"STORE 1 (FOO 1) +FLAGS (\Seen)")
        self.assertTrue(lines[-1].startswith(b"y2 BAD"), lines)

    def test_search_modseq(self):
        self._fill(4)
        r = self._session()
        since = r.hms
        other = self._session()
        self._ok(other.cmd("a", r"STORE 2 +FLAGS (\Flagged)"), "a")
        lines = self._ok(other.cmd("b", r"STORE 4 +FLAGS (\Flagged)"), "b")
        top = fetches(lines)
        # other has not enabled CONDSTORE: plain FETCH FLAGS
        self.assertEqual(top, {None: (4, None, rb"\Flagged")})
        lines = self._ok(r.cmd("m", "FETCH 4 (MODSEQ)"), "m")
        m4 = fetches(lines)[4][1]
        lines = self._ok(r.cmd("s", "SEARCH MODSEQ %d" % (since + 1)), "s")
        self.assertIn(b"* SEARCH 2 4 (MODSEQ %d)\r\n" % m4, lines)
        # the entry name and type are accepted; the message MODSEQ counts
        lines = self._ok(r.cmd("s2", 'SEARCH MODSEQ "/flags/\\\\Flagged" all '
                               '%d' % (since + 1)), "s2")
        self.assertIn(b"* SEARCH 2 4 (MODSEQ %d)\r\n" % m4, lines)
        lines = self._ok(r.cmd("u", "UID SEARCH MODSEQ %d FLAGGED"
                               % (m4 + 1)), "u")
        self.assertIn(b"* SEARCH\r\n", lines)
        lines = self._ok(r.cmd("e", "UID SEARCH RETURN (MIN MAX COUNT ALL) "
                               "MODSEQ %d" % (since + 1)), "e")
        self.assertIn(b'* ESEARCH (TAG "e") UID MIN 2 MAX 4 COUNT 2 '
                      b'ALL 2,4 MODSEQ %d\r\n' % m4, lines)


class ImapEsearchListStatusTest(ImapTestCase):
    """ESEARCH (RFC 4731) and LIST-STATUS (RFC 5819)."""

    def test_esearch(self):
        c = self.tls()
        for i in range(6):
            c.append("INBOX", None, None, MSG % (i, i))
        r = self.raw()
        self.assertIn(b" ESEARCH", r.cmd("c", "CAPABILITY")[0])
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("s", "SELECT INBOX")
        r.cmd("f", r"STORE 2,4:5 +FLAGS (\Flagged)")
        lines = r.cmd("a", "SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED")
        self.assertEqual(lines, [b'* ESEARCH (TAG "a") MIN 2 MAX 5 COUNT 3 '
                                 b'ALL 2,4:5\r\n', b"a OK SEARCH completed"
                                 b"\r\n"])
        # RETURN () means ALL
        lines = r.cmd("b", "UID SEARCH RETURN () 3:*")
        self.assertEqual(lines[0], b'* ESEARCH (TAG "b") UID ALL 3:6\r\n')
        lines = r.cmd("d", "SEARCH RETURN (COUNT) DELETED")
        self.assertEqual(lines[0], b'* ESEARCH (TAG "d") COUNT 0\r\n')
        lines = r.cmd("e", "SEARCH RETURN (MIN MAX) DELETED")
        self.assertEqual(lines[0], b'* ESEARCH (TAG "e")\r\n')
        lines = r.cmd("g", "SEARCH RETURN (BOGUS) ALL")
        self.assertTrue(lines[-1].startswith(b"g BAD"), lines)

    def test_list_status(self):
        c = self.tls()
        for i in range(3):
            c.append("INBOX", None, None, MSG % (i, i))
        c.create("Work")
        r = self.raw()
        self.assertIn(b" LIST-STATUS", r.cmd("c", "CAPABILITY")[0])
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        lines = r.cmd("a", 'LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN '
                      'UIDNEXT))')
        self.assertTrue(lines[-1].startswith(b"a OK"), lines)
        i = [k for k, x in enumerate(lines) if x.startswith(b"* LIST") and
             x.endswith(b' INBOX\r\n')][0]
        self.assertEqual(lines[i + 1], b'* STATUS INBOX (MESSAGES 3 '
                         b'UNSEEN 3 UIDNEXT 4)\r\n')
        i = [k for k, x in enumerate(lines) if x.startswith(b"* LIST") and
             x.endswith(b' Work\r\n')][0]
        self.assertEqual(lines[i + 1], b'* STATUS Work (MESSAGES 0 '
                         b'UNSEEN 0 UIDNEXT 1)\r\n')
        lists = [x for x in lines if x.startswith(b"* LIST")]
        statuses = [x for x in lines if x.startswith(b"* STATUS")]
        self.assertEqual(len(lists), len(statuses), lines)
        # combined with other return options; HIGHESTMODSEQ too
        lines = r.cmd("b", 'LIST "" "INBOX" RETURN (SUBSCRIBED STATUS '
                      '(HIGHESTMODSEQ))')
        self.assertTrue(re.match(rb'\* STATUS INBOX \(HIGHESTMODSEQ '
                                 rb'\d+\)\r\n', lines[1]), lines)
        for bad in ("RETURN (STATUS (BOGUS))", "RETURN (STATUS)",
                    "RETURN (STATUS ())"):
            lines = r.cmd("x", 'LIST "" "*" ' + bad)
            self.assertTrue(lines[-1].startswith(b"x BAD"), (bad, lines))
