#!/usr/bin/env python3
"""Device-resync benchmark (issue 7): popgate's IMAP server
(tests/tools/imapd_test) side by side with Dovecot on the same
100,000-message mailbox.

A "device" logs in, ENABLE QRESYNC, SELECT, records UIDVALIDITY and
HIGHESTMODSEQ and leaves. Another session then makes 1,000 flag changes
(1,000 pipelined UID STOREs, +\\Flagged on random unflagged messages) and
expunges 100 other random messages (UID EXPUNGE), stays --settle seconds
and sends a NOOP (see make_changes: this keeps Dovecot's Maildir rescan
out of the device's figure). The device comes back and resyncs in one of
three ways:

- QRESYNC:            ENABLE QRESYNC + SELECT INBOX (QRESYNC (uv hms))
- QRESYNC known-uids: the same with the UIDs the device knew
- no QRESYNC:         SELECT INBOX + UID FETCH 1:* (FLAGS) (what a client
                      without CONDSTORE does: every UID and its flags)

For each: the bytes the server sent (from after LOGIN to the tagged OK of
the last resync command) and the wall time over the same span (best of
--rounds). Every resync is the first one after a fresh round of changes
(new random messages, seed printed), so no server answers a resync it has
just answered. Each result is checked: the VANISHED UIDs are exactly the
100 expunged, the FETCHes cover the 1,000 flagged messages with \\Flagged
(QRESYNC), or the UID list is exactly what is left and every flagged
message has \\Flagged (no QRESYNC). The figures are for correct work only:
a wrong result fails the benchmark.

Then the older figures on the same mailbox: UID FETCH CHANGEDSINCE 0 and
CHANGEDSINCE hms, login + QRESYNC SELECT, conditional and plain STORE of
1,000 messages (on Maildir, Dovecot's STOREs include reading the
directory again: their changes are never a second old).

Dovecot runs as in bench_imap.py (Maildir, its own index). About 100 s
on 2 cores, most of it generating the messages and the settle pauses.

    bench_imap_sync.py --build build/release [--messages N] [--rounds R]
        [--seed S] [--settle SECONDS]
"""
import argparse
import os
import random
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

FLAG_CHANGES = 1000
EXPUNGES = 100
PIPELINE = 100          # commands sent before reading their responses


class Client:
    """Reads up to the tagged line; returns the whole response. Counts
    every byte received (self.received)."""

    def __init__(self, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = s
        self.n = 0
        self.received = 0
        self.read_until(b"")

    def read_until(self, tag):
        """Reads until the buffer ends with a line starting with tag (b""
        for any line); the server sends nothing after it unasked. Only
        the last line is looked at, so that reading costs the client
        little next to the server's work."""
        buf = bytearray()
        while True:
            d = self.s.recv(1 << 20)
            if not d:
                raise IOError("connection closed")
            self.received += len(d)
            buf += d
            if buf.endswith(b"\r\n"):
                i = buf.rfind(b"\r\n", 0, len(buf) - 2)
                if buf.startswith(tag, i + 2 if i >= 0 else 0):
                    return bytes(buf)

    def send(self, text):
        self.n += 1
        tag = b"T%d " % self.n
        self.s.sendall(tag + text.encode() + b"\r\n")
        return tag

    def cmd(self, text):
        tag = self.send(text)
        out = self.read_until(tag)
        i = out.rfind(b"\r\n", 0, len(out) - 2)
        last = out[i + 2:] if i >= 0 else out
        if not last.startswith(tag + b"OK"):
            raise IOError(last)
        return out

    def pipeline(self, cmds):
        """Sends cmds PIPELINE at a time; every one must say OK."""
        for k in range(0, len(cmds), PIPELINE):
            tags = [self.send(c) for c in cmds[k:k + PIPELINE]]
            out = self.read_until(tags[-1])
            ok = set(re.findall(rb"^(T\d+ )OK", out, re.M))
            if ok != set(tags):
                raise IOError("pipelined commands failed: %r" % out[-300:])

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def parse_set(text):
    out = set()
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        lo, hi = int(a), int(b or a)
        if lo > hi:
            lo, hi = hi, lo
        out.update(range(lo, hi + 1))
    return out


def format_set(uids):
    uids = sorted(uids)
    parts = []
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else "%d:%d" % (uids[i],
                                                             uids[j]))
        i = j + 1
    return ",".join(parts)


