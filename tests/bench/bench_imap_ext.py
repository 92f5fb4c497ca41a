#!/usr/bin/env python3
"""Issue 14's extensions, popgate beside Dovecot in one run:

- a full first sync of 10,000 messages (SELECT, UID FETCH 1:* (FLAGS
  RFC822.SIZE INTERNALDATE), UID FETCH 1:* BODY.PEEK[], as mbsync does)
  with and without COMPRESS=DEFLATE: bytes on the wire and time;
- SORT (DATE), SORT (SUBJECT) and THREAD REFERENCES over 10,000 and
  --big (default 100,000) messages: the best of three runs after one
  warm-up (Dovecot builds its cache on the first), and the server's CPU
  time (user + sys of the whole server, every process and thread) per
  command over 30 (10k) or 5 (big) more: on a shared machine the wall
  times move with the load, the CPU a command costs much less.

    bench_imap_ext.py --build build/release [--big N]
"""
import argparse
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgtest  # noqa: E402
from bench_imap import (PASSWORD, Client, Dovecot, make_maildir,  # noqa: E402
                        start_popgate, timed)
from benchlib import tree_cpu  # noqa: E402


class ZClient(Client):
    """Client with optional COMPRESS; counts bytes as received."""

    def __init__(self, port):
        super().__init__(port)
        self.de = self.co = None
        self.wire = 0

    def compress(self):
        self.cmd("COMPRESS DEFLATE")
        self.co = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.de = zlib.decompressobj(-15)

    def cmd(self, text):
        self.n += 1
        tag = b"T%d " % self.n
        data = tag + text.encode() + b"\r\n"
        if self.co is not None:
            data = self.co.compress(data) + self.co.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(data)
        buf = bytearray()
        while True:
            d = self.s.recv(1 << 20)
            if not d:
                raise IOError("connection closed")
            self.wire += len(d)
            if self.de is not None:
                d = self.de.decompress(d)
            buf += d
            if buf.endswith(b"\r\n"):
                i = buf.rfind(b"\r\n", 0, len(buf) - 2)
                last = buf[i + 2:] if i >= 0 else buf
                if last.startswith(tag):
                    if not last.startswith(tag + b"OK"):
                        raise IOError(bytes(last))
                    return len(buf)


def first_sync(port, user, compress):
    c = ZClient(port)
    t0 = time.perf_counter()
    c.cmd("LOGIN %s %s" % (user, PASSWORD))
    if compress:
        c.compress()
    c.cmd("SELECT INBOX")
    raw = c.cmd("UID FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE)")
    raw += c.cmd("UID FETCH 1:* BODY.PEEK[]")
    dt = time.perf_counter() - t0
    wire = c.wire
    c.close()
    return wire, raw, dt


def bench(name, port, small, big, res, pids):
    r = res.setdefault(name, {})
    for z in (False, True):
        first_sync(port, small, z)     # warm-up (Dovecot's index)
        best = None
        for _ in range(2):
            w, raw, dt = first_sync(port, small, z)
            best = (w, raw, dt) if best is None or dt < best[2] else best
        key = "sync 10k %s" % ("COMPRESS" if z else "plain")
        r[key + " bytes"] = best[0]
        r[key + " ms"] = best[2] * 1000
    for user, label, reps in ((small, "10k", 30), (big, "big", 5)):
        c = Client(port)
        c.cmd("LOGIN %s %s" % (user, PASSWORD))
        c.cmd("SELECT INBOX")
        for cmd, what in (("SORT (DATE) UTF-8 ALL", "SORT (DATE)"),
                          ("SORT (SUBJECT) UTF-8 ALL", "SORT (SUBJECT)"),
                          ("THREAD REFERENCES UTF-8 ALL",
                           "THREAD REFERENCES")):
            c.cmd(cmd)                 # warm-up: Dovecot fills its cache
            r["%s %s ms" % (what, label)] = timed(lambda: c.cmd(cmd),
                                                  3) * 1000
            cpu0 = tree_cpu(pids())
            for _ in range(reps):
                c.cmd(cmd)
            r["%s %s cpu ms" % (what, label)] = (
                tree_cpu(pids()) - cpu0) * 1000 / reps
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--big", type=int, default=100000)
    args = ap.parse_args()
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="popgate-bench-ext-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("bench")
    home = os.path.join(tmp, "home")
    small, big = "u10k", "ubig"
    small_dir = make_maildir(home, small, 10000)
    big_dir = make_maildir(home, big, args.big)
    if args.big < 100000:
        print("NOTE: the big mailbox is scaled down to %d messages "
              "(--big)" % args.big)
    store_dir = os.path.join(tmp, "store")
    os.makedirs(store_dir)
    pport, tport = pgtest.free_port(), pgtest.free_port()
    exe = os.path.join(os.path.abspath(args.build), "tests", "tools",
                       "imapd_test")
    log = open(os.path.join(tmp, "imapd.log"), "wb")
    pg = start_popgate(exe, store_dir, cert, key, pport, tport,
                       ["--user", "%s:%s" % (small, PASSWORD),
                        "--user", "%s:%s" % (big, PASSWORD),
                        "--eml", "%s:%s" % (small, small_dir),
                        "--eml", "%s:%s" % (big, big_dir)], log)
    res = {}
    try:
        bench("popgate", pport, small, big, res, lambda: [pg.pid])
    finally:
        pg.send_signal(signal.SIGTERM)
        pg.wait(30)
    dv = Dovecot(tmp, (small, big), cert, key,
                 imap_extra="  mail_plugins = $mail_plugins imap_zlib")
    try:
        bench("dovecot", dv.port, small, big, res, dv.pids)
    finally:
        dv.stop()
    big_label = "%dk" % (args.big // 1000)
    print("%-40s %14s %14s %10s" % ("benchmark", "popgate", "dovecot",
                                    "dovecot/pg"))
    for k in res["popgate"]:
        a, b = res["popgate"][k], res["dovecot"][k]
        print("%-40s %14.1f %14.1f %9.2fx" % (k.replace("big", big_label),
                                             a, b, b / a if a else 0))
    pz = res["popgate"]["sync 10k COMPRESS bytes"]
    pp = res["popgate"]["sync 10k plain bytes"]
    print("COMPRESS: popgate sends %.1f %% of the bytes (window 2^14, "
          "memLevel 6); Dovecot %.1f %%" % (
              100.0 * pz / pp, 100.0 * res["dovecot"]["sync 10k COMPRESS "
                                                     "bytes"] /
              res["dovecot"]["sync 10k plain bytes"]))
    print("total %.0fs" % (time.monotonic() - t_start))
    shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
