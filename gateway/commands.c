/*
 * commands — the control socket's commands, on top of the store, the
 * secret key and the upstream poller. Every handler validates against the
 * store before it changes anything, so an error reply means nothing
 * changed. The request's syntax was checked by control-proto already.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway/admin-store.h"
#include "gateway/accounts.h"
#include "gateway/backup.h"
#include "gateway/commands-private.h"
#include "gateway/user-move.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/history.h"
#include "gateway/import.h"
#include "gateway/oauth.h"
#include "gateway/pwhash.h"
#include "gateway/reindex.h"
#include "gateway/secret.h"
#include "gateway/upstreams.h"
#include "gateway/web.h"
#include "imap-frontend/imap-server.h"
#include "log.h"
#include "password.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "username.h"
#include "version.h"
#include "workq.h"
#include "xmalloc.h"

typedef void command_fn(struct gateway *gw, struct control_client *client,
    json_t *req);

void
cmd_reply_error(struct gateway *gw, struct control_client *client,
    const char *code, const char *field, const char *fmt, ...)
{
	struct ctl_error err;
	va_list ap;

	err.code = code;
	err.field = field;
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof(err.message), fmt, ap);
	va_end(ap);
	gw->stats.control_errors++;
	control_reply_error(client, &err);
}

void
cmd_store_error(struct gateway *gw, struct control_client *client,
    const char *what, const char *error)
{
	cmd_reply_error(gw, client, CTL_E_STORE, NULL, "%s: %s", what,
	    error != NULL ? error : "store error");
}

/* Looks a user up; on failure replies and returns -1. */
int
cmd_find_user(struct gateway *gw, struct control_client *client,
    struct store_read *r, const char *user, uint32_t *id_r)
{
	const char *error = NULL;
	int ret = store_user_lookup(r, user, id_r, &error);

	if (ret == STORE_NOT_FOUND) {
		char esc[LOG_PEER_TEXT_MAX + 1];

		log_escape(esc, sizeof(esc), user, strlen(user));
		cmd_reply_error(gw, client, CTL_E_UNKNOWN_USER, "user",
		    "no user \"%s\"", esc);
		return -1;
	}
	if (ret < 0) {
		cmd_store_error(gw, client, "user lookup", error);
		return -1;
	}
	return 0;
}

/* find_user in a read transaction of its own; on failure replies and
   returns -1. */
static int
lookup_user_id(struct gateway *gw, struct control_client *client,
    const char *user, uint32_t *id_r)
{
	struct store_read *r = NULL;
	const char *error = NULL;
	int ret;

	if (store_read_begin(gw->store, &r, &error) < 0) {
		cmd_store_error(gw, client, "read", error);
		return -1;
	}
	ret = cmd_find_user(gw, client, r, user, id_r);
	store_read_end(&r);
	return ret;
}

/* ---- users ---------------------------------------------------------- */

struct name_entry {
	uint32_t id;
	char *name;
	char *canon;
};

struct name_list {
	struct name_entry *v;
	size_t count, alloc;
	bool fold;
};

static int
collect_name(void *ctx, const struct store_user_info *info)
{
	struct name_list *l = ctx;

	if (l->count == l->alloc) {
		l->alloc = l->alloc == 0 ? 64 : l->alloc * 2;
		l->v = xreallocarray(l->v, l->alloc, sizeof(*l->v));
	}
	l->v[l->count].id = info->id;
	l->v[l->count].name = xstrdup(info->name);
	l->v[l->count].canon = username_canon_dup(info->name, l->fold);
	l->count++;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int c = strcmp(x->canon, y->canon);

	return c != 0 ? c : (x->id > y->id) - (x->id < y->id);
}

/* Canonical user names: a name alone under its canonical form is given
 * it; names that share one are reported, each with the ids of the
 * others, and left alone. */
