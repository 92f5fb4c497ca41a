/*
 * commands-account — the control socket's account commands (add, delete,
 * set, enable, disable, list) and status: an account's fields checked
 * before anything changes, one upstream mailbox under one account (the
 * twin check, names resolved on a worker), and the listings. See
 * commands.c for the rest and the dispatch.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "gateway/accounts.h"
#include "gateway/commands-private.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/history.h"
#include "gateway/import.h"
#include "gateway/oauth.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "log.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "workq.h"
#include "xmalloc.h"

/* Applies the optional fields of req to a (defaults already there). */
static void
apply_account_fields(struct account *a, json_t *req)
{
	const char *s;
	const char *error;

	if ((s = ctl_req_str(req, "host")) != NULL) {
		free(a->host);
		a->host = xstrdup(s);
	}
	if (json_is_integer(json_object_get(req, "port")))
		a->port = (uint16_t)ctl_req_int(req, "port", a->port);
	if ((s = ctl_req_str(req, "tls")) != NULL)
		(void)config_parse_tls(s, &a->tls, &error);
	if ((s = ctl_req_str(req, "auth")) != NULL) {
		free(a->auth);
		a->auth = xstrdup(s);
	}
	if ((s = ctl_req_str(req, "login")) != NULL) {
		free(a->login);
		a->login = xstrdup(s);
	}
	if ((s = ctl_req_str(req, "mode")) != NULL)
		(void)config_parse_mode(s, &a->mode, &a->delete_after_days,
		    &error);
	if ((s = ctl_req_str(req, "folder")) != NULL) {
		free(a->folder);
		a->folder = xstrdup(s);
	}
	if (json_is_integer(json_object_get(req, "interval")))
		a->interval = (uint32_t)ctl_req_int(req, "interval", 0);
	if (json_is_integer(json_object_get(req, "size_limit")))
		a->size_limit = (uint64_t)ctl_req_int(req, "size_limit", 0);
	if (json_is_boolean(json_object_get(req, "enabled")))
		a->enabled = ctl_req_bool(req, "enabled", true);
	/* "" unsets a path or a pin */
	if ((s = ctl_req_str(req, "ca_file")) != NULL) {
		free(a->ca_file);
		a->ca_file = s[0] != '\0' ? xstrdup(s) : NULL;
	}
	if ((s = ctl_req_str(req, "fingerprint")) != NULL) {
		free(a->fingerprint);
		a->fingerprint = s[0] != '\0' ? xstrdup(s) : NULL;
	}
	if (json_is_boolean(json_object_get(req, "ca_only")))
		a->ca_only = ctl_req_bool(req, "ca_only", false);
	if (json_is_boolean(json_object_get(req, "allow_cleartext")))
		a->allow_cleartext = ctl_req_bool(req, "allow_cleartext",
		    false);
	if ((s = ctl_req_str(req, "oauth_provider")) != NULL) {
		free(a->oauth_provider);
		a->oauth_provider = xstrdup(s);
	}
}

/*
 * Rules over an account's fields once they are all known (request and
 * defaults together). 0, or -1 with err filled; nothing is stored then.
 */
static int
check_account(struct gateway *gw, const struct account *a,
    struct ctl_error *err)
{
	if (a->tls == CONFIG_TLS_NONE && !a->allow_cleartext &&
	    !upstream_host_is_loopback(a->host)) {
		ctl_error_set(err, CTL_E_INVALID, "tls", "tls none to %s "
		    "would send the login and password in clear: say "
		    "allow_cleartext (--allow-cleartext yes) if you mean it",
		    a->host);
		return -1;
	}
	if (a->tls == CONFIG_TLS_NONE && !upstream_host_is_loopback(a->host))
		log_warn("control event=cleartext-allowed user_id=%u "
		    "account=%s host=%s note=\"tls none: the upstream login "
		    "and password cross the network in clear\"", a->user_id,
		    a->name, a->host);
	if (a->fingerprint != NULL && a->tls == CONFIG_TLS_NONE) {
		ctl_error_set(err, CTL_E_INVALID, "fingerprint",
		    "a pinned fingerprint needs tls pop3s or stls");
		return -1;
	}
	if (a->ca_only && a->ca_file == NULL &&
	    gw->config->upstream.ca_file == NULL) {
		ctl_error_set(err, CTL_E_INVALID, "ca_only",
		    "ca_only needs a CA file (the account's or "
		    "[upstream-defaults] ca_file)");
		return -1;
	}
	return oauth_check_account(gw, a, err);
}

/* ---- one upstream mailbox, one account (issue 15) ---- */

