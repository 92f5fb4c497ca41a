/*
 * store-writer — the one thread that writes (store.h, "the writer
 * thread"): jobs queued fairly by key, run as child transactions of one
 * group transaction, one durable commit per group, then events and done
 * callbacks handed back to the owner thread in commit order.
 *
 * Ownership: the mutex guards the queue, the done list, the counters and
 * the stopping flag. The group being run, the store's event array and
 * every LMDB write transaction belong to the writer thread alone. A job
 * belongs to the writer from submit until it is on the done list, then
 * to the owner thread (store_writer_drain).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fairq.h"
#include "log.h"
#include "store-private.h"
#include "xmalloc.h"

struct wjob {
	struct fairq_item item;	/* in the queue */
	struct wjob *next;	/* in a group, then on the done list */
	store_apply_fn *apply;
	void *ctx;		/* apply's */
	store_done_fn *done;
	void *done_ctx;		/* done's (the same but for store_write_sync) */
	uint64_t key, origin;
	size_t bytes;
	struct timespec submitted;
	/* the outcome, set by the writer */
	int rc;
	enum store_error cls;
	char error[256];
	struct store_event *events;
	size_t event_count;
	bool published;		/* on the done list (store_write_sync) */
	bool grow_tried;	/* ran alone after the map was grown for it */
};

struct store_writer {
	struct store *store;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t published_cv;	/* a group reached the done list */
	pthread_t thread;
	bool stopping;
	struct fairq queue;
	struct wjob *done_head, *done_tail;
	/* taken off the done list, not yet dispatched (owner thread only) */
	struct wjob *owner_head;
	/* the newest transaction id whose group reached the done list */
	uint64_t published_txnid;
	void (*notify)(void *arg);
	void *notify_arg;
	struct store_writer_stats stats;
	/* called (under mu) after each group commit: metrics */
	void (*observe)(void *arg, double seconds, size_t jobs);
	void *observe_arg;
};

static struct wjob *
wjob_of(struct fairq_item *item)
{
	return (struct wjob *)((char *)item - offsetof(struct wjob, item));
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static unsigned
log2_bucket(uint64_t v, unsigned buckets)
{
	unsigned b = 0;

	while (b + 1 < buckets && ((uint64_t)1 << b) < v)
		b++;
	return b;
}

static void
job_fail(struct wjob *job, enum store_error cls, const char *error)
{
	job->rc = -1;
	job->cls = cls != STORE_ERR_NONE ? cls : STORE_ERR_IO;
	snprintf(job->error, sizeof(job->error), "%s",
	    error != NULL ? error : "store error");
	store_events_free(job->events, job->event_count);
	job->events = NULL;
	job->event_count = 0;
}

/*
 * Runs one job as a child of parent (the group's transaction), or as a
 * top-level transaction when parent is NULL and direct is set (no writer:
 * then durable on return). The store's event array is empty before and
 * after; the job's events are moved into it.
 */
static void
run_job(struct store *store, MDB_txn *parent, struct wjob *job)
{
	const char *err = NULL;
	MDB_txn *txn = NULL;
	int rc;

	job->rc = 0;
	job->cls = STORE_ERR_NONE;
	job->error[0] = '\0';
	PG_ASSERT(store->event_count == 0 && !store->in_call);
	if ((rc = mdb_txn_begin(store->env, parent, 0, &txn)) != 0) {
		store_fail_mdb(store, &err, rc, "job transaction");
		job_fail(job, store_last_error(store), err);
		return;
	}
	store_set_job_txn(txn);
	store_ok(store);
	rc = job->apply(store, job->ctx, &err);
	store_set_job_txn(NULL);
	if (rc < 0) {
		enum store_error cls = store_last_error(store);

		mdb_txn_abort(txn);
		store_events_reset(store);
		job_fail(job, cls, err);
		return;
	}
	job->rc = rc;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		if (parent == NULL)
			store_commit_failed(store, rc, &err);
		else
			store_fail_mdb(store, &err, rc, "job commit");
		job_fail(job, store_last_error(store), err);
		store_events_reset(store);
		return;
	}
	/* hand the job its events; the store starts the next one empty */
	job->events = store->events;
	job->event_count = store->event_count;
	store->events = NULL;
	store->event_count = store->event_cap = 0;
	store->call_mark = 0;
}

