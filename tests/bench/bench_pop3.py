#!/usr/bin/env python3
"""POP3 import benchmark, side by side in one run, against Dovecot's POP3
on loopback:

  limit      a minimal Python client that RETRs every message and throws
             it away (plain and STLS): one RETR at a time (the classic
             client), and pipelining 16 RETRs (popgate pipelines too): the
             physical limit of this server and link; ratios are to the
             pipelined limit
  popgate    pop3_fetch (release build), keep mode, every message durably
             committed to the LMDB store (plain and STLS)
  fetchmail  keep mode, delivering to Dovecot's LDA (dovecot-lda), on a
             subset (it manages well under 100 messages/s; the subset is
             stated in the output)

Messages have realistic sizes: most 2-50 KB, a few of 200 KB - 2 MB.
Prints messages/s, MB/s and ratios to the limit. Bounded (~3 minutes).
    bench_pop3.py --build build/release [--count 10000] [--fetchmail-count 500]
"""
import argparse
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from pgtest import TestCA, tempdir  # noqa: E402
from pgtest.dovecot import DovecotPop3, make_message  # noqa: E402


def sizes(n, rnd):
    out = []
    for _ in range(n):
        if rnd.random() < 0.02:
            out.append(rnd.randint(200_000, 2_000_000))
        else:
            # log-uniform between 2 and 50 KB: most mail is small
            out.append(int(2000 * (25 ** rnd.random())))
    return out


def readline(sock, buf):
    while b"\r\n" not in buf[0]:
        d = sock.recv(65536)
        if not d:
            raise EOFError
        buf[0] += d
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line


def read_multiline(sock, buf):
    """Reads up to and including CRLF.CRLF; returns the byte count."""
    data = buf[0]
    start = 0
    while True:
        i = data.find(b"\r\n.\r\n", start)
        if i >= 0:
            buf[0] = data[i + 5:]
            return i
        start = max(0, len(data) - 4)
        d = sock.recv(1 << 20)
        if not d:
            raise EOFError
        data += d


