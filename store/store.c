/*
 * store — the environment, read snapshots, write transactions with their
 * change events, key encoding and errors. The data operations live in
 * store-user.c, store-mailbox.c, store-message.c, store-ledger.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store-private.h"
#include "xmalloc.h"

static const char *const db_names[DB_COUNT] = {
	[DB_META] = "meta",
	[DB_USERS] = "users",
	[DB_USERNAMES] = "usernames",
	[DB_USERMETA] = "usermeta",
	[DB_MAILBOXES] = "mailboxes",
	[DB_MBNAMES] = "mbnames",
	[DB_SUBS] = "subscriptions",
	[DB_KEYWORDS] = "keywords",
	[DB_MSGS] = "messages",
	[DB_VANISHED] = "vanished",
	[DB_BODYINFO] = "bodyinfo",
	[DB_BODIES] = "bodies",
	[DB_STRUCTS] = "structures",
	[DB_FTS_SEGS] = "fts_segments",
	[DB_FTS_SEGINFO] = "fts_seginfo",
	[DB_LEDGER] = "ledger",
	[DB_DIGESTS] = "ledger_digests",
	[DB_SORTKEYS] = "sortkeys",
};

/* ---- keys ---- */

void
store_key_init(struct store_key *k)
{
	k->len = 0;
}

void
store_key_bytes(struct store_key *k, const void *p, size_t len)
{
	PG_ASSERT(k->len + len <= sizeof(k->b));
	if (len > 0)
		memcpy(k->b + k->len, p, len);
	k->len += len;
}

void
store_key_u8(struct store_key *k, uint8_t v)
{
	store_key_bytes(k, &v, 1);
}

void
store_key_u32(struct store_key *k, uint32_t v)
{
	unsigned char b[4] = { v >> 24, v >> 16, v >> 8, v };

	store_key_bytes(k, b, 4);
}

void
store_key_u64(struct store_key *k, uint64_t v)
{
	store_key_u32(k, (uint32_t)(v >> 32));
	store_key_u32(k, (uint32_t)v);
}

uint32_t
store_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

uint64_t
store_get_u64(const unsigned char *p)
{
	return (uint64_t)store_get_u32(p) << 32 | store_get_u32(p + 4);
}

MDB_val
store_key_val(struct store_key *k)
{
	MDB_val v = { k->len, k->b };

	return v;
}

bool
store_key_has_prefix(const MDB_val *v, const struct store_key *k)
{
	return v->mv_size >= k->len && memcmp(v->mv_data, k->b, k->len) == 0;
}

void
store_key_tail(const MDB_val *v, size_t skip, char *buf, size_t max)
{
	size_t len = v->mv_size > skip ? v->mv_size - skip : 0;

	if (len > max)
		len = max;
	memcpy(buf, (const char *)v->mv_data + skip, len);
	buf[len] = '\0';
}

/* ---- errors ---- */

/* The last error of each thread: the loop, every worker and the writer
 * read and write in parallel, and each sees its own. */
static _Thread_local enum store_error tls_last_error;
static _Thread_local char tls_errbuf[256];

void
store_set_error(enum store_error cls, const char *text)
{
	tls_last_error = cls;
	snprintf(tls_errbuf, sizeof(tls_errbuf), "%s", text);
}

int
store_fail(struct store *store, const char **error_r, enum store_error cls,
    const char *fmt, ...)
{
	va_list ap;

	(void)store;
	va_start(ap, fmt);
	vsnprintf(tls_errbuf, sizeof(tls_errbuf), fmt, ap);
	va_end(ap);
	tls_last_error = cls;
	if (error_r != NULL)
		*error_r = tls_errbuf;
	return -1;
}

int
store_fail_mdb(struct store *store, const char **error_r, int rc,
    const char *what)
{
	enum store_error cls = STORE_ERR_IO;

	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EFBIG ||
	    rc == EDQUOT)
		cls = STORE_ERR_NOSPACE;
	if (rc == MDB_TXN_FULL)
		cls = STORE_ERR_LIMIT;
	if (rc == MDB_NOTFOUND)
		cls = STORE_ERR_NOTFOUND;
	return store_fail(store, error_r, cls, "store: %s: %s", what,
	    mdb_strerror(rc));
}

