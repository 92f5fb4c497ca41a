/*
 * oauth — OAuth 2.0 for upstream accounts that sign in with XOAUTH2 or
 * OAUTHBEARER: providers (presets and configuration), the device
 * authorization grant (RFC 8628) started from popgatectl, and the access
 * tokens handed to the poller, refreshed before they expire.
 *
 * Filled in below; see docs/admin-guide.md "OAuth 2.0".
 */
#ifndef POPGATE_GATEWAY_OAUTH_H
#define POPGATE_GATEWAY_OAUTH_H

#include <jansson.h>

struct account;
struct control_client;
struct ctl_error;
struct gateway;

/* Fills host, port, tls and auth of a new account from the provider's
 * preset (provider NULL or unknown: nothing). */
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
