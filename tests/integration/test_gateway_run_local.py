"""`make run` (deploy/run-local.sh): from an empty checkout directory it
writes a configuration under ./var, generates a self-signed certificate,
starts a working gateway in the foreground and prints how to add a user
and an account; those printed commands work; a second start reuses
everything."""
import imaplib
import os
import re
import signal
import ssl
import subprocess
import time
import unittest

from pgtest import BUILD, ROOT, Proc, free_port, sanitizer_report, tempdir


class RunLocalTest(unittest.TestCase):
    def start(self, cwd, log):
        env = {"POPGATE_IMAP_PORT": str(self.port),
               "POPGATE_IMAPS_PORT": str(self.ports)}
        p = Proc(["sh", os.path.join(ROOT, "deploy", "run-local.sh"), BUILD],
                 log_path=log, env=env, cwd=cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(log, "rb") as f:
                out = f.read().decode("utf-8", "replace")
            if "event=started" in out:
                return p, out
            self.assertTrue(p.alive(), out)
            time.sleep(0.05)
        self.fail("run-local.sh did not start:\n" + out)

    def test_make_run_starts_a_working_gateway(self):
        cwd = tempdir()
        self.port, self.ports = free_port(), free_port()
        log = os.path.join(cwd, "run.log")
        p, out = self.start(cwd, log)
        try:
            var = os.path.join(cwd, "var")
            for f in ("popgate.conf", "tls/cert.pem", "tls/key.pem",
                      "data/secret.key", "popgate.sock"):
                self.assertTrue(os.path.exists(os.path.join(var, f)), f)
            self.assertEqual(os.stat(os.path.join(var, "tls/key.pem"))
                             .st_mode & 0o077, 0)
            # the printed user command works as printed (alice, password
            # from stdin)
            m = re.search(r"echo 'user-password' \| (.+ user add alice "
                          r"--password-stdin)", out)
            self.assertIsNotNone(m, out)
            r = subprocess.run(m.group(1), shell=True, input="user-password\n",
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("popgatectl -s %s account add alice"
                          % os.path.join(cwd, "var", "popgate.sock"), out)
            # IMAP on the printed port with STARTTLS, against the
            # generated certificate
            ctx = ssl.create_default_context(
                cafile=os.path.join(var, "tls/cert.pem"))
            c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
            c.starttls(ssl_context=ctx)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
            c = imaplib.IMAP4_SSL("127.0.0.1", self.ports, ssl_context=ctx,
                                  timeout=30)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
        finally:
            rc = p.stop(signal.SIGINT)
        self.assertEqual(rc, 0)
        with open(log, "rb") as f:
            self.assertIsNone(sanitizer_report(f.read().decode("utf-8",
                                                                "replace")))
        # a second start keeps the config, certificate and data
        with open(os.path.join(cwd, "var", "tls", "cert.pem"), "rb") as f:
            cert = f.read()
        p, out = self.start(cwd, os.path.join(cwd, "run2.log"))
        try:
            self.assertNotIn("generating", out)
            c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
            self.assertEqual(c.login("alice", "user-password")[0], "OK")
            c.logout()
        finally:
            self.assertEqual(p.stop(), 0)
        with open(os.path.join(cwd, "var", "tls", "cert.pem"), "rb") as f:
            self.assertEqual(f.read(), cert)


if __name__ == "__main__":
    unittest.main()
