/* evnotify — see evnotify.h. event_active() is libevent's thread-safe way
 * to make an event run (with evthread_use_pthreads); an event made active
 * while its callback runs runs once more. */
#include "evnotify.h"

#include <stdlib.h>

#include "xmalloc.h"

struct evnotify {
	struct event *ev;
	void (*cb)(void *arg);
	void *arg;
};

static void
fired(evutil_socket_t fd, short what, void *arg)
{
	struct evnotify *n = arg;

	(void)fd;
	(void)what;
	n->cb(n->arg);
}

struct evnotify *
evnotify_new(struct event_base *base, void (*cb)(void *arg), void *arg)
{
	struct evnotify *n = xcalloc(1, sizeof(*n));

	n->cb = cb;
	n->arg = arg;
	n->ev = event_new(base, -1, 0, fired, n);
	PG_ASSERT(n->ev != NULL);
	return n;
}

void
evnotify_fire(void *arg)
{
	struct evnotify *n = arg;

	event_active(n->ev, EV_READ, 0);
}

void
evnotify_free(struct evnotify **np)
{
	struct evnotify *n = *np;

	if (n == NULL)
		return;
	event_free(n->ev);
	free(n);
	*np = NULL;
}
