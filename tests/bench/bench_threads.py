#!/usr/bin/env python3
"""No user stalls another (issue 11): popgated and Dovecot's IMAP side by
side in one run, under the same loads.

1. Noisy neighbour. A light client (user "light", 100 messages, its own
   process so that the load generators do not delay it) sends NOOP, then
   FETCH 1:10 (FLAGS), every 100 ms, and records each command's latency,
   counted from when it was due (a command due while an earlier one is
   still waiting counts the wait: no coordinated omission). The phases,
   each bounded in count and time and interleaved popgate / Dovecot:
     baseline   no load
     logins     20 failed LOGINs a second (a known user, wrong password;
                one connection each, from 127.0.0.2), open loop
     search     five clients (127.0.0.3) loop SEARCH TEXT over a mailbox
                of 10,000 messages and one 30 MB message (a term that is
                nowhere, so every message is searched)
     import     a 10,000-message POP3 import from a real Dovecot POP3
                server: popgated's poller (durable), and for Dovecot its
                own importer `doveadm import` from `pop3c:` (Dovecot's
                POP3 migration storage; cut off at the phase's time)
     append     50 clients (127.0.0.4) each APPEND 5 MB messages
   Goal of the issue: p99 <= 50 ms and max <= 200 ms in every phase, and
   no worse than Dovecot.
2. Logins per second: 50 parallel clients, each from an address of its
   own (127.0.5.1, 127.0.5.2, ...: fifty devices, so that popgated's
   per-address pre-auth limit, 10 by default, is not what is measured),
   each in a loop
   connect + TLS (implicit, port 993 style) + LOGIN + LOGOUT.
3. POP3 import: the upstream's pipelined RETR-and-discard limit
   (bench_pop3's client), then popgated's durable import of the same
   10,000 messages into a new user, plain and POP3S, as a fraction of
   that limit, with popgated's CPU per thread kind and in cores.

What each server verifies at LOGIN: popgated argon2id m=19456 KiB, t=2,
p=1 (lib/password.h: the users are made with the daemon's own
parameters); Dovecot the same argon2id string (made here with libargon2
with the same parameters, scheme {ARGON2ID}, checked by Dovecot through
libsodium), its auth cache off (the default), passwd-file passdb.

Server CPU: popgated's threads from /proc (loop, workers, writer);
Dovecot's process tree from its master (exited children included), plus
doveadm's own in the import phase.

Never fails on timing; prints figures. Bounded: each phase at most
--secs seconds of load (default 12, or $POPGATE_BENCH_SECS), each import
at most 600 s; about six to ten minutes in all on 2 cores. Sizes scale
with the options.

    bench_threads.py --build build/release [--secs S] [--messages N]
        [--big-mb MB] [--import-count N] [--appenders N] [--append-mb MB]
        [--append-each N] [--login-clients N]
"""
import argparse
import concurrent.futures
import ctypes
import multiprocessing
import os
import random
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import pgtest  # noqa: E402
from pgtest.dovecot import DovecotPop3, make_message  # noqa: E402
from bench_imap import PASSWORD, Client, Dovecot, make_maildir  # noqa: E402
from bench_pop3 import limit_client, popgated_import, sizes  # noqa: E402
import benchlib  # noqa: E402

INTERVAL = 0.1          # the light client's period
LIGHT_MESSAGES = 100
NEEDLE = "zanzibar-quokka-nowhere"
USERS = ("light", "searcher", "appender", "importer")
# Dovecot as its documentation tunes it for many logins: login processes
# that serve many connections, one per core ready ("high-performance
# mode"), and mail processes reused; auth sized for them
DOVECOT_TUNING = """
service imap-login {
  service_count = 0
  process_min_avail = %d
}
service imap {
  service_count = 0
}
service auth {
  client_limit = 10000
}
""" % (os.cpu_count() or 2)
LOAD_NICE = 10          # the load clients' priority (Procs)
SRC_LOGINS, SRC_SEARCH, SRC_APPEND = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SRC_TLS = "127.0.5.%d"  # the login clients', one address each (1-based)
# argon2id parameters of lib/password.h (PASSWORD_ITERATIONS,
# PASSWORD_MEMORY_KIB, PASSWORD_PARALLELISM), given to Dovecot too
ARGON2_T, ARGON2_M, ARGON2_P = 2, 19456, 1


def argon2id_encoded(password):
    """An argon2id PHC string with popgate's parameters, by libargon2 (the
    library popgate links)."""
    lib = ctypes.CDLL("libargon2.so.1")
    f = lib.argon2id_hash_encoded
    f.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                  ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                  ctypes.c_size_t, ctypes.c_size_t, ctypes.c_char_p,
                  ctypes.c_size_t]
    salt = os.urandom(16)
    out = ctypes.create_string_buffer(128)
    pw = password.encode()
    rc = f(ARGON2_T, ARGON2_M, ARGON2_P, pw, len(pw), salt, len(salt), 32,
           out, len(out))
    if rc != 0:
        raise RuntimeError("argon2id_hash_encoded: %d" % rc)
    return out.value.decode()


