/* Check suite for the store's upstream ledger: entries written with a
   delivery, fingerprints, per-account listing. */
#include "store_test_util.h"

START_TEST(ledger_with_deliver)
{
	struct tstore t;
	struct store_new_msg m[2];
	uint32_t uids[2];
	struct store_read *r;
	struct store_ledger_entry e;
	const char *error = NULL;
	static const char uidl_a[] = "a/../\0\x01";	/* binary, not a path */

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 2; i++) {
		m[i].data = "msg";
		m[i].size = 3;
		m[i].account = "pop1";
	}
	m[0].uidl = uidl_a;
	m[0].uidl_size = sizeof(uidl_a) - 1;
	m[1].uidl = "b";
	m[1].uidl_size = 1;
	ck_assert_msg(store_deliver(t.store, u, inbox, m, 2, uids, NULL,
	    &error) == 0, "%s", error);
	/* The same UIDL again: nothing of the batch is stored. */
	m[0].uidl = "c";
	m[0].uidl_size = 1;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, m, 2, uids, NULL,
	    &error), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 2);

	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", uidl_a,
	    sizeof(uidl_a) - 1, &e, NULL), 0);
	ck_assert_uint_eq(e.mailbox_id, inbox);
	ck_assert_uint_eq(e.uid, 1);
	ck_assert(e.seen > 0);
	ck_assert(!e.deleted_upstream);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "c", 1, &e, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop", "b", 1, &e, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);

	ck_assert_int_eq(store_ledger_add(t.store, u, "pop1", "c", 1, NULL),
	    0);
	ck_assert_int_eq(store_ledger_add(t.store, u, "pop1", "c", 1, NULL),
	    -1);
	ck_assert_int_eq(store_ledger_add(t.store, u, "pop12", "c", 1, NULL),
	    0);
	{
		const void *uidls[] = { "b", "zz" };
		size_t sizes[] = { 1, 2 };

		ck_assert_int_eq(store_ledger_mark_deleted(t.store, u, "pop1",
		    uidls, sizes, 2, &error), 0);
	}
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "b", 1, &e, NULL),
	    0);
	ck_assert(e.deleted_upstream);
	ck_assert_uint_eq(e.uid, 2);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "c", 1, &e, NULL),
	    0);
	ck_assert_uint_eq(e.mailbox_id, 0);
	store_read_end(&r);

	ck_assert_int_eq(store_ledger_remove(t.store, u, "pop1", "b", 1, NULL),
	    0);
	ck_assert_int_eq(store_ledger_remove(t.store, u, "pop1", "b", 1, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_ledger_remove_account(t.store, u, "pop1", NULL),
	    0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "c", 1, &e, NULL),
	    STORE_NOT_FOUND);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop12", "c", 1, &e, NULL),
	    0);
	store_read_end(&r);
	/* The messages stay: the ledger is bookkeeping about upstream. */
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 2);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static int
count_entry(void *ctx, const struct store_ledger_entry *e)
{
	(*(int *)ctx)++;
	ck_assert_uint_ge(e->uidl_size, 1);
	return 0;
}

/*
 * Regression (review): the only record of what a UIDL delivered was
 * (mailbox, uid), which goes stale when the user moves or expunges the
 * message. The POP3 side compared a UIDL listed again after DELE+QUIT with
 * the message found there, so a message the server kept was delivered a
 * second time once the user had filed or deleted the first copy. The
 * ledger now keeps the body's size and fingerprint itself.
 */
