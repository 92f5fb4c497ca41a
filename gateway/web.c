/* web — see web.h and docs/web.md. */
#include "web.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "evsecret.h"
#include "gateway/config.h"
#include "gateway/control-proto.h"
#include "gateway/control.h"
#include "gateway/accounts.h"
#include "gateway/admin-store.h"
#include "gateway/gateway.h"
#include "gateway/listeners.h"
#include "gateway/web-advice.h"
#include "gateway/web-assets.h"
#include "gateway/web-session.h"
#include "imap-frontend/imap-server.h"
#include "imap-frontend/imap-throttle.h"
#include "log.h"
#include "store/store.h"
#include "tls.h"
#include "xmalloc.h"

struct web_login {
	struct web *w;
	struct evhttp_request *req;
	char *user, *password, *addr;
	struct event *timer;		/* held back by the throttle */
	struct web_login *prev, *next;
};

struct web {
	struct gateway *gw;
	struct evhttp *http;
	SSL_CTX *ctx;
	struct web_sessions *sessions;
	struct web_login *logins;	/* waiting for a password check */
	unsigned logins_pending;
	int port;
	/* open connections (counted from accept to the SSL's free, the
	   connection's last moment) against [web] max_connections */
	unsigned conns;
	bool paused;		/* listeners off: conns reached the cap */
	struct cmd_wait *waits;	/* commands answering later */
	bool freeing;		/* web_free: the listeners are gone */
};

static const char csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'";

/* ---- replies ---------------------------------------------------------- */

static void
security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	evhttp_add_header(h, "Strict-Transport-Security",
	    "max-age=31536000");
	evhttp_add_header(h, "Cache-Control", "no-store");
}

static void
reply_body(struct evhttp_request *req, int code, const char *reason,
    const char *type, const void *data, size_t len)
{
	struct evbuffer *out = evbuffer_new();

	security_headers(req);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evbuffer_add(out, data, len);
	evhttp_send_reply(req, code, reason, out);
	evbuffer_free(out);
}

/* Sends j (a reference is taken over). */
static void
reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	PG_ASSERT(s != NULL);
	reply_body(req, code, reason, "application/json; charset=utf-8", s,
	    strlen(s));
	free(s);
	json_decref(j);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *message)
{
	reply_json(req, code, reason, json_pack("{s:s}", "error",
	    message != NULL ? message : "that did not work"));
}

/* ---- requests --------------------------------------------------------- */

static const char *
peer_addr(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	return addr != NULL ? addr : "?";
}

static const char *
header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req),
	    name);
}

/*
 * The JSON object of a POST body, or NULL after replying. The body is
 * drained with evsecret_drain (it may hold a password) and the copy
 * wiped.
 */
static json_t *
read_body(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char buf[WEB_BODY_MAX + 1];
	json_error_t jerr;
	json_t *j;

	if (len > WEB_BODY_MAX) {
		evsecret_drain(in, len);
		reply_error(req, HTTP_ENTITYTOOLARGE, "Payload Too Large",
		    "request too large");
		return NULL;
	}
	evbuffer_copyout(in, buf, len);
	evsecret_drain(in, len);
	j = json_loadb(buf, len, 0, &jerr);
	explicit_bzero(buf, sizeof(buf));
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    "the request is not a JSON object");
		return NULL;
	}
	return j;
}

