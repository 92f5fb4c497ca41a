/* web-advice — see web-advice.h. The words are also in docs/web.md's
 * table: keep the two in step. */
#include "web-advice.h"

#include <stddef.h>
#include <string.h>

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *state, *words;
} state_words[] = {
	{ "idle", "Up to date" },
	{ "queued", "Waiting for its turn" },
	{ "polling", "Checking now" },
	{ "backoff", "Trying again later" },
	{ "auth-failed", "Password refused" },
	{ "store-error", "Saving failed" },
	{ "stopped", "Stopped" },
	{ "over-quota", "Mailbox here is full" },
	{ "disabled", "Switched off" },
	{ "not-signed-in", "Not signed in yet" },
	{ "token-pending", "Signing in" },
	{ "needs-signin", "Sign in again" },
	{ "token-error", "Provider not answering" },
	{ "unknown", "Not checked yet" },
};

static const struct web_advice advice_password = {
	"password-refused",
	"The old server refused the password popgate has for this account.",
	"If you changed the password at your old provider, enter the new "
	"one with \"Change password\" (or ask your admin). popgate tries "
	"a few more times, then waits until the password is changed.",
	true,
};
static const struct web_advice advice_unreachable = {
	"unreachable",
	"The old server could not be reached, or it did not answer in time.",
	"Nothing to do for now: popgate tries again by itself. If this lasts "
	"more than a day, check with your old provider that the server still "
	"exists, and tell your admin.",
	false,
};
static const struct web_advice advice_login_delay = {
	"login-delay",
	"The old server asks to wait between logins.",
	"Nothing to do: popgate waits as asked and checks again later.",
	false,
};
static const struct web_advice advice_tls = {
	"tls",
	"A secure connection to the old server could not be made (its "
	"certificate is not trusted, has expired, or names another server).",
	"Tell your admin: the account's server name or its certificate "
	"settings need a look. popgate never sends your password over a "
	"connection it cannot verify.",
	true,
};
static const struct web_advice advice_protocol = {
	"protocol",
	"The old server answered something popgate did not expect.",
	"popgate tries again by itself. If it keeps happening, tell your "
	"admin: the gateway's log has the details.",
	false,
};
static const struct web_advice advice_store = {
	"store",
	"popgate could not save the mail it fetched.",
	"Tell your admin: the gateway's storage has a problem. Nothing was "
	"deleted from the old server.",
	true,
};
static const struct web_advice advice_quota = {
	"over-quota",
	"Your mailbox here is full, so no more mail is being imported.",
	"Delete or archive some mail, or ask your admin for more room. The "
	"import goes on by itself once there is room.",
	true,
};
static const struct web_advice advice_aborted = {
	"aborted",
	"The last check was stopped before it finished (the gateway was "
	"restarting).",
	"Nothing to do: the next check carries on where it stopped.",
	false,
};
static const struct web_advice advice_stopped = {
	"stopped",
	"Checking this account is switched off.",
	"Ask your admin to switch it on again if you still need mail from "
	"it.",
	true,
};
static const struct web_advice advice_signin = {
	"sign-in-needed",
	"This account signs in with your provider (Microsoft, Google, ...), "
	"and popgate has no valid sign-in for it: it was never signed in, "
	"or the provider ended the sign-in (a changed password, or access "
	"taken back).",
	"Click \"Sign in\", open the address shown and enter the code "
	"there with your provider's account. Mail comes in once that is done.",
	true,
};
static const struct web_advice advice_token = {
	"provider-unreachable",
	"Your provider did not answer popgate's request for a new sign-in "
	"token.",
	"Nothing to do for now: popgate asks again by itself. If this lasts, "
	"tell your admin.",
	false,
};
static const struct web_advice advice_other = {
	"other",
	"The last check did not succeed.",
	"popgate tries again by itself. If it keeps failing, tell your "
	"admin.",
	false,
};

static const struct {
	const char *outcome;
	const struct web_advice *advice;
} by_outcome[] = {
	{ "auth", &advice_password },
	{ "temporary", &advice_unreachable },
	{ "login-delay", &advice_login_delay },
	{ "tls", &advice_tls },
	{ "protocol", &advice_protocol },
	{ "store", &advice_store },
	{ "aborted", &advice_aborted },
};

static bool
eq(const char *a, const char *b)
{
	return a != NULL && strcmp(a, b) == 0;
}

const char *
web_state_words(const char *state)
{
	for (size_t i = 0; state != NULL && i < N_ELEMENTS(state_words); i++) {
		if (strcmp(state_words[i].state, state) == 0)
			return state_words[i].words;
	}
	return "Unknown";
}

const struct web_advice *
web_advice_for(const char *state, const char *outcome)
{
	/* the state says what holds now; the outcome why */
	if (eq(state, "auth-failed"))
		return &advice_password;
	if (eq(state, "over-quota"))
		return &advice_quota;
	if (eq(state, "store-error"))
		return &advice_store;
	if (eq(state, "stopped") || eq(state, "disabled"))
		return &advice_stopped;
	if (eq(state, "not-signed-in") || eq(state, "needs-signin"))
		return &advice_signin;
	if (eq(state, "token-error"))
		return &advice_token;
	if (outcome == NULL || eq(outcome, "ok"))
		return NULL;
	for (size_t i = 0; i < N_ELEMENTS(by_outcome); i++) {
		if (strcmp(by_outcome[i].outcome, outcome) == 0)
			return by_outcome[i].advice;
	}
	return &advice_other;
}
