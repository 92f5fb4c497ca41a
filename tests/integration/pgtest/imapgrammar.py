"""A checker of the server's side of the IMAP grammar.

check(data) reads one session's server output (what the daemon's protocol
trace, [imap] rawlog_dir / imapd_test --rawlog, recorded) and returns the
list of problems: each response must parse with the ABNF of RFC 3501 9
(IMAP4rev1), with the changes RFC 9051 made where IMAP4rev1 servers follow
them, and with the formal syntax of each extension the server advertises
in its CAPABILITY lists (greeting, CAPABILITY response or code):

  UIDPLUS (RFC 4315)       APPENDUID / COPYUID codes
  CONDSTORE (RFC 7162)     MODSEQ fetch item, HIGHESTMODSEQ / NOMODSEQ /
                           MODIFIED codes, SEARCH (MODSEQ n), STATUS
                           HIGHESTMODSEQ
  QRESYNC (RFC 7162)       VANISHED, CLOSED
  ESEARCH (RFC 4731)       ESEARCH responses
  ENABLE (RFC 5161)        ENABLED
  ID (RFC 2971)            ID, with its length limits
  NAMESPACE (RFC 2342)     NAMESPACE
  SPECIAL-USE (RFC 6154)   \\Sent ... in LIST
  LIST-STATUS, LIST-EXTENDED (RFC 5819, 5258): \\NonExistent,
                           \\Subscribed, mailbox-list extended items
  BINARY (RFC 3516)        literal8, BINARY[] items
  COMPRESS=DEFLATE (RFC 4978)  COMPRESSIONACTIVE code
  CREATE-SPECIAL-USE (RFC 6154)  USEATTR code
  LIST-EXTENDED (RFC 5258)  CHILDINFO extended data (a list of strings)
  STATUS=SIZE (RFC 8438), APPENDLIMIT (RFC 7889), IMAP4rev2's DELETED
  SORT, THREAD= (RFC 5256)  SORT and THREAD responses
  OBJECTID (RFC 8474)      MAILBOXID code and STATUS item, EMAILID,
                           THREADID fetch items
  PREVIEW (RFC 8970)       PREVIEW fetch item (nstring, <= 256 chars)
  NOTIFY (RFC 5465)        NOTIFICATIONOVERFLOW / BADEVENT codes, OLDNAME
                           LIST extended data
  plus RFC 5530's response codes, which need no capability.

A response that belongs to an extension the session was not told of is a
problem. Literals are CHAR8 (no NUL; RFC 3501 9); quoted strings and text
are 7-bit unless UTF8=ACCEPT was enabled. The last response may be cut
short (the server closed the connection in the middle of it, as it does
when a streamed body is gone): check() reports that as truncated, not as a
problem.

check_dir(path) checks every *.out file of a trace directory and raises
AssertionError with the problems (file, offset, context) if there are any.
"""
import os
import re

ATOM_SPECIALS = set(b'(){ %*"\\]') | set(range(0x00, 0x20)) | {0x7f}
MONTHS = [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG",
          b"SEP", b"OCT", b"NOV", b"DEC"]
SYSTEM_FLAGS = {b"\\ANSWERED", b"\\FLAGGED", b"\\DELETED", b"\\SEEN",
                b"\\DRAFT"}
SPECIAL_USE = {b"\\ALL", b"\\ARCHIVE", b"\\DRAFTS", b"\\FLAGGED", b"\\JUNK",
               b"\\SENT", b"\\TRASH", b"\\IMPORTANT"}
SFLAGS = {b"\\NOSELECT", b"\\MARKED", b"\\UNMARKED", b"\\NONEXISTENT"}
RFC5530_CODES = {b"UNAVAILABLE", b"AUTHENTICATIONFAILED",
                 b"AUTHORIZATIONFAILED", b"EXPIRED", b"PRIVACYREQUIRED",
                 b"CONTACTADMIN", b"NOPERM", b"INUSE", b"EXPUNGEISSUED",
                 b"CORRUPTION", b"SERVERBUG", b"CLIENTBUG", b"CANNOT",
                 b"LIMIT", b"OVERQUOTA", b"ALREADYEXISTS", b"NONEXISTENT"}
PLAIN_CODES = {b"ALERT", b"PARSE", b"READ-ONLY", b"READ-WRITE",
               b"TRYCREATE", b"UIDNOTSTICKY", b"TOOBIG"} | RFC5530_CODES
