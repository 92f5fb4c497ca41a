"""Every IMAP command through Python's imaplib, over STARTTLS and over
implicit TLS, against tests/tools/imapd_test on a real store."""
import base64
import imaplib
import re

from imapd import ImapTestCase, USER, PASSWORD

MULTIPART = (
    b"From: Bob Example <bob@example.org>\r\n"
    b"To: alice@example.com, \"Carol C\" <carol@example.net>\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and a report\r\n"
    b"Date: Tue, 03 Jan 2023 10:00:00 +0100\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"X-Tracking: abc123\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Das Budget f=C3=BCr n=C3=A4chstes Jahr.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/pdf; name=\"r.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--XX--\r\n")

SIMPLE = (b"From: dave@example.org\r\nTo: alice@example.com\r\n"
          b"Subject: plain one\r\nDate: Mon, 02 Jan 2023 09:00:00 +0000\r\n"
          b"\r\nJust text about lunch.\r\n")


def untagged_pop(client, name):
    return client.untagged_responses.pop(name, [])


def untagged(client, name):
    return client.untagged_responses.get(name, [])


class ImapCommandsTest(ImapTestCase):

    def _session(self, kind):
        return self.starttls() if kind == "starttls" else self.tls()

    def test_capability_and_greeting(self):
        c = self.plain(login=False)
        caps = c.capabilities
        for cap in ("IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "IDLE",
                    "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "ID",
                    "ENABLE", "LITERAL+", "UNSELECT", "CHILDREN"):
            self.assertIn(cap, caps)
        typ, data = c.login(USER, PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertIn(b"[CAPABILITY IMAP4rev1", data[0])
        typ, data = c.capability()
        self.assertNotIn(b"STARTTLS", data[0])
        self.assertNotIn(b"AUTH=PLAIN", data[0])
        self.assertEqual(c.noop()[0], "OK")
        self.assertEqual(c.logout()[0], "BYE")

    def test_login_failures(self):
        c = self.tls(login=False)
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            c.login(USER, "wrong")
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        with self.assertRaises(imaplib.IMAP4.error) as cm2:
            c.login("nobody", "x")
        # unknown user and wrong password get the same answer
        self.assertEqual(str(cm.exception), str(cm2.exception))
        typ, _ = c.login(USER, PASSWORD)
        self.assertEqual(typ, "OK")
        # failures are counted by (user, address), address and user, and
        # logged with both (docs/admin-guide.md has the fail2ban filter)
        log = self.srv.log()
        self.assertIn('event=login_failed ip=127.0.0.1 port=', log)
        self.assertIn('user="alice" reason=bad_credentials failures=1', log)
        self.assertIn('user="nobody" reason=bad_credentials failures=1 '
                      'addr_failures=2', log)

    def test_authenticate_plain(self):
        for kind in ("starttls", "tls"):
            c = self.starttls(False) if kind == "starttls" else self.tls(False)
            typ, data = c.authenticate(
                "PLAIN", lambda _: ("\0%s\0%s" % (USER, PASSWORD)).encode())
            self.assertEqual(typ, "OK")
            self.assertIn(b"CAPABILITY", data[0])
            self.assertEqual(c.select("INBOX")[0], "OK")

    def test_sasl_ir_and_bad_sasl(self):
        r = self.raw()
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        lines = r.cmd("a", "AUTHENTICATE PLAIN " + ir.decode())
        self.assertTrue(lines[-1].startswith(b"a OK [CAPABILITY"), lines)
        r2 = self.raw()
        self.assertTrue(r2.cmd("b", "AUTHENTICATE PLAIN !!!notbase64")[-1]
                        .startswith(b"b BAD"))
        other = base64.b64encode(("bob\0%s\0%s" % (USER, PASSWORD)).encode())
        self.assertTrue(r2.cmd("c", "AUTHENTICATE PLAIN " + other.decode())[-1]
                        .startswith(b"c NO"))
        r2.send("d AUTHENTICATE PLAIN\r\n")
        self.assertTrue(r2.readline().startswith(b"+"))
        r2.send("*\r\n")
        self.assertTrue(r2.read_until_tag("d")[-1].startswith(b"d BAD"))
        self.assertTrue(r2.cmd("e", "AUTHENTICATE CRAM-MD5")[-1]
                        .startswith(b"e NO"))

    def test_wrong_state(self):
        r = self.raw()
        self.assertTrue(r.cmd("a", "SELECT INBOX")[-1].startswith(b"a BAD"))
        self.assertTrue(r.cmd("b", "FETCH 1 FLAGS")[-1].startswith(b"b BAD"))
        self.assertTrue(r.cmd("c", "FROBNICATE")[-1].startswith(b"c BAD"))
        r.cmd("d", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(r.cmd("e", "FETCH 1 FLAGS")[-1].startswith(b"e BAD"))
        self.assertTrue(r.cmd("f", "LOGIN a b")[-1].startswith(b"f BAD"))
        self.assertTrue(r.cmd("g", "STARTTLS")[-1].startswith(b"g BAD"))

    def test_list_default_folders(self):
        c = self.tls()
        typ, data = c.list()
        self.assertEqual(typ, "OK")
        text = b"\n".join(data).decode()
        for name, role in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                           ("Trash", "\\Trash"), ("Junk", "\\Junk"),
                           ("Archive", "\\Archive")):
            self.assertRegex(text, r"\(.*%s.*\) \"/\" \"?%s\"?" %
                             (re.escape(role), name))
        self.assertRegex(text, r'\(\\HasNoChildren\) "/" "?INBOX"?')
        typ, data = c._simple_command("LIST", '""', '""')
        self.assertEqual(typ, "OK")
        self.assertIn(b'(\\Noselect) "/" ""', c.untagged_responses.pop("LIST")[-1])
        # RETURN (SPECIAL-USE) and the SPECIAL-USE selection option
        typ, _ = c._simple_command("LIST", '(SPECIAL-USE)', '""', '"*"',
                                   "RETURN", "(SPECIAL-USE)")
        self.assertEqual(typ, "OK")
        lines = c.untagged_responses.pop("LIST")
        self.assertEqual(len(lines), 5, lines)

    def test_mailbox_management(self):
        for kind in ("starttls", "tls"):
            c = self._session(kind)
            p = "proj" + kind
            self.assertEqual(c.create(p + "/2024/q1")[0], "OK")
            self.assertEqual(c.create(p)[0], "NO")     # created as a parent
            typ, data = c.list('""', p + "*")
            text = b"\n".join(data).decode()
            self.assertIn('(\\HasChildren) "/" ' + p, text)
            self.assertIn('(\\HasNoChildren) "/" ' + p + "/2024/q1", text)
            typ, data = c.list('""', p + "%")
            self.assertEqual(len(data), 1, data)
            self.assertEqual(c.rename(p, p + "-old")[0], "OK")
            typ, data = c.list('""', p + "-old/*")
            self.assertEqual(len(data), 2, data)
            self.assertEqual(c.subscribe(p + "-old/2024")[0], "OK")
            typ, data = c.lsub('""', "*")
            self.assertTrue(any(p.encode() + b"-old/2024" in d
                                for d in data), data)
            self.assertEqual(c.unsubscribe(p + "-old/2024")[0], "OK")
            typ, data = c.lsub('""', p + "*")
            self.assertEqual(data, [None])
            self.assertEqual(c.delete(p + "-old/2024/q1")[0], "OK")
            self.assertEqual(c.delete("INBOX")[0], "NO")
            self.assertEqual(c.select("nonexistent")[0], "NO")
            # modified UTF-7 round trip
            self.assertEqual(c.create("&ANY-sterreich" + kind)[0], "OK")
            typ, data = c.list('""', "&ANY-*" + kind)
            self.assertIn(b"&ANY-sterreich", data[0])
            self.assertEqual(c.create("bad&name")[0], "NO")

    def test_select_examine_status(self):
        c = self.tls()
        c.append("INBOX", r"(\Seen)", None, SIMPLE)
        c.append("INBOX", None, None, MULTIPART)
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data, [b"2"])
        # the first SELECT after the deliveries claims them (\Recent)
        self.assertEqual(untagged(c, "RECENT"), [b"2"])
        self.assertTrue(untagged(c, "UIDVALIDITY"))
        self.assertEqual(untagged(c, "UIDNEXT"), [b"3"])
        self.assertEqual(untagged(c, "UNSEEN"), [b"2"])
        flags = untagged(c, "FLAGS")[0]
        self.assertIn(b"\\Seen", flags)
        self.assertIn(b"\\*", untagged(c, "PERMANENTFLAGS")[0])
        self.assertIn("READ-WRITE", c.untagged_responses)
        # STATUS of the selected mailbox: RECENT is this session's count
        # (as Dovecot 2.3)
        typ, data = c.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY "
                             "RECENT)")
        self.assertRegex(data[0].decode(), r"MESSAGES 2 UNSEEN 1 UIDNEXT 3 "
                         r"UIDVALIDITY \d+ RECENT 2")
        typ, data = c.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK")
        self.assertEqual(c.store("1", "+FLAGS", r"\Flagged")[0], "NO")
        self.assertEqual(c._simple_command("UNSELECT")[0], "OK")
        self.assertBad(lambda: c.status("INBOX", "(BOGUS)"))

    def test_append_fetch_all_items(self):
        c = self.starttls()
        typ, data = c.append("INBOX", r"(\Flagged $Work)",
                             '"03-Jan-2023 10:00:00 +0100"', MULTIPART)
        self.assertEqual(typ, "OK")
        m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        self.assertIsNotNone(m, data)
        uidvalidity, uid = m.group(1), m.group(2)
        typ, data = c.append("nope", None, None, SIMPLE)
        self.assertEqual(typ, "NO")
        self.assertIn("TRYCREATE", c.untagged_responses)
        c.select("INBOX")
        typ, data = c.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID)")
        line = data[0].decode()
        self.assertIn("\\Flagged", line)
        self.assertIn("$Work", line)
        self.assertIn('INTERNALDATE "03-Jan-2023 10:00:00 +0100"', line)
        self.assertIn("RFC822.SIZE %d" % len(MULTIPART), line)
        self.assertIn("UID " + uid.decode(), line)
        typ, data = c.fetch("1", "(ENVELOPE)")
        env = data[0].decode()
        self.assertIn('"Tue, 03 Jan 2023 10:00:00 +0100"', env)
        self.assertIn('("Bob Example" NIL "bob" "example.org")', env)
        self.assertIn('"<m1@example.org>"', env)
        typ, data = c.fetch("1", "(BODYSTRUCTURE)")
        bs = data[0].decode().lower()
        self.assertIn('"text" "plain" ("charset" "utf-8")', bs)
        self.assertIn('"application" "pdf" ("name" "r.pdf")', bs)
        self.assertIn('"mixed" ("boundary" "xx")', bs)
        typ, data = c.fetch("1", "(BODY)")
        self.assertIn(b"BODY (", data[0])
        # BODY.PEEK does not set \Seen
        typ, data = c.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], MULTIPART)
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Seen", data[0])
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject X-TRACKING)])")
        self.assertEqual(data[0][1], b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= "
                         b"and a report\r\nX-Tracking: abc123\r\n\r\n")
        typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (X-Tracking "
                            "Subject From To Date Message-ID)])")
        self.assertEqual(data[0][1], b"MIME-Version: 1.0\r\nContent-Type: "
                         b"multipart/mixed; boundary=\"XX\"\r\n\r\n")
        typ, data = c.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME])")
        self.assertEqual(data[0][1], b"Das Budget f=C3=BCr n=C3=A4chstes "
                         b"Jahr.")
        self.assertEqual(data[1][1], b"Content-Type: application/pdf; "
                         b"name=\"r.pdf\"\r\nContent-Transfer-Encoding: "
                         b"base64\r\n\r\n")
        typ, data = c.fetch("1", "(BODY.PEEK[]<0.4> BODY.PEEK[TEXT]<2.8>)")
        self.assertEqual(data[0][1], MULTIPART[:4])
        self.assertIn(b"BODY[]<0>", data[0][0])
        text = MULTIPART[MULTIPART.index(b"\r\n\r\n") + 4:]
        self.assertEqual(data[1][1], text[2:10])
        typ, data = c.fetch("1", "(BODY.PEEK[9])")   # nonexistent section
        self.assertEqual(data[0][1], b"")
        typ, data = c.fetch("1", "(RFC822.HEADER)")
        self.assertEqual(data[0][1], MULTIPART[:MULTIPART.index(b"\r\n\r\n")
                                                + 4])
        # RFC822.TEXT and BODY[] set \Seen and report it
        typ, data = c.fetch("1", "(RFC822.TEXT)")
        self.assertEqual(data[0][1], text)
        self.assertIn(b"\\Seen", data[0][0] + (data[1] if len(data) > 1
                                                 and isinstance(data[1], bytes)
                                                 else b""))
        typ, data = c.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])
        typ, data = c.fetch("1", "RFC822")
        self.assertEqual(data[0][1], MULTIPART)
        for macro in ("ALL", "FAST", "FULL"):
            typ, data = c.fetch("1", macro)
            self.assertEqual(typ, "OK")
            self.assertIn(b"RFC822.SIZE", data[0])
        typ, data = c.uid("FETCH", uid.decode(), "(FLAGS)")
        self.assertIn(b"UID " + uid, data[0])
        self.assertBad(lambda: c.fetch("5", "FLAGS"))
        self.assertBad(lambda: c.fetch("1", "(BOGUS)"))

    def test_store_flags_and_keywords(self):
        c = self.tls()
        for _ in range(3):
            c.append("INBOX", None, None, SIMPLE)
        c.select("INBOX")
        typ, data = c.store("1:2", "+FLAGS", r"(\Flagged \Answered)")
        self.assertEqual(len(data), 2)
        self.assertIn(b"\\Flagged", data[0])
        typ, data = c.store("1", "-FLAGS", r"(\Flagged)")
        self.assertNotIn(b"\\Flagged", data[0])
        self.assertIn(b"\\Answered", data[0])
        typ, data = c.store("3", "FLAGS", r"(\Deleted Todo)")
        self.assertIn(b"Todo", data[0])
        typ, data = c.store("2", "+FLAGS.SILENT", r"(\Seen)")
        self.assertEqual(data, [None])
        typ, data = c.fetch("2", "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])
        typ, data = c.uid("STORE", "1:*", "+FLAGS", "(Later)")
        self.assertEqual(len(data), 3)
        self.assertIn(b"UID", data[0])
        self.assertBad(lambda: c.store("1", "+FLAGS", r"(\Recent)"))
        self.assertBad(lambda: c.store("1", "BOGUS", r"(\Seen)"))
        c.select("INBOX")
        self.assertIn(b"Todo", untagged(c, "FLAGS")[0])

    def test_search(self):
        c = self.starttls()
        c.append("INBOX", r"(\Seen)", '"02-Jan-2023 09:00:00 +0000"', SIMPLE)
        c.append("INBOX", r"(\Flagged)", '"03-Jan-2023 10:00:00 +0100"',
                 MULTIPART)
        c.select("INBOX")

        def s(*crit, uid=False, charset=None):
            if uid:
                typ, data = c.uid("SEARCH", *crit)
            else:
                typ, data = c.search(charset, *crit)
            self.assertEqual(typ, "OK", crit)
            return data[0].decode().split()
        self.assertEqual(s("ALL"), ["1", "2"])
        self.assertEqual(s("SEEN"), ["1"])
        self.assertEqual(s("UNSEEN"), ["2"])
        self.assertEqual(s("FLAGGED"), ["2"])
        self.assertEqual(s("NOT", "FLAGGED"), ["1"])
        self.assertEqual(s("OR", "SEEN", "FLAGGED"), ["1", "2"])
        self.assertEqual(s("(SEEN UNFLAGGED)"), ["1"])
        self.assertEqual(s("FROM", "bob"), ["2"])
        self.assertEqual(s("TO", "carol"), ["2"])
        self.assertEqual(s("SUBJECT", "plain"), ["1"])
        self.assertEqual(s("HEADER", "X-Tracking", "ABC"), ["2"])
        self.assertEqual(s("HEADER", "X-Tracking", '""'), ["2"])
        self.assertEqual(s("BODY", "lunch"), ["1"])
        self.assertEqual(s("BODY", "BUDGET"), ["2"])
        self.assertEqual(s("TEXT", "example.org"), ["1", "2"])
        self.assertEqual(s("TEXT", "r.pdf"), ["2"])
        self.assertEqual(s("LARGER", "200"), ["2"])
        self.assertEqual(s("SMALLER", "200"), ["1"])
        self.assertEqual(s("BEFORE", "03-Jan-2023"), ["1"])
        self.assertEqual(s("ON", "03-Jan-2023"), ["2"])
        self.assertEqual(s("SINCE", "03-Jan-2023"), ["2"])
        self.assertEqual(s("SENTBEFORE", "03-Jan-2023"), ["1"])
        self.assertEqual(s("SENTON", "03-Jan-2023"), ["2"])
        self.assertEqual(s("SENTSINCE", "01-Jan-2023"), ["1", "2"])
        self.assertEqual(s("2"), ["2"])
        self.assertEqual(s("1:*", "SEEN"), ["1"])
        self.assertEqual(s("UID", "2"), ["2"])
        self.assertEqual(s("ALL", uid=True), ["1", "2"])
        self.assertEqual(s("KEYWORD", "nothing"), [])
        self.assertEqual(s("UNKEYWORD", "nothing"), ["1", "2"])
        # 8-bit search string as a literal, decoded body, any case
        c.literal = "FÜR".encode("utf-8")
        typ, data = c.search("UTF-8", "BODY")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], b"2")
        c.literal = "grüße".encode("utf-8")
        typ, data = c.search("UTF-8", "SUBJECT")
        self.assertEqual(data[0], b"2")
        typ, data = c._simple_command("SEARCH", "CHARSET", "KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertBad(lambda: c.search(None, "BOGUSKEY"))

    def test_copy_move_expunge(self):
        c = self.tls()
        for _ in range(4):
            c.append("INBOX", None, None, SIMPLE)
        c.select("INBOX")
        typ, data = c.copy("1:2", "Archive")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0].decode(), r"\[COPYUID \d+ 1:2 1:2\]")
        self.assertEqual(c.copy("1", "Nope")[0], "NO")
        typ, data = c._simple_command("MOVE", "3", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(c.untagged_responses.get("EXPUNGE"), [b"3"])
        c.untagged_responses.clear()
        typ, data = c.uid("MOVE", "4", "Trash")
        self.assertEqual(typ, "OK")
        c.untagged_responses.clear()
        c.store("1", "+FLAGS", r"(\Deleted)")
        typ, data = c.expunge()
        self.assertEqual(data, [b"1"])
        c.append("INBOX", None, None, SIMPLE)  # uid 5
        c.noop()
        c.store("1:2", "+FLAGS", r"(\Deleted)")
        typ, data = c.uid("EXPUNGE", "5")
        self.assertEqual(typ, "OK")
        self.assertEqual(c.untagged_responses.get("EXPUNGE"), [b"2"])
        typ, data = c.status("Trash", "(MESSAGES)")
        self.assertIn(b"MESSAGES 2", data[0])
        typ, data = c.status("Archive", "(MESSAGES)")
        self.assertIn(b"MESSAGES 2", data[0])
        self.assertEqual(c.close()[0], "OK")       # expunges uid 2
        typ, data = c.select("INBOX")
        self.assertEqual(data, [b"0"])
        self.assertEqual(c.check()[0], "OK")
        c.close()

    def test_namespace_id_enable_idle(self):
        c = self.tls()
        typ, data = c.namespace()
        self.assertEqual(data, [b'(("" "/")) NIL NIL'])
        typ, data = c._simple_command("ID", '("name" "imaplib" "version" "3")')
        self.assertEqual(typ, "OK")
        self.assertIn(b'"name" "popgate"', c.untagged_responses.pop("ID")[0])
        typ, data = c._simple_command("ENABLE", "CONDSTORE")
        self.assertEqual(typ, "OK")
        typ, data = c._simple_command("ID", "NIL")
        self.assertEqual(typ, "OK")
