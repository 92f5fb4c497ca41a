/* Check suite for pop3-upstream/pop3-parse: status lines, response codes,
 * CAPA, STAT/LIST/UIDL, APOP timestamps, and the RETR data reader fed
 * whole, byte by byte and split at every point. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-upstream/pop3-parse.h"
#include "strbuf.h"

/* --- line framing -------------------------------------------------------- */

START_TEST(line_framing)
{
	size_t ll, used;
	const char *err = NULL;
	char big[POP3_LINE_MAX + 10];

	ck_assert_int_eq(pop3_parse_line("+OK hi\r\nX", 9, POP3_LINE_MAX,
	    &ll, &used, &err), POP3_PARSE_DONE);
	ck_assert_uint_eq(ll, 6);
	ck_assert_uint_eq(used, 8);
	/* bare LF */
	ck_assert_int_eq(pop3_parse_line("+OK\n", 4, POP3_LINE_MAX, &ll, &used,
	    &err), POP3_PARSE_DONE);
	ck_assert_uint_eq(ll, 3);
	ck_assert_uint_eq(used, 4);
	/* CR alone is not a line end */
	ck_assert_int_eq(pop3_parse_line("+OK\r", 4, POP3_LINE_MAX, &ll, &used,
	    &err), POP3_PARSE_NEED_MORE);
	/* NUL inside a line is kept */
	ck_assert_int_eq(pop3_parse_line("+OK a\0b\r\n", 9, POP3_LINE_MAX, &ll,
	    &used, &err), POP3_PARSE_DONE);
	ck_assert_uint_eq(ll, 7);
	/* 512 octets including CRLF is fine, 513 is not */
	memset(big, 'x', sizeof(big));
	big[POP3_LINE_MAX - 2] = '\r';
	big[POP3_LINE_MAX - 1] = '\n';
	ck_assert_int_eq(pop3_parse_line(big, sizeof(big), POP3_LINE_MAX, &ll,
	    &used, &err), POP3_PARSE_DONE);
	ck_assert_uint_eq(used, POP3_LINE_MAX);
	memset(big, 'x', sizeof(big));
	big[POP3_LINE_MAX - 1] = '\r';
	big[POP3_LINE_MAX] = '\n';
	ck_assert_int_eq(pop3_parse_line(big, sizeof(big), POP3_LINE_MAX, &ll,
	    &used, &err), POP3_PARSE_ERROR);
	ck_assert_str_eq(err, "line too long");
	/* an endless line is an error as soon as max bytes are buffered,
	 * not when it ends */
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(pop3_parse_line(big, POP3_LINE_MAX - 1, POP3_LINE_MAX,
	    &ll, &used, &err), POP3_PARSE_NEED_MORE);
	ck_assert_int_eq(pop3_parse_line(big, POP3_LINE_MAX, POP3_LINE_MAX,
	    &ll, &used, &err), POP3_PARSE_ERROR);
}
END_TEST

/* --- status lines -------------------------------------------------------- */

