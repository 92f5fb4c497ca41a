/* Check suite for imap-frontend/imap-recent: the per-mailbox "first
 * recent UID" table (boundaries, claims only rising, deletes, growth)
 * against a plain array model. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "imap-frontend/imap-recent.h"

START_TEST(recent_boundaries)
{
	struct imap_recent *t = imap_recent_new();

	/* no entry: nothing new since start, the boundary is UIDNEXT */
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 10), 10);
	/* a delivery of UIDs 10.. opens the boundary at 10 */
	imap_recent_note_new(t, 1, 1, 10);
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 12), 10);
	/* a later delivery does not move it */
	imap_recent_note_new(t, 1, 1, 12);
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 13), 10);
	/* a claim moves it up, never down */
	imap_recent_claim(t, 1, 1, 12);
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 13), 12);
	imap_recent_claim(t, 1, 1, 11);
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 13), 12);
	/* other users and mailboxes are separate */
	ck_assert_uint_eq(imap_recent_first(t, 2, 1, 5), 5);
	ck_assert_uint_eq(imap_recent_first(t, 1, 2, 7), 7);
	/* a claim without an entry creates it (SELECT of a quiet box) */
	imap_recent_claim(t, 2, 1, 5);
	ck_assert_uint_eq(imap_recent_first(t, 2, 1, 9), 5);
	ck_assert_uint_eq(imap_recent_count(t), 2);
	imap_recent_forget(t, 1, 1);
	ck_assert_uint_eq(imap_recent_first(t, 1, 1, 20), 20);
	ck_assert_uint_eq(imap_recent_first(t, 2, 1, 9), 5);
	ck_assert_uint_eq(imap_recent_count(t), 1);
	imap_recent_forget(t, 1, 1);	/* absent: nothing happens */
	ck_assert_uint_eq(imap_recent_count(t), 1);
	imap_recent_free(&t);
	ck_assert_ptr_null(t);
}
END_TEST

#define MODEL_USERS 7
#define MODEL_BOXES 300

START_TEST(recent_random_model)
{
	static uint32_t model[MODEL_USERS][MODEL_BOXES];	/* 0: none */
	struct imap_recent *t = imap_recent_new();
	uint32_t n = 0;

	srandom(7);
	for (int step = 0; step < 200000; step++) {
		uint32_t u = (uint32_t)random() % MODEL_USERS;
		uint32_t b = (uint32_t)random() % MODEL_BOXES;
		uint32_t uid = 1 + (uint32_t)random() % 1000;
		uint32_t *m = &model[u][b];

		switch (random() % 4) {
		case 0:
			imap_recent_note_new(t, u + 1, b + 1, uid);
			if (*m == 0) {
				*m = uid;
				n++;
			}
			break;
		case 1:
			imap_recent_claim(t, u + 1, b + 1, uid);
			if (*m == 0)
				n++;
			if (uid > *m)
				*m = uid;
			break;
		case 2:
			/* deletes are rarer in life; here they keep the
			 * probe runs churning */
			imap_recent_forget(t, u + 1, b + 1);
			if (*m != 0)
				n--;
			*m = 0;
			break;
		default:
			ck_assert_uint_eq(imap_recent_first(t, u + 1, b + 1,
			    4242), *m != 0 ? *m : 4242);
			break;
		}
		ck_assert_uint_eq(imap_recent_count(t), n);
	}
	for (uint32_t u = 0; u < MODEL_USERS; u++)
		for (uint32_t b = 0; b < MODEL_BOXES; b++)
			ck_assert_uint_eq(imap_recent_first(t, u + 1, b + 1, 0),
			    model[u][b]);
	imap_recent_free(&t);
}
END_TEST

static Suite *
recent_suite(void)
{
	Suite *s = suite_create("imap_recent");
	TCase *tc = tcase_create("core");

	/* 200,000 model steps take ~1.5 s of CPU under ASan; Check's
	   default 4 s of wall time is not enough on a loaded machine */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, recent_boundaries);
	tcase_add_test(tc, recent_random_model);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(recent_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
