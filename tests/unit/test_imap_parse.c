/*
 * Check suite for imap-frontend/imap-parse: the incremental command
 * parser (fetch atts and IMAP dates: test_imap_fetchatt.c).
 *
 * Every table case is fed whole, one byte at a time, split at every
 * position into two pieces and (for short inputs) into three pieces; each
 * way must give the same transcript of results. A transcript line is one
 * result: "DONE tag NAME args", "+" (continuation wanted), "ERR code tag"
 * or "FATAL code".
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "imap-frontend/imap-parse.h"
#include "strbuf.h"
#include "xmalloc.h"

/* L_BINARY: the defaults with literal8 on (BINARY in effect). */
enum limits_kind { L_DEFAULT = 0, L_TINY, L_BINARY };

static void
tiny_limits(struct imap_parse_limits *l)
{
	imap_parse_limits_default(l);
	l->max_line = 40;
	l->max_literal = 20;
	l->max_literal_preauth = 10;
	l->max_command = 100;
	l->max_depth = 3;
	l->max_args = 8;
	l->max_tag = 8;
	l->max_atom = 12;
	l->max_quoted = 10;
	l->max_line_preauth = 30;
}

static const char *const code_names[] = {
	[IMAP_PARSE_ERR_NONE] = "none",
	[IMAP_PARSE_ERR_SYNTAX] = "syntax",
	[IMAP_PARSE_ERR_LINE_TOO_LONG] = "line",
	[IMAP_PARSE_ERR_TOO_LONG] = "toolong",
	[IMAP_PARSE_ERR_TOO_DEEP] = "deep",
	[IMAP_PARSE_ERR_TOO_MANY_ARGS] = "args",
	[IMAP_PARSE_ERR_COMMAND_TOO_BIG] = "cmdsize",
	[IMAP_PARSE_ERR_LITERAL_TOO_BIG] = "litsize",
	[IMAP_PARSE_ERR_LITERAL_PLUS_TOO_BIG] = "litplus",
	[IMAP_PARSE_ERR_RUNAWAY] = "runaway",
};

static void
render_bytes(struct strbuf *sb, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0')
			strbuf_appends(sb, "\\0");
		else if (s[i] == '\r')
			strbuf_appends(sb, "\\r");
		else if (s[i] == '\n')
			strbuf_appends(sb, "\\n");
		else
			strbuf_appendc(sb, s[i]);
	}
}

static void
render_arg(struct strbuf *sb, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		strbuf_append(sb, a->str, a->len);
		break;
	case IMAP_ARG_NIL:
		strbuf_appends(sb, "NIL");
		break;
	case IMAP_ARG_QUOTED:
		strbuf_appendc(sb, '"');
		render_bytes(sb, a->str, a->len);
		strbuf_appendc(sb, '"');
		break;
	case IMAP_ARG_LITERAL:
		strbuf_appendf(sb, "%s{%zu%s}", a->literal8 ? "~" : "", a->len,
		    a->literal_plus ? "+" : "");
		render_bytes(sb, a->str, a->len);
		if (a->has_nul)
			strbuf_appends(sb, "<nul>");
		ck_assert_int_eq(a->str[a->len], '\0');
		ck_assert(a->has_nul == (memchr(a->str, 0, a->len) != NULL));
		break;
	case IMAP_ARG_LIST:
		strbuf_appendc(sb, '(');
		for (size_t i = 0; i < a->list_count; i++) {
			if (i > 0)
				strbuf_appendc(sb, ' ');
			render_arg(sb, &a->list[i]);
		}
		strbuf_appendc(sb, ')');
		break;
	}
}

/* Feeds one chunk, appending results to out; false after FATAL. */
static bool
feed_chunk(struct imap_parser *p, const char *data, size_t len,
    struct strbuf *out)
{
	unsigned int stuck = 0;

	while (len > 0) {
		size_t used = SIZE_MAX;
		const struct imap_command *cmd;
		enum imap_parse_result r = imap_parser_feed(p, data, len, &used,
		    &cmd);
		const struct imap_parse_error *e;

		ck_assert_uint_le(used, len);
		data += used;
		len -= used;
		stuck = used == 0 ? stuck + 1 : 0;
		ck_assert_uint_lt(stuck, 3);
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			ck_assert_uint_eq(len, 0);
			ck_assert_ptr_null(cmd);
			break;
		case IMAP_PARSE_NEED_CONTINUATION:
			strbuf_appends(out, "+\n");
			break;
		case IMAP_PARSE_DONE:
			ck_assert_ptr_nonnull(cmd);
			strbuf_appendf(out, "DONE %s %s", cmd->tag, cmd->name);
			for (size_t i = 0; i < cmd->arg_count; i++) {
				strbuf_appendc(out, ' ');
				render_arg(out, &cmd->args[i]);
			}
			strbuf_appendc(out, '\n');
			break;
		case IMAP_PARSE_ERROR:
			e = imap_parser_get_error(p);
			ck_assert_ptr_nonnull(e->text);
			strbuf_appendf(out, "ERR %s %s\n", code_names[e->code],
			    e->tag != NULL ? e->tag : "*");
			break;
		case IMAP_PARSE_FATAL:
			e = imap_parser_get_error(p);
			strbuf_appendf(out, "FATAL %s\n", code_names[e->code]);
			return false;
		}
	}
	return true;
}

static struct imap_parser *
make_parser(enum limits_kind lk, bool authed)
{
	struct imap_parse_limits l;
	struct imap_parser *p;

	if (lk == L_TINY)
		tiny_limits(&l);
	else
		imap_parse_limits_default(&l);
	p = imap_parser_new(&l);
	imap_parser_set_authenticated(p, authed);
	imap_parser_set_literal8(p, lk == L_BINARY);
	return p;
}

/* Feeds input split at the given cut positions (ascending). */
static char *
run_split(const char *in, size_t len, enum limits_kind lk, bool authed,
    const size_t *cuts, size_t ncuts)
{
	struct imap_parser *p = make_parser(lk, authed);
	struct strbuf out = STRBUF_INIT;
	size_t prev = 0;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		if (!feed_chunk(p, in + prev, end - prev, &out))
			break;
		prev = end;
	}
	imap_parser_free(&p);
	ck_assert_ptr_null(p);
	return strbuf_detach(&out, NULL);
}

static char *
run_bytewise(const char *in, size_t len, enum limits_kind lk, bool authed)
{
	struct imap_parser *p = make_parser(lk, authed);
	struct strbuf out = STRBUF_INIT;

	for (size_t i = 0; i < len; i++) {
		if (!feed_chunk(p, in + i, 1, &out))
			break;
	}
	imap_parser_free(&p);
	return strbuf_detach(&out, NULL);
}

