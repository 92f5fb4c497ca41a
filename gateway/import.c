/* import — see import.h. */
#include "import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/accounts.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "gateway/import-csv.h"
#include "gateway/pwhash.h"
#include "log.h"
#include "strnum.h"
#include "store/store.h"
#include "username.h"
#include "xmalloc.h"

struct import {
	struct gateway *gw;
	struct control_client *client;	/* NULL once answered */
	char *csv;
	size_t pos;			/* next line starts here */
	unsigned int line;		/* lines consumed */
	unsigned int total;		/* lines in csv */
	unsigned int header_line;	/* 0: no header */
	struct import_csv_format fmt;
	unsigned int ok, failed;
	bool dry_run;
	bool running;
	json_t *report;
	/* A dry run changes nothing, so it remembers what the lines before
	   would have created ("user" and "user\nhost\nport\nlogin" / "user\n
	   \nname" keys) and answers later lines as the real import will. */
	json_t *planned;
	struct event *ev;
	time_t started, finished;
	/* a line whose new user's password is being hashed on a worker
	   (pwhash.h): stepping waits for it */
	char *held;
	size_t held_len;
};

static void
line_error(struct import *im, json_t *entry, const char *code,
    const char *field, const char *message)
{
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message",
	    message);

	if (field != NULL)
		json_object_set_new(e, "field", json_string(field));
	json_object_set_new(entry, "ok", json_false());
	json_object_set_new(entry, "error", e);
	im->failed++;
}

/* Validates a request built from CSV fields exactly as the control socket
 * would; -1 with err filled. */
static int
validate(json_t *req, struct ctl_error *err)
{
	char *s = json_dumps(req, JSON_COMPACT);
	const struct ctl_command *cmd;
	json_t *parsed;
	int ret;

	ret = ctl_request_parse(s, strlen(s), &cmd, &parsed, err);
	secure_zero(s, strlen(s));
	free(s);
	if (ret == 0)
		json_decref(parsed);
	return ret;
}

static bool
given(const char *v)
{
	return v != NULL && v[0] != '\0';
}

/* Builds the account.add request of a line (NULL without host); -1 with
   err on a field that is not even of the right type. */
static int
build_account_req(char *const *f, json_t **areq_r, struct ctl_error *err)
{
	json_t *areq;

	*areq_r = NULL;
	/* an account when the line names its host, or an OAuth provider
	   that gives one */
	if (!given(f[IMPORT_COL_HOST]) && !given(f[IMPORT_COL_OAUTH_PROVIDER]))
		return 0;
	areq = json_pack("{s:s, s:s}", "command", "account.add", "user",
	    f[IMPORT_COL_USER]);
	for (int c = IMPORT_COL_HOST; c < IMPORT_COL_COUNT; c++) {
		const char *v = f[c];
		const char *why = NULL;
		uint32_t num;

		if (!given(v))
			continue;
		if (c == IMPORT_COL_PORT) {
			if (str_to_u32z(v, &num) < 0) {
				ctl_error_set(err, CTL_E_WRONG_TYPE, "port",
				    "must be a number");
				goto fail;
			}
			json_object_set_new(areq, "port", json_integer(num));
		} else if (c == IMPORT_COL_INTERVAL) {
			/* as in popgate.conf and popgatectl: 300, 5m, 2h */
			if (config_parse_duration(v, &num, &why) < 0) {
				ctl_error_set(err, CTL_E_WRONG_TYPE,
				    "interval", "%s", why);
				goto fail;
			}
			json_object_set_new(areq, "interval",
			    json_integer(num));
		} else if (c == IMPORT_COL_CA_ONLY ||
		    c == IMPORT_COL_ALLOW_CLEARTEXT) {
			bool b;

			if (config_parse_bool(v, &b, &why) < 0) {
				ctl_error_set(err, CTL_E_WRONG_TYPE,
				    import_col_names[c], "must be yes or no");
				goto fail;
			}
			json_object_set_new(areq, import_col_names[c],
			    json_boolean(b));
		} else {
			json_object_set_new(areq, import_col_names[c],
			    json_string(v));
		}
	}
	*areq_r = areq;
	return 0;
fail:
	json_decref(areq);
	return -1;
}

struct match_ctx {
	const char *host;
	uint32_t port;
	const char *login;
	char *name;		/* the match's name, owned */
};

