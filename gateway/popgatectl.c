/*
 * popgatectl — talks to a running popgated over its control socket.
 *
 *   popgatectl [-s SOCKET] [-c CONFIG] [--json] COMMAND [ARGS...]
 *
 * Every command sends one JSON request line and prints the answer as a
 * table (or as the raw JSON with --json). Exit codes: 0 done, 1 the daemon
 * refused the request (its error is printed), 2 usage error, 3 the daemon
 * cannot be reached, 4 the answer was not understood.
 * docs/popgatectl.8 and `popgatectl COMMAND --help` describe each command.
 */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gateway/config.h"
#include "gateway/control-proto.h"
#include "strbuf.h"
#include "xmalloc.h"

#define DEFAULT_CONFIG "/etc/popgate/popgate.conf"
#define DEFAULT_SOCKET "/run/popgate/popgate.sock"
/* Largest answer read (an import report of many lines). */
#define CTL_REPLY_MAX (256u * 1024 * 1024)

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_BADREPLY 4

struct opts {
	const char *socket;
	const char *config;
	bool json;
};

/* One option of a command: --name VALUE (or a flag), into field. */
struct opt_def {
	const char *name;	/* without "--" */
	const char *field;	/* request field; NULL for special */
	enum { O_STR, O_INT, O_FLAG } kind;
};

struct cmd_def {
	const char *words;		/* "user add" */
	const char *command;		/* protocol command */
	const char *const *positional;	/* request fields, in order */
	size_t required;		/* positional ones that must be given */
	const struct opt_def *options;
	bool password_stdin;		/* accepts --password-stdin */
	const char *usage;
	void (*print)(json_t *reply);
};

/* ---- printing ------------------------------------------------------- */

static const char *
str_or(json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : def;
}

