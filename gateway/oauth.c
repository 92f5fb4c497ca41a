/* oauth — see oauth.h. One struct oauth_acct per OAuth account the poller
 * was given (or that is being signed in), in a sorted array. */
#include "oauth.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "gateway/http-client.h"
#include "gateway/oauth-proto.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "log.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "xmalloc.h"

enum tok_state {
	TOK_NO_GRANT = 0,	/* never signed in */
	TOK_VALID,		/* an access token in use */
	TOK_REFRESHING,		/* first token after start or sign-in */
	TOK_NEEDS_SIGNIN,	/* the provider refused the grant */
	TOK_RETRY,		/* refresh failed; retrying with back-off */
};

enum dev_state {
	DEV_NONE = 0,
	DEV_REQUESTING,		/* asking for a user code */
	DEV_POLLING,		/* waiting for the user to approve */
	DEV_DONE,
	DEV_FAILED,
};

struct waiter {
	struct control_client *client;	/* NULL: slot free */
};

struct oauth_acct {
	struct oauth *o;
	uint32_t user_id;
	char *user;
	char *name;
	char *provider;
	bool tracked;		/* handed to the poller (oauth_access_token) */

	enum tok_state state;
	char *access;		/* memory only, wiped when replaced */
	time_t expires;
	time_t last_refresh;
	time_t forced_at;
	unsigned int failures;
	char error[OAUTH_ERROR_MAX + 64];
	struct event *timer;	/* next refresh or retry */
	struct event *expiry;	/* the access token runs out */
	struct http_request *req;

	/* device sign-in */
	enum dev_state dev;
	struct oauth_device code;
	time_t dev_deadline;
	uint32_t dev_interval;
	struct event *dev_timer;
	struct http_request *dev_req;
	struct control_client *start_client;	/* oauth.start not answered */
	struct waiter waiters[OAUTH_WAITERS_MAX];
	struct event *wait_timer;
	char dev_error[OAUTH_ERROR_MAX + 64];
	const char *dev_code;		/* error code for a failed sign-in */
};

struct oauth {
	struct gateway *gw;
	struct http_client *http;
	oauth_changed_fn *changed;
	void *changed_arg;
	struct oauth_acct **accts;
	size_t count, alloc;
	bool stopping;
};

static void refresh_start(struct oauth_acct *x);
static void dev_poll(struct oauth_acct *x);

/* ---- the table ---------------------------------------------------------- */

static int
acct_cmp(uint32_t uid, const char *name, const struct oauth_acct *x)
{
	if (uid != x->user_id)
		return uid < x->user_id ? -1 : 1;
	return strcmp(name, x->name);
}

