/*
 * upstream — the plug-in interface through which the gateway drives the
 * sources of mail (DESIGN.md "the upstream side is a plug-in point").
 *
 * An upstream is a set of accounts polled on the gateway's event loop. The
 * gateway creates one (pop3_upstream_new() in pop3-poller.h is the POP3
 * implementation), configures accounts with account_set, and then calls
 * the operations through the vtable:
 *
 *	u->ops->account_set(u, &cfg, &error);
 *	u->ops->start(u, &error);
 *	u->ops->poll_now(u, NULL, &error);		(all accounts)
 *	u->ops->status(u, "acct1", &st, &error);
 *	u->ops->stop(u);
 *	u->ops->free(&u);
 *
 * All calls are made from the event loop's thread. Nothing here blocks.
 */
#ifndef POPGATE_UPSTREAM_H
#define POPGATE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest account id (the gateway's short name; a ledger key part). */
#define UPSTREAM_ID_MAX 64
/* Longest error text kept in a status (escaped peer bytes included). */
#define UPSTREAM_ERROR_MAX 300
/* Longest login and password: "PASS <password>" and "USER <login>" must
   fit one POP3 command line (POP3_CLIENT_CMD_MAX) with room to spare. */
#define UPSTREAM_LOGIN_MAX 255
#define UPSTREAM_PASSWORD_MAX 1000
/* Longest OAuth 2.0 access token (carried in `password` for the OAuth
   mechanisms): Microsoft's JWTs run to about 2.5 KB; the SASL response is
   sent on a continuation line of its own (POP3_CLIENT_SASL_LINE_MAX). */
#define UPSTREAM_TOKEN_MAX 8192

enum upstream_tls {
	UPSTREAM_TLS_POP3S = 0,	/* implicit TLS (port 995) */
	UPSTREAM_TLS_STLS,	/* plain connection upgraded with STLS; required */
	UPSTREAM_TLS_NONE,	/* clear text, credentials included: opt-in;
				   to a host that is not loopback only with
				   allow_cleartext (logged as a warning) */
};

enum upstream_auth {
	UPSTREAM_AUTH_AUTO = 0,	/* strongest offered: see pop3-client.h */
	UPSTREAM_AUTH_USER,	/* USER / PASS */
	UPSTREAM_AUTH_APOP,
	UPSTREAM_AUTH_PLAIN,	/* AUTH PLAIN (RFC 5034) */
	UPSTREAM_AUTH_LOGIN,	/* AUTH LOGIN */
	UPSTREAM_AUTH_CRAM_MD5,	/* AUTH CRAM-MD5 (RFC 2195); explicit only */
	UPSTREAM_AUTH_SCRAM_SHA_1,	/* AUTH SCRAM-SHA-1 (RFC 5802) */
	UPSTREAM_AUTH_SCRAM_SHA_256,	/* AUTH SCRAM-SHA-256 (RFC 7677) */
	UPSTREAM_AUTH_XOAUTH2,	/* AUTH XOAUTH2 (Google/Microsoft); password
				   holds the OAuth 2.0 access token */
	UPSTREAM_AUTH_OAUTHBEARER,	/* AUTH OAUTHBEARER (RFC 7628); the
					   same */
};

/* True for the mechanisms whose `password` is an OAuth access token. */
#define UPSTREAM_AUTH_IS_OAUTH(a) ((a) == UPSTREAM_AUTH_XOAUTH2 || \
	(a) == UPSTREAM_AUTH_OAUTHBEARER)

enum upstream_mode {
	UPSTREAM_MODE_KEEP = 0,		/* leave everything on the server */
	UPSTREAM_MODE_DELETE,		/* DELE once durably stored */
	UPSTREAM_MODE_DELETE_AFTER,	/* DELE delete_after_days after first
					   seen (the ledger's seen time) */
	UPSTREAM_MODE_MIRROR,		/* DELE what the user expunged locally */
};

/* Per-phase timeouts in milliseconds; 0 picks the default. */
struct upstream_timeouts {
	unsigned int connect_ms;
	unsigned int tls_ms;
	unsigned int greeting_ms;
	unsigned int command_ms;	/* each command's response */
	unsigned int stall_ms;		/* no byte of RETR data for this long */
	/* The whole poll, from connect to QUIT (0: POP3_CLIENT_POLL_MS). */
	unsigned int poll_ms;
	/* A RETR's data must come at least this fast: its deadline is
	 * command_ms plus the announced size at this rate, bytes per second
	 * (0: POP3_CLIENT_RETR_MIN_RATE). */
	unsigned int retr_min_rate;
};