static int
match_account(void *arg, const struct account *a)
{
	struct match_ctx *mc = arg;

	if (strcasecmp(a->host, mc->host) != 0 || a->port != mc->port ||
	    strcmp(a->login, mc->login) != 0)
		return 0;
	mc->name = xstrdup(a->name);
	return 1;
}

static char *
plan_key(const char *user, const char *host, uint32_t port,
    const char *login, const char *name)
{
	if (name != NULL)
		return xasprintf("%s\n\n%s", user, name);
	return xasprintf("%s\n%s\n%u\n%s", user, host, port, login);
}

/*
 * Does the user already have this line's account? Named: an account of
 * that name. Unnamed: one with the same host (any case), port and login,
 * so re-running an import never adds a second account that polls the
 * same mailbox. 0 with *name_r (owned) when it exists, STORE_NOT_FOUND,
 * or -1.
 */
static int
existing_account(struct import *im, struct store_read *r, uint32_t user_id,
    bool user_exists, json_t *areq, char **name_r, bool *differs_r,
    const char **error_r)
{
	const char *user = ctl_req_str(areq, "user");
	const char *name = ctl_req_str(areq, "account");
	const char *host = ctl_req_str(areq, "host");
	const char *login = ctl_req_str(areq, "login");
	uint32_t port = (uint32_t)ctl_req_int(areq, "port", 0);
	char *key;
	int ret = STORE_NOT_FOUND;

	*name_r = NULL;
	*differs_r = false;
	if (user_exists && name != NULL) {
		struct account a;

		ret = accounts_get(r, user_id, user, name, &a, error_r);
		if (ret == 0) {
			*name_r = xstrdup(name);
			/* an OAuth line may leave host, port and login to
			   its provider: only what the line gives differs */
			*differs_r = (host != NULL &&
			    strcasecmp(a.host, host) != 0) ||
			    (port != 0 && a.port != port) ||
			    (login != NULL && strcmp(a.login, login) != 0);
			account_clear(&a);
		}
	} else if (user_exists && host != NULL && login != NULL) {
		struct match_ctx mc = { host, port, login, NULL };

		ret = accounts_foreach(r, user_id, user, match_account, &mc,
		    error_r);
		if (ret < 0)
			return -1;
		*name_r = mc.name;
		ret = mc.name != NULL ? 0 : STORE_NOT_FOUND;
	}
	if (ret != STORE_NOT_FOUND || im->planned == NULL ||
	    (name == NULL && (host == NULL || login == NULL)))
		return ret;
	key = plan_key(user, host, port, login, name);
	if (json_object_get(im->planned, key) != NULL) {
		*name_r = xstrdup(json_string_value(json_object_get(
		    im->planned, key)));
		ret = 0;
	}
	free(key);
	return ret;
}

/* Remembers the account a dry-run line would add; name NULL when
   account.add would make one up. */
static void
plan_account(struct import *im, json_t *areq, const char *name)
{
	const char *user = ctl_req_str(areq, "user");
	const char *host = ctl_req_str(areq, "host");
	const char *login = ctl_req_str(areq, "login");
	uint32_t port = (uint32_t)ctl_req_int(areq, "port", 0);
	const char *shown = name != NULL ? name : "(a new name)";
	char *k;

	if (host != NULL && login != NULL) {
		k = plan_key(user, host, port, login, NULL);
		json_object_set_new(im->planned, k, json_string(shown));
		free(k);
	}
	if (name != NULL) {
		k = plan_key(user, host, port, login, name);
		json_object_set_new(im->planned, k, json_string(shown));
		free(k);
	}
}

/* hash: the user_password column's hash when it was made on a worker
   (NULL: made here, if a user is to be created after all) */
