/*
 * store — popgate's message store: users, mailboxes, messages, bodies,
 * the upstream ledger and a change feed, in one LMDB environment.
 *
 * Nothing of sockets or protocols is in here. The IMAP side converts
 * modified UTF-7 names to UTF-8 before calling; the POP3 side passes UIDLs
 * as raw bytes. See docs/store.md for the layout and the durability argument.
 *
 * Conventions (read these once; every function follows them)
 *
 *  - Threads (docs/threads.md has the whole picture): reads may run on
 *    any thread, each on its own snapshots; a snapshot, and every pointer
 *    it gave, stays on the thread that began it. The environment is
 *    opened with MDB_NOTLS, so one thread may hold several snapshots and
 *    nest them with writes. Writes: without a writer thread every write
 *    call runs in its caller's thread (tools, unit tests: one thread).
 *    Once store_writer_start() has run, writes run only on the writer
 *    thread, inside a job given to store_write_submit() (the owner thread
 *    may not call a write function directly: that aborts); the change
 *    callback, store_writer_drain() and store_write_submit() belong to
 *    the owner thread (the event loop).
 *
 *  - Returns: fallible functions return 0 on success and -1 on error, with
 *    a static or store-owned message in *error_r (valid until the next call
 *    on the same store from the same thread; copy it if you keep it) and
 *    the class of the error in store_last_error() (per thread). Lookups return STORE_NOT_FOUND (1) when the
 *    thing asked for does not exist; that is not an error and *error_r is
 *    not set. error_r may be NULL.
 *
 *  - Writes: every mutating call is ONE write transaction, committed
 *    synchronously (durable on return 0) before it returns — or, on the
 *    writer thread, one child transaction of its job, durable with the
 *    job's group commit (the job's done callback says when). On -1 nothing of
 *    that call is visible, ever (LMDB aborts the transaction). Full map
 *    (MDB_MAP_FULL), full disk (ENOSPC) and I/O errors are reported as -1
 *    with STORE_ERR_NOSPACE / STORE_ERR_IO; data already stored is intact.
 *
 *  - Reads: take a struct store_read (a read snapshot; an LMDB read
 *    transaction). Pointers returned by a read (names, blobs, body bytes)
 *    point into the memory map and stay valid until store_read_end() on
 *    that snapshot; copy what you keep. A snapshot sees the store as of
 *    store_read_begin(). Keep snapshots short: a snapshot held open stops
 *    LMDB from reusing pages and makes the file grow.
 *
 *  - Identity: users are named by a uint32_t user id, mailboxes by a
 *    uint32_t mailbox id unique within the user (never reused for that
 *    user). Every call that touches mail takes the user id, and every key is
 *    prefixed by it: a call made for user A can never read or change B's
 *    data, whatever mailbox id or UID it is given (it gets STORE_NOT_FOUND).
 *
 *  - Arrays a call allocates for the caller are freed with free() unless a
 *    _free function is named.
 */
#ifndef POPGATE_STORE_H
#define POPGATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- limits ------------------------------------------------------------ */

/* Longest user name in bytes; logins are short, and it is part of a key. */
#define STORE_USER_NAME_MAX 255
/* Longest password hash string; argon2 encoded hashes are ~100 bytes. */
#define STORE_USER_HASH_MAX 1024
/* Longest settings key, in bytes (it is part of an LMDB key). */
#define STORE_META_KEY_MAX 200
/* Largest settings value; upstream-account records are small JSON. */
#define STORE_META_VALUE_MAX (64 * 1024)
/* Longest mailbox name in bytes of UTF-8 (LMDB keys are <= 511 bytes). */
#define STORE_MAILBOX_NAME_MAX 400
/* Deepest hierarchy ("a/b/c" is 3); deeper is a client trying to hurt. */
#define STORE_MAILBOX_DEPTH_MAX 32
/* Mailboxes per user; a client could otherwise create them forever. */
#define STORE_MAILBOXES_MAX 5000
/* Hierarchy delimiter of mailbox names. */
#define STORE_MAILBOX_DELIM '/'
/* Keywords per mailbox (hence per message): a bit set per message. */
#define STORE_KEYWORDS_MAX 128
/* Longest keyword name; IMAP atoms of flags are short. */
#define STORE_KEYWORD_LEN_MAX 100
/* Largest message (body bytes) the store accepts. */
#define STORE_MESSAGE_SIZE_MAX (64u * 1024 * 1024)
/* Largest cached structure blob (the MIME parser truncates before this). */
#define STORE_STRUCTURE_SIZE_MAX (16u * 1024 * 1024)
/* Largest SORT/THREAD key record (mail-sortkey.h caps its strings far
 * below this); a bigger one is not stored (SORT then reads the
 * structure). */
#define STORE_SORTKEY_SIZE_MAX (128u * 1024)
/* Messages per deliver call; one transaction must stay bounded. */
#define STORE_DELIVER_BATCH_MAX 10000
/* Body bytes per deliver call: a transaction's dirty pages stay in memory
   until commit. Batch by a few MB for throughput (see docs/store.md). */
#define STORE_DELIVER_BYTES_MAX ((size_t)256 * 1024 * 1024)
/* Longest upstream account id (the gateway's own short id). */
#define STORE_ACCOUNT_ID_MAX 64
/* Longest UIDL in bytes; RFC 1939 says 70, we allow slack, binary-safe. */
#define STORE_UIDL_MAX 255
/* An upstream mailbox's identity in the digest index (the caller's hash
 * of its canonical host, port and login; pop3-upstream's
 * upstream_mailbox_key). */
#define STORE_MAILBOX_KEY_SIZE 16
/* A message's content identity in the ledger: SHA-256. */
#define STORE_DIGEST_SIZE 32
/* Default LMDB map size when store_options.map_size is 0. */
#define STORE_DEFAULT_MAP_SIZE ((size_t)16 * 1024 * 1024 * 1024)

/* ---- errors ------------------------------------------------------------ */

#define STORE_NOT_FOUND 1

enum store_error {
	STORE_ERR_NONE = 0,
	STORE_ERR_INVALID,	/* bad argument: name syntax, limit, range */
	STORE_ERR_NOTFOUND,	/* user/mailbox/message does not exist */
	STORE_ERR_EXISTS,	/* name taken; UIDL already in the ledger */
	STORE_ERR_LIMIT,	/* a STORE_*_MAX was reached */
	STORE_ERR_NOSPACE,	/* LMDB map full or disk full: retry later */
	STORE_ERR_IO,		/* I/O or other LMDB failure */
	STORE_ERR_QUOTA,	/* the user's quota would be exceeded */
};

/* ---- open / close ------------------------------------------------------ */

struct store;
struct store_read;

struct store_options {
	/* Initial LMDB map size in bytes (0: STORE_DEFAULT_MAP_SIZE). With
	   a writer thread the map grows by itself while the disk has room
	   (store_writer_start); without one, writes past it fail with
	   NOSPACE. */
	size_t map_size;
	/* Concurrent read snapshots (LMDB maxreaders; 0: 512). */
	unsigned int max_readers;
	/* No full-text index (store_fts_enabled() false): nothing
	   delivered gets index terms, SEARCH does not consult the index
	   and reads every message. What is indexed stays (it is kept
	   consistent by expunges) and serves again once switched on. */
	bool no_fts_index;
	/* The map never grows past this (0: only the disk limits it). */
	uint64_t map_max;
};

