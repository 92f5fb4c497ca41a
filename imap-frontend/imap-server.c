/* imap-server — listeners, session registry, caps, stats, shutdown. */
#include "imap-server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>
#include <openssl/rand.h>

#include "arena.h"
#include "imap-parse.h"
#include "imap-recent.h"
#include "imap-sortcache.h"
#include "imap-session.h"
#include "imap-throttle.h"
#include "log.h"
#include "login-ticket.h"
#include "password.h"
#include "username.h"
#include "workq.h"
#include "xmalloc.h"

/* Scratch arena block size: one FETCH line or one SEARCH program. */
#define IMAP_SCRATCH_CHUNK (64 * 1024)
/* Seconds a graceful shutdown waits for clients to take their BYE. */
#define IMAP_SHUTDOWN_GRACE_SECS 3
/* Hash buckets for per-IP session counts (a power of two). */
#define IMAP_IP_BUCKETS 1024

struct imap_ip_count {
	struct imap_ip_count *next;
	unsigned count;
	unsigned preauth;	/* of count, not logged in */
	char ip[48];
};

struct imap_auth_request {
	struct imap_session *session;	/* NULL once the session is gone */
	char *username;			/* imap_server_auth_store's copy */
};

void
imap_server_config_init(struct imap_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->loopback_is_secure = true;
	cfg->allow_plaintext = false;
	cfg->fold_user_names = true;
	cfg->limits.max_sessions = 10000;
	cfg->limits.max_sessions_per_ip = 200;
	cfg->limits.max_sessions_per_user = 50;
	cfg->limits.max_preauth_per_ip = 10;
	cfg->limits.max_auth_failures = 3;
	cfg->limits.max_line = 64 * 1024;
	cfg->limits.max_literal_preauth = 8 * 1024;
	cfg->limits.max_literal = IMAP_PARSE_MAX_LITERAL;
	cfg->limits.max_append = STORE_MESSAGE_SIZE_MAX;
	cfg->limits.buffer_budget = 64ull * 1024 * 1024;
	cfg->limits.max_bad_commands = 20;
	cfg->limits.idle_timeout_secs = IMAP_IDLE_TIMEOUT_MIN_SECS;
	cfg->limits.preauth_timeout_secs = 60;
	cfg->limits.output_high_water = 256 * 1024;
	cfg->limits.fetch_pin_secs = IMAP_FETCH_PIN_SECS;
	cfg->limits.idle_keepalive_secs = IMAP_IDLE_KEEPALIVE_SECS;
}

static char **
strv_dup(const char *const *v)
{
	size_t n = 0;
	char **r;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	r = xcalloc(n + 1, sizeof(*r));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	return r;
}

static void
strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

