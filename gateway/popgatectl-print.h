/*
 * popgatectl-print — how popgatectl shows the daemon's answers: one
 * printer per kind of answer (a table, a summary, the import report),
 * named in popgatectl's command table. With --json the answer is printed
 * as it came and none of these run. Part of popgatectl only.
 */
#ifndef POPGATE_GATEWAY_POPGATECTL_PRINT_H
#define POPGATE_GATEWAY_POPGATECTL_PRINT_H

#include <jansson.h>

/* A string member of o, or def when it is missing or not a string. */
const char *str_or(json_t *o, const char *key, const char *def);

void cprint_ok(json_t *reply);
void cprint_users(json_t *reply);
void cprint_accounts(json_t *reply);
void cprint_status(json_t *reply);
void cprint_quota(json_t *reply);
void cprint_admin(json_t *reply);
void cprint_sessions(json_t *reply);
void cprint_stats(json_t *reply);
void cprint_poll(json_t *reply);
void cprint_reindex(json_t *reply);
void cprint_import(json_t *reply);
void cprint_history(json_t *reply);
void cprint_backup(json_t *reply);
void cprint_move(json_t *reply);
void cprint_trace(json_t *reply);
void cprint_oauth_start(json_t *reply);

#endif
