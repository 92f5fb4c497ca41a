"""Issue 17, the auth_http service's guards: the key nginx sends with
`auth_http_header` (and peers with their questions), and the login ticket
that saves the node a second argon2id hash. Real Debian nginx in front of
two popgated nodes, configured by `popgatectl nginx-config`."""
import base64
import os
import re
import socket
import subprocess
import time
import unittest

import test_scale_nginx as base
from imapd import RawClient
from pgtest import TestCA, free_port, tempdir, wait_port
from pgtest.gateway import Gateway, popgated

TICKET = re.compile(r"pgt1\.\d+\.[0-9a-f]{24}\.[0-9a-f]{32}")


def proxied(port, client, src="127.0.0.1"):
    """A connection to a node's proxy listener carrying a PROXY v1 header
    for client: what nginx does."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(60)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(("PROXY TCP4 %s 127.0.0.1 40000 %d\r\n"
               % (client, port)).encode())
    return RawClient(s)


def imap_stats(gw):
    return gw.ok({"command": "stats"})["stats"]["imap"]


class NginxAuthTest(base.ClusterBase):
    def base_headers(self, client="127.0.0.40"):
        return [("Auth-Method", "plain"), ("Auth-Protocol", "imap"),
                ("Auth-Login-Attempt", "1"), ("Client-IP", client)]

    def logs(self):
        with open(os.path.join(self.nginx_dir, "error.log")) as f:
            return self.a.gw.output() + self.b.gw.output() + f.read()

    def test_requests_need_the_key(self):
        h = self.base_headers() + [("Auth-User", "alice"),
                                   ("Auth-Pass", "alice-pw")]
        code, ans = self.ask(h, key=None)
        self.assertEqual(code, 403)
        self.assertNotIn("Auth-Status", ans)
        self.wait_log(self.a.gw, r"auth_http event=refused "
                                 r"peer=127\.0\.0\.1 reason=no_key")
        for wrong in ("k3y-Of_the.cluster+42/=", SECRET_LONGER,
                      "x" * 24):
            code, ans = self.ask(h, key=wrong)
            self.assertEqual(code, 403, wrong)
        self.wait_log(self.a.gw, r"auth_http event=refused "
                                 r"peer=127\.0\.0\.1 reason=wrong_key")
        # a peer's question without the key: refused as well
        code, _ = self.ask(h + [("Popgate-Peer", "1")], port=self.b.auth_port,
                           key=None)
        self.assertEqual(code, 403)
        # with it: answered (and no password was checked for the
        # refused ones)
        code, ans = self.ask(h)
        self.assertEqual((code, ans["Auth-Status"]), (200, "OK"))
        self.assertEqual(imap_stats(self.a.gw)["password_checks"], 1)
        # bob lives on b: a asks b with the key, b checks and answers
        code, ans = self.ask(self.base_headers() + [
            ("Auth-User", "bob"), ("Auth-Pass", "bob%20pw%25")])
        self.assertEqual((code, ans.get("Auth-Status"), ans.get("Auth-Port")),
                         (200, "OK", str(self.b.proxy_port)),
                         self.a.gw.output()[-3000:])
        self.assertNotIn(base.SECRET, self.logs())

    def test_nginx_with_another_key(self):
        # an nginx configured with a stale key: its questions are
        # refused, the client is not logged in, no password is checked
        self.nginx.stop()
        self.start_nginx(key="an-old-key-0123456789")
        r = self.imap("127.0.0.47")
        r.send("l LOGIN alice alice-pw\r\n")
        lines = []
        while True:
            line = r.readline(timeout=60)
            if not line:
                break
            lines.append(line)
            if line.startswith(b"l "):
                break
        # nginx takes a 403 for a broken auth_http server: it tells
        # the client so and closes
        self.assertEqual(lines, [b"* BAD internal server error\r\n"])
        deadline = time.monotonic() + 30
        while not re.search(r"auth_http event=refused peer=127\.0\.0\.1 "
                            r"reason=wrong_key", self.a.gw.output() +
                            self.b.gw.output()):
            self.assertLess(time.monotonic(), deadline, "no refusal logged")
            time.sleep(0.05)
        self.assertEqual(imap_stats(self.a.gw)["password_checks"] +
                         imap_stats(self.b.gw)["password_checks"], 0)

    def test_one_hash_per_login_through_nginx(self):
        before = [imap_stats(n.gw) for n in (self.a, self.b)]
        # alice on a, bob on b; nginx's relay asks either node first
        for user, pw, src in (("alice", "alice-pw", "127.0.0.41"),
                              ('bob', '"bob pw%"', "127.0.0.42"),
                              ("alice", "alice-pw", "127.0.0.43"),
                              ('bob', '"bob pw%"', "127.0.0.44")):
            r = self.imap(src)
            self.assertTrue(r.cmd("l", "LOGIN %s %s" % (user, pw))[-1]
                            .startswith(b"l OK"))
            self.assertTrue(r.cmd("n", "NOOP")[-1].startswith(b"n OK"))
        after = [imap_stats(n.gw) for n in (self.a, self.b)]
        checks = sum(x["password_checks"] - y["password_checks"]
                     for x, y in zip(after, before))
        # four logins, four argon2id hashes over both nodes: one at
        # auth_http, none when nginx logs in on the node (a ticket)
        self.assertEqual(checks, 4)
        self.assertEqual([x["ticket_logins"] - y["ticket_logins"]
                          for x, y in zip(after, before)], [2, 2])
        self.assertEqual([x["logins_ok"] - y["logins_ok"]
                          for x, y in zip(after, before)], [2, 2])
        # the client's address is still the session's
        self.wait_log(self.b.gw, r"event=login user=bob "
                                 r"addr=127\.0\.0\.44:\d+")
        # a wrong password costs one hash too, and no ticket
        r = self.imap("127.0.0.45")
        self.assertTrue(r.cmd("x", "LOGIN alice wrong")[-1]
                        .startswith(b"x NO"))
        again = [imap_stats(n.gw) for n in (self.a, self.b)]
        self.assertEqual(sum(x["password_checks"] - y["password_checks"]
                             for x, y in zip(again, after)), 1)
        # a user no node holds: one hash (the dummy's), asked of both
        r = self.imap("127.0.0.46")
        self.assertTrue(r.cmd("y", "LOGIN nobody pw")[-1]
                        .startswith(b"y NO"))
        last = [imap_stats(n.gw) for n in (self.a, self.b)]
        self.assertEqual(sum(x["password_checks"] - y["password_checks"]
                             for x, y in zip(last, again)), 1)
        # tickets are never logged, by the nodes or by nginx
        self.assertIsNone(TICKET.search(self.logs()))

    def test_ticket_once_from_its_client_through_a_trusted_proxy(self):
        code, ans = self.ask(self.base_headers("127.0.0.50") + [
            ("Auth-User", "alice"), ("Auth-Pass", "alice-pw")])
        self.assertEqual((code, ans["Auth-Status"]), (200, "OK"))
        ticket = ans["Auth-Pass"]
        self.assertRegex(ticket, TICKET)
        # straight to the node's ordinary listener (no trusted proxy):
        # a ticket is just a wrong password there
        s = socket.create_connection(("127.0.0.1", self.a.gw.imap_port),
                                     timeout=60)
        r = RawClient(s)
        self.clients.append(s)
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN alice %s" % ticket)[-1]
                        .startswith(b"l NO"))
        # to the proxy listener from an address that is not trusted:
        # closed before any login
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(60)
        s.bind(("127.0.0.50", 0))
        s.connect(("127.0.0.1", self.a.proxy_port))
        self.assertTrue(RawClient(s).closed(timeout=60))
        s.close()
        # through the trusted proxy but for another client address, or
        # for another user: refused
        r = proxied(self.a.proxy_port, "127.0.0.51")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN alice %s" % ticket)[-1]
                        .startswith(b"l NO"))
        self.wait_log(self.a.gw, r"event=ticket_refused ip=127\.0\.0\.51 "
                                 r"reason=bad")
        self.a.gw.ok({"command": "user.add", "user": "carol",
                      "password": "carol-pw"})
        r = proxied(self.a.proxy_port, "127.0.0.50")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN carol %s" % ticket)[-1]
                        .startswith(b"l NO"))
        # its own client, through the trusted proxy: once
        self.assertTrue(r.cmd("m", "LOGIN alice %s" % ticket)[-1]
                        .startswith(b"m OK"))
        self.wait_log(self.a.gw, r"event=login user=alice "
                                 r"addr=127\.0\.0\.50:40000")
        r = proxied(self.a.proxy_port, "127.0.0.50")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN alice %s" % ticket)[-1]
                        .startswith(b"l NO"))
        self.wait_log(self.a.gw, r"event=ticket_refused ip=127\.0\.0\.50 "
                                 r"reason=used")
        # a ticket from b is good on b only
        code, ans = self.ask(self.base_headers("127.0.0.52") + [
            ("Auth-User", "bob"), ("Auth-Pass", "bob%20pw%25")])
        self.assertEqual(ans["Auth-Port"], str(self.b.proxy_port))
        r = proxied(self.a.proxy_port, "127.0.0.52")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN bob %s" % ans["Auth-Pass"])[-1]
                        .startswith(b"l NO"))
        # (AUTHENTICATE PLAIN takes one as LOGIN does)
        r = proxied(self.b.proxy_port, "127.0.0.52")
        self.assertTrue(r.readline().startswith(b"* OK"))
        ir = base64.b64encode(b"\0bob\0" + ans["Auth-Pass"].encode())
        self.assertTrue(r.cmd("l", "AUTHENTICATE PLAIN " + ir.decode())[-1]
                        .startswith(b"l OK"))
        self.assertEqual(imap_stats(self.b.gw)["ticket_logins"], 1)
        self.assertIsNone(TICKET.search(self.logs()))


SECRET_LONGER = base.SECRET + "x"


class TicketExpiryTest(unittest.TestCase):
    """One node, tickets living one second."""

    def setUp(self):
        self.tmp = tempdir()
        self.proxy_port, self.auth_port = free_port(), free_port()
        # the key inline this time ([cluster] secret)
        self.gw = Gateway(
            os.path.join(self.tmp, "a"), TestCA(self.tmp),
            sections={"imap": "proxy_listen = 127.0.0.1:%d\n"
                              "proxy_trusted = 127.0.0.1\n"
                      % self.proxy_port},
            extra="[cluster]\nauth_http_listen = 127.0.0.1:%d\n"
                  "node_address = 127.0.0.1:%d\nsecret = %s\n"
                  "ticket_lifetime = 1s\n"
                  % (self.auth_port, self.proxy_port, base.SECRET))
        self.gw.start()
        wait_port(self.auth_port)
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "alice-pw"})

    def tearDown(self):
        self.gw.stop()

    def test_expired_ticket_refused(self):
        code, ans = base.ClusterBase.ask(self, [
            ("Auth-Method", "plain"), ("Auth-Protocol", "imap"),
            ("Client-IP", "127.0.0.60"), ("Auth-User", "alice"),
            ("Auth-Pass", "alice-pw")], port=self.auth_port)
        self.assertEqual((code, ans["Auth-Status"]), (200, "OK"))
        self.assertIn("ticket_lifetime=1", self.gw.output())
        # well past its second (waiting longer is always safe)
        time.sleep(3)
        r = proxied(self.proxy_port, "127.0.0.60")
        self.assertTrue(r.readline().startswith(b"* OK"))
        self.assertTrue(r.cmd("l", "LOGIN alice %s" % ans["Auth-Pass"])[-1]
                        .startswith(b"l NO"))
        self.assertRegex(self.gw.output(),
                         r"event=ticket_refused ip=127\.0\.0\.60 "
                         r"reason=expired")
        r.sock.close()


class KeyRotationTest(unittest.TestCase):
    """A key file of two lines: the first is the key (sent to peers,
    written for nginx), the second is accepted too, so that a cluster
    can move from one key to the next without refusing anyone."""

    def test_two_keys(self):
        tmp = tempdir()
        new, old = "new-key-0123456789", "old-key-0123456789"
        path = os.path.join(tmp, "cluster.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w") as f:
            f.write("%s\n%s\n" % (new, old))
        proxy_port, auth_port = free_port(), free_port()
        gw = Gateway(
            os.path.join(tmp, "a"), TestCA(tmp),
            sections={"imap": "proxy_listen = 127.0.0.1:%d\n"
                              "proxy_trusted = 127.0.0.1\n" % proxy_port},
            extra="[cluster]\nauth_http_listen = 127.0.0.1:%d\n"
                  "node_address = 127.0.0.1:%d\nsecret_file = %s\n"
                  % (auth_port, proxy_port, path))
        gw.start()
        try:
            wait_port(auth_port)
            gw.ok({"command": "user.add", "user": "alice",
                   "password": "alice-pw"})
            h = [("Auth-Method", "plain"), ("Auth-Protocol", "imap"),
                 ("Client-IP", "127.0.0.70"), ("Auth-User", "alice"),
                 ("Auth-Pass", "alice-pw")]
            for key, want in ((new, 200), (old, 200), (None, 403),
                              ("other-key-0123456789", 403),
                              (new + old, 403)):
                code, ans = base.ClusterBase.ask(self, h, port=auth_port,
                                                 key=key)
                self.assertEqual(code, want, key)
                if want == 200:
                    self.assertEqual(ans["Auth-Status"], "OK")
            gen = subprocess.run([base.popgatectl(), "-c", gw.conf,
                                  "nginx-config"], capture_output=True,
                                 text=True, timeout=60)
            self.assertIn('auth_http_header X-Auth-Key "%s";' % new,
                          gen.stdout)
            self.assertNotIn(old, gen.stdout)
            # the next step, on a reload (no restart): the file now
            # names a newer key and keeps the new one as the second
            newer = "newer-key-0123456789"
            with open(path, "w") as f:
                f.write("%s\n%s\n" % (newer, new))
            r = gw.ctl("reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            deadline = time.monotonic() + 30
            while "event=keys_reloaded keys=2" not in gw.output():
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            for key, want in ((newer, 200), (new, 200), (old, 403)):
                code, ans = base.ClusterBase.ask(self, h, port=auth_port,
                                                 key=key)
                self.assertEqual(code, want, key)
            # one key again
            with open(path, "w") as f:
                f.write("%s\n" % newer)
            self.assertEqual(gw.ctl("reload").returncode, 0)
            while "event=keys_reloaded keys=1" not in gw.output():
                self.assertLess(time.monotonic(), deadline + 30)
                time.sleep(0.05)
            self.assertEqual(base.ClusterBase.ask(self, h, port=auth_port,
                                                  key=new)[0], 403)
            self.assertEqual(base.ClusterBase.ask(self, h, port=auth_port,
                                                  key=newer)[0], 200)
            for k in (new, old, newer):
                self.assertNotIn(k, gw.output())
        finally:
            gw.stop()


class NginxBackendTlsTest(unittest.TestCase):
    """What docs/scale-out.md says of TLS between nginx and the nodes:
    Debian's nginx mail module has no TLS towards its backends. Should a
    later nginx take these, the guide must change."""

    def test_mail_proxy_has_no_backend_tls(self):
        tmp = tempdir()
        for directive in ("proxy_ssl on;", "proxy_ssl_verify on;",
                          "starttls_backend on;"):
            conf = os.path.join(tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write("load_module %s;\npid %s/nginx.pid;\n"
                        "error_log %s/error.log;\nevents { }\n"
                        "mail {\n    auth_http 127.0.0.1:9/;\n"
                        "    server {\n        listen 127.0.0.1:%d;\n"
                        "        protocol imap;\n        %s\n    }\n}\n"
                        % (base.MAIL_MODULE, tmp, tmp, free_port(),
                           directive))
            p = subprocess.run([base.NGINX, "-t", "-p", tmp + "/", "-e",
                                tmp + "/error.log", "-c", conf],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, directive)
            self.assertRegex(p.stderr, r"unknown directive|not allowed "
                                       r"here", directive)
        # the same frame without them is a good configuration
        with open(conf, "w") as f:
            f.write("load_module %s;\npid %s/nginx.pid;\n"
                    "error_log %s/error.log;\nevents { }\n"
                    "mail {\n    auth_http 127.0.0.1:9/;\n"
                    "    server {\n        listen 127.0.0.1:%d;\n"
                    "        protocol imap;\n        proxy_protocol on;\n"
                    "    }\n}\n" % (base.MAIL_MODULE, tmp, tmp, free_port()))
        p = subprocess.run([base.NGINX, "-t", "-p", tmp + "/", "-e",
                            tmp + "/error.log", "-c", conf],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


class SecretConfigTest(unittest.TestCase):
    """Where auth_http may listen without a key, and the key's file."""

    def check(self, cluster, want):
        tmp = tempdir()
        gw = Gateway(os.path.join(tmp, "n"), TestCA(tmp),
                     sections={"imap": "proxy_listen = 127.0.0.1:%d\n"
                                       "proxy_trusted = 127.0.0.1\n"
                               % free_port()},
                     extra="[cluster]\nnode_address = 127.0.0.1:1144\n"
                           + cluster)
        p = subprocess.run([popgated(), "-t", "-c", gw.conf],
                           capture_output=True, text=True, timeout=60)
        if want is None:
            self.assertEqual(p.returncode, 0, p.stderr)
        else:
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(want, p.stderr)
        self.assertNotIn(base.SECRET, p.stderr + p.stdout)
        return tmp

    def test_not_loopback_needs_a_key(self):
        self.check("auth_http_listen = 0.0.0.0:9144\n",
                   "auth_http_listen on an address that is not loopback "
                   "needs secret or secret_file")
        self.check("auth_http_listen = *:9144\n", "needs secret")
        self.check("auth_http_listen = 127.0.0.1:9144\n", None)
        self.check("auth_http_listen = 0.0.0.0:9144\nsecret = %s\n"
                   % base.SECRET, None)

    def test_key_file_and_shape(self):
        tmp = tempdir()
        path = base.secret_file(tmp)
        self.check("auth_http_listen = 0.0.0.0:9144\nsecret_file = %s\n"
                   % path, None)
        os.chmod(path, 0o604)
        self.check("auth_http_listen = 0.0.0.0:9144\nsecret_file = %s\n"
                   % path, "secret_file is open to others")
        self.check("auth_http_listen = 0.0.0.0:9144\nsecret_file = %s\n"
                   % os.path.join(tmp, "missing"), "cannot be read")
        self.check("auth_http_listen = 0.0.0.0:9144\nsecret_file = %s\n"
                   "secret = %s\n" % (path, base.SECRET),
                   "one or the other")
        for bad in ("short", 'has"quote-0123456789', "has space 0123456789",
                    "x" * 257):
            self.check("secret = %s\n" % bad, "16 to 256 printable")


if __name__ == "__main__":
    unittest.main()
