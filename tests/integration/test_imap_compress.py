"""COMPRESS=DEFLATE (RFC 4978): raw-protocol tests in plain text and
after TLS, the rules of the command, a corrupt stream, notifications
while compressed, and mbsync negotiating it for real, with the bytes on
the wire counted by a relay between mbsync and the server."""
import os
import re
import subprocess
import zlib

import pgtest
from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: Bob <bob@example.org>\r\nTo: alice@example.com\r\n"
       b"Subject: hello %d\r\nMessage-ID: <h%d@example.org>\r\n"
       b"Date: Tue, 03 Jan 2023 10:00:00 +0000\r\n\r\nbody %d\r\n")


class CompressRawTest(ImapTestCase):
    generate = (USER, 300)

    def login(self, tls=False):
        r = self.raw(tls=tls)
        self.assertIn(b"COMPRESS=DEFLATE", r.greeting)
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertIn(b"COMPRESS=DEFLATE", lines[-1])
        return r

    def fetch_all(self, r, tag):
        r.send("%s SELECT INBOX\r\n" % tag)
        sel = r.read_until_tag(tag)
        self.assertTrue(sel[-1].startswith(tag.encode() + b" OK"), sel)
        r.send("%sf FETCH 1:* (FLAGS ENVELOPE BODY.PEEK[])\r\n" % tag)
        lines = r.read_until_tag(tag + "f")
        self.assertTrue(lines[-1].startswith(tag.encode() + b"f OK"))
        return b"".join(lines[:-1])

    def check_compressed_session(self, tls):
        plain = self.login(tls)
        expect = self.fetch_all(plain, "p")
        r = self.login(tls)
        lines = r.cmd("z", "COMPRESS DEFLATE")
        self.assertEqual(lines, [b"z OK DEFLATE active\r\n"])
        r.compress()
        got = self.fetch_all(r, "c")
        self.assertEqual(got, expect)
        # the same responses, in far fewer bytes on the wire
        self.assertGreater(r.raw_in, 300 * 200)
        self.assertLess(r.wire_in * 4, r.raw_in,
                        (r.wire_in, r.raw_in))
        # commands are inflated too; a second COMPRESS is refused
        lines = r.cmd("y", "COMPRESS DEFLATE")
        self.assertTrue(lines[-1].startswith(b"y NO [COMPRESSIONACTIVE]"),
                        lines)
        r.send("a APPEND INBOX {%d+}\r\n" % len(MSG % (1, 1, 1)))
        r.send(MSG % (1, 1, 1) + b"\r\n")
        lines = r.read_until_tag("a")
        self.assertTrue(lines[-1].startswith(b"a OK [APPENDUID"), lines)
        lines += r.cmd("n", "NOOP")
        self.assertIn(b"* 301 EXISTS\r\n", lines)
        lines = r.cmd("o", "LOGOUT")
        self.assertEqual(lines[-1], b"o OK Logout completed\r\n")
        self.assertTrue(r.closed())
        log = self.srv.log()
        self.assertIn("event=compress mechanism=DEFLATE", log)
        m = re.search(r"event=compress_end out=(\d+) out_wire=(\d+) "
                      r"in_wire=(\d+) in=(\d+)", log)
        self.assertIsNotNone(m, log[-2000:])
        self.assertEqual(int(m.group(2)), r.wire_in)
        self.assertEqual(int(m.group(3)), r.wire_out)

    def test_compress_plain(self):
        self.check_compressed_session(tls=False)

    def test_compress_after_tls(self):
        self.check_compressed_session(tls=True)

    def test_compress_rules(self):
        r = self.raw()
        lines = r.cmd("a", "COMPRESS DEFLATE")
        self.assertTrue(lines[-1].startswith(b"a BAD"), lines)
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        for args in ("", "GZIP", "DEFLATE X"):
            lines = r.cmd("b", "COMPRESS %s" % args)
            self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        # still uncompressed: it works as before
        lines = r.cmd("c", "NOOP")
        self.assertEqual(lines, [b"c OK NOOP completed\r\n"])

    def test_compress_in_selected_state_and_idle(self):
        """COMPRESS while a mailbox is selected; another session's APPEND
        reaches this one in IDLE, compressed and flushed at once."""
        r = self.login()
        r.cmd("s", "SELECT INBOX")
        self.assertEqual(r.cmd("z", "COMPRESS DEFLATE")[-1],
                         b"z OK DEFLATE active\r\n")
        r.compress()
        r.send("i IDLE\r\n")
        self.assertEqual(r.readline(), b"+ idling\r\n")
        c = self.plain()
        c.append("INBOX", None, None, MSG % (2, 2, 2))
        self.assertEqual(r.readline(), b"* 301 EXISTS\r\n")
        r.send("DONE\r\n")
        lines = r.read_until_tag("i")
        self.assertTrue(lines[-1].startswith(b"i OK"), lines)

    def test_corrupt_stream_closes(self):
        r = self.login()
        r.cmd("z", "COMPRESS DEFLATE")
        # not DEFLATE: reserved block type
        r.send(b"\xff\xff\xff\xff\xff\xff")
        self.assertTrue(r.closed())
        # a client that ends its stream is closed too
        r = self.login()
        r.cmd("z", "COMPRESS DEFLATE")
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        r.send(co.compress(b"a NOOP\r\n") + co.flush(zlib.Z_FINISH))
        self.assertTrue(r.closed())
        self.assertIn("event=inflate_failed", self.srv.log())
        # the server goes on serving others
        c = self.plain()
        self.assertEqual(c.noop()[0], "OK")

    def test_compress_bomb(self):
        """A line of 8 MB of one byte compresses to about 8 KB: the server
        inflates it piecemeal (never whole), answers BAD for the line and
        closes once the skipped line passes its limit; a literal over the
        limit is refused with TOOBIG while compressed, as in clear."""
        r = self.login()
        r.cmd("z", "COMPRESS DEFLATE")
        r.compress()
        r.send(b"a APPEND INBOX {67108865}\r\n")
        lines = r.read_until_tag("a")
        self.assertTrue(lines[-1].startswith(b"a NO [TOOBIG]"), lines)
        r.send(b"b NOOP " + b"x" * (8 << 20) + b"\r\n")
        self.assertLess(r.wire_out, 64 * 1024)
        lines = r.read_until_tag("b")
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        self.assertTrue(r.closed())
        self.assertIn(b"* BYE", r.buf)


