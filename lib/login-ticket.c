/* login-ticket — single-use login tickets (see login-ticket.h). */
#include "login-ticket.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "strbuf.h"
#include "xmalloc.h"

#define PREFIX "pgt1."
#define NONCE_LEN 12
#define MAC_LEN 16
/* Digits of an expiry, at most (Unix seconds). */
#define EXPIRY_DIGITS_MAX 12

struct outstanding {
	unsigned char nonce[NONCE_LEN];
	time_t expires;
};

struct login_tickets {
	unsigned char key[LOGIN_TICKET_KEY_LEN];
	char *node;
	unsigned lifetime;
	struct outstanding *out;	/* LOGIN_TICKETS_MAX slots */
	size_t count;
};

struct login_tickets *
login_tickets_new(const char *node, const unsigned char *key,
    unsigned lifetime_secs)
{
	struct login_tickets *t = xcalloc(1, sizeof(*t));

	if (key != NULL) {
		memcpy(t->key, key, sizeof(t->key));
	} else if (RAND_bytes(t->key, sizeof(t->key)) != 1) {
		free(t);
		return NULL;
	}
	t->node = xstrdup(node);
	if (lifetime_secs < LOGIN_TICKET_SECS_MIN)
		lifetime_secs = LOGIN_TICKET_SECS_MIN;
	if (lifetime_secs > LOGIN_TICKET_SECS_MAX)
		lifetime_secs = LOGIN_TICKET_SECS_MAX;
	t->lifetime = lifetime_secs;
	t->out = xcalloc(LOGIN_TICKETS_MAX, sizeof(*t->out));
	return t;
}

void
login_tickets_free(struct login_tickets **tp)
{
	struct login_tickets *t = *tp;

	if (t == NULL)
		return;
	secure_zero(t->key, sizeof(t->key));
	secure_zero(t->out, LOGIN_TICKETS_MAX * sizeof(*t->out));
	free(t->out);
	free(t->node);
	free(t);
	*tp = NULL;
}

size_t
login_tickets_outstanding(const struct login_tickets *t)
{
	return t->count;
}

/* Each field with its length first: no two tuples give one message. */
static void
mac_field(struct strbuf *sb, const char *s, size_t len)
{
	strbuf_appendf(sb, "%zu:", len);
	strbuf_append(sb, s, len);
}

static int
mac_of(const struct login_tickets *t, const char *user, const char *ip,
    const char *expiry, size_t expiry_len, const unsigned char *nonce,
    unsigned char *mac)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	bool ok;

	strbuf_appends(&sb, "popgate login ticket 1\n");
	mac_field(&sb, user, strlen(user));
	mac_field(&sb, t->node, strlen(t->node));
	mac_field(&sb, ip, strlen(ip));
	mac_field(&sb, expiry, expiry_len);
	mac_field(&sb, (const char *)nonce, NONCE_LEN);
	ok = HMAC(EVP_sha256(), t->key, (int)sizeof(t->key),
	    (const unsigned char *)sb.data, sb.len, full, &n) != NULL &&
	    n >= MAC_LEN;
	strbuf_free(&sb);
	if (ok)
		memcpy(mac, full, MAC_LEN);
	secure_zero(full, sizeof(full));
	return ok ? 0 : -1;
}

