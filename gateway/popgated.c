/*
 * popgated — the daemon: reads the configuration, opens the store, binds
 * the IMAP listeners and the control socket (as root if started so), drops
 * to the configured user, loads or creates the secret key, starts the
 * upstream poller, and runs one event loop until SIGTERM/SIGINT or a
 * shutdown command. SIGHUP reloads the configuration and certificates.
 *
 *   popgated [-c FILE] [-f] [-t] [--version]
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/auth-http.h"
#include "gateway/about.h"
#include "gateway/config.h"
#include "gateway/control.h"
#include "gateway/gateway.h"
#include "gateway/import.h"
#include "gateway/reindex.h"
#include "gateway/listeners.h"
#include "gateway/backup.h"
#include "gateway/user-move.h"
#include "gateway/passthrough.h"
#include "gateway/prometheus.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "gateway/web.h"
#include "evnotify.h"
#include "log.h"
#include "metrics.h"
#include "store/store.h"
#include "workq.h"
#include "version.h"
#include "xmalloc.h"

#define DEFAULT_CONFIG "/etc/popgate/popgate.conf"

/* Exit codes (sysexits.h values an init system understands). */
#define EXIT_USAGE 64
#define EXIT_CONFIG 78

static void
usage(FILE *f)
{
	fprintf(f, "usage: popgated [-c FILE] [-f] [-t] [--version]\n"
	    "  -c FILE    configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -f         stay in the foreground and log to stderr\n"
	    "  -t         check the configuration (and certificates), print\n"
	    "             the addresses it listens on, and exit\n"
	    "  -V, --version  the version and the libraries in use\n"
	    "  -h, --help this help\n");
}

static gid_t
group_id(const char *name, char *errbuf, size_t errsize)
{
	struct group *gr;

	if (name == NULL)
		return (gid_t)-1;
	gr = getgrnam(name);
	if (gr == NULL) {
		snprintf(errbuf, errsize, "[control] group %s: no such group",
		    name);
		return (gid_t)-2;
	}
	return gr->gr_gid;
}

static struct control_settings
control_settings_of(const struct config *c, gid_t gid)
{
	struct control_settings s;

	s.request_max = c->control_request_max;
	s.max_clients = c->control_clients;
	s.group = gid;
	return s;
}

/* -f logs to stderr whatever the configuration says. */
static void
open_log(const struct gateway *gw, const struct config *c)
{
	if (gw->foreground || c->log_target != LOG_TARGET_SYSLOG)
		log_open("popgated", LOG_TARGET_STDERR,
		    (enum log_level)c->log_level);
	else
		log_open_syslog("popgated", c->syslog_socket,
		    (enum log_level)c->log_level);
}

/* ---- shutdown and reload -------------------------------------------- */

void
gateway_maybe_exit(struct gateway *gw)
{
	if (gw->shutting_down && gw->imap_stopped && gw->upstreams_stopped)
		event_base_loopexit(gw->base, NULL);
}

static void
upstreams_stopped(void *arg)
{
	struct gateway *gw = arg;

	gw->upstreams_stopped = true;
	gateway_maybe_exit(gw);
}

void
gateway_shutdown(struct gateway *gw, const char *why)
{
	if (gw->shutting_down)
		return;
	gw->shutting_down = true;
	log_info("popgated event=shutdown reason=%s", why);
	passthrough_shutdown(gw);
	auth_http_shutdown(gw);
	listeners_shutdown(gw);
	import_abort(gw);
	upstreams_stop(gw->upstreams, upstreams_stopped, gw);
}

