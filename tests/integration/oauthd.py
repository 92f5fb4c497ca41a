#!/usr/bin/env python3
"""A small OAuth 2.0 authorization server for the tests, over HTTPS on
loopback: the device authorization grant (RFC 8628), refresh tokens
(RFC 6749 6), and token introspection (RFC 7662) for Dovecot's oauth2
passdb. It is the provider popgate signs accounts in with, and the one
Dovecot asks whether a token is good: so the tests check real tokens end
to end, not a stub's word.

    oauthd.py --port P --cert C --key K --state FILE [--client-id ID]
              [--access-ttl SECS] [--rotate] [--token-len N]

State (grants, tokens, counters) lives in FILE, written after every
change, so the server can be killed ("provider down") and started again
on the same port with its grants intact.

Endpoints (form bodies in, JSON out):
  POST /device      client_id, scope -> device_code, user_code, ...
  POST /token       grant_type device_code | refresh_token
  POST /introspect  token -> {"active": ..., "username", "scope", "exp"}
Test controls:
  POST /approve     user_code, username [, scope (grant less)] [, deny=1]
  POST /revoke      username: every grant and token of it
  GET  /stats       counters and the log of token requests
"""
import argparse
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {}
ARGS = None


def save():
    tmp = ARGS.state + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATE, f)
    os.replace(tmp, ARGS.state)


def load():
    global STATE
    if os.path.exists(ARGS.state):
        with open(ARGS.state) as f:
            STATE = json.load(f)
    STATE.setdefault("devices", {})      # device_code -> record
    STATE.setdefault("grants", {})       # refresh_token -> grant
    STATE.setdefault("access", {})       # access_token -> token record
    STATE.setdefault("log", [])          # token requests, in order
    STATE.setdefault("counts", {})


def count(name):
    STATE["counts"][name] = STATE["counts"].get(name, 0) + 1


