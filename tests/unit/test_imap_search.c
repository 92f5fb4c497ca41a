/*
 * Check suite for imap-frontend/imap-search-match: every RFC 3501 search
 * key parsed from a real command line and evaluated against four fake
 * messages through the callback interface.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-frontend/imap-format.h"
#include "imap-frontend/imap-parse.h"
#include "imap-frontend/imap-search-match.h"
#include "strbuf.h"
#include "xmalloc.h"

struct fake_header {
	const char *name;
	const char *value;
};

struct fake_msg {
	uint32_t uid;
	unsigned int flags;
	uint64_t size;
	uint64_t modseq;
	int64_t internaldate;
	int tz;
	struct fake_header headers[4];
	const char *body;
	const char *keywords[2];
	bool has_sent;
	int64_t sent;
	int sent_tz;
};

/* 2020-01-01 12:00 UTC etc.; days: 2020-01-01 = 18262. */
#define DAY 86400
static const struct fake_msg msgs[] = {
	{ 10, IMAP_FLAG_SEEN | IMAP_FLAG_ANSWERED, 100, 5,
	  18262LL * DAY + 12 * 3600, 0,
	  { { "From", "Alice <alice@example.com>" }, { "To", "bob@example.com" },
	    { "Subject", "Hello world" } },
	  "the quick brown fox", { "$Work" },
	  /* 31-Dec-2019 23:00 -0500 = 1-Jan-2020 04:00 UTC */
	  true, 18262LL * DAY + 4 * 3600, -300 },
	{ 20, IMAP_FLAG_FLAGGED | IMAP_FLAG_RECENT, 2000, 9,
	  /* 15-Mar-2021 00:30 +0100 = 14-Mar-2021 23:30 UTC */
	  18700LL * DAY + 23 * 3600 + 1800, 60,
	  { { "From", "Bob" }, { "Subject", "Re: lunch" }, { "Cc", "carol" } },
	  "lunch at noon", { NULL }, false, 0, 0 },
	{ 30, IMAP_FLAG_DELETED | IMAP_FLAG_DRAFT | IMAP_FLAG_RECENT |
	  IMAP_FLAG_SEEN, 50, 12, 18701LL * DAY + 10 * 3600, 0,
	  { { "From", "Carol" }, { "Subject", "Caf\xc3\xa9" }, { "Bcc", "dave" } },
	  "", { "$Junk" }, true, 18701LL * DAY + 9 * 3600, 0 },
	{ 40, 0, 500, 1, 19144LL * DAY, 0,
	  { { "From", "dave" } },
	  "FOX", { NULL }, true, 19144LL * DAY, 0 },
};

static bool fail_callbacks;

static bool
icontains(const char *hay, const char *needle, size_t nlen)
{
	size_t hlen = strlen(hay);

	if (nlen == 0)
		return true;
	for (size_t i = 0; i + nlen <= hlen; i++) {
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return true;
	}
	return false;
}

static int
cb_keyword(void *ctx, const char *kw)
{
	const struct fake_msg *m = ctx;

	for (size_t i = 0; i < 2 && m->keywords[i] != NULL; i++) {
		if (strcasecmp(m->keywords[i], kw) == 0)
			return 1;
	}
	return 0;
}

static int
cb_header(void *ctx, const char *name, const char *s, size_t len)
{
	const struct fake_msg *m = ctx;

	if (fail_callbacks)
		return -1;
	for (size_t i = 0; i < 4 && m->headers[i].name != NULL; i++) {
		if (strcasecmp(m->headers[i].name, name) == 0 &&
		    icontains(m->headers[i].value, s, len))
			return 1;
	}
	return 0;
}

static int
cb_body(void *ctx, bool text, const char *s, size_t len)
{
	const struct fake_msg *m = ctx;

	if (fail_callbacks)
		return -1;
	if (icontains(m->body, s, len))
		return 1;
	if (text) {
		for (size_t i = 0; i < 4 && m->headers[i].name != NULL; i++) {
			if (icontains(m->headers[i].value, s, len) ||
			    icontains(m->headers[i].name, s, len))
				return 1;
		}
	}
	return 0;
}

static int
cb_sent(void *ctx, int64_t *t_r, int *tz_r)
{
	const struct fake_msg *m = ctx;

	if (!m->has_sent)
		return 0;
	*t_r = m->sent;
	*tz_r = m->sent_tz;
	return 1;
}

