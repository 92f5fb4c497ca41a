/* Check suite for imap-frontend/imap-seqset: parse, resolve, membership,
 * building and formatting of sequence sets. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-frontend/imap-seqset.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Parses in, resolves against max, returns the compact form or "ERR". */
static char *
resolve_str(const char *in, uint32_t max)
{
	struct imap_seqset_spec spec;
	struct imap_seqset set = { 0 };
	struct strbuf sb = STRBUF_INIT;
	const char *error = NULL;

	if (imap_seqset_parse(in, strlen(in), &spec, &error) < 0) {
		ck_assert_ptr_nonnull(error);
		ck_assert_uint_eq(spec.fixed.count, 0);
		ck_assert(!spec.has_star);
		strbuf_appends(&sb, "ERR");
		return strbuf_detach(&sb, NULL);
	}
	imap_seqset_resolve(&spec, max, &set);
	imap_seqset_format(&set, &sb);
	/* spec_contains agrees with the resolved set at the edges. */
	for (uint32_t n = 1; n <= 20; n++)
		ck_assert(imap_seqset_spec_contains(&spec, max, n) ==
		    imap_seqset_contains(&set, n));
	ck_assert(imap_seqset_spec_contains(&spec, max, UINT32_MAX) ==
	    imap_seqset_contains(&set, UINT32_MAX));
	imap_seqset_free(&set);
	imap_seqset_spec_free(&spec);
	strbuf_appends(&sb, "");
	return strbuf_detach(&sb, NULL);
}

static const struct {
	const char *in;
	uint32_t max;
	const char *out;
} cases[] = {
	{ "1", 10, "1" },
	{ "1:3", 10, "1:3" },
	{ "3:1", 10, "1:3" },
	{ "1,2,3", 10, "1:3" },
	{ "5,1,3,2,4", 10, "1:5" },
	{ "1:3,2:6,8", 10, "1:6,8" },
	{ "8,1:3,4", 10, "1:4,8" },
	{ "*", 10, "10" },
	{ "*:*", 10, "10" },
	{ "1:*", 10, "1:10" },
	{ "*:1", 10, "1:10" },
	{ "5:*", 3, "3:5" },		/* UID n:* above max includes max */
	{ "*:5", 3, "3:5" },
	{ "*", 0, "" },			/* empty mailbox */
	{ "5:*", 0, "1:5" },
	{ "2,4:*,7:*", 20, "2,4:20" },
	{ "4294967295", 10, "4294967295" },
	{ "1:4294967295", 10, "1:4294967295" },
	{ "4294967295:*", 10, "10:4294967295" },
	{ "4294967294,4294967295", 0, "4294967294:4294967295" },
	{ "0", 10, "ERR" },
	{ "0:5", 10, "ERR" },
	{ "5:0", 10, "ERR" },
	{ "4294967296", 10, "ERR" },
	{ "99999999999999999999", 10, "ERR" },
	{ "", 10, "ERR" },
	{ ",", 10, "ERR" },
	{ "1,", 10, "ERR" },
	{ ",1", 10, "ERR" },
	{ "1,,2", 10, "ERR" },
	{ "1:", 10, "ERR" },
	{ ":1", 10, "ERR" },
	{ "1:2:3", 10, "ERR" },
	{ "-1", 10, "ERR" },
	{ "+1", 10, "ERR" },
	{ " 1", 10, "ERR" },
	{ "1 ", 10, "ERR" },
	{ "$", 10, "ERR" },
	{ "**", 10, "ERR" },
	{ "1a", 10, "ERR" },
};

START_TEST(seqset_parse_table)
{
	char *got = resolve_str(cases[_i].in, cases[_i].max);

	ck_assert_msg(strcmp(got, cases[_i].out) == 0, "%s (max %u): got %s",
	    cases[_i].in, cases[_i].max, got);
	free(got);
}
END_TEST

START_TEST(seqset_spec_keeps_star)
{
	struct imap_seqset_spec spec;
	struct imap_seqset set = { 0 };
	const char *error;

	ck_assert_int_eq(imap_seqset_parse("3,7:*", 5, &spec, &error), 0);
	ck_assert(spec.has_star);
	ck_assert_uint_eq(spec.fixed.count, 1);
	/* The same spec re-resolved as the mailbox grows. */
	imap_seqset_resolve(&spec, 5, &set);
	ck_assert_uint_eq(imap_seqset_count(&set), 4);	/* 3,5,6,7 */
	ck_assert(imap_seqset_contains(&set, 5));
	ck_assert(!imap_seqset_contains(&set, 4));
	imap_seqset_resolve(&spec, 100, &set);
	ck_assert_uint_eq(imap_seqset_count(&set), 1 + 94);
	ck_assert_uint_eq(imap_seqset_max(&set), 100);
	ck_assert_uint_eq(imap_seqset_min(&set), 3);
	ck_assert(!imap_seqset_spec_contains(&spec, 100, 101));
	ck_assert(imap_seqset_spec_contains(&spec, 100, 100));
	imap_seqset_free(&set);
	imap_seqset_spec_free(&spec);
	imap_seqset_spec_free(&spec);
	imap_seqset_free(&set);
}
END_TEST