struct imap_server *
imap_server_new(struct event_base *base, struct store *store,
    const struct imap_server_config *cfg, imap_auth_fn *auth, void *auth_ctx,
    const char **error_r)
{
	struct imap_server *srv;

	if (cfg->tls_addrs != NULL && cfg->tls_addrs[0] != NULL &&
	    cfg->ssl_ctx == NULL) {
		*error_r = "implicit TLS listeners need a TLS context";
		return NULL;
	}
	if (cfg->limits.max_line < 1024 || cfg->limits.output_high_water < 4096) {
		*error_r = "IMAP limits too small (max_line >= 1024, "
		    "output_high_water >= 4096)";
		return NULL;
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->store = store;
	if (cfg->ssl_ctx != NULL) {
		SSL_CTX_up_ref(cfg->ssl_ctx);
		srv->ssl_ctx = cfg->ssl_ctx;
	}
	srv->loopback_is_secure = cfg->loopback_is_secure;
	srv->allow_plaintext = cfg->allow_plaintext;
	srv->fold_user_names = cfg->fold_user_names;
	srv->limits = cfg->limits;
	if (srv->limits.idle_timeout_secs == 0)
		srv->limits.idle_timeout_secs = IMAP_IDLE_TIMEOUT_MIN_SECS;
	if (srv->limits.preauth_timeout_secs == 0)
		srv->limits.preauth_timeout_secs = 60;
	if (srv->limits.max_bad_commands == 0)
		srv->limits.max_bad_commands = 20;
	if (srv->limits.max_auth_failures == 0)
		srv->limits.max_auth_failures = 3;
	srv->throttle = imap_throttle_new(0, 0);
	if (srv->limits.fetch_pin_secs == 0)
		srv->limits.fetch_pin_secs = IMAP_FETCH_PIN_SECS;
	if (srv->limits.idle_keepalive_secs == 0)
		srv->limits.idle_keepalive_secs = IMAP_IDLE_KEEPALIVE_SECS;
	srv->auth = auth != NULL ? auth : imap_server_auth_store;
	srv->auth_ctx = auth != NULL ? auth_ctx : srv;
	srv->rawlog_dir = cfg->rawlog_dir != NULL ? xstrdup(cfg->rawlog_dir) :
	    NULL;
	if (cfg->spool_dir != NULL) {
		srv->spool_dir = xstrdup(cfg->spool_dir);
	} else {
		const char *t = getenv("TMPDIR");

		srv->spool_dir = xstrdup(t != NULL && t[0] == '/' ? t : "/tmp");
	}
	if (srv->limits.max_append == 0)
		srv->limits.max_append = STORE_MESSAGE_SIZE_MAX;
	if (srv->limits.buffer_budget == 0)
		srv->limits.buffer_budget = UINT64_MAX;
	srv->plain_addrs = strv_dup(cfg->plain_addrs);
	srv->tls_addrs = strv_dup(cfg->tls_addrs);
	TAILQ_INIT(&srv->sessions);
	TAILQ_INIT(&srv->proxy_waits);
	srv->proxy_addrs = strv_dup(cfg->proxy_addrs);
	srv->next_id = 1;
	srv->ip_buckets = IMAP_IP_BUCKETS;
	srv->ip_counts = NULL;
	srv->scratch = arena_new(IMAP_SCRATCH_CHUNK);
	srv->workq = cfg->workq;
	srv->recent = imap_recent_new();
	srv->sort_cache = imap_sortcache_new(IMAP_SORTCACHE_BYTES_MAX);
	if (imap_proxy_setup(srv, cfg->proxy_trusted, error_r) != 0) {
		imap_server_free(&srv);
		return NULL;
	}
	if (srv->proxy_addrs != NULL && srv->proxy_addrs[0] != NULL &&
	    srv->proxy_net_count == 0) {
		*error_r = "PROXY listeners need trusted proxy addresses";
		imap_server_free(&srv);
		return NULL;
	}
	return srv;
}

/* ---- per-IP counts ---- */

static struct imap_ip_count **ip_table(struct imap_server *srv);

static size_t
ip_hash(const char *ip)
{
	size_t h = 5381;

	for (; *ip != '\0'; ip++)
		h = h * 33 + (unsigned char)*ip;
	return h & (IMAP_IP_BUCKETS - 1);
}

static struct imap_ip_count **
ip_table(struct imap_server *srv)
{
	if (srv->ip_counts == NULL)
		srv->ip_counts = xcalloc(IMAP_IP_BUCKETS, sizeof(struct imap_ip_count *));
	return (struct imap_ip_count **)(void *)srv->ip_counts;
}

static struct imap_ip_count *
ip_find(struct imap_server *srv, const char *ip, bool create)
{
	struct imap_ip_count **tab = ip_table(srv);
	size_t h = ip_hash(ip);
	struct imap_ip_count *c;

	for (c = tab[h]; c != NULL; c = c->next)
		if (strcmp(c->ip, ip) == 0)
			return c;
	if (!create)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->next = tab[h];
	tab[h] = c;
	return c;
}

static void
ip_release(struct imap_server *srv, const char *ip, bool preauth)
{
	struct imap_ip_count **tab = ip_table(srv);
	struct imap_ip_count **pp = &tab[ip_hash(ip)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->ip, ip) == 0) {
			struct imap_ip_count *c = *pp;

			if (preauth)
				c->preauth--;
			if (--c->count == 0) {
				*pp = c->next;
				free(c);
			}
			return;
		}
	}
}

/* ---- listeners ---- */

void
imap_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t size, int *port_r)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, size);
		*port_r = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, size);
		*port_r = ntohs(s4->sin_port);
	} else {
		snprintf(ip, size, "unix");
		*port_r = 0;
	}
}