/* Host names compare without case and without a final dot. */
static bool
same_host_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* The accounts on what may be the same upstream mailbox as a new one:
 * the same port and login (case aside, as POP3 servers compare them). */
struct twins {
	struct store_read *r;
	const struct account *a;
	char *same;		/* "user/account" of one with the same name */
	char *host;		/* the new account's (when handed out) */
	char **hosts;		/* the others: their hosts, to resolve */
	char **names;
	size_t count, alloc;
};

static int
twin_account(void *ctx, const struct account *b)
{
	struct twins *t = ctx;
	char *name;

	if (b->port != t->a->port || b->host == NULL || b->login == NULL ||
	    strcasecmp(b->login, t->a->login) != 0)
		return 0;
	name = xasprintf("%s/%s", b->user, b->name);
	if (same_host_name(b->host, t->a->host)) {
		free(t->same);
		t->same = name;
		return 1;
	}
	if (t->count == t->alloc) {
		t->alloc = t->alloc == 0 ? 4 : t->alloc * 2;
		t->hosts = xreallocarray(t->hosts, t->alloc,
		    sizeof(*t->hosts));
		t->names = xreallocarray(t->names, t->alloc,
		    sizeof(*t->names));
	}
	t->hosts[t->count] = xstrdup(b->host);
	t->names[t->count] = name;
	t->count++;
	return 0;
}

static int
twin_user(void *ctx, const struct store_user_info *u)
{
	struct twins *t = ctx;
	const char *error;

	return accounts_foreach(t->r, u->id, u->name, twin_account, t,
	    &error) < 0 ? -1 : t->same != NULL;
}

static void
twins_clear(struct twins *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->hosts[i]);
		free(t->names[i]);
	}
	free(t->hosts);
	free(t->names);
	free(t->same);
	free(t->host);
	memset(t, 0, sizeof(*t));
}

/* The addresses a host name resolves to (the port aside); worker. */
static size_t
resolve_addrs(const char *host, struct sockaddr_storage *out, size_t max)
{
	struct addrinfo hints, *res = NULL;
	size_t n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	for (struct addrinfo *ai = res; ai != NULL && n < max;
	    ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(*out))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
		n++;
	}
	freeaddrinfo(res);
	return n;
}

static bool
same_addr(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
	if (x->ss_family != y->ss_family)
		return false;
	if (x->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)x)->sin_addr,
		    &((const struct sockaddr_in *)y)->sin_addr,
		    sizeof(struct in_addr)) == 0;
	if (x->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
		    &((const struct sockaddr_in6 *)y)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return false;
}

/* Addresses kept per name: enough for any sane A/AAAA set. */
#define TWIN_ADDRS_MAX 16

/* account.add waiting for host names to be resolved on a worker (the
 * resolver may block): owns copies of the names and the request. */
struct twin_job {
	struct workq_job wq;
	struct gateway *gw;
	struct control_client *client;
	json_t *req;
	struct twins t;		/* hosts and names only (r, a unset) */
	long match;		/* index into t of a twin, or -1 */
};

static enum workq_run_result
twin_job_run(struct workq_job *wq)
{
	struct twin_job *j = (struct twin_job *)wq;
	struct sockaddr_storage mine[TWIN_ADDRS_MAX], other[TWIN_ADDRS_MAX];
	size_t nm = resolve_addrs(j->t.host, mine, TWIN_ADDRS_MAX);

	j->match = -1;
	for (size_t i = 0; i < j->t.count && j->match < 0; i++) {
		size_t no = resolve_addrs(j->t.hosts[i], other,
		    TWIN_ADDRS_MAX);

		for (size_t x = 0; x < nm && j->match < 0; x++)
			for (size_t y = 0; y < no; y++)
				if (same_addr(&mine[x], &other[y])) {
					j->match = (long)i;
					break;
				}
	}
	return WORKQ_DONE;
}

static int account_add(struct gateway *gw, json_t *req,
    struct twins *twins_r, struct ctl_error *err);
static void account_add_reply(struct gateway *gw,
    struct control_client *client, json_t *req, int ret,
    struct ctl_error *err);

static void
twin_job_done(struct workq_job *wq)
{
	struct twin_job *j = (struct twin_job *)wq;
	struct ctl_error err;
	int ret;

	if (wq->cancelled) {
		ctl_error_set(&err, CTL_E_UNAVAILABLE, NULL,
		    "the daemon is shutting down");
		ret = -1;
	} else if (j->match >= 0) {
		ctl_error_set(&err, CTL_E_EXISTS, "host", "the same upstream "
		    "mailbox as account %s (host %s resolves to the same "
		    "address, same port and login); add it anyway with force",
		    j->t.names[j->match], j->t.hosts[j->match]);
		ret = -1;
	} else {
		ret = account_add(j->gw, j->req, NULL, &err);
	}
	account_add_reply(j->gw, j->client, j->req, ret, &err);
	json_decref(j->req);
	twins_clear(&j->t);
	free(j);
}

