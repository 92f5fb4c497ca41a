/* pop3-deliver — see pop3-deliver.h. */
#include "pop3-upstream/pop3-deliver.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pop3-upstream/pop3-parse.h"
#include "store/mail-fts.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/mail-sortkey.h"
#include "store/store.h"
#include "strbuf.h"
#include "workq.h"
#include "xmalloc.h"

_Static_assert(UPSTREAM_MAILBOX_KEY_SIZE == STORE_MAILBOX_KEY_SIZE,
    "the store indexes digests under the upstream's mailbox key");

struct mbox_create {
	uint32_t user_id;
	const char *name;
	uint32_t id;
};

static int
mbox_create_apply(struct store *store, void *ctx, const char **error_r)
{
	struct mbox_create *mc = ctx;

	return store_mailbox_create(store, mc->user_id, mc->name,
	    STORE_ROLE_NONE, &mc->id, error_r);
}

int
pop3_deliver_mailbox(struct store *store,
    const struct upstream_account *acct, uint32_t *mailbox_id_r,
    const char **error_r)
{
	const char *name = acct->mailbox != NULL ? acct->mailbox : "INBOX";
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	int rc;

	if (store_read_begin(store, &r, error_r) < 0)
		return -1;
	rc = store_mailbox_lookup(r, acct->user_id, name, &info, error_r);
	if (rc == 0)
		*mailbox_id_r = info.id;
	store_read_end(&r);
	if (rc < 0)
		return -1;
	if (rc == STORE_NOT_FOUND) {
		struct mbox_create mc = { acct->user_id, name, 0 };

		/* once in an account's life: waits for one group commit */
		if (store_write_sync(store, acct->user_id, 0, 0,
		    mbox_create_apply, &mc, error_r) < 0)
			return -1;
		*mailbox_id_r = mc.id;
	}
	return 0;
}

int
pop3_deliver_ledger_lookup(struct store_read *r,
    const struct upstream_account *acct, const char *uidl, size_t uidl_size,
    struct pop3_ledger_info *info_r, const char **error_r)
{
	struct store_ledger_entry e;
	struct store_msg m;
	int rc;

	memset(info_r, 0, sizeof(*info_r));
	rc = store_ledger_lookup(r, acct->user_id, acct->id, uidl, uidl_size,
	    &e, error_r);
	if (rc != 0)
		return rc;
	info_r->seen = e.seen;
	info_r->delivered = e.mailbox_id != 0;
	info_r->deleted_upstream = e.deleted_upstream;
	info_r->mailbox_id = e.mailbox_id;
	info_r->uid = e.uid;
	info_r->has_fingerprint = e.has_fingerprint;
	info_r->body_size = e.body_size;
	info_r->body_hash = e.body_hash;
	info_r->has_body = e.has_body;
	info_r->body_id = e.body_id;
	info_r->has_head = e.has_head;
	memcpy(info_r->head_digest, e.head_digest, sizeof(info_r->head_digest));
	info_r->list_size = e.list_size;
	info_r->by_head = e.by_head;
	if (info_r->delivered) {
		rc = store_msg_get(r, acct->user_id, e.mailbox_id, e.uid, &m,
		    error_r);
		if (rc < 0)
			return -1;
		info_r->still_present = rc == 0;
		/* Moved or copied elsewhere and the original expunged: the
		   user still has the message (it shares the body), so mirror
		   mode must not delete it upstream. */
		if (rc != 0 && e.has_body) {
			rc = store_body_present(r, acct->user_id, e.body_id,
			    error_r);
			if (rc < 0)
				return -1;
			info_r->still_present = rc == 0;
		}
	}
	return 0;
}

void
pop3_deliver_head_digest(const char *data, size_t size, unsigned char out[32])
{
	size_t hl = pop3_header_length(data, size), i = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL)
		abort();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	/* runs between CRs that end a line: CRLF and LF hash alike */
	while (i < hl) {
		const char *cr = memchr(data + i, '\r', hl - i);
		size_t end = cr != NULL ? (size_t)(cr - data) : hl;

		EVP_DigestUpdate(c, data + i, end - i);
		if (cr == NULL)
			break;
		if (end + 1 >= hl || data[end + 1] != '\n')
			EVP_DigestUpdate(c, "\r", 1);	/* a bare CR stays */
		i = end + 1;
	}
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

static bool
refusal_is_per_message(enum store_error e)
{
	return e == STORE_ERR_INVALID || e == STORE_ERR_EXISTS ||
	    e == STORE_ERR_LIMIT;
}

static void
set_outcome(struct pop3_deliver_outcome *o, bool stored,
    enum store_error refused, const char *error)
{
	o->stored = stored;
	o->known = false;
	o->refused = (int)refused;
	snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
}

