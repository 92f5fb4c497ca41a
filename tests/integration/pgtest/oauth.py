"""The test OAuth 2.0 server (tests/integration/oauthd.py) as a process the
tests start, kill ("provider down") and start again on the same port, with
helpers for its test controls (approve a device code, revoke a user's
grants, read its counters).

    o = OAuthServer(dir, ca, access_ttl=3600); o.start()
    o.approve(user_code, "alice")       # the user says yes in a browser
    o.revoke("alice")                   # the admin revokes the grant
    o.stats()                           # {"counts": {...}, "log": [...]}
    o.stop()
"""
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

from . import Proc, free_port, wait_port

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class OAuthServer:
    CLIENT_ID = "popgate-test"

    def __init__(self, directory, ca, access_ttl=3600, rotate=False,
                 token_len=0):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = ca
        self.port = free_port()
        self.cert, self.key = ca.cert("oauthd-%d" % self.port,
                                      ("127.0.0.1", "localhost"))
        self.state = os.path.join(directory, "oauthd.json")
        self.access_ttl = access_ttl
        self.rotate = rotate
        self.token_len = token_len
        self.proc = None
        self.ctx = ssl.create_default_context(cafile=ca.ca_crt)

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        argv = [sys.executable, os.path.join(HERE, "oauthd.py"),
                "--port", str(self.port), "--cert", self.cert,
                "--key", self.key, "--state", self.state,
                "--client-id", self.CLIENT_ID,
                "--access-ttl", str(self.access_ttl)]
        if self.rotate:
            argv.append("--rotate")
        if self.token_len:
            argv += ["--token-len", str(self.token_len)]
        self.proc = Proc(argv, log_path=os.path.join(self.dir, "oauthd.log"))
        wait_port(self.port, 15)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def post(self, path, **form):
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.url(path), data=data)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=20) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def approve(self, user_code, username, scope=None, deny=False):
        form = {"user_code": user_code, "username": username}
        if scope is not None:
            form["scope"] = scope
        if deny:
            form["deny"] = "1"
        return self.post("/approve", **form)

    def revoke(self, username):
        return self.post("/revoke", username=username)

    def stats(self):
        with urllib.request.urlopen(self.url("/stats"), context=self.ctx,
                                    timeout=20) as r:
            return json.loads(r.read())

    def count(self, name):
        return self.stats()["counts"].get(name, 0)

    def dovecot_conf(self):
        """dovecot-oauth2.conf.ext settings validating tokens here."""
        return {"introspection_mode": "post",
                "introspection_url": self.url("/introspect"),
                "username_attribute": "username",
                "active_attribute": "active",
                "active_value": "true",
                "tls_ca_cert_file": self.ca.ca_crt}
