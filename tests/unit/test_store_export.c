/* Check suite for store-export: a user written back by the import calls
   keeps UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UIDs, MODSEQs, the expunge
   history (QRESYNC sees exactly it), shared bodies and the ledger; bad
   values are refused; the moved mark stops upstream deliveries. */
#include "store_test_util.h"

struct van {
	uint64_t modseq[8];
	uint32_t uid[8];
	size_t n;
};

static int
van_cb(void *ctx, uint64_t modseq, uint32_t uid)
{
	struct van *v = ctx;

	ck_assert_uint_lt(v->n, 8);
	v->modseq[v->n] = modseq;
	v->uid[v->n++] = uid;
	return 0;
}

static int
acct_cb(void *ctx, const char *account)
{
	char *seen = ctx;

	strcat(seen, account);
	strcat(seen, ";");
	return 0;
}

START_TEST(import_keeps_ids)
{
	struct tstore t;
	struct store_import_mailbox mb = { "INBOX", STORE_ROLE_NONE,
	    1500000000u, 20, 77 };
	struct store_import_mailbox work = { "Work", STORE_ROLE_ARCHIVE,
	    1500000001u, 5, 9 };
	struct store_import_msg m[2];
	const char *kw[] = { "$Project" };
	uint64_t body[2], body2;
	uint64_t vmod[] = { 30, 70 };
	uint32_t vuid[] = { 4, 12 };
	struct store_ledger_entry e;
	struct store_changes ch;
	struct store_read *r;
	struct store_msg msg;
	struct van v = { { 0 }, { 0 }, 0 };
	char accounts[128] = "";
	const char *error = NULL;
	uint32_t u, inbox, wid, newbox;

	tstore_open(&t, 0);
	ck_assert_msg(store_import_user(t.store, "alice", "hash", 1234, &u,
	    &error) == 0, "%s", error);
	ck_assert_msg(store_import_mailbox(t.store, u, &mb, &inbox,
	    &error) == 0, "%s", error);
	ck_assert_msg(store_import_mailbox(t.store, u, &work, &wid,
	    &error) == 0, "%s", error);
	memset(m, 0, sizeof(m));
	m[0].uid = 5;
	m[0].modseq = 40;
	m[0].system_flags = STORE_FLAG_SEEN;
	m[0].keywords = kw;
	m[0].keyword_count = 1;
	m[0].internaldate = 1000;
	m[0].data = "Subject: a\r\n\r\nx\r\n";
	m[0].size = strlen(m[0].data);
	m[1] = m[0];
	m[1].uid = 19;
	m[1].modseq = 77;
	m[1].keyword_count = 0;
	ck_assert_msg(store_import_messages(t.store, u, inbox, m, 2, body,
	    &error) == 0, "%s", error);
	ck_assert(body[0] != body[1]);
	/* a copy in Work shares the first body */
	m[0].uid = 3;
	m[0].modseq = 9;
	m[0].body_id = body[0];
	ck_assert_msg(store_import_messages(t.store, u, wid, m, 1, &body2,
	    &error) == 0, "%s", error);
	ck_assert_uint_eq(body2, body[0]);
	ck_assert_msg(store_import_vanished(t.store, u, inbox, vmod, vuid, 2,
	    &error) == 0, "%s", error);
	ck_assert_int_eq(store_import_subscribe(t.store, u, "Work", &error),
	    0);
	memset(&e, 0, sizeof(e));
	e.uidl = "uidl-1";
	e.uidl_size = 6;
	e.mailbox_id = inbox;
	e.uid = 5;
	e.seen = 99;
	e.has_body = true;
	e.body_id = body[0];
	e.has_digest = true;
	memset(e.digest, 0xab, sizeof(e.digest));
	ck_assert_int_eq(store_import_ledger(t.store, u, "u1:legacy", &e,
	    &error), 0);
	/* the same UIDL twice is refused */
	ck_assert_int_eq(store_import_ledger(t.store, u, "u1:legacy", &e,
	    &error), -1);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	{
		struct store_mailbox_info i;

		ck_assert_int_eq(store_mailbox_get(r, u, inbox, &i, NULL), 0);
		ck_assert_uint_eq(i.uidvalidity, 1500000000u);
		ck_assert_uint_eq(i.uidnext, 20);
		ck_assert_uint_eq(i.highestmodseq, 77);
		ck_assert_uint_eq(i.messages, 2);
		ck_assert_uint_eq(i.unseen, 0);
		ck_assert_int_eq(store_mailbox_get(r, u, wid, &i, NULL), 0);
		ck_assert_int_eq(i.role, STORE_ROLE_ARCHIVE);
		ck_assert(i.subscribed);
	}
	ck_assert_int_eq(store_msg_get(r, u, inbox, 5, &msg, NULL), 0);
	ck_assert_uint_eq(msg.modseq, 40);
	ck_assert_uint_eq(msg.flags.keywords[0], 1);
	/* QRESYNC from MODSEQ 50: message 19 changed, UID 12 vanished */
	ck_assert_int_eq(store_changes_since(r, u, inbox, 50, &ch, NULL), 0);
	ck_assert_uint_eq(ch.changed_count, 1);
	ck_assert_uint_eq(ch.changed[0].uid, 19);
	ck_assert_uint_eq(ch.vanished_count, 1);
	ck_assert_uint_eq(ch.vanished[0].first, 12);
	store_changes_free(&ch);
	ck_assert_int_eq(store_vanished_foreach(r, u, inbox, van_cb, &v,
	    NULL), 0);
	ck_assert_uint_eq(v.n, 2);
	ck_assert(v.modseq[0] == 30 && v.uid[0] == 4 && v.modseq[1] == 70);
	ck_assert_int_eq(store_ledger_lookup(r, u, "u1:legacy", "uidl-1", 6,
	    &e, NULL), 0);
	ck_assert(e.has_digest && e.body_id == body[0] && e.uid == 5);
	ck_assert_int_eq(store_ledger_accounts(r, u, acct_cb, accounts,
	    NULL), 0);
	ck_assert_str_eq(accounts, "u1:legacy;");
	store_read_end(&r);
	/* a mailbox made later gets a UIDVALIDITY never imported */
	ck_assert_int_eq(store_mailbox_create(t.store, u, "New",
	    STORE_ROLE_NONE, &newbox, &error), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	{
		struct store_mailbox_info i;

		ck_assert_int_eq(store_mailbox_get(r, u, newbox, &i, NULL), 0);
		ck_assert_uint_gt(i.uidvalidity, 1500000001u);
	}
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(import_refuses_bad_values)
{
	struct tstore t;
	struct store_import_mailbox mb = { "INBOX", STORE_ROLE_NONE, 7, 10,
	    5 };
	struct store_import_mailbox orphan = { "a/b", STORE_ROLE_NONE, 8, 1,
	    1 };
	struct store_import_msg m;
	uint64_t body, vmod = 6;
	uint32_t vuid = 3, u, inbox, id;
	const char *error = NULL;

	tstore_open(&t, 0);
	ck_assert_int_eq(store_import_user(t.store, "bob", "", 0, &u,
	    &error), 0);
	ck_assert_int_eq(store_import_user(t.store, "bob", "", 0, &id,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_int_eq(store_import_mailbox(t.store, u, &mb, &inbox,
	    &error), 0);
	ck_assert_int_eq(store_import_mailbox(t.store, u, &mb, &id, &error),
	    -1);
	ck_assert_int_eq(store_import_mailbox(t.store, u, &orphan, &id,
	    &error), -1);
	memset(&m, 0, sizeof(m));
	m.data = "x";
	m.size = 1;
	m.uid = 10;		/* not below UIDNEXT */
	m.modseq = 1;
	ck_assert_int_eq(store_import_messages(t.store, u, inbox, &m, 1,
	    &body, &error), -1);
	m.uid = 2;
	m.modseq = 6;		/* above HIGHESTMODSEQ */
	ck_assert_int_eq(store_import_messages(t.store, u, inbox, &m, 1,
	    &body, &error), -1);
	m.modseq = 5;
	m.body_id = 999;	/* a body not imported */
	ck_assert_int_eq(store_import_messages(t.store, u, inbox, &m, 1,
	    &body, &error), -1);
	m.body_id = 0;
	ck_assert_int_eq(store_import_messages(t.store, u, inbox, &m, 1,
	    &body, &error), 0);
	m.uid = 1;		/* below the last one */
	ck_assert_int_eq(store_import_messages(t.store, u, inbox, &m, 1,
	    &body, &error), -1);
	ck_assert_int_eq(store_import_vanished(t.store, u, inbox, &vmod,
	    &vuid, 1, &error), -1);
	vmod = 5;
	vuid = 2;		/* present */
	ck_assert_int_eq(store_import_vanished(t.store, u, inbox, &vmod,
	    &vuid, 1, &error), -1);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

START_TEST(moved_user_takes_no_upstream_mail)
{
	struct tstore t;
	struct store_new_msg m;
	uint32_t uid;
	const char *error = NULL;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "carol");
	uint32_t inbox = tmailbox(&t, u, "INBOX");

	ck_assert_int_eq(store_user_meta_put(t.store, u, STORE_META_MOVED,
	    "{}", 2, &error), 0);
	memset(&m, 0, sizeof(m));
	m.data = "msg";
	m.size = 3;
	m.account = "u1:pop";
	m.uidl = "a";
	m.uidl_size = 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_INVALID);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 0);
	/* the user's own APPEND (no account) still works */
	m.account = NULL;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    &error), 0);
	tstore_close(&t);
}
END_TEST

static Suite *
export_suite(void)
{
	Suite *s = suite_create("store_export");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, import_keeps_ids);
	tcase_add_test(tc, import_refuses_bad_values);
	tcase_add_test(tc, moved_user_takes_no_upstream_mail);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(export_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