struct listing_key {
	const char *data;
	size_t size;
};

struct pop3_deliver_listing {
	atomic_uint refs;
	struct listing_key *keys;	/* sorted (key_cmp) */
	size_t count;
	/* the mailbox's key by the address the session reached */
	bool has_addr;
	unsigned char addr_key[UPSTREAM_MAILBOX_KEY_SIZE];
};

void
pop3_deliver_listing_set_address(struct pop3_deliver_listing *l,
    const struct upstream_account *acct, const char *address)
{
	if (address == NULL || address[0] == '\0')
		return;
	upstream_mailbox_key_at(acct, address, l->addr_key);
	l->has_addr = true;
}

/* The keys a mailbox is known by in this session: its name's, and the
 * address's when known. */
static size_t
mailbox_names(const unsigned char *name_key,
    const struct pop3_deliver_listing *l, const unsigned char *keys[2])
{
	keys[0] = name_key;
	keys[1] = l != NULL && l->has_addr ? l->addr_key : NULL;
	return keys[1] != NULL ? 2 : 1;
}

/* Writer: the mailbox's canonical key (key) for the account's name key,
 * recording the names of this session. */
static int
mailbox_canon_write(struct store *store, uint32_t user_id,
    const struct pop3_deliver_listing *l, const unsigned char *name,
    unsigned char key[UPSTREAM_MAILBOX_KEY_SIZE], const char **error_r)
{
	const unsigned char *keys[2];
	size_t n = mailbox_names(name, l, keys);

	return store_ledger_mailbox_alias(store, user_id, keys, n, key,
	    error_r);
}

static int
key_cmp(const void *a, const void *b)
{
	const struct listing_key *x = a, *y = b;
	size_t n = x->size < y->size ? x->size : y->size;
	int c = memcmp(x->data, y->data, n);

	return c != 0 ? c : (x->size > y->size) - (x->size < y->size);
}

struct pop3_deliver_listing *
pop3_deliver_listing_new(const char *const *uidls, const size_t *sizes,
    size_t count)
{
	struct pop3_deliver_listing *l = xcalloc(1, sizeof(*l));

	atomic_init(&l->refs, 1);
	l->keys = xcalloc(count > 0 ? count : 1, sizeof(*l->keys));
	for (size_t i = 0; i < count; i++) {
		l->keys[i].data = xmemdup(uidls[i], sizes[i]);
		l->keys[i].size = sizes[i];
	}
	l->count = count;
	if (count > 0)
		qsort(l->keys, count, sizeof(*l->keys), key_cmp);
	return l;
}

void
pop3_deliver_listing_unref(struct pop3_deliver_listing **lp)
{
	struct pop3_deliver_listing *l = *lp;

	*lp = NULL;
	if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	for (size_t i = 0; i < l->count; i++)
		free((char *)l->keys[i].data);
	free(l->keys);
	free(l);
}

/* store_uidl_vanished_fn: not in this session's listing. */
static bool
listing_lacks(void *ctx, const void *uidl, size_t uidl_size)
{
	const struct pop3_deliver_listing *l = ctx;
	struct listing_key k = { uidl, uidl_size };

	return bsearch(&k, l->keys, l->count, sizeof(*l->keys),
	    key_cmp) == NULL;
}

/*
 * A batch on its way: parsed on a worker (structure, INTERNALDATE), then
 * stored by the writer in one job, then its outcomes back on the loop.
 * It owns copies of what the worker and the writer read: the account's
 * user and id (the account may be removed meanwhile) and the messages.
 */
struct pop3_deliver_job {
	struct workq_job wq;
	struct store *store;
	uint32_t user_id;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	/* the upstream mailbox its digests are indexed under (canonical,
	   set by the writer), and the key of the account's host name */
	unsigned char mailbox_key[UPSTREAM_MAILBOX_KEY_SIZE];
	unsigned char name_key[UPSTREAM_MAILBOX_KEY_SIZE];
	uint32_t mailbox_id;
	size_t count;
	struct pop3_deliver_msg *msgs;
	char **owned;		/* data taken over (async), else NULL */
	struct store_new_msg *nm;
	struct strbuf *blobs;
	struct strbuf *sortkeys;	/* SORT/THREAD keys (mail-sortkey.h) */
	struct mail_fts_terms *terms;	/* index terms (NULL: no index) */
	struct store_fts_doc *docs;
	struct strbuf segment;		/* the batch's index segment */
	uint32_t *uids;
	struct pop3_deliver_outcome *out;
	unsigned char (*digests)[STORE_DIGEST_SIZE];
	unsigned char (*heads)[STORE_DIGEST_SIZE];
	struct store_new_msg *sel;	/* writer: what is delivered */
	size_t *sel_idx;
	struct pop3_deliver_listing *listing;	/* a reference, or NULL */
	time_t now;
	/* the outcome */
	int rc;
	char error[POP3_DELIVER_ERROR_MAX];
	pop3_deliver_done_fn *done;
	void *arg;		/* NULL done: detached */
};

