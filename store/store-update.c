/*
 * store-update — changing messages already stored: flags (with MODSEQ and
 * UNCHANGEDSINCE), copy and move without copying bytes, expunge with the
 * vanished history. Each call is one write transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xmalloc.h"

static void
msg_key(struct store_key *k, uint32_t user_id, uint32_t mailbox_id,
    uint32_t uid)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u32(k, mailbox_id);
	store_key_u32(k, uid);
}

static bool
flags_equal(const struct store_msgrec *a, const struct store_msgrec *b)
{
	return a->system == b->system &&
	    memcmp(a->keywords, b->keywords, sizeof(a->keywords)) == 0;
}

static int
vanished_put(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, uint64_t modseq, uint32_t uid, const char **error_r)
{
	struct store_key k;
	MDB_val key, data = { 0, (void *)"" };
	int rc;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u32(&k, mailbox_id);
	store_key_u64(&k, modseq);
	store_key_u32(&k, uid);
	key = store_key_val(&k);
	if ((rc = mdb_put(txn, store->dbi[DB_VANISHED], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc, "vanished write");
	return 0;
}

/* ---- flags ---- */

static bool
flag_result_has_keywords(const struct store_flag_result *res)
{
	const struct store_flag_change *lists[2] = { res->changed,
	    res->unchanged };
	size_t counts[2] = { res->changed_count, res->unchanged_count };

	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < counts[l]; i++)
			for (size_t w = 0; w < STORE_KEYWORD_WORDS; w++)
				if (lists[l][i].flags.keywords[w] != 0)
					return true;
	return false;
}

/* Copies the mailbox's keyword names (loading the table unless the call
 * already did) into the result. */
static int
flag_result_keep_names(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, struct store_kwtable **kwp,
    struct store_flag_result *res, const char **error_r)
{
	if (*kwp == NULL) {
		*kwp = xmalloc(sizeof(**kwp));
		if (store_kw_load(store, txn, user_id, mailbox_id, *kwp,
		    error_r) < 0)
			return -1;
	}
	res->keywords = xreallocarray(NULL, (*kwp)->count + 1,
	    sizeof(char *));
	for (uint32_t i = 0; i < (*kwp)->count; i++)
		res->keywords[i] = xstrdup((*kwp)->names[i]);
	res->keyword_count = (*kwp)->count;
	return 0;
}