static bool
preauth_full(const struct imap_server *srv, const struct imap_ip_count *c)
{
	return srv->limits.max_preauth_per_ip > 0 &&
	    c->preauth >= srv->limits.max_preauth_per_ip;
}

/*
 * The server is full: the oldest connection that has not logged in makes
 * room for a new one (authenticated sessions are never evicted for that).
 * Sessions are in connect order, so the first not logged in is the
 * oldest. Only called from the accept callback, where no session's
 * handler runs, so it is freed at once.
 */
static void
evict_oldest_preauth(struct imap_server *srv)
{
	struct imap_session *s;

	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->user != NULL || s->in_dispatch)
			continue;
		log_info("imap session=%u event=evicted addr=%s age=%lld "
		    "reason=server_full", s->id, s->addr,
		    (long long)(time(NULL) - s->started));
		srv->stats.sessions_evicted++;
		if (!s->tls && !s->closing && evbuffer_get_length(
		    bufferevent_get_output(s->bev)) == 0) {
			static const char bye[] = "* BYE Server full, closing "
			    "connections that did not log in\r\n";
			/* best effort, straight to the socket: the session
			   is freed now */
			ssize_t w = write(s->fd, bye, sizeof(bye) - 1);
			(void)w;
		}
		imap_session_free(s);
		return;
	}
}

struct imap_session *
imap_server_admit(struct imap_server *srv, int fd, const struct sockaddr *sa,
    const struct sockaddr *link, bool tls)
{
	char ip[48];
	int port;
	struct imap_ip_count *c;
	const char *reason;

	imap_sockaddr_ip(sa, ip, sizeof(ip), &port);
	c = ip_find(srv, ip, false);
	if (!srv->shutting_down && srv->stats.sessions >=
	    srv->limits.max_sessions && (c == NULL ||
	    (c->count < srv->limits.max_sessions_per_ip &&
	    !preauth_full(srv, c))))
		evict_oldest_preauth(srv);
	reason = srv->shutting_down ? "shutdown" :
	    srv->stats.sessions >= srv->limits.max_sessions ? "session_limit" :
	    c != NULL && c->count >= srv->limits.max_sessions_per_ip ?
	    "per_ip_limit" : c != NULL && preauth_full(srv, c) ?
	    "per_ip_preauth_limit" : NULL;
	if (reason != NULL) {
		static const char bye[] = "* BYE Too many connections\r\n";

		srv->stats.sessions_refused++;
		log_warn("imap event=refused addr=%s:%d reason=%s", ip, port,
		    reason);
		if (!tls) {
			ssize_t w = write(fd, bye, sizeof(bye) - 1);
			(void)w;
		}
		close(fd);
		return NULL;
	}
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
		/* Responses end with a short tagged line written after the
		 * large untagged part: with Nagle it waits for the client's
		 * (delayed, ~40 ms) ACK of the part before. Each response is
		 * queued whole before it is written, so no small writes are
		 * saved by Nagle. Best effort. */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	}
	return imap_session_new(srv, fd, sa, link, tls);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct imap_server *srv = arg;
	bool tls = false;

	(void)salen;
	for (size_t i = 0; i < srv->listener_count; i++)
		if (srv->listeners[i] == l)
			tls = srv->listener_tls[i];
	(void)imap_server_admit(srv, fd, sa, sa, tls);
}

static void
proxy_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)l;
	imap_proxy_accept(arg, fd, sa, salen);
}

void
imap_server_session_added(struct imap_server *srv, struct imap_session *s)
{
	struct imap_ip_count *c = ip_find(srv, s->ip, true);

	c->count++;
	c->preauth++;
	srv->preauth++;
	srv->stats.sessions++;
	srv->stats.sessions_total++;
	TAILQ_INSERT_TAIL(&srv->sessions, s, link);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE/ENFILE: libevent retries on the next readiness; do not spin
	 * at full speed, disable for a moment. */
	log_error("imap event=accept_error error=\"%s\"",
	    evutil_socket_error_to_string(err));
	(void)arg;
	(void)l;
}

