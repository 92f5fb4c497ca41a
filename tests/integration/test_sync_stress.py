"""Convergence stress test (issue 7): many devices, one user, mail arriving.

popgated (the real daemon) serves one user with three upstream accounts
on a real Dovecot POP3 server (delete mode into INBOX, keep and mirror
mode into folders). STRESS_CLIENTS QRESYNC devices on loopback each run a seeded
random series of operations on three mailboxes (INBOX and two created
folders): conditional and plain STORE, body FETCH setting \\Seen,
pipelined batches, UID COPY (also into the same mailbox), UID MOVE,
\\Deleted + UID EXPUNGE / EXPUNGE / CLOSE, APPEND, NOOP, IDLE,
CHANGEDSINCE (VANISHED) fetches, FETCH/COPY by sequence number, switching
mailboxes with SELECT/EXAMINE (QRESYNC ...), and going offline (LOGOUT or
a cut connection) and coming back. They also CREATE, RENAME and DELETE
scratch folders (a small pool of names, so names are reused) while other
devices have them selected, IDLE in them or COPY/MOVE/APPEND into them,
and delete one while a second connection streams a big FETCH from it:
a deleted selected folder ends the other sessions with BYE (the device
drops its model and reconnects), a renamed one is followed through LIST
(RETURN (STATUS (UIDVALIDITY))), a reused name must give a full QRESYNC
answer (new UIDVALIDITY). Meanwhile a feeder drops new messages
into the Dovecot mailboxes and asks the gateway to poll, so the poller
delivers mid-run; and once popgated is SIGKILLed and restarted.

Each device keeps, per mailbox, a model (UID -> flags, MODSEQ) built only
from what the server told it. Every fact the server states is also
recorded in a shared ledger of observations: which marker (Message-ID) a
(mailbox, UID) holds (from fetched headers, APPENDUID, COPYUID), each
(mailbox, UID, MODSEQ) -> flags state, every VANISHED UID, MOVE sources,
COPY pairs, conditional STORE outcomes, and the APPEND/COPY/MOVE cut by
the kill (which may or may not have committed).

At the end (random phase bounded by STRESS_OPS per device and by a
wall-clock cap), the feeder's mail is all delivered, every device resyncs
each mailbox with QRESYNC, and:
- LIST shows exactly the mailboxes the CREATE/RENAME/DELETE OKs leave;
  each device's model of each equals a fresh full view (UID FETCH 1:*),
  so all devices agree with each other;
- the store read offline (tests/tools/store_dump, daemon stopped) equals
  that view (UIDs, flags, MODSEQ, markers, STATUS), and store_check
  passes;
- no loss, no duplication: per marker, the number of messages holding it
  equals 1 (POP3 delivery or acknowledged APPEND) + its COPYUID copies -
  its expunges (VANISHED UIDs that were not MOVE sources) - those in
  deleted folders (their places known from APPENDUID/COPYUID), give or take
  what the commands cut by the kill may have done; every POP3 message is
  in its account's ledger exactly once; every UID below UIDNEXT is present
  or in the expunge history;
- a (mailbox, UID, MODSEQ) never showed two different flag sets, a
  successful UNCHANGEDSINCE store had no other change in between, a
  [MODIFIED] one was really stale, a vanished UID never came back and
  a UID's marker never changed;
- after a restart devices resync to the same state and a keep-mode poll
  fetches nothing.

Seeds: the master seed is printed (and the per-device seeds derived from
it); POPGATE_STRESS_SEED=N replays the same random choices (the
interleaving of the threads is up to the scheduler). docs/sync.md has more.
"""
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import unittest

import pgtest
from pgtest import TestCA, tempdir
from pgtest.dovecot import DovecotPop3
from pgtest.gateway import Gateway
from imapd import uid_set

STRESS_CLIENTS = 10
STRESS_OPS = 400			# operations per device
STRESS_SECONDS = 45.0		# wall-clock cap of the random phase
STRESS_POP3 = 60		# messages dropped upstream during the run
# popgated is SIGKILLed and restarted once mid-run, after this many
# commands (or this many seconds, on a slow machine)
KILL_AFTER_COMMANDS = 2500
KILL_AFTER_SECONDS = 15.0
FOLDERS = ("Projects", "Lists/Stress")
MAILBOXES = ("INBOX",) + FOLDERS
# mailbox churn: devices CREATE, RENAME and DELETE scratch folders with
# these names (few, so names are reused), never the fixed MAILBOXES (the
# poller's targets); CHURN is the share of a device's steps that does it
SCRATCH = ("Tmp-a", "Tmp-b", "Tmp-c")
CHURN = 0.05
# the big message of a FETCH streamed while its folder is deleted: more
# than the server's output high-water mark (256 KB) and the kernel's
# socket buffers (the sender's grows up to tcp_wmem's 4 MB) hold
STREAM_BIG = 8 * 1024 * 1024
FLAGS = ("\\Seen", "\\Flagged", "\\Answered", "$Label1", "$Work")
IMAP_USER = "alice"
IMAP_PW = "imap-pw"
# upstream accounts: (account, Dovecot login, folder delivered to, mode);
# delete mode checks DELE after commit, keep mode that a message listed
# again at every poll is never fetched twice, mirror mode that upstream
# ends with exactly the messages the user still has somewhere
UPSTREAMS = (("stress", "alice", "INBOX", "delete"),
             ("lists", "alice-lists", "Lists/Stress", "keep"),
             ("work", "alice-work", "Projects", "mirror"))
HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"

RE_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)\r\n$", re.S)
RE_UID = re.compile(rb"(?:^|[ (])UID (\d+)")
RE_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
RE_FLAGS = re.compile(rb"(?:^|[ (])FLAGS \(([^)]*)\)")
RE_VANISHED = re.compile(rb"^\* VANISHED (\(EARLIER\) )?([0-9:,]+)\r\n$")
RE_EXISTS = re.compile(rb"^\* (\d+) EXISTS\r\n$")
RE_COPYUID = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]")
RE_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
RE_MODIFIED = re.compile(rb"\[MODIFIED ([0-9:,]+)\]")
RE_MARKER = re.compile(rb"Message-ID:\s*(\S+)", re.I)
RE_LIST = re.compile(rb'^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) '
                     rb'(?:"([^"]*)"|(\S+))\r\n$')
RE_STATUS_UV = re.compile(rb'^\* STATUS (?:"([^"]*)"|(\S+)) '
                          rb'\(.*UIDVALIDITY (\d+)')


class StressFailure(Exception):
    pass


class MailboxDeleted(Exception):
    """The server ended the session with BYE: its selected mailbox was
    deleted by another session."""


def expand_set(text):
    """UIDs of a set, in the order written (ranges ascending)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = []
    for part in text.split(","):
        a, _, b = part.partition(":")
        a, b = int(a), int(b or a)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def flagset(raw):
    """Flags of a FETCH response; \\Recent is per session, not synced."""
    return frozenset(f.decode() for f in raw.split()
                     if f.lower() != b"\\recent")


def quote(name):
    return '"%s"' % name


class World:
    """Every fact the server stated, from all devices (thread-safe)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.marker = {}	# (box, uid) -> marker
        self.states = {}	# (box, uid, modseq) -> (flags, who, response)
        self.vanished = set()	# (box, uid)
        self.move_src = set()	# (box, uid)
        self.transfers = []	# (COPY|MOVE, tag, (box, uid), (box, uid))
        self.copies = []	# ((box, uid), (box, uid)) of COPY (not MOVE)
        self.created = {}	# marker -> 1 (POP3 or APPEND)
        # The ledger's mailbox keys are UIDVALIDITYs, not names: a name
        # may be renamed or reused, a UIDVALIDITY is one mailbox for ever
        self.names_seen = {}	# name -> {uidvalidity seen under it}
        # mailbox churn, from the tagged OKs of CREATE/RENAME/DELETE:
        # name -> (appearances - disappearances); order-independent, so
        # the threads' view of the order does not matter
        self.name_delta = {}
        self.bye_uvs = set()	# mailboxes whose deletion ended a session
        self.initial_names = set()	# what LIST showed before the run
        self.big = set()	# markers of big messages, never transferred
        # scratch names taken by a device's CREATE/RENAME/DELETE: the
        # streamed FETCH must be sure which folder its DELETE deletes
        self.held = set()
        # the kill waits for no CREATE/RENAME/DELETE to be in flight (one
        # cut by the kill could have committed or not)
        self.churn_blocked = False
        self.churn_inflight = 0
        self.churn_cv = threading.Condition(self.lock)
        self.cond_ok = []	# (box, uid, since, modseq after)
        self.cond_failed = []	# (box, uid, since)
        self.errors = []
        self.counts = {}
        # the mid-run kill: set while popgated is down, epoch bumped after
        self.killing = threading.Event()
        self.kill_epoch = 0
        # marker -> how many more messages may hold it than the certain
        # answers say: commands cut by the kill (APPEND, COPY, MOVE) may or
        # may not have committed
        self.allowance = {}
        self.maybe_moved = set()	# (box, uid) of a MOVE cut by the kill
        # (box, uid) of a STORE cut by the kill: it may have committed
        # (durable before its answer was sent) without anyone seeing it
        self.maybe_stored = set()

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def learn_marker(self, box, uid, marker):
        with self.lock:
            old = self.marker.setdefault((box, uid), marker)
            if old != marker:
                self.errors.append("%s/%d held %s, now %s"
                                   % (box, uid, old, marker))

    def has_marker(self, box, uid):
        with self.lock:
            return (box, uid) in self.marker

    def state(self, who, box, uid, modseq, flags, text=b""):
        with self.lock:
            old, owho, otext = self.states.setdefault(
                (box, uid, modseq), (flags, who, text))
            if old != flags:
                # both responses, to tell which path sent which
                self.errors.append(
                    "%s: %s/%d MODSEQ %d has flags %s and %s"
                    " (%s: %r; %s: %r)"
                    % (who, box, uid, modseq, sorted(old), sorted(flags),
                       owho, otext[:200], who, text[:200]))

    def vanish(self, box, uids):
        with self.lock:
            self.vanished.update((box, u) for u in uids)

    def check_uidvalidity(self, box, uv):
        with self.lock:
            seen = self.names_seen.setdefault(box, set())
            seen.add(uv)
            if box in MAILBOXES and len(seen) > 1:
                self.errors.append("%s UIDVALIDITY %s" % (box, sorted(seen)))

    def hold_names(self, names):
        """Takes names for one CREATE/RENAME/DELETE (or a streamed FETCH
        and its DELETE); False if one is held by another device."""
        with self.lock:
            if any(n in self.held for n in names):
                return False
            self.held.update(names)
            return True

    def release_names(self, names):
        with self.lock:
            self.held.difference_update(names)

    def churned(self, gone=None, new=None):
        with self.lock:
            if new in self.name_delta:
                self.count("name_reused")
            for name, d in ((gone, -1), (new, 1)):
                if name is not None:
                    self.name_delta[name] = self.name_delta.get(name, 0) + d

    def expected_names(self):
        with self.lock:
            for name, d in self.name_delta.items():
                if d not in (0, 1):
                    self.errors.append("%s created %+d times net"
                                       % (name, d))
            return self.initial_names | {n for n, d in
                                         self.name_delta.items() if d == 1}