static const char *
body_str(json_t *body, const char *name, size_t max)
{
	json_t *v = json_object_get(body, name);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/*
 * What every POST must show: a JSON body (a cross-site form cannot send
 * one without the browser asking first) and, when the browser says where
 * the request comes from, this page's own origin. false after replying.
 */
static bool
same_origin_post(struct evhttp_request *req)
{
	const char *type = header(req, "Content-Type");
	const char *origin = header(req, "Origin");
	const char *host = header(req, "Host");
	const char *site = header(req, "Sec-Fetch-Site");

	if (type == NULL || strncmp(type, "application/json", 16) != 0) {
		reply_error(req, 415, "Unsupported Media Type",
		    "requests must be application/json");
		return false;
	}
	if (site != NULL && strcmp(site, "same-origin") != 0 &&
	    strcmp(site, "none") != 0)
		goto refuse;
	if (origin != NULL) {
		if (host == NULL || strncmp(origin, "https://", 8) != 0 ||
		    strcmp(origin + 8, host) != 0)
			goto refuse;
	}
	return true;
refuse:
	reply_error(req, 403, "Forbidden", "cross-site request refused");
	return false;
}

static struct web_session *
session_of(struct web *w, struct evhttp_request *req)
{
	const char *cookies = header(req, "Cookie");
	char id[WEB_SESSION_HEX_SIZE];

	if (cookies == NULL || !web_cookie_get(cookies, WEB_COOKIE_NAME, id,
	    sizeof(id)))
		return NULL;
	return web_sessions_find(w->sessions, id, time(NULL));
}

/* The session of a state-changing request: signed in, same origin, and
 * the session's CSRF token in X-CSRF-Token. NULL after replying. */
static struct web_session *
session_for_change(struct web *w, struct evhttp_request *req,
    const char *what)
{
	struct web_session *s;
	const char *token;
	char q[LOG_QUOTE_MAX];

	if (!same_origin_post(req))
		return NULL;
	s = session_of(w, req);
	if (s == NULL) {
		reply_error(req, 401, "Unauthorized", "please sign in");
		return NULL;
	}
	token = header(req, "X-CSRF-Token");
	if (token == NULL || !web_token_equal(token, s->csrf)) {
		log_warn("web event=csrf-refused ip=%s user=%s action=%s",
		    peer_addr(req), log_quote(q, sizeof(q), s->user), what);
		reply_error(req, 403, "Forbidden",
		    "the page is out of date: reload it");
		return NULL;
	}
	return s;
}

/* ---- the control commands, in process --------------------------------- */

struct cmd_slot {
	json_t *resp;
	bool abandoned;
};

static void
slot_reply(void *arg, json_t *resp)
{
	struct cmd_slot *slot = arg;

	if (slot->abandoned) {
		free(slot);
		return;
	}
	slot->resp = json_incref(resp);
}

/* What an action logs when its command answers (web event=WHAT ...). */
struct action_log {
	char what[32];
	char addr[64];
	char admin[LOG_QUOTE_MAX];	/* "": not an admin action */
	char user[LOG_QUOTE_MAX];
	char account[LOG_QUOTE_MAX];
};

typedef void cmd_done_fn(struct web *w, struct evhttp_request *req,
    json_t *resp, const char *msg, struct action_log *lg);

/* A command that may answer later (account.add resolving host names on
 * a worker, oauth.start asking the provider): the HTTP reply waits. An
 * HTTP request whose client has gone stays valid until it is answered
 * (libevent frees it then). web_free abandons what still waits. */
struct cmd_wait {
	struct web *w;
	struct evhttp_request *req;
	cmd_done_fn *done;
	struct action_log lg;
	struct cmd_wait *next, *prev;
	bool abandoned;
};

static void
wait_unlink(struct cmd_wait *cw)
{
	if (cw->prev != NULL)
		cw->prev->next = cw->next;
	else
		cw->w->waits = cw->next;
	if (cw->next != NULL)
		cw->next->prev = cw->prev;
}

static void
wait_reply(void *arg, json_t *resp)
{
	struct cmd_wait *cw = arg;

	if (!cw->abandoned) {
		wait_unlink(cw);
		cw->done(cw->w, cw->req, resp, NULL, &cw->lg);
	}
	free(cw);
}

/* Parses a request as popgatectl's; -1 with the message in msg. */
static int
command_parse(const char *name, json_t *req, const struct ctl_command **cmd_r,
    json_t **parsed_r, char *msg, size_t msgsize)
{
	struct ctl_error err;
	char *line;
	int ret;

	json_object_set_new(req, "command", json_string(name));
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	PG_ASSERT(line != NULL);
	ret = ctl_request_parse(line, strlen(line), cmd_r, parsed_r, &err);
	explicit_bzero(line, strlen(line));
	free(line);
	if (ret < 0)
		snprintf(msg, msgsize, "%s", err.message);
	return ret;
}

/*
 * Runs a control command (req is taken over) and calls done with its
 * response when it answers, now or later; a request refused by the
 * parser calls done at once with resp NULL and the message.
 */
static void
run_command_then(struct web *w, struct evhttp_request *hreq,
    const char *name, json_t *req, cmd_done_fn *done,
    const struct action_log *lg)
{
	char msg[CTL_MESSAGE_MAX];
	const struct ctl_command *cmd;
	struct cmd_wait *cw;
	json_t *parsed = NULL;

	cw = xcalloc(1, sizeof(*cw));
	cw->w = w;
	cw->req = hreq;
	cw->done = done;
	cw->lg = *lg;
	if (command_parse(name, req, &cmd, &parsed, msg, sizeof(msg)) < 0) {
		done(w, hreq, NULL, msg, &cw->lg);
		free(cw);
		return;
	}
	cw->next = w->waits;
	if (w->waits != NULL)
		w->waits->prev = cw;
	w->waits = cw;
	commands_handle(w->gw, control_client_internal(wait_reply, cw), cmd,
	    parsed);
	json_decref(parsed);
}

/*
 * Runs a control command as popgatectl would send it (req is taken over
 * and goes through the same parser and checks), and returns its
 * response, or NULL with *msg_r when the request is refused or does not
 * complete at once: for the reads (status, account.history), which
 * always do. Changes go through run_command_then.
 */
static json_t *
run_command(struct web *w, const char *name, json_t *req, const char **msg_r)
{
	static char msg[CTL_MESSAGE_MAX];
	const struct ctl_command *cmd;
	struct cmd_slot *slot;
	json_t *parsed = NULL, *resp;

	if (command_parse(name, req, &cmd, &parsed, msg, sizeof(msg)) < 0) {
		*msg_r = msg;
		return NULL;
	}
	slot = xcalloc(1, sizeof(*slot));
	commands_handle(w->gw, control_client_internal(slot_reply, slot), cmd,
	    parsed);
	json_decref(parsed);
	if (slot->resp == NULL) {
		slot->abandoned = true;
		*msg_r = "the gateway is busy: try again";
		return NULL;
	}
	resp = slot->resp;
	free(slot);
	return resp;
}

/* A command's error message, when it answered with one. */
static const char *
command_error(json_t *resp)
{
	const char *m = json_string_value(json_object_get(json_object_get(
	    resp, "error"), "message"));

	return m != NULL ? m : "the gateway could not do that";
}

/* ---- the admin flag --------------------------------------------------- */

/* 1 admin, 0 not (or no such user), -1 store error. */
static int
user_is_admin(struct store *store, const char *user, uint32_t *id_r,
    const char **error_r)
{
	struct store_read *r = NULL;
	const void *v;
	size_t len;
	uint32_t id = 0;
	int ret;

	if (store_read_begin(store, &r, error_r) < 0)
		return -1;
	ret = store_user_lookup(r, user, &id, error_r);
	if (ret == 0)
		ret = store_user_meta_get(r, id, WEB_ADMIN_META_KEY, &v, &len,
		    error_r);
	store_read_end(&r);
	if (id_r != NULL)
		*id_r = id;
	if (ret < 0)
		return -1;
	return ret == 0 ? 1 : 0;
}

void
web_cmd_user_admin(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	const char *set = ctl_req_str(req, "admin");
	const char *error = NULL;
	struct ctl_error err;
	char q[LOG_QUOTE_MAX];
	uint32_t id = 0;
	json_t *resp;
	int is;

	if (set != NULL && strcmp(set, "yes") != 0 && strcmp(set, "no") != 0) {
		ctl_error_set(&err, CTL_E_INVALID, "admin", "admin: \"yes\" "
		    "or \"no\"");
		goto fail;
	}
	is = user_is_admin(gw->store, user, &id, &error);
	if (is < 0)
		goto store_fail;
	if (id == 0) {
		ctl_error_set(&err, CTL_E_UNKNOWN_USER, "user", "no user %s",
		    user);
		goto fail;
	}
	if (set != NULL && (strcmp(set, "yes") == 0) != (is == 1)) {
		json_t *flag = json_pack("{s:b}", "admin", 1);
		int ret = strcmp(set, "yes") == 0 ?
		    accounts_put_setting(gw->store, id, WEB_ADMIN_META_KEY,
		    flag, &error) : admin_store_meta_del(gw->store, id,
		    WEB_ADMIN_META_KEY, &error);

		json_decref(flag);
		if (ret < 0)
			goto store_fail;
		is = strcmp(set, "yes") == 0;
		log_info("control event=web-admin user=%s admin=%s",
		    log_quote(q, sizeof(q), user), is ? "yes" : "no");
	}
	resp = ctl_ok_json();
	json_object_set_new(resp, "user", json_string(user));
	json_object_set_new(resp, "admin", json_boolean(is == 1));
	control_reply(client, resp);
	return;
store_fail:
	ctl_error_set(&err, CTL_E_STORE, NULL, "user.admin: %s", error);
fail:
	gw->stats.control_errors++;
	control_reply_error(client, &err);
}

/* The status command's answer (of one user, or everyone's with NULL),
 * or NULL after replying with its error. */
static json_t *
status_of(struct web *w, struct evhttp_request *req, const char *user)
{
	const char *msg = NULL;
	json_t *resp = run_command(w, "status", user != NULL ?
	    json_pack("{s:s}", "user", user) : json_object(), &msg);

	if (resp == NULL || !json_is_true(json_object_get(resp, "ok"))) {
		reply_error(req, HTTP_INTERNAL, "Internal Server Error",
		    resp != NULL ? command_error(resp) : msg);
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* Replies to an action with its command's answer (resp, taken over; NULL
 * with msg when it was refused before); true when it was done. */
static bool
reply_action(struct evhttp_request *req, json_t *resp, const char *msg)
{
	bool ok = resp != NULL && json_is_true(json_object_get(resp, "ok"));

	if (ok)
		reply_json(req, HTTP_OK, "OK", json_object());
	else
		reply_error(req, HTTP_BADREQUEST, "Bad Request", resp != NULL ?
		    command_error(resp) : msg);
	json_decref(resp);
	return ok;
}

/* ---- sign-in ---------------------------------------------------------- */

static void
login_free(struct web_login *l)
{
	struct web *w = l->w;

	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		w->logins = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	w->logins_pending--;
	if (l->timer != NULL)
		event_free(l->timer);
	free(l->user);
	if (l->password != NULL) {
		explicit_bzero(l->password, strlen(l->password));
		free(l->password);
	}
	free(l->addr);
	free(l);
}

static void
set_session_cookie(struct evhttp_request *req, const char *value,
    long max_age)
{
	char cookie[256];

	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Secure; HttpOnly; "
	    "SameSite=Strict; Max-Age=%ld", WEB_COOKIE_NAME, value, max_age);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Set-Cookie", cookie);
}

/* What the page learns at sign-in and reload: who, the CSRF token, the
 * admin flag, whether people add accounts themselves, and the OAuth
 * providers an account can sign in with. */
static json_t *
session_json(struct web *w, const struct web_session *s)
{
	const struct config *c = w->gw->config;
	const char *error = NULL;
	json_t *providers = json_array();

	for (size_t i = 0; i < c->oauth_count; i++)
		json_array_append_new(providers, json_string(
		    c->oauth[i].name));
	return json_pack("{s:s, s:s, s:b, s:b, s:o}", "user", s->user, "csrf",
	    s->csrf, "admin", user_is_admin(w->gw->store, s->user, NULL,
	    &error) == 1, "self_service", c->web_self_service,
	    "oauth_providers", providers);
}

static void
login_done(void *arg, int result, bool exists)
{
	struct web_login *l = arg;
	struct web *w = l->w;
	struct imap_throttle *t = w->gw->imap != NULL ?
	    imap_server_throttle(w->gw->imap) : NULL;
	char q[LOG_QUOTE_MAX];

	(void)exists;
	log_quote(q, sizeof(q), l->user);
	if (result == 1) {
		unsigned char rnd[2 * WEB_SESSION_ID_BYTES];
		struct web_session *s;
		bool evicted;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			tls_log_errors("web");
			reply_error(l->req, HTTP_SERVUNAVAIL, "Unavailable",
			    "sign-in is not possible right now");
			login_free(l);
			return;
		}
		if (t != NULL)
			imap_throttle_succeeded(t, l->user, l->addr);
		s = web_sessions_open(w->sessions, l->user, rnd, time(NULL),
		    &evicted);
		explicit_bzero(rnd, sizeof(rnd));
		log_info("web event=login ip=%s user=%s sessions=%zu%s",
		    l->addr, q, web_sessions_count(w->sessions), evicted ?
		    " note=\"oldest session ended: [web] sessions reached\"" :
		    "");
		set_session_cookie(l->req, s->id, WEB_SESSION_MAX_AGE_SECS);
		reply_json(l->req, HTTP_OK, "OK", session_json(w, s));
	} else if (result == 0) {
		struct imap_throttle_counts c = { 0, 0, 0 };

		if (t != NULL)
			imap_throttle_failed(t, l->user, l->addr, time(NULL),
			    &c);
		/* the address first, as IMAP's line (fail2ban's <HOST>) */
		log_warn("web event=login_failed ip=%s user=%s "
		    "reason=bad_credentials failures=%u addr_failures=%u "
		    "user_failures=%u", l->addr, q, c.pair, c.addr, c.user);
		reply_error(l->req, 401, "Unauthorized",
		    "The user name or the password is wrong.");
	} else {
		log_warn("web event=login_error ip=%s user=%s", l->addr, q);
		reply_error(l->req, HTTP_SERVUNAVAIL, "Unavailable",
		    "sign-in is not possible right now: try again later");
	}
	login_free(l);
}

