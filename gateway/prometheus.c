/*
 * prometheus — see prometheus.h. The metric names are the admin guide's
 * list ("Metrics"); keep the two in step.
 */
#include "prometheus.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "gateway/gateway.h"
#include "gateway/listeners.h"
#include "gateway/upstreams.h"
#include "imap-frontend/imap-server.h"
#include "log.h"
#include "metrics.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "strbuf.h"
#include "version.h"
#include "workq.h"
#include "xmalloc.h"

/* The outcomes a poll can have (pop3_outcome_name), so every series
   exists from the start. */
static const char *const outcomes[] = {
	"ok", "temporary", "auth", "login-delay", "tls", "protocol", "store",
	"aborted",
};
#define N_OUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))

enum sess_state { S_NOT_AUTH, S_AUTH, S_SELECTED, S_IDLE, S_COUNT };
static const char *const sess_states[S_COUNT] = {
	"not_authenticated", "authenticated", "selected", "idle",
};

#define N_UP_STATES (UPSTREAM_STATE_STOPPED + 1)

struct prometheus {
	struct gateway *gw;
	struct evhttp *http;
	int port;
	/* fed as things happen */
	struct metric *polls[N_OUTCOMES];
	struct metric *fetched_messages, *fetched_bytes;
	/* read by the collectors at each scrape */
	struct metric *sessions[S_COUNT];
	struct metric *sessions_total, *sessions_refused;
	struct metric *logins_ok, *logins_failed;
	struct metric *password_checks, *ticket_logins;
	struct metric *commands, *bad_commands;
	struct metric *accounts[N_UP_STATES];
	struct metric *state_messages[N_UP_STATES];
	struct metric *state_bytes[N_UP_STATES];
	struct metric *store_used, *store_file, *store_map, *store_map_free;
	struct metric *disk_free, *readers;
	struct metric *control_requests, *control_errors;
	struct metric *passthrough_ok, *passthrough_failed;
	struct metric *up, *start_time, *build_info;
};

/* Buckets: commits take about a millisecond (no data) to a few hundred
   (a large batch on a slow disk); a batch is one change to thousands. */
static const double commit_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 5,
};
static const double batch_bounds[] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
};

static struct metric *
labelled(struct metrics *m, bool gauge, const char *name, const char *key,
    const char *value, const char *help)
{
	char labels[128];

	snprintf(labels, sizeof(labels), "%s=\"%s\"", key, value);
	return gauge ? metrics_gauge(m, name, labels, help) :
	    metrics_counter(m, name, labels, help);
}

/* A gauge family with one series per upstream account state. */
static void
per_state(struct metrics *m, const char *name, const char *help,
    struct metric *out[N_UP_STATES])
{
	for (int i = 0; i < (int)N_UP_STATES; i++)
		out[i] = labelled(m, true, name, "state",
		    upstream_state_name((enum upstream_state)i), help);
}

static void collect(void *arg);