static const struct {
	const char *line;
	int rc;
	bool ok;
	enum pop3_resp_code code;
	const char *text;
} status_cases[] = {
	{ "+OK", 0, true, POP3_RESP_NONE, "" },
	{ "+OK ready", 0, true, POP3_RESP_NONE, "ready" },
	{ "-ERR", 0, false, POP3_RESP_NONE, "" },
	{ "-ERR no such message", 0, false, POP3_RESP_NONE, "no such message" },
	{ "-ERR [IN-USE] locked", 0, false, POP3_RESP_IN_USE, "locked" },
	{ "-ERR [LOGIN-DELAY] wait", 0, false, POP3_RESP_LOGIN_DELAY, "wait" },
	{ "-ERR [AUTH] bad password", 0, false, POP3_RESP_AUTH, "bad password" },
	{ "-ERR [SYS/TEMP] try later", 0, false, POP3_RESP_SYS_TEMP,
	  "try later" },
	{ "-ERR [SYS/PERM] broken", 0, false, POP3_RESP_SYS_PERM, "broken" },
	{ "-ERR [SYS/TEMP/DISK] full", 0, false, POP3_RESP_SYS_TEMP, "full" },
	{ "-ERR [sys/temp] lower", 0, false, POP3_RESP_SYS_TEMP, "lower" },
	{ "-ERR [AUTHX] other", 0, false, POP3_RESP_OTHER, "other" },
	{ "-ERR [XYZ] x", 0, false, POP3_RESP_OTHER, "x" },
	{ "-ERR [IN-USE no bracket", 0, false, POP3_RESP_NONE,
	  "[IN-USE no bracket" },
	{ "+OK  two spaces", 0, true, POP3_RESP_NONE, "two spaces" },
	{ "+OKAY", -1, false, POP3_RESP_NONE, NULL },
	{ "-ERROR", -1, false, POP3_RESP_NONE, NULL },
	{ "OK", -1, false, POP3_RESP_NONE, NULL },
	{ "", -1, false, POP3_RESP_NONE, NULL },
	{ "+ok", -1, false, POP3_RESP_NONE, NULL },
	{ "* OK imap", -1, false, POP3_RESP_NONE, NULL },
	{ "+", -1, false, POP3_RESP_NONE, NULL },
};

START_TEST(status_table)
{
	struct pop3_status st;
	const char *err = NULL;
	const char *line = status_cases[_i].line;
	int rc = pop3_parse_status(line, strlen(line), &st, &err);

	ck_assert_msg(rc == status_cases[_i].rc, "case %d '%s': rc %d", _i,
	    line, rc);
	if (rc < 0) {
		ck_assert_ptr_nonnull(err);
		return;
	}
	ck_assert(st.ok == status_cases[_i].ok);
	ck_assert_int_eq(st.code, status_cases[_i].code);
	ck_assert_uint_eq(st.text_len, strlen(status_cases[_i].text));
	ck_assert(memcmp(st.text, status_cases[_i].text, st.text_len) == 0);
}
END_TEST

