/* imap-search-index — SEARCH narrowed by the index; see the header. */
#include "imap-search-index.h"

#include <stdlib.h>
#include <string.h>

#include "imap-search-match.h"
#include "log.h"
#include "store/mail-charset.h"
#include "store/mail-fts.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

struct ix_key {
	const struct imap_search_key *key;
	struct store_fts_set cand;
	/* BODY or TEXT whose folded needle is one term (MAIL_FTS_UNIT
	 * bytes): the bodies whose body-class posting holds it; an indexed,
	 * unsaturated body in it certainly contains the needle (below) */
	struct store_fts_set sure;
	bool has_sure;
	/* TEXT: the bodies whose header-class posting may hold it; an
	 * indexed body outside it has no header block that does */
	struct store_fts_set hdr;
	bool has_hdr;
};

struct imap_search_index {
	struct store_fts_set indexed;
	struct store_fts_set saturated;	/* of indexed: postings say nothing */
	struct ix_key *keys;
	size_t nkeys, cap;
	uint64_t body_id;	/* of the message being asked about */
	uint32_t user_id;
	uint64_t answered;	/* key tests imap_search_index_known knew */
};

static int
add_key(struct imap_search_index *ix, struct store_read *r, uint32_t user_id,
    const struct imap_search_key *k)
{
	struct strbuf folded = STRBUF_INIT;
	unsigned classes;
	const char *err;
	struct ix_key *e;
	int rc;

	switch (k->type) {
	case IMAP_SEARCH_HEADER:
		classes = STORE_FTS_HEADER;
		break;
	case IMAP_SEARCH_BODY:
		classes = STORE_FTS_BODY;
		break;
	case IMAP_SEARCH_TEXT:
		classes = STORE_FTS_HEADER | STORE_FTS_BODY;
		break;
	default:
		return 0;
	}
	mail_utf8_casefold(k->str, k->str_len, &folded);
	if (ix->nkeys == ix->cap) {
		ix->cap = ix->cap == 0 ? 4 : ix->cap * 2;
		ix->keys = xreallocarray(ix->keys, ix->cap, sizeof(*ix->keys));
	}
	e = &ix->keys[ix->nkeys];
	memset(e, 0, sizeof(*e));
	rc = store_fts_candidates(r, user_id, classes, strbuf_str(&folded),
	    folded.len, &e->cand, &err);
	if (rc == 0 && folded.len == MAIL_FTS_UNIT &&
	    k->type != IMAP_SEARCH_HEADER) {
		/* BODY: the candidates are the body-class posting (with the
		 * saturated bodies); TEXT: look the body class up alone */
		if (k->type == IMAP_SEARCH_TEXT)
			rc = store_fts_candidates(r, user_id, STORE_FTS_BODY,
			    strbuf_str(&folded), folded.len, &e->sure, &err);
		e->has_sure = rc == 0;
	}
	if (rc == 0 && k->type == IMAP_SEARCH_TEXT) {
		rc = store_fts_candidates(r, user_id, STORE_FTS_HEADER,
		    strbuf_str(&folded), folded.len, &e->hdr, &err);
		e->has_hdr = rc == 0;
	}
	strbuf_free(&folded);
	if (rc < 0) {
		store_fts_set_free(&e->cand);
		store_fts_set_free(&e->sure);
		log_warn("imap event=search_index_unreadable user=%u "
		    "error=\"%s\"", user_id, err != NULL ? err : "");
		return -1;
	}
	if (rc == 0) {
		e->key = k;
		ix->nkeys++;
	}
	return 0;
}

static int
walk(struct imap_search_index *ix, struct store_read *r, uint32_t user_id,
    const struct imap_search_key *k)
{
	for (; k != NULL; k = k->next) {
		if (add_key(ix, r, user_id, k) < 0 ||
		    walk(ix, r, user_id, k->first_child) < 0)
			return -1;
	}
	return 0;
}

