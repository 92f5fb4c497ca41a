/* Check suite for the store's messages: deliver, read, flags, copy/move,
   expunge, vanished history, changes since, map full. The ledger and the
   change feed have their own suites (test_store_ledger, test_store_feed). */
#include "store_test_util.h"

START_TEST(deliver_and_read_back)
{
	struct tstore t;
	struct store_new_msg m[3];
	const char *kws[] = { "$Forwarded", "work" };
	uint32_t uids[3], uidvalidity = 0;
	struct store_read *r;
	struct store_msg msg;
	const void *data;
	size_t size;
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 3; i++) {
		m[i].data = i == 1 ? "B\0inary" : "Subject: x\r\n\r\nbody\r\n";
		m[i].size = i == 1 ? 7 : strlen(m[i].data);
		m[i].internaldate = 1600000000 + i;
		m[i].tz_offset_min = -300;
	}
	m[0].system_flags = STORE_FLAG_SEEN | STORE_FLAG_FLAGGED;
	m[1].structure = "\x01\x02struct";
	m[1].structure_size = 8;
	m[2].keywords = kws;
	m[2].keyword_count = 2;
	ck_assert_msg(store_deliver(t.store, u, inbox, m, 3, uids,
	    &uidvalidity, &error) == 0, "%s", error);
	ck_assert_uint_eq(uids[0], 1);
	ck_assert_uint_eq(uids[1], 2);
	ck_assert_uint_eq(uids[2], 3);
	ck_assert_uint_ne(uidvalidity, 0);

	struct store_mailbox_info info = tinfo(&t, u, inbox);
	ck_assert_uint_eq(info.messages, 3);
	ck_assert_uint_eq(info.unseen, 2);
	ck_assert_uint_eq(info.uidnext, 4);
	ck_assert_uint_eq(info.uidvalidity, uidvalidity);
	ck_assert_uint_eq(info.highestmodseq, 2);
	ck_assert_uint_eq(info.keyword_count, 2);
	ck_assert_uint_eq(info.size, m[0].size + 7 + m[2].size);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 1, &msg, NULL), 0);
	ck_assert_uint_eq(msg.flags.system,
	    STORE_FLAG_SEEN | STORE_FLAG_FLAGGED);
	ck_assert_uint_eq(msg.modseq, 2);
	ck_assert_int_eq(msg.internaldate, 1600000000);
	ck_assert_int_eq(msg.tz_offset_min, -300);
	ck_assert_int_eq(store_msg_body(r, u, inbox, 2, &data, &size, NULL), 0);
	ck_assert_uint_eq(size, 7);
	ck_assert(memcmp(data, "B\0inary", 7) == 0);
	ck_assert_int_eq(store_msg_structure(r, u, inbox, 2, &data, &size,
	    NULL), 0);
	ck_assert_uint_eq(size, 8);
	ck_assert(memcmp(data, "\x01\x02struct", 8) == 0);
	ck_assert_int_eq(store_msg_structure(r, u, inbox, 1, &data, &size,
	    NULL), 0);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 3, &msg, NULL), 0);
	ck_assert_uint_eq(msg.flags.keywords[0], 3);
	{
		const char *names[STORE_KEYWORDS_MAX];
		size_t n;

		ck_assert_int_eq(store_mailbox_keywords(r, u, inbox, names, &n,
		    NULL), 0);
		ck_assert_uint_eq(n, 2);
		ck_assert_str_eq(names[0], "$Forwarded");
		ck_assert_str_eq(names[1], "work");
	}
	ck_assert_int_eq(store_msg_get(r, u, inbox, 4, &msg, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_msg_by_seq(r, u, inbox, 2, &msg, NULL), 0);
	ck_assert_uint_eq(msg.uid, 2);
	ck_assert_int_eq(store_msg_by_seq(r, u, inbox, 4, &msg, NULL),
	    STORE_NOT_FOUND);
	{
		uint32_t *all;
		size_t n;

		ck_assert_int_eq(store_msg_uids(r, u, inbox, &all, &n, NULL), 0);
		ck_assert_uint_eq(n, 3);
		ck_assert_uint_eq(all[2], 3);
		free(all);
	}
	{
		struct store_uid_range rg[] = { { 3, 3 }, { 1, 1 }, { 1, 2 } };
		struct store_msg *list;
		size_t n;

		ck_assert_int_eq(store_msg_list(r, u, inbox, rg, 3, &list, &n,
		    NULL), 0);
		ck_assert_uint_eq(n, 3);
		ck_assert_uint_eq(list[0].uid, 1);
		ck_assert_uint_eq(list[2].uid, 3);
		free(list);
	}
	store_read_end(&r);
	{
		struct store_body *b;

		ck_assert_int_eq(store_body_open(t.store, u, inbox, 1, &b,
		    NULL), 0);
		ck_assert_uint_eq(b->size, m[0].size);
		ck_assert(memcmp(b->data, m[0].data, b->size) == 0);
		store_body_close(&b);
		ck_assert_ptr_null(b);
		ck_assert_int_eq(store_body_open(t.store, u, inbox, 9, &b,
		    NULL), STORE_NOT_FOUND);
	}
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(deliver_limits_and_errors)
{
	struct tstore t;
	struct store_new_msg m;
	uint32_t uid;
	const char *error = NULL;
	const char *bad_kw[] = { "bad word" };

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(&m, 0, sizeof(m));
	m.data = "x";
	m.size = STORE_MESSAGE_SIZE_MAX + 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
	m.size = 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 0, &uid, NULL,
	    &error), -1);
	{
		/* Five 60 MB messages: over the batch byte limit, refused
		   before anything is read from the (fake) data pointers. */
		struct store_new_msg five[5];
		uint32_t u5[5];

		for (int i = 0; i < 5; i++) {
			five[i] = m;
			five[i].size = 60u * 1024 * 1024;
		}
		ck_assert_int_eq(store_deliver(t.store, u, inbox, five, 5, u5,
		    NULL, &error), -1);
		ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
	}
	m.system_flags = 0x100;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	m.system_flags = 0;
	ck_assert_int_eq(store_deliver(t.store, u, 999, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	ck_assert_int_eq(store_deliver(t.store, 999, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	m.keywords = bad_kw;
	m.keyword_count = 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	m.keyword_count = 0;
	m.account = "acct";
	m.uidl = "";
	m.uidl_size = 0;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	m.uidl_size = STORE_UIDL_MAX + 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 0);
	ck_assert_uint_eq(tinfo(&t, u, inbox).uidnext, 1);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(flags_set_add_remove_modseq)
{
	struct tstore t;
	struct store_flag_result res;
	struct store_uid_range all = { 1, UINT32_MAX };
	const char *kw[] = { "Work", "$Junk" };
	const char *kw_lower[] = { "work" };
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	for (int i = 0; i < 4; i++)
		tdeliver(&t, u, inbox, "m", i == 0 ? STORE_FLAG_SEEN : 0);
	uint64_t hm = tinfo(&t, u, inbox).highestmodseq;

	ck_assert_msg(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw, 2, 0, &res, &error) == 0,
	    "%s", error);
	ck_assert_uint_eq(res.changed_count, 4);	/* keywords are new */
	ck_assert_uint_eq(res.changed[0].modseq, hm + 1);
	ck_assert_uint_eq(res.changed[0].flags.keywords[0], 3);
	ck_assert_uint_eq(res.highestmodseq, hm + 1);
	/* the names of the ids, as the STORE left the table */
	ck_assert_uint_eq(res.keyword_count, 2);
	ck_assert_str_eq(res.keywords[0], "Work");
	ck_assert_str_eq(res.keywords[1], "$Junk");
	store_flag_result_free(&res);
	ck_assert_uint_eq(tinfo(&t, u, inbox).unseen, 0);

	/* No change: no MODSEQ bump. */
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, kw_lower, 1, 0, &res, NULL), 0);
	ck_assert_uint_eq(res.changed_count, 0);
	ck_assert_uint_eq(res.highestmodseq, hm + 1);
	/* unchanged messages holding keywords name them too */
	ck_assert_uint_eq(res.unchanged_count, 4);
	ck_assert_uint_eq(res.keyword_count, 2);
	ck_assert_str_eq(res.keywords[1], "$Junk");
	store_flag_result_free(&res);

	{
		struct store_uid_range two = { 2, 3 };

		ck_assert_int_eq(store_flags_update(t.store, u, inbox, &two, 1,
		    STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, kw_lower, 1, 0, &res,
		    NULL), 0);
		ck_assert_uint_eq(res.changed_count, 2);
		ck_assert_uint_eq(res.changed[0].uid, 2);
		ck_assert_uint_eq(res.changed[1].flags.system, 0);
		ck_assert_uint_eq(res.changed[1].flags.keywords[0], 2);
		store_flag_result_free(&res);
	}
	ck_assert_uint_eq(tinfo(&t, u, inbox).unseen, 2);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_SET, STORE_FLAG_DELETED, NULL, 0, 0, &res, NULL), 0);
	ck_assert_uint_eq(res.changed_count, 4);
	/* no message holds a keyword now: no names */
	ck_assert_uint_eq(res.keyword_count, 0);
	ck_assert_ptr_null(res.keywords);
	store_flag_result_free(&res);
	struct store_mailbox_info info = tinfo(&t, u, inbox);
	ck_assert_uint_eq(info.deleted, 4);
	ck_assert_uint_eq(info.unseen, 4);
	ck_assert_uint_eq(info.highestmodseq, hm + 3);

	/* Bad arguments. */
	{
		struct store_uid_range bad = { 5, 2 };

		ck_assert_int_eq(store_flags_update(t.store, u, inbox, &bad, 1,
		    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, 0, &res, NULL),
		    -1);
		ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
		    STORE_FLAGS_ADD, 0x80, NULL, 0, 0, &res, NULL), -1);
		ck_assert_int_eq(store_flags_update(t.store, u, 77, &all, 1,
		    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, 0, &res, NULL),
		    -1);
	}
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(flags_unchangedsince)
{
	struct tstore t;
	struct store_flag_result res;
	struct store_uid_range one = { 1, 1 }, all = { 1, 3 };

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	for (int i = 0; i < 3; i++)
		tdeliver(&t, u, inbox, "m", 0);
	uint64_t base = tinfo(&t, u, inbox).highestmodseq;
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &one, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_FLAGGED, NULL, 0, 0, &res, NULL), 0);
	store_flag_result_free(&res);
	/* uid 1 changed after base: it fails; 2 and 3 change. */
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, base, &res, NULL), 0);
	ck_assert_uint_eq(res.failed_count, 1);
	ck_assert_uint_eq(res.failed[0], 1);
	ck_assert_uint_eq(res.changed_count, 2);
	ck_assert_uint_eq(res.changed[0].uid, 2);
	store_flag_result_free(&res);
	struct store_read *r;
	struct store_msg msg;

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 1, &msg, NULL), 0);
	ck_assert_uint_eq(msg.flags.system, STORE_FLAG_FLAGGED);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

