#include "mail-parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "mail-address.h"
#include "mail-date.h"
#include "mail-header.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Bytes of a body line kept to compare with boundaries. */
#define BODY_LINE_KEEP (MAIL_BOUNDARY_MAX + 8)

enum field_id {
	F_CONTENT_TYPE = 0,
	F_CTE,
	F_CONTENT_ID,
	F_CONTENT_DESC,
	F_CONTENT_DISP,
	F_CONTENT_LANG,
	F_CONTENT_LOC,
	F_CONTENT_MD5,
	/* Envelope fields: collected only for message nodes. */
	F_DATE,
	F_SUBJECT,
	F_FROM,
	F_SENDER,
	F_REPLY_TO,
	F_TO,
	F_CC,
	F_BCC,
	F_IN_REPLY_TO,
	F_MESSAGE_ID,
	F_RECEIVED,
	F_COUNT,
	F_NONE = -1,
};

static const char *const field_names[F_COUNT] = {
	"Content-Type", "Content-Transfer-Encoding", "Content-ID",
	"Content-Description", "Content-Disposition", "Content-Language",
	"Content-Location", "Content-MD5",
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID", "Received",
};

struct level {
	uint32_t part;
	uint32_t last_child;
	bool in_header;
	bool header_started;	/* a header line was seen */
	bool multipart;		/* has a boundary, children are parts */
	bool epilogue;		/* its close-delimiter was seen */
	bool digest;		/* multipart/digest: children default to
				 * message/rfc822 */
	char *boundary;
	size_t blen;
	uint64_t body_line_start;
};

struct mail_parser {
	struct mail_parse_limits lim;
	struct mail_message *msg;
	uint32_t parts_cap;

	struct level *stack;
	uint32_t depth;		/* levels in use */
	uint32_t stack_cap;
	uint32_t nmultipart;	/* levels with a boundary */

	uint64_t offset;	/* start of the current line */
	uint64_t line_no;	/* lines started before the current one */
	uint32_t prev_eol_len;
	bool last_incomplete;	/* the message ended without a line end */

	/* The current line when it spans feeds. */
	char *carry;
	size_t carry_kept, carry_cap, carry_keep_max;
	uint64_t carry_total;
	char carry_last[2];

	int cur_field;		/* enum field_id being collected */
	bool have[F_COUNT];
	struct strbuf fields[F_COUNT];
};

void
mail_parse_limits_default(struct mail_parse_limits *lim)
{
	lim->parts_max = MAIL_PARTS_MAX;
	lim->depth_max = MAIL_DEPTH_MAX;
	lim->field_max = MAIL_FIELD_MAX;
	lim->struct_max = MAIL_STRUCT_MAX;
	lim->addresses_max = MAIL_ADDRESSES_MAX;
}

static uint32_t
new_part(struct mail_parser *mp, uint32_t parent, uint64_t hdr_off)
{
	struct mail_message *msg = mp->msg;
	struct mail_part *p;
	uint32_t idx = msg->nparts;

	if (msg->nparts == mp->parts_cap) {
		mp->parts_cap = mp->parts_cap == 0 ? 8 : mp->parts_cap * 2;
		msg->parts = xreallocarray(msg->parts, mp->parts_cap,
		    sizeof(*msg->parts));
	}
	p = &msg->parts[msg->nparts++];
	memset(p, 0, sizeof(*p));
	p->parent = parent;
	p->first_child = p->next_sibling = MAIL_NONE;
	p->hdr_off = p->body_off = hdr_off;
	p->type = "text";
	p->subtype = "plain";
	p->encoding = "7bit";
	if (parent != MAIL_NONE) {
		struct mail_part *par = &msg->parts[parent];

		p->depth = par->depth + 1;
		par->nchildren++;
	}
	return idx;
}

static void
push_level(struct mail_parser *mp, uint32_t part)
{
	struct level *lv;

	PG_ASSERT(mp->depth < mp->stack_cap);
	lv = &mp->stack[mp->depth++];
	memset(lv, 0, sizeof(*lv));
	lv->part = part;
	lv->last_child = MAIL_NONE;
	lv->in_header = true;
	mp->cur_field = F_NONE;
	for (int i = 0; i < F_COUNT; i++) {
		mp->have[i] = false;
		strbuf_reset(&mp->fields[i]);
	}
}