static void
import_line(struct import *im, const char *text, size_t len,
    const char *hash)
{
	struct gateway *gw = im->gw;
	char *f[IMPORT_COL_COUNT];
	const char *why, *column;
	json_t *entry = json_pack("{s:i}", "line", (int)im->line);
	json_t *ureq = NULL, *areq = NULL;
	struct ctl_error err;
	struct store_read *r = NULL;
	const char *error = NULL;
	char *acct_name = NULL;
	bool user_exists, acct_exists = false, differs = false;
	uint32_t id = 0;
	int found;

	if (import_csv_split(&im->fmt, text, len, f, &why, &column) < 0) {
		line_error(im, entry, CTL_E_INVALID, column, why);
		goto out;
	}
	/* the user as stored: "Alice" on one line and "alice" on the
	   next are one user (username.h) */
	if (f[IMPORT_COL_USER] != NULL) {
		char *canon = username_canon_dup(f[IMPORT_COL_USER],
		    gw->config->fold_user_names);

		free(f[IMPORT_COL_USER]);
		f[IMPORT_COL_USER] = canon;
	}
	json_object_set_new(entry, "user", json_string(given(f[IMPORT_COL_USER])
	    ? f[IMPORT_COL_USER] : ""));
	if (json_object_get(entry, "user") == NULL)
		json_object_set_new(entry, "user", json_string("?"));

	/* Build both requests and validate them before changing anything. */
	ureq = json_pack("{s:s, s:s, s:s}", "command", "user.add", "user",
	    f[IMPORT_COL_USER] != NULL ? f[IMPORT_COL_USER] : "", "password",
	    f[IMPORT_COL_USER_PASSWORD] != NULL ?
	    f[IMPORT_COL_USER_PASSWORD] : "");
	if (ureq == NULL) {
		line_error(im, entry, CTL_E_INVALID, NULL,
		    "not UTF-8 text");
		goto out;
	}
	if (validate(ureq, &err) < 0) {
		/* user.add's password is the user_password column */
		line_error(im, entry, err.code, err.field != NULL &&
		    strcmp(err.field, "password") == 0 ? "user_password" :
		    err.field, err.message);
		goto out;
	}
	if (build_account_req(f, &areq, &err) < 0 ||
	    (areq != NULL && validate(areq, &err) < 0)) {
		line_error(im, entry, err.code, err.field, err.message);
		goto out;
	}
	if (store_read_begin(gw->store, &r, &error) < 0) {
		line_error(im, entry, CTL_E_STORE, NULL, error);
		goto out;
	}
	found = store_user_lookup(r, f[IMPORT_COL_USER], &id, &error);
	if (found < 0) {
		line_error(im, entry, CTL_E_STORE, NULL, error);
		goto out;
	}
	user_exists = found == 0;
	if (areq != NULL) {
		found = existing_account(im, r, id, user_exists, areq,
		    &acct_name, &differs, &error);
		if (found < 0) {
			line_error(im, entry, CTL_E_STORE, NULL, error);
			goto out;
		}
		acct_exists = found == 0;
	}
	store_read_end(&r);
	if (!user_exists && im->planned != NULL &&
	    json_object_get(im->planned, f[IMPORT_COL_USER]) != NULL)
		user_exists = true;	/* an earlier line would create it */
	if (!user_exists && !given(f[IMPORT_COL_USER_PASSWORD])) {
		line_error(im, entry, CTL_E_MISSING_FIELD, "user_password",
		    "a new user needs user_password");
		goto out;
	}
	if (im->dry_run) {
		json_object_set_new(entry, "user_action", json_string(
		    user_exists ? "exists" : "would-create"));
		json_object_set_new(im->planned, f[IMPORT_COL_USER],
		    json_true());
		if (areq != NULL && !acct_exists) {
			const char *n = ctl_req_str(areq, "account");

			plan_account(im, areq, n);
			if (n != NULL)
				json_object_set_new(entry, "account",
				    json_string(n));
			json_object_set_new(entry, "account_action",
			    json_string("would-create"));
		}
	} else {
		if (!user_exists && (hash != NULL ?
		    gateway_user_create_hashed(gw, f[IMPORT_COL_USER], hash,
		    &id, &err) : gateway_user_create(gw, f[IMPORT_COL_USER],
		    f[IMPORT_COL_USER_PASSWORD], &id, &err)) < 0) {
			line_error(im, entry, err.code, err.field,
			    err.message);
			goto out;
		}
		json_object_set_new(entry, "user_action", json_string(
		    user_exists ? "exists" : "created"));
		if (areq != NULL && !acct_exists) {
			if (gateway_account_add(gw, areq, &err) < 0) {
				line_error(im, entry, err.code, err.field,
				    err.message);
				goto out;
			}
			json_object_set(entry, "account",
			    json_object_get(areq, "account"));
			json_object_set_new(entry, "account_action",
			    json_string("created"));
		}
	}
	if (acct_exists) {
		json_object_set_new(entry, "account", json_string(acct_name));
		json_object_set_new(entry, "account_action",
		    json_string("exists"));
		if (differs)
			json_object_set_new(entry, "note", json_string(
			    "an account of this name exists with another "
			    "host, port or login; it was left unchanged "
			    "(account set changes it)"));
	}
	json_object_set_new(entry, "ok", json_true());
	im->ok++;
out:
	store_read_end(&r);
	json_array_append_new(im->report, entry);
	json_decref(ureq);
	json_decref(areq);
	free(acct_name);
	import_csv_free(f);
}