static void
fmt_time(json_t *v, char *buf, size_t size)
{
	time_t t;
	struct tm tm;

	if (!json_is_integer(v)) {
		snprintf(buf, size, "-");
		return;
	}
	t = (time_t)json_integer_value(v);
	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void
print_ok(json_t *reply)
{
	const char *account = json_string_value(json_object_get(reply,
	    "account"));

	if (account != NULL)
		printf("ok: account %s\n", account);
	else
		printf("ok\n");
}

static void
print_users(json_t *reply)
{
	json_t *users = json_object_get(reply, "users"), *u;
	size_t i;
	char t[32];

	printf("%-24s %6s %8s %8s  %s\n", "USER", "ID", "ACCOUNTS",
	    "PASSWORD", "CREATED");
	json_array_foreach(users, i, u) {
		fmt_time(json_object_get(u, "created"), t, sizeof(t));
		printf("%-24s %6lld %8lld %8s  %s\n", str_or(u, "user", "?"),
		    (long long)json_integer_value(json_object_get(u, "id")),
		    (long long)json_integer_value(json_object_get(u,
		    "accounts")),
		    json_is_true(json_object_get(u, "password")) ? "yes" :
		    "no", t);
	}
}

static void
print_accounts(json_t *reply)
{
	json_t *accounts = json_object_get(reply, "accounts"), *a;
	size_t i;
	char hp[300];

	printf("%-16s %-20s %-28s %-5s %-16s %-16s %-10s %8s %s\n", "USER",
	    "ACCOUNT", "HOST:PORT", "TLS", "LOGIN", "MODE", "FOLDER",
	    "INTERVAL", "ENABLED");
	json_array_foreach(accounts, i, a) {
		snprintf(hp, sizeof(hp), "%s:%lld", str_or(a, "host", "?"),
		    (long long)json_integer_value(json_object_get(a,
		    "port")));
		printf("%-16s %-20s %-28s %-5s %-16s %-16s %-10s %8lld %s\n",
		    str_or(a, "user", "?"), str_or(a, "account", "?"), hp,
		    str_or(a, "tls", "?"), str_or(a, "login", "?"),
		    str_or(a, "mode", "?"), str_or(a, "folder", "?"),
		    (long long)json_integer_value(json_object_get(a,
		    "interval")),
		    json_is_true(json_object_get(a, "enabled")) ? "yes" :
		    "no");
	}
}

static void
print_status(json_t *reply)
{
	json_t *accounts = json_object_get(reply, "accounts"), *a;
	json_t *imp = json_object_get(reply, "import");
	size_t i;
	char last[32], next[32];

	printf("%-16s %-20s %-12s %-19s %-19s %8s  %s\n", "USER", "ACCOUNT",
	    "STATE", "LAST SUCCESS", "NEXT POLL", "FETCHED", "LAST ERROR");
	json_array_foreach(accounts, i, a) {
		json_t *st = json_object_get(a, "status");

		fmt_time(json_object_get(st, "last_success"), last,
		    sizeof(last));
		fmt_time(json_object_get(st, "next_poll"), next, sizeof(next));
		printf("%-16s %-20s %-12s %-19s %-19s %8lld  %s\n",
		    str_or(a, "user", "?"), str_or(a, "account", "?"),
		    str_or(st, "state", "?"), last, next,
		    (long long)json_integer_value(json_object_get(st,
		    "messages_fetched")),
		    str_or(st, "last_error", str_or(st, "reason", "-")));
		{
			json_t *pi = json_object_get(st, "import");
			long long total = json_integer_value(
			    json_object_get(pi, "total"));

			if (total > 0 && json_integer_value(json_object_get(pi,
			    "done")) < total)
				printf("%38s importing: %lld of %lld\n", "",
				    (long long)json_integer_value(
				    json_object_get(pi, "done")), total);
		}
	}
	{
		json_t *st = json_object_get(reply, "store");

		if (json_is_object(st)) {
			printf("store: %lld MB used, map %lld MB, can reach %lld "
			    "MB, %lld MB free on disk\n",
			    (long long)json_integer_value(json_object_get(st,
			    "used_bytes")) >> 20,
			    (long long)json_integer_value(json_object_get(st,
			    "map_size")) >> 20,
			    (long long)json_integer_value(json_object_get(st,
			    "capacity_bytes")) >> 20,
			    (long long)json_integer_value(json_object_get(st,
			    "disk_free_bytes")) >> 20);
			if (json_is_string(json_object_get(st, "warning")))
				printf("WARNING: %s\n", str_or(st, "warning",
				    ""));
		}
	}
	if (json_is_object(imp))
		printf("import: %s, line %lld of %lld, %lld ok, %lld failed\n",
		    json_is_true(json_object_get(imp, "running")) ?
		    "running" : "finished",
		    (long long)json_integer_value(json_object_get(imp,
		    "lines_done")),
		    (long long)json_integer_value(json_object_get(imp,
		    "lines_total")),
		    (long long)json_integer_value(json_object_get(imp, "ok")),
		    (long long)json_integer_value(json_object_get(imp,
		    "failed")));
}

static void
print_quota(json_t *reply)
{
	long long q = json_integer_value(json_object_get(reply, "quota_bytes"));
	long long u = json_integer_value(json_object_get(reply, "used_bytes"));

	if (q > 0)
		printf("%s: %lld of %lld bytes used (%lld%%)%s\n",
		    str_or(reply, "user", "?"), u, q, u * 100 / q,
		    json_is_true(json_object_get(reply, "own")) ? "" :
		    " (the default quota)");
	else
		printf("%s: %lld bytes used, no quota%s\n",
		    str_or(reply, "user", "?"), u,
		    json_is_true(json_object_get(reply, "own")) ? "" :
		    " (the default)");
}

static void
print_sessions(json_t *reply)
{
	json_t *sessions = json_object_get(reply, "sessions"), *s;
	size_t i;

	printf("%6s %-20s %-22s %-4s %-16s %s\n", "ID", "USER", "ADDRESS",
	    "TLS", "MAILBOX", "CLIENT");
	json_array_foreach(sessions, i, s) {
		printf("%6lld %-20s %-22s %-4s %-16s %s\n",
		    (long long)json_integer_value(json_object_get(s, "id")),
		    str_or(s, "user", "-"), str_or(s, "address", "?"),
		    json_is_true(json_object_get(s, "tls")) ? "yes" : "no",
		    str_or(s, "mailbox", "-"), str_or(s, "client_id", "-"));
	}
}

static void
print_flat(const char *prefix, json_t *o)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		char name[128];

		snprintf(name, sizeof(name), "%s%s%s", prefix,
		    *prefix != '\0' ? "." : "", key);
		if (json_is_object(v))
			print_flat(name, v);
		else if (json_is_integer(v))
			printf("%-36s %lld\n", name,
			    (long long)json_integer_value(v));
		else if (json_is_string(v))
			printf("%-36s %s\n", name, json_string_value(v));
	}
}

