/* pop3-fetch — the message table of a POP3 session (LIST, UIDL and the
 * content-hash fallback), ledger decisions per mode, RETR into bounded
 * batches committed with their UIDLs, then DELE and QUIT; see
 * pop3-client.h for the delivery invariant and pop3-session.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "log.h"
#include "pop3-upstream/pop3-deliver.h"
#include "pop3-upstream/pop3-session.h"
#include "store/store.h"
#include "xmalloc.h"


void
pop3_fetch_batch_free(struct pop3_session *s)
{
	for (size_t i = 0; i < s->batch_count; i++) {
		free(s->batch[i].data);
		s->batch[i].data = NULL;
	}
	s->batch_count = 0;
	s->batch_bytes = 0;
}

static struct msg *
msg_by_no(struct pop3_session *s, uint32_t msgno)
{
	size_t lo = 0, hi = s->msg_count;

	/* LIST is normally 1..n in order: try the direct slot first */
	if (msgno >= 1 && msgno <= s->msg_count &&
	    s->msgs[msgno - 1].msgno == msgno)
		return &s->msgs[msgno - 1];
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->msgs[mid].msgno == msgno)
			return &s->msgs[mid];
		if (s->msgs[mid].msgno < msgno)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int
cmp_msgno(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	return x->msgno < y->msgno ? -1 : x->msgno > y->msgno;
}

struct keyref {
	const char *key;
	size_t len;
	uint32_t idx;
};

static int
cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A UIDL listed for several messages names none of them reliably but
 * the first: the lowest message number keeps it (normally the one the
 * ledger knows), each later one is keyed by content (hash_key). Returns
 * how many were re-keyed. */
static size_t
mark_duplicate_uidls(struct pop3_session *s)
{
	struct keyref *refs = xcalloc(s->msg_count ? s->msg_count : 1,
	    sizeof(*refs));
	size_t n = 0, dups = 0;

	for (size_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].key == NULL)
			continue;
		refs[n].key = s->msgs[i].key;
		refs[n].len = s->msgs[i].key_len;
		refs[n].idx = (uint32_t)i;
		n++;
	}
	/* equal keys sort by idx, i.e. msgno (msgs is in msgno order) */
	qsort(refs, n, sizeof(*refs), cmp_keyref);
	for (size_t i = 1; i < n; i++) {
		if (refs[i].len == refs[i - 1].len &&
		    memcmp(refs[i].key, refs[i - 1].key, refs[i].len) == 0)
			s->msgs[refs[i].idx].hash_key = true;
	}
	free(refs);
	for (size_t i = 0; i < s->msg_count; i++) {
		struct msg *m = &s->msgs[i];

		if (m->hash_key && m->key != NULL) {
			free(m->key);
			m->key = NULL;
			m->key_len = 0;
			dups++;
		}
	}
	return dups;
}

/* Fallback keys: "H <sha256 hex of header block + size>/<occurrence>". */
static void
set_hash_key(struct msg *m, const char *data, size_t len, uint64_t size)
{
	unsigned char md[32];
	char sz[24];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t hl = pop3_header_length(data, len);

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, data, hl);
	snprintf(sz, sizeof(sz), ":%llu", (unsigned long long)size);
	EVP_DigestUpdate(c, sz, strlen(sz));
	EVP_DigestFinal_ex(c, md, NULL);
	EVP_MD_CTX_free(c);
	free(m->key);
	m->key = xmalloc(2 + 64 + 12);
	memcpy(m->key, "H ", 2);
	for (int i = 0; i < 32; i++)
		snprintf(m->key + 2 + 2 * i, 3, "%02x", md[i]);
	m->key_len = 66;
	m->key[66] = '\0';
}

/* Appends "/n" so identical messages in one listing stay distinct.
 * only_hash_key: number the hash_key messages only (the others keep
 * their UIDLs, which may be 66 bytes long too). */
static void
number_hash_keys(struct pop3_session *s, size_t upto, bool only_hash_key)
{
	struct keyref *refs = xcalloc(upto ? upto : 1, sizeof(*refs));
	size_t n = 0, occ = 0;

	for (size_t i = 0; i < upto; i++) {
		if (s->msgs[i].key == NULL || s->msgs[i].key_len != 66 ||
		    (only_hash_key && !s->msgs[i].hash_key))
			continue;
		refs[n].key = s->msgs[i].key;
		refs[n].len = 66;
		refs[n].idx = (uint32_t)i;
		n++;
	}
	qsort(refs, n, sizeof(*refs), cmp_keyref);
	for (size_t i = 0; i < n; i++) {
		struct msg *m = &s->msgs[refs[i].idx];

		if (i > 0 && memcmp(refs[i].key, refs[i - 1].key, 66) == 0)
			occ++;
		else
			occ = 0;
		/* key_len stays 66 until numbered, so the compare above is
		   on the hash part only */
		snprintf(m->key + 66, 12, "/%zu", occ);
	}
	for (size_t i = 0; i < n; i++) {
		struct msg *m = &s->msgs[refs[i].idx];

		m->key_len = strlen(m->key);
	}
	free(refs);
}

/* The RETR-keyed fallback numbers keys as messages arrive, in msgno
 * order: the occurrence is the count of earlier identical hashes. */
static void
number_one_key(struct pop3_session *s, uint32_t idx)
{
	struct msg *m = &s->msgs[idx];
	size_t occ = 0;

	for (uint32_t j = 0; j < idx; j++) {
		const struct msg *o = &s->msgs[j];

		if (o->key != NULL && o->key_len > 66 &&
		    memcmp(o->key, m->key, 66) == 0)
			occ++;
	}
	snprintf(m->key + 66, 12, "/%zu", occ);
	m->key_len = strlen(m->key);
}

/* ---- delivery ----------------------------------------------------------- */

