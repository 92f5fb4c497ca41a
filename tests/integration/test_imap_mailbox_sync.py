"""A mailbox renamed or deleted by one session, as the other sessions that
have it selected (IDLE or polling with NOOP) see it (issue 7, RFC 2180
section 3): DELETE ends the other sessions with BYE before they are served
anything from the vanished mailbox; RENAME leaves them working on the same
mailbox under its new name; a new mailbox created under a reused name has
a new UIDVALIDITY, so a QRESYNC SELECT with the old one gets a full answer;
RENAME INBOX empties INBOX for the sessions that have it selected."""
import re

from imapd import ImapTestCase, USER, PASSWORD, BIG_MESSAGE, append_big

MSG = (b"From: a@example.org\r\nTo: alice@example.com\r\nSubject: s%d\r\n"
       b"\r\nbody %d\r\n")

BYE_DELETED = b"* BYE Selected mailbox was deleted"


def code(lines, name):
    """The number of the response code [name n] in lines."""
    m = re.search(rb"\[" + name.encode() + rb" (\d+)\]", b"".join(lines))
    if m is None:
        raise AssertionError("no [%s] in %r" % (name, lines))
    return int(m.group(1))


def status_items(lines):
    m = re.search(rb"^\* STATUS .* \((.*)\)\r\n$", lines[0])
    if m is None:
        raise AssertionError("no STATUS in %r" % (lines,))
    it = m.group(1).split()
    return {it[i].decode(): int(it[i + 1]) for i in range(0, len(it), 2)}