START_TEST(keyword_limit)
{
	struct tstore t;
	struct store_flag_result res;
	struct store_uid_range all = { 1, UINT32_MAX };
	char names[STORE_KEYWORDS_MAX + 1][16];
	const char *p[STORE_KEYWORDS_MAX + 1];

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	tdeliver(&t, u, inbox, "m", 0);
	for (int i = 0; i <= STORE_KEYWORDS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		p[i] = names[i];
	}
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, 0, p, STORE_KEYWORDS_MAX, 0, &res, NULL), 0);
	ck_assert_uint_eq(res.changed[0].flags.keywords[1],
	    UINT64_MAX);
	store_flag_result_free(&res);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, 0, p + STORE_KEYWORDS_MAX, 1, 0, &res, NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
	ck_assert_uint_eq(tinfo(&t, u, inbox).keyword_count,
	    STORE_KEYWORDS_MAX);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(copy_move_refcounted_bodies)
{
	struct tstore t;
	struct store_copy_result cr;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct store_uid_range first = { 1, 1 };
	const char *kw[] = { "x" };
	struct store_flag_result fr;
	const char *error = NULL;
	uint32_t *ex;
	size_t nex;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	uint32_t arch;

	ck_assert_int_eq(store_mailbox_create(t.store, u, "Archive",
	    STORE_ROLE_ARCHIVE, &arch, NULL), 0);
	tdeliver(&t, u, inbox, "one", STORE_FLAG_SEEN);
	tdeliver(&t, u, inbox, "two", 0);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &first, 1,
	    STORE_FLAGS_ADD, 0, kw, 1, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	ck_assert_msg(store_copy(t.store, u, inbox, arch, &all, 1, false, &cr,
	    &error) == 0, "%s", error);
	ck_assert_uint_eq(cr.count, 2);
	ck_assert_uint_eq(cr.src_uids[0], 1);
	ck_assert_uint_eq(cr.dst_uids[1], 2);
	ck_assert_uint_eq(cr.dst_uidvalidity, tinfo(&t, u, arch).uidvalidity);
	store_copy_result_free(&cr);
	tstore_check(&t);	/* refcount 2 each */

	/* Expunge the originals: bodies stay for the copies. */
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, false, &ex,
	    &nex, NULL), 0);
	ck_assert_uint_eq(nex, 2);
	free(ex);
	tstore_check(&t);
	{
		struct store_read *r;
		const void *data;
		size_t size;
		struct store_msg msg;

		ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
		ck_assert_int_eq(store_msg_body(r, u, arch, 1, &data, &size,
		    NULL), 0);
		ck_assert(size == 3 && memcmp(data, "one", 3) == 0);
		ck_assert_int_eq(store_msg_get(r, u, arch, 1, &msg, NULL), 0);
		ck_assert_uint_eq(msg.flags.system, STORE_FLAG_SEEN);
		ck_assert_uint_eq(msg.flags.keywords[0], 1);
		store_read_end(&r);
	}
	/* Move back: the source loses them, recorded as vanished. */
	ck_assert_int_eq(store_copy(t.store, u, arch, inbox, &first, 1, true,
	    &cr, NULL), 0);
	ck_assert_uint_eq(cr.count, 1);
	ck_assert_uint_eq(cr.dst_uids[0], 3);
	store_copy_result_free(&cr);
	ck_assert_uint_eq(tinfo(&t, u, arch).messages, 1);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 1);
	tstore_check(&t);
	/* Last references go: no orphan bodies (the checker verifies). */
	ck_assert_int_eq(store_expunge(t.store, u, arch, NULL, 0, false, NULL,
	    NULL, NULL), 0);
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, false, NULL,
	    NULL, NULL), 0);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Regression (convergence stress test): COPY into the selected mailbox is
 * valid IMAP but the store refused it. The copies get new UIDs, the same
 * flags and keywords, one new MODSEQ; bodies are shared. */