/* The store refused message m on its own (INVALID, EXISTS, LIMIT): it
 * stays on the server (no DELE) and in no ledger; the next poll tries it
 * again. Reported in the log and the poll's error, never dropped
 * silently. */
static void
report_refused(struct pop3_session *s, struct msg *m,
    const struct pop3_deliver_outcome *o)
{
	static const char *const names[] = {
		[STORE_ERR_INVALID] = "invalid",
		[STORE_ERR_EXISTS] = "exists",
		[STORE_ERR_LIMIT] = "limit",
	};
	const char *code = o->refused > 0 && o->refused <= STORE_ERR_LIMIT &&
	    names[o->refused] != NULL ? names[o->refused] : "?";
	char esc[LOG_PEER_TEXT_MAX + 1];

	m->refused = true;
	s->result.refused++;
	log_escape(esc, sizeof(esc), m->key, m->key_len);
	log_error("pop3 account=%s event=message-refused msgno=%u uidl=\"%s\" "
	    "code=%s error=\"%s\" action=\"left on the server, retried next "
	    "poll\"", s->log_id, m->msgno, esc, code, o->error);
	if (s->result.error[0] == '\0')
		snprintf(s->result.error, sizeof(s->result.error),
		    "store refused message %u (uidl \"%s\", %s): %s; left on "
		    "the server", m->msgno, esc, code, o->error);
}

/* The store's answer for one batch (loop thread). */
static void
batch_done(void *arg, int rc, const struct pop3_deliver_outcome *out,
    size_t count, const char *err)
{
	struct inflight *f = arg;
	struct pop3_session *s = f->s;
	struct inflight **pp;
	struct timeval t1, dt;
	size_t stored = 0;
	bool quota = false;

	for (pp = &s->inflight; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	s->inflight_count--;
	for (size_t i = 0; i < count; i++) {
		struct msg *m = &s->msgs[f->msg_idx[i]];

		if (!out[i].stored) {
			if (out[i].refused == STORE_ERR_QUOTA)
				quota = true;
			else if (out[i].refused != STORE_ERR_NONE &&
			    out[i].refused != STORE_ERR_NOSPACE)
				report_refused(s, m, &out[i]);
			continue;
		}
		if (out[i].known) {
			char esc[LOG_PEER_TEXT_MAX + 1];

			/* delivered earlier under a UIDL the server no
			   longer lists: not again (a DELE, per mode, is
			   for bytes stored) */
			log_info("pop3 account=%s event=known-by-content "
			    "msgno=%u uidl=\"%s\"", s->log_id, m->msgno,
			    log_escape(esc, sizeof(esc), m->key, m->key_len));
			s->result.known++;
			if (s->acct->mode == UPSTREAM_MODE_DELETE)
				m->want_dele = true;
			continue;
		}
		stored++;
		s->result.fetched++;
		s->result.fetched_bytes += f->sizes[i];
		s->status->import_done++;
		s->status->import_bytes += f->sizes[i];
		if (s->acct->mode == UPSTREAM_MODE_DELETE)
			m->want_dele = true;
	}
	gettimeofday(&t1, NULL);
	timersub(&t1, &f->t0, &dt);
	log_debug("pop3 account=%s event=batch-stored messages=%zu bytes=%zu "
	    "ms=%ld", s->log_id, stored, f->bytes,
	    (long)(dt.tv_sec * 1000 + dt.tv_usec / 1000));
	{
		struct timeval d;

		timersub(&t1, &s->import_start, &d);
		double secs = (double)d.tv_sec + (double)d.tv_usec / 1e6;

		s->status->import_rate = secs > 0 ?
		    (double)s->status->import_done / secs : 0;
	}
	free(f->msg_idx);
	free(f->sizes);
	free(f);
	if (rc < 0 && quota && s->result.outcome != POP3_OUTCOME_STORE &&
	    s->result.outcome != POP3_OUTCOME_QUOTA) {
		/* the user is over quota: what fitted is stored (and may be
		   deleted upstream), the rest stays there; polled again at
		   the interval */
		log_warn("pop3 account=%s event=over-quota messages=%zu "
		    "stored=%zu error=\"%s\"", s->log_id, count, stored, err);
		s->result.outcome = POP3_OUTCOME_QUOTA;
		snprintf(s->result.error, sizeof(s->result.error),
		    "user over quota, fetching paused (nothing deleted "
		    "upstream for what was not stored): %s", err);
		pop3_fetch_batch_free(s);
		pop3_session_finish(s);
	} else if (rc < 0 && s->result.outcome != POP3_OUTCOME_STORE &&
	    s->result.outcome != POP3_OUTCOME_QUOTA) {
		log_error("pop3 account=%s event=store-failed messages=%zu "
		    "stored=%zu error=\"%s\"", s->log_id, count, stored, err);
		s->result.outcome = POP3_OUTCOME_STORE;
		snprintf(s->result.error, sizeof(s->result.error),
		    "store refused delivery (no DELE sent): %s", err);
		pop3_fetch_batch_free(s);
		pop3_session_finish(s);
	}
	if (s->finishing) {
		/* it waited for its batches (pop3_session_finish) */
		if (s->inflight_count == 0)
			event_active(s->finish_ev, EV_TIMEOUT, 1);
		return;
	}
	pop3_fetch_pump(s);
}

/* The keys the server lists, once all are known (a message keyed by its
 * content gets its key only on arrival: until then, no listing and no
 * content identity, so a listed message is never taken for a vanished
 * one). */
struct pop3_deliver_listing *
pop3_fetch_listing(struct pop3_session *s)
{
	const char **keys;
	size_t *sizes;

	if (s->listing != NULL)
		return s->listing;
	for (size_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].key == NULL)
			return NULL;
	}
	keys = xcalloc(s->msg_count + 1, sizeof(*keys));
	sizes = xcalloc(s->msg_count + 1, sizeof(*sizes));
	for (size_t i = 0; i < s->msg_count; i++) {
		keys[i] = s->msgs[i].key;
		sizes[i] = s->msgs[i].key_len;
	}
	s->listing = pop3_deliver_listing_new(keys, sizes, s->msg_count);
	pop3_deliver_listing_set_address(s->listing, s->acct, s->peer_addr);
	free(keys);
	free(sizes);
	return s->listing;
}

