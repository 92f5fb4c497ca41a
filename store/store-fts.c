/*
 * store-fts — the full-text index: trigram posting lists kept in LMDB
 * beside the messages, written in the same transactions (docs/store.md,
 * "Full-text index").
 *
 * Postings are keyed by body: COPY and MOVE share a body and so its
 * postings; a body freed by its last expunge is marked dead in its
 * segment. Each user's index is a set of immutable segments (a small LSM
 * tree): a delivery writes one segment for its messages (one put of a
 * compact blob, never a page per term), and a bounded merge afterwards
 * keeps the number of segments low and drops dead bodies.
 *
 * Segment blob (version 2; native byte order, like the rest of the store):
 *
 *   "PGFT" u8 version u8[3] 0
 *   u32 ndocs, u32 nterms, u32 nsat, u32 nskip
 *   u64 docs[ndocs]            body ids, ascending (ordinal = index)
 *   u32 sat[nsat]              ordinals of saturated docs, ascending
 *   skip[nskip] { u32 term, u32 dir_off, u32 post_off }   every 32nd term
 *   u32 dir_len, dir bytes     per term: [varint term delta, unless it
 *                              starts a skip block] varint posting bytes
 *   postings                   per term: varint first ordinal, varint
 *                              deltas of the next ordinals
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mail-fts.h"
#include "mail-message.h"
#include "mail-parse.h"
#include "mail-serialize.h"
#include "store-private.h"
#include "strbuf.h"
#include "xmalloc.h"

#define SEG_MAGIC "PGFT"
/* 2: a term's posting bytes may be a bitmap (directory length field
 * len << 1 | 1); 1: delta varints only (still read). */
#define SEG_VERSION 2
#define SEG_HDR 24
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

static uint32_t
ld32(const unsigned char *p)
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

struct seg {
	unsigned version;
	const unsigned char *base;
	size_t size;
	uint32_t ndocs, nterms, nsat, nskip;
	const unsigned char *docs, *sat, *skip, *dir, *post;
	size_t dir_len, post_len;
};

/* Parses the frame of a segment blob; -1 if it is not a sound one. */
static int
seg_open(const void *data, size_t size, struct seg *s)
{
	const unsigned char *p = data;
	uint64_t need;

	memset(s, 0, sizeof(*s));
	if (size < SEG_HDR + 4 || memcmp(p, SEG_MAGIC, 4) != 0 ||
	    p[4] < 1 || p[4] > SEG_VERSION)
		return -1;
	s->version = p[4];
	s->base = p;
	s->size = size;
	s->ndocs = ld32(p + 8);
	s->nterms = ld32(p + 12);
	s->nsat = ld32(p + 16);
	s->nskip = ld32(p + 20);
	need = SEG_HDR + (uint64_t)s->ndocs * 8 + (uint64_t)s->nsat * 4 +
	    (uint64_t)s->nskip * 12 + 4;
	if (need > size || s->nsat > s->ndocs ||
	    s->nskip != (s->nterms + SKIP_EVERY - 1) / SKIP_EVERY)
		return -1;
	s->docs = p + SEG_HDR;
	s->sat = s->docs + (size_t)s->ndocs * 8;
	s->skip = s->sat + (size_t)s->nsat * 4;
	s->dir_len = ld32(s->skip + (size_t)s->nskip * 12);
	s->dir = s->skip + (size_t)s->nskip * 12 + 4;
	if (s->dir_len > size - (size_t)(s->dir - p))
		return -1;
	s->post = s->dir + s->dir_len;
	s->post_len = size - (size_t)(s->post - p);
	return 0;
}

static uint64_t
seg_doc(const struct seg *s, uint32_t ord)
{
	return ld64(s->docs + (size_t)ord * 8);
}

