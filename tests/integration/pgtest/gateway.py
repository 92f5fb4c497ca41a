"""popgated for the gateway tests: a test configuration (free loopback
ports, a temporary directory, a certificate from the test CA), the daemon
started in the foreground from the sanitizer build, and two ways to talk to
its control socket (raw lines, and the popgatectl command).

    gw = Gateway(tmp, ca); gw.start()
    gw.request({"command": "user.list"})      -> dict
    gw.ctl("user", "add", "alice", "--password-stdin", stdin="pw\\n")
    gw.stop()                                  -> checks exit and log

The benchmarks start it from another build (build=), without the protocol
trace (rawlog=False), at log level info and with a larger store.
"""
import json
import os
import signal
import socket
import subprocess
import time

from . import (BUILD, Proc, free_port, imapgrammar, logfmt_problems,
               sanitizer_report, wait_port)


def popgated(build=None):
    return os.path.join(build or BUILD, "popgated")


def popgatectl():
    return os.path.join(BUILD, "popgatectl")


class Gateway:
    def __init__(self, directory, ca, extra="", imap=True, sections=None,
                 build=None, rawlog=True, log_level="debug",
                 map_size="256M"):
        self.dir = directory
        self.build = build
        self.log_level = log_level
        self.map_size = map_size
        self.ca = ca
        os.makedirs(directory, exist_ok=True)
        self.data = os.path.join(directory, "data")
        self.socket = os.path.join(directory, "ctl.sock")
        self.conf = os.path.join(directory, "popgate.conf")
        self.log = os.path.join(directory, "popgated.log")
        self.start_offset = 0
        # the IMAP protocol trace stop() checks against the grammar
        self.rawlog = os.path.join(directory, "rawlog") if rawlog else None
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.cert, self.key = ca.cert("gateway-%d" % self.imap_port)
        self.proc = None
        self.imap = imap
        self.write_conf(extra, sections or {})

    def write_conf(self, extra="", sections=None):
        sections = sections or {}
        imap = ""
        if self.imap:
            imap = ("listen = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\n"
                    % (self.imap_port, self.imaps_port))
            if self.rawlog:
                imap += "rawlog_dir = %s\n" % self.rawlog
        text = ("[imap]\n%scert = %s\nkey = %s\n%s\n"
                "[store]\ndata_dir = %s\nmap_size = %s\n\n"
                "[control]\nsocket = %s\n%s\n"
                "[log]\nlevel = %s\n\n"
                "[upstream-defaults]\nca_file = %s\ntimeout = 10s\n%s\n"
                "[limits]\ncontrol_request_max = 64K\n%s\n%s"
                % (imap, self.cert, self.key, sections.get("imap", ""),
                   self.data, self.map_size, self.socket,
                   sections.get("control", ""), self.log_level,
                   self.ca.ca_crt, sections.get("upstream-defaults", ""),
                   sections.get("limits", ""), extra))
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self, wait=True, preexec=None, env=None):
        argv = [popgated(self.build), "-c", self.conf, "-f"]
        # a restart appends to the same log: only what this run writes
        # says it started
        self.start_offset = (os.path.getsize(self.log)
                             if os.path.exists(self.log) else 0)
        self.proc = Proc(argv, log_path=self.log, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError("popgated exited (%s):\n%s"
                                     % (self.proc.p.returncode,
                                        self.output()[-3000:]))
            if b"event=started" in self.output_bytes()[self.start_offset:]:
                if self.imap:
                    wait_port(self.imap_port)
                return
            time.sleep(0.05)
        raise TimeoutError("popgated did not start:\n" + self.output()[-3000:])

    def output_bytes(self):
        if not os.path.exists(self.log):
            return b""
        with open(self.log, "rb") as f:
            return f.read()

    def output(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, expect_rc=0):
        if self.proc is None:
            return None
        rc = self.proc.stop(sig)
        self.proc = None
        out = self.output()
        rep = sanitizer_report(out)
        if rep:
            raise AssertionError("sanitizer report:\n" + rep)
        # every line key=value, values quoted as needed (issue 18)
        bad = logfmt_problems(out)
        if bad:
            raise AssertionError("log lines not key=value:\n" +
                                 "\n".join(bad[:10]))
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("popgated exited %s, log:\n%s"
                                 % (rc, out[-3000:]))
        if self.rawlog:
            imapgrammar.check_dir(self.rawlog)
        return rc

    # ---- control socket -------------------------------------------------

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.socket)
        return s

    @staticmethod
    def read_line(s):
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf

    def raw(self, data, sock=None):
        """Sends raw bytes, returns the decoded reply line (or None)."""
        s = sock or self.connect()
        try:
            s.sendall(data)
            line = self.read_line(s)
        finally:
            if sock is None:
                s.close()
        return json.loads(line) if line else None

    def request(self, obj, sock=None):
        return self.raw((json.dumps(obj) + "\n").encode(), sock)

    def ok(self, obj):
        r = self.request(obj)
        if not r.get("ok"):
            raise AssertionError("%s -> %s" % (obj, r))
        return r

    def ctl(self, *args, stdin=None, user=None):
        """Runs popgatectl -s SOCKET ARGS; returns CompletedProcess.
        user=(uid, gid) runs it as that user with the groups /etc/group
        gives it."""
        argv = [popgatectl(), "-s", self.socket] + list(args)
        if user is not None:
            argv = ["setpriv", "--reuid", str(user[0]), "--regid",
                    str(user[1]), "--init-groups"] + argv
        return subprocess.run(argv, input=stdin, capture_output=True,
                              text=True, timeout=120)

    def wait_first_fetched(self, count, timeout=120):
        """Waits until the first account's status says count messages
        fetched; returns that status (the caller asserts on it)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.ok({"command": "status"})["accounts"][0]["status"]
            if (s.get("messages_fetched") == count or
                    time.monotonic() > deadline):
                return s
            time.sleep(0.2)

    def snapshot(self):
        """Everything an admin can see: users and accounts."""
        users = self.ok({"command": "user.list"})["users"]
        for u in users:
            u.pop("created", None)
        accounts = self.ok({"command": "account.list"})["accounts"]
        return users, accounts
