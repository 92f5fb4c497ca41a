/*
 * pop3-session — private to pop3-upstream: the state of one POP3 session
 * (one poll of one account), shared by the three files that implement
 * pop3-client.h:
 *
 *   pop3-client.c  the session: connection, command queue, reading and
 *                  dispatching responses, timeouts, start/abort
 *   pop3-login.c   TLS (POP3S, STLS, verification, pinning) and the
 *                  authentication mechanisms
 *   pop3-fetch.c   the message table (LIST/UIDL, the UIDL fallback),
 *                  ledger decisions, RETR into batches, delivery, DELE/QUIT
 *
 * Nothing outside pop3-upstream/ includes this header.
 */
#ifndef POPGATE_POP3_SESSION_H
#define POPGATE_POP3_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <netdb.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "pop3-upstream/pop3-client.h"
#include "pop3-upstream/pop3-deliver.h"
#include "pop3-upstream/pop3-parse.h"
#include "pop3-upstream/pop3-parse-sasl.h"
#include "strbuf.h"

/* A RETR or multi-line response that brings fewer than this many bytes
 * within stall_ms counts as stalled (so a server dripping a byte a second
 * cannot hold a session forever). */
#define POP3_CLIENT_STALL_BYTES 4096
/* Longest command line we send (credentials are checked for CR/LF). */
#define POP3_CLIENT_CMD_MAX 1024
/* Longest SASL response line: an OAuth response (login, host and an
 * access token of UPSTREAM_TOKEN_MAX) in base64. RFC 5034 bounds only the
 * AUTH command itself (255 octets with its initial response); a longer
 * response goes on a continuation line. */
#define POP3_CLIENT_SASL_LINE_MAX \
	(4 * ((UPSTREAM_TOKEN_MAX + UPSTREAM_LOGIN_MAX * 3 + 400 + 2) / 3) + 8)
/* The longest AUTH command that carries its initial response (RFC 5034
 * 4: otherwise the response waits for the server's empty challenge). */
#define POP3_CLIENT_AUTH_IR_MAX 255

enum cmd_kind {
	CMD_GREETING = 0,
	CMD_CAPA,
	CMD_STLS,
	CMD_USER,
	CMD_PASS,
	CMD_APOP,
	CMD_AUTH,	/* AUTH PLAIN / AUTH LOGIN and its continuations */
	CMD_LIST,
	CMD_UIDL,
	CMD_TOP,
	CMD_RETR,
	CMD_DELE,
	CMD_QUIT,
};

/* How the response to the front command is being read. */
enum rmode {
	RMODE_STATUS = 0,	/* waiting for +OK / -ERR */
	RMODE_LINES,		/* multi-line, line by line (CAPA, LIST, UIDL) */
	RMODE_DATA,		/* multi-line data (RETR, TOP) */
};

enum phase {
	PHASE_CONNECT = 0,
	PHASE_TLS,
	PHASE_PROTOCOL,
	PHASE_DONE,
};

struct cmd {
	enum cmd_kind kind;
	uint32_t msg;	/* index into msgs for TOP/RETR/DELE */
};

enum msg_action {
	ACT_NONE = 0,
	ACT_FETCH,
	ACT_SKIP,	/* over the size limit */
	ACT_CHECK,	/* a DELE is due: TOP n 0 first, compared with the
			   ledger's header digest; RETR only if it differs */
	ACT_IDENT,	/* an unknown UIDL: TOP n 0 first, to recognise a
			   delivery of this mailbox by header; RETR if not */
};

struct msg {
	uint32_t msgno;
	uint64_t list_size;
	char *key;		/* UIDL or fallback key (owned) */
	size_t key_len;
	enum msg_action action;
	bool want_dele;
	bool dele_sent;
	bool dele_ok;
	bool reused;		/* its UIDL was deleted upstream before */
	struct pop3_ledger_info prev;	/* reused: the earlier delivery */
	bool verify;		/* reused because a DELE is due for a stored
				   message: fetched to compare first */
	bool verified;		/* fetched and found to be the stored one */
	bool refused;		/* the store refused it (reported) */
	bool hash_key;		/* its UIDL is unusable (flawed, or a later
				   duplicate): keyed by content on arrival,
				   the others keep their UIDLs */
	bool ident_ok;		/* ACT_IDENT: TOP gave a header block with
				   Message-ID and Date, digest in ident_head */
	unsigned char ident_head[32];
};

struct batch_item {
	uint32_t msg;
	char *data;
	size_t size;
};

/* Batches handed to the worker and the writer and not yet stored, per
 * session: no new RETR is sent while this many wait (bounded memory:
 * those already in the pipeline may add one more batch), and DELE and
 * QUIT wait until none does. */
