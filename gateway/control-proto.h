/*
 * control-proto — the control socket's request language (level 1, pure).
 *
 * One request per line: a JSON object with a "command" string and the
 * command's fields. One response per line: {"ok":true, ...} or
 * {"ok":false,"error":{"code":CODE,"message":TEXT[,"field":NAME]}}.
 * docs/control-protocol.md describes every command and error code.
 *
 * ctl_request_parse() checks everything that can be checked without the
 * store: the line is JSON, an object, names a known command, has every
 * required field with the right type, has no unknown field, and each value
 * passes its field's syntax check (port range, TLS mode, user name ...).
 * Only a request that passes reaches a handler, so a bad request changes
 * nothing.
 *
 * The command table is static const and public so popgatectl, the daemon
 * and the tests see the same one.
 */
#ifndef POPGATE_GATEWAY_CONTROL_PROTO_H
#define POPGATE_GATEWAY_CONTROL_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest user or account name. */
#define CTL_NAME_MAX 255
/* Longest host name (RFC 1035) */
#define CTL_HOST_MAX 253
/* Longest upstream login name. */
#define CTL_LOGIN_MAX 255
/* Longest password accepted over the socket (argon2 cost bound). */
#define CTL_PASSWORD_MAX 1024
/* Longest folder name (the store's limit is checked again there). */
#define CTL_FOLDER_MAX 400
/* Longest CSV text in one import request. */
#define CTL_IMPORT_MAX (16 * 1024 * 1024)
#define CTL_MESSAGE_MAX 300
/* Longest path accepted (a backup file, a CA file). */
#define CTL_PATH_MAX 1024
/* Largest "limit" of a listing. */
#define CTL_LIMIT_MAX 1000
/* Longest OAuth provider name (a configuration section's name). */
#define CTL_PROVIDER_MAX 32

enum ctl_cmd_id {
	CTL_USER_ADD = 0,
	CTL_USER_DELETE,
	CTL_USER_PASSWD,
	CTL_USER_LIST,
	CTL_USER_QUOTA,
	CTL_ACCOUNT_ADD,
	CTL_ACCOUNT_DELETE,
	CTL_ACCOUNT_SET,
	CTL_ACCOUNT_ENABLE,
	CTL_ACCOUNT_DISABLE,
	CTL_ACCOUNT_LIST,
	CTL_IMPORT,
	CTL_POLL,
	CTL_STATUS,
	CTL_SESSIONS,
	CTL_STATS,
	CTL_REINDEX,
	CTL_RELOAD,
	CTL_SHUTDOWN,
	CTL_ACCOUNT_HISTORY,
	CTL_BACKUP,
	CTL_TRACE,
	CTL_OAUTH_START,
	CTL_OAUTH_WAIT,
	CTL_USER_ADMIN,
	CTL_USER_EXPORT,
	CTL_USER_IMPORT,
	CTL_USER_UNMOVE,
	CTL_CMD_COUNT
};

enum ctl_type {
	CTL_T_STRING,
	CTL_T_INT,	/* JSON integer >= 0 */
	CTL_T_BOOL,
};

/* Syntax checks beyond the type; each returns NULL or why not. */
enum ctl_check {
	CTL_C_NONE = 0,
	CTL_C_NAME,		/* user name: 1..255, no control, no '/' */
	CTL_C_ACCOUNT,		/* account name: 1..48 of [A-Za-z0-9._@+-] */
	CTL_C_HOST,
	CTL_C_PORT,		/* 1..65535 */
	CTL_C_TLS,		/* pop3s | stls | none */
	CTL_C_MODE,		/* keep | delete | delete-after:N | mirror */
	CTL_C_AUTH,		/* auto | user | apop | plain */
	CTL_C_LOGIN,
	CTL_C_PASSWORD,
	CTL_C_FOLDER,
	CTL_C_INTERVAL,		/* 10 .. 30 days, seconds */
	CTL_C_CSV,
	CTL_C_PATH,		/* absolute, no control characters */
	CTL_C_PATH_OPT,		/* "" (unset) or an absolute path */
	CTL_C_LIMIT,		/* 1 .. CTL_LIMIT_MAX */
	CTL_C_FINGERPRINT,	/* "" (unset) or SHA-256 in hex, colons
				   allowed */
	CTL_C_PROVIDER,		/* 1..32 of [a-z0-9_-] */
};

