/* accounts — see accounts.h. */
#include "accounts.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/admin-store.h"
#include "gateway/secret.h"
#include "pop3-upstream/upstream.h"
#include "store/store.h"
#include "xmalloc.h"

void
account_clear(struct account *a)
{
	free(a->user);
	free(a->name);
	free(a->host);
	free(a->auth);
	free(a->login);
	free(a->password_sealed);
	free(a->folder);
	free(a->ca_file);
	free(a->fingerprint);
	free(a->oauth_provider);
	free(a->refresh_sealed);
	memset(a, 0, sizeof(*a));
}

static char *
dup_or_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

void
account_copy(struct account *d, const struct account *s)
{
	*d = *s;
	d->user = dup_or_null(s->user);
	d->name = dup_or_null(s->name);
	d->host = dup_or_null(s->host);
	d->auth = dup_or_null(s->auth);
	d->login = dup_or_null(s->login);
	d->password_sealed = dup_or_null(s->password_sealed);
	d->folder = dup_or_null(s->folder);
	d->ca_file = dup_or_null(s->ca_file);
	d->fingerprint = dup_or_null(s->fingerprint);
	d->oauth_provider = dup_or_null(s->oauth_provider);
	d->refresh_sealed = dup_or_null(s->refresh_sealed);
}

bool
account_is_oauth(const struct account *a)
{
	enum upstream_auth auth;

	return a->auth != NULL && upstream_auth_parse(a->auth, &auth) == 0 &&
	    UPSTREAM_AUTH_IS_OAUTH(auth);
}

bool
account_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > ACCOUNT_NAME_MAX)
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._@+-", *p) != NULL))
			return false;
	}
	return true;
}

static json_t *
account_json(const struct account *a, bool with_secret)
{
	char mode[32];
	json_t *j;

	j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i, "
	    "s:I, s:b, s:I}",
	    "user", a->user, "account", a->name,
	    "host", a->host, "port", (int)a->port,
	    "tls", config_tls_name(a->tls), "auth", a->auth,
	    "login", a->login,
	    "mode", config_mode_name(a->mode, a->delete_after_days, mode,
	    sizeof(mode)),
	    "folder", a->folder, "interval", (int)a->interval,
	    "size_limit", (json_int_t)a->size_limit,
	    "enabled", a->enabled, "created", (json_int_t)a->created);
	PG_ASSERT(j != NULL);
	if (with_secret)
		json_object_set_new(j, "password_sealed",
		    json_string(a->password_sealed));
	/* optional fields: absent in records older than them */
	if (a->ca_file != NULL)
		json_object_set_new(j, "ca_file", json_string(a->ca_file));
	if (a->ca_only)
		json_object_set_new(j, "ca_only", json_true());
	if (a->fingerprint != NULL)
		json_object_set_new(j, "fingerprint",
		    json_string(a->fingerprint));
	if (a->allow_cleartext)
		json_object_set_new(j, "allow_cleartext", json_true());
	if (a->oauth_provider != NULL)
		json_object_set_new(j, "oauth_provider",
		    json_string(a->oauth_provider));
	if (account_is_oauth(a)) {
		if (with_secret && a->refresh_sealed != NULL)
			json_object_set_new(j, "refresh_sealed",
			    json_string(a->refresh_sealed));
		json_object_set_new(j, "oauth_needs_signin",
		    json_boolean(a->oauth_needs_signin));
		if (a->oauth_signed_in != 0)
			json_object_set_new(j, "oauth_signed_in",
			    json_integer((json_int_t)a->oauth_signed_in));
		else if (!with_secret)
			json_object_set_new(j, "oauth_signed_in",
			    json_null());
		if (!with_secret)
			json_object_set_new(j, "oauth_grant", json_boolean(
			    a->refresh_sealed != NULL));
	}
	return j;
}

json_t *
account_to_record(const struct account *a)
{
	json_t *j = account_json(a, true);

	/* user and account are the key; not repeated in the value */
	json_object_del(j, "user");
	json_object_del(j, "account");
	return j;
}