void
store_ok(struct store *store)
{
	(void)store;
	tls_last_error = STORE_ERR_NONE;
}

enum store_error
store_last_error(const struct store *store)
{
	(void)store;
	return tls_last_error;
}

/* ---- open / close ---- */

int
store_open(const char *dir, const struct store_options *opts,
    struct store **store_r, const char **error_r)
{
	static char errbuf[256];
	struct store *store = xcalloc(1, sizeof(*store));
	size_t map_size = STORE_DEFAULT_MAP_SIZE;
	unsigned int readers = 512;
	MDB_txn *txn = NULL;
	int rc, dead;
	const char *what = "mdb_env_create";

	*store_r = NULL;
	if (opts != NULL && opts->map_size != 0)
		map_size = opts->map_size;
	if (opts != NULL && opts->max_readers != 0)
		readers = opts->max_readers;
	store->fts_enabled = opts == NULL || !opts->no_fts_index;
	if (opts != NULL)
		store->map_max = opts->map_max;
	store->dir = xstrdup(dir);
	pthread_mutex_init(&store->gate_mu, NULL);
	pthread_cond_init(&store->gate_cv, NULL);
	if ((rc = mdb_env_create(&store->env)) != 0)
		goto fail;
	what = "mdb_env_set_mapsize";
	if ((rc = mdb_env_set_mapsize(store->env, map_size)) != 0)
		goto fail;
	what = "mdb_env_set_maxdbs";
	if ((rc = mdb_env_set_maxdbs(store->env, DB_COUNT + 2)) != 0)
		goto fail;
	what = "mdb_env_set_maxreaders";
	if ((rc = mdb_env_set_maxreaders(store->env, readers)) != 0)
		goto fail;
	/* Durable commits: never MDB_NOSYNC / MDB_NOMETASYNC. MDB_NOTLS lets
	   one thread hold several read snapshots (sessions, open bodies). */
	what = "mdb_env_open";
	if ((rc = mdb_env_open(store->env, dir, MDB_NOTLS, 0600)) != 0)
		goto fail;
	(void)mdb_reader_check(store->env, &dead);
	what = "mdb_txn_begin";
	if ((rc = mdb_txn_begin(store->env, NULL, 0, &txn)) != 0)
		goto fail;
	for (int i = 0; i < DB_COUNT; i++) {
		what = db_names[i];
		if ((rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE,
		    &store->dbi[i])) != 0)
			goto fail;
	}
	what = "mdb_txn_commit";
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0)
		goto fail;
	*store_r = store;
	return 0;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	snprintf(errbuf, sizeof(errbuf), "store: open %s: %s: %s", dir, what,
	    mdb_strerror(rc));
	if (error_r != NULL)
		*error_r = errbuf;
	if (store->env != NULL)
		mdb_env_close(store->env);
	pthread_cond_destroy(&store->gate_cv);
	pthread_mutex_destroy(&store->gate_mu);
	free(store->dir);
	free(store);
	return -1;
}

/* Drops the events from index from on (an aborted call's, or all). */
static void
events_truncate(struct store *store, size_t from)
{
	for (size_t i = from; i < store->event_count; i++) {
		free(store->events[i].uids);
		free(store->events[i].name);
		free(store->events[i].old_name);
	}
	if (from < store->event_count)
		store->event_count = from;
}

static void
events_clear(struct store *store)
{
	events_truncate(store, 0);
	store->call_mark = 0;
}

void
store_events_reset(struct store *store)
{
	events_clear(store);
}

void
store_events_free(struct store_event *events, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(events[i].uids);
		free(events[i].name);
		free(events[i].old_name);
	}
	free(events);
}