def issue(grant):
    tok = "at-" + secrets.token_urlsafe(24)
    if ARGS.token_len > len(tok):
        # as long as a real provider's (Microsoft's JWTs: 1.5-2.5 KB)
        tok += "." + secrets.token_urlsafe(ARGS.token_len)[
            :ARGS.token_len - len(tok) - 1]
    STATE["access"][tok] = {"username": grant["username"],
                            "scope": grant["scope"],
                            "exp": time.time() + ARGS.access_ttl,
                            "grant": grant["id"], "revoked": False}
    return tok


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("oauthd: " + (fmt % args) + "\n")

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def form(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > 65536:
            return None
        raw = self.rfile.read(n).decode("ascii", "replace")
        return {k: v[0] for k, v in urllib.parse.parse_qs(
            raw, keep_blank_values=True).items()}

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self.reply(200, {"counts": STATE["counts"],
                                 "log": STATE["log"]})
            return
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        f = self.form()
        if f is None:
            self.reply(413, {"error": "invalid_request"})
            return
        with LOCK:
            route = {"/device": self.device, "/token": self.token,
                     "/introspect": self.introspect,
                     "/approve": self.approve,
                     "/revoke": self.revoke}.get(self.path)
            if route is None:
                self.reply(404, {"error": "not_found"})
                return
            route(f)
            save()

    def device(self, f):
        count("device")
        if f.get("client_id") == "bloat":
            # a hostile or broken provider: an answer over any sane size
            self.reply(200, {"device_code": "x" * 100000, "user_code": "1",
                             "verification_uri": "https://x"})
            return
        if f.get("client_id") != ARGS.client_id:
            self.reply(401, {"error": "invalid_client"})
            return
        code = "dc-" + secrets.token_urlsafe(16)
        user_code = "%04d-%04d" % (secrets.randbelow(10000),
                                   secrets.randbelow(10000))
        STATE["devices"][code] = {
            "user_code": user_code, "scope": f.get("scope", ""),
            "expires": time.time() + ARGS.device_ttl,
            "approved": None, "denied": False, "used": False,
            "last_poll": 0.0}
        self.reply(200, {
            "device_code": code, "user_code": user_code,
            "verification_uri": "https://127.0.0.1:%d/activate" % ARGS.port,
            "verification_uri_complete":
                "https://127.0.0.1:%d/activate?code=%s" % (ARGS.port,
                                                           user_code),
            "expires_in": ARGS.device_ttl, "interval": 1})

    def token(self, f):
        gt = f.get("grant_type")
        STATE["log"].append({"t": time.time(), "grant_type": gt})
        if f.get("client_id") != ARGS.client_id:
            count("bad_client")
            self.reply(401, {"error": "invalid_client"})
            return
        if gt == "urn:ietf:params:oauth:grant-type:device_code":
            count("token_device")
            d = STATE["devices"].get(f.get("device_code", ""))
            if d is None or d["used"]:
                self.reply(400, {"error": "invalid_grant"})
                return
            now = time.time()
            if now > d["expires"]:
                self.reply(400, {"error": "expired_token"})
                return
            if d["denied"]:
                self.reply(400, {"error": "access_denied"})
                return
            too_fast = now - d["last_poll"] < 0.5
            d["last_poll"] = now
            if d["approved"] is None:
                if too_fast:
                    count("slow_down")
                    self.reply(400, {"error": "slow_down"})
                else:
                    self.reply(400, {"error": "authorization_pending"})
                return
            d["used"] = True
            rt = "rt-" + secrets.token_urlsafe(24)
            grant = {"id": rt, "username": d["approved"]["username"],
                     "scope": d["approved"]["scope"], "revoked": False}
            STATE["grants"][rt] = grant
            at = issue(grant)
            self.reply(200, {"access_token": at, "token_type": "Bearer",
                             "expires_in": ARGS.access_ttl,
                             "refresh_token": rt, "scope": grant["scope"]})
        elif gt == "refresh_token":
            count("token_refresh")
            grant = STATE["grants"].get(f.get("refresh_token", ""))
            if grant is None or grant["revoked"]:
                count("refresh_refused")
                self.reply(400, {"error": "invalid_grant",
                                 "error_description":
                                     "the grant was revoked"})
                return
            at = issue(grant)
            out = {"access_token": at, "token_type": "Bearer",
                   "expires_in": ARGS.access_ttl, "scope": grant["scope"]}
            if ARGS.rotate:
                # a new refresh token; the old one stops working
                new = "rt-" + secrets.token_urlsafe(24)
                grant["revoked"] = True
                g2 = dict(grant, id=new, revoked=False)
                STATE["grants"][new] = g2
                out["refresh_token"] = new
            self.reply(200, out)
        else:
            self.reply(400, {"error": "unsupported_grant_type"})

    def introspect(self, f):
        tok = STATE["access"].get(f.get("token", ""))
        ok = (tok is not None and not tok["revoked"]
              and time.time() < tok["exp"])
        count("introspect_active" if ok else "introspect_inactive")
        if not ok:
            self.reply(200, {"active": False})
            return
        self.reply(200, {"active": True, "username": tok["username"],
                         "scope": tok["scope"], "exp": int(tok["exp"])})

    def approve(self, f):
        for d in STATE["devices"].values():
            if d["user_code"] == f.get("user_code"):
                if f.get("deny"):
                    d["denied"] = True
                else:
                    d["approved"] = {"username": f["username"],
                                     "scope": f.get("scope", d["scope"])}
                self.reply(200, {"ok": True})
                return
        self.reply(404, {"error": "no such user_code"})

    def revoke(self, f):
        n = 0
        for g in STATE["grants"].values():
            if g["username"] == f.get("username"):
                g["revoked"] = True
                n += 1
        for t in STATE["access"].values():
            if t["username"] == f.get("username"):
                t["revoked"] = True
        self.reply(200, {"ok": True, "grants": n})


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--client-id", default="popgate-test")
    p.add_argument("--access-ttl", type=int, default=3600)
    p.add_argument("--device-ttl", type=int, default=120)
    p.add_argument("--rotate", action="store_true")
    p.add_argument("--token-len", type=int, default=0)
    ARGS = p.parse_args()
    load()
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write("oauthd: listening on 127.0.0.1:%d\n" % ARGS.port)
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