START_TEST(seqset_100000_elements)
{
	struct strbuf in = STRBUF_INIT;
	struct imap_seqset_spec spec;
	const char *error;

	/* Descending odd numbers: the worst order for naive insertion. */
	for (uint32_t i = 0; i < 100000; i++)
		strbuf_appendf(&in, "%s%u", i == 0 ? "" : ",",
		    2 * (100000 - i) - 1);
	ck_assert_int_eq(imap_seqset_parse(in.data, in.len, &spec, &error), 0);
	ck_assert_uint_eq(spec.fixed.count, 100000);
	ck_assert_uint_eq(imap_seqset_count(&spec.fixed), 100000);
	for (uint32_t n = 1; n <= 200001; n++)
		ck_assert(imap_seqset_contains(&spec.fixed, n) == (n % 2 == 1 &&
		    n < 200000));
	imap_seqset_spec_free(&spec);

	/* The same numbers as ranges merge into one. */
	strbuf_reset(&in);
	for (uint32_t i = 0; i < 100000; i++)
		strbuf_appendf(&in, "%s%u", i == 0 ? "" : ",", 100000 - i);
	ck_assert_int_eq(imap_seqset_parse(in.data, in.len, &spec, &error), 0);
	ck_assert_uint_eq(spec.fixed.count, 1);
	ck_assert_uint_eq(spec.fixed.ranges[0].lo, 1);
	ck_assert_uint_eq(spec.fixed.ranges[0].hi, 100000);
	imap_seqset_spec_free(&spec);
	strbuf_free(&in);
}
END_TEST

START_TEST(seqset_build_and_format)
{
	struct imap_seqset set;
	struct imap_seqset other = { 0 };
	struct strbuf sb = STRBUF_INIT;

	imap_seqset_init(&set);
	ck_assert(imap_seqset_is_empty(&set));
	ck_assert_uint_eq(imap_seqset_min(&set), 0);
	ck_assert_uint_eq(imap_seqset_max(&set), 0);
	ck_assert(!imap_seqset_contains(&set, 1));
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(strbuf_str(&sb), "");

	/* Ascending appends (COPYUID). */
	imap_seqset_add(&set, 1);
	imap_seqset_add(&set, 2);
	imap_seqset_add(&set, 3);
	imap_seqset_add(&set, 5);
	imap_seqset_add(&set, 7);
	imap_seqset_add(&set, 8);
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(sb.data, "1:3,5,7:8");
	/* Out of order, bridging, overlapping, 0 ignored. */
	imap_seqset_add(&set, 4);
	imap_seqset_add_range(&set, 20, 10);
	imap_seqset_add_range(&set, 0, 0);
	imap_seqset_add(&set, 30);
	imap_seqset_add(&set, 25);
	imap_seqset_add_range(&set, 24, 26);
	strbuf_reset(&sb);
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(sb.data, "1:5,7:8,10:20,24:26,30");
	imap_seqset_add_range(&set, 6, 29);
	strbuf_reset(&sb);
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(sb.data, "1:30");
	imap_seqset_add_range(&set, 0, 2);
	ck_assert_uint_eq(set.count, 1);
	imap_seqset_add_range(&set, UINT32_MAX, UINT32_MAX - 1);
	imap_seqset_add(&set, 32);
	strbuf_reset(&sb);
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(sb.data, "1:30,32,4294967294:4294967295");
	ck_assert_uint_eq(imap_seqset_count(&set), 33);
	ck_assert(imap_seqset_contains(&set, UINT32_MAX));
	ck_assert(!imap_seqset_contains(&set, 31));
	ck_assert(!imap_seqset_contains(&set, 0));

	imap_seqset_add_range(&other, 31, 31);
	imap_seqset_add_range(&other, 33, 40);
	imap_seqset_merge(&set, &other);
	strbuf_reset(&sb);
	imap_seqset_format(&set, &sb);
	ck_assert_str_eq(sb.data, "1:40,4294967294:4294967295");
	imap_seqset_clear(&set);
	ck_assert(imap_seqset_is_empty(&set));
	imap_seqset_add_range(&set, 0, UINT32_MAX);
	ck_assert_uint_eq(imap_seqset_count(&set), UINT32_MAX);
	imap_seqset_free(&set);
	imap_seqset_free(&other);
	strbuf_free(&sb);
}
END_TEST

/* Random adds against a bitmap model. */
START_TEST(seqset_random_model)
{
	enum { N = 300 };
	bool model[N + 2];
	struct imap_seqset set = { 0 };

	srand(99);
	for (int round = 0; round < 200; round++) {
		memset(model, 0, sizeof(model));
		imap_seqset_clear(&set);
		int adds = 1 + rand() % 30;
		for (int k = 0; k < adds; k++) {
			uint32_t a = (uint32_t)(rand() % N), b = a +
			    (uint32_t)(rand() % 20);
			if (rand() % 2) {
				uint32_t t = a;
				a = b;
				b = t;
			}
			imap_seqset_add_range(&set, a, b);
			uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
			for (uint32_t n = lo; n <= hi && n <= N; n++)
				if (n > 0)
					model[n] = true;
		}
		for (uint32_t n = 0; n <= N; n++)
			ck_assert(imap_seqset_contains(&set, n) == model[n]);
		for (size_t r = 1; r < set.count; r++)
			ck_assert((uint64_t)set.ranges[r - 1].hi + 1 <
			    set.ranges[r].lo);
	}
	imap_seqset_free(&set);
}
END_TEST

static Suite *
seqset_suite(void)
{
	Suite *s = suite_create("imap_seqset");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, seqset_parse_table, 0, (int)N_ELEMENTS(cases));
	tcase_add_test(tc, seqset_spec_keeps_star);
	tcase_add_test(tc, seqset_100000_elements);
	tcase_add_test(tc, seqset_build_and_format);
	tcase_add_test(tc, seqset_random_model);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(seqset_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
