/* store-quota — per-user storage quotas (store.h, "quotas"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

/* The user setting: "none" or a number of bytes. */
#define QUOTA_META_KEY "quota"

void
store_set_default_quota(struct store *store, uint64_t bytes)
{
	store->default_quota = bytes;
}

uint64_t
store_default_quota(const struct store *store)
{
	return store->default_quota;
}

int
store_user_quota_get(struct store_read *r, uint32_t user_id,
    uint64_t *limit_r, bool *own_r, const char **error_r)
{
	const void *v;
	size_t n;
	char buf[32];
	int rc;

	*limit_r = r->store->default_quota;
	*own_r = false;
	rc = store_user_meta_get(r, user_id, QUOTA_META_KEY, &v, &n, error_r);
	if (rc < 0)
		return -1;
	if (rc == STORE_NOT_FOUND || n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, v, n);
	buf[n] = '\0';
	*own_r = true;
	*limit_r = strcmp(buf, "none") == 0 ? 0 :
	    strtoull(buf, NULL, 10);
	return 0;
}

int
store_user_quota_set(struct store *store, uint32_t user_id, bool own,
    uint64_t limit, const char **error_r)
{
	char buf[32];
	int rc;

	if (!own) {
		rc = store_user_meta_del(store, user_id, QUOTA_META_KEY,
		    error_r);
		return rc == STORE_NOT_FOUND ? 0 : rc;
	}
	if (limit == 0)
		snprintf(buf, sizeof(buf), "none");
	else
		snprintf(buf, sizeof(buf), "%" PRIu64, limit);
	return store_user_meta_put(store, user_id, QUOTA_META_KEY, buf,
	    strlen(buf), error_r);
}

static int
add_size(void *ctx, const struct store_mailbox_info *info)
{
	*(uint64_t *)ctx += info->size;
	return 0;
}

int
store_user_usage(struct store_read *r, uint32_t user_id, uint64_t *bytes_r,
    const char **error_r)
{
	*bytes_r = 0;
	return store_mailbox_foreach(r, user_id, add_size, bytes_r, error_r) <
	    0 ? -1 : 0;
}

int
store_quota_check(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t adding, const char **error_r)
{
	/* the read functions, on the write transaction itself: they see
	   what this transaction did so far */
	struct store_read r = { store, txn };
	uint64_t limit, used;
	bool own;

	if (adding == 0)
		return 0;
	if (store_user_quota_get(&r, user_id, &limit, &own, error_r) < 0)
		return -1;
	if (limit == 0)
		return 0;
	if (store_user_usage(&r, user_id, &used, error_r) < 0)
		return -1;
	if (used + adding > limit)
		return store_fail(store, error_r, STORE_ERR_QUOTA,
		    "Quota exceeded (%" PRIu64 " of %" PRIu64 " bytes used, "
		    "%" PRIu64 " more wanted)", used, limit, adding);
	return 0;
}