/* Worker: the batch's index segment, so that the writer only writes
 * body ids into it (store_fts_batch_build). */
static void
batch_index_segment(struct pop3_deliver_job *j)
{
	const struct store_fts_doc **docs;

	if (j->terms == NULL || j->count == 0)
		return;
	docs = xcalloc(j->count, sizeof(*docs));
	for (size_t i = 0; i < j->count; i++) {
		if (j->nm[i].fts == NULL) {
			free(docs);
			return;
		}
		docs[i] = j->nm[i].fts;
	}
	store_fts_batch_build(docs, j->count, &j->segment);
	free(docs);
	j->nm[0].fts_batch = j->segment.data;
	j->nm[0].fts_batch_size = j->segment.len;
}

/* Worker (or inline): the structure is cached at delivery so FETCH
 * never re-parses; INTERNALDATE from the topmost Received:, then Date:,
 * then now. The bytes are stored as received. */
static void
batch_parse(struct pop3_deliver_job *j)
{
	for (size_t i = 0; i < j->count; i++) {
		const struct pop3_deliver_msg *m = &j->msgs[i];
		struct mail_message *mm = mail_parse(m->data, m->size, NULL);
		int tz = 0;

		set_outcome(&j->out[i], false, STORE_ERR_NONE, NULL);
		j->nm[i].data = m->data;
		j->nm[i].size = m->size;
		j->nm[i].internaldate = j->now;
		if (mm != NULL) {
			mail_serialize(mm, &j->blobs[i]);
			j->nm[i].structure = j->blobs[i].data;
			j->nm[i].structure_size = j->blobs[i].len;
			mail_sortkey_of_message(mm, m->data, m->size,
			    &j->sortkeys[i]);
			j->nm[i].sortkey = j->sortkeys[i].data;
			j->nm[i].sortkey_size = j->sortkeys[i].len;
			j->nm[i].internaldate = mail_message_internaldate(mm,
			    j->now, &tz);
			if (j->terms != NULL) {
				mail_fts_message_terms(m->data, m->size, mm,
				    &j->terms[i]);
				j->docs[i].terms = j->terms[i].terms;
				j->docs[i].count = j->terms[i].count;
				j->docs[i].saturated = j->terms[i].saturated;
				j->nm[i].fts = &j->docs[i];
			}
			j->nm[i].tz_offset_min = tz;
			mail_message_free(&mm);
		}
		j->nm[i].account = j->account;
		j->nm[i].uidl = m->uidl;
		j->nm[i].uidl_size = m->uidl_size;
		j->nm[i].replace_ledger = m->replace;
		j->nm[i].mailbox_key = j->mailbox_key;
		/* the content identity, here on the worker: SHA-256 costs
		   about as much as the parse above (a few ms per MB) */
		if (EVP_Digest(m->size > 0 ? m->data : "", m->size,
		    j->digests[i], NULL, EVP_sha256(), NULL) == 1)
			j->nm[i].digest = j->digests[i];
		if (m->list_size > 0) {
			pop3_deliver_head_digest(m->data, m->size,
			    j->heads[i]);
			j->nm[i].head_digest = j->heads[i];
			j->nm[i].list_size = m->list_size;
		}
	}
	batch_index_segment(j);
}

/*
 * Writer: the batch's messages known by content (an earlier delivery
 * under a UIDL no longer listed) are claimed; the others are put in
 * j->sel (j->sel_idx[k]: their index in the batch). Each claim is its own
 * child transaction of this job, and the batch itself is never changed,
 * so a job run again (alone, for room) starts from nothing. -1: the
 * store failed.
 */
