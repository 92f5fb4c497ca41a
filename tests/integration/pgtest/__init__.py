"""Shared pieces of the integration tests: free loopback ports, processes
that are always stopped by PID, temporary directories and a test CA.

Every server a test starts listens on 127.0.0.1 on a port chosen here, and
is stopped by the test (or by the atexit hook) — nothing is left running.
"""
import atexit
import os
import re
import shutil
import random
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.environ.get("POPGATE_BUILD", os.path.join(ROOT, "build", "test"))

_procs = []


def free_port():
    """A TCP port free on 127.0.0.1 right now, for a server whose port
    must be known before it starts (Dovecot's, nginx's, peers named in a
    configuration); servers that can report theirs bind port 0 instead.
    Taken below the kernel's ephemeral range, so no outgoing connection
    of a test running beside this one can take it between this probe and
    the server's bind; at random, so two tests rarely probe the same."""
    lo, hi = 20000, 32767
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randint(lo, hi)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nothing listens on %s:%d after %.1fs" % (host, port, timeout))


class Proc:
    """A child process that is stopped by PID when the test ends."""

    def __init__(self, argv, log_path=None, env=None, cwd=None, stdin=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        full_env = dict(os.environ)
        full_env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if env:
            full_env.update(env)
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=full_env, cwd=cwd, stdin=stdin,
                                  start_new_session=True)
        self.pid = self.p.pid
        _procs.append(self)

    def alive(self):
        return self.p.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the process; returns its exit status."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        if self.log not in (None, subprocess.DEVNULL):
            self.log.close()
            self.log = None
        if self in _procs:
            _procs.remove(self)
        return self.p.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)

    def output(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


@atexit.register
def _stop_all():
    for p in list(_procs):
        p.stop(signal.SIGKILL)


def rss_kb(pid):
    """The resident set of a process now (VmRSS, KB)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tempdir(prefix="popgate-test-"):
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


def sanitizer_report(text):
    """The first sanitizer report line in text, or None."""
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                   "WARNING: ThreadSanitizer", "ThreadSanitizer: "):
        if marker in text:
            i = text.index(marker)
            return text[max(0, i - 200):i + 800]
    return None


_LOGFMT_HEAD = re.compile(
    r'ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z '
    r'level=(error|warn|info|debug)( |$)')
_LOGFMT_FIELD = re.compile(
    r'[a-z_][a-z0-9_.-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"\\=]*)(?: |$)')


def logfmt_problem(line):
    """Why a daemon log line is not "ts=... level=... key=value ...", with
    values quoted when they hold a space, a quote, a backslash or an '=';
    None when it is."""
    m = _LOGFMT_HEAD.match(line)
    if not m:
        return "no ts=/level= head"
    pos = m.end()
    while pos < len(line):
        f = _LOGFMT_FIELD.match(line, pos)
        if not f:
            return "not key=value at column %d: %r" % (pos, line[pos:pos + 40])
        pos = f.end()
    return None


def logfmt_problems(text, skip=()):
    """The lines of a daemon's log that are not logfmt (see
    logfmt_problem); lines starting with one of skip are not log lines."""
    bad = []
    for line in text.splitlines():
        if not line or any(line.startswith(s) for s in skip):
            continue
        why = logfmt_problem(line)
        if why:
            bad.append("%s: %s" % (why, line[:300]))
    return bad


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class TestCA:
    """A throw-away CA with server certificates for the TLS tests.

    cert(name, hosts, days) makes NAME.crt/NAME.key signed by the CA;
    days < 0 gives an expired certificate. self_signed(name) one that no CA
    vouches for.
    """

    def __init__(self, directory):
        self.dir = directory
        self.ca_crt = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.crt", "-days", "30", "-subj", "/CN=popgate test CA",
                 cwd=directory)

    def cert(self, name, hosts=("localhost", "127.0.0.1"), days=30):
        san = ",".join(("IP:" if h[0].isdigit() or ":" in h else "DNS:") + h
                       for h in hosts)
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % san)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/CN=%s" % hosts[0], cwd=self.dir)
        if days >= 0:
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                     "-CAkey", "ca.key", "-CAcreateserial", "-out", name + ".crt",
                     "-days", str(days), "-extfile", ext, cwd=self.dir)
        else:
            # expired: `openssl ca` is the 3.0 tool that takes explicit dates
            cadir = os.path.join(self.dir, "ca-db")
            os.makedirs(cadir, exist_ok=True)
            open(os.path.join(cadir, "index.txt"), "w").close()
            conf = os.path.join(self.dir, name + ".cnf")
            with open(conf, "w") as f:
                f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\n"
                        "new_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\n"
                        "policy=p\nunique_subject=no\n[p]\ncommonName=supplied\n"
                        % (cadir, cadir, cadir))
            with open(os.path.join(cadir, "serial"), "w") as f:
                f.write("1000\n")
            _openssl("ca", "-batch", "-config", conf, "-in", name + ".csr",
                     "-cert", "ca.crt", "-keyfile", "ca.key", "-out",
                     name + ".crt", "-startdate", "20200101000000Z",
                     "-enddate", "20200102000000Z", "-extfile", ext,
                     cwd=self.dir)
        return (os.path.join(self.dir, name + ".crt"),
                os.path.join(self.dir, name + ".key"))

    def self_signed(self, name, host="localhost"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".crt", "-days", "30", "-subj", "/CN=%s" % host,
                 "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % host,
                 cwd=self.dir)
        return (os.path.join(self.dir, name + ".crt"),
                os.path.join(self.dir, name + ".key"))


def debian_module(name):
    """Imports a Python module from its Debian package (deploy/
    install-deps.sh installs it) when the interpreter running the tests is
    not Debian's own python3 and so does not look there."""
    import importlib
    import sys
    try:
        return importlib.import_module(name)
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        return importlib.import_module(name)


class ByteRelay:
    """A TCP relay on a free loopback port that forwards to 127.0.0.1:port
    and counts the bytes that cross it each way (to_server, to_client):
    what a real client put on the wire, e.g. with and without COMPRESS.
    One thread per direction per connection; stop() closes everything."""

    def __init__(self, port):
        import threading
        self.target = port
        self.to_server = 0
        self.to_client = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._socks = []
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(16)
        self.port = self._ls.getsockname()[1]
        self._stopping = False
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        import threading
        while not self._stopping:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self.connections += 1
                self._socks += [c, s]
            for a, b, up in ((c, s, True), (s, c, False)):
                threading.Thread(target=self._pump, args=(a, b, up),
                                 daemon=True).start()

    def _pump(self, a, b, up):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                with self._lock:
                    if up:
                        self.to_server += len(d)
                    else:
                        self.to_client += len(d)
                b.sendall(d)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def reset(self):
        with self._lock:
            self.to_server = self.to_client = 0

    def stop(self):
        self._stopping = True
        self._ls.close()
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