START_TEST(ledger_fingerprint_survives_move_and_expunge)
{
	static const char body[] = "From: a@b\r\n\r\nkept by the server\r\n";
	struct tstore t;
	struct store_new_msg m;
	struct store_ledger_entry e;
	struct store_copy_result cr;
	struct store_uid_range all = { 1, UINT32_MAX };
	struct store_read *r;
	uint32_t uid, archive;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");

	ck_assert_int_eq(store_mailbox_create(t.store, u, "Archive", 0,
	    &archive, NULL), 0);
	memset(&m, 0, sizeof(m));
	m.data = body;
	m.size = sizeof(body) - 1;
	m.account = "acct";
	m.uidl = "U1";
	m.uidl_size = 2;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_ledger_add(t.store, u, "acct", "U2", 2, NULL),
	    0);
	/* The user files the message, then deletes it. */
	ck_assert_int_eq(store_copy(t.store, u, inbox, archive, &all, 1, true,
	    &cr, NULL), 0);
	store_copy_result_free(&cr);
	ck_assert_int_eq(store_expunge(t.store, u, archive, NULL, 0, false,
	    NULL, NULL, NULL), 0);
	tstore_reopen(&t);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "acct", "U1", 2, &e, NULL),
	    0);
	ck_assert(e.has_fingerprint);
	ck_assert_uint_eq(e.body_size, sizeof(body) - 1);
	ck_assert_uint_eq(e.body_hash, store_body_fingerprint(body,
	    sizeof(body) - 1));
	ck_assert_uint_ne(e.body_hash, store_body_fingerprint(body,
	    sizeof(body) - 2));
	ck_assert_int_eq(store_ledger_lookup(r, u, "acct", "U2", 2, &e, NULL),
	    0);
	ck_assert(!e.has_fingerprint);
	store_read_end(&r);
	/* Marking deleted upstream keeps it. */
	{
		const void *uidls[1] = { "U1" };
		size_t sizes[1] = { 2 };

		ck_assert_int_eq(store_ledger_mark_deleted(t.store, u, "acct",
		    uidls, sizes, 1, NULL), 0);
	}
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "acct", "U1", 2, &e, NULL),
	    0);
	ck_assert(e.deleted_upstream && e.has_fingerprint);
	ck_assert_uint_eq(e.body_hash, store_body_fingerprint(body,
	    sizeof(body) - 1));
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* The fingerprint is part of the on-disk format: pin its values. */
START_TEST(body_fingerprint_is_stable)
{
	static const char *const inputs[] = { "", "a", "12345678",
	    "123456789", "From: a@b\r\n\r\nx\r\n" };
	uint64_t seen[5];

	for (size_t i = 0; i < 5; i++) {
		seen[i] = store_body_fingerprint(inputs[i], strlen(inputs[i]));
		for (size_t j = 0; j < i; j++)
			ck_assert_uint_ne(seen[i], seen[j]);
	}
	ck_assert_uint_eq(store_body_fingerprint("\0", 1) ==
	    store_body_fingerprint("", 0), 0);
	ck_assert_uint_eq(seen[0], 0x9ca066f1a4ab2eeaULL);
	ck_assert_uint_eq(seen[4], 0xeb3f1ac7f38f31a8ULL);
}
END_TEST