static int
batch_claim_known(struct store *store, struct pop3_deliver_job *j,
    size_t *left_r, const char **error_r)
{
	size_t left = 0, moved;

	/* the mailbox's canonical key (the names it is known by); j->nm
	   point at j->mailbox_key */
	if (mailbox_canon_write(store, j->user_id, j->listing, j->name_key,
	    j->mailbox_key, error_r) < 0)
		return -1;
	/* digests indexed by account name (ledgers from before the index
	   by mailbox) move to the mailbox's index first: a no-op once done */
	if (store_ledger_digests_rekey(store, j->user_id, j->account,
	    j->mailbox_key, &moved, error_r) < 0)
		return -1;
	for (size_t i = 0; i < j->count; i++) {
		bool claimed = false;

		if (j->listing != NULL && j->nm[i].digest != NULL &&
		    !j->msgs[i].replace &&
		    store_ledger_claim_digest(store, j->user_id, j->account,
		    j->mailbox_key, j->nm[i].digest, j->nm[i].uidl,
		    j->nm[i].uidl_size, listing_lacks, j->listing, &claimed,
		    error_r) < 0 &&
		    store_last_error(store) != STORE_ERR_EXISTS)
			return -1;
		if (claimed) {
			set_outcome(&j->out[i], true, STORE_ERR_NONE, NULL);
			j->out[i].known = true;
			continue;
		}
		j->sel[left] = j->nm[i];
		j->sel_idx[left] = i;
		left++;
	}
	/* the worker's segment was made for all of them: with some taken
	   out, the store uses the terms instead */
	if (left != j->count && left > 0) {
		j->sel[0].fts_batch = NULL;
		j->sel[0].fts_batch_size = 0;
	}
	*left_r = left;
	return 0;
}

/*
 * Writer: the whole batch in one delivery. When the store refuses it for
 * something one message can cause (INVALID, EXISTS, LIMIT), or because
 * the user's quota or the store's room would be passed (QUOTA, NOSPACE),
 * each message is tried on its own (each a child transaction of this
 * job): one bad message cannot block the others, and as many as fit are
 * stored. A failure for quota, room or I/O while going one by one keeps
 * what was stored before it (the job still commits), marks that message
 * with the class (QUOTA, NOSPACE) and is reported in j->error; an I/O
 * failure on the whole batch fails the job.
 */
static int
batch_apply(struct store *store, void *ctx, const char **error_r)
{
	struct pop3_deliver_job *j = ctx;
	enum store_error why;
	size_t count;

	j->error[0] = '\0';
	for (size_t i = 0; i < j->count; i++)
		set_outcome(&j->out[i], false, STORE_ERR_NONE, NULL);
	if (batch_claim_known(store, j, &count, error_r) < 0)
		return -1;
	if (count == 0)
		return 0;
	if (store_deliver(store, j->user_id, j->mailbox_id, j->sel, count,
	    j->uids, NULL, error_r) == 0) {
		for (size_t k = 0; k < count; k++)
			set_outcome(&j->out[j->sel_idx[k]], true,
			    STORE_ERR_NONE, NULL);
		return 0;
	}
	why = store_last_error(store);
	if (!refusal_is_per_message(why) && why != STORE_ERR_QUOTA &&
	    why != STORE_ERR_NOSPACE)
		return -1;
	for (size_t k = 0; k < count; k++) {
		struct pop3_deliver_outcome *o = &j->out[j->sel_idx[k]];
		const char *err = NULL;

		if (store_deliver(store, j->user_id, j->mailbox_id,
		    &j->sel[k], 1, &j->uids[k], NULL, &err) == 0) {
			set_outcome(o, true, STORE_ERR_NONE, NULL);
			continue;
		}
		why = store_last_error(store);
		if (!refusal_is_per_message(why)) {
			if (why == STORE_ERR_QUOTA || why == STORE_ERR_NOSPACE)
				set_outcome(o, false, why, err);
			snprintf(j->error, sizeof(j->error), "%s",
			    err != NULL ? err : "store error");
			break;
		}
		set_outcome(o, false, why, err);
	}
	return 0;
}

static struct pop3_deliver_job *
batch_new(struct store *store, const struct upstream_account *acct,
    uint32_t mailbox_id, const struct pop3_deliver_msg *msgs, size_t count)
{
	struct pop3_deliver_job *j = xcalloc(1, sizeof(*j));

	j->store = store;
	j->user_id = acct->user_id;
	snprintf(j->account, sizeof(j->account), "%s", acct->id);
	upstream_mailbox_key(acct, j->name_key);
	memcpy(j->mailbox_key, j->name_key, sizeof(j->mailbox_key));
	j->mailbox_id = mailbox_id;
	j->count = count;
	j->msgs = xmemdup(msgs, count * sizeof(*msgs));
	/* the UIDLs too: the requester may go while the job runs */
	for (size_t i = 0; i < count; i++)
		j->msgs[i].uidl = xmemdup(msgs[i].uidl, msgs[i].uidl_size);
	j->nm = xcalloc(count, sizeof(*j->nm));
	j->blobs = xcalloc(count, sizeof(*j->blobs));
	j->sortkeys = xcalloc(count, sizeof(*j->sortkeys));
	if (store_fts_enabled(store)) {
		j->terms = xcalloc(count, sizeof(*j->terms));
		j->docs = xcalloc(count, sizeof(*j->docs));
	}
	j->uids = xcalloc(count, sizeof(*j->uids));
	j->out = xcalloc(count, sizeof(*j->out));
	j->digests = xcalloc(count, sizeof(*j->digests));
	j->heads = xcalloc(count, sizeof(*j->heads));
	j->sel = xcalloc(count, sizeof(*j->sel));
	j->sel_idx = xcalloc(count, sizeof(*j->sel_idx));
	j->now = time(NULL);
	return j;
}

