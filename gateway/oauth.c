/* oauth — see oauth.h. */
#include "oauth.h"

#include "gateway/accounts.h"
#include "gateway/gateway.h"

void
oauth_account_defaults(struct gateway *gw, struct account *a,
    const char *provider)
{
	(void)gw;
	(void)a;
	(void)provider;
}

int
oauth_check_account(struct gateway *gw, const struct account *a,
    struct ctl_error *err)
{
	if (account_is_oauth(a)) {
		ctl_error_set(err, CTL_E_UNAVAILABLE, "auth",
		    "OAuth is not configured");
		return -1;
	}
	return 0;
}

void
oauth_cmd_start(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	struct ctl_error err;

	ctl_error_set(&err, CTL_E_UNAVAILABLE, NULL, "not yet");
	control_reply_error(client, &err);
}

void
oauth_cmd_wait(struct gateway *gw, struct control_client *client,
    json_t *req)
{
	oauth_cmd_start(gw, client, req);
}
