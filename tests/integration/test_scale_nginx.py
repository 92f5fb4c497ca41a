"""Issue 17, many nodes behind nginx's mail proxy: two popgated nodes, each
holding some users, with the real nginx (Debian's, with its mail module) in
front, configured by `popgatectl nginx-config`. Every login goes through
the nodes' auth_http service, which checks the password where the user
lives and sends nginx there; nginx passes the client's address with the
PROXY protocol, so the node's sessions, limits and logs see the client.
IDLE pushes through the proxy; a node that is down makes its users'
logins fail for a while (temporarily), not the others'."""
import imaplib
import os
import re
import socket
import subprocess
import time
import unittest

from imapd import RawClient
from pgtest import Proc, TestCA, free_port, tempdir, wait_port
from pgtest.gateway import Gateway, popgatectl

NGINX = "/usr/sbin/nginx"
MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"


SECRET = "k3y-Of_the.cluster+42/=="


def secret_file(tmp):
    """The cluster's shared key in a file only its owner reads."""
    path = os.path.join(tmp, "cluster.key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(SECRET + "\n")
    return path


class Node:
    def __init__(self, tmp, ca, name, peers_auth, secret=None):
        self.proxy_port = free_port()
        self.auth_port = peers_auth[name]
        peers = ", ".join("127.0.0.1:%d" % p for n, p in
                          sorted(peers_auth.items()) if n != name)
        self.gw = Gateway(
            os.path.join(tmp, name), ca,
            sections={"imap": "proxy_listen = 127.0.0.1:%d\n"
                              "proxy_trusted = 127.0.0.1\n"
                              "idle_keepalive = 2s\n" % self.proxy_port},
            extra="[cluster]\nauth_http_listen = 127.0.0.1:%d\n"
                  "node_address = 127.0.0.1:%d\npeers = %s\ncache = 1m\n%s"
                  % (self.auth_port, self.proxy_port, peers,
                     "secret_file = %s\n" % secret if secret else ""))


class ClusterBase(unittest.TestCase):
    """Two nodes sharing a key, nginx in front (no tests of its own)."""

    def setUp(self):
        self.tmp = tempdir()
        self.ca = TestCA(self.tmp)
        auth = {"a": free_port(), "b": free_port()}
        key = secret_file(self.tmp)
        self.a = Node(self.tmp, self.ca, "a", auth, key)
        self.b = Node(self.tmp, self.ca, "b", auth, key)
        for n in (self.a, self.b):
            n.gw.start()
            wait_port(n.auth_port)
        self.a.gw.ok({"command": "user.add", "user": "alice",
                      "password": "alice-pw"})
        self.b.gw.ok({"command": "user.add", "user": "bob",
                      "password": "bob pw%"})
        self.nginx = None
        self.start_nginx()
        self.clients = []

    def start_nginx(self, key=SECRET):
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        self.nginx_port = free_port()
        relay = free_port()
        gen = subprocess.run(
            [popgatectl(), "-c", self.a.gw.conf, "nginx-config",
             "--listen", "127.0.0.1:%d" % self.nginx_port,
             "--relay", "127.0.0.1:%d" % relay],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(gen.returncode, 0, gen.stderr)
        self.assertIn("proxy_protocol on;", gen.stdout)
        self.assertIn('auth_http_header X-Auth-Key "%s";' % SECRET,
                      gen.stdout)
        gen.stdout = gen.stdout.replace('X-Auth-Key "%s"' % SECRET,
                                        'X-Auth-Key "%s"' % key)
        # the test's own frame around the generated blocks: loopback,
        # files under the test directory, one process stopped by PID
        body = gen.stdout.replace(
            "http {\n", "http {\n    client_body_temp_path %s/body;\n"
            "    proxy_temp_path %s/proxy;\n"
            "    fastcgi_temp_path %s/fcgi;\n    uwsgi_temp_path %s/uwsgi;\n"
            "    scgi_temp_path %s/scgi;\n    access_log off;\n"
            % ((d,) * 5), 1)
        conf = ("load_module %s;\nmaster_process off;\ndaemon off;\n"
                "pid %s/nginx.pid;\nerror_log %s/error.log info;\n"
                "events { worker_connections 256; }\n%s"
                % (MAIL_MODULE, d, d, body))
        self.nginx_conf = os.path.join(d, "nginx.conf")
        with open(self.nginx_conf, "w") as f:
            f.write(conf)
        self.nginx_dir = d
        self.nginx = Proc([NGINX, "-p", d + "/", "-e", d + "/error.log",
                           "-c", self.nginx_conf],
                          log_path=os.path.join(d, "stdout.log"))
        wait_port(self.nginx_port)

    def tearDown(self):
        for c in self.clients:
            try:
                c.shutdown()
            except Exception:
                pass
        if self.nginx is not None:
            self.nginx.stop()
        for n in (self.a, self.b):
            if n.gw.proc is not None:
                n.gw.stop()

    def imap(self, src="127.0.0.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(60)
        s.bind((src, 0))
        s.connect(("127.0.0.1", self.nginx_port))
        r = RawClient(s)
        self.clients.append(s)
        self.assertTrue(r.readline().startswith(b"* OK"))
        return r

    def wait_log(self, gw, pattern, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, gw.output())
            if m:
                return m
            time.sleep(0.05)
        self.fail("no log line %r in %s" % (pattern, gw.log))

    def ask(self, headers, port=None, key=SECRET):
        """One auth_http request as nginx makes it (one per connection):
        the status code and the answer's headers."""
        s = socket.create_connection(
            ("127.0.0.1", port or self.a.auth_port), timeout=30)
        if key is not None:
            headers = headers + [("X-Auth-Key", key)]
        req = "GET / HTTP/1.0\r\nHost: x\r\n" + "".join(
            "%s: %s\r\n" % kv for kv in headers) + "\r\n"
        s.sendall(req.encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        lines = head.split("\r\n")
        return (int(lines[0].split()[1]),
                dict(line.split(": ", 1) for line in lines[1:]))


class NginxClusterTest(ClusterBase):
    def test_logins_land_on_their_node(self):
        # alice lives on a, bob on b: each login reaches its node, from
        # the client's own address (PROXY protocol from nginx)
        r = self.imap("127.0.0.5")
        self.assertTrue(r.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))
        self.wait_log(self.a.gw, r"event=login user=alice "
                                 r"addr=127\.0\.0\.5:\d+")
        self.wait_log(self.a.gw, r"event=proxied proxy=127\.0\.0\.1:\d+ "
                                 r"version=1 client=127\.0\.0\.5:")
        self.assertTrue(r.cmd("a", "APPEND INBOX {6+}\r\nfrom-a")[-1]
                        .startswith(b"a OK"))
        # bob's password has a space and a '%': nginx escapes them for
        # auth_http, the node unescapes; through a's relay or b's, the
        # login ends on b
        r2 = self.imap("127.0.0.6")
        self.assertTrue(r2.cmd("l", 'LOGIN bob "bob pw%"')[-1]
                        .startswith(b"l OK"))
        self.wait_log(self.b.gw, r"event=login user=bob "
                                 r"addr=127\.0\.0\.6:\d+")
        self.assertNotRegex(self.a.gw.output(), r"event=login user=bob ")
        lines = r2.cmd("s", "SELECT INBOX")
        self.assertIn(b"* 0 EXISTS\r\n", lines)
        # wrong passwords and unknown users: NO, counted for the
        # client's address by the node that checks
        r3 = self.imap("127.0.0.7")
        self.assertTrue(r3.cmd("x", "LOGIN bob wrong")[-1]
                        .startswith(b"x NO"))
        self.wait_log(self.b.gw, r"auth_http event=login_failed "
                                 r"ip=127\.0\.0\.7 user=bob "
                                 r"reason=bad_credentials failures=1")
        r4 = self.imap("127.0.0.8")
        self.assertTrue(r4.cmd("y", "LOGIN nobody pw")[-1]
                        .startswith(b"y NO"))
        # nginx lets a client try again after a failure, up to the
        # nodes' per-connection limit, then closes the connection
        r5 = self.imap("127.0.0.13")
        for i in range(2):
            self.assertTrue(r5.cmd("z%d" % i, "LOGIN bob wrong")[-1]
                            .startswith(b"z%d NO" % i))
        r5.send("z2 LOGIN bob wrong\r\n")
        self.assertTrue(r5.closed(timeout=60))

    def test_authenticate_plain_through_proxy(self):
        # AUTHENTICATE PLAIN, with the initial response (SASL-IR, which
        # the generated configuration announces) and without it
        import base64
        ir = base64.b64encode(b"\0bob\0bob pw%").decode()
        r = self.imap("127.0.0.14")
        caps = r.cmd("c", "CAPABILITY")
        self.assertIn(b"SASL-IR", caps[0])
        self.assertIn(b"AUTH=PLAIN", caps[0])
        self.assertTrue(r.cmd("a", "AUTHENTICATE PLAIN " + ir)[-1]
                        .startswith(b"a OK"))
        self.wait_log(self.b.gw, r"event=login user=bob "
                                 r"addr=127\.0\.0\.14:\d+")
        r2 = self.imap("127.0.0.15")
        r2.send("a AUTHENTICATE PLAIN\r\n")
        self.assertTrue(r2.readline().startswith(b"+"))
        r2.send(ir + "\r\n")
        self.assertTrue(r2.read_until_tag("a")[-1].startswith(b"a OK"))

    def test_idle_push_through_proxy(self):
        r = self.imap("127.0.0.9")
        self.assertTrue(r.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))
        self.assertTrue(r.cmd("s", "SELECT INBOX")[-1].startswith(b"s OK"))
        r.send("i IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        # the keep-alive passes the proxy too
        self.assertEqual(r.readline(timeout=60), b"* OK Still here\r\n")
        # a message stored by another session (through nginx as well)
        other = self.imap("127.0.0.10")
        self.assertTrue(other.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))
        self.assertTrue(other.cmd("a", "APPEND INBOX {5+}\r\nHello")[-1]
                        .startswith(b"a OK"))
        seen = []
        while b"* 1 EXISTS\r\n" not in seen:
            line = r.readline(timeout=60)
            self.assertTrue(line, "IDLE cut: %r" % seen)
            seen.append(line)
        r.send("DONE\r\n")
        self.assertTrue(r.read_until_tag("i")[-1].startswith(b"i OK"))

    def test_node_down(self):
        # b stops: bob's logins fail for now (a cannot reach b: not
        # "wrong password", a temporary failure), alice's go on
        self.b.gw.stop()
        r = self.imap("127.0.0.11")
        lines = r.cmd("l", "LOGIN bob bob-pw")
        self.assertTrue(lines[-1].startswith(b"l NO"), lines)
        self.assertIn(b"Temporary", lines[-1])
        self.wait_log(self.a.gw, r"auth_http event=login ip=127\.0\.0\.11 "
                                 r"user=bob result=tempfail")
        r2 = self.imap("127.0.0.12")
        self.assertTrue(r2.cmd("l", "LOGIN alice alice-pw")[-1]
                        .startswith(b"l OK"))

    def test_auth_http_protocol(self):
        # the service itself, as nginx speaks to it (one request per
        # connection): answers in headers, bad requests refused
        def ask(headers, port=None):
            code, h = self.ask(headers, port)
            self.assertEqual(code, 200)
            return h

        base = [("Auth-Method", "plain"), ("Auth-Protocol", "imap"),
                ("Auth-Login-Attempt", "1"), ("Client-IP", "127.0.0.20")]
        h = ask(base + [("Auth-User", "alice"), ("Auth-Pass", "alice-pw")])
        self.assertEqual(h["Auth-Status"], "OK")
        self.assertEqual((h["Auth-Server"], h["Auth-Port"]),
                         ("127.0.0.1", str(self.a.proxy_port)))
        # bob, asked of a: a asks b, b answers for itself
        h = ask(base + [("Auth-User", "bob"), ("Auth-Pass", "bob%20pw%25")])
        self.assertEqual(h["Auth-Status"], "OK")
        self.assertEqual(h["Auth-Port"], str(self.b.proxy_port))
        h = ask(base + [("Auth-User", "bob"), ("Auth-Pass", "nope")])
        self.assertNotEqual(h["Auth-Status"], "OK")
        self.assertEqual(h["Auth-Wait"], "3")
        # the third attempt on one connection: no Auth-Wait, so nginx
        # closes it (login_failures_per_connection, 3)
        third = [kv for kv in base if kv[0] != "Auth-Login-Attempt"] + \
            [("Auth-Login-Attempt", "3")]
        h = ask(third + [("Auth-User", "bob"), ("Auth-Pass", "nope")])
        self.assertNotEqual(h["Auth-Status"], "OK")
        self.assertNotIn("Auth-Wait", h)
        # CRAM-MD5 cannot be checked against a hash; bad escapes,
        # missing fields, POP3
        for bad in ([("Auth-Method", "cram-md5"), ("Auth-User", "alice"),
                     ("Auth-Pass", "x")],
                    base + [("Auth-User", "alice"), ("Auth-Pass", "%zz")],
                    base + [("Auth-User", "alice")],
                    [("Auth-Method", "plain"), ("Auth-Protocol", "pop3"),
                     ("Auth-User", "alice"), ("Auth-Pass", "alice-pw")]):
            h = ask(bad)
            self.assertNotEqual(h["Auth-Status"], "OK", bad)
        # the peer question: b does not hold alice and says so
        h = ask(base + [("Auth-User", "alice"), ("Auth-Pass", "alice-pw"),
                        ("Popgate-Peer", "1")], port=self.b.auth_port)
        self.assertEqual(h.get("Popgate-Holder"), "no")


if __name__ == "__main__":
    unittest.main()
