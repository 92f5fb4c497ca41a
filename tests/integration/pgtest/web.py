"""A client of popgated's web page API ([web], gateway/web.h) over real
TLS with http.client: keeps the session cookie and the CSRF token as a
browser's page would, and shows every header, so that tests can check
what a browser would be told (cookie flags, CSP, ...).

    c = WebClient(port, ca_file); c.login("alice", "imap-pw")
    status, headers, body = c.call("GET", "/api/accounts")
"""
import http.client
import json
import os
import socket
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


def spki_hash(cert_file):
    """The base64 SHA-256 of a certificate's public key, as Chromium's
    --ignore-certificate-errors-spki-list takes it: the browser trusts
    that one test certificate, and the page stays a secure context."""
    import base64
    import hashlib
    import subprocess
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in",
                          cert_file], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
                         input=pub, capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def chromium(directory, cert_file):
    """Headless Chromium driven through chromedriver (Debian's chromium,
    chromium-driver and python3-selenium), with its profile in
    directory, trusting cert_file's key only. Caller quit()s it."""
    from . import debian_module
    webdriver = debian_module("selenium.webdriver")
    service_mod = debian_module("selenium.webdriver.chrome.service")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--no-first-run", "--window-size=1100,1400",
              "--user-data-dir=" + os.path.join(directory, "profile"),
              "--ignore-certificate-errors-spki-list=" + spki_hash(
                  cert_file)):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = service_mod.Service(
        executable_path="/usr/bin/chromedriver",
        log_path=os.path.join(directory, "chromedriver.log"))
    return webdriver.Chrome(service=service, options=opts)


class GatedRelay:
    """A TCP relay on a free loopback port to 127.0.0.1:port that lets
    through to the client only the bytes allowed so far (allow(n),
    open()): a slow link whose pace the test sets, so that an import
    from a real server stops mid-way for as long as the test looks at
    it. Towards the server everything passes."""

    def __init__(self, port, allowance=0):
        import threading
        self.target = port
        self.allowance = allowance      # None: open
        self._cv = threading.Condition()
        self._socks = []
        self._stopping = False
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(16)
        self.port = self._ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def allow(self, n):
        with self._cv:
            if self.allowance is not None:
                self.allowance += n
            self._cv.notify_all()

    def open(self):
        with self._cv:
            self.allowance = None
            self._cv.notify_all()

    def _accept(self):
        import threading
        while not self._stopping:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            with self._cv:
                self._socks += [c, s]
            threading.Thread(target=self._pump, args=(c, s, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, True),
                             daemon=True).start()

    def _take(self, want):
        with self._cv:
            while (self.allowance is not None and self.allowance <= 0 and
                   not self._stopping):
                self._cv.wait(1)
            if self._stopping:
                return 0
            if self.allowance is None:
                return want
            n = min(want, self.allowance)
            self.allowance -= n
            return n

    def _pump(self, a, b, gated):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                while d:
                    n = self._take(len(d)) if gated else len(d)
                    if n == 0:
                        return
                    b.sendall(d[:n])
                    d = d[n:]
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self):
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            socks = list(self._socks)
        self._ls.close()
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
