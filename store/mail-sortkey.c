/* mail-sortkey — the SORT / THREAD keys of a message, as a record. */
#include "mail-sortkey.h"

#include <string.h>
#include <strings.h>

#include "arena.h"
#include "mail-charset.h"
#include "mail-header.h"
#include "mail-message.h"
#include "mail-rfc2047.h"
#include "strbuf.h"

/* Record layout (MAIL_SORTKEY_VERSION 1): version, flags, nrefs, a pad
 * byte, the sent time (int64, host order like the store's records), then
 * NUL-terminated strings: subject, from, to, cc, the Message-ID when
 * SK_MSGID is set, and nrefs references. */
#define SK_HEAD 12
#define SK_SENT_VALID 0x1u
#define SK_REPLY 0x2u
#define SK_MSGID 0x4u

/* ---- base subject (RFC 5256 2.1) ---- */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* A subj-blob at s[i]: "[" *BLOBCHAR "]" *WSP; returns its end or 0. */
static size_t
blob_end(const char *s, size_t len, size_t i)
{
	if (i >= len || s[i] != '[')
		return 0;
	for (i++; i < len && s[i] != ']'; i++)
		if (s[i] == '[')
			return 0;
	if (i >= len)
		return 0;
	for (i++; i < len && is_wsp(s[i]); i++)
		;
	return i;
}

/* A subj-leader's end at s[0] ((*subj-blob subj-refwd) / WSP), or 0. */
static size_t
leader_end(const char *s, size_t len)
{
	size_t i = 0, e;

	if (len > 0 && is_wsp(s[0]))
		return 1;
	while ((e = blob_end(s, len, i)) != 0)
		i = e;
	if (i + 2 <= len && strncasecmp(s + i, "re", 2) == 0)
		i += 2;
	else if (i + 3 <= len && strncasecmp(s + i, "fwd", 3) == 0)
		i += 3;
	else if (i + 2 <= len && strncasecmp(s + i, "fw", 2) == 0)
		i += 2;
	else
		return 0;
	while (i < len && is_wsp(s[i]))
		i++;
	if ((e = blob_end(s, len, i)) != 0)
		i = e;
	return i < len && s[i] == ':' ? i + 1 : 0;
}

void
mail_sortkey_base_subject(const char *subject, size_t len, struct strbuf *out,
    bool *reply_r)
{
	struct strbuf t = STRBUF_INIT;
	const char *s;
	size_t a = 0, b;
	bool reply = false, changed;

	/* (1) every run of white space (folding included) is one space */
	for (size_t i = 0; i < len; i++) {
		char c = subject[i];

		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c == ' ' && t.len > 0 && t.data[t.len - 1] == ' ')
			continue;
		strbuf_appendc(&t, c);
	}
	s = strbuf_str(&t);
	b = t.len;
	for (;;) {
		/* (2) trailers: "(fwd)" and white space */
		for (;;) {
			if (b > a && s[b - 1] == ' ')
				b--;
			else if (b - a >= 5 && strncasecmp(s + b - 5, "(fwd)",
			    5) == 0) {
				b -= 5;
				reply = true;
			} else
				break;
		}
		/* (3) leaders, (4) a blob that is not all there is; (5)
		 * until neither changes anything */
		do {
			size_t e;

			changed = false;
			while ((e = leader_end(s + a, b - a)) != 0) {
				if (!is_wsp(s[a]))
					reply = true;
				a += e;
				changed = true;
			}
			e = blob_end(s + a, b - a, 0);
			if (e != 0 && a + e < b) {
				a += e;
				changed = true;
			}
		} while (changed);
		/* (6) "[fwd: ...]" */
		if (b - a >= 6 && strncasecmp(s + a, "[fwd:", 5) == 0 &&
		    s[b - 1] == ']') {
			a += 5;
			b--;
			reply = true;
			continue;
		}
		break;
	}
	strbuf_reset(out);
	mail_utf8_casefold(s + a, b - a, out);
	strbuf_reserve(out, 1);
	out->data[out->len] = '\0';
	strbuf_free(&t);
	if (reply_r != NULL)
		*reply_r = reply;
}

