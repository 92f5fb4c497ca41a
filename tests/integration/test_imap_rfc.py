"""Issue 13: the IMAP server exactly as the RFCs say. One regression test
per item of the issue, named after it (test_item_NN_...), raw protocol
against the real daemon (tests/tools/imapd_test)."""
import re
import time

from imapd import ImapTestCase, USER, PASSWORD, wait_for

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
        where BINARY is in effect (advertised since issue 14)."""
        r = self.login()
        lines = self.ok(r, 'LIST "" ~foo')
        self.assertEqual(len(lines), 1, lines)
        lines = r.cmd("s", "SELECT ~foo")
        self.assertTrue(lines[-1].startswith(b"s NO"), lines)
        self.assertNotIn(b"Expected {", lines[-1])
        # with BINARY, "~{5}" is a literal8: "+", then the bytes
        r.send("b APPEND INBOX ~{5}\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))
        r.send(b"x\x00y\r\n\r\n")
        lines = r.read_until_tag("b")
        self.assertTrue(lines[-1].startswith(b"b OK [APPENDUID"), lines)
        # "~" inside an atom before "{" is still a syntax error
        lines = r.cmd("c", "APPEND INBOX a~{5}")
        self.assertTrue(lines[-1].startswith(b"c BAD"), lines)
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


def numbered_message(size):
    """A message of about size bytes whose every line differs, so that
    any byte sent out of place shows."""
    head = b"From: a@example.org\r\nSubject: big numbered\r\n\r\n"
    lines = []
    n = len(head)
    i = 0
    while n < size:
        line = b"line %08d of the big numbered message, 0123456789\r\n" % i
        lines.append(line)
        n += len(line)
        i += 1
    return head + b"".join(lines)


def read_literal_fetch(r, tag, timeout=60):
    """Reads "* n FETCH (... {len}" + the literal + the rest up to the
    tagged line; returns (literal bytes, lines after, eof_early). On EOF
    in the middle of the literal returns what came and eof_early True."""
    line = r.readline(timeout)
    while not re.search(rb"\{(\d+)\}\r\n$", line):
        if not line:
            return b"", [], True
        line = r.readline(timeout)
    n = int(re.search(rb"\{(\d+)\}\r\n$", line).group(1))
    data = r.buf[:n]
    r.buf = r.buf[n:]
    r.sock.settimeout(timeout)
    while len(data) < n:
        d = r.sock.recv(min(65536, n - len(data)))
        if not d:
            return data, [], True
        data += d
    return data, r.read_until_tag(tag, timeout), False


class FetchStreamBase(RfcTestCase):
    """A FETCH paused on output with most of a big body unsent."""

    def big_in_inbox(self, r, size=3 * 1024 * 1024):
        msg = numbered_message(size)
        r.send("ap APPEND INBOX {%d+}\r\n" % len(msg))
        r.send(msg + b"\r\n")
        self.assertTrue(r.read_until_tag("ap")[-1].startswith(b"ap OK"))
        return msg

    def start_stream(self):
        other = self.login()
        msg = self.big_in_inbox(other)
        self.ok(other, "CREATE Elsewhere")
        self.ok(other, "SELECT INBOX")
        slow = self.slow_reader(rcvbuf=16384)
        lines = slow.cmd("s", "SELECT INBOX")
        self.assertTrue(lines[-1].startswith(b"s OK"), lines)
        slow.send("f FETCH 1 (UID BODY.PEEK[])\r\n")
        # the server has started the literal and is blocked on output
        first = slow.readline()
        self.assertTrue(first.startswith(b"* 1 FETCH (UID 1 BODY[] {%d}"
                                         % len(msg)), first)
        slow.buf = first + slow.buf
        return other, slow, msg


class FetchIntegrityTest(FetchStreamBase):
    # small output buffer: the FETCH pauses with most of the body unsent;
    # the pin is taken again every second
    server_args = ("--high-water", "65536", "--fetch-pin-secs", "1")

    def test_item_01_fetch_streams_the_message_while_it_is_moved(self):
        """A MOVE on another device while a FETCH streams the body: the
        literal carries the message's bytes, every one of them, even
        past the pin's period (the body lives on in the target)."""
        other, slow, msg = self.start_stream()
        lines = other.cmd("m", "MOVE 1 Elsewhere")
        self.assertTrue(lines[-1].startswith(b"m OK"), lines)
        # let the pin be taken again (1 s period) before reading on
        time.sleep(2.5)
        data, rest, eof = read_literal_fetch(slow, "f")
        self.assertFalse(eof)
        self.assertEqual(len(data), len(msg))
        self.assertTrue(data == msg, "FETCH sent bytes that are not the "
                        "message's")
        self.assertTrue(rest[-1].startswith(b"f OK"), rest)
        self.assertNotIn("event=fetch_body_gone", self.srv.log())

    def test_item_01_fetch_of_an_expunged_body_ends_the_connection(self):
        """The message expunged everywhere while its literal streams:
        within the pin's period the snapshot serves it; after that the
        connection closes mid-literal. Never a byte that is not the
        message's (the old code padded with spaces and said OK)."""
        other, slow, msg = self.start_stream()
        self.ok(other, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(other, "EXPUNGE")
        self.assertTrue(wait_for(lambda: "event=fetch_body_gone" in
                                 self.srv.log(), 30), self.srv.log()[-2000:])
        data, rest, eof = read_literal_fetch(slow, "f")
        self.assertTrue(eof, "the literal completed after the body was gone")
        self.assertLess(len(data), len(msg))
        self.assertTrue(msg.startswith(data), "bytes that are not the "
                        "message's were sent")
        self.assertEqual(rest, [])



class FetchPinnedTest(FetchStreamBase):
    """The default pin period (60 s): expunged everywhere and read at
    once, the pinned snapshot serves the whole message."""
    server_args = ("--high-water", "65536")

    def test_item_01_fetch_expunged_within_the_pin_period(self):
        other, slow, msg = self.start_stream()
        self.ok(other, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(other, "EXPUNGE")
        data, rest, eof = read_literal_fetch(slow, "f")
        self.assertFalse(eof)
        self.assertTrue(data == msg, "bytes that are not the message's")
        self.assertTrue(rest[-1].startswith(b"f OK"), rest)


class FetchExpungedTest(RfcTestCase):

    def test_item_02_fetch_of_a_message_expunged_elsewhere(self):
        """RFC 2180 4.1.2: FETCH of a message another session expunged,
        before this session was told: data for the others and NO
        [EXPUNGEISSUED], never OK without the data. UID FETCH may
        announce the expunge: EXPUNGE, then OK."""
        a = self.login()
        for i in range(3):
            self.append(a, "INBOX", i)
        self.ok(a, "SELECT INBOX")
        b = self.login()
        self.ok(b, "SELECT INBOX")
        self.ok(b, "STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.ok(b, "EXPUNGE")
        lines = a.cmd("f", "FETCH 1:3 (UID RFC822.SIZE)")
        fetched = [int(x) for x in re.findall(rb"\* \d+ FETCH \(UID (\d+)",
                                              b"".join(lines))]
        self.assertEqual(fetched, [1, 3])
        self.assertTrue(lines[-1].startswith(b"f NO [EXPUNGEISSUED]"), lines)
        self.assertFalse(any(b"EXPUNGE\r\n" in x for x in lines[:-1]), lines)
        lines = a.cmd("g", "FETCH 2 (BODY.PEEK[])")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[-1].startswith(b"g NO [EXPUNGEISSUED]"), lines)
        lines = a.cmd("u", "UID FETCH 2 (FLAGS)")
        self.assertEqual(lines[0], b"* 2 EXPUNGE\r\n", lines)
        self.assertTrue(lines[-1].startswith(b"u OK"), lines)
        lines = self.ok(a, "FETCH 1:* (UID)")
        self.assertEqual(re.findall(rb"UID (\d+)", b"".join(lines)),
                         [b"1", b"3"])


class NulBytesTest(RfcTestCase):

    def test_item_16_nul_bytes_are_sent_as_0x80(self):
        """RFC 3501 literals are CHAR8 (no NUL): a NUL of a stored
        message is sent as 0x80 outside BINARY, sizes unchanged; small
        items and streamed ones alike."""
        r = self.login()
        small = b"Subject: nul\r\n\r\nA\x00B\x00\x00C\r\n"
        big = b"Subject: bignul\r\n\r\n" + (b"x" * 60 + b"\x00\r\n") * 2000
        for m in (small, big):
            r.send("ap APPEND INBOX {%d+}\r\n" % len(m))
            r.send(m + b"\r\n")
            self.assertTrue(r.read_until_tag("ap")[-1].startswith(b"ap OK"))
        self.ok(r, "SELECT INBOX")
        for seq, m in ((1, small), (2, big)):
            r.send("f FETCH %d (RFC822.SIZE BODY.PEEK[])\r\n" % seq)
            data, rest, eof = read_literal_fetch(r, "f")
            self.assertFalse(eof)
            self.assertEqual(len(data), len(m))
            self.assertNotIn(b"\x00", data)
            self.assertEqual(data, m.replace(b"\x00", b"\x80"))
            self.assertTrue(rest[-1].startswith(b"f OK"), rest)
        lines = self.ok(r, "FETCH 1 (BODY.PEEK[TEXT]<1.3>)")
        self.assertIn(b"{3}\r\n", lines[0])
        self.assertEqual(lines[1][:3], b"\x80B\x80")


class RfcSyncTest(RfcTestCase):

    def test_item_03_envelope_joins_repeated_address_fields(self):
        """RFC 5322 4.5.3: several To:/Cc:/Bcc:/From: fields are one
        list."""
        r = self.login()
        m = (b"From: a@example.org\r\nTo: b@example.org\r\n"
             b"To: c@example.org\r\nCc: d@example.org\r\n"
             b"Cc: e@example.org\r\nBcc: f@example.org\r\n"
             b"Bcc: g@example.org\r\nSubject: multi\r\n\r\nbody\r\n")
        r.send("ap APPEND INBOX {%d+}\r\n" % len(m))
        r.send(m + b"\r\n")
        self.assertTrue(r.read_until_tag("ap")[-1].startswith(b"ap OK"))
        self.ok(r, "SELECT INBOX")
        lines = self.ok(r, "FETCH 1 ENVELOPE")
        env = lines[0]
        for a, b in ((b"b", b"c"), (b"d", b"e"), (b"f", b"g")):
            self.assertIn(b'((NIL NIL "%s" "example.org")(NIL NIL "%s" '
                          b'"example.org"))' % (a, b), env)

    def test_item_05_lsub_returns_unsubscribed_parent(self):
        """RFC 3501 6.3.9: LSUB "%" returns the unsubscribed parent of a
        subscribed child, flagged \\Noselect."""
        r = self.login()
        self.ok(r, "CREATE foo/bar")
        self.ok(r, "UNSUBSCRIBE foo")
        self.ok(r, "SUBSCRIBE foo/bar")
        self.ok(r, "SUBSCRIBE gone/away/deep")
        lines = self.ok(r, 'LSUB "" "%"')
        self.assertIn(b'* LSUB (\\Noselect) "/" foo\r\n', lines)
        self.assertIn(b'* LSUB (\\Noselect) "/" gone\r\n', lines)
        self.assertFalse(any(b"foo/bar" in x for x in lines), lines)
        lines = self.ok(r, 'LSUB "" "foo/%"')
        self.assertTrue(any(x.startswith(b"* LSUB (") and
                            x.endswith(b'"/" foo/bar\r\n') for x in lines),
                        lines)
        self.assertFalse(any(x.endswith(b" foo\r\n") for x in lines), lines)
        # "*" reaches the subscribed names themselves: no parent line
        lines = self.ok(r, 'LSUB "" "*"')
        self.assertFalse(any(x.endswith(b'"/" foo\r\n') for x in lines),
                         lines)
        self.assertTrue(any(x.endswith(b'"/" gone/away/deep\r\n')
                            for x in lines), lines)

    def test_item_06_expunge_highestmodseq_with_qresync(self):
        """RFC 7162 3.2.7, 3.2.9: with QRESYNC, the tagged OK of EXPUNGE
        and UID EXPUNGE carries [HIGHESTMODSEQ n] when it expunged."""
        r = self.login()
        for i in range(4):
            self.append(r, "INBOX", i)
        self.ok(r, "ENABLE QRESYNC")
        self.ok(r, "SELECT INBOX")
        self.ok(r, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        lines = self.ok(r, "EXPUNGE", "e")
        m = re.match(rb"e OK \[HIGHESTMODSEQ (\d+)\]", lines[-1])
        self.assertTrue(m, lines)
        st = self.ok(r, "STATUS INBOX (HIGHESTMODSEQ)")
        self.assertIn(b"HIGHESTMODSEQ %s" % m.group(1), st[0])
        self.ok(r, "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
        lines = self.ok(r, "UID EXPUNGE 3", "u")
        m2 = re.match(rb"u OK \[HIGHESTMODSEQ (\d+)\]", lines[-1])
        self.assertTrue(m2, lines)
        self.assertGreater(int(m2.group(1)), int(m.group(1)))
        # nothing expunged: no code needed (and none sent)
        lines = self.ok(r, "EXPUNGE", "n")
        self.assertEqual(lines[-1], b"n OK EXPUNGE completed\r\n")

    def test_item_07_qresync_select_reports_known_uids_only(self):
        """RFC 7162 3.2.5.1: with known-uids, flag changes of those UIDs
        only."""
        r = self.login()
        for i in range(4):
            self.append(r, "INBOX", i)
        lines = self.ok(r, "SELECT INBOX")
        uv = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(lines)).group(1))
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                            b"".join(lines)).group(1))
        self.ok(r, "STORE 1:4 +FLAGS.SILENT (\\Flagged)")
        self.ok(r, "LOGOUT", "lo")
        r = self.login()
        self.ok(r, "ENABLE QRESYNC")
        lines = self.ok(r, "SELECT INBOX (QRESYNC (%d %d 2:3))" % (uv, hms))
        uids = sorted(int(x) for x in re.findall(
            rb"\* \d+ FETCH \(UID (\d+)", b"".join(lines)))
        self.assertEqual(uids, [2, 3])
        lines = self.ok(r, "SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
        uids = sorted(int(x) for x in re.findall(
            rb"\* \d+ FETCH \(UID (\d+)", b"".join(lines)))
        self.assertEqual(uids, [1, 2, 3, 4])

    def test_item_08_esearch_min_max_modseq(self):
        """RFC 4731 3.2: RETURN (MIN) / (MAX) with MODSEQ: the MODSEQ of
        the message returned; both: the higher of the two; ALL or COUNT:
        the highest of all matches."""
        r = self.login()
        for i in range(3):
            self.append(r, "INBOX", i)
        self.ok(r, "ENABLE CONDSTORE")
        self.ok(r, "SELECT INBOX")
        ms = {}
        for seq in (3, 1, 2):   # message 2 gets the highest MODSEQ
            lines = self.ok(r, "STORE %d +FLAGS (\\Seen)" % seq)
            ms[seq] = int(re.search(rb"MODSEQ \((\d+)\)",
                                    b"".join(lines)).group(1))
        crit = "MODSEQ 1"

        def esearch(opts):
            lines = self.ok(r, "SEARCH RETURN (%s) %s" % (opts, crit))
            m = re.search(rb"MODSEQ (\d+)", lines[0])
            return int(m.group(1))
        self.assertEqual(esearch("MIN"), ms[1])
        self.assertEqual(esearch("MAX"), ms[3])
        self.assertEqual(esearch("MIN MAX"), max(ms[1], ms[3]))
        self.assertEqual(esearch("COUNT"), ms[2])
        self.assertEqual(esearch("ALL"), ms[2])

    def test_item_09_search_from_matches_parsed_addresses(self):
        """RFC 3501 6.4.4: FROM/TO/CC/BCC match the address fields as
        parsed, not the raw header text."""
        r = self.login()
        m = (b"From: <user (comment)@ (comment) domain.org>\r\n"
             b"To: \"Doe, John\" <john (x) @ example.com>\r\n"
             b"Subject: addr\r\n\r\nbody\r\n")
        r.send("ap APPEND INBOX {%d+}\r\n" % len(m))
        r.send(m + b"\r\n")
        self.assertTrue(r.read_until_tag("ap")[-1].startswith(b"ap OK"))
        self.append(r, "INBOX", 2)
        self.ok(r, "SELECT INBOX")
        for crit, want in (("FROM user@domain.org", b"1"),
                           ("FROM USER@DOMAIN", b"1"),
                           ('TO "john@example.com"', b"1"),
                           ('TO "Doe, John"', b"1"),
                           ("FROM comment", b""),
                           ("FROM a@example.org", b"2")):
            lines = self.ok(r, "SEARCH " + crit)
            self.assertEqual(lines[0].strip(), (b"* SEARCH " + want).strip(),
                             (crit, lines))
        # HEADER still looks at the text of the field
        lines = self.ok(r, "SEARCH HEADER From comment")
        self.assertEqual(lines[0], b"* SEARCH 1\r\n")