START_TEST(copy_into_same_mailbox)
{
	struct tstore t;
	struct store_copy_result cr;
	struct store_uid_range two = { 1, 2 };
	const char *kw[] = { "x", "y" };
	struct store_flag_result fr;
	const char *error = NULL;
	struct store_read *r;
	struct store_msg msg;
	const void *data;
	size_t size;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");

	tdeliver(&t, u, inbox, "one", STORE_FLAG_SEEN);
	tdeliver(&t, u, inbox, "two", 0);
	tdeliver(&t, u, inbox, "three", 0);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &two, 1,
	    STORE_FLAGS_ADD, 0, &kw[1], 1, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &two, 1,
	    STORE_FLAGS_ADD, 0, kw, 1, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	struct store_mailbox_info before = tinfo(&t, u, inbox);

	ck_assert_msg(store_copy(t.store, u, inbox, inbox, &two, 1, false,
	    &cr, &error) == 0, "%s", error);
	ck_assert_uint_eq(cr.count, 2);
	ck_assert_uint_eq(cr.src_uids[0], 1);
	ck_assert_uint_eq(cr.src_uids[1], 2);
	ck_assert_uint_eq(cr.dst_uids[0], 4);
	ck_assert_uint_eq(cr.dst_uids[1], 5);
	ck_assert_uint_eq(cr.dst_uidvalidity, before.uidvalidity);
	store_copy_result_free(&cr);

	struct store_mailbox_info after = tinfo(&t, u, inbox);
	ck_assert_uint_eq(after.messages, 5);
	ck_assert_uint_eq(after.uidnext, 6);
	ck_assert_uint_eq(after.unseen, before.unseen + 1);
	ck_assert_uint_eq(after.highestmodseq, before.highestmodseq + 1);
	ck_assert_uint_eq(after.keyword_count, 2);
	tstore_check(&t);	/* counters, refcounts */

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 4, &msg, NULL), 0);
	ck_assert_uint_eq(msg.flags.system, STORE_FLAG_SEEN);
	ck_assert_uint_eq(msg.flags.keywords[0], 3);	/* y (0) and x (1) */
	ck_assert_uint_eq(msg.modseq, after.highestmodseq);
	ck_assert_int_eq(store_msg_body(r, u, inbox, 5, &data, &size, NULL),
	    0);
	ck_assert(size == 3 && memcmp(data, "two", 3) == 0);
	store_read_end(&r);

	/* the originals go; the copies keep the bodies */
	ck_assert_int_eq(store_expunge(t.store, u, inbox, &two, 1, false, NULL,
	    NULL, NULL), 0);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Regression (issue 13 item 12): MOVE into the selected mailbox is a
 * copy plus the expunge of the originals (RFC 6851 3.1), in one
 * transaction: new UIDs, flags and keywords kept, the old UIDs vanished
 * at the same MODSEQ, the bodies' reference counts unchanged. */
