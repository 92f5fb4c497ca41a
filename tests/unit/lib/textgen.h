/*
 * textgen — deterministic, realistic text mail for the search benchmark
 * and the index's delivery figures: words of a Zipf-distributed
 * vocabulary of pseudo-words (plus some non-ASCII ones), 1 in 5 messages
 * multipart/alternative with an HTML part, 1 in 10 with a base64
 * attachment, some quoted-printable, sizes mostly 1-8 KB.
 *
 * Planted for searches: TEXTGEN_RARE in 1 message of 10,000 (n % 10000 ==
 * 7), TEXTGEN_COMMON in most, TEXTGEN_ABSENT in none.
 */
#ifndef POPGATE_TEXTGEN_H
#define POPGATE_TEXTGEN_H

#include <stdint.h>

#include "strbuf.h"

#define TEXTGEN_RARE "zanzibarite"
#define TEXTGEN_COMMON "meeting"
#define TEXTGEN_ABSENT "qqxyzzyq"

/* Message n (from 1) into out (emptied first), CRLF line ends. */
void textgen_message(uint32_t n, struct strbuf *out);

#endif
