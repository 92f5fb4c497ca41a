/* popgatectl-print — see popgatectl-print.h. */
#include "gateway/popgatectl-print.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strbuf.h"
#include "xmalloc.h"

const char *
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

void
cprint_ok(json_t *reply)
{
	const char *account = json_string_value(json_object_get(reply,
	    "account"));

	if (account != NULL)
		printf("ok: account %s\n", account);
	else
		printf("ok\n");
}

void
cprint_users(json_t *reply)
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

void
cprint_accounts(json_t *reply)
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

void
cprint_status(json_t *reply)
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
		if (strcmp(str_or(st, "state", ""), "needs-signin") == 0 ||
		    strcmp(str_or(st, "state", ""), "not-signed-in") == 0)
			printf("%38s sign in: popgatectl account oauth %s %s\n",
			    "", str_or(a, "user", "?"),
			    str_or(a, "account", "?"));
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

void
cprint_quota(json_t *reply)
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

void
cprint_admin(json_t *reply)
{
	printf("%s: %s\n", str_or(reply, "user", "?"),
	    json_is_true(json_object_get(reply, "admin")) ?
	    "an admin of the web page (sees every account)" :
	    "not an admin of the web page");
}

void
cprint_sessions(json_t *reply)
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

void
cprint_stats(json_t *reply)
{
	print_flat("", json_object_get(reply, "stats"));
}

void
cprint_poll(json_t *reply)
{
	long long queued = json_integer_value(json_object_get(reply,
	    "polls_queued"));

	printf("polls started: %lld\n", (long long)json_integer_value(
	    json_object_get(reply, "polls_started")));
	if (queued > 0)
		printf("polls queued: %lld (being polled now; polled again "
		    "right after)\n", queued);
}

static const char *
action_words(const char *action)
{
	return strcmp(action, "would-create") == 0 ? "would be created" :
	    action;
}

void
cprint_reindex(json_t *reply)
{
	printf("reindex started for %lld user(s)%s; progress: popgatectl "
	    "stats (index_reindex*)\n", (long long)json_integer_value(
	    json_object_get(reply, "users")),
	    json_is_true(json_object_get(reply, "rebuild")) ?
	    ", index rebuilt from scratch" : "");
}

void
cprint_import(json_t *reply)
{
	json_t *lines = json_object_get(reply, "lines"), *l;
	json_t *sum = json_object_get(reply, "import");
	long long exists = 0;
	size_t i;

	json_array_foreach(lines, i, l) {
		json_t *err = json_object_get(l, "error");
		const char *field = str_or(err, "field", NULL);
		const char *msg = str_or(err, "message", "?");
		const char *aa = str_or(l, "account_action", NULL);
		const char *ua = str_or(l, "user_action", "?");

		printf("line %lld: %s: ", (long long)json_integer_value(
		    json_object_get(l, "line")), str_or(l, "user", "?"));
		if (err != NULL) {
			/* name the column at fault, as the CSV calls it,
			   unless the message starts with it already */
			bool named = field != NULL && msg[0] == '"' &&
			    strncmp(msg + 1, field, strlen(field)) == 0;

			printf("error: %s%s%s (%s)\n", field != NULL &&
			    !named ? field : "", field != NULL && !named ?
			    ": " : "", msg, str_or(err, "code", "?"));
			continue;
		}
		printf("user %s", action_words(ua));
		if (aa != NULL) {
			const char *name = str_or(l, "account", NULL);

			printf(", account%s%s %s", name != NULL ? " " : "",
			    name != NULL ? name : "", action_words(aa));
		}
		if (json_is_string(json_object_get(l, "note")))
			printf(" (%s)", str_or(l, "note", ""));
		printf("\n");
		if (strcmp(ua, "exists") == 0 &&
		    (aa == NULL || strcmp(aa, "exists") == 0))
			exists++;
	}
	printf("%s: %lld ok, %lld failed",
	    json_is_true(json_object_get(sum, "dry_run")) ? "dry run" :
	    "import", (long long)json_integer_value(json_object_get(sum, "ok")),
	    (long long)json_integer_value(json_object_get(sum, "failed")));
	if (exists > 0)
		printf(" (%lld of the ok lines were there already)", exists);
	printf("\n");
}

static void
fmt_bytes(long long n, char *buf, size_t size)
{
	if (n >= 10ll * 1024 * 1024)
		snprintf(buf, size, "%.1fM", (double)n / (1024.0 * 1024));
	else if (n >= 10ll * 1024)
		snprintf(buf, size, "%.1fK", (double)n / 1024.0);
	else
		snprintf(buf, size, "%lld", n);
}

