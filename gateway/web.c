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
#include "gateway/web-private.h"
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
void
web_reply_json(struct evhttp_request *req, int code, const char *reason,
    json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	PG_ASSERT(s != NULL);
	reply_body(req, code, reason, "application/json; charset=utf-8", s,
	    strlen(s));
	free(s);
	json_decref(j);
}

void
web_reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *message)
{
	web_reply_json(req, code, reason, json_pack("{s:s}", "error",
	    message != NULL ? message : "that did not work"));
}

/* ---- requests --------------------------------------------------------- */

const char *
web_peer_addr(struct evhttp_request *req)
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
json_t *
web_read_body(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char buf[WEB_BODY_MAX + 1];
	json_error_t jerr;
	json_t *j;

	if (len > WEB_BODY_MAX) {
		evsecret_drain(in, len);
		web_reply_error(req, HTTP_ENTITYTOOLARGE, "Payload Too Large",
		    "request too large");
		return NULL;
	}
	evbuffer_copyout(in, buf, len);
	evsecret_drain(in, len);
	j = json_loadb(buf, len, 0, &jerr);
	explicit_bzero(buf, sizeof(buf));
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		web_reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    "the request is not a JSON object");
		return NULL;
	}
	return j;
}

const char *
web_body_str(json_t *body, const char *name, size_t max)
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
		web_reply_error(req, 415, "Unsupported Media Type",
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
	web_reply_error(req, 403, "Forbidden", "cross-site request refused");
	return false;
}

