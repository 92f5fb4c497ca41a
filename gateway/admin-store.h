/*
 * admin-store — the control socket's store changes (users, passwords,
 * upstream-account records), run on the store's writer thread and waited
 * for (store_write_sync): the admin's reply needs the outcome anyway, and
 * these writes are rare and small, so waiting costs the loop one group
 * commit. Without a writer (unit tests) they run directly.
 *
 * Each function is the store function of the same name (store.h): same
 * arguments, same returns, same store_last_error() on the calling thread.
 */
#ifndef POPGATE_GATEWAY_ADMIN_STORE_H
#define POPGATE_GATEWAY_ADMIN_STORE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct store;

int admin_store_user_create(struct store *store, const char *name,
    const char *password_hash, unsigned int flags, uint32_t *user_id_r,
    const char **error_r);
/* own false: the user gets the default quota again; else limit bytes
 * (0: none for this user). */
int admin_store_quota_set(struct store *store, uint32_t user_id, bool own,
    uint64_t limit, const char **error_r);
int admin_store_user_delete(struct store *store, uint32_t user_id,
    const char **error_r);
/*
 * The user setting that says pass-through created the user and the admin
 * has not set their password since (its value: "1"). Pass-through changes
 * the password of such users only (passthrough.h).
 */
#define ADMIN_STORE_PT_OWNED_KEY "passthrough/owned"

/* The admin sets a password: also clears ADMIN_STORE_PT_OWNED_KEY, in the
 * same transaction, so pass-through never undoes an admin's reset. */
int admin_store_user_set_hash(struct store *store, uint32_t user_id,
    const char *password_hash, const char **error_r);
/* Pass-through sets a password: only while the user has
 * ADMIN_STORE_PT_OWNED_KEY, checked in the same transaction as the
 * change. Without it nothing changes, *not_owned_r is true and -1 is
 * returned. */
int admin_store_user_set_hash_owned(struct store *store, uint32_t user_id,
    const char *password_hash, bool *not_owned_r, const char **error_r);
int admin_store_meta_put(struct store *store, uint32_t user_id,
    const char *key, const void *value, size_t value_size,
    const char **error_r);
int admin_store_meta_del(struct store *store, uint32_t user_id,
    const char *key, const char **error_r);
int admin_store_mailbox_create(struct store *store, uint32_t user_id,
    const char *name, const char **error_r);
int admin_store_mailbox_subscribe(struct store *store, uint32_t user_id,
    const char *name, const char **error_r);

#endif
