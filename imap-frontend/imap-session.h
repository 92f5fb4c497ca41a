/*
 * imap-session — one client connection: its state machine, its I/O and
 * the selected-mailbox view (internal to imap-frontend).
 *
 * States (RFC 3501 3): NOT_AUTH -> AUTH <-> SELECTED -> LOGOUT. Orthogonal
 * to those, the I/O mode says what the bytes read next mean (a command, a
 * SASL response, the end of IDLE) or that nothing is read (TLS hand-over,
 * a pending authentication, a streaming response waiting for the client
 * to drain its output).
 *
 * Lifetime: a session is freed only by imap_session_close_now() from the
 * dispatcher or an event callback, never inside a command handler; a
 * handler marks it closing (imap_session_close()) and the dispatcher frees
 * it on the way out.
 */
#ifndef POPGATE_IMAP_SESSION_H
#define POPGATE_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <openssl/ssl.h>

#include "imap-seqset.h"
#include "imap-server.h"
#include "store/store.h"
#include "workq.h"

struct arena;
struct strbuf;
struct imap_cmd;
struct imap_notify;
struct imap_parser;
struct imap_rawlog;
struct imap_session;

enum imap_state {
	IMAP_STATE_NOT_AUTH = 0x1,
	IMAP_STATE_AUTH = 0x2,
	IMAP_STATE_SELECTED = 0x4,
	IMAP_STATE_LOGOUT = 0x8,
};
#define IMAP_STATES_ANY (IMAP_STATE_NOT_AUTH | IMAP_STATE_AUTH | \
	IMAP_STATE_SELECTED)
#define IMAP_STATES_AUTHED (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
/* Input buffered from a client while its login is held back by the
 * failed-login table (imap-throttle.h): its EOF is still seen. */
#define IMAP_LOGIN_HELD_INPUT_MAX (16 * 1024)

enum imap_io_mode {
	IMAP_IO_COMMAND = 0,	/* reading commands */
	IMAP_IO_SASL,		/* reading one AUTHENTICATE response line */
	IMAP_IO_IDLE,		/* reading "DONE" */
	IMAP_IO_AUTH_WAIT,	/* the auth hook has not answered yet */
	IMAP_IO_JOB,		/* a command waits for its job (see imap_job) */
	IMAP_IO_STARTTLS,	/* flushing the OK before the TLS hand-over */
	IMAP_IO_HANDSHAKE,	/* TLS handshake running */
	IMAP_IO_CONTINUE,	/* a command streams output (see cont) */
	IMAP_IO_CLOSING,	/* flushing the last output, then close */
};

/*
 * A command whose work runs off the loop: a store change on the writer
 * thread, or a password check or SEARCH on a worker. The session reads
 * no further command until the job is done, so pipelined commands keep
 * their order. The job owns copies of everything it needs (the parser's
 * and the scratch arena's memory is reused by other sessions as soon as
 * the handler returns), and the writer or worker touches only the job,
 * never the session. When the job is done, finish() runs on the loop and
 * writes the responses; if the session went meanwhile, finish() is not
 * called, only free().
 */
struct imap_job {
	struct workq_job wq;		/* worker jobs: run set by the caller */
	struct imap_session *session;	/* NULL once the session is gone */
	uint32_t user_id;		/* the session's, for apply/run */
	char *tag;
	void (*finish)(struct imap_session *s, const char *tag,
	    struct imap_job *job);
	void (*free)(struct imap_job *job);	/* NULL: free(job) */
	/* writer jobs: the outcome */
	int rc;
	enum store_error cls;
	char error[256];
};

/* Resumes a command that paused because the client's output was full.
 * Returns true when the command has finished (tagged response written). */
typedef bool imap_cont_fn(struct imap_session *s);

/* The session's view of its selected mailbox (RFC 3501 sequence numbers
 * stay as the client knows them until the server reports otherwise). */
