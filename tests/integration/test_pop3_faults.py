"""The POP3 upstream against a scripted misbehaving server (pgtest.fakepop3):
connection cuts, bad framing, missing or broken UIDLs, -ERR answers, STLS
refused or injected, bad certificates, a dripping server, lying LIST
sizes, response codes, the auth circuit breaker, password masking."""
import hashlib
import os
import resource
import signal
import subprocess
import socket
import ssl
import threading
import time
import unittest

from pgtest import Proc, TestCA, sanitizer_report, tempdir
from pgtest.fakepop3 import FakePop3
from pgtest.pop3tool import account_spec, check_store, dump_store, run_fetch, tool

CREDS = (b"USER", b"PASS", b"AUTH", b"APOP")


def msg(i, size=400):
    head = b"From: a@example.org\r\nSubject: fault %d\r\nMessage-ID: <%d@x>\r\n\r\n" % (i, i)
    body = b"".join(b"line %d of message %d\r\n" % (k, i) for k in range(size // 24 + 1))
    return head + body


class Pop3FaultsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempdir()
        cls.ca = TestCA(cls.tmp)
        cls.good = cls.ca.cert("good", ("localhost", "127.0.0.1"))
        cls.wronghost = cls.ca.cert("wronghost", ("mail.example.com",))
        cls.expired = cls.ca.cert("expired", ("localhost", "127.0.0.1"), days=-1)
        cls.selfsigned = cls.ca.self_signed("selfsigned", "localhost")
        other = os.path.join(cls.tmp, "otherca")
        os.makedirs(other)
        cls.unknown = TestCA(other).cert("unknown", ("localhost", "127.0.0.1"))

    def setUp(self):
        self.servers = []
        self.n = 0

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def serve(self, messages, tls="stls", cert=None, **faults):
        s = FakePop3(messages, tls=tls, cert=cert or self.good, **faults).start()
        self.servers.append(s)
        return s

    def store(self):
        self.n += 1
        return os.path.join(self.tmp, "%s-%d" % (self._testMethodName, self.n))

    def acct(self, srv, **kw):
        kw.setdefault("port", srv.port)
        kw.setdefault("tls", srv.tls or "none")
        kw.setdefault("ca", self.ca.ca_crt)
        kw.setdefault("timeout-ms", 5000)
        return account_spec(**kw)

    def dump(self, store):
        return dump_store(self, store, store + "-dump")[0]

    def assertNoCredentials(self, srv):
        sent = srv.commands()
        for c in CREDS:
            self.assertNotIn(c, sent, "credentials sent: %r" % srv.transcript)

    # --- cuts and framing ---------------------------------------------

    def test_drop_mid_retr_stores_nothing_and_sends_no_dele(self):
        srv = self.serve([msg(1, 20000)], drop_mid_retr={1})
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["outcome"], "temporary", r)
        self.assertIn("RETR", r.polls[0]["error"])
        self.assertEqual(self.dump(st), [])
        self.assertNotIn(b"DELE", srv.commands())
        self.assertEqual(srv.deleted, set())

    def test_message_without_final_dot_is_not_stored(self):
        srv = self.serve([msg(1), msg(2)], no_final_dot={2})
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["outcome"], "temporary", r)
        # message 1 was complete: kept (committed), but no DELE/QUIT
        self.assertEqual(self.dump(st), [msg(1)])
        self.assertNotIn(b"QUIT", srv.commands())
        self.assertEqual(srv.deleted, set())
        # the next poll fetches only message 2's retry, nothing twice
        srv2 = self.serve([msg(1), msg(2)])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "1", r)
        self.assertEqual(sorted(self.dump(st)), sorted([msg(1), msg(2)]))
        self.assertEqual(srv2.deleted, {1, 2})

    def test_garbage_greeting(self):
        srv = self.serve([msg(1)], greeting=b"HTTP/1.1 200 OK")
        r = run_fetch(self, self.store(), [self.acct(srv)])
        self.assertEqual(r.polls[0]["outcome"], "protocol", r)
        self.assertIn("HTTP/1.1", r.polls[0]["error"])
        self.assertNoCredentials(srv)

    def test_over_long_status_line(self):
        srv = self.serve([msg(1)], greeting=b"+OK " + b"x" * 2000)
        r = run_fetch(self, self.store(), [self.acct(srv)])
        self.assertEqual(r.polls[0]["outcome"], "protocol", r)
        self.assertIn("line too long", r.polls[0]["error"])
        self.assertNoCredentials(srv)

    def test_hostile_bytes_in_errors_are_escaped(self):
        srv = self.serve([msg(1)], pass_err=b"-ERR [AUTH] \x1b[31mred\x07 \xff")
        r = run_fetch(self, self.store(), [self.acct(srv)])
        self.assertEqual(r.polls[0]["outcome"], "auth", r)
        self.assertNotIn("\x1b", r.stdout + r.stderr)
        self.assertIn("\\x1b[31mred\\x07", r.polls[0]["error"])

    # --- UIDL problems ---------------------------------------------------

    def check_fallback(self, expect_strategy, **faults):
        msgs = [msg(i) for i in range(1, 5)]
        srv = self.serve(msgs, **faults)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)], polls=2)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([p["fetched"] for p in r.polls], ["4", "0"], r)
        self.assertIn(expect_strategy, r.polls[0]["strategy"])
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        return srv, r

    def test_no_uidl_uses_content_hash_via_top(self):
        self.check_fallback("content-hash via TOP (server has no UIDL)",
                            uidls=None, capa=[b"TOP", b"USER", b"STLS"])

    def test_no_uidl_no_top_uses_content_hash_via_retr(self):
        srv, _ = self.check_fallback("content-hash via RETR",
                                     uidls=None, capa=[b"USER", b"STLS"])
        self.assertNotIn(b"TOP", srv.commands())

    def test_no_uidl_and_top_fails_uses_retr(self):
        self.check_fallback("content-hash via RETR (no UIDL, TOP failed)",
                            uidls=None, top_err=True,
                            capa=[b"TOP", b"USER", b"STLS", b"PIPELINING"])

    def test_list_and_uidl_disagree(self):
        # UIDL leaves message 4 out
        self.check_fallback("UIDL and LIST disagree", uidls=[b"a", b"b", b"c"])

    def test_duplicate_uidls(self):
        self.check_fallback("duplicate UIDLs", uidls=[b"a", b"b", b"a", b"c"])

    def test_empty_uidl(self):
        self.check_fallback("empty UIDL", uidls=[b"a", b"", b"b", b"c"])

    def test_uidl_too_long(self):
        self.check_fallback("over 70", uidls=[b"a", b"x" * 71, b"b", b"c"])

    def test_uidl_control_chars(self):
        self.check_fallback("bad characters", uidls=[b"a", b"b\x01", b"c", b"d"])

    def check_one_bad_uidl_keeps_the_others(self, bad, **faults):
        # an account known by UIDLs; one new message comes with a flawed
        # UIDL: only it is keyed by content, nothing else is fetched again
        first = [msg(i) for i in range(1, 4)]
        srv = self.serve(first, uidls=[b"a", b"b", b"c"])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)])
        self.assertEqual(r.polls[0]["fetched"], "3", r)
        srv2 = self.serve(first + [msg(4)], uidls=[b"a", b"b", b"c", bad],
                          **faults)
        r = run_fetch(self, st, [self.acct(srv2)], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["1", "0"], r)
        self.assertTrue(r.polls[0]["strategy"].startswith("uidl; 1 by "), r)
        self.assertEqual(sorted(self.dump(st)), sorted(first + [msg(4)]))
        # keep mode: the content-keyed message is RETRed once (when new);
        # the next poll recognises it from TOP n 0, unless TOP fails
        retrs = srv2.commands().count(b"RETR")
        self.assertEqual(retrs, 2 if faults.get("top_err") else 1,
                         srv2.transcript)
        if not faults.get("top_err"):
            self.assertIn("via TOP", r.polls[1]["strategy"], r)
        # and in delete mode only the delivered ones are deleted, once
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "4"), r)
        self.assertEqual(sorted(self.dump(st)), sorted(first + [msg(4)]))

    def test_duplicate_uidl_refetches_nothing_already_stored(self):
        self.check_one_bad_uidl_keeps_the_others(b"a")

    def test_overlong_uidl_refetches_nothing_already_stored(self):
        self.check_one_bad_uidl_keeps_the_others(b"x" * 300)

    def test_bad_uidl_and_top_failing_refetches_nothing_already_stored(self):
        self.check_one_bad_uidl_keeps_the_others(
            b"", top_err=True, capa=[b"TOP", b"UIDL", b"USER", b"STLS"])

    def test_bad_uidl_with_66_byte_uidls_around(self):
        # hash keys are 66 bytes until numbered: a 66-byte UIDL must not
        # be taken for one
        self.check_one_bad_uidl_keeps_the_others(b"")
        long = [b"u" * 66, b"v" * 66, b"w" * 66]
        msgs = [msg(i) for i in range(1, 5)]
        srv = self.serve(msgs, uidls=long + [b""])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["4", "0"], r)
        _, ledger = dump_store(self, st, st + "-dump")
        self.assertTrue(any(('"%s"' % ("u" * 66)) in l for l in ledger), ledger)
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))

    def check_top_unlike_retr(self, top_data, dele_retrs=2):
        # Messages without a usable UIDL, on a server whose TOP n 0 does
        # not give RETR's header block: the ledger keeps RETR-derived
        # keys, so nothing is stored twice (a RETR per poll is the cost),
        # and a DELE still follows a RETR that matched.
        msgs = [msg(1), msg(2)]
        self.assertEqual(len(msgs[0]), len(msgs[1]))
        srv = self.serve(msgs, uidls=[b"", b""], top_data=top_data)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)], polls=3)
        self.assertEqual([p["fetched"] for p in r.polls], ["2", "0", "0"], r)
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        srv2 = self.serve(msgs, uidls=[b"", b""], top_data=top_data)
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "2"), r)
        self.assertEqual(srv2.commands().count(b"RETR"), dele_retrs,
                         srv2.transcript)
        self.assertEqual(srv2.deleted, {1, 2})
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        return srv

    def test_top_without_blank_line_stores_nothing_twice(self):
        srv = self.check_top_unlike_retr(lambda n, head: head[:-2])
        # no TOP key ever matches: every poll RETRs both
        self.assertEqual(srv.commands().count(b"RETR"), 6, srv.transcript)

    def test_top_giving_another_messages_headers_stores_nothing_twice(self):
        heads = {}

        def top(n, head):
            heads.setdefault(n, head)
            return heads.get(1, head)   # message 1's headers for every n
        # message 1's TOP is its own header block: its DELE is checked by
        # TOP (the ledger's header digest); message 2's by RETR
        self.check_top_unlike_retr(top, dele_retrs=1)

    def test_uidl_path_like_values_are_just_keys(self):
        msgs = [msg(i) for i in range(1, 4)]
        srv = self.serve(msgs, uidls=[b"../../etc/passwd", b"a/b", b"/"])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["3", "0"], r)
        self.assertEqual(r.polls[0]["strategy"], "uidl")

    def test_identical_messages_without_uidl_are_both_kept(self):
        msgs = [msg(1), msg(1), msg(2)]
        srv = self.serve(msgs, uidls=None)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["3", "0"], r)
        self.assertEqual(len(self.dump(st)), 3)

    def test_empty_mailbox(self):
        srv = self.serve([])
        r = run_fetch(self, self.store(), [self.acct(srv, mode="delete")], polls=2)
        self.assertEqual([p["outcome"] for p in r.polls], ["ok", "ok"], r)
        self.assertEqual(srv.commands().count(b"QUIT"), 2)

    # --- -ERR answers ------------------------------------------------------

    def test_err_on_retr_skips_only_that_message(self):
        msgs = [msg(i) for i in range(1, 4)]
        srv = self.serve(msgs, retr_err={2})
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "2", r)
        self.assertIn("RETR 2 failed", r.polls[0]["error"])
        self.assertEqual(srv.deleted, {1, 3})
        self.assertEqual(sorted(self.dump(st)), sorted([msgs[0], msgs[2]]))

    def test_err_on_dele_and_quit(self):
        msgs = [msg(i) for i in range(1, 4)]
        srv = self.serve(msgs, dele_err={1})
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["deleted"], "2", r)
        self.assertEqual(srv.deleted, {2, 3})
        srv2 = self.serve(msgs, quit_err=True)
        st2 = self.store()
        r = run_fetch(self, st2, [self.acct(srv2, mode="delete")])
        self.assertEqual(r.polls[0]["outcome"], "temporary", r)
        self.assertIn("QUIT failed", r.polls[0]["error"])
        self.assertEqual(len(self.dump(st2)), 3)
        _, ledger = dump_store(self, st2, st2 + "-dump2")
        self.assertFalse(any("deleted=1" in l for l in ledger), ledger)

    def test_reused_uidl_after_delete_is_a_new_message(self):
        srv = self.serve([msg(1)], uidls=[b"1"])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(srv.deleted, {1})
        # a server that numbers its UIDLs hands out "1" again
        srv2 = self.serve([msg(2)], uidls=[b"1"])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["1", "0"], r)
        self.assertIn("uidl-reused", r.stderr)
        self.assertEqual(sorted(self.dump(st)), sorted([msg(1), msg(2)]))

    def test_stored_not_deleted_uidl_with_other_size_is_fetched_not_deleted(self):
        # Regression: an entry stored but not marked deleted upstream (a
        # crash before QUIT, a failed ledger mark, or keep mode before a
        # switch to delete) made delete mode DELE a message listed under
        # the same UIDL without fetching it, even when it was another one.
        srv = self.serve([msg(1)], uidls=[b"1"])
        st = self.store()
        run_fetch(self, st, [self.acct(srv, mode="keep")])
        self.assertEqual(srv.deleted, set())
        srv2 = self.serve([msg(2, 900)], uidls=[b"1"])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "1", r)
        self.assertIn("uidl-reused", r.stderr)
        self.assertEqual(srv2.deleted, {1})
        self.assertEqual(sorted(self.dump(st)),
                         sorted([msg(1), msg(2, 900)]))

    def test_stored_not_deleted_uidl_with_same_size_is_verified_before_dele(self):
        # QUIT fails after the DELEs: both messages are stored, neither is
        # marked deleted in the ledger. The server did delete them after
        # all and reuses UIDL "1" for a new message of exactly the same
        # size: it must be fetched and stored, never DELEd unread.
        a, b, c = msg(1), msg(2), msg(3)
        self.assertEqual(len(a), len(b))
        srv = self.serve([a, c], uidls=[b"1", b"2"], quit_err=True)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "2", r)
        self.assertEqual(srv.deleted, set())
        srv2 = self.serve([b, c], uidls=[b"1", b"2"])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual(r.polls[0]["outcome"], "ok", r)
        # b is new: its header block differs from a's (TOP n 0 against
        # the ledger's header digest), so it is fetched, compared and
        # stored; c is the stored one: its TOP matches, deleted unread
        self.assertEqual(r.polls[0]["fetched"], "1", r)
        self.assertIn("event=top-check-differs msgno=1", r.stderr)
        self.assertIn("uidl-reused", r.stderr)
        self.assertIn("event=dele-verified msgno=2 uidl=\"2\" by=top",
                      r.stderr)
        self.assertEqual(srv2.commands().count(b"RETR"), 1, srv2.transcript)
        self.assertEqual(srv2.commands().count(b"TOP"), 2, srv2.transcript)
        self.assertEqual(srv2.deleted, {1, 2})
        self.assertEqual(sorted(self.dump(st)), sorted([a, b, c]))

    def test_unverifiable_legacy_entry_left_without_download(self):
        # A ledger from before fingerprints; the user expunged message 1,
        # so mirror mode wants it deleted upstream, but nothing is left
        # to compare it with: it stays on the server (reported), and
        # since no download could ever verify it, none is made, poll
        # after poll.
        msgs = [msg(i) for i in range(1, 4)]
        srv = self.serve(msgs)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="mirror")])
        self.assertEqual(r.polls[0]["fetched"], "3", r)
        r = run_fetch(self, st, [], extra=["--legacy-ledger", "--expunge",
                                           "1"])
        self.assertIn("legacy-ledger=3", r.stdout)
        self.assertIn("expunged=1", r.stdout)
        srv2 = self.serve(msgs)
        r = run_fetch(self, st, [self.acct(srv2, mode="mirror")], polls=2)
        for p in r.polls:
            self.assertEqual((p["outcome"], p["fetched"], p["deleted"]),
                             ("ok", "0", "0"), r)
            self.assertIn("message 1 left on the server", p["error"], r)
        self.assertIn("event=dele-unverifiable", r.stderr)
        self.assertNotIn(b"RETR", srv2.commands(), srv2.transcript)
        self.assertNotIn(b"DELE", srv2.commands(), srv2.transcript)
        self.assertEqual(sorted(self.dump(st)), sorted(msgs[1:]))
        # legacy entries whose copy is there are compared with it, then
        # deleted (delete mode); message 1 still stays
        srv3 = self.serve(msgs)
        r = run_fetch(self, st, [self.acct(srv3, mode="delete")])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "2"), r)
        self.assertEqual(srv3.commands().count(b"RETR"), 2, srv3.transcript)
        self.assertEqual(srv3.deleted, {2, 3})
        self.assertIn("message 1 left on the server", r.polls[0]["error"])

    def test_server_keeping_deleted_messages_gets_no_duplicates(self):
        # this fake acknowledges DELE + QUIT but keeps serving the message
        srv = self.serve([msg(1), msg(2)])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")], polls=3)
        self.assertEqual([p["fetched"] for p in r.polls], ["2", "0", "0"], r)
        self.assertEqual([p["deleted"] for p in r.polls], ["2", "2", "2"], r)
        self.assertIn("deleted-message-listed-again", r.stderr)
        self.assertEqual(sorted(self.dump(st)), sorted([msg(1), msg(2)]))

    def test_deleted_message_expunged_by_user_is_not_redelivered(self):
        # the server acknowledges DELE + QUIT but keeps both messages; the
        # user expunges the first in the store: listed again, it must be
        # recognised from the ledger's fingerprint, not come back
        srv = self.serve([msg(1), msg(2)])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "2", r)
        r = run_fetch(self, st, [self.acct(srv, mode="delete")],
                      extra=["--expunge", "1"])
        self.assertIn("expunged=1", r.stdout)
        self.assertEqual((r.polls[0]["outcome"], r.polls[0]["fetched"],
                          r.polls[0]["deleted"]), ("ok", "0", "2"), r)
        self.assertNotIn("uidl-reused", r.stderr)
        self.assertEqual(self.dump(st), [msg(2)])

    def test_reused_uidl_failed_delivery_keeps_deleted_record(self):
        srv = self.serve([msg(1)], uidls=[b"1"])
        st = self.store()
        small = ["--map-size", str(2 * 1024 * 1024)]
        r = run_fetch(self, st, [self.acct(srv, mode="delete")], extra=small)
        self.assertEqual(srv.deleted, {1})
        # "1" is reused for a message the store has no room for
        srv2 = self.serve([msg(2, 3 * 1024 * 1024)], uidls=[b"1"])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")], extra=small)
        self.assertEqual(r.polls[0]["outcome"], "store", r)
        _, ledger = dump_store(self, st, st + "-dump1")
        self.assertIn('ledger "1" mailbox=1 uid=1 deleted=1', ledger)
        # the first server still lists its "deleted" message: no duplicate
        r = run_fetch(self, st, [self.acct(srv, mode="delete")],
                      extra=["--map-size", str(64 * 1024 * 1024)])
        self.assertEqual((r.polls[0]["outcome"], r.polls[0]["fetched"]),
                         ("ok", "0"), r)
        self.assertIn("deleted-message-listed-again", r.stderr)
        self.assertEqual(self.dump(st), [msg(1)])

    def test_store_full_stops_delivery_without_dele(self):
        big = [msg(i, 400000) for i in range(1, 9)]
        srv = self.serve(big)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete")],
                      extra=["--map-size", str(2 * 1024 * 1024)])
        self.assertEqual(r.polls[0]["outcome"], "store", r)
        self.assertEqual(r.polls[0]["state"], "store-error", r)
        self.assertIn("no DELE", r.polls[0]["error"])
        self.assertNotIn(b"DELE", srv.commands())
        self.assertEqual(srv.deleted, set())
        # what fit was stored message by message (a batch that does not
        # fit is retried in smaller pieces), the rest was not
        first = int(r.polls[0]["fetched"])
        self.assertLess(first, 8, r)
        self.assertEqual(len(self.dump(st)), first)
        # room again: the rest arrives, each message once, and only then
        # DELE of all eight
        r = run_fetch(self, st, [self.acct(srv, mode="delete")],
                      extra=["--map-size", str(64 * 1024 * 1024)])
        self.assertEqual((r.polls[0]["outcome"], r.polls[0]["fetched"]),
                         ("ok", str(8 - first)), r)
        self.assertEqual(sorted(self.dump(st)), sorted(big))
        self.assertEqual(srv.deleted, set(range(1, 9)))

    # --- graceful stop (SIGTERM) -----------------------------------------

    def start_fetch(self, st, srv, **kw):
        log = st + ".log"
        p = Proc([tool("pop3_fetch"), "--store", st, "--user", "bob",
                  "--polls", "1", "--account", self.acct(srv, **kw)],
                 log_path=log)
        return p, log

    def wait_log(self, p, log, text, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(log, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            if text in data:
                return data
            self.assertTrue(p.alive(), "pop3_fetch exited:\n" + data)
            time.sleep(0.05)
        self.fail("no %r in the log" % text)

    def finish_fetch(self, p, log):
        p.p.wait(30)
        with open(log, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        self.assertFalse(sanitizer_report(out), out)
        return out

    def test_ledger_mark_failure_is_reported_and_loses_nothing(self):
        # The disk fills while the DELEs are answered: QUIT succeeds, the
        # ledger cannot record it. The poll says so in the account status,
        # and a UIDL the server then reuses is fetched, not deleted unread.
        mnt = os.path.join(self.tmp, "mark-tmpfs")
        os.mkdir(mnt)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m",
                                  "tmpfs", mnt], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode == 0
        if mounted:
            self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        uidls = [b"%069d" % i for i in range(1, 301)]
        msgs = [msg(i, 100) for i in range(1, 301)]
        hold = threading.Event()
        srv = self.serve(msgs, uidls=uidls, dele_hold=hold)
        st = os.path.join(mnt, "store")
        p = Proc([tool("pop3_fetch"), "--store", st, "--user", "bob",
                  "--polls", "1", "--map-size", str(64 << 20),
                  "--account", self.acct(srv, mode="delete")],
                 log_path=os.path.join(self.tmp, "mark.log"))
        try:
            self.assertTrue(srv.dele_seen.wait(60), "no DELE arrived")
            if mounted:
                # (the store may have filled the disk already: then even
                # the filler's open fails, which is as good)
                try:
                    with open(os.path.join(mnt, "filler"), "wb") as f:
                        while True:
                            f.write(b"\0" * 65536)
                            f.flush()
                except OSError:
                    pass
            else:
                # no mount privilege: the store's files may not grow
                size = max(os.path.getsize(os.path.join(st, n))
                           for n in os.listdir(st))
                resource.prlimit(p.p.pid, resource.RLIMIT_FSIZE,
                                 (size, size))
        finally:
            hold.set()
        out = self.finish_fetch(p, os.path.join(self.tmp, "mark.log"))
        self.assertIn("event=ledger-mark-failed", out)
        poll = [l for l in out.splitlines() if l.startswith("poll ")]
        self.assertIn("ledger could not record", poll[0], out)
        self.assertIn("outcome=ok", poll[0], out)
        self.assertEqual(srv.deleted, set(range(1, 301)))
        if mounted:
            os.unlink(os.path.join(mnt, "filler"))
        check_store(self, st)
        _, ledger = dump_store(self, st, os.path.join(self.tmp, "mark-dump"))
        self.assertFalse(any("deleted=1" in l for l in ledger), ledger[:3])
        # the server reuses the first UIDL for a new message of that size
        new = msgs[0].replace(b"fault 1", b"fault X")
        self.assertEqual(len(new), len(msgs[0]))
        srv2 = self.serve([new], uidls=uidls[:1])
        r = run_fetch(self, st, [self.acct(srv2, mode="delete")])
        self.assertEqual((r.polls[0]["outcome"], r.polls[0]["fetched"]),
                         ("ok", "1"), r)
        self.assertIn("uidl-reused", r.stderr)
        self.assertEqual(srv2.deleted, {1})
        self.assertEqual(sorted(self.dump(st)), sorted(msgs + [new]))
    def test_sigterm_after_dele_sends_quit_so_deletions_apply(self):
        msgs = [msg(i) for i in range(1, 6)]
        hold = threading.Event()
        srv = self.serve(msgs, dele_hold=hold)
        st = self.store()
        p, log = self.start_fetch(st, srv, mode="delete")
        try:
            self.assertTrue(srv.dele_seen.wait(60), "no DELE arrived")
            # every message is committed before the first DELE is sent
            p.send_signal(signal.SIGTERM)
            self.wait_log(p, log, "event=stopping")
        finally:
            hold.set()
        out = self.finish_fetch(p, log)
        self.assertIn("stopped", out)
        self.assertEqual(p.p.returncode, 0, out)
        sent = srv.commands()
        self.assertIn(b"QUIT", sent)
        deles = [int(c.split()[1]) for c in srv.transcript
                 if c.upper().startswith(b"DELE")]
        self.assertTrue(deles, sent)
        self.assertEqual(srv.deleted, set(deles))
        check_store(self, st)
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        _, ledger = dump_store(self, st, st + "-dump2")
        self.assertEqual(sum("deleted=1" in l for l in ledger), len(deles),
                         ledger)
        # whatever was not deleted now is deleted by the next poll, once
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual(r.polls[0]["fetched"], "0", r)
        self.assertEqual(srv.deleted, set(range(1, 6)))
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))

    def test_sigterm_stop_waits_for_quit_only_a_bounded_time(self):
        # the server never answers the DELE: the stopping session gives up
        # after POP3_CLIENT_STOP_MS (not the 60 s command timeout); no
        # DELE took effect and nothing is lost
        msgs = [msg(i) for i in range(1, 4)]
        hold = threading.Event()
        srv = self.serve(msgs, dele_hold=hold)
        st = self.store()
        p, log = self.start_fetch(st, srv, mode="delete", **{"timeout-ms": 60000})
        try:
            self.assertTrue(srv.dele_seen.wait(60), "no DELE arrived")
            p.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            p.p.wait(40)
            self.assertLess(time.monotonic() - t0, 30)
        finally:
            hold.set()
        out = self.finish_fetch(p, log)
        self.assertIn("stopped", out)
        self.assertIn("no answer to QUIT", out)
        self.assertEqual(srv.deleted, set())
        check_store(self, st)
        self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        r = run_fetch(self, st, [self.acct(srv, mode="delete")])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "3"), r)

    def test_sigterm_mid_retr_closes_without_quit_or_dele(self):
        msgs = [msg(i) for i in range(1, 3)]
        srv = self.serve(msgs, drip_retr=True)
        st = self.store()
        p, log = self.start_fetch(st, srv, mode="delete")
        deadline = time.monotonic() + 60
        while b"RETR" not in srv.commands() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(b"RETR", srv.commands())
        p.send_signal(signal.SIGTERM)
        out = self.finish_fetch(p, log)
        self.assertIn("stopped", out)
        self.assertNotIn(b"DELE", srv.commands())
        self.assertNotIn(b"QUIT", srv.commands())
        self.assertEqual(srv.deleted, set())
        check_store(self, st)

    # --- TLS ------------------------------------------------------------

    def test_stls_refused_never_falls_back_to_clear_text(self):
        srv = self.serve([msg(1)], stls_refuse=True)
        r = run_fetch(self, self.store(), [self.acct(srv)])
        self.assertEqual(r.polls[0]["outcome"], "tls", r)
        self.assertIn("STLS", r.polls[0]["error"])
        self.assertNoCredentials(srv)

    def test_stls_not_offered(self):
        srv = self.serve([msg(1)], capa=[b"UIDL", b"USER"])
        r = run_fetch(self, self.store(), [self.acct(srv)])
        self.assertEqual(r.polls[0]["outcome"], "tls", r)
        self.assertNoCredentials(srv)

    def test_stls_injection_is_discarded(self):
        # a naive client would take these for the answers to CAPA/USER
        inject = b"+OK\r\nUIDL\r\n.\r\n+OK injected\r\n"
        msgs = [msg(1), msg(2)]
        srv = self.serve(msgs, stls_inject=inject)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv)])
        # the injected bytes arrive before the handshake: discarded or the
        # handshake fails; either way never read as responses
        if r.polls[0]["outcome"] == "ok":
            self.assertEqual(r.polls[0]["fetched"], "2", r)
            self.assertEqual(sorted(self.dump(st)), sorted(msgs))
        else:
            self.assertEqual(r.polls[0]["outcome"], "tls", r)
            self.assertNoCredentials(srv)

    def check_bad_cert(self, cert, tls, **kw):
        srv = self.serve([msg(1)], tls=tls, cert=cert)
        r = run_fetch(self, self.store(), [self.acct(srv, **kw)])
        self.assertEqual(r.polls[0]["outcome"], "tls", r)
        self.assertNoCredentials(srv)
        return r

    def test_wrong_host_refused(self):
        for tls in ("pop3s", "stls"):
            r = self.check_bad_cert(self.wronghost, tls)
            self.assertIn("certificate", r.polls[0]["error"])

    def test_expired_refused(self):
        r = self.check_bad_cert(self.expired, "pop3s")
        self.assertIn("expired", r.polls[0]["error"])

    def test_self_signed_refused(self):
        self.check_bad_cert(self.selfsigned, "pop3s")

    def test_unknown_ca_refused(self):
        self.check_bad_cert(self.unknown, "stls")

    def fingerprint(self, crt):
        with open(crt) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        return ":".join("%02X" % b for b in hashlib.sha256(der).digest())

    def test_pinned_fingerprint_accepted(self):
        msgs = [msg(1)]
        srv = self.serve(msgs, tls="pop3s", cert=self.selfsigned)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, fp=self.fingerprint(self.selfsigned[0]))])
        self.assertEqual(r.polls[0]["outcome"], "ok", r)
        self.assertEqual(self.dump(st), msgs)

    def test_wrong_pinned_fingerprint_refused(self):
        r = self.check_bad_cert(self.selfsigned, "stls",
                                fp=self.fingerprint(self.good[0]))
        self.assertIn("pinned", r.polls[0]["error"])

    # --- time -------------------------------------------------------------

    def test_dripping_server_times_out_others_go_on(self):
        drip = self.serve([msg(1)], drip_greeting=True)
        good = self.serve([msg(2), msg(3)])
        st = self.store()
        r = run_fetch(self, st, [
            self.acct(drip, id="drip", **{"timeout-ms": 2000}),
            self.acct(good, id="good")], timeout=60)
        by = {p["account"]: p for p in r.polls}
        self.assertEqual(by["good"]["fetched"], "2", r)
        self.assertEqual(by["drip"]["outcome"], "temporary", r)
        self.assertIn("timeout", by["drip"]["error"])
        self.assertEqual(r.polls[0]["account"], "good", "the good account waited")

    def test_stalled_retr_times_out(self):
        srv = self.serve([msg(1, 20000)], drip_retr=True)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete", **{"timeout-ms": 2000})])
        self.assertEqual(r.polls[0]["outcome"], "temporary", r)
        self.assertIn("stalled", r.polls[0]["error"])
        self.assertEqual(self.dump(st), [])
        self.assertNotIn(b"DELE", srv.commands())

    def test_silent_server_times_out_in_each_phase(self):
        srv = self.serve([], silent=True)
        for tls, phase in (("none", "the greeting"), ("stls", "the greeting"),
                           ("pop3s", "TLS handshake")):
            # long enough for a loaded machine to connect (the phase
            # named is the greeting's, not the connect's)
            r = run_fetch(self, self.store(), [self.acct(
                srv, tls=tls, **{"timeout-ms": 3000})])
            self.assertEqual(r.polls[0]["outcome"], "temporary", r)
            self.assertIn("timeout", r.polls[0]["error"])
            self.assertIn(phase, r.polls[0]["error"])

    def test_connection_refused(self):
        srv = self.serve([])
        port = srv.port
        srv.stop()
        self.servers.remove(srv)
        r = run_fetch(self, self.store(), [account_spec(
            port=port, tls="pop3s", ca=self.ca.ca_crt)])
        self.assertEqual(r.polls[0]["outcome"], "temporary", r)
        self.assertIn("connect", r.polls[0]["error"])

    def blackhole(self):
        """A loopback port whose TCP handshake never completes: a listener
        with backlog 0, never accept()ed, its one queue slot taken, so the
        kernel drops further SYNs (checked here, with a probe)."""
        lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        port = lsn.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(lsn.close)
        self.addCleanup(filler.close)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            with self.assertRaises(socket.timeout,
                                   msg="this kernel completed the handshake"):
                probe.connect(("127.0.0.1", port))
        finally:
            probe.close()
        return port

    def test_connect_timeout_reported_others_go_on(self):
        port = self.blackhole()
        good = self.serve([msg(1), msg(2)])
        st = self.store()
        t0 = time.monotonic()
        # 5 s: the good account's whole poll (TLS under sanitizers on a
        # loaded machine) must fit before the hole's timeout; at 1.5 s it
        # did not always
        r = run_fetch(self, st, [
            account_spec(id="hole", port=port, tls="pop3s", ca=self.ca.ca_crt,
                         **{"timeout-ms": 5000}),
            self.acct(good, id="good")], timeout=60)
        elapsed = time.monotonic() - t0
        by = {p["account"]: p for p in r.polls}
        self.assertEqual(by["good"]["fetched"], "2", r)
        self.assertEqual((by["hole"]["outcome"], by["hole"]["state"],
                          by["hole"]["failures"]),
                         ("temporary", "backoff", "1"), r)
        self.assertIn("timeout during connect", by["hole"]["error"])
        self.assertEqual(r.polls[0]["account"], "good",
                         "the good account waited for the connect")
        # never before the configured limit (bounded by run_fetch's own)
        self.assertGreaterEqual(elapsed, 4.9, r)
        self.assertIn("timeout during connect", r.stderr)

    def test_host_names_resolve_on_a_worker(self):
        """A host name goes through the system's resolver (getaddrinfo on
        a worker thread, docs/threads.md): "localhost" from /etc/hosts
        works; a name that does not exist is a clear temporary error,
        and the other account is not held up."""
        good = self.serve([msg(1), msg(2)])
        st = self.store()
        r = run_fetch(self, st, [
            self.acct(good, id="byname", host="localhost"),
            self.acct(good, id="nosuch", host="no-such-host.invalid")])
        by = {p["account"]: p for p in r.polls}
        self.assertEqual(by["byname"]["fetched"], "2", r)
        self.assertEqual(by["nosuch"]["outcome"], "temporary", r)
        self.assertIn("cannot resolve no-such-host.invalid",
                      by["nosuch"]["error"])

    # --- poller -----------------------------------------------------------

    def test_per_host_connection_cap(self):
        srv = self.serve([msg(1)], slow_list=0.4)
        accts = [self.acct(srv, id="a%d" % i) for i in range(4)]
        r = run_fetch(self, self.store(), accts, extra=["--host-max", "2"])
        self.assertEqual(sorted(p["outcome"] for p in r.polls), ["ok"] * 4, r)
        self.assertEqual(srv.max_active, 2, "cap not honoured")

    def test_per_host_cap_counter_over_many_sessions(self):
        # the cap is a per-host counter now: it must come back down after
        # every session (here each one ends with a RETR error), or queued
        # accounts would never start
        srv = self.serve([msg(1)], slow_list=0.1, retr_err={1})
        accts = [self.acct(srv, id="a%d" % i) for i in range(12)]
        r = run_fetch(self, self.store(), accts, polls=2,
                      extra=["--host-max", "3"])
        self.assertEqual(len(r.polls), 24, r)
        self.assertEqual(srv.max_active, 3, "cap not honoured")

    def test_status_reports_import_progress(self):
        msgs = [msg(i) for i in range(1, 8)]
        srv = self.serve(msgs)
        r = run_fetch(self, self.store(), [self.acct(srv)])
        p = r.polls[0]
        self.assertEqual((p["import_done"], p["import_total"]), ("7", "7"), r)
        self.assertEqual(p["import_bytes"], str(sum(map(len, msgs))))
        self.assertNotEqual(p["last_success"], "0")
        # one log line per event: exactly one poll-done for one poll
        self.assertEqual(r.stderr.count("event=poll-done"), 1, r.stderr)

    # --- sizes ------------------------------------------------------------

    def test_size_limit_skips_with_reason_and_no_dele(self):
        msgs = [msg(1, 300), msg(2, 5000)]
        srv = self.serve(msgs)
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete", limit=2000)])
        self.assertEqual(r.polls[0]["skipped"], "1", r)
        self.assertIn("over the account's size limit", r.stderr)
        self.assertEqual(self.dump(st), [msgs[0]])
        self.assertEqual(srv.deleted, {1})

    def test_list_sizes_that_lie(self):
        msgs = [msg(1, 300), msg(2, 5000)]
        # message 2 claims 100 bytes: under the limit by LIST, over it in fact
        srv = self.serve(msgs, list_sizes=[len(msgs[0]) + 7, 100])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, mode="delete", limit=2000)])
        self.assertEqual(r.polls[0]["outcome"], "ok", r)
        self.assertEqual(r.polls[0]["skipped"], "1", r)
        self.assertEqual(r.polls[0]["size_mismatch"], "1", r)
        self.assertIn("LIST understated", r.stderr)
        self.assertEqual(self.dump(st), [msgs[0]])
        self.assertEqual(srv.deleted, {1})

    # --- response codes, auth ---------------------------------------------

    def test_in_use_is_temporary_not_auth(self):
        srv = self.serve([msg(1)], pass_err=b"-ERR [IN-USE] locked")
        r = run_fetch(self, self.store(), [self.acct(srv, auth="user")],
                      polls=3, extra=["--breaker", "2", "--backoff-ms", "50"])
        self.assertEqual([p["outcome"] for p in r.polls], ["temporary"] * 3, r)
        self.assertEqual(r.polls[-1]["state"], "backoff")

    def test_backoff_doubles_and_interval_has_jitter(self):
        srv = self.serve([msg(1)], pass_err=b"-ERR [SYS/TEMP] busy")
        r = run_fetch(self, self.store(), [self.acct(srv, auth="user")],
                      polls=3, extra=["--backoff-ms", "4000"])
        nxt = [int(p["next_in"]) for p in r.polls]
        self.assertEqual([p["failures"] for p in r.polls], ["1", "2", "3"], r)
        # 4 s, 8 s, 16 s (whole seconds, read right after scheduling)
        for got, want in zip(nxt, (4, 8, 16)):
            self.assertIn(got, (want - 1, want), nxt)
        ok = self.serve([msg(1)])
        r = run_fetch(self, self.store(),
                      [self.acct(ok, id="j%d" % i) for i in range(6)],
                      extra=["--interval-ms", "100000"])
        nxt = [int(p["next_in"]) for p in r.polls]
        # 100 s +- 10 % jitter, so accounts polled together spread out
        # (six equal draws out of 21 values: about 1 in 4 million)
        self.assertTrue(all(89 <= n <= 111 for n in nxt), nxt)
        self.assertGreater(len(set(nxt)), 1, nxt)

    def test_login_delay(self):
        srv = self.serve([msg(1)], pass_err=b"-ERR [LOGIN-DELAY] wait",
                         capa=[b"USER", b"STLS", b"LOGIN-DELAY 900"])
        r = run_fetch(self, self.store(), [self.acct(srv, auth="user")])
        self.assertEqual(r.polls[0]["outcome"], "login-delay", r)

    def test_login_delay_capability_spaces_logins(self):
        srv = self.serve([msg(1)], capa_after=[b"LOGIN-DELAY 2"])
        r = run_fetch(self, self.store(), [self.acct(srv)], polls=2)
        self.assertEqual([p["outcome"] for p in r.polls], ["ok", "ok"], r)
        self.assertEqual(len(srv.logins), 2)
        # poll-now right after the first poll waited for the delay
        self.assertGreaterEqual(srv.logins[1] - srv.logins[0], 1.0)

    def test_auth_circuit_breaker(self):
        srv = self.serve([msg(1)], password="other")
        r = run_fetch(self, self.store(), [self.acct(srv, auth="user")],
                      polls=5, extra=["--breaker", "2", "--backoff-ms", "50"])
        self.assertEqual([p["outcome"] for p in r.polls], ["auth", "auth"], r)
        self.assertEqual(r.polls[-1]["state"], "auth-failed")
        self.assertEqual(srv.commands().count(b"PASS"), 2)

    def test_auth_mechanisms_and_masked_trace(self):
        for auth in ("user", "plain", "login", "apop", "auto"):
            srv = self.serve([msg(1)], capa=[b"USER", b"STLS", b"SASL PLAIN LOGIN"])
            st = self.store()
            r = run_fetch(self, st, [self.acct(srv, auth=auth, trace=1)])
            self.assertEqual(r.polls[0]["outcome"], "ok", (auth, r))
            self.assertNotIn("secret", r.stderr)
            self.assertNotIn("c2VjcmV0", r.stderr)  # base64 of it
            self.assertIn("trace=C", r.stderr)
            want = {"user": b"PASS", "plain": b"AUTH", "login": b"AUTH",
                    "apop": b"APOP", "auto": b"APOP"}[auth]
            self.assertIn(want, srv.commands(), auth)

    def test_clear_text_only_when_configured(self):
        msgs = [msg(1)]
        srv = self.serve(msgs, tls=None, capa=[b"UIDL", b"USER"])
        st = self.store()
        r = run_fetch(self, st, [self.acct(srv, tls="none", auth="user")])
        self.assertEqual(r.polls[0]["outcome"], "ok", r)
        self.assertEqual(self.dump(st), msgs)


if __name__ == "__main__":
    unittest.main()