START_TEST(move_into_same_mailbox)
{
	struct tstore t;
	struct store_copy_result cr;
	struct store_uid_range two = { 1, 2 };
	struct store_changes ch;
	const char *kw[] = { "x" };
	struct store_flag_result fr;
	const char *error = NULL;
	struct store_read *r;
	struct store_msg msg;
	const void *data;
	size_t size;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");

	tdeliver(&t, u, inbox, "one", STORE_FLAG_SEEN);
	tdeliver(&t, u, inbox, "two", 0);
	tdeliver(&t, u, inbox, "three", 0);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &two, 1,
	    STORE_FLAGS_ADD, 0, kw, 1, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	struct store_mailbox_info before = tinfo(&t, u, inbox);

	ck_assert_msg(store_copy(t.store, u, inbox, inbox, &two, 1, true,
	    &cr, &error) == 0, "%s", error);
	ck_assert_uint_eq(cr.count, 2);
	ck_assert_uint_eq(cr.src_uids[0], 1);
	ck_assert_uint_eq(cr.dst_uids[0], 4);
	ck_assert_uint_eq(cr.dst_uids[1], 5);
	store_copy_result_free(&cr);

	struct store_mailbox_info after = tinfo(&t, u, inbox);
	ck_assert_uint_eq(after.messages, 3);
	ck_assert_uint_eq(after.uidnext, 6);
	ck_assert_uint_eq(after.unseen, before.unseen);
	ck_assert_uint_eq(after.highestmodseq, before.highestmodseq + 1);
	tstore_check(&t);	/* counters, refcounts */

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 1, &msg, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_msg_get(r, u, inbox, 4, &msg, NULL), 0);
	ck_assert_uint_eq(msg.flags.system, STORE_FLAG_SEEN);
	ck_assert_uint_eq(msg.flags.keywords[0], 1);
	ck_assert_int_eq(store_msg_body(r, u, inbox, 5, &data, &size, NULL),
	    0);
	ck_assert(size == 3 && memcmp(data, "two", 3) == 0);
	ck_assert_int_eq(store_changes_since(r, u, inbox,
	    before.highestmodseq, &ch, NULL), 0);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 1);
	ck_assert_uint_eq(ch.vanished[0].last, 2);
	ck_assert_uint_eq(ch.changed_count, 2);
	store_changes_free(&ch);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

