/* Check suite for imap-frontend/imap-utf7: modified UTF-7 decoding and
 * encoding, and the mailbox name rules. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-utf7.h"
#include "strbuf.h"
#include "xmalloc.h"

static const struct {
	const char *utf7;
	const char *utf8;
} good[] = {
	{ "INBOX", "INBOX" },
	{ "", "" },
	{ "&-", "&" },
	{ "a&-b&-", "a&b&" },
	{ "Entw&APw-rfe", "Entw\xc3\xbc" "rfe" },
	{ "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
	  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "&2D3eAA-", "\xf0\x9f\x98\x80" },
	{ "&AOkA6Q-", "\xc3\xa9\xc3\xa9" },
	{ "&AOk-a&AOk-", "\xc3\xa9" "a\xc3\xa9" },
	{ "&AOk-&-", "\xc3\xa9&" },
	{ "&-&AOk-", "&\xc3\xa9" },
	{ "Sent Items", "Sent Items" },
};

START_TEST(utf7_decode_encode_good)
{
	struct strbuf sb = STRBUF_INIT;
	const char *error = NULL;
	const char *u7 = good[_i].utf7, *u8 = good[_i].utf8;

	ck_assert_msg(imap_utf7_to_utf8(u7, strlen(u7), &sb, &error) == 0,
	    "%s: %s", u7, error);
	ck_assert_str_eq(strbuf_str(&sb), u8);
	ck_assert(imap_utf7_is_valid(u7, strlen(u7)));
	strbuf_reset(&sb);
	ck_assert_int_eq(imap_utf8_to_utf7(u8, strlen(u8), &sb, &error), 0);
	ck_assert_str_eq(strbuf_str(&sb), u7);
	strbuf_free(&sb);
}
END_TEST

static const char *const bad7[] = {
	"&",			/* unterminated */
	"a&AOk",		/* unterminated */
	"&AOk-&AOk-",		/* non-minimal: two adjacent shifts */
	"&AGE-",		/* encoded printable ASCII 'a' */
	"&ACY-",		/* encoded '&' */
	"&AOl-",		/* non-zero leftover bits */
	"&AOkA-",		/* a whole extra base64 char */
	"&A-",			/* 6 bits: not a UTF-16 unit */
	"&2D0-",		/* unpaired high surrogate */
	"&2D3YPQ-",		/* high followed by high */
	"&3gA-",		/* lone low surrogate */
	"&3gDYPQ-",		/* reversed pair */
	"&AAA-",		/* U+0000 */
	"&A*k-",		/* bad base64 character */
	"&AO,-",		/* ',' makes leftover bits non-zero */
	"&AO/-",		/* '/' is not modified base64 */
	"&AO=-",		/* no padding in modified base64 */
	"caf\xc3\xa9",		/* raw 8-bit */
	"a\tb",			/* raw control */
	"a\x7f",
};

START_TEST(utf7_decode_bad)
{
	struct strbuf sb = STRBUF_INIT;
	const char *error = NULL;
	const char *in = bad7[_i];

	ck_assert_msg(imap_utf7_to_utf8(in, strlen(in), &sb, &error) == -1,
	    "%s accepted as %s", in, strbuf_str(&sb));
	ck_assert_ptr_nonnull(error);
	ck_assert(!imap_utf7_is_valid(in, strlen(in)));
	strbuf_free(&sb);
}
END_TEST

START_TEST(utf8_encode_bad)
{
	static const char *const bad8[] = {
		"\xc0\xaf",		/* overlong '/' */
		"\xe0\x80\xaf",		/* overlong */
		"\xed\xa0\x80",		/* surrogate */
		"\xf4\x90\x80\x80",	/* > U+10FFFF */
		"\xc3",			/* truncated */
		"a\xc3" "b",
		"\x80",			/* lone continuation */
		"\xff",
	};
	struct strbuf sb = STRBUF_INIT;
	const char *error;

	for (size_t i = 0; i < N_ELEMENTS(bad8); i++) {
		ck_assert_int_eq(imap_utf8_to_utf7(bad8[i], strlen(bad8[i]), &sb,
		    &error), -1);
		ck_assert(!imap_utf8_is_valid(bad8[i], strlen(bad8[i])));
	}
	ck_assert_int_eq(imap_utf8_to_utf7("a\0b", 3, &sb, &error), -1);
	ck_assert(!imap_utf8_is_valid("a\0b", 3));
	strbuf_free(&sb);
}
END_TEST

