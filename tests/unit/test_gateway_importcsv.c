/* Check suite for gateway/import-csv: the byte-order mark, delimiter and
 * header detection, column mapping, and the refusals that name what is
 * wrong (issue 18: Excel's "CSV UTF-8" and ';'-separated files). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/import-csv.h"

static void
detect_ok(const char *line, struct import_csv_format *fmt)
{
	char err[256] = "";

	ck_assert_msg(import_csv_detect(line, strlen(line), fmt, err,
	    sizeof(err)) == 0, "%s: %s", line, err);
}

START_TEST(bom)
{
	ck_assert_uint_eq(import_csv_bom("\xef\xbb\xbfuser,", 8), 3);
	ck_assert_uint_eq(import_csv_bom("user,", 5), 0);
	ck_assert_uint_eq(import_csv_bom("\xef\xbb", 2), 0);
}
END_TEST

struct detect_case {
	const char *line;
	char delim;
	bool header;
	size_t columns;
};

static const struct detect_case detect_cases[] = {
	{ "user,user_password,host", ',', true, 3 },
	{ "user;user_password;host;port", ';', true, 4 },
	{ "User\tPassword\tLogin", '\t', true, 3 },
	{ " USER ; user_password ", ';', true, 2 },
	{ "\"user\",\"host\"", ',', true, 2 },
	{ "user", ',', true, 1 },
	{ "alice,pw,pop.example.org,995,pop3s,alice,p,,,,", ',', false, IMPORT_COL_COUNT },
	{ "alice;pw;pop.example.org;995", ';', false, IMPORT_COL_COUNT },
	/* a comma inside quotes does not count */
	{ "alice;\"p,w\";h", ';', false, IMPORT_COL_COUNT },
	/* more commas than semicolons: commas */
	{ "alice,p;w,h,1", ',', false, IMPORT_COL_COUNT },
	{ "alice", ',', false, IMPORT_COL_COUNT },
	/* "username" is a user called so, not a header */
	{ "username,pw", ',', false, IMPORT_COL_COUNT },
};

START_TEST(detect)
{
	const struct detect_case *dc = &detect_cases[_i];
	struct import_csv_format fmt;

	detect_ok(dc->line, &fmt);
	ck_assert_int_eq(fmt.delim, dc->delim);
	ck_assert_int_eq(fmt.header, dc->header);
	ck_assert_uint_eq(fmt.columns, dc->columns);
}
END_TEST

START_TEST(header_refusals)
{
	struct import_csv_format fmt;
	char err[256];
	const char *l1 = "user,pasword";
	const char *l2 = "user,host,HOST";
	const char *l3 = "user,\"host";

	ck_assert_int_eq(import_csv_detect(l1, strlen(l1), &fmt, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "header: unknown column \"pasword\" (the "
	    "columns are " IMPORT_COLUMNS ")");
	ck_assert_int_eq(import_csv_detect(l2, strlen(l2), &fmt, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "header: column host appears twice");
	/* a broken first line is no header: its data line reports it */
	ck_assert_int_eq(import_csv_detect(l3, strlen(l3), &fmt, err,
	    sizeof(err)), 0);
	ck_assert(!fmt.header);
}
END_TEST

START_TEST(split_maps_columns)
{
	struct import_csv_format fmt;
	char *cols[IMPORT_COL_COUNT];
	const char *why, *col;
	const char *line = "pw;h.example.org;ann;\"a;b\"\"c\"";

	detect_ok("user_password_is_not_first;x", &fmt);	/* no header */
	ck_assert(!fmt.header);
	detect_ok("user;user_password;host;login;password", &fmt);
	ck_assert_int_eq(import_csv_split(&fmt, "ann;pw;h;l;\"p;w\"", 16,
	    cols, &why, &col), 0);
	ck_assert_str_eq(cols[IMPORT_COL_USER], "ann");
	ck_assert_str_eq(cols[IMPORT_COL_HOST], "h");
	ck_assert_str_eq(cols[IMPORT_COL_LOGIN], "l");
	ck_assert_str_eq(cols[IMPORT_COL_PASSWORD], "p;w");
	ck_assert_ptr_null(cols[IMPORT_COL_PORT]);
	ck_assert_ptr_null(cols[IMPORT_COL_ACCOUNT]);
	import_csv_free(cols);
	ck_assert_ptr_null(cols[IMPORT_COL_USER]);

	/* another order */
	detect_ok("user;password;host;login", &fmt);
	ck_assert_int_eq(import_csv_split(&fmt, line, strlen(line) - 10, cols,
	    &why, &col), 0);
	ck_assert_str_eq(cols[IMPORT_COL_USER], "pw");
	ck_assert_str_eq(cols[IMPORT_COL_PASSWORD], "h.example.org");
	import_csv_free(cols);

	/* more fields than the header names */
	ck_assert_int_eq(import_csv_split(&fmt, "a;b;c;d;e", 9, cols, &why,
	    &col), -1);
	ck_assert_str_eq(why, "more fields than the header has columns");
	ck_assert_ptr_null(cols[IMPORT_COL_USER]);
}
END_TEST

START_TEST(mixed_delimiters_refused)
{
	struct import_csv_format fmt;
	char *cols[IMPORT_COL_COUNT];
	const char *why, *col;

	detect_ok("alice,pw,h,1", &fmt);
	ck_assert_int_eq(import_csv_split(&fmt, "bob;pw;h;1", 10, cols, &why,
	    &col), -1);
	ck_assert_ptr_nonnull(strstr(why, "one column only, with ';'"));
	ck_assert_str_eq(col, "user");
	/* a lone user name is fine */
	ck_assert_int_eq(import_csv_split(&fmt, "carol", 5, cols, &why,
	    &col), 0);
	ck_assert_str_eq(cols[IMPORT_COL_USER], "carol");
	import_csv_free(cols);
	/* over the seventeen columns */
	ck_assert_int_eq(import_csv_split(&fmt, "a,,,,,,,,,,,,,,,,,", 18,
	    cols, &why, &col), -1);
	ck_assert_str_eq(why, "more columns than " IMPORT_COLUMNS);
	/* a quoting error is the splitter's */
	ck_assert_int_eq(import_csv_split(&fmt, "a\"b", 3, cols, &why,
	    &col), -1);
	ck_assert_str_eq(why, "quote inside an unquoted field");
}
END_TEST

static Suite *
csv_suite(void)
{
	Suite *s = suite_create("gateway_importcsv");
	TCase *tc = tcase_create("csv");

	tcase_add_test(tc, bom);
	tcase_add_loop_test(tc, detect, 0,
	    (int)(sizeof(detect_cases) / sizeof(detect_cases[0])));
	tcase_add_test(tc, header_refusals);
	tcase_add_test(tc, split_maps_columns);
	tcase_add_test(tc, mixed_delimiters_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(csv_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
