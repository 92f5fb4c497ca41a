/* imap-search-match — SEARCH key trees; see imap-search-match.h. */
#include "imap-search-match.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-format.h"
#include "imap-parse.h"
#include "strnum.h"
#include "xmalloc.h"

struct search_ctx {
	struct arena *arena;
	struct imap_search_program *prog;
	const struct imap_arg *args;
	size_t count;
	size_t pos;
	enum imap_search_error code;
	const char *error;
};

static struct imap_search_key *
new_key(struct search_ctx *ctx, enum imap_search_key_type type)
{
	struct imap_search_key *k = arena_zalloc(ctx->arena, sizeof(*k));

	k->type = type;
	k->seqset.star_lo = UINT32_MAX;
	ctx->prog->key_count++;
	return k;
}

static int
fail(struct search_ctx *ctx, const char *error)
{
	ctx->code = IMAP_SEARCH_ERR_SYNTAX;
	ctx->error = error;
	return -1;
}

static const struct imap_arg *
next_arg(struct search_ctx *ctx)
{
	if (ctx->pos >= ctx->count)
		return NULL;
	return &ctx->args[ctx->pos++];
}

/* An astring argument, copied into the arena. */
static int
arg_string(struct search_ctx *ctx, const char **str_r, size_t *len_r)
{
	const struct imap_arg *a = next_arg(ctx);
	const char *s;
	size_t len;

	if (!imap_arg_get_astring(a, &s, &len))
		return fail(ctx, "Missing or invalid string argument");
	*str_r = arena_strndup(ctx->arena, s, len);
	*len_r = len;
	return 0;
}

static int
arg_date(struct search_ctx *ctx, int32_t *days_r)
{
	const struct imap_arg *a = next_arg(ctx);

	if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_QUOTED) ||
	    imap_parse_date(a->str, a->len, days_r) < 0)
		return fail(ctx, "Invalid date (expected d-Mon-yyyy)");
	return 0;
}

static int
parse_seqset(struct search_ctx *ctx, const struct imap_arg *a,
    struct imap_search_key *k)
{
	const char *error;
	struct imap_seqset *f = &k->seqset.fixed;
	struct imap_seq_range *r = NULL;

	if (a == NULL || a->type != IMAP_ARG_ATOM)
		return fail(ctx, "Missing sequence set");
	if (imap_seqset_parse(a->str, a->len, &k->seqset, &error) < 0)
		return fail(ctx, error);
	/* Move the ranges into the arena: the program needs no free. */
	if (f->count > 0) {
		r = arena_alloc(ctx->arena, f->count * sizeof(*r));
		memcpy(r, f->ranges, f->count * sizeof(*r));
	}
	free(f->ranges);
	f->ranges = r;
	f->cap = f->count;
	return 0;
}

static const struct {
	const char *name;
	enum imap_search_key_type type;
	unsigned int flags;
} flag_keys[] = {
	{ "ALL", IMAP_SEARCH_ALL, 0 },
	{ "ANSWERED", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_ANSWERED },
	{ "DELETED", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_DELETED },
	{ "DRAFT", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_DRAFT },
	{ "FLAGGED", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_FLAGGED },
	{ "RECENT", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_RECENT },
	{ "SEEN", IMAP_SEARCH_FLAGS_SET, IMAP_FLAG_SEEN },
	{ "UNANSWERED", IMAP_SEARCH_FLAGS_UNSET, IMAP_FLAG_ANSWERED },
	{ "UNDELETED", IMAP_SEARCH_FLAGS_UNSET, IMAP_FLAG_DELETED },
	{ "UNDRAFT", IMAP_SEARCH_FLAGS_UNSET, IMAP_FLAG_DRAFT },
	{ "UNFLAGGED", IMAP_SEARCH_FLAGS_UNSET, IMAP_FLAG_FLAGGED },
	{ "UNSEEN", IMAP_SEARCH_FLAGS_UNSET, IMAP_FLAG_SEEN },
	{ "NEW", IMAP_SEARCH_NEW, 0 },
	{ "OLD", IMAP_SEARCH_OLD, 0 },
};

