/* imap-msgview — a message as SEARCH looks at it (its header fields,
 * addresses, text, sent date, thread id; imap-fetch.h), and the message
 * structure: built at delivery and APPEND, read back for FETCH and
 * SEARCH. */
#include "imap-fetch.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "store/mail-charset.h"
#include "store/mail-fts.h"
#include "store/mail-header.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-search.h"
#include "store/mail-serialize.h"
#include "store/mail-sortkey.h"
#include "strbuf.h"
#include "xmalloc.h"

void
imap_message_structure_blob(const void *data, size_t len,
    struct strbuf *blob, struct strbuf *sortkey,
    struct mail_fts_terms *terms)
{
	struct mail_message *mm = mail_parse(data, len, NULL);

	strbuf_reset(blob);
	mail_serialize(mm, blob);
	mail_sortkey_of_message(mm, data, len, sortkey);
	if (terms != NULL)
		mail_fts_message_terms(data, len, mm, terms);
	mail_message_free(&mm);
	/* the parser's limits keep this from happening; if it does, FETCH
	 * parses the body again instead */
	if (blob->len > STORE_STRUCTURE_SIZE_MAX)
		strbuf_free(blob);
}

struct mail_message *
imap_structure_load(uint32_t user_id, uint32_t mailbox_id, struct store_read *r,
    uint32_t uid, const void *body, size_t body_size)
{
	const void *blob;
	size_t size;
	const char *err;
	struct mail_message *mm = NULL;

	if (store_msg_structure(r, user_id, mailbox_id, uid, &blob,
	    &size, &err) == 0 && size > 0 &&
	    mail_deserialize(blob, size, &mm, &err) == 0)
		return mm;
	if (body == NULL && store_msg_body(r, user_id, mailbox_id,
	    uid, &body, &body_size, &err) != 0)
		return NULL;
	return mail_parse(body, body_size, NULL);
}

/* ---- message views for SEARCH ---- */

void
imap_msgview_set(struct imap_msgview *v, const struct store_msg *m)
{
	v->m = m;
	v->mm = NULL;
	v->mm_tried = false;
	v->body = NULL;
	v->body_size = 0;
	v->body_tried = false;
}

void
imap_msgview_clear(struct imap_msgview *v)
{
	mail_message_free(&v->mm);
	v->mm_tried = false;
	v->body_tried = false;
	v->body = NULL;
}

static int
view_load(struct imap_msgview *v)
{
	const char *err;
	const void *b;

	if (!v->body_tried) {
		v->body_tried = true;
		if (store_msg_body(v->r, v->user_id, v->mailbox_id,
		    v->m->uid, &b, &v->body_size, &err) == 0)
			v->body = b;
	}
	if (!v->mm_tried) {
		v->mm_tried = true;
		v->mm = imap_structure_load(v->user_id, v->mailbox_id, v->r,
		    v->m->uid, v->body, v->body_size);
	}
	return v->body != NULL && v->mm != NULL ? 0 : -1;
}

/* Does folded text f hold the folded needle? */
static bool
holds(const struct strbuf *f, const struct strbuf *needle)
{
	return needle->len == 0 || (f->len >= needle->len &&
	    memmem(f->data, f->len, needle->data, needle->len) != NULL);
}

/* Case-insensitive substring of decoded UTF-8 text (folded needle);
 * scratch holds the folded text (reused: SEARCH calls this per part). */
static bool
folded_contains(const char *hay, size_t hlen, const struct strbuf *needle,
    struct strbuf *scratch)
{
	if (needle->len == 0)
		return true;
	strbuf_reset(scratch);
	mail_utf8_casefold(hay, hlen, scratch);
	return holds(scratch, needle);
}

static bool
header_block_contains(const char *hdr, size_t len, const char *name,
    const struct strbuf *needle, bool any_field)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	struct strbuf dec = STRBUF_INIT;
	bool found = false;

	mail_header_iter_init(&it, hdr, len);
	while (!found && mail_header_iter_next(&it, &f)) {
		if (!any_field && (f.name_len != strlen(name) ||
		    strncasecmp(f.name, name, f.name_len) != 0))
			continue;
		/* TEXT: the field name counts too */
		if (any_field && folded_contains(f.name, f.name_len, needle,
		    &dec)) {
			found = true;
			break;
		}
		/* the decoded value, folded as it is decoded */
		strbuf_reset(&dec);
		mail_search_field_value(f.value, f.value_len, true, &dec);
		found = holds(&dec, needle);
	}
	strbuf_free(&dec);
	return found;
}

/* The message's top header block: 1 (set), 0 none, -1 error. */
static int
view_header(struct imap_msgview *v, const char **hdr_r, size_t *len_r)
{
	const struct mail_part *root;

	if (view_load(v) != 0)
		return -1;
	root = &v->mm->parts[0];
	if (root->hdr_off + root->hdr_len > v->body_size)
		return 0;
	*hdr_r = v->body + root->hdr_off;
	*len_r = (size_t)root->hdr_len;
	return 1;
}

int
imap_msgview_header_contains(struct imap_msgview *v, const char *name,
    const char *str, size_t len)
{
	struct strbuf needle = STRBUF_INIT;
	const char *hdr;
	size_t hlen;
	int rc;

	if ((rc = view_header(v, &hdr, &hlen)) <= 0)
		return rc;
	mail_utf8_casefold(str, len, &needle);
	rc = header_block_contains(hdr, hlen, name, &needle, false);
	strbuf_free(&needle);
	return rc;
}

