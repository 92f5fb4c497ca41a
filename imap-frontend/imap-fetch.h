/*
 * imap-fetch — FETCH (streaming, imap-fetch.c), message structure at
 * APPEND and the per-message accessors SEARCH needs (imap-msgview.c);
 * internal to imap-frontend.
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

/* The structure blob of a message (mail-parse + mail-serialize) into
 * blob (emptied first; left empty if over STORE_STRUCTURE_SIZE_MAX),
 * its SORT/THREAD keys into sortkey (mail-sortkey.h), and its full-text
 * index terms into terms unless NULL (mail-fts.h).
 * Pure: safe on a worker thread. */
struct strbuf;
struct mail_fts_terms;
void imap_message_structure_blob(const void *data, size_t len,
    struct strbuf *blob, struct strbuf *sortkey,
    struct mail_fts_terms *terms);
/* The structure of message uid: the stored blob, else a fresh parse of
 * body (read from r when NULL); NULL when neither can be had. */
struct store_read;
struct mail_message *imap_structure_load(uint32_t user_id,
    uint32_t mailbox_id, struct store_read *r, uint32_t uid,
    const void *body, size_t body_size);

/*
 * One message as SEARCH looks at it: the store record, and on demand its
 * structure and body from snapshot r. imap_msgview_set() switches to the
 * next message; imap_msgview_clear() releases the structure.
 */
/* One message as SEARCH reads it, on the loop or on a worker: only ids
 * and the snapshot r of the thread that uses it. */
struct imap_msgview {
	uint32_t user_id;
	uint32_t mailbox_id;
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
/*
 * OBJECTID's THREADID (RFC 8474 5.2) of the message, as a number (shown
 * as "T" and 16 hex digits): the first 63 bits of the SHA-256 of its
 * thread's root msg-id, the oldest of its References (else the first of
 * In-Reply-To, else its own Message-ID); a message without any of them
 * is a thread of its own, its EMAILID with the top bit set. Read from
 * the message's sort key record (store/mail-sortkey.h), or built as
 * SORT does for a message stored without one. 0, or -1 on error.
 */
int imap_msgview_thread_id(struct imap_msgview *v, uint64_t *tid_r);
/* The top bit of a thread id: a thread of one message without ids. */
#define IMAP_THREADID_OWN (UINT64_C(1) << 63)
/* The message's parsed structure (from its blob), or NULL on error;
 * valid until imap_msgview_clear(). */
const struct mail_message *imap_msgview_message(struct imap_msgview *v);
/* The unfolded value of the first top-level header field name into out
 * (emptied first): 1, 0 when there is none, -1 on error. */
int imap_msgview_header_value(struct imap_msgview *v, const char *name,
    struct strbuf *out);

/*
 * NOTIFY's MessageNew (RFC 5465 5.2): untagged FETCH responses with the
 * items atts[0..natts) (and UID) for the view's messages uids[0..n), as
 * .PEEK (no \Seen set). From a rest point of the session (between
 * commands, IDLE); big items stream as the client drains, the session
 * reading no command meanwhile, then it goes back to where it was. The
 * items' own pointers (section field names) must stay valid until then.
 */
struct imap_fetch_att;
void imap_fetch_notify(struct imap_session *s, const uint32_t *uids, size_t n,
    const struct imap_fetch_att *atts, size_t natts);

#endif
