/*
 * listeners — the gateway's side of the IMAP server: TLS context from the
 * configured certificate and key, the server on the gateway's loop with
 * the gateway's authentication hook, the store's change feed, sessions
 * for the control socket, graceful shutdown and reload.
 *
 * Order at start-up: listeners_bind() (as root, before privileges are
 * dropped: it creates the server and binds its ports; the store is
 * already open), then listeners_start() once the daemon runs as its user.
 */
#ifndef POPGATE_GATEWAY_LISTENERS_H
#define POPGATE_GATEWAY_LISTENERS_H

#include <jansson.h>
#include <stddef.h>

struct config;
struct gateway;

/* Loads cert and key into a throw-away context (popgated -t). */
int listeners_check_tls(const struct config *c, char *errbuf,
    size_t errsize);
int listeners_bind(struct gateway *gw, char *errbuf, size_t errsize);
/* Creates DATA_DIR/spool (the APPEND spool, imap-spool.h) and removes
 * what a crash left there; run as the daemon user, before listening. */
int listeners_prepare_spool(struct gateway *gw, char *errbuf,
    size_t errsize);
int listeners_start(struct gateway *gw, char *errbuf, size_t errsize);
/* New certificate and key for new connections; sessions stay. Listener
 * addresses change only on restart (a warning says so). */
int listeners_reload(struct gateway *gw, const struct config *nc,
    char *errbuf, size_t errsize);
/* BYE to every session, stop listening. */
void listeners_shutdown(struct gateway *gw);
void listeners_stats_add(struct gateway *gw, json_t *stats);
void listeners_free(struct gateway *gw);

/*
 * Binds an evhttp server to each configured address of [section]
 * (metrics, web) and logs "COMPONENT event=listening" for each; *port_r
 * is the port of the last one bound (":0" in tests). 0, or -1 with
 * errbuf.
 */
struct evhttp;
struct config_listen;
int listeners_http_bind(struct evhttp *http, const struct config_listen *l,
    size_t count, const char *section, const char *component,
    const char *extra, int *port_r, char *errbuf, size_t errsize);

#endif
