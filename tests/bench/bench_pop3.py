#!/usr/bin/env python3
"""POP3 import benchmark, side by side in one run, against Dovecot's POP3
on loopback:

  limit      a minimal Python client that RETRs every message and throws
             it away: one RETR at a time (the classic client), and
             pipelining 16 RETRs (popgate pipelines too), in plain text
             and over POP3S (implicit TLS): the physical limit of this
             server and link; ratios are to the pipelined limit of the
             same link. It only counts responses (their CRLF.CRLF ends)
             so that it costs little next to the server.
  popgated   the daemon (release build), its poller importing one
             account in keep mode, every message durably committed to the
             LMDB store, plain and POP3S: the time from the poll request
             to the finished poll (the control socket's status), and
             popgated's CPU over it from /proc (user+sys, per thread:
             the event loop, the workers, the writer), so that the
             cores it uses show
  fetchmail  keep mode, delivering to Dovecot's LDA (dovecot-lda), on a
             subset (it manages well under 100 messages/s; the subset is
             stated in the output)

Messages have realistic sizes: most 2-50 KB, a few of 200 KB - 2 MB.
Prints messages/s, MB/s and ratios to the limit. Bounded (~2 minutes).
    bench_pop3.py --build build/release [--count 10000] [--fetchmail-count 500]
"""
import argparse
import os
import random
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from pgtest import TestCA, tempdir  # noqa: E402
import benchlib  # noqa: E402
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


def limit_client(dc, user, link, ca, window=16):
    """RETR everything, throw it away; returns (messages, bytes, secs).
    link: plain, or pop3s (implicit TLS)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", dc.ports if link == "POP3S"
                                  else dc.port), timeout=120)
    if link == "POP3S":
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    buf = [b""]
    readline(s, buf)
    s.sendall(b"USER %s\r\nPASS secret\r\n" % user.encode())
    readline(s, buf)
    assert readline(s, buf).startswith(b"+OK")
    s.sendall(b"STAT\r\n")
    n = int(readline(s, buf).split()[1])
    # pipelined like popgate (Dovecot announces PIPELINING): a window of
    # RETRs in flight, so the limit is the server's and the link's. A
    # response ends with CRLF.CRLF, which dot-stuffing keeps out of the
    # message: counting them counts the responses.
    total = len(buf[0])
    tail = buf[0]
    done = tail.count(b"\r\n.\r\n")
    sent = 0
    while done < n:
        if sent < n and sent < done + window:
            k = min(n, done + window)
            s.sendall(b"".join(b"RETR %d\r\n" % i
                               for i in range(sent + 1, k + 1)))
            sent = k
        d = s.recv(1 << 20)
        if not d:
            raise EOFError("connection closed after %d of %d" % (done, n))
        total += len(d)
        chunk = tail[-4:] + d
        done += chunk.count(b"\r\n.\r\n")
        tail = chunk[-4:]
    s.sendall(b"QUIT\r\n")
    s.close()
    return n, total, time.monotonic() - t0


def popgated_import(gw, dc, link, count, user):
    """Makes user on the running popgated gw with an account for the POP3
    account alice of dc over link (plain or POP3S, keep mode) and imports
    it; returns (messages, bytes, secs, cpu by thread kind)."""
    gw.ok({"command": "user.add", "user": user, "password": "x-secret"})
    gw.ok({"command": "account.add", "user": user, "account": "a",
           "host": "127.0.0.1",
           "port": dc.ports if link == "POP3S" else dc.port,
           "tls": "pop3s" if link == "POP3S" else "none",
           "login": "alice", "password": "secret", "mode": "keep",
           "interval": 3600})
    pid = gw.proc.pid
    # the account's first poll may already be on its way: measure from
    # before the request
    before = benchlib.thread_cpu(pid)
    t0 = time.monotonic()
    gw.ok({"command": "poll", "user": user, "account": "a"})
    done = benchlib.wait_until(lambda: benchlib.import_done(
        benchlib.import_status(gw, user, "a"), count), 600, 0.02)
    secs = time.monotonic() - t0
    cpu = benchlib.cpu_by_kind(pid, before, benchlib.thread_cpu(pid))
    st = benchlib.import_status(gw, user, "a")
    if not done:
        raise RuntimeError("popgated import not done: %s" % st)
    return st["messages_fetched"], st["bytes_fetched"], secs, cpu


class Popgated:
    """popgated (release build) with one user per import."""

    def __init__(self, tmp, ca, build):
        self.gw = benchlib.start_popgated(tmp, ca, build, imap=False)
        self.gw.start()
        self.n = 0

    def run(self, dc, link, count):
        """Imports the POP3 account alice over link (plain or POP3S);
        returns (messages, bytes, secs, cpu by thread kind)."""
        self.n += 1
        return popgated_import(self.gw, dc, link, count, "u%d" % self.n)

    def stop(self):
        self.gw.stop(expect_rc=None)


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
    pg = None
    cpu = {}
    try:
        # warm Dovecot's index (sizes, UIDLs) so every contender sees the
        # same server state
        limit_client(dc, "alice", "plain", ca.ca_crt)
        limit_client(dc, "carol", "plain", ca.ca_crt)
        pg = Popgated(tmp, ca, build)
        rows = []
        rows.append(("limit (python RETR+discard, 1 at a time)", "plain") +
                    limit_client(dc, "alice", "plain", ca.ca_crt, 1))
        for link in ("plain", "POP3S"):
            rows.append(("limit (python RETR+discard, pipelined)", link) +
                        limit_client(dc, "alice", link, ca.ca_crt))
        for link in ("plain", "POP3S"):
            n, nbytes, secs, cpu[link] = pg.run(dc, link, args.count)
            rows.append(("popgated (durable LMDB store)", link, n, nbytes,
                         secs))
        n, _, secs = fetchmail(tmp, dc, dc.port)
        rows.append(("fetchmail -> dovecot-lda (%d-msg subset)" % n, "plain",
                     n, None, secs))
    finally:
        if pg is not None:
            pg.stop()
        dc.stop()
    limits = {r[1]: r[2] / r[4] for r in rows
              if r[0].startswith("limit") and "pipelined" in r[0]}
    print("%-44s %-6s %8s %9s %8s %9s" % ("contender", "link", "messages",
                                           "msg/s", "MB/s", "vs limit"))
    for name, link, n, nbytes, secs in rows:
        rate = n / secs
        mbs = "%8.1f" % (nbytes / secs / 1e6) if nbytes else "%8s" % "-"
        print("%-44s %-6s %8d %9.0f %s %8.0f%%" % (
            name, link, n, rate, mbs, 100 * rate / limits[link]))
    pgr = {r[1]: (r[2] / r[4], r[4]) for r in rows
           if r[0].startswith("popgated")}
    for link in ("plain", "POP3S"):
        c, secs = cpu[link], pgr[link][1]
        print("popgated CPU, %-5s: %.1f s over %.1f s = %.2f of 2 cores "
              "(event loop %.1f s, workers %.1f s, writer %.1f s)"
              % (link, c["total"], secs, c["total"] / secs, c["loop"],
                 c["workers"], c["writer"]))
    fm = rows[-1][2] / rows[-1][4]
    print("bench_pop3: popgated/limit (pipelined) plain %.2f, POP3S %.2f; "
          "popgated/fetchmail %.0fx (fetchmail measured on %d messages)"
          % (pgr["plain"][0] / limits["plain"],
             pgr["POP3S"][0] / limits["POP3S"], pgr["plain"][0] / fm,
             rows[-1][2]))


if __name__ == "__main__":
    main()
