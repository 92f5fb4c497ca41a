/* Check suite for imap-frontend/imap-format: strings, flags, status lines
 * and dates. Output that a client must parse back is fed to our own
 * command parser to prove it round-trips. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-format.h"
#include "imap-frontend/imap-parse.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Formats s with fn, wraps it into a command and parses it back. */
static void
roundtrip(void (*fn)(struct strbuf *, const char *, size_t), const char *s,
    size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	size_t used, off = 0;
	const char *str;
	size_t slen;
	enum imap_parse_result r;

	imap_parser_set_authenticated(p, true);
	strbuf_appends(&sb, "t X ");
	fn(&sb, s, len);
	strbuf_appends(&sb, "\r\n");
	do {
		r = imap_parser_feed(p, sb.data + off, sb.len - off, &used, &cmd);
		off += used;
	} while (r == IMAP_PARSE_NEED_CONTINUATION);
	ck_assert_int_eq(r, IMAP_PARSE_DONE);
	ck_assert_uint_eq(cmd->arg_count, 1);
	ck_assert(imap_arg_get_astring(&cmd->args[0], &str, &slen));
	ck_assert_uint_eq(slen, len);
	ck_assert(memcmp(str, s, len) == 0);
	imap_parser_free(&p);
	strbuf_free(&sb);
}

static const struct {
	const char *in;
	size_t len;
	const char *string;	/* imap_format_string */
	const char *astring;	/* imap_format_astring */
} str_cases[] = {
	{ "abc", 3, "\"abc\"", "abc" },
	{ "", 0, "\"\"", "\"\"" },
	{ "a b", 3, "\"a b\"", "\"a b\"" },
	{ "a\"b\\c", 5, "\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\"" },
	{ "NIL", 3, "\"NIL\"", "\"NIL\"" },
	{ "nil", 3, "\"nil\"", "\"nil\"" },
	{ "a]b", 3, "\"a]b\"", "a]b" },
	{ "a*", 2, "\"a*\"", "\"a*\"" },
	{ "a(b", 3, "\"a(b\"", "\"a(b\"" },
	{ "a{b", 3, "\"a{b\"", "\"a{b\"" },
	{ "a\r\nb", 4, "{4}\r\na\r\nb", "{4}\r\na\r\nb" },
	{ "caf\xc3\xa9", 5, "{5}\r\ncaf\xc3\xa9", "{5}\r\ncaf\xc3\xa9" },
	{ "a\tb", 3, "\"a\tb\"", "\"a\tb\"" },
};

static void
fmt_astring(struct strbuf *sb, const char *s, size_t len)
{
	imap_format_astring(sb, s, len);
}

static void
fmt_string(struct strbuf *sb, const char *s, size_t len)
{
	imap_format_string(sb, s, len);
}

START_TEST(format_strings)
{
	struct strbuf sb = STRBUF_INIT;
	const char *in = str_cases[_i].in;
	size_t len = str_cases[_i].len;
	const char *exp = str_cases[_i].string;

	imap_format_string(&sb, in, len);
	ck_assert_str_eq(sb.data, exp);
	strbuf_reset(&sb);
	imap_format_astring(&sb, in, len);
	ck_assert_str_eq(sb.data, str_cases[_i].astring);
	roundtrip(fmt_string, in, len);
	roundtrip(fmt_astring, in, len);
	strbuf_free(&sb);
}
END_TEST

/* Regression (issue 13 item 16): a literal is CHAR8, no NUL; stored NULs
 * go out as 0x80, one for one, and nothing else changes. */
