/*
 * mail-decode — Content-Transfer-Encoding and RFC 2047 B/Q decoders.
 *
 * Lenient, as real mail needs: bytes outside the base64 alphabet are
 * skipped, a truncated quantum is decoded as far as it goes, a bad "=XX"
 * in quoted-printable is kept literally. Output is appended to out; the
 * decoders never fail.
 */
#ifndef POPGATE_MAIL_DECODE_H
#define POPGATE_MAIL_DECODE_H

#include <stddef.h>

struct strbuf;

void mail_decode_base64(const char *in, size_t len, struct strbuf *out);
/* Quoted-printable (RFC 2045 6.7): soft line breaks removed, trailing
 * whitespace before a line end dropped. */
void mail_decode_qp(const char *in, size_t len, struct strbuf *out);
/* RFC 2047 "Q": like quoted-printable, and '_' is a space. */
void mail_decode_q(const char *in, size_t len, struct strbuf *out);
/* RFC 2231 %XX decoding of an extended parameter value. */
void mail_decode_percent(const char *in, size_t len, struct strbuf *out);

#endif