/* Adds a child part to the level (a multipart or a message/rfc822). */
static void
push_child(struct mail_parser *mp, struct level *lv, uint64_t hdr_off,
    bool is_message)
{
	uint32_t parent = lv->part;
	uint32_t idx = new_part(mp, parent, hdr_off);

	if (lv->last_child == MAIL_NONE)
		mp->msg->parts[parent].first_child = idx;
	else
		mp->msg->parts[lv->last_child].next_sibling = idx;
	lv->last_child = idx;
	if (is_message)
		mp->msg->parts[idx].flags |= MAIL_PART_IS_MESSAGE;
	push_level(mp, idx);
}

/* --- end of a header block ------------------------------------------- */

static bool
budget_ok(struct mail_parser *mp)
{
	if (arena_used(mp->msg->arena) < mp->lim.struct_max)
		return true;
	mp->msg->flags |= MAIL_MESSAGE_TRUNCATED;
	return false;
}

/* The collected value of a field, trimmed, NULs made spaces; NULL if
 * absent. */
static const char *
field_value(struct mail_parser *mp, enum field_id id, size_t *len_r)
{
	struct strbuf *sb = &mp->fields[id];
	size_t start = 0, end = sb->len;

	if (!mp->have[id])
		return NULL;
	while (start < end && (sb->data[start] == ' ' ||
	    sb->data[start] == '\t'))
		start++;
	while (end > start && (sb->data[end - 1] == ' ' ||
	    sb->data[end - 1] == '\t' || sb->data[end - 1] == '\r'))
		end--;
	for (size_t i = start; i < end; i++) {
		if (sb->data[i] == '\0')
			sb->data[i] = ' ';
	}
	*len_r = end - start;
	return sb->data == NULL ? "" : sb->data + start;
}

static const char *
field_str(struct mail_parser *mp, enum field_id id)
{
	size_t len;
	const char *v = field_value(mp, id, &len);

	if (v == NULL || !budget_ok(mp))
		return NULL;
	return arena_strndup(mp->msg->arena, v, len);
}

static void
field_addresses(struct mail_parser *mp, enum field_id id,
    struct mail_address_list *list)
{
	size_t len;
	const char *v = field_value(mp, id, &len);

	list->addrs = NULL;
	list->count = 0;
	if (v == NULL || !budget_ok(mp))
		return;
	mail_address_parse(mp->msg->arena, v, len, mp->lim.addresses_max,
	    list);
}

static void
build_envelope(struct mail_parser *mp, struct mail_part *part)
{
	struct mail_envelope *env;
	size_t len;
	const char *v;

	env = arena_zalloc(mp->msg->arena, sizeof(*env));
	part->envelope = env;
	env->date = field_str(mp, F_DATE);
	env->subject = field_str(mp, F_SUBJECT);
	env->message_id = field_str(mp, F_MESSAGE_ID);
	env->in_reply_to = field_str(mp, F_IN_REPLY_TO);
	field_addresses(mp, F_FROM, &env->from);
	field_addresses(mp, F_SENDER, &env->sender);
	field_addresses(mp, F_REPLY_TO, &env->reply_to);
	field_addresses(mp, F_TO, &env->to);
	field_addresses(mp, F_CC, &env->cc);
	field_addresses(mp, F_BCC, &env->bcc);
	v = field_value(mp, F_DATE, &len);
	if (v != NULL && mail_date_parse(v, len, &env->date_time,
	    &env->date_tz_min) == 0)
		env->date_valid = true;
	v = field_value(mp, F_RECEIVED, &len);
	if (v != NULL && mail_date_parse_received(v, len,
	    &env->received_time, &env->received_tz_min) == 0)
		env->received_valid = true;
}

static const struct mail_param default_charset = { "charset", "us-ascii" };

