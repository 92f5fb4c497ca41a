/*
 * auth-http — nginx's mail auth_http protocol, served by popgated for a
 * cluster of nodes behind nginx's mail proxy (issue 17, docs/scale-out.md).
 *
 * nginx asks, for each login, with a GET carrying Auth-Method (plain or
 * login), Auth-User, Auth-Pass, Auth-Protocol (imap), Auth-Login-Attempt
 * and Client-IP; the answer is in headers: Auth-Status "OK" with
 * Auth-Server and Auth-Port (the node to send the client to), or an error
 * text with Auth-Wait (seconds before the client may try again).
 *
 * Placement: every node is authoritative for its own users. The node
 * asked checks the password against its own store first (on a worker,
 * after the delay the failed-login table asks for, counted as an IMAP
 * login). A user it does not hold is asked of the peers ([cluster] peers,
 * their auth_http, one at a time, with a "Popgate-Peer: 1" header that
 * stops them from asking further); the peer that holds the user checks
 * the password and answers for itself. A small cache remembers which peer
 * held a user, asked first next time (a miss there falls back to asking
 * every peer). When no node claims the user and a peer could not be
 * reached, the answer is a temporary failure, never "invalid login" (the
 * user may live on the node that is down).
 *
 * Owner: the event loop. Passwords are copied, wiped after use, never
 * logged.
 */
#ifndef POPGATE_GATEWAY_AUTH_HTTP_H
#define POPGATE_GATEWAY_AUTH_HTTP_H

#include <stddef.h>

struct gateway;

/* Limits of a request: its headers, a user name and password. */
#define AUTH_HTTP_HEADERS_MAX 8192
#define AUTH_HTTP_USER_MAX 255
#define AUTH_HTTP_PASS_MAX 1024
/* Seconds nginx may take to send a request, and a peer to answer. */
#define AUTH_HTTP_TIMEOUT_SECS 10
/* A peer's answer may wait for its failed-login table (up to
 * IMAP_THROTTLE_DELAY_MAX_MS, 30 s) and a hash: a shorter wait would turn
 * a slowed wrong password into "temporary failure". Under nginx's
 * auth_http_timeout (60 s in the generated configuration). */
#define AUTH_HTTP_PEER_TIMEOUT_SECS 40
/* Requests being answered at once (more: 503, nginx retries). */
#define AUTH_HTTP_PENDING_MAX 1024
/* Users whose node is remembered; when full, the cache starts afresh. */
#define AUTH_HTTP_CACHE_MAX 16384
/* Seconds a client waits after a failed login (nginx's Auth-Wait). */
#define AUTH_HTTP_FAIL_WAIT_SECS 3

/* Binds [cluster] auth_http_listen, if set: 0, or -1 with a message. */
int auth_http_start(struct gateway *gw, char *errbuf, size_t errsize);
/* On a reload: takes the keys of nc ([cluster] secret or secret_file,
 * both lines); the rest of [cluster] stays as started. 0, or -1 (the
 * keys before stay; logged). */
struct config;
int auth_http_reload_keys(struct gateway *gw, const struct config *nc);
/* The port bound (tests bind port 0), 0 when off. */
int auth_http_port(const struct gateway *gw);
/* Stops answering: closes the listener, fails every pending request. */
void auth_http_shutdown(struct gateway *gw);
void auth_http_free(struct gateway *gw);

#endif
