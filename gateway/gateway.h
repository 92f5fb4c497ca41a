/*
 * gateway — the composition root's shared context: the configuration, the
 * event loop, the store, the secret key, the control socket, counters.
 *
 * One struct gateway per daemon, created by popgated's main() and passed
 * to every part (never a global). commands.c implements the control
 * socket's commands on top of it; accounts.c keeps users' upstream-account
 * records in the store.
 */
#ifndef POPGATE_GATEWAY_GATEWAY_H
#define POPGATE_GATEWAY_GATEWAY_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "gateway/config.h"
#include "gateway/control.h"

struct store;
struct secret_key;
struct upstreams;
struct import;
struct reindex;
struct imap_server;
struct passthrough;
struct workq;
struct evnotify;
struct metrics;
struct metric;
struct prometheus;
struct backup;
struct user_move;
struct auth_http;
struct web;

/*
 * The metrics of the thread model, exported by the metrics endpoint from
 * the start (reading zero until something feeds them). Each may be
 * updated from any thread, lock-free (lib/metrics.h):
 *
 *   metric_observe(gw->core_metrics.commit_seconds, seconds);
 *   metric_observe(gw->core_metrics.commit_batch, changes);
 *   metric_gauge_add(gw->core_metrics.queue_depth, +1 / -1);
 *
 * The store's writer thread feeds the first two per durable commit, the
 * work queue the third as jobs are queued and taken.
 */
struct gateway_core_metrics {
	struct metric *commit_seconds;	/* histogram: one commit's latency */
	struct metric *commit_batch;	/* histogram: changes per commit */
	struct metric *queue_depth;	/* gauge: jobs waiting for a worker */
};

/* Counters since start, reported by the stats command. */
struct gateway_stats {
	uint64_t control_requests;
	uint64_t control_errors;
	uint64_t users_added;
	uint64_t users_deleted;
	uint64_t accounts_added;
	uint64_t accounts_deleted;
	uint64_t polls_requested;
	uint64_t reloads;
	uint64_t reload_failures;
	uint64_t passthrough_ok;
	uint64_t passthrough_failed;
};

struct gateway {
	struct event_base *base;
	char *config_path;
	struct config *config;		/* current; replaced on reload */
	struct store *store;
	struct secret_key *key;
	struct control *control;
	struct upstreams *upstreams;	/* the upstream plug-in point */
	struct import *import;		/* the running or last import */
	struct reindex *reindex;	/* the running or last reindex */
	struct imap_server *imap;	/* NULL: no IMAP listeners */
	struct passthrough *passthrough;	/* checks in progress */
	/* The thread model (docs/threads.md): heavy jobs go to the worker
	   pool, store writes to the store's writer thread; both hand their
	   results back to this loop through these wake-ups. */
	struct workq *workq;
	struct evnotify *workq_wake;
	struct evnotify *writer_wake;
	bool imap_stopped;		/* shutdown: sessions gone */
	bool upstreams_stopped;		/* shutdown: polls stopped */
	struct event *sig_term, *sig_int, *sig_hup;
	time_t started;
	bool shutting_down;
	bool foreground;		/* -f: log to stderr */
	struct gateway_stats stats;
	struct metrics *metrics;	/* the registry (prometheus.c) */
	struct prometheus *prom;	/* its counters and endpoint */
	struct gateway_core_metrics core_metrics;
	struct backup *backup;		/* the running or last backup */
	struct user_move *user_move;	/* the running or last user export
					   or import (user-move.h) */
	struct auth_http *auth_http;	/* nginx's auth_http (auth-http.h) */
	struct web *web;		/* the web page (web.h), or NULL */
};

/* Starts a graceful shutdown (as SIGTERM does). */
void gateway_shutdown(struct gateway *gw, const char *why);
/* Leaves the event loop once IMAP and the upstreams have stopped. */
void gateway_maybe_exit(struct gateway *gw);
/* Re-reads the configuration and certificates (as SIGHUP does). On -1
 * the running configuration is kept and *error_r says why. */
int gateway_reload(struct gateway *gw, char *errbuf, size_t errsize);

/* Brings a store made by an older popgated up to date at start-up (now:
 * INBOX and the special-use folders subscribed, once, for users who
 * have no subscription at all; user names given their canonical form,
 * username.h, under fold_user_names, where no other user has that form:
 * names that collide are logged as errors, one line per name, and left
 * as they are, never merged). Runs before the writer starts. 0, or -1
 * with a message in err; *collisions_r (may be NULL): names that
 * collide. */
int gateway_store_upgrade(struct store *store, bool fold_user_names,
    unsigned *collisions_r, char *err, size_t errsize);
/* Hashes password (on the loop: see pwhash.h to hash on a worker) and
 * creates the user with the default folders. */
int gateway_user_create(struct gateway *gw, const char *user,
    const char *password, uint32_t *id_r, struct ctl_error *err);
/* The same with the password's encoded hash made already. */
int gateway_user_create_hashed(struct gateway *gw, const char *user,
    const char *hash, uint32_t *id_r, struct ctl_error *err);
/* Creates an upstream account from a validated account.add request (the
 * configured defaults fill what it leaves out) and hands it to the
 * poller; sets req's "account" to the name used. */
int gateway_account_add(struct gateway *gw, json_t *req,
    struct ctl_error *err);
/* Loads the account a request names ("user", "account"); on failure
 * replies to client (unknown-user, unknown-account, store-error) and
 * returns -1. account_clear() a_r after 0. */
struct account;
int gateway_load_account(struct gateway *gw, struct control_client *client,
    json_t *req, struct account *a_r);
/* Closes a user's IMAP sessions (user deleted). */
void gateway_close_user_sessions(struct gateway *gw, const char *user);
/* The IMAP sessions (of one user, or all) as a JSON array (listeners.c). */
json_t *gateway_sessions_json(struct gateway *gw, const char *user);
/* Adds the IMAP and upstream counters to a stats object. */
void gateway_stats_add(struct gateway *gw, json_t *stats);

/* The control socket's request handler (commands.c). */
void commands_handle(void *ctx, struct control_client *client,
    const struct ctl_command *cmd, json_t *req);

#endif
