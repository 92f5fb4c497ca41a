/*
 * import — bulk creation of users and upstream accounts from CSV, for
 * migrating an organisation. One import runs at a time; it proceeds a few
 * lines per event-loop turn (a user's password hash takes milliseconds),
 * so IMAP sessions and polls go on meanwhile, and `status` shows its
 * progress. The requesting client gets one reply at the end with a report
 * per line.
 *
 * Columns (a first line starting with "user," is a header and skipped):
 *   user,user_password,host,port,tls,login,password,mode,folder,interval,
 *   account
 * Only user is required. A user that does not exist is created (with
 * user_password, which must then be given); an existing user is left as
 * is. When host is given, an upstream account is added with host, port,
 * tls, login and password (required) and the optional fields (empty:
 * the configured defaults). Every line is checked like the matching
 * control command; a bad line is reported and changes nothing.
 */
#ifndef POPGATE_GATEWAY_IMPORT_H
#define POPGATE_GATEWAY_IMPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "gateway/control.h"

struct gateway;

/* Lines handled per event-loop turn. */
#define IMPORT_LINES_PER_TURN 4
/* Lines in one import. */
#define IMPORT_LINES_MAX 100000

/* Starts an import; -1 with *err when one is running or the CSV is
 * unusable as a whole. On 0 the client is answered when it completes. */
int import_start(struct gateway *gw, struct control_client *client,
    const char *csv, bool dry_run, struct ctl_error *err);
/* Progress of the running or last import (null when none yet). */
json_t *import_status_json(struct gateway *gw);
/* Abandons a running import (shutdown); its client gets an error. */
void import_abort(struct gateway *gw);
void import_free(struct gateway *gw);

#endif
