/*
 * upstreams — see upstreams.h. The POP3 poller (pop3-upstream/) is the one
 * implementation behind the upstream interface today; this file maps the
 * gateway's account records onto struct upstream_account, opening the
 * sealed password only to hand it over (the poller keeps it in memory).
 *
 * Upstream ids are "u<USER_ID>:<ACCOUNT>" so accounts of different users
 * may share a name; the poller's ledger entries are kept under that id
 * within the user.
 */
#include "upstreams.h"

#include <event2/dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "gateway/history.h"
#include "gateway/prometheus.h"
#include "gateway/oauth.h"
#include "gateway/secret.h"
#include "log.h"
#include "pop3-upstream/pop3-poller.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "xmalloc.h"

/* The gateway's enums are the upstream interface's, value for value. */
_Static_assert((int)CONFIG_TLS_POP3S == (int)UPSTREAM_TLS_POP3S &&
    (int)CONFIG_TLS_STLS == (int)UPSTREAM_TLS_STLS &&
    (int)CONFIG_TLS_NONE == (int)UPSTREAM_TLS_NONE, "tls enums differ");
_Static_assert((int)CONFIG_MODE_KEEP == (int)UPSTREAM_MODE_KEEP &&
    (int)CONFIG_MODE_DELETE == (int)UPSTREAM_MODE_DELETE &&
    (int)CONFIG_MODE_DELETE_AFTER == (int)UPSTREAM_MODE_DELETE_AFTER &&
    (int)CONFIG_MODE_MIRROR == (int)UPSTREAM_MODE_MIRROR,
    "mode enums differ");

struct upstreams {
	struct gateway *gw;
	struct evdns_base *dns;
	struct pop3_client_env env;
	struct upstream *u;
	struct oauth *oauth;
	bool started;
};

static void oauth_changed(void *arg, uint32_t user_id, const char *user,
    const char *name);
static void poll_hook(void *arg, const char *id,
    const struct pop3_result *res);

static void
upstream_id(char *buf, size_t size, uint32_t user_id, const char *name)
{
	snprintf(buf, size, "u%u:%s", user_id, name);
}

/* The inverse of upstream_id; -1 for an id not made by it. */
static int
parse_upstream_id(const char *id, uint32_t *user_id_r, const char **name_r)
{
	unsigned long uid;
	char *end;

	if (id[0] != 'u')
		return -1;
	uid = strtoul(id + 1, &end, 10);
	if (end == id + 1 || *end != ':' || uid > UINT32_MAX)
		return -1;
	*user_id_r = (uint32_t)uid;
	*name_r = end + 1;
	return 0;
}

/*
 * Every finished poll: its line in the account's history (kept in the
 * store, so the totals and the last success survive a restart) and the
 * metrics' poll counters.
 */
static void poll_hook(void *arg, const char *id,
    const struct pop3_result *res);

static void
poll_done(void *arg, const char *id, const struct pop3_result *res)
{
	struct upstreams *ups = arg;
	struct upstream_status st;
	struct history_poll hp;
	const char *name, *error = NULL;
	uint32_t user_id;

	poll_hook(arg, id, res);	/* OAuth: a refused token */
	gateway_metrics_poll_done(ups->gw, pop3_outcome_name(res->outcome),
	    res->fetched, res->fetched_bytes);
	if (parse_upstream_id(id, &user_id, &name) < 0 ||
	    ups->u->ops->status(ups->u, id, &st, &error) < 0)
		return;
	memset(&hp, 0, sizeof(hp));
	hp.started = st.last_poll;
	hp.ended = time(NULL);
	hp.outcome = pop3_outcome_name(res->outcome);
	hp.fetched = res->fetched;
	hp.bytes = res->fetched_bytes;
	hp.deleted = res->deleted;
	hp.skipped = res->skipped;
	hp.error = res->error;
	if (history_record(ups->gw->store, user_id, name, &hp, &error) < 0)
		log_warn("upstreams account=%s event=history-not-kept "
		    "error=\"%s\"", id, error != NULL ? error : "?");
}

