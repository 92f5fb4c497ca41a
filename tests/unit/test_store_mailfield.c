/*
 * Check suite for the header-field parsers behind the message parser:
 * RFC 5322 addresses, dates (with the obsolete forms), RFC 2047 encoded
 * words, Content-Type parameters with RFC 2231, transfer decodings, case
 * folding and the IMAP string rules. Table-driven.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "store/mail-address.h"
#include "store/mail-charset.h"
#include "store/mail-date.h"
#include "store/mail-decode.h"
#include "store/mail-header.h"
#include "store/mail-render.h"
#include "store/mail-rfc2047.h"
#include "store/mail-search.h"
#include "strbuf.h"
#include "utf8.h"
#include "xmalloc.h"

static const struct {
	const char *in;
	const char *want;	/* rendered as in ENVELOPE */
} address_cases[] = {
	{ "", "NIL" },
	{ "  ,  , ", "NIL" },
	{ "a@b.c", "((NIL NIL \"a\" \"b.c\"))" },
	{ "John Smith <js@example.com>",
	  "((\"John Smith\" NIL \"js\" \"example.com\"))" },
	{ "\"Smith, John\" <js@example.com>, x@y",
	  "((\"Smith, John\" NIL \"js\" \"example.com\")"
	  "(NIL NIL \"x\" \"y\"))" },
	{ "js@example.com (John Smith)",
	  "((\"John Smith\" NIL \"js\" \"example.com\"))" },
	{ "John (middle) Smith <js@example.com>",
	  "((\"John Smith\" NIL \"js\" \"example.com\"))" },
	{ "\"a b\"@example.com", "((NIL NIL \"a b\" \"example.com\"))" },
	{ "\"a\\\"b\"@example.com", "((NIL NIL \"a\\\"b\" \"example.com\"))" },
	{ "<@r1.example,@r2.example:u@h.example>",
	  "((NIL \"@r1.example,@r2.example\" \"u\" \"h.example\"))" },
	{ "Group: a@b, c@d;",
	  "((NIL NIL \"Group\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")"
	  "(NIL NIL NIL NIL))" },
	{ "Empty:;", "((NIL NIL \"Empty\" NIL)(NIL NIL NIL NIL))" },
	{ "Unclosed: a@b", "((NIL NIL \"Unclosed\" NIL)(NIL NIL \"a\" \"b\")"
	  "(NIL NIL NIL NIL))" },
	{ "localonly", "((NIL NIL \"localonly\" \"MISSING_DOMAIN\"))" },
	{ "Name <localonly>", "((\"Name\" NIL \"localonly\" "
	  "\"MISSING_DOMAIN\"))" },
	{ "@nolocal.example", "((NIL NIL \"MISSING_MAILBOX\" "
	  "\"nolocal.example\"))" },
	{ "<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
	{ "u@[192.0.2.1]", "((NIL NIL \"u\" \"[192.0.2.1]\"))" },
	{ "first.last@sub . example . com",
	  "((NIL NIL \"first.last\" \"sub.example.com\"))" },
	{ "=?utf-8?q?J=C3=B6rg?= <j@x>",
	  "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\"))" },
	{ "<a@b> trailing garbage, c@d",
	  "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))" },
	{ "\"unterminated <a@b>", "((NIL NIL \"unterminated <a@b>\" "
	  "\"MISSING_DOMAIN\"))" },
	{ "(unterminated comment a@b", "NIL" },
	{ ";;;:::,,,", "((NIL NIL \"\" NIL)(NIL NIL NIL NIL))" },
	/* Regression (fuzz): empty quoted strings in a phrase. */
	{ "\"\" <a@b>", "((NIL NIL \"a\" \"b\"))" },
	{ "\"\"\"\"x@y", "((NIL NIL \"x\" \"y\"))" },
};