class ImapMailboxSyncTest(ImapTestCase):

    def _session(self, qresync=False):
        r = self.raw()
        self._ok(r.cmd("l", "LOGIN %s %s" % (USER, PASSWORD)), "l")
        if qresync:
            self._ok(r.cmd("e", "ENABLE QRESYNC"), "e")
        return r

    def _ok(self, lines, tag):
        self.assertTrue(lines and lines[-1].startswith(tag.encode() + b" OK"),
                        lines)
        return lines

    def _append(self, r, box, i):
        body = MSG % (i, i)
        r.send("ap APPEND %s {%d+}\r\n" % (box, len(body)))
        r.send(body + b"\r\n")
        lines = self._ok(r.read_until_tag("ap"), "ap")
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", lines[-1])
        return int(m.group(1)), int(m.group(2))

    def _mailbox(self, r, box, n):
        self._ok(r.cmd("c", "CREATE %s" % box), "c")
        for i in range(n):
            self._append(r, box, i)

    def _idle(self, r):
        r.send("i IDLE\r\n")
        self.assertTrue(r.readline().startswith(b"+ "))

    def _status(self, r, box, items="MESSAGES UIDNEXT UIDVALIDITY"):
        return status_items(self._ok(r.cmd("st", "STATUS %s (%s)" %
                                           (box, items)), "st"))

    def _bye_and_eof(self, r, lines):
        """lines (what a command got) is exactly the BYE, then EOF."""
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(BYE_DELETED), lines)
        self.assertTrue(r.closed(), "connection still open")

    # ---- DELETE ----

    def test_delete_selected_mailbox_other_sessions(self):
        a = self._session()
        self._mailbox(a, "X", 3)
        closer = self._session()
        self._ok(closer.cmd("s", "SELECT X"), "s")
        self._ok(closer.cmd("d", r"STORE 1 +FLAGS (\Deleted)"), "d")
        idler = self._session()
        self._ok(idler.cmd("s", "SELECT X"), "s")
        self._idle(idler)
        poller = self._session()
        self._ok(poller.cmd("s", "EXAMINE X"), "s")
        fetcher = self._session(qresync=True)
        self._ok(fetcher.cmd("s", "SELECT X"), "s")
        storer = self._session()
        self._ok(storer.cmd("s", "SELECT X"), "s")
        searcher = self._session()
        self._ok(searcher.cmd("s", "SELECT X"), "s")
        leaver = self._session()
        self._ok(leaver.cmd("s", "SELECT X"), "s")

        self._ok(a.cmd("d", "DELETE X"), "d")
        # IDLE hears it at once, from the commit itself
        self.assertTrue(idler.readline(timeout=10).startswith(BYE_DELETED))
        self.assertTrue(idler.closed())
        # polling sessions get BYE instead of an answer, never data of
        # the deleted mailbox, and never a tagged completion
        self._bye_and_eof(poller, poller.cmd("n", "NOOP"))
        self._bye_and_eof(fetcher, fetcher.cmd("f", "FETCH 1:* (FLAGS)"))
        self._bye_and_eof(storer, storer.cmd("t", r"STORE 1 +FLAGS (\Seen)"))
        self._bye_and_eof(searcher, searcher.cmd("x", "UID SEARCH ALL"))
        # commands that leave the mailbox still work
        lines = self._ok(leaver.cmd("s", "SELECT INBOX"), "s")
        self.assertEqual(lines[0], b"* OK [CLOSED] Previous mailbox is now "
                         b"closed\r\n")
        self.assertIn(b"* 0 EXISTS\r\n", lines)
        self._ok(leaver.cmd("n", "NOOP"), "n")
        self._ok(closer.cmd("c", "CLOSE"), "c")
        self._ok(closer.cmd("l", 'LIST "" X'), "l")
        # the deleter itself goes on
        lines = self._ok(a.cmd("l", 'LIST "" *'), "l")
        self.assertFalse([x for x in lines if x.rstrip().endswith(b" X")],
                         lines)
        log = self.srv.log()
        self.assertEqual(log.count("event=selected_mailbox_deleted"), 5, log)
        self.assertNotIn("store_error", log)
        self.assertNotIn("close_expunge_failed", log)

    def test_delete_own_selected_mailbox_without_qresync(self):
        """As Dovecot: OK, then BYE (the client could not know it was
        deselected)."""
        a = self._session()
        self._mailbox(a, "X", 2)
        self._ok(a.cmd("s", "SELECT X"), "s")
        a.send("d DELETE X\r\n")
        self.assertEqual(a.readline(), b"d OK DELETE completed\r\n")
        self.assertTrue(a.readline().startswith(BYE_DELETED))
        self.assertTrue(a.closed(), "connection still open")
        b = self._session()
        lines = self._ok(b.cmd("l", 'LIST "" X'), "l")
        self.assertEqual(lines, [b"l OK LIST completed\r\n"])

    def test_delete_own_selected_mailbox(self):
        """A QRESYNC client is told with [CLOSED] and stays."""
        a = self._session(qresync=True)
        self._mailbox(a, "X", 2)
        other = self._session()
        self._ok(other.cmd("s", "SELECT X"), "s")
        self._ok(a.cmd("s", "SELECT X"), "s")
        lines = self._ok(a.cmd("d", "DELETE X"), "d")
        self.assertEqual(lines, [b"* OK [CLOSED] Selected mailbox was "
                                 b"deleted\r\n", b"d OK DELETE completed\r\n"])
        # the session is authenticated, not selected: no stale answers
        lines = a.cmd("f", "FETCH 1:* (FLAGS)")
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(b"f BAD"), lines)
        self._ok(a.cmd("s", "SELECT INBOX"), "s")
        self._ok(a.cmd("n", "NOOP"), "n")
        # a refused DELETE of the selected mailbox leaves it selected
        self._append(a, "INBOX", 1)
        lines = a.cmd("d", "DELETE INBOX")
        self.assertTrue(lines[-1].startswith(b"d NO"), lines)
        lines = self._ok(a.cmd("f", "FETCH 1:* (UID)"), "f")
        self.assertEqual(lines[0], b"* 1 FETCH (UID 1)\r\n")
        # the other session that had X selected is told
        self._bye_and_eof(other, other.cmd("n", "NOOP"))

    def test_delete_and_recreate_gets_new_uidvalidity(self):
        a = self._session()
        self._mailbox(a, "X", 3)
        dev = self._session(qresync=True)
        lines = self._ok(dev.cmd("s", "SELECT X"), "s")
        old_uv, old_hms = code(lines, "UIDVALIDITY"), code(lines,
                                                           "HIGHESTMODSEQ")
        self._ok(dev.cmd("o", "LOGOUT"), "o")
        idler = self._session()
        self._ok(idler.cmd("s", "SELECT X"), "s")
        self._idle(idler)

        self._ok(a.cmd("d", "DELETE X"), "d")
        self._ok(a.cmd("c", "CREATE X"), "c")
        new_uv, uid = self._append(a, "X", 9)
        self.assertNotEqual(new_uv, old_uv)
        self.assertEqual(uid, 1)
        # the session of the old X never sees the new X
        lines = [idler.readline(timeout=10)]
        self.assertTrue(lines[0].startswith(BYE_DELETED), lines)
        self.assertTrue(idler.closed())
        self.assertEqual(self._status(a, "X")["UIDVALIDITY"], new_uv)

        # a device resyncing with the old UIDVALIDITY gets the full answer:
        # no VANISHED (EARLIER), no FETCH of changes, the new UIDVALIDITY
        dev = self._session(qresync=True)
        lines = self._ok(dev.cmd("s", "SELECT X (QRESYNC (%d %d 1:3))" %
                                 (old_uv, old_hms)), "s")
        self.assertEqual(code(lines, "UIDVALIDITY"), new_uv)
        self.assertIn(b"* 1 EXISTS\r\n", lines)
        self.assertFalse([x for x in lines if b"VANISHED" in x or
                          b" FETCH " in x], lines)
        # with the new UIDVALIDITY the delta is exact again
        hms = code(lines, "HIGHESTMODSEQ")
        self._ok(a.cmd("s", "SELECT X"), "s")
        self._ok(a.cmd("f", r"STORE 1 +FLAGS (\Flagged)"), "f")
        self._ok(dev.cmd("u", "UNSELECT"), "u")
        lines = self._ok(dev.cmd("s", "SELECT X (QRESYNC (%d %d))" %
                                 (new_uv, hms)), "s")
        self.assertEqual([x for x in lines if b" FETCH " in x],
                         [b"* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (%d))"
                          b"\r\n" % (hms + 1)], lines)

    def test_delete_while_streaming_a_fetch(self):
        """The mailbox is deleted while a big FETCH is paused on a client
        that does not read: the stream ends with BYE, not with OK."""
        a = self._session()
        self._ok(a.cmd("c", "CREATE X"), "c")
        append_big(a, "X")
        f = self.slow_reader()
        self._ok(f.cmd("s", "SELECT X"), "s")
        f.send("f FETCH 1:* (BODY.PEEK[])\r\n")
        self.assertTrue(f.readline().startswith(b"* 1 FETCH"))
        self._ok(a.cmd("d", "DELETE X"), "d")
        f.closed(timeout=30)
        data = f.buf
        self.assertTrue(data.endswith(BYE_DELETED + b", have to disconnect"
                                      b"\r\n"), data[-200:])
        self.assertNotIn(b"\r\nf OK", data)
        self.assertLess(len(data), 8 * len(BIG_MESSAGE))
        self.assertIn("event=selected_mailbox_deleted", self.srv.log())

    def test_deleted_parent_listed_noselect(self):
        """DELETE of a parent leaves its children (RFC 3501 6.3.4); the
        other devices still reach them through LIST "%": the parent is
        listed \\Noselect \\HasChildren until it is created again."""
        a = self._session()
        self._ok(a.cmd("c", "CREATE P/q/c"), "c")
        self._ok(a.cmd("c", "CREATE P/r"), "c")
        self._ok(a.cmd("c", "SUBSCRIBE P"), "c")
        old_uv = self._status(a, "P")["UIDVALIDITY"]
        self._ok(a.cmd("d", "DELETE P"), "d")
        self._ok(a.cmd("d", "DELETE P/q"), "d")
        b = self._session()
        lines = self._ok(b.cmd("l", 'LIST "" %'), "l")
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "/" P\r\n', lines)
        lines = self._ok(b.cmd("l", 'LIST "" P/%'), "l")
        self.assertEqual(lines[:-1], [
            b'* LIST (\\Noselect \\HasChildren) "/" P/q\r\n',
            b'* LIST (\\HasNoChildren) "/" P/r\r\n'])
        lines = self._ok(b.cmd("l", 'LIST "" P*'), "l")
        self.assertEqual(len(lines), 5, lines)
        self.assertEqual(lines[2], b'* LIST (\\HasNoChildren) "/" P/q/c\r\n')
        # subscribed, still: LSUB and LIST (SUBSCRIBED) say it is gone
        self.assertEqual(self._ok(b.cmd("l", 'LSUB "" P'), "l")[:-1],
                         [b'* LSUB (\\Noselect) "/" P\r\n'])
        self.assertEqual(
            self._ok(b.cmd("l", 'LIST (SUBSCRIBED) "" P'), "l")[:-1],
            [b'* LIST (\\NonExistent \\HasChildren \\Subscribed) "/" '
             b'P\r\n'])
        for q in ("SELECT P", "STATUS P (MESSAGES)", "DELETE P"):
            lines = b.cmd("x", q)
            self.assertTrue(lines[-1].startswith(b"x NO"), (q, lines))
        # a new P is a mailbox again, with a new UIDVALIDITY
        self._ok(a.cmd("c", "CREATE P"), "c")
        lines = self._ok(b.cmd("l", 'LIST "" %'), "l")
        self.assertIn(b'* LIST (\\HasChildren) "/" P\r\n', lines)
        self.assertNotEqual(self._status(b, "P")["UIDVALIDITY"], old_uv)
        lines = self._ok(b.cmd("l", 'LIST "" P/%'), "l")
        self.assertEqual(lines[0],
                         b'* LIST (\\Noselect \\HasChildren) "/" P/q\r\n')

    # ---- RENAME ----

    def test_rename_selected_mailbox_keeps_working(self):
        a = self._session()
        self._mailbox(a, "X", 3)
        self._ok(a.cmd("c", "CREATE P/sub"), "c")
        self._append(a, "P/sub", 0)
        uv = self._status(a, "X")["UIDVALIDITY"]
        sub_uv = self._status(a, "P/sub")["UIDVALIDITY"]
        poller = self._session(qresync=True)
        lines = self._ok(poller.cmd("s", "SELECT X"), "s")
        hms = code(lines, "HIGHESTMODSEQ")
        idler = self._session()
        self._ok(idler.cmd("s", "SELECT X"), "s")
        self._idle(idler)
        child = self._session()
        self._ok(child.cmd("s", "SELECT P/sub"), "s")

        self._ok(a.cmd("r", "RENAME X Y"), "r")
        self._ok(a.cmd("r2", "RENAME P Q"), "r2")
        # same mailbox, same UIDVALIDITY, under the new name
        st = self._status(a, "Y")
        self.assertEqual((st["UIDVALIDITY"], st["MESSAGES"]), (uv, 3))
        self.assertEqual(self._status(a, "Q/sub")["UIDVALIDITY"], sub_uv)
        lines = self._ok(a.cmd("l", 'LIST "" *'), "l")
        names = [x.rsplit(b" ", 1)[1].strip() for x in lines[:-1]]
        self.assertIn(b"Y", names)
        self.assertIn(b"Q/sub", names)
        self.assertNotIn(b"X", names)
        self.assertNotIn(b"P/sub", names)
        lines = a.cmd("s2", "STATUS X (MESSAGES)")
        self.assertTrue(lines[-1].startswith(b"s2 NO"), lines)

        # the renamed mailbox goes on: new mail, flags, expunge
        _, uid = self._append(a, "Y", 3)
        self.assertEqual(uid, 4)
        # the first thing the IDLE session hears is that new message
        # (\Recent there: it is told first): the rename sent nothing
        self.assertEqual(idler.readline(timeout=10), b"* 4 EXISTS\r\n")
        self.assertEqual(idler.readline(timeout=10), b"* 1 RECENT\r\n")
        lines = self._ok(poller.cmd("n", "NOOP"), "n")
        self.assertEqual(lines, [b"* 4 EXISTS\r\n", b"n OK NOOP completed\r\n"])
        lines = self._ok(poller.cmd("t", r"UID STORE 2 +FLAGS.SILENT "
                                    r"(\Deleted)"), "t")
        self.assertEqual(idler.readline(timeout=10),
                         b"* 2 FETCH (FLAGS (\\Deleted))\r\n")
        lines = self._ok(poller.cmd("x", "EXPUNGE"), "x")
        self.assertIn(b"* VANISHED 2\r\n", lines)
        self.assertEqual(idler.readline(timeout=10), b"* 2 EXPUNGE\r\n")
        idler.send("DONE\r\n")
        self._ok(idler.read_until_tag("i"), "i")
        lines = self._ok(idler.cmd("f", "FETCH 1:* (UID)"), "f")
        self.assertEqual([x for x in lines if x.startswith(b"* ")],
                         [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n",
                          b"* 3 FETCH (UID 4)\r\n"])
        lines = self._ok(child.cmd("f", "UID FETCH 1:* (UID)"), "f")
        self.assertEqual(lines[0], b"* 1 FETCH (UID 1)\r\n")

        # a new X is another mailbox: nothing of it reaches them
        self._ok(a.cmd("c", "CREATE X"), "c")
        new_uv, _ = self._append(a, "X", 7)
        self.assertNotEqual(new_uv, uv)
        self._append(a, "Y", 8)
        # (1 and 3 were \Recent in poller, its first SELECT; now 5 too)
        self.assertEqual(self._ok(poller.cmd("n", "NOOP"), "n"),
                         [b"* 4 EXISTS\r\n", b"* 3 RECENT\r\n",
                          b"n OK NOOP completed\r\n"])
        # a device that knew X resyncs it under the new name
        dev = self._session(qresync=True)
        lines = self._ok(dev.cmd("s", "SELECT Y (QRESYNC (%d %d 1:3))" %
                                 (uv, hms)), "s")
        self.assertEqual(code(lines, "UIDVALIDITY"), uv)
        self.assertIn(b"* VANISHED (EARLIER) 2\r\n", lines)

    def test_rename_inbox_seen_by_selected_sessions(self):
        a = self._session()
        for i in range(3):
            self._append(a, "INBOX", i)
        st = self._status(a, "INBOX")
        uv, uidnext = st["UIDVALIDITY"], st["UIDNEXT"]
        qr = self._session(qresync=True)
        lines = self._ok(qr.cmd("s", "SELECT INBOX"), "s")
        hms = code(lines, "HIGHESTMODSEQ")
        idler = self._session()
        self._ok(idler.cmd("s", "SELECT INBOX"), "s")
        self._idle(idler)

        self._ok(a.cmd("r", "RENAME INBOX Old"), "r")
        # INBOX stays (same UIDVALIDITY) and is empty: its messages left
        for _ in range(3):
            self.assertEqual(idler.readline(timeout=10), b"* 1 EXPUNGE\r\n")
        self.assertEqual(self._ok(qr.cmd("n", "NOOP"), "n"),
                         [b"* VANISHED 1:3\r\n", b"n OK NOOP completed\r\n"])
        st = self._status(a, "INBOX")
        self.assertEqual((st["UIDVALIDITY"], st["MESSAGES"], st["UIDNEXT"]),
                         (uv, 0, uidnext))
        old = self._status(a, "Old")
        self.assertEqual(old["MESSAGES"], 3)
        self.assertNotEqual(old["UIDVALIDITY"], uv)
        # new mail goes on arriving in INBOX with the next UIDs
        _, uid = self._append(a, "INBOX", 5)
        self.assertEqual(uid, uidnext)
        self.assertEqual(idler.readline(timeout=10), b"* 1 EXISTS\r\n")
        idler.send("DONE\r\n")
        self._ok(idler.read_until_tag("i"), "i")
        lines = self._ok(idler.cmd("f", "FETCH 1:* (UID)"), "f")
        self.assertEqual(lines[0], b"* 1 FETCH (UID %d)\r\n" % uidnext)
        # a device resyncing INBOX learns the three vanished
        dev = self._session(qresync=True)
        lines = self._ok(dev.cmd("s", "SELECT INBOX (QRESYNC (%d %d 1:3))"
                                 % (uv, hms)), "s")
        self.assertIn(b"* VANISHED (EARLIER) 1:3\r\n", lines)
        self.assertIn(b"* 1 EXISTS\r\n", lines)