static void
parse_mime_fields(struct mail_parser *mp, struct mail_part *part,
    bool parent_digest)
{
	struct arena *a = mp->msg->arena;
	const char *v, *type = NULL, *subtype = NULL;
	size_t len;
	struct mail_param *params = NULL;
	uint32_t nparams = 0;

	v = field_value(mp, F_CONTENT_TYPE, &len);
	if (v != NULL && budget_ok(mp) &&
	    mail_header_parse_content_type(a, v, len, &type, &subtype,
	    &params, &nparams) == 0) {
		part->type = type;
		part->subtype = subtype;
		part->params = params;
		part->nparams = nparams;
	} else if (parent_digest) {
		part->type = "message";
		part->subtype = "rfc822";
		part->flags |= MAIL_PART_DEFAULT_TYPE;
	} else {
		part->params = (struct mail_param *)(uintptr_t)&default_charset;
		part->nparams = 1;
		part->flags |= MAIL_PART_DEFAULT_TYPE;
	}
	/* RFC 2046 4.1.2: text without a charset is us-ascii; say so, as
	 * Dovecot does, so clients need not know the default. */
	if (strcasecmp(part->type, "text") == 0 &&
	    mail_part_param(part, "charset") == NULL && budget_ok(mp)) {
		struct mail_param *np = arena_alloc(a,
		    (part->nparams + 1) * sizeof(*np));

		if (part->nparams > 0)
			memcpy(np, part->params, part->nparams * sizeof(*np));
		np[part->nparams++] = default_charset;
		part->params = np;
	}
	if (!budget_ok(mp))
		return;
	v = field_value(mp, F_CTE, &len);
	if (v != NULL) {
		const char *tok = mail_header_parse_token(a, v, len);

		if (tok != NULL)
			part->encoding = tok;
	}
	part->id = field_str(mp, F_CONTENT_ID);
	part->description = field_str(mp, F_CONTENT_DESC);
	part->md5 = field_str(mp, F_CONTENT_MD5);
	v = field_value(mp, F_CONTENT_DISP, &len);
	if (v != NULL)
		(void)mail_header_parse_disposition(a, v, len,
		    &part->disposition, &part->disp_params,
		    &part->ndisp_params);
	v = field_value(mp, F_CONTENT_LANG, &len);
	if (v != NULL)
		mail_header_parse_languages(a, v, len, &part->languages,
		    &part->nlanguages);
	v = field_value(mp, F_CONTENT_LOC, &len);
	if (v != NULL) {
		/* RFC 2557 4.4.1: folding whitespace is not part of it. */
		char *loc = arena_alloc(a, len + 1);
		size_t n = 0;

		for (size_t i = 0; i < len; i++) {
			if (v[i] != ' ' && v[i] != '\t')
				loc[n++] = v[i];
		}
		loc[n] = '\0';
		part->location = loc;
	}
}

static bool
encoding_is_identity(const char *enc)
{
	return strcasecmp(enc, "7bit") == 0 || strcasecmp(enc, "8bit") == 0 ||
	    strcasecmp(enc, "binary") == 0;
}

/*
 * The header block of the top level ended: hdr_end is where the body
 * starts. Decides what the body is (multipart, message, leaf).
 */
static void
end_header(struct mail_parser *mp, uint64_t body_off, uint64_t body_line,
    bool blank_line)
{
	struct level *lv = &mp->stack[mp->depth - 1];
	struct mail_part *part = &mp->msg->parts[lv->part];
	bool parent_digest = mp->depth >= 2 && mp->stack[mp->depth - 2].digest &&
	    (part->flags & MAIL_PART_IS_MESSAGE) == 0;
	const char *boundary;

	mp->cur_field = F_NONE;
	lv->in_header = false;
	lv->body_line_start = body_line;
	part->hdr_len = body_off - part->hdr_off;
	part->body_off = body_off;
	if (!blank_line)
		part->flags |= MAIL_PART_NO_BLANK_LINE;
	parse_mime_fields(mp, part, parent_digest);
	if ((part->flags & MAIL_PART_IS_MESSAGE) != 0)
		build_envelope(mp, part);

	if (strcasecmp(part->type, "multipart") == 0) {
		boundary = mail_part_param(part, "boundary");
		if (boundary != NULL && boundary[0] != '\0' &&
		    strlen(boundary) <= MAIL_BOUNDARY_MAX &&
		    part->depth < mp->lim.depth_max) {
			lv->multipart = true;
			lv->blen = strlen(boundary);
			lv->boundary = xstrdup(boundary);
			lv->digest = strcasecmp(part->subtype, "digest") == 0;
			part->flags |= MAIL_PART_MULTIPART;
			mp->nmultipart++;
		} else {
			part->flags |= MAIL_PART_NOT_PARSED;
			if (part->depth >= mp->lim.depth_max)
				mp->msg->flags |= MAIL_MESSAGE_TRUNCATED;
		}
	} else if (mail_part_is_type(part, "message", "rfc822")) {
		if (part->depth < mp->lim.depth_max &&
		    mp->msg->nparts < mp->lim.parts_max &&
		    encoding_is_identity(part->encoding)) {
			part->flags |= MAIL_PART_MESSAGE;
			push_child(mp, lv, body_off, true);
		} else {
			part->flags |= MAIL_PART_NOT_PARSED;
			if (encoding_is_identity(part->encoding))
				mp->msg->flags |= MAIL_MESSAGE_TRUNCATED;
		}
	}
}