static void
print_stats(json_t *reply)
{
	print_flat("", json_object_get(reply, "stats"));
}

static void
print_poll(json_t *reply)
{
	printf("polls started: %lld\n", (long long)json_integer_value(
	    json_object_get(reply, "polls_started")));
}

static void
print_import(json_t *reply)
{
	json_t *lines = json_object_get(reply, "lines"), *l;
	json_t *sum = json_object_get(reply, "import");
	size_t i;

	json_array_foreach(lines, i, l) {
		json_t *err = json_object_get(l, "error");

		if (err != NULL)
			printf("line %lld: %s: error: %s\n",
			    (long long)json_integer_value(json_object_get(l,
			    "line")), str_or(l, "user", "?"),
			    str_or(err, "message", "?"));
		else
			printf("line %lld: %s: user %s%s%s\n",
			    (long long)json_integer_value(json_object_get(l,
			    "line")), str_or(l, "user", "?"),
			    str_or(l, "user_action", "?"),
			    json_object_get(l, "account") ? ", account " :
			    "", str_or(l, "account", ""));
	}
	printf("%s: %lld ok, %lld failed\n",
	    json_is_true(json_object_get(sum, "dry_run")) ? "dry run" :
	    "import", (long long)json_integer_value(json_object_get(sum, "ok")),
	    (long long)json_integer_value(json_object_get(sum, "failed")));
}

/* ---- commands ------------------------------------------------------- */

static const char *const pos_user[] = { "user", NULL };
static const char *const pos_user_account[] = { "user", "account", NULL };
static const char *const pos_none[] = { NULL };
static const char *const pos_user_quota[] = { "user", "quota", NULL };

/* The settings of an upstream account, as both "account add" and
   "account set" take them. */
#define OPTS_ACCOUNT_SETTINGS \
	{ "host", "host", O_STR }, \
	{ "port", "port", O_INT }, \
	{ "tls", "tls", O_STR }, \
	{ "login", "login", O_STR }, \
	{ "mode", "mode", O_STR }, \
	{ "folder", "folder", O_STR }, \
	{ "interval", "interval", O_INT }, \
	{ "size-limit", "size_limit", O_INT }, \
	{ "auth", "auth", O_STR }

