/* pop3-poller — see pop3-poller.h. */
#include "pop3-upstream/pop3-poller.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
#include "xmalloc.h"

struct poller;

/* An upstream host's open sessions, kept as a counter (no scan of every
 * account per check). Entries live as long as the poller. */
struct host {
	char *name;		/* as configured; compared case-insensitively */
	unsigned int sessions;
};

struct account {
	struct poller *p;
	struct upstream_account *cfg;
	struct upstream_status st;
	struct event *timer;
	struct pop3_session *session;
	struct host *slot;	/* counted in slot->sessions while session */
	bool stop_pending;	/* counted in poller.stop_pending */
	bool queued;
	time_t not_before;	/* LOGIN-DELAY: no login before this */
	/* poll_now arrived while a session ran: poll again once it ends
	   (mail that arrived upstream meanwhile must not wait for the next
	   interval). Mirrored in st.poll_queued for the status. */
	bool poll_again;
};

struct poller {
	struct upstream u;	/* first: the vtable pointer */
	struct pop3_client_env env;
	struct pop3_poller_options opt;
	struct account **accts;	/* sorted by id */
	size_t count, alloc;
	struct host **hosts;	/* sorted by strcasecmp of name */
	size_t host_count, host_alloc;
	bool started;
	void (*hook)(void *arg, const char *id, const struct pop3_result *res);
	void *hook_arg;
	/* stop_graceful: sessions still ending with QUIT, then stop_done */
	bool stopping;
	size_t stop_pending;
	void (*stop_done)(void *arg);
	void *stop_arg;
};

static void try_start(struct account *a);

static struct poller *
P(struct upstream *u)
{
	return (struct poller *)u;
}

