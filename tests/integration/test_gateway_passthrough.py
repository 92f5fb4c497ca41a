"""Pass-through login for migrations, against a real Dovecot POP3 server
(STLS, the test CA): an IMAP LOGIN for an unknown user, or with a password
that no longer matches, is checked on the legacy server; on success the
user and a "passthrough" upstream account are created or updated. Wrong
passwords are refused and cached; other domains are not passed through;
attempts per user are rate-limited."""
import imaplib
import os
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway


class GatewayPassthroughTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("carol@example.org", "legacy-pw")
        self.dc.add_user("dave@other.org", "dave-pw")
        self.dc.start()
        extra = ("[passthrough]\nenabled = yes\nhost = 127.0.0.1\n"
                 "port = %d\ntls = stls\ndomains = example.org\n"
                 "attempts_per_minute = 4\nfailure_cache = 1m\n"
                 % self.dc.port)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca, extra=extra)
        self.gw.start()

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()

    def login(self, user, password):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        try:
            typ, data = c.login(user, password)
            c.logout()
            return typ, data[0]
        except imaplib.IMAP4.error as e:
            return "NO", str(e).encode()

    def test_unknown_user_adopted_and_account_created(self):
        self.dc.add_message("carol@example.org", make_message(1, 700))
        typ, _ = self.login("carol@example.org", "legacy-pw")
        self.assertEqual(typ, "OK", self.gw.output()[-2000:])
        users = [u["user"] for u in
                 self.gw.ok({"command": "user.list"})["users"]]
        self.assertEqual(users, ["carol@example.org"])
        accts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual(len(accts), 1)
        a = accts[0]
        self.assertEqual((a["account"], a["host"], a["port"], a["tls"],
                          a["login"]),
                         ("passthrough", "127.0.0.1", self.dc.port, "stls",
                          "carol@example.org"))
        # the account works: its mail arrives
        self.gw.ok({"command": "poll", "user": "carol@example.org"})
        s = self.gw.wait_first_fetched(1)
        self.assertEqual(s.get("messages_fetched"), 1, s)
        # the password now lives here: the login works with the legacy
        # server gone
        self.dc.stop()
        typ, _ = self.login("carol@example.org", "legacy-pw")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.gw.ok({"command": "stats"})["stats"]
                         ["passthrough_ok"], 1)
        self.assertNotIn("legacy-pw", self.gw.output())

    def test_changed_password_is_followed(self):
        # a user pass-through made, whose password then changes on the
        # legacy server (after the migration started)
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "OK", self.gw.output()[-2000:])
        # (the count test_admin_user_never_taken_over relies on)
        self.assertGreater(self.dovecot_logins("carol@example.org"), 0)
        self.dc.set_password("carol@example.org", "new-legacy-pw")
        typ, _ = self.login("carol@example.org", "new-legacy-pw")
        self.assertEqual(typ, "OK", self.gw.output()[-2000:])
        self.assertIn("password-updated", self.gw.output())
        # the old one is gone; the account was created once and has the
        # new password (a poll logs in with it)
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "NO")
        self.assertEqual(self.login("carol@example.org", "new-legacy-pw")
                         [0], "OK")
        accts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual([a["account"] for a in accts], ["passthrough"])
        self.assertEqual(len(self.gw.ok({"command": "user.list"})["users"]),
                         1)
        self.dc.add_message("carol@example.org", make_message(1, 700))
        self.gw.ok({"command": "poll", "user": "carol@example.org"})
        s = self.gw.wait_first_fetched(1)
        self.assertEqual(s.get("messages_fetched"), 1, s)

    def dovecot_logins(self, user):
        return self.dc.log_text().count("user=<%s>" % user)

    def test_admin_user_never_taken_over(self):
        # a user the admin made: the legacy password does not replace
        # the local one, the legacy server is not even asked, and no
        # account appears (issue 15)
        self.gw.ok({"command": "user.add", "user": "carol@example.org",
                    "password": "local-pw"})
        asked = self.dovecot_logins("carol@example.org")
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "NO")
        self.assertEqual(self.login("Carol@Example.org", "legacy-pw")[0],
                         "NO")
        self.assertEqual(self.dovecot_logins("carol@example.org"), asked)
        self.assertEqual(self.login("carol@example.org", "local-pw")[0],
                         "OK")
        self.assertEqual(self.gw.ok({"command": "account.list"})
                         ["accounts"], [])
        self.assertNotIn("password-updated", self.gw.output())

    def test_admin_reset_is_kept(self):
        # pass-through made the user; the admin then sets a password:
        # from then on the user is the admin's, and the old legacy
        # password never undoes the reset
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "OK", self.gw.output()[-2000:])
        r = self.gw.ctl("user", "passwd", "carol@example.org",
                        "--password-stdin", stdin="admin-pw\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "NO")
        self.assertEqual(self.login("carol@example.org", "admin-pw")[0],
                         "OK")
        self.assertNotIn("password-updated", self.gw.output())
        # and a restart changes nothing of it
        self.gw.stop()
        self.gw.start()
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "NO")
        self.assertEqual(self.login("carol@example.org", "admin-pw")[0],
                         "OK")

    def test_refusals_cache_domains_and_rate_limit(self):
        # wrong password: refused; the same pair again is answered from
        # the failure cache without asking the server
        self.assertEqual(self.login("carol@example.org", "wrong")[0], "NO")
        self.assertEqual(self.gw.output().count("passthrough event=denied"),
                         1)
        self.assertEqual(self.login("carol@example.org", "wrong")[0], "NO")
        self.assertEqual(self.gw.output().count("passthrough event=denied"),
                         1)
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        # a domain that is not listed is never passed through
        self.assertEqual(self.login("dave@other.org", "dave-pw")[0], "NO")
        # (the IMAP side logs the failed login with the name; no
        # pass-through line may mention it)
        self.assertEqual([l for l in self.gw.output().splitlines()
                          if "passthrough" in l and "dave" in l], [])
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        # rate limit: 4 checks per user name per minute (one used above)
        for pw in ("w2", "w3", "w4"):
            self.assertEqual(self.login("carol@example.org", pw)[0], "NO")
        typ, msg = self.login("carol@example.org", "legacy-pw")
        self.assertEqual(typ, "NO")
        self.assertIn(b"UNAVAILABLE", msg)
        self.assertIn("rate-limited", self.gw.output())
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        self.assertGreaterEqual(self.gw.ok({"command": "stats"})["stats"]
                                ["passthrough_failed"], 4)

    def test_crlf_in_login_not_injected_into_pop3(self):
        # An IMAP literal may hold CR LF: sent as "PASS %s" it became two
        # POP3 commands, and the server's +OK for the real password
        # adopted a user whose password carried the injected command.
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        try:
            c.literal = b"legacy-pw\r\nDELE 1"
            typ, _ = c._simple_command("LOGIN", "carol@example.org")
        except imaplib.IMAP4.error:
            typ = "NO"
        finally:
            try:
                c.logout()
            except Exception:
                pass
        self.assertEqual(typ, "NO")
        self.assertNotIn("passthrough event=", self.gw.output())
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        self.assertEqual(self.gw.ok({"command": "account.list"})
                         ["accounts"], [])