json_t *
account_to_public(const struct account *a)
{
	return account_json(a, false);
}

int
account_from_record(const char *user, uint32_t user_id, const char *name,
    const void *value, size_t size, struct account *a_r,
    const char **error_r)
{
	json_error_t jerr;
	json_t *j;
	const char *host, *tls, *auth, *login, *sealed, *mode, *folder;
	const char *ca_file = NULL, *fingerprint = NULL, *provider = NULL;
	const char *refresh = NULL;
	json_int_t port, interval, size_limit, created, signed_in = 0;
	int enabled, ca_only = 0, cleartext = 0, needs_signin = 0;
	int ret = -1;

	memset(a_r, 0, sizeof(*a_r));
	j = json_loadb(value, size, 0, &jerr);
	if (j == NULL ||
	    json_unpack(j, "{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, "
	    "s:I, s:b, s:I}",
	    "host", &host, "port", &port, "tls", &tls, "auth", &auth,
	    "login", &login, "password_sealed", &sealed, "mode", &mode,
	    "folder", &folder, "interval", &interval,
	    "size_limit", &size_limit, "enabled", &enabled,
	    "created", &created) != 0) {
		*error_r = "damaged upstream-account record";
		goto out;
	}
	if (json_unpack(j, "{s?:s, s?:b, s?:s, s?:b, s?:s, s?:s, s?:b, "
	    "s?:I}", "ca_file", &ca_file, "ca_only", &ca_only,
	    "fingerprint", &fingerprint, "allow_cleartext", &cleartext,
	    "oauth_provider", &provider, "refresh_sealed", &refresh,
	    "oauth_needs_signin", &needs_signin,
	    "oauth_signed_in", &signed_in) != 0) {
		*error_r = "damaged upstream-account record";
		goto out;
	}
	if (config_parse_tls(tls, &a_r->tls, error_r) < 0 ||
	    config_parse_mode(mode, &a_r->mode, &a_r->delete_after_days,
	    error_r) < 0 || port < 1 || port > 65535 || interval < 0 ||
	    interval > UINT32_MAX || size_limit < 0) {
		*error_r = "damaged upstream-account record";
		goto out;
	}
	a_r->user = xstrdup(user);
	a_r->user_id = user_id;
	a_r->name = xstrdup(name);
	a_r->host = xstrdup(host);
	a_r->port = (uint16_t)port;
	a_r->auth = xstrdup(auth);
	a_r->login = xstrdup(login);
	a_r->password_sealed = xstrdup(sealed);
	a_r->folder = xstrdup(folder);
	a_r->interval = (uint32_t)interval;
	a_r->size_limit = (uint64_t)size_limit;
	a_r->enabled = enabled != 0;
	a_r->created = created;
	a_r->ca_file = dup_or_null(ca_file);
	a_r->ca_only = ca_only != 0;
	a_r->fingerprint = dup_or_null(fingerprint);
	a_r->allow_cleartext = cleartext != 0;
	a_r->oauth_provider = dup_or_null(provider);
	a_r->refresh_sealed = dup_or_null(refresh);
	a_r->oauth_needs_signin = needs_signin != 0;
	a_r->oauth_signed_in = signed_in;
	ret = 0;
out:
	json_decref(j);
	return ret;
}

int
accounts_get(struct store_read *r, uint32_t user_id, const char *user,
    const char *name, struct account *a_r, const char **error_r)
{
	char *key = xasprintf(ACCOUNTS_META_PREFIX "%s", name);
	const void *value;
	size_t size;
	int ret;

	ret = store_user_meta_get(r, user_id, key, &value, &size, error_r);
	free(key);
	if (ret != 0)
		return ret;
	return account_from_record(user, user_id, name, value, size, a_r,
	    error_r);
}

