"""OBJECTID (RFC 8474): MAILBOXID at CREATE, SELECT and in STATUS, kept
by RENAME; EMAILID shared by COPY and MOVE, SEARCH EMAILID; THREADID
by the thread's root msg-id, SEARCH THREADID. PREVIEW (RFC 8970): text/plain, quoted-printable, HTML, no text at
all, the (LAZY) modifier; raw protocol."""
import re

from imapd import ImapTestCase, USER, PASSWORD

PLAIN = (b"Subject: p\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         b"Hello   there,\r\n\r\nthe =C3=BCber  report=\r\n is "
         b"attached.\r\n" + b"word " * 100 + b"\r\n")
HTML = (b"Subject: h\r\nMIME-Version: 1.0\r\nContent-Type: multipart/"
        b"alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n"
        b"\r\n<html><head><style>p {color: red}</style></head><body><p>"
        b"Dear <b>Alice</b>,</p><p>see you</p></body></html>\r\n--b--\r\n")
NOTEXT = (b"Subject: n\r\nContent-Type: application/octet-stream\r\n\r\n"
          b"\x01\x02\x03\r\n")


class ObjectIdPreviewTest(ImapTestCase):

    def setUp(self):
        super().setUp()
        self.r = self.raw()
        for c in (b"OBJECTID", b"PREVIEW"):
            self.assertIn(c, self.r.greeting)
        self.r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))

    def ok(self, text):
        lines = self.r.cmd("t", text)
        self.assertTrue(lines[-1].startswith(b"t OK"), (text, lines))
        return lines

    def append(self, box, msg):
        self.r.send("a APPEND %s {%d+}\r\n" % (box, len(msg)))
        self.r.send(msg + b"\r\n")
        self.assertTrue(self.r.read_until_tag("a")[-1].startswith(b"a OK"))

    def test_mailboxid(self):
        lines = self.ok("CREATE Projects")
        m = re.match(rb"t OK \[MAILBOXID \((F\d+)\)\] CREATE", lines[-1])
        self.assertIsNotNone(m, lines)
        mid = m.group(1)
        lines = self.ok("SELECT Projects")
        self.assertIn(b"* OK [MAILBOXID (%s)] Ok\r\n" % mid, lines)
        self.ok("UNSELECT")
        self.ok("RENAME Projects Archive/Projects")
        lines = self.ok("STATUS Archive/Projects (MAILBOXID MESSAGES)")
        self.assertEqual(lines[0], b"* STATUS Archive/Projects (MAILBOXID "
                         b"(%s) MESSAGES 0)\r\n" % mid)
        # another mailbox, another id; LIST-STATUS carries it too
        lines = self.ok('LIST "" INBOX RETURN (STATUS (MAILBOXID))')
        self.assertNotIn(mid, lines[1])
        self.assertTrue(lines[1].startswith(b"* STATUS INBOX (MAILBOXID (F"))

    def test_emailid_threadid(self):
        self.append("INBOX", PLAIN)
        self.append("INBOX", HTML)
        self.ok("CREATE Other")
        self.ok("SELECT INBOX")
        lines = self.ok("FETCH 1:2 (EMAILID THREADID)")
        ids = re.findall(rb"EMAILID \((M[0-9a-f]{16})\) THREADID \(T[0-9a-f]"
                         rb"{16}\)", b"".join(lines))
        self.assertEqual(len(ids), 2)
        self.assertNotEqual(ids[0], ids[1])
        # a copy keeps the id (same message); a move too
        self.ok("COPY 1 Other")
        self.ok("MOVE 2 Other")
        self.ok("SELECT Other")
        lines = self.ok("FETCH 1:2 (EMAILID)")
        self.assertEqual(re.findall(rb"EMAILID \((M[0-9a-f]{16})\)",
                                    b"".join(lines)), ids)
        lines = self.ok("SEARCH EMAILID %s" % ids[1].decode())
        self.assertIn(b"* SEARCH 2\r\n", lines)
        lines = self.ok("SEARCH EMAILID M0000000000000000")
        self.assertIn(b"* SEARCH\r\n", lines)
        lines = self.ok("SEARCH THREADID T1")
        self.assertIn(b"* SEARCH\r\n", lines)
        lines = self.r.cmd("b", "SEARCH EMAILID bad/id")
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)

    def thread_ids(self, n):
        lines = self.ok("FETCH 1:%d (THREADID)" % n)
        return re.findall(rb"THREADID \((T[0-9a-f]{16})\)", b"".join(lines))

    def test_threadid_follows_the_root_of_references(self):
        def msg(mid, refs=None, irt=None, subject="s"):
            h = b"Subject: %s\r\n" % subject.encode()
            if mid:
                h += b"Message-ID: <%s@x>\r\n" % mid.encode()
            if refs:
                h += b"References: " + b" ".join(
                    b"<%s@x>" % r.encode() for r in refs) + b"\r\n"
            if irt:
                h += b"In-Reply-To: <%s@x>\r\n" % irt.encode()
            return h + b"\r\nbody\r\n"
        for m in (msg("root"), msg("r1", refs=["root"]),
                  msg("r2", refs=["root", "r1"], irt="r1"),
                  msg("other", subject="s"),   # same subject, no link
                  msg(None), msg(None),       # no ids: threads of one
                  msg("late", irt="root")):   # In-Reply-To only
            self.append("INBOX", m)
        self.ok("SELECT INBOX")
        t = self.thread_ids(7)
        self.assertEqual(len(t), 7)
        self.assertEqual(t[0], t[1])
        self.assertEqual(t[0], t[2])
        self.assertEqual(t[0], t[6])
        self.assertEqual(len({t[0], t[3], t[4], t[5]}), 4)
        # the same id in another mailbox, after COPY and for an APPENDed
        # copy of the bytes alike
        self.ok("CREATE Other")
        self.ok("COPY 2 Other")
        self.append("Other", msg("r2", refs=["root", "r1"]))
        self.ok("SELECT Other")
        self.assertEqual(self.thread_ids(2), [t[0], t[0]])
        self.ok("SELECT INBOX")
        lines = self.ok("SEARCH THREADID %s" % t[0].decode())
        self.assertIn(b"* SEARCH 1 2 3 7\r\n", lines)
        lines = self.ok("UID SEARCH THREADID %s" % t[4].decode())
        self.assertIn(b"* SEARCH 5\r\n", lines)
        lines = self.ok("SEARCH NOT THREADID %s" % t[0].decode())
        self.assertIn(b"* SEARCH 4 5 6\r\n", lines)

    def test_preview(self):
        for m in (PLAIN, HTML, NOTEXT):
            self.append("INBOX", m)
        self.ok("SELECT INBOX")
        lines = self.r.cmd("f", "FETCH 1:3 (PREVIEW)")
        self.assertTrue(lines[-1].startswith(b"f OK"), lines)
        text = b"".join(lines)
        m = re.search(rb"\* 1 FETCH \(PREVIEW \{(\d+)\}\r\n", text)
        self.assertIsNotNone(m, text)
        p1 = text[m.end():m.end() + int(m.group(1))].decode()
        self.assertTrue(p1.startswith("Hello there, the über report is "
                                      "attached. word word"), p1)
        self.assertEqual(len(p1), 200)
        self.assertIn(b'* 2 FETCH (PREVIEW "Dear Alice, see you")\r\n',
                      text)
        self.assertIn(b'* 3 FETCH (PREVIEW "")\r\n', text)
        # (LAZY) is accepted; PREVIEW needs no \Seen
        lines = self.ok("FETCH 2 (PREVIEW (LAZY) FLAGS)")
        self.assertEqual(lines[0], b'* 2 FETCH (PREVIEW "Dear Alice, see '
                         b'you" FLAGS (\\Recent))\r\n')
        lines = self.r.cmd("b", "FETCH 2 (PREVIEW (EAGER))")
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        # after ENABLE UTF8=ACCEPT a UTF-8 preview may be quoted
        self.ok("ENABLE UTF8=ACCEPT")
        lines = self.ok("FETCH 1 (PREVIEW)")
        self.assertTrue(lines[0].startswith(
            '* 1 FETCH (PREVIEW "Hello there, the über'.encode()), lines)