static const struct {
	const char *name;
	const char *header;
	bool address;	/* matched against the parsed addresses */
} header_keys[] = {
	{ "BCC", "Bcc", true }, { "CC", "Cc", true }, { "FROM", "From", true },
	{ "SUBJECT", "Subject", false }, { "TO", "To", true },
};

static const struct {
	const char *name;
	enum imap_search_key_type type;
	bool sent;
} date_keys[] = {
	{ "BEFORE", IMAP_SEARCH_BEFORE, false },
	{ "ON", IMAP_SEARCH_ON, false },
	{ "SINCE", IMAP_SEARCH_SINCE, false },
	{ "SENTBEFORE", IMAP_SEARCH_SENTBEFORE, true },
	{ "SENTON", IMAP_SEARCH_SENTON, true },
	{ "SENTSINCE", IMAP_SEARCH_SENTSINCE, true },
};

static int parse_key(struct search_ctx *ctx, unsigned int depth,
    struct imap_search_key **key_r);

/* Parses keys until the arguments run out, as children of parent. */
static int
parse_key_list(struct search_ctx *ctx, unsigned int depth,
    struct imap_search_key *parent)
{
	struct imap_search_key **tail = &parent->first_child;

	if (ctx->pos >= ctx->count)
		return fail(ctx, "Missing search key");
	while (ctx->pos < ctx->count) {
		struct imap_search_key *k;
		if (parse_key(ctx, depth, &k) < 0)
			return -1;
		*tail = k;
		tail = &k->next;
	}
	return 0;
}

/* The prefix of an entry-flag-name (RFC 7162 3.1.5, 7). */
#define MODSEQ_ENTRY_PREFIX "/flags/"

/*
 * MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 3.1.5).
 * The entry name is checked (a quoted "/flags/<flag>", flag a system flag
 * but \Recent, or a keyword) and so is the type (priv, shared, all), but
 * neither changes the match: the store keeps one MODSEQ per message, not
 * one per flag, and RFC 7162 3.1.5 says such a server ignores them; the
 * message's MODSEQ is compared (Dovecot 2.3 answers the same way).
 */
static int
parse_modseq(struct search_ctx *ctx, struct imap_search_key *k)
{
	const struct imap_arg *a = next_arg(ctx);
	uint64_t n;

	if (a != NULL && a->type == IMAP_ARG_QUOTED) {
		const struct imap_arg *t = next_arg(ctx);
		size_t plen = strlen(MODSEQ_ENTRY_PREFIX);
		unsigned int flag;
		bool is_kw;
		const char *err;

		if (a->len <= plen || strncasecmp(a->str, MODSEQ_ENTRY_PREFIX,
		    plen) != 0 || imap_flag_parse(a->str + plen, a->len - plen,
		    &flag, &is_kw, &err) != 0)
			return fail(ctx, "Invalid MODSEQ entry name");
		if (!imap_arg_atom_equals(t, "priv") &&
		    !imap_arg_atom_equals(t, "shared") &&
		    !imap_arg_atom_equals(t, "all"))
			return fail(ctx, "Invalid MODSEQ entry type");
		a = next_arg(ctx);
	}
	if (!imap_arg_get_number64(a, &n))
		return fail(ctx, "Invalid MODSEQ value");
	k->number = n;
	ctx->prog->uses_modseq = true;
	return 0;
}

static int
parse_key(struct search_ctx *ctx, unsigned int depth,
    struct imap_search_key **key_r)
{
	const struct imap_arg *a = next_arg(ctx);
	struct imap_search_key *k;
	const char *name;
	size_t len;