struct parse_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	enum limits_kind limits;
	bool preauth;		/* run unauthenticated */
	const char *expect;
};

#define LEN(s) (sizeof(s) - 1)

static const struct parse_case cases[] = {
	/* --- valid commands --- */
	{ "a1 NOOP\r\n", 0, L_DEFAULT, false, "DONE a1 NOOP\n" },
	{ "a1 noop\r\na2 CAPABILITY\r\n", 0, L_DEFAULT, false,
	  "DONE a1 noop\nDONE a2 CAPABILITY\n" },
	{ "a1 LOGIN joe \"p a\\\"s\\\\s\"\r\n", 0, L_DEFAULT, false,
	  "DONE a1 LOGIN joe \"p a\"s\\s\"\n" },
	{ "x FETCH 1:*,3 (FLAGS (X Y) () UID)\r\n", 0, L_DEFAULT, false,
	  "DONE x FETCH 1:*,3 (FLAGS (X Y) () UID)\n" },
	{ "a LOGIN {3}\r\nabc {2}\r\nde\r\n", 0, L_DEFAULT, false,
	  "+\n+\nDONE a LOGIN {3}abc {2}de\n" },
	{ "a LOGIN {3+}\r\nabc {0+}\r\n\r\n", 0, L_DEFAULT, false,
	  "DONE a LOGIN {3+}abc {0+}\n" },
	{ "a X {0}\r\n\r\n", 0, L_DEFAULT, false, "+\nDONE a X {0}\n" },
	{ "a APPEND box ~{2}\r\nab\r\n", 0, L_BINARY, false,
	  "+\nDONE a APPEND box ~{2}ab\n" },
	/* issue 13 item 11: '~' is an ATOM-CHAR; only "~{" where BINARY is
	 * in effect starts a literal8 */
	{ "a1 LIST \"\" ~foo\r\na2 SELECT ~\r\n", 0, L_DEFAULT, false,
	  "DONE a1 LIST \"\" ~foo\nDONE a2 SELECT ~\n" },
	{ "a1 X (~a ~) a~b~\r\n", 0, L_DEFAULT, false,
	  "DONE a1 X (~a ~) a~b~\n" },
	{ "a1 X ~foo ~{1+}\r\nz\r\n", 0, L_BINARY, false,
	  "DONE a1 X ~foo ~{1+}z\n" },
	{ "a1 X ~{1}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	/* issue 13 item 14: a header name of HEADER.FIELDS as a literal */
	{ "a FETCH 1 BODY.PEEK[HEADER.FIELDS ({4}\r\nFrom To)]<0.5>\r\n", 0,
	  L_DEFAULT, false,
	  "+\nDONE a FETCH 1 BODY.PEEK[HEADER.FIELDS (\"From\" To)]<0.5>\n" },
	{ "a FETCH 1 (BODY[HEADER.FIELDS (X {3+}\r\na\"\\)] UID)\r\n", 0,
	  L_DEFAULT, false,
	  "DONE a FETCH 1 (BODY[HEADER.FIELDS (X \"a\\\"\\\\\")] UID)\n" },
	{ "a1 FETCH 1 BODY[HEADER.FIELDS ({8193}\r\na2 NOOP\r\n", 0,
	  L_DEFAULT, false, "ERR toolong a1\nDONE a2 NOOP\n" },
	{ "a1 FETCH 1 BODY[HEADER.FIELDS ({8193+}\r\n", 0, L_DEFAULT, false,
	  "FATAL litplus\n" },
	{ "a X NIL nil \"NIL\" NILS\r\n", 0, L_DEFAULT, false,
	  "DONE a X NIL NIL \"NIL\" NILS\n" },
	{ "a X \"\" \"caf\xc3\xa9\"\r\n", 0, L_DEFAULT, false,
	  "DONE a X \"\" \"caf\xc3\xa9\"\n" },
	{ "a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From \"T)o\")]<0.10> UID)\r\n",
	  0, L_DEFAULT, false,
	  "DONE a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From \"T)o\")]<0.10> UID)\n" },
	{ "a FETCH 1 body[]\r\n", 0, L_DEFAULT, false,
	  "DONE a FETCH 1 body[]\n" },
	{ "a SELECT a[b c]\r\n", 0, L_DEFAULT, false,
	  "DONE a SELECT a[b c]\n" },
	{ "a STORE 1 +FLAGS (\\Seen \\*)\r\n", 0, L_DEFAULT, false,
	  "DONE a STORE 1 +FLAGS (\\Seen \\*)\n" },
	{ "a LIST \"\" %/*\r\n", 0, L_DEFAULT, false,
	  "DONE a LIST \"\" %/*\n" },
	{ "a X ((a) (b (c)))\r\n", 0, L_DEFAULT, false,
	  "DONE a X ((a) (b (c)))\n" },
	{ "a X {007}\r\n1234567\r\n", 0, L_DEFAULT, false,
	  "+\nDONE a X {7}1234567\n" },
	{ "a X {3+}\r\na\0b\r\n", LEN("a X {3+}\r\na\0b\r\n"), L_DEFAULT, false,
	  "DONE a X {3+}a\\0b<nul>\n" },
	{ "a X ({2}\r\nab {1+}\r\nc)\r\n", 0, L_DEFAULT, false,
	  "+\nDONE a X ({2}ab {1+}c)\n" },
	/* Literal bytes are never parsed as commands. */
	{ "a1 APPEND x {13}\r\na2 LOGOUT\r\n\r\n\r\n", 0, L_DEFAULT, false,
	  "+\nDONE a1 APPEND x {13}a2 LOGOUT\\r\\n\\r\\n\n" },
	{ "a1 APPEND x {10+}\r\n{5}\r\n(((\r\n\r\n", 0, L_DEFAULT, false,
	  "DONE a1 APPEND x {10+}{5}\\r\\n(((\\r\\n\n" },

	/* An HTTP request on the IMAP port: rejected line by line (the server
	 * counts bogus commands and disconnects). */
	{ "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, L_DEFAULT, false,
	  "ERR syntax GET\nDONE Host: example.com\nERR syntax *\n" },
	{ "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n{5+}\r\nhello\r\n", 0,
	  L_DEFAULT, false,
	  "ERR syntax POST\nDONE Content-Length: 5\nERR syntax *\n"
	  "ERR syntax *\n" },

	/* --- syntax errors, each followed by a command that must parse --- */
	{ "a1 NOOP \r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 NOOP\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a\nb\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nERR syntax *\nDONE a2 NOOP\n" },
	{ "a1 NO\rOP\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a\rb\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 SELECT a\0b\r\na2 NOOP\r\n", LEN("a1 SELECT a\0b\r\na2 NOOP\r\n"),
	  L_DEFAULT, false, "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 SELECT \xe9t\xe9\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 SELECT a\xff\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X \"a\0b\"\r\na2 NOOP\r\n", LEN("a1 X \"a\0b\"\r\na2 NOOP\r\n"),
	  L_DEFAULT, false, "ERR syntax a1\nDONE a2 NOOP\n" },
	/* A quoted string ending in a backslash escapes its closing quote. */
	{ "a1 LOGIN u \"abc\\\"\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 LOGIN u \"abc\\\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X \"a\\nb\"\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X \"abc\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax *\nDONE a2 NOOP\n" },
	{ "a1\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax *\nDONE a2 NOOP\n" },
	{ "a1 \r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "+1 NOOP\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax *\nDONE a2 NOOP\n" },
	{ "a*1 NOOP\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax *\nDONE a2 NOOP\n" },
	{ "a1  NOOP\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a  b\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 NOOP)\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a)\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X (a b\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X ( a)\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X (a )\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X (a)b\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X \"a\"b\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a\"b\"\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X a{3}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {3}\r\nabc)\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "+\nERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 FETCH 1 BODY[HEADER.FIELDS (A B)\r\na2 NOOP\r\n", 0, L_DEFAULT,
	  false, "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 FETCH 1 BODY[[]]\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X ~x\r\na2 NOOP\r\n", 0, L_BINARY, false,
	  "DONE a1 X ~x\nDONE a2 NOOP\n" },
	/* Literal sizes: overflow, sign, empty, junk: BAD and no "+". */
	{ "a1 X {18446744073709551616}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {99999999999999999999999999}\r\na2 NOOP\r\n", 0, L_DEFAULT,
	  false, "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {-1}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {+}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {1a}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {3}x\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {3}\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	{ "a1 X {3} y\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },
	/* {n+} over 2^64 is fatal: the client would send the bytes. */
	{ "a1 X {18446744073709551616+}\r\n", 0, L_DEFAULT, false,
	  "FATAL litplus\n" },

	/* --- resync after an error skips {n+} literal data --- */
	{ "a1 NO)OP {9+}\r\na2 NOOP\r\n\r\na3 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a3 NOOP\n" },
	{ "a1 X ) {4+}\r\n\r\n\r\n {2+}\r\nxx\r\na3 NOOP\r\n", 0, L_DEFAULT,
	  false, "ERR syntax a1\nDONE a3 NOOP\n" },
	{ "a1 X \"\\x\" {9+}\r\na2 NOOP\r\n\r\na3 NOOP\r\n", 0, L_DEFAULT,
	  false, "ERR syntax a1\nDONE a3 NOOP\n" },
	/* The error byte itself is the '{' of a {n+}. */
	{ "a1 X a{9+}\r\na2 NOOP\r\n\r\na3 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a3 NOOP\n" },
	/* An error after "{n+}": the literal still comes. */
	{ "a1 X {3+}\nabc\r\na3 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a3 NOOP\n" },
	/* ... but a synchronising {n} never gets "+": no data follows. */
	{ "a1 NO)OP {9}\r\na2 NOOP\r\n", 0, L_DEFAULT, false,
	  "ERR syntax a1\nDONE a2 NOOP\n" },

	/* --- limits (tiny: line 40, literal 20/10, command 100, depth 3,
	 *     args 8, tag 8, atom 12, quoted 10) --- */
	{ "a1 X {20}\r\n01234567890123456789\r\n", 0, L_TINY, false,
	  "+\nDONE a1 X {20}01234567890123456789\n" },
	{ "a1 X {21}\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR litsize a1\nDONE a2 NOOP\n" },
	{ "a1 X {21+}\r\na2 NOOP\r\n", 0, L_TINY, false, "FATAL litplus\n" },
	{ "a1 X {20+}\r\n01234567890123456789\r\n", 0, L_TINY, false,
	  "DONE a1 X {20+}01234567890123456789\n" },
	/* Before authentication the literal limit is 10. */
	{ "a1 LOGIN {10}\r\n0123456789 x\r\n", 0, L_TINY, true,
	  "+\nDONE a1 LOGIN {10}0123456789 x\n" },
	{ "a1 LOGIN {11}\r\na2 NOOP\r\n", 0, L_TINY, true,
	  "ERR litsize a1\nDONE a2 NOOP\n" },
	{ "a1 LOGIN {11+}\r\n", 0, L_TINY, true, "FATAL litplus\n" },
	/* ... and the line limit 30 (40 after login). */
	{ "a1 LOGIN user123456 pass5678\r\n", 0, L_TINY, true,
	  "DONE a1 LOGIN user123456 pass5678\n" },
	{ "a1 LOGIN user1234567 pass5678\r\na2 NOOP\r\n", 0, L_TINY, true,
	  "ERR line a1\nDONE a2 NOOP\n" },
	{ "a1 LOGIN user1234567 pass5678\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "DONE a1 LOGIN user1234567 pass5678\nDONE a2 NOOP\n" },
	/* Resync does not skip a {n+} over the limit: fatal. */
	{ "a1 X ) {21+}\r\n", 0, L_TINY, false,
	  "ERR syntax a1\nFATAL litplus\n" },
	/* Depth 3. */
	{ "a1 X (((a)))\r\n", 0, L_TINY, false, "DONE a1 X (((a)))\n" },
	{ "a1 X ((((a))))\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR deep a1\nDONE a2 NOOP\n" },
	/* 8 arguments (lists count). */
	{ "a1 X 1 2 3 4 5 6 7 8\r\n", 0, L_TINY, false,
	  "DONE a1 X 1 2 3 4 5 6 7 8\n" },
	{ "a1 X 1 2 3 4 5 6 7 8 9\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR args a1\nDONE a2 NOOP\n" },
	{ "a1 X (1 2 3) (4 5 6) 7\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR args a1\nDONE a2 NOOP\n" },
	{ "a1 X 1 2 3 4 5 6 7 8 {1+}\r\nx {1+}\r\ny\r\na2 NOOP\r\n", 0,
	  L_TINY, false, "ERR args a1\nDONE a2 NOOP\n" },
	/* Tag 8, atom 12, quoted 10. */
	{ "abcdefgh NOOP\r\n", 0, L_TINY, false, "DONE abcdefgh NOOP\n" },
	{ "abcdefghi NOOP\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR toolong *\nDONE a2 NOOP\n" },
	{ "a1 ABCDEFGHIJKL\r\n", 0, L_TINY, false, "DONE a1 ABCDEFGHIJKL\n" },
	{ "a1 ABCDEFGHIJKLM\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR toolong a1\nDONE a2 NOOP\n" },
	{ "a1 X abcdefghijkl\r\n", 0, L_TINY, false,
	  "DONE a1 X abcdefghijkl\n" },
	{ "a1 X abcdefghijklm\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR toolong a1\nDONE a2 NOOP\n" },
	{ "a1 X \"0123456789\"\r\n", 0, L_TINY, false,
	  "DONE a1 X \"0123456789\"\n" },
	{ "a1 X \"0123456789a\"\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR toolong a1\nDONE a2 NOOP\n" },
	{ "a1 X \"012345678\\\\a\"\r\na2 NOOP\r\n", 0, L_TINY, false,
	  "ERR toolong a1\nDONE a2 NOOP\n" },
	/* Line 40 bytes including CRLF: exactly 40 is fine, 41 is not. */
	{ "a1 X 1 \"23456789\" \"0123456789\" abcdefg\r\n", 0, L_TINY, false,
	  "DONE a1 X 1 \"23456789\" \"0123456789\" abcdefg\n" },
	{ "a1 X 1 \"23456789\" \"0123456789\" abcdefgh\r\na2 NOOP\r\n", 0,
	  L_TINY, false, "ERR line a1\nDONE a2 NOOP\n" },
	/* Lines after a literal start counting afresh. */
	{ "a1 X {1}\r\nx 234567890 234567890 234567890 2345\r\n", 0, L_TINY,
	  false, "+\nDONE a1 X {1}x 234567890 234567890 234567890 2345\n" },
	/* Command size 100 in all: literals count. */
	{ "a1 X {20}\r\n01234567890123456789 {20}\r\n01234567890123456789"
	  " {20}\r\n01234567890123456789 {20}\r\na2 NOOP\r\n", 0, L_TINY,
	  false, "+\n+\n+\nERR cmdsize a1\nDONE a2 NOOP\n" },
	/* A runaway line after an error closes the connection. */
	{ "a1 X ) 234567890 234567890 234567890 234567890 2345\r\n", 0, L_TINY,
	  false, "ERR syntax a1\nFATAL runaway\n" },
	{ "a1 X 234567890 234567890 234567890 234567890 234567890 234567890"
	  " 234567890 234567890 234567890\r\n", 0, L_TINY, false,
	  "ERR line a1\nFATAL runaway\n" },
};

static void
check_case(const struct parse_case *c, bool all_splits)
{
	size_t len = c->len != 0 ? c->len : strlen(c->in);
	bool authed = !c->preauth;
	char *whole = run_split(c->in, len, c->limits, authed, NULL, 0);
	char *bytes;

	ck_assert_msg(strcmp(whole, c->expect) == 0,
	    "input %s:\n got:\n%s\n expected:\n%s", c->in, whole, c->expect);
	bytes = run_bytewise(c->in, len, c->limits, authed);
	ck_assert_msg(strcmp(bytes, c->expect) == 0,
	    "bytewise %s:\n got:\n%s\n expected:\n%s", c->in, bytes, c->expect);
	free(bytes);
	for (size_t cut = 1; cut < len; cut++) {
		char *t = run_split(c->in, len, c->limits, authed, &cut, 1);
		ck_assert_msg(strcmp(t, c->expect) == 0,
		    "split at %zu of %s:\n got:\n%s", cut, c->in, t);
		free(t);
	}
	if (all_splits && len <= 40) {
		for (size_t a = 1; a < len; a++) {
			for (size_t b = a + 1; b < len; b++) {
				size_t cuts[2] = { a, b };
				char *t = run_split(c->in, len, c->limits, authed,
				    cuts, 2);
				ck_assert_msg(strcmp(t, c->expect) == 0,
				    "split at %zu,%zu of %s:\n got:\n%s", a, b,
				    c->in, t);
				free(t);
			}
		}
	}
	free(whole);
}

START_TEST(parse_table_every_split)
{
	check_case(&cases[_i], true);
}
END_TEST

/* All cases in one stream (after a successful command the parser is
 * reused): the transcript is the concatenation. Only cases that end
 * cleanly (no FATAL) and share the default limits. */
START_TEST(parse_table_one_stream)
{
	struct strbuf in = STRBUF_INIT, expect = STRBUF_INIT;

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		const struct parse_case *c = &cases[i];
		if (c->limits != L_DEFAULT || c->preauth ||
		    strstr(c->expect, "FATAL") != NULL)
			continue;
		strbuf_append(&in, c->in, c->len != 0 ? c->len : strlen(c->in));
		strbuf_appends(&expect, c->expect);
	}
	char *t = run_split(in.data, in.len, L_DEFAULT, true, NULL, 0);
	ck_assert_str_eq(t, expect.data);
	free(t);
	t = run_bytewise(in.data, in.len, L_DEFAULT, true);
	ck_assert_str_eq(t, expect.data);
	free(t);
	/* Random splits, fixed seed. */
	srand(4242);
	for (int round = 0; round < 50; round++) {
		size_t cuts[64];
		size_t n = 0, pos = 0;
		while (n < 64) {
			pos += 1 + (size_t)rand() % 40;
			if (pos >= in.len)
				break;
			cuts[n++] = pos;
		}
		t = run_split(in.data, in.len, L_DEFAULT, true, cuts, n);
		ck_assert_str_eq(t, expect.data);
		free(t);
	}
	strbuf_free(&in);
	strbuf_free(&expect);
}
END_TEST

START_TEST(parse_100000_nested_parens)
{
	struct strbuf in = STRBUF_INIT;
	char *t;

	strbuf_appends(&in, "a1 X ");
	for (int i = 0; i < 100000; i++)
		strbuf_appendc(&in, '(');
	strbuf_appends(&in, "\r\n");
	/* Depth error at once; the rest of the over-long line is runaway. */
	t = run_split(in.data, in.len, L_DEFAULT, true, NULL, 0);
	ck_assert_str_eq(t, "ERR deep a1\nFATAL runaway\n");
	free(t);

	/* Under the line limit: depth error, resync, next command fine. */
	strbuf_reset(&in);
	strbuf_appends(&in, "a1 X ");
	for (int i = 0; i < 60000; i++)
		strbuf_appendc(&in, '(');
	strbuf_appends(&in, "\r\na2 NOOP\r\n");
	t = run_split(in.data, in.len, L_DEFAULT, true, NULL, 0);
	ck_assert_str_eq(t, "ERR deep a1\nDONE a2 NOOP\n");
	free(t);
	t = run_bytewise(in.data, in.len, L_DEFAULT, true);
	ck_assert_str_eq(t, "ERR deep a1\nDONE a2 NOOP\n");
	free(t);
	strbuf_free(&in);
}
END_TEST

START_TEST(parse_thousands_of_small_literals)
{
	struct strbuf in = STRBUF_INIT;
	char *t;

	/* 5000 {1+} literals: the argument limit (4096) stops the command;
	 * resync skips every remaining literal's byte (each byte is "\n"
	 * here, so misreading a literal would end the skip early). */
	strbuf_appends(&in, "a1 X");
	for (int i = 0; i < 5000; i++)
		strbuf_appends(&in, " {1+}\r\n\n");
	strbuf_appends(&in, "\r\na2 NOOP\r\n");
	t = run_split(in.data, in.len, L_DEFAULT, true, NULL, 0);
	ck_assert_str_eq(t, "ERR args a1\nDONE a2 NOOP\n");
	free(t);

	/* 4000 fit and come back intact. */
	strbuf_reset(&in);
	strbuf_appends(&in, "a1 X");
	for (int i = 0; i < 4000; i++)
		strbuf_appends(&in, " {1+}\r\n\n");
	strbuf_appends(&in, "\r\n");
	struct imap_parser *p = make_parser(L_DEFAULT, true);
	size_t used;
	const struct imap_command *cmd;
	ck_assert_int_eq(imap_parser_feed(p, in.data, in.len, &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_uint_eq(used, in.len);
	ck_assert_uint_eq(cmd->arg_count, 4000);
	ck_assert_uint_eq(cmd->size, in.len);
	for (size_t i = 0; i < cmd->arg_count; i++) {
		ck_assert_int_eq(cmd->args[i].type, IMAP_ARG_LITERAL);
		ck_assert_uint_eq(cmd->args[i].len, 1);
		ck_assert_int_eq(cmd->args[i].str[0], '\n');
	}
	imap_parser_free(&p);
	strbuf_free(&in);
}
END_TEST

/*
 * Regression (review): before login, one command could hold max_args
 * literals of max_literal_preauth bytes (4096 x 8 KiB = 32 MiB per
 * connection) because the total command size was only bounded by the
 * post-login max_command (64 MiB). Now max_command_preauth bounds it.
 */
START_TEST(parse_preauth_command_total_bounded)
{
	struct strbuf in = STRBUF_INIT, lit = STRBUF_INIT;
	char *t;

	for (int i = 0; i < 8000; i++)
		strbuf_appendc(&lit, 'x');
	strbuf_appends(&in, "a1 LOGIN");
	for (int i = 0; i < 12; i++) {
		strbuf_appends(&in, " {8000+}\r\n");
		strbuf_append(&in, lit.data, lit.len);
	}
	strbuf_appends(&in, "\r\n");
	/* Before login: the 9th literal would pass 64 KiB, and its bytes
	 * are on the way ({n+}): the connection must go. */
	t = run_split(in.data, in.len, L_DEFAULT, false, NULL, 0);
	ck_assert_str_eq(t, "FATAL litplus\n");
	free(t);
	/* After login the same command is fine. */
	t = run_split(in.data, in.len, L_DEFAULT, true, NULL, 0);
	ck_assert_ptr_nonnull(strstr(t, "DONE a1 LOGIN"));
	free(t);
	/* A synchronising literal gets a tagged error instead. */
	strbuf_reset(&in);
	strbuf_appends(&in, "a3 LOGIN");
	for (int i = 0; i < 8; i++) {
		strbuf_appends(&in, " {8000+}\r\n");
		strbuf_append(&in, lit.data, lit.len);
	}
	strbuf_appends(&in, " {8000}\r\n");
	t = run_split(in.data, in.len, L_DEFAULT, false, NULL, 0);
	ck_assert_str_eq(t, "ERR cmdsize a3\n");
	free(t);
	strbuf_free(&in);
	strbuf_free(&lit);
}
END_TEST

/*
 * Regression (review): the parser kept the arguments of LOGIN (the
 * password) in its arena and token buffer after the command, reusing the
 * memory without clearing it (STYLE 13: password buffers are wiped).
 * The arena keeps its first block across a reset, so the bytes a
 * finished command pointed at can be looked at once more here.
 */
START_TEST(parse_preauth_password_wiped)
{
	static const char in[] = "a1 LOGIN joe \"s3cr3t-pw\"\r\n";
	struct imap_parser *p = make_parser(L_DEFAULT, false);
	const struct imap_command *cmd;
	const char *pw;
	size_t used;

	ck_assert_int_eq(imap_parser_feed(p, in, sizeof(in) - 1, &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_uint_eq(cmd->arg_count, 2);
	pw = cmd->args[1].str;
	ck_assert_str_eq(pw, "s3cr3t-pw");
	/* LOGIN succeeded: the session says so before reading on. */
	imap_parser_set_authenticated(p, true);
	ck_assert_int_eq(imap_parser_feed(p, "", 0, &used, &cmd),
	    IMAP_PARSE_NEED_MORE);
	ck_assert_ptr_null(memmem(pw, 9, "s3cr3t", 6));
	imap_parser_free(&p);
}
END_TEST

START_TEST(parse_big_literal_in_small_chunks)
{
	struct imap_parser *p = make_parser(L_DEFAULT, true);
	const struct imap_command *cmd = NULL;
	struct strbuf in = STRBUF_INIT;
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	size_t off = 0, used, conts = 0;
	const size_t n = 60000;	/* under IMAP_PARSE_MAX_LITERAL */

	strbuf_appendf(&in, "a1 APPEND INBOX {%zu}\r\n", n);
	for (size_t i = 0; i < n; i++)
		strbuf_appendc(&in, (char)('a' + i % 26));
	strbuf_appends(&in, "\r\n");
	while (off < in.len) {
		size_t chunk = in.len - off < 7 ? in.len - off : 7;
		r = imap_parser_feed(p, in.data + off, chunk, &used, &cmd);
		off += used;
		if (r == IMAP_PARSE_NEED_CONTINUATION)
			conts++;
		else if (r != IMAP_PARSE_NEED_MORE)
			break;
	}
	ck_assert_int_eq(r, IMAP_PARSE_DONE);
	ck_assert_uint_eq(off, in.len);
	ck_assert_uint_eq(conts, 1);
	ck_assert_uint_eq(cmd->args[1].len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(cmd->args[1].str[i], 'a' + (int)(i % 26));
	ck_assert_int_eq(cmd->args[1].str[n], '\0');
	ck_assert_uint_eq(cmd->size, in.len);
	imap_parser_free(&p);
	strbuf_free(&in);
}
END_TEST

/* ---- the literal sink (APPEND streamed, budgets) ---- */

struct test_sink {
	struct strbuf got;	/* bytes written to the open stream */
	unsigned opened, discarded, writes;
	uint64_t announced;
	bool saw_buffered;	/* start() was asked for a non-stream */
	enum imap_parse_error_code refuse_start;	/* for streams */
	enum imap_parse_error_code refuse_buffered;
	size_t fail_after;	/* write refuses once this much is in (0: no) */
	int handle;		/* the one handle it gives out */
};

static enum imap_parse_error_code
ts_start(void *ctx, uint64_t size, bool stream, void **handle_r,
    const char **text_r)
{
	struct test_sink *t = ctx;

	if (!stream) {
		t->saw_buffered = true;
		*text_r = "budget";
		return t->refuse_buffered;
	}
	if (t->refuse_start != IMAP_PARSE_ERR_NONE) {
		*text_r = "refused";
		return t->refuse_start;
	}
	t->opened++;
	t->announced = size;
	strbuf_reset(&t->got);
	*handle_r = &t->handle;
	return IMAP_PARSE_ERR_NONE;
}

static enum imap_parse_error_code
ts_write(void *ctx, void *handle, const void *data, size_t n,
    const char **text_r)
{
	struct test_sink *t = ctx;

	/* no ck_assert per write: in fork mode each one is a message to
	   the parent, and a byte-by-byte feed makes hundreds of thousands */
	if (handle != &t->handle)
		ck_abort_msg("write to a handle the sink did not give");
	t->writes++;
	strbuf_append(&t->got, data, n);
	if (t->fail_after > 0 && t->got.len >= t->fail_after) {
		*text_r = "disk full";
		return IMAP_PARSE_ERR_LIMIT;
	}
	return IMAP_PARSE_ERR_NONE;
}

static void
ts_discard(void *ctx, void *handle)
{
	struct test_sink *t = ctx;

	ck_assert_ptr_eq(handle, &t->handle);
	t->discarded++;
}

static struct imap_parser *
sink_parser(struct test_sink *t, bool authed)
{
	struct imap_parser *p = make_parser(L_DEFAULT, authed);
	struct imap_literal_sink sink = {
		.ctx = t, .start = ts_start, .write = ts_write,
		.discard = ts_discard,
	};

	imap_parser_set_sink(p, &sink);
	return p;
}

/* Feeds in chunks of step bytes until the parser stops needing more. */
static enum imap_parse_result
feed_steps(struct imap_parser *p, const char *in, size_t len, size_t step,
    size_t *off, const struct imap_command **cmd, unsigned *conts,
    uint64_t *max_held)
{
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;

	while (*off < len) {
		size_t used, n = len - *off < step ? len - *off : step;

		r = imap_parser_feed(p, in + *off, n, &used, cmd);
		*off += used;
		if (max_held != NULL && imap_parser_held(p) > *max_held)
			*max_held = imap_parser_held(p);
		if (r == IMAP_PARSE_NEED_CONTINUATION)
			(*conts)++;
		else if (r != IMAP_PARSE_NEED_MORE)
			break;
	}
	return r;
}

/* A message far over max_literal streams through the sink at any split:
 * the same bytes, the parser holds no more than a line. */
START_TEST(parse_append_streams_to_sink)
{
	/* three times the in-memory literal limit */
	const size_t n = 3 * IMAP_PARSE_MAX_LITERAL, steps[] = { 1, 7, 4096,
	    1 << 20 };

	for (size_t k = 0; k < N_ELEMENTS(steps); k++) {
		struct test_sink t = { .got = STRBUF_INIT };
		struct imap_parser *p = sink_parser(&t, true);
		const struct imap_command *cmd = NULL;
		struct strbuf in = STRBUF_INIT;
		unsigned conts = 0;
		uint64_t held = 0;
		size_t off = 0;
		enum imap_parse_result r;

		/* the mailbox as a literal is not the message: in memory */
		strbuf_appendf(&in, "a1 APPEND {5}\r\nINBOX (\\Seen) {%zu}\r\n",
		    n);
		for (size_t i = 0; i < n; i++)
			strbuf_appendc(&in, (char)(i % 251));
		strbuf_appends(&in, "\r\nb NOOP\r\n");
		r = feed_steps(p, in.data, in.len, steps[k], &off, &cmd,
		    &conts, &held);
		ck_assert_int_eq(r, IMAP_PARSE_DONE);
		ck_assert_uint_eq(conts, 2);
		ck_assert_uint_eq(t.opened, 1);
		ck_assert_uint_eq(t.announced, n);
		ck_assert_uint_eq(t.got.len, n);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)t.got.data[i] != i % 251)
				ck_abort_msg("byte %zu differs", i);
		ck_assert(held < 256);
		ck_assert_uint_eq(cmd->arg_count, 3);
		ck_assert_ptr_null(cmd->args[0].stream);
		ck_assert_str_eq(cmd->args[0].str, "INBOX");
		ck_assert_ptr_eq(cmd->args[2].stream, &t.handle);
		ck_assert_uint_eq(cmd->args[2].stream_size, n);
		ck_assert_uint_eq(cmd->args[2].len, 0);
		if (k % 2 == 0) {
			/* taken: the caller owns it, the parser forgets it */
			ck_assert_ptr_eq(imap_parser_take_stream(p,
			    cmd->args[2].stream), &t.handle);
		}
		r = feed_steps(p, in.data, in.len, 64, &off, &cmd, &conts,
		    NULL);
		ck_assert_int_eq(r, IMAP_PARSE_DONE);
		ck_assert_str_eq(cmd->name, "NOOP");
		ck_assert_uint_eq(t.discarded, k % 2 == 0 ? 0 : 1);
		imap_parser_free(&p);
		strbuf_free(&in);
		strbuf_free(&t.got);
	}
}
END_TEST

/* Other literals stay small with a sink too, and before login nothing
 * streams. */
START_TEST(parse_sink_only_append_message)
{
	struct test_sink t = { .got = STRBUF_INIT };
	struct imap_parser *p = sink_parser(&t, true);
	const struct imap_command *cmd = NULL;
	char buf[128];
	unsigned conts = 0;
	size_t off = 0;
	enum imap_parse_result r;

	snprintf(buf, sizeof(buf), "a SEARCH TEXT {%llu}\r\n",
	    IMAP_PARSE_MAX_LITERAL + 1);
	r = feed_steps(p, buf, strlen(buf), 1000, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_ERROR);
	ck_assert_int_eq(imap_parser_get_error(p)->code,
	    IMAP_PARSE_ERR_LITERAL_TOO_BIG);
	ck_assert_uint_eq(conts, 0);
	ck_assert_uint_eq(t.opened, 0);
	imap_parser_free(&p);

	p = sink_parser(&t, false);
	off = 0;
	snprintf(buf, sizeof(buf), "a APPEND INBOX {%llu}\r\n",
	    IMAP_PARSE_MAX_LITERAL_PREAUTH + 1);
	r = feed_steps(p, buf, strlen(buf), 1000, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_ERROR);
	ck_assert_int_eq(imap_parser_get_error(p)->code,
	    IMAP_PARSE_ERR_LITERAL_TOO_BIG);
	ck_assert_uint_eq(t.opened, 0);
	imap_parser_free(&p);
	strbuf_free(&t.got);
}
END_TEST

/* A refused {n} is answered at once without "+"; a refused {n+} after its
 * bytes are skipped (never read as commands); the next command works. */
START_TEST(parse_sink_refusals)
{
	for (int plus = 0; plus < 2; plus++) {
		struct test_sink t = { .got = STRBUF_INIT,
		    .refuse_start = IMAP_PARSE_ERR_OVERQUOTA };
		struct imap_parser *p = sink_parser(&t, true);
		const struct imap_command *cmd = NULL;
		struct strbuf in = STRBUF_INIT;
		unsigned conts = 0;
		size_t off = 0;
		enum imap_parse_result r;

		strbuf_appendf(&in, "t7 APPEND INBOX {200000%s}\r\n",
		    plus ? "+" : "");
		if (plus) {
			for (size_t i = 0; i < 200000; i++)
				strbuf_appends(&in, i % 50 ? "x" : "\n");
			strbuf_appends(&in, " trailing junk\r\n");
		}
		strbuf_appends(&in, "n NOOP\r\n");
		r = feed_steps(p, in.data, in.len, 999, &off, &cmd, &conts,
		    NULL);
		ck_assert_int_eq(r, IMAP_PARSE_ERROR);
		ck_assert_uint_eq(conts, 0);
		ck_assert_int_eq(imap_parser_get_error(p)->code,
		    IMAP_PARSE_ERR_OVERQUOTA);
		ck_assert_str_eq(imap_parser_get_error(p)->tag, "t7");
		r = feed_steps(p, in.data, in.len, 999, &off, &cmd, &conts,
		    NULL);
		ck_assert_int_eq(r, IMAP_PARSE_DONE);
		ck_assert_str_eq(cmd->tag, "n");
		ck_assert_uint_eq(off, in.len);
		imap_parser_free(&p);
		strbuf_free(&in);
		strbuf_free(&t.got);
	}
}
END_TEST

/* The sink fails mid-literal (disk full): the rest is skipped, the
 * partial stream discarded, the command answered with the error. */
START_TEST(parse_sink_write_fails)
{
	struct test_sink t = { .got = STRBUF_INIT, .fail_after = 5000 };
	struct imap_parser *p = sink_parser(&t, true);
	const struct imap_command *cmd = NULL;
	struct strbuf in = STRBUF_INIT;
	unsigned conts = 0;
	size_t off = 0;
	enum imap_parse_result r;

	strbuf_appends(&in, "w APPEND INBOX {100000}\r\n");
	for (size_t i = 0; i < 100000; i++)
		strbuf_appendc(&in, 'q');
	strbuf_appends(&in, "\r\nn NOOP\r\n");
	r = feed_steps(p, in.data, in.len, 1000, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_ERROR);
	ck_assert_uint_eq(conts, 1);
	ck_assert_int_eq(imap_parser_get_error(p)->code, IMAP_PARSE_ERR_LIMIT);
	ck_assert_str_eq(imap_parser_get_error(p)->tag, "w");
	ck_assert_uint_eq(t.discarded, 1);
	ck_assert_uint_eq(t.got.len, 5000);
	r = feed_steps(p, in.data, in.len, 1000, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_DONE);
	ck_assert_str_eq(cmd->name, "NOOP");
	imap_parser_free(&p);
	strbuf_free(&in);
	strbuf_free(&t.got);
}
END_TEST

/* The budget hook sees buffered literals too; a connection cut mid-stream
 * discards the partial stream when the parser is freed. */
START_TEST(parse_sink_budget_and_free)
{
	struct test_sink t = { .got = STRBUF_INIT,
	    .refuse_buffered = IMAP_PARSE_ERR_LIMIT };
	struct imap_parser *p = sink_parser(&t, true);
	const struct imap_command *cmd = NULL;
	const char *in = "a SELECT {10}\r\n";
	const char *in2 = "b APPEND INBOX {50000}\r\nabc";
	unsigned conts = 0;
	size_t off = 0;
	enum imap_parse_result r;

	r = feed_steps(p, in, strlen(in), 100, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_ERROR);
	ck_assert(t.saw_buffered);
	ck_assert_int_eq(imap_parser_get_error(p)->code, IMAP_PARSE_ERR_LIMIT);
	ck_assert_uint_eq(conts, 0);
	off = 0;
	r = feed_steps(p, in2, strlen(in2), 100, &off, &cmd, &conts, NULL);
	ck_assert_int_eq(r, IMAP_PARSE_NEED_MORE);
	ck_assert_uint_eq(t.opened, 1);
	ck_assert_uint_eq(t.discarded, 0);
	imap_parser_free(&p);
	ck_assert_uint_eq(t.discarded, 1);
	strbuf_free(&t.got);
}
END_TEST

START_TEST(parse_reset_discards_partial_input)
{
	struct imap_parser *p = make_parser(L_DEFAULT, true);
	const struct imap_command *cmd;
	size_t used;

	/* STARTTLS injection: bytes after the command are discarded by the
	 * server with a reset; half a command must not survive it. */
	ck_assert_int_eq(imap_parser_feed(p, "a2 DEL", 6, &used, &cmd),
	    IMAP_PARSE_NEED_MORE);
	imap_parser_reset(p);
	ck_assert_int_eq(imap_parser_feed(p, "ETE x\r\n", 7, &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_str_eq(cmd->tag, "ETE");
	ck_assert_str_eq(cmd->name, "x");
	imap_parser_free(&p);
}
END_TEST

START_TEST(parse_fatal_is_sticky)
{
	struct imap_parser *p = make_parser(L_TINY, true);
	const struct imap_command *cmd;
	size_t used;

	ck_assert_int_eq(imap_parser_feed(p, "a X {99+}\r\n", 11, &used, &cmd),
	    IMAP_PARSE_FATAL);
	ck_assert_int_eq(imap_parser_feed(p, "a NOOP\r\n", 8, &used, &cmd),
	    IMAP_PARSE_FATAL);
	ck_assert_uint_eq(used, 0);
	imap_parser_free(&p);
	imap_parser_free(&p);
}
END_TEST

START_TEST(parse_continuation_points)
{
	/* NEED_CONTINUATION comes exactly after "{n}\r\n" and the bytes
	 * before it are consumed, nothing after. */
	struct imap_parser *p = make_parser(L_DEFAULT, true);
	const struct imap_command *cmd;
	const char *in = "a1 APPEND INBOX (\\Seen) {5}\r\nhello\r\n";
	size_t used, off;

	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_NEED_CONTINUATION);
	ck_assert_uint_eq(used, strlen("a1 APPEND INBOX (\\Seen) {5}\r\n"));
	off = used;
	ck_assert_int_eq(imap_parser_feed(p, in + off, strlen(in) - off, &used,
	    &cmd), IMAP_PARSE_DONE);
	ck_assert_uint_eq(off + used, strlen(in));
	ck_assert_uint_eq(cmd->arg_count, 3);
	ck_assert_str_eq(cmd->args[2].str, "hello");
	ck_assert(!cmd->args[2].literal_plus);
	imap_parser_free(&p);
}
END_TEST

START_TEST(parse_read_line)
{
	struct imap_parser *p = make_parser(L_TINY, false);
	const struct imap_command *cmd;
	const char *line;
	size_t used, llen;
	const char *in = "a1 AUTHENTICATE PLAIN\r\ndGVzdA==\r\n*\na2 NOOP\r\n";
	size_t len = strlen(in), off = 0;

	ck_assert_int_eq(imap_parser_feed(p, in, len, &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_str_eq(cmd->name, "AUTHENTICATE");
	off += used;
	/* byte by byte */
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	while (r == IMAP_PARSE_NEED_MORE) {
		r = imap_parser_read_line(p, in + off, 1, &used, &line, &llen);
		off += used;
	}
	ck_assert_int_eq(r, IMAP_PARSE_DONE);
	ck_assert_str_eq(line, "dGVzdA==");
	ck_assert_uint_eq(llen, 8);
	ck_assert_int_eq(imap_parser_read_line(p, in + off, len - off, &used,
	    &line, &llen), IMAP_PARSE_DONE);
	ck_assert_str_eq(line, "*");
	off += used;
	ck_assert_int_eq(imap_parser_feed(p, in + off, len - off, &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_str_eq(cmd->tag, "a2");

	/* Too long (tiny max_line 40): error, the rest skipped, then ok. */
	const char *lng = "0123456789012345678901234567890123456789xyz\r\nok\r\n";
	off = 0;
	len = strlen(lng);
	ck_assert_int_eq(imap_parser_read_line(p, lng, len, &used, &line,
	    &llen), IMAP_PARSE_ERROR);
	ck_assert_int_eq(imap_parser_get_error(p)->code,
	    IMAP_PARSE_ERR_LINE_TOO_LONG);
	off += used;
	ck_assert_int_eq(imap_parser_read_line(p, lng + off, len - off, &used,
	    &line, &llen), IMAP_PARSE_DONE);
	ck_assert_str_eq(line, "ok");
	imap_parser_free(&p);
}
END_TEST

START_TEST(parse_arg_helpers)
{
	struct imap_parser *p = make_parser(L_DEFAULT, true);
	const struct imap_command *cmd;
	const char *in = "a X atom \"q s\" {3+}\r\nlit NIL 4294967295 "
	    "4294967296 9223372036854775807 9223372036854775808 (a b) 007\r\n";
	const char *s;
	size_t len, used;
	uint32_t n;
	uint64_t n64;
	const struct imap_arg *list;

	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_uint_eq(cmd->arg_count, 10);
	const struct imap_arg *a = cmd->args;
	ck_assert(imap_arg_get_atom(&a[0], &s));
	ck_assert_str_eq(s, "atom");
	ck_assert(!imap_arg_get_string(&a[0], &s, &len));
	ck_assert(imap_arg_get_astring(&a[0], &s, &len));
	ck_assert(imap_arg_get_string(&a[1], &s, &len));
	ck_assert_str_eq(s, "q s");
	ck_assert(!imap_arg_get_atom(&a[1], &s));
	ck_assert(imap_arg_get_string(&a[2], &s, &len));
	ck_assert_str_eq(s, "lit");
	ck_assert(imap_arg_get_nstring(&a[3], &s, &len));
	ck_assert_ptr_null(s);
	ck_assert(imap_arg_get_astring(&a[3], &s, &len));
	ck_assert_str_eq(s, "NIL");
	ck_assert(!imap_arg_get_atom(&a[3], &s));
	ck_assert(imap_arg_get_number(&a[4], &n));
	ck_assert_uint_eq(n, 4294967295u);
	ck_assert(!imap_arg_get_number(&a[5], &n));
	ck_assert(imap_arg_get_number64(&a[6], &n64));
	ck_assert(n64 == 9223372036854775807ull);
	ck_assert(!imap_arg_get_number64(&a[7], &n64));
	ck_assert(imap_arg_get_list(&a[8], &list, &len));
	ck_assert_uint_eq(len, 2);
	ck_assert(imap_arg_atom_equals(&list[1], "B"));
	ck_assert(!imap_arg_get_astring(&a[8], &s, &len));
	ck_assert(imap_arg_get_number(&a[9], &n));
	ck_assert_uint_eq(n, 7);
	ck_assert(!imap_arg_get_atom(NULL, &s));
	imap_parser_free(&p);
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite *s = suite_create("imap_parse");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, parse_table_every_split, 0,
	    (int)N_ELEMENTS(cases));
	tcase_add_test(tc, parse_table_one_stream);
	tcase_add_test(tc, parse_100000_nested_parens);
	tcase_add_test(tc, parse_thousands_of_small_literals);
	tcase_add_test(tc, parse_big_literal_in_small_chunks);
	tcase_add_test(tc, parse_append_streams_to_sink);
	tcase_add_test(tc, parse_sink_only_append_message);
	tcase_add_test(tc, parse_sink_refusals);
	tcase_add_test(tc, parse_sink_write_fails);
	tcase_add_test(tc, parse_sink_budget_and_free);
	tcase_add_test(tc, parse_preauth_command_total_bounded);
	tcase_add_test(tc, parse_preauth_password_wiped);
	tcase_add_test(tc, parse_reset_discards_partial_input);
	tcase_add_test(tc, parse_fatal_is_sticky);
	tcase_add_test(tc, parse_continuation_points);
	tcase_add_test(tc, parse_read_line);
	tcase_add_test(tc, parse_arg_helpers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(parse_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