static int
parse_addr(const char *spec, struct sockaddr_storage *ss, int *len_r)
{
	int len = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)ss, &len) != 0)
		return -1;
	*len_r = len;
	return 0;
}

static int
add_listener(struct imap_server *srv, const char *spec, bool tls,
    bool proxy, const char **error_r)
{
	struct sockaddr_storage ss;
	int len;
	struct evconnlistener *l;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char ip[48];
	int port = 0;

	if (parse_addr(spec, &ss, &len) != 0) {
		*error_r = "bad IMAP listen address (want host:port)";
		return -1;
	}
	l = evconnlistener_new_bind(srv->base,
	    proxy ? proxy_accept_cb : accept_cb, srv,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    512, (struct sockaddr *)&ss, len);
	if (l == NULL) {
		*error_r = "cannot listen on an IMAP address";
		log_error("imap event=listen_failed addr=%s error=\"%s\"", spec,
		    strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound,
	    &blen) == 0)
		imap_sockaddr_ip((struct sockaddr *)&bound, ip, sizeof(ip), &port);
	if (proxy) {
		if (srv->proxy_port == 0)
			srv->proxy_port = port;
	} else if (tls && srv->tls_port == 0) {
		srv->tls_port = port;
	} else if (!tls && srv->plain_port == 0) {
		srv->plain_port = port;
	}
	srv->listeners = xreallocarray(srv->listeners, srv->listener_count + 1,
	    sizeof(*srv->listeners));
	srv->listener_tls = xreallocarray(srv->listener_tls,
	    srv->listener_count + 1, sizeof(*srv->listener_tls));
	srv->listeners[srv->listener_count] = l;
	srv->listener_tls[srv->listener_count] = tls;
	srv->listener_count++;
	log_info("imap event=listening addr=%s port=%d tls=%s proxy=%s", spec,
	    port, tls ? "implicit" : (srv->ssl_ctx != NULL ? "starttls" :
	    "none"), proxy ? "yes" : "no");
	return 0;
}

int
imap_server_listen(struct imap_server *srv, const char **error_r)
{
	for (size_t i = 0; srv->plain_addrs != NULL && srv->plain_addrs[i]; i++)
		if (add_listener(srv, srv->plain_addrs[i], false, false,
		    error_r) != 0)
			return -1;
	for (size_t i = 0; srv->tls_addrs != NULL && srv->tls_addrs[i]; i++)
		if (add_listener(srv, srv->tls_addrs[i], true, false,
		    error_r) != 0)
			return -1;
	for (size_t i = 0; srv->proxy_addrs != NULL && srv->proxy_addrs[i];
	    i++)
		if (add_listener(srv, srv->proxy_addrs[i], false, true,
		    error_r) != 0)
			return -1;
	return 0;
}

int
imap_server_proxy_port(const struct imap_server *srv)
{
	return srv->proxy_port;
}

int
imap_server_plain_port(const struct imap_server *srv)
{
	return srv->plain_port;
}

int
imap_server_tls_port(const struct imap_server *srv)
{
	return srv->tls_port;
}

void
imap_server_set_ssl_ctx(struct imap_server *srv, SSL_CTX *ctx)
{
	if (ctx != NULL)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(srv->ssl_ctx);
	srv->ssl_ctx = ctx;
}

