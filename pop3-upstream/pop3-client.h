/*
 * pop3-client — one poll of one POP3 account: connect, TLS, greeting,
 * CAPA, STLS, authentication, UIDL/LIST, RETR into the store in batches,
 * DELE after the commit, QUIT. A session is a state machine on a libevent
 * bufferevent (plain, or an OpenSSL filter for POP3S and after STLS).
 *
 * Delivery invariant (DESIGN.md): messages are delivered in batches
 * (POP3_CLIENT_BATCH_MSGS / _BYTES) with their UIDLs in ONE store
 * transaction; DELE is sent only for messages whose commit returned (or
 * that the ledger already holds), and DELE only takes effect with the QUIT
 * at the end of the session. Anything that goes wrong before QUIT +OK
 * leaves every message on the server; the ledger makes the next poll skip
 * what was committed.
 *
 * Memory per session: a message is held whole while it is received, up to
 * the account's size limit (never above STORE_MESSAGE_SIZE_MAX; beyond it
 * the data is read and dropped and the message is left on the server with
 * a logged reason); a batch holds at most POP3_CLIENT_BATCH_BYTES plus one
 * message; pipelined RETRs in flight are bounded by POP3_CLIENT_PIPELINE_MAX
 * and POP3_CLIENT_PIPELINE_BYTES of listed size; every response line by
 * POP3_LINE_MAX.
 *
 * Authentication, `auto`: APOP when the greeting has a timestamp (the
 * password never crosses the wire, even inside TLS), else AUTH PLAIN, AUTH
 * LOGIN, then USER/PASS, whichever the server offers first in that order.
 * AUTH CRAM-MD5 is used only when configured (auth=cram-md5): a server may
 * announce it yet be unable to check it (hashed passwords), which `auto`
 * would turn into an authentication failure.
 * Without TLS (account tls none) the same order applies: the account
 * asked for clear text.
 *
 * UIDL fallback: when the server has no UIDL command, or UIDL and LIST
 * disagree, or a UIDL line is malformed, every message is keyed by a
 * SHA-256 of its header block and its LIST size, plus an occurrence number
 * among identical keys in the listing ("H <hex>/<n>"; the space cannot
 * occur in a real UIDL). The header block comes from TOP n 0 when the
 * server has TOP, otherwise (or when TOP fails) from RETR of every message
 * (costly; stated in the status). A single unusable UIDL (empty, over 70
 * bytes, bad bytes, or a duplicate: the later messages of the listing)
 * re-keys only its own message that way (from TOP n 0 when the server has
 * TOP, so a known one is not downloaded again; a new one is keyed from its
 * RETR bytes), so the others keep the keys the ledger knows.
 *
 * No DELE without a fetch: a message already in the ledger (stored, not
 * marked deleted upstream) that a mode wants deleted is fetched first and
 * compared with the ledger's size and fingerprint; it is DELEd when it
 * matches and stored as new when it does not (a reused UIDL).
 *
 * A UIDL listed again after its DELE + QUIT succeeded is RETRieved and
 * compared with what the ledger recorded at delivery (size and
 * fingerprint; the stored copy may be moved or expunged by now):
 * different bytes mean the server reuses UIDLs, and it is delivered as a
 * new message, replacing the old ledger entry in the same transaction;
 * the same bytes mean the server kept what it said it deleted, and it is
 * deleted again, not delivered twice. The strategy in use is reported
 * in upstream_status.uidl_strategy and logged once per poll.
 *
 * A batch the store refuses for something one message can cause
 * (INVALID, EXISTS, LIMIT) is retried message by message; a refused one
 * stays on the server (no DELE), is logged (event=message-refused) and
 * named in the poll's error, and is tried again next poll.
 */
#ifndef POPGATE_POP3_CLIENT_H
#define POPGATE_POP3_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "pop3-upstream/upstream.h"

struct event_base;
struct evdns_base;
struct store;

