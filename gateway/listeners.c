/* listeners — see listeners.h. */
#include "listeners.h"

#include <event2/http.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/auth-http.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/passthrough.h"
#include "imap-frontend/imap-server.h"
#include "imap-frontend/imap-spool.h"
#include "log.h"
#include "store/store.h"
#include "tls.h"
#include "xmalloc.h"

static char **
addr_list(const struct config_listen *l, size_t count)
{
	char **v = xcalloc(count + 1, sizeof(*v));

	for (size_t i = 0; i < count; i++) {
		const char *host = strcmp(l[i].host, "*") == 0 ? "0.0.0.0" :
		    l[i].host;

		v[i] = strchr(host, ':') != NULL ?
		    xasprintf("[%s]:%s", host, l[i].port) :
		    xasprintf("%s:%s", host, l[i].port);
	}
	return v;
}

static void
addr_list_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static SSL_CTX *
load_tls(const struct config *c, char *errbuf, size_t errsize)
{
	const char *error = NULL;
	SSL_CTX *ctx;

	ctx = tls_server_ctx_new(c->cert_file, c->key_file, &error);
	if (ctx == NULL)
		snprintf(errbuf, errsize, "%s: [imap] cert %s / key %s: %s",
		    c->path, c->cert_file, c->key_file,
		    error != NULL ? error : "cannot load");
	return ctx;
}