static void
login_check(struct web_login *l)
{
	char *pw = l->password;

	l->password = NULL;
	/* copies (and wipes its copy of) the password */
	imap_server_check_password(l->w->gw->imap, l->user, pw, l->addr,
	    login_done, l);
	explicit_bzero(pw, strlen(pw));
	free(pw);
}

static void
login_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	login_check(arg);
}

static void
api_login(struct web *w, struct evhttp_request *req)
{
	struct imap_server *imap = w->gw->imap;
	const char *user, *password;
	struct web_login *l;
	json_t *body;
	unsigned ms;

	if (!same_origin_post(req))
		return;
	body = read_body(req);
	if (body == NULL)
		return;
	user = body_str(body, "user", WEB_SESSION_USER_MAX);
	password = body_str(body, "password", WEB_PASSWORD_MAX);
	if (user == NULL || password == NULL) {
		json_decref(body);
		reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    "enter a user name and a password");
		return;
	}
	if (imap == NULL || w->logins_pending >= WEB_LOGINS_PENDING_MAX) {
		json_decref(body);
		log_warn("web event=login_refused ip=%s reason=%s",
		    peer_addr(req), imap == NULL ? "no-imap" : "busy");
		reply_error(req, HTTP_SERVUNAVAIL, "Unavailable",
		    "sign-in is busy: try again in a moment");
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->w = w;
	l->req = req;
	l->user = xstrdup(user);
	l->password = xstrdup(password);
	l->addr = xstrdup(peer_addr(req));
	json_decref(body);	/* wiped on free (ctl_json_wipe_on_free) */
	l->next = w->logins;
	if (w->logins != NULL)
		w->logins->prev = l;
	w->logins = l;
	w->logins_pending++;
	ms = imap_throttle_delay(imap_server_throttle(imap), l->user, l->addr,
	    time(NULL));
	if (ms == 0) {
		login_check(l);
		return;
	}
	log_debug("web event=login_delayed ip=%s ms=%u", l->addr, ms);
	{
		struct timeval tv = { (time_t)(ms / 1000),
		    (suseconds_t)(ms % 1000) * 1000 };

		l->timer = evtimer_new(w->gw->base, login_timer_cb, l);
		evtimer_add(l->timer, &tv);
	}
}