/* Ordinal of body id b in s, or -1. */
static int64_t
seg_find_doc(const struct seg *s, uint64_t b)
{
	uint32_t lo = 0, hi = s->ndocs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t v = seg_doc(s, mid);

		if (v == b)
			return mid;
		if (v < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Iterates the directory from skip block k: term, posting range. */
struct seg_dir_it {
	const struct seg *s;
	const unsigned char *p, *end;
	uint32_t index;		/* term index of the current entry */
	uint32_t term;
	uint64_t post_off, post_len;
	bool bitmap;		/* the posting bytes are a bitmap */
};

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

static bool
dir_block_start(const struct seg *s, uint32_t k, struct seg_dir_it *it)
{
	const unsigned char *e = s->skip + (size_t)k * 12;
	uint32_t dir_off = ld32(e + 4);
	uint64_t v;

	it->s = s;
	it->index = k * SKIP_EVERY;
	it->term = ld32(e);
	it->post_off = ld32(e + 8);
	if (dir_off > s->dir_len)
		return false;
	it->p = s->dir + dir_off;
	it->end = s->dir + s->dir_len;
	return get_varint(&it->p, it->end, &v) && dir_len_field(it, v);
}

/* Moves to the next entry; false at the end or on a damaged directory. */
static bool
dir_next(struct seg_dir_it *it)
{
	uint64_t delta, v;

	if (it->index + 1 >= it->s->nterms)
		return false;
	it->index++;
	if (it->index % SKIP_EVERY == 0)
		return dir_block_start(it->s, it->index / SKIP_EVERY, it);
	it->post_off += it->post_len;
	if (!get_varint(&it->p, it->end, &delta) || delta == 0 ||
	    delta >= MAIL_FTS_TERM_LIMIT ||
	    !get_varint(&it->p, it->end, &v) || !dir_len_field(it, v))
		return false;
	it->term += (uint32_t)delta;
	return true;
}

/* The posting bytes of term t: 1 found, 0 absent, -1 damaged. */
static int
seg_lookup(const struct seg *s, uint32_t t, const unsigned char **p_r,
    size_t *len_r, bool *bitmap_r)
{
	uint32_t lo = 0, hi = s->nskip;
	struct seg_dir_it it;

	/* the last skip entry whose term is <= t */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (ld32(s->skip + (size_t)mid * 12) <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	if (!dir_block_start(s, lo - 1, &it))
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
		if (!dir_next(&it))
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
static int
postings_decode(const struct seg *s, const unsigned char *p, size_t len,
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

/* One document going into a new segment. */
struct fts_doc {
	uint64_t body_id;
	const uint32_t *terms;
	size_t count;
	bool saturated;
};

static int
doc_cmp(const void *a, const void *b)
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

static void
sw_term_begin(struct seg_writer *w)
{
	w->start = w->post.len;
	w->any = false;
}

static void
sw_add(struct seg_writer *w, uint32_t ord)
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

static void
sw_term_end(struct seg_writer *w, uint32_t term)
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
static void
sw_finish(struct seg_writer *w, const uint64_t *docs, size_t ndocs,
    const uint32_t *sat, size_t nsat, struct strbuf *out)
{
	strbuf_reset(out);
	strbuf_reserve(out, SEG_HDR + ndocs * 8 + nsat * 4 + w->skip.len +
	    4 + w->dir.len + w->post.len);
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
static void
seg_build(const struct fts_doc *docs, size_t ndocs, struct strbuf *out)
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

		sw_term_begin(&w);
		for (; i < npairs && (uint32_t)(pairs[i] >> 32) == term; i++)
			sw_add(&w, (uint32_t)pairs[i]);
		sw_term_end(&w, term);
	}
	if (own)
		free(pairs);
	sw_finish(&w, ids, ndocs, sat, nsat, out);
	free(ids);
	free(sat);
}

/* ---- keys and segment records ---- */

struct seginfo {
	uint32_t ndocs;
	uint32_t ndead;
	uint64_t bytes;
	uint64_t min_body;
	uint64_t max_body;
};

static void
seg_key(struct store_key *k, uint32_t user_id, uint64_t seg_id)
{
	store_key_init(k);
	store_key_u32(k, user_id);
	store_key_u64(k, seg_id);
}

/* The user's segments, from their info records, in id order. */
struct seglist {
	uint64_t *ids;
	struct seginfo *info;
	size_t n, cap;
};

static void
seglist_free(struct seglist *l)
{
	free(l->ids);
	free(l->info);
	memset(l, 0, sizeof(*l));
}

static int
seglist_load(struct store *store, MDB_txn *txn, uint32_t user_id,
    struct seglist *l, const char **error_r)
{
	struct store_key k;
	MDB_cursor *cur;
	MDB_val key, data;
	int rc;

	memset(l, 0, sizeof(*l));
	store_key_init(&k);
	store_key_u32(&k, user_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_FTS_SEGINFO],
	    &cur)) != 0)
		return store_fail_mdb(store, error_r, rc, "index cursor");
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		if (key.mv_size == 12 && data.mv_size == sizeof(struct seginfo)) {
			if (l->n == l->cap) {
				l->cap = l->cap == 0 ? 16 : l->cap * 2;
				l->ids = xreallocarray(l->ids, l->cap,
				    sizeof(*l->ids));
				l->info = xreallocarray(l->info, l->cap,
				    sizeof(*l->info));
			}
			l->ids[l->n] = store_get_u64((unsigned char *)
			    key.mv_data + 4);
			memcpy(&l->info[l->n], data.mv_data,
			    sizeof(struct seginfo));
			l->n++;
		}
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		seglist_free(l);
		return store_fail_mdb(store, error_r, rc, "index list");
	}
	return 0;
}

static int
seg_get(struct store *store, MDB_txn *txn, uint32_t user_id, uint64_t id,
    struct seg *s, const char **error_r)
{
	struct store_key k;
	MDB_val key, data;
	int rc;

	seg_key(&k, user_id, id);
	key = store_key_val(&k);
	if ((rc = mdb_get(txn, store->dbi[DB_FTS_SEGS], &key, &data)) != 0)
		return store_fail_mdb(store, error_r, rc, "index segment");
	if (seg_open(data.mv_data, data.mv_size, s) < 0)
		return store_fail(store, error_r, STORE_ERR_IO,
		    "store: index segment %llu of user %u is damaged",
		    (unsigned long long)id, user_id);
	return 0;
}

/* Writes blob as a new segment of the user (id: one past the highest). */
/* Puts segment bytes[0..size) as the user's segment next_id; with ids,
 * its body ids are those (ndocs of them), written straight into the
 * map's page (MDB_RESERVE: no copy of the blob on the heap). */
static int
seg_put_ids(struct store *store, MDB_txn *txn, uint32_t user_id,
    const void *bytes, size_t size, const uint64_t *ids, uint64_t next_id,
    const char **error_r)
{
	struct seginfo si;
	struct seg s;
	struct store_key k;
	MDB_val key, data;
	int rc;

	if (seg_open(bytes, size, &s) < 0 || s.ndocs == 0)
		return 0;	/* nothing to index */
	memset(&si, 0, sizeof(si));
	si.ndocs = s.ndocs;
	si.bytes = size;
	si.min_body = ids != NULL ? ids[0] : seg_doc(&s, 0);
	si.max_body = ids != NULL ? ids[s.ndocs - 1] : seg_doc(&s,
	    s.ndocs - 1);
	seg_key(&k, user_id, next_id);
	key = store_key_val(&k);
	data.mv_data = NULL;
	data.mv_size = size;
	if ((rc = mdb_put(txn, store->dbi[DB_FTS_SEGS], &key, &data,
	    MDB_RESERVE)) != 0)
		return store_fail_mdb(store, error_r, rc, "index segment");
	memcpy(data.mv_data, bytes, size);
	if (ids != NULL)
		memcpy((unsigned char *)data.mv_data + SEG_HDR, ids,
		    (size_t)s.ndocs * sizeof(*ids));
	data.mv_data = &si;
	data.mv_size = sizeof(si);
	if ((rc = mdb_put(txn, store->dbi[DB_FTS_SEGINFO], &key, &data,
	    0)) != 0)
		return store_fail_mdb(store, error_r, rc, "index segment info");
	return 0;
}

