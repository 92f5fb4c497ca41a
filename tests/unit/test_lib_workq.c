/* Check suite for lib/fairq and lib/workq: turn order by key, chunked
   jobs, cancellation, stopping with work queued, many jobs from many
   threads' point of view (the ThreadSanitizer build runs this too). */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fairq.h"
#include "workq.h"
#include "xmalloc.h"

/* ---- fairq ---- */

struct fitem {
	struct fairq_item link;
	int id;
};

START_TEST(fairq_takes_keys_in_turn)
{
	struct fairq fq;
	struct fitem it[8];
	int order[8], n = 0;
	struct fairq_item *p;

	fairq_init(&fq);
	/* key 1: items 0..4; key 2: item 5; key 3: items 6, 7 */
	for (int i = 0; i < 8; i++) {
		it[i].id = i;
		fairq_push(&fq, i < 5 ? 1 : i == 5 ? 2 : 3, &it[i].link);
	}
	ck_assert_uint_eq(fq.count, 8);
	ck_assert_uint_eq(fq.keys, 3);
	while ((p = fairq_pop(&fq)) != NULL)
		order[n++] = ((struct fitem *)p)->id;
	ck_assert_int_eq(n, 8);
	/* 1, 2, 3 in turn, then what is left of 1 and 3 */
	int want[8] = { 0, 5, 6, 1, 7, 2, 3, 4 };
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(order[i], want[i]);
	ck_assert_uint_eq(fq.keys, 0);
	fairq_clear(&fq);
}
END_TEST

START_TEST(fairq_remove_queued_only)
{
	struct fairq fq;
	struct fitem a = { .id = 1 }, b = { .id = 2 }, c = { .id = 3 };
	uint64_t key;

	fairq_init(&fq);
	fairq_push(&fq, 7, &a.link);
	fairq_push(&fq, 7, &b.link);
	fairq_push(&fq, 9, &c.link);
	ck_assert(fairq_remove(&fq, &b.link));
	ck_assert(!fairq_is_queued(&b.link));
	ck_assert(!fairq_remove(&fq, &b.link));
	ck_assert(fairq_remove(&fq, &c.link));
	ck_assert_uint_eq(fq.keys, 1);
	ck_assert(fairq_peek_key(&fq, &key));
	ck_assert_uint_eq(key, 7);
	ck_assert_ptr_eq(fairq_pop(&fq), &a.link);
	ck_assert_ptr_null(fairq_pop(&fq));
	ck_assert(!fairq_peek_key(&fq, &key));
	/* a key emptied and used again */
	fairq_push(&fq, 7, &a.link);
	ck_assert_ptr_eq(fairq_pop(&fq), &a.link);
	fairq_clear(&fq);
}
END_TEST

/* ---- workq ---- */

struct waker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending;
};

static void
waker_notify(void *arg)
{
	struct waker *w = arg;

	pthread_mutex_lock(&w->mu);
	w->pending++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
waker_init(struct waker *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->pending = 0;
}

/* The owner's loop: waits for a notify, drains, until done_count. */
static void
owner_wait(struct workq *q, struct waker *w, atomic_int *done_count,
    int want)
{
	while (atomic_load(done_count) < want) {
		pthread_mutex_lock(&w->mu);
		while (w->pending == 0)
			pthread_cond_wait(&w->cv, &w->mu);
		w->pending = 0;
		pthread_mutex_unlock(&w->mu);
		workq_drain(q);
	}
}

/* A gate a job can wait at until the test opens it. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open;
	bool reached;
};

static void
gate_init(struct gate *g)
{
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	g->open = false;
	g->reached = false;
}

static void
gate_wait(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->reached = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_wait_reached(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->reached)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

struct tjob {
	struct workq_job job;
	int id;
	int chunks_left;
	struct gate *gate;	/* wait here first, if set */
	/* where run order is recorded (shared, under its own lock) */
	pthread_mutex_t *log_mu;
	int *log;
	int *log_n;
	atomic_int *done_count;
	bool saw_cancel;
	bool saw_abandoned;
	int result;
	bool free_in_done;
	bool *cancelled_r;
};