static void
api_session(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = session_of(w, req);

	if (s == NULL) {
		reply_error(req, 401, "Unauthorized", "please sign in");
		return;
	}
	reply_json(req, HTTP_OK, "OK", session_json(w, s));
}

static void
api_logout(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = session_for_change(w, req, "logout");
	char q[LOG_QUOTE_MAX];

	if (s == NULL)
		return;
	log_info("web event=logout ip=%s user=%s", peer_addr(req),
	    log_quote(q, sizeof(q), s->user));
	web_sessions_close(w->sessions, s);
	set_session_cookie(req, "", 0);
	reply_json(req, HTTP_OK, "OK", json_object());
}

/* ---- accounts ----------------------------------------------------------- */

/* The last checks of one account, newest first (account.history). */
static json_t *
recent_checks(struct web *w, const char *user, const char *account)
{
	const char *msg;
	json_t *resp, *out = json_array(), *recent;
	size_t i;
	json_t *p;

	resp = run_command(w, "account.history", json_pack("{s:s, s:s, s:i}",
	    "user", user, "account", account, "limit", WEB_RECENT_CHECKS),
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

static void
api_accounts(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = session_of(w, req);
	json_t *resp, *list, *a;
	size_t i;

	if (s == NULL) {
		reply_error(req, 401, "Unauthorized", "please sign in");
		return;
	}
	/* the signed-in user's, never anyone else's */
	resp = status_of(w, req, s->user);
	if (resp == NULL)
		return;
	list = json_array();
	json_array_foreach(json_object_get(resp, "accounts"), i, a)
		json_array_append_new(list, account_view(w, s->user, a, true));
	json_decref(resp);
	reply_json(req, HTTP_OK, "OK", json_pack("{s:s, s:o, s:I}", "user",
	    s->user, "accounts", list, "now", (json_int_t)time(NULL)));
}

/* ---- actions and the admin view --------------------------------------- */

/* The session of an admin (the flag read now), else NULL after
 * replying. change: a state-changing request (CSRF checks). */
static struct web_session *
admin_session(struct web *w, struct evhttp_request *req, bool change,
    const char *what)
{
	struct web_session *s = change ? session_for_change(w, req, what) :
	    session_of(w, req);
	const char *error = NULL;
	char q[LOG_QUOTE_MAX];

	if (s == NULL) {
		if (!change)
			reply_error(req, 401, "Unauthorized", "please sign in");
		return NULL;
	}
	if (user_is_admin(w->gw->store, s->user, NULL, &error) != 1) {
		log_warn("web event=admin-refused ip=%s user=%s action=%s",
		    peer_addr(req), log_quote(q, sizeof(q), s->user), what);
		reply_error(req, 403, "Forbidden", "for admins only");
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
	ok = reply_action(req, json_incref(resp), msg);
	log_info("web event=%s ip=%s%s%s user=%s account=%s result=%s",
	    lg->what, lg->addr, lg->admin[0] != '\0' ? " admin=" : "",
	    lg->admin, lg->user, lg->account, ok ? "ok" : "refused");
}

/* oauth.start's answer: the user code and where to enter it. */
static void
signin_done(struct web *w, struct evhttp_request *req, json_t *resp,
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
	reply_json(req, HTTP_OK, "OK", v);
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
static void
account_action_then(struct web *w, struct evhttp_request *req,
    const char *what, const char *command, const char *secret_field,
    bool admin, cmd_done_fn *done)
{
	struct web_session *s = admin ? admin_session(w, req, true, what) :
	    session_for_change(w, req, what);
	const char *user, *account, *value = NULL;
	struct action_log lg;
	json_t *body, *creq;

	if (s == NULL)
		return;
	body = read_body(req);
	if (body == NULL)
		return;
	/* without admin, the session's user: a "user" field is ignored */
	user = admin ? body_str(body, "user", WEB_SESSION_USER_MAX) : s->user;
	account = body_str(body, "account", 64);
	if (secret_field != NULL)
		value = body_str(body, secret_field, WEB_PASSWORD_MAX);
	if (user == NULL || account == NULL ||
	    (secret_field != NULL && value == NULL)) {
		json_decref(body);
		reply_error(req, HTTP_BADREQUEST, "Bad Request", secret_field ?
		    "enter the account and its new password" :
		    "which account?");
		return;
	}
	memset(&lg, 0, sizeof(lg));
	snprintf(lg.what, sizeof(lg.what), "%s", what);
	snprintf(lg.addr, sizeof(lg.addr), "%s", peer_addr(req));
	if (admin)
		log_quote(lg.admin, sizeof(lg.admin), s->user);
	log_quote(lg.user, sizeof(lg.user), user);
	log_quote(lg.account, sizeof(lg.account), account);
	creq = json_pack("{s:s, s:s}", "user", user, "account", account);
	if (secret_field != NULL)
		json_object_set_new(creq, secret_field, json_string(value));
	json_decref(body);
	run_command_then(w, req, command, creq, done, &lg);
}

static void
account_action(struct web *w, struct evhttp_request *req, const char *what,
    const char *command, const char *secret_field, bool admin)
{
	account_action_then(w, req, what, command, secret_field, admin,
	    action_done);
}

/* Whether the admin lets people add and remove their own accounts
 * ([web] self_service); false after replying. */
static bool
self_service(struct web *w, struct evhttp_request *req, const char *what)
{
	if (w->gw->config->web_self_service)
		return true;
	log_info("web event=self-service-refused ip=%s action=%s",
	    peer_addr(req), what);
	reply_error(req, 403, "Forbidden", "Your admin adds and removes the "
	    "old accounts here.");
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
	reply_json(req, HTTP_OK, "OK", json_pack("{s:O}", "account",
	    json_object_get(resp, "account")));
	log_info("web event=account-add ip=%s user=%s account=%s result=ok",
	    lg->addr, lg->user, lg->account);
}

static void
api_account_add(struct web *w, struct evhttp_request *req)
{
	static const char *const fields[] = { "host", "tls", "login",
	    "password", "account", "oauth_provider" };
	struct web_session *s = session_for_change(w, req, "account-add");
	const char *name;
	struct action_log lg;
	json_t *body, *creq, *port;

	if (s == NULL || !self_service(w, req, "account-add"))
		return;
	body = read_body(req);
	if (body == NULL)
		return;
	creq = json_pack("{s:s}", "user", s->user);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = body_str(body, fields[i], WEB_PASSWORD_MAX);

		if (v != NULL && (v[0] != '\0' ||
		    strcmp(fields[i], "password") == 0))
			json_object_set_new(creq, fields[i], json_string(v));
	}
	port = json_object_get(body, "port");
	if (json_is_integer(port) && json_integer_value(port) != 0)
		json_object_set(creq, "port", port);
	name = body_str(body, "account", 64);
	memset(&lg, 0, sizeof(lg));
	snprintf(lg.what, sizeof(lg.what), "account-add");
	snprintf(lg.addr, sizeof(lg.addr), "%s", peer_addr(req));
	log_quote(lg.user, sizeof(lg.user), s->user);
	log_quote(lg.account, sizeof(lg.account), name != NULL && name[0] !=
	    '\0' ? name : "-");
	json_decref(body);
	run_command_then(w, req, "account.add", creq, add_done, &lg);
}

static void
api_admin_accounts(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = admin_session(w, req, false, "admin-list");
	json_t *resp, *list, *a, *states;
	json_int_t done = 0, total = 0;
	size_t i, n = 0;

	if (s == NULL)
		return;
	resp = status_of(w, req, NULL);
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
		    peer_addr(req), log_quote(q, sizeof(q), s->user), n);
	}
	reply_json(req, HTTP_OK, "OK", json_pack("{s:o, s:o, s:{s:I, s:I}, "
	    "s:b, s:I}", "accounts", list, "states", states, "importing",
	    "done", done, "total", total, "truncated",
	    n > WEB_ADMIN_LIST_MAX, "now", (json_int_t)time(NULL)));
}

/* ---- dispatch --------------------------------------------------------- */

static void
asset(struct evhttp_request *req, const char *path)
{
	const struct web_asset *a = web_asset_find(path);

	if (a == NULL) {
		reply_error(req, HTTP_NOTFOUND, "Not Found", "no such page");
		return;
	}
	reply_body(req, HTTP_OK, "OK", a->type, a->data, a->size);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct web *w = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool get = cmd == EVHTTP_REQ_GET, post = cmd == EVHTTP_REQ_POST;

	if (path == NULL)
		path = "/";
	if (w->gw->shutting_down) {
		reply_error(req, HTTP_SERVUNAVAIL, "Unavailable",
		    "the gateway is restarting");
		return;
	}
	/* no user data in URLs: the API takes no query strings */
	if (uri != NULL && evhttp_uri_get_query(uri) != NULL) {
		reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    "no query strings here");
		return;
	}
	if (get && strncmp(path, "/api/", 5) != 0) {
		asset(req, path);
		return;
	}
	if (get && strcmp(path, "/api/session") == 0)
		api_session(w, req);
	else if (get && strcmp(path, "/api/accounts") == 0)
		api_accounts(w, req);
	else if (post && strcmp(path, "/api/login") == 0)
		api_login(w, req);
	else if (post && strcmp(path, "/api/logout") == 0)
		api_logout(w, req);
	else if (post && strcmp(path, "/api/check") == 0)
		account_action(w, req, "check-now", "poll", NULL, false);
	else if (get && strcmp(path, "/api/admin/accounts") == 0)
		api_admin_accounts(w, req);
	else if (post && strcmp(path, "/api/admin/check") == 0)
		account_action(w, req, "admin-check", "poll", NULL, true);
	else if (post && strcmp(path, "/api/account/signin") == 0)
		account_action_then(w, req, "account-signin", "oauth.start",
		    NULL, false, signin_done);
	else if (post && strcmp(path, "/api/admin/signin") == 0)
		account_action_then(w, req, "admin-signin", "oauth.start",
		    NULL, true, signin_done);
	else if (post && strcmp(path, "/api/admin/enable") == 0)
		account_action(w, req, "admin-enable", "account.enable", NULL,
		    true);
	else if (post && strcmp(path, "/api/admin/disable") == 0)
		account_action(w, req, "admin-disable", "account.disable",
		    NULL, true);
	else if (post && strcmp(path, "/api/account/add") == 0)
		api_account_add(w, req);
	else if (post && strcmp(path, "/api/account/delete") == 0) {
		if (self_service(w, req, "account-delete"))
			account_action(w, req, "account-delete",
			    "account.delete", NULL, false);
	} else if (post && strcmp(path, "/api/password") == 0)
		account_action(w, req, "account-password", "account.set",
		    "password", false);
	else if (!get && !post) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, POST");
		reply_error(req, HTTP_BADMETHOD, "Method Not Allowed",
		    "GET or POST only");
	} else
		reply_error(req, HTTP_NOTFOUND, "Not Found", "no such API");
}