static int
seg_put(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct strbuf *blob, uint64_t next_id, const char **error_r)
{
	return seg_put_ids(store, txn, user_id, blob->data, blob->len, NULL,
	    next_id, error_r);
}

static int
seg_del(struct store *store, MDB_txn *txn, uint32_t user_id, uint64_t id,
    const char **error_r)
{
	struct store_key k;
	MDB_val key;
	int rc;

	seg_key(&k, user_id, id);
	key = store_key_val(&k);
	rc = mdb_del(txn, store->dbi[DB_FTS_SEGS], &key, NULL);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = mdb_del(txn, store->dbi[DB_FTS_SEGINFO], &key, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store_fail_mdb(store, error_r, rc, "index segment");
	return 0;
}

static uint64_t
seglist_next_id(const struct seglist *l)
{
	return l->n == 0 ? 1 : l->ids[l->n - 1] + 1;
}

/* ---- merging ---- */

/* Which size tier a segment is in: merges join segments of one tier. */
static unsigned
tier(uint64_t bytes)
{
	unsigned t = 0;

	for (bytes /= STORE_FTS_TIER_BASE; bytes > 0;
	    bytes /= STORE_FTS_MERGE_FANIN)
		t++;
	return t;
}

/* Not merged any more (only compacted). */
static bool
seg_final(const struct seginfo *si)
{
	return si->bytes * 4 > STORE_FTS_SEGMENT_MAX;
}

static bool
body_alive(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id)
{
	struct store_key k;
	MDB_val key, data;

	store_key_init(&k);
	store_key_u32(&k, user_id);
	store_key_u64(&k, body_id);
	key = store_key_val(&k);
	return mdb_get(txn, store->dbi[DB_BODYINFO], &key, &data) == 0;
}

/* One decoded input of a merge. */
struct merge_doc {
	uint64_t body_id;
	uint32_t *terms;
	size_t count, cap;
	bool saturated;
};

static int
merge_doc_cmp(const void *a, const void *b)
{
	const struct merge_doc *x = a, *y = b;

	return x->body_id < y->body_id ? -1 : x->body_id > y->body_id;
}

/* Fills docs[0..s->ndocs) (zeroed by the caller) with the segment's
 * documents: body id, saturation, and their terms (ascending, as the
 * directory is). -1 when the segment is damaged. */
static int
seg_invert(const struct seg *s, struct merge_doc *docs)
{
	struct seg_dir_it it;
	uint32_t *ords = NULL, prev = 0;
	size_t nords = 0, ocap = 0;
	int ret = -1;

	for (uint32_t d = 0; d < s->ndocs; d++)
		docs[d].body_id = seg_doc(s, d);
	for (uint32_t d = 0; d < s->nsat; d++) {
		uint32_t o = ld32(s->sat + (size_t)d * 4);

		if (o >= s->ndocs)
			return -1;
		docs[o].saturated = true;
	}
	if (s->nterms == 0)
		return 0;
	if (!dir_block_start(s, 0, &it))
		return -1;
	for (;;) {
		nords = 0;
		if ((it.index > 0 && it.term <= prev) ||
		    postings_decode(s, s->post + it.post_off,
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
		if (!dir_next(&it))
			goto out;
	}
	ret = 0;
out:
	free(ords);
	return ret;
}

/* Replaces segments ids[0..n) of the user by blob (none when empty). */
static int
seg_replace(struct store *store, MDB_txn *txn, uint32_t user_id,
    const uint64_t *ids, size_t n, const struct strbuf *blob,
    uint64_t new_id, const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		if (seg_del(store, txn, user_id, ids[i], error_r) < 0)
			return -1;
	if (blob->len > 0 &&
	    seg_put(store, txn, user_id, blob, new_id, error_r) < 0)
		return -1;
	return 0;
}

static int merge_invert(struct store *store, MDB_txn *txn, uint32_t user_id,
    const uint64_t *ids, size_t n, uint64_t new_id, const char **error_r);

/* One input of a streaming merge. */
struct min_in {
	struct seg s;
	struct seg_dir_it it;
	bool live;		/* it is at a term */
	int64_t *map;		/* ordinal -> new ordinal, -1: dead */
};

static int
min_in_cmp(const void *a, const void *b)
{
	const struct min_in *x = a, *y = b;
	uint64_t p = seg_doc(&x->s, 0), q = seg_doc(&y->s, 0);

	return p < q ? -1 : p > q;
}

/*
 * The usual merge: inputs whose body-id ranges do not overlap (segments
 * of successive deliveries) are joined term by term, their postings
 * renumbered and concatenated; linear, nothing sorted. Returns 1 without
 * writing when the ranges overlap (the caller then merges by inverting).
 */
static int
merge_stream(struct store *store, MDB_txn *txn, uint32_t user_id,
    const uint64_t *ids, size_t n, uint64_t new_id, const char **error_r)
{
	struct min_in *in = xcalloc(n, sizeof(*in));
	struct seg_writer w;
	uint64_t *docs = NULL;
	uint32_t *sat = NULL, *ords = NULL;
	size_t ndocs = 0, nsat = 0, total = 0, nords = 0, ocap = 0;
	struct strbuf blob = STRBUF_INIT;
	int ret = -1;

	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < n; i++) {
		if (seg_get(store, txn, user_id, ids[i], &in[i].s,
		    error_r) < 0)
			goto out;
		if (in[i].s.ndocs == 0)
			goto damaged;
		total += in[i].s.ndocs;
	}
	qsort(in, n, sizeof(*in), min_in_cmp);
	for (size_t i = 1; i < n; i++) {
		if (seg_doc(&in[i - 1].s, in[i - 1].s.ndocs - 1) >=
		    seg_doc(&in[i].s, 0)) {
			ret = 1;
			goto out;
		}
	}
	docs = xcalloc(total, sizeof(*docs));
	sat = xcalloc(total, sizeof(*sat));
	for (size_t i = 0; i < n; i++) {
		struct seg *s = &in[i].s;

		in[i].map = xcalloc(s->ndocs, sizeof(*in[i].map));
		for (uint32_t d = 0; d < s->ndocs; d++) {
			uint64_t b = seg_doc(s, d);

			if (body_alive(store, txn, user_id, b)) {
				in[i].map[d] = (int64_t)ndocs;
				docs[ndocs++] = b;
			} else {
				in[i].map[d] = -1;
			}
		}
		for (uint32_t k = 0; k < s->nsat; k++) {
			uint32_t o = ld32(s->sat + (size_t)k * 4);

			if (o >= s->ndocs)
				goto damaged;
			if (in[i].map[o] >= 0)
				sat[nsat++] = (uint32_t)in[i].map[o];
		}
		if (s->nterms > 0) {
			if (!dir_block_start(s, 0, &in[i].it))
				goto damaged;
			in[i].live = true;
		}
	}
	w.ndocs = (uint32_t)ndocs;
	for (;;) {
		uint32_t term = UINT32_MAX;
		bool any = false;

		for (size_t i = 0; i < n; i++)
			if (in[i].live && (!any || in[i].it.term < term)) {
				term = in[i].it.term;
				any = true;
			}
		if (!any)
			break;
		sw_term_begin(&w);
		for (size_t i = 0; i < n; i++) {
			struct min_in *x = &in[i];

			if (!x->live || x->it.term != term)
				continue;
			nords = 0;
			if (postings_decode(&x->s, x->s.post + x->it.post_off,
			    (size_t)x->it.post_len, x->it.bitmap, &ords, &nords,
			    &ocap) < 0)
				goto damaged;
			for (size_t k = 0; k < nords; k++)
				if (x->map[ords[k]] >= 0)
					sw_add(&w, (uint32_t)x->map[ords[k]]);
			if (x->it.index + 1 >= x->s.nterms)
				x->live = false;
			else if (!dir_next(&x->it))
				goto damaged;
		}
		sw_term_end(&w, term);
	}
	if (ndocs > 0)
		sw_finish(&w, docs, ndocs, sat, nsat, &blob);
	if (seg_replace(store, txn, user_id, ids, n, &blob, new_id,
	    error_r) < 0)
		goto out;
	ret = 0;
	goto out;
damaged:
	store_fail(store, error_r, STORE_ERR_IO, "store: index segment of "
	    "user %u is damaged", user_id);
out:
	for (size_t i = 0; i < n; i++)
		free(in[i].map);
	free(in);
	free(docs);
	free(sat);
	free(ords);
	strbuf_free(&w.dir);
	strbuf_free(&w.post);
	strbuf_free(&w.skip);
	strbuf_free(&blob);
	return ret;
}

/*
 * Merges segments ids[0..n) of the user into one (dropping dead bodies)
 * and deletes them. Inverts back to documents and builds anew: simple,
 * and bounded by STORE_FTS_SEGMENT_MAX per merge.
 */
static int
merge(struct store *store, MDB_txn *txn, uint32_t user_id,
    const uint64_t *ids, size_t n, uint64_t new_id, const char **error_r)
{
	int rc = merge_stream(store, txn, user_id, ids, n, new_id, error_r);

	if (rc <= 0)
		return rc;
	return merge_invert(store, txn, user_id, ids, n, new_id, error_r);
}

static int
merge_invert(struct store *store, MDB_txn *txn, uint32_t user_id,
    const uint64_t *ids, size_t n, uint64_t new_id, const char **error_r)
{
	struct merge_doc *docs = NULL;
	struct fts_doc *fd = NULL;
	size_t ndocs = 0, cap = 0, w = 0;
	struct strbuf blob = STRBUF_INIT;
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		struct seg s;

		if (seg_get(store, txn, user_id, ids[i], &s, error_r) < 0)
			goto out;
		if (ndocs + s.ndocs > cap) {
			cap = (ndocs + s.ndocs) * 2;
			docs = xreallocarray(docs, cap, sizeof(*docs));
		}
		memset(docs + ndocs, 0, s.ndocs * sizeof(*docs));
		ndocs += s.ndocs;
		if (seg_invert(&s, docs + ndocs - s.ndocs) < 0) {
			store_fail(store, error_r, STORE_ERR_IO, "store: index "
			    "segment of user %u is damaged", user_id);
			goto out;
		}
	}
	/* alive ones only, by body id (a body is in one segment only) */
	for (size_t i = 0; i < ndocs; i++) {
		if (body_alive(store, txn, user_id, docs[i].body_id))
			docs[w++] = docs[i];
		else
			free(docs[i].terms);
	}
	ndocs = w;
	qsort(docs, ndocs, sizeof(*docs), merge_doc_cmp);
	fd = xcalloc(ndocs > 0 ? ndocs : 1, sizeof(*fd));
	for (size_t i = 0; i < ndocs; i++) {
		fd[i].body_id = docs[i].body_id;
		fd[i].terms = docs[i].terms;
		fd[i].count = docs[i].count;
		fd[i].saturated = docs[i].saturated;
	}
	if (ndocs > 0)
		seg_build(fd, ndocs, &blob);
	if (seg_replace(store, txn, user_id, ids, n, &blob, new_id,
	    error_r) < 0)
		goto out;
	ret = 0;
out:
	for (size_t i = 0; i < ndocs; i++)
		free(docs[i].terms);
	free(docs);
	free(fd);
	strbuf_free(&blob);
	return ret;
}

/*
 * At most one merge step for the user: a segment more than half dead is
 * rewritten; else the smallest tier holding STORE_FTS_MERGE_FANIN
 * segments has its segments merged (as many as fit in
 * STORE_FTS_SEGMENT_MAX). In a child transaction: a failure (a full map)
 * leaves the index as it was, still correct, and the caller's write
 * stands. With defer set and fewer than STORE_FTS_DEFER_SEGMENTS
 * segments, the step is only noted (pending_note). Returns 1 when it
 * merged, 0 when there was nothing to do (or it was noted), -1 when the
 * merge failed.
 */
static bool pending_note(struct store *store, uint32_t user_id);

static int
maintain(struct store *store, MDB_txn *txn, uint32_t user_id, bool defer)
{
	struct seglist l;
	uint64_t pick[STORE_FTS_MERGE_FANIN];
	size_t npick = 0;
	const char *err = NULL;
	MDB_txn *child;
	int ret = 0;

	if (seglist_load(store, txn, user_id, &l, &err) < 0)
		return -1;
	for (size_t i = 0; i < l.n && npick == 0; i++)
		if (l.info[i].ndead * 2 > l.info[i].ndocs)
			pick[npick++] = l.ids[i];
	for (unsigned t = 0; npick == 0 && t < 8; t++) {
		size_t count = 0;
		uint64_t bytes = 0;

		for (size_t i = 0; i < l.n; i++)
			if (tier(l.info[i].bytes) == t &&
			    !seg_final(&l.info[i]))
				count++;
		if (count < STORE_FTS_MERGE_FANIN)
			continue;
		for (size_t i = 0; i < l.n && npick < N_ELEMENTS(pick); i++) {
			if (tier(l.info[i].bytes) != t ||
			    seg_final(&l.info[i]))
				continue;
			if (npick >= 2 && bytes + l.info[i].bytes >
			    STORE_FTS_SEGMENT_MAX)
				break;
			bytes += l.info[i].bytes;
			pick[npick++] = l.ids[i];
		}
	}
	if (npick > 0 && defer && l.n < STORE_FTS_DEFER_SEGMENTS &&
	    pending_note(store, user_id))
		npick = 0;
	if (npick > 0 && mdb_txn_begin(store->env, txn, 0, &child) == 0) {
		if (merge(store, child, user_id, pick, npick,
		    seglist_next_id(&l), &err) == 0 &&
		    mdb_txn_commit(child) == 0) {
			ret = 1;
		} else {
			if (err != NULL)
				log_warn("store event=index_merge_failed "
				    "user=%u error=\"%s\"", user_id, err);
			mdb_txn_abort(child);
			ret = -1;
		}
	} else if (npick > 0) {
		ret = -1;
	}
	seglist_free(&l);
	return ret;
}

/* Notes the user for an idle merge step; false when the list is full
 * (the caller merges at once). */
static bool
pending_note(struct store *store, uint32_t user_id)
{
	for (size_t i = 0; i < store->fts_npending; i++)
		if (store->fts_pending[i] == user_id)
			return true;
	if (store->fts_npending == STORE_FTS_PENDING_MAX)
		return false;
	store->fts_pending = xreallocarray(store->fts_pending,
	    store->fts_npending + 1, sizeof(*store->fts_pending));
	store->fts_pending[store->fts_npending++] = user_id;
	return true;
}

void
store_fts_defer_merges(struct store *store, bool defer)
{
	store->fts_defer_merges = defer;
	if (!defer) {
		free(store->fts_pending);
		store->fts_pending = NULL;
		store->fts_npending = 0;
	}
}

int
store_fts_idle_step(struct store *store)
{
	uint32_t user_id;
	MDB_txn *txn;
	int rc = -1;

	if (store->fts_npending == 0)
		return 0;
	user_id = store->fts_pending[0];
	if (mdb_txn_begin(store->env, NULL, 0, &txn) == 0) {
		rc = maintain(store, txn, user_id, false);
		if (rc > 0 && mdb_txn_commit(txn) != 0)
			rc = -1;
		else if (rc <= 0)
			mdb_txn_abort(txn);
	}
	if (rc <= 0) {
		/* done with this user (or it failed: the next delivery
		   notes it again) */
		memmove(store->fts_pending, store->fts_pending + 1,
		    (store->fts_npending - 1) * sizeof(*store->fts_pending));
		store->fts_npending--;
	}
	return 1;
}

/* ---- writing: delivery, expunge, user removal ---- */

bool
store_fts_enabled(const struct store *store)
{
	return store->fts_enabled;
}

int
store_fts_add_docs(struct store *store, MDB_txn *txn, uint32_t user_id,
    const struct store_fts_new_doc *docs, size_t n, const char **error_r)
{
	struct fts_doc *fd = xcalloc(n > 0 ? n : 1, sizeof(*fd));
	struct strbuf blob = STRBUF_INIT;
	struct seglist l;
	size_t m = 0;
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		if (docs[i].doc == NULL)
			continue;
		fd[m].body_id = docs[i].body_id;
		fd[m].terms = docs[i].doc->terms;
		fd[m].count = docs[i].doc->count;
		fd[m].saturated = docs[i].doc->saturated;
		m++;
	}
	if (m == 0) {
		free(fd);
		return 0;
	}
	qsort(fd, m, sizeof(*fd), doc_cmp);
	seg_build(fd, m, &blob);
	if (seglist_load(store, txn, user_id, &l, error_r) < 0)
		goto out;
	ret = seg_put(store, txn, user_id, &blob, seglist_next_id(&l),
	    error_r);
	seglist_free(&l);
	if (ret == 0)
		(void)maintain(store, txn, user_id, store->fts_defer_merges);
out:
	free(fd);
	strbuf_free(&blob);
	return ret;
}

