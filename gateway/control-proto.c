/* control-proto — see control-proto.h. The tables below are the protocol. */
#include "control-proto.h"

#include <stdarg.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "log.h"
#include "pop3-upstream/upstream.h"
#include "strbuf.h"
#include "strnum.h"
#include "xmalloc.h"

#define REQ(n, t, c) { n, t, true, c }
#define OPT(n, t, c) { n, t, false, c }
#define END { NULL, CTL_T_STRING, false, CTL_C_NONE }

static const struct ctl_field f_none[] = { END };
static const struct ctl_field f_user_add[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	REQ("password", CTL_T_STRING, CTL_C_PASSWORD),
	END
};
static const struct ctl_field f_user[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	END
};
static const struct ctl_field f_user_opt[] = {
	OPT("user", CTL_T_STRING, CTL_C_NAME),
	END
};
/* Trust and OAuth settings, as account.add and account.set take them. */
#define ACCOUNT_TRUST_FIELDS \
	OPT("ca_file", CTL_T_STRING, CTL_C_PATH_OPT), \
	OPT("ca_only", CTL_T_BOOL, CTL_C_NONE), \
	OPT("fingerprint", CTL_T_STRING, CTL_C_FINGERPRINT), \
	OPT("allow_cleartext", CTL_T_BOOL, CTL_C_NONE), \
	OPT("oauth_provider", CTL_T_STRING, CTL_C_PROVIDER)

static const struct ctl_field f_user_quota[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	OPT("quota", CTL_T_STRING, CTL_C_NONE),
	END
};
static const struct ctl_field f_user_admin[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	OPT("admin", CTL_T_STRING, CTL_C_NONE),
	END
};
static const struct ctl_field f_account_add[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	/* host, port and tls may come from an OAuth provider's preset;
	   password is not needed for an OAuth mechanism (check_account_add) */
	OPT("host", CTL_T_STRING, CTL_C_HOST),
	OPT("port", CTL_T_INT, CTL_C_PORT),
	OPT("tls", CTL_T_STRING, CTL_C_TLS),
	REQ("login", CTL_T_STRING, CTL_C_LOGIN),
	OPT("password", CTL_T_STRING, CTL_C_PASSWORD),
	OPT("account", CTL_T_STRING, CTL_C_ACCOUNT),
	ACCOUNT_TRUST_FIELDS,
	OPT("mode", CTL_T_STRING, CTL_C_MODE),
	OPT("folder", CTL_T_STRING, CTL_C_FOLDER),
	OPT("interval", CTL_T_INT, CTL_C_INTERVAL),
	OPT("size_limit", CTL_T_INT, CTL_C_NONE),
	OPT("auth", CTL_T_STRING, CTL_C_AUTH),
	OPT("enabled", CTL_T_BOOL, CTL_C_NONE),
	/* add even on what looks like an account's upstream mailbox */
	OPT("force", CTL_T_BOOL, CTL_C_NONE),
	END
};
static const struct ctl_field f_account[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	REQ("account", CTL_T_STRING, CTL_C_ACCOUNT),
	END
};
static const struct ctl_field f_account_set[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	REQ("account", CTL_T_STRING, CTL_C_ACCOUNT),
	OPT("host", CTL_T_STRING, CTL_C_HOST),
	OPT("port", CTL_T_INT, CTL_C_PORT),
	OPT("tls", CTL_T_STRING, CTL_C_TLS),
	OPT("login", CTL_T_STRING, CTL_C_LOGIN),
	OPT("password", CTL_T_STRING, CTL_C_PASSWORD),
	OPT("mode", CTL_T_STRING, CTL_C_MODE),
	OPT("folder", CTL_T_STRING, CTL_C_FOLDER),
	OPT("interval", CTL_T_INT, CTL_C_INTERVAL),
	OPT("size_limit", CTL_T_INT, CTL_C_NONE),
	OPT("auth", CTL_T_STRING, CTL_C_AUTH),
	ACCOUNT_TRUST_FIELDS,
	END
};
static const struct ctl_field f_import[] = {
	REQ("csv", CTL_T_STRING, CTL_C_CSV),
	OPT("dry_run", CTL_T_BOOL, CTL_C_NONE),
	END
};
static const struct ctl_field f_account_history[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	REQ("account", CTL_T_STRING, CTL_C_ACCOUNT),
	OPT("limit", CTL_T_INT, CTL_C_LIMIT),
	END
};
static const struct ctl_field f_backup[] = {
	REQ("path", CTL_T_STRING, CTL_C_PATH),
	END
};
static const struct ctl_field f_user_export[] = {
	REQ("user", CTL_T_STRING, CTL_C_NAME),
	REQ("path", CTL_T_STRING, CTL_C_PATH),
	REQ("passphrase_file", CTL_T_STRING, CTL_C_PATH),
	END
};
static const struct ctl_field f_user_import[] = {
	REQ("path", CTL_T_STRING, CTL_C_PATH),
	REQ("passphrase_file", CTL_T_STRING, CTL_C_PATH),
	OPT("force", CTL_T_BOOL, CTL_C_NONE),
	END
};
static const struct ctl_field f_trace[] = {
	OPT("user", CTL_T_STRING, CTL_C_NAME),
	OPT("session", CTL_T_INT, CTL_C_NONE),
	OPT("on", CTL_T_BOOL, CTL_C_NONE),
	END
};
static const struct ctl_field f_reindex[] = {
	OPT("user", CTL_T_STRING, CTL_C_NAME),
	OPT("rebuild", CTL_T_BOOL, CTL_C_NONE),
	END
};
static const struct ctl_field f_poll[] = {
	OPT("user", CTL_T_STRING, CTL_C_NAME),
	OPT("account", CTL_T_STRING, CTL_C_ACCOUNT),
	END
};

