"""The multi-session behaviour docs/sync.md says popgate shares with
Dovecot, checked side by side: the same script runs against popgate and
against a real Dovecot 2.3 imapd (Debian's, maildir, on loopback) and what
each session observes must be equal: which session sees a delivery
\\Recent, RECENT counts, SEARCH RECENT/NEW/OLD, STATUS RECENT, STORE of
\\Recent refused, FLAGS/PERMANENTFLAGS announced for a new keyword, SEARCH
MODSEQ with entry names, and BYE for a session whose mailbox was deleted.
Texts and MODSEQ values differ between the servers; the observations are
the facts, not the bytes."""
import os
import re
import socket

from imapd import ImapTestCase, RawClient, USER, PASSWORD
from pgtest import Proc, sanitizer_report, wait_port
from pgtest.dovecot import DOVECOT, DovecotPop3

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


class DovecotImap(DovecotPop3):
    """Dovecot's imapd on self.port (plain, LOGIN allowed on loopback)."""

    def _write_conf(self, extra=""):
        d = self.dir
        with open(self.conf, "w") as f:
            f.write("""
base_dir = {d}/run
state_dir = {d}/state
instance_name = popgate-test-imap-{port}
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
mail_location = maildir:{d}/mail/%u
# IDLE learns of changes from inotify; this is the fallback's period
mailbox_idle_check_interval = 1 secs
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-urlauth-login {{
  inet_listener imap-urlauth {{
    port = 0
  }}
}}
""".format(d=d, port=self.port, uid=self.uid, gid=self.gid,
                passwd=self.passwd))

    def start(self):
        self.proc = Proc([DOVECOT, "-F", "-c", self.conf],
                         log_path=os.path.join(self.dir, "dovecot.stdout"))
        try:
            wait_port(self.port, 15)
        except TimeoutError:
            raise RuntimeError("dovecot did not start: %s %s" % (
                self.proc.output()[-2000:], self.log_text()[-2000:]))
        return self


class Session:
    """A logged-in line-level session with readable helpers."""

    def __init__(self, test, port):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.r = RawClient(sock)
        test.clients.append(self.r)
        self.test = test
        self.n = 0
        self.r.readline()
        self.ok("LOGIN %s %s" % (USER, PASSWORD))

    def cmd(self, text):
        self.n += 1
        tag = "t%d" % self.n
        return tag, self.r.cmd(tag, text)

    def ok(self, text):
        tag, lines = self.cmd(text)
        self.test.assertTrue(lines and lines[-1].startswith(
            tag.encode() + b" OK"), (text, lines))
        return lines[:-1]

    def status(self, text):
        """OK / NO / BAD of a command."""
        tag, lines = self.cmd(text)
        return lines[-1].split()[1].decode() if lines else "EOF"

    def append(self, box, i, flags=""):
        body = MSG % (i, i)
        self.n += 1
        tag = "t%d" % self.n
        self.r.send("%s APPEND %s %s{%d+}\r\n" % (tag, box, flags,
                                                   len(body)))
        self.r.send(body + b"\r\n")
        lines = self.r.read_until_tag(tag)
        self.test.assertTrue(lines[-1].startswith(tag.encode() + b" OK"),
                             lines)
        return lines[:-1]


def recent_count(lines):
    got = [int(x.split()[1]) for x in lines if x.endswith(b" RECENT\r\n")]
    return got[-1] if got else None


def recent_seqs(s):
    out = []
    for x in s.ok("FETCH 1:* (FLAGS)"):
        m = re.match(rb"^\* (\d+) FETCH \(.*FLAGS \(([^)]*)\)", x)
        if m and b"\\Recent" in m.group(2).split():
            out.append(int(m.group(1)))
    return sorted(set(out))


def search(s, crit):
    for x in s.ok("SEARCH " + crit):
        if x.startswith(b"* SEARCH"):
            return [int(v) for v in re.sub(rb"\(MODSEQ \d+\)", b"",
                                           x).split()[2:]]
    raise AssertionError("no SEARCH for " + crit)


def status_recent(s, box):
    for x in s.ok("STATUS %s (RECENT)" % box):
        m = re.search(rb"RECENT (\d+)", x)
        if m:
            return int(m.group(1))
    raise AssertionError("no STATUS")


def flags_announced(lines):
    """The keyword lists of untagged FLAGS responses in lines."""
    out = []
    for x in lines:
        m = re.match(rb"^\* FLAGS \(([^)]*)\)\r\n$", x)
        if m:
            out.append(sorted(f for f in m.group(1).split()
                              if not f.startswith(b"\\")))
    return out


