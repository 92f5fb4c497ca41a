/*
 * web-accounts — the web page's accounts: each person's view of their
 * old POP3 accounts with the last checks and advice, the actions on one
 * (check now, password, enable/disable, OAuth sign-in, self-service add
 * and delete) and the admin view of everyone's. Every action runs the
 * control command popgatectl would send, for the signed-in user only
 * (web.c: web_run_command_then). Threads: the event loop's.
 */
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/config.h"
#include "gateway/control-proto.h"
#include "gateway/gateway.h"
#include "gateway/web-advice.h"
#include "gateway/web-private.h"
#include "gateway/web-session.h"
#include "gateway/web.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

/* The last checks of one account, newest first (account.history). */
static json_t *
recent_checks(struct web *w, const char *user, const char *account)
{
	const char *msg;
	json_t *resp, *out = json_array(), *recent;
	size_t i;
	json_t *p;

	resp = web_run_command(w, "account.history",
	    json_pack("{s:s, s:s, s:i}", "user", user, "account", account,
	    "limit", WEB_RECENT_CHECKS),
	    &msg);
	if (resp == NULL)
		return out;
	recent = json_object_get(json_object_get(resp, "history"), "recent");
	json_array_foreach(recent, i, p) {
		const char *outcome = json_string_value(json_object_get(p,
		    "outcome"));
		const struct web_advice *adv = web_advice_for(NULL, outcome);
		json_t *c = json_pack("{s:O, s:O, s:O, s:O}",
		    "started", json_object_get(p, "started"),
		    "seconds", json_object_get(p, "seconds"),
		    "outcome", json_object_get(p, "outcome"),
		    "fetched", json_object_get(p, "fetched"));

		if (c == NULL)
			continue;
		json_object_set_new(c, "words", json_string(adv != NULL ?
		    adv->title : "Checked; all went well."));
		json_array_append_new(out, c);
	}
	json_decref(resp);
	return out;
}

static void
add_advice(json_t *view, const char *state, const char *outcome)
{
	const struct web_advice *adv = web_advice_for(state, outcome);

	json_object_set_new(view, "state_words", json_string(
	    web_state_words(state)));
	if (adv == NULL) {
		json_object_set_new(view, "advice", json_null());
		return;
	}
	json_object_set_new(view, "advice", json_pack("{s:s, s:s, s:s, s:b}",
	    "code", adv->code, "title", adv->title, "action", adv->action,
	    "needs_person", adv->needs_person));
}