size_t
mail_sortkey_msgids(const char *value, size_t len, struct arena *arena,
    const char **ids_r, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len && max > 0) {
		const char *lt = memchr(value + i, '<', len - i), *gt;
		char *id;
		size_t k = 0;

		if (lt == NULL)
			break;
		gt = memchr(lt, '>', (size_t)(value + len - lt));
		if (gt == NULL)
			break;
		id = arena_alloc(arena, (size_t)(gt - lt) + 2);
		for (const char *p = lt; p <= gt; p++)
			if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
				id[k++] = *p;
		id[k] = '\0';
		i = (size_t)(gt - value) + 1;
		if (k <= 2)
			continue;	/* "<>" */
		if (n == max) {
			/* keep the last ones: they are the closest */
			memmove(ids_r, ids_r + 1, (max - 1) * sizeof(*ids_r));
			n--;
		}
		ids_r[n++] = id;
	}
	return n;
}

/* ---- the record ---- */

/* s[0..len) up to its first NUL and MAIL_SORTKEY_STR_MAX bytes, then a
 * NUL. */
static void
put_str(struct strbuf *out, const char *s, size_t len)
{
	if (s != NULL) {
		const char *nul = memchr(s, '\0', len);

		if (nul != NULL)
			len = (size_t)(nul - s);
		if (len > MAIL_SORTKEY_STR_MAX)
			len = MAIL_SORTKEY_STR_MAX;
		strbuf_append(out, s, len);
	}
	strbuf_appendc(out, '\0');
}

/* RFC 5256 3: the addr-mailbox of the first address (folded), or "". */
static void
put_addr(struct strbuf *out, const struct mail_address_list *l,
    struct strbuf *tmp)
{
	for (uint32_t i = 0; l != NULL && i < l->count; i++) {
		const char *mb = l->addrs[i].mailbox;
		size_t len;

		if (mb == NULL || l->addrs[i].domain == NULL)
			continue;
		len = strlen(mb);
		if (len > MAIL_SORTKEY_STR_MAX)
			len = MAIL_SORTKEY_STR_MAX;
		strbuf_reset(tmp);
		mail_utf8_casefold(mb, len, tmp);
		put_str(out, tmp->data, tmp->len);
		return;
	}
	put_str(out, NULL, 0);
}

/* The base subject of a raw Subject value (unfolded, RFC 2047 decoded). */
static void
put_subject(struct strbuf *out, const char *subj, bool *reply_r,
    struct strbuf *t1, struct strbuf *t2)
{
	size_t len;

	*reply_r = false;
	if (subj == NULL) {
		put_str(out, NULL, 0);
		return;
	}
	len = strlen(subj);
	if (len > MAIL_SORTKEY_SUBJECT_IN_MAX)
		len = MAIL_SORTKEY_SUBJECT_IN_MAX;
	strbuf_reset(t1);
	strbuf_reset(t2);
	mail_header_unfold(subj, len, t2);
	mail_rfc2047_decode(strbuf_str(t2), t2->len, t1);
	mail_sortkey_base_subject(strbuf_str(t1), t1->len, t2, reply_r);
	put_str(out, t2->data, t2->len);
}

void
mail_sortkey_build(const struct mail_envelope *env, const char *references,
    size_t references_len, struct strbuf *out)
{
	struct arena *a = arena_new(4096);
	struct strbuf t1 = STRBUF_INIT, t2 = STRBUF_INIT;
	const char *refs[MAIL_SORTKEY_REFS_MAX], *id[1];
	size_t nrefs = 0;
	unsigned char head[SK_HEAD];
	int64_t sent = 0;
	bool reply;

	memset(head, 0, sizeof(head));
	strbuf_reset(out);
	strbuf_append(out, head, sizeof(head));
	put_subject(out, env != NULL ? env->subject : NULL, &reply, &t1, &t2);
	put_addr(out, env != NULL ? &env->from : NULL, &t1);
	put_addr(out, env != NULL ? &env->to : NULL, &t1);
	put_addr(out, env != NULL ? &env->cc : NULL, &t1);
	head[0] = MAIL_SORTKEY_VERSION;
	if (env != NULL && env->date_valid) {
		head[1] |= SK_SENT_VALID;
		sent = env->date_time;
	}
	if (reply)
		head[1] |= SK_REPLY;
	if (env != NULL && env->message_id != NULL &&
	    mail_sortkey_msgids(env->message_id, strlen(env->message_id), a,
	    id, 1) == 1) {
		head[1] |= SK_MSGID;
		put_str(out, id[0], strlen(id[0]));
	}
	if (references != NULL) {
		strbuf_reset(&t1);
		mail_header_unfold(references, references_len, &t1);
		nrefs = mail_sortkey_msgids(strbuf_str(&t1), t1.len, a, refs,
		    MAIL_SORTKEY_REFS_MAX);
	}
	if (nrefs == 0 && env != NULL && env->in_reply_to != NULL)
		nrefs = mail_sortkey_msgids(env->in_reply_to,
		    strlen(env->in_reply_to), a, refs, 1);
	for (size_t i = 0; i < nrefs; i++)
		put_str(out, refs[i], strlen(refs[i]));
	head[2] = (unsigned char)nrefs;
	memcpy(head + 4, &sent, sizeof(sent));
	memcpy(out->data, head, sizeof(head));
	strbuf_free(&t1);
	strbuf_free(&t2);
	arena_free(&a);
}

