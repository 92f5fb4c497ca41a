/* Check suite for the offline consistency checker: a consistent store
   passes; each kind of damage, made with raw LMDB writes behind the
   store's back, is found. */
#include <lmdb.h>

#include "store/store-private.h"
#include "store_test_util.h"

enum damage {
	DAMAGE_COUNTER,
	DAMAGE_MISSING_BODY,
	DAMAGE_ORPHAN_BODY,
	DAMAGE_MESSAGE_GONE,
	DAMAGE_NAME_INDEX,
	DAMAGE_UID_PAST_UIDNEXT,
	DAMAGE_SHORT_RECORD,	/* message record of the wrong size */
	DAMAGE_SORTKEY_ORPHAN,	/* sort keys of a body that is not there */
	DAMAGE_SORTKEY_GARBAGE,	/* sort keys that do not read */
};

static void
be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void
be64(unsigned char *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* Makes a small consistent store: user 1, INBOX with two messages. */
static void
make_store(struct tstore *t, uint32_t *user, uint32_t *inbox)
{
	tstore_open(t, 0);
	*user = tuser(t, "alice");
	*inbox = tmailbox(t, *user, "INBOX");
	tdeliver(t, *user, *inbox, "one", 0);
	tdeliver(t, *user, *inbox, "two", STORE_FLAG_SEEN);
	store_close(&t->store);
}

static void
damage(const char *dir, uint32_t user, uint32_t inbox, enum damage d)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val key, data;
	unsigned char k[32];

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 32), 0);
	ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	switch (d) {
	case DAMAGE_COUNTER: {
		struct store_mbrec rec;
		unsigned char buf[1024];

		ck_assert_int_eq(mdb_dbi_open(txn, "mailboxes", 0, &dbi), 0);
		be32(k, user);
		be32(k + 4, inbox);
		key.mv_data = k;
		key.mv_size = 8;
		ck_assert_int_eq(mdb_get(txn, dbi, &key, &data), 0);
		memcpy(buf, data.mv_data, data.mv_size);
		memcpy(&rec, buf, sizeof(rec));
		rec.unseen++;
		memcpy(buf, &rec, sizeof(rec));
		data.mv_data = buf;
		ck_assert_int_eq(mdb_put(txn, dbi, &key, &data, 0), 0);
		break;
	}
	case DAMAGE_MISSING_BODY:
	case DAMAGE_ORPHAN_BODY:
		ck_assert_int_eq(mdb_dbi_open(txn, "bodies", 0, &dbi), 0);
		be32(k, user);
		be64(k + 4, d == DAMAGE_MISSING_BODY ? 1 : 999);
		key.mv_data = k;
		key.mv_size = 12;
		if (d == DAMAGE_MISSING_BODY) {
			ck_assert_int_eq(mdb_del(txn, dbi, &key, NULL), 0);
		} else {
			data.mv_data = (void *)"orphan";
			data.mv_size = 6;
			ck_assert_int_eq(mdb_put(txn, dbi, &key, &data, 0), 0);
		}
		break;
	case DAMAGE_SHORT_RECORD:
		ck_assert_int_eq(mdb_dbi_open(txn, "messages", 0, &dbi), 0);
		be32(k, user);
		be32(k + 4, inbox);
		be32(k + 8, 1);
		key.mv_data = k;
		key.mv_size = 12;
		data.mv_data = (void *)"short";
		data.mv_size = 5;
		ck_assert_int_eq(mdb_put(txn, dbi, &key, &data, 0), 0);
		break;
	case DAMAGE_MESSAGE_GONE:
	case DAMAGE_UID_PAST_UIDNEXT:
		ck_assert_int_eq(mdb_dbi_open(txn, "messages", 0, &dbi), 0);
		be32(k, user);
		be32(k + 4, inbox);
		be32(k + 8, 1);
		key.mv_data = k;
		key.mv_size = 12;
		if (d == DAMAGE_MESSAGE_GONE) {
			ck_assert_int_eq(mdb_del(txn, dbi, &key, NULL), 0);
		} else {
			unsigned char rec[sizeof(struct store_msgrec)];

			ck_assert_int_eq(mdb_get(txn, dbi, &key, &data), 0);
			memcpy(rec, data.mv_data, sizeof(rec));
			ck_assert_int_eq(mdb_del(txn, dbi, &key, NULL), 0);
			be32(k + 8, 50);
			data.mv_data = rec;
			data.mv_size = sizeof(rec);
			ck_assert_int_eq(mdb_put(txn, dbi, &key, &data, 0), 0);
		}
		break;
	case DAMAGE_SORTKEY_ORPHAN:
	case DAMAGE_SORTKEY_GARBAGE: {
		/* a valid record (version 1, no keys): 12 + 4 empty strings */
		unsigned char rec[16] = { 1 };

		ck_assert_int_eq(mdb_dbi_open(txn, "sortkeys", MDB_CREATE,
		    &dbi), 0);
		be32(k, user);
		be64(k + 4, d == DAMAGE_SORTKEY_ORPHAN ? 999 : 1);
		key.mv_data = k;
		key.mv_size = 12;
		if (d == DAMAGE_SORTKEY_GARBAGE)
			rec[0] = 77;
		data.mv_data = rec;
		data.mv_size = sizeof(rec);
		ck_assert_int_eq(mdb_put(txn, dbi, &key, &data, 0), 0);
		break;
	}
	case DAMAGE_NAME_INDEX:
		ck_assert_int_eq(mdb_dbi_open(txn, "mbnames", 0, &dbi), 0);
		be32(k, user);
		memcpy(k + 4, "INBOX", 5);
		key.mv_data = k;
		key.mv_size = 9;
		ck_assert_int_eq(mdb_del(txn, dbi, &key, NULL), 0);
		break;
	}
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