class PassthroughTlsTest(unittest.TestCase):
    """The login check is a session of the POP3 upstream client: its TLS
    verification is the poller's. A legacy server whose certificate no
    trusted CA signed, or that names another host, gets no credentials;
    the login is answered UNAVAILABLE and nobody is adopted."""

    def check_untrusted(self, host_cert):
        tmp = tempdir()
        ca = TestCA(tmp)
        dc = DovecotPop3(os.path.join(tmp, "dovecot"), ca,
                         host_cert=host_cert(ca))
        dc.add_user("erin@example.org", "legacy-pw")
        dc.start()
        self.addCleanup(dc.stop)
        extra = ("[passthrough]\nenabled = yes\nhost = 127.0.0.1\n"
                 "port = %d\ntls = stls\ndomains = example.org\n"
                 % dc.port)
        gw = Gateway(os.path.join(tmp, "gw"), ca, extra=extra)
        gw.start()
        self.addCleanup(gw.stop)
        c = imaplib.IMAP4("127.0.0.1", gw.imap_port, timeout=60)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            c.login("erin@example.org", "legacy-pw")
        c.logout()
        self.assertIn("UNAVAILABLE", str(e.exception))
        self.assertIn("passthrough event=unavailable", gw.output())
        self.assertIn("pop3 account=passthrough", gw.output())
        self.assertEqual(gw.ok({"command": "user.list"})["users"], [])
        # the server never saw a login attempt
        self.assertNotIn("erin@example.org", dc.log_text())
        self.assertNotIn("legacy-pw", gw.output())

    def test_untrusted_certificate_gets_no_credentials(self):
        self.check_untrusted(lambda ca: ca.self_signed("rogue"))

    def test_certificate_for_another_host_gets_no_credentials(self):
        self.check_untrusted(lambda ca: ca.cert("other",
                                                ("mail.example.net",)))


if __name__ == "__main__":
    unittest.main()
