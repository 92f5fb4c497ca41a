#include "mail-decode.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "mail-swar.h"
#include "strbuf.h"

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static const int8_t b64val[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26,
	['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
	['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46,
	['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51,
	['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['+'] = 63, ['/'] = 64,
};

void
mail_decode_base64(const char *in, size_t len, struct strbuf *out)
{
	uint32_t acc = 0;
	int n = 0;

	strbuf_reserve(out, len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = b64val[(unsigned char)in[i]];

		if (in[i] == '=')
			break;
		if (v == 0)
			continue;
		acc = (acc << 6) | (uint32_t)(v - 1);
		if (++n == 4) {
			out->data[out->len++] = (char)(acc >> 16);
			out->data[out->len++] = (char)(acc >> 8);
			out->data[out->len++] = (char)acc;
			acc = 0;
			n = 0;
		}
	}
	if (n == 2) {
		out->data[out->len++] = (char)(acc >> 4);
	} else if (n == 3) {
		out->data[out->len++] = (char)(acc >> 10);
		out->data[out->len++] = (char)(acc >> 2);
	}
	out->data[out->len] = '\0';
}

static void
decode_qp_common(const char *in, size_t len, struct strbuf *out, bool q)
{
	size_t i = 0;

	strbuf_reserve(out, len);
	while (i < len) {
		unsigned char c;

		/* plain text, eight bytes at a time: no '=', no '_' (Q); for
		   QP no tab or line end and no space last, so a space in
		   the word is followed by text: not trailing */
		for (; i + 8 <= len; i += 8) {
			uint64_t w = mail_swar_load(in + i);

			if (mail_swar_has_byte(w, '=') || (q ?
			    mail_swar_has_byte(w, '_') != 0 :
			    (mail_swar_has_byte(w, '\t') |
			    mail_swar_has_byte(w, '\r') |
			    mail_swar_has_byte(w, '\n')) != 0 ||
			    in[i + 7] == ' '))
				break;
			memcpy(out->data + out->len, &w, sizeof(w));
			out->len += 8;
		}
		if (i >= len)
			break;
		c = (unsigned char)in[i];
		if (c == '=') {
			int h1 = i + 1 < len ? hexval((unsigned char)in[i + 1]) : -1;
			int h2 = i + 2 < len ? hexval((unsigned char)in[i + 2]) : -1;

			if (h1 >= 0 && h2 >= 0) {
				out->data[out->len++] = (char)(h1 * 16 + h2);
				i += 3;
				continue;
			}
			if (!q) {
				/* Soft line break: '=' then optional
				 * whitespace then a line end. */
				size_t j = i + 1;

				while (j < len && (in[j] == ' ' || in[j] == '\t'))
					j++;
				if (j < len && in[j] == '\r')
					j++;
				if (j < len && in[j] == '\n') {
					i = j + 1;
					continue;
				}
				if (j == len) {
					i = j;
					continue;
				}
			}
			out->data[out->len++] = '=';
			i++;
			continue;
		}
		if (q && c == '_') {
			out->data[out->len++] = ' ';
			i++;
			continue;
		}
		if (!q && (c == ' ' || c == '\t')) {
			/* Trailing whitespace before a line end is padding. */
			size_t j = i;

			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j == len || in[j] == '\n' ||
			    (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')) {
				i = j;
				continue;
			}
			/* Not trailing: the whole run is text. Copying it
			 * at once keeps a long run linear, not quadratic. */
			memcpy(out->data + out->len, in + i, j - i);
			out->len += j - i;
			i = j;
			continue;
		}
		out->data[out->len++] = (char)c;
		i++;
	}
	out->data[out->len] = '\0';
}

void
mail_decode_qp(const char *in, size_t len, struct strbuf *out)
{
	decode_qp_common(in, len, out, false);
}

void
mail_decode_q(const char *in, size_t len, struct strbuf *out)
{
	decode_qp_common(in, len, out, true);
}

void
mail_decode_percent(const char *in, size_t len, struct strbuf *out)
{
	strbuf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		int h1, h2;

		if (in[i] == '%' && i + 2 < len &&
		    (h1 = hexval((unsigned char)in[i + 1])) >= 0 &&
		    (h2 = hexval((unsigned char)in[i + 2])) >= 0) {
			out->data[out->len++] = (char)(h1 * 16 + h2);
			i += 2;
		} else {
			out->data[out->len++] = in[i];
		}
	}
	out->data[out->len] = '\0';
}

/* ---- piecewise decoding (BINARY) ---- */

enum mail_cte
mail_cte_parse(const char *encoding)
{
	if (encoding == NULL || *encoding == '\0' ||
	    strcasecmp(encoding, "7bit") == 0 ||
	    strcasecmp(encoding, "8bit") == 0 ||
	    strcasecmp(encoding, "binary") == 0)
		return MAIL_CTE_IDENTITY;
	if (strcasecmp(encoding, "base64") == 0)
		return MAIL_CTE_BASE64;
	if (strcasecmp(encoding, "quoted-printable") == 0)
		return MAIL_CTE_QP;
	return MAIL_CTE_UNKNOWN;
}

void
mail_decoder_init(struct mail_decoder *d, enum mail_cte cte)
{
	memset(d, 0, sizeof(*d));
	d->cte = cte;
}

/* As mail_decode_base64(), resumable: stops once max_out bytes were
 * made (at a quantum's end) and flushes a partial quantum at the end. */
static size_t
b64_step(struct mail_decoder *d, const char *in, size_t len, size_t max_out,
    struct strbuf *out)
{
	size_t i = 0, made = 0;

	strbuf_reserve(out, max_out + 3);
	if (d->ended)
		return len;
	for (; i < len && made < max_out; i++) {
		int v = b64val[(unsigned char)in[i]];

		if (in[i] == '=') {
			d->ended = true;
			break;
		}
		if (v == 0)
			continue;
		d->acc = (d->acc << 6) | (uint32_t)(v - 1);
		if (++d->n == 4) {
			out->data[out->len++] = (char)(d->acc >> 16);
			out->data[out->len++] = (char)(d->acc >> 8);
			out->data[out->len++] = (char)d->acc;
			made += 3;
			d->acc = 0;
			d->n = 0;
		}
	}
	if (i < len && !d->ended)
		return i;	/* max_out reached: more later */
	if (d->n == 2) {
		out->data[out->len++] = (char)(d->acc >> 4);
	} else if (d->n == 3) {
		out->data[out->len++] = (char)(d->acc >> 10);
		out->data[out->len++] = (char)(d->acc >> 2);
	}
	d->n = 0;
	d->ended = true;
	out->data[out->len] = '\0';
	return len;
}

/* Quoted-printable decodes line by line: a piece ends after a line end
 * (or, on a line over MAIL_DECODE_QP_LINE_MAX, before its trailing
 * blanks and any "=" or "=X" that may start an escape). */
static size_t
qp_step(const char *in, size_t len, size_t max_out, struct strbuf *out)
{
	size_t take = len, lim = max_out < MAIL_DECODE_QP_LINE_MAX ?
	    MAIL_DECODE_QP_LINE_MAX : max_out;

	if (len > lim) {
		const char *nl = memrchr(in, '\n', lim);

		if (nl != NULL) {
			take = (size_t)(nl - in) + 1;
		} else {
			take = lim;
			while (take > 1 && (in[take - 1] == ' ' ||
			    in[take - 1] == '\t' || in[take - 1] == '\r'))
				take--;
			if (take > 2 && in[take - 2] == '=')
				take -= 2;
			else if (take > 1 && in[take - 1] == '=')
				take -= 1;
		}
	}
	mail_decode_qp(in, take, out);
	return take;
}

size_t
mail_decoder_step(struct mail_decoder *d, const char *in, size_t len,
    size_t max_out, struct strbuf *out)
{
	size_t n;

	if (max_out == 0)
		max_out = 1;
	switch (d->cte) {
	case MAIL_CTE_BASE64:
		return b64_step(d, in, len, max_out, out);
	case MAIL_CTE_QP:
		return qp_step(in, len, max_out, out);
	default:
		n = len < max_out ? len : max_out;
		strbuf_append(out, in, n);
		return n;
	}
}

uint64_t
mail_decoded_size(enum mail_cte cte, const char *in, size_t len,
    uint64_t nul_from, uint64_t nul_to, bool *has_nul_r,
    struct strbuf *scratch)
{
	struct mail_decoder d;
	uint64_t total = 0;
	size_t pos = 0;
	bool nul = false;

	mail_decoder_init(&d, cte);
	if (cte == MAIL_CTE_IDENTITY) {
		if (nul_to > len)
			nul_to = len;
		nul = nul_from < nul_to &&
		    memchr(in + nul_from, '\0', nul_to - nul_from) != NULL;
		if (has_nul_r != NULL)
			*has_nul_r = nul;
		return len;
	}
	while (pos < len) {
		strbuf_reset(scratch);
		pos += mail_decoder_step(&d, in + pos, len - pos, 64 * 1024,
		    scratch);
		if (!nul && total + scratch->len > nul_from && total < nul_to) {
			uint64_t a = nul_from > total ? nul_from - total : 0;
			uint64_t b = nul_to - total < scratch->len ?
			    nul_to - total : scratch->len;

			nul = a < b && memchr(scratch->data + a, '\0',
			    (size_t)(b - a)) != NULL;
		}
		total += scratch->len;
	}
	if (has_nul_r != NULL)
		*has_nul_r = nul;
	return total;
}