/*
 * Opens (creating if needed) the store in directory dir (which must exist),
 * stale reader slots of dead processes are cleared. opts may be NULL.
 * On success *store_r owns the environment; close it with store_close().
 */
int store_open(const char *dir, const struct store_options *opts,
    struct store **store_r, const char **error_r);
/* Closes and sets *storep to NULL. Accepts NULL. All snapshots must have
   been ended. */
void store_close(struct store **storep);

/* ---- capacity ------------------------------------------------------------ */

/*
 * Map growth. LMDB's mdb_env_set_mapsize() may run only while no
 * transaction of the process is active, and it remaps the file, so every
 * pointer a snapshot gave becomes invalid. So: the writer thread grows
 * the map between group commits (no write transaction then), before a
 * group that would not fit (its declared bytes, with room for B-tree and
 * free-list pages) and after a job failed alone for room; it first waits
 * until no read snapshot is open in the process. store_read_begin()
 * counts snapshots; a thread that holds none waits while a growth is
 * pending, a thread that holds one does not (it may be the one the writer
 * waits for), and the writer gives up after STORE_GROW_WAIT_MS (then the
 * group runs as it is and tries again later): no deadlock, and readers
 * wait at most that long. It grows by half the map, at least
 * STORE_GROW_MIN, never past map_max or what the disk can still hold.
 */
#define STORE_GROW_WAIT_MS 1000
#define STORE_GROW_MIN ((uint64_t)256 * 1024 * 1024)
/* Free disk below which status warns (and a fraction of the map). */
#define STORE_WARN_FREE_BYTES ((uint64_t)1024 * 1024 * 1024)
#define STORE_WARN_USED_PERCENT 90

struct store_space {
	uint64_t used;		/* bytes of pages in use (LMDB's last page) */
	uint64_t map_size;	/* the map now */
	uint64_t map_max;	/* as configured (0: the disk) */
	uint64_t file_size;	/* data.mdb on disk (maybe preallocated) */
	uint64_t disk_free;	/* free bytes on its file system */
	uint64_t disk_size;
	/* the most the store can reach: the map's limit or the file plus
	   the free disk, whichever is smaller */
	uint64_t capacity;
	unsigned grows;		/* times the map grew since open */
	unsigned readers_used;	/* LMDB reader slots in use (snapshots) */
	unsigned readers_max;
	bool near_full;		/* used >= STORE_WARN_USED_PERCENT % of
				   capacity, or free disk under
				   STORE_WARN_FREE_BYTES */
};

/* Any thread. 0, or -1 with *error_r. */
int store_space_get(struct store *store, struct store_space *sp_r,
    const char **error_r);

/* ---- quotas ---------------------------------------------------------------- */

/*
 * A user's storage quota: the sum of RFC822.SIZE of all their messages in
 * all mailboxes (each copy counts, as IMAP clients see it; MOVE changes
 * nothing). It is enforced inside the write transactions that add mail,
 * store_deliver() and store_copy() (not a move): one that would take the
 * user past the quota fails with STORE_ERR_QUOTA and stores nothing. A
 * user has the store's default quota unless one was set for them.
 */
/* The default for users without their own (0: none). Any thread. */
void store_set_default_quota(struct store *store, uint64_t bytes);
uint64_t store_default_quota(const struct store *store);
/* *limit_r: the user's quota in bytes (0: none); *own_r: set for this
 * user (else the default applies). */
int store_user_quota_get(struct store_read *r, uint32_t user_id,
    uint64_t *limit_r, bool *own_r, const char **error_r);
/* own false: back to the default; else limit (0: none for this user). */
int store_user_quota_set(struct store *store, uint32_t user_id, bool own,
    uint64_t limit, const char **error_r);
/* The bytes the quota counts. */
int store_user_usage(struct store_read *r, uint32_t user_id,
    uint64_t *bytes_r, const char **error_r);

/* Class of the last error returned by a call on this store. */
enum store_error store_last_error(const struct store *store);

/* Read snapshot. Never fails except when the reader table is full (-1). */
int store_read_begin(struct store *store, struct store_read **read_r,
    const char **error_r);
/* Ends the snapshot, sets *readp to NULL; every pointer it gave is gone. */
void store_read_end(struct store_read **readp);

/* ---- change feed ------------------------------------------------------- */

enum store_change_kind {
	STORE_CHANGE_NEW = 1,		/* uids: the new messages */
	STORE_CHANGE_FLAGS,		/* uids: messages whose flags changed */
	STORE_CHANGE_EXPUNGE,		/* uids: the expunged messages */
	STORE_CHANGE_MAILBOX_CREATE,	/* name */
	STORE_CHANGE_MAILBOX_DELETE,	/* name */
	STORE_CHANGE_MAILBOX_RENAME,	/* old_name -> name (each child too) */
	STORE_CHANGE_MAILBOX_SUBSCRIBE,	/* name; subscribed or not */
};

struct store_change {
	enum store_change_kind kind;
	uint32_t user_id;
	uint32_t mailbox_id;
	/* The mailbox's state after the commit. */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t messages;
	uint64_t highestmodseq;
	/* Ascending UIDs, for NEW/FLAGS/EXPUNGE; NULL/0 otherwise. */
	const uint32_t *uids;
	size_t uid_count;
	const char *name;	/* mailbox events; NULL otherwise */
	const char *old_name;	/* rename only */
	bool subscribed;	/* subscribe only */
	/* Who made the change: the origin given to store_write_submit()
	   (an IMAP session's id, say); 0 for none or a direct write. */
	uint64_t origin;
};

/*
 * Called once per (mailbox, kind) a call changed, after its commit: from
 * the mutating call itself, before it returns, when there is no writer
 * thread; with one, from store_writer_drain() on the owner thread, after
 * the group commit that made it durable, in commit order, just before the
 * job's done callback.
 * Everything in *change is valid only during the callback. The callback may
 * take read snapshots; mutating store functions called from it fail with
 * STORE_ERR_INVALID (queue the work instead). NULL cb
 * unregisters. One callback per store (the gateway fans it out).
 */
void store_set_change_cb(struct store *store,
    void (*cb)(void *arg, const struct store_change *change), void *arg);

/* ---- the writer thread (group commit) ---------------------------------- */

/*
 * One thread owns every write transaction. Jobs from every session and
 * poller queue up (taken in turn by key, like the worker pool, so one
 * user's flood of APPENDs cannot starve another's STORE) and the writer
 * runs as many as are waiting, up to STORE_GROUP_JOBS_MAX jobs or
 * STORE_GROUP_BYTES_MAX bytes, in ONE durable commit:
 *
 *   each job = a child transaction of the group: apply() calls the write
 *   functions above (each a grandchild); a job whose apply() fails is
 *   rolled back whole, the others are not affected. A job that fails
 *   for room (NOSPACE, LIMIT) after others in its group is run again
 *   alone in a group of its own, so it is never blamed for their bytes.
 *
 * Then, on the owner thread (store_writer_drain): the change events of
 * each job, then its done(), in commit order. A job's rc is 0 only if its
 * apply() succeeded AND the group's durable commit did: only then may the
 * caller answer OK or send a POP3 DELE.
 */