int
listeners_check_tls(const struct config *c, char *errbuf, size_t errsize)
{
	SSL_CTX *ctx;

	if (c->cert_file == NULL)
		return 0;
	ctx = load_tls(c, errbuf, errsize);
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

int
listeners_prepare_spool(struct gateway *gw, char *errbuf, size_t errsize)
{
	char spool[4096];
	const char *error;
	unsigned removed;

	snprintf(spool, sizeof(spool), "%s/spool", gw->config->data_dir);
	if (imap_spool_prepare_dir(spool, &removed, &error) < 0) {
		snprintf(errbuf, errsize, "%s: %s", spool, error);
		return -1;
	}
	if (removed > 0)
		log_warn("imap event=spool_cleaned files=%u dir=%s", removed,
		    spool);
	return 0;
}

int
listeners_bind(struct gateway *gw, char *errbuf, size_t errsize)
{
	const struct config *c = gw->config;
	struct imap_server_config cfg;
	char **plain = NULL, **tls = NULL, **proxy = NULL;
	const char **trusted = NULL;
	SSL_CTX *ctx = NULL;
	const char *error = NULL;
	char spool[4096];
	int ret = -1;

	if (c->listen_count == 0 && c->listen_tls_count == 0 &&
	    c->proxy_listen_count == 0) {
		log_warn("imap event=no-listeners note=\"[imap] listen and "
		    "listen_tls are empty\"");
		return 0;
	}
	ctx = load_tls(c, errbuf, errsize);
	if (ctx == NULL)
		return -1;
	plain = addr_list(c->listen, c->listen_count);
	tls = addr_list(c->listen_tls, c->listen_tls_count);
	proxy = addr_list(c->proxy_listen, c->proxy_listen_count);
	trusted = xcalloc(c->proxy_trusted_count + 1, sizeof(*trusted));
	for (size_t i = 0; i < c->proxy_trusted_count; i++)
		trusted[i] = c->proxy_trusted[i];
	imap_server_config_init(&cfg);
	cfg.plain_addrs = c->listen_count > 0 ? (const char *const *)plain :
	    NULL;
	cfg.tls_addrs = c->listen_tls_count > 0 ? (const char *const *)tls :
	    NULL;
	cfg.proxy_addrs = c->proxy_listen_count > 0 ?
	    (const char *const *)proxy : NULL;
	cfg.proxy_trusted = trusted;
	cfg.ssl_ctx = ctx;
	cfg.loopback_is_secure = c->loopback_secure;
	cfg.allow_plaintext = c->allow_plaintext;
	cfg.fold_user_names = c->fold_user_names;
	cfg.rawlog_dir = c->rawlog_dir;
	cfg.limits.max_sessions = c->imap_connections;
	cfg.limits.max_sessions_per_ip = c->imap_connections_per_ip;
	cfg.limits.max_sessions_per_user = c->imap_connections_per_user;
	cfg.limits.max_preauth_per_ip = c->imap_preauth_per_ip;
	cfg.limits.preauth_timeout_secs = c->imap_preauth_timeout;
	cfg.limits.buffer_budget = c->imap_memory_budget;
	cfg.limits.max_append = c->imap_append_max;
	cfg.limits.max_auth_failures = c->login_failures_per_connection;
	cfg.limits.idle_keepalive_secs = c->idle_keepalive;
	snprintf(spool, sizeof(spool), "%s/spool", c->data_dir);
	cfg.spool_dir = spool;
	cfg.workq = gw->workq;
	gw->imap = imap_server_new(gw->base, gw->store, &cfg,
	    passthrough_auth, gw, &error);
	if (gw->imap == NULL) {
		snprintf(errbuf, errsize, "imap: %s", error);
		goto out;
	}
	if (imap_server_listen(gw->imap, &error) < 0) {
		snprintf(errbuf, errsize, "imap: %s", error);
		goto out;
	}
	store_set_change_cb(gw->store, imap_server_on_store_change, gw->imap);
	log_info("imap event=listening plain_port=%d tls_port=%d "
	    "proxy_port=%d", imap_server_plain_port(gw->imap),
	    imap_server_tls_port(gw->imap), imap_server_proxy_port(gw->imap));
	ret = 0;
out:
	SSL_CTX_free(ctx);	/* the server holds its own reference */
	addr_list_free(plain);
	addr_list_free(tls);
	addr_list_free(proxy);
	free(trusted);
	return ret;
}

int
listeners_start(struct gateway *gw, char *errbuf, size_t errsize)
{
	return 0;
}

int
listeners_reload(struct gateway *gw, const struct config *nc, char *errbuf,
    size_t errsize)
{
	SSL_CTX *ctx;

	if (gw->imap == NULL || nc->cert_file == NULL)
		return 0;
	ctx = load_tls(nc, errbuf, errsize);
	if (ctx == NULL)
		return -1;
	imap_server_set_ssl_ctx(gw->imap, ctx);
	SSL_CTX_free(ctx);
	{
		char q[LOG_QUOTE_MAX + 512];

		log_info("imap event=tls-reloaded cert=%s", log_quote(q,
		    sizeof(q), nc->cert_file));
	}
	/* the cluster's key changes on a reload (docs/scale-out.md) */
	if (auth_http_reload_keys(gw, nc) != 0) {
		snprintf(errbuf, errsize, "[cluster] secret: cannot be used");
		return -1;
	}
	if (nc->listen_count != gw->config->listen_count ||
	    nc->listen_tls_count != gw->config->listen_tls_count ||
	    nc->proxy_listen_count != gw->config->proxy_listen_count ||
	    nc->proxy_trusted_count != gw->config->proxy_trusted_count ||
	    nc->cluster_peer_count != gw->config->cluster_peer_count ||
	    nc->cluster_ticket_lifetime !=
	    gw->config->cluster_ticket_lifetime ||
	    nc->idle_keepalive != gw->config->idle_keepalive)
		log_warn("imap event=reload note=\"listen addresses, proxies, "
		    "the cluster (but its key) and idle_keepalive change "
		    "only on restart\"");
	return 0;
}

static void
imap_stopped(void *arg)
{
	struct gateway *gw = arg;

	gw->imap_stopped = true;
	gateway_maybe_exit(gw);
}

void
listeners_shutdown(struct gateway *gw)
{
	if (gw->imap == NULL) {
		gw->imap_stopped = true;
		return;
	}
	imap_server_shutdown(gw->imap, "popgate shutting down", imap_stopped,
	    gw);
}

void
listeners_stats_add(struct gateway *gw, json_t *stats)
{
	struct imap_server_stats st;

	if (gw->imap == NULL)
		return;
	imap_server_get_stats(gw->imap, &st);
	json_object_set_new(stats, "imap", json_pack("{s:i, s:i, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I}", "sessions", (int)st.sessions,
	    "sessions_authenticated", (int)st.sessions_authenticated,
	    "sessions_total", (json_int_t)st.sessions_total,
	    "sessions_refused", (json_int_t)st.sessions_refused,
	    "logins_ok", (json_int_t)st.logins_ok,
	    "logins_failed", (json_int_t)st.logins_failed,
	    "password_checks", (json_int_t)st.password_checks,
	    "ticket_logins", (json_int_t)st.ticket_logins,
	    "commands", (json_int_t)st.commands,
	    "bad_commands", (json_int_t)st.bad_commands));
}

void
listeners_free(struct gateway *gw)
{
	if (gw->store != NULL)
		store_set_change_cb(gw->store, NULL, NULL);
	imap_server_free(&gw->imap);
}

struct sessions_ctx {
	const char *user;
	json_t *array;
};

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static void
session_one(void *arg, const struct imap_session_info *info)
{
	struct sessions_ctx *sc = arg;

	if (sc->user != NULL &&
	    (info->user == NULL || strcmp(info->user, sc->user) != 0))
		return;
	json_array_append_new(sc->array, json_pack("{s:i, s:o, s:s, s:o, "
	    "s:o, s:I, s:b, s:b}", "id", (int)info->id,
	    "user", str_or_null(info->user), "address", info->addr,
	    "client_id", str_or_null(info->client_id),
	    "mailbox", str_or_null(info->mailbox),
	    "started", (json_int_t)info->started, "tls", info->tls,
	    "idle", info->idling));
}

json_t *
gateway_sessions_json(struct gateway *gw, const char *user)
{
	struct sessions_ctx sc = { user, json_array() };

	if (gw->imap != NULL)
		imap_server_foreach_session(gw->imap, session_one, &sc);
	return sc.array;
}

void
gateway_close_user_sessions(struct gateway *gw, const char *user)
{
	unsigned n;

	if (gw->imap == NULL)
		return;
	n = imap_server_kick_user(gw->imap, user, "user deleted");
	if (n > 0)
		log_info("imap event=sessions-closed count=%u", n);
}

int
listeners_http_bind(struct evhttp *http, const struct config_listen *l,
    size_t count, const char *section, const char *component,
    const char *extra, int *port_r, char *errbuf, size_t errsize)
{
	for (size_t i = 0; i < count; i++) {
		const char *host = strcmp(l[i].host, "*") == 0 ? "0.0.0.0" :
		    l[i].host;
		struct evhttp_bound_socket *bs;
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char q[LOG_QUOTE_MAX];

		bs = evhttp_bind_socket_with_handle(http, host,
		    (ev_uint16_t)atoi(l[i].port));
		if (bs == NULL) {
			snprintf(errbuf, errsize, "[%s] listen %s:%s: cannot "
			    "bind (in use, or not an address of this "
			    "machine)", section, l[i].host, l[i].port);
			return -1;
		}
		if (getsockname(evhttp_bound_socket_get_fd(bs),
		    (struct sockaddr *)&ss, &len) == 0)
			*port_r = ntohs(ss.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&ss)->sin6_port :
			    ((struct sockaddr_in *)&ss)->sin_port);
		log_info("%s event=listening addr=%s port=%d%s", component,
		    log_quote(q, sizeof(q), host), *port_r, extra);
	}
	return 0;
}
