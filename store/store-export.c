/*
 * store-export — what moving a user to another node needs from the store
 * beyond its ordinary API: the raw expunge history (MODSEQ of each
 * vanished UID), and writes that put a user back with the ids and
 * counters a device and an upstream remember (store.h, "moving a user").
 *
 * Every write here is one store_wbegin .. store_wcommit, so inside the
 * import's writer job each is a child transaction of that one job: the
 * user appears whole at the job's commit, or not at all.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"
#include "xmalloc.h"

struct vanished_walk {
	int (*cb)(void *ctx, uint64_t modseq, uint32_t uid);
	void *ctx;
};

static int
vanished_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct vanished_walk *w = ctx;
	const unsigned char *p = key->mv_data;

	(void)data;
	if (key->mv_size != 4 + 4 + 8 + 4)
		return 0;
	return w->cb(w->ctx, store_get_u64(p + 8), store_get_u32(p + 16));
}

int
store_vanished_foreach(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, int (*cb)(void *ctx, uint64_t modseq, uint32_t uid),
    void *ctx, const char **error_r)
{
	struct vanished_walk w = { cb, ctx };
	struct store_key k;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u32(&k, mailbox_id);
	return store_prefix_foreach(r->store, r->txn, DB_VANISHED, &k,
	    vanished_each, &w, "vanished", error_r);
}

/* Is the user marked moved (STORE_META_MOVED)? 1 yes, 0 no, -1 error. */
int
store_user_moved_txn(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_bytes(&k, STORE_META_MOVED, strlen(STORE_META_MOVED));
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_USERMETA], &key, &data);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "settings");
	return 1;
}

int
store_import_user(struct store *store, const char *name,
    const char *password_hash, int64_t created, uint32_t *user_id_r,
    const char **error_r)
{
	struct store_userrec rec;
	struct store_key k;
	MDB_txn *txn = NULL;
	uint32_t id;

	if (store_user_create(store, name, password_hash, 0, &id,
	    error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, id, &rec, error_r) < 0)
		goto fail;
	rec.created = created;
	/* the subscriptions are the export's, not the defaults */
	store_key_init(&k);
	store_key_u32(&k, id);
	if (store_userrec_save(store, txn, id, &rec, error_r) < 0 ||
	    store_del_prefix(store, txn, DB_SUBS, &k, error_r) < 0)
		goto fail;
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	*user_id_r = id;
	return 0;
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_import_mailbox(struct store *store, uint32_t user_id,
    const struct store_import_mailbox *in, uint32_t *mailbox_id_r,
    const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	struct store_userrec urec;
	struct store_mb mb;
	MDB_txn *txn = NULL;
	uint32_t id;
	int rc;

	if (store_mb_name_norm(store, in->name, norm, error_r) < 0)
		return -1;
	if (in->uidvalidity == 0 || in->uidnext == 0 ||
	    in->highestmodseq == 0 || (unsigned)in->role > STORE_ROLE_FLAGGED)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: mailbox values out of range");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	rc = store_mbname_get(store, txn, user_id, norm, &id, error_r);
	if (rc < 0)
		goto fail;
	if (rc == 0 && strcmp(norm, "INBOX") != 0) {
		store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: mailbox %s twice", norm);
		goto fail;
	}
	if (rc == 0) {
		if (store_mb_load(store, txn, user_id, id, &mb, error_r) < 0)
			goto fail;
		if (mb.rec.messages != 0 || mb.rec.uidnext != 1) {
			store_fail(store, error_r, STORE_ERR_EXISTS,
			    "store: mailbox INBOX twice");
			goto fail;
		}
	} else {
		const char *slash = strrchr(norm, STORE_MAILBOX_DELIM);

		if (slash != NULL) {
			char parent[STORE_MAILBOX_NAME_MAX + 1];
			uint32_t pid;

			memcpy(parent, norm, (size_t)(slash - norm));
			parent[slash - norm] = '\0';
			rc = store_mbname_get(store, txn, user_id, parent,
			    &pid, error_r);
			if (rc < 0)
				goto fail;
			if (rc != 0) {
				store_fail(store, error_r, STORE_ERR_INVALID,
				    "store: mailbox %s before its parent",
				    norm);
				goto fail;
			}
		}
		if (store_mb_create_txn(store, txn, user_id, norm,
		    in->role, &mb, error_r) < 0)
			goto fail;
	}
	mb.rec.uidvalidity = in->uidvalidity;
	mb.rec.uidnext = in->uidnext;
	mb.rec.highestmodseq = in->highestmodseq;
	mb.rec.role = (uint32_t)in->role;
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0 ||
	    store_userrec_load(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	/* a mailbox created here later never repeats an imported value */
	if (urec.next_uidvalidity <= in->uidvalidity &&
	    in->uidvalidity < UINT32_MAX) {
		urec.next_uidvalidity = in->uidvalidity + 1;
		if (store_userrec_save(store, txn, user_id, &urec,
		    error_r) < 0)
			goto fail;
	}
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	*mailbox_id_r = mb.id;
	return 0;
fail:
	store_wabort(store, txn);
	return -1;
}

static int
put_val(struct store *store, MDB_txn *txn, enum store_db db,
    struct store_key *k, const void *data, size_t size, unsigned flags,
    const char *what, const char **error_r)
{
	MDB_val key = store_key_val(k), val = { size, (void *)data };
	int rc = mdb_put(txn, store->dbi[db], &key, &val, flags);

	if (rc == MDB_KEYEXIST)
		return store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: %s twice", what);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, what);
	return 0;
}

static void
body_key(struct store_key *k, uint32_t user_id, uint64_t body_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u64(k, body_id);
}

/* One reference more to a body this import stored. */
static int
body_ref(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, uint64_t size, const char **error_r)
{
	struct store_bodyrec br;
	struct store_key k;
	MDB_val key, data;
	int rc;

	body_key(&k, user_id, body_id);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_BODYINFO], &key, &data);
	if (rc == MDB_NOTFOUND || (rc == 0 && data.mv_size != sizeof(br)))
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: shared body %llu not imported",
		    (unsigned long long)body_id);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "body info");
	memcpy(&br, data.mv_data, sizeof(br));
	if (br.size != size)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: shared body %llu has another size",
		    (unsigned long long)body_id);
	br.refcount++;
	return put_val(store, txn, DB_BODYINFO, &k, &br, sizeof(br), 0,
	    "body info", error_r);
}

