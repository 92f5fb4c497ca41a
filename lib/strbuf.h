/*
 * strbuf — a growable byte buffer, always NUL-terminated.
 *
 * data is owned by the strbuf; it is valid until the next append, reset
 * or free. strbuf_detach() hands it to the caller, who frees it with free().
 * A zeroed struct strbuf (STRBUF_INIT) is a valid empty buffer.
 */
#ifndef POPGATE_STRBUF_H
#define POPGATE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *data;
	size_t len;
	size_t cap;
};

#define STRBUF_INIT { NULL, 0, 0 }

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_free(struct strbuf *sb);
/* Empties the buffer, keeping its memory. */
void strbuf_reset(struct strbuf *sb);
/* Ensures room for extra more bytes (plus the NUL). */
void strbuf_reserve(struct strbuf *sb, size_t extra);
void strbuf_append(struct strbuf *sb, const void *data, size_t len);
void strbuf_appends(struct strbuf *sb, const char *s);
void strbuf_appendc(struct strbuf *sb, char c);
/* v in decimal, without printf (SORT answers list 100,000 numbers). */
void strbuf_append_u64(struct strbuf *sb, uint64_t v);
void strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strbuf_vappendf(struct strbuf *sb, const char *fmt, va_list ap);
/* Shortens to len (<= sb->len). */
void strbuf_truncate(struct strbuf *sb, size_t len);
/* Returns the data (never NULL) and leaves sb empty. Caller frees. */
char *strbuf_detach(struct strbuf *sb, size_t *len_r);
/* Returns sb->data, or "" for a never-used buffer. */
const char *strbuf_str(const struct strbuf *sb);

#endif
