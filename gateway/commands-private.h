/*
 * commands-private — what the control socket's command files share:
 * replying with an error, finding a user (commands.c) and the account
 * commands (commands-account.c). Not for other modules: gateway.h and
 * control.h are the interfaces. Threads: the event loop's.
 */
#ifndef POPGATE_GATEWAY_COMMANDS_PRIVATE_H
#define POPGATE_GATEWAY_COMMANDS_PRIVATE_H

#include <jansson.h>
#include <stdint.h>

struct account;
struct control_client;
struct ctl_error;
struct gateway;
struct store_read;

/* ---- commands.c ---- */
/* Replies with the error (code, the field at fault or NULL, the message)
 * and counts it. */
void cmd_reply_error(struct gateway *gw, struct control_client *client,
    const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void cmd_store_error(struct gateway *gw,
    struct control_client *client, const char *what, const char *error);
/* Looks a user up; on failure replies and returns -1. */
int cmd_find_user(struct gateway *gw, struct control_client *client,
    struct store_read *r, const char *user, uint32_t *id_r);
/* The account's target folder exists and is subscribed; -1 with err. */
int cmd_account_folder_prepare(struct gateway *gw,
    const struct account *a, struct ctl_error *err);
/* The store's room, for status: what is used, the map, the disk. */
json_t *cmd_store_space_json(struct gateway *gw);

/* ---- commands-account.c: account.add/delete/set/enable/disable/list,
   status ---- */
void commands_account_add(struct gateway *gw, struct control_client *client,
    json_t *req);
void commands_account_delete(struct gateway *gw,
    struct control_client *client, json_t *req);
void commands_account_set(struct gateway *gw, struct control_client *client,
    json_t *req);
void commands_account_enable(struct gateway *gw,
    struct control_client *client, json_t *req);
void commands_account_disable(struct gateway *gw,
    struct control_client *client, json_t *req);
void commands_account_list(struct gateway *gw, struct control_client *client,
    json_t *req);
void commands_status(struct gateway *gw, struct control_client *client,
    json_t *req);

#endif