int
gateway_reload(struct gateway *gw, char *errbuf, size_t errsize)
{
	struct config *nc = NULL;
	char q[CONFIG_ERROR_MAX + 64];
	gid_t gid;

	if (config_load(gw->config_path, &nc, errbuf, errsize) < 0)
		goto fail;
	gid = group_id(nc->control_group, errbuf, errsize);
	if (gid == (gid_t)-2)
		goto fail;
	if (strcmp(nc->data_dir, gw->config->data_dir) != 0 ||
	    strcmp(nc->control_socket, gw->config->control_socket) != 0)
		log_warn("popgated event=reload note=\"data_dir and the "
		    "control socket path change only on restart\"");
	if (listeners_reload(gw, nc, errbuf, errsize) < 0)
		goto fail;
	if (web_reload(gw, nc, errbuf, errsize) < 0)
		goto fail;
	{
		struct control_settings cs = control_settings_of(nc, gid);

		control_set_settings(gw->control, &cs);
	}
	open_log(gw, nc);
	store_set_default_quota(gw->store, nc->quota);
	config_free(&gw->config);
	gw->config = nc;
	if (upstreams_available(gw->upstreams)) {
		const char *error = NULL;

		/* trust changes apply to existing accounts (issue 16) */
		if (upstreams_reload(gw->upstreams, &error) < 0)
			log_error("popgated event=reload-accounts error=\"%s\"",
			    error);
	}
	gw->stats.reloads++;
	log_info("popgated event=reloaded config=%s", log_quote(q, sizeof(q),
	    gw->config_path));
	return 0;
fail:
	config_free(&nc);
	gw->stats.reload_failures++;
	log_error("popgated event=reload-failed error=%s", log_quote(q,
	    sizeof(q), errbuf));
	return -1;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct gateway *gw = arg;
	char err[CONFIG_ERROR_MAX];

	if (sig == SIGHUP) {
		log_info("popgated event=signal signal=HUP");
		(void)gateway_reload(gw, err, sizeof(err));
		return;
	}
	gateway_shutdown(gw, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

void
gateway_stats_add(struct gateway *gw, json_t *stats)
{
	upstreams_stats_add(gw->upstreams, stats);
	reindex_stats_add(gw, stats);
	listeners_stats_add(gw, stats);
	if (gw->workq != NULL) {
		struct workq_stats ws;

		workq_get_stats(gw->workq, &ws);
		json_object_set_new(stats, "workers", json_pack("{s:i, s:i, "
		    "s:i, s:I, s:I}", "threads", (int)ws.threads, "queued",
		    (int)ws.queued, "running", (int)ws.running, "submitted",
		    (json_int_t)ws.submitted, "completed",
		    (json_int_t)ws.completed));
	}
}

/* ---- threads (docs/threads.md) --------------------------------------- */

static void
workq_drain_cb(void *arg)
{
	struct gateway *gw = arg;

	if (gw->workq != NULL)
		workq_drain(gw->workq);
}

static void
writer_drain_cb(void *arg)
{
	struct gateway *gw = arg;

	store_writer_drain(gw->store);
}

/* Each durable group commit, on the writer thread: the metrics are
 * lock-free atomics (lib/metrics.h). */
static void
observe_commit(void *arg, double seconds, size_t jobs)
{
	struct gateway *gw = arg;

	if (gw->core_metrics.commit_seconds != NULL)
		metric_observe(gw->core_metrics.commit_seconds, seconds);
	if (gw->core_metrics.commit_batch != NULL)
		metric_observe(gw->core_metrics.commit_batch, (double)jobs);
}

static int
threads_start(struct gateway *gw, char *errbuf, size_t errsize)
{
	struct workq_stats st;
	const char *error = NULL;

	gw->workq_wake = evnotify_new(gw->base, workq_drain_cb, gw);
	gw->writer_wake = evnotify_new(gw->base, writer_drain_cb, gw);
	if (store_writer_start(gw->store, evnotify_fire, gw->writer_wake,
	    &error) < 0) {
		snprintf(errbuf, errsize, "%s", error);
		return -1;
	}
	gw->workq = workq_new(gw->config->workers, evnotify_fire,
	    gw->workq_wake);
	workq_get_stats(gw->workq, &st);
	log_info("popgated event=threads workers=%u writer=1", st.threads);
	return 0;
}

/*
 * After the sessions and polls have stopped: the workers first (queued
 * jobs are cancelled, running ones finish; their done callbacks may still
 * queue writes), then the writer, which commits everything queued before
 * it stops. Only then is the store closed.
 */
static void
threads_stop(struct gateway *gw)
{
	workq_free(&gw->workq);
	if (gw->store != NULL) {
		store_writer_set_observer(gw->store, NULL, NULL);
		store_writer_stop(gw->store);
	}
	evnotify_free(&gw->workq_wake);
	evnotify_free(&gw->writer_wake);
}

/* ---- start-up ------------------------------------------------------- */

static int
make_data_dir(const char *dir, char *errbuf, size_t errsize)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(errbuf, errsize, "%s: cannot create: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(errbuf, errsize, "%s: not a directory", dir);
		return -1;
	}
	return 0;
}

/*
 * The [daemon] user, when started as root: *pw_r is filled, else it is
 * left zeroed (no switch). Started as that user already is fine too.
 */
static int
daemon_user(const struct config *c, struct passwd *pw_r, bool *switch_r,
    char *errbuf, size_t errsize)
{
	struct passwd *pw;

	*switch_r = false;
	if (c->user == NULL)
		return 0;
	pw = getpwnam(c->user);
	if (pw == NULL) {
		snprintf(errbuf, errsize, "[daemon] user %s: no such user",
		    c->user);
		return -1;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return 0;
		snprintf(errbuf, errsize, "[daemon] user %s: started as uid "
		    "%u, not root; cannot switch", c->user,
		    (unsigned)geteuid());
		return -1;
	}
	*pw_r = *pw;
	pw_r->pw_name = xstrdup(pw->pw_name);
	*switch_r = true;
	return 0;
}

/* Runs as the daemon user for a while (creating its files) or back. */
static int
become(const struct passwd *pw, bool user, char *errbuf, size_t errsize)
{
	if (user) {
		if (setegid(pw->pw_gid) < 0 || seteuid(pw->pw_uid) < 0)
			goto fail;
	} else {
		if (seteuid(0) < 0 || setegid(0) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(errbuf, errsize, "switching effective user: %s",
	    strerror(errno));
	return -1;
}

/* Hands the socket to the daemon user, then gives up root for good. */
static int
drop_privileges(const struct config *c, const struct passwd *pw,
    char *errbuf, size_t errsize)
{
	if (chown(c->control_socket, pw->pw_uid, (gid_t)-1) < 0) {
		snprintf(errbuf, errsize, "chown to %s: %s", c->user,
		    strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(errbuf, errsize, "switching to %s: %s", c->user,
		    strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(errbuf, errsize, "privileges could be regained "
		    "after switching to %s", c->user);
		return -1;
	}
	char q[LOG_QUOTE_MAX];

	log_info("popgated event=privileges-dropped user=%s uid=%u",
	    log_quote(q, sizeof(q), pw->pw_name), (unsigned)pw->pw_uid);
	return 0;
}

/* What -t says the daemon will listen on (make run's banner reads it). */
static void
print_listeners(const struct config *c)
{
	static const struct {
		const char *what;
		size_t off, count_off;
	} kinds[] = {
		{ "imap", offsetof(struct config, listen),
		  offsetof(struct config, listen_count) },
		{ "imaps", offsetof(struct config, listen_tls),
		  offsetof(struct config, listen_tls_count) },
		{ "metrics", offsetof(struct config, metrics_listen),
		  offsetof(struct config, metrics_listen_count) },
		{ "imap-proxy", offsetof(struct config, proxy_listen),
		  offsetof(struct config, proxy_listen_count) },
		{ "auth-http", offsetof(struct config, cluster_auth_listen),
		  offsetof(struct config, cluster_auth_listen_count) },
	};

	for (size_t k = 0; k < N_ELEMENTS(kinds); k++) {
		const struct config_listen *l = (const void *)
		    ((const char *)c + kinds[k].off);
		size_t n = *(const size_t *)((const char *)c +
		    kinds[k].count_off);

		if (k == 2 && !c->metrics_enabled)
			n = 0;
		for (size_t i = 0; i < n; i++)
			printf("listen %s %s%s%s:%s%s\n", kinds[k].what,
			    strchr(l[i].host, ':') != NULL ? "[" : "",
			    l[i].host, strchr(l[i].host, ':') != NULL ?
			    "]" : "", l[i].port, k == 2 ? "/metrics" : "");
	}
	for (size_t i = 0; c->web_enabled && i < c->web_listen_count; i++)
		printf("listen web https://%s%s%s:%s/\n",
		    strchr(c->web_listen[i].host, ':') != NULL ? "[" : "",
		    c->web_listen[i].host, strchr(c->web_listen[i].host, ':') !=
		    NULL ? "]" : "", c->web_listen[i].port);
	printf("control %s\n", c->control_socket);
	printf("data_dir %s\n", c->data_dir);
}

static int
check_only(const struct config *c)
{
	char err[CONFIG_ERROR_MAX];

	if (listeners_check_tls(c, err, sizeof(err)) < 0) {
		fprintf(stderr, "popgated: %s\n", err);
		return EXIT_CONFIG;
	}
	if (c->control_group != NULL &&
	    group_id(c->control_group, err, sizeof(err)) == (gid_t)-2) {
		fprintf(stderr, "popgated: %s: %s\n", c->path, err);
		return EXIT_CONFIG;
	}
	if (c->user != NULL && getpwnam(c->user) == NULL) {
		fprintf(stderr, "popgated: %s: [daemon] user %s: no such "
		    "user\n", c->path, c->user);
		return EXIT_CONFIG;
	}
	printf("popgated: configuration %s is valid\n", c->path);
	print_listeners(c);
	return 0;
}

int
main(int argc, char **argv)
{
	struct gateway gw;
	const char *path = DEFAULT_CONFIG;
	bool test = false;
	char err[CONFIG_ERROR_MAX];
	char q[CONFIG_ERROR_MAX + 64];
	const char *error = NULL;
	struct store_options sopts;
	bool key_created = false, switch_user = false;
	struct passwd pw;
	int opt, ctl_fd = -1, ret = 1;
	gid_t gid;

	/* A core file would hold the secret key and decrypted upstream
	 * passwords: forbid one, hard limit included, before reading any. */
	{
		const struct rlimit nocore = { 0, 0 };

		(void)setrlimit(RLIMIT_CORE, &nocore);
	}
	/* before any jansson use: passwords live in its strings */
	ctl_json_wipe_on_free();
	memset(&gw, 0, sizeof(gw));
	memset(&pw, 0, sizeof(pw));
	static const struct option longopts[] = {
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "c:fthV", longopts,
	    NULL)) != -1) {
		switch (opt) {
		case 'V':
			about_print_version(stdout, "popgated");
			return 0;
		case 'c':
			path = optarg;
			break;
		case 'f':
			gw.foreground = true;
			break;
		case 't':
			test = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (config_load(path, &gw.config, err, sizeof(err)) < 0) {
		fprintf(stderr, "popgated: %s\n", err);
		return EXIT_CONFIG;
	}
	if (test) {
		ret = check_only(gw.config);
		config_free(&gw.config);
		return ret;
	}
	gw.config_path = xstrdup(path);
	open_log(&gw, gw.config);
	signal(SIGPIPE, SIG_IGN);
	gw.started = time(NULL);

	gid = group_id(gw.config->control_group, err, sizeof(err));
	if (gid == (gid_t)-2)
		goto fail;
	if (daemon_user(gw.config, &pw, &switch_user, err, sizeof(err)) < 0)
		goto fail;
	if (make_data_dir(gw.config->data_dir, err, sizeof(err)) < 0)
		goto fail;
	if (switch_user && chown(gw.config->data_dir, pw.pw_uid,
	    pw.pw_gid) < 0) {
		snprintf(err, sizeof(err), "%s: chown to %s: %s",
		    gw.config->data_dir, pw.pw_name, strerror(errno));
		goto fail;
	}
	/* Worker threads and the writer wake the loop with event_active():
	   libevent's locking must be on before the base exists. */
	PG_ASSERT(evthread_use_pthreads() == 0);
	gw.base = event_base_new();
	PG_ASSERT(gw.base != NULL);

	/* The key and the store are created as the daemon user, so their
	   files belong to it. */
	if (switch_user && become(&pw, true, err, sizeof(err)) < 0)
		goto fail;
	if (secret_key_load_or_create(gw.config->secret_key_file, &gw.key,
	    &key_created, err, sizeof(err)) < 0)
		goto fail;
	if (key_created)
		log_info("popgated event=secret-key-created path=%s",
		    log_quote(q, sizeof(q), gw.config->secret_key_file));
	memset(&sopts, 0, sizeof(sopts));
	sopts.map_size = (size_t)gw.config->map_size;
	sopts.no_fts_index = !gw.config->search_index;
	sopts.map_max = gw.config->map_max;
	if (store_open(gw.config->data_dir, &sopts, &gw.store, &error) < 0) {
		snprintf(err, sizeof(err), "store %s: %s",
		    gw.config->data_dir, error);
		goto fail;
	}
	if (gateway_store_upgrade(gw.store, gw.config->fold_user_names, NULL,
	    err, sizeof(err)) < 0)
		goto fail;
	if (listeners_prepare_spool(&gw, err, sizeof(err)) < 0)
		goto fail;
	store_set_default_quota(gw.store, gw.config->quota);
	if (switch_user && become(&pw, false, err, sizeof(err)) < 0)
		goto fail;
	/* jansson seeds its hash function at the first object: do it
	   before any other thread may make one */
	json_object_seed(0);
	if (threads_start(&gw, err, sizeof(err)) < 0)
		goto fail;
	prometheus_new(&gw);
	store_writer_set_observer(gw.store, observe_commit, &gw);

	/* Everything that may need root: ports, the socket. */
	if (control_socket_open(gw.config->control_socket,
	    gw.config->control_mode, gid, &ctl_fd, err, sizeof(err)) < 0)
		goto fail;
	if (gid != (gid_t)-1) {
		char why[256], q1[LOG_QUOTE_MAX], q2[300];

		/* issue 18: the group would get "Permission denied" */
		if (!control_socket_dir_reachable(gw.config->control_socket,
		    gid, why, sizeof(why)))
			log_warn("control event=control-unreachable group=%s "
			    "reason=%s action=\"give the directory to the "
			    "group (chgrp GROUP DIR; chmod g+x DIR)\"",
			    log_quote(q1, sizeof(q1), gw.config->control_group),
			    log_quote(q2, sizeof(q2), why));
	}
	{
		struct control_settings cs = control_settings_of(gw.config,
		    gid);

		gw.control = control_new(gw.base, ctl_fd,
		    gw.config->control_socket, &cs, commands_handle, &gw);
		control_set_workq(gw.control, gw.workq);
	}
	if (listeners_bind(&gw, err, sizeof(err)) < 0)
		goto fail;
	if (prometheus_listen(&gw, err, sizeof(err)) < 0)
		goto fail;
	if (auth_http_start(&gw, err, sizeof(err)) < 0)
		goto fail;
	if (web_listen(&gw, err, sizeof(err)) < 0)
		goto fail;
	if (switch_user && drop_privileges(gw.config, &pw, err,
	    sizeof(err)) < 0)
		goto fail;

	/* From here on as the daemon user. */
	gw.upstreams = upstreams_new(&gw);
	if (upstreams_start(gw.upstreams, &error) < 0) {
		snprintf(err, sizeof(err), "upstreams: %s", error);
		goto fail;
	}
	if (listeners_start(&gw, err, sizeof(err)) < 0)
		goto fail;

	gw.sig_term = evsignal_new(gw.base, SIGTERM, signal_cb, &gw);
	gw.sig_int = evsignal_new(gw.base, SIGINT, signal_cb, &gw);
	gw.sig_hup = evsignal_new(gw.base, SIGHUP, signal_cb, &gw);
	event_add(gw.sig_term, NULL);
	event_add(gw.sig_int, NULL);
	event_add(gw.sig_hup, NULL);

	{
		char q2[LOG_QUOTE_MAX + 512], q3[LOG_QUOTE_MAX + 512];

		log_info("popgated event=started pid=%d version=%s config=%s "
		    "data_dir=%s control=%s", (int)getpid(),
		    popgate_version(), log_quote(q, sizeof(q),
		    gw.config_path), log_quote(q2, sizeof(q2),
		    gw.config->data_dir), log_quote(q3, sizeof(q3),
		    gw.config->control_socket));
	}
	event_base_dispatch(gw.base);
	log_info("popgated event=stopped");
	ret = 0;
	goto out;
fail:
	log_error("popgated event=start-failed error=%s", log_quote(q,
	    sizeof(q), err));
	if (!gw.foreground || gw.config->log_target != LOG_TARGET_STDERR)
		fprintf(stderr, "popgated: %s\n", err);
	ret = 1;
out:
	if (gw.sig_term != NULL) {
		event_free(gw.sig_term);
		event_free(gw.sig_int);
		event_free(gw.sig_hup);
	}
	/* A second signal must not cut the teardown short (event_free put
	   the default handlers back). */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* the threads first: their last done callbacks still find every
	   part they may report to (docs/threads.md, "Shutdown") */
	threads_stop(&gw);
	web_free(&gw);
	import_free(&gw);
	backup_free(&gw);
	user_move_free(&gw);
	reindex_free(&gw);
	passthrough_free(&gw);
	auth_http_free(&gw);
	listeners_free(&gw);
	upstreams_free(&gw.upstreams);
	prometheus_free(&gw);
	control_free(&gw.control);
	store_close(&gw.store);
	secret_key_free(&gw.key);
	if (gw.base != NULL)
		event_base_free(gw.base);
	config_free(&gw.config);
	free(gw.config_path);
	free(pw.pw_name);
	log_close();
	return ret;
}