void
store_fts_batch_build(const struct store_fts_doc *const *docs, size_t count,
    struct strbuf *out)
{
	struct fts_doc *fd = xcalloc(count > 0 ? count : 1, sizeof(*fd));

	for (size_t i = 0; i < count; i++) {
		fd[i].body_id = i;	/* placeholders: the writer sets them */
		fd[i].terms = docs[i]->terms;
		fd[i].count = docs[i]->count;
		fd[i].saturated = docs[i]->saturated;
	}
	seg_build(fd, count, out);
	free(fd);
}

int
store_fts_add_batch(struct store *store, MDB_txn *txn, uint32_t user_id,
    const void *blob, size_t size, const uint64_t *body_ids, size_t n,
    const char **error_r)
{
	struct seglist l;
	struct seg s;
	int ret;

	if (seg_open(blob, size, &s) < 0 || s.ndocs != n || n == 0)
		return 1;	/* not this batch's: build from the terms */
	for (size_t i = 1; i < n; i++)
		if (body_ids[i] <= body_ids[i - 1])
			return 1;
	if (seglist_load(store, txn, user_id, &l, error_r) < 0)
		return -1;
	ret = seg_put_ids(store, txn, user_id, blob, size, body_ids,
	    seglist_next_id(&l), error_r);
	seglist_free(&l);
	if (ret == 0)
		(void)maintain(store, txn, user_id, store->fts_defer_merges);
	return ret;
}

