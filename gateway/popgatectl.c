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
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gateway/about.h"
#include "gateway/nginx-config.h"
#include "gateway/config.h"
#include "gateway/control-proto.h"
#include "gateway/popgatectl-print.h"
#include "store/store.h"
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
	/* O_DURATION and O_SIZE take the configuration file's syntax
	   ("5m", "10M") and send the number of seconds or bytes; O_BOOL
	   takes yes|no */
	enum { O_STR, O_INT, O_DURATION, O_SIZE, O_FLAG, O_BOOL } kind;
};

struct cmd_def {
	const char *words;		/* "user add" */
	const char *command;		/* protocol command; NULL: local */
	const char *const *positional;	/* request fields, in order */
	size_t required;		/* positional ones that must be given */
	const struct opt_def *options;
	bool password_stdin;		/* accepts --password-stdin */
	const char *usage;
	void (*print)(json_t *reply);
	int on;				/* 1: sends "on":true, 2: false */
};

/* ---- commands ------------------------------------------------------- */

static const char *const pos_user[] = { "user", NULL };
static const char *const pos_user_account[] = { "user", "account", NULL };
static const char *const pos_none[] = { NULL };
static const char *const pos_user_quota[] = { "user", "quota", NULL };
static const char *const pos_user_admin[] = { "user", "admin", NULL };

/* The settings of an upstream account, as both "account add" and
   "account set" take them. */
#define OPTS_ACCOUNT_SETTINGS \
	{ "host", "host", O_STR }, \
	{ "port", "port", O_INT }, \
	{ "tls", "tls", O_STR }, \
	{ "login", "login", O_STR }, \
	{ "mode", "mode", O_STR }, \
	{ "folder", "folder", O_STR }, \
	{ "interval", "interval", O_DURATION }, \
	{ "size-limit", "size_limit", O_SIZE }, \
	{ "auth", "auth", O_STR }, \
	{ "ca-file", "ca_file", O_STR }, \
	{ "ca-only", "ca_only", O_BOOL }, \
	{ "fingerprint", "fingerprint", O_STR }, \
	{ "allow-cleartext", "allow_cleartext", O_BOOL }, \
	{ "oauth-provider", "oauth_provider", O_STR }

