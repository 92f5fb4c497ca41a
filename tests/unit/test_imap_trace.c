/* Check suite for imap-frontend/imap-trace: what a protocol trace shows,
 * fed whole and at every split point — LOGIN and AUTHENTICATE secrets and
 * every literal masked, long lines cut. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-trace.h"
#include "strbuf.h"

static void
collect(void *arg, enum imap_trace_dir dir, const char *text, size_t len)
{
	struct strbuf *sb = arg;

	strbuf_appendf(sb, "%c: %.*s\n", dir == IMAP_TRACE_CLIENT ? 'C' : 'S',
	    (int)len, text);
}

struct step {
	enum imap_trace_dir dir;
	const char *bytes;
};

struct trace_case {
	const char *name;
	struct step steps[6];
	const char *expect;
	const char *secret;	/* must never appear in the trace */
};

#define C IMAP_TRACE_CLIENT
#define S IMAP_TRACE_SERVER

static const struct trace_case cases[] = {
	{ "login quoted",
	  { { C, "a1 LOGIN alice \"s3cr\\\"et\"\r\n" },
	    { S, "a1 OK Logged in\r\n" } },
	  "C: a1 LOGIN alice ****\nS: a1 OK Logged in\n", "s3cr" },
	{ "login atom, lower case",
	  { { C, "x login \"Ann Lee\" hunter2\r\n" } },
	  "C: x login \"Ann Lee\" ****\n", "hunter2" },
	{ "login literal password",
	  { { C, "a2 LOGIN alice {7}\r\n" }, { S, "+ OK\r\n" },
	    { C, "hunter2\r\n" } },
	  "C: a2 LOGIN alice ****\nS: + OK\nC: [literal ****]\nC: ****\n",
	  "hunter2" },
	{ "login literal user and password",
	  { { C, "a3 LOGIN {5}\r\n" }, { S, "+ OK\r\n" },
	    { C, "alice {7}\r\n" }, { S, "+ OK\r\n" },
	    { C, "hunter2 \"\"\r\n" } },
	  "C: a3 LOGIN {5}\nS: + OK\nC: [literal 5 bytes]\nC: ****\n"
	  "S: + OK\nC: [literal ****]\nC: ****\n", "hunter2" },
	{ "authenticate with SASL-IR",
	  { { C, "a4 AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=\r\n" },
	    { S, "a4 OK done\r\n" }, { C, "a5 NOOP\r\n" } },
	  "C: a4 AUTHENTICATE PLAIN ****\nS: a4 OK done\nC: a5 NOOP\n",
	  "AGFsaWNl" },
	{ "authenticate with responses",
	  { { C, "a6 AUTHENTICATE LOGIN\r\n" }, { S, "+ VXNlcm5hbWU6\r\n" },
	    { C, "YWxpY2U=\r\n" }, { S, "+ UGFzc3dvcmQ6\r\n" },
	    { C, "aHVudGVyMg==\r\n" }, { S, "a6 NO [AUTHENTICATIONFAILED] x\r\n" } },
	  "C: a6 AUTHENTICATE LOGIN\nS: + VXNlcm5hbWU6\nC: ****\n"
	  "S: + UGFzc3dvcmQ6\nC: ****\nS: a6 NO [AUTHENTICATIONFAILED] x\n",
	  "aHVudGVy" },
	{ "append body and fetch body",
	  { { C, "a7 APPEND INBOX {27+}\r\nSubject: x\r\n\r\nSECRET BODY\r\n"
	      "\r\n" },
	    { S, "a7 OK [APPENDUID 1 1] done\r\n" },
	    { C, "a8 FETCH 1 BODY[]\r\n" },
	    { S, "* 1 FETCH (BODY[] {25}\r\nSubject: x\r\n\r\nSECRET BODY)\r\n"
	      "a8 OK done\r\n" } },
	  "C: a7 APPEND INBOX {27+}\nC: [literal 27 bytes]\nC: \n"
	  "S: a7 OK [APPENDUID 1 1] done\nC: a8 FETCH 1 BODY[]\n"
	  "S: * 1 FETCH (BODY[] {25}\nS: [literal 25 bytes]\nS: )\n"
	  "S: a8 OK done\n", "SECRET" },
	{ "empty literal and a brace that is no literal",
	  { { S, "* OK {0}\r\n" }, { S, "* 2 FETCH (ENVELOPE (\"a {3}\"))\r\n" } },
	  "S: * OK {0}\nS: [literal 0 bytes]\n"
	  "S: * 2 FETCH (ENVELOPE (\"a {3}\"))\n", NULL },
};