MAX32 = 4294967295
MAX63 = 9223372036854775807


class Bad(Exception):
    pass


class Truncated(Exception):
    pass


class Checker:
    def __init__(self, data):
        self.d = data
        self.i = 0
        self.caps = set()
        self.enabled = set()
        self.responses = 0

    # ---- low level -------------------------------------------------

    def fail(self, why):
        raise Bad(why)

    def peek(self, n=1):
        if self.i + n > len(self.d):
            if self.i >= len(self.d):
                raise Truncated()
        return self.d[self.i:self.i + n]

    def at(self, s):
        """True (and consumed) when the input continues with s (any
        case for letters)."""
        n = len(s)
        if self.i + n > len(self.d):
            if self.d[self.i:].upper() == s.upper()[:len(self.d) - self.i]:
                raise Truncated()
            return False
        if self.d[self.i:self.i + n].upper() == s.upper():
            self.i += n
            return True
        return False

    def expect(self, s, what=None):
        if not self.at(s):
            self.fail("expected %s" % (what or repr(s.decode())))

    def sp(self):
        self.expect(b" ", "SP")

    def crlf(self):
        self.expect(b"\r\n", "CRLF")

    def byte(self):
        if self.i >= len(self.d):
            raise Truncated()
        c = self.d[self.i]
        return c

    def digits(self):
        j = self.i
        while j < len(self.d) and 0x30 <= self.d[j] <= 0x39:
            j += 1
        if j == len(self.d):
            raise Truncated()
        if j == self.i:
            self.fail("expected a number")
        s = self.d[self.i:j]
        self.i = j
        return s

    def number(self, limit=MAX32):
        s = self.digits()
        v = int(s)
        if v > limit:
            self.fail("number %d out of range" % v)
        return v

    def nz_number(self, limit=MAX32):
        v = self.number(limit)
        if v == 0:
            self.fail("zero where nz-number is required")
        return v

    def scan(self, ok, what):
        """1 or more bytes for which ok(byte) holds (7-bit only)."""
        j = self.i
        while j < len(self.d) and self.d[j] < 0x80 and ok(self.d[j]):
            j += 1
        if j == len(self.d):
            raise Truncated()
        if j == self.i:
            self.fail("expected " + what)
        s = self.d[self.i:j]
        self.i = j
        return s

    def atom(self):
        return self.scan(lambda c: c not in ATOM_SPECIALS, "an atom")

    def astring_chars(self):
        return self.scan(lambda c: c not in ATOM_SPECIALS or c == ord("]"),
                         "an astring")

    def utf8_ok(self):
        # RFC 9051: IMAP4rev2's strings and mailbox names are UTF-8
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    def rev2(self):
        return "IMAP4REV2" in self.enabled

    def quoted(self):
        self.expect(b'"')
        out = bytearray()
        while True:
            c = self.byte()
            self.i += 1
            if c == ord('"'):
                return bytes(out)
            if c == ord("\\"):
                c = self.byte()
                self.i += 1
                if c not in (ord('"'), ord("\\")):
                    self.fail("bad escape in quoted string")
            elif c in (0, 0x0d, 0x0a):
                self.fail("CR, LF or NUL in a quoted string")
            elif c >= 0x80 and not self.utf8_ok():
                self.fail("8-bit byte in a quoted string")
            out.append(c)

    def literal(self, lit8=False):
        start = self.i
        if lit8:
            if "BINARY" not in self.caps:
                self.fail("literal8 without BINARY")
            self.expect(b"~")
        self.expect(b"{")
        n = self.number(2 ** 64 - 1)
        if self.at(b"+"):
            self.fail("non-synchronising literal in a response")
        self.expect(b"}")
        self.crlf()
        if self.i + n > len(self.d):
            raise Truncated()
        data = self.d[self.i:self.i + n]
        if not lit8 and b"\x00" in data:
            self.i += data.index(b"\x00")
            self.fail("NUL in a literal (literals are CHAR8, RFC 3501 9)"
                      " [literal at %d]" % start)
        self.i += n
        return data

    def string(self):
        c = self.byte()
        if c == ord('"'):
            return self.quoted()
        if c == ord("{"):
            return self.literal()
        self.fail("expected a string")

    def nstring(self):
        if self.at(b"NIL"):
            return None
        return self.string()

    def astring(self):
        c = self.byte()
        if c in (ord('"'), ord("{")):
            return self.string()
        return self.astring_chars()

    def nil(self):
        self.expect(b"NIL", "NIL")

    def text(self):
        """1*TEXT-CHAR up to (not including) CRLF."""
        j = self.i
        while j < len(self.d) and self.d[j] not in (0x0d, 0x0a):
            c = self.d[j]
            if c == 0:
                self.i = j
                self.fail("NUL in text")
            if c >= 0x80 and not self.utf8_ok():
                self.i = j
                self.fail("8-bit byte in text")
            j += 1
        if j == len(self.d):
            raise Truncated()
        if j == self.i:
            self.fail("empty text (RFC 3501: text = 1*TEXT-CHAR)")
        self.i = j

    def need(self, cap, what):
        if cap not in self.caps:
            self.fail("%s without %s in CAPABILITY" % (what, cap))

    # ---- pieces --------------------------------------------------------

    def uid_set(self, allow_star=False):
        while True:
            if self.at(b"*"):
                if not allow_star:
                    self.fail("'*' in a set sent by the server")
            else:
                self.nz_number()
            if self.at(b":"):
                if self.at(b"*"):
                    if not allow_star:
                        self.fail("'*' in a set sent by the server")
                else:
                    self.nz_number()
            if not self.at(b","):
                return

    def flag(self, fetch=False, perm=False):
        if self.at(b"\\"):
            if perm and self.at(b"*"):
                return b"\\*"
            name = b"\\" + self.atom()
            if name.upper() == b"\\RECENT" and not fetch:
                self.fail("\\Recent outside FETCH FLAGS")
            if name.upper() == b"\\RECENT" and self.rev2():
                self.fail("\\Recent after ENABLE IMAP4rev2")
            return name
        return self.atom()

    def flag_list(self, fetch=False, perm=False):
        self.expect(b"(")
        seen = []
        if not self.at(b")"):
            while True:
                f = self.flag(fetch, perm)
                if f.upper() in seen:
                    self.fail("flag %s twice" % f.decode())
                seen.append(f.upper())
                if self.at(b")"):
                    break
                self.sp()
        return seen

    def date_time(self):
        self.expect(b'"')
        if self.at(b" "):
            if not (0x31 <= self.byte() <= 0x39):
                self.fail("bad date-day-fixed")
            self.i += 1
        else:
            d = self.d[self.i:self.i + 2]
            if len(d) < 2:
                raise Truncated()
            if not re.match(rb"^\d\d$", d) or not 1 <= int(d) <= 31:
                self.fail("bad date-day-fixed")
            self.i += 2
        self.expect(b"-")
        m = self.d[self.i:self.i + 3]
        if m.upper() not in MONTHS:
            self.fail("bad month")
        self.i += 3
        self.expect(b"-")
        rest = self.d[self.i:self.i + 20]
        if len(rest) < 20:
            raise Truncated()
        if not re.match(rb'^\d{4} \d\d:\d\d:\d\d [+-]\d{4}"$', rest):
            self.fail("bad date-time")
        hh, mm, ss = int(rest[5:7]), int(rest[8:10]), int(rest[11:13])
        if hh > 23 or mm > 59 or ss > 60:
            self.fail("bad time")
        self.i += 20

    def address_list(self):
        if self.at(b"NIL"):
            return
        self.expect(b"(")
        n = 0
        while not self.at(b")"):
            self.expect(b"(", "an address")
            for k in range(4):
                if k:
                    self.sp()
                self.nstring()
            self.expect(b")")
            n += 1
        if n == 0:
            self.fail("empty address list (env-from = \"(\" 1*address"
                      " \")\" / nil)")

    def envelope(self):
        self.expect(b"(")
        self.nstring()            # date
        self.sp()
        self.nstring()            # subject
        for _ in range(6):
            self.sp()
            self.address_list()
        self.sp()
        self.nstring()            # in-reply-to
        self.sp()
        self.nstring()            # message-id
        self.expect(b")")

    def body_fld_param(self):
        if self.at(b"NIL"):
            return
        self.expect(b"(")
        while True:
            self.string()
            self.sp()
            self.string()
            if self.at(b")"):
                return
            self.sp()

    def body_fld_dsp(self):
        if self.at(b"NIL"):
            return
        self.expect(b"(")
        self.string()
        self.sp()
        self.body_fld_param()
        self.expect(b")")

    def body_fld_lang(self):
        if self.byte() == ord("("):
            self.i += 1
            while True:
                self.string()
                if self.at(b")"):
                    return
                self.sp()
        self.nstring()

    def body_extension(self):
        c = self.byte()
        if c == ord("("):
            self.i += 1
            while True:
                self.body_extension()
                if self.at(b")"):
                    return
                self.sp()
        if 0x30 <= c <= 0x39:
            self.number()
            return
        self.nstring()

    def body_ext_tail(self, first):
        """body-ext-1part / body-ext-mpart after "SP"; first is the
        md5 (1part) or param (mpart) parser."""
        first()
        if not self.at(b" "):
            return
        self.body_fld_dsp()
        if not self.at(b" "):
            return
        self.body_fld_lang()
        if not self.at(b" "):
            return
        self.nstring()            # body-fld-loc
        while self.at(b" "):
            self.body_extension()

    def body(self, depth=0):
        if depth > 100:
            self.fail("body nested too deep")
        self.expect(b"(")
        if self.byte() == ord("("):
            # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            while self.byte() == ord("("):
                self.body(depth + 1)
            self.sp()
            self.string()
            if self.at(b" "):
                self.body_ext_tail(self.body_fld_param)
            self.expect(b")")
            return
        mtype = self.string()
        self.sp()
        subtype = self.string()
        self.sp()
        # body-fields
        self.body_fld_param()
        self.sp()
        self.nstring()            # id
        self.sp()
        self.nstring()            # description
        self.sp()
        self.string()             # encoding
        self.sp()
        self.number()             # octets
        t, st = mtype.upper(), subtype.upper()
        if t == b"MESSAGE" and st in (b"RFC822", b"GLOBAL"):
            self.sp()
            self.envelope()
            self.sp()
            self.body(depth + 1)
            self.sp()
            self.number()         # lines
        elif t == b"TEXT":
            self.sp()
            self.number()         # lines
        if self.at(b" "):
            self.body_ext_tail(self.nstring)
        self.expect(b")")

    def section(self):
        """After "BODY" or "BINARY": "[" [section-spec] "]"."""
        self.expect(b"[")
        if self.at(b"]"):
            return
        part = False
        while 0x30 <= self.byte() <= 0x39:
            self.nz_number()
            part = True
            if not self.at(b"."):
                self.expect(b"]")
                return
        if self.at(b"HEADER.FIELDS"):
            self.at(b".NOT")
            self.sp()
            self.expect(b"(")
            while True:
                self.astring()
                if self.at(b")"):
                    break
                self.sp()
        elif self.at(b"HEADER") or self.at(b"TEXT"):
            pass
        elif part and self.at(b"MIME"):
            pass
        else:
            self.fail("bad section-spec")
        self.expect(b"]")

    # ---- responses -------------------------------------------------------

    def msg_att(self):
        self.expect(b"(")
        seen = set()
        while True:
            name = self.atom_or_section_name()
            key = name.upper()
            if key in seen and not key.startswith((b"BODY[", b"BINARY")):
                self.fail("FETCH item %s twice" % name.decode())
            seen.add(key)
            self.sp()
            if key == b"FLAGS":
                self.flag_list(fetch=True)
            elif key == b"ENVELOPE":
                self.envelope()
            elif key == b"INTERNALDATE":
                self.date_time()
            elif key in (b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT"):
                self.nstring()
            elif key == b"RFC822.SIZE":
                self.number(MAX63)
            elif key in (b"BODY", b"BODYSTRUCTURE"):
                self.body()
            elif key == b"UID":
                self.nz_number()
            elif key == b"MODSEQ":
                self.need("CONDSTORE", "MODSEQ item")
                self.expect(b"(")
                self.nz_number(MAX63)
                self.expect(b")")
            elif key.startswith(b"BODY["):
                self.nstring()
            elif key in (b"EMAILID", b"THREADID"):
                self.need("OBJECTID", key.decode())
                if key == b"THREADID" and self.at(b"NIL"):
                    pass
                else:
                    self.objectid_paren()
            elif key == b"PREVIEW":
                self.need("PREVIEW", "PREVIEW")
                v = self.nstring()
                if v is not None and len(v.decode("utf-8", "replace")) > 256:
                    self.fail("PREVIEW longer than 256 characters")
            elif key.startswith(b"BINARY.SIZE["):
                self.need("BINARY", "BINARY.SIZE")
                self.number(MAX63)
            elif key.startswith(b"BINARY["):
                self.need("BINARY", "BINARY")
                if self.byte() == ord("~"):
                    self.literal(lit8=True)
                else:
                    self.nstring()
            else:
                self.fail("unknown FETCH item %s" % name.decode())
            if self.at(b")"):
                return
            self.sp()

    def atom_or_section_name(self):
        start = self.i
        name = self.scan(lambda c: c not in ATOM_SPECIALS and c != ord("["),
                         "a FETCH item name")
        if name.upper() in (b"BODY", b"BINARY", b"BINARY.SIZE") and \
                self.byte() == ord("["):
            self.section()
            if name.upper() in (b"BODY", b"BINARY") and self.at(b"<"):
                self.number()
                self.expect(b">")
            return self.d[start:self.i]
        return name

    def mailbox(self):
        return self.astring()

    def mailbox_list(self, what):
        self.expect(b"(")
        flags = []
        if not self.at(b")"):
            while True:
                self.expect(b"\\", "a mailbox attribute")
                flags.append(b"\\" + self.atom())
                if self.at(b")"):
                    break
                self.sp()
        up = [f.upper() for f in flags]
        if len(set(up)) != len(up):
            self.fail("a mailbox attribute twice")
        if len([f for f in up if f in SFLAGS]) > 1:
            self.fail("more than one of \\Noselect \\Marked \\Unmarked "
                      "\\NonExistent (mbx-list-sflag)")
        if b"\\HASCHILDREN" in up and b"\\HASNOCHILDREN" in up:
            self.fail("\\HasChildren with \\HasNoChildren")
        if any(f in SPECIAL_USE for f in up) and what == "LIST":
            self.need("SPECIAL-USE", "special-use attribute")
        if (b"\\NONEXISTENT" in up or b"\\SUBSCRIBED" in up) and \
                "LIST-EXTENDED" not in self.caps:
            self.need("LIST-STATUS", "LIST-EXTENDED attribute")
        self.sp()
        if not self.at(b"NIL"):
            self.expect(b'"')
            c = self.byte()
            if c in (ord('"'), ord("\\"), 0x0d, 0x0a) or c >= 0x80:
                self.fail("bad hierarchy delimiter")
            self.i += 1
            self.expect(b'"')
        self.sp()
        self.mailbox()
        if self.at(b" "):
            self.expect(b"(")
            while not self.at(b")"):
                name = self.astring()
                self.sp()
                if name is not None and name.upper() == b"CHILDINFO":
                    # RFC 5258 6: childinfo-extended-item
                    self.need("LIST-EXTENDED", "CHILDINFO")
                    self.expect(b"(")
                    while True:
                        self.string()
                        if self.at(b")"):
                            break
                        self.sp()
                elif name is not None and name.upper() == b"OLDNAME":
                    # RFC 5465 5.4 / RFC 9051 7.3.1: ("OLDNAME" (mailbox))
                    if "NOTIFY" not in self.caps and \
                            "IMAP4REV2" not in self.caps:
                        self.fail("OLDNAME without NOTIFY or IMAP4rev2")
                    self.expect(b"(")
                    self.mailbox()
                    self.expect(b")")
                else:
                    self.tagged_ext_val()
                self.at(b" ")

    def tagged_ext_val(self):
        c = self.byte()
        if c == ord("("):
            self.i += 1
            while not self.at(b")"):
                self.tagged_ext_val()
                self.at(b" ")
            return
        if 0x30 <= c <= 0x39:
            self.uid_set()
            return
        self.astring()

    def status_att_list(self):
        self.expect(b"(")
        if self.at(b")"):
            return
        while True:
            name = self.atom().upper()
            self.sp()
            if name == b"RECENT" and self.rev2():
                self.fail("STATUS RECENT after ENABLE IMAP4rev2")
            if name in (b"MESSAGES", b"RECENT", b"UNSEEN"):
                self.number()
            elif name in (b"UIDNEXT", b"UIDVALIDITY"):
                self.nz_number()
            elif name == b"HIGHESTMODSEQ":
                self.need("CONDSTORE", "STATUS HIGHESTMODSEQ")
                self.number(MAX63)
            elif name == b"SIZE":
                if "STATUS=SIZE" not in self.caps and \
                        "IMAP4REV2" not in self.caps:
                    self.fail("STATUS SIZE without STATUS=SIZE")
                self.number(MAX63)
            elif name == b"DELETED":
                # RFC 9051 6.3.11, or RFC 9208 4.2 with QUOTA
                if "IMAP4REV2" not in self.caps and "QUOTA" not in self.caps:
                    self.fail("STATUS DELETED without IMAP4rev2 or QUOTA")
                self.number()
            elif name == b"DELETED-STORAGE":
                self.need("QUOTA", "STATUS DELETED-STORAGE")
                self.number(MAX63)
            elif name == b"MAILBOXID":
                self.need("OBJECTID", "STATUS MAILBOXID")
                self.objectid_paren()
            elif name == b"APPENDLIMIT":
                if not any(c.startswith("APPENDLIMIT") for c in self.caps):
                    self.fail("STATUS APPENDLIMIT without APPENDLIMIT")
                if not self.at(b"NIL"):
                    self.number(MAX63)
            else:
                self.fail("unknown STATUS item %s" % name.decode())
            if self.at(b")"):
                return
            self.sp()

    def capability_list(self):
        caps = []
        while self.at(b" "):
            caps.append(self.atom().decode().upper())
        if "IMAP4REV1" not in caps and "IMAP4REV2" not in caps:
            self.fail("CAPABILITY without IMAP4rev1")
        self.caps = set(caps)

    def resp_text_code(self):
        name = self.atom().upper()
        if name == b"CAPABILITY":
            self.capability_list()
        elif name == b"PERMANENTFLAGS":
            self.sp()
            self.flag_list(perm=True)
        elif name in (b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"):
            self.sp()
            self.nz_number()
        elif name == b"BADCHARSET":
            if self.at(b" "):
                self.expect(b"(")
                while True:
                    self.astring()
                    if self.at(b")"):
                        break
                    self.sp()
        elif name == b"HIGHESTMODSEQ":
            self.need("CONDSTORE", "HIGHESTMODSEQ")
            self.sp()
            self.nz_number(MAX63)
        elif name == b"NOMODSEQ":
            self.need("CONDSTORE", "NOMODSEQ")
        elif name == b"MODIFIED":
            self.need("CONDSTORE", "MODIFIED")
            self.sp()
            self.uid_set()
        elif name == b"CLOSED":
            self.need("QRESYNC", "CLOSED")
        elif name == b"APPENDUID":
            self.need("UIDPLUS", "APPENDUID")
            self.sp()
            self.nz_number()
            self.sp()
            self.uid_set()
        elif name == b"COPYUID":
            self.need("UIDPLUS", "COPYUID")
            self.sp()
            self.nz_number()
            self.sp()
            self.uid_set()
            self.sp()
            self.uid_set()
        elif name == b"MAILBOXID":
            self.need("OBJECTID", "MAILBOXID")
            self.sp()
            self.objectid_paren()
        elif name == b"UNKNOWN-CTE":
            self.need("BINARY", "UNKNOWN-CTE")
        elif name == b"COMPRESSIONACTIVE":
            self.need("COMPRESS=DEFLATE", "COMPRESSIONACTIVE")
        elif name == b"USEATTR":
            self.need("CREATE-SPECIAL-USE", "USEATTR")
        elif name == b"NOTIFICATIONOVERFLOW":
            self.need("NOTIFY", "NOTIFICATIONOVERFLOW")
        elif name == b"BADEVENT":
            # RFC 5465 8: "BADEVENT" SP "(" event *(SP event) ")"
            self.need("NOTIFY", "BADEVENT")
            self.sp()
            self.expect(b"(")
            while True:
                self.atom()
                if self.at(b")"):
                    break
                self.sp()
        elif name in PLAIN_CODES:
            pass
        else:
            # atom [SP 1*<any TEXT-CHAR except "]">]
            if self.at(b" "):
                j = self.i
                while j < len(self.d) and self.d[j] not in b"]\r\n":
                    j += 1
                if j == self.i:
                    self.fail("empty resp-text-code argument")
                self.i = j
        self.expect(b"]")

    def resp_text(self):
        if self.at(b"["):
            self.resp_text_code()
            self.sp()
        self.text()

    def untagged(self):
        c = self.byte()
        if 0x30 <= c <= 0x39:
            n = self.number()
            self.sp()
            word = self.atom().upper()
            if word == b"RECENT" and self.rev2():
                self.fail("RECENT after ENABLE IMAP4rev2")
            if word in (b"EXISTS", b"RECENT"):
                return
            if n == 0:
                self.fail("message number 0")
            if word == b"EXPUNGE":
                return
            if word == b"FETCH":
                self.sp()
                self.msg_att()
                return
            self.fail("unknown message data %s" % word.decode())
        word = self.atom().upper()
        if word in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            if word == b"PREAUTH" and self.responses > 0:
                self.fail("PREAUTH after the greeting")
            if word in (b"NO", b"BAD") and self.responses == 0:
                self.fail("greeting is not OK, PREAUTH or BYE")
            self.sp()
            self.resp_text()
            return
        if self.responses == 0:
            self.fail("greeting is not OK, PREAUTH or BYE")
        if word == b"CAPABILITY":
            self.capability_list()
        elif word == b"FLAGS":
            self.sp()
            self.flag_list()
        elif word in (b"LIST", b"LSUB"):
            self.sp()
            self.mailbox_list(word.decode())
        elif word == b"SEARCH" and self.rev2():
            self.fail("SEARCH (not ESEARCH) after ENABLE IMAP4rev2")
        elif word == b"SEARCH":
            while self.at(b" "):
                if self.at(b"("):
                    self.need("CONDSTORE", "SEARCH (MODSEQ n)")
                    self.expect(b"MODSEQ")
                    self.sp()
                    self.nz_number(MAX63)
                    self.expect(b")")
                    break
                self.nz_number()
        elif word == b"SORT":
            # RFC 5256 4: sort-data
            self.need("SORT", "SORT response")
            while self.at(b" "):
                self.nz_number()
        elif word == b"THREAD":
            # thread-data = "THREAD" [SP 1*thread-list]
            if not any(c.startswith("THREAD=") for c in self.caps):
                self.fail("THREAD response without THREAD=")
            if self.at(b" "):
                self.thread_list()
                while self.byte() == ord("("):
                    self.thread_list()
        elif word == b"STATUS":
            self.sp()
            self.mailbox()
            self.sp()
            self.status_att_list()
        elif word == b"ESEARCH":
            self.need("ESEARCH", "ESEARCH")
            self.esearch()
        elif word == b"ENABLED":
            self.need("ENABLE", "ENABLED")
            while self.at(b" "):
                self.enabled.add(self.atom().decode().upper())
        elif word == b"ID":
            self.need("ID", "ID")
            self.sp()
            self.id_params()
        elif word == b"NAMESPACE":
            self.need("NAMESPACE", "NAMESPACE")
            for k in range(3):
                self.sp()
                self.namespace()
        elif word == b"QUOTA":
            # RFC 9208: quota-root-name SP "(" resource usage limit ... ")"
            self.need("QUOTA", "QUOTA")
            self.sp()
            self.astring()
            self.sp()
            self.expect(b"(")
            while True:
                res = self.atom().upper()
                if res == b"STORAGE":
                    self.need("QUOTA=RES-STORAGE", "QUOTA STORAGE")
                self.sp()
                self.number(MAX63)
                self.sp()
                self.number(MAX63)
                if self.at(b")"):
                    break
                self.sp()
        elif word == b"QUOTAROOT":
            self.need("QUOTA", "QUOTAROOT")
            self.sp()
            self.mailbox()
            while self.at(b" "):
                self.astring()
        elif word == b"VANISHED":
            self.need("QRESYNC", "VANISHED")
            self.sp()
            if self.at(b"(EARLIER)"):
                self.sp()
            self.uid_set()
        else:
            self.fail("unknown response %s" % word.decode())

    def objectid_paren(self):
        # "(" objectid ")"; objectid = 1*255(ALPHA / DIGIT / "_" / "-")
        self.expect(b"(")
        v = self.scan(lambda c: chr(c).isalnum() or c in b"_-", "objectid")
        if len(v) > 255:
            self.fail("objectid longer than 255")
        self.expect(b")")

    def thread_list(self, depth=0):
        """thread-list = "(" (thread-members / thread-nested) ")";
        thread-members = nz-number *(SP nz-number) [SP thread-nested];
        thread-nested = 2*thread-list."""
        if depth > 1000:
            self.fail("THREAD nested too deep")
        self.expect(b"(")
        if self.byte() == ord("("):
            self.thread_nested(depth)
        else:
            self.nz_number()
            while self.at(b" "):
                if self.byte() == ord("("):
                    self.thread_nested(depth)
                    break
                self.nz_number()
        self.expect(b")")

    def thread_nested(self, depth):
        n = 0
        while self.byte() == ord("("):
            self.thread_list(depth + 1)
            n += 1
        if n < 2:
            self.fail("thread-nested with fewer than two thread-lists")

    def esearch(self):
        if self.at(b" ("):
            self.expect(b"TAG")
            self.sp()
            self.string()
            self.expect(b")")
        if self.at(b" UID"):
            if self.byte() not in b" \r":
                self.fail("bad ESEARCH")
        while self.at(b" "):
            name = self.atom().upper()
            self.sp()
            if name in (b"MIN", b"MAX"):
                self.nz_number()
            elif name == b"COUNT":
                self.number()
            elif name == b"ALL":
                self.uid_set()
            elif name == b"MODSEQ":
                self.need("CONDSTORE", "ESEARCH MODSEQ")
                self.nz_number(MAX63)
            else:
                self.tagged_ext_val()

    def id_params(self):
        if self.at(b"NIL"):
            return
        self.expect(b"(")
        n = 0
        while not self.at(b")"):
            if n:
                self.sp()
            k = self.string()
            self.sp()
            v = self.nstring()
            n += 1
            if len(k) > 30 or (v is not None and len(v) > 1024):
                self.fail("ID field or value too long (RFC 2971 3.3)")
        if n > 30:
            self.fail("more than 30 ID pairs (RFC 2971 3.3)")

    def namespace(self):
        if self.at(b"NIL"):
            return
        self.expect(b"(")
        while True:
            self.expect(b"(")
            self.string()
            self.sp()
            if not self.at(b"NIL"):
                self.expect(b'"')
                self.i += 1
                self.expect(b'"')
            while self.at(b" "):
                self.string()
                self.sp()
                self.expect(b"(")
                while True:
                    self.string()
                    if self.at(b")"):
                        break
                    self.sp()
            self.expect(b")")
            if self.at(b")"):
                return

    def continuation(self):
        self.expect(b"+")
        self.sp()
        if self.peek(2) == b"\r\n":
            return                # base64 = empty
        save = self.i
        try:
            self.resp_text()
        except Bad:
            self.i = save
            j = self.i
            while j < len(self.d) and self.d[j] not in b"\r\n":
                j += 1
            if not re.match(rb"^[A-Za-z0-9+/]*={0,2}$", self.d[self.i:j]):
                raise
            self.i = j

    def tagged(self):
        tag = self.astring_chars()
        if b"+" in tag:
            self.fail("'+' in a tag")
        self.sp()
        word = self.atom().upper()
        if word not in (b"OK", b"NO", b"BAD"):
            self.fail("tagged response is not OK, NO or BAD")
        self.sp()
        self.resp_text()

    def response(self):
        c = self.byte()
        if c == ord("+"):
            if self.responses == 0:
                self.fail("continuation before the greeting")
            self.continuation()
        elif c == ord("*"):
            self.i += 1
            self.sp()
            self.untagged()
        else:
            if self.responses == 0:
                self.fail("tagged response before the greeting")
            self.tagged()
        self.crlf()
        self.responses += 1


def check(data):
    """Problems of one session's server output: a list of (offset, why,
    context) tuples, and whether the output was cut short."""
    ch = Checker(data)
    problems = []
    truncated = False
    while ch.i < len(data):
        start = ch.i
        try:
            ch.response()
        except Truncated:
            truncated = True
            break
        except Bad as e:
            ctx = data[max(start, ch.i - 120):ch.i + 60]
            problems.append((ch.i, str(e), ctx))
            # resynchronise at the next line
            nl = data.find(b"\r\n", ch.i)
            if nl < 0:
                break
            ch.i = nl + 2
            ch.responses += 1
    return problems, truncated


def check_dir(path):
    """Checks every trace file of a directory; AssertionError with the
    problems found. Returns the number of files checked."""
    if not os.path.isdir(path):
        return 0
    report = []
    n = 0
    for name in sorted(os.listdir(path)):
        if not name.endswith(".out"):
            continue
        n += 1
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        problems, _ = check(data)
        for off, why, ctx in problems[:5]:
            report.append("%s@%d: %s\n    %r" % (name, off, why, ctx))
    if report:
        raise AssertionError("IMAP responses outside the grammar:\n" +
                             "\n".join(report[:40]))
    return n
