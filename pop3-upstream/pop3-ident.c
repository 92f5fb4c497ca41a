/*
 * pop3-ident — recognising a message whose UIDL the ledger does not know
 * as a delivery already made from the same upstream mailbox, by TOP n 0
 * and the LIST size before any RETR (renumbered UIDLs, an account added
 * again): the candidates are found on a worker, the claims made by the
 * writer, and only what is beyond doubt is taken as known. The exact
 * conditions are in docs/design-notes.md ("Recognising a message by its
 * header"). Part of the POP3 session (pop3-session.h); the event loop's.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pop3-upstream/pop3-deliver.h"
#include "pop3-upstream/pop3-session.h"
#include "store/store.h"
#include "xmalloc.h"

static int
cmp_size(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

/* A message whose UIDL the ledger does not know, which TOP could show to
 * be a delivery already made. */
static bool
ident_eligible(const struct msg *m)
{
	return m->action == ACT_FETCH && !m->reused && !m->hash_key &&
	    m->key != NULL && m->list_size > 0;
}

/*
 * Before the first RETR of a session: the unknown UIDLs whose LIST size
 * some delivery of this upstream mailbox had get a TOP n 0 first (the
 * ident phase); true if it started. Not in delete mode (the server keeps
 * only what was never delivered, and a DELE must never rest on a header),
 * nor without TOP, a listing of every key, or UIDLs as keys.
 */
static void ident_finish(struct pop3_session *s);

/* The candidates are found (the worker's walk): the unknown UIDLs of a
 * size among them get their TOP. */
static void
ident_walked(void *arg, int rc, struct pop3_head_candidate *cands,
    size_t count, long us, const char *error)
{
	struct pop3_session *s = arg;
	size_t nid = 0;

	s->cand_job = NULL;
	s->inflight_count--;
	s->cands = cands;
	s->cand_count = count;
	if (s->finishing) {
		if (s->inflight_count == 0)
			event_active(s->finish_ev, EV_TIMEOUT, 1);
		return;
	}
	log_debug("pop3 account=%s event=ident-walk candidates=%zu us=%ld",
	    s->log_id, count, us);
	if (rc != 0) {
		/* nothing lost: every unknown UIDL is RETRieved */
		log_warn("pop3 account=%s event=ident-skipped reason=\"%s\"",
		    s->log_id, rc > 0 ? "too many candidate deliveries" :
		    error);
		ident_finish(s);
		return;
	}
	s->todo_count = 0;
	for (size_t i = 0; i < s->msg_count && count > 0; i++) {
		struct msg *m = &s->msgs[i];

		if (!ident_eligible(m))
			continue;
		/* any candidate of this size (the table is sorted by size) */
		for (size_t lo = 0, hi = count; lo < hi;) {
			size_t mid = (lo + hi) / 2;

			if (cands[mid].list_size == m->list_size) {
				m->action = ACT_IDENT;
				break;
			}
			if (cands[mid].list_size < m->list_size)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (m->action == ACT_IDENT) {
			s->todo[s->todo_count++] = (uint32_t)i;
			nid++;
		}
	}
	if (nid == 0) {
		ident_finish(s);
		return;
	}
	log_info("pop3 account=%s event=ident top=%zu candidates=%zu",
	    s->log_id, nid, count);
	s->ident_phase = true;
	s->todo_next = 0;
	s->todo_done = 0;
	pop3_fetch_pump(s);
}

/*
 * Before the first RETR of a session: the unknown UIDLs whose LIST size
 * some delivery of this upstream mailbox had get a TOP n 0 first (the
 * ident phase); true if it started (the candidates are looked for on a
 * worker first). Not in delete mode (the server keeps only what was never
 * delivered, and a DELE must never rest on a header), nor without TOP, a
 * listing of every key, or UIDLs as keys.
 */
bool
pop3_ident_start(struct pop3_session *s)
{
	struct pop3_deliver_listing *listing;
	uint64_t *sizes;
	size_t n = 0, u = 0;

	if (s->ident_done)
		return false;
	s->ident_done = true;
	if (!s->capa.top || s->top_check_failed || s->stopping ||
	    s->acct->mode == UPSTREAM_MODE_DELETE ||
	    strncmp(s->status->uidl_strategy, "uidl", 4) != 0)
		return false;
	for (size_t i = 0; i < s->msg_count; i++)
		n += ident_eligible(&s->msgs[i]);
	if (n == 0 || (listing = pop3_fetch_listing(s)) == NULL)
		return false;
	sizes = xcalloc(n, sizeof(*sizes));
	for (size_t i = 0; i < s->msg_count; i++) {
		if (ident_eligible(&s->msgs[i]))
			sizes[u++] = s->msgs[i].list_size;
	}
	qsort(sizes, n, sizeof(*sizes), cmp_size);
	u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u == 0 || sizes[u - 1] != sizes[i])
			sizes[u++] = sizes[i];
	}
	log_debug("pop3 account=%s event=ident-start unknown=%zu sizes=%zu",
	    s->log_id, n, u);
	/* the session waits for it as for a batch; without a pool, the
	   job (and what follows it) runs before the return */
	s->inflight_count++;
	s->cand_job = pop3_deliver_head_candidates_submit(s->env.store,
	    s->env.workq, s->acct, listing, sizes, u, ident_walked, s);
	return true;
}