static int
user_names_canonicalise(struct store *store, bool fold, unsigned *collisions_r,
    char *err, size_t errsize)
{
	struct name_list l = { .fold = fold };
	struct store_read *r = NULL;
	const char *error = NULL;
	char q1[LOG_QUOTE_MAX], q2[LOG_QUOTE_MAX];
	unsigned renamed = 0, collisions = 0;
	int ret = -1;

	if (store_read_begin(store, &r, &error) < 0 ||
	    store_user_foreach(r, collect_name, &l, &error) < 0) {
		snprintf(err, errsize, "store: user names: %s",
		    error != NULL ? error : "store error");
		goto out;
	}
	store_read_end(&r);
	if (l.count > 0)
		qsort(l.v, l.count, sizeof(*l.v), name_cmp);
	for (size_t i = 0, j; i < l.count; i = j) {
		for (j = i + 1; j < l.count &&
		    strcmp(l.v[i].canon, l.v[j].canon) == 0; j++)
			;
		if (j - i > 1) {
			for (size_t k = i; k < j; k++) {
				log_error("gateway event=user-name-collision "
				    "user=%s user_id=%u canonical=%s "
				    "same_as=%u", log_quote(q1, sizeof(q1),
				    l.v[k].name), l.v[k].id, log_quote(q2,
				    sizeof(q2), l.v[k].canon),
				    l.v[k == i ? i + 1 : i].id);
				collisions++;
			}
			continue;
		}
		if (strcmp(l.v[i].name, l.v[i].canon) == 0)
			continue;
		if (store_user_rename(store, l.v[i].id, l.v[i].canon,
		    &error) < 0) {
			snprintf(err, errsize, "store: user %u: rename: %s",
			    l.v[i].id, error != NULL ? error : "store error");
			goto out;
		}
		log_info("gateway event=user-renamed user_id=%u from=%s to=%s "
		    "reason=canonical-name", l.v[i].id, log_quote(q1,
		    sizeof(q1), l.v[i].name), log_quote(q2, sizeof(q2),
		    l.v[i].canon));
		renamed++;
	}
	if (renamed > 0)
		log_info("gateway event=user-names-canonical renamed=%u",
		    renamed);
	if (collisions > 0)
		log_error("gateway event=user-name-collisions names=%u "
		    "hint=\"the control socket reaches each by its exact "
		    "name; keep one (popgatectl user delete NAME)\"",
		    collisions);
	ret = 0;
out:
	store_read_end(&r);
	if (collisions_r != NULL)
		*collisions_r = collisions;
	for (size_t i = 0; i < l.count; i++) {
		free(l.v[i].name);
		free(l.v[i].canon);
	}
	free(l.v);
	return ret;
}

int
gateway_store_upgrade(struct store *store, bool fold_user_names,
    unsigned *collisions_r, char *err, size_t errsize)
{
	const char *error = NULL;
	unsigned users = 0;

	if (user_names_canonicalise(store, fold_user_names, collisions_r, err,
	    errsize) < 0)
		return -1;

	if (store_subscriptions_default_once(store, &users, &error) < 0) {
		snprintf(err, errsize, "store: default subscriptions: %s",
		    error != NULL ? error : "store error");
		return -1;
	}
	if (users > 0)
		log_info("gateway event=default_subscriptions users=%u", users);
	return 0;
}

/* An upstream account's target folder exists and is subscribed from the
 * account's creation (as Dovecot's auto = subscribe), so a client that
 * shows subscribed folders only sees where the mail arrives. */
int
cmd_account_folder_prepare(struct gateway *gw, const struct account *a,
    struct ctl_error *err)
{
	const char *error = NULL;

	if (admin_store_mailbox_create(gw->store, a->user_id, a->folder,
	    &error) < 0 &&
	    store_last_error(gw->store) != STORE_ERR_EXISTS) {
		ctl_error_set(err, store_last_error(gw->store) ==
		    STORE_ERR_INVALID ? CTL_E_INVALID : CTL_E_STORE, "folder",
		    "%s", error != NULL ? error : "cannot create the folder");
		return -1;
	}
	if (admin_store_mailbox_subscribe(gw->store, a->user_id, a->folder,
	    &error) < 0) {
		ctl_error_set(err, CTL_E_STORE, "folder", "subscribe: %s",
		    error != NULL ? error : "store error");
		return -1;
	}
	return 0;
}

