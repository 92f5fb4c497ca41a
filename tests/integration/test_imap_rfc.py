"""Issue 13: the IMAP server exactly as the RFCs say. One regression test
per item of the issue, named after it (test_item_NN_...), raw protocol
against the real daemon (tests/tools/imapd_test)."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")


def tagged(lines, tag):
    """The tagged completion line of tag in lines."""
    t = tag.encode() + b" "
    got = [x for x in lines if x.startswith(t)]
    assert got, lines
    return got[-1]


class RfcTestCase(ImapTestCase):

    def login(self):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(tagged(lines, "l").startswith(b"l OK"), lines)
        return r

    def ok(self, r, text, tag="t"):
        lines = r.cmd(tag, text)
        self.assertTrue(tagged(lines, tag).startswith(tag.encode() + b" OK"),
                        (text, lines))
        return lines

    def append(self, r, box, i, flags=""):
        body = MSG % (i, i)
        r.send("ap APPEND %s %s{%d+}\r\n" % (box, flags, len(body)))
        r.send(body + b"\r\n")
        lines = r.read_until_tag("ap")
        self.assertTrue(lines[-1].startswith(b"ap OK"), lines)
        return lines


class RfcProtocolTest(RfcTestCase):

    def test_item_04_create_with_trailing_separator(self):
        """RFC 3501 6.3.3: the trailing separator is ignored and the
        mailbox created."""
        r = self.login()
        self.ok(r, "CREATE Folder2/")
        lines = self.ok(r, 'LIST "" Folder2*')
        self.assertIn(b'* LIST (\\HasNoChildren) "/" Folder2\r\n', lines)
        self.assertEqual(len([x for x in lines if x.startswith(b"* LIST")]),
                         1, lines)
        # a name made of the separator alone is still not a mailbox
        lines = r.cmd("b", "CREATE /")
        self.assertTrue(lines[-1].startswith(b"b NO"), lines)
        # and "a//" keeps its empty component: refused
        lines = r.cmd("c", "CREATE a//")
        self.assertTrue(lines[-1].startswith(b"c NO"), lines)

    def test_item_10_store_nil_keyword(self):
        """RFC 3501 9: NIL is an atom, so a valid keyword."""
        r = self.login()
        self.append(r, "INBOX", 1)
        self.ok(r, "SELECT INBOX")
        lines = self.ok(r, "STORE 1 +FLAGS (NIL)")
        self.assertTrue(any(re.search(rb"FLAGS \(.*\bNIL\b", x)
                            for x in lines), lines)
        lines = self.ok(r, "SEARCH KEYWORD NIL")
        self.assertIn(b"* SEARCH 1\r\n", lines)
        lines = self.ok(r, "STORE 1 -FLAGS NIL")
        self.assertFalse(any(re.search(rb"FLAGS \(.*\bNIL\b", x)
                             for x in lines), lines)

    def test_item_11_tilde_is_an_atom_char(self):
        """'~' is an ATOM-CHAR; only "~{" starts a literal8, and only
        where BINARY is in effect (it is not advertised here)."""
        r = self.login()
        lines = self.ok(r, 'LIST "" ~foo')
        self.assertEqual(len(lines), 1, lines)
        lines = r.cmd("s", "SELECT ~foo")
        self.assertTrue(lines[-1].startswith(b"s NO"), lines)
        self.assertNotIn(b"Expected {", lines[-1])
        # a literal8 is not accepted without BINARY: BAD, and no "+"
        lines = r.cmd("b", "APPEND INBOX ~{5}")
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        self.ok(r, "NOOP")

    def test_item_12_move_into_the_selected_mailbox(self):
        """RFC 6851 3.1: MOVE is copy plus expunge; a copy into the
        selected mailbox is legal, so is the move."""
        r = self.login()
        for i in range(3):
            self.append(r, "INBOX", i)
        lines = self.ok(r, "SELECT INBOX")
        uv = re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1)
        lines = r.cmd("m", "MOVE 1 INBOX")
        self.assertTrue(lines[-1].startswith(b"m OK"), lines)
        self.assertIn(b"* OK [COPYUID %s 1 4] Moved\r\n" % uv, lines)
        self.assertIn(b"* 1 EXPUNGE\r\n", lines)
        self.assertIn(b"* 3 EXISTS\r\n", lines)
        lines = self.ok(r, "UID FETCH 1:* (UID)")
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(lines))]
        self.assertEqual(uids, [2, 3, 4])

    def test_item_13_idle_before_login_is_refused(self):
        """RFC 2177: IDLE in the authenticated and selected states only;
        it stays in the pre-login CAPABILITY."""
        r = self.raw()
        self.assertIn(b" IDLE", r.greeting)
        lines = r.cmd("i", "IDLE")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(b"i BAD"), lines)
        self.assertIn(b"before login", lines[0])
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        r.send("j IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        r.send("DONE\r\n")
        self.assertTrue(r.read_until_tag("j")[-1].startswith(b"j OK"))

    def test_item_14_header_fields_literal(self):
        """A header name inside BODY[HEADER.FIELDS (...)] is an astring:
        a literal (synchronising or not) is accepted."""
        r = self.login()
        self.append(r, "INBOX", 7)
        self.ok(r, "SELECT INBOX")
        r.send("f FETCH 1 (BODY.PEEK[HEADER.FIELDS ({7}\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        r.send("Subject {2+}\r\nTo)])\r\n")
        lines = r.read_until_tag("f")
        self.assertTrue(lines[-1].startswith(b"f OK"), lines)
        want = b"To: alice@example.com\r\nSubject: s7\r\n\r\n"
        self.assertIn(b"{%d}\r\n" % len(want), lines[0])
        self.assertEqual(b"".join(lines[1:-1]).startswith(want), True, lines)

    def test_item_15_wrong_state_says_why(self):
        """In the authenticated state a command that needs a selected
        mailbox says so; one that is not allowed after login says that."""
        r = self.login()
        lines = r.cmd("a", "FETCH 1 FLAGS")
        self.assertTrue(lines[-1].startswith(b"a BAD"), lines)
        self.assertIn(b"needs a selected mailbox", lines[-1])
        lines = r.cmd("b", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        self.assertIn(b"not allowed after login", lines[-1])
        self.ok(r, "SELECT INBOX")
        lines = r.cmd("c", "AUTHENTICATE PLAIN")
        self.assertIn(b"not allowed after login", lines[-1])
        r2 = self.raw()
        lines = r2.cmd("d", "SELECT INBOX")
        self.assertIn(b"not allowed before login", lines[-1])

    def test_item_17_maximal_id_before_login(self):
        """RFC 2971: 30 pairs of a 30-octet field and a 1024-octet value
        (about 32 KB on one line) fit before login."""
        r = self.raw()
        pairs = " ".join('"%s" "%s"' % (("f%02d" % i) * 10, "v" * 1024)
                         for i in range(30))
        line = "i ID (%s)" % pairs
        self.assertGreater(len(line), 31000)
        lines = r.cmd("i", line[2:])
        self.assertTrue(lines[-1].startswith(b"i OK"), lines)
        self.assertTrue(lines[0].startswith(b"* ID ("), lines)
        # literals before login stay small
        lines = r.cmd("j", "LOGIN {9000}")
        self.assertTrue(lines[-1].startswith(b"j NO [TOOBIG]"), lines)