int
store_fts_body_freed(struct store *store, MDB_txn *txn, uint32_t user_id,
    uint64_t body_id, const char **error_r)
{
	struct seglist l;
	int ret = 0;

	if (seglist_load(store, txn, user_id, &l, error_r) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		struct seg s;
		struct store_key k;
		MDB_val key, data;
		int rc;

		if (body_id < l.info[i].min_body ||
		    body_id > l.info[i].max_body)
			continue;
		if (seg_get(store, txn, user_id, l.ids[i], &s, error_r) < 0) {
			ret = -1;
			break;
		}
		if (seg_find_doc(&s, body_id) < 0)
			continue;
		if (++l.info[i].ndead >= l.info[i].ndocs) {
			ret = seg_del(store, txn, user_id, l.ids[i], error_r);
			break;
		}
		seg_key(&k, user_id, l.ids[i]);
		key = store_key_val(&k);
		data.mv_data = &l.info[i];
		data.mv_size = sizeof(l.info[i]);
		if ((rc = mdb_put(txn, store->dbi[DB_FTS_SEGINFO], &key,
		    &data, 0)) != 0)
			ret = store_fail_mdb(store, error_r, rc,
			    "index segment info");
		break;
	}
	seglist_free(&l);
	return ret;
}

/* ---- reading: which bodies are indexed, which may hold a needle ---- */