static enum workq_run_result
tjob_run(struct workq_job *job)
{
	struct tjob *t = (struct tjob *)job;

	if (t->gate != NULL) {
		gate_wait(t->gate);
		t->gate = NULL;
	}
	if (t->log != NULL) {
		pthread_mutex_lock(t->log_mu);
		t->log[(*t->log_n)++] = t->id;
		pthread_mutex_unlock(t->log_mu);
	}
	if (workq_job_abandoned(job)) {
		t->saw_abandoned = true;
		return WORKQ_DONE;
	}
	if (t->chunks_left > 0) {
		t->chunks_left--;
		return WORKQ_AGAIN;
	}
	t->result = t->id * 2;
	return WORKQ_DONE;
}

static void
tjob_done(struct workq_job *job)
{
	struct tjob *t = (struct tjob *)job;

	t->saw_cancel = job->cancelled;
	if (t->cancelled_r != NULL)
		*t->cancelled_r = job->cancelled;
	atomic_fetch_add(t->done_count, 1);
	if (t->free_in_done)
		free(t);
}

START_TEST(workq_runs_every_job_and_calls_done_on_owner)
{
	struct waker w;
	struct workq *q;
	atomic_int done = 0;
	struct tjob *jobs = xcalloc(500, sizeof(*jobs));
	struct workq_stats st;

	waker_init(&w);
	q = workq_new(2, waker_notify, &w);
	for (int i = 0; i < 500; i++) {
		jobs[i].job.run = tjob_run;
		jobs[i].job.done = tjob_done;
		jobs[i].job.key = (uint64_t)(i % 7);
		jobs[i].id = i;
		jobs[i].done_count = &done;
		workq_submit(q, &jobs[i].job);
	}
	owner_wait(q, &w, &done, 500);
	for (int i = 0; i < 500; i++) {
		ck_assert_int_eq(jobs[i].result, i * 2);
		ck_assert(!jobs[i].saw_cancel);
	}
	workq_get_stats(q, &st);
	ck_assert_uint_eq(st.submitted, 500);
	ck_assert_uint_eq(st.completed, 500);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.threads, 2);
	workq_free(&q);
	ck_assert_ptr_null(q);
	free(jobs);
}
END_TEST

/* One worker, blocked; then ten jobs of user 1 and one of user 2: user
 * 2's job runs second, not eleventh. */
START_TEST(workq_one_key_cannot_starve_another)
{
	struct waker w;
	struct workq *q;
	atomic_int done = 0;
	struct gate g;
	struct tjob jobs[12];
	pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
	int log[32], log_n = 0;

	waker_init(&w);
	gate_init(&g);
	memset(jobs, 0, sizeof(jobs));
	q = workq_new(1, waker_notify, &w);
	for (int i = 0; i < 12; i++) {
		jobs[i].job.run = tjob_run;
		jobs[i].job.done = tjob_done;
		jobs[i].id = i;
		jobs[i].done_count = &done;
		jobs[i].log = log;
		jobs[i].log_n = &log_n;
		jobs[i].log_mu = &log_mu;
		jobs[i].job.key = i == 11 ? 2 : 1;
	}
	jobs[0].gate = &g;
	workq_submit(q, &jobs[0].job);
	gate_wait_reached(&g);
	for (int i = 1; i < 12; i++)
		workq_submit(q, &jobs[i].job);
	gate_open(&g);
	owner_wait(q, &w, &done, 12);
	ck_assert_int_eq(log_n, 12);
	ck_assert_int_eq(log[0], 0);
	ck_assert_int_eq(log[1], 1);
	ck_assert_int_eq(log[2], 11);	/* user 2's turn came */
	ck_assert_int_eq(log[3], 2);
	workq_free(&q);
}
END_TEST

/* A chunked job (5 chunks) and a short job of another key: the short one
 * runs between the chunks, not after all of them. */
