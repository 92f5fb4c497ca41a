#!/usr/bin/env python3
"""IMAP benchmark: popgate's IMAP server (tests/tools/imapd_test on a real
store) side by side with Dovecot's imap (Debian's dovecot-imapd, started
here on loopback with its own config, a Maildir holding the same messages
and a passwd-file user). Prints each figure for both and the ratio
dovecot/popgate (> 1 means popgate is faster or smaller).

    bench_imap.py --build build/release [--big N]

Bounded in time: the 100,000-message mailbox can be scaled down with
--big (the output says so when it is).
"""
import argparse
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgtest  # noqa: E402

PASSWORD = "bench-pw"
WORDS = ["meeting", "invoice", "report", "holiday", "project", "budget",
         "schedule", "review", "lunch", "deadline", "update", "contract",
         "server", "backup", "release", "migration", "quarterly", "notes"]


def gen_message(i, user):
    w1 = WORDS[i % len(WORDS)]
    w2 = WORDS[(i * 7 + 3) % len(WORDS)]
    t = time.gmtime(1700000000 + i * 600)
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", t)
    h = ("Return-Path: <sender%d@example.org>\r\n"
         "Received: from mx.example.org by mail.example.com; %s\r\n"
         "From: \"Sender %d\" <sender%d@example.org>\r\n"
         "To: \"Test User\" <%s@example.com>\r\nCc: team%d@example.com\r\n"
         "Subject: %s %s number %d\r\nDate: %s\r\n"
         "Message-ID: <msg%d@example.org>\r\nMIME-Version: 1.0\r\n"
         % (i % 97, date, i % 97, i % 97, user, i % 13, w1, w2, i, date, i))
    if i % 5 == 0:
        body = ("Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
                "This is a MIME message.\r\n\r\n--b%d\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                "Hello, the %s is attached. Gr=C3=BC=C3=9Fe.\r\n\r\n"
                "--b%d\r\nContent-Type: application/octet-stream; "
                "name=\"data%d.bin\"\r\nContent-Disposition: attachment; "
                "filename=\"data%d.bin\"\r\nContent-Transfer-Encoding: "
                "base64\r\n\r\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
                "--b%d--\r\n" % (i, i, w1, i, i, i, i))
    else:
        body = "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + "".join(
            "Line %d about the %s and the %s, message %d.\r\n" % (k, w1, w2, i)
            for k in range(3 + i % 20))
    return (h + body).encode()


def make_maildir(home, user, n):
    md = os.path.join(home, user, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    cur = os.path.join(md, "cur")
    for i in range(1, n + 1):
        data = gen_message(i, user)
        name = "%010d.M%dP1.bench,S=%d:2," % (1700000000 + i, i, len(data))
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)
    return cur


class Client:
    """A minimal IMAP client: reads until the tagged line, no parsing."""

    def __init__(self, port, tls_ctx=None, source=None, timeout=None):
        # source: another loopback address (127.x.y.z) to connect from,
        # so that a client counts as another peer for per-address limits
        s = socket.create_connection(
            ("127.0.0.1", port), timeout,
            (source, 0) if source is not None else None)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls_ctx is not None:
            s = tls_ctx.wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.n = 0
        self.buf = b""
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise IOError("connection closed before the greeting")
            self.buf += d
        self.buf = b""

    def send(self, text):
        """Sends a tagged command (str or bytes); returns its tag."""
        self.n += 1
        tag = b"T%d " % self.n
        if isinstance(text, str):
            text = text.encode()
        self.s.sendall(tag + text + b"\r\n")
        return tag

    def read_tagged(self, tag):
        """Reads up to the line starting with tag; returns (that line,
        bytes received)."""
        buf = bytearray()
        while True:
            d = self.s.recv(1 << 20)
            if not d:
                raise IOError("connection closed")
            buf += d
            if buf.endswith(b"\r\n"):
                i = buf.rfind(b"\r\n", 0, len(buf) - 2)
                last = buf[i + 2:] if i >= 0 else buf
                if last.startswith(tag):
                    return bytes(last), len(buf)

    def status(self, text):
        """Runs a command; returns its tagged line (OK, NO or BAD)."""
        return self.read_tagged(self.send(text))[0]

    def cmd(self, text):
        tag = self.send(text)
        last, n = self.read_tagged(tag)
        if not last.startswith(tag + b"OK"):
            raise IOError(last)
        return n

    def append(self, mailbox, data):
        """APPEND with a synchronizing literal (what every server takes);
        raises unless the server says OK."""
        self.n += 1
        tag = b"T%d " % self.n
        self.s.sendall(tag + b"APPEND %s {%d}\r\n" % (mailbox.encode(),
                                                        len(data)))
        line = b""
        while not line.endswith(b"\r\n"):
            d = self.s.recv(4096)
            if not d:
                raise IOError("connection closed")
            line += d
        if not line.startswith(b"+"):
            raise IOError(line)
        self.s.sendall(data)
        self.s.sendall(b"\r\n")
        last, _ = self.read_tagged(tag)
        if not last.startswith(tag + b"OK"):
            raise IOError(last)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def timed(fn, reps):
    best = None
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    return best