int
gateway_user_create_hashed(struct gateway *gw, const char *user,
    const char *hash, uint32_t *id_r, struct ctl_error *err)
{
	const char *error = NULL;
	char *canon = username_canon_dup(user, gw->config->fold_user_names);
	int ret = -1;

	if (admin_store_user_create(gw->store, canon, hash,
	    STORE_USER_DEFAULT_MAILBOXES, id_r, &error) < 0) {
		if (store_last_error(gw->store) == STORE_ERR_EXISTS)
			ctl_error_set(err, CTL_E_EXISTS, "user",
			    "user exists already");
		else if (store_last_error(gw->store) == STORE_ERR_INVALID)
			ctl_error_set(err, CTL_E_INVALID, "user", "%s",
			    error != NULL ? error : "invalid user name");
		else
			ctl_error_set(err, CTL_E_STORE, NULL, "user.add: %s",
			    error != NULL ? error : "store error");
		goto out;
	}
	gw->stats.users_added++;
	ret = 0;
out:
	free(canon);
	return ret;
}

int
gateway_user_create(struct gateway *gw, const char *user,
    const char *password, uint32_t *id_r, struct ctl_error *err)
{
	char hash[PASSWORD_ENCODED_MAX];
	const char *error = NULL;
	int ret;

	if (password_hash(password, strlen(password), hash, &error) < 0) {
		ctl_error_set(err, CTL_E_INTERNAL, "password",
		    "cannot hash the password: %s", error);
		return -1;
	}
	ret = gateway_user_create_hashed(gw, user, hash, id_r, err);
	secure_zero(hash, sizeof(hash));
	return ret;
}

/* user.add and user.passwd waiting for their hash (pwhash.h); the
 * client stays busy until the reply. */
struct user_hash_wait {
	struct gateway *gw;
	struct control_client *client;
	char *user;
	uint32_t id;		/* user.passwd */
	bool passwd;
};

static void
user_hash_done(void *arg, const char *hash, const char *hash_error,
    bool stopping)
{
	struct user_hash_wait *w = arg;
	struct gateway *gw = w->gw;
	struct ctl_error err;
	const char *error = NULL;
	json_t *resp;
	uint32_t id;

	if (hash == NULL) {
		ctl_error_set(&err, stopping ? CTL_E_UNAVAILABLE :
		    CTL_E_INTERNAL, "password", "cannot hash the password: "
		    "%s", hash_error);
		gw->stats.control_errors++;
		control_reply_error(w->client, &err);
	} else if (w->passwd) {
		if (admin_store_user_set_hash(gw->store, w->id, hash,
		    &error) < 0) {
			cmd_store_error(gw, w->client, "user.passwd", error);
		} else {
			log_info("control event=password-changed user_id=%u",
			    w->id);
			control_reply(w->client, ctl_ok_json());
		}
	} else if (gateway_user_create_hashed(gw, w->user, hash, &id,
	    &err) < 0) {
		gw->stats.control_errors++;
		control_reply_error(w->client, &err);
	} else {
		log_info("control event=user-added user_id=%u", id);
		resp = ctl_ok_json();
		json_object_set_new(resp, "user", json_string(w->user));
		json_object_set_new(resp, "id", json_integer(id));
		control_reply(w->client, resp);
	}
	free(w->user);
	free(w);
}

static void
user_hash_start(struct gateway *gw, struct control_client *client,
    const char *user, uint32_t id, bool passwd, const char *password)
{
	struct user_hash_wait *w = xcalloc(1, sizeof(*w));

	w->gw = gw;
	w->client = client;
	w->user = xstrdup(user);
	w->id = id;
	w->passwd = passwd;
	pwhash_submit(gw->workq, password, strlen(password), user_hash_done,
	    w);
}

