"""Convergence of several devices (RFC 7162): three QRESYNC clients race
conditional flag changes and expunges on one mailbox, go offline and come
back with SELECT (QRESYNC ...). Each keeps a local model built only from
what the server told it; at the end every model equals the server's state,
and every conditional STORE failed exactly when the device's MODSEQ of the
message was stale. Deterministic (fixed seed), no timing assumptions."""
import random
import re

from imapd import ImapTestCase, USER, PASSWORD, uid_set
from test_imap_condstore import MSG

FLAGS = (rb"\Seen", rb"\Flagged", rb"\Answered", b"$Label1")
N_MSGS = 40
N_OPS = 300

LINE_FETCH = re.compile(rb"^\* \d+ FETCH \((.*)\)\r\n$")


def parse_set(text):
    out = set()
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        out.update(range(int(a), int(b or a) + 1))
    return out


class Device:
    """A client that knows only what the server said."""

    def __init__(self, test, name):
        self.test = test
        self.name = name
        self.model = {}		# uid -> (frozenset(flags), modseq)
        self.uidvalidity = None
        self.hms = None		# HIGHESTMODSEQ recorded at SELECT
        self.conn = None
        self.n = 0

    def cmd(self, text):
        self.n += 1
        tag = "%s%d" % (self.name, self.n)
        lines = self.conn.cmd(tag, text)
        self.test.assertTrue(lines and lines[-1].startswith(
            tag.encode() + b" OK"), (text, lines))
        self.apply(lines[:-1])
        return lines

    def apply(self, lines):
        for line in lines:
            self.test.assertNotIn(b" EXPUNGE\r\n", line)
            m = LINE_FETCH.match(line)
            if m:
                body = m.group(1)
                uid = int(re.search(rb"UID (\d+)", body).group(1))
                ms = int(re.search(rb"MODSEQ \((\d+)\)", body).group(1))
                fl = re.search(rb"FLAGS \(([^)]*)\)", body)
                if fl is not None:
                    # \Recent is per session, not shared state
                    flags = frozenset(fl.group(1).split()) - {b"\\Recent"}
                else:
                    flags = self.model[uid][0]
                self.model[uid] = (flags, ms)
                continue
            m = re.match(rb"^\* VANISHED (?:\(EARLIER\) )?([0-9:,]+)\r\n$",
                         line)
            if m:
                for u in parse_set(m.group(1)):
                    self.model.pop(u, None)
                continue
            m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", line)
            if m:
                self.hms = int(m.group(1))
            m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
            if m:
                self.uidvalidity = int(m.group(1))

    def connect(self):
        self.conn = self.test.raw()
        self.n += 1
        self.conn.cmd("l%d" % self.n, "LOGIN %s %s" % (USER, PASSWORD))
        self.cmd("ENABLE QRESYNC")
        if self.uidvalidity is None:
            self.cmd("SELECT INBOX")
            self.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
        else:
            self.cmd("SELECT INBOX (QRESYNC (%d %d %s))" % (
                self.uidvalidity, self.hms, uid_set(self.model) or "1"))

    def disconnect(self):
        self.n += 1
        self.conn.cmd("o%d" % self.n, "LOGOUT")
        self.conn.shutdown()
        self.conn = None


class ImapConvergenceTest(ImapTestCase):

    def test_three_devices_converge(self):
        c = self.tls()
        for i in range(N_MSGS):
            c.append("INBOX", None, None, MSG % (i, i))
        c.logout()
        rnd = random.Random(7162)
        devs = [Device(self, n) for n in "abc"]
        for d in devs:
            d.connect()
        truth = {}
        devs[0].cmd("UID FETCH 1:* (FLAGS MODSEQ)")
        truth.update(devs[0].model)
        conflicts = expunges = resyncs = 0
        for _ in range(N_OPS):
            d = rnd.choice(devs)
            if d.conn is None:
                d.connect()
                resyncs += 1
                self.assertEqual(d.model, truth, d.name)
                continue
            op = rnd.random()
            if op < 0.1:
                d.disconnect()
                continue
            if op < 0.2:
                d.cmd("NOOP")
                continue
            if not d.model:
                break
            uid = rnd.choice(sorted(d.model))
            known = d.model[uid][1]
            if op < 0.24 and uid in truth:
                # expunge: flag \Deleted conditionally, then UID EXPUNGE
                lines = d.cmd(r"UID STORE %d (UNCHANGEDSINCE %d) "
                              r"+FLAGS.SILENT (\Deleted)" % (uid, known))
                if b"[MODIFIED" in lines[-1]:
                    self.assertNotEqual(truth[uid][1], known)
                    conflicts += 1
                    continue
                d.cmd("UID EXPUNGE %d" % uid)
                self.assertNotIn(uid, d.model)
                del truth[uid]
                expunges += 1
                continue
            flag = rnd.choice(FLAGS)
            sign = rnd.choice("+-")
            lines = d.cmd("UID STORE %d (UNCHANGEDSINCE %d) %sFLAGS (%s)"
                          % (uid, known, sign, flag.decode()))
            stale = uid not in truth or truth[uid][1] != known
            if uid not in truth:
                # expunged elsewhere: the STORE finds nothing to change
                self.assertNotIn(uid, d.model)
                continue
            if b"[MODIFIED %d]" % uid in lines[-1]:
                self.assertTrue(stale, (d.name, uid, known, truth[uid]))
                conflicts += 1
                # the device now refreshes the message
                d.cmd("UID FETCH %d (FLAGS MODSEQ)" % uid)
            else:
                self.assertFalse(stale, (d.name, uid, known, truth[uid],
                                         lines))
            flags, ms = truth[uid]
            if not stale:
                flags = (flags | {flag}) if sign == "+" else \
                    (flags - {flag})
                if flags != truth[uid][0]:
                    ms = d.model[uid][1]
                    self.assertGreater(ms, truth[uid][1])
                truth[uid] = (frozenset(flags), ms)
            self.assertEqual(d.model[uid], truth[uid])
        for d in devs:
            if d.conn is None:
                d.connect()
            else:
                d.cmd("NOOP")
            self.assertEqual(d.model, truth, d.name)
        # a fresh client sees the same
        fresh = Device(self, "z")
        fresh.connect()
        self.assertEqual(fresh.model, truth)
        print(" conflicts=%d expunges=%d resyncs=%d left=%d"
              % (conflicts, expunges, resyncs, len(truth)), end="")
        self.assertGreater(conflicts, 0)
        self.assertGreater(expunges, 0)
        self.assertGreater(resyncs, 0)
