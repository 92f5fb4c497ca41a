/*
 * username — see username.h.
 */
#include "username.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include "xmalloc.h"

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The folded form of [p, p + n), NUL-terminated, *len_r bytes: Unicode
 * full case folding in NFC when the bytes are UTF-8 with something beyond
 * ASCII, ASCII letters folded otherwise (other bytes kept). */
static char *
fold(const char *p, size_t n, size_t *len_r)
{
	bool ascii = true;
	char *out;

	for (size_t i = 0; i < n && ascii; i++)
		ascii = (unsigned char)p[i] < 0x80;
	/* (u8_casefold would take bytes that are not UTF-8 for U+FFFD) */
	if (!ascii && u8_check((const uint8_t *)p, n) == NULL) {
		size_t len = 0;
		uint8_t *r = u8_casefold((const uint8_t *)p, n, NULL,
		    UNINORM_NFC, NULL, &len);

		/* NULL: out of memory: the bytes beyond ASCII are kept */
		if (r != NULL && memchr(r, '\0', len) == NULL) {
			out = xmalloc(len + 1);
			memcpy(out, r, len);
			out[len] = '\0';
			free(r);
			*len_r = len;
			return out;
		}
		free(r);
	}
	out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = lower(p[i]);
	out[n] = '\0';
	*len_r = n;
	return out;
}

char *
username_canon_dup(const char *name, bool fold_local)
{
	const char *at = strrchr(name, '@');
	const char *start = fold_local || at == NULL ? name : at;
	size_t keep, flen;
	char *folded, *out;

	/* without fold_local and without '@' the name has no domain */
	if (!fold_local && at == NULL)
		return xstrdup(name);
	keep = (size_t)(start - name);
	folded = fold(start, strlen(start), &flen);
	out = xmalloc(keep + flen + 1);
	memcpy(out, name, keep);
	memcpy(out + keep, folded, flen + 1);
	free(folded);
	return out;
}

bool
username_is_canon(const char *name, bool fold_local)
{
	char *c = username_canon_dup(name, fold_local);
	bool same = strcmp(c, name) == 0;

	free(c);
	return same;
}
