/*
 * Fuzz target for gateway/oauth-proto: the input is a token endpoint's or
 * device authorization endpoint's answer (the first byte picks the HTTP
 * status). Checks: no crash, bounded output, every kept string within its
 * limit and free of bytes a token or code may not hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/oauth-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_str(const char *s, size_t max, int allow_space)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);
	if (n == 0 || n > max)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e || (c == ' ' && !allow_space))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 0, 200, 400, 401, 429, 500, 503 };
	struct oauth_token t;
	struct oauth_device d;
	char err[256];
	long status;

	if (size < 1)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	if (oauth_parse_token(status, (const char *)data + 1, size - 1, &t,
	    err, sizeof(err)) == OAUTH_OK) {
		check_str(t.access_token, OAUTH_TOKEN_MAX, 0);
		check_str(t.refresh_token, OAUTH_TOKEN_MAX, 0);
		check_str(t.scope, 4096, 1);
		if (t.expires_in < OAUTH_LIFETIME_MIN)
			abort();
		(void)oauth_scope_covers(t.scope, "a b offline_access");
	}
	if (strlen(err) >= sizeof(err))
		abort();
	oauth_token_clear(&t);
	if (oauth_parse_device(status, (const char *)data + 1, size - 1, &d,
	    err, sizeof(err)) == 0) {
		check_str(d.device_code, OAUTH_DEVICE_CODE_MAX, 0);
		check_str(d.user_code, OAUTH_USER_CODE_MAX, 1);
		check_str(d.verification_uri, OAUTH_URI_MAX, 0);
		check_str(d.verification_uri_complete, OAUTH_URI_MAX, 0);
		if (d.interval < OAUTH_INTERVAL_MIN ||
		    d.interval > OAUTH_INTERVAL_MAX ||
		    d.expires_in > OAUTH_DEVICE_EXPIRES_MAX)
			abort();
		oauth_device_clear(&d);
	}
	return 0;
}
