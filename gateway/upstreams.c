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
	bool started;
};

static void
upstream_id(char *buf, size_t size, uint32_t user_id, const char *name)
{
	snprintf(buf, size, "u%u:%s", user_id, name);
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
	return ups;
}

/* Hands one account to the poller (or takes it away when disabled). */
static void
set_account(struct upstreams *ups, const struct account *a)
{
	const struct config *c = ups->gw->config;
	struct upstream_account ua;
	char id[UPSTREAM_ID_MAX + 16];
	char *password = NULL;
	const char *error = NULL;
	unsigned int ms = c->upstream.timeout * 1000u;

	upstream_id(id, sizeof(id), a->user_id, a->name);
	if (!a->enabled) {
		(void)ups->u->ops->account_remove(ups->u, id, &error);
		return;
	}
	if (account_open_password(a, ups->gw->key, &password, &error) < 0) {
		log_error("upstreams account=%s event=password-unreadable "
		    "error=\"%s\"", id, error);
		return;
	}
	memset(&ua, 0, sizeof(ua));
	ua.id = id;
	ua.user_id = a->user_id;
	ua.mailbox = a->folder;
	ua.host = a->host;
	ua.port = a->port;
	ua.tls = (enum upstream_tls)a->tls;
	ua.ca_file = c->upstream.ca_file;
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
	secret_free_plain(password);
}

static int
start_account(void *arg, const struct account *a)
{
	set_account(arg, a);
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

int
upstreams_start(struct upstreams *ups, const char **error_r)
{
	struct start_ctx sc = { ups, NULL };

	if (store_read_begin(ups->gw->store, &sc.r, error_r) < 0)
		return -1;
	if (store_user_foreach(sc.r, start_user, &sc, error_r) < 0) {
		store_read_end(&sc.r);
		return -1;
	}
	store_read_end(&sc.r);
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
	set_account(ups, a);
}

void
upstreams_remove(struct upstreams *ups, uint32_t user_id, const char *name)
{
	char id[UPSTREAM_ID_MAX + 16];
	const char *error;

	upstream_id(id, sizeof(id), user_id, name);
	(void)ups->u->ops->account_remove(ups->u, id, &error);
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
};

static void
poll_matching(void *arg, const struct upstream_status *st)
{
	struct poll_ctx *pc = arg;
	const char *error;

	if (strncmp(st->id, pc->prefix, strlen(pc->prefix)) != 0)
		return;
	/* an explicit poll also reopens an auth circuit breaker */
	(void)pc->ups->u->ops->resume(pc->ups->u, st->id, &error);
	if (pc->ups->u->ops->poll_now(pc->ups->u, st->id, &error) == 0)
		pc->started++;
}

unsigned int
upstreams_poll_now(struct upstreams *ups, bool one_user, uint32_t user_id,
    const char *name)
{
	struct poll_ctx pc = { ups, "", 0 };
	char id[UPSTREAM_ID_MAX + 16];
	const char *error;

	if (name != NULL) {
		upstream_id(id, sizeof(id), user_id, name);
		/* an account whose breaker is open is resumed by an
		   explicit poll */
		(void)ups->u->ops->resume(ups->u, id, &error);
		return ups->u->ops->poll_now(ups->u, id, &error) == 0 ? 1 : 0;
	}
	if (one_user)
		snprintf(pc.prefix, sizeof(pc.prefix), "u%u:", user_id);
	/* status_foreach must not see the table change under it: poll_now
	   only schedules, it does not add or remove accounts. */
	ups->u->ops->status_foreach(ups->u, poll_matching, &pc);
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

	if (!a->enabled)
		return json_pack("{s:s}", "state", "disabled");
	upstream_id(id, sizeof(id), a->user_id, a->name);
	if (ups->u->ops->status(ups->u, id, &st, &error) != 0)
		return json_pack("{s:s, s:s}", "state", "unknown", "error",
		    error != NULL ? error : "not known to the poller");
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
	json_object_set_new(j, "import", json_pack("{s:i, s:i, s:I, s:f}",
	    "done", (int)st.import_done, "total", (int)st.import_total,
	    "bytes", (json_int_t)st.import_bytes, "rate", st.import_rate));
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