static void
close_listeners(struct imap_server *srv)
{
	for (size_t i = 0; i < srv->listener_count; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	free(srv->listener_tls);
	srv->listeners = NULL;
	srv->listener_tls = NULL;
	srv->listener_count = 0;
}

/* ---- registry ---- */

static void
shutdown_check(struct imap_server *srv)
{
	void (*done)(void *);

	if (!srv->shutting_down || !TAILQ_EMPTY(&srv->sessions) ||
	    srv->shutdown_done == NULL)
		return;
	done = srv->shutdown_done;
	srv->shutdown_done = NULL;
	if (srv->shutdown_timer != NULL) {
		event_free(srv->shutdown_timer);
		srv->shutdown_timer = NULL;
	}
	done(srv->shutdown_arg);
}

void
imap_server_session_gone(struct imap_server *srv, struct imap_session *s)
{
	TAILQ_REMOVE(&srv->sessions, s, link);
	ip_release(srv, s->ip, s->user == NULL);
	if (s->user == NULL)
		srv->preauth--;
	srv->stats.sessions--;
	if (s->user != NULL)
		srv->stats.sessions_authenticated--;
	if (s->auth_req != NULL) {
		s->auth_req->session = NULL;
		s->auth_req = NULL;
	}
	imap_trace_session_free(s);
	shutdown_check(srv);
}

void
imap_server_session_authed(struct imap_server *srv, struct imap_session *s)
{
	struct imap_ip_count *c = ip_find(srv, s->ip, false);

	if (c != NULL)
		c->preauth--;
	srv->preauth--;
}

unsigned
imap_server_user_sessions(struct imap_server *srv, const char *user)
{
	struct imap_session *s;
	unsigned n = 0;

	TAILQ_FOREACH(s, &srv->sessions, link)
		if (s->user != NULL && strcmp(s->user, user) == 0 && !s->closing)
			n++;
	return n;
}

void
imap_server_foreach_session(struct imap_server *srv,
    void (*fn)(void *arg, const struct imap_session_info *info), void *arg)
{
	struct imap_session *s;
	struct imap_session_info info;

	TAILQ_FOREACH(s, &srv->sessions, link) {
		memset(&info, 0, sizeof(info));
		info.id = s->id;
		info.user = s->user;
		info.addr = s->addr;
		info.client_id = s->client_id;
		info.mailbox = s->sel != NULL ? s->sel->name : NULL;
		info.started = s->started;
		info.tls = s->tls;
		info.idling = s->io == IMAP_IO_IDLE;
		fn(arg, &info);
	}
}

unsigned
imap_server_kick_user(struct imap_server *srv, const char *user,
    const char *reason)
{
	struct imap_session *s;
	unsigned n = 0;

	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->user == NULL || strcmp(s->user, user) != 0 || s->closing)
			continue;
		imap_session_printf(s, "* BYE %s\r\n", reason);
		imap_session_close(s);
		n++;
	}
	return n;
}

void
imap_server_get_stats(const struct imap_server *srv,
    struct imap_server_stats *stats_r)
{
	*stats_r = srv->stats;
}

/* ---- change feed ---- */

void
imap_server_on_store_change(void *arg, const struct store_change *ch)
{
	struct imap_server *srv = arg;
	struct imap_session *s;

	/* \Recent bookkeeping first: the sessions told below claim */
	if (ch->kind == STORE_CHANGE_NEW && ch->uid_count > 0)
		imap_recent_note_new(srv->recent, ch->user_id, ch->mailbox_id,
		    ch->uids[0]);
	else if (ch->kind == STORE_CHANGE_MAILBOX_DELETE)
		imap_recent_forget(srv->recent, ch->user_id, ch->mailbox_id);
	TAILQ_FOREACH(s, &srv->sessions, link) {
		if (s->closing || s->user == NULL || s->user_id != ch->user_id)
			continue;
		imap_session_notify(s, ch, ch->origin == (uint64_t)s->id);
	}
}

/* ---- shutdown ---- */

static void
shutdown_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_server *srv = arg;
	struct imap_session *s;

	(void)fd;
	(void)what;
	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		imap_session_free(s);	/* calls shutdown_check */
}

void
imap_server_shutdown(struct imap_server *srv, const char *reason,
    void (*done)(void *arg), void *arg)
{
	struct imap_session *s, *next;
	struct timeval tv = { IMAP_SHUTDOWN_GRACE_SECS, 0 };

	srv->shutting_down = true;
	srv->shutdown_done = done;
	srv->shutdown_arg = arg;
	close_listeners(srv);
	imap_proxy_close_all(srv);
	log_info("imap event=shutdown sessions=%u", srv->stats.sessions);
	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->closing)
			continue;
		if (s->io != IMAP_IO_HANDSHAKE && s->io != IMAP_IO_STARTTLS)
			imap_session_printf(s, "* BYE %s\r\n", reason);
		imap_session_close(s);
	}
	if (!TAILQ_EMPTY(&srv->sessions)) {
		srv->shutdown_timer = evtimer_new(srv->base, shutdown_timer_cb,
		    srv);
		evtimer_add(srv->shutdown_timer, &tv);
	}
	shutdown_check(srv);
}