void
store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	PG_ASSERT(store->writer == NULL);	/* store_writer_stop first */
	events_clear(store);
	free(store->events);
	free(store->fts_pending);
	mdb_env_close(store->env);
	pthread_cond_destroy(&store->gate_cv);
	pthread_mutex_destroy(&store->gate_mu);
	free(store->dir);
	free(store);
	*storep = NULL;
}

void
store_set_change_cb(struct store *store,
    void (*cb)(void *arg, const struct store_change *change), void *arg)
{
	store->change_cb = cb;
	store->change_arg = arg;
}

/* ---- the map gate ---- */

/* Snapshots this thread holds (begun here and not ended): a thread that
   holds one never waits for a growth, which may be waiting for it. */
static _Thread_local int tls_snapshots;

void
store_gate_enter(struct store *store)
{
	pthread_mutex_lock(&store->gate_mu);
	while (store->growing ||
	    (store->grow_pending && tls_snapshots <= 0))
		pthread_cond_wait(&store->gate_cv, &store->gate_mu);
	store->readers++;
	pthread_mutex_unlock(&store->gate_mu);
	tls_snapshots++;
}

void
store_gate_leave(struct store *store)
{
	tls_snapshots--;
	pthread_mutex_lock(&store->gate_mu);
	PG_ASSERT(store->readers > 0);
	if (--store->readers == 0 && store->grow_pending)
		pthread_cond_broadcast(&store->gate_cv);
	pthread_mutex_unlock(&store->gate_mu);
}

/* Space numbers; the caller is inside the gate (or is the writer between
   groups). */
static void
space_read(struct store *store, struct store_space *sp)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	struct statvfs sv;
	int fd;

	memset(sp, 0, sizeof(*sp));
	if (mdb_env_info(store->env, &info) == 0 &&
	    mdb_env_stat(store->env, &st) == 0) {
		sp->used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
		sp->map_size = info.me_mapsize;
		sp->readers_used = info.me_numreaders;
		sp->readers_max = info.me_maxreaders;
	}
	if (mdb_env_get_fd(store->env, &fd) == 0 && fstat(fd, &fst) == 0)
		sp->file_size = (uint64_t)fst.st_size;
	if (statvfs(store->dir, &sv) == 0) {
		sp->disk_free = (uint64_t)sv.f_bavail * sv.f_frsize;
		sp->disk_size = (uint64_t)sv.f_blocks * sv.f_frsize;
	}
	sp->map_max = store->map_max;
	sp->capacity = sp->file_size + sp->disk_free;
	if (store->writer == NULL && sp->map_size < sp->capacity)
		sp->capacity = sp->map_size;	/* no growth without a writer */
	if (store->map_max != 0 && store->map_max < sp->capacity)
		sp->capacity = store->map_max;
	if (sp->capacity < sp->used)
		sp->capacity = sp->used;
	sp->near_full = sp->disk_free < STORE_WARN_FREE_BYTES ||
	    sp->used >= sp->capacity / 100 * STORE_WARN_USED_PERCENT;
}

int
store_space_get(struct store *store, struct store_space *sp_r,
    const char **error_r)
{
	(void)error_r;
	store_gate_enter(store);
	space_read(store, sp_r);
	pthread_mutex_lock(&store->gate_mu);
	sp_r->grows = store->grows;
	pthread_mutex_unlock(&store->gate_mu);
	store_gate_leave(store);
	return 0;
}

