/*
 * store-keyword — each mailbox's keyword table (name -> small id, the bit
 * in a message's keyword set), loaded and extended inside a write.
 */
#include <string.h>
#include <strings.h>

#include "store-private.h"

int
store_kw_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, struct store_kwtable *kw, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	kw->count = 0;
	store_mb_key(&k, user_id, mailbox_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_KEYWORDS], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k) &&
	    kw->count < STORE_KEYWORDS_MAX) {
		size_t len = data.mv_size > 0 ? data.mv_size - 1 : 0;

		if (len > STORE_KEYWORD_LEN_MAX)
			len = STORE_KEYWORD_LEN_MAX;
		memcpy(kw->names[kw->count], data.mv_data, len);
		kw->names[kw->count++][len] = '\0';
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "keywords");
	return 0;
}

static bool
keyword_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > STORE_KEYWORD_LEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		/* An IMAP atom, and not a system flag (those are bits). */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

int
store_kw_intern(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct store_mb *mb, struct store_kwtable *kw, const char *name,
    unsigned int *id_r, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	for (unsigned int i = 0; i < kw->count; i++) {
		if (strcasecmp(kw->names[i], name) == 0) {
			*id_r = i;
			return 0;
		}
	}
	if (!keyword_valid(name))
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: invalid keyword");
	if (kw->count >= STORE_KEYWORDS_MAX)
		return store_fail(store, error_r, STORE_ERR_LIMIT,
		    "store: too many keywords in mailbox");
	store_mb_key(&k, user_id, mb->id);
	store_key_u8(&k, (uint8_t)kw->count);
	key = store_key_val(&k);
	data.mv_data = (void *)name;
	data.mv_size = strlen(name) + 1;
	if ((rc = mdb_put(txn, store->dbi[DB_KEYWORDS], &key, &data, 0)) != 0)
		return store_fail_mdb(store, error_r, rc, "keyword write");
	strcpy(kw->names[kw->count], name);
	*id_r = kw->count++;
	mb->rec.keyword_count = kw->count;
	return 0;
}