struct ctl_field {
	const char *name;
	enum ctl_type type;
	bool required;
	enum ctl_check check;
};

struct ctl_error;

struct ctl_command {
	const char *name;
	enum ctl_cmd_id id;
	const struct ctl_field *fields;	/* ends with a NULL name */
	const char *summary;		/* one line, for help */
	/* Rules between fields ("password unless an OAuth mechanism");
	   NULL: none. -1 with err filled. */
	int (*check)(json_t *req, struct ctl_error *err);
};

extern const struct ctl_command ctl_commands[CTL_CMD_COUNT];

/* An error to send back; code and field are static strings. */
struct ctl_error {
	const char *code;	/* e.g. "missing-field" */
	const char *field;	/* NULL when no single field is at fault */
	char message[CTL_MESSAGE_MAX];
};

/* The fixed error codes. */
#define CTL_E_BAD_JSON "bad-json"
#define CTL_E_NOT_OBJECT "not-an-object"
#define CTL_E_UNKNOWN_COMMAND "unknown-command"
#define CTL_E_MISSING_FIELD "missing-field"
#define CTL_E_WRONG_TYPE "wrong-type"
#define CTL_E_UNKNOWN_FIELD "unknown-field"
#define CTL_E_INVALID "invalid-value"
#define CTL_E_TOO_LONG "request-too-long"
#define CTL_E_UNKNOWN_USER "unknown-user"
#define CTL_E_UNKNOWN_ACCOUNT "unknown-account"
#define CTL_E_EXISTS "exists"
#define CTL_E_STORE "store-error"
#define CTL_E_UNAVAILABLE "unavailable"
#define CTL_E_INTERNAL "internal-error"

const struct ctl_command *ctl_command_find(const char *name);

/*
 * Parses and validates one request line (without its newline). On 0,
 * *cmd_r is the command and *req_r the request object (caller
 * json_decref()s it). On -1 *err is filled and nothing is returned.
 */
int ctl_request_parse(const char *line, size_t len,
    const struct ctl_command **cmd_r, json_t **req_r, struct ctl_error *err);

/* Field accessors for a validated request (absent optional: NULL / def). */
const char *ctl_req_str(json_t *req, const char *name);
long long ctl_req_int(json_t *req, const char *name, long long def);
bool ctl_req_bool(json_t *req, const char *name, bool def);

void ctl_error_set(struct ctl_error *err, const char *code,
    const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* {"ok":false,"error":{...}} (new reference). */
json_t *ctl_error_json(const struct ctl_error *err);
/* {"ok":true} (new reference), to which handlers add their data. */
json_t *ctl_ok_json(void);
/* Compact one-line rendering ending in "\n"; caller frees. */
char *ctl_json_line(const json_t *response);

/* Syntax check of a value on its own (used by import for CSV fields). */
const char *ctl_check_value(enum ctl_check check, json_t *value);

/* Columns of an import line, and the most accepted. */
#define CTL_CSV_FIELDS_MAX 24
/*
 * Splits one CSV line (RFC 4180: fields separated by delim, usually ',' —
 * ';' in files from spreadsheets set to a comma-decimal locale —,
 * "quoted" fields with "" for a quote; no line end inside) into at most
 * CTL_CSV_FIELDS_MAX new strings (caller frees each). -1 with *error_r on
 * an unterminated quote, junk after a closing quote, a NUL byte or too
 * many fields.
 */
int ctl_csv_split(const char *line, size_t len, char delim, char **fields_r,
    size_t *count_r, const char **error_r);

/*
 * Makes every jansson allocation wipe itself when freed: control requests,
 * import lines and the requests built from them hold user and upstream
 * passwords in jansson strings. Call before the first jansson call.
 */
void ctl_json_wipe_on_free(void);

#endif
