/* upstream — account configuration helpers; see upstream.h. */
#include "pop3-upstream/upstream.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

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
	size_t hex = 0;

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
	    strlen(a->password) > UPSTREAM_PASSWORD_MAX) {
		/* longer would not fit a POP3 command line */
		*error_r = "account login (max 255 bytes) or password (max "
		    "1000 bytes) too long";
		return -1;
	}
	if (a->mailbox != NULL && (a->mailbox[0] == '\0' ||
	    !no_ctl(a->mailbox))) {
		*error_r = "bad target mailbox name";
		return -1;
	}
	if (a->fingerprint != NULL) {
		for (const char *p = a->fingerprint; *p != '\0'; p++) {
			if (isxdigit((unsigned char)*p))
				hex++;
			else if (*p != ':') {
				*error_r = "fingerprint must be SHA-256 in hex";
				return -1;
			}
		}
		if (hex != 64) {
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
	"auto", "user", "apop", "plain", "login", "cram-md5"
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