struct upstreams *
upstreams_new(struct gateway *gw)
{
	struct upstreams *ups = xcalloc(1, sizeof(*ups));
	struct pop3_poller_options opts;

	ups->gw = gw;
	ups->dns = evdns_base_new(gw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (ups->dns == NULL)
		log_warn("upstreams event=no-dns reason=\"no resolver "
		    "configured; numeric hosts only\"");
	ups->env.base = gw->base;
	ups->env.dns = ups->dns;
	ups->env.store = gw->store;
	ups->env.workq = gw->workq;
	memset(&opts, 0, sizeof(opts));
	opts.host_max_conns = gw->config->upstream_per_host;
	ups->u = pop3_upstream_new(&ups->env, &opts);
	pop3_upstream_set_poll_hook(ups->u, poll_done, ups);
	ups->oauth = oauth_new(gw, oauth_changed, ups);
	return ups;
}

struct oauth *
upstreams_oauth(struct upstreams *ups)
{
	return ups != NULL ? ups->oauth : NULL;
}

/* Has the user been moved to another node (popgatectl user export)? Its
 * accounts are polled there, never here again. */
static bool
user_moved(struct store *store, uint32_t user_id)
{
	struct store_read *r = NULL;
	const char *error;
	const void *v;
	size_t n;
	bool moved = false;

	if (store_read_begin(store, &r, &error) == 0) {
		moved = store_user_meta_get(r, user_id, STORE_META_MOVED, &v,
		    &n, &error) == 0;
		store_read_end(&r);
	}
	return moved;
}

/* Hands one account to the poller (or takes it away when disabled, or
   when an OAuth account has no token to use). from_oauth: called back by
   the token manager, which must not be told to forget the account then. */
static void
set_account(struct upstreams *ups, const struct account *a, bool from_oauth)
{
	const struct config *c = ups->gw->config;
	struct upstream_account ua;
	char id[UPSTREAM_ID_MAX + 16];
	char *password = NULL;
	const char *error = NULL;
	unsigned int ms = c->upstream.timeout * 1000u;

	upstream_id(id, sizeof(id), a->user_id, a->name);
	if (!a->enabled || user_moved(ups->gw->store, a->user_id)) {
		(void)ups->u->ops->account_remove(ups->u, id, &error);
		if (!from_oauth)
			oauth_forget(ups->oauth, a->user_id, a->name);
		return;
	}
	if (account_is_oauth(a)) {
		/* the access token (memory only) stands in for the password;
		   none yet or any more: the account is not polled, and
		   status says why (oauth_status_json) */
		const char *token = oauth_access_token(ups->oauth, a);

		if (token == NULL) {
			(void)ups->u->ops->account_remove(ups->u, id, &error);
			return;
		}
		password = xstrdup(token);
	} else {
		/* not (or no longer) OAuth: no token to keep fresh */
		if (!from_oauth)
			oauth_forget(ups->oauth, a->user_id, a->name);
		if (account_open_password(a, ups->gw->key, &password,
		    &error) < 0) {
			log_error("upstreams account=%s "
			    "event=password-unreadable error=\"%s\"", id,
			    error);
			return;
		}
	}
	memset(&ua, 0, sizeof(ua));
	ua.id = id;
	ua.user_id = a->user_id;
	ua.mailbox = a->folder;
	ua.host = a->host;
	ua.port = a->port;
	ua.tls = (enum upstream_tls)a->tls;
	/* the account's own CA file, else the default one; read from the
	   current configuration each time, so a reload applies */
	ua.ca_file = a->ca_file != NULL ? a->ca_file : c->upstream.ca_file;
	ua.ca_only = a->ca_file != NULL ? a->ca_only : c->upstream.ca_only;
	ua.fingerprint = a->fingerprint;
	ua.allow_cleartext = a->allow_cleartext;
	if (upstream_auth_parse(a->auth, &ua.auth) < 0)
		ua.auth = UPSTREAM_AUTH_AUTO;
	ua.login = a->login;
	ua.password = password;
	ua.mode = (enum upstream_mode)a->mode;
	ua.delete_after_days = a->delete_after_days;
	ua.interval_secs = a->interval;
	ua.size_limit = a->size_limit;
	ua.timeouts.connect_ms = ms;
	ua.timeouts.tls_ms = ms;
	ua.timeouts.greeting_ms = ms;
	ua.timeouts.command_ms = ms;
	ua.timeouts.stall_ms = ms;
	ua.timeouts.poll_ms = c->upstream.poll_deadline * 1000u;
	ua.timeouts.retr_min_rate = c->upstream.retr_min_rate;
	if (ups->u->ops->account_set(ups->u, &ua, &error) < 0)
		log_error("upstreams account=%s event=rejected error=\"%s\"",
		    id, error);
	if (account_is_oauth(a)) {
		secure_zero(password, strlen(password));
		free(password);
	} else {
		secret_free_plain(password);
	}
}

/* The token manager has a new token for an account, or none any more. */
static void
oauth_changed(void *arg, uint32_t user_id, const char *user,
    const char *name)
{
	struct upstreams *ups = arg;
	struct store_read *r = NULL;
	struct account a;
	const char *error = NULL;
	char id[UPSTREAM_ID_MAX + 16];

	if (store_read_begin(ups->gw->store, &r, &error) < 0) {
		log_error("upstreams event=read-failed error=\"%s\"", error);
		return;
	}
	if (accounts_get(r, user_id, user, name, &a, &error) == 0) {
		store_read_end(&r);
		set_account(ups, &a, true);
		account_clear(&a);
		return;
	}
	store_read_end(&r);
	upstream_id(id, sizeof(id), user_id, name);
	(void)ups->u->ops->account_remove(ups->u, id, &error);
}

/* After each poll: a token the POP3 server refused is refreshed at once
   (revoked early? then the provider says invalid_grant). */
static void
poll_hook(void *arg, const char *id, const struct pop3_result *res)
{
	struct upstreams *ups = arg;
	unsigned int uid;
	int n = 0;

	if (res->outcome != POP3_OUTCOME_AUTH ||
	    sscanf(id, "u%u:%n", &uid, &n) != 1 || n == 0)
		return;
	oauth_token_rejected(ups->oauth, uid, id + n);
}

static int
start_account(void *arg, const struct account *a)
{
	set_account(arg, a, false);
	return 0;
}

struct start_ctx {
	struct upstreams *ups;
	struct store_read *r;
};

static int
start_user(void *arg, const struct store_user_info *info)
{
	struct start_ctx *sc = arg;
	const char *error;

	accounts_foreach(sc->r, info->id, info->name, start_account, sc->ups,
	    &error);
	return 0;
}

/* Hands every account in the store to the poller. */
static int
set_all(struct upstreams *ups, const char **error_r)
{
	struct start_ctx sc = { ups, NULL };

	if (store_read_begin(ups->gw->store, &sc.r, error_r) < 0)
		return -1;
	if (store_user_foreach(sc.r, start_user, &sc, error_r) < 0) {
		store_read_end(&sc.r);
		return -1;
	}
	store_read_end(&sc.r);
	return 0;
}

int
upstreams_start(struct upstreams *ups, const char **error_r)
{
	if (set_all(ups, error_r) < 0)
		return -1;
	if (ups->u->ops->start(ups->u, error_r) < 0)
		return -1;
	ups->started = true;
	return 0;
}

void
upstreams_stop(struct upstreams *ups, void (*done)(void *arg), void *arg)
{
	/* A poll that has sent DELEs (after its durable commit) ends with
	   QUIT, bounded by a few seconds, so they are applied now; any
	   other poll is closed at once (nothing of it deleted). Every
	   delivery already committed stays. */
	/* no more token requests; sign-ins waiting are answered */
	if (ups != NULL)
		oauth_stop(ups->oauth);
	if (ups != NULL && ups->u != NULL &&
	    ups->u->ops->stop_graceful != NULL) {
		ups->u->ops->stop_graceful(ups->u, done, arg);
		return;
	}
	if (ups != NULL && ups->u != NULL)
		ups->u->ops->stop(ups->u);
	done(arg);
}

void
upstreams_free(struct upstreams **upsp)
{
	struct upstreams *ups = *upsp;

	if (ups == NULL)
		return;
	if (ups->u != NULL)
		ups->u->ops->free(&ups->u);
	oauth_free(&ups->oauth);
	if (ups->dns != NULL)
		evdns_base_free(ups->dns, 0);
	free(ups);
	*upsp = NULL;
}

struct evdns_base *
upstreams_dns(struct upstreams *ups)
{
	return ups->dns;
}

bool
upstreams_available(const struct upstreams *ups)
{
	return ups != NULL && ups->u != NULL;
}

void
upstreams_update(struct upstreams *ups, const struct account *a)
{
	set_account(ups, a, false);
}

int
upstreams_reload(struct upstreams *ups, const char **error_r)
{
	/* every account again with the new defaults: the poller leaves
	   alone those whose configuration is the same (upstream_account_
	   compare), so only accounts whose trust or timeouts changed are
	   re-polled */
	return set_all(ups, error_r);
}

void
upstreams_remove(struct upstreams *ups, uint32_t user_id, const char *name)
{
	char id[UPSTREAM_ID_MAX + 16];
	const char *error;

	upstream_id(id, sizeof(id), user_id, name);
	(void)ups->u->ops->account_remove(ups->u, id, &error);
	oauth_forget(ups->oauth, user_id, name);
}

struct remove_user_ctx {
	char prefix[16];
	char ids[64][UPSTREAM_ID_MAX + 1];
	size_t count;
	bool more;
};

static void
collect_user(void *arg, const struct upstream_status *st)
{
	struct remove_user_ctx *rc = arg;

	if (strncmp(st->id, rc->prefix, strlen(rc->prefix)) != 0)
		return;
	if (rc->count == N_ELEMENTS(rc->ids)) {
		rc->more = true;
		return;
	}
	memcpy(rc->ids[rc->count++], st->id, sizeof(st->id));
}

void
upstreams_remove_user(struct upstreams *ups, uint32_t user_id)
{
	struct remove_user_ctx *rc = xcalloc(1, sizeof(*rc));
	const char *error;

	snprintf(rc->prefix, sizeof(rc->prefix), "u%u:", user_id);
	oauth_forget_user(ups->oauth, user_id);
	do {
		rc->count = 0;
		rc->more = false;
		ups->u->ops->status_foreach(ups->u, collect_user, rc);
		for (size_t i = 0; i < rc->count; i++)
			(void)ups->u->ops->account_remove(ups->u, rc->ids[i],
			    &error);
	} while (rc->more);
	free(rc);
}

struct poll_ctx {
	struct upstreams *ups;
	char prefix[16];
	unsigned int started;
	unsigned int queued;
};

/* Asks for a poll of id; counts it as started, or as queued when the
   account is being polled (another poll follows that one). */
static void
poll_one_id(struct poll_ctx *pc, const char *id)
{
	struct upstream *u = pc->ups->u;
	struct upstream_status st;
	const char *error;

	if (u->ops->status(u, id, &st, &error) != 0)
		return;
	/* an explicit poll also reopens an auth circuit breaker (resume
	   polls); any other account is polled now, or right after the
	   poll it is in */
	if (st.state == UPSTREAM_STATE_AUTH_FAILED ||
	    st.state == UPSTREAM_STATE_STORE_ERROR) {
		if (u->ops->resume(u, id, &error) == 0)
			pc->started++;
		return;
	}
	if (u->ops->poll_now(u, id, &error) != 0)
		return;
	if (u->ops->status(u, id, &st, &error) == 0 && st.poll_queued)
		pc->queued++;
	else
		pc->started++;
}

static void
poll_matching(void *arg, const struct upstream_status *st)
{
	struct poll_ctx *pc = arg;

	if (strncmp(st->id, pc->prefix, strlen(pc->prefix)) != 0)
		return;
	poll_one_id(pc, st->id);
}

unsigned int
upstreams_poll_now(struct upstreams *ups, bool one_user, uint32_t user_id,
    const char *name, unsigned int *queued_r)
{
	struct poll_ctx pc = { ups, "", 0, 0 };
	char id[UPSTREAM_ID_MAX + 16];

	/* OAuth accounts waiting out a failed refresh (provider down) are
	   not in the poller: an explicit poll retries the refresh now */
	pc.started = oauth_poll_now(ups->oauth, one_user, user_id, name);
	if (name != NULL) {
		upstream_id(id, sizeof(id), user_id, name);
		poll_one_id(&pc, id);
	} else {
		if (one_user)
			snprintf(pc.prefix, sizeof(pc.prefix), "u%u:",
			    user_id);
		/* status_foreach must not see the table change under it:
		   poll_now only schedules, it does not add or remove
		   accounts. */
		ups->u->ops->status_foreach(ups->u, poll_matching, &pc);
	}
	*queued_r = pc.queued;
	return pc.started;
}

static json_t *
time_or_null(time_t t)
{
	return t == 0 ? json_null() : json_integer((json_int_t)t);
}

json_t *
upstreams_status_json(struct upstreams *ups, const struct account *a)
{
	struct upstream_status st;
	char id[UPSTREAM_ID_MAX + 16];
	const char *error;
	json_t *j;

	json_t *oauth = NULL;
	const char *oauth_state = NULL;

	if (!a->enabled)
		return json_pack("{s:s}", "state", "disabled");
	if (account_is_oauth(a)) {
		oauth = oauth_status_json(ups->oauth, a, &oauth_state);
		if (oauth_state != NULL) {
			/* no token to poll with: the sign-in state is the
			   account's state */
			j = json_pack("{s:s, s:o, s:o, s:s}", "state",
			    oauth_state, "last_error",
			    json_deep_copy(json_object_get(oauth, "error")),
			    "oauth", oauth, "kind", ups->u->ops->kind);
			return j;
		}
	}
	upstream_id(id, sizeof(id), a->user_id, a->name);
	if (ups->u->ops->status(ups->u, id, &st, &error) != 0) {
		json_decref(oauth);
		return json_pack("{s:s, s:s}", "state", "unknown", "error",
		    error != NULL ? error : "not known to the poller");
	}
	j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:i, s:I, s:I, s:I, "
	    "s:I, s:s}",
	    "state", upstream_state_name(st.state),
	    "last_poll", time_or_null(st.last_poll),
	    "last_success", time_or_null(st.last_success),
	    "next_poll", time_or_null(st.next_poll),
	    "last_error", st.last_error[0] != '\0' ?
	    json_string(st.last_error) : json_null(),
	    "uidl_strategy", st.uidl_strategy,
	    "consecutive_failures", (int)st.consecutive_failures,
	    "messages_fetched", (json_int_t)st.messages_fetched,
	    "bytes_fetched", (json_int_t)st.bytes_fetched,
	    "messages_deleted", (json_int_t)st.messages_deleted,
	    "messages_skipped", (json_int_t)st.messages_skipped,
	    "kind", ups->u->ops->kind);
	json_object_set_new(j, "poll_queued", json_boolean(st.poll_queued));
	json_object_set_new(j, "import", json_pack("{s:i, s:i, s:I, s:f}",
	    "done", (int)st.import_done, "total", (int)st.import_total,
	    "bytes", (json_int_t)st.import_bytes, "rate", st.import_rate));
	if (oauth != NULL)
		json_object_set_new(j, "oauth", oauth);
	return j;
}