static json_t *
summary(const struct import *im)
{
	return json_pack("{s:b, s:b, s:i, s:i, s:i, s:i, s:I}",
	    "running", im->running, "dry_run", im->dry_run,
	    "lines_done", (int)im->line, "lines_total", (int)im->total,
	    "ok", (int)im->ok, "failed", (int)im->failed,
	    "started", (json_int_t)im->started);
}

static void
finish(struct import *im)
{
	json_t *resp;

	im->running = false;
	im->finished = time(NULL);
	secure_zero(im->csv, strlen(im->csv));
	free(im->csv);
	im->csv = NULL;
	log_info("import event=done lines=%u ok=%u failed=%u dry_run=%d",
	    im->line, im->ok, im->failed, im->dry_run);
	if (im->client != NULL) {
		resp = ctl_ok_json();
		json_object_set_new(resp, "import", summary(im));
		json_object_set(resp, "lines", im->report);
		control_reply(im->client, resp);
		im->client = NULL;
	}
	json_decref(im->report);
	im->report = NULL;
	json_decref(im->planned);
	im->planned = NULL;
}

static void
held_free(struct import *im)
{
	if (im->held == NULL)
		return;
	secure_zero(im->held, im->held_len);
	free(im->held);
	im->held = NULL;
}

static void
line_hashed(void *arg, const char *hash, const char *error, bool stopping)
{
	struct import *im = arg;

	(void)error;
	(void)stopping;
	/* an import aborted at shutdown keeps the lines done before */
	if (im->running) {
		/* without a hash the line hashes on the loop and reports
		   what failed, as before */
		import_line(im, im->held, im->held_len, hash);
		event_active(im->ev, EV_TIMEOUT, 0);
	}
	held_free(im);
}

/*
 * Whether a line creates a user, so that its password is to be hashed
 * first: a real import, a user name and a password given, and no such
 * user yet. Then submits the hash and returns true. A wrong guess costs
 * little: the line is checked in full afterwards, and a user that
 * appeared meanwhile is left alone.
 */
static bool
line_hash_start(struct import *im, const char *text, size_t len)
{
	char *f[IMPORT_COL_COUNT];
	const char *why, *column, *error = NULL;
	struct store_read *r = NULL;
	uint32_t id;
	bool needs = false;

	if (im->dry_run ||
	    import_csv_split(&im->fmt, text, len, f, &why, &column) < 0)
		return false;
	if (given(f[IMPORT_COL_USER]) && given(f[IMPORT_COL_USER_PASSWORD]) &&
	    strlen(f[IMPORT_COL_USER_PASSWORD]) <= PASSWORD_MAX_LEN &&
	    store_read_begin(im->gw->store, &r, &error) == 0) {
		char *canon = username_canon_dup(f[IMPORT_COL_USER],
		    im->gw->config->fold_user_names);

		needs = store_user_lookup(r, canon, &id, &error) ==
		    STORE_NOT_FOUND;
		free(canon);
		store_read_end(&r);
	}
	if (needs) {
		im->held = xstrndup(text, len);
		im->held_len = len;
		pwhash_submit(im->gw->workq, f[IMPORT_COL_USER_PASSWORD],
		    strlen(f[IMPORT_COL_USER_PASSWORD]), line_hashed, im);
	}
	import_csv_free(f);
	return needs;
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct import *im = arg;

	for (int i = 0; i < IMPORT_LINES_PER_TURN; i++) {
		const char *start = im->csv + im->pos;
		const char *nl;
		size_t len;

		if (*start == '\0') {
			finish(im);
			return;
		}
		nl = strchr(start, '\n');
		len = nl != NULL ? (size_t)(nl - start) : strlen(start);
		im->pos += len + (nl != NULL ? 1 : 0);
		im->line++;
		if (len > 0 && start[len - 1] == '\r')
			len--;
		if (len == 0 || im->line == im->header_line)
			continue;
		/* a new user's argon2id hash on a worker: the line goes
		   on in line_hashed, and stepping after it */
		if (line_hash_start(im, start, len))
			return;
		import_line(im, start, len, NULL);
	}
	event_active(im->ev, EV_TIMEOUT, 0);
}