/* Delivers a finished job to its owner (events, then done). */
static void
finish_job(struct store *store, struct wjob *job)
{
	if (job->rc >= 0)
		for (size_t i = 0; i < job->event_count; i++)
			store_event_dispatch(store, &job->events[i],
			    job->origin);
	job->done(job->done_ctx, job->rc, job->cls, job->error);
	store_events_free(job->events, job->event_count);
	free(job);
}

static bool
room_class(enum store_error cls)
{
	return cls == STORE_ERR_NOSPACE || cls == STORE_ERR_LIMIT;
}

/*
 * Runs a group: every job as a child of one transaction, one durable
 * commit. A job that fails for room after other jobs succeeded in this
 * group is taken out and returned through *alone_r, to run by itself.
 */
static void
run_group(struct store_writer *w, struct wjob **groupp, size_t n,
    struct wjob **alone_r, uint64_t *txnid_r)
{
	struct wjob *group = *groupp;
	struct store *store = w->store;
	struct timespec oldest = group->submitted;
	struct wjob **pp, *job;
	MDB_txn *txn = NULL;
	const char *err = NULL;
	size_t ok = 0, bytes = 0;
	double ms;
	int rc;

	*alone_r = NULL;
	*txnid_r = 0;
	for (job = group; job != NULL; job = job->next) {
		bytes += job->bytes;
		if (job->submitted.tv_sec < oldest.tv_sec ||
		    (job->submitted.tv_sec == oldest.tv_sec &&
		    job->submitted.tv_nsec < oldest.tv_nsec))
			oldest = job->submitted;
	}
	store_reserve(store, NULL, bytes);
	if ((rc = mdb_txn_begin(store->env, NULL, 0, &txn)) != 0) {
		store_fail_mdb(store, &err, rc, "group transaction");
		for (job = group; job != NULL; job = job->next)
			job_fail(job, store_last_error(store), err);
		goto out;
	}
	*txnid_r = (uint64_t)mdb_txn_id(txn);
	for (pp = &group; (job = *pp) != NULL;) {
		run_job(store, txn, job);
		if (job->rc < 0 && room_class(job->cls) && *alone_r == NULL &&
		    (ok > 0 || !job->grow_tried)) {
			/* not its fault, perhaps: the others' pages took the
			   room, or the map is full. Again alone, after this
			   group commits and the map grew if it can. */
			*pp = job->next;
			job->next = NULL;
			*alone_r = job;
			n--;
			continue;
		}
		if (job->rc >= 0)
			ok++;
		pp = &job->next;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		store_commit_failed(store, rc, &err);
		for (job = group; job != NULL; job = job->next)
			if (job->rc >= 0)
				job_fail(job, store_last_error(store), err);
		pthread_mutex_lock(&w->mu);
		w->stats.commit_failures++;
		pthread_mutex_unlock(&w->mu);
	}
out:
	ms = ms_since(&oldest);
	pthread_mutex_lock(&w->mu);
	w->stats.jobs += n;
	w->stats.commits++;
	if (*alone_r != NULL)
		w->stats.retried_alone++;
	w->stats.group_jobs[log2_bucket(n, N_ELEMENTS(w->stats.group_jobs))]++;
	w->stats.commit_ms[log2_bucket((uint64_t)ms,
	    N_ELEMENTS(w->stats.commit_ms))]++;
	w->stats.commit_ms_sum += (uint64_t)ms;
	if (w->observe != NULL)
		w->observe(w->observe_arg, ms / 1e3, n);
	pthread_mutex_unlock(&w->mu);
	log_debug("store event=group-commit jobs=%zu ok=%zu bytes=%zu ms=%.1f",
	    n, ok, bytes, ms);
	/* the first job may have been taken out to run alone */
	*groupp = group;
}

/* Hands a finished group to the owner. */
static void
publish(struct store_writer *w, struct wjob *group, uint64_t txnid)
{
	bool wake;
	struct wjob *last;

	if (group == NULL)
		return;
	for (last = group; last->next != NULL; last = last->next)
		;
	pthread_mutex_lock(&w->mu);
	for (struct wjob *j = group; j != NULL; j = j->next)
		j->published = true;
	if (txnid > w->published_txnid)
		w->published_txnid = txnid;
	pthread_cond_broadcast(&w->published_cv);
	wake = w->done_head == NULL;
	if (w->done_tail != NULL)
		w->done_tail->next = group;
	else
		w->done_head = group;
	w->done_tail = last;
	pthread_mutex_unlock(&w->mu);
	if (wake)
		w->notify(w->notify_arg);
}

