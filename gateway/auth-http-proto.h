/*
 * auth-http-proto — the pure parts of nginx's auth_http protocol (level
 * 1: no I/O): the %XX escaping nginx applies to Auth-User and Auth-Pass.
 */
#ifndef POPGATE_GATEWAY_AUTH_HTTP_PROTO_H
#define POPGATE_GATEWAY_AUTH_HTTP_PROTO_H

#include <stddef.h>

/*
 * Undoes nginx's escaping of a header value (every "%XX" is the byte XX,
 * hex digits of either case). Returns a new string (free it; wipe it for
 * a password), or NULL for a bad escape, an escaped NUL, an empty result
 * or one longer than max bytes (the input is not read past 3 * max + 1
 * bytes before that is known).
 */
char *auth_http_unescape(const char *s, size_t max);

#endif
