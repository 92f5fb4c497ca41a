/*
 * store-private — what the store's own .c files share: the LMDB handles,
 * the record layouts, key encoding, and the write-transaction helpers.
 * Not for use outside store/.
 *
 * Keys are big-endian so that LMDB's byte order is numeric order; every
 * key starts with the 4-byte user id. Records are fixed-layout structs
 * copied with memcpy (LMDB values are not aligned); the file is therefore
 * specific to the machine's byte order, as LMDB's own format is.
 */
#ifndef POPGATE_STORE_PRIVATE_H
#define POPGATE_STORE_PRIVATE_H

#include <lmdb.h>
#include <pthread.h>

#include "store.h"

enum store_db {
	DB_META = 0,	/* "next_user_id" -> u32 */
	DB_USERS,	/* user -> struct store_userrec + name + hash */
	DB_USERNAMES,	/* name -> u32 user */
	DB_USERMETA,	/* user + key -> opaque */
	DB_MAILBOXES,	/* user + mbox -> struct store_mbrec + name */
	DB_MBNAMES,	/* user + name -> u32 mbox */
	DB_SUBS,	/* user + name -> "" */
	DB_KEYWORDS,	/* user + mbox + u8 id -> name */
	DB_MSGS,	/* user + mbox + uid -> struct store_msgrec */
	DB_VANISHED,	/* user + mbox + u64 modseq + uid -> "" */
	DB_BODYINFO,	/* user + u64 body -> struct store_bodyrec */
	DB_BODIES,	/* user + u64 body -> message bytes */
	DB_STRUCTS,	/* user + u64 body -> structure blob */
	DB_LEDGER,	/* user + u8 len + account + uidl -> ledgerrec */
	DB_FTS_SEGS,	/* user + u64 segment -> index segment blob */
	DB_FTS_SEGINFO,	/* user + u64 segment -> its counts (store-fts.c) */
	DB_DIGESTS,	/* user + u8 len + account + sha256 + uidl -> "" (older),
			   user + u8 0 + mailbox key + sha256 + u8 len +
			   account + uidl -> "" (by upstream mailbox) */
	DB_SORTKEYS,	/* user + u64 body -> SORT/THREAD keys (mail-sortkey) */
	DB_COUNT
};

struct store_userrec {
	uint32_t next_mailbox_id;
	uint32_t next_uidvalidity;
	uint64_t next_body_id;
	int64_t created;
	uint16_t name_len;
	uint16_t hash_len;
	uint32_t pad;
};

struct store_mbrec {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t messages;
	uint32_t unseen;
	uint32_t deleted;
	uint32_t role;
	uint32_t keyword_count;
	uint32_t name_len;
	uint64_t highestmodseq;
	uint64_t size;
};

struct store_msgrec {
	uint64_t modseq;
	uint64_t keywords[STORE_KEYWORD_WORDS];
	int64_t internaldate;
	uint64_t size;
	uint64_t body_id;
	uint32_t system;
	int32_t tz_offset_min;
	uint32_t structure_size;
	uint32_t pad;
};

struct store_bodyrec {
	uint64_t size;
	uint32_t refcount;
	uint32_t structure_size;
};

struct store_ledgerrec {
	uint32_t mailbox_id;
	uint32_t uid;
	int64_t seen;
	uint32_t flags;		/* STORE_LEDGER_F_* */
	uint32_t pad;
	/* Added later: records written before are 24 bytes long and read
	   with these zero (no STORE_LEDGER_F_FINGERPRINT). */
	uint64_t body_size;
	uint64_t body_hash;	/* store_body_fingerprint() */
	/* Added later still: records written before are 40 bytes long and
	   read with this zero (no STORE_LEDGER_F_BODY). */
	uint64_t body_id;	/* the body delivered, shared by its copies */
	/* Added for content identity (issue 15): records written before
	   are 48 bytes long (no STORE_LEDGER_F_DIGEST). */
	unsigned char digest[STORE_DIGEST_SIZE];	/* SHA-256 */
	/* Added for the cheap check before DELE (issue 15, session 3):
	   records written before are 80 bytes long (no
	   STORE_LEDGER_F_HEAD). */
	unsigned char head_digest[STORE_DIGEST_SIZE];	/* header block */
	uint64_t list_size;	/* the size LIST gave at delivery */
};
#define STORE_LEDGER_F_DELETED 0x1u
#define STORE_LEDGER_F_FINGERPRINT 0x2u	/* body_size/body_hash are set */
#define STORE_LEDGER_F_BODY 0x4u	/* body_id is set */
#define STORE_LEDGER_F_DIGEST 0x8u	/* digest is set (and indexed) */
#define STORE_LEDGER_F_HEAD 0x10u	/* head_digest/list_size are set */
/* The UIDL was recognised by its header block and size (TOP n 0), its
   bytes never seen under it: a DELE is verified by RETR, never by TOP. */
