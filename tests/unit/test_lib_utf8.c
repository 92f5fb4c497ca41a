/* Check suite for lib/utf8: strict decoding and encoding of code points. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "utf8.h"
#include "xmalloc.h"

static const struct {
	const char *in;
	size_t len;		/* expected sequence length, 0 = invalid */
	uint32_t cp;
} decode_cases[] = {
	{ "A", 1, 0x41 },
	{ "\x7f", 1, 0x7f },
	{ "\xc2\x80", 2, 0x80 },
	{ "\xc3\xa9xyz", 2, 0xe9 },
	{ "\xdf\xbf", 2, 0x7ff },
	{ "\xe0\xa0\x80", 3, 0x800 },
	{ "\xe2\x82\xac", 3, 0x20ac },
	{ "\xef\xbf\xbf", 3, 0xffff },
	{ "\xf0\x90\x80\x80", 4, 0x10000 },
	{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
	{ "\x80", 0, 0 },		/* lone continuation byte */
	{ "\xc0\xaf", 0, 0 },		/* overlong '/' */
	{ "\xc1\xbf", 0, 0 },		/* overlong */
	{ "\xe0\x9f\xbf", 0, 0 },	/* overlong 3-byte */
	{ "\xf0\x8f\xbf\xbf", 0, 0 },	/* overlong 4-byte */
	{ "\xed\xa0\x80", 0, 0 },	/* surrogate U+D800 */
	{ "\xed\xbf\xbf", 0, 0 },	/* surrogate U+DFFF */
	{ "\xf4\x90\x80\x80", 0, 0 },	/* above U+10FFFF */
	{ "\xf5\x80\x80\x80", 0, 0 },	/* bad lead byte */
	{ "\xff", 0, 0 },
	{ "\xc3", 0, 0 },		/* truncated */
	{ "\xe2\x82", 0, 0 },		/* truncated */
	{ "\xc3\x41", 0, 0 },		/* bad continuation */
	{ "\xe2\x82\x41", 0, 0 },
};

START_TEST(utf8_decode_table)
{
	const unsigned char *s = (const unsigned char *)decode_cases[_i].in;
	uint32_t cp = 0xdeadbeef;
	size_t n = utf8_decode(s, strlen(decode_cases[_i].in), &cp);

	ck_assert_msg(n == decode_cases[_i].len, "case %d: length %zu",
	    _i, n);
	if (n > 0)
		ck_assert_uint_eq(cp, decode_cases[_i].cp);
	else
		ck_assert_uint_eq(cp, 0xdeadbeef);
}
END_TEST

START_TEST(utf8_decode_respects_len)
{
	uint32_t cp;

	/* The bytes are there, but the slice ends before them. */
	ck_assert_uint_eq(utf8_decode((const unsigned char *)"\xe2\x82\xac",
	    2, &cp), 0);
	ck_assert_uint_eq(utf8_decode((const unsigned char *)"A", 0, &cp), 0);
}
END_TEST

START_TEST(utf8_put_round_trips)
{
	static const uint32_t cps[] = {
		0, 0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xffff,
		0x10000, 0x1f600, 0x10ffff,
	};
	struct strbuf sb = STRBUF_INIT;
	static const size_t lens[] = { 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4 };

	for (size_t i = 0; i < N_ELEMENTS(cps); i++) {
		uint32_t cp;

		strbuf_reset(&sb);
		utf8_put(&sb, cps[i]);
		ck_assert_uint_eq(sb.len, lens[i]);
		ck_assert_uint_eq(utf8_decode((const unsigned char *)sb.data,
		    sb.len, &cp), lens[i]);
		ck_assert_uint_eq(cp, cps[i]);
	}
	strbuf_reset(&sb);
	utf8_put(&sb, 0x20ac);
	ck_assert_str_eq(strbuf_str(&sb), "\xe2\x82\xac");
	strbuf_free(&sb);
}
END_TEST

static Suite *
utf8_suite(void)
{
	Suite *s = suite_create("lib_utf8");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, utf8_decode_table, 0,
	    (int)N_ELEMENTS(decode_cases));
	tcase_add_test(tc, utf8_decode_respects_len);
	tcase_add_test(tc, utf8_put_round_trips);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