int
store_map_grow(struct store *store, uint64_t need)
{
	struct store_space sp;
	struct timespec until;
	uint64_t want, size;
	int rc = 0, mrc;

	space_read(store, &sp);
	/* room for the bytes, their B-tree pages and the freed copies */
	want = sp.used + need + need / 2 + 8 * 1024 * 1024;
	if (want <= sp.map_size)
		return 0;
	size = sp.map_size + sp.map_size / 2;
	if (size < sp.map_size + STORE_GROW_MIN)
		size = sp.map_size + STORE_GROW_MIN;
	if (size < want)
		size = want;
	/* never past what the disk can hold (pages of the file not yet
	   written take disk too), nor map_max */
	if (size > sp.file_size + sp.disk_free)
		size = sp.file_size + sp.disk_free;
	if (store->map_max != 0 && size > store->map_max)
		size = store->map_max;
	if (size < want) {
		/* once a minute at most: a full store is tried every group */
		if (time(NULL) - store->full_logged >= 60) {
			store->full_logged = time(NULL);
			log_warn("store event=map-full used=%llu map=%llu "
			    "disk_free=%llu need=%llu",
			    (unsigned long long)sp.used,
			    (unsigned long long)sp.map_size,
			    (unsigned long long)sp.disk_free,
			    (unsigned long long)need);
		}
		if (size <= sp.map_size)
			return -1;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STORE_GROW_WAIT_MS / 1000;
	until.tv_nsec += (long)(STORE_GROW_WAIT_MS % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&store->gate_mu);
	store->grow_pending = true;
	while (store->readers > 0 && rc == 0)
		rc = pthread_cond_timedwait(&store->gate_cv, &store->gate_mu,
		    &until);
	if (store->readers > 0) {
		store->grow_pending = false;
		pthread_cond_broadcast(&store->gate_cv);
		pthread_mutex_unlock(&store->gate_mu);
		log_info("store event=map-grow-deferred readers=open");
		return -1;
	}
	store->growing = true;
	pthread_mutex_unlock(&store->gate_mu);
	/* no snapshot is open and none can start: LMDB's condition */
	mrc = mdb_env_set_mapsize(store->env, (size_t)size);
	pthread_mutex_lock(&store->gate_mu);
	store->growing = false;
	store->grow_pending = false;
	if (mrc == 0)
		store->grows++;
	pthread_cond_broadcast(&store->gate_cv);
	pthread_mutex_unlock(&store->gate_mu);
	if (mrc != 0) {
		log_error("store event=map-grow-failed size=%llu error=\"%s\"",
		    (unsigned long long)size, mdb_strerror(mrc));
		return -1;
	}
	log_info("store event=map-grown from=%llu to=%llu used=%llu "
	    "disk_free=%llu", (unsigned long long)sp.map_size,
	    (unsigned long long)size, (unsigned long long)sp.used,
	    (unsigned long long)sp.disk_free);
	return size >= want ? 1 : -1;
}

/* ---- read snapshots ---- */

int
store_read_begin(struct store *store, struct store_read **read_r,
    const char **error_r)
{
	MDB_txn *txn;
	int rc;

	*read_r = NULL;
	store_gate_enter(store);
	if ((rc = mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn)) != 0) {
		store_gate_leave(store);
		return store_fail_mdb(store, error_r, rc, "read snapshot");
	}
	*read_r = xmalloc(sizeof(**read_r));
	(*read_r)->store = store;
	(*read_r)->txn = txn;
	store_ok(store);
	return 0;
}

void
store_read_end(struct store_read **readp)
{
	struct store_read *r = *readp;

	if (r == NULL)
		return;
	mdb_txn_abort(r->txn);
	store_gate_leave(r->store);
	free(r);
	*readp = NULL;
}

/* ---- write transactions ---- */

/* Set on the writer thread while it runs a job (store-writer.c). */
static _Thread_local MDB_txn *tls_job_txn;

MDB_txn *
store_job_txn(void)
{
	return tls_job_txn;
}

void
store_set_job_txn(MDB_txn *txn)
{
	tls_job_txn = txn;
}

int
store_wbegin(struct store *store, MDB_txn **txn_r, const char **error_r)
{
	MDB_txn *parent = tls_job_txn;
	int rc;

	*txn_r = NULL;
	/* (in_change_cb is the owner thread's: read only without a writer) */
	if (store->writer == NULL && store->in_change_cb)
		return store_fail(store, error_r, STORE_ERR_INVALID,
		    "store: write called from the change callback");
	/* With a writer thread, every write runs on it: a write from any
	   other thread would wait for the writer's lock on the loop and
	   publish its events out of order. */
	PG_ASSERT(store->writer == NULL || parent != NULL);
	PG_ASSERT(!store->in_call);
	if (parent == NULL)
		events_clear(store);
	store->call_mark = store->event_count;
	if ((rc = mdb_txn_begin(store->env, parent, 0, txn_r)) != 0)
		return store_fail_mdb(store, error_r, rc, "write transaction");
	store->in_call = true;
	return 0;
}