void
pop3_fetch_flush(struct pop3_session *s)
{
	struct pop3_deliver_msg *dm;
	char **data;
	struct inflight *f;

	if (s->batch_count == 0)
		return;
	dm = xcalloc(s->batch_count, sizeof(*dm));
	data = xcalloc(s->batch_count, sizeof(*data));
	f = xcalloc(1, sizeof(*f));
	f->s = s;
	f->count = s->batch_count;
	f->bytes = s->batch_bytes;
	f->msg_idx = xcalloc(s->batch_count, sizeof(*f->msg_idx));
	f->sizes = xcalloc(s->batch_count, sizeof(*f->sizes));
	gettimeofday(&f->t0, NULL);
	for (size_t i = 0; i < s->batch_count; i++) {
		struct msg *m = &s->msgs[s->batch[i].msg];

		dm[i].data = s->batch[i].data;
		dm[i].size = s->batch[i].size;
		dm[i].uidl = m->key;
		dm[i].uidl_size = m->key_len;
		/* a reused UIDL's old entry is replaced in the delivery's
		   own transaction: never forgotten unless this commits */
		dm[i].replace = m->reused;
		dm[i].list_size = m->list_size;
		data[i] = s->batch[i].data;
		s->batch[i].data = NULL;	/* the job owns it now */
		f->msg_idx[i] = s->batch[i].msg;
		f->sizes[i] = s->batch[i].size;
	}
	s->batch_count = 0;
	s->batch_bytes = 0;
	f->next = s->inflight;
	s->inflight = f;
	s->inflight_count++;
	/* the keys (m->key) stay valid: msgs live as long as the session,
	   and a detached job copied what it needs (pop3-deliver.c). f may
	   be gone on return (done without a pool and a writer). */
	pop3_deliver_batch_submit(s->env.store, s->env.workq, s->acct,
	    s->mailbox_id, dm, data, f->count, pop3_fetch_listing(s),
	    batch_done, f, &f->job);
	free(dm);
	free(data);
}

void
pop3_fetch_detach_inflight(struct pop3_session *s)
{
	pop3_deliver_mark_job_detach(s->mark_job);
	s->mark_job = NULL;
	pop3_deliver_claim_job_detach(s->claim_job);
	s->claim_job = NULL;
	pop3_deliver_cand_job_detach(s->cand_job);
	s->cand_job = NULL;
	free(s->cands);
	s->cands = NULL;
	free(s->claim_msgs);
	s->claim_msgs = NULL;
	while (s->inflight != NULL) {
		struct inflight *f = s->inflight;

		s->inflight = f->next;
		pop3_deliver_job_detach(f->job);
		free(f->msg_idx);
		free(f->sizes);
		free(f);
	}
	s->inflight_count = 0;
}

static bool
batch_due(struct pop3_session *s)
{
	struct timeval now, d;

	if (s->batch_count == 0)
		return false;
	if (s->batch_count >= POP3_CLIENT_BATCH_MSGS ||
	    s->batch_bytes >= POP3_CLIENT_BATCH_BYTES)
		return true;
	gettimeofday(&now, NULL);
	timersub(&now, &s->batch_start, &d);
	return d.tv_sec * 1000 + d.tv_usec / 1000 >= POP3_CLIENT_BATCH_MS;
}

/* A DELE is due for message m, but its ledger entry predates fingerprints
 * and the stored copy is gone: nothing can tell whether the server still
 * holds that message or reused its UIDL. Deleting might lose a new
 * message, storing might bring back one the user deleted: neither, it
 * stays on the server, reported. */
static void
report_unverifiable(struct pop3_session *s, const struct msg *m)
{
	char esc[LOG_PEER_TEXT_MAX + 1];

	log_warn("pop3 account=%s event=dele-unverifiable msgno=%u "
	    "uidl=\"%s\" action=\"left on the server\"", s->log_id,
	    m->msgno, log_escape(esc, sizeof(esc), m->key, m->key_len));
	if (s->result.error[0] == '\0')
		snprintf(s->result.error, sizeof(s->result.error), "message %u "
		    "left on the server: its stored copy is gone and its "
		    "ledger entry has no fingerprint to verify it by",
		    m->msgno);
}

/* ---- classification against the ledger --------------------------------- */

/*
 * The check before DELE without a RETR (docs/design-notes.md, "Checking
 * before DELE"): the ledger kept, at delivery, the digest of the header
 * block and the size LIST gave. The same UIDL, the same LIST size and a
 * TOP n 0 whose header block has the same digest confirm the message is
 * the one delivered; anything else (an older entry, another size, TOP not
 * announced or failed) takes the RETR and full compare.
 */
static bool
top_check_usable(const struct pop3_session *s, const struct msg *m,
    const struct pop3_ledger_info *li)
{
	/* by_head: recognised by this very check, never seen whole */
	return li->has_head && !li->by_head &&
	    li->list_size == m->list_size && s->capa.top &&
	    !s->top_check_failed;
}

/*
 * Decides what to do with message m whose key is known: already in the
 * ledger → maybe DELE (per mode), never fetched again; new → fetch (or
 * skip when too large). may_top: a DELE due may be checked by TOP first
 * (false when the message's bytes are here already). Returns -1 on a
 * store read error.
 */
