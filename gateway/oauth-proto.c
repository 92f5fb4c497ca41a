/* oauth-proto — see oauth-proto.h. */
#include "gateway/oauth-proto.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

static bool
unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static void
encode(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (unreserved(c)) {
			strbuf_appendc(sb, (char)c);
		} else {
			strbuf_appendc(sb, '%');
			strbuf_appendc(sb, hex[c >> 4]);
			strbuf_appendc(sb, hex[c & 15]);
		}
	}
}

char *
oauth_form(const char *const *names, const char *const *values, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strbuf_appendc(&sb, '&');
		encode(&sb, names[i]);
		strbuf_appendc(&sb, '=');
		encode(&sb, values[i]);
	}
	if (sb.data == NULL)
		strbuf_append(&sb, "", 0);
	return strbuf_detach(&sb, NULL);
}

/* A string member of at most max bytes of printable ASCII (allow_space:
   spaces too), or NULL. */
static const char *
str_member(json_t *o, const char *name, size_t max, bool allow_space)
{
	json_t *v = json_object_get(o, name);
	const char *s;
	size_t len;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	len = json_string_length(v);
	if (len == 0 || len > max || strlen(s) != len)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x7e || c < 0x20 || (c == ' ' && !allow_space))
			return NULL;
	}
	return s;
}

/* A non-negative integer member (JSON number or digit string), or def. */
static int64_t
int_member(json_t *o, const char *name, int64_t def)
{
	json_t *v = json_object_get(o, name);

	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) >= 0 &&
	    json_real_value(v) < 1e9)
		return (int64_t)json_real_value(v);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		int64_t n = 0;

		if (*s == '\0' || strlen(s) > 9)
			return def;
		for (; *s != '\0'; s++) {
			if (*s < '0' || *s > '9')
				return def;
			n = n * 10 + (*s - '0');
		}
		return n;
	}
	return def;
}

static json_t *
load_object(const char *body, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static uint32_t
clamp(int64_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

/* "provider said: ERROR (DESCRIPTION)" into err, escaped. */
static void
provider_error(json_t *j, long status, char *err, size_t errsize)
{
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j,
	    "error_description"));
	char ee[OAUTH_ERROR_MAX / 2], de[OAUTH_ERROR_MAX];

	log_escape(ee, sizeof(ee), e != NULL ? e : "", e != NULL ?
	    strlen(e) : 0);
	log_escape(de, sizeof(de), d != NULL ? d : "", d != NULL ?
	    strlen(d) : 0);
	if (e != NULL && d != NULL)
		snprintf(err, errsize, "%s (%s)", ee, de);
	else if (e != NULL)
		snprintf(err, errsize, "%s", ee);
	else
		snprintf(err, errsize, "HTTP status %ld without an OAuth "
		    "error", status);
}

int
oauth_parse_device(long status, const char *body, size_t len,
    struct oauth_device *d, char *err, size_t errsize)
{
	json_t *j = load_object(body, len);
	const char *dc, *uc, *uri, *uric;
	int ret = -1;

	memset(d, 0, sizeof(*d));
	if (j == NULL) {
		snprintf(err, errsize, "device authorization answer is not a "
		    "JSON object (HTTP status %ld)", status);
		return -1;
	}
	if (status != 200) {
		provider_error(j, status, err, errsize);
		goto out;
	}
	dc = str_member(j, "device_code", OAUTH_DEVICE_CODE_MAX, false);
	uc = str_member(j, "user_code", OAUTH_USER_CODE_MAX, true);
	/* Google says verification_url (its pre-RFC name) */
	uri = str_member(j, "verification_uri", OAUTH_URI_MAX, false);
	if (uri == NULL)
		uri = str_member(j, "verification_url", OAUTH_URI_MAX, false);
	uric = str_member(j, "verification_uri_complete", OAUTH_URI_MAX,
	    false);
	if (dc == NULL || uc == NULL || uri == NULL) {
		snprintf(err, errsize, "device authorization answer lacks a "
		    "usable device_code, user_code or verification_uri");
		goto out;
	}
	d->device_code = xstrdup(dc);
	d->user_code = xstrdup(uc);
	d->verification_uri = xstrdup(uri);
	d->verification_uri_complete = dup_or_null(uric);
	d->expires_in = clamp(int_member(j, "expires_in", 600), 10,
	    OAUTH_DEVICE_EXPIRES_MAX);
	d->interval = clamp(int_member(j, "interval", 5), OAUTH_INTERVAL_MIN,
	    OAUTH_INTERVAL_MAX);
	ret = 0;
out:
	json_decref(j);
	return ret;
}

