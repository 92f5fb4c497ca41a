/*
 * imap-notify — the NOTIFY command (RFC 5465) on a session (internal).
 *
 * It rides on the one change feed (imap_server_on_store_change ->
 * imap_session_notify, in commit order after the writer's group commit):
 * events about other mailboxes become queued STATUS / LIST responses;
 * the selected mailbox keeps its view (imap-sync.c), which NOTIFY only
 * pushes out sooner. Responses go out at a rest point: between commands
 * or in IDLE, never in the middle of a command's output, and only while
 * the client reads what it is sent. A session whose queue outgrows
 * IMAP_NOTIFY_QUEUE_MAX gets NOTIFICATIONOVERFLOW and NOTIFY turns off.
 *
 * Thread: the loop only.
 */
#ifndef POPGATE_IMAP_NOTIFY_H
#define POPGATE_IMAP_NOTIFY_H

#include <stdbool.h>

#include "imap-commands.h"
#include "store/store.h"

struct imap_notify;
struct imap_session;

/* Responses one session may have queued (STATUS entries are merged per
 * mailbox; LIST ones are not): a client that stops reading while
 * mailboxes change costs at most this many before NOTIFY turns off. */
#define IMAP_NOTIFY_QUEUE_MAX 256

imap_cmd_fn imap_cmd_notify;

void imap_notify_free(struct imap_notify **np);

/* A change from the feed (self: made by this session): queues what the
 * filters ask for, and sends it when the session is at a rest point.
 * True when a LIST about a mailbox event was queued. */
bool imap_notify_event(struct imap_session *s, const struct store_change *ch,
    bool self);

/* At a rest point (between commands, IDLE; anywhere else it does
 * nothing): queued responses, then the selected mailbox's updates as
 * its SELECTED / SELECTED-DELAYED filter asks, with the FETCH of new
 * messages' attributes. Called by the session's input loop and when an
 * event arrives. */
void imap_notify_flush(struct imap_session *s);

/* The queued responses alone, before the session's BYE (its selected
 * mailbox was deleted: the LIST saying so goes first). */
void imap_notify_write_queue(struct imap_session *s);

/* The session leaves its selected mailbox: the next one starts from
 * what its SELECT reports (no FETCH of mail it already announced). */
void imap_notify_unselected(struct imap_session *s);

/* NOTIFY is on with a selected filter that leaves FlagChange out: the
 * view drops other sessions' flag changes. */
bool imap_notify_selected_drops_flags(const struct imap_session *s);

#endif
