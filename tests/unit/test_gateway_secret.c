/* Check suite for gateway/secret: key file creation and refusal, sealing
 * and opening upstream passwords with AES-256-GCM. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/secret.h"
#include "xmalloc.h"

static char dir[64];
static char path[128];

static void
setup(void)
{
	strcpy(dir, "/tmp/pgsecretXXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret.key", dir);
}

static void
teardown(void)
{
	char other[160];

	unlink(path);
	snprintf(other, sizeof(other), "%s/other", dir);
	unlink(other);
	rmdir(dir);
}

START_TEST(key_created_0600_then_loaded)
{
	struct secret_key *k1 = NULL, *k2 = NULL;
	bool created;
	char err[SECRET_ERROR_MAX];
	struct stat st;
	char *sealed, *plain;
	size_t len;
	const char *e;

	umask(0);	/* the file must be 0600 whatever the umask */
	ck_assert_int_eq(secret_key_load_or_create(path, &k1, &created, err,
	    sizeof(err)), 0);
	ck_assert(created);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, SECRET_KEY_LEN);

	ck_assert_int_eq(secret_key_load_or_create(path, &k2, &created, err,
	    sizeof(err)), 0);
	ck_assert(!created);
	/* the loaded key opens what the created one sealed */
	sealed = secret_seal(k1, "alice/a1", "hunter2", 7);
	ck_assert_int_eq(secret_open(k2, "alice/a1", sealed, &plain, &len,
	    &e), 0);
	ck_assert_str_eq(plain, "hunter2");
	secret_free_plain(plain);
	free(sealed);
	secret_key_free(&k1);
	secret_key_free(&k2);
	ck_assert_ptr_null(k1);
	umask(022);
}
END_TEST

START_TEST(key_readable_by_group_refused)
{
	struct secret_key *k = NULL;
	bool created;
	char err[SECRET_ERROR_MAX];

	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), 0);
	secret_key_free(&k);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(k);
	ck_assert(strstr(err, "mode 0640 lets group or others read it") !=
	    NULL);
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), 0);
	secret_key_free(&k);
}
END_TEST

START_TEST(key_wrong_size_or_symlink_refused)
{
	struct secret_key *k = NULL;
	bool created;
	char err[SECRET_ERROR_MAX], other[160];
	int fd;

	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "short", 5), 5);
	close(fd);
	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), -1);
	ck_assert(strstr(err, "not a key file") != NULL);
	/* the refused file is left alone, never replaced */
	ck_assert_int_eq(unlink(path), 0);

	snprintf(other, sizeof(other), "%s/other", dir);
	ck_assert_int_eq(secret_key_load_or_create(other, &k, &created, err,
	    sizeof(err)), 0);
	secret_key_free(&k);
	ck_assert_int_eq(symlink(other, path), 0);
	ck_assert_int_eq(secret_key_load_or_create(path, &k, &created, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(k);
}
END_TEST

START_TEST(seal_open_roundtrip_and_tamper)
{
	unsigned char b1[SECRET_KEY_LEN], b2[SECRET_KEY_LEN];
	struct secret_key *k1, *k2;
	char *s1, *s2, *plain = NULL;
	size_t len;
	const char *e;

	memset(b1, 1, sizeof(b1));
	memset(b2, 2, sizeof(b2));
	k1 = secret_key_from_bytes(b1);
	k2 = secret_key_from_bytes(b2);
	s1 = secret_seal(k1, "u/a", "pass word", 9);
	s2 = secret_seal(k1, "u/a", "pass word", 9);
	ck_assert(strncmp(s1, "v1:", 3) == 0);
	/* never in clear, and a fresh nonce each time */
	ck_assert(strstr(s1, "pass") == NULL);
	ck_assert_str_ne(s1, s2);
	ck_assert_int_eq(secret_open(k1, "u/a", s1, &plain, &len, &e), 0);
	ck_assert_uint_eq(len, 9);
	ck_assert_str_eq(plain, "pass word");
	secret_free_plain(plain);
	/* wrong key, wrong account */
	ck_assert_int_eq(secret_open(k2, "u/a", s1, &plain, &len, &e), -1);
	ck_assert(strstr(e, "does not open") != NULL);
	ck_assert_int_eq(secret_open(k1, "u/b", s1, &plain, &len, &e), -1);
	/* one flipped character */
	s2[10] = s2[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(secret_open(k1, "u/a", s2, &plain, &len, &e), -1);
	/* malformed */
	ck_assert_int_eq(secret_open(k1, "u/a", "v1:", &plain, &len, &e), -1);
	ck_assert_int_eq(secret_open(k1, "u/a", "v2:AAAA", &plain, &len, &e),
	    -1);
	ck_assert_int_eq(secret_open(k1, "u/a", "v1:AAA", &plain, &len, &e),
	    -1);
	ck_assert_int_eq(secret_open(k1, "u/a", "v1:AAAA", &plain, &len, &e),
	    -1);
	ck_assert_int_eq(secret_open(k1, "u/a", "v1:!!!!!!!!", &plain, &len,
	    &e), -1);
	free(s1);
	free(s2);
	/* empty and maximal secrets */
	s1 = secret_seal(k1, "", "", 0);
	ck_assert_int_eq(secret_open(k1, "", s1, &plain, &len, &e), 0);
	ck_assert_uint_eq(len, 0);
	secret_free_plain(plain);
	free(s1);
	{
		char *big = xmalloc(SECRET_PLAIN_MAX);

		memset(big, 'x', SECRET_PLAIN_MAX);
		s1 = secret_seal(k1, "a", big, SECRET_PLAIN_MAX);
		ck_assert_int_eq(secret_open(k1, "a", s1, &plain, &len, &e),
		    0);
		ck_assert_uint_eq(len, SECRET_PLAIN_MAX);
		ck_assert(memcmp(plain, big, SECRET_PLAIN_MAX) == 0);
		secret_free_plain(plain);
		free(s1);
		free(big);
	}
	secret_key_free(&k1);
	secret_key_free(&k2);
}
END_TEST

static Suite *
secret_suite(void)
{
	Suite *s = suite_create("gateway_secret");
	TCase *tc = tcase_create("secret");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, key_created_0600_then_loaded);
	tcase_add_test(tc, key_readable_by_group_refused);
	tcase_add_test(tc, key_wrong_size_or_symlink_refused);
	tcase_add_test(tc, seal_open_roundtrip_and_tamper);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(secret_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