struct web_session *
web_session_of(struct web *w, struct evhttp_request *req)
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
struct web_session *
web_session_for_change(struct web *w, struct evhttp_request *req,
    const char *what)
{
	struct web_session *s;
	const char *token;
	char q[LOG_QUOTE_MAX];

	if (!same_origin_post(req))
		return NULL;
	s = web_session_of(w, req);
	if (s == NULL) {
		web_reply_error(req, 401, "Unauthorized", "please sign in");
		return NULL;
	}
	token = header(req, "X-CSRF-Token");
	if (token == NULL || !web_token_equal(token, s->csrf)) {
		log_warn("web event=csrf-refused ip=%s user=%s action=%s",
		    web_peer_addr(req), log_quote(q, sizeof(q), s->user), what);
		web_reply_error(req, 403, "Forbidden",
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
void
web_run_command_then(struct web *w, struct evhttp_request *hreq,
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
json_t *
web_run_command(struct web *w, const char *name, json_t *req,
    const char **msg_r)
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
const char *
web_command_error(json_t *resp)
{
	const char *m = json_string_value(json_object_get(json_object_get(
	    resp, "error"), "message"));

	return m != NULL ? m : "the gateway could not do that";
}

/* ---- the admin flag --------------------------------------------------- */

/* 1 admin, 0 not (or no such user), -1 store error. */
int
web_user_is_admin(struct store *store, const char *user, uint32_t *id_r,
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
	is = web_user_is_admin(gw->store, user, &id, &error);
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
json_t *
web_status_of(struct web *w, struct evhttp_request *req, const char *user)
{
	const char *msg = NULL;
	json_t *resp = web_run_command(w, "status", user != NULL ?
	    json_pack("{s:s}", "user", user) : json_object(), &msg);

	if (resp == NULL || !json_is_true(json_object_get(resp, "ok"))) {
		web_reply_error(req, HTTP_INTERNAL, "Internal Server Error",
		    resp != NULL ? web_command_error(resp) : msg);
		json_decref(resp);
		return NULL;
	}
	return resp;
}

/* Replies to an action with its command's answer (resp, taken over; NULL
 * with msg when it was refused before); true when it was done. */
bool
web_reply_action(struct evhttp_request *req, json_t *resp, const char *msg)
{
	bool ok = resp != NULL && json_is_true(json_object_get(resp, "ok"));

	if (ok)
		web_reply_json(req, HTTP_OK, "OK", json_object());
	else
		web_reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    resp != NULL ? web_command_error(resp) : msg);
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
	    s->csrf, "admin", web_user_is_admin(w->gw->store, s->user, NULL,
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
			web_reply_error(l->req, HTTP_SERVUNAVAIL, "Unavailable",
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
		web_reply_json(l->req, HTTP_OK, "OK", session_json(w, s));
	} else if (result == 0) {
		struct imap_throttle_counts c = { 0, 0, 0 };

		if (t != NULL)
			imap_throttle_failed(t, l->user, l->addr, time(NULL),
			    &c);
		/* the address first, as IMAP's line (fail2ban's <HOST>) */
		log_warn("web event=login_failed ip=%s user=%s "
		    "reason=bad_credentials failures=%u addr_failures=%u "
		    "user_failures=%u", l->addr, q, c.pair, c.addr, c.user);
		web_reply_error(l->req, 401, "Unauthorized",
		    "The user name or the password is wrong.");
	} else {
		log_warn("web event=login_error ip=%s user=%s", l->addr, q);
		web_reply_error(l->req, HTTP_SERVUNAVAIL, "Unavailable",
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
	body = web_read_body(req);
	if (body == NULL)
		return;
	user = web_body_str(body, "user", WEB_SESSION_USER_MAX);
	password = web_body_str(body, "password", WEB_PASSWORD_MAX);
	if (user == NULL || password == NULL) {
		json_decref(body);
		web_reply_error(req, HTTP_BADREQUEST, "Bad Request",
		    "enter a user name and a password");
		return;
	}
	if (imap == NULL || w->logins_pending >= WEB_LOGINS_PENDING_MAX) {
		json_decref(body);
		log_warn("web event=login_refused ip=%s reason=%s",
		    web_peer_addr(req), imap == NULL ? "no-imap" : "busy");
		web_reply_error(req, HTTP_SERVUNAVAIL, "Unavailable",
		    "sign-in is busy: try again in a moment");
		return;
	}
	l = xcalloc(1, sizeof(*l));
	l->w = w;
	l->req = req;
	l->user = xstrdup(user);
	l->password = xstrdup(password);
	l->addr = xstrdup(web_peer_addr(req));
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
	struct web_session *s = web_session_of(w, req);

	if (s == NULL) {
		web_reply_error(req, 401, "Unauthorized", "please sign in");
		return;
	}
	web_reply_json(req, HTTP_OK, "OK", session_json(w, s));
}

static void
api_logout(struct web *w, struct evhttp_request *req)
{
	struct web_session *s = web_session_for_change(w, req, "logout");
	char q[LOG_QUOTE_MAX];

	if (s == NULL)
		return;
	log_info("web event=logout ip=%s user=%s", web_peer_addr(req),
	    log_quote(q, sizeof(q), s->user));
	web_sessions_close(w->sessions, s);
	set_session_cookie(req, "", 0);
	web_reply_json(req, HTTP_OK, "OK", json_object());
}

/* ---- dispatch --------------------------------------------------------- */

static void
asset(struct evhttp_request *req, const char *path)
{
	const struct web_asset *a = web_asset_find(path);

	if (a == NULL) {
		web_reply_error(req, HTTP_NOTFOUND, "Not Found",
		    "no such page");
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
		web_reply_error(req, HTTP_SERVUNAVAIL, "Unavailable",
		    "the gateway is restarting");
		return;
	}
	/* no user data in URLs: the API takes no query strings */
	if (uri != NULL && evhttp_uri_get_query(uri) != NULL) {
		web_reply_error(req, HTTP_BADREQUEST, "Bad Request",
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
		web_api_accounts(w, req);
	else if (post && strcmp(path, "/api/login") == 0)
		api_login(w, req);
	else if (post && strcmp(path, "/api/logout") == 0)
		api_logout(w, req);
	else if (post && strcmp(path, "/api/check") == 0)
		web_account_action(w, req, "check-now", "poll", NULL, false);
	else if (get && strcmp(path, "/api/admin/accounts") == 0)
		web_api_admin_accounts(w, req);
	else if (post && strcmp(path, "/api/admin/check") == 0)
		web_account_action(w, req, "admin-check", "poll", NULL, true);
	else if (post && strcmp(path, "/api/account/signin") == 0)
		web_account_action_then(w, req, "account-signin", "oauth.start",
		    NULL, false, web_signin_done);
	else if (post && strcmp(path, "/api/admin/signin") == 0)
		web_account_action_then(w, req, "admin-signin", "oauth.start",
		    NULL, true, web_signin_done);
	else if (post && strcmp(path, "/api/admin/enable") == 0)
		web_account_action(w, req, "admin-enable", "account.enable",
		    NULL, true);
	else if (post && strcmp(path, "/api/admin/disable") == 0)
		web_account_action(w, req, "admin-disable", "account.disable",
		    NULL, true);
	else if (post && strcmp(path, "/api/account/add") == 0)
		web_api_account_add(w, req);
	else if (post && strcmp(path, "/api/account/delete") == 0) {
		if (web_account_self_service(w, req, "account-delete"))
			web_account_action(w, req, "account-delete",
			    "account.delete", NULL, false);
	} else if (post && strcmp(path, "/api/password") == 0)
		web_account_action(w, req, "account-password", "account.set",
		    "password", false);
	else if (!get && !post) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, POST");
		web_reply_error(req, HTTP_BADMETHOD, "Method Not Allowed",
		    "GET or POST only");
	} else
		web_reply_error(req, HTTP_NOTFOUND, "Not Found", "no such API");
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
