/* imap-utf7 — modified UTF-7 mailbox names; see imap-utf7.h. */
#include "imap-utf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "utf8.h"
#include "xmalloc.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/*
 * Decodes one shifted run src[start..end) (between '&' and '-') as
 * modified base64 of UTF-16BE, appending UTF-8.
 */
static int
decode_shift(const char *src, size_t start, size_t end, struct strbuf *dest,
    const char **error_r)
{
	uint32_t bits = 0;
	unsigned int nbits = 0;
	uint32_t high = 0;	/* pending high surrogate */

	for (size_t i = start; i < end; i++) {
		int v = b64_value((unsigned char)src[i]);
		if (v < 0) {
			*error_r = "Invalid modified UTF-7: bad base64 character";
			return -1;
		}
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (u < 0xdc00 || u > 0xdfff) {
				*error_r = "Invalid modified UTF-7: unpaired surrogate";
				return -1;
			}
			utf8_put(dest, 0x10000 + ((high - 0xd800) << 10) +
			    (u - 0xdc00));
			high = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			high = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			*error_r = "Invalid modified UTF-7: unpaired surrogate";
			return -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			*error_r = "Invalid modified UTF-7: encoded printable ASCII";
			return -1;
		} else if (u == 0) {
			*error_r = "Invalid modified UTF-7: encoded NUL";
			return -1;
		} else {
			utf8_put(dest, u);
		}
	}
	if (high != 0) {
		*error_r = "Invalid modified UTF-7: unpaired surrogate";
		return -1;
	}
	/* Leftover: fewer than 6 bits of padding, all zero. */
	if (nbits >= 6 || bits != 0) {
		*error_r = "Invalid modified UTF-7: bad base64 padding";
		return -1;
	}
	return 0;
}

int
imap_utf7_to_utf8(const char *src, size_t len, struct strbuf *dest,
    const char **error_r)
{
	size_t i = 0;
	bool prev_shift = false;

	while (i < len) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c > 0x7e) {
			*error_r = "Invalid modified UTF-7: 8-bit or control byte";
			return -1;
		}
		if (c != '&') {
			strbuf_appendc(dest, (char)c);
			prev_shift = false;
			i++;
			continue;
		}
		size_t start = ++i;
		while (i < len && src[i] != '-')
			i++;
		if (i == len) {
			*error_r = "Invalid modified UTF-7: unterminated &...-";
			return -1;
		}
		if (i == start) {
			strbuf_appendc(dest, '&');
			prev_shift = false;
		} else {
			if (prev_shift) {
				*error_r = "Invalid modified UTF-7: "
				    "non-minimal (two adjacent shifts)";
				return -1;
			}
			if (decode_shift(src, start, i, dest, error_r) < 0)
				return -1;
			prev_shift = true;
		}
		i++;	/* the '-' */
	}
	return 0;
}

/* Next code point of strict UTF-8 at s[*pos]; -1 if invalid. */
static int
utf8_next(const unsigned char *s, size_t len, size_t *pos, uint32_t *cp_r)
{
	size_t n = utf8_decode(s + *pos, len - *pos, cp_r);

	if (n == 0)
		return -1;
	*pos += n;
	return 0;
}

bool
imap_utf8_is_valid(const char *src, size_t len)
{
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		if (utf8_next((const unsigned char *)src, len, &i, &cp) < 0 ||
		    cp == 0)
			return false;
	}
	return true;
}

static void
flush_bits(struct strbuf *dest, uint32_t *bits, unsigned int *nbits)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		strbuf_appendc(dest, b64chars[(*bits >> *nbits) & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
}

/* Ends a shifted run: pads and writes the bits left over, then '-'. */
static void
end_shift(struct strbuf *dest, uint32_t *bits, unsigned int *nbits)
{
	if (*nbits > 0) {
		*bits <<= 6 - *nbits;
		*nbits = 6;
		flush_bits(dest, bits, nbits);
	}
	strbuf_appendc(dest, '-');
	*bits = 0;
	*nbits = 0;
}

int
imap_utf8_to_utf7(const char *src, size_t len, struct strbuf *dest,
    const char **error_r)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0;
	bool shifted = false;
	uint32_t bits = 0;
	unsigned int nbits = 0;

	while (i < len) {
		uint32_t cp;
		if (utf8_next(s, len, &i, &cp) < 0 || cp == 0) {
			*error_r = "Invalid UTF-8 in mailbox name";
			return -1;
		}
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				end_shift(dest, &bits, &nbits);
				shifted = false;
			}
			if (cp == '&')
				strbuf_appends(dest, "&-");
			else
				strbuf_appendc(dest, (char)cp);
			continue;
		}
		if (!shifted) {
			strbuf_appendc(dest, '&');
			shifted = true;
		}
		uint32_t units[2];
		size_t nu = 1;
		if (cp >= 0x10000) {
			units[0] = 0xd800 + ((cp - 0x10000) >> 10);
			units[1] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
			nu = 2;
		} else {
			units[0] = cp;
		}
		for (size_t k = 0; k < nu; k++) {
			bits = (bits << 16) | units[k];
			nbits += 16;
			flush_bits(dest, &bits, &nbits);
		}
	}
	if (shifted)
		end_shift(dest, &bits, &nbits);
	return 0;
}