static const struct opt_def opts_account[] = {
	OPTS_ACCOUNT_SETTINGS,
	{ "name", "account", O_STR },
	{ "force", "force", O_FLAG },
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
static const struct opt_def opts_history[] = {
	{ "limit", "limit", O_INT },
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_trace[] = {
	{ "user", "user", O_STR },
	{ "session", "session", O_INT },
	{ NULL, NULL, O_FLAG },
};
static const char *const pos_path[] = { "path", NULL };
static const char *const pos_user_path[] = { "user", "path", NULL };
static const struct opt_def opts_export[] = {
	{ "passphrase-file", "passphrase_file", O_STR },
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_user_import[] = {
	{ "passphrase-file", "passphrase_file", O_STR },
	{ "force", "force", O_FLAG },
	{ NULL, NULL, O_FLAG },
};
static const struct opt_def opts_reindex[] = {
	{ "rebuild", "rebuild", O_FLAG },
	{ NULL, NULL, O_FLAG },
};

static const struct cmd_def cmds[] = {
	{ "user add", "user.add", pos_user, 1, opts_none, true,
	  "user add NAME --password-stdin\n"
	  "  Create an IMAP user; the password is read from standard input.",
	  cprint_ok, 0 },
	{ "user delete", "user.delete", pos_user, 1, opts_none, false,
	  "user delete NAME\n"
	  "  Delete a user with all their mail and upstream accounts.",
	  cprint_ok, 0 },
	{ "user passwd", "user.passwd", pos_user, 1, opts_none, true,
	  "user passwd NAME --password-stdin\n"
	  "  Set a user's IMAP password (read from standard input).",
	  cprint_ok, 0 },
	{ "user list", "user.list", pos_none, 0, opts_none, false,
	  "user list\n  List the users.", cprint_users, 0 },
	{ "user quota", "user.quota", pos_user_quota, 1, opts_none, false,
	  "user quota NAME [SIZE|none|default]\n"
	  "  Show a user's storage quota and usage, or set it: a size such\n"
	  "  as 500M, none (no quota for this user) or default (the\n"
	  "  [store] quota of the configuration).", cprint_quota, 0 },
	{ "user admin", "user.admin", pos_user_admin, 1, opts_none, false,
	  "user admin NAME [yes|no]\n"
	  "  Show whether a user is an admin of the web page ([web]), or\n"
	  "  make them one (yes) or not (no). Admins see every user's\n"
	  "  accounts there and can ask for a poll of any.", cprint_admin, 0 },
	{ "user export", "user.export", pos_user_path, 2, opts_export, false,
	  "user export USER FILE --passphrase-file PATH\n"
	  "  Move USER away from this node: their logins are refused here\n"
	  "  (\"moved\"), their accounts are no longer polled here, and\n"
	  "  they are written to FILE (which must not exist; mode 0600) for\n"
	  "  `user import` on the new node. Upstream passwords in FILE are\n"
	  "  sealed with the passphrase (the first line of PATH, an\n"
	  "  absolute path the daemon reads), which also authenticates\n"
	  "  the file. `user unmove` undoes the move here.",
	  cprint_move, 0 },
	{ "user import", "user.import", pos_path, 1, opts_user_import, false,
	  "user import FILE --passphrase-file PATH [--force]\n"
	  "  Create the user of a `user export` FILE on this node, with\n"
	  "  their mailboxes, UIDs, flags, MODSEQs, expunge history,\n"
	  "  upstream accounts and ledger, in one transaction, then poll\n"
	  "  their accounts here. A file that was cut, changed or made\n"
	  "  with another passphrase imports nothing. --force replaces a\n"
	  "  user of that name.", cprint_move, 0 },
	{ "user unmove", "user.unmove", pos_user, 1, opts_none, false,
	  "user unmove USER\n"
	  "  Serve and poll an exported user on this node again (when the\n"
	  "  export will not be imported elsewhere).", cprint_ok, 0 },
	{ "account add", "account.add", pos_user, 1, opts_account, true,
	  "account add USER --host H --port P --tls pop3s|stls|none\n"
	  "    --login NAME --password-stdin [--mode keep|delete|"
	  "delete-after:DAYS|mirror]\n"
	  "    [--folder NAME] [--interval DURATION] [--size-limit SIZE]\n"
	  "    [--auth auto|user|apop|plain|login|cram-md5|scram-sha-1|\n"
	  "     scram-sha-256|xoauth2|oauthbearer] [--name ACCOUNT]\n"
	  "    [--ca-file PATH] [--ca-only yes|no] [--fingerprint SHA256]\n"
	  "    [--allow-cleartext yes|no] [--oauth-provider NAME] [--force]\n"
	  "  Add an upstream POP3 account to USER. The upstream password is\n"
	  "  read from standard input and stored encrypted. With\n"
	  "  --oauth-provider (host, port and tls default to the provider's)\n"
	  "  no password is asked: sign in with `account oauth`. DURATION\n"
	  "  and SIZE are written as in popgate.conf: 300, 90s, 5m, 2h, 1d;\n"
	  "  65536, 512K, 10M, 1G. An account on the same upstream mailbox\n"
	  "  as an existing one (same port and login, a host name that is\n"
	  "  the same or resolves to a common address) is refused unless\n"
	  "  --force is given.",
	  cprint_ok, 0 },
	{ "account delete", "account.delete", pos_user_account, 2, opts_none,
	  false, "account delete USER ACCOUNT\n"
	  "  Remove an upstream account; mail already fetched stays.",
	  cprint_ok, 0 },
	{ "account set", "account.set", pos_user_account, 2, opts_account_set,
	  true, "account set USER ACCOUNT [--host H] [--port P] [--tls T]\n"
	  "    [--login NAME] [--password-stdin] [--mode M] [--folder F]\n"
	  "    [--interval DURATION] [--size-limit SIZE] [--auth A]\n"
	  "    [--ca-file PATH] [--ca-only yes|no] [--fingerprint SHA256]\n"
	  "    [--allow-cleartext yes|no] [--oauth-provider NAME]\n"
	  "  Change fields of an upstream account (\"\" unsets --ca-file and\n"
	  "  --fingerprint).", cprint_ok, 0 },
	{ "account enable", "account.enable", pos_user_account, 2, opts_none,
	  false, "account enable USER ACCOUNT\n  Resume polling.",
	  cprint_ok, 0 },
	{ "account disable", "account.disable", pos_user_account, 2,
	  opts_none, false, "account disable USER ACCOUNT\n  Stop polling.",
	  cprint_ok, 0 },
	{ "account oauth", "oauth.start", pos_user_account, 2, opts_none,
	  false, "account oauth USER ACCOUNT\n"
	  "  Sign an OAuth account in (device authorization grant): prints\n"
	  "  a URL and a code to enter there from any browser, then waits\n"
	  "  until the sign-in is done, refused or expired.",
	  cprint_oauth_start, 0 },
	{ "account list", "account.list", pos_user, 0, opts_none, false,
	  "account list [USER]\n  List upstream accounts (never passwords).",
	  cprint_accounts, 0 },
	{ "import", "import", pos_none, 0, opts_import, false,
	  "import FILE|- [--dry-run]\n"
	  "  Create users and accounts from CSV with the columns\n"
	  "  user,user_password,host,port,tls,login,password,mode,folder,"
	  "interval,account,\n"
	  "  auth,ca_file,ca_only,fingerprint,allow_cleartext,oauth_provider\n"
	  "  and print a report per line. --dry-run checks without changes.",
	  cprint_import, 0 },
	{ "poll", "poll", pos_user_account, 0, opts_none, false,
	  "poll [USER [ACCOUNT]]\n"
	  "  Poll every account, a user's accounts, or one account now.",
	  cprint_poll, 0 },
	{ "status", "status", pos_user, 0, opts_none, false,
	  "status [USER]\n"
	  "  Per account: state, last success, next poll, last error, "
	  "import progress.", cprint_status, 0 },
	{ "sessions", "sessions", pos_user, 0, opts_none, false,
	  "sessions [USER]\n  IMAP sessions: user, address, client ID.",
	  cprint_sessions, 0 },
	{ "stats", "stats", pos_none, 0, opts_none, false,
	  "stats\n  Counters since the daemon started.", cprint_stats, 0 },
	{ "reindex", "reindex", pos_user, 0, opts_reindex, false,
	  "reindex [USER] [--rebuild]\n"
	  "  Put a user's (or every user's) mail that is not in the search\n"
	  "  index yet into it, in small batches while the daemon runs.\n"
	  "  --rebuild drops the index first and indexes everything again.\n"
	  "  SEARCH stays exact meanwhile. Progress: popgatectl stats.",
	  cprint_reindex, 0 },
	{ "reload", "reload", pos_none, 0, opts_none, false,
	  "reload\n  Re-read the configuration and certificates "
	  "(as SIGHUP).", cprint_ok, 0 },
	{ "shutdown", "shutdown", pos_none, 0, opts_none, false,
	  "shutdown\n  Stop the daemon gracefully.", cprint_ok, 0 },
	{ "account history", "account.history", pos_user_account, 2,
	  opts_history, false,
	  "account history USER ACCOUNT [--limit N]\n"
	  "  The account's last polls (outcome, messages, bytes, error) and\n"
	  "  its totals since it was added; kept across restarts.",
	  cprint_history, 0 },
	{ "backup", "backup", pos_path, 1, opts_none, false,
	  "backup FILE\n"
	  "  Write a consistent, compacted copy of the store to FILE (which\n"
	  "  must not exist; mode 0600) while popgated runs. The daemon\n"
	  "  writes it as its own user.",
	  cprint_backup, 0 },
	{ "check", NULL, pos_path, 0, opts_none, false,
	  "check [DATA_DIR|BACKUP_FILE]\n"
	  "  Check a store offline for consistency: the configuration's\n"
	  "  data_dir, another data directory, or a backup file. Exit 0\n"
	  "  when consistent, 1 with one line per problem.",
	  NULL, 0 },
	{ "nginx-config", NULL, pos_none, 0, opts_none, false,
	  "nginx-config [--listen ADDR] [--relay ADDR]\n"
	  "  Print nginx's configuration for the cluster of this node's\n"
	  "  [cluster] section: a mail { } block that routes IMAP logins\n"
	  "  through the nodes' auth_http (with the PROXY protocol to the\n"
	  "  nodes) and the http { } relay it asks. --listen: nginx's IMAP\n"
	  "  address (143); --relay: the relay's (127.0.0.1:9180).",
	  NULL, 0 },
	{ "trace on", "trace", pos_none, 0, opts_trace, false,
	  "trace on --user USER | --session ID\n"
	  "  Log every IMAP line of a user's sessions (now and at later\n"
	  "  logins) or of one session, passwords and message contents\n"
	  "  masked, whatever the log level. Ends with trace off or a\n"
	  "  restart.",
	  cprint_trace, 1 },
	{ "trace off", "trace", pos_none, 0, opts_trace, false,
	  "trace off --user USER | --session ID\n  Stop a trace.",
	  cprint_trace, 2 },
	{ "trace list", "trace", pos_none, 0, opts_none, false,
	  "trace list\n  The users and sessions being traced.",
	  cprint_trace, 0 },
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: popgatectl [-s SOCKET] [-c CONFIG] [--json] "
	    "COMMAND [ARGS...]\n       popgatectl --version\n\n"
	    "commands:\n");
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

/* popgatectl nginx-config: from the configuration file, no daemon. */
static int
run_nginx_config(const struct opts *o, const struct cmd_def *c, int argc,
    char **argv)
{
	const char *listen = "143", *relay = "127.0.0.1:9180", *error = NULL;
	struct config *conf = NULL;
	char err[CONFIG_ERROR_MAX];
	int ret;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i],
		    "-h") == 0) {
			printf("usage: popgatectl %s\n", c->usage);
			return 0;
		}
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen = argv[++i];
		else if (strcmp(argv[i], "--relay") == 0 && i + 1 < argc)
			relay = argv[++i];
		else
			return cmd_usage_error(c, "unexpected argument %s",
			    argv[i]);
	}
	if (config_load(o->config != NULL ? o->config : DEFAULT_CONFIG, &conf,
	    err, sizeof(err)) < 0) {
		fprintf(stderr, "popgatectl: %s\n", err);
		return EXIT_USAGE;
	}
	ret = nginx_config_write(stdout, conf, listen, relay, &error);
	if (ret < 0)
		fprintf(stderr, "popgatectl: %s\n", error);
	config_free(&conf);
	return ret < 0 ? EXIT_USAGE : 0;
}

