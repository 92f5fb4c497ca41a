/*
 * nginx-config — the nginx configuration for a cluster of popgate nodes
 * behind nginx's mail proxy (popgatectl nginx-config; docs/scale-out.md).
 *
 * From a node's configuration ([cluster] auth_http_listen and peers) it
 * writes an http { } block that relays nginx's auth_http questions to
 * every node's auth_http service (an upstream group: a node that is down
 * is skipped) and a mail { } block with an IMAP server that asks that
 * relay, passes the client's address with the PROXY protocol and offers
 * the capabilities popgate has. Pure text: no I/O besides f.
 */
#ifndef POPGATE_GATEWAY_NGINX_CONFIG_H
#define POPGATE_GATEWAY_NGINX_CONFIG_H

#include <stdio.h>

struct config;

/* listen: nginx's IMAP address ("143", "0.0.0.0:143"); relay: the local
 * address of the auth_http relay ("127.0.0.1:9180"). Returns 0, or -1
 * with *error_r when the configuration has no [cluster] auth_http. */
int nginx_config_write(FILE *f, const struct config *c, const char *listen,
    const char *relay, const char **error_r);

#endif
