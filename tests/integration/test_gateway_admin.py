"""The admin's day (issue 18): the rough edges a real deployment hits.
A poll asked for during a poll is not lost; status survives restarts;
per-account poll history; backup and check with the restore steps;
--version; the popgatectl value syntax of the configuration file."""
import hashlib
import imaplib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from pgtest import (ROOT, Proc, TestCA, debian_module, free_port,
                    logfmt_problem, logfmt_problems, sanitizer_report,
                    tempdir, wait_port)
from pgtest.fakepop3 import FakePop3
from pgtest.gateway import Gateway, popgated, popgatectl


def msg(i):
    return (b"From: a@example.org\r\nTo: b@example.org\r\n"
            b"Subject: message %d\r\n\r\nbody %d\r\n" % (i, i))


class GatewayAdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempdir()
        cls.ca = TestCA(cls.tmp)

    def setUp(self):
        self.gw = Gateway(os.path.join(tempdir(), "gw"), self.ca)
        self.gw.start()
        self.fakes = []

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()
        for f in self.fakes:
            f.stop()

    def fake(self, messages, **faults):
        f = FakePop3(messages=messages, **faults).start()
        self.fakes.append(f)
        return f

    def add_account(self, port, name="acct", mode="keep", interval=3600):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": port, "tls": "none",
                    "login": "alice", "password": "secret",
                    "account": name, "mode": mode, "interval": interval})

    def status(self, name="acct"):
        for a in self.gw.ok({"command": "status",
                             "user": "alice"})["accounts"]:
            if a["account"] == name:
                return a["status"]
        self.fail("no account %s" % name)

    def wait_status(self, pred, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if pred(s):
                return s
            time.sleep(0.1)
        self.fail("%s: not reached: %s\n%s" % (what, s,
                                               self.gw.output()[-3000:]))

    # ---- poll now during a poll ----------------------------------------

    def test_poll_request_during_a_poll_polls_again_right_after(self):
        hold = threading.Event()
        srv = self.fake([msg(1)], quit_hold=hold)
        self.add_account(srv.port)
        # the first poll (the account was just added) stops at its QUIT
        self.assertTrue(srv.quit_seen.wait(30), self.gw.output()[-2000:])
        self.assertEqual(self.status()["state"], "polling")
        r = self.gw.ctl("poll", "alice", "acct")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("polls started: 0", r.stdout)
        self.assertIn("polls queued: 1", r.stdout)
        self.assertTrue(self.status()["poll_queued"])
        # new mail arrives upstream while the first poll finishes
        srv.messages.append(msg(2))
        hold.set()
        # the interval is an hour: only the queued poll can fetch it
        s = self.wait_status(lambda s: s["messages_fetched"] >= 2 and
                             s["state"] == "idle", "second poll")
        self.assertEqual(s["messages_fetched"], 2)
        self.assertFalse(s["poll_queued"])
        self.assertEqual(srv.connections, 2)

    # ---- --version, value syntax -----------------------------------------

    def test_version_on_both_programs(self):
        out = {}
        for prog, argv in (("popgated", [popgated(), "--version"]),
                           ("popgated", [popgated(), "-V"]),
                           ("popgatectl", [popgatectl(), "--version"])):
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            first = r.stdout.splitlines()[0]
            self.assertRegex(first, r"^%s \d+\.\d+\.\d+( \(git "
                             r"[0-9a-f]+(-dirty)?\))?$" % prog)
            self.assertIn("OpenSSL", r.stdout)
            self.assertIn("libevent", r.stdout)
            out[prog] = first.split(" ", 1)[1]
        self.assertEqual(out["popgated"], out["popgatectl"])
        # the running daemon says its version too
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertEqual(st["version"], out["popgated"])

    def test_popgatectl_takes_durations_and_sizes_like_the_config(self):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        r = self.gw.ctl("account", "add", "alice", "--host", "127.0.0.1",
                        "--port", "1", "--tls", "none", "--login", "al",
                        "--password-stdin", "--interval", "5m",
                        "--size-limit", "10M", "--name", "a1",
                        stdin="pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.ctl("account", "set", "alice", "a1", "--interval",
                        "2h", "--size-limit", "512K")
        self.assertEqual(r.returncode, 0, r.stderr)
        # (another login: a1's mailbox twice would be refused)
        r = self.gw.ctl("account", "add", "alice", "--host", "127.0.0.1",
                        "--port", "1", "--tls", "none", "--login", "al2",
                        "--password-stdin", "--interval", "900",
                        "--size-limit", "65536", "--name", "a2",
                        stdin="pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        accts = {a["account"]: a for a in
                 self.gw.ok({"command": "account.list"})["accounts"]}
        self.assertEqual(accts["a1"]["interval"], 7200)
        self.assertEqual(accts["a1"]["size_limit"], 512 * 1024)
        self.assertEqual(accts["a2"]["interval"], 900)
        self.assertEqual(accts["a2"]["size_limit"], 65536)
        for bad in (["--interval", "5x"], ["--size-limit", "10Q"],
                    ["--interval", "-5m"]):
            r = self.gw.ctl("account", "set", "alice", "a1", *bad)
            self.assertEqual(r.returncode, 2, r)
            self.assertIn("expected a", r.stderr)
        # an interval below the daemon's minimum is still its refusal
        r = self.gw.ctl("account", "set", "alice", "a1", "--interval", "5s")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("interval", r.stderr)

    # ---- CSV import ------------------------------------------------------

    CSV = ("user,user_password,host,port,tls,login,password,mode,folder,"
           "interval,account\r\n" +
           "".join("u%02d@example.org,Init-Pw-%d,127.0.0.1,1,none,"
                   "u%02d@example.org,pop-%d,keep,,10m,\r\n"
                   % (i, i, i, i) for i in range(20)) +
           "v01,V-pw,127.0.0.1,1,none,v01,p,,,,legacy\r\n"
           "v01,,127.0.0.1,2,none,v01,p,,,,\r\n")

    def write(self, name, data):
        path = os.path.join(self.gw.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def import_json(self, path, *extra):
        r = self.gw.ctl("--json", "import", path, *extra)
        return r.returncode, json.loads(r.stdout)

    def test_import_rerun_reports_exists_and_exits_zero(self):
        # logins with '@' get generated account names: re-running must
        # still recognise the accounts (same host, port and login)
        path = self.write("users.csv", self.CSV)
        rc, dry = self.import_json(path, "--dry-run")
        self.assertEqual(rc, 0, dry)
        self.assertEqual((dry["import"]["ok"], dry["import"]["failed"]),
                         (22, 0))
        # the second v01 line needs no password: the first creates v01
        self.assertEqual(dry["lines"][-1]["user_action"], "exists")
        rc, first = self.import_json(path)
        self.assertEqual(rc, 0, first)
        self.assertEqual((first["import"]["ok"], first["import"]["failed"]),
                         (22, 0))
        # the dry run said what the import did, line by line
        self.assertEqual([(l["line"], l["ok"]) for l in dry["lines"]],
                         [(l["line"], l["ok"]) for l in first["lines"]])
        for d, f in zip(dry["lines"], first["lines"]):
            self.assertEqual(d["user_action"].replace("would-create",
                                                      "created"),
                             f["user_action"], (d, f))
            self.assertEqual(d.get("account_action", "").replace(
                "would-create", "created"), f.get("account_action", ""))
        accounts = self.gw.ok({"command": "account.list"})["accounts"]
        self.assertEqual(len(accounts), 22)
        self.assertEqual({a["interval"] for a in accounts if
                          a["user"].startswith("u")}, {600})
        before = self.gw.snapshot()
        # again, and a dry run of it: everything exists, exit 0
        for extra in ((), ("--dry-run",)):
            r = self.gw.ctl("import", path, *extra)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("22 ok, 0 failed (22 of the ok lines were there "
                          "already)", r.stdout)
            self.assertIn("line 2: u00@example.org: user exists, account ",
                          r.stdout)
            rc, rep = self.import_json(path, *extra)
            self.assertEqual(rc, 0)
            self.assertTrue(all(l["user_action"] == "exists" and
                                l["account_action"] == "exists"
                                for l in rep["lines"]), rep)
        self.assertEqual(self.gw.snapshot(), before)

    def submitted(self):
        return self.gw.ok({"command": "stats"})["stats"]["workers"][
            "submitted"]

    def can_login(self, user, password):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        try:
            c.login(user, password)
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            c.shutdown()

    def test_admin_password_hashes_run_on_workers(self):
        # user.add, user.passwd and an import's new users hash their
        # passwords on the worker pool (docs/threads.md), not on the
        # loop every session shares: the pool's count of jobs shows it
        s0 = self.submitted()
        for i in range(3):
            self.gw.ok({"command": "user.add", "user": "h%d" % i,
                        "password": "pw-%d" % i})
        self.gw.ok({"command": "user.passwd", "user": "h0",
                    "password": "new-pw"})
        s1 = self.submitted()
        self.assertGreaterEqual(s1 - s0, 4)
        # a name that is taken is answered without hashing
        r = self.gw.request({"command": "user.add", "user": "H1",
                             "password": "x"})
        self.assertEqual(r["error"]["code"], "exists", r)
        csv = ("user,user_password\r\n" +
               "".join("c%d,csv-pw-%d\r\n" % (i, i) for i in range(5)) +
               "h2,ignored\r\n")
        path = self.write("hash.csv", csv)
        s2 = self.submitted()
        rc, dry = self.import_json(path, "--dry-run")
        self.assertEqual((rc, dry["import"]["ok"]), (0, 6), dry)
        self.assertEqual(self.submitted(), s2)  # a dry run hashes nothing
        rc, rep = self.import_json(path)
        self.assertEqual((rc, rep["import"]["ok"], rep["import"]["failed"]),
                         (0, 6, 0), rep)
        self.assertEqual([l["user_action"] for l in rep["lines"]],
                         ["created"] * 5 + ["exists"])
        self.assertGreaterEqual(self.submitted() - s2, 5)
        # and the hashes made there are the ones logins check
        self.assertTrue(self.can_login("h0", "new-pw"))
        self.assertFalse(self.can_login("h0", "pw-0"))
        self.assertTrue(self.can_login("h1", "pw-1"))
        self.assertTrue(self.can_login("c4", "csv-pw-4"))
        self.assertFalse(self.can_login("h2", "ignored"))

    def test_import_excel_bom_semicolons_and_named_fields(self):
        self.gw.ok({"command": "user.add", "user": "zed",
                    "password": "z-pw"})
        # "CSV UTF-8" from Excel: a byte-order mark, CRLF, ';' in a
        # comma-decimal locale, and its own column order
        data = ("\ufeffuser;password;login;host;port;tls;user_password\r\n"
                "ann;pop,pw;ann;127.0.0.1;1;none;Ann-pw\r\n"
                "b\u00e9a;p;bea;127.0.0.1;1;none;Bea-pw\r\n").encode()
        path = self.write("excel.csv", data)
        for extra in (("--dry-run",), ()):
            rc, rep = self.import_json(path, *extra)
            self.assertEqual(rc, 0, rep)
            self.assertEqual(rep["import"]["ok"], 2, rep)
        users = {u["user"] for u in
                 self.gw.ok({"command": "user.list"})["users"]}
        self.assertEqual(users, {"zed", "ann", "b\u00e9a"})
        # ';' without a header is detected too
        path = self.write("semi.csv", "cid;Cid-pw;127.0.0.1;1;none;cid;p"
                          ";keep;INBOX;10m;\n")
        rc, rep = self.import_json(path)
        self.assertEqual(rc, 0, rep)
        self.assertEqual(rep["lines"][0]["account_action"], "created")
        # the text report names the failing column
        path = self.write("bad.csv", "user,user_password,host,port,tls,"
                          "login,password\n"
                          "dan,Dan-pw,127.0.0.1,99999,none,dan,p\n"
                          "eve,Eve-pw,127.0.0.1,1,ssl,eve,p\n"
                          "fay,Fay-pw,127.0.0.1,1,none,,p\n"
                          "gus,,,,,,\n"
                          "hal;Hal-pw\n")
        r = self.gw.ctl("import", path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stdout, r"line 2: dan: error: .*port.*: .*65535")
        self.assertRegex(r.stdout, r"line 3: eve: error: .*tls.*: expected "
                         r"pop3s, stls or none")
        self.assertRegex(r.stdout, r"line 4: fay: error: login: ")
        self.assertIn("line 5: gus: error: user_password: a new user needs "
                      "user_password", r.stdout)
        self.assertIn("line 6: ?: error: user: one column only, "
                      "with ';' in it", r.stdout)
        self.assertIn("0 ok, 5 failed", r.stdout)
        # a header with an unknown column refuses the file, naming it
        path = self.write("hdr.csv", "user,pasword\nian,x\n")
        r = self.gw.ctl("import", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn('line 1: header: unknown column "pasword"', r.stderr)
        self.assertNotIn("ian", {u["user"] for u in self.gw.ok(
            {"command": "user.list"})["users"]})

    # ---- logs --------------------------------------------------------------

    def session_lines(self, session):
        return [l for l in self.gw.output().splitlines()
                if " session=%d " % session in l + " "]

    def wait_log(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.gw.output():
                return
            time.sleep(0.05)
        self.fail("%r not logged:\n%s" % (needle, self.gw.output()[-2000:]))

    def imaps_session(self):
        """An IMAPS connection logged in as alice, and its session id."""
        ctx = ssl.create_default_context(cafile=self.ca.ca_crt)
        raw = socket.create_connection(("127.0.0.1", self.gw.imaps_port), 10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.recv(4096)
        s.sendall(b"a LOGIN alice imap-pw\r\n")
        buf = b""
        while b"a OK" not in buf:
            buf += s.recv(4096)
        m = re.findall(r"session=(\d+) event=login user=alice",
                       self.gw.output())
        return s, int(m[-1])

    def test_client_gone_without_logout_logs_no_tls_error(self):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        s, sid = self.imaps_session()
        # gone: no LOGOUT, no TLS close_notify (the descriptor is closed
        # under the TLS layer)
        os.close(s.detach())
        self.wait_log("session=%d event=disconnect" % sid)
        lines = self.session_lines(sid)
        self.assertFalse([l for l in lines if "tls_error" in l], lines)
        self.assertNotIn("lib(0)", self.gw.output())
        # a real TLS failure is still one line, with OpenSSL's words
        raw = socket.create_connection(("127.0.0.1", self.gw.imaps_port), 10)
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(10)
        try:
            while raw.recv(4096):
                pass
        except OSError:
            pass
        raw.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            errs = [l for l in self.gw.output().splitlines()
                    if "event=tls_error" in l]
            if errs:
                break
            time.sleep(0.05)
        self.assertEqual(len(errs), 1, errs)
        self.assertRegex(errs[0], r'error="error:[0-9A-F]{8}:SSL routines:')
        self.assertNotIn("lib(0)", errs[0])

    def test_log_values_with_spaces_and_quotes_are_quoted(self):
        name = 'Ann "the admin" O\'Neil'
        self.gw.ok({"command": "user.add", "user": name,
                    "password": "imap-pw"})
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login(c._quote(name), "imap-pw")
        c.logout()
        # (logged as stored: folded to its canonical form, issue 15)
        self.wait_log("event=disconnect user=\"ann")
        out = self.gw.output()
        self.assertIn('event=login user="ann \\x22the admin\\x22 o\'neil"',
                      out)
        # and every line parses as key=value (also checked at stop)
        self.assertEqual(logfmt_problems(out), [])
        self.assertIsNotNone(logfmt_problem('ts=2024-01-01T00:00:00.000Z '
                                            'level=info user=a b'))
        self.assertIsNotNone(logfmt_problem('ts=2024-01-01T00:00:00.000Z '
                                            'level=info note: text'))

    def test_syslog_output(self):
        self.gw.stop()
        sock_path = os.path.join(self.gw.dir, "log.sock")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(sock_path)
        rx.settimeout(30)
        with open(self.gw.conf) as f:
            conf = f.read()
        conf = conf.replace("[log]\n", "[log]\ntarget = syslog\n"
                            "syslog_socket = %s\n" % sock_path)
        with open(self.gw.conf, "w") as f:
            f.write(conf)
        # without -f the configured target is used (popgated never forks)
        p = Proc([popgated(), "-c", self.gw.conf], log_path=self.gw.log)
        got = []

        def until(pred):
            while True:
                try:
                    d = rx.recv(65536).decode()
                except socket.timeout:
                    self.fail("no such syslog line; got:\n" +
                              "\n".join(got[-20:]))
                got.append(d)
                if pred(d):
                    return d

        try:
            line = until(lambda d: "event=started" in d)
            m = re.match(r"<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) "
                         r"popgated\[(\d+)\]: (.*)$", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(int(m.group(1)), 2 * 8 + 6)  # mail.info
            self.assertEqual(int(m.group(3)), p.pid)
            self.assertTrue(m.group(4).startswith(
                "component=popgated event=started "), line)
            self.assertIsNone(logfmt_problem(
                "ts=2024-01-01T00:00:00.000Z level=info " + m.group(4)))
            # a warning has its own priority: a refused control request
            self.gw.raw(b"{bad json\n")
            line = until(lambda d: "event=bad-request" in d)
            self.assertTrue(line.startswith("<22>") or
                            line.startswith("<20>"), line)
            # the syslog daemon restarts: popgated reconnects
            rx.close()
            os.unlink(sock_path)
            self.gw.ok({"command": "stats"})   # logged while it is away
            rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            rx.bind(sock_path)
            rx.settimeout(30)
            self.gw.ok({"command": "user.add", "user": "sys",
                        "password": "pw"})
            until(lambda d: "event=user-added" in d)
            # nothing was lost while it was away: that line went to stderr
            with open(self.gw.log) as f:
                self.assertIn("event=request command=stats", f.read())
        finally:
            self.assertEqual(p.stop(), 0)
            rx.close()
        with open(self.gw.log) as f:
            text = f.read()
        self.assertIsNone(sanitizer_report(text))
        self.assertEqual(logfmt_problems(text), [])

    # ---- status and history across restarts -------------------------------

    def poll_and_wait(self, polls_before):
        """Polls the account; returns its status once that poll ended."""
        self.gw.ok({"command": "poll", "user": "alice", "account": "acct"})
        h = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            h = self.gw.ok({"command": "account.history", "user": "alice",
                            "account": "acct"})["history"]
            if h["polls"] > polls_before and \
                    self.status()["state"] != "polling":
                return self.status()
            time.sleep(0.1)
        self.fail("poll %d did not end: %s" % (polls_before + 1, h))

    def test_fetched_last_success_and_history_survive_restart(self):
        srv = self.fake([msg(i) for i in range(3)])
        self.add_account(srv.port)
        self.wait_status(lambda s: s["messages_fetched"] == 3 and
                         s["state"] == "idle", "first poll")
        srv.messages += [msg(3), msg(4)]
        s = self.poll_and_wait(1)
        self.assertEqual(s["messages_fetched"], 5)
        last_success = s["last_success"]
        srv.f["pass_err"] = b"-ERR [AUTH] password changed"
        s = self.poll_and_wait(2)
        self.assertEqual(s["state"], "backoff")
        self.assertEqual(s["last_success"], last_success)
        # disabled, so that no poll at start-up changes the figures
        self.gw.ok({"command": "account.disable", "user": "alice",
                    "account": "acct"})

        self.gw.stop()
        self.gw.start()
        s = self.status()
        self.assertEqual(s["state"], "disabled")
        self.assertEqual(s["messages_fetched"], 5)
        self.assertEqual(s["last_success"], last_success)
        self.assertEqual(s["polls"], 3, self.gw.ok({"command": "account.history", "user": "alice", "account": "acct"}))
        r = self.gw.ctl("status", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [l for l in r.stdout.splitlines() if " acct " in l][0]
        self.assertEqual(row.split()[6], "5", row)          # FETCHED
        self.assertIn(time.strftime("%Y-%m-%d", time.localtime(
            last_success)), row)                             # LAST SUCCESS
        h = self.gw.ok({"command": "account.history", "user": "alice",
                        "account": "acct"})["history"]
        self.assertEqual((h["polls"], h["failures"], h["fetched"]),
                         (3, 1, 5))
        self.assertEqual([p["outcome"] for p in h["recent"]],
                         ["auth", "ok", "ok"])
        self.assertEqual([p["fetched"] for p in h["recent"]], [0, 2, 3])
        self.assertIn("password changed", h["recent"][0]["error"])
        r = self.gw.ctl("account", "history", "alice", "acct")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alice / acct: 3 polls (1 failed), 5 messages",
                      r.stdout)
        lines = r.stdout.splitlines()
        self.assertIn("OUTCOME", lines[1])
        self.assertRegex(lines[2], r" auth .*password changed")
        self.assertRegex(lines[3], r" ok +2 ")
        r = self.gw.ctl("account", "history", "alice", "acct", "--limit",
                        "1")
        self.assertEqual(len(r.stdout.splitlines()), 3, r.stdout)
        # the history goes with the account
        self.gw.ok({"command": "account.delete", "user": "alice",
                    "account": "acct"})
        r = self.gw.request({"command": "account.history", "user": "alice",
                             "account": "acct"})
        self.assertEqual(r["error"]["code"], "unknown-account")
        self.add_account_again(srv.port)
        h = self.gw.ok({"command": "account.history", "user": "alice",
                        "account": "acct"})["history"]
        self.assertLessEqual(h["polls"], 1)

    def add_account_again(self, port):
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": port, "tls": "none",
                    "login": "alice", "password": "secret",
                    "account": "acct", "interval": 3600})

    # ---- metrics -----------------------------------------------------------

    def restart_with(self, extra):
        self.gw.stop()
        with open(self.gw.conf, "a") as f:
            f.write(extra)
        self.gw.start()

    def scrape(self, port, path="/metrics", method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                     method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()

    def samples(self, text):
        parser = debian_module("prometheus_client.parser")
        fams = {f.name: f for f in parser.text_string_to_metric_families(
            text)}
        out = {}
        for f in fams.values():
            for s in f.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return fams, out

    def test_metrics_endpoint(self):
        port = free_port()
        # off unless enabled; loopback when no address is given
        r = subprocess.run([popgated(), "-t", "-c", self.gw.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertNotIn("metrics", r.stdout)
        self.restart_with("[metrics]\nenabled = yes\n")
        r = subprocess.run([popgated(), "-t", "-c", self.gw.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("listen metrics 127.0.0.1:9154/metrics", r.stdout)
        self.gw.stop()
        self.gw.write_conf("[metrics]\nenabled = yes\nlisten = "
                           "127.0.0.1:%d\n" % port)
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        srv = self.fake([msg(i) for i in range(3)])
        self.gw.ok({"command": "account.add", "user": "alice",
                    "host": "127.0.0.1", "port": srv.port, "tls": "none",
                    "login": "alice", "password": "secret",
                    "account": "acct", "interval": 3600})
        self.wait_status(lambda s: s["messages_fetched"] == 3 and
                         s["state"] == "idle", "poll")
        bad = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        with self.assertRaises(imaplib.IMAP4.error):
            bad.login("alice", "wrong")
        sel = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        sel.login("alice", "imap-pw")
        sel.select("INBOX")
        idle = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        idle.login("alice", "imap-pw")
        idle.select("INBOX")
        idle.send(b"i1 IDLE\r\n")
        self.assertTrue(idle.readline().startswith(b"+"))
        fresh = socket.create_connection(("127.0.0.1", self.gw.imap_port),
                                         10)
        fresh.recv(4096)
        status, headers, text = self.scrape(port)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith(
            "text/plain; version=0.0.4"))
        fams, s = self.samples(text)
        self.assertEqual(s[("popgate_imap_logins_total",
                            (("result", "ok"),))], 2)
        self.assertEqual(s[("popgate_imap_logins_total",
                            (("result", "failed"),))], 1)
        for state, n in (("selected", 1), ("idle", 1),
                         ("not_authenticated", 2), ("authenticated", 0)):
            self.assertEqual(s[("popgate_imap_sessions",
                                (("state", state),))], n, state)
        self.assertEqual(s[("popgate_upstream_polls_total",
                            (("outcome", "ok"),))], 1)
        self.assertEqual(s[("popgate_upstream_polls_total",
                            (("outcome", "auth"),))], 0)
        self.assertEqual(s[("popgate_upstream_fetched_messages_total", ())],
                         3)
        self.assertEqual(s[("popgate_upstream_fetched_bytes_total", ())],
                         sum(len(msg(i)) for i in range(3)))
        self.assertEqual(s[("popgate_upstream_accounts",
                            (("state", "idle"),))], 1)
        self.assertEqual(s[("popgate_upstream_account_fetched_messages",
                            (("state", "idle"),))], 3)
        self.assertEqual(s[("popgate_store_map_size_bytes", ())],
                         256 * 1024 * 1024)
        self.assertGreater(s[("popgate_store_used_bytes", ())], 0)
        self.assertGreater(s[("popgate_store_disk_free_bytes", ())], 0)
        # the map grows while the disk has room (no map_max here): the
        # room left is to the file plus the free disk, not to today's map
        # (the disk's free space moves a little between the readings)
        room = (s[("popgate_store_file_bytes", ())] +
                s[("popgate_store_disk_free_bytes", ())] -
                s[("popgate_store_used_bytes", ())])
        self.assertLess(abs(s[("popgate_store_map_free_bytes", ())] - room),
                        64 * 1024 * 1024)
        self.assertEqual(fams["popgate_store_commit_seconds"].type,
                         "histogram")
        self.assertEqual(fams["popgate_store_commit_batch_size"].type,
                         "histogram")
        # fed by the writer thread: the user, the account, the delivery,
        # the poll history were each at least one durable group commit
        commits = s[("popgate_store_commit_seconds_count", ())]
        self.assertGreaterEqual(commits, 3)
        self.assertEqual(s[("popgate_store_commit_batch_size_count", ())],
                         commits)
        self.assertGreaterEqual(s[("popgate_store_commit_batch_size_sum",
                                   ())], commits)
        self.assertIn(("popgate_worker_queue_depth", ()), s)
        self.assertEqual(s[("popgate_up", ())], 1)
        self.assertEqual(fams["popgate_imap_logins"].type, "counter")
        info = [k for k in s if k[0] == "popgate_build_info"][0]
        self.assertIn(("version", "0.1.0"), info[1])
        # every name the admin guide lists is served, and nothing else
        with open(os.path.join(ROOT, "docs", "admin-guide.md")) as f:
            guide = f.read()
        listed = set(re.findall(r"^\| `(popgate_[a-z_]+)`", guide, re.M))
        served = {n + "_total" if f.type == "counter" else n
                  for n, f in fams.items()}
        self.assertEqual(listed, served, "admin guide vs endpoint")
        # HEAD, other paths and methods
        status, _, body = self.scrape(port, method="HEAD")
        self.assertEqual((status, body), (200, ""))
        for path, method, code in (("/", "GET", 404), ("/metricsx", "GET",
                                   404), ("/metrics", "POST", 405)):
            with self.assertRaises(urllib.error.HTTPError) as cm:
                self.scrape(port, path, method)
            self.assertEqual(cm.exception.code, code)
        # an oversized request is refused, the endpoint stays up
        raw = socket.create_connection(("127.0.0.1", port), 10)
        raw.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 +
                    b"\r\n\r\n")
        raw.settimeout(10)
        try:
            answer = raw.recv(4096)
        except ConnectionResetError:
            answer = b""
        # refused with a 4xx status, or cut off
        self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 4"),
                        answer[:100])
        raw.close()
        self.assertEqual(self.scrape(port)[0], 200)
        for c in (sel, bad):
            c.logout()
        idle.send(b"DONE\r\n")
        while not idle.readline().startswith(b"i1 "):
            pass
        idle.logout()
        fresh.close()

    # ---- backup, check, restore ---------------------------------------------

    def inbox_subjects(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "imap-pw")
        typ, data = c.select("INBOX")
        n = int(data[0])
        subjects = []
        if n:
            typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects = sorted(d[1].decode().strip() for d in data
                              if isinstance(d, tuple))
        c.logout()
        return subjects

    def test_backup_check_and_restore(self):
        srv = self.fake([msg(i) for i in range(3)])
        self.add_account(srv.port)
        self.wait_status(lambda s: s["messages_fetched"] == 3 and
                         s["state"] == "idle", "first poll")
        # an open IMAP session does not stop a backup
        busy = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        busy.login("alice", "imap-pw")
        busy.select("INBOX")
        bdir = os.path.join(self.gw.dir, "backups")
        os.makedirs(bdir)
        # a relative name is the caller's working directory's
        r = subprocess.run([popgatectl(), "-s", self.gw.socket, "backup",
                            "b1.mdb"], cwd=bdir, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        b1 = os.path.join(bdir, "b1.mdb")
        self.assertIn("backup written: %s" % b1, r.stdout)
        st = os.stat(b1)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(os.listdir(bdir), ["b1.mdb"])   # no leftovers
        # compacted: no bigger than the pages in use
        self.assertLessEqual(st.st_size, os.path.getsize(
            os.path.join(self.gw.data, "data.mdb")))
        busy.logout()
        # never overwritten
        with open(b1, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        r = self.gw.ctl("backup", b1)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        r = self.gw.ctl("backup", "/nonexistent-dir-%d/x.mdb" % os.getpid())
        self.assertEqual(r.returncode, 1)
        self.assertIn("writable by the daemon", r.stderr)
        # the checker reads a backup file without changing it
        r = self.gw.ctl("check", b1)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%s: consistent" % b1, r.stdout)
        with open(b1, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)
        self.assertEqual(os.listdir(bdir), ["b1.mdb"])
        # a damaged copy is reported
        bad = os.path.join(self.gw.dir, "bad.mdb")
        with open(b1, "rb") as f, open(bad, "wb") as g:
            g.write(f.read()[:8192])
        r = self.gw.ctl("check", bad)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is truncated", r.stdout)
        self.assertIn("NOT consistent", r.stdout)

        # more mail after the backup
        srv.messages += [msg(3), msg(4)]
        self.gw.ok({"command": "poll", "user": "alice", "account": "acct"})
        self.wait_status(lambda s: s["messages_fetched"] == 5 and
                         s["state"] == "idle", "second poll")
        self.assertEqual(len(self.inbox_subjects()), 5)

        # the admin guide's restore steps
        self.gw.stop()
        data = os.path.join(self.gw.data, "data.mdb")
        shutil.copyfile(b1, data)
        os.chmod(data, 0o600)
        os.unlink(os.path.join(self.gw.data, "lock.mdb"))
        r = self.gw.ctl("check", self.gw.data)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("consistent", r.stdout)
        self.gw.start()
        want = sorted("Subject: message %d" % i for i in range(5))
        # at start-up the account is polled: the two messages the backup
        # lacks come back (keep mode), none twice
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = self.inbox_subjects()
            if len(got) >= 5 and self.status()["state"] == "idle":
                break
            time.sleep(0.2)
        self.assertEqual(self.inbox_subjects(), want)
        polls = self.gw.ok({"command": "account.history", "user": "alice",
                            "account": "acct"})["history"]["polls"]
        self.poll_and_wait(polls)
        self.assertEqual(self.inbox_subjects(), want)

    # ---- protocol trace -------------------------------------------------------

    def trace_lines(self, sid):
        return [re.search(r'trace=([CS]) line=(".*"|\S*)$', l).groups()
                for l in self.session_lines(sid) if " trace=" in l]

    def test_protocol_trace_per_user_and_session_masked(self):
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "user.add", "user": "bob",
                    "password": "bob-pw"})
        # at any log level: the daemon runs at "error" from here
        self.gw.stop()
        with open(self.gw.conf) as f:
            conf = f.read()
        with open(self.gw.conf, "w") as f:
            f.write(conf.replace("level = debug", "level = error"))
        self.gw.start(wait=False)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.gw.socket) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        wait_port(self.gw.imap_port)
        r = self.gw.ctl("trace", "on", "--user", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("traced users: alice", r.stdout)
        body = b"Subject: trace\r\n\r\nSECRET-BODY-TEXT\r\n"
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "imap-pw")
        c.append("INBOX", None, None, body)
        c.select("INBOX")
        typ, data = c.fetch("1", "(BODY[])")
        self.assertEqual(data[0][1], body)
        b = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        b.login("bob", "bob-pw")
        b.logout()
        out = self.gw.output()
        self.assertNotIn("imap-pw", out)
        self.assertNotIn("SECRET-BODY", out)
        self.assertNotIn("event=login", out)        # info lines are off
        sid = int(re.findall(r"session=(\d+) event=trace-on by=user "
                             r"user=alice", out)[-1])
        lines = self.trace_lines(sid)
        # the LOGIN itself happened before the trace began (at login)
        self.assertIn(("C", '"%s"' % "[literal %d bytes]" % len(body)),
                      lines)
        self.assertIn(("S", '"[literal %d bytes]"' % len(body)), lines)
        self.assertTrue(any(d == "C" and "APPEND INBOX" in t
                            for d, t in lines), lines)
        self.assertTrue(any(d == "S" and "FETCH (BODY[] {" in t
                            for d, t in lines), lines)
        # bob is not traced
        self.assertNotIn("user=bob", out)
        # off: the open session stops being traced at once
        r = self.gw.ctl("trace", "off", "--user", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("traced users: none", r.stdout)
        n = len(self.trace_lines(sid))
        c.noop()
        self.assertEqual(len(self.trace_lines(sid)), n)   # off at once
        c.logout()

        # one session, before login, through STARTTLS
        raw = socket.create_connection(("127.0.0.1", self.gw.imap_port), 10)
        port = raw.getsockname()[1]
        raw.recv(4096)
        r = self.gw.ctl("--json", "sessions")
        sessions = json.loads(r.stdout)["sessions"]
        sid2 = [s["id"] for s in sessions
                if s["address"] == "127.0.0.1:%d" % port][0]
        r = self.gw.ctl("trace", "on", "--session", str(sid2))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("traced sessions: %d (-)" % sid2, r.stdout)
        raw.sendall(b"s1 STARTTLS\r\n")
        self.assertIn(b"s1 OK", raw.recv(4096))
        ctx = ssl.create_default_context(cafile=self.ca.ca_crt)
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"s2 AUTHENTICATE PLAIN AGFsaWNlAGltYXAtcHc=\r\n")
        buf = b""
        while b"s2 OK" not in buf:
            buf += tls.recv(4096)
        tls.sendall(b's3 LOGIN "x" "imap-pw"\r\ns4 LOGOUT\r\n')
        while b"s4 OK" not in buf:
            buf += tls.recv(4096)
        tls.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                "s4 OK" in t for _, t in self.trace_lines(sid2)):
            time.sleep(0.05)
        lines = self.trace_lines(sid2)
        texts = [t for _, t in lines]
        self.assertIn(("C", '"s1 STARTTLS"'), lines)
        self.assertIn(("C", '"s2 AUTHENTICATE PLAIN ****"'), lines)
        self.assertIn(("C", '"s3 LOGIN \\x22x\\x22 ****"'), lines)
        self.assertTrue(any("s4 OK" in t for t in texts), texts)
        out = self.gw.output()
        self.assertNotIn("AGFsaWNl", out)
        self.assertNotIn("imap-pw", out)
        # errors: unknown session, bad combinations
        r = self.gw.ctl("trace", "on", "--session", "999999")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no IMAP session 999999", r.stderr)
        r = self.gw.request({"command": "trace", "user": "alice"})
        self.assertEqual(r["error"]["code"], "invalid-value")
        r = self.gw.ctl("trace", "list")
        self.assertIn("traced users: none", r.stdout)


if __name__ == "__main__":
    unittest.main()
