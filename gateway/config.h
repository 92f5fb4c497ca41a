/*
 * config — popgated's configuration file (INI syntax, parsed with libinih).
 *
 * The format is documented in docs/popgate.conf.5. Every key has a default
 * except the certificate and key (needed as soon as an IMAP listener is
 * configured). Unknown sections, unknown keys, repeated keys, malformed
 * values and over-long lines are errors; the first error stops parsing and
 * is reported as "FILE:LINE: reason" (config_load) so start-up can refuse
 * with something an admin can act on.
 *
 * This file is level 1: no libevent, OpenSSL or LMDB. The value parsers
 * (durations, sizes, upstream modes, TLS modes, listen addresses) are
 * public because the control socket validates account fields with them.
 *
 * Ownership: a struct config owns every string in it; config_free()
 * releases them. A loaded config is immutable; reload builds a new one and
 * swaps it in.
 */
#ifndef POPGATE_GATEWAY_CONFIG_H
#define POPGATE_GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Listener addresses per kind: more is a configuration mistake. */
#define CONFIG_LISTEN_MAX 8
/* Longest configuration line without its line end; longer lines are an
 * error. Room for long comments and for a [passthrough] domains list of
 * hundreds of domains; libinih's line buffer is set to match. */
#define CONFIG_LINE_MAX 16384
/* Mail domains in [passthrough] domains. */
#define CONFIG_DOMAINS_MAX 1024
/* Longest error message config functions produce. */
#define CONFIG_ERROR_MAX 512
/* The metrics endpoint's port when [metrics] listen is not set. */
#define CONFIG_METRICS_PORT "9154"
/* Trusted proxy networks in [imap] proxy_trusted. */
#define CONFIG_NETS_MAX 64
/* The web page's port when [web] listen is not set. */
#define CONFIG_WEB_PORT "8443"
/* OAuth providers ([oauth.NAME] sections). */
#define CONFIG_OAUTH_MAX 16
/* Length of [cluster] secret, in bytes. */
#define CONFIG_CLUSTER_SECRET_MIN 16
#define CONFIG_CLUSTER_SECRET_MAX 256

enum config_upstream_tls {
	CONFIG_TLS_POP3S = 0,	/* implicit TLS (port 995) */
	CONFIG_TLS_STLS,	/* STLS upgrade, required */
	CONFIG_TLS_NONE,	/* clear text (loopback/test only) */
};

enum config_upstream_mode {
	CONFIG_MODE_KEEP = 0,		/* leave mail on the server */
	CONFIG_MODE_DELETE,		/* DELE after durable commit */
	CONFIG_MODE_DELETE_AFTER,	/* DELE after delete_after_days */
	CONFIG_MODE_MIRROR,		/* keep, and follow upstream deletions */
};

struct config_listen {
	char *host;	/* "*" for every address, else a literal address */
	char *port;	/* decimal, 1..65535 */
};

/* Defaults for upstream accounts, and the fields of one account. */
struct config_upstream {
	uint32_t interval;		/* seconds between polls */
	enum config_upstream_mode mode;
	uint32_t delete_after_days;	/* for CONFIG_MODE_DELETE_AFTER */
	uint64_t size_limit;		/* bytes; larger messages are skipped */
	enum config_upstream_tls tls;
	char *folder;			/* target mailbox */
	uint32_t timeout;		/* seconds per network step */
	uint32_t poll_deadline;		/* seconds for a whole poll */
	uint32_t retr_min_rate;		/* bytes/s a RETR must reach */
	char *ca_file;			/* NULL: the system's trust store;
					   else added to it */
	bool ca_only;			/* trust ca_file alone */
};

/*
 * An OAuth 2.0 provider, from an [oauth.NAME] section (config-oauth.c).
 * preset "microsoft" or "google" (the default when NAME is one of them)
 * fills the endpoints, scope, POP3 host and port and mechanism; every
 * field may be set to override. After loading, endpoints and scope are
 * always set (https:// URLs) and so is client_id.
 */
