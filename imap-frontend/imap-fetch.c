/* imap-fetch — FETCH with bounded memory: each message's small items are
 * rendered into one line, big body items are streamed from the store in
 * chunks while the client drains its output. */
#include "imap-fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-format.h"
#include "imap-msgset.h"
#include "imap-parse.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "log.h"
#include "store/mail-decode.h"
#include "store/mail-header.h"
#include "store/mail-message.h"
#include "store/mail-parse.h"
#include "store/mail-render.h"
#include "store/mail-search.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Per-FETCH arena block (parsed attributes, the index copy). */
#define IMAP_FETCH_ARENA_CHUNK 4096
/* Message records read per store cursor walk during FETCH. */
#define IMAP_FETCH_BATCH 512

/* ---- PREVIEW (RFC 8970) ---- */

/* Bytes of a text part decoded for its preview: enough for 200
 * characters after whitespace is collapsed, in almost every message. */
#define IMAP_PREVIEW_SOURCE_MAX (16 * 1024)
/* Characters of a preview (RFC 8970 3: at most 256). */
#define IMAP_PREVIEW_CHARS 200

/* The preview of a message: the first text/plain part (else the first
 * text/html one, without tags), decoded to UTF-8, white space collapsed,
 * at most IMAP_PREVIEW_CHARS characters. Empty when there is no text. */
static void
message_preview(const struct mail_message *mm, const char *body,
    size_t body_size, struct strbuf *out)
{
	const struct mail_part *pick = NULL;
	struct mail_part p;
	struct strbuf t = STRBUF_INIT;
	const char *src;
	size_t chars = 0, n;
	bool space = true;

	for (int pass = 0; pass < 2 && pick == NULL; pass++)
		for (uint32_t i = 0; i < mm->nparts && pick == NULL; i++) {
			const struct mail_part *q = &mm->parts[i];

			if (q->first_child != MAIL_NONE ||
			    q->body_off + q->body_len > body_size ||
			    (q->disposition != NULL &&
			    strcasecmp(q->disposition, "attachment") == 0))
				continue;
			if ((strcasecmp(q->type, "text") == 0 &&
			    strcasecmp(q->subtype, pass == 0 ? "plain" :
			    "html") == 0) || (pass == 0 &&
			    (q->flags & MAIL_PART_DEFAULT_TYPE)))
				pick = q;
		}
	if (pick == NULL)
		return;
	p = *pick;
	if (p.body_len > IMAP_PREVIEW_SOURCE_MAX)
		p.body_len = IMAP_PREVIEW_SOURCE_MAX;
	/* decoded to UTF-8, HTML as its text (mail-html.h), as SEARCH
	   reads it */
	mail_search_part_text(body, body_size, &p, &t);
	src = strbuf_str(&t);
	n = t.len;
	for (size_t i = 0; i < n && chars < IMAP_PREVIEW_CHARS; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
		    c < 0x20 || c == 0x7f) {
			if (!space) {
				strbuf_appendc(out, ' ');
				chars++;
			}
			space = true;
			continue;
		}
		strbuf_appendc(out, (char)c);
		space = false;
		/* count characters, not bytes: a character's continuation
		 * bytes go with it, so none is cut */
		chars++;
		while (i + 1 < n && ((unsigned char)src[i + 1] & 0xc0) ==
		    0x80)
			strbuf_appendc(out, src[++i]);
	}
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->len--;
	strbuf_free(&t);
}

/* ---- FETCH ---- */

struct fetch_big {
	const char *name;
	uint64_t off, len;	/* within the message bytes; len: as sent */
	/* BINARY (RFC 3516): the bytes as they are, NULs too ("~{n}" when
	 * there are any), and for an encoded part decoded on the way: the
	 * encoded part is off..off+src_len, the decoder has used src_pos
	 * of it, and skip decoded bytes precede a partial's start. */
	bool raw, lit8, decode;
	struct mail_decoder dec;
	uint64_t src_len, src_pos, skip;
};

struct fetch_ctx {
	struct arena *a;
	char *tag;
	bool uid;
	/* BINARY of a part whose Content-Transfer-Encoding is unknown:
	 * the FETCH stops with NO [UNKNOWN-CTE] (RFC 3516 4.1) */
	bool unknown_cte;
	struct imap_fetch_att *atts;
	size_t natts;
	bool need_struct, need_body, add_uid;
	/* (CHANGEDSINCE n): only messages with modseq > n (RFC 7162 3.1.4) */
	bool has_changedsince;
	uint64_t changedsince;
	bool has_modseq;	/* MODSEQ among the items (or implied) */
	bool vanished;		/* (... VANISHED): RFC 7162 3.2.6 */
	bool condstore;		/* the session had CONDSTORE on */
	uint32_t *uids;		/* the messages, as UIDs (stable) */
	size_t count, pos;
	struct imap_seqset seen;	/* \Seen set by this FETCH */
	/* streaming state of the current message */
	uint32_t cur_uid;
	struct fetch_big *bigs;
	size_t nbigs, bigpos;
	uint64_t done;		/* bytes of bigs[bigpos] sent */
	bool header_sent;	/* "NAME {n}\r\n" of bigs[bigpos] sent */
	bool need_space;	/* an item precedes the next big one */
	bool in_msg;
	/*
	 * The pin (issue 13 item 1): the read snapshot the current message
	 * was rendered from, held until its last literal is sent, so that
	 * the body stays readable whatever other sessions expunge or move
	 * meanwhile; body points into it. pin_ev fires every
	 * limits.fetch_pin_secs: the pin is then taken again on a fresh
	 * snapshot (by UID, else by body id: a MOVE elsewhere keeps the
	 * body), so a slow reader never holds an old snapshot; when no
	 * message has the body any more the connection is closed in the
	 * middle of the literal -- never a byte that is not the message's.
	 */
	struct store_read *pin;
	const char *body;
	size_t body_size;
	uint64_t body_id;
	struct event *pin_ev;
	/* Messages of the view that another session expunged before this
	 * session was told (RFC 2180 4.1): their UIDs. */
	struct imap_seqset gone;
	/* NOTIFY's FETCH of new messages (tag NULL): no tagged answer;
	 * the session goes back to IDLE if it streamed from there. */
	bool resume_idle;
};

