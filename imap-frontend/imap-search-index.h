/*
 * imap-search-index — SEARCH narrowed by the store's full-text index
 * (store.h, "full-text index"): for each text key of a program (HEADER,
 * FROM ..., BODY, TEXT) whose folded string is at least the index's unit
 * long, the set of the user's bodies that may contain it; a message whose
 * body is indexed and in none of the sets the program needs is ruled out
 * without reading it, and the matcher asks the index first for each key
 * (imap_search_index_known): absent, or for a one-term needle present in
 * the body's text, it answers without reading the message. Every other
 * case goes to the matcher, so the answer is exactly a full scan's.
 *
 * Threads: made and used by one SEARCH job on a worker; owns its sets.
 */
#ifndef POPGATE_IMAP_SEARCH_INDEX_H
#define POPGATE_IMAP_SEARCH_INDEX_H

#include <stdbool.h>
#include <stdint.h>

struct imap_search_index;
struct imap_search_program;
struct store_read;

/* Mailboxes (views) with fewer messages are scanned: computing the sets
 * over the user's whole index costs more than reading a few messages. */
#define IMAP_SEARCH_INDEX_MIN_MESSAGES 16

/* The sets for prog from snapshot r of store; NULL when the index cannot
 * narrow (switched off, no text key it can use, or it could not be read:
 * then scan). */
struct store;
struct imap_search_index *imap_search_index_new(struct store *store,
    struct store_read *r, uint32_t user_id,
    const struct imap_search_program *prog);
/* false: the message with body body_id certainly does not match prog. */
bool imap_search_index_may_match(struct imap_search_index *ix,
    const struct imap_search_program *prog, uint64_t body_id);
/*
 * What the index alone says of the text key whose string is str (the
 * key's own pointer, as imap_search_match passes it to the callbacks)
 * for the message with body body_id: 0 the body certainly does not
 * contain it (any key the index has); 1 it certainly does (BODY or TEXT
 * whose folded string is exactly one term, MAIL_FTS_UNIT bytes, found in
 * the body's body-class posting); -1 unknown: ask the matcher (not
 * indexed, saturated, a longer string found, a key the index lacks, ix
 * NULL). Equal to the matcher's answer whenever it is not -1.
 */
int imap_search_index_known(struct imap_search_index *ix, const char *str,
    uint64_t body_id);
/*
 * For the TEXT key whose string is str: true when the index says no
 * header block of the message with body body_id holds it (indexed, and
 * outside the key's header-class candidates), so TEXT is then answered
 * as BODY, without decoding the header fields. false: unknown.
 */
bool imap_search_index_headers_lack(struct imap_search_index *ix,
    const char *str, uint64_t body_id);
void imap_search_index_free(struct imap_search_index **ixp);

#endif
