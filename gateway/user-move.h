/*
 * user-move — moving a user between nodes: `popgatectl user export USER
 * FILE` on the old node and `popgatectl user import FILE` on the new one
 * (docs/scale-out.md, "Moving a user"; the file: gateway/move-format.h).
 *
 * Export (control command user.export): the user is marked moved first
 * (STORE_META_MOVED, one writer job: from then on the store refuses POP3
 * deliveries for them and logins get "moved"), their IMAP sessions are
 * closed and their accounts taken from the poller; a second writer job of
 * the user's key lets every write already queued for them commit. Only
 * then does a thread of its own take one read snapshot and write the file
 * (mode 0600, linked into place when complete, like a backup). Secrets
 * are opened with the node's key and sealed again with a key derived from
 * the transfer passphrase; the file ends with an HMAC under that
 * passphrase. `user unmove` takes the mark away again (an export the
 * admin will not import).
 *
 * Import (user.import): a thread reads the whole file once and checks
 * every record and the HMAC, without writing; then ONE writer job reads
 * it again, writes the user through store_import_*, and checks the HMAC
 * again at the end (the file may have changed in between): on any error
 * the job is rolled back and nothing of the user exists. After its
 * commit the accounts go to the poller and the user's mail to the search
 * index (a reindex run).
 *
 * Threads: the state below belongs to the loop, except while a thread
 * runs: the thread reads the request's copies and writes the result; the
 * loop touches neither until the thread says it is done (a pipe, as
 * backup.c). The import's writer job owns the state while it runs.
 */
#ifndef POPGATE_GATEWAY_USER_MOVE_H
#define POPGATE_GATEWAY_USER_MOVE_H

#include <jansson.h>

struct gateway;
struct control_client;
struct ctl_error;

/* The control commands user.export / user.import: start for the
 * request; the reply comes when it is done (or at once, with an error
 * and nothing changed, when it cannot start). */
void user_move_export(struct gateway *gw, struct control_client *client,
    json_t *req);
void user_move_import(struct gateway *gw, struct control_client *client,
    json_t *req);
/* Takes a user's "moved" mark away and gives their accounts back to the
 * poller. Replies itself. */
void user_move_unmove(struct gateway *gw, struct control_client *client,
    json_t *req);
/* Waits for a running thread; frees the state. */
void user_move_free(struct gateway *gw);

#endif