void
prometheus_new(struct gateway *gw)
{
	struct prometheus *p = xcalloc(1, sizeof(*p));
	struct metrics *m = metrics_new();
	char labels[256], v[64], r[64];

	p->gw = gw;
	gw->metrics = m;
	gw->prom = p;
	metrics_label_value(v, sizeof(v), popgate_version());
	metrics_label_value(r, sizeof(r), popgate_version_long());
	snprintf(labels, sizeof(labels), "version=\"%s\",build=\"%s\"", v, r);
	p->build_info = metrics_gauge(m, "popgate_build_info", labels,
	    "popgated's version (the value is 1).");
	metric_set(p->build_info, 1);
	p->up = metrics_gauge(m, "popgate_up", NULL,
	    "1 while popgated runs; 0 once it is shutting down.");
	p->start_time = metrics_gauge(m, "popgate_start_time_seconds", NULL,
	    "When popgated started (Unix time).");
	metric_set(p->start_time, (int64_t)gw->started);

	for (int i = 0; i < S_COUNT; i++)
		p->sessions[i] = labelled(m, true, "popgate_imap_sessions",
		    "state", sess_states[i], "Open IMAP sessions by state.");
	p->sessions_total = metrics_counter(m,
	    "popgate_imap_sessions_accepted_total", NULL,
	    "IMAP connections accepted.");
	p->sessions_refused = metrics_counter(m,
	    "popgate_imap_sessions_refused_total", NULL,
	    "IMAP connections refused over a connection cap.");
	p->logins_ok = labelled(m, false, "popgate_imap_logins_total",
	    "result", "ok", "IMAP logins by result.");
	p->logins_failed = labelled(m, false, "popgate_imap_logins_total",
	    "result", "failed", "IMAP logins by result.");
	p->password_checks = metrics_counter(m,
	    "popgate_password_checks_total", NULL,
	    "Password hashes verified (argon2id), for IMAP and auth_http.");
	p->ticket_logins = metrics_counter(m,
	    "popgate_imap_ticket_logins_total", NULL,
	    "IMAP logins with an auth_http login ticket (no hash).");
	p->commands = metrics_counter(m, "popgate_imap_commands_total", NULL,
	    "IMAP commands run.");
	p->bad_commands = metrics_counter(m,
	    "popgate_imap_bad_commands_total", NULL,
	    "IMAP commands answered BAD.");

	for (size_t i = 0; i < N_OUTCOMES; i++)
		p->polls[i] = labelled(m, false, "popgate_upstream_polls_total",
		    "outcome", outcomes[i], "Upstream polls by outcome.");
	p->fetched_messages = metrics_counter(m,
	    "popgate_upstream_fetched_messages_total", NULL,
	    "Messages fetched from upstream and stored.");
	p->fetched_bytes = metrics_counter(m,
	    "popgate_upstream_fetched_bytes_total", NULL,
	    "Bytes of the messages fetched and stored.");
	per_state(m, "popgate_upstream_accounts", "Upstream accounts being "
	    "polled, by state.", p->accounts);
	per_state(m, "popgate_upstream_account_fetched_messages", "Messages "
	    "fetched since start by the accounts now in each state.",
	    p->state_messages);
	per_state(m, "popgate_upstream_account_fetched_bytes", "Bytes fetched "
	    "since start by the accounts now in each state.", p->state_bytes);

	gw->core_metrics.commit_seconds = metrics_histogram(m,
	    "popgate_store_commit_seconds", NULL, "Time one durable store "
	    "commit takes.", commit_bounds, N_ELEMENTS(commit_bounds));
	gw->core_metrics.commit_batch = metrics_histogram(m,
	    "popgate_store_commit_batch_size", NULL, "Changes made durable "
	    "by one commit (group commit).", batch_bounds,
	    N_ELEMENTS(batch_bounds));
	gw->core_metrics.queue_depth = metrics_gauge(m,
	    "popgate_worker_queue_depth", NULL,
	    "Jobs waiting for a worker thread.");
	p->store_used = metrics_gauge(m, "popgate_store_used_bytes", NULL,
	    "Bytes of the store in use.");
	p->store_file = metrics_gauge(m, "popgate_store_file_bytes", NULL,
	    "Size of the store's file on disk (preallocated ahead).");
	p->store_map = metrics_gauge(m, "popgate_store_map_size_bytes", NULL,
	    "The most the store can hold ([store] map_size).");
	p->store_map_free = metrics_gauge(m, "popgate_store_map_free_bytes",
	    NULL, "Room left in the store before map_size is reached.");
	p->disk_free = metrics_gauge(m, "popgate_store_disk_free_bytes", NULL,
	    "Free space of the file system holding the store.");
	p->readers = metrics_gauge(m, "popgate_store_read_snapshots", NULL,
	    "Read snapshots (LMDB reader slots) in use.");

	p->control_requests = metrics_counter(m,
	    "popgate_control_requests_total", NULL,
	    "Control socket requests.");
	p->control_errors = metrics_counter(m, "popgate_control_errors_total",
	    NULL, "Control socket requests answered with an error.");
	p->passthrough_ok = labelled(m, false, "popgate_passthrough_total",
	    "result", "ok", "Pass-through logins checked upstream, by "
	    "result.");
	p->passthrough_failed = labelled(m, false,
	    "popgate_passthrough_total", "result", "failed",
	    "Pass-through logins checked upstream, by result.");
	metrics_add_collector(m, collect, p);
}

void
gateway_metrics_poll_done(struct gateway *gw, const char *outcome,
    uint32_t fetched, uint64_t bytes)
{
	struct prometheus *p = gw->prom;

	if (p == NULL)
		return;
	for (size_t i = 0; i < N_OUTCOMES; i++) {
		if (strcmp(outcomes[i], outcome) == 0)
			metric_add(p->polls[i], 1);
	}
	metric_add(p->fetched_messages, fetched);
	metric_add(p->fetched_bytes, bytes);
}

/* ---- collectors (at scrape time, on the loop) ---- */

struct sess_count {
	int64_t n[S_COUNT];
};

static void
count_session(void *arg, const struct imap_session_info *info)
{
	struct sess_count *sc = arg;

	if (info->user == NULL)
		sc->n[S_NOT_AUTH]++;
	else if (info->idling)
		sc->n[S_IDLE]++;
	else if (info->mailbox != NULL)
		sc->n[S_SELECTED]++;
	else
		sc->n[S_AUTH]++;
}

struct up_count {
	int64_t accounts[N_UP_STATES];
	int64_t messages[N_UP_STATES];
	int64_t bytes[N_UP_STATES];
};

static void
count_account(void *arg, const struct upstream_status *st)
{
	struct up_count *uc = arg;
	int s = (int)st->state;

	if (s < 0 || s >= (int)N_UP_STATES)
		return;
	uc->accounts[s]++;
	uc->messages[s] += (int64_t)st->messages_fetched;
	uc->bytes[s] += (int64_t)st->bytes_fetched;
}

