/*
 * mail-fts — the terms of the full-text index: what SEARCH's substring
 * matcher can see of a message, as a set of byte trigrams.
 *
 * A term is three consecutive bytes of case-folded UTF-8 text (the text
 * SEARCH matches: mail-search.h) tagged with a class:
 *
 *   HEADER  every field of every header block (the message's and each
 *           MIME part's): its folded name, its decoded folded value, and
 *           for From/To/Cc/Bcc of the message the parsed addresses as
 *           SEARCH FROM/TO/CC/BCC read them;
 *   BODY    every part SEARCH reads as text (mail_search_part_text).
 *
 *   term = class << 24 | b0 << 16 | b1 << 8 | b2       (25 bits)
 *
 * Soundness, which the index's exactness rests on: whenever SEARCH's
 * matcher finds a folded needle in one of those texts, every trigram of
 * the folded needle is a term of the message in that class. Trigrams are
 * taken within one text (field value, name, address line, part), never
 * across two, and a needle never spans two either.
 *
 * Pure (level 1), safe on any thread; memory: the term set (at most
 * MAIL_FTS_DOC_TERMS_MAX + 1 entries) and, per thread that computes
 * terms, one bit per possible term (MAIL_FTS_TERM_LIMIT bits: 4 MB of
 * address space, of which only the pages text touches are ever used).
 */
#ifndef POPGATE_MAIL_FTS_H
#define POPGATE_MAIL_FTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mail_message;

#define MAIL_FTS_CLASS_HEADER 0u
#define MAIL_FTS_CLASS_BODY 1u
/* Bytes of folded text per term: needles shorter than this are matched
 * by a scan. */
#define MAIL_FTS_UNIT 3
/* Distinct terms one message may have in the index. A message with more
 * (megabytes of varied text, binary data sent as text) is "saturated":
 * it is indexed as a candidate for every search, and the matcher decides.
 * This bounds the index per message (~100 KB) and the table above. */
#define MAIL_FTS_DOC_TERMS_MAX 65536
/* Terms of the two classes lie below this. */
#define MAIL_FTS_TERM_LIMIT (2u << 24)

static inline uint32_t
mail_fts_term(unsigned cls, unsigned char a, unsigned char b,
    unsigned char c)
{
	return (uint32_t)cls << 24 | (uint32_t)a << 16 | (uint32_t)b << 8 | c;
}

/* A message's term set. Zeroed (MAIL_FTS_TERMS_INIT) is empty and
 * valid; reuse it for the next message after mail_fts_terms_reset(). */
struct mail_fts_terms {
	uint32_t *terms;	/* ascending, unique; count entries */
	size_t count;
	bool saturated;		/* over MAIL_FTS_DOC_TERMS_MAX: no list */
	/* private: the thread's bit per term while filling, terms used */
	uint64_t *seen;
	size_t used, terms_cap;
};
#define MAIL_FTS_TERMS_INIT { NULL, 0, false, NULL, 0, 0 }

void mail_fts_terms_reset(struct mail_fts_terms *t);
void mail_fts_terms_free(struct mail_fts_terms *t);

/*
 * The terms of the stored message (data, len) that msg describes (parsed
 * or read back from its blob, as SEARCH loads it) into out (reset
 * first). A msg made from other bytes (its size differs) gives a
 * saturated set: the message is then always left to the matcher.
 */
void mail_fts_message_terms(const void *data, size_t len,
    const struct mail_message *msg, struct mail_fts_terms *out);

/*
 * The terms of class cls in a folded needle (mail_utf8_casefold), sorted
 * and unique, into out (room for len entries). Returns how many: 0 when
 * the needle is shorter than MAIL_FTS_UNIT (the index cannot help).
 */
size_t mail_fts_needle_terms(const char *folded, size_t len, unsigned cls,
    uint32_t *out);

/* Sorts n terms ascending and drops repeats; returns the new count. */
size_t mail_fts_sort_unique(uint32_t *v, size_t n);

#endif
