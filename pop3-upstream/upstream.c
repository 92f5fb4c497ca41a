/* upstream — account configuration helpers; see upstream.h. */
#include "pop3-upstream/upstream.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "xmalloc.h"

static char *
dup_or_null(const char *s)
{
	return s == NULL ? NULL : xstrdup(s);
}

struct upstream_account *
upstream_account_dup(const struct upstream_account *a)
{
	struct upstream_account *c = xmalloc(sizeof(*c));

	*c = *a;
	c->id = dup_or_null(a->id);
	c->mailbox = dup_or_null(a->mailbox);
	c->host = dup_or_null(a->host);
	c->ca_file = dup_or_null(a->ca_file);
	c->fingerprint = dup_or_null(a->fingerprint);
	c->login = dup_or_null(a->login);
	c->password = dup_or_null(a->password);
	return c;
}

void
upstream_account_free(struct upstream_account **ap)
{
	struct upstream_account *a = *ap;

	if (a == NULL)
		return;
	if (a->password != NULL) {
		secure_zero(a->password, strlen(a->password));
		free(a->password);
	}
	free(a->id);
	free(a->mailbox);
	free(a->host);
	free(a->ca_file);
	free(a->fingerprint);
	free(a->login);
	secure_zero(a, sizeof(*a));
	free(a);
	*ap = NULL;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

enum upstream_account_change
upstream_account_compare(const struct upstream_account *o,
    const struct upstream_account *c)
{
	bool same_rest = str_eq(o->id, c->id) && o->user_id == c->user_id &&
	    str_eq(o->mailbox, c->mailbox) && str_eq(o->host, c->host) &&
	    o->port == c->port && o->tls == c->tls &&
	    str_eq(o->ca_file, c->ca_file) && o->ca_only == c->ca_only &&
	    str_eq(o->fingerprint, c->fingerprint) &&
	    o->allow_cleartext == c->allow_cleartext && o->auth == c->auth &&
	    str_eq(o->login, c->login) && o->mode == c->mode &&
	    o->delete_after_days == c->delete_after_days &&
	    o->interval_secs == c->interval_secs &&
	    o->size_limit == c->size_limit && o->trace == c->trace &&
	    memcmp(&o->timeouts, &c->timeouts, sizeof(o->timeouts)) == 0;

	if (!same_rest)
		return UPSTREAM_CHANGE_OTHER;
	if (str_eq(o->password, c->password))
		return UPSTREAM_CHANGE_NONE;
	return UPSTREAM_AUTH_IS_OAUTH(c->auth) ? UPSTREAM_CHANGE_TOKEN :
	    UPSTREAM_CHANGE_OTHER;
}

bool
upstream_host_is_loopback(const char *host)
{
	unsigned char a[16];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1) {
		static const unsigned char one[16] = { [15] = 1 };
		static const unsigned char mapped[12] = { [10] = 0xff,
		    [11] = 0xff };

		/* ::1, or ::ffff:127.x.x.x (IPv4-mapped loopback) */
		return memcmp(a, one, 16) == 0 ||
		    (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	}
	return false;
}

int
upstream_fingerprint_parse(const char *s, unsigned char out[32])
{
	size_t n = 0;
	int hi = -1;

	for (; *s != '\0'; s++) {
		int v;

		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s))
			return -1;
		v = isdigit((unsigned char)*s) ? *s - '0' :
		    tolower((unsigned char)*s) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			if (n == 32)
				return -1;
			out[n++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	return n == 32 && hi < 0 ? 0 : -1;
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	}
	return true;
}

static bool
no_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