/*
 * account.add. Unless the request says force, an account on what is
 * recognisably the same upstream mailbox as one of any user's (same
 * port and login, case aside, and the same host name) is refused.
 * twins_r non-NULL: when other accounts have that port and login under
 * another host name, nothing is added, they are handed out (the host
 * names are to be resolved, off the loop) and 1 is returned.
 */
static int
account_add(struct gateway *gw, json_t *req, struct twins *twins_r,
    struct ctl_error *err)
{
	const char *user = ctl_req_str(req, "user");
	const char *name = ctl_req_str(req, "account");
	const char *password = ctl_req_str(req, "password");
	const struct config_upstream *def = &gw->config->upstream;
	struct store_read *r = NULL;
	struct account a, existing;
	const char *error = NULL;
	char *gen_name = NULL;
	uint32_t id;
	int ret = -1, found;

	memset(&a, 0, sizeof(a));
	if (password != NULL && strlen(password) > UPSTREAM_PASSWORD_MAX) {
		/* the poller would refuse it: never stored, never polled */
		ctl_error_set(err, CTL_E_INVALID, "password", "is longer than "
		    "%d bytes (an upstream POP3 password)",
		    UPSTREAM_PASSWORD_MAX);
		return -1;
	}
	if (store_read_begin(gw->store, &r, &error) < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "read: %s", error);
		return -1;
	}
	found = store_user_lookup(r, user, &id, &error);
	if (found == STORE_NOT_FOUND) {
		char esc[LOG_PEER_TEXT_MAX + 1];

		log_escape(esc, sizeof(esc), user, strlen(user));
		ctl_error_set(err, CTL_E_UNKNOWN_USER, "user",
		    "no user \"%s\"", esc);
		goto out;
	}
	if (found < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "user lookup: %s",
		    error);
		goto out;
	}
	if (name == NULL) {
		/* login@host when that is a valid name, else accountN */
		gen_name = xasprintf("%s@%s", ctl_req_str(req, "login"),
		    ctl_req_str(req, "host") != NULL ?
		    ctl_req_str(req, "host") : "?");
		if (!account_name_valid(gen_name) ||
		    strchr(ctl_req_str(req, "login"), '@') != NULL) {
			for (unsigned n = 1;; n++) {
				free(gen_name);
				gen_name = xasprintf("account%u", n);
				if (accounts_get(r, id, user, gen_name,
				    &existing, &error) != 0)
					break;
				account_clear(&existing);
			}
		}
		name = gen_name;
	}
	found = accounts_get(r, id, user, name, &existing, &error);
	if (found == 0) {
		account_clear(&existing);
		ctl_error_set(err, CTL_E_EXISTS, "account",
		    "user %s already has an account \"%s\"", user, name);
		goto out;
	}
	if (found < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "account lookup: %s",
		    error);
		goto out;
	}
	a.user = xstrdup(user);
	a.user_id = id;
	a.name = xstrdup(name);
	a.tls = def->tls;
	a.auth = xstrdup("auto");
	a.mode = def->mode;
	a.delete_after_days = def->delete_after_days;
	a.folder = xstrdup(def->folder);
	a.interval = def->interval;
	a.size_limit = def->size_limit;
	a.enabled = true;
	a.created = (int64_t)time(NULL);
	oauth_account_defaults(gw, &a, ctl_req_str(req, "oauth_provider"));
	apply_account_fields(&a, req);
	if (a.port == 0)
		a.port = a.tls == CONFIG_TLS_POP3S ? 995 : 110;
	if (a.host == NULL) {
		ctl_error_set(err, CTL_E_MISSING_FIELD, "host",
		    "account.add needs \"host\" (the provider has none)");
		goto out;
	}
	if (check_account(gw, &a, err) < 0)
		goto out;
	if (!ctl_req_bool(req, "force", false)) {
		struct twins t = { .r = r, .a = &a };

		if (store_user_foreach(r, twin_user, &t, &error) < 0) {
			ctl_error_set(err, CTL_E_STORE, NULL, "account list: %s",
			    error != NULL ? error : "store error");
			twins_clear(&t);
			goto out;
		}
		if (t.same != NULL) {
			ctl_error_set(err, CTL_E_EXISTS, "host", "the same "
			    "upstream mailbox as account %s (same host, port "
			    "and login); add it anyway with force", t.same);
			twins_clear(&t);
			goto out;
		}
		if (twins_r != NULL && t.count > 0) {
			t.r = NULL;
			t.a = NULL;
			t.host = xstrdup(a.host);
			*twins_r = t;
			ret = 1;
			goto out;
		}
		twins_clear(&t);
	}
	if (account_seal_password(&a, gw->key, password != NULL ? password :
	    "") < 0) {
		ctl_error_set(err, CTL_E_INTERNAL, NULL,
		    "cannot encrypt the password");
		goto out;
	}
	store_read_end(&r);
	if (cmd_account_folder_prepare(gw, &a, err) < 0)
		goto out;
	if (accounts_put(gw->store, &a, &error) < 0) {
		ctl_error_set(err, CTL_E_STORE, NULL, "account.add: %s",
		    error);
		goto out;
	}
	gw->stats.accounts_added++;
	log_info("control event=account-added user_id=%u account=%s", id,
	    a.name);
	upstreams_update(gw->upstreams, &a);
	json_object_set_new(req, "account", json_string(a.name));
	ret = 0;