static void
collect(void *arg)
{
	struct prometheus *p = arg;
	struct gateway *gw = p->gw;
	struct sess_count sc;
	struct up_count uc;
	struct store_space sp;
	const char *error;

	metric_set(p->up, gw->shutting_down ? 0 : 1);
	if (gw->workq != NULL && gw->core_metrics.queue_depth != NULL) {
		struct workq_stats ws;

		workq_get_stats(gw->workq, &ws);
		metric_set(gw->core_metrics.queue_depth, (int64_t)ws.queued);
	}
	memset(&sc, 0, sizeof(sc));
	if (gw->imap != NULL) {
		struct imap_server_stats st;

		imap_server_foreach_session(gw->imap, count_session, &sc);
		imap_server_get_stats(gw->imap, &st);
		metric_set(p->sessions_total, (int64_t)st.sessions_total);
		metric_set(p->sessions_refused, (int64_t)st.sessions_refused);
		metric_set(p->logins_ok, (int64_t)st.logins_ok);
		metric_set(p->logins_failed, (int64_t)st.logins_failed);
		metric_set(p->password_checks, (int64_t)st.password_checks);
		metric_set(p->ticket_logins, (int64_t)st.ticket_logins);
		metric_set(p->commands, (int64_t)st.commands);
		metric_set(p->bad_commands, (int64_t)st.bad_commands);
	}
	for (int i = 0; i < S_COUNT; i++)
		metric_set(p->sessions[i], sc.n[i]);
	memset(&uc, 0, sizeof(uc));
	upstreams_foreach_status(gw->upstreams, count_account, &uc);
	for (int i = 0; i < (int)N_UP_STATES; i++) {
		metric_set(p->accounts[i], uc.accounts[i]);
		metric_set(p->state_messages[i], uc.messages[i]);
		metric_set(p->state_bytes[i], uc.bytes[i]);
	}
	if (gw->store != NULL && store_space_get(gw->store, &sp, &error) == 0) {
		metric_set(p->store_used, (int64_t)sp.used);
		metric_set(p->store_file, (int64_t)sp.file_size);
		metric_set(p->store_map, (int64_t)sp.map_size);
		/* the map grows (up to map_max and the disk): the room left
		   is to the store's capacity, not to today's map */
		metric_set(p->store_map_free, sp.capacity > sp.used ?
		    (int64_t)(sp.capacity - sp.used) : 0);
		metric_set(p->disk_free, (int64_t)sp.disk_free);
		metric_set(p->readers, (int64_t)sp.readers_used);
	}
	metric_set(p->control_requests,
	    (int64_t)gw->stats.control_requests);
	metric_set(p->control_errors, (int64_t)(gw->stats.control_errors +
	    (gw->control != NULL ? control_bad_requests(gw->control) : 0)));
	metric_set(p->passthrough_ok, (int64_t)gw->stats.passthrough_ok);
	metric_set(p->passthrough_failed,
	    (int64_t)gw->stats.passthrough_failed);
}

void
prometheus_render(struct gateway *gw, struct strbuf *sb)
{
	metrics_render(gw->metrics, sb);
}

/* ---- the endpoint ---- */

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct gateway *gw = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *out;
	struct strbuf sb = STRBUF_INIT;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "Not Found: the metrics "
		    "are at /metrics");
		return;
	}
	prometheus_render(gw, &sb);
	out = evbuffer_new();
	evbuffer_add(out, sb.data, sb.len);
	strbuf_free(&sb);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
	evbuffer_free(out);
}

int
prometheus_listen(struct gateway *gw, char *errbuf, size_t errsize)
{
	const struct config *c = gw->config;
	struct prometheus *p = gw->prom;

	if (!c->metrics_enabled)
		return 0;
	p->http = evhttp_new(gw->base);
	PG_ASSERT(p->http != NULL);
	/* the others reach request_cb, which answers 405 */
	evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(p->http, PROMETHEUS_HEADERS_MAX);
	evhttp_set_max_body_size(p->http, PROMETHEUS_BODY_MAX);
	evhttp_set_timeout(p->http, PROMETHEUS_TIMEOUT_SECS);
	evhttp_set_gencb(p->http, request_cb, gw);
	return listeners_http_bind(p->http, c->metrics_listen,
	    c->metrics_listen_count, "metrics", "metrics", " path=/metrics",
	    &p->port, errbuf, errsize);
}

int
prometheus_port(const struct gateway *gw)
{
	return gw->prom != NULL ? gw->prom->port : 0;
}

void
prometheus_free(struct gateway *gw)
{
	struct prometheus *p = gw->prom;

	if (p == NULL)
		return;
	if (p->http != NULL)
		evhttp_free(p->http);
	free(p);
	gw->prom = NULL;
	metrics_free(&gw->metrics);
	memset(&gw->core_metrics, 0, sizeof(gw->core_metrics));
}