static void
cmd_user_add(struct gateway *gw, struct control_client *client, json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	const char *password = ctl_req_str(req, "password");
	struct store_read *r = NULL;
	const char *error = NULL;
	char *canon;
	uint32_t id;
	int found;

	/* a name taken is answered at once, without a hash first (the
	   create checks again: another command may come between) */
	if (store_read_begin(gw->store, &r, &error) < 0) {
		cmd_store_error(gw, client, "read", error);
		return;
	}
	canon = username_canon_dup(user, gw->config->fold_user_names);
	found = store_user_lookup(r, canon, &id, &error);
	store_read_end(&r);
	free(canon);
	if (found == 0) {
		cmd_reply_error(gw, client, CTL_E_EXISTS, "user",
		    "user exists already");
		return;
	}
	if (found < 0 && found != STORE_NOT_FOUND) {
		cmd_store_error(gw, client, "user lookup", error);
		return;
	}
	user_hash_start(gw, client, user, 0, false, password);
}

static void
cmd_user_delete(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	const char *error = NULL;
	uint32_t id;

	if (lookup_user_id(gw, client, user, &id) < 0)
		return;
	/* Stop polling first: no delivery may race the deletion. */
	upstreams_remove_user(gw->upstreams, id);
	gateway_close_user_sessions(gw, user);
	if (admin_store_user_delete(gw->store, id, &error) < 0) {
		cmd_store_error(gw, client, "user.delete", error);
		return;
	}
	gw->stats.users_deleted++;
	log_info("control event=user-deleted user_id=%u", id);
	control_reply(client, ctl_ok_json());
}

static void
cmd_user_passwd(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	uint32_t id;

	if (lookup_user_id(gw, client, user, &id) < 0)
		return;
	user_hash_start(gw, client, user, id, true,
	    ctl_req_str(req, "password"));
}

/* user.quota: "default" (the [store] quota), "none", or a size; without
 * "quota" only shows it. Replies with the quota in force and the usage. */
static void
cmd_user_quota(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	const char *q = ctl_req_str(req, "quota");
	const char *error = NULL;
	struct store_read *r = NULL;
	uint64_t limit = 0, used = 0;
	bool own = false;
	uint32_t id;

	if (lookup_user_id(gw, client, user, &id) < 0)
		return;
	if (q != NULL) {
		bool set_own = strcmp(q, "default") != 0;
		uint64_t bytes = 0;

		if (set_own && strcmp(q, "none") != 0 &&
		    (config_parse_size(q, &bytes, &error) < 0 || bytes == 0)) {
			cmd_reply_error(gw, client, CTL_E_INVALID, "quota",
			    "quota: \"default\", \"none\" or a size such as "
			    "500M");
			return;
		}
		if (admin_store_quota_set(gw->store, id, set_own, bytes,
		    &error) < 0) {
			cmd_store_error(gw, client, "user.quota", error);
			return;
		}
		log_info("control event=quota-set user_id=%u quota=%s", id, q);
	}
	if (store_read_begin(gw->store, &r, &error) < 0 ||
	    store_user_quota_get(r, id, &limit, &own, &error) < 0 ||
	    store_user_usage(r, id, &used, &error) < 0) {
		store_read_end(&r);
		cmd_store_error(gw, client, "user.quota", error);
		return;
	}
	store_read_end(&r);
	{
		json_t *resp = ctl_ok_json();

		json_object_set_new(resp, "user", json_string(user));
		json_object_set_new(resp, "quota_bytes",
		    json_integer((json_int_t)limit));
		json_object_set_new(resp, "own", json_boolean(own));
		json_object_set_new(resp, "used_bytes",
		    json_integer((json_int_t)used));
		control_reply(client, resp);
	}
}

