/*
 * oauth-proto — the OAuth 2.0 messages popgate exchanges with a token
 * endpoint, as pure functions (level 1: jansson only), unit-tested and
 * fuzzed: form bodies (application/x-www-form-urlencoded), the device
 * authorization response (RFC 8628 3.2), the token response and its
 * errors (RFC 6749 5.1/5.2, RFC 8628 3.5), the granted scope, and when to
 * refresh.
 *
 * Every string a provider sends is bounded (named limits below) and
 * checked for the bytes it may hold before it is kept; secrets (tokens)
 * are the caller's to wipe: oauth_token_clear() does it.
 */
#ifndef POPGATE_GATEWAY_OAUTH_PROTO_H
#define POPGATE_GATEWAY_OAUTH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest access or refresh token kept (UPSTREAM_TOKEN_MAX). */
#define OAUTH_TOKEN_MAX 8192
/* Longest device code, user code and verification URI. */
#define OAUTH_DEVICE_CODE_MAX 2048
#define OAUTH_USER_CODE_MAX 64
#define OAUTH_URI_MAX 512
/* Longest provider error text kept (escaped). */
#define OAUTH_ERROR_MAX 200
/* Device sign-in: how long a code may live, and the polling interval's
 * bounds (a provider's "interval" below the minimum is raised). */
#define OAUTH_DEVICE_EXPIRES_MAX 3600
#define OAUTH_INTERVAL_MIN 1
#define OAUTH_INTERVAL_MAX 60
/* Access token lifetime when the provider omits expires_in, and the
 * shortest accepted (a provider saying 0 must not make us spin). */
#define OAUTH_LIFETIME_DEFAULT 3600
#define OAUTH_LIFETIME_MIN 5
/* Refresh at the latest this long before expiry (RFC 6749 leaves it to
 * the client; 5 minutes covers clock skew and a slow provider). */
#define OAUTH_REFRESH_MARGIN 300

/*
 * A form body from name/value pairs (names[i], values[i], n pairs),
 * percent-encoding everything but RFC 3986's unreserved characters. The
 * result is the caller's (free after wiping: it may hold secrets).
 */
char *oauth_form(const char *const *names, const char *const *values,
    size_t n);

/* RFC 8628 3.2. Strings are owned (oauth_device_clear). */
struct oauth_device {
	char *device_code;
	char *user_code;
	char *verification_uri;
	char *verification_uri_complete;	/* NULL when not given */
	uint32_t expires_in;
	uint32_t interval;
};

int oauth_parse_device(long status, const char *body, size_t len,
    struct oauth_device *d, char *err, size_t errsize);
void oauth_device_clear(struct oauth_device *d);

enum oauth_result {
	OAUTH_OK = 0,
	OAUTH_PENDING,		/* authorization_pending: ask again */
	OAUTH_SLOW_DOWN,	/* slow_down: ask again, 5 s slower */
	OAUTH_DENIED,		/* access_denied: the user said no */
	OAUTH_EXPIRED,		/* expired_token: the device code expired */
	OAUTH_INVALID_GRANT,	/* invalid_grant: the grant is revoked,
				   expired or never was: sign in again */
	OAUTH_BAD_CLIENT,	/* invalid_client, unauthorized_client,
				   invalid_scope ...: a configuration
				   problem; retrying soon will not help */
	OAUTH_TEMP,		/* anything else (5xx, malformed, network):
				   retry later */
};

const char *oauth_result_name(enum oauth_result r);

/* RFC 6749 5.1. Strings are owned (oauth_token_clear wipes them). */
struct oauth_token {
	char *access_token;
	char *refresh_token;	/* NULL: keep the one we have */
	char *scope;		/* NULL: as requested */
	uint32_t expires_in;
};

/*
 * Classifies a token endpoint's answer (status 0: no answer at all).
 * OAUTH_OK fills t; any other result writes a message for admins into
 * err (the provider's error and description, escaped).
 */
enum oauth_result oauth_parse_token(long status, const char *body,
    size_t len, struct oauth_token *t, char *err, size_t errsize);
void oauth_token_clear(struct oauth_token *t);

/* True when every scope of wanted (space-separated) is in granted, except
 * offline_access (which providers do not echo); granted NULL means the
 * request was granted as asked (RFC 6749 5.1). */
bool oauth_scope_covers(const char *granted, const char *wanted);

/* When to refresh a token issued at issued for lifetime seconds. */
time_t oauth_refresh_at(time_t issued, uint32_t lifetime);

#endif