static void
fetch_unpin(struct fetch_ctx *c)
{
	if (c->pin_ev != NULL)
		evtimer_del(c->pin_ev);
	store_read_end(&c->pin);
	c->body = NULL;
	c->body_size = 0;
}

static void
fetch_ctx_free(void *arg)
{
	struct fetch_ctx *c = arg;

	if (c == NULL)
		return;
	fetch_unpin(c);
	if (c->pin_ev != NULL)
		event_free(c->pin_ev);
	imap_seqset_free(&c->gone);
	imap_seqset_free(&c->seen);
	arena_free(&c->a);
	free(c->tag);
	free(c);
}

static void
append_section_literal(struct strbuf *sb, const char *name, const char *data,
    size_t len)
{
	strbuf_appends(sb, name);
	strbuf_appendc(sb, ' ');
	imap_format_literal(sb, data, len);
}

/* Resolves a body item to a byte range of the message, or to generated
 * bytes in gen (HEADER.FIELDS). Returns false when the item is empty. */
static void
section_range(const struct imap_fetch_att *att, const struct mail_message *mm,
    const char *body, size_t body_size, uint64_t *off_r, uint64_t *len_r,
    struct strbuf *gen, bool *generated_r)
{
	enum mail_section_kind kind = MAIL_SECTION_PART;
	uint32_t path[IMAP_SECTION_MAX_DEPTH];
	size_t npath = 0;
	uint64_t off = 0, len = 0;
	const char *err;
	bool fields = false, exclude = false;

	*generated_r = false;
	switch (att->type) {
	case IMAP_FETCH_RFC822:
		kind = MAIL_SECTION_PART;
		break;
	case IMAP_FETCH_RFC822_HEADER:
		kind = MAIL_SECTION_HEADER;
		break;
	case IMAP_FETCH_RFC822_TEXT:
		kind = MAIL_SECTION_TEXT;
		break;
	default:
		npath = att->section.depth;
		for (size_t i = 0; i < npath; i++)
			path[i] = att->section.path[i];
		switch (att->section.kind) {
		case IMAP_SECTION_WHOLE:
			kind = MAIL_SECTION_PART;
			break;
		case IMAP_SECTION_HEADER:
			kind = MAIL_SECTION_HEADER;
			break;
		case IMAP_SECTION_HEADER_FIELDS:
			kind = MAIL_SECTION_HEADER;
			fields = true;
			break;
		case IMAP_SECTION_HEADER_FIELDS_NOT:
			kind = MAIL_SECTION_HEADER;
			fields = true;
			exclude = true;
			break;
		case IMAP_SECTION_TEXT:
			kind = MAIL_SECTION_TEXT;
			break;
		case IMAP_SECTION_MIME:
			kind = MAIL_SECTION_MIME;
			break;
		}
		break;
	}
	if (npath == 0 && kind == MAIL_SECTION_PART) {
		off = 0;
		len = body_size;
	} else if (mm == NULL || mail_section_range(mm, path, npath, kind,
	    &off, &len, &err) != 0 || off + len > body_size) {
		off = 0;
		len = 0;
	}
	if (fields) {
		mail_header_filter(body + off, (size_t)len,
		    att->section.fields, att->section.field_count, exclude, gen);
		*generated_r = true;
		off = 0;
		len = gen->len;
	}
	if (att->partial) {
		uint64_t po, pl;

		mail_range_partial(off, len, att->partial_offset,
		    att->partial_length, &po, &pl);
		off = po;
		len = pl;
	}
	*off_r = off;
	*len_r = len;
}

/* The part a BINARY item names: its bytes in the message and how they
 * are encoded (a multipart or message part is sent as it is). -1 when
 * the message has no such part. */
static int
binary_part(const struct imap_fetch_att *att, const struct mail_message *mm,
    size_t body_size, uint64_t *off_r, uint64_t *len_r, enum mail_cte *cte_r)
{
	const struct mail_part *p;
	uint32_t idx;

	*cte_r = MAIL_CTE_IDENTITY;
	if (att->section.depth == 0) {
		*off_r = 0;
		*len_r = body_size;
		return 0;
	}
	if (mm == NULL || mail_section_find(mm, att->section.path,
	    att->section.depth, &idx) != 0)
		return -1;
	p = &mm->parts[idx];
	if (p->body_off + p->body_len > body_size)
		return -1;
	*off_r = p->body_off;
	*len_r = p->body_len;
	if (p->first_child == MAIL_NONE && !(p->flags & MAIL_PART_MESSAGE))
		*cte_r = mail_cte_parse(p->encoding);
	return 0;
}

/*
 * BINARY[part]<partial> and BINARY.SIZE[part] (RFC 3516): the part with
 * its Content-Transfer-Encoding undone, sized by a pass of the decoder
 * in bounded pieces; small results go into the line, bigger ones stream
 * (decoded piece by piece as the client drains). Returns false for an
 * encoding we cannot undo (the caller answers NO [UNKNOWN-CTE]).
 */
static bool
render_binary(struct fetch_ctx *c, const struct imap_fetch_att *att,
    const struct mail_message *mm, const char *body, size_t body_size,
    struct strbuf *sb, struct strbuf *gen, bool first)
{
	uint64_t off, len, size, po, pl, from = 0, to = UINT64_MAX;
	enum mail_cte cte;
	bool nul = false;
	struct fetch_big *b;