int
upstream_account_check(const struct upstream_account *a,
    const char **error_r)
{
	unsigned char fp[32];
	size_t secret_max = UPSTREAM_AUTH_IS_OAUTH(a->auth) ?
	    UPSTREAM_TOKEN_MAX : UPSTREAM_PASSWORD_MAX;

	if (a->id == NULL || a->id[0] == '\0' ||
	    strlen(a->id) > UPSTREAM_ID_MAX || !printable(a->id)) {
		*error_r = "account id must be 1..64 printable ASCII bytes";
		return -1;
	}
	if (a->host == NULL || a->host[0] == '\0' || !printable(a->host)) {
		*error_r = "account needs a host name";
		return -1;
	}
	if (a->login == NULL || a->login[0] == '\0' || !no_ctl(a->login) ||
	    a->password == NULL || !no_ctl(a->password)) {
		/* a CR or LF in a credential would inject POP3 commands */
		*error_r = "account needs a login and password without "
		    "control characters";
		return -1;
	}
	if (strlen(a->login) > UPSTREAM_LOGIN_MAX ||
	    strlen(a->password) > secret_max) {
		/* longer would not fit a POP3 command line */
		*error_r = "account login (max 255 bytes) or password (max "
		    "1000 bytes; an access token 8192) too long";
		return -1;
	}
	if (a->tls == UPSTREAM_TLS_NONE && !a->allow_cleartext &&
	    !upstream_host_is_loopback(a->host)) {
		*error_r = "tls none to a host that is not loopback sends the "
		    "credentials in clear: it needs allow_cleartext";
		return -1;
	}
	if (UPSTREAM_AUTH_IS_OAUTH(a->auth) && a->tls == UPSTREAM_TLS_NONE &&
	    !upstream_host_is_loopback(a->host)) {
		/* a bearer token is as good as a password to whoever sees
		   it, and it is good for every service of its scope */
		*error_r = "an OAuth bearer token is never sent in clear to "
		    "a host that is not loopback";
		return -1;
	}
	if (a->mailbox != NULL && (a->mailbox[0] == '\0' ||
	    !no_ctl(a->mailbox))) {
		*error_r = "bad target mailbox name";
		return -1;
	}
	if (a->fingerprint != NULL) {
		if (upstream_fingerprint_parse(a->fingerprint, fp) < 0) {
			*error_r = "fingerprint must be SHA-256 in hex";
			return -1;
		}
		if (a->tls == UPSTREAM_TLS_NONE) {
			*error_r = "a fingerprint needs tls pop3s or stls";
			return -1;
		}
	}
	if (a->mode == UPSTREAM_MODE_DELETE_AFTER && a->delete_after_days == 0) {
		*error_r = "delete-after needs a number of days >= 1";
		return -1;
	}
	return 0;
}

static const char *const tls_names[] = { "pop3s", "stls", "none" };
static const char *const auth_names[] = {
	"auto", "user", "apop", "plain", "login", "cram-md5", "scram-sha-1",
	"scram-sha-256", "xoauth2", "oauthbearer"
};
static const char *const mode_names[] = {
	"keep", "delete", "delete-after", "mirror"
};
static const char *const state_names[] = {
	"idle", "queued", "polling", "backoff", "auth-failed", "store-error",
	"stopped", "over-quota"
};

const char *
upstream_tls_name(enum upstream_tls tls)
{
	return (size_t)tls < N_ELEMENTS(tls_names) ? tls_names[tls] : "?";
}

const char *
upstream_auth_name(enum upstream_auth auth)
{
	return (size_t)auth < N_ELEMENTS(auth_names) ? auth_names[auth] : "?";
}

const char *
upstream_mode_name(enum upstream_mode mode)
{
	return (size_t)mode < N_ELEMENTS(mode_names) ? mode_names[mode] : "?";
}

const char *
upstream_state_name(enum upstream_state state)
{
	return (size_t)state < N_ELEMENTS(state_names) ?
	    state_names[state] : "?";
}

static int
lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], s) == 0)
			return (int)i;
	}
	return -1;
}

int
upstream_tls_parse(const char *s, enum upstream_tls *tls_r)
{
	int i = lookup(tls_names, N_ELEMENTS(tls_names), s);

	if (i < 0)
		return -1;
	*tls_r = (enum upstream_tls)i;
	return 0;
}

int
upstream_auth_parse(const char *s, enum upstream_auth *auth_r)
{
	int i = lookup(auth_names, N_ELEMENTS(auth_names), s);

	if (i < 0)
		return -1;
	*auth_r = (enum upstream_auth)i;
	return 0;
}

int
upstream_mode_parse(const char *s, enum upstream_mode *mode_r)
{
	int i = lookup(mode_names, N_ELEMENTS(mode_names), s);

	if (i < 0)
		return -1;
	*mode_r = (enum upstream_mode)i;
	return 0;
}

void
upstream_mailbox_key(const struct upstream_account *a,
    unsigned char out[UPSTREAM_MAILBOX_KEY_SIZE])
{
	upstream_mailbox_key_at(a, a->host, out);
}

void
upstream_mailbox_key_at(const struct upstream_account *a, const char *host,
    unsigned char out[UPSTREAM_MAILBOX_KEY_SIZE])
{
	const char *login = a->login != NULL ? a->login : "";
	size_t hl;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char port[16];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL)
		abort();
	if (host == NULL)
		host = "";
	hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	snprintf(port, sizeof(port), "%u", a->port != 0 ? a->port :
	    a->tls == UPSTREAM_TLS_POP3S ? 995u : 110u);
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	/* "host\0port\0login", host and login in lower case */
	for (size_t i = 0; i < hl; i++) {
		char ch = (char)tolower((unsigned char)host[i]);

		EVP_DigestUpdate(c, &ch, 1);
	}
	EVP_DigestUpdate(c, "", 1);
	EVP_DigestUpdate(c, port, strlen(port) + 1);
	for (const char *p = login; *p != '\0'; p++) {
		char ch = (char)tolower((unsigned char)*p);

		EVP_DigestUpdate(c, &ch, 1);
	}
	EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	memcpy(out, md, UPSTREAM_MAILBOX_KEY_SIZE);
}
