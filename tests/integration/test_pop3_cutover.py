"""The check before DELE without a RETR (issue 15): an account switched
from keep to delete confirms each stored message with UIDL + LIST size +
TOP n 0 against the header digest its ledger entry kept, and downloads
only where they disagree. The bytes RETRieved and TOPped are read from a
real Dovecot's own logout lines (pop3_logout_format). A scripted server
covers what Dovecot cannot do: announce no TOP, or fail it."""
import collections
import os
import re
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes
from pgtest.fakepop3 import FakePop3
from pgtest.pop3tool import account_spec, dump_store, run_fetch

LOGOUT = re.compile(rb"Logged out top=(\d+)/(\d+), retr=(\d+)/(\d+), "
                    rb"del=(\d+)/(\d+)")


class CutoverDovecotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        # Dovecot's own count of TOP and RETR commands and bytes, per
        # session (%t/%p: TOPs and their bytes, %r/%b: RETRs and theirs)
        self.dc.extra_conf = ("pop3_logout_format = top=%t/%p, "
                              "retr=%r/%b, del=%d/%m, size=%s\n")
        self.dc._write_conf()
        self.dc.add_user("alice", "secret")
        self.dc.start()
        self.store = os.path.join(self.tmp, "store")
        self.ndump = 0

    def tearDown(self):
        self.dc.stop()

    def acct(self, **kw):
        kw.setdefault("port", self.dc.port)
        kw.setdefault("tls", "stls")
        kw.setdefault("ca", self.ca.ca_crt)
        return account_spec(**kw)

    def dump(self):
        self.ndump += 1
        return dump_store(self, self.store,
                          os.path.join(self.tmp, "dump%d" % self.ndump))

    def log_size(self):
        return os.path.getsize(self.dc.log) if os.path.exists(self.dc.log) \
            else 0

    def sessions_since(self, pos):
        """(tops, top_bytes, retrs, retr_bytes, deles) summed over the
        logout lines Dovecot wrote after byte pos of its log."""
        with open(self.dc.log, "rb") as f:
            f.seek(pos)
            text = f.read()
        lines = LOGOUT.findall(text)
        self.assertTrue(lines, "no logout line in Dovecot's log: %r"
                        % text[-2000:])
        t = [sum(int(x[k]) for x in lines) for k in range(6)]
        return t[0], t[1], t[2], t[3], t[4]

    def test_keep_to_delete_downloads_under_two_percent(self):
        n = 300
        raws = [make_message(i, 3000 + (i * 131) % 9000) for i in range(n)]
        total = sum(len(wire_bytes(r)) for r in raws)
        self.dc.add_messages("alice", raws)
        pos = self.log_size()
        r = run_fetch(self, self.store, [self.acct()], timeout=300)
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         (str(n), "0"), r)
        tops, _, retrs, retr_bytes, _ = self.sessions_since(pos)
        self.assertEqual((tops, retrs), (0, n))
        self.assertGreaterEqual(retr_bytes, total)
        self.assertEqual(self.dc.count("alice"), n)

        pos = self.log_size()
        r = run_fetch(self, self.store, [self.acct(mode="delete")],
                      timeout=300)
        p = r.polls[0]
        self.assertEqual((p["outcome"], p["fetched"], p["deleted"],
                          p["checked_top"], p["checked_retr"]),
                         ("ok", "0", str(n), str(n), "0"), r)
        tops, top_bytes, retrs, retr_bytes, deles = self.sessions_since(pos)
        self.assertEqual((tops, deles), (n, n))
        # the goal: under 2 % of the mailbox's bytes downloaded again
        self.assertLess(retr_bytes, total * 0.02,
                        "RETR bytes %d of %d" % (retr_bytes, total))
        self.assertLess(top_bytes, total * 0.2)
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, _ = self.dump()
        self.assertEqual(collections.Counter(msgs),
                         collections.Counter(wire_bytes(x) for x in raws))

    def test_recognised_by_header_then_cutover_checks_by_retr(self):
        # renumbered UIDLs in keep mode: recognised by TOP n 0 + LIST
        # size, no RETR; then keep -> delete: a UIDL recognised by its
        # header was never seen whole, so its DELE waits for a RETR
        n = 20
        raws = [make_message(i, 2000 + 97 * i) for i in range(n)]
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()])
        self.assertEqual(r.polls[0]["fetched"], str(n), r)
        self.dc.restart_with_uidl_format("%08Xv-%08Xu")
        pos = self.log_size()
        r = run_fetch(self, self.store, [self.acct()])
        p = r.polls[0]
        self.assertEqual((p["outcome"], p["fetched"], p["known"],
                          p["known_top"]), ("ok", "0", str(n), str(n)), r)
        tops, _, retrs, retr_bytes, deles = self.sessions_since(pos)
        self.assertEqual((tops, retrs, retr_bytes, deles), (n, 0, 0, 0))
        pos = self.log_size()
        r = run_fetch(self, self.store, [self.acct(mode="delete")])
        p = r.polls[0]
        self.assertEqual((p["outcome"], p["fetched"], p["deleted"],
                          p["checked_top"], p["checked_retr"]),
                         ("ok", "0", str(n), "0", str(n)), r)
        tops, _, retrs, retr_bytes, deles = self.sessions_since(pos)
        self.assertEqual((tops, retrs, deles), (0, n, n))
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, _ = self.dump()
        self.assertEqual(collections.Counter(msgs),
                         collections.Counter(wire_bytes(x) for x in raws))

    def test_message_altered_upstream_is_retrieved_not_deleted_unseen(self):
        n = 6
        raws = [make_message(i, 4000) for i in range(n)]
        names = self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()])
        self.assertEqual(r.polls[0]["fetched"], str(n), r)
        # a header of message 3 changes on the server, same size and the
        # same file (so the same UIDL): a server rewriting headers, or a
        # UIDL given to another message
        altered = raws[3].replace(b"Subject: test message 3",
                                  b"Subject: TEST MESSAGE 3")
        self.assertEqual(len(altered), len(raws[3]))
        md = self.dc.maildir("alice")
        path = [os.path.join(md, sub, f) for sub in ("new", "cur")
                for f in os.listdir(os.path.join(md, sub))
                if f.startswith(names[3])]
        self.assertEqual(len(path), 1, path)
        with open(path[0], "r+b") as f:
            f.write(altered)
        pos = self.log_size()
        r = run_fetch(self, self.store, [self.acct(mode="delete")])
        p = r.polls[0]
        # the other five by TOP; the altered one RETRieved, found to
        # differ from what was stored, and stored (then deleted, stored)
        self.assertEqual((p["outcome"], p["checked_top"], p["checked_retr"],
                          p["fetched"], p["deleted"]),
                         ("ok", str(n - 1), "0", "1", str(n)), r)
        self.assertIn("event=top-check-differs msgno=4", r.stderr)
        tops, _, retrs, retr_bytes, _ = self.sessions_since(pos)
        self.assertEqual((tops, retrs), (n, 1))
        # (Dovecot counts the bytes it sent: dot-stuffed, with the ".")
        self.assertGreaterEqual(retr_bytes, len(wire_bytes(altered)))
        self.assertLess(retr_bytes, len(wire_bytes(altered)) + 200)
        msgs, _ = self.dump()
        self.assertIn(wire_bytes(altered), msgs)
        self.assertEqual(collections.Counter(msgs),
                         collections.Counter([wire_bytes(x) for x in raws] +
                                             [wire_bytes(altered)]))
        self.assertEqual(self.dc.count("alice"), 0)

    def test_ledger_entries_without_header_digest_are_checked_by_retr(self):
        n = 5
        raws = [make_message(i, 3000) for i in range(n)]
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()])
        self.assertEqual(r.polls[0]["fetched"], str(n), r)
        pos = self.log_size()
        # entries as a store from before header digests wrote them
        r = run_fetch(self, self.store, [self.acct(mode="delete")],
                      extra=["--legacy-ledger-80"])
        self.assertIn("legacy-ledger=%d" % n, r.stdout)
        p = r.polls[0]
        self.assertEqual((p["fetched"], p["deleted"], p["checked_top"],
                          p["checked_retr"]), ("0", str(n), "0", str(n)), r)
        tops, _, retrs, _, _ = self.sessions_since(pos)
        self.assertEqual((tops, retrs), (0, n))
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, _ = self.dump()
        self.assertEqual(len(msgs), n)


