"""`make run` (deploy/run-local.sh): from an empty checkout directory it
writes a configuration under ./var, makes a local CA and a server
certificate signed by it, starts a working gateway in the foreground and,
once it answers, prints a banner with the ports of the configuration in use,
the metrics address, the CA file to import and the commands to add a user
and an account; those printed commands work; a second start reuses
everything, and its banner shows the first configuration's ports. The
build itself is quiet unless V=1."""
import imaplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

from pgtest import BUILD, ROOT, Proc, free_port, sanitizer_report, tempdir


class RunLocalTest(unittest.TestCase):
    def start(self, cwd, log, ports):
        env = {"POPGATE_IMAP_PORT": str(ports[0]),
               "POPGATE_IMAPS_PORT": str(ports[1]),
               "POPGATE_METRICS_PORT": str(ports[2]),
               "POPGATE_PROXY_PORT": str(ports[3]),
               "POPGATE_AUTH_HTTP_PORT": str(ports[4]),
               "POPGATE_WEB_PORT": str(ports[5] if len(ports) > 5 else
                                       free_port())}
        p = Proc(["sh", os.path.join(ROOT, "deploy", "run-local.sh"), BUILD],
                 log_path=log, env=env, cwd=cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(log, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            if "event=started" in out and "then point a mail client" in out:
                return p, out
            self.assertTrue(p.alive(), out)
            time.sleep(0.05)
        self.fail("run-local.sh did not start:\n" + out)

    def banner(self, out):
        return out[out.index("popgate is running"):]

    def test_make_run_starts_a_working_gateway(self):
        cwd = tempdir()
        ports = tuple(free_port() for _ in range(6))
        log = os.path.join(cwd, "run.log")
        p, out = self.start(cwd, log, ports)
        var = os.path.join(cwd, "var")
        try:
            for f in ("popgate.conf", "tls/cert.pem", "tls/key.pem",
                      "tls/ca.pem", "tls/ca-key.pem", "data/secret.key",
                      "popgate.sock"):
                self.assertTrue(os.path.exists(os.path.join(var, f)), f)
            for f in ("tls/key.pem", "tls/ca-key.pem"):
                self.assertEqual(os.stat(os.path.join(var, f))
                                 .st_mode & 0o077, 0, f)
            # the banner comes after the daemon's start-up lines
            self.assertGreater(out.index("popgate is running"),
                               out.index("event=started"))
            b = self.banner(out)
            self.assertIn("IMAP     127.0.0.1:%d (STARTTLS)   127.0.0.1:%d "
                          "(TLS)" % ports[:2], b)
            self.assertIn("metrics  http://127.0.0.1:%d/metrics" % ports[2],
                          b)
            self.assertIn("web      https://127.0.0.1:%d/ (people sign in"
                          % ports[5], b)
            self.assertIn("import   %s into your mail program"
                          % os.path.join(var, "tls", "ca.pem"), b)
            # the printed user command works as printed (alice, password
            # from stdin)
            m = re.search(r"echo 'user-password' \| (.+ user add alice "
                          r"--password-stdin)", b)
            self.assertIsNotNone(m, b)
            r = subprocess.run(m.group(1), shell=True, input="user-password\n",
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("popgatectl -s %s account add alice"
                          % os.path.join(cwd, "var", "popgate.sock"), b)
            # the server certificate is signed by the CA to import, and is
            # no CA itself: trusting ca.pem is all a client needs
            cafile = os.path.join(var, "tls/ca.pem")
            r = subprocess.run(["openssl", "verify", "-CAfile", cafile,
                                os.path.join(var, "tls/cert.pem")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                                os.path.join(var, "tls/cert.pem")],
                               capture_output=True, text=True)
            self.assertIn("CA:FALSE", r.stdout)
            self.assertIn("DNS:localhost", r.stdout)
            ctx = ssl.create_default_context(cafile=cafile)
            c = imaplib.IMAP4("127.0.0.1", ports[0], timeout=30)
            c.starttls(ssl_context=ctx)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
            c = imaplib.IMAP4_SSL("localhost", ports[1], ssl_context=ctx,
                                  timeout=30)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
            # issue 17: the proxy listener takes a PROXY header from
            # loopback, and the auth_http service sends nginx there
            self.assertIn("proxy    127.0.0.1:%d (PROXY protocol)   "
                          "auth_http http://127.0.0.1:%d" % ports[3:5], b)
            s = socket.create_connection(("127.0.0.1", ports[3]), timeout=30)
            s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 5000 143\r\n")
            self.assertTrue(s.recv(100).startswith(b"* OK"))
            s.close()
            req = urllib.request.Request(
                "http://127.0.0.1:%d/" % ports[4],
                headers={"Auth-Method": "plain", "Auth-User": "alice",
                         "Auth-Pass": "user-password",
                         "Auth-Protocol": "imap", "Client-IP": "192.0.2.9"})
            with urllib.request.urlopen(req, timeout=30) as r:
                self.assertEqual(r.headers["Auth-Status"], "OK")
                self.assertEqual(r.headers["Auth-Port"], str(ports[3]))
            m = re.search(r"\(nginx in front: (.+ nginx-config)\)", b)
            r = subprocess.run(m.group(1), shell=True, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("auth_http 127.0.0.1:9180/", r.stdout)
            # the metrics the banner names are there
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                        % ports[2], timeout=30) as r:
                self.assertIn(b"popgate_imap_logins_total", r.read())
            # so is the web page, over TLS with the same certificate
            with urllib.request.urlopen("https://localhost:%d/" % ports[5],
                                        context=ctx, timeout=30) as r:
                self.assertIn(b"/app.js", r.read())
        finally:
            rc = p.stop(signal.SIGINT)
        self.assertEqual(rc, 0)
        with open(log, "rb") as f:
            self.assertIsNone(sanitizer_report(f.read().decode("utf-8",
                                                                "replace")))
        # a second start keeps the config, certificates and data; asked
        # for other ports, its banner still shows the ports it listens on
        with open(os.path.join(var, "tls", "cert.pem"), "rb") as f:
            cert = f.read()
        other = tuple(free_port() for _ in range(5))
        p, out = self.start(cwd, os.path.join(cwd, "run2.log"), other)
        try:
            self.assertNotIn("making", out)
            b = self.banner(out)
            self.assertIn("127.0.0.1:%d (STARTTLS)" % ports[0], b)
            self.assertIn("http://127.0.0.1:%d/metrics" % ports[2], b)
            self.assertNotIn(":%d " % other[0], b)
            c = imaplib.IMAP4("127.0.0.1", ports[0], timeout=30)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
        finally:
            self.assertEqual(p.stop(), 0)
        with open(os.path.join(var, "tls", "cert.pem"), "rb") as f:
            self.assertEqual(f.read(), cert)

    def test_old_self_signed_certificate_is_replaced(self):
        cwd = tempdir()
        tls = os.path.join(cwd, "var", "tls")
        os.makedirs(tls)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", os.path.join(tls, "key.pem"), "-out",
                        os.path.join(tls, "cert.pem"), "-days", "30",
                        "-subj", "/CN=localhost"], check=True,
                       capture_output=True)
        ports = tuple(free_port() for _ in range(5))
        p, out = self.start(cwd, os.path.join(cwd, "run.log"), ports)
        try:
            self.assertIn("making a local certificate authority", out)
            r = subprocess.run(["openssl", "verify", "-CAfile",
                                os.path.join(tls, "ca.pem"),
                                os.path.join(tls, "cert.pem")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            self.assertEqual(p.stop(), 0)

    def test_build_is_quiet_unless_v1(self):
        root = tempdir()
        obj = os.path.join(root, "test", "lib", "strnum.o")
        for v, shown in (("", False), ("V=1", True)):
            shutil.rmtree(os.path.join(root, "test"), ignore_errors=True)
            argv = ["make", "--no-print-directory", "-C", ROOT,
                    "BUILD_ROOT=" + root, "MODE=test", obj]
            if v:
                argv.insert(1, v)
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertTrue(os.path.exists(obj))
            self.assertEqual("lib/strnum.c" in r.stdout, shown, r.stdout)
            if not shown:
                self.assertEqual(r.stdout.strip(), "")


if __name__ == "__main__":
    unittest.main()
