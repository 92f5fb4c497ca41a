/* Check suite for the store's users: create, lookup, list, delete with all
   their data, password hash, settings, and isolation between users. */
#include "store_test_util.h"

static int
count_users(void *ctx, const struct store_user_info *info)
{
	(*(int *)ctx)++;
	ck_assert_ptr_nonnull(info->name);
	return 0;
}

START_TEST(user_create_lookup_list_delete)
{
	struct tstore t;
	struct store_read *r;
	struct store_user_info info;
	uint32_t a, b, id;
	int n = 0;
	char longname[STORE_USER_NAME_MAX + 2];

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "alice", "$argon2id$x", 0,
	    &a, NULL), 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "", 0, &b, NULL), 0);
	ck_assert_uint_ne(a, b);
	ck_assert_int_eq(store_user_create(t.store, "alice", "h", 0, &id,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_user_create(t.store, "", "h", 0, &id, NULL), -1);
	ck_assert_int_eq(store_user_create(t.store, "a\nb", "h", 0, &id, NULL),
	    -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(store_user_create(t.store, longname, "h", 0, &id,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	tstore_reopen(&t);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_lookup(r, "alice", &id, NULL), 0);
	ck_assert_uint_eq(id, a);
	ck_assert_int_eq(store_user_lookup(r, "Alice", &id, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_get(r, a, &info, NULL), 0);
	ck_assert_str_eq(info.name, "alice");
	ck_assert_str_eq(info.password_hash, "$argon2id$x");
	ck_assert(info.created > 0);
	ck_assert_int_eq(store_user_get(r, 999, &info, NULL), STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_foreach(r, count_users, &n, NULL), 0);
	ck_assert_int_eq(n, 2);
	store_read_end(&r);

	{
		static char long_hash[STORE_USER_HASH_MAX + 2];

		memset(long_hash, 'h', sizeof(long_hash) - 1);
		ck_assert_int_eq(store_user_set_hash(t.store, a, long_hash,
		    NULL), -1);
		ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
		ck_assert_int_eq(store_user_set_hash(t.store, 999, "x", NULL),
		    -1);
	}
	ck_assert_int_eq(store_user_set_hash(t.store, a, "new-hash", NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_get(r, a, &info, NULL), 0);
	ck_assert_str_eq(info.password_hash, "new-hash");
	ck_assert_str_eq(info.name, "alice");
	store_read_end(&r);

	ck_assert_int_eq(store_user_delete(t.store, b, NULL), 0);
	ck_assert_int_eq(store_user_delete(t.store, b, NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_lookup(r, "bob", &id, NULL),
	    STORE_NOT_FOUND);
	n = 0;
	ck_assert_int_eq(store_user_foreach(r, count_users, &n, NULL), 0);
	ck_assert_int_eq(n, 1);
	store_read_end(&r);
	/* The name is free again and gets a new id. */
	ck_assert_int_eq(store_user_create(t.store, "bob", "", 0, &id, NULL),
	    0);
	ck_assert_uint_ne(id, b);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static int
meta_cb(void *ctx, const char *key, const void *value, size_t size)
{
	char *buf = ctx;

	strcat(buf, key);
	strcat(buf, "=");
	strncat(buf, value, size);
	strcat(buf, ";");
	return 0;
}

/* A rename moves the name index and keeps the id, hash and mail. */
START_TEST(user_rename_keeps_everything_else)
{
	struct tstore t;
	struct store_read *r;
	struct store_user_info info;
	uint32_t a, b, id;

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "Alice", "$h$", 0, &a,
	    NULL), 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "", 0, &b, NULL), 0);
	ck_assert_int_eq(store_user_rename(t.store, a, "bob", NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_user_rename(t.store, a, "a\tb", NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	ck_assert_int_eq(store_user_rename(t.store, 999, "x", NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	ck_assert_int_eq(store_user_rename(t.store, a, "alice", NULL), 0);
	tstore_reopen(&t);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_lookup(r, "Alice", &id, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_lookup(r, "alice", &id, NULL), 0);
	ck_assert_uint_eq(id, a);
	ck_assert_int_eq(store_user_get(r, a, &info, NULL), 0);
	ck_assert_str_eq(info.name, "alice");
	ck_assert_str_eq(info.password_hash, "$h$");
	{
		struct store_mailbox_info mi;

		ck_assert_int_eq(store_mailbox_lookup(r, a, "INBOX", &mi,
		    NULL), 0);
	}
	store_read_end(&r);
	/* the old name is free again */
	ck_assert_int_eq(store_user_create(t.store, "Alice", "", 0, &id,
	    NULL), 0);
	tstore_close(&t);
}
END_TEST

START_TEST(user_settings)
{
	struct tstore t;
	struct store_read *r;
	const void *v;
	size_t size;
	char buf[256] = "";
	static char big[STORE_META_VALUE_MAX + 1];

	tstore_open(&t, 0);
	uint32_t a = tuser(&t, "alice"), b = tuser(&t, "bob");
	ck_assert_int_eq(store_user_meta_put(t.store, a, "account:pop1",
	    "{\"x\":1}", 7, NULL), 0);
	ck_assert_int_eq(store_user_meta_put(t.store, a, "account:pop2",
	    "\0bin", 4, NULL), 0);
	ck_assert_int_eq(store_user_meta_put(t.store, a, "account:pop1",
	    "{\"x\":2}", 7, NULL), 0);
	ck_assert_int_eq(store_user_meta_put(t.store, b, "account:pop1", "B", 1,
	    NULL), 0);
	ck_assert_int_eq(store_user_meta_put(t.store, a, "k", big, sizeof(big),
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
	ck_assert_int_eq(store_user_meta_put(t.store, a, "", "v", 1, NULL), -1);
	ck_assert_int_eq(store_user_meta_put(t.store, 999, "k", "v", 1, NULL),
	    -1);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_meta_get(r, a, "account:pop1", &v, &size,
	    NULL), 0);
	ck_assert(size == 7 && memcmp(v, "{\"x\":2}", 7) == 0);
	ck_assert_int_eq(store_user_meta_get(r, a, "account:pop2", &v, &size,
	    NULL), 0);
	ck_assert(size == 4 && memcmp(v, "\0bin", 4) == 0);
	ck_assert_int_eq(store_user_meta_get(r, a, "nope", &v, &size, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_meta_get(r, b, "account:pop1", &v, &size,
	    NULL), 0);
	ck_assert(size == 1 && memcmp(v, "B", 1) == 0);
	ck_assert_int_eq(store_user_meta_foreach(r, b, meta_cb, buf, NULL), 0);
	ck_assert_str_eq(buf, "account:pop1=B;");
	store_read_end(&r);
	ck_assert_int_eq(store_user_meta_del(t.store, a, "account:pop1", NULL),
	    0);
	ck_assert_int_eq(store_user_meta_del(t.store, a, "account:pop1", NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_delete(t.store, a, NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_meta_get(r, a, "account:pop2", &v, &size,
	    NULL), STORE_NOT_FOUND);
	ck_assert_int_eq(store_user_meta_get(r, b, "account:pop1", &v, &size,
	    NULL), 0);
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Every call made for alice with bob's mailbox ids and UIDs finds
   nothing and changes nothing of bob's. */
START_TEST(user_isolation)
{
	struct tstore t;
	struct store_read *r;
	struct store_msg msg;
	struct store_mailbox_info info;
	struct store_flag_result fr;
	struct store_copy_result cr;
	struct store_changes ch;
	struct store_uid_range all = { 1, UINT32_MAX };
	const void *data;
	size_t size;
	struct store_body *body;

	tstore_open(&t, 0);
	uint32_t a = tuser(&t, "alice"), b = tuser(&t, "bob");
	uint32_t a_inbox = tmailbox(&t, a, "INBOX");
	uint32_t b_inbox = tmailbox(&t, b, "INBOX");
	uint32_t b_secret;

	ck_assert_int_eq(store_mailbox_create(t.store, b, "secret", 0,
	    &b_secret, NULL), 0);
	tdeliver(&t, b, b_inbox, "bob's mail", 0);
	tdeliver(&t, b, b_secret, "bob's secret", 0);
	tdeliver(&t, a, a_inbox, "alice's mail", 0);
	struct store_mailbox_info before = tinfo(&t, b, b_secret);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	/* Mailbox ids are per user: bob's "secret" id means nothing (or
	   one of alice's own) for alice; names never cross. */
	ck_assert_int_eq(store_mailbox_lookup(r, a, "secret", &info, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_mailbox_get(r, a, b_secret, &info, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_msg_get(r, a, b_secret, 1, &msg, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_msg_body(r, a, b_secret, 1, &data, &size, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_msg_body(r, a, a_inbox, 1, &data, &size, NULL),
	    0);
	ck_assert(size == 12 && memcmp(data, "alice's mail", 12) == 0);
	ck_assert_int_eq(store_changes_since(r, a, b_secret, 0, &ch, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	ck_assert_int_eq(store_body_open(t.store, a, b_secret, 1, &body, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_flags_update(t.store, a, b_secret, &all, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL, 0, 0, &fr, NULL), -1);
	ck_assert_int_eq(store_expunge(t.store, a, b_secret, NULL, 0, false,
	    NULL, NULL, NULL), -1);
	ck_assert_int_eq(store_copy(t.store, a, b_secret, a_inbox, &all, 1,
	    true, &cr, NULL), -1);
	ck_assert_int_eq(store_mailbox_delete(t.store, a, "secret", NULL), -1);
	ck_assert_int_eq(store_mailbox_rename(t.store, a, "secret", "mine",
	    NULL), -1);
	{
		struct store_new_msg m;
		uint32_t uid;

		memset(&m, 0, sizeof(m));
		m.data = "spam";
		m.size = 4;
		ck_assert_int_eq(store_deliver(t.store, a, b_secret, &m, 1,
		    &uid, NULL, NULL), -1);
	}
	struct store_mailbox_info after = tinfo(&t, b, b_secret);
	ck_assert_uint_eq(after.messages, before.messages);
	ck_assert_uint_eq(after.highestmodseq, before.highestmodseq);
	ck_assert_uint_eq(after.uidnext, before.uidnext);
	/* Deleting alice leaves every byte of bob's. */
	ck_assert_int_eq(store_user_delete(t.store, a, NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_body(r, b, b_secret, 1, &data, &size, NULL),
	    0);
	ck_assert(size == 12 && memcmp(data, "bob's secret", 12) == 0);
	ck_assert_int_eq(store_msg_body(r, a, a_inbox, 1, &data, &size, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(user_delete_removes_everything)
{
	struct tstore t;
	struct store_new_msg m;
	uint32_t uid;
	struct store_read *r;
	struct store_ledger_entry e;
	uint32_t id;

	tstore_open(&t, 0);
	uint32_t a = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, a, "INBOX");
	memset(&m, 0, sizeof(m));
	m.data = "mail";
	m.size = 4;
	m.structure = "s";
	m.structure_size = 1;
	m.account = "acct";
	m.uidl = "u1";
	m.uidl_size = 2;
	ck_assert_int_eq(store_deliver(t.store, a, inbox, &m, 1, &uid, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_create(t.store, a, "x/y", 0, &id, NULL),
	    0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, a, "x", true, NULL),
	    0);
	ck_assert_int_eq(store_user_meta_put(t.store, a, "k", "v", 1, NULL), 0);
	ck_assert_int_eq(store_user_delete(t.store, a, NULL), 0);
	tstore_check(&t);	/* no orphan bodies, names, ledger */
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, a, "acct", "u1", 2, &e, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	/* The environment is empty of alice: a fresh file would look alike.
	   Check via mdb_stat-free means: re-create and see no old data. */
	uint32_t a2 = tuser(&t, "alice");
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, a2, "acct", "u1", 2, &e, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	ck_assert_uint_eq(tinfo(&t, a2, tmailbox(&t, a2, "INBOX")).messages, 0);
	tstore_close(&t);
}
END_TEST

/* UIDVALIDITYs collected by store_mailbox_foreach. */
struct uv_list {
	uint32_t vals[64];
	size_t n;
};

static int
collect_uv(void *ctx, const struct store_mailbox_info *info)
{
	struct uv_list *l = ctx;

	ck_assert_uint_lt(l->n, 64);
	l->vals[l->n++] = info->uidvalidity;
	return 0;
}

/*
 * Regression (review): UIDVALIDITY started at the clock for every new
 * user, so deleting a user and creating it again within as many seconds
 * as it had mailboxes gave INBOX (and others) a UIDVALIDITY the old user
 * had used: a client with a cache would show the old messages under the
 * new UIDs. A floor kept across deletions prevents it.
 */
START_TEST(user_recreate_never_reuses_uidvalidity)
{
	struct tstore t;
	struct store_read *r;
	struct uv_list old = { .n = 0 }, new = { .n = 0 };
	uint32_t id;
	char name[16];

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "",
	    STORE_USER_DEFAULT_MAILBOXES, &id, NULL), 0);
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "box%d", i);
		ck_assert_int_eq(store_mailbox_create(t.store, id, name,
		    STORE_ROLE_NONE, NULL, NULL), 0);
	}
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_foreach(r, id, collect_uv, &old, NULL),
	    0);
	store_read_end(&r);
	ck_assert_int_eq(store_user_delete(t.store, id, NULL), 0);
	tstore_reopen(&t);
	ck_assert_int_eq(store_user_create(t.store, "bob", "",
	    STORE_USER_DEFAULT_MAILBOXES, &id, NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_foreach(r, id, collect_uv, &new, NULL),
	    0);
	store_read_end(&r);
	for (size_t i = 0; i < new.n; i++) {
		for (size_t j = 0; j < old.n; j++)
			ck_assert_uint_ne(new.vals[i], old.vals[j]);
	}
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(open_errors)
{
	struct store *s = NULL;
	const char *error = NULL;

	ck_assert_int_eq(store_open("/nonexistent/dir/x", NULL, &s, &error),
	    -1);
	ck_assert_ptr_null(s);
	ck_assert_ptr_nonnull(error);
	store_close(&s);	/* accepts NULL */
	ck_assert_int_eq(store_check("/nonexistent/dir/x", NULL, NULL, &error),
	    -1);
}
END_TEST

/* store_user_meta_update: appends ";n" to the old value (or starts it);
   refuses when ctx says so. */
static int
append_n(void *ctx, const void *old, size_t old_size, void **new_r,
    size_t *new_size_r)
{
	int *n = ctx;
	char *v;

	if (*n < 0)
		return -1;
	v = malloc(old_size + 16);
	memcpy(v, old != NULL ? old : "", old_size);
	*new_size_r = old_size + (size_t)snprintf(v + old_size, 16, ";%d", *n);
	*new_r = v;
	return 0;
}

START_TEST(meta_update_reads_and_writes_in_one_transaction)
{
	struct tstore t;
	struct store_read *r;
	const void *v;
	size_t n;
	int arg;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	arg = 1;
	ck_assert_int_eq(store_user_meta_update(t.store, u, "h", append_n,
	    &arg, NULL), 0);
	arg = 2;
	ck_assert_int_eq(store_user_meta_update(t.store, u, "h", append_n,
	    &arg, NULL), 0);
	arg = -1;	/* refused: nothing changes */
	ck_assert_int_eq(store_user_meta_update(t.store, u, "h", append_n,
	    &arg, NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_user_meta_get(r, u, "h", &v, &n, NULL), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert(memcmp(v, ";1;2", 4) == 0);
	store_read_end(&r);
	/* an unknown user: NOTFOUND, nothing written */
	arg = 3;
	ck_assert_int_eq(store_user_meta_update(t.store, u + 99, "h",
	    append_n, &arg, NULL), -1);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static Suite *
store_user_suite(void)
{
	Suite *s = suite_create("store_user");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, user_create_lookup_list_delete);
	tcase_add_test(tc, user_rename_keeps_everything_else);
	tcase_add_test(tc, user_settings);
	tcase_add_test(tc, user_isolation);
	tcase_add_test(tc, user_delete_removes_everything);
	tcase_add_test(tc, user_recreate_never_reuses_uidvalidity);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, meta_update_reads_and_writes_in_one_transaction);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_user_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
