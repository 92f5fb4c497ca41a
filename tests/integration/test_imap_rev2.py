"""IMAP4rev2 (RFC 9051) beside IMAP4rev1: both advertised, ENABLE
IMAP4rev2 switching one session to rev2's rules (ESEARCH for SEARCH, no
\\Recent or RECENT, LIST in SELECT's answer, UTF-8 mailbox names, no
STATUS RECENT) while a rev1 session keeps rev1's; and SEARCHRES (RFC
5182, part of rev2): SEARCH RETURN (SAVE) and "$" in every command that
takes a message set and in SEARCH itself. The grammar checker (tearDown)
refuses \\Recent, RECENT and SEARCH responses after ENABLE IMAP4rev2."""
import re

from imapd import ImapTestCase, USER, PASSWORD


def msg(subject):
    return b"Subject: %s\r\n\r\nbody\r\n" % subject.encode()


class Rev2Test(ImapTestCase):

    def login(self, rev2=False):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        if rev2:
            self.assertEqual(self.ok(r, "ENABLE IMAP4rev2"),
                             [b"* ENABLED IMAP4rev2\r\n"])
        return r

    def ok(self, r, text, tag="t"):
        lines = r.cmd(tag, text)
        self.assertTrue(lines[-1].startswith(tag.encode() + b" OK"),
                        (text, lines))
        return lines[:-1]

    def bad(self, r, text):
        lines = r.cmd("b", text)
        self.assertTrue(lines[-1].startswith(b"b BAD"), (text, lines))

    def append(self, r, box, data):
        r.send(b"ap APPEND %s {%d+}\r\n" % (box.encode(), len(data)) + data +
               b"\r\n")
        lines = r.read_until_tag("ap")
        self.assertTrue(lines[-1].startswith(b"ap OK"), lines)

    def test_capabilities(self):
        r = self.raw()
        caps = r.cmd("c", "CAPABILITY")[0].split()
        for c in (b"IMAP4rev1", b"IMAP4rev2", b"SEARCHRES", b"ENABLE",
                  b"ESEARCH", b"LIST-EXTENDED", b"LIST-STATUS", b"MOVE",
                  b"BINARY", b"SPECIAL-USE", b"NAMESPACE", b"UNSELECT",
                  b"UIDPLUS", b"IDLE", b"SASL-IR", b"STATUS=SIZE",
                  b"LITERAL+"):
            self.assertIn(c, caps)

    def test_select_search_and_recent(self):
        b = self.login()
        for s in ("one", "two", "three"):
            self.append(b, "INBOX", msg(s))
        a = self.login(rev2=True)
        got = self.ok(a, "SELECT INBOX")
        self.assertIn(b"* 3 EXISTS\r\n", got)
        self.assertIn(b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n', got)
        self.assertFalse([l for l in got if b"RECENT" in l.upper() or
                          b"[UNSEEN" in l], got)
        # no \Recent in FETCH, though the messages are new to it
        self.assertEqual(self.ok(a, "FETCH 1:3 FLAGS"), [
            b"* %d FETCH (FLAGS ())\r\n" % i for i in (1, 2, 3)])
        # SEARCH answers with ESEARCH, RETURN (ALL) being the default
        self.assertEqual(self.ok(a, "SEARCH SUBJECT t"),
                         [b'* ESEARCH (TAG "t") ALL 2:3\r\n'])
        self.assertEqual(self.ok(a, "UID SEARCH ALL"),
                         [b'* ESEARCH (TAG "t") UID ALL 1:3\r\n'])
        self.assertEqual(self.ok(a, "SEARCH SUBJECT nothing"),
                         [b'* ESEARCH (TAG "t")\r\n'])
        self.assertEqual(self.ok(a, "SEARCH RETURN (COUNT) ALL"),
                         [b'* ESEARCH (TAG "t") COUNT 3\r\n'])
        # new mail: EXISTS, no RECENT
        self.append(b, "INBOX", msg("four"))
        self.assertEqual(self.ok(a, "NOOP"), [b"* 4 EXISTS\r\n"])
        got = self.ok(a, "EXAMINE Sent")
        self.assertIn(b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n', got)
        self.assertIn(b"* OK [CLOSED] Previous mailbox is now closed\r\n",
                      got)
        # STATUS: RECENT is gone, SIZE and DELETED are there
        self.bad(a, "STATUS INBOX (RECENT)")
        got = self.ok(a, "STATUS INBOX (MESSAGES SIZE DELETED)")
        self.assertRegex(got[0], rb'^\* STATUS "INBOX" \(MESSAGES 4 SIZE '
                         rb"\d+ DELETED 0\)\r\n$")
        # a rev1 session keeps rev1's rules
        self.ok(b, "SELECT INBOX")
        self.assertIn(b"* SEARCH 1 2 3 4\r\n", self.ok(b, "SEARCH ALL"))
        got = self.ok(b, "STATUS Sent (RECENT)")
        self.assertEqual(got, [b"* STATUS Sent (RECENT 0)\r\n"])

    def test_enable_while_selected(self):
        b = self.login()
        self.append(b, "INBOX", msg("one"))
        a = self.login()
        got = self.ok(a, "SELECT INBOX")
        self.assertIn(b"* 1 RECENT\r\n", got)
        self.assertEqual(self.ok(a, "ENABLE IMAP4rev2"),
                         [b"* ENABLED IMAP4rev2\r\n"])
        # from here on \Recent is not shown; a second ENABLE lists none
        self.assertEqual(self.ok(a, "FETCH 1 FLAGS"),
                         [b"* 1 FETCH (FLAGS ())\r\n"])
        self.assertEqual(self.ok(a, "ENABLE IMAP4rev2"), [b"* ENABLED\r\n"])

    def test_renamed_selected_mailbox(self):
        b = self.login()
        self.ok(b, "CREATE Old")
        a, c = self.login(rev2=True), self.login()
        n = self.login(rev2=True)
        for r in (a, c, n):
            self.ok(r, "SELECT Old")
        self.ok(n, "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                "(PERSONAL (MailboxName))")
        self.ok(b, "RENAME Old Mid")
        self.ok(b, "RENAME Mid New")
        # rev2: one LIST, the name it knew as OLDNAME, then it goes on
        self.assertEqual(self.ok(a, "NOOP"),
                         [b'* LIST () "/" "New" ("OLDNAME" ("Old"))\r\n'])
        self.assertEqual(self.ok(a, "NOOP"), [])
        # rev1: nothing (IMAP4rev1 has no such response)
        self.assertEqual(self.ok(c, "NOOP"), [])
        # NOTIFY's LISTs (pushed at once) stand in for it: no double
        self.assertEqual(self.ok(n, "NOOP"), [
            b'* LIST () "/" "Mid" ("OLDNAME" ("Old"))\r\n',
            b'* LIST () "/" "New" ("OLDNAME" ("Mid"))\r\n'])
        self.append(b, "New", msg("x"))
        self.assertEqual(self.ok(a, "NOOP"), [b"* 1 EXISTS\r\n"])

    def test_utf8_names_and_dollar_keywords(self):
        a = self.login(rev2=True)
        self.ok(a, 'CREATE "Café/Zoë"')
        got = self.ok(a, 'LIST "" "Caf*"')
        self.assertIn('* LIST (\\HasChildren) "/" "Café"\r\n'.encode(), got)
        self.assertIn('* LIST (\\HasNoChildren) "/" "Café/Zoë"\r\n'
                      .encode(), got)
        got = self.ok(a, 'EXAMINE "Café"')
        self.assertIn('* LIST (\\HasChildren) "/" "Café"\r\n'.encode(), got)
        # rev2's $-keywords (RFC 9051 2.3.2) are kept like any keyword
        self.append(a, "INBOX", msg("k"))
        self.ok(a, "SELECT INBOX")
        self.ok(a, "STORE 1 +FLAGS ($Forwarded $MDNSent $Junk $NotJunk "
                "$Phishing $SubmitPending $Submitted)")
        got = b"".join(self.ok(a, "FETCH 1 FLAGS"))
        for k in (b"$Forwarded", b"$MDNSent", b"$Junk", b"$NotJunk",
                  b"$Phishing", b"$SubmitPending", b"$Submitted"):
            self.assertIn(k, got)

    def test_searchres(self):
        for rev2 in (False, True):
            with self.subTest(rev2=rev2):
                self.searchres(self.login(rev2=rev2), rev2)

    def searchres(self, a, rev2):
        self.ok(a, "CREATE Dest%d" % rev2)
        for i in range(6):
            self.append(a, "INBOX", msg("m%d %s" % (i, "odd" if i % 2
                                                   else "even")))
        self.ok(a, "SELECT INBOX")
        self.ok(a, "STORE 1:* -FLAGS (\\Seen)")
        # "$" before any SAVE: the empty set
        self.assertEqual(self.ok(a, "FETCH $ UID"), [])
        # SAVE alone: no ESEARCH, nothing at all
        self.assertEqual(self.ok(a, "SEARCH RETURN (SAVE) SUBJECT odd"), [])
        got = self.ok(a, "FETCH $ (UID)")
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(got))]
        self.assertEqual(len(uids), 3)
        self.assertEqual(len(self.ok(a, "UID FETCH $ (FLAGS)")), 3)
        self.ok(a, "STORE $ +FLAGS (\\Flagged)")
        got = self.ok(a, "SEARCH RETURN (ALL) FLAGGED")
        self.assertEqual(got, [b'* ESEARCH (TAG "t") ALL 2,4,6\r\n'])
        # "$" as a SEARCH key, also inside OR / NOT
        self.assertEqual(self.ok(a, "SEARCH RETURN (ALL) $"),
                         [b'* ESEARCH (TAG "t") ALL 2,4,6\r\n'])
        self.assertEqual(self.ok(a, "SEARCH RETURN (ALL) OR $ 1"),
                         [b'* ESEARCH (TAG "t") ALL 1:2,4,6\r\n'])
        self.assertEqual(self.ok(a, "SEARCH RETURN (ALL) NOT $"),
                         [b'* ESEARCH (TAG "t") ALL 1,3,5\r\n'])
        # SAVE with other options: ESEARCH as asked; MIN/MAX alone save
        # only those messages
        self.assertEqual(self.ok(a, "SEARCH RETURN (SAVE MIN MAX) FLAGGED"),
                         [b'* ESEARCH (TAG "t") MIN 2 MAX 6\r\n'])
        self.assertEqual(self.ok(a, "SEARCH RETURN (ALL) $"),
                         [b'* ESEARCH (TAG "t") ALL 2,6\r\n'])
        # "$" holds UIDs: after an expunge it is still the same messages
        self.ok(a, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(a, "EXPUNGE")
        self.assertEqual(self.ok(a, "SEARCH RETURN (ALL) $"),
                         [b'* ESEARCH (TAG "t") ALL 1,5\r\n'])
        self.ok(a, "COPY $ Dest%d" % rev2)
        got = self.ok(a, "STATUS Dest%d (MESSAGES)" % rev2)
        self.assertEqual(got, [(b'* STATUS "Dest1"' if rev2 else
                                b"* STATUS Dest0") + b" (MESSAGES 2)\r\n"])
        self.ok(a, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(a, "SEARCH RETURN (SAVE) DELETED")
        self.ok(a, "UID EXPUNGE $")
        self.assertEqual(self.ok(a, "SEARCH RETURN (COUNT) ALL"),
                         [b'* ESEARCH (TAG "t") COUNT 4\r\n'])
        # a SEARCH that saves nothing: "$" empty
        self.ok(a, "SEARCH RETURN (SAVE) SUBJECT nothing")
        self.assertEqual(self.ok(a, "FETCH $ UID"), [])
        self.assertEqual(self.ok(a, "SEARCH RETURN (COUNT) $"),
                         [b'* ESEARCH (TAG "t") COUNT 0\r\n'])
        # SELECT forgets it
        self.ok(a, "SEARCH RETURN (SAVE) ALL")
        self.ok(a, "SELECT INBOX")
        self.assertEqual(self.ok(a, "FETCH $ UID"), [])
        self.ok(a, "SEARCH RETURN (SAVE) ALL")
        self.ok(a, "MOVE $ Dest%d" % rev2)
        got = self.ok(a, "STATUS INBOX (MESSAGES)")
        self.assertEqual(got, [(b'* STATUS "INBOX"' if rev2 else
                                b"* STATUS INBOX") + b" (MESSAGES 0)\r\n"])
        self.ok(a, "CLOSE")
        self.bad(a, "SEARCH RETURN (SAVE BOGUS) ALL")
        self.ok(a, "SELECT INBOX")
        # empty lists and no arguments at all go through "$"'s rewrite
        self.bad(a, "SEARCH")
        self.assertEqual(self.ok(a, "SEARCH RETURN () ALL"),
                         [b'* ESEARCH (TAG "t")\r\n'])