/* Regression: store_expunge(deleted_only) leaked its scratch list when
 * messages existed but none had \Deleted (LeakSanitizer catches it). */
START_TEST(expunge_nothing_deleted_frees_scratch)
{
	struct tstore t;
	uint32_t *ex = (uint32_t *)&ex;
	size_t nex = 99;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	for (int i = 0; i < 3; i++)
		tdeliver(&t, u, inbox, "m", 0);
	uint64_t before = tinfo(&t, u, inbox).highestmodseq;
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, true, &ex,
	    &nex, NULL), 0);
	ck_assert_uint_eq(nex, 0);
	ck_assert_ptr_null(ex);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 3);
	ck_assert_uint_eq(tinfo(&t, u, inbox).highestmodseq, before);
	tstore_close(&t);
}
END_TEST

START_TEST(expunge_deleted_only_and_vanished_survive_reopen)
{
	struct tstore t;
	struct store_flag_result fr;
	struct store_uid_range r24 = { 2, 4 };
	struct store_changes ch;
	struct store_read *r;
	uint32_t *ex;
	size_t nex;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	for (int i = 0; i < 6; i++)
		tdeliver(&t, u, inbox, "m", 0);
	uint64_t base = tinfo(&t, u, inbox).highestmodseq;
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &r24, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL, 0, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	{
		struct store_uid_range r13 = { 1, 3 };

		/* UID EXPUNGE 1:3 with \Deleted on 2:4: expunges 2, 3. */
		ck_assert_int_eq(store_expunge(t.store, u, inbox, &r13, 1,
		    true, &ex, &nex, NULL), 0);
		ck_assert_uint_eq(nex, 2);
		ck_assert_uint_eq(ex[0], 2);
		ck_assert_uint_eq(ex[1], 3);
		free(ex);
	}
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, true, &ex,
	    &nex, NULL), 0);
	ck_assert_uint_eq(nex, 1);
	ck_assert_uint_eq(ex[0], 4);
	free(ex);
	struct store_mailbox_info info = tinfo(&t, u, inbox);
	ck_assert_uint_eq(info.messages, 3);
	ck_assert_uint_eq(info.deleted, 0);
	ck_assert_uint_eq(info.uidnext, 7);
	tstore_reopen(&t);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_changes_since(r, u, inbox, base, &ch, NULL), 0);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 2);
	ck_assert_uint_eq(ch.vanished[0].last, 4);
	ck_assert_uint_eq(ch.changed_count, 0);	/* 2:4 changed, then gone */
	ck_assert_uint_eq(ch.highestmodseq, base + 3);
	store_changes_free(&ch);
	/* Since the first expunge: only uid 4 vanished after it. */
	ck_assert_int_eq(store_changes_since(r, u, inbox, base + 2, &ch, NULL),
	    0);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 4);
	ck_assert_uint_eq(ch.vanished[0].last, 4);
	store_changes_free(&ch);
	ck_assert_int_eq(store_changes_since(r, u, inbox, 0, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count, 3);
	store_changes_free(&ch);
	ck_assert_int_eq(store_changes_since(r, u, inbox, base + 3, &ch, NULL),
	    0);
	ck_assert_uint_eq(ch.changed_count + ch.vanished_count, 0);
	store_changes_free(&ch);
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static int
stop_at_two(void *ctx, const struct store_msg *msg)
{
	(*(int *)ctx)++;
	return msg->uid == 2 ? 7 : 0;
}

START_TEST(msg_foreach_range_and_stop)
{
	struct tstore t;
	struct store_read *r;
	int n = 0;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	uint32_t other;

	ck_assert_int_eq(store_mailbox_create(t.store, u, "other", 0, &other,
	    NULL), 0);
	for (int i = 0; i < 4; i++) {
		tdeliver(&t, u, inbox, "m", 0);
		tdeliver(&t, u, other, "o", 0);
	}
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_foreach(r, u, inbox, 2, 3, stop_at_two, &n,
	    NULL), 7);
	ck_assert_int_eq(n, 1);
	n = 0;
	ck_assert_int_eq(store_msg_foreach(r, u, inbox, 3, UINT32_MAX,
	    stop_at_two, &n, NULL), 0);
	ck_assert_int_eq(n, 2);	/* stops at the mailbox's end */
	n = 0;
	ck_assert_int_eq(store_msg_foreach(r, u, inbox, 5, 4, stop_at_two, &n,
	    NULL), 0);
	ck_assert_int_eq(n, 0);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

/* A tiny map: deliver until the map is full; the error is clean, nothing
   half-stored, everything before intact, reads and expunge still work. */
START_TEST(map_full_fails_cleanly)
{
	struct tstore t;
	char *body = malloc(20000);
	struct store_new_msg m[4];
	uint32_t uids[4];
	const char *error = NULL;
	int delivered = 0, rc = 0;

	tstore_open(&t, 1024 * 1024);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(body, 'a', 20000);
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 200 && rc == 0; i++) {
		char uidl[4][16];

		for (int j = 0; j < 4; j++) {
			snprintf(uidl[j], sizeof(uidl[j]), "u%d", i * 4 + j);
			m[j].data = body;
			m[j].size = 20000;
			m[j].account = "acct";
			m[j].uidl = uidl[j];
			m[j].uidl_size = strlen(uidl[j]);
		}
		body[0] = (char)('A' + i % 26);
		rc = store_deliver(t.store, u, inbox, m, 4, uids, NULL, &error);
		if (rc == 0)
			delivered += 4;
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOSPACE);
	ck_assert_ptr_nonnull(strstr(error, "MDB_MAP_FULL"));
	ck_assert_int_gt(delivered, 0);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, (uint32_t)delivered);
	tstore_reopen(&t);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, (uint32_t)delivered);
	{
		struct store_read *r;
		struct store_ledger_entry e;
		const void *data;
		size_t size;
		char uidl[16];

		ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
		for (int i = 0; i < delivered; i++) {
			snprintf(uidl, sizeof(uidl), "u%d", i);
			ck_assert_int_eq(store_ledger_lookup(r, u, "acct", uidl,
			    strlen(uidl), &e, NULL), 0);
			ck_assert_int_eq(store_msg_body(r, u, inbox, e.uid,
			    &data, &size, NULL), 0);
			ck_assert_uint_eq(size, 20000);
			ck_assert_int_eq(((const char *)data)[0],
			    'A' + (i / 4) % 26);
		}
		snprintf(uidl, sizeof(uidl), "u%d", delivered);
		ck_assert_int_eq(store_ledger_lookup(r, u, "acct", uidl,
		    strlen(uidl), &e, NULL), STORE_NOT_FOUND);
		store_read_end(&r);
	}
	tstore_check(&t);
	/* Room again after an expunge: delivery resumes. */
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, false, NULL,
	    NULL, &error), 0);
	m[0].uidl = "again";
	m[0].uidl_size = 5;
	ck_assert_msg(store_deliver(t.store, u, inbox, m, 1, uids, NULL,
	    &error) == 0, "%s", error);
	tstore_check(&t);
	free(body);
	tstore_close(&t);
}
END_TEST

