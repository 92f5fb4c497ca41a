/*
 * http-client — HTTPS POST requests to OAuth token endpoints, through
 * libcurl's multi interface driven by the gateway's libevent loop: curl
 * tells us which sockets to watch and when its timer is due
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), libevent watches
 * them, and nothing blocks the loop. Name resolution is libcurl's own
 * threaded resolver (Debian's libcurl4-openssl is built with it): a
 * thread of libcurl's, invisible here, so a slow DNS server does not
 * stall the loop either.
 *
 * Threads: every call is made on the event loop's thread, and every
 * callback runs there. No thread of ours. (When the lead's worker pool
 * lands, nothing here needs to move: no work is blocking.)
 *
 * Only https:// URLs, no redirects, certificate and host verification
 * always on (the system's store plus an optional CA file), a connect
 * timeout and a total timeout, and a response body of at most
 * HTTP_RESPONSE_MAX bytes (a larger one fails the request). Request
 * bodies carry secrets (refresh tokens, client secrets): they are wiped
 * once the request ends and never logged.
 */
#ifndef POPGATE_GATEWAY_HTTP_CLIENT_H
#define POPGATE_GATEWAY_HTTP_CLIENT_H

#include <stddef.h>

struct event_base;
struct http_client;
struct http_request;

/* Largest response body read: a token response is a few KB. */
#define HTTP_RESPONSE_MAX (64 * 1024)
/* Requests in flight at once; more wait in a queue (a reload or a start
 * with thousands of OAuth accounts must not open thousands of TLS
 * connections to one provider at once). */
#define HTTP_INFLIGHT_MAX 8
/* Queued requests at most; beyond, a request fails at once. */
#define HTTP_QUEUE_MAX 100000
/* Seconds to connect (TCP and TLS) and for the whole request. */
#define HTTP_CONNECT_TIMEOUT 10
#define HTTP_TOTAL_TIMEOUT 30

/* How a request ended. status is the HTTP status (0 when none arrived);
 * body (NUL-terminated, len bytes) is valid during the call only; error
 * is "" or why the request failed (network, TLS, timeout, too large). */
struct http_response {
	long status;
	const char *body;
	size_t len;
	const char *error;
};

typedef void http_done_cb(void *arg, const struct http_response *resp);

/* NULL when libcurl cannot be initialised (logged). */
struct http_client *http_client_new(struct event_base *base);
/* Cancels every request (no callback) and frees. Accepts NULL. */
void http_client_free(struct http_client **cp);

/*
 * POSTs body (application/x-www-form-urlencoded; copied, wiped at the
 * end) to url. ca_file (may be NULL) is trusted besides the system's
 * store. cb runs once from the event loop, never from within this call.
 * *req_r identifies the request for http_cancel until cb runs. -1 (with
 * *error_r) for a URL that is not https:// or a full queue.
 */
int http_post_form(struct http_client *c, const char *url, const char *body,
    const char *ca_file, http_done_cb *cb, void *arg,
    struct http_request **req_r, const char **error_r);
/* Cancels a request: cb will not run. Sets *rp to NULL; accepts NULL. */
void http_cancel(struct http_request **rp);

#endif