START_TEST(ledger_foreach_per_account)
{
	struct tstore t;
	struct store_read *r;
	int n = 0;

	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	for (int i = 0; i < 5; i++) {
		char uidl[16];

		snprintf(uidl, sizeof(uidl), "u%d", i);
		ck_assert_int_eq(store_ledger_add(t.store, u, "a", uidl,
		    strlen(uidl), NULL), 0);
	}
	ck_assert_int_eq(store_ledger_add(t.store, u, "ab", "u0", 2, NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_foreach(r, u, "a", count_entry, &n, NULL),
	    0);
	ck_assert_int_eq(n, 5);
	n = 0;
	ck_assert_int_eq(store_ledger_foreach(r, u, "ab", count_entry, &n,
	    NULL), 0);
	ck_assert_int_eq(n, 1);
	store_read_end(&r);
	tstore_close(&t);
}
END_TEST

/* store_uidl_vanished_fn over a NUL-separated list of listed UIDLs. */
static bool
not_in(void *ctx, const void *uidl, size_t size)
{
	for (const char *p = ctx; *p != '\0'; p += strlen(p) + 1) {
		if (strlen(p) == size && memcmp(p, uidl, size) == 0)
			return false;
	}
	return true;
}

/* Content identity (issue 15): renumbered UIDLs claim the earlier
   deliveries of the same bytes, each at most once; a UIDL still listed is
   a second copy, never claimed; another account's entries never count. */
START_TEST(ledger_claim_digest)
{
	struct tstore t;
	struct store_new_msg m[3];
	struct store_read *r;
	struct store_ledger_entry e, old;
	unsigned char d1[STORE_DIGEST_SIZE], d2[STORE_DIGEST_SIZE];
	uint32_t uids[3];
	bool claimed;

	memset(d1, 0x11, sizeof(d1));
	memset(d2, 0x22, sizeof(d2));
	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(m, 0, sizeof(m));
	/* two identical messages (a, b) and another (c) */
	for (int i = 0; i < 3; i++) {
		m[i].data = i < 2 ? "same" : "other";
		m[i].size = strlen(m[i].data);
		m[i].account = "pop1";
		m[i].uidl = (const char *[]){ "a", "b", "c" }[i];
		m[i].uidl_size = 1;
		m[i].digest = i < 2 ? d1 : d2;
	}
	ck_assert_int_eq(store_deliver(t.store, u, inbox, m, 3, uids, NULL,
	    NULL), 0);
	/* another account with the same bytes: never claimed from pop1 */
	m[0].account = "pop2";
	m[0].uidl = "z";
	ck_assert_int_eq(store_deliver(t.store, u, inbox, m, 1, uids, NULL,
	    NULL), 0);

	/* "a" and "b" still listed: a new "x" with their bytes is a third
	   copy, not a known one */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d1, "x", 1, not_in, (char *)"a\0b\0x\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* renumbered: a, b, c became x, y, w */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d1, "x", 1, not_in, (char *)"x\0y\0w\0", &claimed, NULL), 0);
	ck_assert(claimed);
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d1, "y", 1, not_in, (char *)"x\0y\0w\0", &claimed, NULL), 0);
	ck_assert(claimed);
	/* both earlier copies are claimed: a third is new */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d1, "v", 1, not_in, (char *)"x\0y\0w\0v\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* unknown bytes: nothing */
	memset(d2, 0x33, sizeof(d2));
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d2, "w", 1, not_in, (char *)"x\0y\0w\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* a UIDL already in the ledger */
	memset(d2, 0x22, sizeof(d2));
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d2, "x", 1, not_in, (char *)"x\0", &claimed, NULL), -1);
	ck_assert_int_eq(store_last_error(t.store), STORE_ERR_EXISTS);
	ck_assert(!claimed);
	tstore_reopen(&t);
	ck_assert_uint_eq(tinfo(&t, u, inbox).messages, 4);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "a", 1, &old,
	    NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "x", 1, &e, NULL),
	    0);
	/* the new UIDL says the same delivery as the old */
	ck_assert(e.has_digest && memcmp(e.digest, d1, sizeof(d1)) == 0);
	ck_assert(e.has_body);
	ck_assert_uint_eq(e.mailbox_id, inbox);
	ck_assert(e.body_id == old.body_id && e.uid == old.uid);
	ck_assert_int_eq(store_ledger_lookup(r, u, "pop1", "v", 1, &e, NULL),
	    STORE_NOT_FOUND);
	store_read_end(&r);
	tstore_check(&t);
	/* the whole account's ledger goes with its digests */
	ck_assert_int_eq(store_ledger_remove_account(t.store, u, "pop1", NULL),
	    0);
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "pop1", NULL,
	    d1, "q", 1, not_in, (char *)"", &claimed, NULL), 0);
	ck_assert(!claimed);
	tstore_close(&t);
}
END_TEST

/* Keyed by upstream mailbox (issue 15, session 3): an account re-added
   under another name finds the deliveries of the old name on the same
   mailbox (its UIDL, still listed, is the same message); an index by
   account name is moved over once; another mailbox's never count; the
   account's entries go with store_ledger_remove_account. */
