/*
 * store-user — users (name, opaque password hash, counters) and their
 * settings table.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"
#include "xmalloc.h"

static const struct {
	const char *name;
	enum store_role role;
} default_mailboxes[] = {
	{ "Sent", STORE_ROLE_SENT },
	{ "Drafts", STORE_ROLE_DRAFTS },
	{ "Trash", STORE_ROLE_TRASH },
	{ "Junk", STORE_ROLE_JUNK },
	{ "Archive", STORE_ROLE_ARCHIVE },
};

static bool
user_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STORE_USER_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static void
user_key(struct store_key *k, uint32_t user_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
}

int
store_userrec_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct store_userrec *rec_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	user_key(&k, user_id);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_USERS], &key, &data);
	if (rc == MDB_NOTFOUND)
		return store_fail(store, error_r, STORE_ERR_NOTFOUND,
		    "store: no such user");
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "user");
	if (data.mv_size < sizeof(*rec_r))
		return store_fail(store, error_r, STORE_ERR_IO,
		    "store: corrupt user record");
	memcpy(rec_r, data.mv_data, sizeof(*rec_r));
	return 0;
}

/* Writes the record keeping the name and hash that follow it. */
int
store_userrec_save(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_userrec *rec, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	user_key(&k, user_id);
	key = store_key_val(&k);
	if ((rc = mdb_get(txn, store->dbi[DB_USERS], &key, &data)) != 0)
		return store_fail_mdb(store, error_r, rc, "user");
	/* data points into the map (or a dirty page); the put below may
	   reuse that page, so copy first. */
	void *copy = xmemdup(data.mv_data, data.mv_size);
	memcpy(copy, rec, sizeof(*rec));
	data.mv_data = copy;
	rc = mdb_put(txn, store->dbi[DB_USERS], &key, &data, 0);
	free(copy);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "user write");
	return 0;
}

static int
user_put(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_userrec *rec, const char *name, const char *hash,
    const char **error_r)
{
	struct store_key k;
	size_t nl = strlen(name), hl = strlen(hash);
	size_t size = sizeof(*rec) + nl + hl + 2;
	unsigned char *buf = xmalloc(size);
	struct store_userrec r = *rec;
	MDB_val key, data = { size, buf };
	int rc;

	r.name_len = (uint16_t)nl;
	r.hash_len = (uint16_t)hl;
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), name, nl + 1);
	memcpy(buf + sizeof(r) + nl + 1, hash, hl + 1);
	user_key(&k, user_id);
	key = store_key_val(&k);
	rc = mdb_put(txn, store->dbi[DB_USERS], &key, &data, 0);
	free(buf);
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "user write");
	return 0;
}

/*
 * UIDVALIDITY floor in DB_META: the highest UIDVALIDITY any deleted user
 * was given. A user created again under the same name starts above
 * it, so a client that cached the old user's mailboxes never sees the
 * same UIDVALIDITY with other messages (the clock alone repeats when the
 * user is deleted and re-created within as many seconds as the old user
 * had mailboxes).
 */
#define META_UIDVALIDITY_FLOOR "uidvalidity_floor"

static int
uidvalidity_floor_get(struct store *store, MDB_txn *txn, uint32_t *floor_r,
    const char **error_r)
{
	MDB_val key = { strlen(META_UIDVALIDITY_FLOOR),
	    (void *)META_UIDVALIDITY_FLOOR }, data;
	int rc;

	*floor_r = 0;
	rc = mdb_get(txn, store->dbi[DB_META], &key, &data);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "uidvalidity floor");
	if (data.mv_size == sizeof(*floor_r))
		memcpy(floor_r, data.mv_data, sizeof(*floor_r));
	return 0;
}

