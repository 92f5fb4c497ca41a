"""UTF8=ACCEPT (RFC 6855): after ENABLE, mailbox names are UTF-8 both
ways (mUTF-7 for a session that did not enable it), APPEND takes
"UTF8 (~{n})", raw UTF-8 headers are served and searched; and mutt,
run in tmux as a user would, enables it and shows a UTF-8 folder and
subject."""
import os
import subprocess
import time

from imapd import ImapTestCase, USER, PASSWORD, wait_for

NAME = "Bücher/Café"
NAME_UTF7 = "B&APw-cher/Caf&AOk-"
MSG = ("From: Zoë <zoe@example.org>\r\nTo: alice@example.com\r\n"
       "Subject: Grüße aus Köln\r\nDate: Tue, 03 Jan 2023 10:00:00 +0000\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "\r\nHallo, schöne Grüße.\r\n").encode()


class Utf8AcceptTest(ImapTestCase):

    def login(self, enable):
        r = self.raw()
        self.assertIn(b"UTF8=ACCEPT", r.greeting)
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        if enable:
            lines = r.cmd("e", "ENABLE UTF8=ACCEPT")
            self.assertEqual(lines[0], b"* ENABLED UTF8=ACCEPT\r\n")
            # once only
            lines = r.cmd("e", "ENABLE UTF8=ACCEPT")
            self.assertEqual(lines[0], b"* ENABLED\r\n")
        return r

    def ok(self, r, text):
        if isinstance(text, str):
            text = text.encode()
        r.send(b"t " + text + b"\r\n")
        lines = r.read_until_tag("t")
        self.assertTrue(lines[-1].startswith(b"t OK"), (text, lines))
        return lines[:-1]

    def test_names_both_ways(self):
        u = self.login(True)
        self.ok(u, 'CREATE "%s"' % NAME)
        lines = self.ok(u, 'LIST "" "B*"')
        self.assertIn(('* LIST (\\HasChildren) "/" "Bücher"\r\n').encode(),
                      lines)
        self.assertIn(('* LIST (\\HasNoChildren) "/" "%s"\r\n' % NAME)
                      .encode(), lines)
        # '&' is just '&' after ENABLE: the mUTF-7 spelling is another name
        lines = self.ok(u, 'LIST "" "%s"' % NAME_UTF7)
        self.assertEqual(lines, [])
        self.ok(u, 'CREATE "R&D"')
        # a session that did not enable it sees and uses mUTF-7
        p = self.login(False)
        lines = self.ok(p, 'LIST "" "*"')
        joined = b"".join(lines)
        self.assertIn(NAME_UTF7.encode(), joined)
        self.assertIn(b' R&-D\r\n', joined)
        self.assertNotIn("Bücher".encode(), joined)
        lines = self.ok(p, "STATUS %s (MESSAGES)" % NAME_UTF7)
        self.assertEqual(lines, [("* STATUS %s (MESSAGES 0)\r\n" % NAME_UTF7)
                                 .encode()])
        # raw 8-bit in a name is refused without UTF8=ACCEPT
        p.send('n SELECT "%s"\r\n' % NAME)
        lines = p.read_until_tag("n")
        self.assertTrue(lines[-1].startswith(b"n NO"), lines)
        # invalid UTF-8 is refused with it
        u.send(b'n CREATE "bad\xff\xfename"\r\n')
        lines = u.read_until_tag("n")
        self.assertTrue(lines[-1].startswith(b"n NO"), lines)
        lines = self.ok(u, 'STATUS "%s" (MESSAGES)' % NAME)
        self.assertEqual(lines, [('* STATUS "%s" (MESSAGES 0)\r\n' % NAME)
                                 .encode()])

    def test_append_utf8_and_search(self):
        u = self.login(True)
        self.ok(u, 'CREATE "%s"' % NAME)
        u.send(('a APPEND "%s" UTF8 (~{%d+}\r\n' % (NAME, len(MSG)))
               .encode())
        u.send(MSG + b")\r\n")
        lines = u.read_until_tag("a")
        self.assertTrue(lines[-1].startswith(b"a OK [APPENDUID"), lines)
        self.ok(u, 'SELECT "%s"' % NAME)
        lines = self.ok(u, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertIn("Grüße aus Köln".encode(), b"".join(lines))
        lines = self.ok(u, 'SEARCH CHARSET UTF-8 SUBJECT "grüße"')
        self.assertIn(b"* SEARCH 1\r\n", lines)
        lines = self.ok(u, 'SEARCH FROM "zoë"')
        self.assertIn(b"* SEARCH 1\r\n", lines)
        lines = self.ok(u, 'SEARCH BODY "schöne"')
        self.assertIn(b"* SEARCH 1\r\n", lines)
        # the forms that are not RFC 6855's
        for bad in ('APPEND INBOX UTF8 {3+}\r\nabc', 'APPEND INBOX UTF8',
                    'APPEND INBOX UTF8 ({3+}\r\nabc)'):
            u.send(("b " + bad + "\r\n").encode())
            lines = u.read_until_tag("b")
            self.assertTrue(lines[-1].startswith(b"b BAD"), (bad, lines))
        # without ENABLE, APPEND UTF8 is refused
        p = self.login(False)
        p.send(b"c APPEND INBOX UTF8 (~{3+}\r\nabc)\r\n")
        lines = p.read_until_tag("c")
        self.assertTrue(lines[-1].startswith(b"c BAD"), lines)


class MuttUtf8Test(ImapTestCase):
    """mutt 2.2 (Debian's) sends ENABLE UTF8=ACCEPT when the server offers
    it and its charset is UTF-8: run in tmux, it opens a UTF-8 folder and
    shows a message whose header is raw UTF-8."""

    def pane(self, sock):
        p = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p", "-t",
                            "mutt"], capture_output=True, timeout=30)
        return p.stdout.decode("utf-8", "replace")

    def test_mutt_in_tmux(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        r.cmd("e", "ENABLE UTF8=ACCEPT")
        r.send(('c CREATE "%s"\r\n' % NAME).encode())
        self.assertTrue(r.read_until_tag("c")[-1].startswith(b"c OK"))
        r.send(('a APPEND "%s" UTF8 (~{%d+}\r\n' % (NAME, len(MSG)))
               .encode())
        r.send(MSG + b")\r\n")
        self.assertTrue(r.read_until_tag("a")[-1].startswith(b"a OK"))
        home = os.path.join(self.tmp, "mutthome")
        os.makedirs(home)
        rc = os.path.join(home, "muttrc")
        with open(rc, "w", encoding="utf-8") as f:
            f.write('set charset="utf-8"\nset imap_user="%s"\n'
                    'set imap_pass="%s"\nset ssl_starttls=no\n'
                    'set ssl_force_tls=no\nset imap_passive=no\n'
                    'set folder="imap://127.0.0.1:%d/"\n'
                    'set spoolfile="=%s"\nset mbox_type=mbox\n'
                    'set header_cache=""\nset message_cachedir=""\n'
                    'set record=""\nset move=no\nset confirmappend=no\n'
                    'set index_format="%%4C %%-15.15L %%s"\n'
                    % (USER, PASSWORD, self.srv.plain_port, NAME))
        sock = os.path.join(self.tmp, "tmux.sock")
        env = dict(os.environ, HOME=home, LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   TERM="xterm-256color")
        subprocess.run(["tmux", "-S", sock, "-f", "/dev/null", "new-session",
                        "-d", "-s", "mutt", "-x", "160", "-y", "40",
                        "mutt -n -F %s" % rc], env=env, check=True,
                       timeout=30)
        try:
            screen = wait_for(lambda: "Grüße aus Köln" in self.pane(sock)
                              and self.pane(sock), timeout=60)
            self.assertTrue(screen, self.pane(sock))
            self.assertIn("Zoë", screen)
            # open the message: the body, decoded as UTF-8
            subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "mutt",
                            "Enter"], check=True, timeout=30)
            screen = wait_for(lambda: "schöne Grüße" in self.pane(sock)
                              and self.pane(sock), timeout=60)
            self.assertTrue(screen, self.pane(sock))
            subprocess.run(["tmux", "-S", sock, "send-keys", "-t", "mutt",
                            "q", "q"], timeout=30)
            time.sleep(0.5)
        finally:
            subprocess.run(["tmux", "-S", sock, "kill-server"],
                           timeout=30)
        # mutt's own session enabled UTF8=ACCEPT (this test's raw
        # session is the other one) and selected the folder by its UTF-8
        # name (the only way to reach it after ENABLE)
        mutt = [n for n in os.listdir(self.srv.rawlog)
                if b"* ENABLED UTF8=ACCEPT" in
                open(os.path.join(self.srv.rawlog, n), "rb").read() and
                b"[READ-WRITE]" in
                open(os.path.join(self.srv.rawlog, n), "rb").read()]
        self.assertEqual(len(mutt), 1, os.listdir(self.srv.rawlog))
