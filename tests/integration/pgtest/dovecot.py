"""A real Dovecot POP3 server for the POP3 upstream tests and benchmark.

DovecotPop3(directory, ca) writes a config into directory (its own
base_dir, state and log files, a passwd-file user database, maildirs under
directory/mail/<user>), starts `dovecot -F` in the foreground on two free
loopback ports (pop3 with STLS, and pop3s) with a certificate from the
test CA, and stops it by PID.

    d = DovecotPop3(tmp, ca); d.start()
    d.add_user("alice", "secret")
    d.add_message("alice", b"Subject: x\\n\\nbody\\n")
    ... d.port (pop3 + STLS), d.ports (pop3s)
    d.stop()

Messages are written as Maildir files with LF line endings (as Dovecot's
own LDA writes them); over POP3 Dovecot sends them with CRLF, so
wire_bytes(raw) gives what a client receives.
"""
import os
import pwd
import grp
import socket
import time

from . import Proc, free_port, wait_port

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER = "nobody"
MAIL_GROUP = "nogroup"


def wire_bytes(raw):
    """What a POP3 client receives (unstuffed) for a Maildir file."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class DovecotPop3:
    def __init__(self, directory, ca, host_cert=None,
                 mechanisms="plain login cram-md5", oauth2=None):
        """mechanisms: Dovecot's auth_mechanisms. oauth2: a dict of
        dovecot-oauth2.conf.ext settings; adds an oauth2 passdb for the
        XOAUTH2 and OAUTHBEARER mechanisms after the passwd file."""
        self.mechanisms = mechanisms
        self.oauth2 = oauth2
        self.uidl_format = "%08Xu%08Xv"
        # settings kept across restarts (e.g. pop3_logout_format)
        self.extra_conf = ""
        self.dir = directory
        self.ca = ca
        self.port = free_port()
        self.ports = free_port()
        while self.ports == self.port:
            # (two probes in a row can get the same ephemeral port)
            self.ports = free_port()
        self.proc = None
        self.users = {}
        self._seq = 0
        os.makedirs(os.path.join(directory, "run"), exist_ok=True)
        # Dovecot's auth and mail processes run as other users: they need
        # to traverse down to the passwd file and the maildirs
        p = os.path.abspath(directory)
        while p not in ("/", "/tmp"):
            st = os.stat(p)
            os.chmod(p, (st.st_mode & 0o7777) | 0o711)
            p = os.path.dirname(p)
        os.makedirs(os.path.join(directory, "state"), exist_ok=True)
        os.makedirs(os.path.join(directory, "mail"), exist_ok=True)
        self.uid = pwd.getpwnam(MAIL_USER).pw_uid
        self.gid = grp.getgrnam(MAIL_GROUP).gr_gid
        if host_cert is None:
            host_cert = ca.cert("dovecot-pop3", ("localhost", "127.0.0.1"))
        self.cert, self.key = host_cert
        self.passwd = os.path.join(directory, "passwd")
        open(self.passwd, "w").close()
        self.conf = os.path.join(directory, "dovecot.conf")
        self.log = os.path.join(directory, "dovecot.log")
        self._write_conf()

    def _write_conf(self, extra=""):
        d = self.dir
        oauth_passdb = ""
        if self.oauth2:
            ext = os.path.join(d, "dovecot-oauth2.conf.ext")
            with open(ext, "w") as f:
                for k, v in self.oauth2.items():
                    f.write("%s = %s\n" % (k, v))
            oauth_passdb = ("passdb {\n  driver = oauth2\n"
                            "  mechanisms = xoauth2 oauthbearer\n"
                            "  args = %s\n}\n" % ext)
        with open(self.conf, "w") as f:
            f.write("""
