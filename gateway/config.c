/*
 * config — see config.h. The key table below is the whole format: a
 * section, a key, how its value is parsed and where it goes. The man page
 * popgate.conf(5) follows this table.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imap-frontend/imap-proxy-parse.h"
#include "log.h"
#include "pop3-upstream/upstream.h"
#include "strnum.h"
#include "xmalloc.h"

enum key_type {
	KEY_STRING,		/* non-empty string */
	KEY_STRING_OPT,		/* string; empty means unset (NULL) */
	KEY_BOOL,
	KEY_DURATION,
	KEY_SIZE,
	KEY_U32,
	KEY_LISTEN,		/* list of addresses, into listen[]+count */
	KEY_DOMAINS,
	KEY_NETS,		/* addresses or address/prefix, as strings */
	KEY_TLS,
	KEY_MODE,		/* upstream mode + days */
	KEY_FILE_MODE,		/* octal permission bits */
	KEY_LOG_TARGET,
	KEY_LOG_LEVEL,
	KEY_PORT,
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	size_t offset2;		/* count for lists, days for modes */
	uint32_t min, max;	/* KEY_U32, KEY_DURATION (max 0: any) */
};

#define OFF(f) offsetof(struct config, f)

static const struct key_def keys[] = {
	{ "imap", "listen", KEY_LISTEN, OFF(listen), OFF(listen_count), 0, 0 },
	{ "imap", "listen_tls", KEY_LISTEN, OFF(listen_tls),
	  OFF(listen_tls_count), 0, 0 },
	{ "imap", "cert", KEY_STRING, OFF(cert_file), 0, 0, 0 },
	{ "imap", "key", KEY_STRING, OFF(key_file), 0, 0, 0 },
	{ "imap", "loopback_secure", KEY_BOOL, OFF(loopback_secure), 0, 0, 0 },
	{ "imap", "allow_plaintext", KEY_BOOL, OFF(allow_plaintext), 0, 0, 0 },
	{ "imap", "rawlog_dir", KEY_STRING, OFF(rawlog_dir), 0, 0, 0 },
	{ "imap", "idle_keepalive", KEY_DURATION, OFF(idle_keepalive), 0,
	  1, 1800 },
	{ "imap", "proxy_listen", KEY_LISTEN, OFF(proxy_listen),
	  OFF(proxy_listen_count), 0, 0 },
	{ "imap", "proxy_trusted", KEY_NETS, OFF(proxy_trusted),
	  OFF(proxy_trusted_count), 0, 0 },

	{ "store", "data_dir", KEY_STRING, OFF(data_dir), 0, 0, 0 },
	{ "store", "map_size", KEY_SIZE, OFF(map_size), 0, 0, 0 },
	{ "store", "search_index", KEY_BOOL, OFF(search_index), 0, 0, 0 },
	{ "store", "fold_user_names", KEY_BOOL, OFF(fold_user_names), 0, 0,
	  0 },
	{ "store", "quota", KEY_SIZE, OFF(quota), 0, 0, 0 },
	{ "store", "map_max", KEY_SIZE, OFF(map_max), 0, 0, 0 },

	{ "control", "socket", KEY_STRING, OFF(control_socket), 0, 0, 0 },
	{ "control", "mode", KEY_FILE_MODE, OFF(control_mode), 0, 0, 0 },
	{ "control", "group", KEY_STRING_OPT, OFF(control_group), 0, 0, 0 },

	{ "log", "target", KEY_LOG_TARGET, OFF(log_target), 0, 0, 0 },
	{ "log", "level", KEY_LOG_LEVEL, OFF(log_level), 0, 0, 0 },
	{ "log", "syslog_socket", KEY_STRING_OPT, OFF(syslog_socket), 0, 0,
	  0 },

	{ "limits", "imap_connections", KEY_U32, OFF(imap_connections), 0,
	  1, 1000000 },
	{ "limits", "imap_connections_per_ip", KEY_U32,
	  OFF(imap_connections_per_ip), 0, 1, 1000000 },
	{ "limits", "imap_connections_per_user", KEY_U32,
	  OFF(imap_connections_per_user), 0, 1, 1000000 },
	{ "limits", "imap_preauth_per_ip", KEY_U32, OFF(imap_preauth_per_ip), 0,
	  1, 1000000 },
	{ "limits", "imap_preauth_timeout", KEY_DURATION,
	  OFF(imap_preauth_timeout), 0, 5, 3600 },
	{ "limits", "imap_memory_budget", KEY_SIZE, OFF(imap_memory_budget), 0,
	  1u << 20, 0xfff00000u },
	{ "limits", "imap_append_max", KEY_SIZE, OFF(imap_append_max), 0,
	  1024, 64u << 20 },
	{ "limits", "login_failures_per_connection", KEY_U32,
	  OFF(login_failures_per_connection), 0, 1, 100 },
	{ "limits", "control_clients", KEY_U32, OFF(control_clients), 0,
	  1, 1024 },
	{ "limits", "control_request_max", KEY_SIZE, OFF(control_request_max),
	  0, 1024, 64u << 20 },
	{ "limits", "upstream_connections_per_host", KEY_U32,
	  OFF(upstream_per_host), 0, 1, 1000 },
	{ "limits", "workers", KEY_U32, OFF(workers), 0, 0, 64 },

	{ "upstream-defaults", "interval", KEY_DURATION, OFF(upstream.interval),
	  0, 10, 0 },
	{ "upstream-defaults", "mode", KEY_MODE, OFF(upstream.mode),
	  OFF(upstream.delete_after_days), 0, 0 },
	{ "upstream-defaults", "size_limit", KEY_SIZE, OFF(upstream.size_limit),
	  0, 0, 0 },
	{ "upstream-defaults", "tls", KEY_TLS, OFF(upstream.tls), 0, 0, 0 },
	{ "upstream-defaults", "folder", KEY_STRING, OFF(upstream.folder),
	  0, 0, 0 },
	{ "upstream-defaults", "timeout", KEY_DURATION, OFF(upstream.timeout),
	  0, 1, 3600 },
	{ "upstream-defaults", "poll_deadline", KEY_DURATION,
	  OFF(upstream.poll_deadline), 0, 5, 7 * 86400 },
	{ "upstream-defaults", "retr_min_rate", KEY_SIZE,
	  OFF(upstream.retr_min_rate), 0, 1, 1u << 30 },
	{ "upstream-defaults", "ca_file", KEY_STRING_OPT,
	  OFF(upstream.ca_file), 0, 0, 0 },
	{ "upstream-defaults", "ca_only", KEY_BOOL, OFF(upstream.ca_only),
	  0, 0, 0 },

	{ "metrics", "enabled", KEY_BOOL, OFF(metrics_enabled), 0, 0, 0 },
	{ "metrics", "listen", KEY_LISTEN, OFF(metrics_listen),
	  OFF(metrics_listen_count), 0, 0 },

	{ "web", "enabled", KEY_BOOL, OFF(web_enabled), 0, 0, 0 },
	{ "web", "listen", KEY_LISTEN, OFF(web_listen), OFF(web_listen_count),
	  0, 0 },
	{ "web", "session_timeout", KEY_DURATION, OFF(web_session_timeout), 0,
	  60, 7 * 86400 },
	{ "web", "sessions", KEY_U32, OFF(web_sessions), 0, 1, 100000 },
	{ "web", "max_connections", KEY_U32, OFF(web_max_connections), 0, 1,
	  100000 },
	{ "web", "self_service", KEY_BOOL, OFF(web_self_service), 0, 0, 0 },

	{ "passthrough", "enabled", KEY_BOOL, OFF(pt_enabled), 0, 0, 0 },
	{ "passthrough", "host", KEY_STRING_OPT, OFF(pt_host), 0, 0, 0 },
	{ "passthrough", "port", KEY_PORT, OFF(pt_port), 0, 0, 0 },
	{ "passthrough", "tls", KEY_TLS, OFF(pt_tls), 0, 0, 0 },
	{ "passthrough", "allow_cleartext", KEY_BOOL, OFF(pt_allow_cleartext),
	  0, 0, 0 },
	{ "passthrough", "domains", KEY_DOMAINS, OFF(pt_domains),
	  OFF(pt_domain_count), 0, 0 },
	{ "passthrough", "attempts_per_minute", KEY_U32,
	  OFF(pt_attempts_per_minute), 0, 1, 10000 },
	{ "passthrough", "failure_cache", KEY_DURATION, OFF(pt_failure_cache),
	  0, 0, 86400 },

	{ "cluster", "auth_http_listen", KEY_LISTEN, OFF(cluster_auth_listen),
	  OFF(cluster_auth_listen_count), 0, 0 },
	{ "cluster", "node_address", KEY_LISTEN, OFF(cluster_node),
	  OFF(cluster_node_count), 0, 0 },
	{ "cluster", "peers", KEY_LISTEN, OFF(cluster_peers),
	  OFF(cluster_peer_count), 0, 0 },
	{ "cluster", "cache", KEY_DURATION, OFF(cluster_cache), 0, 0, 86400 },
	{ "cluster", "secret", KEY_STRING_OPT, OFF(cluster_secret), 0, 0, 0 },
	{ "cluster", "secret_file", KEY_STRING_OPT, OFF(cluster_secret_file),
	  0, 0, 0 },
	{ "cluster", "ticket_lifetime", KEY_DURATION,
	  OFF(cluster_ticket_lifetime), 0, 1, 300 },

	{ "daemon", "user", KEY_STRING_OPT, OFF(user), 0, 0, 0 },
	{ "daemon", "secret_key", KEY_STRING, OFF(secret_key_file), 0, 0, 0 },
};

