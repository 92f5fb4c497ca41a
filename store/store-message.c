/*
 * store-message — reading messages: metadata by UID range and by sequence,
 * structure blobs, body bytes (zero copy, from the map), and the changes
 * since a MODSEQ.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xmalloc.h"

static void
msg_prefix(struct store_key *k, uint32_t user_id, uint32_t mailbox_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u32(k, mailbox_id);
}

void
store_msg_from_rec(uint32_t uid, const struct store_msgrec *rec,
    struct store_msg *msg_r)
{
	msg_r->uid = uid;
	msg_r->flags.system = rec->system;
	memcpy(msg_r->flags.keywords, rec->keywords,
	    sizeof(msg_r->flags.keywords));
	msg_r->modseq = rec->modseq;
	msg_r->internaldate = rec->internaldate;
	msg_r->tz_offset_min = rec->tz_offset_min;
	msg_r->size = rec->size;
	msg_r->body_id = rec->body_id;
	msg_r->structure_size = rec->structure_size;
}

static int
msgrec_get(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint32_t uid, struct store_msgrec *rec_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	msg_prefix(&k, user_id, mailbox_id);
	store_key_u32(&k, uid);
	key = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[DB_MSGS], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "message");
	if (data.mv_size != sizeof(*rec_r))
		return store_fail(r->store, error_r, STORE_ERR_IO,
		    "store: corrupt message record");
	memcpy(rec_r, data.mv_data, sizeof(*rec_r));
	return 0;
}

int
store_msg_get(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint32_t uid, struct store_msg *msg_r, const char **error_r)
{
	struct store_msgrec rec;
	int rc;

	if ((rc = msgrec_get(r, user_id, mailbox_id, uid, &rec, error_r)) != 0)
		return rc;
	store_msg_from_rec(uid, &rec, msg_r);
	return 0;
}

int
store_msg_foreach(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t first_uid, uint32_t last_uid,
    int (*cb)(void *ctx, const struct store_msg *msg), void *ctx,
    const char **error_r)
{
	struct store_key k, start;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc, ret = 0;

	if (first_uid > last_uid)
		return 0;
	msg_prefix(&k, user_id, mailbox_id);
	start = k;
	store_key_u32(&start, first_uid);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&start);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == 12 && store_key_has_prefix(&key, &k)) {
		struct store_msgrec rec;
		struct store_msg msg;
		uint32_t uid = store_get_u32((unsigned char *)key.mv_data + 8);

		if (uid > last_uid)
			break;
		if (data.mv_size != sizeof(rec)) {
			ret = store_fail(r->store, error_r, STORE_ERR_IO,
			    "store: corrupt message record");
			break;
		}
		memcpy(&rec, data.mv_data, sizeof(rec));
		store_msg_from_rec(uid, &rec, &msg);
		if ((ret = cb(ctx, &msg)) != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "message list");
	return 0;
}

struct msg_array {
	struct store_msg *msgs;
	size_t count, cap;
};

static int
msg_array_add(void *ctx, const struct store_msg *msg)
{
	struct msg_array *a = ctx;

	if (a->count == a->cap) {
		a->cap = a->cap == 0 ? 64 : a->cap * 2;
		a->msgs = xreallocarray(a->msgs, a->cap, sizeof(*a->msgs));
	}
	a->msgs[a->count++] = *msg;
	return 0;
}

int
store_msg_list(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    const struct store_uid_range *ranges, size_t range_count,
    struct store_msg **msgs_r, size_t *count_r, const char **error_r)
{
	struct store_uid_range *norm;
	struct msg_array a = { NULL, 0, 0 };
	size_t n;
	int ret = 0;

	*msgs_r = NULL;
	*count_r = 0;
	if (store_ranges_normalize(ranges, range_count, &norm, &n) < 0)
		return store_fail(r->store, error_r, STORE_ERR_INVALID,
		    "store: invalid UID range");
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = store_msg_foreach(r, user_id, mailbox_id, norm[i].first,
		    norm[i].last, msg_array_add, &a, error_r);
	free(norm);
	if (ret != 0) {
		free(a.msgs);
		return -1;
	}
	*msgs_r = a.msgs;
	*count_r = a.count;
	return 0;
}

int
store_msg_uids(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0;
	int rc;

	msg_prefix(&k, user_id, mailbox_id);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == 12 && store_key_has_prefix(&key, &k)) {
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[n++] = store_get_u32((unsigned char *)key.mv_data + 8);
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(uids);
		return store_fail_mdb(r->store, error_r, rc, "message list");
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

struct seq_ctx {
	uint32_t want, at;
	struct store_msg *msg;
};

static int
seq_cb(void *ctx, const struct store_msg *msg)
{
	struct seq_ctx *s = ctx;

	if (++s->at == s->want) {
		*s->msg = *msg;
		return 1;
	}
	return 0;
}

int
store_msg_by_seq(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t seq, struct store_msg *msg_r,
    const char **error_r)
{
	struct seq_ctx s = { seq, 0, msg_r };
	int rc;

	if (seq == 0)
		return STORE_NOT_FOUND;
	rc = store_msg_foreach(r, user_id, mailbox_id, 1, UINT32_MAX, seq_cb,
	    &s, error_r);
	if (rc < 0)
		return -1;
	return rc == 1 ? 0 : STORE_NOT_FOUND;
}

static int
body_part(struct store_read *r, enum store_db db, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, const void **data_r, size_t *size_r,
    const char **error_r)
{
	struct store_msgrec rec;
	struct store_key k;
	MDB_val key, data;
	int rc;

	if ((rc = msgrec_get(r, user_id, mailbox_id, uid, &rec, error_r)) != 0)
		return rc;
	if (db == DB_STRUCTS && rec.structure_size == 0) {
		*data_r = "";
		*size_r = 0;
		return 0;
	}
	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u64(&k, rec.body_id);
	key = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[db], &key, &data);
	if (rc != 0)
		return store_fail(r->store, error_r, STORE_ERR_IO,
		    "store: body %llu of uid %u missing: %s",
		    (unsigned long long)rec.body_id, uid, mdb_strerror(rc));
	*data_r = data.mv_data;
	*size_r = data.mv_size;
	return 0;
}

/* The record of body body_id in db (keyed user + body): mdb_get's
 * return. */