static void
batch_free(struct pop3_deliver_job *j)
{
	for (size_t i = 0; i < j->count; i++) {
		strbuf_free(&j->blobs[i]);
		strbuf_free(&j->sortkeys[i]);
		if (j->terms != NULL)
			mail_fts_terms_free(&j->terms[i]);
		free((char *)j->msgs[i].uidl);
		if (j->owned != NULL)
			free(j->owned[i]);
	}
	free(j->owned);
	free(j->blobs);
	free(j->sortkeys);
	free(j->terms);
	free(j->docs);
	strbuf_free(&j->segment);
	free(j->nm);
	free(j->uids);
	free(j->out);
	free(j->digests);
	free(j->heads);
	free(j->sel);
	free(j->sel_idx);
	pop3_deliver_listing_unref(&j->listing);
	free(j->msgs);
	free(j);
}

int
pop3_deliver_batch(struct store *store,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, size_t count,
    struct pop3_deliver_outcome *out, const char **error_r)
{
	static _Thread_local char errbuf[POP3_DELIVER_ERROR_MAX];
	struct pop3_deliver_job *j = batch_new(store, acct, mailbox_id, msgs,
	    count);
	int ret;

	batch_parse(j);
	ret = store_write_sync(store, acct->user_id, 0, 0, batch_apply, j,
	    error_r);
	memcpy(out, j->out, count * sizeof(*out));
	if (ret < 0) {
		/* rolled back whole: nothing of it is stored */
		for (size_t i = 0; i < count; i++)
			set_outcome(&out[i], false, STORE_ERR_NONE, NULL);
	} else if (j->error[0] != '\0') {
		snprintf(errbuf, sizeof(errbuf), "%s", j->error);
		*error_r = errbuf;
		ret = -1;
	}
	batch_free(j);
	return ret;
}

/* ---- asynchronous batches ---- */

static void
batch_stored(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct pop3_deliver_job *j = ctx;

	(void)cls;
	if (rc < 0) {
		/* nothing of the batch is stored (rolled back, or the
		   group's commit failed) */
		for (size_t i = 0; i < j->count; i++)
			set_outcome(&j->out[i], false, STORE_ERR_NONE, NULL);
		snprintf(j->error, sizeof(j->error), "%s",
		    error != NULL && error[0] != '\0' ? error : "store error");
	}
	if (j->done != NULL)
		j->done(j->arg, j->error[0] != '\0' ? -1 : 0, j->out, j->count,
		    j->error);
	batch_free(j);
}

static enum workq_run_result
batch_parse_run(struct workq_job *wq)
{
	batch_parse((struct pop3_deliver_job *)wq);
	return WORKQ_DONE;
}

static void
batch_parsed(struct workq_job *wq)
{
	struct pop3_deliver_job *j = (struct pop3_deliver_job *)wq;
	size_t bytes = 0;

	if (wq->cancelled) {
		/* the pool stopped first: nothing stored */
		batch_stored(j, -1, STORE_ERR_IO, "shutting down");
		return;
	}
	for (size_t i = 0; i < j->count; i++)
		bytes += j->msgs[i].size;
	store_write_submit(j->store, j->user_id, 0, bytes, batch_apply,
	    batch_stored, j);
}

void
pop3_deliver_batch_submit(struct store *store, struct workq *workq,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, char **data, size_t count,
    struct pop3_deliver_listing *listing, pop3_deliver_done_fn *done,
    void *arg, struct pop3_deliver_job **job_r)
{
	struct pop3_deliver_job *j = batch_new(store, acct, mailbox_id, msgs,
	    count);

	/* set before anything runs: without a pool and a writer, done()
	   comes (and may free what job_r points into) before we return */
	*job_r = j;
	j->owned = xmemdup(data, count * sizeof(*data));
	if (listing != NULL) {
		atomic_fetch_add(&listing->refs, 1);
		j->listing = listing;
	}
	j->done = done;
	j->arg = arg;
	j->wq.run = batch_parse_run;
	j->wq.done = batch_parsed;
	j->wq.key = acct->user_id;
	workq_submit(workq, &j->wq);
}

void
pop3_deliver_job_detach(struct pop3_deliver_job *job)
{
	job->done = NULL;
	job->arg = NULL;
}