/* ---- the connection cap ------------------------------------------------ */

/*
 * At [web] max_connections open connections the listening sockets stop
 * accepting (the kernel's backlog holds newcomers, which are served as
 * soon as a connection closes); each connection's SSL carries the web
 * under web_ssl_index, and its free, the last moment of a connection
 * however it ends, gives the slot back.
 */
static int web_ssl_index = -1;

static void
listener_set(struct evhttp_bound_socket *bs, void *arg)
{
	struct evconnlistener *l = evhttp_bound_socket_get_listener(bs);

	if (*(bool *)arg)
		evconnlistener_enable(l);
	else
		evconnlistener_disable(l);
}

static void
listeners_accept(struct web *w, bool on)
{
	w->paused = !on;
	evhttp_foreach_bound_socket(w->http, listener_set, &on);
}

static void
conn_gone(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct web *w = ptr;

	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	if (w == NULL)
		return;
	PG_ASSERT(w->conns > 0);
	w->conns--;
	if (w->paused && !w->freeing &&
	    w->conns < w->gw->config->web_max_connections) {
		listeners_accept(w, true);
		log_info("web event=accepting connections=%u", w->conns);
	}
}

/* Each accepted connection: TLS with the IMAP certificate. */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct web *w = arg;
	SSL *ssl = SSL_new(w->ctx);
	struct bufferevent *bev;

	/* NULL here would make evhttp serve the connection in clear text */
	PG_ASSERT(ssl != NULL);
	PG_ASSERT(SSL_set_ex_data(ssl, web_ssl_index, w) == 1);
	w->conns++;
	if (!w->paused && w->conns >= w->gw->config->web_max_connections) {
		listeners_accept(w, false);
		log_warn("web event=connections-full connections=%u "
		    "hint=\"newcomers wait until one closes ([web] "
		    "max_connections)\"", w->conns);
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	PG_ASSERT(bev != NULL);
	return bev;
}

