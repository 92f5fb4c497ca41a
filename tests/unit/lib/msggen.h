/*
 * msggen — deterministic test messages for the store's crash test and
 * benchmark: message n always has the same bytes, so a checker can
 * regenerate and compare them after a crash.
 */
#ifndef POPGATE_MSGGEN_H
#define POPGATE_MSGGEN_H

#include <stddef.h>
#include <stdint.h>

/* Realistic size for message n: most 2-50 KB, 1 in 50 between 200 KB and
   1 MB. scale_max (0: none) caps it, for tests that want many rounds. */
size_t msggen_size(uint32_t n, size_t scale_max);
/* Writes message n of exactly size bytes (size >= 128) into buf: headers
   with "X-Seq: n", then lines of text derived from n. */
void msggen_fill(uint32_t n, char *buf, size_t size);
/* A 32-bit integer hash (deterministic generators build on it). */
uint32_t msggen_mix(uint32_t x);
/* Reads the X-Seq header back; 0 if absent. */
uint32_t msggen_seq(const char *buf, size_t size);

#endif
