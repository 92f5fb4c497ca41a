/*
 * upstreams — see upstreams.h. This build has no upstream poller linked
 * in yet: accounts are recorded in the store and reported as not polled.
 */
#include "upstreams.h"

#include <stdlib.h>

#include "gateway/accounts.h"
#include "gateway/gateway.h"
#include "xmalloc.h"

struct upstreams {
	struct gateway *gw;
};

struct upstreams *
upstreams_new(struct gateway *gw)
{
	struct upstreams *ups = xcalloc(1, sizeof(*ups));

	ups->gw = gw;
	return ups;
}

int
upstreams_start(struct upstreams *ups, const char **error_r)
{
	return 0;
}

void
upstreams_stop(struct upstreams *ups, void (*done)(void *arg), void *arg)
{
	done(arg);
}

void
upstreams_free(struct upstreams **upsp)
{
	free(*upsp);
	*upsp = NULL;
}

bool
upstreams_available(const struct upstreams *ups)
{
	return false;
}

void
upstreams_update(struct upstreams *ups, const struct account *a)
{
}

void
upstreams_remove(struct upstreams *ups, uint32_t user_id, const char *name)
{
}

void
upstreams_remove_user(struct upstreams *ups, uint32_t user_id)
{
}

unsigned int
upstreams_poll_now(struct upstreams *ups, bool one_user, uint32_t user_id,
    const char *name)
{
	return 0;
}

json_t *
upstreams_status_json(struct upstreams *ups, const struct account *a)
{
	return json_pack("{s:s, s:s}", "state",
	    a->enabled ? "not-polled" : "disabled", "reason",
	    "this build has no upstream poller");
}

void
upstreams_stats_add(struct upstreams *ups, json_t *stats)
{
}