#define POP3_BATCHES_INFLIGHT_MAX 3

/* A batch on its way to the store (pop3_deliver_batch_submit). */
struct inflight {
	struct inflight *next;
	struct pop3_session *s;
	struct pop3_deliver_job *job;
	uint32_t *msg_idx;	/* s->msgs index of each message */
	size_t *sizes;		/* bytes of each */
	size_t count;
	size_t bytes;
	struct timeval t0;
};

struct pop3_session {
	struct pop3_client_env env;
	const struct upstream_account *acct;
	struct upstream_status *status;
	pop3_session_done_cb *cb;
	void *cb_arg;
	char log_id[UPSTREAM_ID_MAX * 4 + 8];

	struct bufferevent *bev;	/* plain socket or TLS filter on top */
	/* the host's addresses, resolved on a worker (getaddrinfo) */
	struct resolve_job *resolve_job;
	struct addrinfo *addrs, *addr_next;
	SSL_CTX *ssl_ctx;
	bool tls_active;
	bool stls_pending;		/* TLS handshake after STLS */
	struct event *timer;
	struct event *poll_timer;	/* the whole poll's deadline */
	struct event *retr_timer;	/* the current RETR's deadline */
	struct timeval retr_start;
	struct event *finish_ev;
	enum phase phase;

	/* commands awaiting a response, in order */
	struct cmd queue[POP3_CLIENT_PIPELINE_MAX + 4];
	size_t q_head, q_len;
	enum rmode rmode;
	struct pop3_data data;
	struct strbuf body;		/* current RETR/TOP data */
	bool body_over_limit;
	uint64_t stall_progress;

	struct pop3_capa capa;
	char apop_ts[POP3_APOP_TIMESTAMP_MAX + 1];
	bool have_apop_ts;
	enum upstream_auth auth_used;
	int auth_step;
	bool auth_fallback;	/* auto: SCRAM failed; one more try without */
	/* SCRAM (pop3-login.c): our nonce, the client-first-bare and
	   server-first messages for the AuthMessage, and the signature the
	   server must prove itself with */
	char scram_cnonce[POP3_SCRAM_NONCE_LEN + 1];
	char *scram_first_bare;
	unsigned char scram_server_sig[EVP_MAX_MD_SIZE];
	size_t scram_hlen;
	bool scram_verified;
	struct scram_job *scram_job;	/* the proof, on a worker */
	/* what an OAuth server said when it refused a token (decoded, escaped) */
	char sasl_detail[160];

	struct msg *msgs;
	size_t msg_count, msg_alloc;
	bool uidl_ok;		/* usable UIDLs for every message */
	bool uidl_cmd_failed;
	const char *fallback_reason;
	const char *hash_key_reason;	/* why some messages are hash_key */
	bool key_from_retr;	/* fallback without TOP */
	bool top_partial;	/* TOP phase for the hash_key messages only */
	bool top_partial_failed;	/* ... and a TOP failed: RETR-keyed */
	uint32_t mailbox_id;

	/* work lists: indexes into msgs */
	uint32_t *todo;		/* TOP or RETR, in msgno order */
	size_t todo_count, todo_next, todo_done;
	uint64_t inflight_bytes;	/* listed sizes of RETRs in flight */
	bool top_phase;
	bool top_check_failed;	/* a TOP before DELE failed: RETR instead */
	/* recognition by header (pop3-deliver.h): done once per session,
	   before any RETR; the candidates while the TOPs run, then the
	   claims on the writer */
	bool ident_done, ident_phase;
	struct pop3_head_candidate *cands;
	size_t cand_count;
	uint32_t *claim_msgs;		/* msgs index of each claim */
	struct pop3_claim_job *claim_job;
	struct pop3_cand_job *cand_job;	/* the candidates, on a worker */
	/* the address connected to, numeric ("" unknown): a name of the
	   upstream mailbox beside the host name (pop3_fetch_note_peer) */
	char peer_addr[64];

	struct batch_item *batch;
	size_t batch_count;
	size_t batch_bytes;
	struct inflight *inflight;	/* list, oldest last */
	/* the keys listed this session, for content identity (made at the
	   first batch; NULL while a key is still unknown) */
	struct pop3_deliver_listing *listing;
	struct pop3_mark_job *mark_job;	/* the ledger's record of DELEs */
	size_t inflight_count;		/* batches, and the mark */
	struct timeval batch_start;
	struct timeval import_start;

	uint64_t size_limit;
	struct pop3_result result;
	bool finishing;
	bool stopping;		/* pop3_session_stop: QUIT after the DELEs */
	struct event *stop_timer;	/* bounds the wait for QUIT's +OK */
	const char *trace_mask;	/* what the trace shows for the next command */
};