	if (binary_part(att, mm, body_size, &off, &len, &cte) != 0) {
		if (!first)
			strbuf_appendc(sb, ' ');
		strbuf_appendf(sb, "%s %s", att->response_name,
		    att->type == IMAP_FETCH_BINARY_SIZE ? "0" : "NIL");
		return true;
	}
	if (cte == MAIL_CTE_UNKNOWN)
		return false;
	if (att->partial) {
		from = att->partial_offset;
		to = from + att->partial_length;
	}
	size = mail_decoded_size(cte, body + off, (size_t)len, from, to, &nul,
	    gen);
	strbuf_reset(gen);
	if (att->type == IMAP_FETCH_BINARY_SIZE) {
		if (!first)
			strbuf_appendc(sb, ' ');
		strbuf_appendf(sb, "%s %llu", att->response_name,
		    (unsigned long long)size);
		return true;
	}
	po = 0;
	pl = size;
	if (att->partial)
		mail_range_partial(0, size, att->partial_offset,
		    att->partial_length, &po, &pl);
	if (pl > IMAP_FETCH_INLINE_MAX) {
		b = &c->bigs[c->nbigs++];
		memset(b, 0, sizeof(*b));
		b->name = att->response_name;
		b->raw = true;
		b->lit8 = nul;
		b->len = pl;
		if (cte == MAIL_CTE_IDENTITY) {
			b->off = off + po;
		} else {
			b->decode = true;
			mail_decoder_init(&b->dec, cte);
			b->off = off;
			b->src_len = len;
			b->skip = po;
		}
		return true;
	}
	if (!first)
		strbuf_appendc(sb, ' ');
	strbuf_appendf(sb, "%s %s{%llu}\r\n", att->response_name, nul ? "~" :
	    "", (unsigned long long)pl);
	if (cte == MAIL_CTE_IDENTITY) {
		strbuf_append(sb, body + off + po, (size_t)pl);
	} else {
		struct mail_decoder d;
		uint64_t pos = 0;

		mail_decoder_init(&d, cte);
		while (gen->len < po + pl && pos < len)
			pos += mail_decoder_step(&d, body + off + pos,
			    (size_t)(len - pos), (size_t)(po + pl - gen->len),
			    gen);
		PG_ASSERT(gen->len >= po + pl);
		strbuf_append(sb, gen->data + po, (size_t)pl);
	}
	return true;
}