int
imap_msgview_address_contains(struct imap_msgview *v, const char *name,
    const char *str, size_t len)
{
	struct strbuf needle = STRBUF_INIT, vals = STRBUF_INIT;
	const char *p, *end, *hdr;
	size_t hlen;
	int found = 0, rc;

	if ((rc = view_header(v, &hdr, &hlen)) <= 0)
		return rc;
	mail_utf8_casefold(str, len, &needle);
	(void)mail_search_address_values(hdr, hlen, name, true, &vals);
	/* one line per field: a match never spans two fields */
	for (p = strbuf_str(&vals), end = p + vals.len; p < end && !found;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		found = needle.len <= n && (needle.len == 0 ||
		    memmem(p, n, needle.data, needle.len) != NULL);
		p += n + 1;
	}
	strbuf_free(&needle);
	strbuf_free(&vals);
	return found;
}

int
imap_msgview_body_contains(struct imap_msgview *v, bool text,
    const char *str, size_t len)
{
	struct strbuf needle = STRBUF_INIT, t = STRBUF_INIT;
	struct strbuf folded = STRBUF_INIT;
	bool found = false;

	if (view_load(v) != 0)
		return -1;
	mail_utf8_casefold(str, len, &needle);
	for (uint32_t i = 0; i < v->mm->nparts && !found; i++) {
		const struct mail_part *p = &v->mm->parts[i];

		if (!mail_search_part_in_bounds(p, v->body_size))
			continue;
		/* TEXT: every header block counts (the message's and
		 * each part's MIME header, e.g. a file name) */
		if (text)
			found = header_block_contains(v->body + p->hdr_off,
			    (size_t)p->hdr_len, NULL, &needle, true);
		if (found || !mail_search_part_is_text(p))
			continue;
		strbuf_reset(&t);
		mail_search_part_text(v->body, v->body_size, p, &t);
		found = folded_contains(strbuf_str(&t), t.len, &needle,
		    &folded);
	}
	strbuf_free(&t);
	strbuf_free(&folded);
	strbuf_free(&needle);
	return found;
}

int
imap_msgview_sent_date(struct imap_msgview *v, int64_t *t_r, int *tz_r)
{
	const struct mail_envelope *env;

	if (view_load(v) != 0)
		return -1;
	env = v->mm->parts[0].envelope;
	if (env == NULL || !env->date_valid)
		return 0;
	*t_r = env->date_time;
	*tz_r = env->date_tz_min;
	return 1;
}

static uint64_t
thread_hash(const char *root)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	uint64_t h = 0;

	if (EVP_Digest(root, strlen(root), md, &n, EVP_sha256(), NULL) != 1)
		return 0;
	for (int i = 0; i < 8; i++)
		h = h << 8 | md[i];
	return h & ~IMAP_THREADID_OWN;
}

int
imap_msgview_thread_id(struct imap_msgview *v, uint64_t *tid_r)
{
	struct strbuf built = STRBUF_INIT, refs = STRBUF_INIT;
	const struct mail_message *mm;
	struct mail_sortkey sk;
	const char *err, *root;
	const void *rec;
	size_t rec_size;
	int rc = 0;

	if (store_msg_sortkey(v->r, v->user_id, v->m->body_id, &rec,
	    &rec_size, &err) != 0 || mail_sortkey_read(rec, rec_size,
	    &sk) != 0) {
		/* stored before the records: the same record, built */
		if ((mm = imap_msgview_message(v)) == NULL ||
		    (rc = imap_msgview_header_value(v, "References",
		    &refs)) < 0) {
			rc = -1;
			goto out;
		}
		mail_sortkey_build(mm->parts[0].envelope, rc == 1 ?
		    strbuf_str(&refs) : NULL, rc == 1 ? refs.len : 0, &built);
		rc = 0;
		if (mail_sortkey_read(built.data, built.len, &sk) != 0) {
			rc = -1;
			goto out;
		}
	}
	root = sk.nrefs > 0 ? sk.refs[0] : sk.msgid;
	*tid_r = root != NULL && root[0] != '\0' ? thread_hash(root) :
	    v->m->body_id | IMAP_THREADID_OWN;
out:
	strbuf_free(&built);
	strbuf_free(&refs);
	return rc;
}

const struct mail_message *
imap_msgview_message(struct imap_msgview *v)
{
	if (!v->mm_tried) {
		v->mm_tried = true;
		v->mm = imap_structure_load(v->user_id, v->mailbox_id, v->r,
		    v->m->uid, NULL, 0);
	}
	return v->mm;
}

int
imap_msgview_header_value(struct imap_msgview *v, const char *name,
    struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	const char *hdr;
	size_t hlen;
	int rc;

	strbuf_reset(out);
	if ((rc = view_header(v, &hdr, &hlen)) <= 0)
		return rc;
	mail_header_iter_init(&it, hdr, hlen);
	while (mail_header_iter_next(&it, &f))
		if (f.name_len == strlen(name) &&
		    strncasecmp(f.name, name, f.name_len) == 0) {
			mail_header_unfold(f.value, f.value_len, out);
			return 1;
		}
	return 0;
}