base_dir = {d}/run
state_dir = {d}/state
instance_name = popgate-test-pop3-{port}
log_path = {d}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = {mechanisms}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
{oauth_passdb}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/mail/%u
}}
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = {uidl_format}
postmaster_address = postmaster@example.org
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {ports}
    ssl = yes
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
{extra}
""".format(d=d, port=self.port, ports=self.ports, cert=self.cert,
                key=self.key, uid=self.uid, gid=self.gid, passwd=self.passwd,
                extra=self.extra_conf + extra, mechanisms=self.mechanisms,
                uidl_format=self.uidl_format,
                oauth_passdb=oauth_passdb))

    def start(self):
        self.proc = Proc([DOVECOT, "-F", "-c", self.conf],
                         log_path=os.path.join(self.dir, "dovecot.stdout"))
        try:
            wait_port(self.port, 15)
            wait_port(self.ports, 15)
        except TimeoutError:
            raise RuntimeError("dovecot did not start: %s %s" % (
                self.proc.output()[-2000:], self.log_text()[-2000:]))
        return self

    def restart_with_uidl_format(self, fmt):
        """Stops the server, gives it another pop3_uidl_format (every
        UIDL changes: a server renumbering its mailbox) and starts it
        again on the same ports."""
        self.stop()
        self.uidl_format = fmt
        self._write_conf()
        self.start()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def log_text(self):
        try:
            with open(self.log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def maildir(self, user):
        return os.path.join(self.dir, "mail", user)

    def add_user(self, user, password):
        self.users[user] = password
        with open(self.passwd, "a") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (user, password))
        md = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        self._chown(md)

    def set_password(self, user, password):
        """Changes a user's password (passwd-file is read again when it
        changes; no auth cache)."""
        self.users[user] = password
        tmp = self.passwd + ".new"
        with open(tmp, "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        os.chmod(tmp, os.stat(self.passwd).st_mode)
        os.rename(tmp, self.passwd)
        # Dovecot looks at the file again at most once per second of
        # its clock: the next lookup must come in a later second
        time.sleep(1.1)

    def _chown(self, path):
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for n in files:
                os.chown(os.path.join(root, n), self.uid, self.gid)

    def add_message(self, user, raw):
        """Adds one message to user's INBOX; returns its file name."""
        self._seq += 1
        name = "%d.M%dP%d.popgate-test" % (int(time.time()), self._seq,
                                           os.getpid())
        path = os.path.join(self.maildir(user), "new", name)
        tmp = os.path.join(self.maildir(user), "tmp", name)
        with open(tmp, "wb") as f:
            f.write(raw)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, path)
        return name

    def add_messages(self, user, raws):
        return [self.add_message(user, r) for r in raws]

    def message_files(self, user):
        """Raw bytes of every message still in user's maildir."""
        out = []
        md = self.maildir(user)
        for sub in ("new", "cur"):
            p = os.path.join(md, sub)
            for n in sorted(os.listdir(p)):
                with open(os.path.join(p, n), "rb") as f:
                    out.append(f.read())
        return out

    def count(self, user):
        md = self.maildir(user)
        return sum(len(os.listdir(os.path.join(md, s))) for s in ("new", "cur"))


def make_message(i, size=2000, extra_headers=b""):
    """A plausible message of about size bytes, LF line endings, with
    lines starting with '.' so dot-stuffing is exercised."""
    head = (b"Received: from mx.example.org by pop.example.org; "
            b"Tue, 3 Nov 2026 10:%02d:00 +0100\n"
            b"From: Sender %d <sender%d@example.org>\n"
            b"To: alice@example.net\n"
            b"Subject: test message %d\n"
            b"Date: Tue, 3 Nov 2026 09:00:00 +0100\n"
            b"Message-ID: <%d.popgate@example.org>\n" % (i % 60, i, i, i, i))
    head += extra_headers + b"\n"
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit %06d.\n" % i
    body = []
    n = 0
    k = 0
    while n < max(0, size - len(head)):
        if k % 17 == 5:
            body.append(b"." + line)
        else:
            body.append(line)
        n += len(body[-1])
        k += 1
    return head + b"".join(body)
