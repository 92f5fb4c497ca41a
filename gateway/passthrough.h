/*
 * passthrough — the gateway's IMAP authentication hook, with pass-through
 * login for migrations.
 *
 * A LOGIN is first checked against the store (argon2id). When that fails
 * and [passthrough] is enabled for the login's mail domain (or for every
 * login when no domains are listed), the same name and password are tried
 * on the legacy POP3 server (USER/PASS after POP3S or STLS, certificate and
 * host name verified): a login-only session of the POP3 upstream client
 * (pop3-client.h), so the connection, TLS and its verification are the
 * poller's ([upstream-defaults] ca_file, ca_only). On success (QUIT after
 * the login) the user is created (or their password hash
 * updated) and an upstream account "passthrough" pointing at that server
 * is created or given the new password, and the login succeeds. The check
 * runs asynchronously on the event loop; the IMAP session waits.
 *
 * Pass-through owns only what it made: a user it creates gets the setting
 * ADMIN_STORE_PT_OWNED_KEY (admin-store.h), which the admin's password
 * change (user.passwd) clears in the same transaction. The password of a
 * user without it (made by the admin or the import, or reset by the admin
 * since) is never changed: a login that fails the local check is refused
 * without asking the legacy server. The update itself checks the mark in
 * the writer's transaction, so an admin's reset that commits first wins.
 * User names arrive canonical (username.h, done by the IMAP session).
 *
 * Abuse bounds: per user name at most attempts_per_minute checks (then
 * the login is answered "try later"); a failed name/password pair is
 * remembered for failure_cache seconds (keyed by a hash, never the
 * password) and refused without contacting the server; at most
 * PASSTHROUGH_CHECKS_MAX checks run at once. Both tables hold
 * PASSTHROUGH_TABLE_MAX entries (passthrough-table.h); a live rate count
 * is never evicted: when the table is full of them, a new name is
 * answered "try later" (fail closed).
 */
#ifndef POPGATE_GATEWAY_PASSTHROUGH_H
#define POPGATE_GATEWAY_PASSTHROUGH_H

#include "imap-frontend/imap-server.h"

struct gateway;

/* Checks against the legacy server running at once. */
#define PASSTHROUGH_CHECKS_MAX 32
/* Remembered user names (rate limit) and failed pairs. */
#define PASSTHROUGH_TABLE_MAX 1024
/* Name of the upstream account pass-through creates. */
#define PASSTHROUGH_ACCOUNT "passthrough"

/* ctx is the struct gateway. */
imap_auth_fn passthrough_auth;

/* Abandons checks in progress (their logins get "try later"). */
void passthrough_shutdown(struct gateway *gw);
void passthrough_free(struct gateway *gw);

#endif