struct imap_selected {
	uint32_t mailbox_id;
	char *name;		/* UTF-8 name */
	bool readonly;
	uint32_t uidvalidity;
	/* seq n is uids[n-1]; count is what the client was told (EXISTS). */
	uint32_t *uids;
	uint32_t count;
	uint32_t cap;
	/* Highest UID the view knows about (new mail is above it). */
	uint32_t max_uid;
	/* UIDs that are \Recent in this session (RFC 3501 2.3.2; see
	 * imap-recent.h) and how many of them are still in the view. */
	struct imap_seqset recent;
	uint32_t recent_count;
	/* IMAP4rev2 session: \Recent is kept (for the other sessions'
	 * sake) but never shown, and no RECENT is sent. */
	bool hide_recent;
	/* SEARCHRES (RFC 5182): the UIDs of the last SEARCH RETURN (SAVE),
	 * what "$" names; empty at SELECT. */
	struct imap_seqset saved;
	/* IMAP4rev2: renamed by another session; the name the client knew,
	 * for the LIST with OLDNAME at the next update (RFC 9051 7.3.1). */
	char *renamed_from;
	uint64_t highestmodseq;
	/* Keywords of the mailbox the client was told of in FLAGS; the
	 * table only grows (store.h), so a larger count means new ones. */
	uint32_t kw_count;
	bool kw_check;		/* flags or messages changed: recount */
	/* Pending notifications from other sessions and the poller. */
	bool new_pending;
	/* The mailbox was deleted (by another session, the admin or this
	 * session's own DELETE): nothing more is served from this view. */
	bool deleted;
	uint32_t *expunged;	/* ascending, not yet reported */
	uint32_t expunged_count, expunged_cap;
	uint32_t *flagged;	/* ascending-ish, de-duplicated on send */
	uint32_t flagged_count, flagged_cap;
};

struct imap_session {
	TAILQ_ENTRY(imap_session) link;
	struct imap_server *server;
	unsigned id;
	struct bufferevent *bev;
	int fd;
	bool tls;		/* TLS active (implicit or after STARTTLS) */
	bool secured;		/* TLS or loopback-trusted */
	bool closing;
	bool in_dispatch;
	bool read_paused;	/* back-pressure: output over high water */
	bool greeted;
	/* RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE, SEARCH. */
	bool cmd_allows_expunge;
	/* The running command's store change is durable (set while a
	 * writer job's finish runs): its tagged OK goes out even when the
	 * selected mailbox was deleted meanwhile, then the BYE. */
	bool cmd_committed;
	struct event *close_ev;	/* deferred free after imap_session_close */
	struct event *delay_ev;	/* a login held back (imap-throttle.h) */
	struct event *preauth_ev;	/* from connect to login */
	struct event *keepalive_ev;	/* "* OK Still here" during IDLE */
	bool proxy_checked;	/* the first bytes are no PROXY header */
	bool proxied;		/* a trusted proxy's PROXY header named ip */
	enum imap_state state;
	enum imap_io_mode io;
	time_t started;
	char addr[64];		/* "ip:port" */
	char ip[48];		/* for per-IP accounting */
	unsigned bad_in_row;
	unsigned auth_failures;	/* failed logins on this connection */
	char *auth_user;	/* the name of the login under way */
	char *auth_pass;	/* its password while held back (wiped) */
	uint64_t held;		/* parser bytes charged to the budget */

	char *user;		/* after login */
	uint32_t user_id;
	char *client_id;	/* from ID */

	/* The command being run (valid while in a mode that spans events). */
	char *tag;		/* owned (xstrdup) while a command spans events */
	struct imap_parser *parser;	/* on demand */
	struct imap_auth_request *auth_req;
	struct imap_job *job;		/* while io is IMAP_IO_JOB */
	imap_cont_fn *cont;
	void *cont_ctx;
	void (*cont_free)(void *ctx);

	/* ENABLE bookkeeping (CONDSTORE/QRESYNC come with issue 7). */
	bool enabled_condstore;
	bool enabled_qresync;
	bool enabled_utf8;
	/* ENABLE IMAP4rev2 (RFC 9051): ESEARCH for SEARCH, no \Recent,
	 * UTF-8 mailbox names, LIST in SELECT's answer. */
	bool enabled_rev2;

	struct imap_selected *sel;	/* NULL unless SELECTED */
	struct imap_notify *notify;	/* NOTIFY SET (imap-notify.h) */
	struct imap_rawlog *rawlog;	/* [imap] rawlog_dir set */
	struct imap_session_trace *trace;	/* NULL: not traced */

	/* COMPRESS=DEFLATE (imap-compress.h): once active, responses go to
	 * zout (uncompressed) and are deflated into the bufferevent at the
	 * end of the loop iteration (zflush_ev); the client's bytes are
	 * inflated from the bufferevent's input into zin. */
	struct imap_compress *z;
	struct evbuffer *zin, *zout;
	struct event *zflush_ev;
};

TAILQ_HEAD(imap_session_list, imap_session);
struct imap_proxy_wait;
TAILQ_HEAD(imap_proxy_wait_list, imap_proxy_wait);
struct imap_proxy_net;
struct imap_sortcache;

/* ---- server internals the sessions use (imap-server.c) ---- */

struct imap_server {
	struct event_base *base;
	struct store *store;
	SSL_CTX *ssl_ctx;
	bool loopback_is_secure;
	bool allow_plaintext;
	bool fold_user_names;
	struct imap_server_limits limits;
	imap_auth_fn *auth;
	void *auth_ctx;