void
store_wabort(struct store *store, MDB_txn *txn)
{
	/* NULL: the transaction never began (or commit already ended it),
	   so this call queued no events; leave the queue alone (it may be
	   the one being dispatched). */
	if (txn == NULL)
		return;
	mdb_txn_abort(txn);
	events_truncate(store, store->call_mark);
	store->in_call = false;
}

/* Free bytes below which a failed write is taken for a full disk. */
#define STORE_FULL_MARGIN ((uint64_t)16 * 1024 * 1024)

/*
 * LMDB 0.9 turns a short write (what a full disk gives) into EIO. Tell the
 * two apart by looking: a file system (or RLIMIT_FSIZE) with almost no room
 * left means the disk is full, which the caller reports differently.
 */
static bool
store_disk_full(struct store *store, uint64_t *free_r)
{
	struct statvfs vfs;
	struct rlimit rl;
	struct stat st;
	int fd;

	*free_r = 0;
	if (mdb_env_get_fd(store->env, &fd) != 0 || fstat(fd, &st) < 0)
		return false;
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (uint64_t)st.st_size + STORE_FULL_MARGIN > rl.rlim_cur) {
		*free_r = rl.rlim_cur > (uint64_t)st.st_size ?
		    rl.rlim_cur - (uint64_t)st.st_size : 0;
		return true;
	}
	if (fstatvfs(fd, &vfs) < 0)
		return false;
	*free_r = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return *free_r < STORE_FULL_MARGIN ||
	    *free_r < (uint64_t)vfs.f_blocks * vfs.f_frsize / 100;
}

int
store_commit_failed(struct store *store, int rc, const char **error_r)
{
	uint64_t free_bytes;

	if (rc == EIO && store_disk_full(store, &free_bytes)) {
		log_error("store event=commit-failed error=disk-full "
		    "free=%llu", (unsigned long long)free_bytes);
		return store_fail(store, error_r, STORE_ERR_NOSPACE,
		    "store: commit: disk full (%llu bytes free)",
		    (unsigned long long)free_bytes);
	}
	log_error("store event=commit-failed error=\"%s\"", mdb_strerror(rc));
	return store_fail_mdb(store, error_r, rc, "commit");
}

void
store_event_dispatch(struct store *store, struct store_event *ev,
    uint64_t origin)
{
	if (store->change_cb == NULL ||
	    (ev->ch.kind <= STORE_CHANGE_EXPUNGE && ev->ch.uid_count == 0))
		return;
	ev->ch.uids = ev->uids;
	ev->ch.name = ev->name;
	ev->ch.old_name = ev->old_name;
	ev->ch.origin = origin;
	/* The callback may take snapshots; it must not write. */
	store->in_change_cb = true;
	store->change_cb(store->change_arg, &ev->ch);
	store->in_change_cb = false;
}

int
store_wcommit(struct store *store, MDB_txn *txn, const char **error_r)
{
	int rc = mdb_txn_commit(txn);

	store->in_call = false;
	if (tls_job_txn != NULL) {
		/* a child of the writer's job: merged into it, durable with
		   the group; the events wait for that commit */
		if (rc != 0) {
			events_truncate(store, store->call_mark);
			return store_fail_mdb(store, error_r, rc, "commit");
		}
		store_ok(store);
		return 0;
	}
	if (rc != 0) {
		events_clear(store);
		return store_commit_failed(store, rc, error_r);
	}
	store_ok(store);
	/* the event array is stable while we walk it: the callback
	   cannot write (in_change_cb) */
	for (size_t i = 0; i < store->event_count; i++)
		store_event_dispatch(store, &store->events[i], 0);
	events_clear(store);
	return 0;
}

