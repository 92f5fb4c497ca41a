/*
 * config-oauth — the [oauth.NAME] sections of popgate.conf: OAuth 2.0
 * providers for upstream accounts that sign in with XOAUTH2 or
 * OAUTHBEARER. Level 1 (pure): see config.h and docs/popgate.conf.5.
 */
#include "gateway/config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strnum.h"
#include "xmalloc.h"

/* What a preset gives; {TENANT} in a URL is replaced by the tenant. */
struct preset {
	const char *name;
	const char *device_endpoint;
	const char *token_endpoint;
	const char *scope;
	const char *host;
	uint16_t port;
	const char *default_tenant;
};

static const struct preset presets[] = {
	/* Microsoft identity platform (Exchange Online, Outlook.com):
	   POP with OAuth needs the POP.AccessAsUser.All permission;
	   offline_access brings the refresh token */
	{ "microsoft",
	  "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/devicecode",
	  "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
	  "https://outlook.office.com/POP.AccessAsUser.All offline_access",
	  "outlook.office365.com", 995, "common" },
	/* Google: the endpoints and Gmail's POP host; Google grants the
	   mail scope to the device flow only where its policy allows
	   (docs/admin-guide.md) */
	{ "google",
	  "https://oauth2.googleapis.com/device/code",
	  "https://oauth2.googleapis.com/token",
	  "https://mail.google.com/",
	  "pop.gmail.com", 995, NULL },
};

enum okey {
	OK_PRESET, OK_CLIENT_ID, OK_CLIENT_SECRET, OK_TENANT, OK_DEVICE,
	OK_TOKEN, OK_SCOPE, OK_HOST, OK_PORT, OK_TLS, OK_MECHANISM, OK_CA_FILE,
	OK_COUNT
};

static const struct {
	const char *name;
	size_t offset;		/* char * field; (size_t)-1: special */
} okeys[OK_COUNT] = {
	[OK_PRESET] = { "preset", offsetof(struct config_oauth, preset) },
	[OK_CLIENT_ID] = { "client_id",
	    offsetof(struct config_oauth, client_id) },
	[OK_CLIENT_SECRET] = { "client_secret",
	    offsetof(struct config_oauth, client_secret) },
	[OK_TENANT] = { "tenant", offsetof(struct config_oauth, tenant) },
	[OK_DEVICE] = { "device_endpoint",
	    offsetof(struct config_oauth, device_endpoint) },
	[OK_TOKEN] = { "token_endpoint",
	    offsetof(struct config_oauth, token_endpoint) },
	[OK_SCOPE] = { "scope", offsetof(struct config_oauth, scope) },
	[OK_HOST] = { "host", offsetof(struct config_oauth, host) },
	[OK_PORT] = { "port", (size_t)-1 },
	[OK_TLS] = { "tls", (size_t)-1 },
	[OK_MECHANISM] = { "mechanism",
	    offsetof(struct config_oauth, mechanism) },
	[OK_CA_FILE] = { "ca_file", offsetof(struct config_oauth, ca_file) },
};

static bool
name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 32)
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-' || *s == '_'))
			return false;
	}
	return true;
}

const struct config_oauth *
config_oauth_find(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->oauth_count; i++) {
		if (strcmp(c->oauth[i].name, name) == 0)
			return &c->oauth[i];
	}
	return NULL;
}

