"""Issue 19: SEARCH over the full-text index answers exactly what a full
scan answers. The same corpus (RFC 2047 encoded words, base64 and
quoted-printable parts, non-ASCII text, HTML with entities and tags,
forwarded messages, malformed MIME, invalid UTF-8, unknown charsets) is
APPENDed to a server with the index and to one without it
(`--no-index`); every text key (BODY, TEXT, SUBJECT, FROM, TO, CC, BCC,
HEADER), alone and combined with NOT / OR / flags, with needles found,
not found, short, in other case and cut in the middle of a UTF-8
sequence, gets the same UID SEARCH answer from both.

Then through popgated: a store filled with the index switched off (an
older store) stays exact when the index comes on, `popgatectl reindex`
indexes it while the daemon serves, `--rebuild` does it again from
scratch, and the offline checker (which recomputes every body's terms)
agrees with the index after each."""
import base64
import imaplib
import os
import random
import re
import subprocess
import time
import unittest

import pgtest
from imapd import Server, USER, PASSWORD
from pgtest.gateway import Gateway

WORDS = ["meeting", "invoice", "quarterly", "Größe", "straße", "café",
         "naïve", "Ελληνικά", "ΑΘΗΝΑ", "Кириллица", "МОСКВА", "日本語",
         "résumé", "Übermorgen", "zebra", "xylophone", "R&D", "50%"]