static size_t
find_pos(struct oauth *o, uint32_t uid, const char *name, bool *found_r)
{
	size_t lo = 0, hi = o->count;

	*found_r = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = acct_cmp(uid, name, o->accts[mid]);

		if (c == 0) {
			*found_r = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static struct oauth_acct *
find(struct oauth *o, uint32_t uid, const char *name)
{
	bool found;
	size_t pos = find_pos(o, uid, name, &found);

	return found ? o->accts[pos] : NULL;
}

static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_expiry(evutil_socket_t fd, short what, void *arg);
static void on_dev_timer(evutil_socket_t fd, short what, void *arg);
static void on_wait_timer(evutil_socket_t fd, short what, void *arg);

static struct oauth_acct *
get(struct oauth *o, const struct account *a)
{
	bool found;
	size_t pos = find_pos(o, a->user_id, a->name, &found);
	struct oauth_acct *x;

	if (found) {
		x = o->accts[pos];
		if (a->oauth_provider != NULL &&
		    strcmp(x->provider, a->oauth_provider) != 0) {
			free(x->provider);
			x->provider = xstrdup(a->oauth_provider);
		}
		return x;
	}
	x = xcalloc(1, sizeof(*x));
	x->o = o;
	x->user_id = a->user_id;
	x->user = xstrdup(a->user);
	x->name = xstrdup(a->name);
	x->provider = xstrdup(a->oauth_provider != NULL ?
	    a->oauth_provider : "");
	x->timer = evtimer_new(o->gw->base, on_timer, x);
	x->expiry = evtimer_new(o->gw->base, on_expiry, x);
	x->dev_timer = evtimer_new(o->gw->base, on_dev_timer, x);
	x->wait_timer = evtimer_new(o->gw->base, on_wait_timer, x);
	if (o->count == o->alloc) {
		o->alloc = o->alloc != 0 ? o->alloc * 2 : 16;
		o->accts = xreallocarray(o->accts, o->alloc,
		    sizeof(*o->accts));
	}
	memmove(o->accts + pos + 1, o->accts + pos,
	    (o->count - pos) * sizeof(*o->accts));
	o->accts[pos] = x;
	o->count++;
	return x;
}

static void
set_access(struct oauth_acct *x, const char *token)
{
	if (x->access != NULL) {
		secure_zero(x->access, strlen(x->access));
		free(x->access);
	}
	x->access = token != NULL ? xstrdup(token) : NULL;
}

static void
arm(struct event *ev, time_t secs)
{
	struct timeval tv = { secs > 0 ? secs : 0, 0 };

	evtimer_add(ev, &tv);
}

/* ---- waiters (oauth.start / oauth.wait) --------------------------------- */

static void
reply_error(struct control_client *c, const char *code, const char *fmt,
    const char *arg)
{
	struct ctl_error err;

	ctl_error_set(&err, code, NULL, fmt, arg);
	control_reply_error(c, &err);
}

static json_t *
wait_result(struct oauth_acct *x)
{
	json_t *r = ctl_ok_json();

	json_object_set_new(r, "state", json_string(x->dev == DEV_DONE ?
	    "signed-in" : "pending"));
	if (x->dev == DEV_POLLING)
		json_object_set_new(r, "expires_in", json_integer(
		    (json_int_t)(x->dev_deadline - time(NULL))));
	return r;
}

/* Answers every waiter with the sign-in's end (or "pending"). */
static void
answer_waiters(struct oauth_acct *x)
{
	for (size_t i = 0; i < OAUTH_WAITERS_MAX; i++) {
		struct control_client *c = x->waiters[i].client;

		if (c == NULL)
			continue;
		x->waiters[i].client = NULL;
		if (x->dev == DEV_FAILED)
			reply_error(c, x->dev_code, "%s", x->dev_error);
		else
			control_reply(c, wait_result(x));
	}
	evtimer_del(x->wait_timer);
}

static void
on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	answer_waiters(arg);
}

/* ---- store ---------------------------------------------------------------- */

/* Reads the account's record, lets fn change it, writes it back. */
static int
update_record(struct oauth_acct *x, void (*fn)(struct oauth_acct *x,
    struct account *a, void *arg), void *arg, const char **error_r)
{
	struct gateway *gw = x->o->gw;
	struct store_read *r = NULL;
	struct account a;
	int ret;

	if (store_read_begin(gw->store, &r, error_r) < 0)
		return -1;
	ret = accounts_get(r, x->user_id, x->user, x->name, &a, error_r);
	store_read_end(&r);
	if (ret != 0) {
		if (ret > 0)
			*error_r = "the account is gone";
		return -1;
	}
	fn(x, &a, arg);
	ret = accounts_put(gw->store, &a, error_r);
	account_clear(&a);
	return ret;
}

static void
rec_needs_signin(struct oauth_acct *x, struct account *a, void *arg)
{
	(void)x;
	(void)arg;
	a->oauth_needs_signin = true;
	/* a refused grant's refresh token is of no use: not kept */
	(void)account_seal_refresh(a, NULL, NULL);
}

static void
rec_refresh_token(struct oauth_acct *x, struct account *a, void *arg)
{
	const char *token = arg;

	if (account_seal_refresh(a, x->o->gw->key, token) < 0)
		log_error("oauth account=u%u:%s event=seal-failed",
		    x->user_id, x->name);
}

static void
rec_signed_in(struct oauth_acct *x, struct account *a, void *arg)
{
	rec_refresh_token(x, a, arg);
	a->oauth_needs_signin = false;
	a->oauth_signed_in = (int64_t)time(NULL);
}

/* ---- tokens ---------------------------------------------------------------- */

static const struct config_oauth *
provider_of(struct oauth_acct *x)
{
	return config_oauth_find(x->o->gw->config, x->provider);
}

static void
notify(struct oauth_acct *x)
{
	if (x->tracked && !x->o->stopping)
		x->o->changed(x->o->changed_arg, x->user_id, x->user,
		    x->name);
}

static void
needs_signin(struct oauth_acct *x, const char *why)
{
	char q[LOG_QUOTE_MAX];
	const char *error = NULL;

	x->state = TOK_NEEDS_SIGNIN;
	set_access(x, NULL);
	x->expires = 0;
	evtimer_del(x->timer);
	evtimer_del(x->expiry);
	snprintf(x->error, sizeof(x->error), "needs sign-in again: %.200s",
	    why);
	log_error("oauth account=u%u:%s event=needs-signin reason=%s "
	    "note=\"not polled until `popgatectl account oauth %s %s`\"",
	    x->user_id, x->name, log_quote(q, sizeof(q), why), x->user,
	    x->name);
	if (update_record(x, rec_needs_signin, NULL, &error) < 0)
		log_error("oauth account=u%u:%s event=record-not-updated "
		    "error=%s", x->user_id, x->name, log_quote(q, sizeof(q),
		    error));
	notify(x);
}

static void
retry_later(struct oauth_acct *x, const char *why, bool long_wait)
{
	char q[LOG_QUOTE_MAX];
	uint64_t delay = OAUTH_RETRY_BASE_SECS;

	x->failures++;
	for (unsigned int i = 1; i < x->failures &&
	    delay < OAUTH_RETRY_MAX_SECS; i++)
		delay *= 2;
	if (long_wait || delay > OAUTH_RETRY_MAX_SECS)
		delay = OAUTH_RETRY_MAX_SECS;
	snprintf(x->error, sizeof(x->error), "token refresh failed: %s",
	    why);
	log_warn("oauth account=u%u:%s event=refresh-failed failures=%u "
	    "retry_in=%llu error=%s", x->user_id, x->name, x->failures,
	    (unsigned long long)delay, log_quote(q, sizeof(q), why));
	x->state = TOK_RETRY;
	/* the current token, if any, stays in use until it expires
	   (on_expiry) */
	arm(x->timer, (time_t)delay);
}

static void
on_expiry(evutil_socket_t fd, short what, void *arg)
{
	struct oauth_acct *x = arg;

	(void)fd;
	(void)what;
	if (x->access == NULL)
		return;
	/* no fresh token in time (the provider is down): the poller stops
	   using this one rather than send an expired token */
	log_warn("oauth account=u%u:%s event=token-expired", x->user_id,
	    x->name);
	set_access(x, NULL);
	notify(x);
}

static void
token_ok(struct oauth_acct *x, struct oauth_token *t)
{
	char q[LOG_QUOTE_MAX];
	time_t now = time(NULL);
	const char *error = NULL;

	set_access(x, t->access_token);
	x->expires = now + t->expires_in;
	x->last_refresh = now;
	x->failures = 0;
	x->error[0] = '\0';
	x->state = TOK_VALID;
	if (t->refresh_token != NULL &&
	    update_record(x, rec_refresh_token, t->refresh_token, &error) < 0)
		/* rotation: the provider may have revoked the old one */
		log_error("oauth account=u%u:%s event=refresh-token-not-saved "
		    "error=%s", x->user_id, x->name, log_quote(q, sizeof(q),
		    error));
	arm(x->timer, oauth_refresh_at(now, t->expires_in) - now);
	arm(x->expiry, (time_t)t->expires_in);
	log_info("oauth account=u%u:%s event=token expires_in=%u",
	    x->user_id, x->name, t->expires_in);
	notify(x);
}

/* POSTs the form to one of the provider's endpoints; the body (it may
   hold the refresh token or the client secret) is wiped here, and the
   HTTP client wipes its copy when the request ends. */
static int
post(struct oauth_acct *x, const char *url, const char *const *names,
    const char *const *values, size_t n, http_done_cb *cb,
    struct http_request **req_r, const char **error_r)
{
	const struct config_oauth *p = provider_of(x);
	char *body = oauth_form(names, values, n);
	int ret;

	ret = http_post_form(x->o->http, url, body, p->ca_file, cb, x, req_r,
	    error_r);
	secure_zero(body, strlen(body));
	free(body);
	return ret;
}

static void
refresh_done(void *arg, const struct http_response *resp)
{
	struct oauth_acct *x = arg;
	struct oauth_token t;
	char err[OAUTH_ERROR_MAX + 64];
	enum oauth_result r;

	x->req = NULL;
	r = oauth_parse_token(resp->status, resp->body, resp->len, &t, err,
	    sizeof(err));
	if (resp->status == 0 && resp->error[0] != '\0')
		snprintf(err, sizeof(err), "no usable answer from the token "
		    "endpoint: %s", resp->error);
	switch (r) {
	case OAUTH_OK:
		token_ok(x, &t);
		break;
	case OAUTH_INVALID_GRANT:
		needs_signin(x, err);
		break;
	case OAUTH_BAD_CLIENT:
		retry_later(x, err, true);
		break;
	default:
		retry_later(x, err, false);
		break;
	}
	oauth_token_clear(&t);
}

static void
refresh_start(struct oauth_acct *x)
{
	struct gateway *gw = x->o->gw;
	const struct config_oauth *p = provider_of(x);
	struct store_read *r = NULL;
	struct account a;
	char *refresh = NULL;
	const char *error = NULL;
	const char *names[4], *values[4];
	size_t n = 0;
	int ret;

	if (x->req != NULL || x->state == TOK_NEEDS_SIGNIN)
		return;
	if (p == NULL) {
		retry_later(x, "its provider is not in the configuration",
		    true);
		return;
	}
	if (store_read_begin(gw->store, &r, &error) < 0) {
		retry_later(x, error, false);
		return;
	}
	ret = accounts_get(r, x->user_id, x->user, x->name, &a, &error);
	store_read_end(&r);
	if (ret != 0) {
		retry_later(x, ret > 0 ? "the account is gone" : error, false);
		return;
	}
	ret = account_open_refresh(&a, gw->key, &refresh, &error);
	account_clear(&a);
	if (ret < 0) {
		x->state = TOK_NO_GRANT;
		snprintf(x->error, sizeof(x->error), "not signed in: %s",
		    error);
		return;
	}
	names[n] = "grant_type";
	values[n++] = "refresh_token";
	names[n] = "refresh_token";
	values[n++] = refresh;
	names[n] = "client_id";
	values[n++] = p->client_id;
	if (p->client_secret != NULL) {
		names[n] = "client_secret";
		values[n++] = p->client_secret;
	}
	if (x->state != TOK_VALID)
		x->state = x->access != NULL ? TOK_VALID : TOK_REFRESHING;
	ret = post(x, p->token_endpoint, names, values, n, refresh_done,
	    &x->req, &error);
	secret_free_plain(refresh);
	if (ret < 0)
		retry_later(x, error, false);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	refresh_start(arg);
}

const char *
oauth_access_token(struct oauth *o, const struct account *a)
{
	struct oauth_acct *x;

	if (o->http == NULL)
		return NULL;
	x = get(o, a);
	x->tracked = true;
	if (a->oauth_needs_signin) {
		if (x->state != TOK_NEEDS_SIGNIN) {
			x->state = TOK_NEEDS_SIGNIN;
			set_access(x, NULL);
			evtimer_del(x->timer);
			evtimer_del(x->expiry);
			snprintf(x->error, sizeof(x->error),
			    "needs sign-in again");
		}
		return NULL;
	}
	if (a->refresh_sealed == NULL) {
		x->state = TOK_NO_GRANT;
		snprintf(x->error, sizeof(x->error), "not signed in yet");
		return NULL;
	}
	if (x->state == TOK_NEEDS_SIGNIN || x->state == TOK_NO_GRANT) {
		/* signed in again since */
		x->state = TOK_REFRESHING;
		x->failures = 0;
		x->error[0] = '\0';
	}
	if (x->access == NULL && x->req == NULL &&
	    !evtimer_pending(x->timer, NULL))
		arm(x->timer, 0);
	return x->access;
}

static void
acct_free(struct oauth_acct *x)
{
	http_cancel(&x->req);
	http_cancel(&x->dev_req);
	answer_waiters(x);
	if (x->start_client != NULL)
		reply_error(x->start_client, CTL_E_UNAVAILABLE, "%s",
		    "the account is gone or the daemon is stopping");
	event_free(x->timer);
	event_free(x->expiry);
	event_free(x->dev_timer);
	event_free(x->wait_timer);
	set_access(x, NULL);
	oauth_device_clear(&x->code);
	free(x->user);
	free(x->name);
	free(x->provider);
	free(x);
}

static void
remove_at(struct oauth *o, size_t pos)
{
	struct oauth_acct *x = o->accts[pos];

	memmove(o->accts + pos, o->accts + pos + 1,
	    (o->count - pos - 1) * sizeof(*o->accts));
	o->count--;
	acct_free(x);
}

void
oauth_forget(struct oauth *o, uint32_t user_id, const char *name)
{
	bool found;
	size_t pos = find_pos(o, user_id, name, &found);

	if (found)
		remove_at(o, pos);
}

void
oauth_forget_user(struct oauth *o, uint32_t user_id)
{
	for (size_t i = o->count; i > 0; i--) {
		if (o->accts[i - 1]->user_id == user_id)
			remove_at(o, i - 1);
	}
}

unsigned int
oauth_poll_now(struct oauth *o, bool one_user, uint32_t user_id,
    const char *name)
{
	unsigned int n = 0;

	for (size_t i = 0; i < o->count; i++) {
		struct oauth_acct *x = o->accts[i];

		if ((one_user || name != NULL) && x->user_id != user_id)
			continue;
		if (name != NULL && strcmp(x->name, name) != 0)
			continue;
		/* needs-signin waits for a sign-in, not for a poll */
		if (x->state != TOK_RETRY || x->req != NULL)
			continue;
		log_info("oauth account=u%u:%s event=retry-now reason=poll",
		    x->user_id, x->name);
		evtimer_del(x->timer);
		refresh_start(x);
		n++;
	}
	return n;
}

void
oauth_token_rejected(struct oauth *o, uint32_t user_id, const char *name)
{
	struct oauth_acct *x = find(o, user_id, name);
	time_t now = time(NULL);

	if (x == NULL || x->state != TOK_VALID || x->req != NULL ||
	    now - x->forced_at < OAUTH_FORCED_MIN_SECS)
		return;
	/* revoked early, or the server's clock is ahead: a fresh token
	   tells which (invalid_grant: sign in again) */
	x->forced_at = now;
	log_info("oauth account=u%u:%s event=token-refused note=\"refreshing "
	    "now\"", user_id, name);
	evtimer_del(x->timer);
	refresh_start(x);
}

json_t *
oauth_status_json(struct oauth *o, const struct account *a,
    const char **state_r)
{
	struct oauth_acct *x = find(o, a->user_id, a->name);
	static const char *const names[] = { "not-signed-in", "valid",
	    "token-pending", "needs-signin", "token-error" };
	enum tok_state st;
	json_t *j;

	if (x != NULL)
		st = x->state;
	else if (a->oauth_needs_signin)
		st = TOK_NEEDS_SIGNIN;
	else if (a->refresh_sealed == NULL)
		st = TOK_NO_GRANT;
	else
		st = TOK_REFRESHING;
	j = json_pack("{s:s, s:s}", "state", names[st], "provider",
	    a->oauth_provider != NULL ? a->oauth_provider : "");
	json_object_set_new(j, "expires", x != NULL && x->expires != 0 ?
	    json_integer((json_int_t)x->expires) : json_null());
	json_object_set_new(j, "last_refresh", x != NULL &&
	    x->last_refresh != 0 ?
	    json_integer((json_int_t)x->last_refresh) : json_null());
	json_object_set_new(j, "signed_in", a->oauth_signed_in != 0 ?
	    json_integer((json_int_t)a->oauth_signed_in) : json_null());
	json_object_set_new(j, "error", x != NULL && x->error[0] != '\0' ?
	    json_string(x->error) : st == TOK_NEEDS_SIGNIN ?
	    json_string("needs sign-in again") : json_null());
	if (x != NULL && x->dev != DEV_NONE)
		json_object_set_new(j, "sign_in", json_string(
		    x->dev == DEV_DONE ? "done" : x->dev == DEV_FAILED ?
		    "failed" : "waiting"));
	/* the poller's state stands only while there is a token to use */
	*state_r = x != NULL && x->access != NULL ? NULL :
	    st == TOK_VALID ? "token-pending" : names[st];
	return j;
}

/* ---- device sign-in (RFC 8628) ----------------------------------------- */

static void
dev_fail(struct oauth_acct *x, const char *code, const char *msg)
{
	char q[LOG_QUOTE_MAX];
	x->dev = DEV_FAILED;
	x->dev_code = code;
	snprintf(x->dev_error, sizeof(x->dev_error), "%s", msg);
	evtimer_del(x->dev_timer);
	oauth_device_clear(&x->code);
	log_warn("oauth account=u%u:%s event=sign-in-failed error=%s",
	    x->user_id, x->name, log_quote(q, sizeof(q), msg));
	if (x->start_client != NULL) {
		reply_error(x->start_client, code, "%s", msg);
		x->start_client = NULL;
	}
	answer_waiters(x);
}

static void
dev_token_done(void *arg, const struct http_response *resp)
{
	char q[LOG_QUOTE_MAX];
	struct oauth_acct *x = arg;
	const struct config_oauth *p = provider_of(x);
	struct oauth_token t;
	char err[OAUTH_ERROR_MAX + 64], msg[OAUTH_ERROR_MAX + 128];
	const char *error = NULL;
	enum oauth_result r;

	x->dev_req = NULL;
	r = oauth_parse_token(resp->status, resp->body, resp->len, &t, err,
	    sizeof(err));
	if (resp->status == 0 && resp->error[0] != '\0')
		snprintf(err, sizeof(err), "no usable answer from the token "
		    "endpoint: %s", resp->error);
	if (time(NULL) >= x->dev_deadline && r != OAUTH_OK)
		r = OAUTH_EXPIRED;
	switch (r) {
	case OAUTH_OK:
		if (p != NULL && !oauth_scope_covers(t.scope, p->scope)) {
			snprintf(msg, sizeof(msg), "the provider granted "
			    "\"%.100s\", not the scope asked for (%.100s)",
			    t.scope, p->scope);
			dev_fail(x, "oauth-scope", msg);
			break;
		}
		if (t.refresh_token == NULL) {
			dev_fail(x, "oauth-failed", "the provider gave no "
			    "refresh token (is offline_access in the scope?)");
			break;
		}
		if (update_record(x, rec_signed_in, t.refresh_token,
		    &error) < 0) {
			dev_fail(x, CTL_E_STORE, error);
			break;
		}
		x->dev = DEV_DONE;
		oauth_device_clear(&x->code);
		log_info("oauth account=u%u:%s event=signed-in", x->user_id,
		    x->name);
		/* the record now has the grant: the account is handed to
		   the poller again (token_ok notifies) */
		/* a refresh of the old grant still in flight must not come
		   back as invalid_grant over the new one */
		http_cancel(&x->req);
		x->state = TOK_REFRESHING;
		x->tracked = true;
		answer_waiters(x);
		token_ok(x, &t);	/* hands the account to the poller */
		break;
	case OAUTH_PENDING:
		arm(x->dev_timer, x->dev_interval);
		break;
	case OAUTH_SLOW_DOWN:
		/* RFC 8628 3.5: 5 seconds more from now on */
		if (x->dev_interval + 5 <= OAUTH_INTERVAL_MAX)
			x->dev_interval += 5;
		arm(x->dev_timer, x->dev_interval);
		break;
	case OAUTH_DENIED:
		dev_fail(x, "oauth-denied", "the user refused the sign-in");
		break;
	case OAUTH_EXPIRED:
		dev_fail(x, "oauth-expired", "the code expired before the "
		    "user signed in");
		break;
	case OAUTH_TEMP:
		/* the provider is down: keep asking until the code expires */
		log_warn("oauth account=u%u:%s event=sign-in-poll-failed "
		    "error=%s", x->user_id, x->name, log_quote(q, sizeof(q),
		    err));
		arm(x->dev_timer, x->dev_interval);
		break;
	default:
		dev_fail(x, "oauth-failed", err);
		break;
	}
	oauth_token_clear(&t);
}

static void
dev_poll(struct oauth_acct *x)
{
	const struct config_oauth *p = provider_of(x);
	const char *names[4], *values[4], *error = NULL;
	size_t n = 0;

	if (p == NULL) {
		dev_fail(x, "oauth-failed", "the provider is no longer in the "
		    "configuration");
		return;
	}
	if (time(NULL) >= x->dev_deadline) {
		dev_fail(x, "oauth-expired", "the code expired before the "
		    "user signed in");
		return;
	}
	names[n] = "grant_type";
	values[n++] = "urn:ietf:params:oauth:grant-type:device_code";
	names[n] = "device_code";
	values[n++] = x->code.device_code;
	names[n] = "client_id";
	values[n++] = p->client_id;
	if (p->client_secret != NULL) {
		names[n] = "client_secret";
		values[n++] = p->client_secret;
	}
	if (post(x, p->token_endpoint, names, values, n, dev_token_done,
	    &x->dev_req, &error) < 0)
		dev_fail(x, "oauth-failed", error);
}

static void
on_dev_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dev_poll(arg);
}

