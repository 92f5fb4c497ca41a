"""A scripted, misbehaving POP3 server for the fault tests (never for the
normal paths: those run against Dovecot).

    srv = FakePop3(messages=[b"Subject: a\\r\\n\\r\\nbody\\r\\n"], tls="stls",
                   cert=(crt, key), **faults).start()
    ... srv.port; srv.transcript (command lines received, in order);
    srv.deleted (message numbers deleted by a DELE + QUIT)
    srv.stop()

Messages are given in wire form (CRLF) and dot-stuffed here. Faults (all
optional keyword arguments):
    capa            list of CAPA lines (default: TOP UIDL USER SASL PLAIN
                    STLS when tls="stls")
    uidls           list of UIDL strings (bytes) or None for "-ERR"
    list_sizes      sizes LIST reports instead of the real ones
    greeting        the greeting line (bytes, without CRLF)
    drip_greeting   send the greeting one byte per second
    drip_retr       send RETR data one byte per 0.2 s
    drop_mid_retr   set of message numbers: send half, then close
    no_final_dot    set of message numbers: send the data, no ".", close
    retr_err        set of message numbers answered -ERR
    top_err         answer every TOP with -ERR (though CAPA lists it)
    top_data        a function (message number, header block) -> the bytes
                    TOP n 0 answers instead (a TOP that differs from RETR)
    dele_err        set of message numbers answered -ERR to DELE
    quit_err        answer QUIT with -ERR (deletions not applied)
    stls_refuse     answer STLS with -ERR
    stls_inject     bytes sent in the same packet right after "+OK" to STLS
    pass_err        the -ERR line for PASS/AUTH (bytes) or None to accept
    password        the expected password (default "secret")
    silent          accept the connection and never say anything
    slow_list       seconds to wait before answering LIST
    capa_after      extra CAPA lines once logged in
    dele_hold       a threading.Event: the first DELE is answered only once
                    it is set (srv.dele_seen is set when that DELE arrives)
    quit_hold       a threading.Event: the first QUIT is answered only once
                    it is set (srv.quit_seen is set when that QUIT arrives)
    endless_retr    set of message numbers: after "+OK", data that never
                    ends (short lines, no final "."), as fast as it goes
    endless_line    set of message numbers: after "+OK", one line that
                    never ends (no CRLF at all)
    endless_uidl    answer UIDL with a listing that never ends
    (the endless answers stop by themselves after 300 s or at stop())
srv.logins holds the time.monotonic() of each successful login.
srv.max_active is the largest number of simultaneous sessions seen.
"""
import base64
import hashlib
import socket
import ssl
import threading
import time

from . import free_port


def stuff(data):
    out = []
    for line in data.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


