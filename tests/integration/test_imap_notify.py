"""NOTIFY (RFC 5465) on the raw protocol: every mailbox filter, every
event the server sends, SELECTED against SELECTED-DELAYED, MessageNew's
fetch attributes (also a big one streamed during IDLE), the selected
mailbox renamed or deleted by another session, the errors (BAD,
BADEVENT), NOTIFY NONE, the queue's NOTIFICATIONOVERFLOW, and Python's
imaplib picking up the notifications as untagged responses."""
import imaplib
import re

from imapd import ImapTestCase, USER, PASSWORD, BIG_MESSAGE, append_big

MSG = b"Subject: hello\r\nFrom: a@example.org\r\n\r\nbody\r\n"


class NotifyTest(ImapTestCase):

    def login(self):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        return r

    def ok(self, r, text, tag="t"):
        lines = r.cmd(tag, text)
        self.assertTrue(lines[-1].startswith(tag.encode() + b" OK"),
                        (text, lines))
        return lines[:-1]

    def append(self, r, box, msg=MSG):
        r.send(b"ap APPEND %s {%d+}\r\n" % (box.encode(), len(msg)) + msg +
               b"\r\n")
        lines = r.read_until_tag("ap")
        self.assertTrue(lines[-1].startswith(b"ap OK"), lines)
        return int(re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1))

    def pushed(self, r, n):
        """The next n lines the server sends without being asked."""
        return [r.readline(timeout=60) for _ in range(n)]

    def quiet(self, r):
        """Nothing was pushed: a NOOP's answer is its tagged OK alone."""
        self.assertEqual(self.ok(r, "NOOP", "q"), [])

    def test_capability(self):
        r = self.login()
        self.assertIn(b"NOTIFY", r.cmd("c", "CAPABILITY")[0].split())

    def test_status_option_and_filters(self):
        a, b = self.login(), self.login()
        for name in ("Lists/a", "Lists/b", "Other", "Sub"):
            self.ok(b, "CREATE %s" % name)
        self.ok(b, "SUBSCRIBE Sub")
        self.ok(a, "SELECT Other")
        got = self.ok(a, "NOTIFY SET STATUS (SELECTED (MessageNew "
                      "MessageExpunge)) (SUBTREE Lists (MessageNew "
                      "MessageExpunge)) (MAILBOXES (INBOX) (MessageNew "
                      "MessageExpunge)) (SUBSCRIBED (MessageNew "
                      "MessageExpunge))")
        names = sorted(re.match(rb"\* STATUS (\S+) \(MESSAGES 0 UIDNEXT 1 "
                                rb"UIDVALIDITY \d+ UNSEEN 0\)\r\n$",
                                line).group(1) for line in got)
        # Lists itself (the subtree's root) and its children, INBOX, the
        # subscribed ones (the default folders are, and Sub); never the
        # selected mailbox, never a mailbox no filter holds
        subscribed = {re.search(rb'"/" (\S+)\r\n$', line).group(1)
                      for line in self.ok(b, 'LSUB "" "*"')}
        self.assertIn(b"Sub", subscribed)
        self.assertNotIn(b"Other", subscribed)
        self.assertEqual(names, sorted({b"INBOX", b"Lists", b"Lists/a",
                                        b"Lists/b"} | subscribed))
        # events: pushed at once, no command needed
        self.append(b, "Lists/a")
        self.assertEqual(self.pushed(a, 1), [
            b"* STATUS Lists/a (MESSAGES 1 UIDNEXT 2 UIDVALIDITY %s "
            b"UNSEEN 1)\r\n" % self.uidvalidity(b, "Lists/a")])
        self.append(b, "Sub")
        self.assertTrue(self.pushed(a, 1)[0].startswith(b"* STATUS Sub "))
        self.append(b, "INBOX")
        self.assertTrue(self.pushed(a, 1)[0].startswith(b"* STATUS INBOX "))
        # a mailbox outside every filter: nothing
        self.ok(b, "CREATE Else")
        self.append(b, "Else")
        self.quiet(a)
        # MessageExpunge: the count drops
        self.ok(b, "SELECT Lists/a")
        self.ok(b, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(b, "EXPUNGE")
        self.assertRegex(self.pushed(a, 1)[0], rb"^\* STATUS Lists/a "
                         rb"\(MESSAGES 0 UIDNEXT 2 ")

    def uidvalidity(self, r, box):
        line = self.ok(r, "STATUS %s (UIDVALIDITY)" % box, "u")[0]
        return re.search(rb"UIDVALIDITY (\d+)", line).group(1)

    def test_flag_change_other_mailbox_with_condstore(self):
        a, b = self.login(), self.login()
        self.ok(b, "CREATE Box")
        self.append(b, "Box")
        self.ok(a, "ENABLE CONDSTORE")
        self.ok(a, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge "
                "FlagChange))")
        self.ok(b, "SELECT Box")
        self.ok(b, "STORE 1 +FLAGS (\\Seen)")
        line = self.pushed(a, 1)[0]
        self.assertRegex(line, rb"^\* STATUS Box \(MESSAGES 1 UIDNEXT 2 "
                         rb"UIDVALIDITY \d+ UNSEEN 0 HIGHESTMODSEQ \d+\)\r\n$")
        # without FlagChange in the group: a flag change is not sent
        self.ok(a, "NOTIFY SET (PERSONAL (MessageNew MessageExpunge))")
        self.ok(b, "STORE 1 -FLAGS (\\Seen)")
        self.quiet(a)

    def test_mailbox_name_and_subscription_change(self):
        a, b = self.login(), self.login()
        self.ok(a, "NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))")
        self.ok(b, "CREATE Foo")
        self.assertEqual(self.pushed(a, 1), [b'* LIST () "/" Foo\r\n'])
        self.ok(b, "RENAME Foo Bar")
        self.assertEqual(self.pushed(a, 1),
                         [b'* LIST () "/" Bar ("OLDNAME" (Foo))\r\n'])
        self.ok(b, "SUBSCRIBE Bar")
        self.assertEqual(self.pushed(a, 1),
                         [b'* LIST (\\Subscribed) "/" Bar\r\n'])
        self.ok(b, "UNSUBSCRIBE Bar")
        self.assertEqual(self.pushed(a, 1), [b'* LIST () "/" Bar\r\n'])
        self.ok(b, "DELETE Bar")
        self.assertEqual(self.pushed(a, 1),
                         [b'* LIST (\\NonExistent) "/" Bar\r\n'])
        # message events were not asked for
        self.ok(b, "CREATE Baz")
        self.pushed(a, 1)
        self.append(b, "Baz")
        self.quiet(a)
        # a client's own changes are not echoed back to it
        self.ok(a, "CREATE Mine")
        self.quiet(a)
        # SUBTREE: only its names
        self.ok(a, "NOTIFY SET (SUBTREE (Work) (MailboxName))")
        self.ok(b, "CREATE Play")
        self.ok(b, "CREATE Work/x")
        self.assertEqual(self.pushed(a, 2), [b'* LIST () "/" Work\r\n',
                                            b'* LIST () "/" Work/x\r\n'])
        self.quiet(a)

    def test_utf8_and_mutf7_names(self):
        a, b = self.login(), self.login()
        self.ok(a, "NOTIFY SET (MAILBOXES (Caf&AOk-) (MailboxName))")
        self.ok(b, "CREATE Caf&AOk-")
        self.assertEqual(self.pushed(a, 1),
                         [b'* LIST () "/" Caf&AOk-\r\n'])
        self.ok(a, "ENABLE UTF8=ACCEPT")
        self.ok(a, "NOTIFY SET (MAILBOXES (\"Caf\xc3\xa9/x\") (MailboxName))"
                .encode("latin-1").decode("utf-8"))
        self.ok(b, "CREATE Caf&AOk-/x")
        self.assertEqual(self.pushed(a, 1),
                         ['* LIST () "/" "Café/x"\r\n'.encode()])

    def test_selected_pushes_everything_at_once(self):
        a, b = self.login(), self.login()
        self.append(b, "INBOX")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew (UID "
                "BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge "
                "FlagChange))")
        uid = self.append(b, "INBOX")
        got = self.pushed(a, 3)
        self.assertEqual(got[:2], [b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n"])
        self.assertEqual(got[2], b"* 2 FETCH (UID %d BODY[HEADER.FIELDS "
                         b"(SUBJECT)] {18}\r\n" % uid)
        self.assertEqual(a.read_exact(18), b"Subject: hello\r\n\r\n")
        self.assertEqual(a.readline(), b")\r\n")
        # the notification did not mark it read
        self.assertIn(b"FLAGS (\\Recent)",
                      b"".join(self.ok(a, "FETCH 2 FLAGS")))
        # FlagChange: another session's STORE
        self.ok(b, "SELECT INBOX")
        self.ok(b, "STORE 1 +FLAGS (\\Flagged)")
        self.assertEqual(self.pushed(a, 1),
                         [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"])
        # MessageExpunge: EXPUNGE between commands (SELECTED allows it)
        self.ok(b, "STORE 1 +FLAGS (\\Deleted)")
        self.pushed(a, 1)
        self.ok(b, "EXPUNGE")
        self.assertEqual(self.pushed(a, 1), [b"* 1 EXPUNGE\r\n"])
        self.quiet(a)
        self.assertIn(b"* 1 FETCH (UID %d)\r\n" % uid,
                      self.ok(a, "FETCH 1 UID"))

    def test_reselect_fetches_nothing_select_reported(self):
        a, b = self.login(), self.login()
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew (UID) MessageExpunge))")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "UNSELECT")
        self.append(b, "INBOX")
        got = self.ok(a, "SELECT INBOX")
        self.assertIn(b"* 1 EXISTS\r\n", got)
        self.assertFalse([l for l in got if b"FETCH" in l], got)
        self.quiet(a)
        # the next one is fetched
        uid = self.append(b, "INBOX")
        self.assertEqual(self.pushed(a, 3), [
            b"* 2 EXISTS\r\n", b"* 2 RECENT\r\n",
            b"* 2 FETCH (UID %d)\r\n" % uid])

    def response(self, r):
        """One pushed response, its literals read: the pieces joined."""
        out = [r.readline(timeout=60)]
        while True:
            m = re.search(rb"\{(\d+)\}\r\n$", out[-1])
            if not m:
                return b"".join(out)
            out.append(r.read_exact(int(m.group(1))))
            out.append(r.readline(timeout=60))

    def test_evolution_command(self):
        """What Evolution's camel-imapx sends when the server has NOTIFY
        (after ENABLE QRESYNC, before IDLE), and what it then gets."""
        a, b = self.login(), self.login()
        self.ok(b, "CREATE Work")
        self.ok(a, "ENABLE QRESYNC")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (selected (MessageNew (UID RFC822.SIZE "
                "RFC822.HEADER FLAGS BODYSTRUCTURE) MessageExpunge "
                "FlagChange)) (personal (MessageNew MessageExpunge "
                "MailboxName SubscriptionChange))")
        a.send("i IDLE\r\n")
        self.assertTrue(a.readline().startswith(b"+ "))
        uid = self.append(b, "INBOX")
        self.assertEqual(self.response(a), b"* 1 EXISTS\r\n")
        self.assertEqual(self.response(a), b"* 1 RECENT\r\n")
        fetch = self.response(a)
        self.assertTrue(fetch.startswith(b"* 1 FETCH (UID %d RFC822.SIZE %d "
                                         b"RFC822.HEADER {" % (uid, len(MSG))),
                        fetch)
        self.assertIn(b"Subject: hello\r\n", fetch)
        self.assertIn(b"BODYSTRUCTURE (\"text\" \"plain\"", fetch)
        self.assertIn(b"FLAGS (\\Recent)", fetch)
        self.append(b, "Work")
        self.assertRegex(self.response(a), rb"^\* STATUS Work \(MESSAGES 1 "
                         rb"UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ "
                         rb"\d+\)\r\n$")
        self.ok(b, "SELECT INBOX")
        self.ok(b, "STORE 1 +FLAGS (\\Deleted)")
        self.assertRegex(self.response(a), rb"^\* 1 FETCH \(UID %d MODSEQ "
                         rb"\(\d+\) FLAGS \(\\Deleted \\Recent\)\)\r\n$"
                         % uid)
        self.ok(b, "EXPUNGE")
        self.assertEqual(self.response(a), b"* VANISHED %d\r\n" % uid)
        self.ok(b, "SUBSCRIBE Work")
        self.assertEqual(self.response(a),
                         b'* LIST (\\Subscribed) "/" Work\r\n')
        a.send("DONE\r\n")
        self.assertTrue(a.read_until_tag("i")[-1].startswith(b"i OK"))

    def test_selected_delayed_holds_expunges(self):
        a, b = self.login(), self.login()
        for _ in range(2):
            self.append(b, "INBOX")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge "
                "FlagChange))")
        self.ok(b, "SELECT INBOX")
        self.ok(b, "STORE 1 +FLAGS (\\Deleted)")
        self.assertEqual(self.pushed(a, 1),
                         [b"* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n"])
        self.ok(b, "EXPUNGE")
        self.append(b, "INBOX")
        # new mail comes at once; the expunge waits, so sequence numbers
        # the client uses meanwhile stay valid
        self.assertEqual(self.pushed(a, 2), [b"* 3 EXISTS\r\n",
                                            b"* 3 RECENT\r\n"])
        self.assertEqual(self.ok(a, "FETCH 2:3 UID"), [
            b"* 2 FETCH (UID 2)\r\n", b"* 3 FETCH (UID 3)\r\n"])
        self.assertEqual(self.ok(a, "NOOP"), [b"* 1 EXPUNGE\r\n"])

    def test_selected_without_flag_change(self):
        a, b = self.login(), self.login()
        self.append(b, "INBOX")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew MessageExpunge))")
        self.ok(b, "SELECT INBOX")
        self.ok(b, "STORE 1 +FLAGS (\\Flagged)")
        self.quiet(a)

    def test_no_selected_filter_keeps_rfc3501_rules(self):
        a, b = self.login(), self.login()
        self.ok(b, "CREATE Other")
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (MAILBOXES Other (MessageNew "
                "MessageExpunge))")
        self.append(b, "INBOX")
        self.append(b, "Other")
        # only Other's STATUS is pushed; INBOX's EXISTS waits for a command
        self.assertTrue(self.pushed(a, 1)[0].startswith(b"* STATUS Other "))
        self.assertEqual(self.ok(a, "NOOP"), [b"* 1 EXISTS\r\n",
                                              b"* 1 RECENT\r\n"])

    def test_selected_mailbox_renamed_then_deleted(self):
        a, b = self.login(), self.login()
        self.ok(b, "CREATE Old")
        self.append(b, "Old")
        self.ok(a, "SELECT Old")
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                "(PERSONAL (MailboxName))")
        self.ok(b, "RENAME Old New")
        self.assertEqual(self.pushed(a, 1),
                         [b'* LIST () "/" New ("OLDNAME" (Old))\r\n'])
        # still selected, by its new name
        self.assertEqual(len(self.ok(a, "FETCH 1 UID")), 1)
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                "(PERSONAL (MailboxName))")
        self.ok(b, "DELETE New")
        got = self.pushed(a, 2)
        self.assertEqual(got[0], b'* LIST (\\NonExistent) "/" New\r\n')
        self.assertTrue(got[1].startswith(b"* BYE "), got)
        self.assertTrue(a.closed())

    def test_big_fetch_att_streams_during_idle(self):
        a, b = self.login(), self.login()
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (SELECTED (MessageNew (BODY.PEEK[]) "
                "MessageExpunge))")
        a.send("i IDLE\r\n")
        self.assertTrue(a.readline().startswith(b"+ "))
        append_big(b, "INBOX", n=2)
        # each new message: EXISTS (and RECENT), then its FETCH with the
        # whole message as a literal, streamed as the client reads
        bodies = 0
        while bodies < 2:
            line = a.readline(timeout=60)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m is None:
                self.assertRegex(line, rb"^\* \d+ (EXISTS|RECENT)\r\n$")
                continue
            self.assertRegex(line, rb"^\* %d FETCH \(" % (bodies + 1))
            self.assertEqual(a.read_exact(int(m.group(1))), BIG_MESSAGE)
            self.assertRegex(a.readline(), rb"^( UID \d+)?\)\r\n$")
            bodies += 1
        a.send("DONE\r\n")
        self.assertTrue(a.read_until_tag("i")[-1].startswith(b"i OK"))
        self.assertEqual(len(self.ok(a, "FETCH 1:2 UID")), 2)

    def test_errors(self):
        a = self.login()
        for bad in ("NOTIFY", "NOTIFY SET", "NOTIFY SET STATUS",
                    "NOTIFY NONE x", "NOTIFY GET (PERSONAL NONE)",
                    "NOTIFY SET PERSONAL", "NOTIFY SET (BOGUS (MessageNew "
                    "MessageExpunge))", "NOTIFY SET (PERSONAL)",
                    "NOTIFY SET (SUBTREE (MailboxName))",
                    "NOTIFY SET (PERSONAL (MessageNew))",
                    "NOTIFY SET (PERSONAL (MessageExpunge))",
                    "NOTIFY SET (PERSONAL (FlagChange))",
                    "NOTIFY SET (SELECTED (MailboxName))",
                    "NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                    "(SELECTED-DELAYED (MessageNew MessageExpunge))",
                    "NOTIFY SET (PERSONAL (MessageNew (UID) "
                    "MessageExpunge))",
                    "NOTIFY SET (SELECTED (MessageNew (NOSUCH) "
                    "MessageExpunge))",
                    "NOTIFY SET (MAILBOXES () (MailboxName))",
                    "NOTIFY SET (PERSONAL ())"):
            got = a.cmd("b", bad)
            self.assertTrue(got[-1].startswith(b"b BAD "), (bad, got))
        for unsupported in ("AnnotationChange", "MailboxMetadataChange",
                            "ServerMetadataChange", "FutureEvent"):
            got = a.cmd("n", "NOTIFY SET (PERSONAL (MessageNew "
                        "MessageExpunge %s))" % unsupported)
            self.assertEqual(got[-1], b"n NO [BADEVENT (MessageNew "
                             b"MessageExpunge FlagChange MailboxName "
                             b"SubscriptionChange)] Unsupported event\r\n")
        # more groups than the named limit
        got = a.cmd("m", "NOTIFY SET " + " ".join(
            ["(PERSONAL (MailboxName))"] * 33))
        self.assertTrue(got[-1].startswith(b"m BAD "), got)
        # not before login
        r = self.raw()
        self.assertTrue(r.cmd("x", "NOTIFY NONE")[-1].startswith(b"x BAD"))

    def test_none_turns_it_off(self):
        a, b = self.login(), self.login()
        self.ok(a, "NOTIFY SET (PERSONAL (MailboxName))")
        self.ok(a, "NOTIFY NONE")
        self.ok(b, "CREATE Foo")
        self.quiet(a)

    def test_overflow(self):
        """A client that does not read while mailboxes change: past the
        queue's limit it gets NOTIFICATIONOVERFLOW, and NOTIFY is off."""
        b = self.login()
        append_big(b, "INBOX", n=8)
        a = self.slow_reader(rcvbuf=4096)
        self.ok(a, "SELECT INBOX")
        self.ok(a, "NOTIFY SET (PERSONAL (MailboxName))")
        # 8 MB the client does not read: the FETCH waits in mid-stream
        a.send("f FETCH 1:8 BODY.PEEK[]\r\n")
        for i in range(300):
            self.ok(b, "CREATE m%03d" % i)
        got = a.read_responses("f", timeout=120)
        self.assertTrue(got[-1][0].startswith(b"f OK"), got[-1])
        self.assertEqual(len(got), 9)
        self.assertTrue(all(r[1] == BIG_MESSAGE for r in got[:8]))
        # after the FETCH: the notice, and not one LIST (the queue went)
        after = []
        while True:
            line = a.readline(timeout=60)
            after.append(line)
            if b"NOTIFICATIONOVERFLOW" in line:
                break
        self.assertEqual(after, [b"* OK [NOTIFICATIONOVERFLOW] Too many "
                                 b"notifications waited for this client: "
                                 b"NOTIFY is off\r\n"])
        self.ok(b, "CREATE after")
        self.quiet(a)
        self.assertIn("event=notify_overflow", self.srv.log())

    def test_imaplib(self):
        """imaplib sends NOTIFY as a raw command; the STATUS and LIST it
        then gets land in its untagged responses."""
        imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))
        a, b = self.plain(), self.plain()
        typ, _ = a._simple_command("NOTIFY", "SET", "STATUS",
                                   "(PERSONAL (MessageNew MessageExpunge "
                                   "MailboxName))")
        self.assertEqual(typ, "OK")
        a.untagged_responses.pop("STATUS", None)
        b.create("Reports")
        b.append("Reports", None, None, MSG)
        typ, _ = a.noop()
        self.assertEqual(typ, "OK")
        lists = a.untagged_responses.pop("LIST", [])
        self.assertIn(b'() "/" Reports', lists)
        status = a.untagged_responses.pop("STATUS", [])
        self.assertTrue(any(s.startswith(b"Reports (MESSAGES 1 ")
                            for s in status), status)
        with self.assertRaises(imaplib.IMAP4.error):
            a._simple_command("NOTIFY", "SET", "(PERSONAL (MessageNew))")