static void
dev_code_done(void *arg, const struct http_response *resp)
{
	struct oauth_acct *x = arg;
	char err[OAUTH_ERROR_MAX + 64];
	json_t *r;

	x->dev_req = NULL;
	if (resp->status == 0) {
		snprintf(err, sizeof(err), "no usable answer from the device "
		    "authorization endpoint: %s", resp->error);
		dev_fail(x, "oauth-unreachable", err);
		return;
	}
	if (oauth_parse_device(resp->status, resp->body, resp->len, &x->code,
	    err, sizeof(err)) < 0) {
		dev_fail(x, "oauth-failed", err);
		return;
	}
	x->dev = DEV_POLLING;
	x->dev_interval = x->code.interval;
	x->dev_deadline = time(NULL) + x->code.expires_in;
	arm(x->dev_timer, x->dev_interval);
	log_info("oauth account=u%u:%s event=sign-in-started expires_in=%u",
	    x->user_id, x->name, x->code.expires_in);
	r = ctl_ok_json();
	json_object_set_new(r, "verification_uri",
	    json_string(x->code.verification_uri));
	if (x->code.verification_uri_complete != NULL)
		json_object_set_new(r, "verification_uri_complete",
		    json_string(x->code.verification_uri_complete));
	json_object_set_new(r, "user_code", json_string(x->code.user_code));
	json_object_set_new(r, "expires_in",
	    json_integer(x->code.expires_in));
	json_object_set_new(r, "interval", json_integer(x->dev_interval));
	if (x->start_client != NULL) {
		control_reply(x->start_client, r);
		x->start_client = NULL;
	} else {
		json_decref(r);
	}
}

