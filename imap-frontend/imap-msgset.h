/*
 * imap-msgset — a command's message set resolved against the session's
 * view of the selected mailbox (internal).
 *
 * Sequence numbers (uid = false) must be 1..EXISTS ('*' is EXISTS); any
 * number above is an error. UID sets ('*' is the highest UID of the view)
 * silently skip UIDs the view does not have, as RFC 3501 says.
 * The result is a list of view indexes (seq - 1), ascending, in the
 * server's scratch arena (valid until the command ends) or in the arena
 * given to imap_msgset_parse_in.
 */
#ifndef POPGATE_IMAP_MSGSET_H
#define POPGATE_IMAP_MSGSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct arena;
struct imap_arg;
struct imap_session;

/* Messages one command may address: a whole mailbox. */
struct imap_msgset {
	uint32_t *idx;
	size_t count;
};

int imap_msgset_parse(struct imap_session *s, const struct imap_arg *arg,
    bool uid, struct imap_msgset *set_r, const char **error_r);
int imap_msgset_parse_in(struct imap_session *s, struct arena *a,
    const struct imap_arg *arg, bool uid, struct imap_msgset *set_r,
    const char **error_r);
/* The UID ranges (for the store) of the set's messages, in the scratch
 * arena; consecutive UIDs are merged. */
void imap_msgset_ranges(struct imap_session *s, const struct imap_msgset *set,
    struct store_uid_range **ranges_r, size_t *count_r);

#endif
