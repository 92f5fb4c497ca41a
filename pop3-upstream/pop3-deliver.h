/*
 * pop3-deliver — the POP3 client's side of the store: the target mailbox,
 * ledger look-ups, batched delivery (message bytes, parsed structure,
 * INTERNALDATE and the UIDL in ONE transaction) and marking UIDLs deleted
 * upstream. Kept apart from the protocol code so the client's state
 * machine reads as protocol, and so the store API is used in one place.
 *
 * Ledger keys: the account id plus the UIDL bytes (or the client's
 * fallback key), binary-safe; never used as a path.
 */
#ifndef POPGATE_POP3_DELIVER_H
#define POPGATE_POP3_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pop3-upstream/upstream.h"

struct store;
struct store_read;

struct pop3_deliver_msg {
	const char *data;	/* as the server sent it, unstuffed */
	size_t size;
	const char *uidl;
	size_t uidl_size;
};

struct pop3_ledger_info {
	int64_t seen;		/* first seen (time()) */
	bool delivered;		/* stored in a mailbox (not just recorded) */
	bool still_present;	/* the delivered message still exists (mirror
				   mode: false means the user expunged it) */
	bool deleted_upstream;
	uint32_t mailbox_id;	/* where it was delivered (0: nowhere) */
	uint32_t uid;
};

/* Finds (creating if missing) the account's target mailbox. */
int pop3_deliver_mailbox(struct store *store,
    const struct upstream_account *acct, uint32_t *mailbox_id_r,
    const char **error_r);

/* 0 found, 1 (STORE_NOT_FOUND) new, -1 store error. */
int pop3_deliver_ledger_lookup(struct store_read *r,
    const struct upstream_account *acct, const char *uidl, size_t uidl_size,
    struct pop3_ledger_info *info_r, const char **error_r);

/* Delivers count messages (1..STORE_DELIVER_BATCH_MAX) with their ledger
 * entries in one durable transaction. -1: nothing stored. */
int pop3_deliver_batch(struct store *store,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, size_t count, const char **error_r);

/* 1 when the stored message (mailbox_id, uid) of the account's user has
 * exactly these bytes, 0 when it differs or is gone, -1 on a store error. */
int pop3_deliver_same_body(struct store *store,
    const struct upstream_account *acct, uint32_t mailbox_id, uint32_t uid,
    const char *data, size_t size, const char **error_r);

/* Removes a ledger entry (a UIDL the server reused); absent is fine. */
int pop3_deliver_forget(struct store *store,
    const struct upstream_account *acct, const char *uidl, size_t uidl_size,
    const char **error_r);

/* After QUIT +OK: the ledger remembers these as deleted upstream. */
int pop3_deliver_mark_deleted(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, const char **error_r);

#endif
