/* Check suite for the store's mailboxes: names, create/delete/rename
   (children, INBOX), UIDVALIDITY never reused, subscriptions, roles. */
#include "store_test_util.h"

static const struct {
	const char *name;
	bool valid;
} name_cases[] = {
	{ "INBOX", true },
	{ "a/b/c", true },
	{ "Entw\xc3\xbcrfe", true },		/* UTF-8 ü */
	{ "\xe2\x82\xac uro", true },		/* € */
	{ "", false },
	{ "/a", false },
	{ "a/", false },
	{ "a//b", false },
	{ "/", false },
	{ "a\tb", false },
	{ "a\x7f", false },
	{ "\xc3", false },			/* truncated */
	{ "\xc0\xaf", false },			/* overlong '/' */
	{ "\xed\xa0\x80", false },		/* surrogate */
	{ "\xff", false },
	{ "a b", true },
	{ "..", true },		/* just a name: never a path here */
};

START_TEST(mailbox_name_validation)
{
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const char *why = NULL;
		bool ok = store_mailbox_name_valid(name_cases[i].name, &why);

		ck_assert_msg(ok == name_cases[i].valid, "case %zu", i);
		ck_assert(ok || why != NULL);
	}
	{
		char longname[STORE_MAILBOX_NAME_MAX + 2];
		char deep[STORE_MAILBOX_DEPTH_MAX * 2 + 2];

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		ck_assert(!store_mailbox_name_valid(longname, NULL));
		longname[STORE_MAILBOX_NAME_MAX] = '\0';
		ck_assert(store_mailbox_name_valid(longname, NULL));
		for (int i = 0; i < STORE_MAILBOX_DEPTH_MAX; i++) {
			deep[2 * i] = 'a';
			deep[2 * i + 1] = '/';
		}
		deep[2 * STORE_MAILBOX_DEPTH_MAX - 1] = '\0';
		ck_assert(store_mailbox_name_valid(deep, NULL));
		deep[2 * STORE_MAILBOX_DEPTH_MAX - 1] = '/';
		deep[2 * STORE_MAILBOX_DEPTH_MAX] = 'a';
		deep[2 * STORE_MAILBOX_DEPTH_MAX + 1] = '\0';
		ck_assert(!store_mailbox_name_valid(deep, NULL));
	}
}
END_TEST

static int
collect_names(void *ctx, const struct store_mailbox_info *info)
{
	struct strlist { char buf[512]; } *l = ctx;

	strcat(l->buf, info->name);
	strcat(l->buf, info->subscribed ? "+," : ",");
	return 0;
}

