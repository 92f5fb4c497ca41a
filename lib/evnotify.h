/*
 * evnotify — wakes an event loop from another thread: the bridge from the
 * worker pool and the store's writer (which know nothing of libevent) to
 * the loop that owns their results.
 *
 *   n = evnotify_new(base, drain_cb, arg);   // drain_cb runs on the loop
 *   workq_new(0, evnotify_fire, n);          // fired from worker threads
 *
 * evnotify_fire() may be called from any thread, any number of times; the
 * callback then runs at least once on the loop after the call (calls close
 * together may be merged into one). The base must have been created after
 * evthread_use_pthreads(). evnotify_new/free: loop thread only.
 */
#ifndef POPGATE_EVNOTIFY_H
#define POPGATE_EVNOTIFY_H

#include <event2/event.h>

struct evnotify;

struct evnotify *evnotify_new(struct event_base *base, void (*cb)(void *arg),
    void *arg);
void evnotify_fire(void *evnotify);
void evnotify_free(struct evnotify **np);

#endif