static const struct opt_def opts_account[] = {
	OPTS_ACCOUNT_SETTINGS,
	{ "name", "account", O_STR },
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_account_set[] = {
	OPTS_ACCOUNT_SETTINGS,
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_import[] = {
	{ "dry-run", "dry_run", O_FLAG },
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_none[] = { { NULL, NULL, O_FLAG } };

static const struct cmd_def cmds[] = {
	{ "user add", "user.add", pos_user, 1, opts_none, true,
	  "user add NAME --password-stdin\n"
	  "  Create an IMAP user; the password is read from standard input.",
	  print_ok },
	{ "user delete", "user.delete", pos_user, 1, opts_none, false,
	  "user delete NAME\n"
	  "  Delete a user with all their mail and upstream accounts.",
	  print_ok },
	{ "user passwd", "user.passwd", pos_user, 1, opts_none, true,
	  "user passwd NAME --password-stdin\n"
	  "  Set a user's IMAP password (read from standard input).",
	  print_ok },
	{ "user list", "user.list", pos_none, 0, opts_none, false,
	  "user list\n  List the users.", print_users },
	{ "user quota", "user.quota", pos_user_quota, 1, opts_none, false,
	  "user quota NAME [SIZE|none|default]\n"
	  "  Show a user's storage quota and usage, or set it: a size such\n"
	  "  as 500M, none (no quota for this user) or default (the\n"
	  "  [store] quota of the configuration).", print_quota },
	{ "account add", "account.add", pos_user, 1, opts_account, true,
	  "account add USER --host H --port P --tls pop3s|stls|none\n"
	  "    --login NAME --password-stdin [--mode keep|delete|"
	  "delete-after:DAYS|mirror]\n"
	  "    [--folder NAME] [--interval SECONDS] [--size-limit BYTES]\n"
	  "    [--auth auto|user|apop|plain|login|cram-md5] [--name ACCOUNT]\n"
	  "  Add an upstream POP3 account to USER. The upstream password is\n"
	  "  read from standard input and stored encrypted.",
	  print_ok },
	{ "account delete", "account.delete", pos_user_account, 2, opts_none,
	  false, "account delete USER ACCOUNT\n"
	  "  Remove an upstream account; mail already fetched stays.",
	  print_ok },
	{ "account set", "account.set", pos_user_account, 2, opts_account_set,
	  true, "account set USER ACCOUNT [--host H] [--port P] [--tls T]\n"
	  "    [--login NAME] [--password-stdin] [--mode M] [--folder F]\n"
	  "    [--interval S] [--size-limit B] [--auth A]\n"
	  "  Change fields of an upstream account.", print_ok },
	{ "account enable", "account.enable", pos_user_account, 2, opts_none,
	  false, "account enable USER ACCOUNT\n  Resume polling.", print_ok },
	{ "account disable", "account.disable", pos_user_account, 2,
	  opts_none, false, "account disable USER ACCOUNT\n  Stop polling.",
	  print_ok },
	{ "account list", "account.list", pos_user, 0, opts_none, false,
	  "account list [USER]\n  List upstream accounts (never passwords).",
	  print_accounts },
	{ "import", "import", pos_none, 0, opts_import, false,
	  "import FILE|- [--dry-run]\n"
	  "  Create users and accounts from CSV with the columns\n"
	  "  user,user_password,host,port,tls,login,password,mode,folder,"
	  "interval,account\n"
	  "  and print a report per line. --dry-run checks without changes.",
	  print_import },
	{ "poll", "poll", pos_user_account, 0, opts_none, false,
	  "poll [USER [ACCOUNT]]\n"
	  "  Poll every account, a user's accounts, or one account now.",
	  print_poll },
	{ "status", "status", pos_user, 0, opts_none, false,
	  "status [USER]\n"
	  "  Per account: state, last success, next poll, last error, "
	  "import progress.", print_status },
	{ "sessions", "sessions", pos_user, 0, opts_none, false,
	  "sessions [USER]\n  IMAP sessions: user, address, client ID.",
	  print_sessions },
	{ "stats", "stats", pos_none, 0, opts_none, false,
	  "stats\n  Counters since the daemon started.", print_stats },
	{ "reload", "reload", pos_none, 0, opts_none, false,
	  "reload\n  Re-read the configuration and certificates "
	  "(as SIGHUP).", print_ok },
	{ "shutdown", "shutdown", pos_none, 0, opts_none, false,
	  "shutdown\n  Stop the daemon gracefully.", print_ok },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: popgatectl [-s SOCKET] [-c CONFIG] [--json] "
	    "COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < N_ELEMENTS(cmds); i++) {
		const char *nl = strchr(cmds[i].usage, '\n');

		fprintf(f, "  %.*s\n", (int)(nl - cmds[i].usage),
		    cmds[i].usage);
	}
	fprintf(f, "\n`popgatectl COMMAND --help` describes a command.\n"
	    "exit codes: 0 ok, 1 refused by the daemon, 2 usage, "
	    "3 daemon unreachable, 4 bad answer\n");
}

/* Reads the password line from standard input (no echo on a terminal). */
static char *
read_password(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO) == 1;
	int c;

	if (tty) {
		fprintf(stderr, "password: ");
		tcgetattr(STDIN_FILENO, &old);
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &noecho);
	}
	while ((c = getchar()) != EOF && c != '\n') {
		if (sb.len > CTL_PASSWORD_MAX)
			break;
		strbuf_appendc(&sb, (char)c);
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
	}
	if (sb.len > 0 && sb.data[sb.len - 1] == '\r')
		strbuf_truncate(&sb, sb.len - 1);
	return strbuf_detach(&sb, NULL);
}