class Conn:
    """An IMAP connection that reads responses with their literals."""

    def __init__(self, port, rcvbuf=None):
        if rcvbuf is None:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout=60)
        else:
            # set before connecting: the window is sized at the handshake
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(60)
            self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.greeting, _ = self.read_response()

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("server closed the connection")
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            self._fill()

    def read_response(self):
        """One response: (text with each literal replaced by "{}",
        [literal bytes])."""
        parts, lits = [], []
        while True:
            line = self._line()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                parts.append(line)
                return b"".join(parts), lits
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            lits.append(self.buf[:n])
            self.buf = self.buf[n:]
            parts.append(line[:m.start()] + b"{}")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def poll_response(self, timeout):
        """A response if one arrives within timeout, else None."""
        if b"\r\n" not in self.buf:
            self.sock.settimeout(timeout)
            try:
                self._fill()
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(60)
        return self.read_response()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Box:
    """A device's knowledge of one mailbox."""

    def __init__(self):
        self.uidvalidity = None
        self.hms = None		# HIGHESTMODSEQ of the last SELECT
        self.model = {}		# uid -> (flags, modseq)
        # every message with a UID up to this one is in the model (or
        # vanished): the next new-mail fetch starts after it. Not the
        # highest UID in the model: an unsolicited FETCH may name a new
        # message before the device has fetched the ones before it.
        self.fetched_upto = 0
        self.exists = None
        # UIDs a UID FETCH (VANISHED) reported as VANISHED (EARLIER) while
        # the session had not yet been told of their expunge: they keep
        # their sequence numbers until the plain VANISHED comes (RFC 7162
        # 3.2.6: EARLIER does not change the sequence numbers)
        self.pending_gone = set()


