"""The response-grammar checker (pgtest/imapgrammar.py) that every
integration test's protocol trace passes through: it must accept what the
RFCs allow and catch what they do not, or the suite-wide check proves
nothing. Also: a real Dovecot's answers to the same commands pass it."""
import unittest

from pgtest import imapgrammar

GREETING = (b"* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE IDLE NAMESPACE "
            b"UIDPLUS MOVE SPECIAL-USE CONDSTORE QRESYNC ESEARCH "
            b"LIST-STATUS] ready\r\n")

GOOD = [
    b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n",
    b"t1 OK [READ-WRITE] SELECT completed\r\n",
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft kw NIL)\r\n",
    b"* OK [PERMANENTFLAGS (\\Seen kw \\*)] Flags permitted\r\n",
    b"* 3 EXISTS\r\n* 0 RECENT\r\n* 2 EXPUNGE\r\n",
    b"* OK [UIDVALIDITY 17] x\r\n* OK [HIGHESTMODSEQ 9] y\r\n",
    b"* 1 FETCH (UID 4 FLAGS (\\Seen \\Recent) MODSEQ (7) "
    b"INTERNALDATE \" 1-Jan-2024 10:00:00 +0100\" RFC822.SIZE 12)\r\n",
    b"* 1 FETCH (BODY[HEADER.FIELDS (From \"To\")]<0> {5}\r\nabcde "
    b"BODY[] NIL)\r\n",
    b"* 1 FETCH (ENVELOPE (\"d\" NIL ((\"A\" NIL \"a\" \"b\")) NIL NIL "
    b"((NIL NIL \"g\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL \"<m>\"))\r\n",
    b"* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" (\"charset\" \"x\") "
    b"NIL NIL \"7bit\" 3 1 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL "
    b"NIL \"7bit\" 9 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
    b"(\"image\" \"png\" NIL NIL NIL \"base64\" 4) 2) \"mixed\" "
    b"(\"boundary\" \"b\") (\"inline\" NIL) (\"en\" \"de\") NIL 1 (2 NIL)))"
    b"\r\n",
    b"* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n",
    b"* LIST (\\Noselect \\HasChildren) \"/\" {3}\r\na b\r\n",
    b"* LSUB () NIL INBOX\r\n",
    b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 HIGHESTMODSEQ 4)\r\n",
    b"* SEARCH 1 2 (MODSEQ 5)\r\n* SEARCH\r\n",
    b"* ESEARCH (TAG \"t2\") UID MIN 1 MAX 9 COUNT 3 ALL 1,5:9 MODSEQ 4\r\n",
    b"* VANISHED (EARLIER) 1:3,7\r\n* VANISHED 4\r\n",
    b"* ENABLED CONDSTORE\r\n* ID (\"name\" \"x\" \"v\" NIL)\r\n",
    b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
    b"t3 OK [APPENDUID 5 7] APPEND completed\r\n",
    b"* OK [COPYUID 5 1:2 8:9] Moved\r\n",
    b"t4 NO [EXPUNGEISSUED] Some messages no longer exist\r\n",
    b"t5 OK [MODIFIED 1,3] Conditional STORE failed\r\n",
    b"* OK [CLOSED] Previous mailbox is now closed\r\n",
    b"+ idling\r\n+ \r\n+ dGVzdA==\r\n",
    b"* BYE Logging out\r\n",
]

BAD = [
    (b"* 1 FETCH (BODY[] {3}\r\na\x00b)\r\n", "NUL in a literal"),
    (b"* 0 FETCH (UID 1)\r\n", "message number 0"),
    (b"* 1 FETCH (UID 0)\r\n", "zero"),
    (b"* 1 FETCH (FLAGS (\\Seen)\r\n", "expected"),
    (b"* 1 FETCH (INTERNALDATE \"1-Jan-2024 10:00:00 +0100\")\r\n",
     "date"),
    (b"* LIST (\\Noselect \\NonExistent) \"/\" a\r\n", "sflag"),
    (b"* LIST (\\HasChildren \\HasNoChildren) \"/\" a\r\n", "HasChildren"),
    (b"* FLAGS (\\Seen \\Recent)\r\n", "Recent"),
    (b"t6 OK [HIGHESTMODSEQ 0] x\r\n", "zero"),
    (b"t7 OK\r\n", "expected SP"),
    (b"t8 OK [READ-WRITE]\r\n", "expected SP"),
    (b"* OK caf\xc3\xa9\r\n", "8-bit"),
    (b"* LIST () \"/\" \"caf\xc3\xa9\"\r\n", "8-bit"),
    (b"t9 MAYBE x\r\n", "OK, NO or BAD"),
    (b"* SEARCH 1 *\r\n", "expected a number"),
    (b"* VANISHED 1:*\r\n", "'*'"),
    (b"* 1 FETCH (BODY[] {3+}\r\nabc)\r\n", "non-synchronising"),
    (b"* 1 FETCH (BINARY[] ~{3}\r\nabc)\r\n", "BINARY"),
    (b"* STATUS INBOX (SIZE 4)\r\n", "STATUS=SIZE"),
    (b"* 1 FETCH (ENVELOPE (NIL NIL () NIL NIL NIL NIL NIL NIL NIL))\r\n",
     "empty address list"),
    (b"* ID (\"%s\" NIL)\r\n" % (b"f" * 31), "ID field"),
    (b"* XYZZY\r\n", "unknown response"),
    (b"* 1 FETCH (UID 1 UID 1)\r\n", "twice"),
    (b"+\r\n", "expected SP"),
    (b"* 1 FETCH (BODY (\"text\" \"plain\" NIL NIL NIL \"7bit\" 3))\r\n",
     "expected SP"),
]