def scenario(test, port):
    """Runs the script against the server on port; returns what the
    sessions observed."""
    obs = {}
    a = Session(test, port)
    a.ok("CREATE Box")
    for i in range(2):
        a.append("Box", i)
    # EXAMINE sees the waiting messages \Recent without claiming them
    e = Session(test, port)
    obs["examine_recent"] = recent_count(e.ok("EXAMINE Box"))
    obs["examine_seqs"] = recent_seqs(e)
    obs["status_before"] = status_recent(a, "Box")
    s1 = Session(test, port)
    # CONDSTORE on from here: Dovecot starts keeping per-message MODSEQs
    # only then (RFC 7162 3.1.2 allows it)
    s1.ok("ENABLE CONDSTORE")
    obs["s1_select_recent"] = recent_count(s1.ok("SELECT Box"))
    obs["status_after"] = status_recent(a, "Box")
    s2 = Session(test, port)
    obs["s2_select_recent"] = recent_count(s2.ok("SELECT Box"))
    # one delivery, two selected sessions: s2 is told first
    a.append("Box", 2)
    obs["status_waiting"] = status_recent(a, "Box")
    obs["s2_noop_recent"] = recent_count(s2.ok("NOOP"))
    obs["s1_noop_recent"] = recent_count(s1.ok("NOOP"))
    obs["s1_seqs"] = recent_seqs(s1)
    obs["s2_seqs"] = recent_seqs(s2)
    obs["s2_search"] = [search(s2, c) for c in
                        ("RECENT", "NEW", "OLD", "NOT RECENT")]
    s2.ok(r"STORE 3 +FLAGS (\Seen)")
    obs["s2_new_after_seen"] = search(s2, "NEW")
    obs["store_recent"] = [s2.status(r"STORE 1 +FLAGS (\Recent)"),
                           s2.status(r"STORE 1 -FLAGS (\Recent)")]
    # a new keyword, announced to the maker and the others
    obs["kw_maker"] = flags_announced(s1.ok("STORE 1 +FLAGS (newkw)"))
    obs["kw_other"] = flags_announced(s2.ok("NOOP"))
    obs["kw_examine"] = flags_announced(e.ok("NOOP"))
    obs["kw_again"] = flags_announced(s2.ok("NOOP"))
    # SEARCH MODSEQ with entry names: the message MODSEQ is compared
    lines = s1.ok("FETCH 1:* (MODSEQ)")
    ms = sorted(set(int(m) for m in re.findall(rb"MODSEQ \((\d+)\)",
                                               b"".join(lines))))
    obs["modseq"] = [[search(s1, "MODSEQ %s%d" % (entry, v))
                      for entry in ("", r'"/flags/\\draft" all ',
                                    r'"/flags/\\seen" priv ',
                                    '"/flags/newkw" shared ')]
                     for v in ms]
    obs["modseq_bad"] = [s1.status('SEARCH MODSEQ %s 1' % entry) for entry in
                         (r'"/flags/\\Recent" all', r'"/flags/x" bogus')]
    # the mailbox is deleted under s1 (polling) and an IDLE session
    s2.r.send("i IDLE\r\n")
    s2.r.readline()
    a.ok("DELETE Box")
    line = s2.r.readline(timeout=10)
    obs["idle_bye"] = line.startswith(b"* BYE") and s2.r.closed()
    tag, lines = s1.cmd("NOOP")
    obs["noop_bye"] = (len(lines) == 1 and lines[0].startswith(b"* BYE") and
                       s1.r.closed())
    return obs


class ImapDovecotParityTest(ImapTestCase):

    def test_same_observations_as_dovecot(self):
        dc = DovecotImap(os.path.join(self.tmp, "dovecot"), self.ca)
        dc.add_user(USER, PASSWORD)
        dc.start()
        try:
            theirs = scenario(self, dc.port)
        finally:
            dc.stop()
            rep = sanitizer_report(dc.log_text())
        ours = scenario(self, self.srv.plain_port)
        self.assertIsNone(rep)
        # what both must show (also pins the values, not only equality)
        self.assertEqual(ours["examine_recent"], 2)
        self.assertEqual(ours["s2_noop_recent"], 1)
        self.assertEqual(ours["s1_seqs"], [1, 2])
        self.assertEqual(ours["s2_seqs"], [3])
        self.assertTrue(ours["idle_bye"] and ours["noop_bye"], ours)
        for k in sorted(theirs):
            self.assertEqual(ours[k], theirs[k],
                             "%s: popgate %r, dovecot %r" % (k, ours[k],
                                                             theirs[k]))
        self.assertEqual(sorted(ours), sorted(theirs))