int
accounts_put_setting(struct store *store, uint32_t user_id, const char *key,
    json_t *value, const char **error_r)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
	int ret;

	PG_ASSERT(text != NULL);
	ret = admin_store_meta_put(store, user_id, key, text, strlen(text),
	    error_r);
	free(text);
	return ret;
}

int
accounts_put(struct store *store, const struct account *a,
    const char **error_r)
{
	json_t *j = account_to_record(a);
	char *key = xasprintf(ACCOUNTS_META_PREFIX "%s", a->name);
	int ret;

	ret = accounts_put_setting(store, a->user_id, key, j, error_r);
	free(key);
	json_decref(j);
	return ret;
}

int
accounts_delete(struct store *store, uint32_t user_id, const char *name,
    const char **error_r)
{
	char *key = xasprintf(ACCOUNTS_META_PREFIX "%s", name);
	int ret;

	ret = admin_store_meta_del(store, user_id, key, error_r);
	free(key);
	return ret;
}

struct foreach_ctx {
	const char *user;
	uint32_t user_id;
	int (*cb)(void *ctx, const struct account *a);
	void *ctx;
};

static int
foreach_meta(void *arg, const char *key, const void *value, size_t size)
{
	struct foreach_ctx *fc = arg;
	struct account a;
	const char *error;
	size_t plen = strlen(ACCOUNTS_META_PREFIX);
	int ret;

	if (strncmp(key, ACCOUNTS_META_PREFIX, plen) != 0)
		return 0;
	if (account_from_record(fc->user, fc->user_id, key + plen, value,
	    size, &a, &error) < 0)
		return 0;	/* skipped; status reports it per account */
	ret = fc->cb(fc->ctx, &a);
	account_clear(&a);
	return ret;
}

int
accounts_foreach(struct store_read *r, uint32_t user_id, const char *user,
    int (*cb)(void *ctx, const struct account *a), void *ctx,
    const char **error_r)
{
	struct foreach_ctx fc = { user, user_id, cb, ctx };

	return store_user_meta_foreach(r, user_id, foreach_meta, &fc,
	    error_r);
}

static char *
aad_of(const struct account *a)
{
	return xasprintf("%s/%s", a->user, a->name);
}

/* A sealed refresh token copied into the password field (or the other way
   round) does not open: its associated data differs. */
static char *
aad_refresh_of(const struct account *a)
{
	return xasprintf("%s/%s/oauth", a->user, a->name);
}

int
account_seal_refresh(struct account *a, const struct secret_key *key,
    const char *token)
{
	char *aad, *sealed;

	if (token == NULL) {
		free(a->refresh_sealed);
		a->refresh_sealed = NULL;
		return 0;
	}
	aad = aad_refresh_of(a);
	sealed = secret_seal(key, aad, token, strlen(token));
	free(aad);
	if (sealed == NULL)
		return -1;
	free(a->refresh_sealed);
	a->refresh_sealed = sealed;
	return 0;
}

int
account_open_refresh(const struct account *a, const struct secret_key *key,
    char **token_r, const char **error_r)
{
	char *aad;
	size_t len;
	int ret;

	if (a->refresh_sealed == NULL) {
		*error_r = "not signed in";
		return -1;
	}
	aad = aad_refresh_of(a);
	ret = secret_open(key, aad, a->refresh_sealed, token_r, &len,
	    error_r);
	free(aad);
	return ret;
}

int
account_seal_password(struct account *a, const struct secret_key *key,
    const char *password)
{
	char *aad = aad_of(a);
	char *sealed = secret_seal(key, aad, password, strlen(password));

	free(aad);
	if (sealed == NULL)
		return -1;
	free(a->password_sealed);
	a->password_sealed = sealed;
	return 0;
}

int
account_open_password(const struct account *a, const struct secret_key *key,
    char **password_r, const char **error_r)
{
	char *aad = aad_of(a);
	size_t len;
	int ret;

	ret = secret_open(key, aad, a->password_sealed, password_r, &len,
	    error_r);
	free(aad);
	return ret;
}