out:
	store_read_end(&r);
	account_clear(&a);
	free(gen_name);
	return ret;
}

int
gateway_account_add(struct gateway *gw, json_t *req,
    struct ctl_error *err)
{
	/* import and pass-through: the name check only (no resolver on
	   the loop) */
	return account_add(gw, req, NULL, err);
}

static void
account_add_reply(struct gateway *gw, struct control_client *client,
    json_t *req, int ret, struct ctl_error *err)
{
	json_t *resp;

	if (ret < 0) {
		gw->stats.control_errors++;
		control_reply_error(client, err);
		return;
	}
	resp = ctl_ok_json();
	json_object_set(resp, "account", json_object_get(req, "account"));
	control_reply(client, resp);
}

void
commands_account_add(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct ctl_error err;
	struct twin_job *j;
	struct twins t;
	int ret;

	memset(&t, 0, sizeof(t));
	ret = account_add(gw, req, &t, &err);
	if (ret != 1) {
		account_add_reply(gw, client, req, ret, &err);
		return;
	}
	/* other accounts with this port and login: do the names resolve
	   to a common address? On a worker (the resolver may block); the
	   account is added (names checked again) when it answers */
	j = xcalloc(1, sizeof(*j));
	j->gw = gw;
	j->client = client;
	j->req = json_incref(req);
	j->t = t;
	j->wq.run = twin_job_run;
	j->wq.done = twin_job_done;
	workq_submit(gw->workq, &j->wq);
}

int
gateway_load_account(struct gateway *gw, struct control_client *client,
    json_t *req, struct account *a_r)
{
	const char *user = ctl_req_str(req, "user");
	const char *name = ctl_req_str(req, "account");
	struct store_read *r = NULL;
	const char *error = NULL;
	uint32_t id;
	int ret;

	if (store_read_begin(gw->store, &r, &error) < 0) {
		cmd_store_error(gw, client, "read", error);
		return -1;
	}
	if (cmd_find_user(gw, client, r, user, &id) < 0) {
		store_read_end(&r);
		return -1;
	}
	ret = accounts_get(r, id, user, name, a_r, &error);
	store_read_end(&r);
	if (ret == STORE_NOT_FOUND) {
		cmd_reply_error(gw, client, CTL_E_UNKNOWN_ACCOUNT, "account",
		    "user %s has no account \"%s\"", user, name);
		return -1;
	}
	if (ret < 0) {
		cmd_store_error(gw, client, "account lookup", error);
		return -1;
	}
	return 0;
}

void
commands_account_delete(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct account a;
	const char *error = NULL;

	if (gateway_load_account(gw, client, req, &a) < 0)
		return;
	/* Stop the poller first: a delete mid-RETR sends no DELE. */
	upstreams_remove(gw->upstreams, a.user_id, a.name);
	if (accounts_delete(gw->store, a.user_id, a.name, &error) < 0) {
		account_clear(&a);
		cmd_store_error(gw, client, "account.delete", error);
		return;
	}
	/* the ledger stays (nothing is fetched twice if it comes back);
	   its poll history goes with it */
	(void)history_delete(gw->store, a.user_id, a.name, &error);
	gw->stats.accounts_deleted++;
	log_info("control event=account-deleted user_id=%u account=%s",
	    a.user_id, a.name);
	account_clear(&a);
	control_reply(client, ctl_ok_json());
}

