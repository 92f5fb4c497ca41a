"""BINARY (RFC 3516): FETCH BINARY[section], BINARY.PEEK, BINARY.SIZE
decoded from base64 and quoted-printable (inline and streamed, with
partials), UNKNOWN-CTE, the exact bytes of a message with NULs (where
BODY[] sends 0x80), and APPEND with literal8; raw protocol, plus
Python's imaplib reading a literal8."""
import base64
import binascii
import os
import quopri
import re

from imapd import ImapTestCase, USER, PASSWORD

BLOB = os.urandom(150000)              # streamed: over the inline limit
SMALL = bytes(range(256)) * 4          # inline, with NULs
QP_TEXT = b"caf\xe9 = \x00 end\r\n" * 50 + b"long " * 40 + b"\r\n"


def b64_lines(data):
    s = base64.b64encode(data)
    return b"\r\n".join(s[i:i + 76] for i in range(0, len(s), 76)) + b"\r\n"


def qp(data):
    return quopri.encodestring(data.replace(b"\r\n", b"\n"),
                               quotetabs=False).replace(b"\n", b"\r\n")


MESSAGE = (b"From: a@example.org\r\nSubject: binary\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
           b"--XX\r\nContent-Type: text/plain; charset=latin1\r\n"
           b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
           + qp(QP_TEXT) +
           b"\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n"
           + b64_lines(BLOB) +
           b"\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: BASE64\r\n\r\n"
           + b64_lines(SMALL) +
           b"\r\n--XX\r\nContent-Type: text/plain\r\n"
           b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
           b"begin 644 x\r\n#86)C\r\n`\r\nend\r\n"
           b"\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
           b"plain 8bit \xc3\xa9\r\n"
           b"\r\n--XX--\r\n")

NUL_MESSAGE = b"Subject: nul\r\n\r\nA\x00B\x00\x00C\r\n"