class Device:
    """A QRESYNC client that knows only what the server said."""

    def __init__(self, test, world, name, seed):
        self.test = test
        self.world = world
        self.name = name
        self.seed = seed
        self.rnd = random.Random(seed)
        self.boxes = {b: Box() for b in MAILBOXES}
        self.selected = None
        self.conn = None
        self.n = 0
        self.new_mail = False
        self.appended = 0
        self.readonly = False
        self.selecting = False
        self.inflight = None	# the APPEND/COPY/MOVE being sent
        self.conn_epoch = 0	# kill_epoch when the connection was made

    def fail(self, text):
        raise StressFailure("%s (seed %d): %s" % (self.name, self.seed, text))

    def key(self, box):
        """The ledger's key of a mailbox the device has selected: its
        UIDVALIDITY (a name may be renamed or reused)."""
        return self.boxes[box].uidvalidity

    def names(self, but=None):
        """The mailboxes the device believes exist and works in: the
        fixed ones and the scratch folders (the user's default folders,
        Sent, Trash..., are left alone, so the devices still meet in
        few mailboxes; they are compared at the end like the others)."""
        return sorted(b for b in self.boxes if b != but and
                      (b in MAILBOXES or b in SCRATCH))

    # ---- responses ----------------------------------------------------

    def apply(self, box, text, lits, seen=None):
        """Applies one untagged response to box's model. Returns the
        (possibly changed) mailbox the next responses belong to."""
        cur = self.boxes[box] if box else None
        key = cur.uidvalidity if cur else None
        if text.startswith(b"* BYE"):
            if b"deleted" not in text:
                self.fail("unexpected %r" % text)
            raise MailboxDeleted()
        m = RE_FETCH.match(text)
        if m:
            if cur is None:
                self.fail("FETCH with no mailbox: %r" % text)
            body = m.group(2)
            if cur.exists is not None and int(m.group(1)) > cur.exists:
                self.fail("FETCH of message %s, EXISTS %d: %r"
                          % (m.group(1).decode(), cur.exists, text))
            mu = RE_UID.search(body)
            if mu is None:
                self.fail("FETCH without UID: %r" % text)
            uid = int(mu.group(1))
            ms = RE_MODSEQ.search(body)
            fl = RE_FLAGS.search(body)
            if lits:
                mk = RE_MARKER.search(lits[0])
                if mk is None:
                    self.fail("no Message-ID in %r" % lits[0])
                self.world.learn_marker(key, uid, mk.group(1).decode())
            if fl is not None and ms is None:
                self.fail("FETCH FLAGS without MODSEQ: %r" % text)
            if ms is not None:
                modseq = int(ms.group(1))
                if fl is None:
                    if uid not in cur.model:
                        self.fail("MODSEQ without FLAGS for unknown UID "
                                  "%d: %r" % (uid, text))
                    flags = cur.model[uid][0]
                else:
                    flags = flagset(fl.group(1))
                    self.world.state(self.name, key, uid, modseq, flags,
                                     text)
                old = cur.model.get(uid)
                if old is not None and old[1] > modseq:
                    self.fail("%s/%d: MODSEQ went back from %d to %d"
                              % (box, uid, old[1], modseq))
                cur.model[uid] = (flags, modseq)
                if seen is not None:
                    seen.setdefault(uid, []).append(modseq)
            return box
        m = RE_VANISHED.match(text)
        if m:
            uids = expand_set(m.group(2))
            if m.group(1) is None:
                cur.pending_gone.difference_update(uids)
            elif not self.selecting:
                cur.pending_gone.update(u for u in uids if u in cur.model)
            for u in uids:
                cur.model.pop(u, None)
            if m.group(1) is None and cur.exists is not None:
                cur.exists -= len(uids)
            self.world.vanish(key, uids)
            return box
        m = RE_EXISTS.match(text)
        if m:
            cur.exists = int(m.group(1))
            self.new_mail = True
            return box
        if re.match(rb"^\* \d+ EXPUNGE", text):
            self.fail("EXPUNGE sent to a QRESYNC client: %r" % text)
        if text.startswith(b"* OK [CLOSED]"):
            return "CLOSED"
        return box

    def cmd(self, text, ok=True, seen=None, literal=None):
        """Sends a command; applies its untagged responses; returns
        (tagged line, untagged responses). seen collects uid -> modseqs
        of the FETCH responses."""
        self.n += 1
        tag = "%s.%d" % (self.name, self.n)
        if literal is not None:
            self.conn.send(b"%s %s {%d+}\r\n%s\r\n"
                           % (tag.encode(), text.encode(), len(literal),
                              literal))
        else:
            self.conn.send("%s %s\r\n" % (tag, text))
        untagged = []
        box = self.selected
        t = tag.encode() + b" "
        while True:
            resp, lits = self.conn.read_response()
            if resp.startswith(t):
                break
            untagged.append((resp, lits))
            if box is not None:
                self.apply(box, resp, lits, seen)
            elif RE_FETCH.match(resp) or RE_VANISHED.match(resp) or \
                    RE_EXISTS.match(resp):
                self.fail("%r with no mailbox selected" % resp)
        if ok and not resp.startswith(t + b"OK"):
            self.fail("%s -> %r" % (text, resp))
        self.world.count("commands")
        return resp, untagged

    def pipeline(self, texts):
        """Sends several commands at once, then reads their responses
        (every one must be OK)."""
        tags = []
        out = b""
        for text in texts:
            self.n += 1
            tags.append("%s.%d" % (self.name, self.n))
            out += ("%s %s\r\n" % (tags[-1], text)).encode()
        self.conn.send(out)
        box = self.selected
        for tag, text in zip(tags, texts):
            t = tag.encode() + b" "
            while True:
                resp, lits = self.conn.read_response()
                if resp.startswith(t):
                    break
                self.apply(box, resp, lits)
            if not resp.startswith(t + b"OK"):
                self.fail("%s (pipelined) -> %r" % (text, resp))
        self.world.count("pipelined", len(texts))

    # ---- connection and mailboxes ---------------------------------------

    def connect(self, box=None):
        self.conn_epoch = self.world.kill_epoch
        self.conn = Conn(self.test.gw.imap_port)
        self.selected = None
        self.cmd("LOGIN %s %s" % (IMAP_USER, IMAP_PW))
        self.cmd("ENABLE QRESYNC")
        if not self.select(box or self.rnd.choice(self.names())):
            self.select("INBOX")

    def disconnect(self, cut=False):
        if cut:
            self.conn.close()
            self.world.count("cuts")
        else:
            self.n += 1
            try:
                self.conn.send("%s.%d LOGOUT\r\n" % (self.name, self.n))
            except ConnectionError:
                pass	# closed by the server first (as below)
            while True:
                try:
                    resp, lits = self.conn.read_response()
                except (EOFError, ConnectionResetError):
                    # a reset: the server ended the session on its own
                    # (BYE: another device deleted the selected folder)
                    # as the LOGOUT arrived, and closed with it unread
                    break
                if self.selected is not None and not resp.startswith(b"*"
                                                                     b" BYE"):
                    self.apply(self.selected, resp, lits)
            self.conn.close()
        self.conn = None
        self.selected = None

    def select(self, name, examine=False):
        """Selects name; False if it no longer exists (a scratch folder
        deleted or renamed by another device): the device drops what it
        knew of it and has no mailbox selected."""
        b = self.boxes[name]
        prev = self.selected
        verb = "EXAMINE" if examine else "SELECT"
        # A full resync (first SELECT, or one whose full fetch was cut)
        # takes HIGHESTMODSEQ only once the whole mailbox is fetched
        full = b.uidvalidity is None or b.hms is None
        if full:
            text = "%s %s" % (verb, quote(name))
            b.model = {}
            b.fetched_upto = 0
        else:
            # what the device knows, and every UID above it: changes
            # are reported for known-uids only (RFC 7162 3.2.5.1), so
            # the range above asks for the messages added since too
            known = uid_set(b.model)
            if known:
                known += ",%d:4294967295" % (max(b.model) + 1)
            text = "%s %s (QRESYNC (%d %d%s))" % (
                verb, quote(name), b.uidvalidity, b.hms,
                " " + known if known else "")
            self.world.count("qresync")
        # the untagged responses before [CLOSED] belong to prev; the
        # new mailbox's come after it (or from the start when nothing
        # was selected)
        self.n += 1
        tag = "%s.%d" % (self.name, self.n)
        self.conn.send("%s %s\r\n" % (tag, text))
        box = prev
        exists = []
        b.pending_gone = set()
        t = tag.encode() + b" "
        fresh = False	# a QRESYNC SELECT met a new UIDVALIDITY
        hms = None
        while True:
            resp, lits = self.conn.read_response()
            if resp.startswith(t):
                break
            if box is None:
                box = name
                self.new_mail = False
            if box == name:
                m = re.search(rb"\[UIDVALIDITY (\d+)\]", resp)
                if m:
                    uv = int(m.group(1))
                    self.world.check_uidvalidity(name, uv)
                    if b.uidvalidity is not None and b.uidvalidity != uv:
                        # the name is reused by a new mailbox (RFC 7162
                        # 3.2.5.1): no VANISHED or FETCH may follow; the
                        # model is rebuilt from scratch
                        if name in MAILBOXES:
                            self.fail("%s UIDVALIDITY changed" % name)
                        b.model = {}
                        b.fetched_upto = 0
                        b.hms = None
                        full = fresh = True
                        self.world.count("new_uidvalidity")
                    b.uidvalidity = uv
                m = re.search(rb"\[HIGHESTMODSEQ (\d+)\]", resp)
                if m:
                    hms = int(m.group(1))
                m = RE_EXISTS.match(resp)
                if m:
                    exists.append(int(m.group(1)))
            if fresh and box == name and (RE_FETCH.match(resp) or
                                          RE_VANISHED.match(resp)):
                self.fail("QRESYNC SELECT %s with an old UIDVALIDITY got "
                          "%r" % (name, resp))
            self.selecting = box == name
            nb = self.apply(box, resp, lits)
            self.selecting = False
            if nb == "CLOSED":
                box = name
                self.new_mail = False
        if name not in MAILBOXES and b"[NONEXISTENT]" in resp:
            self.boxes.pop(name, None)
            self.selected = None
            self.readonly = False
            self.world.count("select_gone")
            return False
        if not resp.startswith(t + b"OK"):
            self.fail("%s -> %r" % (text, resp))
        if (b"[READ-ONLY]" in resp) != examine:
            self.fail("%s -> %r" % (text, resp))
        self.readonly = examine
        if hms is None or b.uidvalidity is None:
            self.fail("SELECT %s gave no UIDVALIDITY/HIGHESTMODSEQ" % name)
        if not full:
            b.hms = hms
        if not full and b.model and max(ms for _, ms in b.model.values()) \
                > b.hms:
            # the QRESYNC FETCHes come from the SELECT's snapshot
            self.fail("SELECT %s: HIGHESTMODSEQ %d below a MODSEQ it "
                      "reported (%d)" % (name, b.hms, max(
                          ms for _, ms in b.model.values())))
        self.selected = name
        self.world.count("commands")
        if full:
            seen = {}
            self.cmd("UID FETCH 1:* (FLAGS MODSEQ %s)" % HEADER_ITEM,
                     seen=seen)
            b.fetched_upto = max([b.fetched_upto] + list(seen))
            b.hms = hms
        elif len(exists) == 1 and len(b.model) != exists[0]:
            # one snapshot: what the device knew, less VANISHED
            # (EARLIER), plus the changed messages, is the mailbox
            with self.world.lock:
                states = sorted((u, ms) for (k, u, ms) in self.world.states
                                if k == b.uidvalidity)
            self.fail("%s after QRESYNC: model has %d messages, EXISTS %d"
                      " (%s); sent %s; states seen %s" % (
                          name, len(b.model), exists[0], uid_set(b.model),
                          text, states[:80]))
        else:
            # QRESYNC reported every message added since
            b.fetched_upto = max([b.fetched_upto] + list(b.model))
        self.new_mail = True
        self.catch_up()
        return True

    def catch_up(self):
        """After EXISTS: fetch the new messages; and the marker of every
        message the device has not seen the header of."""
        if self.selected is None:
            return
        b = self.boxes[self.selected]
        for _ in range(5):
            if self.new_mail:
                self.new_mail = False
                seen = {}
                self.cmd("UID FETCH %d:* (FLAGS MODSEQ %s)"
                         % (b.fetched_upto + 1, HEADER_ITEM), seen=seen)
                b.fetched_upto = max([b.fetched_upto] + list(seen))
            missing = [u for u in b.model
                       if not self.world.has_marker(b.uidvalidity, u)]
            if missing:
                self.cmd("UID FETCH %s (FLAGS MODSEQ %s)"
                         % (uid_set(missing), HEADER_ITEM))
            if not self.new_mail:
                return

    # ---- operations -----------------------------------------------------

    def targets(self, k):
        b = self.boxes[self.selected]
        with self.world.lock:
            known = [(u, self.world.marker.get((b.uidvalidity, u)))
                     for u in b.model]
            uids = sorted(u for u, mk in known
                          if mk is not None and mk not in self.world.big)
        if not uids:
            return []
        return sorted(self.rnd.sample(uids, min(k, len(uids))))

    def op_cond_store(self):
        """UID STORE (UNCHANGEDSINCE since) on 1-3 messages. since is the
        lowest MODSEQ the device knows of them, or (sometimes) one less:
        then the server must refuse every message it knows newer."""
        uids = self.targets(self.rnd.choice((1, 1, 1, 2, 3)))
        if not uids:
            return self.op_append()
        box = self.selected
        known = {u: self.boxes[box].model[u][1] for u in uids}
        since = min(known.values())
        if self.rnd.random() < 0.2 and since > 1:
            since -= 1
        flag = self.rnd.choice(FLAGS)
        sign = self.rnd.choice("+-")
        seen = {}
        tagged, _ = self.cmd("UID STORE %s (UNCHANGEDSINCE %d) %sFLAGS (%s)"
                             % (uid_set(uids), since, sign, flag), seen=seen)
        m = RE_MODIFIED.search(tagged)
        modified = set(expand_set(m.group(1))) if m else set()
        if modified - set(uids):
            self.fail("MODIFIED %r, asked for %s" % (m.group(1), uids))
        stale = [u for u in uids if known[u] > since and u not in modified]
        if stale:
            # only an expunge (before this STORE) excuses it
            self.cmd("NOOP")
            for u in stale:
                if u in self.boxes[box].model:
                    self.fail("UNCHANGEDSINCE %d on %s/%d (MODSEQ %d) "
                              "succeeded" % (since, box, u, known[u]))
        key = self.key(box)
        with self.world.lock:
            for u in uids:
                if u in modified:
                    self.world.cond_failed.append((key, u, since))
                elif u in seen and max(seen[u]) > since:
                    self.world.cond_ok.append((key, u, since, max(seen[u])))
        if modified:
            self.world.count("conflicts", len(modified))
            self.cmd("UID FETCH %s (FLAGS MODSEQ)" % uid_set(modified))

    def op_store(self):
        uids = self.targets(self.rnd.randint(1, 4))
        if not uids:
            return self.op_append()
        flags = self.rnd.sample(FLAGS, self.rnd.randint(1, 2))
        self.inflight = ("STORE", self.key(self.selected), uids)
        self.cmd("UID STORE %s %sFLAGS (%s)"
                 % (uid_set(uids), self.rnd.choice(("+", "-", "")),
                    " ".join(flags)))
        self.inflight = None

    def copy_pairs(self, resp, dst):
        """(destination UIDVALIDITY, [(source UID, destination UID)])."""
        m = RE_COPYUID.search(resp)
        if m is None:
            return None, []
        uv = int(m.group(1))
        self.world.check_uidvalidity(dst, uv)
        src = expand_set(m.group(2))
        dstu = expand_set(m.group(3))
        if len(src) != len(dstu):
            self.fail("COPYUID sizes differ: %r" % resp)
        return uv, list(zip(src, dstu))

    def transfer_refused(self, dst, tagged):
        """A COPY/MOVE/APPEND to a scratch folder may meet its deletion
        or renaming by another device: NO [TRYCREATE], nothing done."""
        if b" OK " in tagged:
            return False
        # (or MOVE to a name the selected scratch folder now has)
        if dst in MAILBOXES or not (b"[TRYCREATE]" in tagged or (
                b"[CANNOT]" in tagged and self.selected not in MAILBOXES)):
            self.fail("-> %r" % tagged)
        if dst != self.selected:
            # (the selected one stays while it is selected, whatever its
            # name now: it is what the session's responses are about)
            self.boxes.pop(dst, None)
        self.world.count("transfer_refused")
        return True

    def record_copies(self, pairs, dst, move=False):
        box = self.key(self.selected)
        with self.world.lock:
            for su, du in pairs:
                mk = self.world.marker.get((box, su))
                if mk is None:
                    self.world.errors.append("%s: copied %s/%d with no "
                                             "known marker" % (self.name,
                                                               box, su))
                    continue
                old = self.world.marker.setdefault((dst, du), mk)
                if old != mk:
                    self.world.errors.append("%s/%d is %s and %s"
                                             % (dst, du, old, mk))
                if not move:
                    self.world.copies.append(((box, su), (dst, du)))
                self.world.transfers.append((
                    "MOVE" if move else "COPY", "%s.%d" % (self.name, self.n),
                    (box, su), (dst, du)))

    def op_copy(self):
        uids = self.targets(self.rnd.randint(1, 3))
        if not uids:
            return self.op_append()
        if self.rnd.random() < 0.15:
            dst = self.selected
        else:
            dst = self.rnd.choice(self.names(but=self.selected))
        self.inflight = ("COPY", self.key(self.selected), uids)
        tagged, _ = self.cmd("UID COPY %s %s" % (uid_set(uids), quote(dst)),
                             ok=False)
        if self.transfer_refused(dst, tagged):
            return
        uv, pairs = self.copy_pairs(tagged, dst)
        for su, _ in pairs:
            if su not in uids:
                self.fail("COPYUID names %d, not asked for" % su)
        self.record_copies(pairs, uv)
        self.world.count("copied", len(pairs))
        if dst == self.selected:
            self.catch_up()

    def op_move(self):
        uids = self.targets(self.rnd.randint(1, 3))
        if not uids:
            return self.op_append()
        dst = self.rnd.choice(self.names(but=self.selected))
        box = self.selected
        key = self.key(box)
        self.inflight = ("MOVE", key, uids)
        tagged, untagged = self.cmd("UID MOVE %s %s"
                                    % (uid_set(uids), quote(dst)), ok=False)
        pairs, uv = [], None
        for resp, _ in untagged + [(tagged, [])]:
            if RE_COPYUID.search(resp):
                uv, p = self.copy_pairs(resp, dst)
                pairs += p
        if self.transfer_refused(dst, tagged):
            if pairs:
                self.fail("refused MOVE with COPYUID: %r" % untagged)
            return
        for su, _ in pairs:
            if su not in uids:
                self.fail("MOVE's COPYUID names %d, not asked for" % su)
            if su in self.boxes[box].model:
                self.fail("%s/%d moved but not VANISHED" % (box, su))
        self.record_copies(pairs, uv, move=True)
        with self.world.lock:
            self.world.move_src.update((key, su) for su, _ in pairs)
        self.world.count("moved", len(pairs))

    def op_expunge(self):
        uids = self.targets(self.rnd.randint(1, 2))
        if not uids:
            return self.op_append()
        self.inflight = ("STORE", self.key(self.selected), uids)
        self.cmd("UID STORE %s +FLAGS (\\Deleted)" % uid_set(uids))
        self.inflight = None
        before = set(self.boxes[self.selected].model)
        r = self.rnd.random()
        if r < 0.15:
            # CLOSE expunges silently: the device learns what went only
            # at its next SELECT (QRESYNC), from VANISHED (EARLIER)
            self.cmd("CLOSE")
            self.selected = None
            self.world.count("closes")
            self.select(self.rnd.choice(MAILBOXES))
            return
        if r < 0.6:
            self.cmd("UID EXPUNGE %s" % uid_set(uids))
        else:
            self.cmd("EXPUNGE")
        gone = before - set(self.boxes[self.selected].model)
        self.world.count("expunged", len(gone))

    def op_read(self):
        """A body FETCH without PEEK sets \\Seen (a new MODSEQ, pushed to
        the other devices); sometimes pipelined with flag changes."""
        uids = self.targets(2)
        if not uids:
            return self.op_append()
        read = "UID FETCH %d (%s)" % (uids[0], HEADER_ITEM.replace(".PEEK",
                                                                    ""))
        if self.rnd.random() < 0.5:
            self.cmd(read)
            return
        texts = ["UID STORE %d -FLAGS (\\Seen)" % uids[0], read,
                 "UID STORE %s +FLAGS (%s)" % (uid_set(uids),
                                                self.rnd.choice(FLAGS)),
                 "UID FETCH %s (FLAGS MODSEQ)" % uid_set(uids), "NOOP"]
        self.pipeline(texts[:self.rnd.randint(2, len(texts))])

    def op_readonly(self):
        """In a mailbox opened with EXAMINE: STORE, MOVE and EXPUNGE are
        refused and change nothing; COPY works."""
        uids = self.targets(1)
        if not uids:
            return self.op_append()
        r = self.rnd.random()
        if r < 0.5:
            return self.op_copy()
        if r < 0.7:
            text = "UID STORE %d +FLAGS (\\Flagged)" % uids[0]
        elif r < 0.85:
            text = "UID MOVE %d %s" % (uids[0], quote(self.rnd.choice(
                [b for b in MAILBOXES if b != self.selected])))
        else:
            text = "EXPUNGE"
        tagged, untagged = self.cmd(text, ok=False)
        if b" NO " not in tagged:
            self.fail("%s in a read-only mailbox -> %r" % (text, tagged))
        if any(RE_COPYUID.search(r) for r, _ in untagged):
            self.fail("%s in a read-only mailbox: %r" % (text, untagged))
        self.world.count("readonly_refusals")

    def op_seq(self):
        """FETCH or COPY by sequence number: the server's numbering must
        be the device's (every message up to fetched_upto is known, and
        expunges are only reported between such commands).
        A UID FETCH (VANISHED) may have reported as VANISHED (EARLIER) a
        message the device never fetched but the session still numbers
        (its plain VANISHED is still due): a NOOP first settles that."""
        self.cmd("NOOP")
        self.catch_up()
        box = self.selected
        b = self.boxes[box]
        order = sorted(u for u in set(b.model) | b.pending_gone
                       if u <= b.fetched_upto)
        if not order:
            return self.op_append()
        n = self.rnd.randint(1, len(order))
        expect = order[n - 1]
        with self.world.lock:
            big = self.world.marker.get((b.uidvalidity, expect)) in \
                self.world.big
        if self.rnd.random() < 0.6 or big:
            tagged, untagged = self.cmd("FETCH %d (UID FLAGS MODSEQ)" % n,
                                        ok=False)
            got = set()
            for resp, _ in untagged:
                m = RE_FETCH.match(resp)
                if m and int(m.group(1)) == n:
                    got.add(int(RE_UID.search(m.group(2)).group(1)))
            self.world.count("seq_fetches")
        else:
            dst = self.rnd.choice([x for x in MAILBOXES if x != box])
            self.inflight = ("COPY", self.key(box), [expect])
            tagged, _ = self.cmd("COPY %d %s" % (n, quote(dst)), ok=False)
            uv, pairs = self.copy_pairs(tagged, dst)
            self.record_copies(pairs, uv)
            got = {su for su, _ in pairs}
            self.world.count("copied", len(pairs))
            self.world.count("seq_copies")
        if got == {expect}:
            return
        if got:
            self.fail("message %d is UID %d, server said %s (%r); "
                      "pending %s" % (n, expect, sorted(got), tagged,
                                      sorted(b.pending_gone)))
        # nothing: only if the message was expunged meanwhile
        self.cmd("NOOP")
        if expect in b.model:
            self.fail("%s %d (UID %d) gave nothing: %r" % (
                "FETCH/COPY", n, expect, tagged))

    def op_append(self, box=None, lines=1, big=False):
        """APPENDs a new message; returns its UID (None if refused)."""
        box = box or self.rnd.choice(self.names())
        self.appended += 1
        marker = "<%s-%d.%d@stress.test>" % (self.name, self.appended,
                                             self.seed)
        body = ("From: %s@example.org\r\nTo: alice@example.net\r\n"
                "Subject: append %d\r\nMessage-ID: %s\r\n\r\n"
                % (self.name, self.appended, marker) +
                "appended by %s\r\n" % self.name * lines).encode()
        flags = self.rnd.sample(FLAGS, self.rnd.randint(0, 2))
        self.inflight = ("APPEND", marker)
        tagged, _ = self.cmd("APPEND %s (%s)" % (quote(box), " ".join(flags)),
                             literal=body, ok=False)
        if self.transfer_refused(box, tagged):
            return
        m = RE_APPENDUID.search(tagged)
        if m is None:
            self.fail("APPEND without APPENDUID: %r" % tagged)
        self.world.check_uidvalidity(box, int(m.group(1)))
        self.world.learn_marker(int(m.group(1)), int(m.group(2)), marker)
        with self.world.lock:
            self.world.created[marker] = 1
            if big:
                self.world.big.add(marker)
        self.world.count("appended")
        if box == self.selected:
            self.catch_up()
        return int(m.group(2))

    def op_idle(self):
        self.n += 1
        tag = "%s.%d" % (self.name, self.n)
        self.conn.send("%s IDLE\r\n" % tag)
        box = self.selected
        while True:
            resp, lits = self.conn.read_response()
            if resp.startswith(b"+"):
                break
            self.apply(box, resp, lits)
        deadline = time.monotonic() + self.rnd.uniform(0.05, 0.3)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r = self.conn.poll_response(left)
            if r is not None:
                if r[0].startswith(b"* BYE"):
                    self.world.count("byes_in_idle")
                self.apply(box, r[0], r[1])
        self.conn.send("DONE\r\n")
        t = tag.encode() + b" "
        while True:
            resp, lits = self.conn.read_response()
            if resp.startswith(t):
                break
            self.apply(box, resp, lits)
        if not resp.startswith(t + b"OK"):
            self.fail("IDLE -> %r" % resp)
        self.catch_up()

    def op_changedsince(self):
        b = self.boxes[self.selected]
        vanished = self.rnd.random() < 0.5
        self.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d%s)"
                 % (b.hms, " VANISHED" if vanished else ""))

    def list_mailboxes(self, with_status):
        """LIST "" "*" (with RETURN (STATUS (UIDVALIDITY)) or plain):
        the device's mailboxes become exactly those listed. With the
        UIDVALIDITYs it follows a RENAME (a model moves to the name its
        UIDVALIDITY is now listed under) and drops the model of a name
        now held by another mailbox; with names only, a model stays under
        its name and the next QRESYNC SELECT finds out. The selected
        mailbox's model stays while it is selected (a deleted one ends
        the session with BYE). Returns the listed names."""
        text = 'LIST "" "*"'
        if with_status:
            text += " RETURN (STATUS (UIDVALIDITY))"
        _, untagged = self.cmd(text)
        listed, uvs = set(), {}
        for resp, _ in untagged:
            m = RE_LIST.match(resp)
            if m:
                attrs = m.group(1).lower()
                if b"\\noselect" in attrs or b"\\nonexistent" in attrs:
                    continue
                listed.add((m.group(2) or m.group(3)).decode())
                continue
            m = RE_STATUS_UV.match(resp)
            if m:
                name = (m.group(1) or m.group(2)).decode()
                uvs[name] = int(m.group(3))
                self.world.check_uidvalidity(name, uvs[name])
        if with_status and set(uvs) != listed:
            self.fail("LIST-STATUS: listed %s, STATUS for %s"
                      % (sorted(listed), sorted(uvs)))
        old = self.boxes
        self.boxes = {}
        if with_status:
            by_uv = {uv: n for n, uv in uvs.items()}
            # the selected one last: its model is the one kept up to date
            for name, b in sorted(old.items(),
                                  key=lambda kv: kv[0] == self.selected):
                to = by_uv.get(b.uidvalidity)
                if to is not None:
                    self.boxes[to] = b
                    if to != name:
                        self.world.count("renames_followed")
                        if self.selected == name:
                            self.selected = to
        for name in listed:
            if name not in self.boxes and (
                    not with_status or old.get(name) is None or
                    old[name].uidvalidity in (None, uvs.get(name))):
                self.boxes[name] = old.get(name) or Box()
            elif name not in self.boxes:
                self.boxes[name] = Box()
        if self.selected is not None and self.selected not in self.boxes:
            self.boxes[self.selected] = old[self.selected]
        return listed

    def op_churn(self):
        """CREATE, RENAME or DELETE of a scratch folder (or a LIST)."""
        w = self.world
        with w.lock:
            if w.churn_blocked:
                blocked = True
            else:
                blocked = False
                w.churn_inflight += 1
        if blocked:
            return self.op_append()
        try:
            self._churn()
        finally:
            with w.lock:
                w.churn_inflight -= 1
                w.churn_cv.notify_all()

    def _churn(self):
        r = self.rnd.random()
        mine = [n for n in self.boxes if n in SCRATCH]
        free = [n for n in SCRATCH if n not in self.boxes]
        names = ()
        if 0.25 <= r < 0.5 and free:
            names = (self.rnd.choice(free),)
        elif 0.5 <= r < 0.75 and mine and free:
            names = (self.rnd.choice(mine), self.rnd.choice(free))
        elif 0.75 <= r < 0.9 and self.selected in SCRATCH:
            names = (self.selected,)
        elif r >= 0.75 and mine:
            names = (self.rnd.choice(mine),)
        if names and not self.world.hold_names(names):
            # a FETCH is being streamed from that folder
            return self.list_mailboxes(True)
        try:
            self._churn_names(r, names)
        finally:
            self.world.release_names(names)

    def _churn_names(self, r, names):
        if not names:
            self.list_mailboxes(self.rnd.random() < 0.3)
        elif r < 0.5:
            name = names[0]
            tagged, _ = self.cmd("CREATE %s" % quote(name), ok=False)
            if b" OK " in tagged:
                self.world.churned(new=name)
                self.world.count("created")
                self.boxes[name] = Box()
            elif b"[ALREADYEXISTS]" not in tagged:
                self.fail("CREATE %s -> %r" % (name, tagged))
        elif r < 0.75:
            src, dst = names
            tagged, _ = self.cmd("RENAME %s %s" % (quote(src), quote(dst)),
                                 ok=False)
            if b" OK " in tagged:
                self.world.churned(gone=src, new=dst)
                self.world.count("renamed")
                self.boxes[dst] = self.boxes.pop(src)
                if self.selected == src:
                    self.selected = dst
            elif b"[NONEXISTENT]" in tagged:
                if self.selected != src:
                    self.boxes.pop(src)
            elif b"[ALREADYEXISTS]" not in tagged:
                self.fail("RENAME %s %s -> %r" % (src, dst, tagged))
        elif r < 0.9 and self.selected == names[0]:
            self.op_stream_delete()
        else:
            self.delete(names[0])

    def delete(self, name):
        """DELETE name; True if it was deleted."""
        tagged, untagged = self.cmd("DELETE %s" % quote(name), ok=False)
        closed = any(u.startswith(b"* OK [CLOSED]") for u, _ in untagged)
        if closed:
            # the session's own selected mailbox (whatever name the
            # device knows it by): the session is unselected
            self.selected = None
            self.readonly = False
            self.world.count("deleted_own_selected")
        if b" OK " in tagged:
            self.world.churned(gone=name)
            self.world.count("deleted")
        elif b"[NONEXISTENT]" not in tagged:
            self.fail("DELETE %s -> %r" % (name, tagged))
        if self.selected != name:
            self.boxes.pop(name, None)
        return b" OK " in tagged

    def op_stream_delete(self):
        """A second connection of the device (with a small receive
        buffer) selects the device's scratch folder and FETCHes a small,
        a big and a small message; once the first has come, the device
        deletes the folder. The server has paused the stream in the
        big one (its output is over its 256 KB high-water mark, and the
        socket buffers are full): the
        stream goes on from what it had, skips the messages gone, and
        ends with BYE instead of OK (RFC 2180 3); OK only if it had all
        been written before the DELETE."""
        box = self.selected
        uv = self.key(box)
        uids = []
        for lines in (1, STREAM_BIG // 16, 1):
            # the big one is never copied or moved (it would slow every
            # later step)
            # (none of the three is ever expunged or moved by others:
            # the first FETCH must be the small one)
            uid = self.op_append(box=box, lines=lines, big=True)
            if uid is None or self.selected != box:
                return
            uids.append(uid)
        slow = Conn(self.test.gw.imap_port, rcvbuf=32768)
        try:
            for i, text in enumerate(("LOGIN %s %s" % (IMAP_USER, IMAP_PW),
                                      "SELECT %s" % quote(box))):
                slow.send("s%d %s\r\n" % (i, text))
                got = []
                while True:
                    r, _ = slow.read_response()
                    if r.startswith(b"s%d " % i):
                        break
                    got.append(r)
            m = re.search(rb"\[UIDVALIDITY (\d+)\]", b"".join(got))
            if b"s1 OK" not in r or int(m.group(1)) != uv:
                # renamed or deleted by another device meanwhile
                return
            slow.send("f UID FETCH %s (UID FLAGS MODSEQ BODY.PEEK[])\r\n"
                      % uid_set(uids))
            # the first FETCH; then the DELETE while the rest waits
            first = True
            stream = []
            while True:
                r, lits = slow.read_response()
                if r.startswith(b"f "):
                    break
                if r.startswith(b"* BYE"):
                    break
                m = RE_FETCH.match(r)
                if m is None or not lits:
                    continue	# news of the folder: EXISTS, flags...
                uid = int(RE_UID.search(m.group(2)).group(1))
                if uid not in uids:
                    self.fail("stream: FETCH of UID %d, asked %s"
                              % (uid, uids))
                mk = RE_MARKER.search(lits[0])
                self.world.learn_marker(uv, uid, mk.group(1).decode())
                stream.append(uid)
                if first:
                    first = False
                    if uid != uids[0]:
                        self.fail("stream began with UID %d, not %d"
                                  % (uid, uids[0]))
                    if not self.delete(box):
                        return
            if r.startswith(b"* BYE"):
                if b"deleted" not in r:
                    self.fail("stream: %r" % r)
                try:
                    r, _ = slow.read_response()
                    self.fail("after BYE: %r" % r)
                except EOFError:
                    pass
                self.world.count("stream_bye")
            else:
                # the name was held from before the SELECT to the DELETE,
                # so the DELETE took the streamed folder; and the server
                # cannot have written the 8 MB before it
                self.fail("FETCH streamed from %s: %r after the DELETE; "
                          "FETCHed %s" % (box, r, stream))
        finally:
            slow.close()

    def step(self):
        if self.conn is None:
            self.connect()
            return
        if self.selected is None:
            if not self.select(self.rnd.choice(self.names())):
                self.select("INBOX")
            return
        r = self.rnd.random()
        if r < CHURN:
            self.op_churn()
        elif self.readonly and r < 0.59:
            self.op_readonly()
        elif r < 0.26:
            self.op_cond_store()
        elif r < 0.30:
            self.op_store()
        elif r < 0.34:
            self.op_read()
        elif r < 0.43:
            self.op_copy()
        elif r < 0.51:
            self.op_move()
        elif r < 0.59:
            self.op_expunge()
        elif r < 0.70:
            self.op_append()
        elif r < 0.75:
            self.cmd("NOOP")
            self.catch_up()
        elif r < 0.79:
            self.op_idle()
        elif r < 0.82:
            self.op_changedsince()
        elif r < 0.86:
            self.op_seq()
        elif r < 0.94:
            if self.rnd.random() < 0.15:
                self.cmd("UNSELECT")
                self.selected = None
            # scratch folders often: they are the ones that churn
            names = self.names(but=self.selected)
            scratch = [n for n in names if n in SCRATCH]
            if scratch and self.rnd.random() < 0.5:
                names = scratch
            self.select(self.rnd.choice(names),
                        examine=self.rnd.random() < 0.2)
        else:
            self.disconnect(cut=self.rnd.random() < 0.5)
            self.world.count("reconnects")
            if self.rnd.random() < 0.7:
                self.connect()
        if self.conn is not None:
            self.catch_up()

    def cut_by_kill(self):
        """The connection broke because popgated was killed: what was in
        flight may or may not have committed. Reconnects once it is back."""
        w = self.world
        with w.lock:
            if self.inflight is not None:
                kind = self.inflight[0]
                if kind == "APPEND":
                    mk = self.inflight[1]
                    w.allowance[mk] = w.allowance.get(mk, 0) + 1
                elif kind == "STORE":
                    box, uids = self.inflight[1], self.inflight[2]
                    w.maybe_stored.update((box, u) for u in uids)
                else:
                    box, uids = self.inflight[1], self.inflight[2]
                    if kind == "MOVE":
                        w.maybe_moved.update((box, u) for u in uids)
                    for u in uids:
                        mk = w.marker.get((box, u))
                        if mk is not None:
                            w.allowance[mk] = w.allowance.get(mk, 0) + 1
            w.count("cut_by_kill")
        self.inflight = None
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.selected = None
        deadline = time.monotonic() + 60
        while True:
            if not w.killing.is_set():
                try:
                    self.connect()
                    return
                except MailboxDeleted:
                    # the folder it selected was deleted meanwhile
                    self.gone()
                except (EOFError, ConnectionError):
                    self.conn = None
            if time.monotonic() > deadline:
                self.fail("popgated did not come back")
            time.sleep(0.1)

    def gone(self):
        """BYE: another device deleted the selected mailbox. The command
        was not run; the device drops its model of that mailbox and
        reconnects at its next step."""
        with self.world.lock:
            self.world.bye_uvs.add(self.key(self.selected))
        self.world.count("byes")
        if self.selected in MAILBOXES:
            self.fail("BYE for %s" % self.selected)
        self.boxes.pop(self.selected)
        self.inflight = None
        self.conn.close()
        self.conn = None
        self.selected = None
        self.readonly = False

    def run(self, ops, deadline):
        try:
            for _ in range(ops):
                if time.monotonic() > deadline:
                    self.world.count("stopped_by_clock")
                    break
                epoch = self.world.kill_epoch
                try:
                    self.step()
                    self.inflight = None
                except MailboxDeleted:
                    self.gone()
                except (EOFError, ConnectionError):
                    if not self.world.killing.is_set() and \
                            epoch == self.world.kill_epoch:
                        raise
                    self.cut_by_kill()
        except StressFailure as e:
            self.world.error(str(e))
        except Exception:
            self.world.error("%s (seed %d): %s" % (
                self.name, self.seed, traceback.format_exc()))


class SyncStressTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempdir("popgate-stress-")
        self.ca = TestCA(self.tmp)
        self.dc = DovecotPop3(os.path.join(self.tmp, "dovecot"), self.ca)
        for _, login, _, _ in UPSTREAMS:
            self.dc.add_user(login, "pop-secret")
        self.dc.start()
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca, sections={
            "limits": "imap_connections_per_ip = 200\n"})
        self.gw.start()

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop(expect_rc=None)
        self.dc.stop()

    def tool(self, name, *args):
        return subprocess.run([os.path.join(pgtest.BUILD, "tests", "tools",
                                            name)] + list(args),
                              capture_output=True, timeout=120)

    # ---- upstream -------------------------------------------------------

    def feed(self, rnd, deadline, stop):
        """Drops STRESS_POP3 messages (of 100 bytes to 60 KB) upstream in
        small batches, each into one of the accounts' mailboxes and
        followed by a poll request for it."""
        try:
            i = 0
            while i < STRESS_POP3:
                if not stop.is_set() and time.monotonic() < deadline:
                    time.sleep(rnd.uniform(0.1, 0.8))
                k = min(STRESS_POP3 - i, rnd.randint(1, 5))
                account, login, _, _ = rnd.choice(UPSTREAMS)
                for _ in range(k):
                    i += 1
                    marker = "<pop-%d.%d@stress.test>" % (i, self.seed)
                    body = ("line %d of message %d\n" % (i, i)) * \
                        rnd.choice((1, 10, 100, 2500))
                    self.dc.add_message(login, (
                        "From: upstream@example.org\nTo: alice@example.net\n"
                        "Subject: pop %d\nMessage-ID: %s\n\n%s"
                        % (i, marker, body)).encode())
                    with self.world.lock:
                        self.world.created[marker] = 1
                        self.dropped[account].append(marker)
                self.poll_retry(account)
        except Exception:
            self.world.error("feeder: " + traceback.format_exc())

    def poll_retry(self, account):
        """Asks for a poll; waits while popgated is being restarted."""
        deadline = time.monotonic() + 60
        while True:
            epoch = self.world.kill_epoch
            if not self.world.killing.is_set():
                try:
                    self.gw.ok({"command": "poll", "user": IMAP_USER,
                                "account": account})
                    return
                except Exception:
                    # only the kill excuses a failed request
                    if not self.world.killing.is_set() and \
                            epoch == self.world.kill_epoch:
                        raise
            if time.monotonic() > deadline:
                raise AssertionError("control socket did not come back")
            time.sleep(0.1)

    def kill_and_restart(self, threads, t0):
        """SIGKILLs popgated in the middle of the run and starts it again
        on the same store; devices and the feeder carry on."""
        while any(t.is_alive() for t in threads):
            if self.world.counts.get("commands", 0) >= KILL_AFTER_COMMANDS or \
                    time.monotonic() - t0 >= KILL_AFTER_SECONDS:
                break
            time.sleep(0.05)
        else:
            return
        # no CREATE/RENAME/DELETE in flight: its outcome would be unknown
        with self.world.lock:
            self.world.churn_blocked = True
            while self.world.churn_inflight:
                self.world.churn_cv.wait()
        self.world.killing.set()
        self.gw.stop(sig=signal.SIGKILL, expect_rc=None)
        self.gw.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                self.gw.request({"command": "status"})
                break
            except (ConnectionError, FileNotFoundError):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        with self.world.lock:
            self.world.kill_epoch += 1
            self.world.count("kills")
            self.world.churn_blocked = False
        self.world.killing.clear()

    def account_states(self):
        st = self.gw.ok({"command": "status", "user": IMAP_USER})
        return {a["account"]: a["status"] for a in st["accounts"]}

    def wait_upstream_drained(self):
        """Polls until every message dropped is stored: in delete mode the
        Dovecot mailbox is empty; in keep mode every marker has been seen
        over IMAP (a probe client reads the account's folder: a message
        no device has seen cannot have left it). The counters of status
        cannot tell (they count what was fetched, not what is left)."""
        deadline = time.monotonic() + 90
        while True:
            states = self.account_states()
            if not any(states[a]["state"] in ("polling", "queued")
                       for a, _, _, _ in UPSTREAMS):
                left = []
                for account, login, folder, mode in UPSTREAMS:
                    if mode == "delete":
                        if self.dc.count(login) > 0:
                            left.append(account)
                        continue
                    probe = Device(self, self.world, "probe", 2)
                    probe.connect(folder)
                    probe.disconnect()
                    with self.world.lock:
                        known = set(self.world.marker.values())
                    if any(mk not in known
                           for mk in self.dropped[account]):
                        left.append(account)
                if not left:
                    return
                for account in left:
                    self.poll_retry(account)
            if time.monotonic() > deadline:
                self.fail("upstream not drained: %s\n%s"
                          % (states, self.gw.output()[-3000:]))
            time.sleep(0.3)

    # ---- the test -------------------------------------------------------

    def test_ten_devices_converge_while_mail_arrives(self):
        env = os.environ.get("POPGATE_STRESS_SEED")
        self.seed = int(env) if env else random.SystemRandom().randrange(
            1, 2 ** 31)
        master = random.Random(self.seed)
        seeds = [master.randrange(1, 2 ** 31) for _ in range(STRESS_CLIENTS)]
        feed_seed = master.randrange(1, 2 ** 31)
        sys.stdout.write("\n  stress seed %d (replay: POPGATE_STRESS_SEED=%d);"
                         " device seeds %s; feeder %d\n  "
                         % (self.seed, self.seed, seeds, feed_seed))
        sys.stdout.flush()
        self.world = World()

        r = self.gw.ok({"command": "user.add", "user": IMAP_USER,
                        "password": IMAP_PW})
        user_id = r["id"]
        setup = Device(self, self.world, "setup", 0)
        setup.connect("INBOX")
        for f in FOLDERS:
            setup.cmd("CREATE %s" % quote(f))
        for i in range(6):
            setup.op_append()
        # (the parent "Lists" of "Lists/Stress" may be a mailbox too)
        self.world.initial_names = setup.list_mailboxes(True)
        setup.disconnect()
        self.dropped = {}
        for account, login, folder, mode in UPSTREAMS:
            self.gw.ok({"command": "account.add", "user": IMAP_USER,
                        "host": "127.0.0.1", "port": self.dc.port,
                        "tls": "stls", "login": login,
                        "password": "pop-secret", "account": account,
                        "mode": mode, "interval": 10,
                        "folder": folder})
            self.dropped[account] = []

        devices = [Device(self, self.world, "d%d" % i, s)
                   for i, s in enumerate(seeds)]
        for d in devices:
            d.connect()
        t0 = time.monotonic()
        deadline = t0 + STRESS_SECONDS
        stop = threading.Event()
        feeder = threading.Thread(target=self.feed, args=(
            random.Random(feed_seed), deadline, stop))
        threads = [threading.Thread(target=d.run, args=(STRESS_OPS, deadline))
                   for d in devices]
        feeder.start()
        for t in threads:
            t.start()
        self.kill_and_restart(threads, t0)
        for t in threads:
            t.join()
        stop.set()
        feeder.join()
        random_phase = time.monotonic() - t0
        with self.world.lock:
            self.world.count("pop3_seen_live", sum(
                1 for mk in set(self.world.marker.values())
                if mk.startswith("<pop-")))
        if self.world.errors:
            self.fail("seed %d:\n%s" % (self.seed,
                                        "\n".join(self.world.errors)))

        self.wait_upstream_drained()
        self.final_checks(devices, user_id)
        sys.stdout.write("  %.1f s random phase, %s\n  "
                         % (random_phase, " ".join(
                             "%s=%d" % kv for kv in
                             sorted(self.world.counts.items()))))
        for what in ("conflicts", "copied", "moved", "expunged", "appended",
                     "qresync", "reconnects", "pop3_seen_live", "closes",
                     "seq_fetches", "seq_copies", "pipelined",
                     "readonly_refusals", "kills", "cut_by_kill",
                     "mirror_kept", "created", "renamed", "deleted",
                     "byes"):
            if self.world.counts.get(what, 0) > 0:
                continue
            # A run cut short by the clock (a slow or loaded machine, the
            # ThreadSanitizer build) may not reach every rare kind; what
            # it did is checked all the same. A run that did all its
            # operations must have covered every kind.
            if self.world.counts.get("stopped_by_clock", 0) > 0:
                sys.stdout.write("(not reached before the clock: %s) "
                                 % what)
                continue
            self.fail("the random phase never did %s" % what)

    def fresh_view(self):
        """Every mailbox as a new client sees it: box -> uid ->
        (flags, modseq, marker)."""
        view = {}
        c = Device(self, self.world, "fresh", 1)
        c.connect(MAILBOXES[0])
        # LIST shows exactly the mailboxes the CREATE/RENAME/DELETE OKs
        # leave
        live = sorted(c.list_mailboxes(True))
        self.assertEqual(set(live), self.world.expected_names(),
                         "seed %d: LIST" % self.seed)
        for box in live:
            if c.selected != box:
                self.assertTrue(c.select(box), box)
            b = c.boxes[box]
            if len(b.model) != (b.exists or 0):
                self.fail("%s: EXISTS %s, %d messages fetched"
                          % (box, b.exists, len(b.model)))
            with self.world.lock:
                view[box] = {u: (fl, ms, self.world.marker.get(
                    (b.uidvalidity, u))) for u, (fl, ms) in b.model.items()}
        self.status = {}
        for box in live:
            # the whole expunge history: a message no device knew (a
            # \Deleted copy that a CLOSE expunged silently) is only
            # reported here; and every UID below UIDNEXT is either
            # present or vanished
            c.select(box)
            _, untagged = c.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 "
                                "VANISHED)")
            gone = set()
            for resp, _ in untagged:
                m = RE_VANISHED.match(resp)
                if m:
                    gone.update(expand_set(m.group(2)))
            _, untagged = c.cmd("STATUS %s (MESSAGES UIDNEXT UIDVALIDITY "
                                "HIGHESTMODSEQ)" % quote(box))
            st = dict((k.decode(), int(v)) for k, v in re.findall(
                rb"(MESSAGES|UIDNEXT|UIDVALIDITY|HIGHESTMODSEQ) (\d+)",
                b"".join(r for r, _ in untagged)))
            self.status[box] = (st["UIDVALIDITY"], st["UIDNEXT"],
                                st["HIGHESTMODSEQ"], st["MESSAGES"])
            msgs = view[box]
            self.assertEqual(gone & set(msgs), set(), box)
            self.assertEqual(gone | set(msgs), set(range(1, st["UIDNEXT"])),
                             box)
            self.assertEqual(st["MESSAGES"], len(msgs), box)
            self.assertGreater(st["UIDNEXT"], max(msgs, default=0), box)
            self.assertGreaterEqual(st["HIGHESTMODSEQ"], max(
                [ms for _, ms, _ in msgs.values()], default=0), box)
        c.disconnect()
        return view

    def final_checks(self, devices, user_id):
        w = self.world
        view = self.fresh_view()
        # every device resyncs every mailbox with what it learned
        for d in devices:
            if d.conn is not None and d.conn_epoch != w.kill_epoch:
                # a device that ended its run before the kill
                d.conn.close()
                d.conn = None
            try:
                if d.conn is not None and d.selected is not None and \
                        d.rnd.random() < 0.5:
                    try:
                        d.cmd("NOOP")
                        d.catch_up()
                        # Another device may have renamed the selected
                        # mailbox (a selected session is told nothing of
                        # it) and reused its name for another one: find
                        # it by UIDVALIDITY, never shared by two.
                        uv = d.boxes[d.selected].uidvalidity \
                            if d.selected in d.boxes else None
                        now = [x for x in view if uv is not None and
                               self.status[x][0] == uv]
                        if now:
                            self.compare(d, d.selected, view, now[0])
                    except MailboxDeleted:
                        d.gone()
                    except EOFError:
                        self.fail("%s: EOF at rest\n%s" % (
                            d.name, self.gw.output()[-6000:]))
                elif d.conn is not None:
                    d.disconnect()
                if d.conn is None:
                    d.connect(MAILBOXES[0])
                # each device learns the mailboxes from LIST (with or
                # without UIDVALIDITYs) and resyncs each one it knows
                listed = d.list_mailboxes(d.rnd.random() < 0.5)
                self.assertEqual(listed, set(view), d.name)
                for box in sorted(view):
                    if d.selected != box:
                        self.assertTrue(d.select(box), box)
                    self.compare(d, box, view)
                d.disconnect()
            except StressFailure as e:
                self.fail(str(e))
        self.assertEqual(w.errors, [], "seed %d" % self.seed)
        self.assertEqual(view, self.fresh_view(), "view changed at rest")

        self.check_mirror(view)

        # the store, read offline, holds exactly that
        self.gw.stop()
        r = self.tool("store_check", self.gw.data)
        self.assertEqual(r.returncode, 0, r.stdout.decode() +
                         r.stderr.decode())
        accts = ["u%d:%s" % (user_id, a) for a, _, _, _ in UPSTREAMS]
        r = self.tool("store_dump", self.gw.data, IMAP_USER, *accts)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        store = {b: {} for b in view}
        ledger = []
        for line in r.stdout.decode().splitlines():
            f = line.split("\t")
            if f[0] == "mailbox" and f[1] in view:
                self.assertIn(int(f[2]), w.names_seen[f[1]])
                self.assertEqual(tuple(int(x) for x in f[2:6]),
                                 self.status[f[1]], "STATUS " + line)
            elif f[0] == "msg" and f[1] in store:
                flags = frozenset(f[4].split())
                store[f[1]][int(f[2])] = (flags, int(f[3]), f[5])
            elif f[0] == "msg":
                self.fail("message outside the test's mailboxes: " + line)
            elif f[0] == "ledger":
                ledger.append(f)
        self.assertEqual(store, view, "store differs from the IMAP view")

        # the POP3 side: each message fetched once, deleted upstream
        # (delete mode), kept (keep mode), deleted once gone (mirror)
        for (account, login, _, mode), acct in zip(UPSTREAMS, accts):
            left = {"delete": 0, "keep": len(self.dropped[account]),
                    "mirror": self.dc.count(login)}[mode]
            self.assertEqual(self.dc.count(login), left)
            mine = [f for f in ledger if f[1] == acct]
            self.assertEqual(len(mine), len(self.dropped[account]), mine)
            self.assertEqual(len({f[2] for f in mine}), len(mine))
            unmarked = len([f for f in mine if f[5] == "0"])
            if unmarked > left and mode != "keep" and \
                    self.world.counts.get("kills"):
                # the kill came after Dovecot committed a QUIT's DELEs
                # and before popgated marked them in its ledger: the
                # messages are gone upstream (checked above), the ledger
                # does not know (pop3-fetch.c: "a lost QUIT answer"); a
                # later poll no longer lists them, so nothing is lost or
                # fetched twice
                self.world.count("ledger_unmarked_after_kill",
                                 unmarked - left)
                unmarked = left
            self.assertEqual(unmarked, left, mine)
        self.assertEqual(len(ledger), STRESS_POP3)

        # mailbox churn: every mailbox has one UIDVALIDITY for ever (a
        # RENAME keeps it, only a new mailbox gets a new one); each
        # DELETE OK removed one mailbox; BYE only for deleted ones
        uv_of = {box: st[0] for box, st in self.status.items()}
        live = set(uv_of.values())
        self.assertEqual(len(live), len(view))
        with w.lock:
            every_uv = set().union(*w.names_seen.values())
            made = len(w.initial_names) + w.counts.get("created", 0)
            self.assertLessEqual(len(every_uv), made, w.names_seen)
            self.assertEqual(w.counts.get("deleted", 0), made - len(view))
            self.assertEqual(w.bye_uvs & live, set())

        # no loss, no duplication; a message in a deleted mailbox counts
        # as expunged (every message in a scratch folder has its place
        # from an APPENDUID or COPYUID, before the DELETE or refused)
        with w.lock:
            final = {}
            for box, msgs in view.items():
                for uid, (_, _, mk) in msgs.items():
                    self.assertIsNotNone(mk, "%s/%d without marker"
                                         % (box, uid))
                    self.assertNotIn((uv_of[box], uid), w.vanished,
                                     "%s/%d vanished and came back"
                                     % (box, uid))
                    final[mk] = final.get(mk, 0) + 1
            expected = dict(w.created)
            for (sbox, su), _ in w.copies:
                mk = w.marker[(sbox, su)]
                expected[mk] = expected.get(mk, 0) + 1
            for key in w.vanished - w.move_src:
                # a UID no device ever knew the marker of cannot have been
                # expunged by a device (they expunge only known ones): if
                # it held a message, that marker's count shows it
                mk = w.marker.get(key)
                if mk is not None:
                    expected[mk] = expected.get(mk, 0) - 1
            for key, mk in w.marker.items():
                if key[0] not in live and key not in w.vanished:
                    expected[mk] = expected.get(mk, 0) - 1
                    w.count("deleted_with_mailbox")
            expected = {k: v for k, v in expected.items() if v}

            def fits(mk):
                lo = expected.get(mk, 0)
                return lo <= final.get(mk, 0) <= lo + w.allowance.get(mk, 0)
            if not all(fits(mk) for mk in set(final) | set(expected)):
                bad = []
                for mk in sorted(set(final) | set(expected)):
                    if fits(mk):
                        continue
                    where = sorted(k for k, v in w.marker.items() if v == mk)
                    bad.append("%s: %d held, %d expected (+%d uncertain); "
                               "created %d, "
                               "copies %s, vanished %s, moved %s, now %s"
                               % (mk, final.get(mk, 0), expected.get(mk, 0),
                                  w.allowance.get(mk, 0),
                                  w.created.get(mk, 0),
                                  [c for c in w.copies
                                   if w.marker[c[0]] == mk],
                                  [k for k in where if k in w.vanished],
                                  [k for k in where if k in w.move_src],
                                  [(uv_of[b], u) for b, msgs in view.items()
                                   for u, v in msgs.items() if v[2] == mk]))
                    bad.append("  transfers: %s" % [
                        t for t in w.transfers if t[2] in where])
                self.fail("seed %d: markers:\n%s"
                          % (self.seed, "\n".join(bad[:10])))
            # every (box, uid) ever known exists unless it vanished
            box_of = {uv: box for box, uv in uv_of.items()}
            for key, mk in w.marker.items():
                if key not in w.vanished and key[0] in live:
                    box = box_of[key[0]]
                    self.assertIn(key[1], view[box], "%s/%d lost" % key)
                    self.assertEqual(view[box][key[1]][2], mk)
            # every state seen of each message, by MODSEQ
            hist = {}
            for (box, uid, ms), (flags, _, _) in w.states.items():
                hist.setdefault((box, uid), {})[ms] = flags
            # an expunged message had \Deleted (when it was ever seen)
            for key in w.vanished - w.move_src - w.maybe_moved - \
                    w.maybe_stored:
                seen = list(hist.get(key, {}).values())
                if seen:
                    self.assertTrue(any("\\Deleted" in fl for fl in seen),
                                    "%s/%d expunged without \\Deleted: %s"
                                    % (key + (seen,)))
            # MOVE sources all vanished
            self.assertEqual(w.move_src - w.vanished, set())
            # the final state is the newest one seen
            for box, msgs in view.items():
                for uid, (flags, ms, _) in msgs.items():
                    h = hist[(uv_of[box], uid)]
                    self.assertEqual((max(h), h[max(h)]), (ms, flags),
                                     "%s/%d" % (box, uid))
            # a conditional STORE that won had nothing in between
            for box, uid, since, after in w.cond_ok:
                between = [ms for ms in hist.get((box, uid), ())
                           if since < ms < after]
                self.assertEqual(between, [], "UNCHANGEDSINCE %d on %s/%d "
                                 "succeeded at %d" % (since, box, uid, after))
            # one that failed was stale
            for box, uid, since in w.cond_failed:
                later = [ms for ms in hist.get((box, uid), ()) if ms > since]
                if (box, uid) not in w.vanished and box in live:
                    self.assertTrue(later, "MODIFIED %s/%d at %d, never "
                                    "changed" % (box, uid, since))
            self.world.count("states", len(w.states))

        # after a restart (MODSEQs and the expunge history come from
        # disk) devices resync to the same state
        self.gw.start()
        for d in devices[:3]:
            d.connect(MAILBOXES[-1])
            for box in sorted(view):
                if d.selected != box:
                    self.assertTrue(d.select(box), box)
                self.compare(d, box, view)
            d.disconnect()
        # keep mode: a poll lists every message again and fetches none
        # (status's totals are kept across restarts; since_start is this
        # run's, and polls counts every poll ever)
        account = [u[0] for u in UPSTREAMS if u[3] == "keep"][0]
        polls = self.account_states()[account]["polls"]
        self.gw.ok({"command": "poll", "user": IMAP_USER,
                    "account": account})
        deadline = time.monotonic() + 60
        while True:
            st = self.account_states()[account]
            if st["polls"] > polls and st["state"] not in ("polling",
                                                           "queued"):
                break
            self.assertLess(time.monotonic(), deadline, st)
            self.assertIsNone(st["last_error"], st)
            time.sleep(0.2)
        self.assertEqual(st["since_start"]["messages_fetched"], 0, st)
        self.assertEqual(self.fresh_view(), view, "after a restart")
        self.gw.stop()

    def upstream_markers(self, login):
        out = []
        for raw in self.dc.message_files(login):
            m = RE_MARKER.search(raw)
            out.append(m.group(1).decode() if m else None)
        return sorted(out, key=str)

    def check_mirror(self, view):
        """Mirror mode: once a poll has run after the last change, the
        upstream mailbox holds exactly the account's messages the user
        still has in some mailbox (moved and copied ones included)."""
        for account, login, _, mode in UPSTREAMS:
            if mode != "mirror":
                continue
            mine = set(self.dropped[account])
            present = sorted({mk for msgs in view.values()
                              for _, _, mk in msgs.values() if mk in mine})
            deadline = time.monotonic() + 60
            while True:
                before = self.account_states()[account]["messages_deleted"]
                self.poll_retry(account)
                while self.account_states()[account]["state"] in (
                        "polling", "queued"):
                    time.sleep(0.1)
                up = self.upstream_markers(login)
                if up == present:
                    break
                # a poll that deleted nothing and left it different:
                # mirror deleted a message the user still has (or kept
                # one the user expunged everywhere)
                if self.account_states()[account]["messages_deleted"] == \
                        before and len(up) <= len(present):
                    break
                self.assertLess(time.monotonic(), deadline)
            self.assertEqual(up, present, "mirror upstream of %s" % account)
            self.world.count("mirror_kept", len(present))

    def compare(self, d, box, view, view_box=None):
        """The device's model of box equals the fresh view of view_box
        (the same mailbox, under its current name; default box)."""
        b = d.boxes[box]
        mine = {u: (fl, ms) for u, (fl, ms) in b.model.items()}
        theirs = {u: (fl, ms) for u, (fl, ms, _) in
                  view[view_box or box].items()}
        if mine != theirs:
            extra = sorted(set(mine) - set(theirs))
            missing = sorted(set(theirs) - set(mine))
            diff = sorted(u for u in set(mine) & set(theirs)
                          if mine[u] != theirs[u])
            self.fail("%s (seed %d) %s (now %s): model differs: extra %s "
                      "missing %s differ %s; EXISTS %s fetched_upto %d "
                      "HIGHESTMODSEQ %s"
                      % (d.name, d.seed, box, view_box or box, extra, missing,
                         [(u, mine[u], theirs[u]) for u in diff[:5]],
                         b.exists, b.fetched_upto, b.hms))


if __name__ == "__main__":
    unittest.main()