def pss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def dovecot_pids(base_dir):
    """The Dovecot master (from its pid file) and all its descendants."""
    master = None
    for _ in range(100):        # the pid file may be being written
        try:
            with open(os.path.join(base_dir, "master.pid")) as f:
                master = int(f.read().split()[0])
            break
        except (OSError, ValueError, IndexError):
            time.sleep(0.05)
    if master is None:
        return []
    parent = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        parent[int(p)] = ppid
    out = []
    for pid in parent:
        q = pid
        while q > 1:
            if q == master:
                out.append(pid)
                break
            q = parent.get(q, 0)
    return out


class Dovecot:
    """Dovecot's IMAP on loopback. passwords: the passwd-file's password
    field per user (default "{PLAIN}" + PASSWORD); imap_extra: more
    settings inside `protocol imap`; extra: more top-level settings."""

    def __init__(self, tmp, users, cert, key, imap_extra="", passwords=None,
                 extra=""):
        self.tmp = tmp
        self.port = pgtest.free_port()
        self.tls_port = pgtest.free_port()
        self.base = os.path.join(tmp, "dovecot-run")
        os.makedirs(self.base)
        nobody = pwd.getpwnam("nobody")
        passwd = os.path.join(tmp, "dovecot.passwd")
        with open(passwd, "w") as f:
            for u in users:
                f.write("%s:%s\n" % (u, (passwords or {}).get(
                    u, "{PLAIN}" + PASSWORD)))
        self.conf = os.path.join(tmp, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""
base_dir = %(base)s
state_dir = %(base)s/state
log_path = %(tmp)s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
default_process_limit = 3000
default_client_limit = 7000
protocol imap {
  mail_max_userip_connections = 5000
%(imap_extra)s
}
default_vsz_limit = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %(passwd)s
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(gid)d home=%(tmp)s/home/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %(tls_port)d
    ssl = yes
  }
}
service imap {
  process_limit = 3000
}
%(extra)s
""" % dict(base=self.base, tmp=tmp, cert=cert, key=key, passwd=passwd,
           uid=nobody.pw_uid, gid=nobody.pw_gid, port=self.port,
           tls_port=self.tls_port, imap_extra=imap_extra, extra=extra))
        subprocess.run(["chown", "-R", "nobody:nogroup",
                        os.path.join(tmp, "home")], check=True)
        os.chmod(tmp, 0o755)
        subprocess.run(["/usr/sbin/dovecot", "-c", self.conf], check=True)
        pgtest.wait_port(self.port, 30)

    def pids(self):
        return dovecot_pids(self.base)

    def stop(self):
        subprocess.run(["/usr/sbin/dovecot", "-c", self.conf, "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_server(name, port, tls_port, tls_ctx, pids_fn, small_user,
                 big_user, results):
    r = {}

    def login_select(user):
        c = Client(port)
        c.cmd("LOGIN %s %s" % (user, PASSWORD))
        c.cmd("SELECT INBOX")
        c.close()
    # warm-up (Dovecot builds its index on the first SELECT)
    login_select(small_user)
    login_select(big_user)
    r["login+SELECT 10k"] = timed(lambda: login_select(small_user), 5)
    r["login+SELECT big"] = timed(lambda: login_select(big_user), 3)
    c = Client(port)
    c.cmd("LOGIN %s %s" % (small_user, PASSWORD))
    c.cmd("SELECT INBOX")
    c.cmd("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")     # warm caches
    r["FETCH 1:* (FLAGS) 10k"] = timed(lambda: c.cmd("FETCH 1:* (FLAGS)"), 5)
    r["FETCH 1:* (ENVELOPE BODYSTRUCTURE) 10k"] = timed(
        lambda: c.cmd("FETCH 1:* (ENVELOPE BODYSTRUCTURE)"), 3)
    r["FETCH 1:1000 BODY.PEEK[]"] = timed(
        lambda: c.cmd("FETCH 1:1000 BODY.PEEK[]"), 5)
    r["SEARCH TEXT 10k"] = timed(lambda: c.cmd("SEARCH TEXT quarterly"), 3)
    c.cmd("LOGOUT")
    c.close()
    big = Client(port)
    big.cmd("LOGIN %s %s" % (big_user, PASSWORD))
    big.cmd("SELECT INBOX")
    r["FETCH 1:* (FLAGS) big"] = timed(lambda: big.cmd("FETCH 1:* (FLAGS)"), 3)
    big.close()
    results[name] = r


def bench_memory(port, tls_port, tls_ctx, pids_fn, small_user, r):
    # memory per idle logged-in connection, plain and TLS: 300 sessions
    # first (so memory the allocator kept from the FETCHes above is used
    # up), then the growth over 1,000 more
    for label, p, ctx in (("plain", port, None), ("TLS", tls_port, tls_ctx)):
        conns = []

        def open_sessions(k):
            for _ in range(k):
                cl = Client(p, ctx)
                cl.cmd("LOGIN %s %s" % (small_user, PASSWORD))
                conns.append(cl)
        open_sessions(300)
        time.sleep(1.0)
        before = pss_kb(pids_fn())
        open_sessions(1000)
        time.sleep(1.0)
        after = pss_kb(pids_fn())
        r["KB per idle %s session" % label] = (after - before) / 1000.0
        for cl in conns:
            cl.close()
        time.sleep(1.0)


def start_popgate(exe, store_dir, cert, key, pport, tport, extra, log):
    p = subprocess.Popen([exe, "--dir", store_dir, "--cert", cert, "--key",
                          key, "--plain", "127.0.0.1:%d" % pport, "--tls",
                          "127.0.0.1:%d" % tport, "--fast-hash",
                          "--max-per-ip", "5000", "--max-per-user", "5000",
                          "--log-level", "warn"] + extra,
                         stdout=log, stderr=subprocess.STDOUT)
    pgtest.wait_port(tport, 600)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--big", type=int, default=100000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="popgate-bench-imap-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("bench")
    tls_ctx = ssl.create_default_context(cafile=ca.ca_crt)
    home = os.path.join(tmp, "home")
    small, big = "u10k", "ubig"
    small_dir = make_maildir(home, small, 10000)
    big_dir = make_maildir(home, big, args.big)
    print("generated %d + %d messages in %.1fs" % (
        10000, args.big, time.monotonic() - t_start))
    if args.big < 100000:
        print("NOTE: the big mailbox is scaled down to %d messages "
              "(--big)" % args.big)

    store_dir = os.path.join(tmp, "store")
    os.makedirs(store_dir)
    pport, tport = pgtest.free_port(), pgtest.free_port()
    exe = os.path.join(os.path.abspath(args.build), "tests", "tools",
                       "imapd_test")
    t0 = time.monotonic()
    log = open(os.path.join(tmp, "imapd.log"), "wb")
    pg = start_popgate(exe, store_dir, cert, key, pport, tport,
                       ["--user", "%s:%s" % (small, PASSWORD),
                        "--user", "%s:%s" % (big, PASSWORD),
                        "--eml", "%s:%s" % (small, small_dir),
                        "--eml", "%s:%s" % (big, big_dir)], log)
    print("popgate store loaded in %.1fs" % (time.monotonic() - t0))
    results = {}
    try:
        bench_server("popgate", pport, tport, tls_ctx, lambda: [pg.pid],
                     small, big, results)
    finally:
        pg.send_signal(signal.SIGTERM)
        pg.wait(30)
    # memory in a fresh process on the same store, so that memory the
    # allocator kept from the big FETCHes does not hide the sessions' cost
    pport, tport = pgtest.free_port(), pgtest.free_port()
    pg = start_popgate(exe, store_dir, cert, key, pport, tport, [], log)
    try:
        bench_memory(pport, tport, tls_ctx, lambda: [pg.pid], small,
                     results["popgate"])
    finally:
        pg.send_signal(signal.SIGTERM)
        pg.wait(30)
    dv = Dovecot(tmp, (small, big), cert, key)
    try:
        bench_server("dovecot", dv.port, dv.tls_port, tls_ctx, dv.pids,
                     small, big, results)
        bench_memory(dv.port, dv.tls_port, tls_ctx, dv.pids, small,
                     results["dovecot"])
    finally:
        dv.stop()
    big_label = "%dk" % (args.big // 1000)
    print()
    print("%-42s %12s %12s %10s" % ("benchmark", "popgate", "dovecot",
                                    "dovecot/pg"))
    for k in results["popgate"]:
        a, b = results["popgate"][k], results["dovecot"][k]
        unit = "KB" if k.startswith("KB") else "ms"
        fa, fb = (a, b) if unit == "KB" else (a * 1000, b * 1000)
        label = k.replace("big", big_label)
        print("%-42s %9.2f %s %9.2f %s %9.2fx" % (label, fa, unit, fb, unit,
                                                (b / a) if a > 0 else 0))
    print("(login: popgate checks argon2id with cheap bench parameters, "
          "Dovecot a {PLAIN} passwd-file)")
    print("total %.0fs" % (time.monotonic() - t_start))
    shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