START_TEST(checker_finds_damage)
{
	struct tstore t;
	uint32_t user, inbox;
	unsigned int problems = 0;
	const char *error = NULL;
	FILE *report = tmpfile();

	make_store(&t, &user, &inbox);
	ck_assert_int_eq(store_check(t.dir, report, &problems, &error), 0);
	ck_assert_uint_eq(problems, 0);
	damage(t.dir, user, inbox, (enum damage)_i);
	ck_assert_int_eq(store_check(t.dir, report, &problems, &error), -1);
	ck_assert_uint_gt(problems, 0);
	ck_assert_ptr_nonnull(strstr(error, "problem"));
	ck_assert_int_gt(ftell(report), 0);
	fclose(report);
	tstore_close(&t);
}
END_TEST

/* Names that are one under case folding are reported, never merged. */
START_TEST(checker_reports_names_one_under_folding)
{
	struct tstore t;
	unsigned int problems = 0;
	const char *error = NULL;
	FILE *report = tmpfile();
	char buf[512];
	size_t n;

	tstore_open(&t, 0);
	ck_assert_int_eq(store_user_create(t.store, "alice@example.org", "", 0,
	    NULL, NULL), 0);
	ck_assert_int_eq(store_user_create(t.store, "bob", "", 0, NULL, NULL),
	    0);
	store_close(&t.store);
	ck_assert_int_eq(store_check(t.dir, report, &problems, &error), 0);
	ck_assert_uint_eq(problems, 0);
	tstore_reopen(&t);
	ck_assert_int_eq(store_user_create(t.store, "Alice@Example.ORG", "",
	    0, NULL, NULL), 0);
	store_close(&t.store);
	ck_assert_int_eq(store_check(t.dir, report, &problems, &error), -1);
	ck_assert_uint_eq(problems, 1);
	rewind(report);
	n = fread(buf, 1, sizeof(buf) - 1, report);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "\"Alice@Example.ORG\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"alice@example.org\""));
	fclose(report);
	tstore_reopen(&t);
	tstore_close(&t);
}
END_TEST

/* A damaged message record is reported as an error by the listing, as
   by a single lookup; it used to end the listing silently, hiding every
   later message of the mailbox. */
START_TEST(listing_reports_a_damaged_record)
{
	struct tstore t;
	uint32_t user, inbox;
	struct store_read *r;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct store_msg *msgs = NULL;
	size_t n = 0;
	const char *error = NULL;

	make_store(&t, &user, &inbox);
	damage(t.dir, user, inbox, DAMAGE_SHORT_RECORD);
	ck_assert_msg(store_open(t.dir, NULL, &t.store, &error) == 0, "%s",
	    error);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_msg_list(r, user, inbox, &all, 1, &msgs, &n,
	    &error), -1);
	ck_assert_ptr_null(msgs);
	ck_assert_ptr_nonnull(strstr(error, "corrupt message record"));
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_IO);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

/* Production durability: the environment is never opened with the flags
   that trade durability for speed. */
START_TEST(env_flags_are_durable)
{
	struct tstore t;
	unsigned int flags = 0;

	tstore_open(&t, 0);
	ck_assert_int_eq(mdb_env_get_flags(t.store->env, &flags), 0);
	ck_assert_uint_eq(flags & (MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC |
	    MDB_WRITEMAP), 0);
	ck_assert_uint_ne(flags & MDB_NOTLS, 0);
	tstore_close(&t);
}
END_TEST

static Suite *
store_check_suite(void)
{
	Suite *s = suite_create("store_check");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, checker_finds_damage, DAMAGE_COUNTER,
	    DAMAGE_SORTKEY_GARBAGE + 1);
	tcase_add_test(tc, listing_reports_a_damaged_record);
	tcase_add_test(tc, checker_reports_names_one_under_folding);
	tcase_add_test(tc, env_flags_are_durable);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_check_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
