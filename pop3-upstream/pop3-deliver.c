/* pop3-deliver — see pop3-deliver.h. */
#include "pop3-upstream/pop3-deliver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-serialize.h"
#include "store/store.h"
#include "strbuf.h"
#include "xmalloc.h"

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
		if (store_mailbox_create(store, acct->user_id, name,
		    STORE_ROLE_NONE, mailbox_id_r, error_r) < 0)
			return -1;
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
	o->refused = (int)refused;
	snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
}

int
pop3_deliver_batch(struct store *store,
    const struct upstream_account *acct, uint32_t mailbox_id,
    const struct pop3_deliver_msg *msgs, size_t count,
    struct pop3_deliver_outcome *out, const char **error_r)
{
	struct store_new_msg *nm = xcalloc(count, sizeof(*nm));
	struct strbuf *blobs = xcalloc(count, sizeof(*blobs));
	uint32_t *uids = xcalloc(count, sizeof(*uids));
	time_t now = time(NULL);
	enum store_error why;
	int ret;

	for (size_t i = 0; i < count; i++) {
		/* the structure is cached at delivery so FETCH never
		   re-parses; INTERNALDATE from the topmost Received:, then
		   Date:, then now. The bytes are stored as received. */
		struct mail_message *mm = mail_parse(msgs[i].data,
		    msgs[i].size, NULL);
		int tz = 0;

		set_outcome(&out[i], false, STORE_ERR_NONE, NULL);
		nm[i].data = msgs[i].data;
		nm[i].size = msgs[i].size;
		nm[i].internaldate = now;
		if (mm != NULL) {
			mail_serialize(mm, &blobs[i]);
			nm[i].structure = blobs[i].data;
			nm[i].structure_size = blobs[i].len;
			nm[i].internaldate = mail_message_internaldate(mm, now,
			    &tz);
			nm[i].tz_offset_min = tz;
			mail_message_free(&mm);
		}
		nm[i].account = acct->id;
		nm[i].uidl = msgs[i].uidl;
		nm[i].uidl_size = msgs[i].uidl_size;
		nm[i].replace_ledger = msgs[i].replace;
	}
	ret = store_deliver(store, acct->user_id, mailbox_id, nm, count, uids,
	    NULL, error_r);
	if (ret == 0) {
		for (size_t i = 0; i < count; i++)
			set_outcome(&out[i], true, STORE_ERR_NONE, NULL);
		goto out;
	}
	why = store_last_error(store);
	if (!refusal_is_per_message(why))
		goto out;
	/* one of them (or the batch's size) is at fault: one by one */
	ret = 0;
	for (size_t i = 0; i < count; i++) {
		const char *err = NULL;

		if (store_deliver(store, acct->user_id, mailbox_id, &nm[i], 1,
		    &uids[i], NULL, &err) == 0) {
			set_outcome(&out[i], true, STORE_ERR_NONE, NULL);
			continue;
		}
		why = store_last_error(store);
		if (!refusal_is_per_message(why)) {
			*error_r = err;
			ret = -1;
			break;
		}
		set_outcome(&out[i], false, why, err);
	}
out:
	for (size_t i = 0; i < count; i++)
		strbuf_free(&blobs[i]);
	free(blobs);
	free(nm);
	free(uids);
	return ret;
}

int
pop3_deliver_mark_deleted(struct store *store,
    const struct upstream_account *acct, const void *const *uidls,
    const size_t *uidl_sizes, size_t count, const char **error_r)
{
	return store_ledger_mark_deleted(store, acct->user_id, acct->id, uidls,
	    uidl_sizes, count, error_r);
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