/* The store's room, for status: what is used, the map, the disk. */
json_t *
cmd_store_space_json(struct gateway *gw)
{
	struct store_space sp;
	const char *error = NULL;
	json_t *j;

	if (store_space_get(gw->store, &sp, &error) < 0)
		return json_null();
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:b}",
	    "used_bytes", (json_int_t)sp.used,
	    "map_size", (json_int_t)sp.map_size,
	    "map_max", (json_int_t)sp.map_max,
	    "file_bytes", (json_int_t)sp.file_size,
	    "disk_free_bytes", (json_int_t)sp.disk_free,
	    "capacity_bytes", (json_int_t)sp.capacity,
	    "map_grows", (int)sp.grows,
	    "near_full", sp.near_full);
	if (sp.near_full) {
		char w[200];

		snprintf(w, sizeof(w), "store near full: %llu MB used of %llu "
		    "MB it can reach (%llu MB free on disk)",
		    (unsigned long long)(sp.used >> 20),
		    (unsigned long long)(sp.capacity >> 20),
		    (unsigned long long)(sp.disk_free >> 20));
		json_object_set_new(j, "warning", json_string(w));
	}
	return j;
}

struct list_ctx {
	struct gateway *gw;
	struct store_read *r;
	json_t *array;
};

static int
count_account(void *arg, const struct account *a)
{
	(*(int *)arg)++;
	return 0;
}

static int
list_user(void *arg, const struct store_user_info *info)
{
	struct list_ctx *lc = arg;
	int accounts = 0;
	const char *error;

	accounts_foreach(lc->r, info->id, info->name, count_account,
	    &accounts, &error);
	json_array_append_new(lc->array, json_pack("{s:s, s:i, s:I, s:i, "
	    "s:b}", "user", info->name, "id", (int)info->id,
	    "created", (json_int_t)info->created, "accounts", accounts,
	    "password", info->password_hash[0] != '\0'));
	return 0;
}

static void
cmd_user_list(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct list_ctx lc = { gw, NULL, json_array() };
	const char *error = NULL;
	json_t *resp;

	if (store_read_begin(gw->store, &lc.r, &error) < 0 ||
	    store_user_foreach(lc.r, list_user, &lc, &error) < 0) {
		store_read_end(&lc.r);
		json_decref(lc.array);
		cmd_store_error(gw, client, "user.list", error);
		return;
	}
	store_read_end(&lc.r);
	resp = ctl_ok_json();
	json_object_set_new(resp, "users", lc.array);
	control_reply(client, resp);
}

/* ---- poll, import --------------------------------------------------- */

static void
cmd_poll(struct gateway *gw, struct control_client *client, json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	const char *name = ctl_req_str(req, "account");
	uint32_t id = 0;
	unsigned int started, queued;
	json_t *resp;

	if (name != NULL && user == NULL) {
		cmd_reply_error(gw, client, CTL_E_MISSING_FIELD, "user",
		    "poll with \"account\" needs \"user\"");
		return;
	}
	if (user != NULL) {
		struct account a;

		if (name != NULL) {
			if (gateway_load_account(gw, client, req, &a) < 0)
				return;
			id = a.user_id;
			account_clear(&a);
		} else {
			if (lookup_user_id(gw, client, user, &id) < 0)
				return;
		}
	}
	if (!upstreams_available(gw->upstreams)) {
		cmd_reply_error(gw, client, CTL_E_UNAVAILABLE, NULL,
		    "this build has no upstream poller");
		return;
	}
	started = upstreams_poll_now(gw->upstreams, user != NULL, id, name,
	    &queued);
	gw->stats.polls_requested += started + queued;
	resp = ctl_ok_json();
	json_object_set_new(resp, "polls_started", json_integer(started));
	json_object_set_new(resp, "polls_queued", json_integer(queued));
	control_reply(client, resp);
}

static void
cmd_import(struct gateway *gw, struct control_client *client, json_t *req)
{
	struct ctl_error err;

	if (import_start(gw, client, ctl_req_str(req, "csv"),
	    ctl_req_bool(req, "dry_run", false), &err) < 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
	}
	/* import_start replies when the import is done */
}

