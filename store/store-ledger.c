/*
 * store-ledger — per upstream account, every UIDL seen: when, and where
 * it was delivered. Entries are written by store_deliver() in the same
 * transaction as the messages; this file reads and maintains them.
 * UIDLs are binary-safe key bytes, never file names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"
#include "xmalloc.h"

static void
entry_fill(const MDB_val *key, size_t prefix_len, const MDB_val *data,
    struct store_ledger_entry *e)
{
	struct store_ledgerrec lr;

	memset(&lr, 0, sizeof(lr));
	memcpy(&lr, data->mv_data,
	    data->mv_size < sizeof(lr) ? data->mv_size : sizeof(lr));
	e->uidl = (const unsigned char *)key->mv_data + prefix_len;
	e->uidl_size = key->mv_size - prefix_len;
	e->mailbox_id = lr.mailbox_id;
	e->uid = lr.uid;
	e->seen = lr.seen;
	e->deleted_upstream = (lr.flags & STORE_LEDGER_F_DELETED) != 0;
	e->has_fingerprint = (lr.flags & STORE_LEDGER_F_FINGERPRINT) != 0;
	e->body_size = lr.body_size;
	e->body_hash = lr.body_hash;
	e->has_body = (lr.flags & STORE_LEDGER_F_BODY) != 0;
	e->body_id = lr.body_id;
	e->has_digest = (lr.flags & STORE_LEDGER_F_DIGEST) != 0;
	memcpy(e->digest, lr.digest, sizeof(e->digest));
	e->has_head = (lr.flags & STORE_LEDGER_F_HEAD) != 0;
	memcpy(e->head_digest, lr.head_digest, sizeof(e->head_digest));
	e->list_size = lr.list_size;
	e->by_head = (lr.flags & STORE_LEDGER_F_BY_HEAD) != 0;
}

void
store_ledger_digest_key(struct store_key *k, uint32_t user_id,
    const char *account, const unsigned char *digest, const void *uidl,
    size_t uidl_size)
{
	size_t alen = strlen(account);

	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u8(k, (uint8_t)alen);
	store_key_bytes(k, account, alen);
	store_key_bytes(k, digest, STORE_DIGEST_SIZE);
	if (uidl_size > 0)
		store_key_bytes(k, uidl, uidl_size);
}

static uint64_t
rotl64(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

/* murmur3's finaliser: every input bit reaches every output bit. */
static uint64_t
fmix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* Eight bytes a word (little-endian, so the value does not depend on the
   machine), one multiply in the chain: several GB/s, a small share of a
   delivery's cost. */
uint64_t
store_body_fingerprint(const void *data, size_t size)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)size;
	size_t i = 0;

	for (; i + 8 <= size; i += 8) {
		uint64_t w = 0;

		for (int k = 7; k >= 0; k--)
			w = w << 8 | p[i + (size_t)k];
		h = rotl64(h ^ (w * 0x87c37b91114253d5ULL), 31) *
		    0x4cf5ad432745937fULL;
	}
	if (i < size) {
		uint64_t w = 0;

		for (size_t k = size; k-- > i;)
			w = w << 8 | p[k];
		h = rotl64(h ^ (w * 0x87c37b91114253d5ULL), 31) *
		    0x4cf5ad432745937fULL;
	}
	return fmix64(h ^ (uint64_t)size);
}

/* The key prefix of all entries of an account. */
static int
account_prefix(struct store *store, struct store_key *k, uint32_t user_id,
    const char *account, const char **error_r)
{
	/* A one-byte placeholder UIDL validates the account, then goes. */
	if (store_ledger_key(store, k, user_id, account, "x", 1, error_r) < 0)
		return -1;
	k->len--;
	return 0;
}

int
store_ledger_lookup(struct store_read *r, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    struct store_ledger_entry *entry_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	if (store_ledger_key(r->store, &k, user_id, account, uidl, uidl_size,
	    error_r) < 0)
		return -1;
	key = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[DB_LEDGER], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "ledger");
	/* key is our local buffer: point the UIDL at the caller's bytes. */
	entry_fill(&key, k.len - uidl_size, &data, entry_r);
	entry_r->uidl = uidl;
	return 0;
}