START_TEST(workq_chunked_job_lets_others_in)
{
	struct waker w;
	struct workq *q;
	atomic_int done = 0;
	struct gate g;
	struct tjob block, longj, shortj;
	pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
	int log[32], log_n = 0;

	waker_init(&w);
	gate_init(&g);
	memset(&block, 0, sizeof(block));
	memset(&longj, 0, sizeof(longj));
	memset(&shortj, 0, sizeof(shortj));
	q = workq_new(1, waker_notify, &w);
	block.job.run = longj.job.run = shortj.job.run = tjob_run;
	block.job.done = longj.job.done = shortj.job.done = tjob_done;
	block.done_count = longj.done_count = shortj.done_count = &done;
	block.log = longj.log = shortj.log = log;
	block.log_n = longj.log_n = shortj.log_n = &log_n;
	block.log_mu = longj.log_mu = shortj.log_mu = &log_mu;
	block.id = 100;
	block.job.key = 9;
	block.gate = &g;
	longj.id = 1;
	longj.job.key = 1;
	longj.chunks_left = 4;
	shortj.id = 2;
	shortj.job.key = 2;
	workq_submit(q, &block.job);
	gate_wait_reached(&g);
	workq_submit(q, &longj.job);
	workq_submit(q, &shortj.job);
	gate_open(&g);
	owner_wait(q, &w, &done, 3);
	/* block, long (chunk 1), short, long x 4 */
	ck_assert_int_eq(log_n, 7);
	ck_assert_int_eq(log[1], 1);
	ck_assert_int_eq(log[2], 2);
	for (int i = 3; i < 7; i++)
		ck_assert_int_eq(log[i], 1);
	ck_assert_int_eq(longj.result, 2);
	workq_free(&q);
}
END_TEST

START_TEST(workq_cancel_queued_and_abandon_running)
{
	struct waker w;
	struct workq *q;
	atomic_int done = 0;
	struct gate g;
	struct tjob running, queued;

	waker_init(&w);
	gate_init(&g);
	memset(&running, 0, sizeof(running));
	memset(&queued, 0, sizeof(queued));
	q = workq_new(1, waker_notify, &w);
	running.job.run = queued.job.run = tjob_run;
	running.job.done = queued.job.done = tjob_done;
	running.done_count = queued.done_count = &done;
	running.gate = &g;
	running.chunks_left = 100;
	running.id = 1;
	queued.id = 2;
	workq_submit(q, &running.job);
	gate_wait_reached(&g);
	workq_submit(q, &queued.job);
	workq_cancel(q, &queued.job);	/* never ran */
	workq_cancel(q, &running.job);	/* asked to stop */
	gate_open(&g);
	owner_wait(q, &w, &done, 2);
	ck_assert(queued.saw_cancel);
	ck_assert_int_eq(queued.result, 0);
	ck_assert(!running.saw_cancel);
	ck_assert(running.saw_abandoned);
	ck_assert_int_gt(running.chunks_left, 90);
	workq_free(&q);
}
END_TEST

struct opener {
	struct workq *q;
	struct gate *g;
};

/* Opens the gate once workq_free has begun (no timing involved). */
static void *
gate_open_thread(void *arg)
{
	struct opener *op = arg;
	struct workq_stats st;

	do {
		workq_get_stats(op->q, &st);
		if (!st.stopping)
			sched_yield();
	} while (!st.stopping);
	gate_open(op->g);
	return NULL;
}

START_TEST(workq_free_cancels_what_is_queued)
{
	struct waker w;
	struct workq *q;
	atomic_int done = 0;
	struct gate g;
	bool cancelled[20];

	waker_init(&w);
	gate_init(&g);
	q = workq_new(1, waker_notify, &w);
	for (int i = 0; i < 20; i++) {
		struct tjob *t = xcalloc(1, sizeof(*t));

		t->job.run = tjob_run;
		t->job.done = tjob_done;
		t->id = i;
		t->done_count = &done;
		t->free_in_done = true;
		t->cancelled_r = &cancelled[i];
		if (i == 0)
			t->gate = &g;
		workq_submit(q, &t->job);
		if (i == 0)
			gate_wait_reached(&g);
	}
	/* the first job is running; open its gate from another thread
	   while workq_free waits for it */
	pthread_t th;
	struct opener op = { q, &g };
	ck_assert_int_eq(pthread_create(&th, NULL, gate_open_thread, &op), 0);
	workq_free(&q);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&done), 20);
	ck_assert(!cancelled[0]);
	for (int i = 1; i < 20; i++)
		ck_assert(cancelled[i]);
}
END_TEST

static Suite *
workq_suite(void)
{
	Suite *s = suite_create("workq");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, fairq_takes_keys_in_turn);
	tcase_add_test(tc, fairq_remove_queued_only);
	tcase_add_test(tc, workq_runs_every_job_and_calls_done_on_owner);
	tcase_add_test(tc, workq_one_key_cannot_starve_another);
	tcase_add_test(tc, workq_chunked_job_lets_others_in);
	tcase_add_test(tc, workq_cancel_queued_and_abandon_running);
	tcase_add_test(tc, workq_free_cancels_what_is_queued);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(workq_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
