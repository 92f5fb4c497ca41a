#include "mail-header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "mail-charset.h"
#include "mail-decode.h"
#include "mail-rfc2047.h"
#include "strbuf.h"
#include "xmalloc.h"

void
mail_header_iter_init(struct mail_header_iter *it, const char *hdr,
    size_t len)
{
	it->data = hdr;
	it->len = len;
	it->pos = 0;
}

/* End of the line starting at pos (after its LF, or len). */
static size_t
line_end(const struct mail_header_iter *it, size_t pos)
{
	const char *nl = memchr(it->data + pos, '\n', it->len - pos);

	return nl == NULL ? it->len : (size_t)(nl - it->data) + 1;
}

bool
mail_header_iter_next(struct mail_header_iter *it,
    struct mail_header_field *f)
{
	while (it->pos < it->len) {
		size_t start = it->pos, end, colon, name_end;
		const char *d = it->data;

		end = line_end(it, start);
		if (d[start] == '\n' || (d[start] == '\r' &&
		    start + 1 < it->len && d[start + 1] == '\n')) {
			it->pos = it->len;	/* the empty line ends it */
			return false;
		}
		/* Continuation lines belong to this field. */
		while (end < it->len && (d[end] == ' ' || d[end] == '\t'))
			end = line_end(it, end);
		it->pos = end;
		if (d[start] == ' ' || d[start] == '\t')
			continue;	/* orphan continuation */
		for (colon = start; colon < end && d[colon] != ':' &&
		    d[colon] != '\n'; colon++)
			;
		if (colon == end || d[colon] != ':')
			continue;	/* not a field */
		name_end = colon;
		while (name_end > start && (d[name_end - 1] == ' ' ||
		    d[name_end - 1] == '\t'))
			name_end--;
		if (name_end == start)
			continue;
		f->name = d + start;
		f->name_len = name_end - start;
		f->value = d + colon + 1;
		f->value_len = end - colon - 1;
		f->raw = d + start;
		f->raw_len = end - start;
		return true;
	}
	return false;
}

void
mail_header_unfold(const char *v, size_t len, struct strbuf *out)
{
	size_t start = out->len;

	while (len > 0 && (*v == ' ' || *v == '\t' || *v == '\r' ||
	    *v == '\n')) {
		v++;
		len--;
	}
	for (size_t i = 0; i < len;) {
		size_t run = i;

		/* the text between line ends, a run at a time */
		while (run < len && v[run] != '\r' && v[run] != '\n')
			run++;
		strbuf_append(out, v + i, run - i);
		i = run < len ? run + 1 : run;
	}
	while (out->len > start && (out->data[out->len - 1] == ' ' ||
	    out->data[out->len - 1] == '\t'))
		out->len--;
	if (out->data != NULL)
		out->data[out->len] = '\0';
}

void
mail_header_filter(const char *hdr, size_t len,
    const char *const *names, size_t n, bool exclude, struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;

	mail_header_iter_init(&it, hdr, len);
	while (mail_header_iter_next(&it, &f)) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++) {
			found = strlen(names[i]) == f.name_len &&
			    strncasecmp(names[i], f.name, f.name_len) == 0;
		}
		if (found != exclude) {
			strbuf_append(out, f.raw, f.raw_len);
			/* A last field without a line end still gets one. */
			if (f.raw[f.raw_len - 1] != '\n')
				strbuf_append(out, "\r\n", 2);
		}
	}
	strbuf_append(out, "\r\n", 2);
}

/* --- MIME field values ------------------------------------------------ */

struct vcursor {
	const char *s;
	size_t len, pos;
};

static void
skip_cfws(struct vcursor *c)
{
	while (c->pos < c->len) {
		char ch = c->s[c->pos];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			c->pos++;
		} else if (ch == '(') {
			c->pos = mail_skip_comment(c->s, c->len, c->pos);
		} else {
			break;
		}
	}
}

