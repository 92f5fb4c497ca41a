#!/usr/bin/env python3
"""Device-sync benchmark (CONDSTORE/QRESYNC): popgate's IMAP server
(tests/tools/imapd_test) side by side with Dovecot on the same 10,000
messages. A device records UIDVALIDITY/HIGHESTMODSEQ, another session
changes flags on 200 messages and expunges 100; then the figures:

- full resync:        UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)
- incremental:        UID FETCH 1:* (FLAGS) (CHANGEDSINCE hms)
- QRESYNC reconnect:  LOGIN + ENABLE QRESYNC + SELECT (QRESYNC (uv hms))
- conditional STORE:  STORE 1:1000 (UNCHANGEDSINCE n) +/-FLAGS (\\Seen),
                      and the same STORE without the condition

Prints each figure for both and the ratio dovecot/popgate (> 1: popgate
is faster), and checks both servers sent the same number of VANISHED UIDs
and changed messages. Bounded in time (--messages scales it down).

    bench_imap_sync.py --build build/release [--messages N]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgtest  # noqa: E402
from bench_imap import (PASSWORD, Dovecot, make_maildir,  # noqa: E402
                        start_popgate, timed)


class Client:
    """Reads up to the tagged line; returns the whole response."""

    def __init__(self, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = s
        self.n = 0
        buf = b""
        while b"\r\n" not in buf:
            buf += self.s.recv(65536)

    def cmd(self, text):
        self.n += 1
        tag = b"T%d " % self.n
        self.s.sendall(tag + text.encode() + b"\r\n")
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
                    if not last.startswith(tag + b"OK"):
                        raise IOError(bytes(last))
                    return bytes(buf)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def count_set(text):
    n = 0
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        n += abs(int(b or a) - int(a)) + 1
    return n


def bench_server(port, user, n, r, counts):
    def login(c):
        c.cmd("LOGIN %s %s" % (user, PASSWORD))

    dev = Client(port)
    login(dev)
    dev.cmd("ENABLE QRESYNC")
    out = dev.cmd("SELECT INBOX")
    dev.cmd("FETCH 1:* (FLAGS MODSEQ)")     # warm-up, index built
    out = dev.cmd("SELECT INBOX")
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", out).group(1))
    hms = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", out).group(1))
    dev.close()
    other = Client(port)
    login(other)
    other.cmd("SELECT INBOX")
    step = max(1, n // 200)
    flagged = ",".join(str(u) for u in range(1, n + 1, step))
    other.cmd("UID STORE %s +FLAGS.SILENT (\\Flagged)" % flagged)
    gone = ",".join(str(u) for u in range(2, n + 1, max(2, n // 100)))
    other.cmd("UID STORE %s +FLAGS.SILENT (\\Deleted)" % gone)
    other.cmd("EXPUNGE")
    other.close()

    dev = Client(port)
    login(dev)
    dev.cmd("ENABLE QRESYNC")
    dev.cmd("SELECT INBOX")
    r["full resync CHANGEDSINCE 0"] = timed(
        lambda: dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)"), 5)
    out = dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    counts["all"] = len(re.findall(rb"^\* \d+ FETCH \(", out, re.M))
    r["incremental CHANGEDSINCE hms"] = timed(
        lambda: dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms), 5)
    out = dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms)
    m = re.search(rb"\* VANISHED \(EARLIER\) ([0-9:,]+)", out)
    counts["changed"] = len(re.findall(rb"^\* \d+ FETCH \(", out, re.M))
    counts["vanished"] = count_set(m.group(1)) if m else 0
    high = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]",
                         dev.cmd("SELECT INBOX")).group(1))
    state = {"sign": "+"}

    def cstore():
        dev.cmd("STORE 1:1000 (UNCHANGEDSINCE %d) %sFLAGS.SILENT (\\Seen)"
                % (high + 100000, state["sign"]))
        state["sign"] = "-" if state["sign"] == "+" else "+"
    r["conditional STORE 1000"] = timed(cstore, 6)

    def pstore():
        dev.cmd("STORE 1:1000 %sFLAGS.SILENT (\\Seen)" % state["sign"])
        state["sign"] = "-" if state["sign"] == "+" else "+"
    # the same without the condition: what the condition itself costs
    r["plain STORE 1000"] = timed(pstore, 6)
    dev.close()

    def reconnect():
        c = Client(port)
        login(c)
        c.cmd("ENABLE QRESYNC")
        c.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
        c.close()
    r["login+QRESYNC SELECT"] = timed(reconnect, 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--messages", type=int, default=10000)
    args = ap.parse_args()
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="popgate-bench-sync-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("bench")
    user = "usync"
    mdir = make_maildir(os.path.join(tmp, "home"), user, args.messages)
    store_dir = os.path.join(tmp, "store")
    os.makedirs(store_dir)
    pport, tport = pgtest.free_port(), pgtest.free_port()
    exe = os.path.join(os.path.abspath(args.build), "tests", "tools",
                       "imapd_test")
    log = open(os.path.join(tmp, "imapd.log"), "wb")
    results, counts = {"popgate": {}, "dovecot": {}}, {}
    pg = start_popgate(exe, store_dir, cert, key, pport, tport,
                       ["--user", "%s:%s" % (user, PASSWORD),
                        "--eml", "%s:%s" % (user, mdir)], log)
    try:
        counts["popgate"] = {}
        bench_server(pport, user, args.messages, results["popgate"],
                     counts["popgate"])
    finally:
        pg.send_signal(signal.SIGTERM)
        pg.wait(30)
    dv = Dovecot(tmp, (user,), cert, key)
    try:
        counts["dovecot"] = {}
        bench_server(dv.port, user, args.messages, results["dovecot"],
                     counts["dovecot"])
    finally:
        dv.stop()
    for name in ("popgate", "dovecot"):
        print("%s: %d messages left, %d changed and %d vanished after the "
              "device left" % (name, counts[name]["all"],
                               counts[name]["changed"],
                               counts[name]["vanished"]))
    print("%-34s %12s %12s %10s" % ("benchmark", "popgate", "dovecot",
                                    "dovecot/pg"))
    for k in results["popgate"]:
        a, b = results["popgate"][k], results["dovecot"][k]
        print("%-34s %9.2f ms %9.2f ms %9.2fx" % (k, a * 1000, b * 1000,
                                                  (b / a) if a > 0 else 0))
    print("total %.0fs" % (time.monotonic() - t_start))
    shutil.rmtree(tmp, True)
    if counts["popgate"] != counts["dovecot"]:
        print("MISMATCH: the servers disagree on what changed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