class FakePop3:
    def __init__(self, messages=(), tls=None, cert=None, **faults):
        self.messages = list(messages)
        self.tls = tls
        self.cert = cert
        self.f = faults
        self.port = free_port()
        self.transcript = []
        self.deleted = set()
        self.dele_seen = threading.Event()
        self.quit_seen = threading.Event()
        self._tl = threading.local()
        self.connections = 0
        self.logins = []
        self.active = 0
        self.max_active = 0
        self._stop = False
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.ctx = None
        if cert is not None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert[0], cert[1])

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()

    def commands(self):
        with self._lock:
            return [c.split(b" ")[0].upper() for c in self.transcript]

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    # --- one session ---------------------------------------------------

    def _leave(self):
        # a session stops counting as active before its QUIT is answered,
        # so a client that opens its next connection on "+OK bye" never
        # sees it counted twice
        if getattr(self._tl, "counted", False):
            self._tl.counted = False
            with self._lock:
                self.active -= 1

    def _session(self, conn):
        conn.settimeout(30)
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self._tl.counted = True
        try:
            if self.f.get("silent"):
                while not self._stop and conn.recv(4096):
                    pass
                return
            if self.tls == "pop3s":
                conn = self.ctx.wrap_socket(conn, server_side=True)
            self._run(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            self._leave()
            try:
                conn.close()
            except OSError:
                pass

    def _send(self, conn, data):
        conn.sendall(data)

    def _readline(self, conn, buf):
        while b"\n" not in buf[0]:
            d = conn.recv(4096)
            if not d:
                return None
            buf[0] += d
        line, buf[0] = buf[0].split(b"\n", 1)
        return line.rstrip(b"\r")

    def _run(self, conn):
        f = self.f
        greeting = f.get("greeting", b"+OK fake POP3 ready <1234.5678@fake.example>")
        if f.get("drip_greeting"):
            for b in greeting + b"\r\n":
                if self._stop:
                    return
                self._send(conn, bytes([b]))
                time.sleep(1.0)
            return
        self._send(conn, greeting + b"\r\n")
        buf = [b""]
        authed = False
        user = None
        dele = set()
        while not self._stop:
            line = self._readline(conn, buf)
            if line is None:
                return
            with self._lock:
                self.transcript.append(line)
            parts = line.split(b" ")
            cmd = parts[0].upper()
            arg = parts[1] if len(parts) > 1 else b""
            if cmd == b"CAPA":
                capa = f.get("capa")
                if capa is None:
                    capa = [b"TOP", b"UIDL", b"USER", b"SASL PLAIN"]
                    if self.tls == "stls":
                        capa.append(b"STLS")
                if authed:
                    capa = capa + f.get("capa_after", [])
                self._send(conn, b"+OK\r\n" + b"".join(c + b"\r\n" for c in capa) + b".\r\n")
            elif cmd == b"STLS":
                if f.get("stls_refuse") or self.tls != "stls":
                    self._send(conn, b"-ERR not now\r\n")
                    continue
                self._send(conn, b"+OK begin TLS\r\n" + f.get("stls_inject", b""))
                conn = self.ctx.wrap_socket(conn, server_side=True)
                buf = [b""]
            elif cmd == b"USER":
                user = arg
                self._send(conn, b"+OK\r\n")
            elif cmd in (b"PASS", b"AUTH", b"APOP"):
                ok = self._check_auth(cmd, parts, conn, buf)
                err = f.get("pass_err")
                if ok and err is None:
                    authed = True
                    self.logins.append(time.monotonic())
                    self._send(conn, b"+OK logged in\r\n")
                else:
                    self._send(conn, (err or b"-ERR [AUTH] bad credentials") + b"\r\n")
            elif not authed:
                self._send(conn, b"-ERR log in first\r\n")
            elif cmd == b"STAT":
                self._send(conn, b"+OK %d %d\r\n" % (len(self.messages), sum(map(len, self.messages))))
            elif cmd == b"LIST":
                time.sleep(f.get("slow_list", 0))
                sizes = f.get("list_sizes") or [len(m) for m in self.messages]
                self._send(conn, b"+OK\r\n" + b"".join(b"%d %d\r\n" % (i + 1, s) for i, s in enumerate(sizes)) + b".\r\n")
            elif cmd == b"UIDL" and f.get("endless_uidl"):
                self._endless(conn, b"+OK\r\n", lambda i: b"%d u%d\r\n" % (i + 1, i))
                return
            elif cmd == b"UIDL":
                uidls = f.get("uidls", [b"uid-%d" % (i + 1) for i in range(len(self.messages))])
                if uidls is None:
                    self._send(conn, b"-ERR no UIDL here\r\n")
                else:
                    self._send(conn, b"+OK\r\n" + b"".join(b"%d %s\r\n" % (i + 1, u) for i, u in enumerate(uidls)) + b".\r\n")
            elif cmd in (b"RETR", b"TOP"):
                n = int(arg)
                if n < 1 or n > len(self.messages) or n in f.get("retr_err", ()) \
                        or (cmd == b"TOP" and f.get("top_err")):
                    self._send(conn, b"-ERR no such message\r\n")
                    continue
                data = self.messages[n - 1]
                if cmd == b"TOP":
                    i = data.find(b"\r\n\r\n")
                    data = data[:i + 4] if i >= 0 else data
                    if f.get("top_data") is not None:
                        data = f["top_data"](n, data)
                body = stuff(data)
                if not body.endswith(b"\r\n"):
                    body += b"\r\n"
                if cmd == b"RETR" and n in f.get("endless_retr", ()):
                    self._endless(conn, b"+OK\r\n", lambda i: b"endless line %d\r\n" % i)
                    return
                if cmd == b"RETR" and n in f.get("endless_line", ()):
                    self._endless(conn, b"+OK\r\n", lambda i: b"x" * 4096)
                    return
                if cmd == b"RETR" and n in f.get("drop_mid_retr", ()):
                    self._send(conn, b"+OK\r\n" + body[:len(body) // 2])
                    time.sleep(0.2)
                    return
                if cmd == b"RETR" and n in f.get("no_final_dot", ()):
                    self._send(conn, b"+OK\r\n" + body)
                    time.sleep(0.2)
                    return
                if cmd == b"RETR" and f.get("drip_retr"):
                    self._send(conn, b"+OK\r\n")
                    for b in body:
                        if self._stop:
                            return
                        self._send(conn, bytes([b]))
                        time.sleep(0.2)
                    continue
                self._send(conn, b"+OK\r\n" + body + b".\r\n")
            elif cmd == b"DELE":
                n = int(arg)
                hold = f.get("dele_hold")
                if hold is not None and not self.dele_seen.is_set():
                    self.dele_seen.set()
                    hold.wait(60)
                if n in f.get("dele_err", ()):
                    self._send(conn, b"-ERR cannot\r\n")
                else:
                    dele.add(n)
                    self._send(conn, b"+OK\r\n")
            elif cmd == b"QUIT":
                hold = f.get("quit_hold")
                if hold is not None and not self.quit_seen.is_set():
                    self.quit_seen.set()
                    hold.wait(60)
                if f.get("quit_err"):
                    self._send(conn, b"-ERR some deleted messages not removed\r\n")
                    return
                with self._lock:
                    self.deleted |= dele
                self._leave()
                self._send(conn, b"+OK bye\r\n")
                return
            else:
                self._send(conn, b"-ERR unknown\r\n")

    def _endless(self, conn, first, piece):
        """Sends first, then piece(i) for i = 0, 1, ... until stop(), the
        peer goes, or 300 s (bounded: it stops by itself)."""
        self._send(conn, first)
        end = time.monotonic() + 300
        i = 0
        try:
            while not self._stop and time.monotonic() < end:
                conn.sendall(b"".join(piece(i + k) for k in range(64)))
                i += 64
        except OSError:
            pass

    def _check_auth(self, cmd, parts, conn, buf):
        pw = self.f.get("password", "secret").encode()
        if cmd == b"PASS":
            return len(parts) > 1 and b" ".join(parts[1:]) == pw
        if cmd == b"APOP":
            ts = b"<1234.5678@fake.example>"
            return len(parts) == 3 and parts[2] == hashlib.md5(ts + pw).hexdigest().encode()
        mech = parts[1].upper() if len(parts) > 1 else b""
        if mech == b"PLAIN" and len(parts) > 2:
            raw = base64.b64decode(parts[2])
            return raw.split(b"\0")[2:] == [pw]
        if mech == b"LOGIN":
            self._send(conn, b"+ VXNlcm5hbWU6\r\n")
            u = self._readline(conn, buf)
            self._send(conn, b"+ UGFzc3dvcmQ6\r\n")
            p = self._readline(conn, buf)
            with self._lock:
                self.transcript += [b"<login-user>", b"<login-pass>"]
            return u is not None and p is not None and base64.b64decode(p) == pw
        return False
