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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            s = self.gw.ok({"command": "status"})["accounts"][0]["status"]
            if s.get("messages_fetched") == 1:
                break
            time.sleep(0.2)
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
        # a user whose local password no longer matches the legacy one
        # (changed there after the migration started)
        self.gw.ok({"command": "user.add", "user": "carol@example.org",
                    "password": "old-local-pw"})
        self.assertEqual(self.login("carol@example.org", "old-local-pw")[0],
                         "OK")
        typ, _ = self.login("carol@example.org", "legacy-pw")
        self.assertEqual(typ, "OK", self.gw.output()[-2000:])
        self.assertIn("password-updated", self.gw.output())
        # the old local one is gone; the account was created once
        self.assertEqual(self.login("carol@example.org", "old-local-pw")[0],
                         "NO")
        self.assertEqual(self.login("carol@example.org", "legacy-pw")[0],
                         "OK")
        accts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual([a["account"] for a in accts], ["passthrough"])
        self.assertEqual(len(self.gw.ok({"command": "user.list"})["users"]),
                         1)

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


if __name__ == "__main__":
    unittest.main()