/* Parses "t SEARCH <q>\r\n" with the command parser (literals allowed). */
static const struct imap_command *
parse_cmd(struct imap_parser *p, const char *q)
{
	struct strbuf sb = STRBUF_INIT;
	const struct imap_command *cmd = NULL;
	size_t used, off = 0;
	enum imap_parse_result r;

	strbuf_appendf(&sb, "t SEARCH%s%s\r\n", *q != '\0' ? " " : "", q);
	do {
		r = imap_parser_feed(p, sb.data + off, sb.len - off, &used, &cmd);
		off += used;
	} while (r == IMAP_PARSE_NEED_CONTINUATION);
	ck_assert_msg(r == IMAP_PARSE_DONE, "parse of %s: %d", q, r);
	strbuf_free(&sb);
	return cmd;
}

/* "1010"-style match string, or "BAD" / "BADCHARSET". */
static char *
run_search(const char *q, struct imap_search_program **prog_r,
    struct arena *arena)
{
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	struct imap_search_program *prog;
	enum imap_search_error err;
	const char *error = NULL;
	char *out = xmalloc(N_ELEMENTS(msgs) + 1);

	imap_parser_set_authenticated(p, true);
	cmd = parse_cmd(p, q);
	if (imap_search_parse(cmd->args, cmd->arg_count, arena, &prog, &err,
	    &error) < 0) {
		ck_assert_ptr_nonnull(error);
		ck_assert_ptr_null(prog);
		strcpy(out, err == IMAP_SEARCH_ERR_BADCHARSET ? "BC" : "BAD");
		imap_parser_free(&p);
		return out;
	}
	imap_parser_free(&p);	/* the program must not borrow from it */
	for (size_t i = 0; i < N_ELEMENTS(msgs); i++) {
		struct imap_search_message m = {
			.seq = (uint32_t)i + 1,
			.uid = msgs[i].uid,
			.max_seq = N_ELEMENTS(msgs),
			.max_uid = 40,
			.flags = msgs[i].flags,
			.size = msgs[i].size,
			.modseq = msgs[i].modseq,
			.internaldate = msgs[i].internaldate,
			.internaldate_tz = msgs[i].tz,
			.ctx = (void *)&msgs[i],
			.has_keyword = cb_keyword,
			.header_contains = cb_header,
			.body_contains = cb_body,
			.sent_date = cb_sent,
		};
		int r = imap_search_match(prog, &m);
		ck_assert_int_ge(r, 0);
		out[i] = r ? '1' : '0';
	}
	out[N_ELEMENTS(msgs)] = '\0';
	if (prog_r != NULL)
		*prog_r = prog;
	return out;
}

