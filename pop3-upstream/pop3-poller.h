/*
 * pop3-poller — many POP3 accounts polled concurrently on one event loop,
 * behind the upstream interface (upstream.h).
 *
 * Per account: an interval with jitter; exponential back-off after a
 * failure; an authentication circuit breaker (after auth_breaker
 * consecutive authentication failures the account is AUTH_FAILED and is
 * not polled again until account_set changes its credentials or resume is
 * called, so the gateway's address is not banned); a store error (map or
 * disk full) stops the account (STORE_ERROR) until resume or poll_now.
 * Per upstream host: at most host_max_conns sessions at once; the others
 * wait in state QUEUED. One slow or failing account never delays another:
 * every session has its own timeouts (pop3-client.h).
 */
#ifndef POPGATE_POP3_POLLER_H
#define POPGATE_POP3_POLLER_H

#include "pop3-upstream/pop3-client.h"
#include "pop3-upstream/upstream.h"

/* Accounts one poller holds; each costs a small struct and a timer. */
#define POP3_POLLER_ACCOUNTS_MAX 100000

struct pop3_poller_options {
	unsigned int host_max_conns;	/* 0: 2 */
	unsigned int auth_breaker;	/* 0: 3 consecutive auth failures */
	unsigned int backoff_base_ms;	/* 0: 30 s, doubled per failure */
	unsigned int backoff_max_ms;	/* 0: 1 hour */
	unsigned int jitter_pct;	/* 0: 10 % of the interval */
	unsigned int start_spread_ms;	/* first polls spread over; 0: 5 s */
};

/*
 * Creates the POP3 upstream. env is copied (its pointers are borrowed and
 * must outlive the upstream); opts may be NULL. Free with u->ops->free.
 */
struct upstream *pop3_upstream_new(const struct pop3_client_env *env,
    const struct pop3_poller_options *opts);

/*
 * For tools and tests: called after each poll of any account finished and
 * its status was updated. result is valid during the call only.
 */
void pop3_upstream_set_poll_hook(struct upstream *u,
    void (*hook)(void *arg, const char *id, const struct pop3_result *res),
    void *arg);

#endif
