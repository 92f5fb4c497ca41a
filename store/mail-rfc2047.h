/*
 * mail-rfc2047 — decoding of RFC 2047 encoded words in header values.
 *
 * "=?charset[*lang]?B|Q?text?=" words are decoded and converted to UTF-8
 * with iconv. Whitespace between two adjacent encoded words is dropped and
 * the bytes of adjacent words in the same charset are joined before
 * conversion (a multi-byte character split across two words survives). A
 * word in a charset iconv does not know, or a malformed word, is kept as
 * it was written. Text outside encoded words is kept: valid UTF-8 as is,
 * anything else taken as ISO-8859-1.
 */
#ifndef POPGATE_MAIL_RFC2047_H
#define POPGATE_MAIL_RFC2047_H

#include <stddef.h>

struct strbuf;

/* Appends the decoded UTF-8 form of in[0..len) to out. */
void mail_rfc2047_decode(const char *in, size_t len, struct strbuf *out);

#endif