static struct oauth *
oauth_of(struct gateway *gw, struct control_client *client)
{
	struct oauth *o = upstreams_oauth(gw->upstreams);

	if (o == NULL || o->http == NULL) {
		reply_error(client, CTL_E_UNAVAILABLE, "%s",
		    "OAuth is unavailable (no HTTP client)");
		return NULL;
	}
	return o;
}

void
oauth_cmd_start(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct oauth *o = oauth_of(gw, client);
	const struct config_oauth *p;
	struct oauth_acct *x;
	struct account a;
	const char *names[2], *values[2], *error = NULL;

	if (o == NULL || gateway_load_account(gw, client, req, &a) < 0)
		return;
	if (!account_is_oauth(&a) || a.oauth_provider == NULL ||
	    (p = config_oauth_find(gw->config, a.oauth_provider)) == NULL) {
		reply_error(client, CTL_E_INVALID, "%s", "the account does "
		    "not sign in with OAuth (auth xoauth2 or oauthbearer and "
		    "a configured oauth_provider)");
		account_clear(&a);
		return;
	}
	x = get(o, &a);
	account_clear(&a);
	/* a new sign-in replaces one in progress */
	http_cancel(&x->dev_req);
	evtimer_del(x->dev_timer);
	oauth_device_clear(&x->code);
	if (x->start_client != NULL) {
		reply_error(x->start_client, "oauth-superseded", "%s",
		    "another sign-in was started");
		x->start_client = NULL;
	}
	x->dev = DEV_FAILED;
	x->dev_code = "oauth-superseded";
	snprintf(x->dev_error, sizeof(x->dev_error),
	    "another sign-in was started");
	answer_waiters(x);
	x->dev = DEV_REQUESTING;
	names[0] = "client_id";
	values[0] = p->client_id;
	names[1] = "scope";
	values[1] = p->scope;
	x->start_client = client;
	if (post(x, p->device_endpoint, names, values, 2, dev_code_done,
	    &x->dev_req, &error) < 0)
		dev_fail(x, "oauth-failed", error);
}

