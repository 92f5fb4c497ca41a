"""Issue 17, moving a user between nodes: `popgatectl user export` on node
a, `popgatectl user import` on node b. A device that remembered
UIDVALIDITY and HIGHESTMODSEQ (imaplib, ENABLE QRESYNC) reconnects to b
with SELECT (QRESYNC ...) and hears only of what changed after the move;
the upstream account (the real Dovecot, keep mode) is polled by b without
fetching again what a fetched (RETRs counted in Dovecot's log). A file that
is cut, changed or opened with another passphrase imports nothing; the
offline checker is clean on b."""
import imaplib
import os
import re
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway

PASS = "correct horse battery staple"
POP_SECRET = "pop-Secret-4711"


def retrs(dovecot):
    """RETRs Dovecot served, from its logout lines (retr=N/bytes)."""
    return sum(int(n) for n in re.findall(r"retr=(\d+)/",
                                          dovecot.log_text()))


def imap(gw, user="alice", password="alice-pw"):
    c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=30)
    c.login(user, password)
    return c


def qresync_select(c, box, uv, hms):
    """SELECT box (QRESYNC (uv hms)); returns (status, untagged dict)."""
    c.untagged_responses.clear()
    typ, data = c._simple_command("SELECT", box,
                                  "(QRESYNC (%d %d))" % (uv, hms))
    c.state = "SELECTED"
    return typ, {k: list(v) for k, v in c.untagged_responses.items()}


class UserMoveTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("alice", POP_SECRET)
        self.dc.start()
        self.a = Gateway(os.path.join(self.tmp, "a"), self.ca)
        self.b = Gateway(os.path.join(self.tmp, "b"), self.ca)
        self.a.start()
        self.b.start()
        self.passfile = os.path.join(self.tmp, "transfer.pass")
        with open(self.passfile, "w") as f:
            f.write(PASS + "\n")
        self.export = os.path.join(self.tmp, "alice.pgmove")

    def tearDown(self):
        for g in (self.a, self.b):
            g.stop()
        self.dc.stop()

    def wait_fetched(self, gw, n, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            st = gw.ok({"command": "status", "user": "alice"})
            s = st["accounts"][0]["status"]
            if s.get("messages_fetched", 0) >= n:
                return s
            self.assertLess(time.monotonic(), deadline, st)
            time.sleep(0.2)

    def prepare_source(self):
        """alice on a: 4 upstream messages fetched (keep mode), a folder
        with a keyword message, flags, one expunge, a subscription."""
        self.dc.add_messages("alice", [make_message(i, 1500 + 300 * i)
                                       for i in range(4)])
        self.a.ok({"command": "user.add", "user": "alice",
                   "password": "alice-pw"})
        self.a.ok({"command": "account.add", "user": "alice",
                   "host": "127.0.0.1", "port": self.dc.port,
                   "tls": "stls", "login": "alice", "password": POP_SECRET,
                   "account": "legacy", "mode": "keep", "interval": 3600})
        self.a.ok({"command": "poll", "user": "alice"})
        self.wait_fetched(self.a, 4)
        self.assertEqual(retrs(self.dc), 4)
        c = imap(self.a)
        c.create("Work")
        c.subscribe("Work")
        c.append("Work", r"(\Seen $Project)", None,
                 b"Subject: kept\r\n\r\nwork mail\r\n")
        c.select("INBOX")
        c.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
        c.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
        c.expunge()
        c.uid("COPY", "2", "Work")          # a body shared by two mailboxes
        c.logout()

    def device_state(self, gw):
        """The device: ENABLE QRESYNC, SELECT INBOX; its memory."""
        c = imap(gw)
        c.enable("QRESYNC")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        uv = int(c.untagged_responses["UIDVALIDITY"][0])
        text = " ".join(x.decode() if isinstance(x, bytes) else str(x)
                        for x in c.untagged_responses.get("OK", []))
        hms = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
        typ, data = c.uid("FETCH", "1:*", "(FLAGS MODSEQ)")
        seen = sorted(x.decode() for x in data if x)
        c.logout()
        return uv, hms, seen

    def export_ok(self):
        r = self.a.ctl("user", "export", "alice", self.export,
                       "--passphrase-file", self.passfile)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("exported alice", r.stdout)
        return r

    def assert_no_alice(self, gw):
        users = [u["name"] for u in gw.ok({"command": "user.list"})["users"]]
        self.assertNotIn("alice", users)

    def test_move_keeps_qresync_and_ledger(self):
        self.prepare_source()
        uv, hms, before = self.device_state(self.a)
        self.export_ok()
        with open(self.export, "rb") as f:
            blob = f.read()
        self.assertEqual(os.stat(self.export).st_mode & 0o777, 0o600)
        # never a secret in clear, and never the node's own sealing
        self.assertNotIn(POP_SECRET.encode(), blob)
        self.assertTrue(blob.startswith(b"POPGATE-MOVE 1\n"))
        # the old node: logins refused with a reason, no more polls
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            imap(self.a)
        self.assertIn("moved", str(cm.exception))
        self.assertIn("event=export_done", self.a.output())

        # a cut, a changed and a wrongly keyed file import nothing
        cut = self.export + ".cut"
        with open(cut, "wb") as f:
            f.write(blob[:len(blob) - 40])
        r = self.b.ctl("user", "import", cut, "--passphrase-file",
                       self.passfile)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("truncated", r.stderr + r.stdout)
        self.assert_no_alice(self.b)
        i = blob.index(b"Lorem ipsum")
        bad = self.export + ".bad"
        with open(bad, "wb") as f:
            f.write(blob[:i] + b"L0rem" + blob[i + 5:])
        r = self.b.ctl("user", "import", bad, "--passphrase-file",
                       self.passfile)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not authentic", r.stderr + r.stdout)
        self.assert_no_alice(self.b)
        other = os.path.join(self.tmp, "other.pass")
        with open(other, "w") as f:
            f.write("not the right passphrase\n")
        r = self.b.ctl("user", "import", self.export, "--passphrase-file",
                       other)
        self.assertNotEqual(r.returncode, 0)
        self.assert_no_alice(self.b)

        # the real import
        r = self.b.ctl("user", "import", self.export, "--passphrase-file",
                       self.passfile)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("imported alice", r.stdout)
        # a second import over her is refused
        r = self.b.ctl("user", "import", self.export, "--passphrase-file",
                       self.passfile)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr + r.stdout)

        # the same state on b as the device saw on a
        uv_b, hms_b, after = self.device_state(self.b)
        self.assertEqual((uv_b, hms_b, after), (uv, hms, before))
        c = imap(self.b)
        typ, subs = c.lsub('""', "*")
        self.assertTrue(any(b"Work" in x for x in subs), subs)
        c.select("Work")
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        flat = b" ".join(x if isinstance(x, bytes) else x[0]
                         for x in data)
        self.assertIn(b"$Project", flat)
        # changes after the move, by another client on b
        c.select("INBOX")
        c.uid("STORE", "2", "+FLAGS", r"(\Answered)")
        c.uid("STORE", "4", "+FLAGS", r"(\Deleted)")
        c.expunge()
        c.logout()

        # the device comes back (to b) with what it remembered
        dev = imap(self.b)
        dev.enable("QRESYNC")
        typ, resp = qresync_select(dev, "INBOX", uv, hms)
        self.assertEqual(typ, "OK", resp)
        self.assertEqual(int(resp["UIDVALIDITY"][0]), uv)
        vanished = [x.decode() for x in resp.get("VANISHED", [])]
        self.assertEqual(vanished, ["(EARLIER) 4"], resp)
        fetches = [x.decode() for x in resp.get("FETCH", [])]
        self.assertEqual(len(fetches), 1, fetches)
        self.assertIn("UID 2 ", fetches[0])
        self.assertIn("\\Answered", fetches[0])
        dev.logout()

        # the upstream: b polls the account; only the new message is
        # fetched (a's four are in the ledger that moved)
        self.dc.add_messages("alice", [make_message(50, 2222)])
        self.b.ok({"command": "poll", "user": "alice"})
        deadline = time.monotonic() + 120
        while retrs(self.dc) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        c = imap(self.b)
        c.select("INBOX")
        typ, data = c.uid("SEARCH", "SUBJECT", '"test message 50"')
        self.assertEqual(len(data[0].split()), 1, data)
        typ, data = c.uid("SEARCH", "ALL")
        self.assertEqual(len(data[0].split()), 3, data)  # 1, 2 and the new
        c.logout()
        self.assertEqual(retrs(self.dc), 5)
        # a polls nothing of hers any more
        r = self.a.ok({"command": "poll", "user": "alice"})
        self.assertEqual((r["polls_started"], r["polls_queued"]), (0, 0), r)
        self.assertEqual(retrs(self.dc), 5)

        # offline checker: clean on both nodes
        for g in (self.a, self.b):
            g.stop()
            r = g.ctl("-c", g.conf, "check", g.data)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def state(self, gw):
        """Per mailbox: UIDVALIDITY, HIGHESTMODSEQ, every UID's flags and
        MODSEQ, and the whole expunge history (QRESYNC from MODSEQ 1)."""
        c = imap(gw)
        c.enable("QRESYNC")
        out = {}
        for box in ("INBOX", "Work"):
            uv = None
            c.select(box)
            uv = int(c.untagged_responses["UIDVALIDITY"][0])
            c.close()
            typ, resp = qresync_select(c, box, uv, 1)
            self.assertEqual(typ, "OK", resp)
            fetch = sorted(x.decode() for x in resp.get("FETCH", []))
            text = " ".join(x.decode() if isinstance(x, bytes) else str(x)
                            for x in resp.get("OK", []))
            hms = re.search(r"HIGHESTMODSEQ (\d+)", text).group(1)
            out[box] = (uv, hms, [x.decode() for x in
                                  resp.get("VANISHED", [])], fetch)
            c.close()
        c.logout()
        return out

    def test_big_history_and_shared_bodies(self):
        """More messages than one import batch, bodies shared between
        mailboxes across batches, and an expunge history longer than one
        record: the same on both nodes."""
        self.a.ok({"command": "user.add", "user": "alice",
                   "password": "alice-pw"})
        c = imap(self.a)
        c.create("Work")
        for i in range(1100):
            c.append("INBOX", r"(\Seen)" if i % 3 == 0 else None, None,
                     b"Subject: n %d\r\n\r\nbody %d\r\n" % (i, i))
        c.select("INBOX")
        c.uid("COPY", "1:600", "Work")
        c.uid("STORE", "1:1060", "+FLAGS", r"(\Deleted)")
        c.expunge()
        c.uid("STORE", "1070:1080", "+FLAGS", "($Later)")
        c.logout()
        before = self.state(self.a)
        self.assertEqual(len(before["Work"][3]), 600)
        self.assertIn("1:1060", before["INBOX"][2][0])
        self.export_ok()
        r = self.b.ctl("user", "import", self.export, "--passphrase-file",
                       self.passfile)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn("640 messages", r.stdout)  # 40 + 600 copies
        self.assertEqual(self.state(self.b), before)
        self.b.stop()
        r = self.b.ctl("-c", self.b.conf, "check", self.b.data)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_unmove_serves_the_user_again(self):
        self.a.ok({"command": "user.add", "user": "alice",
                   "password": "alice-pw"})
        self.export_ok()
        with self.assertRaises(imaplib.IMAP4.error):
            imap(self.a)
        r = self.a.ctl("user", "unmove", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        imap(self.a).logout()
        # an export never overwrites a file
        r = self.a.ctl("user", "export", "alice", self.export,
                       "--passphrase-file", self.passfile)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stderr + r.stdout)


if __name__ == "__main__":
    unittest.main()