static char *
read_file(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char buf[8192];
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "popgatectl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		strbuf_append(&sb, buf, n);
		if (sb.len > CTL_IMPORT_MAX) {
			fprintf(stderr, "popgatectl: %s: larger than %d "
			    "bytes\n", path, CTL_IMPORT_MAX);
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (sb.len > CTL_IMPORT_MAX) {
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

static const char *
socket_path(const struct opts *o)
{
	static char path[256];
	struct config *c = NULL;
	char err[CONFIG_ERROR_MAX];

	if (o->socket != NULL)
		return o->socket;
	if (config_load(o->config != NULL ? o->config : DEFAULT_CONFIG, &c,
	    err, sizeof(err)) < 0) {
		if (o->config != NULL) {
			fprintf(stderr, "popgatectl: %s\n", err);
			return NULL;
		}
		return DEFAULT_SOCKET;
	}
	snprintf(path, sizeof(path), "%s", c->control_socket);
	config_free(&c);
	return path;
}

/* Sends line, returns the reply line (caller frees) or NULL. */
static char *
transact(const char *path, const char *line, int *exit_r)
{
	struct sockaddr_un sun;
	struct strbuf reply = STRBUF_INIT;
	size_t len = strlen(line), done = 0;
	char buf[65536];
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "popgatectl: %s: path too long\n", path);
		*exit_r = EXIT_USAGE;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "popgatectl: cannot reach popgated at %s: "
		    "%s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		*exit_r = EXIT_UNREACHABLE;
		return NULL;
	}
	while (done < len) {
		ssize_t n = write(fd, line + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		strbuf_append(&reply, buf, (size_t)n);
		if (memchr(buf, '\n', (size_t)n) != NULL ||
		    reply.len > CTL_REPLY_MAX)
			break;
	}
	close(fd);
	if (reply.len == 0 || reply.data[reply.len - 1] != '\n') {
		fprintf(stderr, "popgatectl: no complete answer from "
		    "popgated\n");
		strbuf_free(&reply);
		*exit_r = EXIT_BADREPLY;
		return NULL;
	}
	return strbuf_detach(&reply, NULL);
}

static const struct cmd_def *
find_cmd(int argc, char **argv, int *used_r)
{
	for (size_t i = 0; i < N_ELEMENTS(cmds); i++) {
		const char *w = cmds[i].words;
		const char *sp = strchr(w, ' ');

		if (sp == NULL) {
			if (argc >= 1 && strcmp(argv[0], w) == 0) {
				*used_r = 1;
				return &cmds[i];
			}
		} else if (argc >= 2 &&
		    strncmp(argv[0], w, (size_t)(sp - w)) == 0 &&
		    argv[0][sp - w] == '\0' && strcmp(argv[1], sp + 1) == 0) {
			*used_r = 2;
			return &cmds[i];
		}
	}
	return NULL;
}

static int
cmd_usage_error(const struct cmd_def *c, const char *fmt, const char *arg)
{
	fprintf(stderr, "popgatectl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: popgatectl %s\n", c->usage);
	return EXIT_USAGE;
}

/* Sets req[field] to the string value; -1 (nothing set) when value is
   not UTF-8, which JSON cannot carry. */
static int
set_string(json_t *req, const char *field, const char *value)
{
	json_t *v = json_string(value);

	if (v == NULL)
		return -1;
	json_object_set_new(req, field, v);
	return 0;
}

static int
run(const struct opts *o, const struct cmd_def *c, int argc, char **argv)
{
	json_t *req = json_pack("{s:s}", "command", c->command);
	const char *const *pos = c->positional;
	size_t npos = 0;
	bool pw_stdin = false;
	char *line = NULL, *reply_line = NULL, *password = NULL;
	const char *path;
	json_t *reply = NULL;
	json_error_t jerr;
	int ret = EXIT_USAGE;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("usage: popgatectl %s\n", c->usage);
			ret = 0;
			goto out;
		}
		if (strcmp(a, "--password-stdin") == 0 && c->password_stdin) {
			pw_stdin = true;
			continue;
		}
		if (strncmp(a, "--", 2) == 0) {
			const struct opt_def *d;

			for (d = c->options; d->name != NULL; d++) {
				if (strcmp(d->name, a + 2) == 0)
					break;
			}
			if (d->name == NULL) {
				ret = cmd_usage_error(c, "unknown option %s",
				    a);
				goto out;
			}
			if (d->kind == O_FLAG) {
				json_object_set_new(req, d->field,
				    json_true());
				continue;
			}
			if (i + 1 >= argc) {
				ret = cmd_usage_error(c, "%s needs a value", a);
				goto out;
			}
			a = argv[++i];
			if (d->kind == O_INT) {
				char *end;
				long long v;

				errno = 0;
				v = strtoll(a, &end, 10);
				if (*a == '\0' || *end != '\0' ||
				    errno != 0) {
					ret = cmd_usage_error(c,
					    "not a number: %s", a);
					goto out;
				}
				json_object_set_new(req, d->field,
				    json_integer(v));
			} else if (set_string(req, d->field, a) < 0) {
				ret = cmd_usage_error(c, "%s is not UTF-8 "
				    "text", argv[i - 1]);
				goto out;
			}
			continue;
		}
		if (strcmp(c->command, "import") == 0 && npos == 0) {
			char *csv = read_file(a);
			int rc;

			if (csv == NULL) {
				ret = EXIT_USAGE;
				goto out;
			}
			rc = set_string(req, "csv", csv);
			free(csv);
			if (rc < 0) {
				ret = cmd_usage_error(c, "%s is not UTF-8 "
				    "text", a);
				goto out;
			}
			npos++;
			continue;
		}
		if (pos[npos] == NULL) {
			ret = cmd_usage_error(c, "unexpected argument %s", a);
			goto out;
		}
		if (set_string(req, pos[npos], a) < 0) {
			ret = cmd_usage_error(c, "the %s is not UTF-8 text",
			    pos[npos]);
			goto out;
		}
		npos++;
	}
	if (strcmp(c->command, "import") == 0 && npos == 0) {
		ret = cmd_usage_error(c, "%s", "which file? (- for stdin)");
		goto out;
	}
	if (npos < c->required) {
		ret = cmd_usage_error(c, "missing %s", pos[npos]);
		goto out;
	}
	if (c->password_stdin && !pw_stdin &&
	    strcmp(c->command, "account.set") != 0) {
		ret = cmd_usage_error(c, "%s", "--password-stdin is required "
		    "(the password is never taken from the command line)");
		goto out;
	}
	if (pw_stdin) {
		password = read_password();
		if (set_string(req, "password", password) < 0) {
			ret = cmd_usage_error(c, "%s", "the password is not "
			    "UTF-8 text");
			goto out;
		}
	}
	path = socket_path(o);
	if (path == NULL)
		goto out;
	line = ctl_json_line(req);
	reply_line = transact(path, line, &ret);
	secure_zero(line, strlen(line));
	if (reply_line == NULL)
		goto out;
	reply = json_loads(reply_line, 0, &jerr);
	if (!json_is_object(reply) ||
	    !json_is_boolean(json_object_get(reply, "ok"))) {
		fprintf(stderr, "popgatectl: answer not understood: %s",
		    reply_line);
		ret = EXIT_BADREPLY;
		goto out;
	}
	if (o->json)
		printf("%s", reply_line);
	if (!json_is_true(json_object_get(reply, "ok"))) {
		json_t *e = json_object_get(reply, "error");

		if (!o->json)
			fprintf(stderr, "popgatectl: %s: %s (%s)\n",
			    c->words, str_or(e, "message", "?"),
			    str_or(e, "code", "?"));
		ret = EXIT_REFUSED;
		goto out;
	}
	if (!o->json)
		c->print(reply);
	ret = 0;
	/* an import with failed lines is reported as refused, so scripts
	   notice */
	if (strcmp(c->command, "import") == 0 && json_integer_value(
	    json_object_get(json_object_get(reply, "import"), "failed")) > 0)
		ret = EXIT_REFUSED;
out:
	if (password != NULL) {
		secure_zero(password, strlen(password));
		free(password);
	}
	if (line != NULL)
		free(line);
	free(reply_line);
	json_decref(reply);
	/* the request may hold a password: jansson frees it; wipe ours */
	json_decref(req);
	return ret;
}