static const char *
list_names(struct tstore *t, uint32_t u, char *buf)
{
	struct store_read *r;

	buf[0] = '\0';
	ck_assert_int_eq(store_read_begin(t->store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_foreach(r, u, collect_names, buf,
	    NULL), 0);
	store_read_end(&r);
	return buf;
}

START_TEST(create_delete_and_parents)
{
	struct tstore t;
	char buf[512];
	uint32_t id;
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	ck_assert_str_eq(list_names(&t, u, buf), "INBOX+,");
	ck_assert_msg(store_mailbox_create(t.store, u, "work/2024/q1", 0, &id,
	    &error) == 0, "%s", error);
	ck_assert_str_eq(list_names(&t, u, buf),
	    "INBOX+,work,work/2024,work/2024/q1,");
	ck_assert_uint_eq(tmailbox(&t, u, "work/2024/q1"), id);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "work", 0, NULL,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "inbox", 0, NULL,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "a//b", 0, NULL,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	/* INBOX case-insensitive, also as a parent. */
	ck_assert_int_eq(store_mailbox_create(t.store, u, "InBox/sub", 0, NULL,
	    NULL), 0);
	ck_assert_str_eq(list_names(&t, u, buf),
	    "INBOX+,INBOX/sub,work,work/2024,work/2024/q1,");
	ck_assert_uint_eq(tmailbox(&t, u, "inbox"), tmailbox(&t, u, "INBOX"));
	/* Delete: children stay; INBOX cannot go; missing is NOTFOUND. */
	tdeliver(&t, u, tmailbox(&t, u, "work"), "x", 0);
	ck_assert_int_eq(store_mailbox_delete(t.store, u, "work", NULL), 0);
	ck_assert_str_eq(list_names(&t, u, buf),
	    "INBOX+,INBOX/sub,work/2024,work/2024/q1,");
	ck_assert_int_eq(store_mailbox_delete(t.store, u, "inbox", NULL), -1);
	ck_assert_int_eq(store_mailbox_delete(t.store, u, "nope", NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(default_mailboxes_with_roles)
{
	struct tstore t;
	struct store_read *r;
	struct store_mailbox_info info;
	uint32_t u;

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "h",
	    STORE_USER_DEFAULT_MAILBOXES, &u, NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "Sent", &info, NULL), 0);
	ck_assert_int_eq(info.role, STORE_ROLE_SENT);
	ck_assert_str_eq(store_role_name(info.role), "\\Sent");
	ck_assert_int_eq(store_mailbox_lookup(r, u, "Trash", &info, NULL), 0);
	ck_assert_int_eq(info.role, STORE_ROLE_TRASH);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "Junk", &info, NULL), 0);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "Drafts", &info, NULL), 0);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "Archive", &info, NULL), 0);
	ck_assert_int_eq(info.role, STORE_ROLE_ARCHIVE);
	ck_assert_int_eq(store_mailbox_lookup(r, u, "INBOX", &info, NULL), 0);
	ck_assert_int_eq(info.role, STORE_ROLE_NONE);
	ck_assert_ptr_null(store_role_name(info.role));
	store_read_end(&r);
	ck_assert_int_eq(store_mailbox_set_role(t.store, u, info.id,
	    STORE_ROLE_FLAGGED, NULL), 0);
	ck_assert_int_eq(tinfo(&t, u, info.id).role, STORE_ROLE_FLAGGED);
	ck_assert_int_eq(store_mailbox_set_role(t.store, u, info.id, 99, NULL),
	    -1);
	tstore_close(&t);
}
END_TEST

