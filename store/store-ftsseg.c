/*
 * store-ftsseg — one segment of the full-text index (store-ftsseg.h).
 *
 * Segment blob (version 2; native byte order, like the rest of the store):
 *
 *   "PGFT" u8 version u8[3] 0
 *   u32 ndocs, u32 nterms, u32 nsat, u32 nskip
 *   u64 docs[ndocs]            body ids, ascending (ordinal = index)
 *   u32 sat[nsat]              ordinals of saturated docs, ascending
 *   skip[nskip] { u32 term, u32 dir_off, u32 post_off }   every 32nd term
 *   u32 dir_len, dir bytes     per term: [varint term delta, unless it
 *                              starts a skip block] varint (posting bytes
 *                              << 1 | bitmap) (version 1: posting bytes)
 *   postings                   per term: varint first ordinal, varint
 *                              deltas of the next ordinals; or, flagged,
 *                              a bitmap of (ndocs + 7) / 8 bytes, bit o
 *                              (byte o / 8, bit o % 8) for ordinal o
 */
#include "store-ftsseg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mail-fts.h"
#include "store.h"
#include "strbuf.h"
#include "xmalloc.h"

#define SEG_MAGIC "PGFT"
/* 2: a term's posting bytes may be a bitmap (directory length field
 * len << 1 | 1); 1: delta varints only (still read). */
#define SEG_VERSION 2
#define SKIP_EVERY 32

/* ---- small encoders ---- */

static void
put_u32(struct strbuf *b, uint32_t v)
{
	strbuf_append(b, &v, sizeof(v));
}

static void
put_varint(struct strbuf *b, uint64_t v)
{
	unsigned char *p;

	if (b->cap - b->len < 11)
		strbuf_reserve(b, 10);
	p = (unsigned char *)b->data + b->len;
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	b->len = (size_t)(p - (unsigned char *)b->data);
	b->data[b->len] = '\0';
}

uint32_t
store_ftsseg_ld32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
ld64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Reads a varint at *p (< end); false on truncation or overflow. */
static bool
get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v_r)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char c = *(*p)++;

		v |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*v_r = v;
			return true;
		}
	}
	return false;
}

/* ---- reading a segment ---- */


/* Parses the frame of a segment blob; -1 if it is not a sound one. */
int
store_ftsseg_open(const void *data, size_t size, struct seg *s)
{
	const unsigned char *p = data;
	uint64_t need;

	memset(s, 0, sizeof(*s));
	if (size < STORE_FTSSEG_HDR + 4 || memcmp(p, SEG_MAGIC, 4) != 0 ||
	    p[4] < 1 || p[4] > SEG_VERSION)
		return -1;
	s->version = p[4];
	s->base = p;
	s->size = size;
	s->ndocs = store_ftsseg_ld32(p + 8);
	s->nterms = store_ftsseg_ld32(p + 12);
	s->nsat = store_ftsseg_ld32(p + 16);
	s->nskip = store_ftsseg_ld32(p + 20);
	need = STORE_FTSSEG_HDR + (uint64_t)s->ndocs * 8 +
	    (uint64_t)s->nsat * 4 + (uint64_t)s->nskip * 12 + 4;
	if (need > size || s->nsat > s->ndocs ||
	    s->nskip != (s->nterms + SKIP_EVERY - 1) / SKIP_EVERY)
		return -1;
	s->docs = p + STORE_FTSSEG_HDR;
	s->sat = s->docs + (size_t)s->ndocs * 8;
	s->skip = s->sat + (size_t)s->nsat * 4;
	s->dir_len = store_ftsseg_ld32(s->skip + (size_t)s->nskip * 12);
	s->dir = s->skip + (size_t)s->nskip * 12 + 4;
	if (s->dir_len > size - (size_t)(s->dir - p))
		return -1;
	s->post = s->dir + s->dir_len;
	s->post_len = size - (size_t)(s->post - p);
	return 0;
}

uint64_t
store_ftsseg_doc(const struct seg *s, uint32_t ord)
{
	return ld64(s->docs + (size_t)ord * 8);
}