/* The format, from the first non-empty line; its number goes to
   *header_line when it is a header. */
static int
detect_format(const char *csv, struct import_csv_format *fmt,
    unsigned int *header_line, struct ctl_error *err)
{
	const char *p = csv;
	char msg[CTL_MESSAGE_MAX];
	unsigned int line = 0;

	*header_line = 0;
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		line++;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0) {
			if (import_csv_detect(p, len, fmt, msg,
			    sizeof(msg)) < 0) {
				ctl_error_set(err, CTL_E_INVALID, "csv",
				    "line %u: %s", line, msg);
				return -1;
			}
			if (fmt->header)
				*header_line = line;
			return 0;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return import_csv_detect("", 0, fmt, msg, sizeof(msg));
}

int
import_start(struct gateway *gw, struct control_client *client,
    const char *csv, bool dry_run, struct ctl_error *err)
{
	struct import *im = gw->import;
	struct import_csv_format fmt;
	unsigned int lines = 0, header_line;

	if (im != NULL && im->running) {
		ctl_error_set(err, "busy", NULL, "an import is running "
		    "(line %u of %u); try again when it is done", im->line,
		    im->total);
		return -1;
	}
	/* "CSV UTF-8" from Excel starts with a byte-order mark */
	csv += import_csv_bom(csv, strlen(csv));
	if (detect_format(csv, &fmt, &header_line, err) < 0)
		return -1;
	for (const char *p = csv; *p != '\0'; p++) {
		if (*p == '\n')
			lines++;
	}
	if (*csv != '\0' && csv[strlen(csv) - 1] != '\n')
		lines++;
	if (lines > IMPORT_LINES_MAX) {
		ctl_error_set(err, CTL_E_INVALID, "csv", "more than %d lines",
		    IMPORT_LINES_MAX);
		return -1;
	}
	if (im == NULL) {
		im = xcalloc(1, sizeof(*im));
		im->gw = gw;
		im->ev = event_new(gw->base, -1, 0, step_cb, im);
		gw->import = im;
	}
	im->client = client;
	im->csv = xstrdup(csv);
	im->pos = 0;
	im->line = 0;
	im->total = lines;
	im->ok = im->failed = 0;
	im->dry_run = dry_run;
	im->running = true;
	im->report = json_array();
	im->fmt = fmt;
	im->header_line = header_line;
	json_decref(im->planned);
	im->planned = dry_run ? json_object() : NULL;
	im->started = time(NULL);
	log_info("import event=start lines=%u dry_run=%d delimiter=%s "
	    "header=%s", lines, dry_run, fmt.delim == ',' ? "comma" :
	    fmt.delim == ';' ? "semicolon" : "tab", header_line != 0 ?
	    "yes" : "no");
	event_active(im->ev, EV_TIMEOUT, 0);
	return 0;
}

json_t *
import_status_json(struct gateway *gw)
{
	if (gw->import == NULL)
		return json_null();
	return summary(gw->import);
}

void
import_abort(struct gateway *gw)
{
	struct import *im = gw->import;
	struct ctl_error err;

	if (im == NULL || !im->running)
		return;
	event_del(im->ev);
	im->running = false;
	log_warn("import event=aborted line=%u of=%u", im->line, im->total);
	if (im->client != NULL) {
		ctl_error_set(&err, CTL_E_UNAVAILABLE, NULL, "the daemon is "
		    "shutting down; import stopped after line %u of %u "
		    "(lines done are kept)", im->line, im->total);
		control_reply_error(im->client, &err);
		im->client = NULL;
	}
}

void
import_free(struct gateway *gw)
{
	struct import *im = gw->import;

	if (im == NULL)
		return;
	if (im->running)
		import_abort(gw);
	held_free(im);
	if (im->csv != NULL) {
		secure_zero(im->csv, strlen(im->csv));
		free(im->csv);
	}
	json_decref(im->report);
	json_decref(im->planned);
	event_free(im->ev);
	free(im);
	gw->import = NULL;
}