/*
 * An account's configuration. Strings are owned by whoever built the
 * struct; upstream_account_dup() makes an owned deep copy and
 * upstream_account_free() frees one (wiping the password). An upstream
 * keeps its own copy of what account_set is given. The password lives in
 * memory only.
 */
struct upstream_account {
	char *id;		/* 1..UPSTREAM_ID_MAX bytes, printable ASCII */
	uint32_t user_id;	/* local store user */
	char *mailbox;		/* target mailbox; NULL: "INBOX" */
	char *host;
	uint16_t port;		/* 0: 995 for pop3s, 110 otherwise */
	enum upstream_tls tls;
	char *ca_file;		/* PEM CA certificates trusted for this
				   account besides the system's store;
				   NULL: the system's store alone */
	bool ca_only;		/* trust ca_file alone, not the system's
				   store too */
	char *fingerprint;	/* pinned SHA-256 of the server certificate
				   (hex, colons allowed); replaces chain and
				   host verification when set */
	bool allow_cleartext;	/* tls none to a host that is not loopback:
				   the admin said so explicitly */
	enum upstream_auth auth;
	char *login;
	char *password;
	enum upstream_mode mode;
	uint32_t delete_after_days;	/* UPSTREAM_MODE_DELETE_AFTER */
	uint32_t interval_secs;		/* 0: 300 */
	uint64_t size_limit;		/* larger messages are left on the
					   server with a logged reason;
					   0: the store's maximum */
	bool trace;			/* protocol trace to the log, passwords
					   masked */
	struct upstream_timeouts timeouts;
};

struct upstream_account *upstream_account_dup(const struct upstream_account *a);

/* How two configurations of one account differ (account_set decides with
 * it whether a poll in progress must be aborted). */
enum upstream_account_change {
	UPSTREAM_CHANGE_NONE = 0,
	UPSTREAM_CHANGE_TOKEN,	/* only the OAuth access token (password of
				   an OAuth mechanism): a running poll goes
				   on, the next login uses the new one */
	UPSTREAM_CHANGE_OTHER,
};
enum upstream_account_change upstream_account_compare(
    const struct upstream_account *old, const struct upstream_account *cur);

/* The identity of the upstream mailbox an account reads, for content
 * identity (16 bytes: a SHA-256 prefix): the host without case and without
 * a final dot, the port (0: the default of its TLS mode), the login
 * without case, as the same-mailbox check compares them. Two accounts
 * with these equal read the same mailbox whatever their names. */
#define UPSTREAM_MAILBOX_KEY_SIZE 16
void upstream_mailbox_key(const struct upstream_account *a,
    unsigned char out[UPSTREAM_MAILBOX_KEY_SIZE]);
/* The same key with host instead of the account's (an address the host
 * name resolved to, in numeric form): the names a mailbox is known by
 * (store_ledger_mailbox_alias). */
void upstream_mailbox_key_at(const struct upstream_account *a,
    const char *host, unsigned char out[UPSTREAM_MAILBOX_KEY_SIZE]);

/* True for "localhost", an address in 127.0.0.0/8 and ::1: clear text to
 * such a host never leaves the machine. */
bool upstream_host_is_loopback(const char *host);
/* Parses a SHA-256 fingerprint (64 hex digits, colons anywhere). */
int upstream_fingerprint_parse(const char *s, unsigned char out[32]);
void upstream_account_free(struct upstream_account **ap);
/* Checks a configuration (id, host, names, fingerprint syntax, auth vs
 * tls). 0, or -1 with a static reason. */
int upstream_account_check(const struct upstream_account *a,
    const char **error_r);

const char *upstream_tls_name(enum upstream_tls tls);
const char *upstream_auth_name(enum upstream_auth auth);
const char *upstream_mode_name(enum upstream_mode mode);
/* Parse the names above ("pop3s", "stls", "none"; "auto", "user", "apop",
 * "plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256", "xoauth2",
 * "oauthbearer"; "keep", "delete", "delete-after", "mirror"). */
int upstream_tls_parse(const char *s, enum upstream_tls *tls_r);
int upstream_auth_parse(const char *s, enum upstream_auth *auth_r);
int upstream_mode_parse(const char *s, enum upstream_mode *mode_r);

