#!/usr/bin/env python3
"""Memory under abuse (issue 12), bounded and self-stopping.

1. popgated's RSS with 1,000 sessions each holding an unfinished 50 MB
   APPEND (256 KB of each sent): the messages are in spool files, not in
   memory. Goal: under 200 MB. Beside it, Dovecot's imap under the same
   load (PSS of all its processes: one process per session).
2. popgated's anonymous memory (RssAnon) with 10,000 TLS sessions in
   IDLE, each selected on a 10,000-message INBOX. Goal: under 1 GB.
   Beside it, Dovecot's per-session figure for 1,000 such sessions (ten
   thousand Dovecot processes do not fit this machine), scaled to 10,000
   and labelled so.

The store is made by tests/tools/imapd_test (fast password hashes, a
generated mailbox) and then served by popgated itself: logins cost
milliseconds, not argon2id's default, so 11,000 logins fit the run.
The harness raises RLIMIT_NOFILE to its hard limit (popgated inherits
it): 10,000 sessions need more descriptors than the usual 1,024.

    bench_abuse.py --build build/release [--sessions N] [--idle N]
"""
import argparse
import os
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
sys.path.insert(0, HERE)
import pgtest  # noqa: E402
from bench_imap import Dovecot, pss_kb, make_maildir, PASSWORD  # noqa: E402

USER = "u10k"


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def connect(port, ctx=None, timeout=60):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def read_until(s, token, limit=1 << 20):
    buf = b""
    while token not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed: %r" % buf[-200:])
        buf += d
        if len(buf) > limit:
            buf = buf[-4096:]
    return buf


def login(s, tag=b"l"):
    read_until(s, b"\r\n")
    s.sendall(b"%s LOGIN %s %s\r\n" % (tag, USER.encode(), PASSWORD.encode()))
    out = read_until(s, tag + b" ")
    read_until(s, b"\r\n") if not out.endswith(b"\r\n") else None
    if b"%s OK" % tag not in out:
        raise RuntimeError("login failed: %r" % out[-200:])


def hold_appends(port, n, size, sent):
    """n sessions, each LOGIN + APPEND {size} with `sent` bytes of it."""
    socks = []
    chunk = b"x" * sent
    for i in range(n):
        s = connect(port)
        login(s)
        s.sendall(b"a APPEND INBOX {%d}\r\n" % size)
        read_until(s, b"+")
        s.sendall(chunk)
        socks.append(s)
    return socks