static const struct {
	const char *q;
	const char *expect;
} cases[] = {
	{ "ALL", "1111" },
	{ "SEEN", "1010" },
	{ "seen", "1010" },
	{ "UNSEEN", "0101" },
	{ "ANSWERED", "1000" },
	{ "UNANSWERED", "0111" },
	{ "FLAGGED", "0100" },
	{ "UNFLAGGED", "1011" },
	{ "DELETED", "0010" },
	{ "UNDELETED", "1101" },
	{ "DRAFT", "0010" },
	{ "UNDRAFT", "1101" },
	{ "RECENT", "0110" },
	{ "NEW", "0100" },
	{ "OLD", "1001" },
	{ "KEYWORD $Work", "1000" },
	{ "UNKEYWORD $Work", "0111" },
	{ "KEYWORD $junk", "0010" },
	{ "LARGER 100", "0101" },
	{ "SMALLER 100", "0010" },
	{ "LARGER 4294967295", "0000" },
	{ "FROM alice", "1000" },
	{ "FROM \"ALICE\"", "1000" },
	{ "TO bob", "1000" },
	{ "CC carol", "0100" },
	{ "BCC dave", "0010" },
	{ "SUBJECT \"re:\"", "0100" },
	{ "SUBJECT {5}\r\nCaf\xc3\xa9", "0010" },
	{ "CHARSET UTF-8 SUBJECT {5+}\r\nCaf\xc3\xa9", "0010" },
	{ "SUBJECT \"caf\xc3\xa9\"", "0010" },
	{ "HEADER Subject \"\"", "1110" },
	{ "HEADER from \"d\"", "0001" },
	{ "BODY fox", "1001" },
	{ "BODY alice", "0000" },
	{ "TEXT alice", "1000" },
	{ "TEXT \"\"", "1111" },
	{ "BEFORE 1-Jan-2020", "0000" },
	{ "BEFORE 2-Jan-2020", "1000" },
	{ "ON 1-Jan-2020", "1000" },
	{ "ON \"01-JAN-2020\"", "1000" },
	{ "SINCE 15-Mar-2021", "0111" },
	{ "ON 15-Mar-2021", "0110" },
	{ "ON 14-Mar-2021", "0000" },
	{ "SINCE 16-Mar-2021", "0001" },
	{ "SENTON 31-Dec-2019", "1000" },
	{ "SENTBEFORE 1-Jan-2020", "1000" },
	{ "SENTSINCE 1-Jan-2020", "0011" },
	{ "NOT SENTSINCE 1-Jan-2020", "1100" },
	{ "1:2", "1100" },
	{ "*", "0001" },
	{ "2,4", "0101" },
	{ "3:*", "0011" },
	{ "4294967295", "0000" },
	{ "UID 15:35", "0110" },
	{ "UID *", "0001" },
	{ "UID 50:*", "0001" },
	{ "UID 1:9,41:100", "0000" },
	{ "NOT SEEN", "0101" },
	{ "NOT NOT SEEN", "1010" },
	{ "OR SEEN FLAGGED", "1110" },
	{ "OR (SEEN ANSWERED) DELETED", "1010" },
	{ "OR OR DELETED FLAGGED ANSWERED", "1110" },
	{ "(SEEN UNDELETED)", "1000" },
	{ "SEEN UNDELETED", "1000" },
	{ "((SEEN) (UNDELETED))", "1000" },
	{ "NOT (SEEN DELETED)", "1101" },
	{ "MODSEQ 9", "0110" },
	{ "MODSEQ \"/flags/\\\\Seen\" all 9", "0110" },
	/* entry names and types are checked, then ignored: one MODSEQ per
	 * message (RFC 7162 3.1.5) */
	{ "MODSEQ \"/flags/\\\\draft\" all 9", "0110" },
	{ "MODSEQ \"/flags/\\\\Answered\" priv 9", "0110" },
	{ "MODSEQ \"/flags/$MDNSent\" shared 9", "0110" },
	{ "MODSEQ \"/FLAGS/kw\" ALL 9", "0110" },
	{ "NOT MODSEQ \"/flags/\\\\Seen\" all 9", "1001" },
	{ "MODSEQ 0", "1111" },
	{ "CHARSET us-ascii SEEN", "1010" },
	{ "RETURN (MIN COUNT) SEEN", "1010" },
	{ "RETURN () CHARSET UTF-8 ALL", "1111" },
	/* errors */
	{ "", "BAD" },
	{ "FOO", "BAD" },
	{ "SEEN FOO", "BAD" },
	{ "\"SEEN\"", "BAD" },
	{ "BEFORE", "BAD" },
	{ "BEFORE 32-Jan-2020", "BAD" },
	{ "BEFORE 1-Jan-20", "BAD" },
	{ "BEFORE (1-Jan-2020)", "BAD" },
	{ "LARGER x", "BAD" },
	{ "LARGER -1", "BAD" },
	{ "LARGER 4294967296", "BAD" },
	{ "SMALLER", "BAD" },
	{ "UID 0", "BAD" },
	{ "UID", "BAD" },
	{ "UID x", "BAD" },
	{ "0", "BAD" },
	{ "1:4294967296", "BAD" },
	{ "NOT", "BAD" },
	{ "OR SEEN", "BAD" },
	{ "()", "BAD" },
	{ "KEYWORD \\Seen", "BAD" },
	{ "KEYWORD", "BAD" },
	{ "KEYWORD (a)", "BAD" },
	{ "HEADER", "BAD" },
	{ "HEADER Subject", "BAD" },
	{ "HEADER a:b x", "BAD" },
	{ "HEADER \"\" x", "BAD" },
	{ "FROM", "BAD" },
	{ "FROM (a)", "BAD" },
	{ "CHARSET", "BAD" },
	{ "CHARSET UTF-8", "BAD" },
	{ "CHARSET ISO-8859-1 SEEN", "BC" },
	{ "CHARSET \"KOI8-R\" SEEN", "BC" },
	{ "RETURN (FOO) ALL", "BAD" },
	{ "RETURN SEEN", "BAD" },
	{ "RETURN (MIN)", "BAD" },
	{ "MODSEQ", "BAD" },
	{ "MODSEQ x", "BAD" },
	{ "MODSEQ \"/flags/x\" bad 5", "BAD" },
	{ "MODSEQ \"/flags/x\" all", "BAD" },
	{ "MODSEQ \"/flags/\\\\Recent\" all 5", "BAD" },
	{ "MODSEQ \"/flags/\\\\Bogus\" all 5", "BAD" },
	{ "MODSEQ \"/flags/\" all 5", "BAD" },
	{ "MODSEQ \"/flags/a b\" all 5", "BAD" },
	{ "MODSEQ \"/flags/a(\" all 5", "BAD" },
	{ "MODSEQ \"foo\" all 5", "BAD" },
	{ "MODSEQ \"flags/x\" all 5", "BAD" },
	{ "MODSEQ {8+}\r\n/flags/x all 5", "BAD" },
	{ "MODSEQ \"/flags/x\" \"all\" 5", "BAD" },
	{ "MODSEQ \"/flags/x\" 5", "BAD" },
	{ "MODSEQ 9223372036854775808", "BAD" },
	{ "ALL CHARSET UTF-8", "BAD" },
};

