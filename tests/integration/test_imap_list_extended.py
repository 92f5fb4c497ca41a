"""LIST-EXTENDED (RFC 5258) with every selection and return option,
LIST-STATUS (RFC 5819), CREATE-SPECIAL-USE (RFC 6154), STATUS=SIZE
(RFC 8438), STATUS DELETED (RFC 9051) and APPENDLIMIT (RFC 7889), on
the raw protocol."""
import re

from imapd import ImapTestCase, USER, PASSWORD

MSG = b"Subject: s\r\n\r\nbody\r\n"


class ListExtendedTest(ImapTestCase):

    def login(self):
        r = self.raw()
        lines = r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        self.assertTrue(lines[-1].startswith(b"l OK"), lines)
        return r

    def ok(self, r, text):
        lines = r.cmd("t", text)
        self.assertTrue(lines[-1].startswith(b"t OK"), (text, lines))
        return lines[:-1]

    def lists(self, r, text):
        """{name: (attributes, extended data)} of LIST responses."""
        out = {}
        for line in self.ok(r, text):
            m = re.match(rb'\* LIST \(([^)]*)\) "/" ("[^"]*"|\S+)(.*)\r\n$',
                         line)
            self.assertIsNotNone(m, line)
            out[m.group(2).strip(b'"').decode()] = (
                set(m.group(1).decode().split()), m.group(3).decode())
        return out

    def test_capabilities(self):
        r = self.login()
        caps = r.cmd("c", "CAPABILITY")[0].split()
        for c in (b"LIST-EXTENDED", b"LIST-STATUS", b"CREATE-SPECIAL-USE",
                  b"SPECIAL-USE", b"STATUS=SIZE", b"APPENDLIMIT=67108864"):
            self.assertIn(c, caps)

    def setup_tree(self, r):
        # Foo (unsubscribed) / Foo/Bar (subscribed)
        # Baz (subscribed) / Baz/Qux (subscribed)
        # Gone/Child subscribed but never created
        for name in ("Foo/Bar", "Baz/Qux", "Plain"):
            self.ok(r, "CREATE %s" % name)
        for name in ("Foo/Bar", "Baz", "Baz/Qux", "Gone/Child"):
            self.ok(r, "SUBSCRIBE %s" % name)

    def test_subscribed_recursivematch(self):
        r = self.login()
        self.setup_tree(r)
        # without RECURSIVEMATCH: only the subscribed names "%" reaches
        got = self.lists(r, 'LIST (SUBSCRIBED) "" "%"')
        self.assertIn("Baz", got)
        self.assertNotIn("Foo", got)
        self.assertNotIn("Plain", got)
        self.assertIn("\\Subscribed", got["Baz"][0])
        # with it: Foo (not subscribed) has a subscribed child, Baz too
        got = self.lists(r, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" '
                         'RETURN (CHILDREN)')
        self.assertEqual(got["Foo"][1], ' ("CHILDINFO" ("SUBSCRIBED"))')
        self.assertNotIn("\\Subscribed", got["Foo"][0])
        self.assertIn("\\HasChildren", got["Foo"][0])
        self.assertEqual(got["Baz"][1], ' ("CHILDINFO" ("SUBSCRIBED"))')
        self.assertIn("\\Subscribed", got["Baz"][0])
        # a parent that exists only as a subscription's parent
        self.assertEqual(got["Gone"][0], {"\\NonExistent"})
        self.assertEqual(got["Gone"][1], ' ("CHILDINFO" ("SUBSCRIBED"))')
        self.assertNotIn("Plain", got)
        self.assertNotIn("INBOX/x", got)
        # "*": the children themselves
        got = self.lists(r, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
        self.assertIn("Foo/Bar", got)
        self.assertEqual(got["Foo/Bar"][1], "")
        self.assertEqual(got["Gone/Child"][0], {"\\Subscribed",
                                                "\\NonExistent"})
        # RECURSIVEMATCH alone, or with REMOTE only: BAD (RFC 5258 3)
        for opts in ("RECURSIVEMATCH", "REMOTE RECURSIVEMATCH"):
            lines = r.cmd("b", 'LIST (%s) "" "*"' % opts)
            self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        lines = r.cmd("b", 'LIST (BOGUS) "" "*"')
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)

    def test_remote_and_return_options(self):
        r = self.login()
        self.setup_tree(r)
        plain = self.lists(r, 'LIST "" "*"')
        # REMOTE: no remote mailboxes here, the same list
        self.assertEqual(self.lists(r, 'LIST (REMOTE) "" "*"'), plain)
        got = self.lists(r, 'LIST "" "*" RETURN (SUBSCRIBED CHILDREN '
                         'SPECIAL-USE)')
        self.assertIn("\\Subscribed", got["Baz"][0])
        self.assertNotIn("\\Subscribed", got["Foo"][0])
        self.assertIn("\\HasChildren", got["Foo"][0])
        self.assertIn("\\HasNoChildren", got["Plain"][0])
        self.assertIn("\\Sent", got["Sent"][0])
        # several patterns in one LIST
        got = self.lists(r, 'LIST "" ("Foo" "Plain")')
        self.assertEqual(sorted(got), ["Foo", "Plain"])

    def test_special_use_selection_and_create(self):
        r = self.login()
        lines = r.cmd("c", 'CREATE "My Archive" (USE (\\Archive))')
        self.assertTrue(lines[-1].startswith(b"c OK"), lines)
        got = self.lists(r, 'LIST (SPECIAL-USE) "" "*"')
        self.assertIn("My Archive", got)
        self.assertIn("\\Archive", got["My Archive"][0])
        self.assertNotIn("INBOX", got)
        for name in got:
            self.assertTrue(got[name][0] & {"\\Sent", "\\Drafts", "\\Trash",
                                            "\\Junk", "\\Archive", "\\All",
                                            "\\Flagged"}, (name, got))
        # RECURSIVEMATCH with SPECIAL-USE: a parent of a special folder
        self.ok(r, 'CREATE "P/Spam" (USE (\\Junk))')
        got = self.lists(r, 'LIST (SPECIAL-USE RECURSIVEMATCH) "" "%"')
        self.assertEqual(got["P"][1], ' ("CHILDINFO" ("SPECIAL-USE"))')
        # unknown or doubled uses: NO [USEATTR]; bad syntax: BAD
        lines = r.cmd("c", 'CREATE x1 (USE (\\Important))')
        self.assertTrue(lines[-1].startswith(b"c NO [USEATTR]"), lines)
        lines = r.cmd("c", 'CREATE x2 (USE (\\Sent \\Trash))')
        self.assertTrue(lines[-1].startswith(b"c NO [USEATTR]"), lines)
        for bad in ('CREATE x3 (USE \\Sent)', 'CREATE x3 (FOO (bar))',
                    'CREATE x3 (USE (Sent))', 'CREATE x3 USE'):
            lines = r.cmd("c", bad)
            self.assertTrue(lines[-1].startswith(b"c BAD"), (bad, lines))
        got = self.lists(r, 'LIST "" "x*"')
        self.assertEqual(got, {})

    def test_list_status_and_status_items(self):
        r = self.login()
        self.ok(r, "CREATE Box")
        for i in range(3):
            r.send("a APPEND Box (\\Deleted) {%d+}\r\n" % len(MSG))
            r.send(MSG + b"\r\n")
            self.assertTrue(r.read_until_tag("a")[-1].startswith(b"a OK"))
        r.send("a APPEND Box {%d+}\r\n" % len(MSG))
        r.send(MSG + b"\r\n")
        r.read_until_tag("a")
        lines = self.ok(r, "STATUS Box (MESSAGES SIZE APPENDLIMIT UNSEEN)")
        self.assertEqual(lines, [b"* STATUS Box (MESSAGES 4 SIZE %d "
                                 b"APPENDLIMIT 67108864 UNSEEN 4)\r\n"
                                 % (4 * len(MSG))])
        lines = self.ok(r, 'LIST "" "Box" RETURN (STATUS (MESSAGES SIZE))')
        self.assertEqual(lines[1], b"* STATUS Box (MESSAGES 4 SIZE %d)\r\n"
                         % (4 * len(MSG)))
        lines = r.cmd("b", "STATUS Box (BOGUS)")
        self.assertTrue(lines[-1].startswith(b"b BAD"), lines)
        # APPENDLIMIT is enforced: a bigger literal is refused
        lines = r.cmd("b", "APPEND Box {67108865}")
        self.assertTrue(lines[-1].startswith(b"b NO [TOOBIG]"), lines)


class AppendLimitConfigTest(ImapTestCase):
    """APPENDLIMIT follows the configured APPEND limit (the message
    streams to a spool file; other literals have their own, smaller
    limit)."""
    server_args = ("--max-append", "100000")

    def test_appendlimit_follows_limit(self):
        r = self.raw()
        r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD))
        caps = r.cmd("c", "CAPABILITY")[0].split()
        self.assertIn(b"APPENDLIMIT=100000", caps)
        lines = r.cmd("s", "STATUS INBOX (APPENDLIMIT)")
        self.assertEqual(lines[0], b"* STATUS INBOX (APPENDLIMIT 100000)\r\n")
        lines = r.cmd("a", "APPEND INBOX {100001}")
        self.assertTrue(lines[-1].startswith(b"a NO [TOOBIG]"), lines)