/* The ident phase is over: every other message as classified. */
static void
ident_finish(struct pop3_session *s)
{
	uint32_t news = 0;

	free(s->cands);
	s->cands = NULL;
	s->cand_count = 0;
	s->todo_count = 0;
	for (size_t i = 0; i < s->msg_count; i++) {
		struct msg *m = &s->msgs[i];

		if (m->action == ACT_IDENT)
			m->action = ACT_FETCH;
		if (m->action == ACT_FETCH || m->action == ACT_CHECK)
			s->todo[s->todo_count++] = (uint32_t)i;
		news += m->action == ACT_FETCH;
	}
	s->status->import_total = news;
	pop3_fetch_start_phase(s);
}

static void
claims_done(void *arg, int rc, const bool *claimed, size_t count,
    const char *error)
{
	struct pop3_session *s = arg;

	s->claim_job = NULL;
	s->inflight_count--;
	if (s->finishing) {
		if (s->inflight_count == 0)
			event_active(s->finish_ev, EV_TIMEOUT, 1);
		return;
	}
	if (rc < 0)
		log_warn("pop3 account=%s event=ident-failed error=\"%s\" "
		    "action=\"RETR instead\"", s->log_id, error);
	for (size_t k = 0; k < count; k++) {
		struct msg *m = &s->msgs[s->claim_msgs[k]];
		char esc[LOG_PEER_TEXT_MAX + 1];

		if (!claimed[k])
			continue;	/* taken meanwhile: RETR decides */
		/* known: not delivered again, and (whatever the mode) not
		   deleted on this ground: a DELE due later is checked by
		   RETR (by_head) */
		m->action = ACT_NONE;
		s->result.known++;
		s->result.known_top++;
		log_info("pop3 account=%s event=known-by-header msgno=%u "
		    "uidl=\"%s\"", s->log_id, m->msgno, log_escape(esc,
		    sizeof(esc), m->key, m->key_len));
	}
	free(s->claim_msgs);
	s->claim_msgs = NULL;
	ident_finish(s);
}

static int
cmp_ident(const void *a, const void *b, void *arg)
{
	const struct pop3_session *s = arg;
	const struct msg *x = &s->msgs[*(const uint32_t *)a];
	const struct msg *y = &s->msgs[*(const uint32_t *)b];

	if (x->list_size != y->list_size)
		return x->list_size < y->list_size ? -1 : 1;
	return memcmp(x->ident_head, y->ident_head, sizeof(x->ident_head));
}

/* The first candidate with m's size and header digest, or cand_count. */
static size_t
cand_lower(const struct pop3_session *s, const struct msg *m)
{
	size_t lo = 0, hi = s->cand_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct pop3_head_candidate *c = &s->cands[mid];
		int d = c->list_size != m->list_size ?
		    (c->list_size < m->list_size ? -1 : 1) :
		    memcmp(c->head, m->ident_head, sizeof(c->head));

		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Every TOP of the ident phase is answered. A message is claimed only
 * when nothing is in doubt: its header block names it (Message-ID, Date),
 * no other message of this listing has the same header block and size,
 * and the deliveries with that header block and size all had the same
 * bytes (one content digest). Anything else is RETRieved, and its bytes
 * decide (store_ledger_claim_digest).
 */
void
pop3_ident_decide(struct pop3_session *s)
{
	struct pop3_head_claim *claims;
	uint32_t *idx;
	size_t n = 0, nc = 0;

	s->ident_phase = false;
	idx = xcalloc(s->msg_count + 1, sizeof(*idx));
	for (size_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].action == ACT_IDENT && s->msgs[i].ident_ok)
			idx[n++] = (uint32_t)i;
	}
	qsort_r(idx, n, sizeof(*idx), cmp_ident, s);
	claims = xcalloc(n + 1, sizeof(*claims));
	s->claim_msgs = xcalloc(n + 1, sizeof(*s->claim_msgs));
	for (size_t g = 0, e; g < n; g = e) {
		struct msg *m = &s->msgs[idx[g]];
		size_t lo, hi;

		for (e = g + 1; e < n && cmp_ident(&idx[g], &idx[e], s) == 0;)
			e++;
		if (e - g > 1)
			continue;	/* listed twice: copies, or not */
		lo = cand_lower(s, m);
		for (hi = lo; hi < s->cand_count &&
		    s->cands[hi].list_size == m->list_size &&
		    memcmp(s->cands[hi].head, m->ident_head,
		    sizeof(m->ident_head)) == 0; hi++) {
			if (memcmp(s->cands[hi].digest, s->cands[lo].digest,
			    sizeof(s->cands[lo].digest)) != 0)
				break;
		}
		/* none, or two deliveries with this header but other
		   bytes (hi stopped early) */
		if (hi == lo || (hi < s->cand_count &&
		    s->cands[hi].list_size == m->list_size &&
		    memcmp(s->cands[hi].head, m->ident_head,
		    sizeof(m->ident_head)) == 0))
			continue;
		claims[nc].uidl = m->key;
		claims[nc].uidl_size = m->key_len;
		claims[nc].list_size = m->list_size;
		memcpy(claims[nc].head, m->ident_head, sizeof(claims[nc].head));
		memcpy(claims[nc].digest, s->cands[lo].digest,
		    sizeof(claims[nc].digest));
		s->claim_msgs[nc++] = idx[g];
	}
	free(idx);
	free(s->cands);
	s->cands = NULL;
	s->cand_count = 0;
	if (nc == 0) {
		free(claims);
		free(s->claim_msgs);
		s->claim_msgs = NULL;
		ident_finish(s);
		return;
	}
	s->inflight_count++;
	s->claim_job = pop3_deliver_claim_heads_submit(s->env.store, s->acct,
	    s->listing, claims, nc, claims_done, s);
	free(claims);
}