START_TEST(continuation)
{
	const char *p;
	size_t n;

	ck_assert(pop3_parse_continuation("+ VXNlcm5hbWU6", 14, &p, &n));
	ck_assert_uint_eq(n, 12);
	ck_assert(memcmp(p, "VXNlcm5hbWU6", 12) == 0);
	ck_assert(pop3_parse_continuation("+", 1, &p, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(pop3_parse_continuation("+ ", 2, &p, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(!pop3_parse_continuation("+OK", 3, &p, &n));
	ck_assert(!pop3_parse_continuation("-ERR", 4, &p, &n));
	ck_assert(!pop3_parse_continuation("", 0, &p, &n));
}
END_TEST

START_TEST(apop_timestamp)
{
	char buf[POP3_APOP_TIMESTAMP_MAX + 1];
	const char *g = "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
	char longg[600];

	ck_assert(pop3_parse_apop_timestamp(g, strlen(g), buf, sizeof(buf)));
	ck_assert_str_eq(buf, "<1896.697170952@dbc.mtview.ca.us>");
	ck_assert(!pop3_parse_apop_timestamp("+OK ready", 9, buf,
	    sizeof(buf)));
	ck_assert(!pop3_parse_apop_timestamp("+OK <noat>", 10, buf,
	    sizeof(buf)));
	ck_assert(!pop3_parse_apop_timestamp("+OK <a b@c>", 11, buf,
	    sizeof(buf)));
	ck_assert(!pop3_parse_apop_timestamp("+OK <a\x01@c>", 11, buf,
	    sizeof(buf)));
	ck_assert(!pop3_parse_apop_timestamp("+OK <a@c", 8, buf, sizeof(buf)));
	ck_assert(!pop3_parse_apop_timestamp("+OK <>", 6, buf, sizeof(buf)));
	memset(longg, 'a', sizeof(longg));
	longg[0] = '<';
	longg[10] = '@';
	longg[sizeof(longg) - 1] = '>';
	ck_assert(!pop3_parse_apop_timestamp(longg, sizeof(longg), buf,
	    sizeof(buf)));
	/* a NUL inside is a control byte */
	ck_assert(!pop3_parse_apop_timestamp("+OK <a\0b@c>", 11, buf,
	    sizeof(buf)));
}
END_TEST

START_TEST(capa_lines)
{
	struct pop3_capa c;
	static const char *lines[] = {
		"TOP", "uidl", "USER", "STLS", "PIPELINING", "RESP-CODES",
		"AUTH-RESP-CODE", "SASL PLAIN  LOGIN", "LOGIN-DELAY 900",
		"IMPLEMENTATION Foo 1.0", "EXPIRE NEVER", "",
	};

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		pop3_parse_capa_line(&c, lines[i], strlen(lines[i]));
	ck_assert(c.seen && c.top && c.uidl && c.user && c.stls);
	ck_assert(c.pipelining && c.resp_codes && c.auth_resp_code);
	ck_assert(c.sasl_plain && c.sasl_login && !c.sasl_cram_md5);
	ck_assert(c.login_delay_set);
	ck_assert_uint_eq(c.login_delay, 900);

	memset(&c, 0, sizeof(c));
	pop3_parse_capa_line(&c, "LOGIN-DELAY 99999999999999999999", 32);
	ck_assert(!c.login_delay_set);
	pop3_parse_capa_line(&c, "LOGIN-DELAY 99999999", 20);
	ck_assert_uint_eq(c.login_delay, POP3_LOGIN_DELAY_MAX);
	pop3_parse_capa_line(&c, "LOGIN-DELAY -5", 14);
	ck_assert_uint_eq(c.login_delay, POP3_LOGIN_DELAY_MAX);
	/* "SASL" words elsewhere do not enable it */
	memset(&c, 0, sizeof(c));
	pop3_parse_capa_line(&c, "X-PLAIN PLAIN", 13);
	ck_assert(!c.sasl_plain);
}
END_TEST

START_TEST(multiline_unstuff)
{
	const char *l = ".";
	size_t n = 1;

	ck_assert(pop3_multiline_unstuff(&l, &n));
	l = "..";
	n = 2;
	ck_assert(!pop3_multiline_unstuff(&l, &n));
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(l[0], '.');
	l = "1 abc";
	n = 5;
	ck_assert(!pop3_multiline_unstuff(&l, &n));
	ck_assert_uint_eq(n, 5);
	l = "";
	n = 0;
	ck_assert(!pop3_multiline_unstuff(&l, &n));
}
END_TEST

/* --- STAT / LIST ------------------------------------------------------- */

static const struct {
	const char *text;
	int rc;
	uint32_t count;
	uint64_t size;
} stat_cases[] = {
	{ "2 320", 0, 2, 320 },
	{ "0 0", 0, 0, 0 },
	{ "2 320 extra words", 0, 2, 320 },
	{ "1000000 1099511627776", 0, 1000000, (uint64_t)1 << 40 },
	{ "1000001 5", -1, 0, 0 },
	{ "1 1099511627777", -1, 0, 0 },
	{ "-1 5", -1, 0, 0 },
	{ "1 -5", -1, 0, 0 },
	{ "+1 5", -1, 0, 0 },
	{ "abc 5", -1, 0, 0 },
	{ "5", -1, 0, 0 },
	{ "", -1, 0, 0 },
	{ "4294967296 1", -1, 0, 0 },
	{ "99999999999999999999999 1", -1, 0, 0 },
	{ "1 99999999999999999999999", -1, 0, 0 },
	{ "0x10 5", -1, 0, 0 },
	{ "1 5k", -1, 0, 0 },
};

START_TEST(stat_table)
{
	uint32_t count = 99;
	uint64_t size = 99;
	const char *err = NULL;
	const char *t = stat_cases[_i].text;
	int rc = pop3_parse_stat(t, strlen(t), &count, &size, &err);

	ck_assert_msg(rc == stat_cases[_i].rc, "case '%s'", t);
	if (rc == 0) {
		ck_assert_uint_eq(count, stat_cases[_i].count);
		ck_assert_uint_eq(size, stat_cases[_i].size);
	} else {
		ck_assert_ptr_nonnull(err);
	}
}
END_TEST

static const struct {
	const char *line;
	int rc;
	uint32_t msgno;
	uint64_t size;
} list_cases[] = {
	{ "1 120", 0, 1, 120 },
	{ "1000000 0", 0, 1000000, 0 },
	{ "0 120", -1, 0, 0 },
	{ "-1 120", -1, 0, 0 },
	{ "1 -120", -1, 0, 0 },
	{ "1", -1, 0, 0 },
	{ "x 1", -1, 0, 0 },
	{ "1 1.5", -1, 0, 0 },
	{ "18446744073709551616 1", -1, 0, 0 },
	{ "1 18446744073709551616", -1, 0, 0 },
	{ "", -1, 0, 0 },
};

START_TEST(list_table)
{
	uint32_t msgno = 0;
	uint64_t size = 0;
	const char *err = NULL;
	const char *l = list_cases[_i].line;
	int rc = pop3_parse_list_line(l, strlen(l), &msgno, &size, &err);

	ck_assert_msg(rc == list_cases[_i].rc, "case '%s'", l);
	if (rc == 0) {
		ck_assert_uint_eq(msgno, list_cases[_i].msgno);
		ck_assert_uint_eq(size, list_cases[_i].size);
	}
}
END_TEST

/* --- UIDL --------------------------------------------------------------- */

static const struct {
	const char *line;
	size_t len;		/* 0: strlen */
	int rc;
	uint32_t msgno;
	const char *uid;
	enum pop3_uidl_flaw flaw;
} uidl_cases[] = {
	{ "1 whqtswO00WBw418f9t5JxYwZ", 0, 0, 1, "whqtswO00WBw418f9t5JxYwZ",
	  POP3_UIDL_OK },
	{ "2 QhdPYR:00WBw1Ph7x7", 0, 0, 2, "QhdPYR:00WBw1Ph7x7", POP3_UIDL_OK },
	{ "3 a/b", 0, 0, 3, "a/b", POP3_UIDL_OK },
	{ "3 ../../etc/passwd", 0, 0, 3, "../../etc/passwd", POP3_UIDL_OK },
	{ "4 ", 0, 0, 4, "", POP3_UIDL_EMPTY },
	{ "4", 0, 0, 4, "", POP3_UIDL_EMPTY },
	{ "5 abc   ", 0, 0, 5, "abc", POP3_UIDL_OK },
	{ "6 a b", 0, 0, 6, "a b", POP3_UIDL_BAD_CHAR },
	{ "7 a\tb", 0, 0, 7, "a\tb", POP3_UIDL_BAD_CHAR },
	{ "8 a\0b", 5, 0, 8, "a\0b", POP3_UIDL_BAD_CHAR },
	{ "9 a\x7f", 0, 0, 9, "a\x7f", POP3_UIDL_BAD_CHAR },
	{ "9 \xc3\xa9t\xc3\xa9", 0, 0, 9, "\xc3\xa9t\xc3\xa9",
	  POP3_UIDL_BAD_CHAR },
	{ "10 a\x1b[31m", 0, 0, 10, "a\x1b[31m", POP3_UIDL_BAD_CHAR },
	{ "11 1234567890123456789012345678901234567890123456789012345678901234"
	  "567890", 0, 0, 11,
	  "1234567890123456789012345678901234567890123456789012345678901234"
	  "567890", POP3_UIDL_OK },
	{ "12 1234567890123456789012345678901234567890123456789012345678901234"
	  "5678901", 0, 0, 12,
	  "1234567890123456789012345678901234567890123456789012345678901234"
	  "5678901", POP3_UIDL_TOO_LONG },
	{ "0 abc", 0, -1, 0, NULL, POP3_UIDL_OK },
	{ "-1 abc", 0, -1, 0, NULL, POP3_UIDL_OK },
	{ "x abc", 0, -1, 0, NULL, POP3_UIDL_OK },
	{ "", 0, -1, 0, NULL, POP3_UIDL_OK },
	{ "99999999999 abc", 0, -1, 0, NULL, POP3_UIDL_OK },
};

START_TEST(uidl_table)
{
	uint32_t msgno = 0;
	const char *uid = NULL, *err = NULL;
	size_t uid_len = 0;
	enum pop3_uidl_flaw flaw = POP3_UIDL_OK;
	const char *l = uidl_cases[_i].line;
	size_t len = uidl_cases[_i].len ? uidl_cases[_i].len : strlen(l);
	int rc = pop3_parse_uidl_line(l, len, &msgno, &uid, &uid_len, &flaw,
	    &err);

	ck_assert_msg(rc == uidl_cases[_i].rc, "case %d", _i);
	if (rc < 0) {
		ck_assert_ptr_nonnull(err);
		return;
	}
	ck_assert_uint_eq(msgno, uidl_cases[_i].msgno);
	ck_assert_msg(flaw == uidl_cases[_i].flaw, "case %d flaw %s", _i,
	    pop3_uidl_flaw_str(flaw));
	if (uidl_cases[_i].len == 0)
		ck_assert_uint_eq(uid_len, strlen(uidl_cases[_i].uid));
	ck_assert(memcmp(uid, uidl_cases[_i].uid, uid_len) == 0);
}
END_TEST

/* --- RETR data ---------------------------------------------------------- */

static const struct {
	const char *name;
	const char *wire;
	size_t wire_len;	/* 0: strlen */
	const char *data;	/* expected unstuffed data; NULL: incomplete */
	size_t data_len;	/* 0: strlen */
	size_t tail;		/* bytes after the terminator left unconsumed */
} data_cases[] = {
	{ "simple", "Subject: a\r\n\r\nbody\r\n.\r\n", 0,
	  "Subject: a\r\n\r\nbody\r\n", 0, 0 },
	{ "empty message", ".\r\n", 0, "", 0, 0 },
	{ "dot stuffing", "a\r\n..\r\n..b\r\n...\r\n.\r\n", 0,
	  "a\r\n.\r\n.b\r\n..\r\n", 0, 0 },
	{ "first line stuffed", "..x\r\n.\r\n", 0, ".x\r\n", 0, 0 },
	{ "dot not at line start", "a.b\r\nc.\r\n.\r\n", 0,
	  "a.b\r\nc.\r\n", 0, 0 },
	{ "unstuffed dot line (lenient)", ".x\r\n.\r\n", 0, "x\r\n", 0, 0 },
	{ "early lone dot ends it", "a\r\n.\r\nb\r\n.\r\n", 0, "a\r\n", 0,
	  6 },
	{ "bare LF lines", "a\nb\n.\n", 0, "a\nb\n", 0, 0 },
	{ "bare LF terminator after CRLF", "a\r\n.\n", 0, "a\r\n", 0, 0 },
	{ "dot CR then other byte", "a\r\n.\rb\r\n.\r\n", 0, "a\r\n\rb\r\n",
	  0, 0 },
	{ "dot CR CR LF", "a\r\n.\r\r\n.\r\n", 0, "a\r\n\r\r\n", 0, 0 },
	{ "NUL bytes", "a\0b\r\n\0\r\n.\r\n", 11, "a\0b\r\n\0\r\n", 8, 0 },
	{ "8-bit header", "Subject: \xe9t\xe9\r\n\r\nx\r\n.\r\n", 0,
	  "Subject: \xe9t\xe9\r\n\r\nx\r\n", 0, 0 },
	{ "no CRLF before final dot", "abc.\r\n", 0, NULL, 0, 0 },
	{ "cut mid-line", "Subject: a\r\nbo", 0, NULL, 0, 0 },
	{ "cut after dot", "a\r\n.", 0, NULL, 0, 0 },
	{ "cut after dot CR", "a\r\n.\r", 0, NULL, 0, 0 },
	{ "trailing data kept", "a\r\n.\r\n+OK next\r\n", 0, "a\r\n", 0, 10 },
	{ "no final line end", "a\r\nb", 0, NULL, 0, 0 },
};

/* Feeds wire in pieces of the given sizes (cycled); returns the data and
 * whether the terminator was seen; *unconsumed_r bytes left over. */
static bool
feed(const char *wire, size_t wire_len, const size_t *steps, size_t nsteps,
    struct strbuf *out, size_t *unconsumed_r)
{
	struct pop3_data d;
	size_t off = 0, k = 0;

	pop3_data_init(&d);
	while (off < wire_len) {
		size_t n = steps[k++ % nsteps];
		size_t end = off + n > wire_len ? wire_len : off + n;
		size_t pos = off;
		enum pop3_parse_ret r = POP3_PARSE_NEED_MORE;

		while (pos < end) {
			size_t used, olen;
			const char *o;

			r = pop3_data_parse(&d, wire + pos, end - pos, &used,
			    &o, &olen);
			ck_assert(used > 0 || olen > 0);
			strbuf_append(out, o, olen);
			pos += used;
			if (r == POP3_PARSE_DONE)
				break;
		}
		off = pos;
		if (r == POP3_PARSE_DONE)
			break;
	}
	*unconsumed_r = wire_len - off;
	ck_assert_uint_eq(d.out_bytes, out->len);
	return pop3_data_done(&d);
}

static void
check_data_case(int i, const size_t *steps, size_t nsteps)
{
	struct strbuf out = STRBUF_INIT;
	size_t wl = data_cases[i].wire_len ? data_cases[i].wire_len :
	    strlen(data_cases[i].wire);
	size_t left;
	bool done = feed(data_cases[i].wire, wl, steps, nsteps, &out, &left);

	if (data_cases[i].data == NULL) {
		ck_assert_msg(!done, "%s: should be incomplete",
		    data_cases[i].name);
	} else {
		size_t dl = data_cases[i].data_len ? data_cases[i].data_len :
		    strlen(data_cases[i].data);

		ck_assert_msg(done, "%s: not done", data_cases[i].name);
		ck_assert_msg(out.len == dl && memcmp(out.data,
		    data_cases[i].data, dl) == 0, "%s: wrong data",
		    data_cases[i].name);
		ck_assert_msg(left == data_cases[i].tail, "%s: left %zu",
		    data_cases[i].name, left);
	}
	strbuf_free(&out);
}

START_TEST(data_whole)
{
	size_t big = 1 << 20;

	check_data_case(_i, &big, 1);
}
END_TEST

START_TEST(data_byte_by_byte)
{
	size_t one = 1;

	check_data_case(_i, &one, 1);
}
END_TEST

START_TEST(data_every_split)
{
	size_t wl = data_cases[_i].wire_len ? data_cases[_i].wire_len :
	    strlen(data_cases[_i].wire);

	for (size_t s = 1; s < wl; s++) {
		size_t steps[2] = { s, 1 << 20 };

		check_data_case(_i, steps, 2);
	}
}
END_TEST

START_TEST(data_done_is_sticky)
{
	struct pop3_data d;
	size_t used, olen;
	const char *o;

	pop3_data_init(&d);
	ck_assert_int_eq(pop3_data_parse(&d, ".", 1, &used, &o, &olen),
	    POP3_PARSE_NEED_MORE);
	ck_assert_int_eq(pop3_data_parse(&d, "\n", 1, &used, &o, &olen),
	    POP3_PARSE_DONE);
	ck_assert_int_eq(pop3_data_parse(&d, "x", 1, &used, &o, &olen),
	    POP3_PARSE_DONE);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(olen, 0);
}
END_TEST

START_TEST(data_endless_line_bounded)
{
	/* a 1 MB line without LF is passed through in pieces; the reader
	 * itself holds nothing */
	struct pop3_data d;
	char *buf = malloc(1 << 20);
	size_t used, olen;
	const char *o;

	memset(buf, 'x', 1 << 20);
	pop3_data_init(&d);
	ck_assert_int_eq(pop3_data_parse(&d, buf, 1 << 20, &used, &o, &olen),
	    POP3_PARSE_NEED_MORE);
	ck_assert_uint_eq(used, 1 << 20);
	ck_assert_uint_eq(olen, 1 << 20);
	ck_assert(o == buf);
	ck_assert(!pop3_data_done(&d));
	free(buf);
}
END_TEST

START_TEST(header_has_field)
{
	const char *m = "Date: Mon, 1 Jan 2024\r\nMessage-ID:\r\n"
	    " <a@b>\r\nX-Empty: \t\r\nSubject: hi\r\n\r\n"
	    "X-Body: yes\r\n";

	ck_assert(pop3_header_has_field(m, strlen(m), "date"));
	/* folded value */
	ck_assert(pop3_header_has_field(m, strlen(m), "Message-ID"));
	/* white space only */
	ck_assert(!pop3_header_has_field(m, strlen(m), "x-empty"));
	/* after the header block */
	ck_assert(!pop3_header_has_field(m, strlen(m), "X-Body"));
	/* a longer name is not the field */
	ck_assert(!pop3_header_has_field(m, strlen(m), "Subj"));
	ck_assert(!pop3_header_has_field("Date:\n\nx", 9, "date"));
	ck_assert(pop3_header_has_field("Date : x\n", 9, "date"));
	ck_assert(!pop3_header_has_field("", 0, "date"));
	ck_assert(!pop3_header_has_field(" Date: x\n", 10, "date"));
}
END_TEST

START_TEST(header_length)
{
	ck_assert_uint_eq(pop3_header_length("A: b\r\n\r\nbody", 12), 8);
	ck_assert_uint_eq(pop3_header_length("A: b\n\nbody", 10), 6);
	ck_assert_uint_eq(pop3_header_length("A: b\r\nC: d\r\n", 12), 12);
	ck_assert_uint_eq(pop3_header_length("\r\nbody", 6), 2);
	ck_assert_uint_eq(pop3_header_length("\nbody", 5), 1);
	ck_assert_uint_eq(pop3_header_length("", 0), 0);
	ck_assert_uint_eq(pop3_header_length("no colon\r\n\r\n", 12), 12);
}
END_TEST

static Suite *
pop3_parse_suite(void)
{
	Suite *s = suite_create("pop3_parse");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, line_framing);
	tcase_add_loop_test(tc, status_table, 0,
	    sizeof(status_cases) / sizeof(status_cases[0]));
	tcase_add_test(tc, continuation);
	tcase_add_test(tc, apop_timestamp);
	tcase_add_test(tc, capa_lines);
	tcase_add_test(tc, multiline_unstuff);
	tcase_add_loop_test(tc, stat_table, 0,
	    sizeof(stat_cases) / sizeof(stat_cases[0]));
	tcase_add_loop_test(tc, list_table, 0,
	    sizeof(list_cases) / sizeof(list_cases[0]));
	tcase_add_loop_test(tc, uidl_table, 0,
	    sizeof(uidl_cases) / sizeof(uidl_cases[0]));
	tcase_add_loop_test(tc, data_whole, 0,
	    sizeof(data_cases) / sizeof(data_cases[0]));
	tcase_add_loop_test(tc, data_byte_by_byte, 0,
	    sizeof(data_cases) / sizeof(data_cases[0]));
	tcase_add_loop_test(tc, data_every_split, 0,
	    sizeof(data_cases) / sizeof(data_cases[0]));
	tcase_add_test(tc, data_done_is_sticky);
	tcase_add_test(tc, data_endless_line_bounded);
	tcase_add_test(tc, header_length);
	tcase_add_test(tc, header_has_field);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pop3_parse_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