int
main(int argc, char **argv)
{
	struct opts o = { NULL, NULL, false };
	const struct cmd_def *c;
	int i = 1, used;

	/* A daemon that refuses us closes the socket: read its answer
	   rather than die of SIGPIPE while writing. */
	signal(SIGPIPE, SIG_IGN);
	/* the passwords it sends live in jansson strings */
	ctl_json_wipe_on_free();
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			o.socket = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			o.config = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
			i++;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc) {
			c = find_cmd(argc - i - 1, argv + i + 1, &used);
			if (c != NULL) {
				printf("usage: popgatectl %s\n", c->usage);
				return 0;
			}
		}
		usage(stdout);
		return 0;
	}
	c = find_cmd(argc - i, argv + i, &used);
	if (c == NULL) {
		fprintf(stderr, "popgatectl: unknown command: %s\n", argv[i]);
		usage(stderr);
		return EXIT_USAGE;
	}
	/* --json may also follow the command */
	for (int j = i + used; j < argc; j++) {
		if (strcmp(argv[j], "--json") == 0) {
			o.json = true;
			memmove(&argv[j], &argv[j + 1],
			    (size_t)(argc - j) * sizeof(*argv));
			argc--;
			j--;
		}
	}
	return run(&o, c, argc - i - used, argv + i + used);
}
