"""SORT, ESORT and THREAD (RFC 5256, 5267) on the raw protocol: every
sort key, REVERSE, UID forms, search keys after the charset, RETURN
options, both THREAD algorithms on a small conversation, and the errors;
Python's imaplib sort() and thread() as a client."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSGS = [
    # (from, to, cc, date, subject, message-id, references)
    ("zed@a.example", "bob@x.example", "", "Mon, 02 Jan 2023 10:00:00 +0000",
     "Plans", "<1@a>", ""),
    ("amy@a.example", "carl@x.example", "dan@x.example",
     "Mon, 02 Jan 2023 09:00:00 -0300", "Re: Plans", "<2@a>", "<1@a>"),
    ("Kim <kim@a.example>", "al@x.example", "",
     "Sun, 01 Jan 2023 08:00:00 +0000", "=?utf-8?q?=C3=84pfel?=", "<3@a>",
     ""),
    ("bob@a.example", "zoe@x.example", "", "not a date", "[list] Fwd: Plans",
     "<4@a>", "<1@a> <2@a>"),
    ("carl@a.example", "", "", "Tue, 03 Jan 2023 10:00:00 +0000",
     "Other (fwd)", "<5@a>", "<missing@a>"),
]


def message(i, m):
    frm, to, cc, date, subj, mid, refs = m
    h = "From: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n" % (
        frm, subj, date, mid)
    if to:
        h += "To: %s\r\n" % to
    if cc:
        h += "Cc: %s\r\n" % cc
    if refs:
        h += "References: %s\r\n" % refs
    return (h + "\r\n" + "x" * (10 * (5 - i)) + "\r\n").encode()


class SortTest(ImapTestCase):

    def setUp(self):
        super().setUp()
        self.r = self.raw()
        self.assertIn(b" SORT", self.r.greeting)
        for cap in (b"ESORT", b"THREAD=ORDEREDSUBJECT", b"THREAD=REFERENCES"):
            self.assertIn(cap, self.r.greeting)
        self.r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        for i, m in enumerate(MSGS):
            data = message(i, m)
            # internal dates: the reverse of the order of delivery
            self.r.send('a APPEND INBOX "0%d-Feb-2023 10:00:00 +0000" '
                        '{%d+}\r\n' % (9 - i, len(data)))
            self.r.send(data + b"\r\n")
            self.assertTrue(self.r.read_until_tag("a")[-1].startswith(
                b"a OK"))
        self.r.cmd("s", "SELECT INBOX")

    def one(self, cmd, word):
        lines = self.r.cmd("t", cmd)
        self.assertTrue(lines[-1].startswith(b"t OK"), (cmd, lines))
        word = word.encode()
        got = [x for x in lines if x.startswith(b"* " + word)]
        self.assertEqual(len(got), 1, lines)
        return got[0][len(word) + 2:].strip().decode()

    def test_sort_keys(self):
        cases = {
            # RFC 5256: DATE is the Date: header in UTC, else INTERNALDATE
            # (message 4's date is bad: 06-Feb-2023)
            "(DATE)": "3 1 2 5 4",
            "(REVERSE DATE)": "4 5 2 1 3",
            "(ARRIVAL)": "5 4 3 2 1",
            # base subjects: plans, plans, äpfel, plans, other
            "(SUBJECT)": "5 1 2 4 3",
            "(SUBJECT DATE)": "5 1 2 4 3",
            "(SUBJECT REVERSE DATE)": "5 4 2 1 3",
            # FROM: the mailbox (local part) of the first address
            "(FROM)": "2 4 5 3 1",
            "(TO)": "5 3 1 2 4",
            # empty CC sorts first, ties by sequence number
            "(CC)": "1 3 4 5 2",
        }
        sizes = [len(message(i, m)) for i, m in enumerate(MSGS)]
        by_size = sorted(range(1, 6), key=lambda n: (sizes[n - 1], n))
        cases["(SIZE)"] = " ".join(map(str, by_size))
        cases["(REVERSE SIZE)"] = " ".join(map(str, sorted(
            range(1, 6), key=lambda n: (-sizes[n - 1], n))))
        for crit, want in cases.items():
            self.assertEqual(self.one("SORT %s UTF-8 ALL" % crit, "SORT"),
                             " ".join(want.split()), crit)
        # search keys after the charset; UID SORT answers UIDs
        self.assertEqual(self.one('SORT (DATE) US-ASCII SUBJECT plans',
                                  "SORT"), "1 2 4")
        self.assertEqual(self.one('UID SORT (REVERSE ARRIVAL) UTF-8 2:4',
                                  "SORT"), "2 3 4")
        self.assertEqual(self.one('SORT (DATE) UTF-8 DELETED', "SORT"), "")

    def test_esort(self):
        got = self.one("SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL",
                       "ESEARCH")
        self.assertEqual(got, '(TAG "t") MIN 3 MAX 4 COUNT 5 ALL 3,1:2,5,4')
        got = self.one("UID SORT RETURN (COUNT) (DATE) UTF-8 ALL", "ESEARCH")
        self.assertEqual(got, '(TAG "t") UID COUNT 5')
        got = self.one("SORT RETURN () (ARRIVAL) UTF-8 ALL", "ESEARCH")
        self.assertEqual(got, '(TAG "t") ALL 5,4,3,2,1')

    def test_thread(self):
        # ORDEREDSUBJECT: by base subject, each group's first is the
        # parent; groups by the first one's date
        self.assertEqual(self.one("THREAD ORDEREDSUBJECT UTF-8 ALL",
                                  "THREAD"), "(3)(1 (2)(4))(5)")
        # REFERENCES: 2 replies to 1, 4 to 2; 5's parent is missing
        self.assertEqual(self.one("THREAD REFERENCES UTF-8 ALL", "THREAD"),
                         "(3)(1 2 4)(5)")
        self.assertEqual(self.one("UID THREAD REFERENCES UTF-8 ALL",
                                  "THREAD"), "(3)(1 2 4)(5)")
        self.assertEqual(self.one("THREAD REFERENCES UTF-8 NOT 2",
                                  "THREAD"), "(3)(1 4)(5)")

    def test_searchres(self):
        # "$" (SEARCHRES, RFC 5182) as a search key of SORT and THREAD
        self.assertEqual(self.one("SORT (DATE) UTF-8 $", "SORT"), "")
        lines = self.r.cmd("v", "SEARCH RETURN (SAVE) SUBJECT plans")
        self.assertTrue(lines[-1].startswith(b"v OK"), lines)
        self.assertEqual(self.one("SORT (DATE) UTF-8 $", "SORT"), "1 2 4")
        self.assertEqual(self.one("SORT (REVERSE DATE) UTF-8 NOT $",
                                  "SORT"), "5 3")
        self.assertEqual(self.one("UID SORT (SUBJECT) UTF-8 OR $ 3",
                                  "SORT"), "1 2 4 3")
        self.assertEqual(self.one("SORT RETURN (COUNT) (DATE) UTF-8 $",
                                  "ESEARCH"), '(TAG "t") COUNT 3')
        self.assertEqual(self.one("THREAD REFERENCES UTF-8 $", "THREAD"),
                         "(1 2 4)")
        self.assertEqual(self.one("THREAD ORDEREDSUBJECT UTF-8 (NOT $)",
                                  "THREAD"), "(3)(5)")
        # "$" holds UIDs: the same messages after message 1 is expunged
        self.r.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertTrue(self.r.cmd("e", "EXPUNGE")[-1].startswith(b"e OK"))
        self.assertEqual(self.one("SORT (DATE) UTF-8 $", "SORT"), "1 3")
        self.assertEqual(self.one("UID SORT (DATE) UTF-8 $", "SORT"),
                         "2 4")

    def test_errors(self):
        for cmd in ("SORT DATE UTF-8 ALL", "SORT () UTF-8 ALL",
                    "SORT (REVERSE) UTF-8 ALL", "SORT (DATE BOGUS) UTF-8 ALL",
                    "SORT (DATE)", "SORT (DATE) UTF-8",
                    "SORT RETURN (PARTIAL 1:5) (DATE) UTF-8 ALL",
                    "SORT (DATE) UTF-8 RETURN (ALL) ALL",
                    "THREAD UTF-8 ALL", "THREAD X-FOO UTF-8 ALL",
                    "THREAD REFERENCES ALL"):
            lines = self.r.cmd("b", cmd)
            self.assertTrue(lines[-1].startswith(b"b BAD"), (cmd, lines))
        lines = self.r.cmd("c", "SORT (DATE) KOI8-R ALL")
        self.assertTrue(lines[-1].startswith(b"c NO [BADCHARSET"), lines)
        self.r.cmd("u", "UNSELECT")
        lines = self.r.cmd("d", "SORT (DATE) UTF-8 ALL")
        self.assertTrue(lines[-1].startswith(b"d BAD"), lines)

    def test_imaplib(self):
        c = self.plain()
        c.select("INBOX")
        typ, data = c.sort("(DATE)", "UTF-8", "ALL")
        self.assertEqual((typ, data), ("OK", [b"3 1 2 5 4"]))
        typ, data = c.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual((typ, data), ("OK", [b"(3)(1 2 4)(5)"]))