/* Messages per store transaction: small enough that the first mail of a
 * large import is visible within a second, large enough to amortise the
 * commit's fsync. */
#define POP3_CLIENT_BATCH_MSGS 200
/* Bytes of message data held for one batch before it is committed. */
#define POP3_CLIENT_BATCH_BYTES (16u * 1024 * 1024)
/* A batch is committed at the latest this long after its first message. */
#define POP3_CLIENT_BATCH_MS 1000
/* Default per-phase timeouts (ms). */
#define POP3_CLIENT_CONNECT_MS 30000
#define POP3_CLIENT_TLS_MS 30000
#define POP3_CLIENT_GREETING_MS 30000
#define POP3_CLIENT_COMMAND_MS 60000
#define POP3_CLIENT_STALL_MS 60000
/* A whole poll at most (a hostile server streaming endless data that
 * never ends a message or a listing): the messages committed so far are
 * kept, nothing else is deleted, the account backs off. An import larger
 * than one poll goes on at the next poll, from the ledger. */
#define POP3_CLIENT_POLL_MS (60u * 60 * 1000)
/* Slowest RETR data accepted (bytes/s): a RETR's deadline is the command
 * timeout plus its LIST size at this rate (64 MB: about 70 minutes). */
#define POP3_CLIENT_RETR_MIN_RATE (16u * 1024)
/* Pipelined RETR/TOP/DELE commands in flight when the server announces
 * PIPELINING (RFC 2449); 1 otherwise. Deep enough that the server keeps
 * streaming (into the socket buffers) while a batch commits. */
#define POP3_CLIENT_PIPELINE_MAX 64
/* ... and at most this many listed bytes of RETR data in flight, which
 * bounds what the server can make us buffer beyond the current message. */
#define POP3_CLIENT_PIPELINE_BYTES (8u * 1024 * 1024)

enum pop3_outcome {
	POP3_OUTCOME_OK = 0,
	POP3_OUTCOME_TEMP,	/* network, timeout, IN-USE, SYS/TEMP: back off */
	POP3_OUTCOME_AUTH,	/* credentials refused: counts for the breaker */
	POP3_OUTCOME_LOGIN_DELAY, /* wait result.login_delay seconds */
	POP3_OUTCOME_TLS,	/* TLS required but unavailable, or a bad
				   certificate: nothing was sent */
	POP3_OUTCOME_PROTOCOL,	/* the server broke the protocol */
	POP3_OUTCOME_STORE,	/* the store refused (map/disk full): delivery
				   stops for this account */
	POP3_OUTCOME_ABORTED,	/* pop3_session_abort() */
	POP3_OUTCOME_QUOTA,	/* the user is over quota: what fitted is
				   stored, the rest stays on the server */
};

const char *pop3_outcome_name(enum pop3_outcome outcome);

struct pop3_result {
	enum pop3_outcome outcome;
	char error[UPSTREAM_ERROR_MAX];	/* escaped; "" when ok */
	uint32_t login_delay;		/* seconds the server wants between
					   logins (CAPA LOGIN-DELAY); 0: none */
	uint32_t fetched;		/* messages stored in this session */
	uint64_t fetched_bytes;
	uint32_t known;			/* known by content (RETRieved) or
					   by header (known_top), not
					   delivered (pop3-deliver.h) */
	uint32_t known_top;		/* of them: by TOP n 0, no RETR */
	uint32_t deleted;		/* DELE applied (QUIT +OK) */
	uint32_t skipped;		/* over the size limit */
	uint32_t size_mismatch;		/* LIST size != received size */
	uint32_t checked_top;		/* DELEs verified by TOP n 0 against
					   the ledger's header digest */
	uint32_t checked_retr;		/* DELEs verified by a RETR */
	uint32_t refused;		/* refused by the store one by one
					   (INVALID/EXISTS/LIMIT): left on
					   the server, in error */
};