struct ledger_walk {
	size_t prefix_len;
	int (*cb)(void *ctx, const struct store_ledger_entry *entry);
	void *ctx;
};

static int
ledger_walk_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct ledger_walk *w = ctx;
	struct store_ledger_entry e;

	/* The prefix holds the account length, so "ab" never matches
	   entries of account "abc". */
	if (key->mv_size <= w->prefix_len)
		return 0;
	entry_fill(key, w->prefix_len, data, &e);
	return w->cb(w->ctx, &e);
}

int
store_ledger_foreach(struct store_read *r, uint32_t user_id,
    const char *account,
    int (*cb)(void *ctx, const struct store_ledger_entry *entry), void *ctx,
    const char **error_r)
{
	struct store_key k;
	struct ledger_walk w = { .cb = cb, .ctx = ctx };

	if (account_prefix(r->store, &k, user_id, account, error_r) < 0)
		return -1;
	w.prefix_len = k.len;
	return store_prefix_foreach(r->store, r->txn, DB_LEDGER, &k,
	    ledger_walk_each, &w, "ledger list", error_r);
}

/* A new entry: EXISTS when the UIDL has one. */
static int
ledger_put_new(struct store *store, MDB_txn *txn, struct store_key *k,
    struct store_ledgerrec *lr, const char **error_r)
{
	MDB_val key = store_key_val(k), data = { sizeof(*lr), lr };
	int rc = mdb_put(txn, store->dbi[DB_LEDGER], &key, &data,
	    MDB_NOOVERWRITE);

	if (rc == MDB_KEYEXIST)
		return store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: UIDL already in the ledger");
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "ledger write");
	return 0;
}