	struct evconnlistener **listeners;
	bool *listener_tls;
	size_t listener_count;
	char **plain_addrs, **tls_addrs;
	int plain_port, tls_port;

	struct imap_session_list sessions;
	unsigned next_id;
	struct imap_ip_count *ip_counts;	/* small hash, see imap-server.c */
	size_t ip_buckets;
	struct imap_throttle *throttle;	/* failed logins (imap-throttle.h) */
	unsigned preauth;		/* sessions not logged in now */

	struct arena *scratch;	/* per command, reset after each */
	struct imap_recent *recent;	/* \Recent claims (imap-recent.h) */
	struct imap_sortcache *sort_cache;	/* SORT's ranks (imap-sortcache.h) */
	struct workq *workq;		/* borrowed; NULL: work runs inline */

	struct imap_server_stats stats;
	char *rawlog_dir;	/* NULL: no protocol trace (imap-rawlog.h) */
	char *spool_dir;	/* APPEND spool (imap-spool.h) */
	bool shutting_down;
	char *shutdown_reason;
	void (*shutdown_done)(void *arg);
	void *shutdown_arg;
	struct event *shutdown_timer;
	struct imap_trace_reg *trace;	/* users traced (session-trace.c) */

	/* PROXY protocol listeners (imap-proxy.c) */
	char **proxy_addrs;
	int proxy_port;
	struct imap_proxy_net *proxy_nets;	/* trusted peers */
	size_t proxy_net_count;
	struct imap_proxy_wait_list proxy_waits;	/* header not read yet */
	unsigned proxy_wait_count;
	/* auth_http's login tickets (borrowed; NULL: none taken) */
	struct login_tickets *tickets;
};

void imap_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t size,
    int *port_r);
void imap_server_session_added(struct imap_server *srv,
    struct imap_session *s);
void imap_server_session_gone(struct imap_server *srv,
    struct imap_session *s);
/* The session logged in: it no longer counts as pre-auth. */
void imap_server_session_authed(struct imap_server *srv,
    struct imap_session *s);
unsigned imap_server_user_sessions(struct imap_server *srv,
    const char *user);

struct imap_auth_request *imap_auth_request_new(struct imap_session *s);
/* A login ticket (login-ticket.h) as the password of a proxied session:
 * true when it was a good one and req is answered; false to check pass
 * as a password (not a ticket, or a refused one, logged). */
bool imap_server_ticket_login(struct imap_session *s, const char *user,
    const char *pass, struct imap_auth_request *req);

/* Applies the session caps to a new connection from the client sa (the
 * socket's peer is link) and starts its session, or refuses it (BYE,
 * closed). Takes fd over. */
struct imap_session *imap_server_admit(struct imap_server *srv, int fd,
    const struct sockaddr *sa, const struct sockaddr *link, bool tls);

/* ---- PROXY protocol (imap-proxy.c) ---- */

/* Reads the trusted networks: 0, or -1 with *error_r. */
int imap_proxy_setup(struct imap_server *srv, const char *const *trusted,
    const char **error_r);
/* A connection on a PROXY listener: refused unless its peer is trusted,
 * else its header is read (bounded in time and size), then the session
 * is admitted for the client it carries. Takes fd over. */
void imap_proxy_accept(struct imap_server *srv, int fd,
    const struct sockaddr *peer, int peerlen);
/* Closes every connection still waiting for its header (shutdown). */
void imap_proxy_close_all(struct imap_server *srv);
void imap_proxy_free(struct imap_server *srv);
/* Before a plain connection's first command: a PROXY header from a peer
 * that may not send one is refused with a BYE (true: the session is
 * closing, or more bytes are needed to tell; read nothing yet). */
bool imap_proxy_refuse_header(struct imap_session *s);

/* ---- protocol trace (imap-session-trace.c) ---- */

/* Logged in: traced when the admin traces the user. */
void imap_trace_session_login(struct imap_session *s);
/* The bufferevent was replaced (STARTTLS): follow the new one. */
void imap_trace_session_rebind(struct imap_session *s);
/* The session goes (from imap_server_session_gone). */
void imap_trace_session_free(struct imap_session *s);
void imap_trace_reg_free(struct imap_server *srv);

/* ---- session (imap-session.c) ---- */

/* LOGIN / AUTHENTICATE with these credentials (copied): after the delay
 * the failure table asks for (a timer, nothing waits), the auth hook;
 * the session reads nothing until it answered. */
void imap_session_begin_login(struct imap_session *s, const char *tag,
    const char *user, const char *pass);