void
imap_server_free(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;
	struct imap_session *s;

	if (srv == NULL)
		return;
	*srvp = NULL;
	srv->shutdown_done = NULL;
	close_listeners(srv);
	imap_proxy_free(srv);
	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		imap_session_free(s);
	if (srv->shutdown_timer != NULL)
		event_free(srv->shutdown_timer);
	if (srv->ip_counts != NULL) {
		struct imap_ip_count **tab = ip_table(srv);

		for (size_t i = 0; i < IMAP_IP_BUCKETS; i++) {
			while (tab[i] != NULL) {
				struct imap_ip_count *c = tab[i];

				tab[i] = c->next;
				free(c);
			}
		}
		free(tab);
	}
	imap_trace_reg_free(srv);
	strv_free(srv->plain_addrs);
	strv_free(srv->tls_addrs);
	strv_free(srv->proxy_addrs);
	free(srv->rawlog_dir);
	free(srv->spool_dir);
	SSL_CTX_free(srv->ssl_ctx);
	arena_free(&srv->scratch);
	imap_recent_free(&srv->recent);
	imap_sortcache_free(&srv->sort_cache);
	imap_throttle_free(&srv->throttle);
	free(srv->shutdown_reason);
	free(srv);
}

/* ---- authentication ---- */

struct imap_auth_request *
imap_auth_request_new(struct imap_session *s)
{
	struct imap_auth_request *req = xcalloc(1, sizeof(*req));

	req->session = s;
	s->auth_req = req;
	return req;
}

void
imap_auth_request_done(struct imap_auth_request *req,
    enum imap_auth_result result, const char *user)
{
	struct imap_session *s = req->session;
	char *copy = req->username;

	free(req);
	if (s != NULL) {
		s->auth_req = NULL;
		imap_session_auth_finished(s, result, user);
	}
	free(copy);
}

/* A password check on a worker: the user's hash read there (its own
 * snapshot), argon2id there, the answer back on the loop. */
struct pw_job {
	struct workq_job wq;
	struct imap_server *srv;
	struct store *store;
	char *username;
	char *password;
	/* results */
	int result;		/* 1 match, 0 no match or no user, -1 error */
	bool exists;
	imap_password_done_fn *done;
	void *arg;
};

/* A valid hash of a random password, made once: an unknown user costs
 * the same time as a wrong password (no user enumeration by timing). */
static char dummy_hash[PASSWORD_ENCODED_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_make(void)
{
	unsigned char rnd[16];
	const char *err;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)random();
	if (password_hash((const char *)rnd, sizeof(rnd), dummy_hash,
	    &err) != 0)
		dummy_hash[0] = '\0';
	secure_zero(rnd, sizeof(rnd));
}

static enum workq_run_result
pw_job_run(struct workq_job *wq)
{
	struct pw_job *j = (struct pw_job *)wq;
	struct store_read *r = NULL;
	struct store_user_info info;
	const char *err;
	char *hash = NULL;
	bool moved = false;
	uint32_t uid;
	int rc;

	pthread_once(&dummy_once, dummy_make);
	j->result = 0;
	if (store_read_begin(j->store, &r, &err) != 0) {
		j->result = -1;
		return WORKQ_DONE;
	}
	rc = store_user_lookup(r, j->username, &uid, &err);
	if (rc == 0 && store_user_get(r, uid, &info, &err) == 0) {
		const void *v;
		size_t n;

		/* moved to another node (popgatectl user export): not
		   held here, whatever the password */
		moved = store_user_meta_get(r, uid, STORE_META_MOVED, &v, &n,
		    &err) == 0;
		j->exists = !moved;
		hash = xstrdup(info.password_hash);
	} else if (rc < 0) {
		j->result = -1;
	}
	store_read_end(&r);
	if (j->result < 0)
		return WORKQ_DONE;
	if (hash != NULL && hash[0] != '\0') {
		if (password_verify(hash, j->password, strlen(j->password)))
			j->result = moved ? 2 : 1;
	} else if (dummy_hash[0] != '\0') {
		(void)password_verify(dummy_hash, j->password,
		    strlen(j->password));
	}
	free(hash);
	return WORKQ_DONE;
}

