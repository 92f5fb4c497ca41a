/* pop3-parse-sasl — see pop3-parse-sasl.h. */
#include "pop3-upstream/pop3-parse-sasl.h"

#include <stdio.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
pop3_b64_encode(const void *in, size_t len, char *out, size_t outsize)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (outsize < POP3_B64_LEN(len) + 1)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t n = len - i;

		if (n > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = n > 1 ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = n > 2 ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

static int
b64_value(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64_alphabet, c);
	return p != NULL ? (int)(p - b64_alphabet) : -1;
}

int
pop3_b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize, size_t *len_r)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t pad = 0;
		uint32_t w;

		for (int k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;	/* data after '=' */
			v[k] = b64_value(in[i + k]);
			if (v[k] < 0)
				return -1;
		}
		w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (o + 3 - pad > outsize)
			return -1;
		out[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)w;
	}
	*len_r = o;
	return 0;
}

/* Appends s with SCRAM's saslname escaping ('=' -> "=3D", ',' -> "=2C"). */
static int
put_saslname(char *out, size_t outsize, size_t *o, const char *s)
{
	for (; *s != '\0'; s++) {
		const char *rep = *s == '=' ? "=3D" : *s == ',' ? "=2C" : NULL;
		size_t n = rep != NULL ? 3 : 1;

		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return -1;
		if (*o + n >= outsize)
			return -1;
		if (rep != NULL)
			memcpy(out + *o, rep, 3);
		else
			out[*o] = *s;
		*o += n;
	}
	return 0;
}