struct config_oauth {
	char *name;
	char *preset;			/* NULL: a generic provider */
	char *client_id;
	char *client_secret;		/* NULL: a public client */
	char *tenant;			/* microsoft: default "organizations" */
	char *device_endpoint;		/* RFC 8628 device authorization */
	char *token_endpoint;
	char *scope;			/* space-separated */
	char *host;			/* POP3 host; NULL: each account's */
	uint16_t port;			/* 0: by tls */
	enum config_upstream_tls tls;
	char *mechanism;		/* "xoauth2" (default) | "oauthbearer" */
	char *ca_file;			/* trusted for the endpoints besides
					   the system's store */
	uint32_t seen;			/* keys given (each once) */
};

struct config {
	char *path;			/* the file read */

	/* [imap] */
	struct config_listen listen[CONFIG_LISTEN_MAX];	/* STARTTLS */
	size_t listen_count;
	struct config_listen listen_tls[CONFIG_LISTEN_MAX];	/* implicit TLS */
	size_t listen_tls_count;
	char *cert_file;
	char *key_file;
	bool loopback_secure;		/* loopback counts as secure */
	bool allow_plaintext;		/* LOGIN without TLS anywhere */
	char *rawlog_dir;		/* protocol trace (imap-rawlog.h) */
	uint32_t idle_keepalive;	/* seconds between "* OK Still here"
					   lines during IDLE */
	/* listeners behind a proxy (PROXY protocol v1/v2, STARTTLS) and
	 * the proxies allowed on them (addresses or address/prefix) */
	struct config_listen proxy_listen[CONFIG_LISTEN_MAX];
	size_t proxy_listen_count;
	char *proxy_trusted[CONFIG_NETS_MAX];
	size_t proxy_trusted_count;

	/* [store] */
	char *data_dir;
	uint64_t map_size;
	bool search_index;		/* full-text index of new mail */
	uint64_t quota;			/* default per-user quota (0: none) */
	uint64_t map_max;		/* the map grows up to it (0: disk) */
	bool fold_user_names;		/* user names' local parts fold to
					   lower case (username.h) */

	/* [control] */
	char *control_socket;
	mode_t control_mode;
	char *control_group;		/* NULL: none */

	/* [log] */
	int log_target;			/* enum log_target */
	int log_level;			/* enum log_level */
	char *syslog_socket;		/* NULL: LOG_SYSLOG_DEFAULT */

	/* [limits] */
	uint32_t imap_connections;
	uint32_t imap_connections_per_ip;
	uint32_t imap_connections_per_user;	/* logged-in sessions */
	uint32_t imap_preauth_per_ip;	/* sessions not logged in yet */
	uint32_t imap_preauth_timeout;	/* seconds from connect to login */
	uint32_t imap_memory_budget;	/* bytes all parsers may hold */
	uint32_t imap_append_max;	/* largest APPENDed message */
	uint32_t login_failures_per_connection;	/* then BYE */
	uint32_t control_clients;
	uint32_t control_request_max;	/* bytes per request line */
	uint32_t upstream_per_host;	/* POP3 sessions at once per host */
	uint32_t workers;		/* worker threads (0: one per core) */

	/* [upstream-defaults] */
	struct config_upstream upstream;

	/* [metrics] */
	bool metrics_enabled;
	struct config_listen metrics_listen[CONFIG_LISTEN_MAX];
	size_t metrics_listen_count;	/* default 127.0.0.1:9154 */

	/* [web] (gateway/web.h) */
	bool web_enabled;
	struct config_listen web_listen[CONFIG_LISTEN_MAX];
	size_t web_listen_count;	/* default 127.0.0.1:8443 */
	uint32_t web_session_timeout;	/* seconds idle before a log-out */
	uint32_t web_sessions;		/* signed-in sessions at most */
	uint32_t web_max_connections;	/* open HTTPS connections at most */
	bool web_self_service;		/* people add/remove own accounts */

