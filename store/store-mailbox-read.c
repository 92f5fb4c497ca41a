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

struct mailbox_walk {
	struct store_read *r;
	uint32_t user_id;
	int (*cb)(void *ctx, const struct store_mailbox_info *info);
	void *ctx;
	const char **error_r;
};

static int
mailbox_walk_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct mailbox_walk *w = ctx;
	struct store_mailbox_info info;
	uint32_t id;
	int ret;

	memcpy(&id, data->mv_data, 4);
	ret = mbinfo_get(w->r, w->user_id, id, &info, w->error_r);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return w->cb(w->ctx, &info);
	return 0;
}

int
store_mailbox_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const struct store_mailbox_info *info), void *ctx,
    const char **error_r)
{
	struct store_key k;
	struct mailbox_walk w = {
		.r = r, .user_id = user_id, .cb = cb, .ctx = ctx,
		.error_r = error_r,
	};

	store_key_init(&k);
	store_key_u32(&k, user_id);
	return store_prefix_foreach(r->store, r->txn, DB_MBNAMES, &k,
	    mailbox_walk_each, &w, "mailbox list", error_r);
}

struct subscription_walk {
	int (*cb)(void *ctx, const char *name);
	void *ctx;
};

static int
subscription_walk_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct subscription_walk *w = ctx;
	char name[STORE_MAILBOX_NAME_MAX + 1];

	store_key_tail(key, 4, name, STORE_MAILBOX_NAME_MAX);
	return w->cb(w->ctx, name);
}

int
store_subscription_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *name), void *ctx,
    const char **error_r)
{
	struct store_key k;
	struct subscription_walk w = { .cb = cb, .ctx = ctx };

	store_key_init(&k);
	store_key_u32(&k, user_id);
	return store_prefix_foreach(r->store, r->txn, DB_SUBS, &k,
	    subscription_walk_each, &w, "subscriptions", error_r);
}

/* ---- keywords ---- */

struct keywords_walk {
	const char **names;
	size_t count;
};

static int
keywords_walk_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct keywords_walk *w = ctx;

	/* Ids are dense from 0, so the n-th key has id n. */
	w->names[w->count++] = data->mv_data;
	return w->count == STORE_KEYWORDS_MAX;	/* 1: the array is full */
}

int
store_mailbox_keywords(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const char *names_r[STORE_KEYWORDS_MAX],
    size_t *count_r, const char **error_r)
{
	struct store_key k;
	struct keywords_walk w = { .names = names_r, .count = 0 };
	int ret;

	store_mb_key(&k, user_id, mailbox_id);
	ret = store_prefix_foreach(r->store, r->txn, DB_KEYWORDS, &k,
	    keywords_walk_each, &w, "keywords", error_r);
	*count_r = w.count;
	return ret < 0 ? -1 : 0;
}

