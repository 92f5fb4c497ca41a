/*
 * config-value — the parsers of single configuration values (yes/no,
 * durations, sizes, TLS and upstream modes, ports, listen addresses) and
 * their names for display; see config.h. The key table that uses them is
 * in config.c.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strnum.h"
#include "xmalloc.h"

int
config_parse_bool(const char *s, bool *b_r, const char **error_r)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < N_ELEMENTS(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b_r = false;
			return 0;
		}
	}
	*error_r = "expected yes or no";
	return -1;
}

/* Digits followed by an optional one-letter unit from units/mults. */
static int
parse_scaled(const char *s, const char *units, const uint64_t *mults,
    uint64_t *n_r)
{
	size_t len = strlen(s), digits = 0;
	uint64_t n, mult = 1;

	while (digits < len && s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0)
		return -1;
	if (digits < len) {
		const char *u;

		if (digits + 1 != len)
			return -1;
		u = strchr(units, tolower((unsigned char)s[digits]));
		if (u == NULL || *u == '\0')
			return -1;
		mult = mults[u - units];
	}
	if (str_to_u64(s, digits, &n) < 0)
		return -1;
	if (n != 0 && mult > UINT64_MAX / n)
		return -1;
	*n_r = n * mult;
	return 0;
}

int
config_parse_duration(const char *s, uint32_t *secs_r, const char **error_r)
{
	static const uint64_t mults[] = { 1, 60, 3600, 86400 };
	uint64_t n;

	if (parse_scaled(s, "smhd", mults, &n) < 0 || n > UINT32_MAX) {
		*error_r = "expected a duration such as 300, 90s, 5m, 2h or 1d";
		return -1;
	}
	*secs_r = (uint32_t)n;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *bytes_r, const char **error_r)
{
	static const uint64_t mults[] = { 1, 1ull << 10, 1ull << 20,
	    1ull << 30, 1ull << 40 };

	if (parse_scaled(s, "bkmgt", mults, bytes_r) < 0) {
		*error_r = "expected a size such as 65536, 512K, 64M or 1G";
		return -1;
	}
	return 0;
}

static const char *const tls_names[] = {
	[CONFIG_TLS_POP3S] = "pop3s",
	[CONFIG_TLS_STLS] = "stls",
	[CONFIG_TLS_NONE] = "none",
};

int
config_parse_tls(const char *s, enum config_upstream_tls *tls_r,
    const char **error_r)
{
	for (size_t i = 0; i < N_ELEMENTS(tls_names); i++) {
		if (strcmp(s, tls_names[i]) == 0) {
			*tls_r = (enum config_upstream_tls)i;
			return 0;
		}
	}
	*error_r = "expected pop3s, stls or none";
	return -1;
}

const char *
config_tls_name(enum config_upstream_tls tls)
{
	if ((size_t)tls >= N_ELEMENTS(tls_names))
		return "?";
	return tls_names[tls];
}

int
config_parse_mode(const char *s, enum config_upstream_mode *mode_r,
    uint32_t *days_r, const char **error_r)
{
	static const char prefix[] = "delete-after:";
	uint32_t days;

	*days_r = 0;
	if (strcmp(s, "keep") == 0) {
		*mode_r = CONFIG_MODE_KEEP;
		return 0;
	}
	if (strcmp(s, "delete") == 0) {
		*mode_r = CONFIG_MODE_DELETE;
		return 0;
	}
	if (strcmp(s, "mirror") == 0) {
		*mode_r = CONFIG_MODE_MIRROR;
		return 0;
	}
	if (strncmp(s, prefix, sizeof(prefix) - 1) == 0) {
		if (str_to_u32z(s + sizeof(prefix) - 1, &days) < 0 ||
		    days == 0 || days > 36500) {
			*error_r = "delete-after needs a number of days "
			    "from 1 to 36500";
			return -1;
		}
		*mode_r = CONFIG_MODE_DELETE_AFTER;
		*days_r = days;
		return 0;
	}
	*error_r = "expected keep, delete, delete-after:DAYS or mirror";
	return -1;
}

const char *
config_mode_name(enum config_upstream_mode mode, uint32_t days, char *buf,
    size_t bufsize)
{
	switch (mode) {
	case CONFIG_MODE_KEEP:
		snprintf(buf, bufsize, "keep");
		break;
	case CONFIG_MODE_DELETE:
		snprintf(buf, bufsize, "delete");
		break;
	case CONFIG_MODE_DELETE_AFTER:
		snprintf(buf, bufsize, "delete-after:%u", days);
		break;
	case CONFIG_MODE_MIRROR:
		snprintf(buf, bufsize, "mirror");
		break;
	default:
		snprintf(buf, bufsize, "?");
		break;
	}
	return buf;
}

int
config_parse_port(const char *s, const char **error_r)
{
	uint32_t port;

	if (str_to_u32z(s, &port) < 0 || port == 0 || port > 65535 ||
	    s[0] == '0') {
		*error_r = "expected a port number from 1 to 65535";
		return -1;
	}
	return 0;
}

int
config_parse_listen(const char *s, struct config_listen *l_r,
    const char **error_r)
{
	const char *colon, *host;
	size_t host_len;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':' || end == s + 1) {
			*error_r = "expected [ADDRESS]:PORT";
			return -1;
		}
		host = s + 1;
		host_len = (size_t)(end - host);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s) {
			*error_r = "expected ADDRESS:PORT (or *:PORT)";
			return -1;
		}
		host = s;
		host_len = (size_t)(colon - s);
		if (memchr(host, ':', host_len) != NULL) {
			*error_r = "IPv6 addresses go in brackets: [::1]:PORT";
			return -1;
		}
	}
	if (config_parse_port(colon + 1, error_r) < 0)
		return -1;
	l_r->host = xstrndup(host, host_len);
	l_r->port = xstrdup(colon + 1);
	return 0;
}