/* Closes the top level. at: the boundary line's offset (boundary true) or
 * the end of the message. */
static void
close_top(struct mail_parser *mp, uint64_t at, bool boundary)
{
	struct level *lv = &mp->stack[mp->depth - 1];
	struct mail_part *part;
	uint64_t end;

	if (lv->in_header)
		end_header(mp, at, mp->line_no, false);
	/* end_header may have pushed a message child: close it first. */
	if (&mp->stack[mp->depth - 1] != lv) {
		close_top(mp, at, boundary);
		lv = &mp->stack[mp->depth - 1];
	}
	part = &mp->msg->parts[lv->part];
	end = at;
	if (boundary)
		end = at - mp->prev_eol_len;
	if (end < part->body_off)
		end = part->body_off;
	part->body_len = end - part->body_off;
	/* Lines are the line ends inside the body (as Dovecot counts): every
	 * line started in it, less the last one when its line end belongs to
	 * a boundary or the message ended without one. */
	if (part->body_len == 0) {
		part->lines = 0;
	} else {
		part->lines = mp->line_no - lv->body_line_start;
		if ((boundary || mp->last_incomplete) && part->lines > 0)
			part->lines--;
	}
	if (lv->multipart)
		mp->nmultipart--;
	free(lv->boundary);
	lv->boundary = NULL;
	mp->depth--;
}

/* --- lines --------------------------------------------------------------- */

struct line {
	const char *text;	/* the first kept bytes of the line */
	size_t clen;		/* content bytes available (no eol) */
	uint64_t off;		/* absolute offset */
	uint64_t full;		/* whole length, eol included */
	bool truncated;		/* text holds only a prefix */
};

/* Does the line delimit level lv? 1 open, 2 close, 0 no. */
static int
boundary_match(const struct level *lv, const struct line *l)
{
	const char *rest;
	size_t rlen;

	if (!lv->multipart || lv->epilogue || l->clen < 2 + lv->blen ||
	    memcmp(l->text + 2, lv->boundary, lv->blen) != 0)
		return 0;
	rest = l->text + 2 + lv->blen;
	rlen = l->clen - 2 - lv->blen;
	if (rlen >= 2 && rest[0] == '-' && rest[1] == '-')
		return 2;
	/* Only whitespace may follow an open delimiter: "--b" must not
	 * match "--b_2", the boundary of a nested multipart. */
	for (size_t i = 0; i < rlen; i++) {
		if (rest[i] != ' ' && rest[i] != '\t' && rest[i] != '\r')
			return 0;
	}
	return 1;
}

static bool
check_boundaries(struct mail_parser *mp, const struct line *l)
{
	for (uint32_t k = mp->depth; k-- > 0;) {
		struct level *lv = &mp->stack[k];
		int m = boundary_match(lv, l);

		if (m == 0)
			continue;
		if (m == 1 && mp->msg->nparts >= mp->lim.parts_max) {
			/* Out of parts: the rest is body of the last one. */
			mp->msg->flags |= MAIL_MESSAGE_TRUNCATED;
			return false;
		}
		while (mp->depth - 1 > k)
			close_top(mp, l->off, true);
		lv = &mp->stack[k];
		if (m == 2) {
			lv->epilogue = true;
		} else {
			push_child(mp, lv, l->off + l->full, false);
		}
		return true;
	}
	return false;
}

static int
lookup_field(const char *name, size_t len, bool is_message)
{
	int max = is_message ? F_COUNT : F_DATE;

	for (int i = 0; i < max; i++) {
		if (strlen(field_names[i]) == len &&
		    strncasecmp(field_names[i], name, len) == 0)
			return i;
	}
	return F_NONE;
}

static void
collect(struct mail_parser *mp, const char *s, size_t len)
{
	struct strbuf *sb;

	if (mp->cur_field == F_NONE)
		return;
	sb = &mp->fields[mp->cur_field];
	if (sb->len + len > mp->lim.field_max) {
		len = mp->lim.field_max - sb->len;
		mp->msg->flags |= MAIL_MESSAGE_TRUNCATED;
	}
	strbuf_append(sb, s, len);
}