static int
uidvalidity_floor_raise(struct store *store, MDB_txn *txn, uint32_t floor,
    const char **error_r)
{
	MDB_val key = { strlen(META_UIDVALIDITY_FLOOR),
	    (void *)META_UIDVALIDITY_FLOOR }, data = { sizeof(floor), &floor };
	uint32_t old;
	int rc;

	if (uidvalidity_floor_get(store, txn, &old, error_r) < 0)
		return -1;
	if (floor <= old)
		return 0;
	if ((rc = mdb_put(txn, store->dbi[DB_META], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc,
		    "uidvalidity floor write");
	return 0;
}

int
store_user_create(struct store *store, const char *name,
    const char *password_hash, unsigned int flags, uint32_t *user_id_r,
    const char **error_r)
{
	MDB_txn *txn = NULL;
	MDB_val key, data;
	struct store_userrec rec;
	struct store_mb mb;
	uint32_t id = 1, next, floor;
	time_t now = time(NULL);
	int rc;

	if (!user_name_valid(name))
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid user name");
	if (strlen(password_hash) > STORE_USER_HASH_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: password hash too long");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	key.mv_data = (void *)"next_user_id";
	key.mv_size = strlen("next_user_id");
	rc = mdb_get(txn, store->dbi[DB_META], &key, &data);
	if (rc == 0 && data.mv_size == 4)
		memcpy(&id, data.mv_data, 4);
	else if (rc != MDB_NOTFOUND && rc != 0)
		goto mdb_fail;
	if (id == UINT32_MAX) {
		store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: user ids exhausted");
		goto fail;
	}
	next = id + 1;
	data.mv_data = &next;
	data.mv_size = 4;
	if ((rc = mdb_put(txn, store->dbi[DB_META], &key, &data, 0)) != 0)
		goto mdb_fail;

	key.mv_data = (void *)name;
	key.mv_size = strlen(name);
	{
		unsigned char idb[4];

		memcpy(idb, &id, 4);
		data.mv_data = idb;
		data.mv_size = 4;
		rc = mdb_put(txn, store->dbi[DB_USERNAMES], &key, &data,
		    MDB_NOOVERWRITE);
	}
	if (rc == MDB_KEYEXIST) {
		store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: user exists");
		goto fail;
	}
	if (rc != 0)
		goto mdb_fail;
	if (uidvalidity_floor_get(store, txn, &floor, error_r) < 0)
		goto fail;
	memset(&rec, 0, sizeof(rec));
	rec.next_mailbox_id = 1;
	/* UIDVALIDITY starts at the clock, and above every value a deleted
	   user used, so a user deleted and created again does not reuse the
	   old values for the same names. */
	rec.next_uidvalidity = now > 1 ? (uint32_t)now : 1;
	if (floor >= rec.next_uidvalidity && floor < UINT32_MAX)
		rec.next_uidvalidity = floor + 1;
	rec.next_body_id = 1;
	rec.created = now;
	if (user_put(store, txn, id, &rec, name, password_hash, error_r) < 0)
		goto fail;
	/* INBOX and the special-use folders start subscribed (Dovecot's
	   auto = subscribe): clients that show subscribed folders only
	   (Thunderbird's default) see them */
	if (store_mb_create_txn(store, txn, id, "INBOX", STORE_ROLE_NONE, &mb,
	    error_r) < 0 ||
	    store_sub_put_txn(store, txn, id, "INBOX", error_r) < 0)
		goto fail;
	if ((flags & STORE_USER_DEFAULT_MAILBOXES) != 0) {
		for (size_t i = 0; i < N_ELEMENTS(default_mailboxes); i++) {
			if (store_mb_create_txn(store, txn, id,
			    default_mailboxes[i].name,
			    default_mailboxes[i].role, &mb, error_r) < 0 ||
			    store_sub_put_txn(store, txn, id,
			    default_mailboxes[i].name, error_r) < 0)
				goto fail;
		}
	}
	if (store_wcommit(store, txn, error_r) < 0)
		return -1;
	if (user_id_r != NULL)
		*user_id_r = id;
	return 0;
mdb_fail:
	store_fail_mdb(store, error_r, rc, "user create");
fail:
	store_wabort(store, txn);
	return -1;
}

/* The user's record with its name and hash, in the transaction. */
static int
user_raw_get(struct store *store, MDB_txn *txn, MDB_val *key,
    MDB_val *data_r, const char **error_r)
{
	int rc = mdb_get(txn, store->dbi[DB_USERS], key, data_r);

	if (rc == MDB_NOTFOUND)
		return store_fail(store, error_r, STORE_ERR_NOTFOUND,
		    "store: no such user");
	if (rc != 0)
		return store_fail_mdb(store, error_r, rc, "user");
	return 0;
}

int
store_user_delete(struct store *store, uint32_t user_id,
    const char **error_r)
{
	static const enum store_db user_dbs[] = {
		DB_USERS, DB_USERMETA, DB_MAILBOXES, DB_MBNAMES, DB_SUBS,
		DB_KEYWORDS, DB_MSGS, DB_VANISHED, DB_BODYINFO, DB_BODIES,
		DB_STRUCTS, DB_LEDGER, DB_FTS_SEGS, DB_FTS_SEGINFO,
		DB_DIGESTS, DB_SORTKEYS,
	};
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	struct store_key k;
	MDB_val key, data;
	int rc;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	user_key(&k, user_id);
	key = store_key_val(&k);
	if (user_raw_get(store, txn, &key, &data, error_r) < 0)
		goto fail;
	{
		struct store_userrec rec;
		MDB_val nkey;

		memcpy(&rec, data.mv_data, sizeof(rec));
		nkey.mv_data = xmemdup((const char *)data.mv_data +
		    sizeof(rec), rec.name_len);
		nkey.mv_size = rec.name_len;
		rc = mdb_del(txn, store->dbi[DB_USERNAMES], &nkey, NULL);
		free(nkey.mv_data);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto mdb_fail;
		if (rec.next_uidvalidity > 1 && uidvalidity_floor_raise(store,
		    txn, rec.next_uidvalidity - 1, error_r) < 0)
			goto fail;
	}
	/* Announce each mailbox going away, then drop every key of the
	   user. */
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_MAILBOXES], &cur)) != 0)
		goto mdb_fail;
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		struct store_mbrec mr;
		struct store_event *ev;
		char *name;

		memcpy(&mr, data.mv_data, sizeof(mr));
		name = xstrndup((const char *)data.mv_data + sizeof(mr),
		    mr.name_len);
		ev = store_event_add(store, STORE_CHANGE_MAILBOX_DELETE,
		    user_id, NULL, store_get_u32((unsigned char *)key.mv_data
		    + 4));
		store_event_set_names(ev, name, NULL);
		free(name);
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto mdb_fail;
	for (size_t i = 0; i < N_ELEMENTS(user_dbs); i++) {
		if (store_del_prefix(store, txn, user_dbs[i], &k, error_r) < 0)
			goto fail;
	}
	return store_wcommit(store, txn, error_r);