START_TEST(search_table)
{
	struct arena *a = arena_new(0);
	char *got = run_search(cases[_i].q, NULL, a);

	ck_assert_msg(strcmp(got, cases[_i].expect) == 0, "%s: got %s want %s",
	    cases[_i].q, got, cases[_i].expect);
	free(got);
	arena_free(&a);
}
END_TEST

START_TEST(search_program_properties)
{
	struct arena *a = arena_new(0);
	struct imap_search_program *prog;
	char *got;

	got = run_search("RETURN (MIN MAX COUNT ALL) SEEN", &prog, a);
	ck_assert(prog->has_return);
	ck_assert_uint_eq(prog->return_opts, IMAP_SEARCH_RETURN_MIN |
	    IMAP_SEARCH_RETURN_MAX | IMAP_SEARCH_RETURN_COUNT |
	    IMAP_SEARCH_RETURN_ALL);
	ck_assert(!prog->needs_body && !prog->needs_headers &&
	    !prog->uses_modseq);
	free(got);
	got = run_search("RETURN () SEEN", &prog, a);
	ck_assert_uint_eq(prog->return_opts, IMAP_SEARCH_RETURN_ALL);
	free(got);
	/* SEARCHRES: SAVE alone stays alone (no ESEARCH), or joins others */
	got = run_search("RETURN (SAVE) SEEN", &prog, a);
	ck_assert(prog->has_return);
	ck_assert_uint_eq(prog->return_opts, IMAP_SEARCH_RETURN_SAVE);
	free(got);
	got = run_search("RETURN (save MIN) SEEN", &prog, a);
	ck_assert_uint_eq(prog->return_opts, IMAP_SEARCH_RETURN_SAVE |
	    IMAP_SEARCH_RETURN_MIN);
	free(got);
	got = run_search("SEEN", &prog, a);
	ck_assert(!prog->has_return);
	free(got);
	got = run_search("OR BODY x MODSEQ 3", &prog, a);
	ck_assert(prog->needs_body && prog->uses_modseq && !prog->needs_headers);
	free(got);
	got = run_search("SENTON 1-Jan-2000", &prog, a);
	ck_assert(prog->needs_headers);
	free(got);
	got = run_search("SUBJECT x", &prog, a);
	ck_assert(prog->needs_headers);
	ck_assert_int_eq(prog->root->first_child->type, IMAP_SEARCH_HEADER);
	ck_assert_str_eq(prog->root->first_child->header, "Subject");
	ck_assert_str_eq(prog->root->first_child->str, "x");
	free(got);
	arena_free(&a);
}
END_TEST

START_TEST(search_limits)
{
	struct arena *a = arena_new(0);
	struct strbuf q = STRBUF_INIT;
	char *got;

	/* NOT chains: 63 deep is fine (depth 64 limit incl. the key). */
	for (int i = 0; i < IMAP_SEARCH_MAX_DEPTH - 1; i++)
		strbuf_appends(&q, "NOT ");
	strbuf_appends(&q, "SEEN");
	got = run_search(q.data, NULL, a);
	ck_assert_str_eq(got, IMAP_SEARCH_MAX_DEPTH % 2 == 1 ? "1010" : "0101");
	free(got);
	strbuf_reset(&q);
	for (int i = 0; i < 1000; i++)
		strbuf_appends(&q, "NOT ");
	strbuf_appends(&q, "SEEN");
	got = run_search(q.data, NULL, a);
	ck_assert_str_eq(got, "BAD");
	free(got);

	/* Key count. */
	strbuf_reset(&q);
	for (int i = 0; i < IMAP_SEARCH_MAX_KEYS - 1; i++)
		strbuf_appends(&q, i == 0 ? "SEEN" : " SEEN");
	got = run_search(q.data, NULL, a);
	ck_assert_str_eq(got, "1010");
	free(got);
	strbuf_appends(&q, " SEEN SEEN");
	got = run_search(q.data, NULL, a);
	ck_assert_str_eq(got, "BAD");
	free(got);
	strbuf_free(&q);
	arena_free(&a);
}
END_TEST

