/* imap-cmd-msg — STORE, COPY, MOVE, SEARCH (and their UID forms). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-fetch.h"
#include "imap-format.h"
#include "imap-msgset.h"
#include "imap-parse.h"
#include "imap-search-match.h"
#include "imap-seqset.h"
#include "imap-session.h"
#include "imap-sync.h"
#include "imap-utf7.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Flags named in one STORE. */
#define IMAP_STORE_FLAGS_MAX (STORE_KEYWORDS_MAX + 8)

static void
msg_store_failed(struct imap_session *s, const char *tag, const char *what,
    const char *err)
{
	switch (store_last_error(s->server->store)) {
	case STORE_ERR_LIMIT:
		imap_session_tagged(s, tag, "NO", "[LIMIT] %s: %s", what,
		    err != NULL ? err : "limit reached");
		break;
	case STORE_ERR_NOSPACE:
		imap_session_tagged(s, tag, "NO", "[OVERQUOTA] %s: the store "
		    "is full", what);
		break;
	case STORE_ERR_INVALID:
		imap_session_tagged(s, tag, "NO", "[CANNOT] %s: %s", what,
		    err != NULL ? err : "not possible");
		break;
	default:
		log_error("imap session=%u event=store_error op=%s error=\"%s\"",
		    s->id, what, err != NULL ? err : "");
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] %s failed",
		    what);
		break;
	}
}

/* ---- STORE ---- */

/* Parses the STORE modifier list "(UNCHANGEDSINCE n)" (RFC 7162 3.1.3). */
static int
parse_store_modifiers(const struct imap_arg *arg, uint64_t *unchangedsince_r,
    bool *have_r, const char **error_r)
{
	const struct imap_arg *l;
	size_t n;

	*have_r = false;
	if (!imap_arg_get_list(arg, &l, &n) || n == 0) {
		*error_r = "Invalid STORE modifiers";
		return -1;
	}
	for (size_t i = 0; i < n; i += 2) {
		if (imap_arg_atom_equals(&l[i], "UNCHANGEDSINCE") && i + 1 < n &&
		    !*have_r &&
		    imap_arg_get_number64(&l[i + 1], unchangedsince_r)) {
			*have_r = true;
			continue;
		}
		*error_r = "Unknown or invalid STORE modifier";
		return -1;
	}
	return 0;
}

