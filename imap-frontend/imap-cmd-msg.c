/* imap-cmd-msg — STORE, COPY, MOVE, SEARCH (and their UID forms). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arena.h"
#include "imap-commands.h"
#include "imap-fetch.h"
#include "imap-format.h"
#include "imap-msgset.h"
#include "imap-parse.h"
#include "imap-search-index.h"
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
    enum store_error cls, const char *err)
{
	switch (cls) {
	case STORE_ERR_NOTFOUND:
		/* the target (or the selected mailbox) was deleted by
		   another session between this command and its commit; a
		   deleted selected mailbox turns this into BYE */
		imap_session_tagged(s, tag, "NO", "[TRYCREATE] %s: mailbox "
		    "does not exist", what);
		break;
	case STORE_ERR_LIMIT:
		imap_session_tagged(s, tag, "NO", "[LIMIT] %s: %s", what,
		    err != NULL ? err : "limit reached");
		break;
	case STORE_ERR_QUOTA:
		imap_session_tagged(s, tag, "NO", "[OVERQUOTA] %s: %s", what,
		    err != NULL ? err : "quota exceeded");
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
		msg_store_failed(s, tag, "STORE",
		    store_last_error(s->server->store), err);
		return;
	}
	if (store_msg_list(r, s->user_id, s->sel->mailbox_id, ranges, nranges,
	    &msgs, &n, &err) != 0) {
		store_read_end(&r);
		msg_store_failed(s, tag, "STORE",
		    store_last_error(s->server->store), err);
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

/* A STORE on its way through the writer: copies of what it changes,
 * then the store's answer. */
struct store_job {
	struct imap_job job;
	uint32_t mailbox_id;
	struct store_uid_range *ranges;
	size_t nranges;
	enum store_flag_op op;
	unsigned sys;
	char *kws[IMAP_STORE_FLAGS_MAX];
	size_t nkw;
	uint64_t unchangedsince;
	bool silent, uid;
	struct store_flag_result res;
};

static void
store_job_free(struct imap_job *job)
{
	struct store_job *j = (struct store_job *)job;

	free(j->ranges);
	for (size_t i = 0; i < j->nkw; i++)
		free(j->kws[i]);
	store_flag_result_free(&j->res);
	free(j);
}

static int
store_job_apply(struct store *store, void *ctx, const char **error_r)
{
	struct store_job *j = ctx;

	return store_flags_update(store, j->job.user_id,
	    j->mailbox_id, j->ranges, j->nranges, j->op, j->sys,
	    (const char *const *)j->kws, j->nkw, j->unchangedsince, &j->res,
	    error_r);
}

/* The STORE is durable (or failed): the FETCH responses and the tagged
 * answer, from what the mailbox holds now. */
static void
store_job_finish(struct imap_session *s, const char *tag,
    struct imap_job *job)
{
	struct store_job *j = (struct store_job *)job;
	struct store_flag_result *res = &j->res;
	struct store_read *r = NULL;
	struct strbuf sb = STRBUF_INIT;
	struct imap_seqset modified;
	const char *err;
	bool silent = j->silent, uid = j->uid;

	if (job->rc != 0) {
		msg_store_failed(s, tag, "STORE", job->cls, job->error);
		return;
	}
	if (res->highestmodseq > s->sel->highestmodseq)
		s->sel->highestmodseq = res->highestmodseq;
	imap_seqset_init(&modified);
	for (size_t i = 0; i < res->failed_count; i++) {
		uint32_t v = uid ? res->failed[i] :
		    imap_selected_seq(s->sel, res->failed[i]);

		if (v != 0)
			imap_seqset_add(&modified, v);
	}
	/* RFC 7162 3.1.3: with CONDSTORE on, even .SILENT reports the new
	 * MODSEQ of the messages this STORE changed. The state reported is
	 * the one the STORE left (from the writer's result), not what the
	 * mailbox holds by now: a message another session expunged since
	 * is still answered with the flags this STORE gave it. */
	if ((!silent || s->enabled_condstore) &&
	    store_read_begin(s->server->store, &r, &err) == 0) {
		const char *kw[STORE_KEYWORDS_MAX];
		const char *const *res_kw;
		size_t kwn = 0, ci = 0, ui = 0, res_kwn;

		/* keywords the client was not told of are announced first */
		if (store_mailbox_keywords(r, s->user_id, s->sel->mailbox_id,
		    kw, &kwn, &err) != 0)
			kwn = 0;
		imap_session_keywords_seen(s, kw, kwn);
		/* the keywords are named by the table the STORE saw: the
		   snapshot's is empty if the mailbox was deleted since */
		if (res->keyword_count > 0) {
			res_kw = (const char *const *)res->keywords;
			res_kwn = res->keyword_count;
		} else {
			res_kw = kw;
			res_kwn = kwn;
		}
		while (ci < res->changed_count || ui < res->unchanged_count) {
			const struct store_flag_change *fc;
			bool changed;
			uint32_t seq;

			changed = ui >= res->unchanged_count ||
			    (ci < res->changed_count && res->changed[ci].uid <
			    res->unchanged[ui].uid);
			fc = changed ? &res->changed[ci++] :
			    &res->unchanged[ui++];
			seq = imap_selected_seq(s->sel, fc->uid);
			if (seq == 0 || (silent && !changed))
				continue;
			strbuf_appendf(&sb, "* %u FETCH (", seq);
			if (uid || s->enabled_condstore)
				strbuf_appendf(&sb, "UID %u ", fc->uid);
			if (s->enabled_condstore)
				strbuf_appendf(&sb, "MODSEQ (%llu)%s",
				    (unsigned long long)fc->modseq,
				    silent ? "" : " ");
			if (!silent) {
				strbuf_appends(&sb, "FLAGS ");
				imap_selected_format_flags(&sb, s->sel,
				    fc->uid, &fc->flags, res_kw, res_kwn);
			}
			strbuf_appends(&sb, ")\r\n");
			if (sb.len > 65536)
				imap_session_write_sb(s, &sb);
		}
		store_read_end(&r);
		imap_session_write_sb(s, &sb);
	}
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
	const struct imap_arg *set_arg;
	struct store_job *j;

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
	j = xcalloc(1, sizeof(*j));
	j->job.free = store_job_free;
	j->job.finish = store_job_finish;
	j->mailbox_id = s->sel->mailbox_id;
	j->ranges = xmemdup(ranges, nranges * sizeof(*ranges));
	j->nranges = nranges;
	j->op = op;
	j->sys = sys;
	for (size_t i = 0; i < nkw; i++)
		j->kws[i] = xstrdup(kws[i]);
	j->nkw = nkw;
	j->unchangedsince = conditional ? unchangedsince : 0;
	j->silent = silent;
	j->uid = uid;
	imap_session_submit_write(s, tag, &j->job, 0, store_job_apply);
}

/* ---- COPY / MOVE ---- */

/* COPY and MOVE on their way through the writer. */
struct copy_job {
	struct imap_job job;
	uint32_t src, dst;
	struct store_uid_range *ranges;
	size_t nranges;
	bool move;
	struct store_copy_result res;
};

static void
copy_job_free(struct imap_job *job)
{
	struct copy_job *j = (struct copy_job *)job;

	free(j->ranges);
	store_copy_result_free(&j->res);
	free(j);
}

static int
copy_job_apply(struct store *store, void *ctx, const char **error_r)
{
	struct copy_job *j = ctx;

	return store_copy(store, j->job.user_id, j->src, j->dst, j->ranges,
	    j->nranges, j->move, &j->res, error_r);
}

static void
copy_job_finish(struct imap_session *s, const char *tag,
    struct imap_job *job)
{
	struct copy_job *j = (struct copy_job *)job;
	const struct store_copy_result *res = &j->res;
	const char *cmd = j->move ? "MOVE" : "COPY";
	struct strbuf sb = STRBUF_INIT;
	struct imap_seqset src, dst;

	if (job->rc != 0) {
		msg_store_failed(s, tag, cmd, job->cls, job->error);
		return;
	}
	imap_seqset_init(&src);
	imap_seqset_init(&dst);
	for (size_t i = 0; i < res->count; i++) {
		imap_seqset_add(&src, res->src_uids[i]);
		imap_seqset_add(&dst, res->dst_uids[i]);
	}
	if (res->count > 0) {
		strbuf_appendf(&sb, "COPYUID %u ", res->dst_uidvalidity);
		imap_seqset_format(&src, &sb);
		strbuf_appendc(&sb, ' ');
		imap_seqset_format(&dst, &sb);
	}
	if (j->move) {
		/* RFC 6851: COPYUID in an untagged OK, then the EXPUNGEs. */
		if (res->count > 0)
			imap_session_printf(s, "* OK [%s] Moved\r\n", sb.data);
		imap_selected_expunge_uids(s, res->src_uids, res->count);
		imap_session_tagged(s, tag, "OK", "MOVE completed");
	} else if (res->count > 0) {
		imap_session_tagged(s, tag, "OK", "[%s] COPY completed",
		    sb.data);
	} else {
		imap_session_tagged(s, tag, "OK", "COPY completed");
	}
	imap_seqset_free(&src);
	imap_seqset_free(&dst);
	strbuf_free(&sb);
}

static void
copy_common(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid, bool move)
{
	const char *cmd = move ? "MOVE" : "COPY";
	struct imap_msgset set;
	const char *wire, *err;
	size_t wlen;
	struct strbuf name = STRBUF_INIT;
	struct store_read *r = NULL;
	struct store_mailbox_info info;
	struct store_uid_range *ranges;
	size_t nranges;
	struct copy_job *j;
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
	if (imap_cmd_mailbox_decode(s, wire, wlen, &name, &err) != 0) {
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
		msg_store_failed(s, tag, cmd,
		    store_last_error(s->server->store), err);
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
		msg_store_failed(s, tag, cmd,
		    store_last_error(s->server->store), err);
		return;
	}
	imap_msgset_ranges(s, &set, &ranges, &nranges);
	if (nranges == 0) {
		imap_session_tagged(s, tag, "OK", "%s completed (no messages)",
		    cmd);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->job.free = copy_job_free;
	j->job.finish = copy_job_finish;
	j->src = s->sel->mailbox_id;
	j->dst = info.id;
	j->ranges = xmemdup(ranges, nranges * sizeof(*ranges));
	j->nranges = nranges;
	j->move = move;
	imap_session_submit_write(s, tag, &j->job, 0, copy_job_apply);
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

/* ---- SEARCH ----
 *
 * A SEARCH that reads message text (BODY, TEXT, HEADER, FROM, SENTON ...)
 * or walks a large mailbox runs on a worker, in chunks of about
 * IMAP_SEARCH_CHUNK_MS: each chunk takes its own snapshot, so a long
 * SEARCH neither holds a snapshot (LMDB's file would grow) nor a worker
 * (other users' jobs run between its chunks). The job owns a copy of the
 * session's view (sequence numbers are the client's) and of its \Recent
 * set; its program lives in the job's own arena. A SEARCH of flags over a
 * small mailbox runs on the loop: the hop would cost more than it saves.
 */

/* Time one chunk of a SEARCH may take on a worker before it lets the
 * next job in (its key goes to the back of the line). */
#define IMAP_SEARCH_CHUNK_MS 5
/* Messages a flags-only SEARCH may walk on the loop. */
#define IMAP_SEARCH_INLINE_MAX 5000
/* Block size of a SEARCH program's own arena. */
#define IMAP_SEARCH_ARENA_CHUNK (16 * 1024)

struct search_job {
	struct imap_job job;
	struct store *store;
	struct arena *arena;		/* prog */
	struct imap_search_program *prog;
	uint32_t mailbox_id;
	uint32_t *uids;			/* the view: seq n is uids[n-1] */
	uint32_t count;
	struct imap_seqset recent;	/* \Recent UIDs of the session */
	uint32_t recent_count;
	bool uid;
	uint32_t max_uid;
	bool unlimited;			/* inline: no chunking */
	/* progress and result */
	uint32_t pos;			/* next view index */
	struct imap_seqset hits;	/* seqs or UIDs */
	uint32_t n, min, max;
	uint64_t max_modseq;		/* highest MODSEQ among the hits */
	/* MODSEQ of the MIN and of the MAX hit (RFC 4731 3.2): the walk is
	 * in UID order, so sequence numbers and UIDs both ascend */
	uint64_t min_modseq, last_modseq;
	bool error;
	/* SORT / THREAD (imap-cmd-sort.c): what they do with the hits */
	struct imap_search_hooks hooks;
	/* the full-text index's narrowing, made in the first chunk */
	struct imap_search_index *fts;
	bool fts_tried;
};

/* One chunk's state: the snapshot and the message being matched. */
struct search_run {
	struct search_job *j;
	struct store_read *r;
	const char *const *kw;
	size_t kwn;
	const struct store_msg *msg;
	struct imap_msgview view;
	struct timespec deadline;
	unsigned since_check;
	bool timed_out;		/* stopped for time, not at the end */
};

static void
search_job_free(struct imap_job *job)
{
	struct search_job *j = (struct search_job *)job;

	if (j->hooks.free != NULL)
		j->hooks.free(j->hooks.ctx);
	arena_free(&j->arena);
	free(j->uids);
	imap_seqset_free(&j->recent);
	imap_seqset_free(&j->hits);
	imap_search_index_free(&j->fts);
	free(j);
}

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
	/* the index may know without reading the message */
	int known = imap_search_index_known(sr->j->fts, str,
	    sr->msg->body_id);

	return known >= 0 ? known :
	    imap_msgview_header_contains(&sr->view, name, str, len);
}

static int
search_address(void *ctx, const char *name, const char *str, size_t len)
{
	struct search_run *sr = ctx;
	int known = imap_search_index_known(sr->j->fts, str,
	    sr->msg->body_id);

	return known >= 0 ? known :
	    imap_msgview_address_contains(&sr->view, name, str, len);
}

static int
search_body(void *ctx, bool text, const char *str, size_t len)
{
	struct search_run *sr = ctx;
	int known = imap_search_index_known(sr->j->fts, str,
	    sr->msg->body_id);

	if (known >= 0)
		return known;
	/* TEXT of a message whose header blocks lack it: its body */
	if (text && imap_search_index_headers_lack(sr->j->fts, str,
	    sr->msg->body_id))
		text = false;
	return imap_msgview_body_contains(&sr->view, text, str, len);
}

static int
search_sent_date(void *ctx, int64_t *t_r, int *tz_r)
{
	struct search_run *sr = ctx;

	return imap_msgview_sent_date(&sr->view, t_r, tz_r);
}

static int
search_thread_id(void *ctx, uint64_t *id_r)
{
	struct search_run *sr = ctx;

	return imap_msgview_thread_id(&sr->view, id_r);
}

static bool
search_out_of_time(struct search_run *sr)
{
	struct timespec now;

	if (sr->j->unlimited || ++sr->since_check < 8)
		return false;
	sr->since_check = 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > sr->deadline.tv_sec ||
	    (now.tv_sec == sr->deadline.tv_sec &&
	    now.tv_nsec >= sr->deadline.tv_nsec);
}

static int
search_cb(void *ctx, const struct store_msg *m)
{
	struct search_run *sr = ctx;
	struct search_job *j = sr->j;
	struct imap_search_message sm;
	int rc;

	while (j->pos < j->count && j->uids[j->pos] < m->uid)
		j->pos++;
	if (j->pos >= j->count)
		return 1;	/* past the view: stop */
	if (j->uids[j->pos] != m->uid)
		return 0;	/* not announced to this session yet */
	if (j->fts != NULL &&
	    !imap_search_index_may_match(j->fts, j->prog, m->body_id)) {
		/* ruled out by the index: not read */
		j->pos++;
		if (j->pos < j->count && search_out_of_time(sr)) {
			sr->timed_out = true;
			return 1;
		}
		return 0;
	}
	memset(&sm, 0, sizeof(sm));
	sm.seq = j->pos + 1;
	sm.uid = m->uid;
	sm.max_seq = j->count;
	sm.max_uid = j->max_uid;
	sm.flags = m->flags.system & IMAP_FLAGS_STORABLE;
	if (j->recent_count > 0 && imap_seqset_contains(&j->recent, m->uid))
		sm.flags |= IMAP_FLAG_RECENT;
	sm.size = m->size;
	sm.modseq = m->modseq;
	sm.email_id = m->body_id;
	sm.internaldate = m->internaldate;
	sm.internaldate_tz = m->tz_offset_min;
	sm.ctx = sr;
	sm.has_keyword = search_has_keyword;
	sm.header_contains = search_header;
	sm.address_contains = search_address;
	sm.body_contains = search_body;
	sm.sent_date = search_sent_date;
	sm.thread_id = search_thread_id;
	sr->msg = m;
	imap_msgview_set(&sr->view, m);
	rc = imap_search_match(j->prog, &sm);
	j->pos++;
	if (rc < 0) {
		imap_msgview_clear(&sr->view);
		j->error = true;
		return 1;
	}
	if (rc == 1) {
		uint32_t v = j->uid ? m->uid : sm.seq;

		imap_seqset_add(&j->hits, v);
		if (j->n == 0 || v < j->min)
			j->min = v;
		if (v > j->max)
			j->max = v;
		if (m->modseq > j->max_modseq)
			j->max_modseq = m->modseq;
		if (j->n == 0)
			j->min_modseq = m->modseq;
		j->last_modseq = m->modseq;
		j->n++;
		if (j->hooks.hit != NULL && j->hooks.hit(j->hooks.ctx,
		    &sr->view, m, sm.seq) != 0)
			j->error = true;
	}
	imap_msgview_clear(&sr->view);
	/* stop between messages once the chunk's time is up */
	if (j->pos < j->count && search_out_of_time(sr)) {
		sr->timed_out = true;
		return 1;
	}
	return 0;
}

/* One chunk, on a worker (or the whole SEARCH, inline). */
static enum workq_run_result
search_chunk(struct workq_job *wq)
{
	struct search_job *j = (struct search_job *)wq;
	struct search_run sr;
	const char *kw[STORE_KEYWORDS_MAX];
	const char *err;

	if (j->pos >= j->count || j->error)
		return WORKQ_DONE;
	memset(&sr, 0, sizeof(sr));
	sr.j = j;
	sr.kw = kw;
	clock_gettime(CLOCK_MONOTONIC, &sr.deadline);
	sr.deadline.tv_nsec += IMAP_SEARCH_CHUNK_MS * 1000000L;
	if (sr.deadline.tv_nsec >= 1000000000L) {
		sr.deadline.tv_sec++;
		sr.deadline.tv_nsec -= 1000000000L;
	}
	if (store_read_begin(j->store, &sr.r, &err) != 0) {
		j->error = true;
		return WORKQ_DONE;
	}
	sr.view.user_id = j->job.user_id;
	sr.view.mailbox_id = j->mailbox_id;
	sr.view.r = sr.r;
	if (store_mailbox_keywords(sr.r, j->job.user_id, j->mailbox_id, kw,
	    &sr.kwn, &err) != 0)
		sr.kwn = 0;
	if (!j->fts_tried) {
		j->fts_tried = true;
		if (j->count >= IMAP_SEARCH_INDEX_MIN_MESSAGES)
			j->fts = imap_search_index_new(j->store, sr.r,
			    j->job.user_id, j->prog);
	}
	if (store_msg_foreach(sr.r, j->job.user_id, j->mailbox_id,
	    j->uids[j->pos], j->max_uid, search_cb, &sr, &err) < 0)
		j->error = true;
	store_read_end(&sr.r);
	/* a walk that was not cut for time reached the end: the rest of
	   the view was expunged meanwhile */
	if (!sr.timed_out)
		j->pos = j->count;
	if (j->pos < j->count && !j->error)
		return WORKQ_AGAIN;
	if (j->hooks.done != NULL && !j->error)
		j->hooks.done(j->hooks.ctx);
	return WORKQ_DONE;
}

/* The UID of hit v (a sequence number unless the SEARCH was UID). */
static uint32_t
hit_uid(const struct search_job *j, uint32_t v)
{
	return j->uid ? v : v >= 1 && v <= j->count ? j->uids[v - 1] : 0;
}

/* SEARCH RETURN (SAVE): the hits become "$" as UIDs, so they stay the
 * same messages whatever is expunged later; with MIN and/or MAX but
 * neither ALL nor COUNT only those (RFC 5182 2.1). */
static void
search_save(struct imap_session *s, const struct search_job *j)
{
	unsigned o = j->prog->return_opts;
	struct imap_seqset *saved;

	if (s->sel == NULL)
		return;
	saved = &s->sel->saved;
	imap_seqset_clear(saved);
	if (j->n == 0)
		return;
	if (!(o & (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)) &&
	    (o & (IMAP_SEARCH_RETURN_MIN | IMAP_SEARCH_RETURN_MAX))) {
		if (o & IMAP_SEARCH_RETURN_MIN)
			imap_seqset_add(saved, hit_uid(j, j->min));
		if (o & IMAP_SEARCH_RETURN_MAX)
			imap_seqset_add(saved, hit_uid(j, j->max));
		return;
	}
	for (size_t i = 0; i < j->hits.count; i++)
		for (uint64_t v = j->hits.ranges[i].lo;
		    v <= j->hits.ranges[i].hi; v++)
			imap_seqset_add(saved, hit_uid(j, (uint32_t)v));
}

static void
search_finish(struct imap_session *s, const char *tag, struct imap_job *job)
{
	struct search_job *j = (struct search_job *)job;
	const struct imap_search_program *prog = j->prog;
	struct strbuf sb = STRBUF_INIT;
	bool uid = j->uid;

	if (j->hooks.finish != NULL) {
		j->hooks.finish(s, tag, j->hooks.ctx, j->error,
		    job->wq.cancelled);
		return;
	}
	if (job->wq.cancelled) {
		imap_session_tagged(s, tag, "NO", "[UNAVAILABLE] Server "
		    "shutting down");
		return;
	}
	if (j->error) {
		/* RFC 5182 2.1: a failed SEARCH (SAVE) leaves "$" empty */
		if ((prog->return_opts & IMAP_SEARCH_RETURN_SAVE) &&
		    s->sel != NULL)
			imap_seqset_clear(&s->sel->saved);
		imap_session_tagged(s, tag, "NO", "[SERVERBUG] SEARCH failed");
		return;
	}
	if (prog->return_opts & IMAP_SEARCH_RETURN_SAVE)
		search_save(s, j);
	if (prog->has_return &&
	    prog->return_opts == IMAP_SEARCH_RETURN_SAVE) {
		/* SAVE alone: no ESEARCH (RFC 5182 2.1) */
	} else if (prog->has_return) {
		unsigned o = prog->return_opts;

		strbuf_appendf(&sb, "* ESEARCH (TAG \"%s\")%s", tag,
		    uid ? " UID" : "");
		if ((o & IMAP_SEARCH_RETURN_MIN) && j->n > 0)
			strbuf_appendf(&sb, " MIN %u", j->min);
		if ((o & IMAP_SEARCH_RETURN_MAX) && j->n > 0)
			strbuf_appendf(&sb, " MAX %u", j->max);
		if (o & IMAP_SEARCH_RETURN_COUNT)
			strbuf_appendf(&sb, " COUNT %u", j->n);
		if ((o & IMAP_SEARCH_RETURN_ALL) && j->n > 0) {
			strbuf_appends(&sb, " ALL ");
			imap_seqset_format(&j->hits, &sb);
		}
		/* RFC 4731 3.2: MIN or MAX alone, the MODSEQ of the message
		 * returned; both, the higher of those two; otherwise the
		 * highest of all the hits */
		if (prog->uses_modseq && j->n > 0) {
			uint64_t ms = j->max_modseq;
			bool mm = !(o & (IMAP_SEARCH_RETURN_ALL |
			    IMAP_SEARCH_RETURN_COUNT));

			if (mm && (o & IMAP_SEARCH_RETURN_MIN) &&
			    (o & IMAP_SEARCH_RETURN_MAX))
				ms = j->min_modseq > j->last_modseq ?
				    j->min_modseq : j->last_modseq;
			else if (mm && (o & IMAP_SEARCH_RETURN_MIN))
				ms = j->min_modseq;
			else if (mm && (o & IMAP_SEARCH_RETURN_MAX))
				ms = j->last_modseq;
			strbuf_appendf(&sb, " MODSEQ %llu",
			    (unsigned long long)ms);
		}
		strbuf_appends(&sb, "\r\n");
	} else {
		strbuf_appends(&sb, "* SEARCH");
		for (size_t i = 0; i < j->hits.count; i++) {
			for (uint64_t v = j->hits.ranges[i].lo;
			    v <= j->hits.ranges[i].hi; v++) {
				strbuf_appendf(&sb, " %u", (uint32_t)v);
				if (sb.len > 65536)
					imap_session_write_sb(s, &sb);
			}
		}
		/* RFC 7162 3.1.5: "(MODSEQ n)" after a non-empty result */
		if (prog->uses_modseq && j->n > 0)
			strbuf_appendf(&sb, " (MODSEQ %llu)",
			    (unsigned long long)j->max_modseq);
		strbuf_appends(&sb, "\r\n");
	}
	imap_session_write_sb(s, &sb);
	strbuf_free(&sb);
	imap_session_tagged(s, tag, "OK", "SEARCH completed");
}

/* A SEARCH job over the session's view (copied). */
static struct search_job *
search_job_new(struct imap_session *s, struct arena *arena,
    struct imap_search_program *prog, bool uid,
    const struct imap_search_hooks *hooks)
{
	struct imap_selected *sel = s->sel;
	struct search_job *j = xcalloc(1, sizeof(*j));

	j->job.free = search_job_free;
	j->job.finish = search_finish;
	j->job.wq.run = search_chunk;
	j->job.user_id = s->user_id;
	j->store = s->server->store;
	j->arena = arena;
	j->prog = prog;
	j->mailbox_id = sel->mailbox_id;
	j->uid = uid;
	j->count = sel->count;
	if (sel->count > 0)
		j->uids = xmemdup(sel->uids, sel->count * sizeof(*sel->uids));
	j->max_uid = sel->count > 0 ? sel->uids[sel->count - 1] : 0;
	imap_seqset_init(&j->recent);
	imap_seqset_init(&j->hits);
	j->recent_count = sel->recent_count;
	if (sel->recent_count > 0)
		imap_seqset_merge(&j->recent, &sel->recent);
	if (hooks != NULL)
		j->hooks = *hooks;
	return j;
}

void
imap_search_submit(struct imap_session *s, const char *tag,
    struct arena *arena, struct imap_search_program *prog, bool uid,
    const struct imap_search_hooks *hooks)
{
	if (prog->uses_modseq)
		imap_session_enable_condstore(s);
	imap_session_submit_work(s, tag,
	    &search_job_new(s, arena, prog, uid, hooks)->job);
}

/* A copy of args (in arena) where each "$" key (SEARCHRES, RFC 5182
 * 2.3) is the saved UIDs: "(UID set)", or "(NOT ALL)" when empty. */
static struct imap_arg *
searchres_copy(struct imap_session *s, struct arena *arena,
    const struct imap_arg *args, size_t n)
{
	struct imap_arg *out = arena_alloc(arena, (n + 1) * sizeof(*out));

	memcpy(out, args, n * sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		struct imap_arg *l;
		struct strbuf sb = STRBUF_INIT;
		bool empty = imap_seqset_is_empty(&s->sel->saved);

		if (args[i].type == IMAP_ARG_LIST) {
			if (args[i].list_count > 0)
				out[i].list = searchres_copy(s, arena,
				    args[i].list, args[i].list_count);
			continue;
		}
		if (!imap_arg_atom_equals(&args[i], "$"))
			continue;
		l = arena_zalloc(arena, 2 * sizeof(*l));
		l[0].type = l[1].type = IMAP_ARG_ATOM;
		l[0].str = empty ? "NOT" : "UID";
		l[0].len = strlen(l[0].str);
		if (empty)
			strbuf_appends(&sb, "ALL");
		else
			imap_seqset_format(&s->sel->saved, &sb);
		l[1].str = arena_strndup(arena, sb.data, sb.len);
		l[1].len = sb.len;
		strbuf_free(&sb);
		out[i].type = IMAP_ARG_LIST;
		out[i].str = "";
		out[i].len = 0;
		out[i].list = l;
		out[i].list_count = 2;
	}
	return out;
}

static const struct imap_arg *
searchres_args(struct imap_session *s, struct arena *arena,
    const struct imap_arg *args, size_t n)
{
	return s->sel != NULL && n > 0 ? searchres_copy(s, arena, args, n) :
	    args;
}

const struct imap_arg *
imap_search_saved_args(struct imap_session *s, struct arena *arena,
    const struct imap_arg *args, size_t n)
{
	return searchres_args(s, arena, args, n);
}

void
imap_cmd_search(struct imap_session *s, const char *tag,
    const struct imap_arg *args, size_t argc, bool uid)
{
	struct imap_search_program *prog;
	enum imap_search_error code;
	const char *err;
	struct imap_selected *sel = s->sel;
	struct search_job *j;
	struct arena *arena = arena_new(IMAP_SEARCH_ARENA_CHUNK);

	args = searchres_args(s, arena, args, argc);
	if (imap_search_parse(args, argc, arena, &prog, &code, &err) != 0) {
		arena_free(&arena);
		if (code == IMAP_SEARCH_ERR_BADCHARSET)
			imap_session_tagged(s, tag, "NO", "[BADCHARSET (UTF-8 "
			    "US-ASCII)] %s", err);
		else
			imap_session_tagged(s, tag, "BAD", "%s", err);
		return;
	}
	if (prog->uses_modseq)
		imap_session_enable_condstore(s);
	if (s->enabled_rev2 && !prog->has_return) {
		/* RFC 9051 6.4.4: ESEARCH only, RETURN (ALL) by default */
		prog->has_return = true;
		prog->return_opts = IMAP_SEARCH_RETURN_ALL;
	}
	j = search_job_new(s, arena, prog, uid, NULL);
	if (!prog->needs_body && !prog->needs_headers &&
	    sel->count <= IMAP_SEARCH_INLINE_MAX) {
		/* cheap: on the loop, at once */
		j->unlimited = true;
		while (search_chunk(&j->job.wq) == WORKQ_AGAIN)
			;
		search_finish(s, tag, &j->job);
		search_job_free(&j->job);
		return;
	}
	imap_session_submit_work(s, tag, &j->job);
}
