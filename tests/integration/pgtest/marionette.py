"""A minimal client of Gecko's Marionette protocol (the one Firefox and
Thunderbird speak when started with --marionette): length-prefixed JSON
over a loopback TCP socket, [0, id, command, params] -> [1, id, error,
result]. Enough to run chrome-privileged JavaScript in a headless
Thunderbird that a test drives."""
import json
import socket


class MarionetteError(Exception):
    pass


class Marionette:
    def __init__(self, port, timeout=120):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        self.id = 0
        self.hello = self._read()

    def _read(self):
        while b":" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise MarionetteError("connection closed")
            self.buf += d
        n, rest = self.buf.split(b":", 1)
        n = int(n)
        while len(rest) < n:
            d = self.sock.recv(65536)
            if not d:
                raise MarionetteError("connection closed")
            rest += d
        self.buf = rest[n:]
        return json.loads(rest[:n])

    def cmd(self, name, params=None):
        self.id += 1
        data = json.dumps([0, self.id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(data), data))
        while True:
            r = self._read()
            if r[0] == 1 and r[1] == self.id:
                if r[2]:
                    raise MarionetteError("%s: %s" % (name, r[2]))
                return r[3]

    def chrome_session(self):
        self.cmd("WebDriver:NewSession", {"capabilities": {}})
        self.cmd("Marionette:SetContext", {"value": "chrome"})

    def run(self, script, *args):
        """Runs script (chrome JS; `arguments` holds args) and returns
        its return value."""
        return self.cmd("WebDriver:ExecuteScript",
                        {"script": script, "args": list(args)})["value"]

    def run_async(self, script, *args, timeout_ms=60000):
        """The same for a script that ends by calling the last argument
        (resolve) with its result."""
        self.cmd("WebDriver:SetTimeouts", {"script": timeout_ms})
        return self.cmd("WebDriver:ExecuteAsyncScript",
                        {"script": script, "args": list(args)})["value"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
