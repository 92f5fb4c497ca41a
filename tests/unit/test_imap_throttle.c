/* Check suite for imap-frontend/imap-throttle: delays that grow with
 * failures by (user, address), by address after a few free ones, gently
 * and capped by user from anywhere; expiry; a bounded table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "imap-frontend/imap-throttle.h"

START_TEST(throttle_pair_grows_and_caps)
{
	struct imap_throttle *t = imap_throttle_new(0, 0);
	struct imap_throttle_counts c;
	unsigned prev = 0;

	ck_assert_uint_eq(imap_throttle_delay(t, "bob", "192.0.2.1", 100), 0);
	for (unsigned i = 1; i <= 40; i++) {
		unsigned d;

		imap_throttle_failed(t, "bob", "192.0.2.1", 100, &c);
		ck_assert_uint_eq(c.pair, i);
		d = imap_throttle_delay(t, "bob", "192.0.2.1", 100);
		ck_assert_uint_ge(d, prev);
		if (i == 1)
			ck_assert_uint_eq(d, IMAP_THROTTLE_STEP_MS);
		if (i == 2)
			ck_assert_uint_eq(d, 2 * IMAP_THROTTLE_STEP_MS);
		ck_assert_uint_le(d, IMAP_THROTTLE_DELAY_MAX_MS);
		prev = d;
	}
	ck_assert_uint_eq(prev, IMAP_THROTTLE_DELAY_MAX_MS);
	/* the name's case does not matter */
	ck_assert_uint_eq(imap_throttle_delay(t, "BoB", "192.0.2.1", 100),
	    IMAP_THROTTLE_DELAY_MAX_MS);
	/* the owner from elsewhere: gently, never more than the user cap */
	ck_assert_uint_le(imap_throttle_delay(t, "bob", "198.51.100.7", 100),
	    IMAP_THROTTLE_USER_MAX_MS);
	/* another user from elsewhere: nothing */
	ck_assert_uint_eq(imap_throttle_delay(t, "carol", "198.51.100.7", 100),
	    0);
	/* a success forgets the pair only */
	imap_throttle_succeeded(t, "BOB", "192.0.2.1");
	imap_throttle_counts(t, "bob", "192.0.2.1", 100, &c);
	ck_assert_uint_eq(c.pair, 0);
	ck_assert_uint_eq(c.addr, 40);
	ck_assert_uint_eq(c.user, 40);
	imap_throttle_free(&t);
}
END_TEST

START_TEST(throttle_address_many_users)
{
	struct imap_throttle *t = imap_throttle_new(0, 0);
	struct imap_throttle_counts c;
	char user[32];

	for (unsigned i = 0; i < IMAP_THROTTLE_ADDR_FREE; i++) {
		snprintf(user, sizeof(user), "u%u", i);
		imap_throttle_failed(t, user, "203.0.113.9", 5, &c);
	}
	/* a few typing errors behind one address cost a new name nothing */
	ck_assert_uint_eq(imap_throttle_delay(t, "new", "203.0.113.9", 5), 0);
	for (unsigned i = 0; i < 30; i++) {
		snprintf(user, sizeof(user), "v%u", i);
		imap_throttle_failed(t, user, "203.0.113.9", 5, &c);
	}
	ck_assert_uint_eq(c.addr, IMAP_THROTTLE_ADDR_FREE + 30);
	ck_assert_uint_eq(imap_throttle_delay(t, "new", "203.0.113.9", 5),
	    IMAP_THROTTLE_DELAY_MAX_MS);
	/* other addresses are not affected */
	ck_assert_uint_eq(imap_throttle_delay(t, "new", "203.0.113.10", 5), 0);
	imap_throttle_free(&t);
}
END_TEST

/* A botnet guessing one account from thousands of addresses: its owner
 * is slowed by at most the user cap, from everywhere. */
START_TEST(throttle_no_lockout)
{
	struct imap_throttle *t = imap_throttle_new(0, 0);
	struct imap_throttle_counts c;
	char addr[32];

	for (unsigned i = 0; i < 5000; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.1", i / 256, i % 256);
		imap_throttle_failed(t, "victim", addr, 50, &c);
	}
	ck_assert_uint_eq(c.user, 5000);
	ck_assert_uint_eq(imap_throttle_delay(t, "victim", "192.0.2.55", 50),
	    IMAP_THROTTLE_USER_MAX_MS);
	imap_throttle_free(&t);
}
END_TEST

START_TEST(throttle_expires_and_is_bounded)
{
	struct imap_throttle *t = imap_throttle_new(30, 60);
	struct imap_throttle_counts c;
	char addr[32];

	imap_throttle_failed(t, "bob", "192.0.2.1", 1000, &c);
	ck_assert_uint_gt(imap_throttle_delay(t, "bob", "192.0.2.1", 1059), 0);
	ck_assert_uint_eq(imap_throttle_delay(t, "bob", "192.0.2.1", 1060), 0);
	ck_assert_uint_eq(imap_throttle_size(t), 0);
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "10.0.%u.%u", i / 256, i % 256);
		imap_throttle_failed(t, "x", addr, 2000 + i / 100, &c);
		ck_assert_uint_le(imap_throttle_size(t), 30);
	}
	/* the user entry is the most recently failed: it survived */
	ck_assert_uint_eq(c.user, 1000);
	imap_throttle_free(&t);
}
END_TEST

static Suite *
throttle_suite(void)
{
	Suite *s = suite_create("imap_throttle");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, throttle_pair_grows_and_caps);
	tcase_add_test(tc, throttle_address_many_users);
	tcase_add_test(tc, throttle_no_lockout);
	tcase_add_test(tc, throttle_expires_and_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(throttle_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