/* Jobs and bytes (apply's estimate) in one group commit: bounded so one
 * commit's dirty pages stay a few tens of MB and no job waits long. */
#define STORE_GROUP_JOBS_MAX 512
#define STORE_GROUP_BYTES_MAX ((size_t)64 * 1024 * 1024)

/* Writer thread: make the job's changes with the write functions above.
 * Returns 0, or -1 with *error_r (the job is rolled back). */
typedef int store_apply_fn(struct store *store, void *ctx,
    const char **error_r);
/* Owner thread: the job is durable (rc 0) or rolled back (rc -1, with the
 * class and text of the error; text valid during the call). */
typedef void store_done_fn(void *ctx, int rc, enum store_error cls,
    const char *error);

struct store_writer_stats {
	uint64_t jobs;		/* jobs committed or failed */
	uint64_t commits;	/* durable group commits */
	uint64_t commit_failures;
	uint64_t retried_alone;	/* jobs re-run in a group of their own */
	unsigned queued;	/* waiting now */
	/* Histograms: jobs per group (bucket i: <= 2^i jobs) and commit
	   time (bucket i: <= 2^i ms, from submit of the group's first job
	   to its durable commit, i.e. what a client waits). */
	uint64_t group_jobs[11];
	uint64_t commit_ms[14];
	uint64_t commit_ms_sum;
};

/*
 * Starts the writer thread. notify(arg) is called from the writer thread
 * when finished jobs are waiting; it must only wake the owner, which then
 * calls store_writer_drain() on its thread. Owner thread, once.
 */
int store_writer_start(struct store *store, void (*notify)(void *arg),
    void *arg, const char **error_r);
/*
 * Queues a job: apply(store, ctx) on the writer, then done(ctx, ...) on
 * the owner thread. key: fairness (a user id); origin: copied into the
 * job's change events; bytes: about how much it writes (message bytes;
 * 0 for small changes). The ctx is the caller's; it must stay valid until
 * done() (which typically frees it). Owner thread. After
 * store_writer_stop() the job fails at once (done with STORE_ERR_IO).
 */
void store_write_submit(struct store *store, uint64_t key, uint64_t origin,
    size_t bytes, store_apply_fn *apply, store_done_fn *done, void *ctx);
/*
 * The same, waiting: the owner thread blocks until the job's group has
 * committed, then drains (events and done callbacks of every job finished
 * so far, in commit order). Returns apply's rc (0, or a positive
 * STORE_NOT_FOUND), or -1 with *error_r and store_last_error(). For the
 * admin's rare writes (control commands) where a reply waits anyway: it
 * stalls the loop for one group commit, so never for a user's command.
 */
int store_write_sync(struct store *store, uint64_t key, uint64_t origin,
    size_t bytes, store_apply_fn *apply, void *ctx, const char **error_r);
/* Dispatches the events and done() of every finished job, in commit
 * order. Owner thread. Returns how many jobs. */
size_t store_writer_drain(struct store *store);
/*
 * Makes the owner's view catch up with the store: every group committed
 * before this call has its events and done() dispatched when it returns.
 * A read snapshot may see a commit whose events are still on their way
 * to the loop (the writer commits, then publishes); a reader that finds
 * something gone that it was not told of calls this, then looks at its
 * state again. Waits at most the writer's few steps between commit and
 * publish (bounded). Owner thread.
 */
void store_writer_catch_up(struct store *store);
/* Runs every job already queued (commits them), stops and joins the
 * thread, then drains. Owner thread. Writes are then direct again. */
void store_writer_stop(struct store *store);
bool store_writer_running(const struct store *store);
void store_writer_get_stats(struct store *store,
    struct store_writer_stats *stats_r);
/* observe(arg, seconds, jobs) after each group commit, on the writer
 * thread (keep it short and lock-free: a metrics histogram). Owner
 * thread, while the writer runs; NULL unregisters. */
void store_writer_set_observer(struct store *store,
    void (*observe)(void *arg, double seconds, size_t jobs), void *arg);

/* ---- users ------------------------------------------------------------- */

/* store_user_create flag: also create INBOX, Sent, Drafts, Trash, Junk and
   Archive with their special-use roles. Whatever is created (INBOX
   always) starts subscribed. */
#define STORE_USER_DEFAULT_MAILBOXES 0x1u

/*
 * Creates a user. name: 1..STORE_USER_NAME_MAX bytes, no NUL, no control
 * characters; unique (EXISTS otherwise). password_hash: an opaque string
 * (the gateway's salted slow hash), may be "" for "no password login".
 * INBOX is always created; flags adds the default folders.
 */
int store_user_create(struct store *store, const char *name,
    const char *password_hash, unsigned int flags, uint32_t *user_id_r,
    const char **error_r);
/* Deletes the user and all their data: mailboxes, messages, bodies, the
   ledger, settings. Emits MAILBOX_DELETE for each mailbox. */
int store_user_delete(struct store *store, uint32_t user_id,
    const char **error_r);
int store_user_set_hash(struct store *store, uint32_t user_id,
    const char *password_hash, const char **error_r);
/* Gives the user a new name (same rules as store_user_create; EXISTS when
   another user has it). Everything else of the user stays: mail, ids,
   settings, the password hash. */
int store_user_rename(struct store *store, uint32_t user_id,
    const char *new_name, const char **error_r);

struct store_user_info {
	uint32_t id;
	const char *name;		/* valid until store_read_end */
	const char *password_hash;	/* valid until store_read_end */
	time_t created;
};

/* 0 / STORE_NOT_FOUND / -1. Names are compared byte for byte. */
int store_user_lookup(struct store_read *r, const char *name,
    uint32_t *user_id_r, const char **error_r);
int store_user_get(struct store_read *r, uint32_t user_id,
    struct store_user_info *info_r, const char **error_r);
/* Calls cb for each user in id order; a non-zero return from cb stops the
   walk and is returned. */
int store_user_foreach(struct store_read *r,
    int (*cb)(void *ctx, const struct store_user_info *info), void *ctx,
    const char **error_r);

/* Per-user settings: key (NUL-terminated, <= STORE_META_KEY_MAX) -> opaque
   value (<= STORE_META_VALUE_MAX bytes). put replaces. del of a missing
   key returns STORE_NOT_FOUND. get's *value_r is valid until read end. */
int store_user_meta_put(struct store *store, uint32_t user_id,
    const char *key, const void *value, size_t value_size,
    const char **error_r);
int store_user_meta_get(struct store_read *r, uint32_t user_id,
    const char *key, const void **value_r, size_t *value_size_r,
    const char **error_r);
int store_user_meta_del(struct store *store, uint32_t user_id,
    const char *key, const char **error_r);
