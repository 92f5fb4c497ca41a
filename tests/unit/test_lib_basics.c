/* Check suite for lib/: strbuf, arena, strnum, log_escape. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "strbuf.h"
#include "strnum.h"
#include "username.h"
#include "xmalloc.h"

START_TEST(strbuf_grows_and_formats)
{
	struct strbuf sb = STRBUF_INIT;

	ck_assert_str_eq(strbuf_str(&sb), "");
	for (int i = 0; i < 1000; i++)
		strbuf_appendf(&sb, "%d,", i);
	ck_assert_uint_eq(strlen(sb.data), sb.len);
	ck_assert(strncmp(sb.data, "0,1,2,", 6) == 0);
	strbuf_truncate(&sb, 2);
	ck_assert_str_eq(sb.data, "0,");
	strbuf_append(&sb, "a\0b", 3);
	ck_assert_uint_eq(sb.len, 5);
	ck_assert_int_eq(sb.data[5], '\0');
	size_t len;
	char *d = strbuf_detach(&sb, &len);
	ck_assert_uint_eq(len, 5);
	ck_assert_ptr_null(sb.data);
	free(d);
	strbuf_free(&sb);
}
END_TEST

START_TEST(strbuf_decimal)
{
	struct strbuf sb = STRBUF_INIT;
	const uint64_t v[] = { 0, 7, 10, 4294967295u, 18446744073709551615u };
	char want[32];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		strbuf_reset(&sb);
		strbuf_appendc(&sb, 'x');
		strbuf_append_u64(&sb, v[i]);
		snprintf(want, sizeof(want), "x%llu", (unsigned long long)v[i]);
		ck_assert_str_eq(strbuf_str(&sb), want);
	}
	strbuf_free(&sb);
}
END_TEST

START_TEST(arena_alloc_reset)
{
	struct arena *a = arena_new(64);
	char *big;

	for (int i = 0; i < 100; i++) {
		char *p = arena_alloc(a, 10);
		ck_assert(((uintptr_t)p & 15) == 0);
		memset(p, 'x', 10);
	}
	big = arena_alloc(a, 10000);
	memset(big, 'y', 10000);
	ck_assert_uint_ge(arena_used(a), 10000 + 100 * 16);
	ck_assert_str_eq(arena_strndup(a, "hello world", 5), "hello");
	arena_reset(a);
	ck_assert_uint_eq(arena_used(a), 0);
	ck_assert_str_eq(arena_strdup(a, "again"), "again");
	arena_free(&a);
	ck_assert_ptr_null(a);
	arena_free(&a);
}
END_TEST

static const struct {
	const char *in;
	int rc;
	uint64_t val;
} u64_cases[] = {
	{ "0", 0, 0 },
	{ "007", 0, 7 },
	{ "4294967295", 0, 4294967295u },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "18446744073709551616", -1, 0 },
	{ "", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ " 1", -1, 0 },
	{ "1a", -1, 0 },
};

START_TEST(strnum_u64_table)
{
	uint64_t v = 12345;
	int rc = str_to_u64z(u64_cases[_i].in, &v);

	ck_assert_int_eq(rc, u64_cases[_i].rc);
	if (rc == 0)
		ck_assert_uint_eq(v, u64_cases[_i].val);
}
END_TEST

START_TEST(strnum_u32_limits)
{
	uint32_t v;

	ck_assert_int_eq(str_to_u32z("4294967295", &v), 0);
	ck_assert_uint_eq(v, 4294967295u);
	ck_assert_int_eq(str_to_u32z("4294967296", &v), -1);
	ck_assert(str_ieq("UiDl", 4, "uidl"));
	ck_assert(!str_ieq("UiDl", 3, "uidl"));
	ck_assert(!str_has_ctl(""));
	ck_assert(!str_has_ctl("Ann O'Neil \xc3\xa9"));
	ck_assert(str_has_ctl("a\r\nb"));
	ck_assert(str_has_ctl("tab\there"));
	ck_assert(str_has_ctl("del\x7f"));
}
END_TEST

START_TEST(log_escape_hostile_bytes)
{
	char out[64];
	char big[1000];

	log_escape(out, sizeof(out), "ok \"q\"\r\n\0\xff", 10);
	ck_assert_str_eq(out, "ok \\x22q\\x22\\x0d\\x0a\\x00\\xff");
	memset(big, 'A', sizeof(big));
	log_escape(out, sizeof(out), big, sizeof(big));
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
	ck_assert(strcmp(out + strlen(out) - 3, "...") == 0);
	log_escape(out, sizeof(out), "", 0);
	ck_assert_str_eq(out, "");
}
END_TEST

/* Issue 18: a log field's value is bare or quoted, never ambiguous. */
START_TEST(log_quote_values)
{
	char out[32];
	char big[100];

	ck_assert_str_eq(log_quote(out, sizeof(out), "alice@example.org"),
	    "alice@example.org");
	ck_assert_str_eq(log_quote(out, sizeof(out), "Ann Lee"),
	    "\"Ann Lee\"");
	ck_assert_str_eq(log_quote(out, sizeof(out), "a\"b\\c"),
	    "\"a\\x22b\\x5cc\"");
	ck_assert_str_eq(log_quote(out, sizeof(out), "k=v"), "\"k=v\"");
	ck_assert_str_eq(log_quote(out, sizeof(out), ""), "\"\"");
	ck_assert_str_eq(log_quote(out, sizeof(out), "b\xc3\xa9" "a"),
	    "\"b\\xc3\\xa9a\"");
	ck_assert_str_eq(log_quote(out, sizeof(out), "x\ny"),
	    "\"x\\x0ay\"");
	/* too long to stay bare: quoted, cut with "...", closed */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_quote(out, sizeof(out), big);
	ck_assert_uint_eq(strlen(out), sizeof(out) - 1);
	ck_assert_str_eq(out + strlen(out) - 4, "...\"");
	ck_assert_int_eq(out[0], '"');
}
END_TEST

