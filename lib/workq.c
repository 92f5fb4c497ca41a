/* workq — see workq.h. One mutex guards the whole pool: its scope is
 * every field of struct workq (the fair queue, the done list, the
 * counters) and each job's private links. A queued job is in the fair
 * queue, a running one on no list, a finished one on the done list. */
#include "workq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fairq.h"
#include "log.h"
#include "xmalloc.h"

struct workq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t threads[WORKQ_THREADS_MAX];
	unsigned thread_count;
	bool stopping;

	struct fairq queue;
	struct workq_job *done_head, *done_tail;

	void (*notify)(void *arg);
	void *notify_arg;
	struct workq_stats stats;
};

static struct workq_job *
job_of(struct fairq_item *item)
{
	return (struct workq_job *)((char *)item -
	    offsetof(struct workq_job, item_));
}

/* Puts a finished (or cancelled) job on the done list; true when the
 * owner has to be woken (the list was empty). */
static bool
push_done(struct workq *q, struct workq_job *job)
{
	bool was_empty = q->done_head == NULL;

	job->next_ = NULL;
	if (q->done_tail != NULL)
		q->done_tail->next_ = job;
	else
		q->done_head = job;
	q->done_tail = job;
	return was_empty;
}

static void
enqueue(struct workq *q, struct workq_job *job)
{
	fairq_push(&q->queue, job->key, &job->item_);
	q->stats.queued = (unsigned)q->queue.count;
}

static void *
worker_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct fairq_item *item;
		struct workq_job *job;
		enum workq_run_result res;

		while (!q->stopping && q->queue.count == 0)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stopping)
			break;
		item = fairq_pop(&q->queue);
		job = job_of(item);
		q->stats.queued = (unsigned)q->queue.count;
		q->stats.running++;
		pthread_mutex_unlock(&q->mu);

		res = job->run(job);

		pthread_mutex_lock(&q->mu);
		q->stats.running--;
		q->stats.chunks++;
		if (res == WORKQ_AGAIN && !q->stopping &&
		    !workq_job_abandoned(job)) {
			/* the back of its key's line: others go first */
			enqueue(q, job);
			pthread_cond_signal(&q->cv);
			continue;
		}
		/* a chunked job cut short by the pool stopping never
		   finished: its result is incomplete */
		if (res == WORKQ_AGAIN && !workq_job_abandoned(job))
			job->cancelled = true;
		if (push_done(q, job)) {
			pthread_mutex_unlock(&q->mu);
			q->notify(q->notify_arg);
			pthread_mutex_lock(&q->mu);
		}
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct workq *
workq_new(unsigned threads, void (*notify)(void *arg), void *notify_arg)
{
	struct workq *q = xcalloc(1, sizeof(*q));

	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	if (threads > WORKQ_THREADS_MAX)
		threads = WORKQ_THREADS_MAX;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	fairq_init(&q->queue);
	q->notify = notify;
	q->notify_arg = notify_arg;
	for (unsigned i = 0; i < threads; i++) {
		char name[16];
		int rc = pthread_create(&q->threads[i], NULL, worker_main, q);

		if (rc != 0) {
			log_error("workq event=thread-create-failed error=\"%s\"",
			    strerror(rc));
			abort();
		}
		snprintf(name, sizeof(name), "pg-worker-%u", i);
		(void)pthread_setname_np(q->threads[i], name);
		q->thread_count++;
	}
	q->stats.threads = q->thread_count;
	return q;
}

void
workq_submit(struct workq *q, struct workq_job *job)
{
	bool wake = false;

	PG_ASSERT(job->run != NULL && job->done != NULL);
	job->cancelled = false;
	if (q == NULL) {
		/* no pool (tools, tests): run it here, whole */
		while (job->run(job) == WORKQ_AGAIN &&
		    !workq_job_abandoned(job))
			;
		job->done(job);
		return;
	}
	pthread_mutex_lock(&q->mu);
	q->stats.submitted++;
	if (q->stopping) {
		/* too late to run: finished as cancelled */
		job->cancelled = true;
		wake = push_done(q, job);
	} else {
		enqueue(q, job);
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	if (wake)
		q->notify(q->notify_arg);
}

size_t
workq_drain(struct workq *q)
{
	struct workq_job *list, *job;
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	list = q->done_head;
	q->done_head = q->done_tail = NULL;
	for (job = list; job != NULL; job = job->next_)
		n++;
	q->stats.completed += n;
	pthread_mutex_unlock(&q->mu);
	while ((job = list) != NULL) {
		list = job->next_;
		job->next_ = NULL;
		job->done(job);		/* may free the job */
	}
	return n;
}

void
workq_cancel(struct workq *q, struct workq_job *job)
{
	bool wake = false;

	atomic_store_explicit(&job->abandoned, true, memory_order_relaxed);
	pthread_mutex_lock(&q->mu);
	if (fairq_remove(&q->queue, &job->item_)) {
		q->stats.queued = (unsigned)q->queue.count;
		job->cancelled = true;
		wake = push_done(q, job);
	}
	pthread_mutex_unlock(&q->mu);
	if (wake)
		q->notify(q->notify_arg);
}

void
workq_get_stats(struct workq *q, struct workq_stats *stats_r)
{
	pthread_mutex_lock(&q->mu);
	*stats_r = q->stats;
	pthread_mutex_unlock(&q->mu);
}

void
workq_free(struct workq **qp)
{
	struct workq *q = *qp;
	struct fairq_item *item;

	if (q == NULL)
		return;
	*qp = NULL;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	q->stats.stopping = true;
	/* every queued job is cancelled, in turn order */
	while ((item = fairq_pop(&q->queue)) != NULL) {
		struct workq_job *job = job_of(item);

		job->cancelled = true;
		(void)push_done(q, job);
	}
	q->stats.queued = 0;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (unsigned i = 0; i < q->thread_count; i++)
		pthread_join(q->threads[i], NULL);
	(void)workq_drain(q);
	fairq_clear(&q->queue);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