def hold_idles(port, ctx, n):
    socks = []
    for i in range(n):
        s = connect(port, ctx)
        login(s)
        s.sendall(b"s SELECT INBOX\r\n")
        read_until(s, b"s OK")
        s.sendall(b"i IDLE\r\n")
        read_until(s, b"+")
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def start_popgated(build, tmp, data, cert, key, ca, conns):
    port, tport = pgtest.free_port(), pgtest.free_port()
    conf = os.path.join(tmp, "popgate.conf")
    with open(conf, "w") as f:
        f.write("[imap]\nlisten = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\n"
                "cert = %s\nkey = %s\n\n[store]\ndata_dir = %s\n\n"
                "[control]\nsocket = %s/ctl.sock\n\n[log]\nlevel = warn\n\n"
                "[limits]\nimap_connections = %d\n"
                "imap_connections_per_ip = %d\n"
                "imap_connections_per_user = %d\n"
                "imap_preauth_per_ip = 100\n"
                % (port, tport, cert, key, data, tmp, conns, conns, conns))
    log = open(os.path.join(tmp, "popgated.log"), "ab")
    p = subprocess.Popen([os.path.join(build, "popgated"), "-c", conf, "-f"],
                         stdout=log, stderr=subprocess.STDOUT)
    pgtest.wait_port(tport, 120)
    return p, port, tport


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.idle + 2000     # per process: the harness and popgated
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, want)),
                                                hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print("RLIMIT_NOFILE raised to %d for the harness and popgated" % soft)
    if soft < want:
        args.idle = max(100, soft - 2000)
        print("NOTE: the hard limit allows only %d idle sessions" %
              args.idle)
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="popgate-bench-abuse-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("bench")
    ctx = ssl.create_default_context(cafile=ca.ca_crt)
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    # the store: a user with a fast hash and a 10,000-message INBOX
    mk = subprocess.Popen([os.path.join(build, "tests", "tools",
                                        "imapd_test"), "--dir", data,
                           "--fast-hash", "--user", "%s:%s" % (USER, PASSWORD),
                           "--generate", "%s:10000" % USER,
                           "--plain", "127.0.0.1:%d" % pgtest.free_port(),
                           "--log-level", "warn"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True)
    # it says "ready" once the mailbox is generated and it listens
    while True:
        line = mk.stdout.readline()
        if not line or line.startswith("ready"):
            break
    stop(mk)
    results = []

    # ---- 1. unfinished APPENDs -----------------------------------------
    p, port, tport = start_popgated(build, tmp, data, cert, key, ca,
                                    args.sessions + 100)
    try:
        time.sleep(0.5)
        base = status_kb(p.pid, "VmRSS")
        t0 = time.monotonic()
        socks = hold_appends(port, args.sessions, 50 * 1000 * 1000,
                             256 * 1024)
        time.sleep(2.0)
        rss = status_kb(p.pid, "VmRSS")
        anon = status_kb(p.pid, "RssAnon")
        print("popgated: %d sessions holding unfinished 50 MB APPENDs "
              "(256 KB each sent) in %.1fs: RSS %.1f MB (anon %.1f MB; "
              "%.1f MB before)" % (args.sessions, time.monotonic() - t0,
                                  rss / 1024, anon / 1024, base / 1024))
        close_all(socks)
        results.append(("RSS, %d unfinished 50 MB APPENDs" % args.sessions,
                        rss / 1024, "MB", 200))
    finally:
        stop(p)

    # ---- 2. idle TLS sessions, selected ----------------------------------
    p, port, tport = start_popgated(build, tmp, data, cert, key, ca,
                                    args.idle + 100)
    try:
        time.sleep(0.5)
        base = status_kb(p.pid, "RssAnon")
        t0 = time.monotonic()
        socks = hold_idles(tport, ctx, args.idle)
        time.sleep(2.0)
        anon = status_kb(p.pid, "RssAnon")
        print("popgated: %d TLS sessions in IDLE on a 10,000-message INBOX "
              "in %.1fs: anonymous memory %.1f MB (%.1f MB before), %.1f KB "
              "per session" % (args.idle, time.monotonic() - t0,
                               anon / 1024, base / 1024,
                               (anon - base) / args.idle))
        results.append(("anon memory, %d TLS IDLE sessions" % args.idle,
                        anon / 1024, "MB", 1024))
        close_all(socks)
    finally:
        stop(p)

    # ---- Dovecot under the same loads --------------------------------------
    home = os.path.join(tmp, "home")
    make_maildir(home, USER, 10000)
    dv = Dovecot(tmp, (USER,), cert, key)
    peer = {}
    try:
        c = connect(dv.port)
        login(c)
        c.sendall(b"s SELECT INBOX\r\n")
        read_until(c, b"s OK")          # Dovecot indexes the Maildir once
        c.close()
        time.sleep(1.0)
        base = pss_kb(dv.pids())
        socks = hold_appends(dv.port, args.sessions, 50 * 1000 * 1000,
                             256 * 1024)
        time.sleep(2.0)
        peer[0] = (pss_kb(dv.pids()) - base) / 1024
        close_all(socks)
        time.sleep(3.0)
        n = min(1000, args.idle)
        base = pss_kb(dv.pids())
        socks = hold_idles(dv.tls_port, ctx, n)
        time.sleep(2.0)
        per = (pss_kb(dv.pids()) - base) / n
        peer[1] = per * args.idle / 1024
        print("dovecot: %d TLS IDLE sessions: %.1f KB per session (PSS), "
              "scaled to %d: %.0f MB" % (n, per, args.idle, peer[1]))
        close_all(socks)
    finally:
        dv.stop()
    print()
    print("%-46s %12s %16s %10s %8s" % ("benchmark", "popgate", "dovecot",
                                        "dovecot/pg", "goal"))
    for i, (label, v, unit, goal) in enumerate(results):
        d = peer.get(i)
        print("%-46s %9.1f %s %13s %9s %5d %s%s" % (
            label, v, unit, "%.1f %s" % (d, unit) if d else "-",
            "%.1fx" % (d / v) if d else "-", goal, unit,
            "" if v < goal else "  OVER"))
    print("(dovecot: PSS of all its processes over its own baseline; the "
          "IDLE figure measured at %d sessions and scaled)" %
          min(1000, args.idle))
    print("total %.0fs" % (time.monotonic() - t_start))
    shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