FETCH_RE = re.compile(rb"^\* \d+ FETCH \((.*)\)\r$", re.M)


def fetched(out):
    """{uid: flags bytes} of the untagged FETCHes in out."""
    res = {}
    for m in FETCH_RE.finditer(out):
        body = m.group(1)
        u = re.search(rb"\bUID (\d+)", body)
        f = re.search(rb"\bFLAGS \(([^)]*)\)", body)
        if u is None or f is None:
            raise ValueError("FETCH without UID or FLAGS: %r" % body[:200])
        res[int(u.group(1))] = f.group(1)
    return res


class Mailbox:
    """What the benchmark knows the mailbox holds (to pick changes and to
    check the servers' answers)."""

    def __init__(self, n):
        self.present = set(range(1, n + 1))
        self.flagged = set()


def make_changes(port, user, mbox, rng, settle):
    """1,000 flag changes and 100 expunges from another session, which
    then stays connected for settle seconds and sends a NOOP, as another
    device left online would; returns (flagged uids, expunged uids, NOOP
    seconds) of this round.

    The NOOP is there for Dovecot's sake: Maildir can not tell changes
    made in the last second from ones to come, so the first session to
    sync after them (a second later or more) reads the whole directory
    again. Here that session is the changer's NOOP, not the device, so
    that the resync figures are the resync's own cost; the NOOP's time
    is printed as a note."""
    candidates = sorted(mbox.present - mbox.flagged)
    picked = rng.sample(candidates, FLAG_CHANGES + EXPUNGES)
    flag, gone = set(picked[:FLAG_CHANGES]), set(picked[FLAG_CHANGES:])
    c = Client(port)
    c.cmd("LOGIN %s %s" % (user, PASSWORD))
    c.cmd("SELECT INBOX")
    c.pipeline(["UID STORE %d +FLAGS.SILENT (\\Flagged)" % u
                for u in sorted(flag, key=lambda _: rng.random())])
    c.cmd("UID STORE %s +FLAGS.SILENT (\\Deleted)" % format_set(gone))
    c.cmd("UID EXPUNGE %s" % format_set(gone))
    time.sleep(settle)
    t0 = time.perf_counter()
    c.cmd("NOOP")
    noop = time.perf_counter() - t0
    c.cmd("LOGOUT")
    c.close()
    mbox.flagged |= flag
    mbox.present -= gone
    return flag, gone, noop


def device_state(port, user):
    c = Client(port)
    c.cmd("LOGIN %s %s" % (user, PASSWORD))
    c.cmd("ENABLE QRESYNC")
    out = c.cmd("SELECT INBOX")
    c.cmd("LOGOUT")
    c.close()
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", out).group(1))
    hms = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", out).group(1))
    return uv, hms


def resync(port, user, how, uv, hms, known):
    """One resync on a fresh connection; returns (bytes, seconds, output
    of the resync commands)."""
    known_set = format_set(known)
    c = Client(port)
    c.cmd("LOGIN %s %s" % (user, PASSWORD))
    b0 = c.received
    t0 = time.perf_counter()
    if how == "qresync":
        out = c.cmd("ENABLE QRESYNC")
        out += c.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
    elif how == "qresync-known":
        out = c.cmd("ENABLE QRESYNC")
        out += c.cmd("SELECT INBOX (QRESYNC (%d %d %s))" % (
            uv, hms, known_set))
    else:
        out = c.cmd("SELECT INBOX")
        out += c.cmd("UID FETCH 1:* (FLAGS)")
    dt = time.perf_counter() - t0
    nbytes = c.received - b0
    c.cmd("LOGOUT")
    c.close()
    return nbytes, dt, out


