/*
 * imap-server — the IMAP4rev1 server: listeners, TLS, sessions (level 3).
 *
 * The gateway (or tests/tools/imapd_test) creates one server on its event
 * loop, with the store it serves, a configuration and an authentication
 * hook, then calls imap_server_listen(). Every function here runs on that
 * loop (the owner thread of docs/threads.md); none is thread-safe. Heavy
 * steps go to the worker pool of the config, store changes to the store's
 * writer thread, and both come back to the loop as events.
 *
 *   struct imap_server_config cfg;
 *   imap_server_config_init(&cfg);
 *   cfg.plain_addrs = (const char *[]){ "127.0.0.1:143", NULL };
 *   cfg.tls_addrs = (const char *[]){ "127.0.0.1:993", NULL };
 *   cfg.ssl_ctx = ctx;                       // the server takes a reference
 *   srv = imap_server_new(base, store, &cfg, NULL, NULL, &err);
 *   imap_server_listen(srv, &err);
 *   ...
 *   imap_server_shutdown(srv, "Server shutting down", done_cb, arg);
 *   ... loop until done_cb ...
 *   imap_server_free(&srv);
 *
 * Ownership: the server borrows base and store (they must outlive it) and
 * holds its own reference on the SSL_CTX. The strings of the config are
 * copied by imap_server_new().
 */
#ifndef POPGATE_IMAP_SERVER_H
#define POPGATE_IMAP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>

struct store;
struct imap_server;
struct imap_auth_request;

/* RFC 3501 5.4: the autologout timer must be at least 30 minutes. */
#define IMAP_IDLE_TIMEOUT_MIN_SECS (30 * 60)

struct imap_server_limits {
	/* Sessions in total, and from one client address. */
	unsigned max_sessions;
	unsigned max_sessions_per_ip;
	/* Logged-in sessions of one user (0: no limit). */
	unsigned max_sessions_per_user;
	/* Sessions not logged in yet from one client address (0: no limit
	 * beyond max_sessions_per_ip). When the server is full, the oldest
	 * of those are closed to admit a new connection. */
	unsigned max_preauth_per_ip;
	/* Failed logins on one connection before it is closed. */
	unsigned max_auth_failures;
	/* Longest command line (excluding literals). */
	size_t max_line;
	/* Largest literal held in memory, before and after authentication
	 * (every literal but an APPEND's message). */
	size_t max_literal_preauth;
	size_t max_literal;
	/* Largest APPENDed message: streamed to a spool file, never held in
	 * memory (imap-spool.h). */
	uint64_t max_append;
	/* Bytes the parsers of all sessions may hold or have promised to
	 * accept for commands being read; a literal that would pass it is
	 * answered NO [LIMIT] (each session is capped at its parser's
	 * command limit besides). */
	uint64_t buffer_budget;
	/* Bad commands in a row before the server says BYE. */
	unsigned max_bad_commands;
	/* Seconds of silence before a logged-in session is closed (>= 30 min
	 * unless tests lower it); seconds from connect to login (commands do
	 * not extend it). */
	unsigned idle_timeout_secs;
	unsigned preauth_timeout_secs;
	/* Seconds between untagged "* OK Still here" lines while a session
	 * IDLEs, so that a proxy's or NAT's idle timeout does not cut it
	 * (0: the default, IMAP_IDLE_KEEPALIVE_SECS). */
	unsigned idle_keepalive_secs;
	/* Output buffered for a client above which the server stops reading
	 * its commands and pauses a streaming FETCH. */
	size_t output_high_water;
	/* Seconds a streaming FETCH holds the read snapshot of the body it
	 * sends before it takes the body again from a fresh one (or closes
	 * the connection when no message has that body any more): bounds
	 * how stale a snapshot a slow reader keeps open (0: the default,
	 * IMAP_FETCH_PIN_SECS). */
	unsigned fetch_pin_secs;
};
#define IMAP_FETCH_PIN_SECS 60
/* A proxy sends its header at once: seconds from connect to the whole
 * PROXY header, and connections waiting for theirs at once. */
#define IMAP_PROXY_HEADER_SECS 5
#define IMAP_PROXY_PENDING_MAX 256
/* Two minutes: shorter than the idle timeouts of common proxies and NATs
 * (nginx's mail proxy_timeout defaults to 24 h, many NATs drop a quiet
 * TCP flow after 5 minutes), long enough to cost nothing. */
#define IMAP_IDLE_KEEPALIVE_SECS 120