extern const char *const pop3_cmd_names[];

/* ---- pop3-client.c ---- */
enum tmo {
	TMO_CONNECT = 0,
	TMO_TLS,
	TMO_GREETING,
	TMO_COMMAND,
	TMO_STALL,
};
void pop3_session_arm(struct pop3_session *s, enum tmo which);
void pop3_session_trace(struct pop3_session *s, char dir, const char *line,
    size_t len);
/* Marks the session done; it is freed from the event loop later. */
void pop3_session_finish(struct pop3_session *s);
/* Records the error (escaped text), logs it, finishes the session. */
void pop3_session_fail(struct pop3_session *s, enum pop3_outcome outcome,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends a command and queues the response it expects. */
void pop3_session_send(struct pop3_session *s, enum cmd_kind kind,
    uint32_t msg, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
struct cmd *pop3_session_front(struct pop3_session *s);
void pop3_session_pop(struct pop3_session *s);
void pop3_session_on_read(struct bufferevent *bev, void *arg);
void pop3_session_on_event(struct bufferevent *bev, short what, void *arg);

/* ---- pop3-login.c ---- */
int pop3_login_ssl_ctx(struct pop3_session *s, const char **error_r);
/* Wraps the connection in TLS (after connect for POP3S, after STLS +OK),
 * discarding whatever the server sent before the handshake. */
void pop3_login_start_tls(struct pop3_session *s);
void pop3_login_tls_done(struct pop3_session *s);
/* The session goes: a SCRAM proof being computed is not waited for. */
void pop3_login_detach(struct pop3_session *s);
void pop3_login_tls_failed(struct pop3_session *s);
void pop3_login_start_auth(struct pop3_session *s);
void pop3_login_sasl_continue(struct pop3_session *s);
void pop3_login_cram_md5_continue(struct pop3_session *s, const char *payload,
    size_t len);
/* A "+ " challenge to SCRAM, XOAUTH2 or OAUTHBEARER; true if handled. */
bool pop3_login_sasl_challenge(struct pop3_session *s, const char *payload,
    size_t len);
/* +OK to AUTH: false (the session failed) when the mechanism was not
 * complete (a SCRAM server that never proved itself). */
bool pop3_login_auth_ok(struct pop3_session *s);
/* Frees the SASL state (wiped). */
void pop3_login_clear(struct pop3_session *s);
void pop3_login_failed(struct pop3_session *s, const struct pop3_status *st);

/* ---- pop3-fetch.c ---- */
void pop3_fetch_batch_free(struct pop3_session *s);
/* Hands the batch gathered so far to the store (parsed on a worker,
 * stored by the writer); its outcome comes back later. */
void pop3_fetch_flush(struct pop3_session *s);
/* The session is freed with batches on their way: they still complete
 * (nothing is deleted upstream for them) without it. */
void pop3_fetch_detach_inflight(struct pop3_session *s);
void pop3_fetch_list_line(struct pop3_session *s, const char *line,
    size_t len);
void pop3_fetch_uidl_line(struct pop3_session *s, const char *line,
    size_t len);
void pop3_fetch_list_done(struct pop3_session *s);
void pop3_fetch_uidl_done(struct pop3_session *s);
/* Sends what the pipeline window allows; at the end flushes the batch,
 * sends the DELEs and QUIT. */
void pop3_fetch_pump(struct pop3_session *s);
void pop3_fetch_data_done(struct pop3_session *s, const struct cmd *c);
/* TOP answered -ERR: the fallback keys messages on RETR instead. */
void pop3_fetch_top_failed(struct pop3_session *s, const struct msg *m,
    const char *why);
void pop3_fetch_quit_done(struct pop3_session *s);
/* Connected: notes the server's address (s->peer_addr). */
void pop3_fetch_note_peer(struct pop3_session *s);
/* The keys the server lists, once all are known (NULL before). */
struct pop3_deliver_listing *pop3_fetch_listing(struct pop3_session *s);
/* LIST and UIDL are in: recognition, then the RETRs. */
void pop3_fetch_start_phase(struct pop3_session *s);

/* ---- pop3-ident.c ---- */
/* Looks at the unknown UIDLs that TOP may show to be deliveries already
 * made; true when it went to do so (pop3_fetch_start_phase runs again
 * once it is done), false when there is nothing to look at. */
bool pop3_ident_start(struct pop3_session *s);
/* The TOPs of the recognition phase are in: decide and claim. */
void pop3_ident_decide(struct pop3_session *s);

#endif