struct mark_job {
	uint32_t user_id;
	const char *account;
	const void *const *uidls;
	const size_t *uidl_sizes;
	size_t count;
};

static int
mark_apply(struct store *store, void *ctx, const char **error_r)
{
	struct mark_job *m = ctx;

	return store_ledger_mark_deleted(store, m->user_id, m->account,
	    m->uidls, m->uidl_sizes, m->count, error_r);
}

/* The asynchronous mark: copies of the UIDLs, then the writer. */
struct pop3_mark_job {
	uint32_t user_id;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	void **uidls;
	size_t *sizes;
	size_t count;
	pop3_mark_done_fn *done;
	void *arg;		/* NULL done: detached */
};

static int
mark_async_apply(struct store *store, void *ctx, const char **error_r)
{
	struct pop3_mark_job *m = ctx;

	return store_ledger_mark_deleted(store, m->user_id, m->account,
	    (const void *const *)m->uidls, m->sizes, m->count, error_r);
}

static void
mark_async_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct pop3_mark_job *m = ctx;

	(void)cls;
	if (m->done != NULL)
		m->done(m->arg, rc < 0 ? -1 : 0, error);
	for (size_t i = 0; i < m->count; i++)
		free(m->uidls[i]);
	free(m->uidls);
	free(m->sizes);
	free(m);
}

struct pop3_mark_job *
pop3_deliver_mark_deleted_submit(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, pop3_mark_done_fn *done,
    void *arg)
{
	struct pop3_mark_job *m = xcalloc(1, sizeof(*m));

	m->user_id = acct->user_id;
	snprintf(m->account, sizeof(m->account), "%s", acct->id);
	m->uidls = xcalloc(count + 1, sizeof(*m->uidls));
	m->sizes = xcalloc(count + 1, sizeof(*m->sizes));
	for (size_t i = 0; i < count; i++) {
		m->uidls[i] = xmemdup(uidls[i], uidl_sizes[i]);
		m->sizes[i] = uidl_sizes[i];
	}
	m->count = count;
	m->done = done;
	m->arg = arg;
	store_write_submit(store, acct->user_id, 0, 0, mark_async_apply,
	    mark_async_done, m);
	/* without a writer it is done already (and freed) */
	return store_writer_running(store) ? m : NULL;
}

void
pop3_deliver_mark_job_detach(struct pop3_mark_job *job)
{
	if (job == NULL)
		return;
	job->done = NULL;
	job->arg = NULL;
}

int
pop3_deliver_mark_deleted(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, const char **error_r)
{
	struct mark_job m = { acct->user_id, acct->id, uidls, uidl_sizes,
	    count };

	/* once per poll, after QUIT: waits for one group commit */
	return store_write_sync(store, acct->user_id, 0, 0, mark_apply, &m,
	    error_r);
}

int
pop3_deliver_same_body(struct store *store,
    const struct upstream_account *acct,
    const struct pop3_ledger_info *prev, const char *data, size_t size,
    const char **error_r)
{
	struct store_read *r = NULL;
	const void *body;
	size_t body_size;
	int rc, same = 0;

	if (prev->has_body) {
		/* the delivered bytes, if the user still has them: an exact
		   answer, which no fingerprint collision can fool */
		if (store_read_begin(store, &r, error_r) < 0)
			return -1;
		rc = store_body_get(r, acct->user_id, prev->body_id, &body,
		    &body_size, error_r);
		if (rc == 0)
			same = body_size == size && (size == 0 ||
			    memcmp(body, data, size) == 0);
		store_read_end(&r);
		if (rc <= 0)
			return rc < 0 ? -1 : same;
	}
	if (prev->has_fingerprint) {
		/* what was delivered, whatever the user did with it since */
		return prev->body_size == (uint64_t)size &&
		    prev->body_hash == store_body_fingerprint(size > 0 ?
		    data : "", size);
	}
	/* an entry from before fingerprints: the stored copy, if any */
	if (prev->mailbox_id == 0)
		return POP3_DELIVER_SAME_UNKNOWN;
	if (store_read_begin(store, &r, error_r) < 0)
		return -1;
	rc = store_msg_body(r, acct->user_id, prev->mailbox_id, prev->uid,
	    &body, &body_size, error_r);
	if (rc == 0)
		same = body_size == size && memcmp(body, data, size) == 0;
	else if (rc > 0)
		same = POP3_DELIVER_SAME_UNKNOWN;
	store_read_end(&r);
	return rc < 0 ? -1 : same;
}

/* ---- recognition by header ---- */

struct cand_walk {
	const char *account;
	const struct pop3_deliver_listing *listing;
	const uint64_t *sizes;
	size_t n;
	struct pop3_head_candidate *v;
	size_t count, alloc;
};

static int
cmp_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

