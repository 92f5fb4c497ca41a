/* passthrough — see passthrough.h. */
#include "passthrough.h"

#include "gateway/gateway.h"

void
passthrough_auth(void *ctx, const char *username, const char *password,
    const char *client_addr, struct imap_auth_request *req)
{
	struct gateway *gw = ctx;

	imap_server_auth_store(gw->store, username, password, client_addr,
	    req);
}