static int
body_lookup(struct store_read *r, enum store_db db, uint32_t user_id,
    uint64_t body_id, MDB_val *data)
{
	struct store_key k;
	MDB_val key;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u64(&k, body_id);
	key = store_key_val(&k);
	return mdb_get(r->txn, r->store->dbi[db], &key, data);
}

int
store_body_present(struct store_read *r, uint32_t user_id, uint64_t body_id,
    const char **error_r)
{
	MDB_val data;
	int rc;

	rc = body_lookup(r, DB_BODYINFO, user_id, body_id, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "body info");
	return 0;
}

int
store_body_get(struct store_read *r, uint32_t user_id, uint64_t body_id,
    const void **data_r, size_t *size_r, const char **error_r)
{
	MDB_val data;
	int rc;

	/* the body info goes with the last reference: a body without one
	   is not the user's any more (and body ids are never reused) */
	if ((rc = store_body_present(r, user_id, body_id, error_r)) != 0)
		return rc;
	rc = body_lookup(r, DB_BODIES, user_id, body_id, &data);
	if (rc != 0)
		return store_fail(r->store, error_r, STORE_ERR_IO,
		    "store: body %llu missing: %s",
		    (unsigned long long)body_id, mdb_strerror(rc));
	*data_r = data.mv_data;
	*size_r = data.mv_size;
	return 0;
}

int
store_msg_structure(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, const void **data_r, size_t *size_r,
    const char **error_r)
{
	return body_part(r, DB_STRUCTS, user_id, mailbox_id, uid, data_r,
	    size_r, error_r);
}

int
store_msg_sortkey(struct store_read *r, uint32_t user_id, uint64_t body_id,
    const void **data_r, size_t *size_r, const char **error_r)
{
	MDB_val data;
	int rc;

	rc = body_lookup(r, DB_SORTKEYS, user_id, body_id, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "sort keys");
	*data_r = data.mv_data;
	*size_r = data.mv_size;
	return 0;
}

int
store_msg_body(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint32_t uid, const void **data_r, size_t *size_r, const char **error_r)
{
	return body_part(r, DB_BODIES, user_id, mailbox_id, uid, data_r, size_r,
	    error_r);
}

int
store_body_open(struct store *store, uint32_t user_id, uint32_t mailbox_id,
    uint32_t uid, struct store_body **body_r, const char **error_r)
{
	struct store_body *body;
	struct store_read *r;
	int rc;

	*body_r = NULL;
	if (store_read_begin(store, &r, error_r) < 0)
		return -1;
	body = xcalloc(1, sizeof(*body));
	rc = store_msg_body(r, user_id, mailbox_id, uid, &body->data,
	    &body->size, error_r);
	if (rc != 0) {
		store_read_end(&r);
		free(body);
		return rc;
	}
	body->read_ = r;
	*body_r = body;
	return 0;
}

