/*
 * store-deliver — putting messages in (a batch with its ledger entries, in
 * one transaction) and taking bodies out (reference counts, mailbox purge).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail-serialize.h"
#include "store-private.h"
#include "xmalloc.h"

/* The parser side keeps its blobs within what deliver accepts. */
_Static_assert(MAIL_BLOB_MAX == STORE_STRUCTURE_SIZE_MAX,
    "mail blobs must fit the store's structure limit");

void
store_mb_count_add(struct store_mbrec *mb, const struct store_msgrec *m,
    int sign)
{
	if (sign > 0) {
		mb->messages++;
		mb->size += m->size;
		if ((m->system & STORE_FLAG_SEEN) == 0)
			mb->unseen++;
		if ((m->system & STORE_FLAG_DELETED) != 0)
			mb->deleted++;
	} else {
		mb->messages--;
		mb->size -= m->size;
		if ((m->system & STORE_FLAG_SEEN) == 0)
			mb->unseen--;
		if ((m->system & STORE_FLAG_DELETED) != 0)
			mb->deleted--;
	}
}

static void
body_key(struct store_key *k, uint32_t user_id, uint64_t body_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u64(k, body_id);
}

int
store_body_unref(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, const char **error_r)
{
	struct store_bodyrec br;
	struct store_key k;
	MDB_val key, data;
	int rc;

	body_key(&k, user_id, body_id);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_BODYINFO], &key, &data);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "body info");
	memcpy(&br, data.mv_data, sizeof(br));
	if (br.refcount > 1) {
		br.refcount--;
		data.mv_data = &br;
		data.mv_size = sizeof(br);
		rc = mdb_put(txn, store->dbi[DB_BODYINFO], &key, &data, 0);
	} else {
		/* Last reference: the body and its structure go. */
		rc = mdb_del(txn, store->dbi[DB_BODYINFO], &key, NULL);
		if (rc == 0)
			rc = mdb_del(txn, store->dbi[DB_BODIES], &key, NULL);
		if (rc == 0 && br.structure_size > 0)
			rc = mdb_del(txn, store->dbi[DB_STRUCTS], &key, NULL);
		if (rc == 0 && (rc = mdb_del(txn, store->dbi[DB_SORTKEYS],
		    &key, NULL)) == MDB_NOTFOUND)
			rc = 0;	/* stored without (before they existed) */
		if (rc == 0)
			return store_fts_body_freed(store, txn, user_id,
			    body_id, error_r);
	}
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "body release");
	return 0;
}

int
store_mb_purge(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	uint64_t *bodies = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = -1;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u32(&k, mailbox_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		struct store_msgrec m;

		memcpy(&m, data.mv_data, sizeof(m));
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			bodies = xreallocarray(bodies, cap, sizeof(*bodies));
		}
		bodies[n++] = m.body_id;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "message list");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (store_body_unref(store, txn, user_id, bodies[i],
		    error_r) < 0)
			goto out;
	}
	if (store_del_prefix(store, txn, DB_MSGS, &k, error_r) < 0 ||
	    store_del_prefix(store, txn, DB_KEYWORDS, &k, error_r) < 0 ||
	    store_del_prefix(store, txn, DB_VANISHED, &k, error_r) < 0)
		goto out;
	ret = 0;
out:
	free(bodies);
	return ret;
}

/* ---- deliver ---- */

static int
ledger_key(struct store *store, struct store_key *k, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    const char **error_r)
{
	size_t alen = strlen(account);

	if (alen == 0 || alen > STORE_ACCOUNT_ID_MAX)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid account id");
	if (uidl_size == 0 || uidl_size > STORE_UIDL_MAX)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid UIDL length %zu", uidl_size);
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u8(k, (uint8_t)alen);
	store_key_bytes(k, account, alen);
	store_key_bytes(k, uidl, uidl_size);
	return 0;
}

int
store_ledger_key(struct store *store, struct store_key *k, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    const char **error_r)
{
	return ledger_key(store, k, user_id, account, uidl, uidl_size,
	    error_r);
}

