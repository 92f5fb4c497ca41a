"""SORT and THREAD from the key records stored at delivery against the
same answers built from the messages themselves (a store written before
the records existed): one server, one store. Its INBOX is loaded with
imapd_test --no-sortkeys (no records: every SORT builds the keys from the
cached structure and the header block), and the same messages are
APPENDed, with the same INTERNALDATE, into another mailbox (APPEND stores
the records). Every SORT, ESORT and THREAD must answer the same on both,
and the server's debug log says which path each one took."""
import os
import random
import re

from imapd import ImapTestCase, Server, USER, PASSWORD

COUNT = 240

SUBJECTS = [
    "Plans", "Re: Plans", "RE: [list] Fwd: Plans", "plans (fwd)",
    "[Fwd: Re: Plans]", "=?utf-8?q?Re:_=C3=84pfel?=", "\u00c4pfel",
    "=?iso-8859-1?q?=C4pfel_und_Birnen?=", "=?UTF-8?B?W2xpc3RdIEJ1ZGdldA==?=",
    "Budget", "Fw: budget", "[bug] [list]", "Re:", "",
    "Folded\r\n subject\r\n\tline", "Re: re: RE: Budget (FWD)",
]
ZONES = ["+0000", "-0300", "+0530", "+1400", "-1200"]
NAMES = ["zed", "Amy", "bob", "CARL", "d\u00e9lia", "eve"]


def corpus(rnd):
    """COUNT varied messages (bytes), the same every run."""
    out = []
    for i in range(COUNT):
        h = []
        r = rnd.random()
        if r < 0.75:
            h.append("Date: %s, %02d Jan 2023 %02d:%02d:00 %s" % (
                ["Mon", "Tue", "Wed"][i % 3], 1 + rnd.randrange(28),
                rnd.randrange(24), rnd.randrange(60), rnd.choice(ZONES)))
        elif r < 0.88:
            h.append("Date: not a date at all")
        # else: no Date: at all
        s = rnd.choice(SUBJECTS)
        if rnd.random() < 0.93:
            h.append("Subject: " + s)
        for field in ("From", "To", "Cc"):
            r = rnd.random()
            if r < 0.6:
                h.append("%s: %s@example.org" % (field, rnd.choice(NAMES)))
            elif r < 0.75:
                h.append('%s: "%s" <%s@a.example>, other@b.example' % (
                    field, rnd.choice(NAMES), rnd.choice(NAMES)))
            elif r < 0.85:
                h.append("%s: group:;, %s@c.example" % (
                    field, rnd.choice(NAMES)))
        if rnd.random() < 0.9:
            # some ids repeat (RFC 5256 4: duplicates get dummy ids)
            h.append("Message-ID: <m%d@x>" % (i if rnd.random() < 0.95
                                             else rnd.randrange(COUNT)))
        refs = ["<m%d@x>" % rnd.randrange(COUNT)
                for _ in range(rnd.randrange(5))]
        r = rnd.random()
        if refs and r < 0.6:
            h.append("References: " + "\r\n ".join(refs))
        elif refs and r < 0.8:
            h.append("In-Reply-To: " + " ".join(refs))
        elif refs and r < 0.9:
            h.append("In-Reply-To: <nowhere@x>")
            h.append("References: %s (comment)" % refs[-1])
        body = "x" * rnd.randrange(1, 400)
        out.append(("\r\n".join(h) + "\r\n\r\n" + body + "\r\n").encode())
    return out


COMMANDS = [
    "SORT (DATE) UTF-8 ALL", "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (ARRIVAL) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL",
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "SORT (FROM) UTF-8 ALL",
    "SORT (TO DATE) UTF-8 ALL", "SORT (REVERSE CC SIZE) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL", "UID SORT (SUBJECT FROM) UTF-8 ALL",
    "SORT (DATE) UTF-8 SUBJECT plans", "SORT (FROM) US-ASCII 10:90",
    "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
    "UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 NOT SUBJECT budget",
    "THREAD ORDEREDSUBJECT UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL", "THREAD REFERENCES UTF-8 1:100",
    "UID THREAD ORDEREDSUBJECT UTF-8 SINCE 1-Jan-2000",
]