/* Renders one message; false if it is gone (expunged meanwhile). */
static bool
render_message(struct imap_session *s, struct fetch_ctx *c,
    struct store_read *r, const struct store_msg *mp, const char *const *kw,
    size_t kwn, struct strbuf *sb)
{
	const struct store_msg m = *mp;
	uint32_t uid = m.uid;
	const char *err;
	const void *bp = NULL;
	const char *body = NULL;
	size_t body_size = 0;
	struct mail_message *mm = NULL;
	struct strbuf gen = STRBUF_INIT;
	uint32_t seq = imap_selected_seq(s->sel, uid);
	bool first = true, flags_sent = false;
	size_t line_start = sb->len;

	if (seq == 0)
		return true;	/* not in this session's view: not asked */
	if (c->need_body) {
		if (store_msg_body(r, s->user_id, s->sel->mailbox_id, uid, &bp,
		    &body_size, &err) != 0)
			return false;
		body = bp;
	}
	if (c->need_struct)
		mm = imap_structure_load(s->user_id, s->sel->mailbox_id, r, uid,
		    body, body_size);
	c->nbigs = 0;
	c->bigpos = 0;
	c->done = 0;
	c->header_sent = false;
	strbuf_appendf(sb, "* %u FETCH (", seq);
	if (c->add_uid) {
		strbuf_appendf(sb, "UID %u", uid);
		first = false;
	}
	for (size_t i = 0; i < c->natts; i++) {
		const struct imap_fetch_att *att = &c->atts[i];
		uint64_t off, len;
		bool generated;

		if (!first && att->type != IMAP_FETCH_BODY_SECTION &&
		    att->type != IMAP_FETCH_RFC822 &&
		    att->type != IMAP_FETCH_RFC822_HEADER &&
		    att->type != IMAP_FETCH_RFC822_TEXT &&
		    att->type != IMAP_FETCH_BINARY &&
		    att->type != IMAP_FETCH_BINARY_SIZE)
			strbuf_appendc(sb, ' ');
		switch (att->type) {
		case IMAP_FETCH_FLAGS:
			strbuf_appends(sb, "FLAGS ");
			imap_selected_format_flags(sb, s->sel, uid, &m.flags,
			    kw, kwn);
			flags_sent = true;
			break;
		case IMAP_FETCH_UID:
			strbuf_appendf(sb, "UID %u", uid);
			break;
		case IMAP_FETCH_INTERNALDATE:
			strbuf_appends(sb, "INTERNALDATE ");
			imap_format_datetime(sb, m.internaldate,
			    m.tz_offset_min);
			break;
		case IMAP_FETCH_RFC822_SIZE:
			strbuf_appendf(sb, "RFC822.SIZE %llu",
			    (unsigned long long)m.size);
			break;
		case IMAP_FETCH_MODSEQ:
			strbuf_appendf(sb, "MODSEQ (%llu)",
			    (unsigned long long)m.modseq);
			break;
		case IMAP_FETCH_EMAILID:
			/* RFC 8474 5.1: the body's id, which COPY and MOVE
			 * share; never reused */
			strbuf_appendf(sb, "EMAILID (M%016llx)",
			    (unsigned long long)m.body_id);
			break;
		case IMAP_FETCH_THREADID: {
			/* RFC 8474 5.2 (imap_msgview_thread_id) */
			struct imap_msgview tv;
			uint64_t tid;

			memset(&tv, 0, sizeof(tv));
			tv.user_id = s->user_id;
			tv.mailbox_id = s->sel->mailbox_id;
			tv.r = r;
			imap_msgview_set(&tv, &m);
			if (imap_msgview_thread_id(&tv, &tid) == 0)
				strbuf_appendf(sb, "THREADID (T%016llx)",
				    (unsigned long long)tid);
			else
				strbuf_appends(sb, "THREADID NIL");
			imap_msgview_clear(&tv);
			break;
		}
		case IMAP_FETCH_PREVIEW:
			strbuf_reset(&gen);
			if (mm != NULL)
				message_preview(mm, body, body_size, &gen);
			strbuf_appends(sb, "PREVIEW ");
			if (s->enabled_utf8 && gen.len > 0 &&
			    strpbrk(strbuf_str(&gen), "\"\\") == NULL) {
				strbuf_appendc(sb, '"');
				strbuf_append(sb, gen.data, gen.len);
				strbuf_appendc(sb, '"');
			} else {
				imap_format_string(sb, strbuf_str(&gen),
				    gen.len);
			}
			break;
		case IMAP_FETCH_ENVELOPE:
			strbuf_appends(sb, "ENVELOPE ");
			if (mm != NULL)
				mail_render_message_envelope(sb, mm);
			else
				mail_render_envelope(sb, NULL);
			break;
		case IMAP_FETCH_BODY:
		case IMAP_FETCH_BODYSTRUCTURE:
			strbuf_appends(sb, att->type == IMAP_FETCH_BODY ?
			    "BODY " : "BODYSTRUCTURE ");
			if (mm != NULL)
				mail_render_bodystructure(sb, mm,
				    att->type == IMAP_FETCH_BODYSTRUCTURE);
			else
				strbuf_appends(sb, "(\"text\" \"plain\" NIL NIL "
				    "NIL \"7bit\" 0 0)");
			break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE: {
			size_t nb = c->nbigs;

			strbuf_reset(&gen);
			if (!render_binary(c, att, mm, body, body_size, sb,
			    &gen, first)) {
				/* nothing of this message is sent */
				sb->len = line_start;
				c->nbigs = 0;
				c->unknown_cte = true;
				strbuf_free(&gen);
				mail_message_free(&mm);
				return true;
			}
			if (c->nbigs > nb)
				continue;	/* streamed after the rest */
			break;
		}
		case IMAP_FETCH_BODY_SECTION:
		case IMAP_FETCH_RFC822:
		case IMAP_FETCH_RFC822_HEADER:
		case IMAP_FETCH_RFC822_TEXT:
			strbuf_reset(&gen);
			section_range(att, mm, body, body_size, &off, &len,
			    &gen, &generated);
			if (generated || len <= IMAP_FETCH_INLINE_MAX) {
				if (!first)
					strbuf_appendc(sb, ' ');
				append_section_literal(sb, att->response_name,
				    generated ? gen.data + off : body + off,
				    (size_t)len);
			} else {
				/* streamed after the small items */
				memset(&c->bigs[c->nbigs], 0,
				    sizeof(c->bigs[c->nbigs]));
				c->bigs[c->nbigs].name = att->response_name;
				c->bigs[c->nbigs].off = off;
				c->bigs[c->nbigs].len = len;
				c->nbigs++;
				continue;
			}
			break;
		default:
			break;
		}
		first = false;
	}
	if (!flags_sent && imap_seqset_contains(&c->seen, uid)) {
		/* RFC 3501 6.4.5: report the \Seen that BODY[] just set */
		if (!first)
			strbuf_appendc(sb, ' ');
		strbuf_appends(sb, "FLAGS ");
		imap_selected_format_flags(sb, s->sel, uid, &m.flags, kw, kwn);
		first = false;
		/* RFC 7162 3.1: a flag change this FETCH caused carries
		 * its MODSEQ once CONDSTORE is on */
		if (c->condstore && !c->has_modseq)
			strbuf_appendf(sb, " MODSEQ (%llu)",
			    (unsigned long long)m.modseq);
	}
	if (c->nbigs == 0)
		strbuf_appends(sb, ")\r\n");
	else {
		c->in_msg = true;
		c->cur_uid = uid;
		c->header_sent = false;
		c->need_space = !first;
		c->done = 0;
		/* the bytes its literals will stream: from r, which the
		 * caller keeps as the pin */
		c->body = body;
		c->body_size = body_size;
		c->body_id = m.body_id;
	}
	strbuf_free(&gen);
	mail_message_free(&mm);
	return true;
}

/* Writes n literal bytes (NULs replaced: imap_literal_bytes). */
static void
write_literal_chunk(struct imap_session *s, const char *p, size_t n)
{
	char *tmp;

	if (memchr(p, '\0', n) == NULL) {
		imap_session_write(s, p, n);
		return;
	}
	tmp = xmalloc(n);
	imap_literal_copy(tmp, p, n);
	imap_session_write(s, tmp, n);
	free(tmp);
}

/* One piece of a decoded BINARY item: decode about IMAP_FETCH_CHUNK
 * bytes from the pinned body, drop what precedes the partial's start,
 * send the rest (up to the announced length). false when the part ran
 * out early, which the size pass excludes: the connection closes rather
 * than send a wrong literal. */
static bool
stream_decoded(struct imap_session *s, struct fetch_ctx *c,
    struct fetch_big *b)
{
	struct strbuf piece = STRBUF_INIT;
	const char *p;
	uint64_t n;
	size_t used;

	PG_ASSERT(c->body != NULL && b->off + b->src_len <= c->body_size);
	used = mail_decoder_step(&b->dec, c->body + b->off + b->src_pos,
	    (size_t)(b->src_len - b->src_pos), IMAP_FETCH_CHUNK, &piece);
	b->src_pos += used;
	if (used == 0 && piece.len == 0) {
		strbuf_free(&piece);
		log_error("imap session=%u event=binary_short uid=%u",
		    s->id, c->cur_uid);
		imap_session_close(s);
		return false;
	}
	p = piece.data;
	n = piece.len;
	if (b->skip > 0) {
		uint64_t drop = b->skip < n ? b->skip : n;

		p += drop;
		n -= drop;
		b->skip -= drop;
	}
	if (n > b->len - c->done)
		n = b->len - c->done;
	if (n > 0)
		imap_session_write(s, p, (size_t)n);
	c->done += n;
	strbuf_free(&piece);
	return true;
}