def msg(i, size=1500):
    head = (b"From: a@example.org\r\nSubject: message %d\r\n"
            b"Message-ID: <%d@example.org>\r\n\r\n" % (i, i))
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


class CutoverScriptedTest(unittest.TestCase):
    """What Dovecot cannot do: a server without TOP, one whose TOP fails,
    one whose TOP headers differ from its RETR headers."""

    def poll(self, srv, mode):
        acct = account_spec(port=srv.port, tls="none", mode=mode)
        return run_fetch(self, self.store, [acct])

    def setUp(self):
        self.tmp = tempdir()
        self.store = os.path.join(self.tmp, "store")

    def cutover(self, **faults):
        srv = FakePop3([msg(i) for i in range(1, 5)], **faults).start()
        self.addCleanup(srv.stop)
        r = self.poll(srv, "keep")
        self.assertEqual(r.polls[0]["fetched"], "4", r)
        with srv._lock:
            srv.transcript.clear()
        r = self.poll(srv, "delete")
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "4"), r)
        self.assertEqual(srv.deleted, {1, 2, 3, 4})
        return r, srv.commands()

    def test_no_top_in_capa_checks_by_retr(self):
        r, cmds = self.cutover(capa=[b"UIDL", b"USER"])
        self.assertEqual((r.polls[0]["checked_top"],
                          r.polls[0]["checked_retr"]), ("0", "4"), r)
        self.assertEqual((cmds.count(b"TOP"), cmds.count(b"RETR")), (0, 4))

    def test_top_failing_falls_back_to_retr(self):
        r, cmds = self.cutover(top_err=True)
        self.assertEqual((r.polls[0]["checked_top"],
                          r.polls[0]["checked_retr"]), ("0", "4"), r)
        self.assertEqual(cmds.count(b"RETR"), 4)
        self.assertIn("event=top-failed", r.stderr)

    def test_top_headers_differing_from_retr_fall_back_to_retr(self):
        def rewrite(n, head):
            return head.replace(b"Subject:", b"X-Scanned: yes\r\nSubject:") \
                if n == 2 else head
        r, cmds = self.cutover(top_data=rewrite)
        self.assertEqual((r.polls[0]["checked_top"],
                          r.polls[0]["checked_retr"]), ("3", "1"), r)
        self.assertEqual((cmds.count(b"TOP"), cmds.count(b"RETR")), (4, 1))

    def test_top_check_and_lf_only_server(self):
        # a server sending bare LF: the digest takes CRLF and LF alike,
        # so the TOP of the same bytes matches
        srv = FakePop3([msg(1), msg(2)]).start()
        self.addCleanup(srv.stop)
        r = self.poll(srv, "keep")
        self.assertEqual(r.polls[0]["fetched"], "2", r)
        srv.f["top_data"] = lambda n, head: head.replace(b"\r\n", b"\n")
        r = self.poll(srv, "delete")
        self.assertEqual((r.polls[0]["checked_top"], r.polls[0]["deleted"]),
                         ("2", "2"), r)


if __name__ == "__main__":
    unittest.main()