static int
classify(struct pop3_session *s, struct store_read *r, struct msg *m,
    time_t now, bool may_top, bool *seen_r)
{
	struct pop3_ledger_info li;
	const char *err = NULL;
	int rc = pop3_deliver_ledger_lookup(r, s->acct, m->key, m->key_len,
	    &li, &err);

	if (rc < 0) {
		pop3_session_fail(s, POP3_OUTCOME_STORE, "ledger lookup: %s",
		    err);
		return -1;
	}
	if (rc == 0 && li.deleted_upstream) {
		/* DELE + QUIT for this UIDL succeeded earlier, yet it is
		   listed again. Either the server reuses UIDLs (some number
		   them): a new message, which skipping would lose; or it
		   kept the message it said it deleted. RETR tells: the
		   bytes are compared with the stored copy (data_done). */
		m->reused = true;
		m->prev = li;
		rc = STORE_NOT_FOUND;
	}
	*seen_r = rc == 0;
	if (rc == 0) {
		m->action = ACT_NONE;
		switch (s->acct->mode) {
		case UPSTREAM_MODE_KEEP:
			break;
		case UPSTREAM_MODE_DELETE:
			/* committed earlier, DELE lost (crash, cut before
			   QUIT): delete now, never deliver again */
			m->want_dele = li.delivered;
			break;
		case UPSTREAM_MODE_DELETE_AFTER:
			m->want_dele = li.delivered && li.seen +
			    (int64_t)s->acct->delete_after_days * 86400 <=
			    (int64_t)now;
			break;
		case UPSTREAM_MODE_MIRROR:
			m->want_dele = li.delivered && !li.still_present;
			break;
		}
		if (!m->want_dele || m->verified)
			return 0;
		if (!li.has_fingerprint && !li.still_present) {
			/* no download could verify it (data_done would find
			   nothing to compare with): none is made */
			m->want_dele = false;
			report_unverifiable(s, m);
			return 0;
		}
		/* Never DELE a message unseen. This key's message was
		   stored earlier but is still listed (a crash or cut
		   before QUIT, a lost QUIT answer, a failed ledger mark,
		   delete-after or mirror coming due): the server may have
		   deleted it after all and reused the UIDL for another
		   message, even one of the same size. Fetch it; data_done
		   compares it with the ledger's fingerprint, then DELEs
		   it (same) or stores it as new (different). Costs one
		   RETR per message deleted without a fetch this session. */
		m->want_dele = false;
		m->reused = true;
		m->verify = true;
		m->prev = li;
		*seen_r = false;
		if (may_top && top_check_usable(s, m, &li)) {
			/* TOP n 0 first; RETR (as above) only if it differs */
			m->action = ACT_CHECK;
			return 0;
		}
	}
	m->action = ACT_FETCH;
	if (m->list_size > s->size_limit) {
		char esc[LOG_PEER_TEXT_MAX + 1];

		m->action = ACT_SKIP;
		s->result.skipped++;
		log_warn("pop3 account=%s event=message-skipped msgno=%u "
		    "uidl=\"%s\" size=%llu limit=%llu reason=\"over the "
		    "account's size limit; left on the server\"", s->log_id,
		    m->msgno, log_escape(esc, sizeof(esc), m->key, m->key_len),
		    (unsigned long long)m->list_size,
		    (unsigned long long)s->size_limit);
	}
	return 0;
}

static int
classify_all(struct pop3_session *s)
{
	struct store_read *r = NULL;
	const char *err = NULL;
	time_t now = s->env.now != NULL ? s->env.now() : time(NULL);
	uint32_t news = 0;
	bool seen;

	if (store_read_begin(s->env.store, &r, &err) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_STORE, "store: %s", err);
		return -1;
	}
	s->todo_count = 0;
	for (size_t i = 0; i < s->msg_count; i++) {
		struct msg *m = &s->msgs[i];

		if (m->hash_key && m->key == NULL) {
			/* keyed (and looked up) when its data arrives */
			m->action = ACT_FETCH;
			s->todo[s->todo_count++] = (uint32_t)i;
			news++;
			continue;
		}
		if (classify(s, r, m, now, true, &seen) < 0) {
			store_read_end(&r);
			return -1;
		}
		if (m->action == ACT_CHECK)
			s->todo[s->todo_count++] = (uint32_t)i;
		if (m->action == ACT_FETCH) {
			s->todo[s->todo_count++] = (uint32_t)i;
			news++;
		}
	}
	store_read_end(&r);
	s->status->import_total = news;
	return 0;
}

/* ---- per-response handlers ----------------------------------------- */

void
pop3_fetch_list_done(struct pop3_session *s)
{
	if (s->msg_count > 0)
		qsort(s->msgs, s->msg_count, sizeof(*s->msgs), cmp_msgno);
	for (size_t i = 1; i < s->msg_count; i++) {
		if (s->msgs[i].msgno == s->msgs[i - 1].msgno) {
			pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
			    "LIST names message %u twice", s->msgs[i].msgno);
			return;
		}
	}
	/* twice: a message checked by TOP may be RETRieved after it */
	s->todo = xcalloc(s->msg_count ? 2 * s->msg_count : 1,
	    sizeof(*s->todo));
	if (s->capa.seen && !s->capa.uidl) {
		/* try anyway: some servers forget to announce it */
		log_debug("pop3 account=%s event=uidl-not-announced",
		    s->log_id);
	}
	s->uidl_ok = true;
	pop3_session_send(s, CMD_UIDL, 0, "UIDL");
}

