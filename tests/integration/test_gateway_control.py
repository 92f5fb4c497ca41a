"""The control socket, command by command, against a running popgated:
every command through popgatectl and as raw JSON lines; every bad request
(malformed JSON, not an object, unknown command, missing field, wrong type,
unknown field, invalid value, unknown user/account, a huge line) gets its
error and changes nothing; upstream passwords never appear in clear."""
import imaplib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest

from pgtest import TestCA, tempdir
from pgtest.gateway import Gateway, popgatectl


def account_req(**kw):
    req = {"command": "account.add", "user": "alice",
           "host": "127.0.0.1", "port": 1, "tls": "none",
           "login": "alice", "password": "upstream-Secret-123"}
    req.update(kw)
    return req


class GatewayControlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempdir()
        cls.ca = TestCA(cls.tmp)

    def setUp(self):
        self.gw = Gateway(os.path.join(tempdir(), "gw"), self.ca)
        self.gw.start()

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()

    def add_alice(self):
        r = self.gw.ctl("user", "add", "alice", "--password-stdin",
                        stdin="alice-pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def imap_login(self, user, password):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        try:
            return c.login(user, password)[0]
        except imaplib.IMAP4.error:
            return "NO"
        finally:
            try:
                c.logout()
            except Exception:
                pass

    def test_overlong_upstream_password_refused_not_stored(self):
        # 1001..1024 bytes passed the control check but not the poller's
        # (a longer PASS line aborted popgated before): the account was
        # stored, answered ok, and never polled.
        self.add_alice()
        r = self.gw.request(account_req(account="big", password="p" * 1010))
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["error"]["code"], r["error"]["field"]),
                         ("invalid-value", "password"))
        self.assertEqual(self.gw.ok({"command": "account.list"})
                         ["accounts"], [])
        self.gw.ok(account_req(account="big"))
        r = self.gw.request({"command": "account.set", "user": "alice",
                             "account": "big", "password": "p" * 1010})
        self.assertEqual(r["error"]["code"], "invalid-value", r)
        self.assertTrue(self.gw.ok({"command": "stats"})["ok"])

    def test_unread_replies_do_not_grow_without_bound(self):
        # A client that sends requests and never reads the answers made
        # popgated buffer every reply: memory without bound. It now stops
        # reading such a client until its replies are taken.
        import select
        s = self.gw.connect()
        s.setblocking(False)
        req = b'{"command":"stats"}\n' * 4096
        total = 8 * 1024 * 1024
        sent = 0
        while sent < total:
            _, w, _ = select.select([], [s], [], 3.0)
            if not w:
                break      # popgated stopped reading us
            try:
                sent += s.send(req)
            except BlockingIOError:
                continue
        self.assertLess(sent, total // 2,
                        "popgated read %d bytes of requests without the "
                        "replies being read" % sent)
        # the replies that were produced can still all be read
        s.setblocking(True)
        s.settimeout(30)
        f = s.makefile("rb")
        # every complete request is answered: reading resumes the client
        for _ in range(sent // len(b'{"command":"stats"}\n')):
            r = json.loads(f.readline())
            self.assertTrue(r["ok"], r)
        s.close()
        self.assertTrue(self.gw.ok({"command": "stats"})["ok"])

    # ---- users -------------------------------------------------------

    def test_user_add_list_passwd_delete(self):
        self.add_alice()
        r = self.gw.ctl("user", "list")
        self.assertEqual(r.returncode, 0)
        self.assertIn("alice", r.stdout)
        self.assertIn("USER", r.stdout.splitlines()[0])
        self.assertEqual(self.imap_login("alice", "alice-pw"), "OK")
        # the same name again: refused, exit 1, nothing changed
        before = self.gw.snapshot()
        r = self.gw.ctl("user", "add", "alice", "--password-stdin",
                        stdin="other\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        self.assertEqual(self.gw.snapshot(), before)
        self.assertEqual(self.imap_login("alice", "other"), "NO")
        # new password
        r = self.gw.ctl("user", "passwd", "alice", "--password-stdin",
                        stdin="new-pw\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.imap_login("alice", "new-pw"), "OK")
        self.assertEqual(self.imap_login("alice", "alice-pw"), "NO")
        # JSON output
        r = self.gw.ctl("--json", "user", "list")
        users = json.loads(r.stdout)["users"]
        self.assertEqual([u["user"] for u in users], ["alice"])
        # delete closes her sessions and removes her
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "new-pw")
        c.select("INBOX")
        r = self.gw.ctl("user", "delete", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.assertRaises((imaplib.IMAP4.abort, OSError, EOFError)):
            c.noop()
            c.noop()
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        self.assertEqual(self.imap_login("alice", "new-pw"), "NO")
        r = self.gw.ctl("user", "delete", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown-user", r.stderr)

    def test_password_never_on_command_line(self):
        r = self.gw.ctl("user", "add", "alice")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--password-stdin", r.stderr)
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])

    def test_non_utf8_password_or_name_is_a_usage_error(self):
        # JSON cannot carry these bytes: popgatectl used to drop the field
        # silently, so the daemon answered "needs password" (or created
        # nothing with a misleading error). Now it says what is wrong.
        r = subprocess.run([popgatectl(), "-s", self.gw.socket, "user",
                            "add", "alice", "--password-stdin"],
                           input=b"caf\xe9-latin1\n", capture_output=True,
                           timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"password is not UTF-8", r.stderr)
        r = subprocess.run([popgatectl(), "-s", self.gw.socket, "user",
                            "add", b"al\xffice", "--password-stdin"],
                           input=b"pw\n", capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"user is not UTF-8", r.stderr)
        self.assertEqual(self.gw.ok({"command": "user.list"})["users"], [])
        # the same password in UTF-8 works
        r = subprocess.run([popgatectl(), "-s", self.gw.socket, "user",
                            "add", "alice", "--password-stdin"],
                           input="caf\u00e9-latin1\n".encode(),
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([u["user"] for u in self.gw.ok(
            {"command": "user.list"})["users"]], ["alice"])

    # ---- accounts ----------------------------------------------------

    def test_account_lifecycle_and_secret_at_rest(self):
        self.add_alice()
        r = self.gw.ctl("account", "add", "alice", "--host", "127.0.0.1",
                        "--port", "1", "--tls", "none", "--login", "al",
                        "--password-stdin", "--mode", "delete-after:30",
                        "--folder", "Legacy", "--interval", "600",
                        "--name", "old",
                        stdin="upstream-Secret-123\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("old", r.stdout)
        r = self.gw.ctl("account", "list", "alice")
        self.assertEqual(r.returncode, 0)
        line = [l for l in r.stdout.splitlines() if l.startswith("alice")][0]
        for word in ("old", "127.0.0.1:1", "none", "al",
                     "delete-after:30", "Legacy", "600", "yes"):
            self.assertIn(word, line)
        a = self.gw.ok({"command": "account.list"})["accounts"][0]
        self.assertNotIn("password", json.dumps(a))
        self.assertNotIn("upstream-Secret-123", json.dumps(a))
        # encrypted at rest: the password bytes are nowhere in the data
        # (the files of the data directory and of its APPEND spool)
        for root, dirs, files in os.walk(self.gw.data):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(b"upstream-Secret-123", f.read(), name)
        # the daemon log never shows it either
        self.assertNotIn("upstream-Secret-123", self.gw.output())

        # set
        self.gw.ok({"command": "account.set", "user": "alice",
                    "account": "old", "port": 2, "mode": "keep",
                    "password": "changed-Secret-456"})
        a = self.gw.ok({"command": "account.list",
                        "user": "alice"})["accounts"][0]
        self.assertEqual((a["port"], a["mode"]), (2, "keep"))
        # disable / enable
        r = self.gw.ctl("account", "disable", "alice", "old")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.gw.ok({"command": "status"})["accounts"][0]
        self.assertFalse(st["enabled"])
        self.assertEqual(st["status"]["state"], "disabled")
        r = self.gw.ctl("account", "enable", "alice", "old")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.gw.ok({"command": "status"})["accounts"][0]
        self.assertTrue(st["enabled"])
        self.assertNotEqual(st["status"]["state"], "disabled")
        # a second account with the same name is refused
        r = self.gw.request(account_req(account="old"))
        self.assertEqual(r["error"]["code"], "exists")
        # an account name is generated when none is given (on another
        # port: the same mailbox as "old" would be refused, issue 15)
        r = self.gw.ok(account_req(port=3))
        self.assertEqual(r["account"], "alice@127.0.0.1")
        # delete
        r = self.gw.ctl("account", "delete", "alice", "old")
        self.assertEqual(r.returncode, 0, r.stderr)
        names = [a["account"] for a in
                 self.gw.ok({"command": "account.list"})["accounts"]]
        self.assertEqual(names, ["alice@127.0.0.1"])
        r = self.gw.ctl("account", "delete", "alice", "old")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown-account", r.stderr)
        # records survive a restart, and the password still opens
        # (the account is handed to the poller without error)
        self.gw.stop()
        self.gw.start()
        names = [a["account"] for a in
                 self.gw.ok({"command": "account.list"})["accounts"]]
        self.assertEqual(names, ["alice@127.0.0.1"])
        self.assertNotIn("password-unreadable", self.gw.output())

    def test_account_add_usage_errors(self):
        self.add_alice()
        r = self.gw.ctl("account", "add", "alice", "--host", "h",
                        "--port", "x", "--tls", "none", "--login", "l",
                        "--password-stdin", stdin="p\n")
        self.assertEqual(r.returncode, 2)
        r = self.gw.ctl("account", "add", "alice", "--host", "h",
                        "--port", "995", "--tls", "ssl", "--login", "l",
                        "--password-stdin", stdin="p\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("expected pop3s, stls or none", r.stderr)
        r = self.gw.ctl("account", "add", "nobody", "--host", "h",
                        "--port", "995", "--tls", "pop3s", "--login", "l",
                        "--password-stdin", stdin="p\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown-user", r.stderr)
        self.assertEqual(self.gw.ok({"command": "account.list"})["accounts"],
                         [])

    # ---- bad requests ------------------------------------------------

    def test_bad_requests_change_nothing(self):
        self.add_alice()
        self.gw.ok(account_req(account="a1"))
        before = self.gw.snapshot()
        cases = [
            (b"{not json\n", "bad-json", None),
            (b"\"user.add\"\n", "not-an-object", None),
            (b"[]\n", "not-an-object", None),
            (b"{}\n", "missing-field", "command"),
            (b'{"command":"frobnicate"}\n', "unknown-command", "command"),
            (b'{"command":7}\n', "wrong-type", "command"),
            (b'{"command":"user.add","user":"bob"}\n', "missing-field",
             "password"),
            (b'{"command":"user.add","user":5,"password":"x"}\n',
             "wrong-type", "user"),
            (b'{"command":"user.add","user":"bob","password":"x",'
             b'"admin":true}\n', "unknown-field", None),
            (b'{"command":"user.add","user":"b/ob","password":"x"}\n',
             "invalid-value", "user"),
            (b'{"command":"user.delete","user":"bob"}\n', "unknown-user",
             "user"),
            (b'{"command":"user.passwd","user":"bob","password":"x"}\n',
             "unknown-user", "user"),
            (b'{"command":"account.delete","user":"alice",'
             b'"account":"nope"}\n', "unknown-account", "account"),
            (b'{"command":"account.set","user":"alice","account":"a1",'
             b'"port":"995"}\n', "wrong-type", "port"),
            (b'{"command":"account.set","user":"alice","account":"a1",'
             b'"port":0}\n', "invalid-value", "port"),
            (b'{"command":"account.set","user":"bob","account":"a1",'
             b'"port":7}\n', "unknown-user", "user"),
            (b'{"command":"account.enable","user":"alice"}\n',
             "missing-field", "account"),
            (b'{"command":"account.disable","user":"alice",'
             b'"account":"zz"}\n', "unknown-account", "account"),
            (b'{"command":"account.list","user":"bob"}\n', "unknown-user",
             "user"),
            (b'{"command":"poll","user":"bob"}\n', "unknown-user", "user"),
            (b'{"command":"poll","account":"a1"}\n', "missing-field",
             "user"),
            (b'{"command":"status","user":"bob"}\n', "unknown-user", "user"),
            (b'{"command":"import"}\n', "missing-field", "csv"),
            (b'{"command":"import","csv":["x"]}\n', "wrong-type", "csv"),
            (b'{"command":"stats","x":1}\n', "unknown-field", None),
            (b'{"command":"account.add","user":"alice","host":"h",'
             b'"port":995,"tls":"pop3s","login":"l","password":"p",'
             b'"mode":"sometimes"}\n', "invalid-value", "mode"),
        ]
        s = self.gw.connect()
        for line, code, field in cases:
            r = self.gw.raw(line, sock=s)
            self.assertIsNotNone(r, line)
            self.assertFalse(r["ok"], line)
            self.assertEqual(r["error"]["code"], code, (line, r))
            self.assertEqual(r["error"].get("field"), field, (line, r))
            self.assertTrue(r["error"]["message"])
        # the same connection still works after every error
        self.assertTrue(self.gw.request({"command": "stats"}, sock=s)["ok"])
        s.close()
        self.assertEqual(self.gw.snapshot(), before)
        # the bad requests were counted
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertGreaterEqual(st["control_errors"], 10)

    def test_huge_line_is_refused_and_closed(self):
        before = self.gw.snapshot()
        s = self.gw.connect()
        # over [limits] control_request_max (64K in the test config),
        # without a newline: answered and closed without waiting for one
        big = b'{"command":"user.add","user":"bob","password":"' + \
            b"x" * 200000
        try:
            s.sendall(big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        line = self.gw.read_line(s)
        r = json.loads(line)
        self.assertEqual(r["error"]["code"], "request-too-long")
        try:                                 # closed (maybe reset,
            rest = s.recv(100)               # as unread bytes remain)
        except ConnectionResetError:
            rest = b""
        self.assertEqual(rest, b"")
        s.close()
        # a complete but too long line too
        s = self.gw.connect()
        try:
            s.sendall(big + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = json.loads(self.gw.read_line(s))
        self.assertEqual(r["error"]["code"], "request-too-long")
        s.close()
        self.assertEqual(self.gw.snapshot(), before)
        self.assertTrue(self.gw.proc.alive())

    def test_pipelined_requests_answered_in_order(self):
        s = self.gw.connect()
        s.sendall(b'{"command":"stats"}\n{"command":"user.list"}\n'
                  b'{"command":"nope"}\n\n{"command":"account.list"}\r\n')
        buf = b""
        while buf.count(b"\n") < 4:
            chunk = s.recv(65536)
            self.assertTrue(chunk)
            buf += chunk
        lines = [json.loads(l) for l in buf.splitlines()]
        self.assertIn("stats", lines[0])
        self.assertIn("users", lines[1])
        self.assertEqual(lines[2]["error"]["code"], "unknown-command")
        self.assertIn("accounts", lines[3])
        s.close()

    # ---- import ------------------------------------------------------

    def test_import_csv_report_and_dry_run(self):
        self.add_alice()
        csv = ("user,user_password,host,port,tls,login,password,mode,folder,"
               "interval,account\n"
               "bob,bob-pw,127.0.0.1,1,none,bob,up-bob,,,,\n"
               "alice,,127.0.0.1,1,none,alice2,up-al,keep,Old,600,legacy\n"
               "carol,,,,,,,,,,\n"
               "dave,dave-pw,127.0.0.1,notaport,none,d,p,,,,\n"
               "erin,erin-pw,127.0.0.1,995,starttls,e,p,,,,\n"
               "\"frank\",\"pw,with,commas\"\n"
               "bad\"quote,x\n")
        path = os.path.join(self.gw.dir, "import.csv")
        with open(path, "w") as f:
            f.write(csv)
        before = self.gw.snapshot()
        r = self.gw.ctl("import", path, "--dry-run")
        self.assertEqual(r.returncode, 1, r.stderr)  # some lines fail
        self.assertIn("dry run: 3 ok, 4 failed", r.stdout)
        self.assertEqual(self.gw.snapshot(), before)

        r = self.gw.ctl("--json", "import", path)
        self.assertEqual(r.returncode, 1)
        rep = json.loads(r.stdout)
        lines = {l["line"]: l for l in rep["lines"]}
        self.assertTrue(lines[2]["ok"])
        self.assertEqual(lines[2]["user_action"], "created")
        self.assertEqual(lines[2]["account"], "bob@127.0.0.1")
        self.assertTrue(lines[3]["ok"])
        self.assertEqual(lines[3]["user_action"], "exists")
        self.assertEqual(lines[3]["account"], "legacy")
        self.assertEqual(lines[4]["error"]["field"], "user_password")
        self.assertEqual(lines[5]["error"]["field"], "port")
        self.assertEqual(lines[6]["error"]["field"], "tls")
        self.assertTrue(lines[7]["ok"])
        self.assertIn("quote", lines[8]["error"]["message"])
        self.assertEqual(rep["import"]["ok"], 3)
        self.assertEqual(rep["import"]["failed"], 4)
        users = sorted(u["user"] for u in
                       self.gw.ok({"command": "user.list"})["users"])
        self.assertEqual(users, ["alice", "bob", "frank"])
        self.assertEqual(self.imap_login("frank", "pw,with,commas"), "OK")
        accts = sorted((a["user"], a["account"], a["folder"]) for a in
                       self.gw.ok({"command": "account.list"})["accounts"])
        self.assertEqual(accts, [("alice", "legacy", "Old"),
                                 ("bob", "bob@127.0.0.1", "INBOX")])
        # status shows the finished import
        st = self.gw.ok({"command": "status"})
        self.assertFalse(st["import"]["running"])
        self.assertEqual(st["import"]["lines_done"], 8)
        # importing the same file again creates nothing new: the lines
        # that worked report what exists, the bad ones fail again
        r = self.gw.ctl("--json", "import", path)
        rep = json.loads(r.stdout)
        self.assertEqual(len(self.gw.ok({"command": "user.list"})["users"]),
                         3)
        lines = {l["line"]: l for l in rep["lines"]}
        self.assertEqual(lines[2]["user_action"], "exists")
        self.assertEqual(lines[2]["account_action"], "exists")
        self.assertEqual(lines[2]["account"], "bob@127.0.0.1")
        self.assertEqual(lines[3]["account_action"], "exists")
        self.assertEqual(rep["import"]["ok"], 3)
        self.assertEqual(len(self.gw.ok({"command": "account.list"})
                             ["accounts"]), 2)

    def test_import_interrupted_by_shutdown_resumes(self):
        n = 40
        csv = "".join("u%02d,pw%02d\n" % (i, i) for i in range(n))
        s = self.gw.connect()
        s.sendall((json.dumps({"command": "import", "csv": csv}) +
                   "\n").encode())
        # progress is visible in status while it runs (if it still runs)
        st = self.gw.ok({"command": "status"})["import"]
        self.assertEqual(st["lines_total"], n)
        self.assertLessEqual(st["lines_done"], n)
        self.gw.proc.send_signal(signal.SIGTERM)
        r = json.loads(self.gw.read_line(s))
        s.close()
        if r["ok"]:
            self.assertEqual(r["import"]["ok"], n)   # it won the race
        else:
            self.assertEqual(r["error"]["code"], "unavailable")
            self.assertIn("import stopped after line", r["error"]["message"])
        self.assertEqual(self.gw.proc.p.wait(30), 0)
        self.gw.stop()
        self.gw.start()
        done = len(self.gw.ok({"command": "user.list"})["users"])
        self.assertLessEqual(done, n)
        # importing the same file again completes it; nothing twice
        r = self.gw.ok({"command": "import", "csv": csv})
        self.assertEqual(r["import"]["ok"], n)
        actions = [l["user_action"] for l in r["lines"]]
        self.assertEqual(actions.count("exists"), done)
        users = [u["user"] for u in
                 self.gw.ok({"command": "user.list"})["users"]]
        self.assertEqual(sorted(users), ["u%02d" % i for i in range(n)])
        self.assertEqual(self.imap_login("u07", "pw07"), "OK")

    # ---- daemon commands ---------------------------------------------

    def test_sessions_and_stats(self):
        self.add_alice()
        ctx = ssl.create_default_context(cafile=self.ca.ca_crt)
        c = imaplib.IMAP4_SSL("127.0.0.1", self.gw.imaps_port,
                              ssl_context=ctx, timeout=30)
        c.login("alice", "alice-pw")
        c.xatom("ID", '("name" "testclient" "version" "1.0")')
        c.select("INBOX")
        c2 = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        r = self.gw.ctl("sessions")
        self.assertEqual(r.returncode, 0)
        self.assertIn("alice", r.stdout)
        self.assertIn("testclient", r.stdout)
        ss = self.gw.ok({"command": "sessions"})["sessions"]
        self.assertEqual(len(ss), 2)
        mine = [s for s in ss if s["user"] == "alice"][0]
        self.assertTrue(mine["tls"])
        self.assertEqual(mine["mailbox"], "INBOX")
        self.assertTrue(mine["address"].startswith("127.0.0.1:"))
        self.assertEqual(len(self.gw.ok({"command": "sessions",
                                         "user": "alice"})["sessions"]), 1)
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertEqual(st["imap"]["sessions"], 2)
        self.assertEqual(st["imap"]["logins_ok"], 1)
        self.assertEqual(st["users_added"], 1)
        self.assertEqual(st["pid"], self.gw.proc.pid)
        r = self.gw.ctl("stats")
        self.assertIn("imap.logins_ok", r.stdout)
        c.logout()
        c2.logout()

    def test_poll_unreachable_upstream_reports_error(self):
        self.add_alice()
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        p = port.getsockname()[1]
        port.close()   # nothing listens there
        self.gw.ok(account_req(port=p, account="dead"))
        r = self.gw.ctl("poll", "alice", "dead")
        self.assertEqual(r.returncode, 0, r.stderr)
        # adding the account started a poll: this one is started, or
        # queued behind it when that poll is still connecting
        self.assertTrue("polls started: 1" in r.stdout or
                        "polls queued: 1" in r.stdout, r.stdout)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = self.gw.ok({"command": "status", "user": "alice"})
            s = st["accounts"][0]["status"]
            if s.get("last_error"):
                break
            time.sleep(0.2)
        self.assertIn("refused", s["last_error"].lower())
        self.assertIsNone(s["last_success"])
        r = self.gw.ctl("status")
        self.assertIn("dead", r.stdout)
        self.assertIn("refused", r.stdout.lower())
        r = self.gw.ok({"command": "poll"})
        self.assertEqual(r["polls_started"], 1)

    def peer_cert(self):
        ctx = ssl.create_default_context(cafile=self.ca.ca_crt)
        with socket.create_connection(("127.0.0.1", self.gw.imaps_port),
                                      10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return s.getpeercert(binary_form=True)

    def test_reload_good_and_bad(self):
        # good: a new certificate takes effect for new connections; an
        # open IMAP session survives
        self.add_alice()
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "alice-pw")
        before = self.peer_cert()
        cert, key = self.ca.cert("renewed")
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "w") as f:
            f.write(text.replace(self.gw.cert, cert).replace(self.gw.key,
                                                             key))
        r = self.gw.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        after = self.peer_cert()
        self.assertNotEqual(before, after)
        with open(cert) as f:
            self.assertEqual(ssl.DER_cert_to_PEM_cert(after).strip(),
                             f.read().strip())
        self.gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.gw.output().count("event=reloaded") < 2:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(c.noop()[0], "OK")
        # bad: the error names file and line; the daemon keeps running
        # with the old configuration
        with open(self.gw.conf, "a") as f:
            f.write("[log]\nlevel = chatty\n")
        r = self.gw.ctl("reload")
        self.assertEqual(r.returncode, 1)
        self.assertIn("popgate.conf:", r.stderr)
        self.assertIn("reload-failed", r.stderr)
        self.assertEqual(c.noop()[0], "OK")
        self.assertEqual(self.peer_cert(), after)
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertEqual(st["reloads"], 2)
        self.assertEqual(st["reload_failures"], 1)
        c.logout()

    def test_shutdown_command_says_bye(self):
        self.add_alice()
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=30)
        c.login("alice", "alice-pw")
        r = self.gw.ctl("shutdown")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "ok")
        self.gw.proc.p.wait(20)
        self.assertEqual(self.gw.proc.p.returncode, 0)
        with self.assertRaises(imaplib.IMAP4.abort):
            c.noop()
        self.assertTrue(c.untagged_responses.get("BYE"))
        self.assertFalse(os.path.exists(self.gw.socket))
        self.gw.stop()

    def test_sigterm_sends_bye_and_exits_zero(self):
        self.add_alice()
        s = socket.create_connection(("127.0.0.1", self.gw.imap_port), 10)
        s.recv(1000)
        s.sendall(b"a LOGIN alice alice-pw\r\n")
        buf = b""
        while b"a OK" not in buf:
            buf += s.recv(1000)
        self.gw.proc.send_signal(signal.SIGTERM)
        buf = b""
        while True:
            chunk = s.recv(1000)
            if not chunk:
                break
            buf += chunk
        self.assertIn(b"* BYE", buf)
        self.assertEqual(self.gw.proc.p.wait(20), 0)
        self.gw.stop()

    def test_help_and_usage(self):
        r = self.gw.ctl("--help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("user add", "account add", "import", "poll", "status",
                    "sessions", "stats", "reload", "shutdown"):
            self.assertIn(cmd, r.stdout)
        r = self.gw.ctl("account", "add", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--password-stdin", r.stdout)
        self.assertIn("delete-after:DAYS", r.stdout)
        r = self.gw.ctl("frobnicate")
        self.assertEqual(r.returncode, 2)
        r = self.gw.ctl("user", "add", "a", "--bogus")
        self.assertEqual(r.returncode, 2)
        r = self.gw.ctl("status", "a", "b")
        self.assertEqual(r.returncode, 2)
        # without -s, the socket comes from the configuration (-c)
        r = subprocess.run([popgatectl(), "-c", self.gw.conf, "stats"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("uptime", r.stdout)
        r = subprocess.run([popgatectl(), "-s", self.gw.socket + ".nope",
                            "stats"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot reach popgated", r.stderr)


if __name__ == "__main__":
    unittest.main()