static void
save_account(struct gateway *gw, struct control_client *client,
    struct account *a, const char *what)
{
	const char *error = NULL;
	json_t *resp;

	if (accounts_put(gw->store, a, &error) < 0) {
		cmd_store_error(gw, client, what, error);
		return;
	}
	log_info("control event=%s user_id=%u account=%s", what, a->user_id,
	    a->name);
	upstreams_update(gw->upstreams, a);
	resp = ctl_ok_json();
	json_object_set_new(resp, "account", account_to_public(a));
	control_reply(client, resp);
}

void
commands_account_set(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct account a;
	struct ctl_error err;
	const char *password = ctl_req_str(req, "password");

	if (password != NULL && strlen(password) > UPSTREAM_PASSWORD_MAX) {
		cmd_reply_error(gw, client, CTL_E_INVALID, "password",
		    "is longer than %d bytes (an upstream POP3 password)",
		    UPSTREAM_PASSWORD_MAX);
		return;
	}
	if (gateway_load_account(gw, client, req, &a) < 0)
		return;
	apply_account_fields(&a, req);
	if (check_account(gw, &a, &err) < 0) {
		account_clear(&a);
		gw->stats.control_errors++;
		control_reply_error(client, &err);
		return;
	}
	if (password != NULL &&
	    account_seal_password(&a, gw->key, password) < 0) {
		account_clear(&a);
		cmd_reply_error(gw, client, CTL_E_INTERNAL, NULL,
		    "cannot encrypt the password");
		return;
	}
	save_account(gw, client, &a, "account-changed");
	account_clear(&a);
}

static void
set_enabled(struct gateway *gw, struct control_client *client, json_t *req,
    bool enabled)
{
	struct account a;

	if (gateway_load_account(gw, client, req, &a) < 0)
		return;
	a.enabled = enabled;
	save_account(gw, client, &a, enabled ? "account-enabled" :
	    "account-disabled");
	account_clear(&a);
}

void
commands_account_enable(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	set_enabled(gw, client, req, true);
}

void
commands_account_disable(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	set_enabled(gw, client, req, false);
}

struct alist_ctx {
	struct gateway *gw;
	struct store_read *r;
	json_t *array;
	bool with_status;
};

static int
alist_account(void *arg, const struct account *a)
{
	struct alist_ctx *ac = arg;
	json_t *j = account_to_public(a);

	if (ac->with_status) {
		json_t *st = upstreams_status_json(ac->gw->upstreams, a);
		const char *error = NULL;
		json_t *hist = history_get(ac->r, a->user_id, a->name,
		    &error);

		/* FETCHED and LAST SUCCESS as kept across restarts */
		history_merge_status(st, hist);
		json_decref(hist);
		json_object_set_new(j, "status", st);
	}
	json_array_append_new(ac->array, j);
	return 0;
}

static int
alist_user(void *arg, const struct store_user_info *info)
{
	struct alist_ctx *ac = arg;
	const char *error;

	return accounts_foreach(ac->r, info->id, info->name, alist_account,
	    ac, &error) < 0 ? -1 : 0;
}

static void
list_accounts(struct gateway *gw, struct control_client *client,
    json_t *req, bool with_status)
{
	struct alist_ctx ac = { gw, NULL, json_array(), with_status };
	const char *user = ctl_req_str(req, "user");
	const char *error = NULL;
	json_t *resp;
	int ret;

	if (store_read_begin(gw->store, &ac.r, &error) < 0) {
		json_decref(ac.array);
		cmd_store_error(gw, client, "read", error);
		return;
	}
	if (user != NULL) {
		uint32_t id;

		if (cmd_find_user(gw, client, ac.r, user, &id) < 0) {
			store_read_end(&ac.r);
			json_decref(ac.array);
			return;
		}
		ret = accounts_foreach(ac.r, id, user, alist_account, &ac,
		    &error);
	} else {
		ret = store_user_foreach(ac.r, alist_user, &ac, &error);
	}
	store_read_end(&ac.r);
	if (ret < 0) {
		json_decref(ac.array);
		cmd_store_error(gw, client, "list", error);
		return;
	}
	resp = ctl_ok_json();
	json_object_set_new(resp, "accounts", ac.array);
	if (with_status) {
		json_object_set_new(resp, "import", import_status_json(gw));
		json_object_set_new(resp, "store", cmd_store_space_json(gw));
	}
	control_reply(client, resp);
}

void
commands_account_list(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	list_accounts(gw, client, req, false);
}

void
commands_status(struct gateway *gw, struct control_client *client, json_t *req)
{
	list_accounts(gw, client, req, true);
}