static bool
u32_in_sorted(const uint32_t *arr, size_t n, uint32_t v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (arr[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && arr[lo] == v;
}

/* STORE (UNCHANGEDSINCE 0): nothing changes, every existing message of
 * the set is reported in [MODIFIED]. */
static void
store_modseq0_failed(struct imap_session *s, const char *tag, bool uid,
    const struct store_uid_range *ranges, size_t nranges)
{
	struct store_read *r = NULL;
	struct store_msg *msgs = NULL;
	size_t n = 0;
	struct imap_seqset modified;
	struct strbuf sb = STRBUF_INIT;
	const char *err;

	if (store_read_begin(s->server->store, &r, &err) != 0) {
		msg_store_failed(s, tag, "STORE", err);
		return;
	}
	if (store_msg_list(r, s->user_id, s->sel->mailbox_id, ranges, nranges,
	    &msgs, &n, &err) != 0) {
		store_read_end(&r);
		msg_store_failed(s, tag, "STORE", err);
		return;
	}
	store_read_end(&r);
	imap_seqset_init(&modified);
	for (size_t i = 0; i < n; i++) {
		uint32_t v = uid ? msgs[i].uid :
		    imap_selected_seq(s->sel, msgs[i].uid);

		if (v != 0)
			imap_seqset_add(&modified, v);
	}
	free(msgs);
	if (imap_seqset_is_empty(&modified)) {
		imap_session_tagged(s, tag, "OK", "STORE completed");
	} else {
		imap_seqset_format(&modified, &sb);
		imap_session_tagged(s, tag, "OK", "[MODIFIED %s] Conditional "
		    "STORE failed", strbuf_str(&sb));
	}
	strbuf_free(&sb);
	imap_seqset_free(&modified);
}

void
imap_cmd_store(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct imap_msgset set;
	const char *item, *err;
	enum store_flag_op op;
	bool silent = false, conditional = false;
	uint64_t unchangedsince = 0;
	unsigned sys = 0;
	const char *kws[IMAP_STORE_FLAGS_MAX];
	size_t nkw = 0;
	const struct imap_arg *flags;
	size_t nflags;
	struct store_uid_range *ranges;
	size_t nranges;
	struct store_flag_result res;
	struct store_read *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	struct imap_seqset modified;
	const struct imap_arg *set_arg;
	int rc;

	if (argc >= 4 && args[1].type == IMAP_ARG_LIST) {
		if (parse_store_modifiers(&args[1], &unchangedsince,
		    &conditional, &err) != 0) {
			imap_session_tagged(s, tag, "BAD", "%s", err);
			return;
		}
		set_arg = &args[0];
		args += 1;
		argc -= 1;
	} else {
		set_arg = &args[0];
	}
	if (argc < 3 || !imap_arg_get_atom(&args[1], &item)) {
		imap_session_tagged(s, tag, "BAD", "STORE needs a message set, "
		    "an item and flags");
		return;
	}
	if (imap_msgset_parse(s, set_arg, uid, &set, &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	if (strncasecmp(item, "+FLAGS", 6) == 0) {
		op = STORE_FLAGS_ADD;
		item += 6;
	} else if (strncasecmp(item, "-FLAGS", 6) == 0) {
		op = STORE_FLAGS_REMOVE;
		item += 6;
	} else if (strncasecmp(item, "FLAGS", 5) == 0) {
		op = STORE_FLAGS_SET;
		item += 5;
	} else {
		imap_session_tagged(s, tag, "BAD", "Unknown STORE item");
		return;
	}
	if (strcasecmp(item, ".SILENT") == 0)
		silent = true;
	else if (*item != '\0') {
		imap_session_tagged(s, tag, "BAD", "Unknown STORE item");
		return;
	}
	if (argc == 3 && args[2].type == IMAP_ARG_LIST) {
		imap_arg_get_list(&args[2], &flags, &nflags);
	} else {
		flags = &args[2];
		nflags = argc - 2;
	}
	for (size_t i = 0; i < nflags; i++) {
		const char *f;
		unsigned bit;
		bool is_kw;

		if (!imap_arg_get_flag_atom(&flags[i], &f) ||
		    imap_flag_parse(f, strlen(f), &bit, &is_kw, &err) != 0) {
			imap_session_tagged(s, tag, "BAD", "Invalid flag");
			return;
		}
		if (!is_kw)
			sys |= bit;
		else if (nkw < N_ELEMENTS(kws))
			kws[nkw++] = f;
		else {
			imap_session_tagged(s, tag, "NO", "[LIMIT] Too many "
			    "keywords");
			return;
		}
	}
	if (s->sel->readonly) {
		imap_session_tagged(s, tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		return;
	}
	if (conditional)
		imap_session_enable_condstore(s);
	imap_msgset_ranges(s, &set, &ranges, &nranges);
	if (nranges == 0) {
		imap_session_tagged(s, tag, "OK", "STORE completed");
		return;
	}
	if (conditional && unchangedsince == 0) {
		/* UNCHANGEDSINCE 0 fails for every existing message (RFC
		 * 7162 3.1.3); the store reads 0 as "no condition". */
		store_modseq0_failed(s, tag, uid, ranges, nranges);
		return;
	}
	s->server->actor = s;
	rc = store_flags_update(s->server->store, s->user_id,
	    s->sel->mailbox_id, ranges, nranges, op, sys, kws, nkw,
	    conditional ? unchangedsince : 0, &res, &err);
	s->server->actor = NULL;
	if (rc != 0) {
		msg_store_failed(s, tag, "STORE", err);
		return;
	}
	if (res.highestmodseq > s->sel->highestmodseq)
		s->sel->highestmodseq = res.highestmodseq;
	imap_seqset_init(&modified);
	for (size_t i = 0; i < res.failed_count; i++) {
		uint32_t v = uid ? res.failed[i] :
		    imap_selected_seq(s->sel, res.failed[i]);

		if (v != 0)
			imap_seqset_add(&modified, v);
	}
	/* RFC 7162 3.1.3: with CONDSTORE on, even .SILENT reports the new
	 * MODSEQ of the messages this STORE changed. */
	if ((!silent || s->enabled_condstore) &&
	    store_read_begin(s->server->store, &r, &err) == 0) {
		const char *kw[STORE_KEYWORDS_MAX];
		size_t kwn = 0;
		struct store_msg *msgs = NULL;
		size_t n = 0, ci = 0;

		if (store_mailbox_keywords(r, s->user_id, s->sel->mailbox_id,
		    kw, &kwn, &err) != 0)
			kwn = 0;
		if (store_msg_list(r, s->user_id, s->sel->mailbox_id, ranges,
		    nranges, &msgs, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				uint32_t seq = imap_selected_seq(s->sel,
				    msgs[i].uid);
				bool changed;

				while (ci < res.changed_count &&
				    res.changed[ci].uid < msgs[i].uid)
					ci++;
				changed = ci < res.changed_count &&
				    res.changed[ci].uid == msgs[i].uid;
				if (seq == 0 || u32_in_sorted(res.failed,
				    res.failed_count, msgs[i].uid) ||
				    (silent && !changed))
					continue;
				strbuf_appendf(&sb, "* %u FETCH (", seq);
				if (uid || s->enabled_condstore)
					strbuf_appendf(&sb, "UID %u ",
					    msgs[i].uid);
				if (s->enabled_condstore)
					strbuf_appendf(&sb, "MODSEQ (%llu)%s",
					    (unsigned long long)msgs[i].modseq,
					    silent ? "" : " ");
				if (!silent) {
					strbuf_appends(&sb, "FLAGS ");
					imap_selected_format_flags(&sb,
					    s->sel, msgs[i].uid,
					    &msgs[i].flags, kw, kwn);
				}
				strbuf_appends(&sb, ")\r\n");
				if (sb.len > 65536)
					imap_session_write_sb(s, &sb);
			}
		}
		free(msgs);
		store_read_end(&r);
		imap_session_write_sb(s, &sb);
	}
	store_flag_result_free(&res);
	strbuf_free(&sb);
	if (!imap_seqset_is_empty(&modified)) {
		imap_seqset_format(&modified, &sb);
		imap_session_tagged(s, tag, "OK", "[MODIFIED %s] Conditional "
		    "STORE failed", strbuf_str(&sb));
		strbuf_free(&sb);
	} else {
		imap_session_tagged(s, tag, "OK", "STORE completed");
	}
	imap_seqset_free(&modified);
}

/* ---- COPY / MOVE ---- */

static void
copy_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid, bool move)
{
	const char *cmd = move ? "MOVE" : "COPY";
	struct imap_msgset set;
	const char *wire, *err;
	size_t wlen;
	struct strbuf name = STRBUF_INIT, sb = STRBUF_INIT;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct store_uid_range *ranges;
	size_t nranges;
	struct store_copy_result res;
	struct imap_seqset src, dst;
	int rc;

	if (argc != 2 || !imap_arg_get_astring(&args[1], &wire, &wlen)) {
		imap_session_tagged(s, tag, "BAD", "%s needs a message set and "
		    "a mailbox", cmd);
		return;
	}
	if (imap_msgset_parse(s, &args[0], uid, &set, &err) != 0) {
		imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	if (imap_mailbox_name_from_wire(wire, wlen, &name, &err) != 0) {
		imap_session_tagged(s, tag, "NO", "Invalid mailbox name: %s",
		    err);
		strbuf_free(&name);
		return;
	}
	if (move && s->sel->readonly) {
		imap_session_tagged(s, tag, "NO", "[READ-ONLY] Mailbox is "
		    "read-only");
		strbuf_free(&name);
		return;
	}
	if (store_read_begin(s->server->store, &r, &err) != 0) {
		msg_store_failed(s, tag, cmd, err);
		strbuf_free(&name);
		return;
	}
	rc = store_mailbox_lookup(r, s->user_id, name.data, &info, &err);
	store_read_end(&r);
	strbuf_free(&name);
	if (rc == STORE_NOT_FOUND) {
		imap_session_tagged(s, tag, "NO", "[TRYCREATE] Mailbox does not "
		    "exist");
		return;
	}
	if (rc != 0) {
		msg_store_failed(s, tag, cmd, err);
		return;
	}
	imap_msgset_ranges(s, &set, &ranges, &nranges);
	if (nranges == 0) {
		imap_session_tagged(s, tag, "OK", "%s completed (no messages)",
		    cmd);
		return;
	}
	s->server->actor = s;
	rc = store_copy(s->server->store, s->user_id, s->sel->mailbox_id,
	    info.id, ranges, nranges, move, &res, &err);
	s->server->actor = NULL;
	if (rc != 0) {
		msg_store_failed(s, tag, cmd, err);
		return;
	}
	imap_seqset_init(&src);
	imap_seqset_init(&dst);
	for (size_t i = 0; i < res.count; i++) {
		imap_seqset_add(&src, res.src_uids[i]);
		imap_seqset_add(&dst, res.dst_uids[i]);
	}
	if (res.count > 0) {
		strbuf_appendf(&sb, "COPYUID %u ", res.dst_uidvalidity);
		imap_seqset_format(&src, &sb);
		strbuf_appendc(&sb, ' ');
		imap_seqset_format(&dst, &sb);
	}
	if (move) {
		/* RFC 6851: COPYUID in an untagged OK, then the EXPUNGEs. */
		if (res.count > 0)
			imap_session_printf(s, "* OK [%s] Moved\r\n", sb.data);
		imap_selected_expunge_uids(s, res.src_uids, res.count);
		imap_session_tagged(s, tag, "OK", "MOVE completed");
	} else if (res.count > 0) {
		imap_session_tagged(s, tag, "OK", "[%s] COPY completed",
		    sb.data);
	} else {
		imap_session_tagged(s, tag, "OK", "COPY completed");
	}
	imap_seqset_free(&src);
	imap_seqset_free(&dst);
	strbuf_free(&sb);
	store_copy_result_free(&res);
}

void
imap_cmd_copy(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	copy_common(s, tag, args, argc, uid, false);
}

void
imap_cmd_move(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	copy_common(s, tag, args, argc, uid, true);
}

/* ---- SEARCH ---- */

struct search_run {
	struct imap_session *s;
	struct store_read *r;
	const struct imap_search_program *prog;
	const char *const *kw;
	size_t kwn;
	const struct store_msg *msg;
	struct imap_msgview view;
	uint32_t view_pos;
	uint32_t max_uid;
	struct imap_seqset hits;	/* seqs or UIDs */
	bool uid;
	uint32_t n, min, max;
	uint64_t max_modseq;	/* highest MODSEQ among the hits */
	/* MODSEQ of the MIN and of the MAX hit (RFC 4731 3.2): the walk is
	 * in UID order, so sequence numbers and UIDs both ascend */
	uint64_t min_modseq, last_modseq;
	int error;
};

static int
search_has_keyword(void *ctx, const char *kw)
{
	struct search_run *sr = ctx;

	for (size_t i = 0; i < sr->kwn; i++)
		if (strcasecmp(sr->kw[i], kw) == 0)
			return (sr->msg->flags.keywords[i / 64] >>
			    (i % 64)) & 1;
	return 0;
}

static int
search_header(void *ctx, const char *name, const char *str, size_t len)
{
	struct search_run *sr = ctx;

	return imap_msgview_header_contains(&sr->view, name, str, len);
}

static int
search_address(void *ctx, const char *name, const char *str, size_t len)
{
	struct search_run *sr = ctx;

	return imap_msgview_address_contains(&sr->view, name, str, len);
}

static int
search_body(void *ctx, bool text, const char *str, size_t len)
{
	struct search_run *sr = ctx;

	return imap_msgview_body_contains(&sr->view, text, str, len);
}

static int
search_sent_date(void *ctx, int64_t *t_r, int *tz_r)
{
	struct search_run *sr = ctx;

	return imap_msgview_sent_date(&sr->view, t_r, tz_r);
}

static int
search_cb(void *ctx, const struct store_msg *m)
{
	struct search_run *sr = ctx;
	struct imap_selected *sel = sr->s->sel;
	struct imap_search_message sm;
	int rc;

	while (sr->view_pos < sel->count && sel->uids[sr->view_pos] < m->uid)
		sr->view_pos++;
	if (sr->view_pos >= sel->count)
		return 1;	/* past the view: stop */
	if (sel->uids[sr->view_pos] != m->uid)
		return 0;	/* not announced to this session yet */
	memset(&sm, 0, sizeof(sm));
	sm.seq = sr->view_pos + 1;
	sm.uid = m->uid;
	sm.max_seq = sel->count;
	sm.max_uid = sr->max_uid;
	sm.flags = m->flags.system & IMAP_FLAGS_STORABLE;
	if (imap_selected_is_recent(sel, m->uid))
		sm.flags |= IMAP_FLAG_RECENT;
	sm.size = m->size;
	sm.modseq = m->modseq;
	sm.internaldate = m->internaldate;
	sm.internaldate_tz = m->tz_offset_min;
	sm.ctx = sr;
	sm.has_keyword = search_has_keyword;
	sm.header_contains = search_header;
	sm.address_contains = search_address;
	sm.body_contains = search_body;
	sm.sent_date = search_sent_date;
	sr->msg = m;
	imap_msgview_set(&sr->view, m);
	rc = imap_search_match(sr->prog, &sm);
	imap_msgview_clear(&sr->view);
	if (rc < 0) {
		sr->error = 1;
		return 1;
	}
	if (rc == 1) {
		uint32_t v = sr->uid ? m->uid : sm.seq;

		imap_seqset_add(&sr->hits, v);
		if (sr->n == 0 || v < sr->min)
			sr->min = v;
		if (v > sr->max)
			sr->max = v;
		if (m->modseq > sr->max_modseq)
			sr->max_modseq = m->modseq;
		if (sr->n == 0)
			sr->min_modseq = m->modseq;
		sr->last_modseq = m->modseq;
		sr->n++;
	}
	return 0;
}

void
imap_cmd_search(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct imap_search_program *prog;
	enum imap_search_error code;
	const char *err;
	struct search_run sr;
	const char *kw[STORE_KEYWORDS_MAX];
	struct strbuf sb = STRBUF_INIT;
	struct imap_selected *sel = s->sel;

	if (imap_search_parse(args, argc, s->server->scratch, &prog, &code,
	    &err) != 0) {
		if (code == IMAP_SEARCH_ERR_BADCHARSET)
			imap_session_tagged(s, tag, "NO", "[BADCHARSET (UTF-8 "
			    "US-ASCII)] %s", err);
		else
			imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	if (prog->uses_modseq)
		imap_session_enable_condstore(s);
	memset(&sr, 0, sizeof(sr));
	sr.s = s;
	sr.prog = prog;
	sr.kw = kw;
	sr.uid = uid;
	sr.max_uid = sel->count > 0 ? sel->uids[sel->count - 1] : 0;
	imap_seqset_init(&sr.hits);
	if (sel->count > 0) {
		if (store_read_begin(s->server->store, &sr.r, &err) != 0) {
			msg_store_failed(s, tag, "SEARCH", err);
			return;
		}
		sr.view.s = s;
		sr.view.r = sr.r;
		if (store_mailbox_keywords(sr.r, s->user_id, sel->mailbox_id,
		    kw, &sr.kwn, &err) != 0)
			sr.kwn = 0;
		if (store_msg_foreach(sr.r, s->user_id, sel->mailbox_id,
		    sel->uids[0], sr.max_uid, search_cb, &sr, &err) < 0)
			sr.error = 1;
		store_read_end(&sr.r);
	}
	if (sr.error) {
		imap_seqset_free(&sr.hits);
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] SEARCH failed");
		return;
	}
	if (prog->has_return) {
		unsigned o = prog->return_opts;

		strbuf_appendf(&sb, "* ESEARCH (TAG \"%s\")%s", tag,
		    uid ? " UID" : "");
		if ((o & IMAP_SEARCH_RETURN_MIN) && sr.n > 0)
			strbuf_appendf(&sb, " MIN %u", sr.min);
		if ((o & IMAP_SEARCH_RETURN_MAX) && sr.n > 0)
			strbuf_appendf(&sb, " MAX %u", sr.max);
		if (o & IMAP_SEARCH_RETURN_COUNT)
			strbuf_appendf(&sb, " COUNT %u", sr.n);
		if ((o & IMAP_SEARCH_RETURN_ALL) && sr.n > 0) {
			strbuf_appends(&sb, " ALL ");
			imap_seqset_format(&sr.hits, &sb);
		}
		/* RFC 4731 3.2: MIN or MAX alone, the MODSEQ of the message
		 * returned; both, the higher of those two; otherwise the
		 * highest of all the hits */
		if (prog->uses_modseq && sr.n > 0) {
			uint64_t ms = sr.max_modseq;
			bool mm = !(o & (IMAP_SEARCH_RETURN_ALL |
			    IMAP_SEARCH_RETURN_COUNT));

			if (mm && (o & IMAP_SEARCH_RETURN_MIN) &&
			    (o & IMAP_SEARCH_RETURN_MAX))
				ms = sr.min_modseq > sr.last_modseq ?
				    sr.min_modseq : sr.last_modseq;
			else if (mm && (o & IMAP_SEARCH_RETURN_MIN))
				ms = sr.min_modseq;
			else if (mm && (o & IMAP_SEARCH_RETURN_MAX))
				ms = sr.last_modseq;
			strbuf_appendf(&sb, " MODSEQ %llu",
			    (unsigned long long)ms);
		}
		strbuf_appends(&sb, "\r\n");
	} else {
		strbuf_appends(&sb, "* SEARCH");
		for (size_t i = 0; i < sr.hits.count; i++) {
			for (uint64_t v = sr.hits.ranges[i].lo;
			    v <= sr.hits.ranges[i].hi; v++) {
				strbuf_appendf(&sb, " %u", (uint32_t)v);
				if (sb.len > 65536)
					imap_session_write_sb(s, &sb);
			}
		}
		/* RFC 7162 3.1.5: "(MODSEQ n)" after a non-empty result */
		if (prog->uses_modseq && sr.n > 0)
			strbuf_appendf(&sb, " (MODSEQ %llu)",
			    (unsigned long long)sr.max_modseq);
		strbuf_appends(&sb, "\r\n");
	}
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_seqset_free(&sr.hits);
	imap_session_tagged(s, tag, "OK", "SEARCH completed");
}