/* popgatectl check: the offline checker, on this machine. */
static int
run_check(const struct opts *o, const struct cmd_def *c, int argc,
    char **argv)
{
	char dirbuf[CTL_PATH_MAX + 1];
	const char *path = NULL, *error = NULL;
	unsigned int problems = 0;
	struct stat st;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i],
		    "-h") == 0) {
			printf("usage: popgatectl %s\n", c->usage);
			return 0;
		}
		if (path != NULL || argv[i][0] == '-')
			return cmd_usage_error(c, "unexpected argument %s",
			    argv[i]);
		path = argv[i];
	}
	if (path == NULL) {
		struct config *conf = NULL;
		char err[CONFIG_ERROR_MAX];

		if (config_load(o->config != NULL ? o->config :
		    DEFAULT_CONFIG, &conf, err, sizeof(err)) < 0) {
			fprintf(stderr, "popgatectl: %s\n(give the data "
			    "directory or a backup file)\n", err);
			return EXIT_USAGE;
		}
		snprintf(dirbuf, sizeof(dirbuf), "%s", conf->data_dir);
		config_free(&conf);
		path = dirbuf;
	}
	if (stat(path, &st) < 0) {
		fprintf(stderr, "popgatectl: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	/* As root, check as the owner of the store: a lock file the check
	   creates must stay usable by the daemon's user. */
	if (geteuid() == 0 && st.st_uid != 0 &&
	    (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 ||
	    setuid(st.st_uid) < 0)) {
		fprintf(stderr, "popgatectl: cannot switch to the owner of "
		    "%s: %s\n", path, strerror(errno));
		return EXIT_REFUSED;
	}
	if (store_check(path, stdout, &problems, &error) < 0) {
		if (problems > 0)
			printf("%s: %u problem(s): NOT consistent\n", path,
			    problems);
		else
			fprintf(stderr, "popgatectl: %s\n", error != NULL ?
			    error : "cannot check");
		return EXIT_REFUSED;
	}
	printf("%s: consistent\n", path);
	return 0;
}

/*
 * After oauth.start: oauth.wait until the sign-in ends (the daemon
 * answers "pending" every minute; each answer is printed with --json).
 */
static int
oauth_wait(const struct opts *o, const char *path, json_t *start)
{
	json_t *req = json_pack("{s:s, s:O, s:O}", "command", "oauth.wait",
	    "user", json_object_get(start, "user"), "account",
	    json_object_get(start, "account"));
	char *line = ctl_json_line(req);
	int ret = EXIT_BADREPLY;

	json_decref(req);
	for (;;) {
		json_error_t jerr;
		char *reply_line = transact(path, line, &ret);
		json_t *reply;
		const char *state;

		if (reply_line == NULL)
			break;
		reply = json_loads(reply_line, 0, &jerr);
		if (o->json)
			printf("%s", reply_line);
		free(reply_line);
		if (!json_is_object(reply)) {
			json_decref(reply);
			ret = EXIT_BADREPLY;
			break;
		}
		if (!json_is_true(json_object_get(reply, "ok"))) {
			json_t *e = json_object_get(reply, "error");

			if (!o->json)
				fprintf(stderr, "popgatectl: sign-in failed: "
				    "%s (%s)\n", str_or(e, "message", "?"),
				    str_or(e, "code", "?"));
			json_decref(reply);
			ret = EXIT_REFUSED;
			break;
		}
		state = str_or(reply, "state", "?");
		if (strcmp(state, "pending") != 0) {
			if (!o->json)
				printf("signed in: polling starts now\n");
			json_decref(reply);
			ret = 0;
			break;
		}
		json_decref(reply);
	}
	free(line);
	return ret;
}

/* An account that signs in with OAuth has no password to read. */
static bool
oauth_request(json_t *req)
{
	const char *auth = json_string_value(json_object_get(req, "auth"));

	return json_object_get(req, "oauth_provider") != NULL ||
	    (auth != NULL && (strcmp(auth, "xoauth2") == 0 ||
	    strcmp(auth, "oauthbearer") == 0));
}

static int
run(const struct opts *o, const struct cmd_def *c, int argc, char **argv)
{
	json_t *req;
	const char *const *pos = c->positional;
	size_t npos = 0;
	bool pw_stdin = false;
	char *line = NULL, *reply_line = NULL, *password = NULL;
	const char *path;
	json_t *reply = NULL;
	json_error_t jerr;
	int ret = EXIT_USAGE;

	if (c->command == NULL)
		return strcmp(c->words, "nginx-config") == 0 ?
		    run_nginx_config(o, c, argc, argv) :
		    run_check(o, c, argc, argv);
	req = json_pack("{s:s}", "command", c->command);
	if (c->on != 0)
		json_object_set_new(req, "on", json_boolean(c->on == 1));
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
			if (d->kind == O_DURATION || d->kind == O_SIZE) {
				const char *why = NULL;
				uint64_t v;
				uint32_t secs;
				int rc;

				if (d->kind == O_DURATION) {
					rc = config_parse_duration(a, &secs,
					    &why);
					v = secs;
				} else {
					rc = config_parse_size(a, &v, &why);
				}
				if (rc < 0 || v > (uint64_t)INT64_MAX) {
					char m[256];

					snprintf(m, sizeof(m), "%s %s: %s",
					    argv[i - 1], a, why != NULL ?
					    why : "too large");
					ret = cmd_usage_error(c, "%s", m);
					goto out;
				}
				json_object_set_new(req, d->field,
				    json_integer((json_int_t)v));
			} else if (d->kind == O_BOOL) {
				bool b;
				const char *why;

				if (config_parse_bool(a, &b, &why) < 0) {
					ret = cmd_usage_error(c,
					    "%s: expected yes or no", argv[i - 1]);
					goto out;
				}
				json_object_set_new(req, d->field,
				    json_boolean(b));
			} else if (d->kind == O_INT) {
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
		if (strcmp(pos[npos], "path") == 0 && a[0] != '/') {
			/* the daemon has another working directory */
			char cwd[CTL_PATH_MAX], abs[2 * CTL_PATH_MAX + 2];

			if (getcwd(cwd, sizeof(cwd)) == NULL) {
				ret = cmd_usage_error(c, "%s", "give an "
				    "absolute path");
				goto out;
			}
			snprintf(abs, sizeof(abs), "%s/%s", cwd, a);
			if (set_string(req, pos[npos], abs) < 0) {
				ret = cmd_usage_error(c, "%s", "the path is not "
				    "UTF-8 text");
				goto out;
			}
			npos++;
			continue;
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
	    strcmp(c->command, "account.set") != 0 &&
	    !(strcmp(c->command, "account.add") == 0 && oauth_request(req))) {
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
	if (strcmp(c->command, "oauth.start") == 0)
		ret = oauth_wait(o, path, req);
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
		} else if (strcmp(argv[i], "--version") == 0 ||
		    strcmp(argv[i], "-V") == 0) {
			about_print_version(stdout, "popgatectl");
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