/* What the page shows of one account (of the status command's entry). */
static json_t *
account_view(struct web *w, const char *user, json_t *a, bool with_recent)
{
	json_t *st = json_object_get(a, "status");
	json_t *imp = json_object_get(st, "import");
	const char *name = json_string_value(json_object_get(a, "account"));
	const char *state = json_string_value(json_object_get(st, "state"));
	const char *outcome = NULL;
	json_t *v, *recent;
	json_int_t done = json_integer_value(json_object_get(imp, "done"));
	json_int_t total = json_integer_value(json_object_get(imp, "total"));

	if (json_is_false(json_object_get(a, "enabled")))
		state = "disabled";
	v = json_pack("{s:s, s:O, s:O, s:O, s:s}",
	    "account", name != NULL ? name : "",
	    "host", json_object_get(a, "host"),
	    "login", json_object_get(a, "login"),
	    "enabled", json_object_get(a, "enabled"),
	    "state", state != NULL ? state : "unknown");
	PG_ASSERT(v != NULL);
	{
		const char *auth = json_string_value(json_object_get(a,
		    "auth"));

		/* signs in with a provider (the page offers "Sign in") */
		json_object_set_new(v, "oauth", json_boolean(
		    json_object_get(a, "oauth_provider") != NULL ||
		    (auth != NULL && (strcmp(auth, "xoauth2") == 0 ||
		    strcmp(auth, "oauthbearer") == 0))));
	}
	json_object_set(v, "last_poll", json_object_get(st, "last_poll") ?
	    json_object_get(st, "last_poll") : json_null());
	json_object_set(v, "last_success", json_object_get(st,
	    "last_success") ? json_object_get(st, "last_success") :
	    json_null());
	json_object_set(v, "next_poll", json_object_get(st, "next_poll") ?
	    json_object_get(st, "next_poll") : json_null());
	/* the kept total counts finished polls; a running one adds its own */
	json_object_set_new(v, "imported", json_integer(json_integer_value(
	    json_object_get(st, "messages_fetched")) + (state != NULL &&
	    strcmp(state, "polling") == 0 && done <= total ? done : 0)));
	json_object_set(v, "last_error", json_object_get(st, "last_error") ?
	    json_object_get(st, "last_error") : json_null());
	/* an import running: how far, and how much is left */
	if (total > 0 && done <= total && state != NULL &&
	    strcmp(state, "polling") == 0)
		json_object_set_new(v, "import", json_pack("{s:I, s:I, s:I}",
		    "done", done, "total", total, "remaining", total - done));
	else
		json_object_set_new(v, "import", json_null());
	/* the admin's list reads the history of failing accounts only */
	recent = with_recent || json_is_string(json_object_get(st,
	    "last_error")) ? recent_checks(w, user, name != NULL ? name : "") :
	    json_array();
	if (json_array_size(recent) > 0)
		outcome = json_string_value(json_object_get(json_array_get(
		    recent, 0), "outcome"));
	json_object_set_new(v, "last_outcome", outcome != NULL ?
	    json_string(outcome) : json_null());
	add_advice(v, state, outcome);
	json_object_set_new(v, "recent", with_recent ? recent :
	    json_array());
	if (!with_recent)
		json_decref(recent);
	return v;
}

void
web_api_accounts(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = web_session_of(w, req);
	json_t *resp, *list, *a;
	size_t i;

	if (s == NULL) {
		web_reply_error(req, 401, "Unauthorized", "please sign in");
		return;
	}
	/* the signed-in user's, never anyone else's */
	resp = web_status_of(w, req, s->user);
	if (resp == NULL)
		return;
	list = json_array();
	json_array_foreach(json_object_get(resp, "accounts"), i, a)
		json_array_append_new(list, account_view(w, s->user, a, true));
	json_decref(resp);
	web_reply_json(req, HTTP_OK, "OK", json_pack("{s:s, s:o, s:I}", "user",
	    s->user, "accounts", list, "now", (json_int_t)time(NULL)));
}

/* ---- actions and the admin view --------------------------------------- */

/* The session of an admin (the flag read now), else NULL after
 * replying. change: a state-changing request (CSRF checks). */
static struct web_session *
admin_session(struct web *w, struct evhttp_request *req, bool change,
    const char *what)
{
	struct web_session *s = change ? web_session_for_change(w, req, what) :
	    web_session_of(w, req);
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];

	if (s == NULL) {
		if (!change)
			web_reply_error(req, 401, "Unauthorized",
			    "please sign in");
		return NULL;
	}
	if (web_user_is_admin(w->gw->store, s->user, NULL, &error) != 1) {
		log_warn("web event=admin-refused ip=%s user=%s action=%s",
		    web_peer_addr(req), log_quote(q, sizeof(q), s->user), what);
		web_reply_error(req, 403, "Forbidden", "for admins only");
		return NULL;
	}
	return s;
}

/* The answer of an action: {} or an error; logged. */
static void
action_done(struct web *w, struct evhttp_request *req, json_t *resp,
    const char *msg, struct action_log *lg)
{
	bool ok;

	(void)w;
	ok = web_reply_action(req, json_incref(resp), msg);
	log_info("web event=%s ip=%s%s%s user=%s account=%s result=%s",
	    lg->what, lg->addr, lg->admin[0] != '\0' ? " admin=" : "",
	    lg->admin, lg->user, lg->account, ok ? "ok" : "refused");
}

