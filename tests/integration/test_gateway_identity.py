"""One person, one user (issue 15): user names are canonical (the domain
always lower case, the local part folded unless [store] fold_user_names
is off) at IMAP login, on the control socket (popgatectl), in a CSV
import and with pass-through; a store whose names collide after folding
is reported at start-up and by popgatectl check, never merged."""
import imaplib
import json
import os
import re
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes
from pgtest.gateway import Gateway


DOVECOT_LOGOUT_FORMAT = ("pop3_logout_format = top=%t/%p, retr=%r/%b, "
                         "del=%d/%m, size=%s\n")
DOVECOT_LOGOUT = re.compile(rb"Logged out top=(\d+)/(\d+), retr=(\d+)/(\d+)")


def login(gw, user, password):
    c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
    try:
        typ, _ = c.login(user, password)
        c.logout()
        return typ
    except imaplib.IMAP4.error:
        return "NO"


def users(gw):
    return sorted(u["user"] for u in
                  gw.ok({"command": "user.list"})["users"])


class CanonicalNamesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = None

    def tearDown(self):
        if self.gw is not None and self.gw.proc is not None:
            self.gw.stop()

    def start(self, extra=""):
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          extra=extra)
        self.gw.start()
        return self.gw

    def test_login_case_variants_reach_one_user(self):
        gw = self.start()
        r = gw.ctl("user", "add", "Alice@Example.ORG", "--password-stdin",
                   stdin="pw-a\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(users(gw), ["alice@example.org"])
        for name in ("alice@example.org", "ALICE@EXAMPLE.ORG",
                     "Alice@example.Org"):
            self.assertEqual(login(gw, name, "pw-a"), "OK", name)
        self.assertEqual(login(gw, "alice@example.org", "wrong"), "NO")
        # the same person from two devices: one mailbox, one user
        c1 = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
        c2 = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
        c1.login("ALICE@example.org", "pw-a")
        c2.login("alice@EXAMPLE.org", "pw-a")
        c1.append("INBOX", None, None, b"Subject: one\r\n\r\nbody\r\n")
        c2.select("INBOX")
        self.assertEqual(c2.search(None, "ALL")[1], [b"1"])
        c1.logout()
        c2.logout()

    def test_unicode_case_variants_reach_one_user(self):
        # Unicode full case folding in NFC: upper case, and a decomposed
        # u + U+0308, reach the user stored as "jürg@bücher.example"
        gw = self.start()
        r = gw.ctl("user", "add", "JÜRG@BÜCHER.Example", "--password-stdin",
                   stdin="pw-j\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(users(gw), ["jürg@bücher.example"])
        r = gw.ctl("user", "add", "Jürg@bücher.example",
                   "--password-stdin", stdin="other\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stdout + r.stderr)
        r = gw.ctl("user", "add", "Straße", "--password-stdin",
                   stdin="pw-s\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(users(gw), ["jürg@bücher.example", "strasse"])
        for name, pw in (("jürg@bücher.example", "pw-j"),
                         ("JÜRG@BÜCHER.EXAMPLE", "pw-j"),
                         ("Ju\u0308rg@bu\u0308cher.example", "pw-j"),
                         ("STRASSE", "pw-s"), ("straße", "pw-s")):
            c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
            # AUTHENTICATE PLAIN carries the UTF-8 name as it is typed
            typ, _ = c.authenticate(
                "PLAIN", lambda _, n=name, p=pw: b"\0" + n.encode() +
                b"\0" + p.encode())
            self.assertEqual(typ, "OK", name)
            c.logout()
        c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
        with self.assertRaises(imaplib.IMAP4.error):
            c.authenticate("PLAIN", lambda _: "\0JÜRG@bücher.example"
                           "\0wrong".encode())
        c.logout()

    def test_ctl_add_beside_existing_refused(self):
        gw = self.start()
        r = gw.ctl("user", "add", "alice", "--password-stdin", stdin="p1\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = gw.ctl("user", "add", "Alice", "--password-stdin", stdin="p2\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("exists", r.stdout + r.stderr)
        self.assertEqual(users(gw), ["alice"])
        # every command takes any spelling of the name
        r = gw.ctl("user", "passwd", "ALICE", "--password-stdin",
                   stdin="p3\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(login(gw, "Alice", "p3"), "OK")
        self.assertEqual(login(gw, "alice", "p1"), "NO")
        # a CSV import folds as well: two spellings, one user
        path = os.path.join(gw.dir, "u.csv")
        with open(path, "w") as f:
            f.write("user,user_password\r\nBob@Example.org,B-pw\r\n"
                    "bob@example.ORG,\r\n")
        r = gw.ctl("--json", "import", path)
        rep = json.loads(r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([l["user"] for l in rep["lines"]],
                         ["bob@example.org"] * 2)
        self.assertEqual(users(gw), ["alice", "bob@example.org"])
        self.assertEqual(login(gw, "BOB@example.org", "B-pw"), "OK")

    def test_fold_off_keeps_local_part_but_folds_domain(self):
        gw = self.start("[store]\nfold_user_names = no\n")
        gw.ok({"command": "user.add", "user": "Carol@Example.ORG",
               "password": "c1"})
        gw.ok({"command": "user.add", "user": "carol@example.org",
               "password": "c2"})
        self.assertEqual(users(gw), ["Carol@example.org",
                                     "carol@example.org"])
        self.assertEqual(login(gw, "Carol@EXAMPLE.org", "c1"), "OK")
        self.assertEqual(login(gw, "carol@example.org", "c2"), "OK")
        self.assertEqual(login(gw, "CAROL@example.org", "c1"), "NO")

    def test_collisions_reported_at_startup_never_merged(self):
        # a store made with folding off (or by an older popgated)
        gw = self.start("[store]\nfold_user_names = no\n")
        for name, pw in (("Dan", "d1"), ("dan", "d2"), ("Eve", "e1")):
            gw.ok({"command": "user.add", "user": name, "password": pw})
        gw.stop()
        before = len(gw.output())
        r = gw.ctl("check", gw.data)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn('"Dan" and', r.stdout)
        self.assertIn('"dan"', r.stdout)
        # folding on (the default): Eve alone becomes eve; Dan and dan
        # are reported and both kept
        gw.write_conf()
        gw.start()
        out = gw.output()[before:]
        self.assertIn("event=user-renamed", out)
        self.assertEqual(out.count("event=user-name-collision "), 2, out)
        self.assertEqual(users(gw), ["Dan", "dan", "eve"])
        self.assertEqual(login(gw, "EVE", "e1"), "OK")
        # a login reaches the canonical one only
        self.assertEqual(login(gw, "Dan", "d2"), "OK")
        self.assertEqual(login(gw, "Dan", "d1"), "NO")
        # the admin reaches the other by its exact name, and keeps one
        gw.ok({"command": "user.delete", "user": "Dan"})
        self.assertEqual(users(gw), ["dan", "eve"])
        gw.stop()
        r = gw.ctl("check", gw.data)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.gw = None


class PassthroughCaseTest(unittest.TestCase):
    """A phone typing Erin@Example.org and a laptop typing
    erin@example.org are one user with one pass-through account."""

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("erin@example.org", "legacy-pw")
        self.dc.start()
        extra = ("[passthrough]\nenabled = yes\nhost = 127.0.0.1\n"
                 "port = %d\ntls = stls\ndomains = example.org\n"
                 % self.dc.port)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca, extra=extra)
        self.gw.start()

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    def test_case_variants_one_user_one_account(self):
        for i in range(3):
            self.dc.add_message("erin@example.org", make_message(i, 500))
        self.assertEqual(login(self.gw, "Erin@Example.ORG", "legacy-pw"),
                         "OK", self.gw.output()[-2000:])
        self.assertEqual(login(self.gw, "erin@example.org", "legacy-pw"),
                         "OK")
        self.assertEqual(login(self.gw, "ERIN@example.org", "legacy-pw"),
                         "OK")
        self.assertEqual(users(self.gw), ["erin@example.org"])
        accts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual([(a["user"], a["account"], a["login"])
                          for a in accts],
                         [("erin@example.org", "passthrough",
                           "erin@example.org")])
        self.assertEqual(self.gw.output().count("event=user-created"), 1)
        # its mail arrives once
        self.gw.ok({"command": "poll", "user": "ERIN@example.org"})
        s = self.gw.wait_first_fetched(3)
        self.assertEqual(s.get("messages_fetched"), 3, s)


class ContentIdentityTest(unittest.TestCase):
    """Each message once, whatever the UIDLs: after the upstream renumbers
    every UIDL (Dovecot's pop3_uidl_format changed, and a restart), the
    next poll downloads the mailbox again but delivers only what is new;
    an account removed and added again finds the same."""

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("fay", "pop-pw")
        # Dovecot counts the TOPs and RETRs of each session, and bytes
        self.dc.extra_conf = DOVECOT_LOGOUT_FORMAT
        self.dc._write_conf()
        self.dc.start()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca)
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "fay",
                    "password": "imap-pw"})

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    def add_account(self, name="legacy", **kw):
        req = {"command": "account.add", "user": "fay",
               "host": "127.0.0.1", "port": self.dc.port,
               "tls": "stls", "login": "fay", "password": "pop-pw",
               "account": name, "mode": "keep", "interval": 3600}
        req.update(kw)
        self.gw.ok(req)

    def poll(self, account=None):
        """Polls and waits for that poll's poll-done line; returns it."""
        before = self.gw.output().count("event=poll-done")
        req = {"command": "poll", "user": "fay"}
        if account is not None:
            req["account"] = account
        self.gw.ok(req)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = [l for l in self.gw.output().splitlines()
                     if "event=poll-done" in l]
            if len(lines) > before:
                return lines[before]
            time.sleep(0.2)
        self.fail("no poll-done:\n" + self.gw.output()[-3000:])

    def inbox(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=60)
        c.login("fay", "imap-pw")
        typ, data = c.select("INBOX", readonly=True)
        n = int(data[0])
        bodies = []
        if n:
            typ, data = c.fetch("1:*", "(BODY.PEEK[])")
            bodies = [d[1] for d in data if isinstance(d, tuple)]
        c.logout()
        return bodies

    def uidls(self):
        import poplib
        p = poplib.POP3("127.0.0.1", self.dc.port, timeout=60)
        p.user("fay")
        p.pass_("pop-pw")
        lines = p.uidl()[1]
        p.quit()
        return sorted(l.split()[1] for l in lines)

    def dovecot_log_size(self):
        return os.path.getsize(self.dc.log) if os.path.exists(self.dc.log) \
            else 0

    def retrs_since(self, pos):
        """(TOPs, RETRs, RETR bytes) Dovecot counted in the sessions it
        logged out after byte pos of its log."""
        with open(self.dc.log, "rb") as f:
            f.seek(pos)
            text = f.read()
        lines = DOVECOT_LOGOUT.findall(text)
        self.assertTrue(lines, "no logout line in Dovecot's log: %r"
                        % text[-2000:])
        return (sum(int(x[0]) for x in lines),
                sum(int(x[2]) for x in lines),
                sum(int(x[3]) for x in lines))

    def test_renumbered_uidls_and_readded_account_deliver_nothing_twice(
            self):
        # ten messages, each of its own header block; besides them:
        # - a byte-identical copy of message 3 (both delivered)
        # - a message with message 5's header block and size but another
        #   body (the same message sent twice, or a server that shows one
        #   header for two bodies)
        # - a message without Message-ID
        raws = [make_message(i, 1500 + 37 * i) for i in range(10)]
        twin = raws[5].replace(b"Lorem", b"LOREM", 1)
        self.assertEqual(len(twin), len(raws[5]))
        nomsgid = make_message(50, 1500).replace(b"Message-ID:",
                                                 b"X-Not-ID:")
        raws += [raws[3], twin, nomsgid]
        self.dc.add_messages("fay", raws)
        self.add_account()
        done = self.poll()
        self.assertIn("fetched=13 ", done)
        self.assertEqual(len(self.inbox()), 13)
        old = self.uidls()

        # every UIDL changes; two new messages arrive
        self.dc.restart_with_uidl_format("%08Xv-%08Xu")
        self.assertEqual(set(old) & set(self.uidls()), set())
        new = [make_message(100 + i, 2900 + 53 * i) for i in range(2)]
        self.dc.add_messages("fay", new)
        pos = self.dovecot_log_size()
        done = self.poll()
        # eight recognised by TOP n 0 (header block + LIST size against
        # the ledger); RETRieved: the copies of 3 and of 5's header
        # (listed twice: in doubt), the one without Message-ID, the two
        # new ones; of those, five are known by their bytes
        self.assertIn("fetched=2 ", done)
        self.assertIn("known=13 known_top=8 ", done)
        tops, retrs, retr_bytes = self.retrs_since(pos)
        retrieved = [raws[3], raws[10], raws[5], twin, nomsgid] + new
        self.assertEqual(retrs, len(retrieved))
        self.assertLess(retr_bytes, sum(len(wire_bytes(r)) + 200
                                        for r in retrieved))
        self.assertGreaterEqual(tops, 8)
        bodies = self.inbox()
        self.assertEqual(sorted(wire_bytes(b) for b in bodies),
                         sorted(wire_bytes(r) for r in raws + new))
        # the new UIDLs are in the ledger now: nothing is downloaded
        pos = self.dovecot_log_size()
        done = self.poll()
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=0 ", done)
        self.assertEqual(self.retrs_since(pos), (0, 0, 0))

        # the twin goes from the server (deleted by another client);
        # the account is removed and added again, renumbered once more
        # meanwhile: message 5's header now matches two deliveries of
        # other bytes (in doubt: RETR, and its bytes decide)
        md = self.dc.maildir("fay")
        gone = [os.path.join(md, sub, f) for sub in ("new", "cur")
                for f in os.listdir(os.path.join(md, sub))
                if open(os.path.join(md, sub, f), "rb").read() == twin]
        self.assertEqual(len(gone), 1)
        os.unlink(gone[0])
        self.gw.ok({"command": "account.delete", "user": "fay",
                    "account": "legacy"})
        self.dc.restart_with_uidl_format("%f")
        self.add_account()
        pos = self.dovecot_log_size()
        done = self.poll()
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=14 known_top=10 ", done)
        tops, retrs, retr_bytes = self.retrs_since(pos)
        retrieved = [raws[3], raws[10], raws[5], nomsgid]
        self.assertEqual(retrs, len(retrieved))
        self.assertLess(retr_bytes, sum(len(wire_bytes(r)) + 200
                                        for r in retrieved))
        self.assertEqual(sorted(wire_bytes(b) for b in self.inbox()),
                         sorted(wire_bytes(r) for r in raws + new))
        out = self.gw.output()
        self.assertEqual(out.count("event=known-by-header"), 18)
        self.assertEqual(out.count("event=known-by-content"), 5 + 4)

    def test_account_readded_under_another_name_delivers_nothing_twice(
            self):
        # content identity is keyed by the upstream mailbox (host, port,
        # login), not the account's name: a new name on the same mailbox
        # downloads it once more and delivers nothing already delivered,
        # nor does a second account forced onto the mailbox
        raws = [make_message(i, 1500) for i in range(6)]
        self.dc.add_messages("fay", raws)
        self.add_account()
        self.assertIn("fetched=6 ", self.poll())
        self.gw.ok({"command": "account.delete", "user": "fay",
                    "account": "legacy"})
        self.add_account("renamed")
        done = self.poll()
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=6 ", done)
        self.assertEqual(len(self.inbox()), 6)
        new = make_message(200, 1500)
        self.dc.add_message("fay", new)
        done = self.poll()
        self.assertIn("fetched=1 ", done)
        self.assertIn("known=0 ", done)
        # a second account on this mailbox, forced: known, not delivered
        self.add_account("twin", force=True)
        done = self.poll("twin")
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=7 ", done)
        done = self.poll("renamed")
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=0 ", done)
        bodies = self.inbox()
        self.assertEqual(sorted(wire_bytes(b) for b in bodies),
                         sorted(wire_bytes(r) for r in raws + [new]))


    def test_account_readded_under_another_host_spelling(self):
        # the mailbox is also known by the address the gateway reached it
        # at: an account on "localhost", removed, then added on
        # "127.0.0.1" under another name finds its deliveries, and
        # recognises them by TOP n 0 without a download
        raws = [make_message(i, 1800 + 41 * i) for i in range(8)]
        self.dc.add_messages("fay", raws)
        self.add_account("by-name", host="localhost")
        self.assertIn("fetched=8 ", self.poll())
        self.gw.ok({"command": "account.delete", "user": "fay",
                    "account": "by-name"})
        new = make_message(300, 4100)
        self.dc.add_message("fay", new)
        self.add_account("by-address", host="127.0.0.1")
        pos = self.dovecot_log_size()
        done = self.poll()
        self.assertIn("fetched=1 ", done)
        self.assertIn("known=8 known_top=8 ", done)
        tops, retrs, retr_bytes = self.retrs_since(pos)
        self.assertEqual(retrs, 1)
        self.assertLess(retr_bytes, len(wire_bytes(new)) + 200)
        self.assertEqual(sorted(wire_bytes(b) for b in self.inbox()),
                         sorted(wire_bytes(r) for r in raws + [new]))
        # and back to the name, in other case, renumbered meanwhile
        self.gw.ok({"command": "account.delete", "user": "fay",
                    "account": "by-address"})
        self.dc.restart_with_uidl_format("%08Xv-%08Xu")
        self.add_account("by-name-again", host="LocalHost")
        pos = self.dovecot_log_size()
        done = self.poll()
        self.assertIn("fetched=0 ", done)
        self.assertIn("known=9 known_top=9 ", done)
        self.assertEqual(self.retrs_since(pos)[1], 0)
        self.assertEqual(len(self.inbox()), 9)


class SameMailboxTest(unittest.TestCase):
    """One upstream mailbox, one account: a second account on the same
    host (another spelling of its name, or a name that resolves to the
    same address), port and login is refused unless forced."""

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca)
        self.gw.start()
        for u in ("gil", "hal"):
            self.gw.ok({"command": "user.add", "user": u, "password": "p"})

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()

    def add(self, user, host, login, name, **extra):
        req = {"command": "account.add", "user": user, "host": host,
               "port": 1110, "tls": "none", "login": login,
               "password": "x", "account": name, "interval": 3600,
               "allow_cleartext": True}
        req.update(extra)
        return self.gw.request(req)

    def test_second_account_on_same_mailbox_refused_unless_forced(self):
        self.assertTrue(self.add("gil", "127.0.0.1", "gil", "a")["ok"])
        # the same host spelt otherwise, the login in other case
        for host, login in (("127.0.0.1", "GIL"), ("localhost", "gil")):
            r = self.add("gil", host, login, "b")
            self.assertFalse(r["ok"], (host, login))
            self.assertEqual(r["error"]["code"], "exists", r)
            self.assertIn("gil/a", r["error"]["message"])
        # another user on the same mailbox: refused too
        r = self.add("hal", "localhost", "gil", "a")
        self.assertEqual(r["error"]["code"], "exists", r)
        # host names compare without case and a final dot (no look-up:
        # this name resolves nowhere)
        self.assertTrue(self.add("hal", "mail.example.invalid", "hal",
                                 "h")["ok"])
        r = self.add("gil", "MAIL.Example.INVALID.", "Hal", "h2")
        self.assertEqual(r["error"]["code"], "exists", r)
        self.assertIn("hal/h", r["error"]["message"])
        # another login, or another port: another mailbox
        self.assertTrue(self.add("gil", "localhost", "gil2", "c")["ok"])
        r = self.add("gil", "localhost", "gil", "d")
        self.assertFalse(r["ok"])
        self.assertTrue(self.gw.request(
            {"command": "account.add", "user": "gil", "host": "localhost",
             "port": 1111, "tls": "none", "login": "gil", "password": "x",
             "account": "e", "allow_cleartext": True})["ok"])
        # forced: the admin knows better
        r = self.gw.ctl("account", "add", "gil", "--host", "localhost",
                        "--port", "1110", "--tls", "none", "--login", "gil",
                        "--name", "f", "--force", "--allow-cleartext", "yes",
                        "--password-stdin",
                        stdin="x\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.gw.ctl("account", "add", "gil", "--host", "localhost",
                        "--port", "1110", "--tls", "none", "--login", "gil",
                        "--name", "g", "--allow-cleartext", "yes",
                        "--password-stdin", stdin="x\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("same upstream mailbox", r.stdout + r.stderr)
        names = sorted(a["account"] for a in
                       self.gw.ok({"command": "account.list"})["accounts"])
        self.assertEqual(names, ["a", "c", "e", "f", "h"])


if __name__ == "__main__":
    unittest.main()
