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
 * The segment format: store-ftsseg.c.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mail-fts.h"
#include "mail-message.h"
#include "mail-parse.h"
#include "mail-serialize.h"
#include "store-ftsseg.h"
#include "store-private.h"
#include "strbuf.h"
#include "xmalloc.h"

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
	if (store_ftsseg_open(data.mv_data, data.mv_size, s) < 0)
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

	if (store_ftsseg_open(bytes, size, &s) < 0 || s.ndocs == 0)
		return 0;	/* nothing to index */
	memset(&si, 0, sizeof(si));
	si.ndocs = s.ndocs;
	si.bytes = size;
	si.min_body = ids != NULL ? ids[0] : store_ftsseg_doc(&s, 0);
	si.max_body = ids != NULL ? ids[s.ndocs - 1] : store_ftsseg_doc(&s,
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
		memcpy((unsigned char *)data.mv_data + STORE_FTSSEG_HDR, ids,
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
	uint64_t p = store_ftsseg_doc(&x->s, 0), q = store_ftsseg_doc(&y->s, 0);

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
		if (store_ftsseg_doc(&in[i - 1].s, in[i - 1].s.ndocs - 1) >=
		    store_ftsseg_doc(&in[i].s, 0)) {
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
			uint64_t b = store_ftsseg_doc(s, d);

			if (body_alive(store, txn, user_id, b)) {
				in[i].map[d] = (int64_t)ndocs;
				docs[ndocs++] = b;
			} else {
				in[i].map[d] = -1;
			}
		}
		for (uint32_t k = 0; k < s->nsat; k++) {
			uint32_t o = store_ftsseg_ld32(s->sat + (size_t)k * 4);

			if (o >= s->ndocs)
				goto damaged;
			if (in[i].map[o] >= 0)
				sat[nsat++] = (uint32_t)in[i].map[o];
		}
		if (s->nterms > 0) {
			if (!store_ftsseg_dir_start(s, 0, &in[i].it))
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
		store_ftsseg_w_begin(&w);
		for (size_t i = 0; i < n; i++) {
			struct min_in *x = &in[i];

			if (!x->live || x->it.term != term)
				continue;
			nords = 0;
			if (store_ftsseg_postings(&x->s,
			    x->s.post + x->it.post_off,
			    (size_t)x->it.post_len, x->it.bitmap, &ords,
			    &nords, &ocap) < 0)
				goto damaged;
			for (size_t k = 0; k < nords; k++)
				if (x->map[ords[k]] >= 0)
					store_ftsseg_w_add(&w,
					    (uint32_t)x->map[ords[k]]);
			if (x->it.index + 1 >= x->s.nterms)
				x->live = false;
			else if (!store_ftsseg_dir_next(&x->it))
				goto damaged;
		}
		store_ftsseg_w_end(&w, term);
	}
	if (ndocs > 0)
		store_ftsseg_w_finish(&w, docs, ndocs, sat, nsat, &blob);
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
		if (store_ftsseg_invert(&s, docs + ndocs - s.ndocs) < 0) {
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
	qsort(docs, ndocs, sizeof(*docs), store_ftsseg_mdoc_cmp);
	fd = xcalloc(ndocs > 0 ? ndocs : 1, sizeof(*fd));
	for (size_t i = 0; i < ndocs; i++) {
		fd[i].body_id = docs[i].body_id;
		fd[i].terms = docs[i].terms;
		fd[i].count = docs[i].count;
		fd[i].saturated = docs[i].saturated;
	}
	if (ndocs > 0)
		store_ftsseg_build(fd, ndocs, &blob);
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

/* The segments of l the next merge step takes (at most
 * STORE_FTS_MERGE_FANIN into pick); 0 when none is due. */
static size_t
step_pick(const struct seglist *l, uint64_t *pick)
{
	size_t npick = 0;

	for (size_t i = 0; i < l->n && npick == 0; i++)
		if (l->info[i].ndead * 2 > l->info[i].ndocs)
			pick[npick++] = l->ids[i];
	for (unsigned t = 0; npick == 0 && t < 8; t++) {
		size_t count = 0;
		uint64_t bytes = 0;

		for (size_t i = 0; i < l->n; i++)
			if (tier(l->info[i].bytes) == t &&
			    !seg_final(&l->info[i]))
				count++;
		if (count < STORE_FTS_MERGE_FANIN)
			continue;
		for (size_t i = 0; i < l->n && npick < STORE_FTS_MERGE_FANIN;
		    i++) {
			if (tier(l->info[i].bytes) != t ||
			    seg_final(&l->info[i]))
				continue;
			if (npick >= 2 && bytes + l->info[i].bytes >
			    STORE_FTS_SEGMENT_MAX)
				break;
			bytes += l->info[i].bytes;
			pick[npick++] = l->ids[i];
		}
	}
	return npick;
}

static int
maintain(struct store *store, MDB_txn *txn, uint32_t user_id, bool defer)
{
	struct seglist l;
	uint64_t pick[STORE_FTS_MERGE_FANIN];
	size_t npick;
	const char *err = NULL;
	MDB_txn *child;
	int ret = 0;

	if (seglist_load(store, txn, user_id, &l, &err) < 0)
		return -1;
	npick = step_pick(&l, pick);
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
	store->fts_pending_scanned = false;
	if (!defer) {
		free(store->fts_pending);
		store->fts_pending = NULL;
		store->fts_npending = 0;
	}
}

/*
 * The notes are in memory only: after a restart, the users whose segment
 * counts in the store call for a merge step are noted again (one read of
 * the segment records, at the first idle moment), so a user whose
 * deliveries stopped is not left with up to STORE_FTS_DEFER_SEGMENTS
 * segments.
 */
static void
pending_rebuild(struct store *store)
{
	uint64_t pick[STORE_FTS_MERGE_FANIN];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key, data;
	uint32_t user_id = 0;
	bool first = true;
	size_t before = store->fts_npending;
	const char *err = NULL;
	int rc;

	store->fts_pending_scanned = true;
	if (!store->fts_enabled ||
	    mdb_txn_begin(store->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_cursor_open(txn, store->dbi[DB_FTS_SEGINFO], &cur) != 0) {
		mdb_txn_abort(txn);
		return;
	}
	rc = mdb_cursor_get(cur, &key, &data, MDB_FIRST);
	for (; rc == 0; rc = mdb_cursor_get(cur, &key, &data, MDB_NEXT)) {
		struct seglist l;
		uint32_t u;

		if (key.mv_size != 12)
			continue;
		u = store_get_u32(key.mv_data);
		if (!first && u == user_id)
			continue;
		first = false;
		user_id = u;
		if (seglist_load(store, txn, u, &l, &err) < 0)
			break;
		if (step_pick(&l, pick) > 0 && !pending_note(store, u)) {
			seglist_free(&l);
			break;	/* full: the rest are noted by deliveries */
		}
		seglist_free(&l);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (store->fts_npending > before)
		log_info("store event=index_merges_pending users=%zu",
		    store->fts_npending - before);
}

int
store_fts_idle_step(struct store *store)
{
	uint32_t user_id;
	MDB_txn *txn;
	int rc = -1;

	if (!store->fts_pending_scanned)
		pending_rebuild(store);
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
	qsort(fd, m, sizeof(*fd), store_ftsseg_doc_cmp);
	store_ftsseg_build(fd, m, &blob);
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
	store_ftsseg_build(fd, count, out);
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

	if (store_ftsseg_open(blob, size, &s) < 0 || s.ndocs != n || n == 0)
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
		if (store_ftsseg_find_doc(&s, body_id) < 0)
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
    struct store_fts_set *set_r, struct store_fts_set *saturated_r,
    const char **error_r)
{
	struct store *store = r->store;
	struct seglist l;

	if (saturated_r != NULL)
		memset(saturated_r, 0, sizeof(*saturated_r));
	if (set_init(r, user_id, set_r, error_r) < 0)
		return -1;
	if (saturated_r != NULL) {
		saturated_r->nbits = set_r->nbits;
		saturated_r->bits = xcalloc(set_r->nbits / 64 + 1,
		    sizeof(*saturated_r->bits));
	}
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
			set_add(set_r, store_ftsseg_doc(&s, d));
		for (uint32_t q = 0; saturated_r != NULL && q < s.nsat; q++) {
			uint32_t o = store_ftsseg_ld32(s.sat + (size_t)q * 4);

			if (o < s.ndocs)
				set_add(saturated_r, store_ftsseg_doc(&s, o));
		}
	}
	seglist_free(&l);
	return 0;
fail:
	store_fts_set_free(set_r);
	if (saturated_r != NULL)
		store_fts_set_free(saturated_r);
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
		int rc = store_ftsseg_lookup(s, terms[t], &refs[t].p,
		    &refs[t].len, &refs[t].bitmap);

		refs[t].est = refs[t].bitmap ? refs[t].len * 8 : refs[t].len;

		if (rc < 0)
			goto out;
		all = rc == 1;
	}
	if (all && n > 0) {
		qsort(refs, n, sizeof(*refs), posting_ref_cmp);
		if (store_ftsseg_postings(s, refs[0].p, refs[0].len,
		    refs[0].bitmap, &acc, &nacc, &cacc) < 0)
			goto out;
		for (size_t t = 1; t < n && nacc > 0; t++) {
			ncur = 0;
			if (store_ftsseg_postings(s, refs[t].p, refs[t].len,
			    refs[t].bitmap, &cur, &ncur, &ccur) < 0)
				goto out;
			intersect(acc, &nacc, cur, ncur);
		}
		for (size_t i = 0; i < nacc; i++)
			set_add(set, store_ftsseg_doc(s, acc[i]));
	}
	for (uint32_t i = 0; i < s->nsat; i++) {
		uint32_t o = store_ftsseg_ld32(s->sat + (size_t)i * 4);

		if (o < s->ndocs)
			set_add(set, store_ftsseg_doc(s, o));
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
	if (store_fts_indexed(&rd, user_id, &set, NULL, error_r) < 0)
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
		    s.ndocs == 0 ||
		    store_ftsseg_doc(&s, 0) != l.info[i].min_body ||
		    store_ftsseg_doc(&s, s.ndocs - 1) != l.info[i].max_body)
			problem(ctx, "user %u: index segment %llu: its record "
			    "does not match it", user_id,
			    (unsigned long long)l.ids[i]);
		docs = xcalloc(s.ndocs > 0 ? s.ndocs : 1, sizeof(*docs));
		if (store_ftsseg_invert(&s, docs) < 0)
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