static SSL_CTX *
load_ctx(const struct config *c, char *errbuf, size_t errsize)
{
	const char *error = NULL;
	SSL_CTX *ctx = tls_server_ctx_new(c->cert_file, c->key_file, &error);

	if (ctx == NULL)
		snprintf(errbuf, errsize, "[web] cert %s / key %s: %s",
		    c->cert_file, c->key_file, error != NULL ? error :
		    "cannot load");
	return ctx;
}

/* ---- sessions across a restart ------------------------------------------ */

/* The file in the data directory that carries the signed-in sessions
 * over a restart (web-session.h: hashes of the ids, never the ids). */
#define WEB_SESSIONS_FILE "web-sessions"
/* Bytes one session takes in it at most. */
#define WEB_SESSION_LINE_MAX (2 * WEB_SESSION_HEX_SIZE + 48 + \
	WEB_SESSION_USER_MAX)

static char *
sessions_path(const struct web *w)
{
	return xasprintf("%s/%s", w->gw->config->data_dir, WEB_SESSIONS_FILE);
}

/* The SHA-256 of a session id's hex form, in hex (web-session.h). */
static void
session_id_hash(const char *id, char out[WEB_SESSION_HEX_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(id, strlen(id), md, &n, EVP_sha256(), NULL) != 1 ||
	    n != WEB_SESSION_ID_BYTES) {
		/* no digest: a value no hex id hashes to */
		memset(out, 'x', WEB_SESSION_HEX_SIZE - 1);
		out[WEB_SESSION_HEX_SIZE - 1] = '\0';
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* At start: the sessions of the last run, once (the file goes). */
static void
sessions_restore(struct web *w)
{
	char *path = sessions_path(w);
	size_t max = (size_t)w->gw->config->web_sessions *
	    WEB_SESSION_LINE_MAX + 64, len = 0, skipped = 0, n;
	char *text = NULL;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		free(path);
		return;
	}
	text = xmalloc(max);
	len = fread(text, 1, max, f);
	fclose(f);
	if (unlink(path) < 0)
		log_warn("web event=sessions-file-kept path=%s error=%s", path,
		    strerror(errno));
	n = web_sessions_load(w->sessions, text, len, time(NULL), &skipped);
	explicit_bzero(text, len);
	free(text);
	log_info("web event=sessions-restored sessions=%zu skipped=%zu", n,
	    skipped);
	free(path);
}

/* At a clean stop: the live sessions for the next run (written to a
   temporary file, synced and renamed: a crash leaves none or all). */
static void
sessions_save(struct web *w)
{
	char *path = sessions_path(w), *tmp = xasprintf("%s.tmp", path);
	char *text = web_sessions_dump(w->sessions, time(NULL));
	size_t len = strlen(text);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len &&
	    fsync(fd) == 0;

	if (fd >= 0 && close(fd) < 0)
		ok = false;
	if (ok && rename(tmp, path) < 0)
		ok = false;
	if (!ok) {
		log_warn("web event=sessions-not-saved path=%s error=%s", path,
		    strerror(errno));
		unlink(tmp);
	} else {
		size_t lines = 0;

		for (const char *p = text; *p != '\0'; p++)
			lines += *p == '\n';
		log_info("web event=sessions-saved sessions=%zu",
		    lines > 0 ? lines - 1 : 0);
	}
	explicit_bzero(text, len);
	free(text);
	free(tmp);
	free(path);
}

int
web_listen(struct gateway *gw, char *errbuf, size_t errsize)
{
	const struct config *c = gw->config;
	struct web *w;

	if (!c->web_enabled)
		return 0;
	if (gw->imap == NULL) {
		snprintf(errbuf, errsize, "[web] enabled needs [imap] listen "
		    "or listen_tls: people sign in with their IMAP password");
		return -1;
	}
	if (web_ssl_index < 0)
		web_ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
		    conn_gone);
	PG_ASSERT(web_ssl_index >= 0);
	w = xcalloc(1, sizeof(*w));
	w->gw = gw;
	gw->web = w;
	w->ctx = load_ctx(c, errbuf, errsize);
	if (w->ctx == NULL)
		return -1;
	w->sessions = web_sessions_new(c->web_sessions,
	    c->web_session_timeout);
	web_sessions_set_hash(w->sessions, session_id_hash);
	sessions_restore(w);
	w->http = evhttp_new(gw->base);
	PG_ASSERT(w->http != NULL);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(w->http, WEB_HEADERS_MAX);
	evhttp_set_max_body_size(w->http, WEB_BODY_MAX);
	evhttp_set_timeout(w->http, WEB_TIMEOUT_SECS);
	evhttp_set_bevcb(w->http, bev_cb, w);
	evhttp_set_gencb(w->http, request_cb, w);
	return listeners_http_bind(w->http, c->web_listen,
	    c->web_listen_count, "web", "web", "", &w->port, errbuf,
	    errsize);
}

