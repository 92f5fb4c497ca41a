/* reindex — see reindex.h. */
#include "gateway/reindex.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

struct reindex {
	struct gateway *gw;
	uint32_t *users;
	size_t nusers, pos;	/* the user being indexed */
	bool rebuild;
	bool dropped;		/* rebuild: the current user's index is gone */
	bool running;
	bool failed;
	/* the job in flight (written by the writer, read after done) */
	bool step_done;
	size_t step_indexed;
	/* progress */
	uint64_t messages;
	uint64_t jobs;
	time_t started, finished;
};

static void submit(struct reindex *ri);

static int
step_apply(struct store *store, void *ctx, const char **error_r)
{
	struct reindex *ri = ctx;
	uint32_t user = ri->users[ri->pos];

	ri->step_done = false;
	ri->step_indexed = 0;
	if (ri->rebuild && !ri->dropped) {
		if (store_fts_drop(store, user, error_r) < 0)
			return -1;
		return 0;	/* the first step of a rebuild only drops */
	}
	return store_fts_reindex_step(store, user,
	    GATEWAY_REINDEX_BATCH_BYTES, &ri->step_done, &ri->step_indexed,
	    error_r);
}

static void
finish(struct reindex *ri, bool failed)
{
	ri->running = false;
	ri->failed = failed;
	ri->finished = time(NULL);
	log_info("reindex event=%s users=%zu messages=%llu jobs=%llu "
	    "seconds=%lld", failed ? "stopped" : "done", ri->pos,
	    (unsigned long long)ri->messages, (unsigned long long)ri->jobs,
	    (long long)(ri->finished - ri->started));
}

static void
step_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct reindex *ri = ctx;

	(void)cls;
	ri->jobs++;
	if (rc < 0) {
		log_error("reindex event=failed user=%u error=\"%s\"",
		    ri->users[ri->pos], error != NULL ? error : "");
		finish(ri, true);
		return;
	}
	if (ri->rebuild && !ri->dropped) {
		ri->dropped = true;
	} else {
		ri->messages += ri->step_indexed;
		if (ri->step_done) {
			ri->pos++;
			ri->dropped = false;
		}
	}
	if (ri->gw->shutting_down) {
		finish(ri, true);
		return;
	}
	if (ri->pos >= ri->nusers) {
		finish(ri, false);
		return;
	}
	submit(ri);
}

static void
submit(struct reindex *ri)
{
	/* keyed by the user, as the user's own writes: fair to others */
	store_write_submit(ri->gw->store, ri->users[ri->pos], 0,
	    GATEWAY_REINDEX_BATCH_BYTES, step_apply, step_done, ri);
}

int
reindex_start(struct gateway *gw, const uint32_t *users, size_t n,
    bool rebuild)
{
	struct reindex *ri = gw->reindex;

	if (ri != NULL && ri->running)
		return -1;
	if (ri == NULL)
		ri = gw->reindex = xcalloc(1, sizeof(*ri));
	free(ri->users);
	memset(ri, 0, sizeof(*ri));
	ri->gw = gw;
	ri->users = n > 0 ? xmemdup(users, n * sizeof(*users)) : NULL;
	ri->nusers = n;
	ri->rebuild = rebuild;
	ri->running = true;
	ri->started = time(NULL);
	log_info("reindex event=start users=%zu rebuild=%s", n,
	    rebuild ? "yes" : "no");
	if (n == 0)
		finish(ri, false);
	else
		submit(ri);
	return 0;
}

void
reindex_stats_add(struct gateway *gw, json_t *stats)
{
	struct reindex *ri = gw->reindex;

	json_object_set_new(stats, "index_reindex", json_string(ri == NULL ?
	    "never" : ri->running ? "running" : ri->failed ? "stopped" :
	    "done"));
	json_object_set_new(stats, "index_reindex_users_done",
	    json_integer(ri == NULL ? 0 : (json_int_t)ri->pos));
	json_object_set_new(stats, "index_reindex_users",
	    json_integer(ri == NULL ? 0 : (json_int_t)ri->nusers));
	json_object_set_new(stats, "index_reindex_messages",
	    json_integer(ri == NULL ? 0 : (json_int_t)ri->messages));
}

void
reindex_free(struct gateway *gw)
{
	if (gw->reindex == NULL)
		return;
	free(gw->reindex->users);
	free(gw->reindex);
	gw->reindex = NULL;
}