static void
cmd_account_history(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct account a;
	struct store_read *r = NULL;
	const char *error = NULL;
	json_t *hist, *resp, *recent;
	size_t limit = (size_t)ctl_req_int(req, "limit", HISTORY_POLLS_MAX);

	if (gateway_load_account(gw, client, req, &a) < 0)
		return;
	if (store_read_begin(gw->store, &r, &error) < 0) {
		account_clear(&a);
		cmd_store_error(gw, client, "read", error);
		return;
	}
	hist = history_get(r, a.user_id, a.name, &error);
	store_read_end(&r);
	if (hist == NULL && error != NULL) {
		account_clear(&a);
		cmd_store_error(gw, client, "account.history", error);
		return;
	}
	if (hist == NULL)
		hist = json_pack("{s:i, s:i, s:i, s:i, s:i, s:n, s:n, s:[]}",
		    "fetched", 0, "bytes", 0, "deleted", 0, "polls", 0,
		    "failures", 0, "last_poll", "last_success", "recent");
	recent = json_object_get(hist, "recent");
	while (json_array_size(recent) > limit)
		json_array_remove(recent, json_array_size(recent) - 1);
	resp = ctl_ok_json();
	json_object_set_new(resp, "user", json_string(a.user));
	json_object_set_new(resp, "account", json_string(a.name));
	json_object_set_new(resp, "history", hist);
	json_object_set_new(resp, "status", upstreams_status_json(
	    gw->upstreams, &a));
	account_clear(&a);
	control_reply(client, resp);
}

/* ---- daemon --------------------------------------------------------- */

static void
cmd_sessions(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	json_t *sessions = gateway_sessions_json(gw, ctl_req_str(req, "user"));
	json_t *resp;

	resp = ctl_ok_json();
	json_object_set_new(resp, "sessions", sessions);
	control_reply(client, resp);
}

static void
cmd_stats(struct gateway *gw, struct control_client *client, json_t *req)
{
	const struct gateway_stats *s = &gw->stats;
	json_t *resp = ctl_ok_json();
	json_t *st;

	st = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:i}",
	    "uptime", (json_int_t)(time(NULL) - gw->started),
	    "control_requests", (json_int_t)s->control_requests,
	    "control_errors", (json_int_t)(s->control_errors +
	    control_bad_requests(gw->control)),
	    "users_added", (json_int_t)s->users_added,
	    "users_deleted", (json_int_t)s->users_deleted,
	    "accounts_added", (json_int_t)s->accounts_added,
	    "accounts_deleted", (json_int_t)s->accounts_deleted,
	    "polls_requested", (json_int_t)s->polls_requested,
	    "reloads", (json_int_t)s->reloads,
	    "reload_failures", (json_int_t)s->reload_failures,
	    "passthrough_ok", (json_int_t)s->passthrough_ok,
	    "passthrough_failed", (json_int_t)s->passthrough_failed,
	    "control_clients", (int)control_client_count(gw->control));
	json_object_set_new(st, "pid", json_integer(getpid()));
	json_object_set_new(st, "version", json_string(
	    popgate_version_long()));
	gateway_stats_add(gw, st);
	json_object_set_new(resp, "stats", st);
	control_reply(client, resp);
}

struct user_ids {
	uint32_t *ids;
	size_t n;
};

static int
collect_user(void *ctx, const struct store_user_info *info)
{
	struct user_ids *c = ctx;

	c->ids = xreallocarray(c->ids, c->n + 1, sizeof(*c->ids));
	c->ids[c->n++] = info->id;
	return 0;
}