#define STORE_LEDGER_F_BY_HEAD 0x20u

/* A mailbox record with its name, as loaded for a write. */
struct store_mb {
	uint32_t id;
	struct store_mbrec rec;
	char name[STORE_MAILBOX_NAME_MAX + 1];
};

/* Keys: the longest is user + u8 + account + uidl (4+1+64+255). */
#define STORE_KEY_MAX 511

struct store_key {
	unsigned char b[STORE_KEY_MAX];
	size_t len;
};

struct store_event {
	struct store_change ch;
	uint32_t *uids;
	size_t uid_cap;
	char *name;
	char *old_name;
};

struct store_writer;

/*
 * Threads: env and dbi are set at open and read-only after, so any
 * thread may use them. change_cb/change_arg and in_change_cb belong to
 * the owner thread (the event loop). The events being gathered belong to
 * the thread that writes: the writer thread while one runs
 * (store-writer.c), else the one thread that uses the store. The last
 * error is per thread (store.c).
 */
struct store {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	void (*change_cb)(void *arg, const struct store_change *change);
	void *change_arg;
	/* Change events of the write in progress. Those of the current
	   call start at call_mark: a call merges only into its own events
	   and an aborted call drops only its own. */
	struct store_event *events;
	size_t event_count, event_cap;
	size_t call_mark;
	bool in_call;		/* between store_wbegin and commit/abort */
	bool in_change_cb;	/* writes are refused while set */
	struct store_writer *writer;	/* NULL: writes run in the caller */
	bool fts_enabled;	/* set at open, read-only after */
	/* Users whose index has a merge step to do, left for the writer's
	   idle moments (store-fts.c); the writer thread's only. */
	bool fts_defer_merges;
	uint32_t *fts_pending;
	size_t fts_npending;
	bool fts_pending_scanned;	/* rebuilt from the store yet */
	char *dir;
	uint64_t map_max;
	/* The map gate (store.h, "capacity"): open snapshots, and the
	   writer's wish to remap. gate_mu guards the four fields. */
	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cv;
	unsigned readers;
	bool grow_pending;
	bool growing;
	unsigned grows;
	time_t full_logged;	/* the writer's: last "map-full" line */
	_Atomic uint64_t default_quota;	/* bytes, 0: none */
};

/* The map gate (store.c): every read transaction is begun inside it, so
 * the writer can grow the map when none is open. */
void store_gate_enter(struct store *store);
void store_gate_leave(struct store *store);

struct store_read {
	struct store *store;
	MDB_txn *txn;
};

/* ---- keys (store.c) ---- */
void store_key_init(struct store_key *k);
void store_key_u8(struct store_key *k, uint8_t v);
void store_key_u32(struct store_key *k, uint32_t v);
void store_key_u64(struct store_key *k, uint64_t v);
void store_key_bytes(struct store_key *k, const void *p, size_t len);
uint32_t store_get_u32(const unsigned char *p);
uint64_t store_get_u64(const unsigned char *p);
MDB_val store_key_val(struct store_key *k);
/* True if v starts with k's bytes. */
bool store_key_has_prefix(const MDB_val *v, const struct store_key *k);
/* Copies the bytes of v after its first skip bytes (at most max of them)
   into buf[max + 1] as a NUL-terminated string. */
void store_key_tail(const MDB_val *v, size_t skip, char *buf, size_t max);

/* ---- map growth (store.c; the writer thread) ---- */
/* Grows the map so that `need` more bytes fit (see store.h). No write
   transaction may be open. 1 grown, 0 not needed, -1 not possible now
   (the disk or map_max, or snapshots stayed open). */
int store_map_grow(struct store *store, uint64_t need);

/* ---- quotas (store-quota.c) ---- */
/* Fails with STORE_ERR_QUOTA when adding `adding` bytes inside txn would
   take the user past their quota. */
int store_quota_check(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t adding, const char **error_r);

