/*
 * strnum — strict decimal number parsing for protocol fields.
 *
 * Unlike strtoul: no sign, no leading space, no base prefixes, overflow is
 * an error, and the input is a byte slice (not NUL-terminated).
 */
#ifndef POPGATE_STRNUM_H
#define POPGATE_STRNUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All of s[0..len) must be digits (len >= 1); 0 ok, -1 otherwise. */
int str_to_u32(const char *s, size_t len, uint32_t *num_r);
int str_to_u64(const char *s, size_t len, uint64_t *num_r);
/* NUL-terminated convenience forms. */
int str_to_u32z(const char *s, uint32_t *num_r);
int str_to_u64z(const char *s, uint64_t *num_r);

/* Case-insensitive ASCII comparison of a slice with a C string. */
bool str_ieq(const char *s, size_t len, const char *word);

/* Whether s holds a control byte (below 0x20, or DEL): CR, LF, tab ...
 * that must not reach a protocol line, a log or a line-based file. */
bool str_has_ctl(const char *s);

#endif