START_TEST(format_literal_nul_bytes)
{
	static const char in[] = "a\0b\0\0\x80\xff\r\n\0";
	static const char want[] = "a\x80" "b\x80\x80\x80\xff\r\n\x80";
	struct strbuf sb = STRBUF_INIT;
	char out[sizeof(in)];

	imap_literal_copy(out, in, sizeof(in) - 1);
	ck_assert_mem_eq(out, want, sizeof(in) - 1);
	imap_literal_bytes(&sb, in, sizeof(in) - 1);
	ck_assert_uint_eq(sb.len, sizeof(in) - 1);
	ck_assert_mem_eq(sb.data, want, sb.len);
	strbuf_reset(&sb);
	imap_format_literal(&sb, in, sizeof(in) - 1);
	ck_assert_mem_eq(sb.data, "{10}\r\n", 6);
	ck_assert_mem_eq(sb.data + 6, want, sizeof(in) - 1);
	strbuf_reset(&sb);
	/* a string with a NUL can only be a literal: the same rule */
	imap_format_string(&sb, in, 3);
	ck_assert_mem_eq(sb.data, "{3}\r\na\x80" "b", 8);
	strbuf_reset(&sb);
	imap_literal_bytes(&sb, "plain", 5);
	ck_assert_str_eq(sb.data, "plain");
	strbuf_free(&sb);
}
END_TEST

START_TEST(format_string_length_switch)
{
	struct strbuf sb = STRBUF_INIT;
	char *s = xmalloc(IMAP_FORMAT_MAX_QUOTED + 1);

	memset(s, 'x', IMAP_FORMAT_MAX_QUOTED + 1);
	imap_format_string(&sb, s, IMAP_FORMAT_MAX_QUOTED);
	ck_assert_int_eq(sb.data[0], '"');
	ck_assert_uint_eq(sb.len, IMAP_FORMAT_MAX_QUOTED + 2);
	strbuf_reset(&sb);
	imap_format_string(&sb, s, IMAP_FORMAT_MAX_QUOTED + 1);
	ck_assert(strncmp(sb.data, "{1025}\r\n", 8) == 0);
	roundtrip(fmt_string, s, IMAP_FORMAT_MAX_QUOTED + 1);
	strbuf_reset(&sb);
	imap_format_nstring(&sb, NULL, 0);
	strbuf_appendc(&sb, ' ');
	imap_format_nstring(&sb, "", 0);
	strbuf_appendc(&sb, ' ');
	imap_format_strz(&sb, "x");
	strbuf_appendc(&sb, ' ');
	imap_format_literal(&sb, "ab", 2);
	ck_assert_str_eq(sb.data, "NIL \"\" \"x\" {2}\r\nab");
	/* NUL forces a literal, which carries it as 0x80 (CHAR8). */
	strbuf_reset(&sb);
	imap_format_string(&sb, "a\0b", 3);
	ck_assert_uint_eq(sb.len, 8);
	ck_assert(memcmp(sb.data, "{3}\r\na\x80" "b", 8) == 0);
	ck_assert(imap_is_atom("abc", 3));
	ck_assert(!imap_is_atom("", 0));
	ck_assert(!imap_is_atom("a b", 3));
	ck_assert(!imap_is_atom("a]", 2));
	ck_assert(!imap_is_atom("\xc3\xa9", 2));
	free(s);
	strbuf_free(&sb);
}
END_TEST