mdb_fail:
	store_fail_mdb(store, error_r, rc, "user delete");
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	store_wabort(store, txn);
	return -1;
}

int
store_user_rename(struct store *store, uint32_t user_id,
    const char *new_name, const char **error_r)
{
	MDB_txn *txn = NULL;
	struct store_key k;
	MDB_val key, data, nkey;
	struct store_userrec rec;
	char *name = NULL, *hash = NULL;
	unsigned char idb[4];
	int rc;

	if (!user_name_valid(new_name))
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid user name");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	user_key(&k, user_id);
	key = store_key_val(&k);
	if (user_raw_get(store, txn, &key, &data, error_r) < 0)
		goto fail;
	memcpy(&rec, data.mv_data, sizeof(rec));
	name = xstrndup((const char *)data.mv_data + sizeof(rec),
	    rec.name_len);
	hash = xstrndup((const char *)data.mv_data + sizeof(rec) +
	    rec.name_len + 1, rec.hash_len);
	memcpy(idb, &user_id, 4);
	nkey.mv_data = (void *)new_name;
	nkey.mv_size = strlen(new_name);
	data.mv_data = idb;
	data.mv_size = 4;
	rc = mdb_put(txn, store->dbi[DB_USERNAMES], &nkey, &data,
	    MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		store_fail(store, error_r, STORE_ERR_EXISTS,
		    "store: user exists");
		goto fail;
	}
	if (rc != 0)
		goto mdb_fail;
	nkey.mv_data = name;
	nkey.mv_size = strlen(name);
	if ((rc = mdb_del(txn, store->dbi[DB_USERNAMES], &nkey, NULL)) != 0 &&
	    rc != MDB_NOTFOUND)
		goto mdb_fail;
	if (user_put(store, txn, user_id, &rec, new_name, hash, error_r) < 0)
		goto fail;
	free(name);
	free(hash);
	return store_wcommit(store, txn, error_r);
mdb_fail:
	store_fail_mdb(store, error_r, rc, "user rename");
fail:
	free(name);
	free(hash);
	store_wabort(store, txn);
	return -1;
}

