/* import — see import.h. */
#include "import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "log.h"
#include "strnum.h"
#include "store/store.h"
#include "xmalloc.h"

struct import {
	struct gateway *gw;
	struct control_client *client;	/* NULL once answered */
	char *csv;
	size_t pos;			/* next line starts here */
	unsigned int line;		/* lines consumed */
	unsigned int total;		/* lines in csv */
	unsigned int ok, failed;
	bool dry_run;
	bool running;
	json_t *report;
	struct event *ev;
	time_t started, finished;
};

/* New columns go at the end, so older files stay valid. */
enum col {
	COL_USER, COL_USER_PASSWORD, COL_HOST, COL_PORT, COL_TLS, COL_LOGIN,
	COL_PASSWORD, COL_MODE, COL_FOLDER, COL_INTERVAL, COL_ACCOUNT,
	COL_AUTH, COL_CA_FILE, COL_CA_ONLY, COL_FINGERPRINT,
	COL_ALLOW_CLEARTEXT, COL_OAUTH_PROVIDER,
	COL_COUNT
};

static const char *const col_names[COL_COUNT] = {
	"user", "user_password", "host", "port", "tls", "login", "password",
	"mode", "folder", "interval", "account", "auth", "ca_file", "ca_only",
	"fingerprint", "allow_cleartext", "oauth_provider",
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

static void
import_line(struct import *im, const char *text, size_t len)
{
	struct gateway *gw = im->gw;
	char *f[CTL_CSV_FIELDS_MAX];
	size_t n = 0;
	const char *why;
	json_t *entry = json_pack("{s:i}", "line", (int)im->line);
	json_t *ureq = NULL, *areq = NULL;
	struct ctl_error err;
	struct store_read *r = NULL;
	const char *error = NULL;
	uint32_t id;
	int found;

	if (ctl_csv_split(text, len, f, &n, &why) < 0) {
		line_error(im, entry, CTL_E_INVALID, NULL, why);
		goto out;
	}
	if (n > COL_COUNT) {
		line_error(im, entry, CTL_E_INVALID, NULL,
		    "more columns than user,user_password,host,port,tls,"
		    "login,password,mode,folder,interval,account,auth,"
		    "ca_file,ca_only,fingerprint,allow_cleartext,"
		    "oauth_provider");
		goto out;
	}
	for (size_t i = n; i < COL_COUNT && i < CTL_CSV_FIELDS_MAX; i++)
		f[i] = NULL;
	json_object_set_new(entry, "user", json_string(f[COL_USER] ?
	    f[COL_USER] : ""));

	/* Build both requests and validate them before changing anything. */
	ureq = json_pack("{s:s, s:s, s:s}", "command", "user.add", "user",
	    f[COL_USER], "password", f[COL_USER_PASSWORD] != NULL ?
	    f[COL_USER_PASSWORD] : "");
	/* an account when the line names its host, or an OAuth provider
	   that gives one */
	if ((f[COL_HOST] != NULL && f[COL_HOST][0] != '\0') ||
	    (f[COL_OAUTH_PROVIDER] != NULL &&
	    f[COL_OAUTH_PROVIDER][0] != '\0')) {
		areq = json_pack("{s:s}", "command", "account.add");
		for (int c = COL_USER; c < COL_COUNT; c++) {
			const char *v = (size_t)c < n ? f[c] : NULL;

			if (c == COL_USER_PASSWORD || v == NULL ||
			    v[0] == '\0')
				continue;
			if (c == COL_PORT || c == COL_INTERVAL) {
				uint32_t num;

				if (str_to_u32z(v, &num) < 0) {
					line_error(im, entry, CTL_E_WRONG_TYPE,
					    col_names[c], "must be a number");
					goto out;
				}
				json_object_set_new(areq, col_names[c],
				    json_integer(num));
			} else if (c == COL_CA_ONLY ||
			    c == COL_ALLOW_CLEARTEXT) {
				bool b;
				const char *why2;

				if (config_parse_bool(v, &b, &why2) < 0) {
					line_error(im, entry, CTL_E_WRONG_TYPE,
					    col_names[c], "must be yes or no");
					goto out;
				}
				json_object_set_new(areq, col_names[c],
				    json_boolean(b));
			} else {
				json_object_set_new(areq, col_names[c],
				    json_string(v));
			}
		}
	}
	if (validate(ureq, &err) < 0) {
		line_error(im, entry, err.code, err.field, err.message);
		goto out;
	}
	if (areq != NULL && validate(areq, &err) < 0) {
		line_error(im, entry, err.code, err.field, err.message);
		goto out;
	}
	if (store_read_begin(gw->store, &r, &error) < 0) {
		line_error(im, entry, CTL_E_STORE, NULL, error);
		goto out;
	}
	found = store_user_lookup(r, f[COL_USER], &id, &error);
	store_read_end(&r);
	if (found < 0) {
		line_error(im, entry, CTL_E_STORE, NULL, error);
		goto out;
	}
	if (found == STORE_NOT_FOUND && (f[COL_USER_PASSWORD] == NULL ||
	    f[COL_USER_PASSWORD][0] == '\0')) {
		line_error(im, entry, CTL_E_MISSING_FIELD, "user_password",
		    "a new user needs user_password");
		goto out;
	}
	if (im->dry_run) {
		json_object_set_new(entry, "ok", json_true());
		json_object_set_new(entry, "user_action", json_string(
		    found == 0 ? "exists" : "would-create"));
		im->ok++;
		goto out;
	}
	if (found == STORE_NOT_FOUND) {
		if (gateway_user_create(gw, f[COL_USER],
		    f[COL_USER_PASSWORD], &id, &err) < 0) {
			line_error(im, entry, err.code, err.field,
			    err.message);
			goto out;
		}
		json_object_set_new(entry, "user_action",
		    json_string("created"));
	} else {
		json_object_set_new(entry, "user_action",
		    json_string("exists"));
	}
	if (areq != NULL) {
		if (gateway_account_add(gw, areq, &err) < 0) {
			line_error(im, entry, err.code, err.field,
			    err.message);
			goto out;
		}
		json_object_set(entry, "account",
		    json_object_get(areq, "account"));
	}
	json_object_set_new(entry, "ok", json_true());
	im->ok++;
out:
	json_array_append_new(im->report, entry);
	json_decref(ureq);
	json_decref(areq);
	for (size_t i = 0; i < n; i++) {
		if (f[i] != NULL)
			secure_zero(f[i], strlen(f[i]));
		free(f[i]);
	}
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
		if (len == 0)
			continue;
		if (im->line == 1 && strncmp(start, "user,", 5) == 0)
			continue;
		import_line(im, start, len);
	}
	event_active(im->ev, EV_TIMEOUT, 0);
}

int
import_start(struct gateway *gw, struct control_client *client,
    const char *csv, bool dry_run, struct ctl_error *err)
{
	struct import *im = gw->import;
	unsigned int lines = 0;

	if (im != NULL && im->running) {
		ctl_error_set(err, "busy", NULL, "an import is running "
		    "(line %u of %u); try again when it is done", im->line,
		    im->total);
		return -1;
	}
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
	im->started = time(NULL);
	log_info("import event=start lines=%u dry_run=%d", lines, dry_run);
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
	if (im->csv != NULL) {
		secure_zero(im->csv, strlen(im->csv));
		free(im->csv);
	}
	json_decref(im->report);
	event_free(im->ev);
	free(im);
	gw->import = NULL;
}