START_TEST(format_flags)
{
	struct strbuf sb = STRBUF_INIT;
	const char *kw[] = { "$Junk", "work" };
	unsigned int flag;
	bool is_kw;
	const char *error;

	imap_format_flags(&sb, 0, NULL, 0);
	ck_assert_str_eq(sb.data, "()");
	strbuf_reset(&sb);
	imap_format_flags(&sb, IMAP_FLAG_DRAFT | IMAP_FLAG_SEEN |
	    IMAP_FLAG_RECENT | IMAP_FLAG_DELETED | IMAP_FLAG_FLAGGED |
	    IMAP_FLAG_ANSWERED, kw, 2);
	ck_assert_str_eq(sb.data, "(\\Seen \\Answered \\Flagged \\Deleted "
	    "\\Draft \\Recent $Junk work)");
	strbuf_reset(&sb);
	imap_format_flags(&sb, 0, kw, 1);
	ck_assert_str_eq(sb.data, "($Junk)");
	ck_assert_str_eq(imap_flag_name(IMAP_FLAG_SEEN), "\\Seen");
	ck_assert_ptr_null(imap_flag_name(IMAP_FLAG_SEEN | IMAP_FLAG_DRAFT));
	ck_assert_ptr_null(imap_flag_name(0));

	ck_assert_int_eq(imap_flag_parse("\\seen", 5, &flag, &is_kw, &error), 0);
	ck_assert_uint_eq(flag, IMAP_FLAG_SEEN);
	ck_assert(!is_kw);
	ck_assert_int_eq(imap_flag_parse("\\DRAFT", 6, &flag, &is_kw, &error),
	    0);
	ck_assert_uint_eq(flag, IMAP_FLAG_DRAFT);
	ck_assert_int_eq(imap_flag_parse("$Forwarded", 10, &flag, &is_kw,
	    &error), 0);
	ck_assert(is_kw);
	ck_assert_int_eq(imap_flag_parse("\\Recent", 7, &flag, &is_kw, &error),
	    -1);
	ck_assert_int_eq(imap_flag_parse("\\Foo", 4, &flag, &is_kw, &error), -1);
	ck_assert_int_eq(imap_flag_parse("\\", 1, &flag, &is_kw, &error), -1);
	ck_assert_int_eq(imap_flag_parse("", 0, &flag, &is_kw, &error), -1);
	ck_assert_int_eq(imap_flag_parse("a b", 3, &flag, &is_kw, &error), -1);
	ck_assert_int_eq(imap_flag_parse("a]", 2, &flag, &is_kw, &error), -1);
	ck_assert_int_eq(imap_flag_parse("\xc3\xa9", 2, &flag, &is_kw, &error),
	    -1);
	strbuf_free(&sb);
}
END_TEST

START_TEST(format_status_lines)
{
	struct strbuf sb = STRBUF_INIT;

	imap_format_status(&sb, "a1", "OK", NULL, "LOGIN completed");
	ck_assert_str_eq(sb.data, "a1 OK LOGIN completed\r\n");
	strbuf_reset(&sb);
	imap_format_status(&sb, NULL, "BAD", "", "Bad\r\na2 OK injected\0");
	ck_assert_str_eq(sb.data, "* BAD Bad  a2 OK injected\r\n");
	strbuf_reset(&sb);
	imap_format_status(&sb, "a1", "NO", "TRYCREATE", "No such mailbox");
	ck_assert_str_eq(sb.data, "a1 NO [TRYCREATE] No such mailbox\r\n");
	strbuf_reset(&sb);
	imap_format_status(&sb, "a1", "OK", NULL, "");
	ck_assert_str_eq(sb.data, "a1 OK OK\r\n");
	strbuf_reset(&sb);
	imap_format_statusf(&sb, "t", "OK", "COPYUID 7 1:2 5:6", "%s %d",
	    "Copied", 2);
	ck_assert_str_eq(sb.data, "t OK [COPYUID 7 1:2 5:6] Copied 2\r\n");
	strbuf_reset(&sb);
	imap_format_untagged(&sb, "%u EXISTS", 23u);
	ck_assert_str_eq(sb.data, "* 23 EXISTS\r\n");
	strbuf_reset(&sb);
	imap_format_continuation(&sb, NULL);
	imap_format_continuation(&sb, "go\nahead");
	ck_assert_str_eq(sb.data, "+ OK\r\n+ go ahead\r\n");
	strbuf_free(&sb);
}
END_TEST

/*
 * Regression (review): a hostile Date: header ("31 Dec 9999 23:59 -9959",
 * "EST-9959") gave INTERNALDATE a 5-digit year or zone, which breaks the
 * date-time grammar of the FETCH response a client must parse.
 */