struct imap_server_config {
	/* NULL-terminated lists of "host:port" ("[v6]:port"); either may be
	 * NULL. plain_addrs listen for plain text with STARTTLS, tls_addrs for
	 * implicit TLS. */
	const char *const *plain_addrs;
	const char *const *tls_addrs;
	/* Plain-text (STARTTLS) listeners behind a proxy: every connection
	 * must come from one of proxy_trusted (addresses or networks,
	 * "10.0.0.0/8") and open with a PROXY protocol v1 or v2 header
	 * (imap-proxy-parse.h) within IMAP_PROXY_HEADER_SECS; the client it
	 * carries is the session's address for the per-address limits, the
	 * failed-login table and the logs. Whether the connection counts
	 * as secure is decided by the proxy's own address (loopback) or
	 * TLS, as on any listener. Either may be NULL; proxy_addrs needs
	 * proxy_trusted. */
	const char *const *proxy_addrs;
	const char *const *proxy_trusted;
	/* Required when tls_addrs is set or STARTTLS is to be offered; the
	 * server takes its own reference (SSL_CTX_up_ref). */
	SSL_CTX *ssl_ctx;
	/* A connection from loopback counts as secure (Dovecot's default):
	 * LOGIN works there without TLS. Default true. */
	bool loopback_is_secure;
	/* Plain-text LOGIN/AUTHENTICATE over any unencrypted connection.
	 * Default false. */
	bool allow_plaintext;
	/* The user name of a LOGIN / AUTHENTICATE is folded to its
	 * canonical form (username.h) before anything else sees it: the
	 * domain always, the local part too when this is true. Default
	 * true. */
	bool fold_user_names;
	struct imap_server_limits limits;
	/* The worker pool for password checks and SEARCH over text (NULL:
	 * they run on the loop, for tools). Borrowed; it must outlive the
	 * server. Store changes go to the store's writer thread when one
	 * runs (store_writer_start), else they run in the loop. */
	struct workq *workq;
	/* A directory for one file per session with everything the server
	 * sent it (imap-rawlog.h); NULL (the default): none. Copied. */
	const char *rawlog_dir;
	/* Where APPENDed messages are spooled while they arrive (created,
	 * stale files removed: imap_spool_prepare_dir). NULL: $TMPDIR or
	 * /tmp. Copied. */
	const char *spool_dir;
};

/* Fills cfg with the defaults (no listeners, no TLS). */
void imap_server_config_init(struct imap_server_config *cfg);

enum imap_auth_result {
	IMAP_AUTH_OK = 0,
	IMAP_AUTH_FAILED,	/* wrong user or password: NO [AUTHENTICATIONFAILED] */
	IMAP_AUTH_DISABLED,	/* account disabled: NO */
	IMAP_AUTH_TEMPFAIL,	/* try later: NO [UNAVAILABLE] */
};

/*
 * The authentication hook. Called once per LOGIN / AUTHENTICATE with the
 * credentials; username, password and client_addr are valid only during
 * the call (copy what is kept; the password buffer is wiped afterwards).
 * The hook must eventually call imap_auth_request_done(req, ...) exactly
 * once, either from inside the call or later from the event loop.
 */
typedef void imap_auth_fn(void *ctx, const char *username,
    const char *password, const char *client_addr,
    struct imap_auth_request *req);

/*
 * Completes an authentication. user is the canonical user name in the
 * store when result is IMAP_AUTH_OK (copied), else ignored. Safe to call
 * after the session has gone away (the request is then just freed).
 * Frees req.
 */
void imap_auth_request_done(struct imap_auth_request *req,
    enum imap_auth_result result, const char *user);

/*
 * The default hook: ctx is the struct imap_server *; verifies the
 * password against the store's user hash (imap_server_check_password).
 */
imap_auth_fn imap_server_auth_store;

/* result: 1 the password matches, 0 it does not or there is no such user
 * (exists says which), 2 it matches but the user was moved to another
 * node (STORE_META_MOVED; exists is then false: not held here), -1 store
 * error or the pool stopped. */
typedef void imap_password_done_fn(void *arg, int result, bool exists);

/*
 * Checks a password against the store's hash on a worker thread (argon2id
 * never runs on the loop; an unknown user costs the same as a wrong
 * password); done(arg, ...) is called on the loop, always exactly once
 * (without a pool: before this returns). username and password are
 * copied (the copy is wiped). Jobs are queued fairly by client_addr.
 */
void imap_server_check_password(struct imap_server *srv,
    const char *username, const char *password, const char *client_addr,
    imap_password_done_fn *done, void *arg);

/*
 * Login tickets (lib/login-ticket.h) for nginx's logins on proxied
 * sessions: the server borrows t (NULL: none; clear it before freeing t).
 * imap_server_ticket_issue makes one for user (its canonical name, as
 * LOGIN sees it) from the client address ip into out
 * (LOGIN_TICKET_LEN_MAX bytes): 0, or -1 when none can be made.
 */
struct login_tickets;
void imap_server_set_tickets(struct imap_server *srv,
    struct login_tickets *t);
int imap_server_ticket_issue(struct imap_server *srv, const char *user,
    const char *ip, char *out);

/* The failed-login table (imap-throttle.h) the server's logins use, so
 * that other logins with the same passwords (the web page) count in it
 * and are slowed by it alike. Owned by the server (the loop's). */
struct imap_throttle *imap_server_throttle(struct imap_server *srv);