int
config_oauth_key(struct config *c, const char *name, const char *key,
    const char *value, const char **error_r)
{
	struct config_oauth *p = (struct config_oauth *)config_oauth_find(c,
	    name);
	int k;

	if (!name_valid(name)) {
		*error_r = "a provider name is 1 to 32 of a-z, 0-9, - and _";
		return -1;
	}
	for (k = 0; k < OK_COUNT; k++) {
		if (strcmp(okeys[k].name, key) == 0)
			break;
	}
	if (k == OK_COUNT) {
		*error_r = "unknown key (preset, client_id, client_secret, "
		    "tenant, device_endpoint, token_endpoint, scope, host, "
		    "port, tls, mechanism, ca_file)";
		return -1;
	}
	if (p == NULL) {
		if (c->oauth_count == CONFIG_OAUTH_MAX) {
			*error_r = "too many [oauth.NAME] sections (16)";
			return -1;
		}
		p = &c->oauth[c->oauth_count++];
		p->name = xstrdup(name);
	}
	if (p->seen & (1u << k)) {
		*error_r = "set twice";
		return -1;
	}
	p->seen |= 1u << k;
	if (*value == '\0') {
		*error_r = "value must not be empty";
		return -1;
	}
	switch (k) {
	case OK_PORT:
		if (config_parse_port(value, error_r) < 0)
			return -1;
		p->port = (uint16_t)atoi(value);
		return 0;
	case OK_TLS:
		return config_parse_tls(value, &p->tls, error_r);
	case OK_MECHANISM:
		if (strcmp(value, "xoauth2") != 0 &&
		    strcmp(value, "oauthbearer") != 0) {
			*error_r = "expected xoauth2 or oauthbearer";
			return -1;
		}
		break;
	case OK_PRESET:
		if (strcmp(value, "microsoft") != 0 &&
		    strcmp(value, "google") != 0 &&
		    strcmp(value, "none") != 0) {
			*error_r = "expected microsoft, google or none";
			return -1;
		}
		break;
	case OK_DEVICE:
	case OK_TOKEN:
		if (strncmp(value, "https://", 8) != 0) {
			*error_r = "an endpoint must be an https:// URL";
			return -1;
		}
		break;
	case OK_CA_FILE:
		if (value[0] != '/') {
			*error_r = "must be an absolute path";
			return -1;
		}
		break;
	default:
		break;
	}
	{
		char **sp = (char **)((char *)p + okeys[k].offset);

		free(*sp);
		*sp = xstrdup(value);
	}
	return 0;
}

static char *
expand_tenant(const char *url, const char *tenant)
{
	const char *at = strstr(url, "{TENANT}");

	if (at == NULL)
		return xstrdup(url);
	return xasprintf("%.*s%s%s", (int)(at - url), url, tenant, at + 8);
}

static void
fill(char **field, const char *value)
{
	if (*field == NULL && value != NULL)
		*field = xstrdup(value);
}

/* One provider's presets and checks; message into err. */
static int
finish_one(struct config_oauth *p, char *err, size_t errsize)
{
	const struct preset *pre = NULL;

	if (p->preset == NULL && (strcmp(p->name, "microsoft") == 0 ||
	    strcmp(p->name, "google") == 0))
		p->preset = xstrdup(p->name);
	for (size_t i = 0; p->preset != NULL && i < N_ELEMENTS(presets);
	    i++) {
		if (strcmp(presets[i].name, p->preset) == 0)
			pre = &presets[i];
	}
	if (pre != NULL) {
		const char *tenant = p->tenant != NULL ? p->tenant :
		    pre->default_tenant;

		if (p->device_endpoint == NULL)
			p->device_endpoint = expand_tenant(
			    pre->device_endpoint, tenant != NULL ? tenant : "");
		if (p->token_endpoint == NULL)
			p->token_endpoint = expand_tenant(pre->token_endpoint,
			    tenant != NULL ? tenant : "");
		fill(&p->scope, pre->scope);
		fill(&p->host, pre->host);
		if (p->port == 0 && !(p->seen & (1u << OK_TLS)))
			p->port = pre->port;
	} else if (p->tenant != NULL) {
		snprintf(err, errsize, "[oauth.%s] tenant needs preset "
		    "microsoft", p->name);
		return -1;
	}
	fill(&p->mechanism, "xoauth2");
	if (p->client_id == NULL || p->device_endpoint == NULL ||
	    p->token_endpoint == NULL || p->scope == NULL) {
		snprintf(err, errsize, "[oauth.%s] needs client_id%s",
		    p->name, pre != NULL ? "" : ", device_endpoint, "
		    "token_endpoint and scope (or a preset)");
		return -1;
	}
	return 0;
}

int
config_oauth_finish(struct config *c, const char **error_r)
{
	/* config files are loaded on one thread (start-up, reload,
	   popgatectl): one static buffer for the message is enough */
	static char err[CONFIG_ERROR_MAX];

	for (size_t i = 0; i < c->oauth_count; i++) {
		if (finish_one(&c->oauth[i], err, sizeof(err)) < 0) {
			*error_r = err;
			return -1;
		}
	}
	return 0;
}

void
config_oauth_free(struct config *c)
{
	for (size_t i = 0; i < c->oauth_count; i++) {
		struct config_oauth *p = &c->oauth[i];

		if (p->client_secret != NULL)
			secure_zero(p->client_secret, strlen(p->client_secret));
		free(p->name);
		for (int k = 0; k < OK_COUNT; k++) {
			if (okeys[k].offset != (size_t)-1)
				free(*(char **)((char *)p + okeys[k].offset));
		}
		memset(p, 0, sizeof(*p));
	}
	c->oauth_count = 0;
}