START_TEST(address_table)
{
	struct arena *a = arena_new(0);
	struct mail_address_list list;
	struct mail_envelope env;
	struct strbuf sb = STRBUF_INIT;
	const char *in = address_cases[_i].in;
	char *want;

	memset(&env, 0, sizeof(env));
	mail_address_parse(a, in, strlen(in), MAIL_ADDRESSES_MAX, &list);
	env.to = list;
	mail_render_envelope(&sb, &env);
	want = xasprintf("(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)",
	    address_cases[_i].want);
	ck_assert_msg(strcmp(sb.data, want) == 0, "'%s'\n got %s\nwant %s", in,
	    sb.data, want);
	free(want);
	strbuf_free(&sb);
	arena_free(&a);
}
END_TEST

START_TEST(address_limit_keeps_groups_balanced)
{
	struct arena *a = arena_new(0);
	struct mail_address_list list;
	const char *in = "G: a@b, c@d, e@f, g@h;";

	for (uint32_t max = 0; max <= 6; max++) {
		int depth = 0;

		mail_address_parse(a, in, strlen(in), max, &list);
		ck_assert_uint_le(list.count, max);
		for (uint32_t i = 0; i < list.count; i++) {
			if (list.addrs[i].domain == NULL) {
				depth += list.addrs[i].mailbox != NULL ? 1 : -1;
				ck_assert(depth == 0 || depth == 1);
			}
		}
		ck_assert_int_eq(depth, 0);
	}
	arena_free(&a);
}
END_TEST

static const struct {
	const char *in;
	int ok;
	int64_t t;
	int32_t tz;
} date_cases[] = {
	{ "Mon, 23 Nov 2026 09:14:55 +0100", 1, 1795421695, 60 },
	{ "23 Nov 2026 09:14:55 +0100", 1, 1795421695, 60 },
	{ "Mon, 23 Nov 2026 09:14 +0100", 1, 1795421640, 60 },
	{ "Mon, 23 Nov 26 08:14:55 GMT", 1, 1795421695, 0 },
	{ "Mon, 23 Nov 126 08:14:55 UT", 1, 1795421695, 0 },
	{ "Sun, 23 Nov 69 08:14:55 +0000", 1, -3339905, 0 },
	{ "Mon, 23 Nov 2026 03:14:55 EST", 1, 1795421695, -300 },
	{ "Mon, 23 Nov 2026 00:14:55 PST", 1, 1795421695, -480 },
	{ "Mon, 23 Nov 2026 01:14:55 PDT", 1, 1795421695, -420 },
	{ "Mon, 23 Nov 2026 08:14:55 Z", 1, 1795421695, 0 },
	{ "Mon, 23 Nov 2026 08:14:55 A", 1, 1795421695, 0 },
	{ "Mon, 23 Nov 2026 08:14:55", 1, 1795421695, 0 },
	{ "  Mon ,  23  nov  2026  09:14:55  +0100  (CET)", 1, 1795421695,
	  60 },
	{ "Mon, 23 November 2026 09:14:55 +0100", 1, 1795421695, 60 },
	{ "Mon Nov 23 08:14:55 2026", 1, 1795421695, 0 },
	{ "23-Nov-2026 09:14:55 +0100", 1, 1795421695, 60 },
	{ "Mon, 23 Nov 2026 08:14:55.123 +0000", 1, 1795421695, 0 },
	{ "Mon, 23 Nov 2026 09:14:55 GMT+0100", 1, 1795421695, 60 },
	{ "Mon, 32 Nov 2026 09:14:55 +0100", 0, 0, 0 },
	{ "Mon, 23 Foo 2026 09:14:55 +0100", 0, 0, 0 },
	{ "Mon, 23 Nov 2026 25:14:55 +0100", 0, 0, 0 },
	{ "yesterday", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ "(((((", 0, 0, 0 },
	/* nested comments, a quoted ')' inside one */
	{ "Mon, (x (y) \\) z) 23 Nov 2026 09:14:55 +0100 (CET (a))", 1,
	  1795421695, 60 },
	{ "Mon, 23 Nov 2026 09:14:55 +0100 (unterminated (", 1, 1795421695,
	  60 },
};

