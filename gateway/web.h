/*
 * web — the page where people see their old POP3 accounts: an HTTPS
 * server inside popgated (libevent's evhttp, each connection a
 * bufferevent over OpenSSL with the IMAP certificate), serving the
 * static page embedded in the binary (gateway/www/, web-assets.c) and a
 * small JSON API behind it ([web] enabled, listen; off by default).
 * docs/web.md describes the page, the API and its security.
 *
 *   POST /api/login     {"user","password"}  -> {"user","csrf"} + cookie
 *   GET  /api/session                        -> {"user","csrf"} | 401
 *   POST /api/logout                         (CSRF)
 *   GET  /api/accounts                       -> {"accounts":[...]}
 *   POST /api/check     {"account"}          (CSRF) poll it now
 *   POST /api/password  {"account","password"} (CSRF) the old account's
 *   GET  /api/admin/accounts                 (admins) every account
 *   POST /api/admin/check {"user","account"} (admins, CSRF) poll it now
 *   POST /api/admin/enable|disable {"user","account"} (admins, CSRF)
 *   POST /api/account/add|delete             (CSRF, [web] self_service)
 *   POST /api/account/signin {"account"}     (CSRF) OAuth device sign-in
 *   POST /api/admin/signin {"user","account"} (admins, CSRF) the same
 *
 * A person signs in with their IMAP user name and password: checked on a
 * worker (imap_server_check_password) after the delay of the IMAP
 * server's failed-login table, which the failure then feeds, exactly as
 * an IMAP LOGIN. What the API shows and does goes through the control
 * socket's commands (commands_handle with an in-process client), always
 * for the signed-in user only: the same checks as popgatectl. Users with
 * the setting WEB_ADMIN_META_KEY (popgatectl user admin NAME yes) also
 * see every account and can poll any; the flag is read again at each
 * admin request, so taking it away takes effect at once.
 *
 * Start-up: web_listen() while still root, beside the IMAP ports (needs
 * the IMAP server for the password checks); web_free() at exit, after
 * the worker pool has stopped. Threads: the event loop's.
 */
#ifndef POPGATE_GATEWAY_WEB_H
#define POPGATE_GATEWAY_WEB_H

#include <jansson.h>
#include <stddef.h>

struct gateway;
struct config;

/* Request headers a browser may send, in bytes. */
#define WEB_HEADERS_MAX 8192
/* A request body (the API's JSON; the largest is a password change). */
#define WEB_BODY_MAX 4096
/* Seconds an HTTP connection may stay silent. */
#define WEB_TIMEOUT_SECS 60
/* Sign-ins waiting for their password check at once; more get 503. */
#define WEB_LOGINS_PENDING_MAX 64
/* Longest password accepted (as IMAP's LOGIN literal would be). */
#define WEB_PASSWORD_MAX 1024
/* The last checks shown per account. */
#define WEB_RECENT_CHECKS 5
/* The session cookie: __Host- pins it to this origin, Secure, Path=/. */
#define WEB_COOKIE_NAME "__Host-popgate"

/* Accounts the admin view lists at most (then "truncated"). */
#define WEB_ADMIN_LIST_MAX 5000
/* The user setting that makes a user an admin of the page. */
#define WEB_ADMIN_META_KEY "web-admin"

/* Binds [web] listen when [web] enabled; 0, or -1 with errbuf. */
int web_listen(struct gateway *gw, char *errbuf, size_t errsize);
/* New certificate and session limits (reload); -1 with errbuf keeps the
 * old ones. */
int web_reload(struct gateway *gw, const struct config *nc, char *errbuf,
    size_t errsize);
/* The port bound (0: none), for the start-up log and tests. */
int web_port(const struct gateway *gw);
void web_free(struct gateway *gw);

/* The control command user.admin (commands.c's table): shows, or with
 * "admin" ("yes"/"no") sets, whether a user is an admin of the page. */
struct control_client;
void web_cmd_user_admin(struct gateway *gw, struct control_client *client,
    json_t *req);

#endif