void
oauth_device_clear(struct oauth_device *d)
{
	if (d->device_code != NULL)
		secure_zero(d->device_code, strlen(d->device_code));
	free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

static const struct {
	const char *code;
	enum oauth_result result;
} error_codes[] = {
	{ "authorization_pending", OAUTH_PENDING },
	{ "slow_down", OAUTH_SLOW_DOWN },
	{ "access_denied", OAUTH_DENIED },
	{ "expired_token", OAUTH_EXPIRED },
	{ "invalid_grant", OAUTH_INVALID_GRANT },
	{ "invalid_client", OAUTH_BAD_CLIENT },
	{ "unauthorized_client", OAUTH_BAD_CLIENT },
	{ "invalid_scope", OAUTH_BAD_CLIENT },
	{ "unsupported_grant_type", OAUTH_BAD_CLIENT },
	{ "invalid_request", OAUTH_BAD_CLIENT },
};

const char *
oauth_result_name(enum oauth_result r)
{
	static const char *const names[] = { "ok", "pending", "slow-down",
	    "denied", "expired", "invalid-grant", "bad-client", "temporary" };

	return (size_t)r < N_ELEMENTS(names) ? names[r] : "?";
}

enum oauth_result
oauth_parse_token(long status, const char *body, size_t len,
    struct oauth_token *t, char *err, size_t errsize)
{
	json_t *j;
	const char *at, *rt, *type, *scope, *code;
	enum oauth_result r = OAUTH_TEMP;

	memset(t, 0, sizeof(*t));
	err[0] = '\0';
	if (status == 0) {
		snprintf(err, errsize, "no answer from the token endpoint");
		return OAUTH_TEMP;
	}
	j = load_object(body, len);
	if (j == NULL) {
		snprintf(err, errsize, "token endpoint answered HTTP %ld "
		    "without a JSON object", status);
		return OAUTH_TEMP;
	}
	code = json_string_value(json_object_get(j, "error"));
	if (status != 200 || code != NULL) {
		provider_error(j, status, err, errsize);
		r = status >= 500 ? OAUTH_TEMP : OAUTH_BAD_CLIENT;
		for (size_t i = 0; code != NULL && i < N_ELEMENTS(error_codes);
		    i++) {
			if (strcmp(code, error_codes[i].code) == 0)
				r = error_codes[i].result;
		}
		if (code == NULL && status < 500)
			r = status == 429 ? OAUTH_TEMP : OAUTH_BAD_CLIENT;
		goto out;
	}
	at = str_member(j, "access_token", OAUTH_TOKEN_MAX, false);
	rt = str_member(j, "refresh_token", OAUTH_TOKEN_MAX, false);
	type = json_string_value(json_object_get(j, "token_type"));
	scope = str_member(j, "scope", 4096, true);
	if (at == NULL) {
		snprintf(err, errsize, "token answer has no usable "
		    "access_token");
		goto out;
	}
	if (type == NULL || strcasecmp(type, "Bearer") != 0) {
		snprintf(err, errsize, "token answer is not a Bearer token");
		goto out;
	}
	if (json_object_get(j, "refresh_token") != NULL && rt == NULL) {
		snprintf(err, errsize, "token answer has an unusable "
		    "refresh_token");
		goto out;
	}
	t->access_token = xstrdup(at);
	t->refresh_token = dup_or_null(rt);
	t->scope = dup_or_null(scope);
	t->expires_in = clamp(int_member(j, "expires_in",
	    OAUTH_LIFETIME_DEFAULT), OAUTH_LIFETIME_MIN, 366u * 86400);
	r = OAUTH_OK;
out:
	/* the parsed object holds the tokens: jansson frees it; the
	   daemon's allocator wipes on free (ctl_json_wipe_on_free) */
	json_decref(j);
	return r;
}

void
oauth_token_clear(struct oauth_token *t)
{
	if (t->access_token != NULL)
		secure_zero(t->access_token, strlen(t->access_token));
	if (t->refresh_token != NULL)
		secure_zero(t->refresh_token, strlen(t->refresh_token));
	free(t->access_token);
	free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

static bool
has_word(const char *list, const char *w, size_t wl)
{
	const char *p = list;

	while (*p != '\0') {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n == wl && strncmp(p, w, wl) == 0)
			return true;
		p += n;
	}
	return false;
}

bool
oauth_scope_covers(const char *granted, const char *wanted)
{
	const char *p = wanted;

	if (granted == NULL)
		return true;
	while (*p != '\0') {
		size_t n;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n > 0 && !(n == 14 && strncmp(p, "offline_access", 14) ==
		    0) && !has_word(granted, p, n))
			return false;
		p += n;
	}
	return true;
}

time_t
oauth_refresh_at(time_t issued, uint32_t lifetime)
{
	uint32_t margin = lifetime / 4;

	if (margin > OAUTH_REFRESH_MARGIN)
		margin = OAUTH_REFRESH_MARGIN;
	return issued + (time_t)(lifetime - margin);
}
