/*
 * mail-swar — eight bytes at a time in a 64-bit word, for the loops that
 * SEARCH and the full-text index run over every byte of a message's text
 * (mail-charset.c, mail-decode.c). Portable C: byte order does not
 * matter, since no byte carries into another.
 *
 * Pure (level 1), header only.
 */
#ifndef POPGATE_MAIL_SWAR_H
#define POPGATE_MAIL_SWAR_H

#include <stdint.h>
#include <string.h>

/* The high bit of each byte; each byte 1. */
#define MAIL_SWAR_HI 0x8080808080808080ull
#define MAIL_SWAR_ONES 0x0101010101010101ull

static inline uint64_t
mail_swar_load(const void *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/* Non-zero when a byte of w is zero. */
static inline uint64_t
mail_swar_has_zero(uint64_t w)
{
	return (w - MAIL_SWAR_ONES) & ~w & MAIL_SWAR_HI;
}

/* Non-zero when a byte of w is c. */
static inline uint64_t
mail_swar_has_byte(uint64_t w, unsigned char c)
{
	return mail_swar_has_zero(w ^ (MAIL_SWAR_ONES * c));
}

/* Eight ASCII bytes (none >= 0x80) with A-Z lowered: a byte's high bit
 * after adding 0x80 - 'A' says >= 'A', after adding 0x80 - ('Z' + 1)
 * says > 'Z'. */
static inline uint64_t
mail_swar_ascii_lower(uint64_t w)
{
	uint64_t upper = (w + (0x80 - 'A') * MAIL_SWAR_ONES) &
	    ~(w + (0x80 - 'Z' - 1) * MAIL_SWAR_ONES) & MAIL_SWAR_HI;

	return w | upper >> 2;
}

#endif