/* A read-modify-write of one setting in ONE write transaction: fn gets
 * the old value (NULL/0 when absent; valid during the call) and returns
 * 0 with a new malloc'd value (freed by the store), or -1 to change
 * nothing. For records several jobs update in turn (a poll history):
 * two updates queued for one group commit each see the other's. */
typedef int store_meta_update_fn(void *ctx, const void *old,
    size_t old_size, void **new_r, size_t *new_size_r);
int store_user_meta_update(struct store *store, uint32_t user_id,
    const char *key, store_meta_update_fn *fn, void *ctx,
    const char **error_r);
/* Keys in byte order; key and value valid during the callback only. */
int store_user_meta_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *key, const void *value,
	size_t value_size), void *ctx, const char **error_r);

/* ---- mailboxes --------------------------------------------------------- */

enum store_role {
	STORE_ROLE_NONE = 0,
	STORE_ROLE_SENT,	/* \Sent */
	STORE_ROLE_DRAFTS,	/* \Drafts */
	STORE_ROLE_TRASH,	/* \Trash */
	STORE_ROLE_JUNK,	/* \Junk */
	STORE_ROLE_ARCHIVE,	/* \Archive */
	STORE_ROLE_ALL,		/* \All */
	STORE_ROLE_FLAGGED,	/* \Flagged */
};

/* "\\Sent" etc.; NULL for STORE_ROLE_NONE. */
const char *store_role_name(enum store_role role);

struct store_mailbox_info {
	uint32_t id;
	const char *name;	/* UTF-8; valid until store_read_end */
	enum store_role role;
	bool subscribed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;	/* >= 1 */
	uint32_t messages;
	uint32_t unseen;	/* messages without \Seen */
	uint32_t deleted;	/* messages with \Deleted */
	uint64_t size;		/* sum of RFC822.SIZE */
	uint32_t keyword_count;	/* keywords defined in this mailbox */
};

/*
 * Checks a mailbox name: UTF-8, 1..STORE_MAILBOX_NAME_MAX bytes, no control
 * characters, no empty component (leading, trailing or doubled '/'), at
 * most STORE_MAILBOX_DEPTH_MAX components. Returns true if valid; the
 * store applies it on every name it is given.
 */
bool store_mailbox_name_valid(const char *name, const char **why_r);

/*
 * Creates a mailbox; missing parents ("a" and "a/b" for "a/b/c") are
 * created too. A name equal to INBOX case-insensitively is INBOX (also as
 * the first component, "inbox/x" is "INBOX/x"). EXISTS if taken. A new
 * mailbox gets a UIDVALIDITY never used before by this user.
 */
int store_mailbox_create(struct store *store, uint32_t user_id,
    const char *name, enum store_role role, uint32_t *mailbox_id_r,
    const char **error_r);
/*
 * Deletes a mailbox and its messages (bodies lose a reference). Children
 * stay. INBOX cannot be deleted (INVALID). The subscription stays (RFC 3501).
 */
int store_mailbox_delete(struct store *store, uint32_t user_id,
    const char *name, const char **error_r);
/*
 * Renames old_name to new_name; children move with it ("a/x" -> "b/x"),
 * keeping ids, UIDs and UIDVALIDITY; subscriptions follow. Missing parents
 * of new_name are created. EXISTS if new_name (or a child's new name) is
 * taken. Renaming INBOX creates new_name with a fresh UIDVALIDITY, moves
 * INBOX's messages into it (UIDs 1..n in the old order) and leaves INBOX
 * empty (its UIDs are recorded as vanished); INBOX's children stay.
 */
int store_mailbox_rename(struct store *store, uint32_t user_id,
    const char *old_name, const char *new_name, const char **error_r);
/* Subscribes or unsubscribes a name (which need not exist). */
int store_mailbox_subscribe(struct store *store, uint32_t user_id,
    const char *name, bool subscribe, const char **error_r);
int store_mailbox_set_role(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, enum store_role role, const char **error_r);

/* 0 / STORE_NOT_FOUND / -1. */
int store_mailbox_lookup(struct store_read *r, uint32_t user_id,
    const char *name, struct store_mailbox_info *info_r,
    const char **error_r);
int store_mailbox_get(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, struct store_mailbox_info *info_r,
    const char **error_r);
/* Every mailbox of the user in name byte order (parents before
   children). cb's non-zero return stops the walk and is returned. */
int store_mailbox_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const struct store_mailbox_info *info), void *ctx,
    const char **error_r);
/*
 * Once per store (a flag in the store remembers it): every user who has
 * no subscription at all gets INBOX and each special-use mailbox
 * subscribed, as store_user_create() now does for new users (stores made
 * before it subscribed nothing). One transaction; *users_r (may be
 * NULL) is how many users were given them (0 on later calls).
 */
int store_subscriptions_default_once(struct store *store, unsigned *users_r,
    const char **error_r);
/* Every subscribed name (existing or not), in byte order. */
int store_subscription_foreach(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *name), void *ctx,
    const char **error_r);

/*
 * The mailbox's keyword table: names_r[i] is the keyword with id i (bit i
 * of store_flags.keywords), for i < *count_r (<= STORE_KEYWORDS_MAX).
 * Pointers valid until store_read_end. Ids are never reassigned within a
 * mailbox.
 */
int store_mailbox_keywords(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const char *names_r[STORE_KEYWORDS_MAX],
    size_t *count_r, const char **error_r);

/* ---- messages ---------------------------------------------------------- */

#define STORE_FLAG_SEEN 0x01u
#define STORE_FLAG_ANSWERED 0x02u
#define STORE_FLAG_FLAGGED 0x04u
#define STORE_FLAG_DELETED 0x08u
#define STORE_FLAG_DRAFT 0x10u
#define STORE_FLAGS_SYSTEM_ALL 0x1fu

#define STORE_KEYWORD_WORDS (STORE_KEYWORDS_MAX / 64)

struct store_flags {
	uint32_t system;	/* STORE_FLAG_* */
	uint64_t keywords[STORE_KEYWORD_WORDS];	/* bit i: keyword id i */
};

struct store_msg {
	uint32_t uid;
	struct store_flags flags;
	uint64_t modseq;
	int64_t internaldate;	/* seconds since the epoch, UTC */
	int32_t tz_offset_min;	/* the INTERNALDATE's zone, e.g. +120 */
	uint64_t size;		/* RFC822.SIZE: body bytes */
	uint64_t body_id;	/* shared by copies; for diagnostics */
	uint32_t structure_size;
};

struct store_uid_range {
	uint32_t first;	/* 1 <= first <= last; last may be UINT32_MAX */
	uint32_t last;
};

/* 0 / STORE_NOT_FOUND / -1. */
int store_msg_get(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, struct store_msg *msg_r,
    const char **error_r);
/*
 * Calls cb for every message with first <= uid <= last, ascending.
 * *msg is valid during the callback. A non-zero return stops and is
 * returned. This is the fast path (100,000 messages in a few ms).
 */
int store_msg_foreach(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t first_uid, uint32_t last_uid,
    int (*cb)(void *ctx, const struct store_msg *msg), void *ctx,
    const char **error_r);