static int
check_import_msg(struct store *store, const struct store_mb *mb,
    uint32_t last_uid, const struct store_import_msg *m, const char **error_r)
{
	if (m->uid <= last_uid || m->uid >= mb->rec.uidnext)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: %s: UID %u out of order or not below UIDNEXT %u",
		    mb->name, m->uid, mb->rec.uidnext);
	if (m->modseq == 0 || m->modseq > mb->rec.highestmodseq)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: %s UID %u: MODSEQ %llu not in 1..%llu", mb->name,
		    m->uid, (unsigned long long)m->modseq,
		    (unsigned long long)mb->rec.highestmodseq);
	if ((m->system_flags & ~STORE_FLAGS_SYSTEM_ALL) != 0 ||
	    m->keyword_count > STORE_KEYWORDS_MAX)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: %s UID %u: bad flags", mb->name, m->uid);
	if (m->body_id == 0 && (m->size > STORE_MESSAGE_SIZE_MAX ||
	    (m->size > 0 && m->data == NULL) ||
	    m->structure_size > STORE_STRUCTURE_SIZE_MAX))
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: %s UID %u: body too large", mb->name, m->uid);
	return 0;
}

/* The highest UID of the mailbox so far (0: none). */
static int
last_uid(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, uint32_t *uid_r, const char **error_r)
{
	struct store_key k, hi;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	*uid_r = 0;
	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u32(&k, mailbox_id);
	hi = k;
	store_key_u32(&hi, UINT32_MAX);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	key = store_key_val(&hi);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	if (rc == 0 && key.mv_size == hi.len &&
	    memcmp(key.mv_data, hi.b, hi.len) == 0) {
		*uid_r = UINT32_MAX;
	} else {
		rc = rc == 0 ? mdb_cursor_get(cur, &key, &data, MDB_PREV) :
		    rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &key, &data,
		    MDB_LAST) : rc;
		if (rc == 0 && store_key_has_prefix(&key, &k) &&
		    key.mv_size == k.len + 4)
			*uid_r = store_get_u32((const unsigned char *)
			    key.mv_data + k.len);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "message list");
	return 0;
}

