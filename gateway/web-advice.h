/*
 * web-advice — an upstream account's state and last poll in plain words
 * for the web page (gateway/web.h): what the state means, and for a
 * problem what happened and what the person can do about it (level 1:
 * pure, no I/O).
 *
 * The inputs are the status command's words: the poller's state
 * (upstream_state_name(), or "disabled" / "unknown") and the outcome of
 * the last poll (pop3_outcome_name(): "ok", "temporary", "auth",
 * "login-delay", "tls", "protocol", "store", "aborted"). Unknown words
 * give a generic answer, never NULL where a problem is reported.
 */
#ifndef POPGATE_GATEWAY_WEB_ADVICE_H
#define POPGATE_GATEWAY_WEB_ADVICE_H

#include <stdbool.h>

struct web_advice {
	const char *code;	/* stable key, e.g. "password-refused" */
	const char *title;	/* what happened, one short sentence */
	const char *action;	/* what to do about it */
	bool needs_person;	/* false: popgate retries on its own */
};

/* A state in a few words ("Up to date", "Checking now", ...). */
const char *web_state_words(const char *state);

/*
 * The advice for an account in state whose last poll ended with outcome
 * (either may be NULL: unknown). NULL when there is nothing to explain:
 * the last poll went well and the state is an ordinary one.
 */
const struct web_advice *web_advice_for(const char *state,
    const char *outcome);

#endif
