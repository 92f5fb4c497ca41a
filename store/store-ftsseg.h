/*
 * store-ftsseg — the full-text index's segment format: reading, writing
 * and inverting one segment blob (store-ftsseg.c). Private to store/:
 * store-fts.c keeps the segment records, merging and queries.
 */
#ifndef POPGATE_STORE_FTSSEG_H
#define POPGATE_STORE_FTSSEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Header bytes before a segment's body ids. */
#define STORE_FTSSEG_HDR 24

struct seg {
	unsigned version;
	const unsigned char *base;
	size_t size;
	uint32_t ndocs, nterms, nsat, nskip;
	const unsigned char *docs, *sat, *skip, *dir, *post;
	size_t dir_len, post_len;
};

/* Iterates the directory from skip block k: term, posting range. */
struct seg_dir_it {
	const struct seg *s;
	const unsigned char *p, *end;
	uint32_t index;		/* term index of the current entry */
	uint32_t term;
	uint64_t post_off, post_len;
	bool bitmap;		/* the posting bytes are a bitmap */
};

/* One document going into a new segment. */
struct fts_doc {
	uint64_t body_id;
	const uint32_t *terms;
	size_t count;
	bool saturated;
};

/* Writes a segment term by term (ascending), then its frame. */
struct seg_writer {
	struct strbuf dir, post, skip;
	uint32_t ndocs;		/* of the segment: set before the terms */
	size_t nterms;
	uint32_t prev_term;
	/* the term being written */
	size_t start;
	uint32_t prev_ord;
	bool any;
};

/* One decoded input of a merge. */
struct merge_doc {
	uint64_t body_id;
	uint32_t *terms;
	size_t count, cap;
	bool saturated;
};

/* Reading (every offset and varint bounds-checked: -1 / false when
 * damaged). */
int store_ftsseg_open(const void *data, size_t size, struct seg *s);
uint64_t store_ftsseg_doc(const struct seg *s, uint32_t ord);
int64_t store_ftsseg_find_doc(const struct seg *s, uint64_t b);
bool store_ftsseg_dir_start(const struct seg *s, uint32_t k,
    struct seg_dir_it *it);
bool store_ftsseg_dir_next(struct seg_dir_it *it);
int store_ftsseg_lookup(const struct seg *s, uint32_t t,
    const unsigned char **p_r, size_t *len_r, bool *bitmap_r);
int store_ftsseg_postings(const struct seg *s, const unsigned char *p,
    size_t len, bool bitmap, uint32_t **v, size_t *n, size_t *cap);
int store_ftsseg_invert(const struct seg *s, struct merge_doc *docs);
uint32_t store_ftsseg_ld32(const unsigned char *p);

/* Writing, term by term ascending (w zeroed, ndocs set first). */
void store_ftsseg_w_begin(struct seg_writer *w);
void store_ftsseg_w_add(struct seg_writer *w, uint32_t ord);
void store_ftsseg_w_end(struct seg_writer *w, uint32_t term);
void store_ftsseg_w_finish(struct seg_writer *w, const uint64_t *docs,
    size_t ndocs, const uint32_t *sat, size_t nsat, struct strbuf *out);
void store_ftsseg_build(const struct fts_doc *docs, size_t ndocs,
    struct strbuf *out);
int store_ftsseg_doc_cmp(const void *a, const void *b);
int store_ftsseg_mdoc_cmp(const void *a, const void *b);

#endif