/* ---- errors (store.c) ---- */
/* Record an error of class cls; returns -1. */
int store_fail(struct store *store, const char **error_r,
    enum store_error cls, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An LMDB/errno failure rc during what; MAP_FULL/ENOSPC/EFBIG -> NOSPACE. */
int store_fail_mdb(struct store *store, const char **error_r, int rc,
    const char *what);
void store_ok(struct store *store);

/* ---- write transactions (store.c) ----
 *
 * Each public write call is one store_wbegin .. store_wcommit (or
 * store_wabort). Without a writer thread that is a top-level transaction,
 * committed durably, and the call's events are dispatched at once. On
 * the writer thread (store-writer.c) it is a child of the running job's
 * transaction: the commit is not durable by itself, and the events wait
 * for the group's durable commit. */
int store_wbegin(struct store *store, MDB_txn **txn_r, const char **error_r);
/* Commits; on success dispatches queued change events. On failure the
   transaction is gone and the events are dropped. */
int store_wcommit(struct store *store, MDB_txn *txn, const char **error_r);
void store_wabort(struct store *store, MDB_txn *txn);

/* The writer thread's job transaction, when the calling thread is the
 * writer running a job; NULL otherwise (store.c). */
MDB_txn *store_job_txn(void);
void store_set_job_txn(MDB_txn *txn);
/* Drops the events gathered so far (the calling thread's write). */
void store_events_reset(struct store *store);
/* Frees events[0..count) (their arrays) and the array itself. */
void store_events_free(struct store_event *events, size_t count);
/* Dispatches one event to the change callback (owner thread). */
void store_event_dispatch(struct store *store, struct store_event *ev,
    uint64_t origin);
/* Classifies a failed mdb_txn_commit (full disk vs I/O), logs it. */
int store_commit_failed(struct store *store, int rc, const char **error_r);
/* Records error class and text for the calling thread (store_fail). */
void store_set_error(enum store_error cls, const char *text);

/* Queue a change event (sent after commit). mb: the final mailbox state
   (may be NULL for deletes). uids are copied. */
struct store_event *store_event_add(struct store *store,
    enum store_change_kind kind, uint32_t user_id, const struct store_mb *mb,
    uint32_t mailbox_id);
void store_event_add_uid(struct store_event *ev, uint32_t uid);
void store_event_set_names(struct store_event *ev, const char *name,
    const char *old_name);

/* Before committing about bytes of new data: allocate file space ahead
   (in STORE_GROW_CHUNK steps) so commits do not grow the file each time.
   Best effort, never fails. */
void store_reserve(struct store *store, MDB_txn *txn, uint64_t bytes);

/* DB_DIGESTS key (store-ledger.c); account and uidl already checked by
   store_ledger_key. uidl_size 0: the prefix of every UIDL of a digest. */
void store_ledger_digest_key(struct store_key *k, uint32_t user_id,
    const char *account, const unsigned char *digest, const void *uidl,
    size_t uidl_size);

/* DB_DIGESTS key by upstream mailbox (store-ledger.c); NULL parts end
   the key early (a prefix). */
void store_ledger_mbdigest_key(struct store_key *k, uint32_t user_id,
    const unsigned char *mailbox_key, const unsigned char *digest,
    const char *account, const void *uidl, size_t uidl_size);

/* ---- moving a user (store-export.c) ---- */
/* 1 when the user has STORE_META_MOVED, 0 not, -1 error. */
int store_user_moved_txn(struct store *store, MDB_txn *txn,
    uint32_t user_id, const char **error_r);

/* ---- cursor helpers (store.c) ---- */
/* Deletes every key with the given prefix in db. */
int store_del_prefix(struct store *store, MDB_txn *txn, enum store_db db,
    const struct store_key *prefix, const char **error_r);
/* Deletes the one key k of db in its own write transaction: 0 done,
   STORE_NOT_FOUND (nothing changed), -1 error (what names it). */
int store_del_key(struct store *store, enum store_db db, struct store_key *k,
    const char *what, const char **error_r);
/* Calls each(ctx, key, data) for every key of db that starts with prefix,
   in key order, inside txn. each returns 0 to go on; anything else stops
   the walk and is returned as is. -1 on an LMDB error (what names it). The
   bytes the MDB_vals point at live as long as txn is not written to. */
int store_prefix_foreach(struct store *store, MDB_txn *txn, enum store_db db,
    const struct store_key *prefix,
    int (*each)(void *ctx, const MDB_val *key, const MDB_val *data),
    void *ctx, const char *what, const char **error_r);

/* Sorted, merged copy of ranges (caller frees); -1 on an invalid range. */
int store_ranges_normalize(const struct store_uid_range *ranges, size_t n,
    struct store_uid_range **out_r, size_t *count_r);

/* ---- users (store-user.c) ---- */
int store_userrec_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct store_userrec *rec_r, const char **error_r);
int store_userrec_save(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_userrec *rec, const char **error_r);

/* ---- mailboxes (store-mailbox.c) ---- */
int store_mb_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, struct store_mb *mb_r, const char **error_r);
int store_mb_save(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_mb *mb, const char **error_r);
int store_mb_create_txn(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, enum store_role role, struct store_mb *mb_r,
    const char **error_r);