void
store_fts_set_free(struct store_fts_set *set)
{
	free(set->bits);
	memset(set, 0, sizeof(*set));
}

bool
store_fts_set_has(const struct store_fts_set *set, uint64_t body_id)
{
	return body_id < set->nbits &&
	    (set->bits[body_id / 64] >> (body_id % 64) & 1) != 0;
}

static void
set_add(struct store_fts_set *set, uint64_t body_id)
{
	if (body_id < set->nbits)
		set->bits[body_id / 64] |= (uint64_t)1 << (body_id % 64);
}

/* Sizes set for every body id the user has had. */
static int
set_init(struct store_read *r, uint32_t user_id, struct store_fts_set *set,
    const char **error_r)
{
	struct store_userrec urec;

	memset(set, 0, sizeof(*set));
	if (store_userrec_load(r->store, r->txn, user_id, &urec, error_r) < 0)
		return -1;
	set->nbits = urec.next_body_id;
	set->bits = xcalloc(set->nbits / 64 + 1, sizeof(*set->bits));
	return 0;
}

int
store_fts_indexed(struct store_read *r, uint32_t user_id,
    struct store_fts_set *set_r, const char **error_r)
{
	struct store *store = r->store;
	struct seglist l;

	if (set_init(r, user_id, set_r, error_r) < 0)
		return -1;
	if (seglist_load(store, r->txn, user_id, &l, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		struct seg s;

		if (seg_get(store, r->txn, user_id, l.ids[i], &s,
		    error_r) < 0) {
			seglist_free(&l);
			goto fail;
		}
		for (uint32_t d = 0; d < s.ndocs; d++)
			set_add(set_r, seg_doc(&s, d));
	}
	seglist_free(&l);
	return 0;
fail:
	store_fts_set_free(set_r);
	return -1;
}

/* Intersects sorted a[0..*na) with b[0..nb) into a. */
static void
intersect(uint32_t *a, size_t *na, const uint32_t *b, size_t nb)
{
	size_t i = 0, j = 0, w = 0;

	while (i < *na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (a[i] > b[j])
			j++;
		else {
			a[w++] = a[i];
			i++;
			j++;
		}
	}
	*na = w;
}

struct posting_ref {
	const unsigned char *p;
	size_t len;
	bool bitmap;
	size_t est;	/* postings, about: a bitmap is the denser */
};

static int
posting_ref_cmp(const void *a, const void *b)
{
	const struct posting_ref *x = a, *y = b;

	return x->est < y->est ? -1 : x->est > y->est;
}

/* Adds to set the docs of s holding every one of terms[0..n): the
 * shortest posting list first, so that a rare trigram ends the work
 * early; an absent one ends it at once. */
static int
seg_match(const struct seg *s, const uint32_t *terms, size_t n,
    struct store_fts_set *set)
{
	struct posting_ref *refs = xcalloc(n > 0 ? n : 1, sizeof(*refs));
	uint32_t *acc = NULL, *cur = NULL;
	size_t nacc = 0, cacc = 0, ncur = 0, ccur = 0;
	bool all = true;
	int ret = -1;

	for (size_t t = 0; t < n && all; t++) {
		int rc = seg_lookup(s, terms[t], &refs[t].p, &refs[t].len,
		    &refs[t].bitmap);

		refs[t].est = refs[t].bitmap ? refs[t].len * 8 : refs[t].len;

		if (rc < 0)
			goto out;
		all = rc == 1;
	}
	if (all && n > 0) {
		qsort(refs, n, sizeof(*refs), posting_ref_cmp);
		if (postings_decode(s, refs[0].p, refs[0].len, refs[0].bitmap,
		    &acc, &nacc, &cacc) < 0)
			goto out;
		for (size_t t = 1; t < n && nacc > 0; t++) {
			ncur = 0;
			if (postings_decode(s, refs[t].p, refs[t].len,
			    refs[t].bitmap, &cur, &ncur, &ccur) < 0)
				goto out;
			intersect(acc, &nacc, cur, ncur);
		}
		for (size_t i = 0; i < nacc; i++)
			set_add(set, seg_doc(s, acc[i]));
	}
	for (uint32_t i = 0; i < s->nsat; i++) {
		uint32_t o = ld32(s->sat + (size_t)i * 4);

		if (o < s->ndocs)
			set_add(set, seg_doc(s, o));
	}
	ret = 0;
out:
	free(refs);
	free(acc);
	free(cur);
	return ret;
}

int
store_fts_candidates(struct store_read *r, uint32_t user_id,
    unsigned classes, const char *folded, size_t len,
    struct store_fts_set *set_r, const char **error_r)
{
	struct store *store = r->store;
	uint32_t *terms[2] = { NULL, NULL };
	size_t nterms[2] = { 0, 0 };
	struct seglist l;
	int ret = -1;