void
store_body_close(struct store_body **bodyp)
{
	struct store_body *body = *bodyp;

	if (body == NULL)
		return;
	store_read_end(&body->read_);
	free(body);
	*bodyp = NULL;
}

/* ---- changes since ---- */

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
vanished_since(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint64_t since, struct store_changes *ch, const char **error_r)
{
	struct store_key k, start;
	MDB_cursor *cur;
	MDB_val key, data;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0, m = 0;
	int rc;

	msg_prefix(&k, user_id, mailbox_id);
	start = k;
	store_key_u64(&start, since == UINT64_MAX ? since : since + 1);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_VANISHED],
	    &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&start);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == 20 && store_key_has_prefix(&key, &k)) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[n++] = store_get_u32((unsigned char *)key.mv_data + 16);
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(uids);
		return store_fail_mdb(r->store, error_r, rc, "vanished");
	}
	if (n == 0)
		return 0;
	qsort(uids, n, sizeof(*uids), u32_cmp);
	ch->vanished = xreallocarray(NULL, n, sizeof(*ch->vanished));
	ch->vanished[0].first = ch->vanished[0].last = uids[0];
	for (size_t i = 1; i < n; i++) {
		if (uids[i] <= ch->vanished[m].last + 1) {
			if (uids[i] > ch->vanished[m].last)
				ch->vanished[m].last = uids[i];
		} else {
			m++;
			ch->vanished[m].first = ch->vanished[m].last = uids[i];
		}
	}
	ch->vanished_count = m + 1;
	free(uids);
	return 0;
}

/* The messages whose MODSEQ is above since, in UID order. There is no
 * MODSEQ index: this reads every record of the mailbox, so the loop reads
 * only the 8-byte MODSEQ of each and converts nothing else (it is the
 * whole cost of an incremental resync of a large mailbox). */
static int
changed_since(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint64_t since, struct store_changes *ch, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	size_t cap = 0;
	int rc, ret = 0;

	msg_prefix(&k, user_id, mailbox_id);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_MSGS], &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == 12 &&
	    memcmp(key.mv_data, k.b, 8) == 0) {
		struct store_msgrec rec;
		struct store_flag_change *fc;
		uint64_t modseq;

		if (data.mv_size != sizeof(rec)) {
			ret = store_fail(r->store, error_r, STORE_ERR_IO,
			    "store: corrupt message record");
			break;
		}
		memcpy(&modseq, (const unsigned char *)data.mv_data +
		    offsetof(struct store_msgrec, modseq), sizeof(modseq));
		if (modseq > since) {
			memcpy(&rec, data.mv_data, sizeof(rec));
			if (ch->changed_count == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				ch->changed = xreallocarray(ch->changed, cap,
				    sizeof(*ch->changed));
			}
			fc = &ch->changed[ch->changed_count++];
			fc->uid = store_get_u32((unsigned char *)key.mv_data +
			    8);
			fc->flags.system = rec.system;
			memcpy(fc->flags.keywords, rec.keywords,
			    sizeof(fc->flags.keywords));
			fc->modseq = rec.modseq;
		}
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "message list");
	return 0;
}

static int
changes_since(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    uint64_t since_modseq, bool want_changed,
    struct store_changes *changes_r, const char **error_r)
{
	struct store_mailbox_info info;
	int rc;

	memset(changes_r, 0, sizeof(*changes_r));
	rc = store_mailbox_get(r, user_id, mailbox_id, &info, error_r);
	if (rc != 0)
		return rc;
	changes_r->highestmodseq = info.highestmodseq;
	if (since_modseq >= info.highestmodseq)
		return 0;
	if ((want_changed && changed_since(r, user_id, mailbox_id,
	    since_modseq, changes_r, error_r) < 0) ||
	    vanished_since(r, user_id, mailbox_id, since_modseq, changes_r,
	    error_r) < 0) {
		store_changes_free(changes_r);
		return -1;
	}
	return 0;
}

int
store_changes_since(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint64_t since_modseq,
    struct store_changes *changes_r, const char **error_r)
{
	return changes_since(r, user_id, mailbox_id, since_modseq, true,
	    changes_r, error_r);
}

int
store_vanished_since(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint64_t since_modseq,
    struct store_changes *changes_r, const char **error_r)
{
	return changes_since(r, user_id, mailbox_id, since_modseq, false,
	    changes_r, error_r);
}

void
store_changes_free(struct store_changes *changes)
{
	free(changes->changed);
	free(changes->vanished);
	memset(changes, 0, sizeof(*changes));
}
