/* http-client — see http-client.h. libcurl's multi-socket interface on
 * the libevent loop. */
#include "http-client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

struct http_request {
	struct http_client *c;
	TAILQ_ENTRY(http_request) entry;	/* queued or running */
	CURL *easy;			/* NULL while queued */
	char *url;
	char *body;
	size_t body_len;
	char *ca_file;
	struct strbuf resp;
	bool too_large;
	char errbuf[CURL_ERROR_SIZE];
	http_done_cb *cb;
	void *arg;
};

TAILQ_HEAD(http_req_list, http_request);

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct http_req_list running;
	struct http_req_list queued;
	size_t nrunning, nqueued;
};

/* One libevent event per socket curl asks us to watch. */
struct sock {
	struct http_client *c;
	curl_socket_t fd;
	struct event *ev;
};

static void check_done(struct http_client *c);
static void start_queued(struct http_client *c);

static void
on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int action = (what & EV_READ ? CURL_CSELECT_IN : 0) |
	    (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running = 0;

	curl_multi_socket_action(c->multi, fd, action, &running);
	check_done(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int running = 0;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch, re-watch or forget a socket. */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct http_client *c = userp;
	struct sock *sk = sockp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			event_free(sk->ev);
			free(sk);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
	    (what & CURL_POLL_OUT ? EV_WRITE : 0);
	if (sk == NULL) {
		sk = xcalloc(1, sizeof(*sk));
		sk->c = c;
		sk->fd = fd;
		curl_multi_assign(c->multi, fd, sk);
	} else {
		event_free(sk->ev);
	}
	sk->ev = event_new(c->base, fd, kind, on_socket_event, c);
	PG_ASSERT(sk->ev != NULL);
	event_add(sk->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl's single timer (never acted on here:
   curl_multi_socket_action must not be called from its callbacks). */
static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	return 0;
}

static size_t
write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_request *r = arg;
	size_t len = size * n;

	if (r->resp.len + len > HTTP_RESPONSE_MAX) {
		r->too_large = true;
		return 0;	/* curl fails the transfer */
	}
	strbuf_append(&r->resp, data, len);
	return len;
}

/* CURLOPT_SSL_CTX_FUNCTION: the provider's CA file ADDS to the store curl
   has loaded from the system (CURLOPT_CAINFO would replace it). */
static CURLcode
ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *arg)
{
	struct http_request *r = arg;

	(void)easy;
	if (SSL_CTX_load_verify_locations(ssl_ctx, r->ca_file, NULL) != 1) {
		ERR_clear_error();
		return CURLE_SSL_CACERT_BADFILE;
	}
	return CURLE_OK;
}

static void
request_free(struct http_request *r)
{
	if (r->body != NULL) {
		secure_zero(r->body, r->body_len);
		free(r->body);
	}
	if (r->resp.data != NULL)
		secure_zero(r->resp.data, r->resp.len);
	strbuf_free(&r->resp);
	free(r->url);
	free(r->ca_file);
	free(r);
}

static int
request_start(struct http_request *r)
{
	struct http_client *c = r->c;
	CURL *e = curl_easy_init();

	if (e == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)HTTP_CONNECT_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)HTTP_TOTAL_TIMEOUT);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "popgate");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	/* our buffer, not a curl copy: it is wiped when the request ends */
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	if (r->ca_file != NULL) {
		curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, r);
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		return -1;
	}
	r->easy = e;
	TAILQ_INSERT_TAIL(&c->running, r, entry);
	c->nrunning++;
	return 0;
}