void
oauth_cmd_wait(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct oauth *o = oauth_of(gw, client);
	struct oauth_acct *x;
	struct account a;
	struct timeval tv = { OAUTH_WAIT_SECS, 0 };

	if (o == NULL || gateway_load_account(gw, client, req, &a) < 0)
		return;
	x = find(o, a.user_id, a.name);
	account_clear(&a);
	if (x == NULL || x->dev == DEV_NONE) {
		reply_error(client, "oauth-none", "%s", "no sign-in was "
		    "started for this account (oauth.start)");
		return;
	}
	if (x->dev == DEV_DONE) {
		control_reply(client, wait_result(x));
		return;
	}
	if (x->dev == DEV_FAILED) {
		reply_error(client, x->dev_code, "%s", x->dev_error);
		return;
	}
	for (size_t i = 0; i < OAUTH_WAITERS_MAX; i++) {
		if (x->waiters[i].client == NULL) {
			x->waiters[i].client = client;
			if (!evtimer_pending(x->wait_timer, NULL))
				evtimer_add(x->wait_timer, &tv);
			return;
		}
	}
	reply_error(client, "busy", "%s", "too many waits on this sign-in");
}

/* ---- accounts and providers ------------------------------------------- */

void
oauth_account_defaults(struct gateway *gw, struct account *a,
    const char *provider)
{
	const struct config_oauth *p;

	if (provider == NULL ||
	    (p = config_oauth_find(gw->config, provider)) == NULL)
		return;
	free(a->oauth_provider);
	a->oauth_provider = xstrdup(provider);
	free(a->auth);
	a->auth = xstrdup(p->mechanism);
	if (p->host != NULL) {
		free(a->host);
		a->host = xstrdup(p->host);
	}
	a->tls = p->tls;
	a->port = p->port;
}