bool
imap_utf7_is_valid(const char *src, size_t len)
{
	struct strbuf tmp = STRBUF_INIT;
	const char *error;
	bool ok = imap_utf7_to_utf8(src, len, &tmp, &error) == 0;

	strbuf_free(&tmp);
	return ok;
}

bool
imap_mailbox_is_inbox(const char *name, size_t len)
{
	return len == 5 && strncasecmp(name, "INBOX", 5) == 0;
}

int
imap_mailbox_name_validate(const char *name, size_t len, const char **error_r)
{
	size_t comp_start = 0;
	unsigned int depth = 1;

	if (len == 0) {
		*error_r = "Empty mailbox name";
		return -1;
	}
	if (len > IMAP_MAILBOX_NAME_MAX) {
		*error_r = "Mailbox name too long";
		return -1;
	}
	if (!imap_utf8_is_valid(name, len)) {
		*error_r = "Mailbox name is not valid UTF-8";
		return -1;
	}
	if (name[0] == '~') {
		*error_r = "Mailbox name may not start with ~";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '/';
		if (c < 0x20 || c == 0x7f) {
			*error_r = "Mailbox name contains a control character";
			return -1;
		}
		if (c == '*' || c == '%') {
			*error_r = "Mailbox name contains a wildcard";
			return -1;
		}
		if (c != IMAP_MAILBOX_DELIM)
			continue;
		size_t clen = i - comp_start;
		if (clen == 0) {
			*error_r = "Mailbox name has an empty component";
			return -1;
		}
		if ((clen == 1 && name[comp_start] == '.') ||
		    (clen == 2 && name[comp_start] == '.' &&
		    name[comp_start + 1] == '.')) {
			*error_r = "Mailbox name has a . or .. component";
			return -1;
		}
		if (i < len && ++depth > IMAP_MAILBOX_DEPTH_MAX) {
			*error_r = "Mailbox name too deep";
			return -1;
		}
		comp_start = i + 1;
	}
	return 0;
}

static int name_finish(struct strbuf *dest, size_t start,
    const char **error_r);

int
imap_mailbox_name_from_utf8(const char *src, size_t len, struct strbuf *dest,
    const char **error_r)
{
	size_t start = dest->len;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = (unsigned char)src[i] < 0x80 ? 1 :
		    utf8_decode((const unsigned char *)src + i, len - i, &cp);

		if (n == 0) {
			*error_r = "Invalid UTF-8 in mailbox name";
			return -1;
		}
		i += n;
	}
	strbuf_append(dest, src, len);
	return name_finish(dest, start, error_r);
}

int
imap_mailbox_name_from_wire(const char *src, size_t len, struct strbuf *dest,
    const char **error_r)
{
	size_t start = dest->len;

	if (imap_utf7_to_utf8(src, len, dest, error_r) < 0) {
		strbuf_truncate(dest, start);
		return -1;
	}
	return name_finish(dest, start, error_r);
}

/* The rules every store name follows, and INBOX in any case. */
static int
name_finish(struct strbuf *dest, size_t start, const char **error_r)
{
	size_t nlen = dest->len - start;
	if (nlen == 0) {
		*error_r = "Empty mailbox name";
		goto fail;
	}
	char *name = dest->data + start;
	if (imap_mailbox_name_validate(name, nlen, error_r) < 0)
		goto fail;
	if (nlen >= 5 && strncasecmp(name, "INBOX", 5) == 0 &&
	    (nlen == 5 || name[5] == IMAP_MAILBOX_DELIM))
		memcpy(name, "INBOX", 5);
	return 0;
fail:
	strbuf_truncate(dest, start);
	return -1;
}

/* ---- LIST patterns: sets of name positions as bit sets ---- */

#define NO_BIT SIZE_MAX

/* Highest set bit of b within [lo, hi], or NO_BIT. */
static size_t
bits_highest(const uint64_t *b, size_t lo, size_t hi)
{
	for (size_t w = hi / 64 + 1; w-- > lo / 64;) {
		uint64_t v = b[w];

		if (w == hi / 64 && hi % 64 != 63)
			v &= ((uint64_t)1 << (hi % 64 + 1)) - 1;
		if (w == lo / 64)
			v &= ~(((uint64_t)1 << (lo % 64)) - 1);
		if (v != 0)
			return w * 64 + 63 - (size_t)__builtin_clzll(v);
	}
	return NO_BIT;
}