struct store_event *
store_event_add(struct store *store, enum store_change_kind kind,
    uint32_t user_id, const struct store_mb *mb, uint32_t mailbox_id)
{
	struct store_event *ev;

	/* Merge into an existing event of the same kind and mailbox: message
	   events gather UIDs, and a mailbox created in this transaction is
	   announced once, with its final state (INBOX rename creates the
	   new mailbox, then fills it). */
	for (size_t i = store->call_mark; i < store->event_count; i++) {
		ev = &store->events[i];
		if (ev->ch.kind == kind && ev->ch.user_id == user_id &&
		    ev->ch.mailbox_id == mailbox_id &&
		    (kind <= STORE_CHANGE_EXPUNGE ||
		    kind == STORE_CHANGE_MAILBOX_CREATE))
			goto fill;
	}
	if (store->event_count == store->event_cap) {
		store->event_cap = store->event_cap == 0 ? 8 :
		    store->event_cap * 2;
		store->events = xreallocarray(store->events, store->event_cap,
		    sizeof(*store->events));
	}
	ev = &store->events[store->event_count++];
	memset(ev, 0, sizeof(*ev));
	ev->ch.kind = kind;
	ev->ch.user_id = user_id;
	ev->ch.mailbox_id = mailbox_id;
fill:
	if (mb != NULL) {
		ev->ch.uidvalidity = mb->rec.uidvalidity;
		ev->ch.uidnext = mb->rec.uidnext;
		ev->ch.messages = mb->rec.messages;
		ev->ch.highestmodseq = mb->rec.highestmodseq;
	}
	return ev;
}

void
store_event_add_uid(struct store_event *ev, uint32_t uid)
{
	if (ev->ch.uid_count == ev->uid_cap) {
		ev->uid_cap = ev->uid_cap == 0 ? 16 : ev->uid_cap * 2;
		ev->uids = xreallocarray(ev->uids, ev->uid_cap,
		    sizeof(*ev->uids));
	}
	ev->uids[ev->ch.uid_count++] = uid;
}

void
store_event_set_names(struct store_event *ev, const char *name,
    const char *old_name)
{
	free(ev->name);
	free(ev->old_name);
	ev->name = name != NULL ? xstrdup(name) : NULL;
	ev->old_name = old_name != NULL ? xstrdup(old_name) : NULL;
}

/* ---- file growth ---- */

/* Grow the data file by at least this much at a time. */
#define STORE_GROW_CHUNK ((uint64_t)64 * 1024 * 1024)

void
store_reserve(struct store *store, MDB_txn *txn, uint64_t bytes)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	uint64_t used, want, grow;
	int fd;

	if (mdb_env_info(store->env, &info) != 0 ||
	    mdb_env_stat(store->env, &st) != 0 ||
	    mdb_env_get_fd(store->env, &fd) != 0 || fstat(fd, &fst) < 0)
		return;
	(void)txn;
	used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	/* Room for the batch, its B-tree pages and the freed copies. */
	want = used + bytes + bytes / 4 + 4 * 1024 * 1024;
	if ((uint64_t)fst.st_size >= want || want > info.me_mapsize)
		return;
	grow = want - (uint64_t)fst.st_size;
	if (grow < STORE_GROW_CHUNK)
		grow = STORE_GROW_CHUNK;
	/* Bigger steps for bigger files, but never hoard much of a disk
	   that others (logs) share. */
	if (grow < (uint64_t)fst.st_size / 8)
		grow = (uint64_t)fst.st_size / 8;
	if (grow > 4 * STORE_GROW_CHUNK && grow > want - (uint64_t)fst.st_size)
		grow = want - (uint64_t)fst.st_size > 4 * STORE_GROW_CHUNK ?
		    want - (uint64_t)fst.st_size : 4 * STORE_GROW_CHUNK;
	if ((uint64_t)fst.st_size + grow > info.me_mapsize)
		grow = info.me_mapsize - (uint64_t)fst.st_size;
	/* Allocating ahead makes each commit's fdatasync write data into
	   blocks the file already owns instead of growing the file every
	   time (about twice the delivery rate on ext4). It is only an
	   optimisation: on failure (full disk, no fallocate) the commit
	   meets the real error itself. */
	if (fallocate(fd, 0, fst.st_size, (off_t)grow) < 0)
		log_debug("store event=preallocate-failed error=\"%s\"",
		    strerror(errno));
}