START_TEST(date_table)
{
	int64_t t = -1;
	int32_t tz = -1;
	const char *in = date_cases[_i].in;
	int rc = mail_date_parse(in, strlen(in), &t, &tz);

	if (!date_cases[_i].ok) {
		ck_assert_msg(rc < 0, "'%s' accepted", in);
		return;
	}
	ck_assert_msg(rc == 0, "'%s' refused", in);
	ck_assert_msg(t == date_cases[_i].t, "'%s': %lld", in, (long long)t);
	ck_assert_int_eq(tz, date_cases[_i].tz);
}
END_TEST

START_TEST(received_date)
{
	const char *r = "from a (b [192.0.2.1]) by c; with x;\r\n\t"
	    "Mon, 23 Nov 2026 09:15:02 +0100 (CET)";
	int64_t t;
	int32_t tz;

	ck_assert_int_eq(mail_date_parse_received(r, strlen(r), &t, &tz), 0);
	ck_assert_int_eq(t, 1795421702);
	ck_assert_int_lt(mail_date_parse_received("from a by b", 11, &t, &tz),
	    0);
}
END_TEST

static const struct {
	const char *in;
	const char *want;
} rfc2047_cases[] = {
	{ "plain text", "plain text" },
	{ "=?utf-8?q?caf=C3=A9?=", "caf\xC3\xA9" },
	{ "=?UTF-8?B?Y2Fmw6k=?=", "caf\xC3\xA9" },
	{ "=?iso-8859-1?q?a_b?= =?iso-8859-1?q?_c?=", "a b c" },
	{ "=?iso-8859-1?q?a?=  \r\n =?iso-8859-1?q?b?=", "ab" },
	{ "x =?iso-8859-1?q?a?= y", "x a y" },
	/* A UTF-8 character split over two words. */
	{ "=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "\xC3\xA9\xC3\xA9" },
	{ "=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "\xC3\xA9" },
	{ "=?utf-8*en?q?hi?=", "hi" },
	{ "=?x-unknown-charset?q?abc?= ok", "=?x-unknown-charset?q?abc?= ok" },
	{ "=?utf-8?x?bad encoding?=", "=?utf-8?x?bad encoding?=" },
	{ "=?utf-8?q?unterminated", "=?utf-8?q?unterminated" },
	{ "=?utf-8?b?!!!bm9pc2U=?=", "noise" },
	{ "=?koi8-r?b?8NLJ18XU?=", "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5"
	  "\xD1\x82" },
	{ "=?windows-1251?q?=CF=F0=E8?=", "\xD0\x9F\xD1\x80\xD0\xB8" },
	{ "=?iso-2022-jp?b?GyRCJEskWxsoQg==?=", "\xE3\x81\xAB\xE3\x81\xBB" },
	{ "=?shift_jis?b?grGC8Q==?=", "\xE3\x81\x93\xE3\x82\x93" },
	{ "raw latin1 caf\xe9", "raw latin1 caf\xC3\xA9" },
	{ "bad utf-8 =?utf-8?q?=FF?=", "bad utf-8 \xEF\xBF\xBD" },
	{ "", "" },
	{ "=?", "=?" },
	{ "=?utf-8?q?" "?=", "" },
};

START_TEST(rfc2047_table)
{
	struct strbuf sb = STRBUF_INIT;
	const char *in = rfc2047_cases[_i].in;

	mail_rfc2047_decode(in, strlen(in), &sb);
	ck_assert_msg(strcmp(strbuf_str(&sb), rfc2047_cases[_i].want) == 0,
	    "'%s' -> '%s'", in, strbuf_str(&sb));
	strbuf_free(&sb);
}
END_TEST

static const struct {
	const char *in;
	int rc;
	const char *want;	/* type/subtype then name=value; */
} ctype_cases[] = {
	{ "text/plain", 0, "text/plain" },
	{ "TEXT/Plain ; CHARSET=\"utf-8\"", 0, "TEXT/Plain CHARSET=utf-8;" },
	{ "text/plain; charset=utf-8 (comment); format=flowed", 0,
	  "text/plain charset=utf-8;format=flowed;" },
	{ "text / plain ;charset = utf-8", 0, "text/plain charset=utf-8;" },
	{ "application/x; name=\"a \\\"q\\\" b;c\"", 0,
	  "application/x name=a \"q\" b;c;" },
	{ "application/x; title*0=\"ab\"; title*1=cd; title*2=\"ef\"", 0,
	  "application/x title=abcdef;" },
	{ "application/x; title*1=cd; title*0=ab", 0,
	  "application/x title=abcd;" },
	{ "application/x; title*=us-ascii'en'a%20b", 0,
	  "application/x title*=us-ascii'en'a%20b;" },
	{ "application/x; t*0*=utf-8''%C3%A9; t*1=\"a b\"; t*2*=%41", 0,
	  "application/x t*=utf-8''%C3%A9a%20b%41;" },
	{ "application/x; t*1=only-one", 0, "application/x" },
	{ "application/x; a=1; a=2", 0, "application/x a=1;" },
	{ "application/x; ;;; =x; novalue; b=2", 0, "application/x b=2;" },
	{ "text", -1, "" },
	{ "/plain", -1, "" },
	{ "", -1, "" },
	{ "text/; charset=x", -1, " charset=x;" },
	{ "text/plain (a (b) \\) c); charset=x", 0, "text/plain charset=x;" },
};

START_TEST(content_type_table)
{
	struct arena *a = arena_new(0);
	const char *type, *subtype;
	struct mail_param *params;
	uint32_t n;
	struct strbuf sb = STRBUF_INIT;
	const char *in = ctype_cases[_i].in;
	int rc = mail_header_parse_content_type(a, in, strlen(in), &type,
	    &subtype, &params, &n);

	ck_assert_int_eq(rc, ctype_cases[_i].rc);
	if (rc == 0)
		strbuf_appendf(&sb, "%s/%s", type, subtype);
	for (uint32_t i = 0; i < n; i++)
		strbuf_appendf(&sb, "%s%s=%s;", i == 0 ? " " : "",
		    params[i].name, params[i].value);
	ck_assert_msg(strcmp(strbuf_str(&sb), ctype_cases[_i].want) == 0,
	    "'%s' -> '%s'", in, strbuf_str(&sb));
	strbuf_free(&sb);
	arena_free(&a);
}
END_TEST

START_TEST(param_utf8)
{
	static const struct {
		const char *name, *value, *want;
	} cases[] = {
		{ "filename*", "utf-8''%C3%A9t%C3%A9.pdf", "\xC3\xA9t\xC3\xA9.pdf" },
		{ "filename*", "iso-8859-1'fr'%E9t%E9", "\xC3\xA9t\xC3\xA9" },
		{ "filename*", "''plain", "plain" },
		{ "filename*", "no-quotes%41", "no-quotesA" },
		{ "filename", "=?utf-8?q?=C3=A9?=.txt", "\xC3\xA9.txt" },
		{ "filename", "plain.txt", "plain.txt" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct mail_param p = { cases[i].name, cases[i].value };
		struct strbuf sb = STRBUF_INIT;

		mail_param_value_utf8(&p, &sb);
		ck_assert_str_eq(strbuf_str(&sb), cases[i].want);
		strbuf_free(&sb);
	}
}
END_TEST

START_TEST(transfer_decoders)
{
	struct strbuf sb = STRBUF_INIT;

	mail_decode_base64("aGVs\r\nbG8g\r\nd29y\r\nbGQ=", 22, &sb);
	ck_assert_str_eq(sb.data, "hello world");
	strbuf_reset(&sb);
	mail_decode_base64("aGVsbG8", 7, &sb);
	ck_assert_str_eq(sb.data, "hello");
	strbuf_reset(&sb);
	mail_decode_qp("a=3Db=\r\nc  \r\nd=ZZ=4", 19, &sb);
	ck_assert_str_eq(sb.data, "a=bc\r\nd=ZZ=4");
	strbuf_reset(&sb);
	mail_decode_q("a_b=5Fc", 7, &sb);
	ck_assert_str_eq(sb.data, "a b_c");
	strbuf_reset(&sb);
	mail_decode_percent("%41%4g%", 7, &sb);
	ck_assert_str_eq(sb.data, "A%4g%");
	strbuf_free(&sb);
}
END_TEST

/* The pieces of s that the UTF-8 functions treat one by one: an ASCII
 * byte, a valid multi-byte character, or one invalid byte. */
static size_t
piece_len(const unsigned char *p, size_t len)
{
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	n = utf8_decode(p, len, &cp);
	return n == 0 ? 1 : n;
}

/*
 * Folding, sanitizing and validating eight ASCII bytes at a time give what
 * the same functions give one piece at a time (too short for the wide
 * path): random mixes of every ASCII byte (the letters' neighbours '@',
 * '[', '`', '{' most of all), multi-byte characters and invalid bytes,
 * at every alignment.
 */
START_TEST(utf8_wide_paths_match_bytewise)
{
	static const char *const pool[] = {
		"@", "A", "Z", "[", "`", "a", "z", "{", "M", "q", " ", "\x7f",
		"\x01", "\xC3\x89", "\xCE\xA3", "\xE6\x97\xA5",
		"\xD0\x96", "\xFF", "\xC3", "\x80", "\xE6\x97",
	};
	uint32_t seed = 7;
	struct strbuf in = STRBUF_INIT, wide = STRBUF_INIT, ref = STRBUF_INIT;

	for (unsigned round = 0; round < 3000; round++) {
		size_t off;
		const unsigned char *p;
		size_t len;
		bool valid = true;

		strbuf_reset(&in);
		seed = seed * 1664525u + 1013904223u;
		off = seed >> 29;	/* misaligned starts */
		for (size_t k = 0; k < off; k++)
			strbuf_appendc(&in, 'x');
		seed = seed * 1664525u + 1013904223u;
		for (unsigned n = (seed >> 24) % 90; n > 0; n--) {
			seed = seed * 1664525u + 1013904223u;
			/* mostly ASCII letters: long runs for the wide path */
			strbuf_appends(&in, pool[(seed >> 16) % 8 == 0 ?
			    (seed >> 8) % N_ELEMENTS(pool) : (seed >> 8) % 12]);
		}
		p = (const unsigned char *)in.data + off;
		len = in.len - off;
		strbuf_reset(&wide);
		strbuf_reset(&ref);
		mail_utf8_casefold((const char *)p, len, &wide);
		for (size_t i = 0; i < len; i += piece_len(p + i, len - i))
			mail_utf8_casefold((const char *)p + i,
			    piece_len(p + i, len - i), &ref);
		ck_assert_uint_eq(wide.len, ref.len);
		ck_assert(memcmp(wide.data, ref.data, ref.len) == 0);
		strbuf_reset(&wide);
		strbuf_reset(&ref);
		mail_utf8_sanitize((const char *)p, len, &wide);
		for (size_t i = 0; i < len; i += piece_len(p + i, len - i)) {
			size_t n = piece_len(p + i, len - i);

			mail_utf8_sanitize((const char *)p + i, n, &ref);
			valid = valid && mail_utf8_valid((const char *)p + i,
			    n);
		}
		ck_assert_uint_eq(wide.len, ref.len);
		ck_assert(memcmp(wide.data, ref.data, ref.len) == 0);
		ck_assert(mail_utf8_valid((const char *)p, len) == valid);
	}
	strbuf_free(&in);
	strbuf_free(&wide);
	strbuf_free(&ref);
}
END_TEST

/*
 * Quoted-printable and Q decoding of random token strings against what
 * each token means (long plain runs for the eight-byte path, with an
 * escape, a soft line break, trailing or inner blanks, '_' and a bad
 * escape at every distance from them).
 */
START_TEST(qp_random_tokens)
{
	static const struct {
		const char *in, *qp, *q;	/* NULL: not in that test */
	} tok[] = {
		{ "plain text words", "plain text words", NULL },
		{ "abcdefghijklmnopq", "abcdefghijklmnopq", "abcdefghijklmnopq" },
		{ "x", "x", "x" },
		{ "=3D", "=", "=" },
		{ "=c3=A9", "\xC3\xA9", "\xC3\xA9" },
		{ "=\r\n", "", NULL },
		{ "=  \r\n", "", NULL },
		{ " \t \r\n", "\r\n", NULL },
		{ "\t\r\n", "\r\n", NULL },
		{ "  \r\n", "\r\n", NULL },
		{ "text   more", "text   more", "text   more" },
		{ "\r\n", "\r\n", NULL },
		{ "a\tb", "a\tb", NULL },
		{ "_", NULL, " " },
		{ "=G1", "=G1", "=G1" },
		{ "with_under", "with_under", NULL },
	};
	uint32_t seed = 11;
	struct strbuf in = STRBUF_INIT, want = STRBUF_INIT, got = STRBUF_INIT;

	for (unsigned round = 0; round < 4000; round++) {
		bool q = round % 2 == 1;

		strbuf_reset(&in);
		strbuf_reset(&want);
		seed = seed * 1664525u + 1013904223u;
		for (unsigned n = (seed >> 24) % 20; n > 0; n--) {
			size_t t;

			seed = seed * 1664525u + 1013904223u;
			t = (seed >> 8) % N_ELEMENTS(tok);
			if ((q ? tok[t].q : tok[t].qp) == NULL)
				continue;
			strbuf_appends(&in, tok[t].in);
			strbuf_appends(&want, q ? tok[t].q : tok[t].qp);
		}
		/* a final text token: trailing blanks end a line only
		   before a line end, and the input's end is one */
		strbuf_appends(&in, ".");
		strbuf_appends(&want, ".");
		strbuf_reset(&got);
		if (q)
			mail_decode_q(in.data, in.len, &got);
		else
			mail_decode_qp(in.data, in.len, &got);
		ck_assert_msg(got.len == want.len &&
		    memcmp(got.data, want.data, want.len) == 0,
		    "%s: '%s' gave '%s', want '%s'", q ? "Q" : "QP", in.data,
		    got.data, want.data);
	}
	strbuf_free(&in);
	strbuf_free(&want);
	strbuf_free(&got);
}
END_TEST

START_TEST(casefold_and_match)
{
	struct strbuf sb = STRBUF_INIT;

	const char *in = "ABC \xC3\x89T\xC3\x89 \xC4\x8C \xCE\xA3 "
	    "\xD0\x96 \xC3\x97 \xFF";

	mail_utf8_casefold(in, strlen(in), &sb);
	ck_assert_str_eq(sb.data, "abc \xC3\xA9t\xC3\xA9 \xC4\x8D \xCF\x83 "
	    "\xD0\xB6 \xC3\x97 \xFF");
	ck_assert(mail_search_match("Hello World", 11, "WORLD", 5));
	ck_assert(mail_search_match("Hello World", 11, "", 0));
	ck_assert(!mail_search_match("Hello World", 11, "worlds", 6));
	ck_assert(mail_search_match("\xC3\x89T\xC3\x89", 6, "\xC3\xA9t", 3));
	ck_assert(mail_search_contains_folded("GR\xC3\x9C\xC3\x9F", 6,
	    "gr\xC3\xBC", 4));
	strbuf_free(&sb);
}
END_TEST

START_TEST(charset_conversion)
{
	struct strbuf sb = STRBUF_INIT;

	ck_assert_int_eq(mail_charset_to_utf8("x-no-such-charset", "a", 1,
	    &sb), -1);
	ck_assert_uint_eq(sb.len, 0);
	ck_assert_int_eq(mail_charset_to_utf8("us-ascii", "caf\xe9", 4, &sb),
	    0);
	ck_assert_str_eq(sb.data, "caf\xC3\xA9");
	strbuf_reset(&sb);
	/* Invalid bytes in the middle of a stateless charset. */
	ck_assert_int_eq(mail_charset_to_utf8("shift_jis", "a\x82\xff" "b", 4,
	    &sb), 0);
	ck_assert_ptr_nonnull(strstr(sb.data, "\xEF\xBF\xBD"));
	ck_assert_int_eq(sb.data[sb.len - 1], 'b');
	strbuf_reset(&sb);
	ck_assert_int_eq(mail_charset_to_utf8("utf-8", "a\xC3", 2, &sb), 0);
	ck_assert_str_eq(sb.data, "a\xEF\xBF\xBD");
	ck_assert(mail_utf8_valid("\xE2\x82\xAC", 3));
	ck_assert(!mail_utf8_valid("\xED\xA0\x80", 3));	/* surrogate */
	ck_assert(!mail_utf8_valid("\xC0\x80", 2));	/* overlong */
	strbuf_free(&sb);
}
END_TEST

START_TEST(imap_strings)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} cases[] = {
		{ "", 0, "\"\"" },
		{ "plain", 5, "\"plain\"" },
		{ "q\"b\\", 4, "\"q\\\"b\\\\\"" },
		{ "caf\xC3\xA9", 5, "{5}\r\ncaf\xC3\xA9" },
		{ "a\r\nb", 4, "{4}\r\na\r\nb" },
		{ "a\0b", 3, "{3}\r\na b" },
	};
	struct strbuf sb = STRBUF_INIT;
	char *big = xmalloc(MAIL_RENDER_QUOTED_MAX + 1);

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		strbuf_reset(&sb);
		mail_render_imap_string(&sb, cases[i].in, cases[i].len);
		ck_assert_str_eq(sb.data, cases[i].want);
	}
	strbuf_reset(&sb);
	mail_render_imap_nstring(&sb, NULL);
	ck_assert_str_eq(sb.data, "NIL");
	memset(big, 'x', MAIL_RENDER_QUOTED_MAX + 1);
	strbuf_reset(&sb);
	mail_render_imap_string(&sb, big, MAIL_RENDER_QUOTED_MAX + 1);
	ck_assert(strncmp(sb.data, "{1025}\r\nxx", 10) == 0);
	free(big);
	strbuf_free(&sb);
}
END_TEST

static Suite *
mailfield_suite(void)
{
	Suite *s = suite_create("store_mailfield");
	TCase *tc = tcase_create("fields");

	tcase_add_loop_test(tc, address_table, 0, N_ELEMENTS(address_cases));
	tcase_add_test(tc, address_limit_keeps_groups_balanced);
	tcase_add_loop_test(tc, date_table, 0, N_ELEMENTS(date_cases));
	tcase_add_test(tc, received_date);
	tcase_add_loop_test(tc, rfc2047_table, 0, N_ELEMENTS(rfc2047_cases));
	tcase_add_loop_test(tc, content_type_table, 0,
	    N_ELEMENTS(ctype_cases));
	tcase_add_test(tc, param_utf8);
	tcase_add_test(tc, transfer_decoders);
	tcase_add_test(tc, casefold_and_match);
	tcase_add_test(tc, utf8_wide_paths_match_bytewise);
	tcase_add_test(tc, qp_random_tokens);
	tcase_add_test(tc, charset_conversion);
	tcase_add_test(tc, imap_strings);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(mailfield_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