static void header_line(struct mail_parser *mp, const struct line *l);

/* Address-list fields whose repeats are joined (the others: first one). */
static bool
is_list_field(int id)
{
	return id == F_FROM || id == F_TO || id == F_CC || id == F_BCC;
}

static void
header_line(struct mail_parser *mp, const struct line *l)
{
	struct level *lv = &mp->stack[mp->depth - 1];
	struct mail_part *part = &mp->msg->parts[lv->part];
	const char *colon;
	size_t name_len;
	bool first = !lv->header_started;

	lv->header_started = true;
	if (l->clen == 0 || (l->clen == 1 && l->text[0] == '\r')) {
		end_header(mp, l->off + l->full, mp->line_no + 1, true);
		return;
	}
	if (l->text[0] == ' ' || l->text[0] == '\t') {
		if (!first) {
			collect(mp, l->text, l->clen);
			return;
		}
	} else {
		colon = memchr(l->text, ':', l->clen);
		name_len = colon == NULL ? 0 : (size_t)(colon - l->text);
		while (name_len > 0 && (l->text[name_len - 1] == ' ' ||
		    l->text[name_len - 1] == '\t'))
			name_len--;
		if (name_len > 0 && memchr(l->text, ' ', name_len) == NULL &&
		    memchr(l->text, '\t', name_len) == NULL) {
			int id = lookup_field(l->text, name_len,
			    (part->flags & MAIL_PART_IS_MESSAGE) != 0);

			mp->cur_field = F_NONE;
			if (id != F_NONE && mp->have[id] && is_list_field(id)) {
				/* RFC 5322 4.5.3 (obsolete syntax, which a
				 * receiver must accept): several From, To,
				 * Cc or Bcc fields are one list */
				mp->cur_field = id;
				collect(mp, ",", 1);
				collect(mp, colon + 1,
				    l->clen - (size_t)(colon + 1 - l->text));
			} else if (id != F_NONE && !mp->have[id]) {
				mp->have[id] = true;
				mp->cur_field = id;
				collect(mp, colon + 1,
				    l->clen - (size_t)(colon + 1 - l->text));
			}
			return;
		}
		/* An mbox "From " line before the first header. */
		if (first && lv->part == 0 && l->clen >= 5 &&
		    memcmp(l->text, "From ", 5) == 0)
			return;
	}
	/* Not a header line: the header ends without an empty line and
	 * this line is the first of the body. */
	end_header(mp, l->off, mp->line_no, false);
	lv = &mp->stack[mp->depth - 1];
	if (lv->in_header)
		header_line(mp, l);	/* a message/rfc822 child's header */
}

static void
process_line(struct mail_parser *mp, const struct line *l)
{
	bool handled = false;

	if (mp->nmultipart > 0 && l->clen >= 2 && l->text[0] == '-' &&
	    l->text[1] == '-')
		handled = check_boundaries(mp, l);
	if (!handled && mp->stack[mp->depth - 1].in_header)
		header_line(mp, l);
	mp->line_no++;
	mp->offset += l->full;
}

static void
line_from(struct line *l, const char *text, size_t kept, uint64_t full,
    uint32_t eol, uint64_t off)
{
	l->text = text;
	l->full = full;
	l->off = off;
	l->clen = kept < full - eol ? kept : (size_t)(full - eol);
	l->truncated = kept < full;
	/* A lone CR before the LF is part of the line end. */
}

static size_t
keep_max(const struct mail_parser *mp)
{
	return mp->stack[mp->depth - 1].in_header ? mp->lim.field_max + 256 :
	    BODY_LINE_KEEP;
}

static void
carry_add(struct mail_parser *mp, const char *s, size_t len)
{
	if (mp->carry_total == 0)
		mp->carry_keep_max = keep_max(mp);
	if (mp->carry_kept < mp->carry_keep_max) {
		size_t n = mp->carry_keep_max - mp->carry_kept;

		if (n > len)
			n = len;
		if (mp->carry_kept + n > mp->carry_cap) {
			mp->carry_cap = mp->carry_kept + n < 256 ? 256 :
			    (mp->carry_kept + n) * 2;
			if (mp->carry_cap > mp->carry_keep_max)
				mp->carry_cap = mp->carry_keep_max;
			mp->carry = xrealloc(mp->carry, mp->carry_cap);
		}
		memcpy(mp->carry + mp->carry_kept, s, n);
		mp->carry_kept += n;
	}
	if (len >= 2) {
		mp->carry_last[0] = s[len - 2];
		mp->carry_last[1] = s[len - 1];
	} else if (len == 1) {
		mp->carry_last[0] = mp->carry_last[1];
		mp->carry_last[1] = s[0];
	}
	mp->carry_total += len;
}