/* ---- helpers ---- */

int
store_del_prefix(struct store *store, MDB_txn *txn, enum store_db db,
    const struct store_key *prefix, const char **error_r)
{
	struct store_key k = *prefix;
	MDB_cursor *cur;
	MDB_val key = store_key_val(&k), data;
	int rc;

	if ((rc = mdb_cursor_open(txn, store->dbi[db], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, prefix)) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		/* After a delete, MDB_NEXT yields the item that followed. */
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "delete range");
	return 0;
}

int
store_del_key(struct store *store, enum store_db db, struct store_key *k,
    const char *what, const char **error_r)
{
	MDB_txn *txn = NULL;
	MDB_val key;
	int rc;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	key = store_key_val(k);
	rc = mdb_del(txn, store->dbi[db], &key, NULL);
	if (rc == MDB_NOTFOUND) {
		store_wabort(store, txn);
		store_ok(store);
		return STORE_NOT_FOUND;
	}
	if (rc != 0) {
		store_fail_mdb(store, error_r, rc, what);
		store_wabort(store, txn);
		return -1;
	}
	return store_wcommit(store, txn, error_r);
}

int
store_prefix_foreach(struct store *store, MDB_txn *txn, enum store_db db,
    const struct store_key *prefix,
    int (*each)(void *ctx, const MDB_val *key, const MDB_val *data),
    void *ctx, const char *what, const char **error_r)
{
	struct store_key k = *prefix;
	MDB_cursor *cur;
	MDB_val key = store_key_val(&k), data;
	int rc, ret = 0;

	if ((rc = mdb_cursor_open(txn, store->dbi[db], &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "cursor");
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, prefix)) {
		if ((ret = each(ctx, &key, &data)) != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, what);
	return 0;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct store_uid_range *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

int
store_ranges_normalize(const struct store_uid_range *ranges, size_t n,
    struct store_uid_range **out_r, size_t *count_r)
{
	struct store_uid_range *out;
	size_t m = 0;

	*out_r = NULL;
	*count_r = 0;
	for (size_t i = 0; i < n; i++) {
		if (ranges[i].first == 0 || ranges[i].first > ranges[i].last)
			return -1;
	}
	if (n == 0)
		return 0;
	out = xreallocarray(NULL, n, sizeof(*out));
	memcpy(out, ranges, n * sizeof(*out));
	qsort(out, n, sizeof(*out), range_cmp);
	for (size_t i = 1; i < n; i++) {
		if (out[m].last == UINT32_MAX ||
		    out[i].first <= out[m].last + 1) {
			if (out[i].last > out[m].last)
				out[m].last = out[i].last;
		} else {
			out[++m] = out[i];
		}
	}
	*out_r = out;
	*count_r = m + 1;
	return 0;
}

const char *
store_role_name(enum store_role role)
{
	switch (role) {
	case STORE_ROLE_SENT: return "\\Sent";
	case STORE_ROLE_DRAFTS: return "\\Drafts";
	case STORE_ROLE_TRASH: return "\\Trash";
	case STORE_ROLE_JUNK: return "\\Junk";
	case STORE_ROLE_ARCHIVE: return "\\Archive";
	case STORE_ROLE_ALL: return "\\All";
	case STORE_ROLE_FLAGGED: return "\\Flagged";
	case STORE_ROLE_NONE: break;
	}
	return NULL;
}