int
store_ledger_add(struct store *store, uint32_t user_id, const char *account,
    const void *uidl, size_t uidl_size, const char **error_r)
{
	struct store_userrec urec;
	struct store_ledgerrec lr;
	struct store_key k;
	MDB_txn *txn = NULL;

	if (store_ledger_key(store, &k, user_id, account, uidl, uidl_size,
	    error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	memset(&lr, 0, sizeof(lr));
	lr.seen = (int64_t)time(NULL);
	if (ledger_put_new(store, txn, &k, &lr, error_r) < 0)
		goto fail;
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

/* Commits txn when it changed something, else drops it (no empty
 * commit). */
static int
commit_if(struct store *store, MDB_txn *txn, bool changed,
    const char **error_r)
{
	if (!changed) {
		store_wabort(store, txn);
		store_ok(store);
		return 0;
	}
	return store_wcommit(store, txn, error_r);
}

int
store_ledger_mark_deleted(struct store *store, uint32_t user_id,
    const char *account, const void *const *uidls, const size_t *uidl_sizes,
    size_t count, const char **error_r)
{
	MDB_txn *txn = NULL;
	size_t changed = 0;

	for (size_t i = 0; i < count; i++) {
		struct store_key k;

		if (store_ledger_key(store, &k, user_id, account, uidls[i],
		    uidl_sizes[i], error_r) < 0)
			return -1;
	}
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		struct store_ledgerrec lr;
		struct store_key k;
		MDB_val key, data;
		int rc;

		(void)store_ledger_key(store, &k, user_id, account, uidls[i],
		    uidl_sizes[i], NULL);
		key = store_key_val(&k);
		rc = mdb_get(txn, store->dbi[DB_LEDGER], &key, &data);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0) {
			store_fail_mdb(store, error_r, rc, "ledger");
			goto fail;
		}
		memset(&lr, 0, sizeof(lr));
		memcpy(&lr, data.mv_data, data.mv_size < sizeof(lr) ?
		    data.mv_size : sizeof(lr));
		if ((lr.flags & STORE_LEDGER_F_DELETED) != 0)
			continue;
		lr.flags |= STORE_LEDGER_F_DELETED;
		data.mv_data = &lr;
		data.mv_size = sizeof(lr);
		if ((rc = mdb_put(txn, store->dbi[DB_LEDGER], &key, &data,
		    0)) != 0) {
			store_fail_mdb(store, error_r, rc, "ledger write");
			goto fail;
		}
		changed++;
	}
	return commit_if(store, txn, changed > 0, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_ledger_remove(struct store *store, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    const char **error_r)
{
	struct store_key k;

	if (store_ledger_key(store, &k, user_id, account, uidl, uidl_size,
	    error_r) < 0)
		return -1;
	return store_del_key(store, DB_LEDGER, &k, "ledger delete", error_r);
}

static int remove_mbdigests(struct store *store, MDB_txn *txn,
    uint32_t user_id, const char *account, const char **error_r);

int
store_ledger_remove_account(struct store *store, uint32_t user_id,
    const char *account, const char **error_r)
{
	struct store_key k;
	MDB_txn *txn = NULL;

	if (account_prefix(store, &k, user_id, account, error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_del_prefix(store, txn, DB_LEDGER, &k, error_r) < 0 ||
	    store_del_prefix(store, txn, DB_DIGESTS, &k, error_r) < 0 ||
	    remove_mbdigests(store, txn, user_id, account, error_r) < 0) {
		store_wabort(store, txn);
		return -1;
	}
	return store_wcommit(store, txn, error_r);
}

/* DB_DIGESTS keys by upstream mailbox (issue 15, session 3): user + u8 0
 * (no account name is empty, so these never meet the older keys of user +
 * u8 len + account) + mailbox key + digest + u8 len + account + UIDL.
 * digest NULL: the prefix of the mailbox; account NULL: of the digest. */
void
store_ledger_mbdigest_key(struct store_key *k, uint32_t user_id,
    const unsigned char *mailbox_key, const unsigned char *digest,
    const char *account, const void *uidl, size_t uidl_size)
{
	size_t alen;

	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u8(k, 0);
	if (mailbox_key == NULL)
		return;
	store_key_bytes(k, mailbox_key, STORE_MAILBOX_KEY_SIZE);
	if (digest == NULL)
		return;
	store_key_bytes(k, digest, STORE_DIGEST_SIZE);
	if (account == NULL)
		return;
	alen = strlen(account);
	store_key_u8(k, (uint8_t)alen);
	store_key_bytes(k, account, alen);
	if (uidl_size > 0)
		store_key_bytes(k, uidl, uidl_size);
}

/* The account and UIDL a by-mailbox index key names after its prefix of
 * prefix_len bytes (user, 0, mailbox key, digest); false if malformed. */
static bool
mbdigest_split(const MDB_val *key, size_t prefix_len,
    char account[STORE_ACCOUNT_ID_MAX + 1], const unsigned char **uidl_r,
    size_t *uidl_size_r)
{
	const unsigned char *p = (const unsigned char *)key->mv_data +
	    prefix_len;
	size_t rest = key->mv_size - prefix_len, alen;

	if (key->mv_size <= prefix_len)
		return false;
	alen = p[0];
	if (alen == 0 || alen > STORE_ACCOUNT_ID_MAX || rest <= 1 + alen ||
	    rest - 1 - alen > STORE_UIDL_MAX)
		return false;
	memcpy(account, p + 1, alen);
	account[alen] = '\0';
	*uidl_r = p + 1 + alen;
	*uidl_size_r = rest - 1 - alen;
	return true;
}

/* The first indexed delivery of a digest that the new UIDL may take over
 * and that still has its ledger entry: one of this account whose UIDL is
 * no longer listed, or (keyed by mailbox) one of another account name on
 * the same upstream mailbox whose UIDL is the new one or no longer
 * listed. */
struct claim_walk {
	struct store *store;
	MDB_txn *txn;
	uint32_t user_id;
	const char *account;
	const unsigned char *mailbox_key;	/* NULL: the older index */
	const unsigned char *digest;
	const void *uidl;	/* the new one */
	size_t uidl_size;
	/* by header (store_ledger_claim_head): what the entry must say */
	const unsigned char *head;
	uint64_t list_size;
	size_t prefix_len;
	store_uidl_vanished_fn *vanished;
	void *ctx;
	struct store_ledgerrec old;
	char old_account[STORE_ACCOUNT_ID_MAX + 1];
	unsigned char old_uidl[STORE_UIDL_MAX];
	size_t old_uidl_size;
	bool found;
};

static int
claim_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct claim_walk *w = ctx;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	const unsigned char *uidl;
	size_t uidl_size;
	struct store_key k;
	MDB_val lk, ld;
	bool own;

	(void)data;
	if (w->mailbox_key == NULL) {
		if (key->mv_size <= w->prefix_len)
			return 0;
		snprintf(account, sizeof(account), "%s", w->account);
		uidl = (const unsigned char *)key->mv_data + w->prefix_len;
		uidl_size = key->mv_size - w->prefix_len;
		if (uidl_size > STORE_UIDL_MAX)
			return 0;
	} else if (!mbdigest_split(key, w->prefix_len, account, &uidl,
	    &uidl_size))
		return 0;
	own = strcmp(account, w->account) == 0;
	/* another name for this mailbox: its UIDL names the same message
	   here too, listed or not */
	if (!(!own && uidl_size == w->uidl_size &&
	    memcmp(uidl, w->uidl, uidl_size) == 0) &&
	    !w->vanished(w->ctx, uidl, uidl_size))
		return 0;
	if (store_ledger_key(w->store, &k, w->user_id, account, uidl,
	    uidl_size, NULL) < 0)
		return 0;
	lk = store_key_val(&k);
	if (mdb_get(w->txn, w->store->dbi[DB_LEDGER], &lk, &ld) != 0)
		return 0;
	memset(&w->old, 0, sizeof(w->old));
	memcpy(&w->old, ld.mv_data, ld.mv_size < sizeof(w->old) ?
	    ld.mv_size : sizeof(w->old));
	/* the entry still says this digest (a UIDL reused after DELE and
	   delivered again has another), and something was delivered */
	if ((w->old.flags & STORE_LEDGER_F_DIGEST) == 0 ||
	    memcmp(w->old.digest, w->digest, STORE_DIGEST_SIZE) != 0 ||
	    (w->old.flags & STORE_LEDGER_F_BODY) == 0)
		return 0;
	/* by header: delivered with this header block and LIST size */
	if (w->head != NULL && ((w->old.flags & STORE_LEDGER_F_HEAD) == 0 ||
	    w->old.list_size != w->list_size ||
	    memcmp(w->old.head_digest, w->head, STORE_DIGEST_SIZE) != 0))
		return 0;
	memcpy(w->old_account, account, sizeof(w->old_account));
	memcpy(w->old_uidl, uidl, uidl_size);
	w->old_uidl_size = uidl_size;
	w->found = true;
	return 1;
}

/* The index key of one delivery, in the layout the caller uses. */
static void
index_key(struct store_key *k, uint32_t user_id,
    const unsigned char *mailbox_key, const unsigned char *digest,
    const char *account, const void *uidl, size_t uidl_size)
{
	if (mailbox_key != NULL)
		store_ledger_mbdigest_key(k, user_id, mailbox_key, digest,
		    account, uidl, uidl_size);
	else
		store_ledger_digest_key(k, user_id, account, digest, uidl,
		    uidl_size);
}

/* The claim of store_ledger_claim_digest/_head: w is filled in but for
 * the transaction and what the walk finds. */
static int
claim(struct store *store, struct claim_walk *wp, bool *claimed_r,
    const char **error_r)
{
	struct claim_walk w = *wp;
	uint32_t user_id = w.user_id;
	const char *account = w.account;
	const unsigned char *mailbox_key = w.mailbox_key, *digest = w.digest;
	const void *uidl = w.uidl;
	size_t uidl_size = w.uidl_size;
	struct store_ledgerrec lr;
	struct store_key k, pk;
	MDB_txn *txn = NULL;
	MDB_val key, data;
	int rc;

	*claimed_r = false;
	if (store_ledger_key(store, &k, user_id, account, uidl, uidl_size,
	    error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	w.txn = txn;
	if (mailbox_key != NULL)
		store_ledger_mbdigest_key(&pk, user_id, mailbox_key, digest,
		    NULL, NULL, 0);
	else
		store_ledger_digest_key(&pk, user_id, account, digest, NULL,
		    0);
	w.prefix_len = pk.len;
	if (store_prefix_foreach(store, txn, DB_DIGESTS, &pk, claim_each, &w,
	    "digest lookup", error_r) < 0)
		goto fail;
	if (!w.found) {
		store_wabort(store, txn);
		store_ok(store);
		return 0;
	}
	/* the new UIDL says what the old one said: the same delivery */
	lr = w.old;
	lr.seen = (int64_t)time(NULL);
	lr.flags &= ~(STORE_LEDGER_F_DELETED | STORE_LEDGER_F_BY_HEAD);
	lr.flags |= STORE_LEDGER_F_DIGEST;
	/* by header: the bytes were not seen under this UIDL (by content
	   they were, which clears an earlier by-header mark) */
	if (w.head != NULL)
		lr.flags |= STORE_LEDGER_F_BY_HEAD;
	memcpy(lr.digest, digest, sizeof(lr.digest));
	if (ledger_put_new(store, txn, &k, &lr, error_r) < 0)
		goto fail;
	/* the digest now names the new UIDL: claimed once */
	index_key(&pk, user_id, mailbox_key, digest, w.old_account,
	    w.old_uidl, w.old_uidl_size);
	key = store_key_val(&pk);
	if ((rc = mdb_del(txn, store->dbi[DB_DIGESTS], &key, NULL)) != 0 &&
	    rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "digest delete");
		goto fail;
	}
	index_key(&pk, user_id, mailbox_key, digest, account, uidl,
	    uidl_size);
	key = store_key_val(&pk);
	data.mv_data = (void *)"";
	data.mv_size = 0;
	if ((rc = mdb_put(txn, store->dbi[DB_DIGESTS], &key, &data, 0)) != 0) {
		store_fail_mdb(store, error_r, rc, "digest write");
		goto fail;
	}
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	*claimed_r = true;
	return 0;
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_ledger_claim_digest(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key,
    const unsigned char *digest, const void *uidl, size_t uidl_size,
    store_uidl_vanished_fn *vanished, void *ctx, bool *claimed_r,
    const char **error_r)
{
	struct claim_walk w = { .store = store, .user_id = user_id,
	    .account = account, .mailbox_key = mailbox_key, .digest = digest,
	    .uidl = uidl, .uidl_size = uidl_size, .vanished = vanished,
	    .ctx = ctx };

	return claim(store, &w, claimed_r, error_r);
}

int
store_ledger_claim_head(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key,
    const unsigned char *digest, const unsigned char *head,
    uint64_t list_size, const void *uidl, size_t uidl_size,
    store_uidl_vanished_fn *vanished, void *ctx, bool *claimed_r,
    const char **error_r)
{
	struct claim_walk w = { .store = store, .user_id = user_id,
	    .account = account, .mailbox_key = mailbox_key, .digest = digest,
	    .uidl = uidl, .uidl_size = uidl_size, .head = head,
	    .list_size = list_size, .vanished = vanished, .ctx = ctx };

	*claimed_r = false;
	if (mailbox_key == NULL || head == NULL || list_size == 0)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: a claim by header needs a mailbox, a header "
		    "digest and a size");
	return claim(store, &w, claimed_r, error_r);
}

struct mailbox_walk {
	struct store *store;
	MDB_txn *txn;
	uint32_t user_id;
	size_t prefix_len;	/* user, 0, mailbox key, digest */
	int (*cb)(void *ctx, const char *account,
	    const struct store_ledger_entry *entry);
	void *ctx;
};

static int
mailbox_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct mailbox_walk *w = ctx;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	struct store_ledger_entry e;
	const unsigned char *uidl;
	size_t uidl_size;
	struct store_key k;
	MDB_val lk, ld;

	(void)data;
	if (!mbdigest_split(key, w->prefix_len, account, &uidl, &uidl_size) ||
	    store_ledger_key(w->store, &k, w->user_id, account, uidl,
	    uidl_size, NULL) < 0)
		return 0;
	lk = store_key_val(&k);
	if (mdb_get(w->txn, w->store->dbi[DB_LEDGER], &lk, &ld) != 0)
		return 0;
	entry_fill(&lk, k.len - uidl_size, &ld, &e);
	e.uidl = uidl;	/* in the snapshot, not in our local key */
	return w->cb(w->ctx, account, &e);
}

int
store_ledger_mailbox_foreach(struct store_read *r, uint32_t user_id,
    const unsigned char *mailbox_key,
    int (*cb)(void *ctx, const char *account,
    const struct store_ledger_entry *entry), void *ctx,
    const char **error_r)
{
	struct mailbox_walk w = { .store = r->store, .txn = r->txn,
	    .user_id = user_id, .cb = cb, .ctx = ctx };
	struct store_key pk;

	store_ledger_mbdigest_key(&pk, user_id, mailbox_key, NULL, NULL,
	    NULL, 0);
	w.prefix_len = pk.len + STORE_DIGEST_SIZE;
	return store_prefix_foreach(r->store, r->txn, DB_DIGESTS, &pk,
	    mailbox_each, &w, "digest list", error_r);
}

/* Index keys gathered in a walk, to change after it (the walk's bytes
 * live only until the transaction is written to). */
struct key_list {
	struct store_key *v;
	size_t n, alloc;
};

static void
key_list_add(struct key_list *l, const void *bytes, size_t len)
{
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 16;
		l->v = xreallocarray(l->v, l->alloc, sizeof(*l->v));
	}
	memcpy(l->v[l->n].b, bytes, len);
	l->v[l->n].len = len;
	l->n++;
}

struct rekey_walk {
	struct key_list old;
	size_t prefix_len;
};

static int
rekey_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct rekey_walk *w = ctx;

	(void)data;
	/* digest + a UIDL after the account's prefix */
	if (key->mv_size > w->prefix_len + STORE_DIGEST_SIZE &&
	    key->mv_size <= STORE_KEY_MAX)
		key_list_add(&w->old, key->mv_data, key->mv_size);
	return 0;
}

int
store_ledger_digests_rekey(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key, size_t *moved_r,
    const char **error_r)
{
	struct rekey_walk w;
	struct store_key pk;
	MDB_txn *txn = NULL;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	*moved_r = 0;
	if (account_prefix(store, &pk, user_id, account, error_r) < 0)
		return -1;
	w.prefix_len = pk.len;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_prefix_foreach(store, txn, DB_DIGESTS, &pk, rekey_each, &w,
	    "digest list", error_r) < 0)
		goto out;
	if (w.old.n == 0) {
		store_wabort(store, txn);
		txn = NULL;
		store_ok(store);
		ret = 0;
		goto out;
	}
	if (store_del_prefix(store, txn, DB_DIGESTS, &pk, error_r) < 0)
		goto out;
	for (size_t i = 0; i < w.old.n; i++) {
		const unsigned char *digest = w.old.v[i].b + w.prefix_len;
		const unsigned char *uidl = digest + STORE_DIGEST_SIZE;
		size_t uidl_size = w.old.v[i].len - w.prefix_len -
		    STORE_DIGEST_SIZE;
		struct store_key nk;
		MDB_val key, data = { 0, (void *)"" };
		int rc;

		store_ledger_mbdigest_key(&nk, user_id, mailbox_key, digest,
		    account, uidl, uidl_size);
		key = store_key_val(&nk);
		if ((rc = mdb_put(txn, store->dbi[DB_DIGESTS], &key, &data,
		    0)) != 0) {
			store_fail_mdb(store, error_r, rc, "digest write");
			goto out;
		}
	}
	if (store_wcommit(store, txn, error_r) < 0) {
		txn = NULL;
		goto out;
	}
	txn = NULL;
	*moved_r = w.old.n;
	ret = 0;
out:
	if (txn != NULL)
		store_wabort(store, txn);
	free(w.old.v);
	return ret;
}

