/*
 * oauth — OAuth 2.0 for upstream accounts that sign in with XOAUTH2 or
 * OAUTHBEARER (docs/admin-guide.md "OAuth 2.0 sign-in").
 *
 * Providers come from the configuration ([oauth.NAME], presets for
 * Microsoft and Google). An admin signs an account in with the device
 * authorization grant (RFC 8628): `popgatectl account oauth USER ACCOUNT`
 * sends oauth.start, which asks the provider for a user code and returns
 * it with the verification URL; the daemon then polls the token endpoint
 * at the provider's interval (slower on slow_down) until the user
 * approves, refuses, or the code expires; oauth.wait reports the end.
 *
 * The refresh token is stored SEALED in the account record like the
 * password (accounts.h); access tokens live in memory only and are
 * refreshed OAUTH_REFRESH_MARGIN (at most a quarter of their lifetime)
 * before they expire, and once more when the POP3 server refuses one. A
 * provider that answers invalid_grant (revoked or expired grant) puts the
 * account in "needs sign-in again": the record says so (it survives a
 * restart), the poller drops the account, and no further request goes to
 * the provider until an admin signs in again. Any other failure (provider
 * down, 5xx, timeouts) is retried with back-off (30 s doubling to an
 * hour) while the current access token, if any, stays in use until it
 * expires.
 *
 * Threads: everything runs on the event loop; HTTP goes through
 * http-client.h (libcurl multi on libevent), so nothing here blocks.
 *
 * Ownership: struct oauth belongs to the upstreams part (upstreams.c
 * creates and frees it); control clients handed to oauth_cmd_* are
 * answered exactly once, at the latest by oauth_stop().
 */
#ifndef POPGATE_GATEWAY_OAUTH_H
#define POPGATE_GATEWAY_OAUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct account;
struct control_client;
struct ctl_error;
struct gateway;
struct oauth;

/* Sign-in waits answered at once per account, and how long one waits
 * before it is answered "pending" (popgatectl asks again). */
#define OAUTH_WAITERS_MAX 4
#define OAUTH_WAIT_SECS 60
/* Back-off of a failed refresh: from, doubled up to. */
#define OAUTH_RETRY_BASE_SECS 30
#define OAUTH_RETRY_MAX_SECS 3600
/* A refresh forced by the POP3 server refusing a token happens at most
 * this often per account (the poller's breaker handles the rest). */
#define OAUTH_FORCED_MIN_SECS 60

/* Called when an account's token changed (new, refreshed, gone): the
 * owner hands the account to the poller again. */
typedef void oauth_changed_fn(void *arg, uint32_t user_id, const char *user,
    const char *name);

struct oauth *oauth_new(struct gateway *gw, oauth_changed_fn *cb,
    void *arg);
/* Shutdown: answers every waiting control client, cancels requests and
 * timers. */
void oauth_stop(struct oauth *o);
void oauth_free(struct oauth **op);

/*
 * For handing an account to the poller: its current access token (valid
 * until the next call into this module), or NULL when there is none to
 * use (not signed in, needs sign-in again, a refresh under way). Starts
 * tracking the account (refreshes as needed).
 */
const char *oauth_access_token(struct oauth *o, const struct account *a);
/* The account was removed or disabled: stop refreshing it. */
void oauth_forget(struct oauth *o, uint32_t user_id, const char *name);
void oauth_forget_user(struct oauth *o, uint32_t user_id);
/* An admin asked to poll (one account, a user's, or all when user_id is
 * 0 and name NULL): accounts waiting to retry a failed refresh retry now.
 * Returns how many refreshes started. */
unsigned int oauth_poll_now(struct oauth *o, bool one_user,
    uint32_t user_id, const char *name);
/* The POP3 server refused the account's token: refresh (rate-limited). */
void oauth_token_rejected(struct oauth *o, uint32_t user_id,
    const char *name);
/*
 * The account's OAuth status for `status`: {"state", "expires",
 * "last_refresh", "error", "signed_in"}. *state_r is NULL when the
 * poller's state stands, else the state to show instead
 * ("needs-signin", "not-signed-in", "token-pending", "token-error").
 */
json_t *oauth_status_json(struct oauth *o, const struct account *a,
    const char **state_r);

/* Fills host, port, tls and auth of a new account from its provider
 * (provider NULL or unknown: nothing). */
void oauth_account_defaults(struct gateway *gw, struct account *a,
    const char *provider);
/* An OAuth account needs a configured provider; 0 or -1 with err. */
int oauth_check_account(struct gateway *gw, const struct account *a,
    struct ctl_error *err);

/* The control commands oauth.start and oauth.wait. */
void oauth_cmd_start(struct gateway *gw, struct control_client *client,
    json_t *req);
void oauth_cmd_wait(struct gateway *gw, struct control_client *client,
    json_t *req);

#endif