	if (depth >= IMAP_SEARCH_MAX_DEPTH)
		return fail(ctx, "Search keys nested too deeply");
	if (ctx->prog->key_count >= IMAP_SEARCH_MAX_KEYS)
		return fail(ctx, "Too many search keys");
	if (a == NULL)
		return fail(ctx, "Missing search key");

	if (a->type == IMAP_ARG_LIST) {
		struct search_ctx sub = *ctx;
		k = new_key(ctx, IMAP_SEARCH_AND);
		if (a->list_count == 0)
			return fail(ctx, "Empty search key list");
		sub.args = a->list;
		sub.count = a->list_count;
		sub.pos = 0;
		if (parse_key_list(&sub, depth + 1, k) < 0) {
			ctx->code = sub.code;
			ctx->error = sub.error;
			return -1;
		}
		*key_r = k;
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM)
		return fail(ctx, "Invalid search key");
	name = a->str;
	len = a->len;

	for (size_t i = 0; i < N_ELEMENTS(flag_keys); i++) {
		if (str_ieq(name, len, flag_keys[i].name)) {
			k = new_key(ctx, flag_keys[i].type);
			k->flags = flag_keys[i].flags;
			*key_r = k;
			return 0;
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(header_keys); i++) {
		if (str_ieq(name, len, header_keys[i].name)) {
			k = new_key(ctx, IMAP_SEARCH_HEADER);
			k->header = header_keys[i].header;
			k->address = header_keys[i].address;
			ctx->prog->needs_headers = true;
			*key_r = k;
			return arg_string(ctx, &k->str, &k->str_len);
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(date_keys); i++) {
		if (str_ieq(name, len, date_keys[i].name)) {
			k = new_key(ctx, date_keys[i].type);
			if (date_keys[i].sent)
				ctx->prog->needs_headers = true;
			*key_r = k;
			return arg_date(ctx, &k->days);
		}
	}
	if (str_ieq(name, len, "HEADER")) {
		size_t hlen;
		k = new_key(ctx, IMAP_SEARCH_HEADER);
		ctx->prog->needs_headers = true;
		*key_r = k;
		if (arg_string(ctx, &k->header, &hlen) < 0)
			return -1;
		if (hlen == 0 || memchr(k->header, ':', hlen) != NULL ||
		    strlen(k->header) != hlen)
			return fail(ctx, "Invalid header name");
		return arg_string(ctx, &k->str, &k->str_len);
	}
	if (str_ieq(name, len, "BODY") || str_ieq(name, len, "TEXT")) {
		k = new_key(ctx, str_ieq(name, len, "BODY") ?
		    IMAP_SEARCH_BODY : IMAP_SEARCH_TEXT);
		ctx->prog->needs_body = true;
		*key_r = k;
		return arg_string(ctx, &k->str, &k->str_len);
	}
	if (str_ieq(name, len, "KEYWORD") || str_ieq(name, len, "UNKEYWORD")) {
		const struct imap_arg *kw;
		const char *kws;
		unsigned int flag;
		bool is_kw;
		const char *error;
		k = new_key(ctx, str_ieq(name, len, "KEYWORD") ?
		    IMAP_SEARCH_KEYWORD : IMAP_SEARCH_UNKEYWORD);
		*key_r = k;
		kw = next_arg(ctx);
		if (!imap_arg_get_flag_atom(kw, &kws) ||
		    imap_flag_parse(kws, kw->len, &flag, &is_kw, &error) < 0 ||
		    !is_kw)
			return fail(ctx, "Invalid keyword");
		k->str = arena_strndup(ctx->arena, kws, kw->len);
		k->str_len = kw->len;
		return 0;
	}
	if (str_ieq(name, len, "LARGER") || str_ieq(name, len, "SMALLER")) {
		uint32_t n;
		k = new_key(ctx, str_ieq(name, len, "LARGER") ?
		    IMAP_SEARCH_LARGER : IMAP_SEARCH_SMALLER);
		*key_r = k;
		if (!imap_arg_get_number(next_arg(ctx), &n))
			return fail(ctx, "Invalid size number");
		k->number = n;
		return 0;
	}
	if (str_ieq(name, len, "EMAILID") || str_ieq(name, len, "THREADID")) {
		/* RFC 8474 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-");
		 * ours are "M" (EMAILID) or "T" (THREADID) and 16 hex
		 * digits */
		const char *id;
		bool email = str_ieq(name, len, "EMAILID");
		char *end;

		k = new_key(ctx, email ? IMAP_SEARCH_EMAILID :
		    IMAP_SEARCH_THREADID);
		*key_r = k;
		if (!imap_arg_get_atom(next_arg(ctx), &id) || *id == '\0' ||
		    strlen(id) > 255 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(id))
			return fail(ctx, "Invalid object id");
		/* an id we never hand out matches nothing */
		k->number = 0;
		if (id[0] == (email ? 'M' : 'T') && strlen(id) == 17 &&
		    strspn(id + 1, "0123456789abcdef") == 16) {
			k->number = strtoull(id + 1, &end, 16);
			if (*end != '\0')
				k->number = 0;
		}
		return 0;
	}
	if (str_ieq(name, len, "UID")) {
		k = new_key(ctx, IMAP_SEARCH_UID);
		*key_r = k;
		return parse_seqset(ctx, next_arg(ctx), k);
	}
	if (str_ieq(name, len, "NOT")) {
		k = new_key(ctx, IMAP_SEARCH_NOT);
		*key_r = k;
		return parse_key(ctx, depth + 1, &k->first_child);
	}
	if (str_ieq(name, len, "OR")) {
		k = new_key(ctx, IMAP_SEARCH_OR);
		*key_r = k;
		if (parse_key(ctx, depth + 1, &k->first_child) < 0)
			return -1;
		return parse_key(ctx, depth + 1, &k->first_child->next);
	}
	if (str_ieq(name, len, "MODSEQ")) {
		k = new_key(ctx, IMAP_SEARCH_MODSEQ);
		*key_r = k;
		return parse_modseq(ctx, k);
	}
	if (len > 0 && ((name[0] >= '0' && name[0] <= '9') || name[0] == '*')) {
		k = new_key(ctx, IMAP_SEARCH_SEQSET);
		*key_r = k;
		return parse_seqset(ctx, a, k);
	}
	return fail(ctx, "Unknown search key");
}

int
imap_search_parse_return(const struct imap_arg *list, unsigned int *opts_r,
    const char **error_r)
{
	unsigned int opts = 0;

	if (list == NULL || list->type != IMAP_ARG_LIST) {
		*error_r = "RETURN needs a list of options";
		return -1;
	}
	for (size_t i = 0; i < list->list_count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_equals(a, "MIN"))
			opts |= IMAP_SEARCH_RETURN_MIN;
		else if (imap_arg_atom_equals(a, "MAX"))
			opts |= IMAP_SEARCH_RETURN_MAX;
		else if (imap_arg_atom_equals(a, "COUNT"))
			opts |= IMAP_SEARCH_RETURN_COUNT;
		else if (imap_arg_atom_equals(a, "ALL"))
			opts |= IMAP_SEARCH_RETURN_ALL;
		else if (imap_arg_atom_equals(a, "SAVE"))
			opts |= IMAP_SEARCH_RETURN_SAVE;
		else {
			*error_r = "Unknown RETURN option";
			return -1;
		}
	}
	*opts_r = opts == 0 ? IMAP_SEARCH_RETURN_ALL : opts;
	return 0;
}

int
imap_search_parse(const struct imap_arg *args, size_t count,
    struct arena *arena, struct imap_search_program **prog_r,
    enum imap_search_error *error_code_r, const char **error_r)
{
	struct search_ctx ctx;
	struct imap_search_program *prog;