/* The by-mailbox index entries of one account name, to delete. */
struct acct_walk {
	struct key_list keys;
	const char *account;
};

static int
acct_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct acct_walk *w = ctx;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	const unsigned char *uidl;
	size_t uidl_size;

	(void)data;
	/* user + 0 + mailbox key + digest, then the account */
	if (mbdigest_split(key, 4 + 1 + STORE_MAILBOX_KEY_SIZE +
	    STORE_DIGEST_SIZE, account, &uidl, &uidl_size) &&
	    strcmp(account, w->account) == 0 && key->mv_size <= STORE_KEY_MAX)
		key_list_add(&w->keys, key->mv_data, key->mv_size);
	return 0;
}

/* Deletes the by-mailbox index entries of account (a walk over all of the
 * user's: removing a ledger is rare). */
static int
remove_mbdigests(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *account, const char **error_r)
{
	struct acct_walk w = { .account = account };
	struct store_key pk;
	int ret = 0;

	store_ledger_mbdigest_key(&pk, user_id, NULL, NULL, NULL, NULL, 0);
	if (store_prefix_foreach(store, txn, DB_DIGESTS, &pk, acct_each, &w,
	    "digest list", error_r) < 0)
		ret = -1;
	for (size_t i = 0; ret == 0 && i < w.keys.n; i++) {
		MDB_val key = store_key_val(&w.keys.v[i]);
		int rc = mdb_del(txn, store->dbi[DB_DIGESTS], &key, NULL);

		if (rc != 0 && rc != MDB_NOTFOUND)
			ret = store_fail_mdb(store, error_r, rc,
			    "digest delete");
	}
	free(w.keys.v);
	return ret;
}