static const struct {
	const char *in;
	bool fold_local;
	const char *out;
} canon_cases[] = {
	{ "Alice", true, "alice" },
	{ "Alice", false, "Alice" },
	{ "Erin@Example.ORG", true, "erin@example.org" },
	{ "Erin@Example.ORG", false, "Erin@example.org" },
	/* the domain is what follows the last '@' */
	{ "\"A@B\"@Host.Example", false, "\"A@B\"@host.example" },
	{ "bob@example.org", true, "bob@example.org" },
	/* Unicode full case folding, in NFC */
	{ "J\xc3\x9cRG@X.DE", true, "j\xc3\xbcrg@x.de" },
	{ "JU\xcc\x88RG@X.DE", true, "j\xc3\xbcrg@x.de" },	/* U+0308 */
	{ "Stra\xc3\x9f" "e", true, "strasse" },
	{ "\xc3\x89MILE@B\xc3\x9c" "CHER.DE", false,
	    "\xc3\x89MILE@b\xc3\xbc" "cher.de" },
	{ "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91", true,
	    "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1" },	/* ΣΟΦΙΑ */
	/* not UTF-8: ASCII letters fold, other bytes stay */
	{ "A\xff" "B", true, "a\xff" "b" },
	{ "Z9_@[", true, "z9_@[" },
	{ "@", true, "@" },
};

START_TEST(username_canon_table)
{
	char buf[64];
	char *dup;

	snprintf(buf, sizeof(buf), "%s", canon_cases[_i].out);
	ck_assert(username_is_canon(buf, canon_cases[_i].fold_local));
	ck_assert_uint_eq(username_is_canon(canon_cases[_i].in,
	    canon_cases[_i].fold_local),
	    strcmp(canon_cases[_i].in, canon_cases[_i].out) == 0);
	dup = username_canon_dup(canon_cases[_i].in,
	    canon_cases[_i].fold_local);
	ck_assert_str_eq(dup, canon_cases[_i].out);
	free(dup);
}
END_TEST

static Suite *
lib_suite(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, strbuf_grows_and_formats);
	tcase_add_test(tc, strbuf_decimal);
	tcase_add_test(tc, arena_alloc_reset);
	tcase_add_loop_test(tc, strnum_u64_table, 0, N_ELEMENTS(u64_cases));
	tcase_add_test(tc, strnum_u32_limits);
	tcase_add_test(tc, log_escape_hostile_bytes);
	tcase_add_test(tc, log_quote_values);
	tcase_add_loop_test(tc, username_canon_table, 0,
	    N_ELEMENTS(canon_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(lib_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