/* Ordinal of body id b in s, or -1. */
int64_t
store_ftsseg_find_doc(const struct seg *s, uint64_t b)
{
	uint32_t lo = 0, hi = s->ndocs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t v = store_ftsseg_doc(s, mid);

		if (v == b)
			return mid;
		if (v < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}


/* The bytes of a bitmap posting list: one bit per ordinal. */
static size_t
bitmap_len(uint32_t ndocs)
{
	return ((size_t)ndocs + 7) / 8;
}

/* Splits a directory length field (version 2: len << 1 | bitmap). */
static bool
dir_len_field(struct seg_dir_it *it, uint64_t v)
{
	it->bitmap = it->s->version >= 2 && (v & 1) != 0;
	it->post_len = it->s->version >= 2 ? v >> 1 : v;
	return it->post_off + it->post_len <= it->s->post_len &&
	    (!it->bitmap || it->post_len == bitmap_len(it->s->ndocs));
}

bool
store_ftsseg_dir_start(const struct seg *s, uint32_t k, struct seg_dir_it *it)
{
	const unsigned char *e = s->skip + (size_t)k * 12;
	uint32_t dir_off = store_ftsseg_ld32(e + 4);
	uint64_t v;

	it->s = s;
	it->index = k * SKIP_EVERY;
	it->term = store_ftsseg_ld32(e);
	it->post_off = store_ftsseg_ld32(e + 8);
	if (dir_off > s->dir_len)
		return false;
	it->p = s->dir + dir_off;
	it->end = s->dir + s->dir_len;
	return get_varint(&it->p, it->end, &v) && dir_len_field(it, v);
}

/* Moves to the next entry; false at the end or on a damaged directory. */
bool
store_ftsseg_dir_next(struct seg_dir_it *it)
{
	uint64_t delta, v;

	if (it->index + 1 >= it->s->nterms)
		return false;
	it->index++;
	if (it->index % SKIP_EVERY == 0)
		return store_ftsseg_dir_start(it->s, it->index / SKIP_EVERY,
		    it);
	it->post_off += it->post_len;
	if (!get_varint(&it->p, it->end, &delta) || delta == 0 ||
	    delta >= MAIL_FTS_TERM_LIMIT ||
	    !get_varint(&it->p, it->end, &v) || !dir_len_field(it, v))
		return false;
	it->term += (uint32_t)delta;
	return true;
}

/* The posting bytes of term t: 1 found, 0 absent, -1 damaged. */
int
store_ftsseg_lookup(const struct seg *s, uint32_t t, const unsigned char **p_r,
    size_t *len_r, bool *bitmap_r)
{
	uint32_t lo = 0, hi = s->nskip;
	struct seg_dir_it it;

	/* the last skip entry whose term is <= t */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (store_ftsseg_ld32(s->skip + (size_t)mid * 12) <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	if (!store_ftsseg_dir_start(s, lo - 1, &it))
		return -1;
	for (;;) {
		if (it.term == t) {
			*p_r = s->post + it.post_off;
			*len_r = (size_t)it.post_len;
			*bitmap_r = it.bitmap;
			return 1;
		}
		if (it.term > t || (it.index + 1) % SKIP_EVERY == 0 ||
		    it.index + 1 >= s->nterms)
			return 0;
		if (!store_ftsseg_dir_next(&it))
			return -1;
	}
}

static void
ords_push(uint32_t **v, size_t *n, size_t *cap, uint32_t ord)
{
	if (*n == *cap) {
		*cap = *cap == 0 ? 256 : *cap * 2;
		*v = xreallocarray(*v, *cap, sizeof(**v));
	}
	(*v)[(*n)++] = ord;
}

/* Decodes a posting list into ordinals (appended to *v, ascending); -1
 * damaged. A bitmap has bitmap_len(ndocs) bytes, no bit at or past
 * ndocs, and at least one bit set (a term is written only with docs). */
int
store_ftsseg_postings(const struct seg *s, const unsigned char *p, size_t len,
    bool bitmap, uint32_t **v, size_t *n, size_t *cap)
{
	const unsigned char *end = p + len;
	uint64_t ord = 0, d;
	bool first = true;

	if (bitmap) {
		size_t before = *n;

		if (len != bitmap_len(s->ndocs))
			return -1;
		for (size_t i = 0; i < len; i++)
			for (unsigned b = p[i]; b != 0; b &= b - 1) {
				uint32_t o = (uint32_t)(i * 8) +
				    (uint32_t)__builtin_ctz(b);

				if (o >= s->ndocs)
					return -1;
				ords_push(v, n, cap, o);
			}
		return *n > before ? 0 : -1;
	}
	while (p < end) {
		if (!get_varint(&p, end, &d))
			return -1;
		ord = first ? d : ord + d;
		if ((!first && d == 0) || ord >= s->ndocs)
			return -1;
		first = false;
		ords_push(v, n, cap, (uint32_t)ord);
	}
	return 0;
}

/* ---- building a segment ---- */


int
store_ftsseg_doc_cmp(const void *a, const void *b)
{
	const struct fts_doc *x = a, *y = b;

	return x->body_id < y->body_id ? -1 : x->body_id > y->body_id;
}

/*
 * Stable LSD radix sort of (term << 32 | ordinal) pairs by term: three
 * passes of 9 bits (512 counters each, all three counted in one read),
 * so each pass scatters to few enough places to stay in cache.
 */
static void
pairs_sort(uint64_t *v, uint64_t *tmp, size_t n)
{
	uint64_t *src = v, *dst = tmp;
	size_t (*count)[513] = xcalloc(3, sizeof(*count));

	for (size_t i = 0; i < n; i++) {
		uint32_t t = (uint32_t)(v[i] >> 32);

		count[0][(t & 511) + 1]++;
		count[1][((t >> 9) & 511) + 1]++;
		count[2][((t >> 18) & 511) + 1]++;
	}
	for (unsigned p = 0; p < 3; p++) {
		unsigned shift = 32 + 9 * p;

		for (size_t i = 1; i < 513; i++)
			count[p][i] += count[p][i - 1];
		for (size_t i = 0; i < n; i++)
			dst[count[p][(src[i] >> shift) & 511]++] = src[i];
		uint64_t *sw = src;
		src = dst;
		dst = sw;
	}
	/* three passes: the sorted pairs are in tmp */
	memcpy(v, src, n * sizeof(*v));
	free(count);
}

/*
 * The pairs of a batch and the sort's second array, kept per thread up
 * to PAIRS_KEEP entries: fresh megabytes per batch cost a page fault per
 * 4 KB (a third of the build). A bigger batch allocates its own.
 */
#define PAIRS_KEEP ((size_t)256 * 1024)	/* 2 x 2 MB */

struct pairs_scratch {
	uint64_t *v;	/* 2 * PAIRS_KEEP */
};

static pthread_key_t pairs_key;
static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;

static void
pairs_scratch_free(void *p)
{
	struct pairs_scratch *ps = p;

	free(ps->v);
	free(ps);
}

static void
pairs_key_init(void)
{
	PG_ASSERT(pthread_key_create(&pairs_key, pairs_scratch_free) == 0);
}

/* Room for 2 * n pairs; *own_r set when the caller must free it. */
static uint64_t *
pairs_room(size_t n, bool *own_r)
{
	struct pairs_scratch *ps;

	*own_r = n > PAIRS_KEEP;
	if (*own_r)
		return xreallocarray(NULL, n, 2 * sizeof(uint64_t));
	PG_ASSERT(pthread_once(&pairs_once, pairs_key_init) == 0);
	ps = pthread_getspecific(pairs_key);
	if (ps == NULL) {
		ps = xcalloc(1, sizeof(*ps));
		ps->v = xreallocarray(NULL, PAIRS_KEEP, 2 * sizeof(uint64_t));
		PG_ASSERT(pthread_setspecific(pairs_key, ps) == 0);
	}
	return ps->v;
}


void
store_ftsseg_w_begin(struct seg_writer *w)
{
	w->start = w->post.len;
	w->any = false;
}

void
store_ftsseg_w_add(struct seg_writer *w, uint32_t ord)
{
	if (w->any && ord <= w->prev_ord)
		return;		/* repeated (never smaller: callers sort) */
	put_varint(&w->post, w->any ? ord - w->prev_ord : ord);
	w->prev_ord = ord;
	w->any = true;
}

/* Rewrites the term's delta varints (post[start..]) as a bitmap when
 * that is shorter: common trigrams are in most documents of a segment,
 * where a bit per document beats a byte per posting. Returns the
 * directory's length field (len << 1 | bitmap). */
static uint64_t
sw_maybe_bitmap(struct seg_writer *w)
{
	size_t len = w->post.len - w->start, blen = bitmap_len(w->ndocs);
	unsigned char *p, *end;
	unsigned char bits[512];
	unsigned char *bm;
	uint64_t ord = 0, d;
	bool first = true;

	if (blen >= len)
		return (uint64_t)len << 1;
	bm = blen <= sizeof(bits) ? bits : xmalloc(blen);
	memset(bm, 0, blen);
	p = (unsigned char *)w->post.data + w->start;
	end = p + len;
	while (p < end) {
		/* our own varints: sound by construction */
		PG_ASSERT(get_varint((const unsigned char **)&p, end, &d));
		ord = first ? d : ord + d;
		first = false;
		PG_ASSERT(ord < w->ndocs);
		bm[ord / 8] |= (unsigned char)(1u << (ord % 8));
	}
	w->post.len = w->start;
	strbuf_append(&w->post, bm, blen);
	if (bm != bits)
		free(bm);
	return (uint64_t)blen << 1 | 1;
}

void
store_ftsseg_w_end(struct seg_writer *w, uint32_t term)
{
	uint64_t lenf;

	if (!w->any)
		return;		/* every doc of it is gone */
	lenf = sw_maybe_bitmap(w);
	if (w->nterms % SKIP_EVERY == 0) {
		put_u32(&w->skip, term);
		put_u32(&w->skip, (uint32_t)w->dir.len);
		put_u32(&w->skip, (uint32_t)w->start);
	} else {
		put_varint(&w->dir, term - w->prev_term);
	}
	put_varint(&w->dir, lenf);
	w->prev_term = term;
	w->nterms++;
}

/* The frame around what was written: docs[ndocs] ascending, sat[]. */
void
store_ftsseg_w_finish(struct seg_writer *w, const uint64_t *docs, size_t ndocs,
    const uint32_t *sat, size_t nsat, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_reserve(out, STORE_FTSSEG_HDR + ndocs * 8 + nsat * 4 +
	    w->skip.len + 4 + w->dir.len + w->post.len);
	strbuf_append(out, SEG_MAGIC, 4);
	strbuf_appendc(out, SEG_VERSION);
	strbuf_append(out, "\0\0\0", 3);
	put_u32(out, (uint32_t)ndocs);
	put_u32(out, (uint32_t)w->nterms);
	put_u32(out, (uint32_t)nsat);
	put_u32(out, (uint32_t)((w->nterms + SKIP_EVERY - 1) / SKIP_EVERY));
	strbuf_append(out, docs, ndocs * 8);
	strbuf_append(out, sat, nsat * 4);
	strbuf_append(out, w->skip.data, w->skip.len);
	put_u32(out, (uint32_t)w->dir.len);
	strbuf_append(out, w->dir.data, w->dir.len);
	strbuf_append(out, w->post.data, w->post.len);
	strbuf_free(&w->dir);
	strbuf_free(&w->post);
	strbuf_free(&w->skip);
}

/*
 * Encodes docs (sorted by body id, unique) into a segment blob. The
 * ordinal of docs[i] is i.
 */
void
store_ftsseg_build(const struct fts_doc *docs, size_t ndocs, struct strbuf *out)
{
	struct seg_writer w;
	uint64_t *pairs, *ids = xcalloc(ndocs > 0 ? ndocs : 1, sizeof(*ids));
	uint32_t *sat = xcalloc(ndocs > 0 ? ndocs : 1, sizeof(*sat));
	size_t npairs = 0, nsat = 0, i;
	bool own;

	memset(&w, 0, sizeof(w));
	w.ndocs = (uint32_t)ndocs;
	for (i = 0; i < ndocs; i++) {
		npairs += docs[i].saturated ? 0 : docs[i].count;
		ids[i] = docs[i].body_id;
		if (docs[i].saturated)
			sat[nsat++] = (uint32_t)i;
	}
	pairs = pairs_room(npairs > 0 ? npairs : 1, &own);
	/* about a byte per posting, three per term */
	strbuf_reserve(&w.post, npairs + 16);
	strbuf_reserve(&w.dir, npairs / 2 + 16);
	npairs = 0;
	for (i = 0; i < ndocs; i++) {
		if (docs[i].saturated)
			continue;
		for (size_t k = 0; k < docs[i].count; k++)
			pairs[npairs++] = (uint64_t)docs[i].terms[k] << 32 | i;
	}
	pairs_sort(pairs, pairs + (npairs > 0 ? npairs : 1), npairs);
	for (i = 0; i < npairs;) {
		uint32_t term = (uint32_t)(pairs[i] >> 32);

		store_ftsseg_w_begin(&w);
		for (; i < npairs && (uint32_t)(pairs[i] >> 32) == term; i++)
			store_ftsseg_w_add(&w, (uint32_t)pairs[i]);
		store_ftsseg_w_end(&w, term);
	}
	if (own)
		free(pairs);
	store_ftsseg_w_finish(&w, ids, ndocs, sat, nsat, out);
	free(ids);
	free(sat);
}


int
store_ftsseg_mdoc_cmp(const void *a, const void *b)
{
	const struct merge_doc *x = a, *y = b;

	return x->body_id < y->body_id ? -1 : x->body_id > y->body_id;
}

/* Fills docs[0..s->ndocs) (zeroed by the caller) with the segment's
 * documents: body id, saturation, and their terms (ascending, as the
 * directory is). -1 when the segment is damaged. */
int
store_ftsseg_invert(const struct seg *s, struct merge_doc *docs)
{
	struct seg_dir_it it;
	uint32_t *ords = NULL, prev = 0;
	size_t nords = 0, ocap = 0;
	int ret = -1;

	for (uint32_t d = 0; d < s->ndocs; d++)
		docs[d].body_id = store_ftsseg_doc(s, d);
	for (uint32_t d = 0; d < s->nsat; d++) {
		uint32_t o = store_ftsseg_ld32(s->sat + (size_t)d * 4);

		if (o >= s->ndocs)
			return -1;
		docs[o].saturated = true;
	}
	if (s->nterms == 0)
		return 0;
	if (!store_ftsseg_dir_start(s, 0, &it))
		return -1;
	for (;;) {
		nords = 0;
		if ((it.index > 0 && it.term <= prev) ||
		    store_ftsseg_postings(s, s->post + it.post_off,
		    (size_t)it.post_len, it.bitmap, &ords, &nords,
		    &ocap) < 0 ||
		    nords == 0)
			goto out;
		prev = it.term;
		for (size_t k = 0; k < nords; k++) {
			struct merge_doc *md = &docs[ords[k]];

			if (md->count == md->cap) {
				md->cap = md->cap == 0 ? 64 : md->cap * 2;
				md->terms = xreallocarray(md->terms, md->cap,
				    sizeof(*md->terms));
			}
			md->terms[md->count++] = it.term;
		}
		if (it.index + 1 >= s->nterms)
			break;
		if (!store_ftsseg_dir_next(&it))
			goto out;
	}
	ret = 0;
out:
	free(ords);
	return ret;
}

long long
store_fts_segment_check(const void *blob, size_t size)
{
	struct seg s;
	struct seg_dir_it it;
	struct merge_doc *docs;
	uint32_t *ords = NULL;
	size_t nords = 0, ocap = 0;
	long long total = 0;
	int rc = 0;

	if (store_ftsseg_open(blob, size, &s) < 0)
		return -1;
	if (s.nterms > 0) {
		if (!store_ftsseg_dir_start(&s, 0, &it))
			return -1;
		for (;;) {
			const unsigned char *p;
			size_t len;
			bool bm;

			nords = 0;
			/* the skip table finds the same posting bytes */
			if (store_ftsseg_postings(&s, s.post + it.post_off,
			    (size_t)it.post_len, it.bitmap, &ords, &nords,
			    &ocap) < 0 ||
			    store_ftsseg_lookup(&s, it.term, &p, &len,
			    &bm) != 1 ||
			    p != s.post + it.post_off || len != it.post_len ||
			    bm != it.bitmap) {
				rc = -1;
				break;
			}
			total += (long long)nords;
			if (it.index + 1 >= s.nterms)
				break;
			if (!store_ftsseg_dir_next(&it)) {
				rc = -1;
				break;
			}
		}
	}
	free(ords);
	if (rc < 0)
		return -1;
	docs = xcalloc(s.ndocs > 0 ? s.ndocs : 1, sizeof(*docs));
	rc = store_ftsseg_invert(&s, docs);
	for (uint32_t d = 0; d < s.ndocs; d++)
		free(docs[d].terms);
	free(docs);
	return rc < 0 ? -1 : total;
}

