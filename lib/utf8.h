/*
 * utf8 — strict UTF-8 decoding and encoding of single code points, shared
 * by the MIME parser (store/mail-charset.c) and the IMAP mailbox-name
 * codec (imap-frontend/imap-utf7.c). Pure: no allocation but the strbuf's.
 */
#ifndef POPGATE_UTF8_H
#define POPGATE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/*
 * Length (1-4) of the valid UTF-8 sequence at s[0..len), storing its code
 * point in *cp_r; 0 if s does not start with one (len == 0, a bad lead or
 * continuation byte, a truncated, overlong or surrogate sequence, or a code
 * point above U+10FFFF).
 */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp_r);

/* Appends the UTF-8 form of code point cp (at most U+10FFFF, not checked). */
void utf8_put(struct strbuf *out, uint32_t cp);

#endif