struct stats_ctx {
	uint64_t accounts, polling, failing, fetched, bytes, deleted;
};

static void
stats_one(void *arg, const struct upstream_status *st)
{
	struct stats_ctx *sc = arg;

	sc->accounts++;
	if (st->state == UPSTREAM_STATE_POLLING)
		sc->polling++;
	if (st->state == UPSTREAM_STATE_BACKOFF ||
	    st->state == UPSTREAM_STATE_AUTH_FAILED ||
	    st->state == UPSTREAM_STATE_STORE_ERROR)
		sc->failing++;
	sc->fetched += st->messages_fetched;
	sc->bytes += st->bytes_fetched;
	sc->deleted += st->messages_deleted;
}

void
upstreams_foreach_status(struct upstreams *ups,
    void (*cb)(void *arg, const struct upstream_status *st), void *arg)
{
	if (ups != NULL && ups->u != NULL)
		ups->u->ops->status_foreach(ups->u, cb, arg);
}

void
upstreams_stats_add(struct upstreams *ups, json_t *stats)
{
	struct stats_ctx sc;

	memset(&sc, 0, sizeof(sc));
	ups->u->ops->status_foreach(ups->u, stats_one, &sc);
	json_object_set_new(stats, "upstream", json_pack("{s:I, s:I, s:I, "
	    "s:I, s:I, s:I}", "accounts", (json_int_t)sc.accounts,
	    "polling", (json_int_t)sc.polling,
	    "failing", (json_int_t)sc.failing,
	    "messages_fetched", (json_int_t)sc.fetched,
	    "bytes_fetched", (json_int_t)sc.bytes,
	    "messages_deleted", (json_int_t)sc.deleted));
}