START_TEST(format_datetime_stays_in_grammar)
{
	static const struct {
		int64_t t;
		int tz;
		const char *want;
	} cases[] = {
		{ 253402300799LL, 5999, "\"31-Dec-9999 23:59:59 +9959\"" },
		{ 253402300799LL + 86400, 0, "\"31-Dec-9999 23:59:59 +0000\"" },
		{ 0, -6479, "\"01-Jan-1970 00:00:00 +0000\"" },
		{ 0, 6000, "\"01-Jan-1970 00:00:00 +0000\"" },
		{ INT64_MIN, 0, "\"01-Jan-0000 00:00:00 +0000\"" },
		{ INT64_MAX, -5999, "\"27-Dec-9999 20:00:59 -9959\"" },
		{ 0, INT32_MIN, "\"01-Jan-1970 00:00:00 +0000\"" },
	};
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		strbuf_reset(&sb);
		imap_format_datetime(&sb, cases[i].t, cases[i].tz);
		ck_assert_str_eq(sb.data, cases[i].want);
		ck_assert_uint_eq(sb.len, 28);
	}
	strbuf_free(&sb);
}
END_TEST

START_TEST(format_dates)
{
	struct strbuf sb = STRBUF_INIT;
	int64_t t;
	int tz;

	imap_format_datetime(&sb, 837596665, -420);
	ck_assert_str_eq(sb.data, "\"17-Jul-1996 02:44:25 -0700\"");
	strbuf_reset(&sb);
	imap_format_datetime(&sb, 0, 0);
	ck_assert_str_eq(sb.data, "\"01-Jan-1970 00:00:00 +0000\"");
	strbuf_reset(&sb);
	imap_format_datetime(&sb, 0, 90);
	ck_assert_str_eq(sb.data, "\"01-Jan-1970 01:30:00 +0130\"");
	strbuf_reset(&sb);
	imap_format_datetime(&sb, -1, 0);
	ck_assert_str_eq(sb.data, "\"31-Dec-1969 23:59:59 +0000\"");
	strbuf_reset(&sb);
	imap_format_datetime(&sb, 951782400, 0);	/* 2000-02-29 */
	ck_assert_str_eq(sb.data, "\"29-Feb-2000 00:00:00 +0000\"");
	/* Round trip through the parser for many times and zones. */
	srand(3);
	for (int i = 0; i < 2000; i++) {
		int64_t t0 = (int64_t)rand() * 3 - 1000000;
		int tz0 = (rand() % (2 * 23 * 60 + 1)) - 23 * 60;
		strbuf_reset(&sb);
		imap_format_datetime(&sb, t0, tz0);
		ck_assert_uint_eq(sb.len, 28);
		ck_assert_int_eq(imap_parse_datetime(sb.data + 1, 26, &t, &tz), 0);
		ck_assert(t == t0);
		ck_assert_int_eq(tz, tz0);
	}
	strbuf_reset(&sb);
	imap_format_date(&sb, 0);
	ck_assert_str_eq(sb.data, "1-Jan-1970");
	for (int32_t d = -719162; d <= 2932896; d += 997) {
		int32_t back;
		strbuf_reset(&sb);
		imap_format_date(&sb, d);
		ck_assert_int_eq(imap_parse_date(sb.data, sb.len, &back), 0);
		ck_assert_int_eq(back, d);
	}
	strbuf_free(&sb);
}
END_TEST

static Suite *
format_suite(void)
{
	Suite *s = suite_create("imap_format");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, format_strings, 0, (int)N_ELEMENTS(str_cases));
	tcase_add_test(tc, format_string_length_switch);
	tcase_add_test(tc, format_literal_nul_bytes);
	tcase_add_test(tc, format_flags);
	tcase_add_test(tc, format_status_lines);
	tcase_add_test(tc, format_dates);
	tcase_add_test(tc, format_datetime_stays_in_grammar);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(format_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