static void
cmd_reindex(struct gateway *gw, struct control_client *client, json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	bool rebuild = ctl_req_bool(req, "rebuild", false);
	struct user_ids c = { NULL, 0 };
	struct store_read *r = NULL;
	const char *error = NULL;
	json_t *resp;
	uint32_t id;

	if (user != NULL) {
		if (lookup_user_id(gw, client, user, &id) < 0)
			return;
		c.ids = xmemdup(&id, sizeof(id));
		c.n = 1;
	} else {
		if (store_read_begin(gw->store, &r, &error) < 0 ||
		    store_user_foreach(r, collect_user, &c, &error) < 0) {
			store_read_end(&r);
			free(c.ids);
			cmd_store_error(gw, client, "reindex", error);
			return;
		}
		store_read_end(&r);
	}
	if (reindex_start(gw, c.ids, c.n, rebuild) < 0) {
		free(c.ids);
		cmd_reply_error(gw, client, CTL_E_UNAVAILABLE, NULL,
		    "a reindex is running (see stats: index_reindex)");
		return;
	}
	free(c.ids);
	resp = ctl_ok_json();
	json_object_set_new(resp, "users", json_integer((json_int_t)c.n));
	json_object_set_new(resp, "rebuild", json_boolean(rebuild));
	control_reply(client, resp);
}

static void
cmd_backup(struct gateway *gw, struct control_client *client, json_t *req)
{
	struct ctl_error err;

	if (backup_start(gw, client, ctl_req_str(req, "path"), &err) < 0) {
		gw->stats.control_errors++;
		control_reply_error(client, &err);
	}
	/* backup_start replies when the copy is done */
}

static void
trace_user_cb(void *arg, const char *user)
{
	json_array_append_new(json_object_get(arg, "users"),
	    json_string(user));
}

static void
trace_session_cb(void *arg, unsigned id, const char *user)
{
	json_array_append_new(json_object_get(arg, "sessions"),
	    json_pack("{s:i, s:o}", "id", (int)id, "user", user != NULL ?
	    json_string(user) : json_null()));
}

static void
cmd_trace(struct gateway *gw, struct control_client *client, json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	json_t *session = json_object_get(req, "session");
	json_t *on = json_object_get(req, "on");
	json_t *resp, *list;
	unsigned n = 0;

	if (gw->imap == NULL) {
		cmd_reply_error(gw, client, CTL_E_UNAVAILABLE, NULL,
		    "no IMAP listeners are configured");
		return;
	}
	if ((user != NULL) + (session != NULL) > 1 ||
	    ((user != NULL || session != NULL) && on == NULL) ||
	    (user == NULL && session == NULL && on != NULL)) {
		cmd_reply_error(gw, client, CTL_E_INVALID, NULL, "trace needs "
		    "\"user\" or \"session\" with \"on\", or nothing (the "
		    "list)");
		return;
	}
	if (user != NULL) {
		if (json_is_true(on) && imap_server_trace_user_full(gw->imap)) {
			cmd_reply_error(gw, client, CTL_E_INVALID, "user", "%d "
			    "users are traced already", IMAP_TRACE_USERS_MAX);
			return;
		}
		n = imap_server_trace_user(gw->imap, user, json_is_true(on));
	} else if (session != NULL) {
		if (imap_server_trace_session(gw->imap,
		    (unsigned)json_integer_value(session),
		    json_is_true(on)) < 0) {
			cmd_reply_error(gw, client, "unknown-session",
			    "session", "no IMAP session %lld",
			    (long long)json_integer_value(session));
			return;
		}
		n = 1;
	}
	if (user != NULL) {
		char q[LOG_QUOTE_MAX];

		log_info("control event=trace user=%s on=%s sessions=%u",
		    log_quote(q, sizeof(q), user), json_is_true(on) ? "yes" :
		    "no", n);
	} else if (session != NULL) {
		log_info("control event=trace session=%lld on=%s",
		    (long long)json_integer_value(session), json_is_true(on) ?
		    "yes" : "no");
	}
	resp = ctl_ok_json();
	json_object_set_new(resp, "sessions_switched", json_integer(n));
	list = json_pack("{s:[], s:[]}", "users", "sessions");
	imap_server_trace_list(gw->imap, trace_user_cb, trace_session_cb,
	    list);
	json_object_set_new(resp, "trace", list);
	control_reply(client, resp);
}