int
store_flags_update(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const struct store_uid_range *ranges,
    size_t range_count, enum store_flag_op op, uint32_t system_flags,
    const char *const *keywords, size_t keyword_count,
    uint64_t unchangedsince, struct store_flag_result *result_r,
    const char **error_r)
{
	struct store_uid_range *norm = NULL;
	struct store_kwtable *kw = NULL;
	struct store_event *ev;
	struct store_mb mb;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	uint64_t mask[STORE_KEYWORD_WORDS] = { 0 };
	uint64_t modseq;
	size_t n, changed_cap = 0, failed_cap = 0, unchanged_cap = 0;
	uint32_t kw_before;
	int rc;

	memset(result_r, 0, sizeof(*result_r));
	if ((system_flags & ~STORE_FLAGS_SYSTEM_ALL) != 0 ||
	    (unsigned int)op > STORE_FLAGS_REMOVE)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid flags");
	if (keyword_count > STORE_KEYWORDS_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: too many keywords");
	if (store_ranges_normalize(ranges, range_count, &norm, &n) < 0)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid UID range");
	if (store_wbegin(store, &txn, error_r) < 0)
		goto fail;
	if (store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0)
		goto fail;
	kw_before = mb.rec.keyword_count;
	if (keyword_count > 0) {
		kw = xmalloc(sizeof(*kw));
		if (store_kw_load(store, txn, user_id, mailbox_id, kw,
		    error_r) < 0)
			goto fail;
	}
	for (size_t i = 0; i < keyword_count; i++) {
		unsigned int id = STORE_KEYWORDS_MAX;

		if (op == STORE_FLAGS_REMOVE) {
			/* Removing an unknown keyword changes nothing;
			   do not grow the table for it. */
			for (unsigned int j = 0; j < kw->count; j++) {
				if (strcasecmp(kw->names[j], keywords[i]) == 0)
					id = j;
			}
			if (id == STORE_KEYWORDS_MAX)
				continue;
		} else if (store_kw_intern(store, txn, user_id, &mb, kw,
		    keywords[i], &id, error_r) < 0) {
			goto fail;
		}
		mask[id / 64] |= (uint64_t)1 << (id % 64);
	}
	modseq = mb.rec.highestmodseq + 1;
	ev = store_event_add(store, STORE_CHANGE_FLAGS, user_id, NULL,
	    mailbox_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MSGS], &cur)) != 0) {
		store_fail_mdb(store, error_r, rc, "cursor");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_key k;
		MDB_val key, data;

		msg_key(&k, user_id, mailbox_id, norm[i].first);
		key = store_key_val(&k);
		rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
		for (; rc == 0; rc = mdb_cursor_get(cur, &key, &data,
		    MDB_NEXT)) {
			struct store_msgrec old, m;
			struct store_flag_change *fc;
			uint32_t uid;

			if (key.mv_size != 12 ||
			    memcmp(key.mv_data, k.b, 8) != 0)
				break;
			uid = store_get_u32((unsigned char *)key.mv_data + 8);
			if (uid > norm[i].last)
				break;
			memcpy(&old, data.mv_data, sizeof(old));
			if (unchangedsince != 0 && old.modseq > unchangedsince) {
				if (result_r->failed_count == failed_cap) {
					failed_cap = failed_cap == 0 ? 16 :
					    failed_cap * 2;
					result_r->failed = xreallocarray(
					    result_r->failed, failed_cap,
					    sizeof(uint32_t));
				}
				result_r->failed[result_r->failed_count++] =
				    uid;
				continue;
			}
			m = old;
			switch (op) {
			case STORE_FLAGS_SET:
				m.system = system_flags;
				memcpy(m.keywords, mask, sizeof(mask));
				break;
			case STORE_FLAGS_ADD:
				m.system |= system_flags;
				for (size_t w = 0; w < STORE_KEYWORD_WORDS; w++)
					m.keywords[w] |= mask[w];
				break;
			case STORE_FLAGS_REMOVE:
				m.system &= ~system_flags;
				for (size_t w = 0; w < STORE_KEYWORD_WORDS; w++)
					m.keywords[w] &= ~mask[w];
				break;
			}
			if (flags_equal(&old, &m)) {
				if (result_r->unchanged_count ==
				    unchanged_cap) {
					unchanged_cap = unchanged_cap == 0 ?
					    64 : unchanged_cap * 2;
					result_r->unchanged = xreallocarray(
					    result_r->unchanged, unchanged_cap,
					    sizeof(*result_r->unchanged));
				}
				fc = &result_r->unchanged[
				    result_r->unchanged_count++];
				fc->uid = uid;
				fc->flags.system = old.system;
				memcpy(fc->flags.keywords, old.keywords,
				    sizeof(old.keywords));
				fc->modseq = old.modseq;
				continue;
			}
			store_mb_count_add(&mb.rec, &old, -1);
			store_mb_count_add(&mb.rec, &m, 1);
			m.modseq = modseq;
			data.mv_data = &m;
			data.mv_size = sizeof(m);
			if ((rc = mdb_cursor_put(cur, &key, &data,
			    MDB_CURRENT)) != 0) {
				store_fail_mdb(store, error_r, rc,
				    "flags write");
				goto fail;
			}
			if (result_r->changed_count == changed_cap) {
				changed_cap = changed_cap == 0 ? 64 :
				    changed_cap * 2;
				result_r->changed = xreallocarray(
				    result_r->changed, changed_cap,
				    sizeof(*result_r->changed));
			}
			fc = &result_r->changed[result_r->changed_count++];
			fc->uid = uid;
			fc->flags.system = m.system;
			memcpy(fc->flags.keywords, m.keywords,
			    sizeof(m.keywords));
			fc->modseq = modseq;
			store_event_add_uid(ev, uid);
		}
		if (rc != 0 && rc != MDB_NOTFOUND) {
			store_fail_mdb(store, error_r, rc, "message list");
			goto fail;
		}
	}
	mdb_cursor_close(cur);
	cur = NULL;
	free(norm);
	norm = NULL;
	if (flag_result_has_keywords(result_r) &&
	    flag_result_keep_names(store, txn, user_id, mailbox_id, &kw,
	    result_r, error_r) < 0)
		goto fail;
	free(kw);
	kw = NULL;
	if (result_r->changed_count > 0)
		mb.rec.highestmodseq = modseq;
	result_r->highestmodseq = mb.rec.highestmodseq;
	if (result_r->changed_count == 0 &&
	    mb.rec.keyword_count == kw_before) {
		/* Nothing to write: no commit, no fsync. */
		store_wabort(store, txn);
		store_ok(store);
		return 0;
	}
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0)
		goto fail;
	/* With no message changed, the empty event is not sent. */
	store_event_add(store, STORE_CHANGE_FLAGS, user_id, &mb, mailbox_id);
	if (store_wcommit(store, txn, error_r) < 0) {
		store_flag_result_free(result_r);
		return -1;
	}
	return 0;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	free(norm);
	free(kw);
	store_wabort(store, txn);
	store_flag_result_free(result_r);
	return -1;
}

