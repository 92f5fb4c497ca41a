#include "strbuf.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

void
strbuf_init(struct strbuf *sb, size_t hint)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	if (hint > 0)
		strbuf_reserve(sb, hint);
}

void
strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void
strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->data != NULL)
		sb->data[0] = '\0';
}

void
strbuf_reserve(struct strbuf *sb, size_t extra)
{
	size_t need, cap;

	PG_ASSERT(extra < SIZE_MAX / 2 - sb->len);
	need = sb->len + extra + 1;
	if (need <= sb->cap)
		return;
	cap = sb->cap < 64 ? 64 : sb->cap;
	while (cap < need)
		cap *= 2;
	sb->data = xrealloc(sb->data, cap);
	sb->cap = cap;
}

void
strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
	strbuf_reserve(sb, len);
	if (len > 0)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void
strbuf_appends(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, s, strlen(s));
}

void
strbuf_append_u64(struct strbuf *sb, uint64_t v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	strbuf_append(sb, buf + i, sizeof(buf) - i);
}

void
strbuf_appendc(struct strbuf *sb, char c)
{
	/* Renderers append byte by byte (FETCH BODYSTRUCTURE of 10,000
	 * messages): skip reserve and memcpy when there is room. */
	if (sb->len + 2 <= sb->cap) {
		sb->data[sb->len++] = c;
		sb->data[sb->len] = '\0';
		return;
	}
	strbuf_append(sb, &c, 1);
}

void
strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	strbuf_reserve(sb, 64);
	n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
	PG_ASSERT(n >= 0);
	if ((size_t)n >= sb->cap - sb->len) {
		strbuf_reserve(sb, (size_t)n);
		n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap2);
		PG_ASSERT(n >= 0);
	}
	va_end(ap2);
	sb->len += (size_t)n;
}

void
strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vappendf(sb, fmt, ap);
	va_end(ap);
}

void
strbuf_truncate(struct strbuf *sb, size_t len)
{
	PG_ASSERT(len <= sb->len);
	sb->len = len;
	if (sb->data != NULL)
		sb->data[len] = '\0';
}

char *
strbuf_detach(struct strbuf *sb, size_t *len_r)
{
	char *d;

	if (sb->data == NULL)
		strbuf_reserve(sb, 0);
	d = sb->data;
	if (len_r != NULL)
		*len_r = sb->len;
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
	return d;
}

const char *
strbuf_str(const struct strbuf *sb)
{
	return sb->data != NULL ? sb->data : "";
}
