/* mail-html — the text of an HTML part; see mail-html.h. */
#include "mail-html.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "utf8.h"

static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", ' ' }, { "copy", 0xA9 }, { "reg", 0xAE },
	{ "euro", 0x20AC }, { "pound", 0xA3 }, { "laquo", 0xAB },
	{ "raquo", 0xBB }, { "ndash", 0x2013 }, { "mdash", 0x2014 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "ldquo", 0x201C },
	{ "rdquo", 0x201D }, { "hellip", 0x2026 }, { "middot", 0xB7 },
	{ "szlig", 0xDF }, { "agrave", 0xE0 }, { "aacute", 0xE1 },
	{ "acirc", 0xE2 }, { "auml", 0xE4 }, { "ccedil", 0xE7 },
	{ "egrave", 0xE8 }, { "eacute", 0xE9 }, { "ecirc", 0xEA },
	{ "euml", 0xEB }, { "iuml", 0xEF }, { "ntilde", 0xF1 },
	{ "ocirc", 0xF4 }, { "ouml", 0xF6 }, { "uuml", 0xFC },
	{ "Agrave", 0xC0 }, { "Aacute", 0xC1 }, { "Auml", 0xC4 },
	{ "Ccedil", 0xC7 }, { "Eacute", 0xC9 }, { "Ouml", 0xD6 },
	{ "Uuml", 0xDC },
};

/* Tags after which the text breaks: a line end, or a space for cells. */
static const char *const block_tags[] = {
	"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
	"table", "ul", "ol", "blockquote", "pre", "hr", "title", "dt", "dd",
	"section", "article", "header", "footer",
};

/* Tags whose content is not text. */
static const char *const skip_tags[] = { "script", "style", "head" };

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnum(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9');
}

static bool
name_in(const char *name, size_t len, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncasecmp(list[i], name,
		    len) == 0)
			return true;
	return false;
}

/* A character reference at s[0] == '&': its length (0: not one) and
 * code point. */
static size_t
entity(const char *s, size_t len, uint32_t *cp_r)
{
	size_t max = len < MAIL_HTML_ENTITY_MAX ? len : MAIL_HTML_ENTITY_MAX;
	const char *semi = memchr(s, ';', max);
	size_t n;

	if (semi == NULL)
		return 0;
	n = (size_t)(semi - s);	/* "&name" */
	if (n >= 3 && s[1] == '#') {
		uint32_t cp = 0;
		bool hex = s[2] == 'x' || s[2] == 'X';
		size_t i = hex ? 3 : 2;

		if (i == n)
			return 0;
		for (; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			unsigned d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return 0;
			cp = cp * (hex ? 16 : 10) + d;
			if (cp > 0x10FFFF)
				return 0;
		}
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
			cp = 0xFFFD;
		*cp_r = cp;
		return n + 1;
	}
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
		if (strlen(entities[i].name) == n - 1 &&
		    memcmp(entities[i].name, s + 1, n - 1) == 0) {
			*cp_r = entities[i].cp;
			return n + 1;
		}
	}
	return 0;
}

/* Offset just past "</name" ... ">" at or after p, or len. */
static size_t
skip_to_close(const char *s, size_t len, size_t p, const char *name)
{
	size_t nl = strlen(name);

	while (p < len) {
		const char *lt = memchr(s + p, '<', len - p);

		if (lt == NULL)
			return len;
		p = (size_t)(lt - s) + 1;
		if (p < len && s[p] == '/' && len - p - 1 >= nl &&
		    strncasecmp(s + p + 1, name, nl) == 0 &&
		    (p + 1 + nl == len || !is_alnum((unsigned char)s[p + 1 +
		    nl]))) {
			const char *gt = memchr(s + p, '>', len - p);

			return gt == NULL ? len : (size_t)(gt - s) + 1;
		}
	}
	return len;
}

/* The end of the tag starting at s[p] == '<' (past its '>'), skipping
 * quoted attribute values. */
static size_t
tag_end(const char *s, size_t len, size_t p)
{
	char quote = 0;

	for (p++; p < len; p++) {
		char c = s[p];

		if (quote != 0) {
			if (c == quote)
				quote = 0;
		} else if (c == '"' || c == '\'') {
			quote = c;
		} else if (c == '>') {
			return p + 1;
		}
	}
	return len;
}

void
mail_html_to_text(const char *s, size_t len, struct strbuf *out)
{
	size_t p = 0, run = 0;

	strbuf_reserve(out, len);
	while (p < len) {
		unsigned char c = (unsigned char)s[p];
		uint32_t cp;
		size_t n;

		if (c == '&' && (n = entity(s + p, len - p, &cp)) > 0) {
			strbuf_append(out, s + run, p - run);
			utf8_put(out, cp);
			p += n;
			run = p;
			continue;
		}
		if (c != '<' || p + 1 >= len || !(is_alpha((unsigned char)s[p
		    + 1]) || s[p + 1] == '/' || s[p + 1] == '!' ||
		    s[p + 1] == '?')) {
			p++;
			continue;
		}
		strbuf_append(out, s + run, p - run);
		if (len - p >= 4 && memcmp(s + p, "<!--", 4) == 0) {
			const char *end = memmem(s + p + 4, len - p - 4, "-->",
			    3);

			p = end == NULL ? len : (size_t)(end - s) + 3;
		} else {
			size_t q = p + 1, name_len;
			bool closing = s[q] == '/';

			if (closing)
				q++;
			for (name_len = 0; q + name_len < len &&
			    is_alnum((unsigned char)s[q + name_len]); name_len++)
				;
			p = tag_end(s, len, p);
			if (name_len > 0 && name_len <= MAIL_HTML_TAG_NAME_MAX) {
				if (!closing && name_in(s + q, name_len,
				    skip_tags, sizeof(skip_tags) /
				    sizeof(skip_tags[0]))) {
					char name[MAIL_HTML_TAG_NAME_MAX + 1];

					memcpy(name, s + q, name_len);
					name[name_len] = '\0';
					p = skip_to_close(s, len, p, name);
				} else if (name_in(s + q, name_len, block_tags,
				    sizeof(block_tags) /
				    sizeof(block_tags[0]))) {
					strbuf_appendc(out, '\n');
				} else if ((name_len == 2 &&
				    (strncasecmp(s + q, "td", 2) == 0 ||
				    strncasecmp(s + q, "th", 2) == 0))) {
					strbuf_appendc(out, ' ');
				}
			}
		}
		run = p;
	}
	strbuf_append(out, s + run, p - run);
}