	memset(&ctx, 0, sizeof(ctx));
	prog = arena_zalloc(arena, sizeof(*prog));
	ctx.arena = arena;
	ctx.prog = prog;
	ctx.args = args;
	ctx.count = count;
	*prog_r = NULL;
	*error_code_r = IMAP_SEARCH_ERR_NONE;

	if (ctx.pos < count && imap_arg_atom_equals(&args[ctx.pos], "RETURN")) {
		ctx.pos++;
		if (imap_search_parse_return(next_arg(&ctx), &prog->return_opts,
		    &ctx.error) < 0) {
			ctx.code = IMAP_SEARCH_ERR_SYNTAX;
			goto fail;
		}
		prog->has_return = true;
	}
	if (ctx.pos < count && imap_arg_atom_equals(&args[ctx.pos], "CHARSET")) {
		const char *cs;
		size_t cslen;
		ctx.pos++;
		if (!imap_arg_get_astring(next_arg(&ctx), &cs, &cslen)) {
			fail(&ctx, "Missing charset name");
			goto fail;
		}
		if (!str_ieq(cs, cslen, "UTF-8") &&
		    !str_ieq(cs, cslen, "US-ASCII")) {
			ctx.code = IMAP_SEARCH_ERR_BADCHARSET;
			ctx.error = "Unsupported charset";
			goto fail;
		}
	}
	prog->root = new_key(&ctx, IMAP_SEARCH_AND);
	if (parse_key_list(&ctx, 0, prog->root) < 0)
		goto fail;
	*prog_r = prog;
	return 0;
fail:
	*error_code_r = ctx.code;
	*error_r = ctx.error;
	return -1;
}

/* ---- evaluation ------------------------------------------------------------- */

static int
match_date(const struct imap_search_key *k, int32_t days)
{
	switch (k->type) {
	case IMAP_SEARCH_BEFORE:
	case IMAP_SEARCH_SENTBEFORE:
		return days < k->days;
	case IMAP_SEARCH_ON:
	case IMAP_SEARCH_SENTON:
		return days == k->days;
	default:
		return days >= k->days;
	}
}

static int
match_key(const struct imap_search_key *k,
    const struct imap_search_message *m)
{
	int r;

	switch (k->type) {
	case IMAP_SEARCH_AND:
		for (const struct imap_search_key *c = k->first_child; c != NULL;
		    c = c->next) {
			r = match_key(c, m);
			if (r <= 0)
				return r;
		}
		return 1;
	case IMAP_SEARCH_OR:
		r = match_key(k->first_child, m);
		if (r != 0)
			return r;
		return match_key(k->first_child->next, m);
	case IMAP_SEARCH_NOT:
		r = match_key(k->first_child, m);
		return r < 0 ? r : !r;
	case IMAP_SEARCH_ALL:
		return 1;
	case IMAP_SEARCH_FLAGS_SET:
		return (m->flags & k->flags) == k->flags;
	case IMAP_SEARCH_FLAGS_UNSET:
		return (m->flags & k->flags) == 0;
	case IMAP_SEARCH_NEW:
		return (m->flags & IMAP_FLAG_RECENT) != 0 &&
		    (m->flags & IMAP_FLAG_SEEN) == 0;
	case IMAP_SEARCH_OLD:
		return (m->flags & IMAP_FLAG_RECENT) == 0;
	case IMAP_SEARCH_KEYWORD:
	case IMAP_SEARCH_UNKEYWORD:
		r = m->has_keyword != NULL ? m->has_keyword(m->ctx, k->str) : 0;
		if (r < 0)
			return r;
		return k->type == IMAP_SEARCH_KEYWORD ? r != 0 : r == 0;
	case IMAP_SEARCH_BEFORE:
	case IMAP_SEARCH_ON:
	case IMAP_SEARCH_SINCE:
		return match_date(k, imap_date_days(m->internaldate,
		    m->internaldate_tz));
	case IMAP_SEARCH_SENTBEFORE:
	case IMAP_SEARCH_SENTON:
	case IMAP_SEARCH_SENTSINCE: {
		int64_t t;
		int tz;
		if (m->sent_date == NULL)
			return 0;
		r = m->sent_date(m->ctx, &t, &tz);
		if (r <= 0)
			return r;
		return match_date(k, imap_date_days(t, tz));
	}
	case IMAP_SEARCH_LARGER:
		return m->size > k->number;
	case IMAP_SEARCH_SMALLER:
		return m->size < k->number;
	case IMAP_SEARCH_HEADER:
		if (k->address && m->address_contains != NULL) {
			r = m->address_contains(m->ctx, k->header, k->str,
			    k->str_len);
			return r < 0 ? -1 : r != 0;
		}
		if (m->header_contains == NULL)
			return -1;
		r = m->header_contains(m->ctx, k->header, k->str, k->str_len);
		return r < 0 ? -1 : r != 0;
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
		if (m->body_contains == NULL)
			return -1;
		r = m->body_contains(m->ctx, k->type == IMAP_SEARCH_TEXT,
		    k->str, k->str_len);
		return r < 0 ? -1 : r != 0;
	case IMAP_SEARCH_SEQSET:
		return imap_seqset_spec_contains(&k->seqset, m->max_seq, m->seq);
	case IMAP_SEARCH_UID:
		return imap_seqset_spec_contains(&k->seqset, m->max_uid, m->uid);
	case IMAP_SEARCH_MODSEQ:
		return m->modseq >= k->number;
	case IMAP_SEARCH_EMAILID:
		return k->number != 0 && m->email_id == k->number;
	case IMAP_SEARCH_THREADID: {
		uint64_t tid;

		if (k->number == 0 || m->thread_id == NULL)
			return 0;
		if (m->thread_id(m->ctx, &tid) < 0)
			return -1;
		return tid == k->number;
	}
	}
	return -1;
}

int
imap_search_match(const struct imap_search_program *prog,
    const struct imap_search_message *msg)
{
	return match_key(prog->root, msg);
}

/* ---- prefiltering ---- */

#define MAY_TRUE 1u
#define MAY_FALSE 2u

static unsigned
may_key(const struct imap_search_key *k,
    bool (*absent)(void *ctx, const struct imap_search_key *k), void *ctx)
{
	unsigned m, t, f;

	switch (k->type) {
	case IMAP_SEARCH_AND:
		t = MAY_TRUE;
		f = 0;
		for (const struct imap_search_key *c = k->first_child; c != NULL;
		    c = c->next) {
			m = may_key(c, absent, ctx);
			if ((m & MAY_TRUE) == 0)
				t = 0;
			f |= m & MAY_FALSE;
			if (t == 0)
				return MAY_FALSE;
		}
		return t | f;
	case IMAP_SEARCH_OR:
		m = may_key(k->first_child, absent, ctx);
		t = may_key(k->first_child->next, absent, ctx);
		return (m | t) & MAY_TRUE ? (m & t & MAY_FALSE) | MAY_TRUE :
		    MAY_FALSE;
	case IMAP_SEARCH_NOT:
		m = may_key(k->first_child, absent, ctx);
		return ((m & MAY_TRUE) ? MAY_FALSE : 0) |
		    ((m & MAY_FALSE) ? MAY_TRUE : 0);
	case IMAP_SEARCH_HEADER:
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
		return absent(ctx, k) ? MAY_FALSE : MAY_TRUE | MAY_FALSE;
	default:
		return MAY_TRUE | MAY_FALSE;
	}
}

bool
imap_search_may_match(const struct imap_search_program *prog,
    bool (*absent)(void *ctx, const struct imap_search_key *k), void *ctx)
{
	return (may_key(prog->root, absent, ctx) & MAY_TRUE) != 0;
}