/* The same over a set of ranges, into one array (caller frees *msgs_r,
   which is NULL when *count_r is 0). Ranges need not be sorted; each
   message is listed once, ascending. */
int store_msg_list(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, const struct store_uid_range *ranges,
    size_t range_count, struct store_msg **msgs_r, size_t *count_r,
    const char **error_r);
/* All UIDs, ascending: sequence number n is (*uids_r)[n-1]. */
int store_msg_uids(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t **uids_r, size_t *count_r,
    const char **error_r);
/* The message with sequence number seq (1-based) in this snapshot; O(seq).
   Sessions keep their own map from store_msg_uids() instead. */
int store_msg_by_seq(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t seq, struct store_msg *msg_r,
    const char **error_r);
/* The cached structure blob given at delivery (may be empty: size 0).
   *data_r valid until store_read_end. 0 / STORE_NOT_FOUND / -1. */
int store_msg_structure(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, const void **data_r, size_t *size_r,
    const char **error_r);
/* The SORT/THREAD key record of body body_id (store_msg.body_id) given
   at delivery (mail-sortkey.h), or STORE_NOT_FOUND for a message stored
   without one. *data_r valid until store_read_end. 0 / STORE_NOT_FOUND /
   -1. */
int store_msg_sortkey(struct store_read *r, uint32_t user_id,
    uint64_t body_id, const void **data_r, size_t *size_r,
    const char **error_r);
/* The body bytes, without copying: *data_r points into the map and is valid
   until store_read_end. 0 / STORE_NOT_FOUND / -1. */
int store_msg_body(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, const void **data_r, size_t *size_r,
    const char **error_r);

/*
 * A body held open on its own snapshot, for handing to an output buffer
 * without a copy (evbuffer_add_reference with a cleanup that calls
 * store_body_close). data/size are valid until store_body_close. Keep it
 * only while sending: it pins a read snapshot.
 */
struct store_body {
	const void *data;
	size_t size;
	struct store_read *read_;	/* private */
};
int store_body_open(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, uint32_t uid, struct store_body **body_r,
    const char **error_r);
void store_body_close(struct store_body **bodyp);

/* ---- deliver / append -------------------------------------------------- */

/* A message's terms for the full-text index (store/mail-fts.h computes
 * them, on a worker, from the parsed message). */
struct store_fts_doc {
	const uint32_t *terms;	/* ascending, unique, < MAIL_FTS_TERM_LIMIT */
	size_t count;
	bool saturated;		/* too many to list: always a candidate */
};

struct store_new_msg {
	const void *data;	/* the message bytes, <= STORE_MESSAGE_SIZE_MAX */
	size_t size;
	const void *structure;	/* opaque, may be NULL/0 */
	size_t structure_size;
	/* The SORT/THREAD keys (mail_sortkey_of_message(), on a worker),
	   <= STORE_SORTKEY_SIZE_MAX; NULL/0: none (SORT reads the
	   structure instead). Kept per body, like the structure. */
	const void *sortkey;
	size_t sortkey_size;
	int64_t internaldate;
	int32_t tz_offset_min;
	uint32_t system_flags;	/* STORE_FLAG_* */
	const char *const *keywords;	/* may be NULL when keyword_count 0 */
	size_t keyword_count;
	/* Upstream ledger entry written in the same transaction, or NULL
	   account for none (IMAP APPEND). uidl is binary, <= STORE_UIDL_MAX. */
	const char *account;
	const void *uidl;
	size_t uidl_size;
	/* With an account: an existing ledger entry for this UIDL is
	   replaced (in the same transaction) instead of failing EXISTS —
	   for a UIDL the server reused after DELE, so the old entry is
	   never forgotten unless the new delivery commits. */
	bool replace_ledger;
	/* With an account: the SHA-256 of the bytes (STORE_DIGEST_SIZE), kept
	   in the ledger entry and indexed for store_ledger_claim_digest();
	   NULL: none. */
	const unsigned char *digest;
	/* With a digest: the upstream mailbox (STORE_MAILBOX_KEY_SIZE bytes)
	   the digest is indexed under, so that another account name on the
	   same mailbox finds it; NULL: indexed under the account name (the
	   older layout). */
	const unsigned char *mailbox_key;
	/* With an account and a digest: the SHA-256 of the message's header
	   block as POP3 TOP n 0 returns it (pop3_deliver_head_digest) and
	   the size LIST gave, kept in the ledger entry so that a DELE can be
	   verified without a RETR; NULL: none. */
	const unsigned char *head_digest;
	uint64_t list_size;
	/* The message's index terms, written with it (same transaction);
	   NULL: not indexed, SEARCH reads it in full. */
	const struct store_fts_doc *fts;
	/* On the first message only, optionally: the index segment that
	   store_fts_batch_build() made (on a worker) for exactly the count
	   messages of this store_deliver() call, each with fts set; the
	   writer then only writes their body ids into it. Ignored (the
	   terms are used) when it is not one for count messages. */
	const void *fts_batch;
	size_t fts_batch_size;
};

/*
 * Stores count (1..STORE_DELIVER_BATCH_MAX) messages, at most
 * STORE_DELIVER_BYTES_MAX body bytes in all (LIMIT), into the mailbox and
 * their ledger entries in ONE transaction, durably. uids_r (count slots,
 * caller's) receives the UIDs assigned, ascending in msgs order;
 * uidvalidity_r (may be NULL) the mailbox's UIDVALIDITY (for APPENDUID).
 * If any UIDL is already in the ledger for its account (and the message
 * is not marked replace_ledger), nothing is stored (EXISTS). On -1 nothing
 * of the batch is stored and nothing is in the ledger; NOSPACE means the
 * map or the disk is full.
 */
int store_deliver(struct store *store, uint32_t user_id, uint32_t mailbox_id,
    const struct store_new_msg *msgs, size_t count, uint32_t *uids_r,
    uint32_t *uidvalidity_r, const char **error_r);

/* ---- flags ------------------------------------------------------------- */