	memset(set_r, 0, sizeof(*set_r));
	if (len < MAIL_FTS_UNIT)
		return STORE_NOT_FOUND;
	for (unsigned c = 0; c < 2; c++) {
		if ((classes & (1u << c)) == 0)
			continue;
		terms[c] = xreallocarray(NULL, len, sizeof(uint32_t));
		nterms[c] = mail_fts_needle_terms(folded, len, c, terms[c]);
	}
	if (set_init(r, user_id, set_r, error_r) < 0)
		goto out;
	if (seglist_load(store, r->txn, user_id, &l, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		struct seg s;

		if (seg_get(store, r->txn, user_id, l.ids[i], &s,
		    error_r) < 0) {
			seglist_free(&l);
			goto fail;
		}
		for (unsigned c = 0; c < 2; c++) {
			if (nterms[c] > 0 && seg_match(&s, terms[c],
			    nterms[c], set_r) < 0) {
				seglist_free(&l);
				store_fail(store, error_r, STORE_ERR_IO,
				    "store: index segment %llu of user %u is "
				    "damaged", (unsigned long long)l.ids[i],
				    user_id);
				goto fail;
			}
		}
	}
	seglist_free(&l);
	ret = 0;
	goto out;
fail:
	store_fts_set_free(set_r);
out:
	free(terms[0]);
	free(terms[1]);
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

	if (seg_open(blob, size, &s) < 0)
		return -1;
	if (s.nterms > 0) {
		if (!dir_block_start(&s, 0, &it))
			return -1;
		for (;;) {
			const unsigned char *p;
			size_t len;
			bool bm;

			nords = 0;
			/* the skip table finds the same posting bytes */
			if (postings_decode(&s, s.post + it.post_off,
			    (size_t)it.post_len, it.bitmap, &ords, &nords,
			    &ocap) < 0 ||
			    seg_lookup(&s, it.term, &p, &len, &bm) != 1 ||
			    p != s.post + it.post_off || len != it.post_len ||
			    bm != it.bitmap) {
				rc = -1;
				break;
			}
			total += (long long)nords;
			if (it.index + 1 >= s.nterms)
				break;
			if (!dir_next(&it)) {
				rc = -1;
				break;
			}
		}
	}
	free(ords);
	if (rc < 0)
		return -1;
	docs = xcalloc(s.ndocs > 0 ? s.ndocs : 1, sizeof(*docs));
	rc = seg_invert(&s, docs);
	for (uint32_t d = 0; d < s.ndocs; d++)
		free(docs[d].terms);
	free(docs);
	return rc < 0 ? -1 : total;
}

int
store_fts_stat(struct store_read *r, uint32_t user_id,
    struct store_fts_stats *stats_r, const char **error_r)
{
	struct seglist l;

	memset(stats_r, 0, sizeof(*stats_r));
	if (seglist_load(r->store, r->txn, user_id, &l, error_r) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		stats_r->segments++;
		stats_r->docs += l.info[i].ndocs;
		stats_r->dead += l.info[i].ndead;
		stats_r->bytes += l.info[i].bytes;
	}
	seglist_free(&l);
	return 0;
}

/* ---- reindexing ---- */

/* The terms of a stored body, from its bytes and structure as SEARCH
 * loads them (the blob, else a fresh parse). */
static void
body_terms(const void *data, size_t size, const void *blob, size_t blob_len,
    struct mail_fts_terms *t)
{
	struct mail_message *mm = NULL;
	const char *err;