START_TEST(rename_moves_children_and_subscriptions)
{
	struct tstore t;
	char buf[512];
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	ck_assert_int_eq(store_mailbox_create(t.store, u, "a/b/c", 0, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "ab", 0, NULL, NULL),
	    0);
	uint32_t a = tmailbox(&t, u, "a"), abc = tmailbox(&t, u, "a/b/c");
	uint32_t uid = tdeliver(&t, u, abc, "keep me", STORE_FLAG_SEEN);
	struct store_mailbox_info before = tinfo(&t, u, abc);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "a/b", true, NULL),
	    0);
	ck_assert_msg(store_mailbox_rename(t.store, u, "a", "x/y", &error) == 0,
	    "%s", error);
	ck_assert_str_eq(list_names(&t, u, buf),
	    "INBOX+,ab,x,x/y,x/y/b+,x/y/b/c,");
	ck_assert_uint_eq(tmailbox(&t, u, "x/y"), a);
	ck_assert_uint_eq(tmailbox(&t, u, "x/y/b/c"), abc);
	struct store_mailbox_info after = tinfo(&t, u, abc);
	ck_assert_uint_eq(after.uidvalidity, before.uidvalidity);
	ck_assert_uint_eq(after.messages, 1);
	{
		struct store_read *r;
		const void *data;
		size_t size;

		ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
		ck_assert_int_eq(store_msg_body(r, u, abc, uid, &data, &size,
		    NULL), 0);
		ck_assert(size == 7 && memcmp(data, "keep me", 7) == 0);
		store_read_end(&r);
	}
	/* Target exists; into itself; missing source. */
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "ab", "x/y", NULL),
	    -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "x", "x/z", NULL),
	    -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "nope", "q", NULL),
	    -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_NOTFOUND);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "ab", "INBOX", NULL),
	    -1);
	/* A child's new name taken: nothing moves. */
	ck_assert_int_eq(store_mailbox_create(t.store, u, "ab/b", 0, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "z/b", 0, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "ab", "z", NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_str_eq(list_names(&t, u, buf),
	    "INBOX+,ab,ab/b,x,x/y,x/y/b+,x/y/b/c,z,z/b,");
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(rename_inbox_moves_messages)
{
	struct tstore t;
	struct store_flag_result fr;
	struct store_uid_range all = { 1, UINT32_MAX };
	const char *kw[] = { "k1" };
	struct store_changes ch;
	struct store_read *r;
	char buf[512];

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_mailbox_create(t.store, u, "INBOX/child", 0,
	    NULL, NULL), 0);
	tdeliver(&t, u, inbox, "first", 0);
	tdeliver(&t, u, inbox, "second", STORE_FLAG_SEEN);
	ck_assert_int_eq(store_flags_update(t.store, u, inbox, &all, 1,
	    STORE_FLAGS_ADD, 0, kw, 1, 0, &fr, NULL), 0);
	store_flag_result_free(&fr);
	struct store_mailbox_info old = tinfo(&t, u, inbox);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "inbox", "Old", NULL),
	    0);
	ck_assert_str_eq(list_names(&t, u, buf), "INBOX+,INBOX/child,Old,");
	struct store_mailbox_info in = tinfo(&t, u, inbox);
	ck_assert_uint_eq(in.messages, 0);
	ck_assert_uint_eq(in.uidnext, old.uidnext);	/* never goes back */
	ck_assert_uint_eq(in.uidvalidity, old.uidvalidity);
	ck_assert_uint_gt(in.highestmodseq, old.highestmodseq);
	uint32_t moved = tmailbox(&t, u, "Old");
	struct store_mailbox_info mi = tinfo(&t, u, moved);
	ck_assert_uint_eq(mi.messages, 2);
	ck_assert_uint_eq(mi.unseen, 1);
	ck_assert_uint_ne(mi.uidvalidity, old.uidvalidity);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	{
		const void *data;
		size_t size;
		struct store_msg msg;
		const char *names[STORE_KEYWORDS_MAX];
		size_t n;

		ck_assert_int_eq(store_msg_body(r, u, moved, 2, &data, &size,
		    NULL), 0);
		ck_assert(size == 6 && memcmp(data, "second", 6) == 0);
		ck_assert_int_eq(store_msg_get(r, u, moved, 1, &msg, NULL), 0);
		ck_assert_uint_eq(msg.flags.keywords[0], 1);
		ck_assert_int_eq(store_mailbox_keywords(r, u, moved, names, &n,
		    NULL), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_str_eq(names[0], "k1");
	}
	ck_assert_int_eq(store_changes_since(r, u, inbox, old.highestmodseq,
	    &ch, NULL), 0);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 1);
	ck_assert_uint_eq(ch.vanished[0].last, 2);
	store_changes_free(&ch);
	store_read_end(&r);
	tdeliver(&t, u, inbox, "new", 0);
	ck_assert_uint_eq(tinfo(&t, u, inbox).uidnext, old.uidnext + 1);
	/* INBOX into its own child: allowed (only messages move). */
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "INBOX", "INBOX/old",
	    NULL), 0);
	ck_assert_uint_eq(tinfo(&t, u, tmailbox(&t, u, "INBOX/old")).messages,
	    1);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 0);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "INBOX", "inbox",
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(uidvalidity_never_reused)
{
	struct tstore t;
	uint32_t seen[6];
	int n = 0;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	for (int i = 0; i < 3; i++) {
		uint32_t id;

		ck_assert_int_eq(store_mailbox_create(t.store, u, "box", 0, &id,
		    NULL), 0);
		seen[n++] = tinfo(&t, u, id).uidvalidity;
		ck_assert_int_eq(store_mailbox_rename(t.store, u, "box",
		    i == 0 ? "tmp" : "tmp2", NULL), i == 0 ? 0 : 0);
		seen[n++] = tinfo(&t, u, id).uidvalidity;
		ck_assert_int_eq(store_mailbox_delete(t.store, u,
		    i == 0 ? "tmp" : "tmp2", NULL), 0);
		tstore_reopen(&t);
	}
	/* Each create got a new value; a rename keeps its value. */
	for (int i = 0; i < n; i += 2) {
		ck_assert_uint_eq(seen[i], seen[i + 1]);
		for (int j = 0; j < i; j += 2)
			ck_assert_uint_ne(seen[i], seen[j]);
	}
	ck_assert_uint_lt(seen[0], seen[2]);
	ck_assert_uint_lt(seen[2], seen[4]);
	tstore_close(&t);
}
END_TEST