static int
put(char *out, size_t outsize, size_t *o, const char *s, size_t n)
{
	if (*o + n >= outsize)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

int
pop3_scram_client_first(const char *login, const char *cnonce, char *out,
    size_t outsize, const char **error_r)
{
	size_t o = 0;

	if (put(out, outsize, &o, "n,,n=", 5) < 0 ||
	    put_saslname(out, outsize, &o, login) < 0 ||
	    put(out, outsize, &o, ",r=", 3) < 0 ||
	    put(out, outsize, &o, cnonce, strlen(cnonce)) < 0) {
		*error_r = "login unusable for SCRAM (control bytes or too "
		    "long)";
		return -1;
	}
	return 0;
}

/* The next "x=value" attribute of a message; false at the end. */
static bool
next_attr(const char *msg, size_t len, size_t *pos, char *name_r,
    const char **val_r, size_t *vlen_r)
{
	const char *comma;
	size_t p = *pos;

	if (p >= len)
		return false;
	comma = memchr(msg + p, ',', len - p);
	if (len - p < 2 || msg[p + 1] != '=') {
		*name_r = '\0';
		*val_r = msg + p;
		*vlen_r = 0;
		*pos = len;
		return true;
	}
	*name_r = msg[p];
	*val_r = msg + p + 2;
	*vlen_r = (comma != NULL ? (size_t)(comma - msg) : len) - p - 2;
	*pos = comma != NULL ? (size_t)(comma - msg) + 1 : len;
	return true;
}

int
pop3_scram_parse_server_first(const char *msg, size_t len,
    const char *cnonce, struct pop3_scram_server_first *r,
    const char **error_r)
{
	size_t pos = 0, vlen, cl = strlen(cnonce);
	const char *val;
	char name;
	uint64_t iter = 0;

	memset(r, 0, sizeof(*r));
	if (len > POP3_SCRAM_MSG_MAX || memchr(msg, '\0', len) != NULL) {
		*error_r = "SCRAM server-first message too long or has NUL";
		return -1;
	}
	/* r=nonce,s=salt,i=count[,ext...] in this order (RFC 5802 7) */
	if (!next_attr(msg, len, &pos, &name, &val, &vlen) || name != 'r') {
		*error_r = name == 'm' ? "SCRAM server demands an unknown "
		    "mandatory extension" : "SCRAM server-first message "
		    "does not start with r=";
		return -1;
	}
	if (vlen <= cl || memcmp(val, cnonce, cl) != 0) {
		*error_r = "SCRAM server nonce does not extend ours";
		return -1;
	}
	for (size_t i = 0; i < vlen; i++) {
		if ((unsigned char)val[i] < 0x21 ||
		    (unsigned char)val[i] > 0x7e) {
			*error_r = "SCRAM server nonce has bad bytes";
			return -1;
		}
	}
	r->nonce = val;
	r->nonce_len = vlen;
	if (!next_attr(msg, len, &pos, &name, &val, &vlen) || name != 's' ||
	    pop3_b64_decode(val, vlen, r->salt, sizeof(r->salt),
	    &r->salt_len) < 0 || r->salt_len == 0) {
		*error_r = "SCRAM server-first message has no valid salt";
		return -1;
	}
	if (!next_attr(msg, len, &pos, &name, &val, &vlen) || name != 'i' ||
	    vlen == 0 || vlen > 10) {
		*error_r = "SCRAM server-first message has no iteration count";
		return -1;
	}
	for (size_t i = 0; i < vlen; i++) {
		if (val[i] < '0' || val[i] > '9') {
			*error_r = "SCRAM iteration count is not a number";
			return -1;
		}
		iter = iter * 10 + (uint64_t)(val[i] - '0');
	}
	if (iter < POP3_SCRAM_ITER_MIN || iter > POP3_SCRAM_ITER_MAX) {
		*error_r = "SCRAM iteration count out of range (1024..100000)";
		return -1;
	}
	r->iterations = (uint32_t)iter;
	/* optional extensions after i= are ignored (RFC 5802 5.1) */
	return 0;
}

int
pop3_scram_client_final_bare(const struct pop3_scram_server_first *sf,
    char *out, size_t outsize, const char **error_r)
{
	size_t o = 0;

	if (put(out, outsize, &o, "c=biws,r=", 9) < 0 ||
	    put(out, outsize, &o, sf->nonce, sf->nonce_len) < 0) {
		*error_r = "SCRAM client-final message too long";
		return -1;
	}
	return 0;
}

int
pop3_scram_parse_server_final(const char *msg, size_t len,
    unsigned char *sig, size_t expected_len, char *err_text,
    size_t err_size, const char **error_r)
{
	size_t pos = 0, vlen, got = 0;
	const char *val;
	char name;

	if (err_size > 0)
		err_text[0] = '\0';
	if (len > POP3_SCRAM_MSG_MAX || memchr(msg, '\0', len) != NULL ||
	    !next_attr(msg, len, &pos, &name, &val, &vlen)) {
		*error_r = "SCRAM server-final message empty or too long";
		return -1;
	}
	if (name == 'e') {
		size_t n = 0;

		for (size_t i = 0; i < vlen && n + 1 < err_size; i++) {
			unsigned char c = (unsigned char)val[i];

			err_text[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		if (err_size > 0)
			err_text[n] = '\0';
		*error_r = "SCRAM server reports an error";
		return -1;
	}
	if (name != 'v') {
		*error_r = "SCRAM server-final message has no verifier";
		return -1;
	}
	{
		unsigned char buf[64];

		if (pop3_b64_decode(val, vlen, buf, sizeof(buf), &got) < 0 ||
		    got != expected_len) {
			*error_r = "SCRAM server signature malformed";
			return -1;
		}
		memcpy(sig, buf, got);
	}
	return 0;
}

static int
check_token(const char *login, const char *token, const char **error_r)
{
	for (const char *p = token; *p != '\0'; p++) {
		/* RFC 6750 b64token: printable ASCII without space */
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			*error_r = "access token has bytes a bearer token "
			    "cannot have";
			return -1;
		}
	}
	for (const char *p = login; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*error_r = "login has control bytes";
			return -1;
		}
	}
	if (*token == '\0') {
		*error_r = "no access token";
		return -1;
	}
	return 0;
}

int
pop3_xoauth2_response(const char *login, const char *token, char *out,
    size_t outsize, size_t *len_r, const char **error_r)
{
	int n;

	if (check_token(login, token, error_r) < 0)
		return -1;
	n = snprintf(out, outsize, "user=%s\001auth=Bearer %s\001\001", login,
	    token);
	if (n < 0 || (size_t)n >= outsize) {
		*error_r = "XOAUTH2 response too long";
		return -1;
	}
	*len_r = (size_t)n;
	return 0;
}

int
pop3_oauthbearer_response(const char *login, const char *host,
    uint16_t port, const char *token, char *out, size_t outsize,
    size_t *len_r, const char **error_r)
{
	size_t o = 0;
	char tail[32];
	int n;

	if (check_token(login, token, error_r) < 0)
		return -1;
	n = snprintf(tail, sizeof(tail), "\001port=%u\001", (unsigned)port);
	if (put(out, outsize, &o, "n,a=", 4) < 0 ||
	    put_saslname(out, outsize, &o, login) < 0 ||
	    put(out, outsize, &o, ",\001host=", 7) < 0 ||
	    put(out, outsize, &o, host, strlen(host)) < 0 ||
	    put(out, outsize, &o, tail, (size_t)n) < 0 ||
	    put(out, outsize, &o, "auth=Bearer ", 12) < 0 ||
	    put(out, outsize, &o, token, strlen(token)) < 0 ||
	    put(out, outsize, &o, "\001\001", 2) < 0) {
		*error_r = "OAUTHBEARER response too long";
		return -1;
	}
	*len_r = o;
	return 0;
}