struct parse_ctx {
	struct config *config;
	const char *name;
	const char *text;	/* remaining input (string reader) */
	int lineno;		/* line most recently handed to inih */
	int err_line;		/* 0: no error yet */
	char err[CONFIG_ERROR_MAX];
	bool seen[N_ELEMENTS(keys)];
};

static void
set_error(struct parse_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
set_error(struct parse_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->err_line != 0)
		return;
	ctx->err_line = ctx->lineno;
	va_start(ap, fmt);
	vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
	va_end(ap);
}

/* Splits a list on commas and white space into at most max items. */
static int
split_list(const char *value, char **items, size_t max, size_t *count_r,
    const char **error_r)
{
	const char *p = value;
	size_t n = 0;

	for (;;) {
		size_t len;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		len = strcspn(p, ", \t");
		if (n == max) {
			for (size_t i = 0; i < n; i++)
				free(items[i]);
			*error_r = "too many items in the list";
			return -1;
		}
		items[n++] = xstrndup(p, len);
		p += len;
	}
	*count_r = n;
	return 0;
}

static int
set_listen(struct config_listen *list, size_t *count_r, const char *value,
    const char **error_r)
{
	char *items[CONFIG_LISTEN_MAX];
	size_t n, i;
	int ret = -1;

	if (split_list(value, items, CONFIG_LISTEN_MAX, &n, error_r) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (config_parse_listen(items[i], &list[i], error_r) < 0)
			break;
	}
	if (i == n) {
		*count_r = n;
		ret = 0;
	} else {
		for (size_t j = 0; j < i; j++) {
			free(list[j].host);
			free(list[j].port);
			list[j].host = list[j].port = NULL;
		}
	}
	for (size_t j = 0; j < n; j++)
		free(items[j]);
	return ret;
}

