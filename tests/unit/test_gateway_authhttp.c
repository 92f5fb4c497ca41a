/* Check suite for gateway/auth-http-proto: nginx's %XX escaping of
 * Auth-User and Auth-Pass, good and bad, and its bounds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/auth-http-proto.h"
#include "xmalloc.h"

static const struct {
	const char *in;
	const char *out;	/* NULL: refused */
} cases[] = {
	{ "alice", "alice" },
	{ "bob%20pw%25", "bob pw%" },
	{ "%41%62", "Ab" },
	{ "%c3%a9t%C3%A9", "\xc3\xa9t\xc3\xa9" },
	{ "a+b", "a+b" },		/* no form encoding: + stays */
	{ "%0d%0a", "\r\n" },		/* nginx escapes them; we take them */
	{ "", NULL },
	{ "%", NULL },
	{ "%4", NULL },
	{ "a%4", NULL },
	{ "%zz", NULL },
	{ "%4g", NULL },
	{ "%00", NULL },		/* an escaped NUL would cut the name */
	{ "x%00y", NULL },
};

START_TEST(unescape_table)
{
	char *r = auth_http_unescape(cases[_i].in, 64);

	if (cases[_i].out == NULL) {
		ck_assert_msg(r == NULL, "%s", cases[_i].in);
	} else {
		ck_assert_msg(r != NULL, "%s", cases[_i].in);
		ck_assert_str_eq(r, cases[_i].out);
	}
	free(r);
}
END_TEST

START_TEST(unescape_bounds)
{
	char in[400];
	char *r;

	/* max bytes out: fine; one more: refused, escaped or not */
	memset(in, 'a', 10);
	in[10] = '\0';
	r = auth_http_unescape(in, 10);
	ck_assert(r != NULL);
	free(r);
	ck_assert(auth_http_unescape(in, 9) == NULL);
	for (int i = 0; i < 10; i++)
		memcpy(in + 3 * i, "%41", 3);
	in[30] = '\0';
	r = auth_http_unescape(in, 10);
	ck_assert(r != NULL);
	ck_assert_uint_eq(strlen(r), 10);
	free(r);
	ck_assert(auth_http_unescape(in, 9) == NULL);
	/* a long input is refused before it is copied */
	memset(in, 'b', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	ck_assert(auth_http_unescape(in, 100) == NULL);
}
END_TEST

static Suite *
authhttp_suite(void)
{
	Suite *s = suite_create("gateway_authhttp");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, unescape_table, 0, (int)N_ELEMENTS(cases));
	tcase_add_test(tc, unescape_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(authhttp_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