def words(rnd, n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def qp(text):
    out = []
    for b in text.encode():
        if b >= 128 or b == ord("="):
            out.append("=%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def corpus(n=48, seed=19):
    rnd = random.Random(seed)
    msgs = []
    for i in range(n):
        body = words(rnd, 30 + i % 40)
        subj = words(rnd, 4)
        kind = i % 8
        h = ("From: %s\r\nTo: user%d@example.com\r\n"
             "Cc: \"Ünal %d\" <cc%d@example.org>\r\nBcc: hidden%d@example.net\r\n"
             "X-Custom: tag%d %s\r\n" % (
                 ["\"Sender %d\" <s%d@example.org>" % (i, i % 5),
                  "s%d@example.org (Zoë)" % (i % 5),
                  "=?ISO-8859-1?Q?Fran=E7ois?= <f%d@example.net>" % i,
                  "team: a@example.com, b@example.com;"][i % 4],
                 i % 7, i, i % 3, i % 2, i % 9, words(rnd, 2)))
        if i % 3 == 0:
            h += "Subject: =?UTF-8?B?%s?=\r\n" % base64.b64encode(
                subj.encode()).decode()
        elif i % 3 == 1:
            h += "Subject: =?utf-8?q?%s?=\r\n" % qp(subj).replace(" ", "_")
        else:
            h += "Subject: %s\r\n" % subj
        if kind == 0:
            m = h + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
        elif kind == 1:
            m = (h + "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
                 qp(body))
        elif kind == 2:
            m = (h + "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n" +
                 base64.encodebytes(body.encode()).decode().replace(
                     "\n", "\r\n"))
        elif kind == 3:
            m = (h + "Content-Type: text/html; charset=utf-8\r\n\r\n"
                 "<html><head><style>p {x: zebrastyle}</style></head>"
                 "<body><p>%s caf&eacute; R&amp;D Caf<b>e</b>teria "
                 "&#x3B1;&#946;<br>x&nbsp;y<!-- commentword --></p>"
                 "</body></html>" % body)
        elif kind == 4:
            m = (h + "Content-Type: multipart/alternative; boundary=b%d\r\n"
                 "\r\n--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "\r\n%s\r\n--b%d\r\nContent-Type: text/html\r\n\r\n"
                 "<div>&lt;tag&gt; htmlonly%d</div>\r\n--b%d--\r\n"
                 % (i, i, body, i, i, i))
        elif kind == 5:
            m = (h + "Content-Type: multipart/mixed; boundary=m%d\r\n\r\n"
                 "--m%d\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                 "\r\n" % (i, i)).encode() + b"Latin1 caf\xe9 na\xefve\r\n" + (
                 "--m%d\r\nContent-Type: message/rfc822\r\n\r\n"
                 "From: inner@example.org\r\nSubject: =?utf-8?q?"
                 "Inner_sub=C3=A9ject?=\r\n\r\n%s\r\n--m%d--\r\n"
                 % (i, body, i)).encode()
        elif kind == 6:
            m = (h + "Content-Type: multipart/mixed; boundary=x%d\n\n"
                 "--x%d\nContent-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: base64\n\n!!bad base64@@\n"
                 "%s\n" % (i, i, base64.b64encode(body.encode()).decode())
                 ).encode() + b"trailing \xff\xfe garbage\n"
        else:
            m = (h + "Content-Type: text/plain; charset=x-unknown\r\n"
                 "this is no header line \xc3\x28\r\n\r\n").encode(
                     "utf-8", "surrogateescape") + body.encode()
        if isinstance(m, str):
            m = m.encode()
        msgs.append(m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                    if kind != 6 else m)
    return msgs


def needles(msgs, count=40, seed=7):
    """Slices of the messages' words and headers (in random case, some
    cut inside a UTF-8 sequence), strings found nowhere, short ones."""
    rnd = random.Random(seed)
    out = ["zebra", "ZEBRA", "café", "CAFÉ", "größe", "ΑΘΗΝΑ", "αθηνα",
           "москва", "日本", "r&d", "R&amp;D", "cafeteria", "αβ", "x y",
           "zebrastyle", "commentword", "<tag>", "htmlonly3", "sub\u00e9ject",
           "François", "fran", "Zoë", "Ünal", "@example.org", "s1@",
           "hidden1", "tag3", "nowhere-at-all", "qz", "é", "",
           # one index term (3 bytes folded): answered by the index alone
           "zeb", "ZEB", "the", "InG", "日", "aï", "É ", "qjx"]
    pool = " ".join(WORDS)
    for _ in range(count):
        s = pool.encode()
        a = rnd.randrange(len(s) - 3)
        piece = s[a:a + rnd.randint(3, 10)]
        out.append(piece.decode("utf-8", "ignore") or "zz")
    return out


KEYS = ["BODY", "TEXT", "SUBJECT", "FROM", "TO", "CC", "BCC",
        "HEADER X-Custom", "HEADER Subject", "HEADER From"]


def literal(s):
    b = s.encode()
    return b"{%d+}\r\n" % len(b) + b


def uid_search(conn, crit):
    """UID SEARCH with literals for every string (non-ASCII safe)."""
    typ, data = conn._simple_command("UID", "SEARCH", "CHARSET", "UTF-8",
                                     *crit)
    if typ != "OK":
        raise AssertionError("%s -> %s %s" % (crit, typ, data))
    typ, data = conn._untagged_response(typ, data, "SEARCH")
    return sorted(int(x) for x in (data[-1] or b"").split())


class SearchIndexEquivalenceTest(unittest.TestCase):

    def setUp(self):
        self.tmp = pgtest.tempdir("popgate-fts-")
        self.ca = pgtest.TestCA(self.tmp)
        self.on = Server(os.path.join(self.tmp, "on"), self.ca,
                         args=["--log-level", "debug"])
        self.off = Server(os.path.join(self.tmp, "off"), self.ca,
                          args=["--no-index"])
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            try:
                c.logout()
            except Exception:
                pass
        for srv in (self.on, self.off):
            alive, rc, text = srv.stop()
            self.assertIsNone(pgtest.sanitizer_report(text))
            self.assertTrue(alive)
            self.assertEqual(rc, 0, text[-2000:])

    def connect(self, srv):
        c = imaplib.IMAP4("127.0.0.1", srv.plain_port, timeout=60)
        c.login(USER, PASSWORD)
        self.conns.append(c)
        return c

    def test_every_text_key_answers_as_a_full_scan(self):
        msgs = corpus()
        both = [self.connect(self.on), self.connect(self.off)]
        for c in both:
            for m in msgs:
                typ, data = c.append("INBOX", None, None, m)
                self.assertEqual(typ, "OK", data)
            c.select("INBOX")
            # flags and an expunge, so combined keys see a mixed mailbox
            c.uid("STORE", "1:10", "+FLAGS", r"(\Seen)")
            c.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
            c.expunge()
        checked = nonempty = 0
        for n in needles(msgs):
            for key in KEYS:
                parts = key.split(" ")
                crit = [p.encode() for p in parts] + [literal(n)]
                got = [uid_search(c, crit) for c in both]
                self.assertEqual(got[0], got[1], "%s %r" % (key, n))
                checked += 1
                nonempty += 1 if got[0] else 0
        # combinations: the index must follow NOT and OR exactly
        for crit in ([b"NOT", b"BODY", literal("zebra")],
                     [b"OR", b"BODY", literal("café"), b"SUBJECT",
                      literal("ΑΘΗΝΑ")],
                     [b"NOT", b"OR", b"TEXT", literal("qqnowhere"),
                      b"FROM", literal("fran")],
                     [b"UNSEEN", b"TEXT", literal("größe")],
                     [b"SEEN", b"NOT", b"TEXT", literal("meeting")],
                     [b"(BODY", literal("zebra"), b"BODY",
                      literal("xylophone") + b")"],
                     [b"BODY", literal("zeb"), b"NOT", b"BODY",
                      literal("zebrax")],
                     [b"NOT", b"BODY", literal("the")],
                     [b"OR", b"TEXT", literal("ing"), b"BODY",
                      literal("日")]):
            got = [uid_search(c, crit) for c in both]
            self.assertEqual(got[0], got[1], crit)
        self.assertGreater(checked, 500)
        self.assertGreater(nonempty, 100, "needles that find nothing "
                           "prove little")
        self.assertIn("event=search_index", self.on.log(),
                      "the indexed server never consulted the index")
        answered = [int(x) for x in re.findall(
            r"event=search_index_done \S+ answered=(\d+)", self.on.log())]
        self.assertGreater(sum(answered), 200, "the index answered no "
                           "key test without reading the message")
        self.assertNotIn("event=search_index", self.off.log())


class ReindexTest(unittest.TestCase):
    """An older store (index off) stays exact, is indexed by popgatectl
    reindex while the daemon runs, and again by --rebuild."""

    def setUp(self):
        self.tmp = pgtest.tempdir("popgate-fts-gw-")
        self.ca = pgtest.TestCA(self.tmp)
        self.gw = Gateway(os.path.join(self.tmp, "gw"), self.ca,
                          extra="")
        self.gw.write_conf(sections={})

    def tearDown(self):
        if self.gw.proc is not None:
            self.gw.stop()

    def set_index(self, on):
        with open(self.gw.conf) as f:
            text = f.read()
        text = re.sub(r"search_index = \w+\n", "", text)
        text = text.replace("[store]\n", "[store]\nsearch_index = %s\n"
                            % ("yes" if on else "no"))
        with open(self.gw.conf, "w") as f:
            f.write(text)

    def imap(self):
        c = imaplib.IMAP4("127.0.0.1", self.gw.imap_port, timeout=60)
        c.login("alice", "imap-pw")
        c.select("INBOX")
        return c

    def answers(self, c, ns):
        return {(k, n): uid_search(c, [p.encode() for p in k.split(" ")] +
                                   [literal(n)])
                for n in ns for k in KEYS}

    def wait_reindex(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            st = self.gw.ok({"command": "stats"})["stats"]
            if st["index_reindex"] != "running":
                return st
            time.sleep(0.1)
        raise AssertionError("reindex did not finish")

    def check_offline(self):
        self.gw.stop()
        r = subprocess.run([os.path.join(pgtest.BUILD, "tests", "tools",
                                         "store_check"), self.gw.data],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_older_store_reindex_and_rebuild(self):
        msgs = corpus(40, seed=5)
        ns = needles(msgs, count=12, seed=3)
        self.set_index(False)
        self.gw.start()
        self.gw.ok({"command": "user.add", "user": "alice",
                    "password": "imap-pw"})
        self.gw.ok({"command": "user.add", "user": "bob",
                    "password": "imap-pw"})
        c = self.imap()
        for m in msgs:
            self.assertEqual(c.append("INBOX", None, None, m)[0], "OK")
        c.select("INBOX")
        before = self.answers(c, ns)
        c.logout()
        self.check_offline()
        # the index comes on: nothing of the old mail is indexed, SEARCH
        # reads it; new mail is indexed at APPEND
        self.set_index(True)
        self.gw.start()
        c = self.imap()
        self.assertEqual(self.answers(c, ns), before)
        st = self.gw.ok({"command": "stats"})["stats"]
        self.assertEqual(st["index_reindex"], "never")
        r = self.gw.ctl("reindex", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reindex started for 1 user", r.stdout)
        # SEARCH goes on while it runs, and after
        self.assertEqual(self.answers(c, ns), before)
        st = self.wait_reindex()
        self.assertEqual(st["index_reindex"], "done")
        self.assertEqual(st["index_reindex_messages"], len(msgs))
        self.assertEqual(self.answers(c, ns), before)
        # everyone, again: nothing is left to index
        self.assertEqual(self.gw.ok({"command": "reindex"})["users"], 2)
        st = self.wait_reindex()
        self.assertEqual(st["index_reindex_messages"], 0)
        # from scratch
        r = self.gw.ctl("reindex", "alice", "--rebuild")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.wait_reindex()
        self.assertEqual(st["index_reindex"], "done")
        self.assertEqual(st["index_reindex_messages"], len(msgs))
        self.assertEqual(self.answers(c, ns), before)
        # refusals
        r = self.gw.ctl("reindex", "nobody")
        self.assertEqual(r.returncode, 1)
        c.logout()
        self.check_offline()


if __name__ == "__main__":
    unittest.main()