int
oauth_check_account(struct gateway *gw, const struct account *a,
    struct ctl_error *err)
{
	if (!account_is_oauth(a)) {
		if (a->oauth_provider != NULL) {
			ctl_error_set(err, CTL_E_INVALID, "oauth_provider",
			    "an OAuth provider needs auth xoauth2 or "
			    "oauthbearer");
			return -1;
		}
		return 0;
	}
	if (a->oauth_provider == NULL) {
		ctl_error_set(err, CTL_E_MISSING_FIELD, "oauth_provider",
		    "auth %s needs oauth_provider (a [oauth.NAME] section)",
		    a->auth);
		return -1;
	}
	if (config_oauth_find(gw->config, a->oauth_provider) == NULL) {
		ctl_error_set(err, CTL_E_INVALID, "oauth_provider",
		    "no provider \"%s\" in the configuration ([oauth.%s])",
		    a->oauth_provider, a->oauth_provider);
		return -1;
	}
	if (a->tls == CONFIG_TLS_NONE && !upstream_host_is_loopback(a->host)) {
		ctl_error_set(err, CTL_E_INVALID, "tls", "an OAuth bearer "
		    "token is never sent in clear to a host that is not "
		    "loopback");
		return -1;
	}
	return 0;
}

/* ---- life ------------------------------------------------------------------ */

struct oauth *
oauth_new(struct gateway *gw, oauth_changed_fn *cb, void *arg)
{
	struct oauth *o = xcalloc(1, sizeof(*o));

	o->gw = gw;
	o->changed = cb;
	o->changed_arg = arg;
	o->http = http_client_new(gw->base);
	return o;
}

void
oauth_stop(struct oauth *o)
{
	if (o == NULL)
		return;
	o->stopping = true;
	while (o->count > 0)
		remove_at(o, o->count - 1);
}

void
oauth_free(struct oauth **op)
{
	struct oauth *o = *op;

	if (o == NULL)
		return;
	oauth_stop(o);
	free(o->accts);
	http_client_free(&o->http);
	free(o);
	*op = NULL;
}
