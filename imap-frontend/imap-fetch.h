/*
 * imap-fetch — FETCH (streaming), message structure at APPEND, and the
 * per-message accessors SEARCH needs (internal).
 */
#ifndef POPGATE_IMAP_FETCH_H
#define POPGATE_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct arena;
struct imap_session;
struct mail_message;

/* Body bytes of one FETCH item sent inline with the response line; larger
 * items stream in IMAP_FETCH_CHUNK pieces as the client drains output. */
#define IMAP_FETCH_INLINE_MAX (32 * 1024)
#define IMAP_FETCH_CHUNK (64 * 1024)

/* The structure blob of a message (mail-parse + mail-serialize), in a. */
void imap_message_structure(struct arena *a, const void *data, size_t len,
    const void **blob_r, size_t *size_r);

/*
 * One message as SEARCH looks at it: the store record, and on demand its
 * structure and body from snapshot r. imap_msgview_set() switches to the
 * next message; imap_msgview_clear() releases the structure.
 */
struct imap_msgview {
	struct imap_session *s;
	struct store_read *r;
	const struct store_msg *m;
	struct mail_message *mm;
	bool mm_tried;
	const char *body;
	size_t body_size;
	bool body_tried;
};

void imap_msgview_set(struct imap_msgview *v, const struct store_msg *m);
void imap_msgview_clear(struct imap_msgview *v);
/* 1 / 0 / -1 as imap_search_message's callbacks. */
int imap_msgview_header_contains(struct imap_msgview *v, const char *name,
    const char *str, size_t len);
/* FROM / TO / CC / BCC: the fields' addresses as parsed (mail-search.h
 * mail_search_address_values) contain str, case-insensitively. */
int imap_msgview_address_contains(struct imap_msgview *v, const char *name,
    const char *str, size_t len);
int imap_msgview_body_contains(struct imap_msgview *v, bool text,
    const char *str, size_t len);
int imap_msgview_sent_date(struct imap_msgview *v, int64_t *t_r, int *tz_r);

#endif