void
pop3_fetch_uidl_done(struct pop3_session *s)
{
	const char *why = NULL;

	if (s->uidl_cmd_failed)
		why = "server has no UIDL";
	else if (!s->uidl_ok)
		why = s->fallback_reason != NULL ? s->fallback_reason :
		    "unusable UIDLs";
	else {
		for (size_t i = 0; i < s->msg_count; i++) {
			if (s->msgs[i].key == NULL && !s->msgs[i].hash_key) {
				why = "UIDL and LIST disagree";
				break;
			}
		}
		if (why == NULL && mark_duplicate_uidls(s) > 0 &&
		    s->hash_key_reason == NULL)
			s->hash_key_reason = "duplicate UIDLs";
	}
	if (why != NULL) {
		for (size_t i = 0; i < s->msg_count; i++) {
			free(s->msgs[i].key);
			s->msgs[i].key = NULL;
			s->msgs[i].key_len = 0;
			s->msgs[i].hash_key = false;	/* all are now */
		}
		s->key_from_retr = !s->capa.top;
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy),
		    "content-hash via %s (%s)",
		    s->key_from_retr ? "RETR" : "TOP", why);
		log_warn("pop3 account=%s event=uidl-fallback reason=\"%s\" "
		    "strategy=\"%s\"", s->log_id, why,
		    s->status->uidl_strategy);
	} else if (s->hash_key_reason != NULL) {
		size_t n = 0;

		for (size_t i = 0; i < s->msg_count; i++)
			n += s->msgs[i].hash_key;
		/* only the flawed ones: the others keep their ledger keys */
		s->top_partial = s->capa.top;
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy),
		    "uidl; %zu by content-hash via %s (%s)", n,
		    s->top_partial ? "TOP" : "RETR", s->hash_key_reason);
		log_warn("pop3 account=%s event=uidl-fallback messages=%zu "
		    "reason=\"%s\" strategy=\"%s\"", s->log_id, n,
		    s->hash_key_reason, s->status->uidl_strategy);
	} else {
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy), "uidl");
	}
	if (pop3_deliver_mailbox(s->env.store, s->acct, &s->mailbox_id,
	    &why) < 0) {
		pop3_session_fail(s, POP3_OUTCOME_STORE,
		    "target mailbox: %s", why);
		return;
	}
	if (s->status->uidl_strategy[0] == 'c') {
		if (s->key_from_retr) {
			/* every message is fetched and keyed on arrival */
			s->todo_count = 0;
			for (size_t i = 0; i < s->msg_count; i++) {
				s->msgs[i].action = ACT_FETCH;
				s->todo[s->todo_count++] = (uint32_t)i;
			}
			s->status->import_total = (uint32_t)s->msg_count;
			pop3_fetch_start_phase(s);
			return;
		}
		s->top_phase = true;
		s->todo_count = 0;
		for (size_t i = 0; i < s->msg_count; i++)
			s->todo[s->todo_count++] = (uint32_t)i;
		s->todo_next = 0;
		s->todo_done = 0;
		pop3_fetch_pump(s);
		return;
	}
	if (s->top_partial) {
		/* TOP the hash_key messages first: those already in the
		   ledger need no RETR (see pop3_fetch_pump) */
		s->top_phase = true;
		s->todo_count = 0;
		for (size_t i = 0; i < s->msg_count; i++) {
			if (s->msgs[i].hash_key)
				s->todo[s->todo_count++] = (uint32_t)i;
		}
		s->todo_next = 0;
		s->todo_done = 0;
		pop3_fetch_pump(s);
		return;
	}
	if (classify_all(s) < 0)
		return;
	pop3_fetch_start_phase(s);
}

static void
send_deles_and_quit(struct pop3_session *s)
{
	/* stopping: no more DELEs; QUIT once those in flight are answered */
	for (size_t i = 0; i < s->msg_count && !s->stopping; i++) {
		struct msg *m = &s->msgs[i];

		if (m->want_dele && !m->dele_sent) {
			/* DELE can only be a few per pump; the queue is
			   bounded, so send what fits and come back */
			if (s->q_len >= POP3_CLIENT_PIPELINE_MAX)
				return;
			m->dele_sent = true;
			pop3_session_send(s, CMD_DELE, (uint32_t)i, "DELE %u",
			    m->msgno);
		}
	}
	if (s->q_len == 0)
		pop3_session_send(s, CMD_QUIT, 0, "QUIT");
}

static size_t
window(struct pop3_session *s)
{
	return s->capa.pipelining ? POP3_CLIENT_PIPELINE_MAX : 1;
}

void
pop3_fetch_pump(struct pop3_session *s)
{
	if (s->finishing)
		return;
	while (s->todo_next < s->todo_count && s->q_len < window(s) &&
	    s->inflight_count < POP3_BATCHES_INFLIGHT_MAX &&
	    (s->q_len == 0 ||
	    s->inflight_bytes < POP3_CLIENT_PIPELINE_BYTES)) {
		uint32_t i = s->todo[s->todo_next++];
		struct msg *m = &s->msgs[i];

		if (!s->top_phase && m->action == ACT_CHECK &&
		    s->top_check_failed) {
			m->action = ACT_FETCH;	/* RETR, verified as before */
			s->status->import_total++;
		}
		if (s->top_phase || m->action == ACT_CHECK ||
		    m->action == ACT_IDENT) {
			pop3_session_send(s, CMD_TOP, i, "TOP %u 0", m->msgno);
		} else {
			s->inflight_bytes += m->list_size;
			pop3_session_send(s, CMD_RETR, i, "RETR %u", m->msgno);
		}
	}
	if (s->todo_done < s->todo_count)
		return;
	if (s->ident_phase) {
		pop3_ident_decide(s);
		return;
	}
	if (s->top_phase && s->top_partial) {
		/*
		 * The hash_key messages of a UIDL listing have keys from
		 * TOP n 0 (header block + LIST size, numbered: the very key
		 * the RETR path derives, from the same header bytes). One
		 * found in the ledger was delivered: no RETR. A new one is
		 * RETRed and keyed again from its RETR bytes in data_done,
		 * so what the ledger keeps is always RETR-derived: a server
		 * whose TOP headers differ from its RETR headers costs a
		 * RETR per poll (as before), never a duplicate. If TOP
		 * failed, every hash_key message is RETR-keyed.
		 */
		s->top_phase = false;
		for (size_t i = 0; i < s->msg_count; i++) {
			struct msg *m = &s->msgs[i];

			if (m->hash_key && (s->top_partial_failed ||
			    m->key_len != 66)) {
				free(m->key);
				m->key = NULL;
				m->key_len = 0;
			}
		}
		if (!s->top_partial_failed)
			number_hash_keys(s, s->msg_count, true);
		if (classify_all(s) < 0)
			return;
		pop3_fetch_start_phase(s);
		return;
	}
	if (s->top_phase && s->key_from_retr) {
		/* TOP failed: every message is fetched and keyed on arrival */
		s->top_phase = false;
		s->todo_count = 0;
		for (size_t i = 0; i < s->msg_count; i++) {
			free(s->msgs[i].key);
			s->msgs[i].key = NULL;
			s->msgs[i].key_len = 0;
			s->msgs[i].action = ACT_FETCH;
			s->todo[s->todo_count++] = (uint32_t)i;
		}
		s->status->import_total = (uint32_t)s->msg_count;
		pop3_fetch_start_phase(s);
		return;
	}
	if (s->top_phase) {
		s->top_phase = false;
		number_hash_keys(s, s->msg_count, false);
		if (classify_all(s) < 0)
			return;
		pop3_fetch_start_phase(s);
		return;
	}
	if (s->q_len > 0 && pop3_session_front(s)->kind != CMD_DELE)
		return;
	pop3_fetch_flush(s);
	/* DELE only for what is durably stored: wait for every batch */
	if (s->inflight_count > 0 || s->finishing)
		return;
	send_deles_and_quit(s);
}

