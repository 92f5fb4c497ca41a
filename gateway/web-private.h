/*
 * web-private — what the parts of the web page's server share: the
 * server's state, the replies and request helpers (web.c), and the
 * account views and actions (web-accounts.c). Not for other modules:
 * web.h is the interface. Threads: the event loop's.
 */
#ifndef POPGATE_GATEWAY_WEB_PRIVATE_H
#define POPGATE_GATEWAY_WEB_PRIVATE_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct evhttp;
struct evhttp_request;
struct gateway;
struct store;
struct web_login;
struct web_sessions;
struct cmd_wait;

struct web {
	struct gateway *gw;
	struct evhttp *http;
	SSL_CTX *ctx;
	struct web_sessions *sessions;
	struct web_login *logins;	/* waiting for a password check */
	unsigned logins_pending;
	int port;
	/* open connections (counted from accept to the SSL's free, the
	   connection's last moment) against [web] max_connections */
	unsigned conns;
	bool paused;		/* listeners off: conns reached the cap */
	struct cmd_wait *waits;	/* commands answering later */
	bool freeing;		/* web_free: the listeners are gone */
};

/* What an action logs when its command answers (web event=WHAT ...). */
struct action_log {
	char what[32];
	char addr[64];
	char admin[LOG_QUOTE_MAX];	/* "": not an admin action */
	char user[LOG_QUOTE_MAX];
	char account[LOG_QUOTE_MAX];
};

typedef void cmd_done_fn(struct web *w, struct evhttp_request *req,
    json_t *resp, const char *msg, struct action_log *lg);

/* ---- web.c: replies and requests ---- */
/* A JSON reply (j taken over) / an error reply {"error": message}. */
void web_reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *j);
void web_reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *message);
const char *web_peer_addr(struct evhttp_request *req);
/* The request's JSON object body, or NULL (bad, too big, not JSON). */
json_t *web_read_body(struct evhttp_request *req);
/* A string member of at most max bytes without control characters. */
const char *web_body_str(json_t *body, const char *name, size_t max);
/* The signed-in session of the request's cookie, or NULL; the _change
 * form also checks a POST's origin and CSRF token (replying itself when
 * they fail, naming what in the log). */
struct web_session *web_session_of(struct web *w, struct evhttp_request *req);
struct web_session *web_session_for_change(struct web *w,
    struct evhttp_request *req, const char *what);

/* ---- web.c: the control commands, in process ---- */
void web_run_command_then(struct web *w, struct evhttp_request *hreq,
    const char *name, json_t *req, cmd_done_fn *done,
    const struct action_log *lg);
json_t *web_run_command(struct web *w, const char *name, json_t *req,
    const char **msg_r);
const char *web_command_error(json_t *resp);
int web_user_is_admin(struct store *store, const char *user, uint32_t *id_r,
    const char **error_r);
json_t *web_status_of(struct web *w, struct evhttp_request *req,
    const char *user);
bool web_reply_action(struct evhttp_request *req, json_t *resp,
    const char *msg);

/* ---- web-accounts.c: the accounts, actions and the admin view ---- */
void web_api_accounts(struct web *w, struct evhttp_request *req);
void web_account_action_then(struct web *w, struct evhttp_request *req,
    const char *what, const char *command, const char *secret_field,
    bool admin, cmd_done_fn *done);
void web_account_action(struct web *w, struct evhttp_request *req,
    const char *what, const char *command, const char *secret_field,
    bool admin);
bool web_account_self_service(struct web *w, struct evhttp_request *req,
    const char *what);
void web_api_account_add(struct web *w, struct evhttp_request *req);
void web_api_admin_accounts(struct web *w, struct evhttp_request *req);
void web_signin_done(struct web *w, struct evhttp_request *req,
    json_t *resp, const char *msg, struct action_log *lg);

#endif
