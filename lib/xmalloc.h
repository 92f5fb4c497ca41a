/*
 * xmalloc — allocation that never fails, and the always-on assertion.
 *
 * Out of memory is not a recoverable condition for a daemon that must never
 * half-store a message: every allocation goes through these, which log and
 * abort() on failure. Memory a peer can make us allocate is bounded by the
 * named limits of each module *before* it reaches these calls.
 */
#ifndef POPGATE_XMALLOC_H
#define POPGATE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc of nmemb * size, aborting on multiplication overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates. */
char *xstrndup(const char *s, size_t n);
/* Copies exactly n bytes and appends a NUL (so text stays printable). */
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe a secret (password buffer) so the compiler cannot elide it. */
void secure_zero(void *p, size_t n);

/* Always-on internal invariant: logs file, line and expression, aborts. */
#define PG_ASSERT(expr) \
	((expr) ? (void)0 : pg_assert_fail(#expr, __FILE__, __LINE__))
void pg_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

#endif
