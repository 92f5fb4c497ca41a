/* Unit tests of mail_blob_envelope(): the root envelope read alone from
 * a structure blob (SORT and THREAD) equals the one of the whole blob,
 * for every fixture; every truncation of a blob is refused cleanly. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "store/mail-parse.h"
#include "store/mail-render.h"
#include "store/mail-serialize.h"
#include "strbuf.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/data/mail"
#endif

static char *
slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

START_TEST(blob_envelope_fixtures)
{
	DIR *d = opendir(FIXTURE_DIR);
	struct dirent *de;
	int files = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		char path[512];
		size_t len;
		char *data;
		struct mail_message *mm, *whole;
		struct strbuf blob = STRBUF_INIT, a = STRBUF_INIT,
		    b = STRBUF_INIT;
		struct arena *ar;
		struct mail_envelope env;
		uint64_t hlen;
		const char *err;

		if (strstr(de->d_name, ".eml") == NULL)
			continue;
		ar = arena_new(1024);
		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, de->d_name);
		data = slurp(path, &len);
		mm = mail_parse(data, len, NULL);
		mail_serialize(mm, &blob);
		ck_assert_int_eq(mail_deserialize(blob.data, blob.len, &whole,
		    &err), 0);
		ck_assert_int_eq(mail_blob_envelope(blob.data, blob.len, ar,
		    &env, &hlen, &err), 0);
		ck_assert_uint_eq(hlen, whole->parts[0].hdr_len);
		/* rendered the same: every field */
		mail_render_envelope(&a, &env);
		mail_render_envelope(&b, whole->parts[0].envelope);
		ck_assert_str_eq(strbuf_str(&a), strbuf_str(&b));
		ck_assert(env.date_valid == whole->parts[0].envelope->date_valid);
		ck_assert(env.date_time == whole->parts[0].envelope->date_time);
		/* a cut blob never yields an envelope it does not hold */
		for (size_t cut = 0; cut < blob.len; cut += 1 + cut / 8) {
			arena_reset(ar);
			(void)mail_blob_envelope(blob.data, cut, ar, &env, NULL, &err);
		}
		mail_message_free(&mm);
		mail_message_free(&whole);
		strbuf_free(&blob);
		strbuf_free(&a);
		strbuf_free(&b);
		arena_free(&ar);
		free(data);
		files++;
	}
	closedir(d);
	ck_assert_int_ge(files, 10);
}
END_TEST

START_TEST(blob_envelope_garbage)
{
	struct arena *ar = arena_new(1024);
	struct mail_envelope env;
	const char *err;

	ck_assert_int_eq(mail_blob_envelope("", 0, ar, &env, NULL, &err), -1);
	ck_assert_int_eq(mail_blob_envelope("PGMB", 4, ar, &env, NULL, &err), -1);
	ck_assert_int_eq(mail_blob_envelope("PGMB\x09\x01\x00\x01", 8, ar,
	    &env, NULL, &err), -1);
	ck_assert_int_eq(mail_blob_envelope("XXXX\x01", 5, ar, &env, NULL, &err),
	    -1);
	arena_free(&ar);
}
END_TEST

static Suite *
blob_suite(void)
{
	Suite *s = suite_create("store_mailblob");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, blob_envelope_fixtures);
	tcase_add_test(tc, blob_envelope_garbage);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(blob_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