static bool
domain_valid(const char *d)
{
	if (*d == '\0' || *d == '.' || strlen(d) > 253)
		return false;
	for (; *d != '\0'; d++) {
		if (!isalnum((unsigned char)*d) && *d != '-' && *d != '.')
			return false;
	}
	return true;
}

static int
apply_key(struct parse_ctx *ctx, const struct key_def *k, const char *value,
    const char **error_r)
{
	char *base = (char *)ctx->config;
	void *field = base + k->offset;

	switch (k->type) {
	case KEY_STRING:
		if (*value == '\0') {
			*error_r = "value must not be empty";
			return -1;
		}
		/* fall through */
	case KEY_STRING_OPT: {
		char **sp = field;

		free(*sp);
		*sp = *value == '\0' ? NULL : xstrdup(value);
		return 0;
	}
	case KEY_BOOL:
		return config_parse_bool(value, field, error_r);
	case KEY_DURATION: {
		uint32_t secs;

		if (config_parse_duration(value, &secs, error_r) < 0)
			return -1;
		if (secs < k->min || (k->max != 0 && secs > k->max)) {
			*error_r = "duration out of range";
			return -1;
		}
		*(uint32_t *)field = secs;
		return 0;
	}
	case KEY_SIZE: {
		uint64_t bytes;

		if (config_parse_size(value, &bytes, error_r) < 0)
			return -1;
		if (k->max != 0) {
			if (bytes < k->min || bytes > k->max) {
				*error_r = "size out of range";
				return -1;
			}
			*(uint32_t *)field = (uint32_t)bytes;
		} else {
			*(uint64_t *)field = bytes;
		}
		return 0;
	}
	case KEY_U32: {
		uint32_t n;

		if (str_to_u32z(value, &n) < 0) {
			*error_r = "expected a number";
			return -1;
		}
		if (n < k->min || n > k->max) {
			*error_r = "number out of range";
			return -1;
		}
		*(uint32_t *)field = n;
		return 0;
	}
	case KEY_LISTEN:
		return set_listen(field, (size_t *)(base + k->offset2), value,
		    error_r);
	case KEY_DOMAINS: {
		char **items = field;
		size_t *count = (size_t *)(base + k->offset2);

		if (split_list(value, items, CONFIG_DOMAINS_MAX, count,
		    error_r) < 0)
			return -1;
		for (size_t i = 0; i < *count; i++) {
			if (!domain_valid(items[i])) {
				*error_r = "not a mail domain";
				return -1;
			}
		}
		return 0;
	}
	case KEY_NETS: {
		char **items = field;
		size_t *count = (size_t *)(base + k->offset2);
		struct imap_proxy_net net;

		if (split_list(value, items, CONFIG_NETS_MAX, count,
		    error_r) < 0)
			return -1;
		for (size_t i = 0; i < *count; i++)
			if (imap_proxy_net_parse(items[i], &net, error_r) != 0)
				return -1;
		return 0;
	}
	case KEY_TLS:
		return config_parse_tls(value, field, error_r);
	case KEY_MODE:
		return config_parse_mode(value, field,
		    (uint32_t *)(base + k->offset2), error_r);
	case KEY_FILE_MODE: {
		unsigned long m;
		char *end;

		errno = 0;
		m = strtoul(value, &end, 8);
		if (*value < '0' || *value > '7' || *end != '\0' ||
		    errno != 0 || m > 0777) {
			*error_r = "expected octal permission bits such as 0600";
			return -1;
		}
		if ((m & 0007) != 0) {
			*error_r = "the control socket must not be usable by "
			    "others (no world bits)";
			return -1;
		}
		*(mode_t *)field = (mode_t)m;
		return 0;
	}
	case KEY_LOG_TARGET:
		if (strcmp(value, "stderr") == 0)
			*(int *)field = LOG_TARGET_STDERR;
		else if (strcmp(value, "syslog") == 0)
			*(int *)field = LOG_TARGET_SYSLOG;
		else {
			*error_r = "expected stderr or syslog";
			return -1;
		}
		return 0;
	case KEY_LOG_LEVEL: {
		int level = log_level_parse(value);

		if (level < 0) {
			*error_r = "expected error, warn, info or debug";
			return -1;
		}
		*(int *)field = level;
		return 0;
	}
	case KEY_PORT: {
		char **sp = field;

		if (config_parse_port(value, error_r) < 0)
			return -1;
		free(*sp);
		*sp = xstrdup(value);
		return 0;
	}
	}
	*error_r = "internal error: unknown key type";
	return -1;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *ctx = user;
	const char *error = NULL;
	bool section_known = false;
	char esc[LOG_PEER_TEXT_MAX + 1];

	if (strncmp(section, "oauth.", 6) == 0) {
		if (config_oauth_key(ctx->config, section + 6, name, value,
		    &error) < 0) {
			log_escape(esc, sizeof(esc), value, strlen(value));
			set_error(ctx, "[%s] %s = \"%s\": %s", section, name,
			    esc, error);
			return 0;
		}
		return 1;
	}
	for (size_t i = 0; i < N_ELEMENTS(keys); i++) {
		if (strcmp(keys[i].section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(keys[i].name, name) != 0)
			continue;
		if (ctx->seen[i]) {
			set_error(ctx, "[%s] %s is set twice", section, name);
			return 0;
		}
		ctx->seen[i] = true;
		if (apply_key(ctx, &keys[i], value, &error) < 0) {
			log_escape(esc, sizeof(esc), value, strlen(value));
			set_error(ctx, "[%s] %s = \"%s\": %s", section, name,
			    esc, error);
			return 0;
		}
		return 1;
	}
	log_escape(esc, sizeof(esc), section, strlen(section));
	if (*section == '\0')
		set_error(ctx, "setting outside of any [section]");
	else if (!section_known)
		set_error(ctx, "unknown section [%s]", esc);
	else {
		char esc2[LOG_PEER_TEXT_MAX + 1];

		log_escape(esc2, sizeof(esc2), name, strlen(name));
		set_error(ctx, "unknown key \"%s\" in [%s]", esc2, esc);
	}
	return 0;
}

/*
 * fgets-like reader over the whole text that counts lines (so the handler
 * knows the line it is called for) and turns an over-long line into an
 * error instead of letting inih split it.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct parse_ctx *ctx = stream;
	const char *nl;
	size_t len, take;

	if (*ctx->text == '\0')
		return NULL;
	nl = strchr(ctx->text, '\n');
	len = nl != NULL ? (size_t)(nl - ctx->text) + 1 : strlen(ctx->text);
	ctx->lineno++;
	if (len > CONFIG_LINE_MAX + 2 || len + 1 > (size_t)num) {
		set_error(ctx, "line too long (at most %d bytes)",
		    CONFIG_LINE_MAX);
		take = 0;
	} else {
		take = len;
	}
	memcpy(str, ctx->text, take);
	str[take] = '\0';
	ctx->text += len;
	return str;
}

static void
set_defaults(struct config *c)
{
	c->loopback_secure = true;
	c->allow_plaintext = false;
	c->idle_keepalive = 120;
	c->cluster_cache = 60;
	c->cluster_ticket_lifetime = 30;
	c->data_dir = xstrdup("/var/lib/popgate");
	c->map_size = 1ull << 30;
	c->search_index = true;
	c->fold_user_names = true;
	c->control_socket = xstrdup("/run/popgate/popgate.sock");
	c->control_mode = 0600;
	c->log_target = LOG_TARGET_STDERR;
	c->log_level = LOG_LEVEL_INFO;
	c->imap_connections = 1000;
	c->imap_connections_per_ip = 200;
	c->imap_connections_per_user = 50;
	c->imap_preauth_per_ip = 10;
	c->imap_preauth_timeout = 60;
	c->imap_memory_budget = 64u << 20;
	c->imap_append_max = 64u << 20;
	c->login_failures_per_connection = 3;
	c->control_clients = 16;
	c->control_request_max = 1u << 20;
	c->upstream_per_host = 2;
	c->upstream.interval = 300;
	c->upstream.mode = CONFIG_MODE_KEEP;
	c->upstream.size_limit = 64ull << 20;
	c->upstream.tls = CONFIG_TLS_POP3S;
	c->upstream.folder = xstrdup("INBOX");
	c->upstream.timeout = 60;
	c->upstream.poll_deadline = 3600;
	c->upstream.retr_min_rate = 16 * 1024;
	c->pt_tls = CONFIG_TLS_POP3S;
	c->pt_attempts_per_minute = 10;
	c->pt_failure_cache = 60;
	c->web_session_timeout = 30 * 60;
	c->web_sessions = 1000;
	c->web_max_connections = 256;
}

/* Whole-file checks after every key is read. */
bool
config_cluster_secret_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < CONFIG_CLUSTER_SECRET_MIN || n > CONFIG_CLUSTER_SECRET_MAX)
		return false;
	/* it goes into nginx's configuration between double quotes and
	   into an HTTP header: printable, nothing nginx would read */
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || strchr("\"'\\;{}$#", *s) != NULL)
			return false;
	return true;
}