/* A body held open keeps its bytes while other calls expunge the message
   and reuse the space (what an IMAP FETCH in flight needs). */
START_TEST(open_body_survives_expunge)
{
	struct tstore t;
	struct store_body *b;
	char big[5000];

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	uint32_t uid = tdeliver(&t, u, inbox, big, 0);
	ck_assert_int_eq(store_body_open(t.store, u, inbox, uid, &b, NULL), 0);
	ck_assert_int_eq(store_expunge(t.store, u, inbox, NULL, 0, false, NULL,
	    NULL, NULL), 0);
	for (int i = 0; i < 20; i++) {
		memset(big, 'a' + i, sizeof(big) - 1);
		tdeliver(&t, u, inbox, big, 0);
	}
	ck_assert_uint_eq(b->size, sizeof(big) - 1);
	for (size_t i = 0; i < b->size; i++)
		ck_assert_int_eq(((const char *)b->data)[i], 'q');
	store_body_close(&b);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(reader_table_full_is_an_error)
{
	struct tstore t;
	struct store_options opts = { 0, 2, false, 0 };
	struct store_read *r[3];
	const char *error = NULL;

	strcpy(t.dir, "/tmp/popgate-store-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	ck_assert_int_eq(store_open(t.dir, &opts, &t.store, &error), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r[0], NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r[1], NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r[2], &error), -1);
	ck_assert_ptr_null(r[2]);
	ck_assert_ptr_nonnull(strstr(error, "MDB_READERS_FULL"));
	store_read_end(&r[1]);
	ck_assert_int_eq(store_read_begin(t.store, &r[2], NULL), 0);
	store_read_end(&r[0]);
	store_read_end(&r[2]);
	tstore_close(&t);
}
END_TEST

static Suite *
store_message_suite(void)
{
	Suite *s = suite_create("store_message");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, deliver_and_read_back);
	tcase_add_test(tc, deliver_limits_and_errors);
	tcase_add_test(tc, flags_set_add_remove_modseq);
	tcase_add_test(tc, flags_unchangedsince);
	tcase_add_test(tc, keyword_limit);
	tcase_add_test(tc, copy_move_refcounted_bodies);
	tcase_add_test(tc, copy_into_same_mailbox);
	tcase_add_test(tc, move_into_same_mailbox);
	tcase_add_test(tc, expunge_nothing_deleted_frees_scratch);
	tcase_add_test(tc, expunge_deleted_only_and_vanished_survive_reopen);
	tcase_add_test(tc, map_full_fails_cleanly);
	tcase_add_test(tc, msg_foreach_range_and_stop);
	tcase_add_test(tc, open_body_survives_expunge);
	tcase_add_test(tc, reader_table_full_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_message_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