static void
carry_flush(struct mail_parser *mp, bool complete)
{
	struct line l;
	uint32_t eol = 0;

	if (complete)
		eol = mp->carry_total >= 2 && mp->carry_last[0] == '\r' ? 2 : 1;
	line_from(&l, mp->carry, mp->carry_kept, mp->carry_total, eol,
	    mp->offset);
	process_line(mp, &l);
	mp->prev_eol_len = eol;
	mp->carry_kept = 0;
	mp->carry_total = 0;
	mp->carry_last[0] = mp->carry_last[1] = '\0';
}

void
mail_parser_feed(struct mail_parser *mp, const void *data, size_t len)
{
	const char *d = data;
	size_t i = 0;

	while (i < len) {
		const char *nl = memchr(d + i, '\n', len - i);
		size_t end = nl == NULL ? len : (size_t)(nl - d) + 1;
		size_t seg = end - i;

		if (nl != NULL && mp->carry_total == 0) {
			struct line l;
			uint32_t eol = seg >= 2 && d[end - 2] == '\r' ? 2 : 1;
			size_t kmax = keep_max(mp);

			/* Look at no more of the line than a carried one
			 * keeps, so that splits never change the result. */
			line_from(&l, d + i, seg < kmax ? seg : kmax, seg, eol,
			    mp->offset);
			process_line(mp, &l);
			mp->prev_eol_len = eol;
		} else {
			carry_add(mp, d + i, seg);
			if (nl != NULL)
				carry_flush(mp, true);
		}
		i = end;
	}
}

struct mail_parser *
mail_parser_new(const struct mail_parse_limits *limits)
{
	struct mail_parser *mp = xcalloc(1, sizeof(*mp));

	if (limits != NULL)
		mp->lim = *limits;
	else
		mail_parse_limits_default(&mp->lim);
	/* The blob reader enforces the defaults as hard maxima. */
	if (mp->lim.parts_max == 0)
		mp->lim.parts_max = 1;
	if (mp->lim.parts_max > MAIL_PARTS_MAX)
		mp->lim.parts_max = MAIL_PARTS_MAX;
	if (mp->lim.depth_max > MAIL_DEPTH_MAX)
		mp->lim.depth_max = MAIL_DEPTH_MAX;
	mp->msg = xcalloc(1, sizeof(*mp->msg));
	mp->msg->arena = arena_new(16384);
	mp->stack_cap = mp->lim.depth_max + 3;
	mp->stack = xcalloc(mp->stack_cap, sizeof(*mp->stack));
	new_part(mp, MAIL_NONE, 0);
	mp->msg->parts[0].flags |= MAIL_PART_IS_MESSAGE;
	push_level(mp, 0);
	return mp;
}

void
mail_parser_free(struct mail_parser **mpp)
{
	struct mail_parser *mp;

	if (mpp == NULL || *mpp == NULL)
		return;
	mp = *mpp;
	for (uint32_t i = 0; i < mp->depth; i++)
		free(mp->stack[i].boundary);
	free(mp->stack);
	free(mp->carry);
	for (int i = 0; i < F_COUNT; i++)
		strbuf_free(&mp->fields[i]);
	mail_message_free(&mp->msg);
	free(mp);
	*mpp = NULL;
}

struct mail_message *
mail_parser_finish(struct mail_parser **mpp)
{
	struct mail_parser *mp = *mpp;
	struct mail_message *msg;

	if (mp->carry_total > 0) {
		mp->last_incomplete = true;
		carry_flush(mp, false);
	}
	while (mp->depth > 0)
		close_top(mp, mp->offset, false);
	msg = mp->msg;
	msg->size = mp->offset;
	mp->msg = NULL;
	mail_parser_free(mpp);
	return msg;
}

struct mail_message *
mail_parse(const void *data, size_t len,
    const struct mail_parse_limits *limits)
{
	struct mail_parser *mp = mail_parser_new(limits);

	mail_parser_feed(mp, data, len);
	return mail_parser_finish(&mp);
}
