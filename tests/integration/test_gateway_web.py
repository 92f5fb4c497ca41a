"""The web page's security (gateway/web.h, docs/web.md), over real TLS with
http.client against popgated: the page and its headers (strict CSP), the
session cookie's flags, no session without the cookie, CSRF refused in
every way it can come, the failed-login table shared with IMAP (a web
guess slows IMAP logins and the other way round), another user's
accounts never visible nor reachable, bounded requests, no query
strings, log-out ending the session; and what the API shows of an
account (a refused upstream password explained, check now)."""
import imaplib
import json
import os
import re
import signal
import socket
import ssl
import time
import unittest

from pgtest import TestCA, free_port, tempdir, wait_port
from pgtest.dovecot import DovecotPop3, make_message
from pgtest.gateway import Gateway, popgated
from pgtest.web import COOKIE, WebClient, web_section


class WebSecurityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        self.port = free_port()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          extra=web_section(self.port))
        self.gw.start()
        for user, pw in (("alice", "alice-pw"), ("bob", "bob-pw")):
            self.gw.ok({"command": "user.add", "user": user,
                        "password": pw})
        self.dc = None

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        if self.dc is not None:
            self.dc.stop()

    def client(self):
        return WebClient(self.port, self.ca.ca_crt)

    def dovecot(self):
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        self.dc.add_user("alice", "pop-secret")
        self.dc.start()
        return self.dc

    def add_account(self, user, name, password, port):
        self.gw.ok({"command": "account.add", "user": user,
                    "host": "127.0.0.1", "port": port, "tls": "stls",
                    "login": "alice", "password": password,
                    "account": name, "interval": 3600,
                    # users share the one Dovecot mailbox on purpose
                    "force": True})

    def wait_account(self, client, name, pred, what, timeout=90):
        deadline = time.monotonic() + timeout
        a = None
        while time.monotonic() < deadline:
            a = client.accounts().get(name)
            if a is not None and pred(a):
                return a
            time.sleep(0.2)
        self.fail("%s: not in time: %s" % (what, a))

    # ---- the page ---------------------------------------------------------

    def test_page_headers_and_assets(self):
        c = self.client()
        status, h, body = c.call("GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(h["content-type"].startswith("text/html"))
        self.assertIn('<script src="/app.js"', body)
        # no inline script or style, nothing from elsewhere
        self.assertNotRegex(body, r"<script>|<style|\sstyle=|\son[a-z]+=")
        self.assertNotRegex(body, r"(src|href)=\"(https?:)?//")
        csp = h["content-security-policy"]
        for d in ("default-src 'none'", "script-src 'self'",
                  "style-src 'self'", "frame-ancestors 'none'",
                  "form-action 'self'", "base-uri 'none'"):
            self.assertIn(d, csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertEqual(h["x-frame-options"], "DENY")
        self.assertIn("max-age=", h["strict-transport-security"])
        for path, ctype in (("/app.js", "text/javascript"),
                            ("/app.css", "text/css")):
            status, h, body = c.call("GET", path)
            self.assertEqual(status, 200)
            self.assertTrue(h["content-type"].startswith(ctype))
            self.assertIn("content-security-policy", h)
        with open(os.path.join(os.path.dirname(__file__), "..", "..",
                               "gateway", "www", "app.js")) as f:
            self.assertEqual(c.call("GET", "/app.js")[2], f.read())
        self.assertNotIn("innerHTML", c.call("GET", "/app.js")[2])
        self.assertEqual(c.call("GET", "/nothing")[0], 404)
        self.assertEqual(c.call("DELETE", "/api/accounts")[0], 405)
        # plain HTTP is not served: a TLS handshake is expected
        s = socket.create_connection(("127.0.0.1", self.port), 30)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.settimeout(30)
        try:
            reply = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            reply = b""
        s.close()
        self.assertNotIn(b"HTTP/1.", reply)
        # popgated -t names the page's address
        import subprocess
        r = subprocess.run([popgated(), "-t", "-c", self.gw.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("listen web https://127.0.0.1:%d/" % self.port,
                      r.stdout)

    def test_off_by_default(self):
        self.gw.stop()
        self.gw.write_conf()
        self.gw.start()
        # the log holds the first run too: wait for the second's start
        deadline = time.monotonic() + 60
        second = ""
        while "event=started" not in second and \
                time.monotonic() < deadline:
            time.sleep(0.05)
            second = self.gw.output().split("event=stopped")[-1]
        self.assertIn("event=started", second)
        self.assertNotIn("component=web", second)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.port), 5)

    def test_connection_cap_holds_newcomers_until_one_closes(self):
        """[web] max_connections: at the cap the page stops accepting
        (no TLS handshake for a newcomer, so no memory for it) and takes
        the next connection as soon as one closes."""
        self.gw.stop()
        self.gw.write_conf(extra=web_section(self.port) +
                           "max_connections = 3\n")
        start = len(self.gw.output())
        self.gw.start()
        ctx = self.client().ctx
        held = []
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", self.port), 30)
            held.append(ctx.wrap_socket(raw, server_hostname="127.0.0.1"))
        # the fourth waits in the kernel's queue: no handshake answer
        raw = socket.create_connection(("127.0.0.1", self.port), 30)
        raw.settimeout(2)
        with self.assertRaises((socket.timeout, TimeoutError)):
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        raw.close()
        self.assertIn("component=web event=connections-full connections=3",
                      self.gw.output()[start:])
        # the held ones still work
        held[0].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        held[0].settimeout(60)
        self.assertTrue(held[0].recv(64).startswith(b"HTTP/1.1 200"))
        # one closes: the page accepts again
        held.pop().close()
        status, _, _ = self.client().call("GET", "/")
        self.assertEqual(status, 200)
        self.assertIn("component=web event=accepting",
                      self.gw.output()[start:])
        for t in held:
            t.close()

    # ---- sign-in and the session cookie ------------------------------------

    def test_cookie_flags_and_no_session_without_it(self):
        c = self.client()
        for path in ("/api/accounts", "/api/session"):
            status, _, body = c.call("GET", path)
            self.assertEqual(status, 401, path)
        self.assertIsNone(c.set_cookie)
        body = c.login("alice", "alice-pw")
        self.assertEqual(body["user"], "alice")
        self.assertRegex(body["csrf"], r"^[0-9a-f]{64}$")
        parts = [p.strip() for p in c.set_cookie.split(";")]
        name, value = parts[0].split("=", 1)
        self.assertEqual(name, COOKIE)
        self.assertRegex(value, r"^[0-9a-f]{64}$")
        self.assertNotEqual(value, body["csrf"])
        flags = {p.split("=")[0].lower(): p for p in parts[1:]}
        self.assertIn("secure", flags)
        self.assertIn("httponly", flags)
        self.assertEqual(flags["samesite"].lower(), "samesite=strict")
        self.assertEqual(flags["path"], "Path=/")
        self.assertNotIn("domain", flags)
        # the session works with the cookie, and only with it
        self.assertEqual(c.call("GET", "/api/session")[2]["user"], "alice")
        self.assertEqual(c.call("GET", "/api/accounts", cookie=False)[0],
                         401)
        # a made-up or altered id is no session
        good = c.cookie
        for bad in ("0" * 64, good[:-1] + ("0" if good[-1] != "0" else
                                           "1"), good[:32], ""):
            c.cookie = bad
            self.assertEqual(c.call("GET", "/api/accounts")[0], 401, bad)
        c.cookie = good
        # two sign-ins: two different sessions and tokens
        d = self.client()
        d.login("alice", "alice-pw")
        self.assertNotEqual(d.cookie, c.cookie)
        self.assertNotEqual(d.csrf, c.csrf)
        # log-out ends the session on the server, not only in the browser
        status, _, _ = c.call("POST", "/api/logout", {})
        self.assertEqual(status, 200)
        self.assertIn("Max-Age=0", c.set_cookie)
        c.cookie = good
        self.assertEqual(c.call("GET", "/api/accounts")[0], 401)
        self.assertEqual(d.call("GET", "/api/accounts")[0], 200)
        out = self.gw.output()
        self.assertIn("component=web event=login ip=127.0.0.1 user=alice",
                      out)
        self.assertIn("component=web event=logout", out)
        # no secret in the log: passwords, session ids, CSRF tokens
        for secret in ("alice-pw", good, c.csrf or "x" * 64, d.cookie,
                       d.csrf):
            self.assertNotIn(secret, out)

    def test_sessions_survive_a_restart_but_not_a_kill(self):
        """A clean restart keeps people signed in (the data directory
        holds only hashes of the session ids, for one start); a crash
        signs them out, and so does a log-out before it."""
        c, d = self.client(), self.client()
        c.login("alice", "alice-pw")
        d.login("bob", "bob-pw")
        self.assertEqual(d.call("POST", "/api/logout", {})[0], 200)
        path = os.path.join(self.gw.dir, "data", "web-sessions")
        self.gw.stop()
        with open(path) as f:
            saved = f.read()
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertNotIn(c.cookie, saved)   # only its hash
        self.assertEqual(len(saved.splitlines()), 2)   # version + alice
        self.gw.start()
        self.assertFalse(os.path.exists(path))
        status, _, body = c.call("GET", "/api/session")
        self.assertEqual((status, body["user"], body["csrf"]),
                         (200, "alice", c.csrf))
        # changes still need (and take) the same CSRF token
        self.assertEqual(c.call("POST", "/api/check", {"account": "x"},
                                csrf=False)[0], 403)
        self.assertEqual(c.call("POST", "/api/check", {"account": "x"})[0],
                         400)
        self.assertEqual(d.call("GET", "/api/session")[0], 401)
        self.assertIn("component=web event=sessions-restored sessions=1 "
                      "skipped=0", self.gw.output())
        # killed: nothing is saved, the session is gone with the process
        self.gw.stop(sig=signal.SIGKILL, expect_rc=None)
        self.assertFalse(os.path.exists(path))
        self.gw.start()
        self.assertEqual(c.call("GET", "/api/session")[0], 401)

    def test_wrong_password_and_bad_requests(self):
        c = self.client()
        status, _, body = c.call("POST", "/api/login",
                                 {"user": "alice", "password": "nope"})
        self.assertEqual(status, 401)
        self.assertIn("wrong", body["error"])
        self.assertIsNone(c.cookie)
        status, _, body = c.call("POST", "/api/login",
                                 {"user": "nobody", "password": "nope"})
        self.assertEqual(status, 401)
        for bad in ({"user": "alice"}, {"user": "", "password": "x"},
                    {"user": 3, "password": "x"},
                    {"user": "a" * 300, "password": "x"}):
            self.assertEqual(c.call("POST", "/api/login", bad)[0], 400, bad)
        status, _, _ = c.call("POST", "/api/login", raw=b"[1,2]",
                              headers={"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        # bounded: a large body and large headers are refused, the page
        # stays up
        # (the headers announce 70 KB and the answer is read before any
        # of it is sent: a server that refuses at once may close before a
        # client could finish sending, which is not what is tested here)
        import socket as socket_mod
        raw = socket_mod.create_connection((c.host, c.port), timeout=60)
        tls = c.ctx.wrap_socket(raw, server_hostname=c.host)
        try:
            tls.sendall(b"POST /api/login HTTP/1.1\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: 70002\r\n\r\n{")
            answer = b""
            while b"\r\n" not in answer:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                answer += chunk
        finally:
            tls.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:200])
        with self.assertRaises((ConnectionError, OSError,
                                http_exceptions())):
            status, _, _ = c.call("GET", "/", headers={"X-Big": "a" * 20000})
            if status >= 400:
                raise ConnectionError(status)
        # no user data in URLs: query strings are refused
        c.login("alice", "alice-pw")
        status, _, _ = c.call("GET", "/api/accounts?user=bob")
        self.assertEqual(status, 400)
        self.assertEqual(c.call("GET", "/api/accounts")[0], 200)
        out = self.gw.output()
        self.assertRegex(out, r"component=web event=login_failed "
                         r"ip=127\.0\.0\.1 user=alice reason=bad_credentials")
        self.assertNotIn("nope", out)

    # ---- CSRF ------------------------------------------------------------

    def test_csrf_refused(self):
        dc = self.dovecot()
        self.add_account("alice", "old", "pop-secret", dc.port)
        c = self.client()
        c.login("alice", "alice-pw")
        polls = self.gw.ok({"command": "stats"})["stats"]["polls_requested"]
        body = {"account": "old"}
        # no token, a wrong one, the session id as the token
        for hdrs, csrf in (({}, False), ({"X-CSRF-Token": "0" * 64}, False),
                           ({"X-CSRF-Token": c.cookie}, False)):
            status, _, b = c.call("POST", "/api/check", body, headers=hdrs,
                                  csrf=csrf)
            self.assertEqual(status, 403, (hdrs, b))
        # a form post (what a cross-site page can send without asking)
        status, _, _ = c.call("POST", "/api/check", raw=b"account=old",
                              headers={"Content-Type":
                                       "application/x-www-form-urlencoded"})
        self.assertEqual(status, 415)
        # from another origin, even with the token
        status, _, _ = c.call("POST", "/api/check", body,
                              headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 403)
        status, _, _ = c.call("POST", "/api/check", body,
                              headers={"Sec-Fetch-Site": "cross-site"})
        self.assertEqual(status, 403)
        # the same for sign-in (login CSRF) and log-out
        status, _, _ = c.call("POST", "/api/login",
                              {"user": "alice", "password": "alice-pw"},
                              headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 403)
        self.assertEqual(c.call("POST", "/api/logout", {}, csrf=False)[0],
                         403)
        self.assertEqual(c.call("GET", "/api/session")[0], 200)
        # nothing of it reached the poller
        self.assertEqual(self.gw.ok({"command": "stats"})["stats"]
                         ["polls_requested"], polls)
        # the page's own request, with its origin and token, works
        status, _, _ = c.call("POST", "/api/check", body,
                              headers={"Origin": c.origin()})
        self.assertEqual(status, 200)
        self.assertEqual(self.gw.ok({"command": "stats"})["stats"]
                         ["polls_requested"], polls + 1)
        out = self.gw.output()
        self.assertEqual(out.count("component=web event=csrf-refused"), 4)
        self.assertIn("component=web event=check-now ip=127.0.0.1 "
                      "user=alice account=old result=ok", out)

    # ---- throttling, shared with IMAP --------------------------------------

    def test_throttle_shared_with_imap(self):
        c = self.client()
        for _ in range(3):
            status, _, _ = c.call("POST", "/api/login",
                                  {"user": "alice", "password": "guess"})
            self.assertEqual(status, 401)
        out = self.gw.output()
        fails = re.findall(r"component=web event=login_failed .*?"
                           r"failures=(\d+)", out)
        self.assertEqual(fails, ["1", "2", "3"])
        # the second and third guesses waited (the table's delay)
        self.assertEqual(out.count("component=web event=login_delayed"), 2)
        # an IMAP guess from the same address counts on top of them
        imap = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=120)
        with self.assertRaises(imaplib.IMAP4.error):
            imap.login("alice", "guess")
        imap.logout()
        m = re.findall(r"component=imap .*event=login_failed .*user=\"alice\""
                       r".*failures=(\d+)", self.gw.output())
        self.assertEqual(m, ["4"])
        # and an IMAP failure slows the web: the next web guess is
        # delayed and counted fifth
        c.call("POST", "/api/login", {"user": "alice", "password": "guess"})
        out = self.gw.output()
        self.assertEqual(out.count("component=web event=login_delayed"), 3)
        self.assertEqual(re.findall(r"component=web event=login_failed .*?"
                                    r"failures=(\d+)", out)[-1], "5")
        # the right password still gets in (no lock-out), after which
        # this address's failures for alice are forgotten
        c.login("alice", "alice-pw")
        c2 = self.client()
        c2.call("POST", "/api/login", {"user": "alice", "password": "x"})
        self.assertEqual(re.findall(r"component=web event=login_failed .*?"
                                    r"failures=(\d+)", self.gw.output())[-1],
                         "1")

    def test_client_gone_while_sign_in_waits(self):
        """A browser that goes while its sign-in is held back by the
        throttle (or checked on a worker): the answer is dropped, nothing
        else breaks (the sanitizer build checks the memory at stop)."""
        c = self.client()
        c.call("POST", "/api/login", {"user": "alice", "password": "x"})
        body = json.dumps({"user": "alice", "password": "y"}).encode()
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", self.port), 30)
            tls = c.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
            tls.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.gw.output().count("event=login_failed") >= 4:
                break
            time.sleep(0.1)
        self.assertEqual(self.gw.output().count(
            "component=web event=login_failed"), 4)
        self.assertGreaterEqual(self.gw.output().count(
            "component=web event=login_delayed"), 3)
        c.login("alice", "alice-pw")
        self.assertEqual(c.call("GET", "/api/accounts")[0], 200)

    # ---- isolation ---------------------------------------------------------

    def test_other_users_accounts_never_visible(self):
        dc = self.dovecot()
        self.add_account("alice", "alice-old", "pop-secret", dc.port)
        self.add_account("bob", "bob-old", "pop-secret", dc.port)
        a, b = self.client(), self.client()
        a.login("alice", "alice-pw")
        b.login("bob", "bob-pw")
        self.assertEqual(list(a.accounts()), ["alice-old"])
        self.assertEqual(list(b.accounts()), ["bob-old"])
        polls = self.gw.ok({"command": "stats"})["stats"]["polls_requested"]
        # bob acting on alice's account by name: not found for him
        for path, body in (("/api/check", {"account": "alice-old"}),
                           ("/api/password", {"account": "alice-old",
                                              "password": "taken"})):
            status, _, r = b.call("POST", path, body)
            self.assertEqual(status, 400)
            self.assertNotIn("alice", str(r).replace("alice-old", ""))
        # a "user" field in the body is not honoured
        status, _, _ = b.call("POST", "/api/check",
                              {"account": "alice-old", "user": "alice"})
        self.assertEqual(status, 400)
        self.assertEqual(self.gw.ok({"command": "stats"})["stats"]
                         ["polls_requested"], polls)
        # alice's account kept its password: a poll still succeeds
        self.gw.ok({"command": "poll", "user": "alice",
                    "account": "alice-old"})
        self.wait_account(a, "alice-old",
                          lambda x: x["last_outcome"] == "ok", "poll")
        # bob's session cookie with alice's CSRF token: refused
        b.csrf, saved = a.csrf, b.csrf
        self.assertEqual(b.call("POST", "/api/check",
                                {"account": "bob-old"})[0], 403)
        b.csrf = saved
        self.assertEqual(list(b.accounts()), ["bob-old"])

    # ---- the admin view ----------------------------------------------------

    def admin_list(self, client):
        status, _, body = client.call("GET", "/api/admin/accounts")
        self.assertEqual(status, 200, body)
        return {(a["user"], a["account"]): a for a in body["accounts"]}, body

    def test_admin_view(self):
        dc = self.dovecot()
        self.add_account("alice", "alice-old", "pop-secret", dc.port)
        self.add_account("bob", "bob-old", "wrong", dc.port)
        a, b = self.client(), self.client()
        self.assertFalse(a.login("alice", "alice-pw")["admin"])
        b.login("bob", "bob-pw")
        # not an admin: refused
        self.assertEqual(a.call("GET", "/api/admin/accounts")[0], 403)
        self.assertEqual(a.call("POST", "/api/admin/check",
                                {"user": "bob", "account": "bob-old"})[0],
                         403)
        self.assertEqual(self.client().call("GET",
                                            "/api/admin/accounts")[0], 401)
        # popgatectl makes alice one; the flag counts at once
        r = self.gw.ctl("user", "admin", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alice: not an admin", r.stdout)
        r = self.gw.ctl("user", "admin", "alice", "yes")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alice: an admin of the web page", r.stdout)
        for bad in (("nobody", "yes"), ("alice", "maybe")):
            r = self.gw.ctl("user", "admin", *bad)
            self.assertNotEqual(r.returncode, 0, bad)
        self.assertTrue(a.call("GET", "/api/session")[2]["admin"])
        rows, body = self.admin_list(a)
        self.assertEqual(set(rows), {("alice", "alice-old"),
                                     ("bob", "bob-old")})
        self.assertEqual(sum(body["states"].values()), 2)
        self.assertFalse(body["truncated"])
        for row in rows.values():
            self.assertNotIn("pop-secret", str(row))
            self.assertNotIn("sealed", str(row))
        # the admin asks for a poll of bob's account; its refused
        # password shows in the list, explained
        polls = self.gw.ok({"command": "stats"})["stats"]["polls_requested"]
        self.assertEqual(a.call("POST", "/api/admin/check",
                                {"user": "bob", "account": "bob-old"},
                                csrf=False)[0], 403)
        self.assertEqual(a.call("POST", "/api/admin/check",
                                {"user": "bob", "account": "bob-old"})[0],
                         200)
        self.assertGreater(self.gw.ok({"command": "stats"})["stats"]
                           ["polls_requested"], polls)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows, _ = self.admin_list(a)
            if rows[("bob", "bob-old")]["last_outcome"] == "auth":
                break
            time.sleep(0.2)
        self.assertEqual(rows[("bob", "bob-old")]["advice"]["code"],
                         "password-refused")
        status, _, body = a.call("POST", "/api/admin/check",
                                 {"user": "bob", "account": "nope"})
        self.assertEqual(status, 400)
        # the admin switches bob's account off and on again; bob cannot

        def enabled():
            return [x["enabled"] for x in self.gw.ok(
                {"command": "account.list", "user": "bob"})["accounts"]]
        for path in ("/api/admin/disable", "/api/admin/enable"):
            self.assertEqual(b.call("POST", path, {"user": "bob",
                                                   "account": "bob-old"})[0],
                             403)
            self.assertEqual(a.call("POST", path, {"user": "bob",
                                                   "account": "bob-old"},
                                    csrf=False)[0], 403)
        self.assertEqual(enabled(), [True])
        self.assertEqual(a.call("POST", "/api/admin/disable",
                                {"user": "bob", "account": "bob-old"})[0],
                         200)
        self.assertEqual(enabled(), [False])
        rows, _ = self.admin_list(a)
        self.assertEqual(rows[("bob", "bob-old")]["state"], "disabled")
        self.assertEqual(a.call("POST", "/api/admin/enable",
                                {"user": "bob", "account": "bob-old"})[0],
                         200)
        self.assertEqual(enabled(), [True])
        self.assertEqual(a.call("POST", "/api/admin/disable",
                                {"user": "bob", "account": "nope"})[0], 400)
        # bob is still no admin
        self.assertEqual(b.call("GET", "/api/admin/accounts")[0], 403)
        self.assertEqual(list(b.accounts()), ["bob-old"])
        # taken away: refused at once, in the same session
        r = self.gw.ctl("user", "admin", "alice", "no")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(a.call("GET", "/api/admin/accounts")[0], 403)
        self.assertEqual(list(a.accounts()), ["alice-old"])
        out = self.gw.output()
        self.assertIn("component=web event=admin-check ip=127.0.0.1 "
                      "admin=alice user=bob account=bob-old result=ok", out)
        self.assertIn("component=web event=admin-refused ip=127.0.0.1 "
                      "user=bob", out)
        self.assertIn("component=web event=admin-disable ip=127.0.0.1 "
                      "admin=alice user=bob account=bob-old result=ok", out)
        self.assertIn("component=control event=web-admin user=alice "
                      "admin=yes", out)

    # ---- people's own accounts ([web] self_service) -------------------------

    def test_self_service_add_remove(self):
        dc = self.dovecot()
        dc.add_messages("alice", [make_message(i) for i in range(2)])
        a = self.client()
        self.assertFalse(a.login("alice", "alice-pw")["self_service"])
        add = {"host": "127.0.0.1", "port": dc.port, "tls": "stls",
               "login": "alice", "password": "pop-secret",
               "account": "mine"}
        # off by default
        self.assertEqual(a.call("POST", "/api/account/add", add)[0], 403)
        self.assertEqual(a.call("POST", "/api/account/delete",
                                {"account": "mine"})[0], 403)
        self.assertEqual(self.gw.ok({"command": "account.list"})
                         ["accounts"], [])
        # allowed by the admin
        self.gw.stop()
        self.gw.write_conf(extra=web_section(self.port) +
                           "self_service = yes\n")
        self.gw.start()
        # the log holds the first run's start line too: wait for the port
        wait_port(self.port, timeout=60)
        a, b = self.client(), self.client()
        self.assertTrue(a.login("alice", "alice-pw")["self_service"])
        b.login("bob", "bob-pw")
        # CSRF as for every change
        self.assertEqual(a.call("POST", "/api/account/add", add,
                                csrf=False)[0], 403)
        # only the fields a person gives: a CA file or "user" is not
        # passed on
        sneaky = dict(add, ca_file="/etc/ssl/private/x.pem", user="bob")
        status, _, body = a.call("POST", "/api/account/add", sneaky)
        self.assertEqual(status, 200, body)
        acc = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual([(x["user"], x["account"]) for x in acc],
                         [("alice", "mine")])
        self.assertNotIn("ca_file", acc[0])
        self.wait_account(a, "mine", lambda x: x["imported"] == 2 and
                          x["state"] == "idle", "import")
        # popgatectl's checks: a name in use, clear text off loopback
        status, _, body = a.call("POST", "/api/account/add", add)
        self.assertEqual(status, 400)
        self.assertIn("mine", body["error"])
        status, _, body = a.call("POST", "/api/account/add",
                                 dict(add, host="192.0.2.1", tls="none",
                                      account="clear"))
        self.assertEqual(status, 400)
        self.assertEqual(a.call("POST", "/api/account/add",
                                {"host": "127.0.0.1"})[0], 400)
        # bob cannot remove alice's; alice can
        self.assertEqual(b.call("POST", "/api/account/delete",
                                {"account": "mine"})[0], 400)
        self.assertIn("mine", a.accounts())
        self.assertEqual(a.call("POST", "/api/account/delete",
                                {"account": "mine"})[0], 200)
        self.assertEqual(a.accounts(), {})
        out = self.gw.output()
        self.assertIn("component=web event=self-service-refused", out)
        self.assertIn("component=web event=account-add ip=127.0.0.1 "
                      "user=alice account=mine result=ok", out)
        self.assertIn("component=web event=account-delete ip=127.0.0.1 "
                      "user=alice account=mine result=ok", out)
        self.assertNotIn("pop-secret", out)

    # ---- what an account shows ---------------------------------------------

    def test_account_view_wrong_password_then_fixed(self):
        dc = self.dovecot()
        dc.add_messages("alice", [make_message(i) for i in range(3)])
        self.add_account("alice", "old", "not-the-password", dc.port)
        c = self.client()
        c.login("alice", "alice-pw")
        self.assertEqual(c.call("POST", "/api/check", {"account": "old"})[0],
                         200)
        a = self.wait_account(c, "old",
                              lambda x: x["last_outcome"] == "auth",
                              "auth failure")
        # refused once: retried a few times, then held until changed
        self.assertIn(a["state"], ("backoff", "auth-failed"))
        self.assertEqual(a["advice"]["code"], "password-refused")
        self.assertTrue(a["advice"]["needs_person"])
        self.assertIn("refused the password", a["advice"]["title"])
        self.assertEqual(a["last_outcome"], "auth")
        self.assertEqual(a["recent"][0]["outcome"], "auth")
        self.assertEqual(a["imported"], 0)
        self.assertNotIn("not-the-password", str(a))
        # the person enters the right password; the next check imports
        status, _, _ = c.call("POST", "/api/password",
                              {"account": "old", "password": "pop-secret"})
        self.assertEqual(status, 200)
        self.assertEqual(c.call("POST", "/api/check", {"account": "old"})[0],
                         200)
        a = self.wait_account(c, "old", lambda x: x["imported"] == 3 and
                              x["state"] == "idle", "import")
        self.assertIsNone(a["advice"])
        self.assertEqual(a["state_words"], "Up to date")
        outcomes = [r["outcome"] for r in a["recent"]]
        self.assertEqual(outcomes[0], "ok")
        self.assertIn("auth", outcomes)
        self.assertEqual(sum(r["fetched"] for r in a["recent"]), 3)
        # an unknown account and a bad name: clear errors
        status, _, body = c.call("POST", "/api/check", {"account": "nope"})
        self.assertEqual(status, 400)
        self.assertIn("nope", body["error"])
        self.assertEqual(c.call("POST", "/api/check", {})[0], 400)
        out = self.gw.output()
        self.assertIn("component=web event=account-password ip=127.0.0.1 "
                      "user=alice account=old result=ok", out)
        self.assertNotIn("pop-secret", out)


def http_exceptions():
    import http.client
    return http.client.HTTPException


if __name__ == "__main__":
    unittest.main()