size_t
mail_skip_comment(const char *s, size_t len, size_t pos)
{
	int depth = 0;

	while (pos < len) {
		char ch = s[pos++];

		if (ch == '\\' && pos < len)
			pos++;
		else if (ch == '(')
			depth++;
		else if (ch == ')' && --depth == 0)
			break;
	}
	return pos;
}

static bool
is_tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_token_char(char c)
{
	return (unsigned char)c > ' ' && c != 0x7f && !is_tspecial(c);
}

static size_t
read_token(struct vcursor *c)
{
	size_t start = c->pos;

	while (c->pos < c->len && is_token_char(c->s[c->pos]))
		c->pos++;
	return c->pos - start;
}

struct raw_param {
	char *name;
	char *value;
	const char *base;	/* name before '*' */
	size_t base_len;
	int section;		/* -1: not a continuation */
	bool extended;
	bool used;
};

static bool
attr_char(unsigned char c)
{
	return is_token_char((char)c) && c != '*' && c != '\'' && c != '%' &&
	    c < 0x80;
}

/* Parses "; a=b; c="d"" into raw pairs (heap, freed by the caller). */
static size_t
read_raw_params(struct vcursor *c, struct raw_param *raw, size_t max)
{
	size_t n = 0;
	struct strbuf val = STRBUF_INIT;

	while (c->pos < c->len && n < max) {
		size_t nstart, nlen;

		/* Find the next ';' (garbage before it is skipped). */
		skip_cfws(c);
		while (c->pos < c->len && c->s[c->pos] != ';') {
			if (c->s[c->pos] == '"') {
				c->pos++;
				while (c->pos < c->len && c->s[c->pos] != '"')
					c->pos += c->s[c->pos] == '\\' ? 2 : 1;
			}
			c->pos++;
		}
		if (c->pos >= c->len)
			break;
		c->pos++;
		skip_cfws(c);
		nstart = c->pos;
		nlen = read_token(c);
		if (nlen == 0)
			continue;
		skip_cfws(c);
		if (c->pos >= c->len || c->s[c->pos] != '=')
			continue;
		c->pos++;
		skip_cfws(c);
		strbuf_reset(&val);
		if (c->pos < c->len && c->s[c->pos] == '"') {
			c->pos++;
			while (c->pos < c->len && c->s[c->pos] != '"') {
				char ch = c->s[c->pos++];

				if (ch == '\\' && c->pos < c->len)
					ch = c->s[c->pos++];
				if (ch != '\r' && ch != '\n')
					strbuf_appendc(&val, ch);
			}
			if (c->pos < c->len)
				c->pos++;
		} else {
			/* Lenient token: up to ';' or whitespace. */
			while (c->pos < c->len && c->s[c->pos] != ';' &&
			    c->s[c->pos] != ' ' && c->s[c->pos] != '\t' &&
			    c->s[c->pos] != '\r' && c->s[c->pos] != '\n')
				strbuf_appendc(&val, c->s[c->pos++]);
		}
		raw[n].name = xstrndup(c->s + nstart, nlen);
		raw[n].value = xstrndup(val.data == NULL ? "" : val.data,
		    val.len);
		raw[n].used = false;
		n++;
	}
	strbuf_free(&val);
	return n;
}

static void
classify(struct raw_param *p)
{
	char *star = strchr(p->name, '*');

	p->base = p->name;
	p->section = -1;
	p->extended = false;
	if (star == NULL) {
		p->base_len = strlen(p->name);
		return;
	}
	p->base_len = (size_t)(star - p->name);
	if (star[1] == '\0') {
		p->extended = true;
		return;
	}
	if (star[1] >= '0' && star[1] <= '9') {
		char *end;
		long sec = strtol(star + 1, &end, 10);

		if (sec <= MAIL_PARAM_SECTION_MAX && (*end == '\0' ||
		    (end[0] == '*' && end[1] == '\0'))) {
			p->section = (int)sec;
			p->extended = *end == '*';
			return;
		}
	}
	/* Unrecognised: keep the name whole. */
	p->base_len = strlen(p->name);
}