void
cprint_history(json_t *reply)
{
	json_t *h = json_object_get(reply, "history"), *p;
	char t[32], b[32];
	size_t i;

	fmt_time(json_object_get(h, "last_success"), t, sizeof(t));
	fmt_bytes(json_integer_value(json_object_get(h, "bytes")), b,
	    sizeof(b));
	printf("%s / %s: %lld polls (%lld failed), %lld messages (%s bytes) "
	    "fetched, %lld deleted upstream; last success %s\n",
	    str_or(reply, "user", "?"), str_or(reply, "account", "?"),
	    (long long)json_integer_value(json_object_get(h, "polls")),
	    (long long)json_integer_value(json_object_get(h, "failures")),
	    (long long)json_integer_value(json_object_get(h, "fetched")), b,
	    (long long)json_integer_value(json_object_get(h, "deleted")), t);
	printf("%-19s %7s %-11s %7s %8s %7s %7s  %s\n", "STARTED", "SECONDS",
	    "OUTCOME", "FETCHED", "BYTES", "DELETED", "SKIPPED", "ERROR");
	json_array_foreach(json_object_get(h, "recent"), i, p) {
		fmt_time(json_object_get(p, "started"), t, sizeof(t));
		fmt_bytes(json_integer_value(json_object_get(p, "bytes")), b,
		    sizeof(b));
		printf("%-19s %7lld %-11s %7lld %8s %7lld %7lld  %s\n", t,
		    (long long)json_integer_value(json_object_get(p,
		    "seconds")), str_or(p, "outcome", "?"),
		    (long long)json_integer_value(json_object_get(p,
		    "fetched")), b,
		    (long long)json_integer_value(json_object_get(p,
		    "deleted")),
		    (long long)json_integer_value(json_object_get(p,
		    "skipped")), str_or(p, "error", "-"));
	}
}

void
cprint_backup(json_t *reply)
{
	json_t *b = json_object_get(reply, "backup");
	char n[32];

	fmt_bytes(json_integer_value(json_object_get(b, "bytes")), n,
	    sizeof(n));
	printf("backup written: %s (%s bytes, compacted, mode %s) in %.1f s\n"
	    "check it with: popgatectl check %s\n", str_or(b, "path", "?"), n,
	    str_or(b, "mode", "?"), json_real_value(json_object_get(b,
	    "seconds")), str_or(b, "path", "?"));
}

void
cprint_move(json_t *reply)
{
	json_t *m = json_object_get(reply, "export"), *n;
	const char *what = "exported";
	char b[32];

	if (m == NULL) {
		m = json_object_get(reply, "import");
		what = "imported";
	}
	n = json_object_get(m, "counts");
	fmt_bytes(json_integer_value(json_object_get(n, "bytes")), b,
	    sizeof(b));
	printf("%s %s (%s): %lld mailboxes, %lld messages (%s bytes), "
	    "%lld accounts, %lld ledger entries, in %.1f s\n", what,
	    str_or(m, "user", "?"), str_or(m, "path", "?"),
	    (long long)json_integer_value(json_object_get(n, "mailboxes")),
	    (long long)json_integer_value(json_object_get(n, "messages")), b,
	    (long long)json_integer_value(json_object_get(n, "accounts")),
	    (long long)json_integer_value(json_object_get(n, "ledger")),
	    json_real_value(json_object_get(m, "seconds")));
}

void
cprint_trace(json_t *reply)
{
	json_t *t = json_object_get(reply, "trace"), *v;
	size_t i;

	printf("traced users:");
	if (json_array_size(json_object_get(t, "users")) == 0)
		printf(" none");
	json_array_foreach(json_object_get(t, "users"), i, v)
		printf(" %s", json_string_value(v));
	printf("\ntraced sessions:");
	if (json_array_size(json_object_get(t, "sessions")) == 0)
		printf(" none");
	json_array_foreach(json_object_get(t, "sessions"), i, v)
		printf(" %lld (%s)", (long long)json_integer_value(
		    json_object_get(v, "id")), str_or(v, "user", "-"));
	printf("\n");
	if (json_integer_value(json_object_get(reply, "sessions_switched")) >
	    0)
		printf("sessions switched now: %lld\n", (long long)
		    json_integer_value(json_object_get(reply,
		    "sessions_switched")));
}

void
cprint_oauth_start(json_t *reply)
{
	const char *complete = str_or(reply, "verification_uri_complete",
	    NULL);

	printf("To sign this account in, open\n\n    %s\n\nand enter the "
	    "code\n\n    %s\n\n", str_or(reply, "verification_uri", "?"),
	    str_or(reply, "user_code", "?"));
	if (complete != NULL)
		printf("(or open %s)\n", complete);
	printf("The code expires in %lld minutes. Waiting for the sign-in...\n",
	    (long long)json_integer_value(json_object_get(reply,
	    "expires_in")) / 60);
	fflush(stdout);
}