/* What a session needs from its owner; borrowed for the session's life. */
struct workq;
struct pop3_client_env {
	struct event_base *base;
	struct evdns_base *dns;		/* may be NULL: numeric hosts only */
	struct store *store;
	/* Parsing of fetched messages (NULL: on the loop, for tools);
	   their delivery goes to the store's writer thread when one runs. */
	struct workq *workq;
	/* The wall clock for delete-after decisions; NULL: time(). Tests
	   move it forward instead of waiting days. */
	time_t (*now)(void);
	/* Checks the credentials only (pass-through's login check): the
	   session connects, sets up and verifies TLS, logs in as for a
	   poll, then sends QUIT and ends OK; nothing is listed or fetched,
	   the store is not touched (store may be NULL). */
	bool login_only;
};

struct pop3_session;

/*
 * Called once when the session ends, from the event loop (never from
 * within pop3_session_start or pop3_session_abort). The session is freed
 * right after cb returns; cb must not free it.
 */
typedef void pop3_session_done_cb(void *arg, const struct pop3_result *result);

/*
 * Starts a poll. acct and status are borrowed and must outlive the session
 * (the session updates status->import_* and uidl_strategy while it runs).
 * -1 only for a configuration that cannot work (bad fingerprint, TLS
 * context); network errors come through cb.
 */
int pop3_session_start(const struct pop3_client_env *env,
    const struct upstream_account *acct, struct upstream_status *status,
    pop3_session_done_cb *cb, void *arg, struct pop3_session **session_r,
    const char **error_r);

/* Closes the connection without QUIT (so no DELE takes effect) and frees
 * the session without calling cb. Sets *sp to NULL; accepts NULL. Must not
 * be called from within cb. */
void pop3_session_abort(struct pop3_session **sp);

/* How long a stopping session waits for the answers to its DELEs and
 * QUIT before it closes anyway (then no DELE of it takes effect). */
#define POP3_CLIENT_STOP_MS 4000

/*
 * Stops a session for a shutdown. One that has sent DELEs (each after its
 * message was durably committed) sends no more DELEs, sends QUIT once the
 * outstanding answers are in and waits for +OK, at most
 * POP3_CLIENT_STOP_MS, so the deletions take effect now rather than at a
 * later poll; it then ends through cb as usual and true is returned (*sp
 * stays valid until cb). Any other session (mid-RETR or earlier: nothing
 * of it is deleted) is closed at once like pop3_session_abort, without
 * cb: *sp is set to NULL and false returned. Accepts *sp NULL (false).
 */
bool pop3_session_stop(struct pop3_session **sp);

/* Longest CRAM-MD5 challenge accepted (decoded bytes; RFC 2195's are a
 * msg-id, well under 100). */
#define POP3_CRAM_CHALLENGE_MAX 512

/*
 * AUTH CRAM-MD5 (RFC 2195, explicit auth=cram-md5 only): the answer to
 * the server's base64 challenge, base64("<login> <hex HMAC-MD5 keyed by
 * the password>"), NUL-terminated into out. -1 (*error_r) for a challenge
 * that is not base64 or over the limit, or an answer over outsize.
 */
int pop3_cram_md5_response(const char *login, const char *password,
    const char *challenge_b64, size_t challenge_len, char *out,
    size_t outsize, const char **error_r);

struct pop3_scram_server_first;

/*
 * SCRAM (RFC 5802; SHA-256 per RFC 7677 when sha256): from the password,
 * the server-first message's salt and count, and the AuthMessage
 * ("client-first-bare,server-first,client-final-without-proof"), the
 * ClientProof and the ServerSignature the server must send back, each
 * *hlen_r bytes (20 or 32) into buffers of EVP_MAX_MD_SIZE. Runs
 * sf->iterations rounds of PBKDF2 (bounded by POP3_SCRAM_ITER_MAX).
 */
int pop3_scram_compute(bool sha256, const char *password,
    const struct pop3_scram_server_first *sf, const char *authmsg,
    unsigned char *proof, unsigned char *server_sig, size_t *hlen_r);

#endif