class BinaryTest(ImapTestCase):

    def login(self):
        r = self.raw()
        self.assertIn(b" BINARY", r.greeting)
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        return r

    def append8(self, r, msg, box="INBOX"):
        r.send(b"a APPEND %s ~{%d+}\r\n" % (box.encode(), len(msg)))
        r.send(msg + b"\r\n")
        lines = r.read_until_tag("a")
        self.assertTrue(lines[-1].startswith(b"a OK [APPENDUID"), lines)

    def fetch(self, r, what):
        """{item name: value} of the one FETCH response."""
        r.send("f FETCH %s\r\n" % what)
        resps = r.read_responses("f")
        self.assertTrue(resps[-1][0].startswith(b"f OK"), resps[-1])
        self.assertEqual(len(resps), 2, resps)
        return resps[0]

    def literal(self, resp, name):
        """The literal after "name ~{n}" / "name {n}" and whether it was
        a literal8."""
        for k in range(0, len(resp) - 1, 2):
            m = re.search(rb"(?:\(| )" + re.escape(name) +
                          rb" (~?)\{\d+\}\r\n$", resp[k])
            if m:
                return resp[k + 1], m.group(1) == b"~"
        self.fail("no %r in %r" % (name, [p[:80] for p in resp]))

    def test_binary_decodes_parts(self):
        r = self.login()
        self.append8(r, MESSAGE)
        r.cmd("s", "SELECT INBOX")
        resp = self.fetch(r, "1 (BINARY.SIZE[1] BINARY.SIZE[2] "
                             "BINARY.SIZE[3] BINARY.SIZE[5])")
        self.assertEqual(
            resp[0], b"* 1 FETCH (BINARY.SIZE[1] %d BINARY.SIZE[2] %d "
            b"BINARY.SIZE[3] %d BINARY.SIZE[5] %d)\r\n"
            % (len(QP_TEXT), len(BLOB), len(SMALL),
               len(b"plain 8bit \xc3\xa9\r\n")))
        # quoted-printable with "=00": a literal8 of the decoded bytes
        data, lit8 = self.literal(self.fetch(r, "1 BINARY.PEEK[1]"),
                                  b"BINARY[1]")
        self.assertEqual(data, QP_TEXT)
        self.assertTrue(lit8)
        # base64 over the inline limit: streamed, decoded on the way
        data, lit8 = self.literal(self.fetch(r, "1 BINARY.PEEK[2]"),
                                  b"BINARY[2]")
        self.assertEqual(data, BLOB)
        self.assertEqual(lit8, b"\x00" in BLOB)
        data, lit8 = self.literal(self.fetch(r, "1 BINARY.PEEK[3]"),
                                  b"BINARY[3]")
        self.assertEqual((data, lit8), (SMALL, True))
        # partials, inline and streamed; past the end is empty
        for o, n in ((0, 10), (1000, 100), (1001, 99999), (149990, 500),
                     (200000, 10)):
            resp = self.fetch(r, "1 BINARY.PEEK[2]<%d.%d>" % (o, n))
            data, _ = self.literal(resp, b"BINARY[2]<%d>" % o)
            self.assertEqual(data, BLOB[o:o + n], (o, n))
        # 8bit part: as it is, not a literal8 (no NUL)
        data, lit8 = self.literal(self.fetch(r, "1 BINARY.PEEK[5]"),
                                  b"BINARY[5]")
        self.assertEqual((data, lit8), (b"plain 8bit \xc3\xa9\r\n", False))
        # a part that does not exist
        resp = self.fetch(r, "1 (BINARY.PEEK[9] BINARY.SIZE[9])")
        self.assertEqual(resp[0], b"* 1 FETCH (BINARY[9] NIL "
                         b"BINARY.SIZE[9] 0)\r\n")
        # no \Seen from PEEK or SIZE, \Seen from BINARY[]
        resp = self.fetch(r, "1 FLAGS")
        self.assertNotIn(b"\\Seen", resp[0])
        resp = self.fetch(r, "1 BINARY[3]")
        self.assertIn(b"\\Seen", b"".join(resp[2::2]) + resp[0])

    def test_unknown_cte_and_bad_sections(self):
        r = self.login()
        self.append8(r, MESSAGE)
        r.cmd("s", "SELECT INBOX")
        lines = r.cmd("f", "FETCH 1 (UID BINARY.PEEK[4])")
        self.assertTrue(lines[-1].startswith(b"f NO [UNKNOWN-CTE]"), lines)
        self.assertEqual(len(lines), 1, lines)
        lines = r.cmd("f", "FETCH 1 BINARY.SIZE[4]")
        self.assertTrue(lines[-1].startswith(b"f NO [UNKNOWN-CTE]"), lines)
        for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE[1]<0.5>",
                    "BINARY[1]<5>"):
            lines = r.cmd("b", "FETCH 1 %s" % bad)
            self.assertTrue(lines[-1].startswith(b"b BAD"), (bad, lines))

    def test_exact_bytes_with_nul(self):
        """BODY[] sends a NUL as 0x80 (CHAR8); BINARY[] the exact bytes."""
        r = self.login()
        self.append8(r, NUL_MESSAGE)
        r.cmd("s", "SELECT INBOX")
        data, lit8 = self.literal(self.fetch(r, "1 BINARY.PEEK[]"),
                                  b"BINARY[]")
        self.assertEqual((data, lit8), (NUL_MESSAGE, True))
        data, lit8 = self.literal(self.fetch(r, "1 BODY.PEEK[]"),
                                  b"BODY[]")
        self.assertEqual(data, NUL_MESSAGE.replace(b"\x00", b"\x80"))
        self.assertFalse(lit8)
        # a single-part message: BINARY[1] is its body
        data, _ = self.literal(self.fetch(r, "1 BINARY.PEEK[1]"),
                               b"BINARY[1]")
        self.assertEqual(data, b"A\x00B\x00\x00C\r\n")
        # a big message with NULs streams exactly too
        big = b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\x00\r\n") * 3000
        self.append8(r, big)
        r.cmd("n", "NOOP")
        data, lit8 = self.literal(self.fetch(r, "2 BINARY.PEEK[]"),
                                  b"BINARY[]")
        self.assertEqual((data, lit8), (big, True))
        # literal8 in APPEND without BINARY's syntax (no '~'): still a
        # plain literal; '~' only starts literal8 before '{'
        lines = r.cmd("c", "CREATE ~x")
        self.assertTrue(lines[-1].startswith(b"c NO"), lines)

    def test_imaplib_reads_literal8(self):
        c = self.plain()
        c.append("INBOX", None, None, MESSAGE)
        c.select("INBOX")
        typ, data = c.fetch("1", "(BINARY.PEEK[3])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], SMALL)
        typ, data = c.fetch("1", "(BINARY.PEEK[2])")
        self.assertEqual(data[0][1], BLOB)