static void *
writer_main(void *arg)
{
	struct store_writer *w = arg;
	struct wjob *carry = NULL, *alone = NULL;
	uint64_t txnid;

	for (;;) {
		struct wjob *group = NULL, **tail = &group;
		size_t n = 0, bytes = 0;

		if (alone != NULL) {
			/* a job that failed for room: grow the map if the
			   disk has room (no transaction is open here), then
			   the job again, alone */
			group = alone;
			alone = NULL;
			group->grow_tried = true;
			(void)store_map_grow(w->store, group->bytes);
			run_group(w, &group, 1, &alone, &txnid);
			publish(w, group, txnid);
			continue;
		}
		pthread_mutex_lock(&w->mu);
		if (carry == NULL && w->queue.count == 0 && !w->stopping) {
			/* idle: one deferred index merge step, if any, then
			   look at the queue again (store_fts_idle_step) */
			pthread_mutex_unlock(&w->mu);
			if (store_fts_idle_step(w->store) > 0)
				continue;
			pthread_mutex_lock(&w->mu);
		}
		while (carry == NULL && w->queue.count == 0 && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (carry == NULL && w->queue.count == 0) {
			pthread_mutex_unlock(&w->mu);
			break;		/* stopping, and nothing left */
		}
		if (carry != NULL) {
			*tail = carry;
			tail = &carry->next;
			bytes += carry->bytes;
			n++;
			carry = NULL;
		}
		while (n < STORE_GROUP_JOBS_MAX && w->queue.count > 0) {
			struct wjob *job = wjob_of(fairq_pop(&w->queue));

			if (n > 0 && bytes + job->bytes > STORE_GROUP_BYTES_MAX) {
				carry = job;	/* first of the next group */
				break;
			}
			job->next = NULL;
			*tail = job;
			tail = &job->next;
			bytes += job->bytes;
			n++;
		}
		w->stats.queued = (unsigned)w->queue.count + (carry != NULL);
		pthread_mutex_unlock(&w->mu);
		/* between groups no transaction is open: the one moment the
		   map may grow (store.h, "capacity") */
		(void)store_map_grow(w->store, bytes);
		run_group(w, &group, n, &alone, &txnid);
		publish(w, group, txnid);
	}
	return NULL;
}

int
store_writer_start(struct store *store, void (*notify)(void *arg),
    void *arg, const char **error_r)
{
	struct store_writer *w;
	int rc;

	PG_ASSERT(store->writer == NULL);
	w = xcalloc(1, sizeof(*w));
	w->store = store;
	w->notify = notify;
	w->notify_arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->published_cv, NULL);
	fairq_init(&w->queue);
	store->writer = w;
	store_fts_defer_merges(store, true);
	if ((rc = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
		store_fts_defer_merges(store, false);
		store->writer = NULL;
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return store_fail(store, error_r, STORE_ERR_IO,
		    "store: writer thread: %s", strerror(rc));
	}
	(void)pthread_setname_np(w->thread, "pg-writer");
	return 0;
}

bool
store_writer_running(const struct store *store)
{
	return store->writer != NULL;
}

static struct wjob *
submit(struct store *store, uint64_t key, uint64_t origin, size_t bytes,
    store_apply_fn *apply, void *ctx, store_done_fn *done, void *done_ctx)
{
	struct store_writer *w = store->writer;
	struct wjob *job = xcalloc(1, sizeof(*job));

	job->apply = apply;
	job->ctx = ctx;
	job->done = done;
	job->done_ctx = done_ctx;
	job->key = key;
	job->origin = origin;
	job->bytes = bytes;
	clock_gettime(CLOCK_MONOTONIC, &job->submitted);
	if (w == NULL) {
		/* no writer (tools, unit tests): the same job semantics,
		   run here, durable on return, done() before we return */
		store_reserve(store, NULL, bytes);
		run_job(store, NULL, job);
		finish_job(store, job);
		return NULL;
	}
	pthread_mutex_lock(&w->mu);
	fairq_push(&w->queue, key, &job->item);
	w->stats.queued = (unsigned)w->queue.count;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return job;
}

void
store_write_submit(struct store *store, uint64_t key, uint64_t origin,
    size_t bytes, store_apply_fn *apply, store_done_fn *done, void *ctx)
{
	(void)submit(store, key, origin, bytes, apply, ctx, done, ctx);
}

struct sync_result {
	int rc;
	enum store_error cls;
	char error[256];
};

static void
sync_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct sync_result *res = ctx;

	res->rc = rc;
	res->cls = cls;
	snprintf(res->error, sizeof(res->error), "%s",
	    error != NULL ? error : "");
}