static void
put_cp(struct strbuf *sb, uint32_t cp)
{
	if (cp < 0x80) {
		strbuf_appendc(sb, (char)cp);
	} else if (cp < 0x800) {
		strbuf_appendc(sb, (char)(0xc0 | (cp >> 6)));
		strbuf_appendc(sb, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		strbuf_appendc(sb, (char)(0xe0 | (cp >> 12)));
		strbuf_appendc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_appendc(sb, (char)(0x80 | (cp & 0x3f)));
	} else {
		strbuf_appendc(sb, (char)(0xf0 | (cp >> 18)));
		strbuf_appendc(sb, (char)(0x80 | ((cp >> 12) & 0x3f)));
		strbuf_appendc(sb, (char)(0x80 | ((cp >> 6) & 0x3f)));
		strbuf_appendc(sb, (char)(0x80 | (cp & 0x3f)));
	}
}

/* Random UTF-8 strings round-trip, and the encoding is canonical (the
 * strict decoder accepts it). */
START_TEST(utf7_roundtrip_random)
{
	struct strbuf u8 = STRBUF_INIT, u7 = STRBUF_INIT, back = STRBUF_INIT;
	const char *error;

	srand(7);
	for (int round = 0; round < 2000; round++) {
		strbuf_reset(&u8);
		strbuf_reset(&u7);
		strbuf_reset(&back);
		int n = rand() % 12;
		for (int k = 0; k < n; k++) {
			uint32_t cp;
			switch (rand() % 4) {
			case 0: cp = 0x20 + (uint32_t)(rand() % 95); break;
			case 1: cp = 0x80 + (uint32_t)(rand() % 0x780); break;
			case 2: cp = 0x800 + (uint32_t)(rand() % 0xd000); break;
			default: cp = 0x10000 + (uint32_t)(rand() % 0x100000);
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = '&';
			put_cp(&u8, cp);
		}
		ck_assert_int_eq(imap_utf8_to_utf7(strbuf_str(&u8), u8.len, &u7,
		    &error), 0);
		for (size_t i = 0; i < u7.len; i++)
			ck_assert(u7.data[i] >= 0x20 && u7.data[i] <= 0x7e);
		ck_assert_msg(imap_utf7_to_utf8(strbuf_str(&u7), u7.len, &back,
		    &error) == 0, "%s: %s", strbuf_str(&u7), error);
		ck_assert_uint_eq(back.len, u8.len);
		ck_assert(memcmp(strbuf_str(&back), strbuf_str(&u8), u8.len) == 0);
	}
	strbuf_free(&u8);
	strbuf_free(&u7);
	strbuf_free(&back);
}
END_TEST

static const struct {
	const char *name;
	bool ok;
} names[] = {
	{ "INBOX", true },
	{ "a/b/c", true },
	{ "Entw\xc3\xbc" "rfe", true },
	{ "a.b", true },
	{ "...", true },
	{ "a~b", true },
	{ "[Gmail]/Sent", true },
	{ "", false },
	{ "/INBOX", false },
	{ "a/", false },
	{ "a//b", false },
	{ "..", false },
	{ "a/../b", false },
	{ "a/.", false },
	{ "./a", false },
	{ "~bob", false },
	{ "~", false },
	{ "a\rb", false },
	{ "a\nb", false },
	{ "a\tb", false },
	{ "a\x7f", false },
	{ "a*", false },
	{ "a%", false },
	{ "caf\xe9", false },	/* Latin-1, not UTF-8 */
};

START_TEST(mailbox_name_rules)
{
	const char *error = NULL;
	int r = imap_mailbox_name_validate(names[_i].name,
	    strlen(names[_i].name), &error);

	ck_assert_msg(r == (names[_i].ok ? 0 : -1), "%s: %d", names[_i].name, r);
	if (r < 0)
		ck_assert_ptr_nonnull(error);
}
END_TEST

START_TEST(mailbox_name_limits)
{
	struct strbuf sb = STRBUF_INIT;
	const char *error;

	ck_assert_int_eq(imap_mailbox_name_validate("a\0b", 3, &error), -1);
	for (int i = 0; i < IMAP_MAILBOX_NAME_MAX; i++)
		strbuf_appendc(&sb, 'x');
	ck_assert_int_eq(imap_mailbox_name_validate(sb.data, sb.len, &error), 0);
	strbuf_appendc(&sb, 'x');
	ck_assert_int_eq(imap_mailbox_name_validate(sb.data, sb.len, &error), -1);

	strbuf_reset(&sb);
	for (int i = 0; i < IMAP_MAILBOX_DEPTH_MAX; i++)
		strbuf_appends(&sb, i == 0 ? "a" : "/a");
	ck_assert_int_eq(imap_mailbox_name_validate(sb.data, sb.len, &error), 0);
	strbuf_appends(&sb, "/a");
	ck_assert_int_eq(imap_mailbox_name_validate(sb.data, sb.len, &error), -1);
	strbuf_free(&sb);
}
END_TEST

START_TEST(mailbox_from_wire)
{
	struct strbuf sb = STRBUF_INIT;
	const char *error;

	ck_assert(imap_mailbox_is_inbox("inBox", 5));
	ck_assert(!imap_mailbox_is_inbox("INBOX/a", 7));
	ck_assert(!imap_mailbox_is_inbox("INBOXa", 6));

	strbuf_appends(&sb, "pre:");
	ck_assert_int_eq(imap_mailbox_name_from_wire("inbox/Entw&APw-rfe", 18,
	    &sb, &error), 0);
	ck_assert_str_eq(sb.data, "pre:INBOX/Entw\xc3\xbc" "rfe");
	strbuf_reset(&sb);
	ck_assert_int_eq(imap_mailbox_name_from_wire("Inbox", 5, &sb, &error),
	    0);
	ck_assert_str_eq(sb.data, "INBOX");
	strbuf_reset(&sb);
	ck_assert_int_eq(imap_mailbox_name_from_wire("inboxes", 7, &sb, &error),
	    0);
	ck_assert_str_eq(sb.data, "inboxes");
	/* Failures leave dest as it was. */
	strbuf_reset(&sb);
	strbuf_appends(&sb, "keep");
	ck_assert_int_eq(imap_mailbox_name_from_wire("a&AGE-", 6, &sb, &error),
	    -1);
	ck_assert_str_eq(sb.data, "keep");
	ck_assert_int_eq(imap_mailbox_name_from_wire("../bob", 6, &sb, &error),
	    -1);
	ck_assert_int_eq(imap_mailbox_name_from_wire("~bob", 4, &sb, &error),
	    -1);
	ck_assert_int_eq(imap_mailbox_name_from_wire("/INBOX", 6, &sb, &error),
	    -1);
	/* Regression (fuzz): an empty name into an empty buffer. */
	struct strbuf empty = STRBUF_INIT;
	ck_assert_int_eq(imap_mailbox_name_from_wire("", 0, &empty, &error), -1);
	strbuf_free(&empty);
	/* A control character smuggled through the encoding. */
	ck_assert_int_eq(imap_mailbox_name_from_wire("a&AAo-", 6, &sb, &error),
	    -1);
	ck_assert_str_eq(sb.data, "keep");
	strbuf_free(&sb);
}
END_TEST

static const struct {
	const char *pat;
	const char *name;
	bool match;
} pats[] = {
	{ "*", "INBOX", true },
	{ "*", "a/b/c", true },
	{ "%", "a", true },
	{ "%", "a/b", false },
	{ "%/%", "a/b", true },
	{ "%/%", "a/b/c", false },
	{ "a/*", "a/b/c", true },
	{ "a/%", "a/b/c", false },
	{ "a/%", "a/b", true },
	{ "a/%", "a/", true },
	{ "a%", "a", true },
	{ "a%", "ab", true },
	{ "a*", "a/b", true },
	{ "a%", "a/b", false },
	{ "INBOX", "INBOX", true },
	{ "INBOX", "inbox", false },
	{ "INBOX", "INBOX/x", false },
	{ "", "", true },
	{ "", "a", false },
	{ "a", "", false },
	{ "%", "", true },
	{ "*%*%", "x/y", true },
	{ "%%%%/%%", "x/y", true },
	{ "*b", "aab", true },
	{ "*b", "aaba", false },
	{ "S*t", "Sent", true },
	{ "S%t", "S/t", false },
	{ "*/", "a/", true },
};

/* The naive recursive matcher, as a reference for small inputs. */
static bool
ref_match(const char *p, const char *n)
{
	if (*p == '\0')
		return *n == '\0';
	if (*p == '*' || *p == '%') {
		for (const char *q = n;; q++) {
			if (ref_match(p + 1, q))
				return true;
			if (*q == '\0' || (*p == '%' && *q == '/'))
				return false;
		}
	}
	return *p == *n && ref_match(p + 1, n + 1);
}

START_TEST(pattern_match_table)
{
	const char *p = pats[_i].pat, *n = pats[_i].name;

	ck_assert_msg(imap_mailbox_pattern_match(p, strlen(p), n, strlen(n)) ==
	    pats[_i].match, "%s ~ %s", p, n);
	ck_assert(ref_match(p, n) == pats[_i].match);
}
END_TEST

START_TEST(pattern_match_random_vs_reference)
{
	static const char alpha[] = "ab/*%";
	char p[10], n[10];

	srand(11);
	for (int round = 0; round < 20000; round++) {
		size_t pl = (size_t)rand() % 8, nl = (size_t)rand() % 8;
		for (size_t i = 0; i < pl; i++)
			p[i] = alpha[rand() % 5];
		for (size_t i = 0; i < nl; i++)
			n[i] = alpha[rand() % 3];
		p[pl] = n[nl] = '\0';
		ck_assert_msg(imap_mailbox_pattern_match(p, pl, n, nl) ==
		    ref_match(p, n), "%s ~ %s", p, n);
	}
}
END_TEST

/* The straightforward O(pattern x name) programme (the previous
 * implementation), as a reference for long inputs. */
static bool
ref_dp(const char *p, size_t m, const char *n, size_t nl)
{
	bool *row = xcalloc(nl + 1, sizeof(*row));
	bool *next = xcalloc(nl + 1, sizeof(*next));
	bool r;

	row[nl] = true;
	for (size_t i = m; i-- > 0;) {
		bool any = false;

		for (size_t j = nl + 1; j-- > 0;) {
			if (p[i] == '*') {
				any = any || row[j];
				next[j] = any;
			} else if (p[i] == '%') {
				if (j < nl && n[j] == '/')
					any = false;
				any = any || row[j];
				next[j] = any;
			} else {
				next[j] = j < nl && n[j] == p[i] && row[j + 1];
			}
		}
		bool *t = row;
		row = next;
		next = t;
	}
	r = row[0];
	free(row);
	free(next);
	return r;
}

/*
 * Regression (review): the matcher cost O(pattern x name) per mailbox, so
 * a crafted 800-byte LIST pattern against 5,000 mailboxes of 400 bytes
 * (both within limits) kept the event loop busy for 2.2 s per command.
 * Rows are bit sets now (0.15 s); here they are checked against the old
 * programme on names long enough to cross many 64-bit words.
 */
START_TEST(pattern_match_bitset_rows_vs_dp)
{
	static const char alpha[] = "ab/*%";
	char p[48], n[320];
	int matched = 0;

	srand(17);
	for (int round = 0; round < 4000; round++) {
		size_t pl = (size_t)rand() % 40, nl = (size_t)rand() % 300;
		/* Few wildcards and long names. */
		for (size_t i = 0; i < pl; i++)
			p[i] = alpha[rand() % (rand() % 4 == 0 ? 5 : 3)];
		for (size_t i = 0; i < nl; i++)
			n[i] = alpha[rand() % 100 < 10 ? 2 : rand() % 2];
		p[pl] = n[nl] = '\0';
		if (round % 2 == 1 && nl > 0) {
			/* A pattern made from the name: runs of it become
			 * wildcards, so many of these match. */
			pl = 0;
			for (size_t j = 0; j < nl && pl < sizeof(p) - 2;) {
				if (rand() % 8 == 0) {
					p[pl++] = rand() % 2 == 0 ? '*' : '%';
					j += (size_t)rand() % 60;
				} else {
					p[pl++] = n[j++];
				}
			}
			p[pl] = '\0';
			matched += imap_mailbox_pattern_match(p, pl, n, nl);
		}
		ck_assert_msg(imap_mailbox_pattern_match(p, pl, n, nl) ==
		    ref_dp(p, pl, n, nl), "%s ~ %s", p, n);
	}
	ck_assert_int_gt(matched, 100);
	/* Boundaries of the bit sets: names of 62..130 bytes. */
	for (size_t nl = 62; nl <= 130; nl++) {
		memset(n, 'a', nl);
		n[nl] = '\0';
		for (size_t k = 0; k < nl; k += 7)
			n[k] = '/';
		ck_assert(imap_mailbox_pattern_match("*", 1, n, nl));
		ck_assert(imap_mailbox_pattern_match("*a", 2, n, nl) ==
		    ref_dp("*a", 2, n, nl));
		ck_assert(imap_mailbox_pattern_match("%", 1, n, nl) ==
		    ref_dp("%", 1, n, nl));
		ck_assert(imap_mailbox_pattern_match("*/%a", 4, n, nl) ==
		    ref_dp("*/%a", 4, n, nl));
		ck_assert(imap_mailbox_pattern_match("%a/*", 4, n, nl) ==
		    ref_dp("%a/*", 4, n, nl));
	}
}
END_TEST

START_TEST(pattern_match_hostile)
{
	/* "*a*a*...*a*b" against 400 'a's: exponential for the naive
	 * matcher, a few hundred thousand steps here. */
	struct strbuf pat = STRBUF_INIT, name = STRBUF_INIT;

	for (int i = 0; i < 30000; i++)
		strbuf_appends(&pat, i % 2 == 0 ? "*" : "%a");
	strbuf_appends(&pat, "*b");
	for (int i = 0; i < IMAP_MAILBOX_NAME_MAX; i++)
		strbuf_appendc(&name, 'a');
	ck_assert(!imap_mailbox_pattern_match(pat.data, pat.len, name.data,
	    name.len));
	strbuf_reset(&pat);
	for (int i = 0; i < 200; i++)
		strbuf_appends(&pat, "*a");
	strbuf_appends(&pat, "*");
	ck_assert(imap_mailbox_pattern_match(pat.data, pat.len, name.data,
	    name.len));
	strbuf_free(&pat);
	strbuf_free(&name);
}
END_TEST

static Suite *
utf7_suite(void)
{
	Suite *s = suite_create("imap_utf7");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, utf7_decode_encode_good, 0, (int)N_ELEMENTS(good));
	tcase_add_loop_test(tc, utf7_decode_bad, 0, (int)N_ELEMENTS(bad7));
	tcase_add_test(tc, utf8_encode_bad);
	tcase_add_test(tc, utf7_roundtrip_random);
	tcase_add_loop_test(tc, mailbox_name_rules, 0, (int)N_ELEMENTS(names));
	tcase_add_test(tc, mailbox_name_limits);
	tcase_add_test(tc, mailbox_from_wire);
	tcase_add_loop_test(tc, pattern_match_table, 0, (int)N_ELEMENTS(pats));
	tcase_add_test(tc, pattern_match_random_vs_reference);
	tcase_add_test(tc, pattern_match_hostile);
	tcase_add_test(tc, pattern_match_bitset_rows_vs_dp);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(utf7_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