void
pop3_fetch_start_phase(struct pop3_session *s)
{
	if (pop3_ident_start(s))
		return;	/* back here once the unknown UIDLs are looked at */
	gettimeofday(&s->import_start, NULL);
	s->status->import_done = 0;
	s->status->import_bytes = 0;
	s->status->import_rate = 0;
	s->todo_next = 0;
	s->todo_done = 0;
	if (s->todo_count > 0)
		log_info("pop3 account=%s event=import new=%zu listed=%zu "
		    "strategy=\"%s\"", s->log_id, s->todo_count, s->msg_count,
		    s->status->uidl_strategy);
	pop3_fetch_pump(s);
}

/* A message checked by TOP is RETRieved after all (verified as a DELE
 * always was): queued behind the others. todo holds room for this (at
 * most once per message). */
static void
check_by_retr(struct pop3_session *s, uint32_t idx)
{
	s->msgs[idx].action = ACT_FETCH;
	s->todo[s->todo_count++] = idx;
	s->status->import_total++;
}

/* The header block TOP n 0 sent for a message whose DELE is due. */
static void
top_check_done(struct pop3_session *s, uint32_t idx)
{
	struct msg *m = &s->msgs[idx];
	unsigned char hd[32];
	char esc[LOG_PEER_TEXT_MAX + 1];

	pop3_deliver_head_digest(s->body.data != NULL ? s->body.data : "",
	    s->body.len, hd);
	strbuf_reset(&s->body);
	log_escape(esc, sizeof(esc), m->key, m->key_len);
	if (s->body_over_limit ||
	    memcmp(hd, m->prev.head_digest, sizeof(hd)) != 0) {
		s->body_over_limit = false;
		/* a server that rewrites headers, or another message under
		   this UIDL: the bytes decide */
		log_info("pop3 account=%s event=top-check-differs msgno=%u "
		    "uidl=\"%s\" action=\"RETR and compare\"", s->log_id,
		    m->msgno, esc);
		check_by_retr(s, idx);
		return;
	}
	log_info("pop3 account=%s event=dele-verified msgno=%u uidl=\"%s\" "
	    "by=top", s->log_id, m->msgno, esc);
	s->result.checked_top++;
	m->action = ACT_NONE;
	m->reused = false;
	m->verify = false;
	m->verified = true;
	m->want_dele = true;
}

