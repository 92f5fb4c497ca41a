/*
 * libFuzzer target for the full-text index's segments (store-fts.c):
 * segments are the store's own data, but a damaged store must give an
 * error, never a crash or a read out of the blob. Input starting with a
 * 0 byte builds a segment (store_fts_batch_build) from documents made of
 * the input, checks that the reader finds exactly its postings, then
 * reads a copy with one byte changed; any other input is read as a
 * segment.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/mail-fts.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DOCS_MAX 300

static void
build_and_read(const uint8_t *data, size_t size)
{
	struct store_fts_doc docs[DOCS_MAX];
	const struct store_fts_doc *dp[DOCS_MAX];
	uint32_t *terms[DOCS_MAX];
	struct strbuf seg = STRBUF_INIT;
	size_t ndocs, pos = 2;
	long long want = 0, got;

	if (size < 2)
		return;
	/* documents take turns at the input's 3-byte groups: a group's
	 * first byte's top bit says "also the next document" (dense
	 * terms), its low bits a term */
	ndocs = 1 + data[1] % DOCS_MAX;
	for (size_t d = 0; d < ndocs; d++) {
		terms[d] = xcalloc(size / 3 + 1, sizeof(*terms[d]));
		docs[d].terms = terms[d];
		docs[d].count = 0;
		docs[d].saturated = d % 97 == 96;
		dp[d] = &docs[d];
	}
	for (size_t d = 0; pos + 3 <= size; pos += 3) {
		uint32_t t = mail_fts_term(data[pos] & 1, data[pos + 1],
		    data[pos + 2], data[pos] >> 1);

		terms[d][docs[d].count++] = t;
		if ((data[pos] & 0x80) == 0)
			d = (d + 1) % ndocs;
	}
	for (size_t d = 0; d < ndocs; d++) {
		docs[d].count = mail_fts_sort_unique(terms[d], docs[d].count);
		if (!docs[d].saturated)
			want += (long long)docs[d].count;
	}
	store_fts_batch_build(dp, ndocs, &seg);
	got = store_fts_segment_check(seg.data, seg.len);
	if (got != want)
		abort();
	if (seg.len > 0) {
		/* one byte changed: an error or a sound reading */
		seg.data[data[0] % seg.len] ^= (char)(data[size - 1] | 1);
		(void)store_fts_segment_check(seg.data, seg.len);
	}
	for (size_t d = 0; d < ndocs; d++)
		free(terms[d]);
	strbuf_free(&seg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 0)
		build_and_read(data, size);
	else
		(void)store_fts_segment_check(data, size);
	return 0;
}