enum upstream_state {
	UPSTREAM_STATE_IDLE = 0,	/* waiting for its next poll */
	UPSTREAM_STATE_QUEUED,		/* due, waiting for a host slot */
	UPSTREAM_STATE_POLLING,
	UPSTREAM_STATE_BACKOFF,		/* last poll failed; retrying later */
	UPSTREAM_STATE_AUTH_FAILED,	/* circuit breaker open: not polled
					   until credentials change or resume */
	UPSTREAM_STATE_STORE_ERROR,	/* delivery stopped: map/disk full */
	UPSTREAM_STATE_STOPPED,
	UPSTREAM_STATE_OVER_QUOTA,	/* the user is over quota: polled at
					   the interval, nothing deleted for
					   what was not stored */
};

const char *upstream_state_name(enum upstream_state state);

/* A snapshot of an account's status (a plain copy: no pointers). */
struct upstream_status {
	char id[UPSTREAM_ID_MAX + 1];
	enum upstream_state state;
	time_t last_poll;		/* 0: never */
	time_t last_success;		/* 0: never */
	time_t next_poll;		/* 0: not scheduled */
	char last_error[UPSTREAM_ERROR_MAX];	/* "" if the last poll was ok;
						   peer bytes escaped */
	unsigned int consecutive_failures;
	unsigned int auth_failures;	/* consecutive */
	bool poll_queued;		/* poll_now arrived during a poll:
					   another poll follows this one */
	uint64_t messages_fetched;	/* total since start */
	uint64_t bytes_fetched;
	uint64_t messages_deleted;	/* DELE confirmed by QUIT */
	uint64_t messages_skipped;	/* over the size limit, last poll */
	/* The current or last poll's import progress. */
	uint32_t import_done;		/* messages stored in this poll */
	uint32_t import_total;		/* new messages found in this poll */
	uint64_t import_bytes;
	double import_rate;		/* messages per second */
	/* How messages are told apart: "uidl", or the fallback in use and
	   why ("content-hash (no UIDL)", ...). */
	char uidl_strategy[80];
};

struct upstream;

struct upstream_ops {
	const char *kind;	/* "pop3" */
	/* Adds an account or replaces one with the same id. Replacing with
	   different credentials closes an open auth circuit breaker. */
	int (*account_set)(struct upstream *u,
	    const struct upstream_account *cfg, const char **error_r);
	/* Removes an account; a poll in progress is aborted (no DELE). */
	int (*account_remove)(struct upstream *u, const char *id,
	    const char **error_r);
	/* Starts polling (first polls spread over a few seconds). */
	int (*start)(struct upstream *u, const char **error_r);
	/* Polls one account (id) or all (NULL) as soon as possible: now,
	   or when the server's LOGIN-DELAY since the last login ends. An
	   account being polled is polled again right after (its status
	   says poll_queued meanwhile), so mail that arrived during the
	   poll does not wait for the next interval. -1 for an account
	   whose auth circuit breaker is open. */
	int (*poll_now)(struct upstream *u, const char *id,
	    const char **error_r);
	/* Closes the auth circuit breaker / leaves STORE_ERROR and polls. */
	int (*resume)(struct upstream *u, const char *id,
	    const char **error_r);
	int (*status)(struct upstream *u, const char *id,
	    struct upstream_status *st_r, const char **error_r);
	/* Calls cb for each account in id order. */
	void (*status_foreach)(struct upstream *u,
	    void (*cb)(void *ctx, const struct upstream_status *st),
	    void *ctx);
	/* Aborts polls in progress (a DELE batch without QUIT is not
	   applied by the server) and cancels timers. */
	void (*stop)(struct upstream *u);
	/* Stops for a shutdown: like stop, except that a poll that has sent
	   DELEs (after its durable commit) sends QUIT and waits for +OK
	   (bounded, a few seconds) so the deletions take effect now; done
	   is called once every poll has ended (maybe before this returns).
	   May be NULL in other upstreams: use stop. */
	void (*stop_graceful)(struct upstream *u, void (*done)(void *arg),
	    void *arg);
	/* Frees, sets *up to NULL; accepts NULL. Calls stop first. */
	void (*free)(struct upstream **up);
};

struct upstream {
	const struct upstream_ops *ops;
};

#endif