static int
check_new_msg(struct store *store, const struct store_new_msg *m,
    const char **error_r)
{
	if (m->size > STORE_MESSAGE_SIZE_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: message too large (%zu bytes)", m->size);
	if (m->size > 0 && m->data == NULL)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: message without data");
	if (m->structure_size > STORE_STRUCTURE_SIZE_MAX ||
	    (m->structure_size > 0 && m->structure == NULL))
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: structure blob too large");
	if ((m->system_flags & ~STORE_FLAGS_SYSTEM_ALL) != 0)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: unknown system flag");
	if (m->keyword_count > STORE_KEYWORDS_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: too many keywords");
	return 0;
}

static int
put(struct store *store, MDB_txn *txn, enum store_db db, struct store_key *k,
    const void *data, size_t size, unsigned int flags, const char *what,
    const char **error_r)
{
	MDB_val key = store_key_val(k), val = { size, (void *)data };
	int rc = mdb_put(txn, store->dbi[db], &key, &val, flags);

	if (rc == MDB_KEYEXIST)
		return store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: %s already present", what);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, what);
	return 0;
}

/* The index entries of a delivery: the worker's prebuilt segment when
 * there is one for the whole batch, else one made from the terms. */
static int
deliver_index(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_new_msg *msgs, const struct store_fts_new_doc *fts,
    size_t count, const char **error_r)
{
	bool all = true;
	int rc;

	for (size_t i = 0; i < count && all; i++)
		all = msgs[i].fts != NULL;
	if (all && msgs[0].fts_batch != NULL) {
		uint64_t *ids = xcalloc(count, sizeof(*ids));

		for (size_t i = 0; i < count; i++)
			ids[i] = fts[i].body_id;
		rc = store_fts_add_batch(store, txn, user_id, msgs[0].fts_batch,
		    msgs[0].fts_batch_size, ids, count, error_r);
		free(ids);
		if (rc <= 0)
			return rc;
	}
	return store_fts_add_docs(store, txn, user_id, fts, count, error_r);
}

int
store_deliver(struct store *store, uint32_t user_id, uint32_t mailbox_id,
    const struct store_new_msg *msgs, size_t count, uint32_t *uids_r,
    uint32_t *uidvalidity_r, const char **error_r)
{
	struct store_userrec urec;
	struct store_kwtable *kw = NULL;
	struct store_fts_new_doc *fts = NULL;
	struct store_event *ev;
	struct store_mb mb;
	MDB_txn *txn = NULL;
	uint64_t modseq;
	int64_t now = (int64_t)time(NULL);
	bool need_kw = false;
	size_t total = 0;

	if (count == 0 || count > STORE_DELIVER_BATCH_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: batch of %zu messages", count);
	for (size_t i = 0; i < count; i++) {
		if (check_new_msg(store, &msgs[i], error_r) < 0)
			return -1;
		total += msgs[i].size;
		if (total > STORE_DELIVER_BYTES_MAX)
			return store_fail(store, error_r, STORE_ERR_LIMIT,
			    "store: batch over %zu bytes",
			    STORE_DELIVER_BYTES_MAX);
		if (msgs[i].keyword_count > 0)
			need_kw = true;
	}
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0 ||
	    store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0 ||
	    store_quota_check(store, txn, user_id, total, error_r) < 0)
		goto fail;
	/* a user moved to another node takes no more upstream mail here:
	   the message stays upstream (no DELE) for the new node to fetch */
	if (msgs[0].account != NULL) {
		int moved = store_user_moved_txn(store, txn, user_id, error_r);

		if (moved > 0)
			store_fail(store, error_r, STORE_ERR_INVALID,
			    "store: the user was moved to another node");
		if (moved != 0)
			goto fail;
	}
	if (need_kw) {
		kw = xmalloc(sizeof(*kw));
		if (store_kw_load(store, txn, user_id, mailbox_id, kw,
		    error_r) < 0)
			goto fail;
	}
	modseq = mb.rec.highestmodseq + 1;
	fts = xcalloc(count, sizeof(*fts));
	ev = store_event_add(store, STORE_CHANGE_NEW, user_id, NULL,
	    mailbox_id);
	for (size_t i = 0; i < count; i++) {
		const struct store_new_msg *m = &msgs[i];
		struct store_msgrec rec;
		struct store_bodyrec br;
		struct store_key k;
		uint32_t uid;

		if (mb.rec.uidnext == UINT32_MAX) {
			store_fail(store, error_r, STORE_ERR_LIMIT,
			    "store: UIDs exhausted in mailbox");
			goto fail;
		}
		uid = mb.rec.uidnext++;
		memset(&rec, 0, sizeof(rec));
		rec.modseq = modseq;
		rec.system = m->system_flags;
		rec.internaldate = m->internaldate;
		rec.tz_offset_min = m->tz_offset_min;
		rec.size = m->size;
		rec.body_id = urec.next_body_id++;
		rec.structure_size = (uint32_t)m->structure_size;
		for (size_t j = 0; j < m->keyword_count; j++) {
			unsigned int id;

			if (store_kw_intern(store, txn, user_id, &mb, kw,
			    m->keywords[j], &id, error_r) < 0)
				goto fail;
			rec.keywords[id / 64] |= (uint64_t)1 << (id % 64);
		}
		fts[i].body_id = rec.body_id;
		fts[i].doc = m->fts;
		body_key(&k, user_id, rec.body_id);
		br.size = m->size;
		br.refcount = 1;
		br.structure_size = rec.structure_size;
		if (put(store, txn, DB_BODIES, &k, m->data, m->size,
		    MDB_NOOVERWRITE, "body", error_r) < 0 ||
		    put(store, txn, DB_BODYINFO, &k, &br, sizeof(br),
		    MDB_NOOVERWRITE, "body info", error_r) < 0)
			goto fail;
		if (m->structure_size > 0 &&
		    put(store, txn, DB_STRUCTS, &k, m->structure,
		    m->structure_size, MDB_NOOVERWRITE, "structure",
		    error_r) < 0)
			goto fail;
		if (m->sortkey_size > 0 &&
		    m->sortkey_size <= STORE_SORTKEY_SIZE_MAX &&
		    put(store, txn, DB_SORTKEYS, &k, m->sortkey,
		    m->sortkey_size, MDB_NOOVERWRITE, "sort keys",
		    error_r) < 0)
			goto fail;
		store_key_init(&k);
		store_key_u32(&k, user_id);
		store_key_u32(&k, mailbox_id);
		store_key_u32(&k, uid);
		if (put(store, txn, DB_MSGS, &k, &rec, sizeof(rec),
		    MDB_NOOVERWRITE, "message", error_r) < 0)
			goto fail;
		store_mb_count_add(&mb.rec, &rec, 1);
		if (m->account != NULL) {
			struct store_ledgerrec lr;

			if (ledger_key(store, &k, user_id, m->account, m->uidl,
			    m->uidl_size, error_r) < 0)
				goto fail;
			memset(&lr, 0, sizeof(lr));
			lr.mailbox_id = mailbox_id;
			lr.uid = uid;
			lr.seen = now;
			lr.flags = STORE_LEDGER_F_FINGERPRINT |
			    STORE_LEDGER_F_BODY;
			lr.body_id = rec.body_id;
			lr.body_size = m->size;
			lr.body_hash = store_body_fingerprint(m->size > 0 ?
			    m->data : "", m->size);
			if (m->digest != NULL) {
				lr.flags |= STORE_LEDGER_F_DIGEST;
				memcpy(lr.digest, m->digest, sizeof(lr.digest));
			}
			if (m->digest != NULL && m->head_digest != NULL) {
				lr.flags |= STORE_LEDGER_F_HEAD;
				memcpy(lr.head_digest, m->head_digest,
				    sizeof(lr.head_digest));
				lr.list_size = m->list_size;
			}
			if (put(store, txn, DB_LEDGER, &k, &lr, sizeof(lr),
			    m->replace_ledger ? 0 : MDB_NOOVERWRITE, "UIDL",
			    error_r) < 0)
				goto fail;
			if (m->digest != NULL && m->mailbox_key != NULL)
				store_ledger_mbdigest_key(&k, user_id,
				    m->mailbox_key, m->digest, m->account,
				    m->uidl, m->uidl_size);
			else if (m->digest != NULL)
				store_ledger_digest_key(&k, user_id,
				    m->account, m->digest, m->uidl,
				    m->uidl_size);
			if (m->digest != NULL) {
				if (put(store, txn, DB_DIGESTS, &k, "", 0, 0,
				    "digest", error_r) < 0)
					goto fail;
			}
		}
		uids_r[i] = uid;
		store_event_add_uid(ev, uid);
	}
	mb.rec.highestmodseq = modseq;
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0 ||
	    store_userrec_save(store, txn, user_id, &urec, error_r) < 0 ||
	    deliver_index(store, txn, user_id, msgs, fts, count, error_r) < 0)
		goto fail;
	store_event_add(store, STORE_CHANGE_NEW, user_id, &mb, mailbox_id);
	free(kw);
	free(fts);
	if (uidvalidity_r != NULL)
		*uidvalidity_r = mb.rec.uidvalidity;
	store_reserve(store, txn, total);
	return store_wcommit(store, txn, error_r);
fail:
	free(kw);
	free(fts);
	store_wabort(store, txn);
	return -1;
}