static int
cand_each(void *ctx, const char *account,
    const struct store_ledger_entry *e)
{
	struct cand_walk *w = ctx;
	struct pop3_head_candidate *c;

	if (!e->has_head || !e->has_digest || !e->has_body ||
	    e->mailbox_id == 0 || e->list_size == 0 ||
	    bsearch(&e->list_size, w->sizes, w->n, sizeof(*w->sizes),
	    cmp_u64) == NULL)
		return 0;
	/* this account's UIDL still listed: that message is there under it
	   (a second copy is not the first) */
	if (strcmp(account, w->account) == 0 &&
	    !listing_lacks((void *)w->listing, e->uidl, e->uidl_size))
		return 0;
	if (w->count == POP3_HEAD_CANDIDATES_MAX)
		return 1;
	if (w->count == w->alloc) {
		w->alloc = w->alloc ? w->alloc * 2 : 64;
		w->v = xreallocarray(w->v, w->alloc, sizeof(*w->v));
	}
	c = &w->v[w->count++];
	c->list_size = e->list_size;
	memcpy(c->head, e->head_digest, sizeof(c->head));
	memcpy(c->digest, e->digest, sizeof(c->digest));
	return 0;
}

static int
cmp_cand(const void *a, const void *b)
{
	const struct pop3_head_candidate *x = a, *y = b;
	int c;

	if (x->list_size != y->list_size)
		return x->list_size < y->list_size ? -1 : 1;
	if ((c = memcmp(x->head, y->head, sizeof(x->head))) != 0)
		return c;
	return memcmp(x->digest, y->digest, sizeof(x->digest));
}

/* The walk itself, in a read snapshot (on a worker). */
static int
head_candidates(struct store_read *r, uint32_t user_id, const char *account,
    const unsigned char *name, const struct pop3_deliver_listing *listing,
    const uint64_t *sizes, size_t n, struct pop3_head_candidate **cands_r,
    size_t *count_r, const char **error_r)
{
	struct cand_walk w = { .account = account, .listing = listing,
	    .sizes = sizes, .n = n };
	unsigned char mk[UPSTREAM_MAILBOX_KEY_SIZE];
	const unsigned char *keys[2];
	int rc;

	*cands_r = NULL;
	*count_r = 0;
	if (store_ledger_mailbox_canon(r, user_id, keys,
	    mailbox_names(name, listing, keys), mk, error_r) < 0)
		return -1;
	rc = store_ledger_mailbox_foreach(r, user_id, mk, cand_each, &w,
	    error_r);
	if (rc != 0) {
		free(w.v);
		return rc < 0 ? -1 : 1;
	}
	if (w.count > 0)
		qsort(w.v, w.count, sizeof(*w.v), cmp_cand);
	*cands_r = w.v;
	*count_r = w.count;
	return 0;
}

/* The walk as a worker job: copies of what it reads (the account may be
 * removed meanwhile), the listing by reference. */
struct pop3_cand_job {
	struct workq_job wq;
	struct store *store;
	uint32_t user_id;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	unsigned char name_key[UPSTREAM_MAILBOX_KEY_SIZE];
	struct pop3_deliver_listing *listing;
	uint64_t *sizes;
	size_t n;
	struct pop3_head_candidate *cands;
	size_t count;
	int rc;
	long us;
	char error[POP3_DELIVER_ERROR_MAX];
	pop3_cand_done_fn *done;
	void *arg;		/* NULL done: detached */
};