/* Streams the big items of the current message from the pinned body;
 * false when output is full (call again later). */
static bool
stream_bigs(struct imap_session *s, struct fetch_ctx *c)
{
	while (c->bigpos < c->nbigs) {
		struct fetch_big *b = &c->bigs[c->bigpos];

		if (!c->header_sent) {
			imap_session_printf(s, "%s%s %s{%llu}\r\n",
			    c->need_space ? " " : "", b->name,
			    b->lit8 ? "~" : "", (unsigned long long)b->len);
			c->header_sent = true;
			c->need_space = true;
			c->done = 0;
		}
		while (c->done < b->len) {
			uint64_t n = b->len - c->done;

			if (imap_session_output_full(s))
				return false;
			if (b->decode) {
				if (!stream_decoded(s, c, b))
					return false;
				continue;
			}
			if (n > IMAP_FETCH_CHUNK)
				n = IMAP_FETCH_CHUNK;
			/* section_range() kept every range inside the body
			 * the pin holds */
			PG_ASSERT(c->body != NULL &&
			    b->off + c->done + n <= c->body_size);
			if (b->raw)
				imap_session_write(s, c->body + b->off +
				    c->done, (size_t)n);
			else
				write_literal_chunk(s, c->body + b->off +
				    c->done, (size_t)n);
			c->done += n;
		}
		c->bigpos++;
		c->header_sent = false;
	}
	imap_session_write(s, ")\r\n", 3);
	c->in_msg = false;
	return true;
}

/* The pin's period is over: take the body again from a fresh snapshot
 * (the message's UID, else any message that shares the body), or close
 * the connection when it is gone (the literal stays short: the client
 * can never take what it got for the message). */
static void
pin_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;
	struct fetch_ctx *c = s->cont_ctx;
	struct store_read *r = NULL;
	struct timeval tv;
	const void *data = NULL;
	size_t size = 0;
	const char *err;
	int rc = -1;

	(void)fd;
	(void)what;
	if (c == NULL || c->pin == NULL || s->closing)
		return;
	if (store_read_begin(s->server->store, &r, &err) == 0) {
		rc = store_msg_body(r, s->user_id, s->sel->mailbox_id,
		    c->cur_uid, &data, &size, &err);
		if (rc == STORE_NOT_FOUND)
			rc = store_body_get(r, s->user_id, c->body_id, &data,
			    &size, &err);
	}
	if (rc == 0 && size == c->body_size) {
		store_read_end(&c->pin);
		c->pin = r;
		c->body = data;
		tv.tv_sec = s->server->limits.fetch_pin_secs;
		tv.tv_usec = 0;
		evtimer_add(c->pin_ev, &tv);
		return;
	}
	store_read_end(&r);
	log_warn("imap session=%u event=fetch_body_gone uid=%u "
	    "sent=%llu", s->id, c->cur_uid, (unsigned long long)c->done);
	fetch_unpin(c);
	imap_session_close(s);
}

/* Keeps snapshot *rp as the pin of the message just rendered. */
static void
fetch_pin(struct imap_session *s, struct fetch_ctx *c, struct store_read **rp)
{
	struct timeval tv;

	c->pin = *rp;
	*rp = NULL;
	if (c->pin_ev == NULL)
		c->pin_ev = evtimer_new(s->server->base, pin_timer_cb, s);
	tv.tv_sec = s->server->limits.fetch_pin_secs;
	tv.tv_usec = 0;
	evtimer_add(c->pin_ev, &tv);
}

/* A snapshot for rendering and the mailbox's keywords in it (all of
 * them: any the client was not told of are announced first). */
static int
round_begin(struct imap_session *s, struct store_read **rp,
    const char **kw, size_t *kwn_r)
{
	const char *err;

	*kwn_r = 0;
	if (store_read_begin(s->server->store, rp, &err) != 0)
		return -1;
	if (store_mailbox_keywords(*rp, s->user_id, s->sel->mailbox_id, kw,
	    kwn_r, &err) != 0)
		*kwn_r = 0;
	/* keywords newer than the client knows are announced first,
	   never left out of a FETCH */
	imap_session_keywords_seen(s, kw, *kwn_r);
	return 0;
}

/* RFC 2180 4.1: the tagged answer once every message was handled. Data
 * was sent for every message that still existed; a message the view has
 * but another session expunged got none, so the answer is NO
 * [EXPUNGEISSUED] (RFC 5530) -- never OK without the data -- unless the
 * command may announce expunges (UID FETCH) and the EXPUNGE / VANISHED
 * of each one now precedes the OK. */
static void
fetch_finish(struct imap_session *s, struct fetch_ctx *c)
{
	bool told = true;

	if (c->tag == NULL) {
		/* NOTIFY's: nothing to answer; a message gone meanwhile
		   is announced by the view as usual */
		if (c->resume_idle && s->io == IMAP_IO_CONTINUE) {
			s->io = IMAP_IO_IDLE;
			if (!s->closing && !s->read_paused)
				bufferevent_enable(s->bev, EV_READ);
		}
		return;
	}
	if (c->unknown_cte) {
		imap_session_tagged(s, c->tag, "NO", "[UNKNOWN-CTE] A part's "
		    "Content-Transfer-Encoding cannot be decoded");
		return;
	}
	if (!imap_seqset_is_empty(&c->gone) && s->cmd_allows_expunge) {
		/* the snapshot may be ahead of the events the loop has seen:
		   let them arrive before telling the client */
		store_writer_catch_up(s->server->store);
		imap_session_send_updates(s, true);
		if (s->sel == NULL || s->closing)
			return;
		for (size_t i = 0; i < c->gone.count && told; i++)
			for (uint64_t u = c->gone.ranges[i].lo;
			    u <= c->gone.ranges[i].hi && told; u++)
				told = imap_selected_seq(s->sel,
				    (uint32_t)u) == 0;
	} else if (!imap_seqset_is_empty(&c->gone)) {
		told = false;
	}
	if (told)
		imap_session_tagged(s, c->tag, "OK", "FETCH completed");
	else
		imap_session_tagged(s, c->tag, "NO", "[EXPUNGEISSUED] Some of "
		    "the requested messages no longer exist");
}