static void
hex(char *out, const unsigned char *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly 2n lower-case hex digits into n bytes: 0, or -1. */
static int
unhex(const char *s, unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = unhex_digit(s[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = unhex_digit(s[2 * i + 1]);
		if (lo < 0)
			return -1;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Forgets expired tickets (and compacts the book). */
static void
purge(struct login_tickets *t, time_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < t->count; i++)
		if (t->out[i].expires >= now)
			t->out[k++] = t->out[i];
	t->count = k;
}

int
login_ticket_issue(struct login_tickets *t, const char *user,
    const char *client_ip, time_t now, char *out)
{
	unsigned char nonce[NONCE_LEN], mac[MAC_LEN];
	char expiry[EXPIRY_DIGITS_MAX + 1];
	char nonce_hex[2 * NONCE_LEN + 1], mac_hex[2 * MAC_LEN + 1];
	time_t expires = now + (time_t)t->lifetime;
	int n;

	if (t->count >= LOGIN_TICKETS_MAX)
		purge(t, now);
	if (t->count >= LOGIN_TICKETS_MAX)
		return -1;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return -1;
	n = snprintf(expiry, sizeof(expiry), "%" PRIdMAX, (intmax_t)expires);
	if (n <= 0 || (size_t)n >= sizeof(expiry) ||
	    mac_of(t, user, client_ip, expiry, (size_t)n, nonce, mac) != 0)
		return -1;
	hex(nonce_hex, nonce, NONCE_LEN);
	hex(mac_hex, mac, MAC_LEN);
	snprintf(out, LOGIN_TICKET_LEN_MAX, PREFIX "%s.%s.%s", expiry,
	    nonce_hex, mac_hex);
	memcpy(t->out[t->count].nonce, nonce, NONCE_LEN);
	t->out[t->count].expires = expires;
	t->count++;
	secure_zero(mac, sizeof(mac));
	secure_zero(mac_hex, sizeof(mac_hex));
	return 0;
}

/* Forgets the ticket with this nonce: true if it was there. */
static bool
take(struct login_tickets *t, const unsigned char *nonce)
{
	for (size_t i = 0; i < t->count; i++) {
		if (memcmp(t->out[i].nonce, nonce, NONCE_LEN) == 0) {
			t->out[i] = t->out[--t->count];
			return true;
		}
	}
	return false;
}

enum login_ticket_result
login_ticket_redeem(struct login_tickets *t, const char *user,
    const char *client_ip, const char *ticket, time_t now)
{
	const char *expiry = ticket + strlen(PREFIX), *dot;
	unsigned char nonce[NONCE_LEN], mac[MAC_LEN], want[MAC_LEN];
	size_t elen;
	intmax_t expires = 0;
	bool same;

	/* the shape: "pgt1." digits "." 24 hex "." 32 hex, nothing more */
	if (strncmp(ticket, PREFIX, strlen(PREFIX)) != 0)
		return LOGIN_TICKET_NOT_ONE;
	dot = strchr(expiry, '.');
	elen = dot != NULL ? (size_t)(dot - expiry) : 0;
	if (elen == 0 || elen > EXPIRY_DIGITS_MAX)
		return LOGIN_TICKET_NOT_ONE;
	for (size_t i = 0; i < elen; i++) {
		if (expiry[i] < '0' || expiry[i] > '9')
			return LOGIN_TICKET_NOT_ONE;
		expires = expires * 10 + (expiry[i] - '0');
	}
	if (strlen(dot + 1) != 2 * NONCE_LEN + 1 + 2 * MAC_LEN ||
	    dot[1 + 2 * NONCE_LEN] != '.' ||
	    unhex(dot + 1, nonce, NONCE_LEN) != 0 ||
	    unhex(dot + 2 + 2 * NONCE_LEN, mac, MAC_LEN) != 0)
		return LOGIN_TICKET_NOT_ONE;
	if (mac_of(t, user, client_ip, expiry, elen, nonce, want) != 0)
		return LOGIN_TICKET_BAD;
	same = CRYPTO_memcmp(mac, want, MAC_LEN) == 0;
	secure_zero(want, sizeof(want));
	if (!same)
		return LOGIN_TICKET_BAD;
	if ((intmax_t)now > expires) {
		(void)take(t, nonce);
		return LOGIN_TICKET_EXPIRED;
	}
	return take(t, nonce) ? LOGIN_TICKET_OK : LOGIN_TICKET_USED;
}

const char *
login_ticket_result_name(enum login_ticket_result r)
{
	switch (r) {
	case LOGIN_TICKET_OK:
		return "ok";
	case LOGIN_TICKET_NOT_ONE:
		return "not_a_ticket";
	case LOGIN_TICKET_BAD:
		return "bad";
	case LOGIN_TICKET_EXPIRED:
		return "expired";
	case LOGIN_TICKET_USED:
		return "used";
	}
	return "?";
}