static enum workq_run_result
cand_run(struct workq_job *wq)
{
	struct pop3_cand_job *j = (struct pop3_cand_job *)wq;
	struct store_read *r = NULL;
	const char *err = NULL;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (store_read_begin(j->store, &r, &err) < 0)
		j->rc = -1;
	else {
		j->rc = head_candidates(r, j->user_id, j->account, j->name_key,
		    j->listing, j->sizes, j->n, &j->cands, &j->count, &err);
		store_read_end(&r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	j->us = (long)((t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000);
	if (j->rc < 0)
		snprintf(j->error, sizeof(j->error), "%s",
		    err != NULL ? err : "store error");
	return WORKQ_DONE;
}

static void
cand_done(struct workq_job *wq)
{
	struct pop3_cand_job *j = (struct pop3_cand_job *)wq;

	if (wq->cancelled) {
		free(j->cands);
		j->cands = NULL;
		j->count = 0;
		j->rc = -1;
		snprintf(j->error, sizeof(j->error), "shutting down");
	}
	if (j->done != NULL) {
		j->done(j->arg, j->rc, j->cands, j->count, j->us, j->error);
		j->cands = NULL;	/* the requester's now */
	}
	free(j->cands);
	free(j->sizes);
	pop3_deliver_listing_unref(&j->listing);
	free(j);
}

struct pop3_cand_job *
pop3_deliver_head_candidates_submit(struct store *store, struct workq *workq,
    const struct upstream_account *acct, struct pop3_deliver_listing *listing,
    uint64_t *sizes, size_t n, pop3_cand_done_fn *done, void *arg)
{
	struct pop3_cand_job *j = xcalloc(1, sizeof(*j));

	j->store = store;
	j->user_id = acct->user_id;
	snprintf(j->account, sizeof(j->account), "%s", acct->id);
	upstream_mailbox_key(acct, j->name_key);
	atomic_fetch_add(&listing->refs, 1);
	j->listing = listing;
	j->sizes = sizes;
	j->n = n;
	j->done = done;
	j->arg = arg;
	j->wq.run = cand_run;
	j->wq.done = cand_done;
	j->wq.key = acct->user_id;
	workq_submit(workq, &j->wq);
	/* without a pool it is done already (and freed) */
	return workq != NULL ? j : NULL;
}

void
pop3_deliver_cand_job_detach(struct pop3_cand_job *job)
{
	if (job == NULL)
		return;
	job->done = NULL;
	job->arg = NULL;
}

struct pop3_claim_job {
	uint32_t user_id;
	char account[STORE_ACCOUNT_ID_MAX + 1];
	unsigned char mailbox_key[UPSTREAM_MAILBOX_KEY_SIZE];
	unsigned char name_key[UPSTREAM_MAILBOX_KEY_SIZE];
	struct pop3_head_claim *claims;	/* uidl copies owned */
	bool *claimed;
	size_t count;
	struct pop3_deliver_listing *listing;
	pop3_claim_done_fn *done;
	void *arg;		/* NULL done: detached */
};

static int
claim_apply(struct store *store, void *ctx, const char **error_r)
{
	struct pop3_claim_job *j = ctx;

	if (mailbox_canon_write(store, j->user_id, j->listing, j->name_key,
	    j->mailbox_key, error_r) < 0)
		return -1;
	for (size_t i = 0; i < j->count; i++) {
		const struct pop3_head_claim *c = &j->claims[i];

		j->claimed[i] = false;
		/* EXISTS: the UIDL got an entry meanwhile; it is known */
		if (store_ledger_claim_head(store, j->user_id, j->account,
		    j->mailbox_key, c->digest, c->head, c->list_size, c->uidl,
		    c->uidl_size, listing_lacks, j->listing, &j->claimed[i],
		    error_r) < 0 && store_last_error(store) != STORE_ERR_EXISTS)
			return -1;
	}
	return 0;
}

static void
claim_done(void *ctx, int rc, enum store_error cls, const char *error)
{
	struct pop3_claim_job *j = ctx;

	(void)cls;
	if (rc < 0)
		memset(j->claimed, 0, j->count * sizeof(*j->claimed));
	if (j->done != NULL)
		j->done(j->arg, rc < 0 ? -1 : 0, j->claimed, j->count,
		    error != NULL ? error : "");
	for (size_t i = 0; i < j->count; i++)
		free((char *)j->claims[i].uidl);
	free(j->claims);
	free(j->claimed);
	pop3_deliver_listing_unref(&j->listing);
	free(j);
}

struct pop3_claim_job *
pop3_deliver_claim_heads_submit(struct store *store,
    const struct upstream_account *acct, struct pop3_deliver_listing *listing,
    const struct pop3_head_claim *claims, size_t count,
    pop3_claim_done_fn *done, void *arg)
{
	struct pop3_claim_job *j = xcalloc(1, sizeof(*j));

	j->user_id = acct->user_id;
	snprintf(j->account, sizeof(j->account), "%s", acct->id);
	upstream_mailbox_key(acct, j->name_key);
	j->claims = xcalloc(count + 1, sizeof(*j->claims));
	if (count > 0)
		memcpy(j->claims, claims, count * sizeof(*claims));
	for (size_t i = 0; i < count; i++)
		j->claims[i].uidl = xmemdup(claims[i].uidl,
		    claims[i].uidl_size);
	j->claimed = xcalloc(count + 1, sizeof(*j->claimed));
	j->count = count;
	atomic_fetch_add(&listing->refs, 1);
	j->listing = listing;
	j->done = done;
	j->arg = arg;
	store_write_submit(store, acct->user_id, 0, 0, claim_apply,
	    claim_done, j);
	/* without a writer it is done already (and freed) */
	return store_writer_running(store) ? j : NULL;
}

void
pop3_deliver_claim_job_detach(struct pop3_claim_job *job)
{
	if (job == NULL)
		return;
	job->done = NULL;
	job->arg = NULL;
}