int
web_reload(struct gateway *gw, const struct config *nc, char *errbuf,
    size_t errsize)
{
	struct web *w = gw->web;
	SSL_CTX *ctx;

	if (w == NULL || nc->cert_file == NULL)
		return 0;
	ctx = load_ctx(nc, errbuf, errsize);
	if (ctx == NULL)
		return -1;
	/* connections already open keep theirs (each SSL holds a ref) */
	SSL_CTX_free(w->ctx);
	w->ctx = ctx;
	web_sessions_set_limits(w->sessions, nc->web_sessions,
	    nc->web_session_timeout);
	if (w->paused && w->conns < nc->web_max_connections)
		listeners_accept(w, true);
	return 0;
}

int
web_port(const struct gateway *gw)
{
	return gw->web != NULL ? gw->web->port : 0;
}

void
web_free(struct gateway *gw)
{
	struct web *w = gw->web;

	if (w == NULL)
		return;
	/* the pool has stopped: what still waits is held by a timer */
	while (w->logins != NULL)
		login_free(w->logins);
	w->freeing = true;	/* connections closed now free no slot */
	/* commands still waiting answer into nothing (their requests go
	   with evhttp) */
	for (struct cmd_wait *cw = w->waits; cw != NULL; cw = cw->next)
		cw->abandoned = true;
	w->waits = NULL;
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->sessions != NULL && web_sessions_count(w->sessions) > 0)
		sessions_save(w);
	web_sessions_free(&w->sessions);
	SSL_CTX_free(w->ctx);
	free(w);
	gw->web = NULL;
}
