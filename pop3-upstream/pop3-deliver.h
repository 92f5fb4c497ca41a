/*
 * pop3-deliver — the POP3 client's side of the store: the target mailbox,
 * ledger look-ups, batched delivery (message bytes, parsed structure,
 * INTERNALDATE and the UIDL in ONE transaction) and marking UIDLs deleted
 * upstream. Kept apart from the protocol code so the client's state
 * machine reads as protocol, and so the store API is used in one place.
 *
 * Ledger keys: the account id plus the UIDL bytes (or the client's
 * fallback key), binary-safe; never used as a path.
 */
#ifndef POPGATE_POP3_DELIVER_H
#define POPGATE_POP3_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pop3-upstream/upstream.h"

struct store;
struct store_read;

struct pop3_deliver_msg {
	const char *data;	/* as the server sent it, unstuffed */
	size_t size;
	const char *uidl;
	size_t uidl_size;
	/* The UIDL is in the ledger as deleted upstream and the server
	   reused it: the new delivery replaces that entry in its own
	   transaction (so a failed delivery never loses the old one). */
	bool replace;
	/* The size LIST gave (kept in the ledger for the check before
	   DELE; 0: unknown, no header digest is kept). */
	uint64_t list_size;
};

/* Longest store error text kept for a refused message. */
#define POP3_DELIVER_ERROR_MAX 160

/* What became of one message of a batch. */
struct pop3_deliver_outcome {
	bool stored;
	/* stored: not delivered now, because the ledger showed these very
	   bytes delivered earlier from this account under a UIDL the server
	   no longer lists (renumbered UIDLs; store_ledger_claim_digest) */
	bool known;
	/* !stored: why the store refused this message on its own
	   (INVALID, EXISTS, LIMIT); STORE_ERR_NONE: not tried (the batch
	   stopped on a store failure). */
	int refused;		/* enum store_error */
	char error[POP3_DELIVER_ERROR_MAX];
};

struct pop3_ledger_info {
	int64_t seen;		/* first seen (time()) */
	bool delivered;		/* stored in a mailbox (not just recorded) */
	bool still_present;	/* the delivered message still exists, at its
				   UID or moved/copied elsewhere (mirror mode:
				   false means the user expunged it) */
	bool deleted_upstream;
	uint32_t mailbox_id;	/* where it was delivered (0: nowhere) */
	uint32_t uid;
	/* What was delivered (from the ledger itself, so still valid after
	   the user moved or expunged the message); older entries lack it. */
	bool has_fingerprint;
	uint64_t body_size;
	uint64_t body_hash;
	/* The body delivered (newer entries): while the user still has it,
	   same_body compares bytes, not only the fingerprint. */
	bool has_body;
	uint64_t body_id;
	/* The digest of its header block (pop3_deliver_head_digest) and the
	   size LIST gave at delivery (newer entries): a TOP n 0 with the
	   same digest and a LIST with the same size verify a DELE without
	   a RETR. */
	bool has_head;
	unsigned char head_digest[32];
	uint64_t list_size;
	/* The UIDL was recognised by its header block (never RETRieved
	   under it): a DELE due is verified by RETR, not by TOP. */
	bool by_head;
};

/*
 * The digest that identifies a message by its header block (for the
 * check before DELE): SHA-256 of the bytes up to and including the empty
 * line that ends the header (pop3_header_length; the whole message when
 * there is none), after dot-unstuffing (data as the session reads it),
 * with every CRLF taken as LF. The same for the header part of a RETR and
 * for a TOP n 0 of the same message on a server that sends both alike.
 * out: 32 bytes.
 */
void pop3_deliver_head_digest(const char *data, size_t size,
    unsigned char out[32]);

/* Finds (creating if missing) the account's target mailbox. */
int pop3_deliver_mailbox(struct store *store,
    const struct upstream_account *acct, uint32_t *mailbox_id_r,
    const char **error_r);

/* 0 found, 1 (STORE_NOT_FOUND) new, -1 store error. */
int pop3_deliver_ledger_lookup(struct store_read *r,
    const struct upstream_account *acct, const char *uidl, size_t uidl_size,
    struct pop3_ledger_info *info_r, const char **error_r);