/*
 * The failed-login table (imap-throttle.h) for a login checked outside an
 * IMAP session (gateway/auth-http.c, nginx's auth_http): the delay in ms
 * to wait before checking a password of user from the client address ip,
 * and the outcome of the check, counted as an IMAP login's would be.
 */
unsigned imap_server_throttle_delay(struct imap_server *srv,
    const char *user, const char *ip);
void imap_server_throttle_result(struct imap_server *srv, const char *user,
    const char *ip, bool ok, unsigned *failures_r);

/*
 * Creates a server. auth NULL selects imap_server_auth_store with ctx =
 * store. Returns NULL with *error_r on a bad configuration.
 */
struct imap_server *imap_server_new(struct event_base *base,
    struct store *store, const struct imap_server_config *cfg,
    imap_auth_fn *auth, void *auth_ctx, const char **error_r);

/* Binds and listens on every configured address: 0, or -1 + *error_r. */
int imap_server_listen(struct imap_server *srv, const char **error_r);

/* The ports actually bound (for ":0" in tests); 0 when none. */
int imap_server_plain_port(const struct imap_server *srv);
int imap_server_tls_port(const struct imap_server *srv);
int imap_server_proxy_port(const struct imap_server *srv);

/* Replaces the TLS context for new connections (takes a reference). */
void imap_server_set_ssl_ctx(struct imap_server *srv, SSL_CTX *ctx);

struct imap_session_info {
	unsigned id;
	const char *user;	/* NULL before login */
	const char *addr;	/* "ip:port" */
	const char *client_id;	/* from ID ("name version"), or NULL */
	const char *mailbox;	/* selected mailbox or NULL */
	time_t started;
	bool tls;
	bool idling;
};

/*
 * Calls fn for each session; the info strings are valid during the call
 * only. fn must not close sessions (use imap_server_kick_user).
 */
void imap_server_foreach_session(struct imap_server *srv,
    void (*fn)(void *arg, const struct imap_session_info *info), void *arg);

/*
 * Protocol trace, for an admin debugging a client: every line of a
 * session both ways, logged at info whatever the log level, with LOGIN
 * and AUTHENTICATE secrets and every literal (message bodies, headers)
 * masked (imap-trace.h). Traces are kept in memory: a restart ends them.
 */
#define IMAP_TRACE_USERS_MAX 64
/* Traces (on) or stops tracing every session of user, now and at each
   later login. Returns the sessions switched now. */
unsigned imap_server_trace_user(struct imap_server *srv, const char *user,
    bool on);
/* True when IMAP_TRACE_USERS_MAX users are traced (no more can be). */
bool imap_server_trace_user_full(const struct imap_server *srv);
/* One session, by id: 0, or -1 when there is no such session. */
int imap_server_trace_session(struct imap_server *srv, unsigned id,
    bool on);
/* The users traced, then the sessions traced (user NULL before login). */
void imap_server_trace_list(struct imap_server *srv,
    void (*user_cb)(void *arg, const char *user),
    void (*session_cb)(void *arg, unsigned id, const char *user),
    void *arg);

/* Closes every session logged in as user with "* BYE reason"; returns
 * how many. */
unsigned imap_server_kick_user(struct imap_server *srv, const char *user,
    const char *reason);

struct imap_server_stats {
	unsigned sessions;		/* open now */
	unsigned sessions_authenticated;	/* logged in now */
	uint64_t sessions_total;	/* accepted since start */
	uint64_t sessions_refused;	/* over a session cap */
	uint64_t sessions_evicted;	/* not logged in, closed for room */
	uint64_t logins_ok;
	uint64_t logins_failed;
	uint64_t password_checks;	/* argon2id verifications run */
	uint64_t ticket_logins;		/* logins with an auth_http ticket */
	uint64_t commands;
	uint64_t bad_commands;
	uint64_t buffered_bytes;	/* parsers' memory now (the budget) */
	uint64_t refused_budget;	/* literals refused by the budget */
};

void imap_server_get_stats(const struct imap_server *srv,
    struct imap_server_stats *stats_r);

/*
 * Graceful shutdown: stops listening, sends "* BYE reason" to every
 * session and closes each once its output is flushed (or after a few
 * seconds). done(arg) is called once no session is left (maybe at once).
 */
void imap_server_shutdown(struct imap_server *srv, const char *reason,
    void (*done)(void *arg), void *arg);

/*
 * The server's change-feed entry: the store allows one callback, so the
 * gateway either registers this directly
 *   store_set_change_cb(store, imap_server_on_store_change, srv);
 * or calls it from its own fan-out with arg = srv. Sessions selected on
 * the mailbox queue EXISTS / EXPUNGE / FETCH FLAGS (sent at once in IDLE).
 */
struct store_change;
void imap_server_on_store_change(void *arg, const struct store_change *ch);

/* Frees the server, closing whatever is left abruptly. Accepts NULL. */
void imap_server_free(struct imap_server **srvp);

#endif