static int
collect_sub(void *ctx, const char *name)
{
	strcat(ctx, name);
	strcat(ctx, ",");
	return 0;
}

START_TEST(subscriptions)
{
	struct tstore t;
	struct store_read *r;
	char buf[256] = "";

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "INBOX", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "not/there", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "inbox", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "a//b", true,
	    NULL), -1);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_subscription_foreach(r, u, collect_sub, buf,
	    NULL), 0);
	store_read_end(&r);
	ck_assert_str_eq(buf, "INBOX,not/there,");
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "not/there",
	    false, NULL), 0);
	buf[0] = '\0';
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_subscription_foreach(r, u, collect_sub, buf,
	    NULL), 0);
	store_read_end(&r);
	ck_assert_str_eq(buf, "INBOX,");
	tstore_close(&t);
}
END_TEST

static const char *
list_subs(struct tstore *t, uint32_t u, char *buf)
{
	struct store_read *r;

	buf[0] = '\0';
	ck_assert_int_eq(store_read_begin(t->store, &r, NULL), 0);
	ck_assert_int_eq(store_subscription_foreach(r, u, collect_sub, buf,
	    NULL), 0);
	store_read_end(&r);
	return buf;
}

/* Regression (issue 13 item 18): INBOX and the special-use folders start
 * subscribed; a store whose users have no subscription at all gets them
 * once, and only once. */