static bool
is_oauth_auth(json_t *req)
{
	const char *s = json_string_value(json_object_get(req, "auth"));
	enum upstream_auth auth;

	return s != NULL && upstream_auth_parse(s, &auth) == 0 &&
	    UPSTREAM_AUTH_IS_OAUTH(auth);
}

static int
check_account_add(json_t *req, struct ctl_error *err)
{
	static const char *const from_provider[] = { "host", "port", "tls" };
	bool provider = json_is_string(json_object_get(req,
	    "oauth_provider"));

	/* an OAuth account signs in with a token; any other needs its
	   password, and host, port and tls unless a provider gives them */
	if (!is_oauth_auth(req) && !provider &&
	    !json_is_string(json_object_get(req, "password"))) {
		ctl_error_set(err, CTL_E_MISSING_FIELD, "password",
		    "account.add needs \"password\"");
		return -1;
	}
	for (size_t i = 0; i < N_ELEMENTS(from_provider) && !provider; i++) {
		json_t *v = json_object_get(req, from_provider[i]);

		if (v == NULL || json_is_null(v)) {
			ctl_error_set(err, CTL_E_MISSING_FIELD,
			    from_provider[i], "account.add needs \"%s\"",
			    from_provider[i]);
			return -1;
		}
	}
	return 0;
}

const struct ctl_command ctl_commands[CTL_CMD_COUNT] = {
	{ "user.add", CTL_USER_ADD, f_user_add,
	  "create an IMAP user with a password", NULL },
	{ "user.delete", CTL_USER_DELETE, f_user,
	  "delete a user, their mail and upstream accounts", NULL },
	{ "user.passwd", CTL_USER_PASSWD, f_user_add,
	  "set a user's IMAP password", NULL },
	{ "user.list", CTL_USER_LIST, f_none, "list users", NULL },
	{ "user.quota", CTL_USER_QUOTA, f_user_quota,
	  "show or set a user's storage quota (\"default\", \"none\" or "
	  "a size)", NULL },
	{ "account.add", CTL_ACCOUNT_ADD, f_account_add,
	  "add an upstream POP3 account to a user", check_account_add },
	{ "account.delete", CTL_ACCOUNT_DELETE, f_account,
	  "remove an upstream account (mail already fetched stays)", NULL },
	{ "account.set", CTL_ACCOUNT_SET, f_account_set,
	  "change fields of an upstream account", NULL },
	{ "account.enable", CTL_ACCOUNT_ENABLE, f_account,
	  "resume polling an account", NULL },
	{ "account.disable", CTL_ACCOUNT_DISABLE, f_account,
	  "stop polling an account", NULL },
	{ "account.list", CTL_ACCOUNT_LIST, f_user_opt,
	  "list upstream accounts (of one user)", NULL },
	{ "import", CTL_IMPORT, f_import,
	  "create users and accounts from CSV, with a per-line report", NULL },
	{ "poll", CTL_POLL, f_poll,
	  "poll one account, a user's accounts, or all now", NULL },
	{ "status", CTL_STATUS, f_user_opt,
	  "state, last success, last error, next poll per account", NULL },
	{ "sessions", CTL_SESSIONS, f_user_opt, "IMAP sessions", NULL },
	{ "stats", CTL_STATS, f_none, "counters since start", NULL },
	{ "reindex", CTL_REINDEX, f_reindex,
	  "index a user's (or everyone's) mail not yet in the search index",
	  NULL },
	{ "reload", CTL_RELOAD, f_none,
	  "re-read the configuration and certificates", NULL },
	{ "shutdown", CTL_SHUTDOWN, f_none, "stop the daemon gracefully", NULL },
	{ "account.history", CTL_ACCOUNT_HISTORY, f_account_history,
	  "an account's last polls and its totals", NULL },
	{ "backup", CTL_BACKUP, f_backup,
	  "write a consistent, compacted copy of the store to a file", NULL },
	{ "trace", CTL_TRACE, f_trace,
	  "switch a user's or a session's IMAP protocol trace on or off", NULL },
	{ "oauth.start", CTL_OAUTH_START, f_account,
	  "start an OAuth 2.0 device sign-in for an account", NULL },
	{ "oauth.wait", CTL_OAUTH_WAIT, f_account,
	  "wait (up to a minute) for a device sign-in to end", NULL },
	{ "user.admin", CTL_USER_ADMIN, f_user_admin,
	  "show or set whether a user is an admin of the web page (\"yes\" "
	  "or \"no\")", NULL },
	{ "user.export", CTL_USER_EXPORT, f_user_export,
	  "move a user away: stop serving and polling them here and write "
	  "them to a file for user.import on another node", NULL },
	{ "user.import", CTL_USER_IMPORT, f_user_import,
	  "create a user from a user.export file, with their UIDs, "
	  "MODSEQs, ledger and accounts", NULL },
	{ "user.unmove", CTL_USER_UNMOVE, f_user,
	  "serve and poll an exported user here again", NULL },
};