/* The names of an upstream mailbox (issue 15, session 4): DB_DIGESTS keys
 * user + u8 0xff (no account name is 255 bytes long, and 0 is the index
 * by mailbox) + a mailbox key -> the mailbox key its deliveries are
 * indexed under (STORE_MAILBOX_KEY_SIZE bytes). */
static void
alias_key(struct store_key *k, uint32_t user_id, const unsigned char *key)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u8(k, 0xff);
	store_key_bytes(k, key, STORE_MAILBOX_KEY_SIZE);
}

/* The first of keys with a recorded name, else keys[0]; *named_r[i]:
 * keys[i] is recorded. */
static int
mailbox_canon(struct store *store, MDB_txn *txn, uint32_t user_id,
    const unsigned char *const *keys, size_t n, bool *named,
    unsigned char canon_r[STORE_MAILBOX_KEY_SIZE], const char **error_r)
{
	bool found = false;

	memcpy(canon_r, keys[0], STORE_MAILBOX_KEY_SIZE);
	for (size_t i = 0; i < n; i++) {
		struct store_key k;
		MDB_val key, data;
		int rc;

		alias_key(&k, user_id, keys[i]);
		key = store_key_val(&k);
		rc = mdb_get(txn, store->dbi[DB_DIGESTS], &key, &data);
		named[i] = rc == 0 && data.mv_size == STORE_MAILBOX_KEY_SIZE;
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_fail_mdb(store, error_r, rc, "mailbox name");
		if (named[i] && !found) {
			memcpy(canon_r, data.mv_data, STORE_MAILBOX_KEY_SIZE);
			found = true;
		}
	}
	return 0;
}