START_TEST(default_subscriptions)
{
	struct tstore t;
	char buf[256];
	unsigned fixed = 99;
	uint32_t u, v, w;
	const char *all[] = { "INBOX", "Sent", "Drafts", "Trash", "Junk",
	    "Archive" };

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "h",
	    STORE_USER_DEFAULT_MAILBOXES, &u, NULL), 0);
	ck_assert_str_eq(list_subs(&t, u, buf),
	    "Archive,Drafts,INBOX,Junk,Sent,Trash,");
	ck_assert_int_eq(store_user_create(t.store, "carol", "h", 0, &v, NULL),
	    0);
	ck_assert_str_eq(list_subs(&t, v, buf), "INBOX,");
	ck_assert_int_eq(store_user_create(t.store, "dave", "h",
	    STORE_USER_DEFAULT_MAILBOXES, &w, NULL), 0);
	/* what a store from before looked like: nothing subscribed (bob,
	   carol); dave keeps one subscription of his own */
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		ck_assert_int_eq(store_mailbox_subscribe(t.store, u, all[i],
		    false, NULL), 0);
		ck_assert_int_eq(store_mailbox_subscribe(t.store, w, all[i],
		    false, NULL), 0);
	}
	ck_assert_int_eq(store_mailbox_subscribe(t.store, v, "INBOX", false,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, w, "Mine", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "Work", 0, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_subscriptions_default_once(t.store, &fixed,
	    NULL), 0);
	ck_assert_uint_eq(fixed, 2);
	ck_assert_str_eq(list_subs(&t, u, buf),
	    "Archive,Drafts,INBOX,Junk,Sent,Trash,");
	ck_assert_str_eq(list_subs(&t, v, buf), "INBOX,");
	ck_assert_str_eq(list_subs(&t, w, buf), "Mine,");
	/* once: a user who unsubscribes everything later keeps that */
	ck_assert_int_eq(store_mailbox_subscribe(t.store, v, "INBOX", false,
	    NULL), 0);
	ck_assert_int_eq(store_subscriptions_default_once(t.store, &fixed,
	    NULL), 0);
	ck_assert_uint_eq(fixed, 0);
	ck_assert_str_eq(list_subs(&t, v, buf), "");
	/* and it survives a reopen */
	tstore_reopen(&t);
	ck_assert_int_eq(store_subscriptions_default_once(t.store, &fixed,
	    NULL), 0);
	ck_assert_uint_eq(fixed, 0);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static int
first_sub_stops(void *ctx, const char *name)
{
	strcat(ctx, name);
	return 7;
}

/* A callback's non-zero answer stops the walk and is what foreach
   returns; another user's subscriptions are never visited. */
START_TEST(subscription_walk_stops_on_callback)
{
	struct tstore t;
	struct store_read *r;
	char buf[256] = "";

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t v = tuser(&t, "bob");
	/* (INBOX is subscribed from the start: "A" sorts before it) */
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "A", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, u, "B", true,
	    NULL), 0);
	ck_assert_int_eq(store_mailbox_subscribe(t.store, v, "C", true,
	    NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_subscription_foreach(r, u, first_sub_stops, buf,
	    NULL), 7);
	ck_assert_str_eq(buf, "A");
	buf[0] = '\0';
	ck_assert_int_eq(store_subscription_foreach(r, v, collect_sub, buf,
	    NULL), 0);
	ck_assert_str_eq(buf, "C,INBOX,");
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

START_TEST(mailbox_count_limit)
{
	struct tstore t;
	char name[32];
	int i, rc = 0;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	for (i = 1; i < STORE_MAILBOXES_MAX && rc == 0; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		rc = store_mailbox_create(t.store, u, name, 0, NULL, NULL);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "one-more", 0, NULL,
	    NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_LIMIT);
	tstore_close(&t);
}
END_TEST

/* Regression: range walks stopped at the next mailbox's keys were taken
   for errors (delete, INBOX rename with mail in later mailboxes). */
START_TEST(walks_stop_at_next_mailbox)
{
	struct tstore t;
	uint32_t x, y;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	ck_assert_int_eq(store_mailbox_create(t.store, u, "x", 0, &x, NULL), 0);
	ck_assert_int_eq(store_mailbox_create(t.store, u, "y", 0, &y, NULL), 0);
	tdeliver(&t, u, inbox, "i", 0);
	tdeliver(&t, u, x, "x", 0);
	tdeliver(&t, u, y, "y", 0);
	ck_assert_int_eq(store_mailbox_rename(t.store, u, "INBOX", "old", NULL),
	    0);
	ck_assert_int_eq(store_mailbox_delete(t.store, u, "x", NULL), 0);
	ck_assert_uint_eq(tinfo(&t, u, y).messages, 1);
	ck_assert_uint_eq(tinfo(&t, u, tmailbox(&t, u, "old")).messages, 1);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static Suite *
store_mailbox_suite(void)
{
	Suite *s = suite_create("store_mailbox");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, mailbox_name_validation);
	tcase_add_test(tc, create_delete_and_parents);
	tcase_add_test(tc, default_mailboxes_with_roles);
	tcase_add_test(tc, rename_moves_children_and_subscriptions);
	tcase_add_test(tc, rename_inbox_moves_messages);
	tcase_add_test(tc, uidvalidity_never_reused);
	tcase_add_test(tc, subscriptions);
	tcase_add_test(tc, default_subscriptions);
	tcase_add_test(tc, subscription_walk_stops_on_callback);
	tcase_add_test(tc, mailbox_count_limit);
	tcase_add_test(tc, walks_stop_at_next_mailbox);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_mailbox_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
