#!/usr/bin/env python3
"""POP3 login cost by mechanism (issue 16), side by side in one run,
against Dovecot's POP3 (STLS) on loopback:

  peer      Python's poplib: STLS, USER/PASS, STAT, QUIT in a loop (the
            cheapest client there is)
  popgate   pop3_fetch (release build): one poll of an empty mailbox per
            login (connect, STLS, CAPA, AUTH, CAPA, LIST, UIDL, QUIT) with
            PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (4096 PBKDF2 rounds, on both
            sides), and XOAUTH2 (a token Dovecot's oauth2 passdb checks
            against the test authorization server on each login)

Prints logins per second and the ratio to the peer's. Bounded: N logins
per row (default 100).
    bench_pop3_login.py --build build/release [--count 200]
"""
import argparse
import os
import poplib
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import json

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from pgtest import TestCA, tempdir  # noqa: E402
from pgtest.dovecot import DovecotPop3  # noqa: E402
from pgtest.oauth import OAuthServer  # noqa: E402


def token(o):
    """An access token from the test server's device grant."""
    d = o.post("/device", client_id=OAuthServer.CLIENT_ID,
               scope="pop3 offline_access")
    o.approve(d["user_code"], "alice")
    t = o.post("/token", client_id=OAuthServer.CLIENT_ID,
               grant_type="urn:ietf:params:oauth:grant-type:device_code",
               device_code=d["device_code"])
    return t["access_token"]


def peer(dc, ca, n):
    ctx = ssl.create_default_context(cafile=ca.ca_crt)
    t0 = time.monotonic()
    for _ in range(n):
        p = poplib.POP3("127.0.0.1", dc.port, timeout=30)
        p.stls(context=ctx)
        p.user("alice")
        p.pass_("bench-pw")
        p.stat()
        p.quit()
    return n / (time.monotonic() - t0)


def popgate(build, tmp, dc, ca, n, auth, password):
    store = os.path.join(tmp, "store-" + auth)
    spec = ",".join(["id=a", "host=127.0.0.1", "port=%d" % dc.port,
                     "tls=stls", "ca=" + ca.ca_crt, "login=alice",
                     "password=" + password, "auth=" + auth])
    argv = [os.path.join(build, "tests", "tools", "pop3_fetch"), "--store",
            store, "--user", "bench", "--polls", str(n), "--interval-ms",
            "1", "--account", spec]
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError("pop3_fetch %s: %s %s" % (auth, r.stdout[-500:],
                                                      r.stderr[-1500:]))
    return n / dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    tmp = tempdir()
    ca = TestCA(tmp)
    o = OAuthServer(os.path.join(tmp, "oauthd"), ca, token_len=2000)
    o.start()
    dc = DovecotPop3(os.path.join(tmp, "dovecot"), ca,
                     mechanisms="plain scram-sha-1 scram-sha-256 xoauth2",
                     oauth2=o.dovecot_conf())
    dc.add_user("alice", "bench-pw")
    dc.start()
    try:
        tok = token(o)
        base = peer(dc, ca, args.count)
        rows = [("peer: poplib USER/PASS", base)]
        for auth, pw in (("plain", "bench-pw"),
                         ("scram-sha-1", "bench-pw"),
                         ("scram-sha-256", "bench-pw"),
                         ("xoauth2", tok)):
            rows.append(("popgate " + auth,
                         popgate(args.build, tmp, dc, ca, args.count, auth,
                                 pw)))
        print("POP3 logins (STLS, Dovecot %s, %d each)" % (
            subprocess.run(["dovecot", "--version"], capture_output=True,
                           text=True).stdout.split()[0], args.count))
        print("%-30s %12s %10s" % ("client / mechanism", "logins/s",
                                   "vs peer"))
        for name, rate in rows:
            print("%-30s %12.1f %9.2fx" % (name, rate, rate / base))
    finally:
        dc.stop()
        o.stop()


if __name__ == "__main__":
    main()