class CompressMbsyncTest(ImapTestCase):
    """mbsync (isync 1.4) uses COMPRESS=DEFLATE when the server offers it:
    a full first sync through a counting relay, with and without."""
    generate = (USER, 400)

    def sync(self, relay, disable):
        home = os.path.join(self.tmp, "home-%d" % disable)
        maildir = os.path.join(home, "Mail")
        os.makedirs(maildir)
        conf = os.path.join(home, "mbsyncrc")
        with open(conf, "w") as f:
            f.write("IMAPAccount t\nHost 127.0.0.1\nPort %d\nUser %s\n"
                    "Pass %s\nSSLType None\nAuthMechs LOGIN\n%s\n"
                    "IMAPStore remote\nAccount t\n\n"
                    "MaildirStore local\nPath %s/\nInbox %s/INBOX\n\n"
                    "Channel c\nFar :remote:\nNear :local:\n"
                    "Patterns INBOX\nCreate Near\nSyncState *\n"
                    % (relay.port, USER, PASSWORD,
                       "DisableExtension COMPRESS=DEFLATE\n" if disable else "",
                       maildir, maildir))
        relay.reset()
        p = subprocess.run(["mbsync", "-c", conf, "-a"],
                           capture_output=True, timeout=120,
                           env=dict(os.environ, HOME=home))
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode())
        n = sum(len(os.listdir(os.path.join(maildir, "INBOX", d)))
                for d in ("cur", "new"))
        self.assertEqual(n, 400)
        return relay.to_client, relay.to_server

    def test_mbsync_compress(self):
        relay = pgtest.ByteRelay(self.srv.plain_port)
        try:
            plain_in, plain_out = self.sync(relay, True)
            log = self.srv.log()
            self.assertNotIn("event=compress ", log)
            z_in, z_out = self.sync(relay, False)
        finally:
            relay.stop()
        self.assertIn("event=compress mechanism=DEFLATE", self.srv.log())
        # the same 400 messages in a fraction of the bytes
        self.assertGreater(plain_in, 400 * 500)
        self.assertLess(z_in * 3, plain_in, (z_in, plain_in))
        print("\nmbsync first sync of 400 messages: %d bytes from the "
              "server uncompressed, %d with COMPRESS (%.1f %%)"
              % (plain_in, z_in, 100.0 * z_in / plain_in))