	/* [passthrough] */
	bool pt_enabled;
	char *pt_host;
	char *pt_port;
	enum config_upstream_tls pt_tls;
	bool pt_allow_cleartext;	/* tls none to a host not loopback */
	char *pt_domains[CONFIG_DOMAINS_MAX];
	size_t pt_domain_count;		/* 0: every login */
	uint32_t pt_attempts_per_minute;	/* per user name */
	uint32_t pt_failure_cache;	/* seconds a failure is remembered */

	/* [oauth.NAME] */
	struct config_oauth oauth[CONFIG_OAUTH_MAX];
	size_t oauth_count;

	/* [cluster]: nodes behind nginx's mail proxy (docs/scale-out.md) */
	struct config_listen cluster_auth_listen[CONFIG_LISTEN_MAX];
	size_t cluster_auth_listen_count;	/* auth_http service */
	struct config_listen cluster_node[CONFIG_LISTEN_MAX];
	size_t cluster_node_count;	/* 1: where nginx reaches this node */
	struct config_listen cluster_peers[CONFIG_LISTEN_MAX];
	size_t cluster_peer_count;	/* the other nodes' auth_http */
	uint32_t cluster_cache;		/* seconds a placement is kept */
	/* the key nginx (auth_http_header) and peers send; from secret or
	 * read from secret_file at load (wiped when freed, never logged) */
	char *cluster_secret;
	char *cluster_secret_also;	/* secret_file's second line: also
					 * accepted, never sent (rotation) */
	char *cluster_secret_file;
	uint32_t cluster_ticket_lifetime;	/* seconds a login ticket lives */

	/* [daemon] */
	char *user;			/* NULL: do not drop privileges */
	char *secret_key_file;		/* default DATA_DIR/secret.key */
};

/* A [cluster] secret as it must be: 16 to 256 printable characters,
 * without spaces, quotes, backslashes or ;{}$# (it goes into nginx's
 * configuration and an HTTP header). */
bool config_cluster_secret_ok(const char *secret);

/*
 * Reads path. On success *config_r is a new config (free with
 * config_free). On error returns -1 and writes "PATH:LINE: reason" or
 * "PATH: reason" into errbuf (errsize bytes).
 */
int config_load(const char *path, struct config **config_r,
    char *errbuf, size_t errsize);
/* Same, from text in memory; name is used in messages and as ->path. */
int config_load_string(const char *name, const char *text,
    struct config **config_r, char *errbuf, size_t errsize);
void config_free(struct config **configp);

/* Value parsers; each returns 0, or -1 with *error_r set (static text). */
int config_parse_bool(const char *s, bool *b_r, const char **error_r);
/* "300", "300s", "5m", "2h", "1d" -> seconds (at most 2^32-1). */
int config_parse_duration(const char *s, uint32_t *secs_r,
    const char **error_r);
/* "1048576", "512K", "64M", "1G", "1T" -> bytes. */
int config_parse_size(const char *s, uint64_t *bytes_r,
    const char **error_r);
int config_parse_tls(const char *s, enum config_upstream_tls *tls_r,
    const char **error_r);
/* "keep", "delete", "mirror", "delete-after:DAYS" (DAYS 1..36500). */
int config_parse_mode(const char *s, enum config_upstream_mode *mode_r,
    uint32_t *days_r, const char **error_r);
/* "1..65535" */
int config_parse_port(const char *s, const char **error_r);
/* "host:port", "[v6addr]:port", "*:port"; owned strings into *l_r. */
int config_parse_listen(const char *s, struct config_listen *l_r,
    const char **error_r);

const char *config_tls_name(enum config_upstream_tls tls);

/* The provider named name, or NULL. */
const struct config_oauth *config_oauth_find(const struct config *c,
    const char *name);
/* config-oauth.c, for config.c: one key of an [oauth.NAME] section; the
 * checks and presets once the file is read; freeing. */
int config_oauth_key(struct config *c, const char *name, const char *key,
    const char *value, const char **error_r);
int config_oauth_finish(struct config *c, const char **error_r);
void config_oauth_free(struct config *c);
/* Renders a mode ("delete-after:30") into buf; returns buf. */
const char *config_mode_name(enum config_upstream_mode mode, uint32_t days,
    char *buf, size_t bufsize);

#endif