/*
 * Delivers count messages (1..STORE_DELIVER_BATCH_MAX) with their ledger
 * entries in one durable transaction. When the store refuses the batch
 * for something one message can cause (INVALID, EXISTS, LIMIT), each
 * message is retried in a transaction of its own, so one bad message
 * cannot block the others; out[i] (count slots, caller's) says what
 * became of each. 0: every message was stored or refused on its own.
 * -1: the store failed (NOSPACE, IO: *error_r); messages before the
 * failure may have been stored one by one (out[i].stored), none after.
 * Runs on the writer thread when one runs, waiting for it (tools, tests).
 */
int pop3_deliver_batch(struct store *store,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, size_t count,
    struct pop3_deliver_outcome *out, const char **error_r);

/*
 * The UIDLs the server lists in one session: immutable once made, shared
 * by the session and its batches (reference counted, any thread). With
 * it, a batch recognises messages delivered earlier under UIDLs that are
 * no longer listed (pop3_deliver_batch_submit).
 */
struct pop3_deliver_listing;
/* Copies the keys. */
struct pop3_deliver_listing *pop3_deliver_listing_new(
    const char *const *uidls, const size_t *sizes, size_t count);
void pop3_deliver_listing_unref(struct pop3_deliver_listing **listing);
/* The numeric address the session reached the server at: the mailbox is
 * known by it as well as by the account's host name, so that deliveries
 * made through another name of that address are found
 * (store_ledger_mailbox_alias). Before the listing is shared. */
void pop3_deliver_listing_set_address(struct pop3_deliver_listing *listing,
    const struct upstream_account *acct, const char *address);

/*
 * The same, off the loop: the messages are parsed on a worker (workq may
 * be NULL: then in the call) and stored by the store's writer thread;
 * done(arg, ...) is called on the loop with what became of each message
 * (rc -1 and error: the store failed, as pop3_deliver_batch). data[i] is
 * msgs[i].data, malloc'd, taken over (freed by the job); msgs is copied.
 * *job_r (set before the job can run) serves pop3_deliver_job_detach()
 * until done; without a pool and a writer, done is called before the
 * return.
 *
 * Content identity: the worker also takes each message's SHA-256 (kept
 * in its ledger entry). With listing (NULL: none; the job takes a
 * reference), a message whose digest matches an earlier delivery of this
 * account whose UIDL the listing lacks is not delivered again: its UIDL
 * takes over that ledger entry (out[i].known).
 */
struct workq;
struct pop3_deliver_job;
typedef void pop3_deliver_done_fn(void *arg, int rc,
    const struct pop3_deliver_outcome *out, size_t count, const char *error);
void pop3_deliver_batch_submit(struct store *store, struct workq *workq,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, char **data, size_t count,
    struct pop3_deliver_listing *listing, pop3_deliver_done_fn *done,
    void *arg, struct pop3_deliver_job **job_r);
/* The requester is gone: the job still completes (what it stores stays
 * stored, with its ledger entries, and nothing is deleted upstream for
 * it) but done is not called. */
void pop3_deliver_job_detach(struct pop3_deliver_job *job);

/* pop3_deliver_same_body(): cannot tell (see there). */
#define POP3_DELIVER_SAME_UNKNOWN 2

/* 1 when the message delivered earlier for a ledger entry (prev, from
 * pop3_deliver_ledger_lookup) has exactly these bytes, 0 when it differs,
 * -1 on a store error. Compares, in this order: the bytes of the body
 * delivered, while the user still has it (moved or copied counts); the
 * ledger's size and fingerprint (the message may since have been
 * expunged); only for entries without either, the bytes at prev's
 * mailbox/UID, and when that copy is gone too: POP3_DELIVER_SAME_UNKNOWN. */
int pop3_deliver_same_body(struct store *store,
    const struct upstream_account *acct,
    const struct pop3_ledger_info *prev, const char *data, size_t size,
    const char **error_r);