static void
pw_job_done(struct workq_job *wq)
{
	struct pw_job *j = (struct pw_job *)wq;

	if (wq->cancelled)
		j->result = -1;
	else if (j->result >= 0)
		j->srv->stats.password_checks++;
	j->done(j->arg, j->result, j->exists);
	secure_zero(j->password, strlen(j->password));
	free(j->password);
	free(j->username);
	free(j);
}

void
imap_server_check_password(struct imap_server *srv, const char *username,
    const char *password, const char *client_addr,
    imap_password_done_fn *done, void *arg)
{
	struct pw_job *j = xcalloc(1, sizeof(*j));
	uint64_t h = 1469598103934665603ULL;

	j->srv = srv;
	j->store = srv->store;
	j->username = xstrdup(username);
	j->password = xstrdup(password);
	j->done = done;
	j->arg = arg;
	j->wq.run = pw_job_run;
	j->wq.done = pw_job_done;
	/* fairness by client address: one address guessing passwords
	   waits behind itself, not in front of everyone else */
	for (const char *p = client_addr != NULL ? client_addr : "";
	    *p != '\0' && *p != ':'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	j->wq.key = h | (1ULL << 63);
	workq_submit(srv->workq, &j->wq);
}

void
imap_server_set_tickets(struct imap_server *srv, struct login_tickets *t)
{
	srv->tickets = t;
}

int
imap_server_ticket_issue(struct imap_server *srv, const char *user,
    const char *ip, char *out)
{
	char *canon;
	int rc;

	if (srv->tickets == NULL)
		return -1;
	canon = username_canon_dup(user, srv->fold_user_names);
	rc = login_ticket_issue(srv->tickets, canon, ip, time(NULL), out);
	free(canon);
	return rc;
}

bool
imap_server_ticket_login(struct imap_session *s, const char *user,
    const char *pass, struct imap_auth_request *req)
{
	struct imap_server *srv = s->server;
	enum login_ticket_result r;

	/* only where a trusted proxy named the client: a ticket sent
	   straight to a listener is just a wrong password there */
	if (srv->tickets == NULL || !s->proxied)
		return false;
	r = login_ticket_redeem(srv->tickets, user, s->ip, pass, time(NULL));
	if (r == LOGIN_TICKET_NOT_ONE)
		return false;
	if (r != LOGIN_TICKET_OK) {
		log_warn("imap session=%u event=ticket_refused ip=%s "
		    "reason=%s", s->id, s->ip, login_ticket_result_name(r));
		return false;
	}
	srv->stats.ticket_logins++;
	log_debug("imap session=%u event=ticket_login ip=%s", s->id, s->ip);
	imap_auth_request_done(req, IMAP_AUTH_OK, user);
	return true;
}

struct imap_throttle *
imap_server_throttle(struct imap_server *srv)
{
	return srv->throttle;
}

static void
auth_store_done(void *arg, int result, bool exists)
{
	struct imap_auth_request *req = arg;

	(void)exists;
	imap_auth_request_done(req, result == 1 ? IMAP_AUTH_OK :
	    result == 2 ? IMAP_AUTH_DISABLED :
	    result < 0 ? IMAP_AUTH_TEMPFAIL : IMAP_AUTH_FAILED,
	    req->username);
}

void
imap_server_auth_store(void *ctx, const char *username, const char *password,
    const char *client_addr, struct imap_auth_request *req)
{
	struct imap_server *srv = ctx;

	free(req->username);
	req->username = xstrdup(username);
	imap_server_check_password(srv, username, password, client_addr,
	    auth_store_done, req);
}

unsigned
imap_server_throttle_delay(struct imap_server *srv, const char *user,
    const char *ip)
{
	return imap_throttle_delay(srv->throttle, user, ip, time(NULL));
}

void
imap_server_throttle_result(struct imap_server *srv, const char *user,
    const char *ip, bool ok, unsigned *failures_r)
{
	struct imap_throttle_counts c;

	if (ok) {
		imap_throttle_succeeded(srv->throttle, user, ip);
		*failures_r = 0;
		return;
	}
	srv->stats.logins_failed++;
	imap_throttle_failed(srv->throttle, user, ip, time(NULL), &c);
	*failures_r = c.pair;
}
