/*
 * Check suite for imap-frontend/imap-parse's helpers above the command
 * parser: FETCH attributes (every form, sections, partials, macros and
 * lists) and IMAP dates and date-times.
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

static const struct {
	const char *in;
	const char *name;	/* NULL: must fail */
	int type;
	bool peek;
} fetch_cases[] = {
	{ "FLAGS", "FLAGS", IMAP_FETCH_FLAGS, false },
	{ "internaldate", "INTERNALDATE", IMAP_FETCH_INTERNALDATE, false },
	{ "RFC822.SIZE", "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, false },
	{ "ENVELOPE", "ENVELOPE", IMAP_FETCH_ENVELOPE, false },
	{ "BODY", "BODY", IMAP_FETCH_BODY, false },
	{ "BODYSTRUCTURE", "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, false },
	{ "RFC822", "RFC822", IMAP_FETCH_RFC822, false },
	{ "RFC822.HEADER", "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, false },
	{ "RFC822.TEXT", "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT, false },
	{ "UID", "UID", IMAP_FETCH_UID, false },
	{ "MODSEQ", "MODSEQ", IMAP_FETCH_MODSEQ, false },
	{ "BODY[]", "BODY[]", IMAP_FETCH_BODY_SECTION, false },
	{ "body.peek[]", "BODY[]", IMAP_FETCH_BODY_SECTION, true },
	{ "BODY[HEADER]", "BODY[HEADER]", IMAP_FETCH_BODY_SECTION, false },
	{ "BODY[text]", "BODY[TEXT]", IMAP_FETCH_BODY_SECTION, false },
	{ "BODY[1.2.3]", "BODY[1.2.3]", IMAP_FETCH_BODY_SECTION, false },
	{ "BODY[1.2.MIME]", "BODY[1.2.MIME]", IMAP_FETCH_BODY_SECTION, false },
	{ "BODY[2.HEADER]", "BODY[2.HEADER]", IMAP_FETCH_BODY_SECTION, false },
	{ "BODY[2.TEXT]<5.10>", "BODY[2.TEXT]<5>", IMAP_FETCH_BODY_SECTION,
	  false },
	{ "BODY[HEADER.FIELDS (From To)]", "BODY[HEADER.FIELDS (From To)]",
	  IMAP_FETCH_BODY_SECTION, false },
	{ "BODY.PEEK[1.HEADER.FIELDS.NOT (\"X-A]b\" Date)]<0.1>",
	  "BODY[1.HEADER.FIELDS.NOT (\"X-A]b\" Date)]<0>",
	  IMAP_FETCH_BODY_SECTION, true },
	{ "BODY[]<4294967295.4294967295>", "BODY[]<4294967295>",
	  IMAP_FETCH_BODY_SECTION, false },
	{ "BINARY[1]", "BINARY[1]", IMAP_FETCH_BINARY, false },
	{ "BINARY.PEEK[]<0.5>", "BINARY[]<0>", IMAP_FETCH_BINARY, true },
	{ "BINARY.SIZE[2]", "BINARY.SIZE[2]", IMAP_FETCH_BINARY_SIZE, false },
	{ "BODY[]<4294967296.1>", NULL, 0, false },
	{ "BODY[]<0.4294967296>", NULL, 0, false },
	{ "BODY[]<0.0>", NULL, 0, false },
	{ "BODY[]<0>", NULL, 0, false },
	{ "BODY[]<5.>", NULL, 0, false },
	{ "BODY[]<.5>", NULL, 0, false },
	{ "BODY[]<-1.5>", NULL, 0, false },
	{ "BODY[]<1.2>x", NULL, 0, false },
	{ "BODY[0]", NULL, 0, false },
	{ "BODY[1.0]", NULL, 0, false },
	{ "BODY[1..2]", NULL, 0, false },
	{ "BODY[1.]", NULL, 0, false },
	{ "BODY[.1]", NULL, 0, false },
	{ "BODY[10001]", NULL, 0, false },
	{ "BODY[4294967296]", NULL, 0, false },
	{ "BODY[MIME]", NULL, 0, false },
	{ "BODY[HEADER.FIELDS]", NULL, 0, false },
	{ "BODY[HEADER.FIELDS ()]", NULL, 0, false },
	{ "BODY[HEADER.FIELDS (A:B)]", NULL, 0, false },
	{ "BODY[HEADER.FIELDS (A  B)]", NULL, 0, false },
	{ "BODY[HEADER.FIELDS (A)x]", NULL, 0, false },
	{ "BODY[HEADERX]", NULL, 0, false },
	{ "BODY[TEXT.1]", NULL, 0, false },
	{ "BODY[", NULL, 0, false },
	{ "BINARY[HEADER]", NULL, 0, false },
	{ "BINARY.SIZE[1]<0.1>", NULL, 0, false },
	{ "BODY.PEEK", NULL, 0, false },
	{ "BINARY", NULL, 0, false },
	{ "FOO", NULL, 0, false },
	{ "RFC822[]", NULL, 0, false },
	{ "ALL", NULL, 0, false },
};

START_TEST(fetch_att_table)
{
	struct arena *a = arena_new(0);
	struct imap_arg arg = { 0 };
	struct imap_fetch_att att;
	const char *error = NULL;
	int r;

	arg.type = IMAP_ARG_ATOM;
	arg.str = fetch_cases[_i].in;
	arg.len = strlen(arg.str);
	r = imap_parse_fetch_att(&arg, a, &att, &error);
	if (fetch_cases[_i].name == NULL) {
		ck_assert_msg(r == -1, "%s accepted", arg.str);
		ck_assert_ptr_nonnull(error);
	} else {
		ck_assert_msg(r == 0, "%s: %s", arg.str, error);
		ck_assert_str_eq(att.response_name, fetch_cases[_i].name);
		ck_assert_int_eq(att.type, fetch_cases[_i].type);
		ck_assert(att.peek == fetch_cases[_i].peek);
	}
	arena_free(&a);
}
END_TEST

START_TEST(fetch_att_details)
{
	struct arena *a = arena_new(0);
	struct imap_arg arg = { 0 };
	struct imap_fetch_att att;
	const char *error;
	struct strbuf sb = STRBUF_INIT;

	arg.type = IMAP_ARG_ATOM;
	arg.str = "BODY.PEEK[3.1.HEADER.FIELDS (Subject \"a\\\"b\")]<100.200>";
	arg.len = strlen(arg.str);
	ck_assert_int_eq(imap_parse_fetch_att(&arg, a, &att, &error), 0);
	ck_assert_uint_eq(att.section.depth, 2);
	ck_assert_uint_eq(att.section.path[0], 3);
	ck_assert_uint_eq(att.section.path[1], 1);
	ck_assert_int_eq(att.section.kind, IMAP_SECTION_HEADER_FIELDS);
	ck_assert_uint_eq(att.section.field_count, 2);
	ck_assert_str_eq(att.section.fields[0], "Subject");
	ck_assert_str_eq(att.section.fields[1], "a\"b");
	ck_assert(att.partial);
	ck_assert_uint_eq(att.partial_offset, 100);
	ck_assert_uint_eq(att.partial_length, 200);

	/* Depth: 32 parts are fine, 33 are not; BODY[1.2.3...x200]. */
	for (int depth = 32; depth <= 200; depth += 168) {
		strbuf_reset(&sb);
		strbuf_appends(&sb, "BODY[");
		for (int i = 0; i < depth; i++)
			strbuf_appends(&sb, i == 0 ? "1" : ".1");
		strbuf_appendc(&sb, ']');
		arg.str = sb.data;
		arg.len = sb.len;
		ck_assert_int_eq(imap_parse_fetch_att(&arg, a, &att, &error),
		    depth <= IMAP_SECTION_MAX_DEPTH ? 0 : -1);
	}
	strbuf_reset(&sb);
	strbuf_appends(&sb, "BODY[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"
	    ".1.1.1.1.1.1.1.1.1]");
	arg.str = sb.data;
	arg.len = sb.len;
	ck_assert_int_eq(imap_parse_fetch_att(&arg, a, &att, &error), -1);

	/* A non-atom is refused. */
	arg.type = IMAP_ARG_QUOTED;
	arg.str = "FLAGS";
	arg.len = 5;
	ck_assert_int_eq(imap_parse_fetch_att(&arg, a, &att, &error), -1);
	strbuf_free(&sb);
	arena_free(&a);
}
END_TEST

START_TEST(fetch_atts_macros_and_lists)
{
	struct imap_parse_limits l;
	struct imap_parser *p;
	struct arena *a = arena_new(0);
	const struct imap_command *cmd;
	struct imap_fetch_att *atts;
	size_t n, used;
	const char *error;
	const char *in = "a FETCH 1 ALL\r\n";

	imap_parse_limits_default(&l);
	p = imap_parser_new(&l);
	imap_parser_set_authenticated(p, true);
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(atts[3].type, IMAP_FETCH_ENVELOPE);

	in = "a FETCH 1 full\r\n";
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(atts[4].type, IMAP_FETCH_BODY);

	in = "a FETCH 1 FAST\r\n";
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), 0);
	ck_assert_uint_eq(n, 3);

	in = "a FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (DATE FROM)] FLAGS)\r\n";
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(atts[1].section.kind, IMAP_SECTION_HEADER_FIELDS);
	ck_assert_str_eq(atts[1].response_name,
	    "BODY[HEADER.FIELDS (DATE FROM)]");

	in = "a FETCH 1 (ALL)\r\n";	/* macros not inside lists */
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), -1);
	in = "a FETCH 1 ()\r\n";
	ck_assert_int_eq(imap_parser_feed(p, in, strlen(in), &used, &cmd),
	    IMAP_PARSE_DONE);
	ck_assert_int_eq(imap_parse_fetch_atts(&cmd->args[1], a, &atts, &n,
	    &error), -1);
	ck_assert_int_eq(imap_parse_fetch_atts(NULL, a, &atts, &n, &error), -1);
	imap_parser_free(&p);
	arena_free(&a);
}
END_TEST

