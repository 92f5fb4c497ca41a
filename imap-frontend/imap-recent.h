/*
 * imap-recent — who may still see a message as \Recent (RFC 3501 2.3.2),
 * one table per IMAP server process (internal to imap-frontend).
 *
 * For each (user, mailbox) the table keeps the "first recent UID": the
 * messages with a UID >= it have not been claimed by any read-write
 * session yet, so the next session to learn of them (SELECT, or EXISTS
 * while selected) sees them \Recent and, if read-write, claims them by
 * moving the boundary past them. A mailbox with no entry has had no new
 * message since the table was created (process start): its boundary is
 * its UIDNEXT. Entries appear on the first delivery or read-write
 * SELECT and go when the mailbox is deleted, so the table holds at most
 * one 16-byte entry per existing mailbox.
 *
 * Nothing of it is stored: after a restart no message delivered before
 * the restart is \Recent (docs/sync.md).
 *
 * Ownership: the table is owned by the server (imap_recent_new/free);
 * no pointer into it is handed out.
 */
#ifndef POPGATE_IMAP_RECENT_H
#define POPGATE_IMAP_RECENT_H

#include <stdint.h>

struct imap_recent;

struct imap_recent *imap_recent_new(void);
void imap_recent_free(struct imap_recent **tablep);

/* New messages arrived (first_uid: the lowest of them): opens the
 * boundary there unless one exists already. */
void imap_recent_note_new(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t first_uid);
/* The first recent UID; uidnext when the mailbox has no entry. */
uint32_t imap_recent_first(const struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uidnext);
/* A read-write session claimed every UID below next_uid. The boundary
 * only ever moves up. */
void imap_recent_claim(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id, uint32_t next_uid);
/* The mailbox was deleted. */
void imap_recent_forget(struct imap_recent *t, uint32_t user_id,
    uint32_t mailbox_id);
/* Entries in the table (for tests and the stats). */
uint32_t imap_recent_count(const struct imap_recent *t);

#endif