START_TEST(ledger_claim_digest_by_mailbox)
{
	struct tstore t;
	struct store_new_msg m;
	struct store_read *r;
	struct store_ledger_entry e, old;
	unsigned char d1[STORE_DIGEST_SIZE], mk[STORE_MAILBOX_KEY_SIZE];
	unsigned char mk2[STORE_MAILBOX_KEY_SIZE];
	uint32_t uid;
	size_t moved;
	bool claimed;

	memset(d1, 0x11, sizeof(d1));
	memset(mk, 0xa1, sizeof(mk));
	memset(mk2, 0xa2, sizeof(mk2));
	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(&m, 0, sizeof(m));
	m.data = "same";
	m.size = 4;
	m.account = "old";
	m.uidl = "a";
	m.uidl_size = 1;
	m.digest = d1;		/* indexed by account name: the older way */
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    NULL), 0);
	/* by mailbox, before the move: "old"'s delivery is not seen */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "new", mk, d1,
	    "a", 1, not_in, (char *)"a\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	ck_assert_int_eq(store_ledger_digests_rekey(t.store, u, "old", mk,
	    &moved, NULL), 0);
	ck_assert_uint_eq(moved, 1);
	ck_assert_int_eq(store_ledger_digests_rekey(t.store, u, "old", mk,
	    &moved, NULL), 0);
	ck_assert_uint_eq(moved, 0);
	/* another mailbox: nothing */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "new", mk2, d1,
	    "a", 1, not_in, (char *)"a\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* another UIDL while "a" is still listed: a second copy */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "new", mk, d1,
	    "b", 1, not_in, (char *)"a\0b\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* "new" lists "a" too: the same message, taken over */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "new", mk, d1,
	    "a", 1, not_in, (char *)"a\0b\0", &claimed, NULL), 0);
	ck_assert(claimed);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "old", "a", 1, &old, NULL),
	    0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "new", "a", 1, &e, NULL),
	    0);
	ck_assert(e.uid == old.uid && e.body_id == old.body_id);
	store_read_end(&r);
	/* claimed once: the index names "new"/"a" now, which is still
	   listed, so another UIDL of "new" with these bytes is a copy */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "new", mk, d1,
	    "c", 1, not_in, (char *)"a\0c\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* delivered through the index by mailbox, then the account goes */
	m.account = "new";
	m.uidl = "d";
	m.mailbox_key = mk;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    NULL), 0);
	tstore_check(&t);
	ck_assert_int_eq(store_ledger_remove_account(t.store, u, "new", NULL),
	    0);
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "x", mk, d1,
	    "d", 1, not_in, (char *)"d\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	tstore_close(&t);
}
END_TEST

static int
count_each(void *ctx, const char *account,
    const struct store_ledger_entry *e)
{
	int *n = ctx;

	(void)account;
	if (e->has_head && e->list_size == 40)
		(*n)++;
	return 0;
}

/* Recognition by header (issue 15, session 4): a claim needs the same
   content digest AND the same header digest and LIST size; the new entry
   is marked by_head, and a later claim by content clears the mark; the
   mailbox walk sees the deliveries of every account name. */
START_TEST(ledger_claim_head)
{
	struct tstore t;
	struct store_new_msg m;
	struct store_read *r;
	struct store_ledger_entry e;
	unsigned char d1[STORE_DIGEST_SIZE], h1[STORE_DIGEST_SIZE];
	unsigned char h2[STORE_DIGEST_SIZE], mk[STORE_MAILBOX_KEY_SIZE];
	uint32_t uid;
	bool claimed;
	int n = 0;

	memset(d1, 0x11, sizeof(d1));
	memset(h1, 0x21, sizeof(h1));
	memset(h2, 0x22, sizeof(h2));
	memset(mk, 0xa1, sizeof(mk));
	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t inbox = tmailbox(&t, u, "INBOX");
	memset(&m, 0, sizeof(m));
	m.data = "same";
	m.size = 4;
	m.account = "old";
	m.uidl = "a";
	m.uidl_size = 1;
	m.digest = d1;
	m.mailbox_key = mk;
	m.head_digest = h1;
	m.list_size = 40;
	ck_assert_int_eq(store_deliver(t.store, u, inbox, &m, 1, &uid, NULL,
	    NULL), 0);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_mailbox_foreach(r, u, mk, count_each,
	    &n, NULL), 0);
	store_read_end(&r);
	ck_assert_int_eq(n, 1);
	/* another header digest, another size: not this delivery */
	ck_assert_int_eq(store_ledger_claim_head(t.store, u, "new", mk, d1,
	    h2, 40, "b", 1, not_in, (char *)"b\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	ck_assert_int_eq(store_ledger_claim_head(t.store, u, "new", mk, d1,
	    h1, 41, "b", 1, not_in, (char *)"b\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	/* no mailbox: refused */
	ck_assert_int_eq(store_ledger_claim_head(t.store, u, "new", NULL, d1,
	    h1, 40, "b", 1, not_in, (char *)"b\0", &claimed, NULL), -1);
	/* "a" still listed: a second copy, not this delivery */
	ck_assert_int_eq(store_ledger_claim_head(t.store, u, "old", mk, d1,
	    h1, 40, "b", 1, not_in, (char *)"a\0b\0", &claimed, NULL), 0);
	ck_assert(!claimed);
	ck_assert_int_eq(store_ledger_claim_head(t.store, u, "old", mk, d1,
	    h1, 40, "b", 1, not_in, (char *)"b\0", &claimed, NULL), 0);
	ck_assert(claimed);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "old", "b", 1, &e, NULL),
	    0);
	ck_assert(e.by_head && e.has_head && e.list_size == 40);
	ck_assert(e.uid == uid);
	store_read_end(&r);
	/* renumbered again, recognised by its bytes: the mark goes */
	ck_assert_int_eq(store_ledger_claim_digest(t.store, u, "old", mk, d1,
	    "c", 1, not_in, (char *)"c\0", &claimed, NULL), 0);
	ck_assert(claimed);
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_lookup(r, u, "old", "c", 1, &e, NULL),
	    0);
	ck_assert(!e.by_head && e.has_head);
	store_read_end(&r);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