int
store_user_set_hash(struct store *store, uint32_t user_id,
    const char *password_hash, const char **error_r)
{
	MDB_txn *txn = NULL;
	struct store_key k;
	MDB_val key, data;
	struct store_userrec rec;
	char *name = NULL;
	int rc;

	if (strlen(password_hash) > STORE_USER_HASH_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: password hash too long");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	user_key(&k, user_id);
	key = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_USERS], &key, &data);
	if (rc != 0) {
		store_fail_mdb(store, error_r, rc, "user");
		goto fail;
	}
	memcpy(&rec, data.mv_data, sizeof(rec));
	name = xstrndup((const char *)data.mv_data + sizeof(rec),
	    rec.name_len);
	if (user_put(store, txn, user_id, &rec, name, password_hash,
	    error_r) < 0)
		goto fail;
	free(name);
	return store_wcommit(store, txn, error_r);
fail:
	free(name);
	store_wabort(store, txn);
	return -1;
}

int
store_user_lookup(struct store_read *r, const char *name,
    uint32_t *user_id_r, const char **error_r)
{
	MDB_val key = { strlen(name), (void *)name }, data;
	int rc;

	if (key.mv_size == 0 || key.mv_size > STORE_USER_NAME_MAX)
		return STORE_NOT_FOUND;
	rc = mdb_get(r->txn, r->store->dbi[DB_USERNAMES], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "user lookup");
	memcpy(user_id_r, data.mv_data, 4);
	return 0;
}

static int
user_info_from(struct store_read *r, const MDB_val *key, const MDB_val *data,
    struct store_user_info *info)
{
	struct store_userrec rec;
	const char *p = (const char *)data->mv_data + sizeof(rec);

	if (data->mv_size < sizeof(rec))
		return -1;
	memcpy(&rec, data->mv_data, sizeof(rec));
	/* name and hash are stored NUL-terminated, so pointers into the
	   map are C strings valid for the snapshot. */
	if (data->mv_size < sizeof(rec) + rec.name_len + rec.hash_len + 2 ||
	    p[rec.name_len] != '\0' || p[rec.name_len + 1 + rec.hash_len] != '\0')
		return -1;
	info->id = store_get_u32(key->mv_data);
	info->created = (time_t)rec.created;
	info->name = p;
	info->password_hash = p + rec.name_len + 1;
	return 0;
}

int
store_user_get(struct store_read *r, uint32_t user_id,
    struct store_user_info *info_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	user_key(&k, user_id);
	key = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[DB_USERS], &key, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "user");
	if (user_info_from(r, &key, &data, info_r) < 0)
		return store_fail(r->store, error_r, STORE_ERR_IO,
		    "store: corrupt user record");
	return 0;
}

int
store_user_foreach(struct store_read *r,
    int (*cb)(void *ctx, const struct store_user_info *info), void *ctx,
    const char **error_r)
{
	MDB_cursor *cur;
	MDB_val key, data;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(r->txn, r->store->dbi[DB_USERS], &cur)) != 0)
		return store_fail_mdb(r->store, error_r, rc, "cursor");
	rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST);
	while (rc == 0) {
		struct store_user_info info;

		if (key.mv_size == 4 &&
		    user_info_from(r, &key, &data, &info) == 0) {
			if ((ret = cb(ctx, &info)) != 0)
				break;
		}
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != MDB_NOTFOUND)
		return store_fail_mdb(r->store, error_r, rc, "user list");
	return 0;
}

/* ---- settings ---- */

static int
meta_key(struct store *store, struct store_key *k, uint32_t user_id,
    const char *key, const char **error_r)
{
	size_t len = strlen(key);

	if (len == 0 || len > STORE_META_KEY_MAX)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid settings key");
	user_key(k, user_id);
	store_key_bytes(k, key, len);
	return 0;
}