enum store_flag_op {
	STORE_FLAGS_SET = 0,	/* replace */
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

struct store_flag_change {
	uint32_t uid;
	struct store_flags flags;	/* after the change */
	uint64_t modseq;
};

struct store_flag_result {
	/* Messages whose flags changed, ascending, with the new state. */
	struct store_flag_change *changed;
	size_t changed_count;
	/* UIDs that failed UNCHANGEDSINCE (their modseq was greater), not
	   changed, ascending (the MODIFIED response code). */
	uint32_t *failed;
	size_t failed_count;
	/* The other messages of the set, which already had the flags: their
	   state as the call left it, ascending (so a STORE can answer with
	   the state it made, even if they are gone by the time it does). */
	struct store_flag_change *unchanged;
	size_t unchanged_count;
	uint64_t highestmodseq;	/* the mailbox's, after the call */
	/* The mailbox's keyword names as the call left them (id = index),
	   when a message above holds a keyword: a STORE answers with these,
	   not with a later snapshot's table, which is empty once another
	   session deleted the mailbox. */
	char **keywords;
	size_t keyword_count;
};

/*
 * Applies op with system flags and keywords (names, created in the
 * mailbox's table as needed: LIMIT past STORE_KEYWORDS_MAX) to every
 * existing message in the UID set, in ONE transaction. Each message whose
 * flags change gets a new MODSEQ (all of one call share it). unchangedsince:
 * 0 for none; otherwise a message whose modseq > unchangedsince is not
 * changed and is listed in failed. UIDs in the set that do not exist are
 * ignored. result_r is filled (free with store_flag_result_free) on 0.
 */
int store_flags_update(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const struct store_uid_range *ranges,
    size_t range_count, enum store_flag_op op, uint32_t system_flags,
    const char *const *keywords, size_t keyword_count,
    uint64_t unchangedsince, struct store_flag_result *result_r,
    const char **error_r);
void store_flag_result_free(struct store_flag_result *result);

/* ---- copy / move / expunge -------------------------------------------- */

struct store_copy_result {
	uint32_t dst_uidvalidity;
	size_t count;
	uint32_t *src_uids;	/* ascending */
	uint32_t *dst_uids;	/* dst_uids[i] is the copy of src_uids[i] */
};

/*
 * Copies (move false) or moves the messages of the UID set from src to dst
 * (both of this user; src == dst adds the copies with new UIDs to the
 * same mailbox, and a move then also expunges the originals, RFC 6851
 * 3.1), in ONE transaction,
 * without copying bytes: bodies gain a reference. Flags and INTERNALDATE
 * are kept; keyword names are mapped into dst's table. MOVE expunges the
 * sources (recorded as vanished in src). Missing UIDs are skipped; an empty
 * result is not an error. Free with store_copy_result_free.
 */
int store_copy(struct store *store, uint32_t user_id, uint32_t src_mailbox_id,
    uint32_t dst_mailbox_id, const struct store_uid_range *ranges,
    size_t range_count, bool move, struct store_copy_result *result_r,
    const char **error_r);
void store_copy_result_free(struct store_copy_result *result);

/*
 * Expunges messages in ONE transaction: those in the UID set (NULL/0 for
 * all), and of these only the ones with \Deleted when deleted_only. Each
 * expunged UID is remembered with the MODSEQ at which it vanished; a body
 * whose last reference goes is freed. *uids_r (ascending, caller frees;
 * may be NULL) receives what was expunged.
 */
int store_expunge(struct store *store, uint32_t user_id, uint32_t mailbox_id,
    const struct store_uid_range *ranges, size_t range_count,
    bool deleted_only, uint32_t **uids_r, size_t *count_r,
    const char **error_r);

/* ---- changes since a MODSEQ (CONDSTORE / QRESYNC) --------------------- */

struct store_changes {
	struct store_flag_change *changed;	/* modseq > since, ascending uid */
	size_t changed_count;
	struct store_uid_range *vanished;	/* expunged after since, merged */
	size_t vanished_count;
	uint64_t highestmodseq;
};

int store_changes_since(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint64_t since_modseq,
    struct store_changes *changes_r, const char **error_r);
/* The same with changed empty: only the expunge history is read (for a
 * caller that already walks every message, e.g. SELECT (QRESYNC)). */
int store_vanished_since(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, uint64_t since_modseq,
    struct store_changes *changes_r, const char **error_r);
void store_changes_free(struct store_changes *changes);

/* ---- upstream ledger ---------------------------------------------------- */

struct store_ledger_entry {
	const void *uidl;	/* valid during the callback / until read end */
	size_t uidl_size;
	uint32_t mailbox_id;	/* where delivered; 0 if recorded only */
	uint32_t uid;
	int64_t seen;		/* when first seen (time()) */
	bool deleted_upstream;
	/* What was delivered, kept in the ledger itself: mailbox_id/uid go
	   stale as soon as the user moves or expunges the message, so a
	   "was this UIDL's message listed again?" check must compare these,
	   never the message at mailbox_id/uid. has_fingerprint is false for
	   store_ledger_add() entries and entries from older stores. */
	bool has_fingerprint;
	uint64_t body_size;
	uint64_t body_hash;	/* store_body_fingerprint(body) */
	/* The body delivered. COPY and MOVE share it, so while any message
	   of the user still has it (store_body_present), the user has not
	   expunged this message everywhere. has_body is false for entries
	   written before body ids were kept, and for store_ledger_add(). */
	bool has_body;
	uint64_t body_id;
	/* The SHA-256 of what was delivered (entries written since issue
	   15; has_digest false for older ones and store_ledger_add()). */
	bool has_digest;
	unsigned char digest[STORE_DIGEST_SIZE];
	/* The SHA-256 of its header block (as TOP n 0 returns it) and the
	   size LIST gave at delivery (entries written since issue 15's
	   cheap check before DELE; has_head false for older ones). */
	bool has_head;
	unsigned char head_digest[STORE_DIGEST_SIZE];
	uint64_t list_size;
	/* The UIDL took this entry over by its header block and size
	   (store_ledger_claim_head), not by its bytes. */
	bool by_head;
};

/* 0 when some message of the user still references body body_id (a
   copy or a moved message counts), STORE_NOT_FOUND when none does (the
   body was freed; body ids are never reused), -1 on error. */
int store_body_present(struct store_read *r, uint32_t user_id,
    uint64_t body_id, const char **error_r);

/* The bytes of body body_id of the user (valid until store_read_end):
   0, STORE_NOT_FOUND when no message references it any more, or -1. */
int store_body_get(struct store_read *r, uint32_t user_id, uint64_t body_id,
    const void **data_r, size_t *size_r, const char **error_r);

/* A 64-bit fingerprint of message bytes (not cryptographic; stable across
   versions, since ledgers keep it). */
uint64_t store_body_fingerprint(const void *data, size_t size);

/* 0 / STORE_NOT_FOUND / -1. account: NUL-terminated, 1..ACCOUNT_ID_MAX. */
int store_ledger_lookup(struct store_read *r, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    struct store_ledger_entry *entry_r, const char **error_r);
/* Every entry of the account, in UIDL byte order. */
int store_ledger_foreach(struct store_read *r, uint32_t user_id,
    const char *account,
    int (*cb)(void *ctx, const struct store_ledger_entry *entry), void *ctx,
    const char **error_r);
/* Records a UIDL as seen without a delivery (e.g. refused as too large);
   EXISTS if already there. */
int store_ledger_add(struct store *store, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    const char **error_r);
/* Marks entries "deleted upstream" (after DELE+QUIT succeeded); missing
   ones are ignored. One transaction. */
int store_ledger_mark_deleted(struct store *store, uint32_t user_id,
    const char *account, const void *const *uidls, const size_t *uidl_sizes,
    size_t count, const char **error_r);
/* Removes one entry (STORE_NOT_FOUND if absent) / all of an account. */
int store_ledger_remove(struct store *store, uint32_t user_id,
    const char *account, const void *uidl, size_t uidl_size,
    const char **error_r);
int store_ledger_remove_account(struct store *store, uint32_t user_id,
    const char *account, const char **error_r);

/*
 * Content identity (issue 15): a message listed under a UIDL the ledger
 * does not know may be one delivered earlier under a UIDL the server has
 * since changed (renumbered UIDLs). In ONE transaction: looks for an entry
 * of the account delivered with these bytes (digest, STORE_DIGEST_SIZE)
 * whose UIDL vanished(ctx, uidl, uidl_size) says is no longer listed; the
 * first such entry found is taken over by the new UIDL: the new UIDL gets
 * a ledger entry saying the same (where and what was delivered), and the
 * digest index names the new UIDL instead of the old, so one earlier
 * delivery is claimed at most once (two identical messages renumbered
 * claim the two earlier ones). An entry whose UIDL is still listed is a
 * second copy the server holds, never claimed. *claimed_r: one was.
 * EXISTS if the new UIDL is in the ledger already.
 */
typedef bool store_uidl_vanished_fn(void *ctx, const void *uidl,
    size_t uidl_size);
/* mailbox_key (STORE_MAILBOX_KEY_SIZE bytes, or NULL for the index by
 * account name): the upstream mailbox the account reads. With it, the
 * deliveries of every account name of this user on that mailbox count:
 * one of another name is taken over when its UIDL is the new one (the
 * same message, an account re-added under another name) or is no longer
 * listed; its ledger entry stays where it is, the index names the new
 * UIDL of this account. */
int store_ledger_claim_digest(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key,
    const unsigned char *digest, const void *uidl, size_t uidl_size,
    store_uidl_vanished_fn *vanished, void *ctx, bool *claimed_r,
    const char **error_r);
/*
 * The same claim, recognised by the header block instead of the bytes
 * (issue 15, session 4): the entry taken over must also have been
 * delivered with this header digest (head, as TOP n 0 gives it) and this
 * LIST size, and digest is the content digest of that delivery (found
 * with store_ledger_mailbox_foreach). The new entry is marked by_head: its
 * bytes were never seen under the new UIDL.
 */
int store_ledger_claim_head(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key,
    const unsigned char *digest, const unsigned char *head,
    uint64_t list_size, const void *uidl, size_t uidl_size,
    store_uidl_vanished_fn *vanished, void *ctx, bool *claimed_r,
    const char **error_r);
/*
 * Every delivery indexed under the upstream mailbox mailbox_key for the
 * user (any account name), with its ledger entry: cb(ctx, account,
 * entry); entry->uidl points into the snapshot. Index keys whose ledger
 * entry is gone are skipped. A non-zero cb return stops the walk.
 */
int store_ledger_mailbox_foreach(struct store_read *r, uint32_t user_id,
    const unsigned char *mailbox_key,
    int (*cb)(void *ctx, const char *account,
    const struct store_ledger_entry *entry), void *ctx,
    const char **error_r);
/*
 * The identity of an upstream mailbox (issue 15, session 4): one mailbox
 * is known by several keys (upstream_mailbox_key: its host name as
 * written, and the address a session reached it at), and its deliveries
 * are indexed under one of them, its canonical key. keys[0] is the name's
 * key, the others (up to STORE_MAILBOX_NAMES_MAX in all) other names.
 * The canonical key is the one recorded for the first of keys that has
 * one, else keys[0] (so ledgers indexed before names were recorded keep
 * their key). _canon only reads; _alias (writer) also records every key
 * of keys that has none as a name of the canonical key, so that a later
 * account reaching the same address under another host name (localhost,
 * 127.0.0.1) finds the same deliveries. A recorded name never changes.
 */
#define STORE_MAILBOX_NAMES_MAX 4
int store_ledger_mailbox_canon(struct store_read *r, uint32_t user_id,
    const unsigned char *const *keys, size_t n,
    unsigned char canon_r[STORE_MAILBOX_KEY_SIZE], const char **error_r);
int store_ledger_mailbox_alias(struct store *store, uint32_t user_id,
    const unsigned char *const *keys, size_t n,
    unsigned char canon_r[STORE_MAILBOX_KEY_SIZE], const char **error_r);
/* Moves the account's digest index entries of the older layout (by
 * account name) to the index by upstream mailbox, in one transaction
 * (the migration of ledgers written before it; a no-op once done).
 * *moved_r: how many. */
int store_ledger_digests_rekey(struct store *store, uint32_t user_id,
    const char *account, const unsigned char *mailbox_key, size_t *moved_r,
    const char **error_r);

/* ---- administration (store-admin.c; the store's size: store_space_get) */

/*
 * Writes a consistent, compacted copy of the whole store (LMDB's copy
 * with MDB_CP_COMPACT: a data.mdb of the pages in use only) to fd, and
 * fsyncs it. It takes a read snapshot of its own, so reads and writes go
 * on while it runs; the snapshot keeps the file from reusing pages until
 * it ends. The one store call that may run on any thread (a backup takes
 * a while): it touches nothing of the store but the environment, and
 * reports errors in errbuf, never through the store's last error.
 */
int store_backup_fd(struct store *store, int fd, char *errbuf,
    size_t errsize);

/* ---- full-text index ----------------------------------------------------
 *
 * Trigram postings of each body's text (store/mail-fts.h says which text),
 * per user, written with the messages (docs/store.md, "Full-text index").
 * It narrows: SEARCH confirms the candidates with its matcher (but for a
 * needle of exactly one term found in a body's body-class posting, which
 * is the answer: imap-search-index.h), so a body that is not indexed (delivered without terms, an older store, the
 * index switched off) is simply read in full.
 */

/* A set of body ids of one user (a bitmap). */
struct store_fts_set {
	uint64_t *bits;
	uint64_t nbits;
};
bool store_fts_set_has(const struct store_fts_set *set, uint64_t body_id);
void store_fts_set_free(struct store_fts_set *set);

/* The index segment of count messages to be delivered together (see
 * store_new_msg.fts_batch), into out. Pure: for a worker thread. */
struct strbuf;
void store_fts_batch_build(const struct store_fts_doc *const *docs,
    size_t count, struct strbuf *out);

/* Whether deliveries carry index terms and SEARCH uses the index
 * (store_options.no_fts_index). */
bool store_fts_enabled(const struct store *store);

/*
 * Merges of index segments out of the delivery's way: with defer set, a
 * delivery only writes its segment and notes that its user has a merge
 * step to do (unless the user has STORE_FTS_DEFER_SEGMENTS segments
 * already: then it merges at once, so segments stay bounded under
 * sustained load). store_fts_idle_step() does one noted step, bounded
 * (STORE_FTS_SEGMENT_MAX bytes), in its own durable transaction. The
 * writer thread sets defer at start and calls the step whenever its
 * queue is empty. Without a writer, the caller's thread. The notes live
 * in memory; after a restart the first idle step notes again every user
 * whose segment counts in the store call for a merge step.
 * store_fts_idle_step returns 1 when it did a step (call again), 0 when
 * nothing is noted.
 */
void store_fts_defer_merges(struct store *store, bool defer);
int store_fts_idle_step(struct store *store);

/*
 * The segment reader on any bytes (a damaged store; the fuzz target): -1
 * when blob is not a sound index segment, else its number of postings,
 * after reading every term's postings through the directory and again
 * through the skip table, and inverting the whole. Pure; any thread.
 */
long long store_fts_segment_check(const void *blob, size_t size);

/* Classes of text a needle is looked up in (mail-fts.h). */
#define STORE_FTS_HEADER 0x1u
#define STORE_FTS_BODY 0x2u

/* The bodies of the user that the index covers (dead ones included);
 * with saturated_r not NULL, also those of them indexed as saturated (a
 * candidate for every needle: mail-fts.h), whose postings say nothing. */
int store_fts_indexed(struct store_read *r, uint32_t user_id,
    struct store_fts_set *set_r, struct store_fts_set *saturated_r,
    const char **error_r);
/*
 * The indexed bodies that may contain the folded needle (mail_utf8_
 * casefold) in one of classes: every body whose text in those classes
 * holds it is in the set (more may be). STORE_NOT_FOUND, with an empty
 * set, when the needle is shorter than the index's unit (3 bytes): the
 * index cannot narrow.
 */
int store_fts_candidates(struct store_read *r, uint32_t user_id,
    unsigned classes, const char *folded, size_t len,
    struct store_fts_set *set_r, const char **error_r);

struct store_fts_stats {
	uint64_t segments, docs, dead, bytes;
};
int store_fts_stat(struct store_read *r, uint32_t user_id,
    struct store_fts_stats *stats_r, const char **error_r);

/*
 * Indexes bodies of the user that are not indexed yet, up to about
 * max_bytes of message bytes, in ONE transaction (a writer job). *done_r
 * is true when none is left; *indexed_r counts this step's.
 */
int store_fts_reindex_step(struct store *store, uint32_t user_id,
    size_t max_bytes, bool *done_r, size_t *indexed_r, const char **error_r);
/* Drops the user's whole index (a rebuild then reindexes every body). */
int store_fts_drop(struct store *store, uint32_t user_id,
    const char **error_r);

/* The terms of stored bytes and their structure blob (blob_len 0: parsed
 * here), as store_fts_reindex_step computes them. Pure; any thread. */
struct mail_fts_terms;
void store_fts_body_terms(const void *data, size_t size, const void *blob,
    size_t blob_len, struct mail_fts_terms *terms);

/* ---- moving a user to another node (store-export.c) --------------------
 *
 * The gateway's `user export` reads a user with the read calls above plus
 * store_vanished_foreach(); `user import` writes the user back with the
 * calls below, all inside ONE writer job (one transaction: the user
 * appears whole or not at all). They keep what a device and an upstream
 * remember: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, UIDs, MODSEQs, the
 * expunge history, the ledger. docs/scale-out.md, "Moving a user".
 */

/* Settings key that marks a user moved away from this node: POP3
 * deliveries for them fail (INVALID) so no upstream message is stored
 * here once the export is taken, and logins are refused. */
#define STORE_META_MOVED "moved"

/* Every expunged UID of the mailbox with the MODSEQ it vanished at, in
 * (MODSEQ, UID) order. cb's non-zero return stops and is returned. */
int store_vanished_foreach(struct store_read *r, uint32_t user_id,
    uint32_t mailbox_id, int (*cb)(void *ctx, uint64_t modseq, uint32_t uid),
    void *ctx, const char **error_r);

/* Every account id that has ledger entries for the user (also accounts
 * removed since: their ledger stays), in byte order. */
int store_ledger_accounts(struct store_read *r, uint32_t user_id,
    int (*cb)(void *ctx, const char *account), void *ctx,
    const char **error_r);

/* Creates the user with INBOX only (no subscription), the given hash and
 * creation time. EXISTS when the name is taken. */
int store_import_user(struct store *store, const char *name,
    const char *password_hash, int64_t created, uint32_t *user_id_r,
    const char **error_r);

struct store_import_mailbox {
	const char *name;	/* UTF-8 as stored; INBOX exists already */
	enum store_role role;
	uint32_t uidvalidity;	/* >= 1 */
	uint32_t uidnext;	/* >= 1 */
	uint64_t highestmodseq;	/* >= 1 */
};
/* Creates the mailbox (INBOX: takes over the one store_import_user made)
 * with exactly these values. Parents must have been imported first. The
 * user's next UIDVALIDITY is raised above it. */
int store_import_mailbox(struct store *store, uint32_t user_id,
    const struct store_import_mailbox *mb, uint32_t *mailbox_id_r,
    const char **error_r);

struct store_import_msg {
	uint32_t uid;		/* ascending within a mailbox, < UIDNEXT */
	uint64_t modseq;	/* 1..HIGHESTMODSEQ */
	uint32_t system_flags;
	const char *const *keywords;
	size_t keyword_count;
	int64_t internaldate;
	int32_t tz_offset_min;
	/* body_id 0: new bytes (data/size, structure); else a body this
	   import already stored (a copy shares it: one more reference). */
	uint64_t body_id;
	const void *data;
	size_t size;
	const void *structure;
	size_t structure_size;
};
/* Adds count messages to the mailbox in one child transaction. body_ids_r
 * (count slots) receives each message's body id on this node. The
 * mailbox's counters follow; its UIDNEXT and HIGHESTMODSEQ stay. */
int store_import_messages(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const struct store_import_msg *msgs, size_t count,
    uint64_t *body_ids_r, const char **error_r);

/* Remembers count expunged UIDs with their MODSEQs (each uid < UIDNEXT,
 * modseq <= HIGHESTMODSEQ, not a message of the mailbox). */
int store_import_vanished(struct store *store, uint32_t user_id,
    uint32_t mailbox_id, const uint64_t *modseqs, const uint32_t *uids,
    size_t count, const char **error_r);

/* A body id of this user that no message has and never will (for a ledger
 * entry whose message was expunged on the old node). */
int store_import_dead_body(struct store *store, uint32_t user_id,
    uint64_t *body_id_r, const char **error_r);

/* Writes one ledger entry as given (mailbox_id, uid and body_id already
 * this node's), with its digest index. EXISTS if the UIDL is there. */
int store_import_ledger(struct store *store, uint32_t user_id,
    const char *account, const struct store_ledger_entry *e,
    const char **error_r);

/* Subscribes name (as store_mailbox_subscribe, no change event). */
int store_import_subscribe(struct store *store, uint32_t user_id,
    const char *name, const char **error_r);

/* ---- offline consistency check ---------------------------------------- */

/*
 * Opens the store in dir (a data directory, or a backup file written by
 * store_backup_fd, which is opened without changing it) and checks every
 * invariant: mailbox
 * counters match the messages, UIDs < UIDNEXT, modseqs <= HIGHESTMODSEQ,
 * every referenced body and structure exists with the right reference
 * count, no orphan bodies, name indexes match records. Writes one line per
 * problem to report (may be NULL). Returns 0 when consistent, -1 when a
 * problem was found or the store could not be opened (*error_r says which).
 * *problems_r (may be NULL) receives the number of problems.
 */
int store_check(const char *dir, FILE *report, unsigned int *problems_r,
    const char **error_r);

#endif