/* oauth.start's answer: the user code and where to enter it. */
void
web_signin_done(struct web *w, struct evhttp_request *req, json_t *resp,
    const char *msg, struct action_log *lg)
{
	static const char *const keep[] = { "user_code", "verification_uri",
	    "verification_uri_complete", "expires_in" };
	bool ok = resp != NULL && json_is_true(json_object_get(resp, "ok"));
	json_t *v;

	(void)w;
	if (!ok) {
		action_done(w, req, resp, msg, lg);
		return;
	}
	/* only what the person needs: never the device code */
	v = json_object();
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *x = json_object_get(resp, keep[i]);

		if (x != NULL)
			json_object_set(v, keep[i], x);
	}
	web_reply_json(req, HTTP_OK, "OK", v);
	log_info("web event=%s ip=%s%s%s user=%s account=%s result=ok",
	    lg->what, lg->addr, lg->admin[0] != '\0' ? " admin=" : "",
	    lg->admin, lg->user, lg->account);
}

/*
 * An action on an account through a control command: one of the user's
 * own, or with admin any user's (named in the body's "user"; the admin
 * flag is checked first). secret_field: a field of the body passed on
 * to the command (the new password), never logged. The reply waits for
 * the command (done).
 */
void
web_account_action_then(struct web *w, struct evhttp_request *req,
    const char *what, const char *command, const char *secret_field,
    bool admin, cmd_done_fn *done)
{
	struct web_session *s = admin ? admin_session(w, req, true, what) :
	    web_session_for_change(w, req, what);
	const char *user, *account, *value = NULL;
	struct action_log lg;
	json_t *body, *creq;

	if (s == NULL)
		return;
	body = web_read_body(req);
	if (body == NULL)
		return;
	/* without admin, the session's user: a "user" field is ignored */
	user = admin ? web_body_str(body, "user", WEB_SESSION_USER_MAX) :
	    s->user;
	account = web_body_str(body, "account", 64);
	if (secret_field != NULL)
		value = web_body_str(body, secret_field, WEB_PASSWORD_MAX);
	if (user == NULL || account == NULL ||
	    (secret_field != NULL && value == NULL)) {
		json_decref(body);
		web_reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    secret_field ?
		    "enter the account and its new password" :
		    "which account?");
		return;
	}
	memset(&lg, 0, sizeof(lg));
	snprintf(lg.what, sizeof(lg.what), "%s", what);
	snprintf(lg.addr, sizeof(lg.addr), "%s", web_peer_addr(req));
	if (admin)
		log_quote(lg.admin, sizeof(lg.admin), s->user);
	log_quote(lg.user, sizeof(lg.user), user);
	log_quote(lg.account, sizeof(lg.account), account);
	creq = json_pack("{s:s, s:s}", "user", user, "account", account);
	if (secret_field != NULL)
		json_object_set_new(creq, secret_field, json_string(value));
	json_decref(body);
	web_run_command_then(w, req, command, creq, done, &lg);
}

void
web_account_action(struct web *w, struct evhttp_request *req, const char *what,
    const char *command, const char *secret_field, bool admin)
{
	web_account_action_then(w, req, what, command, secret_field, admin,
	    action_done);
}

/* Whether the admin lets people add and remove their own accounts
 * ([web] self_service); false after replying. */
bool
web_account_self_service(struct web *w, struct evhttp_request *req,
    const char *what)
{
	if (w->gw->config->web_self_service)
		return true;
	log_info("web event=self-service-refused ip=%s action=%s",
	    web_peer_addr(req), what);
	web_reply_error(req, 403, "Forbidden", "Your admin adds and removes "
	    "the old accounts here.");
	return false;
}

/*
 * A person adds one of their own old accounts ([web] self_service): the
 * request popgatectl account add would send, for the session's user,
 * with only the fields a person gives (no CA file, fingerprint or clear
 * text: those stay the admin's, with the [upstream-defaults]).
 */