int
store_user_meta_put(struct store *store, uint32_t user_id, const char *key,
    const void *value, size_t value_size, const char **error_r)
{
	struct store_userrec rec;
	struct store_key k;
	MDB_txn *txn = NULL;
	MDB_val kv, data = { value_size, (void *)value };
	int rc;

	if (meta_key(store, &k, user_id, key, error_r) < 0)
		return -1;
	if (value_size > STORE_META_VALUE_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: settings value too large");
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &rec, error_r) < 0)
		goto fail;
	kv = store_key_val(&k);
	if ((rc = mdb_put(txn, store->dbi[DB_USERMETA], &kv, &data, 0)) != 0) {
		store_fail_mdb(store, error_r, rc, "settings write");
		goto fail;
	}
	return store_wcommit(store, txn, error_r);
fail:
	store_wabort(store, txn);
	return -1;
}

int
store_user_meta_update(struct store *store, uint32_t user_id,
    const char *key, store_meta_update_fn *fn, void *ctx,
    const char **error_r)
{
	struct store_userrec rec;
	struct store_key k;
	MDB_txn *txn = NULL;
	MDB_val kv, data;
	void *value = NULL;
	size_t size = 0;
	int rc;

	if (meta_key(store, &k, user_id, key, error_r) < 0)
		return -1;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	if (store_userrec_load(store, txn, user_id, &rec, error_r) < 0)
		goto fail;
	kv = store_key_val(&k);
	rc = mdb_get(txn, store->dbi[DB_USERMETA], &kv, &data);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_fail_mdb(store, error_r, rc, "settings");
		goto fail;
	}
	/* the old value as this transaction sees it: a read-modify-write
	   no other write can come between */
	if (fn(ctx, rc == 0 ? data.mv_data : NULL, rc == 0 ? data.mv_size : 0,
	    &value, &size) < 0) {
		store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: settings update refused");
		goto fail;
	}
	if (size > STORE_META_VALUE_MAX) {
		store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: settings value too large");
		goto fail;
	}
	data.mv_data = value;
	data.mv_size = size;
	if ((rc = mdb_put(txn, store->dbi[DB_USERMETA], &kv, &data, 0)) != 0) {
		store_fail_mdb(store, error_r, rc, "settings write");
		goto fail;
	}
	free(value);
	return store_wcommit(store, txn, error_r);
fail:
	free(value);
	store_wabort(store, txn);
	return -1;
}

int
store_user_meta_get(struct store_read *r, uint32_t user_id, const char *key,
    const void **value_r, size_t *value_size_r, const char **error_r)
{
	struct store_key k;
	MDB_val kv, data;
	int rc;

	if (meta_key(r->store, &k, user_id, key, error_r) < 0)
		return -1;
	kv = store_key_val(&k);
	rc = mdb_get(r->txn, r->store->dbi[DB_USERMETA], &kv, &data);
	if (rc == MDB_NOTFOUND)
		return STORE_NOT_FOUND;
	if (rc != 0)
		return store_fail_mdb(r->store, error_r, rc, "settings");
	*value_r = data.mv_data;
	*value_size_r = data.mv_size;
	return 0;
}

int
store_user_meta_del(struct store *store, uint32_t user_id, const char *key,
    const char **error_r)
{
	struct store_key k;

	if (meta_key(store, &k, user_id, key, error_r) < 0)
		return -1;
	return store_del_key(store, DB_USERMETA, &k, "settings delete",
	    error_r);
}

struct meta_walk {
	int (*cb)(void *ctx, const char *key, const void *value,
	    size_t value_size);
	void *ctx;
};

static int
meta_walk_each(void *ctx, const MDB_val *key, const MDB_val *data)
{
	struct meta_walk *w = ctx;
	char name[STORE_META_KEY_MAX + 1];

	store_key_tail(key, 4, name, STORE_META_KEY_MAX);
	return w->cb(w->ctx, name, data->mv_data, data->mv_size);
}

int
store_user_meta_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *key, const void *value,
	size_t value_size), void *ctx, const char **error_r)
{
	struct store_key k;
	struct meta_walk w = { .cb = cb, .ctx = ctx };

	user_key(&k, user_id);
	return store_prefix_foreach(r->store, r->txn, DB_USERMETA, &k,
	    meta_walk_each, &w, "settings list", error_r);
}