int
store_import_messages(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const struct store_import_msg *msgs, size_t count,
    uint64_t *body_ids_r, const char **error_r)
{
	struct store_userrec urec;
	struct store_kwtable *kw = NULL;
	struct store_mb mb;
	MDB_txn *txn = NULL;
	uint64_t bytes = 0;
	uint32_t prev;

	if (count > STORE_DELIVER_BATCH_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: batch of %zu messages", count);
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0 ||
	    store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0 ||
	    last_uid(store, txn, user_id, mailbox_id, &prev, error_r) < 0)
		goto fail;
	kw = xmalloc(sizeof(*kw));
	if (store_kw_load(store, txn, user_id, mailbox_id, kw, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		const struct store_import_msg *m = &msgs[i];
		struct store_msgrec rec;
		struct store_key k;

		if (check_import_msg(store, &mb, prev, m, error_r) < 0)
			goto fail;
		prev = m->uid;
		memset(&rec, 0, sizeof(rec));
		rec.modseq = m->modseq;
		rec.system = m->system_flags;
		rec.internaldate = m->internaldate;
		rec.tz_offset_min = m->tz_offset_min;
		rec.size = m->size;
		for (size_t j = 0; j < m->keyword_count; j++) {
			unsigned int id;

			if (store_kw_intern(store, txn, user_id, &mb, kw,
			    m->keywords[j], &id, error_r) < 0)
				goto fail;
			rec.keywords[id / 64] |= (uint64_t)1 << (id % 64);
		}
		if (m->body_id != 0) {
			if (body_ref(store, txn, user_id, m->body_id, m->size,
			    error_r) < 0)
				goto fail;
			rec.body_id = m->body_id;
			/* the structure is the body's */
			{
				struct store_bodyrec br;
				MDB_val key, data;

				body_key(&k, user_id, m->body_id);
				key = store_key_val(&k);
				if (mdb_get(txn, store->dbi[DB_BODYINFO], &key,
				    &data) == 0 && data.mv_size == sizeof(br)) {
					memcpy(&br, data.mv_data, sizeof(br));
					rec.structure_size = br.structure_size;
				}
			}
		} else {
			struct store_bodyrec br;

			rec.body_id = urec.next_body_id++;
			rec.structure_size = (uint32_t)m->structure_size;
			body_key(&k, user_id, rec.body_id);
			br.size = m->size;
			br.refcount = 1;
			br.structure_size = rec.structure_size;
			if (put_val(store, txn, DB_BODIES, &k, m->data,
			    m->size, MDB_NOOVERWRITE, "body", error_r) < 0 ||
			    put_val(store, txn, DB_BODYINFO, &k, &br,
			    sizeof(br), MDB_NOOVERWRITE, "body info",
			    error_r) < 0)
				goto fail;
			if (m->structure_size > 0 &&
			    put_val(store, txn, DB_STRUCTS, &k, m->structure,
			    m->structure_size, MDB_NOOVERWRITE, "structure",
			    error_r) < 0)
				goto fail;
			bytes += m->size;
		}
		store_key_init(&k);
		store_key_u32(&k, user_id);
		store_key_u32(&k, mailbox_id);
		store_key_u32(&k, m->uid);
		if (put_val(store, txn, DB_MSGS, &k, &rec, sizeof(rec),
		    MDB_NOOVERWRITE, "message", error_r) < 0)
			goto fail;
		store_mb_count_add(&mb.rec, &rec, 1);
		body_ids_r[i] = rec.body_id;
	}
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0 ||
	    store_userrec_save(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	free(kw);
	store_reserve(store, txn, bytes);
	return store_wcommit(store, txn, error_r);
fail:
	free(kw);
	store_wabort(store, txn);
	return -1;
}

int
store_import_vanished(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const uint64_t *modseqs, const uint32_t *uids,
    size_t count, const char **error_r)
{
	struct store_mb mb;
	MDB_txn *txn = NULL;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < count; i++) {
		struct store_key k;
		MDB_val key, data;
		int rc;

		if (uids[i] == 0 || uids[i] >= mb.rec.uidnext ||
		    modseqs[i] == 0 || modseqs[i] > mb.rec.highestmodseq) {
			store_fail(store, error_r, STORE_ERR_INVALID,
			    "store: %s: vanished UID %u MODSEQ %llu out of "
			    "range", mb.name, uids[i],
			    (unsigned long long)modseqs[i]);
			goto fail;
		}
		store_key_init(&k);
		store_key_u32(&k, user_id);
		store_key_u32(&k, mailbox_id);
		store_key_u32(&k, uids[i]);
		key = store_key_val(&k);
		rc = mdb_get(txn, store->dbi[DB_MSGS], &key, &data);
		if (rc == 0) {
			store_fail(store, error_r, STORE_ERR_INVALID,
			    "store: %s: UID %u both vanished and present",
			    mb.name, uids[i]);
			goto fail;
		}
		if (rc != MDB_NOTFOUND) {
			store_fail_mdb(store, error_r, rc, "message");
			goto fail;
		}
		store_key_init(&k);
		store_key_u32(&k, user_id);
		store_key_u32(&k, mailbox_id);
		store_key_u64(&k, modseqs[i]);
		store_key_u32(&k, uids[i]);
		if (put_val(store, txn, DB_VANISHED, &k, "", 0, 0, "vanished",
		    error_r) < 0)
			goto fail;
	}
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_import_dead_body(struct store *store, uint32_t user_id,
    uint64_t *body_id_r, const char **error_r)
{
	struct store_userrec urec;
	MDB_txn *txn = NULL;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	*body_id_r = urec.next_body_id++;
	if (store_userrec_save(store, txn, user_id, &urec, error_r) < 0)
		goto fail;
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_import_ledger(struct store *store, uint32_t user_id,
    const char *account, const struct store_ledger_entry *e,
    const char **error_r)
{
	struct store_ledgerrec lr;
	struct store_key k;
	MDB_txn *txn = NULL;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_ledger_key(store, &k, user_id, account, e->uidl,
	    e->uidl_size, error_r) < 0)
		goto fail;
	memset(&lr, 0, sizeof(lr));
	lr.mailbox_id = e->mailbox_id;
	lr.uid = e->uid;
	lr.seen = e->seen;
	if (e->deleted_upstream)
		lr.flags |= STORE_LEDGER_F_DELETED;
	if (e->has_fingerprint) {
		lr.flags |= STORE_LEDGER_F_FINGERPRINT;
		lr.body_size = e->body_size;
		lr.body_hash = e->body_hash;
	}
	if (e->has_body) {
		lr.flags |= STORE_LEDGER_F_BODY;
		lr.body_id = e->body_id;
	}
	if (e->has_digest) {
		lr.flags |= STORE_LEDGER_F_DIGEST;
		memcpy(lr.digest, e->digest, sizeof(lr.digest));
	}
	if (e->has_head) {
		lr.flags |= STORE_LEDGER_F_HEAD;
		memcpy(lr.head_digest, e->head_digest,
		    sizeof(lr.head_digest));
		lr.list_size = e->list_size;
	}
	if (put_val(store, txn, DB_LEDGER, &k, &lr, sizeof(lr),
	    MDB_NOOVERWRITE, "UIDL", error_r) < 0)
		goto fail;
	if (e->has_digest) {
		store_ledger_digest_key(&k, user_id, account, e->digest,
		    e->uidl, e->uidl_size);
		if (put_val(store, txn, DB_DIGESTS, &k, "", 0, 0, "digest",
		    error_r) < 0)
			goto fail;
	}
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_import_subscribe(struct store *store, uint32_t user_id,
    const char *name, const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	MDB_txn *txn = NULL;

	if (store_mb_name_norm(store, name, norm, error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_sub_put_txn(store, txn, user_id, norm, error_r) < 0) {
		store_wabort(store, txn);
		return -1;
	}
	return store_wcommit(store, txn, error_r);
}

struct ledger_accounts_walk {
	int (*cb)(void *ctx, const char *account);
	void *ctx;
	char last[STORE_ACCOUNT_ID_MAX + 1];
};

static int
ledger_accounts_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct ledger_accounts_walk *w = ctx;
	const unsigned char *p = key->mv_data;
	char acct[STORE_ACCOUNT_ID_MAX + 1];
	size_t len;

	(void)data;
	if (key->mv_size < 5)
		return 0;
	len = p[4];
	if (len == 0 || len > STORE_ACCOUNT_ID_MAX || key->mv_size < 5 + len)
		return 0;
	memcpy(acct, p + 5, len);
	acct[len] = '\0';
	if (strcmp(acct, w->last) == 0)
		return 0;
	memcpy(w->last, acct, len + 1);
	return w->cb(w->ctx, acct);
}

int
store_ledger_accounts(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *account), void *ctx,
    const char **error_r)
{
	struct ledger_accounts_walk w = { cb, ctx, "" };
	struct store_key k;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	return store_prefix_foreach(r->store, r->txn, DB_LEDGER, &k,
	    ledger_accounts_each, &w, "ledger", error_r);
}
