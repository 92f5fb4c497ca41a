"""The POP3 upstream against a real Dovecot POP3 server on loopback:
POP3S and STLS with the test CA, keep / delete / delete-after / mirror
modes, a mailbox of several thousand messages, messages added between
polls, and the stored bytes compared with the Maildir files."""
import collections
import os
import re
import signal
import time
import unittest

from pgtest import Proc, TestCA, sanitizer_report, tempdir
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes
from pgtest.pop3tool import account_spec, check_store, dump_store, run_fetch, tool


class Pop3DovecotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
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

    def dump(self, store=None):
        self.ndump += 1
        return dump_store(self, store or self.store,
                          os.path.join(self.tmp, "dump%d" % self.ndump))

    def assertSameMessages(self, stored, raws):
        want = collections.Counter(wire_bytes(r) for r in raws)
        got = collections.Counter(stored)
        self.assertEqual(len(stored), len(raws))
        self.assertTrue(got == want, "stored bytes differ from the maildir")

    def test_stls_and_pop3s_store_identical_bytes(self):
        raws = [make_message(i, 1000 + 700 * i) for i in range(20)]
        # awkward but legal content: a NUL-free 8-bit header, a header line
        # without a colon, dot lines
        raws.append(b"Subject: \xe9t\xe9\nno colon here\n\n.\n..\n.x\nend\n")
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.polls[0]["fetched"], str(len(raws)), r)
        self.assertEqual(r.polls[0]["strategy"], "uidl")
        self.assertEqual(r.polls[0]["size_mismatch"], "0")
        msgs, ledger = self.dump()
        self.assertSameMessages(msgs, raws)
        self.assertEqual(len([l for l in ledger if l.startswith("ledger")]),
                         len(raws))

        store2 = os.path.join(self.tmp, "store2")
        r = run_fetch(self, store2, [self.acct(tls="pop3s",
                                               port=self.dc.ports)])
        self.assertEqual(r.rc, 0, r)
        msgs2, _ = self.dump(store2)
        self.assertSameMessages(msgs2, raws)
        self.assertEqual(self.dc.count("alice"), len(raws), "keep mode")

    def test_keep_mode_new_messages_between_polls_no_duplicates(self):
        raws = [make_message(i, 3000) for i in range(10)]
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()])
        self.assertEqual(r.polls[0]["fetched"], "10", r)
        more = [make_message(100 + i, 5000) for i in range(7)]
        self.dc.add_messages("alice", more)
        r = run_fetch(self, self.store, [self.acct()], polls=2)
        self.assertEqual([p["fetched"] for p in r.polls], ["7", "0"], r)
        msgs, _ = self.dump()
        self.assertSameMessages(msgs, raws + more)
        self.assertEqual(self.dc.count("alice"), 17)

    def test_delete_mode(self):
        raws = [make_message(i, 2500) for i in range(12)]
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct(mode="delete")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.polls[0]["deleted"], "12", r)
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, ledger = self.dump()
        self.assertSameMessages(msgs, raws)
        self.assertTrue(all("deleted=1" in l for l in ledger
                            if l.startswith("ledger")), ledger)

    def test_sigterm_during_delete_poll_applies_sent_deles(self):
        # SIGTERM as soon as the first DELE is on the wire: the DELEs
        # sent must take effect (QUIT), nothing lost or duplicated
        n = 1500
        raws = [make_message(i, 800) for i in range(n)]
        self.dc.add_messages("alice", raws)
        log = os.path.join(self.tmp, "fetch.log")
        p = Proc([tool("pop3_fetch"), "--store", self.store, "--user", "bob",
                  "--polls", "1", "--account",
                  self.acct(mode="delete", trace=1)], log_path=log)
        deadline = time.monotonic() + 240
        text = ""
        while p.alive() and time.monotonic() < deadline:
            with open(log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            if 'line="DELE ' in text:
                break
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        p.p.wait(60)
        with open(log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertFalse(sanitizer_report(text), text[-4000:])
        self.assertEqual(p.p.returncode, 0, text[-4000:])
        deles = set(re.findall(r'trace=C line="DELE (\d+)"', text))
        self.assertTrue(deles, text[-4000:])
        self.assertIn('line="QUIT"', text)
        self.assertEqual(self.dc.count("alice"), n - len(deles))
        check_store(self, self.store)
        msgs, ledger = self.dump()
        self.assertSameMessages(msgs, raws)
        self.assertEqual(sum("deleted=1" in l for l in ledger), len(deles))
        # the next poll deletes the rest and fetches nothing again
        r = run_fetch(self, self.store, [self.acct(mode="delete")],
                      timeout=300)
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", str(n - len(deles))), r)
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, _ = self.dump()
        self.assertSameMessages(msgs, raws)

    def test_delete_after_days(self):
        raws = [make_message(i, 2000) for i in range(5)]
        self.dc.add_messages("alice", raws)
        acct = self.acct(mode="delete-after", days=2)
        r = run_fetch(self, self.store, [acct])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("5", "0"), r)
        r = run_fetch(self, self.store, [acct],
                      extra=["--clock-offset-days", "1"])
        self.assertEqual(r.polls[0]["deleted"], "0", r)
        self.assertEqual(self.dc.count("alice"), 5)
        r = run_fetch(self, self.store, [acct],
                      extra=["--clock-offset-days", "3"])
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "5"), r)
        self.assertEqual(self.dc.count("alice"), 0)
        msgs, _ = self.dump()
        self.assertSameMessages(msgs, raws)

    def test_mirror_mode_deletes_what_the_user_expunged(self):
        raws = [make_message(i, 2000) for i in range(6)]
        self.dc.add_messages("alice", raws)
        acct = self.acct(mode="mirror")
        r = run_fetch(self, self.store, [acct])
        self.assertEqual(r.polls[0]["fetched"], "6", r)
        self.assertEqual(self.dc.count("alice"), 6)
        r = run_fetch(self, self.store, [acct], extra=["--expunge", "2"])
        self.assertIn("expunged=2", r.stdout)
        self.assertEqual((r.polls[0]["fetched"], r.polls[0]["deleted"]),
                         ("0", "2"), r)
        self.assertEqual(self.dc.count("alice"), 4)
        msgs, _ = self.dump()
        self.assertEqual(len(msgs), 4)

    def test_several_thousand_messages(self):
        n = 3000
        raws = [make_message(i, 600 + (i * 37) % 4000) for i in range(n)]
        self.dc.add_messages("alice", raws)
        r = run_fetch(self, self.store, [self.acct()], polls=2, timeout=300)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([p["fetched"] for p in r.polls], [str(n), "0"], r)
        msgs, _ = self.dump()
        self.assertSameMessages(msgs, raws)

    def test_target_folder_and_auth_mechanisms(self):
        raws = [make_message(i, 1500) for i in range(3)]
        self.dc.add_messages("alice", raws)
        for i, auth in enumerate(("user", "plain", "login", "cram-md5")):
            store = os.path.join(self.tmp, "store-" + auth)
            r = run_fetch(self, store, [self.acct(auth=auth,
                                                  mailbox="Upstream/alice")])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.polls[0]["fetched"], "3", r)
            msgs, ledger = self.dump(store)
            self.assertSameMessages(msgs, raws)
            self.assertTrue(any("Upstream/alice 3" in l for l in ledger),
                            ledger)

    def test_cram_md5_wrong_password_is_an_auth_failure(self):
        r = run_fetch(self, self.store, [self.acct(password="wrong",
                                                   auth="cram-md5")],
                      extra=["--breaker", "1"])
        self.assertEqual(r.polls[0]["outcome"], "auth", r)
        self.assertIn("cram-md5", r.polls[0]["error"])

    def test_cram_md5_answer_masked_in_trace(self):
        r = run_fetch(self, self.store, [self.acct(auth="cram-md5", trace=1)])
        self.assertEqual(r.polls[0]["outcome"], "ok", r)
        self.assertIn('trace=C line="AUTH CRAM-MD5"', r.stderr)
        self.assertIn('trace=C line="****"', r.stderr)
        self.assertIn("auth=cram-md5", r.stderr)

    def test_wrong_password_is_an_auth_failure(self):
        r = run_fetch(self, self.store, [self.acct(password="wrong")],
                      extra=["--breaker", "1"])
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.polls[0]["outcome"], "auth", r)
        self.assertEqual(r.polls[0]["state"], "auth-failed", r)
        self.assertNotIn("wrong", r.stderr)


if __name__ == "__main__":
    unittest.main()
