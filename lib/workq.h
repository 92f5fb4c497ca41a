/*
 * workq — a small pool of worker threads for the work that costs CPU or
 * may block: password hashing and verification, SEARCH over message text,
 * MIME parsing at delivery and APPEND, name look-ups. The event loop hands
 * a job over and gets it back as an event; it never waits for a worker.
 *
 *   struct my_job { struct workq_job job; ...inputs (copies)...; ...result; };
 *   j->job.run = my_run;      // on a worker: reads only what j owns
 *   j->job.done = my_done;    // on the owner thread, from workq_drain()
 *   j->job.key = user_id;     // fairness: who the work is for
 *   workq_submit(q, &j->job);
 *
 * Threads. workq_new(), workq_submit(), workq_drain(), workq_cancel() and
 * workq_free() are called from one thread, the owner (the event loop).
 * run() runs on a worker thread; done() on the owner thread, inside
 * workq_drain(). From submit until done() the job belongs to the queue:
 * the owner reads and writes none of its fields, except the atomic
 * `abandoned`, which it may set at any time to ask run() to stop early
 * (the client went away). A job owns copies of its inputs, never a
 * pointer into the owner's state (a session, a bufferevent).
 *
 * Wake-up. When a job is finished the worker calls notify(notify_arg)
 * (not for every job: only when the finished list was empty). notify runs
 * on the worker thread; it must only wake the owner, which then calls
 * workq_drain() on its own thread (the gateway's notify is event_active()
 * on a libevent event, which libevent allows from any thread).
 *
 * Fairness. Jobs are queued per key (a user id; before login a hash of
 * the client address) and workers take the keys in turn, one job from
 * each, so a key with a thousand jobs queued delays another key's job by
 * at most one job per worker. The pool is work-conserving: a key may use
 * every worker while no other key waits, and a job of another key waits
 * at most until the first running job (or chunk) ends. A long job is cut into chunks: run() returns
 * WORKQ_AGAIN after a chunk and the job goes to the back of its key's
 * line; jobs of other keys run in between.
 */
#ifndef POPGATE_WORKQ_H
#define POPGATE_WORKQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fairq.h"

/* Most worker threads a pool may have. */
#define WORKQ_THREADS_MAX 64

enum workq_run_result {
	WORKQ_DONE = 0,		/* finished: done() will be called */
	WORKQ_AGAIN,		/* one chunk done: queue me again */
};

struct workq_job;
typedef enum workq_run_result workq_run_fn(struct workq_job *job);
typedef void workq_done_fn(struct workq_job *job);

struct workq_job {
	workq_run_fn *run;	/* worker thread */
	workq_done_fn *done;	/* owner thread; always called exactly once */
	uint64_t key;		/* fairness key */
	/* Set by the owner to ask run() to stop at its next chunk (run()
	   reads it with workq_job_abandoned()); done() is still called. */
	atomic_bool abandoned;
	/* Set by the queue: the job never ran (workq_cancel, or the pool
	   stopped first). done() must then not use any result. */
	bool cancelled;
	/* private to the queue */
	struct fairq_item item_;
	struct workq_job *next_;
};

struct workq_stats {
	uint64_t submitted;	/* jobs handed in */
	uint64_t completed;	/* done() called */
	uint64_t chunks;	/* run() calls (>= completed when chunked) */
	unsigned queued;	/* waiting for a worker now */
	unsigned running;	/* on a worker now */
	unsigned threads;
	bool stopping;		/* workq_free has begun */
};

struct workq;

/*
 * Starts threads workers (1..WORKQ_THREADS_MAX; 0: the number of online
 * CPUs). notify(notify_arg) wakes the owner (see above). Aborts if a
 * thread cannot be started (start-up only).
 */
struct workq *workq_new(unsigned threads, void (*notify)(void *arg),
    void *notify_arg);

/* Queues job (run and done set; key chosen). Owner thread. With q NULL
 * (no pool: tools, some tests) the job runs in the call, all its chunks,
 * and done() is called before workq_submit returns. */
void workq_submit(struct workq *q, struct workq_job *job);

/* Calls done() of every finished job, in the order they finished.
 * Owner thread. Returns how many. */
size_t workq_drain(struct workq *q);

/* If job has not started, takes it out of the queue: its done() is called
 * by the next workq_drain() with cancelled set. Otherwise marks it
 * abandoned. Owner thread. */
void workq_cancel(struct workq *q, struct workq_job *job);

/* For run(): the owner asked the job to stop. */
static inline bool
workq_job_abandoned(struct workq_job *job)
{
	return atomic_load_explicit(&job->abandoned, memory_order_relaxed);
}

/* A snapshot of the counters (any thread). */
void workq_get_stats(struct workq *q, struct workq_stats *stats_r);

/*
 * Stops the pool: queued jobs are cancelled, running ones finish, the
 * threads are joined, then every done() is called (cancelled or not) on
 * the calling thread, the owner. Sets *qp to NULL; accepts NULL.
 */
void workq_free(struct workq **qp);

#endif
