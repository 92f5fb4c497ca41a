/*
 * upstreams — the gateway's side of the upstream plug-in point: it keeps
 * the poller in step with the account records (add, change, remove, poll
 * now) and reports each account's runtime status.
 *
 * The POP3 poller (pop3-upstream/pop3-poller.h) is the implementation
 * behind the upstream interface; another kind of source plugs in here.
 */
#ifndef POPGATE_GATEWAY_UPSTREAMS_H
#define POPGATE_GATEWAY_UPSTREAMS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct account;
struct gateway;
struct oauth;
struct upstreams;
struct upstream_status;

struct upstreams *upstreams_new(struct gateway *gw);
/* Starts a poller for every enabled account in the store. */
int upstreams_start(struct upstreams *ups, const char **error_r);
/* Graceful stop: upstream sessions QUIT, deliveries finish or roll back;
 * done() is called once everything has stopped (maybe at once). */
void upstreams_stop(struct upstreams *ups, void (*done)(void *arg),
    void *arg);
void upstreams_free(struct upstreams **upsp);

bool upstreams_available(const struct upstreams *ups);
/* The OAuth token manager of the upstream accounts (oauth.h). */
struct oauth *upstreams_oauth(struct upstreams *ups);
/* The asynchronous resolver (NULL: numeric hosts only). */
struct evdns_base *upstreams_dns(struct upstreams *ups);
/* The configuration was reloaded: every account is handed to the poller
 * again with the new [upstream-defaults] (CA file, timeouts); those whose
 * settings did not change are left alone. */
int upstreams_reload(struct upstreams *ups, const char **error_r);
/* The account was added or changed (or enabled/disabled). */
void upstreams_update(struct upstreams *ups, const struct account *a);
void upstreams_remove(struct upstreams *ups, uint32_t user_id,
    const char *name);
void upstreams_remove_user(struct upstreams *ups, uint32_t user_id);
/* Polls now: every account (one_user false), a user's, or one account.
 * Returns the number of polls started; *queued_r gets the number of
 * accounts being polled already, which are polled again right after. */
unsigned int upstreams_poll_now(struct upstreams *ups, bool one_user,
    uint32_t user_id, const char *name, unsigned int *queued_r);
/* {"state":..., "last_success":..., "last_error":..., "next_poll":...} */
json_t *upstreams_status_json(struct upstreams *ups, const struct account *a);
/* Adds counters to a stats object. */
void upstreams_stats_add(struct upstreams *ups, json_t *stats);
/* Calls cb with the status of every account the poller has. */
void upstreams_foreach_status(struct upstreams *ups,
    void (*cb)(void *arg, const struct upstream_status *st), void *arg);

#endif