bool
mail_sortkey_references(const void *hdr, size_t len, struct strbuf *out)
{
	struct mail_header_iter it;
	struct mail_header_field f;

	strbuf_reset(out);
	mail_header_iter_init(&it, hdr, len);
	while (mail_header_iter_next(&it, &f))
		if (f.name_len == 10 && strncasecmp(f.name, "References",
		    10) == 0) {
			mail_header_unfold(f.value, f.value_len, out);
			return true;
		}
	return false;
}

void
mail_sortkey_of_message(const struct mail_message *mm, const void *data,
    size_t size, struct strbuf *out)
{
	const struct mail_part *root;
	struct strbuf refs = STRBUF_INIT;
	bool have = false;

	if (mm == NULL || mm->nparts == 0) {
		mail_sortkey_build(NULL, NULL, 0, out);
		return;
	}
	root = &mm->parts[0];
	if (root->hdr_off <= size && root->hdr_len <= size - root->hdr_off)
		have = mail_sortkey_references((const char *)data +
		    root->hdr_off, (size_t)root->hdr_len, &refs);
	mail_sortkey_build(root->envelope, have ? strbuf_str(&refs) : NULL,
	    refs.len, out);
	strbuf_free(&refs);
}

/* The NUL-terminated string at rec[*pos..len), or NULL. */
static const char *
get_str(const unsigned char *rec, size_t len, size_t *pos)
{
	const unsigned char *nul;
	const char *s;

	if (*pos >= len ||
	    (nul = memchr(rec + *pos, '\0', len - *pos)) == NULL)
		return NULL;
	s = (const char *)rec + *pos;
	*pos = (size_t)(nul - rec) + 1;
	return s;
}

int
mail_sortkey_read(const void *data, size_t len, struct mail_sortkey *k)
{
	const unsigned char *rec = data;
	size_t pos = SK_HEAD;

	memset(k, 0, sizeof(*k));
	if (len < SK_HEAD || rec[0] != MAIL_SORTKEY_VERSION ||
	    rec[2] > MAIL_SORTKEY_REFS_MAX ||
	    (rec[1] & ~(SK_SENT_VALID | SK_REPLY | SK_MSGID)) != 0)
		return -1;
	k->sent_valid = (rec[1] & SK_SENT_VALID) != 0;
	k->reply = (rec[1] & SK_REPLY) != 0;
	memcpy(&k->sent, rec + 4, sizeof(k->sent));
	if ((k->subject = get_str(rec, len, &pos)) == NULL ||
	    (k->from = get_str(rec, len, &pos)) == NULL ||
	    (k->to = get_str(rec, len, &pos)) == NULL ||
	    (k->cc = get_str(rec, len, &pos)) == NULL)
		return -1;
	if ((rec[1] & SK_MSGID) != 0 &&
	    (k->msgid = get_str(rec, len, &pos)) == NULL)
		return -1;
	k->nrefs = rec[2];
	for (size_t i = 0; i < k->nrefs; i++)
		if ((k->refs[i] = get_str(rec, len, &pos)) == NULL)
			return -1;
	return pos == len ? 0 : -1;
}
