#include "mail-serialize.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mail-address.h"
#include "mail-header.h"
#include "mail-parse.h"
#include "strbuf.h"
#include "xmalloc.h"

/* --- writing ------------------------------------------------------------ */

static void
put_u64(struct strbuf *out, uint64_t v)
{
	char b[10];
	size_t n = 0;

	do {
		b[n] = (char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] = (char)(b[n] | 0x80);
		n++;
	} while (v != 0);
	strbuf_append(out, b, n);
}

static void
put_s64(struct strbuf *out, int64_t v)
{
	put_u64(out, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void
put_nstr(struct strbuf *out, const char *s)
{
	size_t len;

	if (s == NULL) {
		put_u64(out, 0);
		return;
	}
	len = strlen(s);
	put_u64(out, (uint64_t)len + 1);
	strbuf_append(out, s, len);
}

static void
put_params(struct strbuf *out, const struct mail_param *p, uint32_t n)
{
	put_u64(out, n);
	for (uint32_t i = 0; i < n; i++) {
		put_nstr(out, p[i].name);
		put_nstr(out, p[i].value);
	}
}

static void
put_addresses(struct strbuf *out, const struct mail_address_list *l)
{
	put_u64(out, l->count);
	for (uint32_t i = 0; i < l->count; i++) {
		put_nstr(out, l->addrs[i].name);
		put_nstr(out, l->addrs[i].route);
		put_nstr(out, l->addrs[i].mailbox);
		put_nstr(out, l->addrs[i].domain);
	}
}

static void
put_envelope(struct strbuf *out, const struct mail_envelope *e)
{
	put_nstr(out, e->date);
	put_nstr(out, e->subject);
	put_nstr(out, e->message_id);
	put_nstr(out, e->in_reply_to);
	put_addresses(out, &e->from);
	put_addresses(out, &e->sender);
	put_addresses(out, &e->reply_to);
	put_addresses(out, &e->to);
	put_addresses(out, &e->cc);
	put_addresses(out, &e->bcc);
	put_u64(out, (e->date_valid ? 1u : 0u) | (e->received_valid ? 2u : 0u));
	put_s64(out, e->date_time);
	put_s64(out, e->date_tz_min);
	put_s64(out, e->received_time);
	put_s64(out, e->received_tz_min);
}

/* Longest string a skeleton keeps; longer ones get a fixed stand-in.
 * MAIL_PARTS_MAX parts of at most ~600 bytes stay far below MAIL_BLOB_MAX. */
#define SKELETON_STR_MAX 64

static void
put_capped(struct strbuf *out, const char *s, const char *fallback)
{
	put_nstr(out, s != NULL && strlen(s) <= SKELETON_STR_MAX ? s :
	    fallback);
}

static void
put_header(const struct mail_message *msg, uint32_t flags,
    struct strbuf *out)
{
	strbuf_append(out, MAIL_BLOB_MAGIC, 4);
	strbuf_appendc(out, MAIL_BLOB_VERSION);
	put_u64(out, msg->size);
	put_u64(out, flags);
	put_u64(out, msg->nparts);
}

static void
put_part_numbers(const struct mail_part *p, struct strbuf *out)
{
	put_u64(out, p->parent == MAIL_NONE ? 0 : (uint64_t)p->parent + 1);
	put_u64(out, p->flags);
	put_u64(out, p->hdr_off);
	put_u64(out, p->hdr_len);
	put_u64(out, p->body_off);
	put_u64(out, p->body_len);
	put_u64(out, p->lines);
}

/* The bounded fallback of mail_serialize(); same format, same reader. */
static void
put_skeleton(const struct mail_message *msg, struct strbuf *out)
{
	put_header(msg, msg->flags | MAIL_MESSAGE_TRUNCATED, out);
	for (uint32_t i = 0; i < msg->nparts; i++) {
		const struct mail_part *p = &msg->parts[i];
		const char *charset = mail_part_param(p, "charset");

		put_part_numbers(p, out);
		put_capped(out, p->type, "application");
		put_capped(out, p->subtype, "octet-stream");
		if (charset != NULL && strlen(charset) <= SKELETON_STR_MAX) {
			const struct mail_param cs = { "charset", charset };

			put_params(out, &cs, 1);
		} else {
			put_params(out, NULL, 0);
		}
		for (int k = 0; k < 4; k++)	/* id description md5 loc */
			put_nstr(out, NULL);
		put_capped(out, p->encoding, "x-unknown");
		put_nstr(out, NULL);		/* disposition */
		put_params(out, NULL, 0);
		put_u64(out, 0);		/* languages */
		if ((p->flags & MAIL_PART_IS_MESSAGE) != 0) {
			struct mail_envelope e;

			memset(&e, 0, sizeof(e));
			if (p->envelope != NULL) {
				e.date_valid = p->envelope->date_valid;
				e.date_time = p->envelope->date_time;
				e.date_tz_min = p->envelope->date_tz_min;
				e.received_valid = p->envelope->received_valid;
				e.received_time = p->envelope->received_time;
				e.received_tz_min =
				    p->envelope->received_tz_min;
			}
			put_envelope(out, &e);
		}
	}
}

void
mail_serialize(const struct mail_message *msg, struct strbuf *out)
{
	size_t start = out->len;

	put_header(msg, msg->flags, out);
	for (uint32_t i = 0; i < msg->nparts; i++) {
		const struct mail_part *p = &msg->parts[i];

		put_part_numbers(p, out);
		put_nstr(out, p->type);
		put_nstr(out, p->subtype);
		put_params(out, p->params, p->nparams);
		put_nstr(out, p->id);
		put_nstr(out, p->description);
		put_nstr(out, p->md5);
		put_nstr(out, p->location);
		put_nstr(out, p->encoding);
		put_nstr(out, p->disposition);
		put_params(out, p->disp_params, p->ndisp_params);
		put_u64(out, p->nlanguages);
		for (uint32_t k = 0; k < p->nlanguages; k++)
			put_nstr(out, p->languages[k]);
		if ((p->flags & MAIL_PART_IS_MESSAGE) != 0)
			put_envelope(out, p->envelope);
	}
	if (out->len - start > MAIL_BLOB_MAX) {
		strbuf_truncate(out, start);
		put_skeleton(msg, out);
	}
}

/* --- reading ------------------------------------------------------------ */

struct reader {
	const unsigned char *p;
	size_t len, pos;
	bool bad;
	const char *error;
	struct arena *arena;
};

static void
fail(struct reader *r, const char *why)
{
	if (!r->bad)
		r->error = why;
	r->bad = true;
}

static uint64_t
get_u64(struct reader *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		unsigned char b;

		if (r->pos >= r->len) {
			fail(r, "truncated blob");
			return 0;
		}
		b = r->p[r->pos++];
		if (shift == 63 && (b & 0x7e) != 0) {
			fail(r, "varint overflow");
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
	}
	fail(r, "varint too long");
	return 0;
}

static int64_t
get_s64(struct reader *r)
{
	uint64_t v = get_u64(r);

	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A count of items each at least min_bytes long, at most max. */
static uint32_t
get_count(struct reader *r, uint32_t max, size_t min_bytes)
{
	uint64_t n = get_u64(r);

	if (r->bad)
		return 0;
	if (n > max || n * min_bytes > r->len - r->pos) {
		fail(r, "bad count");
		return 0;
	}
	return (uint32_t)n;
}

static const char *
get_nstr(struct reader *r)
{
	uint64_t n = get_u64(r);
	const char *s;

	if (r->bad || n == 0)
		return NULL;
	if (n - 1 > r->len - r->pos) {
		fail(r, "string past end");
		return NULL;
	}
	s = arena_strndup(r->arena, (const char *)r->p + r->pos, n - 1);
	r->pos += n - 1;
	return s;
}

static const char *
get_str(struct reader *r)
{
	const char *s = get_nstr(r);

	if (s == NULL)
		fail(r, "missing string");
	return s == NULL ? "" : s;
}

static void
get_params(struct reader *r, struct mail_param **ps, uint32_t *n_r)
{
	uint32_t n = get_count(r, MAIL_PARAMS_MAX, 2);

	*ps = NULL;
	*n_r = 0;
	if (n == 0)
		return;
	*ps = arena_alloc(r->arena, n * sizeof(**ps));
	for (uint32_t i = 0; i < n; i++) {
		(*ps)[i].name = get_str(r);
		(*ps)[i].value = get_str(r);
	}
	*n_r = r->bad ? 0 : n;
}

static void
get_addresses(struct reader *r, struct mail_address_list *l)
{
	uint32_t n = get_count(r, MAIL_ADDRESSES_MAX, 4);

	l->count = 0;
	l->addrs = NULL;
	if (n == 0)
		return;
	l->addrs = arena_alloc(r->arena, n * sizeof(*l->addrs));
	for (uint32_t i = 0; i < n; i++) {
		l->addrs[i].name = get_nstr(r);
		l->addrs[i].route = get_nstr(r);
		l->addrs[i].mailbox = get_nstr(r);
		l->addrs[i].domain = get_nstr(r);
	}
	l->count = r->bad ? 0 : n;
}

static struct mail_envelope *
get_envelope(struct reader *r)
{
	struct mail_envelope *e = arena_zalloc(r->arena, sizeof(*e));
	uint64_t valid;

	e->date = get_nstr(r);
	e->subject = get_nstr(r);
	e->message_id = get_nstr(r);
	e->in_reply_to = get_nstr(r);
	get_addresses(r, &e->from);
	get_addresses(r, &e->sender);
	get_addresses(r, &e->reply_to);
	get_addresses(r, &e->to);
	get_addresses(r, &e->cc);
	get_addresses(r, &e->bcc);
	valid = get_u64(r);
	e->date_valid = (valid & 1) != 0;
	e->received_valid = (valid & 2) != 0;
	e->date_time = get_s64(r);
	e->date_tz_min = (int32_t)get_s64(r);
	e->received_time = get_s64(r);
	e->received_tz_min = (int32_t)get_s64(r);
	return e;
}

static bool
range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static void
get_part(struct reader *r, struct mail_message *msg, uint32_t i)
{
	struct mail_part *p = &msg->parts[i];
	uint64_t parent = get_u64(r);

	memset(p, 0, sizeof(*p));
	p->first_child = p->next_sibling = MAIL_NONE;
	if ((i == 0) != (parent == 0) || parent > i) {
		fail(r, "bad parent");
		return;
	}
	p->parent = parent == 0 ? MAIL_NONE : (uint32_t)(parent - 1);
	p->flags = (uint32_t)get_u64(r);
	p->hdr_off = get_u64(r);
	p->hdr_len = get_u64(r);
	p->body_off = get_u64(r);
	p->body_len = get_u64(r);
	p->lines = get_u64(r);
	if (!range_ok(p->hdr_off, p->hdr_len, msg->size) ||
	    !range_ok(p->body_off, p->body_len, msg->size))
		fail(r, "part range outside the message");
	p->type = get_str(r);
	p->subtype = get_str(r);
	get_params(r, &p->params, &p->nparams);
	p->id = get_nstr(r);
	p->description = get_nstr(r);
	p->md5 = get_nstr(r);
	p->location = get_nstr(r);
	p->encoding = get_str(r);
	p->disposition = get_nstr(r);
	get_params(r, &p->disp_params, &p->ndisp_params);
	p->nlanguages = get_count(r, MAIL_LANGUAGES_MAX, 1);
	if (p->nlanguages > 0) {
		p->languages = arena_alloc(r->arena,
		    p->nlanguages * sizeof(*p->languages));
		for (uint32_t k = 0; k < p->nlanguages; k++)
			p->languages[k] = get_str(r);
	}
	if ((p->flags & MAIL_PART_IS_MESSAGE) != 0)
		p->envelope = get_envelope(r);
}

/* Rebuilds child links and depths; checks the shape renderers rely on. */
static void
link_tree(struct reader *r, struct mail_message *msg)
{
	uint32_t *last = xcalloc(msg->nparts, sizeof(*last));

	for (uint32_t i = 1; i < msg->nparts && !r->bad; i++) {
		struct mail_part *p = &msg->parts[i];
		struct mail_part *par = &msg->parts[p->parent];

		p->depth = par->depth + 1;
		if (p->depth > MAIL_DEPTH_MAX + 1) {
			fail(r, "tree too deep");
			break;
		}
		if (par->nchildren == 0)
			par->first_child = i;
		else
			msg->parts[last[p->parent]].next_sibling = i;
		last[p->parent] = i;
		par->nchildren++;
	}
	for (uint32_t i = 0; i < msg->nparts && !r->bad; i++) {
		const struct mail_part *p = &msg->parts[i];

		if ((p->flags & MAIL_PART_MESSAGE) != 0 && (p->nchildren != 1 ||
		    (msg->parts[p->first_child].flags &
		    MAIL_PART_IS_MESSAGE) == 0))
			fail(r, "message/rfc822 part without one message");
		if (p->nchildren > 0 && (p->flags & (MAIL_PART_MESSAGE |
		    MAIL_PART_MULTIPART)) == 0)
			fail(r, "children under a leaf part");
	}
	if (!r->bad && (msg->parts[0].flags & MAIL_PART_IS_MESSAGE) == 0)
		fail(r, "root is not a message");
	free(last);
}

int
mail_deserialize(const void *blob, size_t len, struct mail_message **msg_r,
    const char **error_r)
{
	struct reader r;
	struct mail_message *msg;
	uint32_t n;

	*msg_r = NULL;
	memset(&r, 0, sizeof(r));
	r.p = blob;
	r.len = len;
	if (len < 5 || memcmp(blob, MAIL_BLOB_MAGIC, 4) != 0) {
		*error_r = "not a message blob";
		return -1;
	}
	if (r.p[4] != MAIL_BLOB_VERSION) {
		*error_r = "unknown blob version";
		return -1;
	}
	r.pos = 5;
	msg = xcalloc(1, sizeof(*msg));
	msg->arena = arena_new(8192);
	r.arena = msg->arena;
	msg->size = get_u64(&r);
	msg->flags = (uint32_t)get_u64(&r);
	/* Each part takes at least 18 bytes. */
	n = get_count(&r, MAIL_PARTS_MAX, 18);
	if (!r.bad && n == 0)
		fail(&r, "no parts");
	if (!r.bad) {
		msg->parts = xcalloc(n, sizeof(*msg->parts));
		msg->nparts = n;
		for (uint32_t i = 0; i < n && !r.bad; i++)
			get_part(&r, msg, i);
	}
	if (!r.bad && r.pos != r.len)
		fail(&r, "trailing bytes");
	if (!r.bad)
		link_tree(&r, msg);
	if (r.bad) {
		*error_r = r.error;
		mail_message_free(&msg);
		return -1;
	}
	*msg_r = msg;
	return 0;
}

int
mail_blob_envelope(const void *blob, size_t len, struct arena *arena,
    struct mail_envelope *env_r, uint64_t *hdr_len_r, const char **error_r)
{
	struct reader r;
	struct mail_message msg;
	struct mail_part root;

	memset(&r, 0, sizeof(r));
	r.p = blob;
	r.len = len;
	if (len < 5 || memcmp(blob, MAIL_BLOB_MAGIC, 4) != 0 ||
	    r.p[4] != MAIL_BLOB_VERSION) {
		*error_r = "not a message blob";
		return -1;
	}
	r.pos = 5;
	r.arena = arena;
	memset(&msg, 0, sizeof(msg));
	msg.parts = &root;
	msg.nparts = 1;
	msg.size = get_u64(&r);
	msg.flags = (uint32_t)get_u64(&r);
	if (!r.bad && get_count(&r, MAIL_PARTS_MAX, 18) == 0)
		fail(&r, "no parts");
	if (!r.bad)
		get_part(&r, &msg, 0);
	if (!r.bad && ((root.flags & MAIL_PART_IS_MESSAGE) == 0 ||
	    root.envelope == NULL))
		fail(&r, "root is not a message");
	if (r.bad) {
		*error_r = r.error;
		return -1;
	}
	*env_r = *root.envelope;
	if (hdr_len_r != NULL)
		*hdr_len_r = root.hdr_off == 0 ? root.hdr_len : 0;
	return 0;
}
