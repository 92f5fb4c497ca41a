/* Check suite for gateway/passthrough-table: a flood of new names never
 * erases the live rate count or failure of another name. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/passthrough-table.h"

#define N 16

static void
key_of(unsigned int i, unsigned char key[32])
{
	memset(key, 0, 32);
	memcpy(key, &i, sizeof(i));
	key[31] = 0x5a;
}

START_TEST(flood_of_names_cannot_evict_a_live_rate_count)
{
	struct pt_entry t[N];
	unsigned char victim[32], k[32];
	struct pt_entry *e;
	time_t now = 1000000;
	bool found;

	memset(t, 0, sizeof(t));
	key_of(0, victim);
	e = pt_table_claim(t, N, victim, now, false, &found);
	ck_assert_ptr_nonnull(e);
	ck_assert(!found);
	e->window = now;
	e->count = 7;	/* an attacker's attempts on one name */
	/* the flood: every other slot taken, then refused */
	for (unsigned int i = 1; i < 3 * N; i++) {
		key_of(i, k);
		e = pt_table_claim(t, N, k, now + 1, false, &found);
		if (i < N) {
			ck_assert_ptr_nonnull(e);
			e->window = now + 1;
			e->count = 1;
		} else {
			ck_assert_ptr_null(e);	/* fail closed */
		}
	}
	e = pt_table_find(t, N, victim, now + 2);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->count, 7);
	e = pt_table_claim(t, N, victim, now + 2, false, &found);
	ck_assert(found);
	ck_assert_uint_eq(e->count, 7);
	/* a minute later the victim's window is over: its slot is reused */
	key_of(999, k);
	e = pt_table_claim(t, N, k, now + PASSTHROUGH_RATE_WINDOW, false,
	    &found);
	ck_assert_ptr_nonnull(e);
	ck_assert(!found);
	ck_assert_ptr_null(pt_table_find(t, N, victim,
	    now + PASSTHROUGH_RATE_WINDOW));
}
END_TEST

START_TEST(expired_slots_are_taken_before_live_ones)
{
	struct pt_entry t[N];
	unsigned char k[32];
	struct pt_entry *e;
	time_t now = 5000;
	bool found;

	memset(t, 0, sizeof(t));
	for (unsigned int i = 0; i < N; i++) {
		key_of(i, k);
		e = pt_table_claim(t, N, k, now, true, &found);
		ck_assert_ptr_nonnull(e);
		/* even keys expire soon, odd ones later */
		e->until = now + (i % 2 == 0 ? 10 : 100) + i;
	}
	/* all live: evict_live takes the one expiring soonest (key 0) */
	key_of(100, k);
	e = pt_table_claim(t, N, k, now + 1, true, &found);
	ck_assert_ptr_nonnull(e);
	e->until = now + 500;
	key_of(0, k);
	ck_assert_ptr_null(pt_table_find(t, N, k, now + 1));
	for (unsigned int i = 1; i < N; i++) {
		key_of(i, k);
		ck_assert_ptr_nonnull(pt_table_find(t, N, k, now + 1));
	}
	/* at now + 20 the even ones (up to key 8) have expired: new keys
	   take those, and every odd (live) one stays */
	for (unsigned int i = 200; i < 204; i++) {
		key_of(i, k);
		e = pt_table_claim(t, N, k, now + 20, true, &found);
		ck_assert_ptr_nonnull(e);
		e->until = now + 1000;
	}
	for (unsigned int i = 1; i < N; i += 2) {
		key_of(i, k);
		ck_assert_ptr_nonnull(pt_table_find(t, N, k, now + 20));
	}
	/* an expired entry is not found, and claiming it is a fresh slot */
	key_of(2, k);
	ck_assert_ptr_null(pt_table_find(t, N, k, now + 20));
	e = pt_table_claim(t, N, k, now + 20, false, &found);
	ck_assert_ptr_nonnull(e);
	ck_assert(!found);
	ck_assert_int_eq(e->until, 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("gateway_pttable");
	TCase *tc = tcase_create("pttable");

	tcase_add_test(tc, flood_of_names_cannot_evict_a_live_rate_count);
	tcase_add_test(tc, expired_slots_are_taken_before_live_ones);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
