/* Check suite for store_changes_since(): exactly the messages changed
   after a MODSEQ, in UID order, with their flags, keywords and MODSEQ;
   nothing of the neighbouring mailbox or of another user; the vanished
   UIDs beside them. */
#include "store_test_util.h"

static void
set_flags(struct tstore *t, uint32_t user, uint32_t mbox, uint32_t first,
    uint32_t last, enum store_flag_op op, uint32_t sys, const char *kw)
{
	struct store_uid_range rg = { first, last };
	struct store_flag_result fr;
	const char *kws[1] = { kw };
	const char *error = NULL;

	ck_assert_msg(store_flags_update(t->store, user, mbox, &rg, 1, op, sys,
	    kws, kw != NULL ? 1 : 0, 0, &fr, &error) == 0, "%s", error);
	store_flag_result_free(&fr);
}

START_TEST(changes_since_exact_set_and_flags)
{
	struct tstore t;
	struct store_read *r;
	struct store_changes ch;
	const char *kwnames[STORE_KEYWORDS_MAX];
	size_t kwn = 0;
	uint32_t ex_uid;
	uint32_t *ex;
	size_t nex;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t v = tuser(&t, "bob");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	uint32_t other = 0;
	ck_assert_int_eq(store_mailbox_create(t.store, u, "Other", 0, &other,
	    NULL), 0);
	ck_assert_uint_gt(other, inbox);
	uint32_t binbox = tmailbox(&t, v, "INBOX");
	/* Other's records follow INBOX's in key order; bob's follow
	   alice's: the scan must stop at the mailbox's end */
	for (int i = 0; i < 20; i++) {
		tdeliver(&t, u, inbox, "m", 0);
		tdeliver(&t, u, other, "o", 0);
		tdeliver(&t, v, binbox, "b", 0);
	}
	uint64_t base = tinfo(&t, u, inbox).highestmodseq;
	set_flags(&t, u, inbox, 3, 3, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
	    NULL);
	set_flags(&t, u, inbox, 7, 8, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
	    "work");
	set_flags(&t, u, inbox, 20, 20, STORE_FLAGS_SET, STORE_FLAG_ANSWERED,
	    NULL);
	set_flags(&t, u, inbox, 5, 5, STORE_FLAGS_ADD, STORE_FLAG_DELETED,
	    NULL);
	ex_uid = 5;
	{
		struct store_uid_range rg = { ex_uid, ex_uid };

		ck_assert_int_eq(store_expunge(t.store, u, inbox, &rg, 1, true,
		    &ex, &nex, NULL), 0);
		ck_assert_uint_eq(nex, 1);
		free(ex);
	}
	/* the neighbours change too, after and before */
	set_flags(&t, u, other, 1, 20, STORE_FLAGS_ADD, STORE_FLAG_FLAGGED,
	    NULL);
	set_flags(&t, v, binbox, 1, 20, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
	    NULL);
	uint64_t high = tinfo(&t, u, inbox).highestmodseq;
	ck_assert_uint_eq(high, base + 5);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_keywords(r, u, inbox, kwnames, &kwn,
	    NULL), 0);
	ck_assert_uint_eq(kwn, 1);
	ck_assert_str_eq(kwnames[0], "work");
	ck_assert_int_eq(store_changes_since(r, u, inbox, base, &ch, NULL), 0);
	ck_assert_uint_eq(ch.highestmodseq, high);
	ck_assert_uint_eq(ch.changed_count, 4);
	ck_assert_uint_eq(ch.changed[0].uid, 3);
	ck_assert_uint_eq(ch.changed[0].flags.system, STORE_FLAG_FLAGGED);
	ck_assert_uint_eq(ch.changed[0].flags.keywords[0], 0);
	ck_assert_uint_eq(ch.changed[0].modseq, base + 1);
	for (int i = 1; i <= 2; i++) {
		ck_assert_uint_eq(ch.changed[i].uid, 6 + (uint32_t)i);
		ck_assert_uint_eq(ch.changed[i].flags.system, STORE_FLAG_SEEN);
		ck_assert_uint_eq(ch.changed[i].flags.keywords[0], 1);
		ck_assert_uint_eq(ch.changed[i].modseq, base + 2);
	}
	ck_assert_uint_eq(ch.changed[3].uid, 20);
	ck_assert_uint_eq(ch.changed[3].flags.system, STORE_FLAG_ANSWERED);
	ck_assert_uint_eq(ch.changed[3].modseq, base + 3);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 5);
	ck_assert_uint_eq(ch.vanished[0].last, 5);
	store_changes_free(&ch);

	/* the expunge history alone: the same VANISHED, no changed list */
	ck_assert_int_eq(store_vanished_since(r, u, inbox, base, &ch, NULL),
	    0);
	ck_assert_uint_eq(ch.highestmodseq, high);
	ck_assert_uint_eq(ch.changed_count, 0);
	ck_assert_ptr_null(ch.changed);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 5);
	ck_assert_uint_eq(ch.vanished[0].last, 5);
	store_changes_free(&ch);

	/* from the middle: only what came after */
	ck_assert_int_eq(store_changes_since(r, u, inbox, base + 2, &ch, NULL),
	    0);
	ck_assert_uint_eq(ch.changed_count, 1);
	ck_assert_uint_eq(ch.changed[0].uid, 20);
	ck_assert_uint_eq(ch.vanished_count, 1);
	store_changes_free(&ch);

	/* the neighbour mailbox: its own 20, none of INBOX's */
	ck_assert_int_eq(store_changes_since(r, u, other, 0, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count, 20);
	for (size_t i = 0; i < ch.changed_count; i++) {
		ck_assert_uint_eq(ch.changed[i].uid, (uint32_t)i + 1);
		ck_assert_uint_eq(ch.changed[i].flags.system,
		    STORE_FLAG_FLAGGED);
	}
	store_changes_free(&ch);

	/* alice's ids under bob's user: nothing of alice's */
	ck_assert_int_eq(store_changes_since(r, v, binbox, 0, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count, 20);
	for (size_t i = 0; i < ch.changed_count; i++)
		ck_assert_uint_eq(ch.changed[i].flags.system, STORE_FLAG_SEEN);
	store_changes_free(&ch);

	/* up to date: nothing */
	ck_assert_int_eq(store_changes_since(r, u, inbox, high, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count + ch.vanished_count, 0);
	store_changes_free(&ch);
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Many records over several LMDB pages: every changed one found. */
START_TEST(changes_since_many_pages)
{
	struct tstore t;
	struct store_read *r;
	struct store_changes ch;
	struct store_new_msg m[500];
	uint32_t uids[500];
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 500; i++) {
		m[i].data = "x";
		m[i].size = 1;
	}
	for (int k = 0; k < 4; k++)
		ck_assert_msg(store_deliver(t.store, u, inbox, m, 500, uids,
		    NULL, &error) == 0, "%s", error);
	uint64_t base = tinfo(&t, u, inbox).highestmodseq;
	for (uint32_t uid = 7; uid <= 2000; uid += 97)
		set_flags(&t, u, inbox, uid, uid, STORE_FLAGS_ADD,
		    STORE_FLAG_FLAGGED, NULL);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_changes_since(r, u, inbox, base, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count, 21);
	for (size_t i = 0; i < ch.changed_count; i++) {
		ck_assert_uint_eq(ch.changed[i].uid, 7 + 97 * (uint32_t)i);
		ck_assert_uint_eq(ch.changed[i].modseq, base + 1 + i);
	}
	store_changes_free(&ch);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

static Suite *
store_changes_suite(void)
{
	Suite *s = suite_create("store_changes");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, changes_since_exact_set_and_flags);
	tcase_add_test(tc, changes_since_many_pages);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_changes_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