def check_resync(how, out, uv, mbox, flag, gone):
    """Raises if the resync's answer is not what the device needs."""
    got_uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", out).group(1))
    if got_uv != uv:
        raise AssertionError("UIDVALIDITY changed: %d -> %d" % (uv, got_uv))
    exists = int(re.search(rb"^\* (\d+) EXISTS", out, re.M).group(1))
    if exists != len(mbox.present):
        raise AssertionError("%d EXISTS, expected %d" % (
            exists, len(mbox.present)))
    f = fetched(out)
    if how.startswith("qresync"):
        vanished = set()
        for m in re.finditer(rb"^\* VANISHED \(EARLIER\) ([0-9:,]+)", out,
                             re.M):
            vanished |= parse_set(m.group(1))
        if vanished != gone:
            raise AssertionError(
                "%s: VANISHED has %d UIDs, %d of the %d expunged, "
                "%d others" % (how, len(vanished), len(vanished & gone),
                               len(gone), len(vanished - gone)))
        missing = flag - set(f)
        if missing:
            raise AssertionError("%s: %d changed messages not reported"
                                 % (how, len(missing)))
        extra = set(f) - flag
    else:
        if set(f) != mbox.present:
            raise AssertionError(
                "UID FETCH 1:*: %d UIDs, expected %d (%d missing, %d "
                "extra)" % (len(f), len(mbox.present),
                            len(mbox.present - set(f)),
                            len(set(f) - mbox.present)))
        extra = set()
    for u, fl in f.items():
        want = u in mbox.flagged
        if (b"\\Flagged" in fl.split()) != want:
            raise AssertionError("UID %d: FLAGS (%s), \\Flagged expected "
                                 "%s" % (u, fl.decode(), want))
    return len(extra)


RESYNCS = (("QRESYNC SELECT", "qresync"),
           ("QRESYNC SELECT + known-uids", "qresync-known"),
           ("no QRESYNC: SELECT + UID FETCH 1:* (FLAGS)", "full"))


def bench_resync(port, user, n, rounds, seed, settle, r, notes):
    mbox = Mailbox(n)
    rng = random.Random(seed)
    noops = []
    for label, how in RESYNCS:
        best_t, nbytes_all = None, []
        for _ in range(rounds):
            uv, hms = device_state(port, user)
            known = set(mbox.present)
            flag, gone, noop = make_changes(port, user, mbox, rng, settle)
            noops.append(noop)
            nbytes, dt, out = resync(port, user, how, uv, hms, known)
            extra = check_resync(how, out, uv, mbox, flag, gone)
            if extra:
                notes.append("%s: %d unchanged messages reported as well"
                             % (label, extra))
            nbytes_all.append(nbytes)
            best_t = dt if best_t is None or dt < best_t else best_t
        r[label] = (min(nbytes_all), best_t)
    notes.append("another session's NOOP %.1fs after the changes: "
                 "%.1f-%.1f ms" % (settle, min(noops) * 1000,
                                   max(noops) * 1000))
    return mbox


def bench_other(port, user, mbox, settle, r):
    uv, hms = device_state(port, user)
    # a round of changes after the device left, as above
    make_changes(port, user, mbox, random.Random(1), settle)

    def reconnect():
        c = Client(port)
        c.cmd("LOGIN %s %s" % (user, PASSWORD))
        c.cmd("ENABLE QRESYNC")
        c.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
        c.close()
    r["connect+LOGIN+QRESYNC SELECT"] = (None, timed(reconnect, 5))
    dev = Client(port)
    dev.cmd("LOGIN %s %s" % (user, PASSWORD))
    dev.cmd("ENABLE QRESYNC")
    dev.cmd("SELECT INBOX")
    t = timed(lambda: dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)"), 3)
    b0 = dev.received
    dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")
    r["UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)"] = (dev.received - b0, t)
    t = timed(lambda: dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)"
                              % hms), 5)
    b0 = dev.received
    out = dev.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    if len(fetched(out)) != FLAG_CHANGES:
        raise AssertionError("CHANGEDSINCE: %d changed, expected %d" % (
            len(fetched(out)), FLAG_CHANGES))
    r["UID FETCH 1:* (FLAGS) (CHANGEDSINCE hms)"] = (dev.received - b0, t)
    high = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]",
                         dev.cmd("SELECT INBOX")).group(1))
    state = {"sign": "+"}

    def store(cond):
        def run():
            b0 = dev.received
            dev.cmd("STORE 1:1000 %s%sFLAGS.SILENT (\\Seen)" % (
                "(UNCHANGEDSINCE %d) " % (high + 100000) if cond else "",
                state["sign"]))
            state["sign"] = "-" if state["sign"] == "+" else "+"
            state["bytes"] = dev.received - b0
        return run
    # last: on Maildir, Dovecot reads the directory again at each of
    # these (the changes are always less than a second old)
    t = timed(store(True), 6)
    r["conditional STORE 1:1000 (UNCHANGEDSINCE)"] = (state["bytes"], t)
    # the same without the condition: what the condition itself costs
    t = timed(store(False), 6)
    r["plain STORE 1:1000"] = (state["bytes"], t)
    dev.close()