/* A RETR or TOP completed with its data in s->body. */
void
pop3_fetch_data_done(struct pop3_session *s, const struct cmd *c)
{
	struct msg *m = &s->msgs[c->msg];
	char esc[LOG_PEER_TEXT_MAX + 1];

	s->todo_done++;
	if (c->kind == CMD_RETR)
		s->inflight_bytes -= m->list_size;
	if (c->kind == CMD_TOP && m->action == ACT_CHECK) {
		top_check_done(s, c->msg);
		return;
	}
	if (c->kind == CMD_TOP && m->action == ACT_IDENT) {
		const char *d = s->body.data != NULL ? s->body.data : "";

		/* a header block that names its message: Message-ID and
		   Date (docs/design-notes.md) */
		m->ident_ok = !s->body_over_limit &&
		    pop3_header_has_field(d, s->body.len, "message-id") &&
		    pop3_header_has_field(d, s->body.len, "date");
		if (m->ident_ok)
			pop3_deliver_head_digest(d, s->body.len,
			    m->ident_head);
		s->body_over_limit = false;
		strbuf_reset(&s->body);
		return;
	}
	if (c->kind == CMD_TOP) {
		set_hash_key(m, s->body.data != NULL ? s->body.data : "",
		    s->body.len, m->list_size);
		strbuf_reset(&s->body);
		return;
	}
	if (s->body_over_limit) {
		s->result.skipped++;
		log_warn("pop3 account=%s event=message-skipped msgno=%u "
		    "uidl=\"%s\" listed-size=%llu reason=\"data over the size "
		    "limit (LIST understated it); left on the server\"",
		    s->log_id, m->msgno, m->key != NULL ? log_escape(esc,
		    sizeof(esc), m->key, m->key_len) : "",
		    (unsigned long long)m->list_size);
		strbuf_reset(&s->body);
		s->body_over_limit = false;
		return;
	}
	if (s->body.len != m->list_size) {
		s->result.size_mismatch++;
		log_debug("pop3 account=%s event=size-mismatch msgno=%u "
		    "listed=%llu received=%zu", s->log_id, m->msgno,
		    (unsigned long long)m->list_size, s->body.len);
	}
	if (s->key_from_retr || m->hash_key) {
		struct store_read *r = NULL;
		const char *err = NULL;
		bool seen = false;

		set_hash_key(m, s->body.data != NULL ? s->body.data : "",
		    s->body.len, m->list_size);
		number_one_key(s, c->msg);
		/* the RETR-derived key decides afresh: forget what a
		   lookup of the TOP-derived key concluded */
		m->reused = false;
		m->verify = false;
		memset(&m->prev, 0, sizeof(m->prev));
		if (store_read_begin(s->env.store, &r, &err) < 0) {
			pop3_session_fail(s, POP3_OUTCOME_STORE, "store: %s",
			    err);
			return;
		}
		if (classify(s, r, m, s->env.now != NULL ? s->env.now() :
		    time(NULL), false, &seen) < 0) {
			store_read_end(&r);
			return;
		}
		store_read_end(&r);
		if (seen || m->action != ACT_FETCH) {
			strbuf_reset(&s->body);
			return;
		}
	}
	if (m->reused) {
		const char *err = NULL;
		int same = pop3_deliver_same_body(s->env.store, s->acct,
		    &m->prev, s->body.data, s->body.len, &err);

		if (same < 0) {
			pop3_session_fail(s, POP3_OUTCOME_STORE, "store: %s",
			    err);
			return;
		}
		if (same == POP3_DELIVER_SAME_UNKNOWN && m->verify) {
			/* the stored copy went since classify() looked */
			report_unverifiable(s, m);
			strbuf_reset(&s->body);
			return;
		}
		if (same == POP3_DELIVER_SAME_UNKNOWN)
			same = 0;	/* deleted before, listed again: new */
		if (!same || !m->verify)
			log_warn("pop3 account=%s event=%s msgno=%u "
			    "uidl=\"%s\"", s->log_id, same ?
			    "deleted-message-listed-again" : "uidl-reused",
			    m->msgno, log_escape(esc, sizeof(esc), m->key,
			    m->key_len));
		else
			log_info("pop3 account=%s event=dele-verified "
			    "msgno=%u uidl=\"%s\" by=retr", s->log_id,
			    m->msgno, log_escape(esc, sizeof(esc), m->key,
			    m->key_len));
		if (same && m->verify)
			s->result.checked_retr++;
		if (same) {
			/* the stored message itself: delete (again),
			   deliver nothing */
			m->reused = false;
			m->verified = true;
			m->want_dele = true;
			strbuf_reset(&s->body);
			return;
		}
	}
	if (s->batch_count == 0)
		gettimeofday(&s->batch_start, NULL);
	if (s->batch == NULL)
		s->batch = xcalloc(POP3_CLIENT_BATCH_MSGS,
		    sizeof(*s->batch));
	s->batch[s->batch_count].msg = c->msg;
	s->batch[s->batch_count].data = strbuf_detach(&s->body,
	    &s->batch[s->batch_count].size);
	s->batch_bytes += s->batch[s->batch_count].size;
	s->batch_count++;
	if (batch_due(s))
		pop3_fetch_flush(s);
}

/* The ledger has recorded the deletions (or could not). */
static void
mark_done(void *arg, int rc, const char *err)
{
	struct pop3_session *s = arg;

	s->mark_job = NULL;
	s->inflight_count--;
	/* A failed mark loses nothing: the entries stay "stored, not
	   deleted", and a key listed again is fetched and compared before
	   any DELE (classify). But the admin is told: the ledger no longer
	   matches the server, and a store that cannot write is about to
	   fail deliveries. */
	if (rc < 0) {
		log_error("pop3 account=%s event=ledger-mark-failed "
		    "messages=%u error=\"%s\" action=\"deleted upstream but "
		    "not recorded; a UIDL listed again is fetched and compared "
		    "before any DELE\"", s->log_id, s->result.deleted, err);
		if (s->result.error[0] == '\0')
			snprintf(s->result.error, sizeof(s->result.error),
			    "%u messages deleted upstream, but the ledger could "
			    "not record it: %s", s->result.deleted, err);
	}
	if (s->finishing && s->inflight_count == 0)
		event_active(s->finish_ev, EV_TIMEOUT, 1);
}

/* QUIT +OK: the DELEs took effect; the ledger is told (the session ends
 * once it has recorded them). */
void
pop3_fetch_quit_done(struct pop3_session *s)
{
	const void **keys = xcalloc(s->msg_count + 1, sizeof(*keys));
	size_t *lens = xcalloc(s->msg_count + 1, sizeof(*lens));
	size_t n = 0;

	for (size_t i = 0; i < s->msg_count; i++) {
		if (s->msgs[i].dele_ok) {
			keys[n] = s->msgs[i].key;
			lens[n++] = s->msgs[i].key_len;
		}
	}
	s->result.deleted = (uint32_t)n;
	s->result.outcome = POP3_OUTCOME_OK;
	if (n > 0) {
		s->inflight_count++;
		s->mark_job = pop3_deliver_mark_deleted_submit(s->env.store,
		    s->acct, keys, lens, n, mark_done, s);
	}
	free(keys);
	free(lens);
	log_info("pop3 account=%s event=poll-done listed=%zu fetched=%u "
	    "bytes=%llu known=%u known_top=%u deleted=%u skipped=%u "
	    "size_mismatch=%u checked_top=%u checked_retr=%u error=\"%s\"",
	    s->log_id, s->msg_count, s->result.fetched,
	    (unsigned long long)s->result.fetched_bytes, s->result.known,
	    s->result.known_top, s->result.deleted,
	    s->result.skipped, s->result.size_mismatch,
	    s->result.checked_top, s->result.checked_retr, s->result.error);
}