static void
cmd_reload(struct gateway *gw, struct control_client *client, json_t *req)
{
	char err[CONFIG_ERROR_MAX];

	if (gateway_reload(gw, err, sizeof(err)) < 0) {
		cmd_reply_error(gw, client, "reload-failed", NULL, "%s", err);
		return;
	}
	control_reply(client, ctl_ok_json());
}

static void
cmd_shutdown(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	control_reply(client, ctl_ok_json());
	control_client_flush(client);
	gateway_shutdown(gw, "control");
}

static command_fn *const handlers[CTL_CMD_COUNT] = {
	[CTL_USER_ADD] = cmd_user_add,
	[CTL_USER_DELETE] = cmd_user_delete,
	[CTL_USER_PASSWD] = cmd_user_passwd,
	[CTL_USER_LIST] = cmd_user_list,
	[CTL_USER_QUOTA] = cmd_user_quota,
	[CTL_ACCOUNT_ADD] = commands_account_add,
	[CTL_ACCOUNT_DELETE] = commands_account_delete,
	[CTL_ACCOUNT_SET] = commands_account_set,
	[CTL_ACCOUNT_ENABLE] = commands_account_enable,
	[CTL_ACCOUNT_DISABLE] = commands_account_disable,
	[CTL_ACCOUNT_LIST] = commands_account_list,
	[CTL_IMPORT] = cmd_import,
	[CTL_POLL] = cmd_poll,
	[CTL_STATUS] = commands_status,
	[CTL_SESSIONS] = cmd_sessions,
	[CTL_STATS] = cmd_stats,
	[CTL_REINDEX] = cmd_reindex,
	[CTL_RELOAD] = cmd_reload,
	[CTL_SHUTDOWN] = cmd_shutdown,
	[CTL_ACCOUNT_HISTORY] = cmd_account_history,
	[CTL_BACKUP] = cmd_backup,
	[CTL_TRACE] = cmd_trace,
	[CTL_OAUTH_START] = oauth_cmd_start,
	[CTL_OAUTH_WAIT] = oauth_cmd_wait,
	[CTL_USER_ADMIN] = web_cmd_user_admin,
	[CTL_USER_EXPORT] = user_move_export,
	[CTL_USER_IMPORT] = user_move_import,
	[CTL_USER_UNMOVE] = user_move_unmove,
};

/* Every command names its user in the canonical form (username.h), so
 * "Alice" and "alice" are one user for the admin as for IMAP. The one
 * exception: a name not canonical that a user of the store has exactly
 * (one of the names start-up reported as colliding) is taken as given,
 * so the admin can still reach that user to delete or rename it. */
static void
canon_user_field(struct gateway *gw, json_t *req)
{
	const char *user = ctl_req_str(req, "user");
	struct store_read *r = NULL;
	const char *error;
	char *canon;
	uint32_t id;
	int found = STORE_NOT_FOUND;

	if (user == NULL || username_is_canon(user,
	    gw->config->fold_user_names))
		return;
	if (store_read_begin(gw->store, &r, &error) == 0) {
		found = store_user_lookup(r, user, &id, &error);
		store_read_end(&r);
	}
	if (found == 0)
		return;
	canon = username_canon_dup(user, gw->config->fold_user_names);
	json_object_set_new(req, "user", json_string(canon));
	free(canon);
}

void
commands_handle(void *ctx, struct control_client *client,
    const struct ctl_command *cmd, json_t *req)
{
	struct gateway *gw = ctx;

	gw->stats.control_requests++;
	if (gw->shutting_down && cmd->id != CTL_STATS) {
		cmd_reply_error(gw, client, CTL_E_UNAVAILABLE, NULL,
		    "the daemon is shutting down");
		return;
	}
	canon_user_field(gw, req);
	handlers[cmd->id](gw, client, req);
}