def bench_server(name, port, user, args, seed, results, notes):
    t0 = time.monotonic()
    c = Client(port)
    c.cmd("LOGIN %s %s" % (user, PASSWORD))
    c.cmd("SELECT INBOX")       # Dovecot builds its index here
    c.cmd("LOGOUT")
    c.close()
    print("%s: first SELECT (index built) in %.1fs" % (
        name, time.monotonic() - t0), flush=True)
    t0 = time.monotonic()
    r = results[name] = {}
    mbox = bench_resync(port, user, args.messages, args.rounds, seed,
                        args.settle, r, notes.setdefault(name, []))
    bench_other(port, user, mbox, args.settle, r)
    print("%s: measured in %.1fs (%d messages left)" % (
        name, time.monotonic() - t0, len(mbox.present)), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--settle", type=float, default=2.0)
    args = ap.parse_args()
    if args.messages < 2 * (args.rounds * len(RESYNCS) + 1) * (
            FLAG_CHANGES + EXPUNGES):
        ap.error("--messages too small for the rounds of changes")
    seed = args.seed if args.seed is not None else 7
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="popgate-bench-sync-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("bench")
    user = "usync"
    mdir = make_maildir(os.path.join(tmp, "home"), user, args.messages)
    print("generated %d messages in %.1fs; seed %d; %d flag changes and "
          "%d expunges before each resync, best of %d" % (
              args.messages, time.monotonic() - t_start, seed,
              FLAG_CHANGES, EXPUNGES, args.rounds), flush=True)
    if args.messages != 100000:
        print("NOTE: the mailbox is scaled to %d messages (--messages), "
              "issue 7 asks for 100,000" % args.messages)
    store_dir = os.path.join(tmp, "store")
    os.makedirs(store_dir)
    pport, tport = pgtest.free_port(), pgtest.free_port()
    exe = os.path.join(os.path.abspath(args.build), "tests", "tools",
                       "imapd_test")
    log = open(os.path.join(tmp, "imapd.log"), "wb")
    results, notes = {}, {}
    status = 0
    t0 = time.monotonic()
    pg = start_popgate(exe, store_dir, cert, key, pport, tport,
                       ["--user", "%s:%s" % (user, PASSWORD),
                        "--eml", "%s:%s" % (user, mdir)], log)
    print("popgate: store filled in %.1fs" % (time.monotonic() - t0),
          flush=True)
    try:
        bench_server("popgate", pport, user, args, seed, results, notes)
    except (AssertionError, IOError, ValueError) as e:
        print("popgate: WRONG RESULT: %s" % e)
        status = 1
    finally:
        pg.send_signal(signal.SIGTERM)
        pg.wait(30)
        log.close()
    dv = Dovecot(tmp, (user,), cert, key)
    try:
        bench_server("dovecot", dv.port, user, args, seed, results, notes)
    except (AssertionError, IOError, ValueError) as e:
        print("dovecot: WRONG RESULT: %s" % e)
        status = 1
    finally:
        dv.stop()
    for name in ("popgate", "dovecot"):
        for note in sorted(set(notes.get(name, []))):
            print("%s: note: %s" % (name, note))
    if status == 0:
        print_table(results, args.messages)
    print("total %.0fs" % (time.monotonic() - t_start))
    shutil.rmtree(tmp, True)
    return status


def print_table(results, n):
    print()
    print("%d messages; bytes: what the server sent after LOGIN; ratio: "
          "dovecot ms / popgate ms (> 1: popgate faster)" % n)
    hdr = ("operation", "pg bytes", "dovecot bytes", "pg ms", "dovecot ms",
           "ratio")
    print("%-44s %10s %13s %9s %10s %7s" % hdr)
    for k in results["popgate"]:
        (ba, ta), (bb, tb) = results["popgate"][k], results["dovecot"][k]
        fb = ("%10d" % ba, "%13d" % bb) if ba is not None else (
            "%10s" % "-", "%13s" % "-")
        print("%-44s %s %s %9.2f %10.2f %6.2fx" % (
            k, fb[0], fb[1], ta * 1000, tb * 1000,
            (tb / ta) if ta > 0 else 0))


if __name__ == "__main__":
    sys.exit(main())
