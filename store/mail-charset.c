#include "mail-charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail-swar.h"
#include "strbuf.h"
#include "utf8.h"

#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* The end of the ASCII run from i: the first byte >= 0x80, or len
 * (SEARCH reads every byte of a message through here: mostly ASCII). */
static size_t
ascii_run_end(const unsigned char *p, size_t i, size_t len)
{
	while (i + 8 <= len && (mail_swar_load(p + i) & MAIL_SWAR_HI) == 0)
		i += 8;
	while (i < len && p[i] < 0x80)
		i++;
	return i;
}


bool
mail_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n;

		if (p[i] < 0x80) {
			i = ascii_run_end(p, i, len);
			continue;
		}
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void
mail_utf8_sanitize(const char *s, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	uint32_t cp;

	while (i < len) {
		size_t n;

		if (p[i] < 0x80) {
			i = ascii_run_end(p, i, len);
			continue;
		}
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			strbuf_append(out, s + run, i - run);
			strbuf_append(out, UTF8_REPLACEMENT, 3);
			i++;
			run = i;
			continue;
		}
		i += n;
	}
	strbuf_append(out, s + run, i - run);
}

static void
latin1_to_utf8(const char *s, size_t len, struct strbuf *out)
{
	strbuf_reserve(out, len * 2);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = (char)(0xC0 | (c >> 6));
			out->data[out->len++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out->data[out->len] = '\0';
}

static bool
charset_is(const char *cs, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strcasecmp(cs, *names) == 0)
			return true;
	}
	return false;
}

int
mail_charset_to_utf8(const char *charset, const char *in, size_t len,
    struct strbuf *out)
{
	static const char *const utf8_names[] = { "utf-8", "utf8", NULL };
	static const char *const ascii_names[] = {
		"us-ascii", "ascii", "ansi_x3.4-1968", "iso-8859-1",
		"iso8859-1", "latin1", "iso_8859-1", NULL };
	char name[MAIL_CHARSET_NAME_MAX + 1];
	iconv_t cd;
	char *inp = (char *)(uintptr_t)in;
	size_t inleft = len;

	if (charset == NULL || charset_is(charset, utf8_names)) {
		mail_utf8_sanitize(in, len, out);
		return 0;
	}
	if (charset_is(charset, ascii_names)) {
		if (mail_utf8_valid(in, len))
			strbuf_append(out, in, len);
		else
			latin1_to_utf8(in, len, out);
		return 0;
	}
	if (strlen(charset) > MAIL_CHARSET_NAME_MAX)
		return -1;
	/* Mail says ks_c_5601-1987 where iconv knows CP949. */
	if (strcasecmp(charset, "ks_c_5601-1987") == 0)
		charset = "CP949";
	snprintf(name, sizeof(name), "%s", charset);
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return -1;
	while (inleft > 0) {
		char *outp;
		size_t outleft, rc;

		strbuf_reserve(out, inleft * 4 + 16);
		outp = out->data + out->len;
		outleft = out->cap - out->len - 1;
		rc = iconv(cd, &inp, &inleft, &outp, &outleft);
		out->len = (size_t)(outp - out->data);
		if (rc != (size_t)-1)
			break;
		if (errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL (truncated input): one byte is bad. */
		strbuf_append(out, UTF8_REPLACEMENT, 3);
		inp++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* Flush a stateful encoding (ISO-2022-JP) back to its initial state. */
	{
		char *outp;
		size_t outleft;

		strbuf_reserve(out, 16);
		outp = out->data + out->len;
		outleft = out->cap - out->len - 1;
		iconv(cd, NULL, NULL, &outp, &outleft);
		out->len = (size_t)(outp - out->data);
	}
	out->data[out->len] = '\0';
	iconv_close(cd);
	return 0;
}

static uint32_t
fold_cp(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
		return cp + 32;
	if (cp >= 0x100 && cp <= 0x137)
		return cp | 1;
	if (cp >= 0x139 && cp <= 0x148)
		return (cp & 1) ? cp + 1 : cp;
	if (cp >= 0x14A && cp <= 0x177)
		return cp | 1;
	if (cp == 0x178)
		return 0xFF;
	if (cp >= 0x179 && cp <= 0x17E)
		return (cp & 1) ? cp + 1 : cp;
	if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2)
		return cp + 32;
	if (cp >= 0x410 && cp <= 0x42F)
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40F)
		return cp + 80;
	return cp;
}

void
mail_utf8_casefold(const char *s, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	strbuf_reserve(out, len);
	while (i < len) {
		uint32_t cp;
		size_t n;

		if (p[i] < 0x80) {
			/* a run of ASCII, folded straight into the buffer
			   (room for the rest of s: folding never makes ASCII
			   longer), eight bytes at a time */
			size_t start = i;
			char *dst;

			strbuf_reserve(out, len - i);
			dst = out->data + out->len;
			for (; i + 8 <= len; i += 8) {
				uint64_t w = mail_swar_load(p + i);

				if ((w & MAIL_SWAR_HI) != 0)
					break;
				w = mail_swar_ascii_lower(w);
				memcpy(dst + (i - start), &w, sizeof(w));
			}
			for (; i < len && p[i] < 0x80; i++) {
				unsigned char c = p[i];

				dst[i - start] = (char)(c >= 'A' && c <= 'Z' ?
				    c + 32 : c);
			}
			out->len += i - start;
			out->data[out->len] = '\0';
			continue;
		}
		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			strbuf_appendc(out, (char)p[i]);
			i++;
			continue;
		}
		utf8_put(out, fold_cp(cp));
		i += n;
	}
}