static size_t
find_pos(struct poller *p, const char *id, bool *found_r)
{
	size_t lo = 0, hi = p->count;

	*found_r = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(p->accts[mid]->cfg->id, id);

		if (c == 0) {
			*found_r = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct account *
find(struct poller *p, const char *id)
{
	bool found;
	size_t i = find_pos(p, id, &found);

	return found ? p->accts[i] : NULL;
}

static void
set_error(struct account *a, const char *text)
{
	snprintf(a->st.last_error, sizeof(a->st.last_error), "%s", text);
}

static void
schedule(struct account *a, unsigned int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(a->timer, &tv);
	a->st.next_poll = time(NULL) + (time_t)((ms + 999) / 1000);
}

static unsigned int
interval_ms(struct account *a)
{
	uint64_t secs = a->cfg->interval_secs ? a->cfg->interval_secs : 300;
	uint64_t ms = secs * 1000;
	uint64_t jit = ms * a->p->opt.jitter_pct / 100;

	if (jit > 0x7fffffff)
		jit = 0x7fffffff;
	if (jit > 0)
		ms = ms - jit + arc4random_uniform((uint32_t)(2 * jit + 1));
	return (unsigned int)(ms > 0x7fffffff ? 0x7fffffff : ms);
}

static struct host *
host_get(struct poller *p, const char *name)
{
	size_t lo = 0, hi = p->host_count;
	struct host *h;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcasecmp(p->hosts[mid]->name, name);

		if (c == 0)
			return p->hosts[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (p->host_count == p->host_alloc) {
		p->host_alloc = p->host_alloc ? p->host_alloc * 2 : 16;
		p->hosts = xreallocarray(p->hosts, p->host_alloc,
		    sizeof(*p->hosts));
	}
	h = xcalloc(1, sizeof(*h));
	h->name = xstrdup(name);
	memmove(p->hosts + lo + 1, p->hosts + lo,
	    (p->host_count - lo) * sizeof(*p->hosts));
	p->hosts[lo] = h;
	p->host_count++;
	return h;
}

static unsigned int
host_sessions(struct poller *p, const char *host)
{
	return host_get(p, host)->sessions;
}

/* The account's session ended or was aborted: its host slot is free, and
 * a graceful stop no longer waits for it. */
static void
session_gone(struct account *a)
{
	if (a->slot != NULL) {
		a->slot->sessions--;
		a->slot = NULL;
	}
	if (a->stop_pending) {
		a->stop_pending = false;
		a->p->stop_pending--;
	}
}

/* Aborts the account's session (no QUIT: no DELE takes effect). */
static void
session_abort(struct account *a)
{
	a->poll_again = false;
	a->st.poll_queued = false;
	pop3_session_abort(&a->session);
	session_gone(a);
}

/* A slot for host freed: start the next queued account of that host. */
static void
start_queued(struct poller *p, const char *host)
{
	for (size_t i = 0; i < p->count; i++) {
		struct account *a = p->accts[i];

		if (a->queued && strcasecmp(a->cfg->host, host) == 0) {
			try_start(a);
			if (host_sessions(p, host) >= p->opt.host_max_conns)
				return;
		}
	}
}

static void
on_done(void *arg, const struct pop3_result *res)
{
	struct account *a = arg;
	struct poller *p = a->p;
	unsigned int delay;
	bool stop_waiting, again;
	char host[256];

	a->session = NULL;
	stop_waiting = a->stop_pending;
	session_gone(a);
	snprintf(host, sizeof(host), "%s", a->cfg->host);
	a->st.messages_fetched += res->fetched;
	a->st.bytes_fetched += res->fetched_bytes;
	a->st.messages_deleted += res->deleted;
	a->st.messages_skipped = res->skipped;
	set_error(a, res->error);
	if (p->stopping) {
		/* a session that ended with QUIT during a graceful stop */
		a->st.state = UPSTREAM_STATE_STOPPED;
		a->st.next_poll = 0;
		if (p->hook != NULL)
			p->hook(p->hook_arg, a->cfg->id, res);
		if (stop_waiting && p->stop_pending == 0 &&
		    p->stop_done != NULL)
			p->stop_done(p->stop_arg);
		return;
	}
	a->not_before = res->login_delay > 0 ?
	    a->st.last_poll + (time_t)res->login_delay : 0;
	again = a->poll_again;
	a->poll_again = false;
	a->st.poll_queued = false;
	switch (res->outcome) {
	case POP3_OUTCOME_OK:
		a->st.last_success = time(NULL);
		a->st.consecutive_failures = 0;
		a->st.auth_failures = 0;
		a->st.state = UPSTREAM_STATE_IDLE;
		/* a poll asked for during this one runs now (or once the
		   server's LOGIN-DELAY allows), not an interval later */
		delay = again ? 0 : interval_ms(a);
		if (res->login_delay * 1000u > delay)
			delay = res->login_delay * 1000u;
		schedule(a, delay);
		break;
	case POP3_OUTCOME_AUTH:
		a->st.consecutive_failures++;
		if (++a->st.auth_failures >= p->opt.auth_breaker) {
			a->st.state = UPSTREAM_STATE_AUTH_FAILED;
			a->st.next_poll = 0;
			log_error("pop3 account=%s event=auth-breaker-open "
			    "failures=%u action=\"not polled until its "
			    "credentials change or an admin resumes it\"",
			    a->cfg->id, a->st.auth_failures);
			break;
		}
		goto backoff;
	case POP3_OUTCOME_STORE:
		a->st.consecutive_failures++;
		a->st.state = UPSTREAM_STATE_STORE_ERROR;
		a->st.next_poll = 0;
		break;
	case POP3_OUTCOME_QUOTA:
		/* paused, not failing: tried again at the interval, so it
		   resumes by itself once the user has room */
		a->st.state = UPSTREAM_STATE_OVER_QUOTA;
		schedule(a, interval_ms(a));
		break;
	case POP3_OUTCOME_LOGIN_DELAY: {
		unsigned int iv = interval_ms(a);

		a->st.consecutive_failures++;
		a->st.state = UPSTREAM_STATE_BACKOFF;
		delay = res->login_delay * 1000u;
		schedule(a, delay > iv ? delay : iv);
		break;
	}
	default:
	backoff:
		if (res->outcome != POP3_OUTCOME_AUTH)
			a->st.consecutive_failures++;
		a->st.state = UPSTREAM_STATE_BACKOFF;
		{
			uint64_t d = p->opt.backoff_base_ms;
			unsigned int n = a->st.consecutive_failures;

			while (--n > 0 && d < p->opt.backoff_max_ms)
				d *= 2;
			if (d > p->opt.backoff_max_ms)
				d = p->opt.backoff_max_ms;
			/* an admin's poll request made during the failed
			   poll gets one attempt of its own (not for auth
			   failures: the circuit breaker counts those) */
			if (again && res->outcome != POP3_OUTCOME_AUTH)
				d = 0;
			schedule(a, (unsigned int)d);
		}
		break;
	}
	if (p->hook != NULL)
		p->hook(p->hook_arg, a->cfg->id, res);
	start_queued(p, host);
}

static void
try_start(struct account *a)
{
	struct poller *p = a->p;
	const char *err = NULL;

	if (a->session != NULL || p->stopping)
		return;
	if (host_sessions(p, a->cfg->host) >= p->opt.host_max_conns) {
		a->queued = true;
		a->st.state = UPSTREAM_STATE_QUEUED;
		return;
	}
	a->queued = false;
	evtimer_del(a->timer);
	a->st.state = UPSTREAM_STATE_POLLING;
	a->st.last_poll = time(NULL);
	a->st.next_poll = 0;
	a->slot = host_get(p, a->cfg->host);
	a->slot->sessions++;
	if (pop3_session_start(&p->env, a->cfg, &a->st, on_done, a,
	    &a->session, &err) < 0) {
		struct pop3_result res;

		memset(&res, 0, sizeof(res));
		res.outcome = POP3_OUTCOME_TLS;
		snprintf(res.error, sizeof(res.error), "%s", err);
		a->session = NULL;
		on_done(a, &res);
	}
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	try_start(arg);
}

static void
account_free(struct account *a)
{
	session_abort(a);
	if (a->timer != NULL)
		event_free(a->timer);
	upstream_account_free(&a->cfg);
	free(a);
}

static bool
same_credentials(const struct upstream_account *x,
    const struct upstream_account *y)
{
	return strcmp(x->login, y->login) == 0 &&
	    strcmp(x->password, y->password) == 0 && x->auth == y->auth;
}

static int
op_account_set(struct upstream *u, const struct upstream_account *cfg,
    const char **error_r)
{
	struct poller *p = P(u);
	bool found;
	size_t pos;
	struct account *a;

	if (upstream_account_check(cfg, error_r) < 0)
		return -1;
	if (cfg->tls == UPSTREAM_TLS_NONE &&
	    !upstream_host_is_loopback(cfg->host))
		log_warn("pop3 account=%s event=cleartext host=%s "
		    "note=\"tls none: the login and password cross the "
		    "network in clear (allowed by allow_cleartext)\"",
		    cfg->id, cfg->host);
	pos = find_pos(p, cfg->id, &found);
	if (found) {
		a = p->accts[pos];
		switch (upstream_account_compare(a->cfg, cfg)) {
		case UPSTREAM_CHANGE_NONE:
			return 0;
		case UPSTREAM_CHANGE_TOKEN:
			/* a refreshed access token: the session reads the
			   password only when it logs in, so a poll in
			   progress goes on and the next login uses it */
			secure_zero(a->cfg->password,
			    strlen(a->cfg->password));
			free(a->cfg->password);
			a->cfg->password = xstrdup(cfg->password);
			if (a->st.state == UPSTREAM_STATE_AUTH_FAILED) {
				a->st.state = UPSTREAM_STATE_IDLE;
				a->st.auth_failures = 0;
				if (p->started)
					schedule(a, 0);
			}
			return 0;
		case UPSTREAM_CHANGE_OTHER:
			break;
		}
		/* a poll in progress holds the old config: abort it (no
		   QUIT, so no DELE takes effect) and poll again */
		session_abort(a);
		if (a->st.state == UPSTREAM_STATE_AUTH_FAILED &&
		    !same_credentials(a->cfg, cfg)) {
			a->st.state = UPSTREAM_STATE_IDLE;
			a->st.auth_failures = 0;
		}
		upstream_account_free(&a->cfg);
		a->cfg = upstream_account_dup(cfg);
		if (p->started && a->st.state != UPSTREAM_STATE_AUTH_FAILED &&
		    a->st.state != UPSTREAM_STATE_STORE_ERROR) {
			a->st.state = UPSTREAM_STATE_IDLE;
			schedule(a, 0);
		}
		return 0;
	}
	if (p->count >= POP3_POLLER_ACCOUNTS_MAX) {
		*error_r = "too many accounts";
		return -1;
	}
	a = xcalloc(1, sizeof(*a));
	a->p = p;
	a->cfg = upstream_account_dup(cfg);
	snprintf(a->st.id, sizeof(a->st.id), "%s", cfg->id);
	a->st.state = p->started ? UPSTREAM_STATE_IDLE :
	    UPSTREAM_STATE_STOPPED;
	a->timer = evtimer_new(p->env.base, on_timer, a);
	if (p->count == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 16;
		p->accts = xreallocarray(p->accts, p->alloc,
		    sizeof(*p->accts));
	}
	memmove(p->accts + pos + 1, p->accts + pos,
	    (p->count - pos) * sizeof(*p->accts));
	p->accts[pos] = a;
	p->count++;
	if (p->started)
		schedule(a, 0);
	return 0;
}

static int
op_account_remove(struct upstream *u, const char *id, const char **error_r)
{
	struct poller *p = P(u);
	bool found;
	size_t pos = find_pos(p, id, &found);
	char host[256];

	if (!found) {
		*error_r = "no such account";
		return -1;
	}
	snprintf(host, sizeof(host), "%s", p->accts[pos]->cfg->host);
	account_free(p->accts[pos]);
	memmove(p->accts + pos, p->accts + pos + 1,
	    (p->count - pos - 1) * sizeof(*p->accts));
	p->count--;
	if (p->started)
		start_queued(p, host);
	return 0;
}

static int
op_start(struct upstream *u, const char **error_r)
{
	struct poller *p = P(u);

	(void)error_r;
	p->started = true;
	p->stopping = false;
	p->stop_done = NULL;
	for (size_t i = 0; i < p->count; i++) {
		struct account *a = p->accts[i];
		unsigned int spread = p->opt.start_spread_ms;

		if (a->st.state == UPSTREAM_STATE_STOPPED)
			a->st.state = UPSTREAM_STATE_IDLE;
		schedule(a, spread > 0 && p->count > 1 ?
		    (unsigned int)(i * spread / p->count) : 0);
	}
	return 0;
}

static void
poll_one(struct account *a)
{
	time_t now;

	if (a->st.state == UPSTREAM_STATE_AUTH_FAILED)
		return;
	if (a->session != NULL) {
		/* Issue 18: a request during a poll was dropped, and mail
		   that arrived meanwhile waited an interval. */
		a->poll_again = true;
		a->st.poll_queued = true;
		return;
	}
	if (a->st.state == UPSTREAM_STATE_STORE_ERROR)
		a->st.state = UPSTREAM_STATE_IDLE;
	now = time(NULL);
	if (a->not_before > now) {
		/* the server asked for LOGIN-DELAY: poll as soon as allowed */
		schedule(a, (unsigned int)(a->not_before - now) * 1000u);
		return;
	}
	try_start(a);
}

static int
op_poll_now(struct upstream *u, const char *id, const char **error_r)
{
	struct poller *p = P(u);

	if (!p->started) {
		*error_r = "upstream not started";
		return -1;
	}
	if (id != NULL) {
		struct account *a = find(p, id);

		if (a == NULL) {
			*error_r = "no such account";
			return -1;
		}
		if (a->st.state == UPSTREAM_STATE_AUTH_FAILED) {
			*error_r = "account stopped after repeated "
			    "authentication failures; resume it first";
			return -1;
		}
		poll_one(a);
		return 0;
	}
	for (size_t i = 0; i < p->count; i++)
		poll_one(p->accts[i]);
	return 0;
}

static int
op_resume(struct upstream *u, const char *id, const char **error_r)
{
	struct poller *p = P(u);
	struct account *a = find(p, id);

	if (a == NULL) {
		*error_r = "no such account";
		return -1;
	}
	a->st.auth_failures = 0;
	a->st.consecutive_failures = 0;
	if (a->st.state == UPSTREAM_STATE_AUTH_FAILED ||
	    a->st.state == UPSTREAM_STATE_STORE_ERROR)
		a->st.state = UPSTREAM_STATE_IDLE;
	if (p->started)
		poll_one(a);
	return 0;
}

static int
op_status(struct upstream *u, const char *id, struct upstream_status *st_r,
    const char **error_r)
{
	struct account *a = find(P(u), id);

	if (a == NULL) {
		*error_r = "no such account";
		return -1;
	}
	*st_r = a->st;
	return 0;
}

static void
op_status_foreach(struct upstream *u,
    void (*cb)(void *ctx, const struct upstream_status *st), void *ctx)
{
	struct poller *p = P(u);

	for (size_t i = 0; i < p->count; i++)
		cb(ctx, &p->accts[i]->st);
}

static void
op_stop(struct upstream *u)
{
	struct poller *p = P(u);

	p->started = false;
	/* sessions still ending gracefully are cut: no cb, no stop_done */
	p->stop_done = NULL;
	for (size_t i = 0; i < p->count; i++) {
		struct account *a = p->accts[i];

		session_abort(a);
		evtimer_del(a->timer);
		a->queued = false;
		a->st.state = UPSTREAM_STATE_STOPPED;
		a->st.next_poll = 0;
	}
}

static void
op_stop_graceful(struct upstream *u, void (*done)(void *arg), void *arg)
{
	struct poller *p = P(u);

	p->started = false;
	p->stopping = true;
	p->stop_done = done;
	p->stop_arg = arg;
	for (size_t i = 0; i < p->count; i++) {
		struct account *a = p->accts[i];

		if (a->stop_pending)
			continue;	/* already waited for */
		if (pop3_session_stop(&a->session)) {
			a->stop_pending = true;
			p->stop_pending++;
		} else {
			session_gone(a);
		}
		evtimer_del(a->timer);
		a->queued = false;
		a->st.state = a->session != NULL ? UPSTREAM_STATE_POLLING :
		    UPSTREAM_STATE_STOPPED;
		a->st.next_poll = 0;
	}
	if (p->stop_pending == 0 && done != NULL)
		done(arg);
}

static void
op_free(struct upstream **up)
{
	struct poller *p;

	if (*up == NULL)
		return;
	p = P(*up);
	op_stop(*up);
	for (size_t i = 0; i < p->count; i++)
		account_free(p->accts[i]);
	free(p->accts);
	for (size_t i = 0; i < p->host_count; i++) {
		free(p->hosts[i]->name);
		free(p->hosts[i]);
	}
	free(p->hosts);
	free(p);
	*up = NULL;
}

static const struct upstream_ops pop3_ops = {
	.kind = "pop3",
	.account_set = op_account_set,
	.account_remove = op_account_remove,
	.start = op_start,
	.poll_now = op_poll_now,
	.resume = op_resume,
	.status = op_status,
	.status_foreach = op_status_foreach,
	.stop = op_stop,
	.stop_graceful = op_stop_graceful,
	.free = op_free,
};

struct upstream *
pop3_upstream_new(const struct pop3_client_env *env,
    const struct pop3_poller_options *opts)
{
	struct poller *p = xcalloc(1, sizeof(*p));

	p->u.ops = &pop3_ops;
	p->env = *env;
	if (opts != NULL)
		p->opt = *opts;
	if (p->opt.host_max_conns == 0)
		p->opt.host_max_conns = 2;
	if (p->opt.auth_breaker == 0)
		p->opt.auth_breaker = 3;
	if (p->opt.backoff_base_ms == 0)
		p->opt.backoff_base_ms = 30000;
	if (p->opt.backoff_max_ms == 0)
		p->opt.backoff_max_ms = 3600000;
	if (p->opt.jitter_pct == 0)
		p->opt.jitter_pct = 10;
	if (p->opt.start_spread_ms == 0)
		p->opt.start_spread_ms = 5000;
	return &p->u;
}

void
pop3_upstream_set_poll_hook(struct upstream *u,
    void (*hook)(void *arg, const char *id, const struct pop3_result *res),
    void *arg)
{
	P(u)->hook = hook;
	P(u)->hook_arg = arg;
}