/* [cluster] secret or secret_file (read here, so that popgated -t and
 * popgatectl nginx-config see it too), and where auth_http may listen
 * without one. */
static int
cluster_secret_finish(struct config *c, const char **error_r)
{
	if (c->cluster_secret != NULL && c->cluster_secret_file != NULL) {
		*error_r = "[cluster] secret and secret_file: one or the other";
		return -1;
	}
	if (c->cluster_secret_file != NULL) {
		char buf[2 * (CONFIG_CLUSTER_SECRET_MAX + 2) + 1];
		struct stat st;
		FILE *f;
		size_t n;
		char *nl;

		if (c->cluster_secret_file[0] != '/') {
			*error_r = "[cluster] secret_file must be an absolute "
			    "path";
			return -1;
		}
		f = fopen(c->cluster_secret_file, "re");
		if (f == NULL || fstat(fileno(f), &st) != 0 ||
		    !S_ISREG(st.st_mode)) {
			if (f != NULL)
				fclose(f);
			*error_r = "[cluster] secret_file cannot be read";
			return -1;
		}
		if ((st.st_mode & 07) != 0) {
			fclose(f);
			*error_r = "[cluster] secret_file is open to others "
			    "(chmod o-rwx)";
			return -1;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		/* the key, and perhaps a second line: a key also accepted
		   while the cluster moves from one to the other */
		nl = strchr(buf, '\n');
		if (nl != NULL) {
			*nl = '\0';
			if (nl > buf && nl[-1] == '\r')
				nl[-1] = '\0';
			nl[strcspn(nl + 1, "\r") + 1] = '\0';
			c->cluster_secret_also = xstrdup(nl + 1);
		}
		c->cluster_secret = xstrdup(buf);
		secure_zero(buf, sizeof(buf));
		if (c->cluster_secret_also != NULL &&
		    !config_cluster_secret_ok(c->cluster_secret_also)) {
			*error_r = "[cluster] secret_file: one or two lines, "
			    "each a key of 16 to 256 printable characters "
			    "without spaces, quotes, backslashes or ;{}$#";
			return -1;
		}
	}
	if (c->cluster_secret != NULL &&
	    !config_cluster_secret_ok(c->cluster_secret)) {
		*error_r = "[cluster] secret: 16 to 256 printable characters, "
		    "without spaces, quotes, backslashes or ;{}$#";
		return -1;
	}
	if (c->cluster_auth_listen_count > 0 && c->cluster_secret == NULL &&
	    !upstream_host_is_loopback(c->cluster_auth_listen[0].host)) {
		*error_r = "[cluster] auth_http_listen on an address that is "
		    "not loopback needs secret or secret_file (the key nginx "
		    "sends with auth_http_header)";
		return -1;
	}
	return 0;
}

static int
check_config(struct config *c, const char **error_r)
{
	if ((c->listen_count > 0 || c->listen_tls_count > 0 ||
	    c->proxy_listen_count > 0) &&
	    (c->cert_file == NULL || c->key_file == NULL)) {
		*error_r = "[imap] cert and key are required for the IMAP "
		    "listeners";
		return -1;
	}
	if (c->proxy_listen_count > 0 && c->proxy_trusted_count == 0) {
		*error_r = "[imap] proxy_listen needs proxy_trusted (the "
		    "proxies' addresses)";
		return -1;
	}
	if (c->cluster_node_count > 1 || c->cluster_auth_listen_count > 1) {
		*error_r = "[cluster] node_address and auth_http_listen take "
		    "one address";
		return -1;
	}
	if (c->cluster_auth_listen_count > 0 && c->cluster_node_count == 0) {
		*error_r = "[cluster] auth_http_listen needs node_address (where "
		    "the proxy reaches this node)";
		return -1;
	}
	if (cluster_secret_finish(c, error_r) != 0)
		return -1;
	if (c->data_dir[0] != '/') {
		*error_r = "[store] data_dir must be an absolute path";
		return -1;
	}
	if (c->control_socket[0] != '/') {
		*error_r = "[control] socket must be an absolute path";
		return -1;
	}
	if (strlen(c->control_socket) >= 108) {
		*error_r = "[control] socket path is longer than a UNIX "
		    "socket address allows (107 bytes)";
		return -1;
	}
	if (c->map_size < (1u << 20)) {
		*error_r = "[store] map_size must be at least 1M";
		return -1;
	}
	if (c->syslog_socket != NULL && (c->syslog_socket[0] != '/' ||
	    strlen(c->syslog_socket) >= 108)) {
		*error_r = "[log] syslog_socket must be an absolute path of at "
		    "most 107 bytes";
		return -1;
	}
	if (c->pt_enabled && (c->pt_host == NULL || c->pt_port == NULL)) {
		*error_r = "[passthrough] enabled needs host and port";
		return -1;
	}
	if (c->metrics_listen_count == 0) {
		/* loopback unless the admin says otherwise */
		c->metrics_listen[0].host = xstrdup("127.0.0.1");
		c->metrics_listen[0].port = xstrdup(CONFIG_METRICS_PORT);
		c->metrics_listen_count = 1;
	}
	if (c->web_listen_count == 0) {
		c->web_listen[0].host = xstrdup("127.0.0.1");
		c->web_listen[0].port = xstrdup(CONFIG_WEB_PORT);
		c->web_listen_count = 1;
	}
	if (c->web_enabled && (c->cert_file == NULL || c->key_file == NULL)) {
		*error_r = "[web] enabled needs [imap] cert and key (the page "
		    "is served over HTTPS only)";
		return -1;
	}
	if (c->pt_enabled && c->pt_tls == CONFIG_TLS_NONE &&
	    !c->pt_allow_cleartext && !upstream_host_is_loopback(c->pt_host)) {
		*error_r = "[passthrough] tls = none to a host that is not "
		    "loopback sends users' passwords in clear: set "
		    "allow_cleartext = yes if you mean it";
		return -1;
	}
	if (c->upstream.ca_only && c->upstream.ca_file == NULL) {
		*error_r = "[upstream-defaults] ca_only needs ca_file";
		return -1;
	}
	if (config_oauth_finish(c, error_r) < 0)
		return -1;
	if (c->secret_key_file == NULL)
		c->secret_key_file = xasprintf("%s/secret.key", c->data_dir);
	return 0;
}

int
config_load_string(const char *name, const char *text,
    struct config **config_r, char *errbuf, size_t errsize)
{
	struct parse_ctx ctx;
	struct config *c = xcalloc(1, sizeof(*c));
	const char *error = NULL;
	int ret;

	memset(&ctx, 0, sizeof(ctx));
	ctx.config = c;
	ctx.name = name;
	ctx.text = text;
	c->path = xstrdup(name);
	set_defaults(c);

	/* Indented lines are ordinary lines, and the first error stops. */
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	/* Debian's libinih takes its line buffer size at run time: a heap
	   buffer of CONFIG_LINE_MAX plus CR, LF and NUL (the reader below
	   refuses longer lines before inih sees them). */
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = CONFIG_LINE_MAX + 3;
	ini_initial_alloc = CONFIG_LINE_MAX + 3;
	ret = ini_parse_stream(reader, &ctx, handler, &ctx);
	if (ctx.err_line != 0 && (ret <= 0 || ret >= ctx.err_line)) {
		snprintf(errbuf, errsize, "%s:%d: %s", name, ctx.err_line,
		    ctx.err);
		goto fail;
	}
	if (ret > 0) {
		snprintf(errbuf, errsize, "%s:%d: syntax error (expected "
		    "[section], name = value, or a # comment)", name, ret);
		goto fail;
	}
	if (ret < 0) {
		snprintf(errbuf, errsize, "%s: cannot parse (error %d)",
		    name, ret);
		goto fail;
	}
	if (check_config(c, &error) < 0) {
		snprintf(errbuf, errsize, "%s: %s", name, error);
		goto fail;
	}
	*config_r = c;
	return 0;
fail:
	config_free(&c);
	return -1;
}

/* A configuration file is small; more is a mistake (or not a config). */
#define CONFIG_FILE_MAX (1024 * 1024)

int
config_load(const char *path, struct config **config_r, char *errbuf,
    size_t errsize)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, n;
	int ret = -1;

	f = fopen(path, "re");
	if (f == NULL) {
		snprintf(errbuf, errsize, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	text = xmalloc(CONFIG_FILE_MAX + 1);
	while ((n = fread(text + len, 1, CONFIG_FILE_MAX + 1 - len, f)) > 0) {
		len += n;
		if (len > CONFIG_FILE_MAX)
			break;
	}
	if (ferror(f)) {
		snprintf(errbuf, errsize, "%s: read error: %s", path,
		    strerror(errno));
		goto out;
	}
	if (len > CONFIG_FILE_MAX) {
		snprintf(errbuf, errsize, "%s: larger than %d bytes", path,
		    CONFIG_FILE_MAX);
		goto out;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(errbuf, errsize, "%s: contains a NUL byte", path);
		goto out;
	}
	text[len] = '\0';
	ret = config_load_string(path, text, config_r, errbuf, errsize);
out:
	free(text);
	fclose(f);
	return ret;
}

void
config_free(struct config **configp)
{
	struct config *c = *configp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->listen_count; i++) {
		free(c->listen[i].host);
		free(c->listen[i].port);
	}
	for (size_t i = 0; i < c->listen_tls_count; i++) {
		free(c->listen_tls[i].host);
		free(c->listen_tls[i].port);
	}
	for (size_t i = 0; i < c->metrics_listen_count; i++) {
		free(c->metrics_listen[i].host);
		free(c->metrics_listen[i].port);
	}
	for (size_t i = 0; i < c->web_listen_count; i++) {
		free(c->web_listen[i].host);
		free(c->web_listen[i].port);
	}
	for (size_t i = 0; i < c->pt_domain_count; i++)
		free(c->pt_domains[i]);
	for (size_t i = 0; i < c->proxy_trusted_count; i++)
		free(c->proxy_trusted[i]);
	{
		struct config_listen *lists[] = { c->proxy_listen,
		    c->cluster_auth_listen, c->cluster_node,
		    c->cluster_peers };
		size_t counts[] = { c->proxy_listen_count,
		    c->cluster_auth_listen_count, c->cluster_node_count,
		    c->cluster_peer_count };

		for (size_t k = 0; k < N_ELEMENTS(lists); k++) {
			for (size_t i = 0; i < counts[k]; i++) {
				free(lists[k][i].host);
				free(lists[k][i].port);
			}
		}
	}
	free(c->path);
	free(c->cert_file);
	free(c->rawlog_dir);
	free(c->key_file);
	free(c->data_dir);
	free(c->control_socket);
	free(c->control_group);
	free(c->syslog_socket);
	free(c->upstream.folder);
	free(c->upstream.ca_file);
	free(c->pt_host);
	free(c->pt_port);
	free(c->user);
	free(c->secret_key_file);
	if (c->cluster_secret != NULL)
		secure_zero(c->cluster_secret, strlen(c->cluster_secret));
	free(c->cluster_secret);
	if (c->cluster_secret_also != NULL)
		secure_zero(c->cluster_secret_also,
		    strlen(c->cluster_secret_also));
	free(c->cluster_secret_also);
	free(c->cluster_secret_file);
	config_oauth_free(c);
	free(c);
	*configp = NULL;
}
