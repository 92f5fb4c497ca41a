/*
 * backup — `popgatectl backup FILE`: a consistent, compacted copy of the
 * store, taken while popgated runs (IMAP and polls go on).
 *
 * The copy (store_backup_fd) runs on a thread of its own, so the event
 * loop never waits for it; the control client is answered when it is
 * done. It is written to a temporary file next to FILE, created mode 0600
 * (the copy holds every user's mail and their sealed upstream passwords),
 * fsynced, and then linked to FILE, which must not exist yet: FILE is a
 * complete copy or absent, never half written, and nothing is
 * overwritten. The daemon writes it, as its own user: FILE's directory
 * must be writable by that user (and, under the shipped systemd unit,
 * be one of its ReadWritePaths).
 *
 * One backup at a time. A shutdown waits for a running copy to finish.
 */
#ifndef POPGATE_GATEWAY_BACKUP_H
#define POPGATE_GATEWAY_BACKUP_H

#include <jansson.h>
#include <stdbool.h>

#include "gateway/control.h"

struct gateway;

/* Starts a backup to path (absolute); -1 with *err at once (busy, FILE
   exists, its directory cannot be written). On 0 the client is answered
   when the copy is done. */
int backup_start(struct gateway *gw, struct control_client *client,
    const char *path, struct ctl_error *err);
/* Waits for a running copy, then frees (shutdown). */
void backup_free(struct gateway *gw);

#endif