const struct ctl_command *
ctl_command_find(const char *name)
{
	for (size_t i = 0; i < CTL_CMD_COUNT; i++) {
		if (strcmp(ctl_commands[i].name, name) == 0)
			return &ctl_commands[i];
	}
	return NULL;
}

void
ctl_error_set(struct ctl_error *err, const char *code, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->field = field;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

static const char *
check_string(enum ctl_check check, const char *s)
{
	size_t len = strlen(s);
	const char *why = NULL;

	switch (check) {
	case CTL_C_NONE:
	case CTL_C_CSV:
		return NULL;
	case CTL_C_NAME:
		if (len == 0 || len > CTL_NAME_MAX)
			return "must be 1 to 255 bytes";
		if (str_has_ctl(s) || strchr(s, '/') != NULL)
			return "must not contain control characters or '/'";
		return NULL;
	case CTL_C_ACCOUNT:
		if (len == 0 || len > 48)
			return "must be 1 to 48 bytes";
		for (const char *p = s; *p != '\0'; p++) {
			if (!((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') ||
			    strchr("._@+-", *p) != NULL))
				return "may contain only letters, digits and "
				    "._@+-";
		}
		return NULL;
	case CTL_C_HOST:
		if (len == 0 || len > CTL_HOST_MAX)
			return "must be 1 to 253 bytes";
		for (const char *p = s; *p != '\0'; p++) {
			if (!((*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') ||
			    *p == '.' || *p == '-' || *p == ':'))
				return "must be a host name or an address";
		}
		return NULL;
	case CTL_C_TLS: {
		enum config_upstream_tls tls;

		return config_parse_tls(s, &tls, &why) < 0 ? why : NULL;
	}
	case CTL_C_MODE: {
		enum config_upstream_mode mode;
		uint32_t days;

		return config_parse_mode(s, &mode, &days, &why) < 0 ?
		    why : NULL;
	}
	case CTL_C_AUTH: {
		/* the poller's own list, so the two cannot disagree */
		enum upstream_auth auth;

		return upstream_auth_parse(s, &auth) == 0 ? NULL :
		    "expected auto, user, apop, plain, login, cram-md5, "
		    "scram-sha-1, scram-sha-256, xoauth2 or oauthbearer";
	}
	case CTL_C_LOGIN:
		if (len == 0 || len > CTL_LOGIN_MAX)
			return "must be 1 to 255 bytes";
		if (str_has_ctl(s))
			return "must not contain control characters";
		return NULL;
	case CTL_C_PASSWORD:
		if (len > CTL_PASSWORD_MAX)
			return "is longer than 1024 bytes";
		if (str_has_ctl(s))
			return "must not contain control characters";
		return NULL;
	case CTL_C_FOLDER:
		if (len == 0 || len > CTL_FOLDER_MAX)
			return "must be 1 to 400 bytes";
		if (str_has_ctl(s))
			return "must not contain control characters";
		return NULL;
	case CTL_C_PATH:
		if (len == 0 || len > CTL_PATH_MAX)
			return "must be 1 to 1024 bytes";
		if (s[0] != '/')
			return "must be an absolute path";
		if (str_has_ctl(s))
			return "must not contain control characters";
		return NULL;
	case CTL_C_PATH_OPT:
		if (len == 0)
			return NULL;
		if (len > CTL_PATH_MAX || s[0] != '/' || str_has_ctl(s))
			return "must be an absolute path (or \"\" to unset)";
		return NULL;
	case CTL_C_FINGERPRINT: {
		unsigned char fp[32];

		if (len == 0 || upstream_fingerprint_parse(s, fp) == 0)
			return NULL;
		return "must be a SHA-256 fingerprint: 64 hex digits, colons "
		    "allowed (or \"\" to unset)";
	}
	case CTL_C_PROVIDER:
		if (len == 0 || len > CTL_PROVIDER_MAX)
			return "must be 1 to 32 bytes";
		for (const char *p = s; *p != '\0'; p++) {
			if (!((*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' ||
			    *p == '_'))
				return "may contain only a-z, 0-9, - and _";
		}
		return NULL;
	case CTL_C_PORT:
	case CTL_C_INTERVAL:
	case CTL_C_LIMIT:
		return "internal: numeric check on a string";
	}
	return NULL;
}

static const char *
check_int(enum ctl_check check, json_int_t n)
{
	if (n < 0)
		return "must not be negative";
	switch (check) {
	case CTL_C_PORT:
		if (n < 1 || n > 65535)
			return "must be from 1 to 65535";
		return NULL;
	case CTL_C_INTERVAL:
		if (n < 10 || n > 30 * 86400)
			return "must be from 10 to 2592000 seconds";
		return NULL;
	case CTL_C_LIMIT:
		if (n < 1 || n > CTL_LIMIT_MAX)
			return "must be from 1 to 1000";
		return NULL;
	default:
		return NULL;
	}
}

const char *
ctl_check_value(enum ctl_check check, json_t *value)
{
	if (json_is_string(value))
		return check_string(check, json_string_value(value));
	if (json_is_integer(value))
		return check_int(check, json_integer_value(value));
	return NULL;
}

static const char *
type_name(enum ctl_type t)
{
	switch (t) {
	case CTL_T_STRING:
		return "a string";
	case CTL_T_INT:
		return "an integer";
	case CTL_T_BOOL:
		return "true or false";
	}
	return "?";
}

static bool
type_ok(enum ctl_type t, json_t *v)
{
	switch (t) {
	case CTL_T_STRING:
		return json_is_string(v);
	case CTL_T_INT:
		return json_is_integer(v);
	case CTL_T_BOOL:
		return json_is_boolean(v);
	}
	return false;
}

int
ctl_request_parse(const char *line, size_t len,
    const struct ctl_command **cmd_r, json_t **req_r, struct ctl_error *err)
{
	json_error_t jerr;
	json_t *req, *v;
	const struct ctl_command *cmd;
	const char *key;
	char esc[LOG_PEER_TEXT_MAX + 1];

	req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (req == NULL) {
		log_escape(esc, sizeof(esc), jerr.text, strlen(jerr.text));
		ctl_error_set(err, CTL_E_BAD_JSON, NULL,
		    "malformed JSON at column %d: %s", jerr.column, esc);
		return -1;
	}
	if (!json_is_object(req)) {
		ctl_error_set(err, CTL_E_NOT_OBJECT, NULL,
		    "a request is a JSON object");
		goto fail;
	}
	v = json_object_get(req, "command");
	if (v == NULL) {
		ctl_error_set(err, CTL_E_MISSING_FIELD, "command",
		    "\"command\" is required");
		goto fail;
	}
	if (!json_is_string(v)) {
		ctl_error_set(err, CTL_E_WRONG_TYPE, "command",
		    "\"command\" must be a string");
		goto fail;
	}
	cmd = ctl_command_find(json_string_value(v));
	if (cmd == NULL) {
		log_escape(esc, sizeof(esc), json_string_value(v),
		    json_string_length(v));
		ctl_error_set(err, CTL_E_UNKNOWN_COMMAND, "command",
		    "unknown command \"%s\"", esc);
		goto fail;
	}
	/* Unknown fields first: a typo in an optional name must not pass
	   silently as "not given". */
	json_object_foreach(req, key, v) {
		bool known = strcmp(key, "command") == 0 ||
		    strcmp(key, "id") == 0;

		for (const struct ctl_field *f = cmd->fields;
		    !known && f->name != NULL; f++)
			known = strcmp(f->name, key) == 0;
		if (!known) {
			log_escape(esc, sizeof(esc), key, strlen(key));
			ctl_error_set(err, CTL_E_UNKNOWN_FIELD, NULL,
			    "%s has no field \"%s\"", cmd->name, esc);
			goto fail;
		}
	}
	for (const struct ctl_field *f = cmd->fields; f->name != NULL; f++) {
		const char *why;

		v = json_object_get(req, f->name);
		if (v == NULL || json_is_null(v)) {
			if (!f->required)
				continue;
			ctl_error_set(err, CTL_E_MISSING_FIELD, f->name,
			    "%s needs \"%s\"", cmd->name, f->name);
			goto fail;
		}
		if (!type_ok(f->type, v)) {
			ctl_error_set(err, CTL_E_WRONG_TYPE, f->name,
			    "\"%s\" must be %s", f->name, type_name(f->type));
			goto fail;
		}
		why = ctl_check_value(f->check, v);
		if (why != NULL) {
			ctl_error_set(err, CTL_E_INVALID, f->name,
			    "\"%s\": %s", f->name, why);
			goto fail;
		}
	}
	if (cmd->check != NULL && cmd->check(req, err) < 0)
		goto fail;
	*cmd_r = cmd;
	*req_r = req;
	return 0;
fail:
	json_decref(req);
	return -1;
}

const char *
ctl_req_str(json_t *req, const char *name)
{
	return json_string_value(json_object_get(req, name));
}

long long
ctl_req_int(json_t *req, const char *name, long long def)
{
	json_t *v = json_object_get(req, name);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

bool
ctl_req_bool(json_t *req, const char *name, bool def)
{
	json_t *v = json_object_get(req, name);

	return json_is_boolean(v) ? json_is_true(v) : def;
}

json_t *
ctl_error_json(const struct ctl_error *err)
{
	json_t *e = json_pack("{s:s, s:s}", "code", err->code,
	    "message", err->message);

	if (err->field != NULL)
		json_object_set_new(e, "field", json_string(err->field));
	return json_pack("{s:b, s:o}", "ok", 0, "error", e);
}

json_t *
ctl_ok_json(void)
{
	return json_pack("{s:b}", "ok", 1);
}

char *
ctl_json_line(const json_t *response)
{
	char *s = json_dumps(response, JSON_COMPACT | JSON_ENSURE_ASCII);
	char *line;

	PG_ASSERT(s != NULL);
	line = xasprintf("%s\n", s);
	free(s);
	return line;
}

int
ctl_csv_split(const char *line, size_t len, char delim, char **fields_r,
    size_t *count_r, const char **error_r)
{
	struct strbuf field = STRBUF_INIT;
	size_t i = 0, n = 0;
	int ret = -1;

	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL byte in line";
		return -1;
	}
	for (;;) {
		strbuf_reset(&field);
		if (i < len && line[i] == '"') {
			i++;
			for (;;) {
				if (i >= len) {
					*error_r = "unterminated quoted field";
					goto out;
				}
				if (line[i] == '"') {
					if (i + 1 < len && line[i + 1] == '"') {
						strbuf_appendc(&field, '"');
						i += 2;
						continue;
					}
					i++;
					break;
				}
				strbuf_appendc(&field, line[i++]);
			}
			if (i < len && line[i] != delim) {
				*error_r = "text after a closing quote";
				goto out;
			}
		} else {
			size_t start = i;

			while (i < len && line[i] != delim) {
				if (line[i] == '"') {
					*error_r = "quote inside an unquoted "
					    "field";
					goto out;
				}
				i++;
			}
			strbuf_append(&field, line + start, i - start);
		}
		if (n == CTL_CSV_FIELDS_MAX) {
			*error_r = "too many fields";
			goto out;
		}
		fields_r[n++] = xstrdup(strbuf_str(&field));
		if (i >= len)
			break;
		i++;	/* the delimiter */
	}
	*count_r = n;
	ret = 0;
out:
	if (ret < 0) {
		for (size_t j = 0; j < n; j++)
			free(fields_r[j]);
	}
	strbuf_free(&field);
	return ret;
}

/* Blocks stay plain malloc() ones (json_dumps results are released with
   free() by their callers); only jansson's own frees wipe. */
static void
wipe_free(void *ptr)
{
	if (ptr == NULL)
		return;
	secure_zero(ptr, malloc_usable_size(ptr));
	free(ptr);
}

void
ctl_json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
}