/* One round: as much as fits the output. true when the FETCH is done. */
static bool
fetch_step(struct imap_session *s)
{
	struct fetch_ctx *c = s->cont_ctx;
	struct store_read *r = NULL;
	const char *err;
	const char *kw[STORE_KEYWORDS_MAX];
	size_t kwn = 0;
	struct strbuf sb = STRBUF_INIT;
	bool finished = false;
	struct store_msg *batch = NULL;
	size_t bn = 0, bi = 0, batch_end = c->pos;

	if (s->sel == NULL) {
		/* cannot happen: no command runs while we stream */
		return true;
	}
	/* A keyword created while this FETCH was paused: announce it
	 * between two messages (never inside one's literal). The FLAGS of
	 * this round show only announced keywords; a message that got a
	 * keyword not announced yet is reported again, after the FLAGS,
	 * by the flag updates that follow the FETCH. */
	if (!c->in_msg)
		imap_session_send_keyword_updates(s);
	for (;;) {
		if (c->in_msg) {
			imap_session_write_sb(s, &sb);
			if (!stream_bigs(s, c))
				break;
			fetch_unpin(c);
			continue;
		}
		if (c->pos >= c->count) {
			finished = true;
			break;
		}
		if (sb.len >= IMAP_FETCH_CHUNK)
			imap_session_write_sb(s, &sb);
		if (imap_session_output_full(s))
			break;
		if (r == NULL && round_begin(s, &r, kw, &kwn) != 0) {
			free(batch);
			imap_session_write_sb(s, &sb);
			strbuf_free(&sb);
			if (c->tag != NULL)
				imap_session_tagged(s, c->tag, "NO",
				    "[SERVERBUG] FETCH failed");
			else
				fetch_finish(s, c);
			return true;
		}
		if (c->pos >= batch_end) {
			/* records of the next messages in one cursor walk
			 * instead of a lookup per message */
			size_t k = c->count - c->pos, nr = 0;
			struct store_uid_range *rg;

			if (k > IMAP_FETCH_BATCH)
				k = IMAP_FETCH_BATCH;
			rg = xreallocarray(NULL, k, sizeof(*rg));
			for (size_t i = c->pos; i < c->pos + k; i++) {
				if (nr > 0 && rg[nr - 1].last + 1 == c->uids[i])
					rg[nr - 1].last = c->uids[i];
				else {
					rg[nr].first = rg[nr].last = c->uids[i];
					nr++;
				}
			}
			free(batch);
			batch = NULL;
			bn = 0;
			bi = 0;
			if (store_msg_list(r, s->user_id, s->sel->mailbox_id, rg,
			    nr, &batch, &bn, &err) != 0)
				bn = 0;
			free(rg);
			batch_end = c->pos + k;
		}
		while (bi < bn && batch[bi].uid < c->uids[c->pos])
			bi++;
		if (bi < bn && batch[bi].uid == c->uids[c->pos]) {
			if ((!c->has_changedsince ||
			    batch[bi].modseq > c->changedsince) &&
			    !render_message(s, c, r, &batch[bi], kw, kwn, &sb))
				imap_seqset_add(&c->gone, c->uids[c->pos]);
		} else if (imap_selected_seq(s->sel, c->uids[c->pos]) != 0) {
			/* in the view, gone from the store (RFC 2180 4.1) */
			imap_seqset_add(&c->gone, c->uids[c->pos]);
		}
		c->pos++;
		if (c->unknown_cte) {
			finished = true;
			break;
		}
		if (c->in_msg) {
			/* its literals stream from this snapshot; the
			 * next messages get a new one */
			fetch_pin(s, c, &r);
		}
	}
	free(batch);
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	store_read_end(&r);
	if (finished)
		fetch_finish(s, c);
	return finished;
}

/* The FETCH modifier list "(CHANGEDSINCE n)" (RFC 7162 3.1.4). */
static int
parse_fetch_modifiers(struct fetch_ctx *c, const struct imap_arg *arg,
    const char **error_r)
{
	const struct imap_arg *l;
	size_t n;

	if (!imap_arg_get_list(arg, &l, &n) || n == 0) {
		*error_r = "Invalid FETCH modifiers";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (imap_arg_atom_equals(&l[i], "CHANGEDSINCE") && i + 1 < n &&
		    !c->has_changedsince &&
		    imap_arg_get_number64(&l[i + 1], &c->changedsince)) {
			c->has_changedsince = true;
			i++;
			continue;
		}
		if (imap_arg_atom_equals(&l[i], "VANISHED") && !c->vanished) {
			c->vanished = true;
			continue;
		}
		*error_r = "Unknown or invalid FETCH modifier";
		return -1;
	}
	return 0;
}

/* FETCH (CHANGEDSINCE n): keeps only the UIDs of c->uids whose MODSEQ is
 * above n, taken from store_changes_since() in one pass over the records
 * instead of listing and rendering-checking every message of the set (a
 * resync of 100,000 messages with 1,000 changed). The streaming loop still
 * checks each MODSEQ. 0, or -1 when the store fails. */