class GrammarCheckerTest(unittest.TestCase):

    def test_accepts_what_the_rfcs_allow(self):
        for resp in GOOD:
            problems, truncated = imapgrammar.check(GREETING + resp)
            self.assertEqual(problems, [], resp)
            self.assertFalse(truncated, resp)

    def test_rejects_what_they_do_not(self):
        for resp, why in BAD:
            problems, _ = imapgrammar.check(GREETING + resp)
            self.assertTrue(problems, "accepted: %r" % resp)
            self.assertIn(why, problems[0][1], (resp, problems))

    def test_extension_responses_need_their_capability(self):
        plain = b"* OK [CAPABILITY IMAP4rev1] hi\r\n"
        for resp in (b"* VANISHED 1\r\n", b"* ESEARCH COUNT 1\r\n",
                     b"* 1 FETCH (MODSEQ (3))\r\n",
                     b"t OK [COPYUID 1 1 2] x\r\n", b"* ENABLED\r\n",
                     b"* LIST (\\Sent) \"/\" Sent\r\n"):
            problems, _ = imapgrammar.check(plain + resp)
            self.assertTrue(problems and "without" in problems[0][1],
                            (resp, problems))

    def test_notify_and_rev2(self):
        notify = (b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ENABLE ESEARCH "
                  b"LIST-EXTENDED NOTIFY] hi\r\n")
        for resp in (b"* OK [NOTIFICATIONOVERFLOW] off\r\n",
                     b"t NO [BADEVENT (MessageNew FlagChange)] no\r\n",
                     b"* LIST () \"/\" New (\"OLDNAME\" (Old))\r\n",
                     b"* LIST (\\NonExistent) \"/\" Gone\r\n",
                     b"* ENABLED IMAP4rev2\r\n* 3 EXISTS\r\n"
                     b"* LIST () \"/\" \"caf\xc3\xa9\"\r\n"
                     b"* ESEARCH (TAG \"t\") ALL 1:3\r\n"
                     b"* 1 FETCH (FLAGS (\\Seen))\r\n"):
            problems, _ = imapgrammar.check(notify + resp)
            self.assertEqual(problems, [], resp)
        plain = b"* OK [CAPABILITY IMAP4rev1 ENABLE] hi\r\n"
        for resp in (b"* OK [NOTIFICATIONOVERFLOW] off\r\n",
                     b"t NO [BADEVENT (MessageNew)] no\r\n",
                     b"* LIST () \"/\" New (\"OLDNAME\" (Old))\r\n"):
            problems, _ = imapgrammar.check(plain + resp)
            self.assertTrue(problems and "without" in problems[0][1],
                            (resp, problems))
        # after ENABLE IMAP4rev2: no \Recent, RECENT or SEARCH
        for resp, why in (
                (b"* 1 FETCH (FLAGS (\\Recent))\r\n", "IMAP4rev2"),
                (b"* 0 RECENT\r\n", "IMAP4rev2"),
                (b"* STATUS x (RECENT 0)\r\n", "IMAP4rev2"),
                (b"* SEARCH 1\r\n", "IMAP4rev2"),
                (b"t NO [BADEVENT ()] x\r\n", "")):
            problems, _ = imapgrammar.check(
                notify + b"* ENABLED IMAP4rev2\r\n" + resp)
            self.assertTrue(problems, resp)
            self.assertIn(why, problems[0][1], (resp, problems))

    def test_greeting_and_truncation(self):
        problems, _ = imapgrammar.check(b"t OK hi\r\n")
        self.assertTrue(problems)
        problems, _ = imapgrammar.check(b"* NO go away\r\n")
        self.assertTrue(problems)
        # cut short in a literal: truncated, not a problem
        problems, truncated = imapgrammar.check(
            GREETING + b"* 1 FETCH (BODY[] {10}\r\nabc")
        self.assertEqual(problems, [])
        self.assertTrue(truncated)
        # the checker goes on after a bad line
        problems, _ = imapgrammar.check(GREETING + b"* XYZZY\r\n"
                                        b"* 0 FETCH (UID 1)\r\n")
        self.assertEqual(len(problems), 2)