struct imap_search_index *
imap_search_index_new(struct store *store, struct store_read *r,
    uint32_t user_id, const struct imap_search_program *prog)
{
	struct imap_search_index *ix = xcalloc(1, sizeof(*ix));
	const char *err;

	ix->user_id = user_id;
	if (!store_fts_enabled(store) ||
	    (!prog->needs_body && !prog->needs_headers))
		goto none;
	if (walk(ix, r, user_id, prog->root) < 0 || ix->nkeys == 0)
		goto none;
	if (store_fts_indexed(r, user_id, &ix->indexed, &ix->saturated,
	    &err) < 0) {
		log_warn("imap event=search_index_unreadable user=%u "
		    "error=\"%s\"", user_id, err != NULL ? err : "");
		goto none;
	}
	log_debug("imap event=search_index user=%u keys=%zu", user_id,
	    ix->nkeys);
	return ix;
none:
	imap_search_index_free(&ix);
	return NULL;
}

static bool
absent(void *ctx, const struct imap_search_key *k)
{
	struct imap_search_index *ix = ctx;

	for (size_t i = 0; i < ix->nkeys; i++)
		if (ix->keys[i].key == k)
			return !store_fts_set_has(&ix->keys[i].cand,
			    ix->body_id);
	return false;
}

bool
imap_search_index_may_match(struct imap_search_index *ix,
    const struct imap_search_program *prog, uint64_t body_id)
{
	if (!store_fts_set_has(&ix->indexed, body_id))
		return true;	/* not indexed: read it */
	ix->body_id = body_id;
	return imap_search_may_match(prog, absent, ix);
}

/* The entry of the key whose string is str (the matcher passes the key's
 * own pointer), NULL when the index has none for it. */
static const struct ix_key *
find_key(const struct imap_search_index *ix, const char *str)
{
	for (size_t i = 0; i < ix->nkeys; i++)
		if (ix->keys[i].key->str == str)
			return &ix->keys[i];
	return NULL;
}

int
imap_search_index_known(struct imap_search_index *ix, const char *str,
    uint64_t body_id)
{
	const struct ix_key *e;

	if (ix == NULL || (e = find_key(ix, str)) == NULL ||
	    !store_fts_set_has(&ix->indexed, body_id) ||
	    store_fts_set_has(&ix->saturated, body_id))
		return -1;
	/* sound: a body whose text holds the needle has all its terms */
	if (!store_fts_set_has(&e->cand, body_id)) {
		ix->answered++;
		return 0;
	}
	/* exact: the needle is one term, and the body-class terms are
	 * every trigram of every text part as the matcher reads it */
	if (e->has_sure && store_fts_set_has(
	    e->key->type == IMAP_SEARCH_TEXT ? &e->sure : &e->cand, body_id)) {
		ix->answered++;
		return 1;
	}
	return -1;
}

bool
imap_search_index_headers_lack(struct imap_search_index *ix, const char *str,
    uint64_t body_id)
{
	const struct ix_key *e;

	if (ix == NULL || (e = find_key(ix, str)) == NULL || !e->has_hdr ||
	    !store_fts_set_has(&ix->indexed, body_id) ||
	    store_fts_set_has(&e->hdr, body_id))
		return false;	/* (a saturated body is in every set) */
	ix->answered++;
	return true;
}

void
imap_search_index_free(struct imap_search_index **ixp)
{
	struct imap_search_index *ix = *ixp;

	if (ix == NULL)
		return;
	if (ix->nkeys > 0)
		log_debug("imap event=search_index_done user=%u answered=%llu",
		    ix->user_id, (unsigned long long)ix->answered);
	for (size_t i = 0; i < ix->nkeys; i++) {
		store_fts_set_free(&ix->keys[i].cand);
		store_fts_set_free(&ix->keys[i].sure);
		store_fts_set_free(&ix->keys[i].hdr);
	}
	free(ix->keys);
	store_fts_set_free(&ix->indexed);
	store_fts_set_free(&ix->saturated);
	free(ix);
	*ixp = NULL;
}
