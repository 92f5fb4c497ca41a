/*
 * mail-charset — conversion to UTF-8 (glibc iconv), UTF-8 checks and the
 * case folding SEARCH matches with.
 *
 * Case folding is simple, one code point to one code point: ASCII, Latin-1
 * Supplement, Latin Extended-A, Greek and Cyrillic capitals map to their
 * small letters (no full Unicode folding, no ß -> ss, no normalisation).
 * Bytes that are not valid UTF-8 are copied through unchanged.
 */
#ifndef POPGATE_MAIL_CHARSET_H
#define POPGATE_MAIL_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* Longest charset name accepted (longer names are unknown charsets). */
#define MAIL_CHARSET_NAME_MAX 64

bool mail_utf8_valid(const char *s, size_t len);

/*
 * Appends in[0..len) converted from charset to UTF-8. Invalid sequences
 * become U+FFFD. "us-ascii" and "utf-8" input that is not what it claims
 * is taken as ISO-8859-1 and as UTF-8 with U+FFFD respectively. Returns -1
 * (appending nothing) when iconv does not know the charset.
 */
int mail_charset_to_utf8(const char *charset, const char *in, size_t len,
    struct strbuf *out);

/* Appends s with invalid UTF-8 sequences replaced by U+FFFD. */
void mail_utf8_sanitize(const char *s, size_t len, struct strbuf *out);

/* Appends the case-folded form of UTF-8 text (see above). */
void mail_utf8_casefold(const char *s, size_t len, struct strbuf *out);

#endif