static int
fetch_keep_changed(struct imap_session *s, struct fetch_ctx *c)
{
	struct store_read *r = NULL;
	struct store_changes ch;
	const char *err;
	size_t n = 0;

	if (store_read_begin(s->server->store, &r, &err) != 0)
		return -1;
	if (store_changes_since(r, s->user_id, s->sel->mailbox_id,
	    c->changedsince, &ch, &err) != 0) {
		store_read_end(&r);
		return -1;
	}
	store_read_end(&r);
	for (size_t i = 0; i < c->count; i++) {
		size_t lo = 0, hi = ch.changed_count;
		bool vanished = false;

		/* an expunge is a change too: kept, so that the streaming
		 * loop finds it gone (RFC 2180 4.1) */
		for (size_t v = 0; v < ch.vanished_count && !vanished; v++)
			vanished = c->uids[i] >= ch.vanished[v].first &&
			    c->uids[i] <= ch.vanished[v].last;
		if (vanished) {
			c->uids[n++] = c->uids[i];
			continue;
		}

		/* ch.changed is in UID order */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (ch.changed[mid].uid < c->uids[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < ch.changed_count && ch.changed[lo].uid == c->uids[i])
			c->uids[n++] = c->uids[i];
	}
	c->count = n;
	store_changes_free(&ch);
	return 0;
}

/* "* VANISHED (EARLIER)" for the UIDs of the set argument that were
 * expunged after modseq since (UID FETCH ... (CHANGEDSINCE n VANISHED)). */
static int
fetch_vanished(struct imap_session *s, const struct imap_arg *set_arg,
    uint64_t since)
{
	struct imap_seqset_spec spec;
	struct imap_seqset set;
	struct store_changes ch;
	struct store_read *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	const char *str, *err;
	int ret = -1;

	memset(&spec, 0, sizeof(spec));
	imap_seqset_init(&set);
	/* the caller parsed the same argument successfully */
	if (!imap_arg_get_atom(set_arg, &str) ||
	    imap_seqset_parse(str, strlen(str), &spec, &err) != 0)
		goto out;
	if (store_read_begin(s->server->store, &r, &err) != 0)
		goto out;
	if (store_changes_since(r, s->user_id, s->sel->mailbox_id, since, &ch,
	    &err) != 0) {
		store_read_end(&r);
		goto out;
	}
	store_read_end(&r);
	/* vanished UIDs are below UIDNEXT: '*' reaches the view's top */
	imap_seqset_resolve(&spec, s->sel->max_uid, &set);
	imap_format_vanished_earlier(&sb, ch.vanished, ch.vanished_count,
	    &set);
	store_changes_free(&ch);
	imap_session_write_sb(s, &sb);
	ret = 0;
out:
	strbuf_free(&sb);
	imap_seqset_free(&set);
	imap_seqset_spec_free(&spec);
	return ret;
}

static bool
att_is_body(const struct imap_fetch_att *a)
{
	return a->type == IMAP_FETCH_BODY_SECTION ||
	    a->type == IMAP_FETCH_RFC822 || a->type == IMAP_FETCH_RFC822_HEADER ||
	    a->type == IMAP_FETCH_RFC822_TEXT;
}

/* After the \Seen update (if any): CHANGEDSINCE's filter, then the
 * responses, streamed as the client drains its output. */
static void
fetch_start(struct imap_session *s, const char *tag, struct fetch_ctx *c)
{
	/* after the \Seen update: what it changed is reported */
	if (c->has_changedsince && c->count > 0 &&
	    fetch_keep_changed(s, c) != 0) {
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] FETCH failed");
		fetch_ctx_free(c);
		return;
	}
	c->tag = xstrdup(tag);
	s->cont_ctx = c;
	if (fetch_step(s)) {
		s->cont_ctx = NULL;
		fetch_ctx_free(c);
		return;
	}
	imap_session_continue_with(s, fetch_step, c, fetch_ctx_free);
}

/* A FETCH that sets \Seen (BODY[], RFC822 ...) on its way through the
 * writer; the FETCH context waits with it. */
struct seen_job {
	struct imap_job job;
	struct fetch_ctx *c;
	uint32_t mailbox_id;
	struct store_uid_range *ranges;
	size_t nranges;
	struct store_flag_result res;
};

static void
seen_job_free(struct imap_job *job)
{
	struct seen_job *j = (struct seen_job *)job;

	fetch_ctx_free(j->c);
	free(j->ranges);
	store_flag_result_free(&j->res);
	free(j);
}

static int
seen_job_apply(struct store *store, void *ctx, const char **error_r)
{
	struct seen_job *j = ctx;

	return store_flags_update(store, j->job.user_id, j->mailbox_id,
	    j->ranges, j->nranges, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0,
	    0, &j->res, error_r);
}

static void
seen_job_finish(struct imap_session *s, const char *tag,
    struct imap_job *job)
{
	struct seen_job *j = (struct seen_job *)job;
	struct fetch_ctx *c = j->c;

	if (job->rc == 0) {
		for (size_t i = 0; i < j->res.changed_count; i++)
			imap_seqset_add(&c->seen, j->res.changed[i].uid);
	} else {
		log_warn("imap session=%u event=set_seen_failed "
		    "error=\"%s\"", s->id, job->error);
	}
	j->c = NULL;	/* fetch_start owns it now */
	fetch_start(s, tag, c);
}

/* What the items need: structure, body; how many stream; \Seen. */
static void
fetch_classify(struct fetch_ctx *c, bool *sets_seen_r, bool *has_uid_r,
    size_t *nbody_r)
{
	for (size_t i = 0; i < c->natts; i++) {
		const struct imap_fetch_att *a = &c->atts[i];

		switch (a->type) {
		case IMAP_FETCH_ENVELOPE:
		case IMAP_FETCH_BODY:
		case IMAP_FETCH_BODYSTRUCTURE:
			c->need_struct = true;
			break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			/* RFC 3516: decoded from the part's encoding */
			(*nbody_r)++;
			c->need_body = true;
			if (a->section.depth > 0)
				c->need_struct = true;
			if (a->type == IMAP_FETCH_BINARY && !a->peek)
				*sets_seen_r = true;
			break;
		case IMAP_FETCH_UID:
			*has_uid_r = true;
			break;
		case IMAP_FETCH_MODSEQ:
			c->has_modseq = true;
			break;
		case IMAP_FETCH_PREVIEW:
			c->need_struct = true;
			c->need_body = true;
			break;
		default:
			break;
		}
		if (att_is_body(a)) {
			(*nbody_r)++;
			c->need_body = true;
			if (a->type == IMAP_FETCH_RFC822_HEADER ||
			    a->type == IMAP_FETCH_RFC822_TEXT ||
			    (a->type == IMAP_FETCH_BODY_SECTION &&
			    (a->section.depth > 0 ||
			    a->section.kind != IMAP_SECTION_WHOLE)))
				c->need_struct = true;
			if (!a->peek && a->type != IMAP_FETCH_RFC822_HEADER)
				*sets_seen_r = true;
		}
	}
}