int
store_write_sync(struct store *store, uint64_t key, uint64_t origin,
    size_t bytes, store_apply_fn *apply, void *ctx, const char **error_r)
{
	static _Thread_local char errbuf[256];
	struct store_writer *w = store->writer;
	struct sync_result res = { 0, STORE_ERR_NONE, "" };
	struct wjob *job;

	job = submit(store, key, origin, bytes, apply, ctx, sync_done, &res);
	if (job != NULL) {
		pthread_mutex_lock(&w->mu);
		while (!job->published)
			pthread_cond_wait(&w->published_cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		/* every job finished before it, then it: events and done
		   in commit order, as the loop would have */
		(void)store_writer_drain(store);
	}
	if (res.rc < 0) {
		snprintf(errbuf, sizeof(errbuf), "%s", res.error);
		store_set_error(res.cls, res.error);
		if (error_r != NULL)
			*error_r = errbuf;
		return -1;
	}
	store_ok(store);
	return res.rc;
}

size_t
store_writer_drain(struct store *store)
{
	struct store_writer *w = store->writer;
	struct wjob *list, *job;
	size_t n = 0;

	if (w == NULL)
		return 0;
	pthread_mutex_lock(&w->mu);
	list = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	/* onto the owner's list, behind what an outer drain (this may run
	   from inside a done callback) has not dispatched yet: commit order
	   holds however the calls nest */
	if (list != NULL) {
		struct wjob **tail = &w->owner_head;

		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = list;
	}
	while ((job = w->owner_head) != NULL) {
		w->owner_head = job->next;
		finish_job(store, job);
		n++;
	}
	return n;
}

void
store_writer_catch_up(struct store *store)
{
	struct store_writer *w = store->writer;
	struct timespec deadline;
	struct store_read *r = NULL;
	uint64_t now_id;

	if (w == NULL)
		return;
	/* through the map gate, as every snapshot (the map may grow) */
	if (store_read_begin(store, &r, NULL) != 0)
		return;
	now_id = (uint64_t)mdb_txn_id(r->txn);
	store_read_end(&r);
	/* The gap is the writer's few steps between its commit and
	   publish(); the bound only guards against a commit made outside
	   the writer (none should be) so the loop never hangs on it. */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_nsec += 200 * 1000 * 1000;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (w->published_txnid < now_id &&
	    pthread_cond_timedwait(&w->published_cv, &w->mu, &deadline) == 0)
		;
	pthread_mutex_unlock(&w->mu);
	(void)store_writer_drain(store);
}

void
store_writer_stop(struct store *store)
{
	struct store_writer *w = store->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	/* every queued job has run and is on the done list; jobs that
	   done() callbacks submit from here on run directly (no writer),
	   merging their index at once */
	store->writer = NULL;
	store_fts_defer_merges(store, false);
	while (w->owner_head != NULL || w->done_head != NULL) {
		struct wjob *list = w->owner_head;

		if (list != NULL) {
			w->owner_head = NULL;
		} else {
			list = w->done_head;
			w->done_head = w->done_tail = NULL;
		}
		while (list != NULL) {
			struct wjob *job = list;

			list = job->next;
			finish_job(store, job);
		}
	}
	fairq_clear(&w->queue);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->published_cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
store_writer_set_observer(struct store *store,
    void (*observe)(void *arg, double seconds, size_t jobs), void *arg)
{
	struct store_writer *w = store->writer;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->observe = observe;
	w->observe_arg = arg;
	pthread_mutex_unlock(&w->mu);
}

void
store_writer_get_stats(struct store *store,
    struct store_writer_stats *stats_r)
{
	struct store_writer *w = store->writer;

	memset(stats_r, 0, sizeof(*stats_r));
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	*stats_r = w->stats;
	pthread_mutex_unlock(&w->mu);
}