static void
run_case(const struct trace_case *tc, size_t split, struct strbuf *out)
{
	struct imap_trace t;

	imap_trace_init(&t);
	for (size_t i = 0; i < 6 && tc->steps[i].bytes != NULL; i++) {
		const char *b = tc->steps[i].bytes;
		size_t len = strlen(b);

		if (split == 0) {
			imap_trace_feed(&t, tc->steps[i].dir, b, len, collect,
			    out);
			continue;
		}
		for (size_t o = 0; o < len; o += split)
			imap_trace_feed(&t, tc->steps[i].dir, b + o,
			    len - o < split ? len - o : split, collect, out);
	}
	imap_trace_clear(&t);
}

START_TEST(masking_at_every_split)
{
	const struct trace_case *tc = &cases[_i];

	for (size_t split = 0; split <= 7; split++) {
		struct strbuf out = STRBUF_INIT;

		run_case(tc, split, &out);
		ck_assert_msg(strcmp(strbuf_str(&out), tc->expect) == 0,
		    "%s, split %zu:\n%s", tc->name, split, strbuf_str(&out));
		if (tc->secret != NULL)
			ck_assert_ptr_null(strstr(strbuf_str(&out),
			    tc->secret));
		strbuf_free(&out);
	}
}
END_TEST

START_TEST(long_line_cut_with_its_length)
{
	struct imap_trace t;
	struct strbuf out = STRBUF_INIT;
	static char line[5000];

	memset(line, 'x', sizeof(line));
	memcpy(line, "a9 SEARCH TEXT ", 15);
	memcpy(line + sizeof(line) - 6, " {3}\r\n", 6);
	imap_trace_init(&t);
	imap_trace_feed(&t, C, line, sizeof(line), collect, &out);
	imap_trace_feed(&t, C, "abc\r\n", 5, collect, &out);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&out), "... [line of 5000 "
	    "bytes]\nC: [literal 3 bytes]\nC: \n"));
	ck_assert_uint_lt(out.len, IMAP_TRACE_LINE_MAX + 100);
	strbuf_free(&out);
}
END_TEST

START_TEST(long_login_line_masks_the_rest)
{
	struct imap_trace t;
	struct strbuf out = STRBUF_INIT;
	static char line[1000];

	/* a user name longer than the part of the line kept */
	memset(line, 'u', sizeof(line));
	memcpy(line, "a LOGIN ", 8);
	memcpy(line + sizeof(line) - 12, " PASSWORD\r\n", 11);
	imap_trace_init(&t);
	imap_trace_feed(&t, C, line, sizeof(line) - 1, collect, &out);
	ck_assert_ptr_nonnull(strstr(strbuf_str(&out), "C: a LOGIN ****"));
	ck_assert_ptr_null(strstr(strbuf_str(&out), "PASSWORD"));
	strbuf_free(&out);
}
END_TEST

static Suite *
trace_suite(void)
{
	Suite *s = suite_create("imap_trace");
	TCase *tc = tcase_create("trace");

	tcase_add_loop_test(tc, masking_at_every_split, 0,
	    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, long_line_cut_with_its_length);
	tcase_add_test(tc, long_login_line_masks_the_rest);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(trace_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