void
store_flag_result_free(struct store_flag_result *result)
{
	free(result->changed);
	free(result->unchanged);
	free(result->failed);
	for (size_t i = 0; i < result->keyword_count; i++)
		free(result->keywords[i]);
	free(result->keywords);
	memset(result, 0, sizeof(*result));
}

/* ---- collecting a UID set ---- */

struct msg_item {
	uint32_t uid;
	struct store_msgrec rec;
};

static int
collect(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, const struct store_uid_range *ranges, size_t n,
    bool deleted_only, struct msg_item **items_r, size_t *count_r,
    const char **error_r)
{
	static const struct store_uid_range all = { 1, UINT32_MAX };
	struct msg_item *items = NULL;
	size_t count = 0, cap = 0;
	MDB_cursor *cur;
	int rc = 0;

	if (ranges == NULL || n == 0) {
		ranges = &all;
		n = 1;
	}
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	for (size_t i = 0; i < n; i++) {
		struct store_key k;
		MDB_val key, data;

		msg_key(&k, user_id, mailbox_id, ranges[i].first);
		key = store_key_val(&k);
		rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
		for (; rc == 0; rc = mdb_cursor_get(cur, &key, &data,
		    MDB_NEXT)) {
			uint32_t uid;

			if (key.mv_size != 12 ||
			    memcmp(key.mv_data, k.b, 8) != 0)
				break;
			uid = store_get_u32((unsigned char *)key.mv_data + 8);
			if (uid > ranges[i].last)
				break;
			if (count == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				items = xreallocarray(items, cap,
				    sizeof(*items));
			}
			items[count].uid = uid;
			memcpy(&items[count].rec, data.mv_data,
			    sizeof(items[count].rec));
			if (!deleted_only ||
			    (items[count].rec.system & STORE_FLAG_DELETED) != 0)
				count++;
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	mdb_cursor_close(cur);
	if (rc != 0) {
		free(items);
		return store_fail_mdb(store, error_r, rc, "message list");
	}
	*items_r = items;
	*count_r = count;
	return 0;
}

/* Removes one message record, remembering it as vanished at modseq. */
static int
msg_remove(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct store_mb *mb, const struct msg_item *it, uint64_t modseq,
    bool unref_body, const char **error_r)
{
	struct store_key k;
	MDB_val key;
	int rc;

	msg_key(&k, user_id, mb->id, it->uid);
	key = store_key_val(&k);
	if ((rc = mdb_del(txn, store->dbi[DB_MSGS], &key, NULL)) != 0)
		return store_fail_mdb(store, error_r, rc, "message delete");
	if (vanished_put(store, txn, user_id, mb->id, modseq, it->uid,
	    error_r) < 0)
		return -1;
	if (unref_body && store_body_unref(store, txn, user_id,
	    it->rec.body_id, error_r) < 0)
		return -1;
	store_mb_count_add(&mb->rec, &it->rec, -1);
	return 0;
}

/* ---- copy / move ---- */

static int
body_ref(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, const char **error_r)
{
	struct store_bodyrec br;
	struct store_key k;
	MDB_val key, data;
	int rc;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u64(&k, body_id);
	key = store_key_val(&k);
	if ((rc = mdb_get(txn, store->dbi[DB_BODYINFO], &key, &data)) != 0)
		return store_fail_mdb(store, error_r, rc, "body info");
	memcpy(&br, data.mv_data, sizeof(br));
	br.refcount++;
	data.mv_data = &br;
	data.mv_size = sizeof(br);
	if ((rc = mdb_put(txn, store->dbi[DB_BODYINFO], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc, "body info write");
	return 0;
}

int
store_copy(struct store *store, uint32_t user_id, uint32_t src_mailbox_id,
    uint32_t dst_mailbox_id, const struct store_uid_range *ranges,
    size_t range_count, bool move, struct store_copy_result *result_r,
    const char **error_r)
{
	struct store_uid_range *norm = NULL;
	struct store_kwtable *skw = NULL, *dkw = NULL;
	struct store_event *nev, *xev = NULL;
	struct msg_item *items = NULL;
	struct store_mb src, dst, *dp = &dst;
	MDB_txn *txn = NULL;
	uint64_t dst_modseq, src_modseq;
	size_t n, count = 0;
	/* COPY into the selected mailbox is valid IMAP (RFC 3501 6.4.7):
	   the copies get new UIDs in the same mailbox; so is MOVE, which
	   RFC 6851 3.1 defines as that copy plus the expunge of the
	   originals, here in the one transaction */
	bool same = src_mailbox_id == dst_mailbox_id;

	memset(result_r, 0, sizeof(*result_r));
	if (store_ranges_normalize(ranges, range_count, &norm, &n) < 0 ||
	    n == 0) {
		free(norm);
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid UID range");
	}
	if (store_wbegin(store, &txn, error_r) < 0)
		goto fail;
	if (store_mb_load(store, txn, user_id, src_mailbox_id, &src,
	    error_r) < 0 ||
	    (!same && store_mb_load(store, txn, user_id, dst_mailbox_id, &dst,
	    error_r) < 0) ||
	    collect(store, txn, user_id, src_mailbox_id, norm, n, false,
	    &items, &count, error_r) < 0)
		goto fail;
	if (!move) {
		/* a copy adds to the quota's count; a move does not */
		uint64_t adding = 0;

		for (size_t i = 0; i < count; i++)
			adding += items[i].rec.size;
		if (store_quota_check(store, txn, user_id, adding,
		    error_r) < 0)
			goto fail;
	}
	/* the same mailbox: one record (counters, UIDNEXT, MODSEQ) and one
	   keyword table, so keyword ids need no mapping */
	if (same)
		dp = &src;
	if (!same && src.rec.keyword_count > 0) {
		skw = xmalloc(sizeof(*skw));
		dkw = xmalloc(sizeof(*dkw));
		if (store_kw_load(store, txn, user_id, src.id, skw,
		    error_r) < 0 ||
		    store_kw_load(store, txn, user_id, dp->id, dkw,
		    error_r) < 0)
			goto fail;
	}
	result_r->src_uids = xreallocarray(NULL, count + 1, sizeof(uint32_t));
	result_r->dst_uids = xreallocarray(NULL, count + 1, sizeof(uint32_t));
	dst_modseq = dp->rec.highestmodseq + 1;
	src_modseq = src.rec.highestmodseq + 1;
	nev = store_event_add(store, STORE_CHANGE_NEW, user_id, NULL, dp->id);
	if (move)
		xev = store_event_add(store, STORE_CHANGE_EXPUNGE, user_id,
		    NULL, src.id);
	for (size_t i = 0; i < count; i++) {
		struct store_msgrec m = items[i].rec;
		struct store_key k;
		MDB_val key, data = { sizeof(m), &m };
		uint32_t uid;
		int rc;

		if (dp->rec.uidnext == UINT32_MAX) {
			store_fail(store, error_r, STORE_ERR_LIMIT,
			    "store: UIDs exhausted in mailbox");
			goto fail;
		}
		if (skw != NULL) {
			memset(m.keywords, 0, sizeof(m.keywords));
			for (unsigned int b = 0; b < skw->count; b++) {
				unsigned int id;

				if ((items[i].rec.keywords[b / 64] &
				    ((uint64_t)1 << (b % 64))) == 0)
					continue;
				if (store_kw_intern(store, txn, user_id, dp,
				    dkw, skw->names[b], &id, error_r) < 0)
					goto fail;
				m.keywords[id / 64] |= (uint64_t)1 << (id % 64);
			}
		}
		uid = dp->rec.uidnext++;
		m.modseq = dst_modseq;
		msg_key(&k, user_id, dp->id, uid);
		key = store_key_val(&k);
		if ((rc = mdb_put(txn, store->dbi[DB_MSGS], &key, &data,
		    MDB_NOOVERWRITE)) != 0) {
			store_fail_mdb(store, error_r, rc, "message write");
			goto fail;
		}
		store_mb_count_add(&dp->rec, &m, 1);
		if (move) {
			/* The reference moves with the message. */
			if (msg_remove(store, txn, user_id, &src, &items[i],
			    src_modseq, false, error_r) < 0)
				goto fail;
			store_event_add_uid(xev, items[i].uid);
		} else if (body_ref(store, txn, user_id, m.body_id,
		    error_r) < 0) {
			goto fail;
		}
		result_r->src_uids[i] = items[i].uid;
		result_r->dst_uids[i] = uid;
		store_event_add_uid(nev, uid);
	}
	result_r->count = count;
	result_r->dst_uidvalidity = dp->rec.uidvalidity;
	if (count == 0) {
		store_wabort(store, txn);
		store_ok(store);
		goto done;
	}
	dp->rec.highestmodseq = dst_modseq;
	if (move)
		src.rec.highestmodseq = src_modseq;
	if (store_mb_save(store, txn, user_id, dp, error_r) < 0 ||
	    (move && !same &&
	    store_mb_save(store, txn, user_id, &src, error_r) < 0))
		goto fail;
	store_event_add(store, STORE_CHANGE_NEW, user_id, dp, dp->id);
	if (move)
		store_event_add(store, STORE_CHANGE_EXPUNGE, user_id, &src,
		    src.id);
	if (store_wcommit(store, txn, error_r) < 0) {
		txn = NULL;
		goto fail;
	}
done:
	free(norm);
	free(items);
	free(skw);
	free(dkw);
	return 0;
fail:
	free(norm);
	free(items);
	free(skw);
	free(dkw);
	store_wabort(store, txn);
	store_copy_result_free(result_r);
	return -1;
}

void
store_copy_result_free(struct store_copy_result *result)
{
	free(result->src_uids);
	free(result->dst_uids);
	memset(result, 0, sizeof(*result));
}

/* ---- expunge ---- */

int
store_expunge(struct store *store, uint32_t user_id, uint32_t mailbox_id,
    const struct store_uid_range *ranges, size_t range_count,
    bool deleted_only, uint32_t **uids_r, size_t *count_r,
    const char **error_r)
{
	struct store_uid_range *norm = NULL;
	struct msg_item *items = NULL;
	struct store_event *ev;
	struct store_mb mb;
	MDB_txn *txn = NULL;
	uint32_t *uids = NULL;
	uint64_t modseq;
	size_t n = 0, count = 0;

	if (uids_r != NULL)
		*uids_r = NULL;
	if (count_r != NULL)
		*count_r = 0;
	if (store_ranges_normalize(ranges, range_count, &norm, &n) < 0)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid UID range");
	if (store_wbegin(store, &txn, error_r) < 0)
		goto fail;
	if (store_mb_load(store, txn, user_id, mailbox_id, &mb, error_r) < 0 ||
	    collect(store, txn, user_id, mailbox_id, norm, n, deleted_only,
	    &items, &count, error_r) < 0)
		goto fail;
	if (count == 0) {
		store_wabort(store, txn);
		free(norm);
		free(items);
		store_ok(store);
		return 0;
	}
	modseq = mb.rec.highestmodseq + 1;
	ev = store_event_add(store, STORE_CHANGE_EXPUNGE, user_id, NULL,
	    mailbox_id);
	uids = xreallocarray(NULL, count, sizeof(*uids));
	for (size_t i = 0; i < count; i++) {
		if (msg_remove(store, txn, user_id, &mb, &items[i], modseq,
		    true, error_r) < 0)
			goto fail;
		uids[i] = items[i].uid;
		store_event_add_uid(ev, items[i].uid);
	}
	mb.rec.highestmodseq = modseq;
	if (store_mb_save(store, txn, user_id, &mb, error_r) < 0)
		goto fail;
	store_event_add(store, STORE_CHANGE_EXPUNGE, user_id, &mb, mailbox_id);
	free(norm);
	free(items);
	if (store_wcommit(store, txn, error_r) < 0) {
		free(uids);
		return -1;
	}
	if (uids_r != NULL)
		*uids_r = uids;
	else
		free(uids);
	if (count_r != NULL)
		*count_r = count;
	return 0;
fail:
	free(norm);
	free(items);
	free(uids);
	store_wabort(store, txn);
	return -1;
}
