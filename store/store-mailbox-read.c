/*
 * store-mailbox-read — reading mailboxes: by name and id, the list in name
 * order, subscriptions and keyword tables, as of a read snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

/* ---- reads ---- */

void
store_mbinfo_fill(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const struct store_mbrec *rec, const char *name,
    size_t name_len, struct store_mailbox_info *info_r)
{
	struct store_key k;
	MDB_val key, data;

	memset(info_r, 0, sizeof(*info_r));
	info_r->id = mailbox_id;
	info_r->name = name;
	info_r->role = (enum store_role)rec->role;
	info_r->uidvalidity = rec->uidvalidity;
	info_r->uidnext = rec->uidnext;
	info_r->highestmodseq = rec->highestmodseq;
	info_r->messages = rec->messages;
	info_r->unseen = rec->unseen;
	info_r->deleted = rec->deleted;
	info_r->size = rec->size;
	info_r->keyword_count = rec->keyword_count;
	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_bytes(&k, name, name_len);
	key = store_key_val(&k);
	info_r->subscribed = mdb_get(r->txn, r->store->dbi[DB_SUBS], &key,
	    &data) == 0;
}

static int
mbinfo_get(struct store_read *r, uint32_t user_id, uint32_t mailbox_id,
    struct store_mailbox_info *info_r, const char **error_r)
{
	struct store_mbrec rec;
	struct store_key k;
	MDB_val key, data;
	const char *name;
	int rc;

	store_mb_key(&k, user_id, mailbox_id);
	key = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[DB_MAILBOXES], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "mailbox");
	memcpy(&rec, data.mv_data, sizeof(rec));
	if (data.mv_size < sizeof(rec) + rec.name_len + 1)
		return store_fail(r->store, error_r, STORE_ERR_IO,
		    "store: corrupt mailbox record");
	/* Stored NUL-terminated: a C string valid for the snapshot. */
	name = (const char *)data.mv_data + sizeof(rec);
	store_mbinfo_fill(r, user_id, mailbox_id, &rec, name, rec.name_len,
	    info_r);
	return 0;
}

int
store_mailbox_get(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, struct store_mailbox_info *info_r,
    const char **error_r)
{
	return mbinfo_get(r, user_id, mailbox_id, info_r, error_r);
}

int
store_mailbox_lookup(struct store_read *r, uint32_t user_id,
    const char *name, struct store_mailbox_info *info_r,
    const char **error_r)
{
	char norm[STORE_MAILBOX_NAME_MAX + 1];
	uint32_t id;
	int rc;

	if (!store_mailbox_name_valid(name, NULL))
		return STORE_NOT_FOUND;
	(void)store_mb_name_norm(r->store, name, norm, NULL);
	rc = store_mbname_get(r->store, r->txn, user_id, norm, &id, error_r);
	if (rc != 0)
		return rc;
	return mbinfo_get(r, user_id, id, info_r, error_r);
}

int
store_mailbox_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const struct store_mailbox_info *info), void *ctx,
    const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc, ret = 0;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_MBNAMES],
	    &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		struct store_mailbox_info info;
		uint32_t id;

		memcpy(&id, data.mv_data, 4);
		ret = mbinfo_get(r, user_id, id, &info, error_r);
		if (ret < 0)
			break;
		if (ret == 0 && (ret = cb(ctx, &info)) != 0)
			break;
		ret = 0;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "mailbox list");
	return 0;
}

int
store_subscription_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *name), void *ctx, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc, ret = 0;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_SUBS], &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		char name[STORE_MAILBOX_NAME_MAX + 1];
		size_t len = key.mv_size - 4;

		if (len > STORE_MAILBOX_NAME_MAX)
			len = STORE_MAILBOX_NAME_MAX;
		memcpy(name, (const char *)key.mv_data + 4, len);
		name[len] = '\0';
		if ((ret = cb(ctx, name)) != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "subscriptions");
	return 0;
}

/* ---- keywords ---- */

int
store_mailbox_keywords(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const char *names_r[STORE_KEYWORDS_MAX],
    size_t *count_r, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	size_t n = 0;
	int rc;

	store_mb_key(&k, user_id, mailbox_id);
	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_KEYWORDS],
	    &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k) &&
	    n < STORE_KEYWORDS_MAX) {
		/* Ids are dense from 0, so the n-th key has id n. */
		names_r[n++] = data.mv_data;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	*count_r = n;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "keywords");
	return 0;
}