static void
pct_encode(const char *s, struct strbuf *out)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (attr_char(c))
			strbuf_appendc(out, (char)c);
		else
			strbuf_appendf(out, "%%%02X", c);
	}
}

static void
join_params(struct arena *arena, struct raw_param *raw, size_t nraw,
    struct mail_param **params_r, uint32_t *n_r)
{
	struct mail_param out[MAIL_PARAMS_MAX];
	uint32_t n = 0;
	struct strbuf v = STRBUF_INIT;

	for (size_t i = 0; i < nraw; i++)
		classify(&raw[i]);
	for (size_t i = 0; i < nraw && n < MAIL_PARAMS_MAX; i++) {
		struct raw_param *p = &raw[i];
		bool dup = false;

		if (p->used)
			continue;
		if (p->section < 0) {
			p->used = true;
			for (uint32_t k = 0; k < n && !dup; k++)
				dup = strcasecmp(out[k].name, p->name) == 0;
			if (dup)
				continue;
			out[n].name = arena_strdup(arena, p->name);
			out[n].value = arena_strdup(arena, p->value);
			n++;
			continue;
		}
		/* Continuations of this base: 0, 1, 2 ... while present. */
		strbuf_reset(&v);
		bool extended = false, found0 = false;

		for (int sec = 0; sec <= MAIL_PARAM_SECTION_MAX; sec++) {
			struct raw_param *q = NULL;

			for (size_t k = i; k < nraw; k++) {
				if (!raw[k].used && raw[k].section == sec &&
				    raw[k].base_len == p->base_len &&
				    strncasecmp(raw[k].base, p->base,
				    p->base_len) == 0) {
					q = &raw[k];
					break;
				}
			}
			if (q == NULL)
				break;
			q->used = true;
			if (sec == 0) {
				extended = q->extended;
				found0 = true;
			}
			if (!extended || q->extended || sec == 0)
				strbuf_appends(&v, q->value);
			else
				pct_encode(q->value, &v);
		}
		/* Sections without a 0 are used up above only if found; mark
		 * the rest of this base used so they are not re-joined. */
		for (size_t k = i; k < nraw; k++) {
			if (raw[k].section >= 0 && raw[k].base_len ==
			    p->base_len && strncasecmp(raw[k].base, p->base,
			    p->base_len) == 0)
				raw[k].used = true;
		}
		if (!found0)
			continue;
		{
			char *name = arena_alloc(arena, p->base_len + 2);

			memcpy(name, p->base, p->base_len);
			name[p->base_len] = extended ? '*' : '\0';
			name[p->base_len + 1] = '\0';
			for (uint32_t k = 0; k < n && !dup; k++)
				dup = strcasecmp(out[k].name, name) == 0;
			if (dup)
				continue;
			out[n].name = name;
			out[n].value = arena_strndup(arena, v.data == NULL ?
			    "" : v.data, v.len);
			n++;
		}
	}
	strbuf_free(&v);
	*params_r = NULL;
	if (n > 0) {
		*params_r = arena_alloc(arena, n * sizeof(*out));
		memcpy(*params_r, out, n * sizeof(*out));
	}
	*n_r = n;
}

static void
parse_params(struct arena *arena, struct vcursor *c,
    struct mail_param **params_r, uint32_t *n_r)
{
	struct raw_param *raw = xcalloc(MAIL_PARAMS_RAW_MAX, sizeof(*raw));
	size_t nraw = read_raw_params(c, raw, MAIL_PARAMS_RAW_MAX);

	join_params(arena, raw, nraw, params_r, n_r);
	for (size_t i = 0; i < nraw; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
	free(raw);
}

int
mail_header_parse_content_type(struct arena *arena, const char *v,
    size_t len, const char **type_r, const char **subtype_r,
    struct mail_param **params_r, uint32_t *nparams_r)
{
	struct vcursor c = { v, len, 0 };
	size_t tstart, tlen, sstart, slen = 0;
	int ret = 0;