	if (blob_len == 0 || mail_deserialize(blob, blob_len, &mm, &err) < 0)
		mm = mail_parse(data, size, NULL);
	mail_fts_message_terms(data, size, mm, t);
	mail_message_free(&mm);
}

void
store_fts_body_terms(const void *data, size_t size, const void *blob,
    size_t blob_len, struct mail_fts_terms *t)
{
	body_terms(data, size, blob, blob_len, t);
}

int
store_fts_reindex_step(struct store *store, uint32_t user_id,
    size_t max_bytes, bool *done_r, size_t *indexed_r, const char **error_r)
{
	struct store_read rd;
	struct store_fts_set set;
	struct store_key k;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val key, data;
	struct mail_fts_terms *terms = NULL;
	struct store_fts_doc *fdocs = NULL;
	struct store_fts_new_doc *nd = NULL;
	size_t n = 0, cap = 0, bytes = 0;
	int rc;

	*done_r = false;
	*indexed_r = 0;
	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	rd.store = store;
	rd.txn = txn;
	if (store_fts_indexed(&rd, user_id, &set, error_r) < 0)
		goto fail;
	store_key_init(&k);
	store_key_u32(&k, user_id);
	if ((rc = mdb_cursor_open(txn, store->dbi[DB_BODYINFO], &cur)) != 0)
		goto mdb_fail;
	key = store_key_val(&k);
	rc = mdb_cursor_get(cur, &key, &data, MDB_SET_RANGE);
	*done_r = true;
	while (rc == 0 && store_key_has_prefix(&key, &k)) {
		uint64_t b = store_get_u64((unsigned char *)key.mv_data + 4);
		MDB_val bk = key, bd, sd;
		struct store_bodyrec br;

		if (store_fts_set_has(&set, b) || data.mv_size < sizeof(br)) {
			rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
			continue;
		}
		if (bytes >= max_bytes) {
			*done_r = false;
			break;
		}
		memcpy(&br, data.mv_data, sizeof(br));
		if (mdb_get(txn, store->dbi[DB_BODIES], &bk, &bd) != 0) {
			rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
			continue;
		}
		if (br.structure_size == 0 ||
		    mdb_get(txn, store->dbi[DB_STRUCTS], &bk, &sd) != 0) {
			sd.mv_data = NULL;
			sd.mv_size = 0;
		}
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			terms = xreallocarray(terms, cap, sizeof(*terms));
			nd = xreallocarray(nd, cap, sizeof(*nd));
		}
		memset(&terms[n], 0, sizeof(terms[n]));
		body_terms(bd.mv_data, bd.mv_size, sd.mv_data, sd.mv_size,
		    &terms[n]);
		nd[n].body_id = b;
		n++;
		bytes += bd.mv_size + 1;
		rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto mdb_fail;
	fdocs = xcalloc(n > 0 ? n : 1, sizeof(*fdocs));
	for (size_t i = 0; i < n; i++) {
		fdocs[i].terms = terms[i].terms;
		fdocs[i].count = terms[i].count;
		fdocs[i].saturated = terms[i].saturated;
		nd[i].doc = &fdocs[i];
	}
	if (n > 0 && store_fts_add_docs(store, txn, user_id, nd, n,
	    error_r) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		mail_fts_terms_free(&terms[i]);
	free(terms);
	free(fdocs);
	free(nd);
	store_fts_set_free(&set);
	*indexed_r = n;
	return store_wcommit(store, txn, error_r);
mdb_fail:
	store_fail_mdb(store, error_r, rc, "reindex");
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	for (size_t i = 0; i < n; i++)
		mail_fts_terms_free(&terms[i]);
	free(terms);
	free(fdocs);
	free(nd);
	store_fts_set_free(&set);
	store_wabort(store, txn);
	return -1;
}

int
store_fts_drop(struct store *store, uint32_t user_id, const char **error_r)
{
	struct store_key k;
	MDB_txn *txn = NULL;

	if (store_wbegin(store, &txn, error_r) < 0)
		return -1;
	store_key_init(&k);
	store_key_u32(&k, user_id);
	if (store_del_prefix(store, txn, DB_FTS_SEGS, &k, error_r) < 0 ||
	    store_del_prefix(store, txn, DB_FTS_SEGINFO, &k, error_r) < 0) {
		store_wabort(store, txn);
		return -1;
	}
	return store_wcommit(store, txn, error_r);
}

/* ---- checking (store-check.c) ---- */

int
store_fts_check_user(struct store *store, MDB_txn *txn, uint32_t user_id,
    void (*problem)(void *ctx, const char *fmt, ...), void *ctx)
{
	struct seglist l;
	struct store_fts_set seen;
	struct mail_fts_terms t = MAIL_FTS_TERMS_INIT;
	const char *err = NULL;
	struct store_read rd = { store, txn };

	if (seglist_load(store, txn, user_id, &l, &err) < 0) {
		problem(ctx, "user %u: index list unreadable: %s", user_id,
		    err);
		return -1;
	}
	if (set_init(&rd, user_id, &seen, &err) < 0) {
		seglist_free(&l);
		return -1;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct seg s;
		struct merge_doc *docs;
		uint32_t dead = 0;

		if (seg_get(store, txn, user_id, l.ids[i], &s, &err) < 0) {
			problem(ctx, "user %u: index segment %llu: %s",
			    user_id, (unsigned long long)l.ids[i], err);
			continue;
		}
		if (s.ndocs != l.info[i].ndocs || s.size != l.info[i].bytes ||
		    s.ndocs == 0 || seg_doc(&s, 0) != l.info[i].min_body ||
		    seg_doc(&s, s.ndocs - 1) != l.info[i].max_body)
			problem(ctx, "user %u: index segment %llu: its record "
			    "does not match it", user_id,
			    (unsigned long long)l.ids[i]);
		docs = xcalloc(s.ndocs > 0 ? s.ndocs : 1, sizeof(*docs));
		if (seg_invert(&s, docs) < 0)
			problem(ctx, "user %u: index segment %llu: damaged "
			    "directory or postings", user_id,
			    (unsigned long long)l.ids[i]);
		for (uint32_t d = 1; d < s.ndocs; d++)
			if (docs[d].body_id <= docs[d - 1].body_id)
				problem(ctx, "user %u: index segment %llu: "
				    "bodies out of order", user_id,
				    (unsigned long long)l.ids[i]);
		for (uint32_t d = 0; d < s.ndocs; d++) {
			struct store_key k;
			MDB_val key, bd, sd;
			struct merge_doc *md = &docs[d];
			bool same;

			if (store_fts_set_has(&seen, md->body_id))
				problem(ctx, "user %u: body %llu is in two "
				    "index segments", user_id,
				    (unsigned long long)md->body_id);
			set_add(&seen, md->body_id);
			store_key_init(&k);
			store_key_u32(&k, user_id);
			store_key_u64(&k, md->body_id);
			key = store_key_val(&k);
			if (mdb_get(txn, store->dbi[DB_BODIES], &key,
			    &bd) != 0) {
				dead++;
				continue;
			}
			if (mdb_get(txn, store->dbi[DB_STRUCTS], &key,
			    &sd) != 0) {
				sd.mv_data = NULL;
				sd.mv_size = 0;
			}
			body_terms(bd.mv_data, bd.mv_size, sd.mv_data,
			    sd.mv_size, &t);
			same = t.saturated ? md->saturated :
			    !md->saturated && t.count == md->count &&
			    (t.count == 0 || memcmp(t.terms, md->terms,
			    t.count * sizeof(*t.terms)) == 0);
			if (!same)
				problem(ctx, "user %u: index of body %llu "
				    "does not match its text (%zu terms "
				    "indexed, %zu in the message)", user_id,
				    (unsigned long long)md->body_id,
				    md->count, t.count);
		}
		if (dead != l.info[i].ndead)
			problem(ctx, "user %u: index segment %llu: %u dead "
			    "bodies recorded, %u found", user_id,
			    (unsigned long long)l.ids[i], l.info[i].ndead,
			    dead);
		for (uint32_t d = 0; d < s.ndocs; d++)
			free(docs[d].terms);
		free(docs);
	}
	seglist_free(&l);
	store_fts_set_free(&seen);
	mail_fts_terms_free(&t);
	return 0;
}
