/* Unit tests of the piecewise Content-Transfer-Encoding decoder that
 * FETCH BINARY streams with: every piece size gives the bytes the whole
 * decoders give, sizes and NUL detection agree. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "store/mail-decode.h"
#include "strbuf.h"

/* Decodes in piecewise with pieces of about max_out into out. */
static void
piecewise(enum mail_cte cte, const char *in, size_t len, size_t max_out,
    struct strbuf *out)
{
	struct mail_decoder d;
	size_t pos = 0;
	int guard = 0;

	mail_decoder_init(&d, cte);
	while (pos < len) {
		size_t used = mail_decoder_step(&d, in + pos, len - pos,
		    max_out, out);

		ck_assert_uint_le(used, len - pos);
		/* progress every call */
		ck_assert(used > 0 || ++guard < 2);
		pos += used;
	}
}

static void
whole(enum mail_cte cte, const char *in, size_t len, struct strbuf *out)
{
	if (cte == MAIL_CTE_BASE64)
		mail_decode_base64(in, len, out);
	else if (cte == MAIL_CTE_QP)
		mail_decode_qp(in, len, out);
	else
		strbuf_append(out, in, len);
}

static void
check_all_pieces(enum mail_cte cte, const char *in, size_t len)
{
	struct strbuf ref = STRBUF_INIT, got = STRBUF_INIT, scratch =
	    STRBUF_INIT;
	static const size_t sizes[] = { 1, 2, 3, 4, 5, 7, 64, 1000, 65536 };
	bool nul;

	whole(cte, in, len, &ref);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		strbuf_reset(&got);
		piecewise(cte, in, len, sizes[k], &got);
		ck_assert_uint_eq(got.len, ref.len);
		ck_assert(ref.len == 0 || memcmp(got.data, ref.data, ref.len) == 0);
	}
	ck_assert_uint_eq(mail_decoded_size(cte, in, len, 0, UINT64_MAX, &nul,
	    &scratch), ref.len);
	ck_assert(nul == (ref.len > 0 && memchr(ref.data, 0, ref.len) != NULL));
	/* NUL search limited to a decoded range */
	for (size_t a = 0; a <= ref.len && a < 40; a += 3) {
		bool expect = false;

		for (size_t i = a; i < a + 5 && i < ref.len; i++)
			expect |= ref.data[i] == '\0';
		(void)mail_decoded_size(cte, in, len, a, a + 5, &nul, &scratch);
		ck_assert(nul == expect);
	}
	strbuf_free(&ref);
	strbuf_free(&got);
	strbuf_free(&scratch);
}

START_TEST(decode_cte_names)
{
	ck_assert_int_eq(mail_cte_parse("BASE64"), MAIL_CTE_BASE64);
	ck_assert_int_eq(mail_cte_parse("Quoted-Printable"), MAIL_CTE_QP);
	ck_assert_int_eq(mail_cte_parse("7bit"), MAIL_CTE_IDENTITY);
	ck_assert_int_eq(mail_cte_parse("8BIT"), MAIL_CTE_IDENTITY);
	ck_assert_int_eq(mail_cte_parse("binary"), MAIL_CTE_IDENTITY);
	ck_assert_int_eq(mail_cte_parse(NULL), MAIL_CTE_IDENTITY);
	ck_assert_int_eq(mail_cte_parse("x-uuencode"), MAIL_CTE_UNKNOWN);
}
END_TEST

START_TEST(decode_table)
{
	static const struct {
		enum mail_cte cte;
		const char *in;
	} cases[] = {
		{ MAIL_CTE_BASE64, "" },
		{ MAIL_CTE_BASE64, "QUJD" },
		{ MAIL_CTE_BASE64, "AAEC\r\nAwQF\r\nBgc=\r\n" },
		{ MAIL_CTE_BASE64, "AA\r\nEC\r\nA w Q F !! Bg" },
		{ MAIL_CTE_BASE64, "QUJD=RUZH" },	/* '=' ends it */
		{ MAIL_CTE_BASE64, "QQ==" },
		{ MAIL_CTE_QP, "" },
		{ MAIL_CTE_QP, "a=3Db=00c\r\nsoft=\r\nbreak \r\n" },
		{ MAIL_CTE_QP, "trail  \t\r\nx=\r\n=4" },
		{ MAIL_CTE_QP, "bad =ZZ and =\r\n" },
		{ MAIL_CTE_IDENTITY, "a\0b" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_all_pieces(cases[i].cte, cases[i].in,
		    strlen(cases[i].in));
	check_all_pieces(MAIL_CTE_IDENTITY, "a\0b\0", 4);
}
END_TEST

/* Random text over the characters that matter, long lines included. */
START_TEST(decode_random)
{
	static const char alpha[] = "AQw+/=\r\n \t=3D0F=\r\nxyz==";
	unsigned seed = 12345;

	for (int round = 0; round < 300; round++) {
		size_t len = (size_t)(round % 10 == 0 ? 70000 : round * 7);
		char *in = malloc(len + 1);

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
			if (round % 10 == 0 && i % 3 != 0)
				in[i] = 'A' + (char)(i % 26);
		}
		check_all_pieces(MAIL_CTE_BASE64, in, len);
		check_all_pieces(MAIL_CTE_QP, in, len);
		free(in);
	}
}
END_TEST

/* A QP line over MAIL_DECODE_QP_LINE_MAX is cut outside escapes. */
START_TEST(decode_qp_long_line)
{
	size_t len = 3 * MAIL_DECODE_QP_LINE_MAX + 11;
	char *in = malloc(len);

	for (size_t i = 0; i < len; i += 3)
		memcpy(in + i, "=41", len - i < 3 ? len - i : 3);
	check_all_pieces(MAIL_CTE_QP, in, len);
	free(in);
}
END_TEST

static Suite *
decode_suite(void)
{
	Suite *s = suite_create("store_maildecode");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, decode_cte_names);
	tcase_add_test(tc, decode_table);
	tcase_add_test(tc, decode_random);
	tcase_add_test(tc, decode_qp_long_line);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(decode_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
