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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

void mail_decode_base64(const char *in, size_t len, struct strbuf *out);
/* Quoted-printable (RFC 2045 6.7): soft line breaks removed, trailing
 * whitespace before a line end dropped. */
void mail_decode_qp(const char *in, size_t len, struct strbuf *out);
/* RFC 2047 "Q": like quoted-printable, and '_' is a space. */
void mail_decode_q(const char *in, size_t len, struct strbuf *out);
/* RFC 2231 %XX decoding of an extended parameter value. */
void mail_decode_percent(const char *in, size_t len, struct strbuf *out);

/* ---- a part's Content-Transfer-Encoding, piece by piece (BINARY) ----
 *
 * FETCH BINARY (RFC 3516) sends a part decoded, possibly tens of MB, and
 * must announce the decoded size first: the decoder below turns any
 * part into a sequence of bounded pieces whose concatenation is exactly
 * what mail_decode_base64() / mail_decode_qp() give for the whole body
 * (a quoted-printable line longer than MAIL_DECODE_QP_LINE_MAX is cut
 * in pieces, outside whitespace and "=XX"; only such a line of nothing
 * but blanks could then decode differently).
 */

/* A quoted-printable line is decoded in pieces beyond this. */
#define MAIL_DECODE_QP_LINE_MAX (64 * 1024)

enum mail_cte {
	MAIL_CTE_IDENTITY = 0,	/* 7bit, 8bit, binary (and none given) */
	MAIL_CTE_BASE64,
	MAIL_CTE_QP,
	MAIL_CTE_UNKNOWN,	/* x-uuencode and the like: RFC 3516 UNKNOWN-CTE */
};

/* The encoding named by a Content-Transfer-Encoding value (any case). */
enum mail_cte mail_cte_parse(const char *encoding);

struct mail_decoder {
	enum mail_cte cte;
	uint32_t acc;	/* base64: bits of the quantum so far */
	int n;		/* base64: sextets in acc */
	bool ended;	/* base64: '=' seen, the rest decodes to nothing */
};

void mail_decoder_init(struct mail_decoder *d, enum mail_cte cte);
/*
 * Decodes the start of in[0..len) (the rest of the part's body, up to
 * its end) and appends about max_out bytes (>= 1; a few more for the
 * last quantum) to out. Returns how many input bytes it used; call again
 * with the rest. When it returns len, the part is done. Never fails.
 */
size_t mail_decoder_step(struct mail_decoder *d, const char *in, size_t len,
    size_t max_out, struct strbuf *out);
/*
 * The decoded size of a whole part (a pass over it in bounded pieces,
 * using scratch), and whether a NUL byte lies at a decoded offset in
 * [nul_from, nul_to) (*has_nul_r may be NULL).
 */
uint64_t mail_decoded_size(enum mail_cte cte, const char *in, size_t len,
    uint64_t nul_from, uint64_t nul_to, bool *has_nul_r,
    struct strbuf *scratch);

#endif