/* Mailbox names (issue 15, session 4): a key never seen is its own
   canonical key; names recorded with it lead to it afterwards, from any
   account; a name once given never changes. */
START_TEST(ledger_mailbox_names)
{
	struct tstore t;
	struct store_read *r;
	unsigned char n1[STORE_MAILBOX_KEY_SIZE], a1[STORE_MAILBOX_KEY_SIZE];
	unsigned char n2[STORE_MAILBOX_KEY_SIZE], c[STORE_MAILBOX_KEY_SIZE];
	const unsigned char *keys[2];

	memset(n1, 0x01, sizeof(n1));
	memset(a1, 0x0a, sizeof(a1));
	memset(n2, 0x02, sizeof(n2));
	tstore_open(&t, 0);
	uint32_t u = tuser(&t, "alice");
	uint32_t v = tuser(&t, "bob");
	/* nothing recorded: the name's own key */
	keys[0] = n2;
	keys[1] = a1;
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_mailbox_canon(r, u, keys, 2, c, NULL), 0);
	store_read_end(&r);
	ck_assert(memcmp(c, n2, sizeof(c)) == 0);
	/* "localhost" reached at 127.0.0.1: both name n1 */
	keys[0] = n1;
	ck_assert_int_eq(store_ledger_mailbox_alias(t.store, u, keys, 2, c,
	    NULL), 0);
	ck_assert(memcmp(c, n1, sizeof(c)) == 0);
	/* "127.0.0.1" (its name's key is the address's): n1's deliveries */
	keys[0] = a1;
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_mailbox_canon(r, u, keys, 1, c, NULL), 0);
	store_read_end(&r);
	ck_assert(memcmp(c, n1, sizeof(c)) == 0);
	/* another name at that address joins n1 */
	keys[0] = n2;
	ck_assert_int_eq(store_ledger_mailbox_alias(t.store, u, keys, 2, c,
	    NULL), 0);
	ck_assert(memcmp(c, n1, sizeof(c)) == 0);
	keys[1] = NULL;
	ck_assert_int_eq(store_read_begin(t.store, &r, NULL), 0);
	ck_assert_int_eq(store_ledger_mailbox_canon(r, u, keys, 1, c, NULL), 0);
	ck_assert(memcmp(c, n1, sizeof(c)) == 0);
	/* per user: bob has none of alice's names */
	ck_assert_int_eq(store_ledger_mailbox_canon(r, v, keys, 1, c, NULL), 0);
	ck_assert(memcmp(c, n2, sizeof(c)) == 0);
	store_read_end(&r);
	ck_assert_int_eq(store_ledger_mailbox_alias(t.store, u, keys, 0, c,
	    NULL), -1);
	tstore_check(&t);
	tstore_close(&t);
}
END_TEST

static Suite *
store_ledger_suite(void)
{
	Suite *s = suite_create("store_ledger");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ledger_with_deliver);
	tcase_add_test(tc, ledger_fingerprint_survives_move_and_expunge);
	tcase_add_test(tc, body_fingerprint_is_stable);
	tcase_add_test(tc, ledger_foreach_per_account);
	tcase_add_test(tc, ledger_claim_digest);
	tcase_add_test(tc, ledger_claim_digest_by_mailbox);
	tcase_add_test(tc, ledger_claim_head);
	tcase_add_test(tc, ledger_mailbox_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_ledger_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