def limit_client(port, user, tls, ca, window=16):
    """RETR everything, throw it away; returns (messages, bytes, secs)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    buf = [b""]
    readline(s, buf)
    if tls:
        s.sendall(b"STLS\r\n")
        readline(s, buf)
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        buf = [b""]
    s.sendall(b"USER %s\r\nPASS secret\r\n" % user.encode())
    readline(s, buf)
    assert readline(s, buf).startswith(b"+OK")
    s.sendall(b"STAT\r\n")
    n = int(readline(s, buf).split()[1])
    total = 0
    # pipelined like popgate (Dovecot announces PIPELINING): a window of
    # RETRs in flight, so the limit is the server's and the link's
    sent = 0
    for i in range(1, n + 1):
        while sent < n and sent < i - 1 + window:
            sent += 1
            s.sendall(b"RETR %d\r\n" % sent)
        first = readline(s, buf)
        assert first.startswith(b"+OK"), first
        total += read_multiline(s, buf)
    s.sendall(b"QUIT\r\n")
    readline(s, buf)
    s.close()
    return n, total, time.monotonic() - t0


def popgate(build, store, port, tls, ca):
    argv = [os.path.join(build, "tests", "tools", "pop3_fetch"), "--store",
            store, "--user", "bob", "--account",
            "id=bench,host=127.0.0.1,port=%d,tls=%s,ca=%s,login=alice,"
            "password=secret,mode=keep" % (port, "stls" if tls else "none", ca)]
    t0 = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    secs = time.monotonic() - t0
    m = re.search(rb"fetched=(\d+) bytes=(\d+)", r.stdout)
    if r.returncode != 0 or m is None:
        raise RuntimeError("pop3_fetch failed: %s %s" % (r.stdout, r.stderr[-2000:]))
    return int(m.group(1)), int(m.group(2)), secs


def fetchmail(tmp, dc, port):
    rc = os.path.join(tmp, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('set no bouncemail\npoll 127.0.0.1 protocol pop3 port %d '
                'user "carol" password "secret" keep sslproto "" '
                'mda "/usr/lib/dovecot/dovecot-lda -c %s -d sink"\n'
                % (port, dc.conf))
    os.chmod(rc, 0o600)
    before = dc.count("sink")
    t0 = time.monotonic()
    r = subprocess.run(["fetchmail", "-f", rc, "-i", os.path.join(tmp, "fmids"),
                        "--nodetach", "-N", "-s"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=dict(os.environ, HOME=tmp))
    secs = time.monotonic() - t0
    n = dc.count("sink") - before
    if r.returncode not in (0, 1) or n == 0:
        raise RuntimeError("fetchmail failed: %s" % r.stderr[-2000:])
    return n, None, secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--fetchmail-count", type=int, default=500)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    rnd = random.Random(1)
    tmp = tempdir("popgate-bench-")
    ca = TestCA(tmp)
    dc = DovecotPop3(os.path.join(tmp, "dovecot"), ca)
    dc.add_user("alice", "secret")
    dc.add_user("carol", "secret")
    dc.add_user("sink", "secret")
    t0 = time.monotonic()
    raws = [make_message(i, s) for i, s in enumerate(sizes(args.count, rnd))]
    total_bytes = sum(len(r) for r in raws)
    dc.add_messages("alice", raws)
    dc.add_messages("carol", raws[:args.fetchmail_count])
    del raws
    print("bench_pop3: %d messages, %.1f MB (Maildir), written in %.1fs"
          % (args.count, total_bytes / 1e6, time.monotonic() - t0))
    dc.start()
    try:
        # warm Dovecot's index (sizes, UIDLs) so every contender sees the
        # same server state
        limit_client(dc.port, "alice", False, ca.ca_crt)
        limit_client(dc.port, "carol", False, ca.ca_crt)
        rows = []
        rows.append(("limit (python RETR+discard, 1 at a time)", "plain") +
                    limit_client(dc.port, "alice", False, ca.ca_crt, 1))
        rows.append(("limit (python RETR+discard, pipelined)", "plain") +
                    limit_client(dc.port, "alice", False, ca.ca_crt))
        rows.append(("limit (python RETR+discard, 1 at a time)", "STLS") +
                    limit_client(dc.port, "alice", True, ca.ca_crt, 1))
        rows.append(("limit (python RETR+discard, pipelined)", "STLS") +
                    limit_client(dc.port, "alice", True, ca.ca_crt))
        rows.append(("popgate (durable LMDB store)", "plain") +
                    popgate(build, os.path.join(tmp, "store-plain"), dc.port,
                            False, ca.ca_crt))
        rows.append(("popgate (durable LMDB store)", "STLS") +
                    popgate(build, os.path.join(tmp, "store-tls"), dc.port,
                            True, ca.ca_crt))
        n, _, secs = fetchmail(tmp, dc, dc.port)
        rows.append(("fetchmail -> dovecot-lda (%d-msg subset)" % n, "plain",
                     n, None, secs))
    finally:
        dc.stop()
    limits = {r[1]: r[2] / r[4] for r in rows
              if r[0].startswith("limit") and "pipelined" in r[0]}
    seq = {r[1]: r[2] / r[4] for r in rows
           if r[0].startswith("limit") and "1 at a time" in r[0]}
    print("%-44s %-6s %8s %9s %8s %9s" % ("contender", "link", "messages",
                                           "msg/s", "MB/s", "vs limit"))
    for name, link, n, nbytes, secs in rows:
        rate = n / secs
        mbs = "%8.1f" % (nbytes / secs / 1e6) if nbytes else "%8s" % "-"
        print("%-44s %-6s %8d %9.0f %s %8.0f%%" % (
            name, link, n, rate, mbs, 100 * rate / limits[link]))
    pg = {r[1]: r[2] / r[4] for r in rows if r[0].startswith("popgate")}
    fm = rows[-1][2] / rows[-1][4]
    print("bench_pop3: popgate/limit (pipelined) plain %.2f, TLS %.2f; "
          "popgate/limit (1 at a time) plain %.2f, TLS %.2f; "
          "popgate/fetchmail %.0fx (fetchmail measured on %d messages)"
          % (pg["plain"] / limits["plain"], pg["STLS"] / limits["STLS"],
             pg["plain"] / seq["plain"], pg["STLS"] / seq["STLS"],
             pg["plain"] / fm, rows[-1][2]))


if __name__ == "__main__":
    main()