/* Regression (issue 13 item 9): FROM / TO / CC / BCC ask the parsed
 * addresses (address_contains); HEADER and SUBJECT keep to the field's
 * text; without address_contains the header text is asked. */
static const char *addr_asked;

static int
cb_address(void *ctx, const char *name, const char *s, size_t len)
{
	addr_asked = name;
	return len == 15 && strncmp(s, "user@domain.org", len) == 0;
}

START_TEST(search_address_keys)
{
	struct arena *a = arena_new(0);
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	struct imap_search_program *prog;
	enum imap_search_error err;
	const char *error;
	static const char *const keys[] = { "FROM", "TO", "CC", "BCC" };
	static const char *const names[] = { "From", "To", "Cc", "Bcc" };
	struct imap_search_message m = {
		.seq = 1, .uid = 10, .max_seq = 1, .max_uid = 10,
		.ctx = (void *)&msgs[0],
		.has_keyword = cb_keyword,
		.header_contains = cb_header,
		.address_contains = cb_address,
		.body_contains = cb_body,
		.sent_date = cb_sent,
	};
	char q[64];

	imap_parser_set_authenticated(p, true);
	for (size_t i = 0; i < 4; i++) {
		snprintf(q, sizeof(q), "%s user@domain.org", keys[i]);
		cmd = parse_cmd(p, q);
		ck_assert_int_eq(imap_search_parse(cmd->args, cmd->arg_count,
		    a, &prog, &err, &error), 0);
		addr_asked = NULL;
		ck_assert_int_eq(imap_search_match(prog, &m), 1);
		ck_assert_str_eq(addr_asked, names[i]);
	}
	/* HEADER From is about the text: the header callback answers */
	cmd = parse_cmd(p, "HEADER From user@domain.org");
	ck_assert_int_eq(imap_search_parse(cmd->args, cmd->arg_count, a, &prog,
	    &err, &error), 0);
	addr_asked = NULL;
	(void)imap_search_match(prog, &m);
	ck_assert_ptr_null(addr_asked);
	/* no address callback: FROM falls back to the header text */
	m.address_contains = NULL;
	cmd = parse_cmd(p, "FROM user@domain.org");
	ck_assert_int_eq(imap_search_parse(cmd->args, cmd->arg_count, a, &prog,
	    &err, &error), 0);
	ck_assert_int_eq(imap_search_match(prog, &m), 0);
	imap_parser_free(&p);
	arena_free(&a);
}
END_TEST

START_TEST(search_callback_errors)
{
	struct arena *a = arena_new(0);
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	struct imap_search_program *prog;
	enum imap_search_error err;
	const char *error;
	struct imap_search_message m = {
		.seq = 1, .uid = 10, .max_seq = 1, .max_uid = 10,
		.ctx = (void *)&msgs[0],
		.has_keyword = cb_keyword,
		.header_contains = cb_header,
		.body_contains = cb_body,
		.sent_date = cb_sent,
	};

	imap_parser_set_authenticated(p, true);
	cmd = parse_cmd(p, "OR FROM alice BODY x");
	ck_assert_int_eq(imap_search_parse(cmd->args, cmd->arg_count, a, &prog,
	    &err, &error), 0);
	ck_assert_int_eq(imap_search_match(prog, &m), 1);
	fail_callbacks = true;
	ck_assert_int_eq(imap_search_match(prog, &m), -1);
	fail_callbacks = false;
	/* Missing callbacks for keys that need them are an error, not a
	 * silent non-match. */
	m.header_contains = NULL;
	ck_assert_int_eq(imap_search_match(prog, &m), -1);
	/* ... but keys that do not need them work without. */
	cmd = parse_cmd(p, "SEEN");
	ck_assert_int_eq(imap_search_parse(cmd->args, cmd->arg_count, a, &prog,
	    &err, &error), 0);
	m.flags = IMAP_FLAG_SEEN;
	m.body_contains = NULL;
	m.sent_date = NULL;
	ck_assert_int_eq(imap_search_match(prog, &m), 1);
	imap_parser_free(&p);
	arena_free(&a);
}
END_TEST

static Suite *
search_suite(void)
{
	Suite *s = suite_create("imap_search");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, search_table, 0, (int)N_ELEMENTS(cases));
	tcase_add_test(tc, search_program_properties);
	tcase_add_test(tc, search_limits);
	tcase_add_test(tc, search_callback_errors);
	tcase_add_test(tc, search_address_keys);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(search_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