/* Sets bits lo..hi (inclusive) of b. */
static void
bits_set_range(uint64_t *b, size_t lo, size_t hi)
{
	for (size_t w = lo / 64; w <= hi / 64; w++) {
		uint64_t v = ~(uint64_t)0;

		if (w == lo / 64)
			v &= ~(((uint64_t)1 << (lo % 64)) - 1);
		if (w == hi / 64 && hi % 64 != 63)
			v &= ((uint64_t)1 << (hi % 64 + 1)) - 1;
		b[w] |= v;
	}
}

/*
 * The dynamic programme over name positions, one pattern byte at a time
 * from the end, with each row a bit set: row bit j says pat[i..m) matches
 * name[j..n). A fixed byte is a shift and a mask, '*' a prefix fill, '%' a
 * prefix fill per delimiter-free segment: O(pattern x (name/64 + depth))
 * instead of O(pattern x name), so a LIST over thousands of mailboxes with
 * a crafted pattern stays cheap.
 */
bool
imap_mailbox_pattern_match(const char *pattern, size_t plen, const char *name,
    size_t nlen)
{
	const unsigned char *un = (const unsigned char *)name;
	size_t m = 0, fixed = 0, words = nlen / 64 + 1, ndelim = 0, nmasks = 0;
	unsigned char *pat;
	uint64_t *row, *next, *masks;
	size_t *delims;
	uint16_t mask_of[256];
	bool result;

	/* Collapse wildcard runs: "**", "*%", "%*" are "*"; "%%" is "%". */
	pat = xmalloc(plen + 1);
	for (size_t i = 0; i < plen; i++) {
		unsigned char c = (unsigned char)pattern[i];
		if ((c == '*' || c == '%') && m > 0 &&
		    (pat[m - 1] == '*' || pat[m - 1] == '%')) {
			if (c == '*')
				pat[m - 1] = '*';
			continue;
		}
		if (c != '*' && c != '%')
			fixed++;
		pat[m++] = c;
	}
	/* Every non-wildcard byte consumes one name byte. */
	if (fixed > nlen) {
		free(pat);
		return false;
	}

	/* One mask per distinct fixed byte of the pattern: bit j set where
	   name[j] is that byte. */
	memset(mask_of, 0xff, sizeof(mask_of));
	for (size_t i = 0; i < m; i++) {
		if (pat[i] != '*' && pat[i] != '%' && mask_of[pat[i]] == 0xffff)
			mask_of[pat[i]] = (uint16_t)nmasks++;
	}
	masks = xcalloc(nmasks * words + 1, sizeof(*masks));
	delims = xcalloc(nlen + 1, sizeof(*delims));
	for (size_t j = 0; j < nlen; j++) {
		if (mask_of[un[j]] != 0xffff)
			masks[mask_of[un[j]] * words + j / 64] |=
			    (uint64_t)1 << (j % 64);
		if (un[j] == IMAP_MAILBOX_DELIM)
			delims[ndelim++] = j;
	}
	delims[ndelim++] = nlen;	/* the last segment ends the name */

	row = xcalloc(words, sizeof(*row));
	next = xcalloc(words, sizeof(*next));
	row[nlen / 64] = (uint64_t)1 << (nlen % 64);
	for (size_t ii = m; ii-- > 0;) {
		unsigned char c = pat[ii];

		memset(next, 0, words * sizeof(*next));
		if (c == '*') {
			/* next[j]: some k >= j has row[k]. */
			size_t h = bits_highest(row, 0, nlen);
			if (h != NO_BIT)
				bits_set_range(next, 0, h);
		} else if (c == '%') {
			/* The same within each segment [s, d]: name[j..k)
			   may not hold a delimiter, so k <= d. */
			size_t s = 0;
			for (size_t k = 0; k < ndelim; k++) {
				size_t h = bits_highest(row, s, delims[k]);
				if (h != NO_BIT)
					bits_set_range(next, s, h);
				s = delims[k] + 1;
			}
		} else {
			/* next[j]: name[j] == c and row[j + 1]. */
			const uint64_t *eq = &masks[mask_of[c] * words];
			for (size_t w = 0; w < words; w++) {
				uint64_t v = row[w] >> 1;
				if (w + 1 < words)
					v |= row[w + 1] << 63;
				next[w] = v & eq[w];
			}
		}
		uint64_t *t = row;
		row = next;
		next = t;
	}
	result = (row[0] & 1) != 0;
	free(row);
	free(next);
	free(masks);
	free(delims);
	free(pat);
	return result;
}