def ssha512(password):
    """Dovecot's {SSHA512}: SHA-512 of password and an 8-byte salt."""
    import base64
    import hashlib
    salt = os.urandom(8)
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(
        password.encode() + salt).digest() + salt).decode()


def verify_cost():
    """CPU ms of one argon2id verification with popgate's parameters, by
    libargon2 (popgated) and by libsodium (Dovecot's {ARGON2ID}), on this
    machine now: the login figures depend on it."""
    enc = argon2id_encoded(PASSWORD).encode()
    pw = PASSWORD.encode()
    out = {}
    for name, lib, fn in (("libargon2", "libargon2.so.1", "argon2id_verify"),
                          ("libsodium", "libsodium.so.23",
                           "crypto_pwhash_str_verify")):
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        if name == "libsodium" and dll.sodium_init() < 0:
            continue
        f = getattr(dll, fn)
        f.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                      ctypes.c_ulonglong if name == "libsodium"
                      else ctypes.c_size_t]
        t = time.process_time()
        for _ in range(5):
            if f(enc, pw, len(pw)) != 0:
                raise RuntimeError("%s does not verify %s" % (name, enc))
        out[name] = (time.process_time() - t) / 5 * 1000
    return out


def base64_lines(nbytes, rnd):
    """nbytes of base64 text (76-column lines, CRLF) of random data."""
    import base64
    raw = rnd.getrandbits(8 * (nbytes * 3 // 4 + 3)).to_bytes(
        nbytes * 3 // 4 + 3, "little")
    b = base64.b64encode(raw)[:nbytes]
    return b"\r\n".join(b[i:i + 76] for i in range(0, len(b), 76)) + b"\r\n"


def big_message(size, subject, rnd):
    """A message of about size bytes: a text part and a base64
    attachment (what a 30 MB or a 5 MB mail usually is)."""
    head = (b"From: Big Sender <big@example.org>\r\nTo: someone@example.com"
            b"\r\nSubject: %s\r\nDate: Tue, 3 Nov 2026 09:00:00 +0100\r\n"
            b"Message-ID: <%s@example.org>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n"
            b"--bb\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            b"The scans are attached.\r\n--bb\r\nContent-Type: "
            b"application/pdf; name=\"scan.pdf\"\r\nContent-Transfer-"
            b"Encoding: base64\r\nContent-Disposition: attachment; "
            b"filename=\"scan.pdf\"\r\n\r\n"
            % (subject.encode(), subject.replace(" ", "-").encode()))
    tail = b"--bb--\r\n"
    return head + base64_lines(max(0, size - len(head) - len(tail)),
                               rnd) + tail


# ---- the light client (its own process) -----------------------------------

def light_client(port, max_secs, conn, ready, stop):
    # Real-time priority: on a machine whose cores the loads (and other
    # jobs) keep busy, the measuring client must not wait for a core
    # itself; its work is two short commands per 100 ms.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        pass
    try:
        c = Client(port, timeout=120)
        c.cmd("LOGIN light %s" % PASSWORD)
        c.cmd("SELECT INBOX")
    except Exception as e:       # noqa: BLE001 (reported, not hidden)
        conn.send(("error", "login: %s" % e, []))
        return
    ready.set()
    lat = []
    err = None
    t0 = time.perf_counter()
    k = 0
    try:
        while not stop.is_set() and time.perf_counter() - t0 < max_secs:
            due = t0 + k * INTERVAL
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            c.cmd("NOOP")
            t1 = time.perf_counter()
            lat.append(t1 - due)
            c.cmd("FETCH 1:10 (FLAGS)")
            lat.append(time.perf_counter() - t1)
            k += 1
        c.cmd("LOGOUT")
    except Exception as e:       # noqa: BLE001
        err = str(e)
    c.close()
    conn.send(("ok" if err is None else "error", err, lat))


class Light:
    """Starts the light client, returns once it is logged in; stop()
    ends it and returns (latencies, error)."""

    def __init__(self, port, max_secs):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe(False)
        self.ready, self.stop_ev = ctx.Event(), ctx.Event()
        self.p = ctx.Process(target=light_client,
                             args=(port, max_secs, child, self.ready,
                                   self.stop_ev), daemon=True)
        self.p.start()
        self.ready.wait(60)
        self.started = time.perf_counter()
        self.stopped = None

    def stop(self):
        if self.stopped is not None:
            return self.result
        self.stopped = time.perf_counter()
        self.stop_ev.set()
        res = ("error", "no answer from the light client", [])
        if self.conn.poll(180):
            res = self.conn.recv()
        self.p.join(10)
        if self.p.is_alive():
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.join()
        self.result = (res[2], res[1])
        return self.result


# ---- the servers ----------------------------------------------------------

class PopgateSide:
    name = "popgate"

    def __init__(self, gw):
        self.gw = gw
        self.port = gw.imap_port
        self.tls_port = gw.imaps_port

    def cpu_snapshot(self):
        return benchlib.thread_cpu(self.gw.proc.pid)

    def cpu_since(self, snap):
        return benchlib.cpu_by_kind(self.gw.proc.pid, snap,
                                    self.cpu_snapshot())


class DovecotSide:
    name = "dovecot"

    def __init__(self, dv):
        self.dv = dv
        self.port = dv.port
        self.tls_port = dv.tls_port
        self.extra_cpu = 0.0    # doveadm's, added by the import phase

    def cpu_snapshot(self):
        self.extra_cpu = 0.0
        return benchlib.tree_cpu(self.dv.pids())

    def cpu_since(self, snap):
        return {"total": benchlib.tree_cpu(self.dv.pids()) - snap +
                self.extra_cpu}


# ---- the loads --------------------------------------------------------------

def _child(setup, work, conn, go, t_end):
    # Below the servers: on one machine the load's own CPU would
    # otherwise compete with the server it loads, which a single event
    # loop feels more than fifty server processes do (clients are
    # elsewhere in real life). The servers keep the default priority.
    os.nice(LOAD_NICE)
    try:
        state = setup()
        conn.send(("ready", None))
    except Exception as e:       # noqa: BLE001 (reported, not hidden)
        conn.send(("error", str(e)[:200]))
        return
    if not go.wait(600):
        return
    try:
        res = work(state, t_end.value)
    except Exception as e:       # noqa: BLE001
        res = ([], [str(e)[:200]])
    conn.send(res)
    conn.close()


class Procs:
    """Load clients, each in a process of its own (at nice LOAD_NICE), so
    that fifty clients do not queue on one Python interpreter lock and do
    not take the cores from the servers. Each client is a pair:
    setup() (connect, log in) runs first; once every client is set up,
    go(secs) lets all run work(state, t_end) at once, t_end being
    time.perf_counter() + secs (CLOCK_MONOTONIC: the same clock in every
    process); work returns (times, errors)."""

    def __init__(self, clients):
        ctx = multiprocessing.get_context("fork")
        self.go_ev = ctx.Event()
        self.t_end = ctx.Value("d", 0.0)
        self.ps = []
        self.times, self.errors, self.left = [], [], 0
        self.results = []
        for setup, work in clients:
            r, w = ctx.Pipe(False)
            p = ctx.Process(target=_child, args=(setup, work, w, self.go_ev,
                                                 self.t_end), daemon=True)
            p.start()
            w.close()
            self.ps.append((p, r))
        for p, r in self.ps:
            if not r.poll(300):
                raise RuntimeError("a load client did not set up in time")
            what, err = r.recv()
            if what != "ready":
                raise RuntimeError("a load client failed to set up: %s"
                                   % err)

    def go(self, secs):
        self.t_end.value = time.perf_counter() + secs
        self.go_ev.set()
        return self.t_end.value

    def alive(self):
        return sum(not r.poll() for _, r in self.ps)

    def join(self, timeout):
        """Collects the results; a client still running after timeout
        seconds is killed (by its pid) and counted in self.left."""
        deadline = time.monotonic() + timeout
        for p, r in self.ps:
            if r.poll(max(0.0, deadline - time.monotonic())):
                try:
                    res = r.recv()
                    self.results.append(res)
                    self.times += res[0]
                    self.errors += res[1]
                except EOFError:
                    self.errors.append("client process died")
            else:
                self.left += 1
                os.kill(p.pid, signal.SIGKILL)
            p.join(5)
        self.ps = []
        return self


class NoLoad:
    title = "baseline (no load)"

    def __init__(self, args, side, ctx):
        self.secs = args.secs

    def prepare(self):
        pass

    def run(self, light):
        time.sleep(self.secs)
        light.stop()
        return "-"


class FailedLogins:
    title = "20 failed LOGINs/s (127.0.0.2)"

    def __init__(self, args, side, ctx):
        self.port = side.port
        self.rate = args.failed_rate
        self.secs = args.secs
        self.count = int(args.failed_rate * args.secs)
        self.procs = None

    def attempt(self):
        t = time.perf_counter()
        try:
            c = Client(self.port, source=SRC_LOGINS, timeout=60)
            line = c.status("LOGIN searcher wrong-%s" % PASSWORD)
            c.close()
            word = line.split(b" ")[1].decode() if b" " in line else "?"
        except Exception as e:    # noqa: BLE001
            # a closed connection is the server refusing the guesser
            word = "error (%s)" % (str(e)[:40] or e.__class__.__name__)
        return word, time.perf_counter() - t

    def work(self, _, t_end):
        """One client process, a connection per attempt, open loop: an
        attempt is started every 1/rate s whatever the answers do."""
        out = []
        with concurrent.futures.ThreadPoolExecutor(256) as ex:
            t0 = time.perf_counter()
            futs = []
            for i in range(self.count):
                due = t0 + i / self.rate
                d = due - time.perf_counter()
                if d > 0:
                    time.sleep(d)
                futs.append(ex.submit(self.attempt))
            for f in futs:
                out.append(f.result())
        return [t for _, t in out], [w for w, _ in out]

    def prepare(self):
        self.procs = Procs([(lambda: None, self.work)])

    def run(self, light):
        self.procs.go(self.secs)
        time.sleep(self.secs)
        light.stop()
        procs = self.procs.join(180)
        words = {}
        for w in procs.errors:
            words[w] = words.get(w, 0) + 1
        times = procs.times
        return "%s; answer p50 %.0f ms, max %.0f ms" % (
            ", ".join("%d %s" % (n, w) for w, n in sorted(words.items())),
            1000 * (benchlib.percentile(times, 50) or 0),
            1000 * max(times) if times else 0)


class Searches:
    title = "5 clients loop SEARCH TEXT (127.0.0.3)"

    def __init__(self, args, side, ctx):
        self.port = side.port
        self.secs = args.secs
        self.procs = None

    def setup(self):
        c = Client(self.port, source=SRC_SEARCH, timeout=600)
        c.cmd("LOGIN searcher %s" % PASSWORD)
        c.cmd("SELECT INBOX")
        return c

    @staticmethod
    def work(c, t_end):
        times, errors = [], []
        try:
            while time.perf_counter() < t_end:
                t = time.perf_counter()
                c.cmd('SEARCH TEXT "%s"' % NEEDLE)
                times.append(time.perf_counter() - t)
        except Exception as e:    # noqa: BLE001
            errors.append(str(e)[:200])
        c.close()
        return times, errors

    def prepare(self):
        self.procs = Procs([(self.setup, self.work)] * 5)

    def run(self, light):
        self.procs.go(self.secs)
        time.sleep(self.secs)
        light.stop()
        procs = self.procs.join(600)
        t = procs.times
        return "%d SEARCHes, each p50 %.2f s, max %.2f s%s%s" % (
            len(t), benchlib.percentile(t, 50) or 0, max(t) if t else 0,
            "; errors: %s" % procs.errors[:2] if procs.errors else "",
            "; %d never finished" % procs.left if procs.left else "")


class PopgateImport:
    title = "POP3 import of %d messages (plain, durable)"

    def __init__(self, args, side, ctx):
        self.gw = side.gw
        self.up = ctx["upstream"]
        self.count = args.import_count
        self.secs = args.secs

    def prepare(self):
        pass

    def run(self, light):
        t0 = time.perf_counter()
        self.gw.ok({"command": "account.add", "user": "importer",
                    "host": "127.0.0.1", "port": self.up.port,
                    "tls": "none", "login": "alice", "password": "secret",
                    "account": "bench", "mode": "keep", "interval": 3600})
        self.gw.ok({"command": "poll", "user": "importer",
                    "account": "bench"})
        done = benchlib.wait_until(lambda: benchlib.import_done(
            benchlib.import_status(self.gw, "importer", "bench"),
            self.count), self.secs)
        secs = time.perf_counter() - t0
        light.stop()
        st = benchlib.import_status(self.gw, "importer", "bench")
        if not done:
            # let it finish unmeasured, so that the next phase runs on a
            # quiet server (bounded)
            benchlib.wait_until(lambda: benchlib.import_done(
                benchlib.import_status(self.gw, "importer", "bench"),
                self.count), 600, 0.2)
            return "popgated: cut off at %.0f s, %d of %d by then" % (
                secs, st["import"]["done"], self.count)
        n = st["messages_fetched"]
        return "popgated: %d messages in %.1f s, %.0f msg/s" % (
            n, secs, n / secs)


class DovecotImport:
    title = PopgateImport.title

    def __init__(self, args, side, ctx):
        self.side = side
        self.dv = side.dv
        self.up = ctx["upstream"]
        self.secs = args.secs
        self.maildir = os.path.join(ctx["home"], "importer", "Maildir")

    def prepare(self):
        pass

    def count(self):
        return sum(len(os.listdir(os.path.join(self.maildir, d)))
                   for d in ("new", "cur") if
                   os.path.isdir(os.path.join(self.maildir, d)))

    def run(self, light):
        argv = ["doveadm", "-c", self.dv.conf,
                "-o", "pop3c_host=127.0.0.1",
                "-o", "pop3c_port=%d" % self.up.port,
                "-o", "pop3c_user=alice", "-o", "pop3c_password=secret",
                "-o", "pop3c_ssl=no",
                "import", "-u", "importer", "pop3c:", "", "all"]
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        cut = False
        rus = None
        while True:
            pid, status, rus = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.perf_counter() - t0 >= self.secs:
                cut = True
                os.kill(p.pid, signal.SIGTERM)
                pid, status, rus = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        p.returncode = status
        secs = time.perf_counter() - t0
        light.stop()
        self.side.extra_cpu = rus.ru_utime + rus.ru_stime
        n = self.count()
        err = p.stderr.read().decode(errors="replace").strip()
        p.stderr.close()
        return "doveadm import: %d messages in %.1f s, %.0f msg/s%s%s" % (
            n, secs, n / secs,
            " (cut off at %.0f s)" % self.secs if cut else "",
            "; " + err[-200:] if err and not cut else "")


class Appends:
    title = "%d clients APPEND %d MB messages (127.0.0.4)"

    def __init__(self, args, side, ctx):
        self.port = side.port
        self.secs = args.secs
        self.n = args.appenders
        self.each = args.append_each
        self.msg = ctx["append_msg"]
        self.procs = None

    def setup(self):
        c = Client(self.port, source=SRC_APPEND, timeout=600)
        c.cmd("LOGIN appender %s" % PASSWORD)
        return c

    def work(self, c, t_end):
        times, errors = [], []
        try:
            for _ in range(self.each):
                if time.perf_counter() >= t_end:
                    break
                t = time.perf_counter()
                c.append("INBOX", self.msg)
                times.append(time.perf_counter() - t)
        except Exception as e:    # noqa: BLE001
            errors.append(str(e)[:200])
        c.close()
        return times, errors

    def prepare(self):
        self.procs = Procs([(self.setup, self.work)] * self.n)

    def run(self, light):
        t0 = time.perf_counter()
        t_end = self.procs.go(self.secs)
        while self.procs.alive() and time.perf_counter() < t_end:
            time.sleep(0.02)
        secs = time.perf_counter() - t0
        light.stop()
        procs = self.procs.join(600)
        t = procs.times
        mb = len(self.msg) * len(t) / 1e6
        return ("%d APPENDs (%.0f MB) in %.1f s; each p50 %.2f s, max %.2f s"
                "%s%s" % (len(t), mb, secs, benchlib.percentile(t, 50) or 0,
                          max(t) if t else 0,
                          "; errors: %s" % procs.errors[:2]
                          if procs.errors else "",
                          "; %d never finished" % procs.left
                          if procs.left else ""))


PHASES = [
    ("baseline", NoLoad, NoLoad),
    ("logins", FailedLogins, FailedLogins),
    ("search", Searches, Searches),
    ("import", PopgateImport, DovecotImport),
    ("append", Appends, Appends),
]


def run_phase(side, load, args):
    load.prepare()
    time.sleep(0.5)
    snap = side.cpu_snapshot()
    light = Light(side.port, args.secs + 620)
    info = load.run(light)
    lat, err = light.stop()
    wall = light.stopped - light.started
    cpu = side.cpu_since(snap)
    return {"lat": lat, "err": err, "info": info, "wall": wall, "cpu": cpu}


# ---- logins per second ------------------------------------------------------

def login_users(n, prefix="login"):
    """One user per client: a reconnect storm is many people's devices."""
    return ["%s%02d" % (prefix, i) for i in range(n)]


def login_rate(side, clients, secs, max_logins, ca_file, prefix="login"):
    ctx = ssl.create_default_context(cafile=ca_file)
    each = max(1, max_logins // clients)

    def work(state, t_end):
        user, source = state
        times, errors = [], []
        while len(times) + len(errors) < each and \
                time.perf_counter() < t_end:
            t = time.perf_counter()
            try:
                c = Client(side.tls_port, ctx, source=source, timeout=120)
                c.cmd("LOGIN %s %s" % (user, PASSWORD))
                c.cmd("LOGOUT")
                c.close()
                times.append(time.perf_counter() - t)
            except Exception as e:    # noqa: BLE001
                errors.append(str(e)[:200])
        return times, errors
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = Procs([(lambda u=u, i=i: (u, SRC_TLS % (i + 1)), work)
                   for i, u in enumerate(login_users(clients, prefix))])
    snap = side.cpu_snapshot()
    t0 = time.perf_counter()
    procs.go(secs)
    procs.join(secs + 300)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"n": len(procs.times), "wall": wall, "times": procs.times,
            "errors": procs.errors, "left": procs.left,
            "cpu": side.cpu_since(snap), "client_cpu": client_cpu}


# ---- POP3 import against its limit ------------------------------------------

def pop3_import(gw, upstream, count, ca_file, warm):
    """The pipelined RETR-and-discard limit of the upstream (bench_pop3's
    client), then popgated's durable import of the same account into a
    new user, plain and POP3S; popgated's CPU from /proc by thread."""
    if warm:        # Dovecot's POP3 index (sizes, UIDLs), as in bench_pop3
        limit_client(upstream, "alice", "plain", ca_file)
    out = {}
    for link in ("plain", "POP3S"):
        n, nbytes, secs = limit_client(upstream, "alice", link, ca_file)
        out[("limit", link)] = {"n": n, "bytes": nbytes, "secs": secs}
    for link in ("plain", "POP3S"):
        n, nbytes, secs, cpu = popgated_import(
            gw, upstream, link, count, "pull-%s" % link.lower())
        out[("popgated", link)] = {"n": n, "bytes": nbytes, "secs": secs,
                                   "cpu": cpu}
    return out


def pop3_report(res):
    print()
    print("POP3 import from Dovecot's POP3 on loopback (keep mode); limit: "
          "a Python client pipelining 16 RETRs and discarding them")
    print("%-30s %-6s %8s %9s %8s %9s  %s" % (
        "contender", "link", "messages", "msg/s", "MB/s", "vs limit",
        "popgated CPU"))
    for who, title in (("limit", "limit (RETR+discard, pipelined)"),
                       ("popgated", "popgated (durable LMDB store)")):
        for link in ("plain", "POP3S"):
            r = res[(who, link)]
            lim = res[("limit", link)]
            rate = r["n"] / r["secs"]
            print("%-30s %-6s %8d %9.0f %8.1f %8.2fx  %s" % (
                title, link, r["n"], rate, r["bytes"] / r["secs"] / 1e6,
                rate / (lim["n"] / lim["secs"]),
                cpu_text(r["cpu"], r["secs"]) + " of %d"
                % (os.cpu_count() or 1) if "cpu" in r else "-"))


# ---- set-up and report ------------------------------------------------------

def fmt_ms(v):
    return "%8.1f" % (1000 * v) if v is not None else "%8s" % "-"


def cpu_text(cpu, wall):
    if "loop" in cpu:
        return "%.1f s = %.2f cores (loop %.1f, workers %.1f, writer %.1f)" % (
            cpu["total"], cpu["total"] / wall, cpu["loop"], cpu["workers"],
            cpu["writer"])
    return "%.1f s = %.2f cores" % (cpu["total"], cpu["total"] / wall)


def report(results, args):
    print()
    print("noisy neighbour: the light client's NOOP and FETCH 1:10 (FLAGS) "
          "every 100 ms, latency per command (ms) from when it was due")
    print("%-8s %-8s %6s %8s %8s %8s  %s" % ("phase", "server", "cmds", "p50",
                                            "p99", "max", "load"))
    for key, _, _ in PHASES:
        for srv in ("popgate", "dovecot"):
            r = results[srv].get(key)
            if r is None:
                continue
            lat = r["lat"]
            print("%-8s %-8s %6d %s %s %s  %s%s" % (
                key, srv, len(lat), fmt_ms(benchlib.percentile(lat, 50)),
                fmt_ms(benchlib.percentile(lat, 99)),
                fmt_ms(max(lat) if lat else None), r["info"],
                "; LIGHT CLIENT ERROR: %s" % r["err"] if r["err"] else ""))
            print("%-8s %-8s %6s %8s %8s %8s  server CPU %s over %.1f s" % (
                "", "", "", "", "", "", cpu_text(r["cpu"], r["wall"]),
                r["wall"]))
    print()
    print("%-8s %10s %10s  %-32s" % ("phase", "p99 dv/pg", "max dv/pg",
                                     "issue's goal for popgate"))
    for key, _, _ in PHASES:
        if key not in results["popgate"] or key not in results["dovecot"]:
            continue
        a, b = results["popgate"][key]["lat"], results["dovecot"][key]["lat"]
        if not a or not b:
            print("%-8s no samples" % key)
            continue
        pa, pb = benchlib.percentile(a, 99), benchlib.percentile(b, 99)
        ma, mb = max(a), max(b)
        goal = []
        goal.append("p99<=50ms " + ("yes" if pa <= 0.050 else "NO"))
        goal.append("max<=200ms " + ("yes" if ma <= 0.200 else "NO"))
        goal.append("<=Dovecot " + ("yes" if pa <= pb and ma <= mb
                                    else "NO"))
        print("%-8s %9.2fx %9.2fx  %s" % (key, pb / pa, mb / ma,
                                          ", ".join(goal)))
    if "verify" not in results:
        return
    print()
    print("logins/s, %d parallel clients, connect + TLS + LOGIN + LOGOUT "
          "(each from its own address, 127.0.5.x)" % args.login_clients)
    rate = {}
    for srv in ("popgate", "dovecot", "dovecot-ssha"):
        r = results.get(srv) if srv == "dovecot-ssha" else \
            results[srv].get("tls-logins")
        if r is None:
            continue
        rate[srv] = r["n"] / r["wall"]
        print("%-12s %6d logins in %5.1f s = %7.1f/s; each p50 %s ms, p99 %s "
              "ms; server CPU %s; client CPU %.1f s%s%s" % (
                  srv, r["n"], r["wall"], rate[srv],
                  fmt_ms(benchlib.percentile(r["times"], 50)).strip(),
                  fmt_ms(benchlib.percentile(r["times"], 99)).strip(),
                  cpu_text(r["cpu"], r["wall"]), r["client_cpu"],
                  "; %d errors: %s" % (len(r["errors"]), r["errors"][:2])
                  if r["errors"] else "",
                  "; %d clients stuck" % r["left"] if r["left"] else ""))
    if len(rate) == 3 and rate["dovecot"] > 0 and rate["dovecot-ssha"] > 0:
        print("popgate/dovecot logins/s: %.2fx (argon2id on both); "
              "%.2fx (Dovecot with {SSHA512})" % (
                  rate["popgate"] / rate["dovecot"],
                  rate["popgate"] / rate["dovecot-ssha"]))
    print("(LOGIN verifies argon2id m=%d KiB t=%d p=%d on both: popgated "
          "with lib/password.h's parameters on its workers, Dovecot "
          "{ARGON2ID} (libsodium) with the same parameters in its auth "
          "process, no auth cache; one verification costs %s of CPU here "
          "now; dovecot-ssha: Dovecot with {SSHA512}, one salted SHA-512)"
          % (ARGON2_M, ARGON2_T, ARGON2_P, ", ".join(
              "%.0f ms (%s)" % (v, k)
              for k, v in sorted(results["verify"].items()))))


def build_store(build, data_dir, home, users):
    """popgated's store, made by imapd_test from the same Maildir files
    Dovecot serves; the users get argon2id hashes with the daemon's
    parameters (no --fast-hash)."""
    os.makedirs(data_dir, mode=0o700)
    exe = os.path.join(build, "tests", "tools", "imapd_test")
    argv = [exe, "--dir", data_dir, "--plain",
            "127.0.0.1:%d" % pgtest.free_port(),
            "--log-level", "warn"]
    for u in users:
        argv += ["--user", "%s:%s" % (u, PASSWORD)]
    for u in ("light", "searcher"):
        argv += ["--eml", "%s:%s" % (u, os.path.join(home, u, "Maildir",
                                                    "cur"))]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE)
    line = p.stdout.readline()
    while line.startswith(b"index "):   # one per user given mail
        line = p.stdout.readline()
    if not line.startswith(b"ready"):
        p.kill()
        p.wait()
        raise RuntimeError("imapd_test did not load the store: %r" % line)
    p.send_signal(signal.SIGTERM)
    if p.wait(120) != 0:
        raise RuntimeError("imapd_test exited %d" % p.returncode)


def default_secs():
    try:
        return float(os.environ.get("POPGATE_BENCH_SECS", "12"))
    except ValueError:
        return 12.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--secs", type=float, default=default_secs())
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--big-mb", type=int, default=30)
    ap.add_argument("--import-count", type=int, default=10000)
    ap.add_argument("--failed-rate", type=float, default=20)
    ap.add_argument("--appenders", type=int, default=50)
    ap.add_argument("--append-mb", type=int, default=5)
    ap.add_argument("--append-each", type=int, default=2)
    ap.add_argument("--login-clients", type=int, default=50)
    ap.add_argument("--max-logins", type=int, default=5000)
    ap.add_argument("--phases", default=",".join(
        [k for k, _, _ in PHASES] + ["tls", "pop3"]),
        help="which to run (comma list; for investigations)")
    ap.add_argument("--servers", default="popgate,dovecot",
                    help="which to run (comma list; for investigations)")
    ap.add_argument("--log-level", default="info",
                    help="popgated's (debug shows batches and commits)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (logs)")
    args = ap.parse_args()
    args.phases = args.phases.split(",")
    args.servers = args.servers.split(",")
    build = os.path.abspath(args.build)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    t_start = time.monotonic()
    rnd = random.Random(11)
    tmp = tempfile.mkdtemp(prefix="popgate-bench-threads-")
    ca = pgtest.TestCA(tmp)
    cert, key = ca.cert("dovecot-imap")
    home = os.path.join(tmp, "home")

    make_maildir(home, "light", LIGHT_MESSAGES)
    cur = make_maildir(home, "searcher", args.messages)
    big = big_message(args.big_mb * 1000000, "big scan", rnd)
    with open(os.path.join(cur, "%010d.Mbig.bench,S=%d:2," % (
            1800000000, len(big))), "wb") as f:
        f.write(big)
    del big
    for u in ("appender", "importer"):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(home, u, "Maildir", sub))
    append_msg = big_message(args.append_mb * 1000000, "append", rnd)
    upstream = DovecotPop3(os.path.join(tmp, "upstream"), ca)
    upstream.add_user("alice", "secret")
    raws = [make_message(i, s) for i, s in
            enumerate(sizes(args.import_count, rnd))]
    upstream_mb = sum(len(r) for r in raws) / 1e6
    upstream.add_messages("alice", raws)
    del raws
    print("bench_threads: mailboxes %d + %d MB message, import %d messages "
          "(%.0f MB), %d x %d x %d MB APPENDs, phases of %.0f s; set up in "
          "%.0fs" % (args.messages, args.big_mb, args.import_count,
                     upstream_mb, args.appenders, args.append_each,
                     args.append_mb, args.secs, time.monotonic() - t_start))
    sys.stdout.flush()

    gw = benchlib.start_popgated(
        tmp, ca, build,
        limits="imap_connections = 5000\nimap_connections_per_ip = 2000\n",
        log_level=args.log_level)
    users = list(USERS) + login_users(args.login_clients)
    build_store(build, gw.data, home, users)
    dv = None
    results = {"popgate": {}, "dovecot": {}}
    pop3_res = None
    try:
        upstream.start()
        gw.start()
        print("popgated pid %d" % gw.proc.pid)
        hashes = {u: "{ARGON2ID}" + argon2id_encoded(PASSWORD)
                  for u in users}
        # the same users with a cheap salted hash: Dovecot's logins when
        # the hash costs next to nothing
        for u in login_users(args.login_clients, "ssha"):
            hashes[u] = ssha512(PASSWORD)
        users_dv = users + login_users(args.login_clients, "ssha")
        dv = Dovecot(tmp, users_dv, cert, key, passwords=hashes,
                     extra=DOVECOT_TUNING)
        sides = [side for side in (PopgateSide(gw), DovecotSide(dv))
                 if side.name in args.servers]
        for side in sides:      # Dovecot indexes at the first SELECT
            for u in ("light", "searcher"):
                c = Client(side.port, timeout=600)
                c.cmd("LOGIN %s %s" % (u, PASSWORD))
                c.cmd("SELECT INBOX")
                c.cmd("FETCH 1:* (FLAGS)")
                c.cmd("LOGOUT")
                c.close()
        ctx = {"upstream": upstream, "home": home, "append_msg": append_msg}
        for key, pg_load, dv_load in PHASES:
            if key not in args.phases:
                continue
            for side in sides:
                cls = pg_load if side.name == "popgate" else dv_load
                r = run_phase(side, cls(args, side, ctx), args)
                results[side.name][key] = r
                print("  %-8s %-8s %5d cmds, p99 %s ms, max %s ms  %s" % (
                    key, side.name, len(r["lat"]),
                    fmt_ms(benchlib.percentile(r["lat"], 99)).strip(),
                    fmt_ms(max(r["lat"]) if r["lat"] else None).strip(),
                    r["info"]))
                sys.stdout.flush()
                time.sleep(1.0)
        if "tls" in args.phases:
            results["verify"] = verify_cost()
            for side in sides:
                results[side.name]["tls-logins"] = login_rate(
                    side, args.login_clients, args.secs, args.max_logins,
                    ca.ca_crt)
                if side.name == "dovecot":
                    results["dovecot-ssha"] = login_rate(
                        side, args.login_clients, args.secs,
                        args.max_logins, ca.ca_crt, "ssha")
        if "pop3" in args.phases and "popgate" in args.servers:
            pop3_res = pop3_import(gw, upstream, args.import_count,
                                   ca.ca_crt, "import" not in args.phases)
    finally:
        if dv is not None:
            dv.stop()
        gw.stop(expect_rc=None)
        upstream.stop()
    report(results, args)
    if pop3_res is not None:
        pop3_report(pop3_res)
    print("total %.0fs" % (time.monotonic() - t_start))
    if args.keep:
        print("kept %s" % tmp)
    else:
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