/* One line of the LIST response: a message of the table. */
void
pop3_fetch_list_line(struct pop3_session *s, const char *line, size_t len)
{
	const char *err = NULL;
	uint32_t msgno;
	uint64_t size;
	struct msg *m;

	if (pop3_parse_list_line(line, len, &msgno, &size, &err) < 0) {
		char esc[LOG_PEER_TEXT_MAX + 1];

		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "bad LIST line (%s): '%s'", err,
		    log_escape(esc, sizeof(esc), line, len));
		return;
	}
	if (s->msg_count == POP3_MSG_COUNT_MAX) {
		pop3_session_fail(s, POP3_OUTCOME_PROTOCOL,
		    "LIST has more than %u messages",
		    POP3_MSG_COUNT_MAX);
		return;
	}
	if (s->msg_count == s->msg_alloc) {
		s->msg_alloc = s->msg_alloc ? s->msg_alloc * 2 : 64;
		s->msgs = xreallocarray(s->msgs, s->msg_alloc,
		    sizeof(*s->msgs));
	}
	m = &s->msgs[s->msg_count++];
	memset(m, 0, sizeof(*m));
	m->msgno = msgno;
	m->list_size = size;
}

/* One line of the UIDL response; a flaw switches to the fallback. */
void
pop3_fetch_uidl_line(struct pop3_session *s, const char *line, size_t len)
{
	const char *err = NULL;
	uint32_t msgno;
	const char *uid;
	size_t uid_len;
	enum pop3_uidl_flaw flaw;
	struct msg *m;

	if (!s->uidl_ok)
		return;	/* already falling back; drain the rest */
	if (pop3_parse_uidl_line(line, len, &msgno, &uid, &uid_len,
	    &flaw, &err) < 0) {
		s->uidl_ok = false;
		s->fallback_reason = "malformed UIDL line";
		return;
	}
	m = msg_by_no(s, msgno);
	if (m != NULL && m->key == NULL && !m->hash_key &&
	    flaw != POP3_UIDL_OK) {
		/* this message only is keyed by content on arrival */
		m->hash_key = true;
		if (s->hash_key_reason == NULL)
			s->hash_key_reason = flaw == POP3_UIDL_EMPTY ?
			    "empty UIDL" : flaw == POP3_UIDL_TOO_LONG ?
			    "UIDL over 70 characters" :
			    "UIDL with bad characters";
		return;
	}
	if (m == NULL || m->key != NULL || m->hash_key) {
		s->uidl_ok = false;
		s->fallback_reason = m == NULL ?
		    "UIDL and LIST disagree" :
		    "UIDL names a message twice";
		return;
	}
	m->key = xmemdup(uid, uid_len);
	m->key_len = uid_len;
}

void
pop3_fetch_top_failed(struct pop3_session *s, const struct msg *m,
    const char *why)
{
	s->todo_done++;
	if (m->action == ACT_IDENT) {
		/* no more TOPs: the unknown UIDLs left are RETRieved, and
		   DELEs due are checked by RETR (top_check_failed) */
		if (!s->top_check_failed)
			log_warn("pop3 account=%s event=top-failed msgno=%u "
			    "error=\"%s\" action=\"unknown UIDLs are "
			    "RETRieved, DELEs checked by RETR this session\"",
			    s->log_id, m->msgno, why);
		s->top_check_failed = true;
		s->todo_count = s->todo_next;
		pop3_fetch_pump(s);
		return;
	}
	if (m->action == ACT_CHECK) {
		if (!s->top_check_failed)
			log_warn("pop3 account=%s event=top-failed msgno=%u "
			    "error=\"%s\" action=\"messages due for DELE are "
			    "checked by RETR this session\"", s->log_id,
			    m->msgno, why);
		s->top_check_failed = true;
		check_by_retr(s, (uint32_t)(m - s->msgs));
		pop3_fetch_pump(s);
		return;
	}
	if (s->top_partial) {
		if (!s->top_partial_failed) {
			size_t n = 0;

			for (size_t i = 0; i < s->msg_count; i++)
				n += s->msgs[i].hash_key;
			s->top_partial_failed = true;
			s->todo_count = s->todo_next;
			log_warn("pop3 account=%s event=top-failed msgno=%u "
			    "error=\"%s\" strategy=\"content-hash via RETR "
			    "for the messages without a usable UIDL\"",
			    s->log_id, m->msgno, why);
			snprintf(s->status->uidl_strategy,
			    sizeof(s->status->uidl_strategy),
			    "uidl; %zu by content-hash via RETR (%s, TOP "
			    "failed)", n, s->hash_key_reason);
		}
		pop3_fetch_pump(s);
		return;
	}
	if (!s->key_from_retr) {
		s->key_from_retr = true;
		/* send no more TOPs; the ones in flight still complete */
		s->todo_count = s->todo_next;
		log_warn("pop3 account=%s event=top-failed msgno=%u error=\"%s\" "
		    "strategy=\"content-hash via RETR\"", s->log_id, m->msgno,
		    why);
		snprintf(s->status->uidl_strategy,
		    sizeof(s->status->uidl_strategy),
		    "content-hash via RETR (no UIDL, TOP failed)");
	}
	pop3_fetch_pump(s);
}

void
pop3_fetch_note_peer(struct pop3_session *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = bufferevent_getfd(s->bev);
	const void *a = NULL;
	int af = 0;

	s->peer_addr[0] = '\0';
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		af = AF_INET;
		a = &((struct sockaddr_in *)&ss)->sin_addr;
	} else if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((struct sockaddr_in6 *)&ss)->sin6_addr;

		/* ::ffff:127.0.0.1 is 127.0.0.1 */
		af = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
		a = af == AF_INET ? (const void *)&a6->s6_addr[12] : a6;
	}
	if (a == NULL || inet_ntop(af, a, s->peer_addr,
	    sizeof(s->peer_addr)) == NULL)
		s->peer_addr[0] = '\0';
}