/* The auth hook answered (imap_auth_request_done). */
void imap_session_auth_finished(struct imap_session *s,
    enum imap_auth_result result, const char *user);

/* sa is the client (the address a PROXY header carried, else the
 * peer); link the socket's own peer, whose address decides whether the
 * connection counts as secure (loopback). */
struct imap_session *imap_session_new(struct imap_server *srv, int fd,
    const struct sockaddr *sa, const struct sockaddr *link,
    bool implicit_tls);
/* Marks closing: stops reading, flushes output, then frees. */
void imap_session_close(struct imap_session *s);
/* Frees at once (from the server's teardown or an event callback). */
void imap_session_free(struct imap_session *s);

/* Output helpers. imap_session_out() is where responses go: the
 * bufferevent's output, or the uncompressed side of COMPRESS. */
struct evbuffer *imap_session_out(struct imap_session *s);
/* Turns COMPRESS=DEFLATE on with z (taken over): everything written from
 * now on is compressed, everything read inflated. */
struct imap_compress;
void imap_session_start_compress(struct imap_session *s,
    struct imap_compress *z);
void imap_session_printf(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_session_write(struct imap_session *s, const void *data,
    size_t len);
/* Appends sb's bytes to the output and empties sb. */
void imap_session_write_sb(struct imap_session *s, struct strbuf *sb);
/* LOGIN/AUTHENTICATE allowed here (TLS, trusted loopback or config). */
bool imap_session_login_allowed(const struct imap_session *s);
/* Writes "tag OK|NO|BAD text\r\n" and ends the command. */
void imap_session_tagged(struct imap_session *s, const char *tag,
    const char *status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* True when the client's output buffer is over the high-water mark. */
bool imap_session_output_full(struct imap_session *s);

/* The largest message APPEND takes (APPENDLIMIT, RFC 7889). */
uint64_t imap_session_append_limit(const struct imap_session *s);
/* The capability list for the current state (no leading "CAPABILITY "). */
const char *imap_session_capabilities(struct imap_session *s);

/*
 * Hands the command's store change to the writer thread: apply(store, job)
 * runs there (job is the ctx), then job->finish on the loop with rc, cls
 * and error set. key: the user; the change events carry the session as
 * origin. bytes: about how many the change writes (0 for small ones).
 */
void imap_session_submit_write(struct imap_session *s, const char *tag,
    struct imap_job *job, size_t bytes, store_apply_fn *apply);
/* Hands the command's heavy step to a worker: job->wq.run (set by the
 * caller) runs there, then job->finish on the loop (job->wq.cancelled
 * set if it never ran). Fairness key: the user (or the client address
 * before login). */
void imap_session_submit_work(struct imap_session *s, const char *tag,
    struct imap_job *job);
/* The fairness key of the session's work: its user, else its address. */
uint64_t imap_session_work_key(const struct imap_session *s);

/* Starts streaming: the command continues in fn when output drains. */
void imap_session_continue_with(struct imap_session *s, imap_cont_fn *fn,
    void *ctx, void (*ctx_free)(void *ctx));

/* TLS upgrade after "OK Begin TLS" was queued. */
void imap_session_starttls(struct imap_session *s);

/* Selected mailbox view. */
void imap_session_unselect(struct imap_session *s);
/* Sends pending untagged updates; expunges only when allow_expunge. When
 * the selected mailbox was deleted it writes BYE and closes instead. */
void imap_session_send_updates(struct imap_session *s, bool allow_expunge);
/* "* FLAGS" and PERMANENTFLAGS when the selected mailbox got keywords
 * since the client was last told (also before each command runs, so a
 * command's FETCH never shows a keyword the client was not told of). */
void imap_session_send_keyword_updates(struct imap_session *s);
/* A snapshot showed the selected mailbox's keyword table (kw, kwn): if
 * it has keywords the client was not told of yet (a commit whose event
 * has not reached the loop), the untagged FLAGS and PERMANENTFLAGS go
 * out now, before any FETCH that shows them. Never leaves one out: a
 * FETCH without a keyword the message has, under its MODSEQ, would give
 * the client two states for one MODSEQ. */
void imap_session_keywords_seen(struct imap_session *s,
    const char *const *kw, size_t kwn);
/* The selected mailbox was deleted by someone else: "* BYE", close. */
void imap_session_bye_deleted(struct imap_session *s);
/* Feed from the store (fanned out by the server). */
void imap_session_notify(struct imap_session *s,
    const struct store_change *ch, bool self);
/* Sequence number of uid in the view, 0 if absent. */
uint32_t imap_selected_seq(const struct imap_selected *sel, uint32_t uid);

#endif