class SortKeysTest(ImapTestCase):
    server_args = ("--log-level", "debug")
    # --eml prints what it loaded (not a log line)
    log_skip = ImapTestCase.log_skip + ("index user=",)

    def setUp(self):
        # the server of ImapTestCase, but with an INBOX loaded without
        # key records
        self.msgs = corpus(random.Random(5256))
        base = os.path.join(self.tmp_root, "eml-%s" % self._testMethodName)
        os.makedirs(base)
        for i, m in enumerate(self.msgs):
            with open(os.path.join(base, "%05d.eml" % i), "wb") as f:
                f.write(m)
        self.tmp = os.path.join(self.tmp_root, self._testMethodName)
        os.makedirs(self.tmp)
        self.srv = Server(self.tmp, self.ca,
                          self.server_args + ("--no-sortkeys",),
                          eml=(USER, base))
        self.clients = []
        self.r = self.raw()
        self.r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))

    def answer(self, cmd):
        lines = self.r.cmd("t", cmd)
        self.assertTrue(lines[-1].startswith(b"t OK"), (cmd, lines[-1]))
        got = [x for x in lines if re.match(rb"\* (SORT|THREAD|ESEARCH)",
                                            x)]
        self.assertEqual(len(got), 1, (cmd, lines))
        return got[0]

    def built(self):
        """(messages, keys_built, cached) of every SORT/THREAD logged so
        far, in order."""
        return [tuple(int(g) for g in m.groups()) for m in re.finditer(
            r"event=sort command=\w+ messages=(\d+) keys_built=(\d+) "
            r"cached=(\d+)", self.srv.log())]

    def test_same_answers_with_and_without_records(self):
        r = self.r
        r.cmd("c", "CREATE Keyed")
        r.cmd("s", "SELECT INBOX")
        dates = {}
        for line in r.cmd("f", "FETCH 1:* (INTERNALDATE)")[:-1]:
            m = re.match(rb'\* (\d+) FETCH \(INTERNALDATE "([^"]+)"\)', line)
            dates[int(m.group(1))] = m.group(2).decode()
        self.assertEqual(len(dates), COUNT)
        # the same messages in the same order, with the same INTERNALDATE:
        # APPEND computes and stores their key records
        for i, data in enumerate(self.msgs):
            r.send('a%d APPEND Keyed "%s" {%d+}\r\n' % (
                i, dates[i + 1], len(data)))
            r.send(data + b"\r\n")
        for i in range(COUNT):
            self.assertTrue(r.read_until_tag("a%d" % i, 120)[-1].startswith(
                b"a%d OK" % i))
        old = {}
        for cmd in COMMANDS:
            old[cmd] = self.answer(cmd)
        n_old = len(self.built())
        r.cmd("s", "SELECT Keyed")
        for cmd in COMMANDS:
            self.assertEqual(self.answer(cmd), old[cmd], cmd)
        built = self.built()
        self.assertEqual(len(built), 2 * len(COMMANDS))
        # INBOX: every message's keys were built at SORT time (ARRIVAL and
        # SIZE alone need none) by THREAD and by the first SORT; the later
        # SORTs took them from the ranks the server keeps
        # (imap-sortcache.h); Keyed: none built, all read from the records
        # and then from the kept ranks
        for keyed, box in ((False, built[:n_old]), (True, built[n_old:])):
            first = True
            for cmd, (n, b, c) in zip(COMMANDS, box):
                if re.search(r"\((ARRIVAL|SIZE)\)", cmd):
                    self.assertEqual((b, c), (0, 0), cmd)
                elif "THREAD" in cmd:
                    self.assertEqual((b, c), (0 if keyed else n, 0), cmd)
                elif first:
                    self.assertEqual((b, c), (0 if keyed else n, 0), cmd)
                    first = False
                else:
                    self.assertEqual((b, c), (0, n), cmd)
        # THREADID (RFC 8474) reads the same records, and builds them
        # alike for messages stored without one
        def tids():
            lines = r.cmd("f", "FETCH 1:* (THREADID)")
            self.assertTrue(lines[-1].startswith(b"f OK"), lines[-1])
            return re.findall(rb"THREADID \((T[0-9a-f]{16})\)",
                              b"".join(lines))
        def shared(ts):
            # a message without any msg-id is a thread of its own, named
            # by its EMAILID (top bit set): those differ between copies
            return [t if t[1:2] in b"01234567" else b"own" for t in ts]
        keyed = tids()
        r.cmd("s", "SELECT INBOX")
        self.assertEqual(shared(tids()), shared(keyed))
        self.assertEqual(len(keyed), COUNT)
        self.assertGreater(shared(keyed).count(b"own"), 0)
        self.assertLess(len(set(keyed)), COUNT)   # some threads
        # the answers say something: all messages, threads nested
        self.assertEqual(len(old["SORT (DATE) UTF-8 ALL"].split()),
                         2 + COUNT)
        self.assertIn(b"((", old["THREAD REFERENCES UTF-8 ALL"] + b"(")
        self.assertRegex(old["THREAD REFERENCES UTF-8 ALL"],
                         rb"\(\d+ \d+ \(\d+")

    def test_copy_shares_the_records(self):
        # COPY adds an index entry, not bytes: the copy of a message
        # stored without a record has none either, one with a record
        # keeps it; both answer as their source
        r = self.r
        r.cmd("c", "CREATE Keyed")
        r.cmd("c", "CREATE Both")
        for i, data in enumerate(self.msgs[:40]):
            r.send('a%d APPEND Keyed {%d+}\r\n' % (i, len(data)))
            r.send(data + b"\r\n")
        for i in range(40):
            self.assertTrue(r.read_until_tag("a%d" % i, 120)[-1].startswith(
                b"a%d OK" % i))
        r.cmd("s", "SELECT INBOX")
        r.cmd("c", "COPY 1:40 Both")
        r.cmd("s", "SELECT Keyed")
        r.cmd("c", "COPY 1:40 Both")
        r.cmd("s", "SELECT Both")
        cmd = "THREAD REFERENCES UTF-8 ALL"
        both = self.answer(cmd)
        self.assertEqual(self.built()[-1][:2], (80, 40))
        # messages 1-40 and 41-80 are the same mail: each thread of one
        # half has its twin in the other (duplicate Message-IDs)
        a = self.answer("THREAD REFERENCES UTF-8 1:40")
        b = self.answer("THREAD REFERENCES UTF-8 41:80")
        self.assertEqual(
            re.sub(rb"\d+", lambda m: b"%d" % (int(m.group(0)) + 40), a),
            b)
        self.assertTrue(both.startswith(b"* THREAD ("))

    def test_kept_ranks_answer_as_fresh_after_changes(self):
        # SORT keeps each mailbox's keys as ranks between commands
        # (imap-sortcache.h) and merges new messages into them. After
        # APPENDs (new subjects and senders sorting between the known
        # ones, from another session), COPY in and EXPUNGE, the SORTs of
        # the changed mailbox must answer as the same SORTs over a copy
        # of it that no SORT has seen yet.
        sorts = [c for c in COMMANDS if "SORT" in c and "UID" not in c]
        r = self.r
        r.cmd("s", "SELECT INBOX")
        warm = [self.answer(cmd) for cmd in sorts]
        r2 = self.raw()
        r2.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r2.cmd("c", "CREATE Other")
        rnd = random.Random(14)
        novel = ["Aardvark", "Re: plans 2", "\u00c4pfel und Birnen 2",
                 "mmm", "zzz", "budget (fwd)", "[list] Zebra"]
        for i in range(30):
            box = "INBOX" if i % 3 else "Other"
            data = self.msgs[rnd.randrange(COUNT)]
            data = re.sub(rb"(?m)^Subject: [^\r]*", (
                "Subject: %s" % rnd.choice(novel)).encode(), data)
            data = re.sub(rb"(?m)^From: [^\r]*", (
                "From: new%d@example.org" % rnd.randrange(9)).encode(), data)
            lines = r2.cmd("a", "APPEND %s {%d+}\r\n%s" % (
                box, len(data), data.decode()))
            self.assertTrue(lines[-1].startswith(b"a OK"), lines[-1])
        r2.cmd("s", "SELECT Other")
        self.assertTrue(r2.cmd("c", "COPY 1:5 INBOX")[-1].startswith(
            b"c OK"))
        # another session's SORT merges the new messages in first
        r2.cmd("s", "SELECT INBOX")
        lines = r2.cmd("t", "SORT (SUBJECT) UTF-8 ALL")
        self.assertTrue(lines[-1].startswith(b"t OK"), lines[-1])
        r.cmd("n", "NOOP")
        deleted = sorted(rnd.sample(range(1, COUNT + 1), 40))
        r.cmd("d", "STORE %s +FLAGS.SILENT (\\Deleted)" %
              ",".join(str(x) for x in deleted))
        self.assertTrue(r.cmd("e", "EXPUNGE")[-1].startswith(b"e OK"))
        n_log = len(self.built())
        kept = [self.answer(cmd) for cmd in sorts]
        # these came from the kept ranks: each SORT found every message
        # there or built the few that arrived
        for cmd, (n, b, c) in zip(sorts, self.built()[n_log:]):
            if not re.search(r"\((ARRIVAL|SIZE)\)", cmd):
                self.assertGreater(c, 0, cmd)
        self.assertNotEqual(kept[sorts.index("SORT (SUBJECT) UTF-8 ALL")],
                            warm[sorts.index("SORT (SUBJECT) UTF-8 ALL")])
        r.cmd("c", "CREATE Fresh")
        self.assertTrue(r.cmd("c", "COPY 1:* Fresh")[-1].startswith(b"c OK"))
        r.cmd("s", "SELECT Fresh")
        n_log = len(self.built())
        fresh = [self.answer(cmd) for cmd in sorts]
        first = [x for cmd, x in zip(sorts, self.built()[n_log:])
                 if not re.search(r"\((ARRIVAL|SIZE)\)", cmd)][0]
        self.assertEqual(first[2], 0)     # nothing kept for Fresh yet
        for cmd, a, b in zip(sorts, kept, fresh):
            self.assertEqual(a, b, cmd)
