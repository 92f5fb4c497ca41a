/*
 * Fuzz target for lib/login-ticket: whatever a client sends as the
 * password of a proxied session. Properties: only the ticket issued
 * (for this user, address and node, unexpired) is accepted, and only
 * once; every other string is refused without a crash, and a refused
 * string leaves the issued ticket good.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "login-ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[LOGIN_TICKET_KEY_LEN] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const time_t now = 1800000000;
	struct login_tickets *t = login_tickets_new("10.0.0.1:1144", key, 30);
	char issued[LOGIN_TICKET_LEN_MAX];
	char *in = malloc(size + 1);
	enum login_ticket_result r;

	memcpy(in, data, size);
	in[size] = '\0';
	if (t == NULL || login_ticket_issue(t, "u", "192.0.2.1", now,
	    issued) != 0)
		abort();
	r = login_ticket_redeem(t, "u", "192.0.2.1", in, now);
	if ((r == LOGIN_TICKET_OK) != (strcmp(in, issued) == 0))
		abort();
	if (r != LOGIN_TICKET_OK) {
		if (login_ticket_redeem(t, "u", "192.0.2.1", issued, now) !=
		    LOGIN_TICKET_OK)
			abort();
	} else if (login_ticket_redeem(t, "u", "192.0.2.1", in, now) !=
	    LOGIN_TICKET_USED) {
		abort();
	}
	free(in);
	login_tickets_free(&t);
	return 0;
}
