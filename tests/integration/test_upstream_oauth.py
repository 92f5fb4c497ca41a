"""OAuth 2.0 upstream accounts end to end (issue 16), all with real parts:
the test authorization server (oauthd.py, HTTPS on loopback: device code,
token, refresh and introspection endpoints), Dovecot's POP3 server whose
oauth2 passdb asks that server whether each token is good, popgated and
popgatectl.

Cases: a first sign-in with popgatectl (XOAUTH2 and OAUTHBEARER) and mail
fetched with the token; access tokens refreshed before they expire (Dovecot
never sees an expired one); a revoked grant shown as "needs sign-in again"
with one refresh request and then silence (also after a restart), and a new
sign-in that brings the account back; a grant with the wrong scope; a user
who refuses; the provider down (the account waits with back-off, then
recovers)."""
import imaplib
import json
import os
import re
import ssl
import subprocess
import time
import unittest

from pgtest import TestCA, debian_module, free_port, tempdir
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway, popgatectl
from pgtest.oauth import OAuthServer
from pgtest.web import WebClient, chromium, web_section


class OAuthBase(unittest.TestCase):
    ACCESS_TTL = 3600
    # access tokens as long as Microsoft's: too long for AUTH's initial
    # response (RFC 5034: 255 octets), so sent after the empty challenge
    TOKEN_LEN = 2400
    ROTATE = False
    PROVIDER_SCOPE = "pop3 offline_access"   # what popgate asks for
    DOVECOT_SCOPE = None                     # what Dovecot requires

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.oauth = OAuthServer(os.path.join(self.tmp, "oauthd"), self.ca,
                                 access_ttl=self.ACCESS_TTL,
                                 token_len=self.TOKEN_LEN,
                                 rotate=self.ROTATE)
        self.oauth.start()
        oauth2 = self.oauth.dovecot_conf()
        if self.DOVECOT_SCOPE:
            oauth2["scope"] = self.DOVECOT_SCOPE
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca,
                              mechanisms="plain xoauth2 oauthbearer",
                              oauth2=oauth2)
        # passwords Dovecot's passwd file holds, never used by popgate:
        # these accounts sign in with tokens only
        self.dc.add_user("alice", "unused-pw-1")
        self.dc.add_user("bob", "unused-pw-2")
        self.dc.start()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          extra=self.provider_conf())
        self.gw.start()
        self.gw.ctl("user", "add", "alice", "--password-stdin",
                    stdin="imap-pw\n")

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        self.dc.stop()
        self.oauth.stop()

    def provider_conf(self):
        return ("[oauth.testprov]\nclient_id = %s\n"
                "device_endpoint = %s\ntoken_endpoint = %s\n"
                "scope = %s\nca_file = %s\n"
                "host = 127.0.0.1\nport = %d\ntls = stls\n"
                % (OAuthServer.CLIENT_ID, self.oauth.url("/device"),
                   self.oauth.url("/token"), self.PROVIDER_SCOPE,
                   self.ca.ca_crt, self.dc.port) +
                # a provider whose answers are too large (the test server
                # pads its answers to this client id with 100 KB)
                "[oauth.bloat]\nclient_id = bloat\n"
                "device_endpoint = %s\ntoken_endpoint = %s\nscope = pop3\n"
                "ca_file = %s\nhost = 127.0.0.1\nport = %d\ntls = stls\n"
                % (self.oauth.url("/device"), self.oauth.url("/token"),
                   self.ca.ca_crt, self.dc.port))

    # ---- helpers -----------------------------------------------------------

    def add_account(self, name="work", login="alice", auth=None):
        args = ["account", "add", "alice", "--oauth-provider", "testprov",
                "--login", login, "--name", name, "--interval", "3600"]
        if auth:
            args += ["--auth", auth]
        r = self.gw.ctl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)

    def sign_in(self, name="work", username="alice", scope=None,
                deny=False):
        """Runs `popgatectl account oauth` as an admin would; approves
        (or refuses) the code it prints as the user would in a browser.
        Returns (exit code, stdout, stderr)."""
        p = subprocess.Popen([popgatectl(), "-s", self.gw.socket, "account",
                              "oauth", "alice", name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        out = ""
        code = None
        deadline = time.monotonic() + 30
        while code is None and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out += line
            m = re.match(r"\s+(\d{4}-\d{4})\s*$", line)
            if m:
                code = m.group(1)
        self.assertIsNotNone(code, "no user code printed: %s" % out)
        self.assertIn("https://127.0.0.1:%d/activate" % self.oauth.port, out)
        r = self.oauth.approve(code, username, scope=scope, deny=deny)
        self.assertTrue(r.get("ok"), r)
        rest, err = p.communicate(timeout=60)
        return p.returncode, out + rest, err

    def status(self, name="work"):
        st = self.gw.ok({"command": "status", "user": "alice"})
        for a in st["accounts"]:
            if a["account"] == name:
                return a["status"]
        self.fail("no account %s in %s" % (name, st))

    def wait_status(self, pred, name="work", timeout=60, what="state"):
        deadline = time.monotonic() + timeout
        s = None
        while time.monotonic() < deadline:
            s = self.status(name)
            if pred(s):
                return s
            time.sleep(0.2)
        self.fail("%s not reached: %s\n%s" % (what, s,
                                               self.gw.output()[-3000:]))

    def wait_fetched(self, count, name="work"):
        return self.wait_status(
            lambda s: s.get("last_success") and
            s.get("messages_fetched", 0) >= count and
            s["state"] == "idle", name, what="fetched %d" % count)

    def poll(self, name="work"):
        self.gw.ok({"command": "poll", "user": "alice", "account": name})

    def tokens(self):
        """Every access and refresh token the provider issued."""
        with open(self.oauth.state) as f:
            st = json.load(f)
        return list(st["grants"]) + list(st["access"])


class OAuthUpstreamTest(OAuthBase):
    def test_first_signin_fetches_with_xoauth2_and_oauthbearer(self):
        self.dc.add_messages("alice", [make_message(i) for i in range(3)])
        self.dc.add_messages("bob", [make_message(10 + i) for i in range(2)])
        self.add_account("work")
        self.add_account("bobs", login="bob", auth="oauthbearer")
        # before sign-in: not polled, and status says what to do
        s = self.status("work")
        self.assertEqual(s["state"], "not-signed-in", s)
        r = self.gw.ctl("status", "alice")
        self.assertIn("popgatectl account oauth alice work", r.stdout)
        rc, out, err = self.sign_in("work")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("signed in", out)
        rc, out, err = self.sign_in("bobs", username="bob")
        self.assertEqual(rc, 0, out + err)
        s = self.wait_fetched(3, "work")
        self.assertEqual(s["oauth"]["state"], "valid", s)
        s = self.wait_fetched(2, "bobs")
        self.assertIn("auth=xoauth2", self.gw.output())
        self.assertIn("auth=oauthbearer", self.gw.output())
        self.assertGreaterEqual(self.oauth.count("introspect_active"), 2)
        self.assertEqual(self.oauth.count("introspect_inactive"), 0)
        # the refresh token is at rest only sealed; no token is ever
        # logged or shown
        text = json.dumps(self.gw.ok({"command": "account.list",
                                      "user": "alice"}))
        text += json.dumps(self.gw.ok({"command": "status"}))
        log = self.gw.output()
        with open(os.path.join(self.gw.data, "data.mdb"), "rb") as f:
            db = f.read()
        toks = self.tokens()
        self.assertGreaterEqual(len(toks), 4)
        for t in toks:
            self.assertNotIn(t, text)
            self.assertNotIn(t, log)
            self.assertNotIn(t.encode(), db, "a token in clear at rest")

    def test_csv_import_then_signin(self):
        self.dc.add_messages("alice", [make_message(5)])
        csv = ("user,user_password,host,port,tls,login,password,mode,"
               "folder,interval,account,auth,ca_file,ca_only,fingerprint,"
               "allow_cleartext,oauth_provider\n"
               "alice,,,,,alice,,,,3600,fromcsv,,,,,,testprov\n")
        r = self.gw.ctl("import", "-", stdin=csv)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        acc = [a for a in self.gw.ok({"command": "account.list",
                                      "user": "alice"})["accounts"]
               if a["account"] == "fromcsv"][0]
        self.assertEqual(acc["auth"], "xoauth2")
        self.assertEqual(acc["port"], self.dc.port)
        self.assertEqual(acc["tls"], "stls")
        self.assertFalse(acc["oauth_grant"])
        rc, out, err = self.sign_in("fromcsv")
        self.assertEqual(rc, 0, out + err)
        self.wait_fetched(1, "fromcsv")

    def test_oversized_answer_refused(self):
        r = self.gw.ctl("account", "add", "alice", "--oauth-provider",
                        "bloat", "--login", "alice", "--name", "big")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.ctl("account", "oauth", "alice", "big")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("larger than 65536 bytes", r.stderr)
        self.assertIn("oauth-unreachable", r.stderr)
        self.assertEqual(self.status("big")["state"], "not-signed-in")

    def test_denied_signin(self):
        self.add_account()
        rc, out, err = self.sign_in(deny=True)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("oauth-denied", err)
        self.assertEqual(self.status()["state"], "not-signed-in")

    def test_wrong_scope_is_refused(self):
        self.add_account()
        # the user (or the provider's policy) grants less than asked
        rc, out, err = self.sign_in(scope="profile")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("oauth-scope", err)
        self.assertIn("profile", err)
        s = self.status()
        self.assertEqual(s["state"], "not-signed-in", s)
        self.assertEqual(self.oauth.count("introspect_active") +
                         self.oauth.count("introspect_inactive"), 0,
                         "Dovecot was contacted")

    def test_revoked_grant_needs_signin_without_hammering(self):
        self.dc.add_messages("alice", [make_message(1)])
        self.add_account()
        rc, out, err = self.sign_in()
        self.assertEqual(rc, 0, out + err)
        self.wait_fetched(1)
        refreshes = self.oauth.count("token_refresh")
        self.oauth.revoke("alice")
        self.poll()
        s = self.wait_status(lambda s: s["state"] == "needs-signin",
                             what="needs-signin")
        self.assertIn("needs sign-in again", s["last_error"])
        self.assertEqual(s["oauth"]["state"], "needs-signin")
        text = self.gw.ctl("status", "alice").stdout
        self.assertIn("needs-signin", text)
        self.assertIn("popgatectl account oauth alice work", text)
        # exactly one refresh asked after the refusal, then silence:
        # polls asked for now are not even attempted
        self.assertEqual(self.oauth.count("token_refresh"), refreshes + 1)
        logins = self.oauth.count("introspect_inactive")
        for _ in range(3):
            self.poll()
            time.sleep(1)
        self.assertEqual(self.oauth.count("token_refresh"), refreshes + 1)
        self.assertEqual(self.oauth.count("introspect_inactive"), logins)
        # and after a restart
        self.gw.stop()
        self.gw.start()
        time.sleep(2)
        self.assertEqual(self.status()["state"], "needs-signin")
        self.assertEqual(self.oauth.count("token_refresh"), refreshes + 1)
        # a new sign-in brings it back
        self.dc.add_messages("alice", [make_message(2)])
        rc, out, err = self.sign_in()
        self.assertEqual(rc, 0, out + err)
        self.wait_fetched(1)    # counters restart with the daemon
        s = self.status()
        self.assertEqual(s["oauth"]["state"], "valid")


class OAuthWebSignInTest(OAuthBase):
    """The web page (issue 20) adds an account that signs in with a
    provider and signs it in: the person gets the code and the address,
    approves it at the provider, and the mail comes in; nobody else can
    start a sign-in for the account, and the device code never leaves
    popgated."""

    def provider_conf(self):
        self.web_port = free_port()
        return (super().provider_conf() + web_section(self.web_port) +
                "self_service = yes\n")

    def test_add_and_sign_in_from_the_page(self):
        self.dc.add_messages("alice", [make_message(i) for i in range(2)])
        self.gw.ok({"command": "user.add", "user": "bob",
                    "password": "bob-pw"})
        a = WebClient(self.web_port, self.ca.ca_crt)
        body = a.login("alice", "imap-pw")
        self.assertIn("testprov", body["oauth_providers"])
        status, _, body = a.call("POST", "/api/account/add",
                                 {"oauth_provider": "testprov",
                                  "login": "alice", "account": "work"})
        self.assertEqual((status, body), (200, {"account": "work"}))
        acct = a.accounts()["work"]
        self.assertTrue(acct["oauth"])
        self.assertEqual(acct["state"], "not-signed-in")
        self.assertEqual(acct["advice"]["code"], "sign-in-needed")
        # another user cannot start a sign-in of alice's account
        b = WebClient(self.web_port, self.ca.ca_crt)
        b.login("bob", "bob-pw")
        self.assertEqual(b.call("POST", "/api/account/signin",
                                {"account": "work"})[0], 400)
        self.assertEqual(a.call("POST", "/api/account/signin",
                                {"account": "work"}, csrf=False)[0], 403)
        status, _, body = a.call("POST", "/api/account/signin",
                                 {"account": "work"})
        self.assertEqual(status, 200, body)
        self.assertEqual(set(body) - {"verification_uri_complete"},
                         {"user_code", "verification_uri", "expires_in"})
        self.assertIn("https://127.0.0.1:%d/activate" % self.oauth.port,
                      body["verification_uri"])
        r = self.oauth.approve(body["user_code"], "alice")
        self.assertTrue(r.get("ok"), r)
        self.poll()
        self.wait_fetched(2)
        deadline = time.monotonic() + 60
        while a.accounts()["work"]["state"] != "idle" and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        acct = a.accounts()["work"]
        self.assertEqual((acct["state"], acct["advice"]), ("idle", None))
        self.assertEqual(acct["imported"], 2)
        out = self.gw.output()
        self.assertIn("component=web event=account-signin ip=127.0.0.1 "
                      "user=alice account=work result=ok", out)
        self.assertIn("component=web event=account-signin ip=127.0.0.1 "
                      "user=bob account=work result=refused", out)


    def test_add_and_sign_in_in_chromium(self):
        """The same as a person does it in a real browser: the form's
        provider choice, the code shown, the card turning Up to date."""
        self.dc.add_messages("alice", [make_message(i) for i in range(3)])
        by = debian_module("selenium.webdriver.common.by").By
        wait = debian_module("selenium.webdriver.support.wait")
        select = debian_module("selenium.webdriver.support.select")
        d = chromium(self.tmp, self.gw.cert)
        try:
            def el(sel):
                return d.find_element(by.CSS_SELECTOR, sel)

            def until(what, fn):
                try:
                    return wait.WebDriverWait(d, 300, 0.2).until(
                        lambda _: fn())
                except Exception as e:
                    raise AssertionError("%s: %s\n%s" % (
                        what, type(e).__name__, self.gw.output()[-3000:]))
            d.get("https://127.0.0.1:%d/" % self.web_port)
            until("login form", lambda: el("#login-user").is_displayed())
            el("#login-user").send_keys("alice")
            el("#login-password").send_keys("imap-pw")
            el("#login-submit").click()
            until("signed in", lambda: el("#who").text == "alice")
            el("#add-details summary").click()
            select.Select(el("#add-provider")).select_by_value("testprov")
            # the provider's settings stand in for server and password
            self.assertFalse(el("#add-host").is_displayed())
            self.assertFalse(el("#add-password").is_displayed())
            el("#add-login").send_keys("alice")
            el("#add-name").send_keys("work")
            el("#add-submit").click()
            code = until("code shown", lambda: el("#add-signin").is_displayed()
                         and el("#add-signin .user-code").text)
            self.assertIn("/activate", el("#add-signin a").get_attribute(
                "href"))
            card = 'article[data-account="work"] '
            until("card", lambda: el(card + '[data-f="state"]').text ==
                  "Not signed in yet")
            self.assertTrue(el(card + '[data-f="signin"]').is_displayed())
            self.assertFalse(el(card + '[data-f="pw-details"]')
                             .is_displayed())
            r = self.oauth.approve(code, "alice")
            self.assertTrue(r.get("ok"), r)
            self.poll()
            until("mail in", lambda: el(card + '[data-f="state"]').text ==
                  "Up to date" and "so far: 3" in
                  el(card + '[data-f="imported"]').text)
            # (the page's first /api/session is a 401 before sign-in)
            errors = [e for e in d.get_log("browser")
                      if e.get("level") == "SEVERE" and
                      "401" not in e.get("message", "")]
            self.assertEqual(errors, [])
        finally:
            d.quit()

class OAuthServerScopeTest(OAuthBase):
    """The server wants a scope the provider's tokens lack (popgate asks
    for "mail", Dovecot requires "pop3"): the sign-in succeeds, Dovecot
    refuses every token; popgate reports the server's refusal, refreshes
    once to rule out a stale token, and does not loop or call it a
    revoked grant."""
    PROVIDER_SCOPE = "mail offline_access"
    DOVECOT_SCOPE = "pop3"

    def test_server_refuses_token_scope(self):
        self.dc.add_messages("alice", [make_message(1)])
        self.add_account()
        rc, out, err = self.sign_in()
        self.assertEqual(rc, 0, out + err)
        s = self.wait_status(lambda s: s.get("last_error") and
                             "authentication failed" in s["last_error"],
                             what="auth failure")
        self.assertIn("xoauth2", s["last_error"])
        self.assertEqual(s["messages_fetched"], 0)
        self.assertEqual(s["oauth"]["state"], "valid")
        # one refresh forced by the refusal, then the poller's own
        # back-off; asking again within a minute forces no more
        deadline = time.monotonic() + 20
        while self.oauth.count("token_refresh") < 1 and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.oauth.count("token_refresh"), 1)
        for _ in range(2):
            self.poll()
            time.sleep(1.5)
        self.assertEqual(self.oauth.count("token_refresh"), 1)
        self.assertNotEqual(self.status()["state"], "needs-signin")
        self.assertEqual(self.oauth.count("refresh_refused"), 0)


class OAuthRefreshTest(OAuthBase):
    """Access tokens that live 8 seconds: refreshed at three quarters of
    their life, so every login carries a live token."""
    ACCESS_TTL = 8
    # short tokens (sent as AUTH's initial response), and a provider that
    # rotates refresh tokens: each refresh must save the new one
    TOKEN_LEN = 0
    ROTATE = True

    def test_refresh_before_expiry(self):
        self.dc.add_messages("alice", [make_message(1)])
        self.add_account()
        rc, out, err = self.sign_in()
        self.assertEqual(rc, 0, out + err)
        self.wait_fetched(1)
        # two refreshes, each before the token in use expired
        deadline = time.monotonic() + 40
        while self.oauth.count("token_refresh") < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertGreaterEqual(self.oauth.count("token_refresh"), 2)
        log = self.oauth.stats()["log"]
        # the device grant's last request issued the first token; each
        # refresh came before the token before it expired
        issued = [e["t"] for e in log if e["grant_type"] != "refresh_token"
                  ][-1:] + [e["t"] for e in log
                            if e["grant_type"] == "refresh_token"]
        for a, b in zip(issued, issued[1:]):
            self.assertLess(b - a, self.ACCESS_TTL,
                            "a token was left to expire: %s" % log)
        # polls now use the refreshed token, and Dovecot never saw an
        # expired one
        self.dc.add_messages("alice", [make_message(2)])
        self.poll()
        self.wait_fetched(2)
        self.assertEqual(self.oauth.count("introspect_inactive"), 0)
        s = self.status()
        self.assertEqual(s["oauth"]["state"], "valid")
        self.assertGreater(s["oauth"]["expires"], time.time())
        # the provider rotates refresh tokens: each new one was saved, so
        # after a restart the stored one still works
        self.gw.stop()
        self.gw.start()
        self.dc.add_messages("alice", [make_message(3)])
        self.wait_status(lambda s: s.get("oauth", {}).get("state") ==
                         "valid" and s.get("messages_fetched", 0) >= 1,
                         what="fetched after restart")
        self.assertEqual(self.oauth.count("refresh_refused"), 0)
        self.assertEqual(self.oauth.count("introspect_inactive"), 0)

    def test_provider_down_then_back(self):
        self.dc.add_messages("alice", [make_message(1)])
        self.add_account()
        rc, out, err = self.sign_in()
        self.assertEqual(rc, 0, out + err)
        self.wait_fetched(1)
        self.oauth.stop()
        # the token runs out; the refresh cannot reach the provider
        s = self.wait_status(lambda s: s["state"] == "token-error",
                             timeout=30, what="token-error")
        self.assertIn("no usable answer from the token endpoint",
                      s["last_error"])
        self.assertEqual(s["oauth"]["state"], "token-error")
        # never "needs sign-in": the grant is fine, the provider is away
        time.sleep(3)
        self.assertEqual(self.status()["state"], "token-error")
        self.oauth.start()
        self.assertEqual(self.oauth.count("introspect_inactive"), 0)
        back = time.time()
        self.dc.add_messages("alice", [make_message(2)])
        # the next try waits for the back-off (30 s after the failure),
        # not a loop; an admin's explicit poll retries now
        time.sleep(1)
        self.assertEqual(self.status()["state"], "token-error")
        r = self.gw.ok({"command": "poll", "user": "alice",
                        "account": "work"})
        self.assertEqual(r["polls_started"], 1, r)
        s = self.wait_status(lambda s: s.get("oauth", {}).get("state") ==
                             "valid" and (s.get("last_success") or 0) >=
                             int(back), timeout=30, what="token again")
        # while it was down: one failed refresh, maybe a second, never
        # a loop
        failed = self.gw.output().count("event=refresh-failed")
        self.assertIn(failed, (1, 2), self.gw.output()[-3000:])
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.starttls(ssl_context=ssl.create_default_context(
            cafile=self.ca.ca_crt))
        c.login("alice", "imap-pw")
        typ, data = c.select("INBOX")
        self.assertEqual(int(data[0]), 2)
        c.logout()
        # no login was ever tried with an expired token
        self.assertEqual(self.oauth.count("introspect_inactive"), 0)


if __name__ == "__main__":
    unittest.main()