static void
finish(struct http_request *r, CURLcode code)
{
	struct http_client *c = r->c;
	struct http_response resp;
	char err[CURL_ERROR_SIZE + 64];
	long status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(c->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	TAILQ_REMOVE(&c->running, r, entry);
	c->nrunning--;
	err[0] = '\0';
	if (r->too_large)
		snprintf(err, sizeof(err), "response larger than %d bytes",
		    HTTP_RESPONSE_MAX);
	else if (code != CURLE_OK)
		snprintf(err, sizeof(err), "%s", r->errbuf[0] != '\0' ?
		    r->errbuf : curl_easy_strerror(code));
	resp.status = code == CURLE_OK ? status : 0;
	resp.body = strbuf_str(&r->resp);
	resp.len = r->resp.len;
	resp.error = err;
	r->cb(r->arg, &resp);
	request_free(r);
}

static void
check_done(struct http_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct http_request *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
		    (char **)&r);
		finish(r, m->data.result);
	}
	start_queued(c);
}

static void
start_queued(struct http_client *c)
{
	while (c->nrunning < HTTP_INFLIGHT_MAX && c->nqueued > 0) {
		struct http_request *r = TAILQ_FIRST(&c->queued);
		struct http_response resp;

		TAILQ_REMOVE(&c->queued, r, entry);
		c->nqueued--;
		if (request_start(r) == 0)
			continue;
		memset(&resp, 0, sizeof(resp));
		resp.body = "";
		resp.error = "cannot start an HTTP request";
		r->cb(r->arg, &resp);
		request_free(r);
	}
}

struct http_client *
http_client_new(struct event_base *base)
{
	struct http_client *c;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("http event=init-failed");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->multi = curl_multi_init();
	if (c->multi == NULL) {
		log_error("http event=init-failed");
		free(c);
		curl_global_cleanup();
		return NULL;
	}
	c->timer = evtimer_new(base, on_timer, c);
	TAILQ_INIT(&c->running);
	TAILQ_INIT(&c->queued);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

static void
drop(struct http_request *r)
{
	struct http_client *c = r->c;

	if (r->easy != NULL) {
		curl_multi_remove_handle(c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		TAILQ_REMOVE(&c->running, r, entry);
		c->nrunning--;
	} else {
		TAILQ_REMOVE(&c->queued, r, entry);
		c->nqueued--;
	}
	request_free(r);
}

void
http_client_free(struct http_client **cp)
{
	struct http_client *c = *cp;
	struct http_request *r;

	if (c == NULL)
		return;
	while ((r = TAILQ_FIRST(&c->running)) != NULL)
		drop(r);
	while ((r = TAILQ_FIRST(&c->queued)) != NULL)
		drop(r);
	curl_multi_cleanup(c->multi);
	event_free(c->timer);
	free(c);
	curl_global_cleanup();
	*cp = NULL;
}

int
http_post_form(struct http_client *c, const char *url, const char *body,
    const char *ca_file, http_done_cb *cb, void *arg,
    struct http_request **req_r, const char **error_r)
{
	struct http_request *r;

	if (strncmp(url, "https://", 8) != 0) {
		*error_r = "only https:// endpoints are used";
		return -1;
	}
	if (c->nqueued >= HTTP_QUEUE_MAX) {
		*error_r = "too many HTTP requests queued";
		return -1;
	}
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->url = xstrdup(url);
	r->body_len = strlen(body);
	r->body = xstrdup(body);
	r->ca_file = ca_file != NULL ? xstrdup(ca_file) : NULL;
	r->cb = cb;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&c->queued, r, entry);
	c->nqueued++;
	*req_r = r;
	/* curl_multi_add_handle sets curl's timer (timer_cb); the transfer
	   starts when it fires on the loop, so cb never runs in this call */
	if (c->nrunning < HTTP_INFLIGHT_MAX) {
		TAILQ_REMOVE(&c->queued, r, entry);
		c->nqueued--;
		if (request_start(r) < 0) {
			request_free(r);
			*req_r = NULL;
			*error_r = "cannot start an HTTP request";
			return -1;
		}
	}
	return 0;
}

void
http_cancel(struct http_request **rp)
{
	if (*rp == NULL)
		return;
	drop(*rp);
	*rp = NULL;
}