	*type_r = *subtype_r = NULL;
	skip_cfws(&c);
	tstart = c.pos;
	tlen = read_token(&c);
	skip_cfws(&c);
	if (tlen == 0 || c.pos >= c.len || v[c.pos] != '/') {
		ret = -1;
	} else {
		c.pos++;
		skip_cfws(&c);
		sstart = c.pos;
		slen = read_token(&c);
		if (slen == 0)
			ret = -1;
		else {
			*type_r = arena_strndup(arena, v + tstart, tlen);
			*subtype_r = arena_strndup(arena, v + sstart, slen);
		}
	}
	parse_params(arena, &c, params_r, nparams_r);
	return ret;
}

int
mail_header_parse_disposition(struct arena *arena, const char *v,
    size_t len, const char **disp_r, struct mail_param **params_r,
    uint32_t *nparams_r)
{
	struct vcursor c = { v, len, 0 };
	size_t start, n;

	skip_cfws(&c);
	start = c.pos;
	n = read_token(&c);
	*disp_r = n == 0 ? NULL : arena_strndup(arena, v + start, n);
	parse_params(arena, &c, params_r, nparams_r);
	return n == 0 ? -1 : 0;
}

void
mail_header_parse_languages(struct arena *arena, const char *v, size_t len,
    const char ***langs_r, uint32_t *n_r)
{
	struct vcursor c = { v, len, 0 };
	const char *langs[MAIL_LANGUAGES_MAX];
	uint32_t n = 0;

	while (c.pos < c.len && n < MAIL_LANGUAGES_MAX) {
		size_t start, tl;

		skip_cfws(&c);
		start = c.pos;
		tl = read_token(&c);
		if (tl > 0)
			langs[n++] = arena_strndup(arena, v + start, tl);
		skip_cfws(&c);
		if (c.pos < c.len)
			c.pos++;	/* ',' or garbage */
	}
	*langs_r = NULL;
	if (n > 0) {
		*langs_r = arena_alloc(arena, n * sizeof(*langs));
		memcpy(*langs_r, langs, n * sizeof(*langs));
	}
	*n_r = n;
}

const char *
mail_header_parse_token(struct arena *arena, const char *v, size_t len)
{
	struct vcursor c = { v, len, 0 };
	size_t start, n;

	skip_cfws(&c);
	start = c.pos;
	n = read_token(&c);
	return n == 0 ? NULL : arena_strndup(arena, v + start, n);
}

void
mail_param_value_utf8(const struct mail_param *param, struct strbuf *out)
{
	size_t nlen = strlen(param->name);
	const char *v = param->value, *q1, *q2;
	char charset[MAIL_CHARSET_NAME_MAX + 1];
	struct strbuf raw = STRBUF_INIT;

	if (nlen == 0 || param->name[nlen - 1] != '*') {
		mail_rfc2047_decode(v, strlen(v), out);
		return;
	}
	q1 = strchr(v, '\'');
	q2 = q1 == NULL ? NULL : strchr(q1 + 1, '\'');
	if (q2 == NULL || (size_t)(q1 - v) > MAIL_CHARSET_NAME_MAX) {
		mail_decode_percent(v, strlen(v), &raw);
		mail_utf8_sanitize(raw.data, raw.len, out);
		strbuf_free(&raw);
		return;
	}
	memcpy(charset, v, (size_t)(q1 - v));
	charset[q1 - v] = '\0';
	mail_decode_percent(q2 + 1, strlen(q2 + 1), &raw);
	if (mail_charset_to_utf8(charset[0] == '\0' ? "us-ascii" : charset,
	    raw.data == NULL ? "" : raw.data, raw.len, out) < 0)
		mail_utf8_sanitize(raw.data == NULL ? "" : raw.data, raw.len,
		    out);
	strbuf_free(&raw);
}