void store_mb_key(struct store_key *k, uint32_t user_id,
    uint32_t mailbox_id);
/* 0 found, STORE_NOT_FOUND, -1 error. */
int store_mbname_get(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, uint32_t *id_r, const char **error_r);
/* Subscribes the (normalised) name inside txn; no change event. */
int store_sub_put_txn(struct store *store, MDB_txn *txn, uint32_t user_id,
    const char *name, const char **error_r);
/* Normalizes INBOX's case into out (STORE_MAILBOX_NAME_MAX + 1). */
int store_mb_name_norm(struct store *store, const char *name, char *out,
    const char **error_r);
void store_mbinfo_fill(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const struct store_mbrec *rec, const char *name,
    size_t name_len, struct store_mailbox_info *info_r);

/* Keyword table of one mailbox, loaded for a write. */
struct store_kwtable {
	uint32_t count;
	char names[STORE_KEYWORDS_MAX][STORE_KEYWORD_LEN_MAX + 1];
};
int store_kw_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, struct store_kwtable *kw, const char **error_r);
/* Finds or adds name; adds update mb->rec.keyword_count (caller saves). */
int store_kw_intern(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct store_mb *mb, struct store_kwtable *kw, const char *name,
    unsigned int *id_r, const char **error_r);

/* ---- ledger (store-deliver.c) ---- */
/* user + u8 len + account + uidl; INVALID on bad lengths. */
int store_ledger_key(struct store *store, struct store_key *k,
    uint32_t user_id, const char *account, const void *uidl,
    size_t uidl_size, const char **error_r);

/* ---- messages (store-message.c, store-deliver.c) ---- */
/* Drops one reference to a body; frees it at zero. */
int store_body_unref(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, const char **error_r);
/* Deletes every message of a mailbox (bodies unref'd), its keywords and
   vanished records. */
int store_mb_purge(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint32_t mailbox_id, const char **error_r);
void store_msg_from_rec(uint32_t uid, const struct store_msgrec *rec,
    struct store_msg *msg_r);
void store_mb_count_add(struct store_mbrec *mb, const struct store_msgrec *m,
    int sign);

/* ---- full-text index (store-fts.c) ---- */

/* Segments are merged in tiers: sizes below STORE_FTS_TIER_BASE bytes,
 * then each tier STORE_FTS_MERGE_FANIN times larger. A tier that holds
 * STORE_FTS_MERGE_FANIN segments is merged into one. */
#define STORE_FTS_TIER_BASE ((uint64_t)64 * 1024)
#define STORE_FTS_MERGE_FANIN 32
/* Bytes one merge may write: bounds the time a merge holds the writer.
 * A segment over a quarter of it is final: not merged again, only
 * compacted when half dead. Few tiers keep the rewrites of a posting to
 * about two; a search looks up its terms in every segment, which costs
 * microseconds each, so tens of segments are fine. */
#define STORE_FTS_SEGMENT_MAX ((uint64_t)8 * 1024 * 1024)

/* While merges wait for the writer's idle moments, a user's segments may
 * grow to this many; past it a delivery merges at once. Each is a few
 * binary searches per needle term: well under a millisecond in all. */
#define STORE_FTS_DEFER_SEGMENTS 96
/* Users with a pending merge remembered at once; the rest merge at once. */
#define STORE_FTS_PENDING_MAX 4096

struct store_fts_new_doc {
	uint64_t body_id;
	const struct store_fts_doc *doc;	/* NULL: not indexed */
};
/* Writes one segment for the docs (those with a doc), then at most one
 * bounded merge step (in its own child transaction), or, when merges are
 * deferred (store_fts_defer_merges), notes the user for an idle step. */
int store_fts_add_docs(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_fts_new_doc *docs, size_t n, const char **error_r);
/* The same from a segment store_fts_batch_build() made on a worker for
 * exactly these n messages: only their body ids (ascending) are written
 * into it. 1 (nothing written) when it is not one for n messages. */
int store_fts_add_batch(struct store *store, MDB_txn *txn, uint32_t user_id,
    const void *blob, size_t size, const uint64_t *body_ids, size_t n,
    const char **error_r);
/* The body's last reference went: it is dead in its segment. */
int store_fts_body_freed(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, const char **error_r);
/* The offline checker's part: every segment sound, every body in at most
 * one segment, the postings of every live body exactly the terms of its
 * text, dead counts right. problem() is called per finding. */
int store_fts_check_user(struct store *store, MDB_txn *txn, uint32_t user_id,
    void (*problem)(void *ctx, const char *fmt, ...), void *ctx);

#endif
