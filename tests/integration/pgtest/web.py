"""A client of popgated's web page API ([web], gateway/web.h) over real
TLS with http.client: keeps the session cookie and the CSRF token as a
browser's page would, and shows every header, so that tests can check
what a browser would be told (cookie flags, CSP, ...).

    c = WebClient(port, ca_file); c.login("alice", "imap-pw")
    status, headers, body = c.call("GET", "/api/accounts")
"""
import http.client
import json
import ssl

COOKIE = "__Host-popgate"


def web_section(port):
    return "[web]\nenabled = yes\nlisten = 127.0.0.1:%d\n" % port


class WebClient:
    def __init__(self, port, ca_file, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.cookie = None
        self.csrf = None
        self.set_cookie = None     # the last Set-Cookie header seen

    def origin(self):
        return "https://%s:%d" % (self.host, self.port)

    def call(self, method, path, body=None, headers=None, raw=None,
             csrf=True, cookie=True):
        """Returns (status, headers dict (lower-case names), parsed JSON
        or the text)."""
        conn = http.client.HTTPSConnection(self.host, self.port,
                                           context=self.ctx, timeout=120)
        h = {}
        if body is not None:
            raw = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if method == "POST" and csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        if cookie and self.cookie:
            h["Cookie"] = "%s=%s" % (COOKIE, self.cookie)
        h.update(headers or {})
        try:
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            sc = r.getheader("Set-Cookie")
        finally:
            conn.close()
        if sc is not None:
            self.set_cookie = sc
            value = sc.split(";", 1)[0].split("=", 1)[1]
            self.cookie = value or None
        ctype = hdrs.get("content-type", "")
        if ctype.startswith("application/json"):
            return r.status, hdrs, json.loads(data)
        return r.status, hdrs, data.decode("utf-8", "replace")

    def login(self, user, password, expect=200):
        status, _, body = self.call("POST", "/api/login",
                                    {"user": user, "password": password})
        if status != expect:
            raise AssertionError("login %s: %s %s" % (user, status, body))
        if status == 200:
            self.csrf = body["csrf"]
        return body

    def accounts(self):
        status, _, body = self.call("GET", "/api/accounts")
        if status != 200:
            raise AssertionError("accounts: %s %s" % (status, body))
        return {a["account"]: a for a in body["accounts"]}
