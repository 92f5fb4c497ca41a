/* admin-store — see admin-store.h. Each call packs its arguments for the
 * writer thread (which may only see the job) and waits. */
#include "gateway/admin-store.h"

#include <stdbool.h>

#include "store/store.h"
#include "xmalloc.h"

struct admin_op {
	enum { OP_USER_CREATE, OP_USER_DELETE, OP_USER_SET_HASH,
	    OP_USER_SET_HASH_OWNED,
	    OP_META_PUT, OP_META_DEL, OP_MAILBOX_CREATE,
	    OP_MAILBOX_SUBSCRIBE, OP_QUOTA_SET } op;
	uint32_t user_id;
	const char *name;	/* user name, or settings key */
	const char *hash;
	unsigned int flags;
	const void *value;
	size_t value_size;
	uint32_t new_id;	/* out: user create */
	bool own;		/* quota set */
	bool not_owned;		/* out: set hash owned */
	uint64_t limit;
};

/* Keeps the owned mark as it is; refuses (changing nothing) without it. */
static int
owned_keep(void *ctx, const void *old, size_t old_size, void **new_r,
    size_t *new_size_r)
{
	struct admin_op *o = ctx;

	if (old == NULL) {
		o->not_owned = true;
		return -1;
	}
	*new_r = xmemdup(old, old_size);
	*new_size_r = old_size;
	return 0;
}

static int
admin_apply(struct store *store, void *ctx, const char **error_r)
{
	struct admin_op *o = ctx;

	switch (o->op) {
	case OP_USER_CREATE:
		return store_user_create(store, o->name, o->hash, o->flags,
		    &o->new_id, error_r);
	case OP_USER_DELETE:
		return store_user_delete(store, o->user_id, error_r);
	case OP_USER_SET_HASH:
		if (store_user_meta_del(store, o->user_id,
		    ADMIN_STORE_PT_OWNED_KEY, error_r) < 0)
			return -1;
		return store_user_set_hash(store, o->user_id, o->hash,
		    error_r);
	case OP_USER_SET_HASH_OWNED:
		/* the mark read in this job's transaction: an admin's
		   reset committed before it is seen */
		if (store_user_meta_update(store, o->user_id,
		    ADMIN_STORE_PT_OWNED_KEY, owned_keep, o, error_r) < 0)
			return -1;
		return store_user_set_hash(store, o->user_id, o->hash,
		    error_r);
	case OP_META_PUT:
		return store_user_meta_put(store, o->user_id, o->name,
		    o->value, o->value_size, error_r);
	case OP_META_DEL:
		return store_user_meta_del(store, o->user_id, o->name,
		    error_r);
	case OP_MAILBOX_CREATE:
		return store_mailbox_create(store, o->user_id, o->name,
		    STORE_ROLE_NONE, NULL, error_r);
	case OP_MAILBOX_SUBSCRIBE:
		return store_mailbox_subscribe(store, o->user_id, o->name,
		    true, error_r);
	case OP_QUOTA_SET:
		return store_user_quota_set(store, o->user_id, o->own,
		    o->limit, error_r);
	}
	return -1;
}

static int
run(struct store *store, struct admin_op *o, const char **error_r)
{
	/* key 0: the admin's own line in the writer's queue */
	return store_write_sync(store, 0, 0, o->value_size, admin_apply, o,
	    error_r);
}

int
admin_store_user_create(struct store *store, const char *name,
    const char *password_hash, unsigned int flags, uint32_t *user_id_r,
    const char **error_r)
{
	struct admin_op o = { .op = OP_USER_CREATE, .name = name,
	    .hash = password_hash, .flags = flags };
	int rc = run(store, &o, error_r);

	if (rc == 0 && user_id_r != NULL)
		*user_id_r = o.new_id;
	return rc;
}

int
admin_store_user_delete(struct store *store, uint32_t user_id,
    const char **error_r)
{
	struct admin_op o = { .op = OP_USER_DELETE, .user_id = user_id };

	return run(store, &o, error_r);
}

int
admin_store_user_set_hash(struct store *store, uint32_t user_id,
    const char *password_hash, const char **error_r)
{
	struct admin_op o = { .op = OP_USER_SET_HASH, .user_id = user_id,
	    .hash = password_hash };

	return run(store, &o, error_r);
}

int
admin_store_user_set_hash_owned(struct store *store, uint32_t user_id,
    const char *password_hash, bool *not_owned_r, const char **error_r)
{
	struct admin_op o = { .op = OP_USER_SET_HASH_OWNED,
	    .user_id = user_id, .hash = password_hash };
	int ret = run(store, &o, error_r);

	*not_owned_r = o.not_owned;
	return ret;
}

int
admin_store_meta_put(struct store *store, uint32_t user_id, const char *key,
    const void *value, size_t value_size, const char **error_r)
{
	struct admin_op o = { .op = OP_META_PUT, .user_id = user_id,
	    .name = key, .value = value, .value_size = value_size };

	return run(store, &o, error_r);
}

int
admin_store_meta_del(struct store *store, uint32_t user_id, const char *key,
    const char **error_r)
{
	struct admin_op o = { .op = OP_META_DEL, .user_id = user_id,
	    .name = key };

	return run(store, &o, error_r);
}

int
admin_store_mailbox_create(struct store *store, uint32_t user_id,
    const char *name, const char **error_r)
{
	struct admin_op o = { .op = OP_MAILBOX_CREATE, .user_id = user_id,
	    .name = name };

	return run(store, &o, error_r);
}

int
admin_store_mailbox_subscribe(struct store *store, uint32_t user_id,
    const char *name, const char **error_r)
{
	struct admin_op o = { .op = OP_MAILBOX_SUBSCRIBE, .user_id = user_id,
	    .name = name };

	return run(store, &o, error_r);
}

int
admin_store_quota_set(struct store *store, uint32_t user_id, bool own,
    uint64_t limit, const char **error_r)
{
	struct admin_op o = { .op = OP_QUOTA_SET, .user_id = user_id,
	    .own = own, .limit = limit };

	return run(store, &o, error_r);
}