/* account.add's answer: {"account": the name used}, or an error. */
static void
add_done(struct web *w, struct evhttp_request *req, json_t *resp,
    const char *msg, struct action_log *lg)
{
	bool ok = resp != NULL && json_is_true(json_object_get(resp, "ok"));

	if (!ok) {
		action_done(w, req, resp, msg, lg);
		return;
	}
	web_reply_json(req, HTTP_OK, "OK", json_pack("{s:O}", "account",
	    json_object_get(resp, "account")));
	log_info("web event=account-add ip=%s user=%s account=%s result=ok",
	    lg->addr, lg->user, lg->account);
}

void
web_api_account_add(struct web *w, struct evhttp_request *req)
{
	static const char *const fields[] = { "host", "tls", "login",
	    "password", "account", "oauth_provider" };
	struct web_session *s = web_session_for_change(w, req, "account-add");
	const char *name;
	struct action_log lg;
	json_t *body, *creq, *port;

	if (s == NULL || !web_account_self_service(w, req, "account-add"))
		return;
	body = web_read_body(req);
	if (body == NULL)
		return;
	creq = json_pack("{s:s}", "user", s->user);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = web_body_str(body, fields[i], WEB_PASSWORD_MAX);

		if (v != NULL && (v[0] != '\0' ||
		    strcmp(fields[i], "password") == 0))
			json_object_set_new(creq, fields[i], json_string(v));
	}
	port = json_object_get(body, "port");
	if (json_is_integer(port) && json_integer_value(port) != 0)
		json_object_set(creq, "port", port);
	name = web_body_str(body, "account", 64);
	memset(&lg, 0, sizeof(lg));
	snprintf(lg.what, sizeof(lg.what), "account-add");
	snprintf(lg.addr, sizeof(lg.addr), "%s", web_peer_addr(req));
	log_quote(lg.user, sizeof(lg.user), s->user);
	log_quote(lg.account, sizeof(lg.account), name != NULL && name[0] !=
	    '\0' ? name : "-");
	json_decref(body);
	web_run_command_then(w, req, "account.add", creq, add_done, &lg);
}

void
web_api_admin_accounts(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = admin_session(w, req, false, "admin-list");
	json_t *resp, *list, *a, *states;
	json_int_t done = 0, total = 0;
	size_t i, n = 0;

	if (s == NULL)
		return;
	resp = web_status_of(w, req, NULL);
	if (resp == NULL)
		return;
	list = json_array();
	states = json_object();
	json_array_foreach(json_object_get(resp, "accounts"), i, a) {
		const char *user = json_string_value(json_object_get(a,
		    "user"));
		json_t *v, *imp;
		const char *state;

		if (n++ >= WEB_ADMIN_LIST_MAX)
			continue;
		v = account_view(w, user != NULL ? user : "", a, false);
		json_object_set_new(v, "user", json_string(user != NULL ?
		    user : ""));
		state = json_string_value(json_object_get(v, "state"));
		json_object_set_new(states, state, json_integer(
		    json_integer_value(json_object_get(states, state)) + 1));
		imp = json_object_get(v, "import");
		done += json_integer_value(json_object_get(imp, "done"));
		total += json_integer_value(json_object_get(imp, "total"));
		json_array_append_new(list, v);
	}
	json_decref(resp);
	{
		char q[LOG_QUOTE_MAX];

		log_info("web event=admin-list ip=%s user=%s accounts=%zu",
		    web_peer_addr(req), log_quote(q, sizeof(q), s->user), n);
	}
	web_reply_json(req, HTTP_OK, "OK", json_pack("{s:o, s:o, s:{s:I, s:I}, "
	    "s:b, s:I}", "accounts", list, "states", states, "importing",
	    "done", done, "total", total, "truncated",
	    n > WEB_ADMIN_LIST_MAX, "now", (json_int_t)time(NULL)));
}