void
imap_cmd_fetch(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct fetch_ctx *c;
	struct imap_msgset set;
	const char *err;
	bool sets_seen = false, has_uid = false;
	size_t nbody = 0;

	if (argc < 2 || argc > 3) {
		imap_session_tagged(s, tag, "BAD", "FETCH needs a message set "
		    "and items");
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->a = arena_new(IMAP_FETCH_ARENA_CHUNK);
	imap_seqset_init(&c->seen);
	imap_seqset_init(&c->gone);
	if (argc == 3 && parse_fetch_modifiers(c, &args[2], &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "%s", err);
		fetch_ctx_free(c);
		return;
	}
	if (c->vanished && (!uid || !c->has_changedsince ||
	    !s->enabled_qresync)) {
		/* RFC 7162 3.2.6: only UID FETCH, with CHANGEDSINCE, after
		 * ENABLE QRESYNC */
		imap_session_tagged(s, tag, "BAD", "VANISHED needs UID FETCH, "
		    "CHANGEDSINCE and ENABLE QRESYNC");
		fetch_ctx_free(c);
		return;
	}
	if (imap_msgset_parse_in(s, c->a, &args[0], uid, &set, &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "%s", err);
		fetch_ctx_free(c);
		return;
	}
	if (c->vanished && fetch_vanished(s, &args[0], c->changedsince) != 0) {
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] FETCH failed");
		fetch_ctx_free(c);
		return;
	}
	if (imap_parse_fetch_atts(&args[1], c->a, &c->atts, &c->natts,
	    &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "Invalid FETCH item: %s", err);
		fetch_ctx_free(c);
		return;
	}
	fetch_classify(c, &sets_seen, &has_uid, &nbody);
	if (c->has_changedsince && !c->has_modseq) {
		/* CHANGEDSINCE implies the MODSEQ item (RFC 7162 3.1.4) */
		struct imap_fetch_att *na = arena_alloc(c->a,
		    (c->natts + 1) * sizeof(*na));

		memcpy(na, c->atts, c->natts * sizeof(*na));
		memset(&na[c->natts], 0, sizeof(*na));
		na[c->natts].type = IMAP_FETCH_MODSEQ;
		na[c->natts].response_name = "MODSEQ";
		c->atts = na;
		c->natts++;
		c->has_modseq = true;
	}
	if (c->has_modseq)
		imap_session_enable_condstore(s);
	c->condstore = s->enabled_condstore;
	c->add_uid = (uid || c->condstore) && !has_uid &&
	    (uid || c->has_modseq || c->has_changedsince);
	c->uid = uid;
	c->bigs = arena_alloc(c->a, (nbody + 1) * sizeof(*c->bigs));
	c->count = set.count;
	c->uids = arena_alloc(c->a, (set.count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < set.count; i++)
		c->uids[i] = s->sel->uids[set.idx[i]];
	if (sets_seen && !s->sel->readonly && set.count > 0) {
		/* \Seen first, durably, then the data (whose FLAGS show
		   it): the rest of the FETCH runs when the writer is done */
		struct seen_job *j = xcalloc(1, sizeof(*j));
		struct store_uid_range *ranges;

		imap_msgset_ranges(s, &set, &ranges, &j->nranges);
		j->ranges = xmemdup(ranges, j->nranges * sizeof(*ranges));
		j->mailbox_id = s->sel->mailbox_id;
		j->c = c;
		j->job.free = seen_job_free;
		j->job.finish = seen_job_finish;
		imap_session_submit_write(s, tag, &j->job, 0, seen_job_apply);
		return;
	}
	fetch_start(s, tag, c);
}

void
imap_fetch_notify(struct imap_session *s, const uint32_t *uids, size_t n,
    const struct imap_fetch_att *atts, size_t natts)
{
	struct fetch_ctx *c = xcalloc(1, sizeof(*c));
	bool sets_seen = false, has_uid = false;
	size_t nbody = 0;

	c->a = arena_new(IMAP_FETCH_ARENA_CHUNK);
	imap_seqset_init(&c->seen);
	imap_seqset_init(&c->gone);
	/* the array is copied; what its items point to is the caller's
	   (the NOTIFY filters, kept while this may stream) */
	c->atts = arena_alloc(c->a, natts * sizeof(*c->atts));
	memcpy(c->atts, atts, natts * sizeof(*c->atts));
	c->natts = natts;
	/* as .PEEK: a notification does not mark mail read */
	fetch_classify(c, &sets_seen, &has_uid, &nbody);
	if (c->has_modseq)
		imap_session_enable_condstore(s);
	c->condstore = s->enabled_condstore;
	c->add_uid = !has_uid;
	c->uid = true;
	c->bigs = arena_alloc(c->a, (nbody + 1) * sizeof(*c->bigs));
	c->uids = arena_alloc(c->a, (n + 1) * sizeof(uint32_t));
	memcpy(c->uids, uids, n * sizeof(uint32_t));
	c->count = n;
	c->resume_idle = s->io == IMAP_IO_IDLE;
	s->cont_ctx = c;
	if (fetch_step(s)) {
		s->cont_ctx = NULL;
		fetch_ctx_free(c);
		return;
	}
	imap_session_continue_with(s, fetch_step, c, fetch_ctx_free);
}
