#!/usr/bin/env python3
"""Keep → delete cut-over benchmark (issue 15): the bytes a POP3 account
downloads again when it is switched from keep to delete mode, against a
real Dovecot on loopback, counted by Dovecot itself (pop3_logout_format
%t/%p TOPs and their bytes, %r/%b RETRs and theirs).

  import     keep mode, every message RETRieved and stored (the baseline:
             the mailbox's bytes)
  TOP check  delete mode: UIDL + LIST size + TOP n 0 against the header
             digest kept in the ledger, RETR only where they disagree
  RETR check the same cut-over with ledger entries from before header
             digests (--legacy-ledger-80): every message RETRieved to be
             compared before its DELE (what popgate did before)
  renumbered every UIDL changed (Dovecot's pop3_uidl_format), keep mode:
             unknown UIDLs recognised by TOP n 0 + LIST size (before
             issue 15 session 4: every message RETRieved and hashed)

The two cut-overs start from the same state: Dovecot's maildir (with its
UID list) and popgate's store are copied after the import and put back.
Prints bytes, seconds and the share of the mailbox downloaded again.
    bench_cutover.py --build build/release [--count 10000]
        [--header-bytes N]
--header-bytes adds trace headers (Received:, DKIM-Signature:-like) of
about N bytes to every message: the generated header block alone is
about 260 bytes, real mail's is often 2-5 KB, and the TOP check costs
the header block.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from pgtest import TestCA, tempdir  # noqa: E402
from pgtest.dovecot import DovecotPop3, make_message, wire_bytes  # noqa: E402

LOGOUT = re.compile(rb"Logged out top=(\d+)/(\d+), retr=(\d+)/(\d+), "
                    rb"del=(\d+)/(\d+)")


def dovecot_counts(dc, pos):
    """(tops, top bytes, retrs, retr bytes, deles) after log byte pos."""
    with open(dc.log, "rb") as f:
        f.seek(pos)
        lines = LOGOUT.findall(f.read())
    return tuple(sum(int(x[k]) for x in lines) for k in (0, 1, 2, 3, 4))


def poll(build, store, dc, ca, mode, extra=()):
    acct = ("id=acct1,host=127.0.0.1,login=alice,password=secret,"
            "tls=stls,port=%d,ca=%s,mode=%s" % (dc.port, ca, mode))
    pos = os.path.getsize(dc.log) if os.path.exists(dc.log) else 0
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(build, "tests", "tools", "pop3_fetch"),
                        "--store", store, "--user", "bob", "--polls", "1",
                        "--account", acct] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=1800)
    secs = time.monotonic() - t0
    poll.stderr = r.stderr.decode(errors="replace")
    line = [x for x in r.stdout.decode().splitlines()
            if x.startswith("poll ")]
    if r.returncode != 0 or not line:
        sys.exit("pop3_fetch failed: %s %s" % (r.stdout.decode(),
                                               r.stderr.decode()[-2000:]))
    return secs, dovecot_counts(dc, pos), line[0]


def trace_headers(i, size):
    """About size bytes of Received: headers, folded as MTAs do."""
    out = b""
    hop = 0
    while len(out) < size:
        out += (b"Received: from relay%d.example.net (relay%d.example.net "
                b"[192.0.2.%d])\n\tby mx%d.example.org with ESMTPS id "
                b"%08x%04x\n\tfor <alice@example.org>; Tue, 3 Nov 2026 "
                b"10:%02d:%02d +0100\n" % (hop, hop, hop % 250, hop, i,
                                           hop, i % 60, hop % 60))
        hop += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--header-bytes", type=int, default=0)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempdir()
    ca = TestCA(tmp)
    dc = DovecotPop3(os.path.join(tmp, "dovecot"), ca)
    dc.extra_conf = ("pop3_logout_format = top=%t/%p, retr=%r/%b, "
                     "del=%d/%m, size=%s\n")
    dc._write_conf()
    dc.add_user("alice", "secret")
    rnd = random.Random(15)
    total = 0
    for i in range(a.count):
        # log-uniform 2-50 KB, as most mail
        raw = make_message(i, int(2000 * (25 ** rnd.random())),
                           extra_headers=trace_headers(i, a.header_bytes))
        total += len(wire_bytes(raw))
        dc.add_message("alice", raw)
    dc.start()
    store = os.path.join(tmp, "store")
    try:
        secs, c, _ = poll(build, store, dc, ca.ca_crt, "keep")
        print("cut-over of %d messages, %.1f MB, %d bytes of trace "
              "headers added (Dovecot POP3 + STLS, loopback)" % (
                  a.count, total / 1e6, a.header_bytes))
        print("  %-11s %9.1f s  RETR %6d msgs %10d bytes" % (
            "import", secs, c[2], c[3]))
        dc.stop()
        snap_md = os.path.join(tmp, "maildir-after-import")
        snap_st = os.path.join(tmp, "store-after-import")
        shutil.copytree(dc.maildir("alice"), snap_md, symlinks=True)
        shutil.copytree(store, snap_st)
        dc.start()
        rows = []
        for name, extra in (("TOP check", ()),
                            ("RETR check", ("--legacy-ledger-80",))):
            secs, c, line = poll(build, store, dc, ca.ca_crt, "delete",
                                 extra)
            if c[4] != a.count:
                sys.exit("%s: %d DELEs of %d: %s" % (name, c[4], a.count,
                                                     line))
            rows.append((name, secs, c))
            print("  %-11s %9.1f s  RETR %6d msgs %10d bytes (%.2f %% of "
                  "the mailbox)  TOP %6d msgs %10d bytes  DELE %d" % (
                      name, secs, c[2], c[3], 100.0 * c[3] / total, c[0],
                      c[1], c[4]))
            # back to the state after the import
            dc.stop()
            shutil.rmtree(dc.maildir("alice"))
            shutil.copytree(snap_md, dc.maildir("alice"), symlinks=True)
            dc._chown(dc.maildir("alice"))
            shutil.rmtree(store)
            shutil.copytree(snap_st, store)
            dc.start()
        top, retr = rows
        print("  bytes downloaded at cut-over, TOP check / RETR check: "
              "%.4f; time %.2f" % (
                  (top[2][1] + top[2][3]) / max(1, retr[2][3]),
                  top[1] / max(1e-9, retr[1])))
        # every UIDL renumbered (another pop3_uidl_format), keep mode:
        # each unknown UIDL recognised by TOP n 0 + LIST size, or
        # RETRieved and recognised by its SHA-256
        dc.restart_with_uidl_format("%08Xv-%08Xu")
        secs, c, line = poll(build, store, dc, ca.ca_crt, "keep")
        if " fetched=0 " not in line:
            sys.exit("renumbered: delivered again: %s" % line)
        print("  %-11s %9.1f s  RETR %6d msgs %10d bytes (%.2f %% of "
              "the mailbox)  TOP %6d msgs %10d bytes (%.2f %%)" % (
                  "renumbered", secs, c[2], c[3], 100.0 * c[3] / total,
                  c[0], c[1], 100.0 * c[1] / total))
        # one new message in the renumbered mailbox (now all known): the
        # walk over the mailbox's deliveries that an unknown UIDL costs
        # (on a worker; event=ident-walk, --debug)
        dc.add_message("alice", make_message(a.count + 1, 7777))
        secs, c, line = poll(build, store, dc, ca.ca_crt, "keep",
                             ("--debug",))
        walk = re.findall(r"event=ident-walk .*? us=(\d+)", poll.stderr)
        print("  %-11s %9.1f s  RETR %6d msgs  TOP %6d msgs  candidate "
              "walk: %s us" % ("1 new", secs, c[2], c[0],
                                          ",".join(walk) or "none"))
    finally:
        dc.stop()


if __name__ == "__main__":
    main()
