/*
 * imap-sync — helpers over a session's selected-mailbox view (internal).
 * The view itself (struct imap_selected) is declared in imap-session.h.
 */
#ifndef POPGATE_IMAP_SYNC_H
#define POPGATE_IMAP_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct imap_selected;
struct imap_session;
struct strbuf;

/* Adds a UID (ascending order) to the view. */
void imap_selected_append_uid(struct imap_selected *sel, uint32_t uid);
/* Removes the sorted UIDs from the view, writing EXPUNGE responses. */
void imap_selected_expunge_uids(struct imap_session *s, const uint32_t *uids,
    size_t n);
/* "(\Seen kw)" from store flags and the mailbox keyword table. */
void imap_format_msg_flags(struct strbuf *sb, const struct store_flags *flags,
    const char *const *kw, size_t kw_count);
/* The same as this session sees the message: with \Recent when uid is
 * recent in the view (RFC 3501 2.3.2). Every FLAGS a session is sent
 * goes through this. */
void imap_selected_format_flags(struct strbuf *sb,
    const struct imap_selected *sel, uint32_t uid,
    const struct store_flags *flags, const char *const *kw, size_t kw_count);
/* "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" for a mailbox with
 * the keywords kw[0..kw_count) (PERMANENTFLAGS () when readonly). */
void imap_format_mailbox_flags(struct strbuf *sb, const char *const *kw,
    size_t kw_count, bool readonly);
/* True when uid is \Recent in this session. */
bool imap_selected_is_recent(const struct imap_selected *sel, uint32_t uid);
/*
 * Marks the \Recent messages of sel, a view being opened by s: every
 * message of the view with a UID >= the mailbox's first recent UID
 * (uidnext: the mailbox's, from the snapshot the view was filled from).
 * Claiming them (read-write views only: imap_recent_claim with uidnext)
 * is left to the caller, once the SELECT succeeded.
 */
void imap_selected_find_recent(struct imap_session *s,
    struct imap_selected *sel, uint32_t uidnext);
/*
 * Switches CONDSTORE on for the session (RFC 7162 3.1: ENABLE or any
 * CONDSTORE-using command). The first time, while a mailbox is selected,
 * it writes "* OK [HIGHESTMODSEQ n]" so the client learns the value.
 */
void imap_session_enable_condstore(struct imap_session *s);
/*
 * Appends "* VANISHED (EARLIER) set\r\n" (RFC 7162 3.2.10) for the UIDs
 * of vanished[0..n) that are also in filter (NULL: all of them); nothing
 * when that is empty.
 */
struct imap_seqset;
void imap_format_vanished_earlier(struct strbuf *sb,
    const struct store_uid_range *vanished, size_t n,
    const struct imap_seqset *filter);

#endif