int
store_ledger_mailbox_canon(struct store_read *r, uint32_t user_id,
    const unsigned char *const *keys, size_t n,
    unsigned char canon_r[STORE_MAILBOX_KEY_SIZE], const char **error_r)
{
	bool named[STORE_MAILBOX_NAMES_MAX];

	if (n == 0 || n > STORE_MAILBOX_NAMES_MAX)
		return store_fail(r->store, error_r, STORE_ERR_INVALID,
		    "store: 1 to STORE_MAILBOX_NAMES_MAX mailbox keys");
	return mailbox_canon(r->store, r->txn, user_id, keys, n, named,
	    canon_r, error_r);
}

int
store_ledger_mailbox_alias(struct store *store, uint32_t user_id,
    const unsigned char *const *keys, size_t n,
    unsigned char canon_r[STORE_MAILBOX_KEY_SIZE], const char **error_r)
{
	bool named[STORE_MAILBOX_NAMES_MAX];
	MDB_txn *txn = NULL;
	size_t added = 0;

	if (n == 0 || n > STORE_MAILBOX_NAMES_MAX)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: 1 to STORE_MAILBOX_NAMES_MAX mailbox keys");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (mailbox_canon(store, txn, user_id, keys, n, named, canon_r,
	    error_r) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct store_key k;
		MDB_val key, data = { STORE_MAILBOX_KEY_SIZE, canon_r };
		int rc;

		if (named[i])
			continue;	/* a name already given stays */
		alias_key(&k, user_id, keys[i]);
		key = store_key_val(&k);
		if ((rc = mdb_put(txn, store->dbi[DB_DIGESTS], &key, &data,
		    MDB_NOOVERWRITE)) != 0 && rc != MDB_KEYEXIST) {
			store_fail_mdb(store, error_r, rc, "mailbox name");
			goto fail;
		}
		added++;
	}
	return commit_if(store, txn, added > 0, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}