/* ---- dates ------------------------------------------------------------------- */

START_TEST(dates)
{
	int32_t days;
	int64_t t;
	int tz;

	ck_assert_int_eq(imap_parse_date("1-Jan-1970", 10, &days), 0);
	ck_assert_int_eq(days, 0);
	ck_assert_int_eq(imap_parse_date("01-jan-1970", 11, &days), 0);
	ck_assert_int_eq(days, 0);
	ck_assert_int_eq(imap_parse_date("29-Feb-2000", 11, &days), 0);
	ck_assert_int_eq(days, 11016);
	ck_assert_int_eq(imap_parse_date("31-Dec-1969", 11, &days), 0);
	ck_assert_int_eq(days, -1);
	ck_assert_int_eq(imap_parse_date("29-Feb-1900", 11, &days), -1);
	ck_assert_int_eq(imap_parse_date("30-Feb-2000", 11, &days), -1);
	ck_assert_int_eq(imap_parse_date("0-Jan-2000", 10, &days), -1);
	ck_assert_int_eq(imap_parse_date("1-Foo-2000", 10, &days), -1);
	ck_assert_int_eq(imap_parse_date("1-Jan-200", 9, &days), -1);
	ck_assert_int_eq(imap_parse_date("1-Jan-0000", 10, &days), -1);
	ck_assert_int_eq(imap_parse_date("1 Jan 2000", 10, &days), -1);
	ck_assert_int_eq(imap_parse_date("a1-Jan-2000", 11, &days), -1);

	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 02:44:25 -0700", 26,
	    &t, &tz), 0);
	ck_assert_int_eq(t, 837596665);
	ck_assert_int_eq(tz, -420);
	ck_assert_int_eq(imap_parse_datetime(" 7-Jul-1996 02:44:25 +0000", 26,
	    &t, &tz), 0);
	ck_assert_int_eq(tz, 0);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 24:00:00 +0000", 26,
	    &t, &tz), -1);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 02:44:25 0700", 25,
	    &t, &tz), -1);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 02:44:25 *0700", 26,
	    &t, &tz), -1);
	ck_assert_int_eq(imap_parse_datetime("17-Jul-1996 02:60:25 +0700", 26,
	    &t, &tz), -1);
	ck_assert_int_eq(imap_parse_datetime("7-Jul-1996 02:44:25 +0000 ", 26,
	    &t, &tz), -1);

	/* Day of a time in its own zone. */
	ck_assert_int_eq(imap_date_days(0, 0), 0);
	ck_assert_int_eq(imap_date_days(-1, 0), -1);
	ck_assert_int_eq(imap_date_days(86399, 0), 0);
	ck_assert_int_eq(imap_date_days(86399, 1), 1);
	ck_assert_int_eq(imap_date_days(0, -1), -1);
}
END_TEST

static Suite *
fetchatt_suite(void)
{
	Suite *s = suite_create("imap_fetchatt");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, fetch_att_table, 0,
	    (int)N_ELEMENTS(fetch_cases));
	tcase_add_test(tc, fetch_att_details);
	tcase_add_test(tc, fetch_atts_macros_and_lists);
	tcase_add_test(tc, dates);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fetchatt_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
