"""Real clients against the IMAP server: curl's IMAP (imaps:// and
imap:// with STARTTLS) and mbsync syncing a mailbox both ways."""
import os
import re
import subprocess

from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\n"
       b"Subject: hello %d\r\nMessage-ID: <h%d@example.org>\r\n"
       b"Date: Tue, 03 Jan 2023 10:00:00 +0000\r\n\r\nbody %d\r\n")


class CurlTest(ImapTestCase):

    def curl(self, url, *extra):
        p = subprocess.run(["curl", "-sS", "--max-time", "30", "--cacert",
                            self.ca.ca_crt, "-u", "%s:%s" % (USER, PASSWORD)]
                           + list(extra) + [url], capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout

    def test_curl_imaps_and_starttls(self):
        c = self.tls()
        for i in range(3):
            c.append("INBOX", None, None, MSG % (i, i, i))
        base = "imaps://127.0.0.1:%d" % self.srv.tls_port
        out = self.curl(base + "/")
        self.assertIn(b"INBOX", out)
        self.assertIn(b"Sent", out)
        out = self.curl(base + "/INBOX;UID=2")
        self.assertEqual(out, MSG % (1, 1, 1))
        out = self.curl(base + "/INBOX", "-X", "SEARCH SUBJECT \"hello 2\"")
        self.assertIn(b"SEARCH 3", out)
        plain = "imap://127.0.0.1:%d" % self.srv.plain_port
        out = self.curl(plain + "/INBOX;UID=3", "--ssl-reqd")
        self.assertEqual(out, MSG % (2, 2, 2))
        out = self.curl(plain + "/INBOX", "--ssl-reqd", "-X", "EXAMINE INBOX")
        self.assertIn(b"3 EXISTS", out)


class MbsyncTest(ImapTestCase):

    def mbsync(self):
        p = subprocess.run(["mbsync", "-c", self.conf, "-a"],
                           capture_output=True, timeout=120,
                           env=dict(os.environ, HOME=self.home))
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode())

    def local_files(self, box="INBOX"):
        out = {}
        path = os.path.join(self.maildir, box)
        for sub in ("cur", "new"):
            d = os.path.join(path, sub)
            if os.path.isdir(d):
                for f in os.listdir(d):
                    with open(os.path.join(d, f), "rb") as fh:
                        # Maildir keeps LF line ends; compare in CRLF
                        # and mbsync adds its X-TUID header
                        data = re.sub(rb"X-TUID: [^\n]*\n", b"", fh.read())
                        out[os.path.join(d, f)] = data.replace(
                            b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return out

    def test_two_way_sync(self):
        self.home = os.path.join(self.tmp, "home")
        self.maildir = os.path.join(self.home, "Mail")
        os.makedirs(self.maildir)
        self.conf = os.path.join(self.home, "mbsyncrc")
        for tls, port in (("IMAPS", self.srv.tls_port),):
            with open(self.conf, "w") as f:
                f.write("IMAPAccount t\nHost localhost\nPort %d\nUser %s\n"
                        "Pass %s\nSSLType %s\nCertificateFile %s\n\n"
                        "IMAPStore remote\nAccount t\n\n"
                        "MaildirStore local\nPath %s/\nInbox %s/INBOX\n"
                        "SubFolders Verbatim\n\n"
                        "Channel c\nFar :remote:\nNear :local:\n"
                        "Patterns INBOX Archive\nCreate Both\nExpunge Both\n"
                        "SyncState *\n"
                        % (port, USER, PASSWORD, tls, self.ca.ca_crt,
                           self.maildir, self.maildir))
        c = self.tls()
        for i in range(4):
            c.append("INBOX", None, None, MSG % (i, i, i))
        self.mbsync()
        files = self.local_files()
        self.assertEqual(len(files), 4)
        self.assertEqual(sorted(files.values()),
                         sorted(MSG % (i, i, i) for i in range(4)))
        # local: flag one message, add a new one
        path = sorted(files)[0]
        flagged_body = files[path]
        base = path.split(":2,")[0] if ":2," in path else path
        os.rename(path, base.replace("/new/", "/cur/") + ":2,FS")
        new = MSG % (9, 9, 9)
        with open(os.path.join(self.maildir, "INBOX", "new",
                               "1700000000.x.local"), "wb") as f:
            f.write(new)
        # server: flag another, append one more
        c.select("INBOX")
        c.store("4", "+FLAGS", r"(\Answered)")
        c.append("INBOX", None, None, MSG % (5, 5, 5))
        self.mbsync()
        c.select("INBOX")
        typ, data = c.search(None, "ALL")
        self.assertEqual(len(data[0].split()), 6)
        typ, data = c.search(None, "FLAGGED")
        self.assertEqual(len(data[0].split()), 1)
        typ, data = c.fetch(data[0].split()[0], "(BODY.PEEK[])")
        self.assertEqual(data[0][1], flagged_body)
        typ, data = c.search(None, 'SUBJECT "hello 9"')
        self.assertEqual(len(data[0].split()), 1)
        files = self.local_files()
        self.assertEqual(len(files), 6)
        self.assertIn(MSG % (5, 5, 5), files.values())
        answered = [p for p, b in files.items() if b == MSG % (3, 3, 3)]
        self.assertTrue(answered[0].split(":2,")[1].find("R") >= 0, answered)
        # a deletion on the server reaches the local side
        c.store("1", "+FLAGS", r"(\Deleted)")
        c.expunge()
        self.mbsync()
        self.assertEqual(len(self.local_files()), 5)