/* After QUIT +OK: the ledger remembers these as deleted upstream.
 * Waits for the writer (tools, tests). */
int pop3_deliver_mark_deleted(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, const char **error_r);

/* The same through the writer without waiting: done(arg, 0 or -1,
 * error) on the loop. The UIDLs are copied. Returns a handle for
 * pop3_deliver_mark_job_detach(), or NULL when there is no writer (then
 * done was called before the return). */
struct pop3_mark_job;
typedef void pop3_mark_done_fn(void *arg, int rc, const char *error);
struct pop3_mark_job *pop3_deliver_mark_deleted_submit(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, pop3_mark_done_fn *done,
    void *arg);
/* The requester is gone: the mark still commits, done is not called. */
void pop3_deliver_mark_job_detach(struct pop3_mark_job *job);

/*
 * Recognition by header (issue 15, session 4; docs/design-notes.md,
 * "Recognising a message by its header"): a message listed under a UIDL
 * the ledger does not know, whose TOP n 0 header block and LIST size
 * match one delivery of this upstream mailbox, is taken as that delivery
 * without a RETR.
 *
 * A delivery that may be claimed: its LIST size, header digest and
 * content digest.
 */
struct pop3_head_candidate {
	uint64_t list_size;
	unsigned char head[32];
	unsigned char digest[32];
};

/* Longest candidate table a session builds (beyond it, no message is
 * recognised by header in that session: all are RETRieved). */
#define POP3_HEAD_CANDIDATES_MAX 200000

/*
 * The deliveries of the account's upstream mailbox (any account name of
 * the user) that a new UIDL of this session could take over: delivered,
 * with a header digest and a content digest, LIST size one of sizes
 * (sorted ascending, n; taken over, freed by the job), and for this
 * account's own entries a UIDL the listing lacks. Found on a worker
 * (one read snapshot; workq NULL: in the call): done(arg, rc, cands,
 * count, us, error) on the loop, cands malloc'd (the callee's, sorted by
 * size, head, digest), us the walk's microseconds; rc 0, 1 when there
 * were more than POP3_HEAD_CANDIDATES_MAX (none given), -1 on a store
 * error. Returns a handle for pop3_deliver_cand_job_detach(), or NULL
 * when done was called before the return.
 */
struct pop3_cand_job;
typedef void pop3_cand_done_fn(void *arg, int rc,
    struct pop3_head_candidate *cands, size_t count, long us,
    const char *error);
struct pop3_cand_job *pop3_deliver_head_candidates_submit(struct store *store,
    struct workq *workq, const struct upstream_account *acct,
    struct pop3_deliver_listing *listing, uint64_t *sizes, size_t n,
    pop3_cand_done_fn *done, void *arg);
/* The requester is gone: the job finishes, done is not called. */
void pop3_deliver_cand_job_detach(struct pop3_cand_job *job);

/* One claim by header to make: the new UIDL, what TOP and LIST gave, and
 * the content digest of the one candidate it matched. */
struct pop3_head_claim {
	const char *uidl;
	size_t uidl_size;
	uint64_t list_size;
	unsigned char head[32];
	unsigned char digest[32];
};

/*
 * Makes the claims on the writer (store_ledger_claim_head, one each,
 * against the listing), without waiting: done(arg, 0 or -1, claimed[],
 * count, error) on the loop; -1: the store failed and nothing was
 * claimed. The claims are copied; the job takes a listing reference.
 * Returns a handle for pop3_deliver_claim_job_detach(), or NULL when
 * there is no writer (done was called before the return).
 */
struct pop3_claim_job;
typedef void pop3_claim_done_fn(void *arg, int rc, const bool *claimed,
    size_t count, const char *error);
struct pop3_claim_job *pop3_deliver_claim_heads_submit(struct store *store,
    const struct upstream_account *acct, struct pop3_deliver_listing *listing,
    const struct pop3_head_claim *claims, size_t count,
    pop3_claim_done_fn *done, void *arg);
/* The requester is gone: the claims still commit, done is not called. */
void pop3_deliver_claim_job_detach(struct pop3_claim_job *job);

#endif
